/* test-bpe.c: the BPE trainer against a hand computation, encoding and decoding invariants
 * (round trip on random bytes, the two piece encoders agree), file round trip, and refusal
 * of broken tokenizer files; ids past the number of entries refused (bounded memory); a
 * directory whose files come from two cp-bpe runs, or misses one, refused. Uses GPT-2's files from ../shared/data/gpt2 when present. */
#include "tok/bpe.h"
#include "base/die.h"
#include "base/json.h"
#include "tap.h"
#include "train-text.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


static const char *merge_str(const struct bpe *m, uint32_t i, char *out)
{
	size_t la, lb;
	const unsigned char *a = bpe_tok(m, m->merges[i].a, &la), *b = bpe_tok(m, m->merges[i].b, &lb);
	sprintf(out, "%.*s+%.*s", (int)la, a, (int)lb, b);
	return out;
}

static void rand_bytes(unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = rand() % 10;
		p[i] = r < 4 ? (unsigned char)"  \n\tdef ret(x):'s"[rand() % 17] : (unsigned char)rand();
	}
}

static void check_model(const struct bpe *m, const char *name)
{
	struct bpe_encoder *e = bpe_encoder_new(m);
	struct u32vec ids = { 0 }, a = { 0 }, b = { 0 };
	struct buf out = { 0 };
	int rt = 1, same = 1;
	unsigned char buf[2048];
	for (int t = 0; t < 300; t++) {
		size_t n = (size_t)(rand() % (int)sizeof buf);
		rand_bytes(buf, n);
		ids.n = 0;
		bpe_encode(e, buf, n, 0, &ids);
		buf_reset(&out);
		if (bpe_decode(m, ids.v, ids.n, &out, NULL) || out.len != n || memcmp(out.p, buf, n))
			rt = 0;
		a.n = b.n = 0;
		bpe_encode_piece(m, buf, n, 0, &a);
		bpe_encode_piece(m, buf, n, 1, &b);
		if (a.n != b.n || memcmp(a.v, b.v, a.n * sizeof *a.v))
			same = 0;
	}
	ok(rt, "%s: decode(encode(x)) == x on random bytes", name);
	ok(same, "%s: the scanning and the heap piece encoders agree", name);
	/* long runs exercise the heap path and the cache bypass */
	memset(buf, ' ', 1500);
	ids.n = 0;
	bpe_encode(e, buf, 1500, 0, &ids);
	buf_reset(&out);
	ok(!bpe_decode(m, ids.v, ids.n, &out, NULL) && out.len == 1500, "%s: 1500 spaces round trip", name);
	uint32_t bad = m->n_ids + 5;
	size_t where = 99;
	ok(bpe_decode(m, &bad, 1, &out, &where) == -1 && where == 0, "%s: an unknown id is refused", name);
	free(ids.v);
	free(a.v);
	free(b.v);
	buf_free(&out);
	bpe_encoder_free(e);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
}

/* vocab.json of the 256 bytes (ids 0..255) and <|endoftext|> at EOT */
static void byte_vocab(const char *dir, long long eot)
{
	struct buf v = { 0 }, t = { 0 };
	buf_putc(&v, '{');
	for (int i = 0; i < 256; i++) {
		unsigned char c = (unsigned char)i;
		buf_reset(&t);
		bpe_printable(&t, &c, 1);
		json_str(&v, t.p, t.len);
		buf_printf(&v, ":%d,", i);
	}
	buf_printf(&v, "\"<|endoftext|>\":%lld}", eot);
	char path[256];
	snprintf(path, sizeof path, "%s/vocab.json", dir);
	buf_putc(&v, 0);
	write_file(path, (const char *)v.p);
	snprintf(path, sizeof path, "%s/merges.txt", dir);
	write_file(path, "#version: 0.2\n");
	buf_free(&t);
	buf_free(&v);
}

static int load_with_added(const char *dir, long long added)
{
	char path[256], cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "cd %s && { printf '{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
		 "\"added_tokens\": [{\"id\": %lld, \"content\": \"<s>\"}], "
		 "\"model\": {\"type\": \"BPE\", \"merges\": [], \"vocab\": '; cat vocab.json; "
		 "printf '}}'; } >t.json", dir, added);
	if (system(cmd))
		return -2;
	snprintf(path, sizeof path, "%s/t.json", dir);
	struct bpe m;
	int r = bpe_load(&m, path);
	if (!r)
		bpe_free(&m);
	return r;
}

