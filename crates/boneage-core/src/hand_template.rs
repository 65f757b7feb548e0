//! The check after registration: the registered hand against the mean registered hand.
//!
//! A hand registered from wrong key points sits on the canvas turned, scaled or
//! mirrored against where hands sit when registered right: with the fingertip on the
//! index or ring finger the hand leans by about a finger's angle, with the thumb
//! mirrored it lies the wrong way round, with the capitate far off it is too large or
//! too small. The template is the mean of hand masks registered from reviewed key
//! points, on a coarse grid of the canvas. A registered mask is compared with it
//! as it is, with the template turned and scaled about the capitate's target, and
//! with the template mirrored. The check is evidence apart from the key points that
//! made the registration: it looks only at where the hand's pixels lie on the canvas.
//!
//! Stored as `hand_template.png` (the mean, 0–255: the share of hands covering each
//! cell, for people to look at) with `hand_template.json` (its grid, the limits of the
//! check and how they were chosen).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geometry::Point;
use crate::image::{GrayImage, Mask};
use crate::ops::resize_area;

/// The template's grid: a quarter of the CPU canvas (400 × 520), any canvas of the
/// paper's proportions is reduced to it.
pub const GRID: [usize; 2] = [100, 130];

/// Turns of the template tried about the capitate's target, degrees.
const ANGLES: [f64; 11] = [
    -20.0, -16.0, -12.0, -8.0, -4.0, 0.0, 4.0, 8.0, 12.0, 16.0, 20.0,
];
/// Scales of the template tried about the capitate's target.
const SCALES: [f64; 9] = [0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2];

/// The limits a registered hand must meet, and how they were set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Least agreement (soft intersection over union) with the template as it is.
    pub min_agreement: f64,
    /// Largest turn (degrees) of the template that fits the hand best.
    pub max_turn_deg: f64,
    /// Smallest and largest scale of the template that fits the hand best.
    pub scale: [f64; 2],
    /// Least [`Fit::thumb_side`].
    pub min_thumb_side: f64,
    /// Largest turn where the mask's five digits, apart, show the fingertip on the
    /// middle one and the thumb tip on the one read as the thumb
    /// ([`crate::hand_geometry::middle_of_five`]): a hand with its fingers spread, or
    /// bent at the wrist, leans against the mean hand without being registered on a
    /// wrong finger. Absent in templates made before it: then [`Limits::max_turn_deg`]
    /// throughout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turn_deg_five_digits: Option<f64>,
}

/// [`Limits::max_turn_deg_five_digits`] of a new template: a finger's angle from its
/// neighbour about the capitate (12–16°) is what a wrong finger turns the hand by,
/// and the five digits rule that out; a turn beyond this still refuses (a capitate
/// far to one side turns the hand about the fingertip). Chosen before measuring.
pub const TURN_FIVE_DIGITS_DEG: f64 = 12.0;

impl Limits {
    /// Limits that pass every fit of `fits` (correct registrations) with a margin: the
    /// least agreement less 0.02, the largest turn seen, the scales seen, a thumb side
    /// above zero (or the least seen less a fifth of it, if lower). `None` without
    /// fits.
    pub fn envelope(fits: &[Fit]) -> Option<Limits> {
        if fits.is_empty() {
            return None;
        }
        let min = |f: fn(&Fit) -> f64| fits.iter().map(f).fold(f64::INFINITY, f64::min);
        let max = |f: fn(&Fit) -> f64| fits.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        let side = min(|f| f.thumb_side);
        Some(Limits {
            min_agreement: min(|f| f.agreement) - 0.02,
            max_turn_deg: max(|f| f.turn_deg.abs()),
            scale: [min(|f| f.scale), max(|f| f.scale)],
            // The thumb side's sign, not its envelope: hands of other sources (young
            // children, spread fingers) pass with a small positive side, and a mirrored
            // registration is also caught by its low agreement and its turn.
            min_thumb_side: (side - 0.2 * side.abs()).min(0.0),
            max_turn_deg_five_digits: Some(TURN_FIVE_DIGITS_DEG.max(max(|f| f.turn_deg.abs()))),
        })
    }

    /// Limits that pass anything (while a template is being built).
    pub fn open() -> Limits {
        Limits {
            min_agreement: 0.0,
            max_turn_deg: 180.0,
            scale: [0.0, f64::INFINITY],
            min_thumb_side: f64::NEG_INFINITY,
            max_turn_deg_five_digits: None,
        }
    }
}

