/* test-lsh: LSH parameters against datasketch's, clustering of planted signatures, the
 * exact-hash set, and the dedup index file (round trip, merge, every corruption rejected). */
#include "tap.h"
#include "dedup/index.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "dedup/lsh.h"
#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#define NP 256

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

static void test_params(void)
{
	/* datasketch 2.0 _optimal_param(t, n, 0.5, 0.5) */
	static const struct { unsigned n; double t; unsigned b, r; } want[] = {
		{ 128, 0.5, 25, 5 }, { 128, 0.7, 14, 9 }, { 128, 0.8, 9, 13 }, { 128, 0.85, 8, 16 },
		{ 128, 0.9, 5, 25 }, { 128, 0.95, 3, 42 }, { 256, 0.5, 42, 6 }, { 256, 0.7, 25, 10 },
		{ 256, 0.8, 17, 15 }, { 256, 0.85, 13, 19 }, { 256, 0.9, 9, 28 }, { 256, 0.95, 5, 51 },
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		unsigned b, r;
		lsh_optimal_params(want[i].t, want[i].n, &b, &r);
		ok(b == want[i].b && r == want[i].r, "params(%.2f, %u) = (%u, %u), datasketch (%u, %u)",
		   want[i].t, want[i].n, b, r, want[i].b, want[i].r);
	}
}

/* a copy of BASE with K of its values replaced */
static void mutate(uint16_t *out, const uint16_t *base, unsigned k)
{
	memcpy(out, base, NP * sizeof *out);
	for (unsigned i = 0; i < k; i++) {
		unsigned p = rnd() % NP;
		out[p] = (uint16_t)(out[p] + 1 + rnd() % 1000);
	}
}

static void test_clusters(void)
{
	struct lsh *l = lsh_new(0.85, NP, 8);
	is_int(lsh_bands(l), 13, "0.85 with 256 permutations: 13 bands");
	is_int(lsh_rows(l), 19, "... of 19 rows");
	uint16_t a[NP], b[NP], c[NP], d[NP], e[NP];
	for (int i = 0; i < NP; i++)
		a[i] = (uint16_t)rnd(), d[i] = (uint16_t)rnd();
	/* b: 10 values changed (J about 0.96), c: 150 changed (far), e: d with 6 changed */
	memcpy(b, a, sizeof b);
	for (int i = 0; i < 10; i++)
		b[i * 25] ^= 0x5555;
	memcpy(c, a, sizeof c);
	for (int i = 0; i < 150; i++)
		c[i] ^= 0x1234;
	mutate(e, d, 6);
	ok(lsh_jaccard16(a, b, NP) > 0.95 && lsh_jaccard16(a, b, NP) < 0.97, "jaccard(a,b) = %.3f",
	   lsh_jaccard16(a, b, NP));
	uint32_t ia = lsh_add(l, a), id = lsh_add(l, d), ib = lsh_add(l, b), ic = lsh_add(l, c),
		 ie = lsh_add(l, e);
	is_int(lsh_first(l, ia), ia, "a is the first of its cluster");
	is_int(lsh_first(l, ib), ia, "b joins a's cluster");
	is_int(lsh_first(l, ic), ic, "c (J ~0.41) stays apart");
	is_int(lsh_first(l, id), id, "d is first of its own");
	is_int(lsh_first(l, ie), id, "e joins d");
	/* a bridge: f near to c makes no difference to a */
	uint16_t f[NP];
	mutate(f, c, 3);
	uint32_t iff = lsh_add(l, f);
	is_int(lsh_first(l, iff), ic, "f joins c, not a");
	is_int(lsh_count(l), 6, "six documents");
	lsh_free(l);

	/* chains: 300 near copies of one signature, all end in the first's cluster */
	l = lsh_new(0.85, NP, 4);
	int all = 1;
	lsh_add(l, a);
	for (int i = 0; i < 300; i++) {
		uint16_t m[NP];
		mutate(m, a, 8);
		lsh_add(l, m);
	}
	for (uint32_t i = 0; i < 301; i++)
		all &= lsh_first(l, i) == 0;
	ok(all, "300 near copies cluster under the first");
	lsh_free(l);

	/* an expected count of 1 (cp-dedup -n on one document against an index) still grows,
	 * past the first reservation too */
	for (size_t expect = 1; expect <= 2; expect++) {
		l = lsh_new(0.85, NP, expect);
		int firsts = 1;
		for (uint32_t i = 0; i < 3000; i++) {
			uint16_t m[NP];
			for (int k = 0; k < NP; k++)
				m[k] = (uint16_t)rnd();
			firsts &= lsh_add(l, m) == i && lsh_first(l, i) == i;
		}
		ok(firsts && lsh_count(l) == 3000, "expect %zu: 3000 distinct documents added", expect);
		lsh_free(l);
	}
}

