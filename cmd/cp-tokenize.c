/* cp-tokenize: encode documents to token ids with a byte-level BPE tokenizer (ours or GPT-2's),
 * apply CodeParrot's characters-per-token filter, and decode token ids back to bytes. */
#include "tok/bpe.h"
#include "input/textdocs.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "base/cli.h"
#include "tok/pretok.h"
#include "shard/shard.h"
#include "shard/tokrec.h"
#include "base/utf8.h"
#include "base/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cp-tokenize -t TOKENIZER [-j N] [-o OUT] [--min-ratio R] [--report FILE] [--special] [--text] INPUT...\n"
	"       cp-tokenize -t TOKENIZER --ids [-j N] [--special] [FILE...]\n"
	"       cp-tokenize -t TOKENIZER --decode-ids [FILE...]\n"
	"       cp-tokenize -t TOKENIZER --decode [--jsonl] [-o OUT] SHARD...\n"
	"       cp-tokenize --pieces [FILE...]\n"
	"\n"
	"  -t TOKENIZER     tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe,\n"
	"                   or a directory holding one of them\n"
	"  -j N             threads (default: all CPUs); output is the same for any N\n"
	"  -o OUT           output shard, or a directory (existing, or ending in '/') for one\n"
	"                   token shard per input shard (default: standard output)\n"
	"  --min-ratio R    drop documents with fewer than R characters per token (default 1.5;\n"
	"                   0 keeps all)\n"
	"  --report FILE    write counts as JSON to FILE\n"
	"  --special        encode special tokens written in the text as their ids (HF's way);\n"
	"                   by default the text is all ordinary (tiktoken's encode_ordinary)\n"
	"  --text           inputs are plain files (directories walked), each one document\n"
	"  --ids            print each FILE's ids (or standard input's) as one line of decimals\n"
	"  --decode-ids     read lines of decimal ids and write the bytes they stand for\n"
	"  --decode         write the documents of token shards back as bytes\n"
	"  --pieces         print each FILE's pre-tokenized pieces as one JSON array a line\n"
	"  --jsonl          with --decode: one JSON object {\"id\",\"text\"} per document\n"
	"  -h               show this help\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

enum mode { M_ENCODE, M_IDS, M_DECODE_IDS, M_DECODE, M_PIECES };

struct opts {
	const char *tok, *out, *report;
	int threads, special, text, jsonl;
	double min_ratio;
	enum mode mode;
};

/* ---------------------------------------------------------------- batches */

#define BATCH_DOCS 4096
#define BATCH_BYTES (16u << 20)

struct batch {
	size_t n, cap;
	uint64_t *id;
	size_t *off, *len, *input;
	struct buf text;
	struct u32vec *ids;
	uint64_t *nchars;
	unsigned char *keep;
};

static void batch_add(struct batch *b, uint64_t id, const unsigned char *s, size_t n, size_t input)
{
	if (b->n == b->cap) {
		size_t c = b->cap ? 2 * b->cap : 256;
		b->id = xreallocarray(b->id, c, sizeof *b->id);
		b->off = xreallocarray(b->off, c, sizeof *b->off);
		b->len = xreallocarray(b->len, c, sizeof *b->len);
		b->input = xreallocarray(b->input, c, sizeof *b->input);
		b->ids = xreallocarray(b->ids, c, sizeof *b->ids);
		b->nchars = xreallocarray(b->nchars, c, sizeof *b->nchars);
		b->keep = xrealloc(b->keep, c);
		memset(b->ids + b->cap, 0, (c - b->cap) * sizeof *b->ids);
		b->cap = c;
	}
	b->id[b->n] = id;
	b->off[b->n] = b->text.len;
	b->len[b->n] = n;
	b->input[b->n] = input;
	buf_put(&b->text, s, n);
	b->n++;
}

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->cap; i++)
		free(b->ids[i].v);
	free(b->id);
	free(b->off);
	free(b->len);
	free(b->input);
	free(b->ids);
	free(b->nchars);
	free(b->keep);
	buf_free(&b->text);
}

