/* passes.h: cp-dedup's two passes over document shards.
 *
 * Pass 1 reads every document's hash, statistics and MinHash signature and decides its fate
 * (exact dedup, then near dedup, then the filters, as CodeParrot deduplicates before
 * filtering); pass 2 re-reads the inputs and writes the documents that stay, unchanged.
 * Decisions are made in input order on one thread while reading and writing run in parallel
 * over parts of the inputs, so the output is the same for any thread count.
 *
 * An input is cut into parts: a large regular shard into record ranges of about 32 MiB (by
 * its block index; CP_DEDUP_PART_BYTES sets the size for tests), so one big shard is still
 * read and written in parallel. The cut depends only on the shard's header, never on the
 * thread count, so the output does not either. */
#ifndef CP_DEDUP_PASSES_H
#define CP_DEDUP_PASSES_H

#include "base/buf.h"
#include "dedup/filters.h"
#include "dedup/index.h"
#include "dedup/lsh.h"
#include "shard/outdir.h"
#include "shard/set.h"

#include <stddef.h>
#include <stdint.h>

#define DEDUP_NPERM DOC_MINHASH_PERM

struct dedup_cfg {
	int threads, near, level, dry_run;
	double threshold;
	struct filter_cfg filt;
	const char *outdir;	/* "-": standard output */
	const char *report, *index, *pairs;
	const char *spool;	/* where standard input is copied for pass 2 (not with dry_run) */
	int stream;		/* standard input alone, exact dedup: one pass (dedup_stream) */
	uint64_t max_mem;	/* over ranks (dist.h): a rank's bytes at most; 0: no limit */
};

/* One part of an input: what pass 1 learnt, kept for pass 2 (5 bytes a document). */
struct dedup_input {
	const char *path;	/* the shard, as given (also in messages) */
	struct shard_reader *spool;	/* stdin's copy, opened and unlinked */
	struct buf mem;		/* stdin's copy while it fits in memory: LEB128 length, record */
	uint64_t start, limit;	/* the part: records [start, start + limit); UINT64_MAX: all */
	uint64_t n_docs, bytes_in, bytes_out, docs_out;
	uint64_t param[2];
	uint8_t *status;	/* enum dedup_status of each document */
	uint32_t *lshid;
	/* pass-1 scratch, freed once merged */
	unsigned char (*hash)[16];
	uint8_t *reason;
	uint16_t *sigs;		/* DEDUP_NPERM values for each document with has_sig */
	uint8_t *has_sig;
	uint64_t *clen;		/* dry_run: content length of each document */
	uint64_t no_sig;	/* near dedup on: documents made by cp-hash --minhash none */
	struct buf origins;	/* pairs: origin text of each document, NUL-separated */
	struct scheme_track scheme;
	size_t cap, sig_cap;
	/* pass 1 folding the part in while it is read (dedup_decide, the first part of a
	 * group: the parts before it are folded in): the state, and how far it has gone */
	struct dedup_state *fold;
	uint64_t folded, folded_sig, folded_opos;
	size_t status_cap;
};

struct dedup_pair { uint32_t a, b; double j; };

/* Over ranks (dedup/dist.h): this rank's share, and what the report says of all of them. */
struct dedup_dist {
	int ranks;
	size_t lo, hi;			/* this rank's parts */
	uint64_t max_mem;		/* --max-mem; 0: no limit */
	unsigned bands, rows;
	uint64_t near_docs;		/* signatures near dedup saw, the index's too */
	uint64_t exact_size, exact_bytes, lsh_bytes;	/* summed over the ranks */
	uint64_t exact_mine, lsh_mine;	/* this rank's bytes (the LSH's at its peak) */
	uint64_t *rank_bytes;		/* rank 0: each rank's exact and LSH bytes */
	uint32_t *counts;		/* rank 0: every rank's copy counts, descending */
	size_t n_counts;
	/* this rank's signatures: the index's ids [old_lo, old_hi), then its inputs' ids
	 * [new_lo, new_lo + n_new) */
	uint64_t old_lo, old_hi, new_lo, n_new;
	uint16_t *sig;
	uint64_t ox_lo, ox_hi;		/* the index's exact hashes of this rank's range */
};

struct dedup_state {
	struct dedup_cfg cfg;
	struct dedupset *set;
	struct lsh *lsh;
	struct dedupidx old;	/* cfg.index as loaded */
	uint32_t n_old_near;	/* the lsh's first documents, the index's */
	uint64_t no_sig;	/* documents near dedup could not see: no signature made */
	uint8_t scheme;		/* the inputs' MinHash scheme; 0: no signatures in near dedup */
	/* pairs */
	struct buf pair_origins;	/* origin of each lsh document of the inputs, NUL-separated */
	size_t *origin_off, n_origin, cap_origin;
	struct dedup_pair *pairs;
	size_t n_pairs, cap_pairs;
	double t_read, t_dedup, t_near;	/* reading; all decisions; LSH and clustering alone */
	struct dedup_dist *dist;	/* over ranks; NULL: one process, dedup_decide */
};