static void id_bounds(const char *tmp)
{
	char dir[256];
	struct bpe m;
	snprintf(dir, sizeof dir, "%s/ids", tmp);
	mkdir(dir, 0777);
	byte_vocab(dir, 256);
	ok(!bpe_load(&m, dir), "257 entries with ids 0..256 load");
	is_int(m.n_ids, 257, "  ... as 257 ids");
	bpe_free(&m);
	ok(load_with_added(dir, 257) == 0, "an added token at id 257 (the 258th entry) loads");
	cp_quiet = 1;
	byte_vocab(dir, 257);
	ok(bpe_load(&m, dir) == -1, "an id just past the entries is refused");
	byte_vocab(dir, 2147483647);
	ok(bpe_load(&m, dir) == -1, "an id of 2^31-1 is refused (not gigabytes allocated)");
	byte_vocab(dir, 256);
	ok(load_with_added(dir, 258) == -1, "an added token just past the entries is refused");
	ok(load_with_added(dir, 2147483647) == -1, "an added token at 2^31-1 is refused");
	cp_quiet = 0;
}

/* A directory cp-bpe wrote must hold the three files of one run. */
static void mixed_runs(const char *tmp, const struct bpe *m)
{
	char a[200], b[200], cmd[1024];
	struct bpe x = train_text("one two three one two three four", 270), y;
	snprintf(a, sizeof a, "%s/runA", tmp);
	snprintf(b, sizeof b, "%s/runB", tmp);
	ok(!bpe_save(m, a) && !bpe_save(&x, b), "two runs saved");
	bpe_free(&x);
	snprintf(cmd, sizeof cmd, "test -s %s/cp-bpe.sums && cp %s/vocab.json %s/merges.txt %s/", a, b,
		 b, a);
	ok(!system(cmd), "the sums are there; a new vocab.json and merges.txt beside an old tokenizer.json");
	cp_quiet = 1;
	ok(bpe_load(&y, a) == -1, "the directory is refused");
	snprintf(cmd, sizeof cmd, "%s/tokenizer.json", a);
	ok(bpe_load(&y, cmd) == -1, "so is its tokenizer.json, named alone");
	snprintf(cmd, sizeof cmd, "%s/vocab.json", a);
	ok(bpe_load(&y, cmd) == -1, "and its vocab.json");
	ok(!bpe_save(m, a) && !bpe_load(&y, a), "saving again makes it whole");
	bpe_free(&y);
	snprintf(cmd, sizeof cmd, "rm %s/tokenizer.json", a);
	ok(!system(cmd) && bpe_load(&y, a) == -1, "a run that stopped before tokenizer.json is refused");
	snprintf(cmd, sizeof cmd, "printf 'cp-bpe sums 1\\nvocab.json 12\\n' >%s/cp-bpe.sums", a);
	ok(!system(cmd) && bpe_load(&y, a) == -1, "a malformed sums file is refused");
	snprintf(cmd, sizeof cmd, "rm %s/cp-bpe.sums", a);
	ok(!system(cmd) && !bpe_load(&y, a), "without sums the files load as any tokenizer does");
	bpe_free(&y);
	cp_quiet = 0;
}

