#!/bin/sh
# t6002: cp-complete --serve through the real `openai` Python client (PyPI): plain, streamed,
# logprobs, echo and best_of requests and the model list, each held against what the command
# line or a second request independently gives (streamed text and logprobs equal the whole
# answer's for the same seed, echo's prompt logprobs equal --score's, greedy's chosen token
# is the likeliest of its top_logprobs, best_of picks the best of the same samples made
# without it, concurrent requests batched together answer as each alone); llama.cpp's
# /tokenize and /detokenize round trip; /health answers 503 while the model loads; a
# streaming client that hangs up stops the generation.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
need_python_module openai

# a context of 1024 so that a stream cut short is far from its end
setup "a tiny random model" "$BUILD/tests/test-infer" hf-random M 50257 1024 2 2 32 "$TOK" 3 ||
	done_testing
printf 'def add(a, b):\n    return a + b' >prompt.py
ok "the command line's greedy completion" cp-complete -m M -N 12 --json -f prompt.py
cp "$TMP/.out" cli.json
ok "the command line's score of the prompt" cp-complete -m M --score prompt.py --json
cp "$TMP/.out" score.json

# The tokenizer comes through a named pipe, so the model stays loading until it is written.
mkfifo slow-tokenizer.json
: >server.err
cp-complete -m M -t slow-tokenizer.json -j 1 --serve 127.0.0.1:0 --max-n 8 2>server.err &
pid=$!
port=
for i in $(seq 1 100); do
	port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' server.err)
	[ -n "$port" ] && break
	sleep 0.1
done
like "$port" '^[0-9]+$' "the server listens before its model is loaded"
[ -n "$port" ] || { kill $pid 2>/dev/null; done_testing; }

ok "503 while loading" "$PYTHON" - "$port" <<'PYEOF'
import http.client, json, sys
def req(method, path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
    c.request(method, path, body=json.dumps(body) if body else None)
    r = c.getresponse()
    return r.status, json.loads(r.read())
s, b = req("GET", "/health")
assert s == 503 and b["error"]["code"] == 503 and b["error"]["message"] == "Loading model", (s, b)
s, b = req("POST", "/v1/completions", {"prompt": "x"})
assert s == 503, (s, b)
s, b = req("GET", "/v1/models")
assert s == 200 and b["data"][0]["id"] == "M", (s, b)
PYEOF
cat M/tokenizer.json >slow-tokenizer.json
for i in $(seq 1 100); do
	grep -q 'model loaded, ready' server.err && break
	sleep 0.1
done
ok "the model loads once its tokenizer comes" grep -q 'model loaded, ready' server.err

ok "the openai client" "$PYTHON" - "$port" <<'PYEOF'
import http.client, json, math, sys
import openai
port = int(sys.argv[1])
client = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % port, api_key="none", max_retries=0)
prompt = open("prompt.py").read()
cli = json.load(open("cli.json"))
score = json.load(open("score.json"))
fails = []
def check(cond, what):
    print(("ok" if cond else "FAIL"), what)
    if not cond:
        fails.append(what)

def whole(**kw):
    return client.completions.create(model="M", prompt=prompt, **kw)

def streamed(**kw):
    """the chunks' texts and logprobs lists joined per choice, and the finish reasons"""
    text, lp, fin, nchunks = {}, {}, {}, 0
    for ch in client.completions.create(model="M", prompt=prompt, stream=True, **kw):
        nchunks += 1
        for c in ch.choices:
            text[c.index] = text.get(c.index, "") + c.text
            if c.logprobs is not None:
                L = lp.setdefault(c.index, {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []})
                for k in L:
                    L[k] += getattr(c.logprobs, k)
            if c.finish_reason is not None:
                check(c.index not in fin, "one finish_reason for choice %d" % c.index)
                fin[c.index] = c.finish_reason
    return text, lp, fin, nchunks

def lists(lp):
    return {k: getattr(lp, k) for k in ("tokens", "token_logprobs", "top_logprobs", "text_offset")}

# plain: greedy equals the command line's
r = whole(max_tokens=12, temperature=0, user="someone")
check(r.object == "text_completion" and r.choices[0].text == cli["text"] and
      r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 12,
      "plain greedy completion equals the command line's")

