//! The bone-age models on a held-out validation split, as the paper reports them:
//! each film's predictions by every model ([`predict_films`]), then the report
//! ([`write_report`]): the headline MAE against the predict-the-mean baseline, the
//! spread as uncertainty, Fig. 8 (region × head × cohort), Fig. 9 and the bias by
//! development stage, predicted against true, and the same-data PyTorch runs beside
//! ours. The numbers come from `boneage_core::metrics`; this module lays them out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use boneage_core::calibration::{self, CalFilm, Calibrated, Tta};
use boneage_core::dataset::{Dataset, Sample, crop_path, crops_canvas};
use boneage_core::io::create_dir;
use boneage_core::io::write_atomic;
use boneage_core::metrics::{
    FIG8_COHORTS, FIG8_HEADS, FIG8_ROWS, FilmPredictions, Mae, MeanBaseline, bias, fig8, fig9, mae,
    mae_half_width95, spread_summary,
};
use boneage_core::registration::Canvas;
use boneage_core::stages::Stage;
use boneage_core::{Cohort, Head, ModelKey, Sex, read_radiograph};
use boneage_nn::ensemble::{AgeModels, RegionCrops, TTA_VIEWS, views_for};
use boneage_nn::pipeline::Pipeline;

use crate::at_once::each_at_once;
use crate::charts::{ChartError, LinePanel, heatmap, line_panels, scatter};
use crate::progress::Progress;

