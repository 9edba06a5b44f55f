/* test-cuda.c: the CUDA backend against the CPU backend on this machine's GPU; the whole test
 * is skipped, with its reason, where the build has no CUDA backend or the machine no GPU.
 *   - fp32: one training step's loss, every gradient tensor, the gradient norm and the
 *     parameters after AdamW within relative 1e-5 of the CPU's (max |g - c| / max |c| per
 *     tensor), with and without --recompute (the two bit for bit equal on the GPU);
 *   - bf16: the same step within |g - c| <= tol + 0.08 |c| per tensor (tol 2% of the tensor's
 *     largest value), and 10 AdamW steps' losses within 0.05 of the CPU's;
 *   - resume: 10 steps straight equal 5, a copy of the host state into a new model, and 5 more,
 *     bit for bit (master weights and moments), and two runs equal each other;
 *   - the memory the backend holds equals cp-train --plan's total;
 *   - data parallelism on one rank (set_dist, NCCL's code path with a communicator of one):
 *     3 steps of 2 micro-batches, fp32 and bf16, give the bytes of the plain step (losses,
 *     master weights, moments) with the gradients' all-reduce in one call and in buckets of a
 *     layer during the backward pass, and with ZeRO-1 (reduce to the shard's owner, the
 *     shard's AdamW, the all-gather) in one call and in buckets, where the reduction is a
 *     copy into the shard's buffer that a bucket launched too early would show; ZeRO-1's
 *     host state resumes bit for bit, and its memory is the plan's;
 *   - generation (kv_*), fp32, on a random model with sharper logits than its initialisation's
 *     (sharp_model): 256 greedy tokens equal the CPU backend's, with every step's
 *     logits within 1e-5; rows prefilled apart, copied and stepped together give the CPU's
 *     logits; 16 rows sampled (T 0.8, top-p 0.95) from the same seeds give the CPU's tokens;
 *     a state holds what model/gpu-infer.h plans, and nothing once freed; bf16 (the model's
 *     bf16 inference weights): the prompt's logits within 5% of the fp32 CPU's scale.
 * With --bench it prints instead the table scripts/gpu-check shows: tokens/s, MFU and peak
 * memory of GPT-2 124M at T=1024 and of the 1.5B shape at a small batch; then generation's
 * tokens/s on 124M at batch 1, 16 and 200, sampling on the host included. */
#include "tap.h"
#include "base/die.h"
#include "infer/sample.h"
#include "model/backend.h"
#include "model/cpu-bf16.h"
#include "model/gpt2.h"
#include "model/gpu-infer.h"
#include "model/mfu.h"
#include "model/plan.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern const struct gpt2_backend gpt2_cuda_backend __attribute__((weak));

static const struct gpt2_backend *cu;

static struct gpt2_config small_config(void)
{
	struct gpt2_config c = { .vocab_size = 1000, .n_ctx = 64, .n_layer = 2, .n_head = 4,
				 .n_embd = 64, .scale_attn_by_inverse_layer_idx = 1 };
	return c;
}

enum { TB = 3, TT = 33 };

static void batch(uint32_t *tok, int step, uint32_t V)
{
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(step + 1);
	for (int i = 0; i < TB * TT; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		tok[i] = (uint32_t)(x % V);
	}
}

static void new_model(struct gpt2_model *m, const struct gpt2_config *c)
{
	gpt2_create(m, c);
	gpt2_init_weights(m, 11);
}

static void gpu_start(struct gpt2_model *m, int precision, uint64_t step, int recompute)
{
	cu->set_precision(m, precision, 0x5eed, step);
	cu->setup(m, TB, TT, recompute);
	cu->from_host(m);
}

/* worst over tensors of max |a - b| / max |b| (BF16: of max(|a - b| - 0.08 |b|) / max |b|) */
static double tensor_err(const struct gpt2_model *m, const float *a, const float *b, int bf16,
			 const char **worst)
{
	double w = 0;
	for (int t = 0; t < GPT2_NT; t++) {
		uint64_t o = m->lay.off[t], n = m->lay.size[t];
		double d = 0, s = 1e-12;
		for (uint64_t i = o; i < o + n; i++) {
			double e = fabs(a[i] - b[i]) - (bf16 ? 0.08 * fabs(b[i]) : 0);
			d = fmax(d, e);
			s = fmax(s, fabs(b[i]));
		}
		if (d / s > w) {
			w = d / s;
			*worst = gpt2_tensor_name(t);
		}
	}
	return w;
}

