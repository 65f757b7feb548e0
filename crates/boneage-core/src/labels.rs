//! The label store of positive mining: a label folder with the accepted hand masks,
//! the accepted or hand-set key points and the review log, and a mining round's work
//! folder (its candidates and the sheet → tile → id index).
//!
//! Label folder (e.g. `data/labels`):
//! - `masks/<id>.mask.png`: accepted masks at a quarter of the image size (white = hand);
//! - `keypoints.csv`: accepted or hand-set key points, original-image pixels;
//! - `review.csv`: `id,round,kind,decision,time` (decision `accept`, `reject` or `set`;
//!   time in seconds since 1970; for an id and kind the last decision counts).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dataset::mask_path;
use crate::error::{Error, Result};
use crate::image::Mask;
use crate::io::create_dir;
use crate::keypoints::{self, KeyPoints};
use crate::ops::resize_area;

/// Scale of the committed masks relative to the image.
pub const LABEL_SCALE: usize = 4;

/// What a label (and a mining round) is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LabelKind {
    /// Hand masks.
    Mask,
    /// The three key points.
    Keypoints,
}

impl LabelKind {
    /// The name in the review log.
    pub fn name(self) -> &'static str {
        match self {
            LabelKind::Mask => "mask",
            LabelKind::Keypoints => "keypoints",
        }
    }
}

/// One decision about one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The candidate is right.
    Accept,
    /// The candidate is wrong.
    Reject,
    /// The label was made by hand.
    Set,
}

impl Decision {
    /// The name in the review log.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Reject => "reject",
            Decision::Set => "set",
        }
    }
}

/// A label folder: accepted masks, key points and the review log.
pub struct Labels {
    dir: PathBuf,
}

impl Labels {
    /// The label folder at `dir` (created on the first decision).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    /// The review log, `review.csv`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("review.csv")
    }

    /// Folder of accepted masks.
    pub fn masks_dir(&self) -> PathBuf {
        self.dir.join("masks")
    }

    /// The key-point CSV.
    pub fn keypoints_path(&self) -> PathBuf {
        self.dir.join("keypoints.csv")
    }

    /// The last decision for each id about `kind`.
    pub fn decisions(&self, kind: LabelKind) -> Result<BTreeMap<String, String>> {
        let path = self.log_path();
        let mut last = BTreeMap::new();
        if !path.is_file() {
            return Ok(last);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
        for (n, line) in text.lines().enumerate().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 5 {
                return Err(Error::Table {
                    path,
                    detail: format!("line {}: expected id,round,kind,decision,time", n + 1),
                });
            }
            if f[2] == kind.name() {
                last.insert(f[0].to_string(), f[3].to_string());
            }
        }
        Ok(last)
    }

    /// Ids whose label of `kind` is accepted or set by hand.
    pub fn accepted(&self, kind: LabelKind) -> Result<BTreeSet<String>> {
        Ok(self
            .decisions(kind)?
            .into_iter()
            .filter(|(_, d)| d == "accept" || d == "set")
            .map(|(id, _)| id)
            .collect())
    }

    /// Accepted key points.
    pub fn keypoints(&self) -> Result<BTreeMap<String, KeyPoints>> {
        let p = self.keypoints_path();
        if p.is_file() {
            keypoints::read_csv(&p)
        } else {
            Ok(BTreeMap::new())
        }
    }

    /// Applies key-point changes (`None` removes) to `keypoints.csv`, atomically.
    pub fn update_keypoints(&self, changes: &[(String, Option<KeyPoints>)]) -> Result<()> {
        let mut all = self.keypoints()?;
        for (id, k) in changes {
            match k {
                Some(k) => {
                    all.insert(id.clone(), *k);
                }
                None => {
                    all.remove(id);
                }
            }
        }
        create_dir(&self.dir)?;
        keypoints::write_csv(
            &self.keypoints_path(),
            all.iter().map(|(id, k)| (id.as_str(), k)),
        )
    }

    /// Appends decisions to the review log, in one write so that a crash leaves
    /// whole lines.
    pub fn log(&self, round: u32, kind: LabelKind, rows: &[(String, Decision)]) -> Result<()> {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut lines = String::new();
        for (id, d) in rows {
            lines.push_str(&format!(
                "{id},{round},{},{},{time}\n",
                kind.name(),
                d.name()
            ));
        }
        create_dir(&self.dir)?;
        let log = self.log_path();
        if !log.is_file() {
            lines.insert_str(0, "id,round,kind,decision,time\n");
        }
        let write = |e: std::io::Error| Error::Write {
            path: log.clone(),
            detail: e.to_string(),
        };
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(lines.as_bytes()))
            .map_err(write)
    }

    /// Records hand-set key points.
    pub fn set_keypoints(&self, id: &str, k: KeyPoints) -> Result<()> {
        self.update_keypoints(&[(id.to_string(), Some(k))])?;
        self.log(0, LabelKind::Keypoints, &[(id.to_string(), Decision::Set)])
    }

    /// Records a mask drawn or corrected by hand (`full` at the film's size).
    pub fn set_mask(&self, id: &str, round: u32, full: &Mask) -> Result<()> {
        create_dir(&self.masks_dir())?;
        save_label_mask(full, &mask_path(&self.masks_dir(), id))?;
        self.log(round, LabelKind::Mask, &[(id.to_string(), Decision::Set)])
    }

    /// The accepted mask of `id` at full size `w`×`h`, if there is one.
    pub fn mask(&self, id: &str, w: usize, h: usize) -> Result<Option<Mask>> {
        let p = mask_path(&self.masks_dir(), id);
        if !p.is_file() {
            return Ok(None);
        }
        Ok(Some(Mask::load_png(&p)?.resized(w, h)))
    }
}