static void test_set(void)
{
	struct dedupset *s = dedupset_new(0, 2);	/* forces growth */
	unsigned char h[1000][16];
	for (int i = 0; i < 1000; i++)
		for (int k = 0; k < 16; k++)
			h[i][k] = (unsigned char)rnd();
	int firsts = 0;
	for (int i = 0; i < 1000; i++)
		firsts += dedupset_add(s, h[i], 0);
	for (int i = 0; i < 1000; i += 10)
		firsts += dedupset_add(s, h[i], 0);	/* 100 second copies */
	for (int k = 0; k < 5; k++)
		dedupset_add(s, h[7], 0);
	is_int(firsts, 1000, "1000 first occurrences");
	is_int(dedupset_size(s), 1000, "1000 distinct");
	uint32_t *counts;
	size_t g = dedupset_counts(s, &counts);
	is_int(g, 1000, "1000 groups");
	is_int(counts[0], 6, "h[7]: 6 copies, first in descending order");
	is_int(counts[1], 2, "then the doubled ones");
	free(counts);
	unsigned char (*v)[16];
	size_t n = dedupset_export(s, &v);
	int sorted = 1;
	for (size_t i = 1; i < n; i++)
		sorted &= memcmp(v[i - 1], v[i], 16) < 0;
	ok(n == 1000 && sorted, "export: 1000 sorted hashes");
	free(v);
	dedupset_free(s);

	s = dedupset_new(0, 10);
	ok(dedupset_add(s, h[0], 1) == 1, "an index hash is new");
	ok(dedupset_add(s, h[0], 0) == 0, "a document with it is a duplicate");
	g = dedupset_counts(s, &counts);
	ok(g == 1 && counts[0] == 1, "only this run's copies are counted");
	free(counts);
	dedupset_free(s);
	ok(dedupset_bytes(s = dedupset_new(1000000, 0)) / 1e6 < 24,
	   "sized at once for a million known hashes: under 24 bytes each");
	dedupset_free(s);
}

static void flip(const char *src, const char *dst, long off, int trunc)
{
	size_t n;
	char *p = read_file(src, &n);
	FILE *f = fopen(dst, "wb");
	if (trunc)
		n = (size_t)off;
	else
		p[off] ^= 0x40;
	fwrite(p, 1, n, f);
	fclose(f);
	free(p);
}

static void test_index(void)
{
	char dir[] = "/tmp/test-lsh.XXXXXX";
	if (!mkdtemp(dir))
		abort();
	char *p1 = xasprintf("%s/a.idx", dir), *p2 = xasprintf("%s/b.idx", dir),
	     *bad = xasprintf("%s/bad.idx", dir);
	struct dedupidx x = { .num_perm = NP, .scheme = DEDUPIDX_SCHEME_XXH3 }, y;
	is_int(dedupidx_load(p1, &y), 1, "a missing index loads as empty (1)");
	x.n_exact = 3;
	x.exact = xcalloc(3, 16);
	x.exact[0][15] = 1, x.exact[1][15] = 5, x.exact[2][0] = 9;
	x.n_near = 2;
	x.near = xcalloc(2 * NP, 2);
	for (int i = 0; i < 2 * NP; i++)
		x.near[i] = (uint16_t)(i * 7919);
	is_int(dedupidx_write(p1, &x), 0, "index written");
	char *tmp = xasprintf("%s.tmp", p1);
	ok(access(tmp, F_OK) != 0, "no temporary left");
	free(tmp);
	is_int(dedupidx_load(p1, &y), 0, "index read back");
	ok(y.n_exact == 3 && y.n_near == 2 && !memcmp(y.exact, x.exact, 48) &&
		   !memcmp(y.near, x.near, 2 * NP * 2), "round trip equal");

	/* merge with an overlapping one */
	struct dedupidx z = { .num_perm = NP, .scheme = DEDUPIDX_SCHEME_XXH3 };
	z.n_exact = 2;
	z.exact = xcalloc(2, 16);
	z.exact[0][15] = 5, z.exact[1][15] = 6;
	z.n_near = 1;
	z.near = xcalloc(NP, 2);
	z.near[0] = 42;
	ok(!dedupidx_merge(&y, &z, "z"), "merge");
	ok(y.n_exact == 4 && y.exact[1][15] == 5 && y.exact[2][15] == 6 && y.exact[3][0] == 9,
	   "merged exact hashes: union, sorted");
	ok(y.n_near == 3 && y.near[2 * NP] == 42, "merged signatures appended");
	is_int(dedupidx_write(p2, &y), 0, "merged index written");
	dedupidx_free(&y);

	cp_quiet = 1;
	size_t len;
	free(read_file(p1, &len));
	long offs[] = { 0, 8, 30, 56, 64, 100, (long)len - 1 };
	for (size_t i = 0; i < sizeof offs / sizeof *offs; i++) {
		flip(p1, bad, offs[i], 0);
		is_int(dedupidx_load(bad, &y), -1, "flipped byte at %ld rejected", offs[i]);
	}
	long cuts[] = { 0, 10, 64, 70, (long)len - 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
		flip(p1, bad, cuts[i], 1);
		is_int(dedupidx_load(bad, &y), -1, "truncated at %ld rejected", cuts[i]);
	}
	/* a future version with a valid header checksum */
	{
		size_t n;
		unsigned char *q = (unsigned char *)read_file(p1, &n);
		q[8] = DEDUPIDX_VERSION + 1;
		wr_u64le(q + 56, XXH3_64bits(q, 56));
		struct dedupidx w;
		FILE *f = fopen(bad, "wb");
		fwrite(q, 1, n, f);
		fclose(f);
		ok(dedupidx_load(bad, &w) == -1, "a future version rejected");
		free(q);
	}
	cp_quiet = 0;
	dedupidx_free(&x);
	dedupidx_free(&z);
	unlink(p1), unlink(p2), unlink(bad), rmdir(dir);
	free(p1), free(p2), free(bad);
}

int main(void)
{
	test_params();
	test_clusters();
	test_set();
	test_index();
	return done_testing();
}