/* code points as Python's len(str) counts them, an invalid byte counting one */
static uint64_t count_chars(const unsigned char *s, size_t n)
{
	uint64_t c = 0;
	for (size_t i = 0; i < n;) {
		if (s[i] < 0x80) {
			i++;
		} else {
			int l = utf8_valid_len(s + i, n - i);
			i += l ? (size_t)l : 1;
		}
		c++;
	}
	return c;
}

static void batch_encode(struct batch *b, struct bpe_encoder **enc, const struct opts *o)
{
	long n = (long)b->n;
#pragma omp parallel for schedule(dynamic, 1) num_threads(o->threads)
	for (long i = 0; i < n; i++) {
		struct bpe_encoder *e = enc[omp_get_thread_num()];
		struct u32vec *v = &b->ids[i];
		const unsigned char *s = b->text.p + b->off[i];
		v->n = 0;
		bpe_encode(e, s, b->len[i], o->special, v);
		b->nchars[i] = count_chars(s, b->len[i]);
		/* the same division CodeParrot's filter makes, so borderline cases agree */
		double ratio = v->n ? (double)b->nchars[i] / (double)v->n : 0.0;
		b->keep[i] = o->min_ratio <= 0 || (v->n && !(ratio < o->min_ratio));
	}
}

static struct bpe_encoder **encoders_new(const struct bpe *m, int threads)
{
	struct bpe_encoder **enc = xcalloc((size_t)threads, sizeof *enc);
	for (int i = 0; i < threads; i++)
		enc[i] = bpe_encoder_new(m);
	return enc;
}

static void encoders_free(struct bpe_encoder **enc, int threads)
{
	for (int i = 0; i < threads; i++)
		bpe_encoder_free(enc[i]);
	free(enc);
}

/* ---------------------------------------------------------------- encode to shards */

struct counts {
	uint64_t docs_in, docs_out, removed_ratio, bytes_in, tokens_out, chars_in;
};

struct outputs {
	const char *dir;	/* directory mode, else NULL */
	struct shard_writer *w;	/* single output */
	uint64_t param[2];
};

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static struct shard_writer *out_open(struct outputs *o, const char *name)
{
	char *p = xasprintf("%s/%s", o->dir, name);
	struct shard_writer *w = shard_create(p, SHARD_TOKENS, o->param);
	free(p);
	if (!w)
		exit(EXIT_ERR);
	return w;
}

