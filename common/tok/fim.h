/* fim.h: fill-in-the-middle (Bavarian et al., "Efficient Training of Language Models to Fill
 * in the Middle", 2022) with StarCoder's four special tokens: the tokens themselves (cp-bpe
 * --fim adds them), the document transformation cp-pack applies before packing, and the
 * prompt cp-complete builds from a prefix and a suffix.
 *
 *   PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
 *   SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle
 * (SPM as the paper's and StarCoder's training code join it: prefix and middle are one text,
 * so the model continues the prefix as plain text does.) */
#ifndef CP_FIM_H
#define CP_FIM_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "tok/bpe.h"

/* in the order cp-bpe --fim gives them ids, StarCoder's */
enum { FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD, FIM_N };
extern const char *const fim_names[FIM_N];

struct fim_ids {
	uint32_t id[FIM_N];
};

/* Add the four tokens as special tokens at the next ids (after the merges, as cp-bpe keeps
 * every id it learns where a tokenizer without them has it). -1 when one is already there. */
int fim_add_tokens(struct bpe *m);
/* The FIM tokens of M (each an added special token): 0, or -1 with *MISSING naming the first
 * one it lacks. */
int fim_find(const struct bpe *m, struct fim_ids *f, const char **missing);
/* 1 when T is one of the FIM tokens */
int fim_is_token(const struct fim_ids *f, uint32_t t);

/* ---- the document transformation (cp-pack --fim-rate) ---- */
struct fim_opts {
	double rate;		/* documents transformed */
	double spm_rate;	/* of those, the ones in SPM order */
	uint64_t seed;
};
enum fim_kind { FIM_NONE, FIM_PSM, FIM_SPM };
/* The document IDS[N] (its text, without the <|endoftext|> that ends it) transformed or not
 * into OUT (appended). The draws are a pure function of O->seed and KEY (the document's id),
 * so any thread may transform any document. A document is split at two character positions
 * drawn uniformly among its UTF-8 character boundaries (an invalid byte is one character),
 * each part encoded again on its own as plain text with E (M's encoder, one per thread), since
 * that is how a prompt's prefix and suffix are encoded. A document holding a special token
 * is kept as it is: its text would not encode back to it. TEXT is scratch. */
enum fim_kind fim_apply(const struct bpe *m, const struct fim_ids *f, struct bpe_encoder *e,
			const struct fim_opts *o, uint64_t key, const uint32_t *ids, size_t n,
			struct u32vec *out, struct buf *text);

/* ---- prompts ---- */
/* The PSM prompt of PREFIX and SUFFIX into OUT (appended); SPECIAL as bpe_encode's. What the
 * model then generates is the middle. */
void fim_prompt(struct bpe_encoder *e, const struct fim_ids *f, const void *prefix,
		size_t plen, const void *suffix, size_t slen, int special, struct u32vec *out);

#endif
