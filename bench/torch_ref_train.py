"""Same-data PyTorch reference for the bone-age models (issue 6): trains the recipe of
`boneage train age --crops` in PyTorch on the same region crops and the same
validation split, and reports the validation MAE beside ours.

Recipe, as on the Rust side (crates/boneage-nn: tasks.rs cpu preset, data.rs,
train.rs): crop PNG -> area resampling to the input size -> 1st-99th percentile
contrast window inside the hand -> 8 bits -> p / 127.5 - 1; net of six VGG blocks
(--widths, default 16, 32, 48, 64, 80, 96 as scripts/train_age_grid.sh; conv-BN-ELU
x2 + max pool), global average pool, the sex concatenated, dropout 0.25 before each
FC layer (--hidden, default 128, 128) and the output; regression on ages
scaled to [-1, 1] with the MAE loss (or the 240-way softmax expectation); Adam,
lr 1e-3 -> 1e-5 as half a cosine over all steps; batch 8; augmentation zoom +-8 %,
rotation +-8 deg, shift +-4 %; after the last epoch the batch-norm statistics are
recomputed on the unaugmented training images; 2 threads.

Usage:
  python bench/torch_ref_train.py CROPS_DIR LABELS_CSV HOLDOUT_IDS \
      [--region A] [--input 128x96] [--epochs 8] [--head regression] [--out result.json]
      [--widths 16,32,48,64,80,96] [--hidden 128,128]
Prints one JSON line per epoch and a final JSON object (also written to --out).
"""

import argparse
import csv
import json
import math
import os
import sys
import time

import cv2
import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_ref import LITE0_STAGES, Lite0AgeNet, stack  # noqa: E402  (the same networks as the benchmark)

torch.set_num_threads(2)


class AgeNet(nn.Module):
    def __init__(self, classes, widths, hidden):
        super().__init__()
        self.blocks = stack(widths)
        sizes = [widths[-1] + 1] + hidden
        self.fc = nn.ModuleList([nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])])
        self.out = nn.Linear(sizes[-1], classes)
        self.drop = nn.Dropout(0.25)
        self.classes = classes

    def forward(self, x, male):
        x = torch.cat([self.blocks(x).mean(dim=(2, 3)), male], dim=1)
        for fc in self.fc:
            x = nn.functional.elu(fc(self.drop(x)))
        out = self.out(self.drop(x))
        if self.classes == 1:
            return (out + 1.0) * 120.0
        ages = torch.arange(self.classes, dtype=out.dtype)
        return (out.softmax(dim=1) * ages).sum(dim=1, keepdim=True)


class Lite0Age(nn.Module):
    """The `--backbone lite0` network (tasks.rs Preset::lite_age): EfficientNet-Lite0 on
    one channel with the ImageNet weights of `scripts/import_efficientnet.py`, global
    average pool, the sex, dropout 0.2, FC 256 (ELU), the output; regression only."""

    def __init__(self, pretrained):
        super().__init__()
        self.net = Lite0AgeNet()
        if pretrained:
            load_lite0(self.net, pretrained)

    def forward(self, x, male):
        return (self.net(x, male) + 1.0) * 120.0


def load_lite0(net, path):
    """Copies the backbone tensors of our safetensors file (burn's names: `stem.conv.weight`,
    `stages.S.B.expand.norm.gamma`, ...) into `Lite0AgeNet.backbone` (a Sequential)."""
    from safetensors.numpy import load_file

    src = load_file(path)
    names = ["stem"]
    for s, (r, *_rest) in enumerate(LITE0_STAGES):
        names += [f"stages.{s}.{b}" for b in range(r)]
    names.append("head")
    bn = {"weight": "gamma", "bias": "beta", "running_mean": "running_mean", "running_var": "running_var"}
    done = 0
    for name, module in zip(names, net.backbone):
        parts = [("", module)] if name in ("stem", "head") else [
            (p, getattr(module, p)) for p in ("expand", "depthwise", "project")
            if not isinstance(getattr(module, p), nn.Identity)]
        for part, seq in parts:
            prefix = f"{name}.{part}." if part else f"{name}."
            conv, norm = seq[0], seq[1]
            conv.weight.data.copy_(torch.from_numpy(src[prefix + "conv.weight"]))
            for t, b in bn.items():
                getattr(norm, t).data.copy_(torch.from_numpy(src[prefix + "norm." + b]))
            done += 5
    missing = [k for k in src if k.startswith(("stem", "stages", "head"))]
    assert done == len(missing), f"copied {done} of {len(missing)} backbone tensors"


