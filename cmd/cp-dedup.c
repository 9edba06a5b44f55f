/* cp-dedup: remove exact and near duplicates and apply CodeParrot's quality filters to
 * document shards, report what was removed and why, and remember what was seen (--index) so
 * that a later run on new data removes what duplicates the old corpus.
 *
 * The passes are dedup/passes.h's, the report dedup/report.h's; this main wires them: it
 * stages the output shards in a hidden directory of OUTDIR (shard/outdir.h) and moves them
 * in, with the index, only once everything is written. */
#include "base/atomic.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/ompwait.h"
#include "base/ranks.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "dedup/dist.h"
#include "dedup/filters.h"
#include "dedup/index.h"
#include "dedup/passes.h"
#include "dedup/report.h"
#include "shard/outdir.h"
#include "shard/shard.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cp-dedup [-j threads] [-o OUTDIR] [-L LEVEL] [-n] [--report FILE] [--no-near]\n"
	"                [--no-filters] [--threshold J] [--drop-prob P] [--seed N] [--index FILE]\n"
	"                [--pairs FILE] [--line-max N] [--line-mean X] [--alpha-frac X]\n"
	"                [--min-eq N] [--max-mem BYTES] [INPUT...]\n"
	"       cp-dedup --merge-index OUT INDEX...\n"
	"\n"
	"  -j threads       threads for reading and writing shards (default: all CPUs)\n"
	"  -o OUTDIR        directory for the clean shards, or '-' for standard output (default)\n"
	"  -L, --level N    zstd level of the clean shards, -7 to 19, 0: store uncompressed\n"
	"                   (the default: the next stage reads them here; 1: 4.4x smaller)\n"
	"  -n, --dry-run    decide and report only: write no shards and no index\n"
	"  --report FILE    write the report as JSON to FILE ('-': standard output)\n"
	"  --no-near        skip near-duplicate removal\n"
	"  --no-filters     skip the quality filters\n"
	"  --threshold J    Jaccard similarity for near duplicates (default 0.85)\n"
	"  --drop-prob P    probability of dropping config/test and keyword-less files (0.7)\n"
	"  --seed N         seed of those random drops (default 0)\n"
	"  --index FILE     load, extend and rewrite this index of what was seen\n"
	"  --pairs FILE     write the confirmed near-duplicate pairs as JSON lines\n"
	"  --line-max N     drop files whose longest line is longer (default 1000)\n"
	"  --line-mean X    drop files whose mean line length is larger (default 100)\n"
	"  --alpha-frac X   drop files with a smaller alphanumeric fraction (default 0.25)\n"
	"  --min-eq N       drop files with at most N '=' characters (default 4)\n"
	"  --max-mem BYTES  a rank (or this process) that would hold more for the exact set\n"
	"                   and near dedup stops and says so (default: no limit)\n"
	"  --merge-index    merge indexes of separate runs into OUT\n"
	"  -h               show this help\n"
	"INPUT: shard files, directories of *.shard files, or '-' (default: standard input).\n"
	"Under mpirun the ranks share the work and write what one process writes.\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}



static struct outdir_stage stage;	/* the output shards until they are moved in */
static struct shardset set;		/* OUTDIR's set so far: --index runs add to it */
static char *volatile spool_path;	/* stdin's copy while it is written */
static char *volatile index_pending;	/* the new index, renamed in with the shards */

/* Called by the signal handler after base/atomic removed every open temporary. */
static void remove_staged(void)
{
	if (spool_path)
		unlink(spool_path);
	if (index_pending)
		unlink(index_pending);
	outdir_stage_remove(&stage);
}

