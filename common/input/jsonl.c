/* jsonl.c: JSON-lines reading: a line reader over plain, gzip and zstd input, and a small
 * validating parser that splits one object into its text field and metadata (see jsonl.h). */
#include "input/jsonl.h"
#include "base/die.h"
#include "base/utf8.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

enum { SRC_PLAIN, SRC_GZIP, SRC_ZSTD };
#define IN_CHUNK ((size_t)1 << 17)
#define DATA_MIN ((size_t)1 << 20)

struct jsonl_reader {
	char *name;
	int fd;				/* -1 when reading memory */
	const unsigned char *mem;
	size_t mem_len, mem_pos;
	int mode;
	unsigned char *in;		/* raw (compressed) input */
	size_t in_pos, in_len;
	int in_eof;
	uint64_t raw_off;		/* raw bytes read so far, for messages */
	uint64_t raw_left;		/* a range's bytes not yet read (UINT64_MAX: to the end) */
	z_stream zs;
	int z_ready, z_ended;
	ZSTD_DCtx *zd;
	size_t zret;			/* 0 when the last zstd frame is complete */
	unsigned char *data;		/* decompressed bytes: the line being assembled */
	size_t start, end, scan, cap;
	int eof, skipping;
	size_t skip_len, max_line;
	uint64_t lineno;
};

static struct jsonl_reader *reader_new(const char *name, size_t max_line)
{
	struct jsonl_reader *r = xcalloc(1, sizeof *r);
	r->name = xstrdup(name);
	r->fd = -1;
	r->raw_left = UINT64_MAX;
	r->in = xmalloc(IN_CHUNK);
	r->cap = DATA_MIN;
	r->data = xmalloc(r->cap);
	r->max_line = max_line ? max_line : JSONL_MAX_LINE_DEFAULT;
	return r;
}

/* Read raw bytes; -1 after an error message. */
static long raw_read(struct jsonl_reader *r, unsigned char *dst, size_t n)
{
	if (r->fd < 0) {
		size_t k = r->mem_len - r->mem_pos;
		if (k > n)
			k = n;
		memcpy(dst, r->mem + r->mem_pos, k);
		r->mem_pos += k;
		return (long)k;
	}
	if (n > r->raw_left)
		n = (size_t)r->raw_left;
	for (;;) {
		ssize_t k = n ? read(r->fd, dst, n) : 0;
		if (k >= 0) {
			if (r->raw_left != UINT64_MAX)
				r->raw_left -= (uint64_t)k;
			return (long)k;
		}
		if (errno != EINTR) {
			error_errno("cannot read '%s'", r->name);
			return -1;
		}
	}
}

/* Make sure raw input is buffered unless at its end; -1 on error. */
static int fill_in(struct jsonl_reader *r)
{
	if (r->in_pos < r->in_len || r->in_eof)
		return 0;
	long k = raw_read(r, r->in, IN_CHUNK);
	if (k < 0)
		return -1;
	r->in_pos = 0;
	r->in_len = (size_t)k;
	r->raw_off += (uint64_t)k;
	if (!k)
		r->in_eof = 1;
	return 0;
}

/* What the first N bytes at P say the data is */
static int magic_mode(const unsigned char *p, size_t n)
{
	if (n >= 2 && p[0] == 0x1f && p[1] == 0x8b)
		return SRC_GZIP;
	if (n >= 4 && p[0] == 0x28 && p[1] == 0xb5 && p[2] == 0x2f && p[3] == 0xfd)
		return SRC_ZSTD;
	return SRC_PLAIN;
}

static int detect(struct jsonl_reader *r)
{
	if (fill_in(r))
		return -1;
	int mode = magic_mode(r->in, r->in_len);
	if (mode == SRC_GZIP) {
		r->mode = SRC_GZIP;
		if (inflateInit2(&r->zs, 15 + 16) != Z_OK) {
			error("cannot start gzip decompression for '%s'", r->name);
			return -1;
		}
		r->z_ready = 1;
	} else if (mode == SRC_ZSTD) {
		r->mode = SRC_ZSTD;
		r->zd = ZSTD_createDCtx();
		if (!r->zd) {
			error("cannot start zstd decompression for '%s'", r->name);
			return -1;
		}
	}
	return 0;
}

static struct jsonl_reader *open_file(const char *path, size_t max_line)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		error_errno("cannot open '%s'", path);
		return NULL;
	}
	struct jsonl_reader *r = reader_new(path, max_line);
	r->fd = fd;
	return r;
}

