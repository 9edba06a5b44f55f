/* set.c: set manifests, the one reader of shard directories, and staged sets (set.h). */
#include "shard/set.h"
#include "base/atomic.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "shard/outdir.h"
#include "shard/shard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FOOTER_BYTES 32

static char *join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	return xasprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name);
}

char *shardset_path(const char *dir)
{
	return join(dir, SHARDSET_FILE);
}

/* a base name a set may hold: NAME.shard, not hidden, no blanks or slashes */
static int name_ok(const char *s, size_t n)
{
	size_t e = strlen(SHARD_EXT);
	if (n <= e || s[0] == '.' || memcmp(s + n - e, SHARD_EXT, e))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || (unsigned char)s[i] <= ' ')
			return 0;
	return 1;
}

static void add_entry(struct shardset *s, const char *name, size_t nlen, uint64_t bytes,
		      uint64_t records, uint64_t check)
{
	if (s->n == s->cap)
		s->e = xreallocarray(s->e, s->cap = s->cap ? 2 * s->cap : 16, sizeof *s->e);
	struct shardset_entry *e = &s->e[s->n++];
	e->name = xmalloc(nlen + 1);
	memcpy(e->name, name, nlen);
	e->name[nlen] = 0;
	e->bytes = bytes;
	e->records = records;
	e->check = check;
}

int shardset_parse(struct shardset *s, const char *text, size_t len, const char *where)
{
	memset(s, 0, sizeof *s);
	const char *p = text, *end = text + len;
	int header = 0;
	for (unsigned line = 1; p < end; line++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			goto bad_line;
		char buf[512];
		size_t n = (size_t)(nl - p);
		if (n >= sizeof buf)
			goto bad_line;
		memcpy(buf, p, n);
		buf[n] = 0;
		p = nl + 1;
		if (line == 1) {
			unsigned v;
			char magic[16];
			if (sscanf(buf, "%15s %u", magic, &v) != 2 || strcmp(magic, SHARDSET_MAGIC))
				goto bad_line;
			if (v != SHARDSET_VERSION) {
				error("'%s': set manifest version %u (this cp reads %d)", where, v,
				      SHARDSET_VERSION);
				goto fail;
			}
			header = 1;
			continue;
		}
		unsigned long long bytes, records, check;
		int at = 0;
		if (sscanf(buf, "%*s%n %llu %llu %16llx", &at, &bytes, &records, &check) != 3 ||
		    !name_ok(buf, (size_t)at))
			goto bad_line_at;
		buf[at] = 0;
		if (shardset_find(s, buf) >= 0)
			goto bad_line_at;
		add_entry(s, buf, (size_t)at, bytes, records, check);
		continue;
bad_line_at:
		error("'%s': line %u: not a shard entry (NAME BYTES RECORDS CHECK, names unique)",
		      where, line);
		goto fail;
	}
	if (header)
		return 0;
bad_line:
	error("'%s': not a set manifest (cut short, or not '%s %d' first)", where, SHARDSET_MAGIC,
	      SHARDSET_VERSION);
fail:
	shardset_free(s);
	return -1;
}

void shardset_format(const struct shardset *s, struct buf *b)
{
	buf_printf(b, "%s %d\n", SHARDSET_MAGIC, SHARDSET_VERSION);
	for (size_t i = 0; i < s->n; i++)
		buf_printf(b, "%s %llu %llu %016llx\n", s->e[i].name,
			   (unsigned long long)s->e[i].bytes, (unsigned long long)s->e[i].records,
			   (unsigned long long)s->e[i].check);
}

int shardset_load(const char *dir, struct shardset *s)
{
	memset(s, 0, sizeof *s);
	char *path = shardset_path(dir);
	struct stat st;
	if (stat(path, &st)) {
		int e = errno;
		free(path);
		if (e == ENOENT)
			return 1;
		errno = e;
		return error_errno("cannot stat the set manifest of '%s'", dir);
	}
	size_t len;
	char *text = read_file(path, &len);
	int r = text ? shardset_parse(s, text, len, path) : -1;
	free(text);
	free(path);
	return r;
}

