/* ranks.c: the data stages' MPI layer (ranks.h). Without MPI, or without a launcher, there
 * is one rank and every exchange is a copy to itself. */
#include "base/ranks.h"
#include "base/die.h"
#include "base/util.h"
#include "base/xalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef CP_HAVE_MPI
#include <mpi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#endif

static int me, count = 1, live;

#ifdef CP_HAVE_MPI
/* the most bytes one MPI call moves: its counts and offsets are ints (CP_RANKS_PIECE makes
 * it small, for tests of the pieces) */
static size_t piece = (size_t)1 << 30;
#define PIECE piece
#endif

int ranks_have_mpi(void)
{
#ifdef CP_HAVE_MPI
	return 1;
#else
	return 0;
#endif
}

int ranks_me(void) { return me; }
int ranks_count(void) { return count; }

#ifdef CP_HAVE_MPI
static void abort_on_exit(int status, void *arg)
{
	(void)arg;
	if (live)
		MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
}

static void check(int r, const char *what)
{
	if (r != MPI_SUCCESS)
		die("%s failed", what);
}

/* Wait for R, spinning only for a while. MPI's blocking calls poll a core at full speed
 * however long the peer works; with as many ranks as cores (or a machine shared with other
 * work) that steals the peer's CPU: cp-hash on 2 ranks of 2 busy cores took 4x one rank's
 * time. So a millisecond of polling, what the ranks' turns mostly wait, as fast as MPI's
 * own; then sleeps that grow to a fifth of a millisecond (a longer one oversleeps the peer
 * by as much, on each of cp-hash's 86 turns on the standard library). Only for what is
 * small (a header, a barrier): MPI moves a large transfer on only when called, so the
 * transfers themselves run blocking, once both ends are known to be there. */
static void wait_req_status(MPI_Request *r, MPI_Status *st, const char *what)
{
	struct timespec ts = { 0, 16000 };
	double spin_until = mono_now() + 1e-3;
	for (int i = 0;; i++) {
		int done = 0;
		check(MPI_Test(r, &done, st), what);
		if (done)
			return;
		if ((i & 63) || mono_now() < spin_until)
			continue;
		nanosleep(&ts, NULL);
		if (ts.tv_nsec < 200000)
			ts.tv_nsec *= 2;
	}
}

static void wait_req(MPI_Request *r, const char *what)
{
	wait_req_status(r, MPI_STATUS_IGNORE, what);
}

/* Every rank at a collective exchange, waited for asleep: the exchange then blocks only as
 * long as it moves bytes. */
static void arrive(void)
{
	MPI_Request r;
	check(MPI_Ibarrier(MPI_COMM_WORLD, &r), "MPI_Ibarrier");
	wait_req(&r, "MPI_Ibarrier");
}

enum { TAG_DATA, TAG_GO, TAG_NOTE };

/* notes sent and not yet known to be received: their requests and bytes */
static MPI_Request *note_req;
static char **note_buf;
static size_t n_notes;

static void notes_reap(int all)
{
	size_t k = 0;
	for (size_t i = 0; i < n_notes; i++) {
		int done = 0;
		if (all)
			wait_req(&note_req[i], "MPI_Isend");
		else
			check(MPI_Test(&note_req[i], &done, MPI_STATUS_IGNORE), "MPI_Test");
		if (all || done) {
			free(note_buf[i]);
			continue;
		}
		note_req[k] = note_req[i];
		note_buf[k++] = note_buf[i];
	}
	n_notes = k;
}

/* Nagle off on every TCP socket MPI_Init left open. Open MPI's PMIx client talks to its
 * launcher over loopback TCP with Nagle on: MPI_Finalize's fence sends four small messages in
 * a row, the later ones wait for the first's delayed ACK, and every rank's exit took 40 ms
 * longer (0.046 s against 0.006 s here). Sockets MPI's own transports made have it off
 * already. */
static void tcp_nodelay_all(void)
{
	struct rlimit rl;
	int top = !getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 4096 ? (int)rl.rlim_cur : 4096;
	/* descriptors are handed out lowest first: a long run of closed ones is the end */
	for (int fd = 3, closed = 0; fd < top && closed < 64; fd++) {
		int type, one = 1;
		socklen_t len = sizeof type;
		struct sockaddr_storage sa;
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len)) {
			closed = errno == EBADF ? closed + 1 : 0;
			continue;
		}
		closed = 0;
		if (type != SOCK_STREAM)
			continue;
		len = sizeof sa;
		if (getsockname(fd, (struct sockaddr *)&sa, &len) ||
		    (sa.ss_family != AF_INET && sa.ss_family != AF_INET6))
			continue;
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
}
#endif