struct jsonl_reader *jsonl_open(const char *path, size_t max_line)
{
	struct jsonl_reader *r = open_file(path, max_line);
	if (r && detect(r)) {
		jsonl_close(r);
		return NULL;
	}
	return r;
}

struct jsonl_reader *jsonl_open_range(const char *path, size_t max_line, uint64_t from,
				      uint64_t to, uint64_t line0)
{
	struct jsonl_reader *r = open_file(path, max_line);
	if (!r)
		return NULL;
	r->raw_left = to - from;
	r->raw_off = from;
	r->lineno = line0;
	if (lseek(r->fd, (off_t)from, SEEK_SET) < 0) {
		error_errno("cannot seek in '%s'", path);
		jsonl_close(r);
		return NULL;
	}
	return r;	/* plain: no magic to look for in the middle */
}

int jsonl_compressed(int fd)
{
	unsigned char p[4];
	ssize_t k;
	while ((k = pread(fd, p, sizeof p, 0)) < 0 && errno == EINTR)
		;
	return k < 0 ? -1 : magic_mode(p, (size_t)k) != SRC_PLAIN;
}

/* Where the first line at or after byte FROM of FD starts (SIZE when none does). */
static int span_start(int fd, const char *path, uint64_t size, uint64_t from, uint64_t *at,
		      unsigned char *blk)
{
	if (!from || from >= size) {
		*at = from < size ? 0 : size;
		return 0;
	}
	for (uint64_t off = from - 1; off < size;) {	/* a line starts after a '\n' */
		ssize_t k = pread(fd, blk, IN_CHUNK, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			error_errno("cannot read '%s'", path);
			return -1;
		}
		const unsigned char *p = memchr(blk, '\n', (size_t)k);
		if (p) {
			*at = off + (uint64_t)(p - blk) + 1;
			return 0;
		}
		off += (uint64_t)k;
	}
	*at = size;
	return 0;
}

int jsonl_span(int fd, const char *path, uint64_t size, uint64_t from, uint64_t to,
	       uint64_t *at, uint64_t *nl)
{
	unsigned char *blk = xmalloc(IN_CHUNK);
	uint64_t end, n = 0;
	int r = -1;
	if (span_start(fd, path, size, from, at, blk) || span_start(fd, path, size, to, &end, blk))
		goto out;
	for (uint64_t off = *at; off < end;) {
		size_t want = end - off < IN_CHUNK ? (size_t)(end - off) : IN_CHUNK;
		ssize_t k = pread(fd, blk, want, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			error_errno("cannot read '%s'", path);
			goto out;
		}
		for (const unsigned char *p = blk, *e = blk + k; (p = memchr(p, '\n', (size_t)(e - p)));
		     p++)
			n++;
		off += (uint64_t)k;
	}
	*nl = n;
	r = 0;
out:
	free(blk);
	return r;
}

struct jsonl_reader *jsonl_open_mem(const void *data, size_t len, const char *name,
				    size_t max_line)
{
	struct jsonl_reader *r = reader_new(name, max_line);
	r->mem = data;
	r->mem_len = len;
	if (detect(r)) {
		jsonl_close(r);
		return NULL;
	}
	return r;
}

void jsonl_close(struct jsonl_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	if (r->z_ready)
		inflateEnd(&r->zs);
	ZSTD_freeDCtx(r->zd);
	free(r->in);
	free(r->data);
	free(r->name);
	free(r);
}

uint64_t jsonl_lineno(const struct jsonl_reader *r)
{
	return r->lineno;
}

static long produce_gzip(struct jsonl_reader *r, unsigned char *dst, size_t room)
{
	for (;;) {
		if (fill_in(r))
			return -1;
		if (r->in_pos == r->in_len) {
			if (r->z_ended)
				return 0;
			error("'%s': truncated gzip data at byte %llu", r->name,
			      (unsigned long long)r->raw_off);
			return -1;
		}
		if (r->z_ended) {	/* another gzip member follows */
			if (r->in[r->in_pos] != 0x1f) {
				error("'%s': garbage after gzip data at byte %llu", r->name,
				      (unsigned long long)(r->raw_off - (r->in_len - r->in_pos)));
				return -1;
			}
			inflateReset(&r->zs);
			r->z_ended = 0;
		}
		r->zs.next_in = r->in + r->in_pos;
		r->zs.avail_in = (uInt)(r->in_len - r->in_pos);
		r->zs.next_out = dst;
		r->zs.avail_out = (uInt)(room > UINT32_MAX ? UINT32_MAX : room);
		int ret = inflate(&r->zs, Z_NO_FLUSH);
		r->in_pos = r->in_len - r->zs.avail_in;
		size_t got = (size_t)(r->zs.next_out - dst);
		if (ret == Z_STREAM_END)
			r->z_ended = 1;
		else if (ret != Z_OK && ret != Z_BUF_ERROR) {
			error("'%s': corrupt gzip data near byte %llu: %s", r->name,
			      (unsigned long long)(r->raw_off - (r->in_len - r->in_pos)),
			      r->zs.msg ? r->zs.msg : "inflate failed");
			return -1;
		}
		if (got)
			return (long)got;
	}
}

