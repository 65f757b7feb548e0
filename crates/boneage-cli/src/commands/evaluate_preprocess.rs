//! `boneage evaluate-preprocess`: the front end's accuracy on the held-out reviewed
//! labels, or on key points marked blind (`boneage::preprocess_eval`), and the stress
//! suite (`boneage::stress_eval`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use boneage::at_once::jobs_for;
use boneage::preprocess_eval::{BlindTruth, evaluate_blind, evaluate_front_end};
use boneage::registration_check::evaluate_check;
use boneage::stress_eval::{StressFilms, holdout_films, stress_suite};
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::dataset::Dataset;
use boneage_core::hand_template::HandTemplate;
use boneage_core::registration::Canvas;
use boneage_nn::pipeline::Pipeline;

use crate::args::{FrontEnd, at_least_one, repeated};
use crate::progress::Bars;

/// Arguments of `boneage evaluate-preprocess`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder the labels belong to.
    data: PathBuf,
    /// More dataset folders (with --truth: films of the truth may be in any of them).
    #[arg(long, value_name = "DIR", requires = "truth")]
    also: Vec<PathBuf>,
    /// Label folder (`masks/`, `keypoints.csv`, `holdout-masks.txt`,
    /// `holdout-keypoints.txt`).
    #[arg(long, required_unless_present = "truth", conflicts_with = "truth")]
    labels: Option<PathBuf>,
    /// Measure against key points marked blind instead (a key-point CSV with an
    /// optional `note` column, as `data/labels/blind/keypoints.csv`): every film it
    /// lists is run through the front end; with --stress, its unflagged films.
    #[arg(long, value_name = "CSV")]
    truth: Option<PathBuf>,
    /// Folder with the weights (default: `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Write the report (Markdown) here as well as printing it.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Also write a contact sheet: held-out hands registered with predicted points
    /// (with --truth: the films registered wrongly; with --stress: one row per
    /// transform, its wrong answers first with the truth in white, then refused films).
    #[arg(long, value_name = "PNG")]
    sheet: Option<PathBuf>,
    /// Run the stress suite instead: each held-out film turned by 0–330° in 30°
    /// steps, mirrored, shrunk onto a larger field, inverted, in a narrow window,
    /// under- and over-exposed, already segmented; correct / refused / wrong each.
    #[arg(long)]
    stress: bool,
    /// Measure the check after registration instead (with --truth): correct
    /// registrations it refuses, registrations made wrong on purpose (fingertip on a
    /// neighbouring finger, thumb mirrored, capitate moved) it catches, and the front
    /// end's answers without and with it.
    #[arg(long, requires = "truth", conflicts_with = "stress")]
    check: bool,
    /// Take the check's template (`hand_template.png` and `.json`) from this folder
    /// instead of the models'.
    #[arg(long, value_name = "DIR")]
    template: Option<PathBuf>,
    #[command(flatten)]
    front_end: FrontEnd,
    /// With --stress: how many films at most (21 transforms each).
    #[arg(long, default_value_t = 100, requires = "stress")]
    films: usize,
    /// With --stress: only the transforms whose short name contains this (e.g.
    /// `shrunk`... as named on the sheet: `turned 30°`, `% on`, `inverted`,
    /// `over-exposed`); repeat for several.
    #[arg(long, value_name = "TEXT", requires = "stress")]
    only: Vec<String>,
    /// With --stress, or --truth without --check: films read at once, each on a core
    /// of its own (default: one a core on the CPU, one at a time on a GPU; 1 reads
    /// them one after another).
    #[arg(long, short = 'j', value_name = "N", value_parser = at_least_one)]
    jobs: Option<usize>,
}

impl Args {
    /// The options that set the front end, as they were given (empty for the shipped
    /// front end): for the reports' "Made by", so that a report names what it measured.
    fn front_end_flags(&self) -> String {
        let mut flags = String::new();
        if let Some(dir) = &self.models {
            flags += &format!(" --models {}", dir.display());
        }
        if let Some(dir) = &self.template {
            flags += &format!(" --template {}", dir.display());
        }
        flags + &self.front_end.flags()
    }

    /// The `--only` options as given, for the stress report's "Made by".
    fn only_flags(&self) -> String {
        self.only.iter().map(|o| format!(" --only '{o}'")).collect()
    }
}

/// Runs `boneage evaluate-preprocess`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let models = ModelsDir::locate(args.models.as_deref())?;
    let mut pipeline = Pipeline::load(&models.path, Canvas::CPU, &device.device()?)?;
    if let Some(dir) = &args.template {
        let template = HandTemplate::load(dir)?
            .ok_or_else(|| anyhow::anyhow!("{}: no hand_template.json there", dir.display()))?;
        pipeline.set_template(Some(template));
    }
    args.front_end.apply(&mut pipeline);
    let bars = Bars::default();
    let sheet = args.sheet.as_deref();
    let jobs = jobs_for(args.jobs, device);
    let flags = args.front_end_flags();
    let dirs: Vec<PathBuf> = std::iter::once(args.data.clone())
        .chain(args.also.iter().cloned())
        .collect();
    let report = match (&args.truth, &args.labels) {
        (Some(truth), _) => {
            let truth = BlindTruth::read(truth)?;
            if args.check {
                let ds = Dataset::open_dirs(&dirs)?;
                let films = truth.films(&ds, true);
                let what = format!(
                    "the unflagged films of `{}` (marked blind; none of them in the template \
                     or its tuning), by `boneage evaluate-preprocess {}{} --truth {} --check{flags}`",
                    truth.path.display(),
                    args.data.display(),
                    repeated("also", &args.also),
                    truth.path.display()
                );
                format!(
                    "# The check after registration, on blind key points\n\n{}",
                    evaluate_check(&pipeline, &ds, &films, &what, sheet, &bars)?
                )
            } else if args.stress {
                let ds = Dataset::open_dirs(&dirs)?;
                let mut films = truth.films(&ds, true);
                films.truncate(args.films);
                let also = repeated("also", &args.also);
                let films = StressFilms {
                    made_by: format!(
                        "boneage evaluate-preprocess {}{also} --truth {} --stress --films {}{}{flags}",
                        args.data.display(),
                        truth.path.display(),
                        films.len(),
                        args.only_flags()
                    ),
                    truth: format!(
                        "`{}` (marked blind, without any proposal; unflagged films only)",
                        truth.path.display()
                    ),
                    ds: &ds,
                    films,
                    masks: None,
                    only: args.only.clone(),
                };
                stress_suite(&pipeline, &films, sheet, jobs, &bars)?
            } else {
                evaluate_blind(&pipeline, &dirs, &truth, &flags, sheet, jobs, &bars)?
            }
        }
        (None, Some(labels)) => {
            if args.stress {
                let ds = Dataset::open_dir(&args.data)?;
                let mut films = holdout_films(&ds, labels, args.films)?;
                films.made_by += &(args.only_flags() + &flags);
                films.only = args.only.clone();
                stress_suite(&pipeline, &films, sheet, jobs, &bars)?
            } else {
                evaluate_front_end(&pipeline, &args.data, labels, sheet, &bars)?
            }
        }
        (None, None) => unreachable!("clap requires --labels or --truth"),
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
