/* cp-complete: complete code with a GPT-2 model (a cp-train run, a checkpoint or a Hugging Face
 * export): one prompt, JSON-lines batches of requests, per-token scoring of a file, or an HTTP
 * server in the shape of OpenAI's Completions API. The work is in common/infer/: complete.c
 * generates and scores, request.c reads requests and renders answers, server.c serves HTTP;
 * this file parses options and wires them together. */
#include "base/buf.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "infer/complete.h"
#include "infer/request.h"
#include "infer/server.h"

#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cp-complete -m MODEL [--device DEV] [options] [PROMPT]\n"
	"       cp-complete -m MODEL [options] --jsonl [-f FILE]\n"
	"       cp-complete -m MODEL --score FILE [--json | --view]\n"
	"       cp-complete -m MODEL [options] --serve [HOST:]PORT [server limits]\n"
	"\n"
	"  -m MODEL             cp-train run directory, checkpoint, or Hugging Face GPT-2 directory\n"
	"  --device DEV         cpu or cuda[:N], the device that runs the model (default cpu)\n"
	"  --bf16               generate with the weights in bf16 (CPU; about 2x the tokens/s)\n"
	"  -t, --tokenizer PATH tokenizer (default: the one beside the model)\n"
	"  -f FILE              read the prompt (or, with --jsonl, the requests) from FILE\n"
	"  -n N                 samples per prompt, decoded as one batch (default 1)\n"
	"  -N, --max-tokens N   new tokens per sample (default 128)\n"
	"  -T, --temperature X  0 = greedy (default 0)\n"
	"  -k, --top-k K        sample from the K likeliest tokens (default 0 = all)\n"
	"  -p, --top-p P        nucleus sampling (default 1 = off)\n"
	"  -s, --seed S         random seed (default 0)\n"
	"  -S, --stop STR       stop string, cut from the output; repeatable; \\n \\t \\\\ escapes\n"
	"  --no-eot-stop        keep going past <|endoftext|>\n"
	"  --suffix TEXT        fill in the middle: the prompt is the prefix, TEXT what follows\n"
	"  --suffix-file FILE   the suffix read from FILE\n"
	"  --stats              print timings as a JSON line on stderr\n"
	"  --json               JSON output (one line per sample; the score as JSON)\n"
	"  --jsonl              JSON-lines batch: one request per input line, one result per line\n"
	"  --score FILE         log-probability of every token of FILE ('-' = stdin)\n"
	"  --view               show the score as coloured text (default on a terminal)\n"
	"  --serve [HOST:]PORT  HTTP server (HOST default 127.0.0.1; PORT 0 = any free port)\n"
	"  --max-body BYTES     largest request body (default 1048576)\n"
	"  --max-prompt N       longest prompt in tokens (default: the context)\n"
	"  --max-concurrent N   requests admitted at once; more get 429 (default 4)\n"
	"  --max-n N            most samples a request may ask for (default 16)\n"
	"  --batch N            samples the server decodes together (default 8)\n"
	"  -j, --threads N      threads (default: all cores)\n"
	"  -h                   show this help\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

struct opts {
	const char *model, *tokenizer, *file, *score, *serve, *prompt, *device, *suffix_file;
	char *suffix;
	struct complete_params p;
	char **stop;
	size_t n_stop;
	int json, jsonl, view, threads, stats, bf16;
	uint64_t max_body, max_prompt, max_concurrent, max_n, batch;
};

/* \n, \t, \r, \\ and \0 in a --stop value: a newline is awkward to type in a shell */
static char *unescape(const char *s)
{
	char *o = xmalloc(strlen(s) + 1), *w = o;
	for (; *s; s++) {
		if (*s != '\\' || !s[1]) {
			*w++ = *s;
			continue;
		}
		switch (*++s) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case '\\': *w++ = '\\'; break;
		default: *w++ = '\\'; *w++ = *s; break;
		}
	}
	*w = 0;
	return o;
}

enum {
	O_JSON = 256, O_JSONL, O_SCORE, O_VIEW, O_SERVE, O_MAXBODY, O_MAXPROMPT, O_MAXCONC,
	O_MAXN, O_NOEOT, O_STATS, O_DEVICE, O_BATCH, O_BF16, O_SUFFIX, O_SUFFIXFILE
};

