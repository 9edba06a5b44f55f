/* test-gpt2-gradcheck: the backward pass is the derivative of the forward pass. Central finite
 * differences on the double-precision model (same code as the float one) for every element
 * of every parameter tensor of a tiny model, with both attention options; then the float
 * model against the double one, recompute against stored activations, and 1 thread against
 * 2 (bit-identical). */
#include "model/gpt2.h"
#include "tap.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 42;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng >> 11) * 0x1.0p-53;
}

enum { B = 2, T = 6 };

static void make_model(struct gpt2d_model *m, int opt)
{
	struct gpt2_config c = { 13, 8, 2, 2, 8, opt, opt };
	gpt2d_create(m, &c);
	gpt2d_init_weights(m, 7);
	/* move LayerNorm weights off 1 and biases off 0, and make weights large enough that
	 * every term matters */
	for (uint64_t i = 0; i < m->lay.total; i++)
		m->params[i] += 0.2 * (urand() - 0.5);
	gpt2d_setup(m, B, T, 0);
}

static void gradcheck(int opt, const uint32_t *tok)
{
	struct gpt2d_model m;
	make_model(&m, opt);
	gpt2d_zero_grad(&m);
	double loss = gpt2d_forward(&m, tok, B, T);
	gpt2d_backward(&m, 1.0);
	ok(isfinite(loss) && loss > 0, "opt=%d: loss %.6f is finite", opt, loss);
	double *ana = malloc(m.lay.total * sizeof(double));
	memcpy(ana, m.grads, m.lay.total * sizeof(double));
	const double h = 1e-5;
	for (int t = 0; t < GPT2_NT; t++) {
		double num2 = 0, diff2 = 0, maxabs = 0;
		for (uint64_t i = m.lay.off[t]; i < m.lay.off[t] + m.lay.size[t]; i++) {
			double p = m.params[i];
			m.params[i] = p + h;
			double lp = gpt2d_forward(&m, tok, B, T);
			m.params[i] = p - h;
			double lm = gpt2d_forward(&m, tok, B, T);
			m.params[i] = p;
			double num = (lp - lm) / (2 * h), d = fabs(num - ana[i]);
			num2 += num * num;
			diff2 += d * d;
			if (d > maxabs)
				maxabs = d;
		}
		double rel = sqrt(diff2) / (sqrt(num2) + 1e-30);
		ok(rel < 1e-6 && maxabs < 1e-8 && num2 > 0,
		   "opt=%d: %-18s %5llu elements, rel err %.2e, max abs err %.2e", opt,
		   gpt2_tensor_name(t), (unsigned long long)m.lay.size[t], rel, maxabs);
	}
	free(ana);
	gpt2d_free(&m);
}

/* float model with the same weights: loss and gradients close to double */
static void float_vs_double(int opt, const uint32_t *tok)
{
	struct gpt2d_model d;
	struct gpt2_model f;
	make_model(&d, opt);
	gpt2_create(&f, &d.cfg);
	for (uint64_t i = 0; i < d.lay.total; i++)
		f.params[i] = (float)d.params[i];
	for (uint64_t i = 0; i < d.lay.total; i++)
		d.params[i] = f.params[i];
	gpt2_setup(&f, B, T, 0);
	gpt2d_zero_grad(&d);
	gpt2_zero_grad(&f);
	double ld = gpt2d_forward(&d, tok, B, T);
	double lf = gpt2_forward(&f, tok, B, T);
	gpt2d_backward(&d, 1.0);
	gpt2_backward(&f, 1.0f);
	ok(fabs(ld - lf) / ld < 1e-6, "opt=%d: float loss %.8f vs double %.8f", opt, lf, ld);
	double worst = 0;
	int worst_t = 0;
	for (int t = 0; t < GPT2_NT; t++) {
		double n2 = 0, e2 = 0;
		for (uint64_t i = d.lay.off[t]; i < d.lay.off[t] + d.lay.size[t]; i++) {
			n2 += d.grads[i] * d.grads[i];
			e2 += (d.grads[i] - f.grads[i]) * (d.grads[i] - f.grads[i]);
		}
		double rel = sqrt(e2) / sqrt(n2);
		if (rel > worst) {
			worst = rel;
			worst_t = t;
		}
	}
	ok(worst < 1e-5, "opt=%d: float gradients within %.2e of double (worst %s)", opt, worst,
	   gpt2_tensor_name(worst_t));
	gpt2d_free(&d);
	gpt2_free(&f);
}

