/* cp-humaneval: HumanEval for cp models: run samples' programs in the sandbox (common/eval/sandbox.c),
 * judge them as openai/human-eval does, and report pass@k. Subcommands, so that generation
 * (which needs a model) can join evaluation under one name. */
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/ompwait.h"
#include "base/xalloc.h"
#include "eval/evaluate.h"
#include "eval/generate.h"
#include "eval/humaneval.h"
#include "eval/judge.h"

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: cp-humaneval evaluate --problems FILE --samples SAMPLES [-j N] [--timeout S] [-o RESULTS]\n"
	"                    [-k LIST] [--memory BYTES] [--python PATH] [--guard] [--cold] [--unsafe-no-isolation] [-v]\n"
	"       cp-humaneval sandbox [--python PATH] [--cold] [--unsafe-no-isolation]\n"
	"       cp-humaneval generate -m MODEL --problems FILE [-n N] [-j N] -o SAMPLES [--tokenizer PATH]\n"
	"                    [--temperature T] [--top-p P] [--top-k K] [--max-tokens N] [--seed S] [--batch B] [--limit N]\n"
	"                    [--batch-rows R] [--device cpu|cuda[:N]] [--bf16]\n"
	"       cp-humaneval run -m MODEL --problems FILE [-n N] [-j N] --samples SAMPLES [-o RESULTS]\n"
	"                    [generate's options] [evaluate's options]\n"
	"\n"
	"  evaluate        run every sample's program in the sandbox; results in the samples' order\n"
	"  sandbox         print the protections this machine allows and test the sandbox\n"
	"  generate        sample completions of each problem's prompt from a model\n"
	"  run             generate, then evaluate what was generated\n"
	"  --problems FILE HumanEval problems (JSON lines, plain, .gz or .zst)\n"
	"  --samples FILE  {\"task_id\", \"completion\"} JSON lines (run: where they are written)\n"
	"  -j N            parallel candidates, and the threads generating (default: all cores)\n"
	"  --timeout S     seconds per program (default 3); the group is killed 1 s later\n"
	"  -o FILE         evaluate, run: one result line per sample; generate: the samples\n"
	"                  ('-' for standard output)\n"
	"  -k LIST         pass@k values to estimate (default 1,10,100)\n"
	"  --memory BYTES  address-space limit per candidate (default 1G; k, M, G suffixes)\n"
	"  --python PATH   the interpreter (default: python3 on PATH, else /usr/bin/python3)\n"
	"  --guard         also disable what human-eval's reliability_guard disables\n"
	"  --cold          a fresh sandbox and interpreter for every candidate (slower)\n"
	"  --unsafe-no-isolation  run with rlimits alone where namespaces are unavailable\n"
	"  -v              one line per sample on standard error, with its output\n"
	"  -m MODEL        cp-train run directory or checkpoint, or Hugging Face GPT-2 directory\n"
	"  --tokenizer PATH  the tokenizer, when it is not beside the model\n"
	"  -n N            samples per problem (default 200)\n"
	"  --temperature T sampling temperature (default 0.2; 0: greedy)\n"
	"  --top-p P       nucleus sampling (default 0.95; 1: off)\n"
	"  --top-k K       sample from the K likeliest tokens (default 0: off)\n"
	"  --max-tokens N  new tokens per sample (default 256)\n"
	"  --seed S        random seed (default 0)\n"
	"  --batch B       samples of a problem drawn from one seed (default 50)\n"
	"  --batch-rows R  samples decoded at once, of any problems (default: 32 on the CPU, 256\n"
	"                  on a device; fewer where their cache would not fit)\n"
	"  --limit N       only the first N problems\n"
	"  --device D      what runs the model: cpu (default) or cuda[:N]\n"
	"  --bf16          generate with the weights in bf16 (see cp-complete --bf16)\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

/* ---- evaluate ---- */

static void parse_ks(struct eval_opts *o, const char *s)
{
	o->nk = 0;
	char *copy = xstrdup(s), *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->nk == sizeof o->ks / sizeof *o->ks)
			die_usage("option '-k' takes at most 16 values");
		o->ks[o->nk++] = opt_u64("-k", t, 1, 1000000000);
	}
	free(copy);
	if (!o->nk)
		die_usage("option '-k' needs a list like 1,10,100");
}

static void eval_defaults(struct eval_opts *o)
{
	memset(o, 0, sizeof *o);
	o->judge.jobs = cpu_count();
	o->judge.timeout = 3.0;
	o->judge.memory = 1ULL << 30;
	o->ks[0] = 1, o->ks[1] = 10, o->ks[2] = 100, o->nk = 3;
}

