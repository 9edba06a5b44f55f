/* gpt2.c: the GPT-2 configuration, presets and parameter layout, the float instantiation of
 * the kernels and the model (kernels-impl.h, gpt2-impl.h), and the CPU backend's table: the
 * training half here, the inference half in cpu-infer.c. */
#include "model/gpt2.h"
#include "model/kernels.h"
#include "model/backend.h"
#include "model/cpu-infer.h"
#include "model/fexp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct preset {
	const char *name;
	struct gpt2_config c;
};

/* codeparrot's initialize_model sets both attention options; plain GPT-2 does not. */
static const struct preset presets[] = {
	{ "tiny", { 512, 128, 2, 2, 32, 0, 0 } },
	{ "codeparrot-small", { 32768, 1024, 12, 12, 768, 1, 1 } },
	{ "gpt2", { 50257, 1024, 12, 12, 768, 0, 0 } },
	{ "medium", { 50257, 1024, 24, 16, 1024, 0, 0 } },
	{ "large", { 50257, 1024, 36, 20, 1280, 0, 0 } },
	{ "codeparrot", { 32768, 1024, 48, 25, 1600, 1, 1 } },
};

int gpt2_preset(const char *name, struct gpt2_config *c)
{
	for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
		if (!strcmp(presets[i].name, name)) {
			*c = presets[i].c;
			return 0;
		}
	return -1;
}

const char *gpt2_preset_names(void)
{
	return "tiny, codeparrot-small, gpt2, medium, large, codeparrot";
}

const char *gpt2_config_check(const struct gpt2_config *c)
{
	if (c->vocab_size < 2)
		return "the vocabulary needs at least 2 ids";
	if (c->n_ctx < 1 || c->n_layer < 1 || c->n_head < 1 || c->n_embd < 1)
		return "every dimension must be positive";
	if (c->n_embd % c->n_head)
		return "the width must be a multiple of the number of heads";
	/* BLAS takes int dimensions: keep every matrix side below 2^31 */
	if (c->vocab_size > (1u << 30) || c->n_ctx > (1u << 24) || c->n_embd > (1u << 20) ||
	    c->n_layer > 4096)
		return "a dimension is too large";
	return NULL;
}

static const char *const tensor_names[GPT2_NT] = {
	"wte", "wpe", "ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias",
	"attn.c_proj.weight", "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight",
	"mlp.c_fc.bias", "mlp.c_proj.weight", "mlp.c_proj.bias", "ln_f.weight", "ln_f.bias",
};

const char *gpt2_tensor_name(int t)
{
	return t >= 0 && t < GPT2_NT ? tensor_names[t] : "?";
}

uint64_t gpt2_tensor_offset(const struct gpt2_config *c, const struct gpt2_layout *lay, int t,
			    int layer)
{
	uint64_t per = gpt2_tensor_per_layer(t) ? lay->size[t] / c->n_layer : 0;
	return lay->off[t] + per * (uint64_t)layer;
}

int gpt2_tensor_per_layer(int t)
{
	return t >= GPT2_LN1W && t <= GPT2_FCPROJB;
}

int gpt2_tensor_decays(int t)
{
	return t == GPT2_WTE || t == GPT2_WPE || t == GPT2_QKVW || t == GPT2_ATTPROJW ||
	       t == GPT2_FCW || t == GPT2_FCPROJW;
}

int gpt2_tensor_shape(const struct gpt2_config *c, int t, uint64_t d[2])
{
	uint64_t C = c->n_embd;
	switch (t) {
	case GPT2_WTE: d[0] = c->vocab_size; d[1] = C; return 2;
	case GPT2_WPE: d[0] = c->n_ctx; d[1] = C; return 2;
	case GPT2_QKVW: d[0] = C; d[1] = 3 * C; return 2;
	case GPT2_QKVB: d[0] = 3 * C; return 1;
	case GPT2_ATTPROJW: d[0] = C; d[1] = C; return 2;
	case GPT2_FCW: d[0] = C; d[1] = 4 * C; return 2;
	case GPT2_FCB: d[0] = 4 * C; return 1;
	case GPT2_FCPROJW: d[0] = 4 * C; d[1] = C; return 2;
	default: d[0] = C; return 1;
	}
}

void gpt2_layout(const struct gpt2_config *c, struct gpt2_layout *lay)
{
	uint64_t off = 0;
	for (int t = 0; t < GPT2_NT; t++) {
		uint64_t d[2] = { 1, 1 };
		int nd = gpt2_tensor_shape(c, t, d);
		uint64_t n = nd == 2 ? d[0] * d[1] : d[0];
		if (gpt2_tensor_per_layer(t))
			n *= c->n_layer;
		lay->off[t] = off;
		lay->size[t] = n;
		off += n;
	}
	lay->total = off;
}

double gpt2_flops_per_token(const struct gpt2_config *c, int T)
{
	struct gpt2_layout lay;
	gpt2_layout(c, &lay);
	/* 6N for the products with the weights (embeddings included), 6LCT for attention's
	 * two products over the causal half of the T x T scores: the 6N + 6LCT */
	return 6.0 * (double)lay.total + 6.0 * c->n_layer * (double)c->n_embd * T;
}

uint64_t gpt2_activation_bytes(const struct gpt2_config *c, int B, int T, int recompute,
			       int real_size)
{
	uint64_t C = c->n_embd, L = c->n_layer, NH = c->n_head, V = c->vocab_size;
	uint64_t BT = (uint64_t)B * T, BTC = BT * C;
	uint64_t per = 15 * BTC + 4 * BT + (uint64_t)B * NH * T * T;
	uint64_t n = (recompute ? 1 : L) * per + (L + 1) * BTC + BTC + 2 * BT + BT * V + 2 * BT +
		     6 * BTC + (uint64_t)B * NH * T;
	return n * (uint64_t)real_size;
}

#define GPT2_REAL float
#define GPT2_NAME(x) gpt2_##x
#define GPT2_GEMM cblas_sgemm
#define GPT2_GEMV cblas_sgemv
#define GPT2_EXP fexp
#define GPT2_SQRT sqrtf
#include "model/gpt2-impl.h"

/* ---- the CPU backend: the functions above on host memory ---- */

static void cpu_adamw(struct gpt2_model *m, uint64_t t, float lr, float wd, float gscale)
{
	gpt2_adamw_zero(m, t, lr, wd, gscale);
}

static void cpu_allreduce_grads(struct gpt2_model *m, const struct gpt2_comm *c)
{
	if (c->size > 1)
		c->allreduce_host(m->grads, m->lay.total, 0);
}

static void cpu_nothing(struct gpt2_model *m)
{
	(void)m;
}

const struct gpt2_backend gpt2_cpu_backend = {
	.name = "cpu",
	.tolerance = 0,
	.host_memory = 1,
	.setup = gpt2_setup,
	.forward = gpt2_forward,
	.backward = gpt2_backward,
	.zero_grad = gpt2_zero_grad,
	.allreduce_grads = cpu_allreduce_grads,
	.grad_norm = gpt2_grad_norm,
	.adamw = cpu_adamw,
	.adamw_range = gpt2_adamw_range,
	.to_host = cpu_nothing,
	.from_host = cpu_nothing,
	.kv_new = gpt2_cpu_kv_new,
	.kv_free = gpt2_cpu_kv_free,
	.kv_reset = gpt2_cpu_kv_reset,
	.kv_len = gpt2_cpu_kv_len,
	.kv_copy_row = gpt2_cpu_kv_copy_row,
	.kv_forward = gpt2_cpu_kv_forward,
};
