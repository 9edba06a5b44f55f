/* docstats.c: one pass over a document's bytes gives every CodeParrot statistic, the
 * whitespace-stripped copy that the exact hash covers, and the token set MinHash needs.
 *
 * Two scans give the same results: the reference one, byte by byte (ASCII through a table,
 * only bytes >= 0x80 decoded; see docstats.h), and, where the CPU has AVX2, one that
 * classifies 32 bytes at a time (64 for plain ASCII) and queues tokens and line
 * breaks for loops of their own, handing over to the reference step for non-ASCII text.
 * Short tokens already in the set are recognised by their bytes, without hashing them.
 * DATASKETCH keys (SHA-1) are remembered from document to document.
 * tests/unit/test-docstats.c compares the fast paths with the reference on random
 * documents; bench/docstats-micro.c measures them. */
#include "dedup/docstats.h"
#include "base/buf.h"
#include "base/die.h"
#include "dedup/minhash-datasketch.h"
#include "base/utf8.h"
#include "base/xalloc.h"

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

/* The memo of DATASKETCH keys: 4096 buckets of a cache line, 4 tokens each, a quarter of a
 * core's L2 cache here. A new token takes the last place of its bucket and each hit moves a
 * token one place up, so that tokens seen once (most of the vocabulary) do not push out
 * those that recur: on the Python standard library that found 75% of the keys against 68%
 * for one token per slot (of 84.5% found at best, the rest being first sightings). */
#define DS_MEMO_BUCKETS ((size_t)1 << 12)
#define DS_MEMO_WAYS 4
struct docstats_dsmemo {
	uint64_t h[DS_MEMO_WAYS];	/* xxh3-64 of the tokens; 0: a free place */
	uint32_t key[DS_MEMO_WAYS];	/* their docstats_ds_key */
} __attribute__((aligned(64)));

static int cpu_has_avx2(void);
static int cpu_has_sha(void);
static int cpu_has_avx512(void);
static void *queue_new(void);
static void queue_free(void *q);

