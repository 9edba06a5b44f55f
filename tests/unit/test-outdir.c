/* test-outdir: numbered shard names, output directories, numbering after the shards already
 * there (as cp-dedup --index refreshes append), staging then publishing, stale staging
 * directories of dead runs, and the rotating writer with its removal of stale shards. */
#include "tap.h"
#include "base/die.h"
#include "shard/outdir.h"
#include "shard/shard.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-outdir.XXXXXX";

static char *at(const char *name)
{
	static char p[4][512];
	static int k;
	k = (k + 1) % 4;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

static void touch(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

static int exists(const char *path)
{
	struct stat st;
	return !stat(path, &st);
}

static int text_is(const char *path, const char *want)
{
	char got[64] = { 0 };
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(got, 1, sizeof got - 1, f);
	fclose(f);
	return n == strlen(want) && !memcmp(got, want, n);
}

static void test_names(void)
{
	uint64_t no = 99;
	ok(outdir_parse_name("docs-00000.shard", "docs", &no) && no == 0, "docs-00000.shard is 0");
	ok(outdir_parse_name("docs-00042.shard", "docs", &no) && no == 42, "docs-00042.shard is 42");
	ok(outdir_parse_name("docs-123456.shard", "docs", &no) && no == 123456,
	   "more than five digits: 123456");
	ok(outdir_parse_name("docs-7.shard", "docs", &no) && no == 7, "fewer than five: 7");
	ok(outdir_parse_name("seqs-00003.shard", "seqs", &no) && no == 3, "another prefix");
	static const char *const bad[] = {
		"docs-.shard", "docs-00001.shard.tmp", ".docs-00001.shard.tmp.4242", "docs-00001.shardx",
		"seqs-00001.shard", "docs00001.shard", "docs-1a.shard", "docs--1.shard", "docs-+1.shard",
		"docs- 1.shard", "xdocs-00001.shard", "docs-00001", "docs-99999999999999999999.shard",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		ok(!outdir_parse_name(bad[i], "docs", &no), "'%s' is no docs shard", bad[i]);
	char *p = outdir_shard_path("out", "docs", 3), *q = outdir_shard_path("out/", "docs", 3);
	is_str(p, "out/docs-00003.shard", "path: five digits");
	is_str(q, "out/docs-00003.shard", "a trailing '/' gets no second one");
	free(p);
	free(q);
	p = outdir_shard_path("a/b", "seqs", 123456);
	is_str(p, "a/b/seqs-123456.shard", "more digits when needed");
	free(p);
}

static void test_make(void)
{
	ok(!outdir_make(at("made"), 0), "a new directory");
	ok(!outdir_make(at("made"), 0), "an existing one is fine");
	touch(at("file"), "x");
	is_int(outdir_make(at("file"), 0), -1, "a regular file is refused");
	is_int(outdir_make(at("file"), 1), -1, "... with parents too");
	is_int(outdir_make(at("no/such"), 0), -1, "without parents, a missing parent is an error");
	ok(!outdir_make(at("deep/er/dir"), 1) && exists(at("deep/er/dir")), "with parents: made");
}

/* cp-dedup --index appends: a later run numbers its shards after the highest one there,
 * whatever else is in the directory, and never touches those */
static void test_numbering(void)
{
	outdir_make(at("o"), 0);
	is_int(outdir_next_number(at("o"), "docs"), 0, "an empty directory starts at 0");
	touch(at("o/docs-00000.shard"), "run1-a");
	touch(at("o/docs-00003.shard"), "run1-b");
	touch(at("o/docs-00007.shard.tmp"), "");
	touch(at("o/.docs-00009.shard.tmp.77"), "");
	touch(at("o/seqs-00020.shard"), "");
	touch(at("o/docs-x.shard"), "");
	is_int(outdir_next_number(at("o"), "docs"), 4, "after docs-00003: 4 (temporaries, other "
	       "prefixes and gaps do not count)");
	is_int(outdir_next_number(at("nothere"), "docs"), -1, "a missing directory is an error");

	struct outdir_stage s;
	ok(!outdir_stage_open(&s, at("o"), "cp-dedup", 3), "a staging directory");
	char want[64];
	snprintf(want, sizeof want, "%s/.cp-dedup-%ld", at("o"), (long)getpid());
	is_str(s.dir, want, "named .TOOL-PID in OUTDIR");
	snprintf(want, sizeof want, "%s/part-00002.shard", s.dir);
	is_str(s.paths[2], want, "parts part-NNNNN.shard in it");
	touch(s.paths[0], "run2-a");
	touch(s.paths[2], "run2-c");
	int failed = 0;
	uint64_t next = (uint64_t)outdir_next_number(at("o"), "docs");
	char *a = outdir_stage_publish(&s, 0, at("o"), "docs", next++, &failed);
	char *c = outdir_stage_publish(&s, 2, at("o"), "docs", next++, &failed);
	ok(!failed, "two parts published");
	is_str(a, at("o/docs-00004.shard"), "the first as docs-00004");
	is_str(c, at("o/docs-00005.shard"), "the next as docs-00005");
	ok(text_is(a, "run2-a") && text_is(c, "run2-c"), "with their contents");
	ok(text_is(at("o/docs-00000.shard"), "run1-a") && text_is(at("o/docs-00003.shard"), "run1-b"),
	   "the earlier run's shards are untouched");
	free(a);
	free(c);
	c = outdir_stage_publish(&s, 1, at("o"), "docs", next, &failed);
	ok(failed && !exists(c), "a part that was never written: an error, nothing published");
	free(c);
	touch(s.paths[1], "left");
	s.n = 3;
	outdir_stage_remove(&s);
	ok(!exists(s.paths[1]) && !exists(s.dir), "removing the stage removes its files and itself");
	outdir_stage_free(&s);
	ok(!outdir_stage_open(&s, at("o"), "cp-dedup", 1) && exists(s.dir), "staging again");
	s.n = 0;	/* published: nothing to remove */
	touch(s.paths[0], "x");
	outdir_stage_remove(&s);
	ok(exists(s.paths[0]), "once published (n 0), a removal leaves the paths alone");
	outdir_stage_free(&s);
	is_int(outdir_stage_open(&s, at("file"), "cp-dedup", 1), -1, "no stage in a regular file");
}

static void test_stale_stages(void)
{
	outdir_make(at("st"), 0);
	pid_t child = fork();
	if (!child)
		_exit(0);
	waitpid(child, NULL, 0);	/* now a pid of nobody */
	char name[64];
	snprintf(name, sizeof name, "st/.cp-dedup-%ld", (long)child);
	outdir_make(at(name), 0);
	snprintf(name, sizeof name, "st/.cp-dedup-%ld/part-00000.shard", (long)child);
	touch(at(name), "dead");
	snprintf(name, sizeof name, "st/.cp-dedup-%ld", (long)getppid());
	outdir_make(at(name), 0);
	outdir_make(at("st/.cp-dedup-x"), 0);
	outdir_make(at("st/.cp-hash-1"), 0);
	struct outdir_stage s;
	outdir_stage_open(&s, at("st"), "cp-dedup", 0);
	snprintf(name, sizeof name, "st/.cp-dedup-%ld", (long)child);
	ok(!exists(at(name)), "a dead run's staging directory is removed, with its shards");
	snprintf(name, sizeof name, "st/.cp-dedup-%ld", (long)getppid());
	ok(exists(at(name)), "a live process's is kept");
	ok(exists(at("st/.cp-dedup-x")) && exists(at("st/.cp-hash-1")),
	   "other names and other tools' are kept");
	outdir_stage_remove(&s);
	outdir_stage_free(&s);
}

static int records_in(const char *path, int *first)
{
	struct shard_reader *r = shard_open(path, SHARD_DOCS);
	if (!r)
		return -1;
	const void *rec;
	size_t len;
	int n = 0;
	while (shard_next(r, &rec, &len) == 1) {
		if (!n)
			*first = ((const unsigned char *)rec)[0];
		n++;
	}
	shard_close_reader(r);
	return n;
}

static void write_n(const char *out, int n, uint64_t max_docs, uint64_t max_bytes)
{
	struct outdir_writer w;
	if (outdir_writer_open(&w, out, "docs", SHARD_DOCS, NULL, SHARD_LEVEL_UNSET, 1))
		return;
	w.max_docs = max_docs;
	w.max_bytes = max_bytes;
	for (int i = 0; i < n; i++) {
		unsigned char rec[10] = { (unsigned char)i };
		outdir_writer_write(&w, rec, sizeof rec);
	}
	outdir_writer_finish(&w);
}

static void test_writer(void)
{
	int first = -1;
	write_n(at("w/"), 5, 2, 0);
	is_int(records_in(at("w/docs-00000.shard"), &first), 2, "--shard-docs 2: 2 in the first");
	is_int(records_in(at("w/docs-00002.shard"), &first), 1, "1 in the third");
	is_int(first, 4, "the third begins with record 4");
	touch(at("w/docs-00009.shard.tmp"), "");
	touch(at("w/seqs-00005.shard"), "");
	write_n(at("w"), 5, 0, 25);
	is_int(records_in(at("w/docs-00001.shard"), &first), 2, "25 bytes a shard: 2 records each");
	write_n(at("w"), 3, 0, 0);
	is_int(records_in(at("w/docs-00000.shard"), &first), 3, "a shorter rerun: one shard");
	ok(!exists(at("w/docs-00001.shard")) && !exists(at("w/docs-00002.shard")),
	   "the longer run's later shards are removed");
	ok(exists(at("w/docs-00009.shard.tmp")) && exists(at("w/seqs-00005.shard")),
	   "other files are not");
	write_n(at("w"), 0, 0, 0);
	is_int(records_in(at("w/docs-00000.shard"), &first), 0, "no records: one empty shard");
	write_n(at("one.shard"), 4, 1, 0);
	is_int(records_in(at("one.shard"), &first), 4, "a file takes every record (no limits)");
}

int main(void)
{
	cp_quiet = 1;
	if (!mkdtemp(dir))
		return 1;
	test_names();
	test_make();
	test_numbering();
	test_stale_stages();
	test_writer();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd))
		diag("cannot remove %s", dir);
	return done_testing();
}
