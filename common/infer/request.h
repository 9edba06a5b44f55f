/* request.h: cp-complete's requests and answers as text. A request is a JSON object in the
 * shape of OpenAI's Completions API (prompt, n, max_tokens, temperature, top_k, top_p, seed,
 * stop, suffix), read the same way from a --jsonl line and from the server's POST body; answers are
 * rendered here byte for byte: the choices and usage of a result, the server's
 * error object, a --jsonl result line, the command line's samples, and a score as JSON
 * or as coloured text. */
#ifndef CP_REQUEST_H
#define CP_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "infer/complete.h"

struct complete_request {
	struct complete_params p;
	char **stop;		/* owned copies; p.stop points at them */
	size_t n_stop;
	const char *prompt;	/* inside the json_t it was read from */
	size_t prompt_len;
	/* the server's fields (request_parse_openai): p.n is best_of, the samples made, of
	 * which the n_out best are answered */
	uint32_t n_out;
	int stream, echo, include_usage;
	int logprobs;		/* -1: not asked for */
};

/* Fill R from the JSON object REQ over the defaults D ("n" at most MAX_N). 0, or -1 with
 * *ERR (malloc'd) naming the field that is missing, of the wrong type or out of bounds.
 * R is to be freed with request_free either way. */
int request_parse(json_t *req, const struct complete_params *d, uint64_t max_n,
		  struct complete_request *r, char **err);
void request_free(struct complete_request *r);
/* After request_parse, the fields only the server reads: stream (and stream_options'
 * include_usage), echo, logprobs (0 to COMPLETE_MAX_LOGPROBS alternatives), best_of (from n
 * to MAX_N; not with stream). "user" and the fields cp does not know are ignored. 0, or -1
 * with *ERR. */
int request_parse_openai(json_t *req, uint64_t max_n, struct complete_request *r, char **err);

/* R from llama.cpp's POST /infill body REQ: input_prefix, input_suffix, prompt (the start
 * of the middle), n_predict (-1: no limit but the context), temperature, top_k, top_p, seed,
 * stop, with llama.cpp's defaults; one sample; "stream" true is refused. 0, or -1 with *ERR. */
int request_parse_infill(json_t *req, struct complete_request *r, char **err);

/* The defaults of a server request: OpenAI's 16 tokens at temperature 1. */
void request_server_defaults(struct complete_params *d);

/* "choices":[...],"usage":{...} of RES; OPENAI adds "logprobs":null to each choice. (The
 * server's answers are infer/api.h's.) */
void request_put_choices(struct buf *b, const struct complete_result *res, int openai);
/* {"error":{"message":MSG,"type":TYPE}}\n */
void request_put_error(struct buf *b, const char *type, const char *msg);

/* One --jsonl line (LEN bytes, line ending included or not) answered into B as one line:
 * the request's "id" when it has one, then its choices, or "error" with "line LINENO: ...".
 * 0, or -1 with *ERR (malloc'd; the message without the line) when the line failed; 1 and
 * nothing written for a blank line. */
int request_answer_line(const struct complete_model *cm, const char *line, size_t len,
			size_t lineno, const struct complete_params *d, uint32_t max_prompt,
			struct buf *b, char **err);

/* The command line's samples: the texts separated by "---" lines, or with JSON one object a
 * line with the token ids. */
void request_put_samples(struct buf *b, const struct complete_result *res, int json);
/* The prefill and decode timings of --stats as one JSON line. */
void request_put_stats(struct buf *b, const struct complete_result *res);

/* A score as JSON (every token with its text and log-probability, then the totals), or, with
 * VIEW, the text coloured by surprise and a summary line. */
void request_put_score(struct buf *b, const struct bpe *tok, const struct complete_score *sc,
		       int view);

#endif