/// What an evaluation could not do.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// A film, a list or an output could not be read or written.
    #[error(transparent)]
    Core(#[from] boneage_core::Error),
    /// A chart could not be drawn.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// A predictions file is not what `boneage evaluate` writes, or lacks a film.
    #[error("{}: {detail}", path.display())]
    Predictions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The crops are cut from another registered canvas than the models read.
    #[error(
        "{origin} comes from a {}x{} canvas, but the bone-age models in {} read crops of \
         {}: no crops of {}x{} were given (make them with `boneage preprocess FILMS \
         --canvas {}x{} --out DIR`; give one --crops folder for each canvas)",
        found.width, found.height, models.display(), canvas_list(needed),
        expected.width, expected.height, expected.width, expected.height
    )]
    Canvas {
        /// Where the crops come from, in words.
        origin: String,
        /// Its canvas.
        found: Canvas,
        /// The models folder.
        models: PathBuf,
        /// The canvas whose crops are missing.
        expected: Canvas,
        /// Every canvas the models read.
        needed: Vec<Canvas>,
    },
    /// A PyTorch results file is not what `bench/torch_ref_train.py` writes.
    #[error("{}: {detail}", path.display())]
    Torch {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// "a 400x520 canvas" or "the 800x1040 and 400x520 canvases".
fn canvas_list(canvases: &[Canvas]) -> String {
    let names: Vec<String> = canvases
        .iter()
        .map(|c| format!("{}x{}", c.width, c.height))
        .collect();
    match names.as_slice() {
        [one] => format!("a {one} canvas"),
        [init @ .., last] => format!("the {} and {last} canvases", init.join(", ")),
        [] => "no canvas".to_string(),
    }
}

impl From<std::fmt::Error> for EvalError {
    fn from(_: std::fmt::Error) -> Self {
        unreachable!("writing to a String does not fail")
    }
}

/// Where the region crops of the validation films come from.
pub enum Crops<'a> {
    /// `boneage preprocess --out` folders (`<id>_A.png`, …), one for each canvas the
    /// models read; a film without its crops was refused by preprocessing.
    Folders(&'a [PathBuf]),
    /// The front end, run here on each film.
    Pipeline(&'a Pipeline),
}

/// Every model's prediction for each validation film (only the models that cover
/// the film's sex), or why the film was refused.
/// The members `tta` names (or all) give the mean over the test-time augmented views
/// (`boneage_nn::ensemble::TTA_VIEWS`). Reads `jobs` films at once
/// ([`each_at_once`]), the predictions in the films' order.
pub fn predict_films(
    models: &AgeModels,
    ds: &Dataset,
    films: &[Sample],
    crops: Crops<'_>,
    tta: &Tta,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Vec<FilmPredictions>, EvalError> {
    let canvases = models.canvases();
    // The crops folder of each canvas the models read.
    let mut folders = Vec::new();
    match &crops {
        Crops::Folders(dirs) => {
            let found = dirs
                .iter()
                .map(|d| Ok((crops_canvas(d)?, d.as_path())))
                .collect::<Result<Vec<_>, EvalError>>()?;
            for &c in &canvases {
                match found.iter().find(|(f, _)| *f == c) {
                    Some(&(_, dir)) => folders.push(dir),
                    None => {
                        let (f, dir) = found.first().expect("clap requires a --crops value");
                        return Err(EvalError::Canvas {
                            origin: format!("the crops folder {}", dir.display()),
                            found: *f,
                            models: models.dir.clone(),
                            expected: c,
                            needed: canvases.clone(),
                        });
                    }
                }
            }
        }
        Crops::Pipeline(p) => {
            if p.canvas != models.canvas() {
                return Err(EvalError::Canvas {
                    origin: "the front end".to_string(),
                    found: p.canvas,
                    models: models.dir.clone(),
                    expected: models.canvas(),
                    needed: canvases.clone(),
                });
            }
        }
    }
    // The regions some model reads, for each canvas.
    let needed: Vec<_> = canvases.iter().map(|&c| models.regions_on(c)).collect();
    progress.start("evaluating", films.len());
    let predict = |s: &Sample| -> Result<FilmPredictions, EvalError> {
        let region_crops: Result<Vec<RegionCrops>, String> = match &crops {
            Crops::Folders(_) => {
                // The crop of each region a model reads; a film lacking one was
                // refused by the front end (folders written before region D have no
                // `_D` crops, which only D models need, and are not read).
                let mut sets = Vec::new();
                'canvases: for ((&dir, &canvas), regions) in
                    folders.iter().zip(&canvases).zip(&needed)
                {
                    let mut crops = [None, None, None, None];
                    for &r in regions {
                        let path = crop_path(dir, &s.id, r);
                        if !path.is_file() {
                            break 'canvases;
                        }
                        crops[r as usize] = Some(read_radiograph(&path)?.pixels);
                    }
                    sets.push(RegionCrops { canvas, crops });
                }
                if sets.len() == canvases.len() {
                    Ok(sets)
                } else {
                    Err("refused by preprocessing (no region crops)".to_string())
                }
            }
            Crops::Pipeline(p) => {
                let r = read_radiograph(ds.image_path(s))?;
                p.run(&r.pixels)
                    .and_then(|pre| crate::assessor::region_crops(&pre, &canvases))
                    .map_err(|e| format!("refused: {e}"))
            }
        };
        let members = region_crops.map(|c| {
            models
                .models
                .iter()
                .filter(|m| m.key.cohort.covers(s.sex))
                .map(|m| {
                    let views = views_for(tta, m.key);
                    (m.key, m.predict_views(m.crop_in(&c), s.sex, views))
                })
                .collect()
        });
        progress.inc();
        Ok(FilmPredictions {
            sample: s.clone(),
            members,
        })
    };
    let mut out = Vec::with_capacity(films.len());
    each_at_once(films, jobs, predict, |_, film| {
        out.push(film?);
        Ok::<_, EvalError>(())
    })?;
    progress.finish();
    Ok(out)
}

/// Each film's model predictions (or why it was refused), by id.
pub type StoredPredictions = BTreeMap<String, Result<BTreeMap<ModelKey, f64>, String>>;

/// Each film's model predictions (or why it was refused), by id, as earlier
/// evaluations wrote them to `predictions.csv`: the columns named like models
/// (`A-reg-mixed`, …) and `refused`. With several files the members are pooled (a
/// film refused in any of them is refused), so that out-of-fold predictions of models
/// trained at different times can be weighed together without running them again.
pub fn read_predictions(paths: &[PathBuf]) -> Result<StoredPredictions, EvalError> {
    let mut out = StoredPredictions::new();
    for path in paths {
        let bad = |detail: String| EvalError::Predictions {
            path: path.clone(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name);
        let (Some(id_col), Some(refused_col)) = (col("id"), col("refused")) else {
            return Err(bad(
                "not a predictions.csv of boneage evaluate (no id or refused column)".into(),
            ));
        };
        let models: Vec<(usize, ModelKey)> = header
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.parse::<ModelKey>().ok().map(|k| (i, k)))
            .collect();
        if models.is_empty() {
            return Err(bad("no model columns (A-reg-mixed, …)".into()));
        }
        for (n, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let cells: Vec<&str> = line.split(',').collect();
            if cells.len() != header.len() {
                return Err(bad(format!(
                    "line {}: {} fields, the header has {}",
                    n + 2,
                    cells.len(),
                    header.len()
                )));
            }
            let id = cells[id_col].to_string();
            let film = match cells[refused_col] {
                "" => {
                    let mut members = BTreeMap::new();
                    for &(i, k) in &models {
                        let v = cells[i].parse::<f64>().map_err(|_| {
                            bad(format!("line {}: {k} is {:?}, not months", n + 2, cells[i]))
                        })?;
                        members.insert(k, v);
                    }
                    Ok(members)
                }
                why => Err(why.to_string()),
            };
            let merged = match (out.remove(&id), film) {
                (None, f) => f,
                (Some(Err(e)), _) | (Some(Ok(_)), Err(e)) => Err(e),
                (Some(Ok(mut a)), Ok(b)) => {
                    if let Some(k) = b.keys().find(|k| a.contains_key(k)) {
                        return Err(bad(format!(
                            "film {id} has {k} in an earlier file too: give each member's \
                             predictions of a film once (two runs of one member cannot be \
                             told apart)"
                        )));
                    }
                    a.extend(b);
                    Ok(a)
                }
            };
            out.insert(id, merged);
        }
    }
    Ok(out)
}

/// What the report needs besides the predictions.
pub struct ReportSpec<'a> {
    /// Output folder: report.md, fig8.csv, fig8.png, fig9.png, scatter.png,
    /// predictions.csv.
    pub out: &'a Path,
    /// The command that made it, for the report's first lines.
    pub command: String,
    /// The hold-out list, or the folder of fold lists.
    pub holdout: &'a Path,
    /// Whether the predictions are out of fold (cross-validation) rather than on one
    /// hold-out split.
    pub out_of_fold: bool,
    /// Where the models came from, in words.
    pub models_from: String,
    /// The models' keys, in column order for predictions.csv.
    pub keys: Vec<ModelKey>,
    /// Results of `bench/torch_ref_train.py` to show beside ours.
    pub torch: &'a [PathBuf],
    /// Out of fold: each film's fold (index into the fold lists), in the order of the
    /// films; empty for one hold-out split.
    pub folds: &'a [usize],
    /// Which members' predictions are means over test-time augmented views.
    pub tta: Tta,
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.2}"))
}

/// (true, estimated) bone age of each film with an estimate, one group per sex, for a
/// scatter chart.
fn truth_against<'a>(
    films: impl Iterator<Item = &'a FilmPredictions> + Clone,
    estimate: impl Fn(&FilmPredictions) -> Option<f64>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    Sex::ALL
        .iter()
        .map(|&sex| {
            let points = films
                .clone()
                .filter(|f| f.sample.sex == sex)
                .filter_map(|f| Some((f.truth(), estimate(f)?)))
                .collect();
            (sex.word().to_string(), points)
        })
        .collect()
}

