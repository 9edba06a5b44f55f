/* infer.h: GPT-2 inference on the CPU with a key/value cache, for generation and scoring.
 *
 * The model's parameters (struct gpt2_model, HF layout) are only read, so any number of
 * inference states may share one model. A state holds up to maxB independent rows (sequences),
 * each with its own cache of up to maxT positions; one call appends tokens to any subset of
 * rows and returns next-token logits. Appending a token costs the same whatever is cached
 * (the attention over the cache aside), which is what makes sampling linear in its length.
 *
 * Weight products are OpenBLAS sgemv/sgemm calls cut into tiles whose shape depends on the
 * problem alone and spread over OpenMP threads, so the logits are the same bytes for any thread
 * count. They may differ in the last bits from the training forward, which multiplies in
 * other tiles. */
#ifndef CP_INFER_H
#define CP_INFER_H

#include <stdint.h>

#include "model/gpt2.h"

struct infer;

/* A state for rows 0..maxB-1 of up to maxT positions each (maxT <= the model's n_ctx).
 * Dies when memory runs out. Calls openblas_set_num_threads(1): the tiles bring their own. */
struct infer *infer_new(const struct gpt2_model *m, int maxB, int maxT);
void infer_free(struct infer *s);
/* empty every row */
void infer_reset(struct infer *s);
/* tokens cached in ROW */
int infer_len(const struct infer *s, int row);
/* make row DST a copy of row SRC (a prompt shared by several samples is computed once) */
void infer_copy_row(struct infer *s, int dst, int src);

/* Append N tokens to each of the NR rows ROWS[] (row ROWS[i] gets TOKS[i*N .. i*N+N-1]) at
 * that row's current length, and write logits: with ALL, the logits after every appended
 * token ([NR*N][V], row-major in the same order), else only after each row's last token
 * ([NR][V]); LOGITS may be NULL to only fill the cache. Dies when a row would pass maxT or a
 * token is outside the vocabulary (callers check both first). */
void infer_forward(struct infer *s, const int *rows, int nr, const uint32_t *toks, int n,
		   float *logits, int all);

#endif
