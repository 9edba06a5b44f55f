/* plan.c: the CUDA backend's memory, counted on the host (see plan.h). */
#include "model/plan.h"
#include "model/pad.h"
#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const precision_names[GPT2_NPRECISION] = { "fp32", "bf16" };

const char *gpt2_precision_name(int p)
{
	return p >= 0 && p < GPT2_NPRECISION ? precision_names[p] : NULL;
}

int gpt2_precision_parse(const char *s)
{
	for (int p = 0; p < GPT2_NPRECISION; p++)
		if (!strcmp(s, precision_names[p]))
			return p;
	return -1;
}

int gpt2_precision_default(const char *backend)
{
	return strcmp(backend, "cuda") ? GPT2_FP32 : GPT2_BF16;
}

const char *gpt2_precision_check(const char *backend, int p)
{
	static char why[96];
	if (p != GPT2_BF16 || !strcmp(backend, "cuda"))
		return NULL;
	snprintf(why, sizeof(why), "bf16 needs --device cuda; the %.20s backend trains in fp32",
		 backend);
	return why;
}

/* What the backend keeps for the backward pass: each layer's inputs to the kernels whose
 * backward needs them, and the LayerNorm statistics, so that no forward is redone; with
 * --recompute the LayerNorm outputs and the GELU's input and output are redone from the
 * residual stream, layer by layer, into one shared copy. The classifier is fused: the logits
 * are overwritten by their gradient, and no probabilities are stored. */
static const struct plan_act acts[] = {
	/* name          per_layer recomputed dtype      c  h  v  one */
	{ "tokens",      0, 0, PLAN_DT_I32, 0, 0, 0, 1 },
	{ "targets",     0, 0, PLAN_DT_I32, 0, 0, 0, 1 },
	{ "encoded",     0, 0, PLAN_DT_ACT, 1, 0, 0, 0 },	/* wte + wpe: layer 0's input */
	{ "ln_1",        1, 1, PLAN_DT_ACT, 1, 0, 0, 0 },
	{ "ln_1.mean",   1, 0, PLAN_DT_F32, 0, 0, 0, 1 },
	{ "ln_1.rstd",   1, 0, PLAN_DT_F32, 0, 0, 0, 1 },
	{ "qkv",         1, 0, PLAN_DT_ACT, 3, 0, 0, 0 },
	{ "attn.out",    1, 0, PLAN_DT_ACT, 1, 0, 0, 0 },	/* before c_proj */
	{ "attn.lse",    1, 0, PLAN_DT_F32, 0, 1, 0, 0 },	/* per row and head */
	{ "residual_2",  1, 0, PLAN_DT_ACT, 1, 0, 0, 0 },	/* after the attention */
	{ "ln_2",        1, 1, PLAN_DT_ACT, 1, 0, 0, 0 },
	{ "ln_2.mean",   1, 0, PLAN_DT_F32, 0, 0, 0, 1 },
	{ "ln_2.rstd",   1, 0, PLAN_DT_F32, 0, 0, 0, 1 },
	{ "mlp.fc",      1, 1, PLAN_DT_ACT, 4, 0, 0, 0 },	/* the GELU's input */
	{ "mlp.gelu",    1, 1, PLAN_DT_ACT, 4, 0, 0, 0 },	/* its output */
	{ "residual_3",  1, 0, PLAN_DT_ACT, 1, 0, 0, 0 },	/* the layer's output */
	{ "ln_f",        0, 0, PLAN_DT_ACT, 1, 0, 0, 0 },
	{ "ln_f.mean",   0, 0, PLAN_DT_F32, 0, 0, 0, 1 },
	{ "ln_f.rstd",   0, 0, PLAN_DT_F32, 0, 0, 0, 1 },
	{ "logits",      0, 0, PLAN_DT_ACT, 0, 0, 1, 0 },	/* then their gradient, in place */
	{ "losses",      0, 0, PLAN_DT_F32, 0, 0, 0, 1 },
	{ "lse",         0, 0, PLAN_DT_F32, 0, 0, 0, 1 },	/* the classifier's, for backward */
	/* backward scratch: the residual stream's gradient, one of a layer's width, and the
	 * widest (the MLP's hidden layer, which also holds the qkv gradient) */
	{ "d.residual",  0, 0, PLAN_DT_ACT, 1, 0, 0, 0 },
	{ "d.width",     0, 0, PLAN_DT_ACT, 1, 0, 0, 0 },
	{ "d.hidden",    0, 0, PLAN_DT_ACT, 4, 0, 0, 0 },
};

