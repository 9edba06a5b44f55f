/* dist.c: cp-dedup's pass 1 over ranks (dist.h). */
#include "dedup/dist.h"
#include "base/die.h"
#include "base/ranks.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "shard/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPERM DEDUP_NPERM
#define NO_ID UINT32_MAX
#define SIG_BYTES (NPERM * sizeof(uint16_t))

/* ---- who holds what ---- */

/* The rank of an exact hash: by its first 32 bits, so the ranks' sorted hashes, one after
 * the other in rank order, are all of them sorted (the index's order). */
static int hash_rank(const unsigned char h[16], int n)
{
	uint32_t v = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	return (int)(((uint64_t)v * (uint64_t)n) >> 32);
}

/* The rank of a band key (keys are hashes already). */
static int key_rank(uint64_t key, int n)
{
	return (int)(((key >> 32) * (uint64_t)n) >> 32);
}

static uint64_t share(uint64_t total, int r, int n)
{
	return total * (uint64_t)r / (uint64_t)n;
}

/* The ranges of signature ids the ranks hold: rank r the index's [oldb[r], oldb[r + 1]) and
 * the inputs' [newb[r], newb[r + 1]). */
struct owners {
	int n;
	uint64_t *oldb, *newb;
	uint64_t n_old;
};

static int range_rank(const uint64_t *b, int n, uint64_t id)
{
	int lo = 0, hi = n;	/* the last r with b[r] <= id */
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (b[mid] <= id)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static int sig_rank(const struct owners *o, uint64_t id)
{
	return id < o->n_old ? range_rank(o->oldb, o->n, id) : range_rank(o->newb, o->n, id);
}

/* Where this rank keeps what it holds of ID (one it holds): its signature, its label */
static size_t own_at(const struct dedup_dist *d, uint64_t id)
{
	return (size_t)(id < d->new_lo ? id - d->old_lo : (d->old_hi - d->old_lo) + id - d->new_lo);
}

/* The id of what this rank keeps at I */
static uint32_t own_id(const struct dedup_dist *d, size_t i)
{
	uint64_t held_old = d->old_hi - d->old_lo;
	return (uint32_t)(i < held_old ? d->old_lo + i : d->new_lo + (i - held_old));
}

static const uint16_t *own_sig(const struct dedup_dist *d, uint64_t id)
{
	return d->sig + own_at(d, id) * NPERM;
}

static int owns(const struct dedup_dist *d, uint64_t id)
{
	return (id >= d->old_lo && id < d->old_hi) || (id >= d->new_lo && id < d->new_lo + d->n_new);
}

/* A rank that would hold more than --max-mem says so, and all stop. */
static int over_budget(const struct dedup_state *s, uint64_t bytes, const char *what)
{
	const struct dedup_dist *d = s->dist;
	int over = d->max_mem && bytes > d->max_mem;
	if (over) {
		int q = cp_quiet;
		cp_quiet = 0;
		error("rank %d of %d would hold %llu bytes for %s, over --max-mem %llu: run more "
		      "ranks (mpirun -np), raise --max-mem%s", ranks_me(), d->ranks,
		      (unsigned long long)bytes, what, (unsigned long long)d->max_mem,
		      s->cfg.near ? ", or leave near dedup out (--no-near)" : "");
		cp_quiet = q;
	}
	return ranks_any(over) ? -1 : 0;
}

static struct buf *bufs(int n)
{
	return xcalloc((size_t)n, sizeof(struct buf));
}

static void bufs_free(struct buf *b, int n)
{
	for (int i = 0; i < n; i++)
		buf_free(&b[i]);
	free(b);
}

/* ---- the state ---- */

static int load_index_share(struct dedup_state *s)
{
	struct dedupidx *x = &s->old;
	struct dedup_dist *d = s->dist;
	int me = ranks_me(), n = d->ranks, bad = 0;
	if (dedupidx_load(s->cfg.index, x) < 0)
		bad = 1;
	else if (x->n_near && x->num_perm != NPERM)
		bad = error("'%s': index signatures have %u values, documents have %d",
			    s->cfg.index, x->num_perm, NPERM) != 0;
	if (bad)
		return -1;	/* the same file on every rank: the same error */
	scheme_declare_index_env(x, s->cfg.index, !me);
	/* the hashes are sorted: this rank's are one run of them */
	uint64_t a = 0;
	while (a < x->n_exact && hash_rank(x->exact[a], n) < me)
		a++;
	uint64_t b = a;
	while (b < x->n_exact && hash_rank(x->exact[b], n) == me)
		b++;
	d->ox_lo = a;
	d->ox_hi = b;
	if (s->cfg.near) {
		s->n_old_near = (uint32_t)x->n_near;
		d->old_lo = share(x->n_near, me, n);
		d->old_hi = share(x->n_near, me + 1, n);
		d->sig = xreallocarray(NULL, (d->old_hi - d->old_lo) * NPERM + 1, sizeof *d->sig);
		if (d->old_hi > d->old_lo)
			memcpy(d->sig, x->near + d->old_lo * NPERM, (d->old_hi - d->old_lo) * SIG_BYTES);
		free(x->near);	/* the others' are theirs; gathered back for the index */
		x->near = NULL;
	}
	return 0;
}

int dedup_dist_init(struct dedup_state *s, const struct dedup_cfg *c, size_t n_parts,
		    uint64_t max_mem)
{
	memset(s, 0, sizeof *s);
	s->cfg = *c;
	struct dedup_dist *d = s->dist = xcalloc(1, sizeof *d);
	int me = ranks_me();
	d->ranks = ranks_count();
	d->lo = (size_t)share(n_parts, me, d->ranks);
	d->hi = (size_t)share(n_parts, me + 1, d->ranks);
	d->max_mem = max_mem;
	if (c->near)
		lsh_optimal_params(c->threshold, NPERM, &d->bands, &d->rows);
	int bad = c->index && load_index_share(s);
	return ranks_any(bad) ? -1 : 0;
}

/* ---- pass 1: reading ---- */

/* What reading this rank's parts will hold, from their headers: per document its hash,
 * filter result, status and near-dedup id, and its signature with near dedup. */
static uint64_t read_bytes(const struct dedup_state *s, const struct dedup_input *ins)
{
	const struct dedup_dist *d = s->dist;
	uint64_t docs = 0;
	for (size_t i = d->lo; i < d->hi; i++) {
		if (ins[i].limit != UINT64_MAX) {
			docs += ins[i].limit;
			continue;
		}
		struct shard_reader *r = strcmp(ins[i].path, "-") ? shard_open(ins[i].path, SHARD_DOCS)
								  : NULL;
		uint64_t k = r ? shard_get_info(r)->n_records : UINT64_MAX;
		docs += k == UINT64_MAX ? 0 : k;	/* unknown (a pipe): not counted */
		if (r)
			shard_close_reader(r);
	}
	return docs * (16 + 1 + 1 + 4 + 1 + (s->cfg.near ? SIG_BYTES : 0));
}

/* This rank's parts read; the schemes checked in input order and the documents without
 * signature counted, over all parts. */
static int read_parts(struct dedup_state *s, struct dedup_input *ins, size_t n)
{
	const struct dedup_cfg *c = &s->cfg;
	const struct dedup_dist *d = s->dist;
	if (over_budget(s, read_bytes(s, ins), "the documents' hashes and signatures"))
		return -1;
	int failed = 0, q = cp_quiet;
	cp_quiet = 0;	/* what goes wrong here is this rank's to say */
	#pragma omp parallel for schedule(dynamic, 1) num_threads(c->threads)
	for (size_t i = d->lo; i < d->hi; i++)
		if (dedup_read_input(&ins[i], c)) {
			#pragma omp atomic write
			failed = 1;
		}
	cp_quiet = q;
	if (ranks_any(failed))
		return -1;
	uint64_t *v = xcalloc(n + 1, sizeof *v);
	for (size_t i = d->lo; i < d->hi; i++) {
		v[i] = ins[i].scheme.schemes;
		v[n] += ins[i].no_sig;
	}
	ranks_sum_u64(v, n + 1);
	const char *from = NULL;
	for (size_t i = 0; i < n; i++)
		if (scheme_check_index(ins[i].path, (uint8_t)v[i], &s->old, c->index) ||
		    scheme_check_inputs(&s->scheme, &from, ins[i].path, (uint8_t)v[i])) {
			free(v);
			return -1;	/* on every rank alike */
		}
	s->no_sig = v[n];
	free(v);
	if (s->no_sig)
		warning("%llu documents have no MinHash signature (cp-hash --minhash none): near "
			"dedup cannot compare them (--no-near says that is meant)",
			(unsigned long long)s->no_sig);
	return 0;
}

/* ---- pass 1: exact duplicates ---- */

/* Each hash to its rank; that rank adds them in rank order (input order) and answers
 * whether each came first. */
static int exact_step(struct dedup_state *s, struct dedup_input *ins)
{
	struct dedup_dist *d = s->dist;
	int n = d->ranks;
	struct buf *out = bufs(n), *in = bufs(n);
	for (size_t i = d->lo; i < d->hi; i++)
		for (uint64_t k = 0; k < ins[i].n_docs; k++)
			buf_put(&out[hash_rank(ins[i].hash[k], n)], ins[i].hash[k], 16);
	ranks_alltoallv(out, in);
	uint64_t got = 0, old = d->ox_hi - d->ox_lo;
	for (int j = 0; j < n; j++) {
		got += in[j].len / 16;
		buf_reset(&out[j]);
	}
	/* about 24 bytes a distinct hash at most, and the hashes received meanwhile */
	if (over_budget(s, (old + got) * 24 + got * 16, "the exact-hash set")) {
		bufs_free(out, n);
		bufs_free(in, n);
		return -1;
	}
	s->set = dedupset_new((size_t)old, (size_t)got);
	for (uint64_t i = d->ox_lo; i < d->ox_hi; i++)
		dedupset_add(s->set, s->old.exact[i], 1);
	free(s->old.exact);
	s->old.exact = NULL;
	for (int j = 0; j < n; j++)
		for (size_t p = 0; p < in[j].len; p += 16)
			buf_putc(&out[j], dedupset_add(s->set, in[j].p + p, 0));
	ranks_alltoallv(out, in);
	size_t *pos = xcalloc((size_t)n, sizeof *pos);
	for (size_t i = d->lo; i < d->hi; i++) {
		struct dedup_input *x = &ins[i];
		x->status = xmalloc(x->n_docs ? x->n_docs : 1);
		x->lshid = xmalloc((x->n_docs ? x->n_docs : 1) * sizeof *x->lshid);
		for (uint64_t k = 0; k < x->n_docs; k++) {
			int r = hash_rank(x->hash[k], n);
			x->status[k] = in[r].p[pos[r]++] ? x->reason[k] : DEDUP_EXACT;
			x->lshid[k] = NO_ID;
		}
		free(x->hash);
		free(x->reason);
		x->hash = NULL;
		x->reason = NULL;
	}
	free(pos);
	d->exact_mine = dedupset_bytes(s->set);
	bufs_free(out, n);
	bufs_free(in, n);
	return 0;
}

/* ---- pass 1: near duplicates ---- */

/* Number this rank's documents for near dedup (first occurrences with a signature) after
 * all earlier ranks', keep their signatures (and origins, for --pairs) and learn every
 * rank's ranges. */
static void number_docs(struct dedup_state *s, struct dedup_input *ins, struct owners *o,
			struct buf *origins)
{
	struct dedup_dist *d = s->dist;
	int n = d->ranks, me = ranks_me();
	uint64_t mine = 0;
	for (size_t i = d->lo; i < d->hi; i++)
		for (uint64_t k = 0; k < ins[i].n_docs; k++)
			mine += ins[i].has_sig[k] && ins[i].status[k] != DEDUP_EXACT;
	uint64_t *cnt = xcalloc((size_t)n, sizeof *cnt);
	cnt[me] = mine;
	ranks_sum_u64(cnt, (size_t)n);
	o->n = n;
	o->n_old = s->n_old_near;
	o->oldb = xcalloc(2 * ((size_t)n + 1), sizeof *o->oldb);
	o->newb = o->oldb + n + 1;
	o->newb[0] = o->n_old;
	for (int r = 0; r <= n; r++) {
		o->oldb[r] = share(o->n_old, r, n);
		if (r)
			o->newb[r] = o->newb[r - 1] + cnt[r - 1];
	}
	free(cnt);
	d->near_docs = o->newb[n];
	d->new_lo = o->newb[me];
	d->n_new = mine;
	size_t held = d->old_hi - d->old_lo;
	d->sig = xreallocarray(d->sig, (held + mine) * NPERM + 1, sizeof *d->sig);
	uint64_t id = d->new_lo;
	for (size_t i = d->lo; i < d->hi; i++) {
		struct dedup_input *x = &ins[i];
		size_t nsig = 0, opos = 0;
		for (uint64_t k = 0; k < x->n_docs; k++) {
			const char *origin = x->origins.p ? (const char *)x->origins.p + opos : NULL;
			if (origin)
				opos += strlen(origin) + 1;
			if (!x->has_sig[k])
				continue;
			const uint16_t *sig = x->sigs + nsig++ * NPERM;
			if (x->status[k] == DEDUP_EXACT)
				continue;
			memcpy(d->sig + (held + id - d->new_lo) * NPERM, sig, SIG_BYTES);
			x->lshid[k] = (uint32_t)id++;
			if (origin)
				buf_put(origins, origin, strlen(origin) + 1);
		}
		/* let each part's go once copied: the signatures are held about once, not twice */
		free(x->sigs);
		free(x->has_sig);
		buf_free(&x->origins);
		x->sigs = NULL;
		x->has_sig = NULL;
	}
}

struct band_entry { uint64_t key; uint32_t band, id; };
struct cand { uint32_t c, d, band; };
struct edge { uint32_t d, band, c, pad; double j; };

static int order(uint64_t a, uint64_t b)
{
	return (a > b) - (a < b);
}

static int cmp_band_entry(const void *pa, const void *pb)
{
	const struct band_entry *a = pa, *b = pb;
	int r = order(a->band, b->band);
	if (!r)
		r = order(a->key, b->key);
	return r ? r : order(a->id, b->id);
}

static int cmp_cand(const void *pa, const void *pb)
{
	const struct cand *a = pa, *b = pb;
	int r = order(a->d, b->d);
	if (!r)
		r = order(a->c, b->c);
	return r ? r : order(a->band, b->band);
}

/* the order one process meets the pairs in: by document, band, and the newest earlier one
 * first (a bucket's chain) */
static int cmp_edge(const void *pa, const void *pb)
{
	const struct edge *a = pa, *b = pb;
	int r = order(a->d, b->d);
	if (!r)
		r = order(a->band, b->band);
	return r ? r : order(b->c, a->c);
}

static void concat(const struct buf *in, int n, struct buf *all)
{
	buf_reset(all);
	for (int j = 0; j < n; j++)
		buf_put(all, in[j].p, in[j].len);
}

/* Every band key of this rank's signatures to the key's rank; there, the pairs of each
 * bucket to the rank of the later document. Into *CANDS (this rank's to confirm). */
static int band_step(struct dedup_state *s, const struct owners *o, struct buf *cands)
{
	struct dedup_dist *d = s->dist;
	int n = d->ranks;
	struct buf *out = bufs(n), *in = bufs(n), all = { 0 };
	uint64_t held = d->old_hi - d->old_lo + d->n_new;
	for (uint64_t i = 0; i < held; i++) {
		uint64_t id = i < d->old_hi - d->old_lo ? d->old_lo + i
						       : d->new_lo + (i - (d->old_hi - d->old_lo));
		const uint16_t *sig = d->sig + i * NPERM;
		for (unsigned b = 0; b < d->bands; b++) {
			struct band_entry e = { lsh_band_key(sig, b, d->rows), b, (uint32_t)id };
			buf_put(&out[key_rank(e.key, n)], &e, sizeof e);
		}
	}
	uint64_t sigb = held * SIG_BYTES, sent = held * d->bands * sizeof(struct band_entry);
	int ret = -1;
	if (over_budget(s, d->exact_mine + sigb + 2 * sent, "near dedup's band keys"))
		goto out;
	ranks_alltoallv(out, in);
	bufs_free(out, n);
	out = bufs(n);
	concat(in, n, &all);
	bufs_free(in, n);
	in = bufs(n);
	size_t m = all.len / sizeof(struct band_entry);
	struct band_entry *e = (struct band_entry *)all.p;
	if (m)
		qsort(e, m, sizeof *e, cmp_band_entry);
	uint64_t pairs = 0;
	for (size_t i = 0, j; i < m; i = j) {
		for (j = i + 1; j < m && e[j].band == e[i].band && e[j].key == e[i].key; j++)
			;
		pairs += (uint64_t)(j - i) * (j - i - 1) / 2;
	}
	uint64_t peak = sigb + all.len + 2 * pairs * sizeof(struct cand);
	d->lsh_mine = peak;
	if (over_budget(s, d->exact_mine + peak, "near dedup's candidate pairs"))
		goto out;
	for (size_t i = 0, j; i < m; i = j) {
		for (j = i + 1; j < m && e[j].band == e[i].band && e[j].key == e[i].key; j++)
			;
		for (size_t b = i + 1; b < j; b++)
			for (size_t a = i; a < b; a++) {
				struct cand c = { e[a].id, e[b].id, e[a].band };
				buf_put(&out[sig_rank(o, c.d)], &c, sizeof c);
			}
	}
	buf_free(&all);
	ranks_alltoallv(out, in);
	concat(in, n, cands);
	ret = 0;
out:
	buf_free(&all);
	bufs_free(out, n);
	bufs_free(in, n);
	return ret;
}

/* What the owner of an id says of it: WIDTH bytes into DST. */
typedef void (*answer_fn)(const struct dedup_dist *d, const void *ctx, uint32_t id, void *dst);

/* For the ids NEED[0..k), WIDTH bytes each from their ranks' ANSWER, into GOT in NEED's
 * order (all ranks ask at once). */
static void ask_owners(const struct dedup_dist *d, const struct owners *o, const uint32_t *need,
		       size_t k, size_t width, answer_fn answer, const void *ctx, void *got)
{
	int n = d->ranks;
	struct buf *out = bufs(n), *in = bufs(n);
	for (size_t i = 0; i < k; i++)
		buf_put(&out[sig_rank(o, need[i])], &need[i], 4);
	ranks_alltoallv(out, in);
	for (int j = 0; j < n; j++) {
		buf_reset(&out[j]);
		buf_grow(&out[j], in[j].len / 4 * width + 1);
		for (size_t p = 0; p < in[j].len; p += 4) {
			uint32_t id;
			memcpy(&id, in[j].p + p, 4);
			answer(d, ctx, id, out[j].p + out[j].len);
			out[j].len += width;
		}
	}
	ranks_alltoallv(out, in);
	size_t *pos = xcalloc((size_t)n, sizeof *pos);
	for (size_t i = 0; i < k; i++) {
		int r = sig_rank(o, need[i]);
		memcpy((unsigned char *)got + i * width, in[r].p + pos[r], width);
		pos[r] += width;
	}
	free(pos);
	bufs_free(out, n);
	bufs_free(in, n);
}

static void answer_sig(const struct dedup_dist *d, const void *ctx, uint32_t id, void *dst)
{
	(void)ctx;
	memcpy(dst, own_sig(d, id), SIG_BYTES);
}

static int cmp_u32(const void *a, const void *b)
{
	return order(*(const uint32_t *)a, *(const uint32_t *)b);
}

/* The candidates this rank holds the later signature of, each pair once (at its first band),
 * compared; those similar enough into EDGES. */
static void confirm_step(const struct dedup_state *s, const struct owners *o, struct buf *cands,
			 struct buf *edges)
{
	const struct dedup_dist *d = s->dist;
	size_t m = cands->len / sizeof(struct cand), u = 0;
	struct cand *c = (struct cand *)cands->p;
	if (m)
		qsort(c, m, sizeof *c, cmp_cand);
	for (size_t i = 0; i < m; i++)
		if (!u || c[i].c != c[u - 1].c || c[i].d != c[u - 1].d)
			c[u++] = c[i];
	uint32_t *need = xreallocarray(NULL, u + 1, sizeof *need);
	size_t k = 0;
	for (size_t i = 0; i < u; i++)
		if (!owns(d, c[i].c))
			need[k++] = c[i].c;
	if (k)
		qsort(need, k, sizeof *need, cmp_u32);
	size_t kk = 0;
	for (size_t i = 0; i < k; i++)
		if (!kk || need[i] != need[kk - 1])
			need[kk++] = need[i];
	uint16_t *got = xreallocarray(NULL, kk * NPERM + 1, sizeof *got);
	ask_owners(d, o, need, kk, SIG_BYTES, answer_sig, NULL, got);
	for (size_t i = 0; i < u; i++) {
		const uint16_t *a;
		if (owns(d, c[i].c)) {
			a = own_sig(d, c[i].c);
		} else {
			const uint32_t *f = bsearch(&c[i].c, need, kk, sizeof *need, cmp_u32);
			a = got + (size_t)(f - need) * NPERM;
		}
		double j = lsh_jaccard16(a, own_sig(d, c[i].d), NPERM);
		if (j < s->cfg.threshold)
			continue;
		struct edge e = { c[i].d, c[i].band, c[i].c, 0, j };
		buf_put(edges, &e, sizeof e);
	}
	free(need);
	free(got);
}

static uint32_t find(uint32_t *parent, uint32_t x)
{
	while (parent[x] != x) {
		parent[x] = parent[parent[x]];
		x = parent[x];
	}
	return x;
}

static void add_pair(struct dedup_state *s, uint32_t a, uint32_t b, double j)
{
	if (s->n_pairs == s->cap_pairs)
		s->pairs = xreallocarray(s->pairs, s->cap_pairs = s->cap_pairs ? 2 * s->cap_pairs : 256,
					 sizeof *s->pairs);
	s->pairs[s->n_pairs++] = (struct dedup_pair){ a, b, j };
}

/* The clusters are joined by labels: every held document's label is a document of its
 * cluster, no later than itself, at first itself. A round hooks, for every edge whose ends'
 * labels differ, the later label onto the earlier (the label of a label lowered), then
 * labels jump to their labels' labels until none changes; when no edge's ends differ, each
 * cluster's label is its first document, as one process's union-find finds it. */
struct labels {
	const struct owners *o;
	uint32_t *lab;		/* per held document (own_at) */
	size_t held;
};

static void answer_label(const struct dedup_dist *d, const void *ctx, uint32_t id, void *dst)
{
	const struct labels *l = ctx;
	memcpy(dst, &l->lab[own_at(d, id)], 4);
}

struct hook { uint32_t x, to; };

/* One hooking over the edges E[0..m) this rank confirmed; 1 on every rank when a label
 * changed on any. */
static int hook_round(const struct dedup_dist *d, struct labels *l, const struct edge *e, size_t m)
{
	int n = d->ranks, changed = 0;
	uint32_t *need = xreallocarray(NULL, 2 * m + 1, sizeof *need), *lc = need + m;
	for (size_t i = 0; i < m; i++)
		need[i] = e[i].c;
	ask_owners(d, l->o, need, m, 4, answer_label, l, lc);
	struct buf *out = bufs(n), *in = bufs(n);
	for (size_t i = 0; i < m; i++) {
		uint32_t a = lc[i], b = l->lab[own_at(d, e[i].d)];
		if (a == b)
			continue;
		struct hook h = { a > b ? a : b, a > b ? b : a };
		buf_put(&out[sig_rank(l->o, h.x)], &h, sizeof h);
	}
	free(need);
	ranks_alltoallv(out, in);
	for (int j = 0; j < n; j++)
		for (size_t p = 0; p < in[j].len; p += sizeof(struct hook)) {
			struct hook h;
			memcpy(&h, in[j].p + p, sizeof h);
			uint32_t *x = &l->lab[own_at(d, h.x)];
			if (h.to < *x) {
				*x = h.to;
				changed = 1;
			}
		}
	bufs_free(out, n);
	bufs_free(in, n);
	return ranks_any(changed);
}

/* Labels to their labels' labels until none changes anywhere. */
static void jump_labels(const struct dedup_dist *d, struct labels *l)
{
	size_t *at = xreallocarray(NULL, l->held + 1, sizeof *at);
	uint32_t *need = xreallocarray(NULL, 2 * l->held + 1, sizeof *need), *got = need + l->held;
	for (int changed = 1; changed;) {
		size_t k = 0;
		for (size_t i = 0; i < l->held; i++)
			if (l->lab[i] != own_id(d, i)) {
				at[k] = i;
				need[k++] = l->lab[i];
			}
		ask_owners(d, l->o, need, k, 4, answer_label, l, got);
		changed = 0;
		for (size_t i = 0; i < k; i++)
			if (got[i] < l->lab[at[i]]) {
				l->lab[at[i]] = got[i];
				changed = 1;
			}
		changed = ranks_any(changed);
	}
	free(at);
	free(need);
}

/* --pairs: the edges of each cluster at its label's rank, joined there in one process's
 * order (a cluster's own edges alone decide which of them join it); the joining ones to
 * rank 0, as one process reports them. */
static void cluster_pairs(struct dedup_state *s, const struct labels *l, const struct edge *e,
			  size_t m)
{
	const struct dedup_dist *d = s->dist;
	int n = d->ranks;
	struct buf *out = bufs(n), *in = bufs(n), all = { 0 }, joined = { 0 };
	for (size_t i = 0; i < m; i++)
		buf_put(&out[sig_rank(l->o, l->lab[own_at(d, e[i].d)])], &e[i], sizeof e[i]);
	ranks_alltoallv(out, in);
	concat(in, n, &all);
	bufs_free(out, n);
	bufs_free(in, n);
	size_t k = all.len / sizeof(struct edge), u = 0;
	struct edge *c = (struct edge *)all.p;
	if (k)
		qsort(c, k, sizeof *c, cmp_edge);
	uint32_t *ids = xreallocarray(NULL, 4 * k + 1, sizeof *ids), *parent = ids + 2 * k;
	for (size_t i = 0; i < k; i++) {
		ids[2 * i] = c[i].c;
		ids[2 * i + 1] = c[i].d;
	}
	if (k)
		qsort(ids, 2 * k, sizeof *ids, cmp_u32);
	for (size_t i = 0; i < 2 * k; i++)
		if (!u || ids[i] != ids[u - 1])
			ids[u++] = ids[i];
	for (size_t i = 0; i < u; i++)
		parent[i] = (uint32_t)i;	/* by rank among the ids: the earlier is the lower */
	for (size_t i = 0; i < k; i++) {
		uint32_t a = (uint32_t)((uint32_t *)bsearch(&c[i].c, ids, u, 4, cmp_u32) - ids);
		uint32_t b = (uint32_t)((uint32_t *)bsearch(&c[i].d, ids, u, 4, cmp_u32) - ids);
		uint32_t ra = find(parent, a), rb = find(parent, b);
		if (ra == rb)
			continue;
		parent[ra > rb ? ra : rb] = ra > rb ? rb : ra;
		buf_put(&joined, &c[i], sizeof c[i]);
	}
	free(ids);
	ranks_gather(joined.p, joined.len, &all, NULL);
	if (!ranks_me()) {
		k = all.len / sizeof(struct edge);
		c = (struct edge *)all.p;
		if (k)
			qsort(c, k, sizeof *c, cmp_edge);
		for (size_t i = 0; i < k; i++)
			add_pair(s, c[i].c, c[i].d, c[i].j);
	}
	buf_free(&joined);
	buf_free(&all);
}

/* --pairs: the origins of the documents near dedup saw, in id order, on rank 0. */
static void gather_origins(struct dedup_state *s, struct buf *origins)
{
	ranks_gather(origins->p, origins->len, &s->pair_origins, NULL);
	if (ranks_me())
		return;
	for (size_t p = 0; p < s->pair_origins.len; p += strlen((char *)s->pair_origins.p + p) + 1) {
		if (s->n_origin == s->cap_origin)
			s->origin_off = xreallocarray(s->origin_off,
						      s->cap_origin = s->cap_origin ? 2 * s->cap_origin : 1024,
						      sizeof *s->origin_off);
		s->origin_off[s->n_origin++] = p;
	}
}

/* The clusters joined over the ranks (struct labels); each rank's documents that are not
 * the first of theirs marked. */
static int join_step(struct dedup_state *s, struct dedup_input *ins, const struct owners *o,
		     struct buf *edges)
{
	struct dedup_dist *d = s->dist;
	struct labels l = { o, NULL, (size_t)(d->old_hi - d->old_lo + d->n_new) };
	size_t m = edges->len / sizeof(struct edge);
	/* the edges, a label per document, and what a jump asks and answers */
	uint64_t held = edges->len + 4 * (uint64_t)l.held + 16 * (uint64_t)l.held;
	d->lsh_mine = held > d->lsh_mine ? held : d->lsh_mine;
	if (over_budget(s, d->exact_mine + held, "the clusters' labels"))
		return -1;
	l.lab = xreallocarray(NULL, l.held + 1, sizeof *l.lab);
	for (size_t i = 0; i < l.held; i++)
		l.lab[i] = own_id(d, i);
	const struct edge *e = (const struct edge *)edges->p;
	while (hook_round(d, &l, e, m))
		jump_labels(d, &l);
	for (size_t i = d->lo; i < d->hi; i++)
		for (uint64_t k = 0; k < ins[i].n_docs; k++) {
			uint32_t id = ins[i].lshid[k];
			if (id != NO_ID && l.lab[own_at(d, id)] != id)
				ins[i].status[k] = DEDUP_NEAR;
		}
	if (s->cfg.pairs)
		cluster_pairs(s, &l, e, m);
	free(l.lab);
	buf_free(edges);
	return 0;
}

static int near_step(struct dedup_state *s, struct dedup_input *ins)
{
	struct dedup_dist *d = s->dist;
	struct owners o;
	struct buf origins = { 0 }, cands = { 0 }, edges = { 0 };
	number_docs(s, ins, &o, &origins);
	if (d->near_docs >= NO_ID)
		die("%llu documents for near dedup: beyond the id width",
		    (unsigned long long)d->near_docs);
	int ret = band_step(s, &o, &cands);
	if (!ret) {
		confirm_step(s, &o, &cands, &edges);
		buf_free(&cands);
		ret = join_step(s, ins, &o, &edges);
	}
	if (!ret && s->cfg.pairs)
		gather_origins(s, &origins);
	buf_free(&cands);
	buf_free(&edges);
	buf_free(&origins);
	free(o.oldb);
	return ret;
}

/* ---- pass 1 ---- */

static int cmp_u32_desc(const void *a, const void *b)
{
	return cmp_u32(b, a);
}

/* What the report says of the ranks: each one's bytes, the sums, every copy count. */
static void gather_figures(struct dedup_state *s)
{
	struct dedup_dist *d = s->dist;
	uint64_t mine[2] = { d->exact_mine, d->lsh_mine }, sums[3] = { dedupset_size(s->set) };
	sums[1] = d->exact_mine;
	sums[2] = d->lsh_mine;
	ranks_sum_u64(sums, 3);
	d->exact_size = sums[0];
	d->exact_bytes = sums[1];
	d->lsh_bytes = sums[2];
	struct buf all = { 0 };
	ranks_gather(mine, sizeof mine, &all, NULL);
	if (!ranks_me()) {
		d->rank_bytes = (uint64_t *)all.p;
		all = (struct buf){ 0 };
	}
	uint32_t *counts;
	size_t g = dedupset_counts(s->set, &counts);
	ranks_gather(counts, g * sizeof *counts, &all, NULL);
	free(counts);
	if (!ranks_me()) {
		d->n_counts = all.len / sizeof *counts;
		d->counts = (uint32_t *)all.p;
		all = (struct buf){ 0 };
		if (d->n_counts)
			qsort(d->counts, d->n_counts, sizeof *d->counts, cmp_u32_desc);
	}
	buf_free(&all);
}

int dedup_dist_decide(struct dedup_state *s, struct dedup_input *ins, size_t n)
{
	double t0 = mono_now();
	if (read_parts(s, ins, n))
		return -1;
	double t1 = mono_now();
	if (exact_step(s, ins))
		return -1;
	double t2 = mono_now();
	if (s->cfg.near && near_step(s, ins))
		return -1;
	s->t_read = t1 - t0;
	s->t_near = mono_now() - t2;
	s->t_dedup = mono_now() - t1;
	gather_figures(s);
	return 0;
}

/* ---- pass 2 and the index ---- */

void dedup_dist_stage(struct outdir_stage *stage, size_t n)
{
	struct buf b = { 0 };
	if (!ranks_me())
		buf_puts(&b, stage->dir);
	buf_putc(&b, 0);
	ranks_bcast(&b);
	if (ranks_me()) {
		memset(stage, 0, sizeof *stage);
		stage->dir = xstrdup((const char *)b.p);
		char **paths = xcalloc(n ? n : 1, sizeof *paths);
		for (size_t i = 0; i < n; i++)	/* shard/outdir.c's names */
			paths[i] = xasprintf("%s/part-%05zu.shard", stage->dir, i);
		stage->paths = paths;
		stage->n_paths = n;
		stage->n = n;
	}
	buf_free(&b);
}

int dedup_dist_write(struct dedup_state *s, struct dedup_input *ins, size_t n,
		     const struct outdir_stage *stage)
{
	const struct dedup_dist *d = s->dist;
	int r = 0, q = cp_quiet;
	cp_quiet = 0;
	if (s->cfg.dry_run) {
		dedup_dry_run_totals(ins + d->lo, d->hi - d->lo);
	} else {
		struct outdir_stage mine = { 0 };
		if (stage->paths)
			mine.paths = stage->paths + d->lo;
		r = dedup_write_outputs(ins + d->lo, d->hi - d->lo, &s->cfg, &mine);
	}
	cp_quiet = q;
	if (ranks_any(r))
		return -1;
	uint64_t *v = xcalloc(2 * n + 1, sizeof *v);
	for (size_t i = d->lo; i < d->hi; i++) {
		v[2 * i] = ins[i].docs_out;
		v[2 * i + 1] = ins[i].bytes_out;
	}
	ranks_sum_u64(v, 2 * n);
	for (size_t i = 0; i < n; i++) {
		ins[i].docs_out = v[2 * i];
		ins[i].bytes_out = v[2 * i + 1];
	}
	free(v);
	return 0;
}

int dedup_dist_save_index(struct dedup_state *s, const char *path)
{
	const struct dedup_dist *d = s->dist;
	struct dedupidx *old = &s->old;
	struct dedupidx x = { .num_perm = NPERM, .scheme = old->n_near ? old->scheme : s->scheme };
	unsigned char (*mine)[16];
	size_t k = dedupset_export(s->set, &mine);
	struct buf all = { 0 }, fresh = { 0 };
	ranks_gather(mine, k * 16, &all, NULL);
	free(mine);
	x.n_exact = all.len / 16;
	x.exact = (unsigned char (*)[16])all.p;
	if (s->cfg.near) {
		/* the index's signatures, then the inputs': each in rank order is in id order */
		size_t held_old = (size_t)(d->old_hi - d->old_lo);
		ranks_gather(d->sig, held_old * SIG_BYTES, &fresh, NULL);
		struct buf b = { 0 };
		ranks_gather(d->sig + held_old * NPERM, (size_t)d->n_new * SIG_BYTES, &b, NULL);
		buf_put(&fresh, b.p, b.len);
		buf_free(&b);
		x.n_near = fresh.len / SIG_BYTES;
		x.near = (uint16_t *)fresh.p;
	} else {
		x.n_near = old->n_near;
		x.near = old->near;
	}
	int r = ranks_me() ? 0 : dedupidx_write(path, &x);
	buf_free(&all);
	buf_free(&fresh);
	return ranks_any(r) ? -1 : 0;
}

void dedup_dist_totals(struct dedup_totals *t, const struct dedup_state *s,
		       const struct dedup_input *ins, size_t n)
{
	const struct dedup_dist *d = s->dist;
	(void)n;
	dedup_totals_count(t, ins + d->lo, d->hi - d->lo);
	uint64_t v[4 + DEDUP_N] = { t->docs_in, t->bytes_in, t->docs_out, t->bytes_out };
	memcpy(v + 4, t->n, sizeof t->n);
	ranks_sum_u64(v, 4 + DEDUP_N);
	t->docs_in = v[0];
	t->bytes_in = v[1];
	t->docs_out = v[2];
	t->bytes_out = v[3];
	memcpy(t->n, v + 4, sizeof t->n);
	if (!ranks_me())
		dedup_totals_share(t, d->counts, d->n_counts);
}
