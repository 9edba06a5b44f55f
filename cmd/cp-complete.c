/* cp-complete: complete code with a GPT-2 model (a cp-train run, a checkpoint or a Hugging Face
 * export): one prompt, JSON-lines batches of requests, per-token scoring of a file, or an HTTP
 * server in the shape of OpenAI's Completions API. The work is in common/infer/complete.c; this file
 * reads requests and writes results. */
#include "base/buf.h"
#include "infer/complete.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "base/cli.h"
#include "base/xalloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cp-complete -m MODEL [options] [PROMPT]\n"
	"       cp-complete -m MODEL [options] --jsonl [-f FILE]\n"
	"       cp-complete -m MODEL --score FILE [--json | --view]\n"
	"       cp-complete -m MODEL [options] --serve [HOST:]PORT [server limits]\n"
	"\n"
	"  -m MODEL             cp-train run directory, checkpoint, or Hugging Face GPT-2 directory\n"
	"  -t, --tokenizer PATH tokenizer (default: the one beside the model)\n"
	"  -f FILE              read the prompt (or, with --jsonl, the requests) from FILE\n"
	"  -n N                 samples per prompt, decoded as one batch (default 1)\n"
	"  -N, --max-tokens N   new tokens per sample (default 128)\n"
	"  -T, --temperature X  0 = greedy (default 0)\n"
	"  -k, --top-k K        sample from the K likeliest tokens (default 0 = all)\n"
	"  -p, --top-p P        nucleus sampling (default 1 = off)\n"
	"  -s, --seed S         random seed (default 0)\n"
	"  -S, --stop STR       stop string, cut from the output; repeatable; \\n \\t \\\\ escapes\n"
	"  --no-eot-stop        keep going past <|endoftext|>\n"
	"  --stats              print timings as a JSON line on stderr\n"
	"  --json               JSON output (one line per sample; the score as JSON)\n"
	"  --jsonl              JSON-lines batch: one request per input line, one result per line\n"
	"  --score FILE         log-probability of every token of FILE ('-' = stdin)\n"
	"  --view               show the score as coloured text (default on a terminal)\n"
	"  --serve [HOST:]PORT  HTTP server (HOST default 127.0.0.1; PORT 0 = any free port)\n"
	"  --max-body BYTES     largest request body (default 1048576)\n"
	"  --max-prompt N       longest prompt in tokens (default: the context)\n"
	"  --max-concurrent N   requests admitted at once; more get 429 (default 4)\n"
	"  --max-n N            most samples a request may ask for (default 16)\n"
	"  -j, --threads N      threads (default: all cores)\n"
	"  -h                   show this help\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

struct opts {
	const char *model, *tokenizer, *file, *score, *serve, *prompt;
	struct complete_params p;
	char **stop;
	size_t n_stop;
	int json, jsonl, view, threads, stats;
	uint64_t max_body, max_prompt, max_concurrent, max_n;
};

/* \n, \t, \r, \\ and \0 in a --stop value: a newline is awkward to type in a shell */
static char *unescape(const char *s)
{
	char *o = xmalloc(strlen(s) + 1), *w = o;
	for (; *s; s++) {
		if (*s != '\\' || !s[1]) {
			*w++ = *s;
			continue;
		}
		switch (*++s) {
		case 'n': *w++ = '\n'; break;
		case 't': *w++ = '\t'; break;
		case 'r': *w++ = '\r'; break;
		case '\\': *w++ = '\\'; break;
		default: *w++ = '\\'; *w++ = *s; break;
		}
	}
	*w = 0;
	return o;
}

