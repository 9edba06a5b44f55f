/* index.c: cp-dedup's exact-hash set and its persistent, mergeable index file. */
#include "dedup/index.h"
#include "base/atomic.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- exact set ----
 *
 * Structure of arrays, so that a slot costs 17 bytes: the 16-byte hash, and one byte holding
 * the group's copy count (low 7 bits) and whether it was remembered from an index (top bit).
 * Byte 0 marks an empty slot (a group always has a copy or the flag). The count byte
 * saturates at 127: the exact count of such a group lives in a side table keyed by its hash
 * (20 bytes an entry, 22 to 27 with its free slots); few groups are that large (CodeParrot:
 * 0.1% of the unique files make 15% of all files), so it adds little.
 *
 * Sized by distinct hashes, not by documents read (most of which may be copies): the table
 * starts small and grows by a fifth when it is over 90% full, so it stays 75% to 90% full
 * whatever the share of copies, 19 to 23 bytes per distinct hash. (A fifth rather than a
 * quarter leaves room under 24 bytes for the side table.) It is cut into segments by the
 * hash's top bits, each grown on its own: a growth copies one segment (old and new side by
 * side for a moment, a small fraction of the whole) and the copy stays in cache. */

#define SET_OLD 0x80u	/* the group was remembered from an index */
#define SET_SAT 0x7fu	/* 127 copies or more: the count is in the side table */
#define SET_MAX_LOAD 0.9
#define SET_GROW 1.2
#define SET_MIN_CAP 8
#define SET_SEG_EXPECT 32768	/* hashes a segment is made for, before copies are known */
#define SET_MAX_SEG_BITS 10

struct set_seg {
	unsigned char (*key)[16];
	uint8_t *cnt;		/* SET_OLD | min(copies, SET_SAT); 0: empty */
	size_t cap, n;
};

/* a side-table entry: the exact copy count of a group of 127 or more, 0 for an empty slot */
struct set_big {
	unsigned char key[16];
	uint32_t count;
};

struct dedupset {
	struct set_seg *seg;
	unsigned bits;		/* the segment is the hash's top BITS bits */
	size_t n;
	struct set_big *big;	/* open addressing, like a segment */
	size_t big_cap, big_n;
};

/* ---- side table of large groups ---- */

/* its home from the hash's second half: independent of the main table's, which uses the first */
static struct set_big *big_find(const struct dedupset *s, const unsigned char *key)
{
	size_t i = (size_t)(((unsigned __int128)rd_u64le(key + 8) * s->big_cap) >> 64);
	while (s->big[i].count && memcmp(s->big[i].key, key, 16))
		if (++i == s->big_cap)
			i = 0;
	return &s->big[i];
}

/* grown as the main table is, so that it too costs little more than its entries */
static void big_grow(struct dedupset *s)
{
	struct set_big *old = s->big;
	size_t n = s->big_cap;
	s->big_cap = (size_t)((double)n * SET_GROW) + SET_MIN_CAP;
	s->big = xcalloc(s->big_cap, sizeof *s->big);
	for (size_t i = 0; i < n; i++)
		if (old[i].count)
			*big_find(s, old[i].key) = old[i];
	free(old);
}

/* the group KEY just reached SET_SAT copies: from now on its count is kept here */
static void big_start(struct dedupset *s, const unsigned char *key)
{
	if ((double)(s->big_n + 1) > SET_MAX_LOAD * (double)s->big_cap)
		big_grow(s);
	struct set_big *p = big_find(s, key);
	memcpy(p->key, key, 16);
	p->count = SET_SAT;
	s->big_n++;
}

/* ---- segments ---- */

static struct set_seg *set_seg_of(const struct dedupset *s, const unsigned char *key)
{
	return &s->seg[s->bits ? rd_u64le(key) >> (64 - s->bits) : 0];
}

/* home slot: the hash is uniform, so the bits of its first 8 bytes below the segment's map
 * straight onto [0, cap) */
static size_t set_home(const struct dedupset *s, const struct set_seg *g, const unsigned char *key)
{
	return (size_t)(((unsigned __int128)(rd_u64le(key) << s->bits) * g->cap) >> 64);
}

