/* complete.h: what cp-complete and cp-humaneval generate share: loading a model with its
 * tokenizer, generating n samples of a prompt as one batch (temperature, top-k, top-p, seed,
 * a token budget, stop strings), and scoring text token by token.
 *
 * A loaded model is read-only: several threads may generate from it at once, each call with
 * its own inference state. */
#ifndef CP_COMPLETE_H
#define CP_COMPLETE_H

#include <stddef.h>
#include <stdint.h>

#include "tok/bpe.h"
#include "tok/fim.h"
#include "base/buf.h"
#include "model/gpt2.h"

struct gpt2_backend;
struct gpt2_kv;
struct complete_result;

struct complete_model {
	const struct gpt2_backend *be;	/* what runs the model */
	struct gpt2_model m;	/* parameters only */
	struct bpe tok;
	float *mask;		/* [V]: 0, or -INFINITY for ids that are no token */
	struct fim_ids fim;	/* with has_fim: the tokenizer's FIM tokens (cp-bpe --fim) */
	int has_fim;
	/* on a backend that copies the weights to its device: a one-token state kept while the
	 * model is loaded, which keeps them there as batches and scores come and go */
	struct gpt2_kv *pin;
};

/* Load MODEL: a cp-train run directory (its latest checkpoint), a checkpoint file, or a Hugging
 * Face GPT-2 directory (config.json, model.safetensors). The tokenizer is TOKENIZER when given,
 * else the one beside the model (tokenizer.json, vocab.json + merges.txt, or encoder.json +
 * vocab.bpe in the model's directory). DEVICE (cpu, cuda[:N]; NULL: cpu) names the backend
 * that runs it. 0, or -1 after an error naming the file or the device. */
int complete_load(struct complete_model *cm, const char *model, const char *tokenizer,
		  const char *device);
void complete_free(struct complete_model *cm);
/* Generate with the model's weights in bf16 from now on (model/cpu-bf16.h: about half the
 * memory traffic a token on the CPU; the logits within bf16's rounding of fp32's). */
void complete_weights_bf16(struct complete_model *cm);

struct complete_params {
	uint32_t n;		/* samples */
	uint32_t max_tokens;	/* new tokens per sample */
	double temperature;	/* 0: greedy */
	uint32_t top_k;		/* 0: off */
	double top_p;		/* 1: off */
	uint64_t seed;
	uint64_t stream0;	/* sample i draws from stream stream0 + i of seed */
	const char *const *stop;	/* stop strings (NUL-terminated, non-empty) */
	size_t n_stop;
	int no_eot_stop;	/* keep going past <|endoftext|> */
	/* Fill-in-the-middle: with SUFFIX (not NULL) the prompt is the prefix, and the model is
	 * asked for the middle, "<fim_prefix> prompt <fim_suffix> suffix <fim_middle> middle"
	 * (MIDDLE: the start of the middle, as llama.cpp's /infill "prompt"; may be NULL), each
	 * sample stopping at a FIM token as at <|endoftext|>. */
	const char *suffix, *middle;
	size_t suffix_len, middle_len;
	/* -1: no log-probabilities; else each token's, with the K likeliest alternatives'
	 * (K = logprobs, at most COMPLETE_MAX_LOGPROBS) */
	int logprobs;
	/* When set, called after each token of each sample (SAMPLE got a token; DONE: it was
	 * its last): what streams a completion. A nonzero return stops the whole generation
	 * (the client went away); the result then says cancelled. */
	int (*on_token)(void *ctx, const struct complete_result *res, uint32_t sample, int done);
	void *ctx;
};
#define COMPLETE_MAX_LOGPROBS 20
/* n 1, 128 tokens, greedy, top-k off, top-p 1, seed 0, no stop strings, no logprobs */
void complete_params_default(struct complete_params *p);

struct complete_sample {
	struct buf text;	/* the completion alone, stop string cut */
	const char *finish;	/* "stop" (a stop string or <|endoftext|>) or "length" */
	uint32_t n_tokens;	/* tokens generated, the stopping one included */
	uint32_t *ids;		/* those tokens */
	/* with logprobs >= 0: each token's log-probability under the model (temperature and
	 * filters aside), and for token j the K likeliest ids and theirs at [j*K .. j*K+K) */
	double *lp;
	uint32_t *top_id;
	double *top_lp;
};

struct complete_result {
	uint32_t n;
	int k;			/* alternatives kept per token (-1: no logprobs) */
	int cancelled;		/* on_token stopped it */
	struct complete_sample *s;
	uint32_t prompt_tokens;
	double prefill_s, decode_s;	/* wall time reading the prompt, and generating */
};

/* Encode PROMPT (<|endoftext|> in it becomes that token; an empty prompt is <|endoftext|>) and
 * generate P->n samples, decoded together as one batch. Sample i draws from stream
 * P->stream0 + i of P->seed, so many samples can be made in smaller batches (the cache takes
 * 8 * n_layer * n_embd * n * (prompt + max_tokens) bytes) and still be the ones one seed
 * names. 0, or -1 with *ERR set (malloc'd) when the request cannot be served: a prompt that
 * leaves no room in the context, or one longer than MAX_PROMPT tokens (0: no limit). */