/// Writes a full-size mask at the label scale (`ceil(w/4)` × `ceil(h/4)`).
pub fn save_label_mask(full: &Mask, dst: &Path) -> Result<()> {
    let (w, h) = (
        full.width().div_ceil(LABEL_SCALE),
        full.height().div_ceil(LABEL_SCALE),
    );
    Mask::threshold(&resize_area(&full.to_image(), w, h), 0.5).save_png(dst)
}

/// A round's work folder as `boneage mine` writes it: `index.csv` (`sheet,tile,id`),
/// `round.txt` (number and kind), `masks/` or `candidates.csv`, and the sheets.
pub struct Round {
    /// The folder.
    pub dir: PathBuf,
    /// Round number.
    pub number: u32,
    /// What it proposes.
    pub kind: LabelKind,
    /// `(sheet, tile, id)` in sheet order.
    pub tiles: Vec<(usize, usize, String)>,
    /// Key-point candidates (key-point rounds).
    pub candidates: BTreeMap<String, KeyPoints>,
}

impl Round {
    /// Reads `index.csv`, `round.txt` and the candidates of a round folder.
    pub fn open(dir: &Path) -> Result<Self> {
        let index_path = dir.join("index.csv");
        let index = std::fs::read_to_string(&index_path).map_err(|e| Error::Table {
            path: index_path.clone(),
            detail: format!("cannot read ({e}); run boneage mine first"),
        })?;
        let info = std::fs::read_to_string(dir.join("round.txt")).unwrap_or_default();
        let mut words = info.split_whitespace();
        let number = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let kind = match words.next() {
            Some("keypoints") => LabelKind::Keypoints,
            _ => LabelKind::Mask,
        };
        let mut tiles = Vec::new();
        for (n, l) in index.lines().enumerate().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            let parsed = (f.len() == 3)
                .then(|| Some((f[0].parse().ok()?, f[1].parse().ok()?, f[2].to_string())))
                .flatten();
            match parsed {
                Some(t) => tiles.push(t),
                None => {
                    return Err(Error::Table {
                        path: index_path,
                        detail: format!("line {}: expected sheet,tile,id", n + 1),
                    });
                }
            }
        }
        let candidates = if kind == LabelKind::Keypoints {
            keypoints::read_csv(&dir.join("candidates.csv"))?
        } else {
            BTreeMap::new()
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            number,
            kind,
            tiles,
            candidates,
        })
    }

    /// The `(tile, id)` pairs of sheet `sheet` (1-based).
    pub fn sheet(&self, sheet: usize) -> Vec<(usize, String)> {
        self.tiles
            .iter()
            .filter(|t| t.0 == sheet)
            .map(|t| (t.1, t.2.clone()))
            .collect()
    }

    /// Records decisions about candidates of this round: accepted labels go into the
    /// label folder, rejected ones leave it. Returns (accepted, rejected).
    pub fn decide(&self, labels: &Labels, decisions: &[(String, bool)]) -> Result<(usize, usize)> {
        let mut kp_changes = Vec::new();
        let mut rows = Vec::new();
        for (id, accept) in decisions {
            match self.kind {
                LabelKind::Mask => {
                    let dst = mask_path(&labels.masks_dir(), id);
                    if *accept {
                        create_dir(&labels.masks_dir())?;
                        let m = Mask::load_png(&mask_path(&self.dir.join("masks"), id))?;
                        save_label_mask(&m, &dst)?;
                    } else {
                        // A later decision overrides an earlier acceptance.
                        let _ = std::fs::remove_file(dst);
                    }
                }
                LabelKind::Keypoints => {
                    let k = self.candidates.get(id).ok_or_else(|| Error::Table {
                        path: self.dir.join("candidates.csv"),
                        detail: format!("no candidate for {id}"),
                    })?;
                    kp_changes.push((id.clone(), accept.then_some(*k)));
                }
            }
            let d = if *accept {
                Decision::Accept
            } else {
                Decision::Reject
            };
            rows.push((id.clone(), d));
        }
        if !kp_changes.is_empty() {
            labels.update_keypoints(&kp_changes)?;
        }
        labels.log(self.number, self.kind, &rows)?;
        let acc = decisions.iter().filter(|d| d.1).count();
        Ok((acc, decisions.len() - acc))
    }
}

