/* report.c: cp-dedup's totals, table, JSON report and pairs (report.h). */
#include "dedup/report.h"
#include "base/atomic.h"
#include "base/die.h"
#include "base/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const share_key[3] = { "0.001", "0.01", "0.1" };

void dedup_totals_count(struct dedup_totals *t, const struct dedup_input *ins, size_t n)
{
	memset(t, 0, sizeof *t);
	for (size_t i = 0; i < n; i++) {
		t->docs_in += ins[i].n_docs;
		t->bytes_in += ins[i].bytes_in;
		t->docs_out += ins[i].docs_out;
		t->bytes_out += ins[i].bytes_out;
		for (uint64_t k = 0; k < ins[i].n_docs; k++)
			t->n[ins[i].status[k]]++;
	}
}

void dedup_totals_share(struct dedup_totals *t, const uint32_t *counts, size_t g)
{
	/* CodeParrot: "0.1% of the unique files make up 15% of all files" */
	t->n_unique = g;
	for (int k = 0; k < 3; k++) {
		double frac = atof(share_key[k]);
		size_t top = (size_t)ceil(frac * (double)g);
		if (top < 1)
			top = 1;
		uint64_t sum = 0;
		for (size_t i = 0; i < top && i < g; i++)
			sum += counts[i];
		t->share[k] = t->docs_in ? (double)sum / (double)t->docs_in : 0.0;
	}
}

void dedup_totals_compute(struct dedup_totals *t, const struct dedup_state *s,
			  const struct dedup_input *ins, size_t n)
{
	dedup_totals_count(t, ins, n);
	uint32_t *counts;
	size_t g = dedupset_counts(s->set, &counts);
	dedup_totals_share(t, counts, g);
	free(counts);
}

static double pct(uint64_t a, uint64_t b)
{
	return b ? 100.0 * (double)a / (double)b : 0.0;
}

void dedup_report_table(const struct dedup_totals *t)
{
	fprintf(stderr, "cp-dedup: %-26s %10llu  %8.1f MB\n", "documents in", (unsigned long long)t->docs_in,
		t->bytes_in / 1e6);
	fprintf(stderr, "cp-dedup: %-26s %10llu  %7.2f %%\n", "exact duplicates",
		(unsigned long long)t->n[DEDUP_EXACT], pct(t->n[DEDUP_EXACT], t->docs_in));
	fprintf(stderr, "cp-dedup: %-26s %10llu  %7.2f %%\n", "near duplicates",
		(unsigned long long)t->n[DEDUP_NEAR], pct(t->n[DEDUP_NEAR], t->docs_in));
	for (int k = DEDUP_AUTOGEN; k < DEDUP_N; k++) {
		char label[40];
		snprintf(label, sizeof label, "removed: %s", filter_key[k]);
		fprintf(stderr, "cp-dedup: %-26s %10llu  %7.2f %%\n", label, (unsigned long long)t->n[k],
			pct(t->n[k], t->docs_in));
	}
	fprintf(stderr, "cp-dedup: %-26s %10llu  %8.1f MB (%.1f %% of bytes)\n", "documents out",
		(unsigned long long)t->docs_out, t->bytes_out / 1e6, pct(t->bytes_out, t->bytes_in));
	fprintf(stderr, "cp-dedup: top 0.1%%/1%%/10%% of unique files = %.1f/%.1f/%.1f %% of all files\n",
		100 * t->share[0], 100 * t->share[1], 100 * t->share[2]);
}

static void json_counts(struct buf *b, const struct dedup_totals *t)
{
	buf_printf(b, "{\n \"docs_in\": %llu,\n \"bytes_in\": %llu,\n \"docs_out\": %llu,\n"
		   " \"bytes_out\": %llu,\n \"exact_duplicates\": %llu,\n \"near_duplicates\": %llu,\n"
		   " \"removed\": {", (unsigned long long)t->docs_in, (unsigned long long)t->bytes_in,
		   (unsigned long long)t->docs_out, (unsigned long long)t->bytes_out,
		   (unsigned long long)t->n[DEDUP_EXACT], (unsigned long long)t->n[DEDUP_NEAR]);
	for (int k = DEDUP_AUTOGEN; k < DEDUP_N; k++)
		buf_printf(b, "%s\"%s\": %llu", k == DEDUP_AUTOGEN ? "" : ", ", filter_key[k],
			   (unsigned long long)t->n[k]);
	buf_puts(b, "},\n \"top_unique_share\": {");
	for (int k = 0; k < 3; k++) {
		buf_printf(b, "%s\"%s\": ", k ? ", " : "", share_key[k]);
		json_double(b, t->share[k]);
	}
}

