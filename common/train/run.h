/* run.h: one cp-train run: the model on its backend, the data, the position in both, and the
 * steps that move them: the optimizer step over all ranks, evaluation, checkpoints (rank 0
 * writes) with bit-exact resume, and the log. cp-train parses options and wires these. */
#ifndef CP_TRAIN_RUN_H
#define CP_TRAIN_RUN_H

#include <stdint.h>
#include <stdio.h>

#include "model/backend.h"
#include "model/gpt2.h"
#include "train/options.h"
#include "train/seqdata.h"
#include "train/zero.h"

struct train_run {
	struct train_opts o;
	const char *rundir, *train_dir, *valid_dir;
	const struct gpt2_backend *be;
	const struct gpt2_comm *comm;
	struct gpt2_config cfg;
	struct gpt2_model m;
	struct seqdata train, valid;
	int have_valid;
	uint64_t T, B_local;		/* sequence length, sequences per rank and micro-batch */
	uint64_t step, data_pos, rng;	/* what a checkpoint keeps */
	uint64_t sr_seed;		/* the stochastic rounding's (model/bf16.h) */
	uint32_t *tokens;		/* [B_local][T] */
	FILE *log;			/* rank 0's log.jsonl */
	struct zero zero;		/* with --zero 1 */
	float *gscratch;		/* a micro-batch's own gradients (host-memory backends) */
};

/* Load RUNDIR's latest checkpoint into r->m, with the AdamW moments and the saved options
 * (those not given) when MOMENTS; dies when there is none (WHAT: "evaluate", "export",
 * "resume"), it is corrupt, or SHAPE asks for another model. DATA_VOCAB fills tiny's
 * vocabulary in SHAPE. */
void train_load_latest(struct train_run *r, const struct train_shape *shape, int moments,
		       uint64_t data_vocab, const char *what);
/* A new model of SHAPE initialised from the seed, or from the Hugging Face model in INIT_HF
 * (checked against SHAPE when it names one); r->rng from the seed. */
void train_new_model(struct train_run *r, const struct train_shape *shape, const char *init_hf);
/* Check the run against the training data and the ranks (sequence length, batch split,
 * steps left) and the precision against the backend (the backend's default when none was
 * given or resumed), open rank 0's log (truncated to r->step and appended to when RESUME), then
 * set up the backend and the token buffer. */
void train_setup(struct train_run *r, int resume);
/* Open r->train_dir and start the run in r->rundir: resumed from its latest checkpoint when
 * RESUME (dies when there is none), else a new model (train_new_model: SHAPE, INIT_HF; dies
 * when the directory holds checkpoints already); then train_setup. */
void train_begin(struct train_run *r, const struct train_shape *shape, const char *init_hf,
		 int resume);
/* Evaluate the latest checkpoint on r->valid (eval-only): the mean validation loss. */
double train_eval_only(struct train_run *r, const struct train_shape *shape);
/* Mean loss over the validation sequences (the first MAX_BATCHES * batch of them; 0: all),
 * split over the ranks; every rank gets it. */
double train_evaluate(struct train_run *r, uint64_t max_batches);
/* One optimizer step over all ranks (accum micro-batches); the mean loss, *GNORM the gradient
 * norm before clipping, *LR the learning rate used. */
float train_step(struct train_run *r, double *gnorm, double *lr);
/* Rank 0 writes the checkpoint of r->step and prunes old ones. */
void train_checkpoint(struct train_run *r);
/* Train to --steps (or --stop-after), logging, evaluating and checkpointing on the way; rank
 * 0 prints the last step's loss (and validation loss) as one JSON line. */
void train_loop(struct train_run *r);
/* close the log, free the buffers, the model and the data */
void train_finish(struct train_run *r);

#endif
