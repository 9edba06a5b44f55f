// infer.cu: GPT-2 generation on the GPU, the CUDA backend's kv_* (model/backend.h): a key/value
// cache on the device for B rows (the samples of a prompt, many prompts), a call appending
// tokens to any subset of them, prefill and decoding alike, and the logits copied back for the
// host's sampler (infer/sample.c), so that sampling is the CPU backend's.
//
// The model's weights go to the device once, in the padded layout of training (model/pad.h:
// the output layer's pad rows zero), and are shared by every state of that model: a server
// holds a batch and scores prompts beside it. A call runs the training forward's kernels on
// its M tokens as rows (fused residual + LayerNorm, the cuBLASLt products with their bias and
// GELU epilogues); only the attention differs: each new key and value is stored in the cache,
// then a block per (token, head) attends over its row's cache up to its own position. In fp32
// every buffer is fp32; with the model's bf16 inference weights (cp-complete --bf16) weights,
// activations and the cache are bf16, the logits fp32. Memory is what model/gpu-infer.h plans.
#include "infer.cuh"
#include "kernels.cuh"
#include "matmul.cuh"

#include <pthread.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "base/die.h"
#include "base/xalloc.h"
#include "model/gpu-infer.h"
#include "model/gpu-math.h"
#include "model/pad.h"
#include "model/plan.h"
}

// threads of an attention block: at least the largest head size, a power of two
#define KV_ATT_THREADS 256
static_assert(KV_ATT_THREADS >= CPG_MAX_HS, "a thread per dimension of a head");

// One model's weights on the device, shared by its states, freed with the last of them.
struct kv_weights {
	const struct gpt2_model *m;
	int precision;
	struct gpt2_config pcfg;	// the padded model
	struct gpt2_layout play;	// and its layout
	void *p;
	uint64_t bytes;			// the weights'
	uint64_t state_bytes;		// its live states'
	int refs;
	struct kv_weights *next;
};

static pthread_mutex_t weights_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kv_weights *weights_all;

struct gpt2_kv {
	struct kv_weights *w;
	int B, T, L, NH, C, hs, V, Vp, precision;
	size_t esz;
	void *kc, *vc;			// [L][B][NH][T][hs] (model/gpu-infer.h)
	int *len;			// host [B]
	uint64_t cap;			// tokens the scratch holds
	char *scratch;
	uint64_t off[PLAN_KV_NBUF];
	uint64_t scratch_bytes, bytes;	// the scratch's, and all this state holds
	struct mm_ctx mm;
	int32_t *h_ids;			// host [3 h_cap]
	uint64_t h_cap;
};

static void *kv_alloc(uint64_t bytes, const char *what)
{
	void *p = NULL;
	cudaError_t e = cudaMalloc(&p, bytes);
	if (e != cudaSuccess) {
		size_t fr = 0, tot = 0;
		cudaMemGetInfo(&fr, &tot);
		die("out of GPU memory allocating %llu bytes for the %s (%llu free of %llu): "
		    "try fewer rows (a smaller --batch) or fewer tokens", (unsigned long long)bytes,
		    what, (unsigned long long)fr, (unsigned long long)tot);
	}
	cudaCheck(cudaMemset(p, 0, bytes));
	return p;
}

static struct kv_weights *weights_get(const struct gpt2_model *m, int precision)
{
	pthread_mutex_lock(&weights_lock);
	struct kv_weights *w = weights_all;
	while (w && (w->m != m || w->precision != precision))
		w = w->next;
	if (w) {
		w->refs++;
		pthread_mutex_unlock(&weights_lock);
		return w;
	}
	w = (struct kv_weights *)xcalloc(1, sizeof(*w));
	w->m = m;
	w->precision = precision;
	w->pcfg = gpt2_config_padded(&m->cfg);
	gpt2_layout(&w->pcfg, &w->play);
	size_t esz = precision == GPT2_BF16 ? 2 : 4;
	w->bytes = w->play.total * esz;
	w->p = kv_alloc(w->bytes, "model's weights");
	uint16_t *tmp = esz == 2 ? (uint16_t *)xcalloc(CUDA_XFER_CHUNK, sizeof(uint16_t)) : NULL;
	// each tensor of the true layout is the start of its padded one (the pad rows stay 0)
	for (int k = 0; k < GPT2_NT; k++)
		cuda_xfer(m->params + m->lay.off[k], (char *)w->p + w->play.off[k] * esz,
			  m->lay.size[k], esz, 1, tmp);
	free(tmp);
	w->refs = 1;
	w->next = weights_all;
	weights_all = w;
	pthread_mutex_unlock(&weights_lock);
	return w;
}

