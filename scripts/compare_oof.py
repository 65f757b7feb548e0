#!/usr/bin/env python3
"""Paired comparison of two recipes' out-of-fold predictions, fold by fold.

    python3 scripts/compare_oof.py OLD_DIR NEW_DIR RECIPE [RECIPE ...] [--folds 1 2 ...]

OLD_DIR and NEW_DIR hold the per-fold CSVs that `scripts/train_cv.sh` writes with OOF
set (RECIPE-fold-K.csv without test-time augmentation, RECIPE-fold-K-tta.csv with it).
For every fold, recipe and view found in both, prints a Markdown row: the films both
predicted, each recipe's MAE in months, and the mean paired difference (new − old) with
its 95 % interval (1.96 standard errors of the per-film differences). A single member on
one fold: a direction; `boneage evaluate --cv ... --predictions ...` pools the folds.
Standard library only.
"""

import argparse
import csv
import math
import os
import sys


def read(path):
    """{id: (true months, predicted months)} of the films the CSV predicted."""
    out = {}
    with open(path, newline="") as f:
        rows = csv.DictReader(f)
        members = [c for c in rows.fieldnames or [] if c.endswith("-mixed") or c[-2:] in ("-M", "-F")]
        if len(members) != 1:
            sys.exit(f"{path}: expected one member column, found {members or 'none'}")
        for r in rows:
            if r.get("refused") or not r[members[0]]:
                continue
            out[r["id"]] = (float(r["true_months"]), float(r[members[0]]))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old")
    p.add_argument("new")
    p.add_argument("recipes", nargs="+")
    p.add_argument("--folds", nargs="+", default=["1", "2", "3", "4", "5"])
    a = p.parse_args()
    print("| fold | recipe | TTA | films | old MAE | new MAE | new − old ± 95 % |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k in a.folds:
        for recipe in a.recipes:
            for tta in ("", "-tta"):
                name = f"{recipe}-fold-{k}{tta}.csv"
                paths = [os.path.join(d, name) for d in (a.old, a.new)]
                if not all(os.path.isfile(x) for x in paths):
                    continue
                old, new = (read(x) for x in paths)
                ids = sorted(set(old) & set(new))
                if len(ids) < 2:
                    continue
                eo = [abs(old[i][1] - old[i][0]) for i in ids]
                en = [abs(new[i][1] - new[i][0]) for i in ids]
                d = [b - c for b, c in zip(en, eo)]
                n = len(d)
                mean = sum(d) / n
                sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
                print(
                    f"| {k} | {recipe} | {'yes' if tta else 'no'} | {n} | {sum(eo) / n:.2f} "
                    f"| {sum(en) / n:.2f} | {mean:+.2f} ± {1.96 * sd / math.sqrt(n):.2f} |"
                )


if __name__ == "__main__":
    main()
