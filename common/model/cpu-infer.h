/* cpu-infer.h: the CPU backend's inference half (model/backend.h's kv_* on host memory),
 * which gpt2_cpu_backend's table points at. Callers go through the backend, not these. */
#ifndef CP_CPU_INFER_H
#define CP_CPU_INFER_H

#include <stdint.h>

#include "model/backend.h"

struct gpt2_kv *gpt2_cpu_kv_new(const struct gpt2_model *m, int B, int T);
void gpt2_cpu_kv_free(struct gpt2_kv *kv);
void gpt2_cpu_kv_reset(struct gpt2_kv *kv);
int gpt2_cpu_kv_len(const struct gpt2_kv *kv, int row);
void gpt2_cpu_kv_copy_row(struct gpt2_kv *kv, int dst, int src);
void gpt2_cpu_kv_forward(struct gpt2_kv *kv, const int *rows, int nr, const uint32_t *toks,
			 int n, float *logits, int all);

#endif
