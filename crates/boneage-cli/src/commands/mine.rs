//! `boneage mine`, `boneage review` and `boneage annotate`: positive mining of hand
//! masks and key points.
//!
//! `mine` proposes a candidate for every image of a dataset that has none accepted
//! yet and writes numbered contact sheets of overlays:
//! - masks (`--kind mask`): round 0 the classical baseline, later rounds a U-Net
//!   trained on the masks accepted so far;
//! - key points (`--kind keypoints`, images with an accepted mask): from the mask's
//!   geometry (`boneage_core::handgeom`), or from a key-point net (`--model`).
//!
//! `review` records what a person decided, sheet by sheet (`--sheet K --reject 3,17`)
//! or on a web page (`--serve`), in the review log, and copies accepted labels into
//! the label folder. `annotate` labels by hand where the candidates were wrong: a grid
//! overlay to read coordinates off, then the three key points as numbers, or a mask
//! made from a threshold of the film (or a candidate) with a region of interest, cuts
//! between touching fingers and polygons added or erased.
//!
//! Label folder (`--labels`, e.g. `data/labels`):
//! - `masks/<id>.mask.png`: accepted masks at a quarter of the image size (white = hand);
//! - `keypoints.csv`: accepted or hand-set key points, original-image pixels;
//! - `review.csv`: `id,round,kind,decision,time` (decision `accept`, `reject` or `set`;
//!   time in seconds since 1970; for an id and kind the last decision counts).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use boneage_core::GrayImage;
use boneage_core::dataset::{Dataset, mask_path};
use boneage_core::geometry::{Affine, Point};
use boneage_core::handgeom::{GeometryParams, keypoints_for_image};
use boneage_core::image::Mask;
use boneage_core::keypoints::{self, KeyPoints};
use boneage_core::ops::segment::{SegmentConfig, segment_hand};
use boneage_core::ops::{resize_area, warp_affine};
use boneage_core::overlay::{colors, draw_mask_outline, draw_point, to_rgb};
use boneage_core::read_radiograph;
use boneage_core::sheet::{SheetLayout, save_rgb, thumbnail};
use image::RgbImage;
use rayon::prelude::*;

/// Scale of the committed masks relative to the image.
pub const LABEL_SCALE: usize = 4;
/// Tiles per contact sheet: masks, key points (wider tiles).
const PER_SHEET: [usize; 2] = [24, 20];

/// What a round proposes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Hand masks.
    Mask,
    /// The three key points.
    Keypoints,
}

impl Kind {
    /// The name in the review log.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Mask => "mask",
            Kind::Keypoints => "keypoints",
        }
    }
}

/// Arguments of `boneage mine`.
#[derive(clap::Args)]
pub struct MineArgs {
    /// Dataset folder (RSNA layout: `DATA.csv` beside it, or `labels.csv` inside).
    data: PathBuf,
    /// Label folder with the accepted labels and the review log.
    #[arg(long)]
    labels: PathBuf,
    /// Round number (masks: 0 is the classical baseline).
    #[arg(long, default_value_t = 0)]
    round: u32,
    /// What to propose: masks, or key points for the images with an accepted mask.
    #[arg(long, value_enum, default_value_t = Kind::Mask)]
    kind: Kind,
    /// Work folder for this round's candidates and sheets.
    #[arg(long)]
    out: PathBuf,
    /// Weights that make the candidates: a U-Net (`boneage train segment`; required
    /// for mask rounds after 0) or a key-point net (`boneage train keypoints`; without
    /// it key points come from the mask's geometry).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Cut thin appendages off the candidate masks (narrower than 1.4 % of the film's
    /// longer side, e.g. a strip of the cassette edge joined to the forearm).
    #[arg(long)]
    trim_strips: bool,
    /// Open gaps between fingers that the candidate mask bridged (pixels near the
    /// mask's edge darker than halfway between skin and the air outside are cut).
    #[arg(long)]
    refine_gaps: bool,
}

