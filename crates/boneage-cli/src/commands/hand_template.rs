//! `boneage hand-template`: build the check after registration — the mean registered
//! hand and its limits (`boneage::registration_check`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use boneage::registration_check::{build_template, split_films};
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::dataset::Dataset;
use boneage_core::registration::Canvas;
use boneage_nn::pipeline::Pipeline;

use crate::args::repeated;
use crate::progress::Bars;

/// Arguments of `boneage hand-template`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder of the films.
    data: PathBuf,
    /// More dataset folders.
    #[arg(long, value_name = "DIR")]
    also: Vec<PathBuf>,
    /// Reviewed key points (e.g. `data/labels/keypoints.csv`): the films it lists are
    /// registered with them and their U-Net masks averaged.
    #[arg(long, value_name = "CSV")]
    keypoints: PathBuf,
    /// Films (an id list) kept out of the template whose correct registrations set
    /// the limits (e.g. `data/labels/holdout-keypoints.txt`).
    #[arg(long, value_name = "LIST")]
    tune: PathBuf,
    /// Films (an id list) to leave out altogether; repeatable.
    #[arg(long, value_name = "LIST")]
    exclude: Vec<PathBuf>,
    /// Folder with the U-Net (default: `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Where to write `hand_template.png` and `hand_template.json`.
    #[arg(long)]
    out: PathBuf,
    /// Write the report on the tuning films (Markdown) here as well as printing it.
    #[arg(long)]
    report: Option<PathBuf>,
}

/// Runs `boneage hand-template`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let models = ModelsDir::locate(args.models.as_deref())?;
    let mut pipeline = Pipeline::load_without_check(&models.path, Canvas::CPU, &device.device()?)?;
    let dirs: Vec<PathBuf> = std::iter::once(args.data.clone())
        .chain(args.also.iter().cloned())
        .collect();
    let ds = Dataset::open_dirs(&dirs)?;
    let (build, tune) = split_films(&ds, &args.keypoints, &args.tune, &args.exclude)?;
    let command = format!(
        "boneage hand-template {}{} --keypoints {} --tune {}{} --out {}",
        args.data.display(),
        repeated("also", &args.also),
        args.keypoints.display(),
        args.tune.display(),
        repeated("exclude", &args.exclude),
        args.out.display()
    );
    let moved: Vec<String> = pipeline
        .refiners
        .iter()
        .map(|r| format!("the {} moved by its net", r.point))
        .collect();
    let moved = if moved.is_empty() {
        String::new()
    } else {
        format!(" ({})", moved.join(", "))
    };
    let made_by = format!(
        "the U-Net's masks of {} films registered with their reviewed key points ({}){moved}, \
         averaged; the limits pass every correct registration of the {} films of {} with a \
         margin; by `{command}`",
        build.len(),
        args.keypoints.display(),
        tune.len(),
        args.tune.display()
    );
    let (template, report) = build_template(
        &mut pipeline,
        &ds,
        &build,
        &tune,
        &made_by,
        &Bars::default(),
    )?;
    std::fs::create_dir_all(&args.out)?;
    template.save(&args.out)?;
    let report = format!("# The check after registration, on its tuning films\n\n{report}");
    print!("{report}");
    if let Some(path) = &args.report {
        boneage_core::io::write_atomic(path, |w| w.write_all(report.as_bytes()))?;
        eprintln!("report: {}", path.display());
    }
    eprintln!(
        "template: {}",
        args.out.join("hand_template.json").display()
    );
    Ok(ExitCode::SUCCESS)
}
