/* bpe.c: the byte-level BPE vocabulary, merge table, encoder and decoder (see bpe.h).
 * Encoding follows HF tokenizers' model: each pre-tokenized piece starts as one token per
 * byte and the adjacent pair with the lowest merge rank (leftmost on ties) is merged until
 * no pair has a rank. Pieces repeat enormously in code, so each encoder remembers the ids of
 * the pieces it has seen. */
#include "tok/bpe.h"
#include "base/die.h"
#include "tok/pretok.h"
#include "base/utf8.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ------------------------------------------------------------ byte map */

static uint32_t bm_fwd[256];
static int16_t bm_rev[324];	/* every mapped code point is below 0x144 */
static int bm_ready;

static void bm_build(void)
{
	int n = 0;
	for (int b = 0; b < 256; b++) {
		int printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
		bm_fwd[b] = printable ? (uint32_t)b : (uint32_t)(256 + n++);
	}
	for (size_t i = 0; i < sizeof bm_rev / sizeof *bm_rev; i++)
		bm_rev[i] = -1;
	for (int b = 0; b < 256; b++)
		bm_rev[bm_fwd[b]] = (int16_t)b;
	__atomic_store_n(&bm_ready, 1, __ATOMIC_RELEASE);
}

static inline void bm_init(void)
{
	/* idempotent: racing threads compute the same tables */
	if (!__atomic_load_n(&bm_ready, __ATOMIC_ACQUIRE))
		bm_build();
}

uint32_t bpe_byte_to_cp(unsigned char b)
{
	bm_init();
	return bm_fwd[b];
}

int bpe_cp_to_byte(uint32_t cp)
{
	bm_init();
	return cp < sizeof bm_rev / sizeof *bm_rev ? bm_rev[cp] : -1;
}

void bpe_printable(struct buf *out, const unsigned char *s, size_t n)
{
	bm_init();
	buf_grow(out, 2 * n);
	for (size_t i = 0; i < n; i++)
		out->len += utf8_encode(out->p + out->len, bm_fwd[s[i]]);
}

/* ------------------------------------------------------------ tables */

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 31;
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	return x;
}

void u32vec_grow(struct u32vec *a, size_t extra)
{
	if (a->n + extra <= a->cap)
		return;
	size_t cap = a->cap ? a->cap : 16;
	while (cap < a->n + extra)
		cap *= 2;
	a->v = xreallocarray(a->v, cap, sizeof *a->v);
	a->cap = cap;
}

void bpe_init(struct bpe *m)
{
	memset(m, 0, sizeof *m);
	m->eot = BPE_NONE;
	for (int i = 0; i < 256; i++)
		m->byte_id[i] = BPE_NONE;
}

void bpe_free(struct bpe *m)
{
	buf_free(&m->str);
	free(m->off);
	free(m->len);
	free(m->special);
	free(m->merges);
	free(m->mkey);
	free(m->mval);
	free(m->sidx);
	memset(m, 0, sizeof *m);
}

static void str_rehash(struct bpe *m, size_t cap);

static size_t str_slot(const struct bpe *m, const void *s, size_t n)
{
	size_t mask = m->scap - 1, i = (size_t)XXH3_64bits(s, n) & mask;
	for (;; i = (i + 1) & mask) {
		uint32_t id = m->sidx[i];
		if (id == BPE_NONE || (m->len[id] == n && !memcmp(m->str.p + m->off[id], s, n)))
			return i;
	}
}

static void str_rehash(struct bpe *m, size_t cap)
{
	uint32_t *old = m->sidx;
	size_t oldcap = m->scap;
	m->sidx = xmalloc(cap * sizeof *m->sidx);
	memset(m->sidx, 0xff, cap * sizeof *m->sidx);
	m->scap = cap;
	for (size_t i = 0; i < oldcap; i++)
		if (old[i] != BPE_NONE) {
			size_t n;
			const unsigned char *s = bpe_tok(m, old[i], &n);
			m->sidx[str_slot(m, s, n)] = old[i];
		}
	free(old);
}

