/* kernels-impl.h: the CPU kernels (model/kernels.h), written once for any element type.
 * Included by gpt2-impl.h, so by gpt2.c (float) and gpt2-f64.c (double), which include
 * model/kernels.h first, after GPT2_REAL,
 * GPT2_NAME, GPT2_GEMM, GPT2_GEMV (cblas_[sd]gemm, cblas_[sd]gemv), GPT2_EXP (an exp the
 * compiler can vectorize in float: model/fexp.h) and GPT2_SQRT.
 *
 * The element-wise loops carry omp simd: without it GCC at -O2 leaves a loop whose pointers
 * might alias scalar. Vector lanes change no bits of an element-wise result (no FMA
 * contraction in ISO C mode); a reduction under omp simd sums in an order fixed by the
 * binary, never by the thread count.
 *
 * As no result depends on which thread runs which iteration, the loops over tiles and rows
 * are scheduled dynamically: a thread the OS holds back (a busy shared machine) does not stall
 * the others. Loops too small to pay for waking the threads run on one (the if clauses): that
 * changes no bits, and matters when decoding a token at a time. */

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/die.h"

#ifdef __clang__
/* omp simd asks, it does not require: where clang cannot vectorize a loop (libm's exp in the
 * double instantiation, a max reduction) the scalar loop is as right */
#pragma clang diagnostic ignored "-Wpass-failed"
#endif

#define K(x) GPT2_NAME(k_##x)
/* below this many multiply-adds a loop runs on one thread: waking the others costs more */
#define PAR_MIN ((size_t)1 << 17)

GPT2_REAL *K(alloc)(uint64_t n)
{
	uint64_t bytes = n * sizeof(GPT2_REAL);
	bytes = (bytes + 63) & ~(uint64_t)63;
	if (bytes == 0)
		bytes = 64;
	if (n > UINT64_MAX / sizeof(GPT2_REAL) / 2 || bytes > (uint64_t)SIZE_MAX)
		die("model buffer of %llu elements is too large", (unsigned long long)n);
	void *p = aligned_alloc(64, (size_t)bytes);
	if (!p)
		die("out of memory allocating %llu bytes for the model", (unsigned long long)bytes);
	return p;
}

void K(zero)(GPT2_REAL *p, uint64_t n)
{
	#pragma omp parallel for schedule(dynamic, 1)
	for (uint64_t i = 0; i < n; i += 65536) {
		uint64_t e = i + 65536 < n ? i + 65536 : n;
		memset(p + i, 0, (size_t)(e - i) * sizeof(GPT2_REAL));
	}
}

/* The product is cut into tiles of a size fixed by the shape alone, each computed by
 * single-threaded BLAS, the tiles spread over OpenMP threads: every element then sees the same
 * kernel and summation order whatever the thread count (OpenBLAS's own threading gives
 * different bits for 1 and 2 threads), and one threading runtime runs the whole step. */
#define MM_TM 128
#define MM_TN 512
void K(mm)(int ta, int tb, size_t M, size_t N, size_t K, const GPT2_REAL *A, size_t lda,
	   const GPT2_REAL *B, size_t ldb, GPT2_REAL beta, GPT2_REAL *C, size_t ldc, int few)
{
	size_t nti = (M + MM_TM - 1) / MM_TM, ntj = (N + MM_TN - 1) / MM_TN;
	int vec = few && M == 1 && !ta;
	#pragma omp parallel for schedule(dynamic, 1) if (M * N * K >= PAR_MIN)
	for (size_t t = 0; t < nti * ntj; t++) {
		size_t i0 = (t / ntj) * MM_TM, j0 = (t % ntj) * MM_TN;
		size_t m = M - i0 < MM_TM ? M - i0 : MM_TM, n = N - j0 < MM_TN ? N - j0 : MM_TN;
		const GPT2_REAL *a = ta ? A + i0 : A + i0 * lda;
		const GPT2_REAL *b = tb ? B + j0 * ldb : B + j0;
		if (vec && tb)
			GPT2_GEMV(CblasRowMajor, CblasNoTrans, (blasint)n, (blasint)K, 1, b,
				  (blasint)ldb, a, 1, beta, C + j0, 1);
		else if (vec)
			GPT2_GEMV(CblasRowMajor, CblasTrans, (blasint)K, (blasint)n, 1, b,
				  (blasint)ldb, a, 1, beta, C + j0, 1);
		else
			GPT2_GEMM(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
				  tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)K,
				  1, a, (blasint)lda, b, (blasint)ldb, beta, C + i0 * ldc + j0,
				  (blasint)ldc);
	}
}

void K(embed)(GPT2_REAL *out, const uint32_t *tok, const int *pos, size_t T,
	      const GPT2_REAL *wte, const GPT2_REAL *wpe, size_t n, size_t C)
{
	#pragma omp parallel for schedule(dynamic, 16) if (n * C >= PAR_MIN / 16)
	for (size_t i = 0; i < n; i++) {
		size_t p = pos ? (size_t)pos[i] : i % T;
		const GPT2_REAL *te = wte + (size_t)tok[i] * C, *pe = wpe + p * C;
		GPT2_REAL *o = out + i * C;
		for (size_t c = 0; c < C; c++)
			o[c] = te[c] + pe[c];
	}
}

