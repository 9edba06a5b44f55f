/* infer.c: GPT-2 inference with a key/value cache (see infer.h).
 *
 * Decoding one token is bound by memory bandwidth: every weight is read once per step. The
 * products for a few rows therefore split the weight matrix into contiguous blocks of input
 * rows, one sgemv/sgemm per block, and sum the partial results in block order; each thread
 * streams whole blocks, and the sum order, fixed by the shape, keeps results independent of the
 * thread count. Many rows (a prompt) use output tiles instead, as the trainer does. */
#include "infer/infer.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/die.h"
#include "base/xalloc.h"

/* input rows per block of the few-rows product */
#define KBLOCK 64
/* up to this many rows use the blocked product */
#define FEW_ROWS 32
/* output tiles of the many-rows product and of the logits */
#define TILE_M 128
#define TILE_N 512
/* below this many multiply-adds a loop runs on one thread: waking the others costs more */
#define PAR_MIN (1 << 17)

struct infer {
	const struct gpt2_model *m;
	int maxB, maxT, L, NH, C, hs, V;
	float *kc, *vc;		/* [L][maxB][NH][maxT][hs] */
	int *len;		/* [maxB] */
	size_t cap;		/* rows the scratch holds */
	float *x, *ln, *qkv, *atty, *fch, *part;
	int *row, *pos;		/* per appended token */
};

static float *fbuf(size_t n)
{
	if (n == 0)
		n = 1;
	float *p = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
	if (!p)
		die("out of memory allocating %zu floats for inference", n);
	return p;
}

static void blas_single(void)
{
	openblas_set_num_threads(1);
}

struct infer *infer_new(const struct gpt2_model *m, int maxB, int maxT)
{
	/* once: states may be made on several threads at a time */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	if (maxB < 1 || maxT < 1 || (uint32_t)maxT > m->cfg.n_ctx)
		die("inference state of %d x %d for a model of context %u", maxB, maxT,
		    m->cfg.n_ctx);
	pthread_once(&once, blas_single);
	struct infer *s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->maxB = maxB;
	s->maxT = maxT;
	s->L = (int)m->cfg.n_layer;
	s->NH = (int)m->cfg.n_head;
	s->C = (int)m->cfg.n_embd;
	s->hs = s->C / s->NH;
	s->V = (int)m->cfg.vocab_size;
	size_t kv = (size_t)s->L * maxB * s->NH * maxT * s->hs;
	if (kv / maxB / maxT != (size_t)s->L * s->NH * s->hs)
		die("inference cache of %d x %d is too large", maxB, maxT);
	s->kc = fbuf(kv);
	s->vc = fbuf(kv);
	s->len = xcalloc((size_t)maxB, sizeof(int));
	return s;
}

static void free_scratch(struct infer *s)
{
	free(s->x);
	free(s->ln);
	free(s->qkv);
	free(s->atty);
	free(s->fch);
	free(s->part);
	free(s->row);
	free(s->pos);
}

void infer_free(struct infer *s)
{
	if (!s)
		return;
	free_scratch(s);
	free(s->kc);
	free(s->vc);
	free(s->len);
	free(s);
}

void infer_reset(struct infer *s)
{
	memset(s->len, 0, (size_t)s->maxB * sizeof(int));
}

int infer_len(const struct infer *s, int row)
{
	return s->len[row];
}

static size_t kv_off(const struct infer *s, int l, int b, int h, int t)
{
	return ((((size_t)l * s->maxB + b) * s->NH + h) * s->maxT + t) * s->hs;
}

void infer_copy_row(struct infer *s, int dst, int src)
{
	if (dst == src)
		return;
	size_t n = (size_t)s->len[src] * s->hs * sizeof(float);
	for (int l = 0; l < s->L; l++)
		for (int h = 0; h < s->NH; h++) {
			memcpy(s->kc + kv_off(s, l, dst, h, 0), s->kc + kv_off(s, l, src, h, 0), n);
			memcpy(s->vc + kv_off(s, l, dst, h, 0), s->vc + kv_off(s, l, src, h, 0), n);
		}
	s->len[dst] = s->len[src];
}