void docstats_init_scheme(struct docstats_ctx *c, enum docstats_minhash scheme)
{
	memset(c, 0, sizeof *c);
	c->scheme = scheme;
	c->tokens = scheme != DOCSTATS_MINHASH_NONE;
	c->simd = cpu_has_avx2();
	c->sha = cpu_has_sha();
	c->avx512 = cpu_has_avx512() && !getenv("CP_DOCSTATS_NO_AVX512");
	if (c->simd)
		c->queue = queue_new();
	if (scheme == DOCSTATS_MINHASH_DATASKETCH) {
		memcpy(c->mul, minhash_ds_a, sizeof c->mul);
		memcpy(c->add, minhash_ds_b, sizeof c->add);
		c->ds_memo = aligned_alloc(64, DS_MEMO_BUCKETS * sizeof *c->ds_memo);
		if (!c->ds_memo)
			die("out of memory allocating the DATASKETCH memo");
		memset(c->ds_memo, 0, DS_MEMO_BUCKETS * sizeof *c->ds_memo);
		c->ds_mask = DS_MEMO_BUCKETS - 1;
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

/* The key from the first 4 bytes of the SHA-1 digest, D0 their big-endian value */
static uint32_t ds_mix(uint32_t d0)
{
	uint32_t h = __builtin_bswap32(d0);	/* sha1_hash32 reads them little-endian */
	h ^= h >> 16;	/* MurmurHash3's fmix32, as datasketch premixes for "affine32" */
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
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
	return ds_mix((uint32_t)d[0] << 24 | (uint32_t)d[1] << 16 | (uint32_t)d[2] << 8 | d[3]);
}

void docstats_free(struct docstats_ctx *c)
{
	free(c->strip);
	free(c->set);
	free(c->keys);
	free(c->pkeys);
	free(c->tok_at);
	free(c->tok_len);
	free(c->ds_memo);
	queue_free(c->queue);
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
 * still touches few cache lines. keys[] lists the distinct hashes in the order found, and
 * tok_at[] and tok_len[] where each token first is, for its DATASKETCH key (set_keys). */
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

/* SLOTS slots, and room in the lists for as many tokens as they take */
static void set_resize(struct docstats_ctx *c, size_t slots)
{
	if (slots > c->set_cap) {
		free(c->set);
		c->set = xmalloc(slots * sizeof *c->set);
		c->set_cap = slots;
	}
	if (slots / 2 + 1 > c->keys_cap) {
		c->keys_cap = slots / 2 + 1;
		c->keys = xreallocarray(c->keys, c->keys_cap, sizeof *c->keys);
		c->pkeys = xreallocarray(c->pkeys, c->keys_cap, sizeof *c->pkeys);
		c->tok_at = xreallocarray(c->tok_at, c->keys_cap, sizeof *c->tok_at);
		c->tok_len = xreallocarray(c->tok_len, c->keys_cap, sizeof *c->tok_len);
	}
	c->set_mask = slots - 1;
	memset(c->set, 0, slots * sizeof *c->set);
	for (size_t t = 0; t < c->set_n; t++)
		set_insert(c, set_key(c->keys[t]));
}

/* xxh3-64 of a token: XXH3_64bits, with its formulas for 1 to 16 bytes (xxhash.h 0.8,
 * default secret, seed 0) written out so that they are inlined (a call for each token took
 * 10% longer). The AVX2 scan takes it, the reference scan calls XXH3_64bits, and the
 * differential test compares the two. */
static inline uint64_t rotl64(uint64_t x, int r)
{
	return x << r | x >> (64 - r);
}

static inline __attribute__((always_inline)) uint64_t token_hash(const unsigned char *t,
								   size_t n)
{
	const unsigned char *sec = XXH3_kSecret;
	if (n > 16 || !n)
		return XXH3_64bits(t, n);
	if (n > 8) {	/* XXH3_len_9to16_64b */
		uint64_t lo = rd_u64le(t) ^ rd_u64le(sec + 24) ^ rd_u64le(sec + 32);
		uint64_t hi = rd_u64le(t + n - 8) ^ rd_u64le(sec + 40) ^ rd_u64le(sec + 48);
		unsigned __int128 pr = (unsigned __int128)lo * hi;
		uint64_t acc = n + __builtin_bswap64(lo) + hi + ((uint64_t)pr ^ (uint64_t)(pr >> 64));
		acc ^= acc >> 37;
		acc *= 0x165667919E3779F9ull;
		return acc ^ (acc >> 32);
	}
	if (n >= 4) {	/* XXH3_len_4to8_64b and XXH3_rrmxmx */
		uint64_t k = ((uint64_t)rd_u32le(t + n - 4) + ((uint64_t)rd_u32le(t) << 32)) ^
			     rd_u64le(sec + 8) ^ rd_u64le(sec + 16);
		k ^= rotl64(k, 49) ^ rotl64(k, 24);
		k *= 0x9FB21C651E98DF25ull;
		k ^= (k >> 35) + n;
		k *= 0x9FB21C651E98DF25ull;
		return k ^ (k >> 28);
	}
	/* XXH3_len_1to3_64b and XXH64_avalanche */
	uint64_t k = ((uint32_t)t[0] << 16 | (uint32_t)t[n >> 1] << 24 | t[n - 1] | (uint32_t)n << 8) ^
		     (uint64_t)(rd_u32le(sec) ^ rd_u32le(sec + 4));
	k ^= k >> 33;
	k *= 0xC2B2AE3D27D4EB4Full;
	k ^= k >> 29;
	k *= 0x165667B19E3779F9ull;
	return k ^ (k >> 32);
}

/* A token not seen before in this document: slot J of the set is free for it. */
static __attribute__((noinline)) void set_new(struct docstats_ctx *c, size_t j, uint64_t h,
					      size_t at, size_t n)
{
	c->set[j] = set_key(h);
	c->keys[c->set_n] = h;
	c->tok_at[c->set_n] = at;
	c->tok_len[c->set_n++] = n;
	if (c->ds_memo)	/* its DATASKETCH key is looked up soon (ds_keys_range) */
		__builtin_prefetch(&c->ds_memo[h & c->ds_mask]);
	if (2 * c->set_n > c->set_mask + 1)
		set_resize(c, 2 * (c->set_mask + 1));
}

/* Add the token at byte AT of N bytes and xxh3-64 H. Most tokens were seen before in the
 * document: that path is inlined where tokens are found, the rest is set_new. (Measured: a
 * version without the branch on a new token, storing the token whether new or not, was
 * slower.) */
static inline __attribute__((always_inline)) void set_add_hash(struct docstats_ctx *c,
							       uint64_t h, size_t at, size_t n)
{
	uint64_t key = set_key(h);
	const uint64_t *set = c->set;
	size_t mask = c->set_mask, j = key & mask;
	for (; set[j]; j = (j + 1) & mask)
		if (set[j] == key)
			return;
	set_new(c, j, h, at, n);
}

static void ds_keys(struct docstats_ctx *c, const unsigned char *p, size_t len, size_t done);
static void ds_keys_range(struct docstats_ctx *c, const unsigned char *p, size_t len,
			  size_t from, size_t to, size_t *miss);

/* What the permutations take of each distinct token of the document at P. Distinct tokens
 * are told apart by xxh3 in both schemes; SHA-1 is paid once each, at most. */
static void set_keys(struct docstats_ctx *c, const unsigned char *p, size_t len, size_t done)
{
	if (c->scheme != DOCSTATS_MINHASH_DATASKETCH) {
		for (size_t t = 0; t < c->set_n; t++)
			c->pkeys[t] = perm_key(c->keys[t]);
		return;
	}
	ds_keys(c, p, len, done);
}

/* Start a document of LEN bytes. Code has about one distinct token per 50 bytes, so LEN / 8
 * slots seldom fill a third and seldom grow: probing a fuller set cost more (measured) than
 * clearing a larger one. */
static void set_clear(struct docstats_ctx *c, size_t len)
{
	size_t slots = 64;
	while (slots < len / 8 && slots < ((size_t)1 << 24))
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

/* Does a keyword end at byte AT - 1 of P (a space at AT)? The keywords are letters, which no
 * byte outside a token is, so looking at the 5 bytes before AT is the same as looking at the
 * token that ends there, and needs no knowing where it starts: the AVX2 NONE scan may hand
 * over inside a token (fast_block). */
static int keyword_ends(const unsigned char *p, size_t at)
{
	size_t from = at < 5 ? 0 : at - 5;
	return code_keyword(p + from, at - from);
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

/* Where a scan of one document stands. The reference path (byte at a time) and the AVX2 path
 * (32 or 64 bytes at a time) hand it to each other between whole steps: never inside a UTF-8
 * sequence or a CR LF pair, nor inside a token but under NONE (fast_block), so neither needs
 * to know what the other was doing (but for ds_done, which only the AVX2 path moves). */
struct scan {
	const unsigned char *p;
	size_t len, i, k;		/* i: next byte; k: bytes in the stripped copy */
	uint64_t extra;			/* continuation bytes so far: code point index = i - extra */
	uint64_t n_alnum, n_eq, n_nl, n_test, n_config;
	struct lines L;
	int invalid, keyword;
	size_t ds_done;			/* distinct tokens looked up in the memo so far */
};

/* A whole token at T0 of N bytes and xxh3-64 H (the stripped copy is the caller's). WORDS:
 * it may hold "test" or "conf", so count_words must look. */
static inline void token(struct docstats_ctx *c, struct scan *s, size_t t0, size_t n, int words,
			 uint64_t h)
{
	const unsigned char *t = s->p + t0;
	if (c->tokens)
		set_add_hash(c, h, t0, n);
	if (words && n >= 4)
		count_words(t, n, &s->n_test, &s->n_config);
	if (!s->keyword && t0 + n < s->len && t[n] == ' ')
		s->keyword = keyword_ends(s->p, t0 + n);
}

/* Reference step: a token, [A-Za-z0-9_]+ (never whitespace), read byte by byte. */
static inline void step_token(struct docstats_ctx *c, struct scan *s, unsigned char *strip)
{
	const unsigned char *p = s->p;
	size_t i = s->i, t0 = i, len = s->len;
	unsigned cls = ctab[p[i]];
	do {
		s->n_alnum += cls & C_ALNUM;
		if (++i == len)
			break;
		cls = ctab[p[i]];
	} while (cls & C_TOK);
	size_t n = i - t0;
	if (n <= 16 && t0 + 16 <= len)	/* strip has 16 bytes of slack */
		memcpy(strip + s->k, p + t0, 16);
	else
		memcpy(strip + s->k, p + t0, n);
	s->k += n;
	s->i = i;
	token(c, s, t0, n, 1, c->tokens ? XXH3_64bits(p + t0, n) : 0);
}

/* Reference step: one ASCII character that is no token byte; CR LF is one line break. */
static inline void step_ascii(struct scan *s, unsigned char *strip)
{
	const unsigned char *p = s->p;
	size_t i = s->i;
	unsigned char ch = p[i];
	unsigned cls = ctab[ch];
	strip[s->k] = ch;
	s->k += !(cls & C_SPACE);
	s->n_eq += ch == '=';
	if (cls & C_BREAK) {
		line_end(&s->L, i - s->extra, i);
		s->n_nl += ch == '\n';
		if (ch == '\r' && i + 1 < s->len && p[i + 1] == '\n') {
			i++;
			s->n_nl++;
		}
		s->L.start = i + 1 - s->extra;
	}
	s->i = i + 1;
}

/* Reference step: one code point from a byte >= 0x80, or one invalid byte. */
static void step_high(struct scan *s, unsigned char *strip)
{
	const unsigned char *p = s->p;
	size_t i = s->i, len = s->len;
	int l = utf8_valid_len(p + i, len - i);
	if (!l) {	/* a lone byte: one code point, U+DC80..U+DCFF in Python */
		s->invalid = 1;
		strip[s->k++] = p[i];
		s->i = i + 1;
		return;
	}
	int dl;
	uint32_t cp = utf8_decode(p + i, len - i, &dl);
	uint64_t ci = i - s->extra;
	s->extra += (uint64_t)(l - 1);
	if (docstats_isspace(cp)) {
		if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) {
			line_end(&s->L, ci, i);
			s->L.start = ci + 1;
		}
	} else {
		memcpy(strip + s->k, p + i, (size_t)l);
		s->k += (size_t)l;
		s->n_alnum += docstats_isalnum(cp);
	}
	s->i = i + (size_t)l;
}

static inline void step(struct docstats_ctx *c, struct scan *s, unsigned char *strip)
{
	unsigned char ch = s->p[s->i];
	unsigned cls = ctab[ch];
	if (cls & C_TOK) {
		step_token(c, s, strip);
	} else if (ch == ' ') {	/* indentation: long runs, nothing to count */
		while (++s->i < s->len && s->p[s->i] == ' ')
			;
	} else if (!(cls & C_HIGH)) {
		step_ascii(s, strip);
	} else {
		step_high(s, strip);
	}
}

/* The reference scan, from s->i to the end; the local copy lets the compiler keep the state
 * in registers. */
static void scan_bytes(struct docstats_ctx *c, struct scan *s)
{
	struct scan t = *s;
	unsigned char *strip = c->strip;
	while (t.i < t.len)
		step(c, &t, strip);
	*s = t;
}

/* x86-64: the AVX2 scan and the SHA instructions, each where the CPU has it (checked at
 * init). -DDOCSTATS_NO_SIMD builds the portable code alone, to test it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(DOCSTATS_NO_SIMD)
#define HAVE_X86_SIMD 1
#include <cpuid.h>
#include <immintrin.h>

/* The AVX2 scan classifies 32 bytes with two nibble lookups (the usual pshufb trick): a byte
 * is in a class when the bit is set both in lo_class[low nibble] and hi_class[high nibble].
 * Each bit is one rectangle of the ASCII table; bytes >= 0x80 have no class. */
enum {
	V_DIGIT = 0x01,	/* 0x30-0x39 */
	V_AL1 = 0x02,	/* 0x41-0x4f, 0x61-0x6f */
	V_AL2 = 0x04,	/* 0x50-0x5a, 0x70-0x7a */
	V_US = 0x08,	/* 0x5f */
	V_WS0 = 0x10,	/* 0x09-0x0d */
	V_BR0 = 0x20,	/* 0x0a-0x0d */
	V_WS1 = 0x40,	/* 0x1c-0x1f */
	V_BR1 = 0x80,	/* 0x1c-0x1e */
	V_ALNUM = V_DIGIT | V_AL1 | V_AL2,
	V_TOK = V_ALNUM | V_US,
	V_WS = V_WS0 | V_WS1,	/* and ' ', compared apart */
	V_BR = V_BR0 | V_BR1,
};

#define V_LO(l) (((l) <= 9 ? V_DIGIT : 0) | ((l) >= 1 ? V_AL1 : 0) | ((l) <= 10 ? V_AL2 : 0) | \
	((l) == 15 ? V_US : 0) | ((l) >= 9 && (l) <= 13 ? V_WS0 : 0) | \
	((l) >= 10 && (l) <= 13 ? V_BR0 : 0) | ((l) >= 12 ? V_WS1 : 0) | \
	((l) >= 12 && (l) <= 14 ? V_BR1 : 0))
#define V_LO16 V_LO(0), V_LO(1), V_LO(2), V_LO(3), V_LO(4), V_LO(5), V_LO(6), V_LO(7), \
	V_LO(8), V_LO(9), V_LO(10), V_LO(11), V_LO(12), V_LO(13), V_LO(14), V_LO(15)
#define V_HI16 V_WS0 | V_BR0, V_WS1 | V_BR1, 0, V_DIGIT, V_AL1, V_AL2 | V_US, V_AL1, V_AL2, \
	0, 0, 0, 0, 0, 0, 0, 0

static const unsigned char lo_class[32] __attribute__((aligned(32))) = { V_LO16, V_LO16 };
static const unsigned char hi_class[32] __attribute__((aligned(32))) = { V_HI16, V_HI16 };

/* strip_shuf[m]: the pshufb indices that gather the bytes of an 8-byte group whose bits
 * are set in m to the front (the stripped copy drops whitespace 8 bytes at a time). */
static uint64_t strip_shuf[256];

__attribute__((constructor)) static void strip_shuf_init(void)
{
	for (unsigned m = 0; m < 256; m++) {
		uint64_t v = 0;
		unsigned n = 0;
		for (unsigned b = 0; b < 8; b++)
			if (m >> b & 1)
				v |= (uint64_t)b << (8 * n++);
		strip_shuf[m] = v;
	}
}

static int cpu_has_avx2(void)
{
	unsigned a, b, cx, d;	/* lzcnt: CPUID 0x80000001 ECX bit 5 */
	return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt") &&
	       __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
	       __get_cpuid(0x80000001, &a, &b, &cx, &d) && (cx >> 5 & 1);
}
#else
static int cpu_has_avx2(void)
{
	return 0;
}

static void *queue_new(void)
{
	return NULL;
}

static void queue_free(void *q)
{
	(void)q;
}
#endif

#ifdef HAVE_X86_SIMD
#define AVX2 __attribute__((target("avx2,popcnt,bmi,bmi2,lzcnt")))

/* What the AVX2 scan knows of 32 bytes: bit j of each mask is byte j. */
struct vmasks {
	uint32_t high, tok, alnum, ws, sp, br, eq, nl, cr;
	uint32_t words;	/* where "t..t" or "c..f" starts (any case): "test" or "conf" may */
};

AVX2 static inline uint32_t class_mask(__m256i cls, int bits)
{
	__m256i none = _mm256_cmpeq_epi8(_mm256_and_si256(cls, _mm256_set1_epi8((char)bits)),
					 _mm256_setzero_si256());
	return ~(uint32_t)_mm256_movemask_epi8(none);
}

AVX2 static inline uint32_t byte_mask(__m256i v, char ch)
{
	return (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, _mm256_set1_epi8(ch)));
}

AVX2 static inline void classify(__m256i v, struct vmasks *m)
{
	__m256i nib = _mm256_set1_epi8(0x0f);
	__m256i lo = _mm256_and_si256(v, nib), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
	__m256i cls = _mm256_and_si256(
		_mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)lo_class), lo),
		_mm256_shuffle_epi8(_mm256_load_si256((const __m256i *)hi_class), hi));
	m->high = (uint32_t)_mm256_movemask_epi8(v);
	m->tok = class_mask(cls, V_TOK);
	m->alnum = class_mask(cls, V_ALNUM);
	m->sp = byte_mask(v, ' ');
	m->ws = class_mask(cls, V_WS) | m->sp;
	m->br = class_mask(cls, V_BR);
	m->eq = byte_mask(v, '=');
	m->nl = byte_mask(v, '\n');
	m->cr = byte_mask(v, '\r');
	/* only 'T' and 't' become 't' under | 0x20, and so on: a cheap superset of the places
	 * count_words would find something, so that most tokens skip it */
	__m256i low = _mm256_or_si256(v, _mm256_set1_epi8(0x20));
	uint32_t t = byte_mask(low, 't'), cc = byte_mask(low, 'c'), f = byte_mask(low, 'f');
	m->words = (t & t >> 3) | (cc & f >> 3);
}

