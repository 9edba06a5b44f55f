/* test-dist: cp-dedup's pass 1 over ranks (dedup/dist.c), here on one rank, against the one
 * process's pass 1 (dedup/passes.c) on the same shards: random documents with exact copies
 * (within and across shards) and families of near duplicates at similarities on both sides
 * of the threshold. Every document's status, the confirmed pairs (in their order), the index
 * written and the report's totals must be the one process's, also for a second run against
 * the first run's index; and a --max-mem too small stops the run. */
#include "scratch.h"
#include "tap.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "dedup/dist.h"
#include "shard/doc.h"
#include "shard/shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-dist.XXXXXX";
static uint64_t rng = 14;

static uint64_t rnd(uint64_t n)
{
	rng = mix64(rng + 0x9e3779b97f4a7c15ull);
	return rng % n;
}

/* a document: content TAG (its hash: equal tags are exact copies), signature family FAM
 * with VAR * 3 of its 256 values changed (J = 1 - 3 VAR / 256; 0.85 lies between 12 and 13) */
static void put_doc(struct shard_writer *w, int tag, int fam, int var, int no)
{
	unsigned char mh[4 * DOC_MINHASH_PERM];
	char origin[32], content[32];
	snprintf(origin, sizeof origin, "doc-%d", no);
	snprintf(content, sizeof content, "text %d", tag);
	struct doc d = { 0 };
	d.origin = origin;
	d.origin_len = strlen(origin);
	d.content = content;
	d.content_len = d.size = strlen(content);
	uint64_t h = mix64((uint64_t)tag);
	memcpy(d.hash, &h, 8);
	h = mix64(h);
	memcpy(d.hash + 8, &h, 8);
	d.st = (struct doc_stats){ .n_chars = 100, .n_alnum = 60, .n_lines = 2, .line_sum = 100,
				   .line_max = 50, .n_eq = 10 };
	for (int k = 0; k < DOC_MINHASH_PERM; k++) {
		uint32_t v = (uint32_t)mix64((uint64_t)fam * 1000 + (uint64_t)k);
		if (k < 3 * var)
			v = (uint32_t)mix64((uint64_t)tag * 7777 + (uint64_t)k);
		for (int b = 0; b < 4; b++)
			mh[4 * k + b] = (unsigned char)(v >> (8 * b));
	}
	d.n_minhash = DOC_MINHASH_PERM;
	d.minhash = mh;
	struct buf b = { 0 };
	doc_encode(&b, &d);
	shard_write(w, b.p, b.len);
	buf_free(&b);
}

static void make_input(const char *name, int n, int first_tag)
{
	struct shard_writer *w = shard_create(scratch_path(dir, name), SHARD_DOCS, NULL);
	shard_set_block_size(w, 256);	/* blocks enough for parts */
	for (int i = 0; i < n; i++) {
		int tag = rnd(4) ? first_tag + i : 1 + (int)rnd((uint64_t)(first_tag + i));
		put_doc(w, tag, 1 + (int)rnd(40), (int)rnd(16), first_tag + i);
	}
	shard_close(w);
}

struct result {
	struct buf status, pairs, index;
	struct dedup_totals t;
	int failed;
};

