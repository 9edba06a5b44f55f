/* cpu-bf16.h: bf16 weights for generation on the CPU (cp-complete --bf16): the four products
 * of every layer and the tied output layer read weights converted to bf16 on load, half the
 * bytes a decoded token streams from memory, and multiply them with AVX-512 BF16's dot
 * product where the CPU has it, else in AVX2 (the bf16 pair widened to fp32 by a shift and a
 * mask: the scalar loop's arithmetic and bytes), else in that scalar loop. Activations
 * are rounded to bf16 at each product's input and the sums are fp32; LayerNorm, attention, the
 * GELU and the key/value cache stay fp32. The attention and the GELU (taken in the first MLP
 * product's store) have AVX-512 kernels here too, the portable build's being SSE-wide; on
 * AVX2 the whole path gives the portable build's bytes.
 *
 * A weight [IC][OC] (the Conv1D layout; the output layer's is wte transposed) is packed in
 * panels of CPU_BF16_PANEL columns, each panel [IC/2][PANEL][2]: the two inputs 2i and 2i+1
 * of a column side by side, which is the pair the dot-product instruction takes, and a panel
 * contiguous, which is what one thread streams. Columns past OC are zero. Every output is the
 * sum over input pairs in order, so the result does not depend on the thread count. */
#ifndef CP_MODEL_CPU_BF16_H
#define CP_MODEL_CPU_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt2.h"

#define CPU_BF16_PANEL 64

/* uint16s of a packed [IC][OC] weight */
size_t cpu_bf16_packed_size(size_t IC, size_t OC);
/* Pack W (element (i, j) at W[i * RS + j * CS]: RS = OC, CS = 1 for a Conv1D weight; RS = 1,
 * CS = IC for wte read as its transpose) into P. */
void cpu_bf16_pack(uint16_t *P, const float *W, size_t IC, size_t OC, size_t RS, size_t CS);
/* out[M][OC] = x[M][IC] W + b (B may be NULL), or out += that with ACC, W packed */
void cpu_bf16_linear(float *out, const float *x, const uint16_t *P, const float *b, size_t M,
		     size_t IC, size_t OC, int acc);
/* out[M][OC] = gelu(x[M][IC] W + b), GPT-2's tanh GELU (the MLP's first product) */
void cpu_bf16_linear_gelu(float *out, const float *x, const uint16_t *P, const float *b,
			  size_t M, size_t IC, size_t OC);
/* k_attn_row (model/kernels.h) for the bf16 path: in AVX-512 or AVX2 with FMA, as the products
 * run, where HS is 64, fp32 still but not k_attn_row's bits (elsewhere its bytes); A is N
 * floats of scratch */
void cpu_bf16_attn_row(float *out, float *a, const float *q, const float *k, const float *v,
		       size_t stride, size_t n, size_t hs, float scale);
/* the kernels, each CPU running those up to the best it supports */
enum { CPU_BF16_SCALAR, CPU_BF16_AVX2, CPU_BF16_AVX512 };
/* the kernel that runs here (CPU_BF16_*); SET forces that one or the best below it this CPU
 * runs, -1 leaves the choice to the CPU (tests compare them) */
int cpu_bf16_vector(int set);
/* a CPU_BF16_* kernel's name, for messages */
const char *cpu_bf16_kernel_name(int mode);

/* The packed weights of model M for generation (one allocation: free() frees it). */
struct cpu_bf16_model;
struct cpu_bf16_model *cpu_bf16_model_new(const struct gpt2_model *m);
/* the packed weight of tensor T (GPT2_QKVW, GPT2_ATTPROJW, GPT2_FCW, GPT2_FCPROJW, or GPT2_WTE
 * for the output layer) of layer LAYER */
const uint16_t *cpu_bf16_weight(const struct cpu_bf16_model *p, int t, int layer);

#endif
