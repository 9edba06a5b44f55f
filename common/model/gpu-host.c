/* gpu-host.c: the CUDA backend's host-side planning of products and token buckets (see
 * gpu-host.h). */
#include "model/gpu-host.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>

struct gpu_gemm gpu_gemm_rowmajor(int tx, int tz, uint64_t M, uint64_t N, uint64_t K,
				  uint64_t ldx, uint64_t ldz, uint64_t ldy)
{
	struct gpu_gemm g;
	g.ta = tz;
	g.tb = tx;
	g.a = GPU_Z;
	g.b = GPU_X;
	g.m = N;
	g.n = M;
	g.k = K;
	g.lda = ldz;
	g.ldb = ldx;
	g.ldc = ldy;
	return g;
}

static int key_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void gpu_buckets_build(struct gpu_buckets *b, const uint32_t *tok, uint64_t n)
{
	if (n > b->cap) {
		free(b->ids);
		free(b->start);
		free(b->pos);
		free(b->scratch);
		b->ids = xcalloc(n, sizeof(uint32_t));
		b->start = xcalloc(n + 1, sizeof(uint32_t));
		b->pos = xcalloc(n, sizeof(uint32_t));
		b->scratch = xcalloc(n, sizeof(uint64_t));
		b->cap = n;
	}
	/* (token, position) as one key: sorting it orders by token, then by position */
	for (uint64_t i = 0; i < n; i++)
		b->scratch[i] = (uint64_t)tok[i] << 32 | i;
	if (n) /* no tokens may leave SCRATCH NULL */
		qsort(b->scratch, n, sizeof(uint64_t), key_cmp);
	b->n = 0;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t t = (uint32_t)(b->scratch[i] >> 32);
		if (!b->n || b->ids[b->n - 1] != t) {
			b->ids[b->n] = t;
			b->start[b->n++] = (uint32_t)i;
		}
		b->pos[i] = (uint32_t)b->scratch[i];
	}
	if (b->cap)
		b->start[b->n] = (uint32_t)n;
}

void gpu_buckets_free(struct gpu_buckets *b)
{
	free(b->ids);
	free(b->start);
	free(b->pos);
	free(b->scratch);
	memset(b, 0, sizeof(*b));
}
