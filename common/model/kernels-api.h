/* kernels-api.h: the CPU kernels for one element type; included by model/kernels.h once with
 * GPT2_REAL float (gpt2_k_*) and once with double (gpt2d_k_*). No include guard on purpose.
 * The definitions are in model/kernels-impl.h. */

/* N uninitialised elements, 64-byte aligned; dies when memory runs out */
GPT2_REAL *GPT2_NAME(k_alloc)(uint64_t n);
void GPT2_NAME(k_zero)(GPT2_REAL *p, uint64_t n);

/* C[M,N] = op(A) op(B) + beta C, row-major, in tiles fixed by the shape. FEW: a single row
 * (M 1, A not transposed) is one matrix-vector product per tile instead, which reads the
 * weights once (decoding); its last bits differ from the tiled product's. */
void GPT2_NAME(k_mm)(int ta, int tb, size_t M, size_t N, size_t K, const GPT2_REAL *A,
		     size_t lda, const GPT2_REAL *B, size_t ldb, GPT2_REAL beta, GPT2_REAL *C,
		     size_t ldc, int few);

/* out[i] = wte[tok[i]] + wpe[pos[i]] for N tokens; POS NULL: position i % T */
void GPT2_NAME(k_embed)(GPT2_REAL *out, const uint32_t *tok, const int *pos, size_t T,
			const GPT2_REAL *wte, const GPT2_REAL *wpe, size_t n, size_t C);

/* LayerNorm of N rows of C; MEAN and RSTD ([N], what backward needs) may be NULL */
void GPT2_NAME(k_layernorm)(GPT2_REAL *out, GPT2_REAL *mean, GPT2_REAL *rstd,
			    const GPT2_REAL *inp, const GPT2_REAL *w, const GPT2_REAL *b, size_t n,
			    size_t C);

/* Rows up to this many may take the few-rows product of k_linear. */
#define GPT2_FEW_ROWS 32
/* input rows per block of the few-rows product */
#define GPT2_KBLOCK 64
/* out[M,OC] = inp[M,IC] @ w[IC,OC] + b, or out += that with ACC (the residual). PART NULL:
 * output tiles (k_mm). Else, for M <= GPT2_FEW_ROWS, the few-rows product: W cut into blocks
 * of GPT2_KBLOCK input rows, one product per block into PART (M * ceil(IC / GPT2_KBLOCK) * OC
 * elements), the partial sums added in block order; each thread streams whole blocks of the
 * weights, which is what makes decoding fast. Both give the same bytes for any thread count,
 * but not the same bytes as each other. */
void GPT2_NAME(k_linear)(GPT2_REAL *out, const GPT2_REAL *inp, const GPT2_REAL *w,
			 const GPT2_REAL *b, size_t M, size_t IC, size_t OC, int acc,
			 GPT2_REAL *part);

/* out = inp @ w + b as k_linear without PART, and GOUT = gelu(out) (the MLP's first
 * product), each tile's GELU taken while the tile is in cache; the bytes of k_linear then
 * k_gelu */
void GPT2_NAME(k_linear_gelu)(GPT2_REAL *out, GPT2_REAL *gout, const GPT2_REAL *inp,
			      const GPT2_REAL *w, const GPT2_REAL *b, size_t M, size_t IC,
			      size_t OC);

/* GPT-2's tanh GELU of N elements; OUT may be INP */
void GPT2_NAME(k_gelu)(GPT2_REAL *out, const GPT2_REAL *inp, size_t n);

/* Causal attention of one query Q over N keys and values (K, V: rows STRIDE apart, HS each):
 * the softmax probabilities into A[N], their mix of the values into OUT[HS]. */
void GPT2_NAME(k_attn_row)(GPT2_REAL *out, GPT2_REAL *a, const GPT2_REAL *q, const GPT2_REAL *k,
			   const GPT2_REAL *v, size_t stride, size_t n, size_t hs, GPT2_REAL scale);

/* The attention of B sequences of T positions whose queries, keys and values are QKV
 * ([B,T,3C]): OUT [B,T,C], and the probabilities ATT [B,NH,T,T] (zero above the diagonal). */
void GPT2_NAME(k_attn_fwd)(GPT2_REAL *out, GPT2_REAL *att, const GPT2_REAL *qkv, size_t B,
			   size_t T, size_t C, size_t NH, GPT2_REAL scale);

/* log sum exp of X[V] (the softmax's normaliser; cross-entropy is it minus the target's logit) */
GPT2_REAL GPT2_NAME(k_logsumexp)(const GPT2_REAL *x, size_t V);
