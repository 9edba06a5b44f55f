/* cp-pack: token shards -> fixed-length training sequences. Documents (each already ending
 * in <|endoftext|>) go to train or validation by a hash of their id, so a document stays on
 * its side when the corpus is refreshed; each side is concatenated and cut into sequences of
 * T tokens, the incomplete tail dropped and counted; training sequences are shuffled globally
 * with the seed. Output: sequence shards (seqrec.h) under DIR/train and DIR/valid, whose
 * records cp-train reads by index. With --fim-rate, documents are first rearranged for
 * fill-in-the-middle (tok/fim.h): decoded with the tokenizer, split at character positions
 * and encoded again part by part, in parallel batches whose results keep the input order. */
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
#include "tok/bpe.h"
#include "tok/fim.h"

#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_text[] =
	"usage: cp-pack [-T LEN] [--valid-frac F] [--seed S] [--shard-seqs N]\n"
	"               [--fim-rate R [--fim-spm-rate S] -t TOKENIZER [-j N]] -o DIR INPUT...\n"
	"\n"
	"  -T LEN            tokens per sequence (default 1024)\n"
	"  --valid-frac F    fraction of documents for validation, by id hash (default 0.01)\n"
	"  --seed S          seed of the training-sequence shuffle and of FIM (default 0)\n"
	"  --shard-seqs N    sequences per output shard (default 65536)\n"
	"  --fim-rate R      rearrange a fraction R of documents for fill-in-the-middle\n"
	"  --fim-spm-rate S  of those, the fraction in SPM order, the rest PSM (default 0.5)\n"
	"  -t TOKENIZER      the tokenizer of the inputs, with its FIM tokens (cp-bpe --fim)\n"
	"  -j N              threads for --fim-rate (default: all CPUs); same output for any N\n"
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

/* --fim-rate: the tokenizer, the draws, an encoder and scratch a thread, and a batch of
 * documents transformed together */
struct pack_fim {
	const char *path;
	struct bpe m;
	struct fim_ids f;
	struct fim_opts o;
	int threads;
	struct bpe_encoder **enc;
	struct u32vec *ids;	/* per thread: a record's ids */
	struct buf *text;	/* per thread */
	struct buf recs;	/* the batch's records, copied */
	size_t *off, *len, n;
	struct u32vec *out;	/* per record of the batch */
	unsigned char *kind;
	uint64_t kinds[3];	/* documents by enum fim_kind */
};
#define PACK_FIM_BATCH 1024

static void side_put(struct side *s, const uint32_t *ids, size_t n, unsigned w)
{
	buf_grow(&s->ids, n * w);
	for (size_t i = 0; i < n; i++) {
		unsigned char *p = s->ids.p + s->ids.len + i * w;
		for (unsigned k = 0; k < w; k++)
			p[k] = (unsigned char)(ids[i] >> (8 * k));
	}
	s->ids.len += n * w;
	s->docs++;
	s->tokens += n;
}

static void fim_open(struct pack_fim *pf)
{
	const char *missing;
	if (bpe_load(&pf->m, pf->path))
		exit(EXIT_ERR);
	if (pf->m.eot == BPE_NONE)
		die("'%s': the tokenizer has no %s token", pf->path, BPE_EOT);
	if (fim_find(&pf->m, &pf->f, &missing))
		die("'%s': the tokenizer has no %s token, which --fim-rate needs (cp-bpe --fim "
		    "adds the FIM tokens)", pf->path, missing);
	pf->enc = xcalloc((size_t)pf->threads, sizeof *pf->enc);
	pf->ids = xcalloc((size_t)pf->threads, sizeof *pf->ids);
	pf->text = xcalloc((size_t)pf->threads, sizeof *pf->text);
	for (int t = 0; t < pf->threads; t++)
		pf->enc[t] = bpe_encoder_new(&pf->m);
	pf->off = xcalloc(PACK_FIM_BATCH, sizeof *pf->off);
	pf->len = xcalloc(PACK_FIM_BATCH, sizeof *pf->len);
	pf->out = xcalloc(PACK_FIM_BATCH, sizeof *pf->out);
	pf->kind = xcalloc(PACK_FIM_BATCH, 1);
}

