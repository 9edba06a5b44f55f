/* ckpt.c: writing and reading training checkpoints. */
#include "model/ckpt.h"
#include "base/atomic.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "base/util.h"
#include "model/plan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static const unsigned char ckpt_magic[8] = { 0x89, 'C', 'P', 'K', '\r', '\n', 0x1a, '\n' };


/* ---- checkpoints ---- */

uint64_t ckpt_sr_seed(uint64_t seed)
{
	/* apart from the initialisation's and the run's RNG, which start from the seed too */
	return mix64(seed ^ 0x5352u);
}

static uint64_t hash_floats(const float *p, uint64_t n)
{
	if (!p) {
		/* the hash of n zero floats, streamed */
		static const float zeros[4096];
		XXH3_state_t *s = XXH3_createState();
		XXH3_64bits_reset(s);
		for (uint64_t i = 0; i < n; i += 4096)
			XXH3_64bits_update(s, zeros, (n - i < 4096 ? n - i : 4096) * sizeof(float));
		uint64_t h = XXH3_64bits_digest(s);
		XXH3_freeState(s);
		return h;
	}
	return XXH3_64bits(p, n * sizeof(float));
}

static void encode_header(unsigned char *h, const struct ckpt *c, uint64_t opts_len,
			  uint64_t hp, uint64_t hm, uint64_t hv)
{
	memset(h, 0, CKPT_HEADER_SIZE);
	memcpy(h, ckpt_magic, 8);
	wr_u32le(h + 8, CKPT_VERSION);
	wr_u32le(h + 12, CKPT_HEADER_SIZE);
	wr_u32le(h + 16, c->cfg.vocab_size);
	wr_u32le(h + 20, c->cfg.n_ctx);
	wr_u32le(h + 24, c->cfg.n_layer);
	wr_u32le(h + 28, c->cfg.n_head);
	wr_u32le(h + 32, c->cfg.n_embd);
	wr_u32le(h + 36, (c->cfg.scale_attn_by_inverse_layer_idx ? 1u : 0u) |
				 (c->cfg.reorder_and_upcast_attn ? 2u : 0u));
	wr_u32le(h + 40, c->precision);
	wr_u64le(h + 48, c->n_params);
	wr_u64le(h + 56, c->step);
	wr_u64le(h + 64, c->data_pos);
	wr_u64le(h + 72, c->seed);
	wr_u64le(h + 80, c->rng);
	wr_u64le(h + 88, hp);
	wr_u64le(h + 96, hm);
	wr_u64le(h + 104, hv);
	wr_u64le(h + 112, opts_len);
	wr_u64le(h + 120, XXH3_64bits(c->opts_json ? c->opts_json : "", opts_len));
	wr_u64le(h + 128, c->sr_seed);
	wr_u64le(h + CKPT_HEADER_SIZE - 8, XXH3_64bits(h, CKPT_HEADER_SIZE - 8));
}

int ckpt_write(const char *path, const struct ckpt *c, const float *params, const float *mom,
	       const float *var)
{
	static const float zeros[4096];
	uint64_t n = c->n_params, opts_len = c->opts_json ? strlen(c->opts_json) : 0;
	unsigned char h[CKPT_HEADER_SIZE];
	encode_header(h, c, opts_len, hash_floats(params, n), hash_floats(mom, n),
		      hash_floats(var, n));
	struct atomic_file o;
	if (atomic_open(&o, path))
		return -1;
	int ret = atomic_write(&o, h, sizeof(h));
	if (!ret && opts_len)
		ret = atomic_write(&o, c->opts_json, opts_len);
	const float *arr[3] = { params, mom, var };
	for (int k = 0; k < 3 && !ret; k++) {
		if (arr[k]) {
			ret = atomic_write(&o, arr[k], n * sizeof(float));
			continue;
		}
		for (uint64_t i = 0; i < n && !ret; i += 4096)
			ret = atomic_write(&o, zeros, (n - i < 4096 ? n - i : 4096) * sizeof(float));
	}
	if (ret) {
		atomic_abort(&o);
		return -1;
	}
	return atomic_commit(&o);
}

