//! `boneage inspect`: read radiographs and say what was read.

use std::path::PathBuf;
use std::process::ExitCode;

use boneage_core::io::{Radiograph, read_radiograph};
use rayon::prelude::*;

/// Arguments of `boneage inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// Radiographs to read (PNG, JPEG or DICOM).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Write the normalised 8-bit view (bright = bone) as PNG: a file for one input,
    /// or a folder (created) for several.
    #[arg(long, value_name = "OUT")]
    png: Option<PathBuf>,
    /// One JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

fn describe(r: &Radiograph) -> String {
    let m = &r.meta;
    let mut s = format!(
        "{}: {} {}x{} {}-bit {}",
        r.path.display(),
        m.format,
        r.pixels.width(),
        r.pixels.height(),
        m.bit_depth,
        m.photometric
    );
    if m.inverted {
        s.push_str(" (inverted)");
    }
    match m.pixel_spacing_mm {
        Some((row, col)) => s.push_str(&format!(", spacing {row:.3}x{col:.3} mm")),
        None => s.push_str(", spacing unknown"),
    }
    if let Some((c, w)) = m.window {
        s.push_str(&format!(", window C{c} W{w}"));
    }
    if let Some(sex) = m.sex {
        s.push_str(&format!(", sex {}", sex.letter()));
    }
    if let Some(a) = m.age_months {
        s.push_str(&format!(", age {a:.1} months"));
    }
    if let Some(id) = &m.instance_id {
        s.push_str(&format!(", instance {id}"));
    }
    s
}

/// Runs the command. Every file is reported; the exit code is 1 if any failed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let several = args.files.len() > 1;
    if let Some(dir) = args.png.as_ref().filter(|_| several) {
        std::fs::create_dir_all(dir)?;
    }
    let bar = crate::progress::progress_bar(args.files.len() as u64, "reading");
    let results: Vec<Result<String, String>> = args
        .files
        .par_iter()
        .map(|path| {
            let r = read_radiograph(path).map_err(|e| e.to_string())?;
            if let Some(out) = &args.png {
                let target = if several {
                    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
                    out.join(format!("{stem}.png"))
                } else {
                    out.clone()
                };
                r.pixels.save_png(&target).map_err(|e| e.to_string())?;
            }
            bar.inc(1);
            Ok(if args.json {
                serde_json::json!({
                    "path": r.path,
                    "width": r.pixels.width(),
                    "height": r.pixels.height(),
                    "meta": r.meta,
                })
                .to_string()
            } else {
                describe(&r)
            })
        })
        .collect();
    bar.finish_and_clear();
    let mut failed = 0;
    for r in &results {
        match r {
            Ok(line) => println!("{line}"),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if several {
        eprintln!("{} read, {failed} failed", results.len() - failed);
    }
    Ok(crate::exit::failures(failed))
}
