/* docpipe.c: gathering, measuring and writing documents in batches (docpipe.h). */
#include "input/docpipe.h"
#include "base/atomic.h"
#include "base/buf.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/xalloc.h"
#include "input/jsonl.h"
#include "input/walk.h"
#include "shard/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

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
	uint64_t seq;			/* its number in input order, once full; UNSEALED before */
	/* Over ranks: the rank that measures it and its tag, the same on every rank: the count
	 * of shared batches before it, or its part's number (PART_TAG), when it holds lines of
	 * a part of a JSON-lines file (the owner's alone; LAST: the part's last). REMOTE: on
	 * rank 0, where the owner's batches of that part are to be written. */
	int owner, last, remote;
	uint64_t tag;
};

#define PART_TAG ((uint64_t)1 << 63)

#define UNSEALED UINT64_MAX

struct worker {
	struct buf content, meta, head;
};

#define N_BATCH 3
struct pipe {
	const struct docpipe_opts *o;
	int threads;
	/* Documents are gathered into cur; while the threads measure a gathered batch, one of
	 * them writes prev (measured in the round before). */
	struct batch bat[N_BATCH], *cur, *prev;
	int async;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct batch *ready[N_BATCH], *spare[N_BATCH];	/* ready: in input order */
	int n_ready, n_spare, gathered;
	struct worker *workers;
	struct walker *walker;
	struct docpipe_counts c, gc;	/* counted as written; while gathering (its thread's own) */
	int errors, gerrors;
	int gtorn;	/* an input failed part way: some of its documents may be written */
	time_t last_progress;
	char *const *paths;
	int n_paths;
	uint64_t next_seq;	/* the gathering side's */
	uint64_t shared;	/* shared batches sealed */
	int in_part;		/* gathering this rank's part of a file: its tag */
	uint64_t part_tag;
	struct split *splits;	/* per path: its parts, or n == 0 */
	struct walk_tree **trees;	/* per path: the directory the ranks read together */
	struct docpipe_counts pc;	/* counted while gathering parts: this rank's alone */
	int perrors, ptorn;
	size_t batch_items;	/* BATCH_ITEMS, or CP_DOCPIPE_BATCH_ITEMS (tests) */
	uint64_t batch_bytes;	/* BATCH_BYTES or BATCH_BYTES_SMALL */
	struct buf wire;	/* a batch to or from another rank */
	int spread;		/* every rank writes its turns (docpipe_opts' LOAD) */
	uint64_t turns;		/* spread: the turns written so far, on every rank */
	struct buf msgs;	/* spread: this rank's messages: turn, kind, text, NUL */
};

/* A JSON-lines file named on the command line, cut into parts for the ranks: part k is the
 * lines that start in bytes [k * PART_BYTES, (k + 1) * PART_BYTES), at[k] to at[k + 1], the
 * first numbered line0[k] + 1; part k is the (first + k)-th over all files, measured by rank
 * (first + k) % nranks. A compressed file is one part (it is read from its start). */
struct split {
	uint64_t first, n;
	uint64_t *at, *line0;
	int whole;
};

/* About a batch each, so that the ranks take turns as with shared batches (a rank sends a
 * part's batches as it measures them: rank 0 takes them when its turn comes). */
#define PART_BYTES ((uint64_t)4 << 20)

#define BATCH_ITEMS 4096
/* Small enough that the records' buffers, kept from batch to batch, are soon all reused
 * (fresh memory costs a page fault per 4 KiB, and on some VMs a slow first touch), big
 * enough to keep the threads busy (a few hundred documents of the usual size). The buffers
 * grow to about what a thread takes of a batch, for each of the N_BATCH batches: cp-hash
 * -j2 on the Python standard library (174 MB, the documents to a pipe) took 8,700 page
 * faults and 35 MB with 2 MiB batches, 16,600 and 65 MB with 8 MiB.
 *
 * Where threads share the batches, each costs the team a barrier, a wake-up of its
 * sleeping threads (OMP_WAIT_POLICY=passive, base/ompwait.h) and a handoff from the
 * gathering thread, and 8 MiB pays for them: on 2 cores of a VM (11 runs interleaved),
 * cp-hash --no-content -j2 | cp-dedup -n --pairs on that corpus took a median 0.38 s with
 * 8 MiB against 0.41 s with 2 MiB, and cp-hash -j2 | cp-dedup -o clean/ - 0.61 against
 * 0.69 s; the same bytes out. One thread has no team, and under ranks the batches are the
 * turns, which small ones keep even to the end: there 2 MiB (BATCH_BYTES_SMALL). */
