/* cp-train: train a GPT-2 model on packed sequence shards (cp-pack). AdamW with warmup and a
 * decay schedule, gradient accumulation and clipping, periodic evaluation, atomic versioned
 * checkpoints with bit-exact resume, Hugging Face export and import, and data parallelism
 * under mpirun (gradients averaged by one collective call, comm_allreduce).
 *
 * The model runs through a struct gpt2_backend (the CPU one here); a GPU backend slots in
 * behind the same calls, and comm_allreduce is the one place NCCL would replace MPI. */
#include "base/atomic.h"
#include "train/lr-schedule.h"
#include "base/buf.h"
#include "model/ckpt.h"
#include "base/die.h"
#include "model/backend.h"
#include "model/gpt2.h"
#include "model/hf.h"
#include "base/io.h"
#include "base/json.h"
#include "base/cli.h"
#include "shard/seqrec.h"
#include "shard/shard.h"
#include "base/xalloc.h"
#include "base/util.h"

#include <cblas.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifdef CP_HAVE_MPI
#include <mpi.h>
#endif

static const char usage_text[] =
	"usage: cp-train -o RUNDIR --train DIR [--valid DIR] [--model PRESET] [shape flags]\n"
	"                [--batch B] [--seq T] [--accum N] [--steps N] [--lr X] [--warmup N]\n"
	"                [--schedule cosine|linear|constant] [--seed S] [--eval-every N]\n"
	"                [--ckpt-every N] [--keep K] [--threads N] [--resume] [--init-hf DIR]\n"
	"       cp-train -o RUNDIR --valid DIR --eval-only\n"
	"       cp-train -o RUNDIR --export-hf DIR [--tokenizer PATH]\n"
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
	"  --recompute          recompute activations in backward (less memory)\n"
	"  --stop-after N       stop after N steps in this run (checkpoint, then exit)\n"
	"  --peak-gflops X      peak GFLOP/s per process for the mfu field\n"
	"  --resume             continue from RUNDIR's latest checkpoint\n"
	"  --init-hf DIR        start from a Hugging Face GPT-2 (config.json, model.safetensors)\n"
	"  --eval-only          evaluate the latest checkpoint on --valid; print one JSON line\n"
	"  --export-hf DIR      write the latest checkpoint in Hugging Face format\n"
	"  --tokenizer PATH     tokenizer.json or its directory, copied by --export-hf\n"
	"  -h                   show this help\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

/* ---- one collective: sum over ranks ---- */

static int comm_rank, comm_size = 1, comm_live;

static void comm_abort_on_exit(int status, void *arg)
{
	(void)arg;
#ifdef CP_HAVE_MPI
	/* a rank that dies must not leave the others waiting in a collective */
	if (comm_live)
		MPI_Abort(MPI_COMM_WORLD, status ? status : 1);
#else
	(void)status;
#endif
}

static void comm_init(int *argc, char ***argv)
{
#ifdef CP_HAVE_MPI
	/* only under a launcher: a plain run needs no MPI runtime at all */
	if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_SIZE")) {
		if (MPI_Init(argc, argv) != MPI_SUCCESS)
			die("MPI_Init failed");
		MPI_Comm_rank(MPI_COMM_WORLD, &comm_rank);
		MPI_Comm_size(MPI_COMM_WORLD, &comm_size);
		comm_live = 1;
		on_exit(comm_abort_on_exit, NULL);
	}
#else
	(void)argc;
	(void)argv;
#endif
}

static void comm_finish(void)
{
#ifdef CP_HAVE_MPI
	if (comm_live) {
		comm_live = 0;
		MPI_Finalize();
	}
#endif
}

/* Sum N floats (or doubles, DBL) over all ranks, in place. The GPU backend's NCCL
 * ncclAllReduce goes here. */
static void comm_allreduce(void *p, uint64_t n, int dbl)
{
#ifdef CP_HAVE_MPI
	if (comm_size > 1) {
		size_t es = dbl ? sizeof(double) : sizeof(float);
		for (uint64_t i = 0; i < n; i += 1u << 30) {
			int k = (int)(n - i < (1u << 30) ? n - i : (1u << 30));
			if (MPI_Allreduce(MPI_IN_PLACE, (char *)p + i * es, k,
					  dbl ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM,
					  MPI_COMM_WORLD) != MPI_SUCCESS)
				die("MPI_Allreduce failed");
		}
	}
#else
	(void)p;
	(void)n;
	(void)dbl;
#endif
}

