/* gpt2-impl.h: GPT-2 forward, backward and AdamW, written once for any element type, on the
 * kernels of kernels-impl.h (included here). Included by gpt2.c (float) and gpt2-f64.c
 * (double) after defining GPT2_REAL, GPT2_NAME, GPT2_GEMM and GPT2_GEMV (cblas_[sd]gemm,
 * cblas_[sd]gemv), GPT2_EXP and GPT2_SQRT. The element-wise loops carry omp simd, as in
 * kernels-impl.h.
 *
 * Determinism: every reduction here runs in a fixed order that does not depend on the number
 * of threads (per-row work in parallel, per-column sums over fixed column blocks, the gradient
 * norm over fixed chunks), so the same batch gives the same bytes for any thread count. As no
 * result depends on which thread runs which iteration, loops are scheduled dynamically: a
 * thread that the OS holds back (a busy shared machine) does not stall the others. */

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/die.h"
#include "model/kernels-impl.h"
#include "model/prof.h"

typedef GPT2_REAL real;
#define MODEL struct GPT2_NAME(model)
#define LACTS struct GPT2_NAME(layer_acts)

/* columns handled together by the per-column reductions */
#define COLBLOCK 64

static real *tens(const MODEL *m, int t, int layer)
{
	return m->params + gpt2_tensor_offset(&m->cfg, &m->lay, t, layer);
}

static real *gtens(const MODEL *m, int t, int layer)
{
	return m->grads + gpt2_tensor_offset(&m->cfg, &m->lay, t, layer);
}

static void mm(int ta, int tb, size_t M, size_t N, size_t K, const real *A, size_t lda,
	       const real *B, size_t ldb, real beta, real *C, size_t ldc)
{
	K(mm)(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, 0);
}

/* ---- the backward kernels (the forward ones are kernels-impl.h's) ---- */

/* Column blocks, rows in order: the same sums for every thread count. */
static void encoder_bwd(real *dwte, real *dwpe, const real *dout, const uint32_t *tok,
			size_t BT, size_t T, size_t C)
{
	#pragma omp parallel for schedule(dynamic, 1)
	for (size_t cb = 0; cb < C; cb += COLBLOCK) {
		size_t ce = cb + COLBLOCK < C ? cb + COLBLOCK : C;
		for (size_t i = 0; i < BT; i++) {
			const real *d = dout + i * C;
			real *te = dwte + (size_t)tok[i] * C, *pe = dwpe + (i % T) * C;
			for (size_t c = cb; c < ce; c++) {
				te[c] += d[c];
				pe[c] += d[c];
			}
		}
	}
}

/* dinp += the input gradient; dw, db += the parameter gradients */
static void ln_bwd(real *dinp, real *dw, real *db, const real *dout, const real *inp,
		   const real *w, const real *mean, const real *rstd, size_t BT, size_t C)
{
	#pragma omp parallel for schedule(dynamic, 16)
	for (size_t r = 0; r < BT; r++) {
		const real *x = inp + r * C, *d = dout + r * C;
		real mu = mean[r], rs = rstd[r], dm = 0, dnm = 0;
		#pragma omp simd reduction(+:dm, dnm)
		for (size_t c = 0; c < C; c++) {
			real dn = d[c] * w[c];
			dm += dn;
			dnm += dn * (x[c] - mu) * rs;
		}
		dm /= (real)C;
		dnm /= (real)C;
		real *di = dinp + r * C;
		#pragma omp simd
		for (size_t c = 0; c < C; c++) {
			real n = (x[c] - mu) * rs;
			di[c] += (d[c] * w[c] - dm - n * dnm) * rs;
		}
	}
	#pragma omp parallel for schedule(dynamic, 1)
	for (size_t cb = 0; cb < C; cb += COLBLOCK) {
		size_t ce = cb + COLBLOCK < C ? cb + COLBLOCK : C;
		for (size_t r = 0; r < BT; r++) {
			const real *x = inp + r * C, *d = dout + r * C;
			real mu = mean[r], rs = rstd[r];
			#pragma omp simd
			for (size_t c = cb; c < ce; c++) {
				dw[c] += d[c] * (x[c] - mu) * rs;
				db[c] += d[c];
			}
		}
	}
}