static int run_encode(const struct bpe *m, char **argv, int argc, const struct opts *o)
{
	struct bpe_input *in = bpe_input_open(argv, (size_t)argc, o->text);
	struct outputs out = { 0 };
	out.param[0] = m->n_ids;
	out.param[1] = tokrec_width(m->n_ids);
	unsigned width = (unsigned)out.param[1];
	struct stat st;
	const char *op = o->out ? o->out : "-";
	size_t ol = strlen(op);
	if (strcmp(op, "-") && ((!stat(op, &st) && S_ISDIR(st.st_mode)) || op[ol - 1] == '/')) {
		if (mkdir(op, 0777) && errno != EEXIST)
			die_errno("cannot create directory '%s'", op);
		out.dir = op;
	} else {
		out.w = shard_create(op, SHARD_TOKENS, out.param);
		if (!out.w)
			return -1;
	}
	shard_cleanup_on_signal();

	/* directory mode: shard inputs map one to one onto outputs, created even when empty */
	size_t n_inputs = bpe_input_count(in);
	struct shard_writer **per = out.dir ? xcalloc(n_inputs + 1, sizeof *per) : NULL;
	struct shard_writer *text_w = NULL;

	struct bpe_encoder **enc = encoders_new(m, o->threads);
	struct batch b = { 0 };
	struct counts c = { 0 };
	struct buf rec = { 0 };
	int failed = 0, done = 0, progress = is_tty(2);
	uint64_t id;
	const unsigned char *s;
	size_t n;
	while (!done && !failed) {
		b.n = 0;
		buf_reset(&b.text);
		while (b.n < BATCH_DOCS && b.text.len < BATCH_BYTES) {
			int r = bpe_input_next(in, &id, &s, &n);
			if (r < 0) {
				failed = 1;
				break;
			}
			if (!r) {
				done = 1;
				break;
			}
			size_t idx = bpe_input_index(in);
			batch_add(&b, id, s, n, bpe_input_is_shard(in) ? idx : SIZE_MAX);
			if (out.dir && bpe_input_is_shard(in) && !per[idx])
				per[idx] = out_open(&out, base_name(bpe_input_path(in)));
		}
		if (failed)
			break;
		batch_encode(&b, enc, o);
		for (size_t i = 0; i < b.n && !failed; i++) {
			c.docs_in++;
			c.bytes_in += b.len[i];
			c.chars_in += b.nchars[i];
			if (!b.keep[i]) {
				c.removed_ratio++;
				continue;
			}
			struct u32vec *v = &b.ids[i];
			u32vec_push(v, m->eot);
			buf_reset(&rec);
			tokrec_encode(&rec, b.id[i], v->v, v->n, width);
			struct shard_writer *w = out.w;
			if (out.dir) {
				if (b.input[i] == SIZE_MAX) {
					if (!text_w)
						text_w = out_open(&out, "text" SHARD_EXT);
					w = text_w;
				} else {
					w = per[b.input[i]];
				}
			}
			if (shard_write(w, rec.p, rec.len))
				failed = 1;
			c.docs_out++;
			c.tokens_out += v->n;
		}
		if (progress)
			fprintf(stderr, "\rcp-tokenize: %llu documents, %.1f MB",
				(unsigned long long)c.docs_in, (double)c.bytes_in / 1e6);
	}
	if (progress)
		fputc('\n', stderr);
	if (out.dir) {
		/* shard inputs that held no documents still get their (empty) output */
		for (size_t i = 0; i < n_inputs && !failed; i++) {
			int is_shard;
			const char *p = bpe_input_item(in, i, &is_shard);
			if (is_shard && !per[i] && strcmp(p, "-"))
				per[i] = out_open(&out, base_name(p));
		}
		for (size_t i = 0; i < n_inputs; i++)
			if (per[i] && (failed ? (shard_abort(per[i]), 0) : shard_close(per[i])))
				failed = 1;
		if (text_w && (failed ? (shard_abort(text_w), 0) : shard_close(text_w)))
			failed = 1;
		free(per);
	} else if (failed) {
		shard_abort(out.w);
	} else if (shard_close(out.w)) {
		failed = 1;
	}
	if (!failed && o->report) {
		struct buf j = { 0 };
		buf_printf(&j, "{\"docs_in\":%llu,\"docs_out\":%llu,\"removed\":{\"char_token_ratio\":%llu},"
			       "\"bytes_in\":%llu,\"chars_in\":%llu,\"tokens_out\":%llu,\"min_ratio\":",
			   (unsigned long long)c.docs_in, (unsigned long long)c.docs_out,
			   (unsigned long long)c.removed_ratio, (unsigned long long)c.bytes_in,
			   (unsigned long long)c.chars_in, (unsigned long long)c.tokens_out);
		json_double(&j, o->min_ratio);
		buf_printf(&j, ",\"vocab_size\":%u}\n", m->n_ids);
		char *tmp = xasprintf("%s.tmp", o->report);
		FILE *f = fopen(tmp, "w");
		if (!f || fwrite(j.p, 1, j.len, f) != j.len || fclose(f) || rename(tmp, o->report)) {
			error_errno("cannot write report '%s'", o->report);
			failed = 1;
		}
		free(tmp);
		buf_free(&j);
	}
	buf_free(&rec);
	batch_free(&b);
	encoders_free(enc, o->threads);
	bpe_input_close(in);
	return failed ? -1 : 0;
}

