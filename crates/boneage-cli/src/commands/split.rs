//! `boneage split`: a sex-stratified, seeded validation split written as an id list,
//! so that every model of an experiment is validated on the same films; or, with
//! `--folds K`, K folds for cross-validation (one id list per fold, each the
//! `--holdout` of the run that predicts it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use boneage_core::Sex;
use boneage_core::dataset::{Dataset, assign_folds, split_stratified};
use boneage_core::io::{create_dir, write_atomic};

/// Arguments of `boneage split`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folders (RSNA layout: `DATA.csv` beside each, or `labels.csv` inside);
    /// their labelled images are pooled (ids must not repeat).
    #[arg(required = true)]
    data: Vec<PathBuf>,
    /// How many images to hold out.
    #[arg(long, default_value_t = 100, conflicts_with = "folds")]
    val: usize,
    /// Cross-validation folds instead of one split: every image in exactly one fold,
    /// stratified by sex and bone age; --out is then a folder of `fold-1.txt` …
    #[arg(long, value_name = "K")]
    folds: Option<usize>,
    /// Seed of the split.
    #[arg(long, default_value_t = 2017)]
    seed: u64,
    /// The id list to write (one id per line, `#` comments), for `--holdout`; with
    /// --folds, the folder for the K lists.
    #[arg(long)]
    out: PathBuf,
}

fn write_ids(path: &Path, header: &str, ids: &[&str]) -> anyhow::Result<()> {
    let mut text = header.to_string();
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    write_atomic(path, |w| w.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// Writes the held-out ids of a sex-stratified split, or the K folds.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let samples = Dataset::open_dirs(&args.data)?.samples;
    let sources: Vec<String> = args.data.iter().map(|d| d.display().to_string()).collect();
    let sources = sources.join(" ");
    let males = |idx: &[usize]| idx.iter().filter(|&&i| samples[i].sex == Sex::Male).count();
    if let Some(k) = args.folds {
        let fold = assign_folds(&samples, k, args.seed)?;
        create_dir(&args.out)?;
        for f in 0..k {
            let idx: Vec<usize> = (0..samples.len()).filter(|&i| fold[i] == f).collect();
            let m = males(&idx);
            let header = format!(
                "# fold {} of {k} (stratified by sex and bone age): {} of the {} labelled images of {sources} ({m} male, {} female), seed {}\n\
                 # made by: boneage split {sources} --folds {k} --seed {} --out {}\n",
                f + 1,
                idx.len(),
                samples.len(),
                idx.len() - m,
                args.seed,
                args.seed,
                args.out.display()
            );
            let ids: Vec<&str> = idx.iter().map(|&i| samples[i].id.as_str()).collect();
            let path = args.out.join(format!("fold-{}.txt", f + 1));
            write_ids(&path, &header, &ids)?;
            eprintln!(
                "{}: {} ids ({m} male, {} female)",
                path.display(),
                idx.len(),
                idx.len() - m
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let split = split_stratified(&samples, args.val, args.seed)?;
    let m = males(&split.validation);
    let header = format!(
        "# sex-stratified validation split: {} of the {} labelled images of {sources} ({m} male, {} female), seed {}\n\
         # made by: boneage split {sources} --val {} --seed {} --out {}\n",
        split.validation.len(),
        samples.len(),
        split.validation.len() - m,
        args.seed,
        args.val,
        args.seed,
        args.out.display()
    );
    let ids: Vec<&str> = split
        .validation
        .iter()
        .map(|&i| samples[i].id.as_str())
        .collect();
    write_ids(&args.out, &header, &ids)?;
    eprintln!(
        "{}: {} ids ({m} male, {} female)",
        args.out.display(),
        split.validation.len(),
        split.validation.len() - m
    );
    Ok(ExitCode::SUCCESS)
}
