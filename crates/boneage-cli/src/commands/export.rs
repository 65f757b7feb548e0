//! `boneage export`: copies trained weights (run folders or weights files) into a
//! models folder, optionally stored in half precision, with their manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use boneage::DeviceChoice;
use boneage_core::NetKind;
use boneage_nn::ensemble::AgeModel;
use boneage_nn::weights;

/// Arguments of `boneage export`.
#[derive(clap::Args)]
pub struct Args {
    /// Run folders (`RUN/model.safetensors`) or weights files.
    #[arg(required = true)]
    weights: Vec<PathBuf>,
    /// Models folder to copy into (e.g. `models/age`).
    #[arg(long)]
    out: PathBuf,
    /// Store the tensors as 16-bit floats (half the size; loading widens them).
    #[arg(long)]
    f16: bool,
}

/// Runs `boneage export`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut total = 0u64;
    for src in &args.weights {
        let file = if src.is_dir() {
            src.join("model.safetensors")
        } else {
            src.clone()
        };
        if !file.is_file() {
            bail!(
                "{}: no weights here (a run folder holds model.safetensors)",
                src.display()
            );
        }
        let manifest = weights::read_manifest(&file)?;
        // Bone-age models are named by what they are (A-reg-mixed, …); others by
        // their run folder or file.
        let name = if manifest.net == NetKind::Age {
            AgeModel::load(&file, &DeviceChoice::Cpu.device()?)?
                .key
                .to_string()
        } else if src.is_dir() {
            src.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        } else {
            file.file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        let dst = args.out.join(format!("{name}.safetensors"));
        let size = if args.f16 {
            weights::to_f16(&file, &dst)?
        } else {
            // Copy, then rename: never a half-written file under the final name.
            let copy = |from: PathBuf, to: PathBuf| -> anyhow::Result<u64> {
                let tmp = to.with_extension("tmp");
                let n = std::fs::copy(&from, &tmp)
                    .with_context(|| format!("copying {}", from.display()))?;
                std::fs::rename(&tmp, &to).with_context(|| format!("writing {}", to.display()))?;
                Ok(n)
            };
            copy(weights::manifest_path(&file), weights::manifest_path(&dst))?;
            copy(file.clone(), dst.clone())?
        };
        total += size;
        eprintln!(
            "{} -> {} ({:.2} MB)",
            file.display(),
            dst.display(),
            size as f64 / 1e6
        );
    }
    eprintln!(
        "{} weights files, {:.1} MB in all{}",
        args.weights.len(),
        total as f64 / 1e6,
        if args.f16 { " (16-bit floats)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