def read_labels(path):
    """id -> (bone age in months, 1.0 male / 0.0 female) of an `id,boneage,male` CSV."""
    with open(path) as f:
        return {row["id"]: (float(row["boneage"]), 1.0 if row["male"].lower() in ("true", "1") else 0.0)
                for row in csv.DictReader(f)}


def read_ids(path):
    """The ids of a list, one per line (`#` lines are comments)."""
    with open(path) as f:
        return {l.strip() for l in f if l.strip() and not l.startswith("#")}


def window(img):
    """The 1st-99th percentile window inside the hand (pixels > 1e-3), 8 bits."""
    mask = img > 1e-3
    out = np.zeros_like(img)
    if mask.any():
        lo, hi = np.percentile(img[mask], [1, 99])
        scale = 1.0 / (hi - lo) if hi > lo else 0.0
        out[mask] = np.clip((img[mask] - lo) * scale, 0.0, 1.0)
    return np.round(out * 255.0).astype(np.uint8)


def load(crops, ids, region, h, w):
    xs = []
    for i in ids:
        img = cv2.imread(os.path.join(crops, f"{i}_{region}.png"), cv2.IMREAD_GRAYSCALE)
        img = cv2.resize(img.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_AREA)
        xs.append(window(img))
    return np.stack(xs)


def augment(img, rng):
    h, w = img.shape
    zoom = 1.0 + rng.uniform(-0.08, 0.08)
    angle = rng.uniform(-8.0, 8.0)
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, zoom)
    m[0, 2] += rng.uniform(-0.04, 0.04) * w
    m[1, 2] += rng.uniform(-0.04, 0.04) * h
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)


def tensor(batch):
    return torch.from_numpy(batch.astype(np.float32) / 127.5 - 1.0).unsqueeze(1)


# boneage's names for the VGG age net's tensors (VggStack blocks `first`/`second`,
# batch norm gamma/beta, linear weights stored [in, out]) and PyTorch's.
def boneage_names(model):
    names = {}
    for i, _ in enumerate(model.blocks):
        for j, half in ((0, "first"), (3, "second")):
            names[f"blocks.{i}.{j}.weight"] = f"blocks.blocks.{i}.{half}.conv.weight"
            for ours, theirs in (("gamma", "weight"), ("beta", "bias"), ("running_mean", "running_mean"), ("running_var", "running_var")):
                names[f"blocks.{i}.{j + 1}.{theirs}"] = f"blocks.blocks.{i}.{half}.norm.{ours}"
    for k, _ in enumerate(model.fc):
        names[f"fc.{k}.weight"], names[f"fc.{k}.bias"] = f"fc.{k}.weight", f"fc.{k}.bias"
    names["out.weight"], names["out.bias"] = "out.weight", "out.bias"
    return names


def to_boneage(model):
    out = {}
    for theirs, ours in boneage_names(model).items():
        t = model.state_dict()[theirs].detach().float()
        out[ours] = t.t().contiguous() if t.dim() == 2 else t
    return out


