/* walk.c: depth-first directory walk in full-path byte order (see walk.h). */
#include "input/walk.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct walk_dirid {
	dev_t dev;
	ino_t ino;
	int used;
	uint32_t tag;	/* walk_tree_read's: the directory read first with this identity */
};

struct walker {
	char **patterns;
	size_t n_patterns;
	uint64_t max_size;
	struct walk_counts counts;
	struct walk_dirid *seen;	/* every directory entered: open addressing */
	size_t seen_cap, seen_n;
	char *path;			/* the current path, grown as needed */
	size_t path_cap;
	unsigned depth;			/* directories open (see walk_dir) */
};

struct walk_ent {
	char *key;	/* the name, with "/" appended for directories: the sort key */
	size_t name_len;
	int isdir;
	struct stat st;	/* files only */
};

struct walker *walk_new(const char *const *patterns, size_t n_patterns, uint64_t max_size)
{
	struct walker *w = xcalloc(1, sizeof *w);
	w->patterns = xcalloc(n_patterns ? n_patterns : 1, sizeof *w->patterns);
	for (size_t i = 0; i < n_patterns; i++)
		w->patterns[i] = xstrdup(patterns[i]);
	w->n_patterns = n_patterns;
	w->max_size = max_size;
	return w;
}

void walk_free(struct walker *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_patterns; i++)
		free(w->patterns[i]);
	free(w->patterns);
	free(w->seen);
	free(w->path);
	free(w);
}

const struct walk_counts *walk_get_counts(const struct walker *w)
{
	return &w->counts;
}

int walk_match(const struct walker *w, const char *name)
{
	const char *base = strrchr(name, '/');
	base = base ? base + 1 : name;
	if (!w->n_patterns)
		return 1;
	for (size_t i = 0; i < w->n_patterns; i++)
		if (!fnmatch(w->patterns[i], base, 0))
			return 1;
	return 0;
}

static size_t dirid_slot(dev_t dev, ino_t ino, size_t mask)
{
	uint64_t h = ((uint64_t)dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)ino * 0xc2b2ae3d27d4eb4full);
	return (size_t)(h ^ (h >> 29)) & mask;
}

/* 1 when (dev, ino) was new and is now recorded with TAG, 0 when seen before (*OLD: the tag
 * it was recorded with, when OLD is not NULL). */
static int seen_put(struct walker *w, dev_t dev, ino_t ino, uint32_t tag, uint32_t *old)
{
	if (2 * (w->seen_n + 1) > w->seen_cap) {
		size_t ncap = w->seen_cap ? 2 * w->seen_cap : 256;
		struct walk_dirid *ns = xcalloc(ncap, sizeof *ns);
		for (size_t i = 0; i < w->seen_cap; i++) {
			if (!w->seen[i].used)
				continue;
			size_t j = dirid_slot(w->seen[i].dev, w->seen[i].ino, ncap - 1);
			while (ns[j].used)
				j = (j + 1) & (ncap - 1);
			ns[j] = w->seen[i];
		}
		free(w->seen);
		w->seen = ns;
		w->seen_cap = ncap;
	}
	size_t mask = w->seen_cap - 1, j = dirid_slot(dev, ino, mask);
	for (; w->seen[j].used; j = (j + 1) & mask)
		if (w->seen[j].dev == dev && w->seen[j].ino == ino) {
			if (old)
				*old = w->seen[j].tag;
			return 0;
		}
	w->seen[j] = (struct walk_dirid){ .dev = dev, .ino = ino, .used = 1, .tag = tag };
	w->seen_n++;
	return 1;
}

static int seen_add(struct walker *w, dev_t dev, ino_t ino)
{
	return seen_put(w, dev, ino, 0, NULL);
}

