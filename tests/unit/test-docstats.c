/* test-docstats: the statistics, hash and MinHash of hand-made documents, each expected
 * value worked out from CodeParrot's Python definitions (str.splitlines, str.isalnum, ...). */
#include "dedup/docstats.h"
#include "tap.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static struct docstats_ctx ctx;
static struct doc_stats st;
static unsigned char hash[16], mh[4 * DOC_MINHASH_PERM];
static uint32_t n_mh;

static void run(const char *s, size_t n)
{
	docstats_compute(&ctx, s, n, &st, hash, mh, &n_mh);
}
#define RUN(lit) run(lit, sizeof(lit) - 1)

static void hash_of(const char *s, size_t n, unsigned char out[16])
{
	struct doc_stats t;
	unsigned char m[4 * DOC_MINHASH_PERM];
	uint32_t k;
	docstats_compute(&ctx, s, n, &t, out, m, &k);
}

static int same_hash(const char *a, size_t na, const char *b, size_t nb)
{
	unsigned char ha[16], hb[16];
	hash_of(a, na, ha);
	hash_of(b, nb, hb);
	return !memcmp(ha, hb, 16);
}
#define SAME(a, b) same_hash(a, sizeof(a) - 1, b, sizeof(b) - 1)

static void test_empty(void)
{
	RUN("");
	ok(st.n_chars == 0 && st.n_lines == 0 && st.line_max == 0 && st.line_sum == 0 &&
	   st.n_alnum == 0 && st.n_eq == 0 && st.flags == DOC_NO_KEYWORDS && st.n_tokens == 0 && n_mh == 0,
	   "empty content: all statistics zero, no signature, only the no-keywords flag");
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits("", 0));
	ok(!memcmp(hash, c.digest, 16), "empty content: hash of no bytes");
}

static void test_no_final_newline(void)
{
	RUN("a = 1\nbb == 22");
	is_int(st.n_chars, 14, "no final newline: chars");
	is_int(st.n_lines, 2, "no final newline: the last line counts");
	is_int(st.line_sum, 13, "no final newline: line lengths 5 + 8");
	is_int(st.line_max, 8, "no final newline: longest line");
	is_int(st.n_alnum, 6, "no final newline: alnum");
	is_int(st.n_eq, 3, "count of '='");
	is_int(st.n_newlines, 1, "one newline");
	RUN("x\n\n");
	is_int(st.n_lines, 2, "'x\\n\\n' has 2 lines ('x' and '')");
	is_int(st.line_sum, 1, "... of lengths 1 and 0");
	RUN("\n");
	ok(st.n_lines == 1 && st.line_max == 0 && st.n_chars == 1, "'\\n' is one empty line");
}

static void test_crlf_and_breaks(void)
{
	RUN("ab\r\ncd\r\n");
	ok(st.n_lines == 2 && st.line_max == 2 && st.line_sum == 4 && st.n_chars == 8,
	   "CRLF ends one line");
	is_int(st.n_newlines, 2, "CRLF: '\\n' counted");
	RUN("a\rb\vc\fd\x1c" "e\x1d" "f\x1eg\x1fh");
	is_int(st.n_lines, 7, "\\r \\v \\f \\x1c \\x1d \\x1e break lines, \\x1f does not");
	is_int(st.line_max, 3, "'g\\x1fh' is one line of 3");
	RUN("a\xc2\x85" "b\xe2\x80\xa8" "c\xe2\x80\xa9" "d\xe2\x80\xa6");
	is_int(st.n_lines, 4, "U+0085, U+2028, U+2029 break lines, U+2026 does not");
	is_int(st.n_chars, 8, "multi-byte characters count once");
	is_int(st.line_max, 2, "'d\\u2026' is 2 code points");
	RUN("\r\r\n\n");
	is_int(st.n_lines, 3, "'\\r\\r\\n\\n' is 3 empty lines");
}

static void test_tabs(void)
{
	RUN("\tdef f():\n\t\treturn 1\n");
	is_int(st.line_max, 10, "a tab is one character");
	is_int(st.n_alnum, 11, "alnum: deffreturn1");
	ok(!(st.flags & DOC_NO_KEYWORDS), "'def ' found");
	ok(SAME("\tdef f():\n\t\treturn 1\n", "deff():return1"), "tabs and newlines are not hashed");
}

