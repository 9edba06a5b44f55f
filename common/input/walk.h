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

#endif
