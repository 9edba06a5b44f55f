/* dedupidx.c: cp-dedup's exact-hash set and its persistent, mergeable index file. */
#include "dedupidx.h"
#include "buf.h"
#include "die.h"
#include "io.h"
#include "xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* ---- exact set ---- */

#define SET_OLD 0x80000000u	/* the group was remembered from an index */
#define SET_LOAD 0.85

/* 20 bytes, no padding: count 0 marks an empty slot */
struct set_slot {
	unsigned char key[16];
	uint32_t count;
};

struct dedupset {
	struct set_slot *slot;
	size_t cap, n;
};

static size_t set_cap_for(size_t n)
{
	return (size_t)((double)n / SET_LOAD) + 16;
}

static void set_alloc(struct dedupset *s, size_t cap)
{
	s->cap = cap;
	s->n = 0;
	s->slot = xcalloc(cap, sizeof *s->slot);
}

/* home slot: the hash is uniform, so its first 8 bytes map straight onto [0, cap) */
static size_t set_home(const struct dedupset *s, const unsigned char *key)
{
	return (size_t)(((unsigned __int128)rd_u64le(key) * s->cap) >> 64);
}

static struct set_slot *set_find(const struct dedupset *s, const unsigned char *key)
{
	size_t i = set_home(s, key);
	for (;;) {
		struct set_slot *p = &s->slot[i];
		if (!p->count || !memcmp(p->key, key, 16))
			return p;
		if (++i == s->cap)
			i = 0;
	}
}

static void set_grow(struct dedupset *s)
{
	struct dedupset old = *s;
	set_alloc(s, old.cap + old.cap / 2);
	for (size_t i = 0; i < old.cap; i++)
		if (old.slot[i].count) {
			*set_find(s, old.slot[i].key) = old.slot[i];
			s->n++;
		}
	free(old.slot);
}

struct dedupset *dedupset_new(size_t expect)
{
	struct dedupset *s = xcalloc(1, sizeof *s);
	set_alloc(s, set_cap_for(expect));
	return s;
}

void dedupset_free(struct dedupset *s)
{
	if (s) {
		free(s->slot);
		free(s);
	}
}

int dedupset_add(struct dedupset *s, const unsigned char hash[16], int old)
{
	if ((double)(s->n + 1) > SET_LOAD * (double)s->cap)
		set_grow(s);
	struct set_slot *p = set_find(s, hash);
	if (p->count) {
		if (old)
			p->count |= SET_OLD;
		else if ((p->count & ~SET_OLD) < ~SET_OLD)
			p->count++;
		return 0;
	}
	memcpy(p->key, hash, 16);
	p->count = old ? SET_OLD : 1;
	s->n++;
	return 1;
}

size_t dedupset_size(const struct dedupset *s) { return s->n; }
size_t dedupset_bytes(const struct dedupset *s) { return s->cap * sizeof *s->slot; }

static int cmp_key(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

size_t dedupset_export(const struct dedupset *s, unsigned char (**out)[16])
{
	unsigned char (*v)[16] = xreallocarray(NULL, s->n ? s->n : 1, 16);
	size_t k = 0;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slot[i].count)
			memcpy(v[k++], s->slot[i].key, 16);
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
	for (size_t i = 0; i < s->cap; i++) {
		uint32_t c = s->slot[i].count & ~SET_OLD;
		if (c)
			v[k++] = c;
	}
	qsort(v, k, sizeof *v, cmp_desc);
	*out = v;
	return k;
}

/* ---- index file ---- */