static void test_long_line(void)
{
	size_t n = 10 * 1000 * 1000;
	char *s = xmalloc(n + 1);
	memset(s, 'x', n);
	s[n] = '\n';
	run(s, n + 1);
	ok(st.n_lines == 1 && st.line_max == n && st.n_alnum == n && st.n_chars == n + 1,
	   "a 10 MB line");
	is_int(st.n_tokens, 1, "... is one token");
	ok(n_mh == 0, "... and gets no signature");
	free(s);
}

static void test_invalid_utf8(void)
{
	RUN("ab\xff\xfe");
	ok(st.n_chars == 4 && st.n_alnum == 2 && (st.flags & DOC_INVALID_UTF8),
	   "each invalid byte is one non-alnum code point");
	RUN("\xc0\xaf" "\xed\xa0\x80" "\xf4\x90\x80\x80" "\xc3");
	is_int(st.n_chars, 10, "overlong, surrogate, > U+10FFFF, truncated: one per byte");
	RUN("caf\xc3\xa9");
	ok(st.n_chars == 4 && !(st.flags & DOC_INVALID_UTF8), "valid UTF-8 sets no flag");
	ok(SAME("a\xff b", "a\xff" "b"), "invalid bytes are kept in the hash, spaces are not");
	ok(!SAME("a\xff" "b", "ab"), "... so they make a difference");
	RUN("a\xff\n\xff");
	ok(st.n_lines == 2 && st.line_max == 2, "invalid bytes count in line lengths");
}

static void test_non_ascii_identifiers(void)
{
	RUN("caf\xc3\xa9 = 1\n\xcf\x80 = 3.14\n\xe5\x90\x8d\xe5\x89\x8d = '\xf0\x9f\x98\x80'\n");
	is_int(st.n_chars, 27, "chars of three lines with non-ASCII");
	is_int(st.n_alnum, 11, "alnum: cafe1, pi314, two CJK; the emoji is not");
	is_int(st.line_max, 8, "line lengths in code points");
	RUN("\xd9\xa3\xe2\x85\xa7\xc2\xb2\xc2\xbd");
	is_int(st.n_alnum, 4, "Arabic-Indic digit, Roman numeral, superscript, fraction are alnum");
	RUN("\xcc\x81\xe2\x80\xbf");
	is_int(st.n_alnum, 0, "combining mark and connector punctuation are not");
	RUN("na\xc3\xafve na\xc3\xafve x1 x2 x3 x4 x5 x6 x7 x8");
	is_int(st.n_tokens, 10, "tokens split on non-ASCII: na, ve, x1..x8");
}

