//! `boneage mine` and `boneage review`: positive mining of hand masks.
//!
//! `mine` proposes a candidate mask for every image of a dataset that has no accepted
//! mask yet (round 0: the classical baseline; later rounds: a U-Net trained on the
//! masks accepted so far) and writes numbered contact sheets of overlays; `review` records what a
//! person decided, sheet by sheet, in the review log and copies the accepted masks
//! into the label folder.
//!
//! Label folder (`--labels`, e.g. `data/labels`):
//! - `masks/<id>.mask.png`: accepted masks at a quarter of the image size (white = hand);
//! - `review.csv`: `id,round,kind,decision,time` (time in seconds since 1970).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use boneage_core::dataset::{Dataset, mask_path};
use boneage_core::image::Mask;
use boneage_core::ops::resize_area;
use boneage_core::ops::segment::{SegmentConfig, segment_hand};
use boneage_core::overlay::{colors, draw_mask_outline, to_rgb};
use boneage_core::read_radiograph;
use boneage_core::sheet::{SheetLayout, save_rgb, thumbnail};
use rayon::prelude::*;

/// Scale of the committed masks relative to the image.
pub const LABEL_SCALE: usize = 4;
/// Tiles per contact sheet.
const PER_SHEET: usize = 24;

/// Arguments of `boneage mine`.
#[derive(clap::Args)]
pub struct MineArgs {
    /// Dataset folder (RSNA layout: `DATA.csv` beside it, or `labels.csv` inside).
    data: PathBuf,
    /// Label folder with the accepted masks and the review log.
    #[arg(long)]
    labels: PathBuf,
    /// Round number (0: the classical baseline).
    #[arg(long, default_value_t = 0)]
    round: u32,
    /// Work folder for this round's candidates and sheets.
    #[arg(long)]
    out: PathBuf,
    /// U-Net weights (`RUN/model.safetensors` from `boneage train segment` on the
    /// masks accepted so far); required after round 0.
    #[arg(long)]
    model: Option<PathBuf>,
}

/// Arguments of `boneage review`.
#[derive(clap::Args)]
pub struct ReviewArgs {
    /// The round's work folder written by `boneage mine`.
    round_dir: PathBuf,
    /// Label folder with the accepted masks and the review log.
    #[arg(long)]
    labels: PathBuf,
    /// Sheet number (1-based) the decisions are about.
    #[arg(long)]
    sheet: usize,
    /// Tile numbers on that sheet that are rejected, e.g. `3,17,20-22`; every other tile
    /// of the sheet is accepted.
    #[arg(long, default_value = "")]
    reject: String,
}

fn review_log(labels: &Path) -> PathBuf {
    labels.join("review.csv")
}

/// Ids with an accepted mask in the review log (the last decision counts).
fn accepted(labels: &Path) -> anyhow::Result<BTreeSet<String>> {
    let path = review_log(labels);
    let mut last: BTreeMap<String, bool> = BTreeMap::new();
    if path.is_file() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text.lines().enumerate().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() != 5 {
                bail!(
                    "{}: line {}: expected id,round,kind,decision,time",
                    path.display(),
                    n + 1
                );
            }
            if f[2] == "mask" {
                last.insert(f[0].to_string(), f[3] == "accept");
            }
        }
    }
    Ok(last
        .into_iter()
        .filter(|(_, a)| *a)
        .map(|(id, _)| id)
        .collect())
}

