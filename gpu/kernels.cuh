// kernels.cuh: the CUDA backend's kernels other than the matrix products (matmul.cuh), each
// launched by one host function of the same name. T is the activation and parameter type
// (float, or cp_bf16 in bf16 mode); LayerNorm statistics, logsumexps, losses, moments and the
// master weights are fp32 always. The arithmetic of each is model/gpu-math.h's, which the host
// tests run against the CPU backend; every kernel is deterministic (no float atomics, fixed
// reduction trees), so a run repeats bit for bit.
#ifndef CP_GPU_KERNELS_CUH
#define CP_GPU_KERNELS_CUH

#include "cuda.cuh"

// out[r] = wte[tok[r]] + wpe[r % T]
template <class T>
void k_encoder_fwd(T *out, const int32_t *tok, const T *wte, const T *wpe, int BT, int Tlen, int C);
// dwte[id] += the positions' rows of dout, by bucket (model/gpu-host.h); dwpe[t] += sum over b
template <class T>
void k_encoder_bwd(T *dwte, T *dwpe, const T *dout, const uint32_t *ids, const uint32_t *start,
		   const uint32_t *pos, int nids, int B, int Tlen, int C);
// res = a + b (when A is not NULL; else res is read), out = LayerNorm(res), with its statistics
template <class T>
void k_residual_ln(T *res, T *out, float *mean, float *rstd, const T *a, const T *b,
		   const T *w, const T *bias, int BT, int C);
// out = LayerNorm(x) from statistics kept by the forward pass (recompute)
template <class T>
void k_ln_apply(T *out, const T *x, const float *mean, const float *rstd, const T *w,
		const T *bias, int BT, int C);
// dx += the input gradient; dw, db += the weight gradients (PART: scratch, plan.h's colsum)
template <class T>
void k_ln_bwd(T *dx, T *dw, T *db, float *part, const T *dout, const T *x, const T *w,
	      const float *mean, const float *rstd, int BT, int C);
// db += column sums of dout [BT, OC]
template <class T>
void k_bias_bwd(T *db, float *part, const T *dout, int BT, int OC);
template <class T>
void k_gelu_fwd(T *out, const T *x, uint64_t n);
// d = d * gelu'(x), in place
template <class T>
void k_gelu_bwd(T *d, const T *x, uint64_t n);
// causal attention over qkv [B, T, 3C]: out [B, T, C], lse [B, NH, T]
template <class T>
void k_attn_fwd(T *out, float *lse, const T *qkv, int B, int Tlen, int C, int NH, float scale);
// dqkv [B, T, 3C] (overwritten) from dout [B, T, C]
template <class T>
void k_attn_bwd(T *dqkv, const T *dout, const T *qkv, const T *out, const float *lse, int B,
		int Tlen, int C, int NH, float scale);
// losses[r] = lse[r] - logits[r][tgt[r]] over the V real columns (0 where tgt < 0)
template <class T>
void k_classifier_fwd(float *losses, float *lse, const T *logits, const int32_t *tgt, int BT,
		      int V, int Vpad);
// logits become d(loss * scale)/d(logits) in place: softmax - onehot, 0 for pad and tgt < 0
template <class T>
void k_classifier_bwd(T *logits, const float *lse, const int32_t *tgt, float scale, int BT,
		      int V, int Vpad);
// sum of squares of g [n] into *out (device double), through PART (PLAN_NORM_BLOCKS doubles)
template <class T>
void k_sumsq(double *out, double *part, const T *g, uint64_t n);
// AdamW on n elements: master (fp32) updated, the moments too; param written from the master
// (the same buffer in fp32; bf16: stochastic rounding under seed and step, index from IDX0)
template <class T>
void k_adamw(T *param, float *master, const T *grad, float *mom, float *var, uint64_t n,
	     uint64_t idx0, uint64_t t, float lr, float decay, float gscale, uint64_t seed);
// param = the master's bf16 copy (stochastic rounding under seed and step, the elements
// numbered from IDX0) or nothing in fp32 (the same buffer)
template <class T>
void k_round_params(T *param, const float *master, uint64_t n, uint64_t idx0, uint64_t seed,
		    uint64_t step);

#endif
