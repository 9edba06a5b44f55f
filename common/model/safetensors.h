/* safetensors.h: reading and writing the safetensors format (an 8-byte little-endian header
 * length, a JSON header naming each tensor's dtype, shape and byte range, then the raw
 * little-endian data), so models move to and from Hugging Face without Python. */
#ifndef CP_SAFETENSORS_H
#define CP_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAXDIM 8

struct st_tensor {
	const char *name;
	const char *dtype;	/* "F32", "F16", "BF16", "I32", ... */
	int ndim;
	uint64_t shape[ST_MAXDIM];
	const void *data;	/* writing: the bytes; reading: points into the mapped file */
	uint64_t nbytes;
};

/* Write N tensors (and optional metadata as "key","value" string pairs, NULL-terminated)
 * atomically to PATH. 0 or -1 after an error message. */
int st_write(const char *path, const struct st_tensor *t, size_t n, const char *const *meta);

struct st_file;
/* Map PATH and check its header: every dtype known, every range inside the data and of the
 * size its shape says. NULL after an error naming the file. */
struct st_file *st_open(const char *path);
size_t st_count(const struct st_file *f);
const struct st_tensor *st_get(const struct st_file *f, size_t i);
/* the tensor called NAME, or NULL */
const struct st_tensor *st_find(const struct st_file *f, const char *name);
/* the value of metadata KEY, or NULL */
const char *st_meta(const struct st_file *f, const char *key);
const char *st_path(const struct st_file *f);
void st_close(struct st_file *f);
/* bytes per element of DTYPE, 0 when unknown */
unsigned st_dtype_size(const char *dtype);
/* convert N elements of a float dtype (F32, F16, BF16, F64) to float; -1 for other dtypes */
int st_to_f32(const struct st_tensor *t, float *out);

#endif
