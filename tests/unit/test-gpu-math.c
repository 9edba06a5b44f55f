/* test-gpu-math.c: the CUDA backend's arithmetic and planning, run on the host (no GPU), against
 * the CPU backend and against references written here:
 *   - flash-style attention rows (model/gpu-rows-impl.h, fp32 and bf16): the output against
 *     the CPU's attention, the logsumexp and the three gradients against a dense computation in
 *     double (softmax, then dV = P^T dO, dS = P (dP - rowsum(P dP)), dQ = dS K, dK = dS^T Q);
 *   - the classifier's logsumexp merged in pieces in two orders against the CPU's, its
 *     gradient against the softmax;
 *   - AdamW's element update bit for bit against the CPU backend's step on a model;
 *   - GELU bit for bit against the CPU's, its derivative against a central difference;
 *   - LayerNorm's output against the CPU's, its input gradient against a central difference;
 *   - the row-major to column-major product mapping for the four transposes, run through a
 *     column-major product written here, against a row-major product;
 *   - token buckets: every position once, grouped by token in increasing order;
 *   - the activation arena (plan_arena): aligned, disjoint, summing to the plan;
 *   - generation (model/gpu-infer.h): the key/value cache's offsets one-to-one onto the cache,
 *     a head's positions contiguous; one query over a cache in that layout against the CPU
 *     backend's attention (fp32) and within bf16's rounding (bf16); a call's tokens, rows and
 *     positions; the rows the output layer reads; the planned memory of 124M and 1.5B states
 *     of 200 rows x 384 tokens against the counts written out here. */
#include "tap.h"
#include "model/gpt2.h"
#include "model/gpu-host.h"
#include "model/gpu-infer.h"
#include "model/gpu-math.h"
#include "model/kernels.h"
#include "model/plan.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x243f6a8885a308d3ull;

static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) * 0x1.0p-53;
}

static float frand(void)
{
	return (float)(urand() * 2 - 1);
}

/* max |a - b| / max(1e-6, max |b|) */
static double rel_err(const float *a, const double *b, size_t n)
{
	double d = 0, s = 1e-6;
	for (size_t i = 0; i < n; i++) {
		if (fabs(a[i] - b[i]) > d)
			d = fabs(a[i] - b[i]);
		if (fabs(b[i]) > s)
			s = fabs(b[i]);
	}
	return d / s;
}

enum { AB = 2, AT = 9, AC = 12, ANH = 3, AHS = AC / ANH };

/* the dense reference: out, lse and the gradients of sum(out * dout) for one (b, h) */
static void attn_dense(const float *qkv, const float *dout, int b, int h, double scale,
		       double *out, double *lse, double *dqkv)
{
	double P[AT][AT], dP[AT][AT];
	const float *seq = qkv + (size_t)b * AT * 3 * AC;
	for (int t = 0; t < AT; t++) {
		double mx = -INFINITY, sum = 0;
		for (int u = 0; u <= t; u++) {
			double s = 0;
			for (int i = 0; i < AHS; i++)
				s += (double)seq[t * 3 * AC + h * AHS + i] * seq[u * 3 * AC + AC + h * AHS + i];
			P[t][u] = s * scale;
			mx = fmax(mx, P[t][u]);
		}
		for (int u = 0; u <= t; u++)
			sum += exp(P[t][u] - mx);
		lse[t] = mx + log(sum);
		for (int u = 0; u < AT; u++)
			P[t][u] = u <= t ? exp(P[t][u] - lse[t]) : 0;
		for (int i = 0; i < AHS; i++) {
			double o = 0;
			for (int u = 0; u <= t; u++)
				o += P[t][u] * seq[u * 3 * AC + 2 * AC + h * AHS + i];
			out[t * AHS + i] = o;
		}
	}
	for (int t = 0; t < AT; t++) {
		const float *d = dout + ((size_t)b * AT + t) * AC + h * AHS;
		double rs = 0;
		for (int u = 0; u <= t; u++) {
			double s = 0;
			for (int i = 0; i < AHS; i++)
				s += (double)d[i] * seq[u * 3 * AC + 2 * AC + h * AHS + i];
			dP[t][u] = s;
			rs += P[t][u] * s;
		}
		for (int u = 0; u <= t; u++) {
			double ds = P[t][u] * (dP[t][u] - rs) * scale;
			for (int i = 0; i < AHS; i++) {
				dqkv[(t * 3) * AHS + i] += ds * seq[u * 3 * AC + AC + h * AHS + i];
				dqkv[(u * 3 + 1) * AHS + i] += ds * seq[t * 3 * AC + h * AHS + i];
				dqkv[(u * 3 + 2) * AHS + i] += P[t][u] * d[i];
			}
		}
	}
}

