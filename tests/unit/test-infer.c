/* test-infer.c: the CPU backend's inference (KV cache) against the training forward, batching and
 * thread-count invariance, and the sampler. Also a helper for the shell tests and the
 * benchmark:
 *   test-infer hf-random DIR VOCAB CTX LAYERS HEADS WIDTH TOKENIZER [SEED]
 *       write a randomly initialised model in Hugging Face format, with TOKENIZER's files
 *   test-infer forward-loss MODELDIR FILE
 *       the training forward's mean loss on FILE's tokens (the tokenizer beside the model)
 *   test-infer copy-bw MIB THREADS
 *       memory copy bandwidth in GB/s (bytes read + written, as STREAM counts them) */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tok/bpe.h"
#include "infer/complete.h"
#include "base/die.h"
#include "model/gpt2.h"
#include "model/hf.h"
#include "model/backend.h"
#include "model/kernels.h"
#include "base/io.h"
#include "base/cli.h"
#include "infer/sample.h"
#include "tap.h"
#include "base/xalloc.h"

/* the CPU backend's inference half is what this tests */
static const struct gpt2_backend *const be = &gpt2_cpu_backend;

static float maxdiff(const float *a, const float *b, size_t n)
{
	float d = 0;
	for (size_t i = 0; i < n; i++)
		if (fabsf(a[i] - b[i]) > d)
			d = fabsf(a[i] - b[i]);
	return d;
}

static void make_model(struct gpt2_model *m, int inv_layer)
{
	struct gpt2_config c = { 97, 48, 3, 2, 32, inv_layer, inv_layer };
	gpt2_create(m, &c);
	gpt2_init_weights(m, 7);
	/* larger than initialisation so that the attention is far from uniform */
	for (uint64_t i = 0; i < m->lay.total; i++)
		m->params[i] *= 4;
}

/* greedy decoding with the cache gives the tokens and logits of full recomputation */
static void test_kv_vs_full(int inv_layer)
{
	struct gpt2_model m;
	make_model(&m, inv_layer);
	uint32_t V = m.cfg.vocab_size;
	int T = (int)m.cfg.n_ctx;
	gpt2_setup(&m, 1, T, 0);
	uint32_t seq[64] = { 5, 17, 3, 88, 42 };
	int n = 5, row = 0;
	struct gpt2_kv *s = be->kv_new(&m, 1, T);
	float *lg = xmalloc(V * sizeof(float));
	be->kv_forward(s, &row, 1, seq, n, lg, 0);
	float worst = 0;
	int same = 1;
	while (n < T) {
		gpt2_forward(&m, seq, 1, n);
		const float *ref = m.logits + (size_t)(n - 1) * V;
		float d = maxdiff(lg, ref, V);
		if (d > worst)
			worst = d;
		uint32_t a = sample_argmax(lg, V), b = sample_argmax(ref, V);
		if (a != b)
			same = 0;
		seq[n++] = b;
		if (n < T)
			be->kv_forward(s, &row, 1, &seq[n - 1], 1, lg, 0);
	}
	ok(same, "inv_layer %d: greedy with the cache picks the tokens of full recomputation (%d steps)",
	   inv_layer, T - 5);
	ok(worst < 1e-4, "inv_layer %d: logits agree at every step (max diff %g)", inv_layer, worst);
	ok(be->kv_len(s, 0) == T - 1, "cache holds %d tokens", be->kv_len(s, 0));

	/* all-position logits of one prefill equal the training forward's */
	float *all = xmalloc((size_t)T * V * sizeof(float));
	be->kv_reset(s);
	be->kv_forward(s, &row, 1, seq, 20, all, 1);
	be->kv_forward(s, &row, 1, seq + 20, T - 20, all + (size_t)20 * V, 1);
	gpt2_forward(&m, seq, 1, T);
	ok(maxdiff(all, m.logits, (size_t)T * V) < 1e-4, "prefill in two chunks: every position's logits");
	/* scoring: mean -log p of the next token equals the trainer's loss */
	double nll = 0;
	for (int t = 0; t + 1 < T; t++) {
		const float *l = all + (size_t)t * V;
		float mx = l[sample_argmax(l, V)];
		double z = 0;
		for (uint32_t v = 0; v < V; v++)
			z += exp((double)(l[v] - mx));
		nll += -((double)(l[seq[t + 1]] - mx) - log(z));
	}
	float loss = gpt2_forward(&m, seq, 1, T);
	nll /= T - 1;
	ok(fabs(nll - loss) < 1e-4, "scored log-probabilities give the trainer's loss (%.6f vs %.6f)",
	   nll, loss);
	free(all);
	free(lg);
	be->kv_free(s);
	gpt2_free(&m);
}