def from_boneage(tensors, model):
    state = model.state_dict()
    for theirs, ours in boneage_names(model).items():
        t = tensors[ours]
        state[theirs] = t.t().contiguous() if t.dim() == 2 else t
    return state


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def read_safetensors(path):
    data = open(path, "rb").read()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        assert v["dtype"] == "F32", f"{path}: {name} is {v['dtype']}"
        s, e = v["data_offsets"]
        arr = np.frombuffer(data[8 + n + s : 8 + n + e], dtype="<f4").reshape(v["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("crops")
    p.add_argument("labels")
    p.add_argument("holdout")
    p.add_argument("--region", default="A")
    p.add_argument("--input", default="128x96")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--head", default="regression", choices=["regression", "classification"])
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--widths", default="16,32,48,64,80,96")
    p.add_argument("--hidden", default="128,128")
    p.add_argument("--backbone", default="vgg", choices=["vgg", "lite0"])
    p.add_argument("--pretrained", help="lite0: ImageNet weights (scripts/import_efficientnet.py)")
    p.add_argument("--lr-end", type=float, default=1e-5)
    p.add_argument("--adam-eps", type=float, default=1e-8)
    p.add_argument("--no-augment", action="store_true", help="train on the crops as they are (as `boneage train --no-augment`)")
    p.add_argument("--out")
    p.add_argument("--save-init", help="vgg: write the initial weights as boneage safetensors (names and layouts of crates/boneage-nn), for `boneage train age --init`")
    p.add_argument("--load-init", help="vgg: start from boneage safetensors weights (a run's model.safetensors) instead of PyTorch's initialisation")
    a = p.parse_args()
    h, w = (int(v) for v in a.input.lower().split("x"))
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)

    labels, held = read_labels(a.labels), read_ids(a.holdout)
    have = lambda i: os.path.isfile(os.path.join(a.crops, f"{i}_{a.region}.png"))
    train_ids = sorted(i for i in labels if i not in held and have(i))
    val_ids = sorted(i for i in labels if i in held and have(i))
    x_tr, x_va = load(a.crops, train_ids, a.region, h, w), load(a.crops, val_ids, a.region, h, w)
    y = lambda ids: torch.tensor([[labels[i][0]] for i in ids], dtype=torch.float32)
    s = lambda ids: torch.tensor([[labels[i][1]] for i in ids], dtype=torch.float32)
    y_tr, s_tr, y_va, s_va = y(train_ids), s(train_ids), y(val_ids), s(val_ids)

    widths = [int(v) for v in a.widths.split(",")]
    hidden = [int(v) for v in a.hidden.split(",")]
    if a.backbone == "lite0":
        assert a.head == "regression", "lite0: regression only"
        model = Lite0Age(a.pretrained)
    else:
        model = AgeNet(1 if a.head == "regression" else 240, widths, hidden)
    if a.save_init:
        write_safetensors(a.save_init, to_boneage(model))
    if a.load_init:
        model.load_state_dict(from_boneage(read_safetensors(a.load_init), model))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, eps=a.adam_eps)
    steps_per_epoch = math.ceil(len(train_ids) / a.batch)
    total = steps_per_epoch * a.epochs
    lr = lambda step: a.lr_end + (a.lr - a.lr_end) * 0.5 * (1 + math.cos(math.pi * step / max(total - 1, 1)))
    step, history, start = 0, [], time.perf_counter()
    for epoch in range(a.epochs):
        model.train()
        order = rng.permutation(len(train_ids))
        loss_sum = 0.0
        for k in range(0, len(order), a.batch):
            idx = order[k : k + a.batch]
            xb = tensor(x_tr[idx] if a.no_augment else np.stack([augment(x_tr[i], rng) for i in idx]))
            for g in opt.param_groups:
                g["lr"] = lr(step)
            opt.zero_grad(set_to_none=True)
            # MAE on ages scaled to [-1, 1]
            loss = ((model(xb, s_tr[idx]) - y_tr[idx]) / 120.0).abs().mean()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            step += 1
        model.eval()
        with torch.inference_mode():
            pred = torch.cat([model(tensor(x_va[k : k + 32]), s_va[k : k + 32]) for k in range(0, len(val_ids), 32)])
        mae = (pred - y_va).abs().mean().item()
        rec = {"epoch": epoch + 1, "train_loss": loss_sum / len(train_ids), "val_mae_months": mae,
               "seconds": time.perf_counter() - start}
        history.append(rec)
        print(json.dumps(rec), flush=True)
    # As the Rust engine does after the last epoch (TrainConfig::recalibrate_bn): the
    # batch norms' running statistics averaged over the unaugmented training images.
    for mod in model.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.reset_running_stats()
            mod.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for k in range(0, len(train_ids), 32):
            model(tensor(x_tr[k : k + 32]), s_tr[k : k + 32])
    model.eval()
    with torch.inference_mode():
        pred = torch.cat([model(tensor(x_va[k : k + 32]), s_va[k : k + 32]) for k in range(0, len(val_ids), 32)])
    history[-1]["val_mae_months_before_recalibration"] = history[-1]["val_mae_months"]
    history[-1]["val_mae_months"] = (pred - y_va).abs().mean().item()
    print(json.dumps({"recalibrated_val_mae_months": history[-1]["val_mae_months"]}), flush=True)
    result = {"framework": f"pytorch {torch.__version__}", "backbone": a.backbone, "seed": a.seed,
              "region": a.region, "input": [h, w],
              "head": a.head, "epochs": a.epochs, "train_images": len(train_ids),
              "val_images": len(val_ids), "val_mae_months": history[-1]["val_mae_months"],
              "seconds": time.perf_counter() - start, "history": history}
    print(json.dumps(result))
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
