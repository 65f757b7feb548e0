//! The answers of `boneage preprocess` runs scored against key points marked by hand,
//! without running the front end again.
//!
//! A run's folder holds `keypoints.csv` (the films it answered) and `refused.csv`
//! (the films it refused, with the kind of each refusal). Each film marked in one of
//! the truth files is right (all three points within [`BLIND_TOLERANCE`] of the marked
//! fingertip–capitate span), refused, wrong, or absent from the run; with two runs or
//! more, the films whose outcome differs from the first run's are listed. This is how
//! a change to the front end is judged on a thousand films run once
//! (`boneage preprocess … --out RUN`), rather than on each blind set run again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use boneage_core::io::{csv_field, write_atomic};
use boneage_core::keypoints::{self, KeyPoints};
use boneage_core::metrics::keypoint_errors;
use boneage_core::{Error, Result};

use crate::preprocess_eval::{BLIND_TOLERANCE, BlindTruth};
use crate::stress_eval::judge;

/// The answers and refusals of one `boneage preprocess` run.
pub struct Run {
    /// The run's folder.
    pub dir: PathBuf,
    /// The key points of each film answered (`keypoints.csv`).
    pub answers: BTreeMap<String, KeyPoints>,
    /// The kind of refusal of each film refused (`refused.csv`).
    pub refused: BTreeMap<String, String>,
}

impl Run {
    /// Reads `DIR/keypoints.csv` and `DIR/refused.csv`; the error names the folder
    /// when either is missing (a folder `boneage preprocess --out` did not write).
    pub fn read(dir: &Path) -> Result<Self> {
        let file = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(Error::Table {
                    path: dir.to_path_buf(),
                    detail: format!(
                        "no {name}: not the output folder of `boneage preprocess --out`"
                    ),
                })
            }
        };
        let answers = keypoints::read_csv(&file("keypoints.csv")?)?;
        let refused = keypoints::read_refusals(&file("refused.csv")?)?;
        if let Some(id) = answers.keys().find(|id| refused.contains_key(*id)) {
            return Err(Error::Table {
                path: dir.to_path_buf(),
                detail: format!("film {id} is both answered and refused"),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            answers,
            refused,
        })
    }

    /// The films the run answered or refused.
    fn films(&self) -> impl Iterator<Item = &String> {
        self.answers.keys().chain(self.refused.keys())
    }
}

/// One film's marks.
struct Mark {
    points: KeyPoints,
    /// Which truth file they come from (index into [`Marks::files`]).
    file: usize,
    flagged: bool,
}

/// Key points marked by hand, from one or more files (`data/labels/blind/*.csv`); a
/// film marked in more than one file takes the marks of the first file named.
pub struct Marks {
    files: Vec<PathBuf>,
    marks: BTreeMap<String, Mark>,
    /// Films marked again in a later file (its marks left unused).
    repeated: usize,
}

impl Marks {
    /// Reads each file (key-point CSVs with an optional `note` column).
    pub fn read(files: &[PathBuf]) -> Result<Self> {
        let mut marks = BTreeMap::new();
        let mut repeated = 0;
        for (file, path) in files.iter().enumerate() {
            let truth = BlindTruth::read(path)?;
            for (id, points) in &truth.points {
                if marks.contains_key(id) {
                    repeated += 1;
                    continue;
                }
                let flagged = truth.flagged(id);
                marks.insert(
                    id.clone(),
                    Mark {
                        points: *points,
                        file,
                        flagged,
                    },
                );
            }
        }
        Ok(Self {
            files: files.to_vec(),
            marks,
            repeated,
        })
    }
}

/// How a run came out on one marked film.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// All three points within [`BLIND_TOLERANCE`] of the marked hand's length, as
    /// `evaluate-preprocess --truth` judges ([`judge`]).
    Right,
    /// Refused, with the kind of refusal.
    Refused(String),
    /// Answered, with the error of the fingertip, the thumb tip and the capitate in
    /// fractions of the marked hand's length; at least one beyond [`BLIND_TOLERANCE`].
    Wrong([f64; 3]),
    /// Neither answered nor refused (a film the run did not read).
    Absent,
}