enum {
	O_JSON = 256, O_JSONL, O_SCORE, O_VIEW, O_SERVE, O_MAXBODY, O_MAXPROMPT, O_MAXCONC,
	O_MAXN, O_NOEOT, O_STATS
};

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "tokenizer", required_argument, NULL, 't' },
		{ "max-tokens", required_argument, NULL, 'N' },
		{ "temperature", required_argument, NULL, 'T' },
		{ "top-k", required_argument, NULL, 'k' },
		{ "top-p", required_argument, NULL, 'p' },
		{ "seed", required_argument, NULL, 's' },
		{ "stop", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'j' },
		{ "no-eot-stop", no_argument, NULL, O_NOEOT },
		{ "stats", no_argument, NULL, O_STATS },
		{ "json", no_argument, NULL, O_JSON },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "score", required_argument, NULL, O_SCORE },
		{ "view", no_argument, NULL, O_VIEW },
		{ "serve", required_argument, NULL, O_SERVE },
		{ "max-body", required_argument, NULL, O_MAXBODY },
		{ "max-prompt", required_argument, NULL, O_MAXPROMPT },
		{ "max-concurrent", required_argument, NULL, O_MAXCONC },
		{ "max-n", required_argument, NULL, O_MAXN },
		{ NULL, 0, NULL, 0 }
	};
	memset(o, 0, sizeof(*o));
	complete_params_default(&o->p);
	o->max_body = 1 << 20;
	o->max_concurrent = 4;
	o->max_n = 16;
	int c;
	while ((c = getopt_long(argc, argv, "hm:t:f:n:N:T:k:p:s:S:j:", lo, NULL)) != -1) {
		switch (c) {
		case 'h': usage(0); break;
		case 'm': o->model = optarg; break;
		case 't': o->tokenizer = optarg; break;
		case 'f': o->file = optarg; break;
		case 'n': o->p.n = (uint32_t)opt_u64("-n", optarg, 1, 65536); break;
		case 'N': o->p.max_tokens = (uint32_t)opt_u64("--max-tokens", optarg, 0, 1u << 24); break;
		case 'T': o->p.temperature = opt_double("--temperature", optarg, 0, 100); break;
		case 'k': o->p.top_k = (uint32_t)opt_u64("--top-k", optarg, 0, UINT32_MAX); break;
		case 'p': o->p.top_p = opt_double("--top-p", optarg, 1e-9, 1); break;
		case 's': o->p.seed = opt_u64("--seed", optarg, 0, UINT64_MAX); break;
		case 'S':
			if (!*optarg)
				die_usage("--stop: an empty stop string");
			o->stop = xreallocarray(o->stop, o->n_stop + 1, sizeof(char *));
			o->stop[o->n_stop++] = unescape(optarg);
			break;
		case 'j': o->threads = opt_threads("--threads", optarg); break;
		case O_NOEOT: o->p.no_eot_stop = 1; break;
		case O_STATS: o->stats = 1; break;
		case O_JSON: o->json = 1; break;
		case O_JSONL: o->jsonl = 1; break;
		case O_SCORE: o->score = optarg; break;
		case O_VIEW: o->view = 1; break;
		case O_SERVE: o->serve = optarg; break;
		case O_MAXBODY: o->max_body = opt_u64("--max-body", optarg, 16, 1ull << 32); break;
		case O_MAXPROMPT: o->max_prompt = opt_u64("--max-prompt", optarg, 1, 1u << 24); break;
		case O_MAXCONC: o->max_concurrent = opt_u64("--max-concurrent", optarg, 1, 1024); break;
		case O_MAXN: o->max_n = opt_u64("--max-n", optarg, 1, 65536); break;
		default: usage(EXIT_USAGE);
		}
	}
	o->p.stop = (const char *const *)o->stop;
	o->p.n_stop = o->n_stop;
	if (!o->model)
		die_usage("-m MODEL is required");
	if (optind < argc)
		o->prompt = argv[optind++];
	if (optind < argc)
		die_usage("one PROMPT at most (quote it)");
	if (!!o->jsonl + !!o->score + !!o->serve > 1)
		die_usage("--jsonl, --score and --serve exclude each other");
	if (o->prompt && (o->file || o->jsonl || o->score || o->serve))
		die_usage("a PROMPT argument goes with none of -f, --jsonl, --score, --serve");
	if (o->json && o->view)
		die_usage("--json and --view exclude each other");
	if (o->view && !o->score)
		die_usage("--view goes with --score");
}

/* ---- requests as JSON (--jsonl and the server share them) ---- */

struct request {
	struct complete_params p;
	char **stop;
	size_t n_stop;
	const char *prompt;	/* inside the json_t */
	size_t prompt_len;
};

