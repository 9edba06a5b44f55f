/* test-backend.c: the backend interface (model/backend.h). Every built-in backend's inference
 * half against the cpu backend within the tolerance it states; its cache operations (kv_len,
 * kv_reset, kv_copy_row) against recomputing from nothing; and --device parsing's errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "model/backend.h"
#include "model/gpt2.h"
#include "tap.h"

static const struct gpt2_backend *const cpu = &gpt2_cpu_backend;

/* N tests that cannot run here, in TAP's words */
static void skip(int n, const char *why)
{
	for (int i = 0; i < n; i++)
		printf("ok %d # skip %s\n", ++tap_n, why);
}

/* max |a - b| / max(1, max |b|): the measure backend.h's tolerance is stated in */
static double reldiff(const float *a, const float *b, size_t n)
{
	double d = 0, scale = 1;
	for (size_t i = 0; i < n; i++) {
		if (fabs((double)a[i] - b[i]) > d)
			d = fabs((double)a[i] - b[i]);
		if (fabs((double)b[i]) > scale)
			scale = fabs((double)b[i]);
	}
	return d / scale;
}

/* within BE's tolerance of the reference B: bit for bit when it is 0 */
static int within(const struct gpt2_backend *be, const float *a, const float *b, size_t n)
{
	if (be->tolerance == 0)
		return !memcmp(a, b, n * sizeof(float));
	return reldiff(a, b, n) <= be->tolerance;
}

static void make_model(struct gpt2_model *m)
{
	struct gpt2_config c = { 97, 64, 3, 2, 32, 1, 1 };
	gpt2_create(m, &c);
	gpt2_init_weights(m, 5);
	/* larger than initialisation so that the attention is far from uniform */
	for (uint64_t i = 0; i < m->lay.total; i++)
		m->params[i] *= 4;
}

static void fill(uint32_t *t, int n, uint32_t seed, uint32_t V)
{
	for (int i = 0; i < n; i++)
		t[i] = (seed * 31 + (uint32_t)i * 17 + (uint32_t)(i * i)) % V;
}

/* What a backend computes for a fixed script: a 40-token prefill with every position's logits
 * (many rows), three rows prefilled with 6 tokens each without logits, then 4 steps of one
 * token on those three rows together (few rows). OUT gets 40 + 4 * 3 rows of logits. */
static void script(const struct gpt2_backend *be, const struct gpt2_model *m, float *out)
{
	uint32_t V = m->cfg.vocab_size, prompt[40], p6[6];
	struct gpt2_kv *kv = be->kv_new(m, 4, 48);
	int zero = 0, rows[3] = { 1, 2, 3 };
	fill(prompt, 40, 1, V);
	be->kv_forward(kv, &zero, 1, prompt, 40, out, 1);
	for (int r = 0; r < 3; r++) {
		fill(p6, 6, (uint32_t)r + 2, V);
		be->kv_forward(kv, &rows[r], 1, p6, 6, NULL, 0);
	}
	for (int k = 0; k < 4; k++) {
		uint32_t step[3] = { (uint32_t)k, (uint32_t)(k + 30), (uint32_t)(k + 60) };
		be->kv_forward(kv, rows, 3, step, 1, out + (size_t)(40 + 3 * k) * V, 0);
	}
	be->kv_free(kv);
}

static void test_against_cpu(const struct gpt2_backend *be, const struct gpt2_model *m)
{
	size_t n = (size_t)(40 + 12) * m->cfg.vocab_size;
	float *a = xmalloc(n * sizeof(float)), *b = xmalloc(n * sizeof(float));
	script(be, m, a);
	script(cpu, m, b);
	ok(within(be, a, b, n), "%s: prefill and decoding logits within tolerance %g of cpu's "
	   "(relative difference %g)", be->name, be->tolerance, reldiff(a, b, n));
	free(a);
	free(b);
}

