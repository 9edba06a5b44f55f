/* gpu-math.h: the arithmetic of the CUDA backend's kernels, as __host__ __device__ functions
 * in C, so the host tests run the very code the GPU runs against the CPU backend (the kernels
 * in gpu/ only add the threads, the memory and the reductions around these).
 *
 * Every function works on fp32 values; loads and stores of bf16 (model/bf16.h) happen in the
 * callers. The per-row attention functions are the exception: they read rows of the qkv
 * activation in its storage type, so they are written once in gpu-rows-impl.h and included
 * here for float (cpg_f32_*) and for bf16 (cpg_bf16_*). */
#ifndef CP_MODEL_GPU_MATH_H
#define CP_MODEL_GPU_MATH_H

#include <stdint.h>

#include "model/bf16.h"
#include "model/fexp.h"

#ifndef __CUDA_ARCH__
#include <math.h>
#endif

/* the largest head size the attention kernels keep in registers */
#define CPG_MAX_HS 256

#define CPG_GELU_K 0.7978845608028654f	/* sqrt(2/pi) */
#define CPG_GELU_A 0.044715f

/* GPT-2's tanh GELU, as model/kernels-impl.h computes it: 0.5 x (1 + tanh y) = x sigmoid(2y) */
CP_HD static inline float cpg_gelu(float x)
{
	return x / (1.0f + fexp(-2.0f * (CPG_GELU_K * (x + CPG_GELU_A * x * x * x))));
}

/* d gelu(x) / dx times DOUT, as gpt2-impl.h's gelu_bwd (s the sigmoid) */
CP_HD static inline float cpg_gelu_bwd(float x, float dout)
{
	float s = 1.0f / (1.0f + fexp(-2.0f * CPG_GELU_K * (x + CPG_GELU_A * x * x * x)));
	float g = s + 2.0f * x * s * (1.0f - s) * CPG_GELU_K * (1.0f + 3.0f * CPG_GELU_A * x * x);
	return g * dout;
}

/* LayerNorm's output for one element, given the row's mean and 1/std */
CP_HD static inline float cpg_ln_out(float x, float mean, float rstd, float w, float b)
{
	return (x - mean) * rstd * w + b;
}

/* 1/std of a row from its sum of squared deviations over C elements */
CP_HD static inline float cpg_ln_rstd(float sq, float C)
{
	return 1.0f / sqrtf(sq / C + 1e-5f);
}

/* LayerNorm's input gradient for one element: D the output gradient, W the weight, DM and DNM
 * the row's means of d*w and of d*w*n (n the normalised input) */
CP_HD static inline float cpg_ln_dx(float d, float w, float x, float mean, float rstd, float dm,
				    float dnm)
{
	float n = (x - mean) * rstd;
	return (d * w - dm - n * dnm) * rstd;
}

/* A running log-sum-exp as (max, sum of exp(x - max)); merging two keeps it exact to
 * rounding in any order, which is what lets threads and blocks reduce a row in pieces. */
struct cpg_lse {
	float m, s;
};

CP_HD static inline struct cpg_lse cpg_lse_empty(void)
{
	struct cpg_lse r = { -INFINITY, 0.0f };
	return r;
}

CP_HD static inline struct cpg_lse cpg_lse_add(struct cpg_lse a, float x)
{
	if (x > a.m) {
		a.s = a.s * expf(a.m - x) + 1.0f;
		a.m = x;
	} else {
		a.s += expf(x - a.m);
	}
	return a;
}

CP_HD static inline struct cpg_lse cpg_lse_merge(struct cpg_lse a, struct cpg_lse b)
{
	if (b.m == -INFINITY)
		return a;
	if (a.m == -INFINITY)
		return b;
	struct cpg_lse r;
	r.m = a.m > b.m ? a.m : b.m;
	r.s = a.s * expf(a.m - r.m) + b.s * expf(b.m - r.m);
	return r;
}

CP_HD static inline float cpg_lse_value(struct cpg_lse a)
{
	return a.m + logf(a.s);
}

/* The fused classifier's gradient of one logit: softmax minus the one-hot target, times
 * SCALE (the loss weight of the row), from the logit and the row's logsumexp alone. */
CP_HD static inline float cpg_xent_dlogit(float logit, float lse, int is_target, float scale)
{
	return (expf(logit - lse) - (is_target ? 1.0f : 0.0f)) * scale;
}

/* The constants of AdamW step t, as gpt2-impl.h's adamw derives them. */
struct cpg_adamw {
	float lr_bc1;	/* lr / (1 - b1^t) */
	float bc2s;	/* sqrt(1 - b2^t) */
	float b1, b1c, b2, b2c;	/* b1, 1 - b1, b2, 1 - b2 (rounded from double like the CPU's) */
	float eps;
};

CP_HD static inline struct cpg_adamw cpg_adamw_consts(uint64_t t, float lr)
{
	const double b1 = 0.9, b2 = 0.999;
	struct cpg_adamw a;
	a.lr_bc1 = lr / (float)(1 - pow(b1, (double)t));
	a.bc2s = (float)sqrt(1 - pow(b2, (double)t));
	a.b1 = (float)b1;
	a.b1c = (float)(1 - b1);
	a.b2 = (float)b2;
	a.b2c = (float)(1 - b2);
	a.eps = 1e-8f;
	return a;
}

/* One element's update: the moments *M and *V, and the new master weight from P, DECAY
 * being 1 - lr * wd for the tensors that decay and 1 for the rest. */
CP_HD static inline float cpg_adamw_elem(const struct cpg_adamw *a, float p, float g, float gscale,
					 float decay, float *m, float *v)
{
	float gi = g * gscale;
	*m = a->b1 * *m + a->b1c * gi;
	*v = a->b2 * *v + a->b2c * gi * gi;
	float den = sqrtf(*v) / a->bc2s + a->eps;
	return p * decay - a->lr_bc1 * (*m / den);
}

/* Launch shapes: blocks of THREADS covering N items, at most MAXGRID of them (the kernels
 * then loop with a stride); at least one. */
CP_HD static inline unsigned cpg_blocks(uint64_t n, unsigned threads, unsigned maxgrid)
{
	uint64_t b = (n + threads - 1) / threads;
	if (b < 1)
		b = 1;
	return b > maxgrid ? maxgrid : (unsigned)b;
}

/* ---- attention, one row at a time ---- */
#define CPG_T float
#define CPG_NAME(x) cpg_f32_##x
#define CPG_LD(x) (x)
#define CPG_ST(x) (x)
#include "model/gpu-rows-impl.h"
#undef CPG_T
#undef CPG_NAME
#undef CPG_LD
#undef CPG_ST

#define CPG_T cp_bf16
#define CPG_NAME(x) cpg_bf16_##x
#define CPG_LD(x) cp_bf16_to_f32(x)
#define CPG_ST(x) cp_f32_to_bf16(x)
#include "model/gpu-rows-impl.h"
#undef CPG_T
#undef CPG_NAME
#undef CPG_LD
#undef CPG_ST

#endif
