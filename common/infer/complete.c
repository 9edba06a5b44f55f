/* complete.c: model loading, batched generation with stop strings, and scoring (complete.h),
 * on whichever backend cm->be names: only its inference half (kv_*) runs the model. */
#include "infer/complete.h"
#include "model/backend.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "model/ckpt.h"
#include "base/die.h"
#include "model/hf.h"
#include "infer/sample.h"
#include "base/xalloc.h"
#include "base/util.h"

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	struct stat st;
	int r = stat(p, &st) == 0;
	free(p);
	return r;
}

static int load_ckpt(struct complete_model *cm, const char *path)
{
	struct ckpt c;
	if (ckpt_read_header(path, &c))
		return -1;
	gpt2_create(&cm->m, &c.cfg);
	int r = ckpt_read_data(path, &c, cm->m.params, NULL, NULL);
	ckpt_free(&c);
	return r;
}

static int has_tokenizer(const char *dir)
{
	return exists(dir, "tokenizer.json") || (exists(dir, "vocab.json") && exists(dir, "merges.txt")) ||
	       (exists(dir, "encoder.json") && exists(dir, "vocab.bpe"));
}

int complete_load(struct complete_model *cm, const char *model, const char *tokenizer,
		  const char *device)
{
	memset(cm, 0, sizeof(*cm));
	char *tokdir = NULL, *err = NULL;
	int r;
	cm->be = gpt2_backend_select(device ? device : "cpu", &err);
	if (!cm->be) {
		error("%s", err);
		free(err);
		return -1;
	}
	if (is_dir(model)) {
		tokdir = xstrdup(model);
		if (exists(model, "config.json") && exists(model, "model.safetensors")) {
			struct gpt2_config c;
			if (gpt2_hf_read_config(model, &c))
				goto fail;
			gpt2_create(&cm->m, &c);
			r = gpt2_hf_load(model, &c, cm->m.params);
		} else {
			uint64_t step;
			char *path = ckpt_latest(model, &step);
			if (!path) {
				error("'%s': no checkpoint, and no config.json with model.safetensors",
				      model);
				goto fail;
			}
			r = load_ckpt(cm, path);
			free(path);
		}
	} else {
		const char *slash = strrchr(model, '/');
		tokdir = slash ? xstrndup(model, (size_t)(slash - model)) : xstrdup(".");
		r = load_ckpt(cm, model);
	}
	if (r)
		goto fail;
	if (!tokenizer) {
		if (!has_tokenizer(tokdir)) {
			error("'%s': no tokenizer beside the model (tokenizer.json, vocab.json + "
			      "merges.txt); name one with --tokenizer", tokdir);
			goto fail;
		}
		tokenizer = tokdir;
	}
	if (bpe_load(&cm->tok, tokenizer))
		goto fail;
	uint32_t V = cm->m.cfg.vocab_size;
	if (cm->tok.n_ids > V) {
		error("'%s': the tokenizer has %u ids, more than the model's vocabulary of %u",
		      tokenizer, cm->tok.n_ids, V);
		goto fail;
	}
	cm->mask = xreallocarray(NULL, V, sizeof(float));
	for (uint32_t i = 0; i < V; i++)
		cm->mask[i] = i < cm->tok.n_ids && cm->tok.len[i] != BPE_NONE ? 0 : -INFINITY;
	free(tokdir);
	return 0;
fail:
	free(tokdir);
	complete_free(cm);
	return -1;
}

void complete_free(struct complete_model *cm)
{
	if (cm->m.params)
		gpt2_free(&cm->m);
	bpe_free(&cm->tok);
	free(cm->mask);
	memset(cm, 0, sizeof(*cm));
}

void complete_params_default(struct complete_params *p)
{
	memset(p, 0, sizeof(*p));
	p->n = 1;
	p->max_tokens = 128;
	p->top_p = 1;
}