static void fim_close(struct pack_fim *pf)
{
	for (int t = 0; t < pf->threads; t++) {
		bpe_encoder_free(pf->enc[t]);
		free(pf->ids[t].v);
		buf_free(&pf->text[t]);
	}
	for (size_t i = 0; i < PACK_FIM_BATCH; i++)
		free(pf->out[i].v);
	free(pf->enc);
	free(pf->ids);
	free(pf->text);
	free(pf->off);
	free(pf->len);
	free(pf->out);
	free(pf->kind);
	buf_free(&pf->recs);
	bpe_free(&pf->m);
}

/* record I of the batch transformed on thread T: its text, then its <|endoftext|> again */
static void fim_one(struct pack_fim *pf, size_t i, unsigned w, int t)
{
	const unsigned char *rec = pf->recs.p + pf->off[i];
	struct u32vec *ids = &pf->ids[t], *out = &pf->out[i];
	ids->n = out->n = 0;
	for (size_t k = 0; k < (pf->len[i] - 8) / w; k++)
		u32vec_push(ids, tokrec_id(rec, k, w));
	int eot = ids->n && ids->v[ids->n - 1] == pf->m.eot;
	pf->kind[i] = (unsigned char)fim_apply(&pf->m, &pf->f, pf->enc[t], &pf->o, rd_u64le(rec),
					       ids->v, ids->n - (size_t)eot, out, &pf->text[t]);
	if (eot)
		u32vec_push(out, pf->m.eot);
}

/* the batch transformed in parallel, then put on its sides in input order */
static void fim_flush(struct pack_fim *pf, unsigned w, double frac, struct side *train,
		      struct side *valid)
{
#pragma omp parallel for schedule(dynamic, 1) num_threads(pf->threads)
	for (size_t i = 0; i < pf->n; i++)
		fim_one(pf, i, w, omp_get_thread_num());
	for (size_t i = 0; i < pf->n; i++) {
		uint64_t id = rd_u64le(pf->recs.p + pf->off[i]);
		side_put(pack_is_valid(id, frac) ? valid : train, pf->out[i].v, pf->out[i].n, w);
		pf->kinds[pf->kind[i]]++;
	}
	pf->n = 0;
	buf_reset(&pf->recs);
}

static void read_input(const char *path, uint64_t *vocab, double frac, struct side *train,
		       struct side *valid, uint64_t *ndocs, struct pack_fim *pf)
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
	if (pf && v != pf->m.n_ids)
		die("'%s': a vocabulary of %llu ids, and the tokenizer '%s' has %u: the shard was not "
		    "made with it", path, (unsigned long long)v, pf->path, pf->m.n_ids);
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
		(*ndocs)++;
		idx++;
		if (pf) {
			pf->off[pf->n] = pf->recs.len;
			pf->len[pf->n++] = len;
			buf_put(&pf->recs, rec, len);
			if (pf->n == PACK_FIM_BATCH)
				fim_flush(pf, w, frac, train, valid);
			continue;
		}
		struct side *s = pack_is_valid(rd_u64le(rec), frac) ? valid : train;
		buf_put(&s->ids, (const unsigned char *)rec + 8, (size_t)n * w);
		s->docs++;
		s->tokens += (uint64_t)n;
	}
	if (ret < 0)
		exit(EXIT_ERR);
	if (pf && pf->n)
		fim_flush(pf, w, frac, train, valid);
	shard_close_reader(r);
}

struct pack_opts {
	uint64_t T, seed, per;
	double frac, fim_rate, spm_rate;
	const char *out, *tok;
	int threads, fim;
};

