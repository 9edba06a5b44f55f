/* test-encode-docs: cp-tokenize's library. Characters counted as Python counts them (values
 * worked out by hand), the characters-per-token filter at its borders, batches that end at
 * 4096 documents or at the document passing 16 MiB, parallel encoding equal to encoding each
 * document alone, a token shard written and decoded back to the kept documents, the counts
 * and the report, decoding lines of ids with their errors, and lines of ids written as
 * printf writes them. */
#include "tok/encode-docs.h"
#include "scratch.h"
#include "tap.h"

#include "base/die.h"
#include "base/xalloc.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/test-encode-docs.XXXXXX";

static void put_file(const char *sub, int i, const void *p, size_t n)
{
	char path[256];
	snprintf(path, sizeof path, "%s/%s/%05d.txt", dir, sub, i);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f))
		perror(path), exit(1);
}

static void test_chars(void)
{
	static const struct { const char *s; uint64_t want; const char *what; } t[] = {
		{ "", 0, "empty" },
		{ "def f():", 8, "ASCII" },
		{ "caf\xc3\xa9", 4, "a 2-byte character" },
		{ "\xe2\x82\xac\xf0\x9f\x98\x80", 2, "a 3-byte and a 4-byte character" },
		{ "a\xff" "b", 3, "an invalid byte counts one" },
		{ "\xe2\x82", 2, "a truncated character: one a byte" },
		{ "\xc0\x80", 2, "an overlong NUL: one a byte" },
		{ "\xed\xa0\x80", 3, "a surrogate: one a byte" },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		is_int(tok_count_chars((const unsigned char *)t[i].s, strlen(t[i].s)), t[i].want,
		       "characters: %s", t[i].what);
}

static void test_keep(void)
{
	ok(tok_keep(3, 2, 1.5), "ratio exactly 1.5 is kept at 1.5");
	ok(!tok_keep(299, 200, 1.5), "1.495 is dropped");
	ok(tok_keep(301, 200, 1.5), "1.505 is kept");
	ok(!tok_keep(0, 0, 1.5), "no tokens: dropped");
	ok(tok_keep(0, 0, 0), "min ratio 0 keeps everything, even no tokens");
	ok(tok_keep(1, 100, -1), "a negative min ratio keeps everything");
	/* 0.3 * 10 is 3.0000000000000004 in doubles; the filter divides, as CodeParrot does */
	ok(tok_keep(3, 10, 0.3), "3 chars / 10 tokens is kept at 0.3 (division, not multiplication)");
}

static struct bpe train(const char *text)
{
	struct bpe m;
	struct bpe_counter *c = bpe_counter_new();
	struct bpe_train_opts o = { .vocab_size = 400, .threads = 1 };
	bpe_counter_add(c, (const unsigned char *)text, strlen(text));
	bpe_init(&m);
	bpe_train(&m, c, &o);
	bpe_counter_free(c);
	return m;
}

/* the merges of a tokenizer trained on counts C */
static struct bpe train_counts(struct bpe_counter *c)
{
	struct bpe m;
	struct bpe_train_opts o = { .vocab_size = 500, .threads = 1 };
	bpe_init(&m);
	bpe_train(&m, c, &o);
	return m;
}

/* cp-bpe's counting pass with 3 threads and caps counts what one counter fed in order does */
static void test_count(char **in_list)
{
	struct bpe_input *in = bpe_input_open(in_list, 1, 1);
	struct tok_caps caps = { .max_docs = 4500, .max_bytes = UINT64_MAX };
	struct bpe_counter *c = tok_count_docs(in, 3, &caps, 0);
	bpe_input_close(in);
	struct bpe_counter *one = bpe_counter_new();
	char doc[64];
	for (int i = 0; i < 4500; i++) {
		int n = snprintf(doc, sizeof doc, "def f%d(x):\n    return x * %d\n", i, i % 7);
		bpe_counter_add(one, (const unsigned char *)doc, (size_t)n);
	}
	ok(c && caps.docs == 4500, "counted 4500 documents over two batches");
	is_int(bpe_counter_size(c), bpe_counter_size(one), "  as many distinct pieces as one counter");
	struct bpe a = train_counts(c), b = train_counts(one);
	ok(a.n_merges == b.n_merges && a.n_merges > 0 &&
	   !memcmp(a.merges, b.merges, a.n_merges * sizeof *a.merges),
	   "  the same merges (%u)", a.n_merges);
	bpe_free(&a);
	bpe_free(&b);
	bpe_counter_free(c);
	bpe_counter_free(one);
}

/* 5000 small documents: batches of 4096 and 904 */
static void test_batches(const struct bpe *m)
{
	char sub[300];
	snprintf(sub, sizeof sub, "%s/many", dir);
	mkdir(sub, 0777);
	char doc[64];
	for (int i = 0; i < 5000; i++) {
		int n = snprintf(doc, sizeof doc, "def f%d(x):\n    return x * %d\n", i, i % 7);
		put_file("many", i, doc, (size_t)n);
	}
	char *in_list[] = { sub };
	struct bpe_input *in = bpe_input_open(in_list, 1, 1);
	struct tok_batch b = { 0 };
	int r1 = tok_batch_fill(&b, in, NULL);
	ok(r1 == 1 && b.n == 4096, "a batch ends at 4096 documents (got %zu)", b.n);
	int n = snprintf(doc, sizeof doc, "def f%d(x):\n    return x * %d\n", 4095, 4095 % 7);
	ok(b.len[4095] == (size_t)n && !memcmp(b.base + b.off[4095], doc, (size_t)n) &&
	   b.input[0] == SIZE_MAX, "documents in walk order, plain files from no shard");
	struct bpe_encoder **enc = tok_encoders_new(m, 3);
	tok_batch_encode(&b, m, enc, 3, 0, 1.5);
	tok_batch_join(&b, 3);
	struct bpe_encoder *one = bpe_encoder_new(m);
	struct u32vec v = { 0 };
	int same = 1, keep = 1;
	for (size_t i = 0; i < b.n; i++) {
		v.n = 0;
		bpe_encode(one, b.base + b.off[i], b.len[i], 0, &v);
		same &= v.n == b.ids[i].n && !memcmp(v.v, b.ids[i].v, v.n * sizeof *v.v);
		uint64_t nc = tok_count_chars(b.base + b.off[i], b.len[i]);
		keep &= b.nchars[i] == nc && b.keep[i] == tok_keep(nc, v.n, 1.5);
	}
	ok(same, "3 threads encode each document as one encoder alone does");
	ok(keep, "each document's characters and filter verdict");
	int r2 = tok_batch_fill(&b, in, NULL);
	ok(r2 == 0 && b.n == 904, "then the last 904 and the end (got %zu, %d)", b.n, r2);
	ok(tok_batch_fill(&b, in, NULL) == 0 && b.n == 0, "after the end: an empty batch");
	free(v.v);
	bpe_encoder_free(one);
	tok_encoders_free(enc, 3);
	tok_batch_free(&b);
	bpe_input_close(in);

	/* caps: 10 documents; bytes up to the document that would pass them */
	in = bpe_input_open(in_list, 1, 1);
	struct tok_caps caps = { .max_docs = 10, .max_bytes = UINT64_MAX };
	ok(tok_batch_fill(&b, in, &caps) == 0 && b.n == 10 && caps.docs == 10,
	   "--max-docs 10: a batch of 10 and the end");
	ok(tok_batch_fill(&b, in, &caps) == 0 && b.n == 0, "  and nothing after");
	bpe_input_close(in);
	size_t first3 = 0;
	for (int i = 0; i < 3; i++)
		first3 += (size_t)snprintf(doc, sizeof doc, "def f%d(x):\n    return x * %d\n", i, i % 7);
	in = bpe_input_open(in_list, 1, 1);
	caps = (struct tok_caps){ .max_docs = UINT64_MAX, .max_bytes = first3 + 1 };
	ok(tok_batch_fill(&b, in, &caps) == 0 && b.n == 3 && caps.bytes == first3,
	   "--max-bytes: the documents that fit (3, %zu bytes), none past", first3);
	bpe_input_close(in);
	in = bpe_input_open(in_list, 1, 1);
	caps = (struct tok_caps){ .max_docs = UINT64_MAX, .max_bytes = first3 };
	ok(tok_batch_fill(&b, in, &caps) == 0 && b.n == 3, "  exactly the limit fits");
	bpe_input_close(in);
	tok_batch_free(&b);
	test_count(in_list);
}

/* documents of 6 MiB: a batch holds the first to reach 16 MiB */
static void test_batch_bytes(void)
{
	char sub[300];
	snprintf(sub, sizeof sub, "%s/big", dir);
	mkdir(sub, 0777);
	size_t n = 6u << 20;
	char *p = xmalloc(n);
	memset(p, 'a', n);
	for (int i = 0; i < 4; i++)
		put_file("big", i, p, n);
	free(p);
	char *in_list[] = { sub };
	struct bpe_input *in = bpe_input_open(in_list, 1, 1);
	struct tok_batch b = { 0 };
	ok(tok_batch_fill(&b, in, NULL) == 1 && b.n == 3,
	   "6 + 6 + 6 MiB: the third passes 16 MiB and ends the batch");
	ok(tok_batch_fill(&b, in, NULL) == 0 && b.n == 1, "the fourth in the next");
	tok_batch_free(&b);
	bpe_input_close(in);
}

static const char *docs[] = {
	"def add(a, b):\n    return a + b\n",
	"x",				/* 1 char, 1 token: dropped at 1.5 */
	"",				/* no tokens: dropped */
	"import os\nimport sys\nprint(os.getcwd(), sys.argv)\n",
	"caf\xc3\xa9 = 'caf\xc3\xa9'\n",
};

/* documents through a token shard and back; the counts and the report */
static void test_shard(const struct bpe *m)
{
	char sub[300], shard[320];
	snprintf(sub, sizeof sub, "%s/few", dir);
	mkdir(sub, 0777);
	size_t nd = sizeof docs / sizeof docs[0];
	for (size_t i = 0; i < nd; i++)
		put_file("few", (int)i, docs[i], strlen(docs[i]));
	snprintf(shard, sizeof shard, "%s/out.shard", dir);
	char *in_list[] = { sub };
	struct bpe_input *in = bpe_input_open(in_list, 1, 1);
	struct tok_shards *o = tok_shards_open(shard, in, m->n_ids, 2);
	struct bpe_encoder **enc = tok_encoders_new(m, 2);
	struct tok_batch b = { 0 };
	struct tok_counts c = { 0 };
	ok(tok_batch_fill(&b, in, NULL) == 0 && b.n == nd, "one batch of %zu", nd);
	tok_batch_encode(&b, m, enc, 2, 0, 1.5);
	ok(tok_shards_write(o, &b, m->eot, &c) == 0, "written");
	ok(tok_shards_close(o, 0) == 0, "committed");
	/* the expected: every document but the two the filter drops, counted apart */
	struct bpe_encoder *one = bpe_encoder_new(m);
	struct tok_counts want = { 0 };
	struct buf kept = { 0 };
	for (size_t i = 0; i < nd; i++) {
		struct u32vec v = { 0 };
		bpe_encode(one, (const unsigned char *)docs[i], strlen(docs[i]), 0, &v);
		uint64_t nc = tok_count_chars((const unsigned char *)docs[i], strlen(docs[i]));
		want.docs_in++;
		want.bytes_in += strlen(docs[i]);
		want.chars_in += nc;
		if (i == 1 || i == 2) {
			want.removed_ratio++;
		} else {
			want.docs_out++;
			want.tokens_out += v.n + 1;
			buf_puts(&kept, docs[i]);
		}
		free(v.v);
	}
	ok(!memcmp(&c, &want, sizeof c), "counts: %llu in, %llu out, %llu removed, %llu tokens",
	   (unsigned long long)c.docs_in, (unsigned long long)c.docs_out,
	   (unsigned long long)c.removed_ratio, (unsigned long long)c.tokens_out);
	char *text;
	size_t tlen;
	FILE *f = open_memstream(&text, &tlen);
	ok(tok_decode_shard(m, shard, 0, f, "memory") == 0, "decoded");
	fclose(f);
	ok(tlen == kept.len && !memcmp(text, kept.p, tlen), "the shard decodes to the kept documents");
	free(text);
	struct buf rep = { 0 };
	tok_report_put(&rep, &c, 1.5, m->n_ids);
	json_t *j = json_loadb((const char *)rep.p, rep.len, 0, NULL);
	ok(j && json_integer_value(json_object_get(j, "docs_in")) == (json_int_t)want.docs_in &&
	   json_integer_value(json_object_get(j, "docs_out")) == (json_int_t)want.docs_out &&
	   json_integer_value(json_object_get(json_object_get(j, "removed"), "char_token_ratio")) == 2 &&
	   json_integer_value(json_object_get(j, "bytes_in")) == (json_int_t)want.bytes_in &&
	   json_integer_value(json_object_get(j, "chars_in")) == (json_int_t)want.chars_in &&
	   json_integer_value(json_object_get(j, "tokens_out")) == (json_int_t)want.tokens_out &&
	   json_number_value(json_object_get(j, "min_ratio")) == 1.5 &&
	   json_integer_value(json_object_get(j, "vocab_size")) == m->n_ids &&
	   rep.p[rep.len - 1] == '\n', "the report holds the counts");
	json_decref(j);
	buf_free(&rep);
	buf_free(&kept);
	bpe_encoder_free(one);
	tok_encoders_free(enc, 2);
	tok_batch_free(&b);
	bpe_input_close(in);
}

static void collect(const void *p, size_t n, void *arg)
{
	buf_put(arg, p, n);
}

static void test_decode_ids(const struct bpe *m)
{
	struct buf out = { 0 };
	cp_quiet = 1;	/* the refusals below print their errors */
	char text[64];
	snprintf(text, sizeof text, "%u %u\n\n %u\t%u \r\n", m->byte_id['h'], m->byte_id['i'],
		 m->byte_id['!'], m->byte_id['\n']);
	ok(tok_decode_ids_text(m, "t", text, strlen(text), collect, &out) == 0, "lines of ids");
	ok(out.len == 4 && !memcmp(out.p, "hi!\n", 4), "decode to their bytes, blank lines nothing");
	buf_reset(&out);
	snprintf(text, sizeof text, "%u\n1 2x\n%u\n", m->byte_id['a'], m->byte_id['b']);
	ok(tok_decode_ids_text(m, "t", text, strlen(text), collect, &out) == -1, "'2x' is refused");
	ok(out.len == 1 && out.p[0] == 'a', "  after the lines before it, none after");
	buf_reset(&out);
	snprintf(text, sizeof text, "%u\n", m->n_ids + 5);
	ok(tok_decode_ids_text(m, "t", text, strlen(text), collect, &out) == -1 && out.len == 0,
	   "an id past the vocabulary is refused");
	ok(tok_decode_ids_text(m, "t", "4294967295\n", 11, collect, &out) == -1, "2^32-1 is refused");
	ok(tok_decode_ids_text(m, "t", "99999999999\n", 12, collect, &out) == -1,
	   "an overflow is refused");
	cp_quiet = 0;
	buf_free(&out);
}

/* tok_ids_line against snprintf, over more than one of its chunks of 4096 ids */
static void test_ids_line(void)
{
	static const uint32_t edge[] = { 0, 9, 10, 99, 100, 50256, 999999999, 1000000000, UINT32_MAX };
	size_t n = 10000;
	uint32_t *v = xmalloc(n * sizeof *v);
	uint64_t x = 12345;
	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		v[i] = i < 9 ? edge[i] : (uint32_t)(x >> (32 + i % 32));
	}
	struct buf got = { 0 }, want = { 0 };
	buf_puts(&got, "x");
	tok_ids_line(&got, v, n);
	buf_puts(&want, "x");
	for (size_t i = 0; i < n; i++)
		buf_printf(&want, i ? " %u" : "%u", v[i]);
	buf_putc(&want, '\n');
	ok(got.len == want.len && !memcmp(got.p, want.p, got.len),
	   "a line of 10000 ids as printf writes it, appended");
	buf_reset(&got);
	tok_ids_line(&got, v, 0);
	ok(got.len == 1 && got.p[0] == '\n', "no ids: an empty line");
	buf_free(&got);
	buf_free(&want);
	free(v);
}

int main(void)
{
	if (!mkdtemp(dir))
		return perror("mkdtemp"), 1;
	test_chars();
	test_keep();
	struct bpe m = train("def add(a, b):\n    return a + b\nimport os\nimport sys\n"
			     "print(os.getcwd(), sys.argv)\ncaf\xc3\xa9 = 'caf\xc3\xa9'\n");
	test_batches(&m);
	test_batch_bytes();
	test_shard(&m);
	test_decode_ids(&m);
	test_ids_line();
	bpe_free(&m);
	scratch_remove(dir);
	return done_testing();
}
