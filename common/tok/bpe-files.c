/* bpe-files.c: reading and writing tokenizer files: HF tokenizers' tokenizer.json, the
 * vocab.json + merges.txt pair, and GPT-2's encoder.json + vocab.bpe (the same two formats
 * under other names). Loading checks the files agree with each other, so a truncated or
 * hand-edited tokenizer is refused before it can encode anything, and that the files cp-bpe
 * wrote into a directory all come from one run (cp-bpe.sums), since the two formats of a
 * mixed directory encode differently. Ids are bounded by the number of entries, so one
 * huge id cannot make the loader allocate gigabytes. */
#include "tok/bpe.h"
#include "base/atomic.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "base/utf8.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

/* written first by bpe_save: the size and XXH64 of each file it is about to write */
#define SUMS_NAME "cp-bpe.sums"
#define SUMS_HEAD "cp-bpe sums 1\n"
static const char *const saved_names[] = { "vocab.json", "merges.txt", "tokenizer.json" };
#define N_SAVED (sizeof saved_names / sizeof *saved_names)

/* printable (byte-level) form -> bytes; -1 when a character is not in the byte map */
static int from_printable(struct buf *out, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		int l;
		uint32_t cp = utf8_decode(p + i, n - i, &l);
		int b = utf8_valid_len(p + i, n - i) ? bpe_cp_to_byte(cp) : -1;
		if (b < 0)
			return -1;
		buf_putc(out, b);
		i += (size_t)l;
	}
	return 0;
}

static int is_dir(const char *p)
{
	struct stat st;
	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
	return !access(p, F_OK);
}

static json_t *load_json(const char *path)
{
	json_error_t err;
	json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
	if (!j)
		error("'%s':%d:%d: %s", path, err.line, err.column, err.text);
	return j;
}

/* added tokens (id, content) after the vocabulary: the same token under its id, or a new one */
static int load_added(struct bpe *m, json_t *added, const char *path, json_int_t bound)
{
	size_t i, n;
	json_t *a;
	json_array_foreach(added, i, a) {
		json_t *jid = json_object_get(a, "id"), *jc = json_object_get(a, "content");
		if (!json_is_integer(jid) || !json_is_string(jc) || json_integer_value(jid) < 0)
			return error("'%s': added_tokens[%zu] needs an id and a content", path, i);
		if (json_integer_value(jid) >= bound)
			return error("'%s': added_tokens[%zu] ('%s') has id %lld, past the %lld entries "
				     "of the vocabulary and added tokens", path, i, json_string_value(jc),
				     (long long)json_integer_value(jid), (long long)bound);
		uint32_t id = (uint32_t)json_integer_value(jid);
		const char *c = json_string_value(jc);
		size_t cl = json_string_length(jc);
		if (id < m->n_ids && m->len[id] != BPE_NONE) {
			const unsigned char *t = bpe_tok(m, id, &n);
			if (n != cl || memcmp(t, c, n))
				return error("'%s': added token '%s' has id %u, which the vocabulary gives to another token",
					     path, c, id);
		} else if (bpe_add_token(m, c, cl, id)) {
			return error("'%s': added token '%s' repeats another token", path, c);
		}
		m->special[id] = 1;
	}
	return 0;
}

/* vocabulary object {"token": id}; added tokens (id, content) are applied after */
static int load_vocab_obj(struct bpe *m, json_t *vocab, const char *path, json_t *added)
{
	const char *key;
	json_t *val;
	struct buf b = { 0 };
	int ret = 0;
	if (!json_is_object(vocab)) {
		error("'%s': the vocabulary is not a JSON object", path);
		return -1;
	}
	/* ids run 0..N-1 over N entries, holes allowed; an id past them would only make room */
	json_int_t bound = (json_int_t)(json_object_size(vocab) + json_array_size(added));
	if (bound > (json_int_t)BPE_NONE - 1)
		bound = (json_int_t)BPE_NONE - 1;
	json_object_foreach(vocab, key, val) {
		if (!json_is_integer(val) || json_integer_value(val) < 0) {
			ret = error("'%s': token '%s' has no valid id", path, key);
			break;
		}
		if (json_integer_value(val) >= bound) {
			ret = error("'%s': token '%s' has id %lld, past the %lld entries of the vocabulary "
				    "and added tokens", path, key, (long long)json_integer_value(val),
				    (long long)bound);
			break;
		}
		uint32_t id = (uint32_t)json_integer_value(val);
		buf_reset(&b);
		if (from_printable(&b, key, strlen(key))) {
			/* an added token may be spelt in plain text, e.g. "<s>" */
			int is_added = 0;
			size_t i;
			json_t *a;
			json_array_foreach(added, i, a)
				if (json_integer_value(json_object_get(a, "id")) == id)
					is_added = 1;
			if (!is_added) {
				ret = error("'%s': token '%s' is not written in GPT-2's byte-level alphabet",
					    path, key);
				break;
			}
			continue;
		}
		if (bpe_add_token(m, b.p, b.len, id)) {
			ret = error("'%s': token '%s' (id %u) repeats an id or another token's bytes",
				    path, key, id);
			break;
		}
	}
	if (!ret)
		ret = load_added(m, added, path, bound);
	buf_free(&b);
	return ret;
}

