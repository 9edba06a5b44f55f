/* test-request: cp-complete's requests and answers. Requests: the defaults where a field is
 * absent or null, every field's bounds (the last value in, the first out), wrong types, and
 * the error messages the tool gives for each. Answers: the completion object, --jsonl's
 * choices, the error object, the command line's samples and a score, each rendered and
 * parsed back with jansson, the fields held against the result they were made from. The
 * server's fields (stream, echo, logprobs, best_of, stream_options) and their errors. */
#include "infer/api.h"
#include "infer/request.h"
#include "tap.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct complete_params defaults(void)
{
	struct complete_params d;
	complete_params_default(&d);
	d.max_tokens = 77;
	d.temperature = 0.5;
	d.seed = 99;
	return d;
}

/* parse JSON text as a request: 0 or -1; *ERR the message (malloc'd) */
static int parse(const char *text, uint64_t max_n, struct complete_request *r, char **err)
{
	json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	struct complete_params d = defaults();
	*err = NULL;
	int ret = request_parse(j, &d, max_n, r, err);
	/* the prompt lives in the JSON: keep a copy for the caller */
	if (!ret) {
		char *copy = malloc(r->prompt_len + 1);
		memcpy(copy, r->prompt, r->prompt_len + 1);
		r->prompt = copy;
	}
	json_decref(j);
	return ret;
}

static void refused(const char *text, uint64_t max_n, const char *want)
{
	struct complete_request r;
	char *err;
	int ret = parse(text, max_n, &r, &err);
	ok(ret == -1, "refused: %s", text);
	is_str(err, want, "  with the message");
	free(err);
	request_free(&r);
}

static void accepted(const char *text, uint64_t max_n, struct complete_request *r)
{
	char *err;
	int ret = parse(text, max_n, r, &err);
	ok(ret == 0, "accepted: %s", text);
	if (err)
		diag("error: %s", err);
	free(err);
}

static void test_defaults(void)
{
	struct complete_params d = defaults();
	struct complete_request r;
	accepted("{\"prompt\": \"def f(x):\"}", 16, &r);
	ok(r.prompt_len == 9 && !memcmp(r.prompt, "def f(x):", 9), "the prompt");
	ok(r.p.n == d.n && r.p.max_tokens == d.max_tokens && r.p.temperature == d.temperature &&
	   r.p.top_k == d.top_k && r.p.top_p == d.top_p && r.p.seed == d.seed && r.p.n_stop == 0,
	   "absent fields keep the defaults");
	free((char *)r.prompt);
	request_free(&r);
	accepted("{\"prompt\": [\"a\\u0000b\"], \"n\": null, \"max_tokens\": null, \"temperature\": null,"
		 " \"top_k\": null, \"top_p\": null, \"seed\": null, \"stop\": null}", 16, &r);
	ok(r.prompt_len == 3 && !memcmp(r.prompt, "a\0b", 3), "an array of one string; NUL kept");
	ok(r.p.n == d.n && r.p.max_tokens == d.max_tokens && r.p.temperature == d.temperature &&
	   r.p.seed == d.seed && r.p.n_stop == 0, "null fields keep the defaults");
	free((char *)r.prompt);
	request_free(&r);
	struct complete_params s;
	request_server_defaults(&s);
	ok(s.max_tokens == 16 && s.temperature == 1 && s.n == 1 && s.top_p == 1 && s.top_k == 0,
	   "the server's defaults are OpenAI's: 16 tokens at temperature 1");
}

static void test_fields(void)
{
	struct complete_request r;
	accepted("{\"prompt\": \"x\", \"n\": 4, \"max_tokens\": 16777216, \"temperature\": 100,"
		 " \"top_k\": 4294967295, \"top_p\": 1e-9, \"seed\": 9223372036854775807,"
		 " \"stop\": [\"\\n\", \"zz\"]}", 4, &r);
	ok(r.p.n == 4 && r.p.max_tokens == 16777216 && r.p.temperature == 100 &&
	   r.p.top_k == 4294967295u && r.p.top_p == 1e-9 && r.p.seed == 9223372036854775807ull,
	   "every field at its upper (top_p: lower) bound");
	ok(r.p.n_stop == 2 && r.p.stop == (const char *const *)r.stop && !strcmp(r.p.stop[0], "\n") &&
	   !strcmp(r.p.stop[1], "zz"), "two stop strings, in the params");
	free((char *)r.prompt);
	request_free(&r);
	accepted("{\"prompt\": \"x\", \"temperature\": 0, \"max_tokens\": 0, \"top_p\": 1, \"seed\": 0,"
		 " \"stop\": \"abc\"}", 4, &r);
	ok(r.p.temperature == 0 && r.p.max_tokens == 0 && r.p.top_p == 1 && r.p.seed == 0,
	   "lower bounds");
	ok(r.p.n_stop == 1 && !strcmp(r.p.stop[0], "abc"), "one stop string as a string");
	free((char *)r.prompt);
	request_free(&r);
	accepted("{\"prompt\": \"x\", \"temperature\": 1}", 4, &r);
	ok(r.p.temperature == 1, "an integer is a number");
	free((char *)r.prompt);
	request_free(&r);
}