int ranks_init(int *argc, char ***argv)
{
#ifdef CP_HAVE_MPI
	if (!live && (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE"))) {
		int got;
		/* Open MPI's defaults, where the user (or mpirun --mca) set none: what still
		 * blocks inside MPI (a transfer under way, MPI_Finalize) yields the core; and
		 * not the cm PML, whose start (libfabric's and PSM's probing for their
		 * networks) took 0.2 s of the 0.4 s each mpirun of a tool took here to start, a
		 * tenth of cp-dedup on the standard library; ob1 carries what these stages move
		 * over shared memory and TCP */
		setenv("OMPI_MCA_mpi_yield_when_idle", "1", 0);
		setenv("OMPI_MCA_pml", "^cm", 0);
		/* and hwloc, which MPI_Init has map the machine, without its devices: reading
		 * the PCI configuration of three virtual ones took a quarter of MPI_Init's CPU
		 * time here (it took 0.076-0.082 s, 0.062 s without); the shared memory and TCP
		 * these stages' exchanges use need no device's place */
		setenv("HWLOC_COMPONENTS", "-linuxio,-pci", 0);
		if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &got) != MPI_SUCCESS)
			die("MPI_Init failed");
		if (got < MPI_THREAD_SERIALIZED)
			die("this MPI cannot be called from more than the main thread");
		const char *env = getenv("CP_RANKS_PIECE");
		if (env && atol(env) >= 64)
			piece = (size_t)atol(env);
		MPI_Comm_rank(MPI_COMM_WORLD, &me);
		MPI_Comm_size(MPI_COMM_WORLD, &count);
		tcp_nodelay_all();
		live = 1;
		on_exit(abort_on_exit, NULL);
	}
#else
	(void)argc;
	(void)argv;
	ranks_refuse_unjoined();
#endif
	return live;
}

/* The ranks a launcher says it started (its environment), or 0 when none did */
static int ranks_launched(void)
{
	const char *names[] = { "OMPI_COMM_WORLD_SIZE", "PMI_SIZE" };
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		const char *v = getenv(names[i]);
		if (v && atoi(v) > 0)
			return atoi(v);
	}
	return 0;
}

void ranks_refuse_unjoined(void)
{
	/* else every rank would read the whole input, or train alone, and write the same
	 * outputs over each other */
	int n = ranks_launched();
	if (n > 1 && !live)
		die("started as one of %d ranks (by mpirun), but built without MPI (pkg-config found "
		    "no ompi-c): install OpenMPI's development files (scripts/deps) and rebuild", n);
}

void ranks_finish(void)
{
#ifdef CP_HAVE_MPI
	if (live) {
		notes_reap(1);
		free(note_req);
		free(note_buf);
		live = 0;
		MPI_Finalize();
	}
#endif
}

void ranks_exit(int code)
{
#ifdef CP_HAVE_MPI
	if (live)
		arrive();
#endif
	ranks_finish();
	exit(code);
}

void ranks_send(int to, const void *p, size_t n)
{
#ifdef CP_HAVE_MPI
	/* the length, then the bytes once the receiver says it is there for them */
	uint64_t len = n;
	char go;
	MPI_Request r;
	check(MPI_Send(&len, 1, MPI_UINT64_T, to, TAG_DATA, MPI_COMM_WORLD), "MPI_Send");
	check(MPI_Irecv(&go, 1, MPI_CHAR, to, TAG_GO, MPI_COMM_WORLD, &r), "MPI_Irecv");
	wait_req(&r, "MPI_Irecv");
	for (size_t i = 0; i < n; i += PIECE) {
		size_t k = n - i < PIECE ? n - i : PIECE;
		check(MPI_Send((const char *)p + i, (int)k, MPI_BYTE, to, TAG_DATA, MPI_COMM_WORLD),
		      "MPI_Send");
	}
#else
	(void)to;
	(void)p;
	(void)n;
	die("no rank to send to");
#endif
}

