/* shard.c: writer and reader of the shard container (format: man/cp-shard.5). */
#include "shard/shard.h"
#include "shard/set.h"
#include "base/atomic.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>
#include <zstd_errors.h>

static const unsigned char shard_magic[8] = { 0x89, 'C', 'P', 'S', '\r', '\n', 0x1a, '\n' };
static const unsigned char footer_magic[8] = { 'C', 'P', 'S', 'E', 'N', 'D', '1', '\n' };
#define HDR_SIZE 64
#define BLK_HDR_SIZE 32
#define END_SIZE 48
#define FOOTER_SIZE 32
#define BLK_MAGIC 0x314b4c42u	/* "BLK1" */
#define END_MAGIC 0x31444e45u	/* "END1" */
#define FLAG_COUNTS 1u		/* header counts are filled in */
/* No record or block may exceed this: it bounds what a corrupt length can make us allocate. */
#define MAX_BLOCK_RAW (1u << 30)

const char *shard_kind_name(uint32_t kind)
{
	switch (kind) {
	case SHARD_DOCS: return "documents";
	case SHARD_TOKENS: return "tokens";
	case SHARD_SEQS: return "sequences";
	default: return "unknown";
	}
}

static void hdr_pack(unsigned char h[HDR_SIZE], const struct shard_info *in)
{
	memset(h, 0, HDR_SIZE);
	memcpy(h, shard_magic, 8);
	h[8] = (unsigned char)in->version;
	h[9] = (unsigned char)(in->version >> 8);
	h[10] = (unsigned char)in->kind;
	h[11] = (unsigned char)(in->kind >> 8);
	wr_u32le(h + 12, in->flags);
	wr_u64le(h + 16, in->n_records);
	wr_u64le(h + 24, in->n_blocks);
	wr_u64le(h + 32, in->raw_bytes);
	wr_u64le(h + 40, in->param[0]);
	wr_u64le(h + 48, in->param[1]);
	wr_u64le(h + 56, XXH3_64bits(h, 56));
}

/* A pipe of 1 MiB instead of 64 KiB: the stages on its two ends trade whole blocks, not
 * sixteen pieces of each, and switch in and out of the kernel that much less. Best effort:
 * the system limit (/proc/sys/fs/pipe-max-size) may refuse it. */
static void pipe_widen(int fd)
{
	struct stat st;
	if (!fstat(fd, &st) && S_ISFIFO(st.st_mode))
		(void)fcntl(fd, F_SETPIPE_SZ, 1 << 20);
}

/* ------------------------------------------------------------------ writer */

struct blk_pool;

struct shard_writer {
	char *path;
	struct atomic_file out;	/* the temporary of a named file (out.tmp NULL for stdout) */
	int fd, seekable;
	int sync;		/* the file is synced at the end: start its writeback early */
	struct shard_info info;
	struct buf raw;		/* records of the block being filled */
	uint32_t blk_records;
	size_t block_size;
	int level, threads;
	ZSTD_CCtx *cctx;
	struct buf comp;
	struct blk_pool *pool;	/* threads > 1: blocks compressed on workers */
	struct buf index;	/* u64 offset, u64 first record, per block */
	XXH3_state_t *chain;	/* over every block checksum, in order */
	uint64_t offset;
	uint64_t flushed;	/* a file's bytes up to here are on their way to the disk */
	int failed;
	/* shard_write_ref's records in the block being filled, in order, each after the first
	 * AT bytes of w->raw; REF_LEN: their bytes */
	struct wref { const unsigned char *p; size_t len, at; } *refs;
	size_t n_refs, cap_refs, ref_len;
	struct iovec *iov;	/* a block by reference as writev takes it */
	size_t cap_iov;
	XXH3_state_t *sum;	/* its checksum, over the pieces */
	int room;		/* the last record is shard_write_room's, filled by the next call */
	struct shard_spill *spill;	/* blocks go there, for another process to assemble */
	/* a spill's blocks to compress once the turn's note is out (shard_spill_flush) */
	struct pend { struct buf raw; uint32_t n_records; uint64_t first; } *pend;
	size_t n_pend, cap_pend;
};

/* A process's blocks for shards that rank 0 assembles (shard.h): the file, and EV: 5 u64 an
 * event (turn, kind, then a block's offset and length, or a shard's end's records and raw
 * bytes). */
struct shard_spill {
	struct atomic_file f;
	uint64_t off, seq;
	struct buf ev;
	int failed;
};

enum { EV_BLOCK, EV_END };

static void raw_start(struct shard_writer *w);

struct shard_writer *shard_create(const char *path, uint32_t kind, const uint64_t param[2])
{
	struct shard_writer *w = xcalloc(1, sizeof *w);
	w->path = xstrdup(path);
	if (!strcmp(path, "-")) {
		refuse_tty(1, "shard");
		w->fd = 1;
		pipe_widen(1);
	} else {
		if (atomic_open(&w->out, path)) {
			free(w->path);
			free(w);
			return NULL;
		}
		w->fd = w->out.fd;
		w->seekable = 1;
		/* every block and the footer are checksummed and a set's manifest holds each
		 * shard's size and footer: a shard a crash cut short is refused, and its stage
		 * remakes it; waiting for the disk (bench/dedup.sh's CP_SYNC=1 rows say what
		 * it costs) is for CP_SYNC=1 (man/cp-shard.5) */
		w->out.no_sync = 1;
		w->sync = atomic_sync_all();
	}
	w->info.version = SHARD_VERSION;
	w->info.kind = kind;
	if (param) {
		w->info.param[0] = param[0];
		w->info.param[1] = param[1];
	}
	w->block_size = 1 << 20;
	w->level = 3;
	w->threads = 1;
	raw_start(w);
	w->chain = XXH3_createState();
	XXH3_64bits_reset(w->chain);

	unsigned char h[HDR_SIZE];
	hdr_pack(h, &w->info);
	if (write_full(w->fd, h, HDR_SIZE)) {
		error_errno("cannot write '%s'", path);
		w->failed = 1;
	}
	w->offset = HDR_SIZE;
	return w;
}

void shard_set_block_size(struct shard_writer *w, size_t bytes)
{
	w->block_size = bytes ? bytes : 1;
}

void shard_set_level(struct shard_writer *w, int level)
{
	w->level = level;
}

void shard_set_threads(struct shard_writer *w, int threads)
{
	if (!w->pool)
		w->threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
}

