/* util.h: the two small helpers several tools need: a monotonic clock for rates and timeouts,
 * and a 64-bit mixer (splitmix64's finaliser) for seeded, position-independent decisions. */
#ifndef CP_UTIL_H
#define CP_UTIL_H

#include <stdint.h>
#include <time.h>

/* seconds on the monotonic clock */
static inline double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

#endif
