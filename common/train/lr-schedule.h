/* lr-schedule.h: the learning-rate schedule and gradient clipping around the AdamW update
 * (the update itself is gpt2_adamw, next to the parameters it walks). */
#ifndef CP_ADAMW_H
#define CP_ADAMW_H

#include <stdint.h>

enum adamw_schedule { ADAMW_COSINE, ADAMW_LINEAR, ADAMW_CONSTANT };

#define ADAMW_BETA1 0.9
#define ADAMW_BETA2 0.999
#define ADAMW_EPS 1e-8

/* "cosine", "linear" or "constant"; -1 otherwise */
int adamw_schedule_parse(const char *s);
const char *adamw_schedule_name(int sched);
/* Learning rate of 0-based STEP of TOTAL: linear warmup to LR over WARMUP steps
 * (LR * (step+1) / warmup), then SCHED from LR down to MIN_FRAC * LR at the last step. */
double adamw_lr(int sched, uint64_t step, uint64_t total, uint64_t warmup, double lr,
		double min_frac);
/* The factor torch.nn.utils.clip_grad_norm_ applies: max_norm / (norm + 1e-6) when that is
 * below 1, else 1 (and 1 when MAX_NORM is 0: no clipping). */
double adamw_clip_scale(double norm, double max_norm);

#endif
