/* safetensors.c: the safetensors reader (mmap + jansson for the header) and writer. */
#include "model/safetensors.h"
#include "base/atomic.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/json.h"
#include "base/xalloc.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct { const char *name; unsigned size; } st_dtypes[] = {
	{ "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 },
	{ "I16", 2 }, { "I8", 1 }, { "U8", 1 }, { "BOOL", 1 }, { "U16", 2 }, { "U32", 4 },
	{ "U64", 8 },
};

unsigned st_dtype_size(const char *dtype)
{
	for (size_t i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
		if (!strcmp(dtype, st_dtypes[i].name))
			return st_dtypes[i].size;
	return 0;
}

int st_write(const char *path, const struct st_tensor *t, size_t n, const char *const *meta)
{
	struct buf h = { 0 };
	uint64_t off = 0;
	buf_putc(&h, '{');
	if (meta && meta[0]) {
		buf_puts(&h, "\"__metadata__\":{");
		for (size_t i = 0; meta[i] && meta[i + 1]; i += 2) {
			if (i)
				buf_putc(&h, ',');
			json_cstr(&h, meta[i]);
			buf_putc(&h, ':');
			json_cstr(&h, meta[i + 1]);
		}
		buf_puts(&h, "}");
	}
	for (size_t i = 0; i < n; i++) {
		if (h.len > 1)
			buf_putc(&h, ',');
		json_cstr(&h, t[i].name);
		buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", t[i].dtype);
		for (int d = 0; d < t[i].ndim; d++)
			buf_printf(&h, "%s%llu", d ? "," : "", (unsigned long long)t[i].shape[d]);
		buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off,
			   (unsigned long long)(off + t[i].nbytes));
		off += t[i].nbytes;
	}
	buf_putc(&h, '}');
	while (h.len % 8)
		buf_putc(&h, ' ');
	unsigned char len8[8];
	wr_u64le(len8, h.len);
	struct atomic_file o;
	if (atomic_open(&o, path)) {
		buf_free(&h);
		return -1;
	}
	int ret = atomic_write(&o, len8, 8);
	if (!ret)
		ret = atomic_write(&o, h.p, h.len);
	for (size_t i = 0; i < n && !ret; i++)
		ret = atomic_write(&o, t[i].data, t[i].nbytes);
	buf_free(&h);
	if (ret) {
		atomic_abort(&o);
		return -1;
	}
	return atomic_commit(&o);
}

struct st_file {
	char *path;
	void *map;
	size_t map_len;
	struct st_tensor *t;
	size_t n;
	char **meta;	/* key, value, ... */
	size_t n_meta;
};

static struct st_file *st_fail(struct st_file *f)
{
	st_close(f);
	return NULL;
}

/* Map PATH into F; 0, or -1 after an error naming it. */
static int st_map(struct st_file *f, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return error_errno("cannot open '%s'", path);
	struct stat st;
	if (fstat(fd, &st)) {
		error_errno("cannot stat '%s'", path);
		close(fd);
		return -1;
	}
	if (st.st_size < 8) {
		close(fd);
		return error("'%s': truncated at byte %lld (no header length)", path,
			     (long long)st.st_size);
	}
	f->map_len = (size_t)st.st_size;
	f->map = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		return error_errno("cannot map '%s'", path);
	}
	return 0;
}

static void st_take_meta(struct st_file *f, json_t *val)
{
	const char *mk;
	json_t *mv;
	json_object_foreach(val, mk, mv) {
		if (!json_is_string(mv))
			continue;
		f->meta = xreallocarray(f->meta, f->n_meta + 2, sizeof(char *));
		f->meta[f->n_meta++] = xstrdup(mk);
		f->meta[f->n_meta++] = xstrdup(json_string_value(mv));
	}
}