static void parse(int argc, char **argv, struct dedup_cfg *c, int *merge)
{
	enum { O_REPORT = 256, O_LEVEL, O_DRY, O_NONEAR, O_NOFILT, O_THR, O_DROP, O_SEED, O_INDEX, O_PAIRS,
	       O_LMAX, O_LMEAN, O_ALPHA, O_MINEQ, O_MERGE, O_MAXMEM };
	static const struct option longopts[] = {
		{ "report", required_argument, NULL, O_REPORT },
		{ "level", required_argument, NULL, 'L' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "no-near", no_argument, NULL, O_NONEAR },
		{ "no-filters", no_argument, NULL, O_NOFILT },
		{ "threshold", required_argument, NULL, O_THR },
		{ "drop-prob", required_argument, NULL, O_DROP },
		{ "seed", required_argument, NULL, O_SEED },
		{ "index", required_argument, NULL, O_INDEX },
		{ "pairs", required_argument, NULL, O_PAIRS },
		{ "line-max", required_argument, NULL, O_LMAX },
		{ "line-mean", required_argument, NULL, O_LMEAN },
		{ "alpha-frac", required_argument, NULL, O_ALPHA },
		{ "min-eq", required_argument, NULL, O_MINEQ },
		{ "merge-index", no_argument, NULL, O_MERGE },
		{ "max-mem", required_argument, NULL, O_MAXMEM },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int o;
	while ((o = getopt_long(argc, argv, "hj:o:L:n", longopts, NULL)) != -1) {
		switch (o) {
		case 'j': c->threads = opt_threads("-j", optarg); break;
		case 'o': {
			/* "clean/" and "clean" name the same directory; keep paths free of "//" */
			size_t n = strlen(optarg);
			while (n > 1 && optarg[n - 1] == '/')
				optarg[--n] = 0;
			c->outdir = optarg;
			break;
		}
		case 'L':
			c->level = opt_int("--level", optarg, SHARD_LEVEL_MIN, SHARD_LEVEL_MAX);
			break;
		case 'n': c->dry_run = 1; break;
		case O_REPORT: c->report = optarg; break;
		case O_NONEAR: c->near = 0; break;
		case O_NOFILT: c->filt.enabled = 0; break;
		case O_THR: c->threshold = opt_double("--threshold", optarg, 0.01, 1); break;
		case O_DROP: c->filt.drop_prob = opt_double("--drop-prob", optarg, 0, 1); break;
		case O_SEED: c->filt.seed = opt_u64("--seed", optarg, 0, UINT64_MAX); break;
		case O_INDEX:
			c->index = optarg;
			/* the index says these documents were seen: the clean shards that hold
			 * them must outlast a crash as it does, or a rerun would drop them */
			atomic_sync_all_on();
			break;
		case O_PAIRS: c->pairs = optarg; break;
		case O_LMAX: c->filt.line_max = opt_u64("--line-max", optarg, 0, UINT64_MAX); break;
		case O_LMEAN: c->filt.line_mean = opt_double("--line-mean", optarg, 0, 1e18); break;
		case O_ALPHA: c->filt.alpha_frac = opt_double("--alpha-frac", optarg, 0, 1); break;
		case O_MINEQ: c->filt.min_eq = opt_u64("--min-eq", optarg, 0, UINT64_MAX); break;
		case O_MERGE: *merge = 1; break;
		case O_MAXMEM: c->max_mem = opt_u64("--max-mem", optarg, 1, UINT64_MAX); break;
		case 'h': usage(EXIT_OK); break;
		default: usage(EXIT_USAGE);
		}
	}
}


/* OUTDIR's set before this run: a new run needs an empty directory (a rerun would add a
 * second copy of the corpus), a --index run adds to the set there; shards of a killed
 * publication that the manifest does not name are removed, and shards written before set
 * manifests (none there, no stage) are taken as the set. */
static void load_set(const struct dedup_cfg *c)
{
	int r = shardset_load(c->outdir, &set);
	if (r < 0 || (!r && shardset_check(&set, c->outdir)))
		exit(EXIT_ERR);
	if (!c->index && (set.n || shardset_has_shards(c->outdir)))
		die("'%s' already holds shards: without --index cp-dedup writes a new set; name an "
		    "empty directory (or add to the set with --index)", c->outdir);
	int64_t next = outdir_next_number(c->outdir, "docs");
	if (next < 0)
		exit(EXIT_ERR);
	for (uint64_t no = 0; no < (uint64_t)next; no++) {
		char *p = outdir_shard_path(c->outdir, "docs", no);
		const char *base = strrchr(p, '/') + 1;
		if (r && !access(p, F_OK) && shardset_add_file(&set, p, base))
			die("'%s' holds shards but no set manifest, and '%s' is not a finished shard: "
			    "remove what no finished run wrote", c->outdir, p);
		else if (!r && shardset_find(&set, base) < 0 && unlink(p) && errno != ENOENT)
			die_errno("cannot remove '%s' (no set it is part of)", p);
		free(p);
	}
}

/* Standard output, or OUTDIR made, its set loaded and its staging directory for N parts. */
static void setup_outdir(const struct dedup_cfg *c, size_t n)
{
	if (!strcmp(c->outdir, "-")) {
		refuse_tty(1, "shard");
		return;
	}
	if (outdir_make(c->outdir, 0))
		exit(EXIT_ERR);
	load_set(c);
	if (outdir_stage_open(&stage, c->outdir, "cp-dedup", n))
		exit(EXIT_ERR);
}

/* The index, written beside its name and renamed in only with the shards and manifest. */
static int save_index(struct dedup_state *s)
{
	const char *ix = s->cfg.index, *slash = strrchr(ix, '/');
	int dl = slash ? (int)(slash - ix) + 1 : 0;
	index_pending = xasprintf("%.*s.%s.pending.%ld", dl, ix, ix + dl, (long)getpid());
	if (!s->dist)
		return dedup_save_index(s, index_pending);
	int r = dedup_dist_save_index(s, index_pending);
	if (ranks_me()) {	/* rank 0 writes it */
		free(index_pending);
		index_pending = NULL;
	}
	return r;
}

static void commit_index(const char *index)
{
	if (rename(index_pending, index))
		die_errno("cannot rename '%s' to '%s'", index_pending, index);
	free(index_pending);
	index_pending = NULL;
}

/* Moved in with the signals held (one now would leave some shards moved in and others
 * not): the shards, the set manifest, the index; then the pairs. */
static int commit(struct dedup_state *s, struct dedup_input *ins, size_t n, struct buf *names)
{
	const struct dedup_cfg *c = &s->cfg;
	sigset_t block, saved;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGPIPE);
	sigprocmask(SIG_BLOCK, &block, &saved);
	if (!c->dry_run && strcmp(c->outdir, "-") &&
	    dedup_publish(ins, n, c->outdir, &stage, &set, names))
		return -1;
	if (index_pending)
		commit_index(c->index);
	stage.n = 0;	/* committed: nothing of ours to remove any more */
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (c->pairs) {
		struct buf b = { 0 };
		dedup_pairs_json(&b, s);
		int r = dedup_write_result(c->pairs, &b);
		buf_free(&b);
		if (r)
			return -1;
	}
	if (stage.dir)
		rmdir(stage.dir);
	return 0;
}

