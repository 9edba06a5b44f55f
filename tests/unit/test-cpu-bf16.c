/* test-cpu-bf16.c: the CPU's bf16 products (model/cpu-bf16.h) against a product in double of
 * the same bf16-rounded operands (exact to the fp32 sums' rounding) and of the fp32 operands
 * (bf16's own rounding), over shapes with odd inputs and outputs that fill no panel (M 1..9,
 * the accumulate and bias forms, the transposed wte read); the AVX-512 BF16 kernel against
 * the scalar loop, the AVX2 kernel its bytes; the same bytes on 1 and 2 threads; and the packed model: its weights where
 * cpu_bf16_weight says; the product with the GELU in its store against the product then
 * k_gelu, and the bf16 path's attention against k_attn_row (the kernels and the fallback);
 * and logits of the CPU backend's inference within bf16's rounding of
 * fp32's, with the same greedy choices. */
#include "tap.h"
#include "model/backend.h"
#include "model/bf16.h"
#include "model/cpu-bf16.h"
#include "model/gpt2.h"
#include "model/kernels.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((double)(rng >> 11) * 0x1.0p-53 * 2 - 1);
}

static float round_bf16(float x)
{
	return cp_bf16_to_f32(cp_f32_to_bf16(x));
}

/* worst |y - ref| / scale over the outputs, for references from rounded (RB) operands and from
 * the fp32 ones (RF), scale the sum of |x w| */
static void check_shape(size_t M, size_t IC, size_t OC, int acc, int bias, int transposed)
{
	float *W = malloc(IC * OC * sizeof(float)), *x = malloc(M * IC * sizeof(float));
	float *b = malloc(OC * sizeof(float)), *y = malloc(M * OC * sizeof(float));
	float *y0 = malloc(M * OC * sizeof(float));
	uint16_t *P = malloc(cpu_bf16_packed_size(IC, OC) * sizeof(uint16_t));
	for (size_t i = 0; i < IC * OC; i++)
		W[i] = frand();
	for (size_t i = 0; i < M * IC; i++)
		x[i] = frand() * 3;
	for (size_t j = 0; j < OC; j++)
		b[j] = frand();
	for (size_t i = 0; i < M * OC; i++)
		y[i] = y0[i] = frand();
	/* transposed: W holds [OC][IC] (as wte), read as its [IC][OC] transpose */
	size_t RS = transposed ? 1 : OC, CS = transposed ? IC : 1;
	cpu_bf16_pack(P, W, IC, OC, RS, CS);
	cpu_bf16_linear(y, x, P, bias ? b : NULL, M, IC, OC, acc);
	double wb = 0, wf = 0;
	for (size_t m = 0; m < M; m++)
		for (size_t j = 0; j < OC; j++) {
			double rb = 0, rf = 0, sc = 1e-30;
			for (size_t i = 0; i < IC; i++) {
				float w = W[i * RS + j * CS], xi = x[m * IC + i];
				rb += (double)round_bf16(xi) * round_bf16(w);
				rf += (double)xi * w;
				sc += fabs((double)xi * w);
			}
			double add = (bias ? b[j] : 0) + (acc ? y0[m * OC + j] : 0);
			wb = fmax(wb, fabs(y[m * OC + j] - (rb + add)) / sc);
			wf = fmax(wf, fabs(y[m * OC + j] - (rf + add)) / sc);
		}
	ok(wb < 1e-5 && wf < 1.0 / 64, "%zu x %zu x %zu%s%s%s: %.1e of the rounded operands' product, "
	   "%.1e of fp32's", M, IC, OC, acc ? " acc" : "", bias ? " bias" : "",
	   transposed ? " transposed" : "", wb, wf);
	free(W);
	free(x);
	free(b);
	free(y);
	free(y0);
	free(P);
}