int main(void)
{
	char tmp[] = "/tmp/test-bpe.XXXXXX", path[256], s[64];
	if (!mkdtemp(tmp))
		return 1;
	srand(11);

	is_int(bpe_byte_to_cp(' '), 0x120, "space prints as U+0120");
	is_int(bpe_byte_to_cp('a'), 'a', "letters print as themselves");
	int rt = 1;
	for (int b = 0; b < 256; b++)
		rt &= bpe_cp_to_byte(bpe_byte_to_cp((unsigned char)b)) == b;
	ok(rt, "the byte map is reversible");

	/* hand computation: pieces "abc" " abc" " de"; pair counts (a,b)=2 (b,c)=2 tie -> the
	 * smaller id pair (a,b); then (ab,c)=2; then all count 1: (d,e) < (Ġ,abc) < (Ġ,de) */
	struct bpe m = train_text("abc abc de", 262);
	is_int(m.n_merges, 5, "five merges fill a vocabulary of 262");
	is_str(merge_str(&m, 0, s), "a+b", "merge 1");
	is_str(merge_str(&m, 1, s), "ab+c", "merge 2");
	is_str(merge_str(&m, 2, s), "d+e", "merge 3: ties go to the smallest ids");
	is_str(merge_str(&m, 3, s), " +abc", "merge 4");
	is_str(merge_str(&m, 4, s), " +de", "merge 5");
	is_int(m.eot, 0, "<|endoftext|> is id 0");
	is_int(m.byte_id['!'], 1, "'!' is id 1 (bytes in printable order)");
	is_int(m.byte_id[' '], 221, "space is id 221");
	is_int(bpe_find(&m, "abc", 3), 258, "'abc' is id 258");
	bpe_free(&m);

	m = train_text("x aaaa aaaa aaaa bb bb", 100000);
	ok(m.n_ids < 100000, "training stops when no pair is left");
	bpe_free(&m);

	/* a model trained on some code, saved and loaded back */
	const char *code = "def f(x):\n    return x + 1\n\nclass A:\n    def g(self):\n        return 'it''s'\n";
	struct buf corpus = { 0 };
	for (int i = 0; i < 50; i++)
		buf_puts(&corpus, code);
	buf_putc(&corpus, 0);
	m = train_text((const char *)corpus.p, 400);
	check_model(&m, "trained");
	ok(!bpe_save(&m, tmp), "save a trained model");
	struct bpe m2;
	ok(!bpe_load(&m2, tmp), "load it back");
	int same = m2.n_ids == m.n_ids && m2.n_merges == m.n_merges && m2.eot == m.eot;
	for (uint32_t i = 0; same && i < m.n_merges; i++)
		same = m.merges[i].a == m2.merges[i].a && m.merges[i].b == m2.merges[i].b &&
		       m.merges[i].id == m2.merges[i].id;
	ok(same, "the loaded model has the same vocabulary and merges");
	bpe_free(&m2);
	snprintf(path, sizeof path, "%s/vocab.json", tmp);
	ok(!bpe_load(&m2, path), "vocab.json + merges.txt load too");
	is_int(m2.n_merges, m.n_merges, "with the same merges");
	bpe_free(&m2);
	mixed_runs(tmp, &m);
	id_bounds(tmp);
	bpe_free(&m);
	buf_free(&corpus);

	/* broken files */
	cp_quiet = 1;
	snprintf(path, sizeof path, "%s/tokenizer.json", tmp);
	write_file(path, "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0");
	ok(bpe_load(&m2, path) == -1, "a truncated tokenizer.json is refused");
	snprintf(path, sizeof path, "%s/bad", tmp);
	char v[1024];
	snprintf(v, sizeof v, "mkdir -p %s && cd %s && printf '{\"a\": 0, \"b\": 1}' > vocab.json && "
		 "printf '#version: 0.2\\na b\\n' > merges.txt", path, path);
	ok(!system(v), "write an inconsistent pair");
	ok(bpe_load(&m2, path) == -1, "merges making tokens not in the vocabulary are refused");
	cp_quiet = 0;

	if (!access("../shared/data/gpt2/encoder.json", R_OK) ||
	    !access("../../shared/data/gpt2/encoder.json", R_OK)) {
		const char *g = !access("../shared/data/gpt2/encoder.json", R_OK) ? "../shared/data/gpt2"
										   : "../../shared/data/gpt2";
		ok(!bpe_load(&m, g), "load GPT-2's encoder.json + vocab.bpe");
		is_int(m.n_ids, 50257, "GPT-2 has 50257 ids");
		is_int(m.n_merges, 50000, "and 50000 merges");
		is_int(m.eot, 50256, "<|endoftext|> is 50256");
		check_model(&m, "gpt2");
		bpe_free(&m);
	} else {
		ok(1, "# skip GPT-2's files not found");
	}
	snprintf(v, sizeof v, "rm -rf %s", tmp);
	if (system(v))
		return 1;
	return done_testing();
}
