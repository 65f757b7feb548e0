//! From a dataset folder to [`Examples`]: decode each radiograph once, bring it to
//! the network's input (registered region crop, or the whole film letterboxed),
//! window its contrast, and keep 8-bit pixels with the target.

use std::collections::BTreeMap;
use std::path::Path;

use boneage_core::dataset::{Dataset, Sample, crop_path, find_mask};
use boneage_core::geometry::{Affine, Point};
use boneage_core::image::Mask;
use boneage_core::keypoints::KeyPoints;
use boneage_core::ops::{percentile_window, resize_area};
use boneage_core::registration::{Canvas, Region, crop, register};
use boneage_core::{Error, GrayImage, Result, read_radiograph};
use rayon::prelude::*;

use crate::data::{Example, Examples, Target, from_unit, to_unit};
use crate::keypoint_net::Refined;

/// How a radiograph becomes a bone-age network input.
#[derive(Clone, Debug)]
pub enum AgeView {
    /// The whole film, scaled to fit and centred (no registration).
    Whole,
    /// Registered from key points onto `canvas`, then the region cropped.
    Region {
        /// Key points by image id.
        keypoints: BTreeMap<String, KeyPoints>,
        /// The registration canvas.
        canvas: Canvas,
        /// Which region.
        region: Region,
    },
    /// Region crops already made by `boneage preprocess` (`<dir>/<id>_<A|B|C>.png`:
    /// segmented, normalised and registered by the same pipeline that `boneage
    /// assess` runs), scaled to the input size. Films without a crop (the pipeline
    /// refused them) are skipped.
    Crops {
        /// The preprocess output folder.
        dir: std::path::PathBuf,
        /// The canvas it registered onto ([`boneage_core::dataset::crops_canvas`]).
        canvas: Canvas,
        /// Which region.
        region: Region,
    },
}

impl AgeView {
    /// Whether film `id` can be brought to this view (it has key points or a crop).
    pub fn has(&self, id: &str) -> bool {
        match self {
            AgeView::Whole => true,
            AgeView::Region { keypoints, .. } => keypoints.contains_key(id),
            AgeView::Crops { dir, region, .. } => crop_path(dir, id, *region).is_file(),
        }
    }

    /// The registered canvas its regions are cut from (none for the whole film).
    pub fn canvas(&self) -> Option<Canvas> {
        match self {
            AgeView::Whole => None,
            AgeView::Region { canvas, .. } | AgeView::Crops { canvas, .. } => Some(*canvas),
        }
    }
}

/// Scales `img` to fit `width`×`height` (area resampling), centred on black.
/// Returns the image and the input→output map.
pub fn letterbox(img: &GrayImage, width: usize, height: usize) -> (GrayImage, Affine) {
    let s = (width as f64 / img.width() as f64).min(height as f64 / img.height() as f64);
    let rw = ((img.width() as f64 * s).round() as usize).clamp(1, width);
    let rh = ((img.height() as f64 * s).round() as usize).clamp(1, height);
    let small = resize_area(img, rw, rh);
    let (ox, oy) = ((width - rw) / 2, (height - rh) / 2);
    let mut out = GrayImage::new(width, height);
    for y in 0..rh {
        out.as_mut_slice()[(oy + y) * width + ox..][..rw]
            .copy_from_slice(&small.as_slice()[y * rw..(y + 1) * rw]);
    }
    let (sx, sy) = (
        rw as f64 / img.width() as f64,
        rh as f64 / img.height() as f64,
    );
    (out, Affine([sx, 0.0, ox as f64, 0.0, sy, oy as f64]))
}

/// The 1st–99th percentile window over the non-black pixels (the black is padding
/// or outside the registered film).
///
/// Films stored with the wrong polarity (bone dark) are inverted first: the hand
/// fills the middle of the input, so when the outer frame is brighter than the
/// middle the film is negative.
pub fn window_pixels(img: &GrayImage) -> Vec<u8> {
    let mask = Mask::threshold(img, 1e-3);
    let mut out = percentile_window(img, &mask, 1.0, 99.0);
    if frame_brighter_than_centre(&out, &mask) {
        for (v, &m) in out.as_mut_slice().iter_mut().zip(mask.as_slice()) {
            if m != 0 {
                *v = 1.0 - *v;
            }
        }
    }
    out.to_u8()
}

