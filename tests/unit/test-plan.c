/* test-plan.c: the host side of the CUDA backend's sizing: the memory plan (model/plan.h) for
 * GPT-2 124M and codeparrot's 1.5B shape against counts written out here from the formulas,
 * recompute and precision, memory linear in T; the padded vocabulary and layout (model/pad.h)
 * with its edge cases and a round trip of parameters; the GPU peak table and the FLOPs per
 * token (model/mfu.h, gpt2_flops_per_token). */
#include "tap.h"
#include "base/buf.h"
#include "base/xalloc.h"
#include "model/mfu.h"
#include "model/pad.h"
#include "model/plan.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

/* GPT-2's parameters written out: wte, wpe, per layer 12C^2 + 13C (c_attn 3C^2 + 3C, c_proj
 * C^2 + C, c_fc 4C^2 + 4C, mlp.c_proj 4C^2 + C, two LayerNorms 4C), ln_f 2C */
static uint64_t params_formula(uint64_t V, uint64_t ctx, uint64_t L, uint64_t C)
{
	return V * C + ctx * C + L * (12 * C * C + 13 * C) + 2 * C;
}

/* the smallest multiple of 128 not below V, by counting */
static uint64_t pad_by_counting(uint64_t V)
{
	uint64_t m = 0;
	while (m < V)
		m += 128;
	return m;
}

/* The activations written out. Per layer: ln_1, attn.out, residual_2, ln_2, residual_3 (C
 * each), qkv (3C), mlp.fc and mlp.gelu (4C each): 16C of the activation type, of which the
 * LayerNorm outputs and the MLP's two (10C) are recomputed; fp32: the LayerNorms' means and
 * rstds (4) and the logsumexp (NH). Once: encoded, ln_f, d.residual, d.width (C each),
 * d.hidden (4C), logits (Vpad); fp32: ln_f's mean and rstd, losses, the classifier's
 * logsumexp (4); int32: tokens and
 * targets (2). */
static uint64_t acts_formula(uint64_t B, uint64_t T, uint64_t L, uint64_t C, uint64_t NH,
			     uint64_t Vpad, int bf16, int recompute)
{
	uint64_t BT = B * T, a = bf16 ? 2 : 4;
	uint64_t kept = recompute ? L * 6 * C + 10 * C : L * 16 * C;
	uint64_t act = BT * (kept + 8 * C + Vpad);
	uint64_t f32 = BT * (L * (4 + NH) + 4), i32 = 2 * BT;
	return act * a + f32 * 4 + i32 * 4;
}

static void check_plan(const char *name, const struct gpt2_config *c, uint64_t want_n,
		       uint64_t want_vpad)
{
	uint64_t V = c->vocab_size, C = c->n_embd, L = c->n_layer, NH = c->n_head;
	uint64_t n = params_formula(V, c->n_ctx, L, C);
	uint64_t np = params_formula(want_vpad, c->n_ctx, L, C);
	is_int(n, want_n, "%s: the formula gives %llu parameters", name, (unsigned long long)want_n);
	struct plan_opts o = { .B = 8, .T = 1024, .precision = GPT2_BF16, .recompute = 0 };
	struct gpt2_plan p;
	gpt2_plan(c, &o, &p);
	is_int(p.n_params, n, "%s: parameters, true vocabulary", name);
	is_int(p.vpad, want_vpad, "%s: padded vocabulary", name);
	is_int(p.n_padded, np, "%s: parameters, padded vocabulary", name);
	ok(p.bytes[PLAN_PARAMS] == 2 * np && p.bytes[PLAN_MASTER] == 4 * np &&
	   p.bytes[PLAN_MOMENTS] == 8 * np && p.bytes[PLAN_GRADS] == 2 * np,
	   "%s bf16: 2, 4, 8 and 2 bytes per padded parameter", name);
	is_int(p.bytes[PLAN_WORKSPACE], 32ull << 20, "%s: 32 MiB of cuBLASLt workspace", name);
	is_int(p.bytes[PLAN_ACTS], acts_formula(8, 1024, L, C, NH, want_vpad, 1, 0),
	       "%s bf16: activations", name);
	uint64_t sum = 0;
	for (int k = 0; k < PLAN_NCAT; k++)
		sum += p.bytes[k];
	is_int(p.total, sum, "%s: the total is the sum", name);

	struct gpt2_plan r;
	o.recompute = 1;
	gpt2_plan(c, &o, &r);
	is_int(r.bytes[PLAN_ACTS], acts_formula(8, 1024, L, C, NH, want_vpad, 1, 1),
	       "%s bf16 recompute: activations", name);
	ok(r.total < p.total && r.bytes[PLAN_ACTS] < p.bytes[PLAN_ACTS] &&
	   r.total - r.bytes[PLAN_ACTS] == p.total - p.bytes[PLAN_ACTS],
	   "%s: recompute needs strictly less, all of it in the activations", name);

	struct gpt2_plan f;
	o.recompute = 0;
	o.precision = GPT2_FP32;
	gpt2_plan(c, &o, &f);
	ok(f.bytes[PLAN_PARAMS] == 2 * p.bytes[PLAN_PARAMS] && f.bytes[PLAN_MASTER] == 0 &&
	   f.bytes[PLAN_MOMENTS] == p.bytes[PLAN_MOMENTS] &&
	   f.bytes[PLAN_GRADS] == 2 * p.bytes[PLAN_GRADS],
	   "%s fp32: parameters and gradients twice bf16's, no master copy, the same moments",
	   name);
	is_int(f.bytes[PLAN_ACTS], acts_formula(8, 1024, L, C, NH, want_vpad, 0, 0),
	       "%s fp32: activations", name);

	struct gpt2_plan t2;
	o.T = 2048;
	o.precision = GPT2_BF16;
	gpt2_plan(c, &o, &t2);
	is_int(t2.bytes[PLAN_ACTS], 2 * p.bytes[PLAN_ACTS],
	       "%s: twice the sequence, twice the activations (no T x T buffer)", name);
}

