/* test-api: the server's answers (infer/api.h), rendered from results made here and parsed
 * back with jansson. api_chars against the code points a string was built from; api_safe_len
 * by its promise: texts streamed in random pieces, each piece what it allows, encode to the
 * same JSON as the whole text, and never send what a stop string could still take; the
 * logprobs object against the tokens it was made from (texts, offsets counted here, the
 * chosen token among the alternatives, echo's prompt first with null); the streamed chunks
 * joined equal the whole answer, a stop string cut across tokens included; best_of's ranking
 * against a sort here; /tokenize's pieces. */
#include "infer/api.h"
#include "base/json.h"
#include "tap.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct bpe tok;

static void make_tok(void)
{
	bpe_init(&tok);
	for (int c = 0; c < 256; c++) {
		unsigned char ch = (unsigned char)c;
		bpe_add_token(&tok, &ch, 1, (uint32_t)c);
	}
	bpe_add_token(&tok, "de", 2, 256);
	bpe_add_token(&tok, BPE_EOT, strlen(BPE_EOT), 257);
	bpe_add_token(&tok, "\xc3\xa9", 2, 258);	/* é */
	bpe_add_token(&tok, "zz", 2, 259);
	bpe_finish(&tok, "test");
}

/* UTF-8 of code point CP, written here apart from the code under test */
static size_t put_cp(unsigned char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (unsigned char)(0xC0 | cp >> 6);
		o[1] = (unsigned char)(0x80 | (cp & 63));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (unsigned char)(0xE0 | cp >> 12);
		o[1] = (unsigned char)(0x80 | (cp >> 6 & 63));
		o[2] = (unsigned char)(0x80 | (cp & 63));
		return 3;
	}
	o[0] = (unsigned char)(0xF0 | cp >> 18);
	o[1] = (unsigned char)(0x80 | (cp >> 12 & 63));
	o[2] = (unsigned char)(0x80 | (cp >> 6 & 63));
	o[3] = (unsigned char)(0x80 | (cp & 63));
	return 4;
}

static void test_chars(void)
{
	static const uint32_t cps[] = { 'a', 0xE9, 0x2603, 0x1F600, 'z', 0x7FF, 0x800, 0xFFFF };
	unsigned char s[64];
	size_t n = 0;
	for (size_t i = 0; i < sizeof(cps) / sizeof(cps[0]); i++)
		n += put_cp(s + n, cps[i]);
	is_int(api_chars(s, n), 8, "characters: the code points the text was built from");
}

/* JSON string contents (without the quotes) of P[N) */
static void jbody(struct buf *b, const void *p, size_t n)
{
	struct buf t = { 0 };
	json_str(&t, p, n);
	buf_put(b, t.p + 1, t.len - 2);
	buf_free(&t);
}

static void test_safe_len(void)
{
	srand(7);
	int same = 1, held = 1, grows = 1;
	for (int round = 0; round < 2000; round++) {
		unsigned char t[96];
		size_t n = 0;
		while (n < 80) {	/* ASCII, characters of 2 to 4 bytes, stray bytes */
			int k = rand() % 6;
			if (k < 3)
				n += put_cp(t + n, k == 0 ? 'a' : k == 1 ? 0xE9 + (uint32_t)(rand() % 500)
									: 0x1F600 + (uint32_t)(rand() % 50));
			else if (k == 3)
				n += put_cp(t + n, 0x2603);
			else
				t[n++] = (unsigned char)(0x80 + rand() % 128);
		}
		size_t longest = (size_t)(rand() % 4), sent = 0, len = 0;
		struct buf pieces = { 0 }, whole = { 0 };
		while (len < n) {
			len += 1 + (size_t)(rand() % 4);
			if (len > n)
				len = n;
			size_t safe = len == n ? n : api_safe_len(t, len, longest);
			grows &= safe >= sent;
			held &= len == n || longest == 0 || safe == 0 || safe + longest - 1 <= len;
			if (safe > sent) {
				jbody(&pieces, t + sent, safe - sent);
				sent = safe;
			}
		}
		jbody(&whole, t, n);
		same &= pieces.len == whole.len && !memcmp(pieces.p, whole.p, whole.len);
		buf_free(&pieces);
		buf_free(&whole);
	}
	ok(same, "texts sent in the pieces api_safe_len allows encode as the whole (2000 texts)");
	ok(held, "the last LONGEST - 1 bytes are held back for a stop string");
	ok(grows, "what may be sent never shrinks as the text grows");
}