static void one_step(int precision, int recompute, float **grads_out)
{
	struct gpt2_config c = small_config();
	struct gpt2_model cm, gm;
	new_model(&cm, &c);
	new_model(&gm, &c);
	gpt2_setup(&cm, TB, TT, 0);
	gpu_start(&gm, precision, 0, recompute);
	uint32_t tok[TB * TT];
	batch(tok, 0, c.vocab_size);
	const char *name = precision == GPT2_BF16 ? "bf16" : "fp32", *w = "";
	float lc = gpt2_forward(&cm, tok, TB, TT), lg = cu->forward(&gm, tok, TB, TT);
	double tol = precision == GPT2_BF16 ? 0.02 : 1e-5;
	ok(fabs(lg - lc) <= tol * fabs(lc) + (precision == GPT2_BF16 ? 0.08 * fabs(lc) : 0),
	   "%s%s: loss %.7f, the CPU's %.7f", name, recompute ? " recompute" : "", lg, lc);
	gpt2_backward(&cm, 1.0f);
	cu->backward(&gm, 1.0f);
	gm.grads = calloc(gm.lay.total, sizeof(float));
	cu->to_host(&gm);
	double e = tensor_err(&gm, gm.grads, cm.grads, precision == GPT2_BF16, &w);
	ok(e <= (precision == GPT2_BF16 ? 0.02 : 1e-5), "%s%s: every gradient tensor (worst %s, %.2g)",
	   name, recompute ? " recompute" : "", w, e);
	double nc = gpt2_grad_norm(&cm), ng = cu->grad_norm(&gm);
	ok(fabs(ng - nc) <= (precision == GPT2_BF16 ? 0.1 : 1e-5) * nc, "%s: gradient norm %.6g, the CPU's %.6g",
	   name, ng, nc);
	gpt2_adamw(&cm, 1, 1e-3f, 0.1f, 1.0f);
	cu->adamw(&gm, 1, 1e-3f, 0.1f, 1.0f);
	cu->to_host(&gm);
	e = tensor_err(&gm, gm.params, cm.params, precision == GPT2_BF16, &w);
	ok(e <= (precision == GPT2_BF16 ? 0.02 : 1e-5), "%s: parameters after AdamW (worst %s, %.2g)",
	   name, w, e);
	if (grads_out) {
		*grads_out = gm.grads;
		gm.grads = NULL;
	}
	cu->release(&gm);
	gpt2_free(&gm);
	gpt2_free(&cm);
}

/* N steps on the GPU from step FROM (the model's host state already there); losses to L */
static void gpu_steps(struct gpt2_model *gm, int from, int n, float *L)
{
	uint32_t tok[TB * TT];
	for (int s = from; s < from + n; s++) {
		batch(tok, s, gm->cfg.vocab_size);
		cu->zero_grad(gm);
		L[s] = cu->forward(gm, tok, TB, TT);
		cu->backward(gm, 1.0f);
		double g = cu->grad_norm(gm);
		cu->adamw(gm, (uint64_t)s + 1, 1e-3f, 0.1f, g > 1 ? (float)(1 / g) : 1.0f);
	}
	cu->to_host(gm);
}

static int same_state(const struct gpt2_model *a, const struct gpt2_model *b)
{
	size_t n = a->lay.total * sizeof(float);
	return !memcmp(a->params, b->params, n) && !memcmp(a->mom, b->mom, n) &&
	       !memcmp(a->var, b->var, n);
}