static long produce_zstd(struct jsonl_reader *r, unsigned char *dst, size_t room)
{
	for (;;) {
		if (fill_in(r))
			return -1;
		if (r->in_pos == r->in_len && r->in_eof) {
			/* flush what the decoder still holds, then judge the end */
			ZSTD_inBuffer in = { r->in, 0, 0 };
			ZSTD_outBuffer out = { dst, room, 0 };
			size_t ret = ZSTD_decompressStream(r->zd, &out, &in);
			if (!ZSTD_isError(ret) && out.pos)
				return (long)out.pos;
			if (r->zret == 0)
				return 0;
			error("'%s': truncated zstd data at byte %llu", r->name,
			      (unsigned long long)r->raw_off);
			return -1;
		}
		ZSTD_inBuffer in = { r->in, r->in_len, r->in_pos };
		ZSTD_outBuffer out = { dst, room, 0 };
		size_t ret = ZSTD_decompressStream(r->zd, &out, &in);
		r->in_pos = in.pos;
		if (ZSTD_isError(ret)) {
			error("'%s': corrupt zstd data near byte %llu: %s", r->name,
			      (unsigned long long)(r->raw_off - (r->in_len - r->in_pos)),
			      ZSTD_getErrorName(ret));
			return -1;
		}
		r->zret = ret;
		if (out.pos)
			return (long)out.pos;
	}
}

/* Decompressed bytes into DST: count, 0 at the end, -1 on error. */
static long produce(struct jsonl_reader *r, unsigned char *dst, size_t room)
{
	switch (r->mode) {
	case SRC_GZIP:
		return produce_gzip(r, dst, room);
	case SRC_ZSTD:
		return produce_zstd(r, dst, room);
	default:
		if (r->in_pos < r->in_len) {	/* what detect() peeked at */
			size_t k = r->in_len - r->in_pos;
			if (k > room)
				k = room;
			memcpy(dst, r->in + r->in_pos, k);
			r->in_pos += k;
			return (long)k;
		}
		if (r->in_eof)
			return 0;
		long k = raw_read(r, dst, room);
		if (k > 0)
			r->raw_off += (uint64_t)k;
		return k;
	}
}

/* Hand out one complete line of N bytes at S: 1, or 2 when it was too long (then only its
 * length, counting the part already dropped, is known). */
static int hand_out(struct jsonl_reader *r, const char *s, size_t n, const char **line,
		    size_t *len)
{
	r->lineno++;
	if (r->skipping || n > r->max_line) {
		*len = r->skip_len + n;
		*line = NULL;
		r->skipping = 0;
		r->skip_len = 0;
		return 2;
	}
	*line = s;
	*len = n;
	return 1;
}

int jsonl_next(struct jsonl_reader *r, const char **line, size_t *len)
{
	for (;;) {
		if (r->scan < r->end) {
			unsigned char *nl = memchr(r->data + r->scan, '\n', r->end - r->scan);
			if (nl) {
				size_t n = (size_t)(nl - (r->data + r->start));
				const char *s = (const char *)r->data + r->start;
				r->start = r->scan = (size_t)(nl - r->data) + 1;
				return hand_out(r, s, n, line, len);
			}
			r->scan = r->end;
		}
		if (r->eof) {
			if (r->start == r->end && !r->skipping)
				return 0;
			size_t n = r->end - r->start;
			const char *s = (const char *)r->data + r->start;
			r->start = r->scan = r->end;
			return hand_out(r, s, n, line, len);
		}
		if (r->end - r->start > r->max_line) {	/* too long: stop keeping it */
			r->skipping = 1;
			r->skip_len += r->end - r->start;
			r->start = r->end = r->scan = 0;
		}
		if (r->start && (r->end == r->cap || r->start >= r->cap / 2)) {
			memmove(r->data, r->data + r->start, r->end - r->start);
			r->end -= r->start;
			r->scan -= r->start;
			r->start = 0;
		}
		if (r->cap - r->end < IN_CHUNK) {
			r->cap *= 2;
			r->data = xrealloc(r->data, r->cap);
		}
		long k = produce(r, r->data + r->end, r->cap - r->end);
		if (k < 0)
			return -1;
		if (!k)
			r->eof = 1;
		r->end += (size_t)k;
	}
}

