/* backend.h: the one interface between the model's users and the hardware that runs it.
 * cp-train drives the training half, cp-complete, its server and cp-humaneval generate drive
 * the inference half; a backend is chosen by name (--device cpu|cuda[:N]).
 *
 * The host copy of the model (struct gpt2_model: parameters, and for training the gradients
 * and AdamW moments) is the truth that checkpoints and exports read: a backend that keeps
 * device copies syncs them with to_host / from_host. Every call returns after its work is
 * done. */
#ifndef CP_BACKEND_H
#define CP_BACKEND_H

#include <stdint.h>

#include "model/gpt2.h"

/* The ranks of a data-parallel job (train/mpi.h makes one over MPI); size 1 alone. */
struct gpt2_comm {
	int rank, size;
	/* sum N floats (DBL: doubles) of host memory over all ranks, in place */
	void (*allreduce_host)(void *p, uint64_t n, int dbl);
	/* this rank among those on its host (0 alone), for choosing its GPU */
	int local_rank;
	/* N bytes at P from rank ROOT to every rank (a GPU backend's NCCL bootstrap) */
	void (*bcast_host)(void *p, uint64_t n, int root);
	/* A device backend begins waiting for its own collective WHAT (named in the message of
	 * a timeout, train/mpi.h), or with NULL ends; NULL: nothing watches. */
	void (*watch)(const char *what);
};

/* A backend's inference state: B rows (independent sequences) of up to T positions, each
 * with its key/value cache. Each backend defines it in its own file (the CPU's is in
 * model/cpu-infer.c) and only its own kv_* functions look inside. */
struct gpt2_kv;

/* A device's name as its driver reports it (for the MFU table, model/mfu.h) and its memory. */
struct gpt2_device_info {
	char name[256];
	uint64_t mem_used;	/* bytes this process holds on the device */
	uint64_t mem_peak;	/* the most it held */
	uint64_t mem_total;	/* the device's */
};

/* How a device backend exchanges the gradients of a data-parallel job itself (set_dist). */
struct gpt2_dist {
	int zero;		/* 1: ZeRO-1, the master weights and moments sharded over the ranks */
	int overlap;		/* 1: reduce in buckets during the backward pass, 0: in one call
				 * after it, -1: the backend's default */
	uint64_t accum;		/* backward passes a step (0: 1); the last one reduces as it goes */
	uint64_t bucket_bytes;	/* a bucket's target (0: model/plan.h's PLAN_BUCKET_BYTES) */
};

struct gpt2_backend {
	const char *name;
	/* The largest difference from the cpu backend its results may show, relative to the
	 * values' scale (max |a - b| / max(1, max |b|)) for logits and losses; 0: bit-exact. */
	double tolerance;
	/* 1: the model's parameters and gradients are the host model's own (m->params,
	 * m->grads), so the trainer may read and swap them (the CPU backend) */
	int host_memory;
	/* Make device INDEX (-1: the default one) current; 0, or -1 with *ERR (malloc'd) when it
	 * is not present. NULL when there is nothing to open. */
	int (*open)(int index, char **err);

