/* tokrec.h: the record of SHARD_TOKENS shards: one document's token ids.
 * Header param[0] = vocabulary size, param[1] = id width in bytes (2 when the vocabulary
 * has at most 65536 ids, else 4). Record: u64le document id, then the ids little-endian,
 * the document's <|endoftext|> id last. */
#ifndef CP_TOKREC_H
#define CP_TOKREC_H

#include <stddef.h>
#include <stdint.h>
#include "base/buf.h"

static inline unsigned tokrec_width(uint64_t vocab) { return vocab <= 65536 ? 2 : 4; }

/* the N ids of IDS at P, WIDTH bytes each (a record's body; N * WIDTH bytes) */
static inline void tokrec_put(unsigned char *p, const uint32_t *ids, size_t n, unsigned width)
{
	for (size_t i = 0; i < n; i++, p += width) {
		p[0] = (unsigned char)ids[i];
		p[1] = (unsigned char)(ids[i] >> 8);
		if (width == 4) {
			p[2] = (unsigned char)(ids[i] >> 16);
			p[3] = (unsigned char)(ids[i] >> 24);
		}
	}
}

static inline void tokrec_encode(struct buf *out, uint64_t doc_id, const uint32_t *ids, size_t n,
				 unsigned width)
{
	buf_put_u64le(out, doc_id);
	buf_grow(out, n * width);
	tokrec_put(out->p + out->len, ids, n, width);
	out->len += n * width;
}

/* number of ids in a record of LEN bytes, or -1 when LEN does not fit the width */
static inline long tokrec_count(size_t len, unsigned width)
{
	if (len < 8 || (len - 8) % width)
		return -1;
	return (long)((len - 8) / width);
}

static inline uint32_t tokrec_id(const unsigned char *rec, size_t i, unsigned width)
{
	const unsigned char *p = rec + 8 + i * width;
	return width == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8
			  : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
