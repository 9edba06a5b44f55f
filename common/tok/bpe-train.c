/* bpe-train.c: the BPE trainer. The algorithm and its tie-breaking are those of HF tokenizers'
 * BpeTrainer, so that the same pieces give the same merges:
 *   ids: <|endoftext|> first, then the 256 bytes in the order of their printable characters,
 *   then one id per new token string (a merge that spells an existing string reuses its id);
 *   each step takes the pair with the highest count, ties going to the smallest (left id,
 *   right id); counts come from a max-heap updated lazily (a popped entry whose count is stale
 *   is pushed back with the current count); a merge is applied only to the words that the
 *   heap entry lists, and the neighbouring pair counts change incrementally.
 * Counting pieces is parallel (one counter per thread, folded in a fixed order); the merge
 * loop is sequential, so the result never depends on the thread count. */
#include "tok/bpe.h"
#include "base/die.h"
#include "tok/pretok.h"
#include "base/xalloc.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* ------------------------------------------------------------ piece counter */

struct cnt_ent {
	uint64_t hash, count, off;
	uint32_t len;
	uint32_t used;
};

struct bpe_counter {
	struct cnt_ent *tab;
	size_t cap, n;
	struct buf bytes;
};

struct bpe_counter *bpe_counter_new(void)
{
	struct bpe_counter *c = xcalloc(1, sizeof *c);
	c->cap = 1 << 12;
	c->tab = xcalloc(c->cap, sizeof *c->tab);
	return c;
}

void bpe_counter_free(struct bpe_counter *c)
{
	if (!c)
		return;
	free(c->tab);
	buf_free(&c->bytes);
	free(c);
}

size_t bpe_counter_size(const struct bpe_counter *c)
{
	return c->n;
}

static void cnt_grow(struct bpe_counter *c)
{
	struct cnt_ent *old = c->tab;
	size_t oc = c->cap;
	c->cap *= 2;
	c->tab = xcalloc(c->cap, sizeof *c->tab);
	for (size_t i = 0; i < oc; i++)
		if (old[i].used) {
			size_t j = (size_t)old[i].hash & (c->cap - 1);
			while (c->tab[j].used)
				j = (j + 1) & (c->cap - 1);
			c->tab[j] = old[i];
		}
	free(old);
}

static void cnt_add(struct bpe_counter *c, const unsigned char *s, size_t n, uint64_t h,
		    uint64_t k)
{
	size_t mask = c->cap - 1, j = (size_t)h & mask;
	for (; c->tab[j].used; j = (j + 1) & mask) {
		struct cnt_ent *e = &c->tab[j];
		if (e->hash == h && e->len == n && !memcmp(c->bytes.p + e->off, s, n)) {
			e->count += k;
			return;
		}
	}
	struct cnt_ent *e = &c->tab[j];
	e->used = 1;
	e->hash = h;
	e->count = k;
	e->len = (uint32_t)n;
	e->off = c->bytes.len;
	buf_put(&c->bytes, s, n);
	if (2 * ++c->n > c->cap)
		cnt_grow(c);
}

void bpe_counter_add(struct bpe_counter *c, const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		size_t l = pretok_piece(s + i, n - i);
		if (l >= UINT32_MAX)
			l = UINT32_MAX - 1;	/* a 4 GB run of one class: count it in parts */
		cnt_add(c, s + i, l, XXH3_64bits(s + i, l), 1);
		i += l;
	}
}

void bpe_counter_merge(struct bpe_counter *dst, struct bpe_counter *src)
{
	for (size_t i = 0; i < src->cap; i++)
		if (src->tab[i].used)
			cnt_add(dst, src->bytes.p + src->tab[i].off, src->tab[i].len, src->tab[i].hash,
				src->tab[i].count);
	memset(src->tab, 0, src->cap * sizeof *src->tab);
	src->n = 0;
	buf_reset(&src->bytes);
}

/* ------------------------------------------------------------ pair map */

/* pair (a << 32 | b) -> signed count, open addressing */
struct pmap {
	uint64_t *key;
	int64_t *val;
	size_t cap, n;
};

static inline size_t pm_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	return (size_t)k;
}

static void pm_init(struct pmap *m, size_t cap)
{
	m->cap = cap;
	m->n = 0;
	m->key = xmalloc(cap * sizeof *m->key);
	m->val = xmalloc(cap * sizeof *m->val);
	memset(m->key, 0xff, cap * sizeof *m->key);
}

