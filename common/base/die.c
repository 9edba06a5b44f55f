/* die.c: the one place that formats diagnostics, so every tool speaks alike. */
#include "base/die.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cp_progname = "cp";
int cp_quiet;

void cp_setprogname(const char *argv0)
{
	const char *s = strrchr(argv0, '/');
	cp_progname = s ? s + 1 : argv0;
}

static void report(const char *prefix, const char *fmt, va_list ap, int errnum)
{
	if (cp_quiet)
		return;
	fprintf(stderr, "%s: %s", cp_progname, prefix);
	vfprintf(stderr, fmt, ap);
	if (errnum)
		fprintf(stderr, ": %s", strerror(errnum));
	fputc('\n', stderr);
}

void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report("", fmt, ap, 0);
	va_end(ap);
	exit(EXIT_ERR);
}

void die_errno(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	report("", fmt, ap, e);
	va_end(ap);
	exit(EXIT_ERR);
}

void die_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report("", fmt, ap, 0);
	va_end(ap);
	if (!cp_quiet)
		fprintf(stderr, "Try '%s -h' for help.\n", cp_progname);
	exit(EXIT_USAGE);
}

int error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report("", fmt, ap, 0);
	va_end(ap);
	return -1;
}

int error_errno(const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	report("", fmt, ap, e);
	va_end(ap);
	return -1;
}

int error_to(char **err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(err, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	return -1;
}

void warning(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report("warning: ", fmt, ap, 0);
	va_end(ap);
}
