//! Positive mining (the paper's way of growing its hand masks): propose a candidate
//! for every film without an accepted label, lay the candidates out on numbered
//! contact sheets, record what a reviewer decided, and make by hand what no
//! proposer gets right.
//!
//! - masks: round 0 from the classical baseline, later rounds from a U-Net trained on
//!   the masks accepted so far;
//! - key points (films with an accepted mask): from the mask's geometry
//!   (`boneage_core::hand_geometry`), or from a key-point net.
//!
//! The label store itself is `boneage_core::labels`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use boneage_core::dataset::{Dataset, mask_path};
use boneage_core::geometry::Point;
use boneage_core::hand_geometry::{GeometryParams, keypoints_for_image};
use boneage_core::image::Mask;
use boneage_core::io::create_dir;
use boneage_core::keypoints::{self, KeyPoints};
use boneage_core::labels::{LabelKind, Labels, Round};
use boneage_core::ops::draw::{fill_polygon, stroke_polyline};
use boneage_core::ops::segment::{SegmentConfig, segment_hand};
use boneage_core::ops::{Connectivity, fill_holes, largest_component};
use boneage_core::overlay::{keypoint_tile, mask_tile};
use boneage_core::sheet::{SheetLayout, save_rgb};
use boneage_core::{GrayImage, read_radiograph};
use boneage_nn::burn::prelude::Device;
use boneage_nn::pipeline::{Locator, Segmenter};
use boneage_nn::weights::WeightsError;
use image::RgbImage;
use rayon::prelude::*;

use crate::progress::Progress;

/// Tiles per contact sheet: masks, key points (wider tiles).
const PER_SHEET: [usize; 2] = [24, 20];