static void pm_free(struct pmap *m)
{
	free(m->key);
	free(m->val);
}

static int64_t *pm_slot(struct pmap *m, uint64_t k);

static void pm_grow(struct pmap *m)
{
	struct pmap o = *m;
	pm_init(m, o.cap * 2);
	for (size_t i = 0; i < o.cap; i++)
		if (o.key[i] != UINT64_MAX)
			*pm_slot(m, o.key[i]) = o.val[i];
	pm_free(&o);
}

/* the value for k, inserted as 0 when new */
static int64_t *pm_slot(struct pmap *m, uint64_t k)
{
	size_t mask = m->cap - 1, j = pm_hash(k) & mask;
	while (m->key[j] != UINT64_MAX) {
		if (m->key[j] == k)
			return &m->val[j];
		j = (j + 1) & mask;
	}
	if (2 * (m->n + 1) > m->cap) {
		pm_grow(m);
		return pm_slot(m, k);
	}
	m->key[j] = k;
	m->val[j] = 0;
	m->n++;
	return &m->val[j];
}

/* ------------------------------------------------------------ words to update */

/* pair -> list of words (each at most once), in order of first appearance. The index is
 * emptied every merge step, so its slots carry a generation number instead of being wiped. */
struct wlist {
	uint64_t pair;
	uint32_t *w;
	size_t n, cap;
};

struct wtu {
	uint64_t *key;
	uint32_t *gen, *val;	/* val: index in lists */
	uint32_t cur;
	size_t cap;
	struct wlist *lists;
	size_t n, lcap;
};

static void wtu_init(struct wtu *u, size_t cap)
{
	u->cap = cap;
	u->key = xmalloc(cap * sizeof *u->key);
	u->val = xmalloc(cap * sizeof *u->val);
	u->gen = xcalloc(cap, sizeof *u->gen);
	u->cur = 1;
}

static void wtu_free(struct wtu *u)
{
	free(u->key);
	free(u->val);
	free(u->gen);
	free(u->lists);
}

static uint32_t *wtu_slot(struct wtu *u, uint64_t pair, int *isnew)
{
	size_t mask = u->cap - 1, j = pm_hash(pair) & mask;
	while (u->gen[j] == u->cur) {
		if (u->key[j] == pair) {
			*isnew = 0;
			return &u->val[j];
		}
		j = (j + 1) & mask;
	}
	*isnew = 1;
	u->gen[j] = u->cur;
	u->key[j] = pair;
	return &u->val[j];
}

static void wtu_rehash(struct wtu *u)
{
	struct wtu o = *u;
	wtu_init(u, 2 * o.cap);
	u->lists = o.lists;
	u->n = o.n;
	u->lcap = o.lcap;
	for (size_t i = 0; i < u->n; i++) {
		int isnew;
		*wtu_slot(u, u->lists[i].pair, &isnew) = (uint32_t)i;
	}
	free(o.key);
	free(o.val);
	free(o.gen);
}

static void wtu_add(struct wtu *u, uint64_t pair, uint32_t w)
{
	int isnew;
	uint32_t *slot = wtu_slot(u, pair, &isnew);
	if (isnew) {
		if (u->n == u->lcap)
			u->lists = xreallocarray(u->lists, u->lcap = u->lcap ? 2 * u->lcap : 1024,
						 sizeof *u->lists);
		u->lists[u->n] = (struct wlist){ pair, NULL, 0, 0 };
		*slot = (uint32_t)u->n++;
		if (2 * u->n > u->cap) {
			wtu_rehash(u);
			slot = wtu_slot(u, pair, &isnew);
		}
	}
	struct wlist *l = &u->lists[*slot];
	if (l->n && l->w[l->n - 1] == w)
		return;
	if (l->n == l->cap)
		l->w = xreallocarray(l->w, l->cap = l->cap ? 2 * l->cap : 4, sizeof *l->w);
	l->w[l->n++] = w;
}

static void wtu_clear(struct wtu *u)
{
	u->n = 0;
	if (++u->cur == 0) {	/* wrapped: wipe once */
		memset(u->gen, 0, u->cap * sizeof *u->gen);
		u->cur = 1;
	}
}

/* ------------------------------------------------------------ heap */

struct hent {
	uint64_t count;
	uint64_t pair;
	uint32_t *w;	/* the words to merge in */
	size_t nw;
};