impl Outcome {
    /// The outcome of `run` on the film `id` marked `truth`.
    fn of(run: &Run, id: &str, truth: &KeyPoints) -> Self {
        if let Some(kind) = run.refused.get(id) {
            return Self::Refused(kind.clone());
        }
        let Some(found) = run.answers.get(id) else {
            return Self::Absent;
        };
        match judge(truth, Some(found), BLIND_TOLERANCE) {
            crate::stress_eval::Outcome::Correct => Self::Right,
            _ => {
                let span = truth.span().max(1e-9);
                Self::Wrong(keypoint_errors(truth, found).map(|d| d / span))
            }
        }
    }

    /// The column of the count table it falls in.
    fn column(&self) -> usize {
        match self {
            Self::Right => 0,
            Self::Refused(_) => 1,
            Self::Wrong(_) => 2,
            Self::Absent => 3,
        }
    }

    /// In words, for the tables (`wrong (6.4 % of the hand)`, `refused: kind`).
    pub fn describe(&self) -> String {
        match self {
            Self::Right => "right".into(),
            Self::Refused(kind) => format!("refused: {kind}"),
            Self::Wrong(e) => format!(
                "wrong ({:.1} % of the hand)",
                100.0 * e.iter().copied().fold(0.0, f64::max)
            ),
            Self::Absent => "not in the run".into(),
        }
    }

    /// The largest error in % of the hand (empty unless answered).
    fn worst(&self) -> Option<f64> {
        match self {
            Self::Wrong(e) => Some(100.0 * e.iter().copied().fold(0.0, f64::max)),
            _ => None,
        }
    }
}

/// Every run's outcome on every marked film, and what each run did beyond them.
pub struct Score {
    runs: Vec<PathBuf>,
    files: Vec<PathBuf>,
    repeated: usize,
    /// Per marked film (id order): which file, flagged, each run's outcome.
    films: Vec<(String, usize, bool, Vec<Outcome>)>,
    /// Per run: films answered and refused that no file marks.
    unmarked: Vec<[usize; 2]>,
    /// Per run after the first: films no file marks, answered by both, whose points
    /// moved by more than a pixel.
    moved: Vec<usize>,
}

/// Scores each run against `marks`. Only the films that some run answered or
/// refused are scored (a truth file may mark films of other folders too).
pub fn score(runs: &[Run], marks: &Marks) -> Score {
    let mut ids: Vec<&String> = runs.iter().flat_map(Run::films).collect();
    ids.sort();
    ids.dedup();
    let films = ids
        .iter()
        .filter_map(|id| {
            let m = marks.marks.get(*id)?;
            let outcomes = runs.iter().map(|r| Outcome::of(r, id, &m.points)).collect();
            Some(((*id).clone(), m.file, m.flagged, outcomes))
        })
        .collect();
    let unmarked = runs
        .iter()
        .map(|r| {
            let count = |ids: &mut dyn Iterator<Item = &String>| {
                ids.filter(|id| !marks.marks.contains_key(*id)).count()
            };
            [count(&mut r.answers.keys()), count(&mut r.refused.keys())]
        })
        .collect();
    let moved = runs
        .iter()
        .skip(1)
        .map(|r| {
            r.answers
                .iter()
                .filter(|(id, _)| !marks.marks.contains_key(*id))
                .filter_map(|(id, k)| Some((k, runs[0].answers.get(id)?)))
                .filter(|(a, b)| keypoint_errors(a, b).iter().any(|&d| d > 1.0))
                .count()
        })
        .collect();
    Score {
        runs: runs.iter().map(|r| r.dir.clone()).collect(),
        files: marks.files.clone(),
        repeated: marks.repeated,
        films,
        unmarked,
        moved,
    }
}

impl Score {
    /// Right, refused, wrong and absent counts of run `r`, over every marked film or
    /// the unflagged ones.
    pub fn counts(&self, r: usize, unflagged_only: bool) -> [usize; 4] {
        let mut c = [0; 4];
        for (_, _, flagged, o) in &self.films {
            if !(unflagged_only && *flagged) {
                c[o[r].column()] += 1;
            }
        }
        c
    }

    /// The films whose outcome in some run differs from the first run's (a wrong
    /// answer that stays wrong by another amount included), with every run's outcome.
    pub fn changed(&self) -> Vec<(&str, &[Outcome])> {
        self.films
            .iter()
            .filter(|(_, _, _, o)| o.iter().any(|x| *x != o[0]))
            .map(|(id, _, _, o)| (id.as_str(), o.as_slice()))
            .collect()
    }

