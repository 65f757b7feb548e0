//! `boneage review`: records a reviewer's decisions on a mining round, sheet by
//! sheet (`--sheet K --reject 3,17`) or on a web page (`--serve`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boneage::mining::review_sheet;
use boneage_core::dataset::Dataset;
use boneage_core::labels::{Labels, Round, parse_tile_numbers};

/// Arguments of `boneage review`.
#[derive(clap::Args)]
pub struct Args {
    /// The round's work folder written by `boneage mine`.
    round_dir: PathBuf,
    /// Label folder with the accepted labels and the review log.
    #[arg(long)]
    labels: PathBuf,
    /// Sheet number (1-based) the decisions are about.
    #[arg(long, required_unless_present = "serve")]
    sheet: Option<usize>,
    /// Tile numbers on that sheet that are rejected, e.g. `3,17,20-22`; every other tile
    /// of the sheet is accepted.
    #[arg(long, default_value = "")]
    reject: String,
    /// Serve a review page instead (one key per decision, clicks to set key points)
    /// at this address.
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:8765", conflicts_with = "sheet")]
    serve: Option<String>,
    /// Dataset folder the round was mined from (the review page shows its images).
    #[arg(long, requires = "serve")]
    data: Option<PathBuf>,
}

/// Runs `boneage review`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let round = Round::open(&args.round_dir)?;
    let labels = Labels::new(&args.labels);
    if let Some(addr) = &args.serve {
        let data = args
            .data
            .as_deref()
            .context("--serve needs --data, the dataset folder the round was mined from")?;
        boneage::review_web::serve(round, labels, Dataset::open_dir(data)?, addr)?;
        return Ok(ExitCode::SUCCESS);
    }
    let sheet = args.sheet.context("--sheet is needed without --serve")?;
    let reject = parse_tile_numbers(&args.reject).map_err(|e| anyhow::anyhow!("--reject: {e}"))?;
    let (acc, rej) = review_sheet(&round, &labels, sheet, &reject)?;
    eprintln!(
        "sheet {sheet}: {acc} accepted, {rej} rejected; log {}",
        labels.log_path().display()
    );
    Ok(ExitCode::SUCCESS)
}
