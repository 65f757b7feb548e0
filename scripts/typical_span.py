#!/usr/bin/env python3
"""The development films' median hand span by bone age: `boneage::resolution::TYPICAL_SPAN_PX`.

Usage: python3 scripts/typical_span.py DIR/keypoints.csv [LABELS.csv ...]

DIR/keypoints.csv is what `boneage preprocess ../shared/data/rsna/raw/*.png
../shared/data/rsna/extra/*.png --out DIR` writes (the answered films); the labels
(default: ../shared/data/rsna/raw.csv and extra.csv) give each film's bone age. The span
is the distance from the middle fingertip to the capitate in the film's pixels; the
table is its median in two-year bands of bone age, keyed by each band's middle.
Standard library only.
"""
import csv
import math
import statistics
import sys


def main(argv):
    if not argv:
        sys.exit(__doc__)
    labels = argv[1:] or ["../shared/data/rsna/raw.csv", "../shared/data/rsna/extra.csv"]
    age = {}
    for path in labels:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                age[row["id"]] = float(row["boneage"])
    bands = {}
    with open(argv[0], newline="") as f:
        for row in csv.DictReader(f):
            if row["id"] not in age:
                continue
            p = lambda k: (float(row[k + "_x"]), float(row[k + "_y"]))
            span = math.dist(p("fingertip"), p("capitate"))
            bands.setdefault(int(age[row["id"]] // 24), []).append(span)
    n = sum(len(v) for v in bands.values())
    print(f"// {n} films; (months, pixels), the median of each two-year band")
    for b in sorted(bands):
        v = bands[b]
        print(f"    ({24 * b + 12:.1f}, {statistics.median(v):.0f}.0), // {len(v)} films")


if __name__ == "__main__":
    main(sys.argv[1:])
