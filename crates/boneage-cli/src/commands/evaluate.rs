//! `boneage evaluate`: the bone-age models on a held-out validation split, as the
//! paper reports them: MAE by region × model type × cohort (Fig. 8), MAE by skeletal
//! development stage and sex (Fig. 9), predicted against true age, the bias by stage,
//! the predict-the-mean baseline, and the same-data PyTorch run beside ours.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boneage_core::dataset::{Dataset, Sample};
use boneage_core::io::{Sex, write_atomic};
use boneage_core::read_radiograph;
use boneage_core::registration::{Canvas, Region};
use boneage_core::stages::Stage;
use boneage_nn::assess::{AgeModels, Cohort, HeadKind, ModelKey, RegionCrops};
use boneage_nn::predict::{Pipeline, shipped_models_dir};

use super::train::read_id_list;
use crate::charts::{LinePanel, heatmap, line_panels, scatter};

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

/// One validation film and what every model said.
struct Case {
    sample: Sample,
    /// `Err(reason)` when preprocessing refused the film.
    predictions: Result<BTreeMap<ModelKey, f64>, String>,
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn cohort_of(c: Cohort, s: &Sample) -> bool {
    c.covers(s.sex)
}

/// The mean of the predictions of the models `pick` selects, for one case.
fn combined(p: &BTreeMap<ModelKey, f64>, pick: impl Fn(&ModelKey) -> bool) -> Option<f64> {
    mean(
        &p.iter()
            .filter(|(k, _)| pick(k))
            .map(|(_, v)| *v)
            .collect::<Vec<_>>(),
    )
}

/// The shipped combination for a case: every model of its sex and every mixed one.
fn shipped(c: &Case) -> Option<f64> {
    let p = c.predictions.as_ref().ok()?;
    combined(p, |k| k.cohort.covers(c.sample.sex))
}

/// MAE of `predict` over the cases it answers.
fn mae(cases: &[&Case], predict: impl Fn(&Case) -> Option<f64>) -> (Option<f64>, usize) {
    let e: Vec<f64> = cases
        .iter()
        .filter_map(|c| Some((predict(c)? - c.sample.boneage_months).abs()))
        .collect();
    (mean(&e), e.len())
}

/// Runs `boneage evaluate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
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
    let models_dir = args
        .models
        .clone()
        .unwrap_or_else(|| shipped_models_dir().join("age"));
    let models = AgeModels::load_dir(&models_dir)
        .with_context(|| format!("loading the bone-age models in {}", models_dir.display()))?;
    eprintln!(
        "{} models from {}; {} validation films ({}), {} training films for the baseline",
        models.models.len(),
        models_dir.display(),
        val.len(),
        args.holdout.display(),
        train.len()
    );
    let canvas = Canvas::CPU;
    let pipeline = match &args.crops {
        Some(_) => None,
        None => Some(Pipeline::load(&shipped_models_dir(), canvas)?),
    };
    let bar = super::progress_bar(val.len() as u64, "evaluating");
    let mut cases = Vec::new();
    for s in &val {
        let crops: Result<RegionCrops, String> = match (&args.crops, &pipeline) {
            (Some(dir), _) => {
                let paths = Region::ALL.map(|r| dir.join(format!("{}_{}.png", s.id, r.name())));
                if paths.iter().all(|p| p.is_file()) {
                    let read = |p: &PathBuf| read_radiograph(p).map(|r| r.pixels);
                    let [a, b, c] = &paths;
                    Ok(RegionCrops {
                        crops: [read(a)?, read(b)?, read(c)?],
                    })
                } else {
                    Err("refused by preprocessing (no region crops)".to_string())
                }
            }
            (None, Some(p)) => {
                let r = read_radiograph(ds.image_path(s))?;
                p.run(&r.pixels)
                    .map(|pre| RegionCrops::from_canvas(&pre.registered, &canvas))
                    .map_err(|e| format!("refused: {e}"))
            }
            (None, None) => unreachable!("a pipeline is loaded without --crops"),
        };
        let predictions = crops.map(|crops| {
            models
                .models
                .iter()
                .filter(|m| m.key.cohort.covers(s.sex))
                .map(|m| (m.key, m.predict(crops.get(m.key.region), s.sex)))
                .collect()
        });
        cases.push(Case {
            sample: s.clone(),
            predictions,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let report = report(&args, &models, &cases, &train)?;
    let path = args.out.join("report.md");
    write_atomic(&path, |w| w.write_all(report.as_bytes()))?;
    print!("{report}");
    eprintln!("report, tables and charts in {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

const COHORTS: [(Cohort, &str); 3] = [
    (Cohort::Male, "male (M models)"),
    (Cohort::Female, "female (F models)"),
    (Cohort::Mixed, "mixed (mixed models)"),
];
const TYPES: [(Option<HeadKind>, &str); 3] = [
    (Some(HeadKind::Regression), "regr."),
    (Some(HeadKind::Classification), "class."),
    (None, "both"),
];
const ROWS: [(Option<Region>, &str); 4] = [
    (Some(Region::A), "A: whole hand"),
    (Some(Region::B), "B: carpals"),
    (Some(Region::C), "C: metacarpals"),
    (None, "ensemble A+B+C"),
];

fn fmt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

fn report(
    args: &Args,
    models: &AgeModels,
    cases: &[Case],
    train: &[Sample],
) -> anyhow::Result<String> {
    let done: Vec<&Case> = cases.iter().filter(|c| c.predictions.is_ok()).collect();
    let refused: Vec<&Case> = cases.iter().filter(|c| c.predictions.is_err()).collect();
    let mut md = String::new();
    writeln!(md, "# Bone-age models on the validation split\n")?;
    writeln!(
        md,
        "{} validation films ({}; never trained on): {} assessed, {} refused by preprocessing. \
         Models: {} from `{}`. Made by `boneage evaluate {} --holdout {}{}{} --out {}{}`.\n",
        cases.len(),
        args.holdout.display(),
        done.len(),
        refused.len(),
        models.models.len(),
        args.models
            .as_ref()
            .map_or("models/age (shipped)".to_string(), |m| m
                .display()
                .to_string()),
        args.data.display(),
        args.holdout.display(),
        args.models
            .as_ref()
            .map_or(String::new(), |m| format!(" --models {}", m.display())),
        args.crops
            .as_ref()
            .map_or(String::new(), |c| format!(" --crops {}", c.display())),
        args.out.display(),
        args.torch
            .iter()
            .map(|t| format!(" --torch {}", t.display()))
            .collect::<String>()
    )?;

    // Predict-the-mean baseline: the training films' mean age per sex.
    let sex_mean = |sex: Sex| {
        mean(
            &train
                .iter()
                .filter(|s| s.sex == sex)
                .map(|s| s.boneage_months)
                .collect::<Vec<_>>(),
        )
    };
    let (m_mean, f_mean) = (sex_mean(Sex::Male), sex_mean(Sex::Female));
    let base = |c: &Case| match c.sample.sex {
        Sex::Male => m_mean,
        Sex::Female => f_mean,
    };
    let (base_done, _) = mae(&done, base);
    let all: Vec<&Case> = cases.iter().collect();
    let (base_all, _) = mae(&all, base);
    let (final_mae, n_final) = mae(&done, shipped);
    let by_sex = |sex: Sex| {
        let v: Vec<&Case> = done
            .iter()
            .copied()
            .filter(|c| c.sample.sex == sex)
            .collect();
        (mae(&v, shipped), mae(&v, base))
    };
    let ((fm, bm), (ff, bf)) = (by_sex(Sex::Male), by_sex(Sex::Female));
    writeln!(md, "## Headline\n")?;
    writeln!(md, "| | all | M | F |\n| --- | --- | --- | --- |")?;
    writeln!(
        md,
        "| **ensemble as shipped** (each film: its sex's models + the mixed ones, all regions, both heads) | **{}** (n={n_final}) | {} (n={}) | {} (n={}) |",
        fmt(final_mae),
        fmt(fm.0),
        fm.1,
        fmt(ff.0),
        ff.1
    )?;
    writeln!(
        md,
        "| predict the mean training age per sex | {} | {} | {} |",
        fmt(base_done),
        fmt(bm.0),
        fmt(bf.0)
    )?;
    writeln!(
        md,
        "\nMAE in months on the assessed films. The baseline over all {} validation films, refused ones included: {}.\n",
        cases.len(),
        fmt(base_all)
    )?;
    // Spread as uncertainty.
    let spreads: Vec<(f64, f64)> = done
        .iter()
        .filter_map(|c| {
            let p = c.predictions.as_ref().ok()?;
            let v: Vec<f64> = p
                .iter()
                .filter(|(k, _)| k.cohort.covers(c.sample.sex))
                .map(|(_, v)| *v)
                .collect();
            let m = mean(&v)?;
            let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len().max(2) - 1) as f64)
                .sqrt();
            Some((sd, (m - c.sample.boneage_months).abs()))
        })
        .collect();
    if !spreads.is_empty() {
        let mut sorted = spreads.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let half = sorted.len() / 2;
        let err_of = |v: &[(f64, f64)]| mean(&v.iter().map(|x| x.1).collect::<Vec<_>>());
        let within = spreads.iter().filter(|(s, e)| e <= &(2.0 * s)).count();
        writeln!(
            md,
            "Ensemble spread (SD across members) as uncertainty: median {:.1} months; MAE {} on the half with the smaller spread, {} on the other half; the error is within 2 spreads for {} of {} films.\n",
            sorted[half].0,
            fmt(err_of(&sorted[..half])),
            fmt(err_of(&sorted[half..])),
            within,
            spreads.len()
        )?;
    }
    if !refused.is_empty() {
        let ids: Vec<&str> = refused.iter().map(|c| c.sample.id.as_str()).collect();
        writeln!(md, "Refused: {}.\n", ids.join(", "))?;
    }

    // Fig. 8.
    let mut table: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    let mut csv = String::from("region,cohort,type,mae_months,n\n");
    for (region, rname) in ROWS {
        let mut cells = Vec::new();
        for (cohort, cname) in COHORTS {
            let cs: Vec<&Case> = done
                .iter()
                .copied()
                .filter(|c| cohort_of(cohort, &c.sample))
                .collect();
            for (head, tname) in TYPES {
                let (v, n) = mae(&cs, |c| {
                    combined(c.predictions.as_ref().ok()?, |k| {
                        k.cohort == cohort
                            && region.is_none_or(|r| k.region == r)
                            && head.is_none_or(|h| k.head == h)
                    })
                });
                writeln!(csv, "{rname},{cname},{tname},{},{n}", fmt(v))?;
                cells.push(v);
            }
        }
        table.push((rname.to_string(), cells));
    }
    write_atomic(&args.out.join("fig8.csv"), |w| w.write_all(csv.as_bytes()))?;
    writeln!(
        md,
        "## MAE by region, model type and cohort (the paper's Fig. 8)\n"
    )?;
    writeln!(
        md,
        "Each cohort's models on that cohort's validation films (mixed: the mixed-sex models on all). \
         \"both\" averages the regression and classification predictions; the ensemble row averages the regions. \
         Months; `fig8.png`, `fig8.csv`.\n"
    )?;
    let mut header = String::from("| region |");
    let mut rule = String::from("| --- |");
    for (_, cname) in COHORTS {
        for (_, tname) in TYPES {
            write!(
                header,
                " {} {tname} |",
                cname.split(' ').next().unwrap_or(cname)
            )?;
            rule.push_str(" --- |");
        }
    }
    writeln!(md, "{header}\n{rule}")?;
    for (label, cells) in &table {
        let cells: Vec<String> = cells.iter().map(|v| fmt(*v)).collect();
        writeln!(md, "| {label} | {} |", cells.join(" | "))?;
    }
    writeln!(md)?;
    let column_names: Vec<&str> = COHORTS.iter().flat_map(|_| TYPES.map(|t| t.1)).collect();
    let rows: Vec<(&str, Vec<Option<f64>>)> =
        table.iter().map(|(l, c)| (l.as_str(), c.clone())).collect();
    heatmap(
        &args.out.join("fig8.png"),
        "Validation MAE (months) by region, model type and cohort",
        &COHORTS.map(|c| (c.1, TYPES.len())),
        &column_names,
        &rows,
        &format!(
            "{} validation films ({} M, {} F); predict-the-mean baseline {} months",
            done.len(),
            done.iter().filter(|c| c.sample.sex == Sex::Male).count(),
            done.iter().filter(|c| c.sample.sex == Sex::Female).count(),
            fmt(base_done)
        ),
    )?;

    // Fig. 9 and the bias by stage.
    writeln!(
        md,
        "## MAE by skeletal development stage and sex (the paper's Fig. 9)\n"
    )?;
    writeln!(
        md,
        "Stage of the true bone age (Gilsanz & Ratib). Each region: the mean of its models that \
         cover the film's sex (per-sex and mixed, both heads); ensemble: all of them, as shipped. \
         Bias: mean signed error (predicted − true) of the ensemble. `fig9.png`.\n"
    )?;
    let mut panels = Vec::new();
    for sex in [Sex::Male, Sex::Female] {
        let stages: Vec<Stage> = Stage::ALL
            .into_iter()
            .filter(|st| {
                done.iter()
                    .any(|c| c.sample.sex == sex && Stage::of(c.sample.boneage_months, sex) == *st)
            })
            .collect();
        let in_stage = |st: Stage| -> Vec<&Case> {
            done.iter()
                .copied()
                .filter(|c| c.sample.sex == sex && Stage::of(c.sample.boneage_months, sex) == st)
                .collect()
        };
        let mut series = Vec::new();
        for (region, name) in ROWS {
            let v: Vec<Option<f64>> = stages
                .iter()
                .map(|&st| {
                    mae(&in_stage(st), |c| {
                        combined(c.predictions.as_ref().ok()?, |k| {
                            k.cohort.covers(sex) && region.is_none_or(|r| k.region == r)
                        })
                    })
                    .0
                })
                .collect();
            series.push((name.to_string(), v));
        }
        writeln!(
            md,
            "### {}\n",
            if sex == Sex::Male { "Male" } else { "Female" }
        )?;
        writeln!(
            md,
            "| stage | n | A | B | C | ensemble | bias | baseline |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
        )?;
        for (i, &st) in stages.iter().enumerate() {
            let cs = in_stage(st);
            let bias = mean(
                &cs.iter()
                    .filter_map(|c| Some(shipped(c)? - c.sample.boneage_months))
                    .collect::<Vec<_>>(),
            );
            writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                st.name(),
                cs.len(),
                fmt(series[0].1[i]),
                fmt(series[1].1[i]),
                fmt(series[2].1[i]),
                fmt(series[3].1[i]),
                bias.map_or("–".into(), |b| format!("{b:+.1}")),
                fmt(mae(&cs, base).0)
            )?;
        }
        writeln!(md)?;
        panels.push(LinePanel {
            title: format!(
                "{} (n = {})",
                if sex == Sex::Male { "Male" } else { "Female" },
                done.iter().filter(|c| c.sample.sex == sex).count()
            ),
            categories: stages
                .iter()
                .map(|&st| format!("{} ({})", st.name(), in_stage(st).len()))
                .collect(),
            series,
        });
    }
    line_panels(
        &args.out.join("fig9.png"),
        "Validation MAE by skeletal development stage (n per stage in brackets)",
        "MAE, months",
        &panels,
    )?;

    // Scatter.
    let groups: Vec<(String, Vec<(f64, f64)>)> = [(Sex::Male, "male"), (Sex::Female, "female")]
        .iter()
        .map(|&(sex, name)| {
            (
                name.to_string(),
                done.iter()
                    .filter(|c| c.sample.sex == sex)
                    .filter_map(|c| Some((c.sample.boneage_months, shipped(c)?)))
                    .collect(),
            )
        })
        .collect();
    scatter(
        &args.out.join("scatter.png"),
        &format!(
            "Ensemble vs reader, validation (MAE {} months)",
            fmt(final_mae)
        ),
        ("true bone age, months", "predicted bone age, months"),
        240.0,
        &groups,
    )?;
    writeln!(md, "Predicted against true: `scatter.png`.\n")?;

    // The same-data PyTorch run.
    if !args.torch.is_empty() {
        writeln!(md, "## Same data in PyTorch (`bench/torch_ref_train.py`)\n")?;
        writeln!(
            md,
            "| recipe | PyTorch val MAE | ours val MAE | PyTorch training time |\n| --- | --- | --- | --- |"
        )?;
        for path in &args.torch {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let j: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{}: not JSON", path.display()))?;
            let region = j["region"].as_str().unwrap_or("A");
            let head = if j["head"].as_str() == Some("classification") {
                HeadKind::Classification
            } else {
                HeadKind::Regression
            };
            let ours = mae(&done, |c| {
                combined(c.predictions.as_ref().ok()?, |k| {
                    k.cohort == Cohort::Mixed && k.region.name() == region && k.head == head
                })
            });
            writeln!(
                md,
                "| region {region} {} mixed, {} epochs, input {} | {:.2} ({} films) | {} ({} films) | {:.0} s |",
                head.short(),
                j["epochs"],
                j["input"],
                j["val_mae_months"].as_f64().unwrap_or(f64::NAN),
                j["val_images"],
                fmt(ours.0),
                ours.1,
                j["seconds"].as_f64().unwrap_or(f64::NAN)
            )?;
        }
        writeln!(md)?;
    }

    // Per-film predictions.
    let keys: Vec<ModelKey> = models.models.iter().map(|m| m.key).collect();
    let mut pred = String::from("id,sex,true_months,ensemble_months");
    for k in &keys {
        write!(pred, ",{}", k.name())?;
    }
    pred.push_str(",refused\n");
    for c in cases {
        write!(
            pred,
            "{},{},{},{}",
            c.sample.id,
            c.sample.sex.letter(),
            c.sample.boneage_months,
            shipped(c).map_or(String::new(), |v| format!("{v:.2}"))
        )?;
        for k in &keys {
            let v = c.predictions.as_ref().ok().and_then(|p| p.get(k));
            write!(pred, ",{}", v.map_or(String::new(), |v| format!("{v:.2}")))?;
        }
        writeln!(
            pred,
            ",{}",
            c.predictions
                .as_ref()
                .err()
                .map_or("", |e| e.as_str())
                .replace(',', ";")
        )?;
    }
    write_atomic(&args.out.join("predictions.csv"), |w| {
        w.write_all(pred.as_bytes())
    })?;
    Ok(md)
}
