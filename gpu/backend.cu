// backend.cu: the CUDA backend (struct gpt2_backend gpt2_cuda_backend, model/backend.h): GPT-2
// training on one NVIDIA GPU in fp32 or in bf16 with fp32 master weights, on the kernels of
// kernels.cu and the cuBLASLt products of matmul.cu. The host model (struct gpt2_model) stays
// the truth that checkpoints read: from_host and to_host move the master weights and moments
// between its true layout and the device's padded one (model/pad.h), tensor by tensor.
//
// Memory is what model/plan.h plans, allocated in the same pieces (the activations as one
// arena laid out by plan_arena), so `cp-train --plan` tells a user beforehand what a run takes.
// Generation, the inference half, is infer.cu's.
//
// Data parallelism (set_dist) is NCCL's, on a stream of its own: the gradients reduced in
// buckets (model/plan.h) while the backward pass of a step's last micro-batch still runs, and
// ZeRO-1: the gradients reduced to the owner of each shard, AdamW on the shard, the parameters
// all-gathered. The compute stays on the legacy default stream, which a non-blocking stream
// does not wait for (nor it for that one), so the two overlap without every launch taking a
// stream; each entry still returns with its work done.
#include "infer.cuh"
#include "kernels.cuh"
#include "matmul.cuh"

#include <nccl.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "base/die.h"
#include "base/xalloc.h"
#include "model/backend.h"
#include "model/gpu-host.h"
#include "model/gpu-math.h"
#include "model/pad.h"
#include "model/plan.h"
}

// the activations, in plan_acts order (checked at setup)
enum act_id {
	A_TOKENS, A_TARGETS, A_ENCODED, A_LN1, A_LN1_MEAN, A_LN1_RSTD, A_QKV, A_ATTN_OUT,
	A_ATTN_LSE, A_RES2, A_LN2, A_LN2_MEAN, A_LN2_RSTD, A_FC, A_GELU, A_RES3, A_LNF,
	A_LNF_MEAN, A_LNF_RSTD, A_LOGITS, A_LOSSES, A_LSE, A_DRES, A_DWIDTH, A_DHIDDEN, A_N
};
static const char *const act_names[A_N] = {
	"tokens", "targets", "encoded", "ln_1", "ln_1.mean", "ln_1.rstd", "qkv", "attn.out",
	"attn.lse", "residual_2", "ln_2", "ln_2.mean", "ln_2.rstd", "mlp.fc", "mlp.gelu",
	"residual_3", "ln_f", "ln_f.mean", "ln_f.rstd", "logits", "losses", "lse", "d.residual",
	"d.width", "d.hidden"
};

struct cuda_state {
	int precision;
	uint64_t sr_seed, step;
	struct gpt2_config pcfg;	// the padded model
	struct gpt2_layout play;	// and its layout
	size_t esz;			// bytes of a parameter, gradient or activation
	void *params, *grads;		// [play.total] of the precision's type
	float *master, *mom, *var;	// fp32 [play.total]; master == params in fp32
	int maxB, maxT, recompute, B, T, have_fwd;
	char *arena;
	uint64_t off[A_N], stride[A_N], copies[A_N];
	char *scratch[PLAN_SC_N];
	struct mm_ctx mm;
	struct gpu_buckets bk;
	int32_t *h_tok, *h_tgt;
	float *h_losses;
	uint16_t *h_u16;
	uint64_t alloc_bytes, peak_bytes, acts_bytes;
	ncclComm_t nccl;	// made by set_dist, or at the first reduction of several ranks

	// set_dist's: the job, and what the last backward pass of a step launches
	const struct gpt2_comm *comm;
	int dist, zero, overlap;
	uint64_t accum, n_bwd;	// backward passes a step, and since zero_grad
	uint64_t bucket_bytes;
	int reducing, reduced;	// the backward pass in flight launches buckets; they were
	int next_bucket;
	struct plan_buckets gb;	// the gradient buckets, in the order backward completes them
	cudaStream_t cs;	// NCCL's
	cudaEvent_t ev;		// recorded on the compute stream, waited for by cs
	// ZeRO-1: this rank's padded shard [lo, lo + n_own) of S, its true elements [tlo, thi);
	// without it the whole layout (lo 0, S and n_own the padded total)
	uint64_t W, rank, S, lo, n_own, tlo, thi;
	void *gshard;		// [S]: the shard's reduced gradients (ZeRO)
};

static int cuda_device = -1;

static struct cuda_state *state(struct gpt2_model *m)
{
	if (!m->dev) {
		struct cuda_state *s = (struct cuda_state *)xcalloc(1, sizeof(*s));
		s->precision = GPT2_FP32;
		m->dev = s;
	}
	return (struct cuda_state *)m->dev;
}

static void *dalloc(struct cuda_state *s, uint64_t bytes)
{
	void *p = NULL;
	if (!bytes)
		return NULL;
	cudaError_t e = cudaMalloc(&p, bytes);
	if (e != cudaSuccess) {
		size_t fr = 0, tot = 0;
		cudaMemGetInfo(&fr, &tot);
		die("out of GPU memory allocating %llu bytes (%llu held, %llu free of %llu): see "
		    "cp-train --plan, and try a smaller --batch or --recompute",
		    (unsigned long long)bytes, (unsigned long long)s->alloc_bytes,
		    (unsigned long long)fr, (unsigned long long)tot);
	}
	cudaCheck(cudaMemset(p, 0, bytes));
	s->alloc_bytes += bytes;
	if (s->alloc_bytes > s->peak_bytes)
		s->peak_bytes = s->alloc_bytes;
	return p;
}

void cuda_use_device(void)
{
	if (cuda_device >= 0)
		cudaCheck(cudaSetDevice(cuda_device));
}

