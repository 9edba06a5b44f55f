/* cp-hash: the first stage. Reads source trees and JSON-lines dumps and writes document
 * shards carrying each document's content, origin, metadata, exact hash, CodeParrot quality
 * statistics and MinHash signature (man/cp-hash.1).
 *
 * input/docpipe.h gathers, reads and orders the documents over the threads; this main gives
 * it the measuring (dedup/docstats.h) and the output (shard/outdir.h). */
#include "base/atomic.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/ompwait.h"
#include "base/ranks.h"
#include "base/xalloc.h"
#include "dedup/docstats.h"
#include "input/docpipe.h"
#include "shard/doc.h"
#include "shard/outdir.h"
#include "shard/set.h"
#include "shard/shard.h"

#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cp-hash [-j THREADS] [-o OUT] [-L LEVEL] [-p GLOB]... [--field NAME] [--jsonl]\n"
	"               [--max-size BYTES] [--max-line BYTES] [--shard-docs N] [--shard-bytes BYTES]\n"
	"               [--strict] [--minhash datasketch|xxh3|none] [--no-content] [-q] PATH...\n"
	"\n"
	"  -j THREADS          worker threads (default: all CPUs)\n"
	"  -o OUT              a shard file, a directory of shards (ends in '/' or exists),\n"
	"                      or '-' for standard output (the default when not a terminal)\n"
	"  -p, --pattern GLOB  files taken from directories (default *.py; repeatable)\n"
	"  --field NAME        the text field of JSON lines (default content)\n"
	"  --max-size BYTES    skip larger documents (default 1000000; 0: no limit)\n"
	"  --max-line BYTES    skip longer JSON lines (default 256M)\n"
	"  --jsonl             read each PATH that is a file or a pipe as JSON lines, whatever\n"
	"                      its name (zcat dump.gz | cp-hash --jsonl /dev/stdin)\n"
	"  --shard-docs N      directory output: start a new shard after N documents\n"
	"  --shard-bytes BYTES directory output: ... after this many record bytes (default 256M)\n"
	"  --strict            a malformed JSON line or unreadable input is fatal\n"
	"  --minhash SCHEME    datasketch (default: equal to datasketch's MinHash(num_perm=256)\n"
	"                      signatures), xxh3 (faster) or none (no signatures: for exact\n"
	"                      dedup and filters alone, cp-dedup --no-near)\n"
	"  --no-content        records without the documents' bytes (their size is kept):\n"
	"                      enough for a report (cp-dedup -n), not for a corpus\n"
	"  -L, --level N       zstd level of the shards, -7 to 19, 0: store uncompressed\n"
	"                      (default 1; 0 when standard output is a pipe)\n"
	"  -q, --quiet         no summary line, no progress\n"
	"  -h                  show this help\n"
	"PATH is a directory, a JSON-lines file (.jsonl, .json.gz, .jsonl.gz, .jsonl.zst, ...),\n"
	"another file (one document), or '-' for a list of paths on standard input.\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

struct hash_run {
	struct docpipe_opts o;
	struct docstats_ctx *ds;	/* one per thread */
	enum docstats_minhash minhash;
	struct outdir_writer out;
	int level, quiet;
	const char *path;
	/* under mpirun, each rank compressing its turns: its spill, the writer into it (OUT
	 * is rank 0's output, assembled from every rank's spill at the end), and every rank's
	 * spill open for reading */
	struct shard_spill *spill;
	struct outdir_writer sout;
	int *spill_fd, spread;
};

static void measure(void *arg, int t, const unsigned char *content, size_t len, struct doc *d,
		    unsigned char *minhash)
{
	struct hash_run *h = arg;
	docstats_compute(&h->ds[t], content, len, &d->st, d->hash, minhash, &d->n_minhash);
}

/* By reference: a stored shard's records go out from the batch they were read into, which
 * stays as it is until release_records. */
static void write_record(void *arg, const void *rec, size_t len)
{
	struct hash_run *h = arg;
	if (outdir_writer_write_ref(h->spread ? &h->sout : &h->out, rec, len)) {
		atomic_abort_all();
		exit(EXIT_ERR);
	}
}

static void release_records(void *arg)
{
	struct hash_run *h = arg;
	outdir_writer_release(h->spread ? &h->sout : &h->out);
}

/* A turn's start: the state the rank before left (docpipe_opts' LOAD) */
static void load_turn(void *arg, uint64_t seq, int from, const void *note, size_t n)
{
	struct hash_run *h = arg;
	h->spread = 1;
	shard_spill_turn(h->spill, seq);
	if (outdir_writer_load(&h->sout, note, n, h->spill_fd[from])) {
		atomic_abort_all();
		exit(EXIT_ERR);
	}
}

