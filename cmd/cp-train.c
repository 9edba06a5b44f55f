/* cp-train: train a GPT-2 model on packed sequence shards (cp-pack). AdamW with warmup and a
 * decay schedule, gradient accumulation and clipping, periodic evaluation, atomic versioned
 * checkpoints with bit-exact resume, Hugging Face export and import, and data parallelism
 * under mpirun. The run itself is common/train/run.h on a backend chosen by --device, its
 * ranks from common/train/mpi.h; this file parses options and wires them. */
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "model/backend.h"
#include "model/ckpt.h"
#include "model/hf.h"
#include "model/plan.h"
#include "tok/bpe.h"
#include "train/lr-schedule.h"
#include "train/mpi.h"
#include "train/options.h"
#include "train/run.h"

#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static const char usage_text[] =
	"usage: cp-train -o RUNDIR --train DIR [--valid DIR] [--model PRESET] [shape flags]\n"
	"                [--batch B] [--seq T] [--accum N] [--steps N] [--lr X] [--warmup N]\n"
	"                [--schedule cosine|linear|constant] [--seed S] [--eval-every N]\n"
	"                [--ckpt-every N] [--keep K] [--threads N] [--device D] [--resume]\n"
	"                [--init-hf DIR] [--precision bf16|fp32] [--zero 0|1] [--comm-timeout S]\n"
	"       cp-train -o RUNDIR --valid DIR --eval-only\n"
	"       cp-train -o RUNDIR --export-hf DIR [--tokenizer PATH]\n"
	"       cp-train --plan [--model PRESET] [shape flags] [--batch B] [--seq T]\n"
	"                [--precision bf16|fp32] [--recompute] [--world N] [--zero 0|1] [--accum N]\n"
	"\n"
	"  --model PRESET       tiny, codeparrot-small (default), gpt2, medium, large, codeparrot\n"
	"  --vocab N --ctx N --layers N --heads N --width N   shape flags (override the preset)\n"
	"  --scale-attn-by-inverse-layer-idx 0|1  --reorder-and-upcast-attn 0|1\n"
	"  --batch B            sequences per step, over all ranks (default 8)\n"
	"  --seq T              tokens per sequence (default: the data's)\n"
	"  --accum N            micro-batches accumulated per step (default 1)\n"
	"  --steps N            total optimizer steps (default 1000)\n"
	"  --lr X               peak learning rate (default 5e-4)\n"
	"  --warmup N           linear warmup steps (default 100)\n"
	"  --schedule S         cosine (default), linear or constant after warmup\n"
	"  --min-lr-frac F      the schedule's floor as a fraction of --lr (default 0.1)\n"
	"  --wd X               AdamW weight decay (default 0.1)\n"
	"  --clip X             gradient norm clip (default 1.0; 0 = none)\n"
	"  --seed S             initialisation seed (default 0)\n"
	"  --eval-every N       evaluate every N steps (default 100; 0 = at the end only)\n"
	"  --eval-batches N     batches per evaluation (default 20; 0 = the whole split)\n"
	"  --ckpt-every N       checkpoint every N steps (default 1000; always at the end)\n"
	"  --keep K             checkpoints kept (default 3; 0 = all)\n"
	"  --threads N          CPU threads per process (default: all)\n"
	"  --device D           cpu (default), cuda or cuda:N: the backend the model runs on\n"
	"  --recompute          recompute activations in backward (less memory)\n"
	"  --precision P        bf16 or fp32 (default: bf16 on cuda; cpu trains in fp32 only)\n"
	"  --zero 0|1           1: ZeRO-1, AdamW's moments sharded over the ranks (default 0)\n"
	"  --comm-timeout S     end the job when a collective takes over S seconds (default 600)\n"
	"  --plan               print the memory --device cuda would need; opens no device\n"
	"  --world N            with --plan: the ranks (GPUs) of the job (default 1)\n"
	"  --stop-after N       stop after N steps in this run (checkpoint, then exit)\n"
	"  --peak-gflops X      peak GFLOP/s per process for the mfu field\n"
	"  --profile            print where the steps' time went (per op) on stderr at the end\n"
	"  --resume             continue from RUNDIR's latest checkpoint\n"
	"  --init-hf DIR        start from a Hugging Face GPT-2 (config.json, model.safetensors)\n"
	"  --eval-only          evaluate the latest checkpoint on --valid; print one JSON line\n"
	"  --export-hf DIR      write the latest checkpoint in Hugging Face format\n"
	"  --tokenizer PATH     tokenizer.json or its directory: kept in RUNDIR when training,\n"
	"                       copied by --export-hf (default: RUNDIR's)\n"
	"  -h                   show this help\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