/* requests refused (with "n" at most 4), and the message for each */
static const struct { const char *text, *want; } refusals[] = {
	{ "[1]",
	  "the request must be a JSON object" },
	{ "\"x\"",
	  "the request must be a JSON object" },
	{ "{}",
	  "'prompt' must be a string (or an array of one string)" },
	{ "{\"prompt\": 5}",
	  "'prompt' must be a string (or an array of one string)" },
	{ "{\"prompt\": [\"a\", \"b\"]}",
	  "'prompt' must be a string (or an array of one string)" },
	{ "{\"prompt\": [5]}",
	  "'prompt' must be a string (or an array of one string)" },
	{ "{\"prompt\": \"x\", \"n\": 5}",
	  "'n' must be an integer from 1 to 4" },
	{ "{\"prompt\": \"x\", \"n\": 0}",
	  "'n' must be an integer from 1 to 4" },
	{ "{\"prompt\": \"x\", \"n\": 2.0}",
	  "'n' must be an integer from 1 to 4" },
	{ "{\"prompt\": \"x\", \"n\": \"2\"}",
	  "'n' must be an integer from 1 to 4" },
	{ "{\"prompt\": \"x\", \"max_tokens\": 16777217}",
	  "'max_tokens' must be an integer from 0 to 16777216" },
	{ "{\"prompt\": \"x\", \"max_tokens\": -1}",
	  "'max_tokens' must be an integer from 0 to 16777216" },
	{ "{\"prompt\": \"x\", \"top_k\": 4294967296}",
	  "'top_k' must be an integer from 0 to 4294967295" },
	{ "{\"prompt\": \"x\", \"seed\": -1}",
	  "'seed' must be an integer from 0 to 9223372036854775807" },
	{ "{\"prompt\": \"x\", \"temperature\": 100.5}",
	  "'temperature' must be a number from 0 to 100" },
	{ "{\"prompt\": \"x\", \"temperature\": \"1\"}",
	  "'temperature' must be a number from 0 to 100" },
	{ "{\"prompt\": \"x\", \"top_p\": 0}",
	  "'top_p' must be a number from 1e-09 to 1" },
	{ "{\"prompt\": \"x\", \"top_p\": 1.01}",
	  "'top_p' must be a number from 1e-09 to 1" },
	{ "{\"prompt\": \"x\", \"stop\": 5}",
	  "'stop' must be a string or an array of strings" },
	{ "{\"prompt\": \"x\", \"stop\": \"\"}",
	  "'stop' strings must be non-empty strings" },
	{ "{\"prompt\": \"x\", \"stop\": [\"a\", 1]}",
	  "'stop' strings must be non-empty strings" },
	{ "{\"prompt\": \"x\", \"stop\": [\"a\\u0000b\"]}",
	  "'stop' strings must be non-empty strings" },
	{ "{\"prompt\": \"x\", \"stop\": [\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\","
	  "\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\",\"17\"]}",
	  "'stop' holds at most 16 strings" },
};

static void test_refused(void)
{
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++)
		refused(refusals[i].text, 4, refusals[i].want);
}

/* a result of two samples, the texts with bytes JSON must escape */
static void make_result(struct complete_result *res)
{
	static uint32_t ids0[] = { 5, 6, 7 }, ids1[] = { 9 };
	memset(res, 0, sizeof(*res));
	res->n = 2;
	res->s = calloc(2, sizeof(*res->s));
	buf_puts(&res->s[0].text, "a \"q\"\n\tb\\");
	res->s[0].finish = "length";
	res->s[0].n_tokens = 3;
	res->s[0].ids = ids0;
	buf_puts(&res->s[1].text, "caf\xc3\xa9");
	res->s[1].finish = "stop";
	res->s[1].n_tokens = 1;
	res->s[1].ids = ids1;
	res->prompt_tokens = 11;
}