int complete_generate(const struct complete_model *cm, const void *prompt, size_t len,
		      const struct complete_params *p, uint32_t max_prompt,
		      struct complete_result *res, char **err);
/* TEXT as token ids (malloc'd, *N of them; <|endoftext|> in it becomes that token) */
uint32_t *complete_encode(const struct complete_model *cm, const void *text, size_t len,
			  size_t *n);
/* The prompt of complete_generate as token ids (malloc'd, *N of them), checked against P
 * and MAX_PROMPT as it does: 0, or -1 with *ERR and *IDS NULL. With P->suffix, the FIM
 * prompt, refused for a tokenizer without the FIM tokens. */
int complete_prompt(const struct complete_model *cm, const void *prompt, size_t len,
		    const struct complete_params *p, uint32_t max_prompt, uint32_t **ids,
		    size_t *n, char **err);
/* the same from token ids */
int complete_generate_ids(const struct complete_model *cm, const uint32_t *ids, size_t n_ids,
			  const struct complete_params *p, struct complete_result *res, char **err);
void complete_result_free(struct complete_result *r);

/* Continuous batching: rows that requests (jobs) join and leave between steps, decoded
 * together, each job as complete_generate_ids would make it alone (the same draws; the
 * logits to within the kernels' rounding for another number of rows). One thread drives a
 * batch. ROWS samples at once, of up to T tokens each (prompt included); FLAGS:
 * COMPLETE_BATCH_REUSE, rows are freed and taken again (a spare empty row resets them);
 * COMPLETE_BATCH_HOLD (implies REUSE), a row more holds a prompt for complete_batch_open. */
#define COMPLETE_BATCH_REUSE 1
#define COMPLETE_BATCH_HOLD 2
struct complete_batch;
struct complete_job {
	const struct complete_params *p;
	struct complete_result *res;	/* filled as it goes; res->cancelled: on_token stopped it */
	uint32_t going;			/* its samples not yet finished: 0 once done */
	uint32_t started;		/* its samples given a row so far */
	size_t longest;			/* private */
	double t_decode;
};
struct complete_batch *complete_batch_new(const struct complete_model *cm, int rows, int T,
					  int flags);
void complete_batch_free(struct complete_batch *cb);
int complete_batch_rows_free(const struct complete_batch *cb);
/* The bytes a batch's cache may draw on: the host's memory (*HOST 1), or on a backend with
 * device copies the device's free memory (*HOST 0; the host's where it does not say). */
uint64_t complete_batch_memory(const struct complete_model *cm, int *host);
/* Check J's request, read its prompt IDS and start its P->n samples: 0 (J->going 0 at once
 * for max_tokens 0), or -1 with *ERR (malloc'd) for a request complete_generate_ids would
 * refuse, or one that does not fit the free rows or T. */
int complete_batch_add(struct complete_batch *cb, struct complete_job *j, const uint32_t *ids,
		       size_t n_ids, char **err);
/* As complete_batch_add, but J's samples start as rows come free (a batch made with
 * COMPLETE_BATCH_HOLD): as many as are free now, the rest through complete_batch_more. The
 * prompt is read once into the hold row and each sample's row copied from it; a job whose
 * prompt is the one held (another seed's samples of it) reads nothing. One job at a time may
 * have samples still to start. */
int complete_batch_open(struct complete_batch *cb, struct complete_job *j, const uint32_t *ids,
			size_t n_ids, char **err);
/* Start as many of J's remaining samples as there are free rows; those still to start */
uint32_t complete_batch_more(struct complete_batch *cb, struct complete_job *j);
/* One token for every going sample (calling the jobs' on_token); the samples still going */
int complete_batch_step(struct complete_batch *cb);

/* per-token log-probabilities of a text */
struct complete_score {
	size_t n;		/* tokens */
	uint32_t *ids;
	double *logprob;	/* logprob[0] is NAN: nothing predicts the first token */
	double sum;		/* of logprob[1..n) */
	int k;			/* alternatives kept per token (-1: none) */
	uint32_t *top_id;	/* with k >= 0: token i's K likeliest, at [i*K ..), from 1 on */
	double *top_lp;
};
/* Score TEXT. Texts longer than the context are cut into windows of n_ctx tokens that overlap
 * by half, each token scored with as much context as its window gives. 0, or -1 with *ERR. */
int complete_score_text(const struct complete_model *cm, const void *text, size_t len,
			struct complete_score *sc, char **err);
/* Score the N token ids IDS (copied), keeping the K likeliest alternatives of each (-1:
 * none) as well. 0, or -1 with *ERR. */
int complete_score_ids(const struct complete_model *cm, const uint32_t *ids, size_t n, int k,
		       struct complete_score *sc, char **err);
void complete_score_free(struct complete_score *sc);

/* The log-probability of token CHOSEN in LOGITS[V] (MASK[V] added: 0, or -INFINITY for no
 * token), and the K likeliest tokens (ties: the lower id first) with theirs into TOP_ID[K]
 * and TOP_LP[K] (K may be 0). What scoring and generation both report. */
double complete_logprob(const float *logits, const float *mask, uint32_t V, uint32_t chosen,
			int k, uint32_t *top_id, double *top_lp);

#endif
