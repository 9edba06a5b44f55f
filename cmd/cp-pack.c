/* cp-pack: token shards -> fixed-length training sequences. Documents (each already ending
 * in <|endoftext|>) go to train or validation by a hash of their id, so a document stays on
 * its side when the corpus is refreshed; each side is concatenated and cut into sequences of
 * T tokens, the incomplete tail dropped and counted; training sequences are shuffled globally
 * with the seed. Output: sequence shards (seqrec.h) under DIR/train and DIR/valid, whose
 * records cp-train reads by index. */
#include "base/atomic.h"
#include "base/buf.h"
#include "model/ckpt.h"
#include "base/die.h"
#include "base/io.h"
#include "base/json.h"
#include "base/cli.h"
#include "shard/outdir.h"
#include "shard/seqrec.h"
#include "shard/set.h"
#include "shard/shard.h"
#include "shard/tokrec.h"
#include "base/xalloc.h"
#include "base/util.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cp-pack [-T LEN] [--valid-frac F] [--seed S] [--shard-seqs N] -o DIR INPUT...\n"
	"\n"
	"  -T LEN            tokens per sequence (default 1024)\n"
	"  --valid-frac F    fraction of documents for validation, by id hash (default 0.01)\n"
	"  --seed S          seed of the training-sequence shuffle (default 0)\n"
	"  --shard-seqs N    sequences per output shard (default 65536)\n"
	"  -o DIR            write DIR/train/seqs-NNNNN.shard and DIR/valid/seqs-NNNNN.shard\n"
	"  -h                show this help\n"
	"INPUT: token shards (cp-tokenize), directories of them, or '-'.\n";

static void usage(int code)
{
	fputs(usage_text, code ? stderr : stdout);
	exit(code);
}

/* The split depends on the document id only (not the seed): refreshing the corpus or
 * changing the shuffle never moves a document between train and validation. */
static int pack_is_valid(uint64_t doc_id, double frac)
{
	return (double)(mix64(doc_id ^ 0x5eed5a17c0de0001ULL) >> 11) * 0x1.0p-53 < frac;
}

struct side {
	struct buf ids;		/* concatenated ids, WIDTH bytes each */
	uint64_t docs, tokens;
};

/* uniform in [0, n) from a 64-bit stream, without modulo bias (Lemire) */
static uint64_t pack_below(uint64_t *state, uint64_t n)
{
	for (;;) {
		*state = mix64(*state);
		unsigned __int128 m = (unsigned __int128)*state * n;
		uint64_t lo = (uint64_t)m;
		if (lo >= n || lo >= (-n) % n)
			return (uint64_t)(m >> 64);
	}
}

/* Stage sequences ORDER[0..n) (NULL: in order) of SIDE for DIR in shards of PER; the set is
 * committed with the other side's (shard/set.h). */
static struct shardset_stage *write_side(const char *dir, const struct side *s,
					 const uint64_t *order, uint64_t n, uint64_t T,
					 uint64_t vocab, uint64_t per)
{
	unsigned w = seqrec_width(vocab);
	uint64_t param[2] = { vocab, T }, nshards = 0;
	struct shardset_stage *st;
	if (outdir_make(dir, 1) || !(st = shardset_stage_open(dir)))
		exit(EXIT_ERR);
	for (uint64_t i = 0; i < n || nshards == 0; nshards++) {
		char *name = xasprintf("seqs-%05llu.shard", (unsigned long long)nshards);
		char *path = shardset_stage_path(st, name);
		struct shard_writer *sw = shard_create(path, SHARD_SEQS, param);
		if (!sw)
			exit(EXIT_ERR);
		for (uint64_t k = 0; k < per && i < n; k++, i++) {
			uint64_t q = order ? order[i] : i;
			if (shard_write(sw, s->ids.p + q * T * w, T * w)) {
				shard_abort(sw);
				exit(EXIT_ERR);
			}
		}
		if (shard_close(sw))
			exit(EXIT_ERR);
		free(path);
		free(name);
	}
	return st;
}