uint32_t bpe_find(const struct bpe *m, const void *s, size_t n)
{
	if (!m->scap)
		return BPE_NONE;
	return m->sidx[str_slot(m, s, n)];
}

int bpe_add_token(struct bpe *m, const void *s, size_t n, uint32_t id)
{
	if (id == BPE_NONE || n >= BPE_NONE)
		return -1;
	if (id >= m->cap_ids) {
		uint32_t cap = m->cap_ids ? m->cap_ids : 512;
		while (cap <= id)
			cap *= 2;
		m->off = xreallocarray(m->off, cap, sizeof *m->off);
		m->len = xreallocarray(m->len, cap, sizeof *m->len);
		m->special = xrealloc(m->special, cap);
		for (uint32_t i = m->cap_ids; i < cap; i++) {
			m->len[i] = BPE_NONE;
			m->off[i] = 0;
			m->special[i] = 0;
		}
		m->cap_ids = cap;
	}
	if (m->len[id] != BPE_NONE)
		return -1;
	if (2 * (m->scount + 1) > m->scap)
		str_rehash(m, m->scap ? 2 * m->scap : 1024);
	size_t slot = str_slot(m, s, n);
	if (m->sidx[slot] != BPE_NONE)
		return -1;
	m->off[id] = m->str.len;
	m->len[id] = (uint32_t)n;
	buf_put(&m->str, s, n);
	m->sidx[slot] = id;
	m->scount++;
	if (id >= m->n_ids)
		m->n_ids = id + 1;
	return 0;
}

static size_t merge_slot(const struct bpe *m, uint64_t key)
{
	size_t mask = m->mcap - 1, i = (size_t)mix64(key) & mask;
	while (m->mkey[i] != UINT64_MAX && m->mkey[i] != key)
		i = (i + 1) & mask;
	return i;
}

static void merge_rehash(struct bpe *m, size_t cap)
{
	uint64_t *ok = m->mkey, *ov = m->mval;
	size_t oc = m->mcap;
	m->mkey = xmalloc(cap * sizeof *m->mkey);
	m->mval = xmalloc(cap * sizeof *m->mval);
	memset(m->mkey, 0xff, cap * sizeof *m->mkey);
	m->mcap = cap;
	for (size_t i = 0; i < oc; i++)
		if (ok[i] != UINT64_MAX) {
			size_t s = merge_slot(m, ok[i]);
			m->mkey[s] = ok[i];
			m->mval[s] = ov[i];
		}
	free(ok);
	free(ov);
}

void bpe_add_merge(struct bpe *m, uint32_t a, uint32_t b, uint32_t id)
{
	if (m->n_merges == m->cap_merges) {
		m->cap_merges = m->cap_merges ? 2 * m->cap_merges : 1024;
		m->merges = xreallocarray(m->merges, m->cap_merges, sizeof *m->merges);
	}
	uint32_t rank = m->n_merges;
	m->merges[m->n_merges++] = (struct bpe_merge){ a, b, id };
	if (4 * (m->mcount + 1) > 3 * m->mcap)
		merge_rehash(m, m->mcap ? 2 * m->mcap : 4096);
	uint64_t key = (uint64_t)a << 32 | b;
	size_t s = merge_slot(m, key);
	if (m->mkey[s] == UINT64_MAX)
		m->mcount++;
	m->mkey[s] = key;
	m->mval[s] = (uint64_t)rank << 32 | id;
}

uint64_t bpe_merge_lookup(const struct bpe *m, uint32_t a, uint32_t b)
{
	if (!m->mcap)
		return UINT64_MAX;
	size_t s = merge_slot(m, (uint64_t)a << 32 | b);
	return m->mkey[s] == UINT64_MAX ? UINT64_MAX : m->mval[s];
}

int bpe_finish(struct bpe *m, const char *what)
{
	for (int b = 0; b < 256; b++) {
		unsigned char c = (unsigned char)b;
		m->byte_id[b] = bpe_find(m, &c, 1);
		if (m->byte_id[b] == BPE_NONE)
			return error("'%s': no token for byte 0x%02x: not a byte-level BPE vocabulary",
				     what, b);
	}
	m->eot = bpe_find(m, BPE_EOT, strlen(BPE_EOT));
	if (m->eot != BPE_NONE)
		m->special[m->eot] = 1;	/* GPT-2's files list it as an ordinary token */
	return 0;
}