static void test_attention(void)
{
	const size_t nq = (size_t)AB * AT * 3 * AC, no = (size_t)AB * AT * AC;
	float *qkv = malloc(nq * sizeof(float)), *dout = malloc(no * sizeof(float));
	float *out = malloc(no * sizeof(float)), *cpu = malloc(no * sizeof(float));
	float *att = malloc((size_t)AB * ANH * AT * AT * sizeof(float));
	float *dq = calloc(nq, sizeof(float)), lse[AB * ANH * AT];
	for (size_t i = 0; i < nq; i++)
		qkv[i] = 2 * frand();
	for (size_t i = 0; i < no; i++)
		dout[i] = frand();
	float scale = 1.0f / sqrtf((float)AHS) / 2;	/* as layer 1 with the inverse layer scale */
	gpt2_k_attn_fwd(cpu, att, qkv, AB, AT, AC, ANH, scale);
	double worst_o = 0, worst_l = 0, worst_d = 0, worst_cpu = 0;
	for (int b = 0; b < AB; b++)
		for (int h = 0; h < ANH; h++) {
			const float *seq = qkv + (size_t)b * AT * 3 * AC + h * AHS;
			double ro[AT * AHS], rl[AT], rd[AT * 3 * AHS] = { 0 };
			attn_dense(qkv, dout, b, h, scale, ro, rl, rd);
			float go[AT * AHS], gd[AT * 3 * AHS], co[AT * AHS];
			float *L = lse + (b * ANH + h) * AT;
			for (int t = 0; t < AT; t++) {
				cpg_f32_attn_fwd_row(go + t * AHS, L + t, seq + t * 3 * AC, seq + AC,
						     seq + 2 * AC, 3 * AC, t + 1, AHS, scale);
				memcpy(out + ((size_t)b * AT + t) * AC + h * AHS, go + t * AHS, sizeof(float) * AHS);
				memcpy(co + t * AHS, cpu + ((size_t)b * AT + t) * AC + h * AHS, sizeof(float) * AHS);
			}
			const float *oseq = out + (size_t)b * AT * AC + h * AHS;
			const float *dseq = dout + (size_t)b * AT * AC + h * AHS;
			for (int t = 0; t < AT; t++) {
				cpg_f32_attn_bwd_q_row(gd + t * 3 * AHS, seq + t * 3 * AC, seq + AC,
						       seq + 2 * AC, 3 * AC, oseq + t * AC, dseq + t * AC,
						       L[t], t + 1, AHS, scale);
				cpg_f32_attn_bwd_kv_row(gd + (t * 3 + 1) * AHS, gd + (t * 3 + 2) * AHS, seq,
							seq + t * 3 * AC + AC, seq + t * 3 * AC + 2 * AC,
							3 * AC, oseq, dseq, AC, L, t, AT, AHS, scale);
			}
			double cod[AT * AHS], gl[AT];
			for (int i = 0; i < AT * AHS; i++)
				cod[i] = go[i];
			for (int t = 0; t < AT; t++)
				gl[t] = L[t];
			worst_o = fmax(worst_o, rel_err(go, ro, AT * AHS));
			worst_cpu = fmax(worst_cpu, rel_err(co, cod, AT * AHS));
			float lf[AT];
			for (int t = 0; t < AT; t++)
				lf[t] = (float)gl[t];
			worst_l = fmax(worst_l, rel_err(lf, rl, AT));
			worst_d = fmax(worst_d, rel_err(gd, rd, AT * 3 * AHS));
		}
	ok(worst_o < 1e-5, "attention rows: output within 1e-5 of the dense reference (%.2g)", worst_o);
	ok(worst_cpu < 1e-5, "attention rows: output within 1e-5 of the CPU backend's (%.2g)", worst_cpu);
	ok(worst_l < 1e-6, "attention rows: logsumexp within 1e-6 (%.2g)", worst_l);
	ok(worst_d < 1e-5, "attention rows: dq, dk, dv within 1e-5 of the dense gradients (%.2g)", worst_d);

	/* bf16: the same rows on bf16 inputs, against the fp32 rows on those inputs */
	cp_bf16 *hq = malloc(nq * sizeof(cp_bf16));
	for (size_t i = 0; i < nq; i++) {
		hq[i] = cp_f32_to_bf16(qkv[i]);
		qkv[i] = cp_bf16_to_f32(hq[i]);
	}
	double worst_b = 0;
	for (int t = 0; t < AT; t++) {
		float f[AHS], l1, l2;
		cp_bf16 g[AHS];
		cpg_f32_attn_fwd_row(f, &l1, qkv + t * 3 * AC, qkv + AC, qkv + 2 * AC, 3 * AC, t + 1, AHS, scale);
		cpg_bf16_attn_fwd_row(g, &l2, hq + t * 3 * AC, hq + AC, hq + 2 * AC, 3 * AC, t + 1, AHS, scale);
		for (int i = 0; i < AHS; i++) {
			double e = fabs(cp_bf16_to_f32(g[i]) - f[i]) / (1e-3 + fabs(f[i]));
			worst_b = fmax(worst_b, e);
		}
		worst_b = fmax(worst_b, fabs(l1 - l2));
	}
	ok(worst_b <= 1.0 / 128, "bf16 attention rows: within bf16's rounding of the fp32 rows (%.2g)", worst_b);
	free(hq);
	free(qkv);
	free(dout);
	free(out);
	free(cpu);
	free(att);
	free(dq);
}

