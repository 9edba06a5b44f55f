/* cpu-bf16.c: bf16 weights and their products for generation on the CPU (see cpu-bf16.h). */
#include "model/cpu-bf16.h"
#include "base/die.h"
#include "base/xalloc.h"
#include "model/bf16.h"
#include "model/fexp.h"
#include "model/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
/* the x86 kernels build here (target attributes); which one runs is the CPU's choice */
#define CPU_BF16_X86 1
#endif

/* below this many multiply-adds a product runs on one thread */
#define PAR_MIN ((size_t)1 << 17)
/* rows of x a panel pass takes at a time: 4 rows x 4 vectors of 16 columns in registers */
#define ROWS 4

static size_t pairs_of(size_t IC)
{
	return (IC + 1) / 2;
}

static size_t panels_of(size_t OC)
{
	return (OC + CPU_BF16_PANEL - 1) / CPU_BF16_PANEL;
}

size_t cpu_bf16_packed_size(size_t IC, size_t OC)
{
	return panels_of(OC) * pairs_of(IC) * CPU_BF16_PANEL * 2;
}

void cpu_bf16_pack(uint16_t *P, const float *W, size_t IC, size_t OC, size_t RS, size_t CS)
{
	size_t ICp = pairs_of(IC);
	#pragma omp parallel for schedule(dynamic, 1)
	for (size_t jp = 0; jp < panels_of(OC); jp++) {
		uint16_t *p = P + jp * ICp * CPU_BF16_PANEL * 2;
		for (size_t ip = 0; ip < ICp; ip++)
			for (size_t jj = 0; jj < CPU_BF16_PANEL; jj++) {
				size_t j = jp * CPU_BF16_PANEL + jj;
				for (size_t h = 0; h < 2; h++) {
					size_t i = 2 * ip + h;
					float w = i < IC && j < OC ? W[i * RS + j * CS] : 0.0f;
					p[(ip * CPU_BF16_PANEL + jj) * 2 + h] = cp_f32_to_bf16(w);
				}
			}
	}
}

/* x's rows as bf16 pairs into XB, the pair (2i, 2i+1) one 32-bit word, element 2i in its low
 * half */
static void pairs_fill(uint32_t *xb, const float *x, size_t M, size_t IC)
{
	size_t ICp = pairs_of(IC);
	for (size_t m = 0; m < M; m++)
		for (size_t ip = 0; ip < ICp; ip++) {
			uint32_t lo = cp_f32_to_bf16(x[m * IC + 2 * ip]);
			uint32_t hi = 2 * ip + 1 < IC ? cp_f32_to_bf16(x[m * IC + 2 * ip + 1]) : 0;
			xb[m * ICp + ip] = lo | hi << 16;
		}
}

#define GELU_K 0.7978845608028654f	/* sqrt(2/pi) */
#define GELU_A 0.044715f

/* GPT-2's tanh GELU as the fp32 kernels take it (kernels-impl.h): x sigmoid(2y), one exp */
static inline float gelu(float x)
{
	float y = GELU_K * (x + GELU_A * x * x * x);
	return x / (1 + fexp(-2 * y));
}

/* A panel's N sums V into OUT[j0..]: with the bias, added to OUT (ACC) or through the GELU
 * (GELU). Inlined into each kernel, so it takes the kernel's vector width. */
static inline void store_op(float *out, const float *v, const float *b, size_t j0, size_t n,
			    int acc, int g)
{
	float *o = out + j0;
	if (b)
		b += j0;
	#pragma omp simd
	for (size_t k = 0; k < n; k++) {
		float y = v[k] + (b ? b[k] : 0.0f);
		y = acc ? o[k] + y : y;
		o[k] = g ? gelu(y) : y;
	}
}

/* what a product does with its sums (the bias added to each): store them, add them to the
 * output, or store their GELU */
enum { OP_SET, OP_ACC, OP_GELU };

