/* test-dedupidx: the exact-hash set against a naive reference (exact counts through the
 * saturating count byte and its side table, export, growth from tiny sizes, 24 bytes or less
 * per distinct hash), and the index file's MinHash scheme (recorded, checked on load, merge
 * rules, version-1 files). */
#include "tap.h"
#include "dedup/index.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* ---- the exact set ---- */

/* One distinct hash of the workload: how many copies it gets, and whether an index knows it
 * (before or after its copies: the set must not care). */
struct ref {
	unsigned char key[16];
	uint32_t copies;
	int old;
};

/* copy counts skewed as real data is: mostly 1 to 3, a tail past the count byte's 127, groups
 * right at its edges, a few in the hundreds and thousands, one past 65535 */
static uint32_t ref_copies(size_t i)
{
	static const uint32_t edge[] = { 70000, 126, 127, 128, 129, 254, 255, 256, 1000, 5000 };
	if (i < sizeof edge / sizeof *edge)
		return edge[i];
	if (i < 200)
		return 100 + (uint32_t)(rnd() % 400);
	if (i % 10 == 0)
		return 0;	/* index only */
	return 1 + (uint32_t)(rnd() % 3) * (uint32_t)(rnd() % 2);
}

static struct ref *ref_make(size_t n)
{
	struct ref *r = xcalloc(n, sizeof *r);
	for (size_t i = 0; i < n; i++) {
		uint64_t a = rnd(), b = rnd();
		wr_u64le(r[i].key, a);
		wr_u64le(r[i].key + 8, b);
		r[i].copies = ref_copies(i);
		r[i].old = !r[i].copies || i % 7 == 0;
	}
	return r;
}

/* every add of the workload, shuffled: ref index, and bit 31 set for an index's add */
static uint32_t *ref_ops(const struct ref *r, size_t n, size_t *nops)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += r[i].copies + (size_t)r[i].old;
	uint32_t *op = xreallocarray(NULL, k, sizeof *op);
	k = 0;
	for (size_t i = 0; i < n; i++) {
		for (uint32_t c = 0; c < r[i].copies; c++)
			op[k++] = (uint32_t)i;
		if (r[i].old)
			op[k++] = (uint32_t)i | 0x80000000u;
	}
	for (size_t i = k; i > 1; i--) {
		size_t j = rnd() % i;
		uint32_t t = op[i - 1];
		op[i - 1] = op[j];
		op[j] = t;
	}
	*nops = k;
	return op;
}

static int cmp_u32_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* the set's counts and export against the reference */
static void check_results(struct dedupset *s, const struct ref *r, size_t n, const char *what)
{
	uint32_t *want = xreallocarray(NULL, n, sizeof *want), *got;
	size_t nw = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i].copies)
			want[nw++] = r[i].copies;
	qsort(want, nw, sizeof *want, cmp_u32_desc);
	size_t ng = dedupset_counts(s, &got);
	is_int(ng, nw, "%s: one count per group with copies in this run", what);
	ok(ng == nw && !memcmp(got, want, nw * sizeof *want), "%s: counts equal the reference's",
	   what);
	is_int(got[0], 70000, "%s: the largest group: 70000 copies, past the side table's 65535",
	       what);
	free(want);
	free(got);

	unsigned char (*keys)[16] = xreallocarray(NULL, n, 16), (*v)[16];
	for (size_t i = 0; i < n; i++)
		memcpy(keys[i], r[i].key, 16);
	qsort(keys, n, 16, cmp_key);
	size_t nv = dedupset_export(s, &v);
	is_int(nv, n, "%s: export holds every distinct hash, the index's included", what);
	ok(nv == n && !memcmp(v, keys, 16 * n), "%s: export sorted and equal to the reference",
	   what);
	free(keys);
	free(v);
}

/* Run the workload through a set made with DISTINCT and MORE. */
static void test_set_against_ref(size_t n, size_t distinct, size_t more, const char *what)
{
	struct ref *r = ref_make(n);
	size_t nops, firsts = 0;
	uint32_t *op = ref_ops(r, n, &nops);
	struct dedupset *s = dedupset_new(distinct, more);
	double worst = 0;
	for (size_t k = 0; k < nops; k++) {
		const struct ref *e = &r[op[k] & 0x7fffffffu];
		int first = dedupset_add(s, e->key, op[k] >> 31);
		firsts += (size_t)first;
		/* past a few thousand, the memory follows the distinct hashes */
		if (first && dedupset_size(s) >= 4096) {
			double b = (double)dedupset_bytes(s) / (double)dedupset_size(s);
			worst = b > worst ? b : worst;
		}
	}
	is_int(firsts, n, "%s: %zu first occurrences", what, n);
	is_int(dedupset_size(s), n, "%s: %zu distinct", what, n);
	ok(worst > 0 && worst <= 24, "%s: at most 24 bytes per distinct hash past 4096 (worst %.2f)",
	   what, worst);
	check_results(s, r, n, what);
	dedupset_free(s);
	free(op);
	free(r);
}

