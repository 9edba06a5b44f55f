/* request.c: completion requests read from JSON and results rendered as JSON or text, the
 * same bytes for cp-complete's command line, its --jsonl batches and its server. */
#include "infer/request.h"

#include "base/die.h"
#include "base/json.h"
#include "base/xalloc.h"

#include <math.h>
#include <string.h>

void request_free(struct complete_request *r)
{
	for (size_t i = 0; i < r->n_stop; i++)
		free(r->stop[i]);
	free(r->stop);
	r->stop = NULL;
	r->n_stop = 0;
}

void request_server_defaults(struct complete_params *d)
{
	complete_params_default(d);
	d->max_tokens = 16;
	d->temperature = 1;
}

static int get_uint(json_t *req, const char *k, uint64_t lo, uint64_t hi, uint64_t *v, char **err)
{
	json_t *x = json_object_get(req, k);
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_integer(x) || json_integer_value(x) < 0 || (uint64_t)json_integer_value(x) < lo ||
	    (uint64_t)json_integer_value(x) > hi)
		return error_to(err, "'%s' must be an integer from %llu to %llu", k,
			   (unsigned long long)lo, (unsigned long long)hi);
	*v = (uint64_t)json_integer_value(x);
	return 0;
}

static int get_u32(json_t *req, const char *k, uint64_t lo, uint64_t hi, uint32_t *v, char **err)
{
	uint64_t u = *v;
	if (get_uint(req, k, lo, hi, &u, err))
		return -1;
	*v = (uint32_t)u;
	return 0;
}

static int get_num(json_t *req, const char *k, double lo, double hi, double *v, char **err)
{
	json_t *x = json_object_get(req, k);
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_number(x) || !(json_number_value(x) >= lo && json_number_value(x) <= hi))
		return error_to(err, "'%s' must be a number from %g to %g", k, lo, hi);
	*v = json_number_value(x);
	return 0;
}

/* "stop": a string or an array of at most 16 non-empty strings without NUL bytes */
static int get_stop(json_t *req, struct complete_request *r, char **err)
{
	json_t *st = json_object_get(req, "stop");
	if (!st || json_is_null(st))
		return 0;
	size_t n = json_is_array(st) ? json_array_size(st) : 1;
	if (!json_is_string(st) && !json_is_array(st))
		return error_to(err, "'stop' must be a string or an array of strings");
	if (n > 16)
		return error_to(err, "'stop' holds at most 16 strings");
	r->stop = xcalloc(n ? n : 1, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		json_t *s = json_is_array(st) ? json_array_get(st, i) : st;
		if (!json_is_string(s) || json_string_length(s) == 0 ||
		    strlen(json_string_value(s)) != json_string_length(s))
			return error_to(err, "'stop' strings must be non-empty strings");
		r->stop[r->n_stop++] = xstrdup(json_string_value(s));
	}
	r->p.stop = (const char *const *)r->stop;
	r->p.n_stop = r->n_stop;
	return 0;
}

/* an optional string field K (null: absent) */
static int get_text(json_t *req, const char *k, const char **v, size_t *len, char **err)
{
	json_t *x = json_object_get(req, k);
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_string(x))
		return error_to(err, "'%s' must be a string", k);
	*v = json_string_value(x);
	*len = json_string_length(x);
	return 0;
}

int request_parse(json_t *req, const struct complete_params *d, uint64_t max_n,
		  struct complete_request *r, char **err)
{
	memset(r, 0, sizeof(*r));
	r->p = *d;
	if (!json_is_object(req))
		return error_to(err, "the request must be a JSON object");
	json_t *pr = json_object_get(req, "prompt");
	if (json_is_array(pr) && json_array_size(pr) == 1)
		pr = json_array_get(pr, 0);
	if (!json_is_string(pr))
		return error_to(err, "'prompt' must be a string (or an array of one string)");
	r->prompt = json_string_value(pr);
	r->prompt_len = json_string_length(pr);
	if (get_u32(req, "n", 1, max_n, &r->p.n, err) ||
	    get_u32(req, "max_tokens", 0, 1u << 24, &r->p.max_tokens, err) ||
	    get_u32(req, "top_k", 0, UINT32_MAX, &r->p.top_k, err) ||
	    get_uint(req, "seed", 0, INT64_MAX, &r->p.seed, err) ||
	    get_num(req, "temperature", 0, 100, &r->p.temperature, err) ||
	    get_num(req, "top_p", 1e-9, 1, &r->p.top_p, err))
		return -1;
	if (get_text(req, "suffix", &r->p.suffix, &r->p.suffix_len, err))
		return -1;
	return get_stop(req, r, err);
}

static int get_bool(json_t *req, const char *k, int *v, char **err)
{
	json_t *x = json_object_get(req, k);
	if (!x || json_is_null(x))
		return 0;
	if (!json_is_boolean(x))
		return error_to(err, "'%s' must be true or false", k);
	*v = json_is_true(x);
	return 0;
}

