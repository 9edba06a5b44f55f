/* outdir.c: numbered shard names, output directories and cp-dedup's staging (outdir.h). */
#include "shard/outdir.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "shard/set.h"
#include "shard/shard.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int outdir_parse_name(const char *name, const char *prefix, uint64_t *no)
{
	size_t n = strlen(prefix);
	if (strncmp(name, prefix, n) || name[n] != '-')
		return 0;
	const char *p = name + n + 1;
	uint64_t v = 0;
	if (*p < '0' || *p > '9')
		return 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return 0;	/* no shard of ours: a run never gets that far */
		v = 10 * v + (uint64_t)(*p - '0');
	}
	if (strcmp(p, ".shard"))
		return 0;
	*no = v;
	return 1;
}

char *outdir_shard_path(const char *dir, const char *prefix, uint64_t no)
{
	size_t n = strlen(dir);
	return xasprintf("%s%s%s-%05llu.shard", dir, n && dir[n - 1] == '/' ? "" : "/", prefix,
			 (unsigned long long)no);
}

int outdir_make(const char *dir, int parents)
{
	if (parents)
		return io_mkdirs(dir);
	struct stat st;
	if (mkdir(dir, 0777) && errno != EEXIST)
		return error_errno("cannot create directory '%s'", dir);
	if (stat(dir, &st) || !S_ISDIR(st.st_mode))
		return error("'%s' is not a directory", dir);
	return 0;
}

int64_t outdir_next_number(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	if (!d)
		return error_errno("cannot open directory '%s'", dir);
	uint64_t next = 0, no;
	struct dirent *de;
	while ((de = readdir(d)))
		if (outdir_parse_name(de->d_name, prefix, &no) && no + 1 > next)
			next = no + 1;
	closedir(d);
	return (int64_t)next;
}

int outdir_remove_from(const char *dir, const char *prefix, uint64_t from, int fatal)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int failed = 0;
	uint64_t no;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!outdir_parse_name(de->d_name, prefix, &no) || no < from)
			continue;
		size_t n = strlen(dir);
		char *p = xasprintf("%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", de->d_name);
		if (unlink(p) && errno != ENOENT) {
			if (fatal)
				die_errno("cannot remove stale shard '%s'", p);
			warning("cannot remove stale shard '%s': %s", p, strerror(errno));
			failed++;
		}
		free(p);
	}
	closedir(d);
	return failed;
}

/* ---- staging ---- */

static void remove_tree_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			char *p = xasprintf("%s/%s", dir, de->d_name);
			unlink(p);
			free(p);
		}
	closedir(d);
	rmdir(dir);
}

/* .TOOL-PID of a process that is gone */
static int stage_is_stale(const char *name, const char *tool)
{
	size_t n = strlen(tool);
	if (name[0] != '.' || strncmp(name + 1, tool, n) || name[n + 1] != '-')
		return 0;
	char *end;
	const char *p = name + n + 2;
	if (*p < '0' || *p > '9')
		return 0;
	errno = 0;
	long pid = strtol(p, &end, 10);
	if (*end || errno || pid <= 0 || pid == (long)getpid())
		return 0;
	return kill((pid_t)pid, 0) && errno == ESRCH;
}

int outdir_stage_open(struct outdir_stage *s, const char *outdir, const char *tool, size_t n)
{
	memset(s, 0, sizeof *s);
	DIR *d = opendir(outdir);
	struct dirent *de;
	while (d && (de = readdir(d)))
		if (stage_is_stale(de->d_name, tool)) {
			char *p = xasprintf("%s/%s", outdir, de->d_name);
			remove_tree_files(p);
			free(p);
		}
	if (d)
		closedir(d);
	char *dir = xasprintf("%s/.%s-%ld", outdir, tool, (long)getpid());
	char **paths = xcalloc(n ? n : 1, sizeof *paths);
	for (size_t i = 0; i < n; i++)
		paths[i] = xasprintf("%s/part-%05zu.shard", dir, i);
	/* signals held from the directory's making until S names it, so a handler that removes
	 * S's stage never misses one that exists */
	sigset_t block, saved;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	if (mkdir(dir, 0777)) {
		pthread_sigmask(SIG_SETMASK, &saved, NULL);
		error_errno("cannot create directory '%s'", dir);
		for (size_t i = 0; i < n; i++)
			free(paths[i]);
		free(paths);
		free(dir);
		return -1;
	}
	s->dir = dir;
	s->paths = paths;
	s->n_paths = n;
	s->n = n;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return 0;
}