static void test_classifier(void)
{
	enum { V = 301, PIECES = 7 };
	float x[V];
	for (int v = 0; v < V; v++)
		x[v] = 6 * frand();
	float want = gpt2_k_logsumexp(x, V);
	/* PIECES threads' strided partials, merged in a tree and in reverse */
	struct cpg_lse part[PIECES];
	for (int p = 0; p < PIECES; p++) {
		part[p] = cpg_lse_empty();
		for (int v = p; v < V; v += PIECES)
			part[p] = cpg_lse_add(part[p], x[v]);
	}
	struct cpg_lse tree[PIECES], rev = cpg_lse_empty();
	memcpy(tree, part, sizeof(tree));
	for (int k = 4; k > 0; k >>= 1)
		for (int i = 0; i < k; i++)
			if (i + k < PIECES)
				tree[i] = cpg_lse_merge(tree[i], tree[i + k]);
	for (int p = PIECES; p-- > 0;)
		rev = cpg_lse_merge(rev, part[p]);
	double a = cpg_lse_value(tree[0]), b = cpg_lse_value(rev);
	ok(fabs(a - want) <= 2e-6 * fabs(want) && fabs(b - want) <= 2e-6 * fabs(want),
	   "classifier: logsumexp in pieces %.7g and %.7g, the CPU's %.7g", a, b, want);
	int tgt = 123;
	float s = 0.25f;
	double sum = 0, worst = 0;
	for (int v = 0; v < V; v++) {
		float d = cpg_xent_dlogit(x[v], want, v == tgt, s);
		double ref = (exp((double)x[v] - want) - (v == tgt)) * s;
		worst = fmax(worst, fabs(d - ref));
		sum += d;
	}
	ok(worst < 1e-7 && fabs(sum) < 1e-5,
	   "classifier: dlogits are (softmax - onehot) * scale (%.2g), summing to 0 (%.2g)", worst, sum);
}

