/* test-gpt2-torch: the float model against an independent PyTorch GPT-2
 * (tests/ref/gpt2_torch_ref.py, run with Debian's python3-torch) on the same weights, which
 * travel through our Hugging Face export: logits, loss, every gradient tensor, and the losses
 * and gradient norms of 10 AdamW steps with clipping and warmup + cosine decay. Both attention
 * options. Relative errors are norm-wise per tensor; the bound is 1e-4.
 * Skips when torch is missing (TORCH_PYTHON names the interpreter; default /usr/bin/python3). */
#include "train/lr-schedule.h"
#include "model/gpt2.h"
#include "model/hf.h"
#include "model/safetensors.h"
#include "tap.h"
#include "base/xalloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { B = 3, T = 12, STEPS = 10 };
static const double LR = 3e-3, WD = 0.1, CLIP = 1.0, MIN_FRAC = 0.1;
static const int WARMUP = 3;
static const double TOL = 1e-4;

static uint64_t rng = 12345;
static double urand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng >> 11) * 0x1.0p-53;
}

/* ||a - b|| / ||b|| */
static double rel_err(const float *a, const float *b, uint64_t n)
{
	double e = 0, r = 0;
	for (uint64_t i = 0; i < n; i++) {
		e += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		r += (double)b[i] * b[i];
	}
	return sqrt(e) / (sqrt(r) + 1e-30);
}

static const float *ref_tensor(struct st_file *f, const char *name, uint64_t n)
{
	const struct st_tensor *t = st_find(f, name);
	if (!t || strcmp(t->dtype, "F32") || t->nbytes != n * sizeof(float))
		return NULL;
	return t->data;
}

struct job {
	struct gpt2_model m;
	uint32_t utok[STEPS * B * T];
	char *mdir, *inp, *outp;
};

/* a model for option OPT exported to TMP/modelOPT, its token batches to TMP/inOPT.st */
static void prepare(struct job *j, int opt, const char *tmp)
{
	struct gpt2_config c = { 97, 16, 2, 4, 32, opt, opt };
	struct gpt2_model *m = &j->m;
	gpt2_create(m, &c);
	gpt2_init_weights(m, 100 + (uint64_t)opt);
	/* LayerNorm weights off 1, biases off 0, so their gradients are tested in general */
	for (int t = 0; t < GPT2_NT; t++)
		if (!gpt2_tensor_decays(t))
			for (uint64_t i = m->lay.off[t]; i < m->lay.off[t] + m->lay.size[t]; i++)
				m->params[i] += (float)(0.2 * (urand() - 0.5));
	char *mdir = j->mdir = xasprintf("%s/model%d", tmp, opt);
	char *inp = j->inp = xasprintf("%s/in%d.st", tmp, opt);
	j->outp = xasprintf("%s/out%d.st", tmp, opt);
	ok(gpt2_hf_export(&c, m->params, mdir, NULL) == 0, "opt=%d: export to %s", opt, mdir);

	int32_t tok[STEPS * B * T];
	uint32_t *utok = j->utok;
	/* two batches in turn, so that the loss falls as the steps fit them */
	for (int i = 0; i < STEPS * B * T; i++)
		utok[i] = (uint32_t)(tok[i] = i < 2 * B * T ? (int32_t)(urand() * c.vocab_size)
							    : tok[i - 2 * B * T]);
	struct st_tensor in = { "tokens", "I32", 3, { STEPS, B, T }, tok, sizeof(tok) };
	char lr[32], wd[32], clip[32], warm[32], minf[32];
	snprintf(lr, sizeof(lr), "%.17g", LR);
	snprintf(wd, sizeof(wd), "%.17g", WD);
	snprintf(clip, sizeof(clip), "%.17g", CLIP);
	snprintf(warm, sizeof(warm), "%d", WARMUP);
	snprintf(minf, sizeof(minf), "%.17g", MIN_FRAC);
	const char *meta[] = { "lr", lr, "wd", wd, "clip", clip, "warmup", warm, "min_frac", minf,
			       "schedule", "cosine", NULL };
	ok(st_write(inp, &in, 1, meta) == 0, "opt=%d: inputs written", opt);
}

