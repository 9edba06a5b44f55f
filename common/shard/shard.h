/* shard.h: the one binary container every stage reads and writes (format: man/cp-shard.5).
 *
 * A shard is a header, blocks of records (each one zstd frame with an xxh3 checksum), an end
 * block with the totals, a block index and a fixed footer. The same bytes go to a file or a
 * pipe; a reader of either knows a shard that was cut short. The shard layer moves opaque
 * records; doc.h, tokrec.h and friends give them meaning per kind. */
#ifndef CP_SHARD_H
#define CP_SHARD_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

#define SHARD_VERSION 1
#define SHARD_EXT ".shard"

enum shard_kind {
	SHARD_ANY = 0,		/* for readers: accept every kind */
	SHARD_DOCS = 1,		/* documents (doc.h) */
	SHARD_TOKENS = 2,	/* token ids of documents */
	SHARD_SEQS = 3,		/* packed fixed-length training sequences */
};

/* What the header and end block say. param[] is kind-specific (e.g. vocabulary size, id width,
 * sequence length) and written down in man/cp-shard.5. */
struct shard_info {
	uint32_t version, kind, flags;
	uint64_t n_records, n_blocks, raw_bytes;
	uint64_t param[2];
};

const char *shard_kind_name(uint32_t kind);

/* ---- writing ---- */
struct shard_writer;
/* PATH "-" is stdout (refused when a terminal). Otherwise the shard is written to a hidden
 * temporary beside PATH and renamed over PATH by shard_close, so a killed writer leaves no
 * file a reader would take. Returns NULL after printing an error. */
struct shard_writer *shard_create(const char *path, uint32_t kind, const uint64_t param[2]);
/* Records go into blocks of about this many raw bytes (default 1 MiB); zstd level default 3,
 * SHARD_LEVEL_STORE for frames of raw blocks (no compression). */
#define SHARD_LEVEL_STORE 0
#define SHARD_LEVEL_MIN (-7)
#define SHARD_LEVEL_MAX 19
void shard_set_block_size(struct shard_writer *w, size_t bytes);
void shard_set_level(struct shard_writer *w, int level);
/* Compress blocks on THREADS worker threads (default 1: on the caller's), while the caller
 * fills the next; they are written in order, the same bytes for any count. A block of 16 MiB
 * or more (a large record) is compressed by THREADS of zstd's own workers. Before the first
 * record. */
void shard_set_threads(struct shard_writer *w, int threads);
#define SHARD_LEVEL_UNSET 100
/* The level for a writer of PATH: GIVEN unless SHARD_LEVEL_UNSET; then standard output
 * that is a pipe or socket gets SHARD_LEVEL_STORE (the next stage reads it on this machine,
 * compression would be work undone at once); everything else DEFAULT. */
int shard_auto_level(const char *path, int given, int dflt);
int shard_write(struct shard_writer *w, const void *rec, size_t len);
/* The same bytes as shard_write, but a stored shard's larger records are not copied: they
 * go out from REC itself (writev), which must stay as it is until shard_release or
 * shard_close. For records only passed through. */
int shard_write_ref(struct shard_writer *w, const void *rec, size_t len);
/* The records of shard_write_ref copied that are not out yet: their memory is the caller's
 * again. */
void shard_release(struct shard_writer *w);
/* shard_write of a record the caller makes in place (no copy of a large one): room for its
 * LEN bytes, to be filled before the next call on W. NULL after an error. */
void *shard_write_room(struct shard_writer *w, size_t len);
/* Finish: end block, index, footer, header counts (when seekable), fsync, rename. 0 or -1. */
int shard_close(struct shard_writer *w);
/* Give up: remove the temporary, free. */
void shard_abort(struct shard_writer *w);
uint64_t shard_written(const struct shard_writer *w);