/// Arguments of `boneage review`.
#[derive(clap::Args)]
pub struct ReviewArgs {
    /// The round's work folder written by `boneage mine`.
    round_dir: PathBuf,
    /// Label folder with the accepted labels and the review log.
    #[arg(long)]
    labels: PathBuf,
    /// Sheet number (1-based) the decisions are about.
    #[arg(long, required_unless_present = "serve")]
    sheet: Option<usize>,
    /// Tile numbers on that sheet that are rejected, e.g. `3,17,20-22`; every other tile
    /// of the sheet is accepted.
    #[arg(long, default_value = "")]
    reject: String,
    /// Serve a review page instead (one key per decision, clicks to set key points)
    /// at this address.
    #[arg(long, num_args = 0..=1, default_missing_value = "127.0.0.1:8765", conflicts_with = "sheet")]
    serve: Option<String>,
    /// Dataset folder the round was mined from (the review page shows its images).
    #[arg(long, requires = "serve")]
    data: Option<PathBuf>,
}

/// Arguments of `boneage annotate`.
#[derive(clap::Args)]
pub struct AnnotateArgs {
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

/// Points of a polygon or polyline given on the command line.
#[derive(Clone, Debug)]
pub struct Shape(Vec<Point>);

fn parse_shape(s: &str) -> Result<Shape, String> {
    boneage_core::ops::draw::parse_points(s).map(Shape)
}

fn parse_point(s: &str) -> Result<Point, String> {
    match boneage_core::ops::draw::parse_points(s)?[..] {
        [p] => Ok(p),
        _ => Err(format!("{s:?} is not x,y")),
    }
}

fn parse_rect(s: &str) -> Result<[f64; 4], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{s:?} is not x0,y0,x1,y1"))?;
    match v[..] {
        [x0, y0, x1, y1] if x1 > x0 && y1 > y0 => Ok([x0, y0, x1, y1]),
        _ => Err(format!("{s:?} is not x0,y0,x1,y1 with x1 > x0 and y1 > y0")),
    }
}

/// A label folder: accepted masks, key points and the review log.
pub struct Labels {
    dir: PathBuf,
}

/// One decision about one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The candidate is right.
    Accept,
    /// The candidate is wrong.
    Reject,
    /// Key points set by hand.
    Set,
}

impl Decision {
    fn name(self) -> &'static str {
        match self {
            Decision::Accept => "accept",
            Decision::Reject => "reject",
            Decision::Set => "set",
        }
    }
}