# streamed: the same text for the same seed, one chunk a token and one a stop
kw = dict(max_tokens=20, temperature=1.0, top_p=0.95, n=3, seed=11)
w = whole(**kw)
text, _, fin, nchunks = streamed(**kw)
check([text.get(i) for i in range(3)] == [c.text for c in w.choices],
      "streamed texts equal the whole answer's for the same seed")
check(fin == {c.index: c.finish_reason for c in w.choices}, "and the finish reasons")
check(nchunks == w.usage.completion_tokens, "a chunk a token, the last with the finish (%d)" % nchunks)

# a stop string across a token boundary, taken from the text itself
base = w.choices[0].text
stop = base[5:9]
kw2 = dict(kw, stop=[stop, "\u00e9\u00e9"])
w2 = whole(**kw2)
text2, _, fin2, _ = streamed(**kw2)
check(w2.choices[0].finish_reason == "stop" and w2.choices[0].text == base[:base.index(stop)],
      "a stop string cuts the text: %r" % stop)
check([text2.get(i) for i in range(3)] == [c.text for c in w2.choices] and
      fin2 == {c.index: c.finish_reason for c in w2.choices},
      "streamed with stop strings: the same texts and finish reasons")

# logprobs, whole and streamed
w3 = whole(max_tokens=10, temperature=0.9, seed=3, logprobs=3)
L = lists(w3.choices[0].logprobs)
c0 = w3.choices[0]
check("".join(L["tokens"]) == c0.text and len(L["tokens"]) == 10, "logprobs: the tokens make the text")
check(L["text_offset"][0] == len(prompt) and
      all(L["text_offset"][i + 1] == L["text_offset"][i] + len(L["tokens"][i]) for i in range(9)),
      "text_offset counts characters from the start of the prompt")
check(all(lp <= 0 and len(top) <= 4 and top.get(t) == lp and
          sum(math.exp(v) for v in top.values()) <= 1 + 1e-9
          for t, lp, top in zip(L["tokens"], L["token_logprobs"], L["top_logprobs"])),
      "each token's logprob is in its top_logprobs, which hold at most 3 + 1")
_, slp, _, _ = streamed(max_tokens=10, temperature=0.9, seed=3, logprobs=3)
check(slp.get(0) == L, "streamed logprobs equal the whole answer's")
g = whole(max_tokens=8, temperature=0, logprobs=2)
gl = lists(g.choices[0].logprobs)
check(all(lp == max(top.values()) for lp, top in zip(gl["token_logprobs"], gl["top_logprobs"])),
      "greedy: each chosen token is the likeliest of its alternatives")

# echo: the prompt's logprobs are --score's
e = whole(max_tokens=0, echo=True, logprobs=1)
el = lists(e.choices[0].logprobs)
check(e.choices[0].text == prompt, "echo with max_tokens 0: the prompt alone")
check(el["tokens"] == [t["text"] for t in score["tokens"]] and el["token_logprobs"][0] is None and
      el["top_logprobs"][0] is None and
      all(abs(a - t["logprob"]) < 1e-9 for a, t in zip(el["token_logprobs"][1:], score["tokens"][1:])),
      "echo's prompt logprobs equal --score's")
check(el["text_offset"][0] == 0 and "".join(el["tokens"]) == prompt, "echo's offsets start at 0")
e2 = whole(max_tokens=5, temperature=0, echo=True)
check(e2.choices[0].text == prompt + cli["text"][:len(e2.choices[0].text) - len(prompt)] and
      e2.choices[0].text.startswith(prompt) and len(e2.choices[0].text) > len(prompt),
      "echo: the prompt, then the completion")
etext, elp, _, _ = streamed(max_tokens=5, temperature=0, echo=True, logprobs=1)
we = whole(max_tokens=5, temperature=0, echo=True, logprobs=1)
check(etext.get(0) == we.choices[0].text and elp.get(0) == lists(we.choices[0].logprobs),
      "streamed echo equals the whole one")

