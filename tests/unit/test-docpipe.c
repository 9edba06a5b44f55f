/* test-docpipe: cp-hash's pipeline from paths to records. A tree, single files and a JSON-lines
 * dump go through it with a measuring function of the test's own: the records come in the
 * walk's full-path byte order, carry each file's exact bytes (or, with no_content, only their
 * size), skip what is binary, too large, blank or malformed (counted), and are the same bytes
 * for 1, 2 and 5 threads, over more documents than one batch holds; and over ranks (their
 * messages passed here in memory), rank 0 writes those same records, the others nothing. */
#include "scratch.h"
#include "tap.h"
#include "base/buf.h"
#include "base/die.h"
#include "input/docpipe.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-docpipe.XXXXXX";

static char *at(const char *name)
{
	return scratch_path(dir, name);
}

static void put(const char *name, const void *p, size_t n)
{
	FILE *f = fopen(at(name), "wb");
	fwrite(p, 1, n, f);
	fclose(f);
}

static void puts_file(const char *name, const char *text)
{
	put(name, text, strlen(text));
}

struct got {
	struct buf recs;	/* every record, length-prefixed */
	struct buf list;	/* "origin|content|size|n_chars|meta|no_content\n" per record */
	struct buf origins;	/* "origin\n" per record */
	int bad_thread, threads;
};

/* a stand-in for docstats: the length as n_chars, the first bytes as the hash */
static void measure(void *arg, int t, const unsigned char *content, size_t len, struct doc *d,
		    unsigned char *minhash)
{
	struct got *g = arg;
	(void)minhash;
	if (t < 0 || t >= g->threads)
		g->bad_thread = 1;
	memset(&d->st, 0, sizeof d->st);
	d->st.n_chars = len;
	memset(d->hash, 0, 16);
	memcpy(d->hash, content, len < 16 ? len : 16);
	d->n_minhash = 0;
}

static void write_rec(void *arg, const void *rec, size_t len)
{
	struct got *g = arg;
	uint32_t n = (uint32_t)len;
	buf_put(&g->recs, &n, 4);
	buf_put(&g->recs, rec, len);
	struct doc d;
	if (doc_decode(rec, len, &d)) {
		buf_puts(&g->list, "BAD\n");
		return;
	}
	buf_printf(&g->origins, "%.*s\n", (int)d.origin_len, d.origin);
	buf_printf(&g->list, "%.*s|%.*s|%zu|%llu|%.*s|%u\n", (int)d.origin_len, d.origin,
		   (int)d.content_len, d.content, d.size, (unsigned long long)d.st.n_chars,
		   (int)d.meta_len, d.meta, (unsigned)(d.st.flags & DOC_NO_CONTENT ? 1 : 0));
}

/* Ranks in one process: what rank r sends to rank 0 is queued in sent[r], in order. */
#define MAX_RANKS 4
static struct buf sent[MAX_RANKS][4096];
static size_t n_sent[MAX_RANKS], n_taken[MAX_RANKS];
static int sender, recv_bad;

static void send_msg(void *arg, const void *p, size_t n)
{
	(void)arg;
	struct buf *b = &sent[sender][n_sent[sender]++];
	buf_put(b, p, n);
}

static void recv_msg(void *arg, int from, struct buf *b)
{
	(void)arg;
	if (from <= 0 || from >= MAX_RANKS || n_taken[from] == n_sent[from]) {
		recv_bad = 1;
		buf_reset(b);
		return;
	}
	struct buf *m = &sent[from][n_taken[from]++];
	buf_reset(b);
	buf_put(b, m->p, m->len);
	buf_free(m);
}

static int run_rank(struct got *g, int threads, int no_content, char **paths, int n,
		    struct docpipe_counts *c, int rank, int nranks)
{
	static const char *const pat[] = { "*.py" };
	memset(g, 0, sizeof *g);
	g->threads = threads;
	struct docpipe_opts o = { .threads = threads, .no_content = no_content, .field = "content",
				  .max_size = 1000, .max_line = 1 << 20, .patterns = pat,
				  .n_patterns = 1, .measure = measure, .write = write_rec, .arg = g,
				  .rank = rank, .nranks = nranks, .send = send_msg, .recv = recv_msg };
	sender = rank;
	return docpipe_run(&o, paths, n, c);
}

static int run(struct got *g, int threads, int no_content, char **paths, int n,
	       struct docpipe_counts *c)
{
	return run_rank(g, threads, no_content, paths, n, c, 0, 1);
}

