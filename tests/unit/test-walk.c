/* test-walk: the directory walk, alone and shared. A tree with what makes walks go wrong (names
 * that sort around '/', symbolic links to files, to directories before and after them and to
 * their own parents, dangling and self-looping links, files over the size limit, a deep chain
 * and a wide level) is walked by walk_run, and by 1, 2, 3 and 5 readers at once with
 * walk_tree_read (threads here, their listings passed in memory): every reader must call the
 * callback on the same paths, with the same sizes, in the same order, and count the same
 * skips, as the walk alone, over two roots where the second holds the first. */
#include "scratch.h"
#include "tap.h"
#include "base/buf.h"
#include "base/die.h"
#include "input/walk.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-walk.XXXXXX";
static const char *const patterns[] = { "*.py" };
#define MAX_SIZE 4096

static char *at(const char *name)
{
	return scratch_path(dir, name);
}

static void put(const char *name, size_t n)
{
	FILE *f = fopen(at(name), "wb");
	for (size_t i = 0; i < n; i++)
		fputc('a' + (int)(i % 26), f);
	fclose(f);
}

static void dirs(const char *name)
{
	char cmd[700];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", at(name));
	if (system(cmd))
		diag("mkdir %s failed", name);
}

static void link_to(const char *target, const char *name)
{
	if (symlink(target, at(name)))
		diag("symlink %s: %s", name, strerror(errno));
}

static void make_tree(void)
{
	dirs("t/a.b");
	dirs("t/a");
	put("t/b.py", 10);
	put("t/a.py", 11);
	put("t/a.txt", 12);
	put("t/a.b/x.py", 13);
	put("t/a/y.py", 14);
	put("t/a0.py", 15);
	put("t/a-b.py", 16);
	put("t/big.py", MAX_SIZE + 1);
	dirs("t/d1/d2/d3/d4/d5/d6/d7/d8/d9");
	put("t/d1/d2/d3/d4/d5/d6/d7/d8/d9/z.py", 17);
	put("t/d1/d2/d3/d4/one.py", 18);
	link_to("..", "t/d1/d2/up");
	for (int k = 0; k < 120; k++) {
		char name[64];
		snprintf(name, sizeof name, "t/w/k%03d/sub", k);
		dirs(name);
		snprintf(name, sizeof name, "t/w/k%03d/f.py", k);
		put(name, (size_t)(20 + k));
		if (k % 7 == 0) {
			snprintf(name, sizeof name, "t/w/k%03d/sub/g.py", k);
			put(name, (size_t)(30 + k));
		}
	}
	link_to("../w/k005", "t/a/later");	/* a directory walked after, reached first here */
	link_to("a.b", "t/z-earlier");		/* one walked before: skipped */
	link_to("nowhere.py", "t/a/dead.py");	/* cannot stat */
	link_to("self.py", "t/a/self.py");	/* ELOOP */
	link_to("../b.py", "t/a/file-link.py");	/* a file through a link: taken */
	dirs("t/locked");
	put("t/locked/in.py", 19);
	chmod(at("t/locked"), 0);		/* unreadable, unless the test runs as root */
}

struct seen {
	struct buf list;	/* "path size\n" per file */
	struct walk_counts counts;
};

static int collect(void *arg, const char *path, const struct stat *st)
{
	struct seen *s = arg;
	size_t dl = strlen(dir);	/* the paths below the scratch directory */
	buf_printf(&s->list, "%s %lld %d\n", strncmp(path, dir, dl) ? path : path + dl,
		   (long long)st->st_size, S_ISREG(st->st_mode));
	return 0;
}

static const char *roots[2];

static void walk_alone(struct seen *s)
{
	struct walker *w = walk_new(patterns, 1, MAX_SIZE);
	for (int i = 0; i < 2; i++)
		walk_run(w, roots[i], collect, s);
	s->counts = *walk_get_counts(w);
	walk_free(w);
}

struct share {
	pthread_barrier_t bar;
	struct buf slot[8];
};

struct reader {
	struct share *sh;
	int me, n;
	struct seen got;
};

