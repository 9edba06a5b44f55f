/* test-jsonl: the JSON-lines parser (text field, metadata, escapes, malformed lines) and the
 * line reader over plain, gzip and zstd input (long lines, missing final newline, truncation). */
#include "base/die.h"
#include "input/jsonl.h"
#include "tap.h"
#include "base/xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

static struct buf content, meta;
static struct jsonl_error err;

static int parse(const char *line, const char *field)
{
	return jsonl_parse(line, strlen(line), field, &content, &meta, &err);
}

static int content_is(const char *s, size_t n)
{
	return content.len == n && !memcmp(content.p, s, n);
}

static int meta_is(const char *s)
{
	return meta.len == strlen(s) && !memcmp(meta.p, s, meta.len);
}

static void test_parse(void)
{
	ok(parse("{\"repo_name\":\"a/b\",\"path\":\"x.py\",\"content\":\"def f():\\n\\treturn 1\\n\","
		 "\"license\":\"mit\",\"size\":12}", "content") == 0, "a dataset line parses");
	ok(content_is("def f():\n\treturn 1\n", 19), "content unescaped");
	ok(meta_is("{\"repo_name\":\"a/b\",\"path\":\"x.py\",\"license\":\"mit\",\"size\":12}"),
	   "other members kept, in order, as metadata");
	ok(parse(" { \"text\" : \"x\" , \"n\" : [1, {\"a\": null}, true, -0.5e+3] } \r", "text") == 0 &&
	   content_is("x", 1) && meta_is("{\"n\":[1, {\"a\": null}, true, -0.5e+3]}"),
	   "--field, whitespace, nested values copied verbatim");
	ok(parse("{\"content\":\"x\"}", "content") == 0 && meta.len == 0, "no other member: no metadata");
	ok(parse("{\"content\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"}", "content") == 0 &&
	   content_is("\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80", 14), "every escape, surrogate pair");
	ok(parse("{\"content\":\"a\\udcff\\udc80b\"}", "content") == 0 && content_is("a\xff\x80" "b", 4),
	   "\\udcXX gives back the raw byte");
	ok(parse("{\"content\":\"\\ud800x\"}", "content") == 0 && content_is("\xef\xbf\xbdx", 4),
	   "a lone surrogate becomes U+FFFD");
	ok(parse("{\"content\":\"raw \xff bytes\"}", "content") == 0 && content_is("raw \xff bytes", 11),
	   "raw invalid UTF-8 in the text field is kept");
	ok(parse("{\"content\":\"a\",\"content\":\"b\"}", "content") == 0 && content_is("b", 1) &&
	   meta.len == 0, "a repeated text field: the last wins");
	ok(parse("{\"cont\\u0065nt\":\"e\"}", "content") == 0 && content_is("e", 1),
	   "an escaped member name matches");
	is_int(parse("   \t", "content"), 1, "a blank line is nothing to take");
	is_int(parse("", "content"), 1, "an empty line too");

	static const struct { const char *line, *why; } bad[] = {
		{ "[1]", "not a JSON object" },
		{ "{\"content\":1}", "the text field is not a string" },
		{ "{\"path\":\"x\"}", "no string member with the text field's name" },
		{ "{\"content\":\"x\"", "unexpected end of line" },
		{ "{\"content\":\"x}", "unterminated string" },
		{ "{\"content\":\"x\"} x", "text after the object" },
		{ "{\"content\":\"x\",}", "expected a member name" },
		{ "{\"content\" \"x\"}", "expected ':'" },
		{ "{\"content\":\"\\x\"}", "bad escape in string" },
		{ "{\"content\":\"\\u12g4\"}", "bad \\u escape" },
		{ "{\"content\":\"a\tb\"}", "control character in string" },
		{ "{\"content\":\"x\",\"a\":\"\xff\"}", "invalid UTF-8 in string" },
		{ "{\"content\":\"x\",\"a\":01}", "expected ',' or '}'" },
		{ "{\"content\":\"x\",\"a\":1.}", "bad number" },
		{ "{\"content\":\"x\",\"a\":tru}", "bad value" },
		{ "{\"content\":\"x\",\"a\":[1 2]}", "expected ',' or ']'" },
		{ "{\"content\":\"x\",\"a\":+1}", "expected a value" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		int r = parse(bad[i].line, "content");
		ok(r == -1 && err.why && !strcmp(err.why, bad[i].why), "malformed: %s", bad[i].why);
		if (err.why && strcmp(err.why, bad[i].why))
			diag("got '%s' at byte %zu", err.why, err.offset);
	}
	parse("{\"content\":\"x\",  \"a\":tru}", "content");
	is_int(err.offset, 21, "the error names the byte offset");

	char deep[2000] = "{\"content\":\"x\",\"a\":";
	for (int i = 0; i < 300; i++)
		strcat(deep, "[");
	ok(parse(deep, "content") == -1 && !strcmp(err.why, "nested too deeply"),
	   "deep nesting is refused, not a stack overflow");
}

/* Read every line of an in-memory input; returns the count of 1-results, -1 on error. */
static int read_all(const void *data, size_t n, size_t max_line, char *out, size_t cap, int *skipped)
{
	struct jsonl_reader *r = jsonl_open_mem(data, n, "mem", max_line);
	const char *line;
	size_t len, used = 0;
	int k, lines = 0;
	*skipped = 0;
	out[0] = 0;
	while ((k = jsonl_next(r, &line, &len)) > 0) {
		if (k == 2) {
			(*skipped)++;
			continue;
		}
		lines++;
		if (used + len + 2 < cap) {
			memcpy(out + used, line, len);
			used += len;
			out[used++] = '|';
			out[used] = 0;
		}
	}
	jsonl_close(r);
	return k < 0 ? -1 : lines;
}

static void test_reader(void)
{
	char out[4096];
	int skipped;
	const char *text = "a\nbb\n\nccc";
	ok(read_all(text, strlen(text), 0, out, sizeof out, &skipped) == 4 && !strcmp(out, "a|bb||ccc|"),
	   "plain: lines, an empty one, no final newline");

	/* gzip, two members */
	unsigned char gz[256];
	z_stream zs = { 0 };
	deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
	zs.next_in = (unsigned char *)"x1\nx2\n";
	zs.avail_in = 6;
	zs.next_out = gz;
	zs.avail_out = sizeof gz;
	deflate(&zs, Z_FINISH);
	size_t g1 = sizeof gz - zs.avail_out;
	deflateEnd(&zs);
	unsigned char gz2[512];
	memcpy(gz2, gz, g1);
	memcpy(gz2 + g1, gz, g1);
	ok(read_all(gz2, 2 * g1, 0, out, sizeof out, &skipped) == 4 && !strcmp(out, "x1|x2|x1|x2|"),
	   "gzip with two members");
	cp_quiet = 1;
	ok(read_all(gz, g1 - 5, 0, out, sizeof out, &skipped) == -1, "truncated gzip is an error");

	/* zstd, with a line longer than max_line */
	size_t n = 3 * 1000 * 1000;
	char *big = xmalloc(n);
	memset(big, 'y', n);
	memcpy(big, "one\n", 4);
	big[n - 5] = '\n';
	memcpy(big + n - 4, "two\n", 4);
	size_t zcap = ZSTD_compressBound(n);
	char *z = xmalloc(zcap);
	size_t zn = ZSTD_compress(z, zcap, big, n, 1);
	ok(read_all(z, zn, 1 << 20, out, sizeof out, &skipped) == 2 && skipped == 1 &&
	   !strcmp(out, "one|two|"), "zstd: a line over max_line is skipped, the rest read");
	ok(read_all(z, zn, 4 << 20, out, sizeof out, &skipped) == 3 && skipped == 0,
	   "... and read when it fits");
	ok(read_all(z, zn - 7, 4 << 20, out, sizeof out, &skipped) == -1, "truncated zstd is an error");
	cp_quiet = 0;
	free(big);
	free(z);
}

int main(void)
{
	test_parse();
	test_reader();
	buf_free(&content);
	buf_free(&meta);
	return done_testing();
}
