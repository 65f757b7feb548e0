#!/usr/bin/env python3
"""Films per second: the CLI batch, the Python package in a loop, and Ray with 1 and
2 workers, in one run, each against the CLI.

    python bench/python_batch.py BONEAGE_BINARY [--films 40] [--dir FILMS]

Run it with the Python that has the `boneage` wheel (and ray[data]) installed, and
the release binary of the same commit. FILMS: a folder of films with labels.csv
(default: FILMS phantom films, seed 5, made by the binary). Each way assesses every
film once, models loaded once:

  1. cli:       `boneage assess DIR --out CSV` (one process; each film uses every
                core inside the network layers);
  2. python:    `boneage.Assessor()` then `assess(path, sex)` in a loop;
  3. ray 1×2:   `boneage.ray.assess_dataset` with 1 actor of 2 threads;
  4. ray 2×1:   2 actors of 1 thread each (films side by side).

Model loading is timed apart and left out of films/s (the CLI's is measured from a
one-film run and subtracted); Ray's start (`ray.init`) is printed apart too.
Timings vary ±25 % between runs on this machine: compare the ratios of one run.
"""
import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--films", type=int, default=40)
    ap.add_argument("--dir", type=Path)
    a = ap.parse_args()

    import boneage
    import boneage.ray
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="boneage-pybench-"))
    films = a.dir
    if films is None:
        films = tmp / "films"
        subprocess.run([a.binary, "phantom", "--n", str(a.films), "--seed", "5", "--out", str(films)],
                       check=True, capture_output=True)
    sexes = {}
    with open(films / "labels.csv") as f:
        for r in csv.DictReader(f):
            sexes[r["id"]] = "M" if r["male"].lower() in ("true", "1") else "F"
    paths = sorted(p for p in films.iterdir() if p.suffix == ".png" and p.stem in sexes)
    n = len(paths)
    with open(tmp / "list.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "sex"])
        for p in paths:
            w.writerow([str(p), sexes[p.stem]])
    print(f"{n} films in {films}; {os.cpu_count()} CPUs; boneage {boneage.__version__}")

    rows = []

    # 1. The CLI: a one-film run gives the loading time to take out.
    one = tmp / "one"
    one.mkdir()
    shutil.copy(paths[0], one)
    shutil.copy(films / "labels.csv", one)
    t = time.perf_counter()
    subprocess.run([a.binary, "assess", str(one), "--out", str(tmp / "one.csv")], capture_output=True)
    cli_one = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([a.binary, "assess", str(films), "--out", str(tmp / "cli.csv")], capture_output=True)
    cli_all = time.perf_counter() - t
    per_film = (cli_all - cli_one) / (n - 1)
    cli_load = cli_one - per_film
    rows.append(("cli", n / (n * per_film), cli_load, ""))

    # 2. The package in a loop.
    t = time.perf_counter()
    assessor = boneage.Assessor()
    load = time.perf_counter() - t
    t = time.perf_counter()
    for p in paths:
        try:
            assessor.assess(p, sexes[p.stem])
        except boneage.Refused:
            pass
    rows.append(("python loop", n / (time.perf_counter() - t), load, ""))
    del assessor

    # 3, 4. Ray: the actors load the models when the pipeline starts, so their
    # loading is inside the time (printed as such).
    t = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray_init = time.perf_counter() - t
    for name, workers, threads in (("ray 1 worker × 2 threads", 1, 2), ("ray 2 workers × 1 thread", 2, 1)):
        out = tmp / f"ray-{workers}"
        c = boneage.ray.assess_dataset(tmp / "list.csv", out, workers=workers,
                                       threads_per_worker=threads, progress=False)
        assert c["assessed"] + c["refused"] + c["error"] == n, c
        rows.append((name, n / c["seconds"], None, f"models loaded inside; ray.init {ray_init:.1f} s apart"))
    ray.shutdown()

    ref = rows[0][1]
    print(f"{'way':28} {'films/s':>8} {'vs CLI':>7} {'load s':>7}")
    for name, rate, load, note in rows:
        load_s = f"{load:7.2f}" if load is not None else "      –"
        print(f"{name:28} {rate:8.2f} {rate / ref:7.2f} {load_s}  {note}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    sys.exit(main())
