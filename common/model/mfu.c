/* mfu.c: the GPUs' peak table and the utilisation (see mfu.h). */
#include "model/mfu.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* NVIDIA's data sheets, dense bf16 (half the "with sparsity" figures). A name matches the
 * first entry it contains, so a more specific name comes before a shorter one. */
static const struct {
	const char *card;
	double tflops;
} peaks[] = {
	{ "H100 PCIe", 756 },	/* the PCIe card's lower clocks and fewer SMs */
	{ "H100", 989 },	/* SXM */
	{ "H200", 989 },
	{ "A100", 312 },
};

/* NAME contains WORD, case ignored */
static int contains(const char *name, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = name; *p; p++) {
		size_t i = 0;
		while (i < n && p[i] && tolower((unsigned char)p[i]) == tolower((unsigned char)word[i]))
			i++;
		if (i == n)
			return 1;
	}
	return 0;
}

double mfu_peak_bf16_tflops(const char *name)
{
	for (size_t i = 0; name && i < sizeof(peaks) / sizeof(peaks[0]); i++)
		if (contains(name, peaks[i].card))
			return peaks[i].tflops;
	return 0;
}

const char *mfu_peak_text(const char *name)
{
	static char text[32];
	double t = mfu_peak_bf16_tflops(name);
	if (t <= 0)
		return "unknown";
	snprintf(text, sizeof(text), "%.0f TFLOP/s", t);
	return text;
}

double mfu_ratio(double tokens_per_s, double flops_per_token, double peak_tflops)
{
	/* written so that a NaN fails every test */
	if (!(tokens_per_s > 0) || !(flops_per_token > 0) || !(peak_tflops > 0))
		return 0;
	return tokens_per_s * flops_per_token / (peak_tflops * 1e12);
}
