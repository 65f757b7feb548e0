//! `boneage bench`: timings against a reference measured in the same run.
//! Benchmarks print ratios; they are not tests and CI does not run them.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};
use boneage::at_once::jobs_for;
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::registration::Canvas;
use boneage_nn::pipeline::Pipeline;

use crate::args::at_least_one;

/// Arguments of `boneage bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand)]
enum What {
    /// Image operations on a 2080x1600 image, against OpenCV.
    Ops(OpsArgs),
    /// A training step and inference of the networks, against PyTorch.
    Train(TrainArgs),
    /// The front end on real films, one at a time and several at once, against the
    /// 0.2 s a film it must stay under.
    FrontEnd(FrontEndArgs),
}

#[derive(clap::Args)]
struct FrontEndArgs {
    /// Films to read (default: --films of the images of ../shared/data/rsna/raw, as a
    /// batch of `assess` lists them, spread evenly by name).
    files: Vec<PathBuf>,
    /// Without FILES: how many films of ../shared/data/rsna/raw.
    #[arg(long, default_value_t = 40)]
    films: usize,
    /// Passes each way, alternating (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Films at once in the second way (default: one a core on the CPU).
    #[arg(long, short = 'j', value_name = "N", value_parser = at_least_one)]
    jobs: Option<usize>,
    /// Folder with the weights (default: `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
}

#[derive(clap::Args)]
struct TrainArgs {
    /// Timed repetitions per case (the median is reported).
    #[arg(long, default_value_t = 10)]
    reps: usize,
    /// Command that runs the PyTorch reference (`bench/torch_ref.py`); it gets the
    /// repetitions (and the --only filter) appended. `bench/train.sh` sets this up.
    #[arg(long, value_name = "COMMAND")]
    torch: Option<String>,
    /// Time only the cases whose name contains this.
    #[arg(long)]
    only: Option<String>,
}

#[derive(clap::Args)]
struct OpsArgs {
    /// Repetitions per operation (the median is reported).
    #[arg(long, default_value_t = 20)]
    reps: usize,
    /// Command that runs the OpenCV reference (`bench/opencv_ops.py`); it gets the
    /// image path and the repetitions appended. `bench/ops.sh` sets this up.
    #[arg(long, value_name = "COMMAND")]
    opencv: Option<String>,
    /// Time only the operations whose name contains this (for profiling).
    #[arg(long)]
    only: Option<String>,
}

/// Runs the command.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Ops(a) => ops(a),
        What::Train(a) => train(a),
        What::FrontEnd(a) => front_end(a, device),
    }
}

/// Where the default films of `bench front-end` lie.
const RAW_FILMS: &str = "../shared/data/rsna/raw";

fn front_end(args: FrontEndArgs, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let (paths, which) = if args.files.is_empty() {
        // The folder's films in name order, as a batch of `assess` lists them.
        let all: Vec<PathBuf> =
            boneage::batch::batch_items(std::path::Path::new(RAW_FILMS), None, None)
                .with_context(|| {
                    format!("no films given and {RAW_FILMS} cannot be read: give the films to time")
                })?
                .into_iter()
                .map(|item| item.path)
                .collect();
        // Spread over the folder, so that refused films come in about as often as
        // they do there.
        let step = (all.len() / args.films.max(1)).max(1);
        let total = all.len();
        let spread: Vec<PathBuf> = all.into_iter().step_by(step).take(args.films).collect();
        let which = format!(
            "every {} of the {total} of {RAW_FILMS} by name",
            match step {
                1 => "one".to_string(),
                s => format!("{s}th"),
            }
        );
        (spread, which)
    } else {
        let which = format!("{} given", args.files.len());
        (args.files, which)
    };
    if paths.is_empty() {
        bail!("no films to time ({which})");
    }
    let films = paths
        .iter()
        .map(|p| boneage_core::read_radiograph(p).map(|r| r.pixels))
        .collect::<Result<Vec<_>, _>>()?;
    let models = ModelsDir::locate(args.models.as_deref())?;
    let pipeline = Pipeline::load(&models.path, Canvas::CPU, &device.device()?)?;
    let jobs = jobs_for(args.jobs, device);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cores} cores ({}), load average (1, 5, 15 min) before: {}",
        cpu_features(),
        loadavg()
    );
    let b = boneage::bench::bench_front_end(&pipeline, &films, jobs, args.reps);
    println!(
        "front end (segment to register) on {} films ({which}): {} answered, {} refused; \
         {} each way, alternating, after one film untimed",
        b.films,
        b.answered,
        b.refused,
        match args.reps.max(1) {
            1 => "one pass".to_string(),
            n => format!("{n} passes"),
        }
    );
    println!("{:<22} {:>10} {:>8}", "way", "s a film", "ratio");
    let at_once = format!("{} at once", b.jobs);
    for (way, s) in [
        ("one at a time", b.one_at_a_time),
        (at_once.as_str(), b.at_once),
    ] {
        println!("{way:<22} {s:>10.3} {:>8.2}", s / b.one_at_a_time);
    }
    let verdict = |s: f64| {
        if s < FRONT_END_TARGET_S {
            "under"
        } else {
            "NOT under"
        }
    };
    println!(
        "the issue's target, {FRONT_END_TARGET_S} s a film on these cores: one at a time {}, {at_once} {}",
        verdict(b.one_at_a_time),
        verdict(b.at_once)
    );
    println!("load average after: {}", loadavg());
    if !b.same_answers {
        println!("the passes did NOT all give the same answers: a bug in reading films at once");
        return Ok(ExitCode::FAILURE);
    }
    println!("answers: the same in every pass");
    Ok(ExitCode::SUCCESS)
}

