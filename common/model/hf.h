/* hf.h: export and import of GPT-2 in Hugging Face's format (model.safetensors,
 * config.json, tokenizer files), so transformers' GPT2LMHeadModel loads what cp-train wrote
 * and cp-train starts from what transformers saved. */
#ifndef CP_GPT2_HF_H
#define CP_GPT2_HF_H

#include "model/gpt2.h"

/* GPT2LMHeadModel's name of tensor T (of LAYER for per-layer tensors); free the result */
char *gpt2_hf_name(int t, int layer);
/* Write DIR/model.safetensors, config.json and generation_config.json (creating DIR), and copy
 * the tokenizer files from TOKENIZER (a directory or a tokenizer.json; NULL for none), with
 * tokenizer_config.json and special_tokens_map.json when it has none: a directory
 * transformers.pipeline opens as it is. 0 or -1. */
int gpt2_hf_export(const struct gpt2_config *c, const float *params, const char *dir,
		   const char *tokenizer);
/* Whether DIR holds tokenizer files (tokenizer.json, vocab.json + merges.txt, or GPT-2's
 * encoder.json + vocab.bpe) */
int gpt2_hf_has_tokenizer(const char *dir);
/* Read DIR/config.json; refuses GPT-2 variants this model does not implement. 0 or -1. */
int gpt2_hf_read_config(const char *dir, struct gpt2_config *c);
/* Load DIR/model.safetensors into PARAMS (laid out for C); F32, F16, BF16 or F64. 0 or -1. */
int gpt2_hf_load(const char *dir, const struct gpt2_config *c, float *params);

#endif
