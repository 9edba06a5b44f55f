/* test-shard.c: the shard container: round trips, random access, and every corruption a
 * reader must refuse (each single flipped byte, each truncation, wrong kind, newer version). */
#include "scratch.h"
#include "tap.h"
#include "base/die.h"
#include "shard/doc.h"
#include "base/io.h"
#include "shard/shard.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

static char dir[] = "/tmp/cp-test-shard.XXXXXX";

static char *path_of(const char *name)
{
	static char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	return p;
}

static void make_record(unsigned i, unsigned char *buf, size_t *len)
{
	*len = (i * 7919u) % 300;	/* 0..299 bytes, some empty */
	for (size_t k = 0; k < *len; k++)
		buf[k] = (unsigned char)(i * 31 + k);
}

/* Records 0..N-1 in blocks of about BLOCK bytes at LEVEL, compressed on THREADS threads. */
static int write_shard_at(const char *path, unsigned n, size_t block, uint32_t kind, int level,
			  int threads)
{
	uint64_t param[2] = { 42, 7 };
	struct shard_writer *w = shard_create(path, kind, param);
	if (!w)
		return -1;
	shard_set_block_size(w, block);
	shard_set_level(w, level);
	shard_set_threads(w, threads);
	unsigned char rec[300];
	size_t len;
	for (unsigned i = 0; i < n; i++) {
		make_record(i, rec, &len);
		if (shard_write(w, rec, len))
			return -1;
	}
	return shard_close(w);
}

static int write_shard(const char *path, unsigned n, size_t block, uint32_t kind)
{
	return write_shard_at(path, n, block, kind, 3, 1);
}

/* 1 when every record reads back in order and the end verifies */
static int read_all_ok(const char *path, unsigned n)
{
	struct shard_reader *r = shard_open(path, SHARD_DOCS);
	if (!r)
		return 0;
	const void *p;
	size_t len, want;
	unsigned char rec[300];
	unsigned i = 0;
	int ret;
	while ((ret = shard_next(r, &p, &len)) == 1) {
		make_record(i, rec, &want);
		if (len != want || (len && memcmp(p, rec, len)))
			break;
		i++;
	}
	shard_close_reader(r);
	return ret == 0 && i == n;
}

/* 1 when a reader reports an error somewhere (open or reading) */
static int rejected(const char *path)
{
	struct shard_reader *r = shard_open(path, SHARD_DOCS);
	if (!r)
		return 1;
	const void *p;
	size_t len;
	int ret;
	while ((ret = shard_next(r, &p, &len)) == 1)
		;
	shard_close_reader(r);
	return ret < 0;
}

static unsigned char *slurp(const char *path, size_t *n)
{
	return (unsigned char *)read_file(path, n);
}

static void spit(const char *path, const unsigned char *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write_full(fd, p, n) || close(fd))
		abort();
}

/* read a shard through a pipe, so the reader cannot seek or look at the footer first */
static int pipe_rejected(const unsigned char *p, size_t n)
{
	int fds[2];
	if (pipe(fds))
		abort();
	pid_t pid = fork();
	if (!pid) {
		close(fds[0]);
		write_full(fds[1], p, n);
		_exit(0);
	}
	close(fds[1]);
	char dev[64];
	snprintf(dev, sizeof dev, "/dev/fd/%d", fds[0]);
	int r = rejected(dev);
	close(fds[0]);
	waitpid(pid, NULL, 0);
	return r;
}

static void set_header_field(unsigned char *h, int off, unsigned v)
{
	h[off] = (unsigned char)v;
	h[off + 1] = (unsigned char)(v >> 8);
	uint64_t sum = XXH3_64bits(h, 56);
	for (int k = 0; k < 8; k++)
		h[56 + k] = (unsigned char)(sum >> (8 * k));
}

/* 1 when the files at A and B hold the same bytes */
static int same_file(const char *a, const char *b)
{
	size_t na, nb;
	unsigned char *pa = slurp(a, &na), *pb = slurp(b, &nb);
	int same = pa && pb && na == nb && !memcmp(pa, pb, na);
	free(pa);
	free(pb);
	return same;
}

/* Blocks compressed on worker threads: the bytes of one thread's, at each level, with the
 * workers ahead of the writer or behind it (many small blocks, few large ones). */
