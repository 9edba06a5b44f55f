/* generate.c: HumanEval samples from a model (see generate.h). */
#include "eval/generate.h"
#include "eval/pystr.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/io.h"
#include "base/util.h"
#include "base/xalloc.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const gen_stops[] = { "\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif" };
const size_t gen_nstops = sizeof gen_stops / sizeof *gen_stops;

void gen_defaults(struct gen_opts *g)
{
	memset(g, 0, sizeof *g);
	g->n = 200;
	g->max_tokens = 256;
	g->temperature = 0.2;
	g->top_p = 0.95;
	g->batch = 50;
	g->device = "cpu";
	g->jobs = cpu_count();
}

/* Batch C of problem P draws from its own seed, so that no sample depends on which thread
 * generated which problem, or when. */
uint64_t gen_seed(uint64_t seed, size_t p, size_t c)
{
	return mix64(mix64(mix64(seed) ^ (uint64_t)p) ^ (uint64_t)c);
}

uint32_t gen_batch(uint32_t n, uint32_t done, uint32_t batch, int greedy, uint32_t *decode)
{
	uint32_t rest = n - done;
	*decode = greedy ? 1 : rest < batch ? rest : batch;
	return greedy ? rest : *decode;
}

uint64_t gen_lines(struct buf *lines, const struct he_problem *p, const struct complete_result *r,
		   uint32_t got, int greedy)
{
	struct buf text = { 0 };
	uint64_t tokens = 0;
	for (uint32_t i = 0; i < got; i++) {
		const struct complete_sample *s = &r->s[greedy ? 0 : i];
		pystr_decode_replace(&text, s->text.p, s->text.len);
		he_sample_line(lines, p->task_id.p, p->task_id.len, (const char *)text.p, text.len);
		if (!greedy || i == 0)
			tokens += s->n_tokens;
	}
	buf_free(&text);
	return tokens;
}

struct gen_problem {
	uint32_t *ids;		/* "<|endoftext|>" + the prompt stripped, encoded */
	size_t n_ids;
	size_t jobs_left;	/* its seed batches not yet written */
};

/* One seed batch of a problem: what complete_generate_ids made of it before, now one job of
 * the shared batch; its lines kept until the file is written in (problem, batch) order. */
struct gen_job {
	size_t p;
	uint32_t got;		/* sample lines it gives */
	int open, done;
	struct complete_params cp;
	struct complete_result res;
	struct complete_job cj;
	struct buf lines;
};

/* Encode every prompt before any generation, so that one the model cannot take is reported
 * at once rather than hours into a run. */
static void gen_encode(const struct complete_model *cm, const struct gen_opts *o,
		       const struct he_problems *ps, struct gen_problem *g, size_t np)
{
	if (cm->tok.eot == BPE_NONE)
		die("'%s': the tokenizer has no <|endoftext|> token, which starts every prompt",
		    o->tokenizer ? o->tokenizer : o->model);
	struct bpe_encoder *e = bpe_encoder_new(&cm->tok);
	struct buf text = { 0 };
	uint32_t n_ctx = cm->m.cfg.n_ctx;
	for (size_t i = 0; i < np; i++) {
		const struct he_problem *p = &ps->v[i];
		size_t b, end;
		pystr_strip(p->prompt.p, p->prompt.len, &b, &end);
		buf_reset(&text);
		buf_puts(&text, "<|endoftext|>");
		buf_put(&text, p->prompt.p + b, end - b);
		struct u32vec ids = { 0 };
		bpe_encode(e, text.p, text.len, 1, &ids);
		if (ids.n >= n_ctx)
			die("'%s': problem '%s': the prompt has %zu tokens; the model's context holds "
			    "%u, new tokens included", o->problems, p->task_id.p, ids.n, n_ctx);
		g[i].ids = ids.v;
		g[i].n_ids = ids.n;
	}
	buf_free(&text);
	bpe_encoder_free(e);
}

/* Every problem's seed batches, in order: batch C of problem P is ceil(n / batch) samples at
 * most, drawing from gen_seed(seed, P, C) (greedy: one decoded sample for all n). */
static struct gen_job *gen_jobs(const struct gen_opts *o, struct gen_problem *g, size_t np,
				size_t *nj)
{
	int greedy = o->temperature == 0;
	size_t per = greedy ? 1 : (o->n + o->batch - 1) / o->batch;
	struct gen_job *v = xcalloc(np * per + 1, sizeof(*v));
	size_t k = 0;
	for (size_t p = 0; p < np; p++) {
		g[p].jobs_left = 0;
		for (uint32_t done = 0, c = 0; done < o->n; c++, k++) {
			struct gen_job *j = &v[k];
			j->p = p;
			complete_params_default(&j->cp);
			j->cp.max_tokens = o->max_tokens;
			j->cp.temperature = o->temperature;
			j->cp.top_k = o->top_k;
			j->cp.top_p = o->top_p;
			j->cp.stop = gen_stops;
			j->cp.n_stop = gen_nstops;
			j->cp.seed = gen_seed(o->seed, p, c);
			j->got = gen_batch(o->n, done, o->batch, greedy, &j->cp.n);
			j->cj = (struct complete_job){ .p = &j->cp, .res = &j->res };
			done += j->got;
			g[p].jobs_left++;
		}
	}
	*nj = k;
	return v;
}

/* The longest row a sample needs: its prompt and max_tokens - 1 more (the last token is
 * never fed back), within the context */