static void share_fn(void *arg, struct buf *b)
{
	struct reader *r = arg;
	struct buf *mine = &r->sh->slot[r->me];
	buf_reset(mine);
	buf_put(mine, b->p, b->len);
	pthread_barrier_wait(&r->sh->bar);
	buf_reset(b);
	for (int j = 0; j < r->n; j++)
		buf_put(b, r->sh->slot[j].p, r->sh->slot[j].len);
	pthread_barrier_wait(&r->sh->bar);	/* every reader has them before the next level */
}

static void *read_shared(void *arg)
{
	struct reader *r = arg;
	struct walker *w = walk_new(patterns, 1, MAX_SIZE);
	for (int i = 0; i < 2; i++) {
		struct walk_tree *t = walk_tree_read(w, roots[i], r->me, r->n, share_fn, r);
		walk_tree_run(w, t, collect, &r->got);
		walk_tree_free(t);
	}
	r->got.counts = *walk_get_counts(w);
	walk_free(w);
	return NULL;
}

static int same_counts(const struct walk_counts *a, const struct walk_counts *b)
{
	return a->files == b->files && a->too_large == b->too_large &&
	       a->unreadable == b->unreadable && a->loops == b->loops;
}

static void check_readers(const struct seen *alone, int n)
{
	struct share sh;
	memset(&sh, 0, sizeof sh);
	pthread_barrier_init(&sh.bar, NULL, (unsigned)n);
	struct reader r[8];
	pthread_t th[8];
	for (int i = 0; i < n; i++) {
		r[i] = (struct reader){ .sh = &sh, .me = i, .n = n };
		pthread_create(&th[i], NULL, read_shared, &r[i]);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < n; i++) {
		int same = r[i].got.list.len == alone->list.len &&
			   !memcmp(r[i].got.list.p, alone->list.p, alone->list.len);
		ok(same, "%d readers: reader %d gives the files, sizes and order of the walk alone",
		   n, i);
		ok(same_counts(&r[i].got.counts, &alone->counts),
		   "%d readers: reader %d counts what the walk alone counts", n, i);
		buf_free(&r[i].got.list);
	}
	for (int j = 0; j < 8; j++)
		buf_free(&sh.slot[j]);
	pthread_barrier_destroy(&sh.bar);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	make_tree();
	char r0[600], r1[600];
	snprintf(r0, sizeof r0, "%s", at("t/w/k003"));
	snprintf(r1, sizeof r1, "%s/", at("t"));	/* a trailing slash is the same root */
	roots[0] = r0;
	roots[1] = r1;
	cp_quiet = 1;	/* the warnings: every reader would print them; t2007 compares them */

	struct seen alone;
	memset(&alone, 0, sizeof alone);
	walk_alone(&alone);
	buf_putc(&alone.list, 0);
	alone.list.len--;
	const char *l = (const char *)alone.list.p;
	ok(strstr(l, "/t/a-b.py 16 1\n/t/a.b/x.py 13 1\n/t/a.py 11 1\n/t/a/") != NULL,
	   "names sort by bytes with '/' after a directory's name");
	ok(strstr(l, "/t/a/file-link.py 10 1\n") != NULL, "a link to a file is taken, its size");
	ok(strstr(l, "/t/a/later/f.py 25 1\n") != NULL && !strstr(l, "/t/w/k005/f.py"),
	   "a directory reached first through a link is walked there, not again");
	ok(!strstr(l, "z-earlier") && !strstr(l, "/up/") && !strstr(l, "big.py") &&
	   !strstr(l, "a.txt"), "no loop, no file over the limit, no file the patterns leave");
	ok(strstr(l, "/d9/z.py 17 1\n") != NULL, "a deep chain is walked to its end");
	is_int(alone.counts.too_large, 1, "the large file counted");
	ok(alone.counts.loops >= 4, "the second root's start, the links back and the up-link "
	   "counted as loops (%llu)", (unsigned long long)alone.counts.loops);
	ok(alone.counts.unreadable >= 2, "the dangling and the self-looping link counted (%llu)",
	   (unsigned long long)alone.counts.unreadable);
	if (geteuid())
		ok(!strstr(l, "/locked/"), "an unreadable directory is passed over");
	for (int n = 1; n <= 5; n++)
		if (n != 4)
			check_readers(&alone, n);
	buf_free(&alone.list);
	chmod(at("t/locked"), 0755);
	scratch_remove(dir);
	return done_testing();
}
