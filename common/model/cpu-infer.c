/* cpu-infer.c: GPT-2 inference on the CPU with a key/value cache, the CPU backend's kv_*
 * (model/backend.h), on the kernels the training forward uses (model/kernels.h).
 *
 * A state holds B independent rows (sequences), each with its own cache of up to T positions;
 * one call appends tokens to any subset of rows. Appending a token costs the same whatever is
 * cached (the attention over the cache aside), which is what makes sampling linear in its
 * length. Decoding a token is bound by memory bandwidth, every weight read once per step, so
 * a few rows take the kernels' few-rows product; many (a prompt) take the output tiles the
 * trainer takes, and then the logits are the training forward's, bit for bit. */
#include "model/cpu-infer.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/die.h"
#include "base/xalloc.h"
#include "model/cpu-bf16.h"
#include "model/kernels.h"

/* below this many multiply-adds the attention runs on one thread */
#define PAR_MIN ((size_t)1 << 17)

struct gpt2_kv {
	const struct gpt2_model *m;
	int B, T, L, NH, C, hs, V;
	float *kc, *vc;		/* [L][B][NH][T][hs] */
	int *len;		/* [B] */
	size_t cap;		/* tokens the scratch holds */
	float *x, *ln, *qkv, *atty, *fch, *part;
	int *row, *pos;		/* per appended token */
};

static void blas_single(void)
{
	openblas_set_num_threads(1);
}

struct gpt2_kv *gpt2_cpu_kv_new(const struct gpt2_model *m, int B, int T)
{
	/* once: states may be made on several threads at a time; the kernels thread BLAS */
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	if (B < 1 || T < 1 || (uint32_t)T > m->cfg.n_ctx)
		die("inference state of %d x %d for a model of context %u", B, T, m->cfg.n_ctx);
	pthread_once(&once, blas_single);
	struct gpt2_kv *s = xcalloc(1, sizeof(*s));
	s->m = m;
	s->B = B;
	s->T = T;
	s->L = (int)m->cfg.n_layer;
	s->NH = (int)m->cfg.n_head;
	s->C = (int)m->cfg.n_embd;
	s->hs = s->C / s->NH;
	s->V = (int)m->cfg.vocab_size;
	size_t kv = (size_t)s->L * B * s->NH * T * s->hs;
	if (kv / B / T != (size_t)s->L * s->NH * s->hs)
		die("inference cache of %d x %d is too large", B, T);
	s->kc = gpt2_k_alloc(kv);
	s->vc = gpt2_k_alloc(kv);
	s->len = xcalloc((size_t)B, sizeof(int));
	return s;
}

static void free_scratch(struct gpt2_kv *s)
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

void gpt2_cpu_kv_free(struct gpt2_kv *s)
{
	if (!s)
		return;
	free_scratch(s);
	free(s->kc);
	free(s->vc);
	free(s->len);
	free(s);
}

void gpt2_cpu_kv_reset(struct gpt2_kv *s)
{
	memset(s->len, 0, (size_t)s->B * sizeof(int));
}

int gpt2_cpu_kv_len(const struct gpt2_kv *s, int row)
{
	return s->len[row];
}

static size_t kv_off(const struct gpt2_kv *s, int l, int b, int h, int t)
{
	return ((((size_t)l * s->B + b) * s->NH + h) * s->T + t) * s->hs;
}

void gpt2_cpu_kv_copy_row(struct gpt2_kv *s, int dst, int src)
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

static void ensure_scratch(struct gpt2_kv *s, size_t M)
{
	if (M <= s->cap)
		return;
	free_scratch(s);
	size_t C = (size_t)s->C, nblk = (4 * C + GPT2_KBLOCK - 1) / GPT2_KBLOCK;
	s->x = gpt2_k_alloc(M * C);
	s->ln = gpt2_k_alloc(M * C);
	s->qkv = gpt2_k_alloc(M * 3 * C);
	s->atty = gpt2_k_alloc(M * C);
	s->fch = gpt2_k_alloc(M * 4 * C);
	/* the largest of the products' partial sums (4C inputs by C outputs, or C by 4C) */
	s->part = gpt2_k_alloc((M < GPT2_FEW_ROWS ? M : GPT2_FEW_ROWS) * nblk * 4 * C);
	s->row = xreallocarray(NULL, M, sizeof(int));
	s->pos = xreallocarray(NULL, M, sizeof(int));
	s->cap = M;
}

static const float *param(const struct gpt2_model *m, int t, int layer)
{
	return m->params + gpt2_tensor_offset(&m->cfg, &m->lay, t, layer);
}

/* out = inp @ W + b (ACC: out +=) for weight T of layer L: bf16 weights when the model has
 * them (cp-complete --bf16), else the fp32 kernels' */
static void linear(struct gpt2_kv *s, float *out, const float *inp, int t, int l, size_t M,
		   size_t IC, size_t OC, int acc)
{
	const struct gpt2_model *m = s->m;
	const float *b = param(m, t + 1, l);	/* each weight's bias follows it */
	if (m->infer_bf16)
		cpu_bf16_linear(out, inp, cpu_bf16_weight(m->infer_bf16, t, l), b, M, IC, OC, acc);
	else
		gpt2_k_linear(out, inp, param(m, t, l), b, M, IC, OC, acc, s->part);
}

