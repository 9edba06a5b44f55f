/* mfu.h: model FLOPs utilisation on a GPU: the dense bf16 peak of the card a backend runs on,
 * looked up by the name the driver reports, and the utilisation of a training throughput.
 * The FLOPs per token are gpt2_flops_per_token (model/gpt2.h): 6N + 6LCT. */
#ifndef CP_MODEL_MFU_H
#define CP_MODEL_MFU_H

/* Dense (not sparse) bf16 tensor-core peak in TFLOP/s of the card called NAME (as
 * cudaGetDeviceProperties names it, e.g. "NVIDIA H100 80GB HBM3"; case ignored), or 0 when
 * the card is not in the table: never a guess. */
double mfu_peak_bf16_tflops(const char *name);
/* the peak as text for a report: "989 TFLOP/s" or "unknown" (static buffer) */
const char *mfu_peak_text(const char *name);
/* TOKENS_PER_S * FLOPS_PER_TOKEN / (PEAK_TFLOPS * 1e12); 0 when the peak is unknown (0) or
 * any input is not a positive number: never negative */
double mfu_ratio(double tokens_per_s, double flops_per_token, double peak_tflops);

#endif
