#!/bin/sh
# t5010: hostile candidates are contained and judged failed or timed out while the rest of the
# run finishes: a counted fork loop, a fork bomb, a memory bomb, busy loops (one that swallows
# the timeout), a child that ignores SIGTERM and detaches (setsid, double fork), writing and
# deleting files outside the scratch directory, connecting to a listener on 127.0.0.1,
# signalling the parent and kill(-1), flooding stdout (what is kept and stored within the
# sandbox's cap, the total said), and escape calls (unshare, mount,
# setuid, chroot); reaching the host: listeners on UNIX sockets in /var/tmp and /dev/shm (mode 666,
# as the D-Bus system bus is), world-readable files planted in /var/tmp and the test's directory,
# the problems file with the canonical solutions and the repository's README.md, the host's
# /proc/1/cmdline, /sys and /dev/ptmx. Afterwards no process of the run is alive and the files
# are untouched. A control run without namespaces (--unsafe-no-isolation) shows that the same
# candidates do reach the sockets and read the planted files where only a uid protects them.
# Every hostile program bounds itself (2048 processes, 4 GB, 20 s, 200 MB) in case
# containment fails; kill(-1) runs only once the sandbox is seen to use user and pid namespaces.
. "$(dirname "$0")/lib.sh"

cp-humaneval sandbox >sandbox.txt 2>&1 || skip_all "no namespace sandbox here: $(tail -1 sandbox.txt)"
need all "the sandbox lacks user or pid namespaces" \
	sh -c "grep -q 'user namespace' sandbox.txt && grep -q 'pid namespace' sandbox.txt"
need all "candidates would run as root" sh -c "! grep -q 'candidates run as uid 0 ' sandbox.txt"
# the sandbox's output cap, as its man page states it
CAP_KIB=$(sed -n 's/.*the first \([0-9][0-9]*\) KiB kept.*/\1/p' "$SRC_DIR/man/cp-humaneval.1")

MARKER=cp-t5010-marker-$$-$(date +%s)
# files outside the scratch directory, writable by anyone, so only the sandbox protects them
need all "no writable /var/tmp" test -d /var/tmp -a -w /var/tmp
VICTIM_DIR=$(mktemp -d /var/tmp/cp-t5010.XXXXXX) || skip_all "no /var/tmp"
SHM_DIR=
[ -d /dev/shm ] && [ -w /dev/shm ] && SHM_DIR=$(mktemp -d /dev/shm/cp-t5010.XXXXXX)
trap 'rm -rf "$TMP" "$VICTIM_DIR" ${SHM_DIR:+"$SHM_DIR"}; [ -n "${LPID:-}" ] && kill "$LPID" 2>/dev/null
	[ -n "${ULPID:-}" ] && kill "$ULPID" 2>/dev/null' EXIT
mkvictim() {
	printf 'precious\n' >"$VICTIM_DIR/victim.txt"
	chmod 777 "$VICTIM_DIR"
	chmod 666 "$VICTIM_DIR/victim.txt"
}
setup "a victim file in /var/tmp, writable by anyone" mkvictim
# the directory and its entries, not "..": /var/tmp changes as other runs come and go
victim_state() { stat -c '%a %h %y' "$VICTIM_DIR"; ls -lA --time-style=full-iso "$VICTIM_DIR"; }
before=$(victim_state | md5sum)

# a listener on 127.0.0.1 that logs any connection; it stops by itself after 60 s
"$PYTHON" - "$TMP/port" "$TMP/connections" <<'EOF' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8); s.settimeout(0.2)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
end = time.time() + 60
while time.time() < end:
    try:
        c, addr = s.accept()
        open(sys.argv[2], "a").write("connection from %s\n" % (addr,))
        c.close()
    except socket.timeout:
        pass
EOF
LPID=$!
for i in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
setup "a listener on 127.0.0.1" test -s "$TMP/port"
PORT=$(cat "$TMP/port")

# listeners on UNIX sockets that anyone may connect to, logging any connection and what it
# sent; they stop by themselves after 300 s
SOCKS="$VICTIM_DIR/x.sock${SHM_DIR:+ $SHM_DIR/x.sock}"
[ -n "$SHM_DIR" ] && chmod 755 "$SHM_DIR"
"$PYTHON" - "$TMP/unix-ready" "$TMP/unix-connections" $SOCKS <<'EOF' &
import os, select, socket, sys, time
ready, log, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
socks = {}
for p in paths:
    s = socket.socket(socket.AF_UNIX)
    s.bind(p)
    os.chmod(p, 0o666)
    s.listen(8)
    socks[s] = p
