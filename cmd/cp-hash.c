/* cp-hash: the first stage. Reads source trees and JSON-lines dumps and writes document
 * shards carrying each document's content, origin, metadata, exact hash, CodeParrot quality
 * statistics and MinHash signature (man/cp-hash.1).
 *
 * The main thread gathers documents in input order into batches; OpenMP threads read files,
 * parse JSON lines and measure, while one of them writes the batch measured before, in
 * order, so the output is the same bytes for any thread count. */
#include "base/die.h"
#include "shard/doc.h"
#include "dedup/docstats.h"
#include "base/io.h"
#include "input/jsonl.h"
#include "base/ompwait.h"
#include "base/cli.h"
#include "shard/shard.h"
#include "input/walk.h"
#include "base/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

static const char usage_text[] =
	"usage: cp-hash [-j THREADS] [-o OUT] [-L LEVEL] [-p GLOB]... [--field NAME] [--jsonl]\n"
	"               [--max-size BYTES] [--max-line BYTES] [--shard-docs N] [--shard-bytes BYTES]\n"
	"               [--strict] [--minhash datasketch|xxh3|none] [--no-content] [-q] PATH...\n"
	"\n"
	"  -j THREADS          worker threads (default: all CPUs)\n"
	"  -o OUT              a shard file, a directory of shards (ends in '/' or exists),\n"
	"                      or '-' for standard output (the default when not a terminal)\n"
	"  -p, --pattern GLOB  files taken from directories (default *.py; repeatable)\n"
	"  --field NAME        the text field of JSON lines (default content)\n"
	"  --max-size BYTES    skip larger documents (default 1000000; 0: no limit)\n"
	"  --max-line BYTES    skip longer JSON lines (default 256M)\n"
	"  --jsonl             read each PATH that is a file or a pipe as JSON lines, whatever\n"
	"                      its name (zcat dump.gz | cp-hash --jsonl /dev/stdin)\n"
	"  --shard-docs N      directory output: start a new shard after N documents\n"
	"  --shard-bytes BYTES directory output: ... after this many record bytes (default 256M)\n"
	"  --strict            a malformed JSON line or unreadable input is fatal\n"
	"  --minhash SCHEME    datasketch (default: equal to datasketch's MinHash(num_perm=256)\n"
	"                      signatures), xxh3 (faster) or none (no signatures: for exact\n"
	"                      dedup and filters alone, cp-dedup --no-near)\n"
	"  --no-content        records without the documents' bytes (their size is kept):\n"
	"                      enough for a report (cp-dedup -n), not for a corpus\n"
	"  -L, --level N       zstd level of the shards, -7 to 19, 0: store uncompressed\n"
	"                      (default 1; 0 when standard output is a pipe)\n"
	"  -q, --quiet         no summary line, no progress\n"
	"  -h                  show this help\n"
	"PATH is a directory, a JSON-lines file (.jsonl, .json.gz, .jsonl.gz, .jsonl.zst, ...),\n"
	"another file (one document), or '-' for a list of paths on standard input.\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

enum { OUT_STDOUT, OUT_FILE, OUT_DIR };
enum item_kind { IT_FILE, IT_LINE };
enum item_status { ST_OK, ST_BLANK, ST_BINARY, ST_TOO_LARGE, ST_MALFORMED, ST_UNREADABLE };

/* One document to be, in input order. Strings live in the batch arena (offsets, since the
 * arena moves as it grows); results are filled in by a worker. */
struct item {
	enum item_kind kind;
	size_t origin, origin_len;	/* arena offsets */
	size_t data, data_len;		/* IT_LINE: the raw JSON line */
	enum item_status status;
	int rec_t;			/* the encoded record: in the batch's out[rec_t] */
	size_t rec_off, rec_len;
	char *msg;			/* a message to print when written, or NULL */
	uint64_t content_len;
	uint64_t size;			/* IT_FILE: a regular file's size when gathered, or SIZE_UNKNOWN */
};

#define SIZE_UNKNOWN UINT64_MAX

struct batch {
	struct item *items;
	size_t n_items, cap_items;
	struct buf arena;		/* origins and JSON lines */
	/* records, one buffer per thread: reused from batch to batch, they stop needing fresh
	 * memory once they have held a batch (a buffer per item would each grow to the
	 * largest document its slot ever saw) */
	struct buf *out;
	uint64_t bytes;
};