/* ---- sequence data: random access by global index over a directory of shards ---- */

struct seqdata {
	char **paths;
	size_t n;
	uint64_t *first;	/* global index of each shard's record 0; first[n] = total */
	uint64_t total, vocab, T;
	struct shard_reader *cur;
	size_t cur_shard;
	uint64_t next;		/* local index shard_next would return */
	unsigned char *tmp;
	uint32_t *ids;
};

static void seqdata_open(struct seqdata *d, const char *dir)
{
	memset(d, 0, sizeof(*d));
	char *in[1] = { (char *)dir };
	d->n = shard_list(in, 1, &d->paths);
	if (!d->n)
		die("'%s': no sequence shards", dir);
	d->first = xcalloc(d->n + 1, sizeof(uint64_t));
	for (size_t i = 0; i < d->n; i++) {
		struct shard_reader *r = shard_open(d->paths[i], SHARD_SEQS);
		if (!r)
			exit(EXIT_ERR);
		const struct shard_info *s = shard_get_info(r);
		if (s->n_records == UINT64_MAX)
			die("'%s': sequence shards must be regular files", d->paths[i]);
		if (i && (s->param[0] != d->vocab || s->param[1] != d->T))
			die("'%s': vocabulary %llu and length %llu differ from '%s'", d->paths[i],
			    (unsigned long long)s->param[0], (unsigned long long)s->param[1],
			    d->paths[0]);
		d->vocab = s->param[0];
		d->T = s->param[1];
		d->first[i] = d->total;
		d->total += s->n_records;
		shard_close_reader(r);
	}
	d->first[d->n] = d->total;
	if (!d->total)
		die("'%s': the sequence shards hold no sequence", dir);
	if (d->T < 2 || d->vocab < 2)
		die("'%s': bad sequence shard parameters", d->paths[0]);
	d->ids = xcalloc(d->T, sizeof(uint32_t));
}

/* Sequence GLOBAL (mod total), its first T ids into OUT. */
static void seqdata_get(struct seqdata *d, uint64_t global, uint32_t *out, uint64_t T)
{
	global %= d->total;
	size_t lo = 0, hi = d->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (d->first[mid] <= global)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t local = global - d->first[lo];
	if (!d->cur || d->cur_shard != lo) {
		if (d->cur)
			shard_close_reader(d->cur);
		d->cur = shard_open(d->paths[lo], SHARD_SEQS);
		if (!d->cur)
			exit(EXIT_ERR);
		d->cur_shard = lo;
		d->next = 0;
	}
	if (d->next != local) {
		if (shard_seek(d->cur, local))
			exit(EXIT_ERR);
		d->next = local;
	}
	const void *rec;
	size_t len;
	int r = shard_next(d->cur, &rec, &len);
	if (r != 1)
		die("'%s': record %llu: %s", d->paths[lo], (unsigned long long)local,
		    r ? "unreadable" : "missing");
	if (seqrec_decode(rec, len, d->vocab, d->T, d->ids))
		die("'%s': record %llu is not a sequence of %llu ids below %llu", d->paths[lo],
		    (unsigned long long)local, (unsigned long long)d->T,
		    (unsigned long long)d->vocab);
	d->next++;
	memcpy(out, d->ids, T * sizeof(uint32_t));
}

static void seqdata_close(struct seqdata *d)
{
	if (d->cur)
		shard_close_reader(d->cur);
	shard_list_free(d->paths, d->n);
	free(d->first);
	free(d->ids);
	memset(d, 0, sizeof(*d));
}

/* ---- options ---- */

enum {
	O_TRAIN = 256, O_VALID, O_MODEL, O_VOCAB, O_CTX, O_LAYERS, O_HEADS, O_WIDTH, O_SCALEINV,
	O_REORDER, O_BATCH, O_SEQ, O_ACCUM, O_STEPS, O_LR, O_WARMUP, O_SCHED, O_MINLR, O_WD,
	O_CLIP, O_SEED, O_EVALEVERY, O_EVALBATCHES, O_CKPTEVERY, O_KEEP, O_THREADS, O_RECOMPUTE,
	O_STOPAFTER, O_PEAK, O_RESUME, O_INITHF, O_EVALONLY, O_EXPORTHF, O_TOKENIZER, O_LAST
};

