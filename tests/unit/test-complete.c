/* test-complete: what infer/complete adds for the server, on a small random model with a
 * byte tokenizer built here: complete_logprob against a log-softmax and a sort computed in
 * long double; the log-probabilities generation reports against scoring the same tokens
 * (a different path: the prompt and samples fed whole); on_token called once a token, with
 * DONE once a sample, the texts it sees growing into the result's, and its nonzero return
 * stopping the generation; complete_score_ids' alternatives sorted and holding the chosen
 * token whenever it is likely enough; complete_prompt's checks; a batch that jobs join
 * between steps and leave, its rows reused, giving each job's samples as it makes them
 * alone. */
#include "infer/complete.h"
#include "model/backend.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define V 300	/* 256 bytes, <|endoftext|>, and holes */

static void make(struct complete_model *cm)
{
	memset(cm, 0, sizeof(*cm));
	cm->be = &gpt2_cpu_backend;
	struct gpt2_config c = { V, 64, 2, 2, 32, 0, 0 };
	gpt2_create(&cm->m, &c);
	gpt2_init_weights(&cm->m, 5);
	for (uint64_t i = 0; i < cm->m.lay.total; i++)
		cm->m.params[i] *= 6;	/* far from a flat distribution */
	bpe_init(&cm->tok);
	for (int b = 0; b < 256; b++) {
		unsigned char ch = (unsigned char)b;
		bpe_add_token(&cm->tok, &ch, 1, (uint32_t)b);
	}
	bpe_add_token(&cm->tok, BPE_EOT, strlen(BPE_EOT), 256);
	bpe_finish(&cm->tok, "test");
	cm->mask = malloc(V * sizeof(float));
	for (uint32_t i = 0; i < V; i++)
		cm->mask[i] = i < cm->tok.n_ids ? 0 : -INFINITY;
}

static void test_logprob(void)
{
	float l[V], mask[V];
	srand(3);
	for (int i = 0; i < V; i++) {
		l[i] = (float)(rand() % 2000) / 100.0f - 10;
		mask[i] = i % 7 == 3 ? -INFINITY : 0;
	}
	l[20] = l[21] = 30;	/* a tie at the top: the lower id first */
	long double mx = -INFINITY, s = 0;
	for (int i = 0; i < V; i++)
		if (mask[i] == 0 && l[i] > mx)
			mx = l[i];
	for (int i = 0; i < V; i++)
		if (mask[i] == 0)
			s += expl(l[i] - mx);
	uint32_t top[5];
	double tlp[5];
	double lp = complete_logprob(l, mask, V, 42, 5, top, tlp);
	ok(fabs(lp - (double)(l[42] - mx - logl(s))) < 1e-9, "the chosen token's log-probability");
	/* the 5 best by an independent selection: repeated argmax over what is left */
	int taken[V] = { 0 }, same = 1;
	for (int j = 0; j < 5; j++) {
		int best = -1;
		for (int i = 0; i < V; i++)
			if (mask[i] == 0 && !taken[i] && (best < 0 || l[i] > l[best]))
				best = i;
		taken[best] = 1;
		same &= top[j] == (uint32_t)best && fabs(tlp[j] - (double)(l[best] - mx - logl(s))) < 1e-9;
	}
	ok(same, "the 5 likeliest, best first, ties to the lower id");
	ok(top[0] == 20 && top[1] == 21, "the tie");
	float few[4] = { 1, 2, -INFINITY, 0 }, m0[4] = { 0, 0, 0, -INFINITY };
	uint32_t t8[8];
	double l8[8];
	complete_logprob(few, m0, 4, 0, 8, t8, l8);
	ok(t8[0] == 1 && t8[1] == 0 && t8[2] == UINT32_MAX && isinf(l8[2]),
	   "fewer tokens than K: the rest marked none");
}

struct seen {
	uint32_t calls[4], done[4], stop_after;
	int grew, total;
	size_t len[4];
};

static int on_token(void *ctx, const struct complete_result *res, uint32_t b, int done)
{
	struct seen *s = ctx;
	s->calls[b]++;
	s->done[b] += done;
	s->grew &= res->s[b].n_tokens == s->calls[b];
	s->len[b] = res->s[b].text.len;
	return ++s->total == (int)s->stop_after;
}

