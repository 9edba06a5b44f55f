/* report.h: what cp-dedup says about a run: the totals by reason, CodeParrot's share of the
 * most copied files, the table on standard error, the JSON report (--report; keys in
 * man/cp-dedup.1) and the confirmed near-duplicate pairs (--pairs). */
#ifndef CP_DEDUP_REPORT_H
#define CP_DEDUP_REPORT_H

#include "base/buf.h"
#include "dedup/passes.h"

struct dedup_totals {
	uint64_t docs_in, bytes_in, docs_out, bytes_out, n[DEDUP_N];
	/* of all documents in, the share that are copies of the top 0.1%, 1%, 10% most copied
	 * distinct ones (at least one) */
	double share[3];
	size_t n_unique;
};

void dedup_totals_compute(struct dedup_totals *t, const struct dedup_state *s,
			  const struct dedup_input *ins, size_t n);
/* Its two halves: the counts of INS[0..N), and the shares from the copy counts COUNTS[0..G)
 * (descending). */
void dedup_totals_count(struct dedup_totals *t, const struct dedup_input *ins, size_t n);
void dedup_totals_share(struct dedup_totals *t, const uint32_t *counts, size_t g);
/* the table on standard error */
void dedup_report_table(const struct dedup_totals *t);
/* Over ranks: each rank's bytes of exact set and LSH index, on standard error. */
void dedup_report_ranks(const struct dedup_state *s);
/* The JSON report. OUTPUTS: the shards written, JSON strings comma-separated; SECS: read,
 * dedup, near and write seconds. */
void dedup_report_json(struct buf *b, const struct dedup_totals *t, const struct dedup_state *s,
		       const struct buf *outputs, const double secs[4]);
/* The pairs as JSON lines: {"a": ORIGIN, "b": ORIGIN, "jaccard": J}, an index's documents
 * as "index:N". */
void dedup_pairs_json(struct buf *b, const struct dedup_state *s);
/* B to PATH, atomically, or to standard output for "-". 0, or -1 after an error. */
int dedup_write_result(const char *path, const struct buf *b);

#endif