static void request_free(struct request *r)
{
	for (size_t i = 0; i < r->n_stop; i++)
		free(r->stop[i]);
	free(r->stop);
	r->stop = NULL;
	r->n_stop = 0;
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

/* Fill R from the JSON object REQ over the defaults D; -1 with *ERR naming the field. */
static int request_parse(json_t *req, const struct complete_params *d, uint64_t max_n,
			 struct request *r, char **err)
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
	uint64_t u;
	double x;
	u = r->p.n;
	if (get_uint(req, "n", 1, max_n, &u, err))
		return -1;
	r->p.n = (uint32_t)u;
	u = r->p.max_tokens;
	if (get_uint(req, "max_tokens", 0, 1u << 24, &u, err))
		return -1;
	r->p.max_tokens = (uint32_t)u;
	u = r->p.top_k;
	if (get_uint(req, "top_k", 0, UINT32_MAX, &u, err))
		return -1;
	r->p.top_k = (uint32_t)u;
	u = r->p.seed;
	if (get_uint(req, "seed", 0, INT64_MAX, &u, err))
		return -1;
	r->p.seed = u;
	x = r->p.temperature;
	if (get_num(req, "temperature", 0, 100, &x, err))
		return -1;
	r->p.temperature = x;
	x = r->p.top_p;
	if (get_num(req, "top_p", 1e-9, 1, &x, err))
		return -1;
	r->p.top_p = x;
	json_t *st = json_object_get(req, "stop");
	if (st && !json_is_null(st)) {
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
	}
	return 0;
}

static void put_choices(struct buf *b, const struct complete_result *res, int openai)
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

static void write_buf(const struct buf *b)
{
	if (b->len && fwrite(b->p, 1, b->len, stdout) != b->len)
		die_errno("cannot write to stdout");
}

/* ---- one prompt ---- */

static char *read_input(const char *file, size_t *len)
{
	char *s = read_file(file ? file : "/dev/stdin", len);
	if (!s)
		exit(EXIT_ERR);
	return s;
}

static int run_one(const struct complete_model *cm, const struct opts *o)
{
	size_t len;
	char *prompt = o->prompt ? xstrdup(o->prompt) : read_input(o->file, &len);
	if (o->prompt)
		len = strlen(prompt);
	struct complete_result res;
	char *err = NULL;
	if (complete_generate(cm, prompt, len, &o->p, (uint32_t)o->max_prompt, &res, &err))
		die("%s", err);
	struct buf b = { 0 };
	for (uint32_t i = 0; i < res.n; i++) {
		const struct complete_sample *s = &res.s[i];
		if (o->json) {
			buf_printf(&b, "{\"index\":%u,\"text\":", i);
			json_str(&b, s->text.p, s->text.len);
			buf_printf(&b, ",\"finish_reason\":\"%s\",\"tokens\":%u,\"ids\":[", s->finish,
				   s->n_tokens);
			for (uint32_t j = 0; j < s->n_tokens; j++)
				buf_printf(&b, "%s%u", j ? "," : "", s->ids[j]);
			buf_puts(&b, "]}\n");
		} else {
			if (i)
				buf_puts(&b, "---\n");
			buf_put(&b, s->text.p, s->text.len);
			buf_putc(&b, '\n');
		}
	}
	write_buf(&b);
	buf_free(&b);
	if (o->stats) {
		uint64_t gen = 0;
		for (uint32_t i = 0; i < res.n; i++)
			gen += res.s[i].n_tokens;
		/* the first token of each sample comes from the prompt's logits */
		uint64_t steps = gen > res.n ? gen - res.n : 0;
		fprintf(stderr, "{\"prompt_tokens\":%u,\"prefill_s\":%.6f,\"generated\":%llu,"
			"\"decode_s\":%.6f,\"decode_tokens_per_s\":%.3f}\n", res.prompt_tokens,
			res.prefill_s, (unsigned long long)gen, res.decode_s,
			res.decode_s > 0 ? (double)steps / res.decode_s : 0.0);
	}
	complete_result_free(&res);
	free(prompt);
	return 0;
}

/* ---- JSON lines ---- */

