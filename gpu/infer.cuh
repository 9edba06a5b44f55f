// infer.cuh: the CUDA backend's inference half (model/backend.h's kv_*), which
// gpt2_cuda_backend's table points at; and the device memory it holds for a model, which the
// backend's info() adds to training's.
#ifndef CP_GPU_INFER_CUH
#define CP_GPU_INFER_CUH

#include <cstdint>

extern "C" {
#include "model/backend.h"
}

struct gpt2_kv *cuda_kv_new(const struct gpt2_model *m, int B, int T);
void cuda_kv_free(struct gpt2_kv *kv);
void cuda_kv_reset(struct gpt2_kv *kv);
int cuda_kv_len(const struct gpt2_kv *kv, int row);
void cuda_kv_copy_row(struct gpt2_kv *kv, int dst, int src);
void cuda_kv_forward(struct gpt2_kv *kv, const int *rows, int nr, const uint32_t *toks, int n,
		     float *logits, int all);
// bytes held on the device for M's generation: its weights and every live state's
uint64_t cuda_kv_bytes(const struct gpt2_model *m);
// make the device the backend opened current on the calling thread (a server's engine thread
// is not the one that opened it)
void cuda_use_device(void);

#endif
