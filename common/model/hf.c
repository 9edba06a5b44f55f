/* hf.c: GPT-2 in Hugging Face's format: model.safetensors with GPT2LMHeadModel's
 * tensor names (Conv1D weights [in, out], the LM head tied to wte and so not stored),
 * config.json with the GPT2Config keys, and the tokenizer files beside them. */
#include "model/hf.h"
#include "base/atomic.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "model/safetensors.h"
#include "base/xalloc.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* "transformer.h.3.attn.c_attn.weight" and friends; LAYER ignored for global tensors */
char *gpt2_hf_name(int t, int layer)
{
	if (gpt2_tensor_per_layer(t))
		return xasprintf("transformer.h.%d.%s", layer, gpt2_tensor_name(t));
	if (t == GPT2_WTE || t == GPT2_WPE)
		return xasprintf("transformer.%s.weight", gpt2_tensor_name(t));
	return xasprintf("transformer.%s", gpt2_tensor_name(t));
}

static int copy_file(const char *from, const char *to)
{
	size_t len;
	char *p = read_file(from, &len);
	if (!p)
		return -1;
	int ret = atomic_write_file(to, p, len);
	free(p);
	return ret;
}

static int is_dir(const char *p)
{
	struct stat st;
	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
	struct stat st;
	return !stat(p, &st) && S_ISREG(st.st_mode);
}

static int has(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	int r = is_file(p);
	free(p);
	return r;
}

int gpt2_hf_has_tokenizer(const char *dir)
{
	return has(dir, "tokenizer.json") || (has(dir, "vocab.json") && has(dir, "merges.txt")) ||
	       (has(dir, "encoder.json") && has(dir, "vocab.bpe"));
}

/* The files transformers reads a GPT-2 tokenizer from, what each is copied from, and the file
 * that wins when TOK has both: GPT-2's own encoder.json and vocab.bpe are vocab.json and
 * merges.txt under older names. */
static const struct { const char *to, *from, *unless; } tok_files[] = {
	{ "tokenizer.json", "tokenizer.json", NULL }, { "vocab.json", "vocab.json", NULL },
	{ "merges.txt", "merges.txt", NULL }, { "vocab.json", "encoder.json", "vocab.json" },
	{ "merges.txt", "vocab.bpe", "merges.txt" },
	{ "tokenizer_config.json", "tokenizer_config.json", NULL },
	{ "special_tokens_map.json", "special_tokens_map.json", NULL },
};
#define N_TOK_FILES (sizeof(tok_files) / sizeof(tok_files[0]))

/* Copy the tokenizer files found in TOK (a directory, or a tokenizer.json) into DIR */
static int copy_tokenizer(const char *tok, const char *dir)
{
	if (!is_dir(tok)) {
		char *to = xasprintf("%s/tokenizer.json", dir);
		int ret = copy_file(tok, to);
		free(to);
		return ret;
	}
	for (size_t i = 0; i < N_TOK_FILES; i++) {
		char *from = xasprintf("%s/%s", tok, tok_files[i].from);
		char *to = xasprintf("%s/%s", dir, tok_files[i].to);
		int ret = is_file(from) && !(tok_files[i].unless && has(tok, tok_files[i].unless))
			? copy_file(from, to) : 0;
		free(from);
		free(to);
		if (ret)
			return -1;
	}
	return 0;
}

/* What transformers' files say of the exported tokenizer */
struct hf_tok {
	long eot;		/* the id of <|endoftext|>, or -1 */
	json_t *specials;	/* the other special tokens' texts */
	unsigned char *has;	/* has[i]: id i of the model's vocabulary is a token */
	uint32_t n;		/* the model's vocabulary */
};

static int mark_id(struct hf_tok *t, const char *text, json_t *id, const char *path)
{
	json_int_t i = json_integer_value(id);
	if (!json_is_integer(id) || i < 0 || i >= (json_int_t)t->n)
		return error("'%s': the id of token '%s' is not one of the model's %u", path, text,
			     t->n);
	t->has[i] = 1;
	if (!strcmp(text, "<|endoftext|>"))
		t->eot = (long)i;
	return 0;
}

/* The file of the tokenizer TOK (a tokenizer.json, or a directory) that holds its ids:
 * tokenizer.json, else vocab.json or encoder.json (*whole 0: the vocabulary alone) */