/* ------------------------------------------------------------------ parser */

struct jp {
	const unsigned char *s, *p, *end;
	struct jsonl_error *err;
};

enum { JP_MAX_DEPTH = 256 };

static int jp_fail(struct jp *j, const char *why)
{
	if (!j->err->why) {
		j->err->why = why;
		j->err->offset = (size_t)(j->p - j->s);
	}
	return -1;
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int hexval(unsigned c)
{
	if (c - '0' < 10)
		return (int)(c - '0');
	c |= 0x20;
	if (c - 'a' < 6)
		return (int)(c - 'a' + 10);
	return -1;
}

static long hex4(const unsigned char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v << 4 | h;
	}
	return v;
}

/* Bytes a string may hold without a closer look. */
static const unsigned char str_plain[256] = {
	[0x20 ... 0x21] = 1, [0x23 ... 0x5b] = 1, [0x5d ... 0x7f] = 1,	/* not '"' nor '\\' */
};

/* Skip a string starting at '"'; *esc tells whether it held escapes. Raw bytes that are not
 * UTF-8 are refused unless LOOSE (the text field tolerates them and counts them later). */
static int jp_string(struct jp *j, int loose, int *esc)
{
	j->p++;
	*esc = 0;
	for (;;) {
		while (j->p < j->end && str_plain[*j->p])
			j->p++;
		if (j->p >= j->end)
			return jp_fail(j, "unterminated string");
		unsigned c = *j->p;
		if (c == '"') {
			j->p++;
			return 0;
		}
		if (c == '\\') {
			*esc = 1;
			if (j->end - j->p < 2)
				return jp_fail(j, "unterminated string");
			switch (j->p[1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				j->p += 2;
				break;
			case 'u':
				if (j->end - j->p < 6 || hex4(j->p + 2) < 0)
					return jp_fail(j, "bad \\u escape");
				j->p += 6;
				break;
			default:
				return jp_fail(j, "bad escape in string");
			}
			continue;
		}
		if (c < 0x20)
			return jp_fail(j, "control character in string");
		int l = utf8_valid_len(j->p, (size_t)(j->end - j->p));
		if (!l) {
			if (!loose)
				return jp_fail(j, "invalid UTF-8 in string");
			l = 1;
		}
		j->p += l;
	}
}

static int jp_digits(struct jp *j)
{
	const unsigned char *q = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > q ? 0 : jp_fail(j, "bad number");
}

static int jp_number(struct jp *j)
{
	if (*j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (jp_digits(j))
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (jp_digits(j))
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (jp_digits(j))
			return -1;
	}
	return 0;
}

static int jp_literal(struct jp *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n))
		return jp_fail(j, "bad value");
	j->p += n;
	return 0;
}

static int jp_value(struct jp *j, int depth);

static int jp_container(struct jp *j, int depth, int obj)
{
	unsigned char close = obj ? '}' : ']';
	if (depth >= JP_MAX_DEPTH)
		return jp_fail(j, "nested too deeply");
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return 0;
	}
	for (;;) {
		if (obj) {
			int esc;
			if (j->p >= j->end || *j->p != '"')
				return jp_fail(j, "expected a member name");
			if (jp_string(j, 0, &esc))
				return -1;
			jp_ws(j);
			if (j->p >= j->end || *j->p != ':')
				return jp_fail(j, "expected ':'");
			j->p++;
			jp_ws(j);
		}
		if (jp_value(j, depth + 1))
			return -1;
		jp_ws(j);
		if (j->p >= j->end)
			return jp_fail(j, "unexpected end of line");
		if (*j->p == close) {
			j->p++;
			return 0;
		}
		if (*j->p != ',')
			return jp_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
		j->p++;
		jp_ws(j);
	}
}

static int jp_value(struct jp *j, int depth)
{
	int esc;
	if (j->p >= j->end)
		return jp_fail(j, "expected a value");
	switch (*j->p) {
	case '"': return jp_string(j, 0, &esc);
	case '{': return jp_container(j, depth, 1);
	case '[': return jp_container(j, depth, 0);
	case 't': return jp_literal(j, "true");
	case 'f': return jp_literal(j, "false");
	case 'n': return jp_literal(j, "null");
	default:
		if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))
			return jp_number(j);
		return jp_fail(j, "expected a value");
	}
}