static void free_result(struct complete_result *res)
{
	for (uint32_t i = 0; i < res->n; i++)
		buf_free(&res->s[i].text);
	free(res->s);
}

static const char *str_of(json_t *o, const char *k)
{
	json_t *x = json_object_get(o, k);
	return json_is_string(x) ? json_string_value(x) : NULL;
}

static long long int_of(json_t *o, const char *k)
{
	json_t *x = json_object_get(o, k);
	return json_is_integer(x) ? json_integer_value(x) : -12345;
}

static void check_choices(json_t *j, const struct complete_result *res, int openai)
{
	json_t *ch = json_object_get(j, "choices");
	ok(json_is_array(ch) && json_array_size(ch) == res->n, "  %u choices", res->n);
	uint64_t gen = 0;
	for (uint32_t i = 0; i < res->n && i < json_array_size(ch); i++) {
		json_t *c = json_array_get(ch, i);
		const struct complete_sample *s = &res->s[i];
		const char *t = str_of(c, "text");
		ok(int_of(c, "index") == i && t && strlen(t) == s->text.len &&
		   !memcmp(t, s->text.p, s->text.len), "  choice %u: index and text", i);
		is_str(str_of(c, "finish_reason"), s->finish, "  choice %u: finish_reason", i);
		is_int(int_of(c, "tokens"), s->n_tokens, "  choice %u: tokens", i);
		json_t *lp = json_object_get(c, "logprobs");
		ok(openai ? json_is_null(lp) : lp == NULL, "  choice %u: logprobs %s", i,
		   openai ? "null" : "absent");
		gen += s->n_tokens;
	}
	json_t *u = json_object_get(j, "usage");
	ok(int_of(u, "prompt_tokens") == res->prompt_tokens &&
	   int_of(u, "completion_tokens") == (long long)gen &&
	   int_of(u, "total_tokens") == (long long)(gen + res->prompt_tokens), "  usage adds up");
}

static json_t *load(const struct buf *b, const char *what)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)b->p, b->len, 0, &je);
	ok(j && b->len && b->p[b->len - 1] == '\n', "%s is JSON ending in a newline", what);
	if (!j)
		diag("%s: %.*s", je.text, (int)b->len, (const char *)b->p);
	return j;
}

static void test_answers(void)
{
	struct complete_result res;
	make_result(&res);
	struct buf b = { 0 };
	struct complete_request rq = { .n_out = res.n, .logprobs = -1 };
	struct api_answer a = { .rq = &rq, .model = "runs/m \"1\"", .id = 42,
				.created = 1700000000, .res = &res };
	api_put_completion(&b, &a);
	json_t *j = load(&b, "the completion object");
	is_str(str_of(j, "id"), "cmpl-42", "  id");
	is_str(str_of(j, "object"), "text_completion", "  object");
	is_int(int_of(j, "created"), 1700000000, "  created");
	is_str(str_of(j, "model"), "runs/m \"1\"", "  model");
	check_choices(j, &res, 1);
	json_decref(j);

	buf_reset(&b);
	buf_putc(&b, '{');
	request_put_choices(&b, &res, 0);
	buf_puts(&b, "}\n");
	j = load(&b, "--jsonl's choices");
	check_choices(j, &res, 0);
	json_decref(j);

	buf_reset(&b);
	request_put_error(&b, "rate_limit_error", "too \"many\"\n");
	j = load(&b, "the error object");
	json_t *e = json_object_get(j, "error");
	is_str(str_of(e, "message"), "too \"many\"\n", "  message");
	is_str(str_of(e, "type"), "rate_limit_error", "  type");
	ok(json_object_size(j) == 1 && json_object_size(e) == 2, "  nothing else");
	json_decref(j);

	buf_reset(&b);
	request_put_samples(&b, &res, 0);
	static const char text_samples[] = "a \"q\"\n\tb\\\n---\ncaf\xc3\xa9\n";
	ok(b.len == sizeof text_samples - 1 && !memcmp(b.p, text_samples, b.len),
	   "text samples: texts, '---' between");
	buf_reset(&b);
	request_put_samples(&b, &res, 1);
	const char *nl = memchr(b.p, '\n', b.len);
	j = nl ? json_loadb((const char *)b.p, (size_t)(nl - (const char *)b.p), 0, NULL) : NULL;
	json_t *ids = json_object_get(j, "ids");
	ok(json_array_size(ids) == 3 && json_integer_value(json_array_get(ids, 0)) == 5 &&
	   json_integer_value(json_array_get(ids, 2)) == 7 && int_of(j, "index") == 0,
	   "JSON samples: one object a line with the ids");
	json_decref(j);
	j = nl ? json_loadb(nl + 1, b.len - (size_t)(nl + 1 - (const char *)b.p), 0, NULL) : NULL;
	is_str(str_of(j, "text"), "caf\xc3\xa9", "  the second line is the second sample");
	json_decref(j);
	buf_free(&b);
	free_result(&res);
}

