/* dist.h: cp-dedup's pass 1 over the ranks of an MPI job (mpirun -np N cp-dedup), deciding
 * exactly what one process decides (passes.h).
 *
 * Rank r reads parts [n*r/N, n*(r+1)/N) of the inputs. Exact hashes go by hash range to
 * their rank (an all-to-all); each rank takes the hashes it is sent in rank order, which is
 * input order, so the first occurrence is found as one process finds it, and the answers go
 * back. The documents near dedup sees are numbered in input order over all ranks (the
 * index's signatures first); each rank keeps the signatures of its own and sends every band
 * key to the key's rank, which pairs the documents of each bucket; a pair is confirmed at the
 * rank of its later document, which fetches the earlier signature from its rank. The
 * clusters are joined where the edges are, by labels (a distributed union-find): each
 * document's label, kept by its rank, starts as itself; rounds hook the later label of an
 * edge's two onto the earlier and let labels jump to their labels' labels (all-to-alls),
 * until every edge's ends agree: then each cluster's label is its first document, which is
 * kept, as one process keeps it. For --pairs, each cluster's edges meet at its label's rank,
 * which joins them in the order one process meets them (by document, band, then the earlier
 * document from the newest), so the pairs rank 0 reports are one process's.
 *
 * Every function is collective: all ranks call it, and it fails on all when on any. */
#ifndef CP_DEDUP_DIST_H
#define CP_DEDUP_DIST_H

#include "dedup/passes.h"
#include "dedup/report.h"

/* S for configuration C over the job's ranks, inputs cut into N_PARTS parts; MAX_MEM: the
 * bytes a rank may hold for the exact set and near dedup (0: no limit). With C->index, every
 * rank loads the index and keeps its share. 0, or -1 after an error. */
int dedup_dist_init(struct dedup_state *s, const struct dedup_cfg *c, size_t n_parts,
		    uint64_t max_mem);
/* Pass 1: this rank's parts read, every document's status decided. 0 or -1. */
int dedup_dist_decide(struct dedup_state *s, struct dedup_input *ins, size_t n);
/* Pass 2: this rank's parts written (or counted, dry run) to STAGE's paths, or to standard
 * output with one rank; afterwards every rank knows every part's docs_out and bytes_out. */
int dedup_dist_write(struct dedup_state *s, struct dedup_input *ins, size_t n,
		     const struct outdir_stage *stage);
/* Rank 0's staging directory (opened for N parts) made known to the others. */
void dedup_dist_stage(struct outdir_stage *stage, size_t n);
/* The index of everything seen, gathered and written to PATH by rank 0. 0 or -1. */
int dedup_dist_save_index(struct dedup_state *s, const char *path);
/* The report's totals over all ranks (complete on rank 0). */
void dedup_dist_totals(struct dedup_totals *t, const struct dedup_state *s,
		       const struct dedup_input *ins, size_t n);

#endif
