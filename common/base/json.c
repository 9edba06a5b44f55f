/* json.c: JSON string escaping that never loses a byte (see json.h). */
#include "base/json.h"
#include "base/utf8.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void json_str(struct buf *b, const void *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = s, *end = p + n;
	buf_grow(b, n + 2);
	buf_putc(b, '"');
	while (p < end) {
		unsigned char c = *p;
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			const unsigned char *q = p;
			while (q < end && *q >= 0x20 && *q < 0x80 && *q != '"' && *q != '\\')
				q++;
			buf_put(b, p, (size_t)(q - p));
			p = q;
			continue;
		}
		if (c >= 0x80) {
			int len = utf8_valid_len(p, (size_t)(end - p));
			if (len > 0) {
				buf_put(b, p, (size_t)len);
				p += len;
			} else {
				buf_puts(b, "\\udc");
				buf_putc(b, hex[c >> 4]);
				buf_putc(b, hex[c & 15]);
				p++;
			}
			continue;
		}
		switch (c) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\t': buf_puts(b, "\\t"); break;
		case '\r': buf_puts(b, "\\r"); break;
		default:
			buf_puts(b, "\\u00");
			buf_putc(b, hex[c >> 4]);
			buf_putc(b, hex[c & 15]);
		}
		p++;
	}
	buf_putc(b, '"');
}

void json_cstr(struct buf *b, const char *s)
{
	json_str(b, s, strlen(s));
}

void json_double(struct buf *b, double v)
{
	if (!isfinite(v)) {
		buf_puts(b, "null");
		return;
	}
	char tmp[40];
	snprintf(tmp, sizeof tmp, "%.17g", v);
	/* prefer the shortest form that reads back to the same double */
	for (int prec = 1; prec < 17; prec++) {
		char t2[40];
		snprintf(t2, sizeof t2, "%.*g", prec, v);
		double back;
		if (sscanf(t2, "%lf", &back) == 1 && back == v) {
			memcpy(tmp, t2, sizeof t2);
			break;
		}
	}
	buf_puts(b, tmp);
}