/* one merge "a b" given as its two halves; where names the place for errors */
static int add_merge_str(struct bpe *m, const char *a, size_t al, const char *b, size_t bl,
			 const char *where)
{
	struct buf x = { 0 }, y = { 0 };
	int ret = 0;
	if (from_printable(&x, a, al) || from_printable(&y, b, bl)) {
		ret = error("%s: merge '%.*s %.*s' is not written in GPT-2's byte-level alphabet", where,
			    (int)al, a, (int)bl, b);
		goto out;
	}
	uint32_t ia = bpe_find(m, x.p, x.len), ib = bpe_find(m, y.p, y.len);
	buf_put(&x, y.p, y.len);
	uint32_t ic = bpe_find(m, x.p, x.len);
	if (ia == BPE_NONE || ib == BPE_NONE || ic == BPE_NONE) {
		ret = error("%s: merge '%.*s %.*s' uses or makes a token that is not in the vocabulary",
			    where, (int)al, a, (int)bl, b);
		goto out;
	}
	bpe_add_merge(m, ia, ib, ic);
out:
	buf_free(&x);
	buf_free(&y);
	return ret;
}

static int load_merges_txt(struct bpe *m, const char *path)
{
	size_t len;
	char *text = read_file(path, &len);
	if (!text)
		return -1;
	int ret = 0;
	size_t lineno = 0;
	char *p = text, *end = text + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end;
		lineno++;
		size_t ll = (size_t)(le - p);
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (!(ll >= 8 && !memcmp(p, "#version", 8))) {
			char *sp = memchr(p, ' ', ll);
			if (!sp || memchr(sp + 1, ' ', ll - (size_t)(sp + 1 - p)) || sp == p ||
			    sp + 1 == p + ll) {
				ret = error("'%s':%zu: a merge is two tokens separated by one space", path,
					    lineno);
				break;
			}
			char where[64 + 4096];
			snprintf(where, sizeof where, "'%s':%zu", path, lineno);
			if (add_merge_str(m, p, (size_t)(sp - p), sp + 1, (size_t)(p + ll - sp - 1), where)) {
				ret = -1;
				break;
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (!ret && len && text[len - 1] != '\n')
		ret = error("'%s':%zu: the last line has no newline (truncated file?)", path, lineno);
	free(text);
	return ret;
}

static int load_pair(struct bpe *m, const char *vocab, const char *merges)
{
	json_t *v = load_json(vocab);
	if (!v)
		return -1;
	json_t *none = json_array();
	int ret = load_vocab_obj(m, v, vocab, none);
	json_decref(none);
	json_decref(v);
	if (!ret)
		ret = load_merges_txt(m, merges);
	if (!ret)
		ret = bpe_finish(m, vocab);
	return ret;
}

/* reject what we cannot reproduce exactly, rather than encode differently from HF */
static int check_pipeline(json_t *root, const char *path)
{
	json_t *norm = json_object_get(root, "normalizer");
	if (norm && !json_is_null(norm))
		return error("'%s': normalizers are not supported (byte-level BPE needs none)", path);
	json_t *pt = json_object_get(root, "pre_tokenizer");
	const char *type = json_string_value(json_object_get(pt, "type"));
	if (!type || strcmp(type, "ByteLevel"))
		return error("'%s': the pre_tokenizer must be ByteLevel (GPT-2's), not '%s'", path,
			     type ? type : "none");
	if (json_is_true(json_object_get(pt, "add_prefix_space")))
		return error("'%s': ByteLevel with add_prefix_space true is not supported", path);
	if (json_is_false(json_object_get(pt, "use_regex")))
		return error("'%s': ByteLevel with use_regex false is not supported", path);
	json_t *model = json_object_get(root, "model");
	const char *mt = json_string_value(json_object_get(model, "type"));
	if (!json_is_object(model) || (mt && strcmp(mt, "BPE")))
		return error("'%s': the model must be BPE, not '%s'", path, mt ? mt : "missing");
	json_t *d = json_object_get(model, "dropout");
	if (json_is_true(json_object_get(model, "ignore_merges")) ||
	    (d && !json_is_null(d) && json_number_value(d) != 0.0) ||
	    json_is_true(json_object_get(model, "byte_fallback")) ||
	    json_is_string(json_object_get(model, "continuing_subword_prefix")) ||
	    json_is_string(json_object_get(model, "end_of_word_suffix")))
		return error("'%s': BPE options other than the defaults (dropout, ignore_merges, "
			     "byte_fallback, subword affixes) are not supported", path);
	return 0;
}

static int load_tokenizer_json(struct bpe *m, const char *path)
{
	json_t *root = load_json(path);
	if (!root)
		return -1;
	int ret = -1;
	if (!json_is_object(root)) {
		error("'%s': not a tokenizer.json object", path);
		goto out;
	}
	if (check_pipeline(root, path))
		goto out;
	json_t *model = json_object_get(root, "model");
	json_t *added = json_object_get(root, "added_tokens");
	json_t *none = json_array();
	int r = load_vocab_obj(m, json_object_get(model, "vocab"), path,
			       json_is_array(added) ? added : none);
	json_decref(none);
	if (r)
		goto out;
	json_t *merges = json_object_get(model, "merges"), *mj;
	size_t i;
	if (!json_is_array(merges)) {
		error("'%s': model.merges is not an array", path);
		goto out;
	}
	json_array_foreach(merges, i, mj) {
		char where[4200];
		snprintf(where, sizeof where, "'%s': model.merges[%zu]", path, i);
		if (json_is_string(mj)) {
			const char *s = json_string_value(mj);
			size_t n = json_string_length(mj);
			const char *sp = memchr(s, ' ', n);
			if (!sp || memchr(sp + 1, ' ', n - (size_t)(sp + 1 - s)) || sp == s || sp + 1 == s + n) {
				error("%s: a merge is two tokens separated by one space", where);
				goto out;
			}
			if (add_merge_str(m, s, (size_t)(sp - s), sp + 1, (size_t)(s + n - sp - 1), where))
				goto out;
		} else if (json_is_array(mj) && json_array_size(mj) == 2 &&
			   json_is_string(json_array_get(mj, 0)) && json_is_string(json_array_get(mj, 1))) {
			json_t *a = json_array_get(mj, 0), *b = json_array_get(mj, 1);
			if (add_merge_str(m, json_string_value(a), json_string_length(a),
					  json_string_value(b), json_string_length(b), where))
				goto out;
		} else {
			error("%s: a merge is a string \"a b\" or an array of two strings", where);
			goto out;
		}
	}
	ret = bpe_finish(m, path);
out:
	json_decref(root);
	return ret;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcmp(s + a - b, suf);
}

/* 0 when FILE has the LEN bytes and XXH64 sum that the sums line gives */
static int file_matches(const char *file, size_t len, unsigned long long sum)
{
	size_t n;
	int q = cp_quiet;
	cp_quiet = 1;
	char *p = read_file(file, &n);
	cp_quiet = q;
	int ok = p && n == len && XXH64(p, n, 0) == sum;
	free(p);
	return ok ? 0 : -1;
}

/* One line "NAME SIZE SUM" of DIR's cp-bpe.sums checked; -1 after an error. */
static int check_sums_line(const char *dir, const char *sums, size_t lineno, const char *line)
{
	char name[32], tail;
	size_t len;
	unsigned long long sum;
	size_t k = 0;
	if (sscanf(line, "%31s %zu %16llx%c", name, &len, &sum, &tail) == 4 && tail == '\n')
		while (k < N_SAVED && strcmp(name, saved_names[k]))
			k++;
	if (k == N_SAVED || !strchr(line, '\n'))
		return error("'%s':%zu: not a line 'FILE SIZE XXH64' naming a tokenizer file", sums,
			     lineno);
	char *file = xasprintf("%s/%s", dir, name);
	int ret = 0;
	if (!exists(file))
		ret = error("'%s': the tokenizer files are not all from one cp-bpe run: '%s' is missing "
			    "(an interrupted run? run cp-bpe again)", dir, name);
	else if (file_matches(file, len, sum))
		ret = error("'%s': the tokenizer files are not all from one cp-bpe run: '%s' is not the "
			    "one '%s' records (an interrupted run? run cp-bpe again)", dir, name,
			    SUMS_NAME);
	free(file);
	return ret;
}

/* DIR's cp-bpe.sums, when there: every file it names is the one that run wrote. */
static int check_sums(const char *dir)
{
	char *sums = xasprintf("%s/%s", dir, SUMS_NAME);
	size_t len;
	char *text = exists(sums) ? read_file(sums, &len) : NULL;
	int ret = exists(sums) && !text ? -1 : 0;
	if (text && (len < strlen(SUMS_HEAD) || memcmp(text, SUMS_HEAD, strlen(SUMS_HEAD)) ||
		     memchr(text, 0, len)))
		ret = error("'%s': not a cp-bpe sums file", sums);
	size_t lineno = 1;
	for (char *p = text + (text ? strlen(SUMS_HEAD) : 0); text && !ret && *p;) {
		char *nl = strchr(p, '\n');
		ret = check_sums_line(dir, sums, ++lineno, p);
		p = nl ? nl + 1 : p + strlen(p);
	}
	free(text);
	free(sums);
	return ret;
}

/* a file named as cp-bpe names its outputs is checked against the sums beside it */
static int check_sums_beside(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	for (size_t k = 0; k < N_SAVED; k++)
		if (!strcmp(base, saved_names[k])) {
			char *dir = slash ? xasprintf("%.*s", (int)(slash - path), path) : xstrdup(".");
			int ret = check_sums(*dir ? dir : "/");
			free(dir);
			return ret;
		}
	return 0;
}

int bpe_load(struct bpe *m, const char *path)
{
	bpe_init(m);
	int ret;
	char *a = NULL, *b = NULL;
	if (is_dir(path)) {
		if (check_sums(path)) {
			ret = -1;
			goto out;
		}
		a = xasprintf("%s/tokenizer.json", path);
		if (exists(a)) {
			ret = load_tokenizer_json(m, a);
			goto out;
		}
		free(a);
		a = xasprintf("%s/vocab.json", path);
		b = xasprintf("%s/merges.txt", path);
		if (exists(a) && exists(b)) {
			ret = load_pair(m, a, b);
			goto out;
		}
		free(a);
		free(b);
		a = xasprintf("%s/encoder.json", path);
		b = xasprintf("%s/vocab.bpe", path);
		if (exists(a) && exists(b)) {
			ret = load_pair(m, a, b);
			goto out;
		}
		ret = error("'%s': no tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe there",
			    path);
		goto out;
	}
	if (!exists(path)) {
		errno = ENOENT;
		ret = error_errno("cannot open tokenizer '%s'", path);
		goto out;
	}
	if (check_sums_beside(path)) {
		ret = -1;
		goto out;
	}
	if (ends_with(path, "vocab.json") || ends_with(path, "encoder.json")) {
		/* the merges file sits beside it */
		const char *slash = strrchr(path, '/');
		int dl = slash ? (int)(slash - path + 1) : 0;
		const char *other = ends_with(path, "encoder.json") ? "vocab.bpe" : "merges.txt";
		b = xasprintf("%.*s%s", dl, path, other);
		ret = load_pair(m, path, b);
		goto out;
	}
	ret = load_tokenizer_json(m, path);
out:
	free(a);
	free(b);
	if (ret)
		bpe_free(m);
	return ret;
}

/* ------------------------------------------------------------ writing */

static int write_atomic(const char *dir, const char *name, const struct buf *b)
{
	char *path = xasprintf("%s/%s", dir, name);
	int ret = atomic_write_file(path, b->p, b->len);
	free(path);
	return ret;
}

static void put_token(struct buf *out, const struct bpe *m, uint32_t id)
{
	size_t n;
	const unsigned char *s = bpe_tok(m, id, &n);
	struct buf t = { 0 };
	if (m->special[id])
		buf_put(&t, s, n);
	else
		bpe_printable(&t, s, n);
	json_str(out, t.p, t.len);
	buf_free(&t);
}

/* HF keeps one rank per pair (the last); so do the files */
static int merge_is_last(const struct bpe *m, uint32_t i)
{
	uint64_t v = bpe_merge_lookup(m, m->merges[i].a, m->merges[i].b);
	return (uint32_t)(v >> 32) == i;
}

static void put_vocab(struct buf *out, const struct bpe *m, const char *sep)
{
	buf_putc(out, '{');
	int first = 1;
	for (uint32_t id = 0; id < m->n_ids; id++) {
		if (m->len[id] == BPE_NONE)
			continue;
		buf_puts(out, first ? "" : sep);
		first = 0;
		put_token(out, m, id);
		buf_printf(out, ":%u", id);
	}
	buf_putc(out, '}');
}

static void put_merge(struct buf *out, const struct bpe *m, uint32_t i)
{
	size_t n;
	const unsigned char *s = bpe_tok(m, m->merges[i].a, &n);
	bpe_printable(out, s, n);
	buf_putc(out, ' ');
	s = bpe_tok(m, m->merges[i].b, &n);
	bpe_printable(out, s, n);
}

static void put_merges_txt(struct buf *b, const struct bpe *m)
{
	buf_puts(b, "#version: 0.2\n");
	for (uint32_t i = 0; i < m->n_merges; i++)
		if (merge_is_last(m, i)) {
			put_merge(b, m, i);
			buf_putc(b, '\n');
		}
}

static void put_added_tokens(struct buf *b, const struct bpe *m)
{
	int first = 1;
	for (uint32_t id = 0; id < m->n_ids; id++)
		if (m->special[id] && m->len[id] != BPE_NONE) {
			size_t n;
			const unsigned char *s = bpe_tok(m, id, &n);
			buf_printf(b, "%s\n    {\"id\": %u, \"content\": ", first ? "" : ",", id);
			json_str(b, s, n);
			buf_puts(b, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
				    "\"normalized\": false, \"special\": true}");
			first = 0;
		}
}

static void put_tokenizer_json(struct buf *b, const struct bpe *m)
{
	struct buf t = { 0 };
	buf_puts(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
		    "  \"added_tokens\": [");
	put_added_tokens(b, m);
	buf_puts(b, "\n  ],\n  \"normalizer\": null,\n"
		    "  \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
		    "\"trim_offsets\": true, \"use_regex\": true},\n"
		    "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
		    "\"trim_offsets\": false, \"use_regex\": true},\n"
		    "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
		    "\"trim_offsets\": true, \"use_regex\": true},\n"
		    "  \"model\": {\n    \"type\": \"BPE\",\n    \"dropout\": null,\n"
		    "    \"unk_token\": null,\n    \"continuing_subword_prefix\": null,\n"
		    "    \"end_of_word_suffix\": null,\n    \"fuse_unk\": false,\n"
		    "    \"byte_fallback\": false,\n    \"vocab\": ");
	put_vocab(b, m, ",\n      ");
	buf_puts(b, ",\n    \"merges\": [");
	int first = 1;
	for (uint32_t i = 0; i < m->n_merges; i++)
		if (merge_is_last(m, i)) {
			buf_puts(b, first ? "\n      " : ",\n      ");
			first = 0;
			buf_reset(&t);
			put_merge(&t, m, i);
			json_str(b, t.p, t.len);
		}
	buf_puts(b, "\n    ]\n  }\n}\n");
	buf_free(&t);
}

/* The sums of all three files go first, then the files: however a run ends (ENOSPC, kill),
 * the directory holds either the files its sums name or files the loader refuses. */
int bpe_save(const struct bpe *m, const char *dir)
{
	if (mkdir(dir, 0777) && errno != EEXIST)
		return error_errno("cannot create directory '%s'", dir);
	struct buf b[N_SAVED] = { { 0 } }, sums = { 0 };
	put_vocab(&b[0], m, ",");
	buf_putc(&b[0], '\n');
	put_merges_txt(&b[1], m);
	put_tokenizer_json(&b[2], m);
	buf_puts(&sums, SUMS_HEAD);
	for (size_t k = 0; k < N_SAVED; k++)
		buf_printf(&sums, "%s %zu %016llx\n", saved_names[k], b[k].len,
			   (unsigned long long)XXH64(b[k].p, b[k].len, 0));
	int ret = write_atomic(dir, SUMS_NAME, &sums);
	for (size_t k = 0; k < N_SAVED; k++) {
		if (!ret)
			ret = write_atomic(dir, saved_names[k], &b[k]);
		buf_free(&b[k]);
	}
	buf_free(&sums);
	return ret;
}