static void test_plans(void)
{
	struct gpt2_config c;
	gpt2_preset("gpt2", &c);
	check_plan("gpt2 124M", &c, 124439808ull, 50304);
	gpt2_preset("codeparrot", &c);
	check_plan("codeparrot 1.5B", &c, 1529628800ull, 32768);

	struct gpt2_config one = { 50257, 1024, 1, 12, 768, 0, 0 };
	struct plan_opts o = { .B = 4, .T = 256, .precision = GPT2_BF16, .recompute = 0 };
	struct gpt2_plan a, b;
	gpt2_plan(&one, &o, &a);
	o.recompute = 1;
	gpt2_plan(&one, &o, &b);
	is_int(b.total, a.total, "one layer: recompute keeps one copy either way");

	/* the table's total line says the total, in bytes and GiB */
	gpt2_preset("gpt2", &c);
	o = (struct plan_opts){ .B = 8, .T = 1024, .precision = GPT2_BF16, .recompute = 0 };
	gpt2_plan(&c, &o, &a);
	struct buf txt = { 0 };
	gpt2_plan_format(&txt, &c, &o, &a);
	buf_putc(&txt, 0);
	const char *line = strstr((char *)txt.p, "\ntotal ");
	unsigned long long bytes = 0;
	double g = 0;
	ok(line && sscanf(line, "\ntotal %llu %lf", &bytes, &g) == 2 && bytes == a.total &&
	   fabs(g - (double)a.total / 1073741824.0) < 1e-3, "the printed total, bytes and GiB");
	ok(strstr((char *)txt.p, "vocab 50257 (padded 50304)") != NULL,
	   "the printed plan names both vocabularies");
	ok(!strstr((char *)txt.p, "gradient buckets"), "one GPU without ZeRO: no buckets printed");
	buf_free(&txt);
	/* on 8 GPUs: 12 buckets of a layer (the last with ln_f), then wte and wpe */
	o.world = 8;
	gpt2_plan(&c, &o, &a);
	struct buf t8 = { 0 };
	gpt2_plan_format(&t8, &c, &o, &a);
	buf_putc(&t8, 0);
	uint64_t layer = 2 * (12 * 768 * 768 + 13 * 768), emb = 2 * (50304 + 1024) * 768;
	char want[128];
	snprintf(want, sizeof(want), "gradient buckets: 13, of layers up to %llu bytes, then the "
		 "embeddings' %llu\n", (unsigned long long)(layer + 2 * 2 * 768),
		 (unsigned long long)emb);
	ok(strstr((char *)t8.p, want) != NULL, "8 GPUs: the buckets printed: %s", want);
	buf_free(&t8);
}

/* ZeRO-1 on W GPUs for the published batch (512 sequences of 1024 a step): the master weights
 * and moments of a shard, ceil(Npad / W) rounded up to 8 elements (Npad = 1529628800 divides
 * by 8 x 8 and 16 x 8, so every shard is Npad / W), the gradients' reduced shard apart (2 bytes
 * of it a shard element), everything else as on one GPU; the total per GPU against the card */