/* ---- blocks compressed by several processes (cp-hash under mpirun) ----
 * Each rank writes the records of its turns into a writer made by shard_create_spilled: its
 * blocks, the bytes one process would write, go into the rank's spill file, with an event
 * each (and one where a shard ends) tagged with the turn set by shard_spill_turn. At the end
 * of a turn shard_state_save hands the block being filled (its bytes spilled) and the counts
 * to the next turn's rank as a note of shard_state_size() bytes, which shard_state_load takes
 * there, reading the bytes from the spill (FD). Rank 0 then copies every block, in the order
 * of the turns, into the shard a plain writer makes (shard_assemble_block), sets the counts
 * of each shard's end (shard_set_totals) and closes it. */
struct shard_spill;
/* The spill's temporary beside PATH (base/atomic: removed on signals). NULL after an error. */
struct shard_spill *shard_spill_open(const char *path);
const char *shard_spill_file(const struct shard_spill *sp);
void shard_spill_turn(struct shard_spill *sp, uint64_t seq);
/* The events: 5 little-endian u64 each (turn; 0 a block: offset, length; 1 a shard's end:
 * records, raw bytes; 0) */
const void *shard_spill_events(const struct shard_spill *sp, size_t *n);
void shard_spill_remove(struct shard_spill *sp);
/* shard_close of such a writer spills its last block and the shard's end (no tail). */
struct shard_writer *shard_create_spilled(struct shard_spill *sp, uint32_t kind,
					  const uint64_t param[2]);
int shard_state_save(struct shard_writer *w, struct buf *note);
/* A spilled writer compresses its turn's blocks here, once the note is on its way (the next
 * turn's rank need not wait for them); 0 or -1. */
int shard_spill_flush(struct shard_writer *w);
size_t shard_state_size(void);
int shard_state_load(struct shard_writer *w, const unsigned char *note, int fd);
int shard_assemble_block(struct shard_writer *w, int fd, uint64_t off, uint64_t len);
void shard_set_totals(struct shard_writer *w, uint64_t n_records, uint64_t raw_bytes);

/* ---- reading ---- */
struct shard_reader;
/* PATH "-" is stdin. KIND SHARD_ANY accepts any kind. NULL after an error naming the file. */
struct shard_reader *shard_open(const char *path, uint32_t kind);
/* Next record: 1 and *rec and *len point into the reader's buffer (valid until the next call),
 * 0 at a verified end, -1 after an error naming the file and byte offset. */
int shard_next(struct shard_reader *r, const void **rec, size_t *len);
/* For a writer W given R's records by reference: shard_release(W) when R's next shard_next
 * reads another block into the memory of the one its records came from. Returns 1 (for a
 * loop's condition). */
int shard_release_for(struct shard_writer *w, const struct shard_reader *r);
/* Position so that the next shard_next returns record INDEX. Regular files only (uses the
 * footer's index). 0 or -1. */
int shard_seek(struct shard_reader *r, uint64_t index);
/* A regular file's block index: the file offset of block I and the index of its first
 * record, for I < n_blocks; for I == n_blocks, where the blocks end and n_records. 0, or -1
 * without an index (a pipe) or for I beyond. */
int shard_block(const struct shard_reader *r, uint64_t i, uint64_t *offset, uint64_t *first);
/* Header info; n_records is known up front on seekable files (from header or footer),
 * and UINT64_MAX on a pipe until the end is reached. */
const struct shard_info *shard_get_info(const struct shard_reader *r);
const char *shard_path(const struct shard_reader *r);
void shard_close_reader(struct shard_reader *r);
/* Read a whole shard and check everything; 0 or -1. */
int shard_verify(const char *path, uint32_t kind, struct shard_info *out);

/* ---- inputs ---- */
/* Expand inputs: a directory gives exactly the shards its set manifest names, in its order
 * (shard/set.h: one written by a finished run; a directory with shards but none is refused);
 * a file or "-" is itself. Returns the count and sets *out (free with shard_list_free). Dies
 * on unreadable directories and refused sets, naming them. */
size_t shard_list(char *const *inputs, size_t n, char ***out);
void shard_list_free(char **list, size_t n);

#endif