/* Prefilling more than GPT2_FEW_ROWS tokens takes the kernels the training forward takes, in
 * the same tiles: every position's logits are the trainer's, bit for bit, for one row and for
 * two rows prefilled together (the trainer's batch of 2). */
static void test_prefill_exact(void)
{
	struct gpt2_model m;
	make_model(&m, 1);
	size_t V = m.cfg.vocab_size;
	int T = GPT2_FEW_ROWS + 8, rows[2] = { 0, 1 };
	uint32_t seq[GPT2_FEW_ROWS + 8];
	for (int i = 0; i < T; i++)
		seq[i] = (uint32_t)(i * 37 + 5) % (uint32_t)V;
	gpt2_setup(&m, 2, T, 0);
	float *lg = xmalloc(2 * (size_t)T * V * sizeof(float));
	struct gpt2_kv *s = be->kv_new(&m, 2, T);
	be->kv_forward(s, rows, 1, seq, T, lg, 1);
	gpt2_forward(&m, seq, 1, T);
	ok(!memcmp(lg, m.logits, (size_t)T * V * sizeof(float)),
	   "a %d-token prefill's logits are the training forward's, bit for bit (max diff %g)", T,
	   maxdiff(lg, m.logits, (size_t)T * V));
	be->kv_reset(s);
	be->kv_forward(s, rows, 2, seq, T / 2, lg, 1);
	gpt2_forward(&m, seq, 2, T / 2);
	ok(!memcmp(lg, m.logits, (size_t)T * V * sizeof(float)),
	   "two rows of %d prefilled together: the trainer's batch of 2, bit for bit", T / 2);
	free(lg);
	be->kv_free(s);
	gpt2_free(&m);
}

/* rows decoded together equal rows decoded alone; copied rows continue like their source;
 * and the bytes do not depend on the thread count */
static void test_batch(void)
{
	struct gpt2_model m;
	make_model(&m, 1);
	uint32_t V = m.cfg.vocab_size;
	struct gpt2_kv *b = be->kv_new(&m, 4, 32), *one = be->kv_new(&m, 1, 32);
	uint32_t prompts[3][6] = { { 1, 2, 3, 4, 5, 6 }, { 9, 9, 9, 9, 9, 9 }, { 50, 40, 30, 20, 10, 0 } };
	int rows[3] = { 0, 2, 3 }, zero = 0;
	float *lb = xmalloc(3 * V * sizeof(float)), *l1 = xmalloc(V * sizeof(float));
	for (int i = 0; i < 3; i++)
		be->kv_forward(b, &rows[i], 1, prompts[i], 6, NULL, 0);
	uint32_t step[3] = { 7, 8, 11 };
	float worst = 0;
	for (int k = 0; k < 5; k++) {
		be->kv_forward(b, rows, 3, step, 1, lb, 0);
		for (int i = 0; i < 3; i++) {
			be->kv_reset(one);
			uint32_t seq[16];
			memcpy(seq, prompts[i], sizeof(prompts[i]));
			for (int j = 0; j <= k; j++)
				seq[6 + j] = step[i] + 0 * j;
			be->kv_forward(one, &zero, 1, seq, 7 + k, l1, 0);
			float d = maxdiff(lb + (size_t)i * V, l1, V);
			if (d > worst)
				worst = d;
		}
	}
	ok(worst < 1e-4, "three rows decoded as a batch equal each row alone (max diff %g)", worst);

	be->kv_copy_row(b, 1, 2);
	int r12[2] = { 1, 2 };
	uint32_t t12[2] = { 33, 33 };
	be->kv_forward(b, r12, 2, t12, 1, lb, 0);
	ok(!memcmp(lb, lb + V, V * sizeof(float)), "a copied row continues exactly like its source");

	free(lb);
	free(l1);
	be->kv_free(b);
	be->kv_free(one);
	gpt2_free(&m);
}

