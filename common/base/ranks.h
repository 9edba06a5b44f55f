/* ranks.h: the processes of a data-stage job started by an MPI launcher (mpirun -np N
 * cp-hash, cp-dedup), and the few exchanges they make: bytes to one rank, a buffer per rank
 * to every rank (all-to-all), everything to rank 0, sums of counters.
 *
 * The job is joined only when the process was started by a launcher (the environment mpirun
 * sets), so a plain run needs no MPI runtime and is rank 0 of 1; a build without MPI is one
 * rank, and refuses to run as one of several. Sizes are 64-bit throughout: MPI's counts are
 * ints, so what is larger goes in pieces (of CP_RANKS_PIECE bytes, at least 64, when set:
 * for tests). Every exchange dies when MPI fails; a rank that exits before ranks_finish
 * takes the job down (MPI_Abort), so no rank is left waiting for one that is gone. */
#ifndef CP_BASE_RANKS_H
#define CP_BASE_RANKS_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdnoreturn.h>

/* Join the job when under a launcher (MPI_Init may edit ARGC and ARGV); 1 when joined. The
 * exchanges may be called from any one thread at a time (MPI_THREAD_SERIALIZED). */
int ranks_init(int *argc, char ***argv);
/* Leave the job; nothing without one. */
void ranks_finish(void);
/* Leave the job and exit with CODE, every rank together: no abort, no banner. */
noreturn void ranks_exit(int code);
int ranks_me(void);
int ranks_count(void);
/* 1 when built with MPI (else a process is rank 0 of 1, and ranks_init dies under a
 * launcher that started more than one) */
int ranks_have_mpi(void);
/* Die, saying why, when a launcher started more than one rank and this process is not in
 * a job of them (a build without MPI) */
void ranks_refuse_unjoined(void);

/* N bytes to rank TO; and what rank FROM sent, into B (replacing what it held). */
void ranks_send(int to, const void *p, size_t n);
void ranks_recv(int from, struct buf *b);
/* A note (at most RANKS_NOTE_MAX bytes) to rank TO, sent without waiting for it to be
 * received (small messages go out at once); and the next note from rank FROM, into B. */
#define RANKS_NOTE_MAX 256
void ranks_note_send(int to, const void *p, size_t n);
void ranks_note_recv(int from, struct buf *b);
/* Whether a note from rank FROM has come (ranks_note_recv would not wait) */
int ranks_note_ready(int from);
/* SEND[j] to rank j, for every j; RECV[j] replaced by what rank j sent this one. */
void ranks_alltoallv(const struct buf *send, struct buf *recv);
/* Every rank's N bytes at P, to rank 0, concatenated in rank order into ALL (replaced);
 * OFF[0..count]: where each rank's bytes start there (rank 0 only; may be NULL). */
void ranks_gather(const void *p, size_t n, struct buf *all, size_t *off);
/* Rank 0's B to every rank (B replaced on the others). */
void ranks_bcast(struct buf *b);
/* V[0..N) summed over the ranks, in place, on every rank; the same for the maximum. */
void ranks_sum_u64(uint64_t *v, size_t n);
void ranks_max_u64(uint64_t *v, size_t n);
/* The sum of V over the ranks before this one. */
uint64_t ranks_exscan_u64(uint64_t v);
/* 1 on every rank when FAILED is nonzero on any. */
int ranks_any(int failed);

#endif