static void check_zero(uint64_t W, uint64_t B, int recompute, double card_gib)
{
	struct gpt2_config c;
	gpt2_preset("codeparrot", &c);
	uint64_t Np = params_formula(32768, 1024, 48, 1600), S = Np / W;
	uint64_t accum = 512 / (W * B);
	struct plan_opts o = { .B = B, .T = 1024, .precision = GPT2_BF16, .recompute = recompute,
			       .world = W, .accum = accum, .zero = 1 };
	struct gpt2_plan p;
	gpt2_plan(&c, &o, &p);
	is_int(p.n_shard, S, "1.5B on %llu GPUs, ZeRO-1: a shard of %llu parameters",
	       (unsigned long long)W, (unsigned long long)S);
	ok(p.bytes[PLAN_PARAMS] == 2 * Np && p.bytes[PLAN_GRADS] == 2 * Np + 2 * S &&
	   p.bytes[PLAN_MASTER] == 4 * S && p.bytes[PLAN_MOMENTS] == 8 * S,
	   "... bf16 parameters and gradients whole (and the gradients' shard), master weights "
	   "and moments of the shard");
	uint64_t want = 4 * Np + 14 * S + acts_formula(B, 1024, 48, 1600, 25, 32768, 1, recompute) +
			p.bytes[PLAN_SCRATCH] + (32ull << 20);
	is_int(p.total, want, "... %.2f GiB a GPU by hand", (double)want / 1073741824.0);
	is_int(p.tokens_per_step, 512 * 1024, "... micro-batch %llu x accum %llu x %llu GPUs: "
	       "524288 tokens a step", (unsigned long long)B, (unsigned long long)accum,
	       (unsigned long long)W);
	ok((double)p.total < card_gib * 1e9 * 0.95, "... fits a %.0f GB card", card_gib);
	struct gpt2_plan one;
	o.zero = 0;
	gpt2_plan(&c, &o, &one);
	ok(one.total - p.total == 12 * (Np - S) - 2 * S,
	   "... ZeRO saves 12 bytes a parameter not held, less the gradients' shard");
}

/* The device's ZeRO shards of model C over W ranks: equal, aligned, covering the padded
 * layout; their true-layout offsets place every true element with the rank owning its padded
 * index (every element checked when BRUTE) */
static void check_shards(const char *name, const struct gpt2_config *c, uint64_t W, int brute)
{
	struct gpt2_layout t, p;
	gpt2_layout(c, &t);
	gpt2_layout_padded(c, &p);
	uint64_t S = plan_shard_size(p.total, W), sum = 0, *off = xcalloc(W + 1, sizeof(uint64_t));
	int good = W * S >= p.total && (W == 1 ? S == p.total : S % PLAN_SHARD_ALIGN == 0) &&
		   (W - 1) * S < p.total;
	for (uint64_t r = 0; r < W; r++) {
		uint64_t n = plan_shard_len(p.total, W, r);
		good &= n <= S && (r + 1 == W || n == S);
		sum += n;
	}
	ok(good && sum == p.total, "%s, %llu ranks: shards of %llu, equal but the last, cover the "
	   "%llu padded elements", name, (unsigned long long)W, (unsigned long long)S,
	   (unsigned long long)p.total);
	plan_shard_true_offsets(c, W, off);
	good = off[0] == 0 && off[W] == t.total;
	for (uint64_t r = 0; r < W; r++) {
		good &= off[r] <= off[r + 1];
		if (off[r] < off[r + 1])
			good &= gpt2_pad_index(c, off[r]) >= r * S &&
				gpt2_pad_index(c, off[r + 1] - 1) < r * S + plan_shard_len(p.total, W, r);
		if (r && off[r] < t.total)	/* the first true element at or past r S */
			good &= gpt2_pad_index(c, off[r]) >= r * S &&
				(off[r] == 0 || gpt2_pad_index(c, off[r] - 1) < r * S);
	}
	for (uint64_t i = 0, r = 0; brute && i < t.total; i++) {
		while (i >= off[r + 1])
			r++;
		good &= gpt2_pad_index(c, i) / S == r;
	}
	ok(good, "%s, %llu ranks: the true-layout shards hold each element with its padded "
	   "index's owner%s", name, (unsigned long long)W, brute ? " (every element)" : "");
	free(off);
}