static void read_file(const char *path, struct buf *b)
{
	FILE *f = fopen(path, "rb");
	char chunk[4096];
	size_t k;
	while (f && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
		buf_put(b, chunk, k);
	if (f)
		fclose(f);
}

/* pass 1 over the inputs, one process's (DIST 0) or the ranks' (1), and what it decided */
static void decide(int dist, const char *index, uint64_t max_mem, struct result *r)
{
	char *list[] = { scratch_path(dir, "a.shard"), scratch_path(dir, "b.shard"),
			 scratch_path(dir, "c.shard") };
	for (int i = 0; i < 3; i++)
		list[i] = xstrdup(list[i]);
	struct dedup_cfg c = { .threads = 2, .near = 1, .threshold = 0.85, .dry_run = 1,
			       .filt = FILTER_CFG_DEFAULT, .outdir = "-", .pairs = "-",
			       .index = index };
	struct dedup_input *ins;
	uint64_t expect;
	size_t n = dedup_plan_parts(list, 3, &ins, &expect);
	struct dedup_state s;
	memset(r, 0, sizeof *r);
	r->failed = dist ? dedup_dist_init(&s, &c, n, max_mem) || dedup_dist_decide(&s, ins, n)
			 : dedup_state_init(&s, &c, expect) || dedup_decide(&s, ins, n);
	if (!r->failed) {
		for (size_t i = 0; i < n; i++)
			buf_put(&r->status, ins[i].status, ins[i].n_docs);
		for (size_t i = 0; i < s.n_pairs; i++)
			buf_printf(&r->pairs, "%u %u %.6f\n", s.pairs[i].a, s.pairs[i].b, s.pairs[i].j);
		const char *ix = scratch_path(dir, "saved.idx");
		if (!(dist ? dedup_dist_save_index(&s, ix) : dedup_save_index(&s, ix)))
			read_file(ix, &r->index);
		dedup_dry_run_totals(ins, n);
		if (dist)
			dedup_dist_totals(&r->t, &s, ins, n);
		else
			dedup_totals_compute(&r->t, &s, ins, n);
	}
	dedup_inputs_free(ins, n);
	dedup_state_free(&s);
	for (int i = 0; i < 3; i++)
		free(list[i]);
}

static int same_buf(const struct buf *a, const struct buf *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->p, b->p, a->len));
}

static void compare(const char *what, const char *index)
{
	struct result one, ranks;
	decide(0, index, 0, &one);
	decide(1, index, 0, &ranks);
	ok(!one.failed && !ranks.failed, "%s: both decide", what);
	is_int(ranks.status.len, one.status.len, "%s: every document (%zu)", what, one.status.len);
	ok(same_buf(&one.status, &ranks.status), "%s: every status is one process's", what);
	ok(one.t.n[DEDUP_EXACT] > 50 && one.t.n[DEDUP_NEAR] > 50 && one.t.n[DEDUP_KEEP] > 20,
	   "%s: exact (%llu) and near (%llu) duplicates and documents kept (%llu)", what,
	   (unsigned long long)one.t.n[DEDUP_EXACT], (unsigned long long)one.t.n[DEDUP_NEAR],
	   (unsigned long long)one.t.n[DEDUP_KEEP]);
	ok(one.pairs.len && same_buf(&one.pairs, &ranks.pairs),
	   "%s: the same confirmed pairs in the same order", what);
	ok(one.index.len && same_buf(&one.index, &ranks.index), "%s: the same index bytes", what);
	ok(!memcmp(one.t.n, ranks.t.n, sizeof one.t.n) && one.t.docs_in == ranks.t.docs_in &&
	   one.t.docs_out == ranks.t.docs_out && one.t.n_unique == ranks.t.n_unique &&
	   !memcmp(one.t.share, ranks.t.share, sizeof one.t.share), "%s: the same totals", what);
	struct result *rs[] = { &one, &ranks };
	for (int k = 0; k < 2; k++) {
		buf_free(&rs[k]->status);
		buf_free(&rs[k]->pairs);
		buf_free(&rs[k]->index);
	}
}

int main(void)
{
	cp_quiet = 1;
	if (!mkdtemp(dir))
		return 1;
	setenv("CP_DEDUP_PART_BYTES", "4000", 1);	/* many parts */
	make_input("a.shard", 300, 1);
	make_input("b.shard", 200, 301);
	make_input("c.shard", 300, 501);
	compare("a new run", NULL);
	char *ix = xstrdup(scratch_path(dir, "first.idx"));
	struct result r;
	decide(0, NULL, 0, &r);
	FILE *f = fopen(ix, "wb");
	fwrite(r.index.p, 1, r.index.len, f);
	fclose(f);
	buf_free(&r.status);
	buf_free(&r.pairs);
	buf_free(&r.index);
	make_input("a.shard", 250, 801);	/* new documents, copies of the old ones among them */
	compare("against an index", ix);
	decide(1, NULL, 1000, &r);
	ok(r.failed, "--max-mem 1000: the run stops");
	free(ix);
	scratch_remove(dir);
	return done_testing();
}