static void test_steps(void)
{
	struct gpt2_config c = small_config();
	struct gpt2_model cm, straight, again, half;
	float Lc[10], Ls[10], La[10], Lh[10];
	new_model(&cm, &c);
	gpt2_setup(&cm, TB, TT, 0);
	uint32_t tok[TB * TT];
	for (int s = 0; s < 10; s++) {
		batch(tok, s, c.vocab_size);
		gpt2_zero_grad(&cm);
		Lc[s] = gpt2_forward(&cm, tok, TB, TT);
		gpt2_backward(&cm, 1.0f);
		double g = gpt2_grad_norm(&cm);
		gpt2_adamw(&cm, (uint64_t)s + 1, 1e-3f, 0.1f, g > 1 ? (float)(1 / g) : 1.0f);
	}
	new_model(&straight, &c);
	gpu_start(&straight, GPT2_BF16, 0, 0);
	gpu_steps(&straight, 0, 10, Ls);
	double worst = 0;
	for (int s = 0; s < 10; s++)
		worst = fmax(worst, fabs(Ls[s] - Lc[s]));
	ok(worst <= 0.05, "bf16: 10 AdamW steps' losses within 0.05 of the CPU's (worst %.4f)", worst);
	new_model(&again, &c);
	gpu_start(&again, GPT2_BF16, 0, 0);
	gpu_steps(&again, 0, 10, La);
	ok(same_state(&straight, &again) && !memcmp(Ls, La, sizeof(Ls)),
	   "bf16: two runs give the same bytes");
	/* 5 steps, then a new model from the host state (what a checkpoint holds), then 5 more */
	new_model(&half, &c);
	gpu_start(&half, GPT2_BF16, 0, 0);
	gpu_steps(&half, 0, 5, Lh);
	struct gpt2_model resumed;
	gpt2_create(&resumed, &c);
	memcpy(resumed.params, half.params, c.vocab_size ? half.lay.total * sizeof(float) : 0);
	resumed.mom = malloc(half.lay.total * sizeof(float));
	resumed.var = malloc(half.lay.total * sizeof(float));
	memcpy(resumed.mom, half.mom, half.lay.total * sizeof(float));
	memcpy(resumed.var, half.var, half.lay.total * sizeof(float));
	gpu_start(&resumed, GPT2_BF16, 5, 0);
	gpu_steps(&resumed, 5, 5, Lh);
	ok(same_state(&straight, &resumed) && !memcmp(Ls, Lh, sizeof(Ls)),
	   "bf16: 10 steps straight equal 5 + resume + 5, bit for bit");
	struct gpt2_model *all[] = { &straight, &again, &half, &resumed };
	for (int i = 0; i < 4; i++) {
		cu->release(all[i]);
		gpt2_free(all[i]);
	}
	gpt2_free(&cm);
}

static void test_memory(void)
{
	struct gpt2_config c = small_config();
	for (int p = 0; p < 2; p++) {
		struct gpt2_model gm;
		new_model(&gm, &c);
		gpu_start(&gm, p ? GPT2_BF16 : GPT2_FP32, 0, p);
		struct gpt2_device_info d;
		struct plan_opts o = { .B = TB, .T = TT, .precision = p ? GPT2_BF16 : GPT2_FP32, .recompute = p };
		struct gpt2_plan pl;
		gpt2_plan(&c, &o, &pl);
		ok(!cu->info(&gm, &d) && d.mem_used == pl.total,
		   "%s: the backend holds %llu bytes, the plan says %llu", p ? "bf16 recompute" : "fp32",
		   (unsigned long long)d.mem_used, (unsigned long long)pl.total);
		cu->release(&gm);
		gpt2_free(&gm);
	}
}

/* ---- data parallelism on one rank ---- */

static void one_rank_sum(void *p, uint64_t n, int dbl)
{
	(void)p, (void)n, (void)dbl;
}

static void one_rank_bcast(void *p, uint64_t n, int root)
{
	(void)p, (void)n, (void)root;
}

static const struct gpt2_comm one_rank = { .rank = 0, .size = 1, .allreduce_host = one_rank_sum,
					   .bcast_host = one_rank_bcast };

enum { DIST_NONE, DIST_ALLREDUCE, DIST_BUCKETS, DIST_ZERO, DIST_ZERO_BUCKETS, DIST_N };
static const char *const dist_names[DIST_N] = {
	"plain", "all-reduce in one call", "all-reduce in buckets", "ZeRO-1 in one call",
	"ZeRO-1 in buckets"
};

static void dist_start(struct gpt2_model *m, int precision, int mode, uint64_t step)
{
	if (mode != DIST_NONE) {
		struct gpt2_dist d = { .zero = mode >= DIST_ZERO,
				       .overlap = mode == DIST_BUCKETS || mode == DIST_ZERO_BUCKETS,
				       .accum = 2, .bucket_bytes = 1 };	/* a bucket a layer */
		cu->set_dist(m, &one_rank, &d);
	}
	gpu_start(m, precision, step, 0);
}

/* steps FROM..FROM+N-1 as the trainer takes them: 2 micro-batches, the exchange, the norm,
 * AdamW; losses to L */
static void dist_steps(struct gpt2_model *m, int from, int n, float *L)
{
	uint32_t tok[TB * TT];
	for (int s = from; s < from + n; s++) {
		cu->zero_grad(m);
		L[s] = 0;
		for (int a = 0; a < 2; a++) {
			batch(tok, 2 * s + a, m->cfg.vocab_size);
			L[s] += cu->forward(m, tok, TB, TT);
			cu->backward(m, 0.5f);
		}
		cu->allreduce_grads(m, &one_rank);
		double g = cu->grad_norm(m);
		cu->adamw(m, (uint64_t)s + 1, 1e-3f, 0.1f, g > 1 ? (float)(1 / g) : 1.0f);
	}
	cu->to_host(m);
}