static uint32_t *encode(const struct complete_model *cm, const void *text, size_t len,
			size_t *n)
{
	struct bpe_encoder *e = bpe_encoder_new(&cm->tok);
	struct u32vec ids = { 0 };
	bpe_encode(e, text, len, 1, &ids);
	bpe_encoder_free(e);
	*n = ids.n;
	return ids.v;
}

int complete_generate(const struct complete_model *cm, const void *prompt, size_t len,
		      const struct complete_params *p, uint32_t max_prompt,
		      struct complete_result *res, char **err)
{
	size_t n;
	uint32_t *ids = encode(cm, prompt, len, &n);
	if (n == 0 && cm->tok.eot != BPE_NONE) {
		ids = xreallocarray(ids, 1, sizeof(uint32_t));
		ids[n++] = cm->tok.eot;
	}
	int r;
	memset(res, 0, sizeof(*res));
	if (max_prompt && n > max_prompt)
		r = error_to(err, "the prompt has %zu tokens, more than the limit of %u", n, max_prompt);
	else
		r = complete_generate_ids(cm, ids, n, p, res, err);
	free(ids);
	return r;
}

/* Cut the first stop string that ends in the bytes after OLD; 1 when one was found. Only the
 * tail that a new match could start in is searched: matches across tokens are found once. */
static int cut_stop(struct buf *t, size_t old, const struct complete_params *p, size_t longest)
{
	size_t from = old + 1 > longest ? old + 1 - longest : 0, best = SIZE_MAX;
	for (size_t i = 0; i < p->n_stop; i++) {
		size_t sl = strlen(p->stop[i]);
		if (sl == 0 || t->len - from < sl)
			continue;
		const unsigned char *hit = memmem(t->p + from, t->len - from, p->stop[i], sl);
		if (hit && (size_t)(hit - t->p) < best)
			best = (size_t)(hit - t->p);
	}
	if (best == SIZE_MAX)
		return 0;
	t->len = best;
	return 1;
}

/* The request's own errors, before any work. 0, or -1 with *ERR. */
static int check_request(const struct complete_model *cm, const uint32_t *ids, size_t n_ids,
			 const struct complete_params *p, char **err)
{
	uint32_t V = cm->m.cfg.vocab_size, n_ctx = cm->m.cfg.n_ctx;
	if (n_ids == 0)
		return error_to(err, "the prompt is empty");
	if (n_ids >= n_ctx)
		return error_to(err, "the prompt has %zu tokens; the context holds %u, new tokens included",
			    n_ids, n_ctx);
	if (p->n == 0 || p->n > 65536)
		return error_to(err, "the number of samples must be from 1 to 65536, not %u", p->n);
	for (size_t i = 0; i < n_ids; i++)
		if (ids[i] >= V)
			return error_to(err, "token id %u is outside the vocabulary (%u)", ids[i], V);
	return 0;
}

static void result_init(struct complete_result *res, uint32_t B, size_t n_ids, uint32_t max_tokens,
			uint32_t n_ctx)
{
	res->n = B;
	res->prompt_tokens = (uint32_t)n_ids;
	res->s = xcalloc(B, sizeof(*res->s));
	for (uint32_t b = 0; b < B; b++) {
		res->s[b].finish = "length";
		/* at most n_ctx - n_ids + 1 tokens fit */
		res->s[b].ids = xreallocarray(NULL, max_tokens < n_ctx ? max_tokens + 1 : n_ctx,
					      sizeof(uint32_t));
	}
}

/* One batch being decoded: the rows still going, their next tokens and generators. */
struct gen {
	const struct complete_model *cm;
	const struct complete_params *p;
	struct complete_result *res;
	struct gpt2_kv *st;
	float *logits;
	int *rows;
	uint32_t *next;
	struct sample_rng *rng;
	struct sampler **sm;
	int nth;
	size_t longest;		/* the longest stop string */
};

