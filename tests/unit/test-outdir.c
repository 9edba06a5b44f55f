/* test-outdir: numbered shard names, output directories, numbering after the shards already
 * there (as cp-dedup --index refreshes append), staging then publishing, stale staging
 * directories of dead runs, and the rotating writer with its removal of stale shards; set
 * manifests (shard/set.h): their text, what a directory reader takes and refuses, the
 * writer's staged set committed whole or not at all, named sets merged. */
#include "scratch.h"
#include "tap.h"
#include "base/die.h"
#include "base/buf.h"
#include "base/io.h"
#include "shard/outdir.h"
#include "shard/set.h"
#include "shard/shard.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-outdir.XXXXXX";

static char *at(const char *name)
{
	return scratch_path(dir, name);
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

static int parses(const char *text)
{
	struct shardset s;
	int r = shardset_parse(&s, text, strlen(text), "m");
	shardset_free(&s);
	return !r;
}

static void test_manifest_text(void)
{
	struct shardset s = { 0 }, back;
	ok(parses("cp-shard-set 1\n"), "an empty set");
	static const char text[] = "cp-shard-set 1\n"
				   "a-00000.shard 100 3 00000000000000ff\n"
				   "b.shard 18446744073709551615 0 fedcba9876543210\n";
	ok(!shardset_parse(&s, text, strlen(text), "m") && s.n == 2, "two entries parsed");
	ok(!strcmp(s.e[0].name, "a-00000.shard") && s.e[0].bytes == 100 && s.e[0].records == 3 &&
	   s.e[0].check == 0xff, "... the first's fields");
	ok(s.e[1].bytes == UINT64_MAX && s.e[1].check == 0xfedcba9876543210ULL,
	   "... the second's, at the limits");
	struct buf b = { 0 };
	shardset_format(&s, &b);
	ok(b.len == strlen(text) && !memcmp(b.p, text, b.len), "formatted back to the same text");
	ok(!shardset_parse(&back, (const char *)b.p, b.len, "m") && back.n == 2 &&
	   shardset_find(&back, "b.shard") == 1 && shardset_find(&back, "c.shard") == -1,
	   "and parsed again; find by name");
	shardset_free(&back);
	buf_free(&b);
	shardset_free(&s);
	ok(!parses(""), "refused: empty");
	ok(!parses("cp-shard-set 2\n"), "refused: a later version");
	ok(!parses("cp-shard-sex 1\n"), "refused: another magic");
	ok(!parses("cp-shard-set 1\na.shard 1 1 0"), "refused: cut short (no newline)");
	ok(!parses("cp-shard-set 1\na.shard 1 1 0\na.shard 2 2 0\n"), "refused: a name twice");
	ok(!parses("cp-shard-set 1\n.a.shard 1 1 0\n"), "refused: a hidden name");
	ok(!parses("cp-shard-set 1\na.txt 1 1 0\n"), "refused: not a .shard");
	ok(!parses("cp-shard-set 1\nd/a.shard 1 1 0\n"), "refused: a path");
	ok(!parses("cp-shard-set 1\na.shard 1 x 0\n"), "refused: a count that is no number");
}

static size_t list_dir(const char *d, char ***list)
{
	char *in[1] = { (char *)d };
	return shard_list(in, 1, list);
}

/* Does shard_list refuse D (exit 1 in a child)? */
static int list_refused(const char *d)
{
	fflush(stdout);
	pid_t pid = fork();
	if (!pid) {
		char **l;
		list_dir(d, &l);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 1;
}

static int hidden_left(const char *d)
{
	DIR *dd = opendir(d);
	struct dirent *de;
	int n = 0;
	while (dd && (de = readdir(dd)))
		n += de->d_name[0] == '.' && strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		     strcmp(de->d_name, SHARDSET_FILE);
	if (dd)
		closedir(dd);
	return n;
}

static void test_set_writer(void)
{
	int first;
	write_n(at("s/"), 5, 2, 0);
	struct shardset m;
	ok(!shardset_load(at("s"), &m) && m.n == 3, "the writer's set: a manifest of 3 shards");
	int good = m.n == 3;
	for (size_t i = 0; good && i < m.n; i++) {
		char name[48];
		snprintf(name, sizeof name, "s/docs-%05u.shard", (unsigned)i);
		struct stat st;
		good = !strcmp(m.e[i].name, name + 2) && !stat(at(name), &st) &&
		       m.e[i].bytes == (uint64_t)st.st_size &&
		       (int)m.e[i].records == records_in(at(name), &first);
	}
	ok(good, "... in order, each with its size and record count");
	char **l;
	size_t n = list_dir(at("s"), &l);
	ok(n == 3 && !strcmp(l[2], at("s/docs-00002.shard")), "shard_list reads exactly those");
	shard_list_free(l, n);
	ok(!hidden_left(at("s")), "no stage is left");

	/* a run given up half way leaves the old set as it was */
	size_t len1, len2;
	char *before = read_file(at("s/.set"), &len1);
	struct outdir_writer w;
	outdir_writer_open(&w, at("s"), "docs", SHARD_DOCS, NULL, SHARD_LEVEL_UNSET, 1);
	w.max_docs = 1;
	unsigned char rec[10] = { 7 };
	for (int i = 0; i < 4; i++)
		outdir_writer_write(&w, rec, sizeof rec);
	ok(hidden_left(at("s")) == 1, "a run in progress: its stage");
	outdir_writer_abort(&w);
	char *after = read_file(at("s/.set"), &len2);
	ok(before && after && len1 == len2 && !memcmp(before, after, len1) &&
	   records_in(at("s/docs-00000.shard"), &first) == 2 && !exists(at("s/docs-00003.shard")),
	   "given up: the old set is untouched, nothing of the new one is there");
	ok(!hidden_left(at("s")), "... and its stage is removed");
	free(before);
	free(after);

	/* a shard rewritten under the set, a shard gone, no manifest */
	ok(!shardset_check(&m, at("s")), "the set checks");
	write_n(at("s/docs-00001.shard"), 1, 0, 0);
	ok(shardset_check(&m, at("s")) && list_refused(at("s")), "a changed shard is refused");
	unlink(at("s/docs-00001.shard"));
	ok(shardset_check(&m, at("s")) && list_refused(at("s")), "a missing one too");
	unlink(at("s/.set"));
	ok(list_refused(at("s")), "shards without a manifest too");
	mkdir(at("bare"), 0777);
	ok(list_refused(at("bare")), "and a directory without one that holds nothing");
	shardset_free(&m);
	ok(shardset_add_file(&m, at("s/docs-00000.shard.nope"), "x.shard") && !m.n,
	   "no entry for what is not a finished shard");
}

/* Named sets (cp-tokenize's) merge: a later run adds to and replaces in the set. */
static void stage_one(const char *d, const char *name, int nrec)
{
	outdir_make(d, 1);
	struct shardset_stage *st = shardset_stage_open(d);
	char *p = shardset_stage_path(st, name);
	write_n(p, nrec, 0, 0);
	free(p);
	if (shardset_stage_commit(&st, 1, NULL))
		diag("commit failed");
}

static void test_named_sets(void)
{
	int first;
	stage_one(at("n"), "x.shard", 2);
	stage_one(at("n"), "y.shard", 3);
	stage_one(at("n"), "x.shard", 4);
	struct shardset m;
	ok(!shardset_load(at("n"), &m) && m.n == 2 && !strcmp(m.e[0].name, "x.shard") &&
	   m.e[0].records == 4 && !strcmp(m.e[1].name, "y.shard") && m.e[1].records == 3,
	   "named sets merge: x rewritten (4), y kept (3)");
	ok(records_in(at("n/x.shard"), &first) == 4 && !shardset_check(&m, at("n")),
	   "... as they are on disk");
	shardset_free(&m);
	unlink(at("n/y.shard"));
	stage_one(at("n"), "z.shard", 1);
	ok(!shardset_load(at("n"), &m) && m.n == 2 && shardset_find(&m, "y.shard") < 0,
	   "an entry whose shard is gone is dropped");
	shardset_free(&m);
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
	test_manifest_text();
	test_set_writer();
	test_named_sets();
	scratch_remove(dir);
	return done_testing();
}