/* compare the C model of job J with what the reference wrote */
static void check(struct job *j, int opt)
{
	struct gpt2_model *m = &j->m;
	struct gpt2_config c = m->cfg;
	const uint32_t *utok = j->utok;
	struct st_file *ref = st_open(j->outp);
	if (!ok(ref != NULL, "opt=%d: the torch reference wrote its results", opt))
		goto out;

	gpt2_setup(m, B, T, 0);
	gpt2_zero_grad(m);
	float loss = gpt2_forward(m, utok, B, T);
	const float *rl = ref_tensor(ref, "loss", 1);
	double e = rl ? fabs(loss - rl[0]) / fabs(rl[0]) : 1;
	ok(e <= TOL, "opt=%d: loss %.7f vs torch %.7f, rel err %.2e", opt, loss, rl ? rl[0] : 0, e);
	uint64_t nl = (uint64_t)B * T * c.vocab_size;
	const float *rlog = ref_tensor(ref, "logits", nl);
	e = rlog ? rel_err(m->logits, rlog, nl) : 1;
	ok(e <= TOL, "opt=%d: logits rel err %.2e", opt, e);
	gpt2_backward(m, 1.0f);
	double worst = 0;
	int bad = 0;
	for (int t = 0; t < GPT2_NT; t++) {
		int per = gpt2_tensor_per_layer(t);
		uint64_t slice = per ? m->lay.size[t] / c.n_layer : m->lay.size[t];
		for (uint32_t l = 0; l < (per ? c.n_layer : 1); l++) {
			char *hf = gpt2_hf_name(t, (int)l), *name = xasprintf("grad.%s", hf);
			const float *g = ref_tensor(ref, name, slice);
			double r = g ? rel_err(m->grads + m->lay.off[t] + slice * l, g, slice) : 1;
			if (r > worst)
				worst = r;
			if (r > TOL) {
				bad++;
				diag("%s: rel err %.2e", name, r);
			}
			free(hf);
			free(name);
		}
	}
	ok(!bad, "opt=%d: all %u gradient tensors, worst rel err %.2e", opt, 4 + 12 * c.n_layer,
	   worst);

	const float *rlosses = ref_tensor(ref, "losses", STEPS);
	const float *rnorms = ref_tensor(ref, "grad_norms", STEPS);
	double wl = rlosses ? 0 : 1, wn = rnorms ? 0 : 1;
	for (int s = 0; s < STEPS && rlosses && rnorms; s++) {
		gpt2_zero_grad(m);
		float l = gpt2_forward(m, utok + (size_t)s * B * T, B, T);
		gpt2_backward(m, 1.0f);
		double norm = gpt2_grad_norm(m);
		double lr_s = adamw_lr(ADAMW_COSINE, (uint64_t)s, STEPS, WARMUP, LR, MIN_FRAC);
		gpt2_adamw(m, (uint64_t)s + 1, (float)lr_s, (float)WD,
			   (float)adamw_clip_scale(norm, CLIP));
		double el = fabs(l - rlosses[s]) / fabs(rlosses[s]);
		double en = fabs(norm - rnorms[s]) / fabs(rnorms[s]);
		if (el > wl)
			wl = el;
		if (en > wn)
			wn = en;
	}
	ok(wl <= TOL, "opt=%d: %d AdamW steps: losses within rel err %.2e (%.4f -> %.4f)", opt,
	   STEPS, wl, rlosses ? rlosses[0] : 0, rlosses ? rlosses[STEPS - 1] : 0);
	ok(wn <= TOL, "opt=%d: %d AdamW steps: gradient norms within rel err %.2e", opt, STEPS, wn);
	const float *fw = ref_tensor(ref, "final.transformer.wte.weight", m->lay.size[GPT2_WTE]);
	e = fw ? rel_err(m->params, fw, m->lay.size[GPT2_WTE]) : 1;
	ok(e <= TOL, "opt=%d: wte after %d steps, rel err %.2e", opt, STEPS, e);
out:
	st_close(ref);
	gpt2_free(m);
	free(j->mdir);
	free(j->inp);
	free(j->outp);
}

int main(void)
{
	const char *python = getenv("TORCH_PYTHON") ? getenv("TORCH_PYTHON") : "/usr/bin/python3";
	const char *src = getenv("SRC_DIR") ? getenv("SRC_DIR") : ".";
	char *script = xasprintf("%s/tests/ref/gpt2_torch_ref.py", src);
	char *probe = xasprintf("'%s' -c 'import torch, numpy' 2>/dev/null", python);
	if (access(script, R_OK) || system(probe) != 0) {
		printf("1..0 # SKIP no %s, or %s cannot import torch and numpy\n", script, python);
		return 0;
	}
	char tmp[] = "/tmp/cp-gpt2-torch.XXXXXX";
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	static struct job jobs[2];
	prepare(&jobs[0], 0, tmp);
	prepare(&jobs[1], 1, tmp);
	char *cmd = xasprintf("'%s' '%s' '%s' '%s' '%s' '%s' '%s' '%s'", python, script,
			      jobs[0].mdir, jobs[0].inp, jobs[0].outp, jobs[1].mdir, jobs[1].inp,
			      jobs[1].outp);
	ok(system(cmd) == 0, "the torch reference ran");
	free(cmd);
	check(&jobs[0], 0);
	check(&jobs[1], 1);
	char *rm = xasprintf("rm -rf '%s'", tmp);
	if (system(rm) != 0)
		diag("could not remove %s", tmp);
	free(rm);
	free(script);
	free(probe);
	return done_testing();
}