impl Labels {
    /// The label folder at `dir` (created on the first decision).
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("review.csv")
    }

    /// Folder of accepted masks.
    pub fn masks_dir(&self) -> PathBuf {
        self.dir.join("masks")
    }

    /// The key-point CSV.
    pub fn keypoints_path(&self) -> PathBuf {
        self.dir.join("keypoints.csv")
    }

    /// The last decision for each id about `kind`.
    pub fn decisions(&self, kind: Kind) -> anyhow::Result<BTreeMap<String, String>> {
        let path = self.log_path();
        let mut last = BTreeMap::new();
        if !path.is_file() {
            return Ok(last);
        }
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
            if f[2] == kind.name() {
                last.insert(f[0].to_string(), f[3].to_string());
            }
        }
        Ok(last)
    }

    /// Ids whose label of `kind` is accepted or set by hand.
    pub fn accepted(&self, kind: Kind) -> anyhow::Result<BTreeSet<String>> {
        Ok(self
            .decisions(kind)?
            .into_iter()
            .filter(|(_, d)| d == "accept" || d == "set")
            .map(|(id, _)| id)
            .collect())
    }

    /// Accepted key points.
    pub fn keypoints(&self) -> anyhow::Result<BTreeMap<String, KeyPoints>> {
        let p = self.keypoints_path();
        if p.is_file() {
            Ok(keypoints::read_csv(&p)?)
        } else {
            Ok(BTreeMap::new())
        }
    }

    /// Applies key-point changes (`None` removes) to `keypoints.csv`, atomically.
    fn update_keypoints(&self, changes: &[(String, Option<KeyPoints>)]) -> anyhow::Result<()> {
        let mut all = self.keypoints()?;
        for (id, k) in changes {
            match k {
                Some(k) => {
                    all.insert(id.clone(), *k);
                }
                None => {
                    all.remove(id);
                }
            }
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        keypoints::write_csv(
            &self.keypoints_path(),
            all.iter().map(|(id, k)| (id.as_str(), k)),
        )?;
        Ok(())
    }

    /// Appends decisions to the review log.
    fn log(&self, round: u32, kind: Kind, rows: &[(String, Decision)]) -> anyhow::Result<()> {
        let time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut lines = String::new();
        for (id, d) in rows {
            lines.push_str(&format!(
                "{id},{round},{},{},{time}\n",
                kind.name(),
                d.name()
            ));
        }
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let log = self.log_path();
        let new = !log.is_file();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        if new {
            lines.insert_str(0, "id,round,kind,decision,time\n");
        }
        // One write per batch of decisions, so a crash leaves whole lines.
        f.write_all(lines.as_bytes())
            .with_context(|| format!("writing {}", log.display()))?;
        Ok(())
    }

    /// Records hand-set key points.
    pub fn set_keypoints(&self, id: &str, k: KeyPoints) -> anyhow::Result<()> {
        self.update_keypoints(&[(id.to_string(), Some(k))])?;
        self.log(0, Kind::Keypoints, &[(id.to_string(), Decision::Set)])
    }

    /// Records a mask drawn or corrected by hand (`full` at the film's size).
    pub fn set_mask(&self, id: &str, round: u32, full: &Mask) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.masks_dir())
            .with_context(|| format!("creating {}", self.masks_dir().display()))?;
        save_label_mask(full, &mask_path(&self.masks_dir(), id))?;
        self.log(round, Kind::Mask, &[(id.to_string(), Decision::Set)])
    }

    /// The accepted mask of `id` at full size `w`×`h`, if there is one.
    pub fn mask(&self, id: &str, w: usize, h: usize) -> anyhow::Result<Option<Mask>> {
        let p = mask_path(&self.masks_dir(), id);
        if !p.is_file() {
            return Ok(None);
        }
        Ok(Some(Mask::load_png(&p)?.resized(w, h)))
    }
}

/// A round's work folder as `mine` wrote it.
pub struct Round {
    /// The folder.
    pub dir: PathBuf,
    /// Round number.
    pub number: u32,
    /// What it proposes.
    pub kind: Kind,
    /// `(sheet, tile, id)` in sheet order.
    pub tiles: Vec<(usize, usize, String)>,
    /// Key-point candidates (key-point rounds).
    pub candidates: BTreeMap<String, KeyPoints>,
}

