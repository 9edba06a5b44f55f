/* passes.c: cp-dedup's pass 1 (read and decide) and pass 2 (write), see passes.h. */
#include "dedup/passes.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "shard/doc.h"
#include "shard/shard.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NO_ID UINT32_MAX
#define NPERM DEDUP_NPERM
#define PART_BYTES (32ull << 20)

/* ---- parts ---- */

/* Where part K of P begins in R, a shard of NB blocks: the first record at K/P of its blocks'
 * bytes, a block's bytes taken as spread evenly over its records. So the parts hold about
 * the same bytes, whatever the documents' sizes: cut by count, the standard library's six
 * held 16 to 46 MB, and the ranks, which take the parts in runs, had a third more work
 * on one than on the other. */
static uint64_t part_start(const struct shard_reader *r, uint64_t nb, uint64_t k, uint64_t p)
{
	uint64_t o0, f0, oe, fe, lo = 0, hi = nb, off, first, off1, first1;
	shard_block(r, 0, &o0, &f0);
	shard_block(r, nb, &oe, &fe);
	uint64_t target = o0 + (uint64_t)((double)(oe - o0) * (double)k / (double)p);
	while (hi - lo > 1) {	/* the last block that starts at or before the target */
		uint64_t mid = lo + (hi - lo) / 2;
		shard_block(r, mid, &off, &first);
		if (off <= target)
			lo = mid;
		else
			hi = mid;
	}
	shard_block(r, lo, &off, &first);
	shard_block(r, lo + 1, &off1, &first1);
	if (off1 <= off || target <= off)
		return first;
	double f = (double)(target - off) / (double)(off1 - off);
	return first + (uint64_t)ceil(f * (double)(first1 - first));
}

/* Records and the starts of the parts of shard PATH (*STARTS, *PARTS of them; one part and
 * no starts when it is not cut): a regular file's header sizes the exact set so it never
 * grows (a FIFO or stdin can be read once, and says nothing). */
static void part_count(const char *path, uint64_t part_bytes, uint64_t *records,
		       uint64_t *parts, uint64_t **starts)
{
	struct stat st;
	*records = UINT64_MAX;
	*parts = 1;
	*starts = NULL;
	if (!strcmp(path, "-") || stat(path, &st) || !S_ISREG(st.st_mode))
		return;
	struct shard_reader *r = shard_open(path, SHARD_DOCS);
	if (!r)
		exit(EXIT_ERR);
	const struct shard_info *si = shard_get_info(r);
	*records = si->n_records;
	uint64_t o, f;
	if (*records != UINT64_MAX && *records > 1 && si->n_blocks &&
	    !shard_block(r, si->n_blocks, &o, &f)) {
		uint64_t p = (si->raw_bytes + part_bytes - 1) / part_bytes;
		p = p < 1 ? 1 : p > *records ? *records : p;
		uint64_t *at = xcalloc(p, sizeof *at), n = 1;
		for (uint64_t k = 1; k < p; k++) {
			uint64_t a = part_start(r, si->n_blocks, k, p);
			if (a > at[n - 1] && a < *records)
				at[n++] = a;
		}
		*parts = n;
		if (n > 1)
			*starts = at;
		else
			free(at);
	}
	shard_close_reader(r);
}

size_t dedup_plan_parts(char **list, size_t n, struct dedup_input **out, uint64_t *expect)
{
	/* tests use small parts to exercise the cutting */
	const char *env = getenv("CP_DEDUP_PART_BYTES");
	uint64_t part_bytes = env ? opt_u64("CP_DEDUP_PART_BYTES", env, 1, UINT64_MAX / 2) : PART_BYTES;
	struct dedup_input *ins = NULL;
	size_t np = 0, cap = 0;
	*expect = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t records, parts, *at;
		part_count(list[i], part_bytes, &records, &parts, &at);
		*expect += records == UINT64_MAX ? 1 << 16 : records;
		for (uint64_t k = 0; k < parts; k++) {
			if (np == cap)
				ins = xreallocarray(ins, cap = cap ? 2 * cap : 16, sizeof *ins);
			memset(&ins[np], 0, sizeof *ins);
			ins[np].path = list[i];
			ins[np].start = at ? at[k] : 0;
			ins[np].limit = !at ? UINT64_MAX
					: (k + 1 < parts ? at[k + 1] : records) - at[k];
			np++;
		}
		free(at);
	}
	*out = ins;
	return np;
}

