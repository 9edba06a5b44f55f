/* test-eval: common/eval's pieces against independent references. Python's own json.dumps,
 * repr(float), str.strip, str.isspace and bytes.decode("replace") for pystr (run through
 * $PYTHON on random and edge-case strings); the seccomp filter installed in a forked child,
 * which must refuse what the man page lists and allow the rest; generation's seeds (splitmix64
 * written out here), batches and sample lines; and the judge with the evaluation's results and
 * summary on programs whose verdicts are known. */
#include "base/buf.h"
#include "base/die.h"
#include "base/xalloc.h"
#include "eval/evaluate.h"
#include "eval/generate.h"
#include "eval/humaneval.h"
#include "eval/judge.h"
#include "eval/pystr.h"
#include "eval/seccomp.h"
#include "tap.h"

#include <dirent.h>
#include <fcntl.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/personality.h>
#include <sys/stat.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static uint64_t rng = 0x1234567;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void put_hex(FILE *f, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", ((const unsigned char *)p)[i]);
	fputc('\n', f);
}

/* $PYTHON SCRIPT IN: its standard output, or NULL (after a skip naming WHAT) when there is no
 * Python */
static char *run_python(const char *dir, const char *script, const char *in_path,
			const char *what)
{
	char *sp = xasprintf("%s/t.py", dir);
	FILE *f = fopen(sp, "w");
	fputs(script, f);
	fclose(f);
	const char *py = getenv("PYTHON") ? getenv("PYTHON") : "python3";
	char *cmd = xasprintf("'%s' '%s' '%s'", py, sp, in_path);
	FILE *p = popen(cmd, "r");
	struct buf out = { 0 };
	char chunk[65536];
	size_t n;
	while (p && (n = fread(chunk, 1, sizeof chunk, p)) > 0)
		buf_put(&out, chunk, n);
	int st = p ? pclose(p) : -1;
	free(cmd);
	free(sp);
	if (st != 0) {
		ok(1, "# SKIP no Python for %s", what);
		buf_free(&out);
		return NULL;
	}
	buf_putc(&out, 0);
	return (char *)out.p;
}

/* a random string of the kinds that matter: ASCII with controls, quotes and backslashes,
 * valid 2-, 3- and 4-byte UTF-8, white space of every kind, and stray bytes */
static size_t random_string(unsigned char *s, size_t cap)
{
	static const char *const pieces[] = {
		" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f", "\"", "\\", "\x7f", "\x01",
		"\xc2\x85", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x8a", "\xe2\x80\x8b",
		"\xe2\x80\xa8", "\xe3\x80\x80", "\xef\xbb\xbf", "\xc3\xa9", "\xf0\x9f\x98\x80",
		"\xf4\x8f\xbf\xbf", "\xed\xa0\x80", "\xc0\xaf", "\xe2\x82", "\xf0\x9f\x98", "\x80",
		"\xff", "\xf5\x80\x80\x80", "\xe0\x80\xaf", "\xc2", "a", "Z", "0", "def f():",
	};
	size_t n = 0, k = next_rand() % 12;
	for (size_t i = 0; i < k; i++) {
		const char *p = pieces[next_rand() % (sizeof pieces / sizeof *pieces)];
		size_t l = strlen(p);
		if (n + l > cap)
			break;
		memcpy(s + n, p, l);
		n += l;
	}
	return n;
}

enum { NSTR = 400 };

static const char pystr_script[] =
	"import json, sys\n"
	"for line in open(sys.argv[1]):\n"
	"    b = bytes.fromhex(line.strip())\n"
	"    s = b.decode('utf-8', 'surrogateescape')\n"
	"    print(json.dumps(s))\n"
	"    print(s.strip().encode('utf-8', 'surrogateescape').hex())\n"
	"    print(b.decode('utf-8', 'replace').encode('utf-8').hex())\n"
	"    print(json.dumps({'task_id': 'T/1', 'completion': b.decode('utf-8', 'replace')}))\n";

static void hex_of(struct buf *h, const void *p, size_t n)
{
	buf_reset(h);
	for (size_t i = 0; i < n; i++)
		buf_printf(h, "%02x", ((const unsigned char *)p)[i]);
	buf_putc(h, 0);
}

/* the next line of Python's output, NUL-terminated in place */
static char *next_line(char **cur)
{
	char *l = *cur, *e = strchr(l, '\n');
	if (!e)
		return l;
	*e = 0;
	*cur = e + 1;
	return l;
}

