/* test-bf16.c: model/bf16.h on the host, the code the CUDA kernels compile too. Rounding to
 * nearest even against a reference computed here in double from the two bf16 neighbours
 * (decoded by hand, not through the header), over the special cases (signed zeros, infinities,
 * NaNs that truncation would turn into infinities, subnormals, ties both ways, the largest
 * finite values) and a sweep of bit patterns; bf16 -> fp32 for all 65536 values; stochastic
 * rounding a pure function of (seed, step, index), always one of the two neighbours, and
 * unbiased: the mean of many roundings within a few standard errors of the value. */
#include "tap.h"
#include "model/bf16.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

static float f_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static uint32_t u_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

/* a bf16's value from its fields; the exponent field 255 gives +-2^128 for the mantissa 0
 * (the rounding's overflow threshold stands in for inf) and NaN otherwise */
static double bf16_value(uint32_t h)
{
	int sign = (h >> 15) & 1, e = (h >> 7) & 0xff, m = h & 0x7f;
	double v;
	if (e == 255)
		v = m ? NAN : ldexp(1.0, 128);
	else if (e == 0)
		v = ldexp((double)m, -133);		/* subnormal: m * 2^-126 * 2^-7 */
	else
		v = ldexp(128.0 + m, e - 134);		/* (1 + m/128) * 2^(e-127) */
	return sign ? -v : v;
}

/* round-to-nearest-even, the reference: of the bf16 below (truncation) and above in
 * magnitude, the nearer in double; a tie takes the even mantissa */
static uint16_t rne_ref(uint32_t u)
{
	double x = (double)f_of(u);
	uint32_t lo = u >> 16, hi = lo + 1;
	double dl = fabs(x - bf16_value(lo)), dh = fabs(x - bf16_value(hi));
	if ((u & 0xffff) == 0)
		return (uint16_t)lo;
	if (dl < dh)
		return (uint16_t)lo;
	if (dh < dl)
		return (uint16_t)hi;
	return (uint16_t)((lo & 1) ? hi : lo);
}

static int is_nan16(uint16_t h)
{
	return ((h >> 7) & 0xff) == 0xff && (h & 0x7f);
}

static void test_rne_specials(void)
{
	static const struct { uint32_t in; uint16_t want; const char *what; } cases[] = {
		{ 0x00000000, 0x0000, "+0" },
		{ 0x80000000, 0x8000, "-0" },
		{ 0x7f800000, 0x7f80, "+inf" },
		{ 0xff800000, 0xff80, "-inf" },
		{ 0x00000001, 0x0000, "the smallest subnormal rounds to +0" },
		{ 0x80000001, 0x8000, "... and its negative to -0" },
		{ 0x00008000, 0x0000, "a subnormal tie to even (0)" },
		{ 0x00018000, 0x0002, "a subnormal tie to even (up)" },
		{ 0x00010000, 0x0001, "the smallest bf16 subnormal is exact" },
		{ 0x007fffff, 0x0080, "the largest subnormal rounds up to the smallest normal" },
		{ 0x3f808000, 0x3f80, "1 + half an ulp: a tie, stays even" },
		{ 0x3f818000, 0x3f82, "a tie above an odd mantissa goes up" },
		{ 0x3f808001, 0x3f81, "just past a tie goes up" },
		{ 0xbf818000, 0xbf82, "negative tie to even" },
		{ 0x3fffffff, 0x4000, "carry into the exponent" },
		{ 0x7f7f0000, 0x7f7f, "the largest finite bf16 is exact" },
		{ 0x7f7f7fff, 0x7f7f, "below the overflow threshold stays finite" },
		{ 0x7f7f8000, 0x7f80, "the overflow threshold (a tie above odd) goes to inf" },
		{ 0x7f7fffff, 0x7f80, "the largest finite float goes to inf" },
		{ 0xff7fffff, 0xff80, "... and its negative to -inf" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint16_t got = cp_f32_to_bf16(f_of(cases[i].in));
		ok(got == cases[i].want && got == rne_ref(cases[i].in), "rne %08x -> %04x: %s",
		   cases[i].in, cases[i].want, cases[i].what);
	}
	static const uint32_t nans[] = { 0x7f800001, 0x7fc00000, 0xff800001, 0x7fffffff,
					 0x7f80ffff, 0xffc12345 };
	int good = 1;
	for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++) {
		uint16_t h = cp_f32_to_bf16(f_of(nans[i]));
		good &= is_nan16(h) && (h >> 15) == (nans[i] >> 31) &&
			isnan(cp_bf16_to_f32(h));
	}
	ok(good, "a NaN stays a NaN with its sign, also when its payload is below bit 16");
}

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return *s >> 11;
}

static void test_rne_sweep(void)
{
	uint64_t s = 12345, bad = 0, n = 0;
	for (int i = 0; i < 2000000; i++) {
		uint32_t u = (uint32_t)lcg(&s);
		if (i & 1)	/* also ties and near-ties exactly */
			u = (u & 0xffff0000u) | (uint32_t[]){ 0x8000, 0x7fff, 0x8001, 0 }[i >> 1 & 3];
		if ((u & 0x7fffffff) > 0x7f800000)
			continue;
		n++;
		bad += cp_f32_to_bf16(f_of(u)) != rne_ref(u);
	}
	ok(bad == 0, "rne equals the reference on %llu patterns (%llu differ)",
	   (unsigned long long)n, (unsigned long long)bad);
}