static void read_input(const char *path, uint64_t *vocab, double frac, struct side *train,
		       struct side *valid, uint64_t *ndocs)
{
	struct shard_reader *r = shard_open(path, SHARD_TOKENS);
	if (!r)
		exit(EXIT_ERR);
	const struct shard_info *in = shard_get_info(r);
	uint64_t v = in->param[0];
	unsigned w = (unsigned)in->param[1];
	if (v < 2 || w != tokrec_width(v))
		die("'%s': bad token shard parameters (vocabulary %llu, id width %u)", path,
		    (unsigned long long)v, w);
	if (*vocab && *vocab != v)
		die("'%s': vocabulary size %llu differs from the earlier inputs' %llu", path,
		    (unsigned long long)v, (unsigned long long)*vocab);
	*vocab = v;
	const void *rec;
	size_t len;
	int ret;
	uint64_t idx = 0;
	while ((ret = shard_next(r, &rec, &len)) == 1) {
		long n = tokrec_count(len, w);
		if (n < 0)
			die("'%s': record %llu is not a valid token record", path,
			    (unsigned long long)idx);
		for (long i = 0; i < n; i++)
			if (tokrec_id(rec, (size_t)i, w) >= v)
				die("'%s': record %llu: token %ld is id %u, outside the vocabulary",
				    path, (unsigned long long)idx, i, tokrec_id(rec, (size_t)i, w));
		struct side *s = pack_is_valid(rd_u64le(rec), frac) ? valid : train;
		buf_put(&s->ids, (const unsigned char *)rec + 8, (size_t)n * w);
		s->docs++;
		s->tokens += (uint64_t)n;
		(*ndocs)++;
		idx++;
	}
	if (ret < 0)
		exit(EXIT_ERR);
	shard_close_reader(r);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "valid-frac", required_argument, NULL, 'v' },
		{ "seed", required_argument, NULL, 's' },
		{ "shard-seqs", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	uint64_t T = 1024, seed = 0, per = 65536;
	double frac = 0.01;
	const char *out = NULL;
	int c;
	cp_setprogname(argv[0]);
	while ((c = getopt_long(argc, argv, "hT:o:", longopts, NULL)) != -1) {
		switch (c) {
		case 'T': T = opt_u64("-T", optarg, 2, 1u << 24); break;
		case 'v': frac = opt_double("--valid-frac", optarg, 0, 1); break;
		case 's': seed = opt_u64("--seed", optarg, 0, UINT64_MAX); break;
		case 'n': per = opt_u64("--shard-seqs", optarg, 1, UINT64_MAX); break;
		case 'o': out = optarg; break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	if (!out)
		die_usage("no output directory (-o DIR)");
	if (optind == argc)
		die_usage("no input given");
	atomic_cleanup_on_signal(shardset_stage_remove_all);
	char **list;
	size_t nin = shard_list(argv + optind, (size_t)(argc - optind), &list);
	if (!nin)
		die("no token shards in the inputs");
	struct side train = { 0 }, valid = { 0 };
	uint64_t vocab = 0, ndocs = 0;
	for (size_t i = 0; i < nin; i++)
		read_input(list[i], &vocab, frac, &train, &valid, &ndocs);
	shard_list_free(list, nin);

	uint64_t ntr = train.tokens / T, nva = valid.tokens / T;
	uint64_t *order = xcalloc(ntr ? ntr : 1, sizeof(uint64_t));
	uint64_t state = mix64(seed ^ 0x7061636b73656564ULL);
	for (uint64_t i = 0; i < ntr; i++)
		order[i] = i;
	for (uint64_t i = ntr; i > 1; i--) {	/* Fisher-Yates */
		uint64_t j = pack_below(&state, i), t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
	char *dtr = xasprintf("%s/train", out), *dva = xasprintf("%s/valid", out);
	struct shardset_stage *st[2];
	st[0] = write_side(dtr, &train, order, ntr, T, vocab, per);
	st[1] = write_side(dva, &valid, NULL, nva, T, vocab, per);
	if (shardset_stage_commit(st, 2, "seqs"))
		exit(EXIT_ERR);

	uint64_t total = train.tokens + valid.tokens, used = (ntr + nva) * T;
	printf("{\"vocab_size\":%llu,\"seq_len\":%llu,\"docs\":%llu,\"tokens\":%llu,"
	       "\"train_docs\":%llu,\"train_sequences\":%llu,\"valid_docs\":%llu,"
	       "\"valid_sequences\":%llu,\"tokens_used\":%llu,\"tokens_discarded\":%llu,"
	       "\"discarded_frac\":",
	       (unsigned long long)vocab, (unsigned long long)T, (unsigned long long)ndocs,
	       (unsigned long long)total, (unsigned long long)train.docs, (unsigned long long)ntr,
	       (unsigned long long)valid.docs, (unsigned long long)nva, (unsigned long long)used,
	       (unsigned long long)(total - used));
	struct buf b = { 0 };
	json_double(&b, total ? (double)(total - used) / (double)total : 0.0);
	printf("%.*s}\n", (int)b.len, (const char *)b.p);
	buf_free(&b);
	if (!ntr)
		warning("no complete training sequence: %llu training tokens, T = %llu",
			(unsigned long long)train.tokens, (unsigned long long)T);
	free(order);
	free(dtr);
	free(dva);
	buf_free(&train.ids);
	buf_free(&valid.ids);
	close_stdout();
	return EXIT_OK;
}
