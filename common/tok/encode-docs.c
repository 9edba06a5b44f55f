/* encode-docs.c: cp-tokenize's batches, filter, token shards and decoders. Documents are
 * copied into a batch because an input's bytes only last until its next document; the
 * batch is encoded with one encoder (and piece cache) per thread. */
#include "tok/encode-docs.h"

#include "base/die.h"
#include "base/json.h"
#include "base/utf8.h"
#include "base/xalloc.h"
#include "shard/set.h"
#include "shard/shard.h"
#include "shard/tokrec.h"
#include "tok/split.h"

#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct tok_part {
	size_t doc, off, len;	/* bytes [off, off + len) of document doc */
	int whole;		/* the document in one part: its ids go straight to b->ids */
	uint64_t nchars;
	struct u32vec ids;	/* a part's own ids, before they join its document's */
};

static void batch_add(struct tok_batch *b, uint64_t id, const unsigned char *s, size_t n,
		      size_t input)
{
	if (b->n == b->cap) {
		size_t c = b->cap ? 2 * b->cap : 256;
		b->id = xreallocarray(b->id, c, sizeof *b->id);
		b->off = xreallocarray(b->off, c, sizeof *b->off);
		b->len = xreallocarray(b->len, c, sizeof *b->len);
		b->input = xreallocarray(b->input, c, sizeof *b->input);
		b->ids = xreallocarray(b->ids, c, sizeof *b->ids);
		b->nchars = xreallocarray(b->nchars, c, sizeof *b->nchars);
		b->ntok = xreallocarray(b->ntok, c, sizeof *b->ntok);
		b->keep = xrealloc(b->keep, c);
		memset(b->ids + b->cap, 0, (c - b->cap) * sizeof *b->ids);
		b->cap = c;
	}
	b->id[b->n] = id;
	b->off[b->n] = b->text.len;
	b->len[b->n] = n;
	b->input[b->n] = input;
	if (b->n == 0 && n >= TOK_BATCH_BYTES) {
		/* a batch of one large document: its bytes are read where the input put them (a
		 * large file's whole text), not copied, which costs as much as encoding a part */
		b->base = s;
	} else {
		buf_put(&b->text, s, n);
		b->base = b->text.p;
	}
	b->n++;
}

/* the document bytes of B when they are the input's own (batch_add), else NULL */
static const unsigned char *in_place(const struct tok_batch *b)
{
	return b->n && b->base != b->text.p ? b->base : NULL;
}

int tok_batch_fill(struct tok_batch *b, struct bpe_input *in, struct tok_caps *caps)
{
	b->n = 0;
	b->base = NULL;
	buf_reset(&b->text);
	while (b->n < TOK_BATCH_DOCS && b->text.len < TOK_BATCH_BYTES && !in_place(b)) {
		uint64_t id;
		const unsigned char *s;
		size_t n;
		if (caps && caps->docs >= caps->max_docs)
			return 0;
		int r = bpe_input_next(in, &id, &s, &n);
		if (r <= 0)
			return r;
		if (caps && caps->bytes + n > caps->max_bytes)
			return 0;
		batch_add(b, id, s, n, bpe_input_is_shard(in) ? bpe_input_index(in) : SIZE_MAX);
		if (caps) {
			caps->docs++;
			caps->bytes += n;
		}
	}
	return 1;
}

struct bpe_counter *tok_count_docs(struct bpe_input *in, int threads, struct tok_caps *caps,
				   int progress)
{
	struct bpe_counter **cnt = xcalloc((size_t)threads, sizeof *cnt);
	for (int i = 0; i < threads; i++)
		cnt[i] = bpe_counter_new();
	struct tok_batch b = { 0 };
	int r;
	do {
		if ((r = tok_batch_fill(&b, in, caps)) < 0)
			break;
		long n = (long)b.n;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
		for (long i = 0; i < n; i++)
			bpe_counter_add(cnt[omp_get_thread_num()], b.base + b.off[i], b.len[i]);
		if (progress)
			fprintf(stderr, "\r%s: %llu documents, %.1f MB", cp_progname,
				(unsigned long long)caps->docs, (double)caps->bytes / 1e6);
	} while (r > 0);
	if (progress && r >= 0)
		fputc('\n', stderr);
	tok_batch_free(&b);
	for (int i = 1; i < threads; i++) {
		bpe_counter_merge(cnt[0], cnt[i]);
		bpe_counter_free(cnt[i]);
	}
	struct bpe_counter *c = cnt[0];
	free(cnt);
	if (r < 0) {
		bpe_counter_free(c);
		return NULL;
	}
	return c;
}