/// Runs `boneage mine`.
pub fn mine(args: MineArgs) -> anyhow::Result<ExitCode> {
    let segmenter = match (&args.model, args.round) {
        (Some(m), _) => Some(boneage_nn::predict::Segmenter::load(m)?),
        (None, 0) => None,
        (None, r) => bail!(
            "round {r}: rounds after 0 need --model, a U-Net trained on the accepted masks \
             (boneage train segment DATA --masks LABELS/masks --out RUN)"
        ),
    };
    let ds = Dataset::open_dir(&args.data)?;
    let done = accepted(&args.labels)?;
    let todo: Vec<_> = ds
        .samples
        .iter()
        .filter(|s| !done.contains(&s.id))
        .collect();
    let masks_dir = args.out.join("masks");
    std::fs::create_dir_all(&masks_dir)
        .with_context(|| format!("creating {}", masks_dir.display()))?;
    eprintln!(
        "round {}: {} images, {} already accepted, {} candidates to make",
        args.round,
        ds.samples.len(),
        done.len(),
        todo.len()
    );
    let cfg = SegmentConfig::default();
    let bar = super::progress_bar(todo.len() as u64, "segmenting");
    let tiles: Vec<anyhow::Result<(String, image::RgbImage)>> = todo
        .par_iter()
        .map(|s| {
            let path = ds.image_path(s);
            let r = read_radiograph(&path)?;
            let mask = match &segmenter {
                Some(net) => net.segment(&r.pixels),
                None => segment_hand(&r.pixels, &cfg),
            };
            mask.save_png(&mask_path(&masks_dir, &s.id))?;
            let thumb = thumbnail(&r.pixels, 200, 250);
            let small = Mask::threshold(
                &resize_area(&mask.to_image(), thumb.width(), thumb.height()),
                0.5,
            );
            let mut rgb = to_rgb(&thumb);
            draw_mask_outline(&mut rgb, &small, colors::MASK, 2);
            bar.inc(1);
            Ok((s.id.clone(), rgb))
        })
        .collect();
    bar.finish_and_clear();
    let mut index = String::from("sheet,tile,id\n");
    let mut ok = Vec::new();
    for t in tiles {
        match t {
            Ok(t) => ok.push(t),
            Err(e) => eprintln!("error: {e:#}"),
        }
    }
    let sheets = ok.len().div_ceil(PER_SHEET);
    for (k, chunk) in ok.chunks(PER_SHEET).enumerate() {
        let numbered: Vec<(String, image::RgbImage)> = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, rgb))| {
                index.push_str(&format!("{},{},{id}\n", k + 1, i + 1));
                (format!("{} {id}", i + 1), rgb.clone())
            })
            .collect();
        let layout = SheetLayout {
            columns: 8,
            tile_width: 200,
            tile_height: 250,
            title: Some(format!(
                "round {} sheet {}/{sheets}: reject by number with boneage review --sheet {}",
                args.round,
                k + 1,
                k + 1
            )),
        };
        save_rgb(
            &numbered,
            &layout,
            &args.out.join(format!("sheet-{:03}.png", k + 1)),
        )?;
    }
    let index_path = args.out.join("index.csv");
    boneage_core::io::write_atomic(&index_path, |w| w.write_all(index.as_bytes()))?;
    std::fs::write(args.out.join("round.txt"), format!("{}\n", args.round))
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{} candidates on {sheets} sheets in {} (index.csv maps sheet and tile to id)",
        ok.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Parses `3,17,20-22` into tile numbers.
fn parse_numbers(s: &str) -> anyhow::Result<BTreeSet<usize>> {
    let mut out = BTreeSet::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || anyhow::anyhow!("--reject: {part:?} is not a number or a range like 20-22");
        if let Some((a, b)) = part.split_once('-') {
            let (a, b): (usize, usize) = (
                a.trim().parse().map_err(|_| bad())?,
                b.trim().parse().map_err(|_| bad())?,
            );
            if a > b {
                return Err(bad());
            }
            out.extend(a..=b);
        } else {
            out.insert(part.parse().map_err(|_| bad())?);
        }
    }
    Ok(out)
}

/// Runs `boneage review`.
pub fn review(args: ReviewArgs) -> anyhow::Result<ExitCode> {
    let index_path = args.round_dir.join("index.csv");
    let index = std::fs::read_to_string(&index_path)
        .with_context(|| format!("reading {} (run boneage mine first)", index_path.display()))?;
    let round: u32 = std::fs::read_to_string(args.round_dir.join("round.txt"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let tiles: Vec<(usize, String)> = index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f.len() == 3 && f[0].parse() == Ok(args.sheet))
                .then(|| Some((f[1].parse().ok()?, f[2].to_string())))
                .flatten()
        })
        .collect();
    if tiles.is_empty() {
        bail!("{}: no sheet {}", index_path.display(), args.sheet);
    }
    let reject = parse_numbers(&args.reject)?;
    if let Some(n) = reject.iter().find(|&&n| n == 0 || n > tiles.len()) {
        bail!(
            "--reject {n}: sheet {} has tiles 1 to {}",
            args.sheet,
            tiles.len()
        );
    }
    let out_masks = args.labels.join("masks");
    std::fs::create_dir_all(&out_masks)
        .with_context(|| format!("creating {}", out_masks.display()))?;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut lines = String::new();
    let (mut acc, mut rej) = (0, 0);
    for (n, id) in &tiles {
        let accept = !reject.contains(n);
        if accept {
            let src = mask_path(&args.round_dir.join("masks"), id);
            let m = Mask::load_png(&src)?;
            let (w, h) = (
                m.width().div_ceil(LABEL_SCALE),
                m.height().div_ceil(LABEL_SCALE),
            );
            let small = Mask::threshold(&resize_area(&m.to_image(), w, h), 0.5);
            small.save_png(&mask_path(&out_masks, id))?;
            acc += 1;
        } else {
            // A later decision overrides an earlier acceptance.
            let _ = std::fs::remove_file(mask_path(&out_masks, id));
            rej += 1;
        }
        lines.push_str(&format!(
            "{id},{round},mask,{},{time}\n",
            if accept { "accept" } else { "reject" }
        ));
    }
    let log = review_log(&args.labels);
    let new = !log.is_file();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .with_context(|| format!("opening {}", log.display()))?;
    if new {
        f.write_all(b"id,round,kind,decision,time\n")?;
    }
    f.write_all(lines.as_bytes())
        .with_context(|| format!("writing {}", log.display()))?;
    eprintln!(
        "sheet {}: {acc} accepted, {rej} rejected; log {}",
        args.sheet,
        log.display()
    );
    Ok(ExitCode::SUCCESS)
}