int shardset_write(const char *dir, const struct shardset *s)
{
	struct buf b = { 0 };
	shardset_format(s, &b);
	char *path = shardset_path(dir);
	int r = atomic_write_file(path, b.p, b.len);
	free(path);
	buf_free(&b);
	return r;
}

/* *BYTES and *CHECK of the shard at PATH: 0, 1 when it is missing, -1 when it is no shard */
static int footer_of(const char *path, uint64_t *bytes, uint64_t *check)
{
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return errno == ENOENT ? 1 : -1;
	struct stat st;
	unsigned char f[FOOTER_BYTES];
	int r = -1;
	if (!fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size >= FOOTER_BYTES &&
	    pread(fd, f, sizeof f, st.st_size - FOOTER_BYTES) == FOOTER_BYTES &&
	    !memcmp(f + 24, "CPSEND1\n", 8)) {
		*bytes = (uint64_t)st.st_size;
		*check = rd_u64le(f + 16);
		r = 0;
	}
	close(fd);
	return r;
}

int shardset_add_file(struct shardset *s, const char *path, const char *name)
{
	uint64_t bytes, check;
	if (footer_of(path, &bytes, &check))
		return error("'%s': no finished shard to add to the set", path);
	struct shard_reader *r = shard_open(path, SHARD_ANY);
	if (!r)
		return -1;
	uint64_t records = shard_get_info(r)->n_records;
	shard_close_reader(r);
	add_entry(s, name, strlen(name), bytes, records, check);
	return 0;
}

long shardset_find(const struct shardset *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->e[i].name, name))
			return (long)i;
	return -1;
}

/* The first shard of S that is not in DIR as S says (*MISSING: not there at all), or -1 */
static long first_bad(const struct shardset *s, const char *dir, int *missing)
{
	for (size_t i = 0; i < s->n; i++) {
		char *p = join(dir, s->e[i].name);
		uint64_t bytes = 0, check = 0;
		int r = footer_of(p, &bytes, &check);
		free(p);
		*missing = r > 0;
		if (r || bytes != s->e[i].bytes || check != s->e[i].check)
			return (long)i;
	}
	return -1;
}

static int shardset_check_quiet(const struct shardset *s, const char *dir)
{
	int missing;
	return first_bad(s, dir, &missing) < 0 ? 0 : -1;
}

int shardset_check(const struct shardset *s, const char *dir)
{
	int missing;
	long i = first_bad(s, dir, &missing);
	if (i < 0)
		return 0;
	if (missing)
		return error("'%s': the set manifest names '%s', which is missing", dir,
			     s->e[i].name);
	return error("'%s': '%s' is not the shard the set manifest names (changed since the set "
		     "was written)", dir, s->e[i].name);
}

int shardset_has_shards(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		die_errno("cannot open directory '%s'", dir);
	struct dirent *de;
	int found = 0;
	while (!found && (de = readdir(d)))
		found = de->d_name[0] != '.' && name_ok(de->d_name, strlen(de->d_name));
	closedir(d);
	return found;
}

void shardset_free(struct shardset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->e[i].name);
	free(s->e);
	memset(s, 0, sizeof *s);
}

void shardset_expand(const char *dir, char ***list, size_t *len, size_t *cap)
{
	struct shardset s;
	int r = shardset_load(dir, &s);
	if (r < 0)
		exit(EXIT_ERR);
	/* every finished run writes a manifest, an empty set's too: without one a directory
	 * is what a killed or failed run left (or older than manifests) */
	if (r > 0 && shardset_has_shards(dir))
		die("'%s' holds shards but no set manifest ('%s'): no finished run wrote it "
		    "(one was killed or failed, or it predates set manifests); rerun the stage "
		    "that writes it, or name its shards one by one", dir, SHARDSET_FILE);
	if (r > 0)
		die("'%s' holds no set of shards (no set manifest '%s'): no finished run wrote it",
		    dir, SHARDSET_FILE);
	if (shardset_check(&s, dir))
		exit(EXIT_ERR);
	for (size_t i = 0; i < s.n; i++) {
		if (*len == *cap)
			*list = xreallocarray(*list, *cap = *cap ? 2 * *cap : 16, sizeof **list);
		(*list)[(*len)++] = join(dir, s.e[i].name);
	}
	shardset_free(&s);
}