static void weights_put(struct kv_weights *w)
{
	pthread_mutex_lock(&weights_lock);
	if (--w->refs == 0) {
		struct kv_weights **p = &weights_all;
		while (*p != w)
			p = &(*p)->next;
		*p = w->next;
		cudaCheck(cudaFree(w->p));
		free(w);
	}
	pthread_mutex_unlock(&weights_lock);
}

uint64_t cuda_kv_bytes(const struct gpt2_model *m)
{
	uint64_t n = 0;
	pthread_mutex_lock(&weights_lock);
	for (struct kv_weights *w = weights_all; w; w = w->next)
		if (w->m == m)
			n += w->bytes + w->state_bytes;
	pthread_mutex_unlock(&weights_lock);
	return n;
}

static void state_bytes_add(struct gpt2_kv *s, int64_t d)
{
	pthread_mutex_lock(&weights_lock);
	s->w->state_bytes += (uint64_t)d;
	pthread_mutex_unlock(&weights_lock);
	s->bytes += (uint64_t)d;
}

// scratch for M tokens a call (grown, never shrunk: a server's batch keeps its size)
static void ensure_scratch(struct gpt2_kv *s, uint64_t M)
{
	if (M <= s->cap)
		return;
	const struct gpt2_config *c = &s->w->m->cfg;
	if (s->scratch) {
		cudaCheck(cudaFree(s->scratch));
		state_bytes_add(s, -(int64_t)s->scratch_bytes);
	}
	s->scratch_bytes = plan_kv_scratch(c, M, s->precision, s->off);
	s->scratch = (char *)kv_alloc(s->scratch_bytes, "generation's activations");
	state_bytes_add(s, (int64_t)s->scratch_bytes);
	s->cap = M;
}

struct gpt2_kv *cuda_kv_new(const struct gpt2_model *m, int B, int T)
{
	if (B < 1 || T < 1 || (uint32_t)T > m->cfg.n_ctx)
		die("inference state of %d x %d for a model of context %u", B, T, m->cfg.n_ctx);
	int hs = (int)(m->cfg.n_embd / m->cfg.n_head);
	if (hs > CPG_MAX_HS)
		die("cuda backend: head size %d is over %d", hs, CPG_MAX_HS);
	// the attention block keeps a score per position in shared memory
	if ((uint64_t)T * 4 + KV_ATT_THREADS * 4 > 48 * 1024)
		die("cuda backend: %d positions a row do not fit the attention kernel", T);
	cuda_use_device();
	struct gpt2_kv *s = (struct gpt2_kv *)xcalloc(1, sizeof(*s));
	s->precision = m->infer_bf16 ? GPT2_BF16 : GPT2_FP32;
	s->esz = s->precision == GPT2_BF16 ? 2 : 4;
	s->w = weights_get(m, s->precision);
	s->B = B;
	s->T = T;
	s->L = (int)m->cfg.n_layer;
	s->NH = (int)m->cfg.n_head;
	s->C = (int)m->cfg.n_embd;
	s->hs = hs;
	s->V = (int)m->cfg.vocab_size;
	s->Vp = (int)s->w->pcfg.vocab_size;
	uint64_t half = plan_kv_cache_bytes(&m->cfg, (uint64_t)B, (uint64_t)T, s->precision) / 2;
	s->kc = kv_alloc(half, "key cache");
	s->vc = kv_alloc(half, "value cache");
	s->mm.ws_bytes = PLAN_WORKSPACE_BYTES;
	s->mm.ws = kv_alloc(s->mm.ws_bytes, "cuBLASLt workspace");
	state_bytes_add(s, (int64_t)(2 * half + s->mm.ws_bytes));
	cublasCheck(cublasLtCreate(&s->mm.lt));
	s->mm.type = s->precision == GPT2_BF16 ? CUDA_R_16BF : CUDA_R_32F;
	const char *g = getenv("CP_CUDA_GELU_EPILOGUE");
	s->mm.gelu_ok = g && !strcmp(g, "0") ? 0 : -1;
	s->len = (int *)xcalloc((size_t)B, sizeof(int));
	ensure_scratch(s, (uint64_t)(B > T ? B : T));
	return s;
}

void cuda_kv_free(struct gpt2_kv *s)
{
	if (!s)
		return;
	cuda_use_device();
	void *bufs[] = { s->kc, s->vc, s->mm.ws, s->scratch };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		if (bufs[i])
			cudaCheck(cudaFree(bufs[i]));
	cublasCheck(cublasLtDestroy(s->mm.lt));
	state_bytes_add(s, -(int64_t)s->bytes);
	weights_put(s->w);
	free(s->len);
	free(s->h_ids);
	free(s);
}