static void test_pystr_strings(const char *dir)
{
	unsigned char s[NSTR][64];
	size_t len[NSTR];
	char *in = xasprintf("%s/strings.hex", dir);
	FILE *f = fopen(in, "w");
	for (int i = 0; i < NSTR; i++) {
		len[i] = random_string(s[i], sizeof s[i]);
		put_hex(f, s[i], len[i]);
	}
	fclose(f);
	char *out = run_python(dir, pystr_script, in, "pystr's references");
	if (!out) {
		free(in);
		return;
	}
	int bad_json = 0, bad_strip = 0, bad_dec = 0, bad_line = 0;
	struct buf b = { 0 }, h = { 0 }, t = { 0 };
	char *cur = out;
	struct he_problem p = { .task_id = { "T/1", 3 } };
	for (int i = 0; i < NSTR; i++) {
		char *want_json = next_line(&cur), *want_strip = next_line(&cur);
		char *want_dec = next_line(&cur), *want_line = next_line(&cur);
		buf_reset(&b);
		pystr_json(&b, (const char *)s[i], len[i]);
		buf_putc(&b, 0);
		if (strcmp((char *)b.p, want_json) && !bad_json++)
			diag("json.dumps: got %s, want %s", (char *)b.p, want_json);
		size_t bb, ee;
		pystr_strip((const char *)s[i], len[i], &bb, &ee);
		hex_of(&h, s[i] + bb, ee - bb);
		if (strcmp((char *)h.p, want_strip) && !bad_strip++)
			diag("strip: got %s, want %s", (char *)h.p, want_strip);
		pystr_decode_replace(&t, s[i], len[i]);
		hex_of(&h, t.p, t.len);
		if (strcmp((char *)h.p, want_dec) && !bad_dec++)
			diag("decode: got %s, want %s", (char *)h.p, want_dec);
		/* gen_lines: one sample of these bytes, written as a samples-file line */
		struct complete_sample cs = { .n_tokens = 7 };
		buf_put(&cs.text, s[i], len[i]);
		struct complete_result r = { .n = 1, .s = &cs };
		buf_reset(&b);
		uint64_t tok = gen_lines(&b, &p, &r, 1, 0);
		int nl = b.len > 0 && b.p[b.len - 1] == '\n';
		if (nl)
			b.len--;
		buf_putc(&b, 0);
		if ((tok != 7 || !nl || strcmp((char *)b.p, want_line)) && !bad_line++)
			diag("sample line: got %s, want %s", (char *)b.p, want_line);
		buf_free(&cs.text);
	}
	ok(!bad_json, "pystr_json equals json.dumps on %d strings (%d differ)", NSTR, bad_json);
	ok(!bad_strip, "pystr_strip equals str.strip (%d differ)", bad_strip);
	ok(!bad_dec, "pystr_decode_replace equals bytes.decode('utf-8', 'replace') (%d differ)",
	   bad_dec);
	ok(!bad_line, "gen_lines writes json.dumps's sample line of the decoded text (%d differ)",
	   bad_line);
	buf_free(&b);
	buf_free(&h);
	buf_free(&t);
	free(out);
	free(in);
}

static void test_pystr_isspace(const char *dir)
{
	char *in = xasprintf("%s/empty", dir);
	fclose(fopen(in, "w"));
	char *out = run_python(dir,
			       "import sys\n"
			       "print(' '.join(str(c) for c in range(0x110000) if chr(c).isspace()))\n",
			       in, "str.isspace");
	if (!out) {
		free(in);
		return;
	}
	struct buf b = { 0 };
	for (uint32_t c = 0; c < 0x110000; c++)
		if (pystr_isspace(c))
			buf_printf(&b, "%s%u", b.len ? " " : "", c);
	buf_puts(&b, "\n");
	buf_putc(&b, 0);
	is_str((char *)b.p, out, "pystr_isspace holds for exactly the characters str.isspace does");
	buf_free(&b);
	free(out);
	free(in);
}