/* the cache operations give what recomputing from an empty state gives */
static void test_cache_ops(const struct gpt2_backend *be, const struct gpt2_model *m)
{
	uint32_t V = m->cfg.vocab_size, pa[10], pb[7], t = 42;
	fill(pa, 10, 7, V);
	fill(pb, 7, 8, V);
	float *l1 = xmalloc(V * sizeof(float)), *l2 = xmalloc(V * sizeof(float));
	float *l3 = xmalloc(V * sizeof(float));
	struct gpt2_kv *kv = be->kv_new(m, 3, 32), *fresh = be->kv_new(m, 1, 32);
	int r0 = 0, r1 = 1, r2 = 2, zero = 0;
	be->kv_forward(kv, &r0, 1, pa, 10, NULL, 0);
	be->kv_forward(kv, &r2, 1, pb, 7, NULL, 0);
	ok(be->kv_len(kv, 0) == 10 && be->kv_len(kv, 1) == 0 && be->kv_len(kv, 2) == 7,
	   "%s: kv_len counts each row's tokens (%d %d %d)", be->name, be->kv_len(kv, 0),
	   be->kv_len(kv, 1), be->kv_len(kv, 2));

	/* row 1 becomes a copy of row 0, over a longer row 2 copied first */
	be->kv_copy_row(kv, 1, 2);
	be->kv_copy_row(kv, 1, 0);
	ok(be->kv_len(kv, 1) == 10, "%s: kv_copy_row takes the source's length", be->name);
	be->kv_forward(kv, &r1, 1, &t, 1, l1, 0);
	be->kv_forward(fresh, &zero, 1, pa, 10, NULL, 0);
	be->kv_forward(fresh, &zero, 1, &t, 1, l2, 0);
	ok(within(be, l1, l2, V), "%s: a copied row continues like the source recomputed",
	   be->name);
	be->kv_forward(kv, &r0, 1, &t, 1, l3, 0);
	ok(!memcmp(l1, l3, V * sizeof(float)), "%s: and exactly like the source itself", be->name);
	be->kv_forward(kv, &r2, 1, &t, 1, l3, 0);
	be->kv_reset(fresh);
	be->kv_forward(fresh, &zero, 1, pb, 7, NULL, 0);
	be->kv_forward(fresh, &zero, 1, &t, 1, l2, 0);
	ok(within(be, l3, l2, V), "%s: copying out of a row leaves it as it was", be->name);

	be->kv_reset(kv);
	ok(be->kv_len(kv, 0) == 0 && be->kv_len(kv, 1) == 0 && be->kv_len(kv, 2) == 0,
	   "%s: kv_reset empties every row", be->name);
	be->kv_forward(kv, &r2, 1, pb, 7, NULL, 0);
	be->kv_forward(kv, &r2, 1, &t, 1, l1, 0);
	ok(within(be, l1, l2, V), "%s: after kv_reset a row computes as in a new state", be->name);
	be->kv_free(kv);
	be->kv_free(fresh);
	free(l1);
	free(l2);
	free(l3);
}

static void test_backends(void)
{
	struct gpt2_model m;
	make_model(&m);
	ok(gpt2_backend_find("cpu") == cpu && cpu->tolerance == 0,
	   "cpu is built in, the reference (tolerance 0)");
	char *names = xstrdup(gpt2_backend_names());
	int n = 0;
	for (char *save = NULL, *name = strtok_r(names, ", ", &save); name;
	     name = strtok_r(NULL, ", ", &save)) {
		const struct gpt2_backend *be = gpt2_backend_find(name);
		n++;
		ok(be && !strcmp(be->name, name), "'%s' from gpt2_backend_names() is found", name);
		if (!be)
			continue;
		char *err = NULL;
		if (be->open && be->open(-1, &err)) {
			char *why = xasprintf("%s: no device here (%s)", name, err);
			skip(8, why);
			free(why);
			free(err);
			continue;
		}
		test_against_cpu(be, &m);
		test_cache_ops(be, &m);
	}
	ok(n >= 1, "gpt2_backend_names() lists %d backend(s)", n);
	free(names);
	gpt2_free(&m);
}

/* selecting DEVICE fails with a message holding WANT */
static void select_fails(const char *device, const char *want)
{
	char *err = NULL;
	const struct gpt2_backend *be = gpt2_backend_select(device, &err);
	ok(!be && err && strstr(err, want), "--device '%s' refused: %s", device, err ? err : "");
	free(err);
}

static void test_select(void)
{
	char *err = NULL;
	ok(gpt2_backend_select("cpu", &err) == cpu && !err, "'cpu' selects the cpu backend");
	ok(gpt2_backend_select("cpu:0", &err) == cpu && !err, "'cpu:0' too");
	select_fails("cpu:1", "'cpu:1'");
	if (!gpt2_backend_find("cuda")) {
		select_fails("cuda", "device 'cuda': this build has no CUDA backend");
		select_fails("cuda:1", "device 'cuda:1'");
	} else {
		skip(2, "this build has a CUDA backend");
	}
	select_fails("cuda:x", "device 'cuda:x': the index after ':' must be a number");
	select_fails("cuda:", "must be a number");
	select_fails("cuda:-1", "must be a number");
	char *want = xasprintf("unknown device 'tpu' (this build has: %s)", gpt2_backend_names());
	select_fails("tpu", want);
	free(want);
	select_fails("", "unknown device ''");
}

int main(void)
{
	test_backends();
	test_select();
	return done_testing();
}
