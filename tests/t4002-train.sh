#!/bin/sh
# t4002: cp-train on a tiny model: the loss falls; log fields; bit-exact resume, thread count
# and recompute; eval-only; Hugging Face export and re-import; corrupt and mismatched
# checkpoints refused; plot-loss.
. "$(dirname "$0")/lib.sh"

"$BUILD/tests/test-gpt2-data" tokens tok.shard 256 600 1 60 || exit 1
cp-pack -T 32 --valid-frac 0.1 -o seqs tok.shard >/dev/null || exit 1
X="--train seqs/train --valid seqs/valid --model tiny --batch 8 --accum 2 --lr 3e-3 --warmup 3 --eval-every 5 --eval-batches 4"

ok "train 10 steps" cp-train -o A $X --steps 10 --threads 1
like "$(cat "$TMP/.out")" '^\{"step":10,"loss":[0-9.]+,"val_loss":[0-9.]+,"val_ppl":[0-9.]+\}$' "final JSON line"
is "$(wc -l <A/log.jsonl | tr -d ' ')" 11 "log: an evaluation line and one line per step"
like "$(sed -n 2p A/log.jsonl)" '^\{"step":1,"loss":[0-9.]+,"lr":[0-9.e-]+,"grad_norm":[0-9.]+,"tokens_per_s":[0-9.]+,"mfu":[0-9.]+\}$' "step line fields"
like "$(sed -n 6p A/log.jsonl)" '"step":5,.*"val_loss":[0-9.]+,"val_ppl":[0-9.]+\}$' "evaluation every 5 steps"
v0=$(sed -n 's/.*"step":0,"val_loss":\([0-9.]*\).*/\1/p' A/log.jsonl)
v10=$(sed -n 's/.*"step":10,.*"val_loss":\([0-9.]*\).*/\1/p' A/log.jsonl)
ok "validation loss falls ($v0 -> $v10)" awk "BEGIN { exit !($v10 < $v0 - 0.2) }"

ok "5 steps, stop" cp-train -o B $X --steps 10 --stop-after 5 --threads 1
ok "checkpoint at step 5" test -f B/ckpt-00000005.ckpt
ok "resume 5 more (options from the checkpoint)" cp-train -o B --resume --train seqs/train --valid seqs/valid --threads 1
ok "5 + resume + 5 = 10 steps, byte for byte" cmp A/ckpt-00000010.ckpt B/ckpt-00000010.ckpt
strip() { sed 's/"tokens_per_s":[0-9.]*,"mfu":[0-9.]*//' "$1"; }
is "$(strip B/log.jsonl)" "$(strip A/log.jsonl)" "resumed log equals the straight one"
exit_is 1 "resume past --steps refused" cp-train -o B --resume --train seqs/train
err_like "not before --steps" "message says why"
exit_is 1 "a fresh run into a run directory with checkpoints refused" cp-train -o B $X --steps 10
err_like "already holds checkpoints" "message says why"

ok "2 threads" cp-train -o C $X --steps 10 --threads 2
ok "1 and 2 threads give the same bytes" cmp A/ckpt-00000010.ckpt C/ckpt-00000010.ckpt
ok "recompute" cp-train -o D $X --steps 10 --threads 2 --recompute
ok "recompute gives the same bytes" cmp A/ckpt-00000010.ckpt D/ckpt-00000010.ckpt
ok "batch 16, no accumulation" cp-train -o G16 --train seqs/train --valid seqs/valid --model tiny --batch 16 --lr 3e-3 --warmup 3 --eval-every 5 --eval-batches 2 --steps 10 --threads 2
ok "batch 8 x accum 2 equals batch 16 to fp32 rounding" "$PYTHON" -c '
import json
a = [json.loads(l) for l in open("A/log.jsonl")]
b = [json.loads(l) for l in open("G16/log.jsonl")]
assert len(a) == len(b)
for x, y in zip(a[1:], b[1:]):
    for k in ("loss", "grad_norm"):
        assert abs(x[k] - y[k]) <= 1e-5 * abs(x[k]), (k, x[k], y[k])
'
ok "keep 2 of every-2-step checkpoints" cp-train -o K $X --steps 10 --ckpt-every 2 --keep 2 --threads 1
is "$(ls K | grep ckpt | tr '\n' ' ')" "ckpt-00000008.ckpt ckpt-00000010.ckpt " "old checkpoints pruned"

ok "eval-only" cp-train -o A --valid seqs/valid --eval-only
ev=$(cat "$TMP/.out")
like "$ev" '^\{"val_loss":[0-9.]+,"val_ppl":[0-9.]+\}$' "eval-only prints one JSON line"

