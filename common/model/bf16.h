/* bf16.h: bfloat16 conversions shared by the host (C11) and the CUDA kernels (nvcc), so that
 * the host tests check the very code the GPU runs: fp32 -> bf16 rounding to nearest even,
 * bf16 -> fp32, and stochastic rounding.
 *
 * Stochastic rounding adds 16 random bits below the kept mantissa before truncating, so a
 * value rounds up with probability equal to its distance from the lower neighbour: unbiased
 * in expectation, which keeps small AdamW updates from vanishing into the master weights'
 * bf16 copy. The random bits are a pure function of (seed, step, index), a counter-based
 * generator with no state, so the GPU's result does not depend on the launch shape or thread
 * order, and a resume that knows the seed and the step reproduces it bit for bit.
 *
 * A bf16 is kept as its 16 bits (uint16_t): the top half of the fp32 with the same value. */
#ifndef CP_MODEL_BF16_H
#define CP_MODEL_BF16_H

#include <stdint.h>
#ifndef __CUDA_ARCH__
#include <string.h>
#endif

#ifdef __CUDACC__
#define CP_HD __host__ __device__
#else
#define CP_HD
#endif

typedef uint16_t cp_bf16;

CP_HD static inline uint32_t cp_f32_bits(float f)
{
#ifdef __CUDA_ARCH__
	return __float_as_uint(f);
#else
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
#endif
}

CP_HD static inline float cp_bits_f32(uint32_t u)
{
#ifdef __CUDA_ARCH__
	return __uint_as_float(u);
#else
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
#endif
}

CP_HD static inline float cp_bf16_to_f32(cp_bf16 h)
{
	return cp_bits_f32((uint32_t)h << 16);
}

/* a NaN stays a NaN (quiet, its sign kept): truncating could leave the mantissa zero, inf */
CP_HD static inline int cp_f32_bits_nan(uint32_t u)
{
	return (u & 0x7fffffffu) > 0x7f800000u;
}

/* to nearest, ties to even; past the largest finite bf16 (by half an ulp or more) to inf */
CP_HD static inline cp_bf16 cp_f32_to_bf16(float f)
{
	uint32_t u = cp_f32_bits(f);
	if (cp_f32_bits_nan(u))
		return (cp_bf16)((u >> 16) | 0x0040u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (cp_bf16)(u >> 16);
}

/* splitmix64's finaliser */
CP_HD static inline uint64_t cp_sr_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

/* the 16 random bits of element INDEX at optimizer step STEP under SEED */
CP_HD static inline uint32_t cp_sr_bits(uint64_t seed, uint64_t step, uint64_t index)
{
	uint64_t x = cp_sr_mix(seed + 0x9e3779b97f4a7c15ull * (step + 1));
	x = cp_sr_mix(x ^ (index * 0xd1b54a32d192ed03ull + 0x8cb92ba72f3d8dd7ull));
	return (uint32_t)(x >> 48);
}

/* stochastic rounding of F with the random bits R (0..65535): up with probability
 * (F's bits below the bf16 mantissa) / 65536, towards zero otherwise */
CP_HD static inline cp_bf16 cp_f32_to_bf16_sr_bits(float f, uint32_t r)
{
	uint32_t u = cp_f32_bits(f);
	if (cp_f32_bits_nan(u))
		return (cp_bf16)((u >> 16) | 0x0040u);
	return (cp_bf16)((u + (r & 0xffffu)) >> 16);
}

CP_HD static inline cp_bf16 cp_f32_to_bf16_sr(float f, uint64_t seed, uint64_t step,
					      uint64_t index)
{
	return cp_f32_to_bf16_sr_bits(f, cp_sr_bits(seed, step, index));
}

#endif