/* How many of the 32 bytes at s->i the block takes: all but what must wait for the next
 * block (a token or CR LF that goes on past it) and not from the first byte >= 0x80 on,
 * which the reference step decodes. 0: the block can take nothing. */
AVX2 static inline unsigned block_extent(const struct scan *s, const struct vmasks *m)
{
	/* without branches: whether a block ends in a token or not is anybody's guess */
	size_t next = s->i + 32, last = next < s->len ? next : next - 1;
	unsigned char after = next < s->len ? s->p[last] : 0;
	unsigned n = 32 - ((m->cr >> 31) & (after == '\n'));
	/* a token going on: stop where it starts (0 when it fills the block) */
	unsigned tok_start = 32 - _lzcnt_u32(~m->tok);
	n = (m->tok >> 31) & (ctab[after] >> 3) ? tok_start : n;
	_Static_assert(C_TOK == 8, "C_TOK is bit 3");
	unsigned high = _tzcnt_u32(m->high);	/* 32 when there is none */
	return high < n ? high : n;
}

/* The AVX2 scan queues what it finds in a chunk of up to CHUNK bytes (offsets from the
 * chunk's start) and deals with it at the end of the chunk, or before a reference step: the
 * work per token and per line runs in loops of its own, apart from the block code (measured
 * about as fast as a loop over each block's bits), and the DATASKETCH keys of a chunk's new
 * tokens are looked up together, while their memo lines are in cache. */
#define CHUNK 4096
struct queue {
	uint16_t tok_first[CHUNK / 2 + 32], tok_last[CHUNK / 2 + 32];
	uint16_t brk[CHUNK + 32];	/* 2 * offset of a line break, + 1 for CR LF */
	unsigned n_tok, n_brk;
	size_t miss[CHUNK / 2 + 32];	/* ds_keys_range's list */
	struct seen {	/* tokens of up to 8 bytes this document put in the set */
		uint64_t *w;	/* the token's bytes, 0: a free slot */
		size_t cap, mask, n;
		int shift;
	} seen;
};

/* An empty table of short tokens (seen_before) for a document of LEN bytes, sized like the
 * set but at most 8 MB: it may forget. */
static void seen_clear(struct seen *q, size_t len)
{
	size_t slots = 64;
	int bits = 6;
	for (; slots < len / 8 && slots < ((size_t)1 << 20); bits++)
		slots *= 2;
	if (slots > q->cap) {
		free(q->w);
		q->w = xmalloc(slots * sizeof *q->w);
		q->cap = slots;
	}
	q->mask = slots - 1;
	q->shift = 64 - bits;
	q->n = 0;
	memset(q->w, 0, slots * sizeof *q->w);
}

/* Most tokens are short and were seen before in the document. Telling that from their bytes
 * costs a multiply and a compare, less than hashing them for the set (set_add_hash): a token
 * of up to 8 bytes is looked up as W, its bytes (none of them 0) padded with zeros, in a
 * table of its own, which forgets everything when half full; only what it lacks goes to the
 * set, which decides as before whether a token is new. (Measured, and not kept: the same for
 * tokens of 9 to 16 bytes, an eighth of them, gained nothing; nor did looking up all tokens
 * of a chunk first without a branch on the outcome, which stores to the table every time.) */
static inline int seen_before(struct seen *q, uint64_t w)
{
	size_t j = (size_t)((w * 0x9e3779b97f4a7c15ull) >> q->shift);
	uint64_t cur;
	while ((cur = q->w[j]) && cur != w)
		j = (j + 1) & q->mask;
	if (cur)
		return 1;
	q->w[j] = w;
	if (2 * ++q->n > q->mask) {
		memset(q->w, 0, (q->mask + 1) * sizeof *q->w);
		q->n = 0;
	}
	return 0;
}

/* Append OFF plus the position of each set bit of M to OUT (room for 8 more); returns their
 * count. The first K go without a branch, as most blocks have fewer (K is a constant). */
AVX2 static inline unsigned flatten(uint16_t *out, uint32_t m, unsigned off, unsigned k)
{
	unsigned n = (unsigned)__builtin_popcount(m), j = 0;
#pragma GCC unroll 8
	for (; j < k; j++, m = _blsr_u32(m))
		out[j] = (uint16_t)(off + _tzcnt_u32(m));
	for (; j < n; j++, m = _blsr_u32(m))
		out[j] = (uint16_t)(off + _tzcnt_u32(m));
	return n;
}

/* Counts, and the line breaks queued. A CR LF pair lies in one block (see block_extent):
 * the LF ends no line, and the line after starts past it. */
AVX2 static inline void block_lines(struct scan *s, struct queue *q, unsigned off,
				    const struct vmasks *m, uint32_t vm)
{
	s->n_alnum += (unsigned)__builtin_popcount(m->alnum & vm);
	s->n_eq += (unsigned)__builtin_popcount(m->eq & vm);
	s->n_nl += (unsigned)__builtin_popcount(m->nl & vm);
	uint32_t br = m->br & vm & ~(m->nl & m->cr << 1), crlf = m->cr & m->nl >> 1;
	uint16_t *out = q->brk + q->n_brk;	/* 2 * offset, + 1 for CR LF */
	unsigned n = (unsigned)__builtin_popcount(br), j = 0;
#pragma GCC unroll 2
	for (; j < 2; j++, br = _blsr_u32(br)) {
		unsigned b = _tzcnt_u32(br);
		out[j] = (uint16_t)(2 * (off + b) + ((uint64_t)crlf >> b & 1));
	}
	for (; j < n; j++, br = _blsr_u32(br)) {
		unsigned b = _tzcnt_u32(br);
		out[j] = (uint16_t)(2 * (off + b) + (crlf >> b & 1));
	}
	q->n_brk += n;
}