static void test_dist(int precision)
{
	struct gpt2_config c = small_config();
	struct gpt2_model m[DIST_N];
	float L[DIST_N][3];
	const char *pn = precision == GPT2_BF16 ? "bf16" : "fp32";
	for (int k = 0; k < DIST_N; k++) {
		new_model(&m[k], &c);
		dist_start(&m[k], precision, k, 0);
		dist_steps(&m[k], 0, 3, L[k]);
	}
	for (int k = 1; k < DIST_N; k++)
		ok(same_state(&m[0], &m[k]) && !memcmp(L[0], L[k], sizeof(L[0])),
		   "%s, one rank: 3 steps with the %s equal the plain steps bit for bit", pn,
		   dist_names[k]);
	ok(m[DIST_ZERO].opt_hi == m[DIST_ZERO].lay.total && m[DIST_ZERO].opt_lo == 0,
	   "%s, one rank: ZeRO's host moments are the one shard, every element", pn);
	/* 2 steps, the host state (a checkpoint's: whole moments) into a new ZeRO model, 1 more */
	struct gpt2_model half, resumed;
	float Lh[3];
	new_model(&half, &c);
	dist_start(&half, precision, DIST_ZERO_BUCKETS, 0);
	dist_steps(&half, 0, 2, Lh);
	gpt2_create(&resumed, &c);
	size_t bytes = half.lay.total * sizeof(float);
	memcpy(resumed.params, half.params, bytes);
	resumed.mom = malloc(bytes);
	resumed.var = malloc(bytes);
	memcpy(resumed.mom, half.mom, bytes);
	memcpy(resumed.var, half.var, bytes);
	dist_start(&resumed, precision, DIST_ZERO_BUCKETS, 2);
	dist_steps(&resumed, 2, 1, Lh);
	ok(same_state(&m[0], &resumed) && !memcmp(L[0], Lh, sizeof(Lh)),
	   "%s, one rank: ZeRO-1, 2 steps + resume + 1 equal 3 plain steps bit for bit", pn);
	struct gpt2_device_info d;
	struct plan_opts o = { .B = TB, .T = TT, .precision = precision, .world = 1, .zero = 1 };
	struct gpt2_plan pl;
	gpt2_plan(&c, &o, &pl);
	ok(!cu->info(&m[DIST_ZERO], &d) && d.mem_used == pl.total,
	   "%s, one rank: ZeRO-1 holds %llu bytes, the plan says %llu", pn,
	   (unsigned long long)d.mem_used, (unsigned long long)pl.total);
	for (int k = 0; k < DIST_N; k++) {
		cu->release(&m[k]);
		gpt2_free(&m[k]);
	}
	struct gpt2_model *rest[] = { &half, &resumed };
	for (int i = 0; i < 2; i++) {
		cu->release(rest[i]);
		gpt2_free(rest[i]);
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* tokens/s of training steps on random tokens for one shape; 0 when B does not fit. DIST: the
 * steps as set_dist makes them on one rank (DIST_ZERO*: ZeRO-1, whose reduction on one rank is
 * a copy; the buckets of PLAN_BUCKET_BYTES), what a many-GPU step costs beyond the wire. */
static void bench_shape(const char *preset, int B, int T, int recompute, int dist)
{
	struct gpt2_config c;
	gpt2_preset(preset, &c);
	struct plan_opts o = { .B = (uint64_t)B, .T = (uint64_t)T, .precision = GPT2_BF16,
			       .recompute = recompute, .world = 1, .zero = dist >= DIST_ZERO };
	struct gpt2_plan pl;
	gpt2_plan(&c, &o, &pl);
	struct gpt2_model m;
	gpt2_create(&m, &c);
	gpt2_init_weights(&m, 1);
	struct gpt2_device_info d;
	cu->info(&m, &d);
	if (pl.total > d.mem_total * 0.95) {
		printf("%-18s B=%-3d T=%-5d does not fit (%.1f GiB planned)\n", preset, B, T,
		       pl.total / 1073741824.0);
		gpt2_free(&m);
		return;
	}
	if (dist != DIST_NONE) {
		struct gpt2_dist dd = { .zero = dist >= DIST_ZERO,
					.overlap = dist == DIST_BUCKETS || dist == DIST_ZERO_BUCKETS };
		cu->set_dist(&m, &one_rank, &dd);
	}
	cu->set_precision(&m, GPT2_BF16, 1, 0);
	cu->setup(&m, B, T, recompute);
	cu->from_host(&m);
	uint32_t *tok = malloc((size_t)B * T * sizeof(uint32_t));
	for (int i = 0; i < B * T; i++)
		tok[i] = (uint32_t)((i * 2654435761u) % c.vocab_size);
	double t0 = 0;
	int steps = 4;
	for (int s = 0; s < steps; s++) {
		if (s == 1)
			t0 = now();	/* the first step warms up cuBLASLt */
		cu->zero_grad(&m);
		cu->forward(&m, tok, B, T);
		cu->backward(&m, 1.0f);
		cu->allreduce_grads(&m, &one_rank);
		cu->grad_norm(&m);
		cu->adamw(&m, (uint64_t)s + 1, 1e-4f, 0.1f, 1.0f);
	}
	double dt = (now() - t0) / (steps - 1), tps = (double)B * T / dt;
	cu->info(&m, &d);
	double mfu = mfu_ratio(tps, gpt2_flops_per_token(&c, T), mfu_peak_bf16_tflops(d.name));
	printf("%-18s B=%-3d T=%-5d %s %10.0f tok/s  MFU %5.1f%%  peak %6.2f GiB (planned %.2f)%s%s\n",
	       preset, B, T, recompute ? "recompute" : "         ", tps, 100 * mfu,
	       d.mem_peak / 1073741824.0, pl.total / 1073741824.0, dist ? "  one rank, " : "",
	       dist ? dist_names[dist] : "");
	fflush(stdout);
	free(tok);
	cu->release(&m);
	gpt2_free(&m);
}

/* ---- generation ---- */

enum { GP = 9, GSTEPS = 256 };	/* prompt tokens, new tokens */

static struct gpt2_config gen_config(void)
{
	struct gpt2_config c = small_config();
	c.n_ctx = GP + GSTEPS + 8;
	return c;
}

/* max |a - b| / max(1, max |b|) over N values, as backend.h's tolerance measures */
static double logit_err(const float *a, const float *b, size_t n)
{
	double d = 0, s = 1;
	for (size_t i = 0; i < n; i++) {
		d = fmax(d, fabs(a[i] - b[i]));
		s = fmax(s, fabs(b[i]));
	}
	return d / s;
}

/* A random model with its weights tripled: the initialisation's own logits are so flat that
 * greedy decoding falls into a loop of two tokens; these take about 60 distinct ones in 256
 * steps, the best two at least 1e-4 of the logits' scale apart (a margin of 100 over fp32's
 * differences) */
static void sharp_model(struct gpt2_model *m, const struct gpt2_config *c)
{
	new_model(m, c);
	for (uint64_t i = 0; i < m->lay.total; i++)
		m->params[i] *= 3;
}

static void gen_prompt(uint32_t *p, int n, uint32_t V, int seed)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint32_t)((i * 2654435761u + (uint32_t)seed * 40503u) % V);
}