static void path_set(struct walker *w, size_t at, const char *s, size_t n)
{
	if (at + n + 2 > w->path_cap) {
		w->path_cap = (at + n + 2) * 2;
		w->path = xrealloc(w->path, w->path_cap);
	}
	memcpy(w->path + at, s, n);
	w->path[at + n] = 0;
}

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct walk_ent *)a)->key, ((const struct walk_ent *)b)->key);
}

/* The directory NAME in the directory open as PARENT, when there is one (the kernel then
 * resolves one name, not the whole path again), else at PATH, open and its stat in *ST; -1
 * with errno. Its own fstat is the only stat a directory costs, as the entry naming it says
 * what it is. */
static int dir_open_stat(int parent, const char *name, const char *path, struct stat *st)
{
	int fd = parent >= 0 ? openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
			     : open(path[0] ? path : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && fstat(fd, st)) {
		int err = errno;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/* Open the directory at w->path (NAME in PARENT, see dir_open_stat), once: -1 when it cannot
 * be read or was entered before. */
static int dir_open(struct walker *w, int parent, const char *name)
{
	struct stat st;
	int fd = dir_open_stat(parent, name, w->path, &st);
	if (fd < 0) {
		warning("cannot open directory '%s': %s", w->path, strerror(errno));
		w->counts.unreadable++;
		return -1;
	}
	if (!seen_add(w, st.st_dev, st.st_ino)) {
		warning("skipping '%s': directory already visited (symlink loop?)", w->path);
		w->counts.loops++;
		close(fd);
		return -1;
	}
	return fd;
}

enum { ENT_SKIP, ENT_DIR, ENT_FILE, ENT_ERR };

/* What the entry NAME (d_type TYPE) of the directory open as FD is to the walk: a
 * directory, a file the patterns take (its stat in *ST), one that could not be stat'ed
 * (errno kept), or nothing. A regular file is stat'ed for its size; what the entry does not
 * say (a symbolic link, a file system without d_type) is stat'ed to learn it. */
static int ent_classify(const struct walker *w, int fd, const char *name, unsigned type,
			struct stat *st)
{
	if (type != DT_REG && type != DT_DIR && type != DT_LNK && type != DT_UNKNOWN)
		return ENT_SKIP;
	if (type == DT_REG && !walk_match(w, name))
		return ENT_SKIP;
	if (type == DT_DIR)
		return ENT_DIR;
	/* relative to the open directory: the kernel resolves one name, not the path */
	if (fstatat(fd, name, st, 0))
		return ENT_ERR;
	if (S_ISDIR(st->st_mode))
		return ENT_DIR;
	return S_ISREG(st->st_mode) && walk_match(w, name) ? ENT_FILE : ENT_SKIP;
}

/* Every entry of the directory open as FD but "." and "..", to EACH; 0, or the errno of a
 * read that failed (the entries before it given). getdents64 itself: opendir would stat
 * the directory once more. */
typedef void (*dir_each_fn)(void *ctx, int fd, const char *name, unsigned type);
static int dir_each(int fd, dir_each_fn each, void *ctx)
{
	char dbuf[32768] __attribute__((aligned(8)));
	for (;;) {
		ssize_t got = getdents64(fd, dbuf, sizeof dbuf);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return errno;
		if (!got)
			return 0;
		for (ssize_t off = 0; off < got;) {
			const struct dirent64 *de = (const struct dirent64 *)(dbuf + off);
			off += de->d_reclen;
			const char *name = de->d_name;
			if (name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2])))
				continue;
			each(ctx, fd, name, de->d_type);
		}
	}
}

struct read_ctx {
	struct walker *w;
	size_t len;
	struct walk_ent *ents;
	size_t n, cap;
};

/* Add the entry NAME of the directory open as FD (w->path is the directory, LEN long) to the
 * entries to visit when it is a directory or a file the patterns take. */
