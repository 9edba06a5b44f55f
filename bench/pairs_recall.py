#!/usr/bin/env python3
"""pairs_recall.py: how many of the peer's near-duplicate pairs cp-dedup also joins.

usage: pairs_recall.py PEER_PAIRS OUR_PAIRS
Both files hold JSON lines {"a": origin, "b": origin, ...}. cp-dedup writes a spanning forest
of its clusters, so a peer pair counts as found when both files are in the same cp-dedup
cluster. Prints recall (peer pairs found by us) and the share of our joins the peer's clusters
agree with, as JSON.
"""
import json
import sys


def clusters(path):
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    pairs = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            p = json.loads(line)
            pairs.append((p["a"], p["b"]))
            ra, rb = find(p["a"]), find(p["b"])
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    return find, pairs


def main():
    peer_find, peer = clusters(sys.argv[1])
    our_find, ours = clusters(sys.argv[2])
    found = sum(1 for a, b in peer if our_find(a) == our_find(b))
    agreed = sum(1 for a, b in ours if peer_find(a) == peer_find(b))
    json.dump({"peer_pairs": len(peer), "found": found,
               "recall": found / len(peer) if peer else 1.0,
               "our_joins": len(ours), "peer_agrees": agreed,
               "agreement": agreed / len(ours) if ours else 1.0}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