static void gen_open(struct gen *g, const struct complete_model *cm, const struct complete_params *p,
		     struct complete_result *res, int T)
{
	uint32_t B = p->n, V = cm->m.cfg.vocab_size;
	memset(g, 0, sizeof(*g));
	g->cm = cm;
	g->p = p;
	g->res = res;
	for (size_t i = 0; i < p->n_stop; i++)
		if (strlen(p->stop[i]) > g->longest)
			g->longest = strlen(p->stop[i]);
	g->st = cm->be->kv_new(&cm->m, (int)B, T);
	g->logits = xreallocarray(NULL, (size_t)B * V, sizeof(float));
	g->rows = xreallocarray(NULL, B, sizeof(int));
	g->next = xreallocarray(NULL, B, sizeof(uint32_t));
	g->rng = xreallocarray(NULL, B, sizeof(*g->rng));
	g->nth = omp_get_max_threads();
	g->sm = xcalloc((size_t)g->nth, sizeof(*g->sm));
	for (int i = 0; i < g->nth; i++)
		g->sm[i] = sampler_new(V);
}

static void gen_close(struct gen *g)
{
	for (int i = 0; i < g->nth; i++)
		sampler_free(g->sm[i]);
	free(g->sm);
	free(g->rng);
	free(g->next);
	free(g->rows);
	free(g->logits);
	g->cm->be->kv_free(g->st);
}

/* Append each going row's chosen token to its sample; keep the rows that go on (first in
 * rows[] and next[]) and return how many. */
static int gen_take(struct gen *g, int nr)
{
	const struct complete_model *cm = g->cm;
	const struct complete_params *p = g->p;
	uint32_t n_ctx = cm->m.cfg.n_ctx;
	int nf = 0;
	for (int i = 0; i < nr; i++) {
		struct complete_sample *s = &g->res->s[g->rows[i]];
		uint32_t t = g->next[i];
		s->ids[s->n_tokens++] = t;
		if (t == cm->tok.eot && !p->no_eot_stop) {
			s->finish = "stop";
			continue;
		}
		size_t tl, old = s->text.len;
		const unsigned char *tb = bpe_tok(&cm->tok, t, &tl);
		buf_put(&s->text, tb, tl);
		if (cut_stop(&s->text, old, p, g->longest)) {
			s->finish = "stop";
			continue;
		}
		if (s->n_tokens >= p->max_tokens || cm->be->kv_len(g->st, g->rows[i]) >= (int)n_ctx)
			continue;	/* "length" */
		g->rows[nf] = g->rows[i];
		g->next[nf] = t;
		nf++;
	}
	return nf;
}

int complete_generate_ids(const struct complete_model *cm, const uint32_t *ids, size_t n_ids,
			  const struct complete_params *p, struct complete_result *res, char **err)
{
	uint32_t V = cm->m.cfg.vocab_size, n_ctx = cm->m.cfg.n_ctx, B = p->n;
	memset(res, 0, sizeof(*res));
	if (check_request(cm, ids, n_ids, p, err))
		return -1;
	result_init(res, B, n_ids, p->max_tokens, n_ctx);
	if (p->max_tokens == 0)
		return 0;
	uint64_t want = (uint64_t)n_ids + p->max_tokens - 1;
	const struct gpt2_backend *be = cm->be;
	struct gen g;
	gen_open(&g, cm, p, res, (int)(want < n_ctx ? want : n_ctx));
	struct sample_opts so = { p->temperature, p->top_k, p->top_p };

	int zero = 0;
	double t0 = mono_now();
	be->kv_forward(g.st, &zero, 1, ids, (int)n_ids, g.logits, 0);
	double t1 = mono_now();
	for (uint32_t b = 0; b < B; b++) {
		sample_seed(&g.rng[b], p->seed, p->stream0 + b);
		g.rows[b] = (int)b;
		if (b) {
			be->kv_copy_row(g.st, (int)b, 0);
			memcpy(g.logits + (size_t)b * V, g.logits, V * sizeof(float));
		}
	}
	int nr = (int)B;
	while (nr > 0) {
		#pragma omp parallel for schedule(dynamic, 1) if (nr > 1 && (size_t)nr * V >= (1 << 17))
		for (int i = 0; i < nr; i++) {
			float *l = g.logits + (size_t)i * V;
			for (uint32_t v = 0; v < V; v++)
				l[v] += cm->mask[v];
			g.next[i] = sample_token(g.sm[omp_get_thread_num()], l, &so, &g.rng[g.rows[i]]);
		}
		nr = gen_take(&g, nr);
		if (nr)
			be->kv_forward(g.st, g.rows, nr, g.next, 1, g.logits, 0);
	}
	res->prefill_s = t1 - t0;
	res->decode_s = mono_now() - t1;
	gen_close(&g);
	return 0;
}

