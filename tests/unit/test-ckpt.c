/* test-ckpt.c: checkpoint format version 2 (model/ckpt.h): the precision and the stochastic
 * rounding's seed written and read back; a version 1 file, encoded here field by field from
 * the version 1 table of man/cp-train.1 (as the CPU backend's cp-train wrote it before),
 * still loads, as fp32 with the seed's default rounding seed, and writing what it loads gives
 * the bytes a version 2 run writes (so a resume from it goes on bit for bit); an unknown
 * precision and a newer version are refused.
 *
 * "test-ckpt v1 IN OUT" rewrites the fp32 version 2 checkpoint IN as version 1 (tests/t4002
 * resumes from such a file). */
#include "tap.h"
#include "base/buf.h"
#include "base/io.h"
#include "base/xalloc.h"
#include "model/ckpt.h"
#include "model/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

static char dir[] = "/tmp/cp-test-ckpt.XXXXXX";

static const struct gpt2_config cfg = { 64, 8, 2, 2, 8, 1, 0 };
static const char opts[] = "{\"batch\":4}";

static uint64_t n_params(void)
{
	struct gpt2_layout lay;
	gpt2_layout(&cfg, &lay);
	return lay.total;
}

static void fill(float *p, uint64_t n, float k)
{
	for (uint64_t i = 0; i < n; i++)
		p[i] = k * (float)(i % 97) - 3.25f;
}

static int write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ret = f && fwrite(p, 1, n, f) == n ? 0 : -1;
	if (f && fclose(f))
		ret = -1;
	return ret;
}

/* a version 1 checkpoint, field by field as the version 1 format table has them */
static int write_v1(const char *path, uint64_t step, uint64_t pos, uint64_t seed, uint64_t rng,
		    const float *params, const float *mom, const float *var, uint64_t n)
{
	size_t J = strlen(opts), total = 256 + J + 3 * n * 4;
	unsigned char *f = xcalloc(total, 1);
	static const unsigned char magic[8] = { 0x89, 0x43, 0x50, 0x4b, 0x0d, 0x0a, 0x1a, 0x0a };
	memcpy(f, magic, 8);
	wr_u32le(f + 8, 1);
	wr_u32le(f + 12, 256);
	const uint32_t shape[5] = { cfg.vocab_size, cfg.n_ctx, cfg.n_layer, cfg.n_head, cfg.n_embd };
	for (int i = 0; i < 5; i++)
		wr_u32le(f + 16 + 4 * i, shape[i]);
	wr_u32le(f + 36, (uint32_t)cfg.scale_attn_by_inverse_layer_idx |
				 (uint32_t)cfg.reorder_and_upcast_attn << 1);
	wr_u64le(f + 48, n);
	wr_u64le(f + 56, step);
	wr_u64le(f + 64, pos);
	wr_u64le(f + 72, seed);
	wr_u64le(f + 80, rng);
	const float *arr[3] = { params, mom, var };
	for (int k = 0; k < 3; k++) {
		wr_u64le(f + 88 + 8 * k, XXH3_64bits(arr[k], n * 4));
		memcpy(f + 256 + J + k * n * 4, arr[k], n * 4);	/* little-endian host */
	}
	wr_u64le(f + 112, J);
	wr_u64le(f + 120, XXH3_64bits(opts, J));
	memcpy(f + 256, opts, J);
	wr_u64le(f + 248, XXH3_64bits(f, 248));
	int ret = write_bytes(path, f, total);
	free(f);
	return ret;
}

/* IN, an fp32 version 2 checkpoint, as version 1: the version, the two new fields cleared */
static int to_v1(const char *in, const char *out)
{
	size_t len;
	unsigned char *f = (unsigned char *)read_file(in, &len);
	if (!f || len < 256 || rd_u32le(f + 8) != 2 || rd_u32le(f + 40) != GPT2_FP32) {
		fprintf(stderr, "test-ckpt: '%s' is not an fp32 version 2 checkpoint\n", in);
		return 1;
	}
	wr_u32le(f + 8, 1);
	memset(f + 40, 0, 8);
	memset(f + 128, 0, 8);
	wr_u64le(f + 248, XXH3_64bits(f, 248));
	int ret = write_bytes(out, f, len);
	free(f);
	return ret ? 1 : 0;
}

