/* pad.c: the padded vocabulary and parameter layout (see pad.h). */
#include "model/pad.h"

#include <string.h>

uint64_t gpt2_vocab_padded(uint64_t V)
{
	return (V + GPT2_VOCAB_ALIGN - 1) / GPT2_VOCAB_ALIGN * GPT2_VOCAB_ALIGN;
}

struct gpt2_config gpt2_config_padded(const struct gpt2_config *c)
{
	struct gpt2_config p = *c;
	p.vocab_size = (uint32_t)gpt2_vocab_padded(c->vocab_size);
	return p;
}

void gpt2_layout_padded(const struct gpt2_config *c, struct gpt2_layout *lay)
{
	struct gpt2_config p = gpt2_config_padded(c);
	gpt2_layout(&p, lay);
}

/* the elements the pad rows add */
static uint64_t pad_elems(const struct gpt2_config *c)
{
	return (gpt2_vocab_padded(c->vocab_size) - c->vocab_size) * (uint64_t)c->n_embd;
}

uint64_t gpt2_pad_index(const struct gpt2_config *c, uint64_t i)
{
	/* wte is first: its rows keep their places, everything after moves by the pad */
	uint64_t wte = (uint64_t)c->vocab_size * c->n_embd;
	return i < wte ? i : i + pad_elems(c);
}

void gpt2_pad_copy(const struct gpt2_config *c, void *dst, const void *src, size_t esize)
{
	struct gpt2_layout lay;
	gpt2_layout(c, &lay);
	uint64_t wte = lay.size[GPT2_WTE], pad = pad_elems(c);
	char *d = dst;
	const char *s = src;
	memcpy(d, s, wte * esize);
	memset(d + wte * esize, 0, pad * esize);
	memcpy(d + (wte + pad) * esize, s + wte * esize, (lay.total - wte) * esize);
}

void gpt2_unpad_copy(const struct gpt2_config *c, void *dst, const void *src, size_t esize)
{
	struct gpt2_layout lay;
	gpt2_layout(c, &lay);
	uint64_t wte = lay.size[GPT2_WTE], pad = pad_elems(c);
	char *d = dst;
	const char *s = src;
	memcpy(d, s, wte * esize);
	memcpy(d + wte * esize, s + (wte + pad) * esize, (lay.total - wte) * esize);
}
