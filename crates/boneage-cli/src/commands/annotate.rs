//! `boneage annotate`: labels by hand where the candidates were wrong: a coordinate
//! grid to read points off, then the three key points as numbers, or a mask made
//! from a threshold of the film (or a candidate) with a region of interest, cuts
//! between touching fingers and polygons added or erased
//! (`boneage::mining::MaskEdits`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use boneage::mining::MaskEdits;
use boneage_core::dataset::Dataset;
use boneage_core::geometry::Point;
use boneage_core::keypoints::KeyPoints;
use boneage_core::labels::Labels;
use boneage_core::overlay::grid_overlay;
use boneage_core::read_radiograph;

use crate::args::{Shape, parse_point, parse_rect, parse_shape};

/// Arguments of `boneage annotate`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder.
    data: PathBuf,
    /// Image id.
    id: String,
    /// Label folder with the review log.
    #[arg(long)]
    labels: PathBuf,
    /// Write the image with a coordinate grid (original pixels) to read points off;
    /// with mask edits it shows the edited mask.
    #[arg(long)]
    grid: Option<PathBuf>,
    /// Magnify the grid picture on the rectangle `x0,y0,x1,y1` (original pixels).
    #[arg(long, value_parser = parse_rect, requires = "grid")]
    view: Option<[f64; 4]>,
    /// Spread the grey levels of the grid picture between their 30th and 99.5th
    /// percentiles: the bones of a dark or flat film stand apart.
    #[arg(long, requires = "grid")]
    stretch: bool,
    /// Middle fingertip `x,y` in original pixels.
    #[arg(long, value_parser = parse_point, requires_all = ["thumb", "capitate"])]
    fingertip: Option<Point>,
    /// Thumb tip `x,y`.
    #[arg(long, value_parser = parse_point)]
    thumb: Option<Point>,
    /// Capitate centre `x,y`.
    #[arg(long, value_parser = parse_point)]
    capitate: Option<Point>,
    /// Mask editing: start from this candidate mask (a mask PNG of any size, e.g. a
    /// round's `masks/ID.mask.png`) instead of the film's accepted mask.
    #[arg(long, conflicts_with = "threshold")]
    mask_from: Option<PathBuf>,
    /// Mask editing: start from the film itself, the pixels brighter than this
    /// fraction (0-1) of its 1-99.5 % intensity window after a light blur.
    #[arg(long)]
    threshold: Option<f32>,
    /// Mask editing: keep only what lies inside this polygon, `x,y x,y ...`.
    #[arg(long, value_parser = parse_shape)]
    roi: Option<Shape>,
    /// Mask editing: add the inside of a polygon `x,y x,y ...` (repeatable).
    #[arg(long, value_parser = parse_shape)]
    add: Vec<Shape>,
    /// Mask editing: remove the inside of a polygon (repeatable).
    #[arg(long, value_parser = parse_shape)]
    erase: Vec<Shape>,
    /// Mask editing: cut along a line `x,y x,y ...` (repeatable), e.g. to part fingers
    /// that touch.
    #[arg(long, value_parser = parse_shape)]
    cut: Vec<Shape>,
    /// Width of the cuts in original pixels.
    #[arg(long, default_value_t = 4.0)]
    cut_width: f64,
    /// Record the edited mask as the film's label (decision `set` in the review log).
    #[arg(long)]
    save_mask: bool,
    /// Round number logged with a saved mask.
    #[arg(long, default_value_t = 0)]
    round: u32,
}

impl Args {
    /// The mask edits asked for.
    fn edits(&self) -> MaskEdits {
        let points = |v: &[Shape]| v.iter().map(|s| s.0.clone()).collect();
        MaskEdits {
            mask_from: self.mask_from.clone(),
            threshold: self.threshold,
            roi: self.roi.as_ref().map(|s| s.0.clone()),
            add: points(&self.add),
            erase: points(&self.erase),
            cut: points(&self.cut),
            cut_width: self.cut_width,
        }
    }
}

/// Runs `boneage annotate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ds = Dataset::open_dir(&args.data)?;
    let sample = ds
        .samples
        .iter()
        .find(|s| s.id == args.id)
        .with_context(|| format!("{}: no image with id {}", args.data.display(), args.id))?;
    let path = ds.image_path(sample);
    let r = read_radiograph(&path)?;
    let (w, h) = (r.pixels.width(), r.pixels.height());
    let labels = Labels::new(&args.labels);
    let accepted = labels.mask(&args.id, w, h)?;
    let edited = args
        .edits()
        .apply(&r.pixels, accepted.as_ref())
        .with_context(|| format!("editing the mask of {} ({})", args.id, path.display()))?;
    if args.save_mask && edited.is_none() {
        bail!(
            "--save-mask needs a mask to save: --mask-from, --threshold, or edits (--roi, --add, --erase, --cut)"
        );
    }
    if let (Some(f), Some(t), Some(c)) = (args.fingertip, args.thumb, args.capitate) {
        for (name, p) in [("fingertip", f), ("thumb", t), ("capitate", c)] {
            if p.x < 0.0 || p.y < 0.0 || p.x > w as f64 || p.y > h as f64 {
                bail!(
                    "--{name} {},{}: outside {} ({w}x{h})",
                    p.x,
                    p.y,
                    path.display()
                );
            }
        }
        let k = KeyPoints {
            fingertip: f,
            thumb: t,
            capitate: c,
        };
        labels.set_keypoints(&args.id, k)?;
        eprintln!(
            "{}: key points set in {}",
            args.id,
            labels.keypoints_path().display()
        );
    } else if args.grid.is_none() && !args.save_mask {
        bail!(
            "give --grid OUT.png to draw a coordinate grid, --fingertip, --thumb and --capitate to set the points, or mask edits with --save-mask"
        );
    }
    if let (true, Some(m)) = (args.save_mask, &edited) {
        labels.set_mask(&args.id, args.round, m)?;
        eprintln!(
            "{}: mask set ({:.1} % of the film) in {}",
            args.id,
            100.0 * m.count() as f64 / (w * h) as f64,
            labels.masks_dir().display()
        );
    }
    if let Some(out) = &args.grid {
        // A mask saved above is `edited`, which is drawn in preference.
        let mask = match (&edited, &accepted) {
            (Some(m), _) => Some((m, [60, 255, 60])),
            (None, Some(m)) => Some((m, [30, 120, 60])),
            _ => None,
        };
        let known = labels.keypoints()?.get(&args.id).copied();
        let rgb = grid_overlay(&r.pixels, args.view, mask, known.as_ref(), args.stretch);
        boneage_core::image::save_rgb8_png(&rgb, out)?;
        eprintln!(
            "{}: grid in original pixels ({w}x{h}){} in {}",
            args.id,
            if edited.is_some() {
                " with the edited mask"
            } else {
                ""
            },
            out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