/// Writes the report, its tables and charts into `spec.out`; returns the Markdown.
pub fn write_report(
    spec: &ReportSpec<'_>,
    films: &[FilmPredictions],
    train: &[Sample],
) -> Result<String, EvalError> {
    create_dir(spec.out)?;
    let done: Vec<&FilmPredictions> = films.iter().filter(|f| f.members.is_ok()).collect();
    let baseline = MeanBaseline::fit(train);
    let mut md = String::new();
    headline(&mut md, spec, films, &done, &baseline)?;
    fig8_section(&mut md, spec, &done, &baseline)?;
    fig9_section(&mut md, spec, &done, &baseline)?;
    let groups = truth_against(done.iter().copied(), FilmPredictions::ensemble);
    scatter(
        &spec.out.join("scatter.png"),
        &format!(
            "Ensemble vs reader, {} (MAE {} months)",
            if spec.out_of_fold {
                "out of fold"
            } else {
                "validation"
            },
            fmt(mae(&done, FilmPredictions::ensemble).value)
        ),
        ("true bone age, months", "predicted bone age, months"),
        240.0,
        &groups,
    )?;
    writeln!(md, "Predicted against true: `scatter.png`.\n")?;
    torch_section(&mut md, spec, &done)?;
    let calibrated = if spec.out_of_fold {
        calibration_section(&mut md, spec, films)?
    } else {
        vec![None; films.len()]
    };
    write_predictions(spec, films, &calibrated)?;
    write_atomic(&spec.out.join("report.md"), |w| w.write_all(md.as_bytes()))?;
    Ok(md)
}

