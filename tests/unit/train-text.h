/* train-text.h: a tokenizer trained on one text in memory, for the unit tests of the tokenizer
 * and what builds on it (one thread: the same merges every run). */
#ifndef CP_TEST_TRAIN_TEXT_H
#define CP_TEST_TRAIN_TEXT_H

#include <string.h>

#include "tok/bpe.h"

static inline struct bpe train_text(const char *text, uint32_t vocab)
{
	struct bpe m;
	struct bpe_counter *c = bpe_counter_new();
	struct bpe_train_opts o = { .vocab_size = vocab, .threads = 1 };
	bpe_counter_add(c, (const unsigned char *)text, strlen(text));
	bpe_init(&m);
	bpe_train(&m, c, &o);
	bpe_counter_free(c);
	return m;
}

#endif