void K(layernorm)(GPT2_REAL *out, GPT2_REAL *mean, GPT2_REAL *rstd, const GPT2_REAL *inp,
		  const GPT2_REAL *w, const GPT2_REAL *b, size_t n, size_t C)
{
	#pragma omp parallel for schedule(dynamic, 16) if (n * C >= PAR_MIN / 16)
	for (size_t r = 0; r < n; r++) {
		const GPT2_REAL *x = inp + r * C;
		GPT2_REAL s = 0;
		#pragma omp simd reduction(+:s)
		for (size_t c = 0; c < C; c++)
			s += x[c];
		GPT2_REAL mu = s / (GPT2_REAL)C, v = 0;
		#pragma omp simd reduction(+:v)
		for (size_t c = 0; c < C; c++)
			v += (x[c] - mu) * (x[c] - mu);
		GPT2_REAL rs = 1 / GPT2_SQRT(v / (GPT2_REAL)C + (GPT2_REAL)GPT2_LN_EPS);
		GPT2_REAL *o = out + r * C;
		#pragma omp simd
		for (size_t c = 0; c < C; c++)
			o[c] = (x[c] - mu) * rs * w[c] + b[c];
		if (mean)
			mean[r] = mu;
		if (rstd)
			rstd[r] = rs;
	}
}

/* the few-rows product of k_linear (see kernels-api.h) */
static void K(linear_few)(GPT2_REAL *out, const GPT2_REAL *inp, const GPT2_REAL *w,
			  const GPT2_REAL *b, size_t M, size_t IC, size_t OC, int acc,
			  GPT2_REAL *part)
{
	size_t nblk = (IC + GPT2_KBLOCK - 1) / GPT2_KBLOCK;
	int par = M * IC * OC >= PAR_MIN;
	#pragma omp parallel for schedule(static) if (par)
	for (size_t k = 0; k < nblk; k++) {
		size_t k0 = k * GPT2_KBLOCK, kn = IC - k0 < GPT2_KBLOCK ? IC - k0 : GPT2_KBLOCK;
		GPT2_REAL *p = part + k * M * OC;
		if (M == 1)
			GPT2_GEMV(CblasRowMajor, CblasTrans, (blasint)kn, (blasint)OC, 1, w + k0 * OC,
				  (blasint)OC, inp + k0, 1, 0, p, 1);
		else
			GPT2_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)M, (blasint)OC,
				  (blasint)kn, 1, inp + k0, (blasint)IC, w + k0 * OC, (blasint)OC, 0,
				  p, (blasint)OC);
	}
	size_t n = M * OC;
	#pragma omp parallel for schedule(static) if (par)
	for (size_t c0 = 0; c0 < n; c0 += 256) {
		size_t c1 = c0 + 256 < n ? c0 + 256 : n;
		for (size_t i = c0; i < c1; i++) {
			GPT2_REAL v = b[i % OC];
			for (size_t k = 0; k < nblk; k++)
				v += part[k * n + i];
			out[i] = acc ? out[i] + v : v;
		}
	}
}

#define GELU_K ((GPT2_REAL)0.7978845608028654)	/* sqrt(2/pi) */
#define GELU_A ((GPT2_REAL)0.044715)

/* 0.5 x (1 + tanh y) is x sigmoid(2y): one exp, no tanh, and no cancellation where tanh y
 * nears -1 */
static inline void K(gelu_span)(GPT2_REAL *out, const GPT2_REAL *inp, size_t n)
{
	#pragma omp simd
	for (size_t i = 0; i < n; i++) {
		GPT2_REAL x = inp[i];
		GPT2_REAL y = GELU_K * (x + GELU_A * x * x * x);
		out[i] = x / (1 + GPT2_EXP(-2 * y));
	}
}

void K(gelu)(GPT2_REAL *out, const GPT2_REAL *inp, size_t n)
{
	#pragma omp parallel for schedule(dynamic, 1) if (n >= PAR_MIN / 16)
	for (size_t i0 = 0; i0 < n; i0 += 4096)
		K(gelu_span)(out + i0, inp + i0, i0 + 4096 < n ? 4096 : n - i0);
}

/* k_linear's tiles (those of k_mm): each tile gets its bias, its product and, with GOUT, its
 * GELU while it is still in cache, rather than a pass over the whole output for each. The
 * arithmetic is k_mm's on an output holding the bias, so the bytes are the same either way. */