static void test_adamw(void)
{
	struct gpt2_config c = { .vocab_size = 37, .n_ctx = 8, .n_layer = 2, .n_head = 2, .n_embd = 8 };
	struct gpt2_model m;
	gpt2_create(&m, &c);
	gpt2_init_weights(&m, 7);
	gpt2_setup(&m, 1, 4, 0);
	uint64_t n = m.lay.total;
	float *p = malloc(n * 4), *mo = calloc(n, 4), *va = calloc(n, 4);
	memcpy(p, m.params, n * 4);
	float lr = 3e-3f, wd = 0.1f;
	for (uint64_t t = 1; t <= 3; t++) {
		for (uint64_t i = 0; i < n; i++)
			m.grads[i] = frand() * (float)t;
		float gscale = t == 2 ? 0.5f : 1.0f;
		gpt2_adamw(&m, t, lr, wd, gscale);
		struct cpg_adamw a = cpg_adamw_consts(t, lr);
		for (int k = 0; k < GPT2_NT; k++) {
			float decay = gpt2_tensor_decays(k) ? 1 - lr * wd : 1;
			for (uint64_t i = m.lay.off[k]; i < m.lay.off[k] + m.lay.size[k]; i++)
				p[i] = cpg_adamw_elem(&a, p[i], m.grads[i], gscale, decay, &mo[i], &va[i]);
		}
	}
	ok(!memcmp(p, m.params, n * 4) && !memcmp(mo, m.mom, n * 4) && !memcmp(va, m.var, n * 4),
	   "adamw: 3 steps of the element update equal the CPU backend's bit for bit");
	free(p);
	free(mo);
	free(va);
	gpt2_free(&m);
}

static void test_gelu_ln(void)
{
	enum { N = 4096, C = 37 };
	float *x = malloc(N * 4), *y = malloc(N * 4);
	for (int i = 0; i < N; i++)
		x[i] = (float)(urand() * 16 - 8);
	gpt2_k_gelu(y, x, N);
	int same = 1;
	double worst = 0;
	for (int i = 0; i < N; i++) {
		same &= cpg_gelu(x[i]) == y[i];
		double h = 1e-3, xi = x[i];
		double g = 0.5 * (xi + h) * (1 + tanh(0.7978845608028654 * ((xi + h) + 0.044715 * pow(xi + h, 3)))) -
			   0.5 * (xi - h) * (1 + tanh(0.7978845608028654 * ((xi - h) + 0.044715 * pow(xi - h, 3))));
		worst = fmax(worst, fabs(cpg_gelu_bwd(x[i], 1.0f) - g / (2 * h)));
	}
	ok(same, "gelu: equal to the CPU's bit for bit");
	ok(worst < 1e-4, "gelu backward: within 1e-4 of a central difference (%.2g)", worst);

	float row[C], w[C], b[C], out[C], mean, rstd, d[C];
	for (int c = 0; c < C; c++) {
		row[c] = 3 * frand() + 1;
		w[c] = frand();
		b[c] = frand();
		d[c] = frand();
	}
	gpt2_k_layernorm(out, &mean, &rstd, row, w, b, 1, C);
	float s = 0, sq = 0;
	for (int c = 0; c < C; c++)
		s += row[c];
	float mu = s / C;
	for (int c = 0; c < C; c++)
		sq += (row[c] - mu) * (row[c] - mu);
	float rs = cpg_ln_rstd(sq, (float)C);
	double e = fabs(mu - mean) + fabs(rs - rstd) / rstd;
	for (int c = 0; c < C; c++)
		e = fmax(e, fabs(cpg_ln_out(row[c], mu, rs, w[c], b[c]) - out[c]));
	ok(e < 1e-6, "layernorm: output and statistics within 1e-6 of the CPU's (%.2g)", e);
	/* the input gradient of f(x) = sum d * LN(x) against central differences in double */
	float dm = 0, dnm = 0;
	for (int c = 0; c < C; c++) {
		dm += d[c] * w[c];
		dnm += d[c] * w[c] * (row[c] - mu) * rs;
	}
	dm /= C;
	dnm /= C;
	worst = 0;
	for (int j = 0; j < C; j++) {
		double f[2];
		for (int k = 0; k < 2; k++) {
			double xx[C], m2 = 0, v2 = 0, h = k ? 1e-4 : -1e-4;
			for (int c = 0; c < C; c++)
				xx[c] = row[c] + (c == j ? h : 0);
			for (int c = 0; c < C; c++)
				m2 += xx[c] / C;
			for (int c = 0; c < C; c++)
				v2 += (xx[c] - m2) * (xx[c] - m2) / C;
			f[k] = 0;
			for (int c = 0; c < C; c++)
				f[k] += d[c] * ((xx[c] - m2) / sqrt(v2 + 1e-5) * w[c] + b[c]);
		}
		double num = (f[1] - f[0]) / 2e-4;
		worst = fmax(worst, fabs(cpg_ln_dx(d[j], w[j], row[j], mu, rs, dm, dnm) - num));
	}
	ok(worst < 1e-3, "layernorm backward: within 1e-3 of a central difference (%.2g)", worst);
	free(x);
	free(y);
}

