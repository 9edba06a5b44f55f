/* docstats-micro: where docstats_compute spends its time. Loads every *.py under the given
 * directories into memory, then times, best of REPS:
 *   full    docstats_compute over every file (XXH3 and DATASKETCH schemes)
 *   tokens  only the token set: set_clear, then each token hashed with XXH3_64bits and
 *           added (set_add, or set_add_hash), over token offsets found beforehand, then
 *           set_keys (DATASKETCH: memo and SHA-1)
 *   sign    only the signature loop over each document's distinct tokens
 *   scan    full - tokens - sign: the byte scan, strip copy, exact hash and flags
 *   none    docstats_compute under DOCSTATS_MINHASH_NONE: the scan alone, no token set
 * and prints a digest of every result, so that two builds can be compared for equality.
 * The split is approximate: since the AVX2 scan tells most repeated short tokens by their
 * bytes, without hashing them, "tokens" overstates what a full run spends on them there.
 * -f times full alone (for a profiler).
 *
 * It includes docstats.c itself to reach the internal functions; it is not built by default:
 *   cc -O2 -g -std=c11 -D_GNU_SOURCE -Icommon -o build/docstats-micro bench/docstats-micro.c \
 *      common/base/utf8.c common/base/xalloc.c common/base/die.c -lxxhash -lutf8proc -lnettle
 *   build/docstats-micro [-f] [-r REPS] [-s xxh3|datasketch|none] DIR...
 * (-DDOCSTATS_SRC='"/path/to/docstats.c"' measures another version of the file.) */
#ifndef DOCSTATS_SRC
#define DOCSTATS_SRC "../common/dedup/docstats.c"
#endif
#include DOCSTATS_SRC

#include <ftw.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

struct file {
	char *path;
	unsigned char *p;
	size_t len;
};
static struct file *files;
static size_t n_files, files_cap, total_bytes;

static int add_file(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)ftw;
	size_t l = strlen(path);
	if (type != FTW_F || l < 3 || strcmp(path + l - 3, ".py"))
		return 0;
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	if (n_files == files_cap) {
		files_cap = files_cap ? 2 * files_cap : 1024;
		files = xreallocarray(files, files_cap, sizeof *files);
	}
	struct file *fl = &files[n_files++];
	fl->path = strdup(path);
	fl->p = xmalloc((size_t)sb->st_size + 1);
	fl->len = fread(fl->p, 1, (size_t)sb->st_size, f);
	total_bytes += fl->len;
	fclose(f);
	return 0;
}

