/* gpu-infer.h: the host side of the CUDA backend's generation (gpu/infer.cu), in C so that it
 * is tested without a GPU: the device memory a state of B rows x T positions takes, planned
 * beforehand as plan.h plans training; where each key and value lies in its cache; and the
 * inputs of one kv_forward call, checked and laid out for the kernels.
 *
 * The cache has the CPU backend's layout (model/cpu-infer.c): [L][B][NH][T][hs], the keys of
 * one row and head contiguous, so the attention of a new query reads one run of memory. A
 * state's scratch holds the activations of the tokens one call appends; it is planned for
 * max(B, T) of them (a step of every row, or one row's prompt) and grows past that. */
#ifndef CP_MODEL_GPU_INFER_H
#define CP_MODEL_GPU_INFER_H

#include <stdint.h>

#include "model/bf16.h"
#include "model/gpt2.h"

/* where key (or value) element 0 of position T of row B, head H, layer L lies in a cache of
 * B_ rows, NH heads, T_ positions and head size HS */
CP_HD static inline uint64_t cpg_kv_off(int l, int b, int h, int t, int B_, int NH, int T_,
					int hs)
{
	return ((((uint64_t)l * (uint64_t)B_ + (uint64_t)b) * (uint64_t)NH + (uint64_t)h) *
			(uint64_t)T_ + (uint64_t)t) * (uint64_t)hs;
}

/* The scratch of one call of M tokens, each buffer M rows: the residual stream, the
 * LayerNorm output, qkv, the attention output, a product's output, the MLP's input to the
 * GELU and its output (the precision's type); the LayerNorm mean and 1/std (fp32); the
 * tokens, rows and positions (int32, gpu_kv_prepare); the logits over the padded vocabulary
 * (fp32 in both precisions: the host samples from them). */
enum plan_kv_buf { PLAN_KV_X, PLAN_KV_LN, PLAN_KV_QKV, PLAN_KV_ATTY, PLAN_KV_TMP, PLAN_KV_FC,
		   PLAN_KV_GELU, PLAN_KV_MEAN, PLAN_KV_RSTD, PLAN_KV_IDS, PLAN_KV_LOGITS,
		   PLAN_KV_NBUF };
/* bytes of buffer K for M tokens (not yet aligned) */
uint64_t plan_kv_buf_bytes(const struct gpt2_config *c, uint64_t M, int precision, int k);
/* the scratch's bytes for M tokens, buffers aligned to PLAN_ALIGN; OFF[k] (may be NULL) where
 * each begins */
uint64_t plan_kv_scratch(const struct gpt2_config *c, uint64_t M, int precision, uint64_t *off);
/* bytes of the key/value cache: keys and values of L layers, B rows, T positions, C wide */
uint64_t plan_kv_cache_bytes(const struct gpt2_config *c, uint64_t B, uint64_t T, int precision);

enum plan_kv_cat {
	PLAN_KV_WEIGHTS,	/* the padded parameters, once a model whatever its states */
	PLAN_KV_CACHE,		/* keys and values */
	PLAN_KV_SCRATCH,	/* activations and logits of max(B, T) tokens a call */
	PLAN_KV_WORKSPACE,	/* cuBLASLt's, one a state */
	PLAN_KV_NCAT
};

struct gpt2_kv_plan {
	uint64_t tokens;	/* a call's tokens the scratch holds without growing */
	uint64_t bytes[PLAN_KV_NCAT];
	uint64_t total;
};

/* The device memory of one state of B rows x T positions of model C, precision P (enum
 * gpt2_precision: bf16 when the model has bf16 inference weights). */
void gpt2_plan_kv(const struct gpt2_config *c, uint64_t B, uint64_t T, int precision,
		  struct gpt2_kv_plan *p);

/* The int32 inputs of appending N tokens to each of the NR rows ROWS[] (model/backend.h's
 * kv_forward), M = NR x N: IDS[0, M) the tokens, [M, 2M) their rows, [2M, 3M) their
 * positions (LEN[row] + j). Dies, as the CPU backend does, when a row is outside the B set
 * up, would pass T, or a token is outside the vocabulary V. */
void gpu_kv_prepare(int32_t *ids, const int *len, int B, int T, uint32_t V, const int *rows,
		    int nr, const uint32_t *toks, int n);

/* The rows of the final LayerNorm's output ([NR x N][C]) the output layer reads: with ALL
 * every one, else each row's last token; the first at element *FIRST, then one every *LD
 * elements (C: all of them in place; else they are gathered first). Returns how many. */
uint64_t gpu_kv_logit_rows(int nr, int n, int all, uint64_t C, uint64_t *first, uint64_t *ld);

#endif
