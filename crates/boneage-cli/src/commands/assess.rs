//! `boneage assess`: the main job. A radiograph and the patient's sex in, the bone
//! age out, with the per-region estimates, the ensemble's spread and, given the
//! chronological age, the Greulich–Pyle/Brush SDS. One image, or a batch (a folder
//! or a CSV list) with a progress bar, a results CSV and, with labels, the MAE.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use boneage::assessor::age_from_dates;
use boneage::at_once::{each_at_once, jobs_for};
use boneage::batch::{self, BatchItem};
use boneage::shard::{self, Shard};
use boneage::{Assessor, DeviceChoice, ModelsDir, Patient, Progress};
use boneage_core::growth::parse_age;
use boneage_core::{Sex, read_radiograph};

use crate::args::at_least_one;
use crate::exit;
use crate::progress::Bars;

/// Arguments of `boneage assess`.
#[derive(clap::Args)]
pub struct Args {
    /// A radiograph (PNG, JPEG, DICOM); or, for a batch, a folder of them or a CSV
    /// list with an `image` column (paths relative to the CSV) and optional `sex`
    /// and `age` columns.
    input: PathBuf,
    /// Patient sex, M or F (overrides the DICOM header; in a batch, the default for
    /// images whose sex is known from nowhere else).
    #[arg(long, value_parser = str::parse::<Sex>)]
    sex: Option<Sex>,
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
    /// Batch: write one row per image here (with --shard: a folder for the part's
    /// `part-I-of-N.csv`).
    #[arg(long, value_name = "CSV|DIR")]
    out: Option<PathBuf>,
    /// Batch: assess only part I of N of the list (films k with k mod N = I; I from
    /// 0, as a Kubernetes Indexed Job's JOB_COMPLETION_INDEX), skipping films the
    /// part's file already holds; `boneage merge DIR` joins the parts.
    #[arg(long, value_name = "I/N", requires = "out")]
    shard: Option<Shard>,
    /// Batch: a labels table (`id,boneage,male`, the RSNA layout) for sex and the
    /// MAE; a folder's `FOLDER.csv` or `FOLDER/labels.csv` is used when present.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Folder with `unet.safetensors`, `keypoints.safetensors` and `age/` (default:
    /// `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Bone-age models folder instead of MODELS/age, e.g. `models/age-paper` for the
    /// paper's ensemble of 18 VGG models.
    #[arg(long, value_name = "DIR")]
    age_models: Option<PathBuf>,
    /// Batch: films assessed at once, each on a core of its own (default: one a core
    /// on the CPU, one at a time on a GPU; 1 assesses them one after another).
    #[arg(long, short = 'j', value_name = "N", value_parser = at_least_one)]
    jobs: Option<usize>,
}

/// The chronological age from the flags, or `None`.
fn age_from_flags(args: &Args) -> anyhow::Result<Option<f64>> {
    if let Some(a) = &args.age {
        return parse_age(a).map(Some).with_context(|| {
            format!("--age {a:?}: use e.g. 10y3m, 10.5y, 7m or a number of months")
        });
    }
    if let (Some(b), Some(s)) = (&args.birth, &args.study) {
        return Ok(Some(age_from_dates(b, s).context("--birth/--study")?));
    }
    Ok(None)
}

