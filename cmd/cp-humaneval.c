/* cp-humaneval: HumanEval for cp models: run samples' programs in the sandbox (common/eval/sandbox.c),
 * judge them as openai/human-eval does, and report pass@k. Subcommands, so that generation
 * (which needs a model) can join evaluation under one name. */
#include "tok/bpe.h"
#include "infer/complete.h"
#include "base/die.h"
#include "eval/humaneval.h"
#include "base/io.h"
#include "base/json.h"
#include "base/cli.h"
#include "eval/passk.h"
#include "eval/sandbox.h"
#include "base/util.h"
#include "base/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

static const char usage_text[] =
	"usage: cp-humaneval evaluate --problems FILE --samples SAMPLES [-j N] [--timeout S] [-o RESULTS]\n"
	"                    [-k LIST] [--memory BYTES] [--python PATH] [--guard] [--cold] [--unsafe-no-isolation] [-v]\n"
	"       cp-humaneval sandbox [--python PATH] [--cold] [--unsafe-no-isolation]\n"
	"       cp-humaneval generate -m MODEL --problems FILE [-n N] [-j N] -o SAMPLES [--tokenizer PATH]\n"
	"                    [--temperature T] [--top-p P] [--top-k K] [--max-tokens N] [--seed S] [--batch B] [--limit N]\n"
	"       cp-humaneval run -m MODEL --problems FILE [-n N] [-j N] --samples SAMPLES [-o RESULTS]\n"
	"                    [generate's options] [evaluate's options]\n"
	"\n"
	"  evaluate        run every sample's program in the sandbox; results in the samples' order\n"
	"  sandbox         print the protections this machine allows and test the sandbox\n"
	"  generate        sample completions of each problem's prompt from a model\n"
	"  run             generate, then evaluate what was generated\n"
	"  --problems FILE HumanEval problems (JSON lines, plain, .gz or .zst)\n"
	"  --samples FILE  {\"task_id\", \"completion\"} JSON lines (run: where they are written)\n"
	"  -j N            parallel candidates, and problems generated at once (default: all cores)\n"
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
	"  --batch B       samples of a problem decoded together (default 50)\n"
	"  --limit N       only the first N problems\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

struct eval_opts {
	const char *problems, *samples, *out, *python;
	int jobs, guard, unsafe, verbose, cold;
	double timeout;
	uint64_t memory;
	uint64_t ks[16];
	size_t nk;
};

/* ---- the seccomp filter, built with libseccomp and handed to the sandbox as BPF ---- */

static int filter_add(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		      const struct scmp_arg_cmp *cmp)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR)
		return 0; /* not on this architecture */
	return seccomp_rule_add_array(ctx, action, nr, n, cmp);
}

/* libseccomp's SCMP_A* macros leave fields out, which clang's -Wextra refuses */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, uint64_t a, uint64_t b)
{
	struct scmp_arg_cmp c = { arg, op, a, b };
	return c;
}

/* Default allow; refuse what a test program never needs and a sandbox escape would:
 * namespaces and mounts, tracing, kernel interfaces with a history of holes, and sockets
 * other than AF_UNIX. */