/* A result of one sample of token ids IDS, cut at STOP when it occurs (as generation does) */
struct fake {
	struct complete_request rq;
	struct complete_result res;
	struct complete_sample s;
	struct complete_score psc;
	uint32_t prompt_ids[3];
	struct api_answer a;
	char *stop[1];
};

static void fake_init(struct fake *f, int k, int echo)
{
	memset(f, 0, sizeof(*f));
	f->rq.prompt = "d\xc3\xa9x";	/* "déx": tokens 'd', 'é', 'x' */
	f->rq.prompt_len = 4;
	f->rq.n_out = 1;
	f->rq.logprobs = k;
	f->rq.echo = echo;
	f->stop[0] = "zzz";
	f->rq.stop = f->stop;
	f->rq.n_stop = 1;
	f->res.n = 1;
	f->res.k = k;
	f->res.s = &f->s;
	f->res.prompt_tokens = 3;
	f->s.ids = calloc(16, sizeof(uint32_t));
	f->s.lp = calloc(16, sizeof(double));
	f->s.top_id = calloc(16 * 2 + 1, sizeof(uint32_t));
	f->s.top_lp = calloc(16 * 2 + 1, sizeof(double));
	f->s.finish = "length";
	uint32_t pids[3] = { 'd', 258, 'x' };
	memcpy(f->prompt_ids, pids, sizeof(pids));
	static double plp[3] = { NAN, -1.5, -2.5 };
	/* token i's two alternatives at [2i, 2i + 2); the first token has none */
	static uint32_t ptop[6] = { 0, 0, 'a', 258, 'b', 'c' };
	static double ptlp[6] = { 0, 0, -0.5, -1.5, -0.7, -0.8 };
	f->psc = (struct complete_score){ .n = 3, .ids = f->prompt_ids, .logprob = plp, .k = 2,
					  .top_id = ptop, .top_lp = ptlp };
	f->a = (struct api_answer){ .tok = &tok, .rq = &f->rq, .model = "m", .id = 7,
				    .created = 1, .res = &f->res, .prompt_ids = f->prompt_ids,
				    .n_prompt = 3, .prompt_sc = &f->psc };
}

/* append token T with log-probability LP (its alternatives: 'q', then T); 1 when done */
static int fake_add(struct fake *f, uint32_t t, double lp, int last)
{
	struct complete_sample *s = &f->s;
	uint32_t j = s->n_tokens++;
	s->ids[j] = t;
	s->lp[j] = lp;
	s->top_id[j * 2] = 'q';
	s->top_lp[j * 2] = lp + 1;
	s->top_id[j * 2 + 1] = t;
	s->top_lp[j * 2 + 1] = lp;
	size_t tl;
	const unsigned char *tb = bpe_tok(&tok, t, &tl);
	if (t == 257) {
		s->finish = "stop";
		return 1;
	}
	buf_put(&s->text, tb, tl);
	const unsigned char *hit = memmem(s->text.p, s->text.len, "zzz", 3);
	if (hit) {
		s->text.len = (size_t)(hit - s->text.p);
		s->finish = "stop";
		return 1;
	}
	return last;
}

static void fake_free(struct fake *f)
{
	buf_free(&f->s.text);
	free(f->s.ids);
	free(f->s.lp);
	free(f->s.top_id);
	free(f->s.top_lp);
}

static json_t *parse(const struct buf *b, size_t skip)
{
	json_t *j = json_loadb((const char *)b->p + skip, b->len - skip, JSON_DISABLE_EOF_CHECK, NULL);
	return j;
}

static const uint32_t toks[] = { 256, ' ', 258, 'z', 259, 'a', 'z', 259, 'b' };
static const size_t n_toks = sizeof(toks) / sizeof(toks[0]);

