/* filters.h: what cp-dedup decides about one document apart from duplicates: CodeParrot's
 * quality filters (codeparrot/scripts/preprocessing.py) with their published thresholds, and
 * the rules on MinHash schemes that say which signatures near dedup may compare.
 *
 * The filters, in CodeParrot's order (which is also the order they are tried, so a document
 * is counted under the first that removes it): auto-generated; longest line over line_max;
 * mean line length over line_mean; alphanumeric fraction under alpha_frac; config or test
 * file, dropped with probability drop_prob; no keyword (def, class, for, while), dropped with
 * drop_prob; at most min_eq '=' characters. */
#ifndef CP_FILTERS_H
#define CP_FILTERS_H

#include "dedup/index.h"
#include "shard/doc.h"

#include <stdint.h>

/* Why a document is not in the output; DEDUP_KEEP when it is. */
enum dedup_status {
	DEDUP_KEEP, DEDUP_EXACT, DEDUP_NEAR,
	DEDUP_AUTOGEN, DEDUP_LINE_MAX, DEDUP_LINE_MEAN, DEDUP_ALPHA, DEDUP_CONFIG, DEDUP_NOKW,
	DEDUP_FEW,
	DEDUP_N
};
/* the report's key of each filter reason (DEDUP_AUTOGEN on), NULL for the others */
extern const char *const filter_key[DEDUP_N];

struct filter_cfg {
	int enabled;
	double drop_prob, line_mean, alpha_frac;
	uint64_t seed, line_max, min_eq;
};
/* CodeParrot's thresholds */
#define FILTER_CFG_DEFAULT { .enabled = 1, .drop_prob = 0.7, .line_mean = 100, \
			     .alpha_frac = 0.25, .line_max = 1000, .min_eq = 4 }

/* The random drops: a function of seed, content hash and SALT (the filter), so a document's
 * fate depends neither on its position, the thread count nor which run sees it. */
int filter_drop(const struct filter_cfg *c, const unsigned char hash[16], uint64_t salt);
#define FILTER_SALT_CONFIG 1
#define FILTER_SALT_NOKW 2
/* The first filter that removes D, or DEDUP_KEEP. */
uint8_t filter_apply(const struct filter_cfg *c, const struct doc *d);

/* ---- MinHash schemes ----
 * Signatures of cp-hash's two schemes agree on nothing: comparing them would find no near
 * duplicates at all, silently. So the inputs must not mix them, nor an index (--index) and
 * the inputs, nor indexes being merged. The codes are the index file's. */
enum { SCHEME_XXH3 = DEDUPIDX_SCHEME_XXH3, SCHEME_DATASKETCH = DEDUPIDX_SCHEME_DATASKETCH };
/* the scheme of a document that has a signature */
uint8_t scheme_of(const struct doc *d);

/* Within one input NAME: the schemes seen and the record where the last one was first seen. */
struct scheme_track {
	uint8_t schemes;
	uint64_t rec;
};
/* Record REC has a signature of scheme K. 0, or -1 after an error: another scheme came first. */
int scheme_note(struct scheme_track *t, const char *name, uint8_t k, uint64_t rec);
/* Across inputs, in input order: input NAME has signatures of SCHEMES (0: none); *SEEN is the
 * scheme so far and *FROM the input it came from. 0, or -1 after an error. */
int scheme_check_inputs(uint8_t *seen, const char **from, const char *name, uint8_t schemes);
/* The signatures of index X (at PATH) take part in near dedup as if they were the inputs':
 * they must be of the inputs' scheme. An index that does not record its scheme (version 1)
 * could be of either, so it is refused rather than trusted: a wrong guess would find nothing. */
int scheme_check_index(const char *name, uint8_t schemes, const struct dedupidx *x,
		       const char *path);
/* Index X (at PATH) joins ACC, whose signatures came first from FROM: their schemes must
 * agree. An index without signatures joins any; one whose scheme is not recorded, none. */
int scheme_check_merge(const struct dedupidx *acc, const char *from, const struct dedupidx *x,
		       const char *path);
/* A version-1 index does not record its signatures' scheme; whoever knows says it with
 * ENV (CP_DEDUP_INDEX_SCHEME; NULL or empty: nobody), and the index records it when it is
 * rewritten. A scheme the index records is never overridden. 1 when X took ENV's scheme, 0
 * when not, -1 when ENV names no scheme (nothing said: the caller words the usage error). */
int scheme_declare_index(struct dedupidx *x, const char *env);
/* scheme_declare_index with CP_DEDUP_INDEX_SCHEME for index X at PATH, saying on standard
 * error when it took it (with SAY); a value that names no scheme is a usage error. */
void scheme_declare_index_env(struct dedupidx *x, const char *path, int say);

#endif
