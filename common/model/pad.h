/* pad.h: the padded vocabulary of the GPU backend and the map between the true parameter
 * layout (struct gpt2_layout, what checkpoints and exports hold) and the padded one, where
 * wte has Vpad rows (V rounded up to a multiple of GPT2_VOCAB_ALIGN), the pad rows zero.
 *
 * wte comes first in the buffer, so the padded layout is the true layout of the same model
 * with Vpad ids, and every other tensor moves by (Vpad - V) * C elements. The pad rows stay
 * zero through training: the classifier never gives them probability (their logits are not
 * part of the softmax), so their gradients are zero and AdamW leaves them at zero. */
#ifndef CP_MODEL_PAD_H
#define CP_MODEL_PAD_H

#include <stddef.h>
#include <stdint.h>

#include "model/gpt2.h"

#define GPT2_VOCAB_ALIGN 128

/* V rounded up to a multiple of GPT2_VOCAB_ALIGN (0 stays 0) */
uint64_t gpt2_vocab_padded(uint64_t V);
/* C with the padded vocabulary */
struct gpt2_config gpt2_config_padded(const struct gpt2_config *c);
/* the padded layout of model C */
void gpt2_layout_padded(const struct gpt2_config *c, struct gpt2_layout *lay);
/* where element I of the true layout of C lies in the padded one */
uint64_t gpt2_pad_index(const struct gpt2_config *c, uint64_t i);
/* Copy a parameter-sized array of elements of ESIZE bytes from the true layout (SRC) into the
 * padded one (DST), the pad rows zero; and back (the pad rows dropped). */
void gpt2_pad_copy(const struct gpt2_config *c, void *dst, const void *src, size_t esize);
void gpt2_unpad_copy(const struct gpt2_config *c, void *dst, const void *src, size_t esize);

#endif
