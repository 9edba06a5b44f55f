#!/usr/bin/env python3
"""near_datasketch.py: the peer side of bench/dedup.sh's near-dedup comparison.

CodeParrot's near dedup as datasketch runs it: files read as cp-hash reads them (the reader of
tests/ref/codeparrot_ref.py), exact duplicates removed first (MD5 of the whitespace-stripped
text, first kept), tokens = the non-empty parts of re.split("[^A-Za-z_0-9]"), files with fewer
than 10 distinct tokens skipped, MinHash(num_perm=256) over the token set, MinHashLSH with
threshold 0.85 (datasketch picks bands and rows). Each file is queried before it is inserted;
a candidate pair is confirmed when MinHash.jaccard >= threshold.

usage: near_datasketch.py [--threshold J] [--seed N] [--pairs FILE] PATH...
Prints timings and counts as JSON; --pairs writes confirmed pairs as JSON lines {"a","b","jaccard"}.
"""
import argparse
import hashlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
from codeparrot_ref import read_corpus, WS  # noqa: E402

from datasketch import MinHash, MinHashLSH  # noqa: E402

NON_ALPHA = re.compile("[^A-Za-z_0-9]")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", type=float, default=0.85)
    ap.add_argument("--num-perm", type=int, default=256)
    ap.add_argument("--seed", type=int, default=1, help="MinHash seed (datasketch's default: 1)")
    ap.add_argument("--pairs")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()

    t0 = time.perf_counter()
    seen, docs, nbytes = set(), [], 0
    for path, data in read_corpus(a.paths, 1_000_000):
        nbytes += len(data)
        text = data.decode("utf-8", "surrogateescape")
        h = hashlib.md5(WS.sub("", text).encode("utf-8", "surrogateescape")).digest()
        if h in seen:
            continue
        seen.add(h)
        docs.append((path, text))
    t1 = time.perf_counter()

    sigs = []
    for path, text in docs:
        tokens = {t for t in NON_ALPHA.split(text) if t.strip()}
        if len(tokens) < 10:
            continue
        m = MinHash(num_perm=a.num_perm, seed=a.seed)
        m.update_batch([t.encode("utf-8", "surrogateescape") for t in tokens])
        sigs.append((path, m))
    t2 = time.perf_counter()

    lsh = MinHashLSH(threshold=a.threshold, num_perm=a.num_perm)
    pairs, candidates = [], 0
    for i, (path, m) in enumerate(sigs):
        for j in lsh.query(m):
            candidates += 1
            jac = m.jaccard(sigs[j][1])
            if jac >= a.threshold:
                pairs.append((sigs[j][0], path, jac))
        lsh.insert(i, m)
    t3 = time.perf_counter()

    if a.pairs:
        with open(a.pairs, "w", encoding="utf-8", errors="surrogateescape") as f:
            for x, y, j in pairs:
                f.write(json.dumps({"a": x, "b": y, "jaccard": j}) + "\n")
    json.dump({
        "bytes": nbytes, "unique_docs": len(docs), "docs_with_minhash": len(sigs),
        "bands": lsh.b, "rows": lsh.r, "candidates": candidates, "pairs": len(pairs),
        "seconds": {"read_exact": t1 - t0, "minhash": t2 - t1, "lsh": t3 - t2, "total": t3 - t0},
    }, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