struct worker {
	struct docstats_ctx ds;
	struct buf content, meta, head;
};

struct counts {
	uint64_t docs, bytes, binary, too_large, malformed, unreadable, loops;
};

#define N_BATCH 3
struct ctx {
	/* options */
	int threads, strict, quiet, progress, level, jsonl, no_content;
	enum docstats_minhash minhash;
	const char *field;
	uint64_t max_size, max_line, shard_docs, shard_bytes;
	/* output */
	int out_mode;
	const char *out;
	struct shard_writer *w;
	unsigned shard_no;
	uint64_t shard_n, shard_b;
	/* Documents are gathered into cur; while the threads measure a gathered batch, one of
	 * them writes prev (measured in the round before). With more than one thread the
	 * gathering (walking directories, reading JSON lines) has a thread of its own and hands
	 * full batches over through the queue below; with one, it stops to measure each. */
	struct batch bat[N_BATCH], *cur, *prev;
	int async;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *ready[N_BATCH], *spare[N_BATCH];	/* ready: in input order */
	int n_ready, n_spare, gathered;
	struct worker *workers;
	struct walker *walker;
	struct counts c, gc;	/* counted as written; while gathering (its thread's own) */
	int errors, gerrors;
	time_t last_progress;
	char **paths;		/* the PATH arguments */
	int n_paths;
};

#define BATCH_ITEMS 4096
/* Small enough that the records' buffers, kept from batch to batch, are soon all reused
 * (fresh memory costs a page fault per 4 KiB), big enough to keep the threads busy. */
#define BATCH_BYTES ((uint64_t)16 << 20)

/* ------------------------------------------------------------------ output */

static char *shard_name(const char *dir, unsigned no)
{
	size_t n = strlen(dir);
	return xasprintf("%s%sdocs-%05u" SHARD_EXT, dir, n && dir[n - 1] == '/' ? "" : "/", no);
}

static void out_open_next(struct ctx *x)
{
	static const uint64_t param[2] = { 0, 0 };
	const char *path = x->out;
	char *name = NULL;
	if (x->out_mode == OUT_DIR)
		path = name = shard_name(x->out, x->shard_no);
	else if (x->out_mode == OUT_STDOUT)
		path = "-";
	x->w = shard_create(path, SHARD_DOCS, param);
	/* One thread compresses everything the others measure: zstd level 1 keeps up about 1.5
	 * times better than the default 3, for shards some 8% larger, and cp-dedup rewrites them. */
	if (x->w)
		shard_set_level(x->w, shard_auto_level(path, x->level, 1));
	free(name);
	if (!x->w)
		exit(EXIT_ERR);
	x->shard_n = x->shard_b = 0;
}

static void out_close(struct ctx *x)
{
	if (!x->w)
		return;
	int r = shard_close(x->w);
	x->w = NULL;
	x->shard_no++;
	if (r) {
		shard_abort_all();
		exit(EXIT_ERR);
	}
}

static void out_write(struct ctx *x, const void *rec, size_t len)
{
	if (x->w && x->out_mode == OUT_DIR &&
	    ((x->shard_docs && x->shard_n >= x->shard_docs) ||
	     (x->shard_bytes && x->shard_b + len > x->shard_bytes && x->shard_n)))
		out_close(x);
	if (!x->w)
		out_open_next(x);
	if (shard_write(x->w, rec, len)) {
		shard_abort_all();
		exit(EXIT_ERR);
	}
	x->shard_n++;
	x->shard_b += len;
}

/* Directory output: remove docs-NNNNN.shard left by an earlier, longer run, so the
 * directory holds exactly this run's corpus. */
static void out_remove_stale(struct ctx *x)
{
	DIR *d = opendir(x->out);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned no;
		char tail[2];
		if (strlen(de->d_name) != strlen("docs-00000" SHARD_EXT) ||
		    sscanf(de->d_name, "docs-%5u.shar%1s", &no, tail) != 2 || strcmp(tail, "d") ||
		    no < x->shard_no)
			continue;
		char *p = shard_name(x->out, no);
		if (unlink(p))
			warning("cannot remove stale shard '%s': %s", p, strerror(errno));
		free(p);
	}
	closedir(d);
}

static void out_finish(struct ctx *x)
{
	if (!x->w && !x->shard_no)
		out_open_next(x);	/* no documents: still an (empty) shard */
	out_close(x);
	if (x->out_mode == OUT_DIR)
		out_remove_stale(x);
}