/* ---------------------------------------------------------------- plain-text modes */

static void write_out(const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, stdout) != n)
		die_errno("error writing to standard output");
}

/* --ids: each input's ids on one line, inputs encoded in parallel batches */
static int run_ids(const struct bpe *m, char **argv, int argc, const struct opts *o)
{
	char *dash[] = { "-" };
	struct bpe_input *in = argc ? bpe_input_open(argv, (size_t)argc, 1) : bpe_input_open(dash, 1, 1);
	struct bpe_encoder **enc = encoders_new(m, o->threads);
	struct opts o2 = *o;
	o2.min_ratio = 0;
	struct batch b = { 0 };
	struct buf line = { 0 };
	int failed = 0, done = 0;
	uint64_t id;
	const unsigned char *s;
	size_t n;
	while (!done && !failed) {
		b.n = 0;
		buf_reset(&b.text);
		while (b.n < BATCH_DOCS && b.text.len < BATCH_BYTES) {
			int r = bpe_input_next(in, &id, &s, &n);
			if (r <= 0) {
				failed = r < 0;
				done = 1;
				break;
			}
			batch_add(&b, id, s, n, 0);
		}
		batch_encode(&b, enc, &o2);
		for (size_t i = 0; i < b.n; i++) {
			buf_reset(&line);
			for (size_t k = 0; k < b.ids[i].n; k++)
				buf_printf(&line, k ? " %u" : "%u", b.ids[i].v[k]);
			buf_putc(&line, '\n');
			write_out(line.p, line.len);
		}
	}
	buf_free(&line);
	batch_free(&b);
	encoders_free(enc, o->threads);
	bpe_input_close(in);
	return failed ? -1 : 0;
}

static int decode_ids_text(const struct bpe *m, const char *name, const char *t, size_t len)
{
	struct u32vec ids = { 0 };
	struct buf out = { 0 };
	size_t lineno = 1;
	int ret = 0;
	const char *p = t, *end = t + len;
	while (p < end && !ret) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		ids.n = 0;
		while (p < le) {
			if (*p == ' ' || *p == '\t' || *p == '\r') {
				p++;
				continue;
			}
			uint64_t v = 0;
			const char *q = p;
			while (q < le && *q >= '0' && *q <= '9' && v <= UINT32_MAX)
				v = v * 10 + (uint64_t)(*q++ - '0');
			if (q == p || (q < le && *q != ' ' && *q != '\t' && *q != '\r') || v >= UINT32_MAX) {
				ret = error("'%s':%zu: expected token ids (decimal numbers separated by spaces)",
					    name, lineno);
				break;
			}
			u32vec_push(&ids, (uint32_t)v);
			p = q;
		}
		size_t bad;
		buf_reset(&out);
		if (!ret && bpe_decode(m, ids.v, ids.n, &out, &bad))
			ret = error("'%s':%zu: %u is not a token id of this tokenizer", name, lineno,
				    ids.v[bad]);
		if (!ret)
			write_out(out.p, out.len);
		p = nl ? nl + 1 : end;
		lineno++;
	}
	free(ids.v);
	buf_free(&out);
	return ret;
}

static int run_decode_ids(const struct bpe *m, char **argv, int argc)
{
	int failed = 0;
	for (int i = 0; i < (argc ? argc : 1); i++) {
		const char *name = argc ? argv[i] : "-";
		size_t len;
		char *t;
		if (!strcmp(name, "-")) {
			struct buf b = { 0 };
			char tmp[1 << 16];
			size_t r;
			while ((r = fread(tmp, 1, sizeof tmp, stdin)) > 0)
				buf_put(&b, tmp, r);
			if (ferror(stdin))
				die_errno("cannot read standard input");
			buf_putc(&b, 0);
			len = b.len - 1;
			t = (char *)b.p;
		} else if (!(t = read_file(name, &len))) {
			failed = 1;
			continue;
		}
		if (decode_ids_text(m, name, t, len))
			failed = 1;
		free(t);
	}
	return failed ? -1 : 0;
}