static void K(linear_tiled)(GPT2_REAL *out, GPT2_REAL *gout, const GPT2_REAL *inp,
			    const GPT2_REAL *w, const GPT2_REAL *b, size_t M, size_t IC,
			    size_t OC, int acc)
{
	size_t nti = (M + MM_TM - 1) / MM_TM, ntj = (OC + MM_TN - 1) / MM_TN;
	#pragma omp parallel for schedule(dynamic, 1) if (M * OC * IC >= PAR_MIN)
	for (size_t t = 0; t < nti * ntj; t++) {
		size_t i0 = (t / ntj) * MM_TM, j0 = (t % ntj) * MM_TN;
		size_t m = M - i0 < MM_TM ? M - i0 : MM_TM, n = OC - j0 < MM_TN ? OC - j0 : MM_TN;
		GPT2_REAL *c = out + i0 * OC + j0;
		for (size_t r = 0; r < m; r++) {
			GPT2_REAL *o = c + r * OC;
			if (acc) {
				#pragma omp simd
				for (size_t k = 0; k < n; k++)
					o[k] += b[j0 + k];
			} else {
				memcpy(o, b + j0, n * sizeof(GPT2_REAL));
			}
		}
		GPT2_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)m, (blasint)n,
			  (blasint)IC, 1, inp + i0 * IC, (blasint)IC, w + j0, (blasint)OC, 1, c,
			  (blasint)OC);
		if (gout)
			for (size_t r = 0; r < m; r++)
				K(gelu_span)(gout + (i0 + r) * OC + j0, c + r * OC, n);
	}
}

void K(linear)(GPT2_REAL *out, const GPT2_REAL *inp, const GPT2_REAL *w, const GPT2_REAL *b,
	       size_t M, size_t IC, size_t OC, int acc, GPT2_REAL *part)
{
	if (part && M <= GPT2_FEW_ROWS)
		K(linear_few)(out, inp, w, b, M, IC, OC, acc, part);
	else
		K(linear_tiled)(out, NULL, inp, w, b, M, IC, OC, acc);
}

void K(linear_gelu)(GPT2_REAL *out, GPT2_REAL *gout, const GPT2_REAL *inp, const GPT2_REAL *w,
		    const GPT2_REAL *b, size_t M, size_t IC, size_t OC)
{
	K(linear_tiled)(out, gout, inp, w, b, M, IC, OC, 0);
}

void K(attn_row)(GPT2_REAL *out, GPT2_REAL *a, const GPT2_REAL *q, const GPT2_REAL *k,
		 const GPT2_REAL *v, size_t stride, size_t n, size_t hs, GPT2_REAL scale)
{
	GPT2_REAL mx = -INFINITY;
	for (size_t u = 0; u < n; u++) {
		const GPT2_REAL *ku = k + u * stride;
		GPT2_REAL s = 0;
		#pragma omp simd reduction(+:s)
		for (size_t i = 0; i < hs; i++)
			s += q[i] * ku[i];
		s *= scale;
		a[u] = s;
		if (s > mx)
			mx = s;
	}
	GPT2_REAL sum = 0;
	#pragma omp simd
	for (size_t u = 0; u < n; u++)
		a[u] = GPT2_EXP(a[u] - mx);
	for (size_t u = 0; u < n; u++)
		sum += a[u];
	GPT2_REAL inv = 1 / sum;
	for (size_t u = 0; u < n; u++)
		a[u] *= inv;
	memset(out, 0, hs * sizeof(GPT2_REAL));
	for (size_t u = 0; u < n; u++) {
		const GPT2_REAL *vu = v + u * stride;
		GPT2_REAL p = a[u];
		#pragma omp simd
		for (size_t i = 0; i < hs; i++)
			out[i] += p * vu[i];
	}
}

void K(attn_fwd)(GPT2_REAL *out, GPT2_REAL *att, const GPT2_REAL *qkv, size_t B, size_t T,
		 size_t C, size_t NH, GPT2_REAL scale)
{
	size_t hs = C / NH, C3 = 3 * C;
	#pragma omp parallel for collapse(2) schedule(dynamic, 1)
	for (size_t b = 0; b < B; b++) {
		for (size_t h = 0; h < NH; h++) {
			const GPT2_REAL *seq = qkv + b * T * C3 + h * hs;
			for (size_t t = 0; t < T; t++) {
				GPT2_REAL *a = att + ((b * NH + h) * T + t) * T;
				K(attn_row)(out + (b * T + t) * C + h * hs, a, seq + t * C3, seq + C,
					    seq + 2 * C, C3, t + 1, hs, scale);
				for (size_t u = t + 1; u < T; u++)
					a[u] = 0;
			}
		}
	}
}

GPT2_REAL K(logsumexp)(const GPT2_REAL *x, size_t V)
{
	GPT2_REAL mx = -INFINITY;
	for (size_t v = 0; v < V; v++)
		if (x[v] > mx)
			mx = x[v];
	double s = 0;
	#pragma omp simd reduction(+:s)
	for (size_t v = 0; v < V; v++)
		s += GPT2_EXP(x[v] - mx);
	return mx + (GPT2_REAL)log(s);
}

#undef MM_TM
#undef MM_TN
#undef PAR_MIN
/* GELU_K, GELU_A and K stay for gelu's backward in gpt2-impl.h, which undefines them */
