/* server.c: the HTTP completion server's daemon. libmicrohttpd runs a thread per
 * connection; a POST body is gathered up to the limit and handed to its endpoint
 * (server-api.c), which admits it or answers 429 and hands it to the one engine that
 * decodes all admitted requests together (continuous batching). The socket is bound before the
 * model is loaded, on a thread of its own: until it is, /health and the endpoints that need
 * it answer 503. A watchdog bounds each client's time to send its headers and its body, so
 * that idle or slow clients cannot hold the connections that /health and real requests
 * need. */
#include "infer/server.h"
#include "infer/server-impl.h"

#include "base/buf.h"
#include "base/cli.h"
#include "base/die.h"
#include "base/xalloc.h"
#include "infer/api.h"
#include "infer/request.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <omp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Defaults of the bounds left 0 in struct server_config */
#define SERVER_CONNECTIONS 256u	/* connections at once (a thread each) */
#define SERVER_PER_IP 64u	/* of them from one address */
#define SERVER_IDLE_S 15u	/* inactivity on a connection outside a generation */
#define SERVER_HEADER_S 10u	/* connect (or last answer) to the end of the headers */
#define SERVER_BODY_S 30u	/* the end of the headers to the end of the body */
#define SERVER_BATCH_ROWS 8	/* samples decoded together */

struct conn {
	struct buf body;
	int too_big;
	enum { R_COMPLETIONS, R_TOKENIZE, R_DETOKENIZE, R_INFILL } route;
};

static struct watch *watch_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *i =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return i ? i->socket_context : NULL;
}

/* Enter PHASE on C's connection, with SECS from now to finish it (WATCH_BUSY: unbounded) */
static void watch_set(struct server *sv, struct MHD_Connection *c, enum watch_phase phase,
		      unsigned secs)
{
	struct watch *w = watch_of(c);
	if (!w)
		return;
	pthread_mutex_lock(&sv->wlock);
	w->phase = phase;
	clock_gettime(CLOCK_MONOTONIC, &w->deadline);
	w->deadline.tv_sec += secs;
	pthread_mutex_unlock(&sv->wlock);
}

static void notify_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			      enum MHD_ConnectionNotificationCode toe)
{
	struct server *sv = cls;
	struct watch *w = *socket_context;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *i =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		w = xcalloc(1, sizeof(*w));
		w->fd = i ? i->connect_fd : -1;
		w->phase = WATCH_HEADERS;
		clock_gettime(CLOCK_MONOTONIC, &w->deadline);
		w->deadline.tv_sec += sv->header_s;
		pthread_mutex_lock(&sv->wlock);
		w->next = sv->watched.next;
		w->prev = &sv->watched;
		w->next->prev = w;
		sv->watched.next = w;
		pthread_mutex_unlock(&sv->wlock);
		*socket_context = w;
	} else if (w) {
		pthread_mutex_lock(&sv->wlock);
		w->prev->next = w->next;
		w->next->prev = w->prev;
		pthread_mutex_unlock(&sv->wlock);
		free(w);
		*socket_context = NULL;
	}
}

/* Cut the connections past their deadline, five times a second, until stopping */
static void *watchdog(void *arg)
{
	struct server *sv = arg;
	pthread_mutex_lock(&sv->wlock);
	while (!sv->stopping) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		for (struct watch *w = sv->watched.next; w != &sv->watched; w = w->next) {
			int late = w->deadline.tv_sec < now.tv_sec ||
				   (w->deadline.tv_sec == now.tv_sec &&
				    w->deadline.tv_nsec < now.tv_nsec);
			if (w->phase != WATCH_BUSY && late && !w->cut && w->fd >= 0) {
				shutdown(w->fd, SHUT_RDWR);	/* its thread sees EOF and closes */
				w->cut = 1;
			}
		}
		now.tv_nsec += 200000000L;
		if (now.tv_nsec >= 1000000000L) {
			now.tv_sec++;
			now.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&sv->wcond, &sv->wlock, &now);
	}
	pthread_mutex_unlock(&sv->wlock);
	return NULL;
}

enum MHD_Result server_reply(struct MHD_Connection *c, unsigned code, const struct buf *b)
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

enum MHD_Result server_error(struct MHD_Connection *c, unsigned code, const char *type,
			     const char *msg)
{
	struct buf b = { 0 };
	request_put_error(&b, type, msg);
	enum MHD_Result r = server_reply(c, code, &b);
	buf_free(&b);
	return r;
}

