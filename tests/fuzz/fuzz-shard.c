/* fuzz-shard: libFuzzer target for the shard reader. The input bytes become a file (a memfd
 * opened through /proc/self/fd, so the seekable path with the footer index is taken); every
 * record is pulled and, for documents, decoded and touched; then a seek through the index.
 * Anything but a clean accept or a clean reject (crash, leak, UB) is a finding.
 * Run: make fuzz && build/fuzz/fuzz-shard -max_total_time=60 "$(mktemp -d)" tests/fuzz/seed-shard
 * (new inputs go to the first, writable directory; the seeds stay untouched) */
#include "base/die.h"
#include "shard/doc.h"
#include "shard/shard.h"

#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

static void drain(const char *path)
{
	struct shard_reader *r = shard_open(path, SHARD_ANY);
	if (!r)
		return;
	const void *rec;
	size_t len;
	uint64_t n = 0;
	while (shard_next(r, &rec, &len) == 1 && n++ < 1000000) {
		struct doc d;
		if (shard_get_info(r)->kind == SHARD_DOCS && !doc_decode(rec, len, &d)) {
			/* touch what the decoder points at, so a bad bound shows under ASan */
			volatile unsigned char s = 0;
			for (size_t i = 0; i < d.content_len; i++)
				s ^= (unsigned char)d.content[i];
			for (size_t i = 0; i < d.origin_len; i++)
				s ^= (unsigned char)d.origin[i];
			for (uint32_t i = 0; i < d.n_minhash; i++)
				s ^= (unsigned char)doc_minhash(&d, i);
			(void)s;
		}
	}
	/* a seek into the middle exercises the footer index */
	if (shard_seek(r, 1) == 0)
		shard_next(r, &rec, &len);
	shard_close_reader(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cp_quiet = 1;
	int fd = memfd_create("fuzz-shard", MFD_CLOEXEC);
	if (fd < 0)
		return 0;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return 0;
	}
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	drain(path);
	close(fd);
	return 0;
}
