/* test-passk: the pass@k estimator against values worked out by hand from
 * 1 - C(n-c, k) / C(n, k), and its mean over problems. */
#include "eval/passk.h"
#include "tap.h"

#include <math.h>

static int near(double got, double want)
{
	return fabs(got - want) <= 1e-12 * (fabs(want) > 1 ? fabs(want) : 1);
}

#define is_near(got, want, ...) do { double g_ = (got), w_ = (want); \
	if (!ok(near(g_, w_), __VA_ARGS__)) printf("#   got %.17g, want %.17g\n", g_, w_); } while (0)

int main(void)
{
	/* k = 1 is the fraction that passed */
	is_near(passk_estimate(6, 3, 1), 0.5, "n=6 c=3 k=1: 1/2");
	ok(passk_estimate(6, 3, 1) == 0.5, "n=6 c=3 k=1 is exactly 0.5");
	is_near(passk_estimate(5, 2, 1), 0.4, "n=5 c=2 k=1: 2/5");
	is_near(passk_estimate(200, 7, 1), 7.0 / 200, "n=200 c=7 k=1: 7/200");
	/* C(3,2)/C(5,2) = 3/10 */
	is_near(passk_estimate(5, 2, 2), 0.7, "n=5 c=2 k=2: 1 - 3/10");
	/* C(2,2)/C(3,2) = 1/3 */
	is_near(passk_estimate(3, 1, 2), 2.0 / 3, "n=3 c=1 k=2: 1 - 1/3");
	/* C(199,100)/C(200,100) = 100/200 */
	is_near(passk_estimate(200, 1, 100), 0.5, "n=200 c=1 k=100: 1/2");
	/* C(198,100)/C(200,100) = (100*99)/(200*199) */
	is_near(passk_estimate(200, 2, 100), 1.0 - 9900.0 / 39800.0, "n=200 c=2 k=100");
	/* C(17,10)/C(20,10) = (10*9*8)/(20*19*18) = 720/6840 */
	is_near(passk_estimate(20, 3, 10), 1.0 - 720.0 / 6840.0, "n=20 c=3 k=10");
	/* C(8,5)/C(10,5) = 56/252 */
	is_near(passk_estimate(10, 2, 5), 1.0 - 56.0 / 252.0, "n=10 c=2 k=5");
	is_near(passk_estimate(10, 0, 10), 0.0, "nothing passed: 0");
	is_near(passk_estimate(10, 0, 1), 0.0, "nothing passed, k=1: 0");
	is_near(passk_estimate(10, 10, 10), 1.0, "everything passed: 1");
	is_near(passk_estimate(10, 6, 5), 1.0, "fewer failures (4) than draws (5): 1");
	/* large n, where C(n, k) overflows any float: C(n-1,k)/C(n,k) = (n-k)/n */
	is_near(passk_estimate(100000, 1, 50000), 0.5, "n=100000 c=1 k=50000: 1/2");
	is_near(passk_estimate(1000000, 1, 10), 10.0 / 1000000, "n=1e6 c=1 k=10: k/n");
	ok(isnan(passk_estimate(5, 1, 6)), "k > n is undefined");
	ok(isnan(passk_estimate(5, 1, 0)), "k = 0 is undefined");
	ok(isnan(passk_estimate(5, 6, 1)), "c > n is undefined");

	uint64_t n[] = { 6, 5, 3 }, c[] = { 3, 2, 1 };
	is_near(passk_mean(n, c, 3, 1), (0.5 + 0.4 + 1.0 / 3) / 3, "mean pass@1 over 3 problems");
	is_near(passk_mean(n, c, 3, 2), (1.0 - 3.0 / 15 + 0.7 + 2.0 / 3) / 3,
		"mean pass@2 over 3 problems (C(3,2)/C(6,2) = 3/15)");
	ok(isnan(passk_mean(n, c, 3, 4)), "pass@4 undefined when a problem has 3 samples");
	ok(isnan(passk_mean(n, c, 0, 1)), "no problems: undefined");
	return done_testing();
}
