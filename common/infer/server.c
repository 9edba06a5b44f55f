/* server.c: the HTTP completion server. libmicrohttpd runs a thread per connection; a POST
 * body is gathered up to the limit, read as a request, admitted or answered 429, and
 * generated under one lock, so that concurrent requests queue instead of sharing the cores. */
#include "infer/server.h"

#include "base/buf.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/xalloc.h"
#include "infer/request.h"

#include <arpa/inet.h>
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

struct server {
	const struct complete_model *cm;
	const struct server_config *c;
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
	request_put_error(&b, type, msg);
	enum MHD_Result r = reply(c, code, &b);
	buf_free(&b);
	return r;
}

/* Admit RQ (or answer 429), generate it under the generation lock and answer. */
static enum MHD_Result generate(struct server *sv, struct MHD_Connection *c,
				const struct complete_request *rq)
{
	pthread_mutex_lock(&sv->lock);
	int admitted = sv->inflight < sv->c->max_concurrent;
	if (admitted)
		sv->inflight++;
	unsigned long long id = ++sv->served;
	pthread_mutex_unlock(&sv->lock);
	if (!admitted)
		return reply_error(c, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limit_error",
				   "too many requests at once; retry later");
	struct complete_result res;
	char *err = NULL;
	pthread_mutex_lock(&sv->gen);
	if (sv->c->threads)
		omp_set_num_threads(sv->c->threads);
	uint32_t maxp = (uint32_t)sv->c->max_prompt;
	int r = complete_generate(sv->cm, rq->prompt, rq->prompt_len, &rq->p, maxp, &res, &err);
	pthread_mutex_unlock(&sv->gen);
	pthread_mutex_lock(&sv->lock);
	sv->inflight--;
	pthread_mutex_unlock(&sv->lock);
	if (r) {
		enum MHD_Result ret = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", err);
		free(err);
		return ret;
	}
	struct buf b = { 0 };
	request_put_completion(&b, id, (long long)time(NULL), sv->c->model, &res);
	enum MHD_Result ret = reply(c, MHD_HTTP_OK, &b);
	buf_free(&b);
	complete_result_free(&res);
	return ret;
}

static enum MHD_Result serve_completion(struct server *sv, struct MHD_Connection *c,
					struct conn *k)
{
	if (k->too_big) {
		char *m = xasprintf("the request body is larger than %llu bytes",
				    (unsigned long long)sv->c->max_body);
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
	struct complete_params d;
	request_server_defaults(&d);
	struct complete_request rq;
	char *err = NULL;
	enum MHD_Result ret;
	if (request_parse(req, &d, sv->c->max_n, &rq, &err))
		ret = reply_error(c, MHD_HTTP_BAD_REQUEST, "invalid_request_error", err);
	else
		ret = generate(sv, c, &rq);
	free(err);
	request_free(&rq);
	json_decref(req);
	return ret;
}

/* The first call for a request routes it (GET /health is answered at once); a POST to
 * /v1/completions then comes back with its body in pieces, and once more with none. */
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
		if (k->body.len + *data_size > sv->c->max_body) {
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

struct listen_addr {
	char *host;	/* without the brackets of [::1] */
	uint16_t port;
	int v6;
	struct sockaddr_in a4;
	struct sockaddr_in6 a6;
};

/* [HOST:]PORT, HOST a numeric address (default 127.0.0.1); dies with a usage error */
static void parse_listen(const char *s, struct listen_addr *a)
{
	memset(a, 0, sizeof(*a));
	const char *colon = strrchr(s, ':');
	a->host = colon ? xstrndup(s, (size_t)(colon - s)) : xstrdup("127.0.0.1");
	a->port = (uint16_t)opt_u64("--serve", colon ? colon + 1 : s, 0, 65535);
	char *h = a->host;
	if (h[0] == '[' && h[strlen(h) - 1] == ']') {
		memmove(h, h + 1, strlen(h));
		h[strlen(h) - 1] = 0;
	}
	if (!*h)
		die_usage("--serve: an empty host");
	if (inet_pton(AF_INET, h, &a->a4.sin_addr) == 1) {
		a->a4.sin_family = AF_INET;
		a->a4.sin_port = htons(a->port);
	} else if (inet_pton(AF_INET6, h, &a->a6.sin6_addr) == 1) {
		a->a6.sin6_family = AF_INET6;
		a->a6.sin6_port = htons(a->port);
		a->v6 = 1;
	} else {
		die_usage("--serve: '%s' is not a numeric IPv4 or IPv6 address", h);
	}
}

int server_run(const struct complete_model *cm, const struct server_config *c)
{
	struct listen_addr a;
	parse_listen(c->listen, &a);
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD;
	if (a.v6)
		flags |= MHD_USE_IPv6;
	struct sockaddr *sa = a.v6 ? (struct sockaddr *)&a.a6 : (struct sockaddr *)&a.a4;
	/* signals go to the sigwait below, not to the server's threads */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct server sv = { .cm = cm, .c = c };
	pthread_mutex_init(&sv.gen, NULL);
	pthread_mutex_init(&sv.lock, NULL);
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, a.port, NULL, NULL, handle, &sv, MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)(c->max_concurrent + 16),
		MHD_OPTION_CONNECTION_TIMEOUT, 60u, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
		MHD_OPTION_END);
	if (!d)
		die_errno("cannot listen on %s port %u", a.host, a.port);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = di ? di->port : a.port;
	fprintf(stderr, "%s: listening on http://%s%s%s:%u/v1/completions\n", cp_progname,
		a.v6 ? "[" : "", a.host, a.v6 ? "]" : "", bound);
	fflush(stderr);
	int sig;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	pthread_mutex_destroy(&sv.gen);
	pthread_mutex_destroy(&sv.lock);
	free(a.host);
	return 0;
}
