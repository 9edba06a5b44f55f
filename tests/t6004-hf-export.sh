#!/bin/sh
# t6004: cp-train --export-hf writes a complete Hugging Face model directory: the run's own
# tokenizer without --tokenizer, generation_config.json, tokenizer_config.json and
# special_tokens_map.json beside config.json; transformers.pipeline("text-generation") opens it
# with no other argument, and its greedy text is cp-complete's for the same prompt and length.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"

# a vocabulary padded past the tokenizer's 50257 ids, as cp-train pads it: the ids that are
# no token must be suppressed in transformers as cp-complete masks them
setup "a tiny random model, its sequences, a run that remembers its tokenizer" sh -c '
	"$1/tests/test-infer" hf-random M 50304 256 2 2 32 "$2" 5
	"$1/tests/test-gpt2-data" tokens tok.shard 50257 40 1 80 >/dev/null
	cp-pack -T 32 --valid-frac 0.2 -o seqs tok.shard >/dev/null
	cp-train -o RUN --init-hf M --tokenizer "$2" --train seqs/train --lr 0 --warmup 0 \
		--eval-every 0 --batch 2 --threads 1 --steps 1 >/dev/null' sh "$BUILD" "$TOK" ||
	done_testing
printf 'def add(a, b):\n    return' >prompt1.py
printf 'import os\n\nclass Stack:\n' >prompt2.py

ok "export without --tokenizer" cp-train -o RUN --export-hf HF
is "$(cat "$TMP/.err")" "" "no warning: the run's tokenizer is used"
missing=
for f in config.json model.safetensors generation_config.json tokenizer.json vocab.json \
	merges.txt tokenizer_config.json special_tokens_map.json; do
	[ -f "HF/$f" ] || missing="$missing $f"
done
is "$missing" "" "every file transformers opens is there"
ok "the tokenizer is the run's" cmp HF/tokenizer.json RUN/tokenizer.json
# the suppressed ids, the end token and the context, computed from GPT-2's encoder.json
is "$("$PYTHON" -c '
import json, sys
enc = json.load(open(sys.argv[1] + "/encoder.json"))
g = json.load(open("HF/generation_config.json"))
t = json.load(open("HF/tokenizer_config.json"))
s = json.load(open("HF/special_tokens_map.json"))
c = json.load(open("HF/config.json"))
ids = set(enc.values())
print(g["suppress_tokens"] == [i for i in range(50304) if i not in ids],
      g["eos_token_id"] == g["pad_token_id"] == c["eos_token_id"] == enc["<|endoftext|>"],
      g["do_sample"] is False, t["model_max_length"] == 256,
      t["eos_token"] == s["eos_token"] == "<|endoftext|>",
      t["clean_up_tokenization_spaces"] is False)' "$TOK")" "True True True True True True" \
	"suppressed ids, end token, greedy, context and special tokens as the tokenizer has them"

for p in prompt1.py prompt2.py; do
	cp-complete -m RUN -f $p --json >$p.run
	cp-complete -m HF -f $p --json >$p.hf
	ok "cp-complete reads the export back ($p)" cmp $p.run $p.hf
done

TPY=${TORCH_PYTHON:-/usr/bin/python3}
if need 4 "transformers not importable by $TPY (scripts/deps test makes its venv)" \
	"$TPY" -c 'import transformers'; then
	# the text pipeline() returns with its defaults, and with max_new_tokens; the ids too
	cat >pipe.py <<'EOF'
import json, sys, transformers
pipe = transformers.pipeline("text-generation", model=sys.argv[1])
prompt = open(sys.argv[2]).read()
kw = {"max_new_tokens": int(sys.argv[3])} if len(sys.argv) > 3 else {}
text = pipe(prompt, **kw)[0]["generated_text"]
ids = pipe(prompt, return_tensors=True, **kw)[0]["generated_token_ids"]
n = len(pipe.tokenizer(prompt)["input_ids"])
print(json.dumps({"text": text, "ids": [int(i) for i in ids[n:]]}))
EOF
	# cp-complete's text after the prompt, its ids without a final <|endoftext|>
	want() { "$PYTHON" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({"text": open(sys.argv[2]).read() + r["text"], "ids": r["ids"]}))' "$1" "$2"; }
	ok "pipeline() with no other argument (prompt1.py)" "$TPY" pipe.py HF prompt1.py
	is "$(cat "$TMP/.out")" "$(want prompt1.py.run prompt1.py)" \
		"its greedy text is cp-complete's (128 tokens, both defaults)"
	cp-complete -m RUN -f prompt2.py -N 24 --json >prompt2.py.24
	ok "pipeline() with max_new_tokens 24 (prompt2.py)" "$TPY" pipe.py HF prompt2.py 24
	is "$(cat "$TMP/.out")" "$(want prompt2.py.24 prompt2.py)" \
		"its greedy text is cp-complete's -N 24"
fi

# GPT-2's own files named: encoder.json and vocab.bpe become vocab.json and merges.txt
ok "export with --tokenizer naming encoder.json + vocab.bpe" cp-train -o RUN --export-hf G --tokenizer "$TOK"
ok "vocab.json is encoder.json" cmp G/vocab.json "$TOK/encoder.json"
cp-complete -m G -f prompt1.py --json >g.out
ok "and the export completes as the run does" cmp g.out prompt1.py.run

# a run without a tokenizer exports the model alone, and says so
ok "a run without a tokenizer" cp-train -o BARE --init-hf M --train seqs/train --lr 0 --warmup 0 \
	--eval-every 0 --batch 2 --threads 1 --steps 1
ok "exports" cp-train -o BARE --export-hf B
err_like "'BARE' holds no tokenizer.*--tokenizer" "with a warning naming the run"
is "$(ls B | tr '\n' ' ')" "config.json generation_config.json model.safetensors " \
	"the model's files alone"
if setup "a run of a 1000-token vocabulary" sh -c '
	"$1/tests/test-infer" hf-random S 1000 64 1 1 16 "$2" 1
	"$1/tests/test-gpt2-data" tokens s.shard 1000 40 1 80 >/dev/null
	cp-pack -T 32 --valid-frac 0.2 -o sseqs s.shard >/dev/null
	cp-train -o SMALL --init-hf S --train sseqs/train --lr 0 --warmup 0 --eval-every 0 \
		--batch 2 --threads 1 --steps 1 >/dev/null' sh "$BUILD" "$TOK"; then
	exit_is 1 "GPT-2's tokenizer for it refused" cp-train -o SMALL --export-hf C --tokenizer "$TOK"
	err_like "gpt2/encoder.json': the id of token .* is not one of the model's 1000" \
		"the message names the file and the vocabulary"
	is "$(ls C 2>/dev/null)" "" "and nothing was written"
fi
done_testing