impl Round {
    /// Reads `index.csv`, `round.txt` and the candidates of a round folder.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        let index_path = dir.join("index.csv");
        let index = std::fs::read_to_string(&index_path).with_context(|| {
            format!("reading {} (run boneage mine first)", index_path.display())
        })?;
        let info = std::fs::read_to_string(dir.join("round.txt")).unwrap_or_default();
        let mut words = info.split_whitespace();
        let number = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let kind = match words.next() {
            Some("keypoints") => Kind::Keypoints,
            _ => Kind::Mask,
        };
        let mut tiles = Vec::new();
        for (n, l) in index.lines().enumerate().skip(1) {
            let f: Vec<&str> = l.split(',').collect();
            let parsed = (f.len() == 3)
                .then(|| Some((f[0].parse().ok()?, f[1].parse().ok()?, f[2].to_string())))
                .flatten();
            match parsed {
                Some(t) => tiles.push(t),
                None => bail!(
                    "{}: line {}: expected sheet,tile,id",
                    index_path.display(),
                    n + 1
                ),
            }
        }
        let candidates = if kind == Kind::Keypoints {
            keypoints::read_csv(&dir.join("candidates.csv"))?
        } else {
            BTreeMap::new()
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            number,
            kind,
            tiles,
            candidates,
        })
    }

    /// Records decisions about candidates of this round: accepted labels go into the
    /// label folder, rejected ones leave it. Returns (accepted, rejected).
    pub fn decide(
        &self,
        labels: &Labels,
        decisions: &[(String, bool)],
    ) -> anyhow::Result<(usize, usize)> {
        let mut kp_changes = Vec::new();
        let mut rows = Vec::new();
        for (id, accept) in decisions {
            match self.kind {
                Kind::Mask => {
                    let dst = mask_path(&labels.masks_dir(), id);
                    if *accept {
                        std::fs::create_dir_all(labels.masks_dir()).with_context(|| {
                            format!("creating {}", labels.masks_dir().display())
                        })?;
                        let m = Mask::load_png(&mask_path(&self.dir.join("masks"), id))?;
                        save_label_mask(&m, &dst)?;
                    } else {
                        // A later decision overrides an earlier acceptance.
                        let _ = std::fs::remove_file(dst);
                    }
                }
                Kind::Keypoints => {
                    let k = self.candidates.get(id).with_context(|| {
                        format!(
                            "{}: no candidate for {id}",
                            self.dir.join("candidates.csv").display()
                        )
                    })?;
                    kp_changes.push((id.clone(), accept.then_some(*k)));
                }
            }
            rows.push((
                id.clone(),
                if *accept {
                    Decision::Accept
                } else {
                    Decision::Reject
                },
            ));
        }
        if !kp_changes.is_empty() {
            labels.update_keypoints(&kp_changes)?;
        }
        labels.log(self.number, self.kind, &rows)?;
        let acc = decisions.iter().filter(|d| d.1).count();
        Ok((acc, decisions.len() - acc))
    }
}

/// Writes a full-size mask at the label scale (`ceil(w/4)` × `ceil(h/4)`).
fn save_label_mask(full: &Mask, dst: &Path) -> anyhow::Result<()> {
    let (w, h) = (
        full.width().div_ceil(LABEL_SCALE),
        full.height().div_ceil(LABEL_SCALE),
    );
    Mask::threshold(&resize_area(&full.to_image(), w, h), 0.5).save_png(dst)?;
    Ok(())
}

/// A mask overlay: the radiograph fitted into `w`×`h` with the mask outline.
pub fn mask_tile(img: &GrayImage, mask: &Mask, w: usize, h: usize) -> RgbImage {
    let thumb = thumbnail(img, w, h);
    let small = Mask::threshold(
        &resize_area(&mask.to_image(), thumb.width(), thumb.height()),
        0.5,
    );
    let mut rgb = to_rgb(&thumb);
    draw_mask_outline(&mut rgb, &small, colors::MASK, 2);
    rgb
}

