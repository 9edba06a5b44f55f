/* cp-tokenize: encode documents to token ids with a byte-level BPE tokenizer (ours or GPT-2's),
 * apply CodeParrot's characters-per-token filter, and decode token ids back to bytes. The work is
 * in common/tok/encode-docs.c; this file parses options and wires the modes. */
#include "base/atomic.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "input/textdocs.h"
#include "shard/set.h"
#include "shard/shard.h"
#include "tok/bpe.h"
#include "tok/encode-docs.h"
#include "tok/pretok.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: cp-tokenize -t TOKENIZER [-j N] [-o OUT] [--min-ratio R] [--report FILE] [--special] [--text] INPUT...\n"
	"       cp-tokenize -t TOKENIZER --ids [-j N] [--special] [FILE...]\n"
	"       cp-tokenize -t TOKENIZER --decode-ids [FILE...]\n"
	"       cp-tokenize -t TOKENIZER --decode [--jsonl] [-o OUT] SHARD...\n"
	"       cp-tokenize --pieces [FILE...]\n"
	"\n"
	"  -t TOKENIZER     tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe,\n"
	"                   or a directory holding one of them\n"
	"  -j N             threads (default: all CPUs); output is the same for any N\n"
	"  -o OUT           output shard, or a directory (existing, or ending in '/') for one\n"
	"                   token shard per input shard (default: standard output)\n"
	"  --min-ratio R    drop documents with fewer than R characters per token (default 1.5;\n"
	"                   0 keeps all)\n"
	"  --report FILE    write counts as JSON to FILE\n"
	"  --special        encode special tokens written in the text as their ids (HF's way);\n"
	"                   by default the text is all ordinary (tiktoken's encode_ordinary)\n"
	"  --text           inputs are plain files (directories walked), each one document\n"
	"  --ids            print each FILE's ids (or standard input's) as one line of decimals\n"
	"  --decode-ids     read lines of decimal ids and write the bytes they stand for\n"
	"  --decode         write the documents of token shards back as bytes\n"
	"  --pieces         print each FILE's pre-tokenized pieces as one JSON array a line\n"
	"  --jsonl          with --decode: one JSON object {\"id\",\"text\"} per document\n"
	"  -h               show this help\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

enum mode { M_ENCODE, M_IDS, M_DECODE_IDS, M_DECODE, M_PIECES };

struct opts {
	const char *tok, *out, *report;
	int threads, special, text, jsonl;
	double min_ratio;
	enum mode mode;
};

static void write_out(const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, stdout) != n)
		die_errno("error writing to standard output");
}

static void emit_stdout(const void *p, size_t n, void *arg)
{
	(void)arg;
	write_out(p, n);
}

/* the size of the parts a long document is cut into: CP_TOKENIZE_PART_BYTES for tests (small
 * parts put many cuts in small files), else 0 for encode-docs.h's */
static size_t part_bytes(void)
{
	const char *env = getenv("CP_TOKENIZE_PART_BYTES");
	return env ? (size_t)opt_u64("CP_TOKENIZE_PART_BYTES", env, 1, SIZE_MAX) : 0;
}

static int write_report(const struct tok_counts *c, const struct opts *o, uint32_t n_ids)
{
	struct buf j = { 0 };
	tok_report_put(&j, c, o->min_ratio, n_ids);
	int r = atomic_write_file(o->report, j.p, j.len);
	buf_free(&j);
	return r;
}