static void dir_entry(void *arg, int fd, const char *name, unsigned type)
{
	struct read_ctx *r = arg;
	struct walker *w = r->w;
	size_t nl = strlen(name);
	struct stat st = { .st_mode = S_IFDIR };
	int kind = ent_classify(w, fd, name, type, &st);
	if (kind == ENT_ERR) {
		path_set(w, r->len, "/", 1);
		path_set(w, r->len + 1, name, nl);
		warning("cannot stat '%s': %s", w->path, strerror(errno));
		w->path[r->len] = 0;
		w->counts.unreadable++;
		return;
	}
	if (kind == ENT_SKIP)
		return;
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->ents = xreallocarray(r->ents, r->cap, sizeof *r->ents);
	}
	struct walk_ent *e = &r->ents[r->n++];
	e->isdir = kind == ENT_DIR;
	e->key = xmalloc(nl + 2);
	memcpy(e->key, name, nl);
	e->key[nl] = e->isdir ? '/' : 0;
	e->key[nl + 1] = 0;
	e->name_len = nl;
	e->st = st;
}

/* Read the directory at w->path (length LEN; NAME in PARENT, see dir_open) into a sorted
 * array of entries to visit. *FD: the directory, left open for its entries, or -1. */
static struct walk_ent *read_dir(struct walker *w, size_t len, int parent, const char *name,
				 size_t *count, int *fd_out)
{
	*count = 0;
	int fd = *fd_out = dir_open(w, parent, name);
	if (fd < 0)
		return NULL;
	struct read_ctx r = { .w = w, .len = len };
	int err = dir_each(fd, dir_entry, &r);
	w->path[len] = 0;
	if (err) {
		warning("cannot read directory '%s': %s", w->path, strerror(err));
		w->counts.unreadable++;
	}
	if (r.n > 1)
		qsort(r.ents, r.n, sizeof *r.ents, ent_cmp);
	*count = r.n;
	return r.ents;
}

/* The directory stays open while its entries are visited (one descriptor a level), so that
 * its subdirectories are opened by name in it (cp-hash -j2 on the default corpus, 8,801
 * directories: 0.03-0.05 s less wall time in A/B runs). Files are not: opened in the walking
 * thread, the workers waited for it; opened by the workers by name in a directory lent to
 * them, -j2 took 0.05 s more wall time in two A/B runs (both threads then count references
 * on one open directory, a likely cause). Deeper than WALK_OPEN_DEPTH, directories are
 * opened by path again, so that a deep tree needs no more descriptors. */
#define WALK_OPEN_DEPTH 32
static int walk_dir(struct walker *w, size_t len, int parent, const char *name, walk_fn fn,
		    void *arg)
{
	size_t n = 0;
	int fd;
	struct walk_ent *ents = read_dir(w, len, parent, name, &n, &fd);
	if (fd >= 0 && w->depth >= WALK_OPEN_DEPTH) {
		close(fd);
		fd = -1;
	}
	w->depth += fd >= 0;
	int ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		struct walk_ent *e = &ents[i];
		path_set(w, len, "/", 1);
		path_set(w, len + 1, e->key, e->name_len);
		e->key[e->name_len] = 0;	/* sorted: now the name alone */
		if (e->isdir) {
			ret = walk_dir(w, len + 1 + e->name_len, fd, e->key, fn, arg);
		} else if (w->max_size && (uint64_t)e->st.st_size > w->max_size) {
			w->counts.too_large++;
		} else {
			w->counts.files++;
			ret = fn(arg, w->path, &e->st);
		}
	}
	if (fd >= 0) {
		close(fd);
		w->depth--;
	}
	for (size_t i = 0; i < n; i++)
		free(ents[i].key);
	free(ents);
	return ret;
}

int walk_run(struct walker *w, const char *root, walk_fn fn, void *arg)
{
	size_t len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		len--;
	/* "/" walks as "" + "/name" (dir_open opens "" as "/") */
	if (len == 1 && root[0] == '/')
		len = 0;
	path_set(w, 0, root, len);
	return walk_dir(w, len, -1, NULL, fn, arg);
}

