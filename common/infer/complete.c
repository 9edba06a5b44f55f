/* complete.c: model loading, batched generation with stop strings, and scoring (complete.h),
 * on whichever backend cm->be names: only its inference half (kv_*) runs the model. */
#include "infer/complete.h"
#include "model/cpu-bf16.h"
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
#include <unistd.h>

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

/* A backend with device copies of the weights (not host_memory) makes them with a model's
 * first state and drops them with its last: a state held for the model's life makes that
 * once, not once a batch (cp-humaneval makes hundreds). Made again when the weights change. */
static void pin_weights(struct complete_model *cm)
{
	if (cm->pin)
		cm->be->kv_free(cm->pin);
	cm->pin = cm->be->host_memory ? NULL : cm->be->kv_new(&cm->m, 1, 1);
}

void complete_weights_bf16(struct complete_model *cm)
{
	if (!cm->m.infer_bf16)
		cm->m.infer_bf16 = cpu_bf16_model_new(&cm->m);
	pin_weights(cm);
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
	const char *missing;
	cm->has_fim = !fim_find(&cm->tok, &cm->fim, &missing);
	cm->mask = xreallocarray(NULL, V, sizeof(float));
	for (uint32_t i = 0; i < V; i++)
		cm->mask[i] = i < cm->tok.n_ids && cm->tok.len[i] != BPE_NONE ? 0 : -INFINITY;
	free(tokdir);
	pin_weights(cm);
	return 0;
fail:
	free(tokdir);
	complete_free(cm);
	return -1;
}

void complete_free(struct complete_model *cm)
{
	if (cm->pin)
		cm->be->kv_free(cm->pin);
	if (cm->m.params)
		gpt2_free(&cm->m);
	bpe_free(&cm->tok);
	free(cm->mask);
	memset(cm, 0, sizeof(*cm));
}

void complete_params_default(struct complete_params *p)
{
	memset(p, 0, sizeof(*p));
	p->logprobs = -1;
	p->n = 1;
	p->max_tokens = 128;
	p->top_p = 1;
}