/// Runs `boneage assess`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    if batch::is_batch(&args.input) {
        return run_batch(&args, device);
    }
    if args.out.is_some() || args.labels.is_some() {
        bail!("--out and --labels are for a batch (a folder or a CSV list), not one image");
    }
    let t = Instant::now();
    let r = read_radiograph(&args.input)?;
    let (sex, sex_from) = match (args.sex, r.meta.sex) {
        (Some(s), _) => (s, "--sex"),
        (None, Some(s)) => (s, "the file's header"),
        (None, None) => bail!(
            "{}: the patient's sex is needed and the file does not record it: give --sex M or F",
            args.input.display()
        ),
    };
    let mut patient = Patient::new(sex);
    patient.age_months = age_from_flags(&args)?.or(r.meta.age_months);
    let models = ModelsDir::locate(args.models.as_deref())?.with_age_dir(args.age_models.clone());
    let assessor = Assessor::load_for(&models, device, Some(sex))?;
    let a = match assessor.assess(&r, &patient) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{}: refused: {e}", args.input.display());
            return Ok(ExitCode::from(exit::REFUSED));
        }
    };
    let seconds = t.elapsed().as_secs_f64();
    if let Some(path) = &args.overlay {
        boneage_core::image::save_rgb8_png(&a.evidence_picture(&assessor.canvas()), path)?;
    }
    let file = args.input.display().to_string();
    if args.json {
        let report = a.report(&file, sex_from, seconds);
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for line in a.text_lines(&file, sex_from) {
            println!("{line}");
        }
        println!("time {seconds:.2} s (models loaded and run on this machine)");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_batch(args: &Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    if args.json || args.overlay.is_some() {
        bail!("--json and --overlay are for one image; a batch writes --out CSV");
    }
    let out = args
        .out
        .clone()
        .context("a batch needs --out results.csv")?;
    let labels = batch::labels_for(&args.input, args.labels.as_deref());
    let items: Vec<BatchItem> = batch::batch_items(&args.input, labels.as_deref(), args.sex)?;
    if let Some(p) = &labels {
        let n = items.iter().filter(|i| i.truth.is_some()).count();
        eprintln!("labels: {} ({n} of the images labelled)", p.display());
    }
    let age = age_from_flags(args)?;
    let models = ModelsDir::locate(args.models.as_deref())?.with_age_dir(args.age_models.clone());
    let assessor = Assessor::load(&models, device)?;
    let jobs = jobs_for(args.jobs, device);
    if let Some(part) = args.shard {
        return run_shard(&assessor, &items, part, &out, age, jobs);
    }
    let bars = Bars::default();
    bars.start("assessing", items.len());
    let t = Instant::now();
    let mut rows = Vec::with_capacity(items.len());
    let mut running = batch::RunningMae::default();
    let assess = |item: &BatchItem| batch::assess_item(&assessor, item, age);
    each_at_once(&items, jobs, assess, |_, row| {
        running.add(&row);
        if let Some(mae) = running.value() {
            bars.message(&format!("assessing, MAE so far {mae:.1} months"));
        }
        rows.push(row);
        bars.inc();
        anyhow::Ok(())
    })?;
    let wall = t.elapsed().as_secs_f64();
    bars.finish();
    batch::write_results(&out, &rows)?;
    let s = batch::summarize(&rows);
    let low = match s.low_resolution {
        0 => String::new(),
        n => format!(" ({n} with too few pixels for the hand: low_resolution in the results)"),
    };
    let at_once = match jobs.min(s.films) {
        0 | 1 => String::new(),
        j => format!(" ({j} at once, each on its own core)"),
    };
    eprintln!(
        "{} images: {} assessed{low}, {} refused, {} failed; {:.2} s per image{at_once}, \
         {:.2} s per image of wall time; results in {}",
        s.films,
        s.assessed,
        s.refused,
        s.failed,
        s.mean_seconds,
        wall / s.films.max(1) as f64,
        out.display()
    );
    if let Some([all, m, f]) = s.mae {
        println!(
            "MAE {:.2} months over {} labelled images (M {:.2} over {}, F {:.2} over {})",
            all.mae, all.n, m.mae, m.n, f.mae, f.n
        );
    }
    Ok(if s.assessed == 0 {
        ExitCode::from(exit::SOME_FAILED)
    } else {
        exit::failures(s.refused + s.failed)
    })
}

/// One part of a sharded batch: the part's films not yet in its file, each appended
/// as it is done.
fn run_shard(
    assessor: &Assessor,
    items: &[BatchItem],
    part: Shard,
    dir: &std::path::Path,
    age: Option<f64>,
    jobs: usize,
) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = part.path(dir);
    let done = shard::done_ids(&path)?;
    let todo: Vec<BatchItem> = part
        .items(items)
        .into_iter()
        .filter(|i| !done.contains(&i.id))
        .collect();
    let bars = Bars::default();
    bars.start(&format!("part {part}"), todo.len());
    let mut failed = 0;
    let assess = |item: &BatchItem| batch::assess_item(assessor, item, age);
    each_at_once(&todo, jobs, assess, |_, row| {
        failed += usize::from(!row.error.is_empty());
        shard::append_row(&path, &row)?;
        bars.inc();
        anyhow::Ok(())
    })?;
    bars.finish();
    eprintln!(
        "part {part}: {} films already done, {} assessed now ({failed} refused or failed); results in {}",
        done.len(),
        todo.len(),
        path.display()
    );
    Ok(exit::failures(failed))
}