int request_parse_openai(json_t *req, uint64_t max_n, struct complete_request *r, char **err)
{
	uint32_t best_of = r->p.n;
	uint64_t lp = UINT64_MAX;
	r->n_out = r->p.n;
	r->logprobs = -1;
	if (get_bool(req, "stream", &r->stream, err) || get_bool(req, "echo", &r->echo, err) ||
	    get_uint(req, "logprobs", 0, COMPLETE_MAX_LOGPROBS, &lp, err) ||
	    get_u32(req, "best_of", 1, max_n, &best_of, err))
		return -1;
	json_t *so = json_object_get(req, "stream_options");
	if (so && !json_is_null(so) && !json_is_object(so))
		return error_to(err, "'stream_options' must be an object");
	if (so && json_is_object(so) && get_bool(so, "include_usage", &r->include_usage, err))
		return -1;
	if (best_of < r->n_out)
		return error_to(err, "'best_of' (%u) must be at least 'n' (%u)", best_of, r->n_out);
	if (r->echo && r->p.suffix)
		return error_to(err, "'echo' cannot go with 'suffix'");
	if (r->stream && best_of > r->n_out)
		return error_to(err, "'best_of' above 'n' cannot be streamed");
	if (lp != UINT64_MAX)
		r->logprobs = (int)lp;
	r->p.n = best_of;
	/* best_of ranks the samples by their log-probabilities */
	r->p.logprobs = r->logprobs >= 0 ? r->logprobs : best_of > r->n_out ? 0 : -1;
	return 0;
}

/* llama.cpp's -1 for "no limit": as many tokens as the context leaves */
static int get_n_predict(json_t *req, uint32_t *v, char **err)
{
	json_t *x = json_object_get(req, "n_predict");
	if (x && json_is_integer(x) && json_integer_value(x) == -1) {
		*v = 1u << 24;
		return 0;
	}
	return get_u32(req, "n_predict", 0, 1u << 24, v, err);
}

int request_parse_infill(json_t *req, struct complete_request *r, char **err)
{
	memset(r, 0, sizeof(*r));
	complete_params_default(&r->p);
	/* llama.cpp's defaults */
	r->p.max_tokens = 1u << 24;
	r->p.temperature = 0.8;
	r->p.top_k = 40;
	r->p.top_p = 0.95;
	r->n_out = 1;
	r->logprobs = -1;
	r->prompt = "";
	r->p.suffix = "";
	if (!json_is_object(req))
		return error_to(err, "the request must be a JSON object");
	int stream = 0;
	if (get_text(req, "input_prefix", &r->prompt, &r->prompt_len, err) ||
	    get_text(req, "input_suffix", &r->p.suffix, &r->p.suffix_len, err) ||
	    get_text(req, "prompt", &r->p.middle, &r->p.middle_len, err) ||
	    get_n_predict(req, &r->p.max_tokens, err) ||
	    get_u32(req, "top_k", 0, UINT32_MAX, &r->p.top_k, err) ||
	    get_uint(req, "seed", 0, INT64_MAX, &r->p.seed, err) ||
	    get_num(req, "temperature", 0, 100, &r->p.temperature, err) ||
	    get_num(req, "top_p", 1e-9, 1, &r->p.top_p, err) || get_bool(req, "stream", &stream, err))
		return -1;
	if (stream)
		return error_to(err, "'stream' is not served on /infill; use /v1/completions with "
			    "'suffix' to stream an infill");
	return get_stop(req, r, err);
}

void request_put_choices(struct buf *b, const struct complete_result *res, int openai)
{
	buf_puts(b, "\"choices\":[");
	for (uint32_t i = 0; i < res->n; i++) {
		const struct complete_sample *s = &res->s[i];
		buf_printf(b, "%s{\"index\":%u,\"text\":", i ? "," : "", i);
		json_str(b, s->text.p, s->text.len);
		if (openai)
			buf_puts(b, ",\"logprobs\":null");
		buf_printf(b, ",\"finish_reason\":\"%s\",\"tokens\":%u}", s->finish, s->n_tokens);
	}
	uint64_t gen = 0;
	for (uint32_t i = 0; i < res->n; i++)
		gen += res->s[i].n_tokens;
	buf_printf(b, "],\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%llu,\"total_tokens\":%llu}",
		   res->prompt_tokens, (unsigned long long)gen,
		   (unsigned long long)(gen + res->prompt_tokens));
}

void request_put_error(struct buf *b, const char *type, const char *msg)
{
	buf_puts(b, "{\"error\":{\"message\":");
	json_cstr(b, msg);
	buf_puts(b, ",\"type\":");
	json_cstr(b, type);
	buf_puts(b, "}}\n");
}