/* ---- options ---- */

/* A saved training option's code minus O_BATCH is its given[] slot (enum train_opt). */
#define O_SAVED(name) O_BATCH + TRAIN_OPT_##name
enum {
	O_BATCH = 256, O_SEQ = O_SAVED(SEQ), O_ACCUM = O_SAVED(ACCUM), O_STEPS = O_SAVED(STEPS),
	O_WARMUP = O_SAVED(WARMUP), O_SCHED = O_SAVED(SCHEDULE), O_SEED = O_SAVED(SEED),
	O_LR = O_SAVED(LR), O_MINLR = O_SAVED(MIN_LR), O_WD = O_SAVED(WD), O_CLIP = O_SAVED(CLIP),
	O_EVALEVERY = O_SAVED(EVAL_EVERY), O_EVALBATCHES = O_SAVED(EVAL_BATCHES),
	O_CKPTEVERY = O_SAVED(CKPT_EVERY), O_KEEP = O_SAVED(KEEP),
	O_TRAIN = O_BATCH + TRAIN_OPT_N, O_VALID, O_MODEL, O_VOCAB, O_CTX, O_LAYERS, O_HEADS,
	O_WIDTH, O_SCALEINV, O_REORDER, O_THREADS, O_DEVICE, O_RECOMPUTE, O_STOPAFTER, O_PEAK,
	O_RESUME, O_INITHF, O_EVALONLY, O_EXPORTHF, O_TOKENIZER, O_PRECISION, O_PLAN, O_ZERO,
	O_WORLD, O_TIMEOUT, O_PROFILE
};