/* the option values together: the stop strings into the params, the modes exclusive */
static void check_opts(int argc, char **argv, struct opts *o)
{
	o->p.stop = (const char *const *)o->stop;
	o->p.n_stop = o->n_stop;
	if (!o->model)
		die_usage("-m MODEL is required");
	if (optind < argc)
		o->prompt = argv[optind++];
	if (optind < argc)
		die_usage("one PROMPT at most (quote it)");
	if (!!o->jsonl + !!o->score + !!o->serve > 1)
		die_usage("--jsonl, --score and --serve exclude each other");
	if (o->prompt && (o->file || o->jsonl || o->score || o->serve))
		die_usage("a PROMPT argument goes with none of -f, --jsonl, --score, --serve");
	if (o->json && o->view)
		die_usage("--json and --view exclude each other");
	if (o->view && !o->score)
		die_usage("--view goes with --score");
	if (o->suffix && o->suffix_file)
		die_usage("--suffix and --suffix-file exclude each other");
	if ((o->suffix || o->suffix_file) && (o->jsonl || o->score || o->serve))
		die_usage("--suffix goes with one prompt (requests give theirs as \"suffix\")");
	if (o->suffix_file) {
		size_t len;
		o->suffix = read_file(o->suffix_file, &len);
		if (!o->suffix)
			exit(EXIT_ERR);
		o->p.suffix_len = len;
	} else if (o->suffix) {
		o->suffix = xstrdup(o->suffix);
		o->p.suffix_len = strlen(o->suffix);
	}
	o->p.suffix = o->suffix;
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "tokenizer", required_argument, NULL, 't' },
		{ "max-tokens", required_argument, NULL, 'N' },
		{ "temperature", required_argument, NULL, 'T' },
		{ "top-k", required_argument, NULL, 'k' },
		{ "top-p", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 's' },
		{ "stop", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'j' },
		{ "no-eot-stop", no_argument, NULL, O_NOEOT },
		{ "stats", no_argument, NULL, O_STATS },
		{ "json", no_argument, NULL, O_JSON },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "score", required_argument, NULL, O_SCORE },
		{ "view", no_argument, NULL, O_VIEW },
		{ "serve", required_argument, NULL, O_SERVE },
		{ "max-body", required_argument, NULL, O_MAXBODY },
		{ "max-prompt", required_argument, NULL, O_MAXPROMPT },
		{ "max-concurrent", required_argument, NULL, O_MAXCONC },
		{ "max-n", required_argument, NULL, O_MAXN },
		{ "device", required_argument, NULL, O_DEVICE },
		{ "bf16", no_argument, NULL, O_BF16 },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "suffix", required_argument, NULL, O_SUFFIX },
		{ "suffix-file", required_argument, NULL, O_SUFFIXFILE },
		{ NULL, 0, NULL, 0 }
	};
	memset(o, 0, sizeof(*o));
	complete_params_default(&o->p);
	o->max_body = 1 << 20;
	o->max_concurrent = 4;
	o->max_n = 16;
	int c;
	while ((c = getopt_long(argc, argv, "hm:t:f:n:N:T:k:p:s:S:j:", lo, NULL)) != -1) {
		switch (c) {
		case 'h': usage(0); break;
		case 'm': o->model = optarg; break;
		case 't': o->tokenizer = optarg; break;
		case 'f': o->file = optarg; break;
		case 'n': o->p.n = (uint32_t)opt_u64("-n", optarg, 1, 65536); break;
		case 'N': o->p.max_tokens = (uint32_t)opt_u64("--max-tokens", optarg, 0, 1u << 24); break;
		case 'T': o->p.temperature = opt_double("--temperature", optarg, 0, 100); break;
		case 'k': o->p.top_k = (uint32_t)opt_u64("--top-k", optarg, 0, UINT32_MAX); break;
		case 'p': o->p.top_p = opt_double("--top-p", optarg, 1e-9, 1); break;
		case 's': o->p.seed = opt_u64("--seed", optarg, 0, UINT64_MAX); break;
		case 'S':
			if (!*optarg)
				die_usage("--stop: an empty stop string");
			o->stop = xreallocarray(o->stop, o->n_stop + 1, sizeof(char *));
			o->stop[o->n_stop++] = unescape(optarg);
			break;
		case 'j': o->threads = opt_threads("--threads", optarg); break;
		case O_NOEOT: o->p.no_eot_stop = 1; break;
		case O_STATS: o->stats = 1; break;
		case O_JSON: o->json = 1; break;
		case O_JSONL: o->jsonl = 1; break;
		case O_SCORE: o->score = optarg; break;
		case O_VIEW: o->view = 1; break;
		case O_SERVE: o->serve = optarg; break;
		case O_MAXBODY: o->max_body = opt_u64("--max-body", optarg, 16, 1ull << 32); break;
		case O_MAXPROMPT: o->max_prompt = opt_u64("--max-prompt", optarg, 1, 1u << 24); break;
		case O_MAXCONC: o->max_concurrent = opt_u64("--max-concurrent", optarg, 1, 1024); break;
		case O_MAXN: o->max_n = opt_u64("--max-n", optarg, 1, 65536); break;
		case O_DEVICE: o->device = optarg; break;
		case O_BF16: o->bf16 = 1; break;
		case O_BATCH: o->batch = opt_u64("--batch", optarg, 1, 4096); break;
		case O_SUFFIX: o->suffix = optarg; break;
		case O_SUFFIXFILE: o->suffix_file = optarg; break;
		default: usage(EXIT_USAGE);
		}
	}
	check_opts(argc, argv, o);
}

static void write_buf(const struct buf *b)
{
	if (b->len && fwrite(b->p, 1, b->len, stdout) != b->len)
		die_errno("cannot write to stdout");
}

