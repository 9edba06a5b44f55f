/* textdocs.c: documents from shards or plain files, one stream (see bpe-input.h). */
#include "input/textdocs.h"
#include "base/die.h"
#include "shard/doc.h"
#include "base/io.h"
#include "shard/shard.h"
#include "base/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct bpe_input_item {
	char *path;
	int shard;
	int large;	/* a regular file of LARGE_FILE bytes or more when listed */
};

struct bpe_input {
	struct bpe_input_item *items;
	size_t n, cap, cur;	/* cur: the item being read, or n when done */
	int started;
	struct shard_reader *r;
	char *text;		/* the current plain file */
	size_t text_len;
	size_t last;		/* item of the last document returned */
	uint64_t rec;		/* records read from the current shard */
	int threads;		/* a large plain file is read by this many */
};

/* A plain file this large is read by the input's threads, a slice each: copying it out of the
 * page cache and faulting in its buffer are all that reading it costs, and one thread alone
 * would keep the others waiting as long as encoding a tenth of it takes them. */
#define LARGE_FILE (16u << 20)

static void add_item(struct bpe_input *in, const char *path, int shard, const struct stat *st)
{
	if (in->n == in->cap)
		in->items = xreallocarray(in->items, in->cap = in->cap ? 2 * in->cap : 16,
					  sizeof *in->items);
	in->items[in->n].path = xstrdup(path);
	in->items[in->n].large = st && S_ISREG(st->st_mode) && st->st_size >= LARGE_FILE;
	in->items[in->n++].shard = shard;
}

static int cmp_path(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* every regular file below dir, sorted by path, so the order never depends on readdir */
static void walk(struct bpe_input *in, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		die_errno("cannot open directory '%s'", dir);
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	size_t dl = strlen(dir);
	int slash = dl && dir[dl - 1] == '/';
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap)
			names = xreallocarray(names, cap = cap ? 2 * cap : 64, sizeof *names);
		names[n++] = xasprintf("%s%s%s", dir, slash ? "" : "/", de->d_name);
	}
	closedir(d);
	if (n) /* an empty directory leaves NAMES NULL, which qsort may not take */
		qsort(names, n, sizeof *names, cmp_path);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (!lstat(names[i], &st)) {
			if (S_ISDIR(st.st_mode))
				walk(in, names[i]);
			else if (S_ISREG(st.st_mode))
				add_item(in, names[i], 0, &st);
		}
		free(names[i]);
	}
	free(names);
}

static int looks_like_shard(const char *path)
{
	unsigned char h[4] = { 0 };
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 1;	/* let the shard reader report it */
	long r = read_full(fd, h, sizeof h);
	close(fd);
	return r == 4 && !memcmp(h, "\x89" "CPS", 4);
}

struct bpe_input *bpe_input_open(char *const *inputs, size_t n, int text)
{
	struct bpe_input *in = xcalloc(1, sizeof *in);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		int known = strcmp(inputs[i], "-") && !stat(inputs[i], &st);
		int isdir = known && S_ISDIR(st.st_mode);
		if (text && isdir) {
			walk(in, inputs[i]);
		} else if (isdir) {
			char **list;
			size_t k = shard_list(&inputs[i], 1, &list);
			for (size_t j = 0; j < k; j++)
				add_item(in, list[j], 1, NULL);
			shard_list_free(list, k);
		} else if (!strcmp(inputs[i], "-")) {
			add_item(in, "-", !text, NULL);
		} else {
			add_item(in, inputs[i], text ? 0 : looks_like_shard(inputs[i]), known ? &st : NULL);
		}
	}
	return in;
}

static void drop_current(struct bpe_input *in)
{
	if (in->r)
		shard_close_reader(in->r);
	in->r = NULL;
	free(in->text);
	in->text = NULL;
}

static char *read_stdin(size_t *len)
{
	struct buf b = { 0 };
	for (;;) {
		buf_grow(&b, 1 << 16);
		long r = read_full(0, b.p + b.len, 1 << 16);
		if (r < 0) {
			error_errno("cannot read standard input");
			buf_free(&b);
			return NULL;
		}
		b.len += (size_t)r;
		if (r < 1 << 16)
			break;
	}
	buf_putc(&b, 0);
	*len = b.len - 1;
	return (char *)b.p;
}