void dedup_inputs_free(struct dedup_input *ins, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ins[i].status);
		free(ins[i].lshid);
		free(ins[i].clen);
		/* the scratch of a part read but never merged (a run that failed) */
		free(ins[i].hash);
		free(ins[i].reason);
		free(ins[i].sigs);
		free(ins[i].has_sig);
		buf_free(&ins[i].origins);
		buf_free(&ins[i].mem);
	}
	free(ins);
}

/* ---- pass 1: read one part ---- */

static void in_reserve(struct dedup_input *in, size_t nsig, int lengths)
{
	if (in->n_docs == in->cap) {
		in->cap = in->cap ? 2 * in->cap : 1024;
		if (lengths)
			in->clen = xreallocarray(in->clen, in->cap, sizeof *in->clen);
		in->hash = xreallocarray(in->hash, in->cap, 16);
		in->reason = xreallocarray(in->reason, in->cap, 1);
		in->has_sig = xreallocarray(in->has_sig, in->cap, 1);
	}
	/* signatures only for the documents that have one */
	if (nsig == in->sig_cap) {
		in->sig_cap = in->sig_cap ? 2 * in->sig_cap : 256;
		in->sigs = xreallocarray(in->sigs, in->sig_cap * NPERM, sizeof *in->sigs);
	}
}

/* Keep what pass 1 needs of document D; *NSIG counts the signatures kept. */
static int keep_doc(struct dedup_input *in, const struct dedup_cfg *c, const struct doc *d,
		    size_t *nsig)
{
	in_reserve(in, *nsig, c->dry_run);
	uint64_t k = in->n_docs++;
	if (c->dry_run)
		in->clen[k] = d->size;
	memcpy(in->hash[k], d->hash, 16);
	in->reason[k] = filter_apply(&c->filt, d);
	in->has_sig[k] = c->near && d->n_minhash == NPERM;
	in->no_sig += c->near && (d->st.flags & DOC_NO_MINHASH);
	in->bytes_in += d->size;
	if (in->has_sig[k] && scheme_note(&in->scheme, in->path, scheme_of(d), in->start + k))
		return -1;
	if (in->has_sig[k]) {
		uint16_t *s = in->sigs + (size_t)(*nsig)++ * NPERM;
		for (unsigned i = 0; i < NPERM; i++)
			s[i] = (uint16_t)doc_minhash(d, i);
	}
	if (c->pairs) {
		buf_put(&in->origins, d->origin, d->origin_len);
		buf_putc(&in->origins, 0);
	}
	return 0;
}

int dedup_take_record(struct dedup_input *in, const struct dedup_cfg *c, const void *rec,
		      size_t len, struct doc *d, size_t *nsig)
{
	if (doc_decode(rec, len, d))
		return error("'%s': record %llu is not a valid document", in->path,
			     (unsigned long long)(in->start + in->n_docs));
	if ((d->st.flags & DOC_NO_CONTENT) && !c->dry_run)
		return error("'%s': record %llu carries no content (cp-hash --no-content): "
			     "only a dry run (-n) can read it", in->path,
			     (unsigned long long)(in->start + in->n_docs));
	return keep_doc(in, c, d, nsig);
}

struct spool;
static int spool_put(struct spool *sp, const void *rec, size_t len);
static void fold_docs(struct dedup_state *s, struct dedup_input *in);
/* the records a part read in line with the decisions takes between folds */
#define FOLD_EVERY 256