static void test_generate(const struct complete_model *cm)
{
	struct complete_params p;
	complete_params_default(&p);
	p.n = 3;
	p.max_tokens = 12;
	p.temperature = 1;
	p.seed = 9;
	p.logprobs = 3;
	struct seen s = { .grew = 1 };
	p.on_token = on_token;
	p.ctx = &s;
	struct complete_result res;
	char *err = NULL;
	const char *prompt = "def f(x):";
	ok(complete_generate(cm, prompt, strlen(prompt), &p, 0, &res, &err) == 0, "generate");
	int calls = 1, dones = 1, lens = 1;
	for (uint32_t b = 0; b < 3; b++) {
		calls &= s.calls[b] == res.s[b].n_tokens;
		dones &= s.done[b] == 1;
		lens &= s.len[b] == res.s[b].text.len;
	}
	ok(calls && s.grew, "on_token once a token, the sample grown by one each time");
	ok(dones, "DONE once a sample");
	ok(lens && !res.cancelled, "its last call sees the final text");
	/* each reported log-probability is the score of the same token after the same prefix */
	double worst = 0;
	int topped = 1;
	for (uint32_t b = 0; b < 3; b++) {
		const struct complete_sample *sm = &res.s[b];
		size_t n = strlen(prompt) + sm->n_tokens;
		uint32_t *ids = malloc(n * sizeof(uint32_t));
		for (size_t i = 0; i < strlen(prompt); i++)
			ids[i] = (unsigned char)prompt[i];
		memcpy(ids + strlen(prompt), sm->ids, sm->n_tokens * sizeof(uint32_t));
		struct complete_score sc;
		ok(complete_score_ids(cm, ids, n, 3, &sc, &err) == 0, "score sample %u", b);
		for (uint32_t j = 0; j < sm->n_tokens; j++) {
			size_t q = strlen(prompt) + j;
			double d = fabs(sc.logprob[q] - sm->lp[j]);
			worst = d > worst ? d : worst;
			topped &= sc.top_id[q * 3] == sm->top_id[j * 3] &&
				  sm->top_lp[j * 3] >= sm->top_lp[j * 3 + 1] &&
				  sm->top_lp[j * 3 + 1] >= sm->top_lp[j * 3 + 2];
		}
		complete_score_free(&sc);
		free(ids);
	}
	ok(worst < 1e-4, "logprobs of generation equal the scores of the same tokens (%g)", worst);
	ok(topped, "and the same likeliest token, alternatives sorted");
	complete_result_free(&res);

	struct seen s2 = { .grew = 1, .stop_after = 4 };
	p.ctx = &s2;
	ok(complete_generate(cm, prompt, strlen(prompt), &p, 0, &res, &err) == 0 && res.cancelled,
	   "a nonzero return stops the generation");
	uint32_t got = 0;
	for (uint32_t b = 0; b < 3; b++)
		got += res.s[b].n_tokens;
	is_int(got, 4, "after the token it was called for");
	complete_result_free(&res);
}

static void test_prompt(const struct complete_model *cm)
{
	struct complete_params p;
	complete_params_default(&p);
	uint32_t *ids;
	size_t n;
	char *err = NULL;
	ok(complete_prompt(cm, "", 0, &p, 0, &ids, &n, &err) == 0 && n == 1 && ids[0] == 256,
	   "an empty prompt is <|endoftext|>");
	free(ids);
	ok(complete_prompt(cm, "abcdef", 6, &p, 5, &ids, &n, &err) == -1 && !ids, "over --max-prompt");
	is_str(err, "the prompt has 6 tokens, more than the limit of 5", "  says so");
	free(err);
	char big[80];
	memset(big, 'a', sizeof(big));
	ok(complete_prompt(cm, big, sizeof(big), &p, 0, &ids, &n, &err) == -1, "past the context");
	is_str(err, "the prompt has 80 tokens; the context holds 64, new tokens included", "  says so");
	free(err);
}

/* jobs joining a batch between its steps and leaving it, rows reused: each made as it is
 * alone */
