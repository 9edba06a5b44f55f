/* lsh.c: MinHash LSH with union-find clustering for cp-dedup's near-duplicate removal.
 * Everything runs in input order on one thread, so the clusters (and which member comes
 * first) are the same for any thread count. */
#include "dedup/lsh.h"
#include "base/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define LSH_NONE UINT32_MAX

/* Simpson's rule over GRID+1 points; the integrands are smooth, so this agrees with
 * datasketch's adaptive quadrature far below the gaps between the (b, r) choices. */
#define GRID 1000
#define LANES 4	/* independent sums: the adds no longer wait for one another */

/* For each r, 1 - s^r on both grids (s^r by one multiply more each r); then
 * P(candidate) = 1 - (1 - s^r)^b, each b one multiply more, as b runs up: no pow or exp in
 * the inner loops (they were most of cp-dedup's time on small inputs), and 256 multiplies
 * cost far less precision than the gaps between the (b, r) choices. The sums run in LANES
 * interleaved parts, Simpson's weights taken from a table, over 1000 steps (as 2000 and 500
 * did, they give the same (b, r) for every threshold from 0.01 to 0.99 and 16 to 512
 * permutations): 9.5 to 3 ms at 256 permutations. Errors are ranked in datasketch's loop
 * order (b, then r). */
void lsh_optimal_params(double threshold, unsigned num_perm, unsigned *bands, unsigned *rows)
{
	double *err = xcalloc((size_t)num_perm * num_perm + 1, sizeof *err);
	size_t n = GRID + 1, m = (n + LANES - 1) / LANES * LANES;	/* padded, weight 0 */
	double *s_lo = xcalloc(7 * m, sizeof *s_lo), *s_hi = s_lo + m, *pw_lo = s_hi + m,
	       *pw_hi = pw_lo + m, *p_lo = pw_hi + m, *p_hi = p_lo + m, *w = p_hi + m;
	double h_lo = threshold / GRID, h_hi = (1 - threshold) / GRID;
	for (size_t i = 0; i < n; i++) {
		s_lo[i] = pw_lo[i] = (double)i * h_lo;
		s_hi[i] = pw_hi[i] = threshold + (double)i * h_hi;
		w[i] = i == 0 || i == GRID ? 1 : i & 1 ? 4 : 2;
	}
	for (unsigned r = 1; r <= num_perm; r++) {
		if (r > 1)
			for (size_t i = 0; i < m; i++) {
				pw_lo[i] *= s_lo[i];
				pw_hi[i] *= s_hi[i];
			}
		for (size_t i = 0; i < m; i++)
			p_lo[i] = p_hi[i] = 1;	/* (1 - s^r)^b, b = 0 */
		for (unsigned b = 1; b <= num_perm / r; b++) {
			double fp[LANES] = { 0 }, fn[LANES] = { 0 };
			for (size_t i = 0; i < m; i += LANES)
				for (size_t k = 0; k < LANES; k++) {
					p_lo[i + k] *= 1 - pw_lo[i + k];
					p_hi[i + k] *= 1 - pw_hi[i + k];
					fp[k] += w[i + k] * (1 - p_lo[i + k]);
					fn[k] += w[i + k] * p_hi[i + k];
				}
			double sfp = (fp[0] + fp[1]) + (fp[2] + fp[3]);
			double sfn = (fn[0] + fn[1]) + (fn[2] + fn[3]);
			err[(size_t)b * num_perm + r - 1] = 0.5 * sfp * h_lo / 3 + 0.5 * sfn * h_hi / 3;
		}
	}
	double best = INFINITY;
	*bands = *rows = 1;
	for (unsigned b = 1; b <= num_perm; b++)
		for (unsigned r = 1; r <= num_perm / b; r++)
			if (err[(size_t)b * num_perm + r - 1] < best) {
				best = err[(size_t)b * num_perm + r - 1];
				*bands = b;
				*rows = r;
			}
	free(err);
	free(s_lo);
}

double lsh_jaccard16(const uint16_t *a, const uint16_t *b, unsigned n)
{
	unsigned eq = 0;
	for (unsigned i = 0; i < n; i++)
		eq += a[i] == b[i];
	return n ? (double)eq / n : 0.0;
}

