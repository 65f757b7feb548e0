//! `boneage assess`: the main job. A radiograph and the patient's sex in, the bone
//! age out, with the per-region estimates, the ensemble's spread and, given the
//! chronological age, the Greulich–Pyle/Brush SDS. One image, or a batch (a folder
//! or a CSV list) with a progress bar, a results CSV and, with labels, the MAE.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use boneage_core::dataset::read_labels;
use boneage_core::growth::{Comparison, compare, parse_age, years_months};
use boneage_core::io::{Sex, months_between, parse_date, write_atomic};
use boneage_core::registration::{Canvas, Region};
use boneage_core::{Radiograph, read_radiograph};
use boneage_nn::assess::{AgeModels, Estimate, RegionCrops};
use boneage_nn::predict::{Pipeline, Preprocessed, shipped_models_dir};
use serde::Serialize;

/// Arguments of `boneage assess`.
#[derive(clap::Args)]
pub struct Args {
    /// A radiograph (PNG, JPEG, DICOM); or, for a batch, a folder of them or a CSV
    /// list with an `image` column (paths relative to the CSV) and optional `sex`
    /// and `age` columns.
    input: PathBuf,
    /// Patient sex, M or F (overrides the DICOM header; in a batch, the default for
    /// images whose sex is known from nowhere else).
    #[arg(long)]
    sex: Option<String>,
    /// Chronological age, e.g. `10y3m`, `10.5y`, `7m` or months.
    #[arg(long, conflicts_with_all = ["birth", "study"])]
    age: Option<String>,
    /// Birth date (YYYY-MM-DD); with --study gives the chronological age.
    #[arg(long, requires = "study")]
    birth: Option<String>,
    /// Study date (YYYY-MM-DD).
    #[arg(long, requires = "birth")]
    study: Option<String>,
    /// Print JSON instead of text (one image).
    #[arg(long)]
    json: bool,
    /// Write a picture of the evidence: the registered hand with its key points and
    /// regions, and the estimates (one image).
    #[arg(long, value_name = "PNG")]
    overlay: Option<PathBuf>,
    /// Batch: write one row per image here.
    #[arg(long, value_name = "CSV")]
    out: Option<PathBuf>,
    /// Batch: a labels table (`id,boneage,male`, the RSNA layout) for sex and the
    /// MAE; a folder's `FOLDER.csv` or `FOLDER/labels.csv` is used when present.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Folder with `unet.safetensors`, `keypoints.safetensors` and `age/` (default:
    /// the shipped `models/`, or `$BONEAGE_MODELS`).
    #[arg(long)]
    models: Option<PathBuf>,
}

/// Segment → normalize → key points → register → regions → ensemble.
pub struct Assessor {
    pipeline: Pipeline,
    models: AgeModels,
    canvas: Canvas,
}

/// One image's answer.
pub struct Assessment {
    /// What preprocessing found.
    pub pre: Preprocessed,
    /// The ensemble's estimate.
    pub estimate: Estimate,
}

impl Assessor {
    /// Loads the pipeline from `dir` and the bone-age models from `dir/age` (only
    /// those covering `sex`, when given).
    pub fn load(dir: Option<&Path>, sex: Option<Sex>) -> anyhow::Result<Self> {
        let dir = dir
            .map(Path::to_path_buf)
            .unwrap_or_else(shipped_models_dir);
        let canvas = Canvas::CPU;
        let pipeline = Pipeline::load(&dir, canvas).with_context(|| {
            format!(
                "loading the preprocessing models in {} (give --models)",
                dir.display()
            )
        })?;
        let models = AgeModels::load_dir_for(&dir.join("age"), sex).with_context(|| {
            format!(
                "loading the bone-age models in {} (train them with scripts/train_age_grid.sh, or give --models)",
                dir.join("age").display()
            )
        })?;
        Ok(Self {
            pipeline,
            models,
            canvas,
        })
    }

