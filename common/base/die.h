/* die.h: error reporting shared by every tool, in git's style.
 * Messages go to stderr as "PROG: message"; die() exits 1, usage errors exit 2. */
#ifndef CP_DIE_H
#define CP_DIE_H

#include <stdarg.h>

/* the CUDA backend (C++) includes this header too */
#ifdef __cplusplus
#define CP_NORETURN [[noreturn]]
#else
#include <stdnoreturn.h>
#define CP_NORETURN noreturn
#endif

/* Exit codes every tool documents in its man page. */
enum { EXIT_OK = 0, EXIT_ERR = 1, EXIT_USAGE = 2 };

extern const char *cp_progname;
/* Set by fuzz targets and some tests: suppress messages, errors still returned. */
extern int cp_quiet;

void cp_setprogname(const char *argv0);
CP_NORETURN void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
CP_NORETURN void die_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
CP_NORETURN void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* For code that hands errors to its caller as text (servers answer them): format into a fresh
 * *ERR and return -1. */
int error_to(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
