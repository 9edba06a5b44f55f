#!/bin/sh
# t6006: the page cp-complete --serve answers at / (the two CodeParrot demos), in a real
# browser: headless Chromium, driven over the DevTools protocol on a pipe, loads it against a
# tiny model, runs "complete" (streamed: the code box ends as the command line's greedy
# completion of it) and "highlight" (one coloured span per token, holding --score's
# log-probability of it and, on hover, the likeliest other token the API gives), with no
# script error and nothing the page's policy refused; a screenshot is saved. Skipped, with the
# reason, where Chromium is missing or does not start.
. "$(dirname "$0")/lib.sh"

TOK=$(gpt2_tokenizer) || skip_all "$GPT2_MISSING"
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)} ||
	skip_all "no chromium on the PATH (Debian's chromium package; scripts/deps test installs it)"
SHOT=${CP_TEST_ARTIFACTS:-$BUILD/test-artifacts}/t6006-web-page.png

setup "a tiny random model" "$BUILD/tests/test-infer" hf-random M 50257 256 2 2 32 "$TOK" 1 ||
	done_testing
printf 'def add(a, b):\n    return' >prompt.py
cp-complete -m M -N 12 --json -f prompt.py >cli.json

serve_start -m M -j 1
like "$port" '^[0-9]+$' "the server listens"
[ -n "$port" ] || done_testing
stop_server() { kill $pid 2>/dev/null; wait $pid 2>/dev/null; }

ok "GET / is the page, with a policy that keeps it to this server" "$PYTHON" - "$port" <<'PYEOF'
import http.client, re, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.request("GET", "/")
r = c.getresponse()
body = r.read().decode()
assert r.status == 200, r.status
assert r.getheader("Content-Type") == "text/html; charset=utf-8", r.getheader("Content-Type")
csp = r.getheader("Content-Security-Policy")
assert "default-src 'none'" in csp and "connect-src 'self'" in csp, csp
for want in ('id="code"', 'id="complete"', 'id="highlight"', 'id="temperature"', 'id="top_p"',
             'id="max_tokens"', "/v1/completions"):
    assert want in body, want
assert not re.search(r"(src|href)\s*=|@import|https?://|//[a-z]", body, re.I), "an outside reference"
PYEOF

# The browser run. Chromium reads DevTools commands from fd 3 and writes answers to fd 4,
# each a JSON text ended by a NUL (--remote-debugging-pipe), so no port and no websocket.
cat >drive.py <<'PYEOF'
import base64, json, os, select, subprocess, sys, time

chromium, port, prompt_file, shot = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
prompt = open(prompt_file).read()
to_browser = os.pipe()
from_browser = os.pipe()
profile = os.path.abspath("profile")
args = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--no-first-run", "--no-default-browser-check", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--mute-audio", "--user-data-dir=" + profile, "--remote-debugging-pipe", "about:blank"]


def child_fds():
    os.dup2(to_browser[0], 3)
    os.dup2(from_browser[1], 4)


log = open("chromium.log", "wb")
proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                        pass_fds=(3, 4), preexec_fn=child_fds)
os.close(to_browser[0])
os.close(from_browser[1])
wfd, rfd = to_browser[1], from_browser[0]
pending, events, next_id = b"", [], [0]


class NoBrowser(Exception):
    pass


def receive(deadline):
    global pending
    while b"\0" not in pending:
        left = deadline - time.time()
        if left <= 0 or not select.select([rfd], [], [], left)[0]:
            raise NoBrowser("no answer from chromium")
        part = os.read(rfd, 1 << 20)
        if not part:
            raise NoBrowser("chromium closed its pipe")
        pending += part
    msg, pending = pending.split(b"\0", 1)
    return json.loads(msg)


def send(method, params=None, session=None, timeout=30):
    next_id[0] += 1
    m = {"id": next_id[0], "method": method, "params": params or {}}
    if session:
        m["sessionId"] = session
    os.write(wfd, json.dumps(m).encode() + b"\0")
    deadline = time.time() + timeout
    while True:
        r = receive(deadline)
        if r.get("id") == next_id[0]:
            if "error" in r:
                raise RuntimeError("%s: %s" % (method, r["error"]))
            return r["result"]
        events.append(r)


def run():
    target = send("Target.createTarget", {"url": "about:blank"}, timeout=60)["targetId"]
    s = send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Runtime", "Log"):
        send(domain + ".enable", session=s)
    send("Emulation.setDeviceMetricsOverride", {"width": 1100, "height": 950,
         "deviceScaleFactor": 1, "mobile": False}, session=s)

    def js(expr, timeout=60):
        r = send("Runtime.evaluate", {"expression": expr, "returnByValue": True,
                 "awaitPromise": True}, session=s, timeout=timeout)
        if "exceptionDetails" in r:
            raise RuntimeError("page: %s" % r["exceptionDetails"])
        return r["result"].get("value")

    idle = """new Promise(res => { const t0 = Date.now(); (function poll() {
        if (document.body && document.body.dataset.state === "idle") res(true);
        else if (Date.now() - t0 > 30000) res(false); else setTimeout(poll, 50); })(); })"""
    send("Page.navigate", {"url": "http://127.0.0.1:%d/" % port}, session=s)
    out = {"ready": js(idle), "model": js('document.getElementById("model").textContent')}
    js("""(() => { const $ = id => document.getElementById(id);
        $("code").value = %s; $("temperature").value = "0"; $("top_p").value = "1";
        $("max_tokens").value = "12"; $("complete").click(); })()""" % json.dumps(prompt))
    out["busy"] = js("document.body.dataset.state")
    out["completed"] = js(idle)
    out["code"] = js('document.getElementById("code").value')
    out["status_complete"] = js('document.getElementById("status").textContent')
    js('document.getElementById("highlight").click()')
    out["highlighted"] = js(idle)
    out["status_highlight"] = js('document.getElementById("status").textContent')
    out["spans"] = js("""[...document.querySelectorAll("#view span.tok")].map(e => ({
        text: e.textContent, logprob: e.dataset.logprob === undefined ? null : +e.dataset.logprob,
        alternative: e.dataset.alternative === undefined ? null : e.dataset.alternative,
        title: e.title, background: getComputedStyle(e).backgroundColor }))""")
    shot_png = send("Page.captureScreenshot", {"format": "png"}, session=s)["data"]
    os.makedirs(os.path.dirname(shot), exist_ok=True)
    with open(shot, "wb") as f:
        f.write(base64.b64decode(shot_png))
    time.sleep(0.2)  # the last log entries
    try:
        while True:
            events.append(receive(time.time() + 0.1))
    except NoBrowser:
        pass
    out["problems"] = [e["params"] for e in events
                       if e.get("method") == "Runtime.exceptionThrown" or
                       (e.get("method") == "Log.entryAdded" and
                        e["params"]["entry"]["level"] == "error")]
    return out


