/* gpt2.h: the GPT-2 model: configuration and presets, the parameter layout (one contiguous
 * buffer, every size in 64 bits), initialisation, forward and backward on the CPU.
 *
 * The model code is written once (gpt2-impl.h) and compiled twice: in float (struct
 * gpt2_model, gpt2_*: what training uses) and in double (struct gpt2d_model, gpt2d_*: the
 * reference the finite-difference gradient check runs on). Parameters are stored in Hugging
 * Face's layout (Conv1D weights [in, out]) so export and import are plain copies.
 *
 * Trainers and generators do not call these directly: they drive a backend (model/backend.h),
 * and the CPU backend is built on them. */
#ifndef CP_GPT2_H
#define CP_GPT2_H

#include <stddef.h>
#include <stdint.h>

struct gpt2_config {
	uint32_t vocab_size;	/* V */
	uint32_t n_ctx;		/* maximum sequence length (n_positions) */
	uint32_t n_layer;	/* L */
	uint32_t n_head;	/* NH */
	uint32_t n_embd;	/* C */
	int scale_attn_by_inverse_layer_idx;
	int reorder_and_upcast_attn;
};

/* Parameter tensors in buffer order; per-layer tensors hold all layers, layer-major. */
enum gpt2_tensor {
	GPT2_WTE, GPT2_WPE,
	GPT2_LN1W, GPT2_LN1B, GPT2_QKVW, GPT2_QKVB, GPT2_ATTPROJW, GPT2_ATTPROJB,
	GPT2_LN2W, GPT2_LN2B, GPT2_FCW, GPT2_FCB, GPT2_FCPROJW, GPT2_FCPROJB,
	GPT2_LNFW, GPT2_LNFB,
	GPT2_NT
};

struct gpt2_layout {
	uint64_t off[GPT2_NT], size[GPT2_NT];	/* in elements */
	uint64_t total;
};

#define GPT2_LN_EPS 1e-5

/* Fill C from a preset name (tiny, codeparrot-small, gpt2, medium, large, codeparrot);
 * -1 for an unknown name. */
int gpt2_preset(const char *name, struct gpt2_config *c);
const char *gpt2_preset_names(void);
/* NULL when the shape is usable, else a static message saying what is wrong */
const char *gpt2_config_check(const struct gpt2_config *c);
void gpt2_layout(const struct gpt2_config *c, struct gpt2_layout *lay);
const char *gpt2_tensor_name(int t);
/* Where layer LAYER's slice of tensor T starts in the buffer (LAYER is ignored for tensors
 * that are not per layer): the one map from tensors to offsets, for parameters, gradients
 * and moments alike. */
uint64_t gpt2_tensor_offset(const struct gpt2_config *c, const struct gpt2_layout *lay, int t,
			    int layer);
/* per-layer tensor? */
int gpt2_tensor_per_layer(int t);
/* weight decay applies (matrices and embeddings, not biases or LayerNorm weights) */
int gpt2_tensor_decays(int t);
/* The shape of one layer's slice of tensor T (HF layout); returns the number of dims. */
int gpt2_tensor_shape(const struct gpt2_config *c, int t, uint64_t dims[2]);
/* Model FLOPs for one token of training (forward + backward) at sequence length T:
 * 6N + 6LCT, N all parameters (embeddings included). */
double gpt2_flops_per_token(const struct gpt2_config *c, int T);
/* Bytes of activations and scratch gpt2_setup would allocate for B x T. */
uint64_t gpt2_activation_bytes(const struct gpt2_config *c, int B, int T, int recompute, int real_size);

#define GPT2_REAL float
#define GPT2_NAME(x) gpt2_##x
#include "model/gpt2-api.h"
#undef GPT2_REAL
#undef GPT2_NAME

#define GPT2_REAL double
#define GPT2_NAME(x) gpt2d_##x
#include "model/gpt2-api.h"
#undef GPT2_REAL
#undef GPT2_NAME


#endif
