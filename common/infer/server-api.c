/* server-api.c: the server's endpoints. A completion is read (request.h), admitted or
 * answered 429, its prompt checked (400 before any work), then queued for the engine: one
 * thread that decodes every admitted request's samples together in one batch (continuous
 * batching: a request joins between two steps and leaves when its samples are done). The
 * connection's thread waits for the whole answer, or streams: the engine queues a
 * server-sent event per token, which the connection's thread hands to libmicrohttpd as they
 * come. A client that goes away (its socket hung up, or the answer torn down) stops its
 * request at the next token. /tokenize and /detokenize need no engine: the model is only
 * read. */
#include "infer/server-impl.h"

#include "base/die.h"
#include "base/xalloc.h"
#include "infer/api.h"
#include "infer/request.h"

#include <jansson.h>
#include <omp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One completion request from its parse to its last byte */
struct job {
	struct server *sv;
	const struct complete_model *cm;
	struct MHD_Connection *conn;
	json_t *req;		/* holds the prompt */
	struct complete_request rq;
	uint32_t *ids;
	size_t n_ids;
	struct complete_score psc;	/* echo with logprobs: the prompt's */
	struct complete_result res;
	struct complete_job cj;	/* in the engine's batch */
	struct api_answer a;
	struct job *next;	/* the engine's queue, or its running jobs */
	/* under mu: done (the engine is through with it), and for a stream the events queued
	 * and not yet handed over, gone (the client), orphan (the answer torn down first) */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct buf out;
	size_t sent;
	int fd, done, gone, orphan;
	int infill;		/* /infill: answered in llama.cpp's shape */
	struct api_stream_pos *pos;
};

/* The engine: one thread, one batch, the requests queued for it */
struct engine {
	struct server *sv;
	struct complete_batch *cb;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, **tail;	/* queued, in order */
	struct job *running;
	int stop;
	pthread_t th;
};

static enum MHD_Result bad_request(struct MHD_Connection *c, const char *msg)
{
	return server_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", msg);
}

/* the body as a JSON object, or NULL after answering 400 */
static json_t *read_json(struct MHD_Connection *c, const char *body, size_t len,
			 enum MHD_Result *ret)
{
	json_error_t je;
	json_t *req = json_loadb(body, len, 0, &je);
	if (!req) {
		char *m = xasprintf("the body is not JSON: %s", je.text);
		*ret = bad_request(c, m);
		free(m);
	}
	return req;
}

static void job_free(struct job *j)
{
	free(j->ids);
	complete_score_free(&j->psc);
	complete_result_free(&j->res);
	request_free(&j->rq);
	json_decref(j->req);
	buf_free(&j->out);
	free(j->pos);
	pthread_mutex_destroy(&j->mu);
	pthread_cond_destroy(&j->cv);
	free(j);
}

static void job_release(struct job *j)
{
	pthread_mutex_lock(&j->sv->lock);
	j->sv->inflight--;
	pthread_mutex_unlock(&j->sv->lock);
}

/* ---- streaming ---- */

/* Whether the client went away: the answer torn down, or its socket hung up */
static int stream_gone(struct job *j)
{
	pthread_mutex_lock(&j->mu);
	if (!j->gone && j->fd >= 0) {
		struct pollfd p = { .fd = j->fd, .events = POLLRDHUP };
		if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
			j->gone = 1;
	}
	int g = j->gone;
	pthread_mutex_unlock(&j->mu);
	return g;
}

static void stream_push(struct job *j, const struct buf *b)
{
	pthread_mutex_lock(&j->mu);
	buf_put(&j->out, b->p, b->len);
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
}

static int stream_token(void *ctx, const struct complete_result *res, uint32_t sample, int done)
{
	struct job *j = ctx;
	if (stream_gone(j))
		return 1;
	struct buf b = { 0 };
	api_put_chunk(&b, &j->a, sample, &res->s[sample], &j->pos[sample], done);
	stream_push(j, &b);
	buf_free(&b);
	return 0;
}

/* libmicrohttpd asks for the next bytes: wait for an event or the end */
static ssize_t stream_read(void *cls, uint64_t at, char *buf, size_t max)
{
	(void)at;
	struct job *j = cls;
	pthread_mutex_lock(&j->mu);
	while (j->sent == j->out.len && !j->done)
		pthread_cond_wait(&j->cv, &j->mu);
	size_t n = j->out.len - j->sent;
	if (n > max)
		n = max;
	memcpy(buf, j->out.p + j->sent, n);
	j->sent += n;
	if (j->sent == j->out.len) {
		buf_reset(&j->out);
		j->sent = 0;
	}
	int gone = j->gone;
	pthread_mutex_unlock(&j->mu);
	if (n)
		return (ssize_t)n;
	/* the idle bound again, from the end of the answer */
	MHD_set_connection_option(j->conn, MHD_CONNECTION_OPTION_TIMEOUT, j->sv->idle_s);
	return gone ? MHD_CONTENT_READER_END_WITH_ERROR : MHD_CONTENT_READER_END_OF_STREAM;
}