static void test_threads(void)
{
	static const int levels[] = { 1, 3, -2 };
	static const size_t blocks[] = { 512, 100000 };
	char one[256];
	snprintf(one, sizeof one, "%s", path_of("one-thread.shard"));
	for (size_t l = 0; l < sizeof levels / sizeof *levels; l++)
		for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
			int same = !write_shard_at(one, 3000, blocks[b], SHARD_DOCS, levels[l], 1);
			for (int t = 2; t <= 5; t += 3) {
				const char *p = path_of("threads.shard");
				same = same && !write_shard_at(p, 3000, blocks[b], SHARD_DOCS, levels[l], t) &&
				       same_file(one, p) && read_all_ok(p, 3000);
			}
			ok(same, "level %d, %zu-byte blocks: 2 and 5 threads write one thread's bytes",
			   levels[l], blocks[b]);
		}
	const char *p = path_of("threads-empty.shard");
	ok(!write_shard_at(p, 0, 4096, SHARD_DOCS, 1, 4) && read_all_ok(p, 0),
	   "an empty shard on 4 threads");
}

/* Records of SIZE(i) bytes from SRC + i, written by shard_write or by shard_write_ref with
 * shard_release every RELEASE records, after which the source is overwritten (what a
 * caller's reuse of its buffer does); -1 if the writer failed. */
static size_t ref_size(unsigned i)
{
	static const size_t big[] = { 4095, 4096, 131072 - 3, 131072, 131073, 300000, 600000 };
	return i % 5 == 4 ? big[i / 5 % 7] : (i * 7919u) % 9000;
}

static int write_refs(const char *path, int level, int by_ref, unsigned release)
{
	unsigned char *src = malloc(600000 + 200);
	struct shard_writer *w = shard_create(path, SHARD_DOCS, NULL);
	int bad = !w;
	shard_set_level(w, level);
	for (unsigned i = 0; i < 200 && !bad; i++) {
		for (size_t k = 0; k < ref_size(i); k++)
			src[i + k] = (unsigned char)((i + k) * 2654435761u >> 11);
		bad = by_ref ? shard_write_ref(w, src + i, ref_size(i)) : shard_write(w, src + i, ref_size(i));
		if (by_ref && i % release == release - 1) {
			shard_release(w);
			memset(src, 0xa5, 600000 + 200);
		}
	}
	bad |= shard_close(w);
	free(src);
	return bad ? -1 : 0;
}

/* shard_write_ref: the bytes of shard_write at every level, records small and large (across
 * and beyond the 128 KiB of a raw zstd block), released now and then and at the end, to a
 * file and to a pipe. */
