/* test-train.c: what cp-train wires together (common/train/): the MPI layer alone and, when
 * mpirun can start processes here, its sums over 3 ranks and a dying rank taking the job
 * down; the saved options' JSON read back by jansson; the model shape asked for; the log's
 * lines and its truncation on resume; and a run of a tiny model: evaluation against losses
 * computed one sequence at a time, a step's loss, learning rate and positions, checkpoints
 * holding what the run says, and a stopped and resumed run equal to a straight one. */
#include "tap.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "model/ckpt.h"
#include "shard/set.h"
#include "shard/shard.h"
#include "train/log.h"
#include "train/lr-schedule.h"
#include "train/mpi.h"
#include "train/options.h"
#include "train/run.h"

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-test-train.XXXXXX";

static char *path_in(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

/* ---- the MPI layer ---- */

#define MPI_N 100

/* Under mpirun: each rank sums values that depend on its rank, in chunks of 7, and writes
 * what it got to OUT/rank-N; with DIE, rank 1 dies at once while the others wait in a sum. */
static int mpi_child(int argc, char **argv, const char *out, int die_rank1)
{
	const struct gpt2_comm *c = comm_init(&argc, &argv);
	if (die_rank1 && c->rank == 1)
		die("rank 1 gives up");
	float f[MPI_N];
	double d[MPI_N];
	for (int i = 0; i < MPI_N; i++) {
		f[i] = (float)(c->rank + 1) * 0.5f + (float)i;
		d[i] = (double)(c->rank + 1) * 0.25 - (double)i;
	}
	comm_allreduce_chunked(f, MPI_N, 0, 7);
	c->allreduce_host(d, MPI_N, 1);
	char *p = xasprintf("%s/rank-%d", out, c->rank);
	FILE *fp = fopen(p, "w");
	fprintf(fp, "%d %d", c->rank, c->size);
	for (int i = 0; i < MPI_N; i++)
		fprintf(fp, " %.17g %.17g", (double)f[i], d[i]);
	fclose(fp);
	free(p);
	comm_finish();
	return 0;
}

/* rank R's file holds the sums over SIZE ranks, computed here directly */
static int mpi_sums_ok(int r, int size)
{
	char *p = xasprintf("%s/mpi/rank-%d", dir, r);
	FILE *fp = fopen(p, "r");
	free(p);
	int rank, sz, good = fp && fscanf(fp, "%d %d", &rank, &sz) == 2 && rank == r && sz == size;
	double wf = 0, wd = 0;
	for (int k = 1; k <= size; k++) {
		wf += k * 0.5;
		wd += k * 0.25;
	}
	for (int i = 0; good && i < MPI_N; i++) {
		double f, d;
		good = fscanf(fp, "%lg %lg", &f, &d) == 2 && f == wf + size * (double)i &&
		       d == wd - size * (double)i;
	}
	if (fp)
		fclose(fp);
	return good;
}

static int sh(const char *cmd)
{
	int st = system(cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void test_mpi(const char *self)
{
	/* a plain run: one rank, and a sum over it changes nothing */
	const struct gpt2_comm *c = comm_init(&(int){ 0 }, &(char **){ NULL });
	ok(c->rank == 0 && c->size == 1 && c->allreduce_host == comm_allreduce,
	   "without a launcher: rank 0 of 1");
	float f[3] = { 1.5f, -2, 3 };
	double d[2] = { 0.1, 7 };
	c->allreduce_host(f, 3, 0);
	c->allreduce_host(d, 2, 1);
	ok(f[0] == 1.5f && f[1] == -2 && f[2] == 3 && d[0] == 0.1 && d[1] == 7,
	   "one rank: the sum leaves the values");
	comm_finish();

	const char *mpirun = "mpirun --allow-run-as-root --oversubscribe";
	char *probe = xasprintf("%s -np 3 true >/dev/null 2>&1", mpirun);
	int can = !getenv("CP_TEST_NO_MPI") && sh(probe) == 0;
	free(probe);
	if (!can) {
		for (int i = 0; i < 4; i++)
			ok(1, "# skip mpirun cannot start 3 processes here");
		return;
	}
	/* OpenMPI keeps its allocations to the end: no leak reports from sanitizer builds */
	const char *asan = getenv("ASAN_OPTIONS");
	char *a = xasprintf("%s%sdetect_leaks=0", asan ? asan : "", asan ? ":" : "");
	setenv("ASAN_OPTIONS", a, 1);
	free(a);
	setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
	char *cmd = xasprintf("mkdir -p %s/mpi && %s -np 3 %s --mpi-child %s/mpi >%s/mpi.log 2>&1",
			      dir, mpirun, self, dir, dir);
	is_int(sh(cmd), 0, "mpirun -np 3: every rank finishes");
	free(cmd);
	ok(mpi_sums_ok(0, 3) && mpi_sums_ok(1, 3) && mpi_sums_ok(2, 3),
	   "3 ranks: floats (in chunks of 7) and doubles summed over all, on every rank");
	double t0 = mono_now();
	cmd = xasprintf("timeout 60 %s -np 3 %s --mpi-die %s/mpi >%s/mpi-die.log 2>&1", mpirun,
			self, dir, dir);
	int st = sh(cmd);
	free(cmd);
	ok(st != 0 && st != 124, "a rank that dies takes the job down (exit %d, %.1f s)", st,
	   mono_now() - t0);
	char *log = path_in("mpi-die.log");
	size_t len;
	char *msg = read_file(log, &len);
	ok(msg && strstr(msg, "rank 1 gives up"), "with its message");
	free(msg);
	free(log);
}

/* ---- options, shape, log ---- */

static void test_opts_json(void)
{
	struct train_opts o, back;
	train_opts_default(&o);
	o.batch = 12, o.seq = 33, o.accum = 3, o.steps = 77, o.warmup = 5, o.seed = 1ull << 60;
	o.eval_every = 4, o.eval_batches = 0, o.ckpt_every = 9, o.keep = 2;
	o.lr = 1.0 / 3, o.min_frac = 0.05, o.wd = 0.01, o.clip = 0, o.sched = ADAMW_LINEAR;
	char *js = train_opts_json(&o);
	json_t *r = json_loads(js, 0, NULL);
	ok(r && json_object_size(r) == TRAIN_OPT_N, "the JSON is an object of every saved option");
#define U(k, v) (json_integer_value(json_object_get(r, k)) == (json_int_t)(v))
#define D(k, v) (json_number_value(json_object_get(r, k)) == (v))
	ok(U("batch", 12) && U("seq", 33) && U("accum", 3) && U("steps", 77) && U("warmup", 5) &&
	   U("seed", 1ull << 60) && U("eval_every", 4) && U("eval_batches", 0) &&
	   U("ckpt_every", 9) && U("keep", 2), "integers as set");
	ok(D("lr", 1.0 / 3) && D("min_lr_frac", 0.05) && D("wd", 0.01) &&
	   json_number_value(json_object_get(r, "clip")) == 0, "reals round-trip exactly");
	is_str(json_string_value(json_object_get(r, "schedule")), "linear", "schedule by name");
#undef U
#undef D
	json_decref(r);

	train_opts_default(&back);
	ok(train_opts_from_json(&back, js) == 0, "read back");
	char *js2 = train_opts_json(&back);
	is_str(js2, js, "read back: the same options");
	free(js2);
	train_opts_default(&back);
	back.given[TRAIN_OPT_BATCH] = back.given[TRAIN_OPT_LR] = back.given[TRAIN_OPT_SCHEDULE] = 1;
	back.batch = 5, back.lr = 2e-4, back.sched = ADAMW_CONSTANT;
	train_opts_from_json(&back, js);
	ok(back.batch == 5 && back.lr == 2e-4 && back.sched == ADAMW_CONSTANT && back.steps == 77 &&
	   back.wd == 0.01, "options given win over the saved ones, the rest are taken");
	train_opts_default(&back);
	train_opts_from_json(&back, "{\"batch\":\"x\",\"lr\":\"y\",\"schedule\":\"saw\"}");
	ok(back.batch == 8 && back.lr == 5e-4 && back.sched == ADAMW_COSINE,
	   "values of the wrong type are left alone");
	is_int(train_opts_from_json(&back, "{\"batch\":"), -1, "unparsable JSON: -1");
	free(js);
}

static int same_config(const struct gpt2_config *a, const struct gpt2_config *b)
{
	return a->vocab_size == b->vocab_size && a->n_ctx == b->n_ctx &&
	       a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_embd == b->n_embd &&
	       a->scale_attn_by_inverse_layer_idx == b->scale_attn_by_inverse_layer_idx &&
	       a->reorder_and_upcast_attn == b->reorder_and_upcast_attn;
}

static void test_shape(void)
{
	struct train_shape s = TRAIN_SHAPE_NONE;
	struct gpt2_config c, want, base;
	ok(!train_shape_given(&s), "nothing given");
	train_shape_config(&s, &c, 300, NULL);
	gpt2_preset(TRAIN_DEFAULT_MODEL, &want);
	ok(same_config(&c, &want), "a new model: the default preset, its own vocabulary");
	gpt2_preset("gpt2", &base);
	base.n_layer = 3;
	train_shape_config(&s, &c, 300, &base);
	ok(same_config(&c, &base), "a checkpoint's shape when no preset is named");
	s.model = "tiny";
	ok(train_shape_given(&s), "a preset given");
	train_shape_config(&s, &c, 300, NULL);
	gpt2_preset("tiny", &want);
	want.vocab_size = 300;
	ok(same_config(&c, &want), "tiny takes the data's vocabulary");
	train_shape_config(&s, &c, 300, &base);
	want.vocab_size = base.vocab_size;
	ok(same_config(&c, &want), "tiny over a checkpoint takes the checkpoint's vocabulary");
	s.vocab = 1000, s.ctx = 64, s.layers = 3, s.heads = 4, s.width = 64, s.scale_inv = 1;
	s.reorder = 0;
	train_shape_config(&s, &c, 300, NULL);
	want = (struct gpt2_config){ 1000, 64, 3, 4, 64, 1, 0 };
	ok(same_config(&c, &want), "every flag replaces the preset's value");
	s = (struct train_shape)TRAIN_SHAPE_NONE;
	s.reorder = 0;
	ok(train_shape_given(&s), "a 0|1 flag given as 0 counts as given");
}

static void test_log(void)
{
	char *rundir = path_in("logrun");
	mkdir(rundir, 0755);
	char *lp = xasprintf("%s/log.jsonl", rundir);
	ok(train_log_truncate(rundir, 3) == 0 && access(lp, F_OK), "no log: nothing to do");
	struct buf all = { 0 }, want = { 0 };
	for (int s = 0; s <= 12; s++) {
		struct buf line = { 0 };
		train_log_step(&line, (uint64_t)s, 5.0 / (s + 1), 1e-3 * s, 0.5 + s, 1234.56, 0.01);
		if (s % 4 == 0)
			train_log_eval(&line, 4.0 + 1.0 / (s + 1));
		buf_puts(&line, "}\n");
		if (s == 7)
			buf_puts(&all, "not a step line\n");
		buf_put(&all, line.p, line.len);
		if (s <= 6)
			buf_put(&want, line.p, line.len);
		buf_free(&line);
	}
	buf_puts(&all, "{\"step\":13,\"loss\":1");	/* a line cut short by a kill */
	FILE *fp = fopen(lp, "w");
	fwrite(all.p, 1, all.len, fp);
	fclose(fp);
	ok(train_log_truncate(rundir, 6) == 0, "truncate to step 6");
	size_t len;
	char *got = read_file(lp, &len);
	ok(got && len == want.len && !memcmp(got, want.p, len),
	   "the lines of steps 0 to 6 kept, in order, the rest dropped");
	free(got);

	/* each line is JSON holding exactly the values it was given */
	json_t *r = json_loadb((const char *)want.p, strchr((const char *)want.p, '\n') -
			       (const char *)want.p, 0, NULL);
	ok(r && json_integer_value(json_object_get(r, "step")) == 0 &&
	   json_number_value(json_object_get(r, "loss")) == 5.0 &&
	   json_number_value(json_object_get(r, "grad_norm")) == 0.5 &&
	   json_number_value(json_object_get(r, "val_loss")) == 5.0 &&
	   json_number_value(json_object_get(r, "val_ppl")) == exp(5.0) &&
	   json_number_value(json_object_get(r, "tokens_per_s")) == 1234.6,
	   "a step line with its evaluation: the values given (tokens_per_s to 0.1)");
	json_decref(r);
	buf_free(&all);
	buf_free(&want);
	free(lp);
	free(rundir);
}

/* ---- a run of a tiny model ---- */

#define VOCAB 300
#define SEQ_T 16

/* sequences of pseudo-random ids with some structure to learn (each id follows from the one
 * before half the time) */
static void write_data(const char *sub, uint64_t n, uint64_t salt)
{
	char *d = path_in(sub), *p = xasprintf("%s/s-0.shard", d);
	mkdir(d, 0755);
	uint64_t param[2] = { VOCAB, SEQ_T };
	struct shard_writer *w = shard_create(p, SHARD_SEQS, param);
	unsigned char rec[2 * SEQ_T];
	uint64_t x = salt;
	for (uint64_t i = 0; i < n; i++) {
		uint32_t id = 0;
		for (int t = 0; t < SEQ_T; t++) {
			x = mix64(x + 1);
			id = x & 1 ? (id * 7 + 3) % VOCAB : (uint32_t)(x >> 8) % VOCAB;
			rec[2 * t] = (unsigned char)id;
			rec[2 * t + 1] = (unsigned char)(id >> 8);
		}
		if (!w || shard_write(w, rec, sizeof rec))
			abort();
	}
	if (shard_close(w))
		abort();
	/* a directory is read as the set its manifest names (shard/set.h) */
	struct shardset set = { 0 };
	if (shardset_add_file(&set, p, "s-0.shard") || shardset_write(d, &set))
		abort();
	shardset_free(&set);
	free(p);
	free(d);
}

static void run_init(struct train_run *r, const struct gpt2_comm *c, const char *name)
{
	memset(r, 0, sizeof(*r));
	train_opts_default(&r->o);
	r->o.batch = 4, r->o.accum = 2, r->o.steps = 6, r->o.warmup = 2, r->o.lr = 3e-3;
	r->o.eval_every = 3, r->o.eval_batches = 2, r->o.ckpt_every = 2, r->o.keep = 0;
	r->o.seed = 7;
	r->rundir = path_in(name);
	r->be = &gpt2_cpu_backend;
	r->comm = c;
	r->train_dir = path_in("train");
	r->valid_dir = path_in("valid");
	seqdata_open(&r->train, r->train_dir);
	seqdata_open(&r->valid, r->valid_dir);
	r->have_valid = 1;
}

static void run_done(struct train_run *r)
{
	train_finish(r);
	free((char *)r->rundir);
	free((char *)r->train_dir);
	free((char *)r->valid_dir);
}

/* the mean loss of sequences 0..N-1 of the validation data, one at a time */
static double direct_eval(struct train_run *r, uint64_t n)
{
	uint32_t toks[SEQ_T];
	double s = 0;
	for (uint64_t g = 0; g < n; g++) {
		seqdata_get(&r->valid, g, toks, SEQ_T);
		s += r->be->forward(&r->m, toks, 1, SEQ_T);
	}
	return s / (double)n;
}

static int close_to(double a, double b, double rel)
{
	return fabs(a - b) <= rel * fabs(b);
}

static void test_step(const struct gpt2_comm *c)
{
	struct train_run r;
	struct train_shape tiny = TRAIN_SHAPE_NONE;
	tiny.model = "tiny";
	run_init(&r, c, "steprun");
	train_new_model(&r, &tiny, NULL);
	ok(r.cfg.vocab_size == VOCAB && r.rng == mix64(7), "a new tiny model on the data's vocabulary");
	train_setup(&r, 0);
	ok(r.T == SEQ_T && r.B_local == 4, "the data's length, the whole batch on one rank");
	double vl = train_evaluate(&r, 0), want = direct_eval(&r, 10);
	ok(close_to(vl, want, 1e-5), "evaluation of all 10 in batches of 4: %.7f, one by one %.7f",
	   vl, want);
	vl = train_evaluate(&r, 1);
	want = direct_eval(&r, 4);
	ok(close_to(vl, want, 1e-5), "evaluation of 1 batch: the first 4 (%.7f, %.7f)", vl, want);

	/* the loss a step reports is its micro-batches' mean before the update */
	double lsum = 0;
	uint32_t toks[4 * SEQ_T];
	for (uint64_t a = 0; a < 2; a++) {
		for (uint64_t k = 0; k < 4; k++)
			seqdata_get(&r.train, a * 4 + k, toks + k * SEQ_T, SEQ_T);
		lsum += r.be->forward(&r.m, toks, 4, SEQ_T);
	}
	float *before = xmalloc(r.m.lay.total * sizeof(float));
	memcpy(before, r.m.params, r.m.lay.total * sizeof(float));
	double gnorm, lr;
	float loss = train_step(&r, &gnorm, &lr);
	ok(close_to(loss, lsum / 2, 1e-6), "a step's loss: the mean over its 2 micro-batches");
	ok(lr == adamw_lr(ADAMW_COSINE, 0, 6, 2, 3e-3, 0.1), "the schedule's learning rate");
	ok(gnorm > 0 && isfinite(gnorm), "a gradient norm");
	ok(r.step == 1 && r.data_pos == 8 && r.rng == mix64(mix64(7)),
	   "step, data position (accum x batch) and generator advance");
	ok(memcmp(before, r.m.params, r.m.lay.total * sizeof(float)), "the parameters moved");
	free(before);
	run_done(&r);
}

/* the log of run NAME without its timing fields */
static char *log_untimed(const char *name)
{
	char *p = xasprintf("%s/%s/log.jsonl", dir, name);
	size_t len;
	char *s = read_file(p, &len);
	free(p);
	if (!s)
		return xstrdup("");
	char *t;
	while ((t = strstr(s, ",\"tokens_per_s\":"))) {
		char *m = strstr(t, "\"mfu\":");
		m += strcspn(m, ",}");
		memmove(t, m, strlen(m) + 1);
	}
	return s;
}

static int count_lines(const char *s, const char *with)
{
	int n = 0;
	for (const char *l = s; *l; l = strchr(l, '\n') + 1) {
		const char *e = strchr(l, '\n');
		if (!e)
			break;
		const char *w = with ? strstr(l, with) : l;
		n += w && w < e;
	}
	return n;
}

/* train_loop with stdout into OUT */
static void loop_to(struct train_run *r, const char *out)
{
	fflush(stdout);
	int saved = dup(1);
	FILE *f = fopen(out, "w");
	dup2(fileno(f), 1);
	train_loop(r);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	fclose(f);
}

static void test_loop(const struct gpt2_comm *c)
{
	struct train_run r;
	struct train_shape tiny = TRAIN_SHAPE_NONE, none = TRAIN_SHAPE_NONE;
	tiny.model = "tiny";
	run_init(&r, c, "straight");
	train_new_model(&r, &tiny, NULL);
	train_setup(&r, 0);
	char *out = path_in("straight.out");
	loop_to(&r, out);
	char *opts = train_opts_json(&r.o);
	run_done(&r);

	char *log = log_untimed("straight");
	ok(count_lines(log, NULL) == 7 && count_lines(log, "\"val_loss\"") == 3,
	   "log: step 0's evaluation, 6 steps, evaluations at 3 and 6");
	size_t len;
	char *so = read_file(out, &len), *last = strstr(log, "{\"step\":6,");
	json_t *a = so ? json_loads(so, 0, NULL) : NULL;
	json_t *b = last ? json_loadb(last, strcspn(last, "\n"), 0, NULL) : NULL;
	ok(a && b && json_object_size(a) == 4 && json_object_get(a, "val_ppl") &&
	   json_equal(json_object_get(a, "step"), json_object_get(b, "step")) &&
	   json_equal(json_object_get(a, "loss"), json_object_get(b, "loss")) &&
	   json_equal(json_object_get(a, "val_loss"), json_object_get(b, "val_loss")),
	   "stdout: the last step's loss and validation loss, as in the log");
	json_decref(a);
	json_decref(b);
	free(so);
	char *p2 = path_in("straight/ckpt-00000002.ckpt"), *p4 = path_in("straight/ckpt-00000004.ckpt"),
	     *p6 = path_in("straight/ckpt-00000006.ckpt");
	ok(!access(p2, F_OK) && !access(p4, F_OK) && !access(p6, F_OK), "checkpoints every 2 steps");
	struct ckpt ck;
	uint64_t rng = mix64(7);
	for (int i = 0; i < 6; i++)
		rng = mix64(rng);
	ok(!ckpt_read_header(p6, &ck) && ck.step == 6 && ck.data_pos == 6 * 8 && ck.seed == 7 &&
	   ck.rng == rng && ck.cfg.vocab_size == VOCAB, "the last checkpoint: step, position, rng");
	is_str(ck.opts_json, opts, "... and the run's options");
	ckpt_free(&ck);

	/* stop after 3, resume with the checkpoint's options: the same bytes */
	run_init(&r, c, "resumed");
	r.o.stop_after = 3;
	train_new_model(&r, &tiny, NULL);
	train_setup(&r, 0);
	loop_to(&r, out);
	run_done(&r);
	run_init(&r, c, "resumed");
	train_opts_default(&r.o);
	train_load_latest(&r, &none, 1, VOCAB, "resume");
	ok(r.step == 3 && r.o.steps == 6 && r.o.batch == 4 && r.o.lr == 3e-3,
	   "resume: step 3, the options from the checkpoint");
	train_setup(&r, 1);
	loop_to(&r, out);
	run_done(&r);
	char *q6 = path_in("resumed/ckpt-00000006.ckpt");
	char *cmd = xasprintf("cmp -s %s %s", p6, q6);
	ok(sh(cmd) == 0, "3 + resume + 3 steps: the checkpoint of 6 straight ones, byte for byte");
	char *log2 = log_untimed("resumed");
	is_str(log2, log, "... and the same log");
	free(log2);
	free(cmd);
	free(q6);
	free(p2);
	free(p4);
	free(p6);
	free(log);
	free(opts);
	free(out);
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "--mpi-child"))
		return mpi_child(argc, argv, argv[2], 0);
	if (argc == 3 && !strcmp(argv[1], "--mpi-die"))
		return mpi_child(argc, argv, argv[2], 1);
	if (!mkdtemp(dir))
		return 1;
	cp_setprogname("test-train");
	omp_set_num_threads(2);
	openblas_set_num_threads(1);
	unsetenv("OMPI_COMM_WORLD_SIZE");
	unsetenv("PMIX_RANK");
	unsetenv("PMI_SIZE");
	test_opts_json();
	test_shape();
	test_log();
	const struct gpt2_comm *c = comm_init(&argc, &argv);
	write_data("train", 24, 1);
	write_data("valid", 10, 2);
	test_step(c);
	test_loop(c);
	test_mpi(argv[0]);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (sh(cmd))
		diag("cannot remove %s", dir);
	free(cmd);
	return done_testing();
}