/* Read R's records of the part into IN (and SPOOL). 0 or -1. */
static int read_records(struct dedup_input *in, const struct dedup_cfg *c,
			struct shard_reader *r, struct spool *spool)
{
	const void *rec;
	size_t len, nsig = 0;
	int ret = 0;
	while (in->n_docs < in->limit && (ret = shard_next(r, &rec, &len)) == 1) {
		struct doc d;
		if (dedup_take_record(in, c, rec, len, &d, &nsig) ||
		    (spool && spool_put(spool, rec, len)))
			return -1;
		if (in->fold && in->n_docs - in->folded >= FOLD_EVERY)
			fold_docs(in->fold, in);
	}
	if (ret < 0)
		return -1;
	/* ret 1: stopped at the end of the part */
	if (in->limit != UINT64_MAX && in->n_docs != in->limit)
		return error("'%s': %llu records, its header says more", in->path,
			     (unsigned long long)(in->start + in->n_docs));
	return 0;
}

/* Standard input is read twice: pass 1 copies it to IN->mem while it fits in SPOOL_MEM
 * bytes (CP_DEDUP_SPOOL_MEM for tests), where pass 2 takes the records as they lie; a larger
 * one goes on (uncompressed: read back once, by us, at once) to C->spool, kept open for pass
 * 2 with its name let go at once. */
#define SPOOL_MEM (1ull << 30)
struct spool {
	struct dedup_input *in;
	const struct dedup_cfg *c;
	struct shard_writer *w;	/* C->spool, once the memory is full */
	uint64_t limit;
};
static struct shard_writer *spool_create(const struct dedup_cfg *c, const uint64_t param[2]);

/* What memory holds goes to a new C->spool, and the rest follows it. */
static int spool_spill(struct spool *sp)
{
	struct buf *m = &sp->in->mem;
	if (!(sp->w = spool_create(sp->c, sp->in->param)))
		return -1;
	struct cursor cu = { m->p, m->p + m->len, 0 };
	while (cu.p < cu.end) {
		size_t n = (size_t)cur_varint(&cu);
		if (shard_write(sp->w, cur_bytes(&cu, n), n))
			return -1;
	}
	buf_free(m);
	return 0;
}

static int spool_put(struct spool *sp, const void *rec, size_t len)
{
	struct buf *m = &sp->in->mem;
	if (!sp->w && m->len + len + 10 <= sp->limit) {
		buf_put_varint(m, len);
		buf_put(m, rec, len);
		return 0;
	}
	if (!sp->w && spool_spill(sp))
		return -1;
	return shard_write(sp->w, rec, len);
}

static struct shard_writer *spool_create(const struct dedup_cfg *c, const uint64_t param[2])
{
	struct shard_writer *spool;
	#pragma omp critical(shard_live)
	spool = shard_create(c->spool, SHARD_DOCS, param);
	if (spool)
		shard_set_level(spool, SHARD_LEVEL_STORE);
	return spool;
}

static int spool_finish(struct dedup_input *in, const struct dedup_cfg *c,
			struct shard_writer *spool, int failed)
{
	int e = failed;
	#pragma omp critical(shard_live)
	{
		if (e)
			shard_abort(spool);
		else if (shard_close(spool))
			e = 1;
	}
	if (e)
		return -1;
	in->spool = shard_open(c->spool, SHARD_DOCS);
	unlink(c->spool);
	return in->spool ? 0 : -1;
}

struct shard_reader *dedup_open_input(struct dedup_input *in)
{
	struct shard_reader *r = shard_open(in->path, SHARD_DOCS);
	if (!r)
		return NULL;
	const struct shard_info *info = shard_get_info(r);
	in->param[0] = info->param[0];
	in->param[1] = info->param[1];
	if (in->start && shard_seek(r, in->start)) {
		shard_close_reader(r);
		return NULL;
	}
	return r;
}

int dedup_read_input(struct dedup_input *in, const struct dedup_cfg *c)
{
	struct shard_reader *r = dedup_open_input(in);
	if (!r)
		return -1;
	const char *env = getenv("CP_DEDUP_SPOOL_MEM");
	struct spool sp = { in, c, NULL, env ? opt_u64("CP_DEDUP_SPOOL_MEM", env, 0, UINT64_MAX)
					     : SPOOL_MEM };
	int stdin_again = !strcmp(in->path, "-") && !c->dry_run;	/* pass 2 needs it */
	if (stdin_again)
		buf_grow(&in->mem, 1);	/* in->mem.p says where pass 2 finds it */
	int ret = read_records(in, c, r, stdin_again ? &sp : NULL);
	shard_close_reader(r);
	if (sp.w && spool_finish(in, c, sp.w, ret < 0))
		return -1;
	return ret;
}