/* LIST[0..N) (shard paths or "-") into parts (*OUT, free with dedup_inputs_free); *EXPECT
 * the documents the inputs' headers promise (a guess for the ones that do not say). */
size_t dedup_plan_parts(char **list, size_t n, struct dedup_input **out, uint64_t *expect);
void dedup_inputs_free(struct dedup_input *ins, size_t n);

/* S for configuration C, about EXPECT documents; with C->index, the index loaded (its
 * hashes and signatures count as documents before all inputs). 0, or -1 after an error. */
int dedup_state_init(struct dedup_state *s, const struct dedup_cfg *c, uint64_t expect);
void dedup_state_free(struct dedup_state *s);

/* Pass 1 over INS[0..N): every document's status. 0, or -1 after an error. */
int dedup_decide(struct dedup_state *s, struct dedup_input *ins, size_t n);
/* IN's shard opened at the part's first record, its params taken; NULL after an error. */
struct shard_reader *dedup_open_input(struct dedup_input *in);
/* Read one part and keep what pass 1 needs (its thread's share of dedup_decide). */
int dedup_read_input(struct dedup_input *in, const struct dedup_cfg *c);
/* Check record REC of LEN bytes, the next of IN, decoded into D, and keep what pass 1 needs
 * of it (*NSIG counts the signatures kept). 0, or -1 after an error naming it. */
int dedup_take_record(struct dedup_input *in, const struct dedup_cfg *c, const void *rec,
		      size_t len, struct doc *d, size_t *nsig);
/* Fold a read part into the decisions, in input order. */
void dedup_merge_input(struct dedup_state *s, struct dedup_input *in);
/* Free what pass 1 kept of IN for the decisions, once they are made. */
void dedup_scratch_free(struct dedup_input *in);
/* One pass for standard input alone without near dedup (C->stream): every document's fate is
 * known once it is read, so the kept ones go to OUT (a staged shard, or "-") as they come,
 * their records as they lie, and nothing is spooled or read twice. *WRITE_SECS: the time
 * spent writing. 0, or -1 after an error (OUT's shard then unfinished: a reader refuses it). */
int dedup_stream(struct dedup_state *s, struct dedup_input *in, const char *out,
		 double *write_secs);
/* Near-duplicate clusters keep their first document only; once every document is in. */
void dedup_near_decide(struct dedup_state *s, struct dedup_input *ins, size_t n);

/* The clean shards' zstd level unless -L: stored. The next stage (cp-bpe, cp-tokenize) reads
 * them on this machine and would undo any compression at once; level 1 costs about 2.3 ns a
 * byte of code here (half the CPU of a run that writes the corpus) for shards 4.4 times
 * smaller, and the fast levels below it save little on code (level -5: 20%). */
#define DEDUP_LEVEL SHARD_LEVEL_STORE
/* A writer of clean documents to PATH ("-": standard output) with C's level and THREADS
 * compressing. NULL after an error. */
struct shard_writer *dedup_open_output(const char *path, const uint64_t param[2],
				       const struct dedup_cfg *c, int threads);
/* Dry run: what pass 2 would write, counted from pass 1's lengths. */
void dedup_dry_run_totals(struct dedup_input *ins, size_t n);
/* Pass 2: the kept documents of each part to standard output (C->outdir "-") or to staged
 * part I of STAGE. 0, or -1 after an error. */
int dedup_write_outputs(struct dedup_input *ins, size_t n, const struct dedup_cfg *c,
			const struct outdir_stage *stage);
/* Move the staged parts that hold documents into OUTDIR as docs-NNNNN.shard, numbered after
 * the shards already there, and write OUTDIR's set manifest: SET (what was there) and these
 * (shard/set.h). Their paths go to NAMES as JSON strings, comma-separated. The empty ones
 * are removed. 0, or -1 after an error. */
int dedup_publish(struct dedup_input *ins, size_t n, const char *outdir,
		  const struct outdir_stage *stage, struct shardset *set, struct buf *names);
/* Write the index of all that was seen to PATH. 0, or -1 after an error. */
int dedup_save_index(struct dedup_state *s, const char *path);
/* cp-dedup --merge-index: ARGV[1..ARGC) merged into ARGV[0]; the exit status (dies on
 * errors). */
int dedup_merge_indexes(int argc, char **argv);

#endif