int server_conn_fd(struct MHD_Connection *c)
{
	struct watch *w = watch_of(c);
	return w ? w->fd : -1;
}

static enum MHD_Result reply_too_big(struct MHD_Connection *c, uint64_t max_body)
{
	char *m = xasprintf("the request body is larger than %llu bytes",
			    (unsigned long long)max_body);
	enum MHD_Result r = server_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "invalid_request_error", m);
	free(m);
	return r;
}

/* Whether the request's Content-Length already says its body is over MAX: answered at
 * once, before any body is read, and so before libmicrohttpd sends "100 Continue" (which
 * it does only when the first call queues no answer). libmicrohttpd itself refuses a
 * Content-Length that is not a number. */
static int body_too_long(struct MHD_Connection *c, uint64_t max)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (!v)
		return 0;
	errno = 0;
	char *end;
	unsigned long long n = strtoull(v, &end, 10);
	return errno == ERANGE || n > max;
}

static const struct complete_model *server_model(struct server *sv)
{
	pthread_mutex_lock(&sv->lock);
	const struct complete_model *cm = sv->cm;
	pthread_mutex_unlock(&sv->lock);
	return cm;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned code, const char *text)
{
	struct buf b = { 0 };
	buf_puts(&b, text);
	enum MHD_Result r = server_reply(c, code, &b);
	buf_free(&b);
	return r;
}

static enum MHD_Result reply_loading(struct MHD_Connection *c)
{
	return reply_text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			  "{\"error\":{\"code\":503,\"message\":\"Loading model\","
			  "\"type\":\"unavailable_error\"}}\n");
}

/* GET /: the page of the two demos (common/infer/web.html), served whole from the binary.
 * Its policy keeps the browser to this server: no script, style or request elsewhere. */
extern const char embed_infer_web_html[];
extern const unsigned long embed_infer_web_html_len;

static enum MHD_Result reply_page(struct MHD_Connection *c)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		embed_infer_web_html_len, (void *)embed_infer_web_html, MHD_RESPMEM_PERSISTENT);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
	MHD_add_response_header(r, "Content-Security-Policy",
				"default-src 'none'; script-src 'unsafe-inline'; "
				"style-src 'unsafe-inline'; connect-src 'self'");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

#define ENDPOINTS "GET /, POST /v1/completions, GET /v1/models, POST /tokenize, POST /detokenize, POST /infill, GET /health"

/* The GET endpoints, answered at once; -1 when URL is none of them */
static int serve_get(struct server *sv, struct MHD_Connection *c, const char *url,
		     enum MHD_Result *ret)
{
	struct buf b = { 0 };
	if (!strcmp(url, "/")) {
		*ret = reply_page(c);
		return 0;
	}
	if (!strcmp(url, "/health")) {
		if (!server_model(sv)) {
			*ret = reply_loading(c);
			return 0;
		}
		buf_puts(&b, "{\"status\":\"ok\"}\n");
	} else if (!strcmp(url, "/v1/models")) {
		api_put_models(&b, sv->c->model, sv->started);
	} else if (!strncmp(url, "/v1/models/", 11) && !strcmp(url + 11, sv->c->model)) {
		api_put_model(&b, sv->c->model, sv->started);
	} else if (!strncmp(url, "/v1/models/", 11)) {
		*ret = server_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error", "no such model");
		return 0;
	} else {
		return -1;
	}
	*ret = server_reply(c, MHD_HTTP_OK, &b);
	buf_free(&b);
	return 0;
}

/* The first call of a request: route it. GETs are answered at once; a POST to one of the
 * endpoints that take a body gets its struct conn (the body comes in the calls after). */
