/* seqdata.h: cp-train's sequence data: a directory of SHARD_SEQS shards (shard/seqrec.h) read
 * as one array of sequences by global index, and the batches a rank takes from it. Indices
 * wrap around the data, so training runs for as many steps as asked whatever the data's size.
 * Bad data dies with a message naming the file and record. */
#ifndef CP_SEQDATA_H
#define CP_SEQDATA_H

#include <stddef.h>
#include <stdint.h>

struct seqdata {
	char **paths;
	size_t n;
	uint64_t *first;	/* global index of each shard's record 0; first[n] = total */
	uint64_t total, vocab, T;
	struct shard_reader *cur;
	size_t cur_shard;
	uint64_t next;		/* local index shard_next would return */
	uint32_t *ids;
};

/* Open the shards of DIR (all of one vocabulary and length, at least one sequence). */
void seqdata_open(struct seqdata *d, const char *dir);
void seqdata_close(struct seqdata *d);
/* Sequence GLOBAL (mod total): its first T ids into OUT (T at most d->T). */
void seqdata_get(struct seqdata *d, uint64_t global, uint32_t *out, uint64_t T);
/* Rank RANK's part of the batch of B sequences that starts at global index BASE: the
 * B_LOCAL sequences from BASE + RANK * B_LOCAL, stopping at the batch's end and at index END
 * (UINT64_MAX: none), T ids each into OUT. Returns how many it read. */
uint64_t seqdata_batch(struct seqdata *d, uint64_t base, uint64_t B, uint64_t end, int rank,
		       uint64_t B_local, uint32_t *out, uint64_t T);

#endif
