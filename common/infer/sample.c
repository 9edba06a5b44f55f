/* sample.c: token choice from logits (see sample.h). */
#include "infer/sample.h"

#include <math.h>
#include <stdlib.h>

#include "base/xalloc.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void sample_seed(struct sample_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sample_next(struct sample_rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double sample_uniform(struct sample_rng *r)
{
	return (double)(sample_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

struct cand {
	double v;	/* scaled logit, then probability */
	uint32_t id;
};

struct sampler {
	uint32_t V;
	struct cand *c;
};

struct sampler *sampler_new(uint32_t V)
{
	struct sampler *s = xmalloc(sizeof(*s));
	s->V = V;
	s->c = xreallocarray(NULL, V ? V : 1, sizeof(struct cand));
	return s;
}

void sampler_free(struct sampler *s)
{
	if (s) {
		free(s->c);
		free(s);
	}
}

uint32_t sample_argmax(const float *logits, uint32_t V)
{
	uint32_t best = 0;
	for (uint32_t i = 1; i < V; i++)
		if (logits[i] > logits[best])
			best = i;
	return best;
}

/* larger value first, then the lower id: a total order, so the result never depends on qsort */
static int cand_cmp(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->v != y->v)
		return x->v > y->v ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* min-heap on cand_cmp's order: the root is the worst of the kept */
static int worse(const struct cand *a, const struct cand *b)
{
	return cand_cmp(a, b) > 0;
}

static void sift_down(struct cand *h, uint32_t n, uint32_t i)
{
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, w = i;
		if (l < n && worse(&h[l], &h[w]))
			w = l;
		if (r < n && worse(&h[r], &h[w]))
			w = r;
		if (w == i)
			return;
		struct cand t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

/* keep the K best of c[0..n) in c[0..K), sorted best first */
static uint32_t keep_top_k(struct cand *c, uint32_t n, uint32_t k)
{
	if (k >= n) {
		qsort(c, n, sizeof(*c), cand_cmp);
		return n;
	}
	for (uint32_t i = k / 2; i-- > 0;)
		sift_down(c, k, i);
	for (uint32_t i = k; i < n; i++)
		if (worse(&c[0], &c[i])) {
			c[0] = c[i];
			sift_down(c, k, 0);
		}
	qsort(c, k, sizeof(*c), cand_cmp);
	return k;
}

uint32_t sample_token(struct sampler *s, const float *logits, const struct sample_opts *o,
		      struct sample_rng *r)
{
	uint32_t V = s->V;
	if (o->temperature <= 0)
		return sample_argmax(logits, V);
	struct cand *c = s->c;
	uint32_t n = 0;
	double mx = -INFINITY;
	for (uint32_t i = 0; i < V; i++) {
		if (logits[i] == -INFINITY)
			continue;
		c[n].v = (double)logits[i] / o->temperature;
		c[n].id = i;
		if (c[n].v > mx)
			mx = c[n].v;
		n++;
	}
	if (n == 0)
		return sample_argmax(logits, V);
	int sorted = 0;
	if (o->top_k > 0 && o->top_k < n) {
		n = keep_top_k(c, n, o->top_k);
		sorted = 1;
	}
	double sum = 0;
	for (uint32_t i = 0; i < n; i++) {
		c[i].v = exp(c[i].v - mx);
		sum += c[i].v;
	}
	for (uint32_t i = 0; i < n; i++)
		c[i].v /= sum;
	if (o->top_p < 1) {
		/* Tokens below (1-p)/n hold less than 1-p together, so the nucleus (the fewest
		 * best tokens whose mass reaches p) lies among the others: sort only those. */
		double floor = (1 - o->top_p) / n;
		uint32_t m = 0;
		for (uint32_t i = 0; i < n; i++)
			if (c[i].v >= floor)
				c[m++] = c[i];
		n = m;
		if (!sorted)
			qsort(c, n, sizeof(*c), cand_cmp);
		double cum = 0;
		for (m = 0; m < n;) {
			cum += c[m++].v;
			if (cum >= o->top_p)
				break;
		}
		n = m;
	}
	sum = 0;
	for (uint32_t i = 0; i < n; i++)
		sum += c[i].v;
	double u = sample_uniform(r) * sum;
	for (uint32_t i = 0; i < n; i++) {
		u -= c[i].v;
		if (u < 0)
			return c[i].id;
	}
	return c[n - 1].id;
}
