/* cp-bpe: train a byte-level BPE tokenizer (GPT-2's pre-tokenizer, all 256 bytes,
 * <|endoftext|>) on documents, writing files that HF tokenizers and cp-tokenize load. */
#include "tok/bpe.h"
#include "input/textdocs.h"
#include "base/die.h"
#include "base/io.h"
#include "base/cli.h"
#include "base/xalloc.h"

#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: cp-bpe [-j N] [--vocab-size N] [--min-frequency N] [--max-docs N] [--max-bytes N] [--text] [-o DIR] INPUT...\n"
	"\n"
	"  -j N               threads for counting (default: all CPUs); same output for any N\n"
	"  --vocab-size N     tokens in all, <|endoftext|> and the 256 bytes included (default 32768)\n"
	"  --min-frequency N  stop merging when the best pair occurs fewer than N times (default 0)\n"
	"  --max-docs N       read at most N documents\n"
	"  --max-bytes N      read documents while their total stays within N bytes (k, M, G)\n"
	"  --text             inputs are plain files (directories walked), each one document\n"
	"  -o DIR             write DIR/tokenizer.json, DIR/vocab.json, DIR/merges.txt (default .)\n"
	"  -h                 show this help\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

#define BATCH_DOCS 4096
#define BATCH_BYTES (16u << 20)

int main(int argc, char **argv)
{
	enum { O_VOCAB = 256, O_MINF, O_MAXDOCS, O_MAXBYTES, O_TEXT };
	static const struct option longopts[] = {
		{ "vocab-size", required_argument, NULL, O_VOCAB },
		{ "min-frequency", required_argument, NULL, O_MINF },
		{ "max-docs", required_argument, NULL, O_MAXDOCS },
		{ "max-bytes", required_argument, NULL, O_MAXBYTES },
		{ "text", no_argument, NULL, O_TEXT },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct bpe_train_opts to = { .vocab_size = 32768, .min_freq = 0 };
	uint64_t max_docs = UINT64_MAX, max_bytes = UINT64_MAX;
	const char *outdir = ".";
	int text = 0, c;
	cp_setprogname(argv[0]);
	to.threads = cpu_count();
	while ((c = getopt_long(argc, argv, "hj:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': to.threads = opt_threads("-j", optarg); break;
		case 'o': outdir = optarg; break;
		case O_VOCAB: to.vocab_size = (uint32_t)opt_u64("--vocab-size", optarg, 1, 1u << 30); break;
		case O_MINF: to.min_freq = opt_u64("--min-frequency", optarg, 0, UINT64_MAX); break;
		case O_MAXDOCS: max_docs = opt_u64("--max-docs", optarg, 0, UINT64_MAX); break;
		case O_MAXBYTES: max_bytes = opt_u64("--max-bytes", optarg, 0, UINT64_MAX); break;
		case O_TEXT: text = 1; break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	if (optind == argc)
		die_usage("no input given");
	to.progress = is_tty(2);

	struct bpe_input *in = bpe_input_open(argv + optind, (size_t)(argc - optind), text);
	int nt = to.threads;
	struct bpe_counter **cnt = xcalloc((size_t)nt, sizeof *cnt);
	for (int i = 0; i < nt; i++)
		cnt[i] = bpe_counter_new();
	struct buf bt = { 0 };
	size_t *off = xmalloc(BATCH_DOCS * sizeof *off), *len = xmalloc(BATCH_DOCS * sizeof *len);
	uint64_t docs = 0, bytes = 0;
	int done = 0;
	while (!done) {
		long n = 0;
		buf_reset(&bt);
		while (n < BATCH_DOCS && bt.len < BATCH_BYTES) {
			uint64_t id;
			const unsigned char *s;
			size_t l;
			if (docs >= max_docs) {
				done = 1;
				break;
			}
			int r = bpe_input_next(in, &id, &s, &l);
			if (r < 0)
				return EXIT_ERR;
			if (!r || bytes + l > max_bytes) {
				done = 1;
				break;
			}
			off[n] = bt.len;
			len[n++] = l;
			buf_put(&bt, s, l);
			docs++;
			bytes += l;
		}
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
		for (long i = 0; i < n; i++)
			bpe_counter_add(cnt[omp_get_thread_num()], bt.p + off[i], len[i]);
		if (to.progress)
			fprintf(stderr, "\rcp-bpe: %llu documents, %.1f MB", (unsigned long long)docs,
				(double)bytes / 1e6);
	}
	if (to.progress)
		fputc('\n', stderr);
	bpe_input_close(in);
	buf_free(&bt);
	free(off);
	free(len);
	for (int i = 1; i < nt; i++) {
		bpe_counter_merge(cnt[0], cnt[i]);
		bpe_counter_free(cnt[i]);
	}
	struct bpe m;
	bpe_init(&m);
	bpe_train(&m, cnt[0], &to);
	bpe_counter_free(cnt[0]);
	free(cnt);
	int r = bpe_save(&m, outdir);
	bpe_free(&m);
	close_stdout();
	return r ? EXIT_ERR : EXIT_OK;
}
