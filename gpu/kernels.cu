// kernels.cu: the CUDA backend's kernels (see kernels.cuh). Each is a thin shell of threads
// and memory around model/gpu-math.h's arithmetic; the reductions use fixed trees (a warp's
// xor butterfly, a block's halving loop, fixed row chunks), so results repeat bit for bit.
#include "kernels.cuh"

extern "C" {
#include "model/gpu-math.h"
#include "model/plan.h"
}

#define MAXGRID CUDA_MAXGRID

static __device__ __forceinline__ float warp_sum(float v)
{
	// every lane adds the same two values at every step: all end with the same bits
	for (int k = 16; k > 0; k >>= 1)
		v += __shfl_xor_sync(0xffffffffu, v, k);
	return v;
}

unsigned cuda_grid(uint64_t n, unsigned threads)
{
	return cpg_blocks(n, threads, MAXGRID);
}

// ---- embedding ----

template <class T>
__global__ void encoder_fwd_kernel(T *out, const int32_t *tok, const T *wte, const T *wpe,
				   int BT, int Tlen, int C)
{
	FOR_EACH(i, (uint64_t)BT * C) {
		uint64_t r = i / C, c = i % C;
		out[i] = cp_st<T>(cp_ld(wte[(uint64_t)tok[r] * C + c]) +
				  cp_ld(wpe[(r % Tlen) * C + c]));
	}
}

template <class T>
void k_encoder_fwd(T *out, const int32_t *tok, const T *wte, const T *wpe, int BT, int Tlen, int C)
{
	encoder_fwd_kernel<T><<<cuda_grid((uint64_t)BT * C, 256), 256>>>(out, tok, wte, wpe, BT, Tlen, C);
	cudaLaunchCheck();
}

// one block per distinct token, adding its positions in increasing order as the CPU does
template <class T>
__global__ void encoder_bwd_wte_kernel(T *dwte, const T *dout, const uint32_t *ids,
				       const uint32_t *start, const uint32_t *pos, int C)
{
	uint32_t id = ids[blockIdx.x], s = start[blockIdx.x], e = start[blockIdx.x + 1];
	for (int c = threadIdx.x; c < C; c += blockDim.x) {
		float acc = cp_ld(dwte[(uint64_t)id * C + c]);
		for (uint32_t k = s; k < e; k++)
			acc += cp_ld(dout[(uint64_t)pos[k] * C + c]);
		dwte[(uint64_t)id * C + c] = cp_st<T>(acc);
	}
}

template <class T>
__global__ void encoder_bwd_wpe_kernel(T *dwpe, const T *dout, int B, int Tlen, int C)
{
	FOR_EACH(i, (uint64_t)Tlen * C) {
		float acc = cp_ld(dwpe[i]);
		for (int b = 0; b < B; b++)
			acc += cp_ld(dout[(uint64_t)b * Tlen * C + i]);
		dwpe[i] = cp_st<T>(acc);
	}
}

template <class T>
void k_encoder_bwd(T *dwte, T *dwpe, const T *dout, const uint32_t *ids, const uint32_t *start,
		   const uint32_t *pos, int nids, int B, int Tlen, int C)
{
	if (nids > 0) {
		encoder_bwd_wte_kernel<T><<<nids, 256>>>(dwte, dout, ids, start, pos, C);
		cudaLaunchCheck();
	}
	encoder_bwd_wpe_kernel<T><<<cuda_grid((uint64_t)Tlen * C, 256), 256>>>(dwpe, dout, B, Tlen, C);
	cudaLaunchCheck();
}

// ---- LayerNorm: a warp per row ----

template <class T>
__global__ void residual_ln_kernel(T *res, T *out, float *mean, float *rstd, const T *a,
				   const T *b, const T *w, const T *bias, int BT, int C)
{
	int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
	if (row >= BT)
		return;
	T *r = res + (uint64_t)row * C;
	float s = 0.0f;
	for (int c = lane; c < C; c += 32) {
		if (a) {
			uint64_t i = (uint64_t)row * C + c;
			r[c] = cp_st<T>(cp_ld(a[i]) + cp_ld(b[i]));
		}
		s += cp_ld(r[c]);	// the stored (rounded) sum: what the backward pass reads
	}
	float mu = warp_sum(s) / (float)C, sq = 0.0f;
	for (int c = lane; c < C; c += 32) {
		float d = cp_ld(r[c]) - mu;
		sq += d * d;
	}
	float rs = cpg_ln_rstd(warp_sum(sq), (float)C);
	T *o = out + (uint64_t)row * C;
	for (int c = lane; c < C; c += 32)
		o[c] = cp_st<T>(cpg_ln_out(cp_ld(r[c]), mu, rs, cp_ld(w[c]), cp_ld(bias[c])));
	if (lane == 0) {
		mean[row] = mu;
		rstd[row] = rs;
	}
}

