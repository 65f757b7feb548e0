"""Fixtures of the Python package's tests: the CLI binary to compare with, phantom
films made by it, and one real film when ../shared/data/rsna is there."""

import csv
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def cli() -> str:
    """The `boneage` binary: $BONEAGE_BIN, else the debug build in the target dir."""
    path = os.environ.get("BONEAGE_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "boneage"
    )
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path}: no boneage binary (cargo build, or set BONEAGE_BIN)")
    return path


def write_phantoms(cli: str, out: Path, n: int, seed: int) -> Path:
    """n phantom films in `out` with labels.csv, and list.csv (path, sex, age) for
    the Python side."""
    subprocess.run(
        [cli, "phantom", "--n", str(n), "--seed", str(seed), "--size", "312x384", "--out", str(out)],
        check=True,
        capture_output=True,
    )
    with open(out / "labels.csv") as f, open(out / "list.csv", "w", newline="") as g:
        w = csv.writer(g)
        w.writerow(["path", "sex", "age"])
        for row in csv.DictReader(f):
            w.writerow([f"{row['id']}.png", "M" if row["male"] == "true" else "F", ""])
    return out


@pytest.fixture(scope="session")
def phantoms(cli, tmp_path_factory) -> Path:
    return write_phantoms(cli, tmp_path_factory.mktemp("phantoms"), 6, 11)


@pytest.fixture(scope="session")
def real_film() -> Path:
    p = ROOT.parent / "shared" / "data" / "rsna" / "raw" / "1377.png"
    if not p.is_file():
        pytest.skip(f"{p} is absent (the RSNA films live in ../shared/data/rsna; see its README)")
    return p


@pytest.fixture(scope="session")
def assessor():
    import boneage

    return boneage.Assessor()


def cli_json(cli: str, path: Path, sex: str, age=None) -> dict:
    """`boneage assess PATH --json`, or None when the film is refused (exit 3)."""
    import json

    args = [cli, "assess", str(path), "--sex", sex, "--json"]
    if age is not None:
        args += ["--age", str(age)]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode == 3:
        return None
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)