static int slice_cmp(const void *a, const void *b)
{
	const struct plan_slice *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* The gradient buckets of C for ESZ-byte gradients and TARGET bytes: every padded element in
 * exactly one slice, each slice inside one tensor, buckets in backward order (their layers
 * descending, the embeddings last), none holding a layer below the one it waits for, each of
 * layers at most max(target, one layer) plus ln_f, the last wte and wpe */
static void check_buckets(const char *name, const struct gpt2_config *c, uint64_t esz,
			  uint64_t target, int want_n)
{
	struct gpt2_layout p;
	gpt2_layout_padded(c, &p);
	struct gpt2_config pc = gpt2_config_padded(c);
	struct plan_buckets pb;
	plan_buckets(c, esz, target, &pb);
	uint64_t L = c->n_layer, layer = 0, lnf = p.size[GPT2_LNFW] + p.size[GPT2_LNFB];
	for (int k = 0; k < GPT2_NT; k++)
		if (gpt2_tensor_per_layer(k))
			layer += p.size[k] / L;
	uint64_t most = (target ? target : PLAN_BUCKET_BYTES) / esz;
	most = (most > layer ? most : layer) + lnf;
	struct plan_slice *all = xcalloc((size_t)pb.n_slices + 1, sizeof(*all));
	int n = 0, order = 1, inside = 1, bounded = 1, waits = 1;
	for (int i = 0; i < pb.n; i++) {
		const struct plan_bucket *b = &pb.b[i];
		uint64_t sum = 0;
		order &= i + 1 == pb.n ? b->layer == -1 : (i == 0 || b->layer < pb.b[i - 1].layer);
		for (int j = b->first; j < b->first + b->count; j++) {
			const struct plan_slice *sl = &pb.slice[j];
			all[n++] = *sl;
			sum += sl->n;
			int in = 0;
			for (int k = 0; k < GPT2_NT; k++) {
				if (sl->off < p.off[k] || sl->off + sl->n > p.off[k] + p.size[k])
					continue;
				in = 1;
				if (gpt2_tensor_per_layer(k) && b->layer >= 0)
					waits &= sl->off >= gpt2_tensor_offset(&pc, &p, k, b->layer);
				if (!gpt2_tensor_per_layer(k) && b->layer >= 0)
					waits &= k == GPT2_LNFW || k == GPT2_LNFB;
			}
			inside &= in;
		}
		/* the embeddings, finished all at once, are the last bucket whatever their size */
		bounded &= sum == b->n && (i + 1 == pb.n ? b->n == p.size[GPT2_WTE] + p.size[GPT2_WPE]
						       : b->n <= most);
	}
	qsort(all, (size_t)n, sizeof(*all), slice_cmp);
	uint64_t at = 0;
	int tiled = n == pb.n_slices;
	for (int i = 0; i < n; i++) {
		tiled &= all[i].off == at && all[i].n > 0;
		at += all[i].n;
	}
	ok(tiled && at == p.total && inside, "%s: %d buckets, %d slices: every gradient element in "
	   "exactly one, each slice inside a tensor", name, pb.n, pb.n_slices);
	ok(order && waits, "%s: in the order backward completes them, none before its layers are "
	   "done (the embeddings last)", name);
	ok(bounded, "%s: each of layers at most max(target, one layer) + ln_f, the last the "
	   "embeddings", name);
	if (want_n)
		is_int(pb.n, want_n, "%s: %d buckets", name, want_n);
	free(all);
	plan_buckets_free(&pb);
}

static void test_dist_plans(void)
{
	struct gpt2_config g, cp, small = { 1000, 64, 5, 4, 64, 0, 0 };
	gpt2_preset("gpt2", &g);
	gpt2_preset("codeparrot", &cp);
	static const uint64_t ws[] = { 1, 2, 3, 8 };
	for (int i = 0; i < 4; i++) {
		check_shards("gpt2 124M", &g, ws[i], ws[i] < 3);
		check_shards("codeparrot 1.5B", &cp, ws[i], 0);
		check_shards("small", &small, ws[i], 1);
	}
	check_shards("small", &small, 7, 1);
	/* one id: wte's 127 pad rows take most of the layout, and the shards' edges fall in them */
	struct gpt2_config one = { 1, 4, 1, 1, 4, 0, 0 };
	check_shards("V=1", &one, 2, 1);
	check_shards("V=1", &one, 3, 1);
	/* a layer of 124M is 14 MB in bf16, of 1.5B 61 MB: one a bucket, then the embeddings */
	check_buckets("gpt2 124M bf16", &g, 2, 0, 13);
	check_buckets("gpt2 124M fp32", &g, 4, 0, 13);
	check_buckets("gpt2 124M bf16, 64 MB buckets", &g, 2, 64ull << 20, 4);
	check_buckets("codeparrot 1.5B bf16", &cp, 2, 0, 49);
	check_buckets("small, 1-byte buckets", &small, 4, 1, 6);
	check_buckets("small, one bucket of layers", &small, 4, 1ull << 40, 2);
	check_buckets("small, 2 layers a bucket", &small, 2, 2 * 2 * (12 * 64 * 64 + 13 * 64), 4);
}

static void test_precision_names(void)
{
	is_int(gpt2_precision_parse("bf16"), GPT2_BF16, "bf16 parses");
	is_int(gpt2_precision_parse("fp32"), GPT2_FP32, "fp32 parses");
	is_int(gpt2_precision_parse("fp16"), -1, "fp16 does not");
	is_str(gpt2_precision_name(GPT2_BF16), "bf16", "bf16's name");
	ok(gpt2_precision_name(7) == NULL && gpt2_precision_name(-1) == NULL,
	   "no name out of range");
	ok(gpt2_precision_default("cuda") == GPT2_BF16 && gpt2_precision_default("cpu") == GPT2_FP32,
	   "default precision: bf16 on cuda, fp32 on cpu");
	ok(!gpt2_precision_check("cuda", GPT2_BF16) && !gpt2_precision_check("cpu", GPT2_FP32) &&
	   gpt2_precision_check("cpu", GPT2_BF16), "cpu refuses bf16 alone");
}

/* ---- the padded layout ---- */

static void test_pad_sizes(void)
{
	static const uint64_t vs[] = { 0, 1, 2, 127, 128, 129, 255, 256, 32768, 50257, 50304,
				       50305, 1u << 30 };
	int good = 1;
	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++)
		good &= gpt2_vocab_padded(vs[i]) == pad_by_counting(vs[i]);
	ok(good, "padded vocabulary: the smallest multiple of 128 not below V (0, 1, 127..129, "
		 "32768, 50257, 2^30)");
	is_int(gpt2_vocab_padded(50257), 50304, "GPT-2's 50257 pads to 50304");
	is_int(gpt2_vocab_padded(32768), 32768, "a multiple of 128 stays");
	is_int(gpt2_vocab_padded(1), 128, "1 pads to 128");
}

