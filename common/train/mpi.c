/* mpi.c: the MPI layer of cp-train (see mpi.h). The one place a job-wide collective is
 * called; a GPU backend reduces its own buffers (NCCL) through backend.h instead.
 *
 * Every collective runs under a watchdog: a thread that, when one has not finished within the
 * timeout, says which rank and which collective, and ends the process, which makes mpirun
 * end the job. A rank that died or hangs then costs the timeout, not the allocation. */
#include "train/mpi.h"
#include "base/die.h"
#include "base/ranks.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef CP_HAVE_MPI
#include <mpi.h>
#endif

static void comm_bcast(void *p, uint64_t n, int root);
static void comm_watch(const char *what);
static struct gpt2_comm comm = { 0, 1, comm_allreduce, 0, comm_bcast, comm_watch };

/* the collective in flight (NULL: none) and when it began, under wd_lock */
static pthread_mutex_t wd_lock = PTHREAD_MUTEX_INITIALIZER;
static double wd_timeout = 600;

void comm_set_timeout(double seconds)
{
	pthread_mutex_lock(&wd_lock);
	wd_timeout = seconds;
	pthread_mutex_unlock(&wd_lock);
}

#ifdef CP_HAVE_MPI
static int comm_live;
static const char *wd_what;
static double wd_since;

static double wd_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *wd_main(void *arg)
{
	(void)arg;
	for (;;) {
		sleep(1);
		pthread_mutex_lock(&wd_lock);
		int late = wd_what && wd_now() - wd_since > wd_timeout;
		const char *what = wd_what;
		pthread_mutex_unlock(&wd_lock);
		if (late) {
			fprintf(stderr, "%s: rank %d of %d: the %s did not finish within %.0f s (a rank "
				"is stuck or gone); ending the job\n", cp_progname, comm.rank, comm.size,
				what, wd_timeout);
			_exit(EXIT_ERR);	/* mpirun then ends every other rank */
		}
	}
	return NULL;
}

static void wd_begin(const char *what)
{
	pthread_mutex_lock(&wd_lock);
	wd_what = what;
	wd_since = wd_now();
	pthread_mutex_unlock(&wd_lock);
	const char *hang = getenv("CP_TEST_COMM_HANG");	/* tests: this rank stops answering */
	if (hang && atoi(hang) == comm.rank)
		for (;;)
			pause();
}

static void wd_end(void)
{
	pthread_mutex_lock(&wd_lock);
	wd_what = NULL;
	pthread_mutex_unlock(&wd_lock);
}

static void comm_abort_on_exit(int status, void *arg)
{
	(void)arg;
	/* a rank that dies must not leave the others waiting in a collective */
	if (comm_live)
		MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
}

static void check(int rc, const char *what)
{
	if (rc != MPI_SUCCESS)
		die("%s failed", what);
}

static int count_of(uint64_t n)
{
	if (n > INT_MAX)
		die("a collective of %llu elements is over MPI's int count",
		    (unsigned long long)n);
	return (int)n;
}
#endif

const struct gpt2_comm *comm_init(int *argc, char ***argv)
{
#ifdef CP_HAVE_MPI
	/* only under a launcher: a plain run needs no MPI runtime at all */
	if (!comm_live &&
	    (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE"))) {
		if (MPI_Init(argc, argv) != MPI_SUCCESS)
			die("MPI_Init failed");
		MPI_Comm_rank(MPI_COMM_WORLD, &comm.rank);
		MPI_Comm_size(MPI_COMM_WORLD, &comm.size);
		MPI_Comm host;
		if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, comm.rank,
					MPI_INFO_NULL, &host) == MPI_SUCCESS) {
			MPI_Comm_rank(host, &comm.local_rank);
			MPI_Comm_free(&host);
		}
		comm_live = 1;
		on_exit(comm_abort_on_exit, NULL);
		const char *t = getenv("CP_COMM_TIMEOUT");
		if (t && atof(t) > 0)
			comm_set_timeout(atof(t));
		pthread_t th;
		if (pthread_create(&th, NULL, wd_main, NULL) || pthread_detach(th))
			die("cannot start the collectives' watchdog");
	}
#else
	(void)argc;
	(void)argv;
	ranks_refuse_unjoined();
#endif
	return &comm;
}

void comm_finish(void)
{
#ifdef CP_HAVE_MPI
	if (comm_live) {
		comm_live = 0;
		MPI_Finalize();
	}
#endif
}

#ifdef CP_HAVE_MPI
/* The float sum in rank order: rank r adds its values to the sum of ranks 0..r-1 it receives
 * and passes it on, a chunk at a time (a pipeline), and the last rank broadcasts the total.
 * Every element is then ((g0 + g1) + g2) + ..., the order in which one process accumulating
 * the same micro-batches adds them, so N ranks give the bytes of N accumulation steps. */
static void allreduce_ordered_chain(float *p, uint64_t n, uint64_t chunk)
{
	float *in = comm.rank > 0 ? malloc((size_t)(n < chunk ? n : chunk) * sizeof(float) + 1) : NULL;
	if (comm.rank > 0 && !in)
		die("out of memory");
	for (uint64_t i = 0; i < n; i += chunk) {
		int k = (int)(n - i < chunk ? n - i : chunk);
		if (comm.rank > 0) {
			check(MPI_Recv(in, k, MPI_FLOAT, comm.rank - 1, 0, MPI_COMM_WORLD,
				       MPI_STATUS_IGNORE), "MPI_Recv");
			for (int j = 0; j < k; j++)
				p[i + j] = in[j] + p[i + j];
		}
		if (comm.rank < comm.size - 1)
			check(MPI_Send(p + i, k, MPI_FLOAT, comm.rank + 1, 0, MPI_COMM_WORLD), "MPI_Send");
	}
	free(in);
}