/// Parses tile numbers as a reviewer writes them, `3,17,20-22`.
pub fn parse_tile_numbers(s: &str) -> std::result::Result<BTreeSet<usize>, String> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("{part:?} is not a number or a range like 20-22");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.insert(part.parse().map_err(|_| bad())?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_numbers_and_ranges() {
        assert_eq!(
            parse_tile_numbers("3, 17,20-22").unwrap(),
            BTreeSet::from([3, 17, 20, 21, 22])
        );
        assert!(parse_tile_numbers("").unwrap().is_empty());
        assert!(parse_tile_numbers("5-2").unwrap_err().contains("\"5-2\""));
        assert!(parse_tile_numbers("x").is_err());
    }

    #[test]
    fn the_last_decision_counts() {
        let tmp = tempfile::tempdir().unwrap();
        let labels = Labels::new(tmp.path());
        labels
            .log(
                1,
                LabelKind::Mask,
                &[
                    ("a".into(), Decision::Accept),
                    ("b".into(), Decision::Accept),
                ],
            )
            .unwrap();
        labels
            .log(2, LabelKind::Mask, &[("b".into(), Decision::Reject)])
            .unwrap();
        assert_eq!(
            labels.accepted(LabelKind::Mask).unwrap(),
            BTreeSet::from(["a".to_string()])
        );
        assert!(labels.accepted(LabelKind::Keypoints).unwrap().is_empty());
        std::fs::write(labels.log_path(), "id,round,kind,decision,time\nbad\n").unwrap();
        let e = labels.accepted(LabelKind::Mask).unwrap_err().to_string();
        assert!(e.contains("review.csv") && e.contains("line 2"), "{e}");
    }
}
