/* api.c: the server's answers in OpenAI's and llama.cpp's shapes (api.h). A streamed answer
 * and the same one whole carry the same text and the same logprobs lists: the chunks only
 * cut them where a later token can no longer change what was sent. */
#include "infer/api.h"

#include "base/json.h"
#include "base/xalloc.h"

#include <math.h>
#include <string.h>

size_t api_chars(const unsigned char *p, size_t n)
{
	size_t c = 0;
	for (size_t i = 0; i < n; i++)
		c += (p[i] & 0xC0) != 0x80;
	return c;
}

size_t api_safe_len(const unsigned char *t, size_t len, size_t longest)
{
	/* a stop string still to come starts at most LONGEST - 1 bytes from the end */
	size_t safe = longest > 1 ? (len > longest - 1 ? len - (longest - 1) : 0) : len;
	/* an unfinished UTF-8 sequence at the end waits for the rest of it */
	for (size_t back = 1; back <= 3 && back <= safe; back++) {
		unsigned char c = t[safe - back];
		if ((c & 0xC0) == 0x80)
			continue;
		size_t need = c >= 0xF0 && c < 0xF8 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
		if (need > back && c >= 0xC0 && c < 0xF8)
			safe -= back;
		break;
	}
	return safe;
}

/* ---- the logprobs object, built as four lists ---- */

struct lp_lists {
	struct buf tokens, lps, tops, offs;
	size_t n;
};

static void lp_free(struct lp_lists *L)
{
	buf_free(&L->tokens);
	buf_free(&L->lps);
	buf_free(&L->tops);
	buf_free(&L->offs);
}

/* One token ID at character OFFSET, its log-probability LP (NAN: none, the first of a text)
 * and its K alternatives (the chosen one added when it is not among them) */
static void lp_add(struct lp_lists *L, const struct bpe *tok, uint32_t id, double lp,
		   const uint32_t *top_id, const double *top_lp, int k, size_t offset)
{
	const char *sep = L->n++ ? "," : "";
	size_t tl;
	const unsigned char *tb = bpe_tok(tok, id, &tl);
	buf_puts(&L->tokens, sep);
	json_str(&L->tokens, tb, tl);
	buf_puts(&L->lps, sep);
	json_double(&L->lps, lp);
	buf_printf(&L->offs, "%s%zu", sep, offset);
	buf_puts(&L->tops, sep);
	if (isnan(lp) || k < 0) {
		buf_puts(&L->tops, "null");
		return;
	}
	buf_putc(&L->tops, '{');
	int seen = 0, first = 1;
	for (int j = 0; j < k; j++) {
		if (top_id[j] == UINT32_MAX)
			break;
		size_t al;
		const unsigned char *ab = bpe_tok(tok, top_id[j], &al);
		buf_puts(&L->tops, first ? "" : ",");
		json_str(&L->tops, ab, al);
		buf_putc(&L->tops, ':');
		json_double(&L->tops, top_lp[j]);
		seen |= top_id[j] == id;
		first = 0;
	}
	if (!seen) {
		buf_puts(&L->tops, first ? "" : ",");
		json_str(&L->tops, tb, tl);
		buf_putc(&L->tops, ':');
		json_double(&L->tops, lp);
	}
	buf_putc(&L->tops, '}');
}

static void lp_put(struct buf *b, const struct lp_lists *L)
{
	buf_puts(b, "{\"tokens\":[");
	buf_put(b, L->tokens.p, L->tokens.len);
	buf_puts(b, "],\"token_logprobs\":[");
	buf_put(b, L->lps.p, L->lps.len);
	buf_puts(b, "],\"top_logprobs\":[");
	buf_put(b, L->tops.p, L->tops.len);
	buf_puts(b, "],\"text_offset\":[");
	buf_put(b, L->offs.p, L->offs.len);
	buf_puts(b, "]}");
}

/* the prompt's tokens, as echo gives them */
static void lp_prompt(struct lp_lists *L, const struct api_answer *a)
{
	const struct complete_score *sc = a->prompt_sc;
	size_t off = 0;
	for (size_t i = 0; i < a->n_prompt; i++) {
		uint32_t id = a->prompt_ids[i];
		size_t at = i * (size_t)(sc->k > 0 ? sc->k : 0);
		lp_add(L, a->tok, id, sc->logprob[i], sc->top_id ? sc->top_id + at : NULL,
		       sc->top_lp ? sc->top_lp + at : NULL, sc->k, off);
		size_t tl;
		const unsigned char *tb = bpe_tok(a->tok, id, &tl);
		/* the prompt <|endoftext|> an empty prompt became is not in its text */
		if (a->rq->prompt_len)
			off += api_chars(tb, tl);
	}
}

/* Tokens J0 .. of sample S that start before byte END of its text; returns the first one
 * past them */
