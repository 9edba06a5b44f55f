#!/usr/bin/env python3
"""humaneval_samples.py: make a samples file of right and wrong completions for HumanEval
problems, for cp-humaneval's tests and benchmark (no model needed).

usage: humaneval_samples.py PROBLEMS N OUT [--tasks M] [--timeouts T] [--seed S]

N samples for each of the first M problems (default all), drawn with a fixed seed from:
the canonical solution, an empty completion, a wrong return value, an exception, a syntax
error, and output on stdout followed by the canonical solution; T samples in all (default 0),
spread over the problems, sleep past any timeout.
"""
import argparse
import gzip
import json
import random


def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(l) for l in f if l.strip()]


def completion(kind, p):
    canon = p["canonical_solution"]
    if kind == "canonical":
        return canon
    if kind == "empty":
        return ""
    if kind == "wrong":
        return "    return None\n"
    if kind == "raise":
        return "    raise ValueError('not today: %s')\n" % p["entry_point"]
    if kind == "syntax":
        return "    return (\n" + canon
    if kind == "noisy":
        return "    print('thinking about', %r)\n" % p["entry_point"] + canon
    if kind == "sleep":
        return "    import time\n    time.sleep(30)\n" + canon
    raise ValueError(kind)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("problems")
    ap.add_argument("n", type=int)
    ap.add_argument("out")
    ap.add_argument("--tasks", type=int, default=0)
    ap.add_argument("--timeouts", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    problems = load(a.problems)
    if a.tasks:
        problems = problems[: a.tasks]
    rng = random.Random(a.seed)
    kinds = ["canonical"] * 5 + ["empty", "wrong", "raise", "syntax", "noisy"]
    total = len(problems) * a.n
    sleepers = set(rng.sample(range(total), min(a.timeouts, total)))
    with open(a.out, "w") as f:
        i = 0
        for p in problems:
            for _ in range(a.n):
                kind = "sleep" if i in sleepers else rng.choice(kinds)
                f.write(json.dumps({"task_id": p["task_id"], "completion": completion(kind, p)}) + "\n")
                i += 1


if __name__ == "__main__":
    main()
