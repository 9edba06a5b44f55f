/* mpi.h: the ranks of a data-parallel cp-train job over MPI. The job is joined only when the
 * process was started by a launcher (mpirun sets the environment it reads), so a plain run
 * needs no MPI runtime; in a build without MPI every process is rank 0 of 1. */
#ifndef CP_TRAIN_MPI_H
#define CP_TRAIN_MPI_H

#include <stdint.h>

#include "model/backend.h"

/* Join the job when under a launcher (MPI_Init may edit ARGC and ARGV) and return its ranks;
 * from then on a process that exits before comm_finish takes the whole job down with it, so
 * no rank is left waiting in a collective. Dies when MPI_Init fails. */
const struct gpt2_comm *comm_init(int *argc, char ***argv);
/* Leave the job (MPI_Finalize); nothing without one. */
void comm_finish(void);
/* Sum N floats (DBL: doubles) over all ranks, in place (the comm's allreduce_host); nothing
 * with one rank. Floats are summed in rank order, ((g0 + g1) + g2) + ..., the order one
 * process accumulating the same micro-batches adds them in. Dies when the collective fails. */
void comm_allreduce(void *p, uint64_t n, int dbl);
/* The same in calls of at most CHUNK elements (MPI counts are ints); comm_allreduce uses
 * 2^30. */
void comm_allreduce_chunked(void *p, uint64_t n, int dbl, uint64_t chunk);

/* A collective that has not finished after SECONDS (default 600, or $CP_COMM_TIMEOUT) ends
 * the job with a message naming the rank and the collective. */
void comm_set_timeout(double seconds);

/* ZeRO-1's collectives over shards: rank r owns elements [OFF[r], OFF[r+1]) of a
 * parameter-sized array (OFF has size + 1 entries). */
/* MINE (rank r's shard) = the sum over the ranks, in rank order, of that part of ALL (which
 * the sum overwrites) */
void comm_reduce_scatter(float *all, float *mine, const uint64_t *off);
/* every rank's shard of ALL (in place) to every rank */
void comm_allgather(float *all, const uint64_t *off);
/* rank 0's ALL = every rank's MINE (ALL is read on rank 0 only; rank 0's MINE may be its
 * place in ALL) */
void comm_gather(const float *mine, float *all, const uint64_t *off);

#endif