static int cuda_open(int index, char **err)
{
	char name[32];
	if (index < 0)
		snprintf(name, sizeof(name), "cuda");
	else
		snprintf(name, sizeof(name), "cuda:%d", index);
	int n = 0;
	cudaError_t e = cudaGetDeviceCount(&n);
	if (e != cudaSuccess || n == 0)
		return error_to(err, "device '%s': no CUDA device here (%s)", name,
				e != cudaSuccess ? cudaGetErrorString(e) : "the driver sees none");
	if (index >= n)
		return error_to(err, "device '%s': there are only %d CUDA devices", name, n);
	int d = index < 0 ? 0 : index;
	e = cudaSetDevice(d);
	if (e != cudaSuccess)
		return error_to(err, "device '%s': %s", name, cudaGetErrorString(e));
	cuda_device = d;
	return 0;
}

static void cuda_set_precision(struct gpt2_model *m, int precision, uint64_t sr_seed,
			       uint64_t step)
{
	struct cuda_state *s = state(m);
	if (s->params && s->precision != precision)
		die("cuda backend: precision changed after setup");
	s->precision = precision;
	s->sr_seed = sr_seed;
	s->step = step;
}

// activation A of layer L (its one copy when it has one)
static void *act(struct cuda_state *s, int a, int l)
{
	uint64_t k = s->copies[a] > 1 ? (uint64_t)l : 0;
	return s->arena + s->off[a] + k * s->stride[a];
}

static float *actf(struct cuda_state *s, int a, int l)
{
	return (float *)act(s, a, l);
}

// The layouts, and the shard of this rank (the whole layout without ZeRO)
static void shard_init(struct gpt2_model *m, struct cuda_state *s)
{
	s->pcfg = gpt2_config_padded(&m->cfg);
	gpt2_layout(&s->pcfg, &s->play);
	s->esz = s->precision == GPT2_BF16 ? 2 : 4;
	uint64_t N = s->play.total;
	if (!s->zero) {
		s->W = 1;
		s->rank = 0;
		s->S = s->n_own = N;
		s->lo = s->tlo = 0;
		s->thi = m->lay.total;
		return;
	}
	s->S = plan_shard_size(N, s->W);
	s->lo = s->rank * s->S;
	s->n_own = plan_shard_len(N, s->W, s->rank);
	uint64_t *off = (uint64_t *)xcalloc(s->W + 1, sizeof(uint64_t));
	plan_shard_true_offsets(&m->cfg, s->W, off);
	s->tlo = off[s->rank];
	s->thi = off[s->rank + 1];
	free(off);
}

static void alloc_params(struct gpt2_model *m, struct cuda_state *s)
{
	shard_init(m, s);
	// ZeRO: parameters and gradients of W whole shards (what NCCL's collectives take)
	uint64_t whole = s->zero ? s->W * s->S : s->play.total, S = s->S;
	s->params = dalloc(s, whole * s->esz);
	s->master = s->precision == GPT2_BF16 ? (float *)dalloc(s, S * 4) : (float *)s->params + s->lo;
	s->mom = (float *)dalloc(s, S * 4);
	s->var = (float *)dalloc(s, S * 4);
	s->grads = dalloc(s, whole * s->esz);
	if (s->zero)
		s->gshard = dalloc(s, S * s->esz);
	if (s->dist)
		plan_buckets(&m->cfg, s->esz, s->bucket_bytes, &s->gb);
	cublasCheck(cublasLtCreate(&s->mm.lt));
	s->mm.ws_bytes = PLAN_WORKSPACE_BYTES;
	s->mm.ws = dalloc(s, s->mm.ws_bytes);
	s->mm.type = s->precision == GPT2_BF16 ? CUDA_R_16BF : CUDA_R_32F;
	const char *g = getenv("CP_CUDA_GELU_EPILOGUE");
	s->mm.gelu_ok = g && !strcmp(g, "0") ? 0 : -1;
	s->h_u16 = (uint16_t *)xcalloc(CUDA_XFER_CHUNK, sizeof(uint16_t));
}

static void free_acts(struct cuda_state *s)
{
	if (s->arena)
		cudaCheck(cudaFree(s->arena));
	for (int k = 0; k < PLAN_SC_N; k++)
		if (s->scratch[k])
			cudaCheck(cudaFree(s->scratch[k]));
	s->alloc_bytes -= s->acts_bytes;
	s->acts_bytes = 0;
	s->arena = NULL;
	memset(s->scratch, 0, sizeof(s->scratch));
}

static void cuda_setup(struct gpt2_model *m, int B, int T, int recompute)
{
	if (B < 1 || T < 1 || (uint64_t)T > m->cfg.n_ctx || (uint64_t)B * (uint64_t)T >= (1u << 31))
		die("batch %d x %d does not fit the model (n_ctx %u)", B, T, m->cfg.n_ctx);
	if (m->cfg.n_embd / m->cfg.n_head > CPG_MAX_HS)
		die("cuda backend: head size %u is over %d", m->cfg.n_embd / m->cfg.n_head, CPG_MAX_HS);
	struct cuda_state *s = state(m);
	if (!s->params)
		alloc_params(m, s);
	if (s->arena && s->maxB == B && s->maxT == T && s->recompute == recompute)
		return;
	free_acts(s);
	int n;
	const struct plan_act *pa = plan_acts(&n);
	if (n != A_N)
		die("cuda backend: the plan has %d activations, the backend %d", n, (int)A_N);
	for (int i = 0; i < n; i++)
		if (strcmp(pa[i].name, act_names[i]))
			die("cuda backend: activation %d is '%s' in the plan", i, pa[i].name);
	struct plan_opts o;
	o.B = (uint64_t)B;
	o.T = (uint64_t)T;
	o.precision = s->precision;
	o.recompute = recompute;
	uint64_t bytes = plan_arena(&m->cfg, &o, s->off, s->stride);
	for (int i = 0; i < n; i++)
		s->copies[i] = plan_act_copies(&pa[i], &m->cfg, recompute);
	uint64_t before = s->alloc_bytes;
	s->arena = (char *)dalloc(s, bytes);
	for (int k = 0; k < PLAN_SC_N; k++)
		s->scratch[k] = (char *)dalloc(s, plan_scratch_buf_bytes(&m->cfg, (uint64_t)B, (uint64_t)T, k));
	s->acts_bytes = s->alloc_bytes - before;
	free(s->h_tok);
	free(s->h_tgt);
	free(s->h_losses);
	s->h_tok = (int32_t *)xcalloc((size_t)B * T, sizeof(int32_t));
	s->h_tgt = (int32_t *)xcalloc((size_t)B * T, sizeof(int32_t));
	s->h_losses = (float *)xcalloc((size_t)B * T, sizeof(float));
	s->maxB = B;
	s->maxT = T;
	s->recompute = recompute;
	m->maxB = B;
	m->maxT = T;
	m->recompute = recompute;
}

