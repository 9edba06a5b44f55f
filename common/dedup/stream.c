/* stream.c: cp-dedup in one pass, for standard input alone without near dedup (passes.h).
 *
 * Exact dedup and the filters decide each document when it is read, in input order, as the
 * two passes would: the first copy of a hash stays. So the kept records go out at once, as
 * they lie in the reader's block, instead of standard input being spooled to a file and
 * read back; the output is the same bytes as the two passes write. */
#include "base/die.h"
#include "base/util.h"
#include "base/xalloc.h"
#include "dedup/passes.h"
#include "shard/doc.h"
#include "shard/shard.h"

/* Read IN from R and write its kept documents to W. 0 or -1. */
static int stream_records(struct dedup_state *s, struct dedup_input *in,
			  struct shard_reader *r, struct shard_writer *w, double *write_secs)
{
	const struct dedup_cfg *c = &s->cfg;
	const void *rec;
	size_t len, nsig = 0, cap = 0;
	int ret;
	while (shard_release_for(w, r) && (ret = shard_next(r, &rec, &len)) == 1) {
		struct doc d;
		if (dedup_take_record(in, c, rec, len, &d, &nsig))
			return -1;
		uint64_t k = in->n_docs - 1;
		if (k == cap)
			in->status = xreallocarray(in->status, cap = cap ? 2 * cap : 1024, 1);
		in->status[k] = dedupset_add(s->set, in->hash[k], 0) ? in->reason[k] : DEDUP_EXACT;
		if (in->status[k] != DEDUP_KEEP)
			continue;
		double t = mono_now();
		/* from the reader's block, which the next block overwrites */
		if (shard_write_ref(w, rec, len))
			return -1;
		*write_secs += mono_now() - t;
		in->docs_out++;
		in->bytes_out += d.size;
	}
	return ret;
}

int dedup_stream(struct dedup_state *s, struct dedup_input *in, const char *out,
		 double *write_secs)
{
	double t0 = mono_now();
	*write_secs = 0;
	struct shard_reader *r = dedup_open_input(in);
	if (!r)
		return -1;
	struct shard_writer *w = dedup_open_output(out, in->param, &s->cfg, s->cfg.threads);
	int ret = w ? stream_records(s, in, r, w, write_secs) : -1;
	if (w)
		shard_release(w);	/* before the reader's memory goes */
	shard_close_reader(r);
	dedup_scratch_free(in);
	if (!in->status)	/* no documents */
		in->status = xmalloc(1);
	double t = mono_now();
	if (w && ret)
		shard_abort(w);
	else if (w && shard_close(w))
		ret = -1;
	*write_secs += mono_now() - t;
	s->t_read = mono_now() - t0 - *write_secs;
	return ret ? -1 : 0;
}
