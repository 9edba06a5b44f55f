/* seqdata.c: sequence shards as one array, and a rank's batches (see seqdata.h). Reading is
 * mostly sequential, so one shard stays open and a seek happens only on a jump. */
#include "train/seqdata.h"
#include "base/die.h"
#include "base/xalloc.h"
#include "shard/seqrec.h"
#include "shard/shard.h"

#include <stdlib.h>
#include <string.h>

void seqdata_open(struct seqdata *d, const char *dir)
{
	memset(d, 0, sizeof(*d));
	char *in[1] = { (char *)dir };
	d->n = shard_list(in, 1, &d->paths);
	if (!d->n)
		die("'%s': no sequence shards", dir);
	d->first = xcalloc(d->n + 1, sizeof(uint64_t));
	for (size_t i = 0; i < d->n; i++) {
		struct shard_reader *r = shard_open(d->paths[i], SHARD_SEQS);
		if (!r)
			exit(EXIT_ERR);
		const struct shard_info *s = shard_get_info(r);
		if (s->n_records == UINT64_MAX)
			die("'%s': sequence shards must be regular files", d->paths[i]);
		if (i && (s->param[0] != d->vocab || s->param[1] != d->T))
			die("'%s': vocabulary %llu and length %llu differ from '%s'", d->paths[i],
			    (unsigned long long)s->param[0], (unsigned long long)s->param[1],
			    d->paths[0]);
		d->vocab = s->param[0];
		d->T = s->param[1];
		d->first[i] = d->total;
		d->total += s->n_records;
		shard_close_reader(r);
	}
	d->first[d->n] = d->total;
	if (!d->total)
		die("'%s': the sequence shards hold no sequence", dir);
	if (d->T < 2 || d->vocab < 2)
		die("'%s': bad sequence shard parameters", d->paths[0]);
	d->ids = xcalloc(d->T, sizeof(uint32_t));
}

/* the shard holding GLOBAL (< total), by bisection over the first indices */
static size_t seqdata_shard_of(const struct seqdata *d, uint64_t global)
{
	size_t lo = 0, hi = d->n;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (d->first[mid] <= global)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

void seqdata_get(struct seqdata *d, uint64_t global, uint32_t *out, uint64_t T)
{
	global %= d->total;
	size_t s = seqdata_shard_of(d, global);
	uint64_t local = global - d->first[s];
	if (!d->cur || d->cur_shard != s) {
		if (d->cur)
			shard_close_reader(d->cur);
		d->cur = shard_open(d->paths[s], SHARD_SEQS);
		if (!d->cur)
			exit(EXIT_ERR);
		d->cur_shard = s;
		d->next = 0;
	}
	if (d->next != local) {
		if (shard_seek(d->cur, local))
			exit(EXIT_ERR);
		d->next = local;
	}
	const void *rec;
	size_t len;
	int r = shard_next(d->cur, &rec, &len);
	if (r != 1)
		die("'%s': record %llu: %s", d->paths[s], (unsigned long long)local,
		    r ? "unreadable" : "missing");
	if (seqrec_decode(rec, len, d->vocab, d->T, d->ids))
		die("'%s': record %llu is not a sequence of %llu ids below %llu", d->paths[s],
		    (unsigned long long)local, (unsigned long long)d->T,
		    (unsigned long long)d->vocab);
	d->next++;
	memcpy(out, d->ids, T * sizeof(uint32_t));
}

uint64_t seqdata_batch(struct seqdata *d, uint64_t base, uint64_t B, uint64_t end, int rank,
		       uint64_t B_local, uint32_t *out, uint64_t T)
{
	uint64_t lo = base + (uint64_t)rank * B_local, k = 0;
	for (; k < B_local && lo + k < end && lo + k < base + B; k++)
		seqdata_get(d, lo + k, out + k * T, T);
	return k;
}

void seqdata_close(struct seqdata *d)
{
	if (d->cur)
		shard_close_reader(d->cur);
	shard_list_free(d->paths, d->n);
	free(d->first);
	free(d->ids);
	memset(d, 0, sizeof(*d));
}