fn headline(
    md: &mut String,
    spec: &ReportSpec<'_>,
    films: &[FilmPredictions],
    done: &[&FilmPredictions],
    baseline: &MeanBaseline,
) -> Result<(), EvalError> {
    let refused: Vec<&str> = films
        .iter()
        .filter(|f| f.members.is_err())
        .map(|f| f.sample.id.as_str())
        .collect();
    if spec.out_of_fold {
        writeln!(md, "# Bone-age models out of fold (cross-validation)\n")?;
        writeln!(
            md,
            "{} films, each predicted by the models of its fold ({}), which never trained on it: \
             {} assessed, {} refused by preprocessing. Models: {} per fold, from `{}`. \
             Made by `{}`. The baseline's mean ages are those of all films.\n",
            films.len(),
            spec.holdout.display(),
            done.len(),
            refused.len(),
            spec.keys.len(),
            spec.models_from,
            spec.command
        )?;
    } else {
        writeln!(md, "# Bone-age models on the validation split\n")?;
        writeln!(
            md,
            "{} validation films ({}; never trained on): {} assessed, {} refused by preprocessing. \
         Models: {} from `{}`. Made by `{}`.\n",
            films.len(),
            spec.holdout.display(),
            done.len(),
            refused.len(),
            spec.keys.len(),
            spec.models_from,
            spec.command
        )?;
    }
    match &spec.tta {
        Tta::All(false) => {}
        Tta::All(true) => writeln!(
            md,
            "Test-time augmentation: each model's prediction is the mean over {} views of the crop (zoom ± 5 %, rotation ± 5°).\n",
            TTA_VIEWS.len()
        )?,
        Tta::Members(_) => writeln!(
            md,
            "Test-time augmentation for {}: each such prediction is the mean over {} views of the crop (zoom ± 5 %, rotation ± 5°); the other models read the crop once.\n",
            spec.tta.describe(),
            TTA_VIEWS.len()
        )?,
    }
    let base = |f: &FilmPredictions| baseline.predict(f.sample.sex);
    let all: Vec<&FilmPredictions> = films.iter().collect();
    let final_mae = mae(done, FilmPredictions::ensemble);
    let by_sex = |sex: Sex| {
        let v: Vec<&FilmPredictions> = done
            .iter()
            .copied()
            .filter(|f| f.sample.sex == sex)
            .collect();
        (mae(&v, FilmPredictions::ensemble), mae(&v, base))
    };
    let ((fm, bm), (ff, bf)) = (by_sex(Sex::Male), by_sex(Sex::Female));
    writeln!(md, "## Headline\n")?;
    writeln!(md, "| | all | M | F |\n| --- | --- | --- | --- |")?;
    writeln!(
        md,
        "| {} | **{}** ± {} (n={}) | {} (n={}) | {} (n={}) |",
        if spec.out_of_fold {
            "**ensemble of the film's fold** (its models of the film's sex + the mixed ones)"
        } else {
            "**ensemble as shipped** (each film: its sex's models + the mixed ones, all regions, both heads)"
        },
        fmt(final_mae.value),
        fmt(mae_half_width95(done, FilmPredictions::ensemble)),
        final_mae.n,
        fmt(fm.value),
        fm.n,
        fmt(ff.value),
        ff.n
    )?;
    writeln!(
        md,
        "| predict the mean training age per sex | {} | {} | {} |",
        fmt(mae(done, base).value),
        fmt(bm.value),
        fmt(bf.value)
    )?;
    writeln!(
        md,
        "\nMAE in months on the assessed films (± the half-width of its 95 % interval). The baseline over all {} validation films, refused ones included: {}.\n",
        films.len(),
        fmt(mae(&all, base).value)
    )?;
    if let Some(s) = spread_summary(done) {
        writeln!(
            md,
            "Ensemble spread (SD across members) as uncertainty: median {:.1} months; MAE {} on the half with the smaller spread, {} on the other half; the error is within 2 spreads for {} of {} films.\n",
            s.median,
            fmt(s.mae_low),
            fmt(s.mae_high),
            s.within_two,
            s.n
        )?;
    }
    if !refused.is_empty() {
        writeln!(md, "Refused: {}.\n", refused.join(", "))?;
    }
    Ok(())
}