/* wide enough that every loop runs threaded: the bytes must not depend on the thread count */
static void test_threads(void)
{
	struct gpt2_model m;
	struct gpt2_config c = { 3000, 32, 2, 4, 256, 0, 0 };
	gpt2_create(&m, &c);
	gpt2_init_weights(&m, 11);
	struct gpt2_kv *s = be->kv_new(&m, 3, 32);
	size_t V = c.vocab_size;
	float *x[2] = { xmalloc(3 * V * sizeof(float)), xmalloc(3 * V * sizeof(float)) };
	uint32_t seq[20], step[3] = { 1, 2, 3 };
	int rows[3] = { 0, 1, 2 };
	for (int i = 0; i < 20; i++)
		seq[i] = (uint32_t)(i * 131 % 3000);
	for (int th = 1; th <= 2; th++) {
		omp_set_num_threads(th);
		be->kv_reset(s);
		be->kv_forward(s, rows, 1, seq, 20, NULL, 0);
		be->kv_copy_row(s, 1, 0);
		be->kv_copy_row(s, 2, 0);
		be->kv_forward(s, rows, 3, step, 1, x[th - 1], 0);
	}
	ok(!memcmp(x[0], x[1], 3 * V * sizeof(float)), "1 and 2 threads give the same logits, bit for bit");
	free(x[0]);
	free(x[1]);
	be->kv_free(s);
	gpt2_free(&m);
}

static void test_sampler(void)
{
	float lg[8] = { 1.0f, 3.0f, 2.5f, -1.0f, 3.0f, 0.5f, -INFINITY, 2.0f };
	struct sampler *s = sampler_new(8);
	struct sample_rng r;
	sample_seed(&r, 1, 0);
	struct sample_opts greedy = { 0, 0, 1 };
	is_int(sample_token(s, lg, &greedy, &r), 1, "greedy: the first of the equal best logits");
	struct sample_opts k1 = { 1.0, 1, 1 }, p0 = { 1.0, 0, 1e-9 };
	int allk = 1, allp = 1;
	for (int i = 0; i < 200; i++) {
		allk &= sample_token(s, lg, &k1, &r) == 1;
		allp &= sample_token(s, lg, &p0, &r) == 1;
	}
	ok(allk, "top-k 1 is greedy");
	ok(allp, "a tiny top-p is greedy");

	/* frequencies follow softmax(logits / T) restricted to top-k, then renormalised */
	struct sample_opts k3 = { 0.7, 3, 1 };
	int cnt[8] = { 0 }, N = 60000;
	for (int i = 0; i < N; i++)
		cnt[sample_token(s, lg, &k3, &r)]++;
	double e1 = exp(3.0 / 0.7), e2 = exp(2.5 / 0.7), z = 2 * e1 + e2;
	ok(cnt[0] + cnt[3] + cnt[5] + cnt[6] + cnt[7] == 0, "top-k 3 draws only the 3 best");
	ok(fabs(cnt[1] / (double)N - e1 / z) < 0.01 && fabs(cnt[2] / (double)N - e2 / z) < 0.01,
	   "top-k 3 at temperature 0.7: frequencies %.3f %.3f %.3f, want %.3f %.3f %.3f",
	   cnt[1] / (double)N, cnt[2] / (double)N, cnt[4] / (double)N, e1 / z, e2 / z, e1 / z);

	/* top-p: probabilities at T=1 are 0.327 0.327 0.198 0.120 0.0... for ids 1,4,2,7,...;
	 * p = 0.8 keeps 1, 4, 2 (0.852) */
	struct sample_opts p8 = { 1.0, 0, 0.8 };
	memset(cnt, 0, sizeof(cnt));
	for (int i = 0; i < N; i++)
		cnt[sample_token(s, lg, &p8, &r)]++;
	ok(cnt[1] && cnt[2] && cnt[4] && cnt[0] + cnt[3] + cnt[5] + cnt[6] + cnt[7] == 0,
	   "top-p 0.8 keeps the nucleus {1, 4, 2}");
	ok(cnt[6] == 0, "a masked (-inf) id is never drawn");

	struct sample_rng a, b;
	sample_seed(&a, 42, 3);
	sample_seed(&b, 42, 3);
	struct sample_opts t1 = { 1.0, 0, 0.95 };
	int same = 1;
	for (int i = 0; i < 100; i++)
		same &= sample_token(s, lg, &t1, &a) == sample_token(s, lg, &t1, &b);
	ok(same, "the same seed and stream draw the same tokens");
	sample_seed(&b, 42, 4);
	ok(sample_next(&a) != sample_next(&b), "another stream draws other numbers");
	sampler_free(s);
}

