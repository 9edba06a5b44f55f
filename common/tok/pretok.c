/* pretok.c: the GPT-2 pre-tokenizer as a hand-written matcher (see pretok.h). The code point
 * classes live in a two-stage table built once from utf8proc, so the hot loop never calls into
 * the library and ASCII costs one table load. */
#include "tok/pretok.h"
#include "base/utf8.h"
#include "base/xalloc.h"

#include <pthread.h>
#include <string.h>
#include <utf8proc.h>

#include "tok/unicode-table.h"

#define PT_BLOCK 256
#define PT_NBLOCKS (0x110000 / PT_BLOCK)

static uint16_t pt_stage1[PT_NBLOCKS];
static unsigned char *pt_stage2;	/* unique blocks of PT_BLOCK classes */
static unsigned char pt_ascii[128];
static pthread_once_t pt_once = PTHREAD_ONCE_INIT;

/* Unicode White_Space (PropList.txt); utf8proc has no accessor for it. */
static int pt_is_white(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0 || c == 0x1680 ||
	       (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
	       c == 0x205f || c == 0x3000;
}

int pretok_class_base(uint32_t c)
{
	if (pt_is_white(c))
		return PRETOK_SPACE;
	switch (utf8proc_category((utf8proc_int32_t)c)) {
	case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
	case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
		return PRETOK_LETTER;
	case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
		return PRETOK_NUMBER;
	default:
		return PRETOK_OTHER;
	}
}

static unsigned char pt_compute(uint32_t c)
{
	for (size_t i = 0; i < sizeof pretok_overlay / sizeof *pretok_overlay; i++)
		if (c >= pretok_overlay[i].lo && c <= pretok_overlay[i].hi)
			return pretok_overlay[i].cls;
	return (unsigned char)pretok_class_base(c);
}

static void pt_build(void)
{
	unsigned char blk[PT_BLOCK];
	size_t nuniq = 0, cap = 64;
	pt_stage2 = xmalloc(cap * PT_BLOCK);
	for (uint32_t b = 0; b < PT_NBLOCKS; b++) {
		for (uint32_t i = 0; i < PT_BLOCK; i++)
			blk[i] = pt_compute(b * PT_BLOCK + i);
		size_t u;
		for (u = 0; u < nuniq; u++)
			if (!memcmp(pt_stage2 + u * PT_BLOCK, blk, PT_BLOCK))
				break;
		if (u == nuniq) {
			if (nuniq == cap)
				pt_stage2 = xreallocarray(pt_stage2, cap *= 2, PT_BLOCK);
			memcpy(pt_stage2 + nuniq++ * PT_BLOCK, blk, PT_BLOCK);
		}
		pt_stage1[b] = (uint16_t)u;
	}
	for (int c = 0; c < 128; c++)
		pt_ascii[c] = pt_stage2[pt_stage1[0] * PT_BLOCK + c];
}

static inline void pt_init(void)
{
	pthread_once(&pt_once, pt_build);
}

static inline int pt_lookup(uint32_t c)
{
	if (c >= 0x110000)
		return PRETOK_OTHER;
	return pt_stage2[(size_t)pt_stage1[c >> 8] * PT_BLOCK + (c & 0xff)];
}

int pretok_class(uint32_t cp)
{
	pt_init();
	if (cp >= 0xdc80 && cp <= 0xdcff)
		return PRETOK_OTHER;
	return pt_lookup(cp);
}

/* class and byte length of the character at s; invalid bytes are one OTHER character */
static inline int pt_char(const unsigned char *s, size_t n, int *len)
{
	if (s[0] < 0x80) {
		*len = 1;
		return pt_ascii[s[0]];
	}
	int l = utf8_valid_len(s, n);
	if (!l) {
		*len = 1;
		return PRETOK_OTHER;
	}
	*len = l;
	int dummy;
	return pt_lookup(utf8_decode(s, n, &dummy));
}

/* end of the run of characters of class cls that starts at i */
static inline size_t pt_run(const unsigned char *s, size_t n, size_t i, int cls)
{
	while (i < n) {
		if (s[i] < 0x80) {
			if (pt_ascii[s[i]] != cls)
				break;
			i++;
			continue;
		}
		int len;
		if (pt_char(s + i, n - i, &len) != cls)
			break;
		i += (size_t)len;
	}
	return i;
}

size_t pretok_piece(const unsigned char *s, size_t n)
{
	pt_init();
	if (s[0] == '\'' && n >= 2) {
		unsigned char a = s[1];
		if (a == 's' || a == 't' || a == 'm' || a == 'd')
			return 2;
		if (n >= 3 && ((a == 'r' && s[2] == 'e') || (a == 'v' && s[2] == 'e') ||
			       (a == 'l' && s[2] == 'l')))
			return 3;
	}
	int len0, cls0 = pt_char(s, n, &len0);
	if (s[0] == ' ' && n > 1) {
		int len1, cls1 = pt_char(s + 1, n - 1, &len1);
		if (cls1 != PRETOK_SPACE)
			return pt_run(s, n, 1 + (size_t)len1, cls1);
	}
	if (cls0 != PRETOK_SPACE)
		return pt_run(s, n, (size_t)len0, cls0);
	/* \s+(?!\S) gives back the last white space character before a non-space, unless
	 * that would leave the match empty; then \s+ takes the single character. */
	size_t i = (size_t)len0, last = 0;
	while (i < n) {
		int len;
		if (pt_char(s + i, n - i, &len) != PRETOK_SPACE)
			break;
		last = i;
		i += (size_t)len;
	}
	if (i == n || last == 0)
		return i;
	return last;
}

void pretok_split(const unsigned char *s, size_t n,
		  void (*fn)(const unsigned char *piece, size_t len, void *arg), void *arg)
{
	size_t i = 0;
	while (i < n) {
		size_t l = pretok_piece(s + i, n - i);
		fn(s + i, l, arg);
		i += l;
	}
}