static char *path_in(const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

static int arrays_equal(const char *path, const struct ckpt *c, const float *p, const float *m,
			const float *v, uint64_t n)
{
	float *a = xmalloc(3 * n * sizeof(float));
	int ret = !ckpt_read_data(path, c, a, a + n, a + 2 * n) && !memcmp(a, p, n * 4) &&
		  !memcmp(a + n, m, n * 4) && !memcmp(a + 2 * n, v, n * 4);
	free(a);
	return ret;
}

static void test_v2(const float *p, const float *m, const float *v, uint64_t n)
{
	char *path = path_in("v2.ckpt");
	struct ckpt c = { .cfg = cfg, .n_params = n, .step = 11, .data_pos = 44, .seed = 3,
			  .rng = 0xabcdef, .precision = GPT2_BF16, .sr_seed = 0x1234567890ull,
			  .opts_json = (char *)opts };
	ok(!ckpt_write(path, &c, p, m, v), "v2: written");
	struct ckpt r;
	ok(!ckpt_read_header(path, &r), "v2: header read");
	ok(r.version == 2 && r.precision == GPT2_BF16 && r.sr_seed == 0x1234567890ull &&
	   r.step == 11 && r.data_pos == 44 && r.seed == 3 && r.rng == 0xabcdef &&
	   !ckpt_config_diff(&r.cfg, &cfg) && !strcmp(r.opts_json, opts),
	   "v2: version, precision, rounding seed and the rest read back");
	ok(arrays_equal(path, &r, p, m, v, n), "v2: parameters and moments read back");
	ckpt_free(&r);

	/* an unknown precision, its header checksum right, is refused */
	size_t len;
	unsigned char *f = (unsigned char *)read_file(path, &len);
	wr_u32le(f + 40, 7);
	wr_u64le(f + 248, XXH3_64bits(f, 248));
	char *bad = path_in("badprec.ckpt");
	write_bytes(bad, f, len);
	ok(ckpt_read_header(bad, &r) == -1, "v2: precision 7 refused");
	/* as is a version this reader does not know */
	wr_u32le(f + 40, GPT2_FP32);
	wr_u32le(f + 8, CKPT_VERSION + 1);
	wr_u64le(f + 248, XXH3_64bits(f, 248));
	write_bytes(bad, f, len);
	ok(ckpt_read_header(bad, &r) == -1, "version %d refused", CKPT_VERSION + 1);
	free(f);
	free(bad);
	free(path);
}

static void test_v1(const float *p, const float *m, const float *v, uint64_t n)
{
	char *path = path_in("v1.ckpt");
	ok(!write_v1(path, 9, 36, 5, 0x5555, p, m, v, n), "v1: written field by field");
	struct ckpt r;
	ok(!ckpt_read_header(path, &r), "v1: loads");
	ok(r.version == 1 && r.precision == GPT2_FP32 && r.sr_seed == ckpt_sr_seed(5) &&
	   r.step == 9 && r.data_pos == 36 && r.seed == 5 && r.rng == 0x5555 &&
	   r.n_params == n && !ckpt_config_diff(&r.cfg, &cfg) && !strcmp(r.opts_json, opts),
	   "v1: fp32, the seed's rounding seed, every v1 field");
	ok(arrays_equal(path, &r, p, m, v, n), "v1: parameters and moments");

	/* what a resume from it writes equals what the straight version 2 run writes */
	char *again = path_in("v1-again.ckpt"), *straight = path_in("straight.ckpt");
	ok(!ckpt_write(again, &r, p, m, v), "v1: rewritten as v2");
	struct ckpt s = { .cfg = cfg, .n_params = n, .step = 9, .data_pos = 36, .seed = 5,
			  .rng = 0x5555, .precision = GPT2_FP32, .sr_seed = ckpt_sr_seed(5),
			  .opts_json = (char *)opts };
	ckpt_write(straight, &s, p, m, v);
	size_t la, lb;
	char *a = read_file(again, &la), *b = read_file(straight, &lb);
	ok(a && b && la == lb && !memcmp(a, b, la), "v1 loaded and written = the v2 run's bytes");
	free(a), free(b);

	/* and the converter t4002 uses gives back the v1 file */
	char *conv = path_in("conv.ckpt");
	ok(to_v1(straight, conv) == 0, "v2 -> v1 conversion");
	a = read_file(conv, &la), b = read_file(path, &lb);
	ok(a && b && la == lb && !memcmp(a, b, la), "... equals the v1 file written by hand");
	free(a), free(b);
	ckpt_free(&r);
	free(conv), free(again), free(straight), free(path);
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "v1"))
		return to_v1(argv[2], argv[3]);
	if (!mkdtemp(dir))
		return 1;
	uint64_t n = n_params();
	float *p = xmalloc(3 * n * sizeof(float));
	fill(p, n, 0.5f);
	fill(p + n, n, 0.01f);
	fill(p + 2 * n, n, 1e-4f);
	test_v2(p, p + n, p + 2 * n, n);
	test_v1(p, p + n, p + 2 * n, n);
	ok(ckpt_sr_seed(5) != ckpt_sr_seed(6) && ckpt_sr_seed(5) != 5,
	   "the rounding seed depends on the seed");
	free(p);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd))
		diag("cannot remove %s", dir);
	free(cmd);
	return done_testing();
}