/* ------------------------------------------------------------------ shared walk */

/* An entry of a directory read for walk_tree_read: in the tree's names, its sort key (the
 * name, "/" after a directory's) and a NUL. */
struct wt_ent {
	size_t key;
	uint32_t name_len;
	unsigned char kind;	/* ENT_DIR, ENT_FILE, ENT_ERR */
	int err;		/* ENT_ERR: stat's errno */
	uint64_t size;
	uint32_t mode;
	uint32_t child;		/* ENT_DIR of a canonical directory: the one read for it */
};

/* A directory read, once for each path the levels reached it by: the first read of a
 * (device, inode) is its canonical one, whose entries the walk uses under any path. */
struct wt_dir {
	char *path;		/* while its level is read */
	int open_err, read_err;	/* errno of open or fstat; of getdents */
	uint64_t dev, ino;
	size_t first, n;	/* its entries */
	uint32_t canon;
};

struct walk_tree {
	struct wt_dir *dirs;
	size_t n_dirs, cap_dirs;
	struct wt_ent *ents;
	size_t n_ents, cap_ents;
	struct buf names;
	char *root;
	size_t root_len;
};

static uint32_t tree_add_dir(struct walk_tree *t, char *path)
{
	if (t->n_dirs == t->cap_dirs) {
		t->cap_dirs = t->cap_dirs ? 2 * t->cap_dirs : 256;
		t->dirs = xreallocarray(t->dirs, t->cap_dirs, sizeof *t->dirs);
	}
	if (t->n_dirs >= UINT32_MAX)
		die("walk: more than %u directories", UINT32_MAX - 1);
	t->dirs[t->n_dirs] = (struct wt_dir){ .path = path };
	return (uint32_t)t->n_dirs++;
}

struct list_ctx {
	const struct walker *w;
	struct buf *b;
	uint32_t n;
};

/* An entry of a directory read for the tree, into the listing: kind, errno, size, mode,
 * the name */
static void list_entry(void *arg, int fd, const char *name, unsigned type)
{
	struct list_ctx *l = arg;
	struct stat st = { .st_mode = S_IFDIR };
	int kind = ent_classify(l->w, fd, name, type, &st);
	if (kind == ENT_SKIP)
		return;
	size_t nl = strlen(name);
	buf_putc(l->b, kind);
	buf_put_u32le(l->b, kind == ENT_ERR ? (uint32_t)errno : 0);
	buf_put_u64le(l->b, kind == ENT_FILE ? (uint64_t)st.st_size : 0);
	buf_put_u32le(l->b, (uint32_t)st.st_mode);
	buf_put_u32le(l->b, (uint32_t)nl);
	buf_put(l->b, name, nl);
	l->n++;
}

/* The directory at PATH, the K-th of its level, read into B: K, the errnos of opening and
 * reading it, its device and inode, its entries' count and the entries. */
static void list_dir(const struct walker *w, const char *path, uint32_t k, struct buf *b)
{
	struct stat st;
	int fd = dir_open_stat(-1, NULL, path, &st);
	buf_put_u32le(b, k);
	buf_put_u32le(b, fd < 0 ? (uint32_t)errno : 0);
	buf_put_u64le(b, fd < 0 ? 0 : (uint64_t)st.st_dev);
	buf_put_u64le(b, fd < 0 ? 0 : (uint64_t)st.st_ino);
	size_t at = b->len;
	buf_put_u32le(b, 0);	/* read errno, then the count: filled in below */
	buf_put_u32le(b, 0);
	if (fd < 0)
		return;
	struct list_ctx l = { .w = w, .b = b };
	int err = dir_each(fd, list_entry, &l);
	close(fd);
	wr_u32le(b->p + at, (uint32_t)err);
	wr_u32le(b->p + at + 4, l.n);
}