/* the rank-order sum on the last rank alone */
static void allreduce_ordered_to_last(float *p, uint64_t n)
{
	allreduce_ordered_chain(p, n, (uint64_t)1 << 20);
}

static void allreduce_ordered(float *p, uint64_t n, uint64_t chunk)
{
	allreduce_ordered_chain(p, n, chunk < ((uint64_t)1 << 20) ? chunk : (uint64_t)1 << 20);
	for (uint64_t i = 0; i < n; i += chunk) {
		int k = (int)(n - i < chunk ? n - i : chunk);
		check(MPI_Bcast(p + i, k, MPI_FLOAT, comm.size - 1, MPI_COMM_WORLD), "MPI_Bcast");
	}
}
#endif

void comm_allreduce_chunked(void *p, uint64_t n, int dbl, uint64_t chunk)
{
#ifdef CP_HAVE_MPI
	if (comm.size > 1 && !dbl) {
		wd_begin("sum of the gradients in rank order (MPI_Send, MPI_Recv, MPI_Bcast)");
		allreduce_ordered(p, n, chunk);
		wd_end();
	} else if (comm.size > 1) {
		wd_begin("allreduce of the loss or norm (MPI_Allreduce)");
		for (uint64_t i = 0; i < n; i += chunk) {
			int k = (int)(n - i < chunk ? n - i : chunk);
			check(MPI_Allreduce(MPI_IN_PLACE, (char *)p + i * sizeof(double), k,
					    MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "MPI_Allreduce");
		}
		wd_end();
	}
#else
	(void)p;
	(void)n;
	(void)dbl;
	(void)chunk;
#endif
}

static void comm_bcast(void *p, uint64_t n, int root)
{
#ifdef CP_HAVE_MPI
	if (comm.size > 1) {
		wd_begin("broadcast (MPI_Bcast)");
		check(MPI_Bcast(p, count_of(n), MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
		wd_end();
	}
#else
	(void)p;
	(void)n;
	(void)root;
#endif
}

/* a device backend's collectives (NCCL) under the same watchdog as MPI's */
static void comm_watch(const char *what)
{
#ifdef CP_HAVE_MPI
	if (comm.size < 2)
		return;
	if (what)
		wd_begin(what);
	else
		wd_end();
#else
	(void)what;
#endif
}

void comm_allreduce(void *p, uint64_t n, int dbl)
{
	comm_allreduce_chunked(p, n, dbl, (uint64_t)1 << 30);
}

#ifdef CP_HAVE_MPI
/* MPI's int counts, then displacements, of the shards OFF[0..size] (malloc'd) */
static int *counts_of(const uint64_t *off)
{
	int *cnt = calloc((size_t)comm.size, 2 * sizeof(int));
	if (!cnt)
		die("out of memory");
	for (int r = 0; r < comm.size; r++) {
		cnt[r] = count_of(off[r + 1] - off[r]);
		cnt[comm.size + r] = count_of(off[r]);
	}
	return cnt;
}
#endif

void comm_reduce_scatter(float *all, float *mine, const uint64_t *off)
{
	if (comm.size == 1) {
		memmove(mine, all, (off[1] - off[0]) * sizeof(float));
		return;
	}
#ifdef CP_HAVE_MPI
	int *cnt = counts_of(off);
	/* the sum in rank order, as the all-reduce makes it, then each rank its shard */
	wd_begin("sum of the gradients in rank order (MPI_Send, MPI_Recv)");
	uint64_t n = off[comm.size];
	allreduce_ordered_to_last(all, n);
	wd_end();
	wd_begin("scatter of the gradients' shards (MPI_Scatterv)");
	check(MPI_Scatterv(all, cnt, cnt + comm.size, MPI_FLOAT, mine, cnt[comm.rank], MPI_FLOAT,
			   comm.size - 1, MPI_COMM_WORLD), "MPI_Scatterv");
	wd_end();
	free(cnt);
#endif
}

void comm_allgather(float *all, const uint64_t *off)
{
	if (comm.size == 1)
		return;
	(void)all;
	(void)off;
#ifdef CP_HAVE_MPI
	int *cnt = counts_of(off);
	wd_begin("all-gather of the parameters (MPI_Allgatherv)");
	check(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, all, cnt, cnt + comm.size,
			     MPI_FLOAT, MPI_COMM_WORLD), "MPI_Allgatherv");
	wd_end();
	free(cnt);
#endif
}

void comm_gather(const float *mine, float *all, const uint64_t *off)
{
	if (comm.size == 1) {
		memmove(all, mine, (off[1] - off[0]) * sizeof(float));
		return;
	}
#ifdef CP_HAVE_MPI
	int *cnt = counts_of(off);
	/* rank 0's shard may already lie in place in ALL (a device backend's master weights) */
	const void *send = comm.rank == 0 && mine == all + off[0] ? MPI_IN_PLACE : (const void *)mine;
	wd_begin("gather of the optimizer shards (MPI_Gatherv)");
	check(MPI_Gatherv(send, cnt[comm.rank], MPI_FLOAT, all, cnt, cnt + comm.size, MPI_FLOAT, 0,
			  MPI_COMM_WORLD), "MPI_Gatherv");
	wd_end();
	free(cnt);
#endif
}