/* The options evaluate and run share (run also takes generate's). */
#define EVAL_LONGOPTS \
	{ "samples", required_argument, NULL, 'S' }, \
	{ "timeout", required_argument, NULL, 'T' }, \
	{ "memory", required_argument, NULL, 'M' }, \
	{ "python", required_argument, NULL, 'Y' }, \
	{ "guard", no_argument, NULL, 'G' }, \
	{ "cold", no_argument, NULL, 'C' }, \
	{ "unsafe-no-isolation", no_argument, NULL, 'U' }, \
	{ "help", no_argument, NULL, 'h' },

/* Apply one of those (or -k, -v, -h) to O; 0 when C is none of them. */
static int eval_opt(struct eval_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'S': o->samples = arg; break;
	case 'T': o->judge.timeout = opt_double("--timeout", arg, 0.001, 86400); break;
	case 'M': o->judge.memory = opt_u64("--memory", arg, 16000000, UINT64_MAX); break;
	case 'Y': o->judge.python = arg; break;
	case 'G': o->judge.guard = 1; break;
	case 'C': o->judge.cold = 1; break;
	case 'U': o->judge.unsafe = 1; break;
	case 'k': parse_ks(o, arg); break;
	case 'v': o->verbose = 1; break;
	case 'h': usage(0); break;
	default: return 0;
	}
	return 1;
}

static int parse_eval(int argc, char **argv, struct eval_opts *o, int sandbox_only)
{
	static const struct option longopts[] = {
		{ "problems", required_argument, NULL, 'P' },
		EVAL_LONGOPTS
		{ 0 }
	};
	eval_defaults(o);
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj:o:k:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'P': o->problems = optarg; break;
		case 'j': o->judge.jobs = opt_threads("-j", optarg); break;
		case 'o': o->out = optarg; break;
		default:
			if (!eval_opt(o, c, optarg))
				usage(EXIT_USAGE);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!sandbox_only && (!o->problems || !o->samples))
		die_usage("evaluate needs --problems FILE and --samples FILE");
	return 0;
}

static int cmd_evaluate(int argc, char **argv)
{
	struct eval_opts o;
	parse_eval(argc, argv, &o, 0);
	struct he_problems ps;
	if (he_problems_load(o.problems, &ps))
		return EXIT_ERR;
	/* a malformed samples file is found before the sandbox starts */
	struct he_samples ss;
	if (he_samples_load(o.samples, &ps, &ss)) {
		he_problems_free(&ps);
		return EXIT_ERR;
	}
	he_samples_free(&ss);
	struct judge j = { 0 };
	judge_open(&j, &o.judge);
	judge_describe(&j, stderr);
	eval_file(&o, &ps, &j, 0);
	judge_close(&j);
	he_problems_free(&ps);
	close_stdout();
	return EXIT_OK;
}

static int cmd_sandbox(int argc, char **argv)
{
	struct eval_opts o;
	parse_eval(argc, argv, &o, 1);
	struct judge j = { 0 };
	judge_open(&j, &o.judge);
	judge_describe(&j, stdout);
	judge_close(&j);
	close_stdout();
	return EXIT_OK;
}

/* ---- generate ---- */

enum { O_TOKENIZER = 256, O_TEMPERATURE, O_TOP_P, O_TOP_K, O_MAX_TOKENS, O_SEED, O_BATCH,
       O_LIMIT, O_DEVICE, O_BF16, O_BATCH_ROWS };

