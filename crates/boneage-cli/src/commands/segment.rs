//! `boneage segment`: hand masks for radiographs, from the shipped U-Net (or other
//! weights), or from the classical baseline.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::ops::segment::{SegmentConfig, segment_hand};
use boneage_core::overlay::mask_tile;
use boneage_core::read_radiograph;
use boneage_core::sheet::SheetLayout;
use boneage_nn::pipeline::Segmenter;
use rayon::prelude::*;

/// Arguments of `boneage segment`.
#[derive(clap::Args)]
pub struct Args {
    /// Radiographs (PNG, JPEG, DICOM).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output folder for masks (`<stem>.png`, white = hand).
    #[arg(long)]
    out: PathBuf,
    /// Also write a contact sheet of numbered overlays (mask outline in green).
    #[arg(long, value_name = "PNG")]
    sheet: Option<PathBuf>,
    /// Tiles per row of the sheet.
    #[arg(long, default_value_t = 8)]
    columns: usize,
    /// Sheet tile size as WIDTHxHEIGHT.
    #[arg(long, default_value = "240x300", value_parser = crate::args::parse_size)]
    tile: (usize, usize),
    /// U-Net weights (default: `unet.safetensors` of `$BONEAGE_MODELS`, else of the
    /// shipped `models/`).
    #[arg(long, conflicts_with = "baseline")]
    model: Option<PathBuf>,
    /// Use the classical baseline (thresholds and morphology) instead of the U-Net.
    #[arg(long)]
    baseline: bool,
    /// Raise the film's values (in `[0, 1]`) to this power before the U-Net's window:
    /// under 1 brings up the faint soft tissue of a dark film (the front end reads a
    /// dark film refused every other way again so, at 0.5).
    #[arg(long, conflicts_with = "baseline")]
    gamma: Option<f32>,
}

/// Runs the command.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let cfg = SegmentConfig::default();
    let net = if args.baseline {
        None
    } else {
        let path = match &args.model {
            Some(m) => m.clone(),
            None => ModelsDir::locate(None)?.unet(),
        };
        let mut net = Segmenter::load(&path, &device.device()?)?;
        net.gamma = args.gamma;
        Some(net)
    };
    let bar = crate::progress::progress_bar(args.files.len() as u64, "segmenting");
    let results: Vec<Result<image::RgbImage, String>> = args
        .files
        .par_iter()
        .map(|path| {
            let r = read_radiograph(path).map_err(|e| e.to_string())?;
            let mask = match &net {
                Some(net) => net.segment(&r.pixels),
                None => segment_hand(&r.pixels, &cfg),
            };
            let stem = path.file_stem().unwrap_or_default().to_string_lossy();
            mask.save_png(&args.out.join(format!("{stem}.png")))
                .map_err(|e| e.to_string())?;
            bar.inc(1);
            // Overlay at thumbnail size so that sheets of hundreds stay small.
            Ok(mask_tile(&r.pixels, &mask, args.tile.0, args.tile.1))
        })
        .collect();
    bar.finish_and_clear();
    let mut failed = 0;
    let mut tiles = Vec::new();
    for (i, (path, r)) in args.files.iter().zip(results).enumerate() {
        match r {
            Ok(rgb) => tiles.push((
                format!(
                    "{} {}",
                    i + 1,
                    path.file_stem().unwrap_or_default().to_string_lossy()
                ),
                rgb,
            )),
            Err(e) => {
                failed += 1;
                eprintln!("error: {e}");
            }
        }
    }
    if let Some(sheet) = &args.sheet {
        let layout = SheetLayout {
            columns: args.columns,
            tile_width: args.tile.0,
            tile_height: args.tile.1,
            title: None,
        };
        boneage_core::sheet::save_rgb(&tiles, &layout, sheet)
            .with_context(|| format!("writing {}", sheet.display()))?;
        eprintln!("wrote {}", sheet.display());
    }
    eprintln!(
        "{} masks in {}, {failed} failed",
        tiles.len(),
        args.out.display()
    );
    Ok(crate::exit::failures(failed))
}
