#!/usr/bin/python3
"""gpt2_torch_ref.py: an independent GPT-2 in plain PyTorch (no transformers), written after
transformers' GPT2LMHeadModel, that the C model is checked against.

usage: gpt2_torch_ref.py MODELDIR INPUTS OUT [MODELDIR INPUTS OUT]...

MODELDIR holds config.json and model.safetensors as cp writes them (Hugging Face names and
layout); INPUTS is a safetensors file with "tokens" (I32 [steps, B, T]) and metadata lr,
warmup, min_frac, schedule, wd, clip. Writes OUT (safetensors, F32): logits and loss of batch
0, grad.<name> for every tensor, and losses, the loss of each of `steps` AdamW steps (batch s
at step s) with clipping and the warmup + decay schedule."""
import json
import math
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

DT = {"F32": np.float32, "I32": np.int32, "F64": np.float64}


def read_st(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    out = {}
    for name, t in head.items():
        b, e = t["data_offsets"]
        arr = np.frombuffer(raw[8 + n + b:8 + n + e], dtype=DT[t["dtype"]])
        out[name] = arr.reshape(t["shape"]).copy()
    return out, meta


def write_st(path, tensors):
    head, off, blobs = {}, 0, []
    for name, a in tensors.items():
        a = np.ascontiguousarray(a, dtype=np.float32)
        head[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        off += a.nbytes
        blobs.append(a.tobytes())
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def forward(p, cfg, tokens):
    B, T = tokens.shape
    C, NH, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
    hs = C // NH
    x = p["transformer.wte.weight"][tokens] + p["transformer.wpe.weight"][:T]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        g = lambda n: p["transformer.h.%d.%s" % (l, n)]
        h = F.layer_norm(x, (C,), g("ln_1.weight"), g("ln_1.bias"), 1e-5)
        qkv = torch.addmm(g("attn.c_attn.bias"), h.view(-1, C), g("attn.c_attn.weight")).view(B, T, 3 * C)
        q, k, v = (t.view(B, T, NH, hs).permute(0, 2, 1, 3) for t in qkv.split(C, dim=2))
        if cfg.get("reorder_and_upcast_attn"):
            scale = 1.0 / float(hs) ** 0.5
            if cfg.get("scale_attn_by_inverse_layer_idx"):
                scale /= float(l + 1)
            w = torch.baddbmm(torch.empty(B * NH, T, T), q.reshape(-1, T, hs),
                              k.transpose(-1, -2).reshape(-1, hs, T), beta=0, alpha=scale)
            w = w.reshape(B, NH, T, T)
        else:
            w = torch.matmul(q, k.transpose(-1, -2)) / torch.full([], float(hs) ** 0.5)
            if cfg.get("scale_attn_by_inverse_layer_idx"):
                w = w / float(l + 1)
        w = torch.where(causal, w, torch.tensor(torch.finfo(w.dtype).min))
        w = torch.softmax(w, dim=-1)
        a = torch.matmul(w, v).permute(0, 2, 1, 3).reshape(B, T, C)
        a = torch.addmm(g("attn.c_proj.bias"), a.view(-1, C), g("attn.c_proj.weight")).view(B, T, C)
        x = x + a
        h = F.layer_norm(x, (C,), g("ln_2.weight"), g("ln_2.bias"), 1e-5)
        h = gelu_new(torch.addmm(g("mlp.c_fc.bias"), h.view(-1, C), g("mlp.c_fc.weight")))
        h = torch.addmm(g("mlp.c_proj.bias"), h, g("mlp.c_proj.weight")).view(B, T, C)
        x = x + h
    x = F.layer_norm(x, (C,), p["transformer.ln_f.weight"], p["transformer.ln_f.bias"], 1e-5)
    logits = x @ p["transformer.wte.weight"].t()
    V = logits.shape[-1]
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1))
    return logits, loss


def lr_at(step, total, warmup, lr, min_frac, sched):
    if step < warmup:
        return lr * (step + 1) / warmup
    if sched == "constant":
        return lr
    span = total - warmup - 1 if total > warmup + 1 else 1
    prog = min(1.0, (step - warmup) / span)
    floor = min_frac * lr
    f = 0.5 * (1 + math.cos(math.pi * prog)) if sched == "cosine" else 1 - prog
    return floor + (lr - floor) * f


def main():
    torch.set_num_threads(1)
    args = sys.argv[1:]
    if not args or len(args) % 3:
        sys.exit("usage: gpt2_torch_ref.py MODELDIR INPUTS OUT [MODELDIR INPUTS OUT]...")
    for i in range(0, len(args), 3):
        reference(*args[i:i + 3])


def reference(mdir, inputs, out):
    with open(mdir + "/config.json") as f:
        cfg = json.load(f)
    weights, _ = read_st(mdir + "/model.safetensors")
    data, meta = read_st(inputs)
    tokens = torch.from_numpy(data["tokens"].astype(np.int64))
    p = {k: torch.from_numpy(v).requires_grad_(True) for k, v in weights.items()}
    res = {}
    logits, loss = forward(p, cfg, tokens[0])
    loss.backward()
    res["logits"] = logits.detach().numpy()
    res["loss"] = np.array([loss.item()])
    for k, v in p.items():
        res["grad." + k] = v.grad.numpy().copy()
        v.grad = None

    steps = tokens.shape[0]
    lr, wd, clip = float(meta["lr"]), float(meta["wd"]), float(meta["clip"])
    warmup, min_frac, sched = int(meta["warmup"]), float(meta["min_frac"]), meta["schedule"]
    # no decay on biases and LayerNorm weights, as CodeParrot's get_grouped_params
    decay = [v for k, v in p.items() if not (k.endswith("bias") or ".ln_" in k or k.startswith("transformer.ln_f"))]
    nodecay = [v for k, v in p.items() if k.endswith("bias") or ".ln_" in k or k.startswith("transformer.ln_f")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.999), eps=1e-8)
    sch = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at(s, steps, warmup, lr, min_frac, sched) / lr)
    losses, norms = [], []
    for s in range(steps):
        opt.zero_grad()
        _, loss = forward(p, cfg, tokens[s])
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(list(p.values()), clip)))
        opt.step()
        sch.step()
        losses.append(loss.item())
    res["losses"] = np.array(losses)
    res["grad_norms"] = np.array(norms)
    for k, v in p.items():
        res["final." + k] = v.detach().numpy()
    write_st(out, res)


if __name__ == "__main__":
    main()
