/* split.c: safe cuts in a long text (see split.h). Why the rule holds, a run meaning a
 * maximal run of white space: the pre-tokenizer's pieces never hold white space after another
 * character, and a space joins only the piece after it (" ?\p{L}+" and its kind); a run
 * followed by another character is one piece less its last character (\s+(?!\S)) and that
 * last character (alone, or a space joined to what follows), and a run that ends the text is
 * one piece. So with S[P] white space and the character at P + 1 not, P starts a piece of the
 * whole text (its run's last character); the pieces before P are those of S[0, P) alone,
 * where the run cut short at the end of the text is one piece, as it was less its last
 * character; and each piece's end depends only on the bytes from its start, so the pieces
 * from P are those of S[P, N). S[P] is ASCII, so no character, valid or not, crosses P. */
#include "tok/split.h"

#include "base/utf8.h"
#include "base/xalloc.h"
#include "tok/pretok.h"

#include <stdlib.h>
#include <string.h>

static int is_space(unsigned char c)
{
	/* every ASCII white space byte is at most ' ' */
	return c <= ' ' && pretok_class(c) == PRETOK_SPACE;
}

int tok_split_safe(const unsigned char *s, size_t n, size_t p)
{
	if (p == 0 || p + 1 >= n || !is_space(s[p]))
		return 0;
	if (s[p + 1] < 0x80)
		return !is_space(s[p + 1]);
	/* an invalid byte is a character that is not white space, as pretok.c counts it */
	int len;
	uint32_t c = utf8_decode(s + p + 1, n - p - 1, &len);
	return pretok_class(c) != PRETOK_SPACE;
}

/* the added special tokens of M, as bpe_encode matches them */
static size_t special_ids(const struct bpe *m, uint32_t **ids)
{
	size_t k = 0;
	*ids = NULL;
	for (uint32_t id = 0; m && id < m->n_ids; id++)
		if (m->special[id] && m->len[id] != BPE_NONE && m->len[id]) {
			*ids = xreallocarray(*ids, k + 1, sizeof **ids);
			(*ids)[k++] = id;
		}
	return k;
}

/* whether one of the special tokens is written over any of S[P - 1, P + 2) */
static int near_special(const struct bpe *m, const uint32_t *ids, size_t k,
			const unsigned char *s, size_t n, size_t p)
{
	for (size_t i = 0; i < k; i++) {
		size_t len;
		const unsigned char *t = bpe_tok(m, ids[i], &len);
		size_t lo = p > len ? p - len : 0, hi = p + 1 + len < n ? p + 1 + len : n;
		if (memmem(s + lo, hi - lo, t, len))
			return 1;
	}
	return 0;
}

size_t tok_split(const unsigned char *s, size_t n, size_t part, const struct bpe *special,
		 size_t **start)
{
	uint32_t *ids;
	size_t nsp = special_ids(special, &ids), np = 1, cap = 16;
	*start = xmalloc(cap * sizeof **start);
	(*start)[0] = 0;
	if (!part)
		part = 1;
	for (size_t p = part; p < n; p++) {
		if (s[p] > ' ' || !tok_split_safe(s, n, p) ||
		    (nsp && near_special(special, ids, nsp, s, n, p)))
			continue;
		if (np == cap)
			*start = xreallocarray(*start, cap *= 2, sizeof **start);
		(*start)[np++] = p;
		if (n - p <= part)
			break;
		p += part - 1;
	}
	free(ids);
	return np;
}