	/* ---- training ---- */
	/* Before setup: train in PRECISION (enum gpt2_precision, model/plan.h), rounding the
	 * master weights into the bf16 copy stochastically under SR_SEED; STEP is the last AdamW
	 * step taken (0 for a new model), from which from_host rounds again on a resume, so the
	 * copy equals the one the interrupted run had. NULL: fp32 only. */
	void (*set_precision)(struct gpt2_model *m, int precision, uint64_t sr_seed,
			      uint64_t step);
	/* allocate activations (and device buffers) for batches of up to B x T */
	void (*setup)(struct gpt2_model *m, int B, int T, int recompute);
	/* mean cross-entropy of the T-1 predictions of each of the B sequences */
	float (*forward)(struct gpt2_model *m, const uint32_t *tokens, int B, int T);
	/* add d(loss * scale)/d(params) to the gradients; after forward on the same batch */
	void (*backward)(struct gpt2_model *m, float scale);
	void (*zero_grad)(struct gpt2_model *m);
	/* Sum the gradients over the ranks of C, in place (the CPU backend hands its host buffer
	 * to C->allreduce_host; a GPU backend reduces device buffers itself, under set_dist
	 * perhaps already during the backward pass). Nothing when C->size is 1 and set_dist was
	 * not called. */
	void (*allreduce_grads)(struct gpt2_model *m, const struct gpt2_comm *c);
	/* global L2 norm of the gradients */
	double (*grad_norm)(struct gpt2_model *m);
	/* AdamW step T (1-based) on the parameters and the moments m->mom, m->var; GSCALE
	 * multiplies the gradients first (clipping) */
	void (*adamw)(struct gpt2_model *m, uint64_t t, float lr, float wd, float gscale);
	/* The same step on parameters [LO, HI) alone, the moments holding only those (ZeRO-1's
	 * shard, train/zero.h); NULL where the backend cannot shard. A backend that has it keeps
	 * its parameters and gradients in host memory (m->params, m->grads). */
	void (*adamw_range)(struct gpt2_model *m, uint64_t t, float lr, float wd, float gscale,
			    uint64_t lo, uint64_t hi);
	void (*to_host)(struct gpt2_model *m);
	void (*from_host)(struct gpt2_model *m);
	/* Before setup, on every rank of C (which must outlive M's training): exchange the
	 * gradients over the device's own collectives as D says, even when C has one rank (so
	 * one GPU runs the code path). With D->zero: allreduce_grads reduce-scatters, grad_norm
	 * is the whole sum's on every rank, adamw updates this rank's shard and all-gathers the
	 * parameters; from_host takes whole moments (a checkpoint's) or this rank's shard of them
	 * (opt_lo..opt_hi as model/plan.h's plan_shard_true_offsets places it); to_host, called
	 * on every rank, writes the shard's master weights into m->params and its moments into
	 * shard-sized m->mom, m->var. NULL: no device collectives (host-memory backends, whose
	 * ZeRO is adamw_range's). */
	void (*set_dist)(struct gpt2_model *m, const struct gpt2_comm *c,
			 const struct gpt2_dist *d);

	/* Free what the backend holds for M on the device (NULL: nothing). */
	void (*release)(struct gpt2_model *m);
	/* What the device is, for the log: 0 and *I filled, or -1 (NULL: the host CPU). */
	int (*info)(const struct gpt2_model *m, struct gpt2_device_info *i);

	/* ---- inference: M's parameters are only read, so states may share one model ---- */
	/* A state for B rows of up to T positions (T <= n_ctx); dies when memory runs out. */
	struct gpt2_kv *(*kv_new)(const struct gpt2_model *m, int B, int T);
	void (*kv_free)(struct gpt2_kv *kv);
	/* empty every row */
	void (*kv_reset)(struct gpt2_kv *kv);
	/* tokens cached in ROW */
	int (*kv_len)(const struct gpt2_kv *kv, int row);
	/* make row DST a copy of row SRC (a prompt shared by several samples is read once) */
	void (*kv_copy_row)(struct gpt2_kv *kv, int dst, int src);
	/* Append N tokens to each of the NR rows ROWS[] (row ROWS[i] gets TOKS[i*N .. i*N+N-1])
	 * and write host logits: with ALL after every appended token ([NR*N][V], in that order),
	 * else after each row's last one ([NR][V]); LOGITS NULL only fills the cache. Dies when
	 * a row would pass T or a token is outside the vocabulary (callers check both first). */
	void (*kv_forward)(struct gpt2_kv *kv, const int *rows, int nr, const uint32_t *toks,
			   int n, float *logits, int all);
};

extern const struct gpt2_backend gpt2_cpu_backend;
/* gpu/backend.cu; only tools linked with gpu/'s objects have it (backend.c refers to it
 * weakly, so the rest link without CUDA) */
extern const struct gpt2_backend gpt2_cuda_backend;

/* The built-in backend called NAME ("cpu", "cuda"), or NULL. */
const struct gpt2_backend *gpt2_backend_find(const char *name);
/* the names of the built-in backends, ", "-separated */
const char *gpt2_backend_names(void);
/* Parse a --device value (cpu, cuda, cuda:N), find its backend and open the device: the
 * backend, or NULL with *ERR (malloc'd) naming the device when it is not built in, not
 * present, or malformed. */
const struct gpt2_backend *gpt2_backend_select(const char *device, char **err);

#endif
