/* gpu-infer.c: the CUDA backend's generation, planned and prepared on the host (gpu-infer.h). */
#include "model/gpu-infer.h"

#include "base/die.h"
#include "model/pad.h"
#include "model/plan.h"

static uint64_t esize(int precision)
{
	return precision == GPT2_BF16 ? 2 : 4;
}

uint64_t plan_kv_buf_bytes(const struct gpt2_config *c, uint64_t M, int precision, int k)
{
	/* widths in units of C for the activations of the precision's type */
	static const uint32_t width[PLAN_KV_MEAN] = { 1, 1, 3, 1, 1, 4, 4 };
	uint64_t C = c->n_embd;
	if (k < PLAN_KV_MEAN)
		return M * width[k] * C * esize(precision);
	switch (k) {
	case PLAN_KV_MEAN: case PLAN_KV_RSTD:
		return M * 4;
	case PLAN_KV_IDS:
		return 3 * M * 4;
	case PLAN_KV_LOGITS:
		return M * gpt2_vocab_padded(c->vocab_size) * 4;
	}
	return 0;
}

uint64_t plan_kv_scratch(const struct gpt2_config *c, uint64_t M, int precision, uint64_t *off)
{
	uint64_t at = 0;
	for (int k = 0; k < PLAN_KV_NBUF; k++) {
		if (off)
			off[k] = at;
		at += (plan_kv_buf_bytes(c, M, precision, k) + PLAN_ALIGN - 1) / PLAN_ALIGN *
		      PLAN_ALIGN;
	}
	return at;
}

uint64_t plan_kv_cache_bytes(const struct gpt2_config *c, uint64_t B, uint64_t T, int precision)
{
	return 2 * (uint64_t)c->n_layer * B * T * c->n_embd * esize(precision);
}

void gpt2_plan_kv(const struct gpt2_config *c, uint64_t B, uint64_t T, int precision,
		  struct gpt2_kv_plan *p)
{
	struct gpt2_layout lay;
	gpt2_layout_padded(c, &lay);
	p->tokens = B > T ? B : T;
	p->bytes[PLAN_KV_WEIGHTS] = lay.total * esize(precision);
	p->bytes[PLAN_KV_CACHE] = plan_kv_cache_bytes(c, B, T, precision);
	p->bytes[PLAN_KV_SCRATCH] = plan_kv_scratch(c, p->tokens, precision, NULL);
	p->bytes[PLAN_KV_WORKSPACE] = PLAN_WORKSPACE_BYTES;
	p->total = 0;
	for (int k = 0; k < PLAN_KV_NCAT; k++)
		p->total += p->bytes[k];
}

void gpu_kv_prepare(int32_t *ids, const int *len, int B, int T, uint32_t V, const int *rows,
		    int nr, const uint32_t *toks, int n)
{
	for (int r = 0; r < nr; r++) {
		if (rows[r] < 0 || rows[r] >= B)
			die("inference row %d outside the %d set up", rows[r], B);
		if (len[rows[r]] + n > T)
			die("inference row %d: %d + %d tokens pass the %d set up", rows[r],
			    len[rows[r]], n, T);
	}
	size_t M = (size_t)nr * (size_t)n;
	for (size_t i = 0; i < M; i++) {
		if (toks[i] >= V)
			die("token id %u is outside the vocabulary (%u)", toks[i], V);
		int row = rows[i / (size_t)n];
		ids[i] = (int32_t)toks[i];
		ids[M + i] = row;
		ids[2 * M + i] = len[row] + (int32_t)(i % (size_t)n);
	}
}

uint64_t gpu_kv_logit_rows(int nr, int n, int all, uint64_t C, uint64_t *first, uint64_t *ld)
{
	if (all || n == 1) {
		*first = 0;
		*ld = C;
		return (uint64_t)nr * (uint64_t)n;
	}
	*first = (uint64_t)(n - 1) * C;
	*ld = (uint64_t)n * C;
	return (uint64_t)nr;
}