void complete_result_free(struct complete_result *r)
{
	for (uint32_t i = 0; r->s && i < r->n; i++) {
		buf_free(&r->s[i].text);
		free(r->s[i].ids);
	}
	free(r->s);
	memset(r, 0, sizeof(*r));
}

/* tokens fed to the model at once while scoring: bounds the logits held */
#define SCORE_CHUNK 64

int complete_score_text(const struct complete_model *cm, const void *text, size_t len,
			struct complete_score *sc, char **err)
{
	memset(sc, 0, sizeof(*sc));
	size_t N;
	uint32_t *ids = encode(cm, text, len, &N);
	if (N == 0) {
		free(ids);
		return error_to(err, "nothing to score: the text is empty");
	}
	uint32_t V = cm->m.cfg.vocab_size;
	size_t n_ctx = cm->m.cfg.n_ctx;
	sc->n = N;
	sc->ids = ids;
	sc->logprob = xreallocarray(NULL, N, sizeof(double));
	for (size_t i = 0; i < N; i++)
		sc->logprob[i] = NAN;
	if (n_ctx < 2 && N > 1) {
		complete_score_free(sc);
		return error_to(err, "a model with a context of %zu tokens cannot score", n_ctx);
	}
	int W = (int)(N < n_ctx ? N : n_ctx);
	const struct gpt2_backend *be = cm->be;
	struct gpt2_kv *st = be->kv_new(&cm->m, 1, W);
	float *logits = xreallocarray(NULL, (size_t)SCORE_CHUNK * V, sizeof(float));
	size_t start = 0, done = 1;	/* positions below done are scored */
	int zero = 0;
	for (;;) {
		size_t end = start + n_ctx < N ? start + n_ctx : N;
		be->kv_reset(st);
		for (size_t c = start; c < end; c += SCORE_CHUNK) {
			size_t ce = c + SCORE_CHUNK < end ? c + SCORE_CHUNK : end;
			be->kv_forward(st, &zero, 1, ids + c, (int)(ce - c), logits, 1);
			/* logits after token q predict token q + 1 */
			#pragma omp parallel for schedule(static) if ((ce - c) * V >= (1 << 17))
			for (size_t q = c; q < ce; q++) {
				if (q + 1 < done || q + 1 >= end)
					continue;
				const float *l = logits + (q - c) * V;
				float mx = -INFINITY;
				for (uint32_t v = 0; v < V; v++)
					if (l[v] + cm->mask[v] > mx)
						mx = l[v] + cm->mask[v];
				double s = 0;
				for (uint32_t v = 0; v < V; v++)
					s += exp((double)(l[v] + cm->mask[v] - mx));
				sc->logprob[q + 1] = (double)(l[ids[q + 1]] - mx) - log(s);
			}
		}
		done = end;
		if (end == N)
			break;
		start = end - n_ctx / 2;
	}
	sc->sum = 0;
	for (size_t i = 1; i < N; i++)
		sc->sum += sc->logprob[i];
	free(logits);
	be->kv_free(st);
	return 0;
}

void complete_score_free(struct complete_score *sc)
{
	free(sc->ids);
	free(sc->logprob);
	memset(sc, 0, sizeof(*sc));
}