/* The answer is torn down (sent, or the client gone): the job is freed here once the engine
 * is through with it, else by the engine when it is (it stops at the next token) */
static void stream_free(void *cls)
{
	struct job *j = cls;
	pthread_mutex_lock(&j->mu);
	j->gone = 1;
	int done = j->done;
	j->orphan = !done;
	pthread_mutex_unlock(&j->mu);
	if (done)
		job_free(j);
}

/* ---- the engine ---- */

/* The engine is through with J: the rest of its stream, or its whole answer's wake-up */
static void engine_end(struct job *j)
{
	job_release(j);
	if (j->rq.stream && !j->res.cancelled && !stream_gone(j) && j->res.s) {
		struct buf b = { 0 };
		/* the samples no token finished: max_tokens 0 */
		for (uint32_t i = 0; i < j->rq.n_out; i++)
			if (!j->pos[i].finished)
				api_put_chunk(&b, &j->a, i, &j->res.s[i], &j->pos[i], 1);
		api_put_stream_end(&b, &j->a);
		stream_push(j, &b);
		buf_free(&b);
	}
	if (j->res.cancelled) {
		uint64_t n = 0;
		for (uint32_t i = 0; i < j->res.n; i++)
			n += j->res.s[i].n_tokens;
		fprintf(stderr, "%s: cmpl-%llu: the client went away; stopped after %llu tokens\n",
			cp_progname, j->a.id, (unsigned long long)n);
	}
	pthread_mutex_lock(&j->mu);
	j->done = 1;
	int orphan = j->orphan;
	pthread_cond_broadcast(&j->cv);
	pthread_mutex_unlock(&j->mu);
	if (orphan)
		job_free(j);
}

/* J joins the batch: the prompt's scores for echo, then its samples' prefill. One that does
 * not fit the batch (more samples than its rows) is made alone, the batch empty. 1 when it
 * is running, 0 when it is already done. */
static int engine_begin(struct engine *e, struct job *j)
{
	const struct complete_model *cm = j->cm;
	char *err = NULL;
	if (j->rq.stream && stream_gone(j)) {
		j->res.cancelled = 1;
		return 0;
	}
	/* none of these fail: complete_prompt checked the prompt against the context */
	if (j->rq.echo && j->rq.logprobs >= 0 &&
	    complete_score_ids(cm, j->ids, j->n_ids, j->rq.logprobs, &j->psc, &err))
		free(err);
	if (j->rq.stream && j->rq.echo)
		for (uint32_t i = 0; i < j->rq.n_out; i++) {
			struct buf b = { 0 };
			api_put_echo_chunk(&b, &j->a, i);
			stream_push(j, &b);
			buf_free(&b);
		}
	j->cj = (struct complete_job){ .p = &j->rq.p, .res = &j->res };
	if (j->rq.p.n > (uint32_t)e->sv->batch_rows) {
		if (complete_generate_ids(cm, j->ids, j->n_ids, &j->rq.p, &j->res, &err))
			free(err);
		return 0;
	}
	if (complete_batch_add(e->cb, &j->cj, j->ids, j->n_ids, &err)) {
		free(err);
		return 0;
	}
	return j->cj.going > 0;
}

/* The queued jobs that fit the free rows, in order (one too large for the batch when it is
 * empty); under e->mu */
static struct job *engine_take(struct engine *e)
{
	struct job *taken = NULL, **tt = &taken;
	int rows = complete_batch_rows_free(e->cb), empty = rows == e->sv->batch_rows;
	while (e->head) {
		struct job *j = e->head;
		int n = (int)j->rq.p.n;
		if (n > e->sv->batch_rows ? !empty || taken : n > rows)
			break;
		rows -= n <= e->sv->batch_rows ? n : 0;
		e->head = j->next;
		if (!e->head)
			e->tail = &e->head;
		j->next = NULL;
		*tt = j;
		tt = &j->next;
		if (n > e->sv->batch_rows)
			break;
	}
	return taken;
}