static char *tok_ids_file(const char *tok, int *whole)
{
	static const char *const names[] = { "tokenizer.json", "vocab.json", "encoder.json" };
	*whole = 1;
	if (!is_dir(tok))
		return xstrdup(tok);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *p = xasprintf("%s/%s", tok, names[i]);
		if (is_file(p)) {
			*whole = !i;
			return p;
		}
		free(p);
	}
	return NULL;
}

/* Read the ids of the tokenizer TOK (before anything is copied, so that one the model
 * cannot use leaves nothing behind); NULL for none: T empty */
static int read_tok(const char *tok, uint32_t vocab, struct hf_tok *t)
{
	memset(t, 0, sizeof(*t));
	t->eot = -1;
	t->n = vocab;
	t->specials = json_array();
	int whole;
	char *path = tok ? tok_ids_file(tok, &whole) : NULL;
	if (!path)
		return tok ? error("'%s': no tokenizer files (tokenizer.json, vocab.json + "
				   "merges.txt, encoder.json + vocab.bpe) in it", tok) : 0;
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr), *a;
	int ret = root ? 0 : error("'%s': %s (line %d)", path, jerr.text, jerr.line);
	t->has = xcalloc(vocab, 1);
	json_t *v = whole ? json_object_get(json_object_get(root, "model"), "vocab") : root;
	const char *k;
	size_t i;
	json_object_foreach(v, k, a)
		if (!ret)
			ret = mark_id(t, k, a, path);
	json_array_foreach(json_object_get(root, "added_tokens"), i, a) {
		const char *c = json_string_value(json_object_get(a, "content"));
		if (!ret && c)
			ret = mark_id(t, c, json_object_get(a, "id"), path);
		if (!ret && c && strcmp(c, "<|endoftext|>") &&
		    json_is_true(json_object_get(a, "special")))
			json_array_append_new(t->specials, json_string(c));
	}
	json_decref(root);
	free(path);
	return ret;
}

static void hf_tok_free(struct hf_tok *t)
{
	json_decref(t->specials);
	free(t->has);
}

static int write_buf(const char *dir, const char *name, struct buf *b)
{
	char *path = xasprintf("%s/%s", dir, name);
	int ret = atomic_write_file(path, b->p, b->len);
	free(path);
	buf_free(b);
	return ret;
}

static int write_config(const struct gpt2_config *c, const char *dir, long eot)
{
	struct buf b = { 0 };
	buf_printf(&b,
		   "{\n  \"architectures\": [\"GPT2LMHeadModel\"],\n  \"model_type\": \"gpt2\",\n"
		   "  \"vocab_size\": %u,\n  \"n_positions\": %u,\n  \"n_ctx\": %u,\n"
		   "  \"n_embd\": %u,\n  \"n_layer\": %u,\n  \"n_head\": %u,\n  \"n_inner\": null,\n"
		   "  \"activation_function\": \"gelu_new\",\n  \"layer_norm_epsilon\": 1e-05,\n"
		   "  \"initializer_range\": 0.02,\n  \"resid_pdrop\": 0.1,\n  \"embd_pdrop\": 0.1,\n"
		   "  \"attn_pdrop\": 0.1,\n  \"scale_attn_weights\": true,\n"
		   "  \"scale_attn_by_inverse_layer_idx\": %s,\n  \"reorder_and_upcast_attn\": %s,\n"
		   "  \"tie_word_embeddings\": true,\n  \"use_cache\": true,\n"
		   "  \"torch_dtype\": \"float32\"",
		   c->vocab_size, c->n_ctx, c->n_ctx, c->n_embd, c->n_layer, c->n_head,
		   c->scale_attn_by_inverse_layer_idx ? "true" : "false",
		   c->reorder_and_upcast_attn ? "true" : "false");
	if (eot >= 0)
		buf_printf(&b, ",\n  \"bos_token_id\": %ld,\n  \"eos_token_id\": %ld", eot, eot);
	buf_puts(&b, "\n}\n");
	return write_buf(dir, "config.json", &b);
}

/* generation_config.json: cp-complete's defaults (greedy, 128 new tokens, stopping at
 * <|endoftext|>), and the ids that are no token suppressed as cp-complete masks them */
