#!/usr/bin/python3
"""complete_torch.py: greedy generation with a key/value cache in plain PyTorch (no
transformers), the peer of cp-complete in bench/complete.sh and an independent check of its
greedy tokens and scores in tests/t6000-complete.sh.

usage: complete_torch.py MODELDIR IDS NEW THREADS   generate NEW tokens greedily after IDS
       complete_torch.py --score MODELDIR IDS        log-probability of each of IDS[1:]

MODELDIR holds config.json and model.safetensors (F32, Hugging Face names); IDS is a file of
whitespace-separated token ids. Prints one JSON line: the generated ids and timings, or the
log-probabilities."""
import json
import math
import struct
import sys
import time

import numpy as np
import torch


def load(d):
    cfg = json.load(open(d + "/config.json"))
    raw = open(d + "/model.safetensors", "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    head.pop("__metadata__", None)
    p = {}
    for name, t in head.items():
        assert t["dtype"] == "F32", name
        b, e = t["data_offsets"]
        a = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.float32).reshape(t["shape"])
        p[name.removeprefix("transformer.")] = torch.from_numpy(a.copy())
    return cfg, p


class Model:
    def __init__(self, cfg, p, maxT):
        self.cfg, self.p = cfg, p
        self.L, self.NH, self.C = cfg["n_layer"], cfg["n_head"], cfg["n_embd"]
        self.hs = self.C // self.NH
        self.k = torch.zeros(self.L, self.NH, maxT, self.hs)
        self.v = torch.zeros(self.L, self.NH, maxT, self.hs)
        self.t = 0

    def ln(self, x, name):
        return torch.nn.functional.layer_norm(x, (self.C,), self.p[name + ".weight"], self.p[name + ".bias"], 1e-5)

    def forward(self, ids):
        """append ids (a list) to the cache; logits after each"""
        p, T, t0 = self.p, len(ids), self.t
        x = p["wte.weight"][torch.tensor(ids)] + p["wpe.weight"][t0:t0 + T]
        mask = torch.ones(T, t0 + T, dtype=torch.bool).tril(t0)
        for l in range(self.L):
            h = f"h.{l}."
            a = torch.addmm(p[h + "attn.c_attn.bias"], self.ln(x, h + "ln_1"), p[h + "attn.c_attn.weight"])
            q, k, v = a.split(self.C, dim=1)
            q = q.view(T, self.NH, self.hs).transpose(0, 1)
            self.k[l, :, t0:t0 + T] = k.view(T, self.NH, self.hs).transpose(0, 1)
            self.v[l, :, t0:t0 + T] = v.view(T, self.NH, self.hs).transpose(0, 1)
            s = q @ self.k[l, :, :t0 + T].transpose(1, 2) / math.sqrt(self.hs)
            if self.cfg.get("scale_attn_by_inverse_layer_idx"):
                s = s / (l + 1)
            s = s.masked_fill(~mask, float("-inf")).softmax(-1)
            y = (s @ self.v[l, :, :t0 + T]).transpose(0, 1).reshape(T, self.C)
            x = x + torch.addmm(p[h + "attn.c_proj.bias"], y, p[h + "attn.c_proj.weight"])
            m = torch.addmm(p[h + "mlp.c_fc.bias"], self.ln(x, h + "ln_2"), p[h + "mlp.c_fc.weight"])
            m = torch.nn.functional.gelu(m, approximate="tanh")
            x = x + torch.addmm(p[h + "mlp.c_proj.bias"], m, p[h + "mlp.c_proj.weight"])
        self.t += T
        return self.ln(x, "ln_f") @ p["wte.weight"].T


def main():
    score = sys.argv[1] == "--score"
    args = sys.argv[2:] if score else sys.argv[1:]
    cfg, p = load(args[0])
    ids = [int(x) for x in open(args[1]).read().split()]
    with torch.inference_mode():
        if score:
            torch.set_num_threads(1)
            m = Model(cfg, p, len(ids))
            lp = m.forward(ids).log_softmax(-1)
            print(json.dumps({"logprob": [lp[i, ids[i + 1]].item() for i in range(len(ids) - 1)]}))
            return
        new, threads = int(args[2]), int(args[3])
        torch.set_num_threads(threads)
        m = Model(cfg, p, len(ids) + new)
        t0 = time.perf_counter()
        tok = int(m.forward(ids)[-1].argmax())
        t1 = time.perf_counter()
        out = [tok]
        while len(out) < new:
            tok = int(m.forward([tok])[-1].argmax())
            out.append(tok)
        t2 = time.perf_counter()
        print(json.dumps({"ids": out, "prefill_s": t1 - t0, "decode_s": t2 - t1,
                          "decode_tokens_per_s": (new - 1) / (t2 - t1)}))


main()