/// The manifest beside the template's picture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Grid width and height.
    pub grid: [usize; 2],
    /// Hands averaged.
    pub films: usize,
    /// The check's limits.
    pub limits: Limits,
    /// How the template and the limits were made, in words and commands.
    pub made_by: String,
}

/// Why the check after registration refuses a registered hand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum WrongFit {
    /// The thumb is on the little finger's side.
    Mirrored,
    /// The hand fits the template only when turned by `deg` degrees.
    Leans {
        /// The turn, degrees (absolute).
        deg: f64,
    },
    /// The hand fits the template only when scaled by `scale`.
    Scale {
        /// The best fit's scale (1 = the template's size).
        scale: f64,
    },
    /// The hand's outline agrees too little with the template's.
    Shape {
        /// Its agreement (soft intersection over union).
        agreement: f64,
        /// The least agreement allowed.
        min: f64,
    },
    /// The registration verifier (a network that looks at the registered hand) scores
    /// it as wrongly registered.
    Unverified {
        /// Its score, 0 (wrong) to 1 (right).
        score: f64,
        /// The least score allowed.
        min: f64,
    },
    /// The capitate check (a second such network that looks at the registered carpus
    /// alone) scores it as registered on a wrong capitate.
    CapitateUnverified {
        /// Its score, 0 (wrong) to 1 (right).
        score: f64,
        /// The least score allowed.
        min: f64,
    },
}

impl WrongFit {
    /// A short stable name for tables and counts: `looks mirrored`, `leans`, `too
    /// small`, `too large`, `not hand-shaped` (low agreement), `verifier` or `capitate
    /// check`.
    pub fn kind(&self) -> &'static str {
        match self {
            WrongFit::Mirrored => "looks mirrored",
            WrongFit::Leans { .. } => "leans",
            WrongFit::Scale { scale } if *scale < 1.0 => "too small",
            WrongFit::Scale { .. } => "too large",
            WrongFit::Shape { .. } => "not hand-shaped",
            WrongFit::Unverified { .. } => "verifier",
            WrongFit::CapitateUnverified { .. } => "capitate check",
        }
    }
}

impl std::fmt::Display for WrongFit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let advice = "the key points are probably wrong: check that the film shows one whole \
                      left or right hand, fingers up, and try again";
        match self {
            WrongFit::Mirrored => write!(
                f,
                "the registered hand looks mirrored (its thumb on the little finger's side): {advice}"
            ),
            WrongFit::Leans { deg } => write!(
                f,
                "the registered hand leans by about {deg:.0}° (the middle finger was probably \
                 taken on another finger): {advice}"
            ),
            WrongFit::Scale { scale } => write!(
                f,
                "the registered hand is {:.0} % too {} (the capitate was probably placed \
                 wrongly): {advice}",
                100.0 * (scale - 1.0).abs(),
                if *scale < 1.0 { "small" } else { "large" }
            ),
            WrongFit::Shape { agreement, min } => write!(
                f,
                "the registered hand does not have a hand's shape (agreement {agreement:.2} \
                 with the mean registered hand, at least {min:.2} expected): {advice}"
            ),
            WrongFit::Unverified { score, min } => write!(
                f,
                "the registered hand does not look registered on the middle finger, the thumb \
                 and the capitate (the registration verifier scores it {score:.2}, at least \
                 {min:.2} expected): {advice}"
            ),
            WrongFit::CapitateUnverified { score, min } => write!(
                f,
                "the registered carpus does not sit where the capitate was placed (the \
                 capitate check scores it {score:.2}, at least {min:.2} expected): the \
                 capitate is probably placed on another bone; check that the wrist and carpus \
                 are on the film and not covered, and try again"
            ),
        }
    }
}

/// The mean registered hand and the check's limits.
#[derive(Clone, Debug, PartialEq)]
pub struct HandTemplate {
    /// Share of hands covering each grid cell, row-major, `GRID` in size.
    pub mean: GrayImage,
    /// Grid, limits and provenance.
    pub manifest: Manifest,
    /// The template turned and scaled by every pair of `ANGLES` × `SCALES`, made on
    /// the first fit.
    turned: std::sync::OnceLock<Vec<(f64, f64, Vec<f32>)>>,
}