struct opts {
	const char *rundir, *train, *valid, *model, *init_hf, *export_hf, *tokenizer;
	uint64_t vocab, ctx, layers, heads, width;
	int scale_inv, reorder;
	uint64_t batch, seq, accum, steps, warmup, seed, eval_every, eval_batches, ckpt_every;
	uint64_t keep, stop_after;
	double lr, min_frac, wd, clip, peak_gflops;
	int sched, threads, recompute, resume, eval_only;
	char given[O_LAST];
};

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
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
		{ "recompute", no_argument, NULL, O_RECOMPUTE },
		{ "stop-after", required_argument, NULL, O_STOPAFTER },
		{ "peak-gflops", required_argument, NULL, O_PEAK },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "init-hf", required_argument, NULL, O_INITHF },
		{ "eval-only", no_argument, NULL, O_EVALONLY },
		{ "export-hf", required_argument, NULL, O_EXPORTHF },
		{ "tokenizer", required_argument, NULL, O_TOKENIZER },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	memset(o, 0, sizeof(*o));
	o->model = "codeparrot-small";
	o->batch = 8;
	o->accum = 1;
	o->steps = 1000;
	o->lr = 5e-4;
	o->warmup = 100;
	o->sched = ADAMW_COSINE;
	o->min_frac = 0.1;
	o->wd = 0.1;
	o->clip = 1.0;
	o->eval_every = 100;
	o->eval_batches = 20;
	o->ckpt_every = 1000;
	o->keep = 3;
	int c;
	while ((c = getopt_long(argc, argv, "ho:", lo, NULL)) != -1) {
		const char *name = "";
		for (const struct option *p = lo; p->name; p++)
			if (p->val == c)
				name = p->name;
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s", name);
		if (c >= O_TRAIN && c < O_LAST)
			o->given[c] = 1;
		switch (c) {
		case 'o': o->rundir = optarg; break;
		case O_TRAIN: o->train = optarg; break;
		case O_VALID: o->valid = optarg; break;
		case O_MODEL:
			o->model = optarg;
			if (gpt2_preset(optarg, &(struct gpt2_config){ 0 }))
				die_usage("unknown model '%s' (one of %s)", optarg, gpt2_preset_names());
			break;
		case O_VOCAB: o->vocab = opt_u64(flag, optarg, 2, 1u << 30); break;
		case O_CTX: o->ctx = opt_u64(flag, optarg, 1, 1u << 24); break;
		case O_LAYERS: o->layers = opt_u64(flag, optarg, 1, 4096); break;
		case O_HEADS: o->heads = opt_u64(flag, optarg, 1, 1u << 16); break;
		case O_WIDTH: o->width = opt_u64(flag, optarg, 1, 1u << 20); break;
		case O_SCALEINV: o->scale_inv = (int)opt_u64(flag, optarg, 0, 1); break;
		case O_REORDER: o->reorder = (int)opt_u64(flag, optarg, 0, 1); break;
		case O_BATCH: o->batch = opt_u64(flag, optarg, 1, 1u << 20); break;
		case O_SEQ: o->seq = opt_u64(flag, optarg, 2, 1u << 24); break;
		case O_ACCUM: o->accum = opt_u64(flag, optarg, 1, 1u << 20); break;
		case O_STEPS: o->steps = opt_u64(flag, optarg, 1, UINT32_MAX); break;
		case O_LR: o->lr = opt_double(flag, optarg, 0, 10); break;
		case O_WARMUP: o->warmup = opt_u64(flag, optarg, 0, UINT32_MAX); break;
		case O_SCHED:
			o->sched = adamw_schedule_parse(optarg);
			if (o->sched < 0)
				die_usage("--schedule must be cosine, linear or constant, not '%s'",
					  optarg);
			break;
		case O_MINLR: o->min_frac = opt_double(flag, optarg, 0, 1); break;
		case O_WD: o->wd = opt_double(flag, optarg, 0, 10); break;
		case O_CLIP: o->clip = opt_double(flag, optarg, 0, 1e9); break;
		case O_SEED: o->seed = opt_u64(flag, optarg, 0, UINT64_MAX); break;
		case O_EVALEVERY: o->eval_every = opt_u64(flag, optarg, 0, UINT32_MAX); break;
		case O_EVALBATCHES: o->eval_batches = opt_u64(flag, optarg, 0, UINT32_MAX); break;
		case O_CKPTEVERY: o->ckpt_every = opt_u64(flag, optarg, 0, UINT32_MAX); break;
		case O_KEEP: o->keep = opt_u64(flag, optarg, 0, 1u << 20); break;
		case O_THREADS: o->threads = opt_threads(flag, optarg); break;
		case O_RECOMPUTE: o->recompute = 1; break;
		case O_STOPAFTER: o->stop_after = opt_u64(flag, optarg, 1, UINT32_MAX); break;
		case O_PEAK: o->peak_gflops = opt_double(flag, optarg, 1e-3, 1e9); break;
		case O_RESUME: o->resume = 1; break;
		case O_INITHF: o->init_hf = optarg; break;
		case O_EVALONLY: o->eval_only = 1; break;
		case O_EXPORTHF: o->export_hf = optarg; break;
		case O_TOKENIZER: o->tokenizer = optarg; break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!o->rundir)
		die_usage("no run directory (-o RUNDIR)");
	if (o->eval_only + !!o->export_hf + o->resume + !!o->init_hf > 1)
		die_usage("--resume, --init-hf, --eval-only and --export-hf exclude each other");
	if (o->eval_only && !o->valid)
		die_usage("--eval-only needs --valid DIR");
	if (!o->eval_only && !o->export_hf && !o->train)
		die_usage("no training data (--train DIR)");
	if (o->tokenizer && !o->export_hf)
		die_usage("--tokenizer goes with --export-hf");
}