/* the kernel against the scalar loop, and 1 thread against 2 */
static void check_paths(void)
{
	enum { M = 5, IC = 77, OC = 203 };
	float *W = malloc(IC * OC * 4), x[M * IC], a[M * OC], s[M * OC];
	uint16_t *P = malloc(cpu_bf16_packed_size(IC, OC) * 2);
	for (int i = 0; i < IC * OC; i++)
		W[i] = frand();
	for (int i = 0; i < M * IC; i++)
		x[i] = frand();
	cpu_bf16_pack(P, W, IC, OC, OC, 1);
	cpu_bf16_vector(CPU_BF16_SCALAR);
	cpu_bf16_linear(s, x, P, NULL, M, IC, OC, 0);
	for (int k = CPU_BF16_AVX2; k <= CPU_BF16_AVX512; k++) {
		if (cpu_bf16_vector(k) != k) {
			ok(1, "# skip this CPU has no %s kernel", cpu_bf16_kernel_name(k));
			continue;
		}
		cpu_bf16_linear(a, x, P, NULL, M, IC, OC, 0);
		double d = 0;
		for (int i = 0; i < M * OC; i++)
			d = fmax(d, fabs(a[i] - s[i]));
		/* AVX2 keeps the loop's order and roundings; the dot-product instruction does not */
		if (k == CPU_BF16_AVX2)
			ok(!memcmp(a, s, sizeof(a)), "AVX2 kernel: the scalar loop's bytes");
		else
			ok(d < 1e-4, "AVX-512 BF16 kernel and scalar loop agree (%.1e)", d);
	}
	cpu_bf16_vector(-1);
	int nt = omp_get_max_threads();
	free(W);
	free(P);
	/* big enough for the threads to share it */
	enum { BM = 9, BI = 256, BO = 1024 };
	float *BW = malloc(BI * BO * 4), *bx = malloc(BM * BI * 4), *o1 = malloc(BM * BO * 4);
	float *o2 = malloc(BM * BO * 4);
	uint16_t *BP = malloc(cpu_bf16_packed_size(BI, BO) * 2);
	for (int i = 0; i < BI * BO; i++)
		BW[i] = frand();
	for (int i = 0; i < BM * BI; i++)
		bx[i] = frand();
	cpu_bf16_pack(BP, BW, BI, BO, BO, 1);
	omp_set_num_threads(1);
	cpu_bf16_linear(o1, bx, BP, NULL, BM, BI, BO, 0);
	omp_set_num_threads(2);
	cpu_bf16_linear(o2, bx, BP, NULL, BM, BI, BO, 0);
	omp_set_num_threads(nt);
	ok(!memcmp(o1, o2, BM * BO * 4), "1 and 2 threads: the same bytes");
	free(BW);
	free(bx);
	free(o1);
	free(o2);
	free(BP);
}

/* cpu_bf16_linear_gelu: the bytes of cpu_bf16_linear then k_gelu, on the kernel and the loop */
static void check_gelu(void)
{
	enum { M = 3, IC = 70, OC = 150 };
	float *W = malloc(IC * OC * 4), x[M * IC], b[OC], g[M * OC], r[M * OC];
	uint16_t *P = malloc(cpu_bf16_packed_size(IC, OC) * 2);
	for (int i = 0; i < IC * OC; i++)
		W[i] = frand();
	for (int i = 0; i < M * IC; i++)
		x[i] = frand() * 2;
	for (int j = 0; j < OC; j++)
		b[j] = frand();
	cpu_bf16_pack(P, W, IC, OC, OC, 1);
	for (int vec = CPU_BF16_AVX512; vec >= CPU_BF16_SCALAR; vec--) {
		if (cpu_bf16_vector(vec) != vec)
			continue;	/* not on this CPU: check_paths says so */
		cpu_bf16_linear_gelu(g, x, P, b, M, IC, OC);
		cpu_bf16_linear(r, x, P, b, M, IC, OC, 0);
		gpt2_k_gelu(r, r, M * OC);
		ok(!memcmp(g, r, sizeof(g)), "%s: the GELU in the product's store, k_gelu's bytes",
		   cpu_bf16_kernel_name(vec));
	}
	cpu_bf16_vector(-1);
	free(W);
	free(P);
}

/* cpu_bf16_attn_row against k_attn_row: within fp32's rounding on the AVX-512 and AVX2
 * kernels (head size 64; key counts below, at and past their 8 a pass), the same bytes where
 * it falls back (the scalar path, other head sizes) */
static void check_attn(void)
{
	enum { NMAX = 300, STRIDE = 3 * 64 };
	float *k = malloc(NMAX * STRIDE * 4), *v = malloc(NMAX * STRIDE * 4), q[64];
	float a[NMAX], o[64], r[64];
	for (int i = 0; i < NMAX * STRIDE; i++) {
		k[i] = frand();
		v[i] = frand();
	}
	for (int i = 0; i < 64; i++)
		q[i] = frand() * 4;
	size_t ns[] = { 1, 7, 8, 17, NMAX };
	for (int vec = CPU_BF16_AVX512; vec >= CPU_BF16_SCALAR; vec--) {
		if (cpu_bf16_vector(vec) != vec)
			continue;
		int have = vec != CPU_BF16_SCALAR;
		for (size_t c = 0; c < sizeof(ns) / sizeof(ns[0]); c++) {
			size_t n = ns[c];
			cpu_bf16_attn_row(o, a, q, k, v, STRIDE, n, 64, 0.125f);
			gpt2_k_attn_row(r, a, q, k, v, STRIDE, n, 64, 0.125f);
			double d = 0;
			for (int i = 0; i < 64; i++)
				d = fmax(d, fabs(o[i] - r[i]));
			if (have)
				ok(d < 1e-5, "%s attention over %zu keys: within %.1e of k_attn_row",
				   cpu_bf16_kernel_name(vec), n, d);
			else
				ok(!memcmp(o, r, sizeof(o)), "%s attention over %zu keys: "
				   "k_attn_row's bytes", cpu_bf16_kernel_name(vec), n);
		}
	}
	cpu_bf16_vector(-1);
	cpu_bf16_attn_row(o, a, q, k, v, STRIDE, 9, 32, 0.2f);
	gpt2_k_attn_row(r, a, q, k, v, STRIDE, 9, 32, 0.2f);
	ok(!memcmp(o, r, 32 * sizeof(float)), "head size 32: k_attn_row's bytes");
	free(k);
	free(v);
}