static void test_batch(const struct complete_model *cm)
{
	static const char *const prompts[3] = { "def f(x):", "import os\n", "class A" };
	struct complete_params p[3];
	struct complete_result alone[3], res[3];
	struct complete_job j[3];
	char *err = NULL;
	for (int i = 0; i < 3; i++) {
		complete_params_default(&p[i]);
		p[i].n = (uint32_t)(2 - i % 2);
		p[i].max_tokens = (uint32_t)(10 + 5 * i);
		p[i].temperature = i == 1 ? 0 : 0.9;
		p[i].seed = (uint64_t)(40 + i);
		p[i].logprobs = 1;
		complete_generate(cm, prompts[i], strlen(prompts[i]), &p[i], 0, &alone[i], &err);
		j[i] = (struct complete_job){ .p = &p[i], .res = &res[i] };
	}
	/* 3 rows: the first two jobs at once, the third once rows are free */
	struct complete_batch *cb = complete_batch_new(cm, 3, 64, 1);
	uint32_t *ids[3];
	size_t n[3];
	for (int i = 0; i < 3; i++)
		complete_prompt(cm, prompts[i], strlen(prompts[i]), &p[i], 0, &ids[i], &n[i], &err);
	ok(complete_batch_add(cb, &j[0], ids[0], n[0], &err) == 0, "job 0 joins");
	complete_batch_step(cb);
	complete_batch_step(cb);
	ok(complete_batch_add(cb, &j[1], ids[1], n[1], &err) == 0, "job 1 joins two steps later");
	ok(complete_batch_add(cb, &j[2], ids[2], n[2], &err) == -1, "job 2 does not fit yet");
	free(err);
	int added = 0, steps = 0;
	while (complete_batch_step(cb) || !added) {
		if (!added && complete_batch_rows_free(cb) >= 2) {
			ok(complete_batch_add(cb, &j[2], ids[2], n[2], &err) == 0,
			   "job 2 joins in freed rows after %d more steps", steps);
			added = 1;
		}
		steps++;
	}
	int same = 1;
	double worst = 0;
	for (int i = 0; i < 3; i++) {
		ok(j[i].going == 0, "job %d done", i);
		for (uint32_t b = 0; b < p[i].n; b++) {
			const struct complete_sample *x = &res[i].s[b], *y = &alone[i].s[b];
			same &= x->n_tokens == y->n_tokens &&
				!memcmp(x->ids, y->ids, x->n_tokens * sizeof(uint32_t)) &&
				!strcmp(x->finish, y->finish) && x->text.len == y->text.len;
			for (uint32_t t = 0; same && t < x->n_tokens; t++)
				worst = fabs(x->lp[t] - y->lp[t]) > worst ? fabs(x->lp[t] - y->lp[t]) : worst;
		}
		free(ids[i]);
	}
	for (int i = 0; i < 3; i++)
		complete_result_free(&res[i]);
	ok(same, "each job's samples are the ones it makes alone");
	ok(worst < 1e-4, "  their log-probabilities to within rounding (%g)", worst);

	/* a job stopped by its on_token leaves; the other goes on as alone */
	struct complete_result r0, r1;
	struct complete_params q = p[0];
	struct seen stop = { .grew = 1, .stop_after = 3 };
	q.on_token = on_token;
	q.ctx = &stop;
	struct complete_job k0 = { .p = &q, .res = &r0 }, k1 = { .p = &p[1], .res = &r1 };
	complete_prompt(cm, prompts[0], strlen(prompts[0]), &q, 0, &ids[0], &n[0], &err);
	complete_prompt(cm, prompts[1], strlen(prompts[1]), &p[1], 0, &ids[1], &n[1], &err);
	complete_batch_add(cb, &k0, ids[0], n[0], &err);
	complete_batch_add(cb, &k1, ids[1], n[1], &err);
	while (complete_batch_step(cb))
		;
	ok(r0.cancelled && k0.going == 0 && r0.s[0].n_tokens + r0.s[1].n_tokens == 3,
	   "a job stopped by on_token leaves after its third token");
	ok(k1.going == 0 && r1.s[0].n_tokens == alone[1].s[0].n_tokens &&
	   !memcmp(r1.s[0].ids, alone[1].s[0].ids, r1.s[0].n_tokens * sizeof(uint32_t)),
	   "the job beside it is made as alone");
	ok(complete_batch_rows_free(cb) == 3, "all rows free again");
	free(ids[0]);
	free(ids[1]);
	complete_result_free(&r0);
	complete_result_free(&r1);
	complete_batch_free(cb);
	for (int i = 0; i < 3; i++)
		complete_result_free(&alone[i]);
}

int main(void)
{
	struct complete_model cm;
	make(&cm);
	test_logprob();
	test_generate(&cm);
	test_prompt(&cm);
	test_batch(&cm);
	gpt2_free(&cm.m);
	bpe_free(&cm.tok);
	free(cm.mask);
	return done_testing();
}