void ranks_recv(int from, struct buf *b)
{
#ifdef CP_HAVE_MPI
	uint64_t len;
	char go = 1;
	MPI_Request r;
	check(MPI_Irecv(&len, 1, MPI_UINT64_T, from, TAG_DATA, MPI_COMM_WORLD, &r), "MPI_Irecv");
	wait_req(&r, "MPI_Irecv");
	buf_reset(b);
	buf_grow(b, (size_t)len);
	check(MPI_Send(&go, 1, MPI_CHAR, from, TAG_GO, MPI_COMM_WORLD), "MPI_Send");
	for (size_t i = 0; i < len; i += PIECE) {
		size_t k = len - i < PIECE ? len - i : PIECE;
		check(MPI_Recv(b->p + i, (int)k, MPI_BYTE, from, TAG_DATA, MPI_COMM_WORLD,
			       MPI_STATUS_IGNORE), "MPI_Recv");
	}
	b->len = (size_t)len;
#else
	(void)from;
	(void)b;
	die("no rank to receive from");
#endif
}

void ranks_note_send(int to, const void *p, size_t n)
{
#ifdef CP_HAVE_MPI
	if (n > RANKS_NOTE_MAX)
		die("a note of %zu bytes is too long", n);
	notes_reap(0);
	note_req = xreallocarray(note_req, n_notes + 1, sizeof *note_req);
	note_buf = xreallocarray(note_buf, n_notes + 1, sizeof *note_buf);
	note_buf[n_notes] = xmalloc(n ? n : 1);
	memcpy(note_buf[n_notes], p, n);
	check(MPI_Isend(note_buf[n_notes], (int)n, MPI_BYTE, to, TAG_NOTE, MPI_COMM_WORLD,
			&note_req[n_notes]), "MPI_Isend");
	n_notes++;
#else
	(void)to;
	(void)p;
	(void)n;
	die("no rank to send to");
#endif
}

void ranks_note_recv(int from, struct buf *b)
{
#ifdef CP_HAVE_MPI
	MPI_Request r;
	MPI_Status st;
	int n;
	buf_reset(b);
	buf_grow(b, RANKS_NOTE_MAX);
	check(MPI_Irecv(b->p, RANKS_NOTE_MAX, MPI_BYTE, from, TAG_NOTE, MPI_COMM_WORLD, &r),
	      "MPI_Irecv");
	wait_req_status(&r, &st, "MPI_Irecv");
	check(MPI_Get_count(&st, MPI_BYTE, &n), "MPI_Get_count");
	b->len = (size_t)n;
#else
	(void)from;
	(void)b;
	die("no rank to receive from");
#endif
}

int ranks_note_ready(int from)
{
#ifdef CP_HAVE_MPI
	int flag = 0;
	check(MPI_Iprobe(from, TAG_NOTE, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE), "MPI_Iprobe");
	return flag;
#else
	(void)from;
	return 1;
#endif
}

#ifdef CP_HAVE_MPI
/* One round of the all-to-all: at most PER bytes to each rank, from offset DONE of each
 * buffer on. */
static void alltoallv_round(const struct buf *send, struct buf *recv, const uint64_t *want,
			    size_t done, size_t per, struct buf *sb, struct buf *rb)
{
	int *sc = xcalloc(4 * (size_t)count, sizeof *sc), *sd = sc + count, *rc = sd + count,
	    *rd = rc + count;
	size_t st = 0, rt = 0;
	for (int j = 0; j < count; j++) {
		size_t s = send[j].len > done ? send[j].len - done : 0;
		size_t r = want[j] > done ? (size_t)want[j] - done : 0;
		sc[j] = (int)(s < per ? s : per);
		rc[j] = (int)(r < per ? r : per);
		sd[j] = (int)st;
		rd[j] = (int)rt;
		st += (size_t)sc[j];
		rt += (size_t)rc[j];
	}
	buf_reset(sb);
	buf_grow(sb, st + 1);
	for (int j = 0; j < count; j++)
		if (sc[j])
			memcpy(sb->p + sd[j], send[j].p + done, (size_t)sc[j]);
	buf_reset(rb);
	buf_grow(rb, rt + 1);
	arrive();
	check(MPI_Alltoallv(sb->p, sc, sd, MPI_BYTE, rb->p, rc, rd, MPI_BYTE, MPI_COMM_WORLD),
	      "MPI_Alltoallv");
	for (int j = 0; j < count; j++)
		if (rc[j])
			buf_put(&recv[j], rb->p + rd[j], (size_t)rc[j]);
	free(sc);
}
#endif

