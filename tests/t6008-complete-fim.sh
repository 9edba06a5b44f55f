#!/bin/sh
# t6008: the infill prompt on the command line, in OpenAI's "suffix" and at llama.cpp's
# /infill: all three build <fim_prefix> prefix <fim_suffix> suffix <fim_middle> (its length
# checked against the tokenizer's own count of the parts) and give the same greedy middle, a
# streamed suffix the text of the whole answer for its seed;
# a model whose tokenizer lacks the FIM tokens is refused, naming the token; echo with a
# suffix and a streamed /infill are refused. A random model: this is the plumbing, t4005 the
# learning.
. "$(dirname "$0")/lib.sh"

STDLIB=$($PYTHON -c "import sysconfig; print(sysconfig.get_paths()['stdlib'])")
setup "tokenizers with and without the FIM tokens, random models" sh -c '
	cp-bpe --fim --vocab-size 600 --text -o tok "$1"/json
	cp-bpe --vocab-size 596 --text -o tok0 "$1"/json
	"$2/tests/test-infer" hf-random M 600 64 2 2 32 tok 3
	"$2/tests/test-infer" hf-random M0 596 64 2 2 32 tok0 3' sh "$STDLIB" "$BUILD" || done_testing

P='def add(a, b):
    '
S='
print(add(1, 2))'
ok "cp-complete --suffix" cp-complete -m M -j 1 -N 6 --json --suffix "$S" "$P"
cp "$TMP/.out" cli.json
# a random model with tied embeddings repeats its last token: here <fim_middle> (id 597)
like "$(cat cli.json)" '"finish_reason":"stop","tokens":1,"ids":\[597\]' \
	"a sample stops at a FIM token as at <|endoftext|>"
printf '%s' "$S" >suffix.txt
ok "--suffix-file gives the same" cp-complete -m M -j 1 -N 6 --json --suffix-file suffix.txt "$P"
is "$(cat "$TMP/.out")" "$(cat cli.json)" "the same sample"
ok "--stats counts the prompt" cp-complete -m M -j 1 -N 1 --stats --suffix "$S" "$P"
np=$(sed -n 's/.*"prompt_tokens":\([0-9]*\).*/\1/p' "$TMP/.err")
printf '%s' "$P" >p.txt
nps=$(cp-tokenize -t tok --ids p.txt suffix.txt | awk '{ n += NF } END { print n + 3 }')
is "$np" "$nps" "the prompt is the prefix's and the suffix's tokens and the three FIM tokens"
exit_is 1 "a tokenizer without FIM tokens" cp-complete -m M0 -j 1 -N 2 --suffix "$S" "$P"
err_like "no <fim_prefix> token" "the message names the token missing"
exit_is 2 "--suffix with --jsonl" cp-complete -m M --suffix x --jsonl
printf '{"prompt":"%s","suffix":"x","max_tokens":3}\n' "def" | cp-complete -m M -j 1 --jsonl >jl.json
ok "a --jsonl line with a suffix" cp-complete -m M -j 1 -N 3 --json --suffix x def
like "$(cat jl.json)" "$(sed 's/.*"text":\("[^"]*"\).*/\1/' "$TMP/.out" | sed 's/[][\\.*^$]/\\&/g')" "fills in as the command line does"

serve_start -m M -j 1
like "$port" '^[0-9]+$' "the server says which port it took"
[ -n "$port" ] || done_testing
ok "requests" "$PYTHON" - "$port" "$P" "$S" "$np" <<'PYEOF'
import http.client, json, sys
port, P, S, np = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
cli = json.load(open("cli.json"))

def req(path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, body=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, json.loads(out)

fails = []
def check(cond, what):
    print(("ok" if cond else "FAIL"), what)
    if not cond:
        fails.append(what)

s, b = req("/v1/completions", {"prompt": P, "suffix": S, "max_tokens": 6, "temperature": 0})
check(s == 200 and b["choices"][0]["text"] == cli["text"] and b["usage"]["prompt_tokens"] == np,
      "suffix: the command line's middle and prompt: %r" % (b,))
# sampled, so that the random model says something before its FIM token
hot = {"prompt": P, "suffix": S, "max_tokens": 12, "temperature": 3, "seed": 4}
s, whole = req("/v1/completions", hot)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
c.request("POST", "/v1/completions", body=json.dumps(dict(hot, stream=True)).encode(),
          headers={"Content-Type": "application/json"})
r = c.getresponse()
ev = [l[6:] for l in r.read().decode().split("\n") if l.startswith("data: ")]
c.close()
chunks = [json.loads(e) for e in ev[:-1]]
w = whole["choices"][0]
check(r.status == 200 and ev[-1] == "[DONE]" and w["text"] != ""
      and "".join(x["choices"][0]["text"] for x in chunks) == w["text"]
      and chunks[-1]["choices"][0]["finish_reason"] == w["finish_reason"],
      "suffix streamed: the text of the whole answer for the seed, %r: %r" % (w, ev))
s, b = req("/infill", {"input_prefix": P, "input_suffix": S, "n_predict": 6, "temperature": 0})
check(s == 200 and b["content"] == cli["text"] and b["tokens_evaluated"] == np and b["stop"] is True
      and b["stop_type"] in ("eos", "limit") and b["tokens_predicted"] == cli["tokens"],
      "/infill: the same middle in llama.cpp's shape: %r" % (b,))
s, b = req("/infill", {"input_prefix": P, "input_suffix": S, "prompt": "return", "n_predict": 2, "temperature": 0})
s2, t = req("/tokenize", {"content": "return"})
check(s == 200 and b["tokens_evaluated"] == np + len(t["tokens"]),
      "/infill's prompt starts the middle: %r" % (b,))
s, b = req("/v1/completions", {"prompt": P, "suffix": S, "echo": True})
check(s == 400 and "suffix" in b["error"]["message"], "echo with a suffix: 400 %r" % (b,))
s, b = req("/infill", {"input_prefix": P, "stream": True})
check(s == 400 and "stream" in b["error"]["message"], "a streamed /infill: 400 %r" % (b,))
s, b = req("/infill", {"input_prefix": 3})
check(s == 400 and "input_prefix" in b["error"]["message"], "a bad field named: %r" % (b,))
s, b = req("/v1/completions", {"prompt": P, "suffix": 3})
check(s == 400 and "suffix" in b["error"]["message"], "a suffix that is no string: %r" % (b,))
sys.exit(1 if fails else 0)
PYEOF
sed 's/^/# /' "$TMP/.out"
kill -TERM $pid
wait $pid
is "$?" 0 "the server exits 0 on SIGTERM"
done_testing