/* The model asked for: BASE (a checkpoint's or a Hugging Face model's shape; NULL for a
 * new model, then the default preset), replaced by --model when given, then the shape flags.
 * DATA_VOCAB fills tiny's vocabulary. */
static void opts_config(const struct opts *o, struct gpt2_config *c, uint64_t data_vocab,
			const struct gpt2_config *base)
{
	if (base && !o->given[O_MODEL]) {
		*c = *base;
	} else {
		gpt2_preset(o->model, c);
		if (!strcmp(o->model, "tiny") && (data_vocab || base))
			c->vocab_size = base ? base->vocab_size : (uint32_t)data_vocab;
	}
	if (o->given[O_VOCAB]) c->vocab_size = (uint32_t)o->vocab;
	if (o->given[O_CTX]) c->n_ctx = (uint32_t)o->ctx;
	if (o->given[O_LAYERS]) c->n_layer = (uint32_t)o->layers;
	if (o->given[O_HEADS]) c->n_head = (uint32_t)o->heads;
	if (o->given[O_WIDTH]) c->n_embd = (uint32_t)o->width;
	if (o->given[O_SCALEINV]) c->scale_attn_by_inverse_layer_idx = o->scale_inv;
	if (o->given[O_REORDER]) c->reorder_and_upcast_attn = o->reorder;
	const char *why = gpt2_config_check(c);
	if (why)
		die_usage("bad model shape: %s", why);
}

static int shape_given(const struct opts *o)
{
	return o->given[O_MODEL] || o->given[O_VOCAB] || o->given[O_CTX] || o->given[O_LAYERS] ||
	       o->given[O_HEADS] || o->given[O_WIDTH] || o->given[O_SCALEINV] ||
	       o->given[O_REORDER];
}

/* the training options that a resume must continue with, as JSON */
static char *opts_json(const struct opts *o)
{
	struct buf b = { 0 };
	buf_printf(&b, "{\"batch\":%llu,\"seq\":%llu,\"accum\":%llu,\"steps\":%llu,\"warmup\":%llu,"
		       "\"schedule\":\"%s\",\"seed\":%llu,\"lr\":",
		   (unsigned long long)o->batch, (unsigned long long)o->seq,
		   (unsigned long long)o->accum, (unsigned long long)o->steps,
		   (unsigned long long)o->warmup, adamw_schedule_name(o->sched),
		   (unsigned long long)o->seed);
	json_double(&b, o->lr);
	buf_puts(&b, ",\"min_lr_frac\":");
	json_double(&b, o->min_frac);
	buf_puts(&b, ",\"wd\":");
	json_double(&b, o->wd);
	buf_puts(&b, ",\"clip\":");
	json_double(&b, o->clip);
	buf_printf(&b, ",\"eval_every\":%llu,\"eval_batches\":%llu,\"ckpt_every\":%llu,\"keep\":%llu}",
		   (unsigned long long)o->eval_every, (unsigned long long)o->eval_batches,
		   (unsigned long long)o->ckpt_every, (unsigned long long)o->keep);
	buf_putc(&b, 0);
	return (char *)b.p;
}