static const char idx_magic[8] = { 'C', 'P', 'D', 'E', 'D', 'U', 'P', 0 };

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
	XXH3_state_t *xs = XXH3_createState();
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
	if (memcmp(h, idx_magic, 8)) {
		error("'%s': not a cp-dedup index (bad magic at offset 0)", path);
		goto out;
	}
	uint32_t version = rd_u32le(h + 8), sig_bits = rd_u32le(h + 16);
	if (XXH3_64bits(h, 56) != rd_u64le(h + 56)) {
		error("'%s': index header checksum mismatch at offset 56", path);
		goto out;
	}
	if (version > DEDUPIDX_VERSION || version == 0) {
		error("'%s': index version %u is newer than this cp-dedup understands (%u) at offset 8",
		      path, version, DEDUPIDX_VERSION);
		goto out;
	}
	x->num_perm = rd_u32le(h + 12);
	x->n_exact = rd_u64le(h + 24);
	x->n_near = rd_u64le(h + 32);
	if (sig_bits != 16 || !x->num_perm || x->num_perm > 65536) {
		error("'%s': unsupported signature shape (%u values of %u bits) at offset 12", path,
		      x->num_perm, sig_bits);
		goto out;
	}
	uint64_t want = DEDUPIDX_HEADER;
	if (x->n_exact > (UINT64_MAX - want) / 16 ||
	    x->n_near > (UINT64_MAX - want - 16 * x->n_exact) / (2ull * x->num_perm)) {
		error("'%s': impossible counts in index header at offset 24", path);
		goto out;
	}
	want += 16 * x->n_exact + 2ull * x->num_perm * x->n_near;
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size != want) {
		error("'%s': index is %llu bytes, its header says %llu (truncated or corrupt)",
		      path, (unsigned long long)st.st_size, (unsigned long long)want);
		goto out;
	}
	x->exact = xreallocarray(NULL, x->n_exact ? x->n_exact : 1, 16);
	x->near = xreallocarray(NULL, x->n_near ? x->n_near * x->num_perm : 1, 2);
	XXH3_64bits_reset(xs);
	if (load_part(fd, x->exact, 16 * x->n_exact, xs) ||
	    load_part(fd, x->near, 2 * x->num_perm * x->n_near, xs)) {
		error("'%s': truncated index (expected %llu bytes)", path, (unsigned long long)want);
		goto out;
	}
	if (XXH3_64bits_digest(xs) != rd_u64le(h + 48)) {
		error("'%s': index body checksum mismatch (bytes %d to %llu)", path, DEDUPIDX_HEADER,
		      (unsigned long long)want);
		goto out;
	}
	for (uint64_t i = 1; i < x->n_exact; i++)
		if (memcmp(x->exact[i - 1], x->exact[i], 16) >= 0) {
			error("'%s': exact hashes out of order at offset %llu", path,
			      (unsigned long long)(DEDUPIDX_HEADER + 16 * i));
			goto out;
		}
	/* stored little-endian; convert in place for big-endian hosts */
	for (uint64_t i = 0; i < x->n_near * x->num_perm; i++) {
		const unsigned char *p = (const unsigned char *)&x->near[i];
		x->near[i] = (uint16_t)(p[0] | p[1] << 8);
	}
	ret = 0;
out:
	XXH3_freeState(xs);
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
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "wb");
	int ret = -1;
	if (!f) {
		error_errno("cannot create '%s'", tmp);
		free(tmp);
		return -1;
	}
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
	wr_u64le(h + 24, x->n_exact);
	wr_u64le(h + 32, x->n_near);
	wr_u64le(h + 48, XXH3_64bits_digest(xs));
	wr_u64le(h + 56, XXH3_64bits(h, 56));
	if (fseek(f, 0, SEEK_SET) || put(f, h, sizeof h, NULL) || fflush(f) || fsync(fileno(f)))
		goto fail;
	if (fclose(f)) {
		f = NULL;
		goto fail;
	}
	f = NULL;
	if (rename(tmp, path)) {
		error_errno("cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
		goto out;
	}
	ret = 0;
	goto out;
fail:
	error_errno("cannot write index '%s'", tmp);
	if (f)
		fclose(f);
	unlink(tmp);
out:
	XXH3_freeState(xs);
	free(tmp);
	return ret;
}

int dedupidx_merge(struct dedupidx *a, const struct dedupidx *b, const char *what)
{
	if (!a->n_exact && !a->n_near)
		a->num_perm = b->num_perm;
	if (b->n_near && a->num_perm != b->num_perm)
		return error("'%s': signatures of %u values cannot join an index of %u", what,
			     b->num_perm, a->num_perm);
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