static void test_refs(void)
{
	char copied[256];
	snprintf(copied, sizeof copied, "%s", path_of("copied.shard"));
	static const int levels[] = { SHARD_LEVEL_STORE, 1 };
	static const unsigned releases[] = { 1, 7, 1000 };
	for (size_t l = 0; l < 2; l++) {
		int same = !write_refs(copied, levels[l], 0, 1);
		for (size_t r = 0; r < 3; r++) {
			const char *p = path_of("refs.shard");
			same = same && !write_refs(p, levels[l], 1, releases[r]) &&
			       same_file(copied, p);
		}
		struct shard_info info;
		ok(same && !shard_verify(copied, SHARD_DOCS, &info) && info.n_records == 200,
		   "level %d: records by reference make the bytes of records copied", levels[l]);
	}
	int pfd[2];
	if (pipe(pfd))
		return;
	pid_t pid = fork();
	if (!pid) {	/* the reader: the pipe's bytes to a file */
		close(pfd[1]);
		int out = open(path_of("piped.shard"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		char b[65536];
		ssize_t n;
		while ((n = read(pfd[0], b, sizeof b)) > 0)
			if (write_full(out, b, (size_t)n))
				_exit(1);
		_exit(0);
	}
	close(pfd[0]);
	fflush(stdout);
	int saved = dup(1);	/* standard output the pipe while the shard is written */
	dup2(pfd[1], 1);
	close(pfd[1]);
	int wrote = !write_refs("-", SHARD_LEVEL_STORE, 1, 7);
	dup2(saved, 1);
	close(saved);
	int st;
	waitpid(pid, &st, 0);
	write_refs(copied, SHARD_LEVEL_STORE, 0, 1);
	size_t na, nb;
	unsigned char *a = slurp(copied, &na), *b = slurp(path_of("piped.shard"), &nb);
	/* a file's header has its counts filled in at the end, a pipe's cannot */
	ok(wrote && a && b && na == nb && na > 64 && !memcmp(a + 64, b + 64, na - 64),
	   "... and through a pipe (writev), the file's bytes after the header");
	free(a);
	free(b);
}

/* a large record (pseudo-random token-like bytes, compressible some) and small ones around
 * it, the large one made in place with shard_write_room when ROOM; threads T */
static int write_large(const char *path, const unsigned char *big, size_t n, int threads, int room)
{
	uint64_t param[2] = { 42, 7 };
	struct shard_writer *w = shard_create(path, SHARD_DOCS, param);
	if (!w)
		return -1;
	shard_set_threads(w, threads);
	unsigned char *p;
	int bad = shard_write(w, "before", 6);
	if (room && (p = shard_write_room(w, n)))
		memcpy(p, big, n);
	else
		bad |= room || shard_write(w, big, n);
	bad |= shard_write(w, "after", 5) || shard_write_room(w, 0) == NULL;
	return shard_close(w) || bad ? -1 : 0;
}

/* 1 when PATH holds "before", BIG, "after" and an empty record */
static int read_large(const char *path, const unsigned char *big, size_t n)
{
	struct shard_reader *r = shard_open(path, SHARD_DOCS);
	const void *p;
	size_t len;
	int good = r && shard_next(r, &p, &len) == 1 && len == 6 && !memcmp(p, "before", 6) &&
		   shard_next(r, &p, &len) == 1 && len == n && !memcmp(p, big, n) &&
		   shard_next(r, &p, &len) == 1 && len == 5 && !memcmp(p, "after", 5) &&
		   shard_next(r, &p, &len) == 1 && len == 0 && shard_next(r, &p, &len) == 0;
	if (r)
		shard_close_reader(r);
	return good;
}

/* A block of 16 MiB or more is compressed by zstd's workers: the same bytes for 1, 2 and 4
 * threads, made in place or copied, and it reads back. */
static void test_large_block(void)
{
	size_t n = (17u << 20) + 3;
	unsigned char *big = malloc(n);
	uint32_t x = 12345;
	for (size_t i = 0; i < n; i += 2) {
		x = x * 1103515245u + 12345u;
		uint32_t id = (x >> 16) % 3000;	/* ids of a small vocabulary, 2 bytes each */
		big[i] = (unsigned char)id;
		if (i + 1 < n)
			big[i + 1] = (unsigned char)(id >> 8);
	}
	char one[256];
	snprintf(one, sizeof one, "%s", path_of("large-1.shard"));
	int same = !write_large(one, big, n, 1, 0) && read_large(one, big, n);
	ok(same, "a record of %zu bytes and small ones around it read back", n);
	for (int t = 1; t <= 4; t *= 2) {
		const char *p = path_of("large-t.shard");
		same = !write_large(p, big, n, t, 1) && same_file(one, p) && read_large(p, big, n);
		ok(same, "%d thread%s, the record made in place: the same bytes", t, t > 1 ? "s" : "");
	}
	size_t sz;
	unsigned char *f = slurp(one, &sz);
	ok(f && sz < n, "  and it was compressed (%zu bytes to %zu)", n, sz);
	free(f);
	free(big);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	cp_quiet = 1;
	char big[256], small[256], empty[256], bad[256];
	snprintf(big, sizeof big, "%s", path_of("big.shard"));
	snprintf(small, sizeof small, "%s", path_of("small.shard"));
	snprintf(empty, sizeof empty, "%s", path_of("empty.shard"));
	snprintf(bad, sizeof bad, "%s", path_of("bad.shard"));

	ok(write_shard(big, 5000, 4096, SHARD_DOCS) == 0, "write 5000 records in 4 KiB blocks");
	ok(read_all_ok(big, 5000), "read them back in order, end verified");
	struct shard_info info;
	ok(shard_verify(big, SHARD_DOCS, &info) == 0 && info.n_records == 5000 && info.n_blocks > 100,
	   "verify: 5000 records in %llu blocks", (unsigned long long)info.n_blocks);
	ok(info.param[0] == 42 && info.param[1] == 7, "kind parameters kept");

	/* random access: every 97th record, and the last */
	struct shard_reader *r = shard_open(big, SHARD_DOCS);
	int seek_ok = r != NULL;
	for (unsigned i = 0; seek_ok && i < 5000; i += (i + 97 < 5000 ? 97 : 4999 - i ? 4999 - i : 1)) {
		const void *p;
		size_t len, want;
		unsigned char rec[300];
		make_record(i, rec, &want);
		seek_ok = !shard_seek(r, i) && shard_next(r, &p, &len) == 1 && len == want &&
			  (!len || !memcmp(p, rec, len));
	}
	ok(seek_ok, "shard_seek reaches records anywhere");
	ok(r && shard_seek(r, 5000) < 0, "seek past the end is refused");
	shard_close_reader(r);

	ok(write_shard(empty, 0, 4096, SHARD_DOCS) == 0 && read_all_ok(empty, 0), "empty shard round trip");
	test_threads();
	test_refs();
	test_large_block();
	ok(shard_open(empty, SHARD_TOKENS) == NULL, "wrong kind refused");

	size_t n;
	unsigned char *orig = slurp(big, &n);
	unsigned char *h = malloc(n);
	memcpy(h, orig, n);
	set_header_field(h, 8, SHARD_VERSION + 1);
	spit(bad, h, n);
	ok(rejected(bad), "newer format version refused");
	memcpy(h, orig, n);
	h[0] ^= 1;
	spit(bad, h, n);
	ok(rejected(bad), "bad magic refused");
	free(h);
	free(orig);

	/* every single flipped byte and every truncation of a small shard is caught, from a
	 * file and from a pipe */
	ok(write_shard(small, 40, 1000, SHARD_DOCS) == 0, "small shard of 40 records");
	unsigned char *s = slurp(small, &n);
	unsigned char *m = malloc(n);
	size_t missed_flip = 0, missed_pipe = 0, missed_cut = 0, missed_cut_pipe = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(m, s, n);
		m[i] ^= 0x40;
		spit(bad, m, n);
		missed_flip += !rejected(bad);
		if (i % 7 == 0)
			missed_pipe += !pipe_rejected(m, n);
	}
	for (size_t cut = 0; cut < n; cut++) {
		spit(bad, s, cut);
		missed_cut += !rejected(bad);
		if (cut % 5 == 0)
			missed_cut_pipe += !pipe_rejected(s, cut);
	}
	is_int(missed_flip, 0, "every one of %zu flipped bytes refused (file)", n);
	is_int(missed_pipe, 0, "flipped bytes refused (pipe)");
	is_int(missed_cut, 0, "every truncation refused (file)");
	is_int(missed_cut_pipe, 0, "truncations refused (pipe)");
	memcpy(m, s, n);
	spit(bad, m, n);
	ok(!pipe_rejected(m, n), "the intact shard reads through a pipe");
	unsigned char *longer = malloc(n + 1);
	memcpy(longer, s, n);
	longer[n] = 0;
	spit(bad, longer, n + 1);
	ok(rejected(bad) && pipe_rejected(longer, n + 1), "trailing garbage refused");
	free(longer);
	free(m);
	free(s);

	/* a writer that never closes leaves only its hidden temporary */
	char unfinished[256];
	snprintf(unfinished, sizeof unfinished, "%s", path_of("unfinished.shard"));
	struct shard_writer *w = shard_create(unfinished, SHARD_DOCS, NULL);
	shard_write(w, "abc", 3);
	ok(access(unfinished, F_OK) != 0, "no file under the final name before close");
	shard_abort(w);
	ok(access(unfinished, F_OK) != 0, "abort leaves nothing");

	/* stored blocks (level 0): records of every size read back, across the 128 KiB raw
	 * blocks of a zstd frame, and each stored frame is one a zstd decoder takes */
	{
		const char *st = path_of("stored.shard");
		struct shard_writer *sw = shard_create(st, SHARD_DOCS, NULL);
		shard_set_level(sw, SHARD_LEVEL_STORE);
		shard_set_block_size(sw, 300000);
		size_t sizes[] = { 0, 1, 131071, 131072, 131073, 262144, 5, 400000 };
		size_t ns = sizeof sizes / sizeof *sizes;
		/* record i starts at big + i */
		unsigned char *big = malloc(400000 + ns);
		for (size_t k = 0; k < 400000 + ns; k++)
			big[k] = (unsigned char)(k * 2654435761u >> 13);
		int wrote = 1;
		for (size_t i = 0; i < ns; i++)
			wrote &= !shard_write(sw, big + i, sizes[i]);
		ok(wrote && !shard_close(sw), "a stored shard is written");
		struct shard_reader *sr = shard_open(st, SHARD_DOCS);
		const void *rp;
		size_t rl, i = 0;
		int good = sr != NULL;
		while (good && shard_next(sr, &rp, &rl) == 1) {
			good = i < ns && rl == sizes[i] && (!rl || !memcmp(rp, big + i, rl));
			i++;
		}
		ok(good && i == ns, "... and every record reads back");
		if (sr)
			shard_close_reader(sr);
		size_t sn;
		unsigned char *sb = slurp(st, &sn);
		/* the first block's frame: header at 64, frame after its 32-byte header */
		uint32_t raw_len = rd_u32le(sb + 64 + 16), clen = rd_u32le(sb + 64 + 20);
		unsigned char *out = malloc(raw_len + 1);
		size_t got = ZSTD_decompress(out, raw_len + 1, sb + 64 + 32, clen);
		ok(!ZSTD_isError(got) && got == raw_len && clen > raw_len,
		   "a stored block is a zstd frame of raw blocks (%u bytes for %u)", clen, raw_len);
		sb[64 + 32 + clen / 2] ^= 1;
		spit(st, sb, sn);
		ok(rejected(st), "a flipped byte in a stored block is refused");
		free(out);
		free(sb);
		free(big);
	}

	/* stored with the default block size: every block one raw zstd block of at most 128 KiB
	 * (written and read in place); a frame of another shape goes through the zstd decoder */
	{
		const char *st = path_of("stored-small.shard");
		struct shard_writer *sw = shard_create(st, SHARD_DOCS, NULL);
		shard_set_level(sw, SHARD_LEVEL_STORE);
		unsigned char rec[3000];
		int wrote = 1;
		for (unsigned i = 0; i < 500; i++) {
			memset(rec, (int)(i & 0xff), sizeof rec);
			wrote &= !shard_write(sw, rec, i * 7 % 3000);
		}
		ok(wrote && !shard_close(sw), "a stored shard of 500 small records is written");
		struct shard_reader *sr = shard_open(st, SHARD_DOCS);
		const void *rp;
		size_t rl;
		unsigned i = 0;
		int good = sr != NULL;
		while (good && shard_next(sr, &rp, &rl) == 1) {
			memset(rec, (int)(i & 0xff), sizeof rec);
			good = rl == i * 7 % 3000 && !memcmp(rp, rec, rl);
			i++;
		}
		ok(good && i == 500, "... every record reads back");
		if (sr)
			shard_close_reader(sr);
		size_t sn, at = 64, blocks = 0;
		unsigned char *sb = slurp(st, &sn);
		int shaped = 1;
		while (at + 32 <= sn && rd_u32le(sb + at) == rd_u32le(sb + 64)) {	/* block magic */
			uint32_t raw_len = rd_u32le(sb + at + 16), clen = rd_u32le(sb + at + 20);
			const unsigned char *f = sb + at + 32;
			shaped &= raw_len <= 131072 && clen == raw_len + 12 && f[4] == 0xa0 &&
				  (f[9] | f[10] << 8 | (uint32_t)f[11] << 16) == (raw_len << 3 | 1);
			blocks++;
			at += 32 + clen;
		}
		ok(shaped && blocks >= 6, "... in %zu blocks, each a frame of one raw block of at most "
		   "128 KiB", blocks);
		/* the first block's raw block made an RLE block of the same size, checksum mended:
		 * a zstd frame still, but of other bytes, which no reader may take for the records */
		unsigned char *f = sb + 64 + 32;
		uint32_t raw_len = rd_u32le(sb + 64 + 16), clen = rd_u32le(sb + 64 + 20);
		f[9] |= 2;	/* block type 1: RLE */
		uint64_t sum = XXH3_64bits_withSeed(f, clen, XXH3_64bits(sb + 64, 24));
		for (int k = 0; k < 8; k++)
			sb[64 + 24 + k] = (unsigned char)(sum >> 8 * k);
		spit(st, sb, sn);
		sr = shard_open(st, SHARD_DOCS);
		int same = sr != NULL;
		for (i = 0; same && i < 500; i++) {
			memset(rec, (int)(i & 0xff), sizeof rec);
			same = shard_next(sr, &rp, &rl) == 1 && rl == i * 7 % 3000 && !memcmp(rp, rec, rl);
		}
		ok(!same, "a block of another frame shape is decoded by zstd, not read in place "
		   "(%u raw bytes)", raw_len);
		if (sr)
			shard_close_reader(sr);
		free(sb);
	}

	/* documents encode and decode */
	struct doc d = { .id = 7, .origin = "a/b.py", .origin_len = 6, .meta = "{\"x\":1}", .meta_len = 7,
			 .content = "x = 1\n", .content_len = 6 };
	d.st.n_chars = 6;
	d.st.n_lines = 1;
	d.st.flags = DOC_NO_KEYWORDS;
	struct buf b = { 0 };
	doc_encode(&b, &d);
	struct doc e;
	ok(!doc_decode(b.p, b.len, &e) && e.id == 7 && e.content_len == 6 && !memcmp(e.content, "x = 1\n", 6) &&
	   e.st.flags == DOC_NO_KEYWORDS && e.origin_len == 6, "document record round trip");
	int bad_decodes = 0;
	for (size_t cut = 0; cut < b.len; cut++)
		bad_decodes += doc_decode(b.p, cut, &e) == 0;
	is_int(bad_decodes, 0, "every truncated document record refused");
	buf_free(&b);

	/* without its content: the size kept, no bytes, and none may follow */
	{
		struct doc n = d;
		n.st.flags |= DOC_NO_CONTENT;
		n.size = 6;
		struct buf nb = { 0 }, hb = { 0 };
		doc_encode(&nb, &n);
		doc_encode_head(&hb, &n);
		ok(nb.len == hb.len && !memcmp(nb.p, hb.p, nb.len),
		   "a record without content is its head alone");
		ok(!doc_decode(nb.p, nb.len, &e) && e.size == 6 && e.content_len == 0 &&
		   !strcmp(e.content, "") && (e.st.flags & DOC_NO_CONTENT) && e.id == 7,
		   "... and decodes with its size, content empty");
		buf_put(&nb, "x", 1);
		ok(doc_decode(nb.p, nb.len, &e) == -1, "... refused with bytes after it");
		struct buf fb = { 0 };
		doc_encode(&fb, &d);
		ok(!doc_decode(fb.p, fb.len, &e) && e.size == 6 && e.content_len == 6,
		   "a full record's size is its content's length");
		buf_free(&nb);
		buf_free(&hb);
		buf_free(&fb);
	}

	/* the head alone, then the content: the same bytes as doc_encode, within the bound even
	 * with every number at its largest */
	{
		static unsigned char mh[4 * DOC_MINHASH_PERM];
		memset(mh, 0xff, sizeof mh);
		struct doc m = d;
		m.st = (struct doc_stats){ UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
					   UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX,
					   UINT64_MAX, UINT32_MAX & ~(uint32_t)DOC_NO_CONTENT,
					   UINT32_MAX };
		m.n_minhash = DOC_MINHASH_PERM;
		m.minhash = mh;
		m.content_len = SIZE_MAX;	/* the head reads only its length */
		struct buf head = { 0 }, whole = { 0 };
		doc_encode_head(&head, &m);
		size_t bound = doc_head_bound(m.origin_len, m.meta_len);
		ok(head.len <= bound, "a record's head of %zu bytes is within doc_head_bound (%zu)",
		   head.len, bound);
		m.content_len = d.content_len;
		buf_reset(&head);
		doc_encode_head(&head, &m);
		buf_put(&head, m.content, m.content_len);
		doc_encode(&whole, &m);
		ok(head.len == whole.len && !memcmp(head.p, whole.p, head.len),
		   "head + content = doc_encode");
		buf_free(&head);
		buf_free(&whole);
	}

	scratch_remove(dir);
	return done_testing();
}
