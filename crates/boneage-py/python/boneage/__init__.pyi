"""Pediatric bone age from a left-hand radiograph (Iglovikov et al. 2018)."""

import os
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

from ._boneage import Refused as Refused

__version__: str

class Interval(TypedDict):
    low_months: float
    high_months: float
    #: Nominal coverage, measured out of fold (0.9).
    level: float
    #: Too wide to be useful.
    too_wide: bool

class Member(TypedDict):
    region: str
    head: str
    cohort: str
    months: float

class Chronological(TypedDict):
    chronological_months: float
    #: Bone age minus chronological age.
    difference_months: float
    #: The Greulich–Pyle / Brush SD at that age.
    sd_months: float
    sds: float
    verdict: Literal["delayed", "normal", "advanced"]
    outside_table: bool

class Registration(TypedDict):
    fingertip: List[float]
    thumb: List[float]
    capitate: List[float]
    mirrored: bool
    inverted_polarity: bool
    #: Where the film lay on a larger canvas, ``[x0, y0, x1, y1]``, read there alone.
    film_on_canvas: Optional[List[int]]
    #: The film was already cut out (exact black around the hand): its own outline was the mask.
    cut_out: bool
    #: Refused every other way, the hand outlined by the U-Net for framed films; the locator agrees.
    framed_unet: bool
    #: The outline could not place the key points: they are the heat-map locator's alone, checked after registration.
    locator_alone: bool
    zoom: float
    rotation_deg: float
    template_agreement: Optional[float]
    template_turn_deg: Optional[float]
    template_scale: Optional[float]

class Resolution(TypedDict):
    hand_span_px: float
    typical_span_px: float
    #: Too few pixels for the hand: the age is not to be relied on.
    low: bool
    #: The share of the usual span under which ``low`` is set (0.6).
    low_share: float

class Result(TypedDict, total=False):
    """The fields of ``boneage assess --json`` (``picture`` only when asked for)."""

    file: str
    sex: Literal["M", "F"]
    sex_from: str
    bone_age_months: float
    bone_age: str
    spread_months: float
    interval: Optional[Interval]
    mean_months: float
    regions: Dict[str, Optional[float]]
    members: List[Member]
    chronological: Optional[Chronological]
    registration: Registration
    resolution: Resolution
    seconds: float
    #: The evidence picture, (height, width, 3) uint8, with ``picture=True``.
    picture: Any

def models_dir() -> Optional[Path]: ...

class Assessor:
    def __init__(self, models: Union[str, os.PathLike[str], None] = None) -> None: ...
    @property
    def models(self) -> Path: ...
    def assess(
        self,
        image: Union[str, os.PathLike[str], bytes, bytearray, memoryview, Any],
        sex: Optional[Literal["M", "F", "male", "female"]],
        age_months: Optional[float] = None,
        *,
        name: Optional[str] = None,
        picture: bool = False,
    ) -> Result: ...