/* On resume, options not on the command line come from the checkpoint. */
static void opts_from_ckpt(struct opts *o, const char *json, const char *path)
{
	json_t *r = json_loads(json, 0, NULL);
	if (!r)
		die("'%s': unreadable training options", path);
#define U(key, field, id) if (!o->given[id] && json_is_integer(json_object_get(r, key))) \
		o->field = (uint64_t)json_integer_value(json_object_get(r, key))
#define D(key, field, id) if (!o->given[id] && json_is_number(json_object_get(r, key))) \
		o->field = json_number_value(json_object_get(r, key))
	U("batch", batch, O_BATCH);
	U("seq", seq, O_SEQ);
	U("accum", accum, O_ACCUM);
	U("steps", steps, O_STEPS);
	U("warmup", warmup, O_WARMUP);
	U("seed", seed, O_SEED);
	U("eval_every", eval_every, O_EVALEVERY);
	U("eval_batches", eval_batches, O_EVALBATCHES);
	U("ckpt_every", ckpt_every, O_CKPTEVERY);
	U("keep", keep, O_KEEP);
	D("lr", lr, O_LR);
	D("min_lr_frac", min_frac, O_MINLR);
	D("wd", wd, O_WD);
	D("clip", clip, O_CLIP);
#undef U
#undef D
	const char *s = json_string_value(json_object_get(r, "schedule"));
	if (!o->given[O_SCHED] && s && adamw_schedule_parse(s) >= 0)
		o->sched = adamw_schedule_parse(s);
	json_decref(r);
}

/* ---- the run ---- */

struct run {
	struct opts o;
	struct gpt2_config cfg;
	struct gpt2_model m;
	const struct gpt2_backend *be;
	struct seqdata train, valid;
	int have_valid;
	uint64_t T, B_local, step, data_pos, rng;
	uint32_t *tokens;
	FILE *log;
};

/* Mean loss over the validation sequences (the first eval_batches * batch of them, or all),
 * split over ranks. */
static double evaluate(struct run *r, uint64_t max_batches)
{
	uint64_t n = r->valid.total, B = r->o.batch;
	if (max_batches && max_batches * B < n)
		n = max_batches * B;
	double acc[2] = { 0, 0 };	/* sum of per-sequence mean losses, count */
	for (uint64_t base = 0; base < n; base += B) {
		uint64_t lo = base + (uint64_t)comm_rank * r->B_local, k = 0;
		for (; k < r->B_local && lo + k < n && lo + k < base + B; k++)
			seqdata_get(&r->valid, lo + k, r->tokens + k * r->T, r->T);
		if (!k)
			continue;
		float l = r->be->forward(&r->m, r->tokens, (int)k, (int)r->T);
		acc[0] += (double)l * (double)k;
		acc[1] += (double)k;
	}
	comm_allreduce(acc, 2, 1);
	return acc[1] ? acc[0] / acc[1] : NAN;
}

static void write_checkpoint(struct run *r)
{
	if (comm_rank != 0)
		return;
	r->be->to_host(&r->m);
	struct ckpt c = { .cfg = r->cfg, .n_params = r->m.lay.total, .step = r->step,
			  .data_pos = r->data_pos, .seed = r->o.seed, .rng = r->rng };
	c.opts_json = opts_json(&r->o);
	char *path = ckpt_path(r->o.rundir, r->step);
	if (ckpt_write(path, &c, r->m.params, r->m.mom, r->m.var))
		exit(EXIT_ERR);
	free(path);
	free(c.opts_json);
	ckpt_prune(r->o.rundir, (unsigned)r->o.keep);
}

/* Keep the log lines of steps up to STEP: what a resumed run did not redo. */
static void log_truncate(const char *rundir, uint64_t step)
{
	char *path = xasprintf("%s/log.jsonl", rundir);
	size_t len;
	if (access(path, F_OK)) {
		free(path);
		return;
	}
	char *p = read_file(path, &len);
	if (!p)
		exit(EXIT_ERR);
	struct buf keep = { 0 };
	for (char *s = p; s < p + len;) {
		char *e = memchr(s, '\n', (size_t)(p + len - s));
		size_t n = e ? (size_t)(e - s + 1) : (size_t)(p + len - s);
		unsigned long long st;
		if (sscanf(s, "{\"step\":%llu", &st) == 1 && st <= step)
			buf_put(&keep, s, n);
		s += n;
	}
	if (atomic_write_file(path, keep.p ? (void *)keep.p : (void *)"", keep.len))
		exit(EXIT_ERR);
	buf_free(&keep);
	free(p);
	free(path);
}

