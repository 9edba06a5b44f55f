/* test-seqdata.c: cp-train's sequence data: shards of sequences written here (the records
 * encoded by hand, not with seqrec.h) read back by global index in any order, across shard
 * boundaries and wrapping around; a rank's slice of training and evaluation batches checked
 * against the indices computed directly; bad data refused with a message naming the file. */
#include "tap.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "shard/set.h"
#include "shard/shard.h"
#include "train/seqdata.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-seqdata.XXXXXX";

/* DIR/SUB (a static buffer) */
static const char *path_in(const char *d, const char *sub)
{
	static char p[256];
	snprintf(p, sizeof p, "%s/%s", d, sub);
	return p;
}

/* token T of global sequence G of a data set with vocabulary V */
static uint32_t tok(uint64_t g, uint64_t t, uint64_t v)
{
	return (uint32_t)((g * 131 + t * 17 + g * t) % v);
}

/* Write shard NAME under SUB holding sequences FIRST .. FIRST+N-1 of length T; BAD_AT >= 0
 * puts the id V (out of range) into that record. */
static void write_seqs(const char *sub, const char *name, uint64_t first, uint64_t n, uint64_t v,
		       uint64_t T, long bad_at)
{
	char *d = xasprintf("%s/%s", dir, sub);
	mkdir(d, 0755);
	char *path = xasprintf("%s/%s", d, name);
	uint64_t param[2] = { v, T };
	struct shard_writer *w = shard_create(path, SHARD_SEQS, param);
	unsigned width = v <= 65536 ? 2 : 4;
	unsigned char *rec = xmalloc(T * width);
	for (uint64_t i = 0; i < n; i++) {
		for (uint64_t t = 0; t < T; t++) {
			uint32_t id = (long)i == bad_at && t == 1 ? (uint32_t)v : tok(first + i, t, v);
			for (unsigned b = 0; b < width; b++)
				rec[t * width + b] = (unsigned char)(id >> (8 * b));
		}
		if (shard_write(w, rec, T * width))
			abort();
	}
	if (!w || shard_close(w))
		abort();
	/* as a finished run leaves it: in the directory's set manifest (shard/set.h) */
	struct shardset set;
	if (shardset_load(d, &set) < 0 || shardset_add_file(&set, path, name) ||
	    shardset_write(d, &set))
		abort();
	shardset_free(&set);
	free(rec);
	free(path);
	free(d);
}

/* 1 when OUT holds sequences G0, G0+1, ... (N of them, mod TOTAL), their first T ids */
static int holds(const uint32_t *out, uint64_t g0, uint64_t n, uint64_t total, uint64_t T,
		 uint64_t v)
{
	for (uint64_t k = 0; k < n; k++)
		for (uint64_t t = 0; t < T; t++)
			if (out[k * T + t] != tok((g0 + k) % total, t, v))
				return 0;
	return 1;
}

/* every sequence, in a scattered order that jumps between shards and past the end */
static void check_random_access(struct seqdata *d, uint64_t v, const char *what)
{
	uint32_t *out = xcalloc(d->T, sizeof(uint32_t));
	int good = 1;
	uint64_t x = 1;
	for (int i = 0; i < 400; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t g = (x >> 33) % (3 * d->total);
		uint64_t T = 2 + (x >> 20) % (d->T - 1);
		seqdata_get(d, g, out, T);
		good &= holds(out, g, 1, d->total, T, v);
	}
	for (uint64_t g = 0; g < 2 * d->total; g++) {	/* sequentially, twice round */
		seqdata_get(d, g, out, d->T);
		good &= holds(out, g, 1, d->total, d->T, v);
	}
	ok(good, "%s: sequences by global index, any order, wrapping around", what);
	free(out);
}

/* the training batches of steps 0..9: each rank's B_LOCAL sequences follow from the step's
 * first index, and the ranks together take the B consecutive sequences once each */