template <class T>
void k_residual_ln(T *res, T *out, float *mean, float *rstd, const T *a, const T *b,
		   const T *w, const T *bias, int BT, int C)
{
	residual_ln_kernel<T><<<cpg_blocks(BT, 8, MAXGRID), 256>>>(res, out, mean, rstd, a, b, w, bias, BT, C);
	cudaLaunchCheck();
}

template <class T>
__global__ void ln_apply_kernel(T *out, const T *x, const float *mean, const float *rstd,
				const T *w, const T *bias, int BT, int C)
{
	FOR_EACH(i, (uint64_t)BT * C) {
		uint64_t r = i / C, c = i % C;
		out[i] = cp_st<T>(cpg_ln_out(cp_ld(x[i]), mean[r], rstd[r], cp_ld(w[c]), cp_ld(bias[c])));
	}
}

template <class T>
void k_ln_apply(T *out, const T *x, const float *mean, const float *rstd, const T *w,
		const T *bias, int BT, int C)
{
	ln_apply_kernel<T><<<cuda_grid((uint64_t)BT * C, 256), 256>>>(out, x, mean, rstd, w, bias, BT, C);
	cudaLaunchCheck();
}

template <class T>
__global__ void ln_bwd_dx_kernel(T *dx, const T *dout, const T *x, const T *w,
				 const float *mean, const float *rstd, int BT, int C)
{
	int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
	if (row >= BT)
		return;
	uint64_t o = (uint64_t)row * C;
	float mu = mean[row], rs = rstd[row], dm = 0.0f, dnm = 0.0f;
	for (int c = lane; c < C; c += 32) {
		float dn = cp_ld(dout[o + c]) * cp_ld(w[c]);
		dm += dn;
		dnm += dn * (cp_ld(x[o + c]) - mu) * rs;
	}
	dm = warp_sum(dm) / (float)C;
	dnm = warp_sum(dnm) / (float)C;
	for (int c = lane; c < C; c += 32)
		dx[o + c] = cp_st<T>(cp_ld(dx[o + c]) + cpg_ln_dx(cp_ld(dout[o + c]), cp_ld(w[c]),
							      cp_ld(x[o + c]), mu, rs, dm, dnm));
}

// the weight gradients' partial sums: chunk blockIdx.y of PLAN_ROWCHUNK rows, into
// part[chunk][0, C) (dw) and part[chunk][C, 2C) (db)
template <class T>
__global__ void ln_bwd_part_kernel(float *part, const T *dout, const T *x, const float *mean,
				   const float *rstd, int BT, int C)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= C)
		return;
	int r0 = blockIdx.y * PLAN_ROWCHUNK, r1 = min(BT, r0 + PLAN_ROWCHUNK);
	float dw = 0.0f, db = 0.0f;
	for (int r = r0; r < r1; r++) {
		uint64_t i = (uint64_t)r * C + c;
		float d = cp_ld(dout[i]);
		dw += d * (cp_ld(x[i]) - mean[r]) * rstd[r];
		db += d;
	}
	part[(uint64_t)blockIdx.y * 2 * C + c] = dw;
	part[(uint64_t)blockIdx.y * 2 * C + C + c] = db;
}

// g[j] += the chunks' partials of column j, in chunk order; columns [0, n1) go to G1, the
// next n2 to G2
template <class T>
__global__ void colsum_finish_kernel(T *g1, int n1, T *g2, int n2, const float *part,
				     int nchunks)
{
	int j = blockIdx.x * blockDim.x + threadIdx.x, w = n1 + n2;
	if (j >= w)
		return;
	float s = 0.0f;
	for (int k = 0; k < nchunks; k++)
		s += part[(uint64_t)k * w + j];
	T *g = j < n1 ? g1 + j : g2 + (j - n1);
	*g = cp_st<T>(cp_ld(*g) + s);
}

