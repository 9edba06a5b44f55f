/* lr-schedule.c: learning-rate schedules and gradient clipping for AdamW training. */
#include "train/lr-schedule.h"

#include <math.h>
#include <string.h>

static const char *const sched_names[] = { "cosine", "linear", "constant" };

int adamw_schedule_parse(const char *s)
{
	for (int i = 0; i < 3; i++)
		if (!strcmp(s, sched_names[i]))
			return i;
	return -1;
}

const char *adamw_schedule_name(int sched)
{
	return sched >= 0 && sched < 3 ? sched_names[sched] : "?";
}

double adamw_lr(int sched, uint64_t step, uint64_t total, uint64_t warmup, double lr,
		double min_frac)
{
	if (step < warmup)
		return lr * (double)(step + 1) / (double)warmup;
	if (sched == ADAMW_CONSTANT)
		return lr;
	double span = total > warmup + 1 ? (double)(total - warmup - 1) : 1;
	double p = (double)(step - warmup) / span;
	if (p > 1)
		p = 1;
	double floor = min_frac * lr;
	double f = sched == ADAMW_COSINE ? 0.5 * (1 + cos(M_PI * p)) : 1 - p;
	return floor + (lr - floor) * f;
}

double adamw_clip_scale(double norm, double max_norm)
{
	if (max_norm <= 0)
		return 1;
	double c = max_norm / (norm + 1e-6);
	return c < 1 ? c : 1;
}