static void check_train_batches(struct seqdata *d, uint64_t v, uint64_t B, uint64_t A,
				int size)
{
	uint64_t Bl = B / (uint64_t)size, T = d->T;
	uint32_t *out = xcalloc(Bl * T, sizeof(uint32_t));
	uint32_t *all = xcalloc(B * T, sizeof(uint32_t));
	int good = 1;
	for (uint64_t step = 0, pos = 0; step < 10; step++, pos += A * B)
		for (uint64_t a = 0; a < A; a++) {
			for (int rank = 0; rank < size; rank++) {
				uint64_t k = seqdata_batch(d, pos + a * B, B, UINT64_MAX, rank, Bl,
							   out, T);
				good &= k == Bl;
				good &= holds(out, pos + a * B + (uint64_t)rank * Bl, Bl, d->total, T, v);
				memcpy(all + (uint64_t)rank * Bl * T, out, Bl * T * sizeof(uint32_t));
			}
			good &= holds(all, pos + a * B, B, d->total, T, v);
		}
	ok(good, "training batches: batch %llu, accum %llu, %d ranks", (unsigned long long)B,
	   (unsigned long long)A, size);
	free(out);
	free(all);
}

/* the evaluation batches of the first N sequences: batches of B from 0, each rank's part of
 * each, the last one cut at N; together they cover 0..N-1 once */
static void check_eval_batches(struct seqdata *d, uint64_t v, uint64_t B, int size, uint64_t n)
{
	uint64_t Bl = (B + (uint64_t)size - 1) / (uint64_t)size, T = d->T;
	B = Bl * (uint64_t)size;
	uint32_t *out = xcalloc(Bl * T, sizeof(uint32_t));
	unsigned char *seen = xcalloc(n, 1);
	int good = 1;
	for (uint64_t base = 0; base < n; base += B)
		for (int rank = 0; rank < size; rank++) {
			uint64_t lo = base + (uint64_t)rank * Bl;
			uint64_t want = lo >= n ? 0 : n - lo < Bl ? n - lo : Bl;
			uint64_t k = seqdata_batch(d, base, B, n, rank, Bl, out, T);
			good &= k == want && holds(out, lo, k, d->total, T, v);
			for (uint64_t i = 0; i < k; i++)
				seen[lo + i]++;
		}
	for (uint64_t i = 0; i < n; i++)
		good &= seen[i] == 1;
	ok(good, "evaluation batches: %llu sequences, batch %llu, %d ranks",
	   (unsigned long long)n, (unsigned long long)B, size);
	free(out);
	free(seen);
}

/* Run seqdata_open (and read every sequence) on SUB in a child; 1 when it exits 1 with a
 * message containing WANT. */
