//! `boneage`: pediatric bone age assessment from hand radiographs.
//!
//! Each subcommand turns its arguments into a library call; see `commands/`.

mod args;
mod commands;
mod exit;
mod progress;

use std::process::ExitCode;

use boneage::DeviceChoice;
use clap::{Parser, Subcommand};

/// Pediatric bone age assessment (Iglovikov et al. 2018) from hand radiographs.
#[derive(Parser)]
#[command(name = "boneage", version, about, long_about = None)]
struct Cli {
    /// Where the networks run: cpu, or wgpu (a GPU; needs a build with `--features wgpu`).
    #[arg(long, global = true, value_enum, default_value_t = DeviceChoice::Cpu)]
    device: DeviceChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bone age of a radiograph (or a folder / CSV list of them) with the shipped models.
    Assess(commands::assess::Args),
    /// Generate a synthetic hand-phantom dataset (RSNA layout plus masks and key points).
    Phantom(commands::phantom::Args),
    /// Read radiographs (PNG, JPEG, DICOM) and report what was read.
    Inspect(commands::inspect::Args),
    /// Draw a contact sheet of a dataset's images, sorted by bone age.
    Sheet(commands::sheet::Args),
    /// The bone-age service: REST API, web page, audit store (`/openapi.json`).
    Serve(commands::serve::Args),
    /// Hand masks for radiographs (the shipped U-Net, or the classical baseline).
    Segment(commands::segment::Args),
    /// The three key points of radiographs (the shipped key-point net).
    Keypoints(commands::keypoints::Args),
    /// Segment, normalize, find key points, register and crop the regions.
    Preprocess(commands::preprocess::Args),
    /// Accuracy of segmentation, key points and registration on held-out labels or
    /// against key points marked blind; the stress suite.
    EvaluatePreprocess(commands::evaluate_preprocess::Args),
    /// Score `boneage preprocess` runs against key points marked by hand, without
    /// running the front end; with two runs, the films whose outcome changed.
    ScorePreprocess(commands::score_preprocess::Args),
    /// Build the check after registration: the mean registered hand and its limits.
    HandTemplate(commands::hand_template::Args),
    /// The bone-age models on a validation split: the paper's Fig. 8 and Fig. 9, scatter, bias.
    Evaluate(commands::evaluate::Args),
    /// Copy trained weights into a models folder, optionally in half precision.
    Export(commands::export::Args),
    /// Register radiographs from key points: canvas, region crops and overlays.
    Register(commands::register::Args),
    /// Positive mining: candidate masks or key points and numbered review sheets for one round.
    Mine(commands::mine::Args),
    /// Record a reviewer's decisions on a mining round: by sheet, or on a web page.
    Review(commands::review::Args),
    /// Set key points by hand: a coordinate grid to read them off, then the numbers.
    Annotate(commands::annotate::Args),
    /// Join the parts of a sharded batch (`assess --shard I/N`) into one results CSV.
    Merge(commands::merge::Args),
    /// Write a sex-stratified validation split (an id list for `--holdout`).
    Split(commands::split::Args),
    /// Train the U-Net, the key-point net or a bone-age net (resumable).
    Train(commands::train::Args),
    /// Benchmarks against reference implementations, measured in the same run.
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let device = cli.device;
    let result = match cli.command {
        Command::Assess(args) => commands::assess::run(args, device),
        Command::Phantom(args) => commands::phantom::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
        Command::Sheet(args) => commands::sheet::run(args),
        Command::Serve(args) => commands::serve::run(args, device),
        Command::Segment(args) => commands::segment::run(args, device),
        Command::Keypoints(args) => commands::keypoints::run(args, device),
        Command::Preprocess(args) => commands::preprocess::run(args, device),
        Command::EvaluatePreprocess(args) => commands::evaluate_preprocess::run(args, device),
        Command::ScorePreprocess(args) => commands::score_preprocess::run(args),
        Command::HandTemplate(args) => commands::hand_template::run(args, device),
        Command::Evaluate(args) => commands::evaluate::run(args, device),
        Command::Export(args) => commands::export::run(args),
        Command::Register(args) => commands::register::run(args),
        Command::Mine(args) => commands::mine::run(args, device),
        Command::Review(args) => commands::review::run(args),
        Command::Annotate(args) => commands::annotate::run(args),
        Command::Merge(args) => commands::merge::run(args),
        Command::Split(args) => commands::split::run(args),
        Command::Train(args) => commands::train::run(args, device),
        Command::Bench(args) => commands::bench::run(args, device),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}