static void test_pystr_float(const char *dir)
{
	enum { NF = 2000 };
	double v[NF];
	static const double edge[] = { 0.0, -0.0, 1.0, 0.1, 0.2, 1e16, 1e15, 9999999999999998.0,
				       1e-4, 1e-5, 0.0001234, 123456789012345678.0, 5e-324,
				       1.7976931348623157e308, 2.5, 1.5e300, -3.25e-7, 100.0 };
	size_t ne = sizeof edge / sizeof *edge;
	char *in = xasprintf("%s/floats.hex", dir);
	FILE *f = fopen(in, "w");
	for (size_t i = 0; i < NF; i++) {
		if (i < ne) {
			v[i] = edge[i];
		} else if (i % 3) {
			uint64_t bits = next_rand();
			memcpy(&v[i], &bits, sizeof v[i]);
		} else {
			/* around the fixed/exponent switch */
			v[i] = ldexp((double)(next_rand() >> 11), -53) * pow(10, (int)(next_rand() % 40) - 20);
		}
		fprintf(f, "%a\n", v[i]);
	}
	fclose(f);
	char *out = run_python(dir,
			       "import json, sys\n"
			       "for l in open(sys.argv[1]):\n"
			       "    print(json.dumps(float.fromhex(l.strip())))\n",
			       in, "repr(float)");
	if (!out) {
		free(in);
		return;
	}
	char *cur = out;
	int bad = 0;
	struct buf b = { 0 };
	for (size_t i = 0; i < NF; i++) {
		char *want = next_line(&cur);
		buf_reset(&b);
		pystr_json_float(&b, v[i]);
		buf_putc(&b, 0);
		if (strcmp((char *)b.p, want) && !bad++)
			diag("float %a: got %s, want %s", v[i], (char *)b.p, want);
	}
	ok(!bad, "pystr_json_float equals json.dumps on %d doubles, NaN and infinities among "
	   "them (%d differ)", NF, bad);
	buf_free(&b);
	free(out);
	free(in);
}

/* ---- seccomp ---- */

static int denied(const char *name)
{
	for (size_t i = 0; i < scfilter_ndenied; i++)
		if (!strcmp(scfilter_denied[i], name))
			return 1;
	return 0;
}

static void test_seccomp_table(void)
{
	/* man/cp-humaneval.1, THE SANDBOX: what the filter refuses whatever the arguments */
	static const char *const documented[] = {
		"unshare", "setns", "mount", "umount2", "chroot", "pivot_root", "ptrace",
		"process_vm_readv", "process_vm_writev", "bpf", "perf_event_open", "userfaultfd",
		"io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
		"request_key", "init_module", "finit_module", "delete_module", "kexec_load",
		"kexec_file_load", "reboot", "swapon", "swapoff", "settimeofday", "clock_settime",
		"clock_adjtime", "adjtimex", "syslog", "open_by_handle_at", "personality",
	};
	int missing = 0;
	for (size_t i = 0; i < sizeof documented / sizeof *documented; i++)
		if (!denied(documented[i]) && !missing++)
			diag("'%s' is not refused", documented[i]);
	ok(!missing, "every system call the man page lists is in the deny table");
	int dup = 0;
	for (size_t i = 0; i < scfilter_ndenied; i++)
		for (size_t k = i + 1; k < scfilter_ndenied; k++)
			dup += !strcmp(scfilter_denied[i], scfilter_denied[k]);
	ok(!dup, "no system call listed twice");
	ok(!denied("read") && !denied("clone") && !denied("socket") && !denied("execve") &&
	   !denied("clone3"), "what programs need (and what is refused by argument) is not in it");
	uint64_t all = 0;
	for (size_t i = 0; i < scfilter_nclone_flags; i++)
		all |= scfilter_clone_flags[i];
	ok(all == (uint64_t)(CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
			     CLONE_NEWUTS | CLONE_NEWCGROUP),
	   "clone is refused with each of the seven namespace flags");
	struct buf b = { 0 };
	int built = !scfilter_build(&b);
	ok(built && b.len > 0 && b.len % sizeof(struct sock_filter) == 0,
	   "the filter builds into whole BPF instructions (%zu)", b.len / sizeof(struct sock_filter));
	buf_free(&b);
}

/* What the child checks under the filter: one byte each, 1 when it behaved. */
static void seccomp_child(int fd, const struct buf *bpf)
{
	struct sock_fprog prog = { (unsigned short)(bpf->len / sizeof(struct sock_filter)),
				   (struct sock_filter *)bpf->p };
	char r[10] = { 0 };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
		r[0] = 2; /* the kernel refuses filters here */
		(void)!write(fd, r, sizeof r);
		_exit(0);
	}
	r[0] = 1;
	r[1] = unshare(CLONE_NEWUTS) == -1 && errno == EPERM;
	r[2] = socket(AF_INET, SOCK_STREAM, 0) == -1 && errno == EPERM;
	int u = socket(AF_UNIX, SOCK_STREAM, 0);
	r[3] = u >= 0;
	if (u >= 0)
		close(u);
	r[4] = syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS;
	long rc = syscall(SYS_clone, (long)(CLONE_NEWNET | SIGCHLD), 0L, 0L, 0L, 0L);
	if (rc == 0)
		_exit(0); /* the filter let it through: the clone leaves at once */
	r[5] = rc == -1 && errno == EPERM;
	r[6] = personality(0xffffffff) == -1 && errno == EPERM;
	char c = 'x';
	r[7] = ioctl(fd, TIOCSTI, &c) == -1 && errno == EPERM;
	pid_t pid = fork();
	if (pid == 0)
		_exit(7);
	int st = 0;
	r[8] = pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 7;
	r[9] = getppid() > 0 && access("/", R_OK) == 0;
	(void)!write(fd, r, sizeof r);
	_exit(0);
}