static void test_small(void)
{
	mkdir(at("d"), 0777);
	mkdir(at("d/a"), 0777);
	puts_file("d/a.py", "x = 1\n");
	puts_file("d/a/b.py", "def f():\n    pass\n");
	puts_file("d/a0.py", "y = 2\n");
	puts_file("d/note.txt", "not python\n");
	put("d/bin.py", "ab\0cd", 5);
	char big[1500];
	memset(big, 'z', sizeof big);
	put("d/big.py", big, sizeof big);
	puts_file("data.jsonl", "{\"content\": \"print(1)\\n\", \"repo\": \"r\"}\n\n{\"content\": 5}\n"
		  "{\"content\": \"q\"}\n");
	char *paths[] = { at("d"), at("data.jsonl") };
	struct got g;
	struct docpipe_counts c;
	int r = run(&g, 1, 0, paths, 2, &c);
	char want[2048];
	snprintf(want, sizeof want,
		 "%s|x = 1\n|6|6||0\n%s|def f():\n    pass\n|18|18||0\n%s|y = 2\n|6|6||0\n"
		 "%s:1|print(1)\n|9|9|{\"repo\":\"r\"}|0\n%s:4|q|1|1||0\n",
		 at("d/a.py"), at("d/a/b.py"), at("d/a0.py"), at("data.jsonl"), at("data.jsonl"));
	buf_putc(&g.list, 0);
	is_str((const char *)g.list.p, want, "records in full-path byte order, then the dump's lines");
	is_int(r, 0, "nothing unreadable");
	is_int(c.docs, 5, "5 documents");
	is_int(c.bytes, 6 + 18 + 6 + 9 + 1, "their bytes");
	is_int(c.binary, 1, "a file with a NUL byte is binary, skipped");
	is_int(c.too_large, 1, "a file over max_size is skipped");
	is_int(c.malformed, 1, "a line without a text field is malformed");
	ok(!g.bad_thread, "measured on threads 0 to threads - 1");
	buf_free(&g.recs);
	buf_free(&g.list);
	buf_free(&g.origins);

	r = run(&g, 2, 1, paths, 2, &c);
	snprintf(want, sizeof want, "%s||6|6||1\n", at("d/a.py"));
	buf_putc(&g.list, 0);
	ok(!strncmp((const char *)g.list.p, want, strlen(want)),
	   "no_content: the size is kept, the bytes are not");
	buf_free(&g.recs);
	buf_free(&g.list);
	buf_free(&g.origins);

	char *missing[] = { at("nothere"), at("d/a.py") };
	r = run(&g, 2, 0, missing, 2, &c);
	is_int(r, 1, "a missing path: an error");
	is_int(c.unreadable, 1, "... counted as unreadable");
	is_int(c.docs, 1, "and the other path is still read");
	buf_free(&g.recs);
	buf_free(&g.list);
	buf_free(&g.origins);
}

/* more files than one batch (4096) takes, at several thread counts */
static void test_many(void)
{
	mkdir(at("many"), 0777);
	int n = 5000;
	for (int i = 0; i < n; i++) {
		char name[64], text[64];
		snprintf(name, sizeof name, "many/f%05d.py", (i * 7919) % n);
		snprintf(text, sizeof text, "v = %d\n", i);
		puts_file(name, text);
	}
	char *paths[] = { at("many"), at("data.jsonl") };
	struct got one, g;
	struct docpipe_counts c;
	run(&one, 1, 0, paths, 2, &c);
	is_int(c.docs, n + 2, "every file of a large tree");
	int sorted = 1;
	buf_putc(&one.origins, 0);
	const char *p = (const char *)one.origins.p, *prev = NULL;
	for (int i = 0; i < n; i++) {
		if (prev && strcmp(prev, p) >= 0)
			sorted = 0;	/* fixed width: strcmp over the rest orders the lines */
		prev = p;
		p = strchr(p, '\n') + 1;
	}
	ok(sorted, "in byte order of their paths");
	for (int t = 2; t <= 5; t += 3) {
		run(&g, t, 0, paths, 2, &c);
		ok(g.recs.len == one.recs.len && !memcmp(g.recs.p, one.recs.p, g.recs.len),
		   "%d threads: the same record bytes as one", t);
		buf_free(&g.recs);
		buf_free(&g.list);
		buf_free(&g.origins);
	}
	buf_free(&one.recs);
	buf_free(&one.list);
	buf_free(&one.origins);
}

static void got_free(struct got *g)
{
	buf_free(&g->recs);
	buf_free(&g->list);
	buf_free(&g->origins);
}

/* the trees of both tests over 2 and 3 ranks, in batches of 37: the ranks after 0 first,
 * each sending all it measures, then rank 0 taking it in */
static void test_ranks(void)
{
	char *paths[] = { at("d"), at("many"), at("data.jsonl") };
	struct got one, g;
	struct docpipe_counts c1, c;
	int r1 = run(&one, 2, 0, paths, 3, &c1);
	setenv("CP_DOCPIPE_BATCH_ITEMS", "37", 1);
	for (int nr = 2; nr <= 3; nr++) {
		memset(n_sent, 0, sizeof n_sent);
		memset(n_taken, 0, sizeof n_taken);
		recv_bad = 0;
		size_t others = 0;
		for (int rank = nr - 1; rank >= 1; rank--) {
			run_rank(&g, 2, 0, paths, 3, &c, rank, nr);
			others += g.recs.len;
			got_free(&g);
		}
		ok(!others, "%d ranks: only rank 0 writes", nr);
		ok(n_sent[1] > 10, "%d ranks: rank 1 measured batches of its own (%zu)", nr, n_sent[1]);
		int r = run_rank(&g, 2, 0, paths, 3, &c, 0, nr);
		ok(!recv_bad && n_taken[1] == n_sent[1] && n_taken[nr - 1] == n_sent[nr - 1],
		   "%d ranks: rank 0 took every batch the others sent", nr);
		ok(g.recs.len == one.recs.len && !memcmp(g.recs.p, one.recs.p, g.recs.len),
		   "%d ranks: rank 0 writes the records one process writes", nr);
		ok(r == r1 && c.docs == c1.docs && c.binary == c1.binary &&
		   c.too_large == c1.too_large && c.malformed == c1.malformed,
		   "%d ranks: the same counts (%llu docs, %llu binary, %llu malformed)", nr,
		   (unsigned long long)c.docs, (unsigned long long)c.binary,
		   (unsigned long long)c.malformed);
		got_free(&g);
	}
	unsetenv("CP_DOCPIPE_BATCH_ITEMS");
	got_free(&one);
}

int main(void)
{
	cp_quiet = 1;
	if (!mkdtemp(dir))
		return 1;
	test_small();
	test_many();
	test_ranks();
	scratch_remove(dir);
	return done_testing();
}