static void fatal(const char *what)
{
	shard_abort_all();
	die("stopping (--strict): %s", what);
}

/* ------------------------------------------------------------------ workers */

/* Append the file at PATH to B. SIZE: what the walk's stat said, so that a regular file needs
 * no second one (a file that changed since is still read to its end), or SIZE_UNKNOWN. */
static int read_doc_file(const char *path, uint64_t size, uint64_t max_size, struct buf *b,
			 char **msg, enum item_status *status)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		*msg = xasprintf("cannot open '%s': %s", path, strerror(errno));
		*status = ST_UNREADABLE;
		return -1;
	}
	struct stat st = { .st_size = (off_t)size };
	int regular = size != SIZE_UNKNOWN || (!fstat(fd, &st) && S_ISREG(st.st_mode));
	if (regular && max_size && (uint64_t)st.st_size > max_size) {
		close(fd);
		*status = ST_TOO_LARGE;
		return -1;
	}
	size_t base = b->len;
	/* room for the whole file and one byte more, so one read usually meets the end */
	size_t want = regular ? (size_t)st.st_size + 1 : 1 << 16;
	for (;;) {
		buf_grow(b, want);
		want = 1 << 16;
		size_t room = b->cap - b->len;
		ssize_t r = read(fd, b->p + b->len, room);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*msg = xasprintf("cannot read '%s': %s", path, strerror(errno));
			*status = ST_UNREADABLE;
			close(fd);
			return -1;
		}
		if (!r)
			break;
		b->len += (size_t)r;
		if (max_size && b->len - base > max_size) {	/* a pipe, or a file that grew */
			close(fd);
			*status = ST_TOO_LARGE;
			return -1;
		}
		/* a regular file gives what it has: a short read is its end (not so for files of
		 * "size 0" in /proc and the like) */
		if (regular && st.st_size && (size_t)r < room && b->len - base >= (size_t)st.st_size)
			break;
	}
	close(fd);
	return 0;
}

/* The document of CONTENT (LEN bytes) of item IT measured and encoded into out[t]. In place:
 * CONTENT lies in out[t] already, doc_head_bound() bytes past START, and the record's head
 * is put right before it, so the content is never copied. */
static void encode_item(struct ctx *x, struct batch *b, struct item *it, int t,
			const char *origin, const unsigned char *content, size_t len,
			int in_place, size_t start)
{
	struct worker *wk = &x->workers[t];
	struct buf *out = &b->out[t];
	int too_large = x->max_size && len > x->max_size;
	if (too_large || (len && memchr(content, 0, len))) {
		it->status = too_large ? ST_TOO_LARGE : ST_BINARY;
		if (in_place)
			out->len = start;
		return;
	}
	struct doc d = { 0 };
	unsigned char mh[4 * DOC_MINHASH_PERM];
	d.id = XXH3_64bits(origin, it->origin_len);
	d.origin = origin;
	d.origin_len = it->origin_len;
	d.meta = (const char *)wk->meta.p;
	d.meta_len = wk->meta.len;
	d.content = (const char *)content;
	d.content_len = len;
	docstats_compute(&wk->ds, content, len, &d.st, d.hash, mh, &d.n_minhash);
	d.minhash = mh;
	if (x->no_content) {	/* the head is the whole record */
		d.st.flags |= DOC_NO_CONTENT;
		d.size = len;
	}
	it->rec_t = t;
	it->content_len = len;
	if (!in_place) {
		it->rec_off = out->len;
		doc_encode(out, &d);
		it->rec_len = out->len - it->rec_off;
		return;
	}
	buf_reset(&wk->head);
	doc_encode_head(&wk->head, &d);
	size_t at = start + doc_head_bound(it->origin_len, 0) - wk->head.len;
	memcpy(out->p + at, wk->head.p, wk->head.len);
	it->rec_off = at;
	it->rec_len = wk->head.len;
	if (x->no_content)
		out->len = at + wk->head.len;	/* the bytes' room is the next one's */
	else
		it->rec_len += len;
}