/* dinp = dout @ w^T (overwritten); dw += inp^T @ dout; db += column sums of dout */
static void linear_bwd(real *dinp, real *dw, real *db, const real *dout, const real *inp,
		       const real *w, size_t BT, size_t IC, size_t OC)
{
	mm(0, 1, BT, IC, OC, dout, OC, w, OC, 0, dinp, IC);
	mm(1, 0, IC, OC, BT, inp, IC, dout, OC, 1, dw, OC);
	#pragma omp parallel for schedule(dynamic, 1)
	for (size_t cb = 0; cb < OC; cb += COLBLOCK) {
		size_t ce = cb + COLBLOCK < OC ? cb + COLBLOCK : OC;
		for (size_t r = 0; r < BT; r++) {
			const real *d = dout + r * OC;
			#pragma omp simd
			for (size_t c = cb; c < ce; c++)
				db[c] += d[c];
		}
	}
}


/* d = dout * gelu'(inp); d may be dout. With s = sigmoid(2y) (k_gelu), 0.5 (1 + tanh y) is s
 * and 1 - tanh^2 y is 4 s (1 - s). */
static void gelu_bwd(real *d, const real *inp, const real *dout, size_t n)
{
	#pragma omp parallel for schedule(dynamic, 1)
	for (size_t i0 = 0; i0 < n; i0 += 4096) {
		size_t e = i0 + 4096 < n ? i0 + 4096 : n;
		#pragma omp simd
		for (size_t i = i0; i < e; i++) {
			real x = inp[i];
			real s = 1 / (1 + GPT2_EXP(-2 * GELU_K * (x + GELU_A * x * x * x)));
			real g = s + 2 * x * s * (1 - s) * GELU_K * (1 + 3 * GELU_A * x * x);
			d[i] = g * dout[i];
		}
	}
}

/* dqkv must be zero on entry; each (b,h) writes only its own columns */
static void attn_bwd(real *dqkv, real *scratch, const real *dout, const real *qkv,
		     const real *att, size_t B, size_t T, size_t C, size_t NH, real scale)
{
	size_t hs = C / NH, C3 = 3 * C;
	#pragma omp parallel for collapse(2) schedule(dynamic, 1)
	for (size_t b = 0; b < B; b++) {
		for (size_t h = 0; h < NH; h++) {
			real *da = scratch + (b * NH + h) * T;
			for (size_t t = 0; t < T; t++) {
				const real *a = att + ((b * NH + h) * T + t) * T;
				const real *d = dout + (b * T + t) * C + h * hs;
				const real *q = qkv + (b * T + t) * C3 + h * hs;
				real *dq = dqkv + (b * T + t) * C3 + h * hs;
				real dsum = 0;
				for (size_t u = 0; u <= t; u++) {
					const real *v = qkv + (b * T + u) * C3 + 2 * C + h * hs;
					real *dv = dqkv + (b * T + u) * C3 + 2 * C + h * hs;
					real s = 0, p = a[u];
					#pragma omp simd reduction(+:s)
					for (size_t i = 0; i < hs; i++) {
						s += d[i] * v[i];
						dv[i] += p * d[i];
					}
					da[u] = s;
					dsum += p * s;
				}
				for (size_t u = 0; u <= t; u++) {
					const real *k = qkv + (b * T + u) * C3 + C + h * hs;
					real *dk = dqkv + (b * T + u) * C3 + C + h * hs;
					real g = a[u] * (da[u] - dsum) * scale;
					#pragma omp simd
					for (size_t i = 0; i < hs; i++) {
						dq[i] += g * k[i];
						dk[i] += g * q[i];
					}
				}
			}
		}
	}
}

/* ---- model ---- */

void GPT2_NAME(create)(MODEL *m, const struct gpt2_config *c)
{
	const char *why = gpt2_config_check(c);
	if (why)
		die("bad model shape: %s", why);
	memset(m, 0, sizeof(*m));
	m->cfg = *c;
	gpt2_layout(c, &m->lay);
	m->params = K(alloc)(m->lay.total);
	K(zero)(m->params, m->lay.total);
}