/* C[m, n] = op(A) op(B) + beta C, column-major, as cuBLASLt computes it */
static void colmajor_gemm(const struct gpu_gemm *g, const float *A, const float *B, float *C,
			  float beta)
{
	for (uint64_t i = 0; i < g->m; i++)
		for (uint64_t j = 0; j < g->n; j++) {
			double s = 0;
			for (uint64_t k = 0; k < g->k; k++) {
				float a = g->ta ? A[k + i * g->lda] : A[i + k * g->lda];
				float b = g->tb ? B[j + k * g->ldb] : B[k + j * g->ldb];
				s += (double)a * b;
			}
			C[i + j * g->ldc] = (float)(s + beta * C[i + j * g->ldc]);
		}
}

static void test_gemm_map(void)
{
	enum { M = 5, N = 7, K = 3 };
	int good = 1;
	for (int tx = 0; tx < 2; tx++)
		for (int tz = 0; tz < 2; tz++) {
			/* X is [M, K] or, transposed, stored [K, M]; Z is [K, N] or stored [N, K] */
			float X[M * K], Z[K * N], Y[M * N], R[M * N];
			uint64_t ldx = tx ? M : K, ldz = tz ? K : N;
			for (int i = 0; i < M * K; i++)
				X[i] = frand();
			for (int i = 0; i < K * N; i++)
				Z[i] = frand();
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++) {
					double s = 0;
					for (int k = 0; k < K; k++)
						s += (double)(tx ? X[k * M + i] : X[i * K + k]) *
						     (tz ? Z[j * K + k] : Z[k * N + j]);
					R[i * N + j] = (float)s + 1;
					Y[i * N + j] = 1;
				}
			struct gpu_gemm g = gpu_gemm_rowmajor(tx, tz, M, N, K, ldx, ldz, N);
			colmajor_gemm(&g, g.a == GPU_X ? X : Z, g.b == GPU_X ? X : Z, Y, 1.0f);
			for (int i = 0; i < M * N; i++)
				good &= fabsf(Y[i] - R[i]) < 1e-5f;
		}
	ok(good, "gemm map: the column-major form of Y = op(X) op(Z) + Y, all four transposes");
}

static void test_buckets(void)
{
	enum { N = 1000 };
	uint32_t tok[N];
	for (int i = 0; i < N; i++)
		tok[i] = (uint32_t)(urand() * 50) * 1000;	/* sparse ids, many repeats */
	struct gpu_buckets b = { 0 };
	gpu_buckets_build(&b, tok, N);
	int good = b.start[0] == 0 && b.start[b.n] == N, seen[N] = { 0 };
	for (uint32_t i = 0; i < b.n; i++) {
		good &= i == 0 || b.ids[i] > b.ids[i - 1];
		for (uint32_t k = b.start[i]; k < b.start[i + 1]; k++) {
			good &= tok[b.pos[k]] == b.ids[i] && !seen[b.pos[k]]++;
			good &= k == b.start[i] || b.pos[k] > b.pos[k - 1];
		}
	}
	ok(good, "buckets: %u tokens, each position once, grouped in increasing order", b.n);
	gpu_buckets_build(&b, tok, 1);
	ok(b.n == 1 && b.start[1] == 1 && b.pos[0] == 0, "buckets: rebuilt for one token");
	gpu_buckets_free(&b);
}