/* ---- pass 1: decisions in input order ---- */

static void on_pair(void *arg, uint32_t a, uint32_t b, double j)
{
	struct dedup_state *s = arg;
	if (s->n_pairs == s->cap_pairs)
		s->pairs = xreallocarray(s->pairs, s->cap_pairs = s->cap_pairs ? 2 * s->cap_pairs : 256,
					 sizeof *s->pairs);
	s->pairs[s->n_pairs++] = (struct dedup_pair){ a, b, j };
}

static void add_origin(struct dedup_state *s, const char *o, size_t n)
{
	if (s->n_origin == s->cap_origin)
		s->origin_off = xreallocarray(s->origin_off, s->cap_origin = s->cap_origin ? 2 * s->cap_origin : 1024,
					      sizeof *s->origin_off);
	s->origin_off[s->n_origin++] = s->pair_origins.len;
	buf_put(&s->pair_origins, o, n);
	buf_putc(&s->pair_origins, 0);
}

/* IN's documents read and not yet folded in, [IN->folded, IN->n_docs), into the decisions:
 * exact dedup, then the LSH for those that stay. The scratch arrays may move as reading goes
 * on, so the place in them is kept as counts. */
static void fold_docs(struct dedup_state *s, struct dedup_input *in)
{
	if (in->n_docs > in->status_cap) {
		in->status_cap = in->cap > in->n_docs ? in->cap : in->n_docs;
		in->status = xreallocarray(in->status, in->status_cap, 1);
		if (s->lsh)
			in->lshid = xreallocarray(in->lshid, in->status_cap, sizeof *in->lshid);
	}
	double t0 = mono_now();
	for (uint64_t k = in->folded; k < in->n_docs; k++) {
		const char *origin = in->origins.p ? (const char *)in->origins.p + in->folded_opos
						   : NULL;
		if (origin)
			in->folded_opos += strlen(origin) + 1;
		const uint16_t *sig = in->has_sig[k] ? in->sigs + in->folded_sig++ * NPERM : NULL;
		if (in->lshid)
			in->lshid[k] = NO_ID;
		if (!dedupset_add(s->set, in->hash[k], 0)) {
			in->status[k] = DEDUP_EXACT;
			continue;
		}
		in->status[k] = in->reason[k];
		if (sig && s->lsh) {
			double t = mono_now();
			in->lshid[k] = lsh_add(s->lsh, sig);
			s->t_near += mono_now() - t;
			if (origin)
				add_origin(s, origin, strlen(origin));
		}
	}
	in->folded = in->n_docs;
	s->t_dedup += mono_now() - t0;
}

void dedup_merge_input(struct dedup_state *s, struct dedup_input *in)
{
	fold_docs(s, in);
	if (!in->status)	/* no documents */
		in->status = xmalloc(1);
	if (s->lsh && !in->lshid)
		in->lshid = xmalloc(sizeof *in->lshid);
	in->fold = NULL;
	dedup_scratch_free(in);
}

void dedup_scratch_free(struct dedup_input *in)
{
	free(in->hash);
	free(in->reason);
	free(in->sigs);
	free(in->has_sig);
	buf_free(&in->origins);
	in->hash = NULL;
	in->reason = NULL;
	in->sigs = NULL;
	in->has_sig = NULL;
}

void dedup_near_decide(struct dedup_state *s, struct dedup_input *ins, size_t n)
{
	if (!s->lsh)
		return;
	for (size_t i = 0; i < n; i++)
		for (uint64_t k = 0; k < ins[i].n_docs; k++) {
			uint32_t id = ins[i].lshid[k];
			if (id != NO_ID && lsh_first(s->lsh, id) != id)
				ins[i].status[k] = DEDUP_NEAR;
		}
}