static void free_acts(MODEL *m)
{
	free(m->actmem);
	free(m->la);
	free(m->tokens);
	m->actmem = NULL;
	m->la = NULL;
	m->tokens = NULL;
	m->maxB = m->maxT = 0;
}

void GPT2_NAME(free)(MODEL *m)
{
	free_acts(m);
	free(m->params);
	free(m->grads);
	free(m->mom);
	free(m->var);
	free(m->infer_bf16);
	memset(m, 0, sizeof(*m));
}

static uint64_t init_mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* N(0, std) for elements [0, n) of one tensor, in chunks seeded by (seed, tensor, chunk) so
 * the values do not depend on how chunks are spread over threads. */
static void init_normal(real *p, uint64_t n, double std, uint64_t seed, int tensor)
{
	const uint64_t chunk = 4096;
	#pragma omp parallel for schedule(dynamic, 1)
	for (uint64_t c0 = 0; c0 < n; c0 += chunk) {
		uint64_t s = init_mix(seed ^ init_mix(((uint64_t)tensor << 40) ^ (c0 / chunk)));
		uint64_t e = c0 + chunk < n ? c0 + chunk : n;
		for (uint64_t i = c0; i < e; i += 2) {
			s = init_mix(s);
			double u1 = ((s >> 11) + 1) * 0x1.0p-53;
			s = init_mix(s);
			double u2 = (s >> 11) * 0x1.0p-53;
			double r = sqrt(-2 * log(u1));
			p[i] = (real)(std * r * cos(2 * M_PI * u2));
			if (i + 1 < e)
				p[i + 1] = (real)(std * r * sin(2 * M_PI * u2));
		}
	}
}

void GPT2_NAME(init_weights)(MODEL *m, uint64_t seed)
{
	double resid_std = 0.02 / sqrt(2.0 * m->cfg.n_layer);
	for (int t = 0; t < GPT2_NT; t++) {
		real *p = m->params + m->lay.off[t];
		uint64_t n = m->lay.size[t];
		switch (t) {
		case GPT2_WTE: case GPT2_WPE: case GPT2_QKVW: case GPT2_FCW:
			init_normal(p, n, 0.02, seed, t);
			break;
		case GPT2_ATTPROJW: case GPT2_FCPROJW:
			init_normal(p, n, resid_std, seed, t);
			break;
		case GPT2_LN1W: case GPT2_LN2W: case GPT2_LNFW:
			for (uint64_t i = 0; i < n; i++)
				p[i] = 1;
			break;
		default:
			K(zero)(p, n);
		}
	}
}

void GPT2_NAME(setup)(MODEL *m, int B, int T, int recompute)
{
	/* B*T is a BLAS dimension (int) in the weight gradients */
	if (B < 1 || T < 1 || (uint64_t)T > m->cfg.n_ctx || (uint64_t)B * (uint64_t)T >= (1u << 31))
		die("batch %d x %d does not fit the model (n_ctx %u)", B, T, m->cfg.n_ctx);
	/* the model threads BLAS itself (see mm) */
	openblas_set_num_threads(1);
	if (!m->grads) {
		m->grads = K(alloc)(m->lay.total);
		K(zero)(m->grads, m->lay.total);
	}
	if (m->actmem && m->maxB == B && m->maxT == T && m->recompute == recompute)
		return;
	free_acts(m);
	uint64_t C = m->cfg.n_embd, L = m->cfg.n_layer, NH = m->cfg.n_head, V = m->cfg.vocab_size;
	uint64_t BT = (uint64_t)B * T, BTC = BT * C;
	uint64_t nla = recompute ? 1 : L;
	uint64_t per = 15 * BTC + 4 * BT + (uint64_t)B * NH * T * T;
	uint64_t total = nla * per + (L + 1) * BTC + BTC + 2 * BT + BT * V + 2 * BT +
			 6 * BTC + (uint64_t)B * NH * T;
	m->actmem = K(alloc)(total);
	real *p = m->actmem;
#define TAKE(n) (p += (n), p - (n))
	m->la = calloc(nla, sizeof(*m->la));
	if (!m->la)
		die("out of memory");
	for (uint64_t l = 0; l < nla; l++) {
		LACTS *a = &m->la[l];
		a->ln1 = TAKE(BTC);
		a->ln1_mean = TAKE(BT);
		a->ln1_rstd = TAKE(BT);
		a->qkv = TAKE(3 * BTC);
		a->att = TAKE((uint64_t)B * NH * T * T);
		a->atty = TAKE(BTC);
		a->res2 = TAKE(BTC);
		a->ln2 = TAKE(BTC);
		a->ln2_mean = TAKE(BT);
		a->ln2_rstd = TAKE(BT);
		a->fch = TAKE(4 * BTC);
		a->fch_gelu = TAKE(4 * BTC);
	}
	m->resid = TAKE((L + 1) * BTC);
	m->lnf = TAKE(BTC);
	m->lnf_mean = TAKE(BT);
	m->lnf_rstd = TAKE(BT);
	m->logits = TAKE(BT * V);
	m->lse = TAKE(BT);
	m->losses = TAKE(BT);
	m->dres = TAKE(BTC);
	m->dsmall = TAKE(BTC);
	m->dbig = TAKE(4 * BTC);
	m->datt = TAKE((uint64_t)B * NH * T);
#undef TAKE
	m->tokens = calloc(BT, sizeof(uint32_t));
	if (!m->tokens)
		die("out of memory");
	m->maxB = B;
	m->maxT = T;
	m->recompute = recompute;
}

