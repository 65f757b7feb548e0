//! `boneage keypoints`: the shipped key-point net on any radiograph.

use std::path::PathBuf;
use std::process::ExitCode;

use boneage::{DeviceChoice, ModelsDir};
use boneage_core::keypoints;
use boneage_core::read_radiograph;
use boneage_core::registration::Canvas;
use boneage_nn::pipeline::Pipeline;

use crate::exit;

/// Arguments of `boneage keypoints`.
#[derive(clap::Args)]
pub struct Args {
    /// Radiographs (PNG, JPEG, DICOM).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Folder with `unet.safetensors` and `keypoints.safetensors` (default:
    /// `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Write the points as CSV (`id,fingertip_x,…`, original pixels) instead of
    /// printing them.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `boneage keypoints`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let models = ModelsDir::locate(args.models.as_deref())?;
    let pipeline = Pipeline::load(&models.path, Canvas::CPU, &device.device()?)?;
    let mut rows = Vec::new();
    let mut failed = 0;
    for path in &args.files {
        match read_radiograph(path) {
            Ok(r) => {
                let k = pipeline.locate(&r.pixels);
                if args.out.is_none() {
                    println!(
                        "{}: fingertip {:.1},{:.1} thumb {:.1},{:.1} capitate {:.1},{:.1}{}",
                        path.display(),
                        k.fingertip.x,
                        k.fingertip.y,
                        k.thumb.x,
                        k.thumb.y,
                        k.capitate.x,
                        k.capitate.y,
                        if k.thumb_on_right() {
                            ""
                        } else {
                            " (mirrored: thumb on the left)"
                        }
                    );
                }
                let id = path.file_stem().unwrap_or_default().to_string_lossy();
                rows.push((id.into_owned(), k));
            }
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if let Some(out) = &args.out {
        keypoints::write_csv(out, rows.iter().map(|(id, k)| (id.as_str(), k)))?;
        eprintln!("{} images' key points in {}", rows.len(), out.display());
    }
    Ok(exit::failures(failed))
}