static void log_line(struct run *r, const struct buf *b)
{
	if (!r->log)
		return;
	if (fwrite(b->p, 1, b->len, r->log) != b->len || fflush(r->log))
		die_errno("cannot write '%s/log.jsonl'", r->o.rundir);
}

static void log_eval(struct buf *b, double vl)
{
	buf_puts(b, ",\"val_loss\":");
	json_double(b, vl);
	buf_puts(b, ",\"val_ppl\":");
	json_double(b, exp(vl));
}

static void train(struct run *r)
{
	const struct opts *o = &r->o;
	uint64_t B = o->batch, T = r->T, A = o->accum;
	double flops_tok = gpt2_flops_per_token(&r->cfg, (int)T);
	double peak = (o->peak_gflops ? o->peak_gflops : 96.0 * omp_get_max_threads()) * 1e9 *
		      comm_size;
	int tty = is_tty(2) && comm_rank == 0;
	uint64_t stop = o->stop_after ? r->step + o->stop_after : o->steps;
	if (stop > o->steps)
		stop = o->steps;
	struct buf b = { 0 };
	double last_val = NAN;
	if (r->step == 0 && r->have_valid && o->eval_every) {
		last_val = evaluate(r, o->eval_batches);
		buf_reset(&b);
		buf_puts(&b, "{\"step\":0");
		log_eval(&b, last_val);
		buf_puts(&b, "}\n");
		log_line(r, &b);
	}
	float loss = NAN;
	double gnorm = 0;
	while (r->step < stop) {
		double t0 = mono_now();
		r->be->zero_grad(&r->m);
		double lsum = 0;
		for (uint64_t a = 0; a < A; a++) {
			uint64_t base = r->data_pos + a * B + (uint64_t)comm_rank * r->B_local;
			for (uint64_t k = 0; k < r->B_local; k++)
				seqdata_get(&r->train, base + k, r->tokens + k * T, T);
			lsum += r->be->forward(&r->m, r->tokens, (int)r->B_local, (int)T);
			r->be->backward(&r->m, 1.0f / (float)(A * (uint64_t)comm_size));
		}
		double lm = lsum / (double)A;
		comm_allreduce(&lm, 1, 1);
		loss = (float)(lm / comm_size);
		{
			struct gpt2_comm c = { comm_rank, comm_size, comm_allreduce };
			r->be->allreduce_grads(&r->m, &c);
		}
		gnorm = r->be->grad_norm(&r->m);
		double lr = adamw_lr(o->sched, r->step, o->steps, o->warmup, o->lr, o->min_frac);
		r->be->adamw(&r->m, r->step + 1, (float)lr, (float)o->wd,
			     (float)adamw_clip_scale(gnorm, o->clip));
		r->step++;
		r->data_pos += A * B;
		r->rng = mix64(r->rng);
		double dt = mono_now() - t0, tps = (double)(A * B * T) / dt;
		buf_reset(&b);
		buf_printf(&b, "{\"step\":%llu,\"loss\":", (unsigned long long)r->step);
		json_double(&b, loss);
		buf_puts(&b, ",\"lr\":");
		json_double(&b, lr);
		buf_puts(&b, ",\"grad_norm\":");
		json_double(&b, gnorm);
		buf_printf(&b, ",\"tokens_per_s\":%.1f,\"mfu\":%.4f", tps, tps * flops_tok / peak);
		int last = r->step == stop;
		if (r->have_valid && ((o->eval_every && r->step % o->eval_every == 0) ||
				      r->step == o->steps)) {
			last_val = evaluate(r, o->eval_batches);
			log_eval(&b, last_val);
		}
		buf_puts(&b, "}\n");
		log_line(r, &b);
		if (tty)
			fprintf(stderr, "\rstep %llu/%llu  loss %.4f  val %.4f  lr %.2e  %.0f tok/s   ",
				(unsigned long long)r->step, (unsigned long long)o->steps, loss,
				last_val, lr, tps);
		if (last || (o->ckpt_every && r->step % o->ckpt_every == 0))
			write_checkpoint(r);
	}
	if (tty)
		fputc('\n', stderr);
	if (comm_rank == 0) {
		buf_reset(&b);
		buf_printf(&b, "{\"step\":%llu,\"loss\":", (unsigned long long)r->step);
		json_double(&b, loss);
		if (r->have_valid) {
			log_eval(&b, last_val);
		}
		buf_puts(&b, "}\n");
		fwrite(b.p, 1, b.len, stdout);
	}
	buf_free(&b);
}

