/* plan.h: the device memory the CUDA backend needs for a model, batch, sequence length,
 * precision and recompute setting, computed on the host without a device (cp-train --plan),
 * and the layout of the activations that backend allocates.
 *
 * Inside the backend the vocabulary is padded to a multiple of GPT2_VOCAB_ALIGN (model/pad.h)
 * so that every matrix side of the classifier suits the tensor cores; every parameter-sized
 * buffer (the parameters, master weights, moments, gradients) holds the padded layout.
 * Checkpoints and exports keep the true vocabulary. */
#ifndef CP_MODEL_PLAN_H
#define CP_MODEL_PLAN_H

#include <stdint.h>

#include "base/buf.h"
#include "model/gpt2.h"

/* How the backend stores parameters, gradients and activations. FP32: everything in fp32.
 * BF16: a bf16 copy of the parameters the products read, fp32 master weights that AdamW
 * updates (rounded stochastically into the copy, model/bf16.h), bf16 gradients and
 * activations; the AdamW moments, LayerNorm statistics, the logsumexp and the losses stay
 * fp32 in both. */
enum gpt2_precision { GPT2_FP32, GPT2_BF16, GPT2_NPRECISION };

/* "fp32", "bf16"; NULL for a value out of range */
const char *gpt2_precision_name(int p);
/* the enum value of "fp32" or "bf16", else -1 */
int gpt2_precision_parse(const char *s);
/* the precision a backend trains in when none is asked for: bf16 on cuda, fp32 elsewhere */
int gpt2_precision_default(const char *backend);
/* NULL when BACKEND trains in precision P, else why not (static buffer) */
const char *gpt2_precision_check(const char *backend, int p);

/* The cuBLASLt workspace the backend allocates once: 32 MiB, what cuBLASLt's heuristics
 * ask for on Hopper (smaller cards take less, and the plan stays an upper bound). */
#define PLAN_WORKSPACE_BYTES (32ull << 20)

enum plan_cat {
	PLAN_PARAMS,		/* the parameters the kernels read (bf16 or fp32) */
	PLAN_MASTER,		/* fp32 master weights (bf16 only; in fp32 the parameters are) */
	PLAN_MOMENTS,		/* AdamW's two moments, fp32 */
	PLAN_GRADS,		/* gradients, in the parameters' type */
	PLAN_ACTS,		/* activations and backward scratch (plan_act) */
	PLAN_SCRATCH,		/* the kernels' partial sums and token buckets (plan_scratch) */
	PLAN_WORKSPACE,		/* cuBLASLt */
	PLAN_NCAT
};

/* The element type of an activation: the precision's (bf16 or fp32), fp32, or int32. */
enum plan_dtype { PLAN_DT_ACT, PLAN_DT_F32, PLAN_DT_I32 };

/* One activation buffer of B * T * (c * C + h * NH + v * Vpad + one) elements: the
 * coefficients of the width, of the heads (the attention's logsumexp, one per row and head),
 * of the padded vocabulary and of 1. No buffer grows with T * T: attention is flash-style,
 * keeping only its output and each row's logsumexp for the backward pass. */
struct plan_act {
	const char *name;
	int per_layer;		/* one per layer, else one for the model */
	int recomputed;		/* per-layer, dropped by --recompute: one shared copy instead */
	int dtype;		/* enum plan_dtype */
	uint32_t c, h, v, one;
};

/* the activation buffers in allocation order; *N their number */
const struct plan_act *plan_acts(int *n);
/* copies of activation A the backend keeps: L per layer (1 when recomputed), else 1 */
uint64_t plan_act_copies(const struct plan_act *a, const struct gpt2_config *c, int recompute);
/* bytes of one copy of activation A for B x T */
uint64_t plan_act_bytes(const struct plan_act *a, const struct gpt2_config *c, uint64_t B,
			uint64_t T, int precision);

/* The kernels' scratch: the column sums (bias and LayerNorm weight gradients) add
 * PLAN_ROWCHUNK rows a block into [rows / PLAN_ROWCHUNK][4C] fp32 partials, summed in a second
 * pass; the gradient norm adds PLAN_NORM_BLOCKS fp64 partials; the embedding's backward pass
 * reads its token buckets (model/gpu-host.h: ids, starts, positions) from the device. */
#define PLAN_ROWCHUNK 128
#define PLAN_NORM_BLOCKS 1024
enum plan_scratch_buf { PLAN_SC_COLSUM, PLAN_SC_NORM, PLAN_SC_IDS, PLAN_SC_START, PLAN_SC_POS,
			PLAN_SC_N };
/* Bytes of scratch buffer K for micro-batches of up to B x T (a multiple of PLAN_ALIGN) */
uint64_t plan_scratch_buf_bytes(const struct gpt2_config *c, uint64_t B, uint64_t T, int k);
/* all of them */
uint64_t plan_scratch_bytes(const struct gpt2_config *c, uint64_t B, uint64_t T);