static int run_jsonl(const struct complete_model *cm, const struct opts *o)
{
	FILE *in = o->file ? fopen(o->file, "r") : stdin;
	const char *name = o->file ? o->file : "(stdin)";
	if (!in)
		die_errno("cannot open '%s'", o->file);
	char *line = NULL;
	size_t cap = 0, lineno = 0, failed = 0;
	ssize_t n;
	struct buf b = { 0 };
	while ((n = getline(&line, &cap, in)) > 0) {
		lineno++;
		size_t l = (size_t)n;
		while (l && (line[l - 1] == '\n' || line[l - 1] == '\r'))
			l--;
		if (l == 0)
			continue;
		json_error_t je;
		json_t *req = json_loadb(line, l, 0, &je);
		struct request r = { 0 };
		struct complete_result res;
		char *err = NULL;
		buf_reset(&b);
		buf_putc(&b, '{');
		json_t *id = req && json_is_object(req) ? json_object_get(req, "id") : NULL;
		if (id) {
			char *ids = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
			buf_printf(&b, "\"id\":%s,", ids);
			free(ids);
		}
		if (!req)
			error_to(&err, "not JSON: %s", je.text);
		else if (request_parse(req, &o->p, 65536, &r, &err) == 0 &&
			 complete_generate(cm, r.prompt, r.prompt_len, &r.p, (uint32_t)o->max_prompt,
					   &res, &err) == 0) {
			put_choices(&b, &res, 0);
			complete_result_free(&res);
		}
		if (err) {
			error("%s:%zu: %s", name, lineno, err);
			buf_printf(&b, "\"error\":");
			char *msg = xasprintf("line %zu: %s", lineno, err);
			json_cstr(&b, msg);
			free(msg);
			free(err);
			failed++;
		}
		buf_puts(&b, "}\n");
		write_buf(&b);
		fflush(stdout);
		request_free(&r);
		json_decref(req);
	}
	if (ferror(in))
		die_errno("cannot read '%s'", name);
	free(line);
	buf_free(&b);
	if (in != stdin)
		fclose(in);
	return failed ? EXIT_ERR : 0;
}

/* ---- scoring ---- */

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

static int run_score(const struct complete_model *cm, const struct opts *o)
{
	size_t len;
	const char *name = strcmp(o->score, "-") ? o->score : NULL;
	char *text = read_input(name, &len);
	struct complete_score sc;
	char *err = NULL;
	if (complete_score_text(cm, text, len, &sc, &err))
		die("'%s': %s", name ? name : "(stdin)", err);
	int view = o->view || (!o->json && is_tty(1));
	struct buf b = { 0 };
	size_t scored = sc.n - 1;
	double mean = scored ? sc.sum / (double)scored : NAN;
	if (view) {
		for (size_t i = 0; i < sc.n; i++) {
			size_t tl;
			const unsigned char *tb = bpe_tok(&cm->tok, sc.ids[i], &tl);
			view_token(&b, tb, tl, sc.logprob[i]);
		}
		if (b.len && b.p[b.len - 1] != '\n')
			buf_putc(&b, '\n');
		buf_printf(&b, "-- %zu tokens, mean log-probability %.4f, perplexity %.3f; "
			   "\033[43;30m p<10%% \033[0m \033[41;30m p<1%% \033[0m \033[1;97;41m p<0.1%% \033[0m\n",
			   sc.n, mean, exp(-mean));
	} else {
		buf_puts(&b, "{\"tokens\":[");
		for (size_t i = 0; i < sc.n; i++) {
			size_t tl;
			const unsigned char *tb = bpe_tok(&cm->tok, sc.ids[i], &tl);
			buf_printf(&b, "%s{\"id\":%u,\"text\":", i ? "," : "", sc.ids[i]);
			json_str(&b, tb, tl);
			buf_puts(&b, ",\"logprob\":");
			json_double(&b, sc.logprob[i]);
			buf_putc(&b, '}');
		}
		buf_printf(&b, "],\"n_tokens\":%zu,\"scored\":%zu,\"sum_logprob\":", sc.n, scored);
		json_double(&b, sc.sum);
		buf_puts(&b, ",\"mean_logprob\":");
		json_double(&b, mean);
		buf_puts(&b, ",\"perplexity\":");
		json_double(&b, exp(-mean));
		buf_puts(&b, "}\n");
	}
	write_buf(&b);
	buf_free(&b);
	complete_score_free(&sc);
	free(text);
	return 0;
}

