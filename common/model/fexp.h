/* fexp.h: exp in float that the compiler can vectorize (libm's expf is a call per element,
 * which keeps the softmax, the loss and GELU scalar). Within 1 ulp of expf over [-87, 88]
 * (checked on every float there); below, it returns exp(-87) (about 1.6e-38) where expf goes subnormal, and
 * above 88 it returns exp(88): where the model uses it (softmax terms of at most 1, the
 * GELU's sigmoid) neither changes a result. NaN stays NaN. __host__ __device__, so the
 * CUDA kernels' GELU (model/gpu-math.h) is the CPU's. */
#ifndef CP_FEXP_H
#define CP_FEXP_H

#include <stdint.h>
#include <string.h>

#include "model/bf16.h"

CP_HD static inline float fexp(float x)
{
	x = x < -87.0f ? -87.0f : x;
	x = x > 88.0f ? 88.0f : x;
	/* x = n ln2 + r, |r| <= ln2 / 2: n rounded to nearest by the 1.5 * 2^23 trick, r in two
	 * parts of ln2 (the first exact in float) so it loses no bits */
	float n = x * 1.44269504088896341f + 12582912.0f;
	n -= 12582912.0f;
	float r = x - n * 0.693359375f;
	r = r - n * -2.12194440e-4f;
	/* e^r: its minimax polynomial on [-ln2/2, ln2/2] (Cephes' coefficients) */
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	/* 2^n's bits, n in [-126, 127] (unsigned: a NaN's garbage n must not overflow) */
	uint32_t e = (uint32_t)((int32_t)n + 127) << 23;
	float s;
	memcpy(&s, &e, sizeof(s));
	return p * s;
}

#endif