static int build_filter(struct sandbox *sb)
{
	static const char *const deny[] = {
		"unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree",
		"move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
		"ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
		"bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
		"io_uring_register", "keyctl", "add_key", "request_key", "init_module",
		"finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
		"swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime",
		"adjtimex", "syslog", "quotactl", "vhangup", "iopl", "ioperm", "lookup_dcookie",
		"name_to_handle_at", "open_by_handle_at", "personality",
	};
	static const uint64_t ns_flags[] = { CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
					     CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -1;
	int rc = 0;
	for (size_t i = 0; i < sizeof deny / sizeof *deny && !rc; i++)
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), deny[i], 0, NULL);
	/* clone3 passes its flags in memory a filter cannot read: make libc fall back to clone */
	if (!rc)
		rc = filter_add(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
	for (size_t i = 0; i < sizeof ns_flags / sizeof *ns_flags && !rc; i++) {
		struct scmp_arg_cmp c = arg_cmp(0, SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]);
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), "clone", 1, &c);
	}
	if (!rc) {
		struct scmp_arg_cmp c = arg_cmp(0, SCMP_CMP_NE, AF_UNIX, 0);
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), "socket", 1, &c);
	}
	if (!rc) {
		struct scmp_arg_cmp c = arg_cmp(1, SCMP_CMP_EQ, TIOCSTI, 0);
		rc = filter_add(ctx, SCMP_ACT_ERRNO(EPERM), "ioctl", 1, &c);
	}
	int fd = rc ? -1 : memfd_create("cp-humaneval-bpf", MFD_CLOEXEC);
	if (fd >= 0 && !seccomp_export_bpf(ctx, fd)) {
		off_t n = lseek(fd, 0, SEEK_END);
		char *p = n > 0 ? xmalloc((size_t)n) : NULL;
		if (p && pread(fd, p, (size_t)n, 0) == n && n % 8 == 0)
			sbx_set_filter(sb, p, (size_t)n / 8);
		else
			rc = -1;
		free(p);
	} else {
		rc = -1;
	}
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return rc;
}

/* ---- finding python ---- */

