#!/bin/sh
# bench/serve.sh: the server's throughput with CLIENTS concurrent clients against the same
# clients one after another, on a random GPT-2 of the given shape (default: 6 layers, width
# 384, GPT-2's vocabulary), each request NEW greedy tokens after a short prompt. Concurrent
# requests are decoded together in one batch (continuous batching), so a step reads the
# weights once for all of them; serial ones read them once each. Prints tokens/s both ways
# and the ratio. Figures move with the machine's load: run it on an idle machine.
# usage: bench/serve.sh [CLIENTS] [NEW] [THREADS] [LAYERS] [WIDTH]   (BUILD: the build directory)
set -eu
cd "$(dirname "$0")/.."
SRC=$PWD
: "${BUILD:=$SRC/build}"
CLIENTS=${1:-8}
NEW=${2:-64}
THREADS=${3:-2}
LAYERS=${4:-6}
WIDTH=${5:-384}
PY=${PYTHON:-python3}
TOK=${GPT2_TOKENIZER:-$SRC/../shared/data/gpt2}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cp-bench-serve.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$TMP"' EXIT

"$BUILD/tests/test-infer" hf-random "$TMP/m" 50257 1024 "$LAYERS" 6 "$WIDTH" "$TOK" 1
"$BUILD/bin/cp-complete" -m "$TMP/m" -j "$THREADS" --serve 127.0.0.1:0 --max-concurrent "$CLIENTS" \
	--batch "$CLIENTS" 2>"$TMP/err" &
pid=$!
i=0
until grep -q 'model loaded, ready' "$TMP/err"; do
	i=$((i + 1))
	[ $i -lt 300 ] || { cat "$TMP/err" >&2; exit 1; }
	sleep 0.1
done
port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$TMP/err")

"$PY" - "$port" "$CLIENTS" "$NEW" <<'PYEOF'
import http.client, json, sys, threading, time
port, clients, new = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
prompts = ["def f%d(x):\n    return" % i for i in range(clients)]

def req(p):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/v1/completions", json.dumps(
        {"prompt": p, "max_tokens": new, "temperature": 0, "stop": []}))
    r = json.loads(c.getresponse().read())
    return r["usage"]["completion_tokens"], r["choices"][0]["text"]

req(prompts[0])  # warm up
t = time.monotonic()
serial = [req(p) for p in prompts]
ts = time.monotonic() - t
out = [None] * clients
def worker(i):
    out[i] = req(prompts[i])
th = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
t = time.monotonic()
for x in th: x.start()
for x in th: x.join()
tc = time.monotonic() - t
ns, nc = sum(n for n, _ in serial), sum(n for n, _ in out)
same = sum(a[1] == b[1] for a, b in zip(serial, out))
print("%d clients x %d tokens: serial %.1f tokens/s (%.2f s), concurrent %.1f tokens/s (%.2f s), "
      "%.2fx; %d of %d texts equal to the serial ones" %
      (clients, new, ns / ts, ts, nc / tc, tc, (nc / tc) / (ns / ts), same, clients))
PYEOF