/// What mining could not do.
#[derive(Debug, thiserror::Error)]
pub enum MiningError {
    /// A film, a label or an output could not be read or written.
    #[error(transparent)]
    Core(#[from] boneage_core::Error),
    /// The proposer's weights could not be loaded.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// The request does not hold together.
    #[error("{0}")]
    Invalid(String),
}

/// How candidates are made.
pub enum Proposer {
    /// The classical segmentation baseline (mask round 0).
    Baseline,
    /// A trained U-Net.
    Segmenter(Box<Segmenter>),
    /// The accepted mask's geometry (key points).
    Geometry,
    /// A trained key-point net.
    Locator(Box<Locator>),
}

impl Proposer {
    /// The proposer of a round of `kind`: `model` when given, else the baseline
    /// (mask round 0) or the mask geometry (key points).
    pub fn for_round(
        kind: LabelKind,
        model: Option<&Path>,
        round: u32,
        device: &Device,
    ) -> Result<Self, MiningError> {
        Ok(match (kind, model, round) {
            (LabelKind::Mask, Some(m), _) => {
                Proposer::Segmenter(Box::new(Segmenter::load(m, device)?))
            }
            (LabelKind::Mask, None, 0) => Proposer::Baseline,
            (LabelKind::Mask, None, r) => {
                return Err(MiningError::Invalid(format!(
                    "round {r}: rounds after 0 need --model, a U-Net trained on the accepted masks \
                     (boneage train segment DATA --masks LABELS/masks --out RUN)"
                )));
            }
            (LabelKind::Keypoints, Some(m), _) => {
                Proposer::Locator(Box::new(Locator::load(m, device)?))
            }
            (LabelKind::Keypoints, None, _) => Proposer::Geometry,
        })
    }
}

/// A round's settings.
#[derive(Clone, Copy, Debug)]
pub struct RoundSpec {
    /// Round number.
    pub round: u32,
    /// What it proposes.
    pub kind: LabelKind,
    /// Cut thin appendages off candidate masks.
    pub trim_strips: bool,
    /// Open gaps between fingers that a candidate mask bridged.
    pub refine_gaps: bool,
}

/// What a round made.
#[derive(Debug, Default)]
pub struct RoundSummary {
    /// Films in the dataset.
    pub films: usize,
    /// Films already accepted.
    pub accepted_before: usize,
    /// Candidates laid out on sheets.
    pub candidates: usize,
    /// Sheets written.
    pub sheets: usize,
    /// Masks that gave no key-point candidate.
    pub no_candidate: usize,
    /// Films that failed, with the reason.
    pub failed: Vec<String>,
}

/// A candidate: the film's id, its sheet tile and its key points (key-point rounds).
type Candidate = (String, RgbImage, Option<KeyPoints>);

fn propose(
    proposer: &Proposer,
    spec: &RoundSpec,
    ds: &Dataset,
    labels: &Labels,
    sample: &boneage_core::dataset::Sample,
    masks_dir: &Path,
) -> Result<Option<Candidate>, MiningError> {
    let r = read_radiograph(ds.image_path(sample))?;
    let (w, h) = (r.pixels.width(), r.pixels.height());
    let id = sample.id.clone();
    Ok(match proposer {
        Proposer::Baseline | Proposer::Segmenter(_) => {
            let mut mask = match proposer {
                Proposer::Segmenter(net) => net.segment(&r.pixels),
                _ => segment_hand(&r.pixels, &SegmentConfig::default()),
            };
            if spec.refine_gaps {
                mask = boneage_core::ops::refine_gaps(&r.pixels, &mask, 0.02 * w.max(h) as f32);
            }
            if spec.trim_strips {
                mask = boneage_core::ops::trim_thin(&mask, 0.007 * w.max(h) as f32);
            }
            mask.save_png(&mask_path(masks_dir, &id))?;
            Some((id, mask_tile(&r.pixels, &mask, 200, 250), None))
        }
        Proposer::Geometry | Proposer::Locator(_) => {
            let small = Mask::load_png(&mask_path(&labels.masks_dir(), &id))?;
            let k = match proposer {
                Proposer::Locator(net) => Some(net.locate(&r.pixels)),
                _ => keypoints_for_image(&small, w, h, &GeometryParams::default()),
            };
            let full = small.resized(w, h);
            k.map(|k| {
                let tile = keypoint_tile(&r.pixels, Some(&full), &k, 200, 250);
                (id, tile, Some(k))
            })
        }
    })
}

/// One round of mining into `out`: a candidate for every film of `ds` without an
/// accepted label of the round's kind (key points: only films with an accepted
/// mask), numbered sheets, `index.csv`, `round.txt` and, for key points,
/// `candidates.csv`.
pub fn mine_round(
    ds: &Dataset,
    labels: &Labels,
    out: &Path,
    proposer: &Proposer,
    spec: &RoundSpec,
    progress: &dyn Progress,
) -> Result<RoundSummary, MiningError> {
    let done = labels.accepted(spec.kind)?;
    let with_mask = labels.accepted(LabelKind::Mask)?;
    let todo: Vec<_> = ds
        .samples
        .iter()
        .filter(|s| !done.contains(&s.id))
        .filter(|s| spec.kind == LabelKind::Mask || with_mask.contains(&s.id))
        .collect();
    let masks_dir = out.join("masks");
    create_dir(&masks_dir)?;
    let mut summary = RoundSummary {
        films: ds.samples.len(),
        accepted_before: done.len(),
        ..RoundSummary::default()
    };
    progress.note(&format!(
        "round {} ({}): {} images, {} already accepted, {} candidates to make",
        spec.round,
        spec.kind.name(),
        ds.samples.len(),
        done.len(),
        todo.len()
    ));
    progress.start("proposing", todo.len());
    let made: Vec<_> = todo
        .par_iter()
        .map(|s| {
            let m = propose(proposer, spec, ds, labels, s, &masks_dir);
            progress.inc();
            m
        })
        .collect();
    progress.finish();
    let mut ok = Vec::new();
    let mut candidates = BTreeMap::new();
    for m in made {
        match m {
            Ok(Some((id, rgb, k))) => {
                if let Some(k) = k {
                    candidates.insert(id.clone(), k);
                }
                ok.push((id, rgb));
            }
            Ok(None) => summary.no_candidate += 1,
            Err(e) => summary.failed.push(e.to_string()),
        }
    }
    summary.candidates = ok.len();
    summary.sheets = write_sheets(out, spec, &ok)?;
    if spec.kind == LabelKind::Keypoints {
        keypoints::write_csv(
            &out.join("candidates.csv"),
            candidates.iter().map(|(id, k)| (id.as_str(), k)),
        )?;
    }
    boneage_core::io::write_atomic(&out.join("round.txt"), |w| {
        writeln!(w, "{} {}", spec.round, spec.kind.name())
    })?;
    Ok(summary)
}

/// Numbered contact sheets of the candidates and `index.csv` (sheet, tile, id).
fn write_sheets(
    out: &Path,
    spec: &RoundSpec,
    tiles: &[(String, RgbImage)],
) -> Result<usize, MiningError> {
    let keypoints = spec.kind == LabelKind::Keypoints;
    let per_sheet = PER_SHEET[keypoints as usize];
    let sheets = tiles.len().div_ceil(per_sheet);
    let mut index = String::from("sheet,tile,id\n");
    for (k, chunk) in tiles.chunks(per_sheet).enumerate() {
        let numbered: Vec<(String, RgbImage)> = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, rgb))| {
                index.push_str(&format!("{},{},{id}\n", k + 1, i + 1));
                (format!("{} {id}", i + 1), rgb.clone())
            })
            .collect();
        let layout = SheetLayout {
            columns: if keypoints { 5 } else { 8 },
            // Key-point tiles carry the magnified carpus beside the film.
            tile_width: if keypoints { 200 + 250 * 3 / 5 } else { 200 },
            tile_height: 250,
            title: Some(format!(
                "round {} {} sheet {}/{sheets}: reject by number with boneage review --sheet {}",
                spec.round,
                spec.kind.name(),
                k + 1,
                k + 1
            )),
        };
        save_rgb(
            &numbered,
            &layout,
            &out.join(format!("sheet-{:03}.png", k + 1)),
        )?;
    }
    boneage_core::io::write_atomic(&out.join("index.csv"), |w| w.write_all(index.as_bytes()))?;
    Ok(sheets)
}