const struct plan_act *plan_acts(int *n)
{
	*n = (int)(sizeof(acts) / sizeof(acts[0]));
	return acts;
}

uint64_t plan_act_copies(const struct plan_act *a, const struct gpt2_config *c, int recompute)
{
	return a->per_layer && !(recompute && a->recomputed) ? c->n_layer : 1;
}

/* bytes of one element of each type */
static uint64_t dtype_size(int dtype, int precision)
{
	if (dtype == PLAN_DT_ACT)
		return precision == GPT2_BF16 ? 2 : 4;
	return 4;
}

uint64_t plan_act_bytes(const struct plan_act *a, const struct gpt2_config *c, uint64_t B,
			uint64_t T, int precision)
{
	uint64_t per_row = a->c * (uint64_t)c->n_embd + a->h * (uint64_t)c->n_head +
			   a->v * gpt2_vocab_padded(c->vocab_size) + a->one;
	return B * T * per_row * dtype_size(a->dtype, precision);
}

static uint64_t align_up(uint64_t x)
{
	return (x + PLAN_ALIGN - 1) / PLAN_ALIGN * PLAN_ALIGN;
}

uint64_t plan_arena(const struct gpt2_config *c, const struct plan_opts *o, uint64_t *off,
		    uint64_t *stride)
{
	int n;
	const struct plan_act *a = plan_acts(&n);
	uint64_t at = 0;
	for (int i = 0; i < n; i++) {
		uint64_t bytes = plan_act_bytes(&a[i], c, o->B, o->T, o->precision);
		uint64_t st = align_up(bytes);
		if (off)
			off[i] = at;
		if (stride)
			stride[i] = st;
		at += plan_act_copies(&a[i], c, o->recompute) * st;
	}
	return at;
}

uint64_t plan_scratch_buf_bytes(const struct gpt2_config *c, uint64_t B, uint64_t T, int k)
{
	uint64_t BT = B * T;
	switch (k) {
	case PLAN_SC_COLSUM:
		return align_up((BT + PLAN_ROWCHUNK - 1) / PLAN_ROWCHUNK * 4 * c->n_embd * 4);
	case PLAN_SC_NORM:
		return align_up(PLAN_NORM_BLOCKS * 8);
	case PLAN_SC_IDS: case PLAN_SC_POS:
		return align_up(BT * 4);
	case PLAN_SC_START:
		return align_up((BT + 1) * 4);
	}
	return 0;
}

uint64_t plan_scratch_bytes(const struct gpt2_config *c, uint64_t B, uint64_t T)
{
	uint64_t s = 0;
	for (int k = 0; k < PLAN_SC_N; k++)
		s += plan_scratch_buf_bytes(c, B, T, k);
	return s;
}

uint64_t plan_shard_size(uint64_t npad, uint64_t world)
{
	if (world <= 1)
		return npad;
	uint64_t s = (npad + world - 1) / world;
	return (s + PLAN_SHARD_ALIGN - 1) / PLAN_SHARD_ALIGN * PLAN_SHARD_ALIGN;
}

uint64_t plan_shard_len(uint64_t npad, uint64_t world, uint64_t r)
{
	uint64_t S = plan_shard_size(npad, world), lo = r * S;
	if (lo >= npad)
		return 0;
	return npad - lo < S ? npad - lo : S;
}

/* the true elements of C whose padded index is below P: wte's pad rows hold none */
static uint64_t true_below(const struct gpt2_config *c, uint64_t p)
{
	uint64_t C = c->n_embd, real = (uint64_t)c->vocab_size * C;
	uint64_t pad = (gpt2_vocab_padded(c->vocab_size) - c->vocab_size) * C;
	if (p <= real)
		return p;
	return p <= real + pad ? real : p - pad;
}

void plan_shard_true_offsets(const struct gpt2_config *c, uint64_t world, uint64_t *off)
{
	struct gpt2_layout lay, padded;
	gpt2_layout(c, &lay);
	gpt2_layout_padded(c, &padded);
	uint64_t S = plan_shard_size(padded.total, world ? world : 1);
	for (uint64_t r = 0; r < world; r++) {
		uint64_t t = true_below(c, r * S);
		off[r] = t < lay.total ? t : lay.total;
	}
	off[world] = lay.total;
}