static void *engine_main(void *arg)
{
	struct engine *e = arg;
	if (e->sv->c->threads)
		omp_set_num_threads(e->sv->c->threads);
	pthread_mutex_lock(&e->mu);
	for (;;) {
		while (!e->stop && !e->head && !e->running)
			pthread_cond_wait(&e->cv, &e->mu);
		if (e->stop)
			break;
		struct job *j = engine_take(e);
		pthread_mutex_unlock(&e->mu);
		while (j) {
			struct job *next = j->next;
			if (engine_begin(e, j)) {
				j->next = e->running;
				e->running = j;
			} else {
				engine_end(j);
			}
			j = next;
		}
		if (e->running)
			complete_batch_step(e->cb);
		for (struct job **p = &e->running; *p;) {
			struct job *r = *p;
			if (r->cj.going) {
				p = &r->next;
				continue;
			}
			*p = r->next;
			engine_end(r);
		}
		pthread_mutex_lock(&e->mu);
	}
	pthread_mutex_unlock(&e->mu);
	return NULL;
}

/* Hand J to the engine */
static void engine_queue(struct engine *e, struct job *j)
{
	pthread_mutex_lock(&e->mu);
	j->next = NULL;
	*e->tail = j;
	e->tail = &j->next;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
}

struct engine *api_engine_start(struct server *sv, const struct complete_model *cm)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	e->sv = sv;
	e->cb = complete_batch_new(cm, sv->batch_rows, (int)cm->m.cfg.n_ctx,
				    COMPLETE_BATCH_REUSE);
	e->tail = &e->head;
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->cv, NULL);
	int r = pthread_create(&e->th, NULL, engine_main, e);
	if (r)
		die("cannot start the server's engine: %s", strerror(r));
	return e;
}

void api_engine_stop(struct engine *e)
{
	if (!e)
		return;
	pthread_mutex_lock(&e->mu);
	e->stop = 1;
	pthread_cond_signal(&e->cv);
	pthread_mutex_unlock(&e->mu);
	pthread_join(e->th, NULL);
	complete_batch_free(e->cb);
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	free(e);
}

static enum MHD_Result stream_start(struct job *j)
{
	struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384,
								   stream_read, j, stream_free);
	if (!r) {
		job_release(j);
		job_free(j);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "text/event-stream");
	MHD_add_response_header(r, "Cache-Control", "no-cache");
	j->fd = server_conn_fd(j->conn);
	j->pos = xcalloc(j->rq.n_out, sizeof(*j->pos));
	enum MHD_Result ret = MHD_queue_response(j->conn, MHD_HTTP_OK, r);
	engine_queue(j->sv->engine, j);
	MHD_destroy_response(r);
	return ret;
}

/* ---- whole answers ---- */

static enum MHD_Result answer_whole(struct job *j)
{
	engine_queue(j->sv->engine, j);
	pthread_mutex_lock(&j->mu);
	while (!j->done)
		pthread_cond_wait(&j->cv, &j->mu);
	pthread_mutex_unlock(&j->mu);
	MHD_set_connection_option(j->conn, MHD_CONNECTION_OPTION_TIMEOUT, j->sv->idle_s);
	uint32_t *order = NULL;
	if (j->rq.p.n > j->rq.n_out) {
		order = xreallocarray(NULL, j->rq.p.n, sizeof(uint32_t));
		api_rank(&j->res, order);
		j->a.order = order;
	}
	struct buf b = { 0 };
	if (j->infill)
		api_put_infill(&b, &j->a);
	else
		api_put_completion(&b, &j->a);
	enum MHD_Result ret = server_reply(j->conn, MHD_HTTP_OK, &b);
	buf_free(&b);
	free(order);
	job_free(j);
	return ret;
}

/* Admit J (or answer 429) and check its prompt (or answer 400); -1 after answering */
static int job_admit(struct job *j, enum MHD_Result *ret)
{
	struct server *sv = j->sv;
	pthread_mutex_lock(&sv->lock);
	int admitted = sv->inflight < sv->c->max_concurrent;
	if (admitted)
		sv->inflight++;
	j->a.id = ++sv->served;
	pthread_mutex_unlock(&sv->lock);
	if (!admitted) {
		*ret = server_error(j->conn, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limit_error",
				    "too many requests at once; retry later");
		return -1;
	}
	char *err = NULL;
	if (complete_prompt(j->cm, j->rq.prompt, j->rq.prompt_len, &j->rq.p,
			    (uint32_t)sv->c->max_prompt, &j->ids, &j->n_ids, &err)) {
		job_release(j);
		*ret = bad_request(j->conn, err);
		free(err);
		return -1;
	}
	return 0;
}

static struct job *job_new(struct server *sv, struct MHD_Connection *c, json_t *req)
{
	struct job *j = xcalloc(1, sizeof(*j));
	j->sv = sv;
	j->cm = sv->cm;
	j->conn = c;
	j->req = req;
	j->fd = -1;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	return j;
}

/* J's answer, once admitted; and no inactivity timeout while this thread waits and
 * generates: set back to the idle one afterwards, it counts from then rather than from the
 * request's last byte */