/* linear probing: KEY's slot, or the empty slot where it would go */
static size_t set_find(const struct dedupset *s, const struct set_seg *g, const unsigned char *key)
{
	size_t i = set_home(s, g, key);
	while (g->cnt[i] && memcmp(g->key[i], key, 16))
		if (++i == g->cap)
			i = 0;
	return i;
}

static void set_seg_alloc(struct set_seg *g, size_t cap)
{
	g->cap = cap;
	g->key = xreallocarray(NULL, cap, 16);
	g->cnt = xcalloc(cap, 1);
}

static void set_grow(const struct dedupset *s, struct set_seg *g)
{
	struct set_seg old = *g;
	set_seg_alloc(g, (size_t)((double)old.cap * SET_GROW) + 1);
	for (size_t i = 0; i < old.cap; i++)
		if (old.cnt[i]) {
			/* the keys are distinct: the first empty slot is the place */
			size_t j = set_home(s, g, old.key[i]);
			while (g->cnt[j])
				if (++j == g->cap)
					j = 0;
			memcpy(g->key[j], old.key[i], 16);
			g->cnt[j] = old.cnt[i];
		}
	free(old.key);
	free(old.cnt);
}

struct dedupset *dedupset_new(size_t distinct, size_t more)
{
	struct dedupset *s = xcalloc(1, sizeof *s);
	while (s->bits < SET_MAX_SEG_BITS && (distinct + more) >> s->bits > SET_SEG_EXPECT)
		s->bits++;
	size_t nseg = (size_t)1 << s->bits;
	s->seg = xcalloc(nseg, sizeof *s->seg);
	/* DISTINCT will all be there; MORE may be all copies, so the table grows into them */
	for (size_t i = 0; i < nseg; i++)
		set_seg_alloc(&s->seg[i], (size_t)((double)(distinct >> s->bits) / SET_MAX_LOAD) +
					  SET_MIN_CAP);
	return s;
}

void dedupset_free(struct dedupset *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < (size_t)1 << s->bits; i++) {
		free(s->seg[i].key);
		free(s->seg[i].cnt);
	}
	free(s->seg);
	free(s->big);
	free(s);
}

/* one more copy of the group at slot I of G */
static void set_count_one(struct dedupset *s, struct set_seg *g, size_t i)
{
	uint8_t *c = &g->cnt[i];
	if ((*c & SET_SAT) < SET_SAT - 1) {
		++*c;
	} else if ((*c & SET_SAT) == SET_SAT - 1) {
		++*c;
		big_start(s, g->key[i]);
	} else {
		struct set_big *p = big_find(s, g->key[i]);
		if (p->count < UINT32_MAX)
			p->count++;
	}
}

int dedupset_add(struct dedupset *s, const unsigned char hash[16], int old)
{
	struct set_seg *g = set_seg_of(s, hash);
	if ((double)(g->n + 1) > SET_MAX_LOAD * (double)g->cap)
		set_grow(s, g);
	size_t i = set_find(s, g, hash);
	if (g->cnt[i]) {
		if (old)
			g->cnt[i] |= SET_OLD;
		else
			set_count_one(s, g, i);
		return 0;
	}
	memcpy(g->key[i], hash, 16);
	g->cnt[i] = old ? SET_OLD : 1;
	g->n++;
	s->n++;
	return 1;
}

size_t dedupset_size(const struct dedupset *s) { return s->n; }

size_t dedupset_bytes(const struct dedupset *s)
{
	size_t nseg = (size_t)1 << s->bits, b = sizeof *s + nseg * sizeof *s->seg;
	for (size_t i = 0; i < nseg; i++)
		b += s->seg[i].cap * (16 + 1);
	return b + s->big_cap * sizeof *s->big;
}

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