/* Parts [G, END) read in parallel, then merged in order. 0 or -1. */
static int decide_group(struct dedup_state *s, struct dedup_input *ins, size_t g, size_t end,
			const char **scheme_from)
{
	const struct dedup_cfg *c = &s->cfg;
	int failed = 0;
	/* the parts before G are folded in: G's reader folds it in as it reads, so that a
	 * part read from a pipe (cp-hash | cp-dedup) is decided while the writer works, and
	 * not all of it after the writer's end */
	ins[g].fold = s;
	#pragma omp parallel for schedule(dynamic, 1) num_threads(c->threads)
	for (size_t i = g; i < end; i++)
		if (dedup_read_input(&ins[i], c)) {
			#pragma omp atomic write
			failed = 1;
		}
	for (size_t i = g; i < end && !failed; i++) {
		if (scheme_check_index(ins[i].path, ins[i].scheme.schemes, &s->old, c->index) ||
		    scheme_check_inputs(&s->scheme, scheme_from, ins[i].path, ins[i].scheme.schemes))
			return -1;
		dedup_merge_input(s, &ins[i]);
		s->no_sig += ins[i].no_sig;
	}
	return failed ? -1 : 0;
}

int dedup_decide(struct dedup_state *s, struct dedup_input *ins, size_t n)
{
	double t0 = mono_now();
	int tty = is_tty(2);
	const char *scheme_from = NULL;
	size_t group = (size_t)s->cfg.threads * 2;
	for (size_t g = 0; g < n; g += group) {
		size_t end = g + group < n ? g + group : n;
		int r = decide_group(s, ins, g, end, &scheme_from);
		if (tty)
			fprintf(stderr, "\rcp-dedup: read %zu/%zu parts", end, n);
		if (r)
			return -1;
	}
	if (s->no_sig)
		warning("%llu documents have no MinHash signature (cp-hash --minhash none): near "
			"dedup cannot compare them (--no-near says that is meant)",
			(unsigned long long)s->no_sig);
	double t1 = mono_now();
	dedup_near_decide(s, ins, n);
	s->t_near += mono_now() - t1;
	s->t_dedup += mono_now() - t1;
	s->t_read = t1 - t0 - s->t_dedup;
	if (tty)
		fprintf(stderr, "\rcp-dedup: writing...                 \r");
	return 0;
}

/* ---- state and index ---- */

/* Remember an index's hashes and signatures as if their documents came before all inputs. */
static int load_index(struct dedup_state *s, uint64_t expect)
{
	const char *path = s->cfg.index;
	struct dedupidx *x = &s->old;
	if (dedupidx_load(path, x) < 0)
		return -1;
	if (x->n_near && x->num_perm != NPERM)
		return error("'%s': index signatures have %u values, documents have %d", path,
			     x->num_perm, NPERM);
	scheme_declare_index_env(x, path, 1);
	/* the index's hashes are distinct; the inputs' may be mostly copies */
	s->set = dedupset_new(x->n_exact, expect);
	for (uint64_t i = 0; i < x->n_exact; i++)
		dedupset_add(s->set, x->exact[i], 1);
	free(x->exact);
	x->exact = NULL;
	if (s->lsh) {
		for (uint64_t i = 0; i < x->n_near; i++)
			lsh_add(s->lsh, x->near + i * NPERM);
		s->n_old_near = (uint32_t)x->n_near;
	}
	return 0;
}

int dedup_state_init(struct dedup_state *s, const struct dedup_cfg *c, uint64_t expect)
{
	memset(s, 0, sizeof *s);
	s->cfg = *c;
	if (c->near) {
		s->lsh = lsh_new(c->threshold, NPERM, expect);
		if (c->pairs)
			lsh_set_pair_callback(s->lsh, on_pair, s);
	}
	if (c->index)
		return load_index(s, expect);
	s->set = dedupset_new(0, expect);
	return 0;
}

