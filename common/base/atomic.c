/* atomic.c: temporaries renamed over their targets, and the registry that removes the
 * temporaries of a killed or failing process (see atomic.h). */
#include "base/atomic.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Open files; the signal handler walks the list without the lock (best effort: a file being
 * registered at the very moment of the signal may be missed). */
static struct atomic_file *volatile live;
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static int exit_hooked;

static void remove_at_exit(void)
{
	atomic_abort_all();
}

static void live_add(struct atomic_file *f)
{
	pthread_mutex_lock(&live_lock);
	if (!exit_hooked) {
		exit_hooked = 1;
		atexit(remove_at_exit);
	}
	f->next = live;
	live = f;
	pthread_mutex_unlock(&live_lock);
}

static void live_remove(struct atomic_file *f)
{
	pthread_mutex_lock(&live_lock);
	for (struct atomic_file *volatile *p = &live; *p; p = &(*p)->next)
		if (*p == f) {
			*p = f->next;
			break;
		}
	pthread_mutex_unlock(&live_lock);
}

char *atomic_tmp_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t dirlen = slash ? (size_t)(slash - path + 1) : 0;
	return xasprintf("%.*s.%s.tmp.%ld", (int)dirlen, path, path + dirlen, (long)getpid());
}

/* the PID of a name .NAME.tmp.PID, or 0 when the name is not exactly that */
static pid_t stale_pid(const char *name)
{
	if (name[0] != '.')
		return 0;
	const char *tag = NULL;
	for (const char *p = strstr(name + 1, ".tmp."); p; p = strstr(p + 1, ".tmp."))
		tag = p;
	if (!tag || tag == name + 1)
		return 0;
	const char *d = tag + 5;
	if (*d < '1' || *d > '9' || strspn(d, "0123456789") != strlen(d) || strlen(d) > 9)
		return 0;
	return (pid_t)atol(d);
}

int atomic_sweep_stale(const char *dir)
{
	DIR *dp = opendir(dir);
	if (!dp)
		return -1;
	pid_t self = getpid();
	int n = 0;
	for (struct dirent *e; (e = readdir(dp));) {
		pid_t pid = stale_pid(e->d_name);
		struct stat st;
		if (!pid || pid == self || !(kill(pid, 0) && errno == ESRCH))
			continue;
		if (!fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) && S_ISREG(st.st_mode) &&
		    !unlinkat(dirfd(dp), e->d_name, 0))
			n++;
	}
	closedir(dp);
	return n;
}

/* Directories already swept by this process, named as the paths gave them: one listing each,
 * however many files a tool writes there. (Not by inode: a directory removed and made again
 * may get the old one's inode, and a second listing costs less than a missed one.) */
static char **swept;
static size_t n_swept;
static pthread_mutex_t swept_lock = PTHREAD_MUTEX_INITIALIZER;

static void sweep_once(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? xasprintf("%.*s", (int)(slash - path + 1), path) : xstrdup("./");
	pthread_mutex_lock(&swept_lock);
	size_t i = 0;
	while (i < n_swept && strcmp(swept[i], dir))
		i++;
	if (i == n_swept) {
		swept = xreallocarray(swept, n_swept + 1, sizeof *swept);
		swept[n_swept++] = dir;
		atomic_sweep_stale(dir);
	} else {
		free(dir);
	}
	pthread_mutex_unlock(&swept_lock);
}

/* The tool's other threads go on while the signal handler cleans up: a file one of them is
 * creating or renaming at that moment must be on the list, or renamed, before the handler
 * sweeps, and none may start after. So each creation and rename is counted in flight; the
 * handler sets DYING, waits (a bounded time) for the count to drop to zero, then sweeps; a
 * thread that finds DYING set creates and renames nothing and waits for the end. */
static atomic_int dying, inflight;
static void (*volatile signal_extra)(void);

static void enter(void)
{
	atomic_fetch_add(&inflight, 1);
	if (atomic_load(&dying)) {
		atomic_fetch_sub(&inflight, 1);
		for (;;)
			pause();	/* the handler's thread ends the process */
	}
}

static void leave(void)
{
	atomic_fetch_sub(&inflight, 1);
}

int atomic_open(struct atomic_file *f, const char *path)
{
	memset(f, 0, sizeof(*f));
	sweep_once(path);
	f->tmp = atomic_tmp_name(path);
	f->path = xstrdup(path);
	f->pid = getpid();
	enter();
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (f->fd >= 0)
		live_add(f);
	leave();
	if (f->fd < 0) {
		error_errno("cannot create '%s'", f->tmp);
		free(f->tmp);
		free(f->path);
		f->tmp = f->path = NULL;
		return -1;
	}
	return 0;
}