/// Mean of the film (inside `mask`) in the outer eighth of each side against the
/// mean in the central half.
fn frame_brighter_than_centre(img: &GrayImage, mask: &Mask) -> bool {
    let (w, h) = (img.width(), img.height());
    let (mut frame, mut nf, mut centre, mut nc) = (0.0f64, 0usize, 0.0f64, 0usize);
    for y in 0..h {
        for x in 0..w {
            if !mask.get(x, y) {
                continue;
            }
            let v = img.get(x, y) as f64;
            let edge = x < w / 8 || x >= w - w / 8 || y < h / 8 || y >= h - h / 8;
            let mid = x >= w / 4 && x < w - w / 4 && y >= h / 4 && y < h - h / 4;
            if edge {
                frame += v;
                nf += 1;
            } else if mid {
                centre += v;
                nc += 1;
            }
        }
    }
    nf > 0 && nc > 0 && frame / nf as f64 > centre / nc as f64 + 0.1
}

/// Examples of `[height, width]` from `one` applied to each sample in parallel
/// (`None`: the sample has no label of this kind and is skipped).
fn prepare(
    samples: &[Sample],
    size: [usize; 2],
    progress: &(dyn Fn() + Sync),
    one: impl Fn(&Sample) -> Result<Option<Example>> + Sync,
) -> Result<Examples> {
    prepare_kinds(samples, size, progress, |s| one(s).map(|e| [e]))
}

/// [`prepare`] where each sample gives up to `N` examples, one of each kind, from one
/// reading of its film: the items are every sample's first kind, then every
/// sample's second, and so on.
fn prepare_kinds<const N: usize>(
    samples: &[Sample],
    [height, width]: [usize; 2],
    progress: &(dyn Fn() + Sync),
    one: impl Fn(&Sample) -> Result<[Option<Example>; N]> + Sync,
) -> Result<Examples> {
    let out: Vec<Result<[Option<Example>; N]>> = samples
        .par_iter()
        .map(|s| {
            let r = one(s);
            progress();
            r
        })
        .collect();
    let mut kinds: [Vec<Example>; N] = std::array::from_fn(|_| Vec::new());
    for r in out {
        for (kind, t) in kinds.iter_mut().zip(r?) {
            kind.extend(t);
        }
    }
    Ok(Examples {
        height,
        width,
        items: kinds.into_iter().flatten().collect(),
    })
}

/// Bone-age examples of `samples` at `[height, width]`.
pub fn age_examples(
    ds: &Dataset,
    samples: &[Sample],
    view: &AgeView,
    [h, w]: [usize; 2],
    progress: &(dyn Fn() + Sync),
) -> Result<Examples> {
    prepare(samples, [h, w], progress, |s| {
        let path = ds.image_path(s);
        let img = match view {
            AgeView::Crops { dir, region, .. } => {
                // The cached crop, not the film.
                let crop = crop_path(dir, &s.id, *region);
                if !crop.is_file() {
                    return Ok(None);
                }
                resize_area(&read_radiograph(&crop)?.pixels, w, h)
            }
            AgeView::Whole => letterbox(&read_radiograph(&path)?.pixels, w, h).0,
            AgeView::Region {
                keypoints,
                canvas,
                region,
            } => {
                let r = read_radiograph(&path)?;
                let k = keypoints.get(&s.id).ok_or_else(|| Error::Table {
                    path: path.clone(),
                    detail: format!("no key points for id {:?}", s.id),
                })?;
                let reg = register(k, canvas).map_err(|e| in_file(&path, e))?;
                let c = crop(&reg.warp(&r.pixels, canvas), canvas.region(*region));
                resize_area(&c, w, h)
            }
        };
        Ok(Some(Example {
            id: s.id.clone(),
            male: s.sex.is_male(),
            pixels: window_pixels(&img),
            target: Target::Age(s.boneage_months as f32),
        }))
    })
}

