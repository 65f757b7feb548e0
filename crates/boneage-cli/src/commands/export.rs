//! `boneage export`: copies trained weights (run folders or weights files) into a
//! models folder, optionally stored in half precision (or with the head, and the wide
//! 1×1 convolutions, in 8 bits), with their manifests.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use boneage::DeviceChoice;
use boneage_core::{ModelKey, NetKind};
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
    #[arg(long, conflicts_with_all = ["head_int8", "wide_int8"])]
    f16: bool,
    /// As --f16, with the network's head (its linear layers and the 1×1 convolution
    /// before the global pooling) as 8-bit integers with one scale per output channel:
    /// about 10 % smaller than --f16 for an EfficientNet-Lite0 age model, its ages
    /// within about 0.1 month (the backbone stays in 16 bits: in 8 it moves ages by
    /// months).
    #[arg(long, conflicts_with = "wide_int8")]
    head_int8: bool,
    /// As --head-int8, and the wide 1×1 convolutions in 8 bits too (those of at least
    /// 50,000 weights: an EfficientNet-Lite0's last three stages): 4.3 MB for a
    /// Lite0 age model instead of 6.8, its ages within about 0.25 month of the 16-bit
    /// copy on average (the narrow early layers, which move ages most, stay in 16 bits).
    #[arg(long)]
    wide_int8: bool,
    /// Number the bone-age models copied as further models of their region, head and
    /// cohort (2, 3, …): `A-reg-mixed-2` beside `A-reg-mixed` in one folder (region A
    /// trained on two canvases, or a second seed).
    #[arg(long, value_parser = clap::value_parser!(u8).range(2..))]
    variant: Option<u8>,
}

impl Args {
    fn precision(&self) -> Option<weights::Precision> {
        match (self.f16, self.head_int8, self.wide_int8) {
            (true, _, _) => Some(weights::Precision::F16),
            (_, true, _) => Some(weights::Precision::HeadI8),
            (_, _, true) => Some(weights::Precision::WideI8),
            _ => None,
        }
    }
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
        if args.variant.is_some() && manifest.net != NetKind::Age {
            bail!(
                "{}: --variant numbers bone-age models; this is a {} net",
                file.display(),
                manifest.net.code()
            );
        }
        // Bone-age models are named by what they are (A-reg-mixed, …); others by
        // their run folder or file.
        let name = if manifest.net == NetKind::Age {
            let key = AgeModel::load(&file, &DeviceChoice::Cpu.device()?)?.key;
            match args.variant {
                Some(variant) => ModelKey { variant, ..key },
                None => key,
            }
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
        let size = if let Some(precision) = args.precision() {
            weights::store_as(&file, &dst, precision)?
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
        if let Some(variant) = args.variant {
            let numbered = weights::Manifest {
                variant: Some(variant),
                ..manifest
            };
            weights::write_manifest(&dst, &numbered)?;
        }
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
        match args.precision() {
            Some(weights::Precision::F16) => " (16-bit floats)",
            Some(weights::Precision::HeadI8) => " (16-bit floats, the heads' weights in 8 bits)",
            Some(weights::Precision::WideI8) => {
                " (16-bit floats, the heads' weights and the wide 1×1 convolutions in 8 bits)"
            }
            _ => "",
        }
    );
    Ok(ExitCode::SUCCESS)
}