/* Every reader's listings of the level LEVEL[0..N) into the tree. */
static void tree_parse(struct walk_tree *t, const struct buf *all, const uint32_t *level,
		       size_t n)
{
	struct cursor c = { all->p, all->p + all->len, 0 };
	size_t got = 0;
	while (c.p < c.end && !c.err) {
		uint32_t k = cur_u32le(&c);
		if (k >= n)
			break;
		struct wt_dir *d = &t->dirs[level[k]];
		d->open_err = (int)cur_u32le(&c);
		d->dev = cur_u64le(&c);
		d->ino = cur_u64le(&c);
		d->read_err = (int)cur_u32le(&c);
		uint32_t ne = cur_u32le(&c);
		d->first = t->n_ents;
		d->n = ne;
		for (uint32_t i = 0; i < ne && !c.err; i++) {
			if (t->n_ents == t->cap_ents) {
				t->cap_ents = t->cap_ents ? 2 * t->cap_ents : 1024;
				t->ents = xreallocarray(t->ents, t->cap_ents, sizeof *t->ents);
			}
			struct wt_ent *e = &t->ents[t->n_ents++];
			const unsigned char *kind = cur_bytes(&c, 1);
			if (!kind)
				break;
			e->kind = *kind;
			e->err = (int)cur_u32le(&c);
			e->size = cur_u64le(&c);
			e->mode = cur_u32le(&c);
			e->name_len = cur_u32le(&c);
			e->child = UINT32_MAX;
			const char *name = cur_bytes(&c, e->name_len);
			if (!name)
				break;
			e->key = t->names.len;
			buf_put(&t->names, name, e->name_len);
			if (e->kind == ENT_DIR)
				buf_putc(&t->names, '/');
			buf_putc(&t->names, 0);
		}
		got++;
	}
	if (c.err || c.p != c.end || got != n)
		die("walk: the ranks' listings of a level are not whole (%zu of %zu directories)",
		    got, n);
}

/* The canonical read of each directory of the level, its first over the levels in order;
 * the next level: the subdirectories of the canonical ones, in order. */
static uint32_t *tree_next(struct walk_tree *t, struct walker *ids, const uint32_t *level,
			   size_t n, size_t *n_next)
{
	uint32_t *next = NULL;
	size_t nn = 0, cap = 0;
	for (size_t k = 0; k < n; k++) {
		uint32_t di = level[k];
		struct wt_dir *d = &t->dirs[di];
		d->canon = di;
		if (d->open_err)
			continue;
		if (!seen_put(ids, (dev_t)d->dev, (ino_t)d->ino, di, &d->canon))
			continue;	/* a second path to a directory read before */
		size_t pl = strlen(d->path);
		for (size_t i = d->first; i < d->first + d->n; i++) {
			struct wt_ent *e = &t->ents[i];
			if (e->kind != ENT_DIR)
				continue;
			char *path = xmalloc(pl + e->name_len + 2);
			memcpy(path, d->path, pl);
			path[pl] = '/';
			memcpy(path + pl + 1, t->names.p + e->key, e->name_len);
			path[pl + 1 + e->name_len] = 0;
			e->child = tree_add_dir(t, path);
			d = &t->dirs[di];	/* the array may have moved */
			if (nn == cap) {
				cap = cap ? 2 * cap : 64;
				next = xreallocarray(next, cap, sizeof *next);
			}
			next[nn++] = e->child;
		}
	}
	*n_next = nn;
	return next;
}