void tok_batch_free(struct tok_batch *b)
{
	for (size_t i = 0; i < b->cap; i++)
		free(b->ids[i].v);
	free(b->id);
	free(b->off);
	free(b->len);
	free(b->input);
	free(b->ids);
	free(b->nchars);
	free(b->ntok);
	free(b->keep);
	for (size_t k = 0; k < b->cap_parts; k++)
		free(b->part[k].ids.v);
	free(b->part);
	buf_free(&b->text);
	memset(b, 0, sizeof(*b));
}

uint64_t tok_count_chars(const unsigned char *s, size_t n)
{
	uint64_t c = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] < 0x80) {
			i++;
		} else {
			int l = utf8_valid_len(s + i, n - i);
			i += l ? (size_t)l : 1;
		}
		c++;
	}
	return c;
}

int tok_keep(uint64_t nchars, size_t ntokens, double min_ratio)
{
	/* the same division CodeParrot's filter makes, so borderline cases agree */
	double ratio = ntokens ? (double)nchars / (double)ntokens : 0.0;
	return min_ratio <= 0 || (ntokens && !(ratio < min_ratio));
}

/* ---------------------------------------------------------------- encoding in parts */

static struct tok_part *part_add(struct tok_batch *b)
{
	if (b->n_parts == b->cap_parts) {
		size_t c = b->cap_parts ? 2 * b->cap_parts : 256;
		b->part = xreallocarray(b->part, c, sizeof *b->part);
		memset(b->part + b->cap_parts, 0, (c - b->cap_parts) * sizeof *b->part);
		b->cap_parts = c;
	}
	struct tok_part *t = &b->part[b->n_parts++];
	t->ids.n = 0;
	return t;
}

/* B's documents as parts, a long one cut at safe places (SPECIAL: the tokenizer whose
 * special tokens are encoded as such) */
static void batch_parts(struct tok_batch *b, const struct bpe *special)
{
	size_t size = b->part_bytes ? b->part_bytes : TOK_PART_BYTES;
	b->n_parts = 0;
	for (size_t i = 0; i < b->n; i++) {
		size_t *start = NULL, np = 1;
		if (b->len[i] > size)
			np = tok_split(b->base + b->off[i], b->len[i], size, special, &start);
		for (size_t k = 0; k < np; k++) {
			struct tok_part *t = part_add(b);
			t->doc = i;
			t->off = np > 1 ? start[k] : 0;
			t->len = (k + 1 < np ? start[k + 1] : b->len[i]) - t->off;
			t->whole = np == 1;
		}
		free(start);
	}
}

void tok_batch_join(struct tok_batch *b, int threads)
{
	/* a long document's room is made at once (grown part by part it would be copied and
	 * faulted in over and over) and each part copied into its place by a thread of its own */
	size_t n = b->n_parts, *at = xmalloc((n + 1) * sizeof *at);
	for (size_t k = 0; k < n; k++) {
		struct tok_part *t = &b->part[k];
		struct u32vec *v = &b->ids[t->doc];
		if (t->whole)
			continue;
		if (t->off == 0) {
			v->n = 0;
			u32vec_grow(v, b->ntok[t->doc] + 1);	/* and the end-of-text id after it */
		}
		at[k] = v->n;
		v->n += t->ids.n;
	}
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
	for (long k = 0; k < (long)n; k++) {
		struct tok_part *t = &b->part[k];
		if (t->whole)
			continue;
		if (t->ids.n)
			memcpy(b->ids[t->doc].v + at[k], t->ids.v, t->ids.n * sizeof *t->ids.v);
		/* a long document's ids are not kept twice until the next batch */
		free(t->ids.v);
		memset(&t->ids, 0, sizeof t->ids);
	}
	free(at);
	b->joined = 1;
}

