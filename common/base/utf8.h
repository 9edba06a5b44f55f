/* utf8.h: strict UTF-8 decoding. Invalid bytes are reported one at a time, as Python's
 * surrogateescape does, so every tool counts them the same way. */
#ifndef CP_UTF8_H
#define CP_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1-4) of the valid UTF-8 sequence at p, or 0 if the byte at p starts no valid
 * sequence (overlong forms, surrogates and values past U+10FFFF are invalid). */
int utf8_valid_len(const unsigned char *p, size_t n);
/* Decode one code point; on invalid input returns 0xDC00+byte and consumes one byte. */
uint32_t utf8_decode(const unsigned char *p, size_t n, int *len);
/* Encode a code point (<= 0x10FFFF); returns the byte count. */
size_t utf8_encode(unsigned char *out, uint32_t cp);

#endif