fn in_file(path: &Path, e: Error) -> Error {
    Error::Table {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

/// Key-point examples (the whole film letterboxed to `[height, width]`, points in
/// `[−1, 1]` of the input) of the samples that have key points.
pub fn keypoint_examples(
    ds: &Dataset,
    samples: &[Sample],
    keypoints: &BTreeMap<String, KeyPoints>,
    [h, w]: [usize; 2],
    progress: &(dyn Fn() + Sync),
) -> Result<Examples> {
    prepare(samples, [h, w], progress, |s| {
        let Some(k) = keypoints.get(&s.id) else {
            return Ok(None);
        };
        let r = read_radiograph(ds.image_path(s))?;
        let (img, map) = letterbox(&r.pixels, w, h);
        let t: Vec<f32> = [k.fingertip, k.thumb, k.capitate]
            .into_iter()
            .flat_map(|p| to_unit(map.apply(p), [h, w]))
            .collect();
        Ok(Some(Example {
            id: s.id.clone(),
            male: s.sex.is_male(),
            pixels: window_pixels(&img),
            target: Target::Keypoints(t),
        }))
    })
}

/// Key points from a network output in `[−1, 1]` of a letterboxed input back to
/// the original image's pixels.
pub fn keypoints_from_input(t: &[f32; 6], map: &Affine, [h, w]: [usize; 2]) -> KeyPoints {
    let inv = map.inverse().expect("letterbox maps are invertible");
    let p = |i: usize| inv.apply(from_unit([t[2 * i], t[2 * i + 1]], [h, w]));
    KeyPoints {
        fingertip: p(0),
        thumb: p(1),
        capitate: p(2),
    }
}

/// The width of a refining net's field, in fingertip–capitate spans: for the
/// capitate the carpus, the metacarpal bases and the ends of radius and ulna; for the
/// thumb tip the thumb's last phalanx and the skin around it; with room for the first
/// guess to be 10 % of the hand off.
pub const REFINE_FIELD: f64 = 0.4;

/// The map from a refining net's `size`×`size` input to the film: centred on
/// `centre`, [`REFINE_FIELD`] of the span of `k` wide, the hand's axis (capitate
/// to fingertip of `k`) pointing up and the thumb on the right (a mirrored film is
/// mirrored back), so every hand reaches the net the same way round.
pub fn refine_frame(k: &KeyPoints, centre: Point, size: usize) -> Affine {
    let axis = k.fingertip - k.capitate;
    let r = REFINE_FIELD * axis.norm().max(1.0) / size as f64;
    // The input's downward direction on the film, and its rightward one (the
    // downward one turned a quarter counter-clockwise as seen, y down).
    let down = (-axis).unit();
    let mut right = Point::new(down.y, -down.x);
    if !k.thumb_on_right() {
        right = -right;
    }
    let half = size as f64 / 2.0;
    let t = centre - (right + down) * (r * half);
    Affine([r * right.x, r * down.x, t.x, r * right.y, r * down.y, t.y])
}

/// A refining net's input from a film (pixels in `[0, 1]`): the field of
/// [`refine_frame`], windowed to its own 1st–99th percentiles; with the input →
/// film map.
pub fn refine_input(
    img: &GrayImage,
    k: &KeyPoints,
    centre: Point,
    size: usize,
) -> (Vec<u8>, Affine) {
    let to_film = refine_frame(k, centre, size);
    let field = boneage_core::ops::warp_affine(img, &to_film, size, size);
    let on_film = Mask::threshold(&field, 1e-3);
    (
        percentile_window(&field, &on_film, 1.0, 99.0).to_u8(),
        to_film,
    )
}

/// How far a refining example's field is moved and turned from the truth: its
/// centre up to this many spans off, its axis turned up to [`REFINE_JITTER_DEG`]
/// and its span scaled by up to ±8 %, as a first guess from the mask's shape would be
/// (blind films: capitate median 3 %, 95th percentile 6 % of the hand).
pub const REFINE_JITTER: f64 = 0.07;
/// See [`REFINE_JITTER`].
pub const REFINE_JITTER_DEG: f64 = 8.0;

/// Examples for the net that refines `point`, of the samples that have key points:
/// each film's field ([`refine_input`]) around its true point, moved, turned and
/// scaled at random by [`REFINE_JITTER`] (seeded by the id, so the examples are the
/// same every run); the target is the true point in `[−1, 1]` of the input. With
/// `cut_outs` (a folder of hand masks, [`find_mask`]), each film with a mask there
/// gives a second example: the film as another program would have cut it out,
/// exact black outside its mask (the mask grown or shrunk at random by up to
/// [`CUT_OUT_EDGE`] of the film's longer side, as an outline drawn by another
/// program would be), its field drawn afresh.
pub fn refine_examples(
    ds: &Dataset,
    samples: &[Sample],
    keypoints: &BTreeMap<String, KeyPoints>,
    point: Refined,
    size: usize,
    cut_outs: Option<&Path>,
    progress: &(dyn Fn() + Sync),
) -> Result<Examples> {
    prepare_kinds(samples, [size, size], progress, |s| {
        let Some(k) = keypoints.get(&s.id) else {
            return Ok([None, None]);
        };
        let film = read_radiograph(ds.image_path(s))?.pixels;
        let cut = match cut_outs.and_then(|masks| find_mask(masks, &s.id)) {
            Some(mask) => Some(refine_example(&film, s, k, point, size, Some(&mask))?),
            None => None,
        };
        Ok([Some(refine_example(&film, s, k, point, size, None)?), cut])
    })
}

/// How far, at most, [`refine_examples`] grows or shrinks a film's mask before
/// cutting it out: a share of the film's longer side.
pub const CUT_OUT_EDGE: f64 = 0.01;

/// `film` black outside the mask at `path`, the mask grown or shrunk by a share of the
/// film's longer side drawn from `rng` (up to [`CUT_OUT_EDGE`]).
fn cut_out_by(
    film: &GrayImage,
    path: &Path,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<GrayImage> {
    use rand::Rng;
    let (w, h) = (film.width(), film.height());
    let mask = Mask::load_png(path)?.resized(w, h);
    let edge = rng.random_range(-CUT_OUT_EDGE..=CUT_OUT_EDGE) * w.max(h) as f64;
    let mask = if edge >= 0.0 {
        boneage_core::ops::dilate(&mask, edge as f32)
    } else {
        boneage_core::ops::erode(&mask, -edge as f32)
    };
    let mut cut = film.clone();
    for y in 0..h {
        for x in 0..w {
            if !mask.get(x, y) {
                cut.set(x, y, 0.0);
            }
        }
    }
    Ok(cut)
}

/// One example of [`refine_examples`] from sample `s`'s `film` and key points `k`:
/// the film's field, or, with `cut_out` (the path of its mask), the field of the film
/// cut out by that mask.
fn refine_example(
    film: &GrayImage,
    s: &Sample,
    k: &KeyPoints,
    point: Refined,
    size: usize,
    cut_out: Option<&Path>,
) -> Result<Example> {
    use rand::{Rng, SeedableRng};
    // The cut-out's draws come from another seed: its field differs from the film's.
    let seed = boneage_core::dataset::fnv1a(s.id.bytes()) ^ u64::from(cut_out.is_some());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let cut = cut_out
        .map(|path| cut_out_by(film, path, &mut rng))
        .transpose()?;
    let film = cut.as_ref().unwrap_or(film);
    let span = k.span();
    let (radius, dir) = (
        REFINE_JITTER * span * rng.random::<f64>().sqrt(),
        rng.random_range(0.0..std::f64::consts::TAU),
    );
    let truth = point.of(k);
    let centre = truth + Point::new(dir.cos(), dir.sin()) * radius;
    let turn = rng
        .random_range(-REFINE_JITTER_DEG..=REFINE_JITTER_DEG)
        .to_radians();
    let scale = rng.random_range(0.92..=1.08);
    let guess = KeyPoints {
        fingertip: k.capitate + (k.fingertip - k.capitate).rotated(turn) * scale,
        ..*k
    };
    let (pixels, to_film) = refine_input(film, &guess, centre, size);
    let q = to_film
        .inverse()
        .expect("a field is invertible")
        .apply(truth);
    Ok(Example {
        id: s.id.clone(),
        male: s.sex.is_male(),
        pixels,
        target: Target::Keypoints(to_unit(q, [size, size]).to_vec()),
    })
}

/// Mask examples (image and mask letterboxed to `[height, width]`) of the samples
/// with a mask in `masks` (see [`find_mask`]), at the image's size or reduced (same aspect).
pub fn mask_examples(
    ds: &Dataset,
    samples: &[Sample],
    masks: &Path,
    [h, w]: [usize; 2],
    progress: &(dyn Fn() + Sync),
) -> Result<Examples> {
    prepare(samples, [h, w], progress, |s| {
        let Some(mpath) = find_mask(masks, &s.id) else {
            return Ok(None);
        };
        let r = read_radiograph(ds.image_path(s))?;
        let m = Mask::load_png(&mpath)?;
        // Masks may be stored at a reduced scale (the labels are at a quarter);
        // the aspect ratio must match.
        let aspect = |w: usize, h: usize| w as f64 / h as f64;
        let (ma, ia) = (
            aspect(m.width(), m.height()),
            aspect(r.pixels.width(), r.pixels.height()),
        );
        if (ma / ia - 1.0).abs() > 0.02 || m.width() > r.pixels.width() {
            return Err(Error::Table {
                path: mpath,
                detail: format!(
                    "mask is {}x{}, the image {}x{}",
                    m.width(),
                    m.height(),
                    r.pixels.width(),
                    r.pixels.height()
                ),
            });
        }
        let (img, _) = letterbox(&r.pixels, w, h);
        let (mimg, _) = letterbox(&m.to_image(), w, h);
        Ok(Some(Example {
            id: s.id.clone(),
            male: s.sex.is_male(),
            pixels: window_pixels(&img),
            target: Target::Mask(mimg.as_slice().iter().map(|&v| (v > 0.5) as u8).collect()),
        }))
    })
}