static void ensure_scratch(struct infer *s, size_t M)
{
	if (M <= s->cap)
		return;
	free_scratch(s);
	size_t C = (size_t)s->C, nblk = (4 * C + KBLOCK - 1) / KBLOCK;
	s->x = fbuf(M * C);
	s->ln = fbuf(M * C);
	s->qkv = fbuf(M * 3 * C);
	s->atty = fbuf(M * C);
	s->fch = fbuf(M * 4 * C);
	s->part = fbuf((M < FEW_ROWS ? M : FEW_ROWS) * nblk * 4 * C);
	s->row = xreallocarray(NULL, M, sizeof(int));
	s->pos = xreallocarray(NULL, M, sizeof(int));
	s->cap = M;
}

static const float *param(const struct gpt2_model *m, int t, int layer)
{
	uint64_t per = gpt2_tensor_per_layer(t) ? m->lay.size[t] / m->cfg.n_layer : 0;
	return m->params + m->lay.off[t] + per * (uint64_t)layer;
}

/* out[M,OC] = in[M,IC] @ w[IC,OC] + b, or out += that with ACC (the residual) */
static void linear(struct infer *s, float *out, const float *in, const float *w, const float *b,
		   size_t M, size_t IC, size_t OC, int acc)
{
	if (M <= FEW_ROWS) {
		size_t nblk = (IC + KBLOCK - 1) / KBLOCK;
		float *part = s->part;
		int par = M * IC * OC >= PAR_MIN;
		#pragma omp parallel for schedule(static) if (par)
		for (size_t k = 0; k < nblk; k++) {
			size_t k0 = k * KBLOCK, kn = IC - k0 < KBLOCK ? IC - k0 : KBLOCK;
			float *p = part + k * M * OC;
			if (M == 1)
				cblas_sgemv(CblasRowMajor, CblasTrans, (blasint)kn, (blasint)OC, 1,
					    w + k0 * OC, (blasint)OC, in + k0, 1, 0, p, 1);
			else
				cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)M,
					    (blasint)OC, (blasint)kn, 1, in + k0, (blasint)IC,
					    w + k0 * OC, (blasint)OC, 0, p, (blasint)OC);
		}
		size_t n = M * OC;
		#pragma omp parallel for schedule(static) if (par)
		for (size_t c0 = 0; c0 < n; c0 += 256) {
			size_t c1 = c0 + 256 < n ? c0 + 256 : n;
			for (size_t i = c0; i < c1; i++) {
				float v = b[i % OC];
				for (size_t k = 0; k < nblk; k++)
					v += part[k * n + i];
				out[i] = acc ? out[i] + v : v;
			}
		}
		return;
	}
	#pragma omp parallel for schedule(static) if (M * OC >= PAR_MIN)
	for (size_t r = 0; r < M; r++) {
		float *o = out + r * OC;
		if (acc)
			for (size_t c = 0; c < OC; c++)
				o[c] += b[c];
		else
			memcpy(o, b, OC * sizeof(float));
	}
	size_t nti = (M + TILE_M - 1) / TILE_M, ntj = (OC + TILE_N - 1) / TILE_N;
	#pragma omp parallel for schedule(dynamic, 1) if (M * IC * OC >= PAR_MIN)
	for (size_t t = 0; t < nti * ntj; t++) {
		size_t i0 = (t / ntj) * TILE_M, j0 = (t % ntj) * TILE_N;
		size_t mi = M - i0 < TILE_M ? M - i0 : TILE_M, nj = OC - j0 < TILE_N ? OC - j0 : TILE_N;
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)mi, (blasint)nj,
			    (blasint)IC, 1, in + i0 * IC, (blasint)IC, w + j0, (blasint)OC, 1,
			    out + i0 * OC + j0, (blasint)OC);
	}
}

