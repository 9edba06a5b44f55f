/* json.h: writing JSON text. Strings are bytes; bytes that are not valid UTF-8 are written
 * as \udcXX escapes (Python's surrogateescape), so a reader can recover them exactly
 * (common/input/jsonl.c reads them back). */
#ifndef CP_JSON_H
#define CP_JSON_H

#include <stddef.h>
#include "base/buf.h"

void json_str(struct buf *b, const void *s, size_t n);
void json_cstr(struct buf *b, const char *s);
/* a double with enough digits to round-trip, or null when not finite */
void json_double(struct buf *b, double v);

#endif
