/* docstats.h: what cp-hash measures in one document: the CodeParrot quality statistics
 * (struct doc_stats), the exact-duplicate hash and the MinHash signature.
 *
 * Semantics follow CodeParrot's Python preprocessing on str: code points, str.splitlines()
 * line boundaries, str.isalnum(), re "\s" whitespace (= str.isspace()). A byte that is not part
 * of valid UTF-8 counts as one code point that is neither alphanumeric, whitespace nor a line
 * boundary (Python's errors="surrogateescape") and sets DOC_INVALID_UTF8. Empty content gives
 * all-zero statistics (Python would fail on max([])), the hash of no bytes and no signature. */
#ifndef CP_DOCSTATS_H
#define CP_DOCSTATS_H

#include <stddef.h>
#include <stdint.h>
#include "shard/doc.h"

/* Documents with fewer distinct tokens than this get no MinHash signature. */
#define DOCSTATS_MIN_TOKENS 10

/* How signatures are made. XXH3: the fast default (tokens hashed with xxh3-64, fixed
 * multiply-add permutations). DATASKETCH: bit-identical to datasketch's
 * MinHash(num_perm=256, seed=1) updated with each token's bytes (SHA-1 token hashes,
 * datasketch's own permutations, common/dedup/minhash-datasketch.h); such documents carry
 * DOC_MINHASH_DATASKETCH, as signatures of the two schemes cannot be compared. */
enum docstats_minhash {
	DOCSTATS_MINHASH_XXH3,
	DOCSTATS_MINHASH_DATASKETCH,
	DOCSTATS_MINHASH_NONE,	/* no tokens set, no signature: exact dedup and filters only */
};

/* Per-thread scratch memory, reused from document to document. */
struct docstats_ctx {
	enum docstats_minhash scheme;
	int tokens;			/* the set of distinct tokens is wanted (not NONE) */
	unsigned char *strip;		/* the content without whitespace */
	size_t cap;
	uint64_t *set;			/* distinct token hashes, open addressing */
	size_t set_cap, set_mask, set_n;
	uint64_t *keys;			/* this document's distinct token hashes, in order */
	uint32_t *pkeys;		/* ... and what the permutations take of each */
	size_t *tok_at, *tok_len;	/* ... and where each first is */
	size_t keys_cap;
	uint32_t mul[DOC_MINHASH_PERM], add[DOC_MINHASH_PERM];	/* the permutations */
	/* DATASKETCH: a memo of docstats_ds_key by token xxh3-64, as most tokens recur from
	 * document to document; a token's bucket (of 4) is its hash & ds_mask (tests may lower
	 * ds_mask to make tokens push each other out). */
	struct docstats_dsmemo *ds_memo;
	size_t ds_mask;
	int simd, sha;			/* the AVX2 scan, SHA-1 instructions: where the CPU has them */
	int avx512;			/* the AVX-512 signature loop: where the CPU has it (and
					 * CP_DOCSTATS_NO_AVX512 is not set: tests, benchmarks) */
	void *queue;			/* ... and its scratch memory */
	int reference;			/* tests: 1 = the byte-at-a-time scan and no memo */
};

/* docstats_init: the XXH3 scheme; docstats_init_scheme: either. */
void docstats_init(struct docstats_ctx *c);
void docstats_init_scheme(struct docstats_ctx *c, enum docstats_minhash scheme);
void docstats_free(struct docstats_ctx *c);

/* Measure CONTENT: fills *st (flags include DOC_MINHASH_DATASKETCH when the scheme is
 * DATASKETCH and there is a signature; under NONE, DOC_NO_MINHASH, n_tokens 0 and no
 * signature), the 16-byte big-endian xxh3-128 of the content without
 * whitespace, and, when the document has at least DOCSTATS_MIN_TOKENS distinct tokens,
 * the DOC_MINHASH_PERM values of minhash (little-endian uint32, as doc.h stores them);
 * *n_minhash is DOC_MINHASH_PERM or 0. Tokens are told apart by their 64-bit XXH3, so two
 * distinct tokens would count as one only on a hash collision. */
void docstats_compute(struct docstats_ctx *c, const void *content, size_t len,
		      struct doc_stats *st, unsigned char hash[16],
		      unsigned char minhash[4 * DOC_MINHASH_PERM], uint32_t *n_minhash);

/* The classifications used, exposed for tests: Python's str.isalnum() (Unicode general
 * category L* or N*, from utf8proc) and str.isspace(). */
int docstats_isalnum(uint32_t cp);
int docstats_isspace(uint32_t cp);
/* Copy CONTENT without whitespace into OUT (room for LEN bytes); returns the length. */
size_t docstats_strip(const void *content, size_t len, unsigned char *out);
/* Permutation I applied to a token hash (xxh3-64 of the token's bytes; XXH3 scheme). */
uint32_t docstats_perm(const struct docstats_ctx *c, unsigned i, uint64_t token_hash);
/* What the DATASKETCH scheme's permutations take of a token: the MurmurHash3 32-bit
 * finalizer of datasketch's sha1_hash32 (the first 4 bytes of SHA-1, little-endian). */
uint32_t docstats_ds_key(const void *token, size_t len);

#endif