/* slices [l0, l1] of every per-layer tensor of the padded layout P into bucket B */
static void bucket_layers(struct plan_buckets *pb, const struct gpt2_config *c,
			  const struct gpt2_layout *p, int l0, int l1)
{
	struct plan_bucket *b = &pb->b[pb->n++];
	b->layer = l0;
	b->first = pb->n_slices;
	b->count = 0;
	b->n = 0;
	for (int t = 0; t < GPT2_NT; t++) {
		if (!gpt2_tensor_per_layer(t))
			continue;
		uint64_t per = p->size[t] / c->n_layer;
		struct plan_slice *sl = &pb->slice[pb->n_slices++];
		sl->off = p->off[t] + per * (uint64_t)l0;
		sl->n = per * (uint64_t)(l1 - l0 + 1);
		b->count++;
		b->n += sl->n;
	}
}

static void bucket_add(struct plan_buckets *pb, const struct gpt2_layout *p, int t)
{
	struct plan_bucket *b = &pb->b[pb->n - 1];
	struct plan_slice *sl = &pb->slice[pb->n_slices++];
	sl->off = p->off[t];
	sl->n = p->size[t];
	b->count++;
	b->n += sl->n;
}

void plan_buckets(const struct gpt2_config *c, uint64_t esize, uint64_t target,
		  struct plan_buckets *pb)
{
	struct gpt2_layout p;
	gpt2_layout_padded(c, &p);
	int L = (int)c->n_layer;
	if (!target)
		target = PLAN_BUCKET_BYTES;
	uint64_t per_layer = 0;	/* elements of one layer */
	for (int t = 0; t < GPT2_NT; t++)
		if (gpt2_tensor_per_layer(t))
			per_layer += p.size[t] / (L ? (uint64_t)L : 1);
	uint64_t layer_bytes = per_layer * esize, k = 1;	/* layers a bucket */
	if (layer_bytes && target / layer_bytes > 1)
		k = target / layer_bytes;
	memset(pb, 0, sizeof(*pb));
	pb->b = xcalloc((size_t)L + 2, sizeof(*pb->b));
	pb->slice = xcalloc((size_t)(L + 1) * GPT2_NT, sizeof(*pb->slice));
	for (int hi = L - 1; hi >= 0; hi -= (int)k) {
		int lo = hi - (int)k + 1 < 0 ? 0 : hi - (int)k + 1;
		bucket_layers(pb, c, &p, lo, hi);
		if (hi == L - 1) {
			bucket_add(pb, &p, GPT2_LNFW);
			bucket_add(pb, &p, GPT2_LNFB);
		}
	}
	if (!L) {	/* no layers: ln_f alone, then the embeddings */
		pb->b[pb->n++] = (struct plan_bucket){ .layer = -1, .first = pb->n_slices };
		bucket_add(pb, &p, GPT2_LNFW);
		bucket_add(pb, &p, GPT2_LNFB);
	}
	pb->b[pb->n++] = (struct plan_bucket){ .layer = -1, .first = pb->n_slices };
	bucket_add(pb, &p, GPT2_WTE);
	bucket_add(pb, &p, GPT2_WPE);
}

void plan_buckets_free(struct plan_buckets *pb)
{
	free(pb->b);
	free(pb->slice);
	memset(pb, 0, sizeof(*pb));
}

void gpt2_plan(const struct gpt2_config *c, const struct plan_opts *o, struct gpt2_plan *p)
{
	struct gpt2_layout lay, padded;
	gpt2_layout(c, &lay);
	gpt2_layout_padded(c, &padded);
	memset(p, 0, sizeof(*p));
	p->vocab = c->vocab_size;
	p->vpad = (uint32_t)gpt2_vocab_padded(c->vocab_size);
	p->n_params = lay.total;
	p->n_padded = padded.total;
	uint64_t N = padded.total, w = dtype_size(PLAN_DT_ACT, o->precision);
	uint64_t world = o->world ? o->world : 1, S = o->zero ? plan_shard_size(N, world) : N;
	p->n_shard = S;
	p->tokens_per_step = o->B * o->T * world * (o->accum ? o->accum : 1);
	/* ZeRO-1: the parameters and gradients of W whole shards, and the shard's reduced
	 * gradients apart (the reduce-scatter is out of place) */
	uint64_t whole = o->zero ? world * S : N;
	p->bytes[PLAN_PARAMS] = whole * w;
	p->bytes[PLAN_MASTER] = o->precision == GPT2_BF16 ? S * 4 : 0;
	p->bytes[PLAN_MOMENTS] = 2 * S * 4;
	p->bytes[PLAN_GRADS] = (whole + (o->zero ? S : 0)) * w;
	p->bytes[PLAN_ACTS] = plan_arena(c, o, NULL, NULL);
	p->bytes[PLAN_SCRATCH] = plan_scratch_bytes(c, o->B, o->T);
	p->bytes[PLAN_WORKSPACE] = PLAN_WORKSPACE_BYTES;
	for (int k = 0; k < PLAN_NCAT; k++)
		p->total += p->bytes[k];
}