/* --decode: token shards back to the documents' bytes */
static int run_decode(const struct bpe *m, char **argv, int argc, const struct opts *o)
{
	char **list;
	size_t nl = shard_list(argv, (size_t)argc, &list);
	FILE *f = stdout;
	char *tmp = NULL;
	if (o->out && strcmp(o->out, "-")) {
		tmp = xasprintf("%s.tmp", o->out);
		if (!(f = fopen(tmp, "w")))
			die_errno("cannot create '%s'", tmp);
	}
	struct u32vec ids = { 0 };
	struct buf out = { 0 }, j = { 0 };
	int failed = 0;
	for (size_t i = 0; i < nl && !failed; i++) {
		struct shard_reader *r = shard_open(list[i], SHARD_TOKENS);
		if (!r) {
			failed = 1;
			break;
		}
		const struct shard_info *info = shard_get_info(r);
		unsigned width = (unsigned)info->param[1];
		if ((width != 2 && width != 4) || info->param[0] > m->n_ids) {
			failed = error("'%s': made with a vocabulary of %llu ids, this tokenizer has %u",
				       list[i], (unsigned long long)info->param[0], m->n_ids);
			shard_close_reader(r);
			break;
		}
		const void *rec;
		size_t len;
		uint64_t idx = 0;
		int rr;
		while ((rr = shard_next(r, &rec, &len)) == 1) {
			long n = tokrec_count(len, width);
			if (n < 0) {
				failed = error("'%s': record %llu is not a token record", list[i],
					       (unsigned long long)idx);
				break;
			}
			ids.n = 0;
			for (long k = 0; k < n; k++)
				u32vec_push(&ids, tokrec_id(rec, (size_t)k, width));
			/* the <|endoftext|> cp-tokenize appended is no part of the document */
			if (ids.n && ids.v[ids.n - 1] == m->eot)
				ids.n--;
			size_t bad;
			buf_reset(&out);
			if (bpe_decode(m, ids.v, ids.n, &out, &bad)) {
				failed = error("'%s': record %llu: %u is not a token id of this tokenizer",
					       list[i], (unsigned long long)idx, ids.v[bad]);
				break;
			}
			if (o->jsonl) {
				buf_reset(&j);
				buf_printf(&j, "{\"id\":\"%016llx\",\"text\":", (unsigned long long)rd_u64le(rec));
				json_str(&j, out.p, out.len);
				buf_puts(&j, "}\n");
				if (fwrite(j.p, 1, j.len, f) != j.len)
					failed = 1;
			} else if (out.len && fwrite(out.p, 1, out.len, f) != out.len) {
				failed = 1;
			}
			if (failed) {
				error_errno("error writing '%s'", tmp ? o->out : "standard output");
				break;
			}
			idx++;
		}
		if (rr < 0)
			failed = 1;
		shard_close_reader(r);
	}
	if (tmp) {
		if (fclose(f) && !failed) {
			error_errno("cannot write '%s'", o->out);
			failed = 1;
		}
		if (failed) {
			unlink(tmp);
		} else if (rename(tmp, o->out)) {
			error_errno("cannot rename '%s'", tmp);
			failed = 1;
		}
		free(tmp);
	}
	free(ids.v);
	buf_free(&out);
	buf_free(&j);
	shard_list_free(list, nl);
	return failed ? -1 : 0;
}