size_t dedupset_export(const struct dedupset *s, unsigned char (**out)[16])
{
	unsigned char (*v)[16] = xreallocarray(NULL, s->n ? s->n : 1, 16);
	size_t k = 0;
	for (size_t q = 0; q < (size_t)1 << s->bits; q++) {
		const struct set_seg *g = &s->seg[q];
		for (size_t i = 0; i < g->cap; i++)
			if (g->cnt[i])
				memcpy(v[k++], g->key[i], 16);
	}
	qsort(v, k, 16, cmp_key);
	*out = v;
	return k;
}

static int cmp_desc(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? 1 : x > y ? -1 : 0;
}

size_t dedupset_counts(const struct dedupset *s, uint32_t **out)
{
	uint32_t *v = xreallocarray(NULL, s->n ? s->n : 1, sizeof *v);
	size_t k = 0;
	for (size_t q = 0; q < (size_t)1 << s->bits; q++) {
		const struct set_seg *g = &s->seg[q];
		for (size_t i = 0; i < g->cap; i++) {
			uint32_t c = g->cnt[i] & SET_SAT;
			if (c == SET_SAT)
				c = big_find(s, g->key[i])->count;
			if (c)
				v[k++] = c;
		}
	}
	qsort(v, k, sizeof *v, cmp_desc);
	*out = v;
	return k;
}

/* ---- index file ---- */

static const char idx_magic[8] = { 'C', 'P', 'D', 'E', 'D', 'U', 'P', 0 };

const char *dedupidx_scheme_name(uint32_t scheme)
{
	static const char *const name[] = { "none", "xxh3", "datasketch", "unknown" };
	return scheme < sizeof name / sizeof *name ? name[scheme] : "invalid";
}

int dedupidx_scheme_parse(const char *name)
{
	if (!strcmp(name, "xxh3"))
		return DEDUPIDX_SCHEME_XXH3;
	if (!strcmp(name, "datasketch"))
		return DEDUPIDX_SCHEME_DATASKETCH;
	return -1;
}

void dedupidx_free(struct dedupidx *x)
{
	free(x->exact);
	free(x->near);
	memset(x, 0, sizeof *x);
}

/* read exactly N bytes into P, feeding the body checksum; -1 on short read */
static int load_part(int fd, void *p, size_t n, XXH3_state_t *st)
{
	long r = n ? read_full(fd, p, n) : 0;
	if (r < 0 || (size_t)r != n)
		return -1;
	XXH3_64bits_update(st, p, n);
	return 0;
}

/* Version 1 left bytes 20-23 zero and did not say which scheme made its signatures. */
static int load_scheme(const char *path, const unsigned char *h, struct dedupidx *x)
{
	uint32_t scheme = rd_u32le(h + 20);
	if (x->version == 1)
		scheme = x->n_near ? DEDUPIDX_SCHEME_UNKNOWN : DEDUPIDX_SCHEME_NONE;
	else if (scheme > DEDUPIDX_SCHEME_UNKNOWN)
		return error("'%s': unknown MinHash scheme %u at offset 20", path, scheme);
	else if (x->n_near && scheme == DEDUPIDX_SCHEME_NONE)
		return error("'%s': %llu signatures without a MinHash scheme at offset 20", path,
			     (unsigned long long)x->n_near);
	x->scheme = x->n_near ? scheme : DEDUPIDX_SCHEME_NONE;
	return 0;
}

/* Check the header H of PATH (ST: its stat) and take its fields into X; *WANT: the file's
 * length it implies. */
