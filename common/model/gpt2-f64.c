/* gpt2-f64.c: the model in double precision (gpt2d_*), the reference that the
 * finite-difference gradient check runs on; same code as the float model and its kernels
 * (gpt2-impl.h, kernels-impl.h). */
#include "model/gpt2.h"
#include "model/kernels.h"

#define GPT2_REAL double
#define GPT2_NAME(x) gpt2d_##x
#define GPT2_GEMM cblas_dgemm
#define GPT2_GEMV cblas_dgemv
#define GPT2_EXP exp
#define GPT2_SQRT sqrt
#include "model/gpt2-impl.h"