static const struct option long_opts[] = {
	{ "train", required_argument, NULL, O_TRAIN },
	{ "valid", required_argument, NULL, O_VALID },
	{ "model", required_argument, NULL, O_MODEL },
	{ "vocab", required_argument, NULL, O_VOCAB },
	{ "ctx", required_argument, NULL, O_CTX },
	{ "layers", required_argument, NULL, O_LAYERS },
	{ "heads", required_argument, NULL, O_HEADS },
	{ "width", required_argument, NULL, O_WIDTH },
	{ "scale-attn-by-inverse-layer-idx", required_argument, NULL, O_SCALEINV },
	{ "reorder-and-upcast-attn", required_argument, NULL, O_REORDER },
	{ "batch", required_argument, NULL, O_BATCH },
	{ "seq", required_argument, NULL, O_SEQ },
	{ "accum", required_argument, NULL, O_ACCUM },
	{ "steps", required_argument, NULL, O_STEPS },
	{ "lr", required_argument, NULL, O_LR },
	{ "warmup", required_argument, NULL, O_WARMUP },
	{ "schedule", required_argument, NULL, O_SCHED },
	{ "min-lr-frac", required_argument, NULL, O_MINLR },
	{ "wd", required_argument, NULL, O_WD },
	{ "clip", required_argument, NULL, O_CLIP },
	{ "seed", required_argument, NULL, O_SEED },
	{ "eval-every", required_argument, NULL, O_EVALEVERY },
	{ "eval-batches", required_argument, NULL, O_EVALBATCHES },
	{ "ckpt-every", required_argument, NULL, O_CKPTEVERY },
	{ "keep", required_argument, NULL, O_KEEP },
	{ "threads", required_argument, NULL, O_THREADS },
	{ "device", required_argument, NULL, O_DEVICE },
	{ "recompute", no_argument, NULL, O_RECOMPUTE },
	{ "stop-after", required_argument, NULL, O_STOPAFTER },
	{ "peak-gflops", required_argument, NULL, O_PEAK },
	{ "resume", no_argument, NULL, O_RESUME },
	{ "init-hf", required_argument, NULL, O_INITHF },
	{ "eval-only", no_argument, NULL, O_EVALONLY },
	{ "export-hf", required_argument, NULL, O_EXPORTHF },
	{ "tokenizer", required_argument, NULL, O_TOKENIZER },
	{ "precision", required_argument, NULL, O_PRECISION },
	{ "plan", no_argument, NULL, O_PLAN },
	{ "zero", required_argument, NULL, O_ZERO },
	{ "world", required_argument, NULL, O_WORLD },
	{ "comm-timeout", required_argument, NULL, O_TIMEOUT },
	{ "profile", no_argument, NULL, O_PROFILE },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

struct opts {
	const char *rundir, *train, *valid, *init_hf, *export_hf, *tokenizer, *device;
	struct train_opts t;
	struct train_shape shape;
	int threads, resume, eval_only, plan;
	uint64_t world;		/* --plan's ranks */
};

/* the option of code C as "--name", for the value parsers' messages */
static const char *flag_of(int c)
{
	static char flag[64];
	const char *name = "";
	for (const struct option *p = long_opts; p->name; p++)
		if (p->val == c)
			name = p->name;
	snprintf(flag, sizeof(flag), "--%s", name);
	return flag;
}

/* the options saved in checkpoints */
static void parse_train_opt(struct train_opts *t, int c, const char *flag, const char *arg)
{
	t->given[c - O_BATCH] = 1;
	switch (c) {
	case O_BATCH: t->batch = opt_u64(flag, arg, 1, 1u << 20); break;
	case O_SEQ: t->seq = opt_u64(flag, arg, 2, 1u << 24); break;
	case O_ACCUM: t->accum = opt_u64(flag, arg, 1, 1u << 20); break;
	case O_STEPS: t->steps = opt_u64(flag, arg, 1, UINT32_MAX); break;
	case O_LR: t->lr = opt_double(flag, arg, 0, 10); break;
	case O_WARMUP: t->warmup = opt_u64(flag, arg, 0, UINT32_MAX); break;
	case O_SCHED:
		t->sched = adamw_schedule_parse(arg);
		if (t->sched < 0)
			die_usage("--schedule must be cosine, linear or constant, not '%s'", arg);
		break;
	case O_MINLR: t->min_frac = opt_double(flag, arg, 0, 1); break;
	case O_WD: t->wd = opt_double(flag, arg, 0, 10); break;
	case O_CLIP: t->clip = opt_double(flag, arg, 0, 1e9); break;
	case O_SEED: t->seed = opt_u64(flag, arg, 0, UINT64_MAX); break;
	case O_EVALEVERY: t->eval_every = opt_u64(flag, arg, 0, UINT32_MAX); break;
	case O_EVALBATCHES: t->eval_batches = opt_u64(flag, arg, 0, UINT32_MAX); break;
	case O_CKPTEVERY: t->ckpt_every = opt_u64(flag, arg, 0, UINT32_MAX); break;
	case O_KEEP: t->keep = opt_u64(flag, arg, 0, 1u << 20); break;
	}
}

/* the model's shape */
static void parse_shape_opt(struct train_shape *s, int c, const char *flag, const char *arg)
{
	switch (c) {
	case O_MODEL:
		s->model = arg;
		if (gpt2_preset(arg, &(struct gpt2_config){ 0 }))
			die_usage("unknown model '%s' (one of %s)", arg, gpt2_preset_names());
		break;
	case O_VOCAB: s->vocab = opt_u64(flag, arg, 2, 1u << 30); break;
	case O_CTX: s->ctx = opt_u64(flag, arg, 1, 1u << 24); break;
	case O_LAYERS: s->layers = opt_u64(flag, arg, 1, 4096); break;
	case O_HEADS: s->heads = opt_u64(flag, arg, 1, 1u << 16); break;
	case O_WIDTH: s->width = opt_u64(flag, arg, 1, 1u << 20); break;
	case O_SCALEINV: s->scale_inv = (int)opt_u64(flag, arg, 0, 1); break;
	case O_REORDER: s->reorder = (int)opt_u64(flag, arg, 0, 1); break;
	}
}

/* the rest: paths, modes and this run's settings */
static void parse_run_opt(struct opts *o, int c, const char *flag, const char *arg)
{
	switch (c) {
	case 'o': o->rundir = arg; break;
	case O_TRAIN: o->train = arg; break;
	case O_VALID: o->valid = arg; break;
	case O_THREADS: o->threads = opt_threads(flag, arg); break;
	case O_DEVICE: o->device = arg; break;
	case O_RECOMPUTE: o->t.recompute = 1; break;
	case O_STOPAFTER: o->t.stop_after = opt_u64(flag, arg, 1, UINT32_MAX); break;
	case O_PEAK: o->t.peak_gflops = opt_double(flag, arg, 1e-3, 1e9); break;
	case O_RESUME: o->resume = 1; break;
	case O_INITHF: o->init_hf = arg; break;
	case O_EVALONLY: o->eval_only = 1; break;
	case O_EXPORTHF: o->export_hf = arg; break;
	case O_TOKENIZER: o->tokenizer = arg; break;
	case O_PRECISION:
		o->t.precision = gpt2_precision_parse(arg);
		if (o->t.precision < 0)
			die_usage("--precision must be bf16 or fp32, not '%s'", arg);
		break;
	case O_PLAN: o->plan = 1; break;
	case O_ZERO: o->t.zero = (int)opt_u64(flag, arg, 0, 1); break;
	case O_WORLD: o->world = opt_u64(flag, arg, 1, 1u << 20); break;
	case O_TIMEOUT: comm_set_timeout(opt_double(flag, arg, 1, 1e7)); break;
	case O_PROFILE: o->t.profile = 1; break;
	case 'h': usage(0); break;
	default: usage(EXIT_USAGE);
	}
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	train_opts_default(&o->t);
	o->shape = (struct train_shape)TRAIN_SHAPE_NONE;
	o->device = "cpu";
	int c;
	while ((c = getopt_long(argc, argv, "ho:", long_opts, NULL)) != -1) {
		if (c >= O_BATCH && c < O_TRAIN)
			parse_train_opt(&o->t, c, flag_of(c), optarg);
		else if (c >= O_MODEL && c <= O_REORDER)
			parse_shape_opt(&o->shape, c, flag_of(c), optarg);
		else
			parse_run_opt(o, c, flag_of(c), optarg);
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (o->plan) {
		if (o->rundir || o->train || o->valid || o->resume || o->eval_only || o->init_hf ||
		    o->export_hf)
			die_usage("--plan takes the model and batch options alone (no run, no data)");
		return;
	}
	if (!o->rundir)
		die_usage("no run directory (-o RUNDIR)");
	if (o->eval_only + !!o->export_hf + o->resume + !!o->init_hf > 1)
		die_usage("--resume, --init-hf, --eval-only and --export-hf exclude each other");
	if (o->eval_only && !o->valid)
		die_usage("--eval-only needs --valid DIR");
	if (!o->eval_only && !o->export_hf && !o->train)
		die_usage("no training data (--train DIR)");
	if (o->tokenizer && o->eval_only)
		die_usage("--tokenizer goes with training or --export-hf");
}

/* ---- the modes ---- */

/* --plan: the cuda backend's memory for the model and batch asked for, opening no device */
static void print_plan(const struct opts *o)
{
	struct gpt2_config c;
	train_shape_config(&o->shape, &c, 0, NULL);
	struct plan_opts po = { .B = o->t.batch, .T = o->t.seq ? o->t.seq : c.n_ctx,
				.precision = o->t.precision < 0 ? GPT2_BF16 : o->t.precision,
				.recompute = o->t.recompute, .world = o->world ? o->world : 1,
				.zero = o->t.zero, .accum = o->t.accum };
	if (po.T > c.n_ctx)
		die_usage("--seq %llu is longer than the model's context (%u)",
			  (unsigned long long)po.T, c.n_ctx);
	struct gpt2_plan p;
	gpt2_plan(&c, &po, &p);
	struct buf b = { 0 };
	gpt2_plan_format(&b, &c, &po, &p);
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
}

static void set_threads(int n)
{
	if (n <= 0)
		n = cpu_count();
	omp_set_num_threads(n);
	openblas_set_num_threads(1);	/* the model spreads BLAS calls over OpenMP threads */
}

static void export_hf(struct train_run *r, const struct opts *o)
{
	train_load_latest(r, &o->shape, 0, 0, "export");
	/* the tokenizer the run remembers, unless another is named */
	const char *tok = o->tokenizer ? o->tokenizer
		: gpt2_hf_has_tokenizer(o->rundir) ? o->rundir : NULL;
	if (r->comm->rank == 0 && !tok)
		warning("'%s' holds no tokenizer: '%s' gets the model alone (name one with "
			"--tokenizer)", o->rundir, o->export_hf);
	if (r->comm->rank == 0 && gpt2_hf_export(&r->cfg, r->m.params, o->export_hf, tok))
		exit(EXIT_ERR);
}

static void eval_only(struct train_run *r, const struct opts *o)
{
	double vl = train_eval_only(r, &o->shape);
	if (r->comm->rank == 0) {
		struct buf b = { 0 };
		buf_puts(&b, "{\"val_loss\":");
		json_double(&b, vl);
		buf_puts(&b, ",\"val_ppl\":");
		json_double(&b, exp(vl));
		buf_puts(&b, "}\n");
		fwrite(b.p, 1, b.len, stdout);
		buf_free(&b);
	}
}

/* TOKENIZER (checked whole, and against the model's vocabulary) written into RUNDIR as
 * cp-bpe writes one */
static int keep_tokenizer(const char *tokenizer, const char *rundir, uint32_t vocab)
{
	struct bpe tok;
	if (bpe_load(&tok, tokenizer))
		return -1;
	int r = tok.n_ids > vocab
		? error("'%s': the tokenizer has %u ids, more than the model's vocabulary of %u",
			tokenizer, tok.n_ids, vocab)
		: bpe_save(&tok, rundir);
	bpe_free(&tok);
	return r;
}

/* a fresh run, one from a Hugging Face model, or a resumed one */
static void train(struct train_run *r, const struct opts *o)
{
	train_begin(r, &o->shape, o->init_hf, o->resume);
	/* the run remembers its tokenizer: cp-complete -m RUNDIR finds it beside the model */
	if (o->tokenizer && r->comm->rank == 0 &&
	    keep_tokenizer(o->tokenizer, o->rundir, r->cfg.vocab_size))
		exit(EXIT_ERR);
	train_loop(r);
	if (getenv("CP_TRAIN_REPORT_MEM") && r->comm->rank == 0) {
		struct rusage ru;
		getrusage(RUSAGE_SELF, &ru);
		fprintf(stderr, "peak RSS %llu MB\n", (unsigned long long)ru.ru_maxrss / 1024);
	}
}

int main(int argc, char **argv)
{
	struct opts o;
	struct train_run r;
	memset(&r, 0, sizeof(r));
	cp_setprogname(argv[0]);
	r.comm = comm_init(&argc, &argv);
	parse_opts(&o, argc, argv);
	if (o.plan) {
		print_plan(&o);
		comm_finish();
		close_stdout();
		return EXIT_OK;
	}
	set_threads(o.threads);
	char *err = NULL, dev[32];
	/* under mpirun, --device cuda is each rank's own GPU among its host's */
	if (!strcmp(o.device, "cuda") && r.comm->size > 1) {
		snprintf(dev, sizeof(dev), "cuda:%d", r.comm->local_rank);
		o.device = dev;
	}
	r.be = gpt2_backend_select(o.device, &err);
	if (!r.be)
		die("%s", err);
	r.o = o.t;
	r.rundir = o.rundir;
	r.train_dir = o.train;
	r.valid_dir = o.valid;

	if (o.export_hf) {
		export_hf(&r, &o);
	} else {
		if (o.valid) {
			seqdata_open(&r.valid, o.valid);
			r.have_valid = 1;
		}
		if (o.eval_only)
			eval_only(&r, &o);
		else
			train(&r, &o);
	}
	train_finish(&r);
	comm_finish();
	close_stdout();
	return EXIT_OK;
}
