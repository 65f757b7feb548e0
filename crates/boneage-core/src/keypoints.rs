//! The paper's three key points and their CSV form.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geometry::{Affine, Point};

/// Middle fingertip, thumb tip and capitate centre, in pixels of one image.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyPoints {
    /// Tip of the middle finger (just inside the soft tissue).
    pub fingertip: Point,
    /// Tip of the thumb (just inside the soft tissue).
    pub thumb: Point,
    /// Centre of the capitate.
    pub capitate: Point,
}

impl KeyPoints {
    /// Whether the thumb lies on the image's right of the capitate→fingertip axis,
    /// as it does for a left hand seen postero-anteriorly (the standard view).
    pub fn thumb_on_right(&self) -> bool {
        let axis = self.fingertip - self.capitate;
        let t = self.thumb - self.capitate;
        // Cross product z of axis × t; with y down, positive means t is clockwise
        // of axis, i.e. to the right when the axis points up the image.
        axis.x * t.y - axis.y * t.x > 0.0
    }

    /// The hand's span: the distance from the middle fingertip to the capitate, the
    /// length that the front end's tolerances and errors are measured in.
    pub fn span(&self) -> f64 {
        self.fingertip.dist(self.capitate)
    }

    /// How far the hand's axis (capitate → fingertip) leans from upright, in radians,
    /// clockwise as seen (y down): 0 for fingers up, π/2 for fingers to the right.
    pub fn lean(&self) -> f64 {
        let axis = self.fingertip - self.capitate;
        axis.x.atan2(-axis.y)
    }

    /// Where the thumb tip lies in the hand's own frame, in fingertip–capitate spans:
    /// `(along, aside)`, how far from the capitate towards the fingertip (negative
    /// beyond the capitate, towards the wrist) and how far to the side of that axis
    /// (either side).
    pub fn thumb_in_hand(&self) -> (f64, f64) {
        // Across the axis towards the thumb's side: never negative for the thumb.
        self.offset_in_hand(self.thumb)
    }

    /// Why the thumb tip cannot be where it is, in words, or `None` when it lies
    /// where thumb tips lie: within [`THUMB_ALONG`] and [`THUMB_ASIDE`].
    pub fn misplaced_thumb(&self) -> Option<String> {
        let (along, aside) = self.thumb_in_hand();
        let pc = |v: f64| (100.0 * v).round();
        let place = if along < *THUMB_ALONG.start() {
            if along < 0.0 {
                format!(
                    "{:.0} % of the hand's length beyond the capitate, towards the wrist",
                    pc(-along)
                )
            } else {
                format!(
                    "level with the capitate ({:.0} % of the way to the fingertip)",
                    pc(along)
                )
            }
        } else if along > *THUMB_ALONG.end() {
            format!(
                "{:.0} % of the way from the capitate to the fingertip, among the fingertips",
                pc(along)
            )
        } else if !THUMB_ASIDE.contains(&aside) {
            format!("{:.0} % of the hand's length beside its axis", pc(aside))
        } else {
            return None;
        };
        Some(format!(
            "the thumb tip was placed {place}, where no thumb tip lies (the thumb may be \
             against the palm, laid flat or cut off)"
        ))
    }

    /// Where `p` lies from the capitate in the hand's own frame, in fingertip–capitate
    /// spans: `(along, across)`, + towards the fingertip and + towards the thumb's
    /// side of the axis (the side [`KeyPoints::thumb_on_right`] says).
    pub fn offset_in_hand(&self, p: Point) -> (f64, f64) {
        let (axis, side) = self.frame();
        let span = self.span().max(1e-9);
        let d = p - self.capitate;
        (d.dot(axis) / span, d.dot(side) / span)
    }