fn fig8_section(
    md: &mut String,
    spec: &ReportSpec<'_>,
    done: &[&FilmPredictions],
    baseline: &MeanBaseline,
) -> Result<(), EvalError> {
    let table = fig8(done);
    let mut csv = String::from("region,cohort,type,mae_months,n\n");
    for (row, (_, rname)) in table.iter().zip(FIG8_ROWS) {
        for (cell, (cname, tname)) in row.iter().zip(
            FIG8_COHORTS
                .iter()
                .flat_map(|c| FIG8_HEADS.iter().map(move |h| (c.1, h.1))),
        ) {
            writeln!(
                csv,
                "{rname},{cname},{tname},{},{}",
                fmt(cell.mae.value),
                cell.mae.n
            )?;
        }
    }
    write_atomic(&spec.out.join("fig8.csv"), |w| w.write_all(csv.as_bytes()))?;
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
    for (_, cname) in FIG8_COHORTS {
        for (_, tname) in FIG8_HEADS {
            let short = cname.split(' ').next().unwrap_or(cname);
            write!(header, " {short} {tname} |")?;
            rule.push_str(" --- |");
        }
    }
    writeln!(md, "{header}\n{rule}")?;
    // A region no model reads (region D, in the paper's recipe) gets no row.
    let rows: Vec<(&str, Vec<Option<f64>>)> = table
        .iter()
        .zip(FIG8_ROWS)
        .filter(|(row, (region, _))| region.is_none() || row.iter().any(|c| c.mae.value.is_some()))
        .map(|(row, (_, label))| (label, row.iter().map(|c| c.mae.value).collect()))
        .collect();
    for (label, cells) in &rows {
        let cells: Vec<String> = cells.iter().map(|v| fmt(*v)).collect();
        writeln!(md, "| {label} | {} |", cells.join(" | "))?;
    }
    writeln!(md)?;
    let column_names: Vec<&str> = FIG8_COHORTS
        .iter()
        .flat_map(|_| FIG8_HEADS.map(|t| t.1))
        .collect();
    let count = |sex: Sex| done.iter().filter(|f| f.sample.sex == sex).count();
    heatmap(
        &spec.out.join("fig8.png"),
        if spec.out_of_fold {
            "Out-of-fold MAE (months) by region, model type and cohort"
        } else {
            "Validation MAE (months) by region, model type and cohort"
        },
        &FIG8_COHORTS.map(|c| (c.1, FIG8_HEADS.len())),
        &column_names,
        &rows,
        &format!(
            "{} {} films ({} M, {} F); predict-the-mean baseline {} months",
            done.len(),
            if spec.out_of_fold {
                "out-of-fold"
            } else {
                "validation"
            },
            count(Sex::Male),
            count(Sex::Female),
            fmt(mae(done, |f| baseline.predict(f.sample.sex)).value)
        ),
    )?;
    Ok(())
}

fn fig9_section(
    md: &mut String,
    spec: &ReportSpec<'_>,
    done: &[&FilmPredictions],
    baseline: &MeanBaseline,
) -> Result<(), EvalError> {
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
    for sex in Sex::ALL {
        let rows = fig9(done, sex, baseline);
        let title = if sex == Sex::Male { "Male" } else { "Female" };
        writeln!(md, "### {title}\n")?;
        // The regions some model reads, and the ensemble.
        let series: Vec<usize> = (0..FIG8_ROWS.len())
            .filter(|&i| FIG8_ROWS[i].0.is_none() || rows.iter().any(|r| r.mae[i].is_some()))
            .collect();
        let names: Vec<&str> = series
            .iter()
            .map(|&i| FIG8_ROWS[i].0.map_or("ensemble", |r| r.name()))
            .collect();
        writeln!(
            md,
            "| stage | n | {} | bias | baseline |\n| --- | --- |{} --- | --- |",
            names.join(" | "),
            " --- |".repeat(names.len())
        )?;
        for r in &rows {
            let maes: Vec<String> = series.iter().map(|&i| fmt(r.mae[i])).collect();
            writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                r.stage.name(),
                r.n,
                maes.join(" | "),
                r.bias.map_or("–".into(), |b| format!("{b:+.1}")),
                fmt(r.baseline)
            )?;
        }
        writeln!(md)?;
        // The films per stage go in the panel's title: with them in the axis labels,
        // five stages overlap.
        let per_stage: Vec<String> = rows.iter().map(|r| r.n.to_string()).collect();
        panels.push(LinePanel {
            title: format!(
                "{title} (n = {}; by stage {})",
                done.iter().filter(|f| f.sample.sex == sex).count(),
                per_stage.join(", ")
            ),
            categories: rows.iter().map(|r| r.stage.name().to_string()).collect(),
            series: series
                .iter()
                .map(|&i| {
                    let name = FIG8_ROWS[i].1.to_string();
                    (name, rows.iter().map(|r| r.mae[i]).collect())
                })
                .collect(),
        });
    }
    line_panels(
        &spec.out.join("fig9.png"),
        if spec.out_of_fold {
            "Out-of-fold MAE by skeletal development stage"
        } else {
            "Validation MAE by skeletal development stage"
        },
        "MAE, months",
        &panels,
    )?;
    Ok(())
}

