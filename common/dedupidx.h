/* dedupidx.h: what cp-dedup remembers between runs, and the exact-duplicate set it is built
 * from.
 *
 * dedupset: an open-addressing table of 16-byte document hashes with a copy count each
 * (20 bytes a slot, at most 85% full: about 24 bytes per distinct document).
 *
 * dedupidx: the persistent index file (--index): every distinct exact hash seen so far
 * (sorted) and the 16-bit MinHash signature of every distinct document that went through
 * near dedup, from which the LSH band keys are recomputed. Versioned and checksummed; the
 * layout is in man/cp-dedup.1 (INDEX FORMAT). Written to FILE.tmp, then renamed. */
#ifndef CP_DEDUPIDX_H
#define CP_DEDUPIDX_H

#include <stddef.h>
#include <stdint.h>

/* ---- in-memory exact set ---- */
struct dedupset;
/* EXPECT: the number of distinct hashes to expect (sized so it never grows when right). */
struct dedupset *dedupset_new(size_t expect);
void dedupset_free(struct dedupset *s);
/* Count one more copy of HASH. Returns 1 when HASH was not there before (a first occurrence),
 * 0 otherwise. OLD: the hash comes from an index (remembered, but not counted as a copy). */
int dedupset_add(struct dedupset *s, const unsigned char hash[16], int old);
size_t dedupset_size(const struct dedupset *s);
size_t dedupset_bytes(const struct dedupset *s);
/* All hashes, sorted ascending; returns the count, *out to free. */
size_t dedupset_export(const struct dedupset *s, unsigned char (**out)[16]);
/* Copy counts of the groups that have copies in this run (not from an index), sorted
 * descending; returns the count, *out to free. */
size_t dedupset_counts(const struct dedupset *s, uint32_t **out);

/* ---- index file ---- */
#define DEDUPIDX_VERSION 1
#define DEDUPIDX_HEADER 64

struct dedupidx {
	uint32_t num_perm;		/* values per signature */
	uint64_t n_exact;
	unsigned char (*exact)[16];	/* sorted ascending, distinct */
	uint64_t n_near;
	uint16_t *near;			/* n_near * num_perm low 16 bits of MinHash values */
};

/* Load PATH into X. 0; 1 when PATH does not exist (X is then an empty index); -1 after an
 * error naming the file and byte offset (bad magic, newer version, checksum, truncation). */
int dedupidx_load(const char *path, struct dedupidx *x);
/* Write X to PATH atomically (PATH.tmp, fsync, rename). X->exact must be sorted. 0 or -1. */
int dedupidx_write(const char *path, const struct dedupidx *x);
/* Fold B into A: union of exact hashes, B's signatures after A's. -1 (with a message naming
 * WHAT) when the signature widths differ. */
int dedupidx_merge(struct dedupidx *a, const struct dedupidx *b, const char *what);
void dedupidx_free(struct dedupidx *x);

#endif