/* Ask an interpreter (a pyenv shim, say) for the real executable; NULL when it cannot say. */
static char *python_executable(const char *cmd)
{
	int p[2];
	if (pipe(p))
		return NULL;
	pid_t pid = fork();
	if (pid < 0)
		return NULL;
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execlp(cmd, cmd, "-c", "import sys; print(sys.executable)", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	char out[PATH_MAX + 2];
	long n = read_full(p[0], out, sizeof out - 1);
	close(p[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (n <= 1 || !WIFEXITED(st) || WEXITSTATUS(st))
		return NULL;
	out[n] = 0;
	out[strcspn(out, "\n")] = 0;
	return out[0] == '/' ? xstrdup(out) : NULL;
}

/* ---- the sandbox and its self-test ---- */

/* The candidates' whole environment. CP_SANDBOX names this run, so that an administrator (or a
 * test) can find anything of it that ever outlived the sandbox in /proc/PID/environ. */
static char sandbox_marker[64];
static const char *const sandbox_env[] = {
	"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LC_ALL=C.UTF-8",
	"PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1", sandbox_marker, NULL
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

/* run one program; the verdict as human-eval writes it (a process that never reported was
 * killed or died: human-eval calls that "timed out") */
static int judge_cold(struct judge *j, const char *prog, size_t len, struct sbx_result *res,
		      char **why)
{
	const char *argv[] = { j->python, "-s", "-c", he_driver_py, j->timeout_arg, j->guard_arg,
			       NULL };
	memset(res, 0, sizeof *res);
	return sbx_run(j->sb, argv, prog, len, res, why);
}

/* Warm: the worker's server judges it in a fresh child. A server found dead before the request
 * is replaced and asked again; one that dies or stalls on it leaves no verdict ("timed out",
 * as in human-eval) and is replaced for the next request. */
static int judge_warm(struct judge *j, const char *prog, size_t len, struct sbx_result *res,
		      char **why)
{
	const char *argv[] = { j->python, "-s", "-c", he_driver_py, j->timeout_arg, j->guard_arg,
			       j->cpu_arg, j->keep_arg, NULL };
	int t = omp_get_thread_num();
	struct sbx_session **s = &j->sessions[t < j->nsessions ? t : 0];
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!*s && !(*s = sbx_session_open(j->sb, argv, why)))
			return -1;
		int rc = sbx_session_call(*s, prog, len, j->timeout + 3, res);
		if (rc != 0) {
			sbx_session_close(*s);
			*s = NULL;
		}
		if (rc != -2)
			return 0;
		sbx_result_free(res);
	}
	*why = xasprintf("the warm sandbox server keeps dying");
	return -1;
}

static int judge_run(struct judge *j, const char *prog, size_t len, struct sbx_result *res,
		     char **why)
{
	*why = NULL;
	return j->warm ? judge_warm(j, prog, len, res, why) : judge_cold(j, prog, len, res, why);
}

static int self_test(struct judge *j, char **why)
{
	struct sbx_result r;
	static const char prog[] = "def f():\n    return 1\nassert f() == 1";
	if (judge_run(j, prog, sizeof prog - 1, &r, why))
		return -1;
	int ok = r.report.len == 6 && !memcmp(r.report.p, "passed", 6);
	if (!ok) {
		buf_putc(&r.output, 0);
		*why = xasprintf("python '%s' did not pass a trivial program in the sandbox (status %#x%s%s)",
				 j->python, (unsigned)r.status, r.output.len > 1 ? "; it said: " : "",
				 (char *)r.output.p);
	}
	sbx_result_free(&r);
	return ok ? 0 : -1;
}

static struct sandbox *make_sandbox(enum sbx_mode mode, const struct eval_opts *o)
{
	struct sbx_config c;
	sbx_config_default(&c);
	snprintf(sandbox_marker, sizeof sandbox_marker, "CP_SANDBOX=cp-humaneval.%ld",
		 (long)getpid());
	c.mode = mode;
	c.timeout = o->timeout + 1.0;
	c.cpu_seconds = (unsigned)ceil(o->timeout) + 1;
	c.mem_bytes = o->memory;
	c.env = sandbox_env;
	char *why = NULL;
	struct sandbox *sb = sbx_new(&c, &why);
	if (!sb)
		die("cannot set up the sandbox: %s", why);
	if (build_filter(sb))
		warning("no seccomp filter: libseccomp could not build one");
	return sb;
}

static void judge_close_sessions(struct judge *j)
{
	for (int i = 0; i < j->nsessions; i++)
		sbx_session_close(j->sessions[i]);
	free(j->sessions);
	j->sessions = NULL;
	j->nsessions = 0;
}

/* Warm mode where the namespaces allow it (its server kills everything in its pid namespace
 * between candidates, which is only safe there), checked with the same trivial program. */
static void judge_warm_up(struct judge *j, const struct eval_opts *o, enum sbx_mode mode)
{
	if (o->cold || mode != SBX_NAMESPACES)
		return;
	j->nsessions = o->jobs > 0 ? o->jobs : 1;
	j->sessions = xcalloc((size_t)j->nsessions, sizeof *j->sessions);
	j->warm = 1;
	char *why = NULL;
	if (self_test(j, &why)) {
		warning("warm mode does not work (%s); starting python for every candidate", why);
		free(why);
		judge_close_sessions(j);
		j->warm = 0;
	}
}

/* Find a working interpreter and the strongest sandbox; dies with the reason when candidates
 * would run with rlimits alone and --unsafe-no-isolation was not given. */
static void judge_open(struct judge *j, const struct eval_opts *o)
{
	const char *tries[2];
	size_t ntries = 0;
	char *first = NULL;
	if (o->python) {
		first = strchr(o->python, '/') ? xstrdup(o->python) : python_executable(o->python);
		if (!first)
			die("cannot find python '%s'", o->python);
		tries[ntries++] = first;
	} else {
		first = python_executable("python3");
		if (first)
			tries[ntries++] = first;
		/* the sandbox user may not reach an interpreter under a private home (pyenv as root) */
		if (!first || strcmp(first, "/usr/bin/python3"))
			if (!access("/usr/bin/python3", X_OK))
				tries[ntries++] = "/usr/bin/python3";
	}
	if (!ntries)
		die("no python3 found: give --python PATH");
	snprintf(j->timeout_arg, sizeof j->timeout_arg, "%.17g", o->timeout);
	snprintf(j->cpu_arg, sizeof j->cpu_arg, "%u", (unsigned)ceil(o->timeout) + 1);
	snprintf(j->keep_arg, sizeof j->keep_arg, "%d", 64 << 10);
	j->guard_arg = o->guard ? "1" : "0";
	j->timeout = o->timeout;
	char *ns_why = NULL, *why = NULL;
	enum sbx_mode modes[] = { SBX_NAMESPACES, SBX_PLAIN };
	/* lets tests (and the doubtful) see the fallback where namespaces do work */
	const char *env = getenv("CP_SANDBOX_NAMESPACES");
	int first_mode = env && !strcmp(env, "0");
	if (first_mode)
		ns_why = xstrdup("namespaces disabled by CP_SANDBOX_NAMESPACES=0");
	for (int m = first_mode; m < 2; m++) {
		if (m == 1 && !o->unsafe)
			break;
		j->sb = make_sandbox(modes[m], o);
		for (size_t t = 0; t < ntries; t++) {
			j->python = (char *)tries[t];
			free(why);
			why = NULL;
			if (!self_test(j, &why)) {
				if (t > 0)
					warning("'%s' does not work in the sandbox; using '%s'", tries[0],
						tries[t]);
				j->python = xstrdup(tries[t]);
				free(first);
				free(ns_why);
				free(why);
				why = NULL;
				judge_warm_up(j, o, modes[m]);
				return;
			}
			/* only an interpreter the sandbox cannot run is worth replacing */
			if (!strstr(why, "at exec"))
				break;
		}
		sbx_free(j->sb);
		j->sb = NULL;
		if (m == 0) {
			ns_why = why;
			why = NULL;
		}
	}
	if (!o->unsafe)
		die("refusing to run candidates with rlimits alone: namespace isolation failed (%s); "
		    "give --unsafe-no-isolation to run them anyway", ns_why ? ns_why : "?");
	die("the sandbox does not work: %s", why ? why : ns_why ? ns_why : "?");
}

static void judge_describe(struct judge *j, FILE *f)
{
	struct buf b = { 0 };
	sbx_describe(j->sb, &b);
	buf_putc(&b, 0);
	fprintf(f, "%s: sandbox: %s; python %s, %s\n", cp_progname, (char *)b.p, j->python,
		j->warm ? "warm (a fresh fork of a sandboxed server for each candidate; everything "
			  "else in the namespace killed and the scratch wiped between candidates)"
			: "cold (a fresh sandbox and interpreter for each candidate)");
	buf_free(&b);
}

/* ---- evaluate ---- */

struct verdict {
	char *text;
	size_t len;
	int passed;
};

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
	o->jobs = cpu_count();
	o->timeout = 3.0;
	o->memory = 1ULL << 30;
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
	case 'T': o->timeout = opt_double("--timeout", arg, 0.001, 86400); break;
	case 'M': o->memory = opt_u64("--memory", arg, 16000000, UINT64_MAX); break;
	case 'Y': o->python = arg; break;
	case 'G': o->guard = 1; break;
	case 'C': o->cold = 1; break;
	case 'U': o->unsafe = 1; break;
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
		case 'j': o->jobs = opt_threads("-j", optarg); break;
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

static void show_progress(size_t done, size_t total)
{
	fprintf(stderr, "\r%s: %zu/%zu samples", cp_progname, done, total);
	if (done == total)
		fputc('\n', stderr);
}

/* Run every sample; results land in v[] by sample index, whatever order they finish in. */
static void evaluate_all(struct judge *j, const struct he_problems *ps,
			 const struct he_samples *ss, struct verdict *v, const struct eval_opts *o)
{
	size_t done = 0;
	int progress = is_tty(2);
	char *failure = NULL;
	int stop = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->jobs)
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
		int rc = -1;
		/* a transient fork or memory failure is retried; a run that cannot be judged fails */
		for (int attempt = 0; attempt < 3 && rc; attempt++) {
			if (attempt) {
				sbx_result_free(&r);
				free(why);
				nanosleep(&(struct timespec){ 0, 200000000 }, NULL);
			}
			rc = judge_run(j, (const char *)prog.p, prog.len, &r, &why);
		}
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
		if (r.report.len) {
			v[i].len = r.report.len;
			v[i].text = xstrndup((const char *)r.report.p, r.report.len);
		} else {
			v[i].len = 9;
			v[i].text = xstrdup("timed out");
		}
		v[i].passed = v[i].len == 6 && !memcmp(v[i].text, "passed", 6);
#pragma omp critical(report)
		{
			done++;
			if (o->verbose) {
				fprintf(stderr, "%s: %s #%zu (line %zu): %.*s [%.2f s, status %#x, %llu bytes of output]\n",
					cp_progname, ps->v[s->problem].task_id.p, i, s->line,
					(int)(v[i].len > 200 ? 200 : v[i].len), v[i].text, r.wall,
					(unsigned)r.status, (unsigned long long)r.output_total);
				if (r.output.len)
					fprintf(stderr, "%.*s%s", (int)(r.output.len > 2000 ? 2000 : r.output.len),
						(char *)r.output.p,
						r.output.p[r.output.len - 1] == '\n' ? "" : "\n");
			}
			if (progress)
				show_progress(done, ss->n);
		}
		sbx_result_free(&r);
	}
	if (failure)
		die("%s", failure);
}

