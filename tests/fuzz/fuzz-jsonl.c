/* fuzz-jsonl: libFuzzer entry point for the JSON-lines reader and parser. The input goes
 * through the line reader (so gzip/zstd magic bytes reach the decompressors too, with a small
 * line limit to exercise skipping) and every line through jsonl_parse; the parser's promises
 * (offsets inside the line, metadata only on success) are checked. */
#include "die.h"
#include "jsonl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct buf content, meta;
	cp_quiet = 1;
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
	}
	jsonl_close(r);
	return 0;
}
