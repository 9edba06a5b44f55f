/* docpipe.h: cp-hash's pipeline from paths to document records.
 *
 * The paths (directories walked in full-path byte order, JSON-lines dumps, single files, '-'
 * for a list of paths on standard input) are gathered into batches of documents in input
 * order; worker threads read the files, parse the JSON lines and have each document measured
 * (the caller's MEASURE: statistics, exact hash, MinHash) and encoded as a record, while one
 * of them hands the batch measured before to the caller's WRITE, in order. So the records are
 * the same bytes for any thread count (and any count of ranks, see docpipe_opts). With more
 * than one thread the gathering has a thread of its own and passes full batches over a
 * queue; with one it stops to measure each. */
#ifndef CP_DOCPIPE_H
#define CP_DOCPIPE_H

#include "base/buf.h"
#include "shard/doc.h"

#include <stddef.h>
#include <stdint.h>

/* Fill D's st, hash and n_minhash for CONTENT (LEN bytes), the n_minhash values little-endian
 * into MINHASH (4 * DOC_MINHASH_PERM bytes). THREAD: the worker, 0 to threads - 1. */
typedef void (*docpipe_measure_fn)(void *arg, int thread, const unsigned char *content,
				   size_t len, struct doc *d, unsigned char *minhash);
/* One record, in input order, on one thread at a time. */
typedef void (*docpipe_write_fn)(void *arg, const void *rec, size_t len);
/* The records given to WRITE so far are to be reused (a batch of them written): a WRITE that
 * kept them by reference copies what it still needs. NULL: nothing to do. */
typedef void (*docpipe_release_fn)(void *arg);
/* Ranks (base/ranks.h, wired by the caller): N bytes to rank 0; what rank FROM sent, into B. */
typedef void (*docpipe_send_fn)(void *arg, const void *p, size_t n);
typedef void (*docpipe_recv_fn)(void *arg, int from, struct buf *b);
/* V[0..N) summed over the ranks, in place, on every rank. */
typedef void (*docpipe_sum_fn)(void *arg, uint64_t *v, size_t n);
/* B: this rank's bytes, replaced by every rank's, concatenated in rank order (walk.h). */
typedef void (*docpipe_share_fn)(void *arg, struct buf *b);
/* Over ranks, each writing its own turns: the writing's state at the start of turn SEQ,
 * as rank FROM saved it (N == 0: the first turn); and saved into NOTE at a turn's end. */
typedef void (*docpipe_load_fn)(void *arg, uint64_t seq, int from, const void *note, size_t n);
typedef void (*docpipe_save_fn)(void *arg, struct buf *note);
/* The note sent: what of the turn's work may wait (compressing), now. NULL: nothing. */
typedef void (*docpipe_after_fn)(void *arg);
/* A small note to rank TO without waiting; the next note from rank FROM, into B. */
typedef void (*docpipe_note_send_fn)(void *arg, int to, const void *p, size_t n);
typedef void (*docpipe_note_recv_fn)(void *arg, int from, struct buf *b);
/* Whether a note from rank FROM is here (the next NOTE_RECV from it would not wait) */
typedef int (*docpipe_note_ready_fn)(void *arg, int from);

struct docpipe_opts {
	int threads;
	int strict;		/* a malformed JSON line or unreadable input is fatal */
	int jsonl;		/* files and pipes named on the command line are JSON lines */
	int no_content;		/* records without the documents' bytes (DOC_NO_CONTENT) */
	int progress;		/* a progress line on standard error */
	const char *field;	/* the text field of JSON lines */
	uint64_t max_size;	/* larger documents are skipped; 0: no limit */
	uint64_t max_line;	/* longer JSON lines are skipped (as malformed) */
	const char *const *patterns;	/* walk_new's */
	size_t n_patterns;
	docpipe_measure_fn measure;
	docpipe_write_fn write;
	docpipe_release_fn release;
	void *arg;
	/* Over ranks (nranks > 1): every rank gathers the same batches from the same inputs and
	 * measures every nranks-th (batch k on rank k % nranks, or on 1 + k % (nranks - 1) with
	 * RANK0_WRITES); the others send theirs, measured
	 * and encoded, to rank 0, which writes every batch in order (WRITE is called there
	 * alone, with the records a single process would give it). Pipes cannot be read by
	 * every rank: they are refused. A JSON-lines file named in PATHS is not read by every
	 * rank: a plain one is cut into parts at line boundaries (the lines that start in each
	 * 4 MiB, CP_DOCPIPE_PART_BYTES for tests), a compressed one is one part, and the parts
	 * go round the ranks, each read by its rank alone (the line numbers of the origins
	 * found by the ranks counting the lines of theirs: SUM). */
	int rank, nranks;
	/* Rank 0 measures nothing, only writes: when writing (compressing) costs about what
	 * measuring does, so that its turns would hold the others up. */
	int rank0_writes;
	docpipe_send_fn send;
	docpipe_recv_fn recv;
	docpipe_sum_fn sum;
	/* With SHARE (and SUM), each directory named in PATHS is read by the ranks together
	 * before the batches (walk_tree_read): each rank reads a share of its directories. */
	docpipe_share_fn share;
	/* With LOAD and SAVE (and the notes), when no JSON-lines file is cut into parts and
	 * not STRICT, every rank writes (and so compresses) the batches it measures, itself,
	 * in turns (batch k on rank k % nranks, RANK0_WRITES ignored): WRITE is called on each
	 * rank with its turns' records, between a LOAD of the state the turn before left and a
	 * SAVE of what this one leaves, the notes passing from the rank of each turn to the
	 * next's; after the last turn rank 0 LOADs the state left (SEQ: the turns' count).
	 * The messages about documents are printed by rank 0 at the end, in input order, and
	 * the counts summed over the ranks. */
	docpipe_load_fn load;
	docpipe_save_fn save;
	docpipe_after_fn after;
	docpipe_note_send_fn note_send;
	docpipe_note_recv_fn note_recv;
	/* With one thread, a turn waiting for its note lets this rank's next batch be measured
	 * meanwhile (NULL: every turn is written before the next batch is measured) */
	docpipe_note_ready_fn note_ready;
};

struct docpipe_counts {
	uint64_t docs, bytes, binary, too_large, malformed, unreadable, loops;
	int spread;	/* every rank wrote its turns (LOAD and SAVE were used) */
};

/* Every document of PATHS[0..N) through MEASURE to WRITE; the skipped ones are counted into
 * *C, with a warning (an error when unreadable) naming each. 2 when an input failed part
 * way (a JSON-lines file cut short or corrupt: some of its documents went to WRITE, so the
 * output must not be finished), 1 when something could not be read, else 0. */
int docpipe_run(const struct docpipe_opts *o, char *const *paths, int n, struct docpipe_counts *c);

#endif
