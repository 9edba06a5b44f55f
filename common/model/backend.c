/* backend.c: the table of built-in backends and the --device parser (see backend.h). */
#include "model/backend.h"
#include "base/die.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The CUDA backend is there when a tool links gpu/'s objects (the Makefile does for cp-train,
 * cp-complete, cp-humaneval and the GPU tests where nvcc is present): a weak reference pulls
 * nothing in, and is NULL without them. */
extern const struct gpt2_backend gpt2_cuda_backend __attribute__((weak));

static const struct gpt2_backend *builtin(size_t i)
{
	const struct gpt2_backend *const all[] = { &gpt2_cpu_backend, &gpt2_cuda_backend };
	return i < sizeof(all) / sizeof(all[0]) ? all[i] : NULL;
}

#define NBUILTIN 2

const struct gpt2_backend *gpt2_backend_find(const char *name)
{
	for (size_t i = 0; i < NBUILTIN; i++)
		if (builtin(i) && !strcmp(builtin(i)->name, name))
			return builtin(i);
	return NULL;
}

const char *gpt2_backend_names(void)
{
	static char names[64];
	if (!names[0])
		for (size_t i = 0; i < NBUILTIN; i++) {
			if (!builtin(i))
				continue;
			if (names[0])
				strcat(names, ", ");
			strcat(names, builtin(i)->name);
		}
	return names;
}

const struct gpt2_backend *gpt2_backend_select(const char *device, char **err)
{
	char name[16];
	const char *colon = strchr(device, ':');
	size_t n = colon ? (size_t)(colon - device) : strlen(device);
	long index = -1;
	if (colon) {
		char *end;
		errno = 0;
		index = strtol(colon + 1, &end, 10);
		if (!colon[1] || *end || errno || index < 0 || index > 1023) {
			error_to(err, "device '%s': the index after ':' must be a number from 0", device);
			return NULL;
		}
	}
	if (n == 0 || n >= sizeof(name)) {
		error_to(err, "unknown device '%s' (this build has: %s)", device, gpt2_backend_names());
		return NULL;
	}
	memcpy(name, device, n);
	name[n] = 0;
	const struct gpt2_backend *be = gpt2_backend_find(name);
	if (!be) {
		if (!strcmp(name, "cuda"))
			error_to(err, "device '%s': this build has no CUDA backend (built without nvcc; "
				 "it has: %s)", device, gpt2_backend_names());
		else
			error_to(err, "unknown device '%s' (this build has: %s)", device,
				 gpt2_backend_names());
		return NULL;
	}
	if (!be->open) {
		if (index > 0) {
			error_to(err, "device '%s': the %s backend has only device 0", device, name);
			return NULL;
		}
		return be;
	}
	return be->open((int)index, err) ? NULL : be;
}