char *outdir_stage_publish(const struct outdir_stage *s, size_t i, const char *outdir,
			   const char *prefix, uint64_t no, int *failed)
{
	char *dst = outdir_shard_path(outdir, prefix, no);
	if (rename(s->paths[i], dst)) {
		error_errno("cannot rename '%s' to '%s'", s->paths[i], dst);
		*failed = 1;
	}
	return dst;
}

void outdir_stage_remove(const struct outdir_stage *s)
{
	size_t n = s->n;
	for (size_t i = 0; i < n; i++)
		unlink(s->paths[i]);
	if (s->dir)
		rmdir(s->dir);
}

void outdir_stage_free(struct outdir_stage *s)
{
	for (size_t i = 0; i < s->n_paths; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s->dir);
	memset(s, 0, sizeof *s);
}

/* ---- writer ---- */

int outdir_writer_open(struct outdir_writer *ow, const char *out, const char *prefix,
		       uint32_t kind, const uint64_t param[2], int level, int dflt_level)
{
	struct stat st;
	size_t n = strlen(out);
	memset(ow, 0, sizeof *ow);
	ow->out = out;
	ow->prefix = prefix;
	ow->kind = kind;
	ow->param[0] = param ? param[0] : 0;
	ow->param[1] = param ? param[1] : 0;
	ow->level = level;
	ow->dflt_level = dflt_level;
	if (!strcmp(out, "-")) {
		ow->mode = OUTDIR_STDOUT;
		refuse_tty(1, "shards");
	} else if ((n && out[n - 1] == '/') || (!stat(out, &st) && S_ISDIR(st.st_mode))) {
		ow->mode = OUTDIR_DIR;
		/* the set is staged whole, then committed (shard/set.h) */
		if (outdir_make(out, 1) || !(ow->stage = shardset_stage_open(out)))
			return -1;
	} else {
		ow->mode = OUTDIR_FILE;
	}
	return 0;
}

static int writer_next(struct outdir_writer *ow)
{
	char *name = NULL;
	const char *path = ow->mode == OUTDIR_STDOUT ? "-" : ow->out;
	if (ow->mode == OUTDIR_DIR && !ow->spill) {
		char *base = xasprintf("%s-%05llu.shard", ow->prefix, (unsigned long long)ow->no);
		path = name = shardset_stage_path(ow->stage, base);
		free(base);
	}
	ow->w = ow->spill ? shard_create_spilled(ow->spill, ow->kind, ow->param)
			  : shard_create(path, ow->kind, ow->param);
	if (ow->w) {
		shard_set_level(ow->w, shard_auto_level(path, ow->level, ow->dflt_level));
		shard_set_threads(ow->w, ow->threads);
	}
	free(name);
	ow->n = ow->bytes = 0;
	return ow->w ? 0 : -1;
}

static int writer_close(struct outdir_writer *ow)
{
	if (!ow->w)
		return 0;
	int r = shard_close(ow->w);
	ow->w = NULL;
	ow->no++;
	return r;
}

static int writer_put(struct outdir_writer *ow, const void *rec, size_t len, int ref)
{
	if (ow->w && ow->mode == OUTDIR_DIR &&
	    ((ow->max_docs && ow->n >= ow->max_docs) ||
	     (ow->max_bytes && ow->bytes + len > ow->max_bytes && ow->n)) && writer_close(ow))
		return -1;
	if (!ow->w && writer_next(ow))
		return -1;
	if (ref ? shard_write_ref(ow->w, rec, len) : shard_write(ow->w, rec, len))
		return -1;
	ow->n++;
	ow->bytes += len;
	return 0;
}

