/* test-fim.c: tok/fim.c against independent computations: the four tokens after the merges;
 * the document transformation undone (its parts reassembled give the document, each part is
 * the encoder's own encoding of its text, the cuts fall on character boundaries found by a
 * separate decoder), its rates, its determinism by key, its two orders; the infill prompt. */
#include "tok/fim.h"
#include "base/utf8.h"
#include "tap.h"
#include "train-text.h"

#include <stdlib.h>
#include <string.h>


static size_t find_id(const uint32_t *v, size_t n, size_t from, uint32_t id)
{
	while (from < n && v[from] != id)
		from++;
	return from;
}

/* 1 when byte offset OFF of S[N] is a character boundary, by utf8_decode's steps */
static int is_boundary(const unsigned char *s, size_t n, size_t off)
{
	size_t i = 0;
	while (i < off) {
		int l;
		utf8_decode(s + i, n - i, &l);
		i += (size_t)l;
	}
	return i == off;
}

/* Undo OUT (a transformed document): the text of prefix+middle+suffix into TEXT; 0 when
 * each part is E's encoding of its text and each cut a character boundary. */
static int undo(const struct bpe *m, const struct fim_ids *f, struct bpe_encoder *e,
		const struct u32vec *out, enum fim_kind kind, struct buf *text)
{
	const uint32_t *v = out->v;
	size_t n = out->n, a = find_id(v, n, 0, f->id[FIM_SUFFIX]), b = find_id(v, n, 0, f->id[FIM_MIDDLE]);
	if (v[0] != f->id[FIM_PREFIX] || a >= n || b >= n || a > b)
		return -1;
	struct { size_t from, to; } part[3];	/* in text order */
	if (kind == FIM_SPM) {
		if (a != 1)
			return -1;
		part[0].from = b + 1, part[0].to = n, part[1].from = part[1].to = n;
		part[2].from = 2, part[2].to = b;
	} else {
		part[0].from = 1, part[0].to = a, part[1].from = b + 1, part[1].to = n;
		part[2].from = a + 1, part[2].to = b;
	}
	buf_reset(text);
	size_t cut[3];
	for (int k = 0; k < 3; k++) {
		size_t at = text->len;
		if (bpe_decode(m, v + part[k].from, part[k].to - part[k].from, text, NULL))
			return -1;
		struct u32vec re = { 0 };
		bpe_encode(e, text->p + at, text->len - at, 0, &re);
		int same = re.n == part[k].to - part[k].from &&
			   (!re.n || !memcmp(re.v, v + part[k].from, re.n * sizeof *re.v));
		free(re.v);
		if (!same)
			return -1;
		cut[k] = text->len;
	}
	return is_boundary(text->p, text->len, cut[0]) && is_boundary(text->p, text->len, cut[1]) ? 0 : -1;
}

static void random_doc(unsigned char *s, size_t n)
{
	static const char *const pieces[] = { "a", "b", " ", "\n", "é", "∑", "😀", "\xff", "\xc3" };
	size_t i = 0;
	while (i < n) {
		const char *p = pieces[rand() % 9];
		size_t l = strlen(p);
		if (i + l > n)
			l = n - i;
		memcpy(s + i, p, l);
		i += l;
	}
}