void cuda_kv_reset(struct gpt2_kv *s)
{
	memset(s->len, 0, (size_t)s->B * sizeof(int));
}

int cuda_kv_len(const struct gpt2_kv *s, int row)
{
	return s->len[row];
}

// ---- kernels ----

// x[i] = wte[tok[i]] + wpe[pos[i]]
template <class T>
__global__ void kv_embed_kernel(T *x, const int32_t *tok, const int32_t *pos, const T *wte,
				const T *wpe, uint64_t M, int C)
{
	FOR_EACH(i, M * C) {
		uint64_t r = i / C, c = i % C;
		x[i] = cp_st<T>(cp_ld(wte[(uint64_t)tok[r] * C + c]) +
				cp_ld(wpe[(uint64_t)pos[r] * C + c]));
	}
}

// each token's key and value (of qkv [M][3C]) into its row's cache at its position
template <class T>
__global__ void kv_store_kernel(T *kc, T *vc, const T *qkv, const int32_t *row,
				const int32_t *pos, int l, uint64_t M, int B, int NH, int Tmax,
				int hs)
{
	int C = NH * hs;
	FOR_EACH(i, M * C) {
		uint64_t r = i / C;
		int j = (int)(i % C);
		uint64_t o = cpg_kv_off(l, row[r], j / hs, pos[r], B, NH, Tmax, hs) + j % hs;
		kc[o] = qkv[r * 3 * C + C + j];
		vc[o] = qkv[r * 3 * C + 2 * C + j];
	}
}

// MO rows of C elements, FIRST + r LD apart in IN, packed into OUT (the products want their
// operands aligned as cudaMalloc aligns them)
template <class T>
__global__ void kv_gather_kernel(T *out, const T *in, uint64_t MO, uint64_t first, uint64_t ld,
				 int C)
{
	FOR_EACH(i, MO * C)
		out[i] = in[first + (i / C) * ld + i % C];
}

// positions [0, n) of row SRC into row DST, every layer and head
template <class T>
__global__ void kv_copy_kernel(T *kc, T *vc, int dst, int src, int n, int L, int B, int NH,
			       int Tmax, int hs)
{
	uint64_t per = (uint64_t)n * hs;
	FOR_EACH(i, (uint64_t)L * NH * per) {
		uint64_t lh = i / per, e = i % per;
		int l = (int)(lh / NH), h = (int)(lh % NH);
		uint64_t d = cpg_kv_off(l, dst, h, 0, B, NH, Tmax, hs) + e;
		uint64_t s = cpg_kv_off(l, src, h, 0, B, NH, Tmax, hs) + e;
		kc[d] = kc[s];
		vc[d] = vc[s];
	}
}

static __device__ __forceinline__ float kv_score(const float *q, const float *k, int hs, float sc)
{
	return cpg_f32_kv_score(q, k, hs, sc);
}

static __device__ __forceinline__ float kv_score(const cp_bf16 *q, const cp_bf16 *k, int hs,
						 float sc)
{
	return cpg_bf16_kv_score(q, k, hs, sc);
}

// a block's max (MAX) or sum of V in a fixed tree, so the result repeats bit for bit
static __device__ float block_reduce(float v, float *red, int max)
{
	red[threadIdx.x] = v;
	__syncthreads();
	for (unsigned k = blockDim.x / 2; k > 0; k >>= 1) {
		if (threadIdx.x < k)
			red[threadIdx.x] = max ? fmaxf(red[threadIdx.x], red[threadIdx.x + k]) :
						 red[threadIdx.x] + red[threadIdx.x + k];
		__syncthreads();
	}
	float r = red[0];
	__syncthreads();
	return r;
}