/* B rows sampled with O from the prompt of NP tokens, as complete.c batches them: row 0
 * prefilled, the others copies of it, then STEPS steps of one token a row, row b drawing from
 * stream b of SEED; the tokens to OUT [B][STEPS], each step's logits to LOGITS [STEPS][B][V]
 * (NULL: not kept); the seconds of the prefill and of the steps to *PRE and *DEC */
static void gen_rows(const struct gpt2_backend *be, const struct gpt2_model *m, int B,
		     const uint32_t *prompt, int np, int steps, const struct sample_opts *o,
		     uint64_t seed, uint32_t *out, float *logits, double *pre, double *dec)
{
	uint32_t V = m->cfg.vocab_size;
	struct gpt2_kv *kv = be->kv_new(m, B, np + steps);
	float *l = malloc((size_t)B * V * sizeof(float));
	int *rows = malloc((size_t)B * sizeof(int)), nth = omp_get_max_threads();
	uint32_t *next = malloc((size_t)B * sizeof(uint32_t));
	struct sample_rng *rng = malloc((size_t)B * sizeof(*rng));
	struct sampler **sm = malloc((size_t)nth * sizeof(*sm));
	for (int t = 0; t < nth; t++)
		sm[t] = sampler_new(V);
	double t0 = now();
	int zero = 0;
	be->kv_forward(kv, &zero, 1, prompt, np, l, 0);
	for (int b = 0; b < B; b++) {
		rows[b] = b;
		sample_seed(&rng[b], seed, (uint64_t)b);
		if (b) {
			be->kv_copy_row(kv, b, 0);
			memcpy(l + (size_t)b * V, l, V * sizeof(float));
		}
	}
	double t1 = now();
	for (int s = 0; s < steps; s++) {
		if (logits)
			memcpy(logits + (size_t)s * B * V, l, (size_t)B * V * sizeof(float));
		#pragma omp parallel for schedule(dynamic, 1) if (B > 1)
		for (int b = 0; b < B; b++)
			next[b] = sample_token(sm[omp_get_thread_num()], l + (size_t)b * V, o, &rng[b]);
		for (int b = 0; b < B; b++)
			out[(size_t)b * steps + s] = next[b];
		if (s + 1 < steps)
			be->kv_forward(kv, rows, B, next, 1, l, 0);
	}
	*pre = t1 - t0;
	*dec = now() - t1;
	for (int t = 0; t < nth; t++)
		sampler_free(sm[t]);
	free(sm);
	free(rng);
	free(next);
	free(rows);
	free(l);
	be->kv_free(kv);
}

