// matmul.cuh: the matrix products of the CUDA backend through cuBLASLt, with its bias and GELU
// epilogues. The row-major to column-major mapping is model/gpu-host.h's (tested on the host).
#ifndef CP_GPU_MATMUL_CUH
#define CP_GPU_MATMUL_CUH

#include "cuda.cuh"

extern "C" {
#include "model/gpu-host.h"
}

enum mm_epilogue { MM_NONE, MM_BIAS, MM_GELU_BIAS };

// cuBLASLt's choice for one shape of product, kept: its heuristic costs tens of microseconds
// a call, against a decoding step's ~50 products of a few microseconds each
#define MM_ALGOS 64
struct mm_algo {
	struct gpu_gemm g;
	int epi, out_f32;
	cublasLtMatmulAlgo_t algo;
};

struct mm_ctx {
	cublasLtHandle_t lt;
	void *ws;
	size_t ws_bytes;
	cudaDataType_t type;	// CUDA_R_32F or CUDA_R_16BF: of every operand
	int gelu_ok;		// -1 unknown, 0 cuBLASLt has no GELU epilogue here, 1 it has
	int out_f32;		// 1: Y is fp32 whatever TYPE is (generation's logits in bf16)
	int n_algos, algo_next;	// the heuristic's answers kept (the same each time it is asked)
	struct mm_algo algos[MM_ALGOS];
};

// Y = op(X) op(Z) (+ beta Y) in row-major, as gpu_gemm_rowmajor describes; with MM_BIAS a
// bias of N added to every row; with MM_GELU_BIAS, Y = gelu(X Z + bias) and AUX = X Z + bias
// (the GELU's input, kept for the backward pass). Returns 0, or -1 when cuBLASLt has no
// algorithm for the GELU epilogue (the caller then adds the bias and runs the GELU itself);
// any other failure exits naming the call.
int mm_run(struct mm_ctx *c, const struct gpu_gemm *g, const void *X, const void *Z, void *Y,
	   float beta, int epi, const void *bias, void *aux);

// A row-major linear layer (weights [IC, OC]): out[BT, OC] = inp[BT, IC] w + b; MM_GELU_BIAS:
// out = gelu(that) and AUX = that, through the GELU kernel where cuBLASLt has no epilogue
void mm_linear(struct mm_ctx *c, void *out, const void *inp, const void *w, const void *b,
	       int BT, int IC, int OC, int epi, void *aux);

#endif