// Block i * NH + h: token i's query of head h over its row's keys 0 .. pos[i] (which hold
// this call's own keys too, stored first), kv_attn_row's arithmetic spread over the block:
// threads score the keys, then groups of hs threads add the weighted values of every G-th
// key, and the G partial sums are added in group order.
template <class T>
__global__ void kv_attn_kernel(T *out, const T *qkv, const T *kc, const T *vc,
			       const int32_t *row, const int32_t *pos, int l, int B, int NH,
			       int Tmax, int hs, float scale)
{
	extern __shared__ float sh[];
	float *a = sh, *red = sh + Tmax;
	int i = (int)(blockIdx.x / NH), h = (int)(blockIdx.x % NH), n = pos[i] + 1, C = NH * hs;
	const T *q = qkv + (uint64_t)i * 3 * C + (uint64_t)h * hs;
	uint64_t o = cpg_kv_off(l, row[i], h, 0, B, NH, Tmax, hs);
	const T *k = kc + o, *v = vc + o;
	float mx = -INFINITY;
	for (int u = threadIdx.x; u < n; u += blockDim.x) {
		a[u] = kv_score(q, k + (uint64_t)u * hs, hs, scale);
		mx = fmaxf(mx, a[u]);
	}
	mx = block_reduce(mx, red, 1);
	float sum = 0.0f;
	for (int u = threadIdx.x; u < n; u += blockDim.x) {
		a[u] = expf(a[u] - mx);
		sum += a[u];
	}
	sum = block_reduce(sum, red, 0);	// its syncs publish a[] to the block
	float inv = 1.0f / sum, acc = 0.0f;
	int G = (int)blockDim.x / hs, g = (int)threadIdx.x / hs, d = (int)threadIdx.x % hs;
	if (g < G)
		for (int u = g; u < n; u += G)
			acc += a[u] * inv * cp_ld(v[(uint64_t)u * hs + d]);
	red[threadIdx.x] = acc;
	__syncthreads();
	if ((int)threadIdx.x < hs) {
		float s = 0.0f;
		for (int gg = 0; gg < G; gg++)
			s += red[gg * hs + threadIdx.x];
		out[(uint64_t)i * C + (uint64_t)h * hs + threadIdx.x] = cp_st<T>(s);
	}
}

// ---- the forward pass of a call's M tokens ----

template <class E> struct kv_ops {
	struct gpt2_kv *s;
	uint64_t M;

	E *p(int t, int l) const
	{
		const struct kv_weights *w = s->w;
		return (E *)w->p + gpt2_tensor_offset(&w->pcfg, &w->play, t, l);
	}
	E *buf(int k) const { return (E *)(s->scratch + s->off[k]); }
	float *f32(int k) const { return (float *)(s->scratch + s->off[k]); }
	const int32_t *ids(int part) const
	{
		return (const int32_t *)(s->scratch + s->off[PLAN_KV_IDS]) + part * M;
	}
	float scale(int l) const
	{
		float sc = 1.0f / sqrtf((float)s->hs);
		if (s->w->m->cfg.scale_attn_by_inverse_layer_idx)
			sc /= (float)(l + 1);
		return sc;
	}
	// x += y, then into ln the LayerNorm of weight T (layer L)
	void add_ln(const E *y, int t, int l) const
	{
		k_residual_ln(buf(PLAN_KV_X), buf(PLAN_KV_LN), f32(PLAN_KV_MEAN), f32(PLAN_KV_RSTD),
			      y ? (const E *)buf(PLAN_KV_X) : (const E *)NULL, y, p(t, l),
			      p(t + 1, l), (int)M, s->C);
	}

	void attention(int l) const
	{
		int C = s->C;
		const int32_t *row = ids(1), *pos = ids(2);
		kv_store_kernel<E><<<cuda_grid(M * C, 256), 256>>>((E *)s->kc, (E *)s->vc,
			buf(PLAN_KV_QKV), row, pos, l, M, s->B, s->NH, s->T, s->hs);
		cudaLaunchCheck();
		size_t shm = ((size_t)s->T + KV_ATT_THREADS) * sizeof(float);
		kv_attn_kernel<E><<<(unsigned)(M * s->NH), KV_ATT_THREADS, shm>>>(buf(PLAN_KV_ATTY),
			buf(PLAN_KV_QKV), (const E *)s->kc, (const E *)s->vc, row, pos, l, s->B,
			s->NH, s->T, s->hs, scale(l));
		cudaLaunchCheck();
	}

	void layer(int l) const
	{
		int C = s->C, m = (int)M;
		E *tmp = buf(PLAN_KV_TMP);
		mm_linear(&s->mm, buf(PLAN_KV_QKV), buf(PLAN_KV_LN), p(GPT2_QKVW, l), p(GPT2_QKVB, l),
			  m, C, 3 * C, MM_BIAS, NULL);
		attention(l);
		mm_linear(&s->mm, tmp, buf(PLAN_KV_ATTY), p(GPT2_ATTPROJW, l), p(GPT2_ATTPROJB, l),
			  m, C, C, MM_BIAS, NULL);
		add_ln(tmp, GPT2_LN2W, l);
		mm_linear(&s->mm, buf(PLAN_KV_GELU), buf(PLAN_KV_LN), p(GPT2_FCW, l), p(GPT2_FCB, l),
			  m, C, 4 * C, MM_GELU_BIAS, buf(PLAN_KV_FC));
		mm_linear(&s->mm, tmp, buf(PLAN_KV_GELU), p(GPT2_FCPROJW, l), p(GPT2_FCPROJB, l), m,
			  4 * C, C, MM_BIAS, NULL);
		if (l + 1 < s->L)
			add_ln(tmp, GPT2_LN1W, l + 1);
		else
			add_ln(tmp, GPT2_LNFW, 0);
	}

	// the tied output layer over the rows gpu_kv_logit_rows picks, into LOGITS [.][V]
	void output(int nr, int n, int all, float *logits) const
	{
		uint64_t first, ld, C = (uint64_t)s->C, Vp = (uint64_t)s->Vp;
		uint64_t MO = gpu_kv_logit_rows(nr, n, all, C, &first, &ld);
		float *dl = f32(PLAN_KV_LOGITS);
		E *x = buf(PLAN_KV_LN);
		if (ld != C) {
			x = buf(PLAN_KV_TMP);
			kv_gather_kernel<E><<<cuda_grid(MO * C, 256), 256>>>(x, buf(PLAN_KV_LN), MO,
									     first, ld, s->C);
			cudaLaunchCheck();
		}
		struct gpu_gemm g = gpu_gemm_rowmajor(0, 1, MO, Vp, C, C, C, Vp);
		s->mm.out_f32 = 1;
		mm_run(&s->mm, &g, x, p(GPT2_WTE, 0), dl, 0.0f, MM_NONE, NULL, NULL);
		s->mm.out_f32 = 0;
		cudaCheck(cudaMemcpy2D(logits, (size_t)s->V * sizeof(float), dl, Vp * sizeof(float),
				       (size_t)s->V * sizeof(float), MO, cudaMemcpyDeviceToHost));
	}

	void run(int nr, int n, float *logits, int all) const
	{
		kv_embed_kernel<E><<<cuda_grid(M * s->C, 256), 256>>>(buf(PLAN_KV_X), ids(0), ids(2),
			p(GPT2_WTE, 0), p(GPT2_WPE, 0), M, s->C);
		cudaLaunchCheck();
		add_ln(NULL, GPT2_LN1W, 0);
		for (int l = 0; l < s->L; l++)
			layer(l);
		if (logits)
			output(nr, n, all, logits);
		else
			cudaCheck(cudaStreamSynchronize(0));
	}
};

