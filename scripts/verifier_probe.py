"""Probe: can a small network that looks at the registered hand tell a right
registration from a wrong one better than the template check?

A measurement, not a shipped model. Trains a small CNN (PyTorch, CPU) on the
registered, contrast-normalised hands of the reviewed key-point sets
(data/labels/keypoints.csv minus holdout-keypoints.txt), right ones (each point
moved by up to 2.5 % of the span) against wrong ones (fingertip on a neighbouring
finger, thumb mirrored, capitate moved 7-15 % of the span, fingertip moved along the
hand); chooses its threshold on the 100 held-out development films; then measures,
on the blind sets' hand-marked points, the share of right registrations it refuses
and of the check's four deliberate wrong kinds it catches (the protocol of
`boneage evaluate-preprocess --check`), and what it does to the front end's own
answers (taken from a `boneage preprocess` run with the check opened).

Inputs: U-Net masks from `boneage segment ... --out MASKS`; the front end's
answers as key-point CSVs. Normalisation here is the 1-99.5 percentile window inside
the mask without CLAHE, so the figures are the probe's, not a Rust check's.

    python scripts/verifier_probe.py --data ../shared/data/rsna --masks MASKS \
        --answers ANSWERS.csv [--answers MORE.csv] --out DIR
"""

import argparse
import csv
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

W, H = 200, 260  # half the CPU canvas (400x520)
TIP = complex(W / 2, 100 * H / 2080)
CAP = complex(W / 2, H - 480 * H / 2080)
KINDS = [
    "fingertip on a neighbouring finger",
    "thumb mirrored across the hand's axis",
    "capitate 10 % of the hand towards the fingers",
    "capitate 10 % of the hand towards the wrist",
]


def read_points(path):
    out = {}
    with open(path) as f:
        for row in csv.DictReader(f):
            out[row["id"]] = np.array(
                [
                    [float(row["fingertip_x"]), float(row["fingertip_y"])],
                    [float(row["thumb_x"]), float(row["thumb_y"])],
                    [float(row["capitate_x"]), float(row["capitate_y"])],
                ]
            )
    return out


def ids_of(path):
    with open(path) as f:
        return [l.strip() for l in f if l.strip() and not l.startswith("#")]


def registration(k, w=W, h=H):
    """Canvas -> image affine (PIL's six numbers) of key points k, as
    boneage_core::registration::register maps them (mirror when the thumb lies left
    of the capitate -> fingertip axis)."""
    f, t, c = (complex(*p) for p in k)
    axis, tv = f - c, t - c
    side = axis.real * tv.imag - axis.imag * tv.real
    mirrored = side < 0
    m = (lambda z: complex(-z.real, z.imag)) if mirrored else (lambda z: z)
    zf, zc = m(f), m(c)
    scale = complex(w / W, h / H)
    tip, cap = complex(TIP.real * scale.real, TIP.imag * scale.imag), complex(
        CAP.real * scale.real, CAP.imag * scale.imag
    )
    a = (tip - cap) / (zf - zc)
    b = 1 / a
    # z = b (q - cap) + zc;  p = m(z)
    ax, ay = b.real, -b.imag
    bx, by = b.imag, b.real
    cx = zc.real - (b.real * cap.real - b.imag * cap.imag)
    cy = zc.imag - (b.imag * cap.real + b.real * cap.imag)
    coeffs = [ax, ay, cx, bx, by, cy]
    if mirrored:
        coeffs = [-ax, -ay, -cx, bx, by, cy]
    return coeffs


def warp(img, k, w=W, h=H, resample=Image.BILINEAR):
    return np.asarray(img.transform((w, h), Image.AFFINE, registration(k, w, h), resample=resample))


def normalised(raw, mask):
    a = np.asarray(raw, dtype=np.float32)
    m = np.asarray(mask) > 127
    if m.sum() < 100:
        m = np.ones_like(m)
    lo, hi = np.percentile(a[m], [1, 99.5])
    out = np.clip((a - lo) / max(hi - lo, 1) * 255, 0, 255)
    out[~m] = 0
    return Image.fromarray(out.astype(np.uint8))