static void test_to_f32(void)
{
	int good = 1;
	for (uint32_t h = 0; h < 65536; h++) {
		float f = cp_bf16_to_f32((uint16_t)h);
		double want = bf16_value(h);
		if (((h >> 7) & 0xff) == 0xff && !(h & 0x7f))
			good &= isinf(f) && (f < 0) == (h >> 15);
		else if (isnan(want))
			good &= isnan(f);
		else
			good &= (double)f == want && (u_of(f) >> 16) == h && (u_of(f) & 0xffff) == 0;
		/* every bf16 value is exactly representable: it rounds to itself */
		if (!isnan(want))
			good &= cp_f32_to_bf16(f) == h;
	}
	ok(good, "bf16 -> fp32 for all 65536 values: the decoded value, rounding back to itself");
}

static void test_sr(void)
{
	/* a pure function of (seed, step, index) */
	int same = 1, differs = 0, step_differs = 0;
	for (uint64_t i = 0; i < 1000; i++) {
		float x = 1.0f + (float)i * 1e-5f;
		same &= cp_f32_to_bf16_sr(x, 42, 7, i) == cp_f32_to_bf16_sr(x, 42, 7, i);
		differs += cp_sr_bits(42, 7, i) != cp_sr_bits(43, 7, i);
		step_differs += cp_sr_bits(42, 7, i) != cp_sr_bits(42, 8, i);
	}
	ok(same, "sr: the same seed, step and index give the same bits");
	ok(differs > 990 && step_differs > 990, "sr: another seed or step gives other bits (%d, %d "
	   "of 1000 differ)", differs, step_differs);

	/* always one of the two neighbours; exact values stay */
	uint64_t s = 99;
	int inside = 1, exact = 1;
	for (int i = 0; i < 200000; i++) {
		uint32_t u = (uint32_t)lcg(&s);
		if ((u & 0x7fffffff) > 0x7f800000)
			continue;
		uint16_t lo = (uint16_t)(u >> 16), got = cp_f32_to_bf16_sr(f_of(u), 5, 1, (uint64_t)i);
		inside &= got == lo || got == (uint16_t)(lo + 1);
		if ((u & 0xffff) == 0)
			exact &= got == lo;
		exact &= cp_f32_to_bf16_sr(f_of(u & 0xffff0000u), 5, 1, (uint64_t)i) == lo;
	}
	ok(inside, "sr never leaves the two neighbours");
	ok(exact, "sr leaves a bf16 value as it is");
	ok(cp_f32_to_bf16_sr(INFINITY, 1, 1, 1) == 0x7f80 &&
	   cp_f32_to_bf16_sr(-INFINITY, 1, 1, 2) == 0xff80 &&
	   is_nan16(cp_f32_to_bf16_sr(f_of(0x7f800001), 1, 1, 3)),
	   "sr: infinities stay, a NaN stays a NaN");
	int up = 0;
	for (uint64_t i = 0; i < 1000; i++)
		up += cp_f32_to_bf16_sr(f_of(0x7f7fffff), 3, 3, i) == 0x7f80;
	ok(up > 900, "sr: the largest float goes to the largest bf16 or inf (%d of 1000 inf)", up);
}

/* the mean of N roundings of X (its neighbours LO < HI apart by one ulp) within 4 standard
 * errors of X */
static void check_unbiased(uint32_t u, const char *what)
{
	const uint64_t N = 400000;
	float x = f_of(u);
	double lo = bf16_value(u >> 16), hi = bf16_value((u >> 16) + 1);
	double sum = 0;
	for (uint64_t i = 0; i < N; i++)
		sum += (double)cp_bf16_to_f32(cp_f32_to_bf16_sr(x, 2024, 17, i));
	double mean = sum / (double)N, p = ((double)x - lo) / (hi - lo);
	double se = fabs(hi - lo) * sqrt(p * (1 - p) / (double)N);
	ok(fabs(mean - (double)x) <= 4 * se, "sr unbiased, %s: mean %.9g, value %.9g, se %.3g",
	   what, mean, (double)x, se);
}

static void test_sr_unbiased(void)
{
	check_unbiased(0x3f804ccd, "1 + 0.3 ulp");
	check_unbiased(0xbf80e666, "-(1 + 0.9 ulp)");
	check_unbiased(0x3f800290, "1 + 0.01 ulp");
	check_unbiased(0x00012345, "a subnormal");
	check_unbiased(0x4effc000, "just below a power of two (carry into the exponent)");
	double bits = 0;
	for (uint64_t i = 0; i < 100000; i++)
		bits += cp_sr_bits(1, 2, i);
	double mean = bits / 100000 / 65535;
	ok(fabs(mean - 0.5) < 4 * sqrt(1.0 / 12 / 100000), "sr bits uniform on average (%.4f)",
	   mean);
}

int main(void)
{
	test_rne_specials();
	test_rne_sweep();
	test_to_f32();
	test_sr();
	test_sr_unbiased();
	return done_testing();
}
