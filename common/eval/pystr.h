/* pystr.h: Python's way with strings, where HumanEval's files must match what Python writes
 * or reads byte for byte: json.dumps of a str and of a float, str.strip(), and bytes decoded
 * with errors="replace" (how Hugging Face's tokenizers turn a completion's bytes into text). */
#ifndef CP_EVAL_PYSTR_H
#define CP_EVAL_PYSTR_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* json.dumps(S) for the str Python gets from bytes.decode("utf-8", "surrogateescape"): ASCII
 * only, \uXXXX in lower case, astral characters as surrogate pairs, bytes that are not UTF-8
 * as \udcXX. Appended to B. */
void pystr_json(struct buf *b, const char *s, size_t n);
/* json.dumps(V) for a float: repr's shortest digits that read back, NaN, Infinity. */
void pystr_json_float(struct buf *b, double v);
/* str.isspace() of the one character C (Unicode White_Space as Python defines it) */
int pystr_isspace(uint32_t c);
/* str.strip() on the UTF-8 text S: [S + *BEGIN, S + *END) is S without white space at either
 * end (bytes that are not UTF-8 are not white space). */
void pystr_strip(const char *s, size_t n, size_t *begin, size_t *end);
/* bytes.decode("utf-8", "replace") into OUT (reset first; NUL-terminated beyond out->len):
 * each maximal invalid prefix of a sequence becomes one U+FFFD, as Python does. */
void pystr_decode_replace(struct buf *out, const unsigned char *s, size_t n);

#endif
