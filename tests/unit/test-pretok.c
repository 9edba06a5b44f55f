/* test-pretok.c: the GPT-2 pre-tokenizer against the regex's semantics on edge cases (the
 * expected splits were computed with Python's regex module), plus its invariants on random
 * bytes. "--dump-classes" prints utf8proc's class of every code point (O, L, N, S; x for
 * surrogates) for tests/ref/unicode_tok_table.py; "--dump-table" the classes in use. */
#include "tok/pretok.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

/* pieces joined with '|' for comparison */
static char *split(const char *s)
{
	size_t n = strlen(s), i = 0;
	char *out = malloc(2 * n + 2), *p = out;
	while (i < n) {
		size_t l = pretok_piece((const unsigned char *)s + i, n - i);
		if (i)
			*p++ = '|';
		memcpy(p, s + i, l);
		p += l;
		i += l;
	}
	*p = 0;
	return out;
}

static void check(const char *in, const char *want, const char *what)
{
	char *got = split(in);
	is_str(got, want, "%s", what);
	free(got);
}

int main(int argc, char **argv)
{
	if (argc > 1 && (!strcmp(argv[1], "--dump-classes") || !strcmp(argv[1], "--dump-table"))) {
		int base = !strcmp(argv[1], "--dump-classes");
		for (uint32_t c = 0; c < 0x110000; c++)
			putchar(c >= 0xd800 && c <= 0xdfff ? 'x'
				: "OLNS"[base ? pretok_class_base(c) : pretok_class(c)]);
		return 0;
	}
	check("don't I'M he's we'll they're you've I'd 'S",
	      "don|'t| I|'|M| he|'s| we|'ll| they|'re| you|'ve| I|'d| '|S",
	      "contractions, case-sensitive");
	check("''s", "''|s", "apostrophes run as punctuation before a contraction could match");
	check(" 's", " '|s", "a space before an apostrophe joins the punctuation");
	check("x123abc 456 7.5", "x|123|abc| 456| 7|.|5", "digits and letters split");
	check("h\xc3\xa9llo w\xc3\xb6rld \xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1",
	      "h\xc3\xa9llo| w\xc3\xb6rld| \xce\xa9\xce\xbc\xce\xad\xce\xb3\xce\xb1", "letters outside ASCII");
	check("\xd9\xa3\xd9\xa4 x\xc2\xb2 \xc2\xbd", "\xd9\xa3\xd9\xa4| x|\xc2\xb2| \xc2\xbd",
	      "Arabic-Indic digits, superscripts and fractions are numbers");
	check("a   b", "a|  | b", "a space run gives its last space to the word");
	check("a\n\n  b", "a|\n\n | b", "newlines and spaces before a word");
	check("a  ", "a|  ", "trailing white space stays whole");
	check("a \n", "a| \n", "white space at the end");
	check("\t\tx", "\t|\t|x", "tabs: \\s+(?!\\S) then \\s+");
	check("a\xe3\x80\x80\xe3\x80\x80" "b", "a|\xe3\x80\x80|\xe3\x80\x80|b",
	      "ideographic spaces are white space but not the optional space");
	check("x\xc2\xa0 y", "x|\xc2\xa0| y", "no-break space");
	check("hi \xf0\x9f\x91\x8b\xf0\x9f\x8f\xbd!", "hi| \xf0\x9f\x91\x8b\xf0\x9f\x8f\xbd!",
	      "emoji with skin tone and punctuation are one run");
	check("cafe\xcc\x81s", "cafe|\xcc\x81|s", "a combining mark is not a letter");
	check("\xe1\xb2\x8a" "a", "\xe1\xb2\x8a" "a", "U+1C8A (Unicode 16) is a letter");
	check("a\xff" "b", "a|\xff|b", "an invalid byte is punctuation");
	check(" \xff\xfe.", " \xff\xfe.", "invalid bytes run with punctuation");
	check("\xe2\x82", "\xe2\x82", "a truncated sequence");
	check("", "", "empty input");

	is_int(pretok_class(' '), PRETOK_SPACE, "space class");
	is_int(pretok_class(0x85), PRETOK_SPACE, "NEL is white space");
	is_int(pretok_class(0x200b), PRETOK_OTHER, "zero-width space is not white space");
	is_int(pretok_class(0x4e2d), PRETOK_LETTER, "CJK is a letter");
	is_int(pretok_class(0x2167), PRETOK_NUMBER, "Roman numeral (Nl) is a number");

	/* on random bytes: pieces are non-empty, cover the input, and a piece never ends
	 * inside a valid UTF-8 sequence */
	srand(7);
	int okc = 1;
	for (int t = 0; t < 2000 && okc; t++) {
		unsigned char buf[64];
		size_t n = (size_t)(rand() % 64) + 1;
		for (size_t i = 0; i < n; i++) {
			int r = rand() % 8;
			buf[i] = r < 3 ? (unsigned char)" \n\ta'sx1"[rand() % 9] : (unsigned char)rand();
		}
		size_t i = 0;
		while (i < n) {
			size_t l = pretok_piece(buf + i, n - i);
			if (l == 0 || i + l > n)
				okc = 0;
			if (!okc)
				break;
			i += l;
		}
	}
	ok(okc, "random bytes split into non-empty pieces covering the input");
	return done_testing();
}
