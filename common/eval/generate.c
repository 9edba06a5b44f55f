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
	struct buf lines;	/* its sample lines */
	uint64_t tokens;	/* generated */
	char *err;
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

/* Problem P's samples, in batches of at most o->batch. Greedy decoding gives one answer:
 * it is decoded once and repeated. */
static void gen_problem_run(const struct complete_model *cm, const struct gen_opts *o,
			    const struct he_problem *prob, size_t p, struct gen_problem *g)
{
	struct complete_params cp;
	complete_params_default(&cp);
	cp.max_tokens = o->max_tokens;
	cp.temperature = o->temperature;
	cp.top_k = o->top_k;
	cp.top_p = o->top_p;
	cp.stop = gen_stops;
	cp.n_stop = gen_nstops;
	int greedy = o->temperature == 0;
	for (uint32_t done = 0, c = 0; done < o->n; c++) {
		uint32_t got = gen_batch(o->n, done, o->batch, greedy, &cp.n);
		cp.seed = gen_seed(o->seed, p, c);
		struct complete_result r;
		if (complete_generate_ids(cm, g->ids, g->n_ids, &cp, &r, &g->err))
			break;
		g->tokens += gen_lines(&g->lines, prob, &r, got, greedy);
		done += got;
		complete_result_free(&r);
	}
}

/* Problems in parallel, one thread each (nested regions run on the calling thread); a lone
 * problem (--limit 1) has its products spread over the -j threads instead. */
static void gen_all(const struct complete_model *cm, const struct gen_opts *o,
		    const struct he_problems *ps, struct gen_problem *g, size_t np)
{
	int progress = is_tty(2);
	size_t done = 0;
	uint64_t tokens = 0;
	double t0 = mono_now();
	int outer = (size_t)o->jobs < np ? o->jobs : (int)np;
	omp_set_max_active_levels(1);
	omp_set_num_threads(o->jobs);
#pragma omp parallel for schedule(dynamic, 1) num_threads(outer > 0 ? outer : 1)
	for (size_t p = 0; p < np; p++) {
		gen_problem_run(cm, o, &ps->v[p], p, &g[p]);
#pragma omp critical(gen_report)
		{
			done++;
			tokens += g[p].tokens;
			if (progress)
				fprintf(stderr, "\r%s: generated %zu/%zu problems, %.0f tokens/s", cp_progname,
					done, np, (double)tokens / (mono_now() - t0 + 1e-9));
		}
	}
	if (progress)
		fputc('\n', stderr);
	for (size_t p = 0; p < np; p++)
		if (g[p].err)
			die("problem '%s': %s", ps->v[p].task_id.p, g[p].err);
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
	gen_all(&cm, o, ps, g, np);
	/* in problem order, the file whole or not at all */
	struct he_out f;
	he_out_open(&f, out);
	for (size_t p = 0; p < np; p++)
		he_out_write(&f, g[p].lines.p, g[p].lines.len);
	he_out_close(&f);
	for (size_t p = 0; p < np; p++) {
		free(g[p].ids);
		buf_free(&g[p].lines);
	}
	free(g);
	complete_free(&cm);
}
