#!/usr/bin/env python3
"""Refused films cropped to the hand, as a radiographer told "crop the film to the hand" would.

Usage: python3 scripts/crop_refused.py DIR/refused.csv OUT

DIR/refused.csv is what `boneage preprocess ../shared/data/rsna/raw/*.png
../shared/data/rsna/extra/*.png --out DIR` writes. Each refused film with blind key points
(data/labels/blind/*.csv, keypoints.csv taking precedence) is cropped to its hand: a box
around the three marks grown, in the hand's own frame (span L = fingertip to capitate),
by 0.10 L beyond the fingertip and the thumb tip, 0.45 L below the capitate (wrist and
forearm) and 0.45 L to the little finger's side, and reaching 0.75 L from the capitate
to the thumb's side (the ball of the thumb), clipped to the film. Writes OUT/<id>.png,
OUT/truth.csv (the marks moved into the crop) and OUT.csv (id, boneage, male), so that

    boneage evaluate-preprocess OUT --truth OUT/truth.csv

reads them as the front end would read the cropped films. Needs Pillow.
"""
import csv
import glob
import math
import os
import sys

from PIL import Image

DATA = ["../shared/data/rsna/raw", "../shared/data/rsna/extra"]
POINTS = ("fingertip_x", "fingertip_y", "thumb_x", "thumb_y", "capitate_x", "capitate_y")


def blind_marks():
    files = sorted(glob.glob("data/labels/blind/*.csv"))
    first = "data/labels/blind/keypoints.csv"
    files.remove(first)
    marks = {}
    for path in files + [first]:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    marks[row["id"]] = [float(row[k]) for k in POINTS]
                except (KeyError, ValueError):
                    pass
    return marks


def crop_box(m, width, height):
    fx, fy, tx, ty, cx, cy = m
    span = math.dist((fx, fy), (cx, cy))
    ux, uy = (fx - cx) / span, (fy - cy) / span  # towards the fingers
    px, py = -uy, ux
    if (tx - cx) * px + (ty - cy) * py < 0:  # towards the thumb
        px, py = -px, -py
    a, b = 0.10 * span, 0.45 * span
    corners = [
        (fx + a * ux, fy + a * uy),
        (tx + a * px, ty + a * py),
        (cx - b * ux, cy - b * uy),
        (fx - b * px, fy - b * py),
        (cx - b * px - b * ux, cy - b * py - b * uy),
        (cx + 0.75 * span * px, cy + 0.75 * span * py),
    ]
    x0 = max(0, int(min(p[0] for p in corners)))
    y0 = max(0, int(min(p[1] for p in corners)))
    x1 = min(width, int(max(p[0] for p in corners)) + 1)
    y1 = min(height, int(max(p[1] for p in corners)) + 1)
    return x0, y0, x1, y1


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    refused_csv, out = argv
    with open(refused_csv, newline="") as f:
        refused = {row["id"] for row in csv.DictReader(f)}
    labels = {}
    for d in DATA:
        with open(d + ".csv", newline="") as f:
            for row in csv.DictReader(f):
                labels[row["id"]] = (row["boneage"], row["male"])
    marks = blind_marks()
    os.makedirs(out, exist_ok=True)
    ids = sorted(refused & marks.keys())
    with open(os.path.join(out, "truth.csv"), "w", newline="") as t, open(
        out.rstrip("/") + ".csv", "w", newline=""
    ) as l:
        truth, lab = csv.writer(t), csv.writer(l)
        truth.writerow(["id", *POINTS])
        lab.writerow(["id", "boneage", "male"])
        for i in ids:
            film = next(p for p in (f"{d}/{i}.png" for d in DATA) if os.path.exists(p))
            image = Image.open(film)
            x0, y0, x1, y1 = crop_box(marks[i], image.width, image.height)
            image.crop((x0, y0, x1, y1)).save(os.path.join(out, f"{i}.png"))
            m = marks[i]
            truth.writerow([i] + [v - (x0 if k % 2 == 0 else y0) for k, v in enumerate(m)])
            lab.writerow([i, *labels[i]])
    print(f"{len(ids)} of {len(refused)} refused films had blind marks; cropped into {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
