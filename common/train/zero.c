/* zero.c: ZeRO stage 1 over MPI on host memory (see zero.h). */
#include "train/zero.h"
#include "base/die.h"
#include "base/xalloc.h"
#include "model/plan.h"
#include "train/mpi.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void zero_shards(uint64_t n, int size, uint64_t *off)
{
	for (int r = 0; r <= size; r++)
		off[r] = (uint64_t)((unsigned __int128)n * (unsigned)r / (unsigned)size);
}

/* the shard [lo, hi) of moments held whole */
static float *shard_of(float *whole, uint64_t lo, uint64_t hi)
{
	float *s = xmalloc((hi - lo) * sizeof(float) + 1);
	memcpy(s, whole + lo, (hi - lo) * sizeof(float));
	free(whole);
	return s;
}

void zero_init(struct zero *z, const struct gpt2_backend *be, struct gpt2_model *m,
	       const struct gpt2_comm *c)
{
	uint64_t n = m->lay.total;
	if (!be->adamw_range && !be->set_dist)
		die_usage("--zero 1: the %s backend cannot shard AdamW", be->name);
	z->dev = be->adamw_range ? NULL : be;
	z->comm = c;
	z->off = xcalloc((size_t)c->size + 1, sizeof(uint64_t));
	if (z->dev)
		plan_shard_true_offsets(&m->cfg, (uint64_t)c->size, z->off);
	else
		zero_shards(n, c->size, z->off);
	z->lo = z->off[c->rank];
	z->hi = z->off[c->rank + 1];
	z->buf = z->dev ? NULL : xmalloc((z->hi - z->lo) * sizeof(float) + 1);
	if (m->mom && !m->opt_hi) {
		m->mom = shard_of(m->mom, z->lo, z->hi);
		m->var = shard_of(m->var, z->lo, z->hi);
		m->opt_lo = z->lo;
		m->opt_hi = z->hi;
	}
}

void zero_free(struct zero *z)
{
	free(z->off);
	free(z->buf);
	memset(z, 0, sizeof(*z));
}

double zero_reduce_grads(struct zero *z, struct gpt2_model *m)
{
	if (z->dev) {
		z->dev->allreduce_grads(m, z->comm);
		return z->dev->grad_norm(m);
	}
	comm_reduce_scatter(m->grads, z->buf, z->off);
	memcpy(m->grads + z->lo, z->buf, (z->hi - z->lo) * sizeof(float));
	/* the norm from the shards' sums of squares, each in a fixed order */
	double s = 0;
	for (uint64_t i = 0; i < z->hi - z->lo; i++)
		s += (double)z->buf[i] * z->buf[i];
	comm_allreduce(&s, 1, 1);
	return sqrt(s);
}

void zero_adamw(struct zero *z, const struct gpt2_backend *be, struct gpt2_model *m, uint64_t t,
		float lr, float wd, float gscale)
{
	if (z->dev) {	/* the shard's step and the all-gather, on the device */
		be->adamw(m, t, lr, wd, gscale);
		return;
	}
	be->adamw_range(m, t, lr, wd, gscale, z->lo, z->hi);
	comm_allgather(m->params, z->off);
}

void zero_gather_moments(struct zero *z, struct gpt2_model *m, const struct gpt2_comm *c,
			 float **mom, float **var)
{
	uint64_t n = m->lay.total;
	*mom = *var = NULL;
	if (z->dev) {
		/* each rank's shard of the master weights and moments into host memory; then the
		 * master weights whole on rank 0 (its own shard is in place already) */
		z->dev->to_host(m);
		comm_gather(m->params + z->lo, m->params, z->off);
	}
	float *a = c->rank == 0 ? xmalloc(n * sizeof(float) + 1) : NULL;
	float *b = c->rank == 0 ? xmalloc(n * sizeof(float) + 1) : NULL;
	comm_gather(m->mom, a, z->off);
	comm_gather(m->var, b, z->off);
	*mom = a;
	*var = b;
}