open(ready, "w").close()
end = time.time() + 300
while time.time() < end:
    for s in select.select(list(socks), [], [], 0.2)[0]:
        c, _ = s.accept()
        c.settimeout(2)
        try:
            data = c.recv(100)
        except OSError:
            data = b""
        open(log, "a").write("connection on %s: %r\n" % (socks[s], data))
        c.close()
EOF
ULPID=$!
for i in $(seq 50); do [ -e "$TMP/unix-ready" ] && break; sleep 0.1; done
setup "listeners on UNIX sockets in /var/tmp${SHM_DIR:+ and /dev/shm}" test -e "$TMP/unix-ready"
[ -n "$SHM_DIR" ] || skip "no writable /dev/shm: no socket there is tried"

# world-readable files the candidates try to read: planted in /var/tmp and in the test's own
# directory (made reachable for anyone), the problems file with the canonical solutions (where
# the shared data is) and the repository's README.md
plant() {
	printf 'secret\n' >"$VICTIM_DIR/planted.txt"
	chmod 644 "$VICTIM_DIR/planted.txt"
	chmod 711 "$TMP"
	mkdir -m 755 "$TMP/planted"
	printf 'secret\n' >"$TMP/planted/planted.txt"
	chmod 644 "$TMP/planted/planted.txt"
}
setup "world-readable files planted in /var/tmp and $TMP" plant
HOSTFILES="$VICTIM_DIR/planted.txt $TMP/planted/planted.txt $SRC_DIR/README.md"
HE_FILE=$SHARED_DIR/data/humaneval/HumanEval.jsonl.gz
if need_file "$HE_FILE" 1; then
	HOSTFILES="$HOSTFILES $HE_FILE"
	ok "the problems file is there, readable" test -r "$HE_FILE"
fi
HOST_PID1=$(tr '\0' ' ' </proc/1/cmdline | cut -c1-200)
before=$(victim_state | md5sum) # again, with the planted file and the socket

printf '%s\n' '{"task_id": "hostile/0", "prompt": "def f():\n", "canonical_solution": "    return 1\n", "test": "def check(candidate):\n    assert candidate() == 1\n", "entry_point": "f"}' >problems.jsonl

