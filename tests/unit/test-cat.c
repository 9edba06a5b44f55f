/* test-cat: cp-cat on crafted shards that no cp tool writes (issue 17). Records are made with
 * the shard library, cp-cat ($BUILD/bin/cp-cat) is run on them: a document whose meta is not
 * one JSON object (text after it, unterminated, an array, a line break, two objects) is
 * refused naming the file and record, after the records before it; valid metas, those the
 * JSON-lines parser lets through included (a lone surrogate escape, a huge integer), are
 * printed as they are; a token shard whose ids are 3 bytes wide is refused naming the file,
 * one 4 bytes wide prints the ids written. */
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "shard/doc.h"
#include "shard/shard.h"
#include "shard/tokrec.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-cat.XXXXXX";
static char *cat;

/* a document shard of records whose metas are META (NULL-terminated) */
static char *docs_shard(const char *name, const char *const *meta)
{
	char *path = xasprintf("%s/%s", dir, name);
	uint64_t param[2] = { 0, 0 };
	struct shard_writer *w = shard_create(path, SHARD_DOCS, param);
	struct buf b = { 0 };
	for (size_t i = 0; w && meta[i]; i++) {
		struct doc d = { .id = i, .origin = "x.py", .origin_len = 4, .meta = meta[i],
				 .meta_len = strlen(meta[i]), .content = "pass\n", .content_len = 5,
				 .size = 5 };
		buf_reset(&b);
		doc_encode(&b, &d);
		shard_write(w, b.p, b.len);
	}
	ok(w && !shard_close(w), "wrote %s", name);
	buf_free(&b);
	return path;
}

/* cp-cat ARGS PATH: its exit status; its stdout and stderr into *out and *err */
static int run(const char *args, const char *path, char **out, char **err)
{
	char *cmd = xasprintf("'%s' %s '%s' >'%s/out' 2>'%s/err'", cat, args, path, dir, dir);
	int st = system(cmd);
	free(cmd);
	size_t n;
	char *o = xasprintf("%s/out", dir), *e = xasprintf("%s/err", dir);
	cp_quiet = 1;
	*out = read_file(o, &n);
	*err = read_file(e, &n);
	cp_quiet = 0;
	unlink(o);
	unlink(e);
	free(o);
	free(e);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void bad_meta(const char *what, const char *meta)
{
	const char *metas[] = { "{\"ok\":1}", meta, NULL };
	char *path = docs_shard("bad.shard", metas), *out, *err;
	is_int(run("", path, &out, &err), 1, "meta %s: refused", what);
	char *want = xasprintf("'%s': record 1: its meta is not one JSON object", path);
	ok(err && strstr(err, want), "  ... naming the file and record");
	ok(out && strstr(out, "\"meta\":{\"ok\":1}") && !strchr(strchr(out, '\n') + 1, '\n'),
	   "  ... after printing the record before it, and nothing of this one");
	free(want);
	free(out);
	free(err);
	unlink(path);
	free(path);
}

static void metas(void)
{
	bad_meta("with a key added after it", "{\"a\":1},\"origin\":\"evil\",\"b\":{}");
	bad_meta("unterminated", "{\"a\":\"x}");
	bad_meta("an array", "[1,2]");
	bad_meta("with a line break", "{\"a\":\n1}");
	bad_meta("of two objects", "{\"a\":1}{\"b\":2}");
	bad_meta("not JSON", "{a:1}");
	bad_meta("a lone brace", "{");
	const char *good[] = { "{\"a\":\"\\udc80\",\"n\":123456789012345678901234567890}", "{}",
			       "", "{\"x\":[1,{\"y\":null}]}", NULL };
	char *path = docs_shard("good.shard", good), *out, *err;
	is_int(run("", path, &out, &err), 0, "valid metas are printed");
	ok(out && strstr(out, "\"meta\":{\"a\":\"\\udc80\",\"n\":123456789012345678901234567890}") &&
	   strstr(out, "\"meta\":{\"x\":[1,{\"y\":null}]}"), "  ... as they are");
	free(out);
	free(err);
	unlink(path);
	free(path);
}

static char *tokens_shard(const char *name, unsigned width)
{
	char *path = xasprintf("%s/%s", dir, name);
	uint64_t param[2] = { 70000, width };
	struct shard_writer *w = shard_create(path, SHARD_TOKENS, param);
	unsigned char rec[8 + 3 * 4] = { 7 };
	uint32_t ids[3] = { 1, 65537, 69999 };
	for (int i = 0; i < 3; i++)
		for (unsigned k = 0; k < width; k++)
			rec[8 + i * width + k] = (unsigned char)(ids[i] >> (8 * k));
	ok(w && !shard_write(w, rec, 8 + 3 * width) && !shard_close(w), "wrote %s", name);
	return path;
}

static void widths(void)
{
	char *out, *err, *path = tokens_shard("w3.shard", 3);
	is_int(run("", path, &out, &err), 1, "a token shard of 3-byte ids is refused");
	char *want = xasprintf("'%s': a token shard's ids are 2 or 4 bytes wide, not 3", path);
	ok(err && strstr(err, want), "  ... naming the file and the width");
	ok(out && !*out, "  ... printing nothing");
	free(out);
	free(err);
	is_int(run("--header", path, &out, &err), 1, "  ... also with --header");
	free(out);
	free(err);
	unlink(path);
	free(path);
	free(want);
	path = tokens_shard("w4.shard", 4);
	is_int(run("", path, &out, &err), 0, "a token shard of 4-byte ids is printed");
	ok(out && strstr(out, "\"n_tokens\":3,\"tokens\":[1,65537,69999]"), "  ... with the ids written");
	free(out);
	free(err);
	unlink(path);
	free(path);
}

int main(void)
{
	cp_setprogname("test-cat");
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	cat = xasprintf("%s/bin/cp-cat", build);
	if (access(cat, X_OK)) {
		printf("1..0 # SKIP no '%s'\n", cat);
		return 0;
	}
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	metas();
	widths();
	rmdir(dir);
	free(cat);
	return done_testing();
}