static int refused(const char *sub, const char *want)
{
	char *d = xasprintf("%s/%s", dir, sub), *errp = xasprintf("%s/%s.err", dir, sub);
	fflush(stdout);
	pid_t pid = fork();
	if (!pid) {
		int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fd, 2);
		struct seqdata s;
		seqdata_open(&s, d);
		uint32_t *out = xcalloc(s.T, sizeof(uint32_t));
		for (uint64_t g = 0; g < s.total; g++)
			seqdata_get(&s, g, out, s.T);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	size_t len;
	char *msg = read_file(errp, &len);
	int r = WIFEXITED(st) && WEXITSTATUS(st) == EXIT_ERR && msg && strstr(msg, want);
	if (!r)
		diag("status %d, message: %s", st, msg ? msg : "(none)");
	free(msg);
	free(errp);
	free(d);
	return r;
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	cp_setprogname("test-seqdata");
	/* 13 sequences of 6 ids over three shards of 5, 1 and 7; and 4-byte ids in a second set */
	write_seqs("a", "s-0.shard", 0, 5, 300, 6, -1);
	write_seqs("a", "s-1.shard", 5, 1, 300, 6, -1);
	write_seqs("a", "s-2.shard", 6, 7, 300, 6, -1);
	write_seqs("wide", "w-0.shard", 0, 4, 70000, 5, -1);
	write_seqs("wide", "w-1.shard", 4, 3, 70000, 5, -1);

	struct seqdata d;
	seqdata_open(&d, path_in(dir, "a"));
	is_int(d.total, 13, "total over the shards");
	is_int(d.n, 3, "three shards");
	ok(d.vocab == 300 && d.T == 6, "vocabulary and length from the shards' parameters");
	check_random_access(&d, 300, "2-byte ids");
	check_train_batches(&d, 300, 8, 2, 1);
	check_train_batches(&d, 300, 8, 1, 2);
	check_train_batches(&d, 300, 6, 3, 3);
	check_train_batches(&d, 300, 4, 1, 4);
	check_eval_batches(&d, 300, 8, 1, 13);
	check_eval_batches(&d, 300, 8, 2, 13);
	check_eval_batches(&d, 300, 5, 2, 8);	/* rounded up to 6 */
	check_eval_batches(&d, 300, 3, 4, 13);	/* 4 ranks of 1, rounded up from 3 */
	check_eval_batches(&d, 300, 16, 2, 4);	/* one short batch, rank 1 has nothing */
	seqdata_close(&d);

	seqdata_open(&d, path_in(dir, "wide"));
	ok(d.total == 7 && d.vocab == 70000 && d.T == 5, "4-byte ids: parameters");
	check_random_access(&d, 70000, "4-byte ids");
	check_train_batches(&d, 70000, 4, 2, 2);
	seqdata_close(&d);

	write_seqs("mixed", "m-0.shard", 0, 3, 300, 6, -1);
	write_seqs("mixed", "m-1.shard", 3, 3, 300, 7, -1);
	ok(refused("mixed", "m-1.shard': vocabulary 300 and length 7 differ from"),
	   "shards of another length refused, naming both");
	mkdir(path_in(dir, "empty"), 0755);
	ok(refused("empty", "empty' holds no set of shards (no set manifest"),
	   "a directory without a set manifest refused");
	mkdir(path_in(dir, "emptyset"), 0755);
	struct shardset none = { 0 };
	shardset_write(path_in(dir, "emptyset"), &none);
	ok(refused("emptyset", "emptyset': no sequence shards"), "an empty set refused");
	write_seqs("none", "n-0.shard", 0, 0, 300, 6, -1);
	ok(refused("none", "none': the sequence shards hold no sequence"), "no sequences refused");
	write_seqs("bad", "b-0.shard", 0, 4, 300, 6, -1);
	write_seqs("bad", "b-1.shard", 4, 4, 300, 6, 2);
	ok(refused("bad", "b-1.shard': record 2 is not a sequence of 6 ids below 300"),
	   "an id outside the vocabulary refused, naming file and record");
	write_seqs("short", "t-0.shard", 0, 2, 300, 1, -1);
	ok(refused("short", "t-0.shard': bad sequence shard parameters"), "length 1 refused");

	/* sets no finished run wrote */
	write_seqs("noset", "u-0.shard", 0, 3, 300, 6, -1);
	unlink(path_in(dir, "noset/.set"));
	ok(refused("noset", "noset' holds shards but no set manifest"),
	   "shards without a set manifest refused, naming the directory");
	write_seqs("extra", "x-0.shard", 0, 3, 300, 6, -1);
	write_seqs("extra", "x-1.shard", 3, 3, 300, 6, -1);
	char *m1 = xstrdup(path_in(dir, "extra/.set")), *keep = xasprintf("%s.keep", m1);
	rename(m1, keep);
	write_seqs("extra", "x-2.shard", 6, 3, 300, 6, -1);	/* a set of x-2 alone */
	rename(keep, m1);	/* back to the manifest of x-0 and x-1 */
	seqdata_open(&d, path_in(dir, "extra"));
	ok(d.n == 2 && d.total == 6, "exactly the shards the manifest names are read (2 of 3)");
	seqdata_close(&d);
	write_seqs("extra2", "y-0.shard", 0, 3, 300, 6, -1);
	char *m2 = xstrdup(path_in(dir, "extra2/.set"));
	rename(m2, keep);
	write_seqs("extra2", "y-0.shard", 0, 4, 300, 6, -1);	/* rewritten under the set */
	rename(keep, m2);
	ok(refused("extra2", "extra2': 'y-0.shard' is not the shard the set manifest names"),
	   "a shard changed since its set was written refused");
	unlink(path_in(dir, "extra2/y-0.shard"));
	ok(refused("extra2", "extra2': the set manifest names 'y-0.shard', which is missing"),
	   "a missing shard refused");
	free(keep);
	free(m1);
	free(m2);

	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd))
		diag("cannot remove %s", dir);
	free(cmd);
	return done_testing();
}