static void test_flags(void)
{
	RUN("# line 1\n#\n#\n#\n# This file is AUTO-GENERATED\nx = 1\n");
	ok(st.flags & DOC_AUTOGENERATED, "auto-generated in line 5, any case");
	RUN("#\n#\n#\n#\n#\n# autogenerated\n");
	ok(!(st.flags & DOC_AUTOGENERATED), "... but not in line 6");
	RUN("#\r\n#\r\n#\r\n#\r\n# Automatically Generated\r\n");
	ok(st.flags & DOC_AUTOGENERATED, "'automatically generated' (CRLF lines)");
	RUN("#\v#\v#\v#\v#\v autogenerated");
	ok(!(st.flags & DOC_AUTOGENERATED), "\\v ends lines too: the keyword is in line 6");
	RUN("auto-\ngenerated");
	ok(!(st.flags & DOC_AUTOGENERATED), "a keyword does not span lines");

	RUN("\"\"\"Unit tests for x\"\"\"\n");
	ok(st.flags & DOC_CONFIG_OR_TEST, "'unit tests' in the first lines");
	RUN("# test file\n");
	ok(st.flags & DOC_CONFIG_OR_TEST, "'test file'");
	RUN("# Configuration File\n");
	ok(st.flags & DOC_CONFIG_OR_TEST, "'configuration file'");
	/* 20 newlines: threshold int(0.05 * 20) = 1, so 2 occurrences trigger */
	char s[512] = "";
	strcat(s, "config = 1\n");
	for (int i = 0; i < 19; i++)
		strcat(s, "x = 1\n");
	run(s, strlen(s));
	ok(st.n_config == 1 && !(st.flags & DOC_CONFIG_OR_TEST), "one 'config' in 20 lines: no");
	memcpy(s, "CONFIG", 6);
	strcat(s, "Config\n");
	run(s, strlen(s));
	ok(st.n_config == 2 && (st.flags & DOC_CONFIG_OR_TEST), "two (any case) in 21 newlines: yes");
	RUN("testest\n");
	is_int(st.n_test, 1, "'test' counted without overlaps");
	RUN("configconfig testtest");
	ok(st.n_config == 2 && st.n_test == 2, "adjacent occurrences count");
	RUN("CONF\xc4\xb0G");
	is_int(st.n_config, 0, "'CONF\\u0130G' lowers to 'confi\\u0307g': no 'config'");
	RUN("x");
	ok(!(st.flags & DOC_CONFIG_OR_TEST), "no newline, no 'test': threshold 0 not exceeded");
	RUN("a_test");
	ok(st.flags & DOC_CONFIG_OR_TEST, "no newline: threshold 0, one 'test' exceeds it");

	RUN("x = 1\ny = 2\n");
	ok(st.flags & DOC_NO_KEYWORDS, "no def/class/for/while: no_keywords");
	RUN("WHILE x:\n");
	ok(!(st.flags & DOC_NO_KEYWORDS), "'while ' in any case");
	RUN("define(x)\nfor\n");
	ok(st.flags & DOC_NO_KEYWORDS, "'define(' and 'for' at line end are no keywords");
	RUN("class\tA");
	ok(st.flags & DOC_NO_KEYWORDS, "'class' must be followed by a space");
}

static void test_hash(void)
{
	ok(SAME("a b\n", "ab"), "spaces and newlines removed");
	ok(SAME("a\xc2\xa0" "b\xe3\x80\x80" "c\xe2\x80\x89", "abc"), "NBSP, ideographic and thin space removed");
	ok(SAME("a\x1c\x1d\x1e\x1f\v\f\rb", "ab"), "\\x1c-\\x1f \\v \\f \\r removed");
	ok(!SAME("a\xe2\x80\x8b" "b", "ab"), "zero-width space (not \\s) is kept");
	ok(!SAME("ab", "ba"), "order matters");
	RUN("ab");
	XXH128_canonical_t c;
	XXH128_canonicalFromHash(&c, XXH3_128bits("ab", 2));
	ok(!memcmp(hash, c.digest, 16), "the hash is xxh3-128 of the stripped bytes, big-endian");
	unsigned char out[16];
	ok(docstats_strip("a \xc2\x85\xff" "b", 6, out) == 3 && !memcmp(out, "a\xff" "b", 3),
	   "docstats_strip keeps invalid bytes, drops U+0085");
}

static void test_minhash(void)
{
	RUN("a b c d e f g h i a b c");
	ok(st.n_tokens == 9 && n_mh == 0, "9 distinct tokens: no signature");
	RUN("a b c d e f g h i j");
	ok(st.n_tokens == 10 && n_mh == DOC_MINHASH_PERM, "10 distinct tokens: a signature");
	const char *toks[] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j" };
	int good = 1;
	for (unsigned i = 0; i < DOC_MINHASH_PERM; i++) {
		uint32_t m = UINT32_MAX;
		for (int t = 0; t < 10; t++) {
			uint32_t v = docstats_perm(&ctx, i, XXH3_64bits(toks[t], 1));
			m = v < m ? v : m;
		}
		uint32_t got = (uint32_t)mh[4 * i] | (uint32_t)mh[4 * i + 1] << 8 |
			       (uint32_t)mh[4 * i + 2] << 16 | (uint32_t)mh[4 * i + 3] << 24;
		good &= got == m;
	}
	ok(good, "signature = per-permutation minimum over the token set (little-endian)");
	unsigned char mh1[4 * DOC_MINHASH_PERM];
	memcpy(mh1, mh, sizeof mh1);
	RUN("j.i+h-g(f)e[d]c{b}a j i");
	ok(!memcmp(mh, mh1, sizeof mh1), "the signature depends on the token set only");

	/* two documents of 100 tokens sharing 80: Jaccard 80/120 */
	char a[2000] = "", b[2000] = "";
	for (int i = 0; i < 100; i++) {
		sprintf(a + strlen(a), "tok%d ", i);
		sprintf(b + strlen(b), "tok%d ", i + 20);
	}
	unsigned char ma[4 * DOC_MINHASH_PERM];
	run(a, strlen(a));
	memcpy(ma, mh, sizeof ma);
	run(b, strlen(b));
	int same = 0;
	for (int i = 0; i < DOC_MINHASH_PERM; i++)
		same += !memcmp(ma + 4 * i, mh + 4 * i, 4);
	double est = same / (double)DOC_MINHASH_PERM;
	diag("estimated Jaccard %.3f, true %.3f", est, 80 / 120.0);
	ok(est > 80 / 120.0 - 0.1 && est < 80 / 120.0 + 0.1, "MinHash estimates Jaccard within 0.1");
}