    /// Assesses one radiograph; an error is a refusal that says why.
    pub fn assess(&self, r: &Radiograph, sex: Sex) -> anyhow::Result<Assessment> {
        let pre = self
            .pipeline
            .run(&r.pixels)
            .map_err(|e| anyhow::anyhow!("refused: {e}"))?;
        let crops = RegionCrops::from_canvas(&pre.registered, &self.canvas);
        let estimate = self
            .models
            .assess(&crops, sex)
            .ok_or_else(|| anyhow::anyhow!("no bone-age model covers sex {}", sex.letter()))?;
        Ok(Assessment { pre, estimate })
    }
}

fn parse_sex(s: &str) -> anyhow::Result<Sex> {
    match s.trim().to_ascii_uppercase().as_str() {
        "M" | "MALE" | "1" | "TRUE" => Ok(Sex::Male),
        "F" | "FEMALE" | "0" | "FALSE" => Ok(Sex::Female),
        _ => bail!("sex {s:?}: use M or F"),
    }
}

/// The chronological age from the flags, or `None`.
fn age_from_flags(args: &Args) -> anyhow::Result<Option<f64>> {
    if let Some(a) = &args.age {
        return parse_age(a).map(Some).with_context(|| {
            format!("--age {a:?}: use e.g. 10y3m, 10.5y, 7m or a number of months")
        });
    }
    if let (Some(b), Some(s)) = (&args.birth, &args.study) {
        let date = |v: &str, flag: &str| {
            parse_date(v).with_context(|| format!("--{flag} {v:?}: use YYYY-MM-DD"))
        };
        let months = months_between(date(b, "birth")?, date(s, "study")?)
            .filter(|m| *m >= 0.0)
            .with_context(|| format!("--birth {b} is after --study {s}"))?;
        return Ok(Some(months));
    }
    Ok(None)
}

/// What `--json` prints.
#[derive(Serialize)]
struct Report<'a> {
    file: String,
    sex: &'static str,
    sex_from: &'static str,
    bone_age_months: f64,
    bone_age: String,
    spread_months: f64,
    regions: BTreeMap<&'static str, Option<f64>>,
    members: &'a [boneage_nn::assess::MemberEstimate],
    chronological: Option<Comparison>,
    seconds: f64,
}

fn regions_map(e: &Estimate) -> BTreeMap<&'static str, Option<f64>> {
    Region::ALL
        .iter()
        .map(|r| (r.name(), e.regions[*r as usize]))
        .collect()
}

const REGION_NAMES: [&str; 3] = [
    "A, whole hand",
    "B, carpals",
    "C, metacarpals and phalanges",
];

/// Runs `boneage assess`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let batch = args.input.is_dir()
        || args
            .input
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if batch {
        return run_batch(&args);
    }
    if args.out.is_some() || args.labels.is_some() {
        bail!("--out and --labels are for a batch (a folder or a CSV list), not one image");
    }
    let t = Instant::now();
    let r = read_radiograph(&args.input)?;
    let (sex, sex_from) = match (&args.sex, r.meta.sex) {
        (Some(s), _) => (parse_sex(s)?, "--sex"),
        (None, Some(s)) => (s, "the file's header"),
        (None, None) => bail!(
            "{}: the patient's sex is needed and the file does not record it: give --sex M or F",
            args.input.display()
        ),
    };
    let chrono = match age_from_flags(&args)? {
        Some(a) => Some(a),
        None => r.meta.age_months,
    };
    let assessor = Assessor::load(args.models.as_deref(), Some(sex))?;
    let a = match assessor.assess(&r, sex) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}: {e:#}", args.input.display());
            return Ok(ExitCode::from(3));
        }
    };
    let seconds = t.elapsed().as_secs_f64();
    let e = &a.estimate;
    let cmp = chrono.map(|c| compare(sex, e.months, c));
    if let Some(path) = &args.overlay {
        let img = evidence_picture(&a, &assessor.canvas, sex, cmp.as_ref());
        boneage_core::image::save_rgb8_png(&img, path)?;
    }
    if args.json {
        let report = Report {
            file: args.input.display().to_string(),
            sex: sex.letter(),
            sex_from,
            bone_age_months: e.months,
            bone_age: years_months(e.months),
            spread_months: e.spread,
            regions: regions_map(e),
            members: &e.members,
            chronological: cmp,
            seconds,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in text_lines(
            &args.input.display().to_string(),
            sex,
            sex_from,
            &a,
            cmp.as_ref(),
        ) {
            println!("{line}");
        }
        println!("time {seconds:.2} s (models loaded and run on this machine)");
    }
    Ok(ExitCode::SUCCESS)
}