static real attn_scale(const MODEL *m, int l)
{
	real s = 1 / GPT2_SQRT((real)(m->cfg.n_embd / m->cfg.n_head));
	if (m->cfg.scale_attn_by_inverse_layer_idx)
		s /= (real)(l + 1);
	return s;
}

static LACTS *acts_of(MODEL *m, int l)
{
	return &m->la[m->recompute ? 0 : l];
}

static void layer_fwd(MODEL *m, int l, LACTS *a)
{
	size_t B = m->B, T = m->T, C = m->cfg.n_embd, NH = m->cfg.n_head;
	size_t BT = B * T, BTC = BT * C;
	real *inp = m->resid + l * BTC, *out = m->resid + (l + 1) * BTC;
	GPT2_PROF(GPT2_PROF_LN, K(layernorm)(a->ln1, a->ln1_mean, a->ln1_rstd, inp,
					     tens(m, GPT2_LN1W, l), tens(m, GPT2_LN1B, l), BT, C));
	GPT2_PROF(GPT2_PROF_QKV, K(linear)(a->qkv, a->ln1, tens(m, GPT2_QKVW, l),
					   tens(m, GPT2_QKVB, l), BT, C, 3 * C, 0, NULL));
	GPT2_PROF(GPT2_PROF_ATTN, K(attn_fwd)(a->atty, a->att, a->qkv, B, T, C, NH,
					      attn_scale(m, l)));
	GPT2_PROF(GPT2_PROF_RESID, memcpy(a->res2, inp, BTC * sizeof(real)));
	GPT2_PROF(GPT2_PROF_ATTPROJ, K(linear)(a->res2, a->atty, tens(m, GPT2_ATTPROJW, l),
					       tens(m, GPT2_ATTPROJB, l), BT, C, C, 1, NULL));
	GPT2_PROF(GPT2_PROF_LN, K(layernorm)(a->ln2, a->ln2_mean, a->ln2_rstd, a->res2,
					     tens(m, GPT2_LN2W, l), tens(m, GPT2_LN2B, l), BT, C));
	/* the GELU fused into the product's tiles: timed with it */
	GPT2_PROF(GPT2_PROF_FC, K(linear_gelu)(a->fch, a->fch_gelu, a->ln2, tens(m, GPT2_FCW, l),
					       tens(m, GPT2_FCB, l), BT, C, 4 * C));
	GPT2_PROF(GPT2_PROF_RESID, memcpy(out, a->res2, BTC * sizeof(real)));
	GPT2_PROF(GPT2_PROF_FCPROJ, K(linear)(out, a->fch_gelu, tens(m, GPT2_FCPROJW, l),
					      tens(m, GPT2_FCPROJB, l), BT, 4 * C, C, 1, NULL));
}