/* the fields of header H (checksum verified) of a file of VERSION; NULL, or what is wrong */
static const char *decode_header(const unsigned char *h, uint32_t version, struct ckpt *c,
				 uint64_t *opts_len)
{
	c->cfg.vocab_size = rd_u32le(h + 16);
	c->cfg.n_ctx = rd_u32le(h + 20);
	c->cfg.n_layer = rd_u32le(h + 24);
	c->cfg.n_head = rd_u32le(h + 28);
	c->cfg.n_embd = rd_u32le(h + 32);
	uint32_t flags = rd_u32le(h + 36);
	c->cfg.scale_attn_by_inverse_layer_idx = flags & 1;
	c->cfg.reorder_and_upcast_attn = (flags >> 1) & 1;
	c->n_params = rd_u64le(h + 48);
	c->step = rd_u64le(h + 56);
	c->data_pos = rd_u64le(h + 64);
	c->seed = rd_u64le(h + 72);
	c->rng = rd_u64le(h + 80);
	c->h_params = rd_u64le(h + 88);
	c->h_mom = rd_u64le(h + 96);
	c->h_var = rd_u64le(h + 104);
	*opts_len = rd_u64le(h + 112);
	c->version = version;
	c->precision = version >= 2 ? rd_u32le(h + 40) : GPT2_FP32;
	c->sr_seed = version >= 2 ? rd_u64le(h + 128) : ckpt_sr_seed(c->seed);
	const char *why = gpt2_config_check(&c->cfg);
	if (why)
		return why;
	struct gpt2_layout lay;
	gpt2_layout(&c->cfg, &lay);
	if (lay.total != c->n_params)
		return "parameter count does not match the shape";
	if (!gpt2_precision_name((int)c->precision))
		return "unknown precision";
	return NULL;
}

int ckpt_read_header(const char *path, struct ckpt *c)
{
	memset(c, 0, sizeof(*c));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_errno("cannot open checkpoint '%s'", path);
	unsigned char h[CKPT_HEADER_SIZE];
	long got = read_full(fd, h, sizeof(h));
	int ret = -1;
	if (got < 0) {
		error_errno("cannot read '%s'", path);
		goto out;
	}
	if (got < 8 || memcmp(h, ckpt_magic, 8)) {
		error("'%s': not a cp checkpoint (bad magic at byte 0)", path);
		goto out;
	}
	if (got < (long)sizeof(h)) {
		error("'%s': truncated at byte %ld (header is %d bytes)", path, got, CKPT_HEADER_SIZE);
		goto out;
	}
	uint32_t version = rd_u32le(h + 8);
	if (version > CKPT_VERSION) {
		error("'%s': checkpoint version %u is newer than this cp-train reads (%d)", path,
		      version, CKPT_VERSION);
		goto out;
	}
	if (rd_u64le(h + CKPT_HEADER_SIZE - 8) != XXH3_64bits(h, CKPT_HEADER_SIZE - 8)) {
		error("'%s': header checksum mismatch (bytes 0..%d)", path, CKPT_HEADER_SIZE - 1);
		goto out;
	}
	uint64_t opts_len;
	const char *why = decode_header(h, version, c, &opts_len);
	if (why || opts_len > (1u << 24)) {
		error("'%s': malformed checkpoint header (%s)", path, why ? why : "options too long");
		goto out;
	}
	struct stat st;
	if (fstat(fd, &st)) {
		error_errno("cannot stat '%s'", path);
		goto out;
	}
	uint64_t want = CKPT_HEADER_SIZE + opts_len + 3 * c->n_params * sizeof(float);
	if ((uint64_t)st.st_size != want) {
		error("'%s': %s: %llu bytes, the header says %llu", path,
		      (uint64_t)st.st_size < want ? "truncated" : "trailing garbage",
		      (unsigned long long)st.st_size, (unsigned long long)want);
		goto out;
	}
	c->opts_json = xmalloc(opts_len + 1);
	if (read_full(fd, c->opts_json, opts_len) != (long)opts_len) {
		error("'%s': truncated at byte %d", path, CKPT_HEADER_SIZE);
		goto out;
	}
	c->opts_json[opts_len] = 0;
	if (XXH3_64bits(c->opts_json, opts_len) != rd_u64le(h + 120)) {
		error("'%s': options checksum mismatch (bytes %d..%llu)", path, CKPT_HEADER_SIZE,
		      (unsigned long long)(CKPT_HEADER_SIZE + opts_len));
		goto out;
	}
	ret = 0;
out:
	close(fd);
	if (ret)
		ckpt_free(c);
	return ret;
}

