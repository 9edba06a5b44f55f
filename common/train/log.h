/* log.h: RUNDIR/log.jsonl, cp-train's record of a run: one JSON object a line, each starting
 * with {"step":N (scripts/plot-loss reads it). Step 0 holds the first evaluation; a step line
 * has loss, lr, grad_norm, tokens_per_s and mfu, and val_loss and val_ppl when it evaluated. */
#ifndef CP_TRAIN_LOG_H
#define CP_TRAIN_LOG_H

#include <stdint.h>

#include "base/buf.h"

/* Keep the lines of RUNDIR/log.jsonl of steps up to STEP (what a resumed run does not redo);
 * nothing when there is no log. -1 (reported) when it cannot be read or rewritten. */
int train_log_truncate(const char *rundir, uint64_t step);
/* Append the fields of a step to B: {"step":STEP,"loss":LOSS,... without the closing brace
 * (evaluation fields may follow). MFU below 0: unknown (the card's peak is not known), null. */
void train_log_step(struct buf *b, uint64_t step, double loss, double lr, double gnorm,
		    double tokens_per_s, double mfu);
/* Append ,"val_loss":VL,"val_ppl":exp(VL) to B. */
void train_log_eval(struct buf *b, double vl);

#endif
