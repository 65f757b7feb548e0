#!/usr/bin/env python3
"""Which tensors of a model can be stored in 8 bits: a probe for `boneage export`.

    python3 scripts/int8_probe.py SRC.safetensors DST.safetensors SCHEME

Reads SRC (F32, F16, or I8 with its `.i8-scale` tensor, as `boneage export` writes them),
rounds the tensors SCHEME names to symmetric 8-bit integers and back, and writes DST in
f32 (copy SRC's manifest `.json` beside it), so that `boneage evaluate` or `assess` can
compare its ages with SRC's. Schemes (the head's tensors are left as SRC stores them):

    conv      every convolution (stem, depthwise, 1x1), one scale per output channel
    pw        every 1x1 convolution, one scale per output channel
    pw-mse    the same, each channel's scale chosen to minimise the squared error
    pw-g32    the same, one scale per 32 inputs of an output channel
    wide      1x1 convolutions of at least 50,000 weights (`export --wide-int8`)
    wide-g32  the same, one scale per 32 inputs
    stage6    the 1x1 convolutions of stage 6 (`stages.5`) only

Measured with it: docs/cv/fingers.md, "Room in the budget". Needs numpy.
"""

import json
import struct
import sys

import numpy as np

SCALE = ".i8-scale"
WIDE = 50_000


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header, data = json.loads(raw[8 : 8 + n]), raw[8 + n :]
    out = {}
    for name, v in header.items():
        if name == "__metadata__" or name.endswith(SCALE):
            continue
        s, e = v["data_offsets"]
        if v["dtype"] == "F16":
            a = np.frombuffer(data[s:e], np.float16).astype(np.float32)
        elif v["dtype"] == "F32":
            a = np.frombuffer(data[s:e], np.float32).copy()
        elif v["dtype"] == "I8":
            ss, se = header[name + SCALE]["data_offsets"]
            scales = np.frombuffer(data[ss:se], np.float32)
            q = np.frombuffer(data[s:e], np.int8).astype(np.float32)
            a = (q.reshape(len(scales), -1) * scales[:, None]).ravel()
        else:
            sys.exit(f"{path}: tensor {name} has dtype {v['dtype']}")
        out[name] = a.reshape(v["shape"])
    return header.get("__metadata__"), out


def save(path, meta, tensors):
    header, blobs, offset = ({"__metadata__": meta} if meta else {}), [], 0
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    import os

    os.replace(path + ".tmp", path)


def rounded(rows, scale):
    scale = np.where(scale == 0, 1, scale)
    return np.clip(np.round(rows / scale), -127, 127) * scale


def per_channel(a):
    r = a.reshape(a.shape[0], -1)
    return rounded(r, np.abs(r).max(1, keepdims=True) / 127).reshape(a.shape)


def per_channel_mse(a):
    r = a.reshape(a.shape[0], -1)
    top = np.abs(r).max(1, keepdims=True)
    best, err = None, None
    for c in np.linspace(0.5, 1.0, 11):
        q = rounded(r, top * c / 127)
        e = ((q - r) ** 2).sum(1, keepdims=True)
        best, err = (q, e) if best is None else (np.where(e < err, q, best), np.minimum(e, err))
    return best.reshape(a.shape)


def per_group(a, g=32):
    r = a.reshape(a.shape[0], -1)
    if r.shape[1] % g:
        return per_channel(a)
    r = r.reshape(a.shape[0], -1, g)
    return rounded(r, np.abs(r).max(2, keepdims=True) / 127).reshape(a.shape)


def main():
    if len(sys.argv) != 4 or sys.argv[1] in ("-h", "--help"):
        sys.exit(__doc__)
    src, dst, scheme = sys.argv[1:]
    head = lambda name, a: (a.ndim == 2 and a.size >= 64) or name.endswith("head.conv.weight")  # noqa: E731
    one = lambda a: a.ndim == 4 and a.shape[2:] == (1, 1)  # noqa: E731
    rules = {
        "conv": (lambda n, a: a.ndim == 4, per_channel),
        "pw": (lambda n, a: one(a), per_channel),
        "pw-mse": (lambda n, a: one(a), per_channel_mse),
        "pw-g32": (lambda n, a: one(a), per_group),
        "wide": (lambda n, a: one(a) and a.size >= WIDE, per_channel),
        "wide-g32": (lambda n, a: one(a) and a.size >= WIDE, per_group),
        "stage6": (lambda n, a: one(a) and "stages.5." in n, per_channel),
    }
    if scheme not in rules:
        sys.exit(f"{scheme}: not a scheme ({', '.join(rules)})")
    which, how = rules[scheme]
    meta, tensors = load(src)
    for name, a in tensors.items():
        if which(name, a) and not head(name, a):
            tensors[name] = how(a)
    save(dst, meta, tensors)


if __name__ == "__main__":
    main()