/* documents to token shards, the filter applied, counts to the report */
static int run_encode(const struct bpe *m, char **argv, int argc, const struct opts *o)
{
	struct bpe_input *in = bpe_input_open(argv, (size_t)argc, o->text);
	bpe_input_set_threads(in, o->threads);
	struct tok_shards *out = tok_shards_open(o->out, in, m->n_ids, o->threads);
	if (!out)
		return -1;
	atomic_cleanup_on_signal(shardset_stage_remove_all);
	struct bpe_encoder **enc = tok_encoders_new(m, o->threads);
	struct tok_batch b = { .part_bytes = part_bytes() };
	struct tok_counts c = { 0 };
	int failed = 0, r = 1, progress = is_tty(2);
	while (r > 0 && !failed) {
		if ((r = tok_batch_fill(&b, in, NULL)) < 0) {
			failed = 1;
			break;
		}
		tok_batch_encode(&b, m, enc, o->threads, o->special, o->min_ratio);
		failed = tok_shards_write(out, &b, m->eot, &c) != 0;
		if (progress)
			fprintf(stderr, "\rcp-tokenize: %llu documents, %.1f MB",
				(unsigned long long)c.docs_in, (double)c.bytes_in / 1e6);
	}
	if (progress)
		fputc('\n', stderr);
	if (tok_shards_close(out, failed))
		failed = 1;
	if (!failed && o->report && write_report(&c, o, m->n_ids))
		failed = 1;
	tok_batch_free(&b);
	tok_encoders_free(enc, o->threads);
	bpe_input_close(in);
	return failed ? -1 : 0;
}

/* --ids: each input's ids on one line, inputs and the parts of a large one encoded and
 * formatted in parallel */
static int run_ids(const struct bpe *m, char **argv, int argc, const struct opts *o)
{
	char *dash[] = { "-" };
	struct bpe_input *in = argc ? bpe_input_open(argv, (size_t)argc, 1) : bpe_input_open(dash, 1, 1);
	bpe_input_set_threads(in, o->threads);
	struct bpe_encoder **enc = tok_encoders_new(m, o->threads);
	struct tok_batch b = { .part_bytes = part_bytes() };
	int r;
	do {
		r = tok_batch_fill(&b, in, NULL);
		tok_batch_ids(&b, m, enc, o->threads, o->special, emit_stdout, NULL);
	} while (r > 0);
	tok_batch_free(&b);
	tok_encoders_free(enc, o->threads);
	bpe_input_close(in);
	return r < 0 ? -1 : 0;
}

static char *read_stdin(size_t *len)
{
	struct buf b = { 0 };
	char tmp[1 << 16];
	size_t r;
	while ((r = fread(tmp, 1, sizeof tmp, stdin)) > 0)
		buf_put(&b, tmp, r);
	if (ferror(stdin))
		die_errno("cannot read standard input");
	buf_putc(&b, 0);
	*len = b.len - 1;
	return (char *)b.p;
}

/* --decode-ids: lines of decimal ids back to bytes */
static int run_decode_ids(const struct bpe *m, char **argv, int argc)
{
	int failed = 0;
	for (int i = 0; i < (argc ? argc : 1); i++) {
		const char *name = argc ? argv[i] : "-";
		size_t len;
		char *t = !strcmp(name, "-") ? read_stdin(&len) : read_file(name, &len);
		if (!t || tok_decode_ids_text(m, name, t, len, emit_stdout, NULL))
			failed = 1;
		free(t);
	}
	return failed ? -1 : 0;
}

/* --decode: token shards back to the documents' bytes */
static int run_decode(const struct bpe *m, char **argv, int argc, const struct opts *o)
{
	char **list;
	size_t nl = shard_list(argv, (size_t)argc, &list);
	struct atomic_stream as;
	int to_file = o->out && strcmp(o->out, "-");
	if (to_file && atomic_fopen(&as, o->out))
		exit(EXIT_ERR);
	FILE *f = to_file ? as.fp : stdout;
	int failed = 0;
	for (size_t i = 0; i < nl && !failed; i++)
		if (tok_decode_shard(m, list[i], o->jsonl, f, to_file ? o->out : "standard output"))
			failed = 1;
	if (to_file) {
		if (failed)
			atomic_fabort(&as);
		else if (atomic_fclose(&as))
			failed = 1;
	}
	shard_list_free(list, nl);
	return failed ? -1 : 0;
}