int outdir_writer_write(struct outdir_writer *ow, const void *rec, size_t len)
{
	return writer_put(ow, rec, len, 0);
}

int outdir_writer_write_ref(struct outdir_writer *ow, const void *rec, size_t len)
{
	return writer_put(ow, rec, len, 1);
}

void outdir_writer_release(struct outdir_writer *ow)
{
	if (ow->w)
		shard_release(ow->w);
}

int outdir_writer_finish(struct outdir_writer *ow)
{
	if (!ow->w && !ow->no && writer_next(ow))	/* no records: still an (empty) shard */
		return -1;
	if (writer_close(ow)) {
		outdir_writer_abort(ow);
		return -1;
	}
	if (ow->mode != OUTDIR_DIR)
		return 0;
	struct shardset_stage *st = ow->stage;
	ow->stage = NULL;
	return shardset_stage_commit(&st, 1, ow->prefix);
}

void outdir_writer_abort(struct outdir_writer *ow)
{
	if (ow->w)
		shard_abort(ow->w);
	ow->w = NULL;
	shardset_stage_abort(ow->stage);
	ow->stage = NULL;
}

/* ---- the same stream written by several processes in turns ---- */

void outdir_writer_open_spill(struct outdir_writer *ow, struct shard_spill *sp,
			      enum outdir_mode mode, const char *prefix, uint32_t kind,
			      const uint64_t param[2], int level)
{
	memset(ow, 0, sizeof *ow);
	ow->mode = mode;
	ow->out = shard_spill_file(sp);
	ow->prefix = prefix;
	ow->kind = kind;
	ow->param[0] = param ? param[0] : 0;
	ow->param[1] = param ? param[1] : 0;
	ow->level = ow->dflt_level = level;
	ow->spill = sp;
}

/* The note: whether a shard is open, shards closed, the open one's records and bytes, then
 * the shard's own state */
#define NOTE_HEAD 32

int outdir_writer_save(struct outdir_writer *ow, struct buf *note)
{
	buf_put_u64le(note, ow->w != NULL);
	buf_put_u64le(note, ow->no);
	buf_put_u64le(note, ow->n);
	buf_put_u64le(note, ow->bytes);
	return ow->w ? shard_state_save(ow->w, note) : 0;
}

int outdir_writer_load(struct outdir_writer *ow, const void *note, size_t len, int fd)
{
	const unsigned char *p = note;
	if (!len)
		return 0;	/* the first turn */
	int open = rd_u64le(p) != 0;
	if (len != NOTE_HEAD + (open ? shard_state_size() : 0))
		return error("a rank's note on '%s' has %zu bytes", ow->out, len);
	if (open && !ow->w && writer_next(ow))
		return -1;
	ow->no = rd_u64le(p + 8);
	ow->n = rd_u64le(p + 16);
	ow->bytes = rd_u64le(p + 24);
	return open ? shard_state_load(ow->w, p + NOTE_HEAD, fd) : 0;
}

int outdir_writer_flush(struct outdir_writer *ow)
{
	return ow->w ? shard_spill_flush(ow->w) : 0;
}

int outdir_writer_end_spill(struct outdir_writer *ow)
{
	int r = writer_close(ow);
	ow->spill = NULL;
	return r;
}

int outdir_writer_assemble(struct outdir_writer *ow, const unsigned char ev[40], int fd)
{
	if (!ow->w && writer_next(ow))
		return -1;
	if (rd_u64le(ev + 8) == 0)
		return shard_assemble_block(ow->w, fd, rd_u64le(ev + 16), rd_u64le(ev + 24));
	shard_set_totals(ow->w, rd_u64le(ev + 16), rd_u64le(ev + 24));
	return writer_close(ow);
}