static void test_greedy(void)
{
	struct gpt2_config c = gen_config();
	struct gpt2_model m;
	sharp_model(&m, &c);
	uint32_t prompt[GP], tc[GSTEPS], tg[GSTEPS];
	gen_prompt(prompt, GP, c.vocab_size, 1);
	size_t nl = (size_t)GSTEPS * c.vocab_size;
	float *lc = malloc(nl * sizeof(float)), *lg = malloc(nl * sizeof(float));
	struct sample_opts greedy = { 0, 0, 1 };
	double t0, t1;
	gen_rows(&gpt2_cpu_backend, &m, 1, prompt, GP, GSTEPS, &greedy, 0, tc, lc, &t0, &t1);
	gen_rows(cu, &m, 1, prompt, GP, GSTEPS, &greedy, 0, tg, lg, &t0, &t1);
	int same = 0, distinct = 0;
	while (same < GSTEPS && tc[same] == tg[same])
		same++;
	for (int i = 0; i < GSTEPS; i++) {
		int j = 0;
		while (j < i && tc[j] != tc[i])
			j++;
		distinct += j == i;
	}
	ok(same == GSTEPS, "generation fp32: %d greedy tokens (%d distinct) equal the CPU's (first "
	   "%d agree)", GSTEPS, distinct, same);
	/* logits compared while both saw the same tokens */
	double e = logit_err(lg, lc, (size_t)(same < GSTEPS ? same + 1 : GSTEPS) * c.vocab_size);
	ok(e <= 1e-5, "generation fp32: every step's logits within 1e-5 of the CPU's (%.2g)", e);
	free(lc);
	free(lg);
	gpt2_free(&m);
}

/* rows prefilled apart (one with every position's logits), one copied, then stepped together */
static void test_rows(void)
{
	struct gpt2_config c = gen_config();
	struct gpt2_model m;
	new_model(&m, &c);
	uint32_t V = c.vocab_size, pa[12], pb[7], step[3 * 4];
	gen_prompt(pa, 12, V, 2);
	gen_prompt(pb, 7, V, 3);
	for (int i = 0; i < 12; i++)
		step[i] = (uint32_t)(i * 97 + 5) % V;
	const struct gpt2_backend *bes[2] = { &gpt2_cpu_backend, cu };
	float *out[2];
	size_t n = (size_t)(7 + 4 * 3 + 1) * V;
	for (int k = 0; k < 2; k++) {
		const struct gpt2_backend *be = bes[k];
		float *o = out[k] = calloc(n, sizeof(float));
		struct gpt2_kv *kv = be->kv_new(&m, 4, 40);
		int r0 = 0, r1 = 1, r3 = 3, rows[3] = { 3, 1, 0 };
		be->kv_forward(kv, &r0, 1, pa, 12, NULL, 0);
		be->kv_forward(kv, &r3, 1, pb, 7, o, 1);		/* [7][V] */
		be->kv_copy_row(kv, r1, r0);
		for (int s = 0; s < 4; s++)			/* [4][3][V] */
			be->kv_forward(kv, rows, 3, step + 3 * s, 1, o + (size_t)(7 + 3 * s) * V, 0);
		be->kv_reset(kv);
		be->kv_forward(kv, &r1, 1, pa, 12, o + (size_t)19 * V, 0);	/* [1][V] */
		ok(be->kv_len(kv, 1) == 12 && be->kv_len(kv, 0) == 0, "%s: rows' lengths after a reset",
		   be->name);
		be->kv_free(kv);
	}
	double e = logit_err(out[1], out[0], n);
	ok(e <= 1e-5, "generation fp32: rows prefilled apart, copied, stepped together: the CPU's "
	   "logits within 1e-5 (%.2g)", e);
	free(out[0]);
	free(out[1]);
	gpt2_free(&m);
}

