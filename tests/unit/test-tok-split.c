/* test-tok-split: the safe cuts of a long text (tok/split.h) and the documents cut into parts
 * by tok_batch_encode. Every cut tok_split_safe allows, in random texts made of the awkward
 * cases (runs of blank lines, trailing spaces and tabs before newlines, CRLF, Unicode white
 * space, contractions, invalid bytes, no newline at all), leaves the pre-tokenizer's pieces
 * those of the whole text; tok_split's parts cover the text in order at safe cuts; and the ids
 * of documents cut into parts of a few bytes to a few kilobytes, encoded with 1, 2 and 3
 * threads, equal one pass of bpe_encode over each whole document, special tokens included
 * (GPT-2's files when ../shared/data/gpt2 has them, else a tokenizer trained here). */
#include "tok/split.h"
#include "tap.h"

#include "base/buf.h"
#include "base/xalloc.h"
#include "tok/encode-docs.h"
#include "tok/pretok.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the awkward bits texts are made of */
static const char *const bits[] = {
	"def", " foo", "x", "_y", "(", "):", "\n", "\n\n\n", "\n\n", "   ", "    ", "\t", " \n",
	"  \n", "\t\n", "\r\n", "  \r\n", "\r", "'s", "'ll", "'re", "'", " '", "123", " 4", "caf\xc3\xa9",
	"\xe3\x80\x80", "\xc2\xa0", "\xc2\x85", " \xe3\x80\x80\n", "\xff", "\xe2\x82", "//", ".",
	" ", "  ", "<|endoftext|>", " <|endoftext|>\n", "\n<|endoftext|>", "<|endoftext|>  ",
};
#define NBITS (sizeof bits / sizeof bits[0])

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* LEN or more bytes of random bits; without NL no '\n' or '\r' at all */
static void make_text(struct buf *b, size_t len, int nl)
{
	buf_reset(b);
	while (b->len < len) {
		const char *t = bits[rnd(NBITS)];
		if (!nl && strpbrk(t, "\r\n"))
			continue;
		buf_puts(b, t);
	}
}

/* the piece ends of S[0, N), each offset by BASE, appended to V */
static void piece_ends(const unsigned char *s, size_t n, size_t base, struct u32vec *v)
{
	for (size_t i = 0; i < n;) {
		i += pretok_piece(s + i, n - i);
		u32vec_push(v, (uint32_t)(base + i));
	}
}

static void test_safe_cuts(void)
{
	struct buf b = { 0 };
	struct u32vec whole = { 0 }, cut = { 0 };
	size_t cuts = 0, bad = 0, texts = 0;
	for (int t = 0; t < 300; t++, texts++) {
		make_text(&b, 50 + rnd(400), t % 5 != 0);
		whole.n = 0;
		piece_ends(b.p, b.len, 0, &whole);
		for (size_t p = 0; p <= b.len; p++) {
			if (!tok_split_safe(b.p, b.len, p))
				continue;
			cuts++;
			cut.n = 0;
			piece_ends(b.p, p, 0, &cut);
			piece_ends(b.p + p, b.len - p, p, &cut);
			if (cut.n != whole.n || memcmp(cut.v, whole.v, cut.n * sizeof *cut.v)) {
				if (!bad++)
					diag("text %d: a cut at %zu changes the pieces", t, p);
			}
		}
	}
	ok(cuts > 10 * texts, "random awkward texts have safe cuts (%zu in %zu texts)", cuts, texts);
	is_int(bad, 0, "no safe cut changes the pre-tokenizer's pieces");
	free(whole.v);
	free(cut.v);
	buf_free(&b);
}