static void write_results(const struct eval_opts *o, const struct he_samples *ss,
			  const struct verdict *v)
{
	int to_stdout = !strcmp(o->out, "-");
	char *tmp = to_stdout ? NULL : xasprintf("%s.tmp", o->out);
	FILE *f = to_stdout ? stdout : fopen(tmp, "w");
	if (!f)
		die_errno("cannot create '%s'", tmp);
	struct buf b = { 0 };
	for (size_t i = 0; i < ss->n; i++) {
		buf_reset(&b);
		he_result_line(&b, &ss->v[i], v[i].text, v[i].len, v[i].passed);
		if (fwrite(b.p, 1, b.len, f) != b.len)
			die_errno("cannot write '%s'", to_stdout ? "standard output" : tmp);
	}
	buf_free(&b);
	if (!to_stdout) {
		if (fflush(f) || ferror(f) || fsync(fileno(f)) || fclose(f))
			die_errno("cannot write '%s'", tmp);
		if (rename(tmp, o->out))
			die_errno("cannot rename '%s' to '%s'", tmp, o->out);
		free(tmp);
	}
}

/* pass@k over the problems that have samples, in the problems file's order */
static void print_summary(const struct eval_opts *o, const struct he_problems *ps,
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
	struct buf b = { 0 };
	buf_putc(&b, '{');
	for (size_t k = 0; k < o->nk; k++) {
		double est = passk_mean(n, c, m, o->ks[k]);
		if (isnan(est))
			continue;
		buf_printf(&b, "\"pass@%llu\": ", (unsigned long long)o->ks[k]);
		json_double(&b, est);
		buf_puts(&b, ", ");
	}
	buf_printf(&b, "\"problems\": %zu, \"samples\": %zu, \"passed\": %zu, \"failed\": %zu, "
		   "\"timed_out\": %zu}\n", m, ss->n, passed, ss->n - passed - timed_out, timed_out);
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
	free(n);
	free(c);
}

