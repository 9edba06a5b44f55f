/* cp-humaneval: HumanEval for cp models: run samples' programs in the sandbox (common/sandbox.c),
 * judge them as openai/human-eval does, and report pass@k. Subcommands, so that generation
 * (which needs a model) can join evaluation under one name. */
#include "die.h"
#include "humaneval.h"
#include "io.h"
#include "json.h"
#include "opt.h"
#include "passk.h"
#include "sandbox.h"
#include "xalloc.h"

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

static const char usage_text[] =
	"usage: cp-humaneval evaluate --problems FILE --samples SAMPLES [-j N] [--timeout S] [-o RESULTS]\n"
	"                    [-k LIST] [--memory BYTES] [--python PATH] [--guard] [--cold] [--unsafe-no-isolation] [-v]\n"
	"       cp-humaneval sandbox [--python PATH] [--cold] [--unsafe-no-isolation]\n"
	"       cp-humaneval generate -m MODEL --problems FILE [-n N] -o SAMPLES\n"
	"       cp-humaneval run -m MODEL --problems FILE [-n N] [-j N] [-o RESULTS]\n"
	"\n"
	"  evaluate        run every sample's program in the sandbox; results in the samples' order\n"
	"  sandbox         print the protections this machine allows and test the sandbox\n"
	"  generate, run   not available yet: they need a model (exit 1)\n"
	"  --problems FILE HumanEval problems (JSON lines, plain, .gz or .zst)\n"
	"  --samples FILE  {\"task_id\", \"completion\"} JSON lines\n"
	"  -j N            parallel candidates (default: all cores)\n"
	"  --timeout S     seconds per program (default 3); the group is killed 1 s later\n"
	"  -o RESULTS      write one result line per sample ('-' for standard output)\n"
	"  -k LIST         pass@k values to estimate (default 1,10,100)\n"
	"  --memory BYTES  address-space limit per candidate (default 1G; k, M, G suffixes)\n"
	"  --python PATH   the interpreter (default: python3 on PATH, else /usr/bin/python3)\n"
	"  --guard         also disable what human-eval's reliability_guard disables\n"
	"  --cold          a fresh sandbox and interpreter for every candidate (slower)\n"
	"  --unsafe-no-isolation  run with rlimits alone where namespaces are unavailable\n"
	"  -v              one line per sample on standard error, with its output\n";

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

static int parse_eval(int argc, char **argv, struct eval_opts *o, int sandbox_only)
{
	static const struct option longopts[] = {
		{ "problems", required_argument, NULL, 'P' },
		{ "samples", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "memory", required_argument, NULL, 'M' },
		{ "python", required_argument, NULL, 'Y' },
		{ "guard", no_argument, NULL, 'G' },
		{ "cold", no_argument, NULL, 'C' },
		{ "unsafe-no-isolation", no_argument, NULL, 'U' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	memset(o, 0, sizeof *o);
	o->jobs = cpu_count();
	o->timeout = 3.0;
	o->memory = 1ULL << 30;
	o->ks[0] = 1, o->ks[1] = 10, o->ks[2] = 100, o->nk = 3;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "hj:o:k:v", longopts, NULL)) != -1) {
		switch (c) {
		case 'P': o->problems = optarg; break;
		case 'S': o->samples = optarg; break;
		case 'T': o->timeout = opt_double("--timeout", optarg, 0.001, 86400); break;
		case 'M': o->memory = opt_u64("--memory", optarg, 16000000, UINT64_MAX); break;
		case 'Y': o->python = optarg; break;
		case 'G': o->guard = 1; break;
		case 'C': o->cold = 1; break;
		case 'U': o->unsafe = 1; break;
		case 'j': o->jobs = opt_threads("-j", optarg); break;
		case 'o': o->out = optarg; break;
		case 'k': parse_ks(o, optarg); break;
		case 'v': o->verbose = 1; break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
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
			  const struct he_samples *ss, const struct verdict *v)
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
	if (m < ps->n)
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

static int cmd_evaluate(int argc, char **argv)
{
	struct eval_opts o;
	parse_eval(argc, argv, &o, 0);
	struct he_problems ps;
	struct he_samples ss;
	if (he_problems_load(o.problems, &ps))
		return EXIT_ERR;
	if (he_samples_load(o.samples, &ps, &ss)) {
		he_problems_free(&ps);
		return EXIT_ERR;
	}
	struct judge j = { 0 };
	judge_open(&j, &o);
	judge_describe(&j, stderr);
	struct verdict *v = xcalloc(ss.n ? ss.n : 1, sizeof *v);
	evaluate_all(&j, &ps, &ss, v, &o);
	if (o.out)
		write_results(&o, &ss, v);
	print_summary(&o, &ps, &ss, v);
	for (size_t i = 0; i < ss.n; i++)
		free(v[i].text);
	free(v);
	judge_close_sessions(&j);
	sbx_free(j.sb);
	free(j.python);
	he_samples_free(&ss);
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
	if (!strcmp(sub, "generate") || !strcmp(sub, "run")) {
		for (int i = 2; i < argc; i++)
			if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
				usage(0);
		die("'%s' is not available yet: it needs a model (cp-complete), which this build "
		    "does not have", sub);
	}
	if (sub[0] == '-')
		die_usage("unknown option '%s'", sub);
	die_usage("unknown subcommand '%s' (evaluate, sandbox, generate, run)", sub);
}