/* Append the bytes of V in KEEP to the stripped copy, 8 at a time through strip_shuf. Each
 * store writes 8 bytes from s->k <= s->i + 24: within len + 16. */
AVX2 static inline void block_strip(struct scan *s, __m256i v, uint32_t keep, unsigned char *strip)
{
	for (int h = 0; h < 2; h++, keep >>= 16) {
		__m128i x = h ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
		unsigned m0 = keep & 0xff, m1 = keep >> 8 & 0xff;
		__m128i idx = _mm_set_epi64x((long long)(strip_shuf[m1] + 0x0808080808080808ull),
					     (long long)strip_shuf[m0]);
		__m128i y = _mm_shuffle_epi8(x, idx);
		_mm_storel_epi64((__m128i *)(strip + s->k), y);
		s->k += (unsigned)__builtin_popcount(m0);
		_mm_storel_epi64((__m128i *)(strip + s->k), _mm_unpackhi_epi64(y, y));
		s->k += (unsigned)__builtin_popcount(m1);
	}
}

/* The tokens of the block: queued for set_add; those that may hold "test" or "conf" and,
 * until one is found, those followed by a space (keyword_ends) are looked at now, as few
 * are. FIRST and LAST have the bits of the tokens' first and last bytes. */
AVX2 static inline void block_words(struct scan *s, uint32_t first, uint32_t last,
				    uint32_t words, uint32_t after_sp)
{
	const unsigned char *p = s->p + s->i;
	while (words) {	/* each token once, however many candidates it has */
		unsigned w = _tzcnt_u32(words);
		unsigned a = 31 - (unsigned)__builtin_clz(first & (uint32_t)((2ull << w) - 1));
		unsigned b = w + _tzcnt_u32(last >> w);
		if (b - a >= 3)
			count_words(p + a, b - a + 1, &s->n_test, &s->n_config);
		words &= (uint32_t)(~0ull << (b + 1));
	}
	for (uint32_t kw = last & after_sp; kw && !s->keyword; kw = _blsr_u32(kw))
		s->keyword = keyword_ends(s->p, s->i + _tzcnt_u32(kw) + 1);
}

/* One block of N bytes at s->i, OFF bytes into the chunk. (Inlined in each scan_run: a call
 * would pass the masks through memory.) */
AVX2 static inline __attribute__((always_inline)) void block(struct scan *s, struct queue *q,
							     unsigned off, __m256i v,
							     const struct vmasks *m, unsigned n,
							     unsigned char *strip, int tokens)
{
	uint32_t vm = n == 32 ? UINT32_MAX : (1u << n) - 1;
	block_lines(s, q, off, m, vm);
	block_strip(s, v, ~m->ws & vm, strip);
	uint32_t tok = m->tok & vm, first = tok & ~(tok << 1), last = tok & ~(tok >> 1);
	if (tokens) {
		flatten(q->tok_first + q->n_tok, first, off, 4);
		q->n_tok += flatten(q->tok_last + q->n_tok, last, off, 4);
	}
	uint32_t words = m->words & tok, after_sp = 0;
	if (!s->keyword) {	/* a space after byte 31 is the next block's */
		size_t next = s->i + 32;
		after_sp = m->sp >> 1 | (uint32_t)(n == 32 && next < s->len && s->p[next] == ' ') << 31;
	}
	if (words | (last & after_sp))
		block_words(s, first, last, words, after_sp);
}

/* What the chunk at BASE queued: the tokens into the set, the line breaks into the line
 * statistics (no code point in the chunk so far took more than one byte). */
AVX2 static void flush(struct docstats_ctx *c, struct scan *s, struct queue *q, size_t base)
{
	const unsigned char *p = s->p + base;
	for (unsigned k = 0; k < q->n_tok; k++) {
		const unsigned char *t = p + q->tok_first[k];
		size_t n = (size_t)(q->tok_last[k] - q->tok_first[k]) + 1, at = (size_t)(t - s->p);
		if (n <= 8 && at + 8 <= s->len && seen_before(&q->seen, _bzhi_u64(rd_u64le(t), 8 * n)))
			continue;
		set_add_hash(c, token_hash(t, n), at, n);
	}
	/* DATASKETCH keys now, while the memo lines set_new fetched are in cache; what came
	 * between chunks from reference steps is a token at most, so there is room */
	if (c->ds_memo && c->set_n - s->ds_done <= CHUNK / 2 + 32) {
		ds_keys_range(c, s->p, s->len, s->ds_done, c->set_n, q->miss);
		s->ds_done = c->set_n;
	}
	for (unsigned k = 0; k < q->n_brk; k++) {
		size_t at = base + (q->brk[k] >> 1);
		line_end(&s->L, at - s->extra, at);
		s->L.start = at + 1 + (q->brk[k] & 1) - s->extra;
	}
	q->n_tok = q->n_brk = 0;
}

/* The NONE scan's common case, 64 bytes at once: ASCII whose only control byte is LF.
 * Without a token set, only count_words and keyword_ends care where tokens start, and both
 * are done here on the bytes themselves (as they are letters only, that finds what the
 * token by token search would): so the block takes all 64 bytes, also where a token goes
 * on past it, and the general blocks and reference steps after it may start inside a token
 * (which changes nothing for them either, see fast_words and keyword_ends). It needs fewer
 * masks than the general block (no token, CR or other break masks), and the alnum and '='
 * counts go to byte counters instead of a movemask and popcount each. On the Python standard
 * library it takes 98% of the bytes, and docstats_compute under NONE went from about 175 to
 * 100 ms (bench/docstats-micro.c -s none; 940 to 1650 MB/s). The token schemes have a
 * block of their own for the same bytes, as their queue wants whole tokens (fast_tok_block). */
struct fast_acc {
	__m256i alnum, eq;	/* per byte lane, at most 2 a block, 64 blocks a chunk */
};

AVX2 static inline void fast_acc_clear(struct fast_acc *a)
{
	a->alnum = a->eq = _mm256_setzero_si256();
}

AVX2 static inline uint64_t fast_acc_sum(__m256i v)
{
	__m256i s = _mm256_sad_epu8(v, _mm256_setzero_si256());
	__m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
	return (uint64_t)_mm_cvtsi128_si64(_mm_add_epi64(h, _mm_unpackhi_epi64(h, h)));
}

/* Into the scan's counts, at the end of a chunk. */
AVX2 static inline void fast_acc_flush(struct scan *s, struct fast_acc *a)
{
	s->n_alnum += fast_acc_sum(a->alnum);
	s->n_eq += fast_acc_sum(a->eq);
	fast_acc_clear(a);
}

/* Bit j: bytes j and j + 3 of P (LOW: the first 32 bytes | 0x20) are "t" and "t", or "c" and
 * "f", any case: "test" or "conf" may start at j. */
AVX2 static inline uint32_t fast_words_at(const unsigned char *p, __m256i low)
{
	const __m256i t = _mm256_set1_epi8('t'), cc = _mm256_set1_epi8('c');
	__m256i l3 = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p + 3)),
				     _mm256_set1_epi8(0x20));
	__m256i w = _mm256_or_si256(
		_mm256_and_si256(_mm256_cmpeq_epi8(low, t), _mm256_cmpeq_epi8(l3, t)),
		_mm256_and_si256(_mm256_cmpeq_epi8(low, cc),
				 _mm256_cmpeq_epi8(l3, _mm256_set1_epi8('f'))));
	return (uint32_t)_mm256_movemask_epi8(w);
}

/* The candidates of fast_words: bit j, fast_words_at of the 64 bytes at P (67 readable). */
AVX2 static inline uint64_t fast_words_mask(const unsigned char *p, __m256i low0, __m256i low1)
{
	return fast_words_at(p, low0) | (uint64_t)fast_words_at(p + 32, low1) << 32;
}

/* count_words over the candidates M (fast_words_mask) in the 64 bytes at P; 0 when a
 * "test" it counts would go on past them (the general block then takes the bytes). As
 * matches are letters, they never cross a token's edge, so a search from any place in a
 * token finds what the search from its start finds from there, but for a "test" it skips
 * as it overlaps one counted before ("testest"): which the rule above keeps in one block.
 * ("config" never overlaps itself: counted where it starts, wherever it ends.) */
