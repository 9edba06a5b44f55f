/* gpt2-api.h: the model struct and functions for one element type; included by gpt2.h once
 * with GPT2_REAL float (gpt2_*) and once with double (gpt2d_*). No include guard on purpose. */

struct GPT2_NAME(layer_acts) {
	GPT2_REAL *ln1, *ln1_mean, *ln1_rstd;	/* [BT,C], [BT], [BT] */
	GPT2_REAL *qkv;				/* [BT,3C] */
	GPT2_REAL *att;				/* [B,NH,T,T] softmax probabilities */
	GPT2_REAL *atty;			/* [BT,C] attention output before c_proj */
	GPT2_REAL *res2;			/* [BT,C] residual after attention */
	GPT2_REAL *ln2, *ln2_mean, *ln2_rstd;
	GPT2_REAL *fch, *fch_gelu;		/* [BT,4C] */
};

struct GPT2_NAME(model) {
	struct gpt2_config cfg;
	struct gpt2_layout lay;
	GPT2_REAL *params;	/* lay.total elements */
	GPT2_REAL *grads;	/* NULL until gpt2_setup */
	/* == grads while they are all zero since zero_grad or adamw_zero: zero_grad skips them
	 * (backward, and anything writing grads behind the model's back, clears it) */
	GPT2_REAL *grads_zeroed;
	GPT2_REAL *mom, *var;	/* AdamW moments, NULL until the first update */
	/* the elements mom and var hold: [opt_lo, opt_hi) of the parameters (ZeRO-1's shard);
	 * opt_hi 0: all of them */
	uint64_t opt_lo, opt_hi;
	/* activations, sized by setup for up to B x T */
	int maxB, maxT, recompute;
	GPT2_REAL *actmem;
	GPT2_REAL *resid;	/* [L+1][BT,C]: the residual stream entering each layer, and out */
	struct GPT2_NAME(layer_acts) *la;	/* L of them, or 1 shared when recomputing */
	GPT2_REAL *lnf, *lnf_mean, *lnf_rstd;
	GPT2_REAL *logits;	/* [BT,V]; overwritten by backward */
	GPT2_REAL *lse, *losses;	/* [BT] */
	GPT2_REAL *dres, *dsmall, *dbig, *datt;	/* backward scratch */
	uint32_t *tokens;	/* the batch of the last forward */
	int B, T;		/* its shape */
	int logits_valid;
	void *dev;		/* backend state */
	/* the CPU's generation in bf16 (model/cpu-bf16.h's packed weights, malloc'd); NULL: fp32 */
	void *infer_bf16;
};

/* Allocate parameters for C (zeroed). Dies on bad shapes or exhausted memory. */
void GPT2_NAME(create)(struct GPT2_NAME(model) *m, const struct gpt2_config *c);
void GPT2_NAME(free)(struct GPT2_NAME(model) *m);
/* GPT-2 initialisation from SEED; the same for every thread count. */
void GPT2_NAME(init_weights)(struct GPT2_NAME(model) *m, uint64_t seed);
/* Allocate gradients and activations for batches of up to B x T. */
void GPT2_NAME(setup)(struct GPT2_NAME(model) *m, int B, int T, int recompute);
/* Forward over B sequences of T tokens: logits for every position; returns the mean
 * cross-entropy of the B*(T-1) next-token predictions (0 when T < 2). */
GPT2_REAL GPT2_NAME(forward)(struct GPT2_NAME(model) *m, const uint32_t *tokens, int B, int T);
/* Accumulate SCALE * d(mean loss)/d(params) into m->grads (call after forward). */
void GPT2_NAME(backward)(struct GPT2_NAME(model) *m, GPT2_REAL scale);
void GPT2_NAME(zero_grad)(struct GPT2_NAME(model) *m);
/* sqrt of the sum of squared gradients, summed in a fixed order */
double GPT2_NAME(grad_norm)(struct GPT2_NAME(model) *m);
/* AdamW step T (1-based), betas 0.9/0.999, eps 1e-8; decay WD on the tensors that decay */
void GPT2_NAME(adamw)(struct GPT2_NAME(model) *m, uint64_t t, GPT2_REAL lr, GPT2_REAL wd,
		      GPT2_REAL gscale);
/* The same step, leaving the gradients zero (the next zero_grad has nothing to do): the CPU
 * backend's, which reads and clears them in one pass. */
void GPT2_NAME(adamw_zero)(struct GPT2_NAME(model) *m, uint64_t t, GPT2_REAL lr, GPT2_REAL wd,
			   GPT2_REAL gscale);
/* The same step on parameters [LO, HI) alone, the moments holding those elements only (made
 * so by the first call; a later call for another range dies): ZeRO-1's shard. */
void GPT2_NAME(adamw_range)(struct GPT2_NAME(model) *m, uint64_t t, GPT2_REAL lr, GPT2_REAL wd,
			    GPT2_REAL gscale, uint64_t lo, uint64_t hi);