fn text_lines(
    name: &str,
    sex: Sex,
    sex_from: &str,
    a: &Assessment,
    cmp: Option<&Comparison>,
) -> Vec<String> {
    let e = &a.estimate;
    let mut lines = vec![format!(
        "{name}: bone age {:.0} months ({}), spread ±{:.1} months across {} models (sex {} from {sex_from})",
        e.months,
        years_months(e.months),
        e.spread,
        e.members.len(),
        sex.letter()
    )];
    for (i, v) in e.regions.iter().enumerate() {
        if let Some(v) = v {
            lines.push(format!("  region {:<32} {v:>6.1} months", REGION_NAMES[i]));
        }
    }
    if let Some(c) = cmp {
        lines.push(format!(
            "  chronological age {:.0} months ({}): {:+.0} months, SDS {:+.2} (Greulich-Pyle/Brush SD {:.1} months{}): {}",
            c.chronological_months,
            years_months(c.chronological_months),
            c.difference_months,
            c.sds,
            c.sd_months,
            if c.outside_table { ", age outside the table: nearest SD used" } else { "" },
            c.verdict.name()
        ));
    }
    lines
}

/// The registered hand with key points and regions, and the numbers beneath.
fn evidence_picture(
    a: &Assessment,
    canvas: &Canvas,
    sex: Sex,
    cmp: Option<&Comparison>,
) -> image::RgbImage {
    let hand = super::preprocess::canvas_overlay(&a.pre, canvas);
    let e = &a.estimate;
    let mut lines = vec![
        format!("BONE AGE {:.0} MO ({})", e.months, years_months(e.months)),
        format!(
            "SEX {}, SPREAD {:.1} MO, {} MODELS",
            sex.letter(),
            e.spread,
            e.members.len()
        ),
    ];
    for (i, v) in e.regions.iter().enumerate() {
        if let Some(v) = v {
            lines.push(format!(
                "{} {v:.0} MO",
                ["A HAND", "B CARPALS", "C METACARPALS"][i]
            ));
        }
    }
    if let Some(c) = cmp {
        // Short lines: the canvas is 400 px wide, 33 characters at this size.
        lines.push(format!(
            "AGE {:.0} MO ({})",
            c.chronological_months,
            years_months(c.chronological_months)
        ));
        lines.push(format!(
            "DIFF {:+.0} MO, SDS {:+.1}: {}",
            c.difference_months,
            c.sds,
            c.verdict.name()
        ));
    }
    let scale = 2usize;
    let line_h = 9 * scale;
    let band = (lines.len() * line_h + 8) as u32;
    let mut out = image::RgbImage::new(hand.width(), hand.height() + band);
    image::imageops::replace(&mut out, &hand, 0, 0);
    for (i, l) in lines.iter().enumerate() {
        boneage_core::font::draw_text_rgb(
            &mut out,
            l,
            6,
            (hand.height() as usize + 4 + i * line_h) as i64,
            scale,
            if i == 0 {
                [255, 220, 80]
            } else {
                [230, 230, 230]
            },
        );
    }
    out
}

/// One image of a batch.
struct Item {
    id: String,
    path: PathBuf,
    sex: Option<Sex>,
    age: Option<f64>,
    truth: Option<f64>,
}

const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "dcm", "dicom", "dic"];