static void test_seccomp_child(void)
{
	struct buf bpf = { 0 };
	if (scfilter_build(&bpf)) {
		ok(0, "the filter builds");
		return;
	}
	int p[2];
	if (pipe(p)) {
		ok(0, "pipe");
		return;
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		seccomp_child(p[1], &bpf);
	}
	close(p[1]);
	char r[10] = { 0 };
	ssize_t n = read(p[0], r, sizeof r);
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	buf_free(&bpf);
	if (n == (ssize_t)sizeof r && r[0] == 2) {
		for (int i = 0; i < 9; i++)
			ok(1, "# SKIP this kernel or container refuses seccomp filters");
		return;
	}
	ok(n == (ssize_t)sizeof r && r[0] == 1, "a forked child installs the filter");
	ok(r[1], "under it, unshare is refused with EPERM");
	ok(r[2], "an AF_INET socket is refused with EPERM");
	ok(r[3], "an AF_UNIX socket is allowed");
	ok(r[4], "clone3 answers ENOSYS");
	ok(r[5], "clone with CLONE_NEWNET is refused with EPERM");
	ok(r[6], "personality is refused with EPERM");
	ok(r[7], "the TIOCSTI ioctl is refused with EPERM (not ENOTTY)");
	ok(r[8] && r[9], "fork, wait, getppid and access still work");
}

/* ---- generation's logic ---- */

