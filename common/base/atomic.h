/* atomic.h: output files that appear whole or not at all, for every writer in cp.
 *
 * A file is written to a hidden temporary beside its target, DIR/.NAME.tmp.PID, then synced
 * and renamed over DIR/NAME, so a reader never sees a half-written file under the final name.
 * A bulk file that a rerun of its stage remakes and whose reader checks every byte (a shard:
 * blocks and footer checksummed) may skip the sync (NO_SYNC): a crash can then lose the file
 * or leave one its reader refuses, never one it takes. CP_SYNC=1 syncs those too.
 * Open temporaries are registered: atomic_cleanup_on_signal() removes them when the process is
 * killed by INT, TERM, HUP or PIPE, and every registered temporary still open at exit() (a
 * die() halfway) is removed by an atexit handler. Threads may open and commit files at once.
 * What kill -9 leaves behind is removed later: the first atomic_open into a directory in each
 * process lists it once and removes the temporaries of processes that are gone
 * (atomic_sweep_stale). */
#ifndef CP_ATOMIC_H
#define CP_ATOMIC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

struct atomic_file {
	int fd;
	char *path, *tmp;
	uint64_t written;
	pid_t pid;				/* the process that opened it */
	int no_sync;	/* set after atomic_open: commit without fsync, unless atomic_sync_all() */
	struct atomic_file *volatile next;	/* the registry's list */
};

/* DIR/.NAME.tmp.PID for PATH = DIR/NAME (malloc'd) */
char *atomic_tmp_name(const char *path);
/* Create the temporary of PATH. 0, or -1 after an error naming it. */
int atomic_open(struct atomic_file *f, const char *path);
/* 0, or -1 after an error naming the temporary */
int atomic_write(struct atomic_file *f, const void *p, size_t n);
/* Whether every file, bulk ones too, is synced before its rename: CP_SYNC set and not "0",
 * or atomic_sync_all_on() called (an index that commits to what the bulk files hold) */
int atomic_sync_all(void);
void atomic_sync_all_on(void);
/* fsync (see no_sync), close and rename over the target; on any failure the temporary is removed.
 * 0 or -1 after an error. F is closed either way. */
int atomic_commit(struct atomic_file *f);
/* close and remove the temporary */
void atomic_abort(struct atomic_file *f);
/* PATH gets exactly the N bytes at P, atomically. 0 or -1 after an error. */
int atomic_write_file(const char *path, const void *p, size_t n);

/* A stdio stream on the temporary of PATH, for text written with fprintf (reports, results).
 * atomic_fclose commits (checking every earlier write) and atomic_fabort discards. */
struct atomic_stream {
	struct atomic_file f;
	FILE *fp;
};
int atomic_fopen(struct atomic_stream *s, const char *path);
int atomic_fclose(struct atomic_stream *s);
void atomic_fabort(struct atomic_stream *s);

/* Remove DIR's temporaries left by dead processes: regular files named exactly .NAME.tmp.PID
 * (NAME not empty, PID decimal without a leading zero, not this process) for which
 * kill(PID, 0) fails with ESRCH. A live process's (any user's) and every other name stay.
 * PIDs are those of this PID namespace: a directory shared with another container's writers
 * must not be swept. The number removed, or -1 when DIR cannot be listed (not reported). */
int atomic_sweep_stale(const char *dir);

/* Remove the temporaries of every open file (async-signal-safe: unlink only). */
void atomic_abort_all(void);
/* Install handlers for INT, TERM, HUP and PIPE that remove every open temporary, call EXTRA
 * when not NULL (it must be async-signal-safe), and die of the signal. */
void atomic_cleanup_on_signal(void (*extra)(void));

#endif