/* one panel of one row, scalar: the same pairs in the same order */
static void panel_scalar(float *out, const uint32_t *xr, const uint16_t *p, const float *b,
			 size_t ICp, size_t j0, size_t n, int op)
{
	float v[CPU_BF16_PANEL] = { 0 };
	for (size_t ip = 0; ip < ICp; ip++) {
		float x0 = cp_bf16_to_f32((cp_bf16)(xr[ip] & 0xffff));
		float x1 = cp_bf16_to_f32((cp_bf16)(xr[ip] >> 16));
		const uint16_t *w = p + ip * CPU_BF16_PANEL * 2;
		for (size_t jj = 0; jj < CPU_BF16_PANEL; jj++)
			v[jj] += x0 * cp_bf16_to_f32(w[2 * jj]) + x1 * cp_bf16_to_f32(w[2 * jj + 1]);
	}
	store_op(out, v, b, j0, n, op == OP_ACC, op == OP_GELU);
}

#ifdef CPU_BF16_X86
/* NR rows of one panel, 4 x 16 columns a row. NR is a constant wherever this is inlined, so
 * the accumulators are registers: with a run-time row count the compiler kept them on the
 * stack, and the store-to-load chain through each halved the rate a single row streams
 * weights at (15 GB/s against the 30 a core reads). */
__attribute__((target("avx512f,avx512bf16"), always_inline))
static inline void panel_rows(float *out, size_t OC, const uint32_t *xb, const size_t NR,
			      const uint16_t *p, const float *b, size_t ICp, size_t j0, size_t n,
			      int op)
{
	__m512 s[ROWS][4];
	_Pragma("GCC unroll 4")
	for (size_t r = 0; r < NR; r++)
		for (int k = 0; k < 4; k++)
			s[r][k] = _mm512_setzero_ps();
	for (size_t ip = 0; ip < ICp; ip++) {
		const uint16_t *w = p + ip * CPU_BF16_PANEL * 2;
		__m512bh w0 = (__m512bh)_mm512_loadu_si512(w), w1 = (__m512bh)_mm512_loadu_si512(w + 32);
		__m512bh w2 = (__m512bh)_mm512_loadu_si512(w + 64), w3 = (__m512bh)_mm512_loadu_si512(w + 96);
		_Pragma("GCC unroll 4")
		for (size_t r = 0; r < NR; r++) {
			__m512bh x = (__m512bh)_mm512_set1_epi32((int)xb[r * ICp + ip]);
			s[r][0] = _mm512_dpbf16_ps(s[r][0], x, w0);
			s[r][1] = _mm512_dpbf16_ps(s[r][1], x, w1);
			s[r][2] = _mm512_dpbf16_ps(s[r][2], x, w2);
			s[r][3] = _mm512_dpbf16_ps(s[r][3], x, w3);
		}
	}
	_Pragma("GCC unroll 4")
	for (size_t r = 0; r < NR; r++) {
		float v[CPU_BF16_PANEL];
		for (int k = 0; k < 4; k++)
			_mm512_storeu_ps(v + 16 * k, s[r][k]);
		store_op(out + r * OC, v, b, j0, n, op == OP_ACC, op == OP_GELU);
	}
}

/* ROWS rows (NR of them real) of one panel */
__attribute__((target("avx512f,avx512bf16")))
static void panel_avx(float *out, size_t OC, const uint32_t *xb, size_t NR, const uint16_t *p,
		      const float *b, size_t ICp, size_t j0, size_t n, int op)
{
	switch (NR) {
	case 1: panel_rows(out, OC, xb, 1, p, b, ICp, j0, n, op); break;
	case 2: panel_rows(out, OC, xb, 2, p, b, ICp, j0, n, op); break;
	case 3: panel_rows(out, OC, xb, 3, p, b, ICp, j0, n, op); break;
	default: panel_rows(out, OC, xb, ROWS, p, b, ICp, j0, n, op); break;
	}
}

/* Attention of one query over N keys and values of 64 (every GPT-2's head size), as
 * k_attn_row but in registers 16 wide: the portable build leaves that kernel at SSE's 4, and
 * decoding then spent a third as long in it as in all the bf16 products. The mix is
 * normalised once at the end rather than each probability: fp32 either way, other roundings. */