/* PATH read by THREADS threads when it is a large regular file that stays its size: the text
 * (with a terminator) and *LEN, else NULL, for read_file to read it alone (and say why it
 * cannot) */
static char *read_large(const char *path, int threads, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size < LARGE_FILE) {
		close(fd);
		return NULL;
	}
	size_t n = (size_t)st.st_size, slice = 4u << 20, ns = (n + slice - 1) / slice;
	char *p = xmalloc(n + 1), probe;
	int short_read = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads) reduction(| : short_read)
	for (long k = 0; k < (long)ns; k++) {
		size_t at = (size_t)k * slice, want = n - at < slice ? n - at : slice;
		while (want) {
			ssize_t r = pread(fd, p + at, want, (off_t)at);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				short_read = 1;
				break;
			}
			at += (size_t)r;
			want -= (size_t)r;
		}
	}
	/* a file that grew is more than its stat size */
	if (short_read || pread(fd, &probe, 1, (off_t)n) != 0) {
		free(p);
		close(fd);
		return NULL;
	}
	close(fd);
	p[n] = 0;
	*len = n;
	return p;
}

int bpe_input_next(struct bpe_input *in, uint64_t *id, const unsigned char **s, size_t *n)
{
	for (;;) {
		if (in->started && in->cur < in->n && in->items[in->cur].shard && in->r) {
			const void *rec;
			size_t len;
			int r = shard_next(in->r, &rec, &len);
			if (r < 0)
				return -1;
			if (r == 1) {
				struct doc d;
				if (doc_decode(rec, len, &d))
					return error("'%s': record %llu is not a valid document record",
						     in->items[in->cur].path, (unsigned long long)in->rec);
				if (d.st.flags & DOC_NO_CONTENT)
					return error("'%s': record %llu carries no content (cp-hash "
						     "--no-content)", in->items[in->cur].path,
						     (unsigned long long)in->rec);
				in->rec++;
				*id = d.id;
				*s = (const unsigned char *)d.content;
				*n = d.content_len;
				in->last = in->cur;
				return 1;
			}
		}
		if (in->started)
			in->cur++;
		in->started = 1;
		drop_current(in);
		if (in->cur >= in->n)
			return 0;
		struct bpe_input_item *it = &in->items[in->cur];
		if (it->shard) {
			in->rec = 0;
			in->r = shard_open(it->path, SHARD_DOCS);
			if (!in->r)
				return -1;
			continue;
		}
		in->text = !strcmp(it->path, "-") ? read_stdin(&in->text_len)
			   : it->large && in->threads > 1 ? read_large(it->path, in->threads, &in->text_len)
			   : NULL;
		if (!in->text && strcmp(it->path, "-"))
			in->text = read_file(it->path, &in->text_len);
		if (!in->text)
			return -1;
		*id = XXH3_64bits(it->path, strlen(it->path));
		*s = (const unsigned char *)in->text;
		*n = in->text_len;
		in->last = in->cur;
		return 1;
	}
}

void bpe_input_set_threads(struct bpe_input *in, int threads) { in->threads = threads; }
size_t bpe_input_index(const struct bpe_input *in) { return in->last; }
const char *bpe_input_path(const struct bpe_input *in) { return in->items[in->last].path; }
int bpe_input_is_shard(const struct bpe_input *in) { return in->items[in->last].shard; }
size_t bpe_input_count(const struct bpe_input *in) { return in->n; }

const char *bpe_input_item(const struct bpe_input *in, size_t i, int *is_shard)
{
	*is_shard = in->items[i].shard;
	return in->items[i].path;
}

void bpe_input_close(struct bpe_input *in)
{
	if (!in)
		return;
	drop_current(in);
	for (size_t i = 0; i < in->n; i++)
		free(in->items[i].path);
	free(in->items);
	free(in);
}