fn batch_items(args: &Args) -> anyhow::Result<Vec<Item>> {
    let labels_path = args.labels.clone().or_else(|| {
        args.input.is_dir().then(|| {
            let beside = args.input.with_extension("csv");
            let inside = args.input.join("labels.csv");
            if beside.is_file() {
                Some(beside)
            } else if inside.is_file() {
                Some(inside)
            } else {
                None
            }
        })?
    });
    let labels: BTreeMap<String, (f64, Sex)> = match &labels_path {
        Some(p) => read_labels(p)?
            .into_iter()
            .map(|s| (s.id, (s.boneage_months, s.sex)))
            .collect(),
        None => BTreeMap::new(),
    };
    if let Some(p) = &labels_path {
        eprintln!("labels: {} ({} images)", p.display(), labels.len());
    }
    let default_sex = args.sex.as_deref().map(parse_sex).transpose()?;
    let mut items = Vec::new();
    if args.input.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&args.input)
            .with_context(|| format!("reading {}", args.input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| {
                    IMAGE_EXTENSIONS.contains(&e.to_string_lossy().to_ascii_lowercase().as_str())
                })
            })
            .collect();
        paths.sort();
        for path in paths {
            let id = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let label = labels.get(&id);
            items.push(Item {
                sex: label.map(|l| l.1).or(default_sex),
                truth: label.map(|l| l.0),
                age: None,
                id,
                path,
            });
        }
    } else {
        let text = std::fs::read_to_string(&args.input)
            .with_context(|| format!("reading {}", args.input.display()))?;
        let base = args.input.parent().unwrap_or(Path::new("."));
        let mut lines = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'));
        let header: Vec<String> = lines
            .next()
            .with_context(|| format!("{}: empty list", args.input.display()))?
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .collect();
        let col = |name: &str| header.iter().position(|h| h == name);
        let image_col = col("image").with_context(|| {
            format!(
                "{}: no `image` column in the header line (image,sex,age)",
                args.input.display()
            )
        })?;
        let (sex_col, age_col) = (col("sex"), col("age"));
        for (n, line) in lines.enumerate() {
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = |what: String| {
                anyhow::anyhow!("{}: data line {}: {what}", args.input.display(), n + 1)
            };
            let rel = f.get(image_col).ok_or_else(|| bad("no image".into()))?;
            let path = base.join(rel);
            let id = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let sex = match sex_col.and_then(|c| f.get(c)).filter(|v| !v.is_empty()) {
                Some(v) => Some(parse_sex(v).map_err(|e| bad(e.to_string()))?),
                None => labels.get(&id).map(|l| l.1).or(default_sex),
            };
            let age = match age_col.and_then(|c| f.get(c)).filter(|v| !v.is_empty()) {
                Some(v) => Some(
                    parse_age(v)
                        .ok_or_else(|| bad(format!("age {v:?}: use e.g. 10y3m or months")))?,
                ),
                None => None,
            };
            items.push(Item {
                truth: labels.get(&id).map(|l| l.0),
                id,
                path,
                sex,
                age,
            });
        }
    }
    if items.is_empty() {
        bail!("{}: no radiographs found", args.input.display());
    }
    Ok(items)
}

/// One row of the results CSV.
#[derive(Default)]
struct Row {
    id: String,
    file: String,
    sex: String,
    bone_age: Option<f64>,
    spread: Option<f64>,
    regions: [Option<f64>; 3],
    chrono: Option<Comparison>,
    truth: Option<f64>,
    seconds: f64,
    error: String,
}