// ---- products: the row-major linear layers of GPT-2 (weights [in, out]) ----

static void linear_fwd(struct cuda_state *s, void *out, const void *inp, const void *w,
		       const void *b, int BT, int IC, int OC, int epi, void *aux)
{
	mm_linear(&s->mm, out, inp, w, b, BT, IC, OC, epi, aux);
}

// dinp = dout w^T (overwritten); dw += inp^T dout; db += column sums of dout
static void linear_bwd(struct cuda_state *s, void *dinp, void *dw, void *db, const void *dout,
		       const void *inp, const void *w, int BT, int IC, int OC)
{
	struct gpu_gemm gd = gpu_gemm_rowmajor(0, 1, BT, IC, OC, OC, OC, IC);
	mm_run(&s->mm, &gd, dout, w, dinp, 0.0f, MM_NONE, NULL, NULL);
	struct gpu_gemm gw = gpu_gemm_rowmajor(1, 0, IC, OC, BT, IC, OC, OC);
	mm_run(&s->mm, &gw, inp, dout, dw, 1.0f, MM_NONE, NULL, NULL);
	float *part = (float *)s->scratch[PLAN_SC_COLSUM];
	if (s->precision == GPT2_BF16)
		k_bias_bwd((cp_bf16 *)db, part, (const cp_bf16 *)dout, BT, OC);
	else
		k_bias_bwd((float *)db, part, (const float *)dout, BT, OC);
}

// ---- the gradients' exchange over NCCL (data parallelism) ----

