/* server-impl.h: what the server's two files share (not an interface for anyone else):
 * server.c runs the daemon (connections, the watchdog, routing, loading the model),
 * server-api.c answers the endpoints (completions whole or streamed, models, tokenize) and
 * runs the engine that generates them. */
#ifndef CP_SERVER_IMPL_H
#define CP_SERVER_IMPL_H

#include <microhttpd.h>
#include <pthread.h>

#include "base/buf.h"
#include "infer/server.h"

#include <time.h>

enum watch_phase { WATCH_HEADERS, WATCH_BODY, WATCH_BUSY };

/* One TCP connection under the watchdog: cut (shutdown) when its deadline passes while it
 * is still sending headers or body. Listed from libmicrohttpd's "started" notice to its
 * "closed" one, which comes before the socket is closed, so a cut never hits a reused fd. */
struct watch {
	struct watch *prev, *next;
	int fd, cut;
	enum watch_phase phase;
	struct timespec deadline;	/* CLOCK_MONOTONIC */
};

struct engine;

struct server {
	const struct complete_model *cm;	/* NULL while loading (under lock) */
	const struct server_config *c;
	struct engine *engine;	/* what generates, once the model is loaded */
	int batch_rows;		/* samples it decodes together */
	pthread_mutex_t lock;
	unsigned inflight;
	unsigned long long served;
	long long started;	/* the models' "created" */
	unsigned idle_s, header_s, body_s;
	pthread_mutex_t wlock;	/* the watch list and stopping */
	pthread_cond_t wcond;
	struct watch watched;	/* the list's head */
	int stopping;
};

/* a JSON answer (Content-Type application/json) */
enum MHD_Result server_reply(struct MHD_Connection *c, unsigned code, const struct buf *b);
/* {"error":{"message":MSG,"type":TYPE}} */
enum MHD_Result server_error(struct MHD_Connection *c, unsigned code, const char *type,
			     const char *msg);
/* the socket of C's connection, or -1 */
int server_conn_fd(struct MHD_Connection *c);

/* The engine that decodes every request of SV on CM, in one batch; stopped and freed */
struct engine *api_engine_start(struct server *sv, const struct complete_model *cm);
void api_engine_stop(struct engine *e);

/* POST /v1/completions with BODY (LEN bytes): answered whole or as a stream */
enum MHD_Result api_completion(struct server *sv, struct MHD_Connection *c, const char *body,
			       size_t len);
/* POST /infill (llama.cpp's), answered whole */
enum MHD_Result api_infill(struct server *sv, struct MHD_Connection *c, const char *body,
			   size_t len);
/* POST /tokenize, POST /detokenize */
enum MHD_Result api_tokenize(struct server *sv, struct MHD_Connection *c, const char *body,
			     size_t len);
enum MHD_Result api_detokenize(struct server *sv, struct MHD_Connection *c, const char *body,
			       size_t len);

#endif