def neighbour_tips(mask, k):
    """The mask's digit tips beside the true fingertip (at most two), in image
    coordinates: local highest points of the registered mask's upper outline."""
    span = np.linalg.norm(k[0] - k[2])
    wm, hm = 400, 520
    reg = warp(mask, k, wm, hm, Image.NEAREST) > 127
    top = np.where(reg.any(axis=0), reg.argmax(axis=0), hm).astype(float)
    tips = []
    for x in range(8, wm - 8):
        if top[x] >= hm * 0.6:
            continue
        win = top[max(0, x - 18) : x + 19]
        if top[x] <= win.min() and (not tips or x - tips[-1][0] > 18):
            # a tip: the outline drops at least 15 px on both sides within 45 px
            left, right = top[max(0, x - 45) : x], top[x + 1 : x + 46]
            if left.size and right.size and left.max() - top[x] > 15 and right.max() - top[x] > 15:
                tips.append((x, top[x]))
    # back to image coordinates
    co = registration(k, wm, hm)
    out = []
    for x, y in tips:
        p = np.array([co[0] * x + co[1] * y + co[2], co[3] * x + co[4] * y + co[5]])
        d = np.linalg.norm(p - k[0]) / span
        if np.linalg.norm(p - k[1]) > 0.15 * span and 0.05 <= d < 0.4:
            out.append((d, p))
    out.sort(key=lambda e: e[0])
    return [p for _, p in out[:2]]


def deliberate_wrongs(mask, k):
    """The four kinds of `registration_check::wrong_keypoints`, as (kind, points)."""
    out = []
    for tip in neighbour_tips(mask, k):
        w = k.copy()
        w[0] = tip
        out.append((0, w))
    axis = (k[0] - k[2]) / np.linalg.norm(k[0] - k[2])
    t = k[1] - k[2]
    foot = k[2] + axis * t.dot(axis)
    w = k.copy()
    w[1] = foot + (foot - k[1])
    out.append((1, w))
    step = (k[0] - k[2]) * 0.1
    for kind, sign in [(2, 1.0), (3, -1.0)]:
        w = k.copy()
        w[2] = k[2] + step * sign
        out.append((kind, w))
    return out


def jittered(k, rng, most):
    span = np.linalg.norm(k[0] - k[2])
    out = k.copy()
    for i in range(3):
        r = most * span * math.sqrt(rng.random())
        a = rng.random() * 2 * math.pi
        out[i] += [r * math.cos(a), r * math.sin(a)]
    return out


def random_wrong(mask_tips, k, rng):
    span = np.linalg.norm(k[0] - k[2])
    axis = (k[0] - k[2]) / span
    across = np.array([-axis[1], axis[0]])
    w = jittered(k, rng, 0.02)
    kind = rng.randrange(5)
    if kind == 0 and mask_tips:
        w[0] = mask_tips[rng.randrange(len(mask_tips))] + (jittered(k, rng, 0.02)[0] - k[0])
    elif kind <= 1:
        t = k[1] - k[2]
        foot = k[2] + axis * t.dot(axis)
        w[1] = foot + (foot - k[1]) + (jittered(k, rng, 0.03)[1] - k[1])
    elif kind == 2:
        d = rng.uniform(0.08, 0.16) * rng.choice([-1, 1])
        s = rng.uniform(-0.05, 0.05)
        w[2] = k[2] + axis * d * span + across * s * span
    elif kind == 3:
        d = rng.uniform(0.08, 0.14) * rng.choice([-1, 1])
        w[2] = k[2] + across * d * span
    else:
        d = rng.uniform(0.08, 0.2) * rng.choice([-1, 1])
        w[0] = k[0] + axis * d * span
    return w


class Net(nn.Module):
    def __init__(self):
        super().__init__()

        def block(i, o, stride=1):
            return [nn.Conv2d(i, o, 3, stride, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(1, 16, 2), nn.MaxPool2d(2),
            *block(16, 32), nn.MaxPool2d(2),
            *block(32, 64), nn.MaxPool2d(2),
            *block(64, 64), nn.MaxPool2d(2),
            *block(64, 128),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 8 * 6, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))

    def forward(self, x):
        return self.head(self.features(x)).squeeze(1)