fn torch_section(
    md: &mut String,
    spec: &ReportSpec<'_>,
    done: &[&FilmPredictions],
) -> Result<(), EvalError> {
    if spec.torch.is_empty() {
        return Ok(());
    }
    writeln!(md, "## Same data in PyTorch (`bench/torch_ref_train.py`)\n")?;
    writeln!(
        md,
        "| recipe | PyTorch val MAE | ours val MAE | PyTorch training time |\n| --- | --- | --- | --- |"
    )?;
    for path in spec.torch {
        let bad = |detail: String| EvalError::Torch {
            path: path.clone(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let j: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
        let region = j["region"].as_str().unwrap_or("A");
        let head = if j["head"].as_str() == Some("classification") {
            Head::Classification
        } else {
            Head::Regression
        };
        let ours: Mae = mae(done, |f| {
            f.combined(|k| k.cohort == Cohort::Mixed && k.region.name() == region && k.head == head)
        });
        writeln!(
            md,
            "| region {region} {} mixed, {} epochs, input {} | {:.2} ({} films) | {} ({} films) | {:.0} s |",
            head.short(),
            j["epochs"],
            j["input"],
            j["val_mae_months"].as_f64().unwrap_or(f64::NAN),
            j["val_images"],
            fmt(ours.value),
            ours.n,
            j["seconds"].as_f64().unwrap_or(f64::NAN)
        )?;
    }
    writeln!(md)?;
    Ok(())
}

/// The fitted ensemble and its intervals, cross-fitted over the folds (each fold's
/// films calibrated by a fit on the other folds), then fitted on every film and
/// written as `calibration.json`. Returns each film's cross-fitted calibration
/// (`None` for refused films).
fn calibration_section(
    md: &mut String,
    spec: &ReportSpec<'_>,
    films: &[FilmPredictions],
) -> Result<Vec<Option<Calibrated>>, EvalError> {
    writeln!(md, "## Fitted ensemble and 90 % intervals\n")?;
    let mut rows = Vec::new();
    let mut folds = Vec::new();
    let mut index = Vec::new();
    for (i, (f, &k)) in films.iter().zip(spec.folds).enumerate() {
        if let Ok(members) = &f.members {
            rows.push(CalFilm {
                sex: f.sample.sex,
                truth: f.truth(),
                members,
            });
            folds.push(k);
            index.push(i);
        }
    }
    let mut out = vec![None; films.len()];
    let crossed = match calibration::cross_fit(&rows, &folds, calibration::LEVEL) {
        Ok(c) => c,
        Err(e) => {
            writeln!(md, "Not fitted: {e}.\n")?;
            return Ok(out);
        }
    };
    for (&i, c) in index.iter().zip(&crossed) {
        out[i] = Some(*c);
    }
    let count = |sex: Sex| rows.iter().filter(|r| r.sex == sex).count();
    // Cross-fitting has nothing to fit when every film was refused; the fit on
    // every film says why it cannot be made.
    let fitted = calibration::fit(
        &rows,
        calibration::LEVEL,
        format!(
            "out-of-fold predictions of {} films ({} M, {} F; folds {}, models {}), by `{}`",
            rows.len(),
            count(Sex::Male),
            count(Sex::Female),
            spec.holdout.display(),
            spec.models_from,
            spec.command
        ),
    );
    let mut cal = match fitted {
        Ok(cal) => cal,
        Err(e) => {
            writeln!(md, "Not fitted: {e}.\n")?;
            return Ok(out);
        }
    };
    cal.tta = spec.tta.clone();
    let json = serde_json::to_string_pretty(&cal).expect("plain data");
    write_atomic(&spec.out.join("calibration.json"), |w| {
        w.write_all(json.as_bytes())
    })?;
    writeln!(
        md,
        "Per sex, a ridge regression of the true age on the members' out-of-fold \
         predictions (with an intercept, shrunk towards the plain mean: with one member, a \
         linear bias correction), stretched away from the mean just far enough that no \
         true stage with {} or more of the fitted films keeps a mean signed error beyond \
         ±{} months there (least squares reads the youngest too old and the oldest too \
         young), and a 90 % interval from its residuals by the stage of the \
         predicted age (split conformal). Measured **cross-fitted**: each fold's films are \
         corrected with a fit on the other folds only. Fitted on every film, it is \
         `calibration.json`: put it beside the models that were trained on all films and \
         `boneage assess` applies it.\n",
        calibration::STAGE_FILMS,
        calibration::STAGE_BIAS
    )?;
    // The assessed films (indices into `films`) of a sex, or of both.
    let pick = |sex: Option<Sex>| -> Vec<usize> {
        index
            .iter()
            .copied()
            .filter(|&i| sex.is_none_or(|s| films[i].sample.sex == s))
            .collect()
    };
    let subset =
        |ix: &[usize]| -> Vec<&FilmPredictions> { ix.iter().map(|&i| &films[i]).collect() };
    // MAE ± the half-width of its 95 % interval.
    let err_stats = |ix: &[usize], est: &dyn Fn(&FilmPredictions) -> Option<f64>| -> String {
        let f = subset(ix);
        match (mae(&f, est).value, mae_half_width95(&f, est)) {
            (Some(m), Some(h)) => format!("{m:.2} ± {h:.2}"),
            _ => "–".into(),
        }
    };
    let fitted_of: std::collections::HashMap<&str, Calibrated> = index
        .iter()
        .filter_map(|&i| Some((films[i].sample.id.as_str(), out[i]?)))
        .collect();
    let plain = |f: &FilmPredictions| f.ensemble();
    let fitted = |f: &FilmPredictions| fitted_of.get(f.sample.id.as_str()).map(|c| c.months);
    let covered =
        |i: usize| out[i].is_some_and(|c| c.low <= films[i].truth() && films[i].truth() <= c.high);
    writeln!(md, "| | all | M | F |\n| --- | --- | --- | --- |")?;
    for (name, est) in [
        (
            "plain mean of the members",
            &plain as &dyn Fn(&FilmPredictions) -> Option<f64>,
        ),
        ("**fitted (cross-fitted)**", &fitted),
    ] {
        writeln!(
            md,
            "| {name} | {} | {} | {} |",
            err_stats(&pick(None), est),
            err_stats(&pick(Some(Sex::Male)), est),
            err_stats(&pick(Some(Sex::Female)), est)
        )?;
    }
    writeln!(
        md,
        "\nMAE in months ± the half-width of its 95 % interval. The fitted ensemble \
         (cross-fitted) against the truth: `scatter_fitted.png`.\n"
    )?;
    let groups = truth_against(subset(&pick(None)).into_iter(), fitted);
    scatter(
        &spec.out.join("scatter_fitted.png"),
        &format!(
            "Fitted ensemble vs reader, cross-fitted (MAE {} months)",
            fmt(mae(&subset(&pick(None)), fitted).value)
        ),
        ("true bone age, months", "predicted bone age, months"),
        240.0,
        &groups,
    )?;
    writeln!(md, "The fit on every film (`calibration.json`):\n")?;
    for f in &cal.sexes {
        let terms: Vec<String> = f
            .members
            .iter()
            .zip(&f.weights)
            .map(|(m, w)| format!("{w:.3}·{m}"))
            .collect();
        writeln!(
            md,
            "- {}: {:.1} + {} ({} films; stretch {:.2} of the way to the inverse regression)",
            f.sex.word(),
            f.intercept,
            terms.join(" + "),
            f.films,
            f.stretch
        )?;
    }
    writeln!(
        md,
        "\n### Coverage of the {level:.0} % intervals (cross-fitted), by sex and true stage\n\n\
         *By chance* is how many of the stage's films intervals that hold exactly {level:.0} % \
         would cover in 95 % of samples of that size: a coverage outside it is more than the \
         luck of the draw.\n",
        level = 100.0 * cal.level
    )?;
    writeln!(
        md,
        "| sex | stage | n | coverage | by chance | median width | fitted MAE | fitted bias |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    )?;
    let mut panels = Vec::new();
    for sex in Sex::ALL {
        let mut cover = Vec::new();
        let mut stages = Vec::new();
        for stage in Stage::ALL {
            let ix: Vec<usize> = pick(Some(sex))
                .into_iter()
                .filter(|&i| Stage::of(films[i].truth(), sex) == stage)
                .collect();
            stages.push(stage.name().to_string());
            if ix.is_empty() {
                cover.push(None);
                continue;
            }
            let c: Vec<Calibrated> = ix.iter().filter_map(|&i| out[i]).collect();
            let inside = ix.iter().filter(|&&i| covered(i)).count();
            let n = ix.len();
            let pct = 100.0 * inside as f64 / n as f64;
            let widths: Vec<f64> = c.iter().map(|c| c.high - c.low).collect();
            let signed = bias(&subset(&ix), fitted);
            let (lo, hi) = boneage_core::metrics::binomial_range(n, cal.level, 0.95);
            writeln!(
                md,
                "| {} | {} | {n} | {pct:.0} % ({inside} of {n}{}) | {lo}–{hi} | {} | {} | {} |",
                sex.letter(),
                stage.name(),
                if n < 20 { ", few films" } else { "" },
                fmt(boneage_core::metrics::percentile(&widths, 0.5)),
                err_stats(&ix, &fitted),
                signed.map_or("–".into(), |b| format!("{b:+.1}"))
            )?;
            cover.push((n >= 20).then_some(pct));
        }
        panels.push(LinePanel {
            title: format!("{} (stages with ≥ 20 films)", sex.word()),
            categories: stages,
            series: vec![
                (
                    "nominal 90 %".to_string(),
                    vec![Some(90.0); Stage::ALL.len()],
                ),
                ("out-of-fold coverage, %".to_string(), cover),
            ],
        });
    }
    let all = pick(None);
    let inside = all.iter().filter(|&&i| covered(i)).count();
    let wide = all
        .iter()
        .filter(|&&i| out[i].is_some_and(|c| c.wide))
        .count();
    writeln!(
        md,
        "\nAll: {inside} of {} films inside their interval ({:.1} %); {wide} flagged as too wide \
         (half-width ≥ {:.0} months). `coverage.png`.\n",
        all.len(),
        100.0 * inside as f64 / all.len().max(1) as f64,
        cal.wide_months
    )?;
    line_panels(
        &spec.out.join("coverage.png"),
        "Out-of-fold coverage of the 90 % intervals by true stage",
        "films inside their interval, %",
        &panels,
    )?;
    Ok(out)
}

/// `predictions.csv`: each film's truth, ensemble, every model's prediction and, out
/// of fold, the cross-fitted calibrated age with its interval.
fn write_predictions(
    spec: &ReportSpec<'_>,
    films: &[FilmPredictions],
    calibrated: &[Option<Calibrated>],
) -> Result<(), EvalError> {
    let two = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.2}"));
    let mut pred = String::from("id,sex,true_months,ensemble_months");
    for k in &spec.keys {
        write!(pred, ",{k}")?;
    }
    if spec.out_of_fold {
        pred.push_str(",fold,fitted_months,low_months,high_months");
    }
    pred.push_str(",refused\n");
    for (i, f) in films.iter().enumerate() {
        write!(
            pred,
            "{},{},{},{}",
            f.sample.id,
            f.sample.sex.letter(),
            f.truth(),
            two(f.ensemble())
        )?;
        for k in &spec.keys {
            write!(
                pred,
                ",{}",
                two(f.members.as_ref().ok().and_then(|p| p.get(k)).copied())
            )?;
        }
        if spec.out_of_fold {
            let c = calibrated[i];
            write!(
                pred,
                ",{},{},{},{}",
                spec.folds
                    .get(i)
                    .map_or(String::new(), |k| (k + 1).to_string()),
                two(c.map(|c| c.months)),
                two(c.map(|c| c.low)),
                two(c.map(|c| c.high))
            )?;
        }
        let refusal = f.members.as_ref().err().map_or("", |e| e.as_str());
        writeln!(pred, ",{}", refusal.replace(',', ";"))?;
    }
    write_atomic(&spec.out.join("predictions.csv"), |w| {
        w.write_all(pred.as_bytes())
    })?;
    Ok(())
}