/// A key-point overlay, `w + h·3/5` wide: the radiograph fitted into `w`×`h` with the
/// mask outline (when known) and the three points, and beside it the capitate's
/// neighbourhood magnified (a fifth of the image height across), point at the centre.
pub fn keypoint_tile(
    img: &GrayImage,
    mask: Option<&Mask>,
    k: &KeyPoints,
    w: usize,
    h: usize,
) -> RgbImage {
    let thumb = thumbnail(img, w, h);
    let s = thumb.width() as f64 / img.width() as f64;
    let mut rgb = to_rgb(&thumb);
    if let Some(m) = mask {
        let small = Mask::threshold(
            &resize_area(&m.to_image(), thumb.width(), thumb.height()),
            0.5,
        );
        draw_mask_outline(&mut rgb, &small, [30, 120, 60], 1);
    }
    let r = (h as f64 / 90.0).max(2.0);
    draw_point(&mut rgb, k.fingertip * s, r, colors::FINGERTIP);
    draw_point(&mut rgb, k.thumb * s, r, colors::THUMB);
    draw_point(&mut rgb, k.capitate * s, r, colors::CAPITATE);
    // The capitate's neighbourhood.
    let zw = h * 3 / 5;
    let side = img.height() as f64 / 5.0;
    let scale = side / zw as f64;
    let map = Affine::similarity(
        scale,
        0.0,
        false,
        k.capitate - Point::new(side / 2.0, side / 2.0),
    );
    // Contrast stretched within the crop, so the carpal bones stand apart.
    let crop = warp_affine(img, &map, zw, zw);
    let all = Mask::threshold(&GrayImage::filled(zw, zw, 1.0), 0.5);
    let zoom = to_rgb(&boneage_core::ops::percentile_window(
        &crop, &all, 1.0, 99.5,
    ));
    let mut out = RgbImage::from_pixel((w + zw) as u32, h as u32, image::Rgb([20, 20, 24]));
    image::imageops::replace(&mut out, &rgb, 0, 0);
    let mut zoom = zoom;
    let c = Point::new(zw as f64 / 2.0, zw as f64 / 2.0);
    for d in [-1.0, 1.0] {
        // A cross with a gap, so the bone under the point stays visible.
        for t in 4..10 {
            let t = t as f64 * d;
            for p in [c + Point::new(t, 0.0), c + Point::new(0.0, t)] {
                zoom.put_pixel(p.x as u32, p.y as u32, image::Rgb(colors::CAPITATE));
            }
        }
    }
    image::imageops::replace(&mut out, &zoom, w as i64, 0);
    out
}

/// How candidates are made.
enum Proposer {
    Baseline,
    Segmenter(Box<boneage_nn::predict::Segmenter>),
    Geometry,
    Locator(Box<boneage_nn::predict::Locator>),
}