/* does x come out of the heap before y? more count first, then the smaller pair */
static inline int h_before(const struct hent *x, const struct hent *y)
{
	return x->count != y->count ? x->count > y->count : x->pair < y->pair;
}

struct heap {
	struct hent *e;
	size_t n, cap;
};

static void h_push(struct heap *h, struct hent v)
{
	if (h->n == h->cap)
		h->e = xreallocarray(h->e, h->cap = h->cap ? 2 * h->cap : 4096, sizeof *h->e);
	size_t i = h->n++;
	while (i && h_before(&v, &h->e[(i - 1) / 2])) {
		h->e[i] = h->e[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->e[i] = v;
}

static struct hent h_pop(struct heap *h)
{
	struct hent top = h->e[0], v = h->e[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h_before(&h->e[c + 1], &h->e[c]))
			c++;
		if (!h_before(&h->e[c], &v))
			break;
		h->e[i] = h->e[c];
		i = c;
	}
	if (h->n)
		h->e[i] = v;
	return top;
}

/* ------------------------------------------------------------ training */

struct words {
	uint32_t *sym;		/* all words' symbols */
	uint64_t *start;
	uint32_t *len;
	uint64_t *count;
	size_t n;
};

struct sort_key {
	uint64_t hash;
	const unsigned char *s;
	uint32_t len;
	uint64_t count;
};

static int cmp_key(const void *a, const void *b)
{
	const struct sort_key *x = a, *y = b;
	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->s, y->s, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int cmp_byte_cp(const void *a, const void *b)
{
	uint32_t x = bpe_byte_to_cp(*(const unsigned char *)a);
	uint32_t y = bpe_byte_to_cp(*(const unsigned char *)b);
	return (x > y) - (x < y);
}

static inline uint64_t pk(uint32_t a, uint32_t b)
{
	return (uint64_t)a << 32 | b;
}

/* merge (a, b) -> id in word w as HF's Word::merge does, reporting the pair changes */
static void merge_word(struct words *W, uint32_t w, uint32_t a, uint32_t b, uint32_t id,
		       struct pmap *pc, struct wtu *u)
{
	uint32_t *s = W->sym + W->start[w];
	uint32_t n = W->len[w];
	int64_t c = (int64_t)W->count[w];
	for (uint32_t i = 0; i + 1 < n; i++) {
		if (s[i] != a || s[i + 1] != b)
			continue;
		if (i > 0) {
			*pm_slot(pc, pk(s[i - 1], a)) -= c;
			*pm_slot(pc, pk(s[i - 1], id)) += c;
			wtu_add(u, pk(s[i - 1], id), w);
		}
		s[i] = id;
		memmove(s + i + 1, s + i + 2, (n - i - 2) * sizeof *s);
		n--;
		if (i + 1 < n) {
			*pm_slot(pc, pk(b, s[i + 1])) -= c;
			*pm_slot(pc, pk(id, s[i + 1])) += c;
			wtu_add(u, pk(id, s[i + 1]), w);
		}
	}
	W->len[w] = n;
}

static void push_lists(struct heap *h, struct wtu *u, struct pmap *pc)
{
	for (size_t i = 0; i < u->n; i++) {
		struct wlist *l = &u->lists[i];
		int64_t cnt = *pm_slot(pc, l->pair);
		if (cnt > 0)
			h_push(h, (struct hent){ (uint64_t)cnt, l->pair, l->w, l->n });
		else
			free(l->w);
		l->w = NULL;
		l->n = l->cap = 0;
	}
	wtu_clear(u);
}

/* 1-2. the special token, then the byte alphabet in HF's order */
static void add_alphabet(struct bpe *m)
{
	bpe_add_token(m, BPE_EOT, strlen(BPE_EOT), 0);
	unsigned char bytes[256];
	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	qsort(bytes, 256, 1, cmp_byte_cp);
	for (int i = 0; i < 256; i++)
		bpe_add_token(m, &bytes[i], 1, (uint32_t)(i + 1));
	bpe_finish(m, "trainer");
}

/* 3. the counted words in a fixed order (by hash, then bytes), as byte ids: indices never
 * depend on threads */
static void words_build(struct words *W, const struct bpe *m, const struct bpe_counter *c)
{
	struct sort_key *keys = xmalloc((c->n ? c->n : 1) * sizeof *keys);
	size_t nk = 0, total = 0;
	for (size_t i = 0; i < c->cap; i++)
		if (c->tab[i].used) {
			keys[nk++] = (struct sort_key){ c->tab[i].hash, c->bytes.p + c->tab[i].off,
							c->tab[i].len, c->tab[i].count };
			total += c->tab[i].len;
		}
	qsort(keys, nk, sizeof *keys, cmp_key);
	W->n = nk;
	W->sym = xmalloc((total ? total : 1) * sizeof *W->sym);
	W->start = xmalloc((nk ? nk : 1) * sizeof *W->start);
	W->len = xmalloc((nk ? nk : 1) * sizeof *W->len);
	W->count = xmalloc((nk ? nk : 1) * sizeof *W->count);
	size_t off = 0;
	for (size_t i = 0; i < nk; i++) {
		W->start[i] = off;
		W->len[i] = keys[i].len;
		W->count[i] = keys[i].count;
		for (uint32_t k = 0; k < keys[i].len; k++)
			W->sym[off++] = m->byte_id[keys[i].s[k]];
	}
	free(keys);
}

/* 4. count pairs, listing the words each appears in */
static void count_pairs(struct words *W, struct pmap *pc, struct wtu *u, struct heap *h)
{
	pm_init(pc, 1 << 16);
	wtu_init(u, 1 << 16);
	for (size_t w = 0; w < W->n; w++) {
		uint32_t *s = W->sym + W->start[w];
		for (uint32_t i = 0; i + 1 < W->len[w]; i++) {
			*pm_slot(pc, pk(s[i], s[i + 1])) += (int64_t)W->count[w];
			wtu_add(u, pk(s[i], s[i + 1]), (uint32_t)w);
		}
	}
	push_lists(h, u, pc);
}

/* one merge: the pair TOP becomes a token (or an existing one), in every word that has it */
static void merge_pair(struct bpe *m, struct words *W, struct hent *top, struct pmap *pc,
		       struct wtu *u, struct heap *h, struct buf *tok)
{
	uint32_t a = (uint32_t)(top->pair >> 32), b = (uint32_t)top->pair;
	size_t la, lb;
	const unsigned char *sa = bpe_tok(m, a, &la), *sb;
	buf_reset(tok);
	buf_put(tok, sa, la);
	sb = bpe_tok(m, b, &lb);
	buf_put(tok, sb, lb);
	uint32_t id = bpe_find(m, tok->p, tok->len);
	if (id == BPE_NONE) {
		id = m->n_ids;
		bpe_add_token(m, tok->p, tok->len, id);
	}
	bpe_add_merge(m, a, b, id);
	for (size_t i = 0; i < top->nw; i++)
		merge_word(W, top->w[i], a, b, id, pc, u);
	free(top->w);
	push_lists(h, u, pc);
}

void bpe_train(struct bpe *m, struct bpe_counter *c, const struct bpe_train_opts *o)
{
	double t0 = mono_now();
	add_alphabet(m);
	struct words W;
	words_build(&W, m, c);
	struct pmap pc;
	struct wtu u = { 0 };
	struct heap h = { 0 };
	count_pairs(&W, &pc, &u, &h);
	if (o->progress)
		fprintf(stderr, "cp-bpe: %zu distinct pieces, %zu pairs (%.1f s)\n", W.n, pc.n,
			mono_now() - t0);

	/* 5. merges, the most frequent pair first (stale heap entries re-pushed) */
	struct buf tok = { 0 };
	double last = mono_now();
	while (m->scount < o->vocab_size && h.n) {
		struct hent top = h_pop(&h);
		int64_t cur = *pm_slot(&pc, top.pair);
		if (top.count != (uint64_t)cur) {
			top.count = (uint64_t)cur;
			h_push(&h, top);
			continue;
		}
		if (top.count < 1 || top.count < o->min_freq) {
			free(top.w);
			break;
		}
		merge_pair(m, &W, &top, &pc, &u, &h, &tok);
		if (o->progress && mono_now() - last > 1) {
			last = mono_now();
			fprintf(stderr, "\rcp-bpe: %zu / %u tokens", m->scount, o->vocab_size);
		}
	}
	if (o->progress)
		fprintf(stderr, "\rcp-bpe: %zu tokens, %u merges (%.1f s)\n", m->scount, m->n_merges,
			mono_now() - t0);
	for (size_t i = 0; i < h.n; i++)
		free(h.e[i].w);
	free(h.e);
	buf_free(&tok);
	pm_free(&pc);
	wtu_free(&u);
	free(W.sym);
	free(W.start);
	free(W.len);
	free(W.count);
}
