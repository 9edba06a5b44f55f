/* server.h: cp-complete --serve, an HTTP server (libmicrohttpd) in the shape of OpenAI's
 * Completions API and llama.cpp's server: POST /v1/completions (whole, or streamed as
 * server-sent events), GET /v1/models, POST /tokenize and /detokenize, GET /health (503
 * while the model loads) on one address. Requests are read by infer/request.h and answered
 * by infer/api.h; one generation runs at a time (each uses every core), and
 * requests beyond a limit admitted at once are answered 429 at once. A body whose
 * Content-Length is over the limit is answered 413 before it is read (and gets no
 * "100 Continue"); clients that take too long over their headers or body are cut off. */
#ifndef CP_SERVER_H
#define CP_SERVER_H

#include <stdint.h>

#include "infer/complete.h"

struct server_config {
	const char *listen;	/* [HOST:]PORT; HOST a numeric IPv4 or [IPv6] address */
	const char *model;	/* what is loaded (complete_load's MODEL), the "model" of each answer */
	const char *tokenizer, *device;	/* complete_load's (NULL: beside the model, cpu) */
	uint64_t max_body;	/* largest request body in bytes */
	uint64_t max_prompt;	/* longest prompt in tokens (0: the context) */
	uint64_t max_concurrent;	/* requests admitted at once */
	uint64_t max_n;		/* most samples a request may ask for */
	uint64_t batch_rows;	/* samples decoded together (0: the default in server.c); a
				 * request of more is made alone */
	int threads;		/* OpenMP threads of a generation (0: as they are) */
	int bf16;		/* the weights in bf16 (complete_weights_bf16) */
	/* bounds on clients, 0 for the defaults in server.c: connections at once and from one
	 * address; seconds of inactivity, from connecting (or the last answer) to the end of
	 * the headers, and from there to the end of the body (a client past one is cut off) */
	unsigned connections, per_ip, idle_timeout, header_timeout, body_timeout;
};

/* Load C->model and serve it on C->listen until SIGINT, SIGTERM or SIGHUP: "listening on
 * URL" goes to stderr once the socket is bound (port 0: any free port, the URL names the one
 * taken), before the model is loaded; "model loaded, ready" once it is. A malformed address
 * is a usage error (exit 2); 0 after the signal, EXIT_ERR when the model cannot be loaded
 * (the error said), or dies when it cannot listen. */
int server_run(const struct server_config *c);

#endif
