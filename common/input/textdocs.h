/* textdocs.h: the documents that cp-bpe and cp-tokenize read: records of document shards,
 * or plain files (each file one document), so both tools work on a corpus before and after
 * cp-hash. */
#ifndef CP_BPE_INPUT_H
#define CP_BPE_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct bpe_input;

/* INPUTS: shard files, "-" (a shard on stdin), directories (their *.shard files), and plain
 * files (told apart from shards by the magic). With text, directories are walked recursively
 * for every regular file whose name does not start with '.', and "-" is text. Dies on an
 * unreadable directory. */
struct bpe_input *bpe_input_open(char *const *inputs, size_t n, int text);
/* Read a large plain file with THREADS threads (default 1). */
void bpe_input_set_threads(struct bpe_input *in, int threads);
/* Next document: 1 and its id and bytes (valid until the next call), 0 at the end, -1 after
 * an error naming the file. A plain file's id is xxh3-64 of its path (as cp-hash's origin). */
int bpe_input_next(struct bpe_input *in, uint64_t *id, const unsigned char **s, size_t *n);
/* The input the last document came from: index, path, and whether it is a shard. */
size_t bpe_input_index(const struct bpe_input *in);
const char *bpe_input_path(const struct bpe_input *in);
int bpe_input_is_shard(const struct bpe_input *in);
size_t bpe_input_count(const struct bpe_input *in);
/* Path of input I (after expansion), and whether it is a shard. */
const char *bpe_input_item(const struct bpe_input *in, size_t i, int *is_shard);
void bpe_input_close(struct bpe_input *in);

#endif