void tok_batch_encode(struct tok_batch *b, const struct bpe *m, struct bpe_encoder **enc,
		      int threads, int special, double min_ratio)
{
	batch_parts(b, special ? m : NULL);
	long n = (long)b->n_parts;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
	for (long k = 0; k < n; k++) {
		struct tok_part *t = &b->part[k];
		struct u32vec *v = t->whole ? &b->ids[t->doc] : &t->ids;
		const unsigned char *s = b->base + b->off[t->doc] + t->off;
		v->n = 0;
		bpe_encode(enc[omp_get_thread_num()], s, t->len, special, v);
		t->nchars = tok_count_chars(s, t->len);
	}
	for (size_t k = 0; k < b->n_parts; k++) {
		const struct tok_part *t = &b->part[k];
		if (t->off == 0)
			b->nchars[t->doc] = b->ntok[t->doc] = 0;
		b->nchars[t->doc] += t->nchars;
		b->ntok[t->doc] += t->whole ? b->ids[t->doc].n : t->ids.n;
	}
	for (size_t i = 0; i < b->n; i++)
		b->keep[i] = (unsigned char)tok_keep(b->nchars[i], b->ntok[i], min_ratio);
	b->joined = 0;
}

/* ---------------------------------------------------------------- --ids */

/* --ids's lines, each part formatted by the thread that encoded it and written in order by
 * one thread at a time (one that finished a part while none was writing), so neither the
 * formatting nor the writing waits for the whole batch and no thread waits for another. A
 * part's text is held from when the part is taken until it goes out (a large file's ids are
 * never all in memory), in buffers kept for reuse (fresh ones would be faulted in again for
 * every part). */
struct ids_flush {
	struct tok_batch *b;
	struct buf **text;	/* each part's text, until it goes out */
	unsigned char *done;	/* each part's text is whole */
	struct buf **spare;	/* buffers free for the next parts */
	size_t n_spare, next;	/* next: the first part not written */
	int writing;		/* a thread is writing parts */
	tok_emit_fn *emit;
	void *arg;
};

static struct buf *ids_take(struct ids_flush *f)
{
	struct buf *t;
#pragma omp critical(tok_ids)
	t = f->n_spare ? f->spare[--f->n_spare] : xcalloc(1, sizeof *t);
	buf_reset(t);
	return t;
}

/* Part K's text is whole: write every part due that is, unless another thread is writing
 * (it will take this one too): a write that waits on the disk holds up no other thread. */
static void ids_done(struct ids_flush *f, size_t k)
{
	int writer;
#pragma omp critical(tok_ids)
	{
		f->done[k] = 1;
		if ((writer = !f->writing))
			f->writing = 1;
	}
	while (writer) {
		struct buf *t = NULL;
#pragma omp critical(tok_ids)
		{
			if (f->next < f->b->n_parts && f->done[f->next])
				t = f->text[f->next++];
			else
				f->writing = writer = 0;
		}
		if (!t)
			break;
		f->emit(t->p, t->len, f->arg);
#pragma omp critical(tok_ids)
		f->spare[f->n_spare++] = t;
	}
}

void tok_batch_ids(struct tok_batch *b, const struct bpe *m, struct bpe_encoder **enc,
		   int threads, int special, tok_emit_fn *emit, void *arg)
{
	batch_parts(b, special ? m : NULL);
	size_t n = b->n_parts;
	struct ids_flush f = { .b = b, .emit = emit, .arg = arg };
	f.text = xcalloc(n + 1, sizeof *f.text);
	f.done = xcalloc(n + 1, 1);
	f.spare = xcalloc(n + 1, sizeof *f.spare);
	struct u32vec *ids = xcalloc((size_t)threads, sizeof *ids);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
	for (long k = 0; k < (long)n; k++) {
		const struct tok_part *t = &b->part[k];
		struct u32vec *v = &ids[omp_get_thread_num()];
		struct buf *out = f.text[k] = ids_take(&f);
		v->n = 0;
		bpe_encode(enc[omp_get_thread_num()], b->base + b->off[t->doc] + t->off, t->len,
			   special, v);
		/* a part after the first of its document follows one with ids: it has bytes */
		tok_ids_text(out, v->v, v->n, t->off == 0);
		if ((size_t)k + 1 == n || b->part[k + 1].doc != t->doc)
			buf_putc(out, '\n');
		ids_done(&f, (size_t)k);
	}
	for (size_t i = 0; i < f.n_spare; i++) {
		buf_free(f.spare[i]);
		free(f.spare[i]);
	}
	for (int i = 0; i < threads; i++)
		free(ids[i].v);
	free(ids);
	free(f.spare);
	free(f.done);
	free(f.text);
}

void tok_ids_line(struct buf *b, const uint32_t *v, size_t n)
{
	tok_ids_text(b, v, n, 1);
	buf_putc(b, '\n');
}