static void test_small(void)
{
	unsigned char a[16] = { 1 }, b[16] = { 2 }, z[16] = { 0 };
	struct dedupset *s = dedupset_new(0, 0);
	ok(dedupset_add(s, z, 0) == 1, "the all-zero hash is a hash like any other");
	ok(dedupset_add(s, z, 0) == 0, "... and its copy a copy");
	ok(dedupset_add(s, a, 1) == 1 && dedupset_add(s, a, 0) == 0, "an index's hash, then a copy");
	ok(dedupset_add(s, b, 0) == 1 && dedupset_add(s, b, 1) == 0, "a copy, then the index's");
	uint32_t *c;
	size_t g = dedupset_counts(s, &c);
	ok(g == 3 && c[0] == 2 && c[1] == 1 && c[2] == 1, "counts: only this run's copies");
	free(c);
	dedupset_free(s);
	s = dedupset_new(0, 0);
	g = dedupset_counts(s, &c);
	unsigned char (*v)[16] = NULL;
	size_t nv = dedupset_export(s, &v);
	ok(g == 0 && nv == 0, "an empty set exports nothing");
	free(c);
	free(v);
	dedupset_free(s);
}

/* 70% of the documents copies, sized from the documents read as cp-dedup does */
static void test_dup_rate(void)
{
	size_t reads = 300000, uniq = 90000;
	struct dedupset *s = dedupset_new(0, reads);
	unsigned char k[16] = { 0 };
	for (size_t i = 0; i < reads; i++) {
		uint64_t id = i < uniq ? i : rnd() % uniq;
		wr_u64le(k, XXH3_64bits(&id, sizeof id));
		wr_u64le(k + 8, id);
		dedupset_add(s, k, 0);
	}
	double b = (double)dedupset_bytes(s) / (double)dedupset_size(s);
	is_int(dedupset_size(s), uniq, "70%% copies: %zu distinct of %zu", uniq, reads);
	ok(b >= 16 && b <= 24, "70%% copies: %.2f bytes per distinct hash", b);
	dedupset_free(s);
}

/* ---- the index's MinHash scheme ---- */

static char dir[] = "/tmp/cp-test-dedupidx.XXXXXX";

