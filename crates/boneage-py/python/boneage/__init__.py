"""Pediatric bone age from a left-hand radiograph (Iglovikov et al. 2018).

    >>> import boneage
    >>> assessor = boneage.Assessor()             # the models inside the package
    >>> result = assessor.assess("1377.png", sex="F", age_months=170)
    >>> result["bone_age_months"], result["interval"]

``assess`` takes a path, the bytes of a PNG / JPEG / DICOM file, or a 2-D numpy
array, and returns the same fields as ``boneage assess --json``. A film the front
end has no confidence in raises :class:`Refused` with the reason; input that is
not a radiograph raises ``ValueError`` (``FileNotFoundError`` / ``OSError`` for a
file that cannot be read). The computation releases the GIL, so threads run
assessments side by side.

For archives on a Ray cluster see :mod:`boneage.ray`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional, Union

from ._boneage import NativeAssessor as _NativeAssessor
from ._boneage import Refused, __version__

__all__ = ["Assessor", "Refused", "models_dir", "__version__"]

_PACKAGED = Path(__file__).with_name("models")


def models_dir() -> Optional[Path]:
    """The models folder inside the installed package, or None in a source checkout
    built without them (then ``$BONEAGE_MODELS`` or the repository's ``models/``)."""
    return _PACKAGED if (_PACKAGED / "unet.safetensors").is_file() else None


_SAMPLE_TYPES = ("uint8", "uint16", "float32", "float64")


def _samples(array: Any):
    """A numpy array's grey samples as (bytes, height, width, dtype name)."""
    import numpy as np

    a = np.asarray(array)
    if a.ndim != 2:
        hint = (
            ": a colour image? convert it to grey first"
            if a.ndim == 3 and a.shape[-1] in (3, 4)
            else ""
        )
        raise ValueError(
            f"a radiograph is a 2-D array (height, width); got {a.ndim} dimensions, shape {a.shape}{hint}"
        )
    if a.size == 0:
        raise ValueError(f"an empty array (shape {a.shape})")
    if a.dtype.name not in _SAMPLE_TYPES:
        if a.dtype == np.float16:
            a = a.astype(np.float32)
        else:
            raise ValueError(
                f"samples of type {a.dtype.name}: give uint8, uint16 or float (float16, float32, float64)"
            )
    a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("="))
    return a.tobytes(), a.shape[0], a.shape[1], a.dtype.name


def _picture(raw):
    if raw is None:
        return None
    import numpy as np

    data, width, height = raw
    return np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)


class Assessor:
    """The pipeline and bone-age models, loaded once (about a second).

    ``models``: a models folder; None takes ``$BONEAGE_MODELS``, else the models
    inside the package, else the source tree's. One Assessor may be shared by
    threads.
    """

    def __init__(self, models: Union[str, os.PathLike, None] = None):
        if models is None and "BONEAGE_MODELS" not in os.environ:
            models = models_dir()
        self._native = _NativeAssessor(None if models is None else os.fspath(models))

    @property
    def models(self) -> Path:
        """The models folder in use."""
        return Path(self._native.models)

    def assess(
        self,
        image: Any,
        sex: Optional[str],
        age_months: Optional[float] = None,
        *,
        name: Optional[str] = None,
        picture: bool = False,
    ) -> dict:
        """Assesses one film.

        ``image``: a path (str or os.PathLike); the bytes of a PNG, JPEG or DICOM
        file; or a 2-D numpy array of grey samples, bright = bone (uint8 as 0–255,
        uint16 as 0–65535, floats as they are in [0, 1], else stretched from their
        minimum to their maximum). ``sex``: "M" or "F" (None: from a DICOM header).
        ``age_months``: the chronological age, for the comparison (None: from the
        header, when it has one). ``name``: how the film is named in the result and
        in errors (default: the path, or "bytes" / "array"). ``picture``: add the
        evidence picture (registered hand, key points, regions, numbers) as an RGB
        uint8 array under "picture".

        Returns the fields of ``boneage assess --json``. Raises :class:`Refused`
        when the film is not assessed, ``ValueError`` for input that is not a
        radiograph or a bad argument.
        """
        if age_months is not None:
            age_months = float(age_months)
        if sex is not None and not isinstance(sex, str):
            raise TypeError(f"sex={sex!r}: give \"M\" or \"F\"")
        if isinstance(image, (str, os.PathLike)):
            text, raw = self._native.assess_path(os.fspath(image), sex, age_months, picture)
        elif isinstance(image, (bytes, bytearray, memoryview)):
            text, raw = self._native.assess_bytes(
                bytes(image), name or "bytes", sex, age_months, picture
            )
        elif hasattr(image, "__array__") or hasattr(image, "__array_interface__"):
            data, height, width, dtype = _samples(image)
            text, raw = self._native.assess_samples(
                data, height, width, dtype, name or "array", sex, age_months, picture
            )
        else:
            raise TypeError(
                f"image of type {type(image).__name__}: give a path, the bytes of a PNG/JPEG/DICOM file, or a 2-D numpy array"
            )
        result = json.loads(text)
        if name is not None:
            result["file"] = name
        if picture:
            result["picture"] = _picture(raw)
        return result

    def __repr__(self) -> str:
        return f"boneage.Assessor(models={str(self.models)!r})"