    /// The same key points with the capitate moved by `along` spans towards the
    /// fingertip and `across` spans towards the thumb's side (the inverse of
    /// [`KeyPoints::offset_in_hand`]): to carry points marked to one convention of the
    /// capitate's centre to another (`data/labels/README.md`).
    pub fn capitate_moved(&self, along: f64, across: f64) -> KeyPoints {
        let (axis, side) = self.frame();
        let span = self.span();
        KeyPoints {
            capitate: self.capitate + axis * (along * span) + side * (across * span),
            ..*self
        }
    }

    /// Unit vectors of the hand's frame: capitate → fingertip, and across it towards
    /// the thumb's side.
    fn frame(&self) -> (Point, Point) {
        let axis = (self.fingertip - self.capitate).unit();
        // `perp` turns the axis clockwise as seen (y down): the right of an upright
        // hand.
        let side = if self.thumb_on_right() {
            axis.perp()
        } else {
            -axis.perp()
        };
        (axis, side)
    }

    /// The three points carried by `map` (onto another image, canvas or field).
    pub fn mapped(&self, map: &Affine) -> KeyPoints {
        KeyPoints {
            fingertip: map.apply(self.fingertip),
            thumb: map.apply(self.thumb),
            capitate: map.apply(self.capitate),
        }
    }
}

/// Where a thumb tip may lie along the hand's axis, in fingertip–capitate spans from
/// the capitate ([`KeyPoints::thumb_in_hand`]): the 433 reviewed key-point sets of
/// `data/labels/keypoints.csv` outside `holdout-keypoints.txt` lie within 0.22–0.60,
/// widened here by more than a tenth of the span each way.
pub const THUMB_ALONG: std::ops::RangeInclusive<f64> = 0.10..=0.75;

/// How far to the side of the hand's axis a thumb tip may lie, in spans: the same
/// reviewed sets lie within 0.38–0.71, widened the same way.
pub const THUMB_ASIDE: std::ops::RangeInclusive<f64> = 0.25..=0.90;

const HEADER: &str = "id,fingertip_x,fingertip_y,thumb_x,thumb_y,capitate_x,capitate_y";

/// Writes `id,fingertip_x,fingertip_y,thumb_x,thumb_y,capitate_x,capitate_y`, atomically.
pub fn write_csv<'a>(
    path: &Path,
    rows: impl IntoIterator<Item = (&'a str, &'a KeyPoints)>,
) -> Result<()> {
    crate::io::write_atomic(path, |w| {
        use std::io::Write;
        writeln!(w, "{HEADER}")?;
        for (id, k) in rows {
            writeln!(
                w,
                "{id},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2}",
                k.fingertip.x, k.fingertip.y, k.thumb.x, k.thumb.y, k.capitate.x, k.capitate.y
            )?;
        }
        Ok(())
    })
}

/// An error about the table at `path`.
fn table_error(path: &Path, detail: String) -> Error {
    Error::Table {
        path: path.to_path_buf(),
        detail,
    }
}

/// The CSV reader of `path` (cells trimmed) and its header row.
fn open_table(path: &Path) -> Result<(csv::Reader<std::fs::File>, csv::StringRecord)> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = rdr
        .headers()
        .map_err(|e| table_error(path, e.to_string()))?
        .clone();
    Ok((rdr, headers))
}

/// Reads a key-point CSV written by [`write_csv`] (columns by name, any order).
pub fn read_csv(path: &Path) -> Result<BTreeMap<String, KeyPoints>> {
    let table = |detail: String| table_error(path, detail);
    let (mut rdr, headers) = open_table(path)?;
    let names: Vec<&str> = HEADER.split(',').collect();
    let mut cols = [0usize; 7];
    for (k, name) in names.iter().enumerate() {
        cols[k] = headers
            .iter()
            .position(|h| h == *name)
            .ok_or_else(|| table(format!("no column {name:?} (expected {HEADER})")))?;
    }
    let mut out = BTreeMap::new();
    for (row, rec) in rdr.records().enumerate() {
        let line = row + 2;
        let rec = rec.map_err(|e| table(format!("line {line}: {e}")))?;
        let mut v = [0f64; 6];
        for k in 0..6 {
            let text = rec.get(cols[k + 1]).unwrap_or("");
            v[k] = text
                .parse()
                .ok()
                .filter(|x: &f64| x.is_finite())
                .ok_or_else(|| {
                    table(format!(
                        "line {line}: {text:?} in {} is not a number",
                        names[k + 1]
                    ))
                })?;
        }
        let id = rec.get(cols[0]).unwrap_or("").to_string();
        out.insert(
            id,
            KeyPoints {
                fingertip: Point::new(v[0], v[1]),
                thumb: Point::new(v[2], v[3]),
                capitate: Point::new(v[4], v[5]),
            },
        );
    }
    Ok(out)
}