int shard_auto_level(const char *path, int given, int dflt)
{
	struct stat st;
	if (given != SHARD_LEVEL_UNSET)
		return given;
	if (!strcmp(path, "-") && !fstat(1, &st) && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
		return SHARD_LEVEL_STORE;
	return dflt;
}

uint64_t shard_written(const struct shard_writer *w)
{
	return w->info.n_records;
}

/* A file's written bytes are handed to the disk every WRITEBACK bytes (without waiting), so
 * that shard_close's fsync finds little left to wait for. */
#define WRITEBACK (8u << 20)

/* N bytes more written. */
static int advance(struct shard_writer *w, size_t n)
{
	w->offset += n;
	if (w->sync && w->offset - w->flushed >= WRITEBACK) {
		/* advice only: a file system that cannot start it early syncs all at the end */
		(void)sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->offset - w->flushed),
				      SYNC_FILE_RANGE_WRITE);
		w->flushed = w->offset;
	}
	return 0;
}

static int emit(struct shard_writer *w, const void *p, size_t n)
{
	if (w->failed)
		return -1;
	if (write_full(w->fd, p, n)) {
		w->failed = 1;
		return error_errno("cannot write '%s'", w->out.tmp ? w->out.tmp : "standard output");
	}
	return advance(w, n);
}

/* The N pieces of IOV (TOTAL bytes, none empty) written in order, as emit writes one. */
static int emitv(struct shard_writer *w, struct iovec *iov, size_t n, size_t total)
{
	if (w->failed)
		return -1;
	while (n) {
		ssize_t r = writev(w->fd, iov, n < IOV_MAX ? (int)n : IOV_MAX);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			w->failed = 1;
			if (!r)
				errno = EIO;
			return error_errno("cannot write '%s'",
					   w->out.tmp ? w->out.tmp : "standard output");
		}
		size_t got = (size_t)r;
		for (; n && got >= iov->iov_len; n--)
			got -= iov++->iov_len;
		if (got) {	/* a piece written in part: its rest next */
			iov->iov_base = (char *)iov->iov_base + got;
			iov->iov_len -= got;
		}
	}
	return advance(w, total);
}

/* A zstd frame that stores SRC in raw blocks (RFC 8878: single segment, 4-byte content size,
 * no checksum; our block checksum covers it). Any zstd decoder reads it back; it costs one
 * copy, which is all a shard crossing a pipe to the next stage on the same machine needs. */
#define STORE_BLOCK (128u << 10)	/* the format's largest block */
static size_t store_bound(size_t n)
{
	return 9 + 3 * (n / STORE_BLOCK + 1) + n;
}

static size_t zstd_store(unsigned char *dst, const unsigned char *src, size_t n)
{
	unsigned char *o = dst;
	wr_u32le(o, 0xFD2FB528u);		/* zstd frame magic */
	o[4] = 0x80 | 0x20;			/* 4-byte content size, single segment */
	wr_u32le(o + 5, (uint32_t)n);
	o += 9;
	size_t left = n;
	do {
		size_t b = left < STORE_BLOCK ? left : STORE_BLOCK;
		uint32_t bh = (uint32_t)b << 3 | (b == left);	/* raw block, last flag */
		o[0] = (unsigned char)bh;
		o[1] = (unsigned char)(bh >> 8);
		o[2] = (unsigned char)(bh >> 16);
		memcpy(o + 3, src, b);
		o += 3 + b;
		src += b;
		left -= b;
	} while (left);
	return (size_t)(o - dst);
}

/* w->raw keeps RAW_HEAD bytes free before the records: there a stored block of at most
 * STORE_BLOCK bytes gets its block header and the 12 bytes that make it a zstd frame of one
 * raw block, and goes out as it lies, without a copy (on a pipe, each copy of the stream
 * costs as much as the next stage's reading it). */
#define FRAME_HEAD 12	/* frame header (magic, descriptor, 4-byte content size), block header */
#define RAW_HEAD (BLK_HDR_SIZE + FRAME_HEAD)

static void raw_start(struct shard_writer *w)
{
	buf_reset(&w->raw);
	buf_grow(&w->raw, RAW_HEAD);
	w->raw.len = RAW_HEAD;
	w->n_refs = w->ref_len = 0;
}

/* The records' bytes in w->raw, and the size a block may grow to: one raw zstd block when
 * stored (a larger record makes a larger block, of several). */
static size_t raw_len(const struct shard_writer *w)
{
	return w->raw.len - RAW_HEAD + w->ref_len;
}

static size_t block_limit(const struct shard_writer *w)
{
	return w->level == SHARD_LEVEL_STORE && w->block_size > STORE_BLOCK ? STORE_BLOCK
									    : w->block_size;
}

/* Fill in the frame header of a stored block of N <= STORE_BLOCK bytes at F. */
static void store_head(unsigned char *f, size_t n)
{
	wr_u32le(f, 0xFD2FB528u);
	f[4] = 0x80 | 0x20;
	wr_u32le(f + 5, (uint32_t)n);
	uint32_t bh = (uint32_t)n << 3 | 1;	/* raw, last */
	f[9] = (unsigned char)bh;
	f[10] = (unsigned char)(bh >> 8);
	f[11] = (unsigned char)(bh >> 16);
}

/* Fill in the header at HDR of a block whose frame (CLEN bytes) follows it. */
static void blk_head(unsigned char *hdr, uint32_t n_records, uint64_t first, size_t raw,
		     size_t clen)
{
	wr_u32le(hdr, BLK_MAGIC);
	wr_u32le(hdr + 4, n_records);
	wr_u64le(hdr + 8, first);
	wr_u32le(hdr + 16, (uint32_t)raw);
	wr_u32le(hdr + 20, (uint32_t)clen);
	wr_u64le(hdr + 24, XXH3_64bits_withSeed(hdr + BLK_HDR_SIZE, clen, XXH3_64bits(hdr, 24)));
}

/* A block this large (a large record, such as a large file's tokens) is compressed by zstd's
 * own workers, so that it does not keep one thread busy while the others wait for the end:
 * their frame is the same for any number of them (one included) but not one thread's, so
 * every block this large goes to them whatever the writer's threads. */
#define MT_BLOCK (16u << 20)

/* SRC (N >= MT_BLOCK bytes) compressed by WORKERS of zstd's workers into DST (CAP bytes):
 * the frame's length, or zstd's error code */
static size_t blk_compress_mt(ZSTD_CCtx *cctx, int level, int workers, const void *src, size_t n,
			      void *dst, size_t cap)
{
	ZSTD_inBuffer in = { src, n, 0 };
	ZSTD_outBuffer out = { dst, cap, 0 };
	size_t e;
	ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
	if (!ZSTD_isError(e = ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)) &&
	    !ZSTD_isError(e = ZSTD_CCtx_setPledgedSrcSize(cctx, n))) {
		/* a library without threads compresses it on this one, still the same frame
		 * for any count of ours */
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_nbWorkers, workers);
		/* the input before the end: a first call that ends the frame takes the one-pass
		 * path, whose jobs depend on the number of workers (zstd issue #2327) */
		e = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_continue);
		while (!ZSTD_isError(e) && (e = ZSTD_compressStream2(cctx, &out, &in, ZSTD_e_end)))
			if (!ZSTD_isError(e) && out.pos == out.size)
				e = (size_t)-ZSTD_error_dstSize_tooSmall;
	}
	ZSTD_CCtx_reset(cctx, ZSTD_reset_session_and_parameters);
	return ZSTD_isError(e) ? e : out.pos;
}