__attribute__((target("avx512f")))
static void attn64_avx(float *out, float *a, const float *q, const float *k, const float *v,
		       size_t stride, size_t n, float scale)
{
	__m512 q0 = _mm512_loadu_ps(q), q1 = _mm512_loadu_ps(q + 16);
	__m512 q2 = _mm512_loadu_ps(q + 32), q3 = _mm512_loadu_ps(q + 48);
	float mx = -INFINITY;
	for (size_t u = 0; u < n; u++) {
		const float *ku = k + u * stride;
		__m512 d0 = _mm512_mul_ps(q0, _mm512_loadu_ps(ku));
		__m512 d1 = _mm512_mul_ps(q1, _mm512_loadu_ps(ku + 16));
		d0 = _mm512_fmadd_ps(q2, _mm512_loadu_ps(ku + 32), d0);
		d1 = _mm512_fmadd_ps(q3, _mm512_loadu_ps(ku + 48), d1);
		float sc = _mm512_reduce_add_ps(_mm512_add_ps(d0, d1)) * scale;
		a[u] = sc;
		mx = sc > mx ? sc : mx;
	}
	float sum = 0;
	#pragma omp simd reduction(+:sum)
	for (size_t u = 0; u < n; u++) {
		a[u] = fexp(a[u] - mx);
		sum += a[u];
	}
	__m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
	for (size_t u = 0; u < n; u++) {
		const float *vu = v + u * stride;
		__m512 pu = _mm512_set1_ps(a[u]);
		o0 = _mm512_fmadd_ps(pu, _mm512_loadu_ps(vu), o0);
		o1 = _mm512_fmadd_ps(pu, _mm512_loadu_ps(vu + 16), o1);
		o2 = _mm512_fmadd_ps(pu, _mm512_loadu_ps(vu + 32), o2);
		o3 = _mm512_fmadd_ps(pu, _mm512_loadu_ps(vu + 48), o3);
	}
	__m512 inv = _mm512_set1_ps(1 / sum);
	_mm512_storeu_ps(out, _mm512_mul_ps(o0, inv));
	_mm512_storeu_ps(out + 16, _mm512_mul_ps(o1, inv));
	_mm512_storeu_ps(out + 32, _mm512_mul_ps(o2, inv));
	_mm512_storeu_ps(out + 48, _mm512_mul_ps(o3, inv));
}

/* the 8 sums of D[0..7]'s lanes, D[j]'s in lane j: a tree of horizontal adds, one transpose */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 sums8_avx2(const __m256 d[8])
{
	__m256 a = _mm256_hadd_ps(d[0], d[1]), b = _mm256_hadd_ps(d[2], d[3]);
	__m256 c = _mm256_hadd_ps(d[4], d[5]), e = _mm256_hadd_ps(d[6], d[7]);
	a = _mm256_hadd_ps(a, b);	/* lanes: 0 1 2 3 of keys 0-3's low halves, then high */
	c = _mm256_hadd_ps(c, e);
	__m256 lo = _mm256_permute2f128_ps(a, c, 0x20), hi = _mm256_permute2f128_ps(a, c, 0x31);
	return _mm256_add_ps(lo, hi);
}

/* q . k for the 64 floats at K (Q in 8 registers) */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 dot64_avx2(const __m256 q[8], const float *k)
{
	__m256 d0 = _mm256_mul_ps(q[0], _mm256_loadu_ps(k));
	__m256 d1 = _mm256_mul_ps(q[1], _mm256_loadu_ps(k + 8));
	d0 = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(k + 16), d0);
	d1 = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(k + 24), d1);
	d0 = _mm256_fmadd_ps(q[4], _mm256_loadu_ps(k + 32), d0);
	d1 = _mm256_fmadd_ps(q[5], _mm256_loadu_ps(k + 40), d1);
	d0 = _mm256_fmadd_ps(q[6], _mm256_loadu_ps(k + 48), d0);
	d1 = _mm256_fmadd_ps(q[7], _mm256_loadu_ps(k + 56), d1);
	return _mm256_add_ps(d0, d1);
}