static int read_array(int fd, const char *path, const char *what, uint64_t off, float *dst,
		      uint64_t n, uint64_t want_hash)
{
	uint64_t bytes = n * sizeof(float);
	char *p = (char *)dst;
	for (uint64_t done = 0; done < bytes;) {
		size_t k = bytes - done > (1u << 30) ? (1u << 30) : (size_t)(bytes - done);
		ssize_t r = pread(fd, p + done, k, (off_t)(off + done));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return error_errno("cannot read '%s'", path);
		if (r == 0)
			return error("'%s': truncated at byte %llu", path,
				     (unsigned long long)(off + done));
		done += (uint64_t)r;
	}
	if (XXH3_64bits(dst, bytes) != want_hash)
		return error("'%s': %s checksum mismatch (bytes %llu..%llu)", path, what,
			     (unsigned long long)off, (unsigned long long)(off + bytes));
	return 0;
}

int ckpt_read_data(const char *path, const struct ckpt *c, float *params, float *mom, float *var)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_errno("cannot open checkpoint '%s'", path);
	uint64_t n = c->n_params, off = CKPT_HEADER_SIZE + strlen(c->opts_json);
	uint64_t sz = n * sizeof(float);
	int ret = read_array(fd, path, "parameters", off, params, n, c->h_params);
	if (!ret && mom)
		ret = read_array(fd, path, "first moment", off + sz, mom, n, c->h_mom);
	if (!ret && var)
		ret = read_array(fd, path, "second moment", off + 2 * sz, var, n, c->h_var);
	close(fd);
	return ret;
}

void ckpt_free(struct ckpt *c)
{
	free(c->opts_json);
	c->opts_json = NULL;
}

const char *ckpt_config_diff(const struct gpt2_config *a, const struct gpt2_config *b)
{
	static char msg[160];
	const char *name = NULL;
	unsigned long va = 0, vb = 0;
#define CMP(f, n) if (!name && a->f != b->f) { name = n; va = (unsigned long)a->f; vb = (unsigned long)b->f; }
	CMP(vocab_size, "vocabulary size");
	CMP(n_ctx, "context length");
	CMP(n_layer, "layers");
	CMP(n_head, "heads");
	CMP(n_embd, "width");
	CMP(scale_attn_by_inverse_layer_idx, "scale_attn_by_inverse_layer_idx");
	CMP(reorder_and_upcast_attn, "reorder_and_upcast_attn");
#undef CMP
	if (!name)
		return NULL;
	snprintf(msg, sizeof(msg), "%s %lu, not %lu", name, va, vb);
	return msg;
}

char *ckpt_path(const char *rundir, uint64_t step)
{
	return xasprintf("%s/ckpt-%08llu.ckpt", rundir, (unsigned long long)step);
}

/* steps of the checkpoints in RUNDIR, ascending */
static size_t list_steps(const char *rundir, uint64_t **out)
{
	DIR *d = opendir(rundir);
	size_t n = 0, cap = 0;
	*out = NULL;
	if (!d)
		return 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned long long s;
		int len = 0;
		if (sscanf(e->d_name, "ckpt-%llu.ckpt%n", &s, &len) == 1 &&
		    (size_t)len == strlen(e->d_name)) {
			if (n == cap) {
				cap = cap ? 2 * cap : 16;
				*out = xreallocarray(*out, cap, sizeof(**out));
			}
			(*out)[n++] = s;
		}
	}
	closedir(d);
	for (size_t i = 1; i < n; i++)	/* few files: insertion sort */
		for (size_t j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
			uint64_t t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return n;
}

char *ckpt_latest(const char *rundir, uint64_t *step)
{
	uint64_t *s;
	size_t n = list_steps(rundir, &s);
	char *p = NULL;
	if (n) {
		*step = s[n - 1];
		p = ckpt_path(rundir, s[n - 1]);
	}
	free(s);
	return p;
}

void ckpt_prune(const char *rundir, unsigned keep)
{
	uint64_t *s;
	size_t n = list_steps(rundir, &s);
	for (size_t i = 0; keep && i + keep < n; i++) {
		char *p = ckpt_path(rundir, s[i]);
		if (unlink(p) && errno != ENOENT)
			warning("cannot remove old checkpoint '%s': %s", p, strerror(errno));
		free(p);
	}
	free(s);
}
