"""Bone age for an archive on Ray: a Ray Data pipeline with the assessor in a pool
of actors, written to Parquet, restartable.

    import ray, boneage.ray
    ray.init()                                # or ray.init(address="auto") on a cluster
    boneage.ray.assess_dataset("archive.csv", "results/", sex_column="sex")

The list is read on the driver, the films are assessed by ``workers`` actors (one
per core by default, each loading the models once), and the driver writes the rows
to ``out/part-*.parquet`` as they arrive, each file whole or not at all (a
temporary name, then a rename). A rerun with the same ``out`` skips every film
already there, so a run that was killed finishes with each film exactly once. One
driver at a time per ``out``.

On a cluster the films and ``out`` must be on storage every node sees under the
same path (NFS, a mounted bucket); the models are in the package, which every node
needs installed.
"""

from __future__ import annotations

import csv
import json
import os
import time
import uuid
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["assess_dataset", "read_results", "SCHEMA"]

#: One row per film: the numbers of ``boneage assess --json`` in columns, the whole
#: document in ``result_json``; ``status`` is "assessed", "refused" or "error", with
#: the reason in ``reason``.
SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
        ("sex", pa.string()),
        ("bone_age_months", pa.float64()),
        ("interval_low_months", pa.float64()),
        ("interval_high_months", pa.float64()),
        ("spread_months", pa.float64()),
        ("region_a_months", pa.float64()),
        ("region_b_months", pa.float64()),
        ("region_c_months", pa.float64()),
        ("region_d_months", pa.float64()),
        ("chronological_age_months", pa.float64()),
        ("sds", pa.float64()),
        ("verdict", pa.string()),
        ("seconds", pa.float64()),
        ("result_json", pa.string()),
    ]
)

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".dcm", ".dicom"}


def _films(source, path_column: str, sex_column: Optional[str], age_column: Optional[str], sex: Optional[str]):
    """(path, sex, age) for every film of a CSV, a folder or a list of paths."""
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if p.is_dir():
            paths = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
            if not paths:
                raise ValueError(f"{p}: no radiographs (.png, .jpg, .dcm) in this folder")
            return [(f, sex, None) for f in paths]
        if p.suffix.lower() == ".csv":
            return _from_csv(p, path_column, sex_column, age_column, sex)
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
        raise ValueError(f"{p}: give a folder of films, a CSV list or a list of paths")
    return [(os.fspath(f), sex, None) for f in source]


def _from_csv(p: Path, path_column, sex_column, age_column, sex):
    with open(p, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for c in [path_column] + [c for c in (sex_column, age_column) if c]:
            if c not in columns:
                raise ValueError(f"{p}: no column {c!r} (the columns are {', '.join(columns)})")
        films = []
        for line, row in enumerate(reader, start=2):
            path = row[path_column].strip()
            if not path:
                raise ValueError(f"{p}, line {line}: empty {path_column!r}")
            if not os.path.isabs(path):
                path = str(p.parent / path)
            age = None
            if age_column and row[age_column].strip():
                try:
                    age = float(row[age_column])
                except ValueError:
                    raise ValueError(f"{p}, line {line}: {age_column} {row[age_column]!r} is not a number of months") from None
            films.append((path, (row[sex_column].strip() or sex) if sex_column else sex, age))
    return films


def read_results(out: Union[str, os.PathLike]) -> pa.Table:
    """Every row written to ``out`` so far (the complete part files; a part being
    written when a run was killed is only a temporary file and is left out)."""
    parts = sorted(Path(out).glob("part-*.parquet"))
    if not parts:
        return SCHEMA.empty_table()
    return pa.concat_tables(pq.read_table(f, schema=SCHEMA) for f in parts)


class _AssessBatch:
    """A Ray actor: loads the models once, assesses batches of films."""

    def __init__(self, models, threads):
        # The native code's thread pool is sized when first used: one core per actor.
        os.environ["RAYON_NUM_THREADS"] = str(threads)
        import boneage

        self.assessor = boneage.Assessor(models)

    def __call__(self, batch):
        import boneage

        rows = []
        for film in batch.to_pylist():
            path, sex, age = film["path"], film["sex"] or None, film["age"]
            t = time.perf_counter()
            row = {"path": str(path), "sex": sex}
            try:
                r = self.assessor.assess(str(path), sex, age)
            except boneage.Refused as e:
                row.update(status="refused", reason=str(e))
            except (ValueError, OSError, TypeError) as e:
                row.update(status="error", reason=str(e))
            else:
                chrono = r.get("chronological") or {}
                interval = r.get("interval") or {}
                regions = r["regions"]
                row.update(
                    status="assessed",
                    reason=None,
                    sex=r["sex"],
                    bone_age_months=r["bone_age_months"],
                    interval_low_months=interval.get("low_months"),
                    interval_high_months=interval.get("high_months"),
                    spread_months=r["spread_months"],
                    region_a_months=regions.get("A"),
                    region_b_months=regions.get("B"),
                    region_c_months=regions.get("C"),
                    region_d_months=regions.get("D"),
                    chronological_age_months=chrono.get("chronological_months"),
                    sds=chrono.get("sds"),
                    verdict=chrono.get("verdict"),
                    result_json=json.dumps(r),
                )
            row["seconds"] = time.perf_counter() - t
            rows.append(row)
        return pa.Table.from_pylist(rows, schema=SCHEMA)


def _write_part(out: Path, tables: List[pa.Table]) -> None:
    table = pa.concat_tables(tables)
    name = f"part-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.parquet"
    tmp = out / (name + ".tmp")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out / name)