/* Fill T from the header entry VAL over the DATA_LEN bytes at DATA: NULL, or what is wrong. */
static const char *st_take_tensor(struct st_tensor *t, json_t *val, const unsigned char *data,
				  uint64_t data_len)
{
	json_t *dt = json_object_get(val, "dtype"), *sh = json_object_get(val, "shape"),
	       *of = json_object_get(val, "data_offsets");
	if (!json_is_string(dt) || !st_dtype_size(json_string_value(dt)))
		return "unknown dtype";
	if (!json_is_array(sh) || json_array_size(sh) > ST_MAXDIM)
		return "bad shape";
	if (!json_is_array(of) || json_array_size(of) != 2 || !json_is_integer(json_array_get(of, 0)) ||
	    !json_is_integer(json_array_get(of, 1)))
		return "bad data_offsets";
	t->dtype = xstrdup(json_string_value(dt));
	uint64_t elems = 1;
	t->ndim = (int)json_array_size(sh);
	for (int d = 0; d < t->ndim; d++) {
		json_int_t v = json_integer_value(json_array_get(sh, (size_t)d));
		if (!json_is_integer(json_array_get(sh, (size_t)d)) || v < 0 ||
		    (v && elems > UINT64_MAX / (uint64_t)v))
			return "bad shape";
		t->shape[d] = (uint64_t)v;
		elems *= (uint64_t)v;
	}
	json_int_t b = json_integer_value(json_array_get(of, 0));
	json_int_t e = json_integer_value(json_array_get(of, 1));
	if (b < 0 || e < b || (uint64_t)e > data_len)
		return "data range outside the file";
	if ((uint64_t)(e - b) != elems * st_dtype_size(t->dtype))
		return "data range does not match the shape";
	t->data = data + b;
	t->nbytes = (uint64_t)(e - b);
	return NULL;
}

struct st_file *st_open(const char *path)
{
	struct st_file *f = xcalloc(1, sizeof(*f));
	f->path = xstrdup(path);
	if (st_map(f, path))
		return st_fail(f);
	const unsigned char *p = f->map;
	uint64_t hlen = rd_u64le(p);
	if (hlen > f->map_len - 8 || hlen > (100u << 20)) {
		error("'%s': header length %llu at byte 0 runs past the end of the file", path,
		      (unsigned long long)hlen);
		return st_fail(f);
	}
	json_error_t jerr;
	json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, 0, &jerr);
	if (!root || !json_is_object(root)) {
		error("'%s': bad JSON header at byte %d: %s", path, 8 + jerr.position,
		      root ? "not an object" : jerr.text);
		json_decref(root);
		return st_fail(f);
	}
	size_t cap = json_object_size(root);
	f->t = xcalloc(cap ? cap : 1, sizeof(*f->t));
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (!strcmp(key, "__metadata__")) {
			st_take_meta(f, val);
			continue;
		}
		struct st_tensor *t = &f->t[f->n++];
		t->name = xstrdup(key);
		const char *why = st_take_tensor(t, val, p + 8 + hlen, f->map_len - 8 - hlen);
		if (why) {
			error("'%s': tensor '%s': %s", path, key, why);
			json_decref(root);
			return st_fail(f);
		}
	}
	json_decref(root);
	return f;
}

size_t st_count(const struct st_file *f) { return f->n; }
const struct st_tensor *st_get(const struct st_file *f, size_t i) { return &f->t[i]; }
const char *st_path(const struct st_file *f) { return f->path; }

const struct st_tensor *st_find(const struct st_file *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->t[i].name, name))
			return &f->t[i];
	return NULL;
}

const char *st_meta(const struct st_file *f, const char *key)
{
	for (size_t i = 0; i + 1 < f->n_meta; i += 2)
		if (!strcmp(f->meta[i], key))
			return f->meta[i + 1];
	return NULL;
}

void st_close(struct st_file *f)
{
	if (!f)
		return;
	if (f->map)
		munmap(f->map, f->map_len);
	for (size_t i = 0; i < f->n; i++) {
		free((char *)f->t[i].name);
		free((char *)f->t[i].dtype);
	}
	for (size_t i = 0; i < f->n_meta; i++)
		free(f->meta[i]);
	free(f->meta);
	free(f->t);
	free(f->path);
	free(f);
}

static float half_to_float(uint16_t h)
{
	unsigned s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
	float v;
	if (e == 0)
		v = ldexpf((float)m, -24);
	else if (e == 31)
		v = m ? NAN : INFINITY;
	else
		v = ldexpf((float)(m | 1024), (int)e - 25);
	return s ? -v : v;
}

int st_to_f32(const struct st_tensor *t, float *out)
{
	const unsigned char *p = t->data;
	uint64_t n;
	if (!strcmp(t->dtype, "F32")) {
		memcpy(out, p, t->nbytes);
		return 0;
	}
	if (!strcmp(t->dtype, "F64")) {
		n = t->nbytes / 8;
		for (uint64_t i = 0; i < n; i++) {
			double d;
			memcpy(&d, p + 8 * i, 8);
			out[i] = (float)d;
		}
		return 0;
	}
	n = t->nbytes / 2;
	if (!strcmp(t->dtype, "F16")) {
		for (uint64_t i = 0; i < n; i++)
			out[i] = half_to_float((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
		return 0;
	}
	if (!strcmp(t->dtype, "BF16")) {
		for (uint64_t i = 0; i < n; i++) {
			uint32_t u = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
			memcpy(&out[i], &u, 4);
		}
		return 0;
	}
	return -1;
}
