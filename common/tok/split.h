/* split.h: where a long text may be cut so that encoding its parts one by one gives exactly
 * the ids of encoding it in one pass; cp-tokenize cuts a few large inputs this way and encodes
 * the parts in parallel. */
#ifndef CP_TOK_SPLIT_H
#define CP_TOK_SPLIT_H

#include <stddef.h>

#include "tok/bpe.h"

/* 1 when the pre-tokenizer's pieces of S (N bytes) are those of S[0, P) followed by those of
 * S[P, N) because S[P] is an ASCII white space byte and the character after it is not white
 * space (a space only joins the piece after it; a run of white space before another character
 * is one piece and its last character, split.c says why). 0 < P < N - 1. */
int tok_split_safe(const unsigned char *s, size_t n, size_t p);

/* The starts of the parts of S (N bytes) cut at safe places about every PART bytes (each cut
 * the first safe place at or after the part's size): *START (allocated, freed by the caller)
 * gets them, the first 0, and the count is returned (1 when nothing is cut). With SPECIAL
 * (the tokenizer whose added special tokens the text's are to be encoded as), no cut lies in or
 * beside where one of them is written. */
size_t tok_split(const unsigned char *s, size_t n, size_t part, const struct bpe *special,
		 size_t **start);

#endif