static void test_transform(const struct bpe *m, const struct fim_ids *f)
{
	struct bpe_encoder *e = bpe_encoder_new(m);
	struct fim_opts o = { .rate = 1, .spm_rate = 0.5, .seed = 5 };
	struct u32vec ids = { 0 }, out = { 0 }, out2 = { 0 };
	struct buf text = { 0 }, back = { 0 };
	unsigned char s[64];
	int undone = 1, same = 1, kinds[3] = { 0 }, differ = 0;
	for (int t = 0; t < 500; t++) {
		size_t n = (size_t)(rand() % 40);
		random_doc(s, n);
		ids.n = out.n = out2.n = 0;
		bpe_encode(e, s, n, 0, &ids);
		enum fim_kind k = fim_apply(m, f, e, &o, (uint64_t)t, ids.v, ids.n, &out, &text);
		kinds[k]++;
		undone &= k != FIM_NONE && !undo(m, f, e, &out, k, &back) && back.len == n &&
			  (!n || !memcmp(back.p, s, n));
		fim_apply(m, f, e, &o, (uint64_t)t, ids.v, ids.n, &out2, &text);
		same &= out2.n == out.n && !memcmp(out2.v, out.v, out.n * sizeof *out.v);
		struct fim_opts o2 = o;
		o2.seed = 6;
		out2.n = 0;
		fim_apply(m, f, e, &o2, (uint64_t)t, ids.v, ids.n, &out2, &text);
		differ += out2.n != out.n || memcmp(out2.v, out.v, out.n * sizeof *out.v);
	}
	ok(undone, "rate 1: every document rearranged; prefix+middle+suffix is its text, each part "
		   "its own encoding, each cut a character boundary");
	ok(kinds[FIM_PSM] > 200 && kinds[FIM_SPM] > 200, "spm rate 0.5: %d PSM, %d SPM",
	   kinds[FIM_PSM], kinds[FIM_SPM]);
	ok(same, "the same seed and key give the same output");
	ok(differ > 300, "another seed cuts elsewhere (%d of 500 differ)", differ);

	/* the rates, and both ends of the cuts reachable */
	int fimmed = 0, spm = 0, at0 = 0, at_end = 0;
	o = (struct fim_opts){ .rate = 0.3, .spm_rate = 0, .seed = 1 };
	ids.n = 0;
	bpe_encode(e, (const unsigned char *)"abcdefgh", 8, 0, &ids);
	for (int t = 0; t < 4000; t++) {
		out.n = 0;
		enum fim_kind k = fim_apply(m, f, e, &o, (uint64_t)t, ids.v, ids.n, &out, &text);
		fimmed += k != FIM_NONE;
		spm += k == FIM_SPM;
		if (k == FIM_NONE)
			same &= out.n == ids.n && !memcmp(out.v, ids.v, ids.n * sizeof *ids.v);
		else {
			at0 += out.v[1] == f->id[FIM_SUFFIX];	/* an empty prefix */
			at_end += out.v[out.n - 1] == f->id[FIM_MIDDLE];	/* an empty middle */
		}
	}
	ok(fimmed > 1100 && fimmed < 1300, "rate 0.3: %d of 4000 rearranged", fimmed);
	ok(spm == 0, "spm rate 0: PSM only");
	ok(same, "the others are left as they were");
	ok(at0 > 100 && at_end > 100, "empty prefixes (%d) and empty middles (%d) both drawn", at0,
	   at_end);

	/* a document holding a special token is left alone */
	uint32_t sp[3] = { ids.v[0], f->id[FIM_PAD], ids.v[1] };
	o.rate = 1;
	out.n = 0;
	is_int(fim_apply(m, f, e, &o, 1, sp, 3, &out, &text), FIM_NONE,
	       "a document holding a special token is kept as it is");
	ok(out.n == 3 && !memcmp(out.v, sp, sizeof sp), "its ids unchanged");
	free(ids.v);
	free(out.v);
	free(out2.v);
	buf_free(&text);
	buf_free(&back);
	bpe_encoder_free(e);
}

int main(void)
{
	srand(3);
	struct bpe m = train_text("ab ab abba a b é∑ é∑ 😀\n def f(x): return x\n", 300);
	uint32_t n0 = m.n_ids;
	struct fim_ids f;
	const char *missing = NULL;
	ok(fim_find(&m, &f, &missing) == -1 && missing && !strcmp(missing, "<fim_prefix>"),
	   "a tokenizer without them: <fim_prefix> named missing");
	ok(fim_add_tokens(&m) == 0, "the four tokens added");
	ok(fim_find(&m, &f, &missing) == 0, "and found");
	int after = 1;
	for (int k = 0; k < FIM_N; k++) {
		size_t l;
		const unsigned char *t = bpe_tok(&m, n0 + (uint32_t)k, &l);
		after &= f.id[k] == n0 + (uint32_t)k && m.special[f.id[k]] && l == strlen(fim_names[k]) &&
			 !memcmp(t, fim_names[k], l);
	}
	ok(after, "ids %u..%u after the merges, prefix, middle, suffix, pad, special", n0, n0 + 3);
	ok(fim_add_tokens(&m) == -1, "adding them twice is refused");
	ok(fim_is_token(&f, n0 + 2) && !fim_is_token(&f, m.eot), "fim_is_token");

	test_transform(&m, &f);

	struct bpe_encoder *e = bpe_encoder_new(&m);
	struct u32vec got = { 0 }, want = { 0 };
	fim_prompt(e, &f, "def f(", 6, "):\n", 3, 1, &got);
	u32vec_push(&want, f.id[FIM_PREFIX]);
	bpe_encode(e, (const unsigned char *)"def f(", 6, 0, &want);
	u32vec_push(&want, f.id[FIM_SUFFIX]);
	bpe_encode(e, (const unsigned char *)"):\n", 3, 0, &want);
	u32vec_push(&want, f.id[FIM_MIDDLE]);
	ok(got.n == want.n && !memcmp(got.v, want.v, got.n * sizeof *got.v),
	   "the prompt: <fim_prefix> prefix <fim_suffix> suffix <fim_middle>");
	free(got.v);
	free(want.v);
	bpe_encoder_free(e);
	bpe_free(&m);
	return done_testing();
}