static int chunks_of(int BT)
{
	return (BT + PLAN_ROWCHUNK - 1) / PLAN_ROWCHUNK;
}

template <class T>
void k_ln_bwd(T *dx, T *dw, T *db, float *part, const T *dout, const T *x, const T *w,
	      const float *mean, const float *rstd, int BT, int C)
{
	ln_bwd_dx_kernel<T><<<cpg_blocks(BT, 8, MAXGRID), 256>>>(dx, dout, x, w, mean, rstd, BT, C);
	cudaLaunchCheck();
	dim3 grid((C + 255) / 256, chunks_of(BT));
	ln_bwd_part_kernel<T><<<grid, 256>>>(part, dout, x, mean, rstd, BT, C);
	cudaLaunchCheck();
	colsum_finish_kernel<T><<<(2 * C + 255) / 256, 256>>>(dw, C, db, C, part, chunks_of(BT));
	cudaLaunchCheck();
}

template <class T>
__global__ void bias_part_kernel(float *part, const T *dout, int BT, int OC)
{
	int c = blockIdx.x * blockDim.x + threadIdx.x;
	if (c >= OC)
		return;
	int r0 = blockIdx.y * PLAN_ROWCHUNK, r1 = min(BT, r0 + PLAN_ROWCHUNK);
	float s = 0.0f;
	for (int r = r0; r < r1; r++)
		s += cp_ld(dout[(uint64_t)r * OC + c]);
	part[(uint64_t)blockIdx.y * OC + c] = s;
}

template <class T>
void k_bias_bwd(T *db, float *part, const T *dout, int BT, int OC)
{
	dim3 grid((OC + 255) / 256, chunks_of(BT));
	bias_part_kernel<T><<<grid, 256>>>(part, dout, BT, OC);
	cudaLaunchCheck();
	colsum_finish_kernel<T><<<(OC + 255) / 256, 256>>>(db, OC, db, 0, part, chunks_of(BT));
	cudaLaunchCheck();
}

// ---- GELU ----

template <class T>
__global__ void gelu_fwd_kernel(T *out, const T *x, uint64_t n)
{
	FOR_EACH(i, n)
		out[i] = cp_st<T>(cpg_gelu(cp_ld(x[i])));
}

template <class T>
void k_gelu_fwd(T *out, const T *x, uint64_t n)
{
	gelu_fwd_kernel<T><<<cuda_grid(n, 256), 256>>>(out, x, n);
	cudaLaunchCheck();
}

template <class T>
__global__ void gelu_bwd_kernel(T *d, const T *x, uint64_t n)
{
	FOR_EACH(i, n)
		d[i] = cp_st<T>(cpg_gelu_bwd(cp_ld(x[i]), cp_ld(d[i])));
}

template <class T>
void k_gelu_bwd(T *d, const T *x, uint64_t n)
{
	gelu_bwd_kernel<T><<<cuda_grid(n, 256), 256>>>(d, x, n);
	cudaLaunchCheck();
}

// ---- attention: a thread per row; a warp's threads are neighbouring rows of one head, so
// they read each key and value row at the same time (one broadcast load) ----

static __device__ __forceinline__ void attn_fwd_row(float *o, float *l, const float *q,
						    const float *k, const float *v, uint64_t qs,
						    int n, int hs, float sc)
{
	cpg_f32_attn_fwd_row(o, l, q, k, v, qs, n, hs, sc);
}

static __device__ __forceinline__ void attn_fwd_row(cp_bf16 *o, float *l, const cp_bf16 *q,
						    const cp_bf16 *k, const cp_bf16 *v,
						    uint64_t qs, int n, int hs, float sc)
{
	cpg_bf16_attn_fwd_row(o, l, q, k, v, qs, n, hs, sc);
}

template <class T>
__global__ void attn_fwd_kernel(T *out, float *lse, const T *qkv, int B, int Tlen, int C,
				int NH, float scale)
{
	uint64_t rows = (uint64_t)B * NH * Tlen;
	FOR_EACH(idx, rows) {
		int t = (int)(idx % Tlen), bh = (int)(idx / Tlen), h = bh % NH, b = bh / NH;
		int hs = C / NH;
		uint64_t qs = 3 * (uint64_t)C;
		const T *seq = qkv + (uint64_t)b * Tlen * qs + (uint64_t)h * hs;
		attn_fwd_row(out + ((uint64_t)b * Tlen + t) * C + (uint64_t)h * hs, lse + idx,
			     seq + t * qs, seq + C, seq + 2 * (uint64_t)C, qs, t + 1, hs, scale);
	}
}

