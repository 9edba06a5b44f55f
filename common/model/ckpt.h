/* ckpt.h: training checkpoints (format in man/cp-train.1, CHECKPOINT FORMAT), written
 * atomically (base/atomic.h).
 *
 * A checkpoint holds everything a bit-exact resume needs: the model shape, the parameters,
 * both AdamW moments, the step, the data position, the seed and RNG state, the precision the
 * run trains in and its stochastic-rounding seed (version 2), and the training options as
 * JSON. Version 1 files (no precision: fp32) still load. Every part is covered by an XXH3-64 checksum; a reader refuses a wrong
 * magic, a newer version, a bad checksum, a truncated file, or a shape it was not asked for. */
#ifndef CP_CKPT_H
#define CP_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt2.h"

#define CKPT_VERSION 2
#define CKPT_HEADER_SIZE 256


struct ckpt {
	struct gpt2_config cfg;
	uint64_t n_params, step, data_pos, seed, rng;
	/* Version 2: enum gpt2_precision (model/plan.h), and the seed of the stochastic rounding
	 * of the master weights into their bf16 copy (model/bf16.h), which with the step makes
	 * that copy a pure function of the checkpoint. A version 1 file reads as fp32 with
	 * ckpt_sr_seed(seed). */
	uint32_t precision;
	uint64_t sr_seed;
	uint32_t version;	/* of the file read */
	char *opts_json;	/* NUL-terminated, owned */
	/* checksums read from the header */
	uint64_t h_params, h_mom, h_var;
};

/* the stochastic-rounding seed of a run seeded with SEED */
uint64_t ckpt_sr_seed(uint64_t seed);

/* Write PARAMS, MOM and VAR (n_params floats each; NULL moments are written as zeros). */
int ckpt_write(const char *path, const struct ckpt *c, const float *params, const float *mom,
	       const float *var);
/* Read and check the header and the options JSON. 0 or -1 after an error naming the file. */
int ckpt_read_header(const char *path, struct ckpt *c);
/* Read the three arrays into caller buffers of c->n_params floats, verifying checksums and
 * length (MOM/VAR may be NULL to skip them). 0 or -1. */
int ckpt_read_data(const char *path, const struct ckpt *c, float *params, float *mom, float *var);
void ckpt_free(struct ckpt *c);
/* NULL when A and B are the same model, else a message (static buffer) naming the first
 * difference */
const char *ckpt_config_diff(const struct gpt2_config *a, const struct gpt2_config *b);

/* RUNDIR/ckpt-NNNNNNNN.ckpt */
char *ckpt_path(const char *rundir, uint64_t step);
/* the checkpoint with the highest step in RUNDIR, or NULL (and *step untouched) */
char *ckpt_latest(const char *rundir, uint64_t *step);
/* delete all but the KEEP newest checkpoints (KEEP 0 keeps all) */
void ckpt_prune(const char *rundir, unsigned keep);

#endif