fn fmt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| format!("{v:.2}"))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn run_batch(args: &Args) -> anyhow::Result<ExitCode> {
    if args.json || args.overlay.is_some() {
        bail!("--json and --overlay are for one image; a batch writes --out CSV");
    }
    let out = args
        .out
        .clone()
        .context("a batch needs --out results.csv")?;
    let items = batch_items(args)?;
    let flag_age = age_from_flags(args)?;
    let assessor = Assessor::load(args.models.as_deref(), None)?;
    let bar = super::progress_bar(items.len() as u64, "assessing");
    let mut rows = Vec::with_capacity(items.len());
    let (mut abs_sum, mut n_err) = (0.0, 0usize);
    for item in &items {
        let t = Instant::now();
        let mut row = Row {
            id: item.id.clone(),
            file: item.path.display().to_string(),
            truth: item.truth,
            ..Row::default()
        };
        let result = read_radiograph(&item.path)
            .map_err(anyhow::Error::from)
            .and_then(|r| {
                let sex = item.sex.or(r.meta.sex).context(
                    "the patient's sex is unknown (not in the labels, the list or the header): give --sex",
                )?;
                let chrono = item.age.or(flag_age).or(r.meta.age_months);
                let a = assessor.assess(&r, sex)?;
                Ok((sex, chrono, a))
            });
        match result {
            Ok((sex, chrono, a)) => {
                let e = &a.estimate;
                row.sex = sex.letter().to_string();
                row.bone_age = Some(e.months);
                row.spread = Some(e.spread);
                row.regions = e.regions;
                row.chrono = chrono.map(|c| compare(sex, e.months, c));
                if let Some(t) = item.truth {
                    abs_sum += (e.months - t).abs();
                    n_err += 1;
                    bar.set_message(format!(
                        "assessing, MAE so far {:.1} months",
                        abs_sum / n_err as f64
                    ));
                }
            }
            Err(e) => row.error = format!("{e:#}"),
        }
        row.seconds = t.elapsed().as_secs_f64();
        rows.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    write_results(&out, &rows)?;
    let done: Vec<&Row> = rows.iter().filter(|r| r.error.is_empty()).collect();
    let refused = rows
        .iter()
        .filter(|r| r.error.starts_with("refused"))
        .count();
    let failed = rows.len() - done.len() - refused;
    let mean_s = rows.iter().map(|r| r.seconds).sum::<f64>() / rows.len() as f64;
    eprintln!(
        "{} images: {} assessed, {} refused, {} failed; {:.2} s per image; results in {}",
        rows.len(),
        done.len(),
        refused,
        failed,
        mean_s,
        out.display()
    );
    if n_err > 0 {
        let by_sex = |s: &str| {
            let v: Vec<f64> = done
                .iter()
                .filter(|r| r.sex == s)
                .filter_map(|r| Some((r.bone_age? - r.truth?).abs()))
                .collect();
            (v.len(), v.iter().sum::<f64>() / v.len().max(1) as f64)
        };
        let ((nm, mm), (nf, mf)) = (by_sex("M"), by_sex("F"));
        println!(
            "MAE {:.2} months over {n_err} labelled images (M {mm:.2} over {nm}, F {mf:.2} over {nf})",
            abs_sum / n_err as f64
        );
    }
    Ok(if done.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_results(out: &Path, rows: &[Row]) -> anyhow::Result<()> {
    write_atomic(out, |w| {
        writeln!(
            w,
            "id,file,sex,bone_age_months,spread_months,region_a,region_b,region_c,chronological_age_months,difference_months,sds,verdict,true_bone_age_months,error_months,seconds,error"
        )?;
        for r in rows {
            let c = r.chrono.as_ref();
            writeln!(
                w,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.3},{}",
                csv_field(&r.id),
                csv_field(&r.file),
                r.sex,
                fmt(r.bone_age),
                fmt(r.spread),
                fmt(r.regions[0]),
                fmt(r.regions[1]),
                fmt(r.regions[2]),
                fmt(c.map(|c| c.chronological_months)),
                fmt(c.map(|c| c.difference_months)),
                fmt(c.map(|c| c.sds)),
                c.map_or("", |c| c.verdict.name()),
                fmt(r.truth),
                fmt(r.bone_age.zip(r.truth).map(|(b, t)| b - t)),
                r.seconds,
                csv_field(&r.error)
            )?;
        }
        Ok(())
    })
    .with_context(|| format!("writing {}", out.display()))
}
