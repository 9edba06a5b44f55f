/* test-hf: the Hugging Face export as a model directory (model/hf.h): the files transformers
 * opens beside the weights, read back and held against what the test wrote into the tokenizer
 * (its holes, its end token, its other special tokens), the weights round trip, a tokenizer's
 * own config kept, GPT-2's encoder.json and vocab.bpe copied under transformers' names, and a
 * tokenizer past the vocabulary refused before anything is written. */
#include "base/xalloc.h"
#include "model/gpt2.h"
#include "model/hf.h"
#include "scratch.h"
#include "tap.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-hf-test.XXXXXX";

enum { V = 12 };
/* the ids the test's tokenizer gives tokens to: 6 and 9 are holes */
static const int vocab_ids[] = { 0, 1, 2, 3, 4, 5, 7, 8 };
#define N_VOCAB (sizeof(vocab_ids) / sizeof(vocab_ids[0]))

static void put(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	fputs(s, f);
	fclose(f);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *p = xcalloc(1, 1 << 16);
	size_t n = fread(p, 1, (1 << 16) - 1, f);
	p[n] = 0;
	fclose(f);
	return p;
}

/* a tokenizer.json with VOCAB_IDS, <|endoftext|> at 10 and <fim_prefix> at EXTRA */
static void write_tokenizer(const char *path, int extra)
{
	char s[2048];
	int n = snprintf(s, sizeof s, "{\"added_tokens\":[{\"id\":10,\"content\":\"<|endoftext|>\","
			 "\"special\":true},{\"id\":%d,\"content\":\"<fim_prefix>\",\"special\":true}],"
			 "\"model\":{\"type\":\"BPE\",\"vocab\":{", extra);
	for (size_t i = 0; i < N_VOCAB; i++)
		n += snprintf(s + n, sizeof s - n, "%s\"%c\":%d", i ? "," : "", 'a' + (int)i,
			      vocab_ids[i]);
	snprintf(s + n, sizeof s - n, "},\"merges\":[]}}");
	put(path, s);
}

static json_t *load(const char *sub, const char *name)
{
	char *p = xasprintf("%s/%s/%s", dir, sub, name);
	json_t *j = json_load_file(p, 0, NULL);
	free(p);
	return j;
}

static void make_model(struct gpt2_config *c, float **params, size_t *n)
{
	*c = (struct gpt2_config){ .vocab_size = V, .n_ctx = 8, .n_layer = 1, .n_head = 1,
				    .n_embd = 4 };
	struct gpt2_layout lay;
	gpt2_layout(c, &lay);
	*n = lay.total;
	*params = xreallocarray(NULL, *n, sizeof(float));
	for (size_t i = 0; i < *n; i++)
		(*params)[i] = (float)((i * 2654435761u) % 1000) / 997.0f - 0.5f;
}

static void test_files(const struct gpt2_config *c, const float *params, size_t n)
{
	write_tokenizer(scratch_path(dir, "tok.json"), 11);
	ok(gpt2_hf_export(c, params, scratch_path(dir, "out"), scratch_path(dir, "tok.json")) == 0,
	   "export with a tokenizer.json");
	/* the ids with no token, counted from what was written */
	json_t *want = json_array();
	for (int i = 0; i < V; i++) {
		int has = i == 10 || i == 11;
		for (size_t k = 0; k < N_VOCAB; k++)
			has |= vocab_ids[k] == i;
		if (!has)
			json_array_append_new(want, json_integer(i));
	}
	json_t *g = load("out", "generation_config.json"), *cf = load("out", "config.json");
	json_t *tc = load("out", "tokenizer_config.json"), *sm = load("out", "special_tokens_map.json");
	ok(g && cf && tc && sm, "generation_config, config, tokenizer_config, special_tokens_map parse");
	ok(json_equal(json_object_get(g, "suppress_tokens"), want), "suppress_tokens: the holes 6, 9");
	is_int(json_integer_value(json_object_get(g, "eos_token_id")), 10, "eos_token_id");
	is_int(json_integer_value(json_object_get(g, "pad_token_id")), 10, "pad_token_id");
	ok(json_is_false(json_object_get(g, "do_sample")), "greedy");
	is_int(json_integer_value(json_object_get(cf, "bos_token_id")), 10, "config's bos_token_id");
	is_int(json_integer_value(json_object_get(tc, "model_max_length")), 8, "model_max_length");
	ok(json_is_false(json_object_get(tc, "clean_up_tokenization_spaces")), "no clean-up");
	is_str(json_string_value(json_object_get(sm, "eos_token")), "<|endoftext|>", "eos_token");
	json_t *extra = json_object_get(sm, "additional_special_tokens");
	ok(json_array_size(extra) == 1 &&
	   !strcmp(json_string_value(json_array_get(extra, 0)), "<fim_prefix>"),
	   "the other special token listed");
	json_decref(want);
	json_decref(g);
	json_decref(cf);
	json_decref(tc);
	json_decref(sm);

	struct gpt2_config back;
	float *p2 = xcalloc(n, sizeof(float));
	ok(gpt2_hf_read_config(scratch_path(dir, "out"), &back) == 0 &&
	   back.vocab_size == V && back.n_ctx == 8, "config.json reads back");
	ok(gpt2_hf_load(scratch_path(dir, "out"), c, p2) == 0 && !memcmp(p2, params, n * sizeof(float)),
	   "the weights read back bit for bit");
	free(p2);
}