/* Byte alignment of every buffer the backend carves out of its one activation arena. */
#define PLAN_ALIGN 256

struct plan_opts;
/* Where the activations lie in the one arena the backend allocates, in plan_acts order: OFF[i]
 * the byte offset of activation i's first copy, STRIDE[i] the bytes from one copy to the next
 * (its size rounded up to PLAN_ALIGN); either may be NULL. Returns the arena's bytes, the
 * plan's PLAN_ACTS. */
uint64_t plan_arena(const struct gpt2_config *c, const struct plan_opts *o, uint64_t *off,
		    uint64_t *stride);

struct plan_opts {
	uint64_t B, T;		/* sequences per micro-batch on the device, tokens per sequence */
	int precision;		/* enum gpt2_precision */
	int recompute;
	/* The job: WORLD ranks (GPUs; 0 is taken as 1), each accumulating ACCUM micro-batches (0:
	 * 1) a step; with ZERO 1 the master weights and the moments are sharded over the ranks
	 * in the device's equal shards (plan_shard_size), the parameter and gradient buffers
	 * hold WORLD whole shards, and the gradients count the shard's reduced copy too. */
	uint64_t world, accum;
	int zero;
};

/* ---- data parallelism on the device: ZeRO-1's shards and the gradient buckets ----
 *
 * The device's shards are equal, as ncclReduceScatter and ncclAllGather need: rank r owns the
 * padded elements [r S, r S + plan_shard_len(r)), S = ceil(Npad / W) rounded up to
 * PLAN_SHARD_ALIGN elements (so every shard starts 16-byte aligned in bf16); the parameter
 * and gradient buffers hold W S elements, the tail past Npad zero and never updated. */
#define PLAN_SHARD_ALIGN 8
/* S for NPAD padded elements over WORLD ranks (NPAD itself for one rank) */
uint64_t plan_shard_size(uint64_t npad, uint64_t world);
/* the padded elements of [r S, (r + 1) S) below NPAD: the part of the shard that is real */
uint64_t plan_shard_len(uint64_t npad, uint64_t world, uint64_t r);
/* The same shards in the true layout of C (what checkpoints and the host model hold): OFF[r]
 * (r = 0..WORLD) the true elements whose padded index is below r S, so rank r's master weights
 * and moments are true elements [OFF[r], OFF[r + 1]); OFF[WORLD] is every one. */
void plan_shard_true_offsets(const struct gpt2_config *c, uint64_t world, uint64_t *off);

/* A gradient bucket: slices of the padded layout reduced together once the backward pass has
 * written all of them. The layout is tensor-major, so a run of consecutive layers is one slice
 * of each of the 12 per-layer tensors; buckets are made from the last layer down, each of whole
 * layers adding up to at most the target bytes (one layer when a layer alone is over it); ln_f,
 * whose gradient the backward pass makes first, joins the first bucket; wte and wpe, finished
 * only by the embeddings' backward pass after every layer, make the last bucket alone. */
#define PLAN_BUCKET_BYTES (25ull << 20)
struct plan_slice {
	uint64_t off, n;	/* padded elements [off, off + n) */
};
struct plan_bucket {
	int layer;		/* complete once the backward pass has done this layer; -1: after
				 * the embeddings' backward pass */
	int first, count;	/* its slices: plan_buckets.slice[first .. first + count - 1] */
	uint64_t n;		/* elements */
};
struct plan_buckets {
	int n, n_slices;
	struct plan_bucket *b;	/* in the order the backward pass completes them */
	struct plan_slice *slice;
};
/* The buckets of model C's gradients of ESIZE-byte elements, each about TARGET bytes (0:
 * PLAN_BUCKET_BYTES). */
void plan_buckets(const struct gpt2_config *c, uint64_t esize, uint64_t target,
		  struct plan_buckets *pb);
void plan_buckets_free(struct plan_buckets *pb);

struct gpt2_plan {
	uint32_t vocab, vpad;		/* the true and the padded vocabulary */
	uint64_t n_params, n_padded;	/* parameters in the true and the padded layout */
	uint64_t n_shard;		/* of those, the optimizer state a rank holds */
	uint64_t tokens_per_step;	/* B x T x world x accum */
	uint64_t bytes[PLAN_NCAT];
	uint64_t total;
};

/* The memory the CUDA backend needs for model C with options O. */
void gpt2_plan(const struct gpt2_config *c, const struct plan_opts *o, struct gpt2_plan *p);
/* the category's label in the printed table ("parameters (bf16)", ...) */
const char *plan_cat_label(int k, int precision);
/* The plan as cp-train --plan prints it: the shape, the job (with several ranks or ZeRO, its
 * gradient buckets), a table of the categories in bytes and GiB, the total, then the
 * activation buffers one per line. */
void gpt2_plan_format(struct buf *b, const struct gpt2_config *c, const struct plan_opts *o,
		      const struct gpt2_plan *p);

#endif
