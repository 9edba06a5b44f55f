/* test-gpt2-safetensors: the safetensors writer and reader (round trip, half-precision
 * conversion, malformed files refused) and the checkpoint reader's refusals at the unit
 * level. */
#include "model/ckpt.h"
#include "base/die.h"
#include "model/safetensors.h"
#include "tap.h"
#include "base/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-st-test.XXXXXX";

static void put(const char *name, const char *s, size_t n)
{
	char *p = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	fwrite(s, 1, n, f);
	fclose(f);
	free(p);
}

static struct st_file *open_raw(const char *name, const char *header, size_t data_len)
{
	size_t hl = strlen(header);
	char *buf = xcalloc(1, 8 + hl + data_len + 1);
	for (int i = 0; i < 8; i++)
		buf[i] = (char)((uint64_t)hl >> (8 * i));
	memcpy(buf + 8, header, hl);
	put(name, buf, 8 + hl + data_len);
	free(buf);
	char *p = xasprintf("%s/%s", dir, name);
	struct st_file *f = st_open(p);
	free(p);
	return f;
}

static void roundtrip(void)
{
	float a[6] = { 1, -2, 3.5f, 0, 1e-3f, 7 };
	int32_t b[2] = { 5, -6 };
	struct st_tensor t[2] = {
		{ "x.weight", "F32", 2, { 2, 3 }, a, sizeof(a) },
		{ "ids", "I32", 1, { 2 }, b, sizeof(b) },
	};
	const char *meta[] = { "format", "pt", NULL };
	char *p = xasprintf("%s/rt.safetensors", dir);
	ok(st_write(p, t, 2, meta) == 0, "write two tensors");
	struct st_file *f = st_open(p);
	ok(f && st_count(f) == 2, "read back two tensors");
	const struct st_tensor *x = f ? st_find(f, "x.weight") : NULL;
	ok(x && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 3 && !memcmp(x->data, a, 24),
	   "shape and bytes survive");
	float back[6];
	ok(x && st_to_f32(x, back) == 0 && back[2] == 3.5f, "F32 converts");
	const char *fmt = f ? st_meta(f, "format") : NULL;
	is_str(fmt, "pt", "metadata survives");
	const struct st_tensor *i = f ? st_find(f, "ids") : NULL;
	ok(i && st_to_f32(i, back) == -1, "an integer tensor is not converted to float");
	FILE *raw = fopen(p, "rb");
	unsigned char len8[8];
	ok(fread(len8, 1, 8, raw) == 8 && (len8[0] % 8) == 0, "header padded to 8 bytes");
	fclose(raw);
	st_close(f);
	free(p);
}

static void halves(void)
{
	/* 1.0, -2.0, 0.5 (after a subnormal) as F16 and BF16 */
	const char h16[] = { 0x00, 0x3c, 0x00, (char)0xc0, 0x01, 0x00 };
	const char hb16[] = { (char)0x80, 0x3f, 0x00, (char)0xc0, 0x00, 0x3f };
	struct st_tensor t[2] = { { "h", "F16", 1, { 3 }, h16, 6 }, { "b", "BF16", 1, { 3 }, hb16, 6 } };
	char *p = xasprintf("%s/half.safetensors", dir);
	st_write(p, t, 2, NULL);
	struct st_file *f = st_open(p);
	float v[3] = { 0 };
	ok(f && st_to_f32(st_find(f, "h"), v) == 0 && v[0] == 1 && v[1] == -2 &&
		   v[2] == 0x1p-24f, "F16 converts (normal and subnormal)");
	ok(f && st_to_f32(st_find(f, "b"), v) == 0 && v[0] == 1 && v[1] == -2 && v[2] == 0.5f,
	   "BF16 converts");
	st_close(f);
	free(p);
}

static void malformed(void)
{
	cp_quiet = 1;
	put("short", "abc", 3);
	char *p = xasprintf("%s/short", dir);
	ok(st_open(p) == NULL, "a file shorter than the length word is refused");
	free(p);
	put("huge", "\xff\xff\xff\xff\x00\x00\x00\x00{}", 10);
	p = xasprintf("%s/huge", dir);
	ok(st_open(p) == NULL, "a header length past the end is refused");
	free(p);
	ok(open_raw("badjson", "{\"a\":", 0) == NULL, "bad JSON refused");
	ok(open_raw("dtype", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4) == NULL,
	   "unknown dtype refused");
	ok(open_raw("range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4) == NULL,
	   "a range past the end refused");
	ok(open_raw("shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8) == NULL,
	   "a range that disagrees with the shape refused");
	ok(open_raw("neg", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4) == NULL,
	   "a negative dimension refused");
	struct st_file *f = open_raw("ok", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
	ok(f != NULL, "a well-formed hand-written file opens");
	st_close(f);
	cp_quiet = 0;
}

static void checkpoints(void)
{
	struct gpt2_config c = { 11, 8, 1, 2, 4, 1, 0 };
	struct gpt2_layout lay;
	gpt2_layout(&c, &lay);
	float *p = xcalloc(lay.total, sizeof(float)), *q = xcalloc(lay.total, sizeof(float));
	for (uint64_t i = 0; i < lay.total; i++)
		p[i] = (float)i * 0.5f;
	struct ckpt k = { .cfg = c, .n_params = lay.total, .step = 42, .data_pos = 7, .seed = 3,
			  .rng = 99, .opts_json = "{\"batch\":4}" };
	char *path = ckpt_path(dir, 42);
	ok(ckpt_write(path, &k, p, NULL, p) == 0, "checkpoint written");
	struct ckpt r;
	ok(ckpt_read_header(path, &r) == 0 && r.step == 42 && r.data_pos == 7 && r.rng == 99 &&
		   !ckpt_config_diff(&r.cfg, &c) && !strcmp(r.opts_json, "{\"batch\":4}"),
	   "header and options read back");
	float *m = xcalloc(lay.total, sizeof(float));
	m[0] = 1;
	ok(ckpt_read_data(path, &r, q, m, NULL) == 0 && !memcmp(p, q, lay.total * 4) && m[0] == 0,
	   "parameters read back; missing moments were written as zeros");
	struct gpt2_config c2 = c;
	c2.reorder_and_upcast_attn = 1;
	const char *d = ckpt_config_diff(&r.cfg, &c2);
	ok(d && strstr(d, "reorder_and_upcast_attn"), "config difference named: %s", d ? d : "");
	ckpt_free(&r);
	uint64_t step = 0;
	char *latest = ckpt_latest(dir, &step);
	ok(latest && step == 42, "latest checkpoint found");
	free(latest);

	cp_quiet = 1;
	FILE *f = fopen(path, "r+b");
	fseek(f, -3, SEEK_END);
	fputc('x', f);
	fclose(f);
	ok(ckpt_read_header(path, &r) == 0, "a flipped data byte passes the header check");
	ok(ckpt_read_data(path, &r, q, NULL, q) == -1, "and fails the data checksum");
	ckpt_free(&r);
	ok(truncate(path, 100) == 0 && ckpt_read_header(path, &r) == -1, "a truncated header refused");
	cp_quiet = 0;
	free(path);
	free(p);
	free(q);
	free(m);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	roundtrip();
	halves();
	malformed();
	checkpoints();
	char *rm = xasprintf("rm -rf '%s'", dir);
	if (system(rm))
		diag("cannot remove %s", dir);
	free(rm);
	return done_testing();
}