static void test_score(void)
{
	struct bpe m;
	bpe_init(&m);
	for (int c = 0; c < 256; c++) {
		unsigned char ch = (unsigned char)c;
		bpe_add_token(&m, &ch, 1, (uint32_t)c);
	}
	bpe_add_token(&m, "de", 2, 256);
	bpe_add_token(&m, BPE_EOT, strlen(BPE_EOT), 257);
	bpe_finish(&m, "test");
	uint32_t ids[] = { 256, 'f', '\n', '"' };
	/* p = 0.61: plain; 0.0067: red, but a newline is never coloured; 0.0003: bold red */
	double lp[] = { NAN, -0.5, -5, -8 };
	struct complete_score sc = { .n = 4, .ids = ids, .logprob = lp, .sum = -13.5 };
	struct buf b = { 0 };
	request_put_score(&b, &m, &sc, 0);
	json_t *j = load(&b, "the score");
	json_t *t = json_object_get(j, "tokens");
	const char *want[] = { "de", "f", "\n", "\"" };
	int good = json_array_size(t) == 4;
	for (size_t i = 0; good && i < 4; i++) {
		json_t *x = json_array_get(t, i), *l = json_object_get(x, "logprob");
		good = int_of(x, "id") == ids[i] && str_of(x, "text") && !strcmp(str_of(x, "text"), want[i]) &&
		       (i ? json_is_number(l) && json_number_value(l) == lp[i] : json_is_null(l));
	}
	ok(good, "  every token: id, text, log-probability (null for the first)");
	is_int(int_of(j, "n_tokens"), 4, "  n_tokens");
	is_int(int_of(j, "scored"), 3, "  scored");
	double mean = -13.5 / 3;
	ok(json_number_value(json_object_get(j, "sum_logprob")) == -13.5, "  sum");
	ok(fabs(json_number_value(json_object_get(j, "mean_logprob")) - mean) < 1e-15, "  mean");
	ok(fabs(json_number_value(json_object_get(j, "perplexity")) - exp(-mean)) < 1e-12, "  perplexity");
	json_decref(j);
	buf_reset(&b);
	request_put_score(&b, &m, &sc, 1);
	buf_putc(&b, 0);
	char want_view[256];
	snprintf(want_view, sizeof want_view, "def\n\033[1;97;41m\"\033[0m\n-- 4 tokens, mean "
		 "log-probability %.4f, perplexity %.3f; ", mean, exp(-mean));
	ok(!strncmp((const char *)b.p, want_view, strlen(want_view)),
	   "the view: p 0.61 plain, a newline uncoloured, p 0.0003 bold red, the summary");
	buf_reset(&b);
	lp[1] = -3;	/* p 0.05: yellow */
	request_put_score(&b, &m, &sc, 1);
	static const char yellow[] = "de\033[43;30mf\033[0m\n";
	ok(b.len > sizeof yellow && !memcmp(b.p, yellow, sizeof yellow - 1), "  p 0.05 yellow");
	buf_free(&b);
	bpe_free(&m);
}