struct walk_tree *walk_tree_read(const struct walker *w, const char *root, int me, int n,
				 walk_share_fn share, void *share_arg)
{
	struct walk_tree *t = xcalloc(1, sizeof *t);
	size_t len = strlen(root);
	while (len > 1 && root[len - 1] == '/')
		len--;
	if (len == 1 && root[0] == '/')
		len = 0;
	t->root = xmalloc(len + 1);
	memcpy(t->root, root, len);
	t->root[len] = 0;
	t->root_len = len;
	/* the directories' identities, for the canonical reads: a walker of its own */
	struct walker *ids = walk_new(NULL, 0, 0);
	size_t nl = 1;
	uint32_t *level = xmalloc(sizeof *level);
	level[0] = tree_add_dir(t, xstrdup(t->root));
	struct buf b = { 0 };
	while (nl) {
		buf_reset(&b);
		for (size_t k = (size_t)me; k < nl; k += (size_t)n)
			list_dir(w, t->dirs[level[k]].path, (uint32_t)k, &b);
		share(share_arg, &b);
		tree_parse(t, &b, level, nl);
		size_t nn;
		uint32_t *next = tree_next(t, ids, level, nl, &nn);
		for (size_t k = 0; k < nl; k++) {
			free(t->dirs[level[k]].path);
			t->dirs[level[k]].path = NULL;
		}
		free(level);
		level = next;
		nl = nn;
	}
	free(level);
	buf_free(&b);
	walk_free(ids);
	return t;
}

struct tree_key {
	const char *key;
	const struct wt_ent *e;
};

static int tree_key_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tree_key *)a)->key, ((const struct tree_key *)b)->key);
}

/* walk_dir from the tree: directory D at w->path (LEN long) */
static int tree_visit(struct walker *w, const struct walk_tree *t, uint32_t d, size_t len,
		      walk_fn fn, void *arg)
{
	const struct wt_dir *dir = &t->dirs[d];
	if (dir->open_err) {
		warning("cannot open directory '%s': %s", w->path, strerror(dir->open_err));
		w->counts.unreadable++;
		return 0;
	}
	if (!seen_add(w, (dev_t)dir->dev, (ino_t)dir->ino)) {
		warning("skipping '%s': directory already visited (symlink loop?)", w->path);
		w->counts.loops++;
		return 0;
	}
	dir = &t->dirs[dir->canon];
	struct tree_key *keys = xcalloc(dir->n ? dir->n : 1, sizeof *keys);
	size_t n = 0;
	for (size_t i = dir->first; i < dir->first + dir->n; i++) {
		const struct wt_ent *e = &t->ents[i];
		const char *name = (const char *)t->names.p + e->key;
		if (e->kind == ENT_ERR) {	/* as read_dir says them: in the directory's order */
			path_set(w, len, "/", 1);
			path_set(w, len + 1, name, e->name_len);
			warning("cannot stat '%s': %s", w->path, strerror(e->err));
			w->path[len] = 0;
			w->counts.unreadable++;
			continue;
		}
		keys[n++] = (struct tree_key){ name, e };
	}
	if (dir->read_err) {
		warning("cannot read directory '%s': %s", w->path, strerror(dir->read_err));
		w->counts.unreadable++;
	}
	if (n > 1)
		qsort(keys, n, sizeof *keys, tree_key_cmp);
	int ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		const struct wt_ent *e = keys[i].e;
		path_set(w, len, "/", 1);
		path_set(w, len + 1, keys[i].key, e->name_len);
		if (e->kind == ENT_DIR) {
			ret = tree_visit(w, t, e->child, len + 1 + e->name_len, fn, arg);
		} else if (w->max_size && e->size > w->max_size) {
			w->counts.too_large++;
		} else {
			struct stat st;
			memset(&st, 0, sizeof st);
			st.st_mode = (mode_t)e->mode;
			st.st_size = (off_t)e->size;
			w->counts.files++;
			ret = fn(arg, w->path, &st);
		}
	}
	free(keys);
	return ret;
}

int walk_tree_run(struct walker *w, const struct walk_tree *t, walk_fn fn, void *arg)
{
	path_set(w, 0, t->root, t->root_len);
	return tree_visit(w, t, 0, t->root_len, fn, arg);
}

void walk_tree_free(struct walk_tree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_dirs; i++)
		free(t->dirs[i].path);
	free(t->dirs);
	free(t->ents);
	buf_free(&t->names);
	free(t->root);
	free(t);
}