static void test_arena(void)
{
	struct gpt2_config c;
	gpt2_preset("tiny", &c);
	c.vocab_size = 1001;
	for (int r = 0; r < 2; r++) {
		struct plan_opts o = { .B = 3, .T = 17, .precision = r ? GPT2_BF16 : GPT2_FP32, .recompute = r };
		int n;
		const struct plan_act *a = plan_acts(&n);
		uint64_t *off = calloc((size_t)n, 8), *st = calloc((size_t)n, 8);
		uint64_t total = plan_arena(&c, &o, off, st), end = 0;
		int good = 1;
		for (int i = 0; i < n; i++) {
			uint64_t bytes = plan_act_bytes(&a[i], &c, o.B, o.T, o.precision);
			good &= off[i] % PLAN_ALIGN == 0 && st[i] % PLAN_ALIGN == 0 && st[i] >= bytes;
			good &= off[i] >= end;
			end = off[i] + plan_act_copies(&a[i], &c, o.recompute) * st[i];
		}
		struct gpt2_plan p;
		gpt2_plan(&c, &o, &p);
		ok(good && end == total && total == p.bytes[PLAN_ACTS],
		   "arena (%s): aligned, disjoint, %llu bytes as planned", r ? "bf16, recompute" : "fp32",
		   (unsigned long long)total);
		free(off);
		free(st);
	}
	ok(cpg_blocks(0, 256, 8) == 1 && cpg_blocks(257, 256, 8) == 2 && cpg_blocks(1u << 20, 256, 8) == 8,
	   "launch shapes: at least one block, rounded up, capped");
}

/* every (layer, row, head, position) of a small cache a distinct run of hs elements, all of
 * them covered, and a head's positions one after another */
static void test_kv_layout(void)
{
	enum { L = 3, B = 4, NH = 2, T = 5, HS = 3 };
	static unsigned char seen[L * B * NH * T * HS];
	int bad = 0;
	for (int l = 0; l < L; l++)
		for (int b = 0; b < B; b++)
			for (int h = 0; h < NH; h++)
				for (int t = 0; t < T; t++) {
					uint64_t o = cpg_kv_off(l, b, h, t, B, NH, T, HS);
					if (t && o != cpg_kv_off(l, b, h, t - 1, B, NH, T, HS) + HS)
						bad++;
					for (int i = 0; i < HS; i++)
						if (o + i >= sizeof(seen) || seen[o + i]++)
							bad++;
				}
	for (size_t i = 0; i < sizeof(seen); i++)
		bad += seen[i] != 1;
	ok(!bad, "kv cache: offsets one-to-one onto [L][B][NH][T][hs], positions contiguous");
}

/* one new query over a row's cache: the CPU backend's attention on the same cache */
static void test_kv_attention(void)
{
	enum { B = 3, NH = 2, T = 40, HS = 16, L = 2 };
	size_t n = (size_t)L * B * NH * T * HS;
	float *kc = malloc(n * sizeof(float)), *vc = malloc(n * sizeof(float)), a[T];
	cp_bf16 *hk = malloc(n * sizeof(cp_bf16)), *hv = malloc(n * sizeof(cp_bf16));
	for (size_t i = 0; i < n; i++) {
		hk[i] = cp_f32_to_bf16(2 * frand());
		hv[i] = cp_f32_to_bf16(frand());
		kc[i] = cp_bf16_to_f32(hk[i]);
		vc[i] = cp_bf16_to_f32(hv[i]);
	}
	double worst = 0, worst_b = 0;
	for (int l = 0; l < L; l++)
		for (int b = 0; b < B; b++)
			for (int h = 0; h < NH; h++) {
				float q[HS], got[HS], want[HS];
				cp_bf16 hq[HS], gb[HS];
				for (int i = 0; i < HS; i++) {
					hq[i] = cp_f32_to_bf16(2 * frand());
					q[i] = cp_bf16_to_f32(hq[i]);
				}
				int len = 1 + (int)(urand() * T);
				uint64_t o = cpg_kv_off(l, b, h, 0, B, NH, T, HS);
				float scale = 1.0f / sqrtf((float)HS) / (float)(l + 1);
				cpg_f32_kv_attn_row(got, a, q, kc + o, vc + o, len, HS, scale);
				gpt2_k_attn_row(want, a, q, kc + o, vc + o, HS, (size_t)len, HS, scale);
				cpg_bf16_kv_attn_row(gb, a, hq, hk + o, hv + o, len, HS, scale);
				double wd[HS];
				for (int i = 0; i < HS; i++) {
					wd[i] = want[i];
					worst_b = fmax(worst_b, fabs(cp_bf16_to_f32(gb[i]) - want[i]) /
								(1e-3 + fabs(want[i])));
				}
				worst = fmax(worst, rel_err(got, wd, HS));
			}
	ok(worst < 1e-6, "kv attention: one query over the cache within 1e-6 of the CPU's (%.2g)", worst);
	ok(worst_b <= 1.0 / 128, "kv attention bf16: within bf16's rounding of the CPU's (%.2g)", worst_b);
	free(kc);
	free(vc);
	free(hk);
	free(hv);
}