const char *plan_cat_label(int k, int precision)
{
	static const char *const labels[PLAN_NCAT][GPT2_NPRECISION] = {
		{ "parameters (fp32)", "parameters (bf16)" },
		{ "master weights (none)", "master weights (fp32)" },
		{ "adamw moments (fp32)", "adamw moments (fp32)" },
		{ "gradients (fp32)", "gradients (bf16)" },
		{ "activations (fp32)", "activations (bf16)" },
		{ "scratch (kernels)", "scratch (kernels)" },
		{ "workspace (cublaslt)", "workspace (cublaslt)" },
	};
	return labels[k][precision == GPT2_BF16];
}

static double gib(uint64_t bytes)
{
	return (double)bytes / (double)(1ull << 30);
}

void gpt2_plan_format(struct buf *b, const struct gpt2_config *c, const struct plan_opts *o,
		      const struct gpt2_plan *p)
{
	buf_printf(b, "model: vocab %u (padded %u), ctx %u, layers %u, heads %u, width %u\n",
		   p->vocab, p->vpad, c->n_ctx, c->n_layer, c->n_head, c->n_embd);
	buf_printf(b, "parameters: %llu (padded %llu)\n", (unsigned long long)p->n_params,
		   (unsigned long long)p->n_padded);
	buf_printf(b, "batch %llu x seq %llu, %s, recompute %s\n", (unsigned long long)o->B,
		   (unsigned long long)o->T, gpt2_precision_name(o->precision),
		   o->recompute ? "on" : "off");
	buf_printf(b, "per GPU of %llu, accum %llu: %llu tokens a step; zero %d: optimizer state "
		   "of %llu parameters a GPU\n", (unsigned long long)(o->world ? o->world : 1),
		   (unsigned long long)(o->accum ? o->accum : 1),
		   (unsigned long long)p->tokens_per_step, o->zero, (unsigned long long)p->n_shard);
	if (o->zero || (o->world ? o->world : 1) > 1) {
		struct plan_buckets pb;
		uint64_t w = dtype_size(PLAN_DT_ACT, o->precision), most = 0;
		plan_buckets(c, w, 0, &pb);
		for (int i = 0; i + 1 < pb.n; i++)
			most = pb.b[i].n * w > most ? pb.b[i].n * w : most;
		buf_printf(b, "gradient buckets: %d, of layers up to %llu bytes, then the embeddings' "
			   "%llu\n", pb.n, (unsigned long long)most,
			   (unsigned long long)(pb.b[pb.n - 1].n * w));
		plan_buckets_free(&pb);
	}
	buf_printf(b, "%-24s %16s %10s\n", "category", "bytes", "GiB");
	for (int k = 0; k < PLAN_NCAT; k++)
		buf_printf(b, "%-24s %16llu %10.3f\n", plan_cat_label(k, o->precision),
			   (unsigned long long)p->bytes[k], gib(p->bytes[k]));
	buf_printf(b, "%-24s %16llu %10.3f\n", "total", (unsigned long long)p->total,
		   gib(p->total));
	buf_puts(b, "activation buffers (bytes of one copy, copies):\n");
	int n;
	const struct plan_act *a = plan_acts(&n);
	for (int i = 0; i < n; i++)
		buf_printf(b, "  %-22s %16llu x %u%s\n", a[i].name,
			   (unsigned long long)plan_act_bytes(&a[i], c, o->B, o->T, o->precision),
			   (unsigned)plan_act_copies(&a[i], c, o->recompute),
			   o->recompute && a[i].recomputed ? " (recomputed)" : "");
}