static uint32_t lp_sample(struct lp_lists *L, const struct api_answer *a,
			  const struct complete_sample *s, uint32_t j0, size_t end)
{
	size_t base = api_chars((const unsigned char *)a->rq->prompt, a->rq->prompt_len), start = 0;
	int k = a->res->k;
	uint32_t j = 0;
	for (; j < s->n_tokens; j++) {
		if (start >= end)
			break;
		size_t tl;
		bpe_tok(a->tok, s->ids[j], &tl);
		if (j >= j0)
			lp_add(L, a->tok, s->ids[j], s->lp[j], s->top_id + (size_t)j * (size_t)k,
			       s->top_lp + (size_t)j * (size_t)k, k, base + api_chars(s->text.p, start));
		start += tl;
	}
	return j;
}

/* {"index":OUT,"text":...,"logprobs":...,"finish_reason":... of one choice, left open */
static void put_choice_head(struct buf *b, uint32_t out, const void *text, size_t len,
			    const struct lp_lists *L, const char *finish)
{
	buf_printf(b, "{\"index\":%u,\"text\":", out);
	json_str(b, text, len);
	buf_puts(b, ",\"logprobs\":");
	if (L)
		lp_put(b, L);
	else
		buf_puts(b, "null");
	buf_puts(b, ",\"finish_reason\":");
	if (finish)
		buf_printf(b, "\"%s\"", finish);
	else
		buf_puts(b, "null");
}

static uint64_t generated(const struct complete_result *res)
{
	uint64_t gen = 0;
	for (uint32_t i = 0; i < res->n; i++)
		gen += res->s[i].n_tokens;
	return gen;
}

static void put_usage(struct buf *b, const struct complete_result *res)
{
	uint64_t gen = generated(res);
	buf_printf(b, "\"usage\":{\"prompt_tokens\":%u,\"completion_tokens\":%llu,\"total_tokens\":%llu}",
		   res->prompt_tokens, (unsigned long long)gen,
		   (unsigned long long)(gen + res->prompt_tokens));
}

static void put_head(struct buf *b, const struct api_answer *a)
{
	buf_printf(b, "{\"id\":\"cmpl-%llu\",\"object\":\"text_completion\",\"created\":%lld,"
		   "\"model\":", a->id, a->created);
	json_cstr(b, a->model);
	buf_puts(b, ",\"choices\":[");
}

void api_put_completion(struct buf *b, const struct api_answer *a)
{
	const struct complete_request *rq = a->rq;
	put_head(b, a);
	for (uint32_t i = 0; i < rq->n_out; i++) {
		const struct complete_sample *s = &a->res->s[a->order ? a->order[i] : i];
		struct lp_lists L = { 0 };
		if (rq->logprobs >= 0) {
			if (rq->echo)
				lp_prompt(&L, a);
			lp_sample(&L, a, s, 0, s->text.len);
		}
		struct buf text = { 0 };
		if (rq->echo)
			buf_put(&text, rq->prompt, rq->prompt_len);
		buf_put(&text, s->text.p, s->text.len);
		buf_puts(b, i ? "," : "");
		put_choice_head(b, i, text.p, text.len, rq->logprobs >= 0 ? &L : NULL, s->finish);
		buf_printf(b, ",\"tokens\":%u}", s->n_tokens);
		buf_free(&text);
		lp_free(&L);
	}
	buf_puts(b, "],");
	put_usage(b, a->res);
	buf_puts(b, "}\n");
}

void api_put_infill(struct buf *b, const struct api_answer *a)
{
	const struct complete_sample *s = &a->res->s[0];
	uint32_t last = s->n_tokens ? s->ids[s->n_tokens - 1] : BPE_NONE;
	int eos = last < a->tok->n_ids && a->tok->special[last];
	const char *type = strcmp(s->finish, "stop") ? "limit" : eos ? "eos" : "word";
	buf_puts(b, "{\"content\":");
	json_str(b, s->text.p, s->text.len);
	buf_puts(b, ",\"id_slot\":0,\"stop\":true,\"model\":");
	json_cstr(b, a->model);
	buf_printf(b, ",\"tokens_predicted\":%u,\"tokens_evaluated\":%u,\"stop_type\":\"%s\","
		   "\"stopping_word\":\"\",\"truncated\":false,\"timings\":{\"prompt_n\":%u,"
		   "\"prompt_ms\":%.3f,\"predicted_n\":%u,\"predicted_ms\":%.3f}}\n",
		   s->n_tokens, a->res->prompt_tokens, type, a->res->prompt_tokens,
		   a->res->prefill_s * 1e3, s->n_tokens, a->res->decode_s * 1e3);
}

void api_put_echo_chunk(struct buf *b, const struct api_answer *a, uint32_t out)
{
	struct lp_lists L = { 0 };
	if (a->rq->logprobs >= 0)
		lp_prompt(&L, a);
	buf_puts(b, "data: ");
	put_head(b, a);
	put_choice_head(b, out, a->rq->prompt, a->rq->prompt_len, a->rq->logprobs >= 0 ? &L : NULL,
			NULL);
	buf_puts(b, "}]}\n\n");
	lp_free(&L);
}

