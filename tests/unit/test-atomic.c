/* test-atomic: base/atomic.h. A committed file holds exactly what was written and nothing else
 * is left in its directory; an aborted one, a process that dies (exit) or is killed (SIGTERM)
 * with a file open leave neither the target nor a temporary, a forked child's exit leaves the
 * parent's alone; errors are reported; io_mkdirs
 * makes nested directories and refuses a file in the way. */
#include "base/atomic.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "tap.h"

#include <dirent.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-atomic.XXXXXX";

/* entries of DIR, hidden ones included (. and .. aside) */
static int entries(const char *d)
{
	DIR *dp = opendir(d);
	int n = 0;
	if (!dp)
		return -1;
	for (struct dirent *e; (e = readdir(dp));)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	cp_quiet = 1;
	char *p = read_file(path, len);
	cp_quiet = 0;
	return p;
}

static void commit_and_abort(void)
{
	char *path = xasprintf("%s/a.bin", dir);
	struct atomic_file f;
	ok(atomic_open(&f, path) == 0, "open");
	char *want_tmp = xasprintf("%s/.a.bin.tmp.%ld", dir, (long)getpid());
	is_str(f.tmp, want_tmp, "the temporary is hidden beside the target");
	struct stat st;
	ok(stat(path, &st) != 0, "no target before commit");
	ok(atomic_write(&f, "hello ", 6) == 0 && atomic_write(&f, "world", 5) == 0, "writes");
	ok(atomic_commit(&f) == 0, "commit");
	size_t len = 0;
	char *got = slurp(path, &len);
	ok(got && len == 11 && !memcmp(got, "hello world", 11), "the target holds the bytes");
	is_int(entries(dir), 1, "only the target is left");
	free(got);

	ok(atomic_open(&f, path) == 0 && atomic_write(&f, "x", 1) == 0, "open over it");
	atomic_abort(&f);
	got = slurp(path, &len);
	ok(got && len == 11, "abort leaves the old target as it was");
	is_int(entries(dir), 1, "and no temporary");
	free(got);

	ok(atomic_write_file(path, "", 0) == 0, "an empty file");
	got = slurp(path, &len);
	ok(got && len == 0, "replaces the target");
	free(got);
	unlink(path);
	free(path);
	free(want_tmp);
}

static void stream(void)
{
	char *path = xasprintf("%s/r.json", dir);
	struct atomic_stream s;
	ok(atomic_fopen(&s, path) == 0, "stream open");
	for (int i = 0; i < 1000; i++)
		fprintf(s.fp, "%d\n", i);
	ok(atomic_fclose(&s) == 0, "stream commit");
	size_t len = 0;
	char *got = slurp(path, &len);
	size_t want = 0;
	for (int i = 0; i < 1000; i++)
		want += (size_t)snprintf(NULL, 0, "%d\n", i);
	ok(got && len == want && !strncmp(got + len - 4, "999\n", 4), "every line is there");
	free(got);
	ok(atomic_fopen(&s, path) == 0, "stream over it");
	fprintf(s.fp, "partial");
	atomic_fabort(&s);
	got = slurp(path, &len);
	ok(got && len == want, "stream abort keeps the old file");
	is_int(entries(dir), 1, "and leaves no temporary");
	free(got);
	unlink(path);
	free(path);
}

/* A child opens a file and then exits (as die() does) or is killed. */
static void child_dies(int how)
{
	char *path = xasprintf("%s/c.bin", dir);
	pid_t pid = fork();
	if (pid == 0) {
		struct atomic_file f;
		if (how == SIGTERM)
			atomic_cleanup_on_signal(NULL);
		if (atomic_open(&f, path) || atomic_write(&f, "half", 4))
			_exit(3);
		if (how == SIGTERM)
			raise(SIGTERM);
		exit(1);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (how == SIGTERM)
		ok(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "the child died of SIGTERM");
	else
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 1, "the child exited 1");
	is_int(entries(dir), 0, "%s: neither target nor temporary is left",
	       how == SIGTERM ? "killed" : "exit");
	free(path);
}

/* A child forked while the parent has a file open exits: the parent's temporary stays. */
static void child_leaves_parent(void)
{
	char *path = xasprintf("%s/p.bin", dir);
	struct atomic_file f;
	ok(atomic_open(&f, path) == 0 && atomic_write(&f, "parent", 6) == 0, "parent opens");
	pid_t pid = fork();
	if (pid == 0)
		exit(0);
	waitpid(pid, NULL, 0);
	struct stat st;
	ok(stat(f.tmp, &st) == 0, "the parent's temporary outlives its child's exit");
	ok(atomic_commit(&f) == 0, "and commits");
	unlink(path);
	free(path);
}

static void errors(void)
{
	char *path = xasprintf("%s/no/such/dir/f", dir);
	struct atomic_file f;
	cp_quiet = 1;
	ok(atomic_open(&f, path) == -1, "a missing directory is an error");
	cp_quiet = 0;
	char *deep = xasprintf("%s/x/y/z", dir);
	ok(io_mkdirs(deep) == 0, "io_mkdirs makes nested directories");
	struct stat st;
	ok(stat(deep, &st) == 0 && S_ISDIR(st.st_mode), "and they are directories");
	ok(io_mkdirs(deep) == 0, "an existing directory is fine");
	char *file = xasprintf("%s/x/file", dir);
	ok(atomic_write_file(file, "1", 1) == 0, "a file");
	char *under = xasprintf("%s/sub", file);
	cp_quiet = 1;
	ok(io_mkdirs(file) == -1 && io_mkdirs(under) == -1, "io_mkdirs refuses a file in the way");
	cp_quiet = 0;
	unlink(file);
	rmdir(deep);
	*strrchr(deep, '/') = 0;
	rmdir(deep);
	*strrchr(deep, '/') = 0;
	rmdir(deep);
	free(path);
	free(deep);
	free(file);
	free(under);
}

int main(void)
{
	cp_setprogname("test-atomic");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	commit_and_abort();
	stream();
	child_dies(0);
	child_dies(SIGTERM);
	child_leaves_parent();
	errors();
	is_int(entries(dir), 0, "the directory is empty at the end");
	rmdir(dir);
	return done_testing();
}