/// The front end's time a film that issue 14 asks it to stay under, on 2 cores.
const FRONT_END_TARGET_S: f64 = 0.2;

fn ops(args: OpsArgs) -> anyhow::Result<ExitCode> {
    let img = boneage::bench::bench_film()?;
    let dir = std::env::temp_dir().join(format!("boneage-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("film.png");
    img.save_png(&path)?;
    let (w, h) = (img.width(), img.height());
    let reps = args.reps;
    let ours = boneage::bench::time_image_ops(&img, reps, args.only.as_deref().unwrap_or(""));

    let reference: Option<serde_json::Value> = match &args.opencv {
        None => None,
        Some(cmd) => {
            let mut parts = cmd.split_whitespace();
            let program = parts.next().context("--opencv is empty")?;
            let out = Command::new(program)
                .args(parts)
                .arg(&path)
                .arg(reps.to_string())
                .output()
                .with_context(|| format!("running the OpenCV reference: {cmd}"))?;
            if !out.status.success() {
                bail!(
                    "the OpenCV reference failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Some(
                serde_json::from_slice(&out.stdout)
                    .context("reading the OpenCV reference's JSON")?,
            )
        }
    };
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "image operations on a {w}x{h} (width x height) film, median of {reps}, {} threads",
        rayon::current_num_threads()
    );
    if let Some(v) = reference.as_ref().and_then(|r| r.get("opencv")) {
        println!("reference: OpenCV {v} (cv2.setNumThreads(2)), same image, same parameters");
    }
    println!(
        "{:<26} {:>10} {:>10} {:>8}",
        "operation", "ours ms", "opencv ms", "ratio"
    );
    let mut worst: f64 = 0.0;
    for (name, t) in ours {
        match reference
            .as_ref()
            .and_then(|r| r.get(name))
            .and_then(|v| v.as_f64())
        {
            Some(cv) => {
                worst = worst.max(t / cv);
                println!(
                    "{name:<26} {:>10.2} {:>10.2} {:>8.2}",
                    t * 1e3,
                    cv * 1e3,
                    t / cv
                );
            }
            None => println!("{name:<26} {:>10.2} {:>10} {:>8}", t * 1e3, "-", "-"),
        }
    }
    if reference.is_some() {
        println!("worst ratio (ours / OpenCV; below 1 is faster): {worst:.2}");
    }
    Ok(ExitCode::SUCCESS)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The SIMD extensions this CPU offers that the GEMM behind the kernels can use
/// (it picks its widest path at run time), e.g. "avx2 fma, no avx512f".
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let has = [
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("fma", std::arch::is_x86_feature_detected!("fma")),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
        ];
        let yes: Vec<&str> = has.iter().filter(|h| h.1).map(|h| h.0).collect();
        let no: Vec<String> = has
            .iter()
            .filter(|h| !h.1)
            .map(|h| format!("no {}", h.0))
            .collect();
        [yes.join(" "), no.join(", ")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(", ")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::env::consts::ARCH.to_string()
    }
}

fn train(args: TrainArgs) -> anyhow::Result<ExitCode> {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cores} cores ({}), load average (1, 5, 15 min) before: {}",
        cpu_features(),
        loadavg()
    );
    let ours = boneage_nn::bench::run(args.reps, args.only.as_deref());
    let mut theirs = std::collections::BTreeMap::new();
    let mut torch_version = String::new();
    if let Some(cmd) = &args.torch {
        let mut full = format!("{cmd} {}", args.reps);
        if let Some(o) = &args.only {
            full.push_str(&format!(" {o}"));
        }
        let out = Command::new("sh")
            .arg("-c")
            .arg(&full)
            .output()
            .with_context(|| format!("running {full}"))?;
        if !out.status.success() {
            bail!(
                "the PyTorch reference failed ({full}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("unexpected line from {full}: {line}"))?;
            if let (Some(c), Some(s)) = (v["case"].as_str(), v["seconds"].as_f64()) {
                theirs.insert(c.to_string(), s);
            }
            if let Some(t) = v["torch"].as_str() {
                torch_version = t.to_string();
            }
        }
    }
    println!(
        "{:<16} {:>10} {:>10} {:>8}  what",
        "case",
        "ours s",
        if args.torch.is_some() { "torch s" } else { "-" },
        "ratio"
    );
    for t in &ours {
        let r = theirs.get(t.case);
        println!(
            "{:<16} {:>10.3} {:>10} {:>8}  {}",
            t.case,
            t.seconds,
            r.map_or("-".into(), |s| format!("{s:.3}")),
            r.map_or("-".into(), |s| format!("{:.2}", t.seconds / s)),
            t.what
        );
    }
    if args.torch.is_some() {
        println!("ratio = ours / PyTorch {torch_version} (2 threads); below 1 we are faster");
    }
    println!("load average after: {}", loadavg());
    Ok(ExitCode::SUCCESS)
}
