/* passk.h: the unbiased pass@k estimator of the Codex paper, 1 - C(n-c, k) / C(n, k),
 * computed as a product of terms in (0, 1] so it neither overflows nor cancels. */
#ifndef CP_PASSK_H
#define CP_PASSK_H

#include <stddef.h>
#include <stdint.h>

/* one problem with n samples of which c passed; needs 1 <= k <= n and c <= n */
double passk_estimate(uint64_t n, uint64_t c, uint64_t k);
/* mean over problems; NAN when there are none or some problem has fewer than k samples */
double passk_mean(const uint64_t *n, const uint64_t *c, size_t nprob, uint64_t k);

#endif