# best_of: the best by mean logprob of the same samples made without it
b = whole(max_tokens=6, temperature=1.0, seed=21, n=1, best_of=4)
all4 = whole(max_tokens=6, temperature=1.0, seed=21, n=4, logprobs=0)
means = [sum(c.logprobs.token_logprobs) / len(c.logprobs.token_logprobs) for c in all4.choices]
check(len(b.choices) == 1 and b.choices[0].text == all4.choices[means.index(max(means))].text,
      "best_of 4: the sample of the highest mean log-probability")

# errors the client raises
for bad in (dict(stream=True, best_of=3), dict(logprobs=99), dict(best_of=1, n=2)):
    try:
        whole(max_tokens=2, **bad)
        check(False, "refused: %r" % bad)
    except openai.BadRequestError:
        check(True, "refused: %r" % bad)

# concurrent requests (decoded together in one batch) give what each gives alone
import threading
reqs = [dict(max_tokens=14, temperature=1.0, seed=100 + i, n=1 + i % 2, top_p=0.9) for i in range(4)]
alone = [[c.text for c in whole(**r).choices] for r in reqs]
together = [None] * 4
def run(i):
    if i % 2:
        t, _, _, _ = streamed(**reqs[i])
        together[i] = [t.get(k) for k in range(reqs[i]["n"])]
    else:
        together[i] = [c.text for c in whole(**reqs[i]).choices]
ths = [threading.Thread(target=run, args=(i,)) for i in range(4)]
for t in ths: t.start()
for t in ths: t.join(120)
check(together == alone, "4 concurrent requests, whole and streamed, answer as each alone")

# the model list
m = client.models.list()
check([x.id for x in m.data] == ["M"] and client.models.retrieve("M").id == "M", "/v1/models")

# llama.cpp's /tokenize and /detokenize
def post(path, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", path, json.dumps(body))
    r = c.getresponse()
    return r.status, json.loads(r.read())
text = prompt + " # caf\u00e9 \u2603 <|endoftext|>x"
s, t = post("/tokenize", {"content": text})
s2, d = post("/detokenize", {"tokens": t["tokens"]})
check(s == 200 and s2 == 200 and d["content"] == text, "/tokenize then /detokenize gives the text back")
check(t["tokens"][:len(score["tokens"])] == [x["id"] for x in score["tokens"]] and 50256 in t["tokens"],
      "/tokenize's ids are the scorer's (<|endoftext|> one token)")
s, tp = post("/tokenize", {"content": text, "with_pieces": True})
pieces = [x["piece"].encode() if isinstance(x["piece"], str) else bytes(x["piece"]) for x in tp["tokens"]]
check([x["id"] for x in tp["tokens"]] == t["tokens"] and b"".join(pieces) == text.encode() and
      any(isinstance(x["piece"], list) for x in tp["tokens"]),
      "with_pieces: the pieces (strings, or bytes where a character is split) make the text")
s, d = post("/detokenize", {"tokens": [1, 99999999]})
check(s == 400, "/detokenize refuses an id outside the vocabulary")
sys.exit(1 if fails else 0)
PYEOF
sed 's/^/# /' "$TMP/.out"

# a client that hangs up after the first event stops the work well before max_tokens
ok "a hung-up stream" "$PYTHON" - "$port" <<'PYEOF'
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
body = json.dumps({"prompt": "x", "max_tokens": 1000, "stream": True, "temperature": 0})
s.sendall(("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode())
got = b""
while b"data: " not in got:
    got += s.recv(4096)
s.close()
PYEOF
for i in $(seq 1 100); do
	grep -q 'the client went away' server.err && break
	sleep 0.1
done
n=$(sed -n 's/.*the client went away; stopped after \([0-9]*\) tokens.*/\1/p' server.err)
like "$n" '^[0-9]+$' "the server saw the client go"
[ -n "$n" ] && [ "$n" -lt 1000 ]
_tap $? "and stopped after $n of 1000 tokens"
ok "still serving" "$PYTHON" -c '
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("GET", "/health")
sys.exit(c.getresponse().status != 200)' "$port"

serve_stop
is "$?" 0 "server exits 0 on SIGTERM"
done_testing