static void test_whole(void)
{
	struct fake f;
	fake_init(&f, 2, 1);
	for (size_t i = 0; i < n_toks && !fake_add(&f, toks[i], -0.25 * (double)(i + 1), 0); i++)
		;
	/* "de é" + "z" + "zz" -> cut at "zzz": "de é"; tokens starting before the cut: 3 */
	struct buf b = { 0 };
	api_put_completion(&b, &f.a);
	json_t *j = parse(&b, 0);
	json_t *c = json_array_get(json_object_get(j, "choices"), 0);
	json_t *lp = json_object_get(c, "logprobs");
	is_str(json_string_value(json_object_get(c, "text")), "d\xc3\xa9xde \xc3\xa9", "echo: the prompt, then the text");
	is_str(json_string_value(json_object_get(c, "finish_reason")), "stop", "finish_reason");
	json_t *tk = json_object_get(lp, "tokens"), *tl = json_object_get(lp, "token_logprobs"),
	       *tt = json_object_get(lp, "top_logprobs"), *to = json_object_get(lp, "text_offset");
	is_int(json_array_size(tk), 6, "the prompt's 3 tokens and the 3 that start in the text");
	static const char *const want[] = { "d", "\xc3\xa9", "x", "de", " ", "\xc3\xa9" };
	static const int offs[] = { 0, 1, 2, 3, 5, 6 };
	int texts = 1, offsets = 1;
	for (size_t i = 0; i < 6; i++) {
		texts &= !strcmp(json_string_value(json_array_get(tk, i)), want[i]);
		offsets &= json_integer_value(json_array_get(to, i)) == offs[i];
	}
	ok(texts, "the tokens' texts");
	ok(offsets, "text_offset in characters from the start of the prompt");
	ok(json_is_null(json_array_get(tl, 0)) && json_is_null(json_array_get(tt, 0)),
	   "the prompt's first token has no log-probability");
	ok(json_real_value(json_array_get(tl, 1)) == -1.5 &&
	   json_real_value(json_object_get(json_array_get(tt, 1), "a")) == -0.5 &&
	   json_real_value(json_object_get(json_array_get(tt, 1), "\xc3\xa9")) == -1.5 &&
	   json_object_size(json_array_get(tt, 1)) == 2, "the prompt's scores and alternatives");
	ok(json_object_size(json_array_get(tt, 2)) == 3 &&
	   json_real_value(json_object_get(json_array_get(tt, 2), "x")) == -2.5,
	   "a chosen token not among the alternatives is added to them");
	ok(json_real_value(json_array_get(tl, 3)) == -0.25 &&
	   json_real_value(json_object_get(json_array_get(tt, 3), "q")) == 0.75,
	   "the sample's scores and alternatives");
	json_decref(j);
	buf_free(&b);
	fake_free(&f);
}