static void set_threads(int n)
{
	if (n <= 0)
		n = cpu_count();
	omp_set_num_threads(n);
	openblas_set_num_threads(1);	/* the model spreads BLAS calls over OpenMP threads */
}

/* Load the latest checkpoint of RUNDIR into r->m (moments too when MOMENTS). */
static void load_latest(struct run *r, int moments, uint64_t data_vocab)
{
	uint64_t step = 0;
	char *path = ckpt_latest(r->o.rundir, &step);
	if (!path)
		die("'%s': no checkpoint to %s", r->o.rundir,
		    r->o.eval_only ? "evaluate" : r->o.export_hf ? "export" : "resume");
	struct ckpt c;
	if (ckpt_read_header(path, &c))
		exit(EXIT_ERR);
	if (shape_given(&r->o)) {
		struct gpt2_config want;
		opts_config(&r->o, &want, data_vocab, &c.cfg);
		const char *d = ckpt_config_diff(&c.cfg, &want);
		if (d)
			die("'%s': checkpoint does not match the model asked for: %s", path, d);
	}
	r->cfg = c.cfg;
	gpt2_create(&r->m, &c.cfg);
	if (moments) {
		r->m.mom = xmalloc(c.n_params * sizeof(float));
		r->m.var = xmalloc(c.n_params * sizeof(float));
	}
	if (ckpt_read_data(path, &c, r->m.params, moments ? r->m.mom : NULL,
			   moments ? r->m.var : NULL))
		exit(EXIT_ERR);
	r->step = c.step;
	r->data_pos = c.data_pos;
	r->rng = c.rng;
	if (moments) {
		opts_from_ckpt(&r->o, c.opts_json, path);
		if (r->o.given[O_SEED] && r->o.seed != c.seed)
			die_usage("--seed %llu differs from the checkpoint's %llu",
				  (unsigned long long)r->o.seed, (unsigned long long)c.seed);
	}
	ckpt_free(&c);
	free(path);
}

static uint64_t peak_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_maxrss / 1024;
}