void dedup_state_free(struct dedup_state *s)
{
	dedupidx_free(&s->old);
	dedupset_free(s->set);
	lsh_free(s->lsh);
	free(s->pairs);
	free(s->origin_off);
	buf_free(&s->pair_origins);
	if (s->dist) {
		free(s->dist->sig);
		free(s->dist->rank_bytes);
		free(s->dist->counts);
		free(s->dist);
	}
}

int dedup_save_index(struct dedup_state *s, const char *path)
{
	struct dedupidx *old = &s->old;
	/* scheme_check_index made the inputs' scheme the index's wherever both have signatures */
	struct dedupidx x = { .num_perm = NPERM, .scheme = old->n_near ? old->scheme : s->scheme };
	x.n_exact = dedupset_export(s->set, &x.exact);
	if (s->lsh) {
		x.n_near = lsh_count(s->lsh);
		x.near = xreallocarray(NULL, x.n_near * NPERM + 1, 2);
		for (size_t i = 0; i < x.n_near; i++)
			memcpy(x.near + i * NPERM, lsh_sig(s->lsh, (uint32_t)i), NPERM * 2);
	} else {
		/* a --no-near run adds nothing for near dedup but keeps what was there */
		x.n_near = old->n_near;
		x.near = old->near;
		old->near = NULL;
	}
	int ret = dedupidx_write(path, &x);
	dedupidx_free(&x);
	return ret;
}

int dedup_merge_indexes(int argc, char **argv)
{
	if (argc < 2)
		die_usage("--merge-index needs OUT and at least one INDEX");
	struct dedupidx acc = { .num_perm = DEDUP_NPERM };
	const char *from = NULL;	/* the first index with signatures */
	for (int i = 1; i < argc; i++) {
		struct dedupidx x;
		int r = dedupidx_load(argv[i], &x);
		if (r > 0)
			die("cannot open index '%s': no such file", argv[i]);
		if (r < 0)
			exit(EXIT_ERR);
		scheme_declare_index_env(&x, argv[i], 1);
		if (scheme_check_merge(&acc, from, &x, argv[i]) || dedupidx_merge(&acc, &x, argv[i]))
			exit(EXIT_ERR);
		if (!from && x.n_near)
			from = argv[i];
		dedupidx_free(&x);
	}
	if (dedupidx_write(argv[0], &acc))
		exit(EXIT_ERR);
	fprintf(stderr, "cp-dedup: merged %d indexes into '%s': %llu exact hashes, %llu signatures\n",
		argc - 1, argv[0], (unsigned long long)acc.n_exact, (unsigned long long)acc.n_near);
	dedupidx_free(&acc);
	return EXIT_OK;
}

/* ---- pass 2 ---- */

/* The next record of IN for pass 2: from R, or from the copy in memory at MEM (R NULL). */
static int next_record(struct dedup_input *in, struct shard_reader *r, struct cursor *mem,
		       const void **rec, size_t *len)
{
	if (r)
		return shard_next(r, rec, len);
	if (mem->p == mem->end)
		return 0;
	*len = (size_t)cur_varint(mem);
	*rec = cur_bytes(mem, *len);
	return mem->err ? error("'%s': its copy in memory is corrupt", in->path) : 1;
}

static int write_input(struct dedup_input *in, struct shard_writer *w)
{
	struct cursor mem = { in->mem.p, in->mem.p + in->mem.len, 0 };
	struct shard_reader *r = in->spool ? in->spool
			       : in->mem.p ? NULL : shard_open(in->path, SHARD_DOCS);
	if (!r && !in->mem.p)
		return -1;
	if (r && in->start && shard_seek(r, in->start)) {
		shard_close_reader(r);
		return -1;
	}
	const void *rec;
	size_t len;
	int ret = 0;
	uint64_t k = 0;
	while ((in->limit == UINT64_MAX || k < in->n_docs) &&
	       shard_release_for(w, r) &&
	       (ret = next_record(in, r, &mem, &rec, &len)) == 1) {
		if (k == in->n_docs) {
			ret = error("'%s': more documents than on the first reading", in->path);
			break;
		}
		if (in->status[k++] != DEDUP_KEEP)
			continue;
		struct doc d;
		if (doc_decode(rec, len, &d)) {
			ret = error("'%s': record %llu is not a valid document", in->path,
				    (unsigned long long)(in->start + k - 1));
			break;
		}
		/* it goes out from where it lies, until the reader moves on */
		if (shard_write_ref(w, rec, len)) {
			ret = -1;
			break;
		}
		in->docs_out++;
		in->bytes_out += d.size;
	}
	if (ret == 1)
		ret = 0;
	if (!ret && k != in->n_docs)
		ret = error("'%s': fewer documents than on the first reading", in->path);
	shard_release(w);	/* before the records' memory goes */
	shard_close_reader(r);
	in->spool = NULL;
	buf_free(&in->mem);
	return ret < 0 ? -1 : 0;
}