static void test_sampling(void)
{
	struct gpt2_config c = gen_config();
	struct gpt2_model m;
	sharp_model(&m, &c);
	enum { SB = 16, SS = 64 };
	uint32_t prompt[GP], *tc = malloc(SB * SS * 4), *tg = malloc(SB * SS * 4);
	gen_prompt(prompt, GP, c.vocab_size, 4);
	struct sample_opts o = { 0.8, 0, 0.95 };
	double t0, t1;
	gen_rows(&gpt2_cpu_backend, &m, SB, prompt, GP, SS, &o, 1234, tc, NULL, &t0, &t1);
	gen_rows(cu, &m, SB, prompt, GP, SS, &o, 1234, tg, NULL, &t0, &t1);
	int diff = 0;
	for (int i = 0; i < SB * SS; i++)
		diff += tc[i] != tg[i];
	ok(!diff, "generation fp32: %d rows x %d sampled tokens (T 0.8, top-p 0.95) equal the CPU's "
	   "from the same seeds (%d differ)", SB, SS, diff);
	free(tc);
	free(tg);
	gpt2_free(&m);
}

static void test_kv_memory_bf16(void)
{
	struct gpt2_config c = gen_config();
	struct gpt2_model m;
	new_model(&m, &c);
	struct gpt2_kv_plan pl;
	struct gpt2_device_info d;
	gpt2_plan_kv(&c, 5, 200, GPT2_FP32, &pl);
	struct gpt2_kv *kv = cu->kv_new(&m, 5, 200);
	ok(!cu->info(&m, &d) && d.mem_used == pl.total, "generation: a state holds %llu bytes, "
	   "the plan says %llu", (unsigned long long)d.mem_used, (unsigned long long)pl.total);
	cu->kv_free(kv);
	ok(!cu->info(&m, &d) && d.mem_used == 0, "generation: nothing held once freed (%llu)",
	   (unsigned long long)d.mem_used);
	/* bf16: the prompt's logits against the fp32 CPU's */
	uint32_t prompt[GP];
	gen_prompt(prompt, GP, c.vocab_size, 5);
	float *lc = malloc((size_t)GP * c.vocab_size * sizeof(float));
	float *lg = malloc((size_t)GP * c.vocab_size * sizeof(float));
	int zero = 0;
	kv = gpt2_cpu_backend.kv_new(&m, 1, GP);
	gpt2_cpu_backend.kv_forward(kv, &zero, 1, prompt, GP, lc, 1);
	gpt2_cpu_backend.kv_free(kv);
	m.infer_bf16 = cpu_bf16_model_new(&m);
	kv = cu->kv_new(&m, 1, GP);
	cu->kv_forward(kv, &zero, 1, prompt, GP, lg, 1);
	cu->kv_free(kv);
	double e = logit_err(lg, lc, (size_t)GP * c.vocab_size);
	ok(e <= 0.05, "generation bf16: the prompt's logits within 5%% of the fp32 CPU's (%.2g)", e);
	free(lc);
	free(lg);
	gpt2_free(&m);
}

/* tokens/s of B rows of 256 tokens after a 128-token prompt, greedy (the device's rate) and
 * sampled with T 0.8 and top-p 0.95 on the host (random weights spread the nucleus over most
 * of the vocabulary, the sampler's slowest case: a trained model's is far smaller) */
static void bench_generate(int B, int bf16)
{
	struct gpt2_config c;
	gpt2_preset("gpt2", &c);
	struct gpt2_model m;
	gpt2_create(&m, &c);
	gpt2_init_weights(&m, 1);
	if (bf16)
		m.infer_bf16 = cpu_bf16_model_new(&m);
	enum { NP = 128, NS = 256 };
	uint32_t prompt[NP], *out = malloc((size_t)B * NS * sizeof(uint32_t));
	gen_prompt(prompt, NP, c.vocab_size, 6);
	struct gpt2_kv_plan pl;
	gpt2_plan_kv(&c, (uint64_t)B, NP + NS, bf16 ? GPT2_BF16 : GPT2_FP32, &pl);
	const struct sample_opts opts[2] = { { 0, 0, 1 }, { 0.8, 0, 0.95 } };
	for (int k = 0; k < 2; k++) {
		double pre, dec;
		gen_rows(cu, &m, B, prompt, NP, NS, &opts[k], 7, out, NULL, &pre, &dec);
		printf("generate gpt2 %s B=%-3d %d+%d %-16s prefill %8.0f tok/s  decode %8.0f tok/s  "
		       "(%.2f GiB planned)\n", bf16 ? "bf16" : "fp32", B, NP, NS,
		       k ? "T 0.8 top-p 0.95" : "greedy", NP / pre, (double)B * (NS - 1) / dec,
		       pl.total / 1073741824.0);
		fflush(stdout);
	}
	free(out);
	gpt2_free(&m);
}

