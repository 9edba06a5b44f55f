/* xalloc.h: allocation that dies on exhaustion, with overflow-checked sizes. */
#ifndef CP_XALLOC_H
#define CP_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* realloc to nmemb*size, dying on multiplication overflow */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh string */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