#define ncclCheck(call) do { ncclResult_t r_ = (call); \
	if (r_ != ncclSuccess) cuda_fail(#call, ncclGetErrorString(r_), __FILE__, __LINE__); } while (0)

// The communicator of C's ranks, bootstrapped through the job's own broadcast (rank 0's unique
// id to every rank), one GPU a rank; every rank calls it at the same point.
static void nccl_start(struct cuda_state *s, const struct gpt2_comm *c)
{
	if (s->nccl)
		return;
	if (!c->bcast_host)
		die("cuda backend: the job has no broadcast to start NCCL with");
	ncclUniqueId id;
	memset(&id, 0, sizeof(id));
	if (c->rank == 0)
		ncclCheck(ncclGetUniqueId(&id));
	c->bcast_host(&id, sizeof(id), 0);
	if (c->watch)
		c->watch("start of NCCL's communicator (ncclCommInitRank)");
	ncclCheck(ncclCommInitRank(&s->nccl, c->size, id, c->rank));
	if (c->watch)
		c->watch(NULL);
}

// Wait for the device (STREAM; NULL: all of it) with NCCL's collective WHAT in flight, under the
// job's watchdog: a rank gone or stuck ends the job naming the collective, not a hang
static void nccl_wait(struct cuda_state *s, cudaStream_t *stream, const char *what)
{
	int w = s->comm && s->comm->watch;
	if (w)
		s->comm->watch(what);
	if (stream)
		cudaCheck(cudaStreamSynchronize(*stream));
	else
		cudaCheck(cudaDeviceSynchronize());
	if (w)
		s->comm->watch(NULL);
}

static ncclDataType_t nccl_type(const struct cuda_state *s)
{
	return s->precision == GPT2_BF16 ? ncclBfloat16 : ncclFloat;
}

// NCCL's stream waits for what the compute stream has launched so far
static void comm_after_compute(struct cuda_state *s)
{
	cudaCheck(cudaEventRecord(s->ev, 0));
	cudaCheck(cudaStreamWaitEvent(s->cs, s->ev, 0));
}

static void *elem(void *p, uint64_t i, size_t esz)
{
	return (char *)p + i * esz;
}

// The sum over the ranks of N slices of the gradients, as one group: in place, or under ZeRO
// each slice's pieces to the ranks that own them (into their gshard)
static void reduce_slices(struct cuda_state *s, const struct plan_slice *sl, int n)
{
	ncclDataType_t t = nccl_type(s);
	ncclCheck(ncclGroupStart());
	for (int i = 0; i < n; i++) {
		void *g = elem(s->grads, sl[i].off, s->esz);
		if (!s->zero) {
			ncclCheck(ncclAllReduce(g, g, sl[i].n, t, ncclSum, s->nccl, s->cs));
			continue;
		}
		for (uint64_t a = sl[i].off, e = a + sl[i].n; a < e;) {
			uint64_t r = a / s->S, b = (r + 1) * s->S < e ? (r + 1) * s->S : e;
			void *to = r == s->rank ? elem(s->gshard, a - s->lo, s->esz) : s->gshard;
			ncclCheck(ncclReduce(elem(s->grads, a, s->esz), to, b - a, t, ncclSum, (int)r,
					     s->nccl, s->cs));
			a = b;
		}
	}
	ncclCheck(ncclGroupEnd());
}

// The backward pass has finished layer LAYER (-1: the embeddings too): launch the reduction of
// each bucket that completes, once the compute stream has written it
static void grads_ready(struct cuda_state *s, int layer)
{
	for (; s->reducing && s->next_bucket < s->gb.n && s->gb.b[s->next_bucket].layer == layer;
	     s->next_bucket++) {
		const struct plan_bucket *b = &s->gb.b[s->next_bucket];
		comm_after_compute(s);
		reduce_slices(s, s->gb.slice + b->first, b->count);
	}
}

// ---- the model's pieces, for either element type ----

template <class E> struct model_ops {
	struct gpt2_model *m;
	struct cuda_state *s;
	int B, T, C, NH, L, V, Vp, BT;

	E *p(int t, int l) const
	{
		return (E *)s->params + gpt2_tensor_offset(&s->pcfg, &s->play, t, l);
	}
	E *g(int t, int l) const
	{
		return (E *)s->grads + gpt2_tensor_offset(&s->pcfg, &s->play, t, l);
	}
	E *a(int id, int l) const { return (E *)act(s, id, l); }
	float scale(int l) const
	{
		float sc = 1.0f / sqrtf((float)(C / NH));
		if (m->cfg.scale_attn_by_inverse_layer_idx)
			sc /= (float)(l + 1);
		return sc;
	}
	E *layer_in(int l) const { return l ? a(A_RES3, l - 1) : a(A_ENCODED, 0); }

	// the LayerNorm that follows layer L's output: the next layer's ln_1, or ln_f
	void next_ln(int l, E *res, const E *x, const E *y) const
	{
		if (l + 1 < L)
			k_residual_ln(res, a(A_LN1, l + 1), actf(s, A_LN1_MEAN, l + 1),
				      actf(s, A_LN1_RSTD, l + 1), x, y, p(GPT2_LN1W, l + 1),
				      p(GPT2_LN1B, l + 1), BT, C);
		else
			k_residual_ln(res, a(A_LNF, 0), actf(s, A_LNF_MEAN, 0), actf(s, A_LNF_RSTD, 0),
				      x, y, p(GPT2_LNFW, 0), p(GPT2_LNFB, 0), BT, C);
	}

	void mlp_fc(int l) const
	{
		linear_fwd(s, a(A_GELU, l), a(A_LN2, l), p(GPT2_FCW, l), p(GPT2_FCB, l), BT, C,
			   4 * C, MM_GELU_BIAS, a(A_FC, l));
	}

	void layer_fwd(int l) const
	{
		E *tmp = a(A_DWIDTH, 0);	// backward scratch, free during the forward pass
		linear_fwd(s, a(A_QKV, l), a(A_LN1, l), p(GPT2_QKVW, l), p(GPT2_QKVB, l), BT, C,
			   3 * C, MM_BIAS, NULL);
		k_attn_fwd(a(A_ATTN_OUT, l), actf(s, A_ATTN_LSE, l), a(A_QKV, l), B, T, C, NH, scale(l));
		linear_fwd(s, tmp, a(A_ATTN_OUT, l), p(GPT2_ATTPROJW, l), p(GPT2_ATTPROJB, l), BT, C,
			   C, MM_BIAS, NULL);
		k_residual_ln(a(A_RES2, l), a(A_LN2, l), actf(s, A_LN2_MEAN, l), actf(s, A_LN2_RSTD, l),
			      layer_in(l), tmp, p(GPT2_LN2W, l), p(GPT2_LN2B, l), BT, C);
		mlp_fc(l);
		linear_fwd(s, tmp, a(A_GELU, l), p(GPT2_FCPROJW, l), p(GPT2_FCPROJB, l), BT, 4 * C,
			   C, MM_BIAS, NULL);
		next_ln(l, a(A_RES3, l), a(A_RES2, l), tmp);
	}

	// --recompute: redo what the forward pass kept only one copy of
	void recompute(int l) const
	{
		k_ln_apply(a(A_LN1, l), layer_in(l), actf(s, A_LN1_MEAN, l), actf(s, A_LN1_RSTD, l),
			   p(GPT2_LN1W, l), p(GPT2_LN1B, l), BT, C);
		k_ln_apply(a(A_LN2, l), a(A_RES2, l), actf(s, A_LN2_MEAN, l), actf(s, A_LN2_RSTD, l),
			   p(GPT2_LN2W, l), p(GPT2_LN2B, l), BT, C);
		mlp_fc(l);
	}

	// d.residual holds d(layer output) on entry and d(layer input) on return
	void layer_bwd(int l) const
	{
		E *dres = a(A_DRES, 0), *dw = a(A_DWIDTH, 0), *dh = a(A_DHIDDEN, 0);
		float *part = (float *)s->scratch[PLAN_SC_COLSUM];
		linear_bwd(s, dh, g(GPT2_FCPROJW, l), g(GPT2_FCPROJB, l), dres, a(A_GELU, l),
			   p(GPT2_FCPROJW, l), BT, 4 * C, C);
		k_gelu_bwd(dh, a(A_FC, l), (uint64_t)BT * 4 * C);
		linear_bwd(s, dw, g(GPT2_FCW, l), g(GPT2_FCB, l), dh, a(A_LN2, l), p(GPT2_FCW, l),
			   BT, C, 4 * C);
		k_ln_bwd(dres, g(GPT2_LN2W, l), g(GPT2_LN2B, l), part, dw, a(A_RES2, l),
			 p(GPT2_LN2W, l), actf(s, A_LN2_MEAN, l), actf(s, A_LN2_RSTD, l), BT, C);
		linear_bwd(s, dw, g(GPT2_ATTPROJW, l), g(GPT2_ATTPROJB, l), dres, a(A_ATTN_OUT, l),
			   p(GPT2_ATTPROJW, l), BT, C, C);
		k_attn_bwd(dh, dw, a(A_QKV, l), a(A_ATTN_OUT, l), actf(s, A_ATTN_LSE, l), B, T, C, NH,
			   scale(l));
		linear_bwd(s, dw, g(GPT2_QKVW, l), g(GPT2_QKVB, l), dh, a(A_LN1, l), p(GPT2_QKVW, l),
			   BT, C, 3 * C);
		k_ln_bwd(dres, g(GPT2_LN1W, l), g(GPT2_LN1B, l), part, dw, layer_in(l),
			 p(GPT2_LN1W, l), actf(s, A_LN1_MEAN, l), actf(s, A_LN1_RSTD, l), BT, C);
	}

	void forward() const
	{
		k_encoder_fwd(a(A_ENCODED, 0), (const int32_t *)act(s, A_TOKENS, 0), p(GPT2_WTE, 0),
			      p(GPT2_WPE, 0), BT, T, C);
		k_residual_ln(a(A_ENCODED, 0), a(A_LN1, 0), actf(s, A_LN1_MEAN, 0),
			      actf(s, A_LN1_RSTD, 0), (const E *)NULL, (const E *)NULL,
			      p(GPT2_LN1W, 0), p(GPT2_LN1B, 0), BT, C);
		for (int l = 0; l < L; l++)
			layer_fwd(l);
		struct gpu_gemm gl = gpu_gemm_rowmajor(0, 1, BT, Vp, C, C, C, Vp);
		mm_run(&s->mm, &gl, a(A_LNF, 0), p(GPT2_WTE, 0), a(A_LOGITS, 0), 0.0f, MM_NONE, NULL, NULL);
		k_classifier_fwd(actf(s, A_LOSSES, 0), actf(s, A_LSE, 0), a(A_LOGITS, 0),
				 (const int32_t *)act(s, A_TARGETS, 0), BT, V, Vp);
	}

	void backward(float rowscale) const
	{
		E *logits = a(A_LOGITS, 0), *dw = a(A_DWIDTH, 0), *dres = a(A_DRES, 0);
		k_classifier_bwd(logits, actf(s, A_LSE, 0), (const int32_t *)act(s, A_TARGETS, 0),
				 rowscale, BT, V, Vp);
		struct gpu_gemm gd = gpu_gemm_rowmajor(0, 0, BT, C, Vp, Vp, C, C);
		mm_run(&s->mm, &gd, logits, p(GPT2_WTE, 0), dw, 0.0f, MM_NONE, NULL, NULL);
		struct gpu_gemm gw = gpu_gemm_rowmajor(1, 0, Vp, C, BT, Vp, C, C);
		mm_run(&s->mm, &gw, logits, a(A_LNF, 0), g(GPT2_WTE, 0), 1.0f, MM_NONE, NULL, NULL);
		cudaCheck(cudaMemset(dres, 0, (size_t)BT * C * sizeof(E)));
		k_ln_bwd(dres, g(GPT2_LNFW, 0), g(GPT2_LNFB, 0), (float *)s->scratch[PLAN_SC_COLSUM],
			 dw, a(A_RES3, L - 1), p(GPT2_LNFW, 0), actf(s, A_LNF_MEAN, 0),
			 actf(s, A_LNF_RSTD, 0), BT, C);
		for (int l = L - 1; l >= 0; l--) {
			if (s->recompute && l != L - 1)
				recompute(l);
			layer_bwd(l);
			grads_ready(s, l);
		}
		k_encoder_bwd(g(GPT2_WTE, 0), g(GPT2_WPE, 0), dres,
			      (const uint32_t *)s->scratch[PLAN_SC_IDS],
			      (const uint32_t *)s->scratch[PLAN_SC_START],
			      (const uint32_t *)s->scratch[PLAN_SC_POS], (int)s->bk.n, B, T, C);
		grads_ready(s, -1);
	}
};

template <class E> static model_ops<E> ops_of(struct gpt2_model *m, struct cuda_state *s)
{
	model_ops<E> o;
	o.m = m;
	o.s = s;
	o.B = s->B;
	o.T = s->T;
	o.C = (int)m->cfg.n_embd;
	o.NH = (int)m->cfg.n_head;
	o.L = (int)m->cfg.n_layer;
	o.V = (int)m->cfg.vocab_size;
	o.Vp = (int)s->pcfg.vocab_size;
	o.BT = s->B * s->T;
	return o;
}

static float cuda_forward(struct gpt2_model *m, const uint32_t *tokens, int B, int T)
{
	struct cuda_state *s = state(m);
	if (!s->arena || B < 1 || T < 1 || B > s->maxB || T > s->maxT)
		die("forward: batch %d x %d exceeds the %d x %d set up", B, T, s->maxB, s->maxT);
	uint64_t BT = (uint64_t)B * T, V = m->cfg.vocab_size;
	for (uint64_t i = 0; i < BT; i++) {
		if (tokens[i] >= V)
			die("token id %u at batch position %llu is outside the vocabulary (%llu)",
			    tokens[i], (unsigned long long)i, (unsigned long long)V);
		s->h_tok[i] = (int32_t)tokens[i];
		s->h_tgt[i] = i % T == (uint64_t)T - 1 ? -1 : (int32_t)tokens[i + 1];
	}
	cudaCheck(cudaMemcpy(act(s, A_TOKENS, 0), s->h_tok, BT * 4, cudaMemcpyHostToDevice));
	cudaCheck(cudaMemcpy(act(s, A_TARGETS, 0), s->h_tgt, BT * 4, cudaMemcpyHostToDevice));
	// the embedding's backward buckets, made while the GPU runs the forward pass
	s->B = B;
	s->T = T;
	m->B = B;
	m->T = T;
	if (s->precision == GPT2_BF16)
		ops_of<cp_bf16>(m, s).forward();
	else
		ops_of<float>(m, s).forward();
	gpu_buckets_build(&s->bk, tokens, BT);
	cudaCheck(cudaMemcpy(s->scratch[PLAN_SC_IDS], s->bk.ids, s->bk.n * 4, cudaMemcpyHostToDevice));
	cudaCheck(cudaMemcpy(s->scratch[PLAN_SC_START], s->bk.start, (s->bk.n + 1) * 4, cudaMemcpyHostToDevice));
	cudaCheck(cudaMemcpy(s->scratch[PLAN_SC_POS], s->bk.pos, BT * 4, cudaMemcpyHostToDevice));
	cudaCheck(cudaMemcpy(s->h_losses, act(s, A_LOSSES, 0), BT * 4, cudaMemcpyDeviceToHost));
	s->have_fwd = 1;
	if (T < 2)
		return 0;
	double sum = 0;	// in row order, in double: the CPU's sum
	for (uint64_t r = 0; r < BT; r++)
		sum += s->h_losses[r];
	return (float)(sum / ((double)B * (T - 1)));
}

static void cuda_backward(struct gpt2_model *m, float scale)
{
	struct cuda_state *s = state(m);
	if (!s->have_fwd)
		die("backward without a forward");
	s->have_fwd = 0;
	float rs = s->T > 1 ? scale / (float)(s->B * (s->T - 1)) : 0.0f;
	// the step's last micro-batch reduces its buckets as the backward pass completes them;
	// one more would add local gradients to summed ones
	if (s->reduced)
		die("cuda backend: a backward pass after the step's last (%llu) without zero_grad",
		    (unsigned long long)s->accum);
	s->reducing = s->dist && s->overlap && ++s->n_bwd == s->accum;
	s->next_bucket = 0;
	if (s->precision == GPT2_BF16)
		ops_of<cp_bf16>(m, s).backward(rs);
	else
		ops_of<float>(m, s).backward(rs);
	if (s->reducing)	// NCCL's stream too
		nccl_wait(s, NULL, "sum of the gradients in buckets during the backward pass (NCCL)");
	else
		cudaCheck(cudaDeviceSynchronize());
	s->reduced = s->reducing;
	s->reducing = 0;
}

static void cuda_zero_grad(struct gpt2_model *m)
{
	struct cuda_state *s = state(m);
	if (s->grads)
		cudaCheck(cudaMemset(s->grads, 0, (s->zero ? s->W * s->S : s->play.total) * s->esz));
	s->n_bwd = 0;
	s->reduced = 0;
}

// ZeRO: the shard's sum of squares (the same kernel over the same elements as without it
// on one rank), then the ranks' sums added, so every rank clips by the same norm
static double cuda_grad_norm(struct gpt2_model *m)
{
	struct cuda_state *s = state(m);
	double *part = (double *)s->scratch[PLAN_SC_NORM], sum = 0;
	const void *g = s->zero ? s->gshard : s->grads;
	if (s->precision == GPT2_BF16)
		k_sumsq(part, part, (const cp_bf16 *)g, s->n_own);
	else
		k_sumsq(part, part, (const float *)g, s->n_own);
	if (s->zero) {
		comm_after_compute(s);
		ncclCheck(ncclAllReduce(part, part, 1, ncclDouble, ncclSum, s->nccl, s->cs));
		nccl_wait(s, &s->cs, "sum of the gradient norm's shards (ncclAllReduce)");
	}
	cudaCheck(cudaMemcpy(&sum, part, sizeof(sum), cudaMemcpyDeviceToHost));
	return sqrt(sum);
}

// Each tensor's part of this rank's shard (the whole tensor without ZeRO, so the launches are
// the same on one rank), the element numbered in the whole layout for the stochastic
// rounding; under ZeRO then every rank's shard of the parameters to every rank
static void cuda_adamw(struct gpt2_model *m, uint64_t t, float lr, float wd, float gscale)
{
	struct cuda_state *s = state(m);
	const void *grads = s->zero ? s->gshard : s->grads;
	uint64_t glo = s->zero ? s->lo : 0, hi = s->lo + s->n_own;
	for (int k = 0; k < GPT2_NT; k++) {
		float decay = gpt2_tensor_decays(k) ? 1 - lr * wd : 1;
		uint64_t a = s->play.off[k], e = a + s->play.size[k];
		a = a > s->lo ? a : s->lo;
		e = e < hi ? e : hi;
		if (a >= e)
			continue;
		uint64_t o = a - s->lo, n = e - a;
		if (s->precision == GPT2_BF16)
			k_adamw((cp_bf16 *)s->params + a, s->master + o, (const cp_bf16 *)grads + (a - glo),
				s->mom + o, s->var + o, n, a, t, lr, decay, gscale, s->sr_seed);
		else
			k_adamw((float *)s->params + a, s->master + o, (const float *)grads + (a - glo),
				s->mom + o, s->var + o, n, a, t, lr, decay, gscale, s->sr_seed);
	}
	if (s->zero) {
		comm_after_compute(s);
		ncclCheck(ncclAllGather(elem(s->params, s->lo, s->esz), s->params, s->S, nccl_type(s),
					s->nccl, s->cs));
		nccl_wait(s, NULL, "all-gather of the parameters' shards (ncclAllGather)");
	}
	cudaCheck(cudaDeviceSynchronize());
	s->step = t;
}

// ---- transfers: tensor by tensor between the true and the padded layout, in chunks ----

void cuda_xfer(float *h, void *d, uint64_t n, size_t esz, int to_dev, uint16_t *tmp)
{
	for (uint64_t i = 0; i < n; i += CUDA_XFER_CHUNK) {
		uint64_t k = n - i < CUDA_XFER_CHUNK ? n - i : CUDA_XFER_CHUNK;
		if (esz == 4) {
			float *dd = (float *)d + i;
			if (to_dev)
				cudaCheck(cudaMemcpy(dd, h + i, k * 4, cudaMemcpyHostToDevice));
			else
				cudaCheck(cudaMemcpy(h + i, dd, k * 4, cudaMemcpyDeviceToHost));
			continue;
		}
		uint16_t *dd = (uint16_t *)d + i;
		if (to_dev) {
			for (uint64_t j = 0; j < k; j++)
				tmp[j] = cp_f32_to_bf16(h[i + j]);
			cudaCheck(cudaMemcpy(dd, tmp, k * 2, cudaMemcpyHostToDevice));
		} else {
			cudaCheck(cudaMemcpy(tmp, dd, k * 2, cudaMemcpyDeviceToHost));
			for (uint64_t j = 0; j < k; j++)
				h[i + j] = cp_bf16_to_f32(tmp[j]);
		}
	}
}

// The padded elements [LO, LO + N) of device buffer D (D holding them alone) and the host
// buffer H of the true layout (H holding true elements from HBASE on), tensor by tensor: the
// pad rows are not moved (on the device they stay as they are, zero)
static void xfer_range(struct gpt2_model *m, struct cuda_state *s, float *h, uint64_t hbase,
		       void *d, uint64_t lo, uint64_t n, size_t esz, int to_dev)
{
	for (int k = 0; k < GPT2_NT; k++) {
		uint64_t pa = s->play.off[k], a = pa > lo ? pa : lo;
		uint64_t e = pa + m->lay.size[k] < lo + n ? pa + m->lay.size[k] : lo + n;
		if (a < e)
			cuda_xfer(h + (m->lay.off[k] + (a - pa) - hbase), elem(d, a - lo, esz), e - a,
				  esz, to_dev, s->h_u16);
	}
}

// every tensor of a parameter-sized host buffer H (true layout) and device buffer D (padded)
static void xfer_all(struct gpt2_model *m, struct cuda_state *s, float *h, void *d, size_t esz,
		     int to_dev)
{
	xfer_range(m, s, h, 0, d, 0, s->play.total, esz, to_dev);
}

// The host model's master weights (true layout, whole) into the device's: under ZeRO in bf16
// the master buffer holds this rank's shard alone, so every other rank's shard goes through
// it first to be rounded into its part of the bf16 copy, the element numbered in the whole
// layout, which makes the copy the one a single GPU rounds; this rank's comes last and stays
static void load_master(struct gpt2_model *m, struct cuda_state *s)
{
	if (s->precision != GPT2_BF16) {
		xfer_all(m, s, m->params, s->params, 4, 1);
		return;
	}
	for (uint64_t q = 1; q <= s->W; q++) {
		uint64_t r = (s->rank + q) % s->W, n = plan_shard_len(s->play.total, s->W, r);
		cudaCheck(cudaMemset(s->master, 0, s->S * 4));
		xfer_range(m, s, m->params, 0, s->master, r * s->S, n, 4, 1);
		k_round_params((cp_bf16 *)s->params + r * s->S, s->master, n, r * s->S, s->sr_seed,
			       s->step);
		cudaCheck(cudaDeviceSynchronize());
	}
}

// where the host's moments start in the true layout: 0 whole, else the shard they hold, which
// must be this rank's
static uint64_t host_moments_base(struct gpt2_model *m, struct cuda_state *s)
{
	if (!m->opt_hi)
		return 0;
	if (m->opt_lo != s->tlo || m->opt_hi != s->thi)
		die("cuda backend: the host moments hold %llu..%llu, this rank's shard is %llu..%llu",
		    (unsigned long long)m->opt_lo, (unsigned long long)m->opt_hi,
		    (unsigned long long)s->tlo, (unsigned long long)s->thi);
	return s->tlo;
}

static void cuda_from_host(struct gpt2_model *m)
{
	struct cuda_state *s = state(m);
	if (!s->params)
		die("cuda backend: from_host before setup");
	load_master(m, s);
	if (m->mom) {
		uint64_t base = host_moments_base(m, s);
		cudaCheck(cudaMemset(s->mom, 0, s->S * 4));
		cudaCheck(cudaMemset(s->var, 0, s->S * 4));
		xfer_range(m, s, m->mom, base, s->mom, s->lo, s->n_own, 4, 1);
		xfer_range(m, s, m->var, base, s->var, s->lo, s->n_own, 4, 1);
	} else {
		cudaCheck(cudaMemset(s->mom, 0, s->S * 4));
		cudaCheck(cudaMemset(s->var, 0, s->S * 4));
	}
	cudaCheck(cudaDeviceSynchronize());
}

// The master weights, and the moments once a step was taken, into the host model (under ZeRO
// this rank's shard of them: the master weights at their places in m->params, the moments in
// shard-sized buffers); and the gradients where the host model has room for them (the GPU
// tests compare them), this rank's own before the exchange under ZeRO.
static void cuda_to_host(struct gpt2_model *m)
{
	struct cuda_state *s = state(m);
	if (!s->params)
		return;
	cudaCheck(cudaDeviceSynchronize());
	xfer_range(m, s, m->params, 0, s->master, s->lo, s->n_own, 4, 0);
	if (s->step > 0 && !m->mom) {
		m->mom = (float *)xcalloc(s->thi - s->tlo + 1, sizeof(float));
		m->var = (float *)xcalloc(s->thi - s->tlo + 1, sizeof(float));
		if (s->zero) {
			m->opt_lo = s->tlo;
			m->opt_hi = s->thi;
		}
	}
	if (m->mom) {
		uint64_t base = host_moments_base(m, s);
		xfer_range(m, s, m->mom, base, s->mom, s->lo, s->n_own, 4, 0);
		xfer_range(m, s, m->var, base, s->var, s->lo, s->n_own, 4, 0);
	}
	if (m->grads)
		xfer_all(m, s, m->grads, s->grads, s->esz, 0);
}

// Without set_dist (one call a step, of several ranks), or set_dist's exchange when the
// backward pass has not done it in buckets (overlap off, or fewer backward passes than accum)
static void cuda_allreduce_grads(struct gpt2_model *m, const struct gpt2_comm *c)
{
	struct cuda_state *s = state(m);
	if (!s->dist && c->size < 2)
		return;
	if (!s->dist) {
		nccl_start(s, c);
		ncclCheck(ncclAllReduce(s->grads, s->grads, s->play.total, nccl_type(s), ncclSum,
					s->nccl, 0));
		cudaCheck(cudaStreamSynchronize(0));
		return;
	}
	if (!s->reduced) {
		comm_after_compute(s);
		if (s->zero)
			ncclCheck(ncclReduceScatter(s->grads, s->gshard, s->S, nccl_type(s), ncclSum,
						    s->nccl, s->cs));
		else
			ncclCheck(ncclAllReduce(s->grads, s->grads, s->play.total, nccl_type(s),
						ncclSum, s->nccl, s->cs));
		nccl_wait(s, &s->cs, s->zero ? "reduce-scatter of the gradients (ncclReduceScatter)"
				     : "sum of the gradients (ncclAllReduce)");
	}
	s->reduced = 0;
}

static void cuda_set_dist(struct gpt2_model *m, const struct gpt2_comm *c,
			  const struct gpt2_dist *d)
{
	struct cuda_state *s = state(m);
	if (s->params || s->dist)
		die("cuda backend: set_dist after setup, or twice");
	s->comm = c;
	s->dist = 1;
	s->zero = d->zero;
	s->W = (uint64_t)c->size;
	s->rank = (uint64_t)c->rank;
	s->accum = d->accum ? d->accum : 1;
	s->bucket_bytes = d->bucket_bytes;
	const char *e = getenv("CP_CUDA_OVERLAP");
	s->overlap = d->overlap >= 0 ? d->overlap : !(e && !strcmp(e, "0"));
	cudaCheck(cudaStreamCreateWithFlags(&s->cs, cudaStreamNonBlocking));
	cudaCheck(cudaEventCreateWithFlags(&s->ev, cudaEventDisableTiming));
	nccl_start(s, c);
}

static int cuda_info(const struct gpt2_model *m, struct gpt2_device_info *i)
{
	cudaDeviceProp p;
	if (cuda_device < 0 || cudaGetDeviceProperties(&p, cuda_device) != cudaSuccess)
		return -1;
	memset(i, 0, sizeof(*i));
	snprintf(i->name, sizeof(i->name), "%s", p.name);
	i->mem_total = p.totalGlobalMem;
	const struct cuda_state *s = (const struct cuda_state *)m->dev;
	if (s) {
		i->mem_used = s->alloc_bytes;
		i->mem_peak = s->peak_bytes;
	}
	// generation's weights and states (infer.cu), held apart from training's
	i->mem_used += cuda_kv_bytes(m);
	if (i->mem_peak < i->mem_used)
		i->mem_peak = i->mem_used;
	return 0;
}

static void cuda_release(struct gpt2_model *m)
{
	struct cuda_state *s = (struct cuda_state *)m->dev;
	if (!s)
		return;
	free_acts(s);
	void *bufs[] = { s->params, s->grads, s->mom, s->var, s->mm.ws, s->gshard,
			 s->precision == GPT2_BF16 ? s->master : NULL };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		if (bufs[i])
			cudaCheck(cudaFree(bufs[i]));
	if (s->mm.lt)
		cublasCheck(cublasLtDestroy(s->mm.lt));
	if (s->nccl)
		ncclCheck(ncclCommDestroy(s->nccl));
	if (s->cs)
		cudaCheck(cudaStreamDestroy(s->cs));
	if (s->ev)
		cudaCheck(cudaEventDestroy(s->ev));
	plan_buckets_free(&s->gb);
	gpu_buckets_free(&s->bk);
	free(s->h_tok);
	free(s->h_tgt);
	free(s->h_losses);
	free(s->h_u16);
	free(s);
	m->dev = NULL;
}

// C++20's designated initializers must follow the declaration order: a field out of place
// (two of the same type swapped) does not compile
extern "C" const struct gpt2_backend gpt2_cuda_backend = {
	.name = "cuda",
	.tolerance = 1e-3,
	.host_memory = 0,
	.open = cuda_open,
	.set_precision = cuda_set_precision,
	.setup = cuda_setup,
	.forward = cuda_forward,
	.backward = cuda_backward,
	.zero_grad = cuda_zero_grad,
	.allreduce_grads = cuda_allreduce_grads,
	.grad_norm = cuda_grad_norm,
	.adamw = cuda_adamw,
	.adamw_range = NULL,	// ZeRO on the device is set_dist's
	.to_host = cuda_to_host,
	.from_host = cuda_from_host,
	.set_dist = cuda_set_dist,
	.release = cuda_release,
	.info = cuda_info,
	.kv_new = cuda_kv_new,
	.kv_free = cuda_kv_free,
	.kv_reset = cuda_kv_reset,
	.kv_len = cuda_kv_len,
	.kv_copy_row = cuda_kv_copy_row,
	.kv_forward = cuda_kv_forward,
};