/* Pass 2 and the commit: the shards and the index are written in full first (a full disk
 * fails the run with nothing moved in), then committed (by rank 0 alone). */
static int write_and_commit(struct dedup_state *s, struct dedup_input *ins, size_t n,
			    struct buf *names, double *secs)
{
	const struct dedup_cfg *c = &s->cfg;
	double t2 = mono_now();
	if (s->dist) {
		if (dedup_dist_write(s, ins, n, &stage))
			return -1;
	} else if (c->dry_run) {
		dedup_dry_run_totals(ins, n);
	} else if (c->stream) {
		t2 -= *secs;	/* written in pass 1 (dedup_stream) */
	} else if (dedup_write_outputs(ins, n, c, &stage)) {
		return -1;
	}
	*secs = mono_now() - t2;
	if (c->index && !c->dry_run && save_index(s))
		return -1;
	int r = ranks_me() ? 0 : commit(s, ins, n, names);
	if (ranks_any(r))
		return -1;
	stage.n = 0;	/* committed, by rank 0: nothing here to remove */
	return 0;
}

static int report(const struct dedup_state *s, const struct dedup_input *ins, size_t n,
		  const struct buf *names, const double *secs)
{
	struct dedup_totals t;
	if (s->dist)
		dedup_dist_totals(&t, s, ins, n);
	else
		dedup_totals_compute(&t, s, ins, n);
	int r = 0;
	if (!ranks_me()) {
		dedup_report_table(&t);
		dedup_report_ranks(s);
	}
	if (!ranks_me() && s->cfg.report) {
		struct buf b = { 0 };
		dedup_report_json(&b, &t, s, names, secs);
		r = dedup_write_result(s->cfg.report, &b);
		buf_free(&b);
	}
	return ranks_any(r) ? -1 : 0;
}