def assess_dataset(
    source: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    out: Union[str, os.PathLike],
    *,
    path_column: str = "path",
    sex_column: Optional[str] = "sex",
    age_column: Optional[str] = None,
    sex: Optional[str] = None,
    models: Union[str, os.PathLike, None] = None,
    workers: Optional[int] = None,
    threads_per_worker: int = 1,
    batch_size: int = 8,
    rows_per_file: int = 256,
    progress: bool = True,
) -> dict:
    """Assesses every film of ``source`` with a pool of Ray actors and writes one
    Parquet row per film (refusals and errors included) under ``out``.

    ``source``: a CSV with a ``path_column`` (paths relative to the CSV's folder or
    absolute), ``sex_column`` (M/F; None: no such column) and optionally
    ``age_column`` (months); a folder of films; or a list of paths. ``sex``: for
    films whose list gives none (None: the DICOM header's). ``workers``: actors
    (default: the cluster's CPUs divided by ``threads_per_worker``).
    ``rows_per_file``: rows the driver gathers before writing a part (a killed run
    redoes at most this many films).

    Connects to Ray as it is (``ray.init()`` first for a cluster; a local one is
    started otherwise). Returns counts: films, skipped (already in ``out``),
    assessed, refused, error, seconds.
    """
    import ray

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("part-*.parquet.tmp"):
        stale.unlink()
    films = _films(source, path_column, sex_column, age_column, sex)
    done = set(read_results(out).column("path").to_pylist())
    todo, listed = [], set()
    for f in films:
        # A film listed twice is assessed once.
        if f[0] not in done and f[0] not in listed:
            todo.append(f)
        listed.add(f[0])
    films = listed
    counts = {"films": len(films), "skipped": len(films) - len(todo), "assessed": 0, "refused": 0, "error": 0}
    start = time.perf_counter()
    if todo:
        if not ray.is_initialized():
            ray.init(include_dashboard=False, log_to_driver=False)
        # Ray Data's own progress lines with ours, or neither.
        ray.data.DataContext.get_current().enable_progress_bars = progress
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)) // threads_per_worker)
        ds = ray.data.from_items([{"path": p, "sex": s or "", "age": a} for p, s, a in todo])
        ds = ds.map_batches(
            _AssessBatch,
            fn_constructor_kwargs={"models": None if models is None else os.fspath(models), "threads": threads_per_worker},
            batch_size=batch_size,
            batch_format="pyarrow",
            num_cpus=threads_per_worker,
            concurrency=workers,
        )
        pending, rows = [], 0
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            batch = batch.cast(SCHEMA)
            pending.append(batch)
            rows += batch.num_rows
            for s in batch.column("status").to_pylist():
                counts[s] += 1
            if progress:
                done_now = counts["assessed"] + counts["refused"] + counts["error"]
                rate = done_now / max(time.perf_counter() - start, 1e-9)
                print(f"\r{done_now}/{len(todo)} films, {rate:.2f}/s", end="", flush=True)
            if rows >= rows_per_file:
                _write_part(out, pending)
                pending, rows = [], 0
        if pending:
            _write_part(out, pending)
        if progress:
            print()
    counts["seconds"] = time.perf_counter() - start
    return counts
