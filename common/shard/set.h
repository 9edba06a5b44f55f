/* set.h: a directory of shards as one set, whole or not at all (man/cp-shard.5, SETS).
 *
 * Each shard is atomic, a directory of them is not: a run killed or failed half way, or a
 * killed rerun over an old output, leaves shards a reader would take for a finished set. So a
 * writer stages its shards in the hidden DIR/.stage-PID and, once all are finished, moves them
 * in and writes the manifest DIR/.set last (base/atomic): the names, sizes, record counts and
 * footer checksums of exactly the shards of the set. A reader of a directory requires the
 * manifest and reads exactly the shards it names, each present and unchanged; a directory
 * without one is refused, naming it. */
#ifndef CP_SET_H
#define CP_SET_H

#include <stddef.h>
#include <stdint.h>

#define SHARDSET_FILE ".set"
#define SHARDSET_MAGIC "cp-shard-set"
#define SHARDSET_VERSION 1

struct buf;

struct shardset_entry {
	char *name;			/* a base name, PREFIX-NNNNN.shard or any NAME.shard */
	uint64_t bytes, records, check;	/* check: the footer's XXH3 of the block index */
};
struct shardset {
	struct shardset_entry *e;
	size_t n, cap;
};

/* DIR/.set (malloc'd) */
char *shardset_path(const char *dir);
/* Read DIR's manifest into *S: 0, 1 when there is none (*S empty), -1 after an error naming
 * the file and line. */
int shardset_load(const char *dir, struct shardset *s);
/* Parse manifest TEXT (WHERE names it in errors). 0 or -1. */
int shardset_parse(struct shardset *s, const char *text, size_t len, const char *where);
/* The manifest's text, appended to B. */
void shardset_format(const struct shardset *s, struct buf *b);
/* Write DIR/.set atomically. 0 or -1. */
int shardset_write(const char *dir, const struct shardset *s);
/* Add NAME, whose bytes are the finished shard PATH (its size, count and footer). 0 or -1. */
int shardset_add_file(struct shardset *s, const char *path, const char *name);
/* Index of NAME in S, or -1. */
long shardset_find(const struct shardset *s, const char *name);
/* Every shard S names is in DIR, of its size and footer checksum. 0, or -1 after an error
 * naming DIR and the shard. */
int shardset_check(const struct shardset *s, const char *dir);
/* Does DIR hold a visible NAME.shard? */
int shardset_has_shards(const char *dir);
void shardset_free(struct shardset *s);

/* The shards of directory DIR for a reader, appended to *LIST (of *LEN, capacity *CAP) as
 * DIR/NAME in the manifest's order. Dies (exit 1, naming DIR) on a directory without a
 * manifest (the message says whether it holds shards), or a manifest naming a missing or
 * changed shard. */
void shardset_expand(const char *dir, char ***list, size_t *len, size_t *cap);

/* ---- staging a whole set ---- */
struct shardset_stage;
/* Remove the stages of runs that died (DIR/.stage-PID of a gone PID), create this process's.
 * NULL after an error. Its files are removed by shardset_stage_remove_all (a signal handler,
 * base/atomic's extra) and at exit, unless committed. */
struct shardset_stage *shardset_stage_open(const char *outdir);
/* The stage's directory: for other temporaries (base/atomic's) that go before the commit */
const char *shardset_stage_dir(const struct shardset_stage *st);
/* The staged path of NAME (malloc'd; registered for removal) */
char *shardset_stage_path(struct shardset_stage *st, const char *name);
/* Commit the N stages: all manifests are computed first; then each directory's old manifest
 * goes (the old set is refused from here, never mixed), the staged shards are moved in, what
 * the old set named that the new one does not and, with PREFIX, PREFIX shards numbered past
 * the new ones are removed, and the manifest is written last. Signals held meanwhile. The
 * stages are freed. 0, or -1 after an error (what is staged is removed). */
int shardset_stage_commit(struct shardset_stage **st, size_t n, const char *prefix);
/* Remove what a stage holds and free it (failure paths). */
void shardset_stage_abort(struct shardset_stage *st);
/* Async-signal-safe: unlink every staged file of every open stage, rmdir the stages. */
void shardset_stage_remove_all(void);

#endif