/* Judge the samples file O->samples against PS and print the summary; QUIET_MISSING when
 * problems without samples were left out on purpose (run --limit). */
static void evaluate_file(const struct eval_opts *o, const struct he_problems *ps,
			  struct judge *j, int quiet_missing)
{
	struct he_samples ss;
	if (he_samples_load(o->samples, ps, &ss))
		exit(EXIT_ERR);
	struct verdict *v = xcalloc(ss.n ? ss.n : 1, sizeof *v);
	evaluate_all(j, ps, &ss, v, o);
	if (o->out)
		write_results(o, &ss, v);
	print_summary(o, ps, &ss, v, quiet_missing);
	for (size_t i = 0; i < ss.n; i++)
		free(v[i].text);
	free(v);
	he_samples_free(&ss);
}

static void judge_close(struct judge *j)
{
	judge_close_sessions(j);
	sbx_free(j->sb);
	free(j->python);
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
	judge_open(&j, &o);
	judge_describe(&j, stderr);
	evaluate_file(&o, &ps, &j, 0);
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
	judge_open(&j, &o);
	judge_describe(&j, stdout);
	judge_close_sessions(&j);
	sbx_free(j.sb);
	free(j.python);
	close_stdout();
	return EXIT_OK;
}

/* ---- generate ---- */