/* The inputs as shard paths; *N_STDIN: how many are standard input. */
static size_t list_inputs(int argc, char **argv, char ***list, size_t *n_stdin)
{
	static char *dash[] = { "-" };
	size_t n = shard_list(argc ? argv : dash, argc ? (size_t)argc : 1, list);
	*n_stdin = 0;
	for (size_t i = 0; i < n; i++)
		*n_stdin += !strcmp((*list)[i], "-");
	if (*n_stdin > 1)
		die_usage("standard input ('-') can be read only once");
	return n;
}

int main(int argc, char **argv)
{
	struct dedup_cfg c = { .threads = cpu_count(), .near = 1, .threshold = 0.85,
			       .filt = FILTER_CFG_DEFAULT, .outdir = "-", .level = SHARD_LEVEL_UNSET };
	int merge = 0;
	ompwait_passive(argv);
	cp_setprogname(argv[0]);
	int dist = ranks_init(&argc, &argv);
	if (ranks_me())
		cp_quiet = 1;	/* rank 0 speaks for all; a rank's own trouble it says itself */
	parse(argc, argv, &c, &merge);
	argc -= optind;
	argv += optind;
	if (merge) {
		int r = ranks_me() ? EXIT_OK : dedup_merge_indexes(argc, argv);
		ranks_finish();
		return r;
	}
	dist |= c.max_mem != 0;
	if (c.pairs && !c.near)
		die_usage("--pairs needs near dedup (drop --no-near)");

	char **list;
	size_t n_stdin, nl = list_inputs(argc, argv, &list, &n_stdin);
	if (c.report && !strcmp(c.report, "-") && !strcmp(c.outdir, "-") && !c.dry_run)
		die_usage("the report and the shards cannot both go to standard output");
	if (ranks_count() > 1 && (n_stdin || (!strcmp(c.outdir, "-") && !c.dry_run)))
		die_usage("under mpirun, read shards named as INPUT and name an output directory "
			  "with -o (standard input and output are one process's)");
	struct dedup_input *ins;
	uint64_t expect;
	size_t n = dedup_plan_parts(list, nl, &ins, &expect);

	atomic_cleanup_on_signal(remove_staged);
	if (!c.dry_run && !ranks_me())
		setup_outdir(&c, n);
	if (dist && !c.dry_run && strcmp(c.outdir, "-"))
		dedup_dist_stage(&stage, n);
	/* standard input alone for exact dedup: decided and written as it is read */
	c.stream = !dist && !c.near && !c.dry_run && n == 1 && !strcmp(ins[0].path, "-");
	if (n_stdin && !c.dry_run && !c.stream)
		c.spool = spool_path = xasprintf("%s/.cp-dedup-stdin-%ld.shard", stage.dir ? stage.dir :
						 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());

	struct dedup_state s;
	struct buf names = { 0 };
	double secs[4] = { 0 };
	const char *out = !c.stream ? NULL : strcmp(c.outdir, "-") ? stage.paths[0] : "-";
	if ((dist ? dedup_dist_init(&s, &c, n, c.max_mem) || dedup_dist_decide(&s, ins, n)
		  : dedup_state_init(&s, &c, expect) ||
		    (c.stream ? dedup_stream(&s, ins, out, &secs[3]) : dedup_decide(&s, ins, n))) ||
	    write_and_commit(&s, ins, n, &names, &secs[3]))
		goto fail;
	secs[0] = s.t_read;
	secs[1] = s.t_dedup;
	secs[2] = s.t_near;
	if (report(&s, ins, n, &names, secs))
		goto fail;
	buf_free(&names);
	dedup_inputs_free(ins, n);
	dedup_state_free(&s);
	outdir_stage_free(&stage);
	shardset_free(&set);
	free(spool_path);
	shard_list_free(list, nl);
	close_stdout();
	ranks_finish();
	return EXIT_OK;

fail:
	/* nothing half-done may remain: staged shards, spool, temporaries */
	remove_staged();
	if (dist)
		ranks_exit(EXIT_ERR);	/* every rank failed with this one */
	return EXIT_ERR;
}
