/* test-gpt2-data: test data for cp-pack and cp-train, and a self-test of the sequence record.
 * Without arguments it is a TAP test; with
 *   tokens OUT VOCAB NDOCS SEED MAXLEN
 * it writes a token shard (as cp-tokenize would) of NDOCS documents of 1..MAXLEN ids each,
 * <|endoftext|> = VOCAB-1 last. The ids count upwards from a random start, so a model can
 * learn them: the trainer tests see the loss fall. */
#include "base/buf.h"
#include "shard/seqrec.h"
#include "shard/shard.h"
#include "tap.h"
#include "shard/tokrec.h"

#include <stdlib.h>

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

static int write_tokens(const char *out, uint64_t vocab, uint64_t ndocs, uint64_t seed,
			uint64_t maxlen)
{
	uint64_t param[2] = { vocab, tokrec_width(vocab) };
	struct shard_writer *w = shard_create(out, SHARD_TOKENS, param);
	if (!w)
		return 1;
	struct buf b = { 0 };
	uint32_t *ids = malloc((maxlen + 1) * sizeof(uint32_t));
	for (uint64_t d = 0; d < ndocs; d++) {
		uint64_t r = mix(seed * 1000003 + d);
		size_t n = 1 + (size_t)(r % maxlen);
		uint32_t start = (uint32_t)((r >> 32) % (vocab - 1));
		for (size_t i = 0; i + 1 < n; i++)
			ids[i] = (uint32_t)((start + i) % (vocab - 1));
		ids[n - 1] = (uint32_t)(vocab - 1);
		buf_reset(&b);
		tokrec_encode(&b, mix(r), ids, n, tokrec_width(vocab));
		if (shard_write(w, b.p, b.len)) {
			shard_abort(w);
			return 1;
		}
	}
	free(ids);
	buf_free(&b);
	return shard_close(w) ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "tokens"))
		return write_tokens(argv[2], strtoull(argv[3], NULL, 10), strtoull(argv[4], NULL, 10),
				    strtoull(argv[5], NULL, 10), strtoull(argv[6], NULL, 10));
	unsigned char rec[8] = { 1, 0, 2, 0, 0xff, 0xff, 3, 0 };
	uint32_t ids[4];
	ok(seqrec_decode(rec, 8, 65536, 4, ids) == 0 && ids[2] == 65535 && ids[3] == 3,
	   "2-byte sequence record decodes");
	ok(seqrec_decode(rec, 8, 1000, 4, ids) == -1, "an id outside the vocabulary is refused");
	ok(seqrec_decode(rec, 7, 65536, 4, ids) == -1, "a record of the wrong length is refused");
	unsigned char r4[8] = { 1, 0, 1, 0, 2, 0, 0, 0 };
	ok(seqrec_decode(r4, 8, 70000, 2, ids) == 0 && ids[0] == 65537 && ids[1] == 2,
	   "4-byte sequence record decodes");
	ok(seqrec_width(65536) == 2 && seqrec_width(65537) == 4, "id width follows the vocabulary");
	return done_testing();
}
