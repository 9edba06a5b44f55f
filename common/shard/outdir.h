/* outdir.h: output directories of numbered shards (DIR/PREFIX-NNNNN.shard) for the tools that
 * write them (cp-hash, cp-dedup, cp-pack), and the hidden staging directory in which
 * cp-dedup writes a run's shards before it moves them in under fresh numbers.
 *
 * One parser of the names for all: PREFIX, '-', one or more decimal digits, ".shard", and
 * nothing else (temporaries and other files are never taken for shards). Numbers are written
 * with at least five digits, as the shards sort by name in the order they were written. */
#ifndef CP_OUTDIR_H
#define CP_OUTDIR_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

/* Is NAME (a base name) PREFIX-DIGITS.shard? Then 1 and *NO its number; else 0. */
int outdir_parse_name(const char *name, const char *prefix, uint64_t *no);
/* DIR/PREFIX-NNNNN.shard (malloc'd); a DIR ending in '/' gets no second one. */
char *outdir_shard_path(const char *dir, const char *prefix, uint64_t no);
/* Create DIR, its parents too when PARENTS. 0, or -1 after an error naming it (it cannot be
 * created, or it exists and is not a directory). */
int outdir_make(const char *dir, int parents);
/* One more than the largest number of a PREFIX shard in DIR, 0 when there is none, so a run
 * that adds shards (cp-dedup --index) never overwrites one. -1 after an error. */
int64_t outdir_next_number(const char *dir, const char *prefix);
/* Remove the PREFIX shards numbered FROM or more: what an earlier, longer run left, so DIR
 * holds exactly this run's. A shard that cannot be removed is an error with FATAL (die),
 * a warning without; returns the count of those. */
int outdir_remove_from(const char *dir, const char *prefix, uint64_t from, int fatal);

/* A staging directory OUTDIR/.TOOL-PID with N paths part-NNNNN.shard in it. */
struct outdir_stage {
	char *volatile dir;
	char **volatile paths;
	/* 0 until every path exists, and again once published (nothing to remove): a signal
	 * handler reads it (volatile: the paths are stored first) */
	volatile size_t n;
	size_t n_paths;
};
/* Remove the staging directories of TOOL's runs that died (SIGKILL, power loss: their pid
 * is gone), whose finished shards were never published, then create this process's. 0, or
 * -1 after an error. */
int outdir_stage_open(struct outdir_stage *s, const char *outdir, const char *tool, size_t n);
/* Move staged part I into OUTDIR as PREFIX-NO.shard. Returns that path (malloc'd), also when
 * the rename failed: then after an error, and *FAILED is set. */
char *outdir_stage_publish(const struct outdir_stage *s, size_t i, const char *outdir,
			   const char *prefix, uint64_t no, int *failed);
/* Remove what is staged and the directory itself (async-signal-safe: unlink and rmdir only,
 * for a signal handler; the directory goes only once it is empty). */
void outdir_stage_remove(const struct outdir_stage *s);
void outdir_stage_free(struct outdir_stage *s);



/* ---- a stream of records into one shard or a directory of numbered ones ---- */
enum outdir_mode { OUTDIR_STDOUT, OUTDIR_FILE, OUTDIR_DIR };
struct shard_writer;
struct shardset_stage;
struct outdir_writer {
	enum outdir_mode mode;
	const char *out, *prefix;
	uint32_t kind;
	uint64_t param[2];
	int level, dflt_level;		/* shard_auto_level's */
	int threads;			/* shard_set_threads' for each shard (0: 1) */
	uint64_t max_docs, max_bytes;	/* OUTDIR_DIR: a new shard after this many (0: no limit) */
	struct shard_writer *w;
	struct shardset_stage *stage;	/* OUTDIR_DIR: DIR/.stage-PID until the set is whole */
	uint64_t no, n, bytes;		/* shards closed; records and bytes in the open one */
	struct shard_spill *spill;	/* outdir_writer_open_spill's */
};
/* OUT: "-" (standard output, refused when a terminal), a directory (ends in '/' or exists;
 * created with its parents; the shards are staged in it and committed as one set by
 * outdir_writer_finish, shard/set.h) or a shard file. Shards of KIND and PARAM named PREFIX-NNNNN.shard
 * in a directory; LEVEL and DFLT_LEVEL as shard_auto_level takes them. Then set max_docs,
 * max_bytes and threads. 0, or -1 after an error. */
int outdir_writer_open(struct outdir_writer *ow, const char *out, const char *prefix,
		       uint32_t kind, const uint64_t param[2], int level, int dflt_level);
/* One more record; in a directory the next shard begins when the open one is full. 0 or -1. */
int outdir_writer_write(struct outdir_writer *ow, const void *rec, size_t len);
/* The same by reference (shard_write_ref): REC stays as it is until outdir_writer_release. */
int outdir_writer_write_ref(struct outdir_writer *ow, const void *rec, size_t len);
void outdir_writer_release(struct outdir_writer *ow);
/* Close the last shard (an empty one when no record came) and, in a directory, commit the
 * set: its shards moved in, the manifest written last, the shards an earlier run left
 * removed. 0, or -1 (nothing of this run is left). */
int outdir_writer_finish(struct outdir_writer *ow);
/* Give up: the open shard and, in a directory, everything staged are removed; a finished
 * output of an earlier run stays as it was. */
void outdir_writer_abort(struct outdir_writer *ow);

/* ---- one stream written by the ranks in turns (cp-hash under mpirun; shard.h's spills) ----
 * Each rank's writer puts its blocks in its spill: MODE is the output's (a directory's
 * shards end as outdir_writer_write ends them), LEVEL its zstd level; then set max_docs,
 * max_bytes and threads as the output's. A turn begins with the note the turn before saved
 * (outdir_writer_load; no bytes: the first turn; FD: the spill of the rank that saved it)
 * and ends by saving one (outdir_writer_save, appended to NOTE); after the last,
 * outdir_writer_end_spill ends the last shard. Rank 0 then hands every rank's events, in
 * the order of the turns, to outdir_writer_assemble on the output's writer (FD: the spill
 * they came from) and finishes it. 0, or -1 after an error. */
struct shard_spill;
void outdir_writer_open_spill(struct outdir_writer *ow, struct shard_spill *sp,
			      enum outdir_mode mode, const char *prefix, uint32_t kind,
			      const uint64_t param[2], int level);
int outdir_writer_save(struct outdir_writer *ow, struct buf *note);
int outdir_writer_load(struct outdir_writer *ow, const void *note, size_t len, int fd);
/* The turn's blocks compressed, after its note went (shard_spill_flush) */
int outdir_writer_flush(struct outdir_writer *ow);
int outdir_writer_end_spill(struct outdir_writer *ow);
int outdir_writer_assemble(struct outdir_writer *ow, const unsigned char ev[40], int fd);

#endif