/// Runs `boneage mine`.
pub fn mine(args: MineArgs) -> anyhow::Result<ExitCode> {
    let proposer = match (args.kind, &args.model, args.round) {
        (Kind::Mask, Some(m), _) => {
            Proposer::Segmenter(Box::new(boneage_nn::predict::Segmenter::load(m)?))
        }
        (Kind::Mask, None, 0) => Proposer::Baseline,
        (Kind::Mask, None, r) => bail!(
            "round {r}: rounds after 0 need --model, a U-Net trained on the accepted masks \
             (boneage train segment DATA --masks LABELS/masks --out RUN)"
        ),
        (Kind::Keypoints, Some(m), _) => {
            Proposer::Locator(Box::new(boneage_nn::predict::Locator::load(m)?))
        }
        (Kind::Keypoints, None, _) => Proposer::Geometry,
    };
    let ds = Dataset::open_dir(&args.data)?;
    let labels = Labels::new(&args.labels);
    let done = labels.accepted(args.kind)?;
    let with_mask = labels.accepted(Kind::Mask)?;
    let todo: Vec<_> = ds
        .samples
        .iter()
        .filter(|s| !done.contains(&s.id))
        .filter(|s| args.kind == Kind::Mask || with_mask.contains(&s.id))
        .collect();
    let masks_dir = args.out.join("masks");
    std::fs::create_dir_all(&masks_dir)
        .with_context(|| format!("creating {}", masks_dir.display()))?;
    eprintln!(
        "round {} ({}): {} images, {} already accepted, {} candidates to make",
        args.round,
        args.kind.name(),
        ds.samples.len(),
        done.len(),
        todo.len()
    );
    let cfg = SegmentConfig::default();
    let bar = super::progress_bar(todo.len() as u64, "proposing");
    type Made = (String, RgbImage, Option<KeyPoints>);
    let tiles: Vec<anyhow::Result<Option<Made>>> = todo
        .par_iter()
        .map(|s| {
            let path = ds.image_path(s);
            let r = read_radiograph(&path)?;
            let (w, h) = (r.pixels.width(), r.pixels.height());
            let made = match &proposer {
                Proposer::Baseline | Proposer::Segmenter(_) => {
                    let mut mask = match &proposer {
                        Proposer::Segmenter(net) => net.segment(&r.pixels),
                        _ => segment_hand(&r.pixels, &cfg),
                    };
                    if args.refine_gaps {
                        mask = boneage_core::ops::refine_gaps(
                            &r.pixels,
                            &mask,
                            0.02 * w.max(h) as f32,
                        );
                    }
                    if args.trim_strips {
                        mask = boneage_core::ops::trim_thin(&mask, 0.007 * w.max(h) as f32);
                    }
                    mask.save_png(&mask_path(&masks_dir, &s.id))?;
                    Some((s.id.clone(), mask_tile(&r.pixels, &mask, 200, 250), None))
                }
                Proposer::Geometry | Proposer::Locator(_) => {
                    let small = Mask::load_png(&mask_path(&labels.masks_dir(), &s.id))?;
                    let k = match &proposer {
                        Proposer::Locator(net) => Some(net.locate(&r.pixels)),
                        _ => keypoints_for_image(&small, w, h, &GeometryParams::default()),
                    };
                    let full = small.resized(w, h);
                    k.map(|k| {
                        (
                            s.id.clone(),
                            keypoint_tile(&r.pixels, Some(&full), &k, 200, 250),
                            Some(k),
                        )
                    })
                }
            };
            bar.inc(1);
            Ok(made)
        })
        .collect();
    bar.finish_and_clear();
    let mut index = String::from("sheet,tile,id\n");
    let mut ok = Vec::new();
    let mut candidates = BTreeMap::new();
    let mut none = 0;
    for t in tiles {
        match t {
            Ok(Some((id, rgb, k))) => {
                if let Some(k) = k {
                    candidates.insert(id.clone(), k);
                }
                ok.push((id, rgb));
            }
            Ok(None) => none += 1,
            Err(e) => eprintln!("error: {e:#}"),
        }
    }
    if none > 0 {
        eprintln!(
            "{none} masks gave no key-point candidate (no finger found); annotate those by hand"
        );
    }
    let per_sheet = PER_SHEET[(args.kind == Kind::Keypoints) as usize];
    let sheets = ok.len().div_ceil(per_sheet);
    for (k, chunk) in ok.chunks(per_sheet).enumerate() {
        let numbered: Vec<(String, RgbImage)> = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, rgb))| {
                index.push_str(&format!("{},{},{id}\n", k + 1, i + 1));
                (format!("{} {id}", i + 1), rgb.clone())
            })
            .collect();
        let layout = SheetLayout {
            columns: if args.kind == Kind::Mask { 8 } else { 5 },
            // Key-point tiles carry the magnified carpus beside the film.
            tile_width: if args.kind == Kind::Mask {
                200
            } else {
                200 + 250 * 3 / 5
            },
            tile_height: 250,
            title: Some(format!(
                "round {} {} sheet {}/{sheets}: reject by number with boneage review --sheet {}",
                args.round,
                args.kind.name(),
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
    if args.kind == Kind::Keypoints {
        keypoints::write_csv(
            &args.out.join("candidates.csv"),
            candidates.iter().map(|(id, k)| (id.as_str(), k)),
        )?;
    }
    let index_path = args.out.join("index.csv");
    boneage_core::io::write_atomic(&index_path, |w| w.write_all(index.as_bytes()))?;
    boneage_core::io::write_atomic(&args.out.join("round.txt"), |w| {
        writeln!(w, "{} {}", args.round, args.kind.name())
    })?;
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
    let round = Round::open(&args.round_dir)?;
    let labels = Labels::new(&args.labels);
    if let Some(addr) = &args.serve {
        let data = args
            .data
            .as_deref()
            .context("--serve needs --data, the dataset folder the round was mined from")?;
        return super::review_web::serve(round, labels, Dataset::open_dir(data)?, addr);
    }
    let sheet = args.sheet.context("--sheet is needed without --serve")?;
    let tiles: Vec<(usize, String)> = round
        .tiles
        .iter()
        .filter(|t| t.0 == sheet)
        .map(|t| (t.1, t.2.clone()))
        .collect();
    if tiles.is_empty() {
        bail!(
            "{}: no sheet {sheet}",
            round.dir.join("index.csv").display()
        );
    }
    let reject = parse_numbers(&args.reject)?;
    if let Some(n) = reject.iter().find(|&&n| n == 0 || n > tiles.len()) {
        bail!("--reject {n}: sheet {sheet} has tiles 1 to {}", tiles.len());
    }
    let decisions: Vec<(String, bool)> = tiles
        .iter()
        .map(|(n, id)| (id.clone(), !reject.contains(n)))
        .collect();
    let (acc, rej) = round.decide(&labels, &decisions)?;
    eprintln!(
        "sheet {sheet}: {acc} accepted, {rej} rejected; log {}",
        labels.log_path().display()
    );
    Ok(ExitCode::SUCCESS)
}

/// A radiograph (or the rectangle `view` of it, magnified) with a coordinate grid in
/// original pixels, for reading points off; the mask outline in `mask_color`.
fn grid_overlay(
    img: &GrayImage,
    view: Option<[f64; 4]>,
    mask: Option<(&Mask, [u8; 3])>,
    known: Option<&KeyPoints>,
) -> RgbImage {
    let (iw, ih) = (img.width() as f64, img.height() as f64);
    let [x0, y0, x1, y1] = view.unwrap_or([0.0, 0.0, iw, ih]);
    let (x0, y0) = (
        x0.clamp(0.0, iw - 1.0).floor(),
        y0.clamp(0.0, ih - 1.0).floor(),
    );
    let (x1, y1) = (x1.clamp(x0 + 1.0, iw).ceil(), y1.clamp(y0 + 1.0, ih).ceil());
    // At most 1000 pixels high and 1400 wide; a small view is magnified up to 8×.
    let s = (1000.0 / (y1 - y0))
        .min(1400.0 / (x1 - x0))
        .min(if view.is_some() { 8.0 } else { 1.0 });
    let (w, h) = (
        ((x1 - x0) * s).round().max(1.0) as usize,
        ((y1 - y0) * s).round().max(1.0) as usize,
    );
    let to_view = |g: &GrayImage| {
        let map = Affine::similarity(1.0 / s, 0.0, false, Point::new(x0, y0));
        if s < 1.0 {
            let crop = warp_affine(
                g,
                &Affine::similarity(1.0, 0.0, false, Point::new(x0, y0)),
                (x1 - x0) as usize,
                (y1 - y0) as usize,
            );
            resize_area(&crop, w, h)
        } else {
            warp_affine(g, &map, w, h)
        }
    };
    let mut rgb = to_rgb(&to_view(img));
    if let Some((m, color)) = mask {
        let ms = Mask::threshold(&to_view(&m.to_image()), 0.5);
        draw_mask_outline(&mut rgb, &ms, color, 1);
    }
    // Lines at a round step at least 35 pixels of the picture apart, labelled every
    // second line.
    let step = [5usize, 10, 25, 50, 100, 200, 500]
        .into_iter()
        .find(|&k| k as f64 * s >= 35.0)
        .unwrap_or(1000);
    let first = |a: f64| (a as usize).div_ceil(step) * step;
    for (k, vertical) in (first(x0)..x1 as usize)
        .step_by(step)
        .map(|k| (k, true))
        .chain((first(y0)..y1 as usize).step_by(step).map(|k| (k, false)))
    {
        let strong = k % (2 * step) == 0;
        let c = if strong { [0, 200, 255] } else { [0, 90, 120] };
        let v = ((k as f64 - if vertical { x0 } else { y0 }) * s) as u32;
        let (len, label_at) = if vertical {
            (h, (v as i64 + 2, 2))
        } else {
            (w, (2, v as i64 + 2))
        };
        for t in 0..len as u32 {
            let (x, y) = if vertical { (v, t) } else { (t, v) };
            if (x as usize) < w && (y as usize) < h {
                rgb.put_pixel(x, y, image::Rgb(c));
            }
        }
        if strong {
            boneage_core::font::draw_text_rgb(
                &mut rgb,
                &k.to_string(),
                label_at.0,
                label_at.1,
                1,
                [255, 255, 0],
            );
        }
    }
    if let Some(k) = known {
        let at = |p: Point| (p - Point::new(x0, y0)) * s;
        draw_point(&mut rgb, at(k.fingertip), 4.0, colors::FINGERTIP);
        draw_point(&mut rgb, at(k.thumb), 4.0, colors::THUMB);
        draw_point(&mut rgb, at(k.capitate), 4.0, colors::CAPITATE);
    }
    rgb
}

/// The mask a person asked for with `annotate`'s editing options, `None` when no
/// editing option was given: the start (candidate, threshold of the film, or the
/// accepted mask), limited to the region of interest, polygons added and erased,
/// cuts made, then the paper's post-processing (largest component, holes filled).
fn edited_mask(
    args: &AnnotateArgs,
    img: &GrayImage,
    accepted: Option<&Mask>,
) -> anyhow::Result<Option<Mask>> {
    use boneage_core::ops::draw::{fill_polygon, stroke_polyline};
    use boneage_core::ops::{Connectivity, fill_holes, largest_component};
    let edits = args.roi.is_some()
        || !args.add.is_empty()
        || !args.erase.is_empty()
        || !args.cut.is_empty();
    if args.mask_from.is_none() && args.threshold.is_none() && !edits {
        return Ok(None);
    }
    let (w, h) = (img.width(), img.height());
    let mut m = if let Some(p) = &args.mask_from {
        Mask::load_png(p)?.resized(w, h)
    } else if let Some(t) = args.threshold {
        if !(0.0..=1.0).contains(&t) {
            bail!("--threshold {t}: give a fraction between 0 and 1");
        }
        let all = Mask::threshold(&GrayImage::filled(w, h, 1.0), 0.5);
        let win = boneage_core::ops::percentile_window(img, &all, 1.0, 99.5);
        Mask::threshold(&boneage_core::ops::gaussian_blur(&win, 1.5), t)
    } else {
        accepted.cloned().unwrap_or_else(|| Mask::new(w, h))
    };
    if let Some(Shape(roi)) = &args.roi {
        m.intersect(&fill_polygon(w, h, roi));
    }
    for Shape(p) in &args.add {
        m.union(&fill_polygon(w, h, p));
    }
    for Shape(p) in &args.erase {
        m.subtract(&fill_polygon(w, h, p));
    }
    for Shape(p) in &args.cut {
        m.subtract(&stroke_polyline(w, h, p, args.cut_width));
    }
    let m = fill_holes(&largest_component(&m, Connectivity::Eight));
    if m.count() == 0 {
        bail!("{}: the edited mask is empty", args.id);
    }
    Ok(Some(m))
}

/// Runs `boneage annotate`.
pub fn annotate(args: AnnotateArgs) -> anyhow::Result<ExitCode> {
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
    let edited = edited_mask(&args, &r.pixels, accepted.as_ref())
        .with_context(|| format!("editing the mask of {}", path.display()))?;
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
        let rgb = grid_overlay(&r.pixels, args.view, mask, known.as_ref());
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
