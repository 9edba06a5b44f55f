/* test-atomic: base/atomic.h. A committed file holds exactly what was written and nothing else
 * is left in its directory; an aborted one, a process that dies (exit) or is killed (SIGTERM)
 * with a file open leave neither the target nor a temporary, a forked child's exit leaves the
 * parent's alone; errors are reported (a stream's write error leaves no temporary); the
 * temporaries of dead processes are swept by the next open into their directory, those of live
 * ones and every name not exactly .NAME.tmp.PID stay; io_mkdirs
 * makes nested directories and refuses a file in the way. */
#include "base/atomic.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "tap.h"

#include <dirent.h>
#include <fcntl.h>
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

/* plainly, not through atomic_open, which would sweep the directory first */
static void plant(const char *d, const char *name)
{
	char *p = xasprintf("%s/%s", d, name);
	FILE *fp = fopen(p, "w");
	ok(fp && fputs("stale", fp) >= 0 && !fclose(fp), "planted '%s'", name);
	free(p);
}

static int present(const char *d, const char *name)
{
	char *p = xasprintf("%s/%s", d, name);
	struct stat st;
	int r = !lstat(p, &st);
	free(p);
	return r;
}

/* the PID of a child that has exited and been reaped: no process has it (barring reuse) */
static pid_t dead_pid(void)
{
	pid_t pid = fork();
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return pid;
}

static void stale(void)
{
	char *d = xasprintf("%s/stale", dir);
	ok(mkdir(d, 0777) == 0, "a directory for stale temporaries");
	pid_t dead = dead_pid(), live = fork();
	if (live == 0) {
		pause();
		_exit(0);
	}
	char *names[] = {
		xasprintf(".a.bin.tmp.%ld", (long)dead),	/* 0: removed */
		xasprintf(".x.tmp.y.tmp.%ld", (long)dead),	/* 1: removed (the last .tmp. counts) */
		xasprintf(".a.bin.tmp.%ld", (long)live),	/* 2..: kept */
		xasprintf("a.bin.tmp.%ld", (long)dead),
		xasprintf(".a.bin.tmp.%ldx", (long)dead),
		xasprintf(".a.bin.tmp.0%ld", (long)dead),
		xasprintf("..tmp.%ld", (long)dead),
		xasprintf(".a.bin.tmp.%ld.part", (long)dead),
		xasprintf(".a.bin.tmp."),
		xasprintf(".a.bin.tmp.%ld", (long)getpid()),
	};
	size_t n = sizeof names / sizeof *names;
	for (size_t i = 0; i < n; i++)
		plant(d, names[i]);
	char *sub = xasprintf("%s/.sub.tmp.%ld", d, (long)dead);
	ok(mkdir(sub, 0777) == 0, "and a directory named like one");
	char *target = xasprintf("%s/new.bin", d);
	ok(atomic_write_file(target, "new", 3) == 0, "a file written into that directory");
	ok(!present(d, names[0]) && !present(d, names[1]), "removes the dead process's temporaries");
	int kept = 1;
	for (size_t i = 2; i < n; i++)
		if (!present(d, names[i])) {
			kept = 0;
			diag("'%s' was removed", names[i]);
		}
	ok(kept, "keeps a live process's, this process's and every other name");
	struct stat st;
	ok(!stat(sub, &st) && S_ISDIR(st.st_mode), "keeps a directory");
	plant(d, names[0]);
	ok(atomic_write_file(target, "new", 3) == 0 && present(d, names[0]),
	   "the directory is listed once per process");
	is_int(atomic_sweep_stale(d), 1, "atomic_sweep_stale removes it when called");
	is_int(atomic_sweep_stale(d), 0, "and then finds nothing more");
	cp_quiet = 1;
	is_int(atomic_sweep_stale("/nonexistent/dir"), -1, "a missing directory is -1");
	cp_quiet = 0;
	kill(live, SIGKILL);
	waitpid(live, NULL, 0);
	is_int(atomic_sweep_stale(d), 1, "once the live process is gone, its temporary is removed");
	for (size_t i = 2; i < n; i++) {
		char *p = xasprintf("%s/%s", d, names[i]);
		unlink(p);
		free(p);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	unlink(target);
	rmdir(sub);
	rmdir(d);
	free(sub);
	free(target);
	free(d);
}

/* a stream whose writes fail (the disk full) is refused and leaves no temporary */
static void stream_error(void)
{
	char *path = xasprintf("%s/report.json", dir);
	struct atomic_stream s;
	int full = open("/dev/full", O_WRONLY);
	ok(full >= 0, "/dev/full opens");
	ok(atomic_fopen(&s, path) == 0, "a report stream");
	char *tmp = xstrdup(s.f.tmp);
	dup2(full, s.f.fd);
	close(full);
	for (int i = 0; i < 10000; i++)
		fprintf(s.fp, "line %d\n", i);
	cp_quiet = 1;
	ok(atomic_fclose(&s) == -1, "a write error on it is an error");
	cp_quiet = 0;
	struct stat st;
	ok(stat(tmp, &st) != 0 && stat(path, &st) != 0, "and leaves neither temporary nor target");
	free(tmp);
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
	stale();
	stream_error();
	is_int(entries(dir), 0, "the directory is empty at the end");
	rmdir(dir);
	return done_testing();
}