static void save_turn(void *arg, struct buf *note)
{
	struct hash_run *h = arg;
	if (outdir_writer_save(&h->sout, note)) {
		atomic_abort_all();
		exit(EXIT_ERR);
	}
}

static void after_turn(void *arg)
{
	struct hash_run *h = arg;
	if (outdir_writer_flush(&h->sout)) {
		atomic_abort_all();
		exit(EXIT_ERR);
	}
}

static void note_send(void *arg, int to, const void *p, size_t n)
{
	(void)arg;
	ranks_note_send(to, p, n);
}

static void note_recv(void *arg, int from, struct buf *b)
{
	(void)arg;
	ranks_note_recv(from, b);
}

static int note_ready(void *arg, int from)
{
	(void)arg;
	return ranks_note_ready(from);
}

static void parse(int argc, char **argv, struct hash_run *h, const char **patterns)
{
	enum { O_FIELD = 256, O_MAXSIZE, O_MAXLINE, O_JSONL, O_SDOCS, O_SBYTES, O_STRICT,
	       O_MINHASH, O_NOCONTENT };
	static const struct option longopts[] = {
		{ "threads", required_argument, NULL, 'j' },
		{ "output", required_argument, NULL, 'o' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "field", required_argument, NULL, O_FIELD },
		{ "max-size", required_argument, NULL, O_MAXSIZE },
		{ "max-line", required_argument, NULL, O_MAXLINE },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "shard-docs", required_argument, NULL, O_SDOCS },
		{ "shard-bytes", required_argument, NULL, O_SBYTES },
		{ "strict", no_argument, NULL, O_STRICT },
		{ "minhash", required_argument, NULL, O_MINHASH },
		{ "no-content", no_argument, NULL, O_NOCONTENT },
		{ "level", required_argument, NULL, 'L' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct docpipe_opts *o = &h->o;
	int c;
	while ((c = getopt_long(argc, argv, "hj:o:p:qL:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': usage(EXIT_OK); break;
		case 'j': o->threads = opt_threads("-j", optarg); break;
		case 'o': h->path = optarg; break;
		case 'p': patterns[o->n_patterns++] = optarg; break;
		case 'q': h->quiet = 1; break;
		case 'L': h->level = opt_int("--level", optarg, SHARD_LEVEL_MIN, SHARD_LEVEL_MAX); break;
		case O_FIELD:
			if (!*optarg)
				die_usage("option '--field' needs a name");
			o->field = optarg;
			break;
		case O_MAXSIZE: o->max_size = opt_u64("--max-size", optarg, 0, UINT64_MAX); break;
		case O_MAXLINE:
			o->max_line = opt_u64("--max-line", optarg, 1, (uint64_t)1 << 40);
			break;
		case O_SDOCS: h->out.max_docs = opt_u64("--shard-docs", optarg, 0, UINT64_MAX); break;
		case O_SBYTES:
			h->out.max_bytes = opt_u64("--shard-bytes", optarg, 0, UINT64_MAX);
			break;
		case O_STRICT: o->strict = 1; break;
		case O_JSONL: o->jsonl = 1; break;
		case O_NOCONTENT: o->no_content = 1; break;
		case O_MINHASH:
			if (!strcmp(optarg, "xxh3"))
				h->minhash = DOCSTATS_MINHASH_XXH3;
			else if (!strcmp(optarg, "datasketch"))
				h->minhash = DOCSTATS_MINHASH_DATASKETCH;
			else if (!strcmp(optarg, "none"))
				h->minhash = DOCSTATS_MINHASH_NONE;
			else
				die_usage("option '--minhash': unknown scheme '%s' (datasketch, xxh3 "
					  "or none)", optarg);
			break;
		default: usage(EXIT_USAGE);
		}
	}
}

static void send_batch(void *arg, const void *p, size_t n)
{
	(void)arg;
	ranks_send(0, p, n);
}

static void recv_batch(void *arg, int from, struct buf *b)
{
	(void)arg;
	ranks_recv(from, b);
}

static void sum_counts(void *arg, uint64_t *v, size_t n)
{
	(void)arg;
	ranks_sum_u64(v, n);
}

static void share_bytes(void *arg, struct buf *b)
{
	(void)arg;
	struct buf all = { 0 };
	ranks_gather(b->p, b->len, &all, NULL);
	ranks_bcast(&all);
	buf_free(b);
	*b = all;
}

/* Under mpirun: rank 0 writes what all measure (input/docpipe.h); the others say nothing,
 * since what they gather rank 0 gathers too, and what they measure goes to it. */
static void join_ranks(struct hash_run *h, int *argc, char ***argv)
{
	if (!ranks_init(argc, argv) || ranks_count() == 1)
		return;
	h->o.rank = ranks_me();
	h->o.nranks = ranks_count();
	h->o.send = send_batch;
	h->o.recv = recv_batch;
	h->o.sum = sum_counts;
	h->o.share = share_bytes;
	if (h->o.rank)
		cp_quiet = 1;
}

/* The output: standard output when not named (refused on a terminal), else -o's. */
static void open_output(struct hash_run *h)
{
	static const uint64_t param[2] = { 0, 0 };
	uint64_t max_docs = h->out.max_docs, max_bytes = h->out.max_bytes;
	if (h->o.nranks > 1 && (!h->path || !strcmp(h->path, "-")))
		die_usage("under mpirun, name an output with -o (a shard file or a directory)");
	if (h->o.rank)
		return;
	if (!h->path) {
		if (isatty(STDOUT_FILENO))
			die_usage("standard output is a terminal; name an output with -o");
		h->path = "-";
	}
	/* zstd level 1 compresses about twice as fast as 3, for shards some 8% larger, and
	 * cp-dedup rewrites them; the blocks are compressed on as many threads as measure. */
	if (outdir_writer_open(&h->out, h->path, "docs", SHARD_DOCS, param, h->level, 1))
		exit(EXIT_ERR);
	h->out.max_docs = max_docs;
	h->out.max_bytes = max_bytes;
	h->out.threads = h->o.threads;
}

/* Under mpirun with compressed shards: every rank compresses the batches it measures into a
 * spill beside the output (in its staging directory), and rank 0 copies the blocks into
 * the shards at the end, so no rank waits on one that compresses all. Collective. */
static void open_spills(struct hash_run *h)
{
	static const uint64_t param[2] = { 0, 0 };
	struct buf b = { 0 }, names = { 0 };
	int me = h->o.rank, n = h->o.nranks, failed = 0;
	if (!me) {
		char *base = h->out.mode == OUTDIR_DIR
			? xasprintf("%s/spill", shardset_stage_dir(h->out.stage))
			: xasprintf("%s.spill", h->path);
		buf_putc(&b, h->out.mode);
		buf_put(&b, base, strlen(base) + 1);
		free(base);
		/* rank 0's first, so that its sweep of stale temporaries is over (base/atomic) */
		char *path = xasprintf("%s-%d", (char *)b.p + 1, me);
		failed = !(h->spill = shard_spill_open(path));
		free(path);
	}
	ranks_bcast(&b);
	if (me) {
		char *path = xasprintf("%s-%d", (char *)b.p + 1, me);
		failed = !(h->spill = shard_spill_open(path));
		free(path);
	}
	if (ranks_any(failed))
		ranks_exit(EXIT_ERR);
	const char *mine = shard_spill_file(h->spill);
	ranks_gather(mine, strlen(mine) + 1, &names, NULL);
	ranks_bcast(&names);
	h->spill_fd = xcalloc((size_t)n, sizeof *h->spill_fd);
	const char *p = (const char *)names.p;
	for (int r = 0; r < n; r++, p += strlen(p) + 1)
		if ((h->spill_fd[r] = open(p, O_RDONLY)) < 0)
			failed = error_errno("cannot open '%s'", p);
	if (ranks_any(failed))
		ranks_exit(EXIT_ERR);
	outdir_writer_open_spill(&h->sout, h->spill, (enum outdir_mode)b.p[0], "docs", SHARD_DOCS,
				 param, shard_auto_level(h->path, h->level, 1));
	h->sout.max_docs = h->out.max_docs;
	h->sout.max_bytes = h->out.max_bytes;
	h->sout.threads = h->o.threads;
	buf_free(&b);
	buf_free(&names);
}

static int cmp_event(const void *pa, const void *pb)
{
	const unsigned char *a = pa, *b = pb;
	uint64_t x = rd_u64le(a), y = rd_u64le(b), i = rd_u64le(a + 32), j = rd_u64le(b + 32);
	if (x != y)
		return x < y ? -1 : 1;
	return i < j ? -1 : i > j;
}

/* Every rank's blocks into rank 0's shards, in the order of the turns (each rank's events
 * are in its turns' order; the fifth word, unused, takes the event's place in all). */
static int assemble(struct hash_run *h, int failed, int spread)
{
	struct buf all = { 0 };
	size_t n_ev, *off = xcalloc((size_t)h->o.nranks + 1, sizeof *off);
	const void *ev = shard_spill_events(h->spill, &n_ev);
	ranks_gather(ev, n_ev, &all, off);
	if (!h->o.rank && !failed && spread) {
		size_t k = all.len / 40;
		for (int r = 0; r < h->o.nranks; r++)
			for (size_t e = off[r] / 40; e < off[r + 1] / 40; e++)
				wr_u64le(all.p + 40 * e + 32, (uint64_t)r << 48 | e);
		qsort(all.p, k, 40, cmp_event);
		for (size_t e = 0; e < k && !failed; e++) {
			int r = (int)(rd_u64le(all.p + 40 * e + 32) >> 48);
			failed = outdir_writer_assemble(&h->out, all.p + 40 * e, h->spill_fd[r]) != 0;
		}
	}
	free(off);
	buf_free(&all);
	/* the spills stay until rank 0 has copied them */
	failed = ranks_any(failed);
	for (int r = 0; r < h->o.nranks; r++)
		close(h->spill_fd[r]);
	free(h->spill_fd);
	shard_spill_remove(h->spill);
	h->spill = NULL;
	(void)ranks_any(0);	/* every spill gone before rank 0 commits the stage */
	return failed;
}

int main(int argc, char **argv)
{
	struct hash_run h = { .minhash = DOCSTATS_MINHASH_DATASKETCH, .level = SHARD_LEVEL_UNSET };
	h.out.max_bytes = (uint64_t)256 << 20;
	const char **patterns = xcalloc((size_t)argc + 1, sizeof *patterns);
	ompwait_passive(argv);
	cp_setprogname(argv[0]);
	h.o = (struct docpipe_opts){ .nranks = 1, .threads = cpu_count(), .field = "content", .max_size = 1000000,
				     .max_line = (uint64_t)1 << 28, .patterns = patterns,
				     .measure = measure, .write = write_record,
				     .release = release_records, .arg = &h };
	join_ranks(&h, &argc, &argv);
	parse(argc, argv, &h, patterns);
	if (optind >= argc)
		die_usage("no PATH given");
	if (!h.o.n_patterns)
		patterns[h.o.n_patterns++] = "*.py";
	int stdin_list = 0;
	for (int i = optind; i < argc; i++)
		stdin_list += !strcmp(argv[i], "-");
	if (stdin_list > 1)
		die_usage("'-' (paths on standard input) may be given only once");
	if (stdin_list && h.o.nranks > 1)
		die_usage("'-' (paths on standard input) is read by one process: under mpirun, "
			  "give the paths as arguments");
	open_output(&h);
	/* compressing everything costs rank 0 about what measuring costs a rank (level 1 and
	 * MinHash): its turns would hold the others up, so it only writes */
	h.o.rank0_writes = h.level != 0;

	atomic_cleanup_on_signal(shardset_stage_remove_all);
	h.o.progress = !h.quiet && isatty(STDERR_FILENO);
	h.ds = xcalloc((size_t)h.o.threads, sizeof *h.ds);
	for (int i = 0; i < h.o.threads; i++)
		docstats_init_scheme(&h.ds[i], h.minhash);
	if (h.o.nranks > 1 && shard_auto_level(h.path, h.level, 1) != SHARD_LEVEL_STORE &&
	    !h.o.strict) {
		open_spills(&h);
		h.o.load = load_turn;
		h.o.save = save_turn;
		h.o.after = after_turn;
		h.o.note_send = note_send;
		h.o.note_recv = note_recv;
		h.o.note_ready = note_ready;
	}
	struct docpipe_counts c;
	int errors = docpipe_run(&h.o, argv + optind, argc - optind, &c);
	if (h.spill) {
		/* the last shard's end, then the blocks into rank 0's shards */
		int failed = !h.o.rank && c.spread && errors != 2 &&
			     outdir_writer_end_spill(&h.sout);
		if (assemble(&h, failed || errors == 2, c.spread) && errors != 2) {
			if (!h.o.rank)
				outdir_writer_abort(&h.out);
			atomic_abort_all();
			ranks_exit(EXIT_ERR);
		}
	}
	if (h.o.rank) {
		;	/* rank 0 writes and reports */
	} else if (errors == 2) {
		/* documents of an input that then failed: no finished output may hold them */
		outdir_writer_abort(&h.out);
		error("an input failed part way: no finished shard is written to '%s'", h.path);
	} else if (outdir_writer_finish(&h.out)) {
		atomic_abort_all();
		exit(EXIT_ERR);
	}
	if (!h.quiet && !h.o.rank)
		fprintf(stderr,
			"%s: %llu docs, %llu bytes; skipped: %llu binary, %llu too large, "
			"%llu malformed, %llu unreadable, %llu symlink loops\n",
			cp_progname, (unsigned long long)c.docs, (unsigned long long)c.bytes,
			(unsigned long long)c.binary, (unsigned long long)c.too_large,
			(unsigned long long)c.malformed, (unsigned long long)c.unreadable,
			(unsigned long long)c.loops);
	for (int i = 0; i < h.o.threads; i++)
		docstats_free(&h.ds[i]);
	free(h.ds);
	free(patterns);
	close_stdout();
	ranks_finish();
	return errors && !h.o.rank ? EXIT_ERR : EXIT_OK;
}
