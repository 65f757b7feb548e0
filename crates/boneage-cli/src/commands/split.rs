//! `boneage split`: a sex-stratified, seeded validation split written as an id list,
//! so that every model of an experiment is validated on the same films.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boneage_core::dataset::{Dataset, split_stratified};
use std::io::Write;

use boneage_core::Sex;
use boneage_core::io::write_atomic;

/// Arguments of `boneage split`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (RSNA layout: `DATA.csv` beside it, or `labels.csv` inside).
    data: PathBuf,
    /// How many images to hold out.
    #[arg(long, default_value_t = 100)]
    val: usize,
    /// Seed of the split.
    #[arg(long, default_value_t = 2017)]
    seed: u64,
    /// The id list to write (one id per line, `#` comments), for `--holdout`.
    #[arg(long)]
    out: PathBuf,
}

/// Writes the held-out ids of a sex-stratified split.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ds = Dataset::open_dir(&args.data)?;
    let split = split_stratified(&ds.samples, args.val, args.seed)?;
    let males = split
        .validation
        .iter()
        .filter(|&&i| ds.samples[i].sex == Sex::Male)
        .count();
    let mut text = format!(
        "# sex-stratified validation split: {} of the {} labelled images of {} ({} male, {} female), seed {}\n\
         # made by: boneage split {} --val {} --seed {} --out {}\n",
        split.validation.len(),
        ds.samples.len(),
        args.data.display(),
        males,
        split.validation.len() - males,
        args.seed,
        args.data.display(),
        args.val,
        args.seed,
        args.out.display()
    );
    for &i in &split.validation {
        text.push_str(&ds.samples[i].id);
        text.push('\n');
    }
    write_atomic(&args.out, |w| w.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{}: {} ids ({} male, {} female)",
        args.out.display(),
        split.validation.len(),
        males,
        split.validation.len() - males
    );
    Ok(ExitCode::SUCCESS)
}
