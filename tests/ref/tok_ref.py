#!/usr/bin/env python3
"""tok_ref.py: independent reference tokenizers for the cp-tokenize / cp-bpe tests.

  tok_ref.py tiktoken ENCODER_JSON VOCAB_BPE LISTFILE   ids of each listed file, one line each
  tok_ref.py hf TOKENIZER LISTFILE                       same with HF tokenizers (tokenizer.json,
                                                         or a directory with vocab.json+merges.txt
                                                         or encoder.json+vocab.bpe)
  tok_ref.py pretok LISTFILE                             GPT-2 regex pieces (module regex), JSON lines
  tok_ref.py hftrain OUTDIR VOCAB_SIZE LISTFILE [MINF]   train HF's BpeTrainer on whole files
                                                         (MIN_FREQUENCY, default 0, as its min_frequency)
  tok_ref.py validlist DIR_OR_LISTFILE MAXBYTES [STRIDE] list .py files that are valid UTF-8
                                                         (sorted; every STRIDE-th one)
  tok_ref.py pretokcheck LISTFILE PIECESFILE             compare cp-tokenize --pieces output with
                                                         the regex module (its Unicode may be newer)
                                                         and HF's ByteLevel; prints both counts
  tok_ref.py unitext SEED NCHARS                         a Unicode-heavy text on stdout
  tok_ref.py classcheck TABLEFILE STRIDE                 compare test-pretok --dump-table with
                                                         HF's classes on every STRIDE-th code point

Files are read as bytes and decoded as strict UTF-8; the text is encoded as ordinary text
(special tokens written in it are not special), which is cp-tokenize's default.
"""
import json
import os
import sys

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_map():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def texts(listfile):
    with open(listfile) as f:
        for line in f:
            path = line.rstrip("\n")
            with open(path, "rb") as g:
                yield g.read().decode("utf-8")


