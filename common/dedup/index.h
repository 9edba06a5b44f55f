/* index.h: what cp-dedup remembers between runs, and the exact-duplicate set it is built
 * from.
 *
 * dedupset: the distinct 16-byte document hashes with a copy count each, in 19 to 23 bytes per
 * distinct hash whatever the share of copies: 17-byte slots (the hash, and a byte of count
 * that saturates into a side table for the rare groups of 127 copies or more, about 25 bytes
 * each) in a table kept 75% to 90% full, grown by a fifth as distinct hashes come rather than
 * sized from the documents to read (on CodeParrot's data 70% of those are copies).
 *
 * dedupidx: the persistent index file (--index): every distinct exact hash seen so far
 * (sorted), the 16-bit MinHash signature of every distinct document that went through near
 * dedup, from which the LSH band keys are recomputed, and which cp-hash MinHash scheme made
 * those signatures (signatures of different schemes cannot be compared). Versioned and
 * checksummed; the layout is in man/cp-dedup.1 (INDEX FORMAT). Written atomically
 * (base/atomic.h). */
#ifndef CP_DEDUPIDX_H
#define CP_DEDUPIDX_H

#include <stddef.h>
#include <stdint.h>

/* ---- in-memory exact set ---- */
struct dedupset;
/* DISTINCT: hashes certain to be added and distinct (an index's), so sized for at once;
 * MORE: further hashes to come, any number of them copies, so only a hint of the scale (the
 * table grows into the distinct ones). */
struct dedupset *dedupset_new(size_t distinct, size_t more);
void dedupset_free(struct dedupset *s);
/* Count one more copy of HASH. Returns 1 when HASH was not there before (a first occurrence),
 * 0 otherwise. OLD: the hash comes from an index (remembered, but not counted as a copy). */
int dedupset_add(struct dedupset *s, const unsigned char hash[16], int old);
size_t dedupset_size(const struct dedupset *s);
/* the memory it holds: every array, the side table included */
size_t dedupset_bytes(const struct dedupset *s);
/* All hashes, sorted ascending; returns the count, *out to free. */
size_t dedupset_export(const struct dedupset *s, unsigned char (**out)[16]);
/* Exact copy counts (up to UINT32_MAX) of the groups that have copies in this run (not from
 * an index), sorted descending; returns the count, *out to free. */
size_t dedupset_counts(const struct dedupset *s, uint32_t **out);

/* ---- index file ---- */
#define DEDUPIDX_VERSION 2
#define DEDUPIDX_HEADER 64

/* The cp-hash --minhash scheme of an index's signatures (header bytes 20-23 since version 2;
 * 1 and 2 are also cp-dedup's own codes). UNKNOWN: signatures carried over from a version-1
 * index, which did not record it. */
enum dedupidx_scheme {
	DEDUPIDX_SCHEME_NONE = 0,	/* no signatures */
	DEDUPIDX_SCHEME_XXH3 = 1,
	DEDUPIDX_SCHEME_DATASKETCH = 2,
	DEDUPIDX_SCHEME_UNKNOWN = 3,
};
const char *dedupidx_scheme_name(uint32_t scheme);
/* "xxh3" or "datasketch" to its code; -1 for anything else */
int dedupidx_scheme_parse(const char *name);

struct dedupidx {
	uint32_t version;		/* of the file it was loaded from (0: not loaded) */
	uint32_t scheme;		/* enum dedupidx_scheme; NONE whenever n_near is 0 */
	uint32_t num_perm;		/* values per signature */
	uint64_t n_exact;
	unsigned char (*exact)[16];	/* sorted ascending, distinct */
	uint64_t n_near;
	uint16_t *near;			/* n_near * num_perm low 16 bits of MinHash values */
};

/* Load PATH into X. 0; 1 when PATH does not exist (X is then an empty index); -1 after an
 * error naming the file and byte offset (bad magic, newer version, checksum, truncation, a
 * scheme that does not fit the signatures). A version-1 file with signatures loads with
 * scheme UNKNOWN. */
int dedupidx_load(const char *path, struct dedupidx *x);
/* Write X to PATH atomically (base/atomic.h: hidden temporary, fsync, rename), as the current version. X->exact must
 * be sorted; X->scheme is written as NONE when X holds no signatures. 0 or -1. */
int dedupidx_write(const char *path, const struct dedupidx *x);
/* Fold B into A: union of exact hashes, B's signatures after A's. -1 (with a message naming
 * WHAT) when the signature widths or schemes differ; an index without signatures fits any,
 * an UNKNOWN scheme none (not even another UNKNOWN: the two may differ). */
int dedupidx_merge(struct dedupidx *a, const struct dedupidx *b, const char *what);
void dedupidx_free(struct dedupidx *x);

#endif
