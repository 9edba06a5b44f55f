/* buf.h: a growable byte buffer, and the LEB128 varints that record encodings use. */
#ifndef CP_BUF_H
#define CP_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	unsigned char *p;
	size_t len, cap;
};

void buf_grow(struct buf *b, size_t extra);
void buf_put(struct buf *b, const void *data, size_t n);
void buf_putc(struct buf *b, int c);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_put_u32le(struct buf *b, uint32_t v);
void buf_put_u64le(struct buf *b, uint64_t v);
void buf_put_varint(struct buf *b, uint64_t v);
void buf_free(struct buf *b);
static inline void buf_reset(struct buf *b) { b->len = 0; }

/* A bounds-checked cursor over encoded bytes: any read past the end sets
 * err and yields zeros, so decoders check once at the end. */
struct cursor {
	const unsigned char *p, *end;
	int err;
};

uint64_t cur_varint(struct cursor *c);
uint32_t cur_u32le(struct cursor *c);
uint64_t cur_u64le(struct cursor *c);
/* returns a pointer to n bytes inside the input, or NULL (and err) */
const void *cur_bytes(struct cursor *c, size_t n);

static inline uint32_t rd_u32le(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd_u64le(const unsigned char *p)
{
	return (uint64_t)rd_u32le(p) | (uint64_t)rd_u32le(p + 4) << 32;
}
static inline void wr_u32le(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16); p[3] = (unsigned char)(v >> 24);
}
static inline void wr_u64le(unsigned char *p, uint64_t v)
{
	wr_u32le(p, (uint32_t)v);
	wr_u32le(p + 4, (uint32_t)(v >> 32));
}

#endif
