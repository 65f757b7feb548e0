"""The native half of :mod:`boneage` (use :class:`boneage.Assessor`)."""

from os import PathLike
from typing import Optional, Tuple, Union

__version__: str

class Refused(Exception):
    """The film was not assessed (segmentation, key points or registration had no
    confidence, or no model covers the patient); the message says why."""

_Answer = Tuple[str, Optional[Tuple[bytes, int, int]]]

class NativeAssessor:
    def __init__(self, models: Union[str, PathLike[str], None] = None) -> None: ...
    @property
    def models(self) -> str: ...
    def assess_path(
        self, path: Union[str, PathLike[str]], sex: Optional[str], age_months: Optional[float], picture: bool
    ) -> _Answer: ...
    def assess_bytes(
        self, data: bytes, name: str, sex: Optional[str], age_months: Optional[float], picture: bool
    ) -> _Answer: ...
    def assess_samples(
        self,
        data: bytes,
        height: int,
        width: int,
        dtype: str,
        name: str,
        sex: Optional[str],
        age_months: Optional[float],
        picture: bool,
    ) -> _Answer: ...