int atomic_write(struct atomic_file *f, const void *p, size_t n)
{
	/* in pieces: one write() moves at most about 2 GiB */
	const char *s = p;
	while (n) {
		size_t k = n > (1u << 30) ? (1u << 30) : n;
		if (write_full(f->fd, s, k))
			return error_errno("cannot write '%s'", f->tmp);
		s += k;
		n -= k;
		f->written += k;
	}
	return 0;
}

static void release(struct atomic_file *f)
{
	live_remove(f);
	free(f->path);
	free(f->tmp);
	f->path = f->tmp = NULL;
	f->fd = -1;
}

/* read once: a tool's writers all follow the same policy */
static atomic_int sync_all = -1;

void atomic_sync_all_on(void)
{
	atomic_store(&sync_all, 1);
}

int atomic_sync_all(void)
{
	int k = atomic_load(&sync_all);
	if (k < 0) {
		const char *e = getenv("CP_SYNC");
		k = e && *e && strcmp(e, "0");
		atomic_store(&sync_all, k);
	}
	return k;
}

int atomic_commit(struct atomic_file *f)
{
	int ret = 0;
	/* EINVAL: a file system that cannot sync this kind of file; nothing to lose */
	if ((!f->no_sync || atomic_sync_all()) && fsync(f->fd) && errno != EINVAL)
		ret = error_errno("cannot sync '%s'", f->tmp);
	if (close(f->fd) && !ret)
		ret = error_errno("cannot close '%s'", f->tmp);
	if (!ret) {
		enter();
		if (rename(f->tmp, f->path))
			ret = error_errno("cannot rename '%s' to '%s'", f->tmp, f->path);
		leave();
	}
	if (ret)
		unlink(f->tmp);
	release(f);
	return ret;
}

void atomic_abort(struct atomic_file *f)
{
	if (!f->tmp)
		return;
	close(f->fd);
	unlink(f->tmp);
	release(f);
}

int atomic_write_file(const char *path, const void *p, size_t n)
{
	struct atomic_file f;
	if (atomic_open(&f, path))
		return -1;
	if (atomic_write(&f, p, n)) {
		atomic_abort(&f);
		return -1;
	}
	return atomic_commit(&f);
}

int atomic_fopen(struct atomic_stream *s, const char *path)
{
	if (atomic_open(&s->f, path))
		return -1;
	s->fp = fdopen(s->f.fd, "w");
	if (!s->fp) {
		error_errno("cannot open '%s'", s->f.tmp);
		atomic_abort(&s->f);
		return -1;
	}
	return 0;
}

int atomic_fclose(struct atomic_stream *s)
{
	int ret = 0;
	if (fflush(s->fp) || ferror(s->fp))
		ret = error_errno("cannot write '%s'", s->f.tmp);
	/* the descriptor stays open for atomic_commit's fsync; fclose would close it */
	int fd = dup(s->f.fd);
	if (fd < 0 && !ret)
		ret = error_errno("cannot write '%s'", s->f.tmp);
	fclose(s->fp);
	s->fp = NULL;
	s->f.fd = fd;
	if (ret) {
		atomic_abort(&s->f);
		return -1;
	}
	return atomic_commit(&s->f);
}

void atomic_fabort(struct atomic_stream *s)
{
	int fd = dup(s->f.fd);
	fclose(s->fp);
	s->fp = NULL;
	s->f.fd = fd;
	atomic_abort(&s->f);
}

void atomic_abort_all(void)
{
	/* a forked child (the sandbox's, before exec) leaves its parent's temporaries alone */
	pid_t self = getpid();
	for (struct atomic_file *f = live; f; f = f->next)
		if (f->tmp && f->pid == self)
			unlink(f->tmp);
}

static void on_signal(int sig)
{
	atomic_store(&dying, 1);
	/* up to a second for files being created or renamed (not forever: this thread may be
	 * the one interrupted in the middle of one) */
	struct timespec ms = { 0, 1000000 };
	for (int i = 0; i < 1000 && atomic_load(&inflight) > 0; i++)
		nanosleep(&ms, NULL);
	atomic_abort_all();
	if (signal_extra)
		signal_extra();
	signal(sig, SIG_DFL);
	raise(sig);
}

void atomic_cleanup_on_signal(void (*extra)(void))
{
	int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	signal_extra = extra;
	for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		sigaction(sigs[i], &sa, NULL);
	}
}