try:
    result = run()
    status = 0
except NoBrowser as e:
    log.flush()
    tail = open("chromium.log", "rb").read().decode(errors="replace").strip().splitlines()
    result = {"no_browser": "%s%s" % (e, (": " + tail[-1]) if tail else "")}
    status = 3
finally:
    try:
        os.write(wfd, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        proc.wait(timeout=10)
    except Exception:
        proc.kill()
        proc.wait()
json.dump(result, open("browser.json", "w"))
sys.exit(status)
PYEOF
"$PYTHON" drive.py "$CHROMIUM" "$port" prompt.py "$SHOT" >drive.out 2>&1
st=$?
if [ $st = 3 ]; then
	why=$(json_field browser.json 'r["no_browser"]')
	for i in $(seq 1 12); do skip "chromium does not start here ($why)"; done
	stop_server
	done_testing
fi
is "$st" 0 "the browser ran the page" || sed 's/^/#   /' drive.out | tail -20
[ -f browser.json ] || { stop_server; done_testing; }

# what the page showed, held against the command line and a request of the test's own
"$PYTHON" -c 'import json; open("code.txt", "w").write(json.load(open("browser.json")).get("code", ""))'
cp-complete -m M --score code.txt --json >score.json
"$PYTHON" - "$port" <<'PYEOF' >api.json
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
c.request("POST", "/v1/completions", json.dumps({"prompt": open("code.txt").read(),
          "max_tokens": 0, "echo": True, "logprobs": 2}))
print(json.dumps(json.loads(c.getresponse().read())["choices"][0]["logprobs"]))
PYEOF
stop_server

is "$(json_field browser.json 'r.get("ready"), r.get("model")')" "True M" \
	"the page loads, waits for the model and names it"
is "$(json_field browser.json 'r.get("busy"), r.get("completed")')" "busy True" \
	"complete: busy at once, then done"
is "$(json_field browser.json 'r["code"]')" \
	"$("$PYTHON" -c 'import json, sys; print(open(sys.argv[1]).read() + json.load(open(sys.argv[2]))["text"])' prompt.py cli.json)" \
	"the code box ends as the prompt and the command line's greedy completion (streamed, temperature 0, 12 tokens)"
like "$(json_field browser.json 'r["status_complete"]')" "^completed: [0-9]+ chunks, finish_reason length$" \
	"the status says how it ended"
is "$(json_field browser.json 'r.get("highlighted")')" "True" "highlight: done"
is "$("$PYTHON" -c '
import json
b, s = json.load(open("browser.json")), json.load(open("score.json"))
sp, st = b["spans"], s["tokens"]
print(len(sp) == len(st) > 3, "".join(x["text"] for x in sp) == open("code.txt").read(),
      all(x["text"] == t["text"] for x, t in zip(sp, st)))')" "True True True" \
	"one span per token of --score, together the code"
is "$("$PYTHON" -c '
import json
b, s = json.load(open("browser.json")), json.load(open("score.json"))
print(all((x["logprob"] is None) == (t["logprob"] is None) and
          (x["logprob"] is None or abs(x["logprob"] - t["logprob"]) < 1e-9)
          for x, t in zip(b["spans"], s["tokens"])))')" "True" \
	"each holds --score's log-probability (the first, unscored, none)"
is "$("$PYTHON" -c '
import json
b, a = json.load(open("browser.json")), json.load(open("api.json"))
def alt(top, tok):
    o = [(lp, t) for t, lp in (top or {}).items() if t != tok]
    return max(o)[1] if o else None
sp = b["spans"]
print(all(x["alternative"] == alt(top, tok) for x, top, tok in
          zip(sp[1:], a["top_logprobs"][1:], a["tokens"][1:])),
      all(("likeliest" in x["title"]) for x in sp[1:]),
      len({x["background"] for x in sp[1:]}) >= 1 and all(x["background"] != "rgba(0, 0, 0, 0)" for x in sp[1:]))')" \
	"True True True" "each scored span is coloured and names the likeliest other token on hover"
like "$(json_field browser.json 'r["status_highlight"]')" "^highlighted: [0-9]+ tokens, perplexity [0-9.]+$" \
	"the status gives the perplexity"
is "$(json_field browser.json 'r["problems"]')" "[]" "no script error, nothing refused by the policy"
is "$(head -c 8 "$SHOT" | od -An -tx1 | tr -d ' \n')" "89504e470d0a1a0a" "a PNG screenshot is saved"
echo "# screenshot: $SHOT"
done_testing
