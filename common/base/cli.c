/* cli.c: option value parsing shared by the tools (see opt.h). */
#include "base/cli.h"
#include "base/die.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t opt_u64(const char *opt, const char *val, uint64_t lo, uint64_t hi)
{
	char *end;
	errno = 0;
	if (!val || !*val || *val == '-' || *val == ' ')
		die_usage("option '%s' needs a whole number, not '%s'", opt, val ? val : "");
	unsigned long long v = strtoull(val, &end, 10);
	/* accept k/M/G suffixes: sizes like --max-bytes 100M are common */
	uint64_t mul = 1;
	if (*end == 'k' || *end == 'K') mul = 1000, end++;
	else if (*end == 'M') mul = 1000000, end++;
	else if (*end == 'G') mul = 1000000000, end++;
	if (errno || *end || (mul > 1 && v > UINT64_MAX / mul))
		die_usage("option '%s' needs a whole number, not '%s'", opt, val);
	v *= mul;
	if (v < lo || v > hi)
		die_usage("option '%s' must be between %llu and %llu, not '%s'", opt,
			  (unsigned long long)lo, (unsigned long long)hi, val);
	return v;
}

double opt_double(const char *opt, const char *val, double lo, double hi)
{
	char *end;
	errno = 0;
	if (!val || !*val)
		die_usage("option '%s' needs a number", opt);
	double v = strtod(val, &end);
	if (errno || *end || !isfinite(v))
		die_usage("option '%s' needs a number, not '%s'", opt, val);
	if (v < lo || v > hi)
		die_usage("option '%s' must be between %g and %g, not '%s'", opt, lo, hi, val);
	return v;
}

int opt_int(const char *opt, const char *val, int lo, int hi)
{
	char *end;
	errno = 0;
	if (!val || !*val || *val == ' ')
		die_usage("option '%s' needs a whole number, not '%s'", opt, val ? val : "");
	long v = strtol(val, &end, 10);
	if (errno || *end)
		die_usage("option '%s' needs a whole number, not '%s'", opt, val);
	if (v < lo || v > hi)
		die_usage("option '%s' must be between %d and %d, not '%s'", opt, lo, hi, val);
	return (int)v;
}

int cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int opt_threads(const char *opt, const char *val)
{
	if (!strcmp(val, "auto"))
		return cpu_count();
	int n = (int)opt_u64(opt, val, 0, 4096);
	return n ? n : cpu_count();
}
