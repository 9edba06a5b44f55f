/* cp-cat: print any shard's records as JSON lines, or its header, so people and scripts can
 * look inside without knowing the format. What it prints is checked first: a document's
 * metadata must be one JSON object (a crafted record could otherwise break the line or add
 * keys to it) and a token shard's id width 2 or 4. */
#include "base/die.h"
#include "shard/doc.h"
#include "base/io.h"
#include "base/json.h"
#include "base/cli.h"
#include "input/jsonl.h"
#include "shard/shard.h"
#include "shard/tokrec.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char usage_text[] =
	"usage: cp-cat [--header] [--verify] [--minhash] [-r N] [-n COUNT] SHARD...\n"
	"\n"
	"  --header     print each shard's header and totals as one JSON object\n"
	"  --verify     read everything, check all checksums, print nothing but errors\n"
	"  --minhash    include documents' MinHash signatures\n"
	"  -r N         start at record N (regular files; uses the block index)\n"
	"  -n COUNT     print at most COUNT records per shard\n"
	"  -h           show this help\n"
	"SHARD may be '-' for standard input; a directory stands for its *.shard files.\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

struct opts {
	int header, verify, minhash;
	uint64_t start, count;
	int have_start;
};

static void print_header(const char *path, const struct shard_info *in)
{
	struct buf b = { 0 };
	buf_puts(&b, "{\"file\":");
	json_cstr(&b, path);
	buf_printf(&b, ",\"kind\":\"%s\",\"version\":%u,\"records\":%llu,\"blocks\":%llu,"
		   "\"raw_bytes\":%llu", shard_kind_name(in->kind), in->version,
		   (unsigned long long)in->n_records, (unsigned long long)in->n_blocks,
		   (unsigned long long)in->raw_bytes);
	if (in->kind == SHARD_TOKENS)
		buf_printf(&b, ",\"vocab_size\":%llu,\"id_width\":%llu",
			   (unsigned long long)in->param[0], (unsigned long long)in->param[1]);
	else if (in->kind == SHARD_SEQS)
		buf_printf(&b, ",\"vocab_size\":%llu,\"seq_len\":%llu",
			   (unsigned long long)in->param[0], (unsigned long long)in->param[1]);
	else
		buf_printf(&b, ",\"param\":[%llu,%llu]", (unsigned long long)in->param[0],
			   (unsigned long long)in->param[1]);
	buf_puts(&b, "}\n");
	fwrite(b.p, 1, b.len, stdout);
	buf_free(&b);
}

