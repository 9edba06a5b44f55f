/* test-cuda.c: the CUDA backend against the CPU backend on this machine's GPU; the whole test
 * is skipped, with its reason, where the build has no CUDA backend or the machine no GPU.
 *   - fp32: one training step's loss, every gradient tensor, the gradient norm and the
 *     parameters after AdamW within relative 1e-5 of the CPU's (max |g - c| / max |c| per
 *     tensor), with and without --recompute (the two bit for bit equal on the GPU);
 *   - bf16: the same step within |g - c| <= tol + 0.08 |c| per tensor (tol 2% of the tensor's
 *     largest value), and 10 AdamW steps' losses within 0.05 of the CPU's;
 *   - resume: 10 steps straight equal 5, a copy of the host state into a new model, and 5 more,
 *     bit for bit (master weights and moments), and two runs equal each other;
 *   - the memory the backend holds equals cp-train --plan's total.
 * With --bench it prints instead the table scripts/gpu-check shows: tokens/s, MFU and peak
 * memory of GPT-2 124M at T=1024 and of the 1.5B shape at a small batch. */
#include "tap.h"
#include "base/die.h"
#include "model/backend.h"
#include "model/gpt2.h"
#include "model/mfu.h"
#include "model/plan.h"

#include <math.h>
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

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* tokens/s of training steps on random tokens for one shape; 0 when B does not fit */
static void bench_shape(const char *preset, int B, int T, int recompute)
{
	struct gpt2_config c;
	gpt2_preset(preset, &c);
	struct plan_opts o = { .B = (uint64_t)B, .T = (uint64_t)T, .precision = GPT2_BF16, .recompute = recompute };
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
		cu->grad_norm(&m);
		cu->adamw(&m, (uint64_t)s + 1, 1e-4f, 0.1f, 1.0f);
	}
	double dt = (now() - t0) / (steps - 1), tps = (double)B * T / dt;
	cu->info(&m, &d);
	double mfu = mfu_ratio(tps, gpt2_flops_per_token(&c, T), mfu_peak_bf16_tflops(d.name));
	printf("%-18s B=%-3d T=%-5d %s %10.0f tok/s  MFU %5.1f%%  peak %6.2f GiB (planned %.2f)\n",
	       preset, B, T, recompute ? "recompute" : "         ", tps, 100 * mfu,
	       d.mem_peak / 1073741824.0, pl.total / 1073741824.0);
	fflush(stdout);
	free(tok);
	cu->release(&m);
	gpt2_free(&m);
}

/* What holds without a GPU: the table the tools select, and the refusals. */
static void test_table(void)
{
	is_str(cu->name, "cuda", "the backend is called cuda");
	ok(gpt2_backend_find("cuda") == cu, "the built-in table has it");
	ok(cu->open && cu->set_precision && cu->setup && cu->forward && cu->backward &&
	   cu->zero_grad && cu->allreduce_grads && cu->grad_norm && cu->adamw && cu->to_host &&
	   cu->from_host && cu->release && cu->info && cu->kv_new && cu->kv_forward,
	   "every function a trainer and a generator call is there");
	ok(!cu->host_memory && !cu->adamw_range && cu->tolerance > 0,
	   "device memory, no ZeRO shard step, a tolerance against cpu");
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
		bench_shape("gpt2", 8, 1024, 0);
		bench_shape("gpt2", 16, 1024, 0);
		bench_shape("gpt2", 32, 1024, 0);
		bench_shape("codeparrot", 4, 1024, 1);
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
	return done_testing();
}
