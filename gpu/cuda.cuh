// cuda.cuh: what every file of the CUDA backend shares: the checks that name the file and
// line of a failed CUDA or cuBLASLt call, and loads and stores of the two element types
// (fp32 and bf16 kept as its 16 bits, model/bf16.h) with the arithmetic in fp32.
#ifndef CP_GPU_CUDA_CUH
#define CP_GPU_CUDA_CUH

#include <cstdint>
#include <cuda_runtime.h>
#include <cublasLt.h>

extern "C" {
#include "model/bf16.h"
}

// A CUDA error is not something a run can recover from: say where, and exit 1 as die() does.
void cuda_fail(const char *what, const char *msg, const char *file, int line);
#define cudaCheck(call) do { cudaError_t e_ = (call); \
	if (e_ != cudaSuccess) cuda_fail(#call, cudaGetErrorString(e_), __FILE__, __LINE__); } while (0)
#define cublasCheck(call) do { cublasStatus_t s_ = (call); \
	if (s_ != CUBLAS_STATUS_SUCCESS) cuda_fail(#call, cublasLt_status_name(s_), __FILE__, __LINE__); } while (0)
// after a kernel launch: a bad launch configuration shows here, not at the next sync
#define cudaLaunchCheck() cudaCheck(cudaGetLastError())
const char *cublasLt_status_name(cublasStatus_t s);

__host__ __device__ __forceinline__ float cp_ld(float x) { return x; }
__host__ __device__ __forceinline__ float cp_ld(cp_bf16 x) { return cp_bf16_to_f32(x); }
template <class T> __host__ __device__ __forceinline__ T cp_st(float x);
template <> __host__ __device__ __forceinline__ float cp_st<float>(float x) { return x; }
template <> __host__ __device__ __forceinline__ cp_bf16 cp_st<cp_bf16>(float x) { return cp_f32_to_bf16(x); }

// the grid-stride loop every elementwise kernel uses, and its grid: blocks of THREADS over N
// items, at most CUDA_MAXGRID of them
#define CUDA_MAXGRID (1u << 20)
#define FOR_EACH(i, n) \
	for (uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
	     i += (uint64_t)gridDim.x * blockDim.x)
unsigned cuda_grid(uint64_t n, unsigned threads);

// N fp32 values between host H and device D, which holds them as fp32 (ESZ 4) or bf16 (ESZ 2,
// rounded to nearest on the way in, through TMP of CUDA_XFER_CHUNK elements), a chunk at a time
#define CUDA_XFER_CHUNK ((uint64_t)1 << 22)
void cuda_xfer(float *h, void *d, uint64_t n, size_t esz, int to_dev, uint16_t *tmp);

#endif