#define BATCH_BYTES ((uint64_t)8 << 20)
#define BATCH_BYTES_SMALL ((uint64_t)2 << 20)

static void fatal(const char *what)
{
	atomic_abort_all();
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
static void encode_item(struct pipe *x, struct batch *b, struct item *it, int t,
			const char *origin, const unsigned char *content, size_t len,
			int in_place, size_t start)
{
	struct worker *wk = &x->workers[t];
	struct buf *out = &b->out[t];
	int too_large = x->o->max_size && len > x->o->max_size;
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
	x->o->measure(x->o->arg, t, content, len, &d, mh);
	d.minhash = mh;
	if (x->o->no_content) {	/* the head is the whole record */
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
	if (x->o->no_content)
		out->len = at + wk->head.len;	/* the bytes' room is the next one's */
	else
		it->rec_len += len;
}

static void process_item(struct pipe *x, struct batch *b, struct item *it, int t)
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
		if (read_doc_file(origin, it->size, x->o->max_size, out, &it->msg, &it->status)) {
			out->len = start;
			return;
		}
		encode_item(x, b, it, t, origin, out->p + start + room, out->len - start - room,
			    1, start);
		return;
	}
	struct jsonl_error e;
	int r = jsonl_parse(arena + it->data, it->data_len, x->o->field, &wk->content, &wk->meta,
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

static void progress(struct pipe *x, int final)
{
	if (!x->o->progress)
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

/* ------------------------------------------------------------------ ranks */

/* The rank that measures the T-th batch (or part) that goes round the ranks */
static int turn_owner(const struct pipe *x, uint64_t t)
{
	const struct docpipe_opts *o = x->o;
	if (o->nranks <= 1)
		return 0;
	if (o->rank0_writes && !x->spread)
		return 1 + (int)(t % (uint64_t)(o->nranks - 1));
	return (int)(t % (uint64_t)o->nranks);
}

/* Whether this rank measures batch B */
static int batch_is_mine(const struct pipe *x, const struct batch *b)
{
	return x->o->nranks <= 1 || b->owner == x->o->rank;
}

/* B measured, for rank 0: per item its status, content length, message and record. */
static void send_batch(struct pipe *x, struct batch *b)
{
	struct buf *w = &x->wire;
	buf_reset(w);
	buf_put_varint(w, b->tag);
	buf_put_varint(w, (uint64_t)b->last);
	buf_put_varint(w, b->n_items);
	for (size_t i = 0; i < b->n_items; i++) {
		const struct item *it = &b->items[i];
		size_t ml = it->msg ? strlen(it->msg) : 0;
		buf_putc(w, it->status);
		buf_put_varint(w, it->content_len);
		buf_put_varint(w, it->msg ? ml + 1 : 0);
		buf_put(w, it->msg, ml);
		if (it->status == ST_OK) {
			buf_put_varint(w, it->rec_len);
			buf_put(w, b->out[it->rec_t].p + it->rec_off, it->rec_len);
		}
	}
	x->o->send(x->o->arg, w->p, w->len);
}

static void grow_items(struct batch *b, size_t n)
{
	if (n <= b->cap_items)
		return;
	size_t ncap = b->cap_items ? 2 * b->cap_items : 256;
	ncap = ncap < n ? n : ncap;
	b->items = xreallocarray(b->items, ncap, sizeof *b->items);
	memset(b->items + b->cap_items, 0, (ncap - b->cap_items) * sizeof *b->items);
	b->cap_items = ncap;
}

/* Rank FROM's measuring of B put into B's items: those gathered here too (a shared batch),
 * or, for REMOTE, items of its own (a batch of a part, gathered there alone). 1 when it was
 * the part's last. */
static int recv_batch(struct pipe *x, struct batch *b, int from)
{
	struct buf *w = &x->wire;
	x->o->recv(x->o->arg, from, w);
	struct cursor c = { w->p, w->p + w->len, 0 };
	uint64_t tag = cur_varint(&c), last = cur_varint(&c), n = cur_varint(&c);
	if (!c.err && b->remote && n < SIZE_MAX / sizeof *b->items) {
		grow_items(b, (size_t)n);
		b->n_items = (size_t)n;
	}
	if (c.err || tag != b->tag || n != b->n_items)
		die("rank %d measured batch %llx of %llu documents, this rank gathered batch %llx of "
		    "%zu: did the inputs change while the ranks read them?", from,
		    (unsigned long long)tag, (unsigned long long)n, (unsigned long long)b->tag,
		    b->n_items);
	/* the records stay where they came, in the wire buffer, which becomes out[0] (empty:
	 * nothing of the batch was measured here), rather than copied there: a copy of all
	 * the documents fewer on rank 0, which writes them all */
	struct buf *out = &b->out[0];
	int in_place = !out->len;
	for (size_t i = 0; i < b->n_items && !c.err; i++) {
		struct item *it = &b->items[i];
		free(it->msg);
		it->msg = NULL;
		const unsigned char *st = cur_bytes(&c, 1);
		it->status = st ? (enum item_status)*st : ST_OK;
		it->content_len = cur_varint(&c);
		uint64_t ml = cur_varint(&c);
		const char *m = ml ? cur_bytes(&c, (size_t)ml - 1) : NULL;
		if (m)
			it->msg = xstrndup(m, (size_t)ml - 1);
		if (it->status != ST_OK)
			continue;
		it->rec_len = (size_t)cur_varint(&c);
		const void *rec = cur_bytes(&c, it->rec_len);
		it->rec_t = 0;
		if (in_place) {
			it->rec_off = rec ? (size_t)((const unsigned char *)rec - w->p) : 0;
		} else {
			it->rec_off = out->len;
			if (rec)
				buf_put(out, rec, it->rec_len);
		}
	}
	if (c.err || c.p != c.end)
		die("rank %d sent a batch this rank cannot read", from);
	if (in_place) {
		struct buf t = *out;
		*out = *w;
		*w = t;
	}
	return last != 0;
}

/* B written: empty, for gathering again. */
static void batch_reset(struct pipe *x, struct batch *b)
{
	for (size_t i = 0; i < b->n_items; i++) {
		free(b->items[i].msg);
		b->items[i].msg = NULL;
	}
	b->n_items = 0;
	b->bytes = 0;
	b->seq = UNSEALED;
	b->owner = b->last = b->remote = 0;
	b->tag = 0;
	buf_reset(&b->arena);
	for (int t = 0; t < x->threads; t++)
		buf_reset(&b->out[t]);
}

/* ------------------------------------------------------------------ writing */

static void write_items(struct pipe *x, struct batch *b)
{
	for (size_t i = 0; i < b->n_items; i++) {
		struct item *it = &b->items[i];
		if (it->msg && x->spread) {	/* printed by rank 0 at the end, in order */
			buf_put_u64le(&x->msgs, b->tag);
			buf_putc(&x->msgs, it->status == ST_UNREADABLE);
			buf_put(&x->msgs, it->msg, strlen(it->msg) + 1);
			free(it->msg);
			it->msg = NULL;
		}
		if (it->msg) {
			if (x->o->strict && it->status != ST_OK)
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
			x->o->write(x->o->arg, b->out[it->rec_t].p + it->rec_off, it->rec_len);
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
	if (x->o->release)
		x->o->release(x->o->arg);
}

/* Write a measured batch in input order: messages, counts, records. Over ranks, rank 0 does
 * it for every batch, having the others' measuring sent (a part's batches, one after the
 * other, in place of the REMOTE batch that stands for it); the others send theirs. */
/* Spread: the turn of batch B, written by its rank between the notes before and after. */
static void write_turn(struct pipe *x, struct batch *b)
{
	const struct docpipe_opts *o = x->o;
	int me = o->rank, next = turn_owner(x, b->tag + 1);
	if (x->turns < b->tag + 1)	/* a later turn of another rank may be passed first */
		x->turns = b->tag + 1;
	if (b->owner == me) {
		int from = b->tag ? turn_owner(x, b->tag - 1) : me;
		buf_reset(&x->wire);
		if (from != me)
			o->note_recv(o->arg, from, &x->wire);
		o->load(o->arg, b->tag, from, x->wire.p, x->wire.len);
		write_items(x, b);
		buf_reset(&x->wire);
		o->save(o->arg, &x->wire);
		if (next != me)
			o->note_send(o->arg, next, x->wire.p, x->wire.len);
		if (o->after)
			o->after(o->arg);
	}
	batch_reset(x, b);
}

static void write_batch(struct pipe *x, struct batch *b)
{
	if (x->spread && b->seq != UNSEALED) {
		write_turn(x, b);
		return;
	}
	if (x->o->nranks > 1 && b->seq != UNSEALED) {
		if (x->o->rank) {
			if (b->owner == x->o->rank)
				send_batch(x, b);
			batch_reset(x, b);
			return;
		}
		if (b->remote) {
			for (int last = 0; !last;) {
				last = recv_batch(x, b, b->owner);
				write_items(x, b);
				buf_reset(&b->out[0]);
			}
			b->n_items = 0;
			batch_reset(x, b);
			progress(x, 0);
			return;
		} else if (b->owner) {
			recv_batch(x, b, b->owner);
		}
	}
	write_items(x, b);
	batch_reset(x, b);
	progress(x, 0);
}

/* Spread: whether this rank's turn B can be written now, the note of the turn before it
 * here (or none needed) */
static int turn_ready(const struct pipe *x, const struct batch *b)
{
	const struct docpipe_opts *o = x->o;
	int from = b->tag ? turn_owner(x, b->tag - 1) : o->rank;
	return from == o->rank || !o->note_ready || o->note_ready(o->arg, from);
}

/* Spread, one thread: measure gathered batch B while this rank's turn measured before
 * (x->prev, when sealed) waits for its note, written as soon as the note is here, between
 * two documents; a batch of another rank's passes at once. The turns stay in order, but a
 * rank no longer stops to wait for the rank before it while it has a batch of its own to
 * measure, nor keeps the rank after it waiting once the note is in: in lock step (write,
 * then measure) a rank whose batch took longer held up both. Returns an empty batch. */
static struct batch *measure_turns(struct pipe *x, struct batch *b)
{
	struct batch *p = x->prev;
	if (!batch_is_mine(x, b)) {
		if (p->seq != UNSEALED && turn_ready(x, p))
			write_turn(x, p);
		write_turn(x, b);	/* not this rank's: only counted */
		return b;
	}
	for (size_t i = 0; i < b->n_items; i++) {
		if (p->seq != UNSEALED && turn_ready(x, p))
			write_turn(x, p);
		process_item(x, b, &b->items[i], 0);
	}
	if (p->seq != UNSEALED)
		write_turn(x, p);	/* before B's turn, waiting for the note if need be */
	x->prev = b;
	return p;
}

/* Measure gathered batch B while writing x->prev; B is the next x->prev, and the batch
 * that was is returned, empty. */
static struct batch *measure_batch(struct pipe *x, struct batch *b)
{
	if (x->spread && x->threads == 1 && x->o->note_ready)
		return measure_turns(x, b);
	struct batch *prev = x->prev;
	long n = batch_is_mine(x, b) ? (long)b->n_items : 0;
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
static void flush_batch(struct pipe *x)
{
	struct batch *b = x->cur;
	b->seq = x->next_seq++;
	if (x->in_part) {
		b->owner = x->o->rank;
		b->tag = x->part_tag;
	} else if (!b->remote) {
		b->owner = turn_owner(x, x->shared);
		b->tag = x->shared++;
	}
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

static void gather_all(struct pipe *x);

static void *gather_thread(void *arg)
{
	struct pipe *x = arg;
	gather_all(x);
	pthread_mutex_lock(&x->mu);
	x->cur->seq = x->next_seq++;
	x->cur->owner = turn_owner(x, x->shared);
	x->cur->tag = x->shared++;
	x->ready[x->n_ready++] = x->cur;	/* the last, maybe empty */
	x->gathered = 1;
	pthread_cond_broadcast(&x->cv);
	pthread_mutex_unlock(&x->mu);
	return NULL;
}

/* Gather, measure and write everything: batches pass from gathering to measuring to
 * writing in input order. */
static void run_batches(struct pipe *x)
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

static struct item *add_item(struct pipe *x, enum item_kind kind, const char *origin,
			     size_t origin_len, uint64_t bytes)
{
	struct batch *b = x->cur;
	if (b->n_items == x->batch_items || b->bytes + bytes > x->batch_bytes) {
		flush_batch(x);
		b = x->cur;
	}
	grow_items(b, b->n_items + 1);
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

/* The lines of R (of PATH) as documents; what fails counted into C, ERRORS and TORN. */
static void read_lines(struct pipe *x, struct jsonl_reader *r, const char *path,
		       struct docpipe_counts *c, int *errors, int *torn)
{
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
			if (x->o->strict)
				fatal("cannot read a JSON-lines file");
			c->unreadable++;
			*errors = *torn = 1;
			break;
		}
		int on = snprintf(origin + plen, 24, ":%llu", (unsigned long long)jsonl_lineno(r));
		struct item *it = add_item(x, IT_LINE, origin, plen + (size_t)on, len);
		if (k == 2) {
			it->status = ST_MALFORMED;
			it->msg = xasprintf("%s: malformed JSON line: longer than %llu bytes",
					    origin, (unsigned long long)x->o->max_line);
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

static void read_jsonl(struct pipe *x, const char *path)
{
	struct jsonl_reader *r = jsonl_open(path, x->o->max_line);
	if (!r) {
		if (x->o->strict)
			fatal("cannot open a JSON-lines file");
		x->gc.unreadable++;
		x->gerrors = 1;
		return;
	}
	read_lines(x, r, path, &x->gc, &x->gerrors, &x->gtorn);
}

/* The parts of a file cut for the ranks: this rank's read, as batches of their own (the
 * last of each marked); rank 0 stands a REMOTE batch in for each of the others'. */
static void read_parts(struct pipe *x, const char *path, const struct split *sp)
{
	int me = x->o->rank;
	if (x->cur->n_items)	/* the shared batch before: sealed on every rank alike */
		flush_batch(x);
	for (uint64_t k = 0; k < sp->n; k++) {
		int owner = turn_owner(x, sp->first + k);
		uint64_t tag = PART_TAG | (sp->first + k);
		if (owner != me) {
			if (!me) {
				x->cur->remote = 1;
				x->cur->owner = owner;
				x->cur->tag = tag;
				flush_batch(x);
			}
			continue;
		}
		x->in_part = 1;
		x->part_tag = tag;
		struct jsonl_reader *r = sp->whole ? jsonl_open(path, x->o->max_line)
			: jsonl_open_range(path, x->o->max_line, sp->at[k], sp->at[k + 1], sp->line0[k]);
		if (r) {
			read_lines(x, r, path, &x->pc, &x->perrors, &x->ptorn);
		} else {
			if (x->o->strict)
				fatal("cannot open a JSON-lines file");
			x->pc.unreadable++;
			x->perrors = 1;
		}
		x->cur->last = 1;
		flush_batch(x);
		x->in_part = 0;
	}
}

static void add_file(struct pipe *x, const char *path, const struct stat *st)
{
	if (is_jsonl_name(path)) {
		read_jsonl(x, path);
		return;
	}
	if (x->o->max_size && (uint64_t)st->st_size > x->o->max_size) {
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

static void add_path(struct pipe *x, const char *path, const struct walk_tree *tree)
{
	struct stat st;
	if (stat(path, &st)) {
		error_errno("cannot stat '%s'", path);
		if (x->o->strict)
			fatal("an input cannot be read");
		x->gc.unreadable++;
		x->gerrors = 1;
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		uint64_t before = walk_get_counts(x->walker)->unreadable;
		if (tree)
			walk_tree_run(x->walker, tree, walk_cb, x);
		else
			walk_run(x->walker, path, walk_cb, x);
		if (x->o->strict && walk_get_counts(x->walker)->unreadable > before)
			fatal("an entry cannot be read");
		return;
	}
	if (S_ISFIFO(st.st_mode) && x->o->nranks > 1) {
		error("'%s' is a pipe: under mpirun every rank reads every input, so name files",
		      path);
		x->gc.unreadable++;
		x->gerrors = 1;
		return;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {	/* a pipe is one document */
		error("'%s' is neither a regular file, a pipe nor a directory", path);
		x->gc.unreadable++;
		x->gerrors = 1;
		return;
	}
	if (x->o->jsonl)
		read_jsonl(x, path);
	else
		add_file(x, path, &st);
}

static void add_paths_from_stdin(struct pipe *x)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (line[n - 1] == '\n')
			line[--n] = 0;
		if (n)
			add_path(x, line, NULL);
	}
	if (ferror(stdin))
		die_errno("cannot read the list of paths from standard input");
	free(line);
}

static void gather_all(struct pipe *x)
{
	for (int i = 0; i < x->n_paths; i++) {
		if (x->splits && x->splits[i].n)
			read_parts(x, x->paths[i], &x->splits[i]);
		else if (!strcmp(x->paths[i], "-"))
			add_paths_from_stdin(x);
		else
			add_path(x, x->paths[i], x->trees ? x->trees[i] : NULL);
	}
}

/* ------------------------------------------------------------------ parts for the ranks */

/* 1 when the JSON-lines file PATH (SIZE bytes, open as FD) is compressed; each rank finds
 * the boundaries of its parts and counts their lines, and the sums tell every rank all.
 * -1 (on every rank alike) when it cannot be read: then it is not cut. */
static int plan_file(struct pipe *x, int fd, const char *path, uint64_t size, uint64_t part,
		     struct split *sp)
{
	const struct docpipe_opts *o = x->o;
	uint64_t n = (size + part - 1) / part, z[2] = { 0, 0 };
	int c = fd < 0 ? -1 : jsonl_compressed(fd);
	z[0] = c < 0;
	z[1] = c > 0;
	o->sum(o->arg, z, 2);
	if (z[0])
		return -1;
	if (z[1]) {
		sp->whole = 1;
		sp->n = 1;
		return 1;
	}
	uint64_t *v = xcalloc(2 * n + 1, sizeof *v);
	for (uint64_t k = 0; k < n && !v[2 * n]; k++)
		if (turn_owner(x, sp->first + k) == o->rank &&
		    jsonl_span(fd, path, size, k * part, (k + 1) * part, &v[k], &v[n + k]))
			v[2 * n] = 1;
	o->sum(o->arg, v, 2 * n + 1);
	if (v[2 * n]) {
		free(v);
		return -1;
	}
	sp->n = n;
	sp->at = xreallocarray(NULL, 2 * n + 1, sizeof *sp->at);
	sp->line0 = sp->at + n + 1;
	for (uint64_t k = 0; k < n; k++) {
		sp->at[k] = v[k];
		sp->line0[k] = k ? sp->line0[k - 1] + v[n + k - 1] : 0;
	}
	sp->at[n] = size;
	free(v);
	return 0;
}

/* Over ranks, the JSON-lines files named in the paths cut into parts (struct split). */
static void plan_splits(struct pipe *x)
{
	const struct docpipe_opts *o = x->o;
	if (o->nranks <= 1 || !o->sum)
		return;
	const char *env = getenv("CP_DOCPIPE_PART_BYTES");
	uint64_t part = env ? opt_u64("CP_DOCPIPE_PART_BYTES", env, 1, UINT64_MAX) : PART_BYTES;
	x->splits = xcalloc((size_t)x->n_paths + 1, sizeof *x->splits);
	uint64_t first = 0;
	for (int i = 0; i < x->n_paths; i++) {
		const char *path = x->paths[i];
		struct stat st;
		if (!strcmp(path, "-") || stat(path, &st) || !S_ISREG(st.st_mode) || !st.st_size ||
		    !(o->jsonl || is_jsonl_name(path)))
			continue;	/* the same on every rank */
		struct split *sp = &x->splits[i];
		sp->first = first;
		int fd = open(path, O_RDONLY);
		if (plan_file(x, fd, path, (uint64_t)st.st_size, part, sp) < 0)
			sp->n = 0;	/* read as before, its error said then */
		first += sp->n;
		if (fd >= 0)
			close(fd);
	}
}

/* Over ranks, the directories named in the paths read by the ranks together, each a share
 * of every level (walk_tree_read), before any batch: every rank would otherwise walk the
 * whole tree (0.15 s of system time on the Python standard library here, a tenth of
 * cp-hash -j1's), and the exchanges must not meet the batches' on another thread. */
static void plan_trees(struct pipe *x)
{
	const struct docpipe_opts *o = x->o;
	if (o->nranks <= 1 || !o->share || !o->sum || !x->n_paths)
		return;
	uint64_t *isdir = xcalloc((size_t)x->n_paths, sizeof *isdir);
	for (int i = 0; i < x->n_paths; i++) {
		struct stat st;
		isdir[i] = strcmp(x->paths[i], "-") && !stat(x->paths[i], &st) &&
			   S_ISDIR(st.st_mode);
	}
	o->sum(o->arg, isdir, (size_t)x->n_paths);
	x->trees = xcalloc((size_t)x->n_paths, sizeof *x->trees);
	for (int i = 0; i < x->n_paths; i++) {
		if (isdir[i] && isdir[i] != (uint64_t)o->nranks)
			die("'%s' is a directory on %llu of %d ranks: do they see the same files?",
			    x->paths[i], (unsigned long long)isdir[i], o->nranks);
		if (isdir[i])
			x->trees[i] = walk_tree_read(x->walker, x->paths[i], o->rank, o->nranks,
						     o->share, o->arg);
	}
	free(isdir);
}

/* What went wrong reading this rank's parts, told rank 0 (which reports). */
static void sum_part_counts(struct pipe *x)
{
	if (!x->splits)
		return;
	uint64_t v[3] = { x->pc.unreadable, (uint64_t)x->perrors, (uint64_t)x->ptorn };
	x->o->sum(x->o->arg, v, 3);
	x->gc.unreadable += v[0];
	x->gerrors |= v[1] != 0;
	x->gtorn |= v[2] != 0;
}

/* ------------------------------------------------------------------ spread */

/* Spread needs every rank to see every batch: not so for a file cut into parts. */
static void plan_spread(struct pipe *x)
{
	const struct docpipe_opts *o = x->o;
	x->spread = o->nranks > 1 && o->load && o->save && !o->strict;
	for (int i = 0; x->spread && x->splits && i < x->n_paths; i++)
		if (x->splits[i].n)
			x->spread = 0;
}

struct msg { uint64_t seq; size_t at; int unreadable; const char *text; };

static int cmp_msg(const void *pa, const void *pb)
{
	const struct msg *a = pa, *b = pb;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return a->at < b->at ? -1 : a->at > b->at;
}

/* Rank 0 prints every rank's messages (ALL: one rank's after the other's, each in input
 * order) in input order. */
static void print_msgs(const struct buf *all)
{
	struct msg *m = NULL;
	size_t n = 0, cap = 0, at = 0;
	while (at < all->len) {
		if (at + 10 > all->len)
			die("a rank's messages are cut short");
		if (n == cap)
			m = xreallocarray(m, cap = cap ? 2 * cap : 16, sizeof *m);
		m[n] = (struct msg){ rd_u64le(all->p + at), at, all->p[at + 8],
				     (const char *)all->p + at + 9 };
		at += 9 + strlen(m[n++].text) + 1;
	}
	if (n) /* qsort's base may not be NULL, even for no elements */
		qsort(m, n, sizeof *m, cmp_msg);
	for (size_t i = 0; i < n; i++) {
		if (m[i].unreadable)
			error("%s", m[i].text);
		else
			warning("%s", m[i].text);
	}
	free(m);
}

/* After the last turn: its state to rank 0 (through the rank of the turn after, which
 * waits for it), the messages to rank 0, the counts summed. */
static void spread_end(struct pipe *x)
{
	const struct docpipe_opts *o = x->o;
	int me = o->rank, last = turn_owner(x, x->turns - 1), next = turn_owner(x, x->turns);
	if (me == next && next) {
		o->note_recv(o->arg, last, &x->wire);
		o->note_send(o->arg, 0, x->wire.p, x->wire.len);
	}
	if (!me) {
		o->note_recv(o->arg, next ? next : last, &x->wire);
		o->load(o->arg, x->turns, last, x->wire.p, x->wire.len);
	}
	uint64_t v[7] = { x->c.docs, x->c.bytes, x->c.binary, x->c.too_large, x->c.malformed,
			  x->c.unreadable, (uint64_t)x->errors };
	o->sum(o->arg, v, 7);
	x->c.docs = v[0];
	x->c.bytes = v[1];
	x->c.binary = v[2];
	x->c.too_large = v[3];
	x->c.malformed = v[4];
	x->c.unreadable = v[5];
	x->errors = v[6] != 0;
	if (me) {
		o->send(o->arg, x->msgs.p, x->msgs.len);
		return;
	}
	struct buf b = { 0 };
	for (int r = 1; r < o->nranks; r++) {
		o->recv(o->arg, r, &b);
		buf_put(&x->msgs, b.p, b.len);
	}
	buf_free(&b);
	print_msgs(&x->msgs);
}

/* ------------------------------------------------------------------ the run */

static void pipe_init(struct pipe *x, const struct docpipe_opts *o, char *const *paths, int n)
{
	memset(x, 0, sizeof *x);
	x->o = o;
	x->threads = o->threads;
	x->paths = paths;
	x->n_paths = n;
	x->cur = &x->bat[0];
	x->prev = &x->bat[1];
	x->spare[x->n_spare++] = &x->bat[2];
	x->async = x->threads > 1;
	/* tests make small batches to spread a small tree over the ranks */
	const char *env = getenv("CP_DOCPIPE_BATCH_ITEMS");
	x->batch_items = env ? (size_t)opt_u64("CP_DOCPIPE_BATCH_ITEMS", env, 1, BATCH_ITEMS)
			     : BATCH_ITEMS;
	x->batch_bytes = x->async && o->nranks <= 1 ? BATCH_BYTES : BATCH_BYTES_SMALL;
	pthread_mutex_init(&x->mu, NULL);
	pthread_cond_init(&x->cv, NULL);
	x->walker = walk_new(o->patterns, o->n_patterns, o->max_size);
	x->workers = xcalloc((size_t)x->threads, sizeof *x->workers);
	for (int k = 0; k < N_BATCH; k++) {
		x->bat[k].out = xcalloc((size_t)x->threads, sizeof *x->bat[k].out);
		x->bat[k].seq = UNSEALED;
	}
}

static void pipe_free(struct pipe *x)
{
	for (int i = 0; i < x->threads; i++) {
		buf_free(&x->workers[i].content);
		buf_free(&x->workers[i].meta);
		buf_free(&x->workers[i].head);
	}
	for (int k = 0; k < N_BATCH; k++) {
		for (int t = 0; t < x->threads; t++)
			buf_free(&x->bat[k].out[t]);
		free(x->bat[k].out);
		free(x->bat[k].items);
		buf_free(&x->bat[k].arena);
	}
	free(x->workers);
	buf_free(&x->wire);
	buf_free(&x->msgs);
	walk_free(x->walker);
	for (int i = 0; x->splits && i < x->n_paths; i++)
		free(x->splits[i].at);
	free(x->splits);
	for (int i = 0; x->trees && i < x->n_paths; i++)
		walk_tree_free(x->trees[i]);
	free(x->trees);
	pthread_mutex_destroy(&x->mu);
	pthread_cond_destroy(&x->cv);
}

int docpipe_run(const struct docpipe_opts *o, char *const *paths, int n, struct docpipe_counts *c)
{
	struct pipe x;
	pipe_init(&x, o, paths, n);
	plan_splits(&x);
	plan_trees(&x);
	plan_spread(&x);
	run_batches(&x);
	if (x.spread)
		spread_end(&x);
	sum_part_counts(&x);
	progress(&x, 1);
	const struct walk_counts *wc = walk_get_counts(x.walker);
	x.c.too_large += wc->too_large + x.gc.too_large;
	x.c.unreadable += wc->unreadable + x.gc.unreadable;
	x.c.loops += wc->loops;
	if (wc->unreadable || x.gerrors)
		x.errors = 1;
	*c = x.c;
	c->spread = x.spread;
	int errors = x.gtorn ? 2 : x.errors;
	pipe_free(&x);
	return errors;
}