/// The optional `note` column of a key-point CSV (see [`read_csv`]), by id: empty
/// when the file has no such column, and only the rows whose note is not blank.
pub fn read_notes(path: &Path) -> Result<BTreeMap<String, String>> {
    let table = |detail: String| table_error(path, detail);
    let (mut rdr, headers) = open_table(path)?;
    let (Some(id), Some(note)) = (
        headers.iter().position(|h| h == "id"),
        headers.iter().position(|h| h == "note"),
    ) else {
        return Ok(BTreeMap::new());
    };
    let mut out = BTreeMap::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| table(format!("line {}: {e}", row + 2)))?;
        let text = rec.get(note).unwrap_or("");
        if !text.is_empty() {
            out.insert(rec.get(id).unwrap_or("").to_string(), text.to_string());
        }
    }
    Ok(out)
}

/// The refusals `boneage preprocess` lists beside its key points (`refused.csv`:
/// `id,file,kind,reason`), by id: the kind of each refusal.
pub fn read_refusals(path: &Path) -> Result<BTreeMap<String, String>> {
    let table = |detail: String| table_error(path, detail);
    let (mut rdr, headers) = open_table(path)?;
    let column = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| table(format!("no column {name:?} (expected id,file,kind,reason)")))
    };
    let (id, kind) = (column("id")?, column("kind")?);
    let mut out = BTreeMap::new();
    for (row, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(|e| table(format!("line {}: {e}", row + 2)))?;
        out.insert(
            rec.get(id).unwrap_or("").to_string(),
            rec.get(kind).unwrap_or("").to_string(),
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A left hand upright (thumb on the image's right) and the same hand mirrored.
    fn hands() -> [KeyPoints; 2] {
        let k = KeyPoints {
            fingertip: Point::new(100.0, 0.0),
            thumb: Point::new(160.0, 60.0),
            capitate: Point::new(100.0, 100.0),
        };
        let mirrored = KeyPoints {
            thumb: Point::new(40.0, 60.0),
            ..k
        };
        [k, mirrored]
    }

    #[test]
    fn the_capitate_moves_towards_the_fingertip_and_the_thumb() {
        let [k, mirrored] = hands();
        // 2 % of the 100-px span towards the fingertip (up), 1 % towards the thumb.
        let moved = k.capitate_moved(0.02, 0.01);
        assert!(moved.capitate.dist(Point::new(101.0, 98.0)) < 1e-9);
        let moved = mirrored.capitate_moved(0.02, 0.01);
        assert!(moved.capitate.dist(Point::new(99.0, 98.0)) < 1e-9);
        // Only the capitate moves.
        assert_eq!(
            (moved.fingertip, moved.thumb),
            (k.fingertip, mirrored.thumb)
        );
    }

    #[test]
    fn the_offset_in_the_hand_undoes_the_move() {
        for k in hands() {
            let moved = k.capitate_moved(-0.03, 0.015);
            let (along, across) = k.offset_in_hand(moved.capitate);
            assert!((along + 0.03).abs() < 1e-9 && (across - 0.015).abs() < 1e-9);
            // The thumb lies on the thumb's side: 0.4 of the span along, 0.6 aside,
            // either hand.
            let (along, aside) = k.thumb_in_hand();
            assert!((along - 0.4).abs() < 1e-12 && (aside - 0.6).abs() < 1e-12);
        }
    }
}