/* the published CodeParrot/Codex stop strings: the function body ends where top-level code starts */
static const char *const gen_stops[] = { "\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif" };

struct gen_opts {
	const char *model, *tokenizer, *problems, *out;
	uint32_t n, max_tokens, top_k, batch;
	double temperature, top_p;
	uint64_t seed;
	size_t limit;
	int jobs;
};

static void gen_defaults(struct gen_opts *g)
{
	memset(g, 0, sizeof *g);
	g->n = 200;
	g->max_tokens = 256;
	g->temperature = 0.2;
	g->top_p = 0.95;
	g->batch = 50;
	g->jobs = cpu_count();
}

/* Python's str.isspace() (Unicode White_Space, as Python defines it) */
static int py_isspace(uint32_t c)
{
	return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
	       c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
	       c == 0x202f || c == 0x205f || c == 0x3000;
}

/* Python's str.strip() on UTF-8: [*b, *e) is S without white space at either end */
static void py_strip(const char *s, size_t n, size_t *b, size_t *e)
{
	const utf8proc_uint8_t *u = (const utf8proc_uint8_t *)s;
	size_t i = 0, j = n;
	utf8proc_int32_t c;
	while (i < j) {
		utf8proc_ssize_t k = utf8proc_iterate(u + i, (utf8proc_ssize_t)(j - i), &c);
		if (k <= 0 || !py_isspace((uint32_t)c))
			break;
		i += (size_t)k;
	}
	while (j > i) {
		size_t st = j - 1;
		while (st > i && j - st < 4 && (u[st] & 0xc0) == 0x80)
			st--;
		utf8proc_ssize_t k = utf8proc_iterate(u + st, (utf8proc_ssize_t)(j - st), &c);
		if (k != (utf8proc_ssize_t)(j - st) || !py_isspace((uint32_t)c))
			break;
		j = st;
	}
	*b = i;
	*e = j;
}

/* Length of the valid UTF-8 sequence at S (N bytes left), or 0 with *BAD the length of its
 * longest valid start (at least 1), which Python's "replace" handler makes one U+FFFD. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t len;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		len = 0;
	size_t i = 1;
	for (; len && i < len && i < n; i++) {
		if (s[i] < lo || s[i] > hi)
			break;
		lo = 0x80, hi = 0xbf;
	}
	if (len && i == len)
		return len;
	*bad = i;
	return 0;
}

/* The completion as text, as Hugging Face's tokenizers decode bytes (errors="replace"): a
 * sample cut inside a character, or a model that emits stray bytes, still gives valid UTF-8. */
static void gen_text(struct buf *out, const unsigned char *s, size_t n)
{
	buf_reset(out);
	for (size_t i = 0; i < n;) {
		size_t bad = 0, k = utf8_seq(s + i, n - i, &bad);
		if (k) {
			buf_put(out, s + i, k);
			i += k;
		} else {
			buf_puts(out, "\xef\xbf\xbd");
			i += bad;
		}
	}
	buf_putc(out, 0);
	out->len--;
}

/* Batch C of problem P draws from its own seed, so that no sample depends on which thread
 * generated which problem, or when. */