/* The near-dedup figures: one process's LSH, or what the ranks held together. */
static void near_figures(const struct dedup_state *s, unsigned *bands, unsigned *rows,
			 size_t *docs, double *per_doc, double *exact_per)
{
	const struct dedup_dist *d = s->dist;
	if (d) {
		*bands = s->cfg.near ? d->bands : 0;
		*rows = s->cfg.near ? d->rows : 0;
		*docs = (size_t)d->near_docs;
		*per_doc = d->near_docs ? (double)d->lsh_bytes / (double)d->near_docs : 0.0;
		*exact_per = d->exact_size ? (double)d->exact_bytes / (double)d->exact_size : 0.0;
		return;
	}
	*bands = s->lsh ? lsh_bands(s->lsh) : 0;
	*rows = s->lsh ? lsh_rows(s->lsh) : 0;
	*docs = s->lsh ? lsh_count(s->lsh) : 0;
	*per_doc = s->lsh ? lsh_bytes_per_doc(s->lsh) : 0.0;
	*exact_per = dedupset_size(s->set) ?
		(double)dedupset_bytes(s->set) / (double)dedupset_size(s->set) : 0.0;
}

static void json_near(struct buf *b, const struct dedup_totals *t, const struct dedup_state *s)
{
	const struct dedup_cfg *c = &s->cfg;
	unsigned bands, rows;
	size_t docs;
	double per_doc, exact_per;
	near_figures(s, &bands, &rows, &docs, &per_doc, &exact_per);
	buf_printf(b, "},\n \"unique_docs\": %zu,\n \"near\": {\"enabled\": %s, \"threshold\": ",
		   t->n_unique, c->near ? "true" : "false");
	json_double(b, c->threshold);
	buf_printf(b, ", \"num_perm\": %d, \"bands\": %u, \"rows\": %u, \"docs\": %zu, \"bytes_per_doc\": %.0f",
		   DEDUP_NPERM, bands, rows, docs, per_doc);
	buf_printf(b, ", \"no_signature\": %llu", (unsigned long long)s->no_sig);
	buf_printf(b, "},\n \"exact_bytes_per_unique\": %.1f", exact_per);
	if (!s->dist)
		return;
	buf_puts(b, ",\n \"ranks\": [");
	for (int r = 0; r < s->dist->ranks; r++)
		buf_printf(b, "%s{\"exact_bytes\": %llu, \"lsh_bytes\": %llu}", r ? ", " : "",
			   (unsigned long long)s->dist->rank_bytes[2 * r],
			   (unsigned long long)s->dist->rank_bytes[2 * r + 1]);
	buf_putc(b, ']');
}

void dedup_report_ranks(const struct dedup_state *s)
{
	for (int r = 0; s->dist && r < s->dist->ranks; r++)
		fprintf(stderr, "cp-dedup: rank %d: %llu bytes of exact set, %llu bytes of LSH index\n", r,
			(unsigned long long)s->dist->rank_bytes[2 * r],
			(unsigned long long)s->dist->rank_bytes[2 * r + 1]);
}

void dedup_report_json(struct buf *b, const struct dedup_totals *t, const struct dedup_state *s,
		       const struct buf *outputs, const double secs[4])
{
	const struct dedup_cfg *c = &s->cfg;
	json_counts(b, t);
	json_near(b, t, s);
	buf_puts(b, ",\n \"drop_prob\": ");
	json_double(b, c->filt.drop_prob);
	buf_printf(b, ",\n \"seed\": %llu,\n \"filters\": %s,\n \"seconds\": {\"read\": ",
		   (unsigned long long)c->filt.seed, c->filt.enabled ? "true" : "false");
	json_double(b, round(secs[0] * 1000) / 1000);
	buf_puts(b, ", \"dedup\": ");
	json_double(b, round(secs[1] * 1000) / 1000);
	buf_puts(b, ", \"near\": ");
	json_double(b, round(secs[2] * 10000) / 10000);
	buf_puts(b, ", \"write\": ");
	json_double(b, round(secs[3] * 1000) / 1000);
	buf_puts(b, "},\n \"outputs\": [");
	buf_put(b, outputs->p, outputs->len);
	buf_puts(b, "]\n}\n");
}

void dedup_pairs_json(struct buf *b, const struct dedup_state *s)
{
	for (size_t i = 0; i < s->n_pairs; i++) {
		const struct dedup_pair *p = &s->pairs[i];
		uint32_t id[2] = { p->a, p->b };
		buf_putc(b, '{');
		for (int k = 0; k < 2; k++) {
			buf_puts(b, k ? ",\"b\":" : "\"a\":");
			if (id[k] < s->n_old_near)
				buf_printf(b, "\"index:%u\"", id[k]);
			else
				json_cstr(b, (const char *)s->pair_origins.p +
						     s->origin_off[id[k] - s->n_old_near]);
		}
		buf_puts(b, ",\"jaccard\":");
		json_double(b, p->j);
		buf_puts(b, "}\n");
	}
}

int dedup_write_result(const char *path, const struct buf *b)
{
	if (!strcmp(path, "-")) {
		if (fwrite(b->p, 1, b->len, stdout) != b->len)
			die_errno("error writing to standard output");
		return 0;
	}
	return atomic_write_file(path, b->p, b->len);
}
