//! `boneage evaluate`: the bone-age models on a held-out validation split, or out of
//! fold over cross-validation runs (`--cv`), as the paper reports them (Fig. 8,
//! Fig. 9, predicted against true, the bias by stage, the predict-the-mean baseline,
//! PyTorch beside ours): `boneage::evaluation`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use boneage::at_once::jobs_for;
use boneage::evaluation::{Crops, ReportSpec, predict_films, read_predictions, write_report};
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::ModelKey;
use boneage_core::calibration::Tta;
use boneage_core::dataset::{Dataset, Sample, read_id_list};
use boneage_core::metrics::FilmPredictions;
use boneage_nn::burn::prelude::Device;
use boneage_nn::ensemble::AgeModels;
use boneage_nn::pipeline::Pipeline;

use crate::args::at_least_one;
use crate::progress::Bars;

/// Arguments of `boneage evaluate`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder (`DATA.csv` beside it, or `labels.csv` inside).
    data: PathBuf,
    /// More dataset folders pooled with DATA (ids must differ).
    #[arg(long, value_name = "DATA")]
    also: Vec<PathBuf>,
    /// The validation ids (never trained on), e.g. data/labels/holdout-age.txt.
    #[arg(long, required_unless_present = "cv", conflicts_with = "cv")]
    holdout: Option<PathBuf>,
    /// Cross-validation: a folder of `fold-K.txt` id lists (`boneage split --folds`);
    /// each fold's films are predicted by the models in `MODELS/fold-K/`, which
    /// never trained on them, so every film gets an out-of-fold prediction.
    #[arg(long, value_name = "FOLDS")]
    cv: Option<PathBuf>,
    /// Bone-age models: a folder of `*.safetensors` with manifests, or of `boneage
    /// train` run folders (default: the shipped `models/age`); with --cv, the folder
    /// of `fold-K/` models folders.
    #[arg(long)]
    models: Option<PathBuf>,
    /// Region crops made by `boneage preprocess --out` (`<id>_A.png`, …); repeat it
    /// for models trained on crops of different canvases (one folder per canvas);
    /// without it, each validation film goes through the shipped preprocessing here.
    #[arg(long, value_name = "DIR")]
    crops: Vec<PathBuf>,
    /// Output folder: report.md, fig8.csv, fig8.png, fig9.png, scatter.png,
    /// predictions.csv.
    #[arg(long)]
    out: PathBuf,
    /// Instead of running models: the predictions an earlier `boneage evaluate`
    /// wrote (`predictions.csv`; repeat to pool the members of several runs, a film
    /// refused in any being refused), refitted and reported anew. Give `--tta` when
    /// they were made with it (`--tta-members` when only some were).
    #[arg(long, value_name = "CSV", conflicts_with_all = ["models", "crops"])]
    predictions: Vec<PathBuf>,
    /// Test-time augmentation: each model reads every crop in 5 views (zoom ± 5 %,
    /// rotation ± 5°) and gives their mean; the calibration written out of fold
    /// then says so, and `assess` does the same with it.
    #[arg(long, conflicts_with = "tta_members")]
    tta: bool,
    /// Test-time augmentation for these members only, comma-separated
    /// (`A-reg-mixed,B-reg-mixed`); the others read each crop once. With
    /// `--predictions`: the members whose stored predictions were made with it.
    #[arg(long, value_name = "MEMBERS", value_delimiter = ',', num_args = 1..)]
    tta_members: Vec<ModelKey>,
    /// Results of `bench/torch_ref_train.py` (JSON) to show beside ours.
    #[arg(long, value_name = "JSON")]
    torch: Vec<PathBuf>,
    /// Films predicted at once, each on a core of its own (default: one a core on the
    /// CPU, one at a time on a GPU; 1 predicts them one after another).
    #[arg(long, short = 'j', value_name = "N", value_parser = at_least_one)]
    jobs: Option<usize>,
}

impl Args {
    /// Which members read augmented views, from `--tta` or `--tta-members`.
    fn tta(&self) -> Tta {
        match (self.tta, self.tta_members.as_slice()) {
            (true, _) => Tta::All(true),
            (false, []) => Tta::All(false),
            (false, m) => Tta::Members(m.iter().map(ToString::to_string).collect()),
        }
    }

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
        let also = crate::args::repeated("also", &self.also);
        let predictions = crate::args::repeated("predictions", &self.predictions);
        format!(
            "boneage evaluate {}{also}{}{}{}{}{predictions}{} --out {}{torch}",
            self.data.display(),
            opt("holdout", &self.holdout),
            opt("cv", &self.cv),
            opt("models", &self.models),
            crate::args::repeated("crops", &self.crops),
            match self.tta() {
                Tta::All(true) => " --tta".to_string(),
                Tta::All(false) => String::new(),
                Tta::Members(m) => format!(" --tta-members {}", m.join(",")),
            },
            self.out.display()
        )
    }
}

/// Fails when `--tta-members` names a member that is not among `keys`.
fn check_tta_members(
    named: &[ModelKey],
    keys: impl Iterator<Item = ModelKey> + Clone,
) -> anyhow::Result<()> {
    if let Some(m) = named.iter().find(|m| !keys.clone().any(|k| k == **m)) {
        let all: Vec<String> = keys.map(|k| k.to_string()).collect();
        anyhow::bail!(
            "--tta-members names {m}, which is not among the models ({})",
            all.join(", ")
        );
    }
    Ok(())
}

