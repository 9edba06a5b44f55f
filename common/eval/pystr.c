/* pystr.c: Python's string conventions for HumanEval's files (see pystr.h). */
#include "eval/pystr.h"
#include "base/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static void put_u16(struct buf *b, unsigned v)
{
	static const char hex[] = "0123456789abcdef";
	char s[6] = { '\\', 'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15],
		      hex[v & 15] };
	buf_put(b, s, 6);
}

/* one byte below 0x80 as json.dumps escapes it */
static void put_ascii(struct buf *b, unsigned c)
{
	const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
		: c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
		: c == '\f' ? "\\f" : NULL;
	if (esc)
		buf_puts(b, esc);
	else if (c >= 0x20 && c < 0x7f)
		buf_putc(b, (int)c);
	else
		put_u16(b, c);
}

void pystr_json(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	buf_putc(b, '"');
	while (p < end) {
		unsigned c = *p;
		if (c < 0x80) {
			put_ascii(b, c);
			p++;
			continue;
		}
		int len = utf8_valid_len(p, (size_t)(end - p));
		if (len <= 0) {
			put_u16(b, 0xdc00 | c); /* surrogateescape */
			p++;
			continue;
		}
		uint32_t cp = len == 2 ? (c & 0x1f) << 6 | (p[1] & 0x3f)
			    : len == 3 ? (c & 0x0f) << 12 | (p[1] & 0x3f) << 6 | (p[2] & 0x3f)
				       : (c & 0x07) << 18 | (p[1] & 0x3f) << 12 | (p[2] & 0x3f) << 6 |
						 (p[3] & 0x3f);
		if (cp >= 0x10000) {
			cp -= 0x10000;
			put_u16(b, 0xd800 | (cp >> 10));
			put_u16(b, 0xdc00 | (cp & 0x3ff));
		} else {
			put_u16(b, cp);
		}
		p += len;
	}
	buf_putc(b, '"');
}

/* DIGITS (ND of them, no trailing zeros) times 10^(DECPT - ND), as repr writes it in the
 * range where it uses fixed notation */
static void put_fixed(struct buf *b, const char *digits, size_t nd, int decpt)
{
	if (decpt <= 0) {
		buf_puts(b, "0.");
		for (int i = 0; i < -decpt; i++)
			buf_putc(b, '0');
		buf_puts(b, digits);
	} else if ((size_t)decpt >= nd) {
		buf_puts(b, digits);
		for (size_t i = nd; i < (size_t)decpt; i++)
			buf_putc(b, '0');
		buf_puts(b, ".0");
	} else {
		buf_put(b, digits, (size_t)decpt);
		buf_putc(b, '.');
		buf_puts(b, digits + decpt);
	}
}

/* repr(float): the shortest digits that read back, fixed notation for exponents -4..15 */
void pystr_json_float(struct buf *b, double v)
{
	if (isnan(v)) {
		buf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_puts(b, v < 0 ? "-Infinity" : "Infinity");
		return;
	}
	char t[48];
	for (int prec = 0; prec < 17; prec++) {
		snprintf(t, sizeof t, "%.*e", prec, v);
		if (strtod(t, NULL) == v)
			break;
	}
	char *e = strchr(t, 'e');
	int exp10 = atoi(e + 1);
	*e = 0;
	char digits[32];
	size_t nd = 0;
	int neg = t[0] == '-';
	for (char *q = t + neg; *q; q++)
		if (*q >= '0' && *q <= '9')
			digits[nd++] = *q;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = 0;
	int decpt = exp10 + 1;
	if (neg)
		buf_putc(b, '-');
	if (decpt > -4 && decpt <= 16) {
		put_fixed(b, digits, nd, decpt);
	} else {
		buf_putc(b, digits[0]);
		if (nd > 1) {
			buf_putc(b, '.');
			buf_puts(b, digits + 1);
		}
		buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
	}
}

int pystr_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

void pystr_strip(const char *s, size_t n, size_t *begin, size_t *end)
{
	const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
	size_t i = 0, j = n;
	utf8proc_int32_t c;
	while (i < j) {
		utf8proc_ssize_t k = utf8proc_iterate(u + i, (utf8proc_ssize_t)(j - i), &c);
		if (k <= 0 || !pystr_isspace((uint32_t)c))
			break;
		i += (size_t)k;
	}
	while (j > i) {
		size_t st = j - 1;
		while (st > i && j - st < 4 && (u[st] & 0xc0) == 0x80)
			st--;
		utf8proc_ssize_t k = utf8proc_iterate(u + st, (utf8proc_ssize_t)(j - st), &c);
		if (k != (utf8proc_ssize_t)(j - st) || !pystr_isspace((uint32_t)c))
			break;
		j = st;
	}
	*begin = i;
	*end = j;
}

/* Length of the valid UTF-8 sequence at S (N bytes left), or 0 with *BAD the length of its
 * longest valid start (at least 1), which Python's "replace" handler makes one U+FFFD. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		len = 0;
	size_t i = 1;
	for (; len && i < len && i < n; i++) {
		if (s[i] < lo || s[i] > hi)
			break;
		lo = 0x80, hi = 0xbf;
	}
	if (len && i == len)
		return len;
	*bad = i;
	return 0;
}

void pystr_decode_replace(struct buf *out, const unsigned char *s, size_t n)
{
	buf_reset(out);
	for (size_t i = 0; i < n;) {
		size_t bad = 0, k = utf8_seq(s + i, n - i, &bad);
		if (k) {
			buf_put(out, s + i, k);
			i += k;
		} else {
			buf_puts(out, "\xef\xbf\xbd");
			i += bad;
		}
	}
	buf_putc(out, 0);
	out->len--;
}