AVX2 static inline int fast_words(struct scan *s, const unsigned char *p, uint64_t m)
{
	if (!m)
		return 1;
	uint32_t test, conf;
	memcpy(&test, "test", 4);
	memcpy(&conf, "conf", 4);
	unsigned next = 0, n_test = 0, n_config = 0;	/* "test" overlaps itself: "testest" */
	for (; m; m = _blsr_u64(m)) {
		unsigned j = (unsigned)_tzcnt_u64(m);
		uint32_t v = lower4(p + j);
		if (v == test && j >= next) {
			if (j > 60)
				return 0;
			n_test++;
			next = j + 4;
		} else if (v == conf) {
			if (j > 61)	/* bytes j + 4 and j + 5 not readable */
				return 0;
			n_config += (p[j + 4] | 0x20) == 'i' && (p[j + 5] | 0x20) == 'g';
		}
	}
	s->n_test += n_test;
	s->n_config += n_config;
	return 1;
}

/* Bit j: byte j + 1 of P is a space and bytes j - 1 and j (LOW1 and LOW: the 32 bytes from
 * P - 1 and P, | 0x20) end "def", "for", "class" or "while", any case. */
AVX2 static inline uint32_t fast_keyword_at(const unsigned char *p, __m256i low)
{
	__m256i l1 = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p - 1)),
				     _mm256_set1_epi8(0x20));
	__m256i sp = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + 1)),
				       _mm256_set1_epi8(' '));
#define PAIR(a, b) _mm256_and_si256(_mm256_cmpeq_epi8(l1, _mm256_set1_epi8(a)), \
				    _mm256_cmpeq_epi8(low, _mm256_set1_epi8(b)))
	__m256i k = _mm256_or_si256(_mm256_or_si256(PAIR('e', 'f'), PAIR('o', 'r')),
				    _mm256_or_si256(PAIR('s', 's'), PAIR('l', 'e')));
#undef PAIR
	return (uint32_t)_mm256_movemask_epi8(_mm256_and_si256(k, sp));
}

/* Until the document has a keyword: one that ends in the 64 bytes at s->i (65 readable, and
 * the byte before). */
AVX2 static inline void fast_keyword(struct scan *s, __m256i low0, __m256i low1)
{
	const unsigned char *p = s->p + s->i;
	uint64_t m = fast_keyword_at(p, low0) | (uint64_t)fast_keyword_at(p + 32, low1) << 32;
	for (; m && !s->keyword; m = _blsr_u64(m))
		s->keyword = keyword_ends(s->p, s->i + (size_t)_tzcnt_u64(m) + 1);
}

/* The LF of the block at OFF into the chunk, counted and queued for flush; as in
 * block_lines, the first two without a branch (brk has room: at most one a byte so far, and
 * 64 more). The count is the popcount the queue needs anyway (a byte counter for it, as for
 * '=', measured the same). */
AVX2 static inline void fast_lines(struct scan *s, struct queue *q, unsigned off, uint64_t nl)
{
	uint16_t *out = q->brk + q->n_brk;
	unsigned n = (unsigned)__builtin_popcountll(nl), j = 0;
	for (; j < 2; j++, nl = _blsr_u64(nl))
		out[j] = (uint16_t)(2 * (off + (unsigned)_tzcnt_u64(nl)));
	for (; j < n; j++, nl = _blsr_u64(nl))
		out[j] = (uint16_t)(2 * (off + (unsigned)_tzcnt_u64(nl)));
	q->n_brk += n;
	s->n_nl += n;
}

/* Bytes 0x61-0x7a of LOW (bytes | 0x20: the letters of either case), and digits (plain
 * ASCII: no byte >= 0x80 nor control byte but LF, which | 0x20 would make letters). */
AVX2 static inline __m256i fast_alnum(__m256i v, __m256i low)
{
	__m256i a = _mm256_sub_epi8(low, _mm256_set1_epi8('a'));
	__m256i d = _mm256_sub_epi8(v, _mm256_set1_epi8('0'));
	a = _mm256_cmpeq_epi8(_mm256_min_epu8(a, _mm256_set1_epi8(25)), a);
	d = _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8(9)), d);
	return _mm256_or_si256(a, d);
}

AVX2 static inline __m256i fast_count_alnum(__m256i acc, __m256i v, __m256i low)
{
	return _mm256_sub_epi8(acc, fast_alnum(v, low));	/* compares give -1 */
}

/* Bit j: byte j of the 64 in X0, X1 is set. */
AVX2 static inline uint64_t fast_mask(__m256i x0, __m256i x1)
{
	return (uint32_t)_mm256_movemask_epi8(x0) | (uint64_t)(uint32_t)_mm256_movemask_epi8(x1) << 32;
}

/* Are V0, V1 plain ASCII whose only control byte is LF (NL0, NL1)? */
AVX2 static inline int fast_plain(__m256i v0, __m256i v1, __m256i nl0, __m256i nl1)
{
	const __m256i ctl = _mm256_set1_epi8(0x20);
	/* signed: bytes >= 0x80 are below 0x20 too */
	__m256i other = _mm256_or_si256(_mm256_andnot_si256(nl0, _mm256_cmpgt_epi8(ctl, v0)),
					_mm256_andnot_si256(nl1, _mm256_cmpgt_epi8(ctl, v1)));
	return _mm256_testz_si256(other, other);
}

/* The 64 bytes at P as both 64-byte blocks see them: the bytes, their LF, and | 0x20. */
struct fast_in {
	__m256i v0, v1, nl0, nl1, low0, low1;
};

/* Load F from P; 0 when the bytes are not plain ASCII with LF the only control byte (then
 * only v and nl are set). */
AVX2 static inline int fast_load(const unsigned char *p, struct fast_in *f)
{
	const __m256i lf = _mm256_set1_epi8('\n'), ctl = _mm256_set1_epi8(0x20);
	f->v0 = _mm256_loadu_si256((const __m256i *)p);
	f->v1 = _mm256_loadu_si256((const __m256i *)(p + 32));
	f->nl0 = _mm256_cmpeq_epi8(f->v0, lf);
	f->nl1 = _mm256_cmpeq_epi8(f->v1, lf);
	if (!fast_plain(f->v0, f->v1, f->nl0, f->nl1))
		return 0;
	f->low0 = _mm256_or_si256(f->v0, ctl);
	f->low1 = _mm256_or_si256(f->v1, ctl);
	return 1;
}

/* The 64 bytes at s->i (s->i > 0), OFF bytes into the chunk (67 readable); 0: they are not
 * the common case, and nothing was done. */
AVX2 static inline int fast_block(struct scan *s, struct queue *q, unsigned off,
				  struct fast_acc *a, unsigned char *strip)
{
	const unsigned char *p = s->p + s->i;
	struct fast_in f;
	if (!fast_load(p, &f))
		return 0;
	__m256i v0 = f.v0, v1 = f.v1, nl0 = f.nl0, nl1 = f.nl1, low0 = f.low0, low1 = f.low1;
	if (!fast_words(s, p, fast_words_mask(p, low0, low1)))
		return 0;
	if (!s->keyword)
		fast_keyword(s, low0, low1);
	const __m256i sp = _mm256_set1_epi8(' '), eq = _mm256_set1_epi8('=');
	uint32_t ws0 = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpeq_epi8(v0, sp), nl0));
	uint32_t ws1 = (uint32_t)_mm256_movemask_epi8(_mm256_or_si256(_mm256_cmpeq_epi8(v1, sp), nl1));
	block_strip(s, v0, ~ws0, strip);
	block_strip(s, v1, ~ws1, strip);
	fast_lines(s, q, off, fast_mask(nl0, nl1));
	a->eq = _mm256_sub_epi8(_mm256_sub_epi8(a->eq, _mm256_cmpeq_epi8(v0, eq)),
				_mm256_cmpeq_epi8(v1, eq));
	a->alnum = fast_count_alnum(fast_count_alnum(a->alnum, v0, low0), v1, low1);
	return 1;
}

/* As flatten, for the 64 bits of M. */
AVX2 static inline unsigned flatten64(uint16_t *out, uint64_t m, unsigned off, unsigned k)
{
	unsigned n = (unsigned)__builtin_popcountll(m), j = 0;
#pragma GCC unroll 8
	for (; j < k; j++, m = _blsr_u64(m))
		out[j] = (uint16_t)(off + (unsigned)_tzcnt_u64(m));
	for (; j < n; j++, m = _blsr_u64(m))
		out[j] = (uint16_t)(off + (unsigned)_tzcnt_u64(m));
	return n;
}

/* fast_block for the token schemes: the same bytes, but whole tokens only, as the queue
 * wants them. A token going on past the 64 bytes ends the block where it starts (as in
 * block_extent); the bytes left out are token bytes, no LF, space or '=', so only the masks
 * of tokens, alnum, words and the stripped copy need cutting. As every block then starts
 * where no token goes on, fast_words sees each "test" from its token's start. Returns the
 * bytes taken; 0: not the common case, or one token fills the block, and nothing was done. */
