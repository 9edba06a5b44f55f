/* bpe.h: byte-level BPE as GPT-2 and Hugging Face tokenizers define it: the vocabulary,
 * the merges, reading and writing their files, encoding with a piece cache, decoding, and the
 * trainer (bpe-train.c). Token strings are kept as raw bytes; the printable-character form
 * (GPT-2's byte map, "Ġ" for a space) exists only in files. */
#ifndef CP_BPE_H
#define CP_BPE_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"

#define BPE_EOT "<|endoftext|>"
#define BPE_NONE UINT32_MAX

struct bpe_merge {
	uint32_t a, b, id;	/* left id, right id, id of their concatenation */
};

struct bpe {
	uint32_t n_ids;		/* ids are 0..n_ids-1; a hole has len[id] == BPE_NONE */
	struct buf str;		/* token bytes, back to back */
	uint64_t *off;
	uint32_t *len;
	unsigned char *special;	/* per id: an added special token (matched whole, never merged) */
	uint32_t byte_id[256];	/* id of each one-byte token */
	uint32_t eot;		/* id of <|endoftext|>, or BPE_NONE */
	struct bpe_merge *merges;	/* in rank order */
	uint32_t n_merges, cap_merges;
	/* pair (a << 32 | b) -> rank << 32 | id; open addressing, empty key = UINT64_MAX */
	uint64_t *mkey, *mval;
	size_t mcap, mcount;
	uint32_t *sidx;		/* token bytes -> id; open addressing, empty = BPE_NONE */
	size_t scap, scount;
	uint32_t cap_ids;
};

/* GPT-2's reversible map from bytes to printable code points, and back (-1: no byte). */
uint32_t bpe_byte_to_cp(unsigned char b);
int bpe_cp_to_byte(uint32_t cp);
/* Append the printable form of token bytes (valid UTF-8). */
void bpe_printable(struct buf *out, const unsigned char *s, size_t n);

void bpe_init(struct bpe *m);
void bpe_free(struct bpe *m);
/* Add a token with a given id; -1 if the id or the bytes are already there. */
int bpe_add_token(struct bpe *m, const void *s, size_t n, uint32_t id);
/* id of the token with these bytes, or BPE_NONE */
uint32_t bpe_find(const struct bpe *m, const void *s, size_t n);
static inline const unsigned char *bpe_tok(const struct bpe *m, uint32_t id, size_t *n)
{
	*n = m->len[id];
	return m->str.p + m->off[id];
}
/* Append a merge at the next rank; a pair already present moves to the new rank (as in HF). */
void bpe_add_merge(struct bpe *m, uint32_t a, uint32_t b, uint32_t id);
/* rank << 32 | id of the merge of (a, b), or UINT64_MAX */
uint64_t bpe_merge_lookup(const struct bpe *m, uint32_t a, uint32_t b);
/* After loading or training: fill byte_id[] and eot, check that every byte has a token.
 * -1 with an error naming WHAT. */
int bpe_finish(struct bpe *m, const char *what);

/* Load PATH: a tokenizer.json file, a vocab.json/encoder.json beside merges.txt/vocab.bpe,
 * or a directory holding either. 0, or -1 after an error naming the file and place. */
int bpe_load(struct bpe *m, const char *path);
/* Write DIR/tokenizer.json, DIR/vocab.json and DIR/merges.txt (each atomically). */
int bpe_save(const struct bpe *m, const char *dir);

/* Append the bytes of ids; -1 (and *bad set to the index) on an id that is not a token. */
int bpe_decode(const struct bpe *m, const uint32_t *ids, size_t n, struct buf *out, size_t *bad);

/* ---- encoding ---- */
struct u32vec {
	uint32_t *v;
	size_t n, cap;
};
void u32vec_grow(struct u32vec *a, size_t extra);
static inline void u32vec_push(struct u32vec *a, uint32_t x)
{
	if (a->n == a->cap)
		u32vec_grow(a, 1);
	a->v[a->n++] = x;
}

/* An encoder holds one thread's cache of pieces already encoded; use one per thread. */
struct bpe_encoder;
struct bpe_encoder *bpe_encoder_new(const struct bpe *m);
void bpe_encoder_free(struct bpe_encoder *e);
/* Append the ids of text s. With special, added special tokens found in the text are
 * emitted as their ids (as HF tokenizers does); without, the text is all ordinary. */
void bpe_encode(struct bpe_encoder *e, const unsigned char *s, size_t n, int special,
		struct u32vec *out);
/* Encode one pre-tokenized piece without the cache; heap selects the O(n log n) method
 * (used for long pieces; the tests check both agree). */
void bpe_encode_piece(const struct bpe *m, const unsigned char *s, size_t n, int heap,
		      struct u32vec *out);

/* ---- training (bpe-train.c) ---- */
struct bpe_train_opts {
	uint32_t vocab_size;	/* including the special token and the 256 bytes */
	uint64_t min_freq;	/* stop when the best pair occurs fewer times */
	int threads;
	int progress;		/* report on stderr */
};
/* Piece counts gathered from the corpus. */
struct bpe_counter;
struct bpe_counter *bpe_counter_new(void);
void bpe_counter_free(struct bpe_counter *c);
/* Pre-tokenize a document and count its pieces (not thread-safe: one counter per thread). */
void bpe_counter_add(struct bpe_counter *c, const unsigned char *s, size_t n);
/* Fold src into dst and empty src. */
void bpe_counter_merge(struct bpe_counter *dst, struct bpe_counter *src);
size_t bpe_counter_size(const struct bpe_counter *c);
/* Learn merges from the counted pieces into m (which must be empty). */
void bpe_train(struct bpe *m, struct bpe_counter *c, const struct bpe_train_opts *o);

#endif
