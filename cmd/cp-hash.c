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
	if (outdir_writer_write_ref(&h->out, rec, len)) {
		atomic_abort_all();
		exit(EXIT_ERR);
	}
}

static void release_records(void *arg)
{
	outdir_writer_release(&((struct hash_run *)arg)->out);
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
	struct docpipe_counts c;
	int errors = docpipe_run(&h.o, argv + optind, argc - optind, &c);
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