static uint64_t splitmix(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void test_generate_logic(void)
{
	int bad = 0;
	for (uint64_t seed = 0; seed < 4; seed++)
		for (size_t p = 0; p < 5; p++)
			for (size_t c = 0; c < 5; c++)
				bad += gen_seed(seed, p, c) != splitmix(splitmix(splitmix(seed) ^ p) ^ c);
	ok(!bad, "batch C of problem P draws from mix(mix(mix(seed) ^ P) ^ C), as the man page says");
	bad = 0;
	for (uint32_t n = 1; n <= 40; n++)
		for (uint32_t batch = 1; batch <= 12; batch++) {
			uint32_t done = 0, batches = 0, dec;
			while (done < n) {
				uint32_t got = gen_batch(n, done, batch, 0, &dec);
				bad += got != dec || dec == 0 || dec > batch;
				done += got;
				batches++;
			}
			bad += done != n || batches != (n + batch - 1) / batch;
			uint32_t got = gen_batch(n, 0, batch, 1, &dec);
			bad += got != n || dec != 1;
		}
	ok(!bad, "batches: ceil(n / batch) of at most batch samples, n in all; greedy decodes one");
	static const char *const codex[] = { "\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif" };
	int same = gen_nstops == sizeof codex / sizeof *codex;
	for (size_t i = 0; same && i < gen_nstops; i++)
		same = !strcmp(gen_stops[i], codex[i]);
	ok(same, "the stop strings are CodeParrot's and Codex's six");
	/* greedy: one decoded sample stands for all, its tokens counted once */
	struct complete_sample cs = { .n_tokens = 5 };
	buf_puts(&cs.text, "    return 1");
	struct complete_result r = { .n = 1, .s = &cs };
	struct he_problem p = { .task_id = { "HumanEval/9", 11 } };
	struct buf b = { 0 };
	uint64_t tok = gen_lines(&b, &p, &r, 3, 1);
	buf_putc(&b, 0);
	const char *line = "{\"task_id\": \"HumanEval/9\", \"completion\": \"    return 1\"}\n";
	char *want = xasprintf("%s%s%s", line, line, line);
	is_str((char *)b.p, want, "greedy: the one answer written three times");
	is_int(tok, 5, "... its tokens counted once");
	free(want);
	buf_free(&b);
	buf_free(&cs.text);
	struct gen_opts g;
	gen_defaults(&g);
	ok(g.n == 200 && g.max_tokens == 256 && g.temperature == 0.2 && g.top_p == 0.95 &&
	   g.top_k == 0 && g.batch == 50 && g.seed == 0 && !strcmp(g.device, "cpu") && g.jobs >= 1 &&
	   g.rows == 0,
	   "defaults as -h documents them (n 200, 256 tokens, T 0.2, top-p 0.95, batch 50, cpu, "
	   "rows by the machine)");
	uint64_t G = 1ull << 30;
	is_int(gen_default_rows(1, 64 * G, 1 << 20), 32, "--batch-rows on the CPU: 32");
	is_int(gen_default_rows(1, 8 * G, G / 4), 8, "... fewer where the cache passes a quarter "
	       "of the memory");
	is_int(gen_default_rows(0, 140 * G, 80ull << 20), 256, "on a device: 256");
	is_int(gen_default_rows(0, 20 * G, 80ull << 20), 64, "... within a quarter of its memory");
	is_int(gen_default_rows(0, G, 2 * G), 1, "... and never none");
}

/* ---- the judge, the results and the summary ---- */

static struct he_str str_of(const char *s)
{
	struct he_str h = { xstrdup(s), strlen(s) };
	return h;
}

static void test_judge(const char *dir)
{
	struct judge_opts o = { .timeout = 1.0, .memory = 1ULL << 30, .jobs = 2, .unsafe = 1 };
	struct judge j;
	judge_open(&j, &o);
	ok(j.sb && j.python, "the judge opens (python %s, %s)", j.python, j.warm ? "warm" : "cold");
	static const char *const comp[] = { "    return x + 1", "    raise ValueError('no ' + str(x))",
					    "    while True:\n        pass", "    return x" };
	static const char *const want[] = { "passed", "failed: no 41", "timed out", "failed: " };
	struct he_problems ps = { 0 };
	ps.n = 2;
	ps.v = xcalloc(2, sizeof *ps.v);
	for (size_t i = 0; i < 2; i++) {
		ps.v[i].task_id = str_of(i ? "t/1" : "t/0");
		ps.v[i].prompt = str_of("def f(x):\n");
		ps.v[i].test = str_of("def check(f):\n    assert f(41) == 42\n");
		ps.v[i].entry_point = str_of("f");
	}
	/* problem 0: the first two completions; problem 1: the last two */
	struct he_samples ss = { xcalloc(4, sizeof *ss.v), 4 };
	for (size_t i = 0; i < 4; i++) {
		ss.v[i].problem = i / 2;
		ss.v[i].completion = str_of(comp[i]);
		struct buf m = { 0 };
		buf_printf(&m, "\"task_id\": \"t/%zu\", \"completion\": ", i / 2);
		pystr_json(&m, comp[i], strlen(comp[i]));
		buf_putc(&m, 0);
		ss.v[i].members = (char *)m.p;
		ss.v[i].line = i + 1;
	}
	struct eval_opts eo = { .samples = "mem", .judge = o };
	struct verdict v[4] = { { 0 } };
	eval_run(&j, &ps, &ss, v, &eo);
	int right = 0;
	for (size_t i = 0; i < 4; i++) {
		right += v[i].text && !strcmp(v[i].text, want[i]) && v[i].passed == !i;
		if (!v[i].text || strcmp(v[i].text, want[i]))
			diag("sample %zu: got '%s', want '%s'", i, v[i].text ? v[i].text : "", want[i]);
	}
	is_int(right, 4, "verdicts: passed, failed with the message, timed out, failed");

	char *path = xasprintf("%s/results.jsonl", dir);
	eval_write_results(path, &ss, v);
	FILE *f = fopen(path, "r");
	char line[512];
	int lines_ok = 0;
	for (size_t i = 0; f && fgets(line, sizeof line, f); i++) {
		char *w = xasprintf("{%s, \"result\": \"%s\", \"passed\": %s}\n", ss.v[i].members,
				    want[i], i ? "false" : "true");
		lines_ok += i < 4 && !strcmp(line, w);
		free(w);
	}
	if (f)
		fclose(f);
	is_int(lines_ok, 4, "the results file: each sample's members, then result and passed");
	int stray = 0;
	DIR *d = opendir(dir);
	for (struct dirent *e; d && (e = readdir(d));)
		stray += !strncmp(e->d_name, ".results.jsonl.tmp", 18);
	if (d)
		closedir(d);
	is_int(stray, 0, "no temporary is left beside it");

	/* pass@1 = mean(1/2, 0/2); pass@2 = mean(1, 0); pass@3 is left out with 2 samples */
	uint64_t ks[] = { 1, 2, 3 };
	struct buf b = { 0 };
	eval_summary(&b, ks, 3, &ps, &ss, v, 1);
	buf_putc(&b, 0);
	is_str((char *)b.p, "{\"pass@1\": 0.25, \"pass@2\": 0.5, \"problems\": 2, \"samples\": 4, "
	       "\"passed\": 1, \"failed\": 2, \"timed_out\": 1}\n", "the summary line");
	buf_free(&b);
	for (size_t i = 0; i < 4; i++)
		free(v[i].text);
	free(path);
	he_samples_free(&ss);
	ps.order = NULL;
	he_problems_free(&ps);
	judge_close(&j);
}

/* ---- the candidates' private root ---- */

/* one program judged cold in a fresh judge; its verdict (free it) */
static char *judge_one(struct judge *j, const char *prog)
{
	struct sbx_result r;
	char *why = NULL;
	if (judge_run(j, prog, strlen(prog), &r, &why)) {
		diag("judge_run: %s", why);
		free(why);
		return xstrdup("");
	}
	buf_putc(&r.report, 0);
	char *v = xstrdup((char *)r.report.p);
	sbx_result_free(&r);
	return v;
}

/* A world-readable file the host sees (checked here) is not in the candidate's root, nor /sys
 * or /dev/ptmx; its /proc/1/cmdline is not our command line (read here from /proc/self). */
static void test_judge_root(void)
{
	char planted[] = "/var/tmp/test-eval-planted.XXXXXX";
	int fd = mkstemp(planted);
	if (fd < 0 || write(fd, "secret\n", 7) != 7 || fchmod(fd, 0644)) {
		ok(1, "# skip cannot plant a file in /var/tmp");
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	struct judge_opts o = { .timeout = 2.0, .memory = 1ULL << 30, .jobs = 1, .cold = 1, .unsafe = 1 };
	struct judge j;
	judge_open(&j, &o);
	if (!(sbx_protections(j.sb) & SBX_P_MNTNS)) {
		ok(1, "# skip no namespace sandbox here");
		judge_close(&j);
		unlink(planted);
		return;
	}
	ok(!access(planted, R_OK), "the planted file is readable on the host");
	char *prog = xasprintf("import os\n"
			       "def tryopen(p):\n"
			       "    try:\n"
			       "        open(p, 'rb').read(1)\n"
			       "        return 'read'\n"
			       "    except OSError as e:\n"
			       "        return e.strerror\n"
			       "raise AssertionError(' | '.join([tryopen('%s'), str(os.path.exists('/sys')),\n"
			       "    tryopen('/dev/ptmx'), ','.join(sorted(os.listdir('/dev')))]))\n",
			       planted);
	char *v = judge_one(&j, prog);
	is_str(v, "failed: No such file or directory | False | No such file or directory | "
	       "null,urandom,zero", "the candidate finds no host file, no /sys, no /dev/ptmx");
	free(v);
	free(prog);

	char self[4096] = "";
	int sfd = open("/proc/self/cmdline", O_RDONLY);
	ssize_t n = sfd < 0 ? -1 : read(sfd, self, sizeof self - 1);
	if (sfd >= 0)
		close(sfd);
	for (ssize_t i = 0; i < n - 1; i++)
		if (!self[i])
			self[i] = ' ';
	v = judge_one(&j, "c = open('/proc/1/cmdline', 'rb').read()\n"
			  "raise AssertionError(c.replace(bytes(1), b' ').decode().strip())\n");
	ok(n > 0 && strncmp(v, "failed: ", 8) == 0 && !strstr(v, self) && !strstr(v, "test-eval"),
	   "/proc/1/cmdline is not ours ('%s' against '%s')", v, self);
	free(v);
	judge_close(&j);
	unlink(planted);
}

int main(int argc, char **argv)
{
	(void)argc;
	cp_setprogname(argv[0]);
	char tmpl[] = "/tmp/test-eval.XXXXXX";
	char *dir = mkdtemp(tmpl);
	if (!dir) {
		perror("mkdtemp");
		return 1;
	}
	test_pystr_strings(dir);
	test_pystr_isspace(dir);
	test_pystr_float(dir);
	test_seccomp_table();
	test_seccomp_child();
	test_generate_logic();
	test_judge(dir);
	test_judge_root();
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd))
		diag("cannot remove %s", dir);
	free(cmd);
	return done_testing();
}