static void test_whitespace_tables(void)
{
	static const uint32_t space[] = { 0x9, 0xa, 0xb, 0xc, 0xd, 0x1c, 0x1d, 0x1e, 0x1f, 0x20,
					  0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003,
					  0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
					  0x2028, 0x2029, 0x202f, 0x205f, 0x3000 };
	size_t n = 0, k = 0;
	for (uint32_t cp = 0; cp < 0x110000; cp++)
		if (docstats_isspace(cp)) {
			n++;
			k += k < sizeof space / sizeof *space && space[k] == cp;
		}
	ok(n == 29 && k == 29, "exactly Python's 29 str.isspace() code points");
	ok(docstats_isalnum('a') && docstats_isalnum(0x4e00) && docstats_isalnum(0xbd) &&
	   !docstats_isalnum('_') && !docstats_isalnum(0x300) && !docstats_isalnum(0xdc80),
	   "isalnum spot checks");
}


/* ---- the fast paths against the reference: the AVX2 scan (where the CPU has it), the inlined
 * token hash, the memo of DATASKETCH keys and SHA-1 with the SHA instructions, each compared
 * with the byte-at-a-time scan, XXH3_64bits and nettle (ctx.reference). */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static unsigned below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

/* Pieces of documents: code, whitespace and line breaks of every kind, non-ASCII text,
 * invalid UTF-8, the words count_words and code_keyword look for. */
static const char *const pieces[] = {
	"def ", "class ", "for ", "while ", "DEF ", "Class\t", "return", "self.value", " = ", "==",
	"=", "(", "):", "[0]", "{'a': 1}", "# comment", "\"\"\"doc\"\"\"", "x_1", "_", "__init__",
	"test", "TeSt", "testest", "conf", "config", "CONFIG", "Configure", "unit tests",
	"test file", "auto-generated", "autogenerated", "t", "c", "f",
	"\n", "\n", "\n", "\r\n", "\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\t",
	"\t\t", " ", "  ", "    ", "        ", "\x00", "\x01", "\x08", "\x0e", "\x1b", "\x7f",
	"\xc3\xa9", "caf\xc3\xa9", "\xcf\x80", "\xe5\x90\x8d", "\xf0\x9f\x98\x80", "\xc2\x85",
	"\xe2\x80\xa8", "\xe2\x80\xa9", "\xc2\xa0", "\xe3\x80\x80", "\xe2\x80\x8b", "\xd9\xa3",
	"\x80", "\xff", "\xfe", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3", "\xe2\x80",
	"\xf0\x9f\x98",
};