/// How a registered hand fits the template.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fit {
    /// Soft intersection over union with the template as it is (1: the same).
    pub agreement: f64,
    /// The turn of the template (degrees, counter-clockwise on screen) that fits best.
    pub turn_deg: f64,
    /// The scale of the template that fits best.
    pub scale: f64,
    /// The best fit's agreement.
    pub best_agreement: f64,
    /// Which side the thumb is on, from −1 (the little finger's side: mirrored) to 1
    /// (the thumb's side of the template): the hand's share of the cells where the
    /// template is more covered than its mirror image, less its share of those where
    /// it is less.
    pub thumb_side: f64,
}

/// A registered mask reduced to the grid: each cell the share of its pixels inside.
pub fn to_grid(registered: &Mask) -> GrayImage {
    resize_area(&registered.to_image(), GRID[0], GRID[1])
}

/// Soft intersection over union of two grids of shares.
fn agreement(a: &[f32], b: &[f32]) -> f64 {
    let (mut inter, mut union) = (0f64, 0f64);
    for (&x, &y) in a.iter().zip(b) {
        inter += f64::from(x.min(y));
        union += f64::from(x.max(y));
    }
    if union == 0.0 { 0.0 } else { inter / union }
}

/// The capitate's target on the grid (the canvas's centre line, 480 / 2080 of the
/// height above the bottom).
fn pivot() -> Point {
    Point::new(
        GRID[0] as f64 / 2.0,
        GRID[1] as f64 * (1.0 - 480.0 / 2080.0),
    )
}

/// `img` turned by `deg` and scaled by `scale` about the pivot, or mirrored about
/// the centre line (nearest neighbour: the grid is coarse already).
fn transformed(img: &GrayImage, deg: f64, scale: f64, mirror: bool) -> Vec<f32> {
    let (w, h) = (img.width(), img.height());
    let c = pivot();
    let (s, co) = (-deg.to_radians()).sin_cos();
    let mut out = vec![0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            // Output cell → source cell: undo the scale and the turn.
            let mut dx = (x as f64 + 0.5 - c.x) / scale;
            let dy = (y as f64 + 0.5 - c.y) / scale;
            if mirror {
                dx = -dx;
            }
            let sx = c.x + co * dx + s * dy;
            let sy = c.y - s * dx + co * dy;
            if sx >= 0.0 && sy >= 0.0 && (sx as usize) < w && (sy as usize) < h {
                out[y * w + x] = img.get(sx as usize, sy as usize);
            }
        }
    }
    out
}

