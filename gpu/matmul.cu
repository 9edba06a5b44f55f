// matmul.cu: cuBLASLt products (see matmul.cuh). Descriptors are made per call (a few
// microseconds); the heuristic's choice of algorithm is kept per shape (struct mm_algo), the
// one it would give again. Split-K reductions are refused (the preference mask), so a
// product repeats bit for bit.
#include "matmul.cuh"
#include "kernels.cuh"

#include <cstdio>
#include <cstdlib>

void cuda_fail(const char *what, const char *msg, const char *file, int line)
{
	fprintf(stderr, "cp: fatal: %s failed: %s (%s:%d)\n", what, msg, file, line);
	exit(1);
}

const char *cublasLt_status_name(cublasStatus_t s)
{
	switch (s) {
	case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
	case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
	case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
	case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
	case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
	case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
	case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
	default: return "cublas error";
	}
}

static void set_attr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *v,
		     size_t n)
{
	cublasCheck(cublasLtMatmulDescSetAttribute(d, a, v, n));
}

static int gemm_same(const struct gpu_gemm *a, const struct gpu_gemm *b)
{
	return a->ta == b->ta && a->tb == b->tb && a->a == b->a && a->b == b->b && a->m == b->m &&
	       a->n == b->n && a->k == b->k && a->lda == b->lda && a->ldb == b->ldb &&
	       a->ldc == b->ldc;
}

// the algorithm kept for this product, or NULL
static const cublasLtMatmulAlgo_t *algo_find(const struct mm_ctx *c, const struct gpu_gemm *g,
					     int epi)
{
	for (int i = 0; i < c->n_algos; i++) {
		const struct mm_algo *a = &c->algos[i];
		if (a->epi == epi && a->out_f32 == c->out_f32 && gemm_same(&a->g, g))
			return &a->algo;
	}
	return NULL;
}

static void algo_keep(struct mm_ctx *c, const struct gpu_gemm *g, int epi,
		      const cublasLtMatmulAlgo_t *algo)
{
	// when full, the oldest goes: a batch whose rows finish one by one moves on to new shapes
	struct mm_algo *a;
	if (c->n_algos < MM_ALGOS) {
		a = &c->algos[c->n_algos++];
	} else {
		a = &c->algos[c->algo_next];
		c->algo_next = (c->algo_next + 1) % MM_ALGOS;
	}
	a->g = *g;
	a->epi = epi;
	a->out_f32 = c->out_f32;
	a->algo = *algo;
}

// cuBLASLt's first choice within the workspace, split-K reductions refused: 0 and *H, or -1
static int algo_ask(struct mm_ctx *c, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t la,
		    cublasLtMatrixLayout_t lb, cublasLtMatrixLayout_t lc,
		    cublasLtMatmulHeuristicResult_t *h)
{
	cublasLtMatmulPreference_t pref;
	cublasCheck(cublasLtMatmulPreferenceCreate(&pref));
	uint64_t ws = c->ws_bytes;
	cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
	uint32_t mask = CUBLASLT_REDUCTION_SCHEME_NONE;
	cublasCheck(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask, sizeof(mask)));
	int found = 0;
	cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(c->lt, desc, la, lb, lc, lc, pref, 1, h, &found);
	cublasCheck(cublasLtMatmulPreferenceDestroy(pref));
	return hs == CUBLAS_STATUS_SUCCESS && found > 0 ? 0 : -1;
}

int mm_run(struct mm_ctx *c, const struct gpu_gemm *g, const void *X, const void *Z, void *Y,
	   float beta, int epi, const void *bias, void *aux)
{
	if (epi == MM_GELU_BIAS && c->gelu_ok == 0)
		return -1;
	cublasLtMatmulDesc_t desc;
	cublasCheck(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
	cublasOperation_t ta = g->ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb = g->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
	set_attr(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta));
	set_attr(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb));
	cublasLtEpilogue_t e = epi == MM_BIAS ? CUBLASLT_EPILOGUE_BIAS :
			       epi == MM_GELU_BIAS ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS :
			       CUBLASLT_EPILOGUE_DEFAULT;
	set_attr(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof(e));
	if (epi != MM_NONE) {
		set_attr(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias));
		set_attr(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &c->type, sizeof(c->type));
	}
	if (epi == MM_GELU_BIAS) {
		int64_t ld = (int64_t)g->ldc;
		set_attr(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &aux, sizeof(aux));
		set_attr(desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof(ld));
	}
	// operands as stored: op(A) is m x k, so A is k x m when transposed
	const void *A = g->a == GPU_X ? X : Z, *B = g->b == GPU_X ? X : Z;
	cublasLtMatrixLayout_t la, lb, lc;
	cublasCheck(cublasLtMatrixLayoutCreate(&la, c->type, g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda));
	cublasCheck(cublasLtMatrixLayoutCreate(&lb, c->type, g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb));
	cublasCheck(cublasLtMatrixLayoutCreate(&lc, c->out_f32 ? CUDA_R_32F : c->type, g->m, g->n, g->ldc));
	const cublasLtMatmulAlgo_t *algo = algo_find(c, g, epi);
	cublasLtMatmulHeuristicResult_t heur;
	if (!algo && algo_ask(c, desc, la, lb, lc, &heur) == 0) {
		algo = &heur.algo;
		algo_keep(c, g, epi, algo);
	}
	int rc = 0;
	if (!algo) {
		if (epi != MM_GELU_BIAS)
			cuda_fail("cublasLtMatmulAlgoGetHeuristic", "no algorithm for this product", __FILE__, __LINE__);
		c->gelu_ok = 0;
		rc = -1;
	} else {
		if (epi == MM_GELU_BIAS)
			c->gelu_ok = 1;
		float alpha = 1.0f;
		cublasCheck(cublasLtMatmul(c->lt, desc, &alpha, A, la, B, lb, &beta, Y, lc, Y, lc,
					   algo, c->ws, c->ws_bytes, 0));
	}
	cublasCheck(cublasLtMatrixLayoutDestroy(la));
	cublasCheck(cublasLtMatrixLayoutDestroy(lb));
	cublasCheck(cublasLtMatrixLayoutDestroy(lc));
	cublasCheck(cublasLtMatmulDescDestroy(desc));
	return rc;
}

void mm_linear(struct mm_ctx *c, void *out, const void *inp, const void *w, const void *b,
	       int BT, int IC, int OC, int epi, void *aux)
{
	struct gpu_gemm g = gpu_gemm_rowmajor(0, 0, BT, OC, IC, IC, OC, OC);
	if (mm_run(c, &g, inp, w, out, 0.0f, epi, b, aux) == 0)
		return;
	// no GELU epilogue here: the bias alone into AUX, then the GELU kernel
	mm_run(c, &g, inp, w, aux, 0.0f, MM_BIAS, b, NULL);
	uint64_t n = (uint64_t)BT * OC;
	if (c->type == CUDA_R_16BF)
		k_gelu_fwd((cp_bf16 *)out, (const cp_bf16 *)aux, n);
	else
		k_gelu_fwd((float *)out, (const float *)aux, n);
}