def tensor(imgs):
    x = torch.from_numpy(np.stack(imgs).astype(np.float32) / 127.5 - 1.0)
    return x.unsqueeze(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/rsna")
    ap.add_argument("--masks", required=True)
    ap.add_argument("--answers", action="append", default=[])
    ap.add_argument("--labels", default="data/labels")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keypoints", default="keypoints.csv", help="training points, in --labels")
    ap.add_argument("--jitter", type=float, default=0.025, help="right registrations: each point moved up to this share of the span")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)

    def path(i):
        for d in ("raw", "extra"):
            p = os.path.join(args.data, d, f"{i}.png")
            if os.path.exists(p):
                return p
        raise FileNotFoundError(i)

    cache = {}

    def film(i):
        if i not in cache:
            raw = Image.open(path(i)).convert("L")
            mask = Image.open(os.path.join(args.masks, f"{i}.png")).convert("L")
            cache[i] = (normalised(raw, mask), mask)
        return cache[i]

    reviewed = read_points(os.path.join(args.labels, args.keypoints))
    held = set(ids_of(os.path.join(args.labels, "holdout-keypoints.txt")))
    train_ids = sorted(i for i in reviewed if i not in held)
    tune_ids = sorted(i for i in reviewed if i in held)
    print(f"{len(train_ids)} training films, {len(tune_ids)} tuning films", flush=True)
    tips = {}
    for i in train_ids:
        tips[i] = neighbour_tips(film(i)[1], reviewed[i])

    net = Net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = args.epochs * (2 * len(train_ids) // 32 + 1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    lossf = nn.BCEWithLogitsLoss()

    def photometric(a):
        g = rng.uniform(0.7, 1.4)
        a = 255.0 * (a / 255.0) ** g * rng.uniform(0.8, 1.1)
        return np.clip(a, 0, 255)

    t0 = time.time()
    for epoch in range(args.epochs):
        net.train()
        items = [(i, 1) for i in train_ids] + [(i, 0) for i in train_ids]
        rng.shuffle(items)
        total = 0.0
        for b in range(0, len(items), 32):
            imgs, ys = [], []
            for i, y in items[b : b + 32]:
                k = reviewed[i]
                kk = jittered(k, rng, args.jitter) if y else random_wrong(tips[i], k, rng)
                imgs.append(photometric(warp(film(i)[0], kk).astype(np.float32)))
                ys.append(float(y))
            x, yt = tensor(imgs), torch.tensor(ys)
            loss = lossf(net(x), yt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(ys)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {total / len(items):.4f} ({time.time() - t0:.0f} s)", flush=True)
    torch.save(net.state_dict(), os.path.join(args.out, "verifier.pt"))

    net.eval()

    @torch.no_grad()
    def scores(i, kps):
        return torch.sigmoid(net(tensor([warp(film(i)[0], k).astype(np.float32) for k in kps]))).tolist()

    def measure(ids, truth):
        rows = []
        for i in ids:
            k = truth[i]
            wrongs = deliberate_wrongs(film(i)[1], k)
            s = scores(i, [k] + [w for _, w in wrongs])
            rows.append({"id": i, "right": s[0], "wrong": [(kind, v) for (kind, _), v in zip(wrongs, s[1:])]})
        return rows

    tune = measure(tune_ids, reviewed)
    right = sorted(r["right"] for r in tune)
    # Threshold: refuse below it; chosen on the tuning films so that at most 2 % of
    # their right registrations are refused.
    threshold = right[2] * 0.999 if len(right) > 2 else 0.5
    print(f"threshold {threshold:.4f} (tuning films' right scores: lowest {right[:5]})", flush=True)

    def summary(rows):
        refused = sum(r["right"] < threshold for r in rows)
        per = [[0, 0] for _ in KINDS]
        for r in rows:
            for kind, v in r["wrong"]:
                per[kind][0] += v < threshold
                per[kind][1] += 1
        caught = sum(c for c, _ in per)
        n = sum(t for _, t in per)
        return {
            "films": len(rows),
            "right_refused": refused,
            "right_refused_pct": 100.0 * refused / max(len(rows), 1),
            "wrong_caught": caught,
            "wrong_total": n,
            "caught_pct": 100.0 * caught / max(n, 1),
            "by_kind": {KINDS[j]: f"{c}/{t}" for j, (c, t) in enumerate(per)},
            "refused_ids": [r["id"] for r in rows if r["right"] < threshold],
        }

    report = {"threshold": threshold, "tuning (holdout-keypoints.txt)": summary(tune), "tuning scores": tune}
    answers = {}
    for a in args.answers:
        answers.update(read_points(a))
    blind = os.path.join(args.labels, "blind")
    for name in ["keypoints.csv", "holdout.csv", "second-set.csv", "third-set.csv", "fourth-set.csv", "fifth-set.csv"]:
        truth = read_points(os.path.join(blind, name))
        ids = sorted(truth)
        rows_ = measure(ids, truth)
        s = summary(rows_)
        fe_scores = {}
        # The front end's own answers (before the check): right/wrong by 5 % of the span.
        fe = {"right_kept": 0, "right_refused": 0, "wrong_kept": 0, "wrong_caught": 0, "wrong_ids_kept": []}
        for i in ids:
            if i not in answers:
                continue
            k, a = truth[i], answers[i]
            span = np.linalg.norm(k[0] - k[2])
            ok = all(np.linalg.norm(a[j] - k[j]) <= 0.05 * span for j in range(3))
            v = scores(i, [a])[0]
            fe_scores[i] = [bool(ok), v]
            key = ("right_" if ok else "wrong_") + ("kept" if v >= threshold else ("refused" if ok else "caught"))
            fe[key] += 1
            if not ok and v >= threshold:
                fe["wrong_ids_kept"].append(i)
        s["front_end_answers"] = fe
        report[name] = s
        report[name + " scores"] = {"rows": rows_, "answers": fe_scores}
        print(name, json.dumps(s), flush=True)
    with open(os.path.join(args.out, "report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
