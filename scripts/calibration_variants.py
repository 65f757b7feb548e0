#!/usr/bin/env python3
"""Other ways of fitting the ensemble, on the shipped members' out-of-fold predictions.

    python3 scripts/calibration_variants.py

A NumPy copy of `boneage_core::calibration::cross_fit` (per sex: a ridge regression of
the true age on the members, shrunk towards their plain mean, then the least stretch
towards the inverse regression that leaves no true stage of 16 or more films a mean
signed error beyond ± 5 months), run on the four shipped members' stored predictions
(A400 and B800 in 5 views, A800 and C800 once; the films every member predicts), each
fold of `data/labels/folds` corrected by a fit on the other four. Its first line must
match `boneage evaluate --cv` (8.13 months, M 7.86, F 8.44); the others replace the
stretch by another correction of the ridge's fitted age, fitted the same cross-fitted
way: a polynomial of degree 2 or 3, isotonic regression, or least absolute deviations
instead of least squares. Each line: MAE ± 95 %, by sex, and the largest mean signed
error of a true stage with ≥ 20 films (the issue holds every such stage within ± 6).
Needs numpy.
"""

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from swap_member import column  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CV = os.path.join(ROOT, "docs", "cv", "canvas-800")
FOLDS = range(1, 6)
# Lower bounds of each stage after the first, months (boneage_core::stages).
BOUNDS = {"F": [10, 24, 84, 156, 180], "M": [14, 36, 108, 168, 192]}


def stage(age, sex):
    return np.searchsorted(np.array(BOUNDS[sex]), age, side="right")


def ridge(x, y, strength=0.05):
    """calibration::fit_sex's weights: centred least squares pulled towards 1/m each."""
    m = x.shape[1]
    xc = x - x.mean(0)
    a = xc.T @ xc
    lam = strength * np.trace(a) / m
    w = np.linalg.solve(a + lam * np.eye(m), xc.T @ (y - y.mean()) + lam / m)
    return y.mean() - w @ x.mean(0), w


def stretch(fitted, y, sex):
    """calibration::Stretch::choose: (offset, scale) applied to fitted ages."""
    d = np.cov(fitted, y, bias=True)[0, 1] / y.var()
    if not d > 0.1:
        return 0.0, 1.0
    c = fitted.mean() - d * y.mean()
    st = stage(y, sex)
    for i in range(101):
        lam = i / 100
        off, scale = -lam * c / d, 1 - lam + lam / d
        if all((st == k).sum() < 16 or abs((off + scale * fitted[st == k] - y[st == k]).mean()) <= 5
               for k in range(6)):
            return off, scale
    return -c / d, 1 / d


def isotonic(x, y):
    """Pool-adjacent-violators: block centres and means, for np.interp."""
    order = np.argsort(x)
    blocks = []
    for xi, yi in zip(x[order], y[order]):
        blocks.append([yi, 1.0, xi, xi])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            b = blocks.pop()
            a = blocks.pop()
            n = a[1] + b[1]
            blocks.append([(a[0] * a[1] + b[0] * b[1]) / n, n, a[2], b[3]])
    return np.array([(b[2] + b[3]) / 2 for b in blocks]), np.array([b[0] for b in blocks])


def lad(x, y):
    """Least absolute deviations with an intercept (iteratively reweighted)."""
    a = np.c_[np.ones(len(y)), x]
    w = np.ones(len(y))
    for _ in range(50):
        beta = np.linalg.lstsq(a * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
        w = 1 / np.maximum(np.abs(y - a @ beta), 1.0)
    return beta


def method(name):
    """A function (train x, train y, sex, test x) → test predictions."""
    def shipped(x, y, sex, xt, stretched=True):
        b, w = ridge(x, y)
        off, scale = stretch(b + x @ w, y, sex) if stretched else (0.0, 1.0)
        return off + scale * (b + xt @ w)

    def poly(deg, stretched):
        def f(x, y, sex, xt):
            b, w = ridge(x, y)
            coef = np.polyfit(b + x @ w, y, deg)
            off, scale = stretch(np.polyval(coef, b + x @ w), y, sex) if stretched else (0.0, 1.0)
            return off + scale * np.polyval(coef, b + xt @ w)
        return f

    def iso(x, y, sex, xt):
        b, w = ridge(x, y)
        cx, cy = isotonic(b + x @ w, y)
        return np.interp(b + xt @ w, cx, cy)

    def least_abs(x, y, sex, xt):
        beta = lad(x, y)
        return np.c_[np.ones(len(xt)), xt] @ beta

    return {
        "ridge, stretched (shipped)": shipped,
        "ridge, not stretched": lambda x, y, s, xt: shipped(x, y, s, xt, stretched=False),
        "ridge, then a polynomial of degree 2": poly(2, False),
        "ridge, then degree 2, stretched": poly(2, True),
        "ridge, then degree 3, stretched": poly(3, True),
        "ridge, then isotonic": iso,
        "least absolute deviations": least_abs,
    }[name]


def main():
    oof = os.path.join(CV, "oof")
    cols = [
        column(os.path.join(CV, "pooled", "columns", "A400.csv")),
        column(os.path.join(CV, "pooled", "columns", "A800.csv")),
        column(*(os.path.join(oof, f"lite0-B-reg-fold-{k}-tta.csv") for k in FOLDS)),
        column(*(os.path.join(oof, f"lite0-C-reg-fold-{k}.csv") for k in FOLDS)),
    ]
    fold = {}
    for k in FOLDS:
        with open(os.path.join(ROOT, "data", "labels", "folds", f"fold-{k}.txt")) as f:
            fold.update({line.strip(): k for line in f if line.strip() and not line.startswith("#")})
    ids = sorted(set.intersection(*(set(c) for c in cols)))
    y = np.array([cols[0][i][1] for i in ids])
    sex = np.array([cols[0][i][0] for i in ids])
    folds = np.array([fold[i] for i in ids])
    x = np.array([[c[i][2] for c in cols] for i in ids])
    print(f"{len(ids)} films, members A400 (5 views), A800, B800 (5 views), C800")
    for name in ["ridge, stretched (shipped)", "ridge, not stretched",
                 "ridge, then a polynomial of degree 2", "ridge, then degree 2, stretched",
                 "ridge, then degree 3, stretched", "ridge, then isotonic",
                 "least absolute deviations"]:
        f = method(name)
        pred = np.zeros(len(y))
        for k in FOLDS:
            for s in "MF":
                tr, te = (folds != k) & (sex == s), (folds == k) & (sex == s)
                pred[te] = f(x[tr], y[tr], s, x[te])
        e = pred - y
        half = 1.96 * np.abs(e).std(ddof=1) / np.sqrt(len(e))
        worst = max((e[(sex == s)][stage(y[sex == s], s) == k].mean()
                     for s in "MF" for k in range(6)
                     if (stage(y[sex == s], s) == k).sum() >= 20), key=abs)
        print(f"{name:40s} {np.abs(e).mean():.2f} ± {half:.2f}  M {np.abs(e[sex == 'M']).mean():.2f}"
              f"  F {np.abs(e[sex == 'F']).mean():.2f}  worst stage bias {worst:+.1f}")


if __name__ == "__main__":
    main()