/* the chunks of a stream over the same tokens, joined */
static void test_stream(int k)
{
	struct fake f, w;
	fake_init(&f, k, 0);
	fake_init(&w, k, 0);
	struct api_stream_pos pos = { 0 };
	struct buf text = { 0 }, lists[4] = { { 0 } };
	static const char *const keys[4] = { "tokens", "token_logprobs", "top_logprobs", "text_offset" };
	int chunks = 0, finish_last = 1;
	for (size_t i = 0; i < n_toks; i++) {
		int done = fake_add(&f, toks[i], -0.25 * (double)(i + 1), i + 1 == n_toks);
		fake_add(&w, toks[i], -0.25 * (double)(i + 1), 0);
		struct buf b = { 0 };
		api_put_chunk(&b, &f.a, 0, &f.s, &pos, done);
		chunks++;
		ok(!memcmp(b.p, "data: ", 6) && b.len > 8 && !memcmp(b.p + b.len - 2, "\n\n", 2),
		   "chunk %d is one server-sent event", chunks);
		json_t *j = parse(&b, 6);
		json_t *c = json_array_get(json_object_get(j, "choices"), 0);
		const char *t = json_string_value(json_object_get(c, "text"));
		buf_puts(&text, t);
		json_t *lp = json_object_get(c, "logprobs");
		for (int q = 0; k >= 0 && q < 4; q++) {
			json_t *a = json_object_get(lp, keys[q]);
			for (size_t e = 0; e < json_array_size(a); e++) {
				char *s = json_dumps(json_array_get(a, e), JSON_ENCODE_ANY | JSON_COMPACT);
				buf_printf(&lists[q], "%s,", s);
				free(s);
			}
		}
		finish_last &= json_is_null(json_object_get(c, "finish_reason")) == !done;
		json_decref(j);
		buf_free(&b);
		if (done)
			break;
	}
	struct buf b = { 0 };
	api_put_completion(&b, &w.a);
	json_t *j = parse(&b, 0);
	json_t *c = json_array_get(json_object_get(j, "choices"), 0);
	buf_putc(&text, 0);
	is_str((const char *)text.p, json_string_value(json_object_get(c, "text")),
	       "k %d: the chunks' texts joined are the whole answer's", k);
	ok(finish_last, "  finish_reason in the last chunk alone");
	int lists_same = 1;
	for (int q = 0; k >= 0 && q < 4; q++) {
		json_t *a = json_object_get(json_object_get(c, "logprobs"), keys[q]);
		struct buf wl = { 0 };
		for (size_t e = 0; e < json_array_size(a); e++) {
			char *s = json_dumps(json_array_get(a, e), JSON_ENCODE_ANY | JSON_COMPACT);
			buf_printf(&wl, "%s,", s);
			free(s);
		}
		lists_same &= wl.len == lists[q].len && !memcmp(wl.p, lists[q].p, wl.len);
		buf_free(&wl);
	}
	ok(lists_same, "  and their logprobs lists joined are the whole answer's");
	json_decref(j);
	buf_free(&b);
	buf_free(&text);
	for (int q = 0; q < 4; q++)
		buf_free(&lists[q]);
	fake_free(&f);
	fake_free(&w);
}

static void test_rank(void)
{
	struct complete_sample s[5];
	memset(s, 0, sizeof(s));
	static double lps[5][3] = { { -1, -1, -1 }, { -0.5, -0.5, -2 }, { -0.1, -5, -5 },
				    { -1, -1, -1 }, { -0.2, -0.2, -0.2 } };
	for (int i = 0; i < 5; i++) {
		s[i].n_tokens = 3;
		s[i].lp = lps[i];
	}
	struct complete_result res = { .n = 5, .k = 0, .s = s };
	uint32_t order[5];
	api_rank(&res, order);
	/* by mean: 4 (-0.2), 1 (-1), 0 (-1), 3 (-1), 2 (-3.4): equal means keep their order */
	ok(order[0] == 4 && order[1] == 0 && order[2] == 1 && order[3] == 3 && order[4] == 2,
	   "best_of: highest mean log-probability first, ties in order (%u %u %u %u %u)",
	   order[0], order[1], order[2], order[3], order[4]);
}

static void test_tokens(void)
{
	uint32_t ids[3] = { 256, 0xC3, 258 };
	struct buf b = { 0 };
	api_put_tokens(&b, &tok, ids, 3, 1);
	buf_putc(&b, 0);
	is_str((const char *)b.p,
	       "{\"tokens\":[{\"id\":256,\"piece\":\"de\"},{\"id\":195,\"piece\":[195]},"
	       "{\"id\":258,\"piece\":\"\xc3\xa9\"}]}\n", "/tokenize's pieces: strings, or bytes");
	buf_reset(&b);
	api_put_tokens(&b, &tok, ids, 3, 0);
	buf_putc(&b, 0);
	is_str((const char *)b.p, "{\"tokens\":[256,195,258]}\n", "/tokenize's ids");
	buf_free(&b);
}

int main(void)
{
	make_tok();
	test_chars();
	test_safe_len();
	test_whole();
	test_stream(-1);
	test_stream(2);
	test_rank();
	test_tokens();
	bpe_free(&tok);
	return done_testing();
}
