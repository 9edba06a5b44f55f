/* kernels.h: the CPU kernels of GPT-2 (embedding, LayerNorm, products with bias, GELU,
 * attention, softmax normaliser), written once for any element type (kernels-impl.h) and
 * compiled in float (gpt2_k_*, by gpt2.c) and double (gpt2d_k_*, by gpt2-f64.c). The training
 * forward and backward (gpt2-impl.h) and the CPU inference (cpu-infer.c) are both built on
 * them, so the two compute the same thing the same way; only the few-rows product of
 * k_linear and k_mm (decoding) is a strategy of inference alone.
 *
 * Determinism: every reduction runs in an order fixed by the shape, never by the thread
 * count, so the same input gives the same bytes on any number of threads. */
#ifndef CP_KERNELS_H
#define CP_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define GPT2_REAL float
#define GPT2_NAME(x) gpt2_##x
#include "model/kernels-api.h"
#undef GPT2_REAL
#undef GPT2_NAME

#define GPT2_REAL double
#define GPT2_NAME(x) gpt2d_##x
#include "model/kernels-api.h"
#undef GPT2_REAL
#undef GPT2_NAME

#endif
