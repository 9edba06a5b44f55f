/* pretok.h: the GPT-2 pre-tokenizer. Splits text into the pieces that the regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * would match, without a regex engine. \p{L} and \p{N} come from utf8proc's general
 * categories, brought up to Unicode 16 (the references' tables) by common/tok/unicode-table.h;
 * \s is Unicode White_Space. A byte that starts no valid UTF-8 sequence counts as
 * one character that is neither a letter, a number nor white space (as U+FFFD would), so every
 * input splits and the pieces always concatenate back to the input. */
#ifndef CP_PRETOK_H
#define CP_PRETOK_H

#include <stddef.h>
#include <stdint.h>

enum pretok_class { PRETOK_OTHER = 0, PRETOK_LETTER = 1, PRETOK_NUMBER = 2, PRETOK_SPACE = 3 };

/* Class of a code point (0xDC80..0xDCFF, a raw byte, is PRETOK_OTHER). Thread-safe. */
int pretok_class(uint32_t cp);
/* The class utf8proc alone gives (without common/tok/unicode-table.h; for the table's generator). */
int pretok_class_base(uint32_t cp);
/* Length in bytes of the piece that starts at s (n > 0); always >= 1. */
size_t pretok_piece(const unsigned char *s, size_t n);
/* Call fn(piece, len, arg) for every piece of s in order. */
void pretok_split(const unsigned char *s, size_t n,
		  void (*fn)(const unsigned char *piece, size_t len, void *arg), void *arg);

#endif