    /// The report, in Markdown; `command` is the command line that made it.
    pub fn markdown(&self, command: &str) -> String {
        let name = |r: usize| format!("`{}`", self.runs[r].display());
        let per_file: Vec<String> = self
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let n = self.films.iter().filter(|x| x.1 == i).count();
                format!("`{}` {n}", f.display())
            })
            .collect();
        let flagged = self.films.iter().filter(|x| x.2).count();
        let mut md = format!(
            "# `boneage preprocess` answers against key points marked by hand\n\n\
             Made by `{command}`. {} films marked by hand are among the films the runs \
             read (by file: {}); {flagged} of them flagged in their notes as less certain; \
             {} marks of a film already marked in an earlier file left unused. Right: all \
             three key points within {:.0} % of the marked hand's length (fingertip to \
             capitate) of the marks; wrong: an answer that is not right.\n\n\
             | run | right | refused | wrong | not in the run | unflagged: right / refused / wrong | unmarked films answered / refused |\n\
             | --- | --- | --- | --- | --- | --- | --- |\n",
            self.films.len(),
            per_file.join(", "),
            self.repeated,
            100.0 * BLIND_TOLERANCE,
        );
        for r in 0..self.runs.len() {
            let [right, refused, wrong, absent] = self.counts(r, false);
            let [ur, uf, uw, _] = self.counts(r, true);
            let [ua, ud] = self.unmarked[r];
            md.push_str(&format!(
                "| {} | {right} | {refused} | {wrong} | {absent} | {ur} / {uf} / {uw} | {ua} / {ud} |\n",
                name(r)
            ));
        }
        for r in 0..self.runs.len() {
            let wrong: Vec<String> = self
                .films
                .iter()
                .filter_map(|(id, _, flagged, o)| match &o[r] {
                    Outcome::Wrong(e) => Some(format!(
                        "{id}{} ({:.1} / {:.1} / {:.1})",
                        if *flagged { "*" } else { "" },
                        100.0 * e[0],
                        100.0 * e[1],
                        100.0 * e[2]
                    )),
                    _ => None,
                })
                .collect();
            md.push_str(&format!(
                "\nWrong answers of {} (fingertip / thumb / capitate error, % of the hand; \
                 * flagged): {}.\n",
                name(r),
                if wrong.is_empty() {
                    "none".into()
                } else {
                    wrong.join(", ")
                }
            ));
        }
        // Refusals of marked films by kind, one column per run.
        let mut kinds: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (_, _, _, o) in &self.films {
            for (r, x) in o.iter().enumerate() {
                if let Outcome::Refused(kind) = x {
                    kinds
                        .entry(kind)
                        .or_insert_with(|| vec![0; self.runs.len()])[r] += 1;
                }
            }
        }
        if !kinds.is_empty() {
            md.push_str("\nRefusals of marked films by kind:\n\n| kind |");
            for r in 0..self.runs.len() {
                md.push_str(&format!(" {} |", name(r)));
            }
            md.push_str(&format!("\n| --- |{}\n", " --- |".repeat(self.runs.len())));
            let mut kinds: Vec<_> = kinds.into_iter().collect();
            kinds.sort_by_key(|(_, n)| std::cmp::Reverse(n.iter().sum::<usize>()));
            for (kind, n) in kinds {
                let cells: Vec<String> = n.iter().map(usize::to_string).collect();
                md.push_str(&format!("| {kind} | {} |\n", cells.join(" | ")));
            }
        }
        if self.runs.len() > 1 {
            let changed = self.changed();
            md.push_str(&format!(
                "\nMarked films whose outcome differs from {}'s: {}.\n",
                name(0),
                changed.len()
            ));
            if !changed.is_empty() {
                md.push_str("\n| film |");
                for r in 0..self.runs.len() {
                    md.push_str(&format!(" {} |", name(r)));
                }
                md.push_str(&format!("\n| --- |{}\n", " --- |".repeat(self.runs.len())));
                for (id, o) in changed {
                    let cells: Vec<String> = o.iter().map(Outcome::describe).collect();
                    md.push_str(&format!("| {id} | {} |\n", cells.join(" | ")));
                }
            }
            for r in 1..self.runs.len() {
                md.push_str(&format!(
                    "\nUnmarked films answered by both {} and {} whose points moved by more \
                     than a pixel: {}.\n",
                    name(0),
                    name(r),
                    self.moved[r - 1]
                ));
            }
        }
        md
    }

    /// One row per marked film: `id,truth,flagged`, then each run's outcome
    /// (`right`, `refused`, `wrong`, `absent`), its largest error in % of the hand
    /// (answered wrongly) and the kind of refusal; written atomically.
    pub fn write_csv(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        write_atomic(path, |w| {
            write!(w, "id,truth,flagged")?;
            for r in 1..=self.runs.len() {
                write!(w, ",outcome_{r},worst_percent_{r},refusal_{r}")?;
            }
            writeln!(w)?;
            for (id, file, flagged, o) in &self.films {
                write!(
                    w,
                    "{},{},{flagged}",
                    csv_field(id),
                    csv_field(&self.files[*file].display().to_string())
                )?;
                for x in o {
                    let word = ["right", "refused", "wrong", "absent"][x.column()];
                    let worst = x.worst().map_or(String::new(), |v| format!("{v:.2}"));
                    let kind = match x {
                        Outcome::Refused(k) => csv_field(k),
                        _ => String::new(),
                    };
                    write!(w, ",{word},{worst},{kind}")?;
                }
                writeln!(w)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boneage_core::geometry::Point;

    fn hand(dx: f64) -> KeyPoints {
        KeyPoints {
            fingertip: Point::new(100.0 + dx, 0.0),
            thumb: Point::new(160.0, 60.0),
            capitate: Point::new(100.0, 100.0),
        }
    }

    fn run(name: &str, answers: &[(&str, f64)], refused: &[(&str, &str)]) -> Run {
        Run {
            dir: PathBuf::from(name),
            answers: answers
                .iter()
                .map(|(id, dx)| (id.to_string(), hand(*dx)))
                .collect(),
            refused: refused
                .iter()
                .map(|(id, k)| (id.to_string(), k.to_string()))
                .collect(),
        }
    }

    fn marks(ids: &[&str]) -> Marks {
        Marks {
            files: vec![PathBuf::from("blind.csv")],
            marks: ids
                .iter()
                .map(|id| {
                    let m = Mark {
                        points: hand(0.0),
                        file: 0,
                        flagged: *id == "4",
                    };
                    (id.to_string(), m)
                })
                .collect(),
            repeated: 0,
        }
    }

    #[test]
    fn each_marked_film_is_right_refused_wrong_or_absent_and_changes_are_listed() {
        // The span is 100 px: 5 px off is right, 6 px wrong.
        let a = run(
            "a",
            &[("1", 5.0), ("2", 6.0), ("9", 0.0)],
            &[("3", "two hands")],
        );
        let b = run(
            "b",
            &[("1", 5.0), ("3", 0.0), ("4", 0.0), ("9", 3.0)],
            &[("2", "check: verifier")],
        );
        // Film 5 is in neither run: not scored.
        let m = marks(&["1", "2", "3", "4", "5"]);
        let s = score(&[a, b], &m);
        assert_eq!(s.counts(0, false), [1, 1, 1, 1]);
        assert_eq!(s.counts(1, false), [3, 1, 0, 0]);
        // Film 4 is flagged (and absent from the first run).
        assert_eq!(s.counts(0, true), [1, 1, 1, 0]);
        let changed: Vec<&str> = s.changed().iter().map(|(id, _)| *id).collect();
        assert_eq!(changed, ["2", "3", "4"]);
        assert_eq!(s.unmarked, [[1, 0], [1, 0]]);
        assert_eq!(s.moved, [1]);
        let md = s.markdown("boneage score-preprocess a b --truth blind.csv");
        assert!(
            md.contains("| `a` | 1 | 1 | 1 | 1 | 1 / 1 / 1 | 1 / 0 |"),
            "{md}"
        );
        assert!(md.contains("| 2 | wrong (6.0 % of the hand) | refused: check: verifier |"));
        assert!(md.contains("| two hands | 1 | 0 |"), "{md}");
    }
}