static void check_model(void)
{
	struct gpt2_config c = { .vocab_size = 301, .n_ctx = 32, .n_layer = 2, .n_head = 2,
				 .n_embd = 48 };
	struct gpt2_model m;
	gpt2_create(&m, &c);
	gpt2_init_weights(&m, 5);
	for (uint64_t i = 0; i < m.lay.total; i++)	/* peaky logits: weights well above init's */
		m.params[i] *= 4;
	struct cpu_bf16_model *p = cpu_bf16_model_new(&m);
	/* the packed FC weight of layer 1 is that weight, rounded */
	const uint16_t *fc = cpu_bf16_weight(p, GPT2_FCW, 1);
	const float *w = m.params + gpt2_tensor_offset(&c, &m.lay, GPT2_FCW, 1);
	int same = 1;
	for (size_t i = 0; i < 48; i += 7)
		for (size_t j = 0; j < 192; j += 5) {
			size_t jp = j / CPU_BF16_PANEL, jj = j % CPU_BF16_PANEL;
			uint16_t got = fc[jp * 24 * CPU_BF16_PANEL * 2 + ((i / 2) * CPU_BF16_PANEL + jj) * 2 + i % 2];
			same &= got == cp_f32_to_bf16(w[i * 192 + j]);
		}
	ok(same, "the packed weight of layer 1's fc is its bf16 rounding, in panels of pairs");
	enum { N = 20 };
	uint32_t toks[N];
	for (int i = 0; i < N; i++)
		toks[i] = (uint32_t)(i * 37 % 301);
	float *lf = malloc(N * 301 * 4), *lb = malloc(N * 301 * 4), *ls = malloc(N * 301 * 4);
	int row = 0;
	struct gpt2_kv *kv = gpt2_cpu_backend.kv_new(&m, 1, N);
	gpt2_cpu_backend.kv_forward(kv, &row, 1, toks, N, lf, 1);
	m.infer_bf16 = p;
	/* the portable loops, then the AVX2 and AVX-512 kernels where the CPU has them */
	for (int vec = CPU_BF16_SCALAR; vec <= CPU_BF16_AVX512; vec++) {
		if (cpu_bf16_vector(vec) != vec)
			continue;
		gpt2_cpu_backend.kv_reset(kv);
		gpt2_cpu_backend.kv_forward(kv, &row, 1, toks, N, lb, 1);
		double d = 0, s = 0;
		int agree = 0;
		for (int t = 0; t < N; t++) {
			int af = 0, ab = 0;
			for (int v = 0; v < 301; v++) {
				d = fmax(d, fabs(lf[t * 301 + v] - lb[t * 301 + v]));
				s = fmax(s, fabs(lf[t * 301 + v]));
				af = lf[t * 301 + v] > lf[t * 301 + af] ? v : af;
				ab = lb[t * 301 + v] > lb[t * 301 + ab] ? v : ab;
			}
			agree += af == ab;
		}
		const char *path = cpu_bf16_kernel_name(vec);
		ok(d <= 0.05 * s, "%s: logits in bf16 within 5%% of the largest fp32 logit (%.3g of %.3g)",
		   path, d, s);
		ok(agree >= N - 1, "%s: greedy choices: %d of %d the same", path, agree, N);
		if (vec == CPU_BF16_SCALAR)
			memcpy(ls, lb, N * 301 * 4);
		else if (vec == CPU_BF16_AVX2)
			ok(!memcmp(ls, lb, N * 301 * 4), "AVX2: the portable loops' logits, byte for byte");
	}
	/* a token at a time (the decoding path) against the whole prompt at once */
	gpt2_cpu_backend.kv_reset(kv);
	double d = 0;
	for (int t = 0; t < N; t++) {
		float l1[301];
		gpt2_cpu_backend.kv_forward(kv, &row, 1, toks + t, 1, l1, 0);
		for (int v = 0; v < 301; v++)
			d = fmax(d, fabs(l1[v] - lb[t * 301 + v]));
	}
	ok(d == 0, "bf16, a token at a time: the prompt's logits (4 rows a panel pass there, 1 "
	   "here, each row's sums in the same order): %.1e", d);
	gpt2_cpu_backend.kv_free(kv);
	free(lf);
	free(lb);
	free(ls);
	gpt2_free(&m);	/* frees the packed weights too */
}

int main(void)
{
	size_t shapes[][3] = { { 1, 64, 64 }, { 1, 77, 203 }, { 3, 128, 130 }, { 4, 33, 1 },
			       { 9, 96, 300 }, { 5, 1, 65 } };
	for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++)
		check_shape(shapes[k][0], shapes[k][1], shapes[k][2], k % 2, k % 3 != 0, k == 4);
	check_paths();
	check_gelu();
	check_attn();
	check_model();
	return done_testing();
}