static uint64_t gen_seed(uint64_t seed, size_t p, size_t c)
{
	return mix64(mix64(mix64(seed) ^ (uint64_t)p) ^ (uint64_t)c);
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
		py_strip(p->prompt.p, p->prompt.len, &b, &end);
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
	cp.n_stop = sizeof gen_stops / sizeof *gen_stops;
	int greedy = o->temperature == 0;
	struct buf text = { 0 };
	for (uint32_t done = 0, c = 0; done < o->n; c++) {
		uint32_t rest = o->n - done;
		cp.n = greedy ? 1 : rest < o->batch ? rest : o->batch;
		cp.seed = gen_seed(o->seed, p, c);
		struct complete_result r;
		if (complete_generate_ids(cm, g->ids, g->n_ids, &cp, &r, &g->err))
			break;
		uint32_t got = greedy ? rest : cp.n;
		for (uint32_t i = 0; i < got; i++) {
			const struct complete_sample *s = &r.s[greedy ? 0 : i];
			gen_text(&text, s->text.p, s->text.len);
			he_sample_line(&g->lines, prob->task_id.p, prob->task_id.len,
				       (const char *)text.p, text.len);
			if (!greedy || i == 0)
				g->tokens += s->n_tokens;
		}
		done += got;
		complete_result_free(&r);
	}
	buf_free(&text);
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

/* in problem order; FILE.tmp renamed into place when complete */
static void gen_write(const char *out, const struct gen_problem *g, size_t np)
{
	int to_stdout = !strcmp(out, "-");
	char *tmp = to_stdout ? NULL : xasprintf("%s.tmp", out);
	FILE *f = to_stdout ? stdout : fopen(tmp, "w");
	if (!f)
		die_errno("cannot create '%s'", tmp);
	for (size_t p = 0; p < np; p++)
		if (g[p].lines.len && fwrite(g[p].lines.p, 1, g[p].lines.len, f) != g[p].lines.len)
			die_errno("cannot write '%s'", to_stdout ? "standard output" : tmp);
	if (!to_stdout) {
		if (fflush(f) || ferror(f) || fsync(fileno(f)) || fclose(f))
			die_errno("cannot write '%s'", tmp);
		if (rename(tmp, out))
			die_errno("cannot rename '%s' to '%s'", tmp, out);
		free(tmp);
	}
}

/* Load the model, generate the samples of the first problems and write them to OUT. */
static void generate(const struct gen_opts *o, const struct he_problems *ps, const char *out)
{
	struct complete_model cm;
	if (complete_load(&cm, o->model, o->tokenizer, NULL))
		exit(EXIT_ERR);
	size_t np = o->limit && o->limit < ps->n ? o->limit : ps->n;
	struct gen_problem *g = xcalloc(np ? np : 1, sizeof *g);
	gen_encode(&cm, o, ps, g, np);
	gen_all(&cm, o, ps, g, np);
	gen_write(out, g, np);
	for (size_t p = 0; p < np; p++) {
		free(g[p].ids);
		buf_free(&g[p].lines);
	}
	free(g);
	complete_free(&cm);
}

enum { O_TOKENIZER = 256, O_TEMPERATURE, O_TOP_P, O_TOP_K, O_MAX_TOKENS, O_SEED, O_BATCH,
       O_LIMIT };

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
		{ "limit", required_argument, NULL, O_LIMIT },
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
		case O_LIMIT: g->limit = opt_u64("--limit", optarg, 1, SIZE_MAX); break;
		case 'n': g->n = (uint32_t)opt_u64("-n", optarg, 1, 1000000); break;
		case 'j': g->jobs = e->jobs = opt_threads("-j", optarg); break;
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
	generate(&g, &ps, g.out);
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
	judge_open(&j, &e);
	judge_describe(&j, stderr);
	generate(&g, &ps, e.samples);
	evaluate_file(&e, &ps, &j, g.limit != 0);
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
	if (!strcmp(sub, "generate"))
		return cmd_generate(argc - 1, argv + 1);
	if (!strcmp(sub, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (sub[0] == '-')
		die_usage("unknown option '%s'", sub);
	die_usage("unknown subcommand '%s' (evaluate, sandbox, generate, run)", sub);
}