static void job_answer_init(struct job *j)
{
	j->a = (struct api_answer){ .tok = &j->cm->tok, .rq = &j->rq, .model = j->sv->c->model,
				    .id = j->a.id, .created = (long long)time(NULL),
				    .res = &j->res, .prompt_ids = j->ids, .n_prompt = j->n_ids,
				    .prompt_sc = &j->psc };
	MHD_set_connection_option(j->conn, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
}

/* After J's request was parsed (BAD: refused, ERR saying why; freed): admitted, its answer
 * set up, 0; else -1 with J freed and *RET the answer given (400, or the admission's) */
static int job_start(struct job *j, int bad, char *err, enum MHD_Result *ret)
{
	if (bad) {
		*ret = bad_request(j->conn, err);
		free(err);
		job_free(j);
		return -1;
	}
	if (job_admit(j, ret)) {
		job_free(j);
		return -1;
	}
	job_answer_init(j);
	return 0;
}

enum MHD_Result api_completion(struct server *sv, struct MHD_Connection *c, const char *body,
			       size_t len)
{
	enum MHD_Result ret;
	json_t *req = read_json(c, body, len, &ret);
	if (!req)
		return ret;
	struct job *j = job_new(sv, c, req);
	struct complete_params d;
	request_server_defaults(&d);
	char *err = NULL;
	int bad = request_parse(req, &d, sv->c->max_n, &j->rq, &err) ||
		  request_parse_openai(req, sv->c->max_n, &j->rq, &err);
	if (job_start(j, bad, err, &ret))
		return ret;
	if (!j->rq.stream)
		return answer_whole(j);
	j->rq.p.on_token = stream_token;
	j->rq.p.ctx = j;
	return stream_start(j);
}

/* ---- llama.cpp's /infill, /tokenize and /detokenize ---- */

enum MHD_Result api_infill(struct server *sv, struct MHD_Connection *c, const char *body,
			   size_t len)
{
	enum MHD_Result ret;
	json_t *req = read_json(c, body, len, &ret);
	if (!req)
		return ret;
	struct job *j = job_new(sv, c, req);
	char *err = NULL;
	j->infill = 1;
	int bad = request_parse_infill(req, &j->rq, &err);
	if (job_start(j, bad, err, &ret))
		return ret;
	return answer_whole(j);
}

enum MHD_Result api_tokenize(struct server *sv, struct MHD_Connection *c, const char *body,
			     size_t len)
{
	enum MHD_Result ret;
	json_t *req = read_json(c, body, len, &ret);
	if (!req)
		return ret;
	json_t *content = json_object_get(req, "content");
	json_t *pieces = json_object_get(req, "with_pieces");
	if (!json_is_object(req) || !json_is_string(content)) {
		ret = bad_request(c, "'content' must be a string");
	} else if (pieces && !json_is_boolean(pieces) && !json_is_null(pieces)) {
		ret = bad_request(c, "'with_pieces' must be true or false");
	} else {
		size_t n;
		uint32_t *ids = complete_encode(sv->cm, json_string_value(content),
						json_string_length(content), &n);
		struct buf b = { 0 };
		api_put_tokens(&b, &sv->cm->tok, ids, n, json_is_true(pieces));
		ret = server_reply(c, MHD_HTTP_OK, &b);
		buf_free(&b);
		free(ids);
	}
	json_decref(req);
	return ret;
}

enum MHD_Result api_detokenize(struct server *sv, struct MHD_Connection *c, const char *body,
			       size_t len)
{
	enum MHD_Result ret;
	json_t *req = read_json(c, body, len, &ret);
	if (!req)
		return ret;
	const struct bpe *tok = &sv->cm->tok;
	json_t *ids = json_object_get(req, "tokens");
	struct buf text = { 0 };
	char *err = NULL;
	if (!json_is_object(req) || !json_is_array(ids))
		err = xstrdup("'tokens' must be an array of token ids");
	for (size_t i = 0; !err && i < json_array_size(ids); i++) {
		json_t *x = json_array_get(ids, i);
		json_int_t v = json_is_integer(x) ? json_integer_value(x) : -1;
		size_t tl;
		if (v < 0 || v >= (json_int_t)tok->n_ids || tok->len[v] == BPE_NONE) {
			err = xasprintf("'tokens'[%zu] is not a token id of the model", i);
			break;
		}
		const unsigned char *tb = bpe_tok(tok, (uint32_t)v, &tl);
		buf_put(&text, tb, tl);
	}
	if (err) {
		ret = bad_request(c, err);
	} else {
		struct buf b = { 0 };
		api_put_content(&b, text.p ? text.p : (const unsigned char *)"", text.len);
		ret = server_reply(c, MHD_HTTP_OK, &b);
		buf_free(&b);
	}
	free(err);
	buf_free(&text);
	json_decref(req);
	return ret;
}