static enum MHD_Result route(struct server *sv, struct MHD_Connection *c, const char *url,
			     const char *method, void **con_cls)
{
	static const struct { const char *url; int route; } posts[] = {
		{ "/v1/completions", R_COMPLETIONS }, { "/tokenize", R_TOKENIZE },
		{ "/detokenize", R_DETOKENIZE }, { "/infill", R_INFILL },
	};
	int is_post = !strcmp(method, "POST"), is_get = !strcmp(method, "GET");
	enum MHD_Result ret;
	size_t i = 0, np = sizeof(posts) / sizeof(posts[0]);
	while (i < np && strcmp(url, posts[i].url))
		i++;
	if (i == np) {
		if (is_get && serve_get(sv, c, url, &ret) == 0)
			return ret;
		if (!is_get && (!strcmp(url, "/health") || !strncmp(url, "/v1/models", 10))) {
			char *m = xasprintf("use GET for %s", url);
			ret = server_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", m);
			free(m);
			return ret;
		}
		return server_error(c, MHD_HTTP_NOT_FOUND, "invalid_request_error",
				    "no such endpoint; use " ENDPOINTS);
	}
	if (!is_post) {
		char *m = xasprintf("use POST for %s", url);
		ret = server_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "invalid_request_error", m);
		free(m);
		return ret;
	}
	if (body_too_long(c, sv->c->max_body))
		return reply_too_big(c, sv->c->max_body);
	if (!server_model(sv))
		return reply_loading(c);
	watch_set(sv, c, WATCH_BODY, sv->body_s);
	struct conn *k = xcalloc(1, sizeof(*k));
	k->route = posts[i].route;
	*con_cls = k;
	return MHD_YES;
}

/* A POST's body once whole, to its endpoint */
static enum MHD_Result serve_body(struct server *sv, struct MHD_Connection *c, struct conn *k)
{
	if (k->too_big)
		return reply_too_big(c, sv->c->max_body);
	const char *body = k->body.p ? (const char *)k->body.p : "";
	switch (k->route) {
	case R_TOKENIZE: return api_tokenize(sv, c, body, k->body.len);
	case R_DETOKENIZE: return api_detokenize(sv, c, body, k->body.len);
	case R_INFILL: return api_infill(sv, c, body, k->body.len);
	default: return api_completion(sv, c, body, k->body.len);
	}
}

/* The first call for a request routes it (GETs are answered at once); a POST then comes
 * back with its body in pieces, and once more with none. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *data_size, void **con_cls)
{
	(void)version;
	struct server *sv = cls;
	struct conn *k = *con_cls;
	if (!k)
		return route(sv, c, url, method, con_cls);
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
	watch_set(sv, c, WATCH_BUSY, 0);
	return serve_body(sv, c, k);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode why)
{
	(void)why;
	struct server *sv = cls;
	/* a kept-alive connection has the header bound again for its next request */
	watch_set(sv, c, WATCH_HEADERS, sv->header_s);
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

static void server_watch_init(struct server *sv)
{
	const struct server_config *c = sv->c;
	sv->idle_s = c->idle_timeout ? c->idle_timeout : SERVER_IDLE_S;
	sv->header_s = c->header_timeout ? c->header_timeout : SERVER_HEADER_S;
	sv->body_s = c->body_timeout ? c->body_timeout : SERVER_BODY_S;
	sv->batch_rows = c->batch_rows ? (int)c->batch_rows : SERVER_BATCH_ROWS;
	pthread_mutex_init(&sv->lock, NULL);
	pthread_mutex_init(&sv->wlock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);	/* the deadlines' clock */
	pthread_cond_init(&sv->wcond, &ca);
	pthread_condattr_destroy(&ca);
	sv->watched.next = sv->watched.prev = &sv->watched;
}

/*
 * Stopping. A signal wakes server_run through a pipe its handler writes to, rather than
 * through sigwait with the signals blocked: a library may start threads before server_run
 * can block anything (OpenBLAS starts its pool when it loads), and a process-directed
 * SIGTERM delivered to one of those would kill the server with 143 instead of stopping it.
 */
static int server_wake_fd[2] = { -1, -1 };

static void server_wake(char why)
{
	ssize_t n = write(server_wake_fd[1], &why, 1);	/* async-signal-safe; full means woken */
	(void)n;
}

static void server_on_signal(int sig)
{
	int saved = errno;
	server_wake((char)sig);
	errno = saved;
}

