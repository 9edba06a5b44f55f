/* humaneval.h: HumanEval files: the problems (JSON lines, plain or compressed, with task_id,
 * prompt, canonical_solution, test, entry_point), samples ({"task_id", "completion"} lines as
 * openai/human-eval reads them) and results, written the way Python's json.dumps writes them
 * so that files compare byte for byte with human-eval's; and the program a sample is judged by. */
#ifndef CP_HUMANEVAL_H
#define CP_HUMANEVAL_H

#include <stddef.h>
#include <stdio.h>

#include "base/atomic.h"
#include "base/buf.h"

struct he_str {
	char *p; /* NUL-terminated; may also hold NULs (use len) */
	size_t len;
};

struct he_problem {
	struct he_str task_id, prompt, canonical_solution, test, entry_point;
};

struct he_problems {
	struct he_problem *v;
	size_t n;
	size_t *order; /* indices sorted by task_id, for lookup */
};

/* Load PATH; -1 after an error message naming file and line. */
int he_problems_load(const char *path, struct he_problems *ps);
void he_problems_free(struct he_problems *ps);
/* index of the problem with this task_id, or -1 */
long he_problems_find(const struct he_problems *ps, const char *id, size_t len);

struct he_sample {
	size_t problem;		/* index into the problems */
	struct he_str completion;
	char *members;		/* the sample's members as Python writes them, without braces and
				 * without "result"/"passed" */
	size_t line;
};

struct he_samples {
	struct he_sample *v;
	size_t n;
};

/* Load PATH, each task_id checked against PS; -1 after an error message naming file and line. */
int he_samples_load(const char *path, const struct he_problems *ps, struct he_samples *ss);
void he_samples_free(struct he_samples *ss);

/* The program human-eval runs: prompt + completion + "\n" + test + "\n" + "check(entry_point)". */
void he_program(struct buf *b, const struct he_problem *p, const char *completion, size_t len);

/* one result line (with "\n"): the sample's members, then "result" and "passed" */
void he_result_line(struct buf *b, const struct he_sample *s, const char *result, size_t len,
		    int passed);
/* one sample line (with "\n"), as human-eval's write_jsonl writes it */
void he_sample_line(struct buf *b, const char *task_id, size_t id_len, const char *completion,
		    size_t len);

/* An output file of samples or results: PATH written whole through base/atomic.h, or
 * standard output for "-". Every failure dies naming the file. */
struct he_out {
	struct atomic_stream s;
	FILE *fp;
	int to_stdout;
};
void he_out_open(struct he_out *o, const char *path);
void he_out_write(struct he_out *o, const void *p, size_t n);
/* commits the file (standard output is left open) */
void he_out_close(struct he_out *o);

/* The Python driver that runs one program under human-eval's rules: common/eval/driver.py,
 * embedded at build time (scripts/embed), NUL-terminated. */
extern const char embed_eval_driver_py[];
extern const unsigned long embed_eval_driver_py_len;

#endif