/* m->dres holds d(layer output) on entry and d(layer input) on return */
static void layer_bwd(MODEL *m, int l, LACTS *a)
{
	size_t B = m->B, T = m->T, C = m->cfg.n_embd, NH = m->cfg.n_head;
	size_t BT = B * T, BTC = BT * C;
	real *inp = m->resid + l * BTC;
	GPT2_PROF(GPT2_PROF_FCPROJ_BWD,
		  linear_bwd(m->dbig, gtens(m, GPT2_FCPROJW, l), gtens(m, GPT2_FCPROJB, l),
			     m->dres, a->fch_gelu, tens(m, GPT2_FCPROJW, l), BT, 4 * C, C));
	GPT2_PROF(GPT2_PROF_GELU_BWD, gelu_bwd(m->dbig, a->fch, m->dbig, BT * 4 * C));
	GPT2_PROF(GPT2_PROF_FC_BWD,
		  linear_bwd(m->dsmall, gtens(m, GPT2_FCW, l), gtens(m, GPT2_FCB, l), m->dbig,
			     a->ln2, tens(m, GPT2_FCW, l), BT, C, 4 * C));
	GPT2_PROF(GPT2_PROF_LN_BWD,
		  ln_bwd(m->dres, gtens(m, GPT2_LN2W, l), gtens(m, GPT2_LN2B, l), m->dsmall,
			 a->res2, tens(m, GPT2_LN2W, l), a->ln2_mean, a->ln2_rstd, BT, C));
	GPT2_PROF(GPT2_PROF_ATTPROJ_BWD,
		  linear_bwd(m->dsmall, gtens(m, GPT2_ATTPROJW, l), gtens(m, GPT2_ATTPROJB, l),
			     m->dres, a->atty, tens(m, GPT2_ATTPROJW, l), BT, C, C));
	GPT2_PROF(GPT2_PROF_ATTN_BWD, K(zero)(m->dbig, 3 * BTC);
		  attn_bwd(m->dbig, m->datt, m->dsmall, a->qkv, a->att, B, T, C, NH,
			   attn_scale(m, l)));
	GPT2_PROF(GPT2_PROF_QKV_BWD,
		  linear_bwd(m->dsmall, gtens(m, GPT2_QKVW, l), gtens(m, GPT2_QKVB, l), m->dbig,
			     a->ln1, tens(m, GPT2_QKVW, l), BT, C, 3 * C));
	GPT2_PROF(GPT2_PROF_LN_BWD,
		  ln_bwd(m->dres, gtens(m, GPT2_LN1W, l), gtens(m, GPT2_LN1B, l), m->dsmall, inp,
			 tens(m, GPT2_LN1W, l), a->ln1_mean, a->ln1_rstd, BT, C));
}

real GPT2_NAME(forward)(MODEL *m, const uint32_t *tokens, int B, int T)
{
	if (!m->actmem || B < 1 || T < 1 || B > m->maxB || T > m->maxT)
		die("forward: batch %d x %d exceeds the %d x %d set up", B, T, m->maxB, m->maxT);
	size_t C = m->cfg.n_embd, V = m->cfg.vocab_size, L = m->cfg.n_layer;
	size_t BT = (size_t)B * T;
	double t0 = gpt2_prof_start();
	for (size_t i = 0; i < BT; i++)
		if (tokens[i] >= V)
			die("token id %u at batch position %zu is outside the vocabulary (%zu)",
			    tokens[i], i, V);
	memcpy(m->tokens, tokens, BT * sizeof(uint32_t));
	m->B = B;
	m->T = T;
	K(embed)(m->resid, tokens, NULL, T, tens(m, GPT2_WTE, 0), tens(m, GPT2_WPE, 0), BT, C);
	gpt2_prof_stop(GPT2_PROF_EMBED, t0);
	for (size_t l = 0; l < L; l++)
		layer_fwd(m, (int)l, acts_of(m, (int)l));
	GPT2_PROF(GPT2_PROF_LN, K(layernorm)(m->lnf, m->lnf_mean, m->lnf_rstd,
					     m->resid + L * BT * C, tens(m, GPT2_LNFW, 0),
					     tens(m, GPT2_LNFB, 0), BT, C));
	GPT2_PROF(GPT2_PROF_LMHEAD, mm(0, 1, BT, V, C, m->lnf, C, tens(m, GPT2_WTE, 0), C, 0,
				       m->logits, V));
	m->logits_valid = 1;

	t0 = gpt2_prof_start();
	#pragma omp parallel for schedule(dynamic, 4)
	for (size_t r = 0; r < BT; r++) {
		size_t t = r % T;
		if (t == (size_t)T - 1) {
			m->losses[r] = 0;
			m->lse[r] = 0;
			continue;
		}
		const real *x = m->logits + r * V;
		real lse = K(logsumexp)(x, V);
		m->lse[r] = lse;
		m->losses[r] = lse - x[tokens[r + 1]];
	}
	double sum = 0;
	for (size_t r = 0; r < BT; r++)
		sum += m->losses[r];
	gpt2_prof_stop(GPT2_PROF_LOSS, t0);
	return T < 2 ? 0 : (real)(sum / ((double)B * (T - 1)));
}