static char *path_of(const char *name)
{
	static char p[4][256];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

/* a small index: N_EXACT hashes from SEED, N_NEAR signatures of 4 values */
static void make_index(struct dedupidx *x, uint32_t scheme, unsigned seed, size_t n_near)
{
	memset(x, 0, sizeof *x);
	x->num_perm = 4;
	x->scheme = scheme;
	x->n_exact = 3;
	x->exact = xcalloc(3, 16);
	for (int i = 0; i < 3; i++)
		x->exact[i][0] = (unsigned char)(seed * 16 + (unsigned)i);
	x->n_near = n_near;
	x->near = xcalloc(n_near * 4 + 1, 2);
	for (size_t i = 0; i < n_near * 4; i++)
		x->near[i] = (uint16_t)(seed * 1000 + i);
}

/* rewrite PATH's header: version, bytes 20-23, and a fresh header checksum */
static void patch_header(const char *path, uint32_t version, uint32_t scheme)
{
	size_t n;
	unsigned char *p = (unsigned char *)read_file(path, &n);
	wr_u32le(p + 8, version);
	wr_u32le(p + 20, scheme);
	wr_u64le(p + 56, XXH3_64bits(p, 56));
	FILE *f = fopen(path, "wb");
	fwrite(p, 1, n, f);
	fclose(f);
	free(p);
}

static uint32_t header_u32(const char *path, size_t off)
{
	size_t n;
	unsigned char *p = (unsigned char *)read_file(path, &n);
	uint32_t v = n >= off + 4 ? rd_u32le(p + off) : UINT32_MAX;
	free(p);
	return v;
}

static void test_scheme_file(void)
{
	struct dedupidx x, y;
	make_index(&x, DEDUPIDX_SCHEME_DATASKETCH, 1, 2);
	is_int(dedupidx_write(path_of("ds.idx"), &x), 0, "a datasketch index written");
	is_int(header_u32(path_of("ds.idx"), 8), 2, "as version 2");
	is_int(header_u32(path_of("ds.idx"), 20), DEDUPIDX_SCHEME_DATASKETCH, "scheme at offset 20");
	is_int(dedupidx_load(path_of("ds.idx"), &y), 0, "read back");
	is_int(y.scheme, DEDUPIDX_SCHEME_DATASKETCH, "with its scheme");
	dedupidx_free(&y);
	dedupidx_free(&x);

	make_index(&x, DEDUPIDX_SCHEME_XXH3, 2, 0);
	is_int(dedupidx_write(path_of("none.idx"), &x), 0, "an index without signatures written");
	is_int(header_u32(path_of("none.idx"), 20), DEDUPIDX_SCHEME_NONE, "... as scheme none");
	x.n_near = 1;
	x.scheme = DEDUPIDX_SCHEME_NONE;
	cp_quiet = 1;
	is_int(dedupidx_write(path_of("bad.idx"), &x), -1, "signatures without a scheme not written");
	ok(access(path_of("bad.idx"), F_OK) != 0 && access(path_of("bad.idx.tmp"), F_OK) != 0,
	   "... and nothing left");
	dedupidx_free(&x);

	/* what a reader must refuse in bytes 20-23 */
	make_index(&x, DEDUPIDX_SCHEME_XXH3, 3, 1);
	dedupidx_write(path_of("bad.idx"), &x);
	patch_header(path_of("bad.idx"), 2, 4);
	is_int(dedupidx_load(path_of("bad.idx"), &y), -1, "an unknown scheme code is refused");
	patch_header(path_of("bad.idx"), 2, DEDUPIDX_SCHEME_NONE);
	is_int(dedupidx_load(path_of("bad.idx"), &y), -1, "signatures of scheme none are refused");
	cp_quiet = 0;

	/* version 1: bytes 20-23 zero, the scheme unrecorded */
	dedupidx_write(path_of("v1.idx"), &x);
	patch_header(path_of("v1.idx"), 1, 0);
	is_int(dedupidx_load(path_of("v1.idx"), &y), 0, "a version-1 index still loads");
	ok(y.version == 1 && y.scheme == DEDUPIDX_SCHEME_UNKNOWN && y.n_near == 1,
	   "... its signatures of unknown scheme");
	dedupidx_free(&y);
	x.n_near = 0;
	dedupidx_write(path_of("v1n.idx"), &x);
	patch_header(path_of("v1n.idx"), 1, 0);
	is_int(dedupidx_load(path_of("v1n.idx"), &y), 0, "a version-1 index without signatures");
	is_int(y.scheme, DEDUPIDX_SCHEME_NONE, "... has scheme none");
	dedupidx_free(&y);
	dedupidx_free(&x);
}

/* merge A's scheme (with or without signatures) and B's: 0 or -1 */
static int merge_of(uint32_t sa, size_t na, uint32_t sb, size_t nb, uint32_t *out)
{
	struct dedupidx a, b;
	make_index(&a, sa, 1, na);
	make_index(&b, sb, 2, nb);
	cp_quiet = 1;
	int r = dedupidx_merge(&a, &b, "b");
	cp_quiet = 0;
	*out = a.n_near ? a.scheme : DEDUPIDX_SCHEME_NONE;
	dedupidx_free(&a);
	dedupidx_free(&b);
	return r;
}

static void test_scheme_merge(void)
{
	enum { N = DEDUPIDX_SCHEME_NONE, X = DEDUPIDX_SCHEME_XXH3, D = DEDUPIDX_SCHEME_DATASKETCH,
	       U = DEDUPIDX_SCHEME_UNKNOWN };
	uint32_t s;
	ok(!merge_of(X, 1, X, 2, &s) && s == X, "xxh3 + xxh3 = xxh3");
	ok(!merge_of(N, 0, D, 2, &s) && s == D, "none + datasketch = datasketch");
	ok(!merge_of(D, 1, N, 0, &s) && s == D, "datasketch + none = datasketch");
	ok(!merge_of(U, 1, N, 0, &s) && s == U, "unknown + none = unknown");
	ok(!merge_of(N, 0, U, 1, &s) && s == U, "none + unknown = unknown");
	ok(merge_of(X, 1, D, 1, &s) == -1, "xxh3 + datasketch refused");
	ok(merge_of(D, 1, X, 1, &s) == -1, "datasketch + xxh3 refused");
	ok(merge_of(U, 1, X, 1, &s) == -1, "unknown + xxh3 refused");
	ok(merge_of(U, 1, U, 1, &s) == -1, "unknown + unknown refused (they may differ)");
	is_str(dedupidx_scheme_name(X), "xxh3", "scheme names");
	ok(dedupidx_scheme_parse("datasketch") == D && dedupidx_scheme_parse("none") == -1 &&
		   dedupidx_scheme_parse("XXH3") == -1, "scheme names parsed strictly");
}

int main(void)
{
	test_small();
	test_set_against_ref(20000, 0, 0, "from size 0");
	test_set_against_ref(20000, 0, 180000, "sized from the adds");
	test_set_against_ref(30000, 0, 1u << 22, "in 128 segments");
	test_dup_rate();
	if (!mkdtemp(dir))
		abort();
	test_scheme_file();
	test_scheme_merge();
	const char *names[] = { "ds.idx", "none.idx", "bad.idx", "v1.idx", "v1n.idx" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		unlink(path_of(names[i]));
	rmdir(dir);
	return done_testing();
}