int bpe_decode(const struct bpe *m, const uint32_t *ids, size_t n, struct buf *out, size_t *bad)
{
	for (size_t i = 0; i < n; i++) {
		if (ids[i] >= m->n_ids || m->len[ids[i]] == BPE_NONE) {
			if (bad)
				*bad = i;
			return -1;
		}
		buf_put(out, m->str.p + m->off[ids[i]], m->len[ids[i]]);
	}
	return 0;
}

/* ------------------------------------------------------------ piece encoding */

static inline uint32_t rank_of(const struct bpe *m, uint32_t a, uint32_t b, uint32_t *id)
{
	uint64_t v = bpe_merge_lookup(m, a, b);
	if (v == UINT64_MAX)
		return BPE_NONE;
	*id = (uint32_t)v;
	return (uint32_t)(v >> 32);
}

/* Quadratic but tight: best for the short pieces that make up nearly all text. */
static void encode_scan(const struct bpe *m, const unsigned char *s, size_t n, struct u32vec *out)
{
	uint32_t symbuf[64], rkbuf[64], nidbuf[64];
	uint32_t *sym = n <= 64 ? symbuf : xmalloc(n * sizeof *sym);
	uint32_t *rk = n <= 64 ? rkbuf : xmalloc(n * sizeof *rk);
	uint32_t *nid = n <= 64 ? nidbuf : xmalloc(n * sizeof *nid);
	size_t k = n;
	for (size_t i = 0; i < n; i++)
		sym[i] = m->byte_id[s[i]];
	for (size_t i = 0; i + 1 < k; i++)
		rk[i] = rank_of(m, sym[i], sym[i + 1], &nid[i]);
	while (k > 1) {
		uint32_t best = BPE_NONE;
		size_t bi = 0;
		for (size_t i = 0; i + 1 < k; i++)
			if (rk[i] < best) {
				best = rk[i];
				bi = i;
			}
		if (best == BPE_NONE)
			break;
		sym[bi] = nid[bi];
		memmove(sym + bi + 1, sym + bi + 2, (k - bi - 2) * sizeof *sym);
		/* pairs after the merged one shift left by one; two are recomputed below */
		size_t tail = k >= bi + 3 ? k - bi - 3 : 0;
		memmove(rk + bi + 1, rk + bi + 2, tail * sizeof *rk);
		memmove(nid + bi + 1, nid + bi + 2, tail * sizeof *nid);
		k--;
		if (bi > 0)
			rk[bi - 1] = rank_of(m, sym[bi - 1], sym[bi], &nid[bi - 1]);
		if (bi + 1 < k)
			rk[bi] = rank_of(m, sym[bi], sym[bi + 1], &nid[bi]);
	}
	u32vec_grow(out, k);
	memcpy(out->v + out->n, sym, k * sizeof *sym);
	out->n += k;
	if (n > 64) {
		free(sym);
		free(rk);
		free(nid);
	}
}