/* attn64_avx's AVX2 twin, with FMA. k_attn_row's loops keep one sum in flight (a chain of
 * adds a key, and the output stored and reloaded each key): over 256 keys in cache it took
 * 9.5 us a head where this takes 5.7, and in a bf16 decode of 256 tokens after 128 its share
 * of the samples went from 16.5% to 5.1% (from the cache in memory it is bound by bandwidth
 * either way). Eight keys' scores come out of one reduction tree; the output stays in 8
 * registers. */
__attribute__((target("avx2,fma")))
static void attn64_avx2(float *out, float *a, const float *q, const float *k, const float *v,
			size_t stride, size_t n, float scale)
{
	__m256 qv[8];
	for (int i = 0; i < 8; i++)
		qv[i] = _mm256_mul_ps(_mm256_loadu_ps(q + 8 * i), _mm256_set1_ps(scale));
	__m256 mv = _mm256_set1_ps(-INFINITY);
	size_t u = 0;
	for (; u + 8 <= n; u += 8) {
		__m256 d[8];
		for (int j = 0; j < 8; j++)
			d[j] = dot64_avx2(qv, k + (u + j) * stride);
		__m256 sc = sums8_avx2(d);
		_mm256_storeu_ps(a + u, sc);
		mv = _mm256_max_ps(mv, sc);
	}
	float m8[8], mx = -INFINITY;
	_mm256_storeu_ps(m8, mv);
	for (int j = 0; j < 8; j++)
		mx = m8[j] > mx ? m8[j] : mx;
	for (; u < n; u++) {
		__m256 d = dot64_avx2(qv, k + u * stride);
		__m128 h = _mm_add_ps(_mm256_castps256_ps128(d), _mm256_extractf128_ps(d, 1));
		h = _mm_hadd_ps(h, h);
		h = _mm_hadd_ps(h, h);
		a[u] = _mm_cvtss_f32(h);
		mx = a[u] > mx ? a[u] : mx;
	}
	float sum = 0;
	#pragma omp simd reduction(+:sum)
	for (size_t t = 0; t < n; t++) {
		a[t] = fexp(a[t] - mx);
		sum += a[t];
	}
	__m256 o[8];
	for (int i = 0; i < 8; i++)
		o[i] = _mm256_setzero_ps();
	for (size_t t = 0; t < n; t++) {
		const float *vt = v + t * stride;
		__m256 p = _mm256_set1_ps(a[t]);
		for (int i = 0; i < 8; i++)
			o[i] = _mm256_fmadd_ps(p, _mm256_loadu_ps(vt + 8 * i), o[i]);
	}
	__m256 inv = _mm256_set1_ps(1 / sum);
	for (int i = 0; i < 8; i++)
		_mm256_storeu_ps(out + 8 * i, _mm256_mul_ps(o[i], inv));
}

/* One row of one panel in AVX2, 8 columns a register: a 32-bit word of the panel holds a
 * column's pair, so shifting it left 16 gives the even input's weight as fp32 and masking
 * its low half the odd one's. The arithmetic is panel_scalar's, a multiply each and two
 * adds in its order (no FMA), so the two give the same bytes. 8 accumulators and the 8
 * weight vectors of a pair fill the 16 registers; more rows a pass would spill, and a
 * decoded token has one. */