void GPT2_NAME(backward)(MODEL *m, real scale)
{
	if (!m->logits_valid)
		die("backward without a forward");
	size_t B = m->B, T = m->T, C = m->cfg.n_embd, V = m->cfg.vocab_size, L = m->cfg.n_layer;
	size_t BT = B * T;
	real s = T > 1 ? scale / (real)(B * (T - 1)) : 0;
	const uint32_t *tok = m->tokens;
	m->logits_valid = 0;
	m->grads_zeroed = NULL;
	double t0 = gpt2_prof_start();
	#pragma omp parallel for schedule(dynamic, 4)
	for (size_t r = 0; r < BT; r++) {
		real *x = m->logits + r * V;
		if (r % T == T - 1) {
			memset(x, 0, V * sizeof(real));
			continue;
		}
		real lse = m->lse[r];
		#pragma omp simd
		for (size_t v = 0; v < V; v++)
			x[v] = GPT2_EXP(x[v] - lse) * s;
		x[tok[r + 1]] -= s;
	}
	gpt2_prof_stop(GPT2_PROF_LOSS_BWD, t0);
	GPT2_PROF(GPT2_PROF_LMHEAD_BWD,
		  mm(0, 0, BT, C, V, m->logits, V, tens(m, GPT2_WTE, 0), C, 0, m->dsmall, C);
		  mm(1, 0, V, C, BT, m->logits, V, m->lnf, C, 1, gtens(m, GPT2_WTE, 0), C));
	GPT2_PROF(GPT2_PROF_LN_BWD, K(zero)(m->dres, BT * C);
		  ln_bwd(m->dres, gtens(m, GPT2_LNFW, 0), gtens(m, GPT2_LNFB, 0), m->dsmall,
			 m->resid + L * BT * C, tens(m, GPT2_LNFW, 0), m->lnf_mean, m->lnf_rstd,
			 BT, C));
	for (size_t l = L; l-- > 0;) {
		LACTS *a = acts_of(m, (int)l);
		if (m->recompute && l != L - 1)
			layer_fwd(m, (int)l, a);
		layer_bwd(m, (int)l, a);
	}
	GPT2_PROF(GPT2_PROF_EMBED_BWD, encoder_bwd(gtens(m, GPT2_WTE, 0), gtens(m, GPT2_WPE, 0),
						   m->dres, tok, BT, T, C));
}

void GPT2_NAME(zero_grad)(MODEL *m)
{
	if (m->grads && m->grads_zeroed != m->grads)
		K(zero)(m->grads, m->lay.total);
	m->grads_zeroed = m->grads;
}

double GPT2_NAME(grad_norm)(MODEL *m)
{
	const uint64_t chunk = 1 << 16;
	uint64_t n = m->lay.total, nc = (n + chunk - 1) / chunk;
	const real *g = m->grads;
	double *part = calloc(nc ? nc : 1, sizeof(double));
	if (!part)
		die("out of memory");
	#pragma omp parallel for schedule(dynamic, 1)
	for (uint64_t c = 0; c < nc; c++) {
		uint64_t e = (c + 1) * chunk < n ? (c + 1) * chunk : n;
		double s = 0;
		#pragma omp simd reduction(+:s)
		for (uint64_t i = c * chunk; i < e; i++)
			s += (double)g[i] * (double)g[i];
		part[c] = s;
	}
	double s = 0;
	for (uint64_t c = 0; c < nc; c++)
		s += part[c];
	free(part);
	return sqrt(s);
}