static void process_item(struct ctx *x, struct batch *b, struct item *it, int t)
{
	struct worker *wk = &x->workers[t];
	const char *arena = (const char *)b->arena.p;
	const char *origin = arena + it->origin;
	it->rec_len = 0;
	buf_reset(&wk->meta);
	if (it->status != ST_OK)	/* decided while gathering */
		return;
	if (it->kind == IT_FILE) {
		/* read straight into the record buffer, after room for the record's head */
		struct buf *out = &b->out[t];
		size_t start = out->len, room = doc_head_bound(it->origin_len, 0);
		buf_grow(out, room);
		out->len = start + room;
		if (read_doc_file(origin, it->size, x->max_size, out, &it->msg, &it->status)) {
			out->len = start;
			return;
		}
		encode_item(x, b, it, t, origin, out->p + start + room, out->len - start - room,
			    1, start);
		return;
	}
	struct jsonl_error e;
	int r = jsonl_parse(arena + it->data, it->data_len, x->field, &wk->content, &wk->meta,
			    &e);
	if (r == 1) {
		it->status = ST_BLANK;
		return;
	}
	if (r < 0) {
		it->status = ST_MALFORMED;
		it->msg = xasprintf("%.*s: malformed JSON line: %s (byte %zu)",
				    (int)it->origin_len, origin, e.why, e.offset);
		return;
	}
	encode_item(x, b, it, t, origin, wk->content.p, wk->content.len, 0, 0);
}

static void progress(struct ctx *x, int final)
{
	if (!x->progress)
		return;
	time_t now = time(NULL);
	if (!final && now == x->last_progress)
		return;
	x->last_progress = now;
	fprintf(stderr, "\r%s: %llu docs, %.1f MB", cp_progname, (unsigned long long)x->c.docs,
		(double)x->c.bytes / 1e6);
	if (final)
		fputs("\r\033[K", stderr);
}

/* Write a measured batch in input order: messages, counts, records. */
static void write_batch(struct ctx *x, struct batch *b)
{
	for (size_t i = 0; i < b->n_items; i++) {
		struct item *it = &b->items[i];
		if (it->msg) {
			if (x->strict && it->status != ST_OK)
				fatal(it->msg);
			if (it->status == ST_UNREADABLE)
				error("%s", it->msg);
			else
				warning("%s", it->msg);
			free(it->msg);
			it->msg = NULL;
		}
		switch (it->status) {
		case ST_OK:
			out_write(x, b->out[it->rec_t].p + it->rec_off, it->rec_len);
			x->c.docs++;
			x->c.bytes += it->content_len;
			break;
		case ST_BLANK: break;
		case ST_BINARY: x->c.binary++; break;
		case ST_TOO_LARGE: x->c.too_large++; break;
		case ST_MALFORMED: x->c.malformed++; break;
		case ST_UNREADABLE: x->c.unreadable++; x->errors = 1; break;
		}
	}
	b->n_items = 0;
	b->bytes = 0;
	buf_reset(&b->arena);
	for (int t = 0; t < x->threads; t++)
		buf_reset(&b->out[t]);
	progress(x, 0);
}

/* Measure gathered batch B while writing x->prev; B is the next x->prev, and the batch
 * that was is returned, empty. */
static struct batch *measure_batch(struct ctx *x, struct batch *b)
{
	struct batch *prev = x->prev;
	long n = (long)b->n_items;
#pragma omp parallel num_threads(x->threads)
	{
#pragma omp single nowait
		write_batch(x, prev);
#pragma omp for schedule(dynamic, 1) nowait
		for (long i = 0; i < n; i++)
			process_item(x, b, &b->items[i], omp_get_thread_num());
	}
	x->prev = b;
	return prev;
}

/* The gathering side: cur is full (or the last). In line, measure it now; else queue it
 * and wait for an empty batch to go on with. */
static void flush_batch(struct ctx *x)
{
	if (!x->async) {
		x->cur = measure_batch(x, x->cur);
		return;
	}
	pthread_mutex_lock(&x->mu);
	x->ready[x->n_ready++] = x->cur;
	pthread_cond_broadcast(&x->cv);
	while (!x->n_spare)
		pthread_cond_wait(&x->cv, &x->mu);
	x->cur = x->spare[--x->n_spare];
	pthread_mutex_unlock(&x->mu);
}

static void gather_all(struct ctx *x);

