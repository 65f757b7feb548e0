//! `boneage score-preprocess`: the answers of `boneage preprocess` runs against key
//! points marked by hand, without running the front end (`boneage::preprocess_score`).

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::Write;

use boneage::preprocess_score::{Marks, Run, score};

/// Arguments of `boneage score-preprocess`.
#[derive(clap::Args)]
pub struct Args {
    /// Output folders of `boneage preprocess --out` (`keypoints.csv`, `refused.csv`);
    /// with two or more, the marked films whose outcome differs from the first's are
    /// listed.
    #[arg(required = true, value_name = "RUN")]
    runs: Vec<PathBuf>,
    /// Key points marked by hand (key-point CSVs with an optional `note` column, as
    /// `data/labels/blind/*.csv`, after the runs). A film marked in more than one
    /// takes the first file's marks.
    #[arg(long, required = true, value_name = "CSV", num_args = 1..)]
    truth: Vec<PathBuf>,
    /// Write the report (Markdown) here as well as printing it.
    #[arg(long, value_name = "MD")]
    report: Option<PathBuf>,
    /// Write one row per marked film here: its truth file and each run's outcome.
    #[arg(long, value_name = "CSV")]
    films: Option<PathBuf>,
}

/// Runs `boneage score-preprocess`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runs = args
        .runs
        .iter()
        .map(|dir| Run::read(dir))
        .collect::<Result<Vec<_>, _>>()?;
    let marks = Marks::read(&args.truth)?;
    let s = score(&runs, &marks);
    let mut command = String::from("boneage score-preprocess");
    for r in &args.runs {
        command += &format!(" {}", r.display());
    }
    command += " --truth";
    for t in &args.truth {
        command += &format!(" {}", t.display());
    }
    let md = s.markdown(&command);
    print!("{md}");
    if let Some(path) = &args.report {
        boneage_core::io::write_atomic(path, |w| w.write_all(md.as_bytes()))?;
        eprintln!("report: {}", path.display());
    }
    if let Some(path) = &args.films {
        s.write_csv(path)?;
        eprintln!("one row per marked film: {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