template <class T>
void k_attn_fwd(T *out, float *lse, const T *qkv, int B, int Tlen, int C, int NH, float scale)
{
	uint64_t rows = (uint64_t)B * NH * Tlen;
	attn_fwd_kernel<T><<<cuda_grid(rows, 128), 128>>>(out, lse, qkv, B, Tlen, C, NH, scale);
	cudaLaunchCheck();
}

static __device__ __forceinline__ void attn_bwd_q_row(float *dq, const float *q, const float *k,
						      const float *v, uint64_t qs, const float *o,
						      const float *d, float l, int n, int hs,
						      float sc)
{
	cpg_f32_attn_bwd_q_row(dq, q, k, v, qs, o, d, l, n, hs, sc);
}

static __device__ __forceinline__ void attn_bwd_q_row(cp_bf16 *dq, const cp_bf16 *q,
						      const cp_bf16 *k, const cp_bf16 *v,
						      uint64_t qs, const cp_bf16 *o,
						      const cp_bf16 *d, float l, int n, int hs,
						      float sc)
{
	cpg_bf16_attn_bwd_q_row(dq, q, k, v, qs, o, d, l, n, hs, sc);
}

static __device__ __forceinline__ void attn_bwd_kv_row(float *dk, float *dv, const float *q,
						       const float *k, const float *v,
						       uint64_t qs, const float *o,
						       const float *d, uint64_t os, const float *l,
						       int u, int n, int hs, float sc)
{
	cpg_f32_attn_bwd_kv_row(dk, dv, q, k, v, qs, o, d, os, l, u, n, hs, sc);
}

static __device__ __forceinline__ void attn_bwd_kv_row(cp_bf16 *dk, cp_bf16 *dv,
						       const cp_bf16 *q, const cp_bf16 *k,
						       const cp_bf16 *v, uint64_t qs,
						       const cp_bf16 *o, const cp_bf16 *d,
						       uint64_t os, const float *l, int u, int n,
						       int hs, float sc)
{
	cpg_bf16_attn_bwd_kv_row(dk, dv, q, k, v, qs, o, d, os, l, u, n, hs, sc);
}

// rows [0, R) compute dq, rows [R, 2R) dk and dv: one launch, no thread writes another's
template <class T>
__global__ void attn_bwd_kernel(T *dqkv, const T *dout, const T *qkv, const T *out,
				const float *lse, int B, int Tlen, int C, int NH, float scale)
{
	uint64_t R = (uint64_t)B * NH * Tlen;
	FOR_EACH(i, 2 * R) {
		uint64_t idx = i % R;
		int t = (int)(idx % Tlen), bh = (int)(idx / Tlen), h = bh % NH, b = bh / NH;
		int hs = C / NH;
		uint64_t qs = 3 * (uint64_t)C, hoff = (uint64_t)h * hs;
		const T *seq = qkv + (uint64_t)b * Tlen * qs + hoff;
		const T *oseq = out + (uint64_t)b * Tlen * C + hoff;
		const T *dseq = dout + (uint64_t)b * Tlen * C + hoff;
		T *drow = dqkv + ((uint64_t)b * Tlen + t) * qs + hoff;
		if (i < R)
			attn_bwd_q_row(drow, seq + t * qs, seq + C, seq + 2 * (uint64_t)C, qs,
				       oseq + (uint64_t)t * C, dseq + (uint64_t)t * C, lse[idx],
				       t + 1, hs, scale);
		else
			attn_bwd_kv_row(drow + C, drow + 2 * (uint64_t)C, seq, seq + t * qs + C,
					seq + t * qs + 2 * (uint64_t)C, qs, oseq, dseq, C,
					lse + (uint64_t)bh * Tlen, t, Tlen, hs, scale);
	}
}