/* logits[M,V] = x[M,C] @ wte^T (the tied output layer): tiles of wte rows, contiguous */
static void lm_head(const struct infer *s, float *logits, const float *x, size_t M)
{
	const float *wte = param(s->m, GPT2_WTE, 0);
	size_t V = (size_t)s->V, C = (size_t)s->C;
	size_t nti = (M + TILE_M - 1) / TILE_M, ntj = (V + TILE_N - 1) / TILE_N;
	#pragma omp parallel for schedule(static) if (M * V * C >= PAR_MIN)
	for (size_t t = 0; t < nti * ntj; t++) {
		size_t i0 = (t / ntj) * TILE_M, j0 = (t % ntj) * TILE_N;
		size_t mi = M - i0 < TILE_M ? M - i0 : TILE_M, nj = V - j0 < TILE_N ? V - j0 : TILE_N;
		if (M == 1)
			cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)nj, (blasint)C, 1,
				    wte + j0 * C, (blasint)C, x, 1, 0, logits + j0, 1);
		else
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)mi,
				    (blasint)nj, (blasint)C, 1, x + i0 * C, (blasint)C, wte + j0 * C,
				    (blasint)C, 0, logits + i0 * V + j0, (blasint)V);
	}
}

static void layernorm(float *out, const float *in, const float *w, const float *b, size_t M,
		      size_t C)
{
	#pragma omp parallel for schedule(static) if (M * C >= PAR_MIN / 16)
	for (size_t r = 0; r < M; r++) {
		const float *x = in + r * C;
		float sum = 0;
		for (size_t c = 0; c < C; c++)
			sum += x[c];
		float mu = sum / (float)C, v = 0;
		for (size_t c = 0; c < C; c++)
			v += (x[c] - mu) * (x[c] - mu);
		float rs = 1 / sqrtf(v / (float)C + (float)GPT2_LN_EPS);
		float *o = out + r * C;
		for (size_t c = 0; c < C; c++)
			o[c] = (x[c] - mu) * rs * w[c] + b[c];
	}
}

static void gelu(float *x, size_t n)
{
	const float k = 0.7978845608028654f, a = 0.044715f;
	#pragma omp parallel for schedule(static) if (n >= PAR_MIN / 16)
	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		x[i] = 0.5f * v * (1 + tanhf(k * (v + a * v * v * v)));
	}
}

/* store the new keys and values of layer L, then attend over each row's cache */
static void attention(struct infer *s, int l, size_t M)
{
	size_t C = (size_t)s->C, hs = (size_t)s->hs, NH = (size_t)s->NH;
	float scale = 1 / sqrtf((float)hs);
	if (s->m->cfg.scale_attn_by_inverse_layer_idx)
		scale /= (float)(l + 1);
	for (size_t i = 0; i < M; i++)
		for (size_t h = 0; h < NH; h++) {
			size_t o = kv_off(s, l, s->row[i], (int)h, s->pos[i]);
			memcpy(s->kc + o, s->qkv + i * 3 * C + C + h * hs, hs * sizeof(float));
			memcpy(s->vc + o, s->qkv + i * 3 * C + 2 * C + h * hs, hs * sizeof(float));
		}
	size_t work = 0;
	for (size_t i = 0; i < M; i++)
		work += (size_t)(s->pos[i] + 1) * NH * hs * 2;
	#pragma omp parallel if (work >= PAR_MIN)
	{
		float *a = fbuf((size_t)s->maxT);
		#pragma omp for schedule(static)
		for (size_t ih = 0; ih < M * NH; ih++) {
			size_t i = ih / NH, h = ih % NH;
			int T = s->pos[i] + 1;
			const float *q = s->qkv + i * 3 * C + h * hs;
			const float *k = s->kc + kv_off(s, l, s->row[i], (int)h, 0);
			const float *v = s->vc + kv_off(s, l, s->row[i], (int)h, 0);
			float mx = -INFINITY;
			for (int u = 0; u < T; u++) {
				float d = 0;
				#pragma omp simd reduction(+:d)
				for (size_t j = 0; j < hs; j++)
					d += q[j] * k[(size_t)u * hs + j];
				d *= scale;
				a[u] = d;
				if (d > mx)
					mx = d;
			}
			float sum = 0;
			for (int u = 0; u < T; u++) {
				a[u] = expf(a[u] - mx);
				sum += a[u];
			}
			float inv = 1 / sum;
			float *o = s->atty + i * C + h * hs;
			memset(o, 0, hs * sizeof(float));
			for (int u = 0; u < T; u++) {
				float p = a[u] * inv;
				#pragma omp simd
				for (size_t j = 0; j < hs; j++)
					o[j] += p * v[(size_t)u * hs + j];
			}
		}
		free(a);
	}
}

