//! `boneage merge`: joins the parts of a sharded batch (`boneage assess LIST --shard
//! I/N --out DIR`) into one results CSV in the list's order.

use std::path::PathBuf;
use std::process::ExitCode;

use boneage::shard::{merge, write_merged};

use crate::exit;

/// Arguments of `boneage merge`.
#[derive(clap::Args)]
pub struct Args {
    /// The folder the parts wrote into (`part-I-of-N.csv`).
    dir: PathBuf,
    /// The joined results CSV.
    #[arg(long)]
    out: PathBuf,
}

/// Runs `boneage merge`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let m = merge(&args.dir)?;
    write_merged(&args.out, &m.lines)?;
    eprintln!(
        "{} films from {} of {} parts in {}",
        m.lines.len(),
        m.count - m.missing.len(),
        m.count,
        args.out.display()
    );
    if !m.missing.is_empty() {
        let parts: Vec<String> = m
            .missing
            .iter()
            .map(|i| format!("{i}/{}", m.count))
            .collect();
        eprintln!(
            "missing parts (run them, then merge again): {}",
            parts.join(", ")
        );
        return Ok(ExitCode::from(exit::SOME_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}