/* --pieces: how the pre-tokenizer splits each input */
static int run_pieces(char **argv, int argc)
{
	char *dash[] = { "-" };
	struct bpe_input *in = argc ? bpe_input_open(argv, (size_t)argc, 1) : bpe_input_open(dash, 1, 1);
	struct buf line = { 0 };
	uint64_t id;
	const unsigned char *s;
	size_t n;
	int r;
	while ((r = bpe_input_next(in, &id, &s, &n)) == 1) {
		buf_reset(&line);
		buf_putc(&line, '[');
		for (size_t i = 0; i < n;) {
			size_t l = pretok_piece(s + i, n - i);
			if (i)
				buf_puts(&line, ", ");
			json_str(&line, s + i, l);
			i += l;
		}
		buf_puts(&line, "]\n");
		write_out(line.p, line.len);
	}
	buf_free(&line);
	bpe_input_close(in);
	close_stdout();
	return r < 0 ? EXIT_ERR : EXIT_OK;
}

int main(int argc, char **argv)
{
	enum { O_MIN_RATIO = 256, O_REPORT, O_SPECIAL, O_TEXT, O_IDS, O_DECODE_IDS, O_DECODE, O_JSONL,
	       O_PIECES };
	static const struct option longopts[] = {
		{ "min-ratio", required_argument, NULL, O_MIN_RATIO },
		{ "report", required_argument, NULL, O_REPORT },
		{ "special", no_argument, NULL, O_SPECIAL },
		{ "text", no_argument, NULL, O_TEXT },
		{ "ids", no_argument, NULL, O_IDS },
		{ "decode-ids", no_argument, NULL, O_DECODE_IDS },
		{ "decode", no_argument, NULL, O_DECODE },
		{ "jsonl", no_argument, NULL, O_JSONL },
		{ "pieces", no_argument, NULL, O_PIECES },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = { .min_ratio = 1.5, .mode = M_ENCODE };
	int c;
	cp_setprogname(argv[0]);
	o.threads = cpu_count();
	while ((c = getopt_long(argc, argv, "ht:j:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o.tok = optarg; break;
		case 'j': o.threads = opt_threads("-j", optarg); break;
		case 'o': o.out = optarg; break;
		case O_MIN_RATIO: o.min_ratio = opt_double("--min-ratio", optarg, 0, 1e9); break;
		case O_REPORT: o.report = optarg; break;
		case O_SPECIAL: o.special = 1; break;
		case O_TEXT: o.text = 1; break;
		case O_IDS: o.mode = M_IDS; break;
		case O_DECODE_IDS: o.mode = M_DECODE_IDS; break;
		case O_DECODE: o.mode = M_DECODE; break;
		case O_JSONL: o.jsonl = 1; break;
		case O_PIECES: o.mode = M_PIECES; break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	argv += optind;
	argc -= optind;
	if (o.mode == M_PIECES)
		return run_pieces(argv, argc);
	if (!o.tok)
		die_usage("no tokenizer given (-t TOKENIZER)");
	if ((o.mode == M_ENCODE || o.mode == M_DECODE) && !argc)
		die_usage("no input given");
	if (o.jsonl && o.mode != M_DECODE)
		die_usage("--jsonl goes with --decode");
	if (o.mode == M_ENCODE && (!o.out || !strcmp(o.out, "-")))
		refuse_tty(1, "token shards");
	struct bpe m;
	if (bpe_load(&m, o.tok))
		return EXIT_ERR;
	if (o.mode == M_ENCODE && m.eot == BPE_NONE)
		die("'%s': the tokenizer has no %s token to end documents with", o.tok, BPE_EOT);
	int r;
	switch (o.mode) {
	case M_IDS: r = run_ids(&m, argv, argc, &o); break;
	case M_DECODE_IDS: r = run_decode_ids(&m, argv, argc); break;
	case M_DECODE: r = run_decode(&m, argv, argc, &o); break;
	default: r = run_encode(&m, argv, argc, &o); break;
	}
	bpe_free(&m);
	close_stdout();
	return r ? EXIT_ERR : EXIT_OK;
}