mksamples() { "$PYTHON" - "$MARKER" "$VICTIM_DIR" "$PORT" "$SOCKS" "$HOSTFILES" >samples.jsonl; }
setup "the hostile samples" mksamples <<'EOF'
import json, sys
marker, vdir, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
socks, hostfiles = sys.argv[4].split(), sys.argv[5].split()
victim = vdir + "/victim.txt"
S = {}
S["good"] = "    return 1\n"
S["forkcount"] = """    import os, time
    n, err = 0, 'none'
    for i in range(200):
        try:
            pid = os.fork()
        except OSError as e:
            err = e.strerror
            break
        if pid == 0:
            time.sleep(5)
            os._exit(0)
        n += 1
    raise AssertionError('forked %d (%s)' % (n, err))
"""
S["forkbomb"] = """    import os, time
    for i in range(11):
        try:
            os.fork()
        except OSError:
            pass
    time.sleep(5)
    os._exit(0)
"""
S["membomb"] = """    chunks = []
    for i in range(40):
        chunks.append(bytearray(100 * 1024 * 1024))
    raise AssertionError('allocated 4 GB')
"""
S["busy"] = """    import time
    t = time.time()
    while time.time() - t < 20:
        pass
    return 1
"""
S["stubborn"] = """    import time
    t = time.time()
    while time.time() - t < 20:
        try:
            while time.time() - t < 20:
                pass
        except BaseException:
            pass
    return 1
"""
S["detach"] = """    import os, signal, sys, time
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            os.execv(sys.executable, [sys.executable, '-c',
                'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(30)',
                %r])
        os._exit(0)
    time.sleep(0.3)
    raise AssertionError('detached')
""" % marker
S["files"] = """    import os, shutil
    v, d = %r, %r
    out = []
    for what, fn in [('write', lambda: open(v, 'w').write('pwned')),
                     ('append', lambda: open(v, 'a').write('pwned')),
                     ('remove', lambda: os.remove(v)),
                     ('rename', lambda: os.rename(v, v + '.moved')),
                     ('chmod', lambda: os.chmod(v, 0o600)),
                     ('create', lambda: open(d + '/new.txt', 'w').write('x')),
                     ('rmtree', lambda: shutil.rmtree(d)),
                     ('hosttmp', lambda: open('/var/tmp/%s', 'w').write('x')),
                     ('root', lambda: open('/%s', 'w').write('x')),
                     ('scratch', lambda: open('scratch.txt', 'w').write('x'))]:
        try:
            fn()
            out.append(what + ':done')
        except OSError as e:
            out.append(what + ':' + str(e.strerror))
    raise AssertionError(' '.join(out))
""" % (victim, vdir, marker, marker)
S["network"] = """    import socket
    try:
        s = socket.create_connection(('127.0.0.1', %d), timeout=2)
        s.sendall(b'hello')
        r = 'connected'
    except OSError as e:
        r = 'no connection: %%s' %% e.strerror
    raise AssertionError(r)
""" % port
S["signals"] = """    import os, signal
    os.kill(os.getppid(), signal.SIGTERM)
    os.kill(os.getppid(), signal.SIGKILL)
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:
        pass
    raise AssertionError('still here')
"""
S["flood"] = """    import os, sys
    s = 'x' * (1 << 20)
    for i in range(100):
        sys.stdout.write(s)
    sys.stdout.flush()
    b = b'y' * (1 << 20)
    for i in range(100):
        os.write(1, b)
    return 2
"""
S["escape"] = """    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    r = ['unshare=%d' % libc.unshare(0x10000000),
         'mount=%d' % libc.mount(b'none', b'/mnt', b'tmpfs', 0, None),
         'setuid=%d' % libc.setuid(0),
         'chroot=%d' % libc.chroot(b'/tmp')]
    raise AssertionError(' '.join(r))
"""
S["unix"] = """    import socket
    out = []
    for p in %r:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(2)
        try:
            s.connect(p)
            s.sendall(b'hello')
            out.append('connected')
        except OSError as e:
            out.append(str(e.strerror))
        s.close()
    raise AssertionError(' '.join(out))
""" % socks
S["hostfiles"] = """    out = []
    for p in %r:
        try:
            open(p, 'rb').read(1)
            out.append('read')
        except OSError as e:
            out.append(str(e.strerror))
    raise AssertionError(' '.join(out))
""" % hostfiles
S["hostview"] = """    import os
    c = open('/proc/1/cmdline', 'rb').read().replace(bytes(1), b' ').decode('utf-8', 'replace')
    r = ['cmdline=' + c.strip()[:200].replace('|', '/').replace(chr(10), ' '), 'sys=%s' % os.path.exists('/sys'),
         'ptmx=%s' % os.path.exists('/dev/ptmx'), 'dev=' + ','.join(sorted(os.listdir('/dev')))]
    try:
        os.open('/dev/ptmx', os.O_RDWR)
        r.append('pty=opened')
    except OSError as e:
        r.append('pty=' + e.strerror)
    raise AssertionError(' | '.join(r))
"""
order = ["good", "forkcount", "good", "forkbomb", "membomb", "good", "busy", "stubborn",
         "detach", "good", "files", "network", "signals", "good", "flood", "escape", "unix", "hostfiles", "hostview",
         "good"]
for k in order:
    print(json.dumps({"task_id": "hostile/0", "completion": S[k], "kind": k}))
EOF

res() { "$PYTHON" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["kind"] == sys.argv[2]:
        print(r["result"])' results.jsonl "$1" | head -1; }

# flood_bounded: the flood alone, with -v: what is kept of its output (shown after the sample's
# line) is at most the sandbox's cap, and when it flooded past the cap the line says how much
# there was (N bytes of output), more than was kept
flood_bounded() {
	grep '"kind": "flood"' samples.jsonl >flood.jsonl
	exit_is 0 "$M: the flood alone, -v" timeout 60 cp-humaneval evaluate $MODE -v --problems problems.jsonl \
		--samples flood.jsonl -j 1 --timeout 1 --memory 300M -o flood-results.jsonl
	cp "$TMP/.err" flood.err
	like "$CAP_KIB" '^[0-9]+$' "the output cap is in the man page (the first $CAP_KIB KiB kept)"
	cap=$((${CAP_KIB:-0} * 1024))
	stored=$(wc -c <flood-results.jsonl)
	ok "$M: flood: its stored result is within the cap ($stored bytes, cap $cap)" test "$stored" -le "$cap"
	total=$(sed -n 's/.*, \([0-9][0-9]*\) bytes of output\]$/\1/p' flood.err | head -1)
	like "$total" '^[0-9]+$' "$M: flood: -v says how many bytes of output there were (${total:-none})"
	kept=$(sed '1,/ bytes of output\]$/d' flood.err | wc -c)
	ok "$M: flood: the output kept and shown is within the cap ($kept bytes)" test "$kept" -le "$cap"
	if [ "${total:-0}" -gt "$cap" ]; then
		ok "$M: flood: cut, and said so: $total bytes of output, $kept kept" test "$kept" -lt "$total"
	else
		is "$kept" "$total" "$M: flood: not cut, all $total bytes kept"
	fi
}

not_in() { case "$1" in *"$2"*) return 1 ;; esac; } # TEXT WORD: TEXT does not hold WORD