static void *gather_thread(void *arg)
{
	struct ctx *x = arg;
	gather_all(x);
	pthread_mutex_lock(&x->mu);
	x->ready[x->n_ready++] = x->cur;	/* the last, maybe empty */
	x->gathered = 1;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* Gather, measure and write everything: batches pass from gathering to measuring to
 * writing in input order. */
static void run_batches(struct ctx *x)
{
	if (!x->async) {
		gather_all(x);
		flush_batch(x);
		write_batch(x, x->prev);
		return;
	}
	pthread_t t;
	int e = pthread_create(&t, NULL, gather_thread, x);
	if (e)
		die("cannot start a thread: %s", strerror(e));
	for (;;) {
		pthread_mutex_lock(&x->mu);
		while (!x->n_ready && !x->gathered)
			pthread_cond_wait(&x->cv, &x->mu);
		if (!x->n_ready) {
			pthread_mutex_unlock(&x->mu);
			break;
		}
		struct batch *b = x->ready[0];
		memmove(x->ready, x->ready + 1, (size_t)--x->n_ready * sizeof *x->ready);
		pthread_mutex_unlock(&x->mu);
		struct batch *done = measure_batch(x, b);
		pthread_mutex_lock(&x->mu);
		x->spare[x->n_spare++] = done;
		pthread_cond_broadcast(&x->cv);
		pthread_mutex_unlock(&x->mu);
	}
	pthread_join(t, NULL);
	write_batch(x, x->prev);
}

static struct item *add_item(struct ctx *x, enum item_kind kind, const char *origin,
			     size_t origin_len, uint64_t bytes)
{
	struct batch *b = x->cur;
	if (b->n_items == BATCH_ITEMS || b->bytes + bytes > BATCH_BYTES) {
		flush_batch(x);
		b = x->cur;
	}
	if (b->n_items == b->cap_items) {
		size_t ncap = b->cap_items ? 2 * b->cap_items : 256;
		b->items = xreallocarray(b->items, ncap, sizeof *b->items);
		memset(b->items + b->cap_items, 0, (ncap - b->cap_items) * sizeof *b->items);
		b->cap_items = ncap;
	}
	struct item *it = &b->items[b->n_items++];
	it->kind = kind;
	it->status = ST_OK;
	it->msg = NULL;
	it->content_len = 0;
	it->size = SIZE_UNKNOWN;
	it->origin = b->arena.len;
	it->origin_len = origin_len;
	buf_put(&b->arena, origin, origin_len);
	buf_putc(&b->arena, 0);	/* workers open it as a path */
	b->bytes += bytes;
	return it;
}

/* ------------------------------------------------------------------ inputs */

static int is_jsonl_name(const char *path)
{
	static const char *const ext[] = { ".jsonl", ".jsonl.gz", ".jsonl.zst", ".ndjson",
					   ".ndjson.gz", ".ndjson.zst", ".json.gz", ".json.zst",
					   NULL };
	size_t n = strlen(path);
	for (const char *const *e = ext; *e; e++) {
		size_t m = strlen(*e);
		if (n > m && !strcmp(path + n - m, *e))
			return 1;
	}
	return 0;
}

static void read_jsonl(struct ctx *x, const char *path)
{
	struct jsonl_reader *r = jsonl_open(path, x->max_line);
	if (!r) {
		if (x->strict)
			fatal("cannot open a JSON-lines file");
		x->gc.unreadable++;
		x->gerrors = 1;
		return;
	}
	size_t plen = strlen(path);
	char *origin = xmalloc(plen + 24);
	memcpy(origin, path, plen);
	for (;;) {
		const char *line;
		size_t len;
		int k = jsonl_next(r, &line, &len);
		if (k == 0)
			break;
		if (k < 0) {
			if (x->strict)
				fatal("cannot read a JSON-lines file");
			x->gc.unreadable++;
			x->gerrors = 1;
			break;
		}
		int on = snprintf(origin + plen, 24, ":%llu", (unsigned long long)jsonl_lineno(r));
		struct item *it = add_item(x, IT_LINE, origin, plen + (size_t)on, len);
		if (k == 2) {
			it->status = ST_MALFORMED;
			it->msg = xasprintf("%s: malformed JSON line: longer than %llu bytes",
					    origin, (unsigned long long)x->max_line);
			it->data = it->data_len = 0;
			continue;
		}
		it->data = x->cur->arena.len;
		it->data_len = len;
		buf_put(&x->cur->arena, line, len);
	}
	free(origin);
	jsonl_close(r);
}

static void add_file(struct ctx *x, const char *path, const struct stat *st)
{
	if (is_jsonl_name(path)) {
		read_jsonl(x, path);
		return;
	}
	if (x->max_size && (uint64_t)st->st_size > x->max_size) {
		x->gc.too_large++;
		return;
	}
	struct item *it = add_item(x, IT_FILE, path, strlen(path), (uint64_t)st->st_size);
	if (S_ISREG(st->st_mode))
		it->size = (uint64_t)st->st_size;
}

static int walk_cb(void *arg, const char *path, const struct stat *st)
{
	add_file(arg, path, st);
	return 0;
}

static void add_path(struct ctx *x, const char *path)
{
	struct stat st;
	if (stat(path, &st)) {
		error_errno("cannot stat '%s'", path);
		if (x->strict)
			fatal("an input cannot be read");
		x->gc.unreadable++;
		x->gerrors = 1;
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		uint64_t before = walk_get_counts(x->walker)->unreadable;
		walk_run(x->walker, path, walk_cb, x);
		if (x->strict && walk_get_counts(x->walker)->unreadable > before)
			fatal("an entry cannot be read");
		return;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {	/* a pipe is one document */
		error("'%s' is neither a regular file, a pipe nor a directory", path);
		x->gc.unreadable++;
		x->gerrors = 1;
		return;
	}
	if (x->jsonl)
		read_jsonl(x, path);
	else
		add_file(x, path, &st);
}

static void add_paths_from_stdin(struct ctx *x)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		if (n)
			add_path(x, line);
	}
	if (ferror(stdin))
		die_errno("cannot read the list of paths from standard input");
	free(line);
}