/* "00" to "99", so a number's digits are made two at a time */
static const char ids_pairs[201] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* X's decimal digits at O, O's end returned */
static unsigned char *ids_digits(unsigned char *o, uint32_t x)
{
	unsigned char d[20], *e = d + 10, *p = e;
	while (x >= 100) {
		p -= 2;
		memcpy(p, ids_pairs + 2 * (x % 100), 2);
		x /= 100;
	}
	if (x >= 10) {
		p -= 2;
		memcpy(p, ids_pairs + 2 * x, 2);
	} else {
		*--p = (unsigned char)('0' + x);
	}
	memcpy(o, p, 10);	/* a fixed length, inlined; what follows the digits is room */
	return o + (e - p);
}

void tok_ids_text(struct buf *b, const uint32_t *v, size_t n, int first)
{
	/* printf costs more than encoding on a large file: the digits are made here, room for
	 * a chunk of ids (ten digits and a space each) made at a time */
	size_t k = 0;
	if (!first && n)
		buf_putc(b, ' ');
	while (k < n) {
		size_t end = n - k < 4096 ? n : k + 4096;
		buf_grow(b, (end - k) * 11 + 10);
		unsigned char *o = b->p + b->len;
		if (k == 0)
			o = ids_digits(o, v[k++]);
		for (; k < end; k++) {
			*o++ = ' ';
			o = ids_digits(o, v[k]);
		}
		b->len = (size_t)(o - b->p);
	}
}

struct bpe_encoder **tok_encoders_new(const struct bpe *m, int threads)
{
	struct bpe_encoder **enc = xcalloc((size_t)threads, sizeof *enc);
	for (int i = 0; i < threads; i++)
		enc[i] = bpe_encoder_new(m);
	return enc;
}

void tok_encoders_free(struct bpe_encoder **enc, int threads)
{
	for (int i = 0; i < threads; i++)
		bpe_encoder_free(enc[i]);
	free(enc);
}

void tok_report_put(struct buf *b, const struct tok_counts *c, double min_ratio, uint32_t n_ids)
{
	buf_printf(b, "{\"docs_in\":%llu,\"docs_out\":%llu,\"removed\":{\"char_token_ratio\":%llu},"
		      "\"bytes_in\":%llu,\"chars_in\":%llu,\"tokens_out\":%llu,\"min_ratio\":",
		   (unsigned long long)c->docs_in, (unsigned long long)c->docs_out,
		   (unsigned long long)c->removed_ratio, (unsigned long long)c->bytes_in,
		   (unsigned long long)c->chars_in, (unsigned long long)c->tokens_out);
	json_double(b, min_ratio);
	buf_printf(b, ",\"vocab_size\":%u}\n", n_ids);
}

/* ---------------------------------------------------------------- token shards */

struct tok_shards {
	struct bpe_input *in;
	const char *dir;	/* directory mode, else NULL */
	struct shard_writer *w;	/* the single output */
	struct shard_writer **per;	/* directory mode: one per input (shards only) */
	struct shard_writer *text_w;	/* directory mode: text.shard, for plain files */
	struct shardset_stage *stage;	/* directory mode: the set until it is whole */
	size_t n_inputs;
	int threads;
	uint64_t param[2];
};

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static struct shard_writer *out_open(struct tok_shards *o, const char *name)
{
	char *p = shardset_stage_path(o->stage, name);
	struct shard_writer *w = shard_create(p, SHARD_TOKENS, o->param);
	free(p);
	if (!w)
		exit(EXIT_ERR);
	shard_set_threads(w, o->threads);
	return w;
}

struct tok_shards *tok_shards_open(const char *out, struct bpe_input *in, uint32_t n_ids,
				   int threads)
{
	struct tok_shards *o = xcalloc(1, sizeof(*o));
	o->in = in;
	o->threads = threads;
	o->param[0] = n_ids;
	o->param[1] = tokrec_width(n_ids);
	struct stat st;
	const char *op = out ? out : "-";
	size_t ol = strlen(op);
	if (strcmp(op, "-") && ((!stat(op, &st) && S_ISDIR(st.st_mode)) || op[ol - 1] == '/')) {
		if (mkdir(op, 0777) && errno != EEXIST)
			die_errno("cannot create directory '%s'", op);
		/* staged, then committed as one set by tok_shards_close (shard/set.h) */
		if (!(o->stage = shardset_stage_open(op)))
			exit(EXIT_ERR);
		o->dir = op;
		/* shard inputs map one to one onto outputs, created even when empty */
		o->n_inputs = bpe_input_count(in);
		o->per = xcalloc(o->n_inputs + 1, sizeof *o->per);
	} else if (!(o->w = shard_create(op, SHARD_TOKENS, o->param))) {
		free(o);
		return NULL;
	} else {
		shard_set_threads(o->w, threads);
	}
	return o;
}