/* two rows of three tokens, rows 2 and 0 holding 5 and 0: tokens, rows, positions in order */
static void test_kv_prepare(void)
{
	int len[3] = { 0, 7, 5 }, rows[2] = { 2, 0 };
	uint32_t toks[6] = { 10, 11, 12, 20, 21, 22 };
	int32_t ids[18];
	gpu_kv_prepare(ids, len, 3, 9, 100, rows, 2, toks, 3);
	const int32_t want[18] = { 10, 11, 12, 20, 21, 22, 2, 2, 2, 0, 0, 0, 5, 6, 7, 0, 1, 2 };
	ok(!memcmp(ids, want, sizeof(want)), "kv call: tokens, then rows, then positions from each row's length");
	uint64_t first, ld;
	uint64_t n = gpu_kv_logit_rows(4, 3, 0, 8, &first, &ld);
	int good = n == 4;
	for (uint64_t r = 0; r < n; r++)	/* row r's last token is row r * 3 + 2 of the output */
		good &= first + r * ld == (r * 3 + 2) * 8;
	ok(good, "kv output layer: each row's last token (first %llu, every %llu)",
	   (unsigned long long)first, (unsigned long long)ld);
	n = gpu_kv_logit_rows(4, 3, 1, 8, &first, &ld);
	ok(n == 12 && first == 0 && ld == 8, "kv output layer: every token with all");
}

/* The plan of a state, written out: weights (padded parameters x bytes), keys and values
 * (2 L B T C x bytes), scratch for max(B, T) tokens (15 C of activations x bytes, 2 floats of
 * LayerNorm statistics, 3 int32 ids and the padded vocabulary's fp32 logits a token), 32 MiB
 * of cuBLASLt workspace. */
static void test_kv_plan(void)
{
	struct gpt2_config c;
	struct gpt2_kv_plan p;
	gpt2_preset("gpt2", &c);
	gpt2_plan_kv(&c, 200, 384, GPT2_FP32, &p);
	/* 124475904 x 4; 2 x 12 x 200 x 384 x 768 x 4; (15 x 768 x 4 + 8 + 12 + 4 x 50304) x 384 */
	ok(p.tokens == 384 && p.bytes[PLAN_KV_WEIGHTS] == 497903616ull &&
	   p.bytes[PLAN_KV_CACHE] == 5662310400ull && p.bytes[PLAN_KV_SCRATCH] == 94969344ull &&
	   p.bytes[PLAN_KV_WORKSPACE] == 33554432ull && p.total == 6288737792ull,
	   "kv plan: 124M fp32, 200 x 384: %llu bytes", (unsigned long long)p.total);
	gpt2_plan_kv(&c, 200, 384, GPT2_BF16, &p);
	ok(p.bytes[PLAN_KV_CACHE] == 2831155200ull, "kv plan: 124M bf16 cache half of fp32's");
	gpt2_preset("codeparrot", &c);
	gpt2_plan_kv(&c, 200, 384, GPT2_BF16, &p);
	/* 1529628800 x 2; 2 x 48 x 200 x 384 x 1600 x 2; (15 x 1600 x 2 + 20 + 4 x 32768) x 384 */
	ok(p.bytes[PLAN_KV_WEIGHTS] == 3059257600ull && p.bytes[PLAN_KV_CACHE] == 23592960000ull &&
	   p.bytes[PLAN_KV_SCRATCH] == 68771328ull && p.total == 26754543360ull,
	   "kv plan: 1.5B bf16, 200 x 384: %llu bytes", (unsigned long long)p.total);
	gpt2_plan_kv(&c, 1, 1024, GPT2_BF16, &p);
	ok(p.tokens == 1024, "kv plan: one row's prompt of T tokens sizes the scratch");
}

int main(void)
{
	test_attention();
	test_classifier();
	test_adamw();
	test_gelu_ln();
	test_gemm_map();
	test_buckets();
	test_arena();
	test_kv_layout();
	test_kv_attention();
	test_kv_prepare();
	test_kv_plan();
	return done_testing();
}