static void parse_opts(int argc, char **argv, struct pack_opts *o)
{
	enum { O_FIM = 256, O_SPM };
	static const struct option longopts[] = {
		{ "valid-frac", required_argument, NULL, 'v' },
		{ "seed", required_argument, NULL, 's' },
		{ "shard-seqs", required_argument, NULL, 'n' },
		{ "fim-rate", required_argument, NULL, O_FIM },
		{ "fim-spm-rate", required_argument, NULL, O_SPM },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	*o = (struct pack_opts){ .T = 1024, .per = 65536, .frac = 0.01, .spm_rate = -1,
				 .threads = cpu_count() };
	int c;
	while ((c = getopt_long(argc, argv, "hT:o:t:j:", longopts, NULL)) != -1) {
		switch (c) {
		case 'T': o->T = opt_u64("-T", optarg, 2, 1u << 24); break;
		case 'v': o->frac = opt_double("--valid-frac", optarg, 0, 1); break;
		case 's': o->seed = opt_u64("--seed", optarg, 0, UINT64_MAX); break;
		case 'n': o->per = opt_u64("--shard-seqs", optarg, 1, UINT64_MAX); break;
		case 'o': o->out = optarg; break;
		case 't': o->tok = optarg; break;
		case 'j': o->threads = opt_threads("-j", optarg); break;
		case O_FIM: o->fim_rate = opt_double("--fim-rate", optarg, 0, 1); o->fim = 1; break;
		case O_SPM: o->spm_rate = opt_double("--fim-spm-rate", optarg, 0, 1); break;
		case 'h': usage(0); break;
		default: usage(EXIT_USAGE);
		}
	}
	if (!o->out)
		die_usage("no output directory (-o DIR)");
	if (optind == argc)
		die_usage("no input given");
	if (!o->fim && (o->spm_rate >= 0 || o->tok))
		die_usage("--fim-spm-rate and -t go with --fim-rate");
	if (o->fim && !o->tok)
		die_usage("--fim-rate needs the tokenizer of the inputs (-t TOKENIZER)");
	if (o->spm_rate < 0)
		o->spm_rate = 0.5;
}

int main(int argc, char **argv)
{
	struct pack_opts po;
	cp_setprogname(argv[0]);
	parse_opts(argc, argv, &po);
	uint64_t T = po.T, seed = po.seed, per = po.per;
	double frac = po.frac;
	const char *out = po.out;
	struct pack_fim fim = { .path = po.tok, .threads = po.threads,
				.o = { .rate = po.fim_rate, .spm_rate = po.spm_rate, .seed = seed } };
	if (po.fim)
		fim_open(&fim);
	atomic_cleanup_on_signal(shardset_stage_remove_all);
	char **list;
	size_t nin = shard_list(argv + optind, (size_t)(argc - optind), &list);
	if (!nin)
		die("no token shards in the inputs");
	struct side train = { 0 }, valid = { 0 };
	uint64_t vocab = 0, ndocs = 0;
	for (size_t i = 0; i < nin; i++)
		read_input(list[i], &vocab, frac, &train, &valid, &ndocs, po.fim ? &fim : NULL);
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
	printf("%.*s", (int)b.len, (const char *)b.p);
	if (po.fim)
		printf(",\"fim_docs\":%llu,\"fim_spm_docs\":%llu",
		       (unsigned long long)(fim.kinds[FIM_PSM] + fim.kinds[FIM_SPM]),
		       (unsigned long long)fim.kinds[FIM_SPM]);
	printf("}\n");
	buf_free(&b);
	if (!ntr)
		warning("no complete training sequence: %llu training tokens, T = %llu",
			(unsigned long long)train.tokens, (unsigned long long)T);
	free(order);
	free(dtr);
	free(dva);
	buf_free(&train.ids);
	buf_free(&valid.ids);
	if (po.fim)
		fim_close(&fim);
	close_stdout();
	return EXIT_OK;
}