void infer_forward(struct infer *s, const int *rows, int nr, const uint32_t *toks, int n,
		   float *logits, int all)
{
	const struct gpt2_model *m = s->m;
	size_t C = (size_t)s->C, M = (size_t)nr * n;
	if (nr < 1 || n < 1)
		return;
	for (int r = 0; r < nr; r++) {
		if (rows[r] < 0 || rows[r] >= s->maxB)
			die("inference row %d outside the %d set up", rows[r], s->maxB);
		if (s->len[rows[r]] + n > s->maxT)
			die("inference row %d: %d + %d tokens pass the %d set up", rows[r],
			    s->len[rows[r]], n, s->maxT);
	}
	ensure_scratch(s, M);
	const float *wte = param(m, GPT2_WTE, 0), *wpe = param(m, GPT2_WPE, 0);
	for (size_t i = 0; i < M; i++) {
		uint32_t t = toks[i];
		if (t >= (uint32_t)s->V)
			die("token id %u is outside the vocabulary (%d)", t, s->V);
		s->row[i] = rows[i / n];
		s->pos[i] = s->len[s->row[i]] + (int)(i % n);
		const float *te = wte + (size_t)t * C, *pe = wpe + (size_t)s->pos[i] * C;
		for (size_t c = 0; c < C; c++)
			s->x[i * C + c] = te[c] + pe[c];
	}
	for (int l = 0; l < s->L; l++) {
		layernorm(s->ln, s->x, param(m, GPT2_LN1W, l), param(m, GPT2_LN1B, l), M, C);
		linear(s, s->qkv, s->ln, param(m, GPT2_QKVW, l), param(m, GPT2_QKVB, l), M, C,
		       3 * C, 0);
		attention(s, l, M);
		linear(s, s->x, s->atty, param(m, GPT2_ATTPROJW, l), param(m, GPT2_ATTPROJB, l), M,
		       C, C, 1);
		layernorm(s->ln, s->x, param(m, GPT2_LN2W, l), param(m, GPT2_LN2B, l), M, C);
		linear(s, s->fch, s->ln, param(m, GPT2_FCW, l), param(m, GPT2_FCB, l), M, C, 4 * C,
		       0);
		gelu(s->fch, M * 4 * C);
		linear(s, s->x, s->fch, param(m, GPT2_FCPROJW, l), param(m, GPT2_FCPROJB, l), M,
		       4 * C, C, 1);
	}
	for (int r = 0; r < nr; r++)
		s->len[rows[r]] += n;
	if (!logits)
		return;
	size_t MO = M;
	if (!all && n > 1) {
		/* only each row's last position goes through the output layer */
		for (int r = 0; r < nr; r++)
			memmove(s->x + (size_t)r * C, s->x + ((size_t)r * n + n - 1) * C,
				C * sizeof(float));
		MO = (size_t)nr;
	}
	layernorm(s->ln, s->x, param(m, GPT2_LNFW, 0), param(m, GPT2_LNFB, 0), MO, C);
	lm_head(s, logits, s->ln, MO);
}
