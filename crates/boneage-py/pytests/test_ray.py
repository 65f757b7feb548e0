"""Ray on a local cluster of 2 CPUs: the CLI's results for 200 phantom films, and a
run killed halfway then restarted has every film exactly once."""

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import write_phantoms

pytest.importorskip("ray")
import boneage.ray as bray  # noqa: E402

FILMS = 200


@pytest.fixture(scope="module")
def films(cli, tmp_path_factory):
    """200 phantom films, and the CLI's batch results on them (id -> row)."""
    d = write_phantoms(cli, tmp_path_factory.mktemp("ray-films"), FILMS, 5)
    subprocess.run([cli, "assess", str(d), "--out", str(d / "cli.csv")], capture_output=True)
    with open(d / "cli.csv") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert len(rows) == FILMS
    return d, rows


def run_driver(list_csv: Path, out: Path, wait: bool = True):
    """A driver in its own process group, on a local Ray of 2 CPUs, as a user would
    run it."""
    code = textwrap.dedent(
        f"""
        import ray, boneage.ray
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20)
        print(boneage.ray.assess_dataset({str(list_csv)!r}, {str(out)!r}, rows_per_file=16, batch_size=4, progress=False))
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    if wait:
        out_text, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-3000:]
        return out_text
    return p


def check_against_cli(out: Path, cli_rows: dict) -> None:
    table = bray.read_results(out).to_pylist()
    ids = [Path(r["path"]).stem for r in table]
    assert len(ids) == len(set(ids)) == FILMS, "every film exactly once"
    assert set(ids) == set(cli_rows)
    for r in table:
        c = cli_rows[Path(r["path"]).stem]
        if c["error"]:
            assert r["status"] == ("refused" if c["error"].startswith("refused") else "error"), (r, c)
            assert r["bone_age_months"] is None and r["reason"]
        else:
            assert r["status"] == "assessed", (r, c)
            # The CLI's CSV has 2 decimals.
            assert f"{r['bone_age_months']:.2f}" == c["bone_age_months"]
            assert f"{r['spread_months']:.2f}" == c["spread_months"]
            assert r["sex"] == c["sex"]


def test_ray_gives_the_cli_results_and_survives_a_kill(films, tmp_path):
    d, cli_rows = films
    out = tmp_path / "results"
    # Killed halfway: the whole process group (driver and local Ray) at once.
    p = run_driver(d / "list.csv", out, wait=False)
    deadline = time.time() + 600
    while len(list(out.glob("part-*.parquet"))) < 3:
        assert p.poll() is None, p.stderr.read()[-3000:]
        assert time.time() < deadline, "no results within 10 minutes"
        time.sleep(0.5)
    os.killpg(p.pid, signal.SIGKILL)
    p.wait()
    done = bray.read_results(out).num_rows
    assert 0 < done < FILMS
    # Restarted: skips what is there, finishes the rest.
    printed = run_driver(d / "list.csv", out)
    assert f"'skipped': {done}" in printed, printed
    check_against_cli(out, cli_rows)
    # A third run has nothing left to do.
    assert "'skipped': 200" in run_driver(d / "list.csv", out)
    check_against_cli(out, cli_rows)


def test_the_list_is_read_with_clear_errors_and_each_film_counted_once(tmp_path):
    """Without starting Ray: a list whose films are all in the output already."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-x.parquet.tmp").write_bytes(b"half a file from a killed run")
    rows = [{"path": str(tmp_path / n), "status": "assessed"} for n in ("a.png", "b.png")]
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows, schema=bray.SCHEMA), out / "part-1.parquet")
    listing = tmp_path / "list.csv"
    listing.write_text("path,sex\na.png,M\nb.png,F\na.png,M\n")
    counts = bray.assess_dataset(listing, out, progress=False)
    assert (counts["films"], counts["skipped"], counts["assessed"]) == (2, 2, 0)
    assert not list(out.glob("*.tmp")), "a part left half-written is removed"
    bad = tmp_path / "bad.csv"
    bad.write_text("file,sex\na.png,M\n")
    with pytest.raises(ValueError, match="no column 'path'"):
        bray.assess_dataset(bad, out)
    bad.write_text("path,sex,age\na.png,M,ten\n")
    with pytest.raises(ValueError, match="line 2: age 'ten'"):
        bray.assess_dataset(bad, out, age_column="age")
    with pytest.raises(FileNotFoundError, match="nowhere.csv"):
        bray.assess_dataset(tmp_path / "nowhere.csv", out)