/* --pieces: how the pre-tokenizer splits each input */
static int run_pieces(char **argv, int argc)
{
	char *dash[] = { "-" };
	struct bpe_input *in = argc ? bpe_input_open(argv, (size_t)argc, 1) : bpe_input_open(dash, 1, 1);
	struct buf line = { 0 };
	uint64_t id;
	const unsigned char *s;
	size_t n;
	int r;
	while ((r = bpe_input_next(in, &id, &s, &n)) == 1) {
		buf_reset(&line);
		buf_putc(&line, '[');
		for (size_t i = 0; i < n;) {
			size_t l = pretok_piece(s + i, n - i);
			if (i)
				buf_puts(&line, ", ");
			json_str(&line, s + i, l);
			i += l;
		}
		buf_puts(&line, "]\n");
		write_out(line.p, line.len);
	}
	buf_free(&line);
	bpe_input_close(in);
	close_stdout();
	return r < 0 ? EXIT_ERR : EXIT_OK;
}

int main(int argc, char **argv)
{
	enum { O_MIN_RATIO = 256, O_REPORT, O_SPECIAL, O_TEXT, O_IDS, O_DECODE_IDS, O_DECODE, O_JSONL,
	       O_PIECES };
	static const struct option longopts[] = {
		{ "min-ratio", required_argument, NULL, O_MIN_RATIO },
		{ "report", required_argument, NULL, O_REPORT },
		{ "special", no_argument, NULL, O_SPECIAL },
		{ "text", no_argument, NULL, O_TEXT },
		{ "ids", no_argument, NULL, O_IDS },
		{ "decode-ids", no_argument, NULL, O_DECODE_IDS },
		{ "decode", no_argument, NULL, O_DECODE },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "pieces", no_argument, NULL, O_PIECES },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = { .min_ratio = 1.5, .mode = M_ENCODE };
	int c;
	cp_setprogname(argv[0]);
	o.threads = cpu_count();
	while ((c = getopt_long(argc, argv, "ht:j:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o.tok = optarg; break;
		case 'j': o.threads = opt_threads("-j", optarg); break;
		case 'o': o.out = optarg; break;
		case O_MIN_RATIO: o.min_ratio = opt_double("--min-ratio", optarg, 0, 1e9); break;
		case O_REPORT: o.report = optarg; break;
		case O_SPECIAL: o.special = 1; break;
		case O_TEXT: o.text = 1; break;
		case O_IDS: o.mode = M_IDS; break;
		case O_DECODE_IDS: o.mode = M_DECODE_IDS; break;
		case O_DECODE: o.mode = M_DECODE; break;
		case O_JSONL: o.jsonl = 1; break;
		case O_PIECES: o.mode = M_PIECES; break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	argv += optind;
	argc -= optind;
	if (o.mode == M_PIECES)
		return run_pieces(argv, argc);
	if (!o.tok)
		die_usage("no tokenizer given (-t TOKENIZER)");
	if ((o.mode == M_ENCODE || o.mode == M_DECODE) && !argc)
		die_usage("no input given");
	if (o.jsonl && o.mode != M_DECODE)
		die_usage("--jsonl goes with --decode");
	if (o.mode == M_ENCODE && (!o.out || !strcmp(o.out, "-")))
		refuse_tty(1, "token shards");
	struct bpe m;
	if (bpe_load(&m, o.tok))
		return EXIT_ERR;
	if (o.mode == M_ENCODE && m.eot == BPE_NONE)
		die("'%s': the tokenizer has no %s token to end documents with", o.tok, BPE_EOT);
	int r;
	switch (o.mode) {
	case M_IDS: r = run_ids(&m, argv, argc, &o); break;
	case M_DECODE_IDS: r = run_decode_ids(&m, argv, argc); break;
	case M_DECODE: r = run_decode(&m, argv, argc, &o); break;
	default: r = run_encode(&m, argv, argc, &o); break;
	}
	bpe_free(&m);
	close_stdout();
	return r ? EXIT_ERR : EXIT_OK;
}
