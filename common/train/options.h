/* options.h: cp-train's options as values: the training options a checkpoint keeps (as JSON,
 * so a resume continues with them) and the model shape asked for on the command line. */
#ifndef CP_TRAIN_OPTIONS_H
#define CP_TRAIN_OPTIONS_H

#include <stdint.h>

#include "model/gpt2.h"

/* The options saved in a checkpoint, each with its given[] slot: one given on the command
 * line wins over the checkpoint's. */
enum train_opt {
	TRAIN_OPT_BATCH, TRAIN_OPT_SEQ, TRAIN_OPT_ACCUM, TRAIN_OPT_STEPS, TRAIN_OPT_WARMUP,
	TRAIN_OPT_SCHEDULE, TRAIN_OPT_SEED, TRAIN_OPT_LR, TRAIN_OPT_MIN_LR, TRAIN_OPT_WD,
	TRAIN_OPT_CLIP, TRAIN_OPT_EVAL_EVERY, TRAIN_OPT_EVAL_BATCHES, TRAIN_OPT_CKPT_EVERY,
	TRAIN_OPT_KEEP, TRAIN_OPT_N
};

struct train_opts {
	uint64_t batch, seq, accum, steps, warmup, seed, eval_every, eval_batches, ckpt_every;
	uint64_t keep;
	double lr, min_frac, wd, clip;
	int sched;			/* enum adamw_schedule */
	/* this run's alone, not saved */
	uint64_t stop_after;		/* 0: none */
	double peak_gflops;		/* 0: 96 per thread */
	int recompute;
	int profile;			/* --profile: where the steps' time went, on stderr */
	int zero;			/* ZeRO stage: 0 or 1 (train/zero.h) */
	/* enum gpt2_precision (model/plan.h); -1 until given or resolved: a resume takes the
	 * checkpoint's, a new run its backend's default. Kept in the checkpoint's header. */
	int precision;
	unsigned char given[TRAIN_OPT_N];
};

/* cp-train's defaults (man/cp-train.1), nothing given */
void train_opts_default(struct train_opts *o);
/* the saved options as one JSON object (malloc'd) */
char *train_opts_json(const struct train_opts *o);
/* Take the saved options of JSON that O was not given (keys missing or of the wrong type are
 * left alone); -1 when JSON does not parse. */
int train_opts_from_json(struct train_opts *o, const char *json);

/* The model shape asked for: a preset (NULL: none named) and flags (0, for the two 0|1
 * options -1: not given). */
struct train_shape {
	const char *model;
	uint64_t vocab, ctx, layers, heads, width;
	int scale_inv, reorder;
};

#define TRAIN_SHAPE_NONE { NULL, 0, 0, 0, 0, 0, -1, -1 }
#define TRAIN_DEFAULT_MODEL "codeparrot-small"

/* 1 when S names a preset or any shape flag */
int train_shape_given(const struct train_shape *s);
/* The model asked for: BASE (a checkpoint's or a Hugging Face model's shape; NULL for a new
 * model, then the default preset), replaced by the preset when named, then the shape flags.
 * DATA_VOCAB (0: unknown) fills tiny's vocabulary. Dies (usage) on a shape gpt2 refuses. */
void train_shape_config(const struct train_shape *s, struct gpt2_config *c, uint64_t data_vocab,
			const struct gpt2_config *base);

#endif
