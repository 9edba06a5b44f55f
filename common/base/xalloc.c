/* xalloc.c: out-of-memory is fatal everywhere, so callers never check; large blocks are
 * asked to be backed by transparent huge pages. */
#include "base/xalloc.h"
#include "base/die.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Blocks this large come from their own mmap in glibc, and the first touch of each 4 KiB
 * page is a fault, which in a virtual machine costs microseconds: a training step or a
 * 100 MB text touches hundreds of thousands of them, a quarter of the run's time as system
 * time. With THP in "madvise" mode (Debian's default) the kernel backs the advised range with
 * 2 MiB pages only when asked. The advice is only advice: where it is refused nothing
 * changes. */
enum { XALLOC_HUGE_MIN = 8 << 20, XALLOC_HUGE_PAGE = 2 << 20 };

void *xalloc_advise(void *p, size_t n)
{
	if (n < XALLOC_HUGE_MIN)
		return p;
	uintptr_t a = ((uintptr_t)p + XALLOC_HUGE_PAGE - 1) & ~(uintptr_t)(XALLOC_HUGE_PAGE - 1);
	uintptr_t e = ((uintptr_t)p + n) & ~(uintptr_t)(XALLOC_HUGE_PAGE - 1);
	if (e > a)
		(void)madvise((void *)a, e - a, MADV_HUGEPAGE);
	return p;
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory allocating %zu bytes", n);
	return xalloc_advise(p, n);
}

void *xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
	if (!p)
		die("out of memory allocating %zu x %zu bytes", nmemb, size);
	/* calloc checked the product */
	return xalloc_advise(p, nmemb * size);
}

void *xrealloc(void *p, size_t n)
{
	/* A block growing past the threshold would be copied by realloc into pages the copy
	 * itself faults in before any advice could reach them: a fresh advised block instead.
	 * Blocks already that large are mremap'd by realloc, their pages kept. */
	size_t old = p ? malloc_usable_size(p) : 0;
	if (n >= XALLOC_HUGE_MIN && old < XALLOC_HUGE_MIN && old < n) {
		void *q = xmalloc(n);
		memcpy(q, p, old);
		free(p);
		return q;
	}
	void *q = realloc(p, n ? n : 1);
	if (!q)
		die("out of memory allocating %zu bytes", n);
	return xalloc_advise(q, n);
}

void *xreallocarray(void *p, size_t nmemb, size_t size)
{
	if (size && nmemb > SIZE_MAX / size)
		die("allocation size overflow (%zu x %zu)", nmemb, size);
	return xrealloc(p, nmemb * size);
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		die("bad format '%s'", fmt);
	char *s = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}