static void test_safe_cases(void)
{
	static const struct { const char *s; size_t p; int safe; const char *why; } t[] = {
		{ "a\nb", 1, 1, "a lone newline between words" },
		{ "a\nb", 2, 0, "after it: a letter" },
		{ "a b", 1, 1, "before a single space: it joins the word after it" },
		{ "a  b", 2, 1, "the last space of a run of two" },
		{ "a  b", 1, 0, "the first space of that run: the next is white space" },
		{ "a \nb", 2, 1, "a newline after a trailing space" },
		{ "a\r\nb", 2, 1, "CRLF: between the CR and the LF" },
		{ "a\r\nb", 1, 0, "before the CR: the LF follows" },
		{ "a\n\n\nb", 3, 1, "the last newline of blank lines" },
		{ "a\n\n\nb", 2, 0, "not an earlier one" },
		{ "a\n", 1, 0, "nothing after the newline" },
		{ "\nb", 0, 0, "nothing before it" },
		{ "\xc3\xa9\nb", 2, 1, "a multi-byte letter before it" },
		{ "a\n\xc3\xa9", 1, 1, "a multi-byte letter after it" },
		{ "a\n\xe3\x80\x80" "b", 1, 0, "not before U+3000, white space" },
		{ "a\n\xff" "b", 1, 1, "before an invalid byte (no white space)" },
		{ "a\xe3\x80\x80\nb", 4, 1, "after U+3000, in a run of white space" },
		{ "a\xc3\nb", 2, 1, "after a truncated character" },
		{ "a\t\tb", 2, 1, "a run of tabs" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		is_int(tok_split_safe((const unsigned char *)t[i].s, strlen(t[i].s), t[i].p),
		       t[i].safe, "%s", t[i].why);
}

static void test_split(const struct bpe *m)
{
	struct buf b = { 0 };
	make_text(&b, 200000, 1);
	int fine = 1, special_ok = 1;
	size_t parts = 0;
	for (int sp = 0; sp < 2; sp++) {
		size_t *start, n = tok_split(b.p, b.len, 1000, sp ? m : NULL, &start);
		parts += n;
		fine &= n > 100 && start[0] == 0;
		for (size_t k = 1; k < n; k++) {
			fine &= start[k] >= start[k - 1] + 1000 && tok_split_safe(b.p, b.len, start[k]);
			/* no <|endoftext|> written over a cut's three bytes, S[P - 1, P + 2) */
			if (sp) {
				size_t lo = start[k] > 13 ? start[k] - 13 : 0;
				size_t hi = start[k] + 14 < b.len ? start[k] + 14 : b.len;
				special_ok &= !memmem(b.p + lo, hi - lo, "<|endoftext|>", 13) ||
					      m->eot == BPE_NONE;
			}
		}
		free(start);
	}
	ok(fine, "parts of 1000 bytes or more, starting at 0, cut at safe places (%zu parts)", parts);
	ok(special_ok, "with special tokens, no cut beside one");
	size_t *start, n = tok_split(b.p, b.len, b.len, NULL, &start);
	ok(n == 1 && start[0] == 0, "a part the size of the text: one part");
	free(start);
	make_text(&b, 20000, 0);
	n = tok_split(b.p, b.len, 10, NULL, &start);
	fine = 1;
	for (size_t k = 1; k < n; k++)
		fine &= b.p[start[k]] == ' ' || b.p[start[k]] == '\t';
	ok(fine && n > 100, "without newlines, cuts before spaces and tabs (%zu parts)", n);
	free(start);
	buf_free(&b);
}

/* documents cut into parts encoded with THREADS threads against one pass over each */
static void test_encode(const struct bpe *m)
{
	/* long awkward documents, one without newlines, ones with no safe cut at all */
	struct buf docs[6] = { 0 };
	make_text(&docs[0], 300000, 1);
	make_text(&docs[1], 100000, 0);
	make_text(&docs[2], 5000, 1);
	for (int i = 0; i < 20000; i++)
		buf_puts(&docs[3], "\n");
	for (int i = 0; i < 20000; i++)
		buf_puts(&docs[4], "ab ");
	buf_puts(&docs[5], "");
	struct bpe_encoder *one = bpe_encoder_new(m);
	struct u32vec want[2][6] = { 0 };
	for (int sp = 0; sp < 2; sp++)
		for (int d = 0; d < 6; d++)
			bpe_encode(one, docs[d].p, docs[d].len, sp, &want[sp][d]);
	static const size_t sizes[] = { 7, 64, 4096 };
	for (int th = 1; th <= 3; th++) {
		struct bpe_encoder **enc = tok_encoders_new(m, th);
		for (int sp = 0; sp < 2; sp++) {
			int same = 1, chars = 1, counted = 1;
			for (size_t z = 0; z < 3; z++) {
				struct tok_batch b = { .part_bytes = sizes[z] };
				b.n = 0;
				for (int d = 0; d < 6; d++) {
					/* the batch as tok_batch_fill leaves it */
					if (b.n == b.cap) {
						b.cap = 8;
						b.id = xcalloc(b.cap, sizeof *b.id);
						b.off = xcalloc(b.cap, sizeof *b.off);
						b.len = xcalloc(b.cap, sizeof *b.len);
						b.input = xcalloc(b.cap, sizeof *b.input);
						b.ids = xcalloc(b.cap, sizeof *b.ids);
						b.nchars = xcalloc(b.cap, sizeof *b.nchars);
						b.ntok = xcalloc(b.cap, sizeof *b.ntok);
						b.keep = xcalloc(b.cap, 1);
					}
					b.off[b.n] = b.text.len;
					b.len[b.n++] = docs[d].len;
					buf_put(&b.text, docs[d].p, docs[d].len);
				}
				b.base = b.text.p;
				tok_batch_encode(&b, m, enc, th, sp, 0);
				for (int d = 0; d < 6; d++)
					counted &= b.ntok[d] == want[sp][d].n;
				tok_batch_join(&b, th);
				for (int d = 0; d < 6; d++) {
					same &= b.ids[d].n == want[sp][d].n &&
						(!b.ids[d].n ||
						 !memcmp(b.ids[d].v, want[sp][d].v, b.ids[d].n * 4));
					chars &= b.nchars[d] == tok_count_chars(docs[d].p, docs[d].len);
				}
				tok_batch_free(&b);
			}
			ok(same, "%d thread%s%s: ids of parts of 7, 64 and 4096 bytes equal one pass",
			   th, th > 1 ? "s" : "", sp ? ", special tokens" : "");
			ok(chars, "  and the characters counted are the whole documents'");
			ok(counted, "  and so are the ids counted before they are joined");
		}
		tok_encoders_free(enc, th);
	}
	bpe_encoder_free(one);
	for (int sp = 0; sp < 2; sp++)
		for (int d = 0; d < 6; d++)
			free(want[sp][d].v);
	for (int d = 0; d < 6; d++)
		buf_free(&docs[d]);
}

static struct bpe tokenizer(void)
{
	struct bpe m;
	const char *g = !access("../shared/data/gpt2/encoder.json", R_OK) ? "../shared/data/gpt2"
		: !access("../../shared/data/gpt2/encoder.json", R_OK) ? "../../shared/data/gpt2" : NULL;
	if (g && !bpe_load(&m, g)) {
		diag("GPT-2's files from %s", g);
		return m;
	}
	struct buf b = { 0 };
	make_text(&b, 100000, 1);
	struct bpe_counter *c = bpe_counter_new();
	struct bpe_train_opts o = { .vocab_size = 600, .threads = 1 };
	bpe_counter_add(c, b.p, b.len);
	bpe_init(&m);
	bpe_train(&m, c, &o);
	bpe_counter_free(c);
	buf_free(&b);
	diag("a tokenizer trained here");
	return m;
}

int main(void)
{
	test_safe_cases();
	test_safe_cuts();
	struct bpe m = tokenizer();
	ok(m.eot != BPE_NONE, "the tokenizer has <|endoftext|>");
	test_split(&m);
	test_encode(&m);
	bpe_free(&m);
	return done_testing();
}