/* In the order torch.optim.AdamW does it, so the two agree to rounding. ZERO: each gradient
 * is zeroed once read (the CPU backend's next zero_grad then has nothing to do: one pass over
 * the gradients a step saved). */
static void adamw_pass(MODEL *m, uint64_t t, real lr, real wd, real gscale, uint64_t lo,
		       uint64_t hi, int zero)
{
	const double b1 = 0.9, b2 = 0.999;
	const real eps = (real)1e-8;
	if (lo > hi || hi > m->lay.total)
		die("adamw: range %llu..%llu outside the %llu parameters", (unsigned long long)lo,
		    (unsigned long long)hi, (unsigned long long)m->lay.total);
	if (!m->mom) {
		m->mom = K(alloc)(hi - lo);
		m->var = K(alloc)(hi - lo);
		K(zero)(m->mom, hi - lo);
		K(zero)(m->var, hi - lo);
		m->opt_lo = lo;
		m->opt_hi = hi;
	}
	uint64_t mlo = m->opt_hi ? m->opt_lo : 0, mhi = m->opt_hi ? m->opt_hi : m->lay.total;
	if (lo != mlo || hi != mhi)
		die("adamw: the moments hold %llu..%llu, not %llu..%llu", (unsigned long long)mlo,
		    (unsigned long long)mhi, (unsigned long long)lo, (unsigned long long)hi);
	real bc1 = (real)(1 - pow(b1, (double)t));
	real bc2s = (real)sqrt(1 - pow(b2, (double)t));
	real step = lr / bc1;
	for (int k = 0; k < GPT2_NT; k++) {
		real decay = gpt2_tensor_decays(k) ? 1 - lr * wd : 1;
		uint64_t a = m->lay.off[k], e = a + m->lay.size[k];
		a = a > lo ? a : lo;
		e = e < hi ? e : hi;
		real *p = m->params, *g = m->grads, *mo = m->mom, *va = m->var;
		#pragma omp parallel for schedule(dynamic, 1)
		for (uint64_t i0 = a; i0 < e; i0 += 16384) {
			uint64_t i1 = i0 + 16384 < e ? i0 + 16384 : e;
/* one element; the moments hold the range alone (j = i - lo) */
#define ADAMW_ELEM(i, j)                                                   \
	do {                                                               \
		real gi = g[i] * gscale;                                   \
		mo[j] = (real)b1 * mo[j] + (real)(1 - b1) * gi;            \
		va[j] = (real)b2 * va[j] + (real)(1 - b2) * gi * gi;       \
		real den = GPT2_SQRT(va[j]) / bc2s + eps;                  \
		p[i] = p[i] * decay - step * (mo[j] / den);                \
	} while (0)
			if (zero) {
				#pragma omp simd
				for (uint64_t i = i0; i < i1; i++) {
					ADAMW_ELEM(i, i - lo);
					g[i] = 0;
				}
			} else {
				#pragma omp simd
				for (uint64_t i = i0; i < i1; i++)
					ADAMW_ELEM(i, i - lo);
			}
#undef ADAMW_ELEM
		}
	}
}

void GPT2_NAME(adamw_range)(MODEL *m, uint64_t t, real lr, real wd, real gscale, uint64_t lo,
			    uint64_t hi)
{
	adamw_pass(m, t, lr, wd, gscale, lo, hi, 0);
}

void GPT2_NAME(adamw_zero)(MODEL *m, uint64_t t, real lr, real wd, real gscale)
{
	adamw_pass(m, t, lr, wd, gscale, 0, m->lay.total, 1);
	m->grads_zeroed = m->grads;
}

void GPT2_NAME(adamw)(MODEL *m, uint64_t t, real lr, real wd, real gscale)
{
	GPT2_NAME(adamw_range)(m, t, lr, wd, gscale, 0, m->lay.total);
}

#undef MODEL
#undef LACTS
#undef COLBLOCK
#undef GELU_K
#undef GELU_A
#undef K