/* store the new keys and values of layer L, then attend over each row's cache */
static void attention(struct gpt2_kv *s, int l, size_t M)
{
	size_t C = (size_t)s->C, hs = (size_t)s->hs, NH = (size_t)s->NH;
	/* as the training forward has it (gpt2-impl.h's attn_scale) */
	float scale = 1 / sqrtf((float)hs);
	if (s->m->cfg.scale_attn_by_inverse_layer_idx)
		scale /= (float)(l + 1);
	for (size_t i = 0; i < M; i++)
		for (size_t h = 0; h < NH; h++) {
			size_t o = kv_off(s, l, s->row[i], (int)h, s->pos[i]);
			memcpy(s->kc + o, s->qkv + i * 3 * C + C + h * hs, hs * sizeof(float));
			memcpy(s->vc + o, s->qkv + i * 3 * C + 2 * C + h * hs, hs * sizeof(float));
		}
	/* the bf16 path's own (model/cpu-bf16.h): fp32's bits are the training forward's */
	int bf16 = s->m->infer_bf16 != NULL;
	size_t work = 0;
	for (size_t i = 0; i < M; i++)
		work += (size_t)(s->pos[i] + 1) * NH * hs * 2;
	#pragma omp parallel if (work >= PAR_MIN)
	{
		float *a = gpt2_k_alloc((size_t)s->T);
		#pragma omp for schedule(static)
		for (size_t ih = 0; ih < M * NH; ih++) {
			size_t i = ih / NH, h = ih % NH;
			size_t o = kv_off(s, l, s->row[i], (int)h, 0);
			(bf16 ? cpu_bf16_attn_row : gpt2_k_attn_row)(s->atty + i * C + h * hs, a,
				s->qkv + i * 3 * C + h * hs, s->kc + o, s->vc + o, hs,
				(size_t)s->pos[i] + 1, hs, scale);
		}
		free(a);
	}
}

/* the rows and positions of the M = NR * N appended tokens, checked; their embeddings */
static void embed(struct gpt2_kv *s, const int *rows, int nr, const uint32_t *toks, int n)
{
	for (int r = 0; r < nr; r++) {
		if (rows[r] < 0 || rows[r] >= s->B)
			die("inference row %d outside the %d set up", rows[r], s->B);
		if (s->len[rows[r]] + n > s->T)
			die("inference row %d: %d + %d tokens pass the %d set up", rows[r],
			    s->len[rows[r]], n, s->T);
	}
	size_t M = (size_t)nr * n;
	ensure_scratch(s, M);
	for (size_t i = 0; i < M; i++) {
		if (toks[i] >= (uint32_t)s->V)
			die("token id %u is outside the vocabulary (%d)", toks[i], s->V);
		s->row[i] = rows[i / n];
		s->pos[i] = s->len[s->row[i]] + (int)(i % n);
	}
	gpt2_k_embed(s->x, toks, s->pos, 0, param(s->m, GPT2_WTE, 0), param(s->m, GPT2_WPE, 0), M,
		     (size_t)s->C);
}

void gpt2_cpu_kv_forward(struct gpt2_kv *s, const int *rows, int nr, const uint32_t *toks,
			 int n, float *logits, int all)
{
	const struct gpt2_model *m = s->m;
	size_t C = (size_t)s->C, M = (size_t)nr * n;
	if (nr < 1 || n < 1)
		return;
	embed(s, rows, nr, toks, n);
	for (int l = 0; l < s->L; l++) {
		gpt2_k_layernorm(s->ln, NULL, NULL, s->x, param(m, GPT2_LN1W, l),
				 param(m, GPT2_LN1B, l), M, C);
		linear(s, s->qkv, s->ln, GPT2_QKVW, l, M, C, 3 * C, 0);
		attention(s, l, M);
		linear(s, s->x, s->atty, GPT2_ATTPROJW, l, M, C, C, 1);
		gpt2_k_layernorm(s->ln, NULL, NULL, s->x, param(m, GPT2_LN2W, l),
				 param(m, GPT2_LN2B, l), M, C);
		if (m->infer_bf16) {
			/* the GELU in each panel's store, not a pass of its own */
			cpu_bf16_linear_gelu(s->fch, s->ln, cpu_bf16_weight(m->infer_bf16, GPT2_FCW, l),
					     param(m, GPT2_FCB, l), M, C, 4 * C);
		} else {
			linear(s, s->fch, s->ln, GPT2_FCW, l, M, C, 4 * C, 0);
			gpt2_k_gelu(s->fch, s->fch, M * 4 * C);
		}
		linear(s, s->x, s->fch, GPT2_FCPROJW, l, M, 4 * C, C, 1);
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
	gpt2_k_layernorm(s->ln, NULL, NULL, s->x, param(m, GPT2_LNFW, 0), param(m, GPT2_LNFB, 0),
			 MO, C);
	/* the tied output layer: logits[MO,V] = ln @ wte^T */
	if (m->infer_bf16)
		cpu_bf16_linear(logits, s->ln, cpu_bf16_weight(m->infer_bf16, GPT2_WTE, 0), NULL, MO,
				C, (size_t)s->V, 0);
	else
		gpt2_k_mm(0, 1, MO, (size_t)s->V, C, s->ln, C, param(m, GPT2_WTE, 0), C, 0, logits,
			  (size_t)s->V, 1);
}