/* float gradients under the given settings, for bit comparison */
/* big enough that every matrix product is cut into several tiles */
static const struct gpt2_config bit_cfg = { 300, 64, 2, 4, 128, 1, 1 };
enum { BB = 4, BT_ = 64 };

static float *float_grads(int recompute, int threads, const uint32_t *tok, float *loss)
{
	struct gpt2_config c = bit_cfg;
	struct gpt2_model m;
	gpt2_create(&m, &c);
	gpt2_init_weights(&m, 3);
	omp_set_num_threads(threads);
	gpt2_setup(&m, BB, BT_, recompute);
	*loss = gpt2_forward(&m, tok, BB, BT_);
	gpt2_backward(&m, 1.0f);
	float *g = malloc(m.lay.total * sizeof(float));
	memcpy(g, m.grads, m.lay.total * sizeof(float));
	gpt2_free(&m);
	return g;
}

static void bit_identical(void)
{
	uint32_t tok[BB * BT_];
	for (int i = 0; i < BB * BT_; i++)
		tok[i] = (uint32_t)(urand() * bit_cfg.vocab_size);
	struct gpt2_config c = bit_cfg;
	struct gpt2_layout lay;
	gpt2_layout(&c, &lay);
	float l1, l2, l3;
	float *a = float_grads(0, 1, tok, &l1);
	float *b = float_grads(1, 1, tok, &l2);
	float *d = float_grads(0, 3, tok, &l3);
	ok(l1 == l2 && !memcmp(a, b, lay.total * sizeof(float)),
	   "recompute gives the same loss and gradient bytes");
	ok(l1 == l3 && !memcmp(a, d, lay.total * sizeof(float)),
	   "1 thread and 3 threads give the same loss and gradient bytes");
	free(a);
	free(b);
	free(d);
}

static void layout_checks(void)
{
	struct gpt2_config c;
	struct gpt2_layout lay;
	ok(gpt2_preset("gpt2", &c) == 0, "preset gpt2 exists");
	gpt2_layout(&c, &lay);
	is_int(lay.total, 124439808, "gpt2 has 124439808 parameters");
	ok(gpt2_preset("codeparrot-small", &c) == 0, "preset codeparrot-small exists");
	gpt2_layout(&c, &lay);
	is_int(lay.total, 111008256, "codeparrot-small has 111008256 parameters");
	ok(gpt2_preset("codeparrot", &c) == 0 && c.scale_attn_by_inverse_layer_idx &&
		   c.reorder_and_upcast_attn, "codeparrot preset sets both attention options");
	gpt2_layout(&c, &lay);
	ok(lay.total > 1500000000ULL && lay.off[GPT2_LNFB] * sizeof(float) > (1ULL << 32),
	   "codeparrot layout: %llu parameters, byte offsets past 2^32 in 64 bits",
	   (unsigned long long)lay.total);
	ok(gpt2_preset("nope", &c) == -1, "unknown preset refused");
	struct gpt2_config bad = { 10, 8, 1, 3, 8, 0, 0 };
	ok(gpt2_config_check(&bad) != NULL, "width not a multiple of heads refused");
}

int main(void)
{
	omp_set_num_threads(1);
	openblas_set_num_threads(1);
	uint32_t tok[B * T];
	for (int i = 0; i < B * T; i++)
		tok[i] = (uint32_t)(urand() * 13);
	layout_checks();
	gradcheck(0, tok);
	gradcheck(1, tok);
	float_vs_double(0, tok);
	float_vs_double(1, tok);
	bit_identical();
	return done_testing();
}