def tiktoken_encoding(encoder_json, vocab_bpe):
    """An Encoding built from GPT-2's files, converted here so nothing is downloaded."""
    import tiktoken
    dec = {c: b for b, c in byte_map().items()}
    with open(encoder_json, encoding="utf-8") as f:
        encoder = json.load(f)
    ranks = {}
    for tok, i in encoder.items():
        if tok == "<|endoftext|>":
            continue
        ranks[bytes(dec[c] for c in tok)] = i
    return tiktoken.Encoding(name="gpt2-local", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": encoder["<|endoftext|>"]})


def hf_tokenizer(path):
    from tokenizers import Tokenizer, pre_tokenizers, decoders
    from tokenizers.models import BPE
    if os.path.isdir(path):
        for v, m in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
            if os.path.exists(os.path.join(path, v)):
                tok = Tokenizer(BPE.from_file(os.path.join(path, v), os.path.join(path, m)))
                tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
                tok.decoder = decoders.ByteLevel()
                tok.add_special_tokens(["<|endoftext|>"])
                break
    else:
        tok = Tokenizer.from_file(path)
    tok.encode_special_tokens = True  # ordinary text, as cp-tokenize's default
    return tok


def out_ids(ids):
    sys.stdout.write(" ".join(map(str, ids)) + "\n")


def main():
    cmd = sys.argv[1]
    if cmd == "tiktoken":
        enc = tiktoken_encoding(sys.argv[2], sys.argv[3])
        ts = list(texts(sys.argv[4]))
        for ids in enc.encode_ordinary_batch(ts, num_threads=2):
            out_ids(ids)
    elif cmd == "hf":
        tok = hf_tokenizer(sys.argv[2])
        ts = list(texts(sys.argv[3]))
        for e in tok.encode_batch(ts, add_special_tokens=False):
            out_ids(e.ids)
    elif cmd == "pretok":
        import regex
        pat = regex.compile(GPT2_PAT)
        for t in texts(sys.argv[2]):
            sys.stdout.write(json.dumps(pat.findall(t)) + "\n")
    elif cmd == "hftrain":
        from tokenizers import Tokenizer, pre_tokenizers, decoders, trainers
        from tokenizers.models import BPE
        tok = Tokenizer(BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        minf = int(sys.argv[5]) if len(sys.argv) > 5 else 0
        tr = trainers.BpeTrainer(vocab_size=int(sys.argv[3]), min_frequency=minf,
                                 special_tokens=["<|endoftext|>"], show_progress=False,
                                 initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(texts(sys.argv[4]), trainer=tr)
        os.makedirs(sys.argv[2], exist_ok=True)
        tok.save(os.path.join(sys.argv[2], "tokenizer.json"))
        tok.model.save(sys.argv[2])
    elif cmd == "validlist":
        src, maxbytes = sys.argv[2], int(sys.argv[3])
        if os.path.isdir(src):
            paths = []
            for root, dirs, files in os.walk(src):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                paths += [os.path.join(root, f) for f in files
                          if f.endswith(".py") and not f.startswith(".")]
        else:
            paths = [l.rstrip("\n") for l in open(src)]
        total = 0
        stride = int(sys.argv[4]) if len(sys.argv) > 4 else 1
        for p in sorted(paths)[::stride]:
            if not os.path.isfile(p) or os.path.islink(p):
                continue
            try:
                data = open(p, "rb").read()
                data.decode("utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if total + len(data) > maxbytes:
                break
            total += len(data)
            print(p)
    elif cmd == "pretokcheck":
        import regex
        from tokenizers import pre_tokenizers
        pat = regex.compile(GPT2_PAT)
        bl = pre_tokenizers.ByteLevel(add_prefix_space=False)
        bad_re = bad_hf = 0
        with open(sys.argv[3], encoding="utf-8") as f:
            ours = f.read().split("\n")
        for t, line in zip(texts(sys.argv[2]), ours):
            o = json.loads(line)
            if o != pat.findall(t):
                bad_re += 1
            if [len(x.encode()) for x in o] != [len(p) for p, _ in bl.pre_tokenize_str(t)]:
                bad_hf += 1
                print("HF differs:", json.dumps(o)[:200], file=sys.stderr)
        print(bad_re, bad_hf)
    elif cmd == "classcheck":
        import unicode_tok_table
        ours = open(sys.argv[2]).read()
        stride = int(sys.argv[3])
        bad = [c for c in range(0, 0x110000, stride)
               if ours[c] != "x" and unicode_tok_table.ref_class(c) != ours[c]]
        print(len(bad), " ".join("%04X" % c for c in bad[:10]))
    elif cmd == "unitext":
        import random
        rnd = random.Random(int(sys.argv[2]))
        ranges = [(0x20, 0x7e), (0xa0, 0x24f), (0x300, 0x36f), (0x370, 0x3ff), (0x400, 0x4ff),
                  (0x590, 0x6ff), (0x900, 0x97f), (0xe00, 0xe7f), (0x1100, 0x11ff),
                  (0x1c80, 0x1c8f), (0x2000, 0x206f), (0x2150, 0x218f), (0x3000, 0x303f),
                  (0x3040, 0x30ff), (0x4e00, 0x4eff), (0xac00, 0xacff), (0xff00, 0xffef),
                  (0x1f300, 0x1f6ff), (0x1f900, 0x1f9ff), (0x10d40, 0x10d8f)]
        words = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", " ", "  ", "\n", "\t", "\r\n",
                 "    ", "\u3000", "\u00a0", "\u2028", "\u0085", "123", " 4", "<|endoftext|>"]
        out = []
        n = int(sys.argv[3])
        while len(out) < n:
            r = rnd.random()
            if r < 0.3:
                out.append(rnd.choice(words))
            elif r < 0.8:
                lo, hi = rnd.choice(ranges)
                out.append(chr(rnd.randint(lo, hi)))
            else:
                c = rnd.randint(0, 0x10ffff)
                if not 0xd800 <= c <= 0xdfff:
                    out.append(chr(c))
        sys.stdout.buffer.write("".join(out).encode("utf-8"))
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
