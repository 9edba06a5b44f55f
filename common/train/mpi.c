/* mpi.c: the MPI layer of cp-train (see mpi.h). The one place a job-wide collective is
 * called; a GPU backend reduces its own buffers (NCCL) through backend.h instead. */
#include "train/mpi.h"
#include "base/die.h"

#include <stdlib.h>

#ifdef CP_HAVE_MPI
#include <mpi.h>
#endif

static struct gpt2_comm comm = { 0, 1, comm_allreduce };
static int comm_live;

#ifdef CP_HAVE_MPI
static void comm_abort_on_exit(int status, void *arg)
{
	(void)arg;
	/* a rank that dies must not leave the others waiting in a collective */
	if (comm_live)
		MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
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
		comm_live = 1;
		on_exit(comm_abort_on_exit, NULL);
	}
#else
	(void)argc;
	(void)argv;
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

void comm_allreduce_chunked(void *p, uint64_t n, int dbl, uint64_t chunk)
{
#ifdef CP_HAVE_MPI
	if (comm.size > 1) {
		size_t es = dbl ? sizeof(double) : sizeof(float);
		for (uint64_t i = 0; i < n; i += chunk) {
			int k = (int)(n - i < chunk ? n - i : chunk);
			if (MPI_Allreduce(MPI_IN_PLACE, (char *)p + i * es, k,
					  dbl ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
					  MPI_COMM_WORLD) != MPI_SUCCESS)
				die("MPI_Allreduce failed");
		}
	}
#else
	(void)p;
	(void)n;
	(void)dbl;
	(void)chunk;
#endif
}

void comm_allreduce(void *p, uint64_t n, int dbl)
{
	comm_allreduce_chunked(p, n, dbl, (uint64_t)1 << 30);
}