static void server_signals(void)
{
	if (pipe(server_wake_fd) != 0)
		die_errno("cannot make the server's wake-up pipe");
	for (int i = 0; i < 2; i++) {
		fcntl(server_wake_fd[i], F_SETFD, FD_CLOEXEC);
		fcntl(server_wake_fd[i], F_SETFL, O_NONBLOCK);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = server_on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* until a signal or a failed load writes to the pipe */
static void server_wait(void)
{
	struct pollfd p = { .fd = server_wake_fd[0], .events = POLLIN };
	while (poll(&p, 1, -1) < 0 && errno == EINTR)
		;
}

/* The model, loaded on a thread of its own while the server answers 503 */
struct loader {
	struct server *sv;
	struct complete_model cm;
	int state;	/* 0 loading, 1 loaded, -1 failed (under sv->lock) */
};

static void *load_model(void *arg)
{
	struct loader *l = arg;
	const struct server_config *c = l->sv->c;
	int r = complete_load(&l->cm, c->model, c->tokenizer, c->device);
	if (!r && c->bf16)
		complete_weights_bf16(&l->cm);
	if (!r)
		l->sv->engine = api_engine_start(l->sv, &l->cm);
	pthread_mutex_lock(&l->sv->lock);
	l->state = r ? -1 : 1;
	if (!r)
		l->sv->cm = &l->cm;
	pthread_mutex_unlock(&l->sv->lock);
	if (r) {
		server_wake('L');	/* server_run stops and exits 1 */
	} else {
		fprintf(stderr, "%s: model loaded, ready\n", cp_progname);
		fflush(stderr);
	}
	return NULL;
}

static struct MHD_Daemon *server_listen(struct server *sv, const struct listen_addr *a)
{
	const struct server_config *c = sv->c;
	/* poll rather than select: hundreds of connections may pass FD_SETSIZE's descriptors */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
	if (a->v6)
		flags |= MHD_USE_IPv6;
	const struct sockaddr *sa = a->v6 ? (const struct sockaddr *)&a->a6
					  : (const struct sockaddr *)&a->a4;
	struct MHD_Daemon *d = MHD_start_daemon(
		flags, a->port, NULL, NULL, handle, sv, MHD_OPTION_SOCK_ADDR, sa,
		MHD_OPTION_CONNECTION_LIMIT, c->connections ? c->connections : SERVER_CONNECTIONS,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, c->per_ip ? c->per_ip : SERVER_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, sv->idle_s, MHD_OPTION_NOTIFY_COMPLETED, completed, sv,
		MHD_OPTION_NOTIFY_CONNECTION, notify_connection, sv, MHD_OPTION_END);
	if (!d)
		die_errno("cannot listen on %s port %u", a->host, a->port);
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	unsigned bound = di ? di->port : a->port;
	fprintf(stderr, "%s: listening on http://%s%s%s:%u/v1/completions\n", cp_progname,
		a->v6 ? "[" : "", a->host, a->v6 ? "]" : "", bound);
	fflush(stderr);
	return d;
}

static void server_stop(struct server *sv, struct MHD_Daemon *d, pthread_t wd)
{
	pthread_mutex_lock(&sv->wlock);
	sv->stopping = 1;
	pthread_cond_signal(&sv->wcond);
	pthread_mutex_unlock(&sv->wlock);
	pthread_join(wd, NULL);
	MHD_stop_daemon(d);
}

int server_run(const struct server_config *c)
{
	struct listen_addr a;
	parse_listen(c->listen, &a);
	server_signals();
	/* on the heap: a load still running when the server stops outlives this call */
	struct server *sv = xcalloc(1, sizeof(*sv));
	struct loader *l = xcalloc(1, sizeof(*l));
	sv->c = c;
	sv->started = (long long)time(NULL);
	l->sv = sv;
	server_watch_init(sv);
	struct MHD_Daemon *d = server_listen(sv, &a);
	free(a.host);
	pthread_t wd, ld;
	int e = pthread_create(&wd, NULL, watchdog, sv);
	if (!e)
		e = pthread_create(&ld, NULL, load_model, l);
	if (e)
		die("cannot start the server's threads: %s", strerror(e));
	server_wait();
	server_stop(sv, d, wd);
	pthread_mutex_lock(&sv->lock);
	int state = l->state;
	pthread_mutex_unlock(&sv->lock);
	if (state == 0)
		return 0;	/* stopped while loading: the load ends with the process */
	pthread_join(ld, NULL);
	api_engine_stop(sv->engine);
	if (state > 0)
		complete_free(&l->cm);
	pthread_mutex_destroy(&sv->lock);
	pthread_mutex_destroy(&sv->wlock);
	pthread_cond_destroy(&sv->wcond);
	free(l);
	free(sv);
	return state > 0 ? 0 : EXIT_ERR;
}
