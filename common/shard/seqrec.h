/* seqrec.h: the record of SHARD_SEQS shards (written by cp-pack, read by cp-train): one
 * training sequence of exactly T token ids. Header param[0] = vocabulary size, param[1] = T.
 * Record: the T ids little-endian, 2 bytes each when the vocabulary has at most 65536 ids,
 * else 4 (tokrec_width). A record's index in its shard is its position for random access.
 * cp-cat prints one as {"index":N,"n_tokens":T,"tokens":[...]}. */
#ifndef CP_SEQREC_H
#define CP_SEQREC_H

#include <stddef.h>
#include <stdint.h>
#include "shard/tokrec.h"

static inline unsigned seqrec_width(uint64_t vocab) { return tokrec_width(vocab); }

/* Decode a record of LEN bytes into T ids; -1 when LEN is not T ids or an id is not below
 * VOCAB. */
static inline int seqrec_decode(const void *rec, size_t len, uint64_t vocab, size_t T,
				uint32_t *ids)
{
	unsigned w = seqrec_width(vocab);
	const unsigned char *p = rec;
	if (len != T * w)
		return -1;
	for (size_t i = 0; i < T; i++, p += w) {
		uint32_t v = w == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8
				    : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
					      (uint32_t)p[3] << 24;
		if (v >= vocab)
			return -1;
		ids[i] = v;
	}
	return 0;
}

#endif
