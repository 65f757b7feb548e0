//! Many films at once: a folder of radiographs, or a CSV list (`image,sex,age`, paths
//! relative to the list), with sex and true bone age from a labels table when there
//! is one; one result row per film (refusals and errors as rows), written as CSV,
//! and a summary with the MAE where the truth is known.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use boneage_core::dataset::read_labels;
use boneage_core::growth::{Comparison, parse_age};
use boneage_core::io::{csv_field, write_atomic};
use boneage_core::metrics::mean;
use boneage_core::{Sex, read_radiograph};

use crate::assessor::{Assessor, Patient};

/// File extensions a folder batch takes.
pub const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "dcm", "dicom", "dic"];

/// What cannot be made into a batch.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The folder or list cannot be read.
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        /// The folder or list.
        path: PathBuf,
        /// What went wrong (in the message, not chained).
        error: std::io::Error,
    },
    /// A line of the list is wrong.
    #[error("{}: {detail}", path.display())]
    List {
        /// The list.
        path: PathBuf,
        /// What is wrong, naming the line.
        detail: String,
    },
    /// The labels table cannot be read.
    #[error(transparent)]
    Labels(#[from] boneage_core::Error),
}

/// Whether `input` is a batch (a folder or a `.csv` list) rather than one film.
pub fn is_batch(input: &Path) -> bool {
    input.is_dir()
        || input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// One film of a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchItem {
    /// The file stem.
    pub id: String,
    /// The film.
    pub path: PathBuf,
    /// Sex from the list, the labels or the default.
    pub sex: Option<Sex>,
    /// Chronological age from the list, months.
    pub age: Option<f64>,
    /// True bone age from the labels, months.
    pub truth: Option<f64>,
}

/// A film's id: its file name without the extension.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The labels table of a batch: the one given, else for a folder `FOLDER.csv`
/// beside it or `FOLDER/labels.csv` inside.
pub fn labels_for(input: &Path, given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return Some(p.to_path_buf());
    }
    if !input.is_dir() {
        return None;
    }
    [input.with_extension("csv"), input.join("labels.csv")]
        .into_iter()
        .find(|p| p.is_file())
}

/// The films of a folder or a CSV list, with sex and truth from `labels` (a labels
/// table) and `default_sex` for films whose sex is known from nowhere else.
pub fn batch_items(
    input: &Path,
    labels: Option<&Path>,
    default_sex: Option<Sex>,
) -> Result<Vec<BatchItem>, BatchError> {
    let labels: BTreeMap<String, (f64, Sex)> = match labels {
        Some(p) => read_labels(p)?
            .into_iter()
            .map(|s| (s.id, (s.boneage_months, s.sex)))
            .collect(),
        None => BTreeMap::new(),
    };
    let read_error = |error| BatchError::Read {
        path: input.to_path_buf(),
        error,
    };
    let mut items = Vec::new();
    if input.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(input)
            .map_err(read_error)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| {
                    IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
                })
            })
            .collect();
        paths.sort();
        for path in paths {
            let id = stem(&path);
            let label = labels.get(&id);
            items.push(BatchItem {
                sex: label.map(|l| l.1).or(default_sex),
                truth: label.map(|l| l.0),
                age: None,
                id,
                path,
            });
        }
    } else {
        let text = std::fs::read_to_string(input).map_err(read_error)?;
        let bad = |detail: String| BatchError::List {
            path: input.to_path_buf(),
            detail,
        };
        let base = input.parent().unwrap_or(Path::new("."));
        let mut lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        let header: Vec<String> = lines
            .next()
            .ok_or_else(|| bad("empty list".into()))?
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let image_col = col("image")
            .ok_or_else(|| bad("no `image` column in the header line (image,sex,age)".into()))?;
        let (sex_col, age_col) = (col("sex"), col("age"));
        for (n, line) in lines.enumerate() {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let at = |what: String| bad(format!("data line {}: {what}", n + 1));
            let rel = f.get(image_col).ok_or_else(|| at("no image".into()))?;
            let path = base.join(rel);
            let id = stem(&path);
            let sex = match sex_col.and_then(|c| f.get(c)).filter(|v| !v.is_empty()) {
                Some(v) => Some(v.parse::<Sex>().map_err(at)?),
                None => labels.get(&id).map(|l| l.1).or(default_sex),
            };
            let age = match age_col.and_then(|c| f.get(c)).filter(|v| !v.is_empty()) {
                Some(v) => Some(
                    parse_age(v)
                        .ok_or_else(|| at(format!("age {v:?}: use e.g. 10y3m or months")))?,
                ),
                None => None,
            };
            items.push(BatchItem {
                truth: labels.get(&id).map(|l| l.0),
                id,
                path,
                sex,
                age,
            });
        }
    }
    if items.is_empty() {
        return Err(BatchError::List {
            path: input.to_path_buf(),
            detail: "no radiographs found".into(),
        });
    }
    Ok(items)
}