static int load_header(const char *path, const unsigned char *h, const struct stat *st,
		       struct dedupidx *x, uint64_t *want)
{
	if (memcmp(h, idx_magic, 8))
		return error("'%s': not a cp-dedup index (bad magic at offset 0)", path);
	uint32_t version = rd_u32le(h + 8), sig_bits = rd_u32le(h + 16);
	if (XXH3_64bits(h, 56) != rd_u64le(h + 56))
		return error("'%s': index header checksum mismatch at offset 56", path);
	if (version > DEDUPIDX_VERSION || version == 0)
		return error("'%s': index version %u is newer than this cp-dedup understands (%u) at "
			     "offset 8", path, version, DEDUPIDX_VERSION);
	x->version = version;
	x->num_perm = rd_u32le(h + 12);
	x->n_exact = rd_u64le(h + 24);
	x->n_near = rd_u64le(h + 32);
	if (sig_bits != 16 || !x->num_perm || x->num_perm > 65536)
		return error("'%s': unsupported signature shape (%u values of %u bits) at offset 12",
			     path, x->num_perm, sig_bits);
	if (load_scheme(path, h, x))
		return -1;
	*want = DEDUPIDX_HEADER;
	if (x->n_exact > (UINT64_MAX - *want) / 16 ||
	    x->n_near > (UINT64_MAX - *want - 16 * x->n_exact) / (2ull * x->num_perm))
		return error("'%s': impossible counts in index header at offset 24", path);
	*want += 16 * x->n_exact + 2ull * x->num_perm * x->n_near;
	if (S_ISREG(st->st_mode) && (uint64_t)st->st_size != *want)
		return error("'%s': index is %llu bytes, its header says %llu (truncated or corrupt)",
			     path, (unsigned long long)st->st_size, (unsigned long long)*want);
	return 0;
}

/* Read the body of PATH (from FD, after header H; WANT: the whole file's length) into X. */
static int load_body(int fd, const char *path, const unsigned char *h, uint64_t want,
		     struct dedupidx *x)
{
	x->exact = xreallocarray(NULL, x->n_exact ? x->n_exact : 1, 16);
	x->near = xreallocarray(NULL, x->n_near ? x->n_near * x->num_perm : 1, 2);
	XXH3_state_t *xs = XXH3_createState();
	XXH3_64bits_reset(xs);
	int cut = load_part(fd, x->exact, 16 * x->n_exact, xs) ||
		  load_part(fd, x->near, 2 * x->num_perm * x->n_near, xs);
	uint64_t sum = XXH3_64bits_digest(xs);
	XXH3_freeState(xs);
	if (cut)
		return error("'%s': truncated index (expected %llu bytes)", path,
			     (unsigned long long)want);
	if (sum != rd_u64le(h + 48))
		return error("'%s': index body checksum mismatch (bytes %d to %llu)", path,
			     DEDUPIDX_HEADER, (unsigned long long)want);
	for (uint64_t i = 1; i < x->n_exact; i++)
		if (memcmp(x->exact[i - 1], x->exact[i], 16) >= 0)
			return error("'%s': exact hashes out of order at offset %llu", path,
				     (unsigned long long)(DEDUPIDX_HEADER + 16 * i));
	/* stored little-endian; convert in place for big-endian hosts */
	for (uint64_t i = 0; i < x->n_near * x->num_perm; i++) {
		const unsigned char *p = (const unsigned char *)&x->near[i];
		x->near[i] = (uint16_t)(p[0] | p[1] << 8);
	}
	return 0;
}

int dedupidx_load(const char *path, struct dedupidx *x)
{
	memset(x, 0, sizeof *x);
	x->num_perm = 256;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		return error_errno("cannot open index '%s'", path);
	}
	unsigned char h[DEDUPIDX_HEADER];
	struct stat st;
	int ret = -1;
	uint64_t want = 0;
	if (fstat(fd, &st)) {
		error_errno("cannot stat index '%s'", path);
		goto out;
	}
	long r = read_full(fd, h, sizeof h);
	if (r < 0) {
		error_errno("cannot read index '%s'", path);
		goto out;
	}
	if (r < (long)sizeof h) {
		error("'%s': truncated index: header cut at byte %ld", path, r);
		goto out;
	}
	if (load_header(path, h, &st, x, &want))
		goto out;
	if (load_body(fd, path, h, want, x))
		goto out;
	ret = 0;
out:
	close(fd);
	if (ret)
		dedupidx_free(x);
	return ret;
}

static int put(FILE *f, const void *p, size_t n, XXH3_state_t *xs)
{
	if (xs)
		XXH3_64bits_update(xs, p, n);
	return fwrite(p, 1, n, f) == n ? 0 : -1;
}