hostile_run() { # MODE: run the hostile samples and check what became of them
MODE=$1
M=${MODE:---warm}
timeout 120 cp-humaneval evaluate $MODE --problems problems.jsonl --samples samples.jsonl -j 2 \
	--timeout 1 --memory 300M -o results.jsonl >summary.json 2>stderr.txt &
RUN=$!
wait $RUN
is "$?" 0 "$M: the run finishes (exit 0) despite the hostile candidates"
grep -v warning stderr.txt | sed 's/^/# /' | head -5


is "$("$PYTHON" -c '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if json.loads(l)["kind"] == "good" and json.loads(l)["passed"]))' results.jsonl)" 6 \
	"$M: the six good candidates among them pass"
r=$(res forkcount)
like "$r" '^failed: forked [0-9]+ \(Resource temporarily unavailable\)$' "$M: fork loop: stopped by the process limit ($r)"
n=$(printf '%s' "$r" | sed 's/[^0-9]*\([0-9]*\).*/\1/')
ok "$M: fork loop: fewer than 64 children" test "${n:-999}" -lt 64
like "$(res forkbomb)" '^(timed out|failed: .*)$' "$M: fork bomb: timed out or failed"
r=$(res membomb)
like "$r" '^failed: ' "$M: memory bomb: failed ($r)"
ok "$M: memory bomb: never got its 4 GB" sh -c "! echo '$r' | grep -q allocated"
is "$(res busy)" "timed out" "$M: busy loop: timed out"
is "$(res stubborn)" "timed out" "$M: busy loop that swallows the timeout: timed out (killed)"
is "$(res detach)" "failed: detached" "$M: detaching child: its parent judged failed"
r=$(res files)
# the victim is not even there (the private root), and the root itself is read-only
like "$r" 'write:No such file or directory .* root:Read-only file system' \
	"$M: files: writing outside is refused ($r)"
ok "$M: files: nothing outside was done, only the scratch write" sh -c "
	echo '$r' | grep -q 'scratch:done' && ! echo '$r' | sed 's/scratch:done//' | grep -q ':done'"
is "$(cat "$VICTIM_DIR/victim.txt")" "precious" "$M: files: the victim file is untouched"
is "$(victim_state | md5sum)" "$before" "$M: files: the directory is as it was"
ok "$M: files: nothing appeared in the real /var/tmp" test ! -e "/var/tmp/$MARKER"
like "$(res network)" '^failed: no connection: ' "$M: network: no connection ($(res network))"
ok "$M: network: the listener saw no connection" test ! -s "$TMP/connections"
is "$(res signals)" "failed: still here" "$M: signals: parent and kill(-1) reach nothing outside"
like "$(res flood)" '^(failed: |timed out)$' "$M: stdout flood: judged, output bounded"
flood_bounded
is "$(res escape)" "failed: unshare=-1 mount=-1 setuid=-1 chroot=-1" "$M: escape calls all fail"
r=$(res unix)
like "$r" '^failed: ' "$M: UNIX sockets: judged ($r)"
ok "$M: UNIX sockets: the candidate connected to none" not_in "$r" connected
ok "$M: UNIX sockets: the listeners saw no connection" test ! -s "$TMP/unix-connections"
want=failed:
for f in $HOSTFILES; do want="$want No such file or directory"; done
is "$(res hostfiles)" "$want" "$M: host files: the planted ones, README.md and the problems file are not there"
r=$(res hostview)
cmdline=$(printf '%s' "$r" | sed -n 's/^failed: cmdline=\([^|]*\) | .*/\1/p')
ok "$M: /proc/1/cmdline is not the host's pid 1 (${cmdline:-empty})" test "$cmdline" != "$HOST_PID1"
ok "$M: /proc/1/cmdline is not our command line" not_in "$cmdline" samples.jsonl
like "$r" ' [|] sys=False [|] ptmx=False [|] dev=null,urandom,zero [|] pty=No such file or directory$' \
	"$M: no /sys, no /dev/ptmx, only /dev/null, zero and urandom"

# nothing of the run survives: not the detached child (argv marker), not anything carrying the
# run's environment marker, not anything of the sandbox uid that carries our marker
left=
for i in $(seq 30); do
	left=$(grep -las -e "[c]${MARKER#c}" /proc/[0-9]*/cmdline 2>/dev/null; \
	       grep -las -e "CP_SANDBOX=cp-humaneval.$RUN" /proc/[0-9]*/environ 2>/dev/null)
	left=$(printf '%s\n' "$left" | grep -v "^/proc/$$/" | grep -v '^$')
	[ -z "$left" ] && break
	sleep 0.1
done
is "$left" "" "$M: no process of the run is alive afterwards"
}