/* Unescape a validated string body. */
static void jp_unescape(struct buf *out, const unsigned char *s, size_t n)
{
	const unsigned char *end = s + n;
	buf_grow(out, n);
	while (s < end) {
		const unsigned char *q = memchr(s, '\\', (size_t)(end - s));
		if (!q)
			q = end;
		buf_put(out, s, (size_t)(q - s));
		if (q == end)
			break;
		s = q + 2;
		switch (q[1]) {
		case 'b': buf_putc(out, '\b'); break;
		case 'f': buf_putc(out, '\f'); break;
		case 'n': buf_putc(out, '\n'); break;
		case 'r': buf_putc(out, '\r'); break;
		case 't': buf_putc(out, '\t'); break;
		case 'u': {
			uint32_t u = (uint32_t)hex4(s);
			s += 4;
			if (u >= 0xdc80 && u <= 0xdcff) {	/* a raw byte, as cp tools write it */
				buf_putc(out, (int)(u - 0xdc00));
				break;
			}
			if (u >= 0xd800 && u <= 0xdbff && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
				long lo = hex4(s + 2);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					u = 0x10000 + ((u - 0xd800) << 10) + ((uint32_t)lo - 0xdc00);
					s += 6;
				}
			}
			if (u >= 0xd800 && u <= 0xdfff)
				u = 0xfffd;
			unsigned char tmp[4];
			buf_put(out, tmp, utf8_encode(tmp, u));
			break;
		}
		default:	/* " \ / */
			buf_putc(out, q[1]);
		}
	}
}

static int key_is(const unsigned char *k, size_t n, int esc, const char *field, size_t flen)
{
	if (!esc)
		return n == flen && !memcmp(k, field, flen);
	struct buf b = { 0 };
	jp_unescape(&b, k, n);
	int same = b.len == flen && !memcmp(b.p, field, flen);
	buf_free(&b);
	return same;
}

int jsonl_parse(const char *line, size_t len, const char *field, struct buf *content,
		struct buf *meta, struct jsonl_error *err)
{
	struct jp j = { (const unsigned char *)line, (const unsigned char *)line,
			(const unsigned char *)line + len, err };
	size_t flen = strlen(field);
	const unsigned char *text = NULL;
	size_t text_len = 0;
	err->why = NULL;
	err->offset = 0;
	buf_reset(content);
	buf_reset(meta);
	jp_ws(&j);
	if (j.p == j.end)
		return 1;
	if (*j.p != '{')
		return jp_fail(&j, "not a JSON object");
	j.p++;
	jp_ws(&j);
	if (j.p < j.end && *j.p == '}')
		j.p++;
	else
		for (;;) {
			int kesc, vesc;
			if (j.p >= j.end || *j.p != '"')
				return jp_fail(&j, "expected a member name");
			const unsigned char *k = j.p;
			if (jp_string(&j, 0, &kesc))
				return -1;
			const unsigned char *kend = j.p;
			jp_ws(&j);
			if (j.p >= j.end || *j.p != ':')
				return jp_fail(&j, "expected ':'");
			j.p++;
			jp_ws(&j);
			const unsigned char *v = j.p;
			if (key_is(k + 1, (size_t)(kend - k) - 2, kesc, field, flen)) {
				if (j.p >= j.end || *j.p != '"')
					return jp_fail(&j, "the text field is not a string");
				if (jp_string(&j, 1, &vesc))
					return -1;
				text = v + 1;
				text_len = (size_t)(j.p - v) - 2;
			} else {
				if (jp_value(&j, 1))
					return -1;
				buf_putc(meta, meta->len ? ',' : '{');
				buf_put(meta, k, (size_t)(kend - k));
				buf_putc(meta, ':');
				buf_put(meta, v, (size_t)(j.p - v));
			}
			jp_ws(&j);
			if (j.p >= j.end)
				return jp_fail(&j, "unexpected end of line");
			if (*j.p == '}') {
				j.p++;
				break;
			}
			if (*j.p != ',')
				return jp_fail(&j, "expected ',' or '}'");
			j.p++;
			jp_ws(&j);
		}
	jp_ws(&j);
	if (j.p != j.end)
		return jp_fail(&j, "text after the object");
	if (!text) {
		buf_reset(meta);
		return jp_fail(&j, "no string member with the text field's name");
	}
	if (meta->len)
		buf_putc(meta, '}');
	jp_unescape(content, text, text_len);
	return 0;
}
