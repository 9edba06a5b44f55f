/* gpu-host.h: the host side of the CUDA backend's launches, kept in C so that it is tested
 * without a GPU: how a row-major product maps onto cuBLASLt's column-major one, and the
 * token buckets that make the embedding's backward pass deterministic.
 *
 * Parameters and activations are row-major (Hugging Face's Conv1D weights are [in, out]);
 * cuBLASLt is column-major. A row-major [r, c] matrix is the column-major [c, r] one with the
 * same bytes, so Y = op(X) op(Z) in row-major is Y^T = op(Z)^T op(X)^T in column-major: the
 * operands swap places and keep their transposes. */
#ifndef CP_MODEL_GPU_HOST_H
#define CP_MODEL_GPU_HOST_H

#include <stdint.h>

/* One column-major product C[m, n] = op(A)[m, k] op(B)[k, n] (+ beta C), as cuBLASLt takes it;
 * A and B say which of the row-major operands (GPU_X, GPU_Z) each is. */
enum { GPU_X, GPU_Z };
struct gpu_gemm {
	int ta, tb;		/* transpose A, B */
	int a, b;		/* GPU_X or GPU_Z */
	uint64_t m, n, k;
	uint64_t lda, ldb, ldc;
};

/* The column-major form of the row-major Y[M, N] = op(X)[M, K] op(Z)[K, N], where op
 * transposes X when TX and Z when TZ, and LDX, LDZ, LDY are the row-major leading dimensions
 * (elements between rows). */
struct gpu_gemm gpu_gemm_rowmajor(int tx, int tz, uint64_t M, uint64_t N, uint64_t K,
				  uint64_t ldx, uint64_t ldz, uint64_t ldy);

/* Positions grouped by token for the embedding's backward pass: each distinct token gets one
 * GPU block that sums its positions' gradients in increasing position order, so no two
 * threads add to one row of dwte and the sums have the order of the CPU's. */
struct gpu_buckets {
	uint32_t n;		/* distinct tokens */
	uint32_t *ids;		/* [n] the tokens, increasing */
	uint32_t *start;	/* [n + 1] where each token's positions begin in pos */
	uint32_t *pos;		/* [N] positions, grouped by token, increasing within a group */
	uint64_t cap;		/* positions the arrays hold */
	uint64_t *scratch;	/* [cap] sort keys */
};

/* Fill B from the N tokens TOK (arrays grown as needed). */
void gpu_buckets_build(struct gpu_buckets *b, const uint32_t *tok, uint64_t n);
void gpu_buckets_free(struct gpu_buckets *b);

#endif
