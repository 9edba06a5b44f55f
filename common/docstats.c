/* docstats.c: one pass over a document's bytes gives every CodeParrot statistic, the
 * whitespace-stripped copy that the exact hash covers, and the token set MinHash needs.
 * ASCII bytes take a table-driven path; only bytes >= 0x80 are decoded (see docstats.h). */
#include "docstats.h"
#include "buf.h"
#include "minhash-datasketch.h"
#include "utf8.h"
#include "xalloc.h"

#include <stdlib.h>
#include <string.h>
#include <nettle/sha1.h>
#include <utf8proc.h>
/* inlined: tokens are short and hashed one by one, a library call each costs too much */
#define XXH_INLINE_ALL
#include <xxhash.h>

enum {
	C_ALNUM = 1,	/* str.isalnum() */
	C_SPACE = 2,	/* str.isspace() */
	C_BREAK = 4,	/* a str.splitlines() boundary */
	C_TOK = 8,	/* [A-Za-z_0-9]: part of a MinHash token */
	C_HIGH = 16,	/* not ASCII: decode first */
};

static const unsigned char ctab[256] = {
	['\t'] = C_SPACE, ['\n'] = C_SPACE | C_BREAK, ['\v'] = C_SPACE | C_BREAK,
	['\f'] = C_SPACE | C_BREAK, ['\r'] = C_SPACE | C_BREAK,
	[0x1c ... 0x1e] = C_SPACE | C_BREAK, [0x1f] = C_SPACE, [' '] = C_SPACE,
	['0' ... '9'] = C_ALNUM | C_TOK, ['A' ... 'Z'] = C_ALNUM | C_TOK,
	['a' ... 'z'] = C_ALNUM | C_TOK, ['_'] = C_TOK,
	[0x80 ... 0xff] = C_HIGH,
};

