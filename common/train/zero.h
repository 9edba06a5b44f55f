/* zero.h: ZeRO stage 1 (--zero 1). On a backend whose parameters and gradients are host memory
 * (the CPU's), here, over MPI: each rank keeps the AdamW moments of its shard of the parameters alone, updates
 * only that shard, and the ranks exchange gradients and parameters in shards: a reduce-scatter
 * of the gradients instead of their all-reduce, AdamW on the shard, an all-gather of the
 * parameters. The shards are contiguous ranges of the flat parameter vector, balanced to one
 * element, so any number of ranks can resume any checkpoint: a checkpoint holds the whole
 * moments (gathered to rank 0), and each rank takes its shard on load.
 *
 * On a device backend (set_dist, model/backend.h) the device's collectives do the exchanges
 * and these functions only call it; its shards are model/plan.h's equal ones, placed in the
 * true layout by plan_shard_true_offsets, and the checkpoint is the same: whole master
 * weights and moments, gathered here to rank 0. */
#ifndef CP_TRAIN_ZERO_H
#define CP_TRAIN_ZERO_H

#include <stdint.h>

#include "model/backend.h"
#include "model/gpt2.h"

struct zero {
	uint64_t *off;		/* [size + 1]: rank r's shard is [off[r], off[r + 1]) */
	uint64_t lo, hi;	/* this rank's */
	float *buf;		/* [hi - lo]: the reduced gradients of the shard (host backends) */
	const struct gpt2_backend *dev;	/* the device backend doing the exchanges, or NULL */
	const struct gpt2_comm *comm;
};

/* The shards of N elements over SIZE ranks: OFF[r] = N * r / SIZE, OFF[SIZE] = N. */
void zero_shards(uint64_t n, int size, uint64_t *off);
/* Set Z up for model M of backend BE on comm C (a device backend's set_dist already called);
 * moments M holds whole (a checkpoint's) become the shard. A usage error when BE cannot
 * shard. */
void zero_init(struct zero *z, const struct gpt2_backend *be, struct gpt2_model *m,
	       const struct gpt2_comm *c);
void zero_free(struct zero *z);
/* After the backward passes: this rank's shard of the gradients summed over the ranks, and
 * the norm of the whole summed gradient (every rank gets it). */
double zero_reduce_grads(struct zero *z, struct gpt2_model *m);
/* AdamW step T on the shard through the backend's adamw_range, then every rank's shard of
 * the parameters to every rank. */
void zero_adamw(struct zero *z, const struct gpt2_backend *be, struct gpt2_model *m, uint64_t t,
		float lr, float wd, float gscale);
/* For a checkpoint: the whole moments on rank 0 (malloc'd into *MOM and *VAR; NULL on the
 * other ranks), and on a device backend the whole master weights into rank 0's m->params.
 * Every rank must call it. */
void zero_gather_moments(struct zero *z, struct gpt2_model *m, const struct gpt2_comm *c,
			 float **mom, float **var);

#endif