/* a directory tokenizer: its own tokenizer_config.json kept; GPT-2's names translated */
static void test_dir_tokenizer(const struct gpt2_config *c, const float *params)
{
	mkdir(scratch_path(dir, "gpt2"), 0777);
	const char *enc = "{\"a\":0,\"b\":1,\"<|endoftext|>\":2}", *bpe = "#version: 0.2\na b\n";
	put(scratch_path(dir, "gpt2/encoder.json"), enc);
	put(scratch_path(dir, "gpt2/vocab.bpe"), bpe);
	put(scratch_path(dir, "gpt2/tokenizer_config.json"), "{\"mine\": true}\n");
	ok(gpt2_hf_has_tokenizer(scratch_path(dir, "gpt2")), "encoder.json + vocab.bpe is a tokenizer");
	ok(!gpt2_hf_has_tokenizer(dir), "a directory without one is not");
	ok(gpt2_hf_export(c, params, scratch_path(dir, "g"), scratch_path(dir, "gpt2")) == 0,
	   "export with GPT-2's files");
	char *v = slurp(scratch_path(dir, "g/vocab.json")), *m = slurp(scratch_path(dir, "g/merges.txt"));
	char *t = slurp(scratch_path(dir, "g/tokenizer_config.json"));
	ok(v && !strcmp(v, enc), "vocab.json is encoder.json");
	ok(m && !strcmp(m, bpe), "merges.txt is vocab.bpe");
	ok(t && !strcmp(t, "{\"mine\": true}\n"), "the tokenizer's own tokenizer_config.json kept");
	free(v);
	free(m);
	free(t);
	json_t *g = load("g", "generation_config.json"), *want = json_array();
	for (int i = 3; i < V; i++)
		json_array_append_new(want, json_integer(i));
	ok(json_equal(json_object_get(g, "suppress_tokens"), want), "ids 3.. suppressed");
	is_int(json_integer_value(json_object_get(g, "eos_token_id")), 2, "end token from vocab.json");
	json_decref(g);
	json_decref(want);
}

static void test_refusals(const struct gpt2_config *c, const float *params)
{
	write_tokenizer(scratch_path(dir, "big.json"), V);
	ok(gpt2_hf_export(c, params, scratch_path(dir, "big"), scratch_path(dir, "big.json")) == -1,
	   "a token id past the vocabulary refused");
	ok(access(scratch_path(dir, "big"), F_OK) != 0, "and nothing written");
	ok(gpt2_hf_export(c, params, scratch_path(dir, "bare"), NULL) == 0, "export without a tokenizer");
	json_t *g = load("bare", "generation_config.json");
	ok(g && !json_object_get(g, "eos_token_id") && !json_object_get(g, "suppress_tokens"),
	   "its generation_config names no token");
	ok(access(scratch_path(dir, "bare/tokenizer_config.json"), F_OK) != 0,
	   "and no tokenizer_config.json is made up");
	json_decref(g);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	struct gpt2_config c;
	float *params;
	size_t n;
	make_model(&c, &params, &n);
	test_files(&c, params, n);
	test_dir_tokenizer(&c, params);
	test_refusals(&c, params);
	free(params);
	scratch_remove(dir);
	return done_testing();
}