/* The block of RAW's records (after RAW_HEAD) compressed at LEVEL into COMP, header and frame:
 * 0, or zstd's error code. The same bytes on any thread, with any CCTX and any WORKERS (>= 1,
 * for a block of MT_BLOCK or more). */
static size_t blk_compress(ZSTD_CCtx *cctx, int level, int workers, const struct buf *raw,
			   uint32_t n_records, uint64_t first, struct buf *comp)
{
	size_t n = raw->len - RAW_HEAD, bound = ZSTD_compressBound(n);
	buf_reset(comp);
	buf_grow(comp, BLK_HDR_SIZE + bound);
	size_t clen = n >= MT_BLOCK
		? blk_compress_mt(cctx, level, workers, raw->p + RAW_HEAD, n, comp->p + BLK_HDR_SIZE,
				  bound)
		: ZSTD_compressCCtx(cctx, comp->p + BLK_HDR_SIZE, bound, raw->p + RAW_HEAD, n, level);
	if (ZSTD_isError(clen))
		return clen;
	blk_head(comp->p, n_records, first, n, clen);
	comp->len = BLK_HDR_SIZE + clen;
	return 0;
}

/* Write the finished block at HDR (TOTAL bytes, header included), the next in order. */
static int spill_event(struct shard_spill *sp, uint64_t kind, uint64_t a, uint64_t b)
{
	uint64_t e[5] = { sp->seq, kind, a, b, 0 };
	for (int i = 0; i < 5; i++)
		buf_put_u64le(&sp->ev, e[i]);
	return 0;
}

/* N bytes at P appended to the spill; their offset in *AT. */
static int spill_put(struct shard_spill *sp, const void *p, size_t n, uint64_t *at)
{
	if (sp->failed || atomic_write(&sp->f, p, n))
		return sp->failed = -1;
	*at = sp->off;
	sp->off += n;
	return 0;
}

static int blk_emit(struct shard_writer *w, const unsigned char *hdr, size_t total)
{
	if (w->spill) {
		uint64_t at;
		if (spill_put(w->spill, hdr, total, &at))
			return w->failed = 1, -1;
		w->info.n_blocks++;
		return spill_event(w->spill, EV_BLOCK, at, total);
	}
	XXH3_64bits_update(w->chain, hdr + 24, 8);
	buf_put_u64le(&w->index, w->offset);
	buf_put_u64le(&w->index, rd_u64le(hdr + 8));
	if (emit(w, hdr, total))
		return -1;
	w->info.n_blocks++;
	return 0;
}

/* ---- blocks compressed on worker threads (shard_set_threads) ----
 * The writer hands each full block to a ring of slots and goes on filling the next; the
 * workers compress slots in the order they came, and the writer writes them out in that
 * order as they are done. Each block is compressed on its own, so the bytes are the same as
 * one thread's. */
struct blk_slot {
	struct buf raw, comp;
	uint32_t n_records;
	uint64_t first;
	size_t err;	/* zstd's error code, or 0 */
	int done;
};

struct blk_pool {
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	struct blk_slot *slot;
	unsigned depth, n_threads;
	uint64_t queued, taken, emitted;	/* blocks handed in, taken by a worker, written */
	int level, stop;
	pthread_t *th;
};

static void *pool_worker(void *arg)
{
	struct blk_pool *p = arg;
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->taken == p->queued && !p->stop)
			pthread_cond_wait(&p->work, &p->mu);
		if (p->taken == p->queued)
			break;
		struct blk_slot *b = &p->slot[p->taken++ % p->depth];
		pthread_mutex_unlock(&p->mu);
		b->err = cctx ? blk_compress(cctx, p->level, (int)p->n_threads, &b->raw, b->n_records,
					     b->first, &b->comp)
			      : (size_t)-1;
		pthread_mutex_lock(&p->mu);
		b->done = 1;
		pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
	ZSTD_freeCCtx(cctx);
	return NULL;
}

static struct blk_pool *pool_new(int threads, int level)
{
	struct blk_pool *p = xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->level = level;
	p->depth = (unsigned)threads + 2;	/* a block for each worker, two waiting */
	p->slot = xcalloc(p->depth, sizeof *p->slot);
	p->th = xcalloc((size_t)threads, sizeof *p->th);
	for (; p->n_threads < (unsigned)threads; p->n_threads++) {
		int e = pthread_create(&p->th[p->n_threads], NULL, pool_worker, p);
		if (e)
			die("cannot start a thread: %s", strerror(e));
	}
	return p;
}

static void pool_free(struct blk_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->n_threads; i++)
		pthread_join(p->th[i], NULL);
	for (unsigned i = 0; i < p->depth; i++) {
		buf_free(&p->slot[i].raw);
		buf_free(&p->slot[i].comp);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	free(p->slot);
	free(p->th);
	free(p);
}

/* Write the compressed blocks that are next in order, waiting for the workers until UNTIL
 * blocks are out (0: write what is done and return). */