static int hf_random(int argc, char **argv)
{
	if (argc < 9)
		die_usage("hf-random DIR VOCAB CTX LAYERS HEADS WIDTH TOKENIZER [SEED]");
	struct gpt2_config c = { 0 };
	c.vocab_size = (uint32_t)opt_u64("VOCAB", argv[3], 2, 1u << 30);
	c.n_ctx = (uint32_t)opt_u64("CTX", argv[4], 1, 1u << 20);
	c.n_layer = (uint32_t)opt_u64("LAYERS", argv[5], 1, 4096);
	c.n_head = (uint32_t)opt_u64("HEADS", argv[6], 1, 4096);
	c.n_embd = (uint32_t)opt_u64("WIDTH", argv[7], 1, 1u << 20);
	uint64_t seed = argc > 9 ? opt_u64("SEED", argv[9], 0, UINT64_MAX) : 1;
	struct bpe tok;
	if (bpe_load(&tok, argv[8]))
		return 1;
	struct gpt2_model m;
	gpt2_create(&m, &c);
	gpt2_init_weights(&m, seed);
	if (gpt2_hf_export(&c, m.params, argv[2], NULL) || bpe_save(&tok, argv[2]))
		return 1;
	gpt2_free(&m);
	bpe_free(&tok);
	return 0;
}

static int forward_loss(int argc, char **argv)
{
	if (argc < 4)
		die_usage("forward-loss MODELDIR FILE");
	struct complete_model cm;
	if (complete_load(&cm, argv[2], NULL, NULL))
		return 1;
	size_t len;
	char *text = read_file(argv[3], &len);
	if (!text)
		return 1;
	struct bpe_encoder *e = bpe_encoder_new(&cm.tok);
	struct u32vec ids = { 0 };
	bpe_encode(e, (unsigned char *)text, len, 1, &ids);
	if (ids.n < 2 || ids.n > cm.m.cfg.n_ctx)
		die("'%s': %zu tokens; need 2 to %u", argv[3], ids.n, cm.m.cfg.n_ctx);
	gpt2_setup(&cm.m, 1, (int)ids.n, 0);
	float loss = gpt2_forward(&cm.m, ids.v, 1, (int)ids.n);
	printf("%.9g %zu\n", loss, ids.n);
	free(ids.v);
	bpe_encoder_free(e);
	free(text);
	complete_free(&cm);
	return 0;
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int copy_bw(int argc, char **argv)
{
	if (argc < 4)
		die_usage("copy-bw MIB THREADS");
	size_t n = (size_t)opt_u64("MIB", argv[2], 1, 1 << 16) << 20;
	omp_set_num_threads((int)opt_u64("THREADS", argv[3], 1, 1024));
	char *a = xmalloc(n), *b = xmalloc(n);
	memset(a, 1, n);
	memset(b, 2, n);
	size_t chunk = 1 << 20, nc = n / chunk;
	double best = 1e30;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now();
		#pragma omp parallel for schedule(static)
		for (size_t c = 0; c < nc; c++)
			memcpy(b + c * chunk, a + c * chunk, chunk);
		double t = now() - t0;
		if (t < best)
			best = t;
	}
	printf("%.3f\n", 2.0 * (double)(nc * chunk) / best / 1e9);
	free(a);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	cp_setprogname(argv[0]);
	if (argc > 1 && !strcmp(argv[1], "hf-random"))
		return hf_random(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "copy-bw"))
		return copy_bw(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "forward-loss"))
		return forward_loss(argc, argv);
	test_kv_vs_full(0);
	test_kv_vs_full(1);
	test_prefill_exact();
	test_batch();
	test_threads();
	test_sampler();
	return done_testing();
}