static int by_path(const void *a, const void *b)
{
	return strcmp(((const struct file *)a)->path, ((const struct file *)b)->path);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Every file through docstats_compute; returns the seconds and, in *digest, an XXH64 of all
 * statistics, hashes and signatures. */
static double run_full(struct docstats_ctx *c, uint64_t *digest)
{
	XXH64_state_t *d = XXH64_createState();
	XXH64_reset(d, 0);
	double t0 = now();
	for (size_t f = 0; f < n_files; f++) {
		struct doc_stats st;
		unsigned char h[16], mh[4 * DOC_MINHASH_PERM];
		uint32_t n_mh;
		docstats_compute(c, files[f].p, files[f].len, &st, h, mh, &n_mh);
		if (digest) {
			XXH64_update(d, &st, sizeof st);
			XXH64_update(d, h, 16);
			XXH64_update(d, mh, 4 * n_mh);
		}
	}
	double t = now() - t0;
	if (digest)
		*digest = XXH64_digest(d);
	XXH64_freeState(d);
	return t;
}

/* token offsets and lengths of every file, and each file's distinct token keys */
static uint32_t *tok_off, *tok_len;
static size_t *file_tok, n_tok;
static uint32_t *pk_all;
static size_t *file_pk, n_pk;

static void find_tokens(struct docstats_ctx *c)
{
	size_t cap = total_bytes / 2 + 1;
	tok_off = xreallocarray(NULL, cap, sizeof *tok_off);
	tok_len = xreallocarray(NULL, cap, sizeof *tok_len);
	file_tok = xreallocarray(NULL, n_files + 1, sizeof *file_tok);
	file_pk = xreallocarray(NULL, n_files + 1, sizeof *file_pk);
	pk_all = xreallocarray(NULL, cap, sizeof *pk_all);
	for (size_t f = 0; f < n_files; f++) {
		const unsigned char *p = files[f].p;
		file_tok[f] = n_tok;
		for (size_t i = 0; i < files[f].len;) {
			if (!(ctab[p[i]] & C_TOK)) {
				i++;
				continue;
			}
			size_t t0 = i;
			while (i < files[f].len && (ctab[p[i]] & C_TOK))
				i++;
			tok_off[n_tok] = (uint32_t)t0;
			tok_len[n_tok++] = (uint32_t)(i - t0);
		}
		struct doc_stats st;
		unsigned char h[16], mh[4 * DOC_MINHASH_PERM];
		uint32_t n_mh;
		docstats_compute(c, p, files[f].len, &st, h, mh, &n_mh);
		file_pk[f] = n_pk;
		if (n_mh)
			for (size_t t = 0; t < c->set_n; t++)
				pk_all[n_pk++] = c->pkeys[t];
	}
	file_tok[n_files] = n_tok;
	file_pk[n_files] = n_pk;
}

static double run_tokens(struct docstats_ctx *c)
{
	double t0 = now();
	for (size_t f = 0; f < n_files; f++) {
		set_clear(c, files[f].len);
#ifdef DS_MEMO_WAYS	/* this version of docstats.c */
		for (size_t t = file_tok[f]; t < file_tok[f + 1]; t++)
			set_add_hash(c, XXH3_64bits(files[f].p + tok_off[t], tok_len[t]),
				     tok_off[t], tok_len[t]);
		if (c->set_n >= DOCSTATS_MIN_TOKENS)
			set_keys(c, files[f].p, files[f].len, 0);
#else	/* the one before */
		for (size_t t = file_tok[f]; t < file_tok[f + 1]; t++)
			set_add(c, files[f].p + tok_off[t], tok_len[t]);
#endif
	}
	return now() - t0;
}

static double run_sign(struct docstats_ctx *c)
{
	uint32_t sig[DOC_MINHASH_PERM], x = 0;
	double t0 = now();
	for (size_t f = 0; f < n_files; f++) {
		if (file_pk[f + 1] == file_pk[f])
			continue;
#ifdef HAVE_X86_SIMD	/* this version's AVX-512 or AVX2 loop, where the CPU has it */
		if (c->avx512)
			minhash_sign_avx512(c->mul, c->add, pk_all + file_pk[f],
					    file_pk[f + 1] - file_pk[f], sig);
		else if (c->simd)
			minhash_sign_avx2(c->mul, c->add, pk_all + file_pk[f],
					  file_pk[f + 1] - file_pk[f], sig);
		else
#endif
		minhash_sign(c->mul, c->add, pk_all + file_pk[f], file_pk[f + 1] - file_pk[f], sig);
		x ^= sig[0];
	}
	double t = now() - t0;
	if (x == 42)
		fputc(' ', stderr);	/* keep the result alive */
	return t;
}

static int full_only;	/* -f: time docstats_compute alone (for a profiler) */

static double best(double a, double b)
{
	return a < b ? a : b;
}

static void scheme(enum docstats_minhash s, const char *name, int reps)
{
	struct docstats_ctx c;
	docstats_init_scheme(&c, s);
	uint64_t digest = 0;
	double full = 1e9, tok = 1e9, sign = 1e9;
	run_full(&c, &digest);	/* warm-up, and the digest */
	if (full_only || !c.tokens) {	/* NONE: no tokens to time apart */
		for (int r = 0; r < reps; r++)
			full = best(full, run_full(&c, NULL));
		printf("%-10s full %7.1f ms %6.1f MB/s | digest %016llx\n", name, 1e3 * full,
		       (double)total_bytes / 1e6 / full, (unsigned long long)digest);
		docstats_free(&c);
		return;
	}
	n_tok = n_pk = 0;
	find_tokens(&c);
	for (int r = 0; r < reps; r++) {
		full = best(full, run_full(&c, NULL));
		tok = best(tok, run_tokens(&c));
		sign = best(sign, run_sign(&c));
	}
	double mb = (double)total_bytes / 1e6;
	printf("%-10s full %7.1f ms %6.1f MB/s | tokens %6.1f ms | sign %6.1f ms | scan %6.1f ms"
	       " | digest %016llx\n", name, 1e3 * full, mb / full, 1e3 * tok, 1e3 * sign,
	       1e3 * (full - tok - sign), (unsigned long long)digest);
	printf("%-10s %zu tokens, %zu distinct per document, %.1f ns per token (tokens),"
	       " %.1f ns per distinct token (sign)\n", "", n_tok, n_pk, 1e9 * tok / (double)n_tok,
	       1e9 * sign / (double)n_pk);
	docstats_free(&c);
}

int main(int argc, char **argv)
{
	int reps = 5, o;
	const char *only = NULL;
	while ((o = getopt(argc, argv, "fr:s:")) != -1) {
		if (o == 'f') {
			full_only = 1;
		} else if (o == 'r') {
			reps = atoi(optarg);
		} else if (o == 's') {
			only = optarg;
		} else {
			fprintf(stderr, "usage: docstats-micro [-f] [-r REPS] [-s xxh3|datasketch|none]"
				" DIR...\n");
			return 2;
		}
	}
	for (int a = optind; a < argc; a++)
		nftw(argv[a], add_file, 64, FTW_PHYS);
	qsort(files, n_files, sizeof *files, by_path);
	printf("%zu files, %.1f MB\n", n_files, (double)total_bytes / 1e6);
	if (!only || !strcmp(only, "xxh3"))
		scheme(DOCSTATS_MINHASH_XXH3, "xxh3", reps);
	if (!only || !strcmp(only, "datasketch"))
		scheme(DOCSTATS_MINHASH_DATASKETCH, "datasketch", reps);
	if (!only || !strcmp(only, "none"))
		scheme(DOCSTATS_MINHASH_NONE, "none", reps);
	return 0;
}
