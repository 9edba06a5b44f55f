/* prof.c: the op counters of prof.h and their names. */
#include "model/prof.h"

struct gpt2_prof gpt2_prof;

static const char *const prof_names[GPT2_PROF_N] = {
	[GPT2_PROF_DATA] = "data",
	[GPT2_PROF_ZERO_GRAD] = "zero_grad",
	[GPT2_PROF_EMBED] = "fwd.embed",
	[GPT2_PROF_LN] = "fwd.layernorm",
	[GPT2_PROF_QKV] = "fwd.matmul.qkv",
	[GPT2_PROF_ATTN] = "fwd.attention",
	[GPT2_PROF_ATTPROJ] = "fwd.matmul.attn_proj",
	[GPT2_PROF_FC] = "fwd.matmul.fc",
	[GPT2_PROF_FCPROJ] = "fwd.matmul.fc_proj",
	[GPT2_PROF_RESID] = "fwd.residual",
	[GPT2_PROF_LMHEAD] = "fwd.lm_head",
	[GPT2_PROF_LOSS] = "fwd.loss",
	[GPT2_PROF_LOSS_BWD] = "bwd.loss",
	[GPT2_PROF_LMHEAD_BWD] = "bwd.lm_head",
	[GPT2_PROF_LN_BWD] = "bwd.layernorm",
	[GPT2_PROF_FCPROJ_BWD] = "bwd.matmul.fc_proj",
	[GPT2_PROF_GELU_BWD] = "bwd.gelu",
	[GPT2_PROF_FC_BWD] = "bwd.matmul.fc",
	[GPT2_PROF_ATTPROJ_BWD] = "bwd.matmul.attn_proj",
	[GPT2_PROF_ATTN_BWD] = "bwd.attention",
	[GPT2_PROF_QKV_BWD] = "bwd.matmul.qkv",
	[GPT2_PROF_EMBED_BWD] = "bwd.embed",
	[GPT2_PROF_FORWARD] = "forward",
	[GPT2_PROF_BACKWARD] = "backward",
	[GPT2_PROF_ACCUM] = "accum",
	[GPT2_PROF_ALLREDUCE] = "allreduce",
	[GPT2_PROF_GRAD_NORM] = "grad_norm",
	[GPT2_PROF_ADAMW] = "adamw",
};

const char *gpt2_prof_name(int op)
{
	return op >= 0 && op < GPT2_PROF_N ? prof_names[op] : "?";
}
