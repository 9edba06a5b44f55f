/* encode-docs.h: what cp-tokenize does to documents (and cp-bpe's counting pass). Documents
 * are read in batches and encoded in parallel, long ones cut into parts at safe places
 * (tok/split.h) so that a few large files use every thread too (the output is the same for any
 * thread count and as one pass over each document),
 * measured against CodeParrot's characters-per-token filter, written as token records into
 * one shard or into one token shard per input shard, and counted for the report; token ids,
 * as lines of decimals or as token shards, are decoded back to bytes. */
#ifndef CP_ENCODE_DOCS_H
#define CP_ENCODE_DOCS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/buf.h"
#include "input/textdocs.h"
#include "tok/bpe.h"

/* A batch holds up to TOK_BATCH_DOCS documents, or the first to reach TOK_BATCH_BYTES. */
#define TOK_BATCH_DOCS 4096
#define TOK_BATCH_BYTES (16u << 20)
/* Documents longer than this are cut into parts of about this size, encoded in parallel. */
#define TOK_PART_BYTES (256u << 10)

struct tok_part;	/* one part of a document to encode (encode-docs.c) */

struct tok_batch {
	size_t n, cap;
	uint64_t *id;
	size_t *off, *len;	/* each document's bytes at base + off */
	size_t *input;		/* the input shard it came from, SIZE_MAX for a plain file */
	struct buf text;
	/* the documents' bytes: text's, or for a batch of one large document the input's own
	 * (valid until the next tok_batch_fill) */
	const unsigned char *base;
	struct u32vec *ids;	/* after tok_batch_encode: its ids (one encoded whole), */
	size_t *ntok;		/* how many, */
	uint64_t *nchars;	/* its characters, */
	unsigned char *keep;	/* and whether the filter keeps it */
	size_t part_bytes;	/* the parts' size, 0 for TOK_PART_BYTES (set by tests) */
	struct tok_part *part;	/* tok_batch_encode's work, kept for the next batch */
	size_t n_parts, cap_parts;
	int joined;		/* tok_batch_join put every document's ids in ids */
};

/* Caps on what is read: documents, and bytes (reading stops before the document that would
 * pass MAX_BYTES); DOCS and BYTES count what was read so far. */
struct tok_caps {
	uint64_t max_docs, max_bytes;
	uint64_t docs, bytes;
};

/* Empty B and read the next batch from IN, within CAPS when not NULL: 1 when the batch is
 * full (more may follow), 0 when IN ended or a cap was reached, -1 after an error naming the
 * file (B holds what was read before it). */
int tok_batch_fill(struct tok_batch *b, struct bpe_input *in, struct tok_caps *caps);
/* Encode every document of B with THREADS threads, one encoder of M each in ENC (special
 * tokens written in the text become their ids with SPECIAL), and apply the filter: a document
 * is kept when MIN_RATIO <= 0, or when it has tokens and at least MIN_RATIO characters a
 * token. The ids are those of bpe_encode over each whole document: in b->ids for one encoded
 * whole, in its parts for one cut into parts (tok_shards_write takes them from there, a
 * large file's ids are not copied) until tok_batch_join. */
void tok_batch_encode(struct tok_batch *b, const struct bpe *m, struct bpe_encoder **enc,
		      int threads, int special, double min_ratio);
/* Every document's ids in b->ids, those of the parts joined with THREADS threads: once, after
 * tok_batch_encode. */
void tok_batch_join(struct tok_batch *b, int threads);
/* Where bytes made in order go (cp-tokenize's standard output). */
typedef void tok_emit_fn(const void *p, size_t n, void *arg);
/* cp-tokenize --ids: encode every document of B as tok_batch_encode does (the ids of one pass
 * whatever THREADS) and give EMIT each one's ids as a line of decimals (tok_ids_line), in
 * order, a long document's a part at a time: the parts are encoded and formatted in parallel
 * and each goes out once those before it have. B's ids, characters and filter are left as
 * they were. */
void tok_batch_ids(struct tok_batch *b, const struct bpe *m, struct bpe_encoder **enc,
		   int threads, int special, tok_emit_fn *emit, void *arg);
/* Append the N ids of V to B as one line of decimals separated by spaces (cp-tokenize --ids). */
void tok_ids_line(struct buf *b, const uint32_t *v, size_t n);
/* The same without the newline, a piece of a line: after a space unless FIRST. */
void tok_ids_text(struct buf *b, const uint32_t *v, size_t n, int first);
void tok_batch_free(struct tok_batch *b);

/* cp-bpe's pass: count the pieces of every document of IN within CAPS (not NULL) with
 * THREADS threads; PROGRESS reports on stderr. The counts of all threads in one, or NULL
 * after an error. */
struct bpe_counter *tok_count_docs(struct bpe_input *in, int threads, struct tok_caps *caps,
				   int progress);

struct bpe_encoder **tok_encoders_new(const struct bpe *m, int threads);
void tok_encoders_free(struct bpe_encoder **enc, int threads);

/* code points as Python's len(str) counts them, an invalid byte counting one */
uint64_t tok_count_chars(const unsigned char *s, size_t n);
/* the filter: NCHARS / NTOKENS compared with MIN_RATIO as CodeParrot's filter divides */
int tok_keep(uint64_t nchars, size_t ntokens, double min_ratio);

struct tok_counts {
	uint64_t docs_in, docs_out, removed_ratio, bytes_in, tokens_out, chars_in;
};
/* the report: {"docs_in":...,"vocab_size":N}\n */
void tok_report_put(struct buf *b, const struct tok_counts *c, double min_ratio, uint32_t n_ids);

/* Where encoded documents go: one token shard (OUT, "-" standard output), or, when OUT is a
 * directory or ends in '/', one token shard per input shard under its name and text.shard
 * for the plain files. THREADS threads compress their blocks and make a long document's
 * record (the bytes are the same for any count). NULL after an error. */
struct tok_shards;
struct tok_shards *tok_shards_open(const char *out, struct bpe_input *in, uint32_t n_ids,
				   int threads);
/* Count B's documents into C and write the kept ones, each with EOT appended. 0, or -1
 * after an error. */
int tok_shards_write(struct tok_shards *o, struct tok_batch *b, uint32_t eot,
		     struct tok_counts *c);
/* Commit every output (in directory mode an input shard without documents still gets its
 * empty output), or with FAILED remove them. 0, or -1 after an error. */
int tok_shards_close(struct tok_shards *o, int failed);

/* Decode lines of decimal ids (T, LEN bytes, from NAME) with M, giving each line's bytes to
 * EMIT. 0, or -1 after an error naming NAME and the line. */
int tok_decode_ids_text(const struct bpe *m, const char *name, const char *t, size_t len,
			tok_emit_fn *emit, void *arg);
/* Write the documents of the token shard PATH to F, as bytes or with JSONL as one
 * {"id","text"} object a line (FNAME names F in errors). The <|endoftext|> cp-tokenize
 * appended is dropped. 0, or -1 after an error. */
int tok_decode_shard(const struct bpe *m, const char *path, int jsonl, FILE *f,
		     const char *fname);

#endif