/* generate's options, and for run evaluate's too (E) */
static void parse_gen(int argc, char **argv, struct gen_opts *g, struct eval_opts *e, int run)
{
	static const struct option longopts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "problems", required_argument, NULL, 'P' },
		{ "tokenizer", required_argument, NULL, O_TOKENIZER },
		{ "temperature", required_argument, NULL, O_TEMPERATURE },
		{ "top-p", required_argument, NULL, O_TOP_P },
		{ "top-k", required_argument, NULL, O_TOP_K },
		{ "max-tokens", required_argument, NULL, O_MAX_TOKENS },
		{ "seed", required_argument, NULL, O_SEED },
		{ "batch", required_argument, NULL, O_BATCH },
		{ "batch-rows", required_argument, NULL, O_BATCH_ROWS },
		{ "limit", required_argument, NULL, O_LIMIT },
		{ "device", required_argument, NULL, O_DEVICE },
		{ "bf16", no_argument, NULL, O_BF16 },
		EVAL_LONGOPTS
		{ 0 }
	};
	gen_defaults(g);
	eval_defaults(e);
	int c, li = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hm:n:j:o:k:v", longopts, &li)) != -1) {
		if (!run && c > 0 && c < 256 && strchr("STMYGCUkv", c))
			die_usage("option '%s%s' goes with evaluate and run, not generate",
				  li >= 0 ? "--" : "-", li >= 0 ? longopts[li].name : (char[]){ (char)c, 0 });
		li = -1;
		switch (c) {
		case 'm': g->model = optarg; break;
		case 'P': g->problems = e->problems = optarg; break;
		case O_TOKENIZER: g->tokenizer = optarg; break;
		case O_TEMPERATURE: g->temperature = opt_double("--temperature", optarg, 0, 100); break;
		case O_TOP_P: g->top_p = opt_double("--top-p", optarg, 0, 1); break;
		case O_TOP_K: g->top_k = (uint32_t)opt_u64("--top-k", optarg, 0, UINT32_MAX); break;
		case O_MAX_TOKENS:
			g->max_tokens = (uint32_t)opt_u64("--max-tokens", optarg, 1, 1u << 20);
			break;
		case O_SEED: g->seed = opt_u64("--seed", optarg, 0, UINT64_MAX); break;
		case O_BATCH: g->batch = (uint32_t)opt_u64("--batch", optarg, 1, 65536); break;
		case O_BATCH_ROWS:
			g->rows = (uint32_t)opt_u64("--batch-rows", optarg, 1, 65536);
			break;
		case O_LIMIT: g->limit = opt_u64("--limit", optarg, 1, SIZE_MAX); break;
		case O_DEVICE: g->device = optarg; break;
		case O_BF16: g->bf16 = 1; break;
		case 'n': g->n = (uint32_t)opt_u64("-n", optarg, 1, 1000000); break;
		case 'j': g->jobs = e->judge.jobs = opt_threads("-j", optarg); break;
		case 'o': if (run) e->out = optarg; else g->out = optarg; break;
		default:
			if (!eval_opt(e, c, optarg))
				usage(EXIT_USAGE);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (g->top_p == 0)
		die_usage("option '--top-p' must be above 0");
	const char *sub = run ? "run" : "generate";
	if (!g->model)
		die_usage("%s needs -m MODEL", sub);
	if (!g->problems)
		die_usage("%s needs --problems FILE", sub);
	if (!run && !g->out)
		die_usage("generate needs -o SAMPLES");
	if (run && !e->samples)
		die_usage("run needs --samples SAMPLES (where the samples are written)");
	if (run && !strcmp(e->samples, "-"))
		die_usage("run writes its samples to a file, not standard output");
	if (run && e->out && !strcmp(e->out, e->samples))
		die_usage("run: the samples and the results need two files");
}

static int cmd_generate(int argc, char **argv)
{
	struct gen_opts g;
	struct eval_opts e;
	parse_gen(argc, argv, &g, &e, 0);
	struct he_problems ps;
	if (he_problems_load(g.problems, &ps))
		return EXIT_ERR;
	gen_run(&g, &ps, g.out);
	he_problems_free(&ps);
	close_stdout();
	return EXIT_OK;
}

/* The sandbox is checked first: a machine that cannot judge should not spend hours
 * generating. */
static int cmd_run(int argc, char **argv)
{
	struct gen_opts g;
	struct eval_opts e;
	parse_gen(argc, argv, &g, &e, 1);
	struct he_problems ps;
	if (he_problems_load(g.problems, &ps))
		return EXIT_ERR;
	struct judge j = { 0 };
	judge_open(&j, &e.judge);
	judge_describe(&j, stderr);
	gen_run(&g, &ps, e.samples);
	eval_file(&e, &ps, &j, g.limit != 0);
	judge_close(&j);
	he_problems_free(&ps);
	close_stdout();
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	cp_setprogname(argv[0]);
	if (argc < 2)
		usage(EXIT_USAGE);
	const char *sub = argv[1];
	if (!strcmp(sub, "-h") || !strcmp(sub, "--help"))
		usage(0);
	if (!strcmp(sub, "evaluate"))
		return cmd_evaluate(argc - 1, argv + 1);
	if (!strcmp(sub, "sandbox"))
		return cmd_sandbox(argc - 1, argv + 1);
	/* A step of generation is a few short parallel regions a layer: on a machine other work
	 * shares, spinning threads wait on descheduled ones (2 cores at load 10, 8 samples of a
	 * 4-layer model: 78 s and 17.6 s CPU spinning, 3.8 s and 1.3 s passive). */
	if (!strcmp(sub, "generate") || !strcmp(sub, "run"))
		ompwait_passive(argv);
	if (!strcmp(sub, "generate"))
		return cmd_generate(argc - 1, argv + 1);
	if (!strcmp(sub, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (sub[0] == '-')
		die_usage("unknown option '%s'", sub);
	die_usage("unknown subcommand '%s' (evaluate, sandbox, generate, run)", sub);
}