void cuda_kv_copy_row(struct gpt2_kv *s, int dst, int src)
{
	if (dst == src)
		return;
	cuda_use_device();
	int n = s->len[src];
	if (n > 0) {
		uint64_t total = (uint64_t)s->L * s->NH * n * s->hs;
		if (s->precision == GPT2_BF16)
			kv_copy_kernel<cp_bf16><<<cuda_grid(total, 256), 256>>>((cp_bf16 *)s->kc,
				(cp_bf16 *)s->vc, dst, src, n, s->L, s->B, s->NH, s->T, s->hs);
		else
			kv_copy_kernel<float><<<cuda_grid(total, 256), 256>>>((float *)s->kc,
				(float *)s->vc, dst, src, n, s->L, s->B, s->NH, s->T, s->hs);
		cudaLaunchCheck();
		cudaCheck(cudaStreamSynchronize(0));
	}
	s->len[dst] = n;
}

void cuda_kv_forward(struct gpt2_kv *s, const int *rows, int nr, const uint32_t *toks, int n,
		     float *logits, int all)
{
	if (nr < 1 || n < 1)
		return;
	cuda_use_device();
	uint64_t M = (uint64_t)nr * (uint64_t)n;
	if (M > s->h_cap) {
		s->h_ids = (int32_t *)xreallocarray(s->h_ids, 3 * M, sizeof(int32_t));
		s->h_cap = M;
	}
	// checked before anything is allocated for the call, as the CPU backend checks
	gpu_kv_prepare(s->h_ids, s->len, s->B, s->T, (uint32_t)s->V, rows, nr, toks, n);
	ensure_scratch(s, M);
	cudaCheck(cudaMemcpy(s->scratch + s->off[PLAN_KV_IDS], s->h_ids, 3 * M * sizeof(int32_t),
			     cudaMemcpyHostToDevice));
	if (s->precision == GPT2_BF16)
		kv_ops<cp_bf16>{ s, M }.run(nr, n, logits, all);
	else
		kv_ops<float>{ s, M }.run(nr, n, logits, all);
	for (int r = 0; r < nr; r++)
		s->len[rows[r]] += n;
}
