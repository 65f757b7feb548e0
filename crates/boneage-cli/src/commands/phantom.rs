//! `boneage phantom`: write a synthetic dataset.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use boneage_core::phantom::{AgePlan, PhantomConfig, write_dataset};

/// Arguments of `boneage phantom`.
#[derive(clap::Args)]
pub struct Args {
    /// Number of images.
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// Output folder (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Image size as WIDTHxHEIGHT in pixels (portrait, like the RSNA films).
    #[arg(long, default_value = "416x512", value_parser = crate::args::parse_size)]
    size: (usize, usize),
    /// Clean films only: upright, no exposure changes, noise, markers or borders.
    #[arg(long)]
    clean: bool,
    /// A maturity sweep instead of drawn ages: half girls, half boys, ages evenly
    /// spaced from 1 to 228 months.
    #[arg(long)]
    age_sweep: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = PhantomConfig {
        width: args.size.0,
        height: args.size.1,
        nuisances: !args.clean,
        ..PhantomConfig::default()
    };
    config.validate()?;
    let bar = crate::progress::progress_bar(args.n as u64, "phantoms");
    let start = Instant::now();
    let plan = if args.age_sweep {
        AgePlan::Sweep
    } else {
        AgePlan::Drawn
    };
    write_dataset(&args.out, args.n, args.seed, &config, plan, &|| bar.inc(1))
        .with_context(|| format!("writing phantoms to {}", args.out.display()))?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} phantoms ({}x{}) to {} in {secs:.1} s ({:.0} images/s)",
        args.n,
        config.width,
        config.height,
        args.out.display(),
        args.n as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}
