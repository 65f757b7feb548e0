//! `boneage evaluate`: the bone-age models on a held-out validation split, as the
//! paper reports them (Fig. 8, Fig. 9, predicted against true, the bias by stage,
//! the predict-the-mean baseline, PyTorch beside ours): `boneage::evaluation`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boneage::evaluation::{Crops, ReportSpec, predict_films, write_report};
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::dataset::{Dataset, Sample, read_id_list};
use boneage_core::registration::Canvas;
use boneage_nn::ensemble::AgeModels;
use boneage_nn::pipeline::Pipeline;

use crate::progress::Bars;

/// Arguments of `boneage evaluate`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (`DATA.csv` beside it, or `labels.csv` inside).
    data: PathBuf,
    /// The validation ids (never trained on), e.g. data/labels/holdout-age.txt.
    #[arg(long)]
    holdout: PathBuf,
    /// Bone-age models: a folder of `*.safetensors` with manifests, or of `boneage
    /// train` run folders (default: the shipped `models/age`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Region crops made by `boneage preprocess --out` (`<id>_A.png`, …); without
    /// it, each validation film goes through the shipped preprocessing here.
    #[arg(long)]
    crops: Option<PathBuf>,
    /// Output folder: report.md, fig8.csv, fig8.png, fig9.png, scatter.png,
    /// predictions.csv.
    #[arg(long)]
    out: PathBuf,
    /// Results of `bench/torch_ref_train.py` (JSON) to show beside ours.
    #[arg(long, value_name = "JSON")]
    torch: Vec<PathBuf>,
}

impl Args {
    /// The command line, for the report.
    fn command(&self) -> String {
        let opt = |flag: &str, v: &Option<PathBuf>| {
            v.as_ref()
                .map_or(String::new(), |p| format!(" --{flag} {}", p.display()))
        };
        let torch: String = self
            .torch
            .iter()
            .map(|t| format!(" --torch {}", t.display()))
            .collect();
        format!(
            "boneage evaluate {} --holdout {}{}{} --out {}{torch}",
            self.data.display(),
            self.holdout.display(),
            opt("models", &self.models),
            opt("crops", &self.crops),
            self.out.display()
        )
    }
}

/// Runs `boneage evaluate`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let ds = Dataset::open_dir(&args.data)?;
    let held = read_id_list(&args.holdout)?;
    let (val, train): (Vec<Sample>, Vec<Sample>) = ds
        .samples
        .iter()
        .cloned()
        .partition(|s| held.contains(&s.id));
    if val.is_empty() {
        anyhow::bail!(
            "{}: none of its ids are labelled images of {}",
            args.holdout.display(),
            args.data.display()
        );
    }
    let d = device.device()?;
    let models_dir = match &args.models {
        Some(m) => m.clone(),
        None => ModelsDir::locate(None)?.age(),
    };
    let models = AgeModels::load_dir(&models_dir, &d)
        .with_context(|| format!("loading the bone-age models in {}", models_dir.display()))?;
    eprintln!(
        "{} models from {}; {} validation films ({}), {} training films for the baseline",
        models.models.len(),
        models_dir.display(),
        val.len(),
        args.holdout.display(),
        train.len()
    );
    let pipeline = match &args.crops {
        Some(_) => None,
        None => Some(Pipeline::load(
            &ModelsDir::locate(None)?.path,
            Canvas::CPU,
            &d,
        )?),
    };
    let crops = match (&args.crops, &pipeline) {
        (Some(dir), _) => Crops::Folder(dir),
        (None, Some(p)) => Crops::Pipeline(p),
        (None, None) => unreachable!("a pipeline is loaded without --crops"),
    };
    let films = predict_films(&models, &ds, &val, crops, &Bars::default())?;
    let spec = ReportSpec {
        out: &args.out,
        command: args.command(),
        holdout: &args.holdout,
        models_from: args
            .models
            .as_ref()
            .map_or("models/age (shipped)".to_string(), |m| {
                m.display().to_string()
            }),
        keys: models.models.iter().map(|m| m.key).collect(),
        torch: &args.torch,
    };
    let report = write_report(&spec, &films, &train)?;
    print!("{report}");
    eprintln!("report, tables and charts in {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
