"""`import boneage`: the same numbers as the CLI, every input form, clear errors,
and the GIL released while it computes."""

import threading
import time

import numpy as np
import pytest
from PIL import Image

import boneage
from conftest import cli_json

# The fields that depend on the call, not on the film.
CALL_FIELDS = ("file", "seconds", "sex_from")


def same(a: dict, b: dict) -> None:
    a = {k: v for k, v in a.items() if k not in CALL_FIELDS}
    b = {k: v for k, v in b.items() if k not in CALL_FIELDS}
    assert a == b


def test_a_path_gives_the_numbers_of_the_cli(cli, assessor, phantoms, real_film):
    films = [(real_film, "F", 170.0)] + [
        (phantoms / f"ph{i:05}.png", "M" if i % 2 else "F", None) for i in (1, 2, 3)
    ]
    assessed = 0
    for path, sex, age in films:
        expected = cli_json(cli, path, sex, age)
        if expected is None:
            with pytest.raises(boneage.Refused):
                assessor.assess(path, sex, age)
            continue
        got = assessor.assess(str(path), sex, age)
        same(got, expected)
        assert got["file"] == str(path) and got["sex_from"] == "sex="
        assessed += 1
    assert assessed >= 1
    # The real film: the pinned answer of the shipped models (the CLI's test pins it too).
    got = assessor.assess(real_film, "F", age_months=170)
    assert abs(got["bone_age_months"] - 187.614) < 0.01, got["bone_age_months"]
    assert got["chronological"]["chronological_months"] == 170.0


def test_bytes_and_every_numpy_dtype_give_the_same_answer(assessor, real_film):
    reference = assessor.assess(real_film, "F")
    same(assessor.assess(real_film.read_bytes(), "F"), reference)
    grey = np.asarray(Image.open(real_film))
    assert grey.dtype == np.uint8 and grey.ndim == 2
    # Exactly the PNG's pixels: 8 bits, 16 bits (v·257 / 65535 = v / 255), float32 in [0, 1].
    for array in (grey, grey.astype(np.uint16) * 257, grey.astype(np.float32) / np.float32(255)):
        got = assessor.assess(array, "F", name="scan")
        same(got, reference)
        assert got["file"] == "scan"
    # Not C-contiguous, or big-endian: the same samples.
    same(assessor.assess(np.asfortranarray(grey), "F"), reference)
    same(assessor.assess((grey.astype(np.uint16) * 257).astype(">u2"), "F"), reference)
    # float64: the same film, rounded once more on the way to 32 bits.
    got = assessor.assess(grey / 255.0, "F")
    assert abs(got["bone_age_months"] - reference["bone_age_months"]) < 0.01
    # Floats outside [0, 1] are stretched from their minimum to their maximum.
    lo, hi = float(grey.min()), float(grey.max())
    stretched = assessor.assess(((grey - lo) / (hi - lo)).astype(np.float32), "F")
    got = assessor.assess(grey.astype(np.float64) * 40.0 - 2000.0, "F")
    assert abs(got["bone_age_months"] - stretched["bone_age_months"]) < 0.01


def test_the_evidence_picture_comes_as_an_rgb_array(assessor, real_film):
    got = assessor.assess(real_film, "F", picture=True)
    p = got["picture"]
    assert p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 and p.shape[0] > 100
    assert p.std() > 10  # a picture, not a blank
    assert "picture" not in assessor.assess(real_film, "F")


def test_bad_input_raises_a_clear_error(assessor, tmp_path):
    grey = np.zeros((40, 30), np.uint8)
    cases = [
        (np.zeros((40, 30, 3), np.uint8), ValueError, "2-D"),
        (np.zeros((0, 30), np.uint8), ValueError, "empty"),
        (np.zeros((40, 30), np.int32), ValueError, "int32"),
        (np.full((40, 30), np.nan, np.float32), ValueError, "NaN"),
        (np.full((40, 30), 0.5, np.float64) * np.inf, ValueError, "NaN or infinity"),
        (np.full((40, 30), 7.0, np.float32), ValueError, "every sample is 7"),
        (tmp_path / "missing.png", FileNotFoundError, "missing.png"),
        (b"not an image at all", ValueError, "not an image"),
        ([1, 2, 3], TypeError, "list"),
    ]
    for image, error, words in cases:
        with pytest.raises(error, match=words):
            assessor.assess(image, "M")
    unreadable = tmp_path / "truncated.png"
    unreadable.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    with pytest.raises(ValueError, match="truncated.png"):
        assessor.assess(unreadable, "M")
    with pytest.raises(ValueError, match='sex "X"'):
        assessor.assess(grey, "X")
    with pytest.raises(ValueError, match="sex is needed"):
        assessor.assess(grey, None)
    with pytest.raises(ValueError, match="age_months=-3"):
        assessor.assess(grey, "M", age_months=-3)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        boneage.Assessor(tmp_path / "nowhere")


def test_a_film_without_a_hand_is_refused_with_the_reason(assessor):
    rng = np.random.default_rng(1)
    with pytest.raises(boneage.Refused) as e:
        assessor.assess(rng.integers(0, 30, size=(512, 416), dtype=np.uint8), "F", name="blank")
    assert str(e.value).startswith("blank: ") and len(str(e.value)) > 20


def test_the_gil_is_released_while_it_computes(assessor, real_film):
    """Another Python thread keeps running during an assessment: its longest pause
    is far shorter than the assessment itself (with the GIL held it would be the
    whole of it)."""
    grey = np.asarray(Image.open(real_film))
    took = []

    def work():
        t = time.perf_counter()
        assessor.assess(grey, "F")
        took.append(time.perf_counter() - t)

    worker = threading.Thread(target=work)
    ticks = []
    worker.start()
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)
    worker.join()
    gaps = np.diff(ticks)
    assert took[0] > 0.1
    assert gaps.max() < took[0] / 3, (gaps.max(), took[0])

    # Two threads assess at once and both answers are right.
    answers = [None, None]

    def one(i):
        answers[i] = assessor.assess(grey, "F")["bone_age_months"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers[0] == answers[1] == assessor.assess(real_film, "F")["bone_age_months"]
