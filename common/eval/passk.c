/* passk.c: pass@k (see passk.h). */
#include "eval/passk.h"

#include <math.h>

double passk_estimate(uint64_t n, uint64_t c, uint64_t k)
{
	if (k == 0 || k > n || c > n)
		return NAN;
	/* fewer failures than draws: every draw of k holds a pass */
	if (n - c < k)
		return 1.0;
	/* C(n-c, k) / C(n, k) = prod_{i = n-c+1}^{n} (1 - k / i); in long double, so that the
	 * rounding of many factors stays below what a double shows (pass@1 = c/n exactly) */
	long double keep = 1.0L;
	for (uint64_t i = n - c + 1; i <= n; i++)
		keep *= 1.0L - (long double)k / (long double)i;
	return (double)(1.0L - keep);
}

double passk_mean(const uint64_t *n, const uint64_t *c, size_t nprob, uint64_t k)
{
	if (!nprob)
		return NAN;
	long double sum = 0;
	for (size_t i = 0; i < nprob; i++) {
		if (n[i] < k)
			return NAN;
		sum += passk_estimate(n[i], c[i], k);
	}
	return (double)(sum / (long double)nprob);
}