/* ---- the server ---- */

struct server {
	const struct complete_model *cm;
	const struct opts *o;
	pthread_mutex_t gen;	/* one generation at a time: each uses every core */
	pthread_mutex_t lock;
	unsigned inflight;
	unsigned long long served;
};

struct conn {
	struct buf body;
	int too_big, post;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const struct buf *b)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(b->len, b->p, MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned code, const char *type,
				   const char *msg)
{
	struct buf b = { 0 };
	buf_puts(&b, "{\"error\":{\"message\":");
	json_cstr(&b, msg);
	buf_puts(&b, ",\"type\":");
	json_cstr(&b, type);
	buf_puts(&b, "}}\n");
	enum MHD_Result r = reply(c, code, &b);
	buf_free(&b);
	return r;
}

static enum MHD_Result serve_completion(struct server *sv, struct MHD_Connection *c,
					struct conn *k)
{
	if (k->too_big) {
		char *m = xasprintf("the request body is larger than %llu bytes",
				    (unsigned long long)sv->o->max_body);
		enum MHD_Result r = reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request_error", m);
		free(m);
		return r;
	}
	json_error_t je;
	json_t *req = json_loadb((const char *)k->body.p, k->body.len, 0, &je);
	if (!req) {
		char *m = xasprintf("the body is not JSON: %s", je.text);
		enum MHD_Result r = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", m);
		free(m);
		return r;
	}
	/* OpenAI's defaults: 16 tokens at temperature 1 */
	struct complete_params d;
	complete_params_default(&d);
	d.max_tokens = 16;
	d.temperature = 1;
	struct request rq;
	char *err = NULL;
	enum MHD_Result ret;
	if (request_parse(req, &d, sv->o->max_n, &rq, &err)) {
		ret = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", err);
		goto out;
	}
	pthread_mutex_lock(&sv->lock);
	int admitted = sv->inflight < sv->o->max_concurrent;
	if (admitted)
		sv->inflight++;
	unsigned long long id = ++sv->served;
	pthread_mutex_unlock(&sv->lock);
	if (!admitted) {
		ret = reply_error(c, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limit_error",
				  "too many requests at once; retry later");
		goto out;
	}
	struct complete_result res;
	pthread_mutex_lock(&sv->gen);
	if (sv->o->threads)
		omp_set_num_threads(sv->o->threads);
	uint32_t maxp = sv->o->max_prompt ? (uint32_t)sv->o->max_prompt : 0;
	int r = complete_generate(sv->cm, rq.prompt, rq.prompt_len, &rq.p, maxp, &res, &err);
	pthread_mutex_unlock(&sv->gen);
	pthread_mutex_lock(&sv->lock);
	sv->inflight--;
	pthread_mutex_unlock(&sv->lock);
	if (r) {
		ret = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", err);
		goto out;
	}
	struct buf b = { 0 };
	buf_printf(&b, "{\"id\":\"cmpl-%llu\",\"object\":\"text_completion\",\"created\":%lld,"
		   "\"model\":", id, (long long)time(NULL));
	json_cstr(&b, sv->o->model);
	buf_putc(&b, ',');
	put_choices(&b, &res, 1);
	buf_puts(&b, "}\n");
	ret = reply(c, MHD_HTTP_OK, &b);
	buf_free(&b);
	complete_result_free(&res);
out:
	free(err);
	request_free(&rq);
	json_decref(req);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *data_size, void **con_cls)
{
	(void)version;
	struct server *sv = cls;
	struct conn *k = *con_cls;
	if (!k) {
		int is_post = !strcmp(method, "POST"), is_get = !strcmp(method, "GET");
		if (!strcmp(url, "/health")) {
			if (!is_get)
				return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error",
						   "use GET for /health");
			struct buf b = { 0 };
			buf_puts(&b, "{\"status\":\"ok\"}\n");
			enum MHD_Result r = reply(c, MHD_HTTP_OK, &b);
			buf_free(&b);
			return r;
		}
		if (strcmp(url, "/v1/completions"))
			return reply_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error",
					   "no such endpoint; use POST /v1/completions or GET /health");
		if (!is_post)
			return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error",
					   "use POST for /v1/completions");
		k = xcalloc(1, sizeof(*k));
		k->post = 1;
		*con_cls = k;
		return MHD_YES;
	}
	if (*data_size) {
		if (k->body.len + *data_size > sv->o->max_body) {
			k->too_big = 1;
			buf_free(&k->body);
		} else if (!k->too_big) {
			buf_put(&k->body, data, *data_size);
		}
		*data_size = 0;
		return MHD_YES;
	}
	return serve_completion(sv, c, k);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)c;
	(void)why;
	struct conn *k = *con_cls;
	if (k) {
		buf_free(&k->body);
		free(k);
		*con_cls = NULL;
	}
}