uint64_t lsh_band_key(const uint16_t *sig, unsigned band, unsigned rows)
{
	/* the signature is stored little-endian in files but hashed as host uint16 here;
	 * keys never leave the process, so only the in-memory layout matters */
	return XXH3_64bits_withSeed(sig + (size_t)band * rows, rows * sizeof *sig, band + 1);
}

/* One band's buckets: open addressing from key to the newest document with that key; older
 * ones follow through lsh.next. A slot is 8 bytes, one cache line access a lookup: the
 * key's low 32 bits place it, its high 32 bits are kept to tell keys apart. Two keys that
 * agree in all 64 bits share a bucket; the rare false candidate that makes is rejected by
 * the Jaccard check. */
struct band_slot {
	uint32_t fp, head;
};

struct band_table {
	struct band_slot *slot;
	size_t cap, n;
};

struct lsh {
	double threshold;
	unsigned nperm, b, r;
	uint16_t *sigs;
	uint32_t *parent, *next, *stamp;
	size_t n, cap;
	struct band_table *tab;
	lsh_pair_fn pair_fn;
	void *pair_arg;
};

/* capacity is not a power of two: sized to the expected count, filled to at most 75% */
static void table_init(struct band_table *t, size_t expect)
{
	size_t c = expect + expect / 3 + 16;
	if (c > UINT32_MAX)
		c = UINT32_MAX;
	t->cap = c;
	t->n = 0;
	t->slot = xmalloc(c * sizeof *t->slot);
	memset(t->slot, 0xff, c * sizeof *t->slot);
}

static size_t table_home(const struct band_table *t, uint64_t key)
{
	return (size_t)(((uint64_t)(uint32_t)key * t->cap) >> 32);
}

/* slot of KEY: the one holding it, or the empty one where it goes */
static size_t table_slot(const struct band_table *t, uint64_t key)
{
	size_t i = table_home(t, key);
	uint32_t fp = (uint32_t)(key >> 32);
	while (t->slot[i].head != LSH_NONE && t->slot[i].fp != fp)
		if (++i == t->cap)
			i = 0;
	return i;
}

/* Growing needs each key's placement bits back: recompute them from the head document's
 * signature, which holds the band values. */
static void table_grow(struct lsh *l, unsigned band)
{
	struct band_table *t = &l->tab[band], old = *t;
	table_init(t, old.cap);	/* about 1.33 times the old capacity */
	for (size_t i = 0; i < old.cap; i++)
		if (old.slot[i].head != LSH_NONE) {
			uint64_t key = lsh_band_key(lsh_sig(l, old.slot[i].head), band, l->r);
			t->slot[table_slot(t, key)] = old.slot[i];
			t->n++;
		}
	free(old.slot);
}

static void reserve(struct lsh *l, size_t want);

struct lsh *lsh_new(double threshold, unsigned num_perm, size_t expect_docs)
{
	struct lsh *l = xcalloc(1, sizeof *l);
	l->threshold = threshold;
	l->nperm = num_perm;
	lsh_optimal_params(threshold, num_perm, &l->b, &l->r);
	l->tab = xcalloc(l->b, sizeof *l->tab);
	for (unsigned i = 0; i < l->b; i++)
		table_init(&l->tab[i], expect_docs);
	if (expect_docs)
		reserve(l, expect_docs);
	return l;
}

void lsh_free(struct lsh *l)
{
	if (!l)
		return;
	for (unsigned i = 0; i < l->b; i++) {
		free(l->tab[i].slot);
	}
	free(l->tab);
	free(l->sigs);
	free(l->parent);
	free(l->next);
	free(l->stamp);
	free(l);
}

unsigned lsh_bands(const struct lsh *l) { return l->b; }
unsigned lsh_rows(const struct lsh *l) { return l->r; }
size_t lsh_count(const struct lsh *l) { return l->n; }

const uint16_t *lsh_sig(const struct lsh *l, uint32_t id)
{
	return l->sigs + (size_t)id * l->nperm;
}

