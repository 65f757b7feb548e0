//! `boneage register`: registered canvases, region crops and overlays from key points.

use std::borrow::Cow;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boneage_core::image::Mask;
use boneage_core::keypoints::read_csv;
use boneage_core::ops::{NormalizeConfig, normalize_hand};
use boneage_core::overlay::canvas_overlay;
use boneage_core::read_radiograph;
use boneage_core::registration::{Canvas, Region, register, save_regions};
use rayon::prelude::*;

/// Arguments of `boneage register`.
#[derive(clap::Args)]
pub struct Args {
    /// Radiographs; each is looked up in the key-point file by its file stem.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Key points CSV (`id,fingertip_x,fingertip_y,thumb_x,thumb_y,capitate_x,capitate_y`).
    #[arg(long)]
    keypoints: PathBuf,
    /// Folder of hand masks (`<id>.png`): the hand is masked and contrast-normalised
    /// before registration.
    #[arg(long)]
    masks: Option<PathBuf>,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
    /// Canvas as WIDTHxHEIGHT: the paper's 1600x2080, or the CPU preset 400x520.
    #[arg(long, default_value = "1600x2080", value_parser = crate::args::parse_size)]
    canvas: (usize, usize),
}

/// Runs the command. Each image is reported; the exit code is 1 if any failed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let canvas = Canvas::new(args.canvas.0, args.canvas.1)?;
    let keypoints = read_csv(&args.keypoints)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let bar = crate::progress::progress_bar(args.images.len() as u64, "registering");
    let results: Vec<Result<(), String>> = args
        .images
        .par_iter()
        .map(|path| {
            let id = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let k = keypoints.get(&id).ok_or_else(|| {
                format!(
                    "{}: no key points for id {id:?} in {}",
                    path.display(),
                    args.keypoints.display()
                )
            })?;
            let r = read_radiograph(path).map_err(|e| e.to_string())?;
            let mask = match &args.masks {
                Some(dir) => {
                    let p = dir.join(format!("{id}.png"));
                    let m = Mask::load_png(&p).map_err(|e| e.to_string())?;
                    if (m.width(), m.height()) != (r.pixels.width(), r.pixels.height()) {
                        return Err(format!(
                            "{}: mask is {}x{}, image is {}x{}",
                            p.display(),
                            m.width(),
                            m.height(),
                            r.pixels.width(),
                            r.pixels.height()
                        ));
                    }
                    Some(m)
                }
                None => None,
            };
            let reg = register(k, &canvas).map_err(|e| format!("{}: {e}", path.display()))?;
            // Without a mask the radiograph is registered as it is, without a copy.
            let source = match &mask {
                Some(m) => Cow::Owned(normalize_hand(&r.pixels, m, &NormalizeConfig::default())),
                None => Cow::Borrowed(&r.pixels),
            };
            let registered = reg.warp(&source, &canvas);
            save_regions(&args.out, &id, &registered, &canvas).map_err(|e| e.to_string())?;
            let warped = mask.as_ref().map(|m| reg.warp_mask(m, &canvas));
            let rgb = canvas_overlay(
                &registered,
                warped.as_ref(),
                &reg.keypoints(k),
                &canvas,
                &Region::ALL,
            );
            boneage_core::image::save_rgb8_png(&rgb, &args.out.join(format!("{id}_overlay.png")))
                .map_err(|e| e.to_string())?;
            bar.inc(1);
            Ok(())
        })
        .collect();
    bar.finish_and_clear();
    let failed = results.iter().filter(|r| r.is_err()).count();
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        eprintln!("error: {e}");
    }
    eprintln!(
        "{} registered onto {}x{} in {}, {failed} failed",
        results.len() - failed,
        canvas.width,
        canvas.height,
        args.out.display()
    );
    Ok(crate::exit::failures(failed))
}
