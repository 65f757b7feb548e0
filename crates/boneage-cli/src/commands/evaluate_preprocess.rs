//! `boneage evaluate-preprocess`: the front end's accuracy on the held-out reviewed
//! labels (`boneage::preprocess_eval`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use boneage::preprocess_eval::evaluate_front_end;
use boneage::stress_eval::stress_suite;
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::registration::Canvas;
use boneage_nn::pipeline::Pipeline;

use crate::progress::Bars;

/// Arguments of `boneage evaluate-preprocess`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder the labels belong to.
    data: PathBuf,
    /// Label folder (`masks/`, `keypoints.csv`, `holdout-masks.txt`,
    /// `holdout-keypoints.txt`).
    #[arg(long)]
    labels: PathBuf,
    /// Folder with the weights (default: `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Write the report (Markdown) here as well as printing it.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write a contact sheet: held-out hands registered with predicted points
    /// (with --stress: one row per transform).
    #[arg(long, value_name = "PNG")]
    sheet: Option<PathBuf>,
    /// Run the stress suite instead: each held-out film turned by 0–330° in 30°
    /// steps, mirrored, shrunk onto a larger field, inverted, in a narrow window,
    /// under- and over-exposed, already segmented; correct / refused / wrong each.
    #[arg(long)]
    stress: bool,
    /// With --stress: how many held-out films (21 transforms each).
    #[arg(long, default_value_t = 100, requires = "stress")]
    films: usize,
}

/// Runs `boneage evaluate-preprocess`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let models = ModelsDir::locate(args.models.as_deref())?;
    let pipeline = Pipeline::load(&models.path, Canvas::CPU, &device.device()?)?;
    let bars = Bars::default();
    let (data, labels, sheet) = (&args.data, &args.labels, args.sheet.as_deref());
    let report = if args.stress {
        stress_suite(&pipeline, data, labels, args.films, sheet, &bars)?
    } else {
        evaluate_front_end(&pipeline, data, labels, sheet, &bars)?
    };
    print!("{report}");
    if let Some(path) = &args.report {
        boneage_core::io::write_atomic(path, |w| w.write_all(report.as_bytes()))?;
        eprintln!("report: {}", path.display());
    }
    if let Some(sheet) = &args.sheet {
        eprintln!("sheet: {}", sheet.display());
    }
    Ok(ExitCode::SUCCESS)
}