static int write_generation_config(const char *dir, const struct hf_tok *t)
{
	struct buf b = { 0 };
	buf_puts(&b, "{\n  \"do_sample\": false,\n  \"max_new_tokens\": 128");
	if (t->eot >= 0)
		buf_printf(&b, ",\n  \"bos_token_id\": %ld,\n  \"eos_token_id\": %ld,\n"
			   "  \"pad_token_id\": %ld", t->eot, t->eot, t->eot);
	int listed = 0;
	for (uint32_t i = 0; t->has && i < t->n; i++)
		if (!t->has[i])
			buf_printf(&b, "%s%u", listed++ ? ", " : ",\n  \"suppress_tokens\": [", i);
	buf_puts(&b, listed ? "]\n}\n" : "\n}\n");
	return write_buf(dir, "generation_config.json", &b);
}

/* the special tokens as both tokenizer files name them, each entry after SEP */
static void put_specials(struct buf *b, const struct hf_tok *t, const char *sep)
{
	static const char *const roles[] = { "bos_token", "eos_token", "unk_token" };
	for (size_t i = 0; t->eot >= 0 && i < sizeof(roles) / sizeof(roles[0]); i++) {
		buf_printf(b, "%s\"%s\": \"<|endoftext|>\"", sep, roles[i]);
		sep = ",\n  ";
	}
	if (json_array_size(t->specials)) {
		char *s = json_dumps(t->specials, JSON_COMPACT);
		buf_printf(b, "%s\"additional_special_tokens\": %s", sep, s);
		free(s);
	}
}

/* tokenizer_config.json and special_tokens_map.json, unless the tokenizer came with its own.
 * The text is decoded as cp-complete decodes it: no spaces "cleaned up". */
static int write_tokenizer_config(const struct gpt2_config *c, const char *dir,
				  const struct hf_tok *t)
{
	struct buf b = { 0 };
	if (!has(dir, "tokenizer_config.json")) {
		buf_printf(&b, "{\n  \"tokenizer_class\": \"GPT2Tokenizer\",\n"
			   "  \"model_max_length\": %u,\n  \"add_prefix_space\": false,\n"
			   "  \"clean_up_tokenization_spaces\": false", c->n_ctx);
		put_specials(&b, t, ",\n  ");
		buf_puts(&b, "\n}\n");
		if (write_buf(dir, "tokenizer_config.json", &b))
			return -1;
	}
	if (has(dir, "special_tokens_map.json"))
		return 0;
	buf_puts(&b, "{");
	put_specials(&b, t, "\n  ");
	buf_puts(&b, "\n}\n");
	return write_buf(dir, "special_tokens_map.json", &b);
}

/* The model's weights as GPT2LMHeadModel names them */
static int write_weights(const struct gpt2_config *c, const float *params, const char *dir)
{
	struct gpt2_layout lay;
	gpt2_layout(c, &lay);
	size_t n = 2 + (size_t)c->n_layer * 12 + 2, k = 0;
	struct st_tensor *t = xcalloc(n, sizeof(*t));
	for (int tt = 0; tt < GPT2_NT; tt++) {
		int per = gpt2_tensor_per_layer(tt);
		uint64_t slice = per ? lay.size[tt] / c->n_layer : lay.size[tt];
		for (uint32_t l = 0; l < (per ? c->n_layer : 1); l++) {
			struct st_tensor *s = &t[k++];
			s->name = gpt2_hf_name(tt, (int)l);
			s->dtype = "F32";
			s->ndim = gpt2_tensor_shape(c, tt, s->shape);
			s->data = params + lay.off[tt] + slice * l;
			s->nbytes = slice * sizeof(float);
		}
	}
	/* data in our buffer order, contiguous, as the safetensors library checks */
	static const char *const meta[] = { "format", "pt", NULL };
	char *path = xasprintf("%s/model.safetensors", dir);
	int ret = st_write(path, t, k, meta);
	free(path);
	for (size_t i = 0; i < k; i++)
		free((char *)t[i].name);
	free(t);
	return ret;
}

int gpt2_hf_export(const struct gpt2_config *c, const float *params, const char *dir,
		   const char *tokenizer)
{
	struct hf_tok t;
	int ret = read_tok(tokenizer, c->vocab_size, &t);
	if (!ret)
		ret = io_mkdirs(dir);
	if (!ret && tokenizer)
		ret = copy_tokenizer(tokenizer, dir);
	if (!ret)
		ret = write_weights(c, params, dir);
	if (!ret)
		ret = write_config(c, dir, t.eot);
	if (!ret)
		ret = write_generation_config(dir, &t);
	if (!ret && tokenizer)
		ret = write_tokenizer_config(c, dir, &t);
	hf_tok_free(&t);
	return ret;
}