AVX2 static inline unsigned fast_tok_block(struct scan *s, struct queue *q, unsigned off,
					   unsigned char *strip)
{
	const unsigned char *p = s->p + s->i;
	struct fast_in f;
	if (!fast_load(p, &f))
		return 0;
	__m256i v0 = f.v0, v1 = f.v1, nl0 = f.nl0, nl1 = f.nl1, low0 = f.low0, low1 = f.low1;
	const __m256i us = _mm256_set1_epi8('_'), sp = _mm256_set1_epi8(' ');
	uint64_t alnum = fast_mask(fast_alnum(v0, low0), fast_alnum(v1, low1));
	uint64_t tok = alnum | fast_mask(_mm256_cmpeq_epi8(v0, us), _mm256_cmpeq_epi8(v1, us));
	/* without a branch, as in block_extent */
	_Static_assert(C_TOK == 8, "C_TOK is bit 3");
	unsigned n = (tok >> 63) & (ctab[p[64]] >> 3) ? 64 - (unsigned)_lzcnt_u64(~tok) : 64;
	uint64_t vm = _bzhi_u64(~0ull, n);	/* all 64 bits for n = 64 */
	if (!n || !fast_words(s, p, fast_words_mask(p, low0, low1) & vm))
		return 0;
	if (!s->keyword)	/* none ends in the bytes left out: no space follows them */
		fast_keyword(s, low0, low1);
	uint64_t ws = fast_mask(_mm256_or_si256(_mm256_cmpeq_epi8(v0, sp), nl0),
				_mm256_or_si256(_mm256_cmpeq_epi8(v1, sp), nl1));
	block_strip(s, v0, (uint32_t)(~ws & vm), strip);
	block_strip(s, v1, (uint32_t)((~ws & vm) >> 32), strip);
	fast_lines(s, q, off, fast_mask(nl0, nl1));
	/* popcounts, not fast_acc: cut blocks may be more than 64 to a chunk */
	const __m256i eq = _mm256_set1_epi8('=');
	s->n_eq += (unsigned)__builtin_popcountll(fast_mask(_mm256_cmpeq_epi8(v0, eq),
							    _mm256_cmpeq_epi8(v1, eq)));
	s->n_alnum += (unsigned)__builtin_popcountll(alnum & vm);
	tok &= vm;
	flatten64(q->tok_first + q->n_tok, tok & ~(tok << 1), off, 4);
	q->n_tok += flatten64(q->tok_last + q->n_tok, tok & ~(tok >> 1), off, 4);
	return n;
}

static void *queue_new(void)
{
	return xcalloc(1, sizeof(struct queue));
}

static void queue_free(void *q)
{
	if (q)
		free(((struct queue *)q)->seen.w);
	free(q);
}

/* 32 bytes at a time while they last (up to 64 where fast_block or fast_tok_block can), a
 * chunk at a time; the reference step where a block can take nothing (a byte >= 0x80 first,
 * or a token longer than the block). TOKENS is a constant: each scheme gets a loop of its
 * own. */
AVX2 static inline __attribute__((always_inline)) void scan_run(struct docstats_ctx *c,
								struct scan *s, const int tokens)
{
	struct scan t = *s;
	struct queue *q = c->queue;
	unsigned char *strip = c->strip;
	struct fast_acc acc;
	fast_acc_clear(&acc);
	q->n_tok = q->n_brk = 0;
	if (tokens)
		seen_clear(&q->seen, t.len);
	while (t.i + 32 <= t.len) {
		size_t base = t.i;
		int stuck = 0;
		for (; t.i + 32 <= t.len && t.i - base <= CHUNK - 32; ) {
			unsigned off = (unsigned)(t.i - base);
			if (t.i && t.i + 67 <= t.len && off <= CHUNK - 64) {
				unsigned n = tokens ? fast_tok_block(&t, q, off, strip)
						    : 64 * (unsigned)fast_block(&t, q, off, &acc, strip);
				if (n) {
					t.i += n;
					continue;
				}
			}
			__m256i v = _mm256_loadu_si256((const __m256i *)(t.p + t.i));
			struct vmasks m;
			classify(v, &m);
			unsigned n = block_extent(&t, &m);
			if (!n) {
				stuck = 1;
				break;
			}
			block(&t, q, off, v, &m, n, strip, tokens);
			t.i += n;
		}
		if (!tokens)
			fast_acc_flush(&t, &acc);
		flush(c, &t, q, base);
		if (stuck)
			do
				step(c, &t, strip);
			while (t.i < t.len && t.p[t.i] >= 0x80);
	}
	*s = t;
}

/* Each scheme's loop a function of its own: with both in one body, NONE's measured about 5%
 * slower at best than before the token schemes had 64-byte blocks (code layout: it runs no
 * more instructions); apart, within 2% (bench/docstats-micro.c). */
AVX2 static __attribute__((noinline)) void scan_tokens(struct docstats_ctx *c, struct scan *s)
{
	scan_run(c, s, 1);
}

AVX2 static __attribute__((noinline)) void scan_plain(struct docstats_ctx *c, struct scan *s)
{
	scan_run(c, s, 0);
}

AVX2 static void scan_avx2(struct docstats_ctx *c, struct scan *s)
{
	if (c->tokens)
		scan_tokens(c, s);
	else
		scan_plain(c, s);
}
#endif

/* DATASKETCH keys, SHA-1 being most of their cost. A memo keyed by the token's xxh3-64
 * spares it for tokens seen in earlier documents (most identifiers): tokens are told apart by
 * that hash everywhere (set_add_hash), so keying the memo by all its 64 bits changes no
 * result; only a 64-bit collision between tokens of different documents, which within one
 * document would already make them one token, could make a key depend on which came first.
 * A hash of 0 marks a free slot, so a token hashing to 0 is never remembered. The rest go
 * through SHA-1 two at a time where the CPU has SHA instructions (a SHA-1 round waits for
 * the one before; two interleaved took 21 ns a token here, nettle 66), else through nettle.
 * (Measured, and not kept: SHA-1 of 8 tokens at once with AVX2, 53 ns a token.) */
#ifdef HAVE_X86_SIMD
static int cpu_has_sha(void)
{
	unsigned a, b, cx, d;
	return __get_cpuid_count(7, 0, &a, &b, &cx, &d) && (b >> 29 & 1) &&
	       __builtin_cpu_supports("sse4.1");
}

/* The message block of a token of N <= 55 bytes: the token, 0x80, zeros, its bit length. */
static void sha_block(unsigned char blk[64], const unsigned char *t, size_t n)
{
	memset(blk, 0, 64);
	memcpy(blk, t, n);
	blk[n] = 0x80;
	blk[62] = (unsigned char)(n >> 5);
	blk[63] = (unsigned char)(n << 3);
}

/* The message words of a token of N <= 55 bytes at T, as the SHA instructions take them.
 * Up to 15 bytes with 16 readable at T (ROOM), they are made in registers: writing the block
 * byte by byte and reading it back 16 bytes at a time stalls (21 against 35 ns a token). */
__attribute__((target("sha,sse4.1"))) static inline void sha_msg(const unsigned char *t, size_t n,
								 int room, __m128i m[4])
{
	const __m128i bswap = _mm_set_epi64x(0x0001020304050607ll, 0x08090a0b0c0d0e0fll);
	if (n < 16 && room) {
		const __m128i iota = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
		const __m128i len = _mm_set1_epi8((char)n);
		__m128i x = _mm_and_si128(_mm_loadu_si128((const __m128i *)t), _mm_cmpgt_epi8(len, iota));
		x = _mm_or_si128(x, _mm_and_si128(_mm_cmpeq_epi8(len, iota), _mm_set1_epi8((char)0x80)));
		m[0] = _mm_shuffle_epi8(x, bswap);
		m[1] = m[2] = _mm_setzero_si128();
		m[3] = _mm_cvtsi32_si128((int)(8 * n));	/* the last word: the bit length */
		return;
	}
	unsigned char blk[64] __attribute__((aligned(16)));
	sha_block(blk, t, n);
	for (int k = 0; k < 4; k++)
		m[k] = _mm_shuffle_epi8(_mm_load_si128((const __m128i *)(blk + 16 * k)), bswap);
}

/* Four rounds of SHA-1 for lane X with Intel's SHA instructions, message words M0..M3
 * rotating through the schedule: the usual arrangement, as in Intel's reference code. */
#define SHA_ROUNDS(x, ea, eb, mc, mn, mp, mq, f)                          \
	do {                                                              \
		ea##x = _mm_sha1nexte_epu32(ea##x, mc##x);                \
		eb##x = abcd##x;                                          \
		mn##x = _mm_sha1msg2_epu32(mn##x, mc##x);                 \
		abcd##x = _mm_sha1rnds4_epu32(abcd##x, ea##x, f);         \
		mq##x = _mm_sha1msg1_epu32(mq##x, mc##x);                 \
		mp##x = _mm_xor_si128(mp##x, mc##x);                      \
	} while (0)
