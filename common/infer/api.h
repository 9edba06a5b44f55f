/* api.h: the server's answers in the shapes the tools people use already read: OpenAI's
 * completion object and its streamed chunks (server-sent events), with the logprobs object
 * (tokens, token_logprobs, top_logprobs, text_offset) and echo; the model list; llama.cpp's
 * /tokenize, /detokenize and /infill. Each renders into a buffer, byte for byte, from a result. */
#ifndef CP_API_H
#define CP_API_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "infer/complete.h"
#include "infer/request.h"

/* One completion being answered */
struct api_answer {
	const struct bpe *tok;
	const struct complete_request *rq;	/* the prompt, echo, logprobs, n_out */
	const char *model;
	unsigned long long id;
	long long created;
	const struct complete_result *res;
	const uint32_t *prompt_ids;		/* the prompt's tokens, n_prompt of them */
	size_t n_prompt;
	const struct complete_score *prompt_sc;	/* echo with logprobs: the prompt's scores */
	const uint32_t *order;	/* the rq->n_out samples answered, best first; NULL: in order */
};

/* The samples' order for best_of: by mean log-probability of their tokens, highest first
 * (ties: the lower index first); the first N of ORDER[res->n] are the answer. Needs res->k
 * >= 0. */
void api_rank(const struct complete_result *res, uint32_t *order);

/* The completion object: {"id":"cmpl-ID","object":"text_completion",...}\n */
void api_put_completion(struct buf *b, const struct api_answer *a);

/* llama.cpp's /infill answer of the first sample: {"content":TEXT,"stop":true,
 * "stop_type":"eos"|"word"|"limit","tokens_predicted":N,"tokens_evaluated":M,...}\n */
void api_put_infill(struct buf *b, const struct api_answer *a);

/* Streaming: what one sample has sent so far */
struct api_stream_pos {
	size_t text;		/* bytes of its text */
	uint32_t tokens;	/* tokens of its logprobs */
	int finished;		/* its finish_reason was sent */
};
/* The chunk ("data: {...}\n\n") that sample OUT (the answer's index; sample S) owes after
 * its latest token: the text that no later stop string or UTF-8 sequence can still change
 * (all of it when DONE), with the log-probabilities of the tokens starting in it, and
 * finish_reason when DONE. Advances *POS. ECHO: the first chunk, with the prompt (and its
 * logprobs) alone. */
void api_put_chunk(struct buf *b, const struct api_answer *a, uint32_t out,
		   const struct complete_sample *s, struct api_stream_pos *pos, int done);
void api_put_echo_chunk(struct buf *b, const struct api_answer *a, uint32_t out);
/* the last chunks: the usage (when asked for with stream_options.include_usage), then
 * "data: [DONE]" */
void api_put_stream_end(struct buf *b, const struct api_answer *a);

/* GET /v1/models: the one model; and /v1/models/ID: it alone */
void api_put_models(struct buf *b, const char *model, long long created);
void api_put_model(struct buf *b, const char *model, long long created);

/* /tokenize's answer: {"tokens":[ids]} or, with PIECES, [{"id":ID,"piece":...}] (the piece
 * a string when it is valid UTF-8, else its bytes as numbers, as llama.cpp gives it) */
void api_put_tokens(struct buf *b, const struct bpe *tok, const uint32_t *ids, size_t n,
		    int pieces);
/* /detokenize's answer: {"content":TEXT} */
void api_put_content(struct buf *b, const void *text, size_t len);

/* Characters (as Python counts a str) in the UTF-8 bytes P[N): bytes that are no
 * continuation byte. What text_offset counts in. */
size_t api_chars(const unsigned char *p, size_t n);
/* How much of TEXT[LEN] can be sent before a stop string of LONGEST bytes completes or a
 * UTF-8 sequence is cut: LEN less LONGEST - 1 bytes, less an unfinished sequence's start. */
size_t api_safe_len(const unsigned char *text, size_t len, size_t longest);

#endif