/* --jsonl lines that fail before any generation (so no model is needed) */
static void test_lines(void)
{
	struct complete_params d = defaults();
	struct buf b = { 0 };
	char *err = (char *)"unset";
	ok(request_answer_line(NULL, "\r\n", 2, 1, &d, 0, &b, &err) == 1 && b.len == 0,
	   "a blank line: nothing");
	const char *l = "{\"id\": [1, \"a\"], \"prompt\": 5}\n";
	ok(request_answer_line(NULL, l, strlen(l), 7, &d, 0, &b, &err) == -1, "a bad request fails");
	is_str(err, "'prompt' must be a string (or an array of one string)", "  the message");
	json_t *j = load(&b, "  its line");
	char *id = json_dumps(json_object_get(j, "id"), JSON_COMPACT);
	is_str(id, "[1,\"a\"]", "  the request's id comes back as it was");
	is_str(str_of(j, "error"), "line 7: 'prompt' must be a string (or an array of one string)",
	       "  the error names the line");
	free(id);
	free(err);
	json_decref(j);
	buf_reset(&b);
	ok(request_answer_line(NULL, "{\"id\": 1,", 10, 3, &d, 0, &b, &err) == -1, "not JSON fails");
	ok(err && !strncmp(err, "not JSON: ", 10), "  'not JSON: ...'");
	j = load(&b, "  its line");
	const char *e = j ? str_of(j, "error") : NULL;
	ok(j && !json_object_get(j, "id") && e && !strncmp(e, "line 3: not JSON", 16),
	   "  no id, the error with the line");
	free(err);
	json_decref(j);
	buf_free(&b);
}

/* the server's fields: parse TEXT as request_parse then request_parse_openai do */
static int parse_openai(const char *text, uint64_t max_n, struct complete_request *r, char **err)
{
	json_t *j = json_loads(text, 0, NULL);
	struct complete_params d = defaults();
	*err = NULL;
	int ret = request_parse(j, &d, max_n, r, err);
	if (!ret)
		ret = request_parse_openai(j, max_n, r, err);
	json_decref(j);	/* the prompt is not looked at again */
	return ret;
}

static void test_openai(void)
{
	struct complete_request r;
	char *err;
	ok(parse_openai("{\"prompt\": \"x\"}", 16, &r, &err) == 0 && !r.stream && !r.echo &&
	   r.logprobs == -1 && r.p.logprobs == -1 && r.n_out == 1 && r.p.n == 1 && !r.include_usage,
	   "absent: no stream, echo, logprobs; best_of is n");
	request_free(&r);
	ok(parse_openai("{\"prompt\": \"x\", \"stream\": true, \"echo\": true, \"logprobs\": 20,"
			" \"n\": 2, \"stream_options\": {\"include_usage\": true}, \"user\": \"u\","
			" \"suffix\": null}", 16, &r, &err) == 0 &&
	   r.stream && r.echo && r.logprobs == 20 && r.p.logprobs == 20 && r.n_out == 2 &&
	   r.p.n == 2 && r.include_usage, "stream, echo, logprobs 20, include_usage; user ignored");
	request_free(&r);
	ok(parse_openai("{\"prompt\": \"x\", \"n\": 2, \"best_of\": 5}", 16, &r, &err) == 0 &&
	   r.n_out == 2 && r.p.n == 5 && r.logprobs == -1 && r.p.logprobs == 0,
	   "best_of 5 of n 2: five samples, ranked by their log-probabilities");
	request_free(&r);
	static const struct { const char *req, *err; } bad[] = {
		{ "{\"prompt\": \"x\", \"logprobs\": 21}", "'logprobs' must be an integer from 0 to 20" },
		{ "{\"prompt\": \"x\", \"logprobs\": true}", "'logprobs' must be an integer from 0 to 20" },
		{ "{\"prompt\": \"x\", \"stream\": 1}", "'stream' must be true or false" },
		{ "{\"prompt\": \"x\", \"echo\": \"yes\"}", "'echo' must be true or false" },
		{ "{\"prompt\": \"x\", \"n\": 3, \"best_of\": 2}", "'best_of' (2) must be at least 'n' (3)" },
		{ "{\"prompt\": \"x\", \"best_of\": 17}", "'best_of' must be an integer from 1 to 16" },
		{ "{\"prompt\": \"x\", \"best_of\": 2, \"stream\": true}", "'best_of' above 'n' cannot be streamed" },
		{ "{\"prompt\": \"x\", \"stream_options\": 1}", "'stream_options' must be an object" },
		{ "{\"prompt\": \"x\", \"stream_options\": {\"include_usage\": 1}}", "'include_usage' must be true or false" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ok(parse_openai(bad[i].req, 16, &r, &err) == -1, "refused: %s", bad[i].req);
		is_str(err, bad[i].err, "  with the message");
		free(err);
		request_free(&r);
	}
}

int main(void)
{
	test_lines();
	test_defaults();
	test_fields();
	test_refused();
	test_answers();
	test_score();
	test_openai();
	return done_testing();
}
