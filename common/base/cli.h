/* cli.h: strict parsing of option values; a malformed number is a usage error, never zero. */
#ifndef CP_OPT_H
#define CP_OPT_H

#include <stdint.h>

/* Each dies with exit 2 naming the option when VAL is not a number in [lo, hi]. */
uint64_t opt_u64(const char *opt, const char *val, uint64_t lo, uint64_t hi);
int opt_int(const char *opt, const char *val, int lo, int hi);
double opt_double(const char *opt, const char *val, double lo, double hi);
/* -j: 0 or "auto" means the number of online CPUs */
int opt_threads(const char *opt, const char *val);
int cpu_count(void);

#endif