static int pool_drain(struct shard_writer *w, uint64_t until)
{
	struct blk_pool *p = w->pool;
	int ret = 0;
	pthread_mutex_lock(&p->mu);
	while (p->emitted < p->queued) {
		struct blk_slot *b = &p->slot[p->emitted % p->depth];
		if (!b->done) {
			if (p->emitted >= until)
				break;
			pthread_cond_wait(&p->done, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		if (ret || w->failed)
			ret = -1;
		else if (b->err && (w->failed = 1))
			ret = error("zstd compression failed for '%s': %s", w->path,
				    ZSTD_getErrorName(b->err));
		else
			ret = blk_emit(w, b->comp.p, b->comp.len);
		pthread_mutex_lock(&p->mu);
		b->done = 0;
		p->emitted++;
	}
	pthread_mutex_unlock(&p->mu);
	return ret;
}

/* Hand the block in w->raw to the workers; w->raw gets a free slot's buffer. */
static int pool_submit(struct shard_writer *w, uint64_t first)
{
	if (!w->pool)
		w->pool = pool_new(w->threads, w->level);
	struct blk_pool *p = w->pool;
	if (p->queued - p->emitted == p->depth && pool_drain(w, p->emitted + 1))
		return -1;
	/* the slot is no worker's until queued counts it */
	struct blk_slot *b = &p->slot[p->queued % p->depth];
	struct buf t = b->raw;
	b->raw = w->raw;
	w->raw = t;
	b->n_records = w->blk_records;
	b->first = first;
	pthread_mutex_lock(&p->mu);
	p->queued++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
	return pool_drain(w, 0);
}

/* ---- records by reference (shard_write_ref) ----
 * A stored block whose larger records stay where the caller holds them goes out in one
 * writev: the frame header, and the block's bytes as pieces of w->raw and of the records,
 * a raw zstd block header before every 128 KiB of them (zstd_store's frame, byte for byte). */

static struct iovec *iov_add(struct shard_writer *w, size_t *n, const void *p, size_t len)
{
	if (*n == w->cap_iov)
		w->iov = xreallocarray(w->iov, w->cap_iov = w->cap_iov ? 2 * w->cap_iov : 64,
				       sizeof *w->iov);
	w->iov[*n] = (struct iovec){ (void *)p, len };
	return &w->iov[(*n)++];
}

/* The bytes P[0..LEN) at offset *AT of the block's records into the pieces, each raw block
 * header (in CH, 3 bytes each) before its 128 KiB. */
static void iov_data(struct shard_writer *w, size_t *n, const unsigned char *p, size_t len,
		     size_t *at, const unsigned char *ch)
{
	while (len) {
		if (*at % STORE_BLOCK == 0)
			iov_add(w, n, ch + 3 * (*at / STORE_BLOCK), 3);
		size_t room = STORE_BLOCK - *at % STORE_BLOCK, k = len < room ? len : room;
		iov_add(w, n, p, k);
		p += k;
		len -= k;
		*at += k;
	}
}

static int flush_refs(struct shard_writer *w, uint64_t first)
{
	size_t n = raw_len(w), k = (n + STORE_BLOCK - 1) / STORE_BLOCK, clen = 9 + 3 * k + n;
	unsigned char hdr[BLK_HDR_SIZE + 9], *ch = xmalloc(3 * k);
	for (size_t j = 0, left = n; j < k; j++, left -= STORE_BLOCK) {
		size_t b = left < STORE_BLOCK ? left : STORE_BLOCK;
		uint32_t bh = (uint32_t)b << 3 | (b == left);	/* raw block, last flag */
		ch[3 * j] = (unsigned char)bh;
		ch[3 * j + 1] = (unsigned char)(bh >> 8);
		ch[3 * j + 2] = (unsigned char)(bh >> 16);
	}
	wr_u32le(hdr, BLK_MAGIC);
	wr_u32le(hdr + 4, w->blk_records);
	wr_u64le(hdr + 8, first);
	wr_u32le(hdr + 16, (uint32_t)n);
	wr_u32le(hdr + 20, (uint32_t)clen);
	wr_u32le(hdr + BLK_HDR_SIZE, 0xFD2FB528u);	/* zstd_store's frame header */
	hdr[BLK_HDR_SIZE + 4] = 0x80 | 0x20;
	wr_u32le(hdr + BLK_HDR_SIZE + 5, (uint32_t)n);
	size_t ni = 0, at = 0, own = RAW_HEAD;
	iov_add(w, &ni, hdr, sizeof hdr);
	for (size_t r = 0; r <= w->n_refs; r++) {
		size_t to = r < w->n_refs ? w->refs[r].at : w->raw.len;
		iov_data(w, &ni, w->raw.p + own, to - own, &at, ch);
		own = to;
		if (r < w->n_refs)
			iov_data(w, &ni, w->refs[r].p, w->refs[r].len, &at, ch);
	}
	if (!w->sum)
		w->sum = XXH3_createState();
	XXH3_64bits_reset_withSeed(w->sum, XXH3_64bits(hdr, 24));
	for (size_t i = 0; i < ni; i++)
		XXH3_64bits_update(w->sum, (const char *)w->iov[i].iov_base + (i ? 0 : BLK_HDR_SIZE),
				   w->iov[i].iov_len - (i ? 0 : BLK_HDR_SIZE));
	wr_u64le(hdr + 24, XXH3_64bits_digest(w->sum));
	XXH3_64bits_update(w->chain, hdr + 24, 8);
	buf_put_u64le(&w->index, w->offset);
	buf_put_u64le(&w->index, first);
	int ret = emitv(w, w->iov, ni, BLK_HDR_SIZE + clen);
	free(ch);
	if (!ret)
		w->info.n_blocks++;
	return ret;
}

static int flush_block(struct shard_writer *w)
{
	if (!w->blk_records)
		return 0;
	const unsigned char *data = w->raw.p + RAW_HEAD;
	size_t n = raw_len(w);
	uint64_t first = w->info.n_records - w->blk_records;
	int ret;
	if (w->n_refs) {
		ret = flush_refs(w, first);
	} else if (w->level == SHARD_LEVEL_STORE) {
		unsigned char *hdr;
		size_t clen;
		if (n <= STORE_BLOCK) {
			hdr = w->raw.p;
			store_head(hdr + BLK_HDR_SIZE, n);
			clen = FRAME_HEAD + n;
		} else {
			buf_reset(&w->comp);
			buf_grow(&w->comp, BLK_HDR_SIZE + store_bound(n));
			hdr = w->comp.p;
			clen = zstd_store(hdr + BLK_HDR_SIZE, data, n);
		}
		blk_head(hdr, w->blk_records, first, n, clen);
		ret = blk_emit(w, hdr, BLK_HDR_SIZE + clen);
	} else if (w->threads > 1) {
		ret = pool_submit(w, first);
	} else if (w->spill) {
		if (w->n_pend == w->cap_pend) {
			w->pend = xreallocarray(w->pend, w->cap_pend = w->cap_pend ? 2 * w->cap_pend : 4,
						sizeof *w->pend);
			memset(w->pend + w->n_pend, 0, (w->cap_pend - w->n_pend) * sizeof *w->pend);
		}
		struct pend *q = &w->pend[w->n_pend++];
		struct buf t = q->raw;
		q->raw = w->raw;
		w->raw = t;
		q->n_records = w->blk_records;
		q->first = first;
		ret = 0;
	} else {
		if (!w->cctx)
			w->cctx = ZSTD_createCCtx();
		size_t e = blk_compress(w->cctx, w->level, w->threads, &w->raw, w->blk_records, first,
					&w->comp);
		ret = e ? error("zstd compression failed for '%s': %s", w->path, ZSTD_getErrorName(e))
			: blk_emit(w, w->comp.p, w->comp.len);
	}
	w->blk_records = 0;
	raw_start(w);
	return ret;
}

/* Below this a record is copied even by shard_write_ref: a piece of writev costs about
 * what copying a few KiB does. */
#define REF_MIN 4096

/* Room for a record of LEN bytes at the end of the block being filled (the block flushed
 * first when the record would overfill it), or, with REF, the record left where REF holds it
 * (shard_write_ref) and REF returned: NULL after an error */
static unsigned char *record_room(struct shard_writer *w, size_t len, const void *ref)
{
	/* a block that shard_write_room filled goes out once the room is filled */
	int full = w->room && raw_len(w) >= block_limit(w);
	w->room = 0;
	if (w->failed || (full && flush_block(w)))
		return NULL;
	if (len > MAX_BLOCK_RAW - 16) {
		error("record of %zu bytes too large for '%s'", len, w->path);
		return NULL;
	}
	if (w->blk_records && raw_len(w) + len + 10 > block_limit(w) && flush_block(w))
		return NULL;
	if (raw_len(w) + len + 10 > MAX_BLOCK_RAW && flush_block(w))
		return NULL;
	buf_put_varint(&w->raw, len);
	unsigned char *p;
	if (ref) {
		if (w->n_refs == w->cap_refs)
			w->refs = xreallocarray(w->refs, w->cap_refs = w->cap_refs ? 2 * w->cap_refs : 16,
						sizeof *w->refs);
		w->refs[w->n_refs++] = (struct wref){ ref, len, w->raw.len };
		w->ref_len += len;
		p = (unsigned char *)ref;
	} else {
		buf_grow(&w->raw, len);
		p = w->raw.p + w->raw.len;
		w->raw.len += len;
	}
	w->blk_records++;
	w->info.n_records++;
	w->info.raw_bytes += len;
	return p;
}

int shard_write(struct shard_writer *w, const void *rec, size_t len)
{
	unsigned char *p = record_room(w, len, NULL);
	if (!p)
		return -1;
	if (len)
		memcpy(p, rec, len);
	if (raw_len(w) >= block_limit(w))
		return flush_block(w);
	return 0;
}

int shard_write_ref(struct shard_writer *w, const void *rec, size_t len)
{
	if (w->level != SHARD_LEVEL_STORE || len < REF_MIN)
		return shard_write(w, rec, len);
	if (!record_room(w, len, rec))
		return -1;
	if (raw_len(w) >= block_limit(w))
		return flush_block(w);
	return 0;
}

void shard_release(struct shard_writer *w)
{
	if (!w->n_refs)
		return;
	struct buf t = { 0 };
	buf_grow(&t, w->raw.len + w->ref_len);
	size_t own = 0;
	for (size_t r = 0; r < w->n_refs; r++) {
		buf_put(&t, w->raw.p + own, w->refs[r].at - own);
		buf_put(&t, w->refs[r].p, w->refs[r].len);
		own = w->refs[r].at;
	}
	buf_put(&t, w->raw.p + own, w->raw.len - own);
	buf_free(&w->raw);
	w->raw = t;
	w->n_refs = w->ref_len = 0;
}

void *shard_write_room(struct shard_writer *w, size_t len)
{
	unsigned char *p = record_room(w, len, NULL);
	w->room = p != NULL;
	return p;
}

static void writer_free(struct shard_writer *w)
{
	pool_free(w->pool);
	ZSTD_freeCCtx(w->cctx);
	XXH3_freeState(w->chain);
	if (w->sum)
		XXH3_freeState(w->sum);
	free(w->refs);
	free(w->iov);
	buf_free(&w->raw);
	buf_free(&w->comp);
	buf_free(&w->index);
	for (size_t i = 0; i < w->cap_pend; i++)
		buf_free(&w->pend[i].raw);
	free(w->pend);
	free(w->path);
	free(w);
}

static int write_tail(struct shard_writer *w)
{
	unsigned char end[END_SIZE];
	wr_u32le(end, END_MAGIC);
	wr_u32le(end + 4, 0);
	wr_u64le(end + 8, w->info.n_records);
	wr_u64le(end + 16, w->info.n_blocks);
	wr_u64le(end + 24, w->info.raw_bytes);
	wr_u64le(end + 32, XXH3_64bits_digest(w->chain));
	wr_u64le(end + 40, XXH3_64bits(end, 40));
	if (emit(w, end, END_SIZE))
		return -1;
	uint64_t index_offset = w->offset;
	if (emit(w, w->index.p, w->index.len))
		return -1;
	unsigned char f[FOOTER_SIZE];
	wr_u64le(f, index_offset);
	wr_u64le(f + 8, w->info.n_blocks);
	wr_u64le(f + 16, XXH3_64bits_withSeed(w->index.p, w->index.len, XXH3_64bits(f, 16)));
	memcpy(f + 24, footer_magic, 8);
	return emit(w, f, FOOTER_SIZE);
}

static int spill_flush(struct shard_writer *w)
{
	int ret = 0;
	if (w->pool && pool_drain(w, w->pool->queued))
		ret = -1;
	for (size_t i = 0; i < w->n_pend; i++) {
		if (ret || w->failed)
			continue;
		struct pend *q = &w->pend[i];
		if (!w->cctx)
			w->cctx = ZSTD_createCCtx();
		size_t e = blk_compress(w->cctx, w->level, 1, &q->raw, q->n_records, q->first,
					&w->comp);
		ret = e ? error("zstd compression failed for '%s': %s", w->path, ZSTD_getErrorName(e))
			: blk_emit(w, w->comp.p, w->comp.len);
	}
	w->n_pend = 0;
	return ret;
}

int shard_spill_flush(struct shard_writer *w)
{
	return spill_flush(w);
}

int shard_close(struct shard_writer *w)
{
	int ret = flush_block(w);
	if (w->pool && pool_drain(w, w->pool->queued))
		ret = -1;
	if (w->spill && spill_flush(w))
		ret = -1;
	if (w->spill) {	/* the shard ends here; rank 0 writes its tail */
		ret = ret || w->failed ? -1 : 0;
		if (!ret)
			spill_event(w->spill, EV_END, w->info.n_records, w->info.raw_bytes);
		writer_free(w);
		return ret;
	}
	if (!ret)
		ret = write_tail(w);
	if (!ret && w->seekable) {
		/* fill in the counts now known, so `cp-cat --header` needs no scan */
		unsigned char h[HDR_SIZE];
		w->info.flags |= FLAG_COUNTS;
		hdr_pack(h, &w->info);
		if (pwrite(w->fd, h, HDR_SIZE, 0) != HDR_SIZE)
			ret = error_errno("cannot write '%s'", w->out.tmp);
	}
	if (w->seekable) {
		if (ret)
			atomic_abort(&w->out);
		else
			ret = atomic_commit(&w->out);
	}
	writer_free(w);
	return ret;
}

void shard_abort(struct shard_writer *w)
{
	if (w->seekable)
		atomic_abort(&w->out);
	writer_free(w);
}

/* ------------------------------------------------------------------ spills */

struct shard_spill *shard_spill_open(const char *path)
{
	struct shard_spill *sp = xcalloc(1, sizeof *sp);
	if (atomic_open(&sp->f, path)) {
		free(sp);
		return NULL;
	}
	return sp;
}

const char *shard_spill_file(const struct shard_spill *sp) { return sp->f.tmp; }

void shard_spill_turn(struct shard_spill *sp, uint64_t seq) { sp->seq = seq; }

const void *shard_spill_events(const struct shard_spill *sp, size_t *n)
{
	*n = sp->ev.len;
	return sp->ev.p;
}

void shard_spill_remove(struct shard_spill *sp)
{
	if (!sp)
		return;
	atomic_abort(&sp->f);
	buf_free(&sp->ev);
	free(sp);
}

struct shard_writer *shard_create_spilled(struct shard_spill *sp, uint32_t kind,
					  const uint64_t param[2])
{
	struct shard_writer *w = xcalloc(1, sizeof *w);
	w->path = xstrdup(sp->f.path);
	w->fd = -1;
	w->spill = sp;
	w->info.version = SHARD_VERSION;
	w->info.kind = kind;
	if (param) {
		w->info.param[0] = param[0];
		w->info.param[1] = param[1];
	}
	w->block_size = 1 << 20;
	w->level = 3;
	w->threads = 1;
	raw_start(w);
	w->chain = XXH3_createState();
	XXH3_64bits_reset(w->chain);
	return w;
}

/* The note: records and raw bytes so far, the block's records, where its bytes lie */
#define NOTE_U64 5

int shard_state_save(struct shard_writer *w, struct buf *note)
{
	uint64_t at = 0, n = w->raw.len - RAW_HEAD;
	if (w->failed || (n && spill_put(w->spill, w->raw.p + RAW_HEAD, n, &at)))
		return -1;
	uint64_t v[NOTE_U64] = { w->info.n_records, w->info.raw_bytes, w->blk_records, at, n };
	for (int i = 0; i < NOTE_U64; i++)
		buf_put_u64le(note, v[i]);
	raw_start(w);
	w->blk_records = 0;
	return 0;
}

size_t shard_state_size(void) { return 8 * NOTE_U64; }

int shard_state_load(struct shard_writer *w, const unsigned char *note, int fd)
{
	uint64_t v[NOTE_U64];
	for (int i = 0; i < NOTE_U64; i++)
		v[i] = rd_u64le(note + 8 * i);
	raw_start(w);
	buf_grow(&w->raw, (size_t)v[4]);
	if (v[4] && pread_full(fd, w->raw.p + RAW_HEAD, (size_t)v[4], (off_t)v[3])) {
		w->failed = 1;
		return error_errno("cannot read the blocks another rank spilled for '%s'", w->path);
	}
	w->raw.len += (size_t)v[4];
	w->info.n_records = v[0];
	w->info.raw_bytes = v[1];
	w->blk_records = (uint32_t)v[2];
	return 0;
}

int shard_assemble_block(struct shard_writer *w, int fd, uint64_t off, uint64_t len)
{
	buf_reset(&w->comp);
	buf_grow(&w->comp, (size_t)len);
	if (len < BLK_HDR_SIZE || pread_full(fd, w->comp.p, (size_t)len, (off_t)off)) {
		w->failed = 1;
		return error_errno("cannot read the blocks another rank spilled for '%s'", w->path);
	}
	return blk_emit(w, w->comp.p, (size_t)len);
}

void shard_set_totals(struct shard_writer *w, uint64_t n_records, uint64_t raw_bytes)
{
	w->info.n_records = n_records;
	w->info.raw_bytes = raw_bytes;
}

/* ------------------------------------------------------------------ reader */

struct shard_reader {
	char *path;
	int fd, seekable, done, sought;
	uint64_t offset;	/* file offset of the next byte to read */
	struct shard_info info;
	uint64_t file_size;
	unsigned char *index;	/* footer's block index (regular files) */
	uint64_t index_blocks, blocks_end;
	ZSTD_DCtx *dctx;
	struct buf comp, raw;
	struct cursor cur;	/* over raw: the records left in this block */
	uint32_t blk_left;
	uint64_t blk_offset;
	uint64_t seen_records, seen_blocks, seen_raw;
	XXH3_state_t *chain;
};

const struct shard_info *shard_get_info(const struct shard_reader *r) { return &r->info; }
const char *shard_path(const struct shard_reader *r) { return r->path; }

static int rd_err(struct shard_reader *r, uint64_t off, const char *what)
{
	return error("'%s': %s at byte offset %llu", r->path, what, (unsigned long long)off);
}

/* Read exactly n bytes at the current offset; a short read is a truncation. */
static int rd_exact(struct shard_reader *r, void *p, size_t n, const char *what)
{
	long got = read_full(r->fd, p, n);
	if (got < 0)
		return error_errno("cannot read '%s'", r->path);
	if ((size_t)got < n) {
		char msg[128];
		snprintf(msg, sizeof msg, "truncated shard (%s cut short)", what);
		return rd_err(r, r->offset + (uint64_t)got, msg);
	}
	r->offset += n;
	return 0;
}

static int check_header(struct shard_reader *r, const unsigned char h[HDR_SIZE], uint32_t kind)
{
	if (memcmp(h, shard_magic, 8))
		return rd_err(r, 0, "not a cp shard (bad magic)");
	if (rd_u64le(h + 56) != XXH3_64bits(h, 56))
		return rd_err(r, 56, "header checksum mismatch");
	r->info.version = (uint32_t)h[8] | (uint32_t)h[9] << 8;
	r->info.kind = (uint32_t)h[10] | (uint32_t)h[11] << 8;
	r->info.flags = rd_u32le(h + 12);
	if (r->info.version > SHARD_VERSION || r->info.version == 0)
		return error("'%s': shard format version %u is not supported (this tool reads up to %u)",
			     r->path, r->info.version, SHARD_VERSION);
	if (kind != SHARD_ANY && r->info.kind != kind)
		return error("'%s': is a %s shard, expected %s", r->path, shard_kind_name(r->info.kind),
			     shard_kind_name(kind));
	r->info.n_records = r->info.n_blocks = r->info.raw_bytes = UINT64_MAX;
	if (r->info.flags & FLAG_COUNTS) {
		r->info.n_records = rd_u64le(h + 16);
		r->info.n_blocks = rd_u64le(h + 24);
		r->info.raw_bytes = rd_u64le(h + 32);
	}
	r->info.param[0] = rd_u64le(h + 40);
	r->info.param[1] = rd_u64le(h + 48);
	return 0;
}

/* On a regular file, read and check the footer and block index up front: a truncated file
 * is refused at open, and shard_seek can find any record. */
static int load_index(struct shard_reader *r)
{
	uint64_t size = r->file_size;
	unsigned char f[FOOTER_SIZE], e[END_SIZE];
	if (size < HDR_SIZE + END_SIZE + FOOTER_SIZE)
		return rd_err(r, size, "truncated shard (no end block)");
	if (pread(r->fd, f, FOOTER_SIZE, (off_t)(size - FOOTER_SIZE)) != FOOTER_SIZE)
		return error_errno("cannot read '%s'", r->path);
	if (memcmp(f + 24, footer_magic, 8))
		return rd_err(r, size, "truncated shard (footer missing)");
	uint64_t ioff = rd_u64le(f), nb = rd_u64le(f + 8);
	if (nb > (size / 16) || ioff < HDR_SIZE + END_SIZE || ioff + nb * 16 != size - FOOTER_SIZE)
		return rd_err(r, size - FOOTER_SIZE, "corrupt footer");
	r->index = xmalloc(nb * 16 + 1);
	if (pread(r->fd, r->index, nb * 16, (off_t)ioff) != (ssize_t)(nb * 16))
		return error_errno("cannot read '%s'", r->path);
	if (rd_u64le(f + 16) != XXH3_64bits_withSeed(r->index, nb * 16, XXH3_64bits(f, 16)))
		return rd_err(r, ioff, "block index checksum mismatch");
	if (pread(r->fd, e, END_SIZE, (off_t)(ioff - END_SIZE)) != END_SIZE)
		return error_errno("cannot read '%s'", r->path);
	if (rd_u32le(e) != END_MAGIC || rd_u64le(e + 40) != XXH3_64bits(e, 40) ||
	    rd_u64le(e + 16) != nb)
		return rd_err(r, ioff - END_SIZE, "corrupt end block");
	if ((r->info.flags & FLAG_COUNTS) &&
	    (rd_u64le(e + 8) != r->info.n_records || rd_u64le(e + 24) != r->info.raw_bytes))
		return rd_err(r, 16, "header counts disagree with the end block");
	r->info.n_records = rd_u64le(e + 8);
	r->info.n_blocks = nb;
	r->info.raw_bytes = rd_u64le(e + 24);
	r->index_blocks = nb;
	r->blocks_end = ioff - END_SIZE;
	return 0;
}

int shard_block(const struct shard_reader *r, uint64_t i, uint64_t *offset, uint64_t *first)
{
	if (!r->index || i > r->index_blocks)
		return -1;
	if (i == r->index_blocks) {
		*offset = r->blocks_end;
		*first = r->info.n_records;
	} else {
		*offset = rd_u64le(r->index + 16 * i);
		*first = rd_u64le(r->index + 16 * i + 8);
	}
	return 0;
}

struct shard_reader *shard_open(const char *path, uint32_t kind)
{
	struct shard_reader *r = xcalloc(1, sizeof *r);
	r->path = xstrdup(!strcmp(path, "-") ? "(stdin)" : path);
	r->fd = !strcmp(path, "-") ? 0 : open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		error_errno("cannot open '%s'", path);
		free(r->path);
		free(r);
		return NULL;
	}
	struct stat st;
	pipe_widen(r->fd);
	if (!fstat(r->fd, &st) && S_ISREG(st.st_mode)) {
		r->seekable = 1;
		r->file_size = (uint64_t)st.st_size;
	} else if (!fstat(r->fd, &st) && S_ISDIR(st.st_mode)) {
		error("'%s': is a directory", path);
		goto fail;
	}
	r->chain = XXH3_createState();
	XXH3_64bits_reset(r->chain);
	unsigned char h[HDR_SIZE];
	long got = read_full(r->fd, h, HDR_SIZE);
	if (got < 0) {
		error_errno("cannot read '%s'", r->path);
		goto fail;
	}
	/* say "not a shard" rather than "truncated" when even the magic is wrong */
	if (memcmp(h, shard_magic, got < 8 ? (size_t)got : 8) || !got) {
		rd_err(r, 0, "not a cp shard (bad magic)");
		goto fail;
	}
	if (got < HDR_SIZE) {
		rd_err(r, (uint64_t)got, "truncated shard (header cut short)");
		goto fail;
	}
	r->offset = HDR_SIZE;
	if (check_header(r, h, kind))
		goto fail;
	if (r->seekable && load_index(r))
		goto fail;
	if (r->seekable && lseek(r->fd, HDR_SIZE, SEEK_SET) < 0) {
		error_errno("cannot seek '%s'", path);
		goto fail;
	}
	return r;
fail:
	shard_close_reader(r);
	return NULL;
}

void shard_close_reader(struct shard_reader *r)
{
	if (!r)
		return;
	if (r->fd > 0)
		close(r->fd);
	ZSTD_freeDCtx(r->dctx);
	if (r->chain)
		XXH3_freeState(r->chain);
	buf_free(&r->comp);
	buf_free(&r->raw);
	free(r->index);
	free(r->path);
	free(r);
}

/* Is the frame F of CLEN bytes exactly a stored block's (store_head), RAW_LEN bytes that a zstd
 * decoder would give back unchanged? */
static int is_stored(const unsigned char *f, size_t clen, uint32_t raw_len)
{
	unsigned char h[FRAME_HEAD];
	if (raw_len > STORE_BLOCK || clen != FRAME_HEAD + (size_t)raw_len)
		return 0;
	store_head(h, raw_len);
	return !memcmp(f, h, FRAME_HEAD);
}

/* Read the block whose 4-byte magic (already read) started at r->blk_offset. */
static int read_block(struct shard_reader *r, const unsigned char magic[4])
{
	unsigned char hdr[BLK_HDR_SIZE];
	uint64_t at = r->blk_offset;
	memcpy(hdr, magic, 4);
	if (rd_exact(r, hdr + 4, BLK_HDR_SIZE - 4, "block header"))
		return -1;
	uint32_t n = rd_u32le(hdr + 4), raw_len = rd_u32le(hdr + 16), clen = rd_u32le(hdr + 20);
	if (!n || raw_len > MAX_BLOCK_RAW || clen > ZSTD_compressBound(raw_len) ||
	    rd_u64le(hdr + 8) != r->seen_records || raw_len < n)
		return rd_err(r, at, "corrupt block header");
	buf_reset(&r->comp);
	buf_grow(&r->comp, clen);
	if (rd_exact(r, r->comp.p, clen, "block"))
		return -1;
	uint64_t sum = XXH3_64bits_withSeed(r->comp.p, clen, XXH3_64bits(hdr, 24));
	if (sum != rd_u64le(hdr + 24))
		return rd_err(r, at, "block checksum mismatch");
	XXH3_64bits_update(r->chain, hdr + 24, 8);
	if (is_stored(r->comp.p, clen, raw_len)) {	/* the records lie there already */
		r->cur = (struct cursor){ r->comp.p + FRAME_HEAD, r->comp.p + clen, 0 };
	} else {
		if (!r->dctx)
			r->dctx = ZSTD_createDCtx();
		buf_reset(&r->raw);
		buf_grow(&r->raw, raw_len);
		size_t got = ZSTD_decompressDCtx(r->dctx, r->raw.p, raw_len, r->comp.p, clen);
		if (ZSTD_isError(got) || got != raw_len)
			return rd_err(r, at, "corrupt block (zstd frame does not decode)");
		r->raw.len = raw_len;
		r->cur = (struct cursor){ r->raw.p, r->raw.p + raw_len, 0 };
	}
	r->blk_left = n;
	r->seen_blocks++;
	return 0;
}

/* The end block, index and footer; then nothing may follow. */
static int read_end(struct shard_reader *r, const unsigned char magic[4])
{
	unsigned char e[END_SIZE], f[FOOTER_SIZE];
	uint64_t at = r->blk_offset;
	memcpy(e, magic, 4);
	if (rd_exact(r, e + 4, END_SIZE - 4, "end block"))
		return -1;
	if (rd_u64le(e + 40) != XXH3_64bits(e, 40))
		return rd_err(r, at, "end block checksum mismatch");
	uint64_t nrec = rd_u64le(e + 8), nb = rd_u64le(e + 16);
	if (!r->sought && (nrec != r->seen_records || nb != r->seen_blocks ||
			   rd_u64le(e + 24) != r->seen_raw ||
			   rd_u64le(e + 32) != XXH3_64bits_digest(r->chain)))
		return rd_err(r, at, "blocks missing or out of order (end block totals differ)");
	if (nb > (UINT64_MAX - FOOTER_SIZE) / 16)
		return rd_err(r, at, "corrupt end block");
	uint64_t ioff = r->offset;
	/* the index is 16 bytes a block; read it in pieces so a bad count cannot exhaust memory
	 * before the bytes actually arrive */
	unsigned char chunk[4096], fseed[16];
	uint64_t left = nb * 16;
	int ret = 0;
	struct buf all = { 0 };
	while (left && !ret) {
		size_t k = left < sizeof chunk ? (size_t)left : sizeof chunk;
		ret = rd_exact(r, chunk, k, "block index");
		if (!ret)
			buf_put(&all, chunk, k);
		left -= k;
	}
	if (!ret)
		ret = rd_exact(r, f, FOOTER_SIZE, "footer");
	if (!ret) {
		wr_u64le(fseed, ioff);
		wr_u64le(fseed + 8, nb);
		if (memcmp(f + 24, footer_magic, 8) || rd_u64le(f) != ioff || rd_u64le(f + 8) != nb ||
		    rd_u64le(f + 16) != XXH3_64bits_withSeed(all.p, all.len, XXH3_64bits(fseed, 16)))
			ret = rd_err(r, ioff, "corrupt block index or footer");
	}
	buf_free(&all);
	if (ret)
		return -1;
	unsigned char extra;
	long more = read_full(r->fd, &extra, 1);
	if (more < 0)
		return error_errno("cannot read '%s'", r->path);
	if (more > 0)
		return rd_err(r, r->offset, "trailing bytes after the shard footer");
	r->info.n_records = nrec;
	r->info.n_blocks = nb;
	r->info.raw_bytes = rd_u64le(e + 24);
	r->done = 1;
	return 0;
}

int shard_next(struct shard_reader *r, const void **rec, size_t *len)
{
	while (!r->blk_left) {
		if (r->done)
			return 0;
		unsigned char magic[4];
		r->blk_offset = r->offset;
		if (rd_exact(r, magic, 4, "block"))
			return -1;
		uint32_t m = rd_u32le(magic);
		if (m == END_MAGIC)
			return read_end(r, magic) ? -1 : 0;
		if (m != BLK_MAGIC)
			return rd_err(r, r->blk_offset, "corrupt shard (no block here)");
		if (read_block(r, magic))
			return -1;
	}
	uint64_t n = cur_varint(&r->cur);
	const void *p = cur_bytes(&r->cur, (size_t)n);
	if (r->cur.err || n > MAX_BLOCK_RAW)
		return rd_err(r, r->blk_offset, "corrupt record in block");
	r->blk_left--;
	if (!r->blk_left && r->cur.p != r->cur.end)
		return rd_err(r, r->blk_offset, "corrupt block (bytes after its last record)");
	r->seen_records++;
	r->seen_raw += n;
	*rec = p;
	*len = (size_t)n;
	return 1;
}

int shard_release_for(struct shard_writer *w, const struct shard_reader *r)
{
	if (r && !r->blk_left)
		shard_release(w);
	return 1;
}

int shard_seek(struct shard_reader *r, uint64_t index)
{
	if (!r->seekable || !r->index)
		return error("'%s': random access needs a regular file", r->path);
	if (index >= r->info.n_records)
		return error("'%s': record %llu out of range (%llu records)", r->path,
			     (unsigned long long)index, (unsigned long long)r->info.n_records);
	uint64_t lo = 0, hi = r->index_blocks;	/* last block whose first record <= index */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;
		if (rd_u64le(r->index + mid * 16 + 8) <= index)
			lo = mid;
		else
			hi = mid;
	}
	uint64_t off = rd_u64le(r->index + lo * 16), first = rd_u64le(r->index + lo * 16 + 8);
	if (off < HDR_SIZE || off >= r->file_size || lseek(r->fd, (off_t)off, SEEK_SET) < 0)
		return rd_err(r, off, "block index points outside the file");
	r->offset = off;
	r->blk_offset = off;
	r->blk_left = 0;
	r->done = 0;
	r->sought = 1;	/* totals can no longer be checked against what we read */
	r->seen_records = first;
	unsigned char magic[4];
	if (rd_exact(r, magic, 4, "block"))
		return -1;
	if (rd_u32le(magic) != BLK_MAGIC)
		return rd_err(r, off, "corrupt shard (no block here)");
	if (read_block(r, magic))
		return -1;
	for (uint64_t i = first; i < index; i++) {
		const void *p;
		size_t n;
		if (shard_next(r, &p, &n) != 1)
			return rd_err(r, off, "block holds fewer records than the index says");
	}
	return 0;
}

int shard_verify(const char *path, uint32_t kind, struct shard_info *out)
{
	struct shard_reader *r = shard_open(path, kind);
	if (!r)
		return -1;
	const void *p;
	size_t n;
	int ret;
	while ((ret = shard_next(r, &p, &n)) == 1)
		;
	if (!ret && out)
		*out = r->info;
	shard_close_reader(r);
	return ret;
}

/* ------------------------------------------------------------------ inputs */

size_t shard_list(char *const *inputs, size_t n, char ***out)
{
	char **list = NULL;
	size_t len = 0, cap = 0;
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		if (strcmp(inputs[i], "-") && !stat(inputs[i], &st) && S_ISDIR(st.st_mode)) {
			/* exactly the shards of a finished set (shard/set.h) */
			shardset_expand(inputs[i], &list, &len, &cap);
			continue;
		}
		if (len == cap)
			list = xreallocarray(list, cap = cap ? 2 * cap : 16, sizeof *list);
		list[len++] = xstrdup(inputs[i]);
	}
	*out = list;
	return len;
}

void shard_list_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}
