//! `boneage mine`: one round of positive mining: a candidate mask (or key points)
//! for every film without an accepted one, on numbered review sheets
//! (`boneage::mining`; the label store is `boneage_core::labels`).

use std::path::PathBuf;
use std::process::ExitCode;

use boneage::DeviceChoice;
use boneage::mining::{Proposer, RoundSpec, mine_round};
use boneage_core::dataset::Dataset;
use boneage_core::labels::{LabelKind, Labels};

use crate::exit;
use crate::progress::Bars;

/// Arguments of `boneage mine`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (RSNA layout: `DATA.csv` beside it, or `labels.csv` inside).
    data: PathBuf,
    /// Label folder with the accepted labels and the review log.
    #[arg(long)]
    labels: PathBuf,
    /// Round number (masks: 0 is the classical baseline).
    #[arg(long, default_value_t = 0)]
    round: u32,
    /// What to propose: masks, or key points for the images with an accepted mask.
    #[arg(long, value_enum, default_value_t = LabelKind::Mask)]
    kind: LabelKind,
    /// Work folder for this round's candidates and sheets.
    #[arg(long)]
    out: PathBuf,
    /// Weights that make the candidates: a U-Net (`boneage train segment`; required
    /// for mask rounds after 0) or a key-point net (`boneage train keypoints`; without
    /// it key points come from the mask's geometry).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Cut thin appendages off the candidate masks (narrower than 1.4 % of the film's
    /// longer side, e.g. a strip of the cassette edge joined to the forearm).
    #[arg(long)]
    trim_strips: bool,
    /// Open gaps between fingers that the candidate mask bridged (pixels near the
    /// mask's edge darker than halfway between skin and the air outside are cut).
    #[arg(long)]
    refine_gaps: bool,
}

/// Runs `boneage mine`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let d = device.device()?;
    let proposer = Proposer::for_round(args.kind, args.model.as_deref(), args.round, &d)?;
    let ds = Dataset::open_dir(&args.data)?;
    let labels = Labels::new(&args.labels);
    let spec = RoundSpec {
        round: args.round,
        kind: args.kind,
        trim_strips: args.trim_strips,
        refine_gaps: args.refine_gaps,
    };
    let s = mine_round(&ds, &labels, &args.out, &proposer, &spec, &Bars::default())?;
    for e in &s.failed {
        eprintln!("error: {e}");
    }
    if s.no_candidate > 0 {
        eprintln!(
            "{} masks gave no key-point candidate (no finger found); annotate those by hand",
            s.no_candidate
        );
    }
    eprintln!(
        "{} candidates on {} sheets in {} (index.csv maps sheet and tile to id)",
        s.candidates,
        s.sheets,
        args.out.display()
    );
    Ok(exit::failures(s.failed.len()))
}
