//! A batch split into parts for job schedulers (a Kubernetes Indexed Job, a Slurm
//! array): part `I` of `N` takes the films `k` of the list with `k mod N = I`, and
//! writes its own results file `part-I-of-N.csv`, one line per film appended as it
//! is done, so that a part killed and run again skips what it finished; `merge`
//! joins the parts back into the list's order.

use std::collections::BTreeSet;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use boneage_core::Error;
use boneage_core::io::write_atomic;

use crate::batch::{BatchItem, BatchRow, RESULTS_HEADER};

/// Part `index` (0-based, as `JOB_COMPLETION_INDEX`) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, `0 ≤ index < count`.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("{s:?}: use I/N with 0 <= I < N, e.g. 0/3 (I as JOB_COMPLETION_INDEX)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// This part's films of the list.
    pub fn items(&self, items: &[BatchItem]) -> Vec<BatchItem> {
        items
            .iter()
            .skip(self.index)
            .step_by(self.count)
            .cloned()
            .collect()
    }

    /// This part's results file in `dir`.
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(format!("part-{}-of-{}.csv", self.index, self.count))
    }
}

fn table(path: &Path, detail: String) -> Error {
    Error::Table {
        path: path.to_path_buf(),
        detail,
    }
}

/// The complete lines of a results file (without the header). A last line that a
/// kill cut short is dropped from the file (rewritten atomically).
fn complete_lines(path: &Path) -> Result<Vec<String>, Error> {
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).map_err(|e| table(path, e.to_string()))?;
    let mut lines: Vec<&str> = text.split_inclusive('\n').collect();
    if lines.first().map(|l| l.trim_end()) != Some(RESULTS_HEADER) {
        return Err(table(
            path,
            "not a boneage results file (header differs)".into(),
        ));
    }
    if lines.last().is_some_and(|l| !l.ends_with('\n')) {
        lines.pop();
        let kept: String = lines.concat();
        write_atomic(path, |w| w.write_all(kept.as_bytes()))?;
    }
    Ok(lines[1..]
        .iter()
        .map(|l| l.trim_end().to_string())
        .collect())
}

/// The ids a part's results file already holds.
pub fn done_ids(path: &Path) -> Result<BTreeSet<String>, Error> {
    Ok(complete_lines(path)?
        .iter()
        .map(|l| {
            l.split(',')
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .collect())
}

/// Appends one film's row to a part's results file (the header first when the file
/// is new), in one write so that a kill leaves whole lines or a cut last line.
pub fn append_row(path: &Path, row: &BatchRow) -> Result<(), Error> {
    let mut line = String::new();
    if !path.is_file() {
        line.push_str(RESULTS_HEADER);
        line.push('\n');
    }
    line.push_str(&row.csv_line());
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .map_err(|e| Error::Write {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
}

/// What `merge` found.
#[derive(Debug)]
pub struct Merged {
    /// The result lines (no header), in the list's order.
    pub lines: Vec<String>,
    /// The parts' count.
    pub count: usize,
    /// Parts with no results file.
    pub missing: Vec<usize>,
}

/// Joins the parts `part-I-of-N.csv` in `dir` into the list's order: line `j` of part
/// `i` is film `j·N + i` of the list.
pub fn merge(dir: &Path) -> Result<Merged, Error> {
    let mut parts: Vec<(usize, usize, PathBuf)> = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| table(dir, e.to_string()))?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let parsed = name
            .strip_prefix("part-")
            .and_then(|r| r.strip_suffix(".csv"))
            .and_then(|r| r.split_once("-of-"))
            .and_then(|(i, n)| Some((i.parse().ok()?, n.parse().ok()?)));
        if let Some((i, n)) = parsed {
            parts.push((i, n, e.path()));
        }
    }
    let Some(&(_, count, _)) = parts.first() else {
        return Err(table(dir, "no part-I-of-N.csv files here".into()));
    };
    if let Some((_, n, p)) = parts.iter().find(|p| p.1 != count) {
        return Err(table(
            p,
            format!("a part of {n}, where the others are of {count}"),
        ));
    }
    parts.sort();
    let mut columns: Vec<Vec<String>> = vec![Vec::new(); count];
    for (i, _, p) in &parts {
        columns[*i] = complete_lines(p)?;
    }
    let present: BTreeSet<usize> = parts.iter().map(|p| p.0).collect();
    let missing = (0..count).filter(|i| !present.contains(i)).collect();
    let longest = columns.iter().map(Vec::len).max().unwrap_or(0);
    let mut lines = Vec::new();
    for j in 0..longest {
        for col in &columns {
            if let Some(l) = col.get(j) {
                lines.push(l.clone());
            }
        }
    }
    Ok(Merged {
        lines,
        count,
        missing,
    })
}

/// Writes merged lines as a results CSV, atomically.
pub fn write_merged(out: &Path, lines: &[String]) -> Result<(), Error> {
    write_atomic(out, |w| {
        writeln!(w, "{RESULTS_HEADER}")?;
        for l in lines {
            writeln!(w, "{l}")?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str) -> BatchRow {
        BatchRow {
            id: id.into(),
            file: format!("{id}.png"),
            error: "refused: no hand found".into(),
            ..BatchRow::default()
        }
    }

    #[test]
    fn parts_cover_the_list_once_and_merge_back_in_order() {
        assert_eq!("1/3".parse::<Shard>(), Ok(Shard { index: 1, count: 3 }));
        assert!("3/3".parse::<Shard>().is_err() && "x".parse::<Shard>().is_err());
        let items: Vec<BatchItem> = (0..7)
            .map(|k| BatchItem {
                id: format!("f{k}"),
                path: format!("f{k}.png").into(),
                sex: None,
                age: None,
                truth: None,
            })
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        for i in 0..3 {
            let shard = Shard { index: i, count: 3 };
            for item in shard.items(&items) {
                append_row(&shard.path(tmp.path()), &row(&item.id)).unwrap();
            }
        }
        let m = merge(tmp.path()).unwrap();
        let ids: Vec<&str> = m
            .lines
            .iter()
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(ids, ["f0", "f1", "f2", "f3", "f4", "f5", "f6"]);
        assert!(m.missing.is_empty());

        // A kill mid-line: the cut line is dropped, the whole ones count as done.
        let p = Shard { index: 0, count: 3 }.path(tmp.path());
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str("f9,f9.pn");
        std::fs::write(&p, text).unwrap();
        assert_eq!(
            done_ids(&p).unwrap(),
            BTreeSet::from(["f0".into(), "f3".into(), "f6".into()])
        );
        assert!(std::fs::read_to_string(&p).unwrap().ends_with('\n'));
    }
}