static char *read_input(const char *file, size_t *len)
{
	char *s = read_file(file ? file : "/dev/stdin", len);
	if (!s)
		exit(EXIT_ERR);
	return s;
}

/* one prompt: the argument, -f FILE or stdin */
static int run_one(const struct complete_model *cm, const struct opts *o)
{
	size_t len;
	char *prompt = o->prompt ? xstrdup(o->prompt) : read_input(o->file, &len);
	if (o->prompt)
		len = strlen(prompt);
	struct complete_result res;
	char *err = NULL;
	if (complete_generate(cm, prompt, len, &o->p, (uint32_t)o->max_prompt, &res, &err))
		die("%s", err);
	struct buf b = { 0 };
	request_put_samples(&b, &res, o->json);
	write_buf(&b);
	if (o->stats) {
		buf_reset(&b);
		request_put_stats(&b, &res);
		fwrite(b.p, 1, b.len, stderr);
	}
	buf_free(&b);
	complete_result_free(&res);
	free(prompt);
	return 0;
}

/* --jsonl: one request a line, one result a line, flushed as each is done */
static int run_jsonl(const struct complete_model *cm, const struct opts *o)
{
	FILE *in = o->file ? fopen(o->file, "r") : stdin;
	const char *name = o->file ? o->file : "(stdin)";
	if (!in)
		die_errno("cannot open '%s'", o->file);
	char *line = NULL;
	size_t cap = 0, lineno = 0, failed = 0;
	ssize_t n;
	struct buf b = { 0 };
	while ((n = getline(&line, &cap, in)) > 0) {
		char *err;
		buf_reset(&b);
		int r = request_answer_line(cm, line, (size_t)n, ++lineno, &o->p,
					    (uint32_t)o->max_prompt, &b, &err);
		if (r == 1)
			continue;
		if (r) {
			error("%s:%zu: %s", name, lineno, err);
			free(err);
			failed++;
		}
		write_buf(&b);
		fflush(stdout);
	}
	if (ferror(in))
		die_errno("cannot read '%s'", name);
	free(line);
	buf_free(&b);
	if (in != stdin)
		fclose(in);
	return failed ? EXIT_ERR : 0;
}

static int run_score(const struct complete_model *cm, const struct opts *o)
{
	size_t len;
	const char *name = strcmp(o->score, "-") ? o->score : NULL;
	char *text = read_input(name, &len);
	struct complete_score sc;
	char *err = NULL;
	if (complete_score_text(cm, text, len, &sc, &err))
		die("'%s': %s", name ? name : "(stdin)", err);
	struct buf b = { 0 };
	request_put_score(&b, &cm->tok, &sc, o->view || (!o->json && is_tty(1)));
	write_buf(&b);
	buf_free(&b);
	complete_score_free(&sc);
	free(text);
	return 0;
}

/* --serve: the server loads the model itself, answering 503 until it has */
static int run_serve(const struct opts *o)
{
	struct server_config c = {
		.listen = o->serve, .model = o->model, .tokenizer = o->tokenizer,
		.device = o->device, .max_body = o->max_body,
		.max_prompt = o->max_prompt, .max_concurrent = o->max_concurrent,
		.max_n = o->max_n, .batch_rows = o->batch, .threads = o->threads, .bf16 = o->bf16,
	};
	return server_run(&c);
}

/* libgomp's threads spin a long while at each barrier before they sleep; decoding crosses
 * about a hundred barriers a token, and on a machine with other work a spinning thread holds
 * the core its partner needs (measured on 2 busy cores: 1 token/s instead of 17). On an idle
 * machine the long spin is faster (about 10%), so only a loaded one gets the short spin.
 * libgomp reads its settings when it loads, so the short spin means running ourselves again. */
static void short_spin(char **argv)
{
	double load;
	if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
		return;
	if (getloadavg(&load, 1) == 1 && load < cpu_count() - 0.5)
		return;
	setenv("GOMP_SPINCOUNT", "1000", 1);
	execv("/proc/self/exe", argv);
	/* no /proc: go on with the long spin */
}

int main(int argc, char **argv)
{
	short_spin(argv);
	cp_setprogname(argv[0]);
	struct opts o;
	parse_opts(argc, argv, &o);
	if (o.threads)
		omp_set_num_threads(o.threads);
	struct complete_model cm = { 0 };
	int r;
	if (o.serve)
		r = run_serve(&o);
	else if (complete_load(&cm, o.model, o.tokenizer, o.device))
		r = EXIT_ERR;
	else {
		if (o.bf16)
			complete_weights_bf16(&cm);
		r = o.jsonl ? run_jsonl(&cm, &o) : o.score ? run_score(&cm, &o) : run_one(&cm, &o);
	}
	complete_free(&cm);
	for (size_t i = 0; i < o.n_stop; i++)
		free(o.stop[i]);
	free(o.stop);
	free(o.suffix);
	close_stdout();
	return r;
}