void ranks_alltoallv(const struct buf *send, struct buf *recv)
{
	if (count == 1) {
		buf_reset(&recv[0]);
		buf_put(&recv[0], send[0].p, send[0].len);
		return;
	}
#ifdef CP_HAVE_MPI
	uint64_t *len = xcalloc(2 * (size_t)count, sizeof *len), *want = len + count, most = 0;
	for (int j = 0; j < count; j++) {
		len[j] = send[j].len;
		most = len[j] > most ? len[j] : most;
	}
	arrive();
	check(MPI_Alltoall(len, 1, MPI_UINT64_T, want, 1, MPI_UINT64_T, MPI_COMM_WORLD),
	      "MPI_Alltoall");
	ranks_max_u64(&most, 1);
	for (int j = 0; j < count; j++) {
		buf_reset(&recv[j]);
		buf_grow(&recv[j], (size_t)want[j]);
	}
	/* all ranks run the same rounds: the largest buffer anyone sends decides them */
	size_t per = PIECE / (size_t)count;
	struct buf sb = { 0 }, rb = { 0 };
	size_t done = 0;
	do {
		alltoallv_round(send, recv, want, done, per, &sb, &rb);
		done += per;
	} while (done < most);
	buf_free(&sb);
	buf_free(&rb);
	free(len);
#endif
}

void ranks_gather(const void *p, size_t n, struct buf *all, size_t *off)
{
	if (me) {
		ranks_send(0, p, n);
		return;
	}
	buf_reset(all);
	buf_put(all, p, n);
	if (off) {
		off[0] = 0;
		off[1] = n;
	}
	struct buf b = { 0 };
	for (int j = 1; j < count; j++) {
		ranks_recv(j, &b);
		buf_put(all, b.p, b.len);
		if (off)
			off[j + 1] = all->len;
	}
	buf_free(&b);
}

void ranks_bcast(struct buf *b)
{
#ifdef CP_HAVE_MPI
	if (count == 1)
		return;
	uint64_t len = b->len;
	arrive();
	check(MPI_Bcast(&len, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD), "MPI_Bcast");
	if (me) {
		buf_reset(b);
		buf_grow(b, (size_t)len);
		b->len = (size_t)len;
	}
	for (size_t i = 0; i < len; i += PIECE) {
		size_t k = len - i < PIECE ? len - i : PIECE;
		check(MPI_Bcast(b->p + i, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast");
	}
#else
	(void)b;
#endif
}

#ifdef CP_HAVE_MPI
static void reduce(uint64_t *v, size_t n, MPI_Op op)
{
	arrive();
	for (size_t i = 0; i < n; i += PIECE / 8) {
		size_t k = n - i < PIECE / 8 ? n - i : PIECE / 8;
		check(MPI_Allreduce(MPI_IN_PLACE, v + i, (int)k, MPI_UINT64_T, op, MPI_COMM_WORLD),
		      "MPI_Allreduce");
	}
}
#endif

static void reduce_u64(uint64_t *v, size_t n, int max)
{
#ifdef CP_HAVE_MPI
	if (count > 1)
		reduce(v, n, max ? MPI_MAX : MPI_SUM);
#else
	(void)v;
	(void)n;
	(void)max;
#endif
}

void ranks_sum_u64(uint64_t *v, size_t n)
{
	reduce_u64(v, n, 0);
}

void ranks_max_u64(uint64_t *v, size_t n)
{
	reduce_u64(v, n, 1);
}

uint64_t ranks_exscan_u64(uint64_t v)
{
	uint64_t r = 0;
#ifdef CP_HAVE_MPI
	if (count > 1) {
		arrive();
		check(MPI_Exscan(&v, &r, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD), "MPI_Exscan");
	}
	if (!me)
		r = 0;	/* MPI leaves rank 0's undefined */
#else
	(void)v;
#endif
	return r;
}

int ranks_any(int failed)
{
	uint64_t f = failed != 0;
	ranks_max_u64(&f, 1);
	return f != 0;
}