int dedupidx_write(const char *path, const struct dedupidx *x)
{
	/* a reader refuses such a file: better not to write it */
	if (x->n_near && (x->scheme == DEDUPIDX_SCHEME_NONE || x->scheme > DEDUPIDX_SCHEME_UNKNOWN))
		return error("cannot write index '%s': %llu signatures of no known MinHash scheme",
			     path, (unsigned long long)x->n_near);
	/* a hidden temporary, registered so that a killed run leaves none (base/atomic.h) */
	struct atomic_stream as;
	if (atomic_fopen(&as, path))
		return -1;
	FILE *f = as.fp;
	int ret = -1;
	unsigned char h[DEDUPIDX_HEADER] = { 0 };
	XXH3_state_t *xs = XXH3_createState();
	XXH3_64bits_reset(xs);
	/* header first with a zero checksum, rewritten once the body checksum is known */
	if (put(f, h, sizeof h, NULL) || put(f, x->exact, 16 * x->n_exact, xs))
		goto fail;
	unsigned char chunk[4096];
	size_t nv = x->n_near * x->num_perm, k = 0;
	for (size_t i = 0; i < nv; i++) {
		chunk[k++] = (unsigned char)x->near[i];
		chunk[k++] = (unsigned char)(x->near[i] >> 8);
		if (k == sizeof chunk || i + 1 == nv) {
			if (put(f, chunk, k, xs))
				goto fail;
			k = 0;
		}
	}
	memcpy(h, idx_magic, 8);
	wr_u32le(h + 8, DEDUPIDX_VERSION);
	wr_u32le(h + 12, x->num_perm);
	wr_u32le(h + 16, 16);
	wr_u32le(h + 20, x->n_near ? x->scheme : DEDUPIDX_SCHEME_NONE);
	wr_u64le(h + 24, x->n_exact);
	wr_u64le(h + 32, x->n_near);
	wr_u64le(h + 48, XXH3_64bits_digest(xs));
	wr_u64le(h + 56, XXH3_64bits(h, 56));
	if (fseek(f, 0, SEEK_SET) || put(f, h, sizeof h, NULL))
		goto fail;
	ret = atomic_fclose(&as);	/* flushes, syncs and renames */
	goto out;
fail:
	error_errno("cannot write index '%s'", as.f.tmp);
	atomic_fabort(&as);
out:
	XXH3_freeState(xs);
	return ret;
}

int dedupidx_merge(struct dedupidx *a, const struct dedupidx *b, const char *what)
{
	if (!a->n_exact && !a->n_near)
		a->num_perm = b->num_perm;
	if (b->n_near && a->num_perm != b->num_perm)
		return error("'%s': signatures of %u values cannot join an index of %u", what,
			     b->num_perm, a->num_perm);
	if (b->n_near && a->n_near &&
	    (a->scheme != b->scheme || a->scheme == DEDUPIDX_SCHEME_UNKNOWN))
		return error("'%s': signatures of MinHash scheme '%s' cannot join signatures of scheme "
			     "'%s' (cp-hash --minhash)", what, dedupidx_scheme_name(b->scheme),
			     dedupidx_scheme_name(a->scheme));
	if (!a->n_near)
		a->scheme = b->scheme;
	/* linear merge of two sorted, distinct lists */
	unsigned char (*m)[16] = xreallocarray(NULL, a->n_exact + b->n_exact + 1, 16);
	uint64_t i = 0, j = 0, k = 0;
	while (i < a->n_exact || j < b->n_exact) {
		int c = i == a->n_exact ? 1 : j == b->n_exact ? -1 : memcmp(a->exact[i], b->exact[j], 16);
		if (c <= 0)
			memcpy(m[k++], a->exact[i++], 16);
		else
			memcpy(m[k++], b->exact[j++], 16);
		if (!c)
			j++;
	}
	free(a->exact);
	a->exact = m;
	a->n_exact = k;
	size_t per = a->num_perm;
	a->near = xreallocarray(a->near, (a->n_near + b->n_near) * per + 1, 2);
	memcpy(a->near + a->n_near * per, b->near, b->n_near * per * 2);
	a->n_near += b->n_near;
	return 0;
}