/* ---- staging ---- */

struct staged {
	char *path, *name;
	struct staged *next;
};
struct shardset_stage {
	char *outdir;
	struct outdir_stage dir;	/* OUTDIR/.stage-PID, no fixed parts */
	struct staged *volatile files;
	pid_t pid;
	struct shardset_stage *volatile next;
};

static struct shardset_stage *volatile stages;	/* the open ones, for the signal handler */
static pthread_mutex_t stage_lock = PTHREAD_MUTEX_INITIALIZER;

static void hold_signals(sigset_t *saved)
{
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &block, saved);
}

/* Remove every entry of the stage directory DIR, ours alone: also a temporary that a writer
 * thread created in the instant before the signal handler swept (raw getdents64 and unlinkat:
 * async-signal-safe). */
static void empty_stage_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[4096];
	long n;
	while ((n = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0)
		for (long off = 0; off < n;) {
			struct dirent64_raw {
				uint64_t ino;
				int64_t off;
				unsigned short reclen;
				unsigned char type;
				char name[];
			} *d = (struct dirent64_raw *)(buf + off);
			if (strcmp(d->name, ".") && strcmp(d->name, ".."))
				unlinkat(fd, d->name, 0);
			off += d->reclen;
		}
	close(fd);
}

void shardset_stage_remove_all(void)
{
	for (struct shardset_stage *st = stages; st; st = st->next) {
		if (st->pid != getpid())
			continue;
		for (struct staged *f = st->files; f; f = f->next)
			unlink(f->path);
		if (st->dir.dir) {
			empty_stage_dir(st->dir.dir);
			rmdir(st->dir.dir);
		}
	}
}

static void remove_at_exit(void)
{
	shardset_stage_remove_all();
}

struct shardset_stage *shardset_stage_open(const char *outdir)
{
	static int registered;
	struct shardset_stage *st = xcalloc(1, sizeof *st);
	/* held from before the directory exists until the handler knows it: a signal in between
	 * would leave a stage nobody removes */
	sigset_t saved;
	hold_signals(&saved);
	if (outdir_stage_open(&st->dir, outdir, "stage", 0)) {
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
		free(st);
		return NULL;
	}
	st->outdir = xstrdup(outdir);
	st->pid = getpid();
	pthread_mutex_lock(&stage_lock);
	if (!registered++)
		atexit(remove_at_exit);
	st->next = stages;
	stages = st;
	pthread_mutex_unlock(&stage_lock);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return st;
}

const char *shardset_stage_dir(const struct shardset_stage *st)
{
	return st->dir.dir;
}

char *shardset_stage_path(struct shardset_stage *st, const char *name)
{
	struct staged *f = xcalloc(1, sizeof *f);
	f->name = xstrdup(name);
	f->path = join(st->dir.dir, name);
	pthread_mutex_lock(&stage_lock);
	f->next = st->files;
	st->files = f;	/* the node is whole before the handler can see it */
	pthread_mutex_unlock(&stage_lock);
	return xstrdup(f->path);
}

/* take ST off the list of open stages and free it; signals are held by the caller */
static void stage_free(struct shardset_stage *st)
{
	pthread_mutex_lock(&stage_lock);
	for (struct shardset_stage *volatile *p = &stages; *p; p = &(*p)->next)
		if (*p == st) {
			*p = st->next;
			break;
		}
	pthread_mutex_unlock(&stage_lock);
	for (struct staged *f = st->files, *nx; f; f = nx) {
		nx = f->next;
		free(f->path);
		free(f->name);
		free(f);
	}
	outdir_stage_free(&st->dir);
	free(st->outdir);
	free(st);
}

void shardset_stage_abort(struct shardset_stage *st)
{
	if (!st)
		return;
	sigset_t saved;
	hold_signals(&saved);
	for (struct staged *f = st->files; f; f = f->next)
		unlink(f->path);
	rmdir(st->dir.dir);
	stage_free(st);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct shardset_entry *)a)->name,
		      ((const struct shardset_entry *)b)->name);
}

