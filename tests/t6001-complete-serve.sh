#!/bin/sh
# t6001: cp-complete --serve on the loopback, a random free port: /health, completions in
# OpenAI's shape equal to the command line's, malformed and oversized requests answered 4xx,
# concurrent requests beyond the limit answered 429, and the server still serving afterwards
# and exiting 0 on SIGTERM. Every wait is bounded.
. "$(dirname "$0")/lib.sh"

TOK="$SHARED_DIR/data/gpt2"
[ -f "$TOK/encoder.json" ] || skip_all "no GPT-2 tokenizer at $TOK"

"$BUILD/tests/test-infer" hf-random M 50257 64 2 2 32 "$TOK" 3 || exit 1
cp-complete -m M -N 8 --json "def f(x):" >cli.json || exit 1

: >server.err
cp-complete -m M -j 1 --serve 127.0.0.1:0 --max-concurrent 2 --max-body 2048 --max-n 4 \
	2>server.err &
pid=$!
port=
for i in $(seq 1 100); do
	port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' server.err)
	[ -n "$port" ] && break
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
like "$port" '^[0-9]+$' "the server says which port it took"
[ -n "$port" ] || { kill $pid 2>/dev/null; done_testing; }

ok "requests" "$PYTHON" - "$port" <<'PYEOF'
import http.client, json, sys, threading
port = int(sys.argv[1])
cli = json.load(open("cli.json"))

def req(method, path, body=None, raw=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    c.request(method, path, body=data, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    out = r.read()
    c.close()
    try:
        return r.status, json.loads(out)
    except ValueError:
        return r.status, out

fails = []
def check(cond, what):
    print(("ok" if cond else "FAIL"), what)
    if not cond:
        fails.append(what)

s, b = req("GET", "/health")
check(s == 200 and b == {"status": "ok"}, "health")
s, b = req("POST", "/v1/completions", {"prompt": "def f(x):", "max_tokens": 8, "temperature": 0})
check(s == 200 and b["object"] == "text_completion" and b["choices"][0]["text"] == cli["text"]
      and b["choices"][0]["finish_reason"] == "length" and b["usage"]["completion_tokens"] == 8,
      "greedy completion equals the command line's: %r" % (b,))
s, b = req("POST", "/v1/completions", {"prompt": ["def f(x):"], "max_tokens": 6, "n": 3,
                                       "temperature": 0.8, "top_p": 0.9, "seed": 7, "stop": ["\n", "zz"]})
check(s == 200 and [c["index"] for c in b["choices"]] == [0, 1, 2], "n=3 with a seed and stops")
s2, b2 = req("POST", "/v1/completions", {"prompt": ["def f(x):"], "max_tokens": 6, "n": 3,
                                         "temperature": 0.8, "top_p": 0.9, "seed": 7, "stop": ["\n", "zz"]})
check(s2 == 200 and b2["choices"] == b["choices"], "the same seed gives the same choices")
bad = [
    ("POST", "/v1/completions", None, b"{not json", 400),
    ("POST", "/v1/completions", None, b"", 400),
    ("POST", "/v1/completions", {"max_tokens": 3}, None, 400),
    ("POST", "/v1/completions", {"prompt": 5}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x", "n": 5}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x", "n": "2"}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x", "temperature": -1}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x", "top_p": 0}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x", "stop": [1]}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x", "stop": ""}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x", "max_tokens": -3}, None, 400),
    ("POST", "/v1/completions", [1, 2], None, 400),
    ("POST", "/v1/completions", {"prompt": "word " * 200}, None, 400),
    ("POST", "/v1/completions", {"prompt": "x" * 5000}, None, 413),
    ("GET", "/v1/completions", None, None, 405),
    ("POST", "/health", None, None, 405),
    ("GET", "/nope", None, None, 404),
]
for m, p, body, raw, want in bad:
    s, b = req(m, p, body, raw)
    check(s == want and isinstance(b, dict) and "message" in b.get("error", {}),
          "%s %s %r -> %d (%r)" % (m, p, (body or raw or b"")[:40] if not isinstance(body, dict) else list(body), s, b))

# 12 at once against a limit of 2: each is served or told 429, the served ones all alike
res = []
go = threading.Barrier(12)
def worker():
    go.wait(30)
    res.append(req("POST", "/v1/completions", {"prompt": "def f(x):", "max_tokens": 50, "n": 4, "temperature": 0}))
ts = [threading.Thread(target=worker) for _ in range(12)]
for t in ts: t.start()
for t in ts: t.join(120)
codes = sorted(s for s, _ in res)
check(len(res) == 12 and set(codes) <= {200, 429} and 200 in codes, "concurrent: %r" % codes)
texts = {c["text"] for s, b in res if s == 200 for c in b["choices"]}
check(len(texts) == 1, "concurrent greedy requests agree")
# whether requests overlap depends on the scheduler: report, do not fail
print("ok" if 429 in codes else "note: no request overlapped enough to see 429", "beyond --max-concurrent: 429")
s, b = req("GET", "/health")
check(s == 200, "still serving after all that")
sys.exit(1 if fails else 0)
PYEOF
sed 's/^/# /' "$TMP/.out"
kill -TERM $pid
st=0
for i in $(seq 1 50); do
	kill -0 $pid 2>/dev/null || break
	sleep 0.1
done
if kill -0 $pid 2>/dev/null; then
	kill -KILL $pid
	_tap 1 "server exits on SIGTERM"
else
	wait $pid
	st=$?
	is "$st" 0 "server exits 0 on SIGTERM"
fi
done_testing