/* The padded layout against the true one: wte grows by the pad rows, every other tensor
 * keeps its size and moves by them; gpt2_pad_index agrees for every tensor and layer. */
static void check_layout(const char *name, const struct gpt2_config *c)
{
	struct gpt2_layout t, p;
	gpt2_layout(c, &t);
	gpt2_layout_padded(c, &p);
	uint64_t pad = (pad_by_counting(c->vocab_size) - c->vocab_size) * c->n_embd;
	int good = p.off[GPT2_WTE] == 0 && p.size[GPT2_WTE] == t.size[GPT2_WTE] + pad &&
		   p.total == t.total + pad;
	for (int k = GPT2_WPE; k < GPT2_NT; k++)
		good &= p.off[k] == t.off[k] + pad && p.size[k] == t.size[k];
	ok(good, "%s: padded layout = true layout + %llu pad elements after wte", name,
	   (unsigned long long)pad);
	struct gpt2_config pc = gpt2_config_padded(c);
	good = 1;
	for (int k = 0; k < GPT2_NT; k++)
		for (uint32_t l = 0; l < c->n_layer; l++)
			good &= gpt2_pad_index(c, gpt2_tensor_offset(c, &t, k, (int)l)) ==
				gpt2_tensor_offset(&pc, &p, k, (int)l);
	ok(good && gpt2_pad_index(c, t.size[GPT2_WTE] - 1) == t.size[GPT2_WTE] - 1,
	   "%s: pad_index maps every tensor's and layer's start", name);
}

/* parameters copied into the padded layout (pad rows zero) and back out unchanged, for
 * floats and for 2-byte (bf16) elements */