/* The manifest of what ST holds, in name order. 0 or -1. */
static int stage_manifest(struct shardset_stage *st, struct shardset *s)
{
	memset(s, 0, sizeof *s);
	for (struct staged *f = st->files; f; f = f->next)
		if (shardset_find(s, f->name) < 0 && shardset_add_file(s, f->path, f->name)) {
			shardset_free(s);
			return -1;
		}
	if (s->n)
		qsort(s->e, s->n, sizeof *s->e, cmp_entry);
	return 0;
}

/* Without PREFIX, the entries of OLD that NEW does not rename and that are still there
 * unchanged join NEW (in name order). */
static void stage_merge(struct shardset *new, const struct shardset *old, const char *dir)
{
	size_t n = new->n;
	for (size_t i = 0; i < old->n; i++) {
		const struct shardset_entry *e = &old->e[i];
		struct shardset one = { (struct shardset_entry *)e, 1, 1 };
		if (shardset_find(new, e->name) < 0 && !shardset_check_quiet(&one, dir))
			add_entry(new, e->name, strlen(e->name), e->bytes, e->records, e->check);
	}
	if (new->n > n)
		qsort(new->e, new->n, sizeof *new->e, cmp_entry);
}

/* Move ST's shards in; with PREFIX (a numbered set, replaced whole) remove what OLD named
 * that NEW does not and PREFIX shards past the new ones, else merge OLD into NEW; then the
 * manifest. 0 or -1. */
static int stage_publish(struct shardset_stage *st, struct shardset *new,
			 const struct shardset *old, const char *prefix)
{
	int failed = 0;
	uint64_t next = 0, no;
	for (size_t i = 0; i < new->n; i++) {
		char *src = join(st->dir.dir, new->e[i].name), *dst = join(st->outdir, new->e[i].name);
		if (rename(src, dst))
			failed = error_errno("cannot rename '%s' to '%s'", src, dst);
		if (prefix && outdir_parse_name(new->e[i].name, prefix, &no) && no + 1 > next)
			next = no + 1;
		free(src);
		free(dst);
	}
	if (failed)
		return -1;
	if (!prefix) {
		stage_merge(new, old, st->outdir);
		return shardset_write(st->outdir, new);
	}
	for (size_t i = 0; i < old->n; i++)
		if (shardset_find(new, old->e[i].name) < 0) {
			char *p = join(st->outdir, old->e[i].name);
			if (unlink(p) && errno != ENOENT)
				warning("cannot remove stale shard '%s': %s", p, strerror(errno));
			free(p);
		}
	outdir_remove_from(st->outdir, prefix, next, 0);
	return shardset_write(st->outdir, new);
}

int shardset_stage_commit(struct shardset_stage **st, size_t n, const char *prefix)
{
	struct shardset *new = xcalloc(n + 1, sizeof *new), *old = xcalloc(n + 1, sizeof *old);
	int failed = 0;
	for (size_t i = 0; i < n && !failed; i++) {
		failed = stage_manifest(st[i], &new[i]) != 0;
		if (!failed && shardset_load(st[i]->outdir, &old[i]) < 0)
			shardset_free(&old[i]);	/* unreadable: nothing of it is kept */
	}
	sigset_t saved;
	hold_signals(&saved);
	for (size_t i = 0; i < n && !failed; i++) {
		char *m = shardset_path(st[i]->outdir);
		if (unlink(m) && errno != ENOENT)
			failed = error_errno("cannot remove the old set manifest '%s'", m);
		free(m);
	}
	for (size_t i = 0; i < n && !failed; i++)
		failed = stage_publish(st[i], &new[i], &old[i], prefix) != 0;
	for (size_t i = 0; i < n; i++) {
		for (struct staged *f = st[i]->files; failed && f; f = f->next)
			unlink(f->path);
		rmdir(st[i]->dir.dir);
		stage_free(st[i]);
		shardset_free(&new[i]);
		shardset_free(&old[i]);
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	free(new);
	free(old);
	return failed ? -1 : 0;
}
