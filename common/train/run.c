/* run.c: one cp-train run (see run.h). Every rank runs the same code on its own slice of each
 * batch; the only exchanges are the sums over ranks of the comm (losses, gradients), and only
 * rank 0 writes files. */
#include "train/run.h"
#include "model/mfu.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "model/ckpt.h"
#include "model/hf.h"
#include "model/plan.h"
#include "model/prof.h"
#include "train/log.h"
#include "train/lr-schedule.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

void train_load_latest(struct train_run *r, const struct train_shape *shape, int moments,
		       uint64_t data_vocab, const char *what)
{
	uint64_t step = 0;
	char *path = ckpt_latest(r->rundir, &step);
	if (!path)
		die("'%s': no checkpoint to %s", r->rundir, what);
	struct ckpt c;
	if (ckpt_read_header(path, &c))
		exit(EXIT_ERR);
	if (train_shape_given(shape)) {
		struct gpt2_config want;
		train_shape_config(shape, &want, data_vocab, &c.cfg);
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
	r->sr_seed = c.sr_seed;
	if (moments) {
		if (r->o.precision < 0)
			r->o.precision = (int)c.precision;
		if (train_opts_from_json(&r->o, c.opts_json))
			die("'%s': unreadable training options", path);
		if (r->o.given[TRAIN_OPT_SEED] && r->o.seed != c.seed)
			die_usage("--seed %llu differs from the checkpoint's %llu",
				  (unsigned long long)r->o.seed, (unsigned long long)c.seed);
	}
	ckpt_free(&c);
	free(path);
}

void train_new_model(struct train_run *r, const struct train_shape *shape, const char *init_hf)
{
	if (init_hf) {
		if (gpt2_hf_read_config(init_hf, &r->cfg))
			exit(EXIT_ERR);
		if (train_shape_given(shape)) {
			struct gpt2_config want;
			train_shape_config(shape, &want, r->train.vocab, &r->cfg);
			const char *d = ckpt_config_diff(&r->cfg, &want);
			if (d)
				die("'%s': model does not match the one asked for: %s", init_hf, d);
		}
		gpt2_create(&r->m, &r->cfg);
		if (gpt2_hf_load(init_hf, &r->cfg, r->m.params))
			exit(EXIT_ERR);
	} else {
		train_shape_config(shape, &r->cfg, r->train.vocab, NULL);
		gpt2_create(&r->m, &r->cfg);
		gpt2_init_weights(&r->m, r->o.seed);
	}
	r->rng = mix64(r->o.seed);
	r->sr_seed = ckpt_sr_seed(r->o.seed);
}

/* the sequence length, the batch split and the steps left, against data, model and ranks */
static void train_check(struct train_run *r)
{
	const struct seqdata *d = &r->train;
	struct train_opts *o = &r->o;
	if (d->vocab > r->cfg.vocab_size)
		die("'%s': vocabulary %llu is larger than the model's %u (use --vocab)",
		    r->train_dir, (unsigned long long)d->vocab, r->cfg.vocab_size);
	if (!o->seq) {
		o->seq = d->T < r->cfg.n_ctx ? d->T : r->cfg.n_ctx;
		if (o->seq < d->T && r->comm->rank == 0)
			warning("training on the first %llu tokens of each %llu-token sequence (the "
				"model's context)", (unsigned long long)o->seq,
				(unsigned long long)d->T);
	}
	r->T = o->seq;
	if (r->T > d->T || r->T > r->cfg.n_ctx)
		die_usage("--seq %llu is longer than the data's sequences (%llu) or the model's "
			  "context (%u)", (unsigned long long)r->T, (unsigned long long)d->T,
			  r->cfg.n_ctx);
	if (o->batch % (uint64_t)r->comm->size)
		die_usage("--batch %llu is not a multiple of the %d ranks",
			  (unsigned long long)o->batch, r->comm->size);
	r->B_local = o->batch / (uint64_t)r->comm->size;
	if (r->step >= o->steps)
		die("'%s': the checkpoint is at step %llu, not before --steps %llu", r->rundir,
		    (unsigned long long)r->step, (unsigned long long)o->steps);
}

static void train_open_log(struct train_run *r, int resume)
{
	if (r->comm->rank != 0)
		return;
	if (io_mkdirs(r->rundir))
		exit(EXIT_ERR);
	char *lp = xasprintf("%s/log.jsonl", r->rundir);
	if (resume && train_log_truncate(r->rundir, r->step))
		exit(EXIT_ERR);
	r->log = fopen(lp, resume ? "a" : "w");
	if (!r->log)
		die_errno("cannot open '%s'", lp);
	free(lp);
}

void train_setup(struct train_run *r, int resume)
{
	if (r->o.precision < 0)
		r->o.precision = gpt2_precision_default(r->be->name);
	const char *why = gpt2_precision_check(r->be->name, r->o.precision);
	if (why)
		die_usage("precision %s: %s", gpt2_precision_name(r->o.precision), why);
	train_check(r);
	train_open_log(r, resume);
	if (r->be->set_precision)
		r->be->set_precision(&r->m, r->o.precision, r->sr_seed, r->step);
	/* a device backend's own collectives: for a job of several ranks, or ZeRO on any */
	if (r->be->set_dist && (r->o.zero || r->comm->size > 1)) {
		struct gpt2_dist d = { .zero = r->o.zero, .overlap = -1, .accum = r->o.accum };
		r->be->set_dist(&r->m, r->comm, &d);
	}
	r->be->setup(&r->m, (int)r->B_local, (int)r->T, r->o.recompute);
	r->be->from_host(&r->m);
	r->tokens = xcalloc(r->B_local * r->T, sizeof(uint32_t));
	if (r->o.zero)
		zero_init(&r->zero, r->be, &r->m, r->comm);
}

void train_begin(struct train_run *r, const struct train_shape *shape, const char *init_hf,
		 int resume)
{
	seqdata_open(&r->train, r->train_dir);
	if (r->have_valid && (r->valid.vocab != r->train.vocab || r->valid.T != r->train.T))
		die("'%s' and '%s' differ in vocabulary or sequence length", r->train_dir,
		    r->valid_dir);
	uint64_t have_step = 0;
	char *existing = ckpt_latest(r->rundir, &have_step);
	if (resume) {
		if (!existing)
			die("'%s': no checkpoint to resume", r->rundir);
		train_load_latest(r, shape, 1, r->train.vocab, "resume");
	} else {
		if (existing)
			die("'%s' already holds checkpoints (up to step %llu); use --resume or "
			    "another directory", r->rundir, (unsigned long long)have_step);
		train_new_model(r, shape, init_hf);
	}
	free(existing);
	train_setup(r, resume);
}

double train_eval_only(struct train_run *r, const struct train_shape *shape)
{
	const struct seqdata *d = &r->valid;
	train_load_latest(r, shape, 0, d->vocab, "evaluate");
	r->T = r->o.given[TRAIN_OPT_SEQ] ? r->o.seq : d->T;
	if (d->vocab > r->cfg.vocab_size)
		die("'%s': vocabulary %llu is larger than the model's %u", r->valid_dir,
		    (unsigned long long)d->vocab, r->cfg.vocab_size);
	if (r->T > d->T || r->T > r->cfg.n_ctx)
		die_usage("--seq %llu is longer than the data (%llu) or the model (%u)",
			  (unsigned long long)r->T, (unsigned long long)d->T, r->cfg.n_ctx);
	/* every rank takes as many sequences: the batch rounds up to a multiple of the ranks */
	uint64_t size = (uint64_t)r->comm->size;
	r->B_local = (r->o.batch + size - 1) / size;
	r->o.batch = r->B_local * size;
	if (r->be->set_precision)
		r->be->set_precision(&r->m, r->o.precision < 0 ? gpt2_precision_default(r->be->name)
				     : r->o.precision, r->sr_seed, r->step);
	r->be->setup(&r->m, (int)r->B_local, (int)r->T, 0);
	r->be->from_host(&r->m);
	r->tokens = xcalloc(r->B_local * r->T, sizeof(uint32_t));
	return train_evaluate(r, r->o.given[TRAIN_OPT_EVAL_BATCHES] ? r->o.eval_batches : 0);
}

double train_evaluate(struct train_run *r, uint64_t max_batches)
{
	uint64_t n = r->valid.total, B = r->o.batch;
	if (max_batches && max_batches * B < n)
		n = max_batches * B;
	double acc[2] = { 0, 0 };	/* sum of per-sequence mean losses, count */
	for (uint64_t base = 0; base < n; base += B) {
		uint64_t k = seqdata_batch(&r->valid, base, B, n, r->comm->rank, r->B_local,
					   r->tokens, r->T);
		if (!k)
			continue;
		float l = r->be->forward(&r->m, r->tokens, (int)k, (int)r->T);
		acc[0] += (double)l * (double)k;
		acc[1] += (double)k;
	}
	r->comm->allreduce_host(acc, 2, 1);
	return acc[1] ? acc[0] / acc[1] : NAN;
}

/* The backend call started at T0 (the op counters then at OPS0) timed whole as OP, when the
 * backend timed no op of its own inside it (the CPU model times its ops, a GPU's does not). */
static void train_prof_whole(int op, double t0, double ops0)
{
	if (gpt2_prof.on && gpt2_prof.ops_total == ops0)
		gpt2_prof_stop(op, t0);
}

/* Micro-batch A's backward pass. On a host-memory backend every micro-batch after the first
 * gets its own zeroed gradients, added to the sum so far afterwards: the sum is then
 * ((g0 + g1) + g2) + ..., what the ranks' rank-order reduction gives, so A micro-batches on
 * one process and A ranks of one give the same bytes (a backward pass that accumulated in
 * place would round differently). */
static void train_backward(struct train_run *r, uint64_t a, float scale)
{
	if (a == 0 || !r->be->host_memory) {
		double t0 = gpt2_prof_start(), ops0 = gpt2_prof.ops_total;
		r->be->backward(&r->m, scale);
		train_prof_whole(GPT2_PROF_BACKWARD, t0, ops0);
		return;
	}
	uint64_t n = r->m.lay.total;
	if (!r->gscratch)
		r->gscratch = xmalloc(n * sizeof(float));
	float *sum = r->m.grads;
	r->m.grads = r->gscratch;
	GPT2_PROF(GPT2_PROF_ZERO_GRAD, r->be->zero_grad(&r->m));
	r->be->backward(&r->m, scale);
	r->m.grads = sum;
	double t0 = gpt2_prof_start();
	#pragma omp parallel for schedule(static)
	for (uint64_t i = 0; i < n; i++)
		sum[i] = sum[i] + r->gscratch[i];
	gpt2_prof_stop(GPT2_PROF_ACCUM, t0);
}

float train_step(struct train_run *r, double *gnorm, double *lr)
{
	const struct train_opts *o = &r->o;
	const struct gpt2_comm *c = r->comm;
	uint64_t B = o->batch, A = o->accum;
	GPT2_PROF(GPT2_PROF_ZERO_GRAD, r->be->zero_grad(&r->m));
	double lsum = 0;
	for (uint64_t a = 0; a < A; a++) {
		GPT2_PROF(GPT2_PROF_DATA,
			  seqdata_batch(&r->train, r->data_pos + a * B, B, UINT64_MAX, c->rank,
					r->B_local, r->tokens, r->T));
		double t0 = gpt2_prof_start(), ops0 = gpt2_prof.ops_total;
		lsum += r->be->forward(&r->m, r->tokens, (int)r->B_local, (int)r->T);
		train_prof_whole(GPT2_PROF_FORWARD, t0, ops0);
		train_backward(r, a, 1.0f / (float)(A * (uint64_t)c->size));
	}
	double lm = lsum / (double)A;
	double t0 = gpt2_prof_start();
	c->allreduce_host(&lm, 1, 1);
	float loss = (float)(lm / c->size);
	if (o->zero) {
		/* the sharded reduction computes the norm on the way */
		*gnorm = zero_reduce_grads(&r->zero, &r->m);
		gpt2_prof_stop(GPT2_PROF_ALLREDUCE, t0);
	} else {
		r->be->allreduce_grads(&r->m, c);
		gpt2_prof_stop(GPT2_PROF_ALLREDUCE, t0);
		GPT2_PROF(GPT2_PROF_GRAD_NORM, *gnorm = r->be->grad_norm(&r->m));
	}
	*lr = adamw_lr(o->sched, r->step, o->steps, o->warmup, o->lr, o->min_frac);
	float gscale = (float)adamw_clip_scale(*gnorm, o->clip);
	t0 = gpt2_prof_start();
	if (o->zero)
		zero_adamw(&r->zero, r->be, &r->m, r->step + 1, (float)*lr, (float)o->wd, gscale);
	else
		r->be->adamw(&r->m, r->step + 1, (float)*lr, (float)o->wd, gscale);
	gpt2_prof_stop(GPT2_PROF_ADAMW, t0);
	r->step++;
	r->data_pos += A * B;
	r->rng = mix64(r->rng);
	return loss;
}

void train_checkpoint(struct train_run *r)
{
	/* ZeRO-1: the moments' shards to rank 0, which writes them whole */
	float *gm = NULL, *gv = NULL;
	if (r->o.zero)
		zero_gather_moments(&r->zero, &r->m, r->comm, &gm, &gv);
	if (r->comm->rank != 0)
		return;
	r->be->to_host(&r->m);
	struct ckpt c = { .cfg = r->cfg, .n_params = r->m.lay.total, .step = r->step,
			  .data_pos = r->data_pos, .seed = r->o.seed, .rng = r->rng,
			  .precision = (uint32_t)r->o.precision, .sr_seed = r->sr_seed };
	c.opts_json = train_opts_json(&r->o);
	char *path = ckpt_path(r->rundir, r->step);
	if (ckpt_write(path, &c, r->m.params, r->o.zero ? gm : r->m.mom, r->o.zero ? gv : r->m.var))
		exit(EXIT_ERR);
	free(gm);
	free(gv);
	free(path);
	free(c.opts_json);
	ckpt_prune(r->rundir, (unsigned)r->o.keep);
}

static void train_log_line(struct train_run *r, const struct buf *b)
{
	if (!r->log)
		return;
	if (fwrite(b->p, 1, b->len, r->log) != b->len || fflush(r->log))
		die_errno("cannot write '%s/log.jsonl'", r->rundir);
}

/* the step 0 line of a fresh run: the untrained model's validation loss */
static double train_first_eval(struct train_run *r, struct buf *b)
{
	double vl = train_evaluate(r, r->o.eval_batches);
	buf_reset(b);
	buf_puts(b, "{\"step\":0");
	train_log_eval(b, vl);
	buf_puts(b, "}\n");
	train_log_line(r, b);
	return vl;
}

/* rank 0's one JSON line on stdout: where the run stopped */
static void train_report(struct train_run *r, struct buf *b, float loss, double last_val)
{
	if (r->comm->rank != 0)
		return;
	buf_reset(b);
	buf_printf(b, "{\"step\":%llu,\"loss\":", (unsigned long long)r->step);
	json_double(b, loss);
	if (r->have_valid)
		train_log_eval(b, last_val);
	buf_puts(b, "}\n");
	fwrite(b->p, 1, b->len, stdout);
}

/* The peak the mfu field divides by, in FLOP/s for all ranks: --peak-gflops, else on a GPU
 * the card's dense bf16 peak (model/mfu.h; 0, unknown, when the table does not have it), else
 * 96 GFLOP/s a CPU thread. */
static double train_peak_flops(const struct train_run *r, const struct gpt2_device_info *dev)
{
	double per;
	if (r->o.peak_gflops)
		per = r->o.peak_gflops * 1e9;
	else if (dev)
		per = mfu_peak_bf16_tflops(dev->name) * 1e12;
	else
		per = 96.0e9 * omp_get_max_threads();
	return per * r->comm->size;
}

/* --profile's totals over the steps it counts */
struct train_prof {
	uint64_t steps;
	double wall, user, sys, minflt;
};

static double tv_sec(struct timeval t)
{
	return (double)t.tv_sec + (double)t.tv_usec * 1e-6;
}

/* One step of the run, timed op by op with --profile. The first step of a run that has more
 * faults the activations and moments in (and AdamW allocates them): left out. */
static float train_prof_step(struct train_run *r, struct train_prof *p, double *gnorm,
			     double *lr, int first_of_many)
{
	struct rusage a, b;
	getrusage(RUSAGE_SELF, &a);
	double t0 = mono_now();
	gpt2_prof.on = 1;
	float loss = train_step(r, gnorm, lr);
	gpt2_prof.on = 0;
	double dt = mono_now() - t0;
	getrusage(RUSAGE_SELF, &b);
	if (first_of_many) {
		memset(gpt2_prof.sec, 0, sizeof(gpt2_prof.sec));
		gpt2_prof.ops_total = 0;
		return loss;
	}
	p->steps++;
	p->wall += dt;
	p->user += tv_sec(b.ru_utime) - tv_sec(a.ru_utime);
	p->sys += tv_sec(b.ru_stime) - tv_sec(a.ru_stime);
	p->minflt += (double)(b.ru_minflt - a.ru_minflt);
	return loss;
}

/* the table of where the counted steps' time went, on stderr */
static void train_prof_report(const struct train_prof *p)
{
	if (!p->steps)
		return;
	double n = (double)p->steps, step = p->wall / n;
	fprintf(stderr, "profile: %llu steps, %.6f s a step (wall), %.3f s CPU user, %.3f s "
		"system, %.0f minor page faults\n", (unsigned long long)p->steps, step, p->user / n,
		p->sys / n, p->minflt / n);
	fprintf(stderr, "%-24s %10s %7s\n", "op", "ms/step", "%step");
	for (int op = 0; op < GPT2_PROF_N; op++)
		if (gpt2_prof.sec[op] > 0)
			fprintf(stderr, "%-24s %10.3f %7.2f\n", gpt2_prof_name(op),
				1e3 * gpt2_prof.sec[op] / n, 100 * gpt2_prof.sec[op] / p->wall);
	double rest = p->wall - gpt2_prof.ops_total;
	fprintf(stderr, "%-24s %10.3f %7.2f\n", "untimed", 1e3 * rest / n, 100 * rest / p->wall);
}

void train_loop(struct train_run *r)
{
	const struct train_opts *o = &r->o;
	uint64_t tokens_per_step = o->accum * o->batch * r->T;
	double flops_tok = gpt2_flops_per_token(&r->cfg, (int)r->T);
	struct gpt2_device_info dev;
	int on_dev = r->be->info && !r->be->info(&r->m, &dev);
	double peak = train_peak_flops(r, on_dev ? &dev : NULL);
	int tty = is_tty(2) && r->comm->rank == 0;
	uint64_t stop = o->stop_after ? r->step + o->stop_after : o->steps;
	if (stop > o->steps)
		stop = o->steps;
	struct buf b = { 0 };
	double last_val = NAN, gnorm = 0, lr = 0;
	if (r->step == 0 && r->have_valid && o->eval_every)
		last_val = train_first_eval(r, &b);
	float loss = NAN;
	struct train_prof prof = { 0 };
	uint64_t first = r->step;
	while (r->step < stop) {
		double t0 = mono_now();
		loss = o->profile ? train_prof_step(r, &prof, &gnorm, &lr,
						    r->step == first && stop - first > 1)
				  : train_step(r, &gnorm, &lr);
		double dt = mono_now() - t0, tps = (double)tokens_per_step / dt;
		buf_reset(&b);
		train_log_step(&b, r->step, loss, lr, gnorm, tps, peak > 0 ? tps * flops_tok / peak : -1);
		if (on_dev && !r->be->info(&r->m, &dev))
			buf_printf(&b, ",\"gpu_mem_mb\":%.1f", (double)dev.mem_peak / (1 << 20));
		if (r->have_valid && ((o->eval_every && r->step % o->eval_every == 0) ||
				      r->step == o->steps)) {
			last_val = train_evaluate(r, o->eval_batches);
			train_log_eval(&b, last_val);
		}
		buf_puts(&b, "}\n");
		train_log_line(r, &b);
		if (tty)
			fprintf(stderr, "\rstep %llu/%llu  loss %.4f  val %.4f  lr %.2e  %.0f tok/s   ",
				(unsigned long long)r->step, (unsigned long long)o->steps, loss,
				last_val, lr, tps);
		if (r->step == stop || (o->ckpt_every && r->step % o->ckpt_every == 0))
			train_checkpoint(r);
	}
	if (tty)
		fputc('\n', stderr);
	if (r->comm->rank == 0)
		train_prof_report(&prof);
	train_report(r, &b, loss, last_val);
	buf_free(&b);
}

void train_finish(struct train_run *r)
{
	if (r->log && fclose(r->log))
		die_errno("cannot write '%s/log.jsonl'", r->rundir);
	r->log = NULL;
	free(r->tokens);
	r->tokens = NULL;
	if (r->be && r->be->release)
		r->be->release(&r->m);
	zero_free(&r->zero);
	free(r->gscratch);
	r->gscratch = NULL;
	gpt2_free(&r->m);
	if (r->have_valid)
		seqdata_close(&r->valid);
	if (r->train.n)
		seqdata_close(&r->train);
	r->have_valid = 0;
}