static struct shard_writer *writer_of(struct tok_shards *o, size_t input)
{
	if (!o->dir)
		return o->w;
	if (input == SIZE_MAX) {
		if (!o->text_w)
			o->text_w = out_open(o, "text" SHARD_EXT);
		return o->text_w;
	}
	if (!o->per[input]) {
		int is_shard;
		o->per[input] = out_open(o, base_name(bpe_input_item(o->in, input, &is_shard)));
	}
	return o->per[input];
}

/* Document I of B (its parts from *K on, *K moved past them) as a token record, EOT
 * appended, written to W in place; a long one's parts are put in by O->threads threads. 0, or
 * -1 after an error. */
static int record_put(struct tok_shards *o, struct shard_writer *w, struct tok_batch *b,
		      size_t i, size_t *k, uint32_t eot)
{
	unsigned width = (unsigned)o->param[1];
	size_t k0 = *k, n = b->ntok[i];
	while (*k < b->n_parts && b->part[*k].doc == i)
		(*k)++;
	unsigned char *p = shard_write_room(w, 8 + (n + 1) * width);
	if (!p)
		return -1;
	wr_u64le(p, b->id[i]);
	p += 8;
	if (b->joined || b->part[k0].whole) {
		tokrec_put(p, b->ids[i].v, n, width);
	} else {
		size_t np = *k - k0, *at = xmalloc(np * sizeof *at), sum = 0;
		for (size_t j = 0; j < np; j++) {
			at[j] = sum;
			sum += b->part[k0 + j].ids.n;
		}
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads)
		for (long j = 0; j < (long)np; j++) {
			const struct u32vec *v = &b->part[k0 + (size_t)j].ids;
			tokrec_put(p + at[j] * width, v->v, v->n, width);
		}
		free(at);
	}
	tokrec_put(p + n * width, &eot, 1, width);
	return 0;
}

int tok_shards_write(struct tok_shards *o, struct tok_batch *b, uint32_t eot,
		     struct tok_counts *c)
{
	/* an input shard's output exists once a document of it was read, kept or not */
	for (size_t i = 0; o->dir && i < b->n; i++)
		if (b->input[i] != SIZE_MAX)
			writer_of(o, b->input[i]);
	for (size_t i = 0, k = 0; i < b->n; i++) {
		c->docs_in++;
		c->bytes_in += b->len[i];
		c->chars_in += b->nchars[i];
		if (!b->keep[i]) {
			while (k < b->n_parts && b->part[k].doc == i)
				k++;
			c->removed_ratio++;
			continue;
		}
		if (record_put(o, writer_of(o, b->input[i]), b, i, &k, eot))
			return -1;
		c->docs_out++;
		c->tokens_out += b->ntok[i] + 1;
	}
	return 0;
}

static int finish(struct shard_writer *w, int failed)
{
	if (!w)
		return 0;
	if (failed) {
		shard_abort(w);
		return 0;
	}
	return shard_close(w);
}

int tok_shards_close(struct tok_shards *o, int failed)
{
	if (o->dir) {
		/* shard inputs that held no documents still get their (empty) output */
		for (size_t i = 0; i < o->n_inputs && !failed; i++) {
			int is_shard;
			const char *p = bpe_input_item(o->in, i, &is_shard);
			if (is_shard && !o->per[i] && strcmp(p, "-"))
				o->per[i] = out_open(o, base_name(p));
		}
		for (size_t i = 0; i < o->n_inputs; i++)
			if (finish(o->per[i], failed))
				failed = 1;
		if (finish(o->text_w, failed))
			failed = 1;
		free(o->per);
		if (failed)
			shardset_stage_abort(o->stage);
		else if (shardset_stage_commit(&o->stage, 1, NULL))
			failed = 1;
	} else if (finish(o->w, failed)) {
		failed = 1;
	}
	free(o);
	return failed ? -1 : 0;
}

/* ---------------------------------------------------------------- decoding */