uint32_t *complete_encode(const struct complete_model *cm, const void *text, size_t len,
			  size_t *n)
{
	struct bpe_encoder *e = bpe_encoder_new(&cm->tok);
	struct u32vec ids = { 0 };
	bpe_encode(e, text, len, 1, &ids);
	bpe_encoder_free(e);
	*n = ids.n;
	return ids.v;
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

/* P's FIM prompt of PROMPT (the prefix) into *IDS: 0, or -1 with *ERR */
static int fim_prompt_ids(const struct complete_model *cm, const void *prompt, size_t len,
			  const struct complete_params *p, uint32_t **ids, size_t *n, char **err)
{
	const char *missing;
	struct fim_ids f;
	*ids = NULL;
	*n = 0;
	if (fim_find(&cm->tok, &f, &missing))
		return error_to(err, "the tokenizer has no %s token: a suffix needs a model trained "
			    "with the FIM tokens (cp-bpe --fim, cp-pack --fim-rate)", missing);
	struct bpe_encoder *e = bpe_encoder_new(&cm->tok);
	struct u32vec v = { 0 };
	fim_prompt(e, &f, prompt, len, p->suffix, p->suffix_len, 1, &v);
	if (p->middle)
		bpe_encode(e, (const unsigned char *)p->middle, p->middle_len, 1, &v);
	bpe_encoder_free(e);
	*ids = v.v;
	*n = v.n;
	return 0;
}

int complete_prompt(const struct complete_model *cm, const void *prompt, size_t len,
		    const struct complete_params *p, uint32_t max_prompt, uint32_t **ids,
		    size_t *n, char **err)
{
	if (p->suffix) {
		if (fim_prompt_ids(cm, prompt, len, p, ids, n, err))
			return -1;
	} else {
		*ids = complete_encode(cm, prompt, len, n);
	}
	if (*n == 0 && cm->tok.eot != BPE_NONE) {
		*ids = xreallocarray(*ids, 1, sizeof(uint32_t));
		(*ids)[(*n)++] = cm->tok.eot;
	}
	int r;
	if (max_prompt && *n > max_prompt)
		r = error_to(err, "the prompt has %zu tokens, more than the limit of %u", *n, max_prompt);
	else
		r = check_request(cm, *ids, *n, p, err);
	if (r) {
		free(*ids);
		*ids = NULL;
	}
	return r;
}

int complete_generate(const struct complete_model *cm, const void *prompt, size_t len,
		      const struct complete_params *p, uint32_t max_prompt,
		      struct complete_result *res, char **err)
{
	size_t n;
	uint32_t *ids;
	memset(res, 0, sizeof(*res));
	if (complete_prompt(cm, prompt, len, p, max_prompt, &ids, &n, err))
		return -1;
	int r = complete_generate_ids(cm, ids, n, p, res, err);
	free(ids);
	return r;
}

static void result_init(struct complete_result *res, uint32_t B, size_t n_ids, uint32_t max_tokens,
			uint32_t n_ctx, int k)
{
	res->n = B;
	res->k = k;
	res->prompt_tokens = (uint32_t)n_ids;
	res->s = xcalloc(B, sizeof(*res->s));
	/* at most n_ctx - n_ids + 1 tokens fit */
	size_t cap = max_tokens < n_ctx ? max_tokens + 1 : n_ctx;
	for (uint32_t b = 0; b < B; b++) {
		struct complete_sample *s = &res->s[b];
		s->finish = "length";
		s->ids = xreallocarray(NULL, cap, sizeof(uint32_t));
		if (k >= 0) {
			s->lp = xreallocarray(NULL, cap, sizeof(double));
			s->top_id = xreallocarray(NULL, cap * (size_t)k + 1, sizeof(uint32_t));
			s->top_lp = xreallocarray(NULL, cap * (size_t)k + 1, sizeof(double));
		}
	}
}

double complete_logprob(const float *l, const float *mask, uint32_t V, uint32_t chosen, int k,
			uint32_t *top_id, double *top_lp)
{
	float mx = -INFINITY;
	for (uint32_t v = 0; v < V; v++)
		if (l[v] + mask[v] > mx)
			mx = l[v] + mask[v];
	double s = 0;
	for (uint32_t v = 0; v < V; v++)
		s += exp((double)(l[v] + mask[v] - mx));
	double ls = log(s);
	/* the K best so far, best first: an insertion into a short list */
	int have = 0;
	for (uint32_t v = 0; v < V && k > 0; v++) {
		float x = l[v] + mask[v];
		if (x == -INFINITY || (have == k && x <= l[top_id[k - 1]] + mask[top_id[k - 1]]))
			continue;
		int j = have < k ? have++ : k - 1;
		while (j > 0 && x > l[top_id[j - 1]] + mask[top_id[j - 1]]) {
			top_id[j] = top_id[j - 1];
			j--;
		}
		top_id[j] = v;
	}
	for (int j = 0; j < k; j++) {
		if (j >= have)
			top_id[j] = UINT32_MAX;
		top_lp[j] = j < have ? (double)(l[top_id[j]] + mask[top_id[j]] - mx) - ls : -INFINITY;
	}
	return (double)(l[chosen] - mx) - ls;
}

/* Rows that requests join and leave between steps: each row one sample of a job, the going
 * rows in order (a job's samples together, the jobs in the order they came), with their
 * logits and next tokens; a row freed is reset from the spare empty row before its reuse.
 * The hold row keeps the last prompt complete_batch_open read, with its logits, so that the
 * samples of a job that start later, and jobs of the same prompt, copy it. */
struct complete_batch {
	const struct complete_model *cm;
	struct gpt2_kv *st;
	int R, T, nr, n_free, spare;	/* spare: the empty row, or -1 when rows are not reused */
	int hold;		/* the hold row, or -1 */
	uint32_t *held;		/* the prompt in it */
	size_t n_held;
	float *held_logits;	/* [V] after it */
	struct complete_job *holder;	/* the job with samples still to start from it */
	float *logits;		/* [nr][V] */
	int *rows, *free_rows;
	uint32_t *next;
	struct batch_row {
		struct complete_job *j;
		uint32_t b;	/* its sample */
		struct sample_rng rng;
	} *row;
	struct sampler **sm;
	int nth;
};

static int clamp_k(int k)
{
	return k < 0 ? -1 : k > COMPLETE_MAX_LOGPROBS ? COMPLETE_MAX_LOGPROBS : k;
}

struct complete_batch *complete_batch_new(const struct complete_model *cm, int rows, int T,
					  int flags)
{
	uint32_t V = cm->m.cfg.vocab_size;
	int reuse = !!(flags & (COMPLETE_BATCH_REUSE | COMPLETE_BATCH_HOLD));
	struct complete_batch *cb = xcalloc(1, sizeof(*cb));
	cb->cm = cm;
	cb->R = rows;
	cb->T = T;
	cb->spare = reuse ? rows : -1;
	cb->hold = flags & COMPLETE_BATCH_HOLD ? rows + 1 : -1;
	if (cb->hold >= 0)
		cb->held_logits = xreallocarray(NULL, V, sizeof(float));
	cb->st = cm->be->kv_new(&cm->m, rows + reuse + (cb->hold >= 0), T);
	cb->logits = xreallocarray(NULL, (size_t)rows * V, sizeof(float));
	cb->rows = xreallocarray(NULL, (size_t)rows, sizeof(int));
	cb->free_rows = xreallocarray(NULL, (size_t)rows, sizeof(int));
	cb->next = xreallocarray(NULL, (size_t)rows, sizeof(uint32_t));
	cb->row = xcalloc((size_t)rows, sizeof(*cb->row));
	for (int i = 0; i < rows; i++)
		cb->free_rows[i] = rows - 1 - i;	/* row 0 taken first */
	cb->n_free = rows;
	cb->nth = omp_get_max_threads();
	cb->sm = xcalloc((size_t)cb->nth, sizeof(*cb->sm));
	for (int i = 0; i < cb->nth; i++)
		cb->sm[i] = sampler_new(V);
	return cb;
}

void complete_batch_free(struct complete_batch *cb)
{
	if (!cb)
		return;
	for (int i = 0; i < cb->nth; i++)
		sampler_free(cb->sm[i]);
	free(cb->sm);
	free(cb->row);
	free(cb->next);
	free(cb->free_rows);
	free(cb->rows);
	free(cb->logits);
	free(cb->held);
	free(cb->held_logits);
	cb->cm->be->kv_free(cb->st);
	free(cb);
}

int complete_batch_rows_free(const struct complete_batch *cb)
{
	return cb->n_free;
}

uint64_t complete_batch_memory(const struct complete_model *cm, int *host)
{
	struct gpt2_device_info di;
	*host = cm->be->host_memory;
	if (!*host && cm->be->info && !cm->be->info(&cm->m, &di))
		return di.mem_total > di.mem_used ? di.mem_total - di.mem_used : 0;
	return (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* J's request checked against the batch, ROWS of it wanted free now, and its result made:
 * 0, or -1 with *ERR */
static int batch_job_init(struct complete_batch *cb, struct complete_job *j, const uint32_t *ids,
			  size_t n_ids, uint32_t rows, char **err)
{
	const struct complete_model *cm = cb->cm;
	const struct complete_params *p = j->p;
	uint32_t n_ctx = cm->m.cfg.n_ctx;
	memset(j->res, 0, sizeof(*j->res));
	j->going = j->started = 0;
	if (check_request(cm, ids, n_ids, p, err))
		return -1;
	/* a row ends at max_tokens or at the context, whichever comes first */
	uint64_t need = (uint64_t)n_ids + (p->max_tokens ? p->max_tokens - 1 : 0);
	if (rows > (uint32_t)cb->n_free || (need < n_ctx ? need : n_ctx) > (uint64_t)cb->T)
		return error_to(err, "%u samples of %zu + %u tokens do not fit the batch", p->n, n_ids,
				p->max_tokens);
	result_init(j->res, p->n, n_ids, p->max_tokens, n_ctx, clamp_k(p->logprobs));
	j->longest = 0;
	for (size_t i = 0; i < p->n_stop; i++)
		if (strlen(p->stop[i]) > j->longest)
			j->longest = strlen(p->stop[i]);
	return 0;
}

/* sample B of job J goes in ROW, its logits already at position nr */
static void batch_row_start(struct complete_batch *cb, struct complete_job *j, uint32_t b, int r)
{
	cb->row[r] = (struct batch_row){ .j = j, .b = b };
	sample_seed(&cb->row[r].rng, j->p->seed, j->p->stream0 + b);
	cb->rows[cb->nr++] = r;
}

int complete_batch_add(struct complete_batch *cb, struct complete_job *j, const uint32_t *ids,
		       size_t n_ids, char **err)
{
	const struct complete_model *cm = cb->cm;
	const struct complete_params *p = j->p;
	uint32_t V = cm->m.cfg.vocab_size, B = p->n;
	if (batch_job_init(cb, j, ids, n_ids, B, err))
		return -1;
	if (p->max_tokens == 0)
		return 0;
	const struct gpt2_backend *be = cm->be;
	int r0 = cb->free_rows[cb->n_free - 1];
	if (cb->spare >= 0)
		be->kv_copy_row(cb->st, r0, cb->spare);	/* empty it */
	double t0 = mono_now();
	float *l0 = cb->logits + (size_t)cb->nr * V;
	be->kv_forward(cb->st, &r0, 1, ids, (int)n_ids, l0, 0);
	j->t_decode = mono_now();
	j->res->prefill_s = j->t_decode - t0;
	for (uint32_t b = 0; b < B; b++) {
		int r = cb->free_rows[--cb->n_free];
		if (b) {
			be->kv_copy_row(cb->st, r, r0);
			memcpy(l0 + (size_t)b * V, l0, V * sizeof(float));
		}
		batch_row_start(cb, j, b, r);
	}
	j->going = j->started = B;
	return 0;
}

int complete_batch_open(struct complete_batch *cb, struct complete_job *j, const uint32_t *ids,
			size_t n_ids, char **err)
{
	const struct complete_model *cm = cb->cm;
	const struct gpt2_backend *be = cm->be;
	if (cb->hold < 0 || cb->holder)
		die("complete_batch_open: %s", cb->hold < 0 ? "the batch has no hold row" :
		    "another job still has samples to start");
	if (batch_job_init(cb, j, ids, n_ids, 0, err))
		return -1;
	if (j->p->max_tokens == 0)
		return 0;
	double t0 = mono_now();
	if (cb->n_held != n_ids || memcmp(cb->held, ids, n_ids * sizeof(*ids))) {
		be->kv_copy_row(cb->st, cb->hold, cb->spare);	/* empty it */
		be->kv_forward(cb->st, &cb->hold, 1, ids, (int)n_ids, cb->held_logits, 0);
		cb->held = xreallocarray(cb->held, n_ids, sizeof(*ids));
		memcpy(cb->held, ids, n_ids * sizeof(*ids));
		cb->n_held = n_ids;
	}
	j->t_decode = mono_now();
	j->res->prefill_s = j->t_decode - t0;
	j->going = j->p->n;
	cb->holder = j;
	complete_batch_more(cb, j);
	return 0;
}

uint32_t complete_batch_more(struct complete_batch *cb, struct complete_job *j)
{
	uint32_t V = cb->cm->m.cfg.vocab_size, B = j->p->n;
	if (j != cb->holder)
		return B - j->started;
	while (j->started < B && cb->n_free > 0) {
		int r = cb->free_rows[--cb->n_free];
		cb->cm->be->kv_copy_row(cb->st, r, cb->hold);
		memcpy(cb->logits + (size_t)cb->nr * V, cb->held_logits, V * sizeof(float));
		batch_row_start(cb, j, j->started++, r);
	}
	if (j->started == B)
		cb->holder = NULL;	/* the held prompt stays, for a job of the same */
	return B - j->started;
}

/* Append token T to sample S of job J in ROW: 1 when it ends the sample there */
static int batch_append(struct complete_batch *cb, struct complete_job *j,
			struct complete_sample *s, int row, uint32_t t)
{
	const struct complete_model *cm = cb->cm;
	const struct complete_params *p = j->p;
	s->ids[s->n_tokens++] = t;
	if ((t == cm->tok.eot && !p->no_eot_stop) ||
	    (p->suffix && cm->has_fim && fim_is_token(&cm->fim, t))) {
		s->finish = "stop";
		return 1;
	}
	size_t tl, old = s->text.len;
	const unsigned char *tb = bpe_tok(&cm->tok, t, &tl);
	buf_put(&s->text, tb, tl);
	if (cut_stop(&s->text, old, p, j->longest)) {
		s->finish = "stop";
		return 1;
	}
	/* else "length" when out of tokens or context */
	return s->n_tokens >= p->max_tokens || cm->be->kv_len(cb->st, row) >= (int)cm->m.cfg.n_ctx;
}

/* a row whose sample is done goes back to the free ones; its job ends with its last */
static void batch_release(struct complete_batch *cb, int row)
{
	struct complete_job *j = cb->row[row].j;
	cb->free_rows[cb->n_free++] = row;
	cb->row[row].j = NULL;
	if (--j->going == 0)
		j->res->decode_s = mono_now() - j->t_decode;
}

/* Append each going row's chosen token to its sample, calling its job's on_token; keep the
 * rows that go on (first in rows[] and next[], in order) and return how many. A job whose
 * on_token says stop loses its rows at once, its tokens of this step after that one too. */
static int batch_take(struct complete_batch *cb)
{
	int nf = 0;
	for (int i = 0; i < cb->nr; i++) {
		int row = cb->rows[i];
		struct complete_job *j = cb->row[row].j;
		const struct complete_params *p = j->p;
		if (j->res->cancelled) {
			batch_release(cb, row);
			continue;
		}
		uint32_t b = cb->row[row].b, t = cb->next[i];
		int done = batch_append(cb, j, &j->res->s[b], row, t);
		if (p->on_token && p->on_token(p->ctx, j->res, b, done)) {
			j->res->cancelled = 1;
			/* its samples not started never will be */
			j->going -= p->n - j->started;
			j->started = p->n;
			if (cb->holder == j)
				cb->holder = NULL;
		}
		if (done || j->res->cancelled) {
			batch_release(cb, row);
			continue;
		}
		cb->rows[nf] = row;
		cb->next[nf] = t;
		nf++;
	}
	/* the rows of a cancelled job kept before it said stop */
	int nk = 0;
	for (int i = 0; i < nf; i++) {
		int row = cb->rows[i];
		if (cb->row[row].j->res->cancelled) {
			batch_release(cb, row);
			continue;
		}
		cb->rows[nk] = row;
		cb->next[nk++] = cb->next[i];
	}
	return nk;
}

int complete_batch_step(struct complete_batch *cb)
{
	const struct complete_model *cm = cb->cm;
	uint32_t V = cm->m.cfg.vocab_size;
	int nr = cb->nr;
	#pragma omp parallel for schedule(dynamic, 1) if (nr > 1 && (size_t)nr * V >= (1 << 17))
	for (int i = 0; i < nr; i++) {
		float *l = cb->logits + (size_t)i * V;
		struct batch_row *br = &cb->row[cb->rows[i]];
		const struct complete_params *p = br->j->p;
		struct sample_opts so = { p->temperature, p->top_k, p->top_p };
		for (uint32_t v = 0; v < V; v++)
			l[v] += cm->mask[v];
		cb->next[i] = sample_token(cb->sm[omp_get_thread_num()], l, &so, &br->rng);
		int k = br->j->res->k;
		if (k >= 0) {
			struct complete_sample *s = &br->j->res->s[br->b];
			size_t j = s->n_tokens;
			s->lp[j] = complete_logprob(l, cm->mask, V, cb->next[i], k,
						    s->top_id + j * (size_t)k, s->top_lp + j * (size_t)k);
		}
	}
	cb->nr = batch_take(cb);
	if (cb->nr)
		cm->be->kv_forward(cb->st, cb->rows, cb->nr, cb->next, 1, cb->logits, 0);
	return cb->nr;
}

int complete_generate_ids(const struct complete_model *cm, const uint32_t *ids, size_t n_ids,
			  const struct complete_params *p, struct complete_result *res, char **err)
{
	uint32_t n_ctx = cm->m.cfg.n_ctx;
	memset(res, 0, sizeof(*res));
	if (check_request(cm, ids, n_ids, p, err))
		return -1;
	if (p->max_tokens == 0) {
		result_init(res, p->n, n_ids, 0, n_ctx, clamp_k(p->logprobs));
		return 0;
	}
	uint64_t want = (uint64_t)n_ids + p->max_tokens - 1;
	struct complete_batch *cb = complete_batch_new(cm, (int)p->n, (int)(want < n_ctx ? want : n_ctx), 0);
	struct complete_job j = { .p = p, .res = res };
	int r = complete_batch_add(cb, &j, ids, n_ids, err);
	while (r == 0 && complete_batch_step(cb))
		;
	complete_batch_free(cb);
	return r;
}

void complete_result_free(struct complete_result *r)
{
	for (uint32_t i = 0; r->s && i < r->n; i++) {
		buf_free(&r->s[i].text);
		free(r->s[i].ids);
		free(r->s[i].lp);
		free(r->s[i].top_id);
		free(r->s[i].top_lp);
	}
	free(r->s);
	memset(r, 0, sizeof(*r));
}

/* tokens fed to the model at once while scoring: bounds the logits held */
#define SCORE_CHUNK 64

int complete_score_text(const struct complete_model *cm, const void *text, size_t len,
			struct complete_score *sc, char **err)
{
	size_t N;
	uint32_t *ids = complete_encode(cm, text, len, &N);
	int r = complete_score_ids(cm, ids, N, -1, sc, err);
	free(ids);
	return r;
}

/* Score the window [START, END) of SC's ids into positions DONE .. END - 1 */
static void score_window(const struct complete_model *cm, struct gpt2_kv *st, float *logits,
			 struct complete_score *sc, size_t start, size_t end, size_t done)
{
	const struct gpt2_backend *be = cm->be;
	uint32_t V = cm->m.cfg.vocab_size;
	const uint32_t *ids = sc->ids;
	int zero = 0, k = sc->k;
	be->kv_reset(st);
	for (size_t c = start; c < end; c += SCORE_CHUNK) {
		size_t ce = c + SCORE_CHUNK < end ? c + SCORE_CHUNK : end;
		be->kv_forward(st, &zero, 1, ids + c, (int)(ce - c), logits, 1);
		/* logits after token q predict token q + 1 */
		#pragma omp parallel for schedule(static) if ((ce - c) * V >= (1 << 17))
		for (size_t q = c; q < ce; q++) {
			if (q + 1 < done || q + 1 >= end)
				continue;
			size_t at = (q + 1) * (size_t)(k > 0 ? k : 0);
			sc->logprob[q + 1] = complete_logprob(logits + (q - c) * V, cm->mask, V, ids[q + 1],
							      k > 0 ? k : 0, k > 0 ? sc->top_id + at : NULL,
							      k > 0 ? sc->top_lp + at : NULL);
		}
	}
}

int complete_score_ids(const struct complete_model *cm, const uint32_t *ids, size_t N, int k,
		       struct complete_score *sc, char **err)
{
	memset(sc, 0, sizeof(*sc));
	if (N == 0)
		return error_to(err, "nothing to score: the text is empty");
	uint32_t V = cm->m.cfg.vocab_size;
	size_t n_ctx = cm->m.cfg.n_ctx;
	if (n_ctx < 2 && N > 1)
		return error_to(err, "a model with a context of %zu tokens cannot score", n_ctx);
	for (size_t i = 0; i < N; i++)
		if (ids[i] >= V)
			return error_to(err, "token id %u is outside the vocabulary (%u)", ids[i], V);
	sc->n = N;
	sc->k = k < 0 ? -1 : k > COMPLETE_MAX_LOGPROBS ? COMPLETE_MAX_LOGPROBS : k;
	sc->ids = xreallocarray(NULL, N, sizeof(uint32_t));
	memcpy(sc->ids, ids, N * sizeof(uint32_t));
	sc->logprob = xreallocarray(NULL, N, sizeof(double));
	for (size_t i = 0; i < N; i++)
		sc->logprob[i] = NAN;
	if (sc->k > 0) {
		sc->top_id = xcalloc(N * (size_t)sc->k, sizeof(uint32_t));
		sc->top_lp = xcalloc(N * (size_t)sc->k, sizeof(double));
	}
	int W = (int)(N < n_ctx ? N : n_ctx);
	struct gpt2_kv *st = cm->be->kv_new(&cm->m, 1, W);
	float *logits = xreallocarray(NULL, (size_t)SCORE_CHUNK * V, sizeof(float));
	size_t start = 0, done = 1;	/* positions below done are scored */
	for (;;) {
		size_t end = start + n_ctx < N ? start + n_ctx : N;
		score_window(cm, st, logits, sc, start, end, done);
		done = end;
		if (end == N)
			break;
		start = end - n_ctx / 2;
	}
	sc->sum = 0;
	for (size_t i = 1; i < N; i++)
		sc->sum += sc->logprob[i];
	free(logits);
	cm->be->kv_free(st);
	return 0;
}

void complete_score_free(struct complete_score *sc)
{
	free(sc->ids);
	free(sc->logprob);
	free(sc->top_id);
	free(sc->top_lp);
	memset(sc, 0, sizeof(*sc));
}