struct shard_writer *dedup_open_output(const char *path, const uint64_t param[2],
				       const struct dedup_cfg *c, int threads)
{
	struct shard_writer *w;
	#pragma omp critical(shard_live)
	w = shard_create(path, SHARD_DOCS, param);
	if (w) {
		shard_set_level(w, shard_auto_level(path, c->level, DEDUP_LEVEL));
		shard_set_threads(w, threads);
	}
	return w;
}

static int write_stdout(struct dedup_input *ins, size_t n, const struct dedup_cfg *c)
{
	struct shard_writer *w = dedup_open_output("-", n ? ins[0].param : NULL, c, c->threads);
	if (!w)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (write_input(&ins[i], w)) {
			shard_abort(w);
			return -1;
		}
	return shard_close(w);
}

int dedup_write_outputs(struct dedup_input *ins, size_t n, const struct dedup_cfg *c,
			const struct outdir_stage *stage)
{
	if (!strcmp(c->outdir, "-"))
		return write_stdout(ins, n, c);
	int failed = 0;
	/* fewer parts than threads: the rest compress their blocks */
	int per = n && n < (size_t)c->threads ? c->threads / (int)n : 1;
	#pragma omp parallel for schedule(dynamic, 1) num_threads(c->threads)
	for (size_t i = 0; i < n; i++) {
		if (failed)
			continue;
		struct shard_writer *w = dedup_open_output(stage->paths[i], ins[i].param, c, per);
		int e = !w || write_input(&ins[i], w);
		#pragma omp critical(shard_live)
		{
			if (w && e)
				shard_abort(w);
			else if (w && shard_close(w))
				e = 1;
		}
		if (e) {
			#pragma omp atomic write
			failed = 1;
		}
	}
	return failed ? -1 : 0;
}

void dedup_dry_run_totals(struct dedup_input *ins, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (uint64_t k = 0; k < ins[i].n_docs; k++)
			if (ins[i].status[k] == DEDUP_KEEP) {
				ins[i].docs_out++;
				ins[i].bytes_out += ins[i].clen[k];
			}
}

int dedup_publish(struct dedup_input *ins, size_t n, const char *outdir,
		  const struct outdir_stage *stage, struct shardset *set, struct buf *names)
{
	int64_t next = outdir_next_number(outdir, "docs");
	if (next < 0)
		exit(EXIT_ERR);
	/* the entries first, from the staged files: nothing is moved in for a set that cannot
	 * be written down */
	size_t first = set->n;
	for (size_t i = 0; i < n; i++) {
		if (!ins[i].docs_out)
			continue;
		char *dst = outdir_shard_path(outdir, "docs", (uint64_t)next + (set->n - first));
		const char *base = strrchr(dst, '/') + 1;
		int e = shardset_add_file(set, stage->paths[i], base);
		free(dst);
		if (e)
			return -1;
	}
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		if (!ins[i].docs_out) {
			unlink(stage->paths[i]);
			continue;
		}
		char *dst = outdir_stage_publish(stage, i, outdir, "docs",
						 (uint64_t)next++, &failed);
		if (names->len)
			buf_putc(names, ',');
		json_cstr(names, dst);
		free(dst);
	}
	return failed || shardset_write(outdir, set) ? -1 : 0;
}