__attribute__((target("avx2")))
static void panel_avx2(float *out, const uint32_t *xr, const uint16_t *p, const float *b,
		       size_t ICp, size_t j0, size_t n, int op)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0,
	       s7 = s0;
	const __m256i hi = _mm256_set1_epi32((int)0xffff0000u);
	for (size_t ip = 0; ip < ICp; ip++) {
		const __m256i *w = (const __m256i *)(p + ip * CPU_BF16_PANEL * 2);
		__m256 x0 = _mm256_castsi256_ps(_mm256_set1_epi32((int)(xr[ip] << 16)));
		__m256 x1 = _mm256_castsi256_ps(_mm256_set1_epi32((int)(xr[ip] & 0xffff0000u)));
#define BF16_STEP(s, k) do { \
		__m256i v = _mm256_loadu_si256(w + (k)); \
		__m256 e = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)); \
		__m256 o = _mm256_castsi256_ps(_mm256_and_si256(v, hi)); \
		s = _mm256_add_ps(s, _mm256_add_ps(_mm256_mul_ps(x0, e), _mm256_mul_ps(x1, o))); \
	} while (0)
		BF16_STEP(s0, 0); BF16_STEP(s1, 1); BF16_STEP(s2, 2); BF16_STEP(s3, 3);
		BF16_STEP(s4, 4); BF16_STEP(s5, 5); BF16_STEP(s6, 6); BF16_STEP(s7, 7);
#undef BF16_STEP
	}
	float v[CPU_BF16_PANEL];
	_mm256_storeu_ps(v, s0);
	_mm256_storeu_ps(v + 8, s1);
	_mm256_storeu_ps(v + 16, s2);
	_mm256_storeu_ps(v + 24, s3);
	_mm256_storeu_ps(v + 32, s4);
	_mm256_storeu_ps(v + 40, s5);
	_mm256_storeu_ps(v + 48, s6);
	_mm256_storeu_ps(v + 56, s7);
	store_op(out, v, b, j0, n, op == OP_ACC, op == OP_GELU);
}

/* the best kernel this CPU runs: AVX-512 BF16's, else AVX2's, else the scalar loop */
static int cpu_best(void)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512bf16"))
		return CPU_BF16_AVX512;
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? CPU_BF16_AVX2
									       : CPU_BF16_SCALAR;
}
#else
static int cpu_best(void)
{
	return CPU_BF16_SCALAR;
}
#endif

static int vector_mode = -1;

int cpu_bf16_vector(int set)
{
	int best = cpu_best();
	if (set >= 0)
		vector_mode = set < best ? set : best;
	else if (vector_mode < 0)
		vector_mode = best;
	return vector_mode;
}

const char *cpu_bf16_kernel_name(int mode)
{
	return mode == CPU_BF16_AVX512 ? "AVX-512 BF16" : mode == CPU_BF16_AVX2 ? "AVX2" : "scalar loop";
}

/* x's rows as bf16 pairs into the stack buffer when they fit (a token's, decoding: no
 * allocation a product), else a new one */
#define PAIRS_STACK 4096

static void product(float *out, const float *x, const uint16_t *P, const float *b, size_t M,
		    size_t IC, size_t OC, int op)
{
	size_t ICp = pairs_of(IC), np = panels_of(OC);
	uint32_t stack[PAIRS_STACK];
	uint32_t *xb = M * ICp <= PAIRS_STACK ? stack : xmalloc(M * ICp * sizeof(uint32_t));
	pairs_fill(xb, x, M, IC);
	int vec = cpu_bf16_vector(-1);
	#pragma omp parallel for schedule(dynamic, 1) if (M * IC * OC >= PAR_MIN)
	for (size_t jp = 0; jp < np; jp++) {
		const uint16_t *p = P + jp * ICp * CPU_BF16_PANEL * 2;
		size_t j0 = jp * CPU_BF16_PANEL, n = OC - j0 < CPU_BF16_PANEL ? OC - j0 : CPU_BF16_PANEL;
		for (size_t m = 0; m < M; m += ROWS) {
			size_t nr = M - m < ROWS ? M - m : ROWS;
#ifdef CPU_BF16_X86
			if (vec == CPU_BF16_AVX512) {
				panel_avx(out + m * OC, OC, xb + m * ICp, nr, p, b, ICp, j0, n, op);
				continue;
			}
			if (vec == CPU_BF16_AVX2) {
				for (size_t r = 0; r < nr; r++)
					panel_avx2(out + (m + r) * OC, xb + (m + r) * ICp, p, b, ICp,
						   j0, n, op);
				continue;
			}
#endif
			for (size_t r = 0; r < nr; r++)
				panel_scalar(out + (m + r) * OC, xb + (m + r) * ICp, p, b, ICp, j0, n, op);
		}
	}
	(void)vec;
	if (xb != stack)
		free(xb);
}