int main(int argc, char **argv)
{
	struct run r;
	memset(&r, 0, sizeof(r));
	cp_setprogname(argv[0]);
	comm_init(&argc, &argv);
	parse_opts(&r.o, argc, argv);
	set_threads(r.o.threads);
	r.be = &gpt2_cpu_backend;

	if (r.o.export_hf) {
		load_latest(&r, 0, 0);
		if (comm_rank == 0 && gpt2_hf_export(&r.cfg, r.m.params, r.o.export_hf, r.o.tokenizer))
			exit(EXIT_ERR);
		gpt2_free(&r.m);
		comm_finish();
		close_stdout();
		return EXIT_OK;
	}

	if (r.o.valid) {
		seqdata_open(&r.valid, r.o.valid);
		r.have_valid = 1;
	}
	if (r.o.eval_only) {
		load_latest(&r, 0, r.valid.vocab);
		r.T = r.o.given[O_SEQ] ? r.o.seq : r.valid.T;
		if (r.valid.vocab > r.cfg.vocab_size)
			die("'%s': vocabulary %llu is larger than the model's %u", r.o.valid,
			    (unsigned long long)r.valid.vocab, r.cfg.vocab_size);
		if (r.T > r.valid.T || r.T > r.cfg.n_ctx)
			die_usage("--seq %llu is longer than the data (%llu) or the model (%u)",
				  (unsigned long long)r.T, (unsigned long long)r.valid.T, r.cfg.n_ctx);
		r.B_local = (r.o.batch + (uint64_t)comm_size - 1) / (uint64_t)comm_size;
		r.o.batch = r.B_local * (uint64_t)comm_size;
		r.be->setup(&r.m, (int)r.B_local, (int)r.T, 0);
		r.be->from_host(&r.m);
		r.tokens = xcalloc(r.B_local * r.T, sizeof(uint32_t));
		double vl = evaluate(&r, r.o.given[O_EVALBATCHES] ? r.o.eval_batches : 0);
		if (comm_rank == 0) {
			struct buf b = { 0 };
			buf_puts(&b, "{\"val_loss\":");
			json_double(&b, vl);
			buf_puts(&b, ",\"val_ppl\":");
			json_double(&b, exp(vl));
			buf_puts(&b, "}\n");
			fwrite(b.p, 1, b.len, stdout);
			buf_free(&b);
		}
		goto done;
	}

	seqdata_open(&r.train, r.o.train);
	if (r.have_valid && (r.valid.vocab != r.train.vocab || r.valid.T != r.train.T))
		die("'%s' and '%s' differ in vocabulary or sequence length", r.o.train, r.o.valid);
	uint64_t have_step = 0;
	char *existing = ckpt_latest(r.o.rundir, &have_step);
	if (r.o.resume) {
		if (!existing)
			die("'%s': no checkpoint to resume", r.o.rundir);
		load_latest(&r, 1, r.train.vocab);
	} else {
		if (existing)
			die("'%s' already holds checkpoints (up to step %llu); use --resume or "
			    "another directory", r.o.rundir, (unsigned long long)have_step);
		if (r.o.init_hf) {
			if (gpt2_hf_read_config(r.o.init_hf, &r.cfg))
				exit(EXIT_ERR);
			if (shape_given(&r.o)) {
				struct gpt2_config want;
				opts_config(&r.o, &want, r.train.vocab, &r.cfg);
				const char *d = ckpt_config_diff(&r.cfg, &want);
				if (d)
					die("'%s': model does not match the one asked for: %s",
					    r.o.init_hf, d);
			}
			gpt2_create(&r.m, &r.cfg);
			if (gpt2_hf_load(r.o.init_hf, &r.cfg, r.m.params))
				exit(EXIT_ERR);
		} else {
			opts_config(&r.o, &r.cfg, r.train.vocab, NULL);
			gpt2_create(&r.m, &r.cfg);
			gpt2_init_weights(&r.m, r.o.seed);
		}
		r.rng = mix64(r.o.seed);
	}
	free(existing);
	if (r.train.vocab > r.cfg.vocab_size)
		die("'%s': vocabulary %llu is larger than the model's %u (use --vocab)", r.o.train,
		    (unsigned long long)r.train.vocab, r.cfg.vocab_size);
	if (!r.o.seq) {
		r.o.seq = r.train.T < r.cfg.n_ctx ? r.train.T : r.cfg.n_ctx;
		if (r.o.seq < r.train.T && comm_rank == 0)
			warning("training on the first %llu tokens of each %llu-token sequence (the "
				"model's context)", (unsigned long long)r.o.seq,
				(unsigned long long)r.train.T);
	}
	r.T = r.o.seq;
	if (r.T > r.train.T || r.T > r.cfg.n_ctx)
		die_usage("--seq %llu is longer than the data's sequences (%llu) or the model's "
			  "context (%u)", (unsigned long long)r.T, (unsigned long long)r.train.T,
			  r.cfg.n_ctx);
	if (r.o.batch % (uint64_t)comm_size)
		die_usage("--batch %llu is not a multiple of the %d ranks",
			  (unsigned long long)r.o.batch, comm_size);
	r.B_local = r.o.batch / (uint64_t)comm_size;
	if (r.step >= r.o.steps)
		die("'%s': the checkpoint is at step %llu, not before --steps %llu", r.o.rundir,
		    (unsigned long long)r.step, (unsigned long long)r.o.steps);
	if (comm_rank == 0) {
		if (io_mkdirs(r.o.rundir))
			exit(EXIT_ERR);
		char *lp = xasprintf("%s/log.jsonl", r.o.rundir);
		if (r.o.resume)
			log_truncate(r.o.rundir, r.step);
		r.log = fopen(lp, r.o.resume ? "a" : "w");
		if (!r.log)
			die_errno("cannot open '%s'", lp);
		free(lp);
	}
	r.be->setup(&r.m, (int)r.B_local, (int)r.T, r.o.recompute);
	r.be->from_host(&r.m);
	r.tokens = xcalloc(r.B_local * r.T, sizeof(uint32_t));
	train(&r);
	if (r.log && fclose(r.log))
		die_errno("cannot write '%s/log.jsonl'", r.o.rundir);
	if (getenv("CP_TRAIN_REPORT_MEM") && comm_rank == 0)
		fprintf(stderr, "peak RSS %llu MB\n", (unsigned long long)peak_rss_mb());
done:
	free(r.tokens);
	gpt2_free(&r.m);
	if (r.have_valid)
		seqdata_close(&r.valid);
	if (r.train.n)
		seqdata_close(&r.train);
	comm_finish();
	close_stdout();
	return EXIT_OK;
}