/// Records a reviewer's decisions on sheet `sheet` of `round`: the tiles in
/// `reject` are rejected, every other tile of the sheet accepted. Returns
/// (accepted, rejected).
pub fn review_sheet(
    round: &Round,
    labels: &Labels,
    sheet: usize,
    reject: &BTreeSet<usize>,
) -> Result<(usize, usize), MiningError> {
    let tiles = round.sheet(sheet);
    if tiles.is_empty() {
        return Err(MiningError::Invalid(format!(
            "{}: no sheet {sheet}",
            round.dir.join("index.csv").display()
        )));
    }
    if let Some(n) = reject.iter().find(|&&n| n == 0 || n > tiles.len()) {
        return Err(MiningError::Invalid(format!(
            "--reject {n}: sheet {sheet} has tiles 1 to {}",
            tiles.len()
        )));
    }
    let decisions: Vec<(String, bool)> = tiles
        .iter()
        .map(|(n, id)| (id.clone(), !reject.contains(n)))
        .collect();
    Ok(round.decide(labels, &decisions)?)
}

/// A mask made or corrected by hand: a start (a candidate mask, a threshold of the
/// film, or the film's accepted mask), limited to a region of interest, polygons
/// added and erased, cuts made between touching fingers, then the paper's
/// post-processing (largest component, holes filled). Coordinates are the film's
/// pixels.
#[derive(Clone, Debug, Default)]
pub struct MaskEdits {
    /// Start from this candidate mask (a mask PNG of any size).
    pub mask_from: Option<PathBuf>,
    /// Start from the pixels brighter than this fraction (0–1) of the film's
    /// 1–99.5 % window after a light blur.
    pub threshold: Option<f32>,
    /// Keep only the inside of this polygon.
    pub roi: Option<Vec<Point>>,
    /// Add the inside of these polygons.
    pub add: Vec<Vec<Point>>,
    /// Remove the inside of these polygons.
    pub erase: Vec<Vec<Point>>,
    /// Cut along these polylines.
    pub cut: Vec<Vec<Point>>,
    /// Width of the cuts.
    pub cut_width: f64,
}

impl MaskEdits {
    /// Whether anything was asked for.
    pub fn any(&self) -> bool {
        self.mask_from.is_some()
            || self.threshold.is_some()
            || self.roi.is_some()
            || !self.add.is_empty()
            || !self.erase.is_empty()
            || !self.cut.is_empty()
    }

    /// The edited mask at the film's size, `None` when nothing was asked for.
    pub fn apply(
        &self,
        img: &GrayImage,
        accepted: Option<&Mask>,
    ) -> Result<Option<Mask>, MiningError> {
        if !self.any() {
            return Ok(None);
        }
        let (w, h) = (img.width(), img.height());
        let mut m = if let Some(p) = &self.mask_from {
            Mask::load_png(p)?.resized(w, h)
        } else if let Some(t) = self.threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(MiningError::Invalid(format!(
                    "--threshold {t}: give a fraction between 0 and 1"
                )));
            }
            let all = Mask::full(w, h);
            let win = boneage_core::ops::percentile_window(img, &all, 1.0, 99.5);
            Mask::threshold(&boneage_core::ops::gaussian_blur(&win, 1.5), t)
        } else {
            accepted.cloned().unwrap_or_else(|| Mask::new(w, h))
        };
        if let Some(roi) = &self.roi {
            m.intersect(&fill_polygon(w, h, roi));
        }
        for p in &self.add {
            m.union(&fill_polygon(w, h, p));
        }
        for p in &self.erase {
            m.subtract(&fill_polygon(w, h, p));
        }
        for p in &self.cut {
            m.subtract(&stroke_polyline(w, h, p, self.cut_width));
        }
        let m = fill_holes(&largest_component(&m, Connectivity::Eight));
        if m.count() == 0 {
            return Err(MiningError::Invalid("the edited mask is empty".into()));
        }
        Ok(Some(m))
    }
}
