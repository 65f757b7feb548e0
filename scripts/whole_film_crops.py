#!/usr/bin/env python3
"""Whole-film crops: an age member that reads the film as it came, with no segmentation
or registration (docs/cv/whole-film.md, measured, not shipped).

    python3 scripts/whole_film_crops.py OUT FILM.png ...

Each film, contrast-stretched between its 1st and 99th percentile, letterboxed into
region A's box (375x500) of a 400x520 canvas. Writes <id>.png (the canvas), <id>_A.png
(region A: the whole film) and <id>_B.png, <id>_C.png (regions B and C of the canvas,
which `boneage evaluate --crops` needs present; a region-A member does not read them),
so that `scripts/train_cv.sh OUT RUNS lite0-A-reg` trains and evaluates on every
labelled film, those the front end refuses included. Needs numpy and pillow."""
import os, sys
import numpy as np
from PIL import Image
from concurrent.futures import ProcessPoolExecutor
if len(sys.argv) < 3:
    sys.exit(__doc__.split("\n\n")[1])
out = sys.argv[1]
files = sys.argv[2:]
os.makedirs(out, exist_ok=True)
CW, CH = 400, 520
AX, AY, AW, AH = 13, 10, 375, 500  # Canvas(400x520).region(A); B and C below likewise
def one(path):
    im = Image.open(path)
    a = np.asarray(im).astype(np.float32)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2)
    lo, hi = np.percentile(a, [1, 99])
    a = np.clip((a - lo) / max(hi - lo, 1e-6), 0, 1) * 255
    g = Image.fromarray(a.astype(np.uint8))
    s = min(AW / g.width, AH / g.height)
    w, h = max(1, round(g.width * s)), max(1, round(g.height * s))
    g = g.resize((w, h), Image.BILINEAR)
    box = Image.new("L", (AW, AH), 0)
    box.paste(g, ((AW - w) // 2, (AH - h) // 2))
    canvas = Image.new("L", (CW, CH), 0)
    canvas.paste(box, (AX, AY))
    id_ = os.path.splitext(os.path.basename(path))[0]
    canvas.save(os.path.join(out, id_ + ".png"))
    box.save(os.path.join(out, id_ + "_A.png"))
    canvas.crop((106, 319, 106 + 188, 319 + 188)).save(os.path.join(out, id_ + "_B.png"))
    canvas.crop((25, 230, 25 + 350, 230 + 150)).save(os.path.join(out, id_ + "_C.png"))
    return id_
with ProcessPoolExecutor(2) as ex:
    n = sum(1 for _ in ex.map(one, files, chunksize=16))
print(n, "films")