#define SHA_ROUNDS2(ea, eb, mc, mn, mp, mq, f)                            \
	do {                                                              \
		SHA_ROUNDS(_a, ea, eb, mc, mn, mp, mq, f);                \
		SHA_ROUNDS(_b, ea, eb, mc, mn, mp, mq, f);                \
	} while (0)
/* The first word of the SHA-1 digests of two messages (one block each, sha_msg), computed
 * side by side. */
__attribute__((target("sha,sse4.1"))) static void sha1_d0_x2(const __m128i ma[4],
							       const __m128i mb[4], uint32_t d0[2])
{
	const __m128i abcd0 = _mm_set_epi32(0x67452301, (int)0xefcdab89, (int)0x98badcfe,
					    0x10325476);
	const __m128i e_init = _mm_set_epi32((int)0xc3d2e1f0, 0, 0, 0);
	__m128i m0_a = ma[0], m1_a = ma[1], m2_a = ma[2], m3_a = ma[3];
	__m128i m0_b = mb[0], m1_b = mb[1], m2_b = mb[2], m3_b = mb[3];
	/* rounds 0-11, while the schedule fills up */
	__m128i e0_a = _mm_add_epi32(e_init, m0_a), e0_b = _mm_add_epi32(e_init, m0_b);
	__m128i abcd_a = _mm_sha1rnds4_epu32(abcd0, e0_a, 0);
	__m128i abcd_b = _mm_sha1rnds4_epu32(abcd0, e0_b, 0);
	__m128i e1_a = _mm_sha1nexte_epu32(abcd0, m1_a), e1_b = _mm_sha1nexte_epu32(abcd0, m1_b);
	e0_a = abcd_a;
	e0_b = abcd_b;
	abcd_a = _mm_sha1rnds4_epu32(abcd_a, e1_a, 0);
	abcd_b = _mm_sha1rnds4_epu32(abcd_b, e1_b, 0);
	m0_a = _mm_sha1msg1_epu32(m0_a, m1_a);
	m0_b = _mm_sha1msg1_epu32(m0_b, m1_b);
	e0_a = _mm_sha1nexte_epu32(e0_a, m2_a);
	e0_b = _mm_sha1nexte_epu32(e0_b, m2_b);
	e1_a = abcd_a;
	e1_b = abcd_b;
	abcd_a = _mm_sha1rnds4_epu32(abcd_a, e0_a, 0);
	abcd_b = _mm_sha1rnds4_epu32(abcd_b, e0_b, 0);
	m1_a = _mm_sha1msg1_epu32(m1_a, m2_a);
	m1_b = _mm_sha1msg1_epu32(m1_b, m2_b);
	m0_a = _mm_xor_si128(m0_a, m2_a);
	m0_b = _mm_xor_si128(m0_b, m2_b);
	SHA_ROUNDS2(e1, e0, m3, m0, m1, m2, 0);	/* rounds 12-15 */
	SHA_ROUNDS2(e0, e1, m0, m1, m2, m3, 0);
	SHA_ROUNDS2(e1, e0, m1, m2, m3, m0, 1);	/* rounds 20-23 */
	SHA_ROUNDS2(e0, e1, m2, m3, m0, m1, 1);
	SHA_ROUNDS2(e1, e0, m3, m0, m1, m2, 1);
	SHA_ROUNDS2(e0, e1, m0, m1, m2, m3, 1);
	SHA_ROUNDS2(e1, e0, m1, m2, m3, m0, 1);
	SHA_ROUNDS2(e0, e1, m2, m3, m0, m1, 2);	/* rounds 40-43 */
	SHA_ROUNDS2(e1, e0, m3, m0, m1, m2, 2);
	SHA_ROUNDS2(e0, e1, m0, m1, m2, m3, 2);
	SHA_ROUNDS2(e1, e0, m1, m2, m3, m0, 2);
	SHA_ROUNDS2(e0, e1, m2, m3, m0, m1, 2);
	SHA_ROUNDS2(e1, e0, m3, m0, m1, m2, 3);	/* rounds 60-63 */
	SHA_ROUNDS2(e0, e1, m0, m1, m2, m3, 3);
	SHA_ROUNDS2(e1, e0, m1, m2, m3, m0, 3);
	SHA_ROUNDS2(e0, e1, m2, m3, m0, m1, 3);
	SHA_ROUNDS2(e1, e0, m3, m0, m1, m2, 3);	/* rounds 76-79 */
	/* only the first word is wanted: A, the top lane, plus its initial value */
	d0[0] = (uint32_t)_mm_extract_epi32(_mm_add_epi32(abcd_a, abcd0), 3);
	d0[1] = (uint32_t)_mm_extract_epi32(_mm_add_epi32(abcd_b, abcd0), 3);
}
#undef SHA_ROUNDS2
#undef SHA_ROUNDS
#else
static int cpu_has_sha(void)
{
	return 0;
}
#endif

/* A key just computed goes to the last place of its bucket. */
static inline void ds_remember(struct docstats_ctx *c, size_t t)
{
	uint64_t h = c->keys[t];
	struct docstats_dsmemo *b = &c->ds_memo[h & c->ds_mask];
	b->h[DS_MEMO_WAYS - 1] = h;
	b->key[DS_MEMO_WAYS - 1] = c->pkeys[t];
}

/* The keys of tokens MISS[0..N) (indexes into the lists) of the document at P of LEN
 * bytes, into pkeys[] and the memo. */
static void ds_compute(struct docstats_ctx *c, const unsigned char *p, size_t len, size_t *miss,
		       size_t n)
{
	size_t m = 0;
	(void)len;	/* only the SHA instructions' path reads ahead */
	for (size_t k = 0; k < n; k++) {	/* long tokens (SHA-1 of 2 blocks or more) */
		size_t t = miss[k];
		if (c->sha && c->tok_len[t] <= 55) {
			miss[m++] = t;
			continue;
		}
		c->pkeys[t] = docstats_ds_key(p + c->tok_at[t], c->tok_len[t]);
		ds_remember(c, t);
	}
#ifdef HAVE_X86_SIMD
	for (size_t k = 0; k < m; k += 2) {	/* an odd one out goes twice */
		size_t a = miss[k], b = miss[k + 1 < m ? k + 1 : k];
		__m128i ma[4], mb[4];
		uint32_t d0[2];
		sha_msg(p + c->tok_at[a], c->tok_len[a], c->tok_at[a] + 16 <= len, ma);
		sha_msg(p + c->tok_at[b], c->tok_len[b], c->tok_at[b] + 16 <= len, mb);
		sha1_d0_x2(ma, mb, d0);
		c->pkeys[a] = ds_mix(d0[0]);
		c->pkeys[b] = ds_mix(d0[1]);
		ds_remember(c, a);
		ds_remember(c, b);
	}
#endif
}

/* The keys of tokens FROM..TO of the document at P (LEN bytes): from the memo, else computed
 * and remembered. MISS has room for TO - FROM indexes. The AVX2 scan does it for each chunk,
 * soon after set_new fetched the memo lines and while the tokens are in cache too: at the end
 * of the document both had left it (10 ns a token for the lookup alone). */
static void ds_keys_range(struct docstats_ctx *c, const unsigned char *p, size_t len,
			  size_t from, size_t to, size_t *miss)
{
	_Static_assert(DS_MEMO_WAYS == 4, "four places");
	struct docstats_dsmemo *memo = c->ds_memo;
	const uint64_t *keys = c->keys;
	uint32_t *pkeys = c->pkeys;
	size_t mask = c->ds_mask, n = 0;
	for (size_t t = from; t < to; t++) {
		/* without a branch: which way it goes depends on loads that often miss the
		 * cache, and guessing costs more than the stores */
		uint64_t h = keys[t];
		struct docstats_dsmemo *b = &memo[h & mask];
		unsigned m = (unsigned)(b->h[0] == h) | (unsigned)(b->h[1] == h) << 1 |
			     (unsigned)(b->h[2] == h) << 2 | (unsigned)(b->h[3] == h) << 3;
		unsigned j = (unsigned)__builtin_ctz(m | 16) & 3;	/* the place found, or 0 */
		unsigned i = j - (j != 0);		/* ... one up, where it moves */
		uint64_t hi = b->h[i], hj = b->h[j];
		uint32_t ki = b->key[i], kj = b->key[j];
		b->h[i] = hj;	/* i = j: nothing moves */
		b->key[i] = kj;
		b->h[j] = hi;
		b->key[j] = ki;
		pkeys[t] = kj;
		miss[n] = t;
		n += !m || !h;
	}
	ds_compute(c, p, len, miss, n);
}

/* The DATASKETCH key of each distinct token of the document at P, from DONE on (those before
 * the AVX2 scan did). The set is done with, so its slots (twice as many as tokens, or more)
 * hold the list of what the memo lacked. */
