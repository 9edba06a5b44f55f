/* log.c: the run log's lines and its truncation on resume (see log.h). */
#include "train/log.h"
#include "base/atomic.h"
#include "base/io.h"
#include "base/json.h"
#include "base/xalloc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int train_log_truncate(const char *rundir, uint64_t step)
{
	char *path = xasprintf("%s/log.jsonl", rundir);
	size_t len;
	if (access(path, F_OK)) {
		free(path);
		return 0;
	}
	char *p = read_file(path, &len);
	if (!p) {
		free(path);
		return -1;
	}
	struct buf keep = { 0 };
	for (char *s = p; s < p + len;) {
		char *e = memchr(s, '\n', (size_t)(p + len - s));
		size_t n = e ? (size_t)(e - s + 1) : (size_t)(p + len - s);
		unsigned long long st;
		if (sscanf(s, "{\"step\":%llu", &st) == 1 && st <= step)
			buf_put(&keep, s, n);
		s += n;
	}
	int ret = atomic_write_file(path, keep.p ? (void *)keep.p : (void *)"", keep.len);
	buf_free(&keep);
	free(p);
	free(path);
	return ret ? -1 : 0;
}

void train_log_step(struct buf *b, uint64_t step, double loss, double lr, double gnorm,
		    double tokens_per_s, double mfu)
{
	buf_printf(b, "{\"step\":%llu,\"loss\":", (unsigned long long)step);
	json_double(b, loss);
	buf_puts(b, ",\"lr\":");
	json_double(b, lr);
	buf_puts(b, ",\"grad_norm\":");
	json_double(b, gnorm);
	buf_printf(b, ",\"tokens_per_s\":%.1f", tokens_per_s);
	/* a card the MFU table does not know: null, never a made-up or negative number */
	if (mfu >= 0)
		buf_printf(b, ",\"mfu\":%.4f", mfu);
	else
		buf_puts(b, ",\"mfu\":null");
}

void train_log_eval(struct buf *b, double vl)
{
	buf_puts(b, ",\"val_loss\":");
	json_double(b, vl);
	buf_puts(b, ",\"val_ppl\":");
	json_double(b, exp(vl));
}
