/* fuzz-jsonl: libFuzzer entry point for the JSON-lines reader and parser, and for the
 * document statistics. The input goes through the line reader (so gzip/zstd magic bytes reach
 * the decompressors too, with a small line limit to exercise skipping), every line through
 * jsonl_parse, and every text found (and each raw line) through docstats_compute; the
 * promises of each (offsets inside the line, bounded counts) are checked. */
#include "base/die.h"
#include "dedup/docstats.h"
#include "input/jsonl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct buf content, meta;
	static struct docstats_ctx ds;
	static int ds_ready;
	struct doc_stats st;
	unsigned char hash[16], mh[4 * DOC_MINHASH_PERM];
	uint32_t n_mh;
	if (!ds_ready) {
		docstats_init(&ds);
		ds_ready = 1;
	}
	cp_quiet = 1;
	docstats_compute(&ds, data, size, &st, hash, mh, &n_mh);
	if (st.n_chars > size || st.n_alnum > st.n_chars || st.line_max > st.n_chars ||
	    st.line_sum > st.n_chars || st.n_lines > st.n_chars ||
	    (n_mh && st.n_tokens < DOCSTATS_MIN_TOKENS))
		abort();
	struct jsonl_reader *r = jsonl_open_mem(data, size, "fuzz", 4096);
	if (!r)
		return 0;
	const char *line;
	size_t len;
	int k;
	while ((k = jsonl_next(r, &line, &len)) > 0) {
		if (k != 1)
			continue;
		struct jsonl_error err;
		int p = jsonl_parse(line, len, "content", &content, &meta, &err);
		if (p < 0 && (!err.why || err.offset > len))
			abort();
		if (p == 0 && meta.len && (meta.p[0] != '{' || meta.p[meta.len - 1] != '}'))
			abort();
		if (p == 0 && content.len > len)
			abort();
		if (p == 0)
			docstats_compute(&ds, content.p, content.len, &st, hash, mh, &n_mh);
	}
	jsonl_close(r);
	return 0;
}