static void tokens_json(struct buf *b, const unsigned char *p, size_t n, unsigned width)
{
	buf_puts(b, "\"n_tokens\":");
	buf_printf(b, "%zu,\"tokens\":[", n);
	for (size_t i = 0; i < n; i++) {
		const unsigned char *q = p + i * width;
		uint32_t v = width == 2 ? (uint32_t)q[0] | (uint32_t)q[1] << 8
					: (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
						  (uint32_t)q[3] << 24;
		buf_printf(b, "%s%u", i ? "," : "", v);
	}
	buf_puts(b, "]}");
}

/* 0 when META is one JSON object on one line, as cp-hash keeps it. It is checked by the
 * parser cp-hash reads JSON lines with: META less its closing brace, followed by a string
 * member of our own and a brace, must parse as an object, which holds exactly when META is
 * an object with members (a value ending early, "{...},\"k\":1}", leaves text after it). */
static int meta_valid(const char *meta, size_t n)
{
	static const char probe[] = "cp-cat\001meta";	/* in the line as "cp-cat\u0001meta" */
	if (!n)
		return 0;
	if (meta[0] != '{' || meta[n - 1] != '}' || memchr(meta, '\n', n) || memchr(meta, '\r', n))
		return -1;
	size_t i = 1;
	while (i < n - 1 && (meta[i] == ' ' || meta[i] == '\t'))
		i++;
	if (i == n - 1)
		return 0;	/* {} */
	struct buf line = { 0 }, content = { 0 }, rest = { 0 };
	buf_put(&line, meta, n - 1);
	buf_puts(&line, ",\"cp-cat\\u0001meta\":\"\"}");
	struct jsonl_error err;
	int r = jsonl_parse((const char *)line.p, line.len, probe, &content, &rest, &err);
	buf_free(&line);
	buf_free(&content);
	buf_free(&rest);
	return r == 0 ? 0 : -1;
}

/* One record as JSON into b; -1 when it does not decode as its kind says, -2 when its
 * metadata is not a JSON object. */
static int record_json(struct buf *b, const struct shard_info *in, uint64_t idx, const void *rec,
		       size_t len, int minhash)
{
	unsigned width;
	switch (in->kind) {
	case SHARD_DOCS: {
		struct doc d;
		if (doc_decode(rec, len, &d))
			return -1;
		if (meta_valid(d.meta, d.meta_len))
			return -2;
		doc_to_json(b, &d, minhash);
		return 0;
	}
	case SHARD_TOKENS: {
		width = (unsigned)in->param[1];	/* 2 or 4: cat_one checked */
		long n = tokrec_count(len, width);
		if (n < 0)
			return -1;
		buf_printf(b, "{\"id\":\"%016llx\",", (unsigned long long)rd_u64le(rec));
		tokens_json(b, (const unsigned char *)rec + 8, (size_t)n, width);
		return 0;
	}
	case SHARD_SEQS:
		width = tokrec_width(in->param[0]);
		if (len % width)
			return -1;
		buf_printf(b, "{\"index\":%llu,", (unsigned long long)idx);
		tokens_json(b, rec, len / width, width);
		return 0;
	default:
		buf_printf(b, "{\"index\":%llu,\"bytes\":", (unsigned long long)idx);
		json_str(b, rec, len);
		buf_putc(b, '}');
		return 0;
	}
}

static int cat_one(const char *path, const struct opts *o)
{
	struct shard_reader *r = shard_open(path, SHARD_ANY);
	if (!r)
		return -1;
	const struct shard_info *in = shard_get_info(r);
	if (in->kind == SHARD_TOKENS && in->param[1] != 2 && in->param[1] != 4) {
		error("'%s': a token shard's ids are 2 or 4 bytes wide, not %llu", path,
		      (unsigned long long)in->param[1]);
		shard_close_reader(r);
		return -1;
	}
	uint64_t idx = 0, shown = 0;
	if (o->have_start) {
		if (shard_seek(r, o->start)) {
			shard_close_reader(r);
			return -1;
		}
		idx = o->start;
	}
	struct buf b = { 0 };
	const void *rec;
	size_t len;
	int ret = 0;
	while ((o->verify || o->header || shown < o->count) && (ret = shard_next(r, &rec, &len)) == 1) {
		if (!o->verify && !o->header) {
			buf_reset(&b);
			int r = record_json(&b, in, idx, rec, len, o->minhash);
			if (r) {
				ret = r == -2 ? error("'%s': record %llu: its meta is not one JSON object",
						      path, (unsigned long long)idx)
					      : error("'%s': record %llu is not a valid %s record", path,
						      (unsigned long long)idx, shard_kind_name(in->kind));
				break;
			}
			buf_putc(&b, '\n');
			if (fwrite(b.p, 1, b.len, stdout) != b.len)
				die_errno("error writing to standard output");
			shown++;
		}
		idx++;
	}
	if (!o->verify && !o->header && shown == o->count)
		ret = 0;
	if (!ret && o->header)
		print_header(path, in);
	buf_free(&b);
	shard_close_reader(r);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "header", no_argument, NULL, 'H' },
		{ "verify", no_argument, NULL, 'V' },
		{ "minhash", no_argument, NULL, 'M' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct opts o = { .count = UINT64_MAX };
	int c;
	cp_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "hr:n:", longopts, NULL)) != -1) {
		switch (c) {
		case 'H': o.header = 1; break;
		case 'V': o.verify = 1; break;
		case 'M': o.minhash = 1; break;
		case 'r': o.start = opt_u64("-r", optarg, 0, UINT64_MAX); o.have_start = 1; break;
		case 'n': o.count = opt_u64("-n", optarg, 0, UINT64_MAX); break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	if (optind == argc)
		die_usage("no shard given");
	char **list;
	size_t n = shard_list(argv + optind, (size_t)(argc - optind), &list);
	int failed = 0;
	for (size_t i = 0; i < n; i++)
		if (cat_one(list[i], &o))
			failed = 1;
	shard_list_free(list, n);
	close_stdout();
	return failed ? EXIT_ERR : EXIT_OK;
}