/* L random identifier bytes at BUF + K; returns the new K. */
static size_t put_ident(unsigned char *buf, size_t k, size_t l)
{
	static const char al[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789";
	for (size_t j = 0; j < l; j++)
		buf[k++] = (unsigned char)al[below(sizeof al - 1)];
	return k;
}

/* A random document of about N bytes into BUF (room for N + 64). */
static size_t random_doc(unsigned char *buf, size_t n)
{
	size_t k = 0;
	while (k < n) {
		unsigned r = below(16);
		if (r < 9) {	/* a piece */
			const char *s = pieces[below(sizeof pieces / sizeof *pieces)];
			size_t l = strlen(s);
			l = l ? l : 1;	/* "\x00" */
			memcpy(buf + k, s, l);
			k += l;
		} else if (r < 14) {	/* an identifier, sometimes long: blocks cut through it */
			size_t l = 1 + (below(8) ? below(12) : below(60));
			k = put_ident(buf, k, k + l <= n + 60 ? l : n + 60 - k);
		} else if (r < 15) {	/* a run of one byte */
			unsigned char c = (unsigned char)" \n=\r\tx"[below(6)];
			for (size_t l = below(40); l-- && k < n + 60;)
				buf[k++] = c;
		} else {	/* any byte */
			buf[k++] = (unsigned char)rnd();
		}
	}
	return n;	/* the tail is cut anywhere: inside tokens, CR LF and UTF-8 too */
}

/* A random document of about N bytes of ASCII code whose only control byte is LF, as the
 * AVX2 NONE scan takes 64 bytes at a time (room for N + 160): long identifiers across
 * blocks, "test" and "config" overlapping and at every place, a keyword late or never
 * (KW: one piece in KW is one), now and then a byte that hands over to the general block or
 * the reference step, inside a token too. */
static size_t code_doc(unsigned char *buf, size_t n, unsigned kw)
{
	static const char *const words[] = {
		"test", "TeSt", "testest", "testtest", "atestb", "conf", "config", "CONFIG",
		"confconfig", "Configure", "that", "text", "c_f", "cff", "tt t", "x", "=", "==",
		" ", "    ", "\n", "\n\n", "self.value", "(", "):", "# comment", "_",
	};
	static const char *const kws[] = { "def ", "class ", "for ", "while ", "DeF ", "xclass ",
					   "def", "clas ", "fo r ", "whilE " };
	static const char *const rare[] = { "\t", "\r\n", "\r", "\xc3\xa9", "\xff", "\x0c" };
	unsigned p_kw = kw ? 1000 / kw : 0;	/* per 1000 pieces */
	size_t k = 0;
	while (k < n) {
		unsigned r = below(1000);
		const char *s = NULL;
		if (r < p_kw)
			s = kws[below(sizeof kws / sizeof *kws)];
		else if (r < p_kw + 3)
			s = rare[below(sizeof rare / sizeof *rare)];
		else if (r < 600)
			s = words[below(sizeof words / sizeof *words)];
		if (s) {
			memcpy(buf + k, s, strlen(s));
			k += strlen(s);
		} else {
			k = put_ident(buf, k, 1 + (below(4) ? below(10) : below(100)));
		}
		buf[k++] = below(3) ? ' ' : '\n';
	}
	return n;
}

/* A document of N bytes (room for N + 200) of ASCII code for the token schemes' 64-byte
 * blocks, which end where a token going on past them starts: tokens of up to 130 bytes, so
 * that some cross, end on or fill a block; "test", "config" and the keywords placed so that
 * they start or end near multiples of 32 bytes, where blocks start and end until a cut; and,
 * with RARE, now and then a CR LF, tab, form feed or byte >= 0x80 (also inside a token) in the
 * middle of a block. */
static size_t edge_doc(unsigned char *buf, size_t n, int rare)
{
	static const char *const words[] = {
		"test", "TEST", "testest", "atest", "testb", "config", "Config", "conftest",
		"configconfig", "def ", "class ", "for ", "while ", "undef ", "xfor ", "=", "==",
		" ", "  ", "\n", "\n\n", "(", "):", ".", "_", "__", "x_1",
	};
	static const char *const odd[] = { "\r\n", "\t", "\x0c", "\xc3\xa9", "ab\303\251cd", "\x80",
					   "\r", "\x1c" };
	size_t k = 0;
	while (k < n) {
		unsigned r = below(100);
		if (r < 25) {	/* pad to just before or after a multiple of 32 */
			size_t to = (k / 32 + 1) * 32 - 6 + below(9);
			while (k < to)
				k = below(4) ? (buf[k] = ' ', k + 1) : put_ident(buf, k, 1);
		}
		const char *w = NULL;
		if (rare && r % 50 == 7)
			w = odd[below(sizeof odd / sizeof *odd)];
		else if (r < 55)
			w = words[below(sizeof words / sizeof *words)];
		if (w) {
			memcpy(buf + k, w, strlen(w));
			k += strlen(w);
		} else {	/* a token: mostly short, sometimes longer than a block */
			k = put_ident(buf, k, 1 + (below(5) ? below(12) : below(130)));
		}
		if (below(2))
			buf[k++] = below(3) ? ' ' : '\n';
	}
	return n;	/* cut anywhere, inside a token too */
}

struct result {
	struct doc_stats st;
	unsigned char hash[16], mh[4 * DOC_MINHASH_PERM];
	uint32_t n_mh;
};

static void measure(struct docstats_ctx *c, const unsigned char *p, size_t n, struct result *r)
{
	memset(r, 0, sizeof *r);
	docstats_compute(c, p, n, &r->st, r->hash, r->mh, &r->n_mh);
}

static int same_result(const struct result *a, const struct result *b)
{
	return !memcmp(&a->st, &b->st, sizeof a->st) && !memcmp(a->hash, b->hash, 16) &&
	       a->n_mh == b->n_mh && !memcmp(a->mh, b->mh, 4 * a->n_mh);
}

static void explain(const struct result *a, const struct result *b)
{
	diag("chars %llu/%llu lines %llu/%llu sum %llu/%llu max %llu/%llu alnum %llu/%llu",
	     (unsigned long long)a->st.n_chars, (unsigned long long)b->st.n_chars,
	     (unsigned long long)a->st.n_lines, (unsigned long long)b->st.n_lines,
	     (unsigned long long)a->st.line_sum, (unsigned long long)b->st.line_sum,
	     (unsigned long long)a->st.line_max, (unsigned long long)b->st.line_max,
	     (unsigned long long)a->st.n_alnum, (unsigned long long)b->st.n_alnum);
	diag("nl %llu/%llu eq %llu/%llu config %llu/%llu test %llu/%llu flags %x/%x tokens %u/%u"
	     " hash %s signature %s", (unsigned long long)a->st.n_newlines,
	     (unsigned long long)b->st.n_newlines, (unsigned long long)a->st.n_eq,
	     (unsigned long long)b->st.n_eq, (unsigned long long)a->st.n_config,
	     (unsigned long long)b->st.n_config, (unsigned long long)a->st.n_test,
	     (unsigned long long)b->st.n_test, a->st.flags, b->st.flags, a->st.n_tokens,
	     b->st.n_tokens, memcmp(a->hash, b->hash, 16) ? "differs" : "same",
	     a->n_mh == b->n_mh && !memcmp(a->mh, b->mh, 4 * a->n_mh) ? "same" : "differs");
}

/* Every document through FAST and REF; the first difference is reported and counted. */
static int differ(struct docstats_ctx *fast, struct docstats_ctx *ref, const unsigned char *p,
		  size_t n, const char *what)
{
	struct result a, b;
	measure(fast, p, n, &a);
	measure(ref, p, n, &b);
	if (same_result(&a, &b))
		return 0;
	diag("%s: %zu bytes differ (fast/reference):", what, n);
	explain(&a, &b);
	return 1;
}

/* AVX512: 0 turns the AVX-512 signature loop off, so that the AVX2 one is tested too on a
 * CPU that has both. */
static void test_fast_paths(enum docstats_minhash scheme, const char *name, int avx512)
{
	struct docstats_ctx fast, ref;
	docstats_init_scheme(&fast, scheme);
	docstats_init_scheme(&ref, scheme);
	ref.reference = 1;
	fast.avx512 &= avx512;
	diag("%s: AVX2 scan %s, SHA instructions %s, AVX-512 signatures %s (off: not in this "
	     "CPU or build)", name, fast.simd ? "on" : "off", fast.sha ? "on" : "off",
	     fast.avx512 ? "on" : "off");
	size_t cap = 300000;
	unsigned char *buf = xmalloc(cap + 64);
	int bad = 0, docs = 0;
	for (size_t n = 0; n <= 200 && bad < 3; n++)	/* every short length, several times */
		for (int r = 0; r < 12 && bad < 3; r++, docs++)
			bad += differ(&fast, &ref, buf, random_doc(buf, n), name);
	for (int r = 0; r < 60 && bad < 3; r++, docs++) {	/* and some large ones */
		size_t n = r < 5 ? cap - below(100) : 1000 + below(40000);
		bad += differ(&fast, &ref, buf, random_doc(buf, n), name);
	}
	/* plain ASCII code, the common case: long runs of blocks without a reference step */
	for (int r = 0; r < 40 && bad < 3; r++, docs++) {
		size_t k = 0, n = 500 + below(20000);
		while (k < n) {
			const char *s = pieces[below(34)];
			size_t l = strlen(s);
			memcpy(buf + k, s, l);
			k += l;
			buf[k++] = below(4) ? ' ' : '\n';
		}
		bad += differ(&fast, &ref, buf, k, name);
	}
	ok(!bad, "%s: %d random documents (lengths 0-200 and up to %zu bytes), fast paths = "
	   "reference", name, docs, cap);
	/* code of a few kinds, cut at every length and in larger pieces */
	bad = docs = 0;
	for (int r = 0; r < 400 && bad < 3; r++, docs++) {
		size_t n = r < 300 ? 60 + (size_t)r : 300 + below(30000);
		bad += differ(&fast, &ref, buf, code_doc(buf, n, r % 4 ? 1000 : 0), name);
	}
	ok(!bad, "%s: %d random documents of ASCII code, fast paths = reference", name, docs);
	/* 64-byte blocks: lengths just below and above multiples of 64, blocks cut anywhere */
	bad = docs = 0;
	for (int r = 0; r < 600 && bad < 3; r++, docs++) {
		size_t n = r < 400 ? 64 * (size_t)(1 + r / 8) + (size_t)(r % 8) - 4
				   : 200 + below(20000);
		bad += differ(&fast, &ref, buf, edge_doc(buf, n, r % 3 == 0), name);
	}
	ok(!bad, "%s: %d documents of tokens and words at block edges, fast paths = reference",
	   name, docs);
	free(buf);
	docstats_free(&fast);
	docstats_free(&ref);
}

/* N tokens whose xxh3-64 falls in the same memo bucket under MASK (< 2^16), found by trying:
 * more than a bucket holds, so that they push each other out. */
#define SAME_BUCKET 7
static void colliding_tokens(size_t mask, char tok[SAME_BUCKET][16])
{
	static unsigned first[1 << 16][SAME_BUCKET], count[1 << 16];
	memset(count, 0, sizeof count);
	for (unsigned i = 0;; i++) {
		char t[16];
		snprintf(t, sizeof t, "tok%u", i);
		size_t j = XXH3_64bits(t, strlen(t)) & mask;
		first[j][count[j]++] = i;
		if (count[j] == SAME_BUCKET) {
			for (int k = 0; k < SAME_BUCKET; k++)
				snprintf(tok[k], 16, "tok%u", first[j][k]);
			return;
		}
	}
}

/* Documents of many shared tokens and some of TOK, in turns, through MEMO and REF. */
static int memo_docs(struct docstats_ctx *memo, struct docstats_ctx *ref,
		     char tok[SAME_BUCKET][16])
{
	int bad = 0;
	char doc[512];
	for (int i = 0; i < 4 * SAME_BUCKET; i++) {
		const char *a = tok[i % SAME_BUCKET], *b = tok[(3 * i + 1) % SAME_BUCKET];
		snprintf(doc, sizeof doc, "x = %s(alpha, beta, gamma) + delta.epsilon[zeta]"
			 " if eta else theta(%s, %s_not)\n", a, b, a);
		bad += differ(memo, ref, (const unsigned char *)doc, strlen(doc), "memo");
	}
	return bad;
}

/* The memo of DATASKETCH keys: signatures equal nettle's without it, whatever came before,
 * also when tokens push each other out of a bucket, or all tokens share one (ds_mask 0). */
static void test_ds_memo(void)
{
	struct docstats_ctx memo, ref;
	docstats_init_scheme(&memo, DOCSTATS_MINHASH_DATASKETCH);
	docstats_init_scheme(&ref, DOCSTATS_MINHASH_DATASKETCH);
	ref.reference = 1;
	char tok[SAME_BUCKET][16];
	colliding_tokens(memo.ds_mask, tok);
	int same = 1;
	for (int k = 1; k < SAME_BUCKET; k++)
		same &= (XXH3_64bits(tok[k], strlen(tok[k])) & memo.ds_mask) ==
			(XXH3_64bits(tok[0], strlen(tok[0])) & memo.ds_mask);
	ok(same, "%d tokens ('%s', '%s', ...) share a memo bucket", SAME_BUCKET, tok[0], tok[1]);
	int bad = memo_docs(&memo, &ref, tok);
	ok(!bad, "... and documents of them in turns get the uncached signatures");
	memo.ds_mask = 0;	/* one bucket: every new token pushes out another */
	bad = memo_docs(&memo, &ref, tok);
	ok(!bad, "so do they with a single memo bucket");
	unsigned char *buf = xmalloc(20000 + 64);
	for (int r = 0; r < 50; r++) {	/* documents sharing most tokens, in any order */
		memo.ds_mask = r < 25 ? 0 : 7;
		size_t n = random_doc(buf, 100 + below(10000));
		bad += differ(&memo, &ref, buf, n, "memo");
	}
	ok(!bad, "memo of 1 and 8 buckets over random documents: signatures = uncached");
	free(buf);
	docstats_free(&memo);
	docstats_free(&ref);
}

/* NONE measures what XXH3 does but for the token set: no signature, n_tokens 0, a flag. */
static void test_none(void)
{
	struct docstats_ctx none, xx;
	docstats_init_scheme(&none, DOCSTATS_MINHASH_NONE);
	docstats_init_scheme(&xx, DOCSTATS_MINHASH_XXH3);
	unsigned char *buf = xmalloc(40000 + 64);
	int bad = 0, signed_xx = 0;
	for (int r = 0; r < 300 && bad < 3; r++) {
		size_t n = random_doc(buf, r < 100 ? (size_t)r : 100 + below(40000));
		struct result a, b;
		measure(&none, buf, n, &a);
		measure(&xx, buf, n, &b);
		signed_xx += b.n_mh != 0;
		int flag_ok = a.st.flags == (b.st.flags | DOC_NO_MINHASH);
		a.st.flags = b.st.flags;
		a.st.n_tokens = b.st.n_tokens;
		if (!flag_ok || a.n_mh || memcmp(&a.st, &b.st, sizeof a.st) ||
		    memcmp(a.hash, b.hash, 16)) {
			diag("none: %zu bytes: n_minhash %u, flags %s", n, a.n_mh,
			     flag_ok ? "ok" : "differ");
			explain(&a, &b);
			bad++;
		}
	}
	ok(!bad && signed_xx > 150, "none: statistics and hash as xxh3's over 300 random documents "
	   "(%d with signatures there), no signature, DOC_NO_MINHASH", signed_xx);
	free(buf);
	docstats_free(&none);
	docstats_free(&xx);
}

int main(void)
{
	docstats_init(&ctx);
	test_empty();
	test_no_final_newline();
	test_crlf_and_breaks();
	test_tabs();
	test_long_line();
	test_invalid_utf8();
	test_non_ascii_identifiers();
	test_flags();
	test_hash();
	test_minhash();
	test_whitespace_tables();
	test_fast_paths(DOCSTATS_MINHASH_XXH3, "xxh3", 1);
	test_fast_paths(DOCSTATS_MINHASH_XXH3, "xxh3 without AVX-512", 0);
	test_fast_paths(DOCSTATS_MINHASH_DATASKETCH, "datasketch", 1);
	test_fast_paths(DOCSTATS_MINHASH_DATASKETCH, "datasketch without AVX-512", 0);
	test_fast_paths(DOCSTATS_MINHASH_NONE, "none", 1);
	test_none();
	test_ds_memo();
	docstats_free(&ctx);
	return done_testing();
}