void lsh_set_pair_callback(struct lsh *l, lsh_pair_fn fn, void *arg)
{
	l->pair_fn = fn;
	l->pair_arg = arg;
}

/* roots are always the smallest id of their cluster, so the root is the cluster's first */
static uint32_t find(uint32_t *parent, uint32_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

uint32_t lsh_first(struct lsh *l, uint32_t id)
{
	return find(l->parent, id);
}

static void reserve(struct lsh *l, size_t want)
{
	if (l->n < l->cap && !want)
		return;
	size_t c = want ? want : l->cap + l->cap / 2;
	/* a small expected count (1: cp-dedup -n on a one-document input) still grows */
	if (c < 1024)
		c = 1024;
	if (c <= l->n)
		c = l->n + l->n / 2 + 1;
	if (c > LSH_NONE - 1)
		c = LSH_NONE - 1;
	if (l->n >= c)
		abort();	/* 4 billion documents: beyond the id width */
	l->sigs = xreallocarray(l->sigs, c * l->nperm, sizeof *l->sigs);
	l->parent = xreallocarray(l->parent, c, sizeof *l->parent);
	l->stamp = xreallocarray(l->stamp, c, sizeof *l->stamp);
	l->next = xreallocarray(l->next, c * l->b, sizeof *l->next);
	l->cap = c;
}

/* compare the new document ID with each earlier one in a bucket chain */
static void scan_chain(struct lsh *l, uint32_t id, uint32_t c, unsigned band)
{
	const uint16_t *sig = lsh_sig(l, id);
	for (; c != LSH_NONE; c = l->next[(size_t)c * l->b + band]) {
		if (l->stamp[c] == id)
			continue;	/* already seen through another band */
		l->stamp[c] = id;
		uint32_t rc = find(l->parent, c), rd = find(l->parent, id);
		if (rc == rd)
			continue;
		double j = lsh_jaccard16(lsh_sig(l, c), sig, l->nperm);
		if (j < l->threshold)
			continue;
		if (rc < rd)
			l->parent[rd] = rc;
		else
			l->parent[rc] = rd;
		if (l->pair_fn)
			l->pair_fn(l->pair_arg, c, id, j);
	}
}

uint32_t lsh_add(struct lsh *l, const uint16_t *sig)
{
	reserve(l, 0);
	uint32_t id = (uint32_t)l->n++;
	memcpy(l->sigs + (size_t)id * l->nperm, sig, l->nperm * sizeof *sig);
	l->parent[id] = id;
	l->stamp[id] = LSH_NONE;
	/* all keys first, their slots fetched together, as the lookups are cache misses */
	uint64_t key[256];
	unsigned nb = l->b < 256 ? l->b : 256;
	for (unsigned band = 0; band < nb; band++) {
		key[band] = lsh_band_key(sig, band, l->r);
		__builtin_prefetch(&l->tab[band].slot[table_home(&l->tab[band], key[band])]);
	}
	for (unsigned band = 0; band < l->b; band++) {
		struct band_table *t = &l->tab[band];
		if (4 * (t->n + 1) > 3 * t->cap)
			table_grow(l, band);
		uint64_t k = band < nb ? key[band] : lsh_band_key(sig, band, l->r);
		size_t s = table_slot(t, k);
		uint32_t *nx = &l->next[(size_t)id * l->b + band];
		if (t->slot[s].head == LSH_NONE) {
			t->slot[s].fp = (uint32_t)(k >> 32);
			t->n++;
			*nx = LSH_NONE;
		} else {
			scan_chain(l, id, t->slot[s].head, band);
			*nx = t->slot[s].head;
		}
		t->slot[s].head = id;
	}
	return id;
}

double lsh_bytes_per_doc(const struct lsh *l)
{
	double per = l->nperm * 2.0 + 4 * 2 + 4.0 * l->b;	/* signature, parent, stamp, chains */
	if (l->n) {
		size_t t = 0;
		for (unsigned i = 0; i < l->b; i++)
			t += l->tab[i].cap * sizeof *l->tab[i].slot;
		per += (double)t / l->n;
	}
	return per;
}