impl HandTemplate {
    /// The mean of registered masks (each reduced to the grid), with `limits`.
    pub fn build<'a>(
        registered: impl IntoIterator<Item = &'a Mask>,
        limits: Limits,
        made_by: String,
    ) -> Result<Self> {
        let mut sum = vec![0f32; GRID[0] * GRID[1]];
        let mut films = 0;
        for m in registered {
            for (s, v) in sum.iter_mut().zip(to_grid(m).as_slice()) {
                *s += v;
            }
            films += 1;
        }
        if films == 0 {
            return Err(Error::InvalidArgument(
                "no registered hand to build a template from".into(),
            ));
        }
        sum.iter_mut().for_each(|v| *v /= films as f32);
        Ok(Self {
            mean: GrayImage::from_vec(GRID[0], GRID[1], sum)?,
            manifest: Manifest {
                grid: GRID,
                films,
                limits,
                made_by,
            },
            turned: Default::default(),
        })
    }

    /// How a registered mask (any canvas of the paper's proportions) fits.
    pub fn fit(&self, registered: &Mask) -> Fit {
        let g = to_grid(registered);
        let g = g.as_slice();
        let turned = self.turned.get_or_init(|| {
            ANGLES
                .iter()
                .flat_map(|&deg| SCALES.iter().map(move |&scale| (deg, scale)))
                .map(|(deg, scale)| (deg, scale, transformed(&self.mean, deg, scale, false)))
                .collect()
        });
        let mut best = (f64::MIN, 0);
        for (i, (_, _, t)) in turned.iter().enumerate() {
            let a = agreement(g, t);
            if a > best.0 {
                best = (a, i);
            }
        }
        let (best_agreement, (turn_deg, scale, fitted)) = (best.0, &turned[best.1]);
        let (turn_deg, scale) = (*turn_deg, *scale);
        // Which side the thumb is on: the hand's pixels where the template is more
        // covered than its mirror image (the thumb's side), less where it is less.
        // The template as it fits best, so that a hand that leans is not taken for
        // a mirrored one.
        let mirror = transformed(&self.mean, turn_deg, scale, true);
        let (mut side, mut norm) = (0f64, 0f64);
        for ((&m, &t), &u) in g.iter().zip(fitted).zip(&mirror) {
            side += f64::from(m * (t - u));
            norm += f64::from((t - u).abs());
        }
        Fit {
            agreement: agreement(g, self.mean.as_slice()),
            turn_deg,
            scale,
            best_agreement,
            thumb_side: if norm > 0.0 { 2.0 * side / norm } else { 0.0 },
        }
    }

    /// Why a fit shows a wrong registration (its `Display` in words a radiographer
    /// can act on), or `None` when it passes. The limits are tried in this order:
    /// thumb side, turn, scale, agreement. `five_digits` says whether the mask's five
    /// digits vouch for the fingertip and the thumb tip (asked only when the hand
    /// leans beyond [`Limits::max_turn_deg`] and within
    /// [`Limits::max_turn_deg_five_digits`]; see [`crate::hand_geometry::middle_of_five`]).
    pub fn judge(&self, fit: &Fit, five_digits: impl FnOnce() -> bool) -> Option<WrongFit> {
        let l = &self.manifest.limits;
        if fit.thumb_side < l.min_thumb_side {
            return Some(WrongFit::Mirrored);
        }
        let turn = fit.turn_deg.abs();
        if turn > l.max_turn_deg
            && !(l.max_turn_deg_five_digits.is_some_and(|five| turn <= five) && five_digits())
        {
            return Some(WrongFit::Leans { deg: turn });
        }
        if !(l.scale[0]..=l.scale[1]).contains(&fit.scale) {
            return Some(WrongFit::Scale { scale: fit.scale });
        }
        if fit.agreement < l.min_agreement {
            return Some(WrongFit::Shape {
                agreement: fit.agreement,
                min: l.min_agreement,
            });
        }
        None
    }

    /// The outline of the template (cells covered by at least half of the hands) at
    /// `width` × `height`, for drawing over a registered hand.
    pub fn outline(&self, width: usize, height: usize) -> Mask {
        let inside = Mask::threshold(&crate::ops::resize_bilinear(&self.mean, width, height), 0.5);
        let mut edge = Mask::new(width, height);
        for y in 0..height {
            for x in 0..width {
                if inside.get(x, y)
                    && (x == 0
                        || y == 0
                        || x + 1 == width
                        || y + 1 == height
                        || !inside.get(x - 1, y)
                        || !inside.get(x + 1, y)
                        || !inside.get(x, y - 1)
                        || !inside.get(x, y + 1))
                {
                    edge.set(x, y, true);
                }
            }
        }
        edge
    }

    /// Paths of the picture and the manifest in `dir`.
    pub fn paths(dir: &Path) -> (PathBuf, PathBuf) {
        (
            dir.join("hand_template.png"),
            dir.join("hand_template.json"),
        )
    }

    /// Writes `hand_template.png` and `hand_template.json` into `dir` (each atomically).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let (png, json) = Self::paths(dir);
        self.mean.save_png(&png)?;
        let text = serde_json::to_string_pretty(&self.manifest)
            .map_err(|e| Error::InvalidArgument(format!("template manifest: {e}")))?;
        crate::io::write_atomic(&json, |w| {
            use std::io::Write;
            w.write_all(text.as_bytes())?;
            w.write_all(b"\n")
        })
    }

    /// Reads the template from `dir`; `Ok(None)` when `dir` has none.
    pub fn load(dir: &Path) -> Result<Option<Self>> {
        let (png, json) = Self::paths(dir);
        if !json.exists() {
            return Ok(None);
        }
        let bad = |why: String| Error::InvalidArgument(format!("{}: {why}", json.display()));
        let text = std::fs::read_to_string(&json).map_err(|e| bad(e.to_string()))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        if manifest.grid != GRID {
            return Err(bad(format!(
                "grid {:?}, this version reads {GRID:?}",
                manifest.grid
            )));
        }
        let mean = crate::io::read_radiograph(&png)?.pixels;
        if [mean.width(), mean.height()] != GRID {
            return Err(Error::InvalidArgument(format!(
                "{}: {}x{} pixels, the manifest says {}x{}",
                png.display(),
                mean.width(),
                mean.height(),
                GRID[0],
                GRID[1]
            )));
        }
        Ok(Some(Self {
            mean,
            manifest,
            turned: Default::default(),
        }))
    }
}