void cpu_bf16_linear(float *out, const float *x, const uint16_t *P, const float *b, size_t M,
		     size_t IC, size_t OC, int acc)
{
	product(out, x, P, b, M, IC, OC, acc ? OP_ACC : OP_SET);
}

void cpu_bf16_linear_gelu(float *out, const float *x, const uint16_t *P, const float *b,
			  size_t M, size_t IC, size_t OC)
{
	product(out, x, P, b, M, IC, OC, OP_GELU);
}

void cpu_bf16_attn_row(float *out, float *a, const float *q, const float *k, const float *v,
		       size_t stride, size_t n, size_t hs, float scale)
{
#ifdef CPU_BF16_X86
	int vec = hs == 64 ? cpu_bf16_vector(-1) : CPU_BF16_SCALAR;
	if (vec == CPU_BF16_AVX512) {
		attn64_avx(out, a, q, k, v, stride, n, scale);
		return;
	}
	if (vec == CPU_BF16_AVX2) {
		attn64_avx2(out, a, q, k, v, stride, n, scale);
		return;
	}
#endif
	gpt2_k_attn_row(out, a, q, k, v, stride, n, hs, scale);
}

/* ---- a model's packed weights ---- */

enum { W_QKV, W_PROJ, W_FC, W_FCPROJ, W_N };

struct cpu_bf16_model {
	size_t layer[W_N];	/* offsets within a layer, in uint16s */
	size_t stride;		/* uint16s a layer */
	size_t wte;		/* the output layer's offset */
	uint16_t data[];
};

static const int w_tensor[W_N] = { GPT2_QKVW, GPT2_ATTPROJW, GPT2_FCW, GPT2_FCPROJW };

/* a Conv1D weight's inputs and outputs */
static void w_shape(const struct gpt2_config *c, int w, size_t *IC, size_t *OC)
{
	size_t C = c->n_embd;
	*IC = w == W_FCPROJ ? 4 * C : C;
	*OC = w == W_QKV ? 3 * C : w == W_FC ? 4 * C : C;
}

struct cpu_bf16_model *cpu_bf16_model_new(const struct gpt2_model *m)
{
	const struct gpt2_config *c = &m->cfg;
	size_t at = 0, IC, OC, lay[W_N];
	for (int w = 0; w < W_N; w++) {
		w_shape(c, w, &IC, &OC);
		lay[w] = at;
		at += cpu_bf16_packed_size(IC, OC);
	}
	size_t stride = at, total = stride * c->n_layer + cpu_bf16_packed_size(c->n_embd, c->vocab_size);
	struct cpu_bf16_model *p = malloc(sizeof(*p) + total * sizeof(uint16_t));
	if (!p)
		die("out of memory packing the model's weights in bf16");
	memcpy(p->layer, lay, sizeof(lay));
	p->stride = stride;
	p->wte = stride * c->n_layer;
	for (uint32_t l = 0; l < c->n_layer; l++)
		for (int w = 0; w < W_N; w++) {
			w_shape(c, w, &IC, &OC);
			const float *W = m->params + gpt2_tensor_offset(c, &m->lay, w_tensor[w], (int)l);
			cpu_bf16_pack(p->data + l * stride + lay[w], W, IC, OC, OC, 1);
		}
	/* logits = x wte^T: wte [V][C] read as [C][V] */
	cpu_bf16_pack(p->data + p->wte, m->params + m->lay.off[GPT2_WTE], c->n_embd, c->vocab_size,
		      1, c->n_embd);
	return p;
}

const uint16_t *cpu_bf16_weight(const struct cpu_bf16_model *p, int t, int layer)
{
	if (t == GPT2_WTE)
		return p->data + p->wte;
	for (int w = 0; w < W_N; w++)
		if (w_tensor[w] == t)
			return p->data + (size_t)layer * p->stride + p->layer[w];
	die("no bf16 weight for tensor %d", t);
}
