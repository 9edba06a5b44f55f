#!/bin/sh
# t6005: a Hugging Face GPT-2 checkpoint in pytorch_model.bin form (as codeparrot-small is
# published: the state dict with lm_head.weight and the attention-mask buffers) becomes
# model.safetensors with scripts/cp-hf-convert, and cp-complete's greedy output and --score,
# and cp-humaneval generate, then equal those of the model it was saved from.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
TPY=${TORCH_PYTHON:-/usr/bin/python3}
need all "transformers not importable by $TPY (scripts/deps test makes its venv)" \
	"$TPY" -c 'import torch, transformers'
CONVERT="$SRC_DIR/scripts/cp-hf-convert"

setup "a tiny random model exported by cp-train" sh -c '
	"$1/tests/test-infer" hf-random M 50257 512 2 2 32 "$2" 7
	"$1/tests/test-gpt2-data" tokens tok.shard 50257 40 1 80 >/dev/null
	cp-pack -T 32 --valid-frac 0.2 -o seqs tok.shard >/dev/null
	cp-train -o RUN --init-hf M --tokenizer "$2" --train seqs/train --lr 0 --warmup 0 \
		--eval-every 0 --batch 2 --threads 1 --steps 1 >/dev/null
	cp-train -o RUN --export-hf HF' sh "$BUILD" "$TOK" || done_testing

# what transformers loads from the export, saved as a downloaded checkpoint of 2021 is: the
# whole state dict, the tied head and each layer's mask buffers included; the tokenizer
# saved by transformers too
cat >save.py <<'EOF'
import sys, torch, transformers
src, dst, dtype = sys.argv[1], sys.argv[2], sys.argv[3]
m = transformers.GPT2LMHeadModel.from_pretrained(src).eval()
m.config.save_pretrained(dst)
transformers.AutoTokenizer.from_pretrained(src).save_pretrained(dst)
sd = m.to(getattr(torch, dtype)).state_dict()
n = m.config.n_positions
for i in range(m.config.n_layer):
    sd["transformer.h.%d.attn.bias" % i] = torch.tril(torch.ones(n, n, dtype=torch.uint8)).view(1, 1, n, n)
    sd["transformer.h.%d.attn.masked_bias" % i] = torch.tensor(-1e4)
if len(sys.argv) > 4:  # an untied head
    sd["lm_head.weight"] = sd["lm_head.weight"].clone() * 2
torch.save(sd, dst + "/pytorch_model.bin")
EOF
setup "pytorch_model.bin saved by torch from the export" "$TPY" save.py HF PT float32
is "$(ls PT | grep -c safetensors)" 0 "no safetensors in it"
exit_is 1 "cp-complete cannot open it yet" cp-complete -m PT -N 4 x
ok "cp-hf-convert" "$TPY" "$CONVERT" PT
like "$(cat "$TMP/.out")" "PT/model.safetensors: 28 tensors" "it names the file and the tensors (12 in each of 2 layers, 2 embeddings, 2 of the final norm)"
is "$(ls -a PT | grep -c '\.tmp\.')" 0 "no temporary left"
printf 'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n' >score.py
printf 'import os\n\ndef main():\n' >prompt.py
for m in HF PT; do
	cp-complete -m $m -f prompt.py -N 32 --json >$m.greedy
	cp-complete -m $m --score score.py --json >$m.score
done
ok "the same greedy completion as the model it came from" cmp HF.greedy PT.greedy
ok "the same --score" cmp HF.score PT.score
if HE=$(humaneval_problems); then
	ok "cp-humaneval generate on the converted model" cp-humaneval generate -m PT --problems "$HE" \
		--limit 2 -n 1 --max-tokens 8 -o pt.jsonl
	ok "the same samples as the original's" sh -c 'cp-humaneval generate -m HF --problems "$1" \
		--limit 2 -n 1 --max-tokens 8 -o hf.jsonl && cmp hf.jsonl pt.jsonl' sh "$HE"
else
	skip "$HUMANEVAL_MISSING"
	skip "$HUMANEVAL_MISSING"
fi
ok "the converted model starts cp-train --init-hf" cp-train -o RUN2 --init-hf PT --train seqs/train \
	--lr 0 --warmup 0 --eval-every 0 --batch 2 --threads 1 --steps 1

exit_is 1 "a second conversion is refused" "$TPY" "$CONVERT" PT
err_like "model.safetensors' exists; --force" "naming --force"
ok "--force replaces it" "$TPY" "$CONVERT" --force PT

# a half-precision checkpoint stays F16 and loads; its greedy text is the F16 weights' own
setup "a float16 pytorch_model.bin" "$TPY" save.py HF P16 float16
ok "converted" "$TPY" "$CONVERT" P16
like "$(head -c 300 P16/model.safetensors)" '"dtype":"F16"' "its tensors stay F16"
ok "cp-complete opens it" cp-complete -m P16 -f prompt.py -N 8 --json

setup "an untied head" "$TPY" save.py HF UNTIED float32 untied
exit_is 1 "is refused" "$TPY" "$CONVERT" UNTIED
err_like "lm_head.weight is not the token embedding" "the message says why"
is "$(ls UNTIED | grep -c safetensors)" 0 "and nothing is written"
exit_is 1 "a directory without a checkpoint" "$TPY" "$CONVERT" RUN
err_like "'RUN': no pytorch_model.bin" "the message names it"
exit_is 2 "no directory: usage" "$TPY" "$CONVERT"
done_testing