int request_answer_line(const struct complete_model *cm, const char *line, size_t len,
			size_t lineno, const struct complete_params *d, uint32_t max_prompt,
			struct buf *b, char **err)
{
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	if (len == 0)
		return 1;
	json_error_t je;
	json_t *req = json_loadb(line, len, 0, &je);
	struct complete_request r = { 0 };
	struct complete_result res;
	*err = NULL;
	buf_putc(b, '{');
	json_t *id = req && json_is_object(req) ? json_object_get(req, "id") : NULL;
	if (id) {
		char *ids = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
		buf_printf(b, "\"id\":%s,", ids);
		free(ids);
	}
	if (!req)
		error_to(err, "not JSON: %s", je.text);
	else if (request_parse(req, d, 65536, &r, err) == 0 &&
		 complete_generate(cm, r.prompt, r.prompt_len, &r.p, max_prompt, &res, err) == 0) {
		request_put_choices(b, &res, 0);
		complete_result_free(&res);
	}
	if (*err) {
		buf_printf(b, "\"error\":");
		char *msg = xasprintf("line %zu: %s", lineno, *err);
		json_cstr(b, msg);
		free(msg);
	}
	buf_puts(b, "}\n");
	request_free(&r);
	json_decref(req);
	return *err ? -1 : 0;
}

void request_put_samples(struct buf *b, const struct complete_result *res, int json)
{
	for (uint32_t i = 0; i < res->n; i++) {
		const struct complete_sample *s = &res->s[i];
		if (json) {
			buf_printf(b, "{\"index\":%u,\"text\":", i);
			json_str(b, s->text.p, s->text.len);
			buf_printf(b, ",\"finish_reason\":\"%s\",\"tokens\":%u,\"ids\":[", s->finish,
				   s->n_tokens);
			for (uint32_t j = 0; j < s->n_tokens; j++)
				buf_printf(b, "%s%u", j ? "," : "", s->ids[j]);
			buf_puts(b, "]}\n");
		} else {
			if (i)
				buf_puts(b, "---\n");
			buf_put(b, s->text.p, s->text.len);
			buf_putc(b, '\n');
		}
	}
}

void request_put_stats(struct buf *b, const struct complete_result *res)
{
	uint64_t gen = 0;
	for (uint32_t i = 0; i < res->n; i++)
		gen += res->s[i].n_tokens;
	/* the first token of each sample comes from the prompt's logits */
	uint64_t steps = gen > res->n ? gen - res->n : 0;
	buf_printf(b, "{\"prompt_tokens\":%u,\"prefill_s\":%.6f,\"generated\":%llu,"
		   "\"decode_s\":%.6f,\"decode_tokens_per_s\":%.3f}\n", res->prompt_tokens,
		   res->prefill_s, (unsigned long long)gen, res->decode_s,
		   res->decode_s > 0 ? (double)steps / res->decode_s : 0.0);
}

static void view_token(struct buf *b, const unsigned char *s, size_t n, double lp)
{
	/* background by surprise: none above 10%, yellow above 1%, red above 0.1%, bold red below */
	const char *col = isnan(lp) || lp > log(0.1) ? NULL
			  : lp > log(0.01)		? "\033[43;30m"
			  : lp > log(0.001)		? "\033[41;30m"
							: "\033[1;97;41m";
	size_t i = 0;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] != '\n')
			j++;
		if (j > i) {
			if (col)
				buf_puts(b, col);
			buf_put(b, s + i, j - i);
			if (col)
				buf_puts(b, "\033[0m");
		}
		if (j < n)
			buf_putc(b, '\n');
		i = j + 1;
	}
}

static void put_score_view(struct buf *b, const struct bpe *tok, const struct complete_score *sc,
			   double mean)
{
	for (size_t i = 0; i < sc->n; i++) {
		size_t tl;
		const unsigned char *tb = bpe_tok(tok, sc->ids[i], &tl);
		view_token(b, tb, tl, sc->logprob[i]);
	}
	if (b->len && b->p[b->len - 1] != '\n')
		buf_putc(b, '\n');
	buf_printf(b, "-- %zu tokens, mean log-probability %.4f, perplexity %.3f; "
		   "\033[43;30m p<10%% \033[0m \033[41;30m p<1%% \033[0m \033[1;97;41m p<0.1%% \033[0m\n",
		   sc->n, mean, exp(-mean));
}

void request_put_score(struct buf *b, const struct bpe *tok, const struct complete_score *sc,
		       int view)
{
	size_t scored = sc->n - 1;
	double mean = scored ? sc->sum / (double)scored : NAN;
	if (view) {
		put_score_view(b, tok, sc, mean);
		return;
	}
	buf_puts(b, "{\"tokens\":[");
	for (size_t i = 0; i < sc->n; i++) {
		size_t tl;
		const unsigned char *tb = bpe_tok(tok, sc->ids[i], &tl);
		buf_printf(b, "%s{\"id\":%u,\"text\":", i ? "," : "", sc->ids[i]);
		json_str(b, tb, tl);
		buf_puts(b, ",\"logprob\":");
		json_double(b, sc->logprob[i]);
		buf_putc(b, '}');
	}
	buf_printf(b, "],\"n_tokens\":%zu,\"scored\":%zu,\"sum_logprob\":", scored + 1, scored);
	json_double(b, sc->sum);
	buf_puts(b, ",\"mean_logprob\":");
	json_double(b, mean);
	buf_puts(b, ",\"perplexity\":");
	json_double(b, exp(-mean));
	buf_puts(b, "}\n");
}
