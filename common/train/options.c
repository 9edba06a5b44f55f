/* options.c: cp-train's saved options and the model shape (see options.h). */
#include "train/options.h"
#include "base/buf.h"
#include "base/die.h"
#include "base/json.h"
#include "train/lr-schedule.h"

#include <jansson.h>
#include <string.h>

void train_opts_default(struct train_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->batch = 8;
	o->accum = 1;
	o->steps = 1000;
	o->lr = 5e-4;
	o->warmup = 100;
	o->sched = ADAMW_COSINE;
	o->min_frac = 0.1;
	o->wd = 0.1;
	o->clip = 1.0;
	o->eval_every = 100;
	o->eval_batches = 20;
	o->ckpt_every = 1000;
	o->keep = 3;
	o->precision = -1;
}

char *train_opts_json(const struct train_opts *o)
{
	struct buf b = { 0 };
	buf_printf(&b, "{\"batch\":%llu,\"seq\":%llu,\"accum\":%llu,\"steps\":%llu,\"warmup\":%llu,"
		       "\"schedule\":\"%s\",\"seed\":%llu,\"lr\":",
		   (unsigned long long)o->batch, (unsigned long long)o->seq,
		   (unsigned long long)o->accum, (unsigned long long)o->steps,
		   (unsigned long long)o->warmup, adamw_schedule_name(o->sched),
		   (unsigned long long)o->seed);
	json_double(&b, o->lr);
	buf_puts(&b, ",\"min_lr_frac\":");
	json_double(&b, o->min_frac);
	buf_puts(&b, ",\"wd\":");
	json_double(&b, o->wd);
	buf_puts(&b, ",\"clip\":");
	json_double(&b, o->clip);
	buf_printf(&b, ",\"eval_every\":%llu,\"eval_batches\":%llu,\"ckpt_every\":%llu,\"keep\":%llu}",
		   (unsigned long long)o->eval_every, (unsigned long long)o->eval_batches,
		   (unsigned long long)o->ckpt_every, (unsigned long long)o->keep);
	buf_putc(&b, 0);
	return (char *)b.p;
}

static void from_u64(const struct train_opts *o, json_t *r, const char *key, int id,
		     uint64_t *field)
{
	json_t *v = json_object_get(r, key);
	if (!o->given[id] && json_is_integer(v))
		*field = (uint64_t)json_integer_value(v);
}

static void from_double(const struct train_opts *o, json_t *r, const char *key, int id,
			double *field)
{
	json_t *v = json_object_get(r, key);
	if (!o->given[id] && json_is_number(v))
		*field = json_number_value(v);
}

int train_opts_from_json(struct train_opts *o, const char *json)
{
	json_t *r = json_loads(json, 0, NULL);
	if (!r)
		return -1;
	from_u64(o, r, "batch", TRAIN_OPT_BATCH, &o->batch);
	from_u64(o, r, "seq", TRAIN_OPT_SEQ, &o->seq);
	from_u64(o, r, "accum", TRAIN_OPT_ACCUM, &o->accum);
	from_u64(o, r, "steps", TRAIN_OPT_STEPS, &o->steps);
	from_u64(o, r, "warmup", TRAIN_OPT_WARMUP, &o->warmup);
	from_u64(o, r, "seed", TRAIN_OPT_SEED, &o->seed);
	from_u64(o, r, "eval_every", TRAIN_OPT_EVAL_EVERY, &o->eval_every);
	from_u64(o, r, "eval_batches", TRAIN_OPT_EVAL_BATCHES, &o->eval_batches);
	from_u64(o, r, "ckpt_every", TRAIN_OPT_CKPT_EVERY, &o->ckpt_every);
	from_u64(o, r, "keep", TRAIN_OPT_KEEP, &o->keep);
	from_double(o, r, "lr", TRAIN_OPT_LR, &o->lr);
	from_double(o, r, "min_lr_frac", TRAIN_OPT_MIN_LR, &o->min_frac);
	from_double(o, r, "wd", TRAIN_OPT_WD, &o->wd);
	from_double(o, r, "clip", TRAIN_OPT_CLIP, &o->clip);
	const char *s = json_string_value(json_object_get(r, "schedule"));
	if (!o->given[TRAIN_OPT_SCHEDULE] && s && adamw_schedule_parse(s) >= 0)
		o->sched = adamw_schedule_parse(s);
	json_decref(r);
	return 0;
}

int train_shape_given(const struct train_shape *s)
{
	return s->model || s->vocab || s->ctx || s->layers || s->heads || s->width ||
	       s->scale_inv >= 0 || s->reorder >= 0;
}

void train_shape_config(const struct train_shape *s, struct gpt2_config *c, uint64_t data_vocab,
			const struct gpt2_config *base)
{
	if (base && !s->model) {
		*c = *base;
	} else {
		const char *model = s->model ? s->model : TRAIN_DEFAULT_MODEL;
		gpt2_preset(model, c);
		if (!strcmp(model, "tiny") && (data_vocab || base))
			c->vocab_size = base ? base->vocab_size : (uint32_t)data_vocab;
	}
	if (s->vocab) c->vocab_size = (uint32_t)s->vocab;
	if (s->ctx) c->n_ctx = (uint32_t)s->ctx;
	if (s->layers) c->n_layer = (uint32_t)s->layers;
	if (s->heads) c->n_head = (uint32_t)s->heads;
	if (s->width) c->n_embd = (uint32_t)s->width;
	if (s->scale_inv >= 0) c->scale_attn_by_inverse_layer_idx = s->scale_inv;
	if (s->reorder >= 0) c->reorder_and_upcast_attn = s->reorder;
	const char *why = gpt2_config_check(c);
	if (why)
		die_usage("bad model shape: %s", why);
}