static int run_serve(const struct complete_model *cm, const struct opts *o)
{
	const char *colon = strrchr(o->serve, ':');
	char *host = colon ? xstrndup(o->serve, (size_t)(colon - o->serve)) : xstrdup("127.0.0.1");
	const char *port_s = colon ? colon + 1 : o->serve;
	uint16_t port = (uint16_t)opt_u64("--serve", port_s, 0, 65535);
	/* [::1]:PORT */
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	struct sockaddr_in a4 = { 0 };
	struct sockaddr_in6 a6 = { 0 };
	struct sockaddr *sa;
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
	if (!*host)
		die_usage("--serve: an empty host");
	if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
		a4.sin_family = AF_INET;
		a4.sin_port = htons(port);
		sa = (struct sockaddr *)&a4;
	} else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
		a6.sin6_family = AF_INET6;
		a6.sin6_port = htons(port);
		sa = (struct sockaddr *)&a6;
		flags |= MHD_USE_IPv6;
	} else {
		die_usage("--serve: '%s' is not a numeric IPv4 or IPv6 address", host);
	}
	/* signals go to the sigwait below, not to the server's threads */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct server sv = { .cm = cm, .o = o };
	pthread_mutex_init(&sv.gen, NULL);
	pthread_mutex_init(&sv.lock, NULL);
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, port, NULL, NULL, handle, &sv, MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)(o->max_concurrent + 16),
		MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_END);
	if (!d)
		die_errno("cannot listen on %s port %u", host, port);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = di ? di->port : port;
	int v6 = sa == (struct sockaddr *)&a6;
	fprintf(stderr, "%s: listening on http://%s%s%s:%u/v1/completions\n", cp_progname,
		v6 ? "[" : "", host, v6 ? "]" : "", bound);
	fflush(stderr);
	int sig;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	pthread_mutex_destroy(&sv.gen);
	pthread_mutex_destroy(&sv.lock);
	free(host);
	return 0;
}

/* libgomp's threads spin a long while at each barrier before they sleep; decoding crosses
 * about a hundred barriers a token, and on a machine with other work a spinning thread holds
 * the core its partner needs (measured on 2 busy cores: 1 token/s instead of 17). On an idle
 * machine the long spin is faster (about 10%), so only a loaded one gets the short spin.
 * libgomp reads its settings when it loads, so the short spin means running ourselves again. */
static void short_spin(char **argv)
{
	double load;
	if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
		return;
	if (getloadavg(&load, 1) == 1 && load < cpu_count() - 0.5)
		return;
	setenv("GOMP_SPINCOUNT", "1000", 1);
	execv("/proc/self/exe", argv);
	/* no /proc: go on with the long spin */
}

int main(int argc, char **argv)
{
	short_spin(argv);
	cp_setprogname(argv[0]);
	struct opts o;
	parse_opts(argc, argv, &o);
	if (o.threads)
		omp_set_num_threads(o.threads);
	struct complete_model cm;
	if (complete_load(&cm, o.model, o.tokenizer, NULL))
		return EXIT_ERR;
	int r;
	if (o.serve)
		r = run_serve(&cm, &o);
	else if (o.jsonl)
		r = run_jsonl(&cm, &o);
	else if (o.score)
		r = run_score(&cm, &o);
	else
		r = run_one(&cm, &o);
	complete_free(&cm);
	for (size_t i = 0; i < o.n_stop; i++)
		free(o.stop[i]);
	free(o.stop);
	close_stdout();
	return r;
}