/* the ids of one line, [P, LE): 0, or -1 when it is not decimals separated by blanks */
static int parse_ids(const char *p, const char *le, struct u32vec *ids)
{
	ids->n = 0;
	while (p < le) {
		if (*p == ' ' || *p == '\t' || *p == '\r') {
			p++;
			continue;
		}
		uint64_t v = 0;
		const char *q = p;
		while (q < le && *q >= '0' && *q <= '9' && v <= UINT32_MAX)
			v = v * 10 + (uint64_t)(*q++ - '0');
		if (q == p || (q < le && *q != ' ' && *q != '\t' && *q != '\r') || v >= UINT32_MAX)
			return -1;
		u32vec_push(ids, (uint32_t)v);
		p = q;
	}
	return 0;
}

int tok_decode_ids_text(const struct bpe *m, const char *name, const char *t, size_t len,
			tok_emit_fn *emit, void *arg)
{
	struct u32vec ids = { 0 };
	struct buf out = { 0 };
	size_t lineno = 1;
	int ret = 0;
	const char *p = t, *end = t + len;
	while (p < end && !ret) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		size_t bad;
		buf_reset(&out);
		if (parse_ids(p, le, &ids))
			ret = error("'%s':%zu: expected token ids (decimal numbers separated by spaces)",
				    name, lineno);
		else if (bpe_decode(m, ids.v, ids.n, &out, &bad))
			ret = error("'%s':%zu: %u is not a token id of this tokenizer", name, lineno,
				    ids.v[bad]);
		else
			emit(out.p, out.len, arg);
		p = nl ? nl + 1 : end;
		lineno++;
	}
	free(ids.v);
	buf_free(&out);
	return ret;
}

struct decode_scratch {
	struct u32vec ids;
	struct buf text, out;
};

/* one record's document into S->out (bytes, or its JSON line) */
static int decode_record(const struct bpe *m, const char *path, uint64_t idx, const void *rec,
			 size_t len, unsigned width, int jsonl, struct decode_scratch *s)
{
	struct u32vec *ids = &s->ids;
	struct buf *out = &s->out, *text = &s->text;
	long n = tokrec_count(len, width);
	if (n < 0)
		return error("'%s': record %llu is not a token record", path, (unsigned long long)idx);
	ids->n = 0;
	for (long k = 0; k < n; k++)
		u32vec_push(ids, tokrec_id(rec, (size_t)k, width));
	/* the <|endoftext|> cp-tokenize appended is no part of the document */
	if (ids->n && ids->v[ids->n - 1] == m->eot)
		ids->n--;
	size_t bad;
	buf_reset(out);
	buf_reset(text);
	if (bpe_decode(m, ids->v, ids->n, jsonl ? text : out, &bad))
		return error("'%s': record %llu: %u is not a token id of this tokenizer", path,
			     (unsigned long long)idx, ids->v[bad]);
	if (jsonl) {
		buf_printf(out, "{\"id\":\"%016llx\",\"text\":", (unsigned long long)rd_u64le(rec));
		json_str(out, text->p, text->len);
		buf_puts(out, "}\n");
	}
	return 0;
}

int tok_decode_shard(const struct bpe *m, const char *path, int jsonl, FILE *f,
		     const char *fname)
{
	struct shard_reader *r = shard_open(path, SHARD_TOKENS);
	if (!r)
		return -1;
	const struct shard_info *info = shard_get_info(r);
	unsigned width = (unsigned)info->param[1];
	int failed = 0;
	if ((width != 2 && width != 4) || info->param[0] > m->n_ids) {
		failed = error("'%s': made with a vocabulary of %llu ids, this tokenizer has %u",
			       path, (unsigned long long)info->param[0], m->n_ids);
		shard_close_reader(r);
		return failed;
	}
	struct decode_scratch s = { 0 };
	const void *rec;
	size_t len;
	uint64_t idx = 0;
	int rr;
	while ((rr = shard_next(r, &rec, &len)) == 1) {
		if (decode_record(m, path, idx, rec, len, width, jsonl, &s)) {
			failed = -1;
			break;
		}
		if (s.out.len && fwrite(s.out.p, 1, s.out.len, f) != s.out.len) {
			failed = error_errno("error writing '%s'", fname);
			break;
		}
		idx++;
	}
	if (rr < 0)
		failed = -1;
	shard_close_reader(r);
	free(s.ids.v);
	buf_free(&s.text);
	buf_free(&s.out);
	return failed ? -1 : 0;
}
