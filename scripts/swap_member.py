#!/usr/bin/env python3
"""One fold: a new member in place of one of the shipped ensemble's, alone and pooled.

    python3 scripts/swap_member.py MEMBER NEW.csv NEW-tta.csv FOLD

MEMBER is the shipped member the new one would replace: A400 (region A, 400×520 canvas,
5 views), A800 (800×1040, once), B800 (5 views) or C800 (once). Their out-of-fold
predictions are the stored ones (docs/cv/canvas-800/pooled/columns/A400.csv and
A800.csv, docs/cv/canvas-800/oof/lite0-[BC]-reg-fold-FOLD[-tta].csv); NEW.csv and
NEW-tta.csv are the new recipe's predictions on the fold, read once and in 5 views, as
`scripts/train_cv.sh` writes them with OOF set.

On the fold's films that every column predicts, prints each alone (MAE, months), the new
member's paired difference against MEMBER (mean ± 1.96 standard errors), and the MAE of
the four-member pool with MEMBER, with the new member (once, 5 views) in its place, and
with it as a fifth: least squares per sex with an intercept, cross-fitted by a random
five-way split inside the fold, the mean of 100 draws (the same splits for every row). A
quick reading on one fold: `boneage evaluate --cv data/labels/folds` pools all five,
with the ridge, the stretch and the folds' own split. Needs numpy.
"""

import csv
import os
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CV = os.path.join(ROOT, "docs", "cv", "canvas-800")


def column(*paths):
    """id → (sex, true months, the member's prediction) of the films predicted in one
    member's CSVs (one file, or one per fold). scripts/calibration_variants.py uses it too."""
    out = {}
    for path in paths:
        with open(path) as f:
            for r in csv.DictReader(f):
                if r["refused"]:
                    continue
                name = next(c for c in r if c.endswith("-mixed") or c.endswith("-mixed-2"))
                out[r["id"]] = (r["sex"], float(r["true_months"]), float(r[name]))
    return out


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__.split("\n\n")[1])
    member, new, new_tta, fold = sys.argv[1:]
    cols = {
        "A400": column(os.path.join(CV, "pooled", "columns", "A400.csv")),
        "A800": column(os.path.join(CV, "pooled", "columns", "A800.csv")),
        "B800": column(os.path.join(CV, "oof", f"lite0-B-reg-fold-{fold}-tta.csv")),
        "C800": column(os.path.join(CV, "oof", f"lite0-C-reg-fold-{fold}.csv")),
    }
    if member not in cols:
        sys.exit(f"{member}: give one of {', '.join(cols)}")
    shipped = list(cols)
    cols["new"], cols["new-tta"] = column(new), column(new_tta)
    ids = sorted(set.intersection(*(set(c) for c in cols.values())))
    if len(ids) < 50:
        sys.exit(f"only {len(ids)} films in common: is {new} of fold {fold}?")
    y = np.array([cols["new"][i][1] for i in ids])
    sex = np.array([cols["new"][i][0] for i in ids])
    pred = {n: np.array([c[i][2] for i in ids]) for n, c in cols.items()}
    print(f"{len(ids)} films of fold {fold}")
    for n in [member, "new", "new-tta"]:
        print(f"{n} alone: {np.abs(pred[n] - y).mean():.2f}")
    for n in ["new", "new-tta"]:
        d = np.abs(pred[n] - y) - np.abs(pred[member] - y)
        half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
        print(f"paired {n} − {member}: {d.mean():+.2f} ± {half:.2f}")
    rng = np.random.default_rng(0)
    splits = [rng.integers(0, 5, len(y)) for _ in range(100)]

    def pooled(names):
        x = np.stack([pred[n] for n in names], axis=1)
        maes = []
        for g in splits:
            fitted = np.zeros(len(y))
            for k in range(5):
                for s in "MF":
                    tr, te = (g != k) & (sex == s), (g == k) & (sex == s)
                    w = np.linalg.lstsq(np.c_[np.ones(tr.sum()), x[tr]], y[tr], rcond=None)[0]
                    fitted[te] = np.c_[np.ones(te.sum()), x[te]] @ w
            maes.append(np.abs(fitted - y).mean())
        return np.mean(maes)

    for names in [
        shipped,
        [n if n != member else "new" for n in shipped],
        [n if n != member else "new-tta" for n in shipped],
        shipped + ["new-tta"],
    ]:
        print(f"pool {' + '.join(names)}: {pooled(names):.2f}")


if __name__ == "__main__":
    main()