static void ds_keys(struct docstats_ctx *c, const unsigned char *p, size_t len, size_t done)
{
	if (c->reference) {
		for (size_t t = 0; t < c->set_n; t++)
			c->pkeys[t] = docstats_ds_key(p + c->tok_at[t], c->tok_len[t]);
		return;
	}
	_Static_assert(sizeof(size_t) <= sizeof *c->set, "the set holds the list");
	ds_keys_range(c, p, len, done, c->set_n, (size_t *)c->set);
}

/* The signature loop: the portable one, which target_clones vectorizes for SSE4.1 where it
 * can, chosen at load time so the binary still runs everywhere ... */
#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones) && !defined(__SANITIZE_ADDRESS__)
__attribute__((target_clones("sse4.1", "default")))
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

#ifdef HAVE_X86_SIMD
/* ... and with AVX2, 32 permutations at a time, so that their minima, multipliers and
 * addends stay in 12 registers over all tokens instead of going through memory for each
 * (as the compiler's vectorization of the loop above does): about 3 times as fast. */
AVX2 static void minhash_sign_avx2(const uint32_t *mul, const uint32_t *add,
				   const uint32_t *keys, size_t n, uint32_t *sig)
{
#define LD(v, j) _mm256_loadu_si256((const __m256i *)((v) + i0 + 8 * (j)))
#define PERM(j) s##j = _mm256_min_epu32(s##j, _mm256_add_epi32(_mm256_mullo_epi32(m##j, x), a##j))
	for (int i0 = 0; i0 < DOC_MINHASH_PERM; i0 += 32) {
		__m256i m0 = LD(mul, 0), m1 = LD(mul, 1), m2 = LD(mul, 2), m3 = LD(mul, 3);
		__m256i a0 = LD(add, 0), a1 = LD(add, 1), a2 = LD(add, 2), a3 = LD(add, 3);
		__m256i s0 = _mm256_set1_epi32(-1), s1 = s0, s2 = s0, s3 = s0;
		for (size_t t = 0; t < n; t++) {
			__m256i x = _mm256_set1_epi32((int)keys[t]);
			PERM(0);
			PERM(1);
			PERM(2);
			PERM(3);
		}
		_mm256_storeu_si256((__m256i *)(sig + i0), s0);
		_mm256_storeu_si256((__m256i *)(sig + i0 + 8), s1);
		_mm256_storeu_si256((__m256i *)(sig + i0 + 16), s2);
		_mm256_storeu_si256((__m256i *)(sig + i0 + 24), s3);
	}
#undef LD
#undef PERM
}

/* ... and with AVX-512, 128 permutations at a time: their minima, multipliers and addends
 * fill 24 of the 32 registers, and each token costs half the instructions of AVX2's. The
 * same arithmetic lane by lane, so the same signature. */
__attribute__((target("avx512f"))) static void minhash_sign_avx512(const uint32_t *mul,
								  const uint32_t *add,
								  const uint32_t *keys, size_t n,
								  uint32_t *sig)
{
#define LD(v, j) _mm512_loadu_si512((const void *)((v) + i0 + 16 * (j)))
#define PERM(j) s##j = _mm512_min_epu32(s##j, _mm512_add_epi32(_mm512_mullo_epi32(m##j, x), a##j))
#define ST(j) _mm512_storeu_si512((void *)(sig + i0 + 16 * (j)), s##j)
	_Static_assert(DOC_MINHASH_PERM % 128 == 0, "128 permutations a pass");
	for (int i0 = 0; i0 < DOC_MINHASH_PERM; i0 += 128) {
		__m512i m0 = LD(mul, 0), m1 = LD(mul, 1), m2 = LD(mul, 2), m3 = LD(mul, 3);
		__m512i m4 = LD(mul, 4), m5 = LD(mul, 5), m6 = LD(mul, 6), m7 = LD(mul, 7);
		__m512i a0 = LD(add, 0), a1 = LD(add, 1), a2 = LD(add, 2), a3 = LD(add, 3);
		__m512i a4 = LD(add, 4), a5 = LD(add, 5), a6 = LD(add, 6), a7 = LD(add, 7);
		__m512i s0 = _mm512_set1_epi32(-1), s1 = s0, s2 = s0, s3 = s0;
		__m512i s4 = s0, s5 = s0, s6 = s0, s7 = s0;
		for (size_t t = 0; t < n; t++) {
			__m512i x = _mm512_set1_epi32((int)keys[t]);
			PERM(0);
			PERM(1);
			PERM(2);
			PERM(3);
			PERM(4);
			PERM(5);
			PERM(6);
			PERM(7);
		}
		ST(0);
		ST(1);
		ST(2);
		ST(3);
		ST(4);
		ST(5);
		ST(6);
		ST(7);
	}
#undef LD
#undef PERM
#undef ST
}

static int cpu_has_avx512(void)
{
	return __builtin_cpu_supports("avx512f");
}
#else
static int cpu_has_avx512(void)
{
	return 0;
}
#endif

static void sign(const struct docstats_ctx *c, uint32_t *sig)
{
#ifdef HAVE_X86_SIMD
	if (c->avx512 && !c->reference) {
		minhash_sign_avx512(c->mul, c->add, c->pkeys, c->set_n, sig);
		return;
	}
	if (c->simd && !c->reference) {
		minhash_sign_avx2(c->mul, c->add, c->pkeys, c->set_n, sig);
		return;
	}
#endif
	minhash_sign(c->mul, c->add, c->pkeys, c->set_n, sig);
}

/* The statistics, exact hash and flags from a finished scan. */
static void finish(struct docstats_ctx *c, const struct scan *s, struct doc_stats *st,
		   unsigned char hash[16])
{
	static const char *const kw_autogen[] = { "auto-generated", "autogenerated",
						  "automatically generated", NULL };
	static const char *const kw_cfgtest[] = { "unit tests", "test file",
						  "configuration file", NULL };
	const unsigned char *p = s->p;
	size_t len = s->len;
	struct lines L = s->L;
	uint64_t n_chars = len - s->extra;
	if (L.start < n_chars)
		line_end(&L, n_chars, len);

	memset(st, 0, sizeof *st);
	st->n_chars = n_chars;
	st->n_lines = L.n;
	st->line_sum = L.sum;
	st->line_max = L.max;
	st->n_alnum = s->n_alnum;
	st->n_newlines = s->n_nl;
	st->n_eq = s->n_eq;
	st->n_config = s->n_config;
	st->n_test = s->n_test;
	st->n_tokens = c->set_n > UINT32_MAX ? UINT32_MAX : (uint32_t)c->set_n;

	XXH128_canonical_t canon;
	XXH128_canonicalFromHash(&canon, XXH3_128bits(c->strip, s->k));
	memcpy(hash, canon.digest, 16);

	/* the first 5 lines, lower-cased (ASCII: no other letter lowers into these phrases),
	 * into the strip buffer, which the hash no longer needs */
	unsigned char *strip = c->strip;
	size_t head = L.end5 < len ? L.end5 : len;
	for (size_t j = 0; j < head; j++)
		strip[j] = p[j] | (p[j] >= 'A' && p[j] <= 'Z' ? 0x20 : 0);
	if (contains_any(strip, head, kw_autogen))
		st->flags |= DOC_AUTOGENERATED;
	/* Python compares the running counts after each line with int(0.05 * newlines); the
	 * counts only grow, so comparing the totals decides the same. */
	uint64_t thr = (uint64_t)(0.05 * (double)s->n_nl);
	if (contains_any(strip, head, kw_cfgtest) || s->n_config > thr || s->n_test > thr)
		st->flags |= DOC_CONFIG_OR_TEST;
	if (!s->keyword)	/* Python: no line holds one, so true for empty content too */
		st->flags |= DOC_NO_KEYWORDS;
	if (s->invalid)
		st->flags |= DOC_INVALID_UTF8;
}

void docstats_compute(struct docstats_ctx *c, const void *content, size_t len,
		      struct doc_stats *st, unsigned char hash[16],
		      unsigned char minhash[4 * DOC_MINHASH_PERM], uint32_t *n_minhash)
{
	struct scan s = { .p = content, .len = len, .L = { .end5 = len } };
	ensure_cap(c, len);
	if (c->tokens)
		set_clear(c, len);
#ifdef HAVE_X86_SIMD
	if (c->simd && !c->reference)
		scan_avx2(c, &s);
#endif
	scan_bytes(c, &s);	/* all of it, or what the blocks left: fewer than 32 bytes */
	finish(c, &s, st, hash);

	if (!c->tokens) {
		*n_minhash = 0;
		st->flags |= DOC_NO_MINHASH;
	} else if (c->set_n >= DOCSTATS_MIN_TOKENS) {
		uint32_t sig[DOC_MINHASH_PERM];
		set_keys(c, content, len, s.ds_done);
		sign(c, sig);
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