/* What holds without a GPU: the table the tools select, and the refusals. */
static void test_table(void)
{
	is_str(cu->name, "cuda", "the backend is called cuda");
	ok(gpt2_backend_find("cuda") == cu, "the built-in table has it");
	ok(cu->open && cu->set_precision && cu->setup && cu->forward && cu->backward &&
	   cu->zero_grad && cu->allreduce_grads && cu->grad_norm && cu->adamw && cu->to_host &&
	   cu->from_host && cu->release && cu->info && cu->kv_new && cu->kv_free && cu->kv_reset &&
	   cu->kv_len && cu->kv_copy_row && cu->kv_forward && cu->set_dist,
	   "every function a trainer and a generator call is there");
	ok(!cu->host_memory && !cu->adamw_range && cu->tolerance > 0,
	   "device memory, ZeRO through set_dist rather than adamw_range, a tolerance against cpu");
	ok(cu->kv_new != gpt2_cpu_backend.kv_new && cu->kv_forward != gpt2_cpu_backend.kv_forward,
	   "generation is the device's own, not the CPU backend's");
	char *err = NULL;
	const struct gpt2_backend *b = gpt2_backend_select("cuda:1023", &err);
	ok(!b && err && strstr(err, "device 'cuda:1023'"), "cuda:1023 refused, named: %s",
	   err ? err : "(no message)");
	free(err);
}

int main(int argc, char **argv)
{
	char *err = NULL;
	if (!&gpt2_cuda_backend) {
		printf("1..0 # SKIP this build has no CUDA backend (built without nvcc)\n");
		return 0;
	}
	cu = &gpt2_cuda_backend;
	if (argc == 1)
		test_table();
	if (cu->open(-1, &err)) {
		if (argc > 1) {
			printf("1..0 # SKIP %s\n", err);
			free(err);
			return 0;
		}
		ok(strstr(err, "device 'cuda'") != NULL, "no GPU here: %s", err);
		free(err);
		return done_testing();
	}
	if (argc > 1 && !strcmp(argv[1], "--bench")) {
		struct gpt2_model m = { 0 };
		struct gpt2_device_info d;
		cu->info(&m, &d);
		printf("device: %s, %.0f GiB, bf16 peak %s\n", d.name, d.mem_total / 1073741824.0,
		       mfu_peak_text(d.name));
		bench_shape("gpt2", 8, 1024, 0, DIST_NONE);
		bench_shape("gpt2", 16, 1024, 0, DIST_NONE);
		bench_shape("gpt2", 32, 1024, 0, DIST_NONE);
		for (int k = DIST_ALLREDUCE; k < DIST_N; k++)
			bench_shape("gpt2", 16, 1024, 0, k);
		bench_shape("codeparrot", 4, 1024, 1, DIST_NONE);
		bench_shape("codeparrot", 4, 1024, 1, DIST_ZERO_BUCKETS);
		int batches[] = { 1, 16, 200 };
		for (int p = 0; p < 2; p++)
			for (int i = 0; i < 3; i++)
				bench_generate(batches[i], p);
		return 0;
	}
	one_step(GPT2_FP32, 0, NULL);
	float *g0 = NULL, *g1 = NULL;
	one_step(GPT2_BF16, 0, &g0);
	one_step(GPT2_BF16, 1, &g1);
	struct gpt2_config c = small_config();
	struct gpt2_layout lay;
	gpt2_layout(&c, &lay);
	ok(g0 && g1 && !memcmp(g0, g1, lay.total * sizeof(float)),
	   "bf16: --recompute gives the same gradients bit for bit");
	free(g0);
	free(g1);
	test_steps();
	test_memory();
	test_dist(GPT2_FP32);
	test_dist(GPT2_BF16);
	test_greedy();
	test_rows();
	test_sampling();
	test_kv_memory_bf16();
	return done_testing();
}