/// How one film of a batch went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchRow {
    /// The file stem.
    pub id: String,
    /// The film.
    pub file: String,
    /// "M" or "F" when known.
    pub sex: String,
    /// The bone age, months.
    pub bone_age: Option<f64>,
    /// The ensemble's spread, months.
    pub spread: Option<f64>,
    /// The bone age's interval (low, high), months, when the models are calibrated.
    pub interval: Option<(f64, f64)>,
    /// Each region's estimate, months.
    pub regions: [Option<f64>; 4],
    /// Against the chronological age.
    pub chrono: Option<Comparison>,
    /// The true bone age, months.
    pub truth: Option<f64>,
    /// How many pixels the film gives its hand ([`crate::resolution`]).
    pub resolution: Option<crate::resolution::Resolution>,
    /// Seconds for this film, reading included.
    pub seconds: f64,
    /// Empty when assessed; `refused: …` for a refusal, else the error.
    pub error: String,
}

impl BatchRow {
    /// Whether the front end refused the film.
    pub fn refused(&self) -> bool {
        self.error.starts_with("refused")
    }
}

/// Reads and assesses one film of a batch; `age` is the chronological age for
/// films whose list gives none (the film's header is the last resort).
pub fn assess_item(assessor: &Assessor, item: &BatchItem, age: Option<f64>) -> BatchRow {
    let t = Instant::now();
    let mut row = BatchRow {
        id: item.id.clone(),
        file: item.path.display().to_string(),
        truth: item.truth,
        ..BatchRow::default()
    };
    let result = read_radiograph(&item.path)
        .map_err(|e| e.to_string())
        .and_then(|r| {
            let sex = item.sex.or(r.meta.sex).ok_or_else(|| {
                "the patient's sex is unknown (not in the labels, the list or the header): give --sex"
                    .to_string()
            })?;
            let mut patient = Patient::new(sex);
            patient.age_months = item.age.or(age).or(r.meta.age_months);
            assessor
                .assess(&r, &patient)
                .map_err(|e| format!("refused: {e}"))
        });
    match result {
        Ok(a) => {
            let e = &a.estimate;
            row.sex = a.patient.sex.letter().to_string();
            row.bone_age = Some(e.months);
            row.spread = Some(e.spread);
            row.interval = e.calibrated.map(|c| (c.low, c.high));
            row.regions = e.regions;
            row.chrono = a.chronological;
            row.resolution = Some(a.resolution());
        }
        Err(e) => row.error = e,
    }
    row.seconds = t.elapsed().as_secs_f64();
    row
}

fn fmt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.2}"))
}

/// The header of a results CSV.
pub const RESULTS_HEADER: &str = "id,file,sex,bone_age_months,spread_months,interval_low_months,interval_high_months,region_a,region_b,region_c,region_d,chronological_age_months,difference_months,sds,verdict,true_bone_age_months,error_months,hand_span_px,low_resolution,seconds,error";

impl BatchRow {
    /// The row as a line of the results CSV (no newline).
    pub fn csv_line(&self) -> String {
        let c = self.chrono.as_ref();
        format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{}",
            csv_field(&self.id),
            csv_field(&self.file),
            self.sex,
            fmt(self.bone_age),
            fmt(self.spread),
            fmt(self.interval.map(|i| i.0)),
            fmt(self.interval.map(|i| i.1)),
            fmt(self.regions[0]),
            fmt(self.regions[1]),
            fmt(self.regions[2]),
            fmt(self.regions[3]),
            fmt(c.map(|c| c.chronological_months)),
            fmt(c.map(|c| c.difference_months)),
            fmt(c.map(|c| c.sds)),
            c.map_or("", |c| c.verdict.name()),
            fmt(self.truth),
            fmt(self.bone_age.zip(self.truth).map(|(b, t)| b - t)),
            fmt(self.resolution.map(|r| r.hand_span_px)),
            self.resolution
                .map_or("", |r| if r.low { "true" } else { "false" }),
            self.seconds,
            csv_field(&self.error)
        )
    }
}

/// Writes the rows as CSV, atomically.
pub fn write_results(out: &Path, rows: &[BatchRow]) -> boneage_core::Result<()> {
    write_atomic(out, |w| {
        writeln!(w, "{RESULTS_HEADER}")?;
        for r in rows {
            writeln!(w, "{}", r.csv_line())?;
        }
        Ok(())
    })
}

/// An MAE over a group of films.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupMae {
    /// The MAE, months.
    pub mae: f64,
    /// Films in the group.
    pub n: usize,
}

