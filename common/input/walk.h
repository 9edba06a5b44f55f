/* walk.h: the recursive directory walk that feeds cp-hash. Files come out in byte order of
 * their full paths (so "the first occurrence" of a duplicate is well defined), symbolic
 * links are followed but every directory is entered at most once (loops are safe), and what
 * cannot be read is reported, counted and passed over. */
#ifndef CP_WALK_H
#define CP_WALK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct walk_counts {
	uint64_t files;		/* regular files handed to the callback */
	uint64_t too_large;	/* matching files over max_size, skipped */
	uint64_t unreadable;	/* entries that could not be opened or stat'ed */
	uint64_t loops;		/* directories reached a second time (symlink loops), skipped */
};

struct walker;
/* PATTERNS: fnmatch(3) globs on the base name, a file is taken when any matches; none means
 * every file. MAX_SIZE: larger files are skipped and counted; 0 means no limit. */
struct walker *walk_new(const char *const *patterns, size_t n_patterns, uint64_t max_size);
/* Called for each matching regular file; a non-zero return stops the walk and is returned. */
typedef int (*walk_fn)(void *arg, const char *path, const struct stat *st);
/* Walk directory ROOT. Directories seen in earlier calls on the same walker are not entered
 * again. Returns 0, or what the callback returned. */
int walk_run(struct walker *w, const char *root, walk_fn fn, void *arg);
const struct walk_counts *walk_get_counts(const struct walker *w);
/* Does NAME's base name match the walker's patterns? */
int walk_match(const struct walker *w, const char *name);
void walk_free(struct walker *w);

/* The same walk by several readers (the ranks of a job), each reading its share of the
 * directories: the tree is read level by level (directory K of a level by reader K % N),
 * SHARE handing every reader all readers' listings of the level, so each directory costs
 * one reader its system calls and every reader holds the whole tree (about 40 bytes and
 * the name for each directory and matching file); walk_tree_run then walks it from memory,
 * calling FN on the same paths in the same order, with the same messages and counts as
 * walk_run on W (whose patterns and size limit the tree was read with, and whose visited
 * directories it skips). ST, to FN, holds st_mode and st_size alone. Every reader must call
 * it alike; the directories are opened by their full paths (walk_run opens each in its
 * parent). */
struct buf;
/* B: this reader's bytes; replaced by every reader's, concatenated in reader order. */
typedef void (*walk_share_fn)(void *arg, struct buf *b);
struct walk_tree;
struct walk_tree *walk_tree_read(const struct walker *w, const char *root, int me, int n,
				 walk_share_fn share, void *share_arg);
int walk_tree_run(struct walker *w, const struct walk_tree *t, walk_fn fn, void *arg);
void walk_tree_free(struct walk_tree *t);

#endif
