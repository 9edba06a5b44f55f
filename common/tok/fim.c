/* fim.c: the FIM tokens, the document transformation and the infill prompt (fim.h). */
#include "tok/fim.h"

#include "base/utf8.h"
#include "base/util.h"
#include "base/xalloc.h"

#include <string.h>

const char *const fim_names[FIM_N] = { "<fim_prefix>", "<fim_middle>", "<fim_suffix>",
				       "<fim_pad>" };

int fim_add_tokens(struct bpe *m)
{
	for (int k = 0; k < FIM_N; k++) {
		uint32_t id = m->n_ids;
		if (bpe_find(m, fim_names[k], strlen(fim_names[k])) != BPE_NONE ||
		    bpe_add_token(m, fim_names[k], strlen(fim_names[k]), id))
			return -1;
		m->special[id] = 1;
	}
	return 0;
}

int fim_find(const struct bpe *m, struct fim_ids *f, const char **missing)
{
	for (int k = 0; k < FIM_N; k++) {
		f->id[k] = bpe_find(m, fim_names[k], strlen(fim_names[k]));
		if (f->id[k] == BPE_NONE || !m->special[f->id[k]]) {
			*missing = fim_names[k];
			return -1;
		}
	}
	return 0;
}

int fim_is_token(const struct fim_ids *f, uint32_t t)
{
	for (int k = 0; k < FIM_N; k++)
		if (f->id[k] == t)
			return 1;
	return 0;
}

/* a uniform double in [0, 1) from the stream */
static double fim_unit(uint64_t *state)
{
	*state = mix64(*state);
	return (double)(*state >> 11) * 0x1.0p-53;
}

/* uniform in [0, n] */
static size_t fim_upto(uint64_t *state, size_t n)
{
	*state = mix64(*state);
	return (size_t)(((unsigned __int128)*state * ((unsigned __int128)n + 1)) >> 64);
}

/* the byte offset of character K of S (K up to the number of characters) */
static size_t char_offset(const unsigned char *s, size_t n, size_t k)
{
	size_t i = 0;
	for (; k && i < n; k--) {
		int l = utf8_valid_len(s + i, n - i);
		i += l ? (size_t)l : 1;
	}
	return i;
}

static size_t char_count(const unsigned char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; c++) {
		int l = utf8_valid_len(s + i, n - i);
		i += l ? (size_t)l : 1;
	}
	return c;
}

enum fim_kind fim_apply(const struct bpe *m, const struct fim_ids *f, struct bpe_encoder *e,
			const struct fim_opts *o, uint64_t key, const uint32_t *ids, size_t n,
			struct u32vec *out, struct buf *text)
{
	uint64_t st = mix64(o->seed ^ 0x66696d2d73706c74ULL) ^ mix64(key);
	int fim = fim_unit(&st) < o->rate;
	for (size_t i = 0; fim && i < n; i++)
		fim = ids[i] < m->n_ids && !m->special[ids[i]];
	buf_reset(text);
	if (!fim || bpe_decode(m, ids, n, text, NULL)) {
		u32vec_grow(out, n);
		memcpy(out->v + out->n, ids, n * sizeof *ids);
		out->n += n;
		return FIM_NONE;
	}
	const unsigned char *s = text->p ? text->p : (const unsigned char *)"";
	size_t chars = char_count(s, text->len);
	size_t a = fim_upto(&st, chars), b = fim_upto(&st, chars);
	if (a > b) {
		size_t t = a;
		a = b;
		b = t;
	}
	size_t pa = char_offset(s, text->len, a);
	size_t pb = pa + char_offset(s + pa, text->len - pa, b - a);
	int spm = fim_unit(&st) < o->spm_rate;
	u32vec_push(out, f->id[FIM_PREFIX]);
	if (spm) {
		u32vec_push(out, f->id[FIM_SUFFIX]);
		bpe_encode(e, s + pb, text->len - pb, 0, out);
		u32vec_push(out, f->id[FIM_MIDDLE]);
		bpe_encode(e, s, pb, 0, out);
		return FIM_SPM;
	}
	bpe_encode(e, s, pa, 0, out);
	u32vec_push(out, f->id[FIM_SUFFIX]);
	bpe_encode(e, s + pb, text->len - pb, 0, out);
	u32vec_push(out, f->id[FIM_MIDDLE]);
	bpe_encode(e, s + pa, pb - pa, 0, out);
	return FIM_PSM;
}

void fim_prompt(struct bpe_encoder *e, const struct fim_ids *f, const void *prefix,
		size_t plen, const void *suffix, size_t slen, int special, struct u32vec *out)
{
	u32vec_push(out, f->id[FIM_PREFIX]);
	bpe_encode(e, prefix, plen, special, out);
	u32vec_push(out, f->id[FIM_SUFFIX]);
	bpe_encode(e, suffix, slen, special, out);
	u32vec_push(out, f->id[FIM_MIDDLE]);
}