/// What a batch came to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchSummary {
    /// Films in the batch.
    pub films: usize,
    /// Films given a bone age.
    pub assessed: usize,
    /// Films the front end refused.
    pub refused: usize,
    /// Films that could not be read or had no sex.
    pub failed: usize,
    /// Assessed films with too few pixels for their hand ([`crate::resolution`]).
    pub low_resolution: usize,
    /// Mean seconds per film.
    pub mean_seconds: f64,
    /// MAE over the assessed films with a true bone age: all, boys, girls.
    pub mae: Option<[GroupMae; 3]>,
}

/// Counts and MAE of a batch's rows.
pub fn summarize(rows: &[BatchRow]) -> BatchSummary {
    let assessed = rows.iter().filter(|r| r.error.is_empty()).count();
    let refused = rows.iter().filter(|r| r.refused()).count();
    let group = |sex: Option<&str>| {
        let v: Vec<f64> = rows
            .iter()
            .filter(|r| sex.is_none_or(|s| r.sex == s))
            .filter_map(|r| Some((r.bone_age? - r.truth?).abs()))
            .collect();
        GroupMae {
            mae: mean(&v).unwrap_or(0.0),
            n: v.len(),
        }
    };
    let all = group(None);
    BatchSummary {
        films: rows.len(),
        assessed,
        refused,
        failed: rows.len() - assessed - refused,
        low_resolution: rows
            .iter()
            .filter(|r| r.resolution.is_some_and(|r| r.low))
            .count(),
        mean_seconds: mean(&rows.iter().map(|r| r.seconds).collect::<Vec<_>>()).unwrap_or(0.0),
        mae: (all.n > 0).then(|| [all, group(Some("M")), group(Some("F"))]),
    }
}

/// The MAE of a batch's rows so far, kept as they come (for progress messages:
/// constant work per row, however long the batch).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RunningMae {
    sum: f64,
    n: usize,
}

impl RunningMae {
    /// Counts `row` when it has both a bone age and a truth.
    pub fn add(&mut self, row: &BatchRow) {
        if let (Some(b), Some(t)) = (row.bone_age, row.truth) {
            self.sum += (b - t).abs();
            self.n += 1;
        }
    }

    /// The MAE so far, `None` before the first labelled film.
    pub fn value(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_takes_sex_and_age_and_names_its_bad_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let labels = tmp.path().join("labels.csv");
        std::fs::write(&labels, "id,boneage,male\na,100,True\nb,50,False\n").unwrap();
        let list = tmp.path().join("list.csv");
        std::fs::write(
            &list,
            "# films\nimage,sex,age\na.png,,10y\nsub/b.png,M,\nc.png,,\n",
        )
        .unwrap();
        let items = batch_items(&list, Some(&labels), Some(Sex::Female)).unwrap();
        assert_eq!(items.len(), 3);
        // Sex from the labels, the list, then the default; truth from the labels.
        assert_eq!(
            (items[0].sex, items[0].age, items[0].truth),
            (Some(Sex::Male), Some(120.0), Some(100.0))
        );
        assert_eq!((items[1].id.as_str(), items[1].sex), ("b", Some(Sex::Male)));
        assert_eq!(items[1].path, tmp.path().join("sub/b.png"));
        assert_eq!((items[2].sex, items[2].truth), (Some(Sex::Female), None));

        std::fs::write(&list, "image,sex\na.png,X\n").unwrap();
        let e = batch_items(&list, None, None).unwrap_err().to_string();
        assert!(
            e.contains("list.csv") && e.contains("data line 1") && e.contains("use M or F"),
            "{e}"
        );
        std::fs::write(&list, "file\na.png\n").unwrap();
        let e = batch_items(&list, None, None).unwrap_err().to_string();
        assert!(e.contains("no `image` column"), "{e}");
    }

    #[test]
    fn the_summary_counts_refusals_and_the_mae_by_sex() {
        let row = |sex: &str, age: Option<f64>, truth: f64, error: &str| BatchRow {
            sex: sex.into(),
            bone_age: age,
            truth: Some(truth),
            error: error.into(),
            ..BatchRow::default()
        };
        let rows = [
            row("M", Some(110.0), 100.0, ""),
            row("F", Some(40.0), 50.0, ""),
            row("F", Some(56.0), 50.0, ""),
            row("", None, 70.0, "refused: no hand found"),
            row("", None, 70.0, "x.png: cannot read"),
        ];
        let s = summarize(&rows);
        assert_eq!((s.films, s.assessed, s.refused, s.failed), (5, 3, 1, 1));
        let [all, m, f] = s.mae.unwrap();
        assert!((all.mae - 26.0 / 3.0).abs() < 1e-12 && all.n == 3);
        assert_eq!((m.mae, m.n), (10.0, 1));
        assert_eq!((f.mae, f.n), (8.0, 2));
        let mut running = RunningMae::default();
        for r in &rows {
            running.add(r);
        }
        assert_eq!(running.value(), Some(26.0 / 3.0));
    }
}