static void gather_all(struct ctx *x)
{
	for (int i = 0; i < x->n_paths; i++) {
		if (!strcmp(x->paths[i], "-"))
			add_paths_from_stdin(x);
		else
			add_path(x, x->paths[i]);
	}
}

/* ------------------------------------------------------------------ main */

static int is_dir(const char *p)
{
	struct stat st;
	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static void mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(p, 0777) && errno != EEXIST)
			die_errno("cannot create directory '%s'", p);
		*s = '/';
	}
	if (mkdir(p, 0777) && errno != EEXIST)
		die_errno("cannot create directory '%s'", p);
	free(p);
}

int main(int argc, char **argv)
{
	enum { O_FIELD = 256, O_MAXSIZE, O_MAXLINE, O_JSONL, O_SDOCS, O_SBYTES, O_STRICT,
	       O_MINHASH, O_NOCONTENT };
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "field", required_argument, NULL, O_FIELD },
		{ "max-size", required_argument, NULL, O_MAXSIZE },
		{ "max-line", required_argument, NULL, O_MAXLINE },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "shard-docs", required_argument, NULL, O_SDOCS },
		{ "shard-bytes", required_argument, NULL, O_SBYTES },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "minhash", required_argument, NULL, O_MINHASH },
		{ "no-content", no_argument, NULL, O_NOCONTENT },
		{ "level", required_argument, NULL, 'L' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctx x = { .minhash = DOCSTATS_MINHASH_DATASKETCH };
	const char **patterns = xcalloc((size_t)argc + 1, sizeof *patterns);
	size_t n_patterns = 0;
	int c;

	ompwait_passive(argv);
	cp_setprogname(argv[0]);
	x.threads = cpu_count();
	x.level = SHARD_LEVEL_UNSET;
	x.field = "content";
	x.max_size = 1000000;
	x.max_line = (uint64_t)1 << 28;
	x.shard_bytes = (uint64_t)256 << 20;
	while ((c = getopt_long(argc, argv, "hj:o:p:qL:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': usage(EXIT_OK); break;
		case 'j': x.threads = opt_threads("-j", optarg); break;
		case 'o': x.out = optarg; break;
		case 'p': patterns[n_patterns++] = optarg; break;
		case 'q': x.quiet = 1; break;
		case 'L': x.level = opt_int("--level", optarg, SHARD_LEVEL_MIN, SHARD_LEVEL_MAX); break;
		case O_FIELD:
			if (!*optarg)
				die_usage("option '--field' needs a name");
			x.field = optarg;
			break;
		case O_MAXSIZE: x.max_size = opt_u64("--max-size", optarg, 0, UINT64_MAX); break;
		case O_MAXLINE:
			x.max_line = opt_u64("--max-line", optarg, 1, (uint64_t)1 << 40);
			break;
		case O_SDOCS: x.shard_docs = opt_u64("--shard-docs", optarg, 0, UINT64_MAX); break;
		case O_SBYTES:
			x.shard_bytes = opt_u64("--shard-bytes", optarg, 0, UINT64_MAX);
			break;
		case O_STRICT: x.strict = 1; break;
		case O_JSONL: x.jsonl = 1; break;
		case O_NOCONTENT: x.no_content = 1; break;
		case O_MINHASH:
			if (!strcmp(optarg, "xxh3"))
				x.minhash = DOCSTATS_MINHASH_XXH3;
			else if (!strcmp(optarg, "datasketch"))
				x.minhash = DOCSTATS_MINHASH_DATASKETCH;
			else if (!strcmp(optarg, "none"))
				x.minhash = DOCSTATS_MINHASH_NONE;
			else
				die_usage("option '--minhash': unknown scheme '%s' (datasketch, xxh3 "
					  "or none)", optarg);
			break;
		default: usage(EXIT_USAGE);
		}
	}
	if (optind >= argc)
		die_usage("no PATH given");
	if (!n_patterns)
		patterns[n_patterns++] = "*.py";
	int stdin_list = 0;
	for (int i = optind; i < argc; i++)
		stdin_list += !strcmp(argv[i], "-");
	if (stdin_list > 1)
		die_usage("'-' (paths on standard input) may be given only once");

	if (!x.out) {
		if (isatty(STDOUT_FILENO))
			die_usage("standard output is a terminal; name an output with -o");
		x.out = "-";
	}
	size_t ol = strlen(x.out);
	if (!strcmp(x.out, "-")) {
		x.out_mode = OUT_STDOUT;
		refuse_tty(STDOUT_FILENO, "shards");
	} else if (x.out[ol - 1] == '/' || is_dir(x.out)) {
		x.out_mode = OUT_DIR;
		mkdir_p(x.out);
	} else {
		x.out_mode = OUT_FILE;
	}

	shard_cleanup_on_signal();
	x.cur = &x.bat[0];
	x.prev = &x.bat[1];
	x.spare[x.n_spare++] = &x.bat[2];
	x.async = x.threads > 1;
	pthread_mutex_init(&x.mu, NULL);
	pthread_cond_init(&x.cv, NULL);
	x.progress = !x.quiet && isatty(STDERR_FILENO);
	x.walker = walk_new(patterns, n_patterns, x.max_size);
	x.workers = xcalloc((size_t)x.threads, sizeof *x.workers);
	for (int i = 0; i < x.threads; i++)
		docstats_init_scheme(&x.workers[i].ds, x.minhash);
	for (int k = 0; k < N_BATCH; k++)
		x.bat[k].out = xcalloc((size_t)x.threads, sizeof *x.bat[k].out);

	x.paths = argv + optind;
	x.n_paths = argc - optind;
	run_batches(&x);
	out_finish(&x);
	progress(&x, 1);

	const struct walk_counts *wc = walk_get_counts(x.walker);
	x.c.too_large += wc->too_large + x.gc.too_large;
	x.c.unreadable += wc->unreadable + x.gc.unreadable;
	x.c.loops += wc->loops;
	if (wc->unreadable || x.gerrors)
		x.errors = 1;
	if (!x.quiet)
		fprintf(stderr,
			"%s: %llu docs, %llu bytes; skipped: %llu binary, %llu too large, "
			"%llu malformed, %llu unreadable, %llu symlink loops\n",
			cp_progname, (unsigned long long)x.c.docs, (unsigned long long)x.c.bytes,
			(unsigned long long)x.c.binary, (unsigned long long)x.c.too_large,
			(unsigned long long)x.c.malformed, (unsigned long long)x.c.unreadable,
			(unsigned long long)x.c.loops);

	for (int i = 0; i < x.threads; i++) {
		docstats_free(&x.workers[i].ds);
		buf_free(&x.workers[i].content);
		buf_free(&x.workers[i].meta);
		buf_free(&x.workers[i].head);
	}
	for (int k = 0; k < N_BATCH; k++) {
		for (int t = 0; t < x.threads; t++)
			buf_free(&x.bat[k].out[t]);
		free(x.bat[k].out);
		free(x.bat[k].items);
		buf_free(&x.bat[k].arena);
	}
	free(x.workers);
	walk_free(x.walker);
	free(patterns);
	close_stdout();
	return x.errors ? EXIT_ERR : EXIT_OK;
}