static int gen_row_len(const struct complete_model *cm, const struct gen_opts *o,
		       const struct gen_problem *g, size_t np)
{
	uint64_t T = 1, n_ctx = cm->m.cfg.n_ctx;
	for (size_t p = 0; p < np; p++)
		if (g[p].n_ids + (uint64_t)o->max_tokens - 1 > T)
			T = g[p].n_ids + (uint64_t)o->max_tokens - 1;
	return (int)(T < n_ctx ? T : n_ctx);
}

uint32_t gen_default_rows(int host, uint64_t mem, uint64_t row_bytes)
{
	/* the CPU: 32, where a step's multiply-adds outweigh streaming the weights once and the
	 * products are still the kernels' few-rows ones; a device: 256, enough to fill its cores.
	 * Either within a quarter of the memory. Not the thread count: in fp32 the rows change
	 * the products' rounding, and -j must not change the samples. */
	uint64_t r = host ? 32 : 256;
	if (row_bytes && mem / 4 / row_bytes < r)
		r = mem / 4 / row_bytes;
	return r ? (uint32_t)r : 1;
}

/* --batch-rows, or its default for this backend, model and row length */
static int gen_rows(const struct complete_model *cm, const struct gen_opts *o, int T)
{
	if (o->rows)
		return (int)o->rows;
	const struct gpt2_config *c = &cm->m.cfg;
	uint64_t row = 2ull * c->n_layer * c->n_embd * (uint64_t)T * sizeof(float);
	int host;
	uint64_t mem = complete_batch_memory(cm, &host);
	return (int)gen_default_rows(host, mem, row);
}

/* Start samples in the free rows: the open job's rest, then the next jobs' (one at a time
 * may wait for rows). NEXT: the first job not opened. */
static void gen_fill(struct complete_batch *cb, struct gen_job *v, size_t nj, size_t *next,
		     struct gen_problem *g, const struct he_problems *ps)
{
	while (complete_batch_rows_free(cb) > 0) {
		if (*next > 0 && complete_batch_more(cb, &v[*next - 1].cj) > 0)
			return;
		if (*next == nj)
			return;
		struct gen_job *j = &v[(*next)++];
		char *err = NULL;
		if (complete_batch_open(cb, &j->cj, g[j->p].ids, g[j->p].n_ids, &err))
			die("problem '%s': %s", ps->v[j->p].task_id.p, err);
		j->open = 1;
	}
}

/* the jobs of [*LO, NEXT) that are done: their lines made, their results freed; *LO past the
 * done ones at the front. The tokens they generated. */
static uint64_t gen_collect(struct gen_job *v, size_t *lo, size_t next, struct gen_problem *g,
			    const struct he_problems *ps, int greedy, size_t *problems_done)
{
	uint64_t tokens = 0;
	for (size_t k = *lo; k < next; k++) {
		struct gen_job *j = &v[k];
		if (j->done || j->cj.going)
			continue;
		tokens += gen_lines(&j->lines, &ps->v[j->p], &j->res, j->got, greedy);
		complete_result_free(&j->res);
		j->done = 1;
		if (--g[j->p].jobs_left == 0)
			(*problems_done)++;
	}
	while (*lo < next && v[*lo].done)
		(*lo)++;
	return tokens;
}

/* All the samples as one batch of R rows: a row whose sample ends takes the next waiting
 * sample, so the samples of a problem and many problems decode together. Each draws from its
 * own seed batch's stream, and a row's logits are its own (the kernels aside), so the lines
 * are the same whatever R, the threads, or the order rows finish. */
static void gen_all(const struct complete_model *cm, const struct gen_opts *o,
		    const struct he_problems *ps, struct gen_problem *g, size_t np,
		    struct gen_job *v, size_t nj)
{
	int progress = is_tty(2), greedy = o->temperature == 0;
	int T = gen_row_len(cm, o, g, np), R = gen_rows(cm, o, T);
	omp_set_num_threads(o->jobs);
	struct complete_batch *cb = complete_batch_new(cm, R, T, COMPLETE_BATCH_HOLD);
	size_t next = 0, lo = 0, done = 0;
	uint64_t tokens = 0;
	double t0 = mono_now();
	while (lo < nj) {
		gen_fill(cb, v, nj, &next, g, ps);
		complete_batch_step(cb);
		size_t before = done;
		tokens += gen_collect(v, &lo, next, g, ps, greedy, &done);
		if (progress && done != before)
			fprintf(stderr, "\r%s: generated %zu/%zu problems (%d rows), %.0f tokens/s",
				cp_progname, done, np, R, (double)tokens / (mono_now() - t0 + 1e-9));
	}
	if (progress)
		fputc('\n', stderr);
	complete_batch_free(cb);
}

void gen_run(const struct gen_opts *o, const struct he_problems *ps, const char *out)
{
	struct complete_model cm;
	if (complete_load(&cm, o->model, o->tokenizer, o->device))
		exit(EXIT_ERR);
	if (o->bf16)
		complete_weights_bf16(&cm);
	size_t np = o->limit && o->limit < ps->n ? o->limit : ps->n;
	struct gen_problem *g = xcalloc(np ? np : 1, sizeof *g);
	gen_encode(&cm, o, ps, g, np);
	size_t nj;
	struct gen_job *v = gen_jobs(o, g, np, &nj);
	gen_all(&cm, o, ps, g, np, v, nj);
	/* in (problem, sample) order, the file whole or not at all */
	struct he_out f;
	he_out_open(&f, out);
	for (size_t k = 0; k < nj; k++)
		he_out_write(&f, v[k].lines.p, v[k].lines.len);
	he_out_close(&f);
	for (size_t k = 0; k < nj; k++)
		buf_free(&v[k].lines);
	for (size_t p = 0; p < np; p++)
		free(g[p].ids);
	free(v);
	free(g);
	complete_free(&cm);
}
