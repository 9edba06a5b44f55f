/* prof.h: where a training step's time goes (cp-train --profile). Each op of the CPU model
 * (products by layer kind, attention, LayerNorm, GELU, the lm-head, the loss) and each stage
 * of the step around it (data, gradients zeroed, reduced over ranks, their norm, AdamW) adds
 * its wall time to one counter. One process-wide set of counters: a process trains one model,
 * and the ops are timed on the thread that starts their parallel regions, never inside them.
 * Off (the default), timing costs one branch an op. */
#ifndef CP_PROF_H
#define CP_PROF_H

#include "base/util.h"

enum gpt2_prof_op {
	GPT2_PROF_DATA, GPT2_PROF_ZERO_GRAD,
	GPT2_PROF_EMBED, GPT2_PROF_LN, GPT2_PROF_QKV, GPT2_PROF_ATTN, GPT2_PROF_ATTPROJ,
	GPT2_PROF_FC, GPT2_PROF_FCPROJ, GPT2_PROF_RESID, GPT2_PROF_LMHEAD,
	GPT2_PROF_LOSS,
	GPT2_PROF_LOSS_BWD, GPT2_PROF_LMHEAD_BWD, GPT2_PROF_LN_BWD, GPT2_PROF_FCPROJ_BWD,
	GPT2_PROF_GELU_BWD, GPT2_PROF_FC_BWD, GPT2_PROF_ATTPROJ_BWD, GPT2_PROF_ATTN_BWD,
	GPT2_PROF_QKV_BWD, GPT2_PROF_EMBED_BWD,
	/* a backend that times no op of its own: its whole forward and backward */
	GPT2_PROF_FORWARD, GPT2_PROF_BACKWARD,
	GPT2_PROF_ACCUM, GPT2_PROF_ALLREDUCE, GPT2_PROF_GRAD_NORM, GPT2_PROF_ADAMW,
	GPT2_PROF_N
};

struct gpt2_prof {
	int on;
	double sec[GPT2_PROF_N];
	double ops_total;	/* the sum of sec[], for a backend's untimed remainder */
};

extern struct gpt2_prof gpt2_prof;

/* the op's name as --profile prints it ("fwd.attention") */
const char *gpt2_prof_name(int op);

/* the start of an op (0 when off) */
static inline double gpt2_prof_start(void)
{
	return gpt2_prof.on ? mono_now() : 0;
}

/* the op OP started at T0 has ended */
static inline void gpt2_prof_stop(int op, double t0)
{
	if (gpt2_prof.on) {
		double d = mono_now() - t0;
		gpt2_prof.sec[op] += d;
		gpt2_prof.ops_total += d;
	}
}

/* CALL (a statement) timed as OP */
#define GPT2_PROF(op, ...)                                \
	do {                                              \
		double prof_t0_ = gpt2_prof_start();      \
		__VA_ARGS__;                              \
		gpt2_prof_stop(op, prof_t0_);             \
	} while (0)

#endif