hostile_run ""
hostile_run --cold

# warm mode, one worker: what a candidate leaves is gone for the next, the server cannot be
# reached, signalled or read, and keeps judging
mkwarm() { "$PYTHON" - >warm.jsonl; }
setup "samples that litter, snoop and peek" mkwarm <<'EOF'
import json
S = {}
S["litter"] = """    import os
    open('/tmp/litter.txt', 'w').write('x')
    os.makedirs('deep/er/est')
    open('deep/er/est/litter.txt', 'w').write('x')
    os.chmod('deep/er', 0)
    os.chmod('.', 0)
    return 2
"""
S["snoop"] = """    import os
    found = [f for d, _, fs in os.walk('/tmp') for f in fs if f == 'litter.txt']
    raise AssertionError('litter %d' % len(found))
"""
S["peek"] = """    import os, signal
    r = []
    for what, fn in [('mem', lambda: open('/proc/1/mem', 'rb').read(1)),
                     ('fd', lambda: os.listdir('/proc/1/fd')),
                     ('environ', lambda: open('/proc/1/environ', 'rb').read())]:
        try:
            fn()
            r.append(what + ':done')
        except OSError as e:
            r.append(what + ':' + e.strerror)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        os.kill(1, sig)
    raise AssertionError(' '.join(r))
"""
S["good"] = "    return 1\n"
for k in ["litter", "snoop", "peek", "good"]:
    print(json.dumps({"task_id": "hostile/0", "completion": S[k], "kind": k}))
EOF
exit_is 0 "warm, one worker: runs" timeout 60 cp-humaneval evaluate --problems problems.jsonl \
	--samples warm.jsonl -j 1 --timeout 2 -o results.jsonl
is "$(res litter)" "failed: " "litter: judged"
is "$(res snoop)" "failed: litter 0" "the next candidate finds none of it"
like "$(res peek)" "^failed: mem:Permission denied fd:Permission denied environ:Permission denied$" \
	"the server's memory, descriptors and environment are out of reach ($(res peek))"
is "$(res good)" "passed" "after signals to pid 1 the server still judges"
# cold, pid 1 is the sandbox's own init, a copy of cp-humaneval with every problem in memory
grep '"kind": "peek"' warm.jsonl >peek.jsonl
exit_is 0 "cold: the peek runs" timeout 60 cp-humaneval evaluate --cold --problems problems.jsonl \
	--samples peek.jsonl -j 1 --timeout 2 -o results.jsonl
like "$(res peek)" "^failed: mem:Permission denied fd:Permission denied environ:Permission denied$" \
	"cold: the init's memory, descriptors and environment are out of reach ($(res peek))"

# the control: without namespaces the same candidates reach what only the sandbox hid, so the
# checks above can fail; nothing else of the hostile set runs here
grep -e '"kind": "unix"' -e '"kind": "hostfiles"' samples.jsonl >control.jsonl
exit_is 0 "control: rlimits alone (--unsafe-no-isolation) run them" env CP_SANDBOX_NAMESPACES=0 \
	timeout 60 cp-humaneval evaluate --unsafe-no-isolation --problems problems.jsonl \
	--samples control.jsonl -j 1 --timeout 2 -o results.jsonl
like "$(res hostfiles)" '^failed: read read ' "control: the planted files are read ($(res hostfiles))"
like "$(res unix)" '^failed: connected' "control: the UNIX socket in /var/tmp is reached ($(res unix))"
like "$(cat "$TMP/unix-connections" 2>/dev/null)" "connection on $VICTIM_DIR/x.sock: b'hello'" \
	"control: its listener saw the connection"
done_testing