/* min-heap of rank << 32 | position */
static void heap_push(uint64_t *h, size_t *n, uint64_t v)
{
	size_t i = (*n)++;
	while (i && h[(i - 1) / 2] > v) {
		h[i] = h[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h[i] = v;
}

static uint64_t heap_pop(uint64_t *h, size_t *n)
{
	uint64_t top = h[0], v = h[--*n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && h[c + 1] < h[c])
			c++;
		if (h[c] >= v)
			break;
		h[i] = h[c];
		i = c;
	}
	if (*n)
		h[i] = v;
	return top;
}

/* O(n log n) for long pieces (runs of spaces, long literals): a linked list of symbols and
 * a heap of candidate merges, stale entries skipped when popped. */
static void encode_heap(const struct bpe *m, const unsigned char *s, size_t n, struct u32vec *out)
{
	uint32_t *sym = xmalloc(n * sizeof *sym);
	uint32_t *next = xmalloc(n * sizeof *next), *prev = xmalloc(n * sizeof *prev);
	unsigned char *dead = xcalloc(n, 1);
	uint64_t *h = xmalloc(3 * n * sizeof *h);
	size_t hn = 0;
	uint32_t id;
	for (size_t i = 0; i < n; i++) {
		sym[i] = m->byte_id[s[i]];
		next[i] = i + 1 < n ? (uint32_t)(i + 1) : BPE_NONE;
		prev[i] = i ? (uint32_t)(i - 1) : BPE_NONE;
	}
	for (size_t i = 0; i + 1 < n; i++) {
		uint32_t r = rank_of(m, sym[i], sym[i + 1], &id);
		if (r != BPE_NONE)
			heap_push(h, &hn, (uint64_t)r << 32 | i);
	}
	while (hn) {
		uint64_t top = heap_pop(h, &hn);
		uint32_t r = (uint32_t)(top >> 32), p = (uint32_t)top;
		if (dead[p] || next[p] == BPE_NONE)
			continue;
		uint32_t q = next[p];
		if (rank_of(m, sym[p], sym[q], &id) != r)
			continue;
		sym[p] = id;
		dead[q] = 1;
		next[p] = next[q];
		if (next[q] != BPE_NONE)
			prev[next[q]] = p;
		if (prev[p] != BPE_NONE) {
			uint32_t r2 = rank_of(m, sym[prev[p]], sym[p], &id);
			if (r2 != BPE_NONE)
				heap_push(h, &hn, (uint64_t)r2 << 32 | prev[p]);
		}
		if (next[p] != BPE_NONE) {
			uint32_t r2 = rank_of(m, sym[p], sym[next[p]], &id);
			if (r2 != BPE_NONE)
				heap_push(h, &hn, (uint64_t)r2 << 32 | p);
		}
	}
	for (uint32_t i = 0; i != BPE_NONE; i = next[i])
		u32vec_push(out, sym[i]);
	free(sym);
	free(next);
	free(prev);
	free(dead);
	free(h);
}

void bpe_encode_piece(const struct bpe *m, const unsigned char *s, size_t n, int heap,
		      struct u32vec *out)
{
	if (!n)
		return;
	if (n == 1) {
		u32vec_push(out, m->byte_id[s[0]]);
		return;
	}
	if (heap)
		encode_heap(m, s, n, out);
	else
		encode_scan(m, s, n, out);
}

/* ------------------------------------------------------------ encoder with cache */

#define CACHE_MAX_PIECE 256		/* longer pieces are rare; not worth remembering */
#define CACHE_MAX_ENTRIES (1u << 20)	/* then start afresh, bounding memory */

struct cache_ent {
	uint64_t hash;
	uint32_t soff, slen;	/* piece bytes in e->bytes */
	uint32_t ioff, nids;	/* ids in e->ids */
};

struct bpe_encoder {
	const struct bpe *m;
	struct cache_ent *tab;
	size_t cap, count;
	struct buf bytes;
	struct u32vec ids;
	size_t n_special;
	uint32_t *special;	/* ids of added special tokens, for special-aware encoding */
};

static void cache_clear(struct bpe_encoder *e)
{
	for (size_t i = 0; i < e->cap; i++)
		e->tab[i].slen = BPE_NONE;
	e->count = 0;
	buf_reset(&e->bytes);
	e->ids.n = 0;
}

struct bpe_encoder *bpe_encoder_new(const struct bpe *m)
{
	struct bpe_encoder *e = xcalloc(1, sizeof *e);
	e->m = m;
	e->cap = 1 << 16;
	e->tab = xmalloc(e->cap * sizeof *e->tab);
	cache_clear(e);
	for (uint32_t id = 0; id < m->n_ids; id++)
		if (m->special[id] && m->len[id] != BPE_NONE && m->len[id]) {
			e->special = xreallocarray(e->special, e->n_special + 1, sizeof *e->special);
			e->special[e->n_special++] = id;
		}
	return e;
}

void bpe_encoder_free(struct bpe_encoder *e)
{
	if (!e)
		return;
	free(e->tab);
	buf_free(&e->bytes);
	free(e->ids.v);
	free(e->special);
	free(e);
}

static void cache_grow(struct bpe_encoder *e)
{
	struct cache_ent *old = e->tab;
	size_t oc = e->cap;
	e->cap *= 2;
	e->tab = xmalloc(e->cap * sizeof *e->tab);
	for (size_t i = 0; i < e->cap; i++)
		e->tab[i].slen = BPE_NONE;
	for (size_t i = 0; i < oc; i++)
		if (old[i].slen != BPE_NONE) {
			size_t j = (size_t)old[i].hash & (e->cap - 1);
			while (e->tab[j].slen != BPE_NONE)
				j = (j + 1) & (e->cap - 1);
			e->tab[j] = old[i];
		}
	free(old);
}

static void encode_cached(struct bpe_encoder *e, const unsigned char *s, size_t n,
			  struct u32vec *out)
{
	if (n == 1) {
		u32vec_push(out, e->m->byte_id[s[0]]);
		return;
	}
	if (n > CACHE_MAX_PIECE) {
		bpe_encode_piece(e->m, s, n, 1, out);
		return;
	}
	uint64_t h = XXH3_64bits(s, n);
	size_t mask = e->cap - 1, j = (size_t)h & mask;
	for (; e->tab[j].slen != BPE_NONE; j = (j + 1) & mask) {
		struct cache_ent *c = &e->tab[j];
		if (c->hash == h && c->slen == n && !memcmp(e->bytes.p + c->soff, s, n)) {
			u32vec_grow(out, c->nids);
			memcpy(out->v + out->n, e->ids.v + c->ioff, c->nids * sizeof(uint32_t));
			out->n += c->nids;
			return;
		}
	}
	size_t start = out->n;
	bpe_encode_piece(e->m, s, n, 0, out);
	if (e->count >= CACHE_MAX_ENTRIES || e->bytes.len + n >= UINT32_MAX / 2) {
		cache_clear(e);
		j = (size_t)h & mask;
	} else if (2 * (e->count + 1) > e->cap) {
		cache_grow(e);
		mask = e->cap - 1;
		j = (size_t)h & mask;
		while (e->tab[j].slen != BPE_NONE)
			j = (j + 1) & mask;
	}
	struct cache_ent *c = &e->tab[j];
	c->hash = h;
	c->soff = (uint32_t)e->bytes.len;
	c->slen = (uint32_t)n;
	c->ioff = (uint32_t)e->ids.n;
	c->nids = (uint32_t)(out->n - start);
	buf_put(&e->bytes, s, n);
	u32vec_grow(&e->ids, c->nids);
	memcpy(e->ids.v + e->ids.n, out->v + start, c->nids * sizeof(uint32_t));
	e->ids.n += c->nids;
	e->count++;
}

static void encode_ordinary(struct bpe_encoder *e, const unsigned char *s, size_t n,
			    struct u32vec *out)
{
	size_t i = 0;
	while (i < n) {
		size_t l = pretok_piece(s + i, n - i);
		encode_cached(e, s + i, l, out);
		i += l;
	}
}

void bpe_encode(struct bpe_encoder *e, const unsigned char *s, size_t n, int special,
		struct u32vec *out)
{
	if (!special || !e->n_special) {
		encode_ordinary(e, s, n, out);
		return;
	}
	size_t i = 0;
	while (i < n) {
		/* the earliest special token in the rest of the text, the longest where two start
		 * at the same place */
		const unsigned char *best = NULL;
		uint32_t best_id = BPE_NONE;
		size_t best_len = 0;
		for (size_t k = 0; k < e->n_special; k++) {
			size_t tl;
			const unsigned char *t = bpe_tok(e->m, e->special[k], &tl);
			const unsigned char *f = memmem(s + i, n - i, t, tl);
			if (f && (!best || f < best || (f == best && tl > best_len))) {
				best = f;
				best_id = e->special[k];
				best_len = tl;
			}
		}
		size_t stop = best ? (size_t)(best - s) : n;
		encode_ordinary(e, s + i, stop - i, out);
		if (!best)
			break;
		u32vec_push(out, best_id);
		i = stop + best_len;
	}
}
