/* sample.h: choosing the next token from logits: greedy, or sampling with temperature, top-k
 * and top-p (nucleus) filtering, applied in that order as Hugging Face's generate does, driven
 * by a seeded generator so the same seed gives the same choices on every machine. */
#ifndef CP_SAMPLE_H
#define CP_SAMPLE_H

#include <stdint.h>

/* xoshiro256** seeded through splitmix64 */
struct sample_rng {
	uint64_t s[4];
};
/* The generator for stream STREAM of SEED: sample i of a request uses stream i, so each sample
 * draws the same numbers whatever else is in its batch. */
void sample_seed(struct sample_rng *r, uint64_t seed, uint64_t stream);
uint64_t sample_next(struct sample_rng *r);
/* uniform in [0, 1), 53 bits */
double sample_uniform(struct sample_rng *r);

struct sample_opts {
	double temperature;	/* 0: greedy */
	uint32_t top_k;		/* 0: no limit */
	double top_p;		/* 1: no limit */
};

/* scratch for one caller (thread) and vocabulary size */
struct sampler;
struct sampler *sampler_new(uint32_t V);
void sampler_free(struct sampler *s);

/* the index of the largest logit (the lowest index among equals) */
uint32_t sample_argmax(const float *logits, uint32_t V);
/* Choose a token from LOGITS[V]. Logits of -INFINITY are never chosen (a mask); at least one
 * logit must be finite. Greedy draws nothing from R. */
uint32_t sample_token(struct sampler *s, const float *logits, const struct sample_opts *o,
		      struct sample_rng *r);

#endif