static int cfg_uint(json_t *root, const char *key, const char *alt, uint32_t *out,
		    const char *path)
{
	json_t *v = json_object_get(root, key);
	if (!v && alt)
		v = json_object_get(root, alt);
	if (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX)
		return error("'%s': \"%s\" is missing or not a positive integer", path, key);
	*out = (uint32_t)json_integer_value(v);
	return 0;
}

int gpt2_hf_read_config(const char *dir, struct gpt2_config *c)
{
	char *path = xasprintf("%s/config.json", dir);
	json_error_t jerr;
	json_t *root = json_load_file(path, 0, &jerr);
	int ret = -1;
	memset(c, 0, sizeof(*c));
	if (!root) {
		error("'%s': %s (line %d)", path, jerr.text, jerr.line);
		goto out;
	}
	if (cfg_uint(root, "vocab_size", NULL, &c->vocab_size, path) ||
	    cfg_uint(root, "n_positions", "n_ctx", &c->n_ctx, path) ||
	    cfg_uint(root, "n_layer", NULL, &c->n_layer, path) ||
	    cfg_uint(root, "n_head", NULL, &c->n_head, path) ||
	    cfg_uint(root, "n_embd", NULL, &c->n_embd, path))
		goto out;
	c->scale_attn_by_inverse_layer_idx =
		json_is_true(json_object_get(root, "scale_attn_by_inverse_layer_idx"));
	c->reorder_and_upcast_attn = json_is_true(json_object_get(root, "reorder_and_upcast_attn"));
	json_t *act = json_object_get(root, "activation_function");
	json_t *inner = json_object_get(root, "n_inner");
	json_t *eps = json_object_get(root, "layer_norm_epsilon");
	json_t *sw = json_object_get(root, "scale_attn_weights");
	json_t *tie = json_object_get(root, "tie_word_embeddings");
	if (act && !(json_is_string(act) && (!strcmp(json_string_value(act), "gelu_new") ||
					     !strcmp(json_string_value(act), "gelu_pytorch_tanh")))) {
		error("'%s': activation_function must be gelu_new (tanh GELU)", path);
		goto out;
	}
	if (inner && !json_is_null(inner) &&
	    json_integer_value(inner) != (json_int_t)4 * c->n_embd) {
		error("'%s': n_inner must be null or 4 * n_embd", path);
		goto out;
	}
	if (eps && (!json_is_number(eps) || json_number_value(eps) != 1e-5)) {
		error("'%s': layer_norm_epsilon must be 1e-05", path);
		goto out;
	}
	if ((sw && json_is_false(sw)) || (tie && json_is_false(tie))) {
		error("'%s': scale_attn_weights and tie_word_embeddings must be true", path);
		goto out;
	}
	const char *why = gpt2_config_check(c);
	if (why) {
		error("'%s': %s", path, why);
		goto out;
	}
	ret = 0;
out:
	json_decref(root);
	free(path);
	return ret;
}

int gpt2_hf_load(const char *dir, const struct gpt2_config *c, float *params)
{
	char *path = xasprintf("%s/model.safetensors", dir);
	struct st_file *f = st_open(path);
	int ret = f ? 0 : -1;
	struct gpt2_layout lay;
	gpt2_layout(c, &lay);
	for (int tt = 0; tt < GPT2_NT && !ret; tt++) {
		int per = gpt2_tensor_per_layer(tt);
		uint64_t slice = per ? lay.size[tt] / c->n_layer : lay.size[tt];
		for (uint32_t l = 0; l < (per ? c->n_layer : 1) && !ret; l++) {
			char *name = gpt2_hf_name(tt, (int)l);
			const struct st_tensor *t = st_find(f, name);
			if (!t)	/* the original GPT-2 checkpoints have no "transformer." */
				t = st_find(f, name + strlen("transformer."));
			uint64_t d[2] = { 1, 1 };
			int nd = gpt2_tensor_shape(c, tt, d);
			if (!t)
				ret = error("'%s': tensor '%s' is missing", path, name);
			else if (t->ndim != nd || t->shape[0] != d[0] || (nd == 2 && t->shape[1] != d[1]))
				ret = error("'%s': tensor '%s' has the wrong shape for config.json", path,
					    name);
			else if (st_to_f32(t, params + lay.off[tt] + slice * l))
				ret = error("'%s': tensor '%s' has dtype %s, not a float type", path,
					    name, t->dtype);
			free(name);
		}
	}
	st_close(f);
	free(path);
	return ret;
}
