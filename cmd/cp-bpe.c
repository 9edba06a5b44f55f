/* cp-bpe: train a byte-level BPE tokenizer (GPT-2's pre-tokenizer, all 256 bytes,
 * <|endoftext|>, with --fim StarCoder's four fill-in-the-middle tokens) on documents, writing
 * files that HF tokenizers and cp-tokenize load. */
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "input/textdocs.h"
#include "tok/bpe.h"
#include "tok/encode-docs.h"
#include "tok/fim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: cp-bpe [-j N] [--vocab-size N] [--min-frequency N] [--max-docs N] [--max-bytes N] [--fim] [--text] [-o DIR] INPUT...\n"
	"\n"
	"  -j N               threads for counting (default: all CPUs); same output for any N\n"
	"  --vocab-size N     tokens in all, <|endoftext|> and the 256 bytes included: at least 257\n"
	"                     (default 32768)\n"
	"  --min-frequency N  stop merging when the best pair occurs fewer than N times (default 0)\n"
	"  --max-docs N       read at most N documents\n"
	"  --max-bytes N      read documents while their total stays within N bytes (k, M, G)\n"
	"  --fim              add <fim_prefix>, <fim_middle>, <fim_suffix>, <fim_pad> as special\n"
	"                     tokens after the merges (counted in --vocab-size)\n"
	"  --text             inputs are plain files (directories walked), each one document\n"
	"  -o DIR             write DIR/tokenizer.json, DIR/vocab.json, DIR/merges.txt and their\n"
	"                     DIR/cp-bpe.sums (default .)\n"
	"  -h                 show this help\n";

/* every cp tokenizer holds the 256 bytes and <|endoftext|>: a smaller size cannot be kept */
#define BPE_MIN_VOCAB 257

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

struct opts {
	struct bpe_train_opts to;
	struct tok_caps caps;
	const char *outdir;
	int text, fim;
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
	enum { O_VOCAB = 256, O_MINF, O_MAXDOCS, O_MAXBYTES, O_TEXT, O_FIM };
	static const struct option longopts[] = {
		{ "vocab-size", required_argument, NULL, O_VOCAB },
		{ "min-frequency", required_argument, NULL, O_MINF },
		{ "max-docs", required_argument, NULL, O_MAXDOCS },
		{ "max-bytes", required_argument, NULL, O_MAXBYTES },
		{ "text", no_argument, NULL, O_TEXT },
		{ "fim", no_argument, NULL, O_FIM },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	*o = (struct opts){ .to = { .vocab_size = 32768, .min_freq = 0, .threads = cpu_count() },
			    .caps = { .max_docs = UINT64_MAX, .max_bytes = UINT64_MAX },
			    .outdir = "." };
	int c;
	while ((c = getopt_long(argc, argv, "hj:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': o->to.threads = opt_threads("-j", optarg); break;
		case 'o': o->outdir = optarg; break;
		case O_VOCAB: o->to.vocab_size = (uint32_t)opt_u64("--vocab-size", optarg, BPE_MIN_VOCAB, 1u << 30); break;
		case O_MINF: o->to.min_freq = opt_u64("--min-frequency", optarg, 0, UINT64_MAX); break;
		case O_MAXDOCS: o->caps.max_docs = opt_u64("--max-docs", optarg, 0, UINT64_MAX); break;
		case O_MAXBYTES: o->caps.max_bytes = opt_u64("--max-bytes", optarg, 0, UINT64_MAX); break;
		case O_TEXT: o->text = 1; break;
		case O_FIM: o->fim = 1; break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	if (optind == argc)
		die_usage("no input given");
	if (o->fim && o->to.vocab_size < BPE_MIN_VOCAB + FIM_N)
		die_usage("--vocab-size with --fim: at least %d (the bytes, <|endoftext|> and the "
			  "FIM tokens), not %u", BPE_MIN_VOCAB + FIM_N, o->to.vocab_size);
	/* the merges take what the FIM tokens leave */
	if (o->fim)
		o->to.vocab_size -= FIM_N;
	o->to.progress = is_tty(2);
}

int main(int argc, char **argv)
{
	struct opts o;
	cp_setprogname(argv[0]);
	parse_opts(argc, argv, &o);
	struct bpe_input *in = bpe_input_open(argv + optind, (size_t)(argc - optind), o.text);
	struct bpe_counter *cnt = tok_count_docs(in, o.to.threads, &o.caps, o.to.progress);
	if (!cnt)
		return EXIT_ERR;
	bpe_input_close(in);
	/* as cp-pack and cp-train refuse empty inputs: a tokenizer of bytes alone is no result */
	if (!o.caps.docs)
		die("no documents in the inputs");
	if (!bpe_counter_size(cnt))
		die("no text in the inputs' documents (%llu, all empty)", (unsigned long long)o.caps.docs);
	struct bpe m;
	bpe_init(&m);
	bpe_train(&m, cnt, &o.to);
	bpe_counter_free(cnt);
	if (o.fim && fim_add_tokens(&m))
		die("the trained vocabulary already holds a FIM token");
	int r = bpe_save(&m, o.outdir);
	bpe_free(&m);
	close_stdout();
	return r ? EXIT_ERR : EXIT_OK;
}
