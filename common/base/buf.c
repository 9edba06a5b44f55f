/* buf.c: growable buffers and varint coding (see buf.h). */
#include "base/buf.h"
#include "base/xalloc.h"
#include "base/die.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_grow(struct buf *b, size_t extra)
{
	if (b->len + extra < b->len)
		die("buffer size overflow");
	if (b->len + extra <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra)
		cap = cap * 2 > cap ? cap * 2 : b->len + extra;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void buf_put(struct buf *b, const void *data, size_t n)
{
	if (!n)
		return;
	buf_grow(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

void buf_putc(struct buf *b, int c)
{
	buf_grow(b, 1);
	b->p[b->len++] = (unsigned char)c;
}

void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("bad format '%s'", fmt);
	buf_grow(b, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void buf_put_u32le(struct buf *b, uint32_t v)
{
	buf_grow(b, 4);
	wr_u32le(b->p + b->len, v);
	b->len += 4;
}

void buf_put_u64le(struct buf *b, uint64_t v)
{
	buf_grow(b, 8);
	wr_u64le(b->p + b->len, v);
	b->len += 8;
}

void buf_put_varint(struct buf *b, uint64_t v)
{
	buf_grow(b, 10);
	while (v >= 0x80) {
		b->p[b->len++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	b->p[b->len++] = (unsigned char)v;
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

uint64_t cur_varint(struct cursor *c)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (c->p >= c->end) {
			c->err = 1;
			return 0;
		}
		unsigned char x = *c->p++;
		v |= (uint64_t)(x & 0x7f) << shift;
		if (!(x & 0x80))
			return v;
	}
	c->err = 1;
	return 0;
}

const void *cur_bytes(struct cursor *c, size_t n)
{
	if (c->err || (size_t)(c->end - c->p) < n) {
		c->err = 1;
		return NULL;
	}
	const void *r = c->p;
	c->p += n;
	return r;
}

uint32_t cur_u32le(struct cursor *c)
{
	const unsigned char *p = cur_bytes(c, 4);
	return p ? rd_u32le(p) : 0;
}

uint64_t cur_u64le(struct cursor *c)
{
	const unsigned char *p = cur_bytes(c, 8);
	return p ? rd_u64le(p) : 0;
}
