/* lsh.h: MinHash locality-sensitive hashing for near-duplicate detection (cp-dedup).
 *
 * Signatures are kept as the low 16 bits of each of the 256 MinHash values: two values count
 * as equal when those bits agree. The estimated Jaccard similarity of two documents is the
 * fraction of equal values. Bands of r values are hashed to 64-bit keys; documents sharing a
 * key in any band are candidates, confirmed when the estimate reaches the threshold, and
 * joined by union-find. Documents are added in input order, so "the first of a cluster" is
 * the member with the smallest id. Band and row counts are chosen as datasketch's MinHashLSH
 * chooses them (man/cp-dedup.1). */
#ifndef CP_LSH_H
#define CP_LSH_H

#include <stddef.h>
#include <stdint.h>

/* Bands b and rows r (b*r <= num_perm) minimising 0.5*P(false positive) + 0.5*P(false negative)
 * integrated over the Jaccard similarity, as datasketch's _optimal_param does. */
void lsh_optimal_params(double threshold, unsigned num_perm, unsigned *bands, unsigned *rows);

/* Estimated Jaccard of two 16-bit signatures of N values. */
double lsh_jaccard16(const uint16_t *a, const uint16_t *b, unsigned n);

/* Key of band BAND (rows r values starting at band*r) of a 16-bit signature. */
uint64_t lsh_band_key(const uint16_t *sig, unsigned band, unsigned rows);

struct lsh;
/* pair callback: a < b are document ids, j their estimated Jaccard */
typedef void (*lsh_pair_fn)(void *arg, uint32_t a, uint32_t b, double j);

struct lsh *lsh_new(double threshold, unsigned num_perm, size_t expect_docs);
void lsh_free(struct lsh *l);
unsigned lsh_bands(const struct lsh *l);
unsigned lsh_rows(const struct lsh *l);
/* Report every confirmed union (a spanning forest of the clusters) to FN. */
void lsh_set_pair_callback(struct lsh *l, lsh_pair_fn fn, void *arg);
/* Add the next document (ids are 0, 1, 2, ... in call order); SIG is copied.
 * Returns its id. The document is compared with earlier candidates and joined to their
 * clusters when similar enough. */
uint32_t lsh_add(struct lsh *l, const uint16_t *sig);
/* Smallest id in the cluster of ID: ID itself when it is the first of its cluster. */
uint32_t lsh_first(struct lsh *l, uint32_t id);
size_t lsh_count(const struct lsh *l);
const uint16_t *lsh_sig(const struct lsh *l, uint32_t id);
/* Bytes held per document (signature, chains, band tables), for the man page and report. */
double lsh_bytes_per_doc(const struct lsh *l);

#endif
