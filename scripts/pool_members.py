#!/usr/bin/env python3
"""All five folds: new members beside the shipped four, fitted the shipped way.

    python3 scripts/pool_members.py [NAME=PATTERN ...] [--set A+B+...] ...

NAME=PATTERN adds a member whose out-of-fold predictions are in the files PATTERN gives
with K replaced by 1 … 5 (as `scripts/train_cv.sh` writes them with OOF set, e.g.
`D=docs/cv/fingers/oof/lite0-A-reg-fold-K-tta.csv`). The shipped four are always there:
A400 and A800 (docs/cv/canvas-800/pooled/columns/), B800 in 5 views and C800 once
(docs/cv/canvas-800/oof/). Each --set (members joined by +) is fitted with
`scripts/calibration_variants.py`'s copy of the shipped fit (per sex: the ridge shrunk
towards the plain mean, stretched), each fold of `data/labels/folds` corrected by a fit on
the other four, on the films every member given predicts; without --set, the shipped four
with each new member added, and in the place of each shipped one. Prints each member
alone, then each set's MAE and its paired difference against the shipped four on the same
films (mean ± 1.96 standard errors), all in months. Needs numpy.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from calibration_variants import CV, FOLDS, ROOT, method  # noqa: E402
from swap_member import column  # noqa: E402

SHIPPED = ["A400", "A800", "B800", "C800"]


def main():
    args = sys.argv[1:]
    if any(a in ("-h", "--help") for a in args):
        sys.exit(__doc__.split("\n\n")[1])
    oof = os.path.join(CV, "oof")
    cols = {
        "A400": column(os.path.join(CV, "pooled", "columns", "A400.csv")),
        "A800": column(os.path.join(CV, "pooled", "columns", "A800.csv")),
        "B800": column(*(os.path.join(oof, f"lite0-B-reg-fold-{k}-tta.csv") for k in FOLDS)),
        "C800": column(*(os.path.join(oof, f"lite0-C-reg-fold-{k}.csv") for k in FOLDS)),
    }
    sets = []
    it = iter(args)
    for a in it:
        if a == "--set":
            sets.append(next(it, "").split("+"))
        elif "=" in a:
            name, pattern = a.split("=", 1)
            if "K" not in os.path.basename(pattern):
                sys.exit(f"{pattern}: the file name needs a K for the fold's number")
            cols[name] = column(*(pattern.replace("K", str(k)) for k in FOLDS))
        else:
            sys.exit(f"{a}: give NAME=PATTERN or --set A+B+...\n\n" + __doc__.split("\n\n")[1])
    new = [n for n in cols if n not in SHIPPED]
    if not sets:
        sets = [SHIPPED + [n] for n in new]
        sets += [[m if m != s else n for m in SHIPPED] for n in new for s in SHIPPED]
    for s in sets:
        for m in s:
            if m not in cols:
                sys.exit(f"--set: no member {m} (have {', '.join(cols)})")
    used = sorted({m for s in sets for m in s} | set(SHIPPED))
    fold = {}
    for k in FOLDS:
        with open(os.path.join(ROOT, "data", "labels", "folds", f"fold-{k}.txt")) as f:
            fold.update({ln.strip(): k for ln in f if ln.strip() and not ln.startswith("#")})
    ids = sorted(set.intersection(*(set(cols[m]) for m in used)))
    y = np.array([cols["A400"][i][1] for i in ids])
    sex = np.array([cols["A400"][i][0] for i in ids])
    folds = np.array([fold[i] for i in ids])
    fit = method("ridge, stretched (shipped)")

    def errors(members):
        x = np.array([[cols[m][i][2] for m in members] for i in ids])
        pred = np.zeros(len(y))
        for k in FOLDS:
            for s in "MF":
                tr, te = (folds != k) & (sex == s), (folds == k) & (sex == s)
                pred[te] = fit(x[tr], y[tr], s, x[te])
        return np.abs(pred - y)

    print(f"{len(ids)} films predicted by every member ({', '.join(used)})")
    for m in used:
        print(f"  {m:10s} alone {np.mean([abs(cols[m][i][2] - cols[m][i][1]) for i in ids]):.2f}")
    base = errors(SHIPPED)
    half = 1.96 * base.std(ddof=1) / np.sqrt(len(base))
    print(f"  {'+'.join(SHIPPED):32s} {base.mean():.2f} ± {half:.2f} (shipped)")
    for s in sets:
        e = errors(s)
        d = e - base
        print(f"  {'+'.join(s):32s} {e.mean():.2f}   paired {d.mean():+.2f} ± "
              f"{1.96 * d.std(ddof=1) / np.sqrt(len(d)):.2f}")


if __name__ == "__main__":
    main()