template <class T>
void k_attn_bwd(T *dqkv, const T *dout, const T *qkv, const T *out, const float *lse, int B,
		int Tlen, int C, int NH, float scale)
{
	uint64_t R = (uint64_t)B * NH * Tlen;
	attn_bwd_kernel<T><<<cuda_grid(2 * R, 128), 128>>>(dqkv, dout, qkv, out, lse, B, Tlen, C, NH, scale);
	cudaLaunchCheck();
}

// ---- the classifier: a block per row, its logsumexp merged in a fixed tree ----

#define CLS_THREADS 512

template <class T>
__global__ void classifier_fwd_kernel(float *losses, float *lse, const T *logits,
				      const int32_t *tgt, int V, int Vpad)
{
	__shared__ float sm[CLS_THREADS], ss[CLS_THREADS];
	const T *x = logits + (uint64_t)blockIdx.x * Vpad;
	struct cpg_lse a = cpg_lse_empty();
	for (int v = threadIdx.x; v < V; v += blockDim.x)
		a = cpg_lse_add(a, cp_ld(x[v]));
	sm[threadIdx.x] = a.m;
	ss[threadIdx.x] = a.s;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k >>= 1) {
		if ((int)threadIdx.x < k) {
			struct cpg_lse p = { sm[threadIdx.x], ss[threadIdx.x] };
			struct cpg_lse q = { sm[threadIdx.x + k], ss[threadIdx.x + k] };
			p = cpg_lse_merge(p, q);
			sm[threadIdx.x] = p.m;
			ss[threadIdx.x] = p.s;
		}
		__syncthreads();
	}
	if (threadIdx.x == 0) {
		struct cpg_lse p = { sm[0], ss[0] };
		float l = cpg_lse_value(p);
		int32_t g = tgt[blockIdx.x];
		lse[blockIdx.x] = l;
		losses[blockIdx.x] = g < 0 ? 0.0f : l - cp_ld(x[g]);
	}
}

template <class T>
void k_classifier_fwd(float *losses, float *lse, const T *logits, const int32_t *tgt, int BT,
		      int V, int Vpad)
{
	classifier_fwd_kernel<T><<<BT, CLS_THREADS>>>(losses, lse, logits, tgt, V, Vpad);
	cudaLaunchCheck();
}

template <class T>
__global__ void classifier_bwd_kernel(T *logits, const float *lse, const int32_t *tgt,
				      float scale, int V, int Vpad)
{
	T *x = logits + (uint64_t)blockIdx.x * Vpad;
	int32_t g = tgt[blockIdx.x];
	float l = lse[blockIdx.x];
	for (int v = threadIdx.x; v < Vpad; v += blockDim.x)
		x[v] = cp_st<T>(g < 0 || v >= V ? 0.0f : cpg_xent_dlogit(cp_ld(x[v]), l, v == g, scale));
}

template <class T>
void k_classifier_bwd(T *logits, const float *lse, const int32_t *tgt, float scale, int BT,
		      int V, int Vpad)
{
	classifier_bwd_kernel<T><<<BT, CLS_THREADS>>>(logits, lse, tgt, scale, V, Vpad);
	cudaLaunchCheck();
}

// ---- gradient norm: fixed grid, fp64 partials, one block to finish ----

#define NORM_THREADS 256

template <class T>
__global__ void sumsq_part_kernel(double *part, const T *g, uint64_t n)
{
	__shared__ double s[NORM_THREADS];
	double a = 0.0;
	FOR_EACH(i, n) {
		double x = cp_ld(g[i]);
		a += x * x;
	}
	s[threadIdx.x] = a;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k >>= 1) {
		if ((int)threadIdx.x < k)
			s[threadIdx.x] += s[threadIdx.x + k];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		part[blockIdx.x] = s[0];
}

__global__ void sumsq_finish_kernel(double *out, const double *part, int n)
{
	__shared__ double s[1024];
	s[threadIdx.x] = (int)threadIdx.x < n ? part[threadIdx.x] : 0.0;
	__syncthreads();
	for (int k = blockDim.x / 2; k > 0; k >>= 1) {
		if ((int)threadIdx.x < k)
			s[threadIdx.x] += s[threadIdx.x + k];
		__syncthreads();
	}
	if (threadIdx.x == 0)
		*out = s[0];
}