ok "export" cp-train -o A --export-hf A/hf
like "$(cat A/hf/config.json)" '"scale_attn_by_inverse_layer_idx": false' "config.json has the attention options"
like "$(head -c 4000 A/hf/model.safetensors | tr -d '\0')" '"transformer.h.1.mlp.c_proj.weight":\{"dtype":"F32","shape":\[128,32\]' "Conv1D weight stored [in, out]"
ok "re-import, one step at lr 0" cp-train -o E --init-hf A/hf --train seqs/train --valid seqs/valid --steps 1 --lr 0 --warmup 0 --eval-every 0 --batch 8 --threads 1
ok "re-export" cp-train -o E --export-hf E/hf
ok "re-imported model is the same, byte for byte" cmp A/hf/model.safetensors E/hf/model.safetensors
ok "eval-only of the re-imported model" cp-train -o E --valid seqs/valid --eval-only
is "$(cat "$TMP/.out")" "$ev" "re-imported model gives the same validation loss"
exit_is 1 "init-hf with a different shape refused" cp-train -o F --init-hf A/hf --train seqs/train --layers 3
err_like "does not match.*layers 2, not 3" "message names the difference"

# transformers, when present, loads the export and computes the same loss on the validation
# sequences, with and without the two attention options
ok "train with both attention options" cp-train -o H $X --steps 4 --threads 1 --scale-attn-by-inverse-layer-idx 1 --reorder-and-upcast-attn 1
ok "export it" cp-train -o H --export-hf H/hf
like "$(cat H/hf/config.json)" '"reorder_and_upcast_attn": true' "config.json says so"
TPY=${TORCH_PYTHON:-/usr/bin/python3}
if "$TPY" -c 'import transformers' 2>/dev/null; then
	cp-cat seqs/valid >valid.jsonl
	for run in A H; do
		cp-train -o $run --valid seqs/valid --eval-only >$run.eval
		hf=$("$TPY" -c '
import json, sys, torch, transformers
m = transformers.GPT2LMHeadModel.from_pretrained(sys.argv[1]).eval()
seqs = [json.loads(l)["tokens"] for l in open("valid.jsonl")]
with torch.no_grad():
    ls = [m(torch.tensor([s]), labels=torch.tensor([s])).loss.item() for s in seqs]
print(sum(ls) / len(ls))' $run/hf)
		cp=$(sed 's/.*"val_loss":\([0-9.]*\).*/\1/' $run.eval)
		ok "$run: transformers' loss $hf equals ours $cp (rel 1e-4)" awk "BEGIN { d = $hf - $cp; if (d < 0) d = -d; exit !(d / $cp < 1e-4) }"
	done
else
	skip "transformers not installed"
	skip "transformers not installed"
fi

# corrupt and mismatched checkpoints
mkdir -p bad
corrupt() { # NAME OFFSET BYTE: a copy of A's checkpoint with one byte set
	rm -rf "bad/$1"; mkdir -p "bad/$1"
	cp A/ckpt-00000010.ckpt "bad/$1/"
	printf "$3" | dd of="bad/$1/ckpt-00000010.ckpt" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
size=$(wc -c <A/ckpt-00000010.ckpt)
corrupt param 1000 '\377'
exit_is 1 "flipped parameter byte refused" cp-train -o bad/param --valid seqs/valid --eval-only
err_like "ckpt-00000010.ckpt': parameters checksum mismatch \(bytes" "names file, part and byte range"
corrupt var $((size - 100)) '\377'
exit_is 1 "flipped moment byte refused on resume" cp-train -o bad/var --resume --train seqs/train --steps 20
err_like "second moment checksum mismatch" "names the moment"
corrupt step 60 '\001'
exit_is 1 "flipped header byte refused" cp-train -o bad/step --valid seqs/valid --eval-only
err_like "header checksum mismatch" "names the header"
corrupt ver 8 '\003'
exit_is 1 "newer version refused" cp-train -o bad/ver --valid seqs/valid --eval-only
err_like "version 3 is newer" "names the version"
corrupt magic 1 'X'
exit_is 1 "not a checkpoint refused" cp-train -o bad/magic --valid seqs/valid --eval-only
err_like "not a cp checkpoint" "says so"
rm -rf bad/trunc; mkdir -p bad/trunc
head -c $((size - 7)) A/ckpt-00000010.ckpt >bad/trunc/ckpt-00000010.ckpt
exit_is 1 "truncated checkpoint refused" cp-train -o bad/trunc --valid seqs/valid --eval-only
err_like "truncated" "says truncated"
exit_is 1 "resume with another shape refused" cp-train -o A --resume --train seqs/train --steps 20 --width 64
err_like "does not match.*width 32, not 64" "names the difference"
exit_is 1 "eval-only without checkpoints" cp-train -o nothing --valid seqs/valid --eval-only
err_like "^cp-train: 'nothing': no checkpoint to evaluate" "names the run directory"
exit_is 2 "bad --schedule" cp-train -o G --train seqs/train --schedule sawtooth
err_like "^cp-train: --schedule must be cosine, linear or constant, not 'sawtooth'" "names the value and the choices"
exit_is 2 "bad --lr" cp-train -o G --train seqs/train --lr fast
err_like "^cp-train: option '--lr' needs a number, not 'fast'" "names the option and the value"
exit_is 2 "--eval-only without --valid" cp-train -o A --eval-only
err_like "^cp-train: --eval-only needs --valid DIR" "says what is missing"
exit_is 2 "width not divisible into heads" cp-train -o G --train seqs/train --model tiny --heads 3
err_like "^cp-train: bad model shape: " "says the shape is bad"
exit_is 2 "unknown --model" cp-train -o G --train seqs/train --model huge
err_like "^cp-train: unknown model 'huge' \\(one of .*tiny" "names the model and the presets"
exit_is 2 "no run directory" cp-train --train seqs/train
err_like "^cp-train: no run directory \\(-o RUNDIR\\)" "says so"
exit_is 2 "--resume with --init-hf" cp-train -o G --train seqs/train --resume --init-hf A/hf
err_like "exclude each other" "says the modes exclude each other"

# --device: cpu (also cpu:0) is built in; a device the build lacks or a malformed one is
# refused with a message naming it
ok "--device cpu" cp-train -o DC $X --steps 2 --threads 1 --device cpu
ok "--device cpu:0" cp-train -o DC0 $X --steps 2 --threads 1 --device cpu:0
ok "cpu and cpu:0 give the same bytes" cmp DC/ckpt-00000002.ckpt DC0/ckpt-00000002.ckpt
ok "--device cpu equals the default" cp-train -o DD $X --steps 2 --threads 1
ok "... byte for byte" cmp DC/ckpt-00000002.ckpt DD/ckpt-00000002.ckpt
if cp-train -o DG $X --steps 2 --threads 1 --device cuda 2>/dev/null >/dev/null; then
	skip "this build has a CUDA backend and a GPU"
	skip "this build has a CUDA backend and a GPU"
else
	exit_is 1 "--device cuda refused without a CUDA backend or GPU" cp-train -o DG $X --steps 2 --device cuda
	err_like "^cp-train: device 'cuda'" "the message names the device"
fi
exit_is 1 "malformed --device cuda:x refused" cp-train -o DG $X --steps 2 --device cuda:x
err_like "^cp-train: device 'cuda:x': the index after ':' must be a number" "names the device and says why"
exit_is 1 "unknown --device refused" cp-train -o DG $X --steps 2 --device tpu
err_like "^cp-train: unknown device 'tpu' \\(this build has: .*cpu" "names the device and the built-in ones"
exit_is 1 "--device cpu:1 refused" cp-train -o DG $X --steps 2 --device cpu:1
err_like "^cp-train: device 'cpu:1': the cpu backend has only device 0" "names the device"
ok "a refused device leaves no run directory" test ! -e DG

# --precision: the cpu backend trains in fp32 only; a version 1 checkpoint (what cp-train wrote
# before the format carried the precision) resumes bit for bit
ok "--precision fp32 on cpu" cp-train -o PF $X --steps 2 --threads 1 --precision fp32
ok "... the default's bytes" cmp DD/ckpt-00000002.ckpt PF/ckpt-00000002.ckpt
exit_is 2 "--precision bf16 on cpu refused" cp-train -o PB $X --steps 2 --precision bf16
err_like "^cp-train: precision bf16: bf16 needs --device cuda; the cpu backend trains in fp32" "says why"
ok "a refused precision leaves no run directory" test ! -e PB
exit_is 2 "--precision fp16 refused" cp-train -o PB $X --precision fp16
err_like "^cp-train: --precision must be bf16 or fp32, not 'fp16'" "names the value and the choices"
mkdir -p V1
setup "B's step-5 checkpoint as version 1" "$BUILD/tests/test-ckpt" v1 B/ckpt-00000005.ckpt V1/ckpt-00000005.ckpt
is "$(od -An -tu4 -j8 -N4 V1/ckpt-00000005.ckpt | tr -d ' ')" 1 "it says version 1"
cp B/log.jsonl V1/
ok "resume from the version 1 checkpoint" cp-train -o V1 --resume --train seqs/train --valid seqs/valid --threads 1
ok "... 10 steps byte for byte as the straight run" cmp A/ckpt-00000010.ckpt V1/ckpt-00000010.ckpt

# --plan: the memory --device cuda would need, printed without a device or a run directory
mkdir -p plan && cd plan || exit 1
ok "--plan gpt2" cp-train --plan --model gpt2 --batch 8 --seq 1024
pl=$(cat "$TMP/.out")
like "$pl" '^model: vocab 50257 \(padded 50304\), ctx 1024, layers 12, heads 12, width 768$' "the model, the vocabulary padded to 128"
like "$pl" '^parameters: 124439808 \(padded 124475904\)$' "GPT-2 124M's parameters"
like "$pl" '^batch 8 x seq 1024, bf16, recompute off$' "bf16 by default"
for cat in 'parameters \(bf16\)' 'master weights \(fp32\)' 'adamw moments \(fp32\)' 'gradients \(bf16\)' 'activations \(bf16\)' 'scratch \(kernels\)' 'workspace \(cublaslt\)' total; do
	like "$pl" "^$cat +[0-9]+ +[0-9]+\.[0-9]{3}$" "a line for $(echo "$cat" | tr -d '\\')"
done
is "$(printf '%s\n' "$pl" | awk '/^parameters \(/ { p = $3 } /^master/ { m = $4 } /^adamw/ { a = $4 } END { print p * 2 == m && m * 2 == a }')" 1 "master weights twice the bf16 copy, moments twice those"
is "$(printf '%s\n' "$pl" | awk '/^(parameters|master|adamw|gradients|activations|scratch|workspace) .*[0-9]$/ { s += $(NF - 1) } /^total/ { t = $2 } END { print s == t }')" 1 "the total is the sum"
is "$(printf '%s\n' "$pl" | awk '/^workspace/ { print $3 }')" 33554432 "32 MiB of cuBLASLt workspace"
ok "--plan --recompute" cp-train --plan --model gpt2 --recompute
plr=$(cat "$TMP/.out")
is "$(printf '%s\n%s\n' "$pl" "$plr" | awk '/^total/ { t[n++] = $2 } END { print t[1] < t[0] }')" 1 "recompute needs less"
like "$plr" '^  mlp.gelu +[0-9]+ x 1 \(recomputed\)$' "one copy of the GELU's output, recomputed"
ok "--plan --precision fp32" cp-train --plan --model gpt2 --precision fp32
like "$(cat "$TMP/.out")" '^parameters \(fp32\) +497903616 ' "fp32 parameters: 4 bytes each"
ok "--plan for 1.5B on 8 GPUs with ZeRO-1 and the published batch" \
	cp-train --plan --model codeparrot --batch 8 --world 8 --accum 8 --zero 1
plz=$(cat "$TMP/.out")
like "$plz" '^per GPU of 8, accum 8: 524288 tokens a step; zero 1: optimizer state of 191203600 parameters a GPU$' \
	"the job's line: 512 x 1024 tokens a step, an eighth of the optimizer state a GPU"
is "$(printf '%s\n' "$plz" | awk '/^master/ { print $4 }')" 764814400 "master weights of the shard (4 bytes x 191203600)"
is "$(printf '%s\n' "$plz" | awk '/^adamw/ { print $4 }')" 1529628800 "moments of the shard (8 bytes x 191203600)"
ok "--plan --device cuda opens no device" cp-train --plan --model tiny --device cuda
is "$(ls -A)" "" "--plan writes no file"
exit_is 2 "--plan with a run directory refused" cp-train --plan -o R
err_like "^cp-train: --plan takes the model and batch options alone" "says why"
exit_is 2 "--plan --seq past the context refused" cp-train --plan --model tiny --seq 4096
err_like "longer than the model's context \(128\)" "names the context"
is "$(ls -A)" "" "still no run directory"
cd .. || exit 1

if command -v gnuplot >/dev/null; then
	ok "plot-loss" "$SRC_DIR/scripts/plot-loss" A
	like "$(head -c 4 A/loss.png | od -An -c | tr -d ' ')" 'PNG' "a PNG"
else
	skip "gnuplot not installed"
fi
done_testing