void api_put_chunk(struct buf *b, const struct api_answer *a, uint32_t out,
		   const struct complete_sample *s, struct api_stream_pos *pos, int done)
{
	size_t longest = 0;
	for (size_t i = 0; i < a->rq->n_stop; i++)
		if (strlen(a->rq->stop[i]) > longest)
			longest = strlen(a->rq->stop[i]);
	size_t end = done ? s->text.len : api_safe_len(s->text.p, s->text.len, longest);
	if (end < pos->text)
		end = pos->text;	/* never: what was sent no stop string cuts */
	struct lp_lists L = { 0 };
	if (a->rq->logprobs >= 0)
		pos->tokens = lp_sample(&L, a, s, pos->tokens, end);
	buf_puts(b, "data: ");
	put_head(b, a);
	put_choice_head(b, out, s->text.p + pos->text, end - pos->text,
			a->rq->logprobs >= 0 ? &L : NULL, done ? s->finish : NULL);
	buf_puts(b, "}]}\n\n");
	pos->text = end;
	pos->finished = done;
	lp_free(&L);
}

void api_put_stream_end(struct buf *b, const struct api_answer *a)
{
	if (a->rq->include_usage) {
		buf_puts(b, "data: ");
		put_head(b, a);
		buf_puts(b, "],");
		put_usage(b, a->res);
		buf_puts(b, "}\n\n");
	}
	buf_puts(b, "data: [DONE]\n\n");
}

void api_rank(const struct complete_result *res, uint32_t *order)
{
	double *mean = xreallocarray(NULL, res->n ? res->n : 1, sizeof(double));
	for (uint32_t i = 0; i < res->n; i++) {
		const struct complete_sample *s = &res->s[i];
		double sum = 0;
		for (uint32_t j = 0; j < s->n_tokens; j++)
			sum += s->lp[j];
		mean[i] = s->n_tokens ? sum / s->n_tokens : 0;
	}
	/* insertion sort: stable, and best_of is small */
	for (uint32_t i = 0; i < res->n; i++) {
		uint32_t j = i;
		while (j > 0 && mean[i] > mean[order[j - 1]]) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	free(mean);
}

static void put_model(struct buf *b, const char *model, long long created)
{
	buf_puts(b, "{\"id\":");
	json_cstr(b, model);
	buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"cp\"}", created);
}

void api_put_models(struct buf *b, const char *model, long long created)
{
	buf_puts(b, "{\"object\":\"list\",\"data\":[");
	put_model(b, model, created);
	buf_puts(b, "]}\n");
}

void api_put_model(struct buf *b, const char *model, long long created)
{
	put_model(b, model, created);
	buf_putc(b, '\n');
}

/* whether P[N) is valid UTF-8 throughout (a piece that is not goes out as its bytes) */
static int valid_utf8(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		size_t need = c < 0x80 ? 1 : c >= 0xC2 && c < 0xE0 ? 2 : c >= 0xE0 && c < 0xF0 ? 3
			    : c >= 0xF0 && c < 0xF5 ? 4 : 0;
		if (!need || i + need > n)
			return 0;
		for (size_t j = 1; j < need; j++)
			if ((p[i + j] & 0xC0) != 0x80)
				return 0;
		/* overlong three- and four-byte forms, surrogates, past U+10FFFF */
		if ((c == 0xE0 && p[i + 1] < 0xA0) || (c == 0xED && p[i + 1] >= 0xA0) ||
		    (c == 0xF0 && p[i + 1] < 0x90) || (c == 0xF4 && p[i + 1] >= 0x90))
			return 0;
		i += need;
	}
	return 1;
}

void api_put_tokens(struct buf *b, const struct bpe *tok, const uint32_t *ids, size_t n,
		    int pieces)
{
	buf_puts(b, "{\"tokens\":[");
	for (size_t i = 0; i < n; i++) {
		buf_puts(b, i ? "," : "");
		if (!pieces) {
			buf_printf(b, "%u", ids[i]);
			continue;
		}
		size_t tl;
		const unsigned char *tb = bpe_tok(tok, ids[i], &tl);
		buf_printf(b, "{\"id\":%u,\"piece\":", ids[i]);
		if (valid_utf8(tb, tl)) {
			json_str(b, tb, tl);
		} else {
			buf_putc(b, '[');
			for (size_t j = 0; j < tl; j++)
				buf_printf(b, "%s%u", j ? "," : "", tb[j]);
			buf_putc(b, ']');
		}
		buf_putc(b, '}');
	}
	buf_puts(b, "]}\n");
}

void api_put_content(struct buf *b, const void *text, size_t len)
{
	buf_puts(b, "{\"content\":");
	json_str(b, text, len);
	buf_puts(b, "}\n");
}