/// The films of each fold list in `dir` (`fold-1.txt`, `fold-2.txt`, …, in order).
fn read_folds(dir: &Path) -> anyhow::Result<Vec<(String, BTreeSet<String>)>> {
    let mut folds = Vec::new();
    for k in 1.. {
        let path = dir.join(format!("fold-{k}.txt"));
        if !path.is_file() {
            break;
        }
        folds.push((format!("fold-{k}"), read_id_list(&path)?));
    }
    if folds.len() < 2 {
        anyhow::bail!(
            "{}: no fold lists fold-1.txt, fold-2.txt, … (make them with boneage split --folds)",
            dir.display()
        );
    }
    Ok(folds)
}

fn load_models(dir: &Path, d: &Device) -> anyhow::Result<AgeModels> {
    AgeModels::load_dir(dir, d)
        .with_context(|| format!("loading the bone-age models in {}", dir.display()))
}

/// Paths as `a, b`.
fn listed(paths: &[PathBuf]) -> String {
    let v: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    v.join(", ")
}

/// Runs `boneage evaluate`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let folders: Vec<PathBuf> = std::iter::once(args.data.clone())
        .chain(args.also.iter().cloned())
        .collect();
    let ds = Dataset::open_dirs(&folders)?;
    let d = device.device()?;
    // The front end, when the crops are not given: loaded for the canvas of the
    // first models that need it (and again should a fold's models use another).
    let mut pipeline: Option<Pipeline> = None;
    // (the films to predict, the models that predict them) per fold; one "fold" for
    // a plain hold-out.
    let (plan, split): (Vec<(BTreeSet<String>, PathBuf)>, &Path) = match (&args.cv, &args.holdout) {
        (Some(cv), _) => {
            if args.models.is_none() && args.predictions.is_empty() {
                anyhow::bail!(
                    "--cv needs --models (a folder of fold-K/ models folders) or --predictions"
                );
            }
            let plan = read_folds(cv)?
                .into_iter()
                .map(|(name, ids)| {
                    let models = args.models.as_ref().map(|m| m.join(&name));
                    (ids, models.unwrap_or_default())
                })
                .collect();
            (plan, cv.as_path())
        }
        (None, Some(h)) => {
            let models = match &args.models {
                Some(m) => m.clone(),
                None => ModelsDir::locate(None)?.age(),
            };
            (vec![(read_id_list(h)?, models)], h.as_path())
        }
        (None, None) => unreachable!("clap requires --holdout or --cv"),
    };
    let stored = match args.predictions.as_slice() {
        [] => None,
        paths => Some(read_predictions(paths)?),
    };
    let tta = args.tta();
    let mut films = Vec::new();
    let mut fold_of = Vec::new();
    let mut keys = Vec::new();
    let mut held_all = BTreeSet::new();
    for (k, (held, models_dir)) in plan.iter().enumerate() {
        let val: Vec<Sample> = ds
            .samples
            .iter()
            .filter(|s| held.contains(&s.id))
            .cloned()
            .collect();
        if val.is_empty() {
            anyhow::bail!(
                "{}: none of its ids are labelled images of {}",
                split.display(),
                listed(&folders)
            );
        }
        if let Some(stored) = &stored {
            for s in val {
                let members = stored.get(&s.id).cloned().with_context(|| {
                    format!(
                        "film {} of {} has no row in {}",
                        s.id,
                        split.display(),
                        listed(&args.predictions)
                    )
                })?;
                if let Ok(m) = &members {
                    for k in m.keys() {
                        if !keys.contains(k) {
                            keys.push(*k);
                        }
                    }
                }
                films.push(FilmPredictions { sample: s, members });
            }
        } else {
            let models = load_models(models_dir, &d)?;
            check_tta_members(&args.tta_members, models.models.iter().map(|m| m.key))?;
            let canvas = models.canvas();
            if args.crops.is_empty() && pipeline.as_ref().is_none_or(|p| p.canvas != canvas) {
                pipeline = Some(Pipeline::load(&ModelsDir::locate(None)?.path, canvas, &d)?);
            }
            let crops = match (args.crops.as_slice(), &pipeline) {
                ([_, ..], _) => Crops::Folders(&args.crops),
                ([], Some(p)) => Crops::Pipeline(p),
                ([], None) => unreachable!("the front end was loaded above"),
            };
            eprintln!(
                "{} models from {}; {} films to predict",
                models.models.len(),
                models_dir.display(),
                val.len()
            );
            films.extend(predict_films(
                &models,
                &ds,
                &val,
                crops,
                &tta,
                jobs_for(args.jobs, device),
                &Bars::default(),
            )?);
            if keys.is_empty() {
                keys = models.models.iter().map(|m| m.key).collect();
            }
        }
        fold_of.resize(films.len(), k);
        held_all.extend(held.iter().cloned());
    }
    check_tta_members(&args.tta_members, keys.iter().copied())?;
    // The baseline's mean ages: from the films no fold predicts (plain hold-out), or
    // from all films (cross-validation, where every film is predicted).
    let train: Vec<Sample> = if args.cv.is_some() {
        ds.samples.clone()
    } else {
        ds.samples
            .iter()
            .filter(|s| !held_all.contains(&s.id))
            .cloned()
            .collect()
    };
    let spec = ReportSpec {
        out: &args.out,
        command: args.command(),
        holdout: split,
        out_of_fold: args.cv.is_some(),
        models_from: match (&args.models, args.predictions.as_slice()) {
            (_, [_, ..]) => format!("the predictions in {}", listed(&args.predictions)),
            (Some(m), _) => m.display().to_string(),
            (None, _) => "models/age (shipped)".to_string(),
        },
        keys,
        torch: &args.torch,
        folds: if args.cv.is_some() { &fold_of } else { &[] },
        tta,
    };
    let report = write_report(&spec, &films, &train)?;
    print!("{report}");
    eprintln!("report, tables and charts in {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