static void check_round_trip(const char *name, const struct gpt2_config *c)
{
	struct gpt2_layout t, p;
	gpt2_layout(c, &t);
	gpt2_layout_padded(c, &p);
	float *src = xmalloc(t.total * sizeof(float)), *back = xmalloc(t.total * sizeof(float));
	float *pad = xmalloc(p.total * sizeof(float));
	for (uint64_t i = 0; i < t.total; i++)
		src[i] = (float)(i % 1000) + 0.5f;
	for (uint64_t i = 0; i < p.total; i++)
		pad[i] = -1;
	gpt2_pad_copy(c, pad, src, sizeof(float));
	uint64_t wte = t.size[GPT2_WTE];
	int good = 1;
	for (uint64_t i = 0; i < t.total; i++)
		good &= pad[gpt2_pad_index(c, i)] == src[i];
	for (uint64_t i = wte; i < p.off[GPT2_WPE]; i++)
		good &= pad[i] == 0;
	ok(good, "%s: padded copy: every element at its index, the pad rows zero", name);
	gpt2_unpad_copy(c, back, pad, sizeof(float));
	ok(!memcmp(back, src, t.total * sizeof(float)), "%s: and back out equal", name);
	uint16_t *h = xmalloc(t.total * 2), *hp = xmalloc(p.total * 2), *hb = xmalloc(t.total * 2);
	for (uint64_t i = 0; i < t.total; i++)
		h[i] = (uint16_t)(i * 7 + 1);
	gpt2_pad_copy(c, hp, h, 2);
	gpt2_unpad_copy(c, hb, hp, 2);
	ok(!memcmp(hb, h, t.total * 2) && (p.total == t.total || hp[wte] == 0),
	   "%s: 2-byte elements round-trip too", name);
	free(src), free(back), free(pad), free(h), free(hp), free(hb);
}

static void test_pad_layouts(void)
{
	struct gpt2_config cs[] = {
		{ 50257, 64, 3, 2, 16, 0, 0 },	/* GPT-2's vocabulary, a small body */
		{ 256, 16, 2, 2, 8, 0, 0 },	/* already a multiple */
		{ 1, 4, 1, 1, 4, 0, 0 },	/* one id */
		{ 129, 8, 2, 1, 4, 0, 0 },	/* one past */
	};
	const char *names[] = { "V=50257", "V=256", "V=1", "V=129" };
	for (int i = 0; i < 4; i++) {
		check_layout(names[i], &cs[i]);
		check_round_trip(names[i], &cs[i]);
	}
}

/* ---- MFU ---- */

static void test_mfu(void)
{
	ok(mfu_peak_bf16_tflops("NVIDIA H100 80GB HBM3") == 989, "H100 SXM: 989");
	ok(mfu_peak_bf16_tflops("NVIDIA H200") == 989, "H200: 989");
	ok(mfu_peak_bf16_tflops("NVIDIA A100-SXM4-80GB") == 312, "A100 SXM: 312");
	ok(mfu_peak_bf16_tflops("NVIDIA A100 80GB PCIe") == 312, "A100 PCIe: 312");
	ok(mfu_peak_bf16_tflops("nvidia h100 pcie") == 756, "H100 PCIe: 756, case ignored");
	ok(mfu_peak_bf16_tflops("NVIDIA GeForce RTX 4090") == 0 &&
	   mfu_peak_bf16_tflops("") == 0 && mfu_peak_bf16_tflops(NULL) == 0,
	   "other cards, empty and no name: 0");
	is_str(mfu_peak_text("Tesla T4"), "unknown", "an unknown card says unknown");
	is_str(mfu_peak_text("NVIDIA H200"), "989 TFLOP/s", "a known one its peak");
	double f = 6.0 * 124439808 + 6.0 * 12 * 768 * 1024;
	struct gpt2_config c;
	gpt2_preset("gpt2", &c);
	ok(gpt2_flops_per_token(&c, 1024) == f, "flops per token: 6N + 6LCT (N with embeddings)");
	ok(fabs(mfu_ratio(1e5, f, 989) - 1e5 * f / 989e12) < 1e-15, "mfu: tokens x flops / peak");
	ok(mfu_ratio(1e5, f, 0) == 0 && mfu_ratio(-1, f, 989) == 0 && mfu_ratio(1e5, -f, 989) == 0 &&
	   mfu_ratio(NAN, f, 989) == 0 && mfu_ratio(1e5, f, -3) == 0,
	   "mfu is 0, never negative, with an unknown peak or a bad input");
}

int main(void)
{
	test_plans();
	check_zero(8, 8, 0, 80);
	check_zero(16, 4, 1, 40);
	test_dist_plans();
	test_precision_names();
	test_pad_sizes();
	test_pad_layouts();
	test_mfu();
	return done_testing();
}