template <class T>
void k_sumsq(double *out, double *part, const T *g, uint64_t n)
{
	static_assert(PLAN_NORM_BLOCKS <= 1024, "one block finishes the norm");
	sumsq_part_kernel<T><<<PLAN_NORM_BLOCKS, NORM_THREADS>>>(part, g, n);
	cudaLaunchCheck();
	sumsq_finish_kernel<<<1, 1024>>>(out, part, PLAN_NORM_BLOCKS);
	cudaLaunchCheck();
}

// ---- AdamW and the bf16 copy ----

static __device__ __forceinline__ void store_param(float *p, float x, uint64_t, uint64_t, uint64_t)
{
	*p = x;
}

static __device__ __forceinline__ void store_param(cp_bf16 *p, float x, uint64_t seed,
						   uint64_t step, uint64_t idx)
{
	*p = cp_f32_to_bf16_sr(x, seed, step, idx);
}

template <class T>
__global__ void adamw_kernel(T *param, float *master, const T *grad, float *mom, float *var,
			     uint64_t n, uint64_t idx0, struct cpg_adamw a, float decay,
			     float gscale, uint64_t seed, uint64_t t)
{
	FOR_EACH(i, n) {
		float mo = mom[i], va = var[i];
		float p = cpg_adamw_elem(&a, master[i], cp_ld(grad[i]), gscale, decay, &mo, &va);
		mom[i] = mo;
		var[i] = va;
		master[i] = p;
		if ((void *)param != (void *)master)
			store_param(param + i, p, seed, t, idx0 + i);
	}
}

template <class T>
void k_adamw(T *param, float *master, const T *grad, float *mom, float *var, uint64_t n,
	     uint64_t idx0, uint64_t t, float lr, float decay, float gscale, uint64_t seed)
{
	struct cpg_adamw a = cpg_adamw_consts(t, lr);
	adamw_kernel<T><<<cuda_grid(n, 256), 256>>>(param, master, grad, mom, var, n, idx0, a,
						    decay, gscale, seed, t);
	cudaLaunchCheck();
}

template <class T>
__global__ void round_params_kernel(T *param, const float *master, uint64_t n, uint64_t idx0,
				    uint64_t seed, uint64_t step)
{
	FOR_EACH(i, n)
		store_param(param + i, master[i], seed, step, idx0 + i);
}

template <class T>
void k_round_params(T *param, const float *master, uint64_t n, uint64_t idx0, uint64_t seed,
		    uint64_t step)
{
	if ((const void *)param == (const void *)master || !n)
		return;
	round_params_kernel<T><<<cuda_grid(n, 256), 256>>>(param, master, n, idx0, seed, step);
	cudaLaunchCheck();
}

// ---- the two element types' instances ----
#define INSTANCES(T) \
	template void k_encoder_fwd<T>(T *, const int32_t *, const T *, const T *, int, int, int); \
	template void k_encoder_bwd<T>(T *, T *, const T *, const uint32_t *, const uint32_t *, \
				       const uint32_t *, int, int, int, int); \
	template void k_residual_ln<T>(T *, T *, float *, float *, const T *, const T *, const T *, \
				       const T *, int, int); \
	template void k_ln_apply<T>(T *, const T *, const float *, const float *, const T *, \
				    const T *, int, int); \
	template void k_ln_bwd<T>(T *, T *, T *, float *, const T *, const T *, const T *, \
				  const float *, const float *, int, int); \
	template void k_bias_bwd<T>(T *, float *, const T *, int, int); \
	template void k_gelu_fwd<T>(T *, const T *, uint64_t); \
	template void k_gelu_bwd<T>(T *, const T *, uint64_t); \
	template void k_attn_fwd<T>(T *, float *, const T *, int, int, int, int, float); \
	template void k_attn_bwd<T>(T *, const T *, const T *, const T *, const float *, int, int, \
				    int, int, float); \
	template void k_classifier_fwd<T>(float *, float *, const T *, const int32_t *, int, int, int); \
	template void k_classifier_bwd<T>(T *, const float *, const int32_t *, float, int, int, int); \
	template void k_sumsq<T>(double *, double *, const T *, uint64_t); \
	template void k_adamw<T>(T *, float *, const T *, float *, float *, uint64_t, uint64_t, \
				 uint64_t, float, float, float, uint64_t); \
	template void k_round_params<T>(T *, const float *, uint64_t, uint64_t, uint64_t, uint64_t);
INSTANCES(float)
INSTANCES(cp_bf16)
