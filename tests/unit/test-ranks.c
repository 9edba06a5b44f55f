/* test-ranks: the data stages' MPI layer. As one rank (no launcher) every exchange is a copy
 * to itself; then, when mpirun is there, this program runs itself on 2 and 3 ranks with
 * pieces of 1000 bytes, each rank checking what it is sent against what the senders' rule
 * says they sent: buffers of every rank to every rank (some of several pieces, some empty),
 * gathers with their offsets, a broadcast, sums, maxima and the prefix sum. */
#include "tap.h"
#include "base/buf.h"
#include "base/ranks.h"
#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* what rank A sends rank B, and its bytes */
static size_t len_of(int a, int b)
{
	return a == b && !a ? 0 : (size_t)(100 * a + 37 * b + (b == 1 ? 2500 : 0));
}

static unsigned char byte_of(int a, int b, size_t k)
{
	return (unsigned char)(a * 31 + b * 7 + (int)k);
}

static int check_alltoallv(int me, int n)
{
	struct buf *out = xcalloc((size_t)n, sizeof *out), *in = xcalloc((size_t)n, sizeof *in);
	int bad = 0;
	for (int j = 0; j < n; j++) {
		for (size_t k = 0; k < len_of(me, j); k++)
			buf_putc(&out[j], byte_of(me, j, k));
		buf_puts(&in[j], "stale");	/* replaced, not appended to */
	}
	ranks_alltoallv(out, in);
	for (int j = 0; j < n; j++) {
		bad |= in[j].len != len_of(j, me);
		for (size_t k = 0; k < in[j].len && !bad; k++)
			bad |= in[j].p[k] != byte_of(j, me, k);
		buf_free(&out[j]);
		buf_free(&in[j]);
	}
	free(out);
	free(in);
	return bad;
}

static int check_gather_bcast(int me, int n)
{
	int bad = 0;
	unsigned char mine[8];
	memset(mine, me * 3, sizeof mine);
	struct buf all = { 0 };
	size_t off[8];
	ranks_gather(mine, (size_t)me + 1, &all, off);
	if (!me) {
		bad |= all.len != (size_t)n * (n + 1) / 2;
		for (int r = 0; r < n && !bad; r++) {
			bad |= off[r] != (size_t)r * (r + 1) / 2 || off[r + 1] - off[r] != (size_t)r + 1;
			bad |= all.p[off[r]] != r * 3;
		}
	}
	buf_reset(&all);
	if (!me)
		for (int k = 0; k < 2500; k++)
			buf_putc(&all, k * 13);
	ranks_bcast(&all);
	bad |= all.len != 2500;
	for (int k = 0; k < 2500 && !bad; k++)
		bad |= all.p[k] != (unsigned char)(k * 13);
	buf_free(&all);
	return bad;
}

static int check_sums(int me, int n)
{
	uint64_t v[2] = { (uint64_t)me, 1 }, m[1] = { (uint64_t)me * 5 };
	ranks_sum_u64(v, 2);
	ranks_max_u64(m, 1);
	uint64_t before = ranks_exscan_u64((uint64_t)me);
	return v[0] != (uint64_t)n * (n - 1) / 2 || v[1] != (uint64_t)n ||
	       m[0] != (uint64_t)(n - 1) * 5 || before != (uint64_t)me * (me - 1) / 2 ||
	       ranks_any(me == n - 1) != 1 || ranks_any(0) != 0;
}

/* one rank of the job: 0 when every check passed on every rank */
static int child(int argc, char **argv)
{
	ranks_init(&argc, &argv);
	int me = ranks_me(), n = ranks_count();
	/* every rank takes part in every exchange, whatever it found before (no ||) */
	int bad = n != atoi(getenv("CP_TEST_RANKS_CHILD"));
	bad |= check_alltoallv(me, n);
	bad |= check_gather_bcast(me, n);
	bad |= check_sums(me, n);
	ranks_exit(ranks_any(bad));
}

int main(int argc, char **argv)
{
	if (getenv("CP_TEST_RANKS_CHILD"))
		return child(argc, argv);
	is_int(ranks_init(&argc, &argv), 0, "no launcher: no job joined");
	is_int(ranks_me(), 0, "rank 0");
	is_int(ranks_count(), 1, "of 1");
	ok(!check_alltoallv(0, 1), "all-to-all: this rank's buffer to itself");
	ok(!check_gather_bcast(0, 1), "gather and broadcast: its own bytes");
	ok(!check_sums(0, 1), "sums, maxima, prefix sum and 'any' of one rank");
	const char *why = !ranks_have_mpi() ? "built without MPI" :
			  system("command -v mpirun >/dev/null 2>&1") ? "mpirun not installed" : NULL;
	if (why) {
		for (int n = 2; n <= 3; n++)
			printf("ok %d # skip %s\n", ++tap_n, why);
		return done_testing();
	}
	for (int n = 2; n <= 3; n++) {
		char cmd[4096];
		/* OpenMPI keeps allocations to the end: no leak reports from sanitizer builds */
		snprintf(cmd, sizeof cmd, "CP_TEST_RANKS_CHILD=%d CP_RANKS_PIECE=1000 "
			 "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "
			 "OMPI_MCA_btl_vader_single_copy_mechanism=none "
			 "mpirun --allow-run-as-root --oversubscribe -np %d '%s' >/dev/null 2>&1",
			 n, n, argv[0]);
		ok(system(cmd) == 0, "%d ranks, pieces of 1000 bytes: every exchange as its rule says", n);
	}
	return done_testing();
}