int docstats_isspace(uint32_t cp)
{
	if (cp < 0x80)
		return (ctab[cp] & C_SPACE) != 0;
	return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
	       cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

int docstats_isalnum(uint32_t cp)
{
	if (cp < 0x80)
		return (ctab[cp] & C_ALNUM) != 0;
	/* Python: isalpha (Lu Ll Lt Lm Lo) or isdecimal/isdigit/isnumeric; in Unicode the
	 * characters with a numeric type outside N* are all Lo, so L* or N* is the same set. */
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp);
	return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
	       (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

_Static_assert(MINHASH_DS_PERM == DOC_MINHASH_PERM, "datasketch table size");

void docstats_init_scheme(struct docstats_ctx *c, enum docstats_minhash scheme)
{
	memset(c, 0, sizeof *c);
	c->scheme = scheme;
	if (scheme == DOCSTATS_MINHASH_DATASKETCH) {
		memcpy(c->mul, minhash_ds_a, sizeof c->mul);
		memcpy(c->add, minhash_ds_b, sizeof c->add);
		return;
	}
	/* fixed coefficients: signatures must agree across runs, machines and versions */
	uint64_t s = 0x6370686173680001ull;
	for (int i = 0; i < DOC_MINHASH_PERM; i++) {
		c->mul[i] = (uint32_t)splitmix64(&s) | 1;
		c->add[i] = (uint32_t)splitmix64(&s);
	}
}

void docstats_init(struct docstats_ctx *c)
{
	docstats_init_scheme(c, DOCSTATS_MINHASH_XXH3);
}

/* nettle rather than OpenSSL: for tokens of a few bytes its one-shot SHA-1 took about half
 * the time of OpenSSL 3's EVP calls here (64 against 123 ns), a tenth of SHA1(). */
uint32_t docstats_ds_key(const void *tok, size_t n)
{
	struct sha1_ctx sc;
	uint8_t d[SHA1_DIGEST_SIZE];
	sha1_init(&sc);
	sha1_update(&sc, n, tok);
	sha1_digest(&sc, sizeof d, d);
	uint32_t h = (uint32_t)d[0] | (uint32_t)d[1] << 8 | (uint32_t)d[2] << 16 |
		     (uint32_t)d[3] << 24;
	h ^= h >> 16;	/* MurmurHash3's fmix32, as datasketch premixes for "affine32" */
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

void docstats_free(struct docstats_ctx *c)
{
	free(c->strip);
	free(c->set);
	free(c->keys);
	free(c->pkeys);
	memset(c, 0, sizeof *c);
}

/* The token hash is already uniformly random, so each permutation only has to reorder it
 * differently: x -> a*x + b (mod 2^32) with odd a is a bijection, 8 of them fit one AVX2
 * multiply, and over random keys it estimates Jaccard with the textbook variance
 * J(1-J)/256 (measured; see man/cp-hash.1). */
static inline uint32_t perm_key(uint64_t h)
{
	return (uint32_t)(h >> 32);
}

uint32_t docstats_perm(const struct docstats_ctx *c, unsigned i, uint64_t h)
{
	return c->mul[i] * perm_key(h) + c->add[i];
}

/* Open addressing on the 64-bit token hashes (0 marks a free slot; a hash of 0 is stored as
 * 1). Each document clears and uses a prefix sized for it, so a small file after a huge one
 * still touches few cache lines. */
static inline uint64_t set_key(uint64_t h)
{
	return h ? h : 1;
}

static void set_insert(struct docstats_ctx *c, uint64_t h)
{
	size_t j = h & c->set_mask;
	while (c->set[j])
		j = (j + 1) & c->set_mask;
	c->set[j] = h;
}

static void set_resize(struct docstats_ctx *c, size_t slots)
{
	if (slots > c->set_cap) {
		free(c->set);
		c->set = xmalloc(slots * sizeof *c->set);
		c->set_cap = slots;
	}
	c->set_mask = slots - 1;
	memset(c->set, 0, slots * sizeof *c->set);
	for (size_t t = 0; t < c->set_n; t++)
		set_insert(c, set_key(c->keys[t]));
}

static inline void set_add(struct docstats_ctx *c, const unsigned char *tok, size_t n)
{
	uint64_t h = XXH3_64bits(tok, n), key = set_key(h);
	size_t j = key & c->set_mask;
	for (; c->set[j]; j = (j + 1) & c->set_mask)
		if (c->set[j] == key)
			return;
	c->set[j] = key;
	if (c->set_n == c->keys_cap) {
		c->keys_cap = c->keys_cap ? 2 * c->keys_cap : 1024;
		c->keys = xreallocarray(c->keys, c->keys_cap, sizeof *c->keys);
		c->pkeys = xreallocarray(c->pkeys, c->keys_cap, sizeof *c->pkeys);
	}
	/* Distinct tokens are told apart by xxh3 in both schemes; SHA-1 is paid once each. */
	c->pkeys[c->set_n] = c->scheme == DOCSTATS_MINHASH_DATASKETCH ? docstats_ds_key(tok, n)
								      : perm_key(h);
	c->keys[c->set_n++] = h;
	if (2 * c->set_n > c->set_mask + 1)
		set_resize(c, 2 * (c->set_mask + 1));
}

/* Start a document of LEN bytes: code has roughly one distinct token per 30 bytes. */
static void set_clear(struct docstats_ctx *c, size_t len)
{
	size_t slots = 64;
	while (slots < len / 16 && slots < ((size_t)1 << 24))
		slots *= 2;
	c->set_n = 0;
	set_resize(c, slots);
}

static void ensure_cap(struct docstats_ctx *c, size_t len)
{
	if (len <= c->cap && c->strip)
		return;
	size_t n = len < 4096 ? 4096 : len + len / 4;
	free(c->strip);
	c->strip = xmalloc(n + 16);	/* slack for whole-word token copies */
	c->cap = n;
}

static inline uint32_t lower4(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v | 0x20202020u;	/* token bytes are [A-Za-z0-9_]: only letters change */
}

/* Non-overlapping "test" and "config" in a token, any case. The words are letters only, so
 * a match never crosses a token's edge and the per-token counts add up to the whole text's. */
static void count_words(const unsigned char *t, size_t n, uint64_t *n_test, uint64_t *n_config)
{
	uint32_t test, conf;
	memcpy(&test, "test", 4);
	memcpy(&conf, "conf", 4);
	for (size_t i = 0; i + 4 <= n;) {
		uint32_t v = lower4(t + i);
		if (v == test) {
			++*n_test;
			i += 4;
		} else if (v == conf && i + 6 <= n && (t[i + 4] | 0x20) == 'i' &&
			   (t[i + 5] | 0x20) == 'g') {
			++*n_config;
			i += 6;
		} else {
			i++;
		}
	}
}

/* Does a token followed by a space end in "def", "class", "for" or "while" (any case)? Then
 * the lower-cased text holds "def " etc. */
static int code_keyword(const unsigned char *t, size_t n)
{
	static const char *const kw[] = { "def", "class", "for", "while" };
	for (int k = 0; k < 4; k++) {
		size_t m = strlen(kw[k]);
		if (n < m)
			continue;
		size_t j = 0;
		while (j < m && (t[n - m + j] | 0x20) == kw[k][j])
			j++;
		if (j == m)
			return 1;
	}
	return 0;
}

static int contains_any(const unsigned char *s, size_t n, const char *const *pats)
{
	if (!n)
		return 0;
	for (; *pats; pats++)
		if (memmem(s, n, *pats, strlen(*pats)))
			return 1;
	return 0;
}

/* Line bookkeeping shared by the ASCII and non-ASCII boundaries. */
struct lines {
	uint64_t n, sum, max, start;	/* start: code point index where the current line begins */
	size_t end5;			/* byte offset where the 5th line ends */
};

static inline void line_end(struct lines *L, uint64_t ci, size_t at)
{
	uint64_t l = ci - L->start;
	L->sum += l;
	if (l > L->max)
		L->max = l;
	if (++L->n == 5)
		L->end5 = at;
}

/* The signature loop is most of the time spent on MinHash; AVX2 doubles its speed where the
 * CPU has it, chosen at load time so the binary still runs everywhere. */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("avx2", "sse4.1", "default")))
#endif
#endif
static void minhash_sign(const uint32_t *restrict mul, const uint32_t *restrict add,
			 const uint32_t *restrict keys, size_t n, uint32_t *restrict sig)
{
	for (int i = 0; i < DOC_MINHASH_PERM; i++)
		sig[i] = UINT32_MAX;
	for (size_t t = 0; t < n; t++) {
		uint32_t x = keys[t];
		for (int i = 0; i < DOC_MINHASH_PERM; i++) {
			uint32_t v = mul[i] * x + add[i];
			sig[i] = v < sig[i] ? v : sig[i];
		}
	}
}

void docstats_compute(struct docstats_ctx *c, const void *content, size_t len,
		      struct doc_stats *st, unsigned char hash[16],
		      unsigned char minhash[4 * DOC_MINHASH_PERM], uint32_t *n_minhash)
{
	static const char *const kw_autogen[] = { "auto-generated", "autogenerated",
						  "automatically generated", NULL };
	static const char *const kw_cfgtest[] = { "unit tests", "test file",
						  "configuration file", NULL };
	const unsigned char *p = content;
	struct lines L = { 0, 0, 0, 0, len };
	uint64_t extra = 0, n_alnum = 0, n_eq = 0, n_nl = 0, n_test = 0, n_config = 0;
	size_t i = 0, k = 0;
	int invalid = 0, keyword = 0;

	ensure_cap(c, len);
	set_clear(c, len);
	unsigned char *strip = c->strip;
	memset(st, 0, sizeof *st);

	while (i < len) {
		unsigned char ch = p[i];
		unsigned cls = ctab[ch];
		if (cls & C_TOK) {	/* a token: [A-Za-z0-9_]+, never whitespace */
			size_t t0 = i;
			do {
				n_alnum += cls & C_ALNUM;
				if (++i == len)
					break;
				cls = ctab[p[i]];
			} while (cls & C_TOK);
			size_t n = i - t0;
			if (n <= 16 && t0 + 16 <= len)	/* strip has 16 bytes of slack */
				memcpy(strip + k, p + t0, 16);
			else
				memcpy(strip + k, p + t0, n);
			k += n;
			set_add(c, p + t0, n);
			if (n >= 4)
				count_words(p + t0, n, &n_test, &n_config);
			if (!keyword && i < len && p[i] == ' ' && n >= 3)
				keyword = code_keyword(p + t0, n);
			continue;
		}
		if (ch == ' ') {	/* indentation: long runs, nothing to count */
			while (++i < len && p[i] == ' ')
				;
			continue;
		}
		if (!(cls & C_HIGH)) {
			strip[k] = ch;
			k += !(cls & C_SPACE);
			n_eq += ch == '=';
			if (cls & C_BREAK) {
				line_end(&L, i - extra, i);
				n_nl += ch == '\n';
				if (ch == '\r' && i + 1 < len && p[i + 1] == '\n') {
					i++;
					n_nl++;
				}
				L.start = i + 1 - extra;
			}
			i++;
			continue;
		}
		int l = utf8_valid_len(p + i, len - i);
		if (!l) {	/* a lone byte: one code point, U+DC80..U+DCFF in Python */
			invalid = 1;
			strip[k++] = ch;
			i++;
			continue;
		}
		int dl;
		uint32_t cp = utf8_decode(p + i, len - i, &dl);
		uint64_t ci = i - extra;
		extra += (uint64_t)(l - 1);
		if (docstats_isspace(cp)) {
			if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
				line_end(&L, ci, i);
				L.start = ci + 1;
			}
		} else {
			memcpy(strip + k, p + i, (size_t)l);
			k += (size_t)l;
			n_alnum += docstats_isalnum(cp);
		}
		i += (size_t)l;
	}
	uint64_t n_chars = len - extra;
	if (L.start < n_chars)
		line_end(&L, n_chars, len);

	st->n_chars = n_chars;
	st->n_lines = L.n;
	st->line_sum = L.sum;
	st->line_max = L.max;
	st->n_alnum = n_alnum;
	st->n_newlines = n_nl;
	st->n_eq = n_eq;
	st->n_config = n_config;
	st->n_test = n_test;
	st->n_tokens = c->set_n > UINT32_MAX ? UINT32_MAX : (uint32_t)c->set_n;

	XXH128_canonical_t canon;
	XXH128_canonicalFromHash(&canon, XXH3_128bits(strip, k));
	memcpy(hash, canon.digest, 16);

	/* the first 5 lines, lower-cased (ASCII: no other letter lowers into these phrases),
	 * into the strip buffer, which the hash no longer needs */
	size_t head = L.end5 < len ? L.end5 : len;
	for (size_t j = 0; j < head; j++)
		strip[j] = p[j] | (p[j] >= 'A' && p[j] <= 'Z' ? 0x20 : 0);
	if (contains_any(strip, head, kw_autogen))
		st->flags |= DOC_AUTOGENERATED;
	/* Python compares the running counts after each line with int(0.05 * newlines); the
	 * counts only grow, so comparing the totals decides the same. */
	uint64_t thr = (uint64_t)(0.05 * (double)n_nl);
	if (contains_any(strip, head, kw_cfgtest) || n_config > thr || n_test > thr)
		st->flags |= DOC_CONFIG_OR_TEST;
	if (!keyword)	/* Python: no line holds one, so true for empty content too */
		st->flags |= DOC_NO_KEYWORDS;
	if (invalid)
		st->flags |= DOC_INVALID_UTF8;

	if (c->set_n >= DOCSTATS_MIN_TOKENS) {
		uint32_t sig[DOC_MINHASH_PERM];
		minhash_sign(c->mul, c->add, c->pkeys, c->set_n, sig);
		for (int j = 0; j < DOC_MINHASH_PERM; j++)
			wr_u32le(minhash + 4 * j, sig[j]);
		*n_minhash = DOC_MINHASH_PERM;
		if (c->scheme == DOCSTATS_MINHASH_DATASKETCH)
			st->flags |= DOC_MINHASH_DATASKETCH;
	} else {
		*n_minhash = 0;
	}
}

size_t docstats_strip(const void *content, size_t len, unsigned char *out)
{
	const unsigned char *p = content;
	size_t i = 0, k = 0;
	while (i < len) {
		if (p[i] < 0x80) {
			if (!(ctab[p[i]] & C_SPACE))
				out[k++] = p[i];
			i++;
			continue;
		}
		int l;	/* an invalid byte decodes to U+DCxx, length 1: not whitespace */
		uint32_t cp = utf8_decode(p + i, len - i, &l);
		if (!docstats_isspace(cp)) {
			memcpy(out + k, p + i, (size_t)l);
			k += (size_t)l;
		}
		i += (size_t)l;
	}
	return k;
}
