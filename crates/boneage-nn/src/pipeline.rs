//! The paper's front end with trained weights: segment (U-Net) → normalize →
//! key points (from the mask's shape, checked by the key-point net) → register, with
//! the refusals that stop a film the pipeline has no confidence in.

use std::path::Path;

use boneage_core::geometry::Affine;
use boneage_core::geometry::Point;
use boneage_core::hand_geometry::GeometryParams;
use boneage_core::hand_template::{Fit, HandTemplate};
use boneage_core::image::Mask;
use boneage_core::ops::{Connectivity, fill_holes, largest_component, warp_affine, warp_mask};
use boneage_core::{GrayImage, NetKind};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use boneage_core::keypoints::KeyPoints;

use crate::inputs::{keypoints_from_input, letterbox, window_pixels};
use crate::keypoint_net::{KeypointNet, KeypointNetConfig, Refined};
use crate::unet::{UNet, UNetConfig};
use crate::weights::{self, WeightsError};

/// A trained U-Net with its input size.
#[derive(Clone)]
pub struct Segmenter {
    net: UNet,
    input: [usize; 2],
    device: Device,
    /// Whether a film that another program has already cut out
    /// ([`boneage_core::ops::cut_out`]) is taken as its own mask instead of the
    /// U-Net's: the U-Net, trained on films as filmed, outlines only the bones of a
    /// hand on exact black. Off as loaded; on in the reader that reads a refused
    /// cut-out again ([`Pipeline::cut_outs`]).
    pub cut_outs: bool,
    /// The power the film's values are raised to before the U-Net's window and
    /// outline ([`GrayImage::raised`]), if any: [`FAINT_TISSUE_GAMMA`] brings up the faint
    /// soft tissue of a dark film, round whose bones alone the U-Net draws the
    /// outline otherwise. `None` as loaded; set in the reader that reads a refused
    /// film again so ([`Pipeline::faint_tissue`]).
    pub gamma: Option<f32>,
    /// Which loaded U-Net this is (its copies share it): the key of its outlines in
    /// [`ReadingMemo`].
    id: usize,
}

/// What the networks answered while [`Pipeline::run`] reads one film, by network and
/// exact input: the readings of a film the first look refuses (the second reader,
/// the framed, forearm and faint-tissue readings, each through every view) give the
/// same network the same input again and again — the U-Net 28 to 42 times on four
/// films refused on 2026-12-07, for 2 to 13 distinct inputs; the heat-map locator 6 to
/// 14 times for 2 to 9. A network's answer is a function of its input, so an answer
/// recalled is the answer it would give again: the front end's answers and refusals
/// are unchanged. Kept on the reading thread, only while a [`Pipeline::run`] is under
/// way, and emptied after it.
struct ReadingMemo;

/// One answer kept: the network's number ([`NETS`]), its input, its answer.
type KeptAnswer = (usize, Vec<u8>, Box<dyn std::any::Any>);

thread_local! {
    static ANSWERS: std::cell::RefCell<Option<Vec<KeptAnswer>>> =
        const { std::cell::RefCell::new(None) };
}

/// Where [`ReadingMemo::begin`] started the memo: it ends it when dropped.
struct ReadingMemoGuard {
    started: bool,
}

impl ReadingMemo {
    /// Starts keeping answers on this thread, unless a reading already does.
    fn begin() -> ReadingMemoGuard {
        let started = ANSWERS.with_borrow_mut(|m| {
            let idle = m.is_none();
            if idle {
                *m = Some(Vec::new());
            }
            idle
        });
        ReadingMemoGuard { started }
    }

    /// Network `net`'s answer to `input`: recalled where given before during this
    /// reading, else computed by `answer` (and kept while a reading is under way).
    /// No borrow of the memo is held while `answer` runs.
    fn recall<T: Clone + 'static>(net: usize, input: &[u8], answer: impl FnOnce() -> T) -> T {
        let kept = ANSWERS.with_borrow(|m| {
            m.as_ref()?
                .iter()
                .find(|(n, i, _)| *n == net && i.as_slice() == input)
                .and_then(|(_, _, a)| a.downcast_ref::<T>().cloned())
        });
        if let Some(a) = kept {
            return a;
        }
        let a = answer();
        ANSWERS.with_borrow_mut(|m| {
            if let Some(m) = m.as_mut() {
                m.push((net, input.to_vec(), Box::new(a.clone())));
            }
        });
        a
    }
}

impl Drop for ReadingMemoGuard {
    fn drop(&mut self) {
        if self.started {
            ANSWERS.with_borrow_mut(|m| *m = None);
        }
    }
}

/// Numbers each network loaded (the U-Net's [`Segmenter::id`], the locators' and
/// refining nets' `id`): the key of its answers in [`ReadingMemo`].
static NETS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The next network's number ([`NETS`]).
fn next_net() -> usize {
    NETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The power [`Segmenter::gamma`] raises the film's values to, before the U-Net's
/// window, where a refused dark film is read again with its faint soft tissue brought
/// up ([`Pipeline::read_faint_tissue`]).
/// Chosen by looking at the U-Net's outlines of the 61 films refused on 2026-12-06
/// (the labelled films of `raw` and `extra`) raised to 1, 0.5 and 0.3: at 0.5 the
/// dark films whose soft tissue is faint are outlined whole rather than round their
/// bones; 0.3 spoils more outlines than it mends.
pub const FAINT_TISSUE_GAMMA: f32 = 0.5;

/// A film is dark, and read again with its faint soft tissue brought up where refused
/// ([`Pipeline::read_faint_tissue`]), when at least half of its pixels lie under this
/// value (of `[0, 1]`) and not all of them (a film dark all over holds no bone). Raising the values brings a dark film's soft tissue up and
/// washes a grey film out: on the 61 films refused on 2026-12-06 the reading answered
/// five dark films right (medians 0.00–0.09) and two grey ones wrongly (0.15 and
/// 0.34), which set this limit.
pub const DARK_FILM_LEVEL: f32 = 0.1;

/// Reads the manifest beside `weights_path`, checks that it holds `net` and parses
/// its network config.
pub(crate) fn manifest_for<C: serde::de::DeserializeOwned>(
    weights_path: &Path,
    net: NetKind,
) -> Result<(weights::Manifest, C), WeightsError> {
    let manifest = weights::read_manifest(weights_path)?;
    if manifest.net != net {
        return Err(WeightsError::Mismatch {
            path: weights::manifest_path(weights_path),
            found: manifest.net.describe().to_string(),
            expected: format!("{} ({net})", net.describe()),
        });
    }
    let config =
        serde_json::from_value(manifest.config.clone()).map_err(|e| WeightsError::Manifest {
            path: weights::manifest_path(weights_path),
            detail: format!("not {} config: {e}", net.describe()),
        })?;
    Ok((manifest, config))
}

/// The network input of a radiograph as 8-bit pixels: letterboxed to `[h, w]`, its
/// values raised to `gamma` if given ([`GrayImage::raised`]), windowed; with the
/// image → input map. [`pixels_tensor`] scales them to `[−1, 1]`.
fn input_pixels(img: &GrayImage, [h, w]: [usize; 2], gamma: Option<f32>) -> (Vec<u8>, Affine) {
    let (small, map) = letterbox(img, w, h);
    let small = match gamma {
        Some(gamma) => small.raised(gamma),
        None => small,
    };
    (window_pixels(&small), map)
}

/// One network input of `[h, w]` 8-bit pixels, scaled to `[−1, 1]`.
pub(crate) fn pixels_tensor(pixels: &[u8], [h, w]: [usize; 2], device: &Device) -> Tensor<4> {
    let x: Vec<f32> = pixels.iter().map(|&p| p as f32 / 127.5 - 1.0).collect();
    Tensor::<1>::from_floats(x.as_slice(), device).reshape([1, 1, h, w])
}

/// A network's output as floats, row-major.
pub(crate) fn floats<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32 data")
}

/// A trained key-point net with its input size.
#[derive(Clone)]
pub struct Locator {
    net: KeypointNet,
    input: [usize; 2],
    device: Device,
    /// Which loaded net this is (its copies share it), for [`ReadingMemo`].
    id: usize,
}

impl Locator {
    /// Loads `weights` (with its manifest beside it), which must hold a key-point
    /// net, onto `device`.
    pub fn load(weights_path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let (manifest, config): (_, KeypointNetConfig) =
            manifest_for(weights_path, NetKind::Keypoints)?;
        if config.refines.is_some() {
            return Err(points_mismatch(weights_path, config.refines, None));
        }
        let net = weights::load(config.init(device), weights_path, &manifest)?.valid();
        Ok(Self {
            net,
            input: manifest.input,
            device: device.clone(),
            id: next_net(),
        })
    }

    /// The three key points of a radiograph (pixels in `[0, 1]`), in its own pixels.
    pub fn locate(&self, img: &GrayImage) -> KeyPoints {
        let (pixels, map) = input_pixels(img, self.input, None);
        let t = ReadingMemo::recall(self.id, &pixels, || {
            let out = self
                .net
                .points(pixels_tensor(&pixels, self.input, &self.device));
            let mut t = [0f32; 6];
            t.copy_from_slice(&out[..6]);
            t
        });
        keypoints_from_input(&t, &map, self.input)
    }
}

fn points_mismatch(
    weights_path: &Path,
    found: Option<Refined>,
    expected: Option<Refined>,
) -> WeightsError {
    let what = |r: Option<Refined>| match r {
        Some(r) => format!("the {} net (one point)", r.code()),
        None => "the key-point net (three points)".to_string(),
    };
    WeightsError::Mismatch {
        path: weights::manifest_path(weights_path),
        found: what(found),
        expected: what(expected),
    }
}

/// A refining net: finds one key point (the capitate or the thumb tip) from the image
/// of a field around a first guess ([`crate::inputs::refine_input`]). The mask's
/// shape places the capitate by proportion only (on the blind films it missed by
/// 5–9 % of the hand on one answer in seven) and the thumb tip where the mask's
/// outline ends.
#[derive(Clone)]
pub struct RefineNet {
    net: KeypointNet,
    size: usize,
    /// The point it finds.
    pub point: Refined,
    device: Device,
    /// Which loaded net this is (its copies share it), for [`ReadingMemo`].
    id: usize,
}

/// How many times a refining net looks: the second time with its field centred on
/// its first answer.
pub const REFINE_PASSES: usize = 2;

impl RefineNet {
    /// Loads `weights` (with its manifest beside it), which must hold a net that
    /// refines `point` on a square input, onto `device`.
    pub fn load(
        weights_path: &Path,
        point: Refined,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let (manifest, config): (_, KeypointNetConfig) =
            manifest_for(weights_path, NetKind::Keypoints)?;
        if config.refines != Some(point) {
            return Err(points_mismatch(weights_path, config.refines, Some(point)));
        }
        let [h, w] = manifest.input;
        if h != w {
            return Err(WeightsError::Manifest {
                path: weights::manifest_path(weights_path),
                detail: format!("a refining net's input is square, not {h}x{w}"),
            });
        }
        let net = weights::load(config.init(device), weights_path, &manifest)?.valid();
        Ok(Self {
            net,
            size: h,
            point,
            device: device.clone(),
            id: next_net(),
        })
    }

    /// The point of a film (pixels in `[0, 1]`), in its own pixels, from the first
    /// guess `k` (whose axis and thumb side orient the field).
    pub fn refine(&self, img: &GrayImage, k: &KeyPoints) -> Point {
        (0..REFINE_PASSES).fold(self.point.of(k), |p, _| self.look(img, k, p))
    }

    /// One look: the point the net finds on the field centred on `centre`, oriented
    /// by `k`'s axis and thumb side.
    pub fn look(&self, img: &GrayImage, k: &KeyPoints, centre: Point) -> Point {
        self.looks(img, k, [centre])[0]
    }

    /// [`RefineNet::look`] from each of `centres`, in one batch.
    pub fn looks<const N: usize>(
        &self,
        img: &GrayImage,
        k: &KeyPoints,
        centres: [Point; N],
    ) -> [Point; N] {
        let fields =
            centres.map(|c| crate::inputs::refine_input(img, &self.point.with(k, c), c, self.size));
        // The batch as one input: a net's answer to one field may depend on the
        // batch it came in (the GEMMs split differently), so whole batches are kept.
        let input: Vec<u8> = fields.iter().flat_map(|(p, _)| p.iter().copied()).collect();
        let t = ReadingMemo::recall(self.id, &input, || {
            let x = Tensor::cat(
                fields
                    .iter()
                    .map(|(pixels, _)| pixels_tensor(pixels, [self.size, self.size], &self.device))
                    .collect(),
                0,
            );
            floats(self.net.forward(x))
        });
        std::array::from_fn(|i| {
            let xy = [t[2 * i], t[2 * i + 1]];
            fields[i]
                .1
                .apply(crate::data::from_unit(xy, [self.size; 2]))
        })
    }
}

/// How far from its answer a refining net's looks are started to see whether it
/// settles ([`spread`]), in fingertip–capitate spans: inside the 7 % its training
/// fields were moved by ([`crate::inputs::REFINE_JITTER`]).
pub const SETTLE_START: f64 = 0.06;

/// How far apart, in fingertip–capitate spans, a small hand's answer on the field
/// its rough key points frame ([`Pipeline::small_hand_view`]) and its answer on the
/// field framed again around that answer may put any point: a right answer framed a
/// little differently stays where it is. Set before measuring.
pub const SMALL_HAND_SETTLE: f64 = 0.03;

/// The largest [`spread`] of the capitate net's answer that stands, in spans: 1.5
/// times the largest on the 100 held-out development films' answers (0.025; median
/// 0.015), set before the blind films were run with it. On the 1,145 labelled films
/// two answers lay beyond it (spreads 0.14 and 0.12), both with the capitate placed on
/// the third metacarpal's base (2693: 16 % of the hand from its reviewed capitate);
/// the next largest was 0.033.
pub const SETTLE_LIMIT: f64 = 0.037;

/// Whether a point found by a refining net is one it settles on: the largest distance
/// from `p` of what `looks` finds from four starts around it ([`SETTLE_START`] spans
/// along the hand's axis either way and across it either way), in spans of `k` (whose
/// point is `p`). Near 0 where the net finds the same place however its field is
/// framed; large where it is lost (a point found from one framing only).
pub fn spread(k: &KeyPoints, p: Point, looks: impl FnOnce([Point; 4]) -> [Point; 4]) -> f64 {
    let span = k.span().max(1.0);
    let along = (k.fingertip - k.capitate) * SETTLE_START;
    let across = Point::new(-along.y, along.x);
    looks([along, along * -1.0, across, across * -1.0].map(|d| p + d))
        .into_iter()
        .map(|q| q.dist(p) / span)
        .fold(0.0, f64::max)
}

impl Segmenter {
    /// Loads `weights` (with its manifest beside it), which must hold a U-Net, onto
    /// `device`.
    pub fn load(weights_path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let (manifest, config): (_, UNetConfig) = manifest_for(weights_path, NetKind::Unet)?;
        let net = weights::load(config.init(device), weights_path, &manifest)?.valid();
        Ok(Self {
            net,
            input: manifest.input,
            device: device.clone(),
            cut_outs: false,
            gamma: None,
            id: next_net(),
        })
    }

    /// The hand mask of a radiograph (pixels in `[0, 1]`) at its own size, post-processed
    /// as the paper does: the largest connected component, holes filled.
    pub fn segment(&self, img: &GrayImage) -> Mask {
        self.segment_parts(img).0
    }

    /// [`Segmenter::segment`], and the area of the second-largest part of the
    /// U-Net's mask (before the largest is kept) over the largest's: near 1 where
    /// the film shows two hands, 0 where the mask is in one part.
    pub fn segment_parts(&self, img: &GrayImage) -> (Mask, f64) {
        if self.cut_outs
            && let Some(hand) = boneage_core::ops::cut_out(img)
        {
            return (hand, 0.0);
        }
        let (m, map) = self.input_mask(img);
        (on_film(&m, &map, img), second_part(&m))
    }

    /// The U-Net's mask at its input's size, and the map from the image to it.
    fn input_mask(&self, img: &GrayImage) -> (Mask, Affine) {
        let [h, w] = self.input;
        let (pixels, map) = input_pixels(img, self.input, self.gamma);
        let m = ReadingMemo::recall(self.id, &pixels, || {
            let x = pixels_tensor(&pixels, self.input, &self.device);
            let prob = floats(sigmoid(self.net.forward(x)));
            Mask::from_vec(w, h, prob.iter().map(|&p| (p > 0.5) as u8).collect())
                .expect("size matches")
        });
        (m, map)
    }
}

/// A mask back onto the radiograph `img`, its largest part with holes filled: `map`
/// takes the radiograph's pixels to the mask's (image -> network input for the
/// U-Net's own mask, image -> field or turned view for a mask read there), so the
/// warp (output -> input) is `map` itself.
fn on_film(m: &Mask, map: &Affine, img: &GrayImage) -> Mask {
    let full = warp_mask(m, map, img.width(), img.height());
    fill_holes(&largest_component(&full, Connectivity::Eight))
}

/// The area of a mask's second-largest part over its largest's (0 for a mask in one
/// part or none).
pub fn second_part(mask: &Mask) -> f64 {
    match boneage_core::ops::component_sizes(mask, Connectivity::Eight)[..] {
        [first, second, ..] => second as f64 / first as f64,
        _ => 0.0,
    }
}

/// The [`second_part`] of a film's U-Net mask from which the film is refused as
/// showing two hands ([`PreprocessError::TwoHands`]).
pub const TWO_HANDS: f64 = 0.5;

/// When the U-Net and the key-point net look again, closer, at a hand that takes a
/// small part of the film ([`Pipeline::look`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum LookCloser {
    /// Never: the whole film only (the shipped front end).
    #[default]
    Never,
    /// Whenever the hand is small on the film.
    Always,
    /// Only on a film the first look refuses, so that every answer of the first
    /// look stands; a film refused both ways keeps the first look's reason.
    Refused,
}

/// Whether a film the front end refuses as it is sent is read again turned by
/// quarter turns ([`Pipeline::run`]): a film sent sideways or upside down.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum TurnRefused {
    /// Never: the film as it is sent only.
    Never,
    /// A film refused as sent is read again turned by 90° each way, then by 180°;
    /// the first turn it passes every check on stands (its hand must then lean by
    /// less than [`UPRIGHT_BEYOND_DEG`]); a film refused every way keeps the first
    /// reason.
    Quarter,
    /// A film refused as sent is read again by the quarter turns that can bring the
    /// longer axis of its hand mask near upright (a half turn for an upright axis,
    /// one quarter either way for a level one), then, where that axis lies more than
    /// [`FIELD_MIN_LEAN_DEG`] from every quarter turn, on a field turned upright
    /// along it, fingers up one way and then the other (the field holds the hand at
    /// the film's scale, as [`upright_field`] makes it), where the hand must lean by
    /// less than [`FIELD_LEAN_DEG`]. The first answer stands. The shipped front
    /// end's way: every film answered as sent is answered as before.
    #[default]
    Axis,
}

/// How far a hand may lean on a field turned upright along its mask's axis
/// ([`Turn::Field`]) for the answer to stand: the middle finger leans from that
/// axis by about 10° on a hand with the thumb held out, by more on a wrong answer.
pub const FIELD_LEAN_DEG: f64 = 25.0;

/// How far the axis of a refused film's hand mask must lie from every quarter turn
/// for [`TurnRefused::Axis`] to look at it on a field turned upright along that axis:
/// on upright films refused as sent, such a field answered more of them wrongly
/// (blind films: 5 more wrong answers for 11 more correct, when tried on every film).
pub const FIELD_MIN_LEAN_DEG: f64 = 20.0;

/// `img` turned back by `q` quarter turns, its hand taken to lean by them clockwise
/// (anticlockwise, [`Point::rotated`]'s sense), and the film → turned map.
pub fn turn_back(img: &GrayImage, q: i32) -> (GrayImage, Affine) {
    boneage_core::ops::turn_onto_field(img, f64::from(q) * std::f64::consts::FRAC_PI_2)
}

/// How the front end looks at a film: as sent, turned by quarter turns, or on a
/// field turned upright around the hand.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Turn {
    /// The film as sent (turned by quarter turns only where the heat-map locator
    /// finds the hand leaning, [`UPRIGHT_BEYOND_DEG`]).
    AsSent,
    /// Turned back by this many quarter turns, the hand taken to lean by them
    /// clockwise.
    Quarter(i32),
    /// A field of this size, mapped onto the film by `to_film` ([`upright_field`]).
    Field {
        /// Field width in pixels.
        width: usize,
        /// Field height in pixels.
        height: usize,
        /// Field → film.
        to_film: Affine,
    },
    /// A field around the hand that the hand finder found, turned upright and framed
    /// as the development films frame their hands ([`found_field`]), mapped onto the
    /// film by `to_film`; the answer must agree with the finder's key points
    /// `found` (film pixels) within [`AGREEMENT_HEATMAP`].
    Found {
        /// Field width in pixels.
        width: usize,
        /// Field height in pixels.
        height: usize,
        /// Field → film.
        to_film: Affine,
        /// The finder's key points on the film.
        found: KeyPoints,
    },
}

/// The height of the hand finder's field ([`found_field`]) in fingertip–capitate
/// spans: the development films' span is a median 0.63 of the film's height (deciles
/// 0.55–0.71, 200 films of `data/labels/keypoints.csv`).
pub const FOUND_SPANS_HIGH: f64 = 1.6;

/// How far the centre of the hand finder's field lies from the middle of the
/// fingertip–capitate span towards the wrist, in spans (the development films: a
/// median 0.16, deciles 0.08–0.25).
pub const FOUND_DROP: f64 = 0.16;

/// The field around a hand whose key points are `k` (the hand finder's), turned
/// upright along its fingertip–capitate axis and framed as the development films
/// frame their hands ([`FOUND_SPANS_HIGH`], [`FOUND_DROP`]), at the U-Net's aspect
/// (`[h, w]`) and the film's scale: its size and the field → film map. `None` for a
/// span under 8 pixels.
pub fn found_field(k: &KeyPoints, [h, w]: [usize; 2]) -> Option<(usize, usize, Affine)> {
    let span = k.span();
    if !span.is_finite() || span < 8.0 {
        return None;
    }
    // Film → upright: turn anticlockwise by the lean (Point::rotated's sense).
    let lean = k.lean();
    let (f, c) = (k.fingertip.rotated(lean), k.capitate.rotated(lean));
    let fh = FOUND_SPANS_HIGH * span;
    let (fw, fh) = (
        (fh * w as f64 / h as f64).round() as usize,
        fh.round() as usize,
    );
    let centre =
        Point::new((f.x + c.x) / 2.0, (f.y + c.y) / 2.0 + FOUND_DROP * span).rotated(-lean);
    let half = Point::new(fw as f64 / 2.0, fh as f64 / 2.0).rotated(-lean);
    Some((fw, fh, Affine::similarity(1.0, -lean, false, centre - half)))
}

/// The field around `mask`'s hand turned upright, the hand taken to lean by `lean`
/// radians (clockwise as seen): every pixel of the hand inside, a margin of
/// [`ZOOM_MARGIN`] of its longer side, at the U-Net's aspect (`[h, w]`) and the film's
/// scale; its size and the field → film map. `None` for an empty mask.
pub fn upright_field(mask: &Mask, lean: f64, [h, w]: [usize; 2]) -> Option<(usize, usize, Affine)> {
    // Film → upright: turn anticlockwise by the lean (Point::rotated's sense).
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (y, row) in mask
        .as_slice()
        .chunks_exact(mask.width().max(1))
        .enumerate()
    {
        for (x, _) in row.iter().enumerate().filter(|&(_, &v)| v != 0) {
            let q = Point::new(x as f64 + 0.5, y as f64 + 0.5).rotated(lean);
            x0 = x0.min(q.x);
            x1 = x1.max(q.x);
            y0 = y0.min(q.y);
            y1 = y1.max(q.y);
        }
    }
    if x1 < x0 {
        return None;
    }
    let (fw, fh) = field_around(x1 - x0 + 1.0, y1 - y0 + 1.0, [h, w]);
    let (fw, fh) = (fw.round() as usize, fh.round() as usize);
    // The box's centre in upright coordinates, back on the film.
    let centre = Point::new((x0 + x1) / 2.0, (y0 + y1) / 2.0).rotated(-lean);
    let half = Point::new(fw as f64 / 2.0, fh as f64 / 2.0).rotated(-lean);
    Some((fw, fh, Affine::similarity(1.0, -lean, false, centre - half)))
}

/// How much larger the U-Net must see a hand on the field around it than on the
/// whole film for [`Pipeline::look`] to look again, closer.
pub const ZOOM_GAIN: f64 = 1.25;

/// The most closer looks the U-Net takes ([`Pipeline::look`]).
pub const ZOOM_LOOKS: usize = 2;

/// The part of the earlier mask that a closer look's mask must hold for it to stand.
pub const ZOOM_KEEP: f64 = 0.7;

/// The margin around the hand's bounding box on that field, as a fraction of the
/// box's longer side.
pub const ZOOM_MARGIN: f64 = 0.08;

/// The size of a field around a `bw` × `bh` box: a margin of [`ZOOM_MARGIN`] of its
/// longer side all round, widened or heightened to the U-Net's aspect (`[h, w]`).
fn field_around(bw: f64, bh: f64, [h, w]: [usize; 2]) -> (f64, f64) {
    let m = ZOOM_MARGIN * bw.max(bh);
    let aspect = w as f64 / h as f64;
    let (fw, fh) = (bw + 2.0 * m, bh + 2.0 * m);
    if fw / fh < aspect {
        (fh * aspect, fh)
    } else {
        (fw, fw / aspect)
    }
}

/// The field around `mask`'s hand at the U-Net's aspect (`[h, w]`): its size and the
/// field → image map (a translation), when the U-Net would see the hand on it at least
/// [`ZOOM_GAIN`] times larger than on the whole image.
pub fn hand_field(mask: &Mask, [h, w]: [usize; 2]) -> Option<(usize, usize, Affine)> {
    let [x0, y0, x1, y1] = mask.bounds()?;
    let (fw, fh) = field_around((x1 - x0) as f64, (y1 - y0) as f64, [h, w]);
    let (iw, ih) = (mask.width() as f64, mask.height() as f64);
    let gain = (w as f64 / fw).min(h as f64 / fh) / (w as f64 / iw).min(h as f64 / ih);
    if gain < ZOOM_GAIN {
        return None;
    }
    let (cx, cy) = ((x0 + x1) as f64 / 2.0, (y0 + y1) as f64 / 2.0);
    let (fw, fh) = (fw.round() as usize, fh.round() as usize);
    let origin = Point::new(
        (cx - fw as f64 / 2.0).round(),
        (cy - fh as f64 / 2.0).round(),
    );
    Some((fw, fh, Affine::similarity(1.0, 0.0, false, origin)))
}

/// What a radiographer can do about a film whose hand was found but whose key points
/// could not be placed with confidence: on the films refused so far, the hand's
/// outline merged fingers, took in a frame or the film's edge, or lost the thumb. Not
/// "crop the film to the hand and try again", as it said until 2026-12-06: the 68
/// refused films with blind marks, each cropped to its hand, were answered right 22
/// times, refused 39 times and answered wrongly 7 times (the README, "Cropping a
/// refused film").
pub const OUTLINE_ADVICE: &str = "the hand's outline is not clear enough to place the key \
     points (fingers touching, the thumb against the palm or cut off, a frame or the film's \
     edge along the hand, a small hand on a large film): read this film by eye; cropped to \
     the hand, films refused so were refused again or read wrongly more often than read \
     right (on a new film: fingers apart, thumb away from the palm)";

/// What to do about a film whose small hand could not be read with confidence.
pub const SMALL_HAND_ADVICE: &str = "crop the film to the hand, or film the hand on a \
     smaller cassette, and try again; or read this film by eye";

/// How a small hand's key points moved between two framings, in words.
fn moved(d: &Disagreement) -> String {
    match d {
        Disagreement::ThumbSide => "the thumb changes side".into(),
        Disagreement::Apart { point, fraction } => format!(
            "the {point} moves by {:.0} % of the hand's length",
            100.0 * fraction
        ),
        Disagreement::NotMiddleOfFive => "the fingertip changes finger".into(),
    }
}

/// What to do about a film on which no hand was found.
pub const NO_HAND_ADVICE: &str = "check that the film is a hand radiograph with the hand \
     taking a good part of it (crop a film on which the hand is small), and try again";

/// Why a radiograph could not be preprocessed with confidence.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The U-Net found no hand, or too little of one.
    #[error(
        "no hand found: the mask covers {percent:.1} % of the image (at least 5 % expected): \
         {NO_HAND_ADVICE}"
    )]
    NoHand {
        /// Mask area in percent of the image.
        percent: f64,
    },
    /// The U-Net's mask has a second part at least [`TWO_HANDS`] of the hand's size.
    #[error(
        "two hands on the film: the hand's outline has a second part {:.0} % of its \
         size; the age is read from one hand (the left): send a film of one hand, or crop \
         the film to it, and try again",
        100.0 * ratio
    )]
    TwoHands {
        /// The second part's area over the first's.
        ratio: f64,
    },
    /// A refining net finds its point far from where the key points put it.
    #[error(
        "the {point} net finds the {point} {:.0} % of the hand's length away from the first \
         estimate of it (the key points disagree): {OUTLINE_ADVICE}",
        100.0 * fraction
    )]
    RefinedFarOff {
        /// Which point.
        point: Refined,
        /// The distance over the fingertip–capitate span.
        fraction: f64,
    },
    /// A refining net does not settle on its point: looked for from around its answer,
    /// it finds other places ([`spread`] beyond [`SETTLE_LIMIT`]).
    #[error(
        "the {point} net does not settle on one place: looked for again from around its \
         answer, it finds places up to {:.0} % of the hand's length away (the {point} is not \
         clear on this film): {OUTLINE_ADVICE}",
        100.0 * spread
    )]
    Unsettled {
        /// Which point.
        point: Refined,
        /// The [`spread`], in fingertip–capitate spans.
        spread: f64,
    },
    /// A key point lies off the hand.
    #[error("the {point} key point lies {distance:.0} px outside the hand mask: {OUTLINE_ADVICE}")]
    KeypointOffHand {
        /// Which point.
        point: &'static str,
        /// Distance to the mask in image pixels.
        distance: f64,
    },
    /// The key points do not make a plausible hand.
    #[error("implausible key points: {0}: {OUTLINE_ADVICE}")]
    Implausible(String),
    /// The mask's geometry and the key-point net disagree.
    #[error("implausible key points: {0}: {OUTLINE_ADVICE}")]
    Disagree(Disagreement),
    /// The registered hand does not sit where registered hands sit
    /// ([`boneage_core::hand_template`]).
    #[error("wrong registration: {0}")]
    WrongRegistration(boneage_core::hand_template::WrongFit),
    /// The fingertip lies on the finger short of its end: beyond it the film stays
    /// nearly as bright as the finger ([`boneage_core::fingertip::falloff`] under
    /// [`FALLOFF_LIMIT`]).
    #[error(
        "the fingertip is placed short of the finger's end: beyond it the film falls only \
         {:.0} % of the way to the background (at least {:.0} % expected), so the hand's \
         outline may stop short of a faint fingertip: {OUTLINE_ADVICE}",
        100.0 * falloff,
        100.0 * FALLOFF_LIMIT
    )]
    ShortFingertip {
        /// The fall-off beyond the fingertip.
        falloff: f64,
    },
    /// Beyond the thumb tip the film does not fall to the background
    /// ([`boneage_core::fingertip::thumb_falloff`] under [`THUMB_FALLOFF_LIMIT`]): the
    /// tip lies short of the thumb's end or beyond it, on a field as grey as the soft
    /// tissue ([`Pipeline::thumb_falloff`]).
    #[error(
        "the thumb tip is not placed where the thumb ends: just beyond it the film falls \
         only {:.0} % of the way from the thumb to the background (at least {:.0} % \
         expected), so the tip may lie on the thumb short of its end or beyond it on a \
         field as grey as the soft tissue: {OUTLINE_ADVICE}",
        100.0 * falloff,
        100.0 * THUMB_FALLOFF_LIMIT
    )]
    ThumbNotAtEnd {
        /// The fall-off beyond the thumb tip.
        falloff: f64,
    },
    /// A small hand's key points move when the hand is framed again around them
    /// ([`Pipeline::small_hand_view`], [`SMALL_HAND_SETTLE`]).
    #[error(
        "the hand is small on the film and its key points move when it is framed again \
         around them ({}): {SMALL_HAND_ADVICE}",
        moved(.0)
    )]
    SmallHandMoves(Disagreement),
    /// Registration failed.
    #[error(transparent)]
    Register(#[from] boneage_core::Error),
    /// The film was refused for `why`, and the hand's outline runs off the film at
    /// more than one edge ([`EDGE_TOUCH`]): a hand cut off, or an outline that took in
    /// the film's edge.
    #[error(
        "the hand's outline runs off the film at its {edges} edges: part of the hand may \
         be outside the film (the fingertips, the thumb or a side of the hand), or the \
         outline took in a frame or the film's edge; put the whole hand on the film, \
         fingertips to wrist, and try again, or read this film by eye (refused \
         because {why})"
    )]
    RunsOff {
        /// The edges, in words ("top and bottom").
        edges: String,
        /// The refusal it explains.
        why: Box<PreprocessError>,
    },
    /// The film was refused for `why`; it lies on a larger canvas, and the hand read
    /// on that film alone spans fewer pixels than [`CANVAS_MIN_SPAN_PX`].
    #[error(
        "the film lies on a larger canvas (pixels {x0}–{x1} across, {y0}–{y1} down) and \
         its hand spans only {span:.0} px from the middle fingertip to the capitate, \
         under the {floor:.0} px needed to place the key points and read the bones; send \
         the film itself at its full resolution (not a small copy of it on a larger \
         image) and try again (refused first because {why})",
        x0 = at[0],
        y0 = at[1],
        x1 = at[2],
        y1 = at[3],
        floor = CANVAS_MIN_SPAN_PX
    )]
    SmallOnCanvas {
        /// Where the film lies on the image, `[x0, y0, x1, y1]` in pixels.
        at: [usize; 4],
        /// The hand's fingertip–capitate span there, in pixels.
        span: f64,
        /// The refusal of the image as sent.
        why: Box<PreprocessError>,
    },
    /// The film was refused for `why`, and its middle is clipped at the bone's end
    /// of the values ([`GrayImage::clipped_share`] of at least [`CLIPPED_LIMIT`]):
    /// the exposure or the window washed the bones out.
    #[error(
        "the film is washed out: {percent:.0} % of its middle is at the end of the values \
         where the bones' detail should be (the exposure or the window clipped it), so the \
         bones cannot be read; send the film with a window that keeps the bones' detail, \
         or the original DICOM, and try again (refused because {why})"
    )]
    WashedOut {
        /// The clipped share of the film's middle, in percent.
        percent: f64,
        /// The refusal it explains.
        why: Box<PreprocessError>,
    },
}

/// The share of a film's middle clipped at the bone's end of the values
/// ([`GrayImage::clipped_share`]) from which a refused film is explained as washed
/// out. Set on the 1,145 labelled films of `raw` and `extra`, whose largest share is
/// 0.9 % (the 99th percentile 0.4 %), and on the stress suite's over-exposed films:
/// 24 of the first 40 held-out films are washed out over 16 % of their middle or
/// more, the hand's palm and wrist gone to white, the others under 0.3 %.
pub const CLIPPED_LIMIT: f64 = 0.05;

/// The edges a hand's outline runs off, in words ("top and bottom"), from its
/// [`Mask::edge_contact`]; `None` unless there are two or more.
pub fn edges_run_off(contact: [f64; 4]) -> Option<String> {
    let edges: Vec<&str> = ["top", "right", "bottom", "left"]
        .into_iter()
        .zip(contact)
        .filter(|&(_, c)| c > EDGE_TOUCH)
        .map(|(name, _)| name)
        .collect();
    match edges.as_slice() {
        [] | [_] => None,
        [init @ .., last] => Some(format!("{} and {last}", init.join(", "))),
    }
}

/// The share of an edge of the film that the hand's outline must reach (within
/// [`EDGE_MARGIN`]) for the hand to count as running off the film there: a forearm
/// leaving the film does so at one edge; a hand running off at two is cut off, or
/// its outline took in a frame. Set on the U-Net's masks of the 1,145 labelled films:
/// with these two limits 4 of the 942 that `preprocess` answers reach two edges (two
/// of them with the fingertips cut off) and 5 of the 203 it refuses (the fingertips
/// and the thumb cut off, an outline that took in the film's frame, two hands).
pub const EDGE_TOUCH: f64 = 0.15;

/// How near an edge (a fraction of the film's height or width) the outline must come
/// to reach it: the U-Net's outline of a hand cut off by the film stops a few pixels
/// short of the edge.
pub const EDGE_MARGIN: f64 = 0.05;

/// One radiograph through the paper's preprocessing.
pub struct Preprocessed {
    /// Hand mask at the image's size.
    pub mask: Mask,
    /// Middle fingertip, thumb tip and capitate, image pixels.
    pub keypoints: KeyPoints,
    /// How the image maps onto the canvas.
    pub registration: boneage_core::registration::Registration,
    /// The masked, contrast-normalised hand on the canvas.
    pub registered: GrayImage,
    /// The masked, contrast-normalised hand on the film (before registration).
    pub normalized: GrayImage,
    /// The film's polarity was inverted (bone dark, the hand darker than the film
    /// around it) and was turned back before the hand was normalised.
    pub inverted: bool,
    /// Where the film lay on a larger canvas, `[x0, y0, x1, y1]` in image pixels
    /// ([`boneage_core::ops::film_on_canvas`]), where it was read there.
    pub on_canvas: Option<[usize; 4]>,
    /// The film had already been cut out by another program (exact black around the
    /// hand, [`boneage_core::ops::cut_out`]) and was read with its own outline as the
    /// hand's mask.
    pub cut_out: bool,
    /// The film was refused every other way and read again with the U-Net trained
    /// for framed films ([`Pipeline::framed`]), its answer standing where the second
    /// reader's locator agrees with it.
    pub framed: bool,
    /// The key points are the second reader's heat-map locator's alone: the hand's
    /// outline disagreed with the key-point nets and could not place them, and the
    /// answer stands on the nets' agreement and the check after registration
    /// ([`Pipeline::locator_alone`]).
    pub locator_alone: bool,
    /// The film was refused every other way and read again with the hand's outline
    /// read as a forearm that ends inside the image
    /// ([`GeometryParams::forearm_inside`]), its answer standing where the second
    /// reader's locator agrees with it and the outline's five digits vouch for it
    /// ([`Pipeline::forearm_inside`]).
    pub forearm_inside: bool,
    /// The film was refused every other way and read again with its faint soft
    /// tissue brought up for the U-Net ([`FAINT_TISSUE_GAMMA`]), its answer standing
    /// where the second reader's locator agrees with it and the outline's five digits
    /// vouch for it ([`Pipeline::faint_tissue`]).
    pub faint_tissue: bool,
    /// How the registered hand fits the mean registered hand (when the models
    /// have a template).
    pub fit: Option<Fit>,
    /// Seconds spent in each stage: segment, normalize, key points, register.
    pub seconds: [f64; 4],
}

impl Preprocessed {
    /// A reading of a film as sent: none of the later readings' marks (no canvas, cut
    /// out, framed U-Net, locator alone, forearm inside, faint tissue), no fit yet.
    fn read_as_sent(
        mask: Mask,
        keypoints: KeyPoints,
        registration: boneage_core::registration::Registration,
        registered: GrayImage,
        normalized: GrayImage,
        inverted: bool,
        seconds: [f64; 4],
    ) -> Preprocessed {
        Preprocessed {
            mask,
            keypoints,
            registration,
            registered,
            normalized,
            inverted,
            on_canvas: None,
            cut_out: false,
            framed: false,
            locator_alone: false,
            forearm_inside: false,
            faint_tissue: false,
            fit: None,
            seconds,
        }
    }

    /// The hand registered onto another canvas from the same key points: what the
    /// pipeline gives when it registers onto `canvas` (`boneage preprocess
    /// --canvas`), for bone-age models trained on crops of that canvas.
    pub fn registered_onto(
        &self,
        canvas: &boneage_core::registration::Canvas,
    ) -> Result<GrayImage, PreprocessError> {
        let registration = boneage_core::registration::register(&self.keypoints, canvas)?;
        Ok(registration.warp(&self.normalized, canvas))
    }

    /// This reading of an image enlarged or shrunk to its mask's size, carried back
    /// to the image's `[w, h]` pixels: key points scaled (pixel centres aligned, as
    /// [`boneage_core::ops::resize_bilinear`] aligns them), mask and normalised hand
    /// resized by area (the mask kept where it covers more than half a pixel), the
    /// registration made again from the scaled points (the registered hand and its
    /// fit are the same).
    fn scaled_to(
        self,
        [w, h]: [usize; 2],
        canvas: &boneage_core::registration::Canvas,
    ) -> Result<Self, PreprocessError> {
        let kx = w as f64 / self.mask.width() as f64;
        let ky = h as f64 / self.mask.height() as f64;
        let keypoints = self.keypoints.mapped(&Affine([kx, 0.0, 0.0, 0.0, ky, 0.0]));
        let resize = |img: &GrayImage| boneage_core::ops::resize_area(img, w, h);
        Ok(Preprocessed {
            registration: boneage_core::registration::register(&keypoints, canvas)?,
            mask: Mask::threshold(&resize(&self.mask.to_image()), 0.5),
            normalized: resize(&self.normalized),
            keypoints,
            ..self
        })
    }

    /// This reading of the piece `[x0, y0, x1, y1]` of an image `[w, h]` pixels, carried
    /// onto the image: key points moved, mask and normalised hand placed, the
    /// registration made again from the moved points (the registered hand and its
    /// fit are the same).
    fn placed(
        self,
        [x0, y0, x1, y1]: [usize; 4],
        [w, h]: [usize; 2],
        canvas: &boneage_core::registration::Canvas,
    ) -> Result<Self, PreprocessError> {
        let shift = Affine::similarity(1.0, 0.0, false, Point::new(x0 as f64, y0 as f64));
        let keypoints = self.keypoints.mapped(&shift);
        let mut mask = Mask::new(w, h);
        let mut normalized = GrayImage::new(w, h);
        for y in 0..(y1 - y0).min(self.mask.height()) {
            for x in 0..(x1 - x0).min(self.mask.width()) {
                mask.set(x0 + x, y0 + y, self.mask.get(x, y));
                normalized.set(x0 + x, y0 + y, self.normalized.get(x, y));
            }
        }
        Ok(Preprocessed {
            registration: boneage_core::registration::register(&keypoints, canvas)?,
            mask,
            keypoints,
            normalized,
            on_canvas: Some([x0, y0, x1, y1]),
            ..self
        })
    }
}

/// Where the pipeline's key points come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum KeypointSource {
    /// The hand mask's geometry ([`boneage_core::hand_geometry`]), checked against the
    /// key-point net: on the held-out films it registers more of them correctly than
    /// the net alone (see `models/README.md`).
    MaskGeometry,
    /// The key-point net alone (the paper's way).
    Net,
    /// The heat-map locator's points, each fingertip moved onto the nearest digit
    /// tip of the mask when one lies close ([`guided_keypoints`]): the net decides
    /// which finger and where the capitate is, the mask's skin line where a tip ends.
    /// Not the default: on the blind films its answers are wrong more often than the
    /// mask geometry's — with the locator trained on Gaussian maps (`--finer
    /// --heat-sigma 1`), the capitate net of 2026-12-04 and `--look-closer always`,
    /// 11 wrong of 193 against 3, though 124 right against 105, 8 of the 11 near
    /// misses (5–8 % of the hand off; see the README).
    Guided,
    /// The hand mask's geometry with no check by the key-point net (the check after
    /// registration still applies): to measure what the net's check buys.
    MaskAlone,
    /// The heat-map locator's points where two readings agree on each of them: the
    /// fingertip and the thumb tip each on a digit tip of the mask within [`SNAP`]
    /// (two different tips, [`agreeing_tips`]; the mask measured at the hand's
    /// scale, [`hand_scale_geometry`]), those tips the middle one of five digits
    /// apart and the thumb ([`middle_of_five`]), the capitate where the capitate net,
    /// started from it, stays within [`AGREEING_CAPITATE`]; and the fingertip where
    /// the film says the finger ends ([`FALLOFF_LIMIT`]), which a mask and a locator
    /// that both stop short of a faint fingertip cannot say. The second reader's
    /// source ([`Pipeline::second`]).
    ///
    /// [`middle_of_five`]: boneage_core::hand_geometry::middle_of_five
    Agreeing,
}

impl KeypointSource {
    /// How the pipeline takes its key points from this source, in words (for reports).
    pub fn describe(self) -> &'static str {
        match self {
            Self::MaskGeometry => {
                "key points from the mask's geometry (the thumb at the outline's other end where \
                 the key-point net puts it there), refused where the key-point net disagrees"
            }
            Self::Net => "key points from the key-point net alone",
            Self::MaskAlone => {
                "key points from the mask's geometry, not checked by the key-point net"
            }
            Self::Guided => {
                "key points from the heat-map locator, the fingertip and thumb moved onto a \
                 close digit tip of the mask"
            }
            Self::Agreeing => {
                "key points from the heat-map locator where the mask's digit tips (the \
                 middle of five, and the thumb) and the capitate net agree with them"
            }
        }
    }
}

/// How far (in the net's fingertip–capitate span) a digit tip of the mask may lie from
/// the net's fingertip or thumb tip to replace it.
pub const SNAP: f64 = 0.06;

/// The net's key points with the fingertip and thumb tip moved onto the nearest digit
/// tip of the mask's geometry when it lies within [`SNAP`] of the span; the capitate
/// is the net's.
pub fn guided_keypoints(
    net: &KeyPoints,
    geometry: Option<&boneage_core::hand_geometry::MaskGeometry>,
) -> KeyPoints {
    let span = net.span().max(1.0);
    let snap = |p: boneage_core::geometry::Point| {
        geometry
            .and_then(|g| g.nearest_tip(p))
            .map(|(_, t)| t)
            .filter(|t| t.dist(p) <= SNAP * span)
            .unwrap_or(p)
    };
    KeyPoints {
        fingertip: snap(net.fingertip),
        thumb: snap(net.thumb),
        capitate: net.capitate,
    }
}

/// How far (in fingertip–capitate spans) the capitate net may move the heat-map
/// locator's capitate for [`KeypointSource::Agreeing`]: the two must agree on it.
/// Set on the 100 held-out development films (`data/labels/holdout-keypoints.txt`):
/// 1.5 times the largest move among the agreeing reader's correct answers there
/// (0.062; 95 correct of 100, the next largest move 0.043).
pub const AGREEING_CAPITATE: f64 = 0.094;

impl KeypointSource {
    /// How far (in fingertip–capitate spans) a refining net may move `point` from
    /// this source's guess before the film is refused: [`REFINE_MOVE_LIMIT`], or
    /// [`AGREEING_CAPITATE`] for the agreeing reader's capitate, which the capitate
    /// net must confirm.
    pub fn move_limit(self, point: Refined) -> f64 {
        match (self, point) {
            (KeypointSource::Agreeing, Refined::Capitate) => AGREEING_CAPITATE,
            _ => REFINE_MOVE_LIMIT,
        }
    }
}

/// The net's fingertip and thumb tip moved onto the mask's digit tips nearest them,
/// each of which must lie within [`SNAP`] of the span, and not the same tip; the
/// capitate is the net's. An error names the point the mask does not vouch for.
pub fn agreeing_tips(
    net: &KeyPoints,
    geometry: &boneage_core::hand_geometry::MaskGeometry,
) -> Result<KeyPoints, Disagreement> {
    let span = net.span().max(1.0);
    let nearest = |point: &'static str, p: Point| {
        let (_, t) = geometry.nearest_tip(p).ok_or(Disagreement::Apart {
            point,
            fraction: f64::INFINITY,
        })?;
        let fraction = t.dist(p) / span;
        if fraction > SNAP {
            return Err(Disagreement::Apart { point, fraction });
        }
        Ok(t)
    };
    let fingertip = nearest("fingertip", net.fingertip)?;
    let thumb = nearest("thumb tip", net.thumb)?;
    if fingertip == thumb {
        return Err(Disagreement::Apart {
            point: "thumb tip",
            fraction: net.thumb.dist(thumb) / span,
        });
    }
    Ok(KeyPoints {
        fingertip,
        thumb,
        capitate: net.capitate,
    })
}

/// Segment → normalize → key points → register, with trained weights.
#[derive(Clone)]
pub struct Pipeline {
    segmenter: Segmenter,
    locator: Locator,
    /// The registration canvas.
    pub canvas: boneage_core::registration::Canvas,
    /// Where the key points come from.
    pub source: KeypointSource,
    /// The check after registration (`hand_template.json` beside the weights), or
    /// none; set it with [`Pipeline::set_template`], which sets the second reader's
    /// too.
    pub template: Option<HandTemplate>,
    /// The registration verifier (`verifier.safetensors` beside the weights, with the
    /// networks numbered beside it, `verifier-2.safetensors` on, their scores averaged),
    /// or none: part of the check after registration, after the template; set it with
    /// [`Pipeline::set_verifier`], which sets the second reader's too.
    pub verifier: Option<crate::verifier::Verifier>,
    /// The capitate check (`capitate_verifier.safetensors` beside the weights), or
    /// none: a second verifier that reads the registered carpus alone, after the
    /// first; set it with [`Pipeline::set_capitate_verifier`].
    pub capitate_verifier: Option<crate::verifier::Verifier>,
    /// The refining nets found beside the weights (`capitate.safetensors`,
    /// `thumb.safetensors`), in [`Refined::ALL`]'s order; each moves its point to
    /// where it finds it in the image.
    pub refiners: Vec<RefineNet>,
    /// When the U-Net and the key-point net look again, closer, at a hand that
    /// takes a small part of the film ([`Pipeline::look`]). Never by default:
    /// measured, looking closer always answers more of the stress suite's films
    /// correctly but, on the blind films, two more wrongly (README, "A closer look
    /// at small hands").
    pub look_closer: LookCloser,
    /// Whether a film refused as sent is read again turned ([`TurnRefused::Axis`]
    /// by default).
    pub turn_refused: TurnRefused,
    /// The hand finder (`finder.safetensors` beside the weights, a heat-map locator
    /// trained on turned, shrunk and re-exposed films), when there is one: a film
    /// refused every other way is read once more on the field around the hand it
    /// finds ([`Turn::Found`]).
    pub finder: Option<Locator>,
    /// A second reader for a film this one refuses, when the models folder holds a
    /// heat-map locator (`locator.safetensors`): the same U-Net, refining nets and
    /// check, with the locator's points where the mask and the capitate net agree
    /// with them ([`KeypointSource::Agreeing`]), looking closer at a small hand. A
    /// film refused by both keeps the first reader's reason. Shipped on 2026-12-05
    /// (README, "The second reader shipped"). Where it refuses too, its locator
    /// arbitrates the first reader's capitate ([`Pipeline::capitate_arbiter`]).
    pub second: Option<Box<Pipeline>>,
    /// Whether a film on which the U-Net finds too little hand
    /// ([`PreprocessError::NoHand`]) is read again on the field that frames what it
    /// found as the development films frame their hands
    /// ([`Pipeline::small_hand_view`]): a small hand on a large film. On by default
    /// (README, "A small hand on a large film").
    pub small_hand: bool,
    /// Whether a film refused that another program has already cut out (exact black
    /// around one hand-shaped region, [`boneage_core::ops::cut_out`]) is read again
    /// with that region as its mask ([`Segmenter::cut_outs`]), by this reader and the
    /// second alike, where the region's own five digits vouch for the answer. On by
    /// default since 2026-12-06, when it passed its rule on a fresh blind set (the
    /// stress suite's already segmented films 65 → 92 correct, 6 refused development
    /// films answered; README, "A film already cut out").
    pub cut_outs: bool,
    /// Whether a film that another program has already cut out is read with its own
    /// outline first ([`Pipeline::cut_outs`]' read), and only where that is refused
    /// as any other film: on exact black the U-Net's outline stops short of the skin,
    /// so the ordinary read can answer with a fingertip or a thumb tip inside the
    /// visible one. Only with [`Pipeline::cut_outs`]. On by default since
    /// 2026-12-07, when it passed its rule (the stress suite's already segmented films
    /// 92 / 3 / 5 → 94 / 3 / 3; README, "A cut-out read first").
    pub cut_out_first: bool,
    /// Whether a film that both readers refuse, the first because the hand's outline
    /// and the key-point net disagree ([`PreprocessError::Disagree`]: a frame, a dark
    /// film or touching fingers give an outline that is not a hand's), is read once
    /// more with the second reader's locator's points alone
    /// ([`Pipeline::read_by_locator`]). Only with a second reader and a registration
    /// verifier. Off by default: measured on the 1,145 labelled films, it answers 11
    /// more, 2 of them wrongly by their blind marks (README, "The locator alone where
    /// the outline fails").
    pub locator_alone: bool,
    /// The U-Net trained for framed films (`unet_framed.safetensors` beside the
    /// weights: `train segment --frames`), when there is one: a film refused every
    /// other way is read once more, every way [`Pipeline::read`] reads a film, with
    /// it in place of the U-Net for both readers ([`Pipeline::read_framed`]).
    pub framed: Option<Segmenter>,
    /// How this reader measures the hand's outline (key-point candidates from the
    /// mask's shape, [`boneage_core::hand_geometry`]).
    pub geometry: GeometryParams,
    /// Whether a film refused every other way is read once more, every way
    /// [`Pipeline::read`] reads a film, with both readers taking two pieces of the
    /// outline that point against each other for a forearm that ends inside the image
    /// and the digits beyond it ([`GeometryParams::forearm_inside`],
    /// [`Pipeline::read_forearm_inside`]). Only with a second reader. On by default
    /// since 2026-12-06, when it passed its rule (9 more of the 1,145 labelled films
    /// answered, each within 5 % of its blind marks or unmarked, no answer changed;
    /// README, "A forearm that ends inside the image").
    pub forearm_inside: bool,
    /// Whether a dark film ([`DARK_FILM_LEVEL`]) refused every other way is read once
    /// more, every way [`Pipeline::read`] reads a film, with both readers' U-Nets
    /// seeing the film's dark values brought up ([`FAINT_TISSUE_GAMMA`],
    /// [`Pipeline::read_faint_tissue`]): a dark film whose soft tissue is faint is
    /// outlined round its bones alone otherwise. Only with a second reader. On by
    /// default since 2026-12-06, when it passed its rule (5 more of the 1,145 labelled
    /// films answered, each within 5 % of its blind marks, no answer changed; README,
    /// "Faint soft tissue brought up").
    pub faint_tissue: bool,
    /// Refuse a reading whose thumb tip the film does not show as the thumb's end
    /// ([`boneage_core::fingertip::thumb_falloff`] under [`THUMB_FALLOFF_LIMIT`]):
    /// a tip placed on the background beyond the thumb, or on the thumb short of its
    /// end. Off by default (measured, README "The thumb tip where the film shows the
    /// thumb's end").
    pub thumb_falloff: bool,
}

/// What a reading does with a capitate its net moved beyond [`REFINE_MOVE_LIMIT`].
#[derive(Clone, Copy)]
enum Arbiter<'a> {
    /// Refuses the film, noting in the cell that it met one.
    Refuse(&'a std::cell::Cell<bool>),
    /// Lets it stand where the second reader's locator agrees
    /// ([`Pipeline::capitate_arbiter`]).
    Ask,
}

/// How far a refining net may move its point from the key points' guess, in
/// fingertip–capitate spans, before the film is refused: beyond it, the guess or
/// the net is wrong and nothing says which.
pub const REFINE_MOVE_LIMIT: f64 = 0.12;

/// The least fall-off beyond the second reader's fingertip
/// ([`boneage_core::fingertip::falloff`]) before the film is refused as
/// [`PreprocessError::ShortFingertip`]. Set on the reviewed fingertips of the 100
/// held-out development films under each of the stress suite's 21 transforms, the
/// reviewed masks carried along (2,100 readings, 207 with none: the film ends at the
/// tip): it refuses 7 of them (0.3 %), and 90 % of the same fingertips moved 5 % of
/// the hand towards the capitate, 90 % of those moved 9 %
/// (`cargo run --release -p boneage --example fingertip_falloff -- ../shared/data/rsna/raw data/labels`).
pub const FALLOFF_LIMIT: f64 = 0.5;

/// The least fall-off beyond the thumb tip
/// ([`boneage_core::fingertip::thumb_falloff`]) before a reading is refused as
/// [`PreprocessError::ThumbNotAtEnd`], where [`Pipeline::thumb_falloff`] is on. Set,
/// by a rule written before (the largest of 0.1–0.5 refusing at most 1 %), on the
/// blind thumb marks of the 100 held-out development films under each of the stress
/// suite's 21 transforms, the reviewed masks carried along (2,100 readings, 145 with
/// none: the film ends beyond the tip): it refuses 16 of them (0.8 %: 12 on the
/// shrunk films' canvases, where the small film's bright edge lies just beyond the
/// thumb, and 4 over-exposed), and 87 % of the same thumb tips moved 5 % of the hand
/// short of the thumb's end, 48 % of those moved 5 % beyond it and 94 % of those moved
/// 9 % beyond it (`cargo run --release -p boneage --example thumb_falloff --
/// ../shared/data/rsna/raw data/labels`).
pub const THUMB_FALLOFF_LIMIT: f64 = 0.5;

/// The band around the hand, as a share of the film's longer side, whose median the
/// hand's is compared with to tell a film stored with its polarity inverted
/// ([`boneage_core::ops::hand_lighter_by`]).
pub const POLARITY_BAND: f32 = 0.03;

/// Key points from a full-size mask's geometry, measured at a quarter of the size
/// (the scale the labels were made at).
pub fn geometry_keypoints(mask: &Mask) -> Option<KeyPoints> {
    mask_geometry(mask).map(|g| g.keypoints)
}

/// A full-size mask's geometry (key points, digit tips, palm), measured at a quarter
/// of the size, in the mask's pixels.
pub fn mask_geometry(mask: &Mask) -> Option<boneage_core::hand_geometry::MaskGeometry> {
    mask_geometry_with(mask, &GeometryParams::default())
}

/// [`mask_geometry`] measured with `params`.
pub fn mask_geometry_with(
    mask: &Mask,
    params: &GeometryParams,
) -> Option<boneage_core::hand_geometry::MaskGeometry> {
    let (w, h) = (mask.width(), mask.height());
    geometry_measured_at(mask, w.div_ceil(4), h.div_ceil(4), params)
}

/// The longer side of the hand's bounding box, in pixels of the mask its geometry is
/// measured on, that [`hand_scale_geometry`] measures a small hand at: about the
/// median of the development films at a quarter of their size (184 px over 60
/// labelled films, 5th–95th percentile 140–220).
pub const GEOMETRY_HAND_SIDE: f64 = 184.0;

/// A full-size mask's geometry as [`mask_geometry`], but a hand that takes a small
/// part of the film is measured at a finer scale than a quarter, so that its side
/// is [`GEOMETRY_HAND_SIDE`] (at most the mask's own scale): at a quarter, a hand
/// shrunk to 40 % on a larger film is some 70 px long, its fingers merge and its
/// digit tips lie a few per cent of the hand off. A hand of the development films'
/// size is measured at a quarter, as [`mask_geometry`] does.
pub fn hand_scale_geometry(mask: &Mask) -> Option<boneage_core::hand_geometry::MaskGeometry> {
    hand_scale_geometry_with(mask, &GeometryParams::default())
}

/// [`hand_scale_geometry`] measured with `params`.
pub fn hand_scale_geometry_with(
    mask: &Mask,
    params: &GeometryParams,
) -> Option<boneage_core::hand_geometry::MaskGeometry> {
    let (w, h) = (mask.width(), mask.height());
    let [x0, y0, x1, y1] = mask.bounds()?;
    let side = (x1 - x0).max(y1 - y0) as f64;
    let scale = (GEOMETRY_HAND_SIDE / side).clamp(0.25, 1.0);
    if scale <= 0.25 {
        return mask_geometry_with(mask, params);
    }
    let at = |n: usize| ((n as f64 * scale).round() as usize).clamp(1, n);
    geometry_measured_at(mask, at(w), at(h), params)
}

/// `mask`'s geometry measured on it resized to `sw`×`sh`, in the mask's pixels.
fn geometry_measured_at(
    mask: &Mask,
    sw: usize,
    sh: usize,
    params: &GeometryParams,
) -> Option<boneage_core::hand_geometry::MaskGeometry> {
    let (w, h) = (mask.width(), mask.height());
    let small = Mask::threshold(
        &boneage_core::ops::resize_area(&mask.to_image(), sw, sh),
        0.5,
    );
    boneage_core::hand_geometry::geometry_for_image(&small, w, h, params)
}

/// Whether an answer `p` that a last reading of the whole film `img` gave, its outline
/// measured with `geometry`, may stand: the outline's own five digits vouch for it (the
/// fingertip on the middle one, the thumb tip on the thumb, measured at the hand's
/// scale: [`middle_of_five`]), and [`located_and_large_enough`].
///
/// [`middle_of_five`]: boneage_core::hand_geometry::middle_of_five
fn vouched_and_located(
    second: &Pipeline,
    img: &GrayImage,
    p: &Preprocessed,
    geometry: &GeometryParams,
) -> bool {
    hand_scale_geometry_with(&p.mask, geometry)
        .is_some_and(|g| boneage_core::hand_geometry::middle_of_five(&g, &p.keypoints))
        && located_and_large_enough(second, img, &p.keypoints)
}

/// Whether an answer `k` that a reading of the whole film `img` gave after every
/// other reading refused it may stand: the second reader's heat-map locator puts
/// every point within [`AGREEMENT_HEATMAP`] of it, and, on a film lying on a larger
/// canvas, the hand spans at least [`CANVAS_MIN_SPAN_PX`] (a smaller hand there stays
/// refused, as the canvas read refuses it: too few pixels to place its key points).
fn located_and_large_enough(second: &Pipeline, img: &GrayImage, k: &KeyPoints) -> bool {
    disagreement(k, &second.locate(img), Agreement::all(AGREEMENT_HEATMAP)).is_none()
        && (k.span() >= CANVAS_MIN_SPAN_PX || boneage_core::ops::film_on_canvas(img).is_none())
}

/// How far apart, in the fingertip–capitate span, the mask geometry's and the VGG
/// regressor's points may lie (its own error reaches 30 % of the hand on films unlike
/// the development set).
pub const AGREEMENT_VGG: f64 = 0.5;

/// The same for the heat-map locator, which is far closer (blind films: 95th
/// percentile 8–26 % of the hand, median 3–6 %): tight enough that a fingertip on
/// the neighbouring finger or a thumb tip on another digit disagrees. Set on the
/// stress suite of the 100 held-out development films, where the half-span limit let
/// through 136 wrong registrations of turned films (see `models/README.md`).
pub const AGREEMENT_HEATMAP: f64 = 0.15;

/// The least fingertip–capitate span, in the film's pixels, of a hand read on a film
/// found lying on a larger canvas ([`Pipeline::run`]'s canvas read). Under it the key
/// points themselves go wrong: on the 100 held-out films of the stress suite shrunk
/// to 20 % on black (not a row of the suite; hands of 50–127 px) the canvas read with
/// no floor answered 72 rightly and 11 wrongly, every wrong hand spanning 74–103 px
/// (the fingertip or the capitate 5–7 % of the hand off, both drawn in towards the
/// palm); with this floor, 24 rightly and none wrongly (measured 2026-12-07). It lies
/// under the line at which `boneage::resolution` flags a hand as low resolution at
/// every age (0.6 × 358 px, 215 px, the floor before that day), so a hand answered
/// between the two gets its age with that warning (a test there keeps the two
/// apart); a hand under it is refused, as too few pixels to place the key points.
pub const CANVAS_MIN_SPAN_PX: f64 = 105.0;

/// The longer side, in pixels, to which a film found lying on a larger canvas is
/// enlarged before it is read ([`Pipeline::run`]'s canvas read), where it is
/// shorter: a small copy of a film read at its own few pixels gives a mask too
/// coarse at the fingertip and the capitate, both drawn in towards the palm by a few
/// pixels (films shrunk to 20–30 % and rebuilt by hand, 2026-12-07). Measured on the
/// stress suite's three shrunk rows (100 held-out films; 1,000 and 1,500 tried, the
/// development films' longer sides being 409–1,024 px): 268 correct and 3 wrong read
/// as they are, 266 and 1 at 1,000 px, 270 and 1 at 1,500 (see the README, "A film
/// lying on a larger canvas").
pub const CANVAS_READ_PX: f64 = 1500.0;

/// What a piece of an image read as a film of its own gives
/// ([`Pipeline::read_on_canvas`]).
enum FilmAt {
    /// An answer that stands, carried back to the image.
    Answer(Box<Preprocessed>),
    /// A hand spanning this many pixels, under [`CANVAS_MIN_SPAN_PX`].
    Small(f64),
    /// Refused, or the second reader's locator disagrees.
    Refused,
}

/// A hand leaning by more than this many degrees from upright (as the heat-map
/// locator finds it) is turned by quarter turns until it leans less, before it is
/// segmented (see [`Pipeline::run_unchecked`]).
pub const UPRIGHT_BEYOND_DEG: f64 = 45.0;

/// How the mask's key points and the key-point net's disagree.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Disagreement {
    /// The thumb on different sides of the hand.
    ThumbSide,
    /// A point apart by `fraction` of the fingertip–capitate span.
    Apart {
        /// "fingertip", "thumb tip" or "capitate".
        point: &'static str,
        /// The distance over the span.
        fraction: f64,
    },
    /// The mask does not show five fingers apart with the fingertip on the middle one
    /// and the thumb tip on the thumb ([`middle_of_five`]): nothing but the net says
    /// which finger is the middle one.
    ///
    /// [`middle_of_five`]: boneage_core::hand_geometry::middle_of_five
    NotMiddleOfFive,
}

impl std::fmt::Display for Disagreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Disagreement::ThumbSide => write!(
                f,
                "the mask's shape and the key-point net put the thumb on different sides"
            ),
            Disagreement::Apart { point, fraction } => write!(
                f,
                "the mask's shape and the key-point net place the {point} {:.0} % of the hand's length apart",
                100.0 * fraction
            ),
            Disagreement::NotMiddleOfFive => write!(
                f,
                "the hand's outline does not show five fingers apart with the key-point net's \
                 fingertip on the middle one and its thumb tip on the thumb"
            ),
        }
    }
}

impl PreprocessError {
    /// The kind of refusal in a few words, for tables and sheets (the message says
    /// the rest).
    pub fn kind(&self) -> String {
        match self {
            PreprocessError::NoHand { .. } => "no hand found".into(),
            PreprocessError::TwoHands { .. } => "two hands".into(),
            PreprocessError::KeypointOffHand { point, .. } => format!("{point} off the hand"),
            PreprocessError::RefinedFarOff { point, .. } => format!("{point} net: far off"),
            PreprocessError::Unsettled { point, .. } => format!("{point} net: unsettled"),
            PreprocessError::Implausible(_) => "implausible key points".into(),
            PreprocessError::Disagree(Disagreement::ThumbSide) => "mask and net: thumb side".into(),
            PreprocessError::Disagree(Disagreement::NotMiddleOfFive) => {
                "mask and net: not the middle of five".into()
            }
            PreprocessError::Disagree(Disagreement::Apart { point, .. }) => {
                format!("mask and net: {point}")
            }
            PreprocessError::WrongRegistration(w) => format!("check: {}", w.kind()),
            PreprocessError::ShortFingertip { .. } => "fingertip short of the finger's end".into(),
            PreprocessError::ThumbNotAtEnd { .. } => "thumb tip not at the thumb's end".into(),
            PreprocessError::SmallHandMoves(_) => "small hand: points move".into(),
            PreprocessError::Register(_) => "registration failed".into(),
            PreprocessError::RunsOff { .. } => "hand runs off the film".into(),
            PreprocessError::SmallOnCanvas { .. } => "small film on a canvas".into(),
            PreprocessError::WashedOut { .. } => "washed out".into(),
        }
    }
}

/// How far apart two readings of a hand's key points may place each point, in
/// fingertip–capitate spans (`None`: the point is not compared).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Agreement {
    /// The middle fingertip.
    pub fingertip: Option<f64>,
    /// The thumb tip.
    pub thumb: Option<f64>,
    /// The capitate.
    pub capitate: Option<f64>,
}

impl Agreement {
    /// Every point within `limit`.
    pub const fn all(limit: f64) -> Self {
        Self {
            fingertip: Some(limit),
            thumb: Some(limit),
            capitate: Some(limit),
        }
    }

    /// The fingertip and capitate within `limit`, the thumb tip not compared.
    pub const fn without_thumb(limit: f64) -> Self {
        Self {
            thumb: None,
            ..Self::all(limit)
        }
    }
}

/// Why two sets of key points for one hand disagree, if they do: the thumb on
/// different sides, or a point apart by more than its `limits` times the
/// fingertip–capitate span.
pub fn disagreement(a: &KeyPoints, b: &KeyPoints, limits: Agreement) -> Option<Disagreement> {
    if a.thumb_on_right() != b.thumb_on_right() {
        return Some(Disagreement::ThumbSide);
    }
    let span = a.span().max(1.0);
    for (name, p, q, limit) in [
        ("fingertip", a.fingertip, b.fingertip, limits.fingertip),
        ("thumb tip", a.thumb, b.thumb, limits.thumb),
        ("capitate", a.capitate, b.capitate, limits.capitate),
    ] {
        let Some(limit) = limit else { continue };
        let fraction = p.dist(q) / span;
        if fraction > limit {
            return Some(Disagreement::Apart {
                point: name,
                fraction,
            });
        }
    }
    None
}

/// The mask geometry's key points where the net's `net` agree with them
/// ([`disagreement`] within `limits`); where only the thumb's side differs, the
/// geometry read with the thumb at the outline's other end (a thumb against the palm
/// or fingers merged hide which end it is), if that reading agrees in every point.
pub fn agreeing_geometry(
    geometry: &boneage_core::hand_geometry::MaskGeometry,
    net: &KeyPoints,
    limits: Agreement,
) -> Result<KeyPoints, Disagreement> {
    match disagreement(&geometry.keypoints, net, limits) {
        None => Ok(geometry.keypoints),
        Some(Disagreement::ThumbSide) => geometry
            .other_side
            .filter(|k| disagreement(k, net, limits).is_none())
            .ok_or(Disagreement::ThumbSide),
        Some(why) => Err(why),
    }
}

impl Pipeline {
    /// Loads `unet.safetensors` and `keypoints.safetensors` (with their manifests)
    /// from `dir` onto `device`, registering onto `canvas`, the refining nets
    /// (`capitate.safetensors`, `thumb.safetensors`) and the check after
    /// registration (`hand_template.png` and `.json`, `verifier.safetensors`,
    /// `capitate_verifier.safetensors`) when `dir` has them. A capitate check must read
    /// a part of the canvas (`boneage train verifier --capitate`): one that reads the
    /// whole canvas is refused, naming the file.
    pub fn load(
        dir: &Path,
        canvas: boneage_core::registration::Canvas,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let template =
            HandTemplate::load(dir).map_err(|e| WeightsError::Template(e.to_string()))?;
        let mut pipeline = Self::load_without_check(dir, canvas, device)?;
        pipeline.set_template(template);
        let verifier = dir.join("verifier.safetensors");
        if verifier.is_file() {
            pipeline.set_verifier(Some(crate::verifier::Verifier::load(&verifier, device)?));
        }
        let capitate = dir.join("capitate_verifier.safetensors");
        if capitate.is_file() {
            let check = crate::verifier::Verifier::load(&capitate, device)?;
            if check.crop().is_none() {
                return Err(WeightsError::Mismatch {
                    path: crate::weights::manifest_path(&capitate),
                    found: "a registration verifier (it reads the whole canvas)".into(),
                    expected: "a capitate check (`boneage train verifier --capitate`)".into(),
                });
            }
            pipeline.set_capitate_verifier(Some(check));
        }
        Ok(pipeline)
    }

    /// Scores registered carpi with `verifier` from now on (none: no capitate check),
    /// in this reader and in the second reader alike.
    pub fn set_capitate_verifier(&mut self, verifier: Option<crate::verifier::Verifier>) {
        if let Some(second) = self.second.as_mut() {
            second.set_capitate_verifier(verifier.clone());
        }
        self.capitate_verifier = verifier;
    }

    /// Scores registrations with `verifier` from now on (none: no verifier), in this
    /// reader and in the second reader alike.
    pub fn set_verifier(&mut self, verifier: Option<crate::verifier::Verifier>) {
        if let Some(second) = self.second.as_mut() {
            second.set_verifier(verifier.clone());
        }
        self.verifier = verifier;
    }

    /// Checks registrations against `template` from now on (none: no check), in this
    /// reader and in the second reader alike.
    pub fn set_template(&mut self, template: Option<HandTemplate>) {
        if let Some(second) = self.second.as_mut() {
            second.set_template(template.clone());
        }
        self.template = template;
    }

    /// [`Pipeline::load`] without the check after registration, whatever `dir` holds
    /// (to build a new template).
    pub fn load_without_check(
        dir: &Path,
        canvas: boneage_core::registration::Canvas,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let locator = Locator::load(&dir.join("keypoints.safetensors"), device)?;
        let finder_path = dir.join("finder.safetensors");
        let finder = if finder_path.is_file() {
            Some(Locator::load(&finder_path, device)?)
        } else {
            None
        };
        let mut refiners = Vec::new();
        for point in Refined::ALL {
            let path = dir.join(format!("{}.safetensors", point.code()));
            if path.is_file() {
                refiners.push(RefineNet::load(&path, point, device)?);
            }
        }
        let first = Self {
            segmenter: Segmenter::load(&dir.join("unet.safetensors"), device)?,
            source: KeypointSource::MaskGeometry,
            locator,
            canvas,
            template: None,
            verifier: None,
            capitate_verifier: None,
            refiners,
            look_closer: LookCloser::Never,
            turn_refused: TurnRefused::Axis,
            finder,
            second: None,
            small_hand: true,
            cut_outs: true,
            cut_out_first: true,
            locator_alone: false,
            framed: None,
            geometry: GeometryParams::default(),
            forearm_inside: true,
            faint_tissue: true,
            thumb_falloff: false,
        };
        let second_path = dir.join("locator.safetensors");
        if !second_path.is_file() {
            return Ok(first);
        }
        let locator = Locator::load(&second_path, device)?;
        if !locator.net.is_heatmap() {
            return Err(WeightsError::Mismatch {
                path: weights::manifest_path(&second_path),
                found: "the VGG regressor".into(),
                expected: "a heat-map locator (the second reader)".into(),
            });
        }
        let second = Self {
            segmenter: first.segmenter.clone(),
            locator,
            source: KeypointSource::Agreeing,
            look_closer: LookCloser::Always,
            refiners: first.refiners.clone(),
            template: None,
            verifier: None,
            capitate_verifier: None,
            finder: None,
            second: None,
            cut_outs: false,
            cut_out_first: false,
            ..first
        };
        let framed_path = dir.join("unet_framed.safetensors");
        let framed = if framed_path.is_file() {
            Some(Segmenter::load(&framed_path, device)?)
        } else {
            None
        };
        Ok(Self {
            second: Some(Box::new(second)),
            framed,
            ..first
        })
    }

    /// How the pipeline finds the key points, in words (for reports), and whether the
    /// registration verifier checks them.
    pub fn describe(&self) -> String {
        let mut d = self.describe_reading();
        if let Some(v) = &self.verifier {
            d.push_str("; every registration checked by the registration verifier too");
            if v.members() > 1 {
                d.push_str(&format!(
                    " ({} networks, their scores averaged)",
                    v.members()
                ));
            }
        }
        if self.capitate_verifier.is_some() {
            d.push_str("; every registered carpus checked by the capitate check");
        }
        if self.thumb_falloff {
            d.push_str(&format!(
                "; every reading refused where just beyond its thumb tip the film falls less \
                 than {:.0} % of the way to the background",
                100.0 * THUMB_FALLOFF_LIMIT
            ));
        }
        d
    }

    /// How this reader finds the key points, in words.
    fn describe_reading(&self) -> String {
        let mut d = self.source.describe().to_string();
        for r in &self.refiners {
            d.push_str(&format!(", the {} moved by its own net", r.point));
        }
        match self.look_closer {
            LookCloser::Never => {}
            LookCloser::Always => d.push_str(", looking closer at a small hand"),
            LookCloser::Refused => {
                d.push_str(", looking closer at a small hand on a film the first look refuses")
            }
        }
        match self.turn_refused {
            TurnRefused::Never => {}
            TurnRefused::Quarter => {
                d.push_str(", a film refused as sent read again by quarter turns")
            }
            TurnRefused::Axis => d.push_str(
                ", a film refused as sent read again turned upright along its hand's axis",
            ),
        }
        if self.small_hand {
            d.push_str(
                ", a film with too little hand read again on the field its rough key points frame",
            );
        }
        if self.finder.is_some() {
            d.push_str(", a film refused every way read again around the hand its finder finds");
        }
        if let Some(second) = &self.second {
            d.push_str(&format!(
                "; a film refused read again by a second reader: {}; a film both refuse \
                 read again by the first with a capitate its net moved far standing where \
                 the second reader's locator puts it too",
                second.describe_reading()
            ));
        }
        if self.reads_by_locator() {
            d.push_str(
                "; a film both refuse, the first for its outline disagreeing with the \
                 key-point net, read again with the second reader's locator's points alone, \
                 where the key-point net agrees and the fingertip lies where the finger ends",
            );
        }
        if self.cut_outs && self.cut_out_first {
            d.push_str(
                "; a film that another program had already cut out (exact black around one \
                 hand-shaped region) read first every way with that region as the hand's \
                 mask, where the region's five digits vouch for the answer, and as any other \
                 film where they do not",
            );
        } else if self.cut_outs {
            d.push_str(
                "; a film refused that another program had already cut out (exact black \
                 around one hand-shaped region) read again every way with that region as the \
                 hand's mask, where the region's five digits vouch for the answer",
            );
        }
        if self.second.is_some() {
            d.push_str(&format!(
                "; a film refused that lies on a larger canvas read again as that film alone \
                 (enlarged to {CANVAS_READ_PX:.0} px along its longer side where smaller, the \
                 answer carried back to its pixels), with a margin of the canvas around it and, \
                 where that is refused, its inside alone (clear of its own edge), where the \
                 second reader's locator agrees with the answer and the hand spans at least \
                 {CANVAS_MIN_SPAN_PX:.0} px"
            ));
        }
        if self.framed.is_some() && self.second.is_some() {
            d.push_str(
                "; a film refused every way read again with the U-Net trained for framed \
                 films, where the second reader's locator agrees with the answer",
            );
        }
        if self.forearm_inside && self.second.is_some() {
            d.push_str(
                "; a film refused every way read again with two pieces of the outline that \
                 point against each other taken for a forearm ending inside the image, where \
                 the second reader's locator agrees with the answer and the outline's five \
                 digits vouch for it",
            );
        }
        if self.faint_tissue && self.second.is_some() {
            d.push_str(
                "; a dark film refused every way read again with its dark values brought up \
                 for the U-Net (faint soft tissue), where the second reader's locator agrees with \
                 the answer and the outline's five digits vouch for it",
            );
        }
        d
    }

    /// The hand mask (see [`Segmenter::segment`]).
    pub fn segment(&self, img: &GrayImage) -> Mask {
        self.segmenter.segment(img)
    }

    /// The hand mask of `img` and, when the U-Net looked closer, the key-point net's
    /// points found on the same closer field (image pixels).
    ///
    /// Where the first mask's hand takes a small part of the film (a small child on a
    /// large cassette, a film placed on a larger field), the U-Net and the key-point
    /// net see it at a fraction of the scale they were trained on: fingers merge in the
    /// mask and the net's points wander. So the U-Net looks again at the field around
    /// the hand ([`hand_field`]), up to [`ZOOM_LOOKS`] times (each on the field
    /// around the latest mask, which the first closer look sharpens), and the net
    /// looks at the last field. A closer look stands only
    /// where it finds the same hand: at least [`ZOOM_KEEP`] of the earlier mask inside
    /// the new one. A film whose first mask has a second part at least [`TWO_HANDS`]
    /// of the hand's size is refused as showing two hands.
    fn look(
        &self,
        img: &GrayImage,
        closer: bool,
    ) -> Result<(Mask, Option<KeyPoints>), PreprocessError> {
        let (mut mask, second) = self.segmenter.segment_parts(img);
        if second >= TWO_HANDS {
            return Err(PreprocessError::TwoHands { ratio: second });
        }
        if !closer {
            return Ok((mask, None));
        }
        let mut last_field = None;
        for _ in 0..ZOOM_LOOKS {
            let Some((fw, fh, field_to_img)) = hand_field(&mask, self.segmenter.input) else {
                break;
            };
            let field = warp_affine(img, &field_to_img, fw, fh);
            let img_to_field = field_to_img.inverse().expect("a translation");
            let near = on_film(&self.segmenter.segment(&field), &img_to_field, img);
            let mut kept = mask.clone();
            kept.intersect(&near);
            if (kept.count() as f64) < ZOOM_KEEP * mask.count() as f64 {
                break;
            }
            mask = near;
            last_field = Some((field, field_to_img));
        }
        let net = last_field
            .map(|(field, field_to_img)| self.locator.locate(&field).mapped(&field_to_img));
        Ok((mask, net))
    }

    /// The key points (see [`Locator::locate`]).
    pub fn locate(&self, img: &GrayImage) -> KeyPoints {
        self.locator.locate(img)
    }

    /// Runs every stage, refusing results it has no confidence in, the check after
    /// registration last.
    pub fn run(&self, img: &GrayImage) -> Result<Preprocessed, PreprocessError> {
        let _memo = ReadingMemo::begin();
        let as_sent = if self.cut_out_first {
            self.read_as_cut_out(img).map_or_else(|| self.read(img), Ok)
        } else {
            self.read(img)
                .or_else(|first| self.read_as_cut_out(img).ok_or(first))
        };
        as_sent
            .or_else(|first| self.read_on_canvas(img, first))
            .or_else(|first| self.read_framed(img, first))
            .or_else(|first| self.read_forearm_inside(img, first))
            .or_else(|first| self.read_faint_tissue(img, first))
            .map_err(|why| self.explain(img, why))
    }

    /// A copy of this pipeline whose readers, this one and the second, outline the
    /// hand with their segmenter changed by `change`.
    fn outlining(&self, change: impl Fn(&mut Segmenter)) -> Pipeline {
        let mut reader = self.clone();
        change(&mut reader.segmenter);
        if let Some(second) = reader.second.as_mut() {
            change(&mut second.segmenter);
        }
        reader
    }

    /// A film refused every other way read once more, every way [`Pipeline::read`]
    /// reads a film, with the U-Net trained for framed films ([`Pipeline::framed`])
    /// in place of the U-Net for both readers: the film's edge beside the hand, a
    /// field of another grey around the film, flat and dark exposures, which the
    /// U-Net takes into the hand's outline or stops short of. The answer stands
    /// where the second reader's heat-map locator puts every point within
    /// [`AGREEMENT_HEATMAP`] of it, after every check an answer passes, and, on a film
    /// lying on a larger canvas, where the hand spans at least [`CANVAS_MIN_SPAN_PX`]
    /// (as the canvas read asks); otherwise, or without such a U-Net or a second
    /// reader, the refusal is `first`.
    fn read_framed(
        &self,
        img: &GrayImage,
        first: PreprocessError,
    ) -> Result<Preprocessed, PreprocessError> {
        let (Some(framed), Some(second)) = (self.framed.as_ref(), self.second.as_ref()) else {
            return Err(first);
        };
        let reader = self.outlining(|s| *s = framed.clone());
        let Ok(mut p) = reader.read(img) else {
            return Err(first);
        };
        if !located_and_large_enough(second, img, &p.keypoints) {
            return Err(first);
        }
        p.framed = true;
        Ok(p)
    }

    /// A film refused every other way read once more, every way [`Pipeline::read`]
    /// reads a film, both readers measuring the hand's outline with two pieces that
    /// point against each other taken for a forearm that ends inside the image
    /// ([`GeometryParams::forearm_inside`]): a film photographed or scanned on a
    /// larger field, whose forearm ends at the film's edge and whose fingers, joined
    /// at their bases, leave the mean direction of the pieces meaningless. The answer
    /// stands where the second reader's heat-map locator puts every point within
    /// [`AGREEMENT_HEATMAP`] of it, where the outline's own five digits vouch for it
    /// (the fingertip on the middle one, the thumb tip on the thumb; measured as
    /// [`hand_scale_geometry`] measures), after every check an answer passes, and, on
    /// a film lying on a larger canvas, where the hand spans at least
    /// [`CANVAS_MIN_SPAN_PX`]; otherwise, or where not asked for
    /// ([`Pipeline::forearm_inside`]) or without a second reader, the refusal is
    /// `first`.
    fn read_forearm_inside(
        &self,
        img: &GrayImage,
        first: PreprocessError,
    ) -> Result<Preprocessed, PreprocessError> {
        let Some(second) = self.second.as_ref().filter(|_| self.forearm_inside) else {
            return Err(first);
        };
        let inside = GeometryParams {
            forearm_inside: true,
            ..self.geometry
        };
        let mut reader = self.clone();
        reader.geometry = inside;
        if let Some(s) = reader.second.as_mut() {
            s.geometry = inside;
        }
        let mut p = reader.read_vouched(second, img, first)?;
        p.forearm_inside = true;
        Ok(p)
    }

    /// A dark film ([`DARK_FILM_LEVEL`]) refused every other way read once more, every
    /// way [`Pipeline::read`] reads a film, both readers' U-Nets seeing the film's dark
    /// values brought up ([`Segmenter::gamma`] at [`FAINT_TISSUE_GAMMA`]): a dark film
    /// whose soft tissue is faint beside bright bone, which the U-Net outlines round
    /// the bones alone (and whose window it may even take for an inverted film). The
    /// answer stands where the second reader's heat-map locator puts every point within
    /// [`AGREEMENT_HEATMAP`] of it, where the brightened outline's own five digits vouch
    /// for it (the fingertip on the middle one, the thumb tip on the thumb; measured as
    /// [`hand_scale_geometry`] measures), after every check an answer passes, and, on a
    /// film lying on a larger canvas, where the hand spans at least
    /// [`CANVAS_MIN_SPAN_PX`]; otherwise, or where not asked for
    /// ([`Pipeline::faint_tissue`]) or without a second reader, the refusal is `first`.
    fn read_faint_tissue(
        &self,
        img: &GrayImage,
        first: PreprocessError,
    ) -> Result<Preprocessed, PreprocessError> {
        let Some(second) = self.second.as_ref().filter(|_| self.faint_tissue) else {
            return Err(first);
        };
        // A dark film, with something brighter on it: a film dark all over (a blank
        // one) holds no bone to outline, and reading it again would only cost time.
        let dark = img.share_below(DARK_FILM_LEVEL);
        if !(0.5..1.0).contains(&dark) {
            return Err(first);
        }
        let reader = self.outlining(|s| s.gamma = Some(FAINT_TISSUE_GAMMA));
        let mut p = reader.read_vouched(second, img, first)?;
        p.faint_tissue = true;
        Ok(p)
    }

    /// This reader's reading of `img` ([`Pipeline::read`]) where it may stand as a last
    /// reading: the outline's own five digits vouch for it, measured with this reader's
    /// geometry, and `second`'s locator agrees ([`vouched_and_located`]); otherwise, or
    /// refused, the refusal is `first`.
    fn read_vouched(
        &self,
        second: &Pipeline,
        img: &GrayImage,
        first: PreprocessError,
    ) -> Result<Preprocessed, PreprocessError> {
        match self.read(img) {
            Ok(p) if vouched_and_located(second, img, &p, &self.geometry) => Ok(p),
            _ => Err(first),
        }
    }

    /// A film that another program has already cut out
    /// ([`boneage_core::ops::cut_out`]: exact black around one hand-shaped region)
    /// read every way [`Pipeline::read`] reads a film, each reader taking that region
    /// as the hand's mask ([`Segmenter::cut_outs`]): the U-Net outlines only the bones
    /// of such a hand. [`Pipeline::run`] makes this read first where
    /// [`Pipeline::cut_out_first`], else only on a film refused as sent. The answer
    /// passes the same checks as any other, and the outline's own five digits must
    /// vouch for it ([`middle_of_five`], measured as [`hand_scale_geometry`]
    /// measures): the outline is exact, and the verifier, trained on films as filmed,
    /// let a fingertip on the index finger of a cut-out through. `None` where the
    /// pipeline does not read cut-outs, where `img` is not one, or where the read is
    /// refused or the outline's five digits do not vouch for its answer.
    ///
    /// [`middle_of_five`]: boneage_core::hand_geometry::middle_of_five
    fn read_as_cut_out(&self, img: &GrayImage) -> Option<Preprocessed> {
        if !self.cut_outs {
            return None;
        }
        let outline = boneage_core::ops::cut_out(img)?;
        let reader = self.outlining(|s| s.cut_outs = true);
        let mut p = reader.read(img).ok()?;
        let vouched = hand_scale_geometry(&outline)
            .is_some_and(|g| boneage_core::hand_geometry::middle_of_five(&g, &p.keypoints));
        if !vouched {
            return None;
        }
        p.cut_out = true;
        Some(p)
    }

    /// A film refused as sent that lies on a larger canvas
    /// ([`boneage_core::ops::film_on_canvas`]: a small film on a large cassette, a
    /// film pasted onto a wider field) read again as that film alone, every way
    /// [`Pipeline::read`] reads a film: first with a margin of the canvas around it,
    /// then, where that is refused, its inside alone
    /// ([`boneage_core::ops::film_inside`]: neither the canvas nor the film's own
    /// bright edge in view). An answer stands where the second reader's heat-map
    /// locator, looking at the same piece, puts every point within
    /// [`AGREEMENT_HEATMAP`] of it, and where the hand spans at least
    /// [`CANVAS_MIN_SPAN_PX`]. A hand found spanning less is refused as such
    /// ([`PreprocessError::SmallOnCanvas`]); without a second reader, without such a
    /// film, where both pieces are refused or the locator disagrees, the refusal is
    /// `first`.
    fn read_on_canvas(
        &self,
        img: &GrayImage,
        first: PreprocessError,
    ) -> Result<Preprocessed, PreprocessError> {
        let Some(second) = self.second.as_ref() else {
            return Err(first);
        };
        let Some(outer) = boneage_core::ops::film_on_canvas(img) else {
            return Err(first);
        };
        for at in [outer, boneage_core::ops::film_inside(outer)] {
            match self.read_film_at(img, at, second) {
                FilmAt::Answer(p) => return Ok(*p),
                FilmAt::Small(span) => {
                    return Err(PreprocessError::SmallOnCanvas {
                        at,
                        span,
                        why: Box::new(first),
                    });
                }
                FilmAt::Refused => {}
            }
        }
        Err(first)
    }

    /// The piece `at` (`[x0, y0, x1, y1]`) of `img` read as a film of its own for
    /// [`Pipeline::read_on_canvas`], `second` the second reader.
    fn read_film_at(&self, img: &GrayImage, at: [usize; 4], second: &Pipeline) -> FilmAt {
        let [x0, y0, x1, y1] = at;
        let rect = boneage_core::registration::Rect {
            x: x0,
            y: y0,
            w: x1 - x0,
            h: y1 - y0,
        };
        let film = boneage_core::registration::crop(img, rect);
        let Ok(p) = self.read_enlarged(&film) else {
            return FilmAt::Refused;
        };
        let span = p.keypoints.span();
        if span < CANVAS_MIN_SPAN_PX {
            return FilmAt::Small(span);
        }
        let located = second.locate(&film);
        if disagreement(&p.keypoints, &located, Agreement::all(AGREEMENT_HEATMAP)).is_some() {
            return FilmAt::Refused;
        }
        match p.placed(at, [img.width(), img.height()], &self.canvas) {
            Ok(p) => FilmAt::Answer(Box::new(p)),
            Err(_) => FilmAt::Refused,
        }
    }

    /// `film` read every way [`Pipeline::read`] reads a film, enlarged first (bilinear,
    /// its shape kept) where its longer side is under [`CANVAS_READ_PX`], the answer
    /// carried back to the film's own pixels ([`Preprocessed::scaled_to`]).
    fn read_enlarged(&self, film: &GrayImage) -> Result<Preprocessed, PreprocessError> {
        let (w, h) = (film.width(), film.height());
        let long = w.max(h) as f64;
        if long >= CANVAS_READ_PX {
            return self.read(film);
        }
        let k = CANVAS_READ_PX / long;
        let size = |n: usize| ((n as f64 * k).round() as usize).max(1);
        let big = boneage_core::ops::resize_bilinear(film, size(w), size(h));
        self.read(&big)?.scaled_to([w, h], &self.canvas)
    }

    /// This reader's answer, else the second reader's ([`Pipeline::second`]), else
    /// this reader's again with its capitate arbitrated by the second reader's locator
    /// ([`Pipeline::capitate_arbiter`]); a film refused every way keeps this reader's
    /// first reason. Every answer of the two readers stands as it is. The third
    /// reading happens only where the first met a capitate moved too far: elsewhere it
    /// would refuse the film the same way again.
    fn read(&self, img: &GrayImage) -> Result<Preprocessed, PreprocessError> {
        let this = |arbiter: Arbiter| {
            self.turning(img, |view| {
                self.looking(|closer| self.run_looking(img, closer, view, arbiter))
            })
        };
        let far_off = std::cell::Cell::new(false);
        this(Arbiter::Refuse(&far_off)).or_else(|first| match &self.second {
            Some(second) => {
                let by_locator =
                    self.reads_by_locator() && matches!(first, PreprocessError::Disagree(_));
                second
                    .read(img)
                    .or_else(|why| {
                        if far_off.get() {
                            this(Arbiter::Ask)
                        } else {
                            Err(why)
                        }
                    })
                    .or_else(|why| {
                        if by_locator {
                            self.read_by_locator(img, second)
                        } else {
                            Err(why)
                        }
                    })
                    .map_err(|_| first)
            }
            None => Err(first),
        })
    }

    /// A film both readers refuse, the first because the hand's outline and the
    /// key-point net disagree, read as sent with the points of the second reader's
    /// heat-map locator alone, as `second` looks ([`KeypointSource::Net`]): the
    /// answer stands where this reader's key-point net agrees with it (the thumb on
    /// the same side, fingertip and capitate within [`AGREEMENT_VGG`]), the fingertip
    /// lies where the film says the finger ends ([`FALLOFF_LIMIT`]), and it passes
    /// every check an answer passes, the registration verifier's included (read only
    /// where [`Pipeline::reads_by_locator`]: without a verifier nothing else would
    /// vouch for the points).
    fn read_by_locator(
        &self,
        img: &GrayImage,
        second: &Pipeline,
    ) -> Result<Preprocessed, PreprocessError> {
        let mut reader = second.clone();
        reader.source = KeypointSource::Net;
        let far_off = std::cell::Cell::new(false);
        let mut p = reader.looking(|closer| {
            reader.run_looking(img, closer, Turn::AsSent, Arbiter::Refuse(&far_off))
        })?;
        let vgg = self.locator.locate(img);
        let limits = Agreement::without_thumb(AGREEMENT_VGG);
        if let Some(why) = disagreement(&p.keypoints, &vgg, limits) {
            return Err(PreprocessError::Disagree(why));
        }
        let turned_back = p.inverted.then(|| img.negative());
        if let Some(falloff) = boneage_core::fingertip::falloff(
            turned_back.as_ref().unwrap_or(img),
            &p.mask,
            &p.keypoints,
        ) && falloff < FALLOFF_LIMIT
        {
            return Err(PreprocessError::ShortFingertip { falloff });
        }
        p.locator_alone = true;
        Ok(p)
    }

    /// Whether a film both readers refuse for the outline is read by the locator
    /// alone ([`Pipeline::locator_alone`], with a second reader and a verifier).
    pub fn reads_by_locator(&self) -> bool {
        self.locator_alone && self.second.is_some() && self.verifier.is_some()
    }

    /// `run(view)` as [`Pipeline::turn_refused`] says: the film as sent, then, when
    /// it is refused for another reason than no hand found, the other views
    /// ([`Pipeline::views`]) in turn; the first answer stands, and a film refused
    /// every way keeps the first reason.
    fn turning(
        &self,
        img: &GrayImage,
        run: impl Fn(Turn) -> Result<Preprocessed, PreprocessError>,
    ) -> Result<Preprocessed, PreprocessError> {
        run(Turn::AsSent).or_else(|first| {
            let (turned, first) = if matches!(first, PreprocessError::NoHand { .. }) {
                // No hand found as sent: a turn shows the U-Net the same pixels; the
                // field that frames a small hand shows it larger, and where a hand is
                // found there, its refusal says more than "no hand".
                match self.read_small_hand(img, &run) {
                    Some(Ok(p)) => (Some(p), first),
                    Some(Err(why)) if !matches!(why, PreprocessError::NoHand { .. }) => (None, why),
                    _ => (None, first),
                }
            } else {
                (self.views(img).into_iter().find_map(|v| run(v).ok()), first)
            };
            // Last, the field around the hand the finder finds (a small hand on a
            // large film, a hand leaning, a film unlike the development set).
            turned
                .or_else(|| self.found_view(img).and_then(|v| run(v).ok()))
                .ok_or(first)
        })
    }

    /// `run` on the field that frames a small hand ([`Pipeline::small_hand_view`]),
    /// then on the field framed again around its answer, where the answers must agree
    /// within [`SMALL_HAND_SETTLE`]; `None` without such a field.
    fn read_small_hand(
        &self,
        img: &GrayImage,
        run: impl Fn(Turn) -> Result<Preprocessed, PreprocessError>,
    ) -> Option<Result<Preprocessed, PreprocessError>> {
        let view = self.small_hand_view(img)?;
        Some(run(view).and_then(|p| {
            let again = self.reframed(&p.keypoints).ok_or_else(|| {
                PreprocessError::Implausible("the hand is too small to frame".into())
            })?;
            let q = run(again)?;
            match disagreement(
                &q.keypoints,
                &p.keypoints,
                Agreement::all(SMALL_HAND_SETTLE),
            ) {
                None => Ok(p),
                Some(why) => Err(PreprocessError::SmallHandMoves(why)),
            }
        }))
    }

    /// The view of a film on which the U-Net's mask is too small to be a hand at the
    /// film's scale, where [`Pipeline::small_hand`] is set: the U-Net looks again at
    /// the field around its mask ([`hand_field`], where it sees the mask at least
    /// [`ZOOM_GAIN`] times larger), the mask's geometry there (else the key-point
    /// net) gives rough key points, and the view is the field those points frame as
    /// the development films frame their hands ([`found_field`], [`Turn::Found`]):
    /// on a tight field the key-point net and the mask's geometry miss the framing
    /// they know. The answer must agree with the rough points.
    pub fn small_hand_view(&self, img: &GrayImage) -> Option<Turn> {
        if !self.small_hand {
            return None;
        }
        let (fw, fh, field_to_img) = hand_field(&self.segment(img), self.segmenter.input)?;
        let field = warp_affine(img, &field_to_img, fw, fh);
        let rough = mask_geometry_with(&self.segment(&field), &self.geometry)
            .map(|g| g.keypoints)
            .unwrap_or_else(|| self.locator.locate(&field))
            .mapped(&field_to_img);
        self.reframed(&rough)
    }

    /// The field that the key points `k` frame as the development films frame their
    /// hands ([`found_field`]), the answer held to agree with them.
    fn reframed(&self, k: &KeyPoints) -> Option<Turn> {
        let (width, height, to_film) = found_field(k, self.segmenter.input)?;
        Some(Turn::Found {
            width,
            height,
            to_film,
            found: *k,
        })
    }

    /// The field around the hand that [`Pipeline::finder`] finds on `img`, if there
    /// is a finder and a hand of some size.
    pub fn found_view(&self, img: &GrayImage) -> Option<Turn> {
        let k = self.finder.as_ref()?.locate(img);
        let (width, height, to_film) = found_field(&k, self.segmenter.input)?;
        Some(Turn::Found {
            width,
            height,
            to_film,
            found: k,
        })
    }

    /// The views of a film refused as sent that [`Pipeline::turn_refused`] tries.
    pub fn views(&self, img: &GrayImage) -> Vec<Turn> {
        let quarters = [1, -1, 2].map(Turn::Quarter);
        match self.turn_refused {
            TurnRefused::Never => Vec::new(),
            TurnRefused::Quarter => quarters.to_vec(),
            TurnRefused::Axis => {
                let mask = self.segment(img);
                let Some((_, axis)) = mask.principal_axis() else {
                    return quarters.to_vec();
                };
                // The quarter turns that can bring the hand's axis near upright: a
                // half turn for an upright axis (the film upside down), one quarter
                // either way for a level one.
                let deg = axis.abs().to_degrees();
                let mut views = if deg > UPRIGHT_BEYOND_DEG {
                    vec![Turn::Quarter(1), Turn::Quarter(-1)]
                } else {
                    vec![Turn::Quarter(2)]
                };
                // A hand leaning from every quarter turn: a field turned upright along
                // its axis, either way up.
                if (deg - 90.0).abs().min(deg) > FIELD_MIN_LEAN_DEG {
                    for lean in [axis, axis + std::f64::consts::PI] {
                        if let Some((width, height, to_film)) =
                            upright_field(&mask, lean, self.segmenter.input)
                        {
                            views.push(Turn::Field {
                                width,
                                height,
                                to_film,
                            });
                        }
                    }
                }
                views
            }
        }
    }

    /// A refusal explained by what the film shows: washed out where its middle is
    /// clipped at the bone's end of the values ([`PreprocessError::WashedOut`]), else,
    /// for a hand whose key points could not be placed, a hand running off the film
    /// where its outline does so at two edges or more ([`PreprocessError::RunsOff`]);
    /// any other refusal as it is. Segments the film again: refusals only.
    fn explain(&self, img: &GrayImage, why: PreprocessError) -> PreprocessError {
        use PreprocessError as E;
        let mask = self.segment(img);
        let clipped = img.clipped_share(&mask);
        if clipped >= CLIPPED_LIMIT {
            return E::WashedOut {
                percent: 100.0 * clipped,
                why: Box::new(why),
            };
        }
        if !matches!(
            why,
            E::RefinedFarOff { .. }
                | E::Unsettled { .. }
                | E::KeypointOffHand { .. }
                | E::Implausible(_)
                | E::Disagree(_)
                | E::SmallHandMoves(_)
                | E::ThumbNotAtEnd { .. }
                | E::WrongRegistration(_)
        ) {
            return why;
        }
        match edges_run_off(mask.edge_contact(EDGE_MARGIN)) {
            Some(edges) => E::RunsOff {
                edges,
                why: Box::new(why),
            },
            None => why,
        }
    }

    /// `run(closer)` as [`Pipeline::look_closer`] says: without a closer look, with
    /// one, or with one only when the first is refused (a film refused both ways keeps
    /// the first reason).
    fn looking(
        &self,
        run: impl Fn(bool) -> Result<Preprocessed, PreprocessError>,
    ) -> Result<Preprocessed, PreprocessError> {
        match self.look_closer {
            LookCloser::Never => run(false),
            LookCloser::Always => run(true),
            LookCloser::Refused => run(false).or_else(|first| run(true).map_err(|_| first)),
        }
    }

    /// [`Pipeline::run`], looking closer at a small hand or not.
    fn run_looking(
        &self,
        img: &GrayImage,
        closer: bool,
        view: Turn,
        arbiter: Arbiter,
    ) -> Result<Preprocessed, PreprocessError> {
        let mut p = self.run_unchecked_looking(img, closer, view, arbiter)?;
        let t = std::time::Instant::now();
        p.fit = self.judge(&p).map_err(PreprocessError::WrongRegistration)?;
        p.seconds[3] += t.elapsed().as_secs_f64();
        Ok(p)
    }

    /// How far the hand's axis (capitate → fingertip, as the key-point net finds it)
    /// leans from upright, in radians, clockwise as seen; `None` for the VGG
    /// regressor, which was not trained on turned films.
    pub fn lean(&self, net: &KeyPoints) -> Option<f64> {
        if !self.locator.net.is_heatmap() {
            return None;
        }
        Some(net.lean())
    }

    /// The mask and the key points of a film; a film whose hand leans by more than
    /// [`UPRIGHT_BEYOND_DEG`] (sent sideways or upside down) is turned by the quarter
    /// turns that bring it nearest upright first, segmented and located there (the
    /// U-Net and the mask's geometry know hands within about 30° of upright), and both
    /// are carried back onto the film. Quarter turns keep the film's size and
    /// sharpness; turning by the lean itself would put the film on a larger field,
    /// where the hand is too small for the U-Net (measured on the stress suite: 30°
    /// films went from 72 to 17 correct of 100). Any other `view` than
    /// [`Turn::AsSent`] is one tried on a film refused as sent ([`TurnRefused`]): the
    /// film is looked at in that view, and its key points must then lean by less than
    /// [`UPRIGHT_BEYOND_DEG`] there. Seconds spent segmenting and finding key points.
    fn mask_and_keypoints(
        &self,
        img: &GrayImage,
        closer: bool,
        view: Turn,
    ) -> Result<(Mask, KeyPoints, [f64; 2]), PreprocessError> {
        use std::f64::consts::FRAC_PI_2;
        use std::time::Instant;
        // Too little of what the U-Net looked at (the film, or the view of it) is hand.
        let no_hand = |mask: &Mask| {
            let percent =
                100.0 * mask.count() as f64 / (mask.width() * mask.height()).max(1) as f64;
            if percent < 5.0 {
                Err(PreprocessError::NoHand { percent })
            } else {
                Ok(())
            }
        };
        let (view, net, s_net) = match view {
            Turn::AsSent => {
                let t = Instant::now();
                let net = self.locator.locate(img);
                let s_net = t.elapsed().as_secs_f64();
                let view = match self.lean(&net) {
                    Some(lean) if lean.abs().to_degrees() > UPRIGHT_BEYOND_DEG => {
                        Turn::Quarter((lean / FRAC_PI_2).round() as i32)
                    }
                    _ => Turn::AsSent,
                };
                (view, Some(net), s_net)
            }
            // A view tried on a refused film: no look at the film as it is.
            v => (v, None, 0.0),
        };
        let t = Instant::now();
        // The film as the U-Net and the net see it, film → view and view → film.
        let (upright, map, to_film) = match view {
            Turn::AsSent => {
                let (mask, near) = self.look(img, closer)?;
                let s_seg = t.elapsed().as_secs_f64();
                no_hand(&mask)?;
                let t = Instant::now();
                let net = near.or(net).expect("located on the film as sent");
                let k = self.choose_keypoints(&mask, net)?;
                return Ok((mask, k, [s_seg, s_net + t.elapsed().as_secs_f64()]));
            }
            Turn::Quarter(q) => {
                let (turned, map) = turn_back(img, q);
                (turned, map, map.inverse().expect("a turn is invertible"))
            }
            Turn::Field {
                width,
                height,
                to_film,
            }
            | Turn::Found {
                width,
                height,
                to_film,
                ..
            } => (
                warp_affine(img, &to_film, width, height),
                to_film.inverse().expect("a turn is invertible"),
                to_film,
            ),
        };
        let (mask_up, near) = self.look(&upright, closer)?;
        no_hand(&mask_up)?;
        // The mask back onto the film: film pixel p samples the upright mask at map(p).
        let mask = on_film(&mask_up, &map, img);
        let s_seg = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let net_up = near.unwrap_or_else(|| self.locator.locate(&upright));
        let k = self.choose_keypoints(&mask_up, net_up)?;
        if net.is_none() {
            // A view tried on a refused film stands only where it made the hand
            // upright: leaning further, another view (or none) would be nearer.
            let lean = k.lean().to_degrees();
            let limit = match view {
                Turn::Field { .. } | Turn::Found { .. } => FIELD_LEAN_DEG,
                _ => UPRIGHT_BEYOND_DEG,
            };
            if lean.abs() > limit {
                return Err(PreprocessError::Implausible(format!(
                    "turned upright, the hand still leans by {lean:.0}°"
                )));
            }
        }
        let k = k.mapped(&to_film);
        Ok((mask, k, [s_seg, s_net + t.elapsed().as_secs_f64()]))
    }

    /// [`Pipeline::run`] without the check after registration (to measure it).
    /// With [`LookCloser::Refused`], a film refused without the check is looked at
    /// again, closer.
    pub fn run_unchecked(&self, img: &GrayImage) -> Result<Preprocessed, PreprocessError> {
        let far_off = std::cell::Cell::new(false);
        self.turning(img, |view| {
            self.looking(|closer| {
                self.run_unchecked_looking(img, closer, view, Arbiter::Refuse(&far_off))
            })
        })
    }

    fn run_unchecked_looking(
        &self,
        img: &GrayImage,
        closer: bool,
        view: Turn,
        arbiter: Arbiter,
    ) -> Result<Preprocessed, PreprocessError> {
        use boneage_core::ops::{
            NormalizeConfig, distance_transform_sq, hand_lighter_by, normalize_hand,
        };
        use std::time::Instant;
        let (mask, k, [s_seg, s_kp]) = self.mask_and_keypoints(img, closer, view)?;
        let t = Instant::now();
        // A film stored with its polarity inverted (the hand darker than the film
        // around it) is read from here on turned back, bone bright: the refining
        // nets, the verifier and the age models know hands as filmed. The U-Net
        // and the locator place the hand and its points on inverted films as they
        // are (98 of the stress suite's 100 registered right before the verifier).
        let d2 = distance_transform_sq(&mask);
        let band = POLARITY_BAND * img.width().max(img.height()) as f32;
        let inverted = hand_lighter_by(img, &mask, &d2, band).is_some_and(|by| by < 0.0);
        let turned_back = inverted.then(|| img.negative());
        let img = turned_back.as_ref().unwrap_or(img);
        let s_norm = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let k = self.refine_arbitrated(img, &k, arbiter)?;
        // On the finder's field, the answer must be the hand the finder found, with
        // its thumb on the same side and every point within the locator's agreement.
        if let Turn::Found { found, .. } = view
            && let Some(why) = disagreement(&k, &found, Agreement::all(AGREEMENT_HEATMAP))
        {
            return Err(PreprocessError::Disagree(why));
        }
        // The second reader's fingertip must be where the film says the finger ends:
        // its mask and its locator can stop short of a faint fingertip together; so
        // can the U-Net and the mask's geometry on a small hand's field.
        if (self.source == KeypointSource::Agreeing || matches!(view, Turn::Found { .. }))
            && let Some(falloff) = boneage_core::fingertip::falloff(img, &mask, &k)
            && falloff < FALLOFF_LIMIT
        {
            return Err(PreprocessError::ShortFingertip { falloff });
        }
        // The thumb tip must be where the film says the thumb ends (a film whose edge
        // cuts the thumb gives no reading and is not judged here).
        if self.thumb_falloff
            && let Some(falloff) = boneage_core::fingertip::thumb_falloff(img, &mask, &k)
            && falloff < THUMB_FALLOFF_LIMIT
        {
            return Err(PreprocessError::ThumbNotAtEnd { falloff });
        }
        let s_kp = s_kp + t.elapsed().as_secs_f64();
        let t = Instant::now();
        let normalized = normalize_hand(img, &mask, &NormalizeConfig::default());
        let s_norm = s_norm + t.elapsed().as_secs_f64();
        // Each point must lie on the hand (a tenth of the image height of slack: the
        // tips sit on the skin line).
        let slack = 0.1 * img.height() as f64;
        for (point, p) in [
            ("fingertip", k.fingertip),
            ("thumb", k.thumb),
            ("capitate", k.capitate),
        ] {
            let (x, y) = (p.x.floor(), p.y.floor());
            let inside =
                x >= 0.0 && y >= 0.0 && (x as usize) < img.width() && (y as usize) < img.height();
            let distance = if inside {
                f64::from(d2[y as usize * img.width() + x as usize]).sqrt()
            } else {
                f64::INFINITY
            };
            if distance > slack {
                return Err(PreprocessError::KeypointOffHand { point, distance });
            }
        }
        // A thumb tip where no thumb tip lies (on the forearm, among the fingertips)
        // is another digit or no digit: the side the registration mirrors by may still
        // be right, but the key points are not.
        if let Some(why) = k.misplaced_thumb() {
            return Err(PreprocessError::Implausible(why));
        }
        // The fingertip–capitate span of a hand on a film: a fifth to the whole of
        // the image's longer side; a tenth on the field around the hand the finder
        // found (a small hand on a large film, framed by the finder).
        let span = k.span() / img.width().max(img.height()) as f64;
        let least = if matches!(view, Turn::Found { .. }) {
            0.1
        } else {
            0.2
        };
        if !(least..=1.0).contains(&span) {
            return Err(PreprocessError::Implausible(format!(
                "fingertip and capitate are {:.0} % of the image apart",
                100.0 * span
            )));
        }
        let t = Instant::now();
        let registration = boneage_core::registration::register(&k, &self.canvas)?;
        let registered = registration.warp(&normalized, &self.canvas);
        let s_reg = t.elapsed().as_secs_f64();
        Ok(Preprocessed::read_as_sent(
            mask,
            k,
            registration,
            registered,
            normalized,
            inverted,
            [s_seg, s_norm, s_kp, s_reg],
        ))
    }

    /// `k` with each point that has a refining net moved to where the net finds it
    /// (in [`Refined::ALL`]'s order); an error when a net moves its point by more
    /// than [`REFINE_MOVE_LIMIT`], or when the capitate net does not settle on its
    /// answer ([`spread`] beyond [`SETTLE_LIMIT`]). Only the capitate is asked to
    /// settle: nothing on the hand's outline anchors it, where the thumb tip is where
    /// the outline ends (and [`KeyPoints::misplaced_thumb`] checks where it lies).
    pub fn refine(&self, img: &GrayImage, k: &KeyPoints) -> Result<KeyPoints, PreprocessError> {
        self.refine_arbitrated(img, k, Arbiter::Refuse(&std::cell::Cell::new(false)))
    }

    /// [`Pipeline::refine`], a capitate moved too far refused or arbitrated as
    /// `arbiter` says.
    fn refine_arbitrated(
        &self,
        img: &GrayImage,
        k: &KeyPoints,
        arbiter: Arbiter,
    ) -> Result<KeyPoints, PreprocessError> {
        let mut k = *k;
        for net in &self.refiners {
            let p = net.refine(img, &k);
            let fraction = p.dist(net.point.of(&k)) / k.span().max(1.0);
            let limit = self.source.move_limit(net.point);
            if fraction > limit {
                let stands = net.point == Refined::Capitate
                    && match arbiter {
                        Arbiter::Refuse(seen) => {
                            seen.set(true);
                            false
                        }
                        Arbiter::Ask => self.capitate_arbiter(img, &k, p),
                    };
                if !stands {
                    return Err(PreprocessError::RefinedFarOff {
                        point: net.point,
                        fraction,
                    });
                }
            }
            k = net.point.with(&k, p);
            if net.point == Refined::Capitate {
                let spread = spread(&k, p, |starts| net.looks(img, &k, starts));
                if spread > SETTLE_LIMIT {
                    return Err(PreprocessError::Unsettled {
                        point: net.point,
                        spread,
                    });
                }
            }
        }
        Ok(k)
    }

    /// Whether the second reader's heat-map locator, looking at the whole film `img`,
    /// puts the capitate within [`AGREEING_CAPITATE`] of `p`, the capitate net's
    /// answer from the first guess `k`, which moved it beyond [`REFINE_MOVE_LIMIT`]:
    /// where the guess and the net disagree, a reading apart from both says which.
    /// Always false for a reader without a second one, or for the second reader (whose
    /// capitate is the locator's already).
    pub fn capitate_arbiter(&self, img: &GrayImage, k: &KeyPoints, p: Point) -> bool {
        self.source != KeypointSource::Agreeing
            && self.second.as_ref().is_some_and(|second| {
                second.locate(img).capitate.dist(p) / k.span().max(1.0) <= AGREEING_CAPITATE
            })
    }

    /// The key points of a film from its hand mask and the key-point net's points
    /// `net`, as [`Pipeline::source`] says; an error where the source has no
    /// confidence (no finger in the mask, or the mask's geometry and the net
    /// disagreeing).
    pub fn choose_keypoints(
        &self,
        mask: &Mask,
        net: KeyPoints,
    ) -> Result<KeyPoints, PreprocessError> {
        // The mask's geometry, measured as `measure` does; an error without a finger.
        let measured = |measure: fn(
            &Mask,
            &GeometryParams,
        )
            -> Option<boneage_core::hand_geometry::MaskGeometry>| {
            measure(mask, &self.geometry)
                .ok_or_else(|| PreprocessError::Implausible("the mask shows no finger".into()))
        };
        let geometry = || measured(mask_geometry_with);
        Ok(match self.source {
            KeypointSource::Net => net,
            KeypointSource::MaskGeometry => {
                let full = geometry()?;
                // The agreement limit by the net. The thumb tip is not compared: the
                // thumb net, the thumb-tip check and the check after registration
                // judge it (the heat-map locator's thumb tip refused good films).
                let limits = Agreement::without_thumb(if self.locator.net.is_heatmap() {
                    AGREEMENT_HEATMAP
                } else {
                    AGREEMENT_VGG
                });
                agreeing_geometry(&full, &net, limits).map_err(PreprocessError::Disagree)?
            }
            KeypointSource::Guided => {
                guided_keypoints(&net, mask_geometry_with(mask, &self.geometry).as_ref())
            }
            KeypointSource::MaskAlone => geometry()?.keypoints,
            KeypointSource::Agreeing => {
                let g = measured(hand_scale_geometry_with)?;
                let k = agreeing_tips(&net, &g).map_err(PreprocessError::Disagree)?;
                if !boneage_core::hand_geometry::middle_of_five(&g, &k) {
                    return Err(PreprocessError::Disagree(Disagreement::NotMiddleOfFive));
                }
                k
            }
        })
    }

    /// Why the verifiers refuse the registered canvas `registered` (the masked,
    /// contrast-normalised hand), if they do: the registration verifier first, then
    /// the capitate check; `None` where neither is loaded or both let it through.
    pub fn verify(&self, registered: &GrayImage) -> Option<boneage_core::hand_template::WrongFit> {
        use boneage_core::hand_template::WrongFit;
        let min = crate::verifier::VERIFIER_LIMIT;
        let whole = self.verifier.as_ref().and_then(|v| {
            let score = v.score(registered);
            (score < min).then_some(WrongFit::Unverified { score, min })
        });
        whole.or_else(|| {
            let score = self.capitate_verifier.as_ref()?.score(registered);
            (score < min).then_some(WrongFit::CapitateUnverified { score, min })
        })
    }

    /// The whole check after registration of an answer: the template's
    /// ([`Pipeline::check`]), then the verifier's ([`Pipeline::verify`]) where the
    /// template lets it through. The template's fit (none without a template), or
    /// why the answer is refused.
    pub fn judge(
        &self,
        p: &Preprocessed,
    ) -> Result<Option<Fit>, boneage_core::hand_template::WrongFit> {
        let fit = match self.check(&p.mask, &p.keypoints, &p.registration) {
            Some((_, Some(why))) => return Err(why),
            Some((fit, None)) => Some(fit),
            None => None,
        };
        match self.verify(&p.registered) {
            Some(why) => Err(why),
            None => Ok(fit),
        }
    }

    /// The check after registration of `mask` registered from `keypoints` by
    /// `registration`: how the registered hand fits the template and why it fails, if
    /// it does; `None` without a template. A hand that leans is let through (up to
    /// [`Limits::max_turn_deg_five_digits`]) where the mask's five digits vouch for the
    /// key points ([`middle_of_five`]).
    ///
    /// [`Limits::max_turn_deg_five_digits`]: boneage_core::hand_template::Limits::max_turn_deg_five_digits
    /// [`middle_of_five`]: boneage_core::hand_geometry::middle_of_five
    pub fn check(
        &self,
        mask: &Mask,
        keypoints: &KeyPoints,
        registration: &boneage_core::registration::Registration,
    ) -> Option<(Fit, Option<boneage_core::hand_template::WrongFit>)> {
        let template = self.template.as_ref()?;
        let fit = template.fit(&registration.warp_mask(mask, &self.canvas));
        let why = template.judge(&fit, || {
            mask_geometry_with(mask, &self.geometry)
                .is_some_and(|g| boneage_core::hand_geometry::middle_of_five(&g, keypoints))
        });
        Some((fit, why))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(w: usize, h: usize, [x0, y0, x1, y1]: [usize; 4]) -> Mask {
        let mut m = Mask::new(w, h);
        for y in y0..y1 {
            for x in x0..x1 {
                m.set(x, y, true);
            }
        }
        m
    }

    /// A reading of a film enlarged 2.5 times, carried back to the film: key points
    /// at the film's pixels (pixel centres aligned), the mask and the normalised hand
    /// at its size, the registration made from the scaled points.
    #[test]
    fn a_reading_of_an_enlarged_film_is_carried_back_to_its_pixels() {
        let canvas = boneage_core::registration::Canvas::CPU;
        let big = KeyPoints {
            fingertip: Point::new(400.0, 100.0),
            thumb: Point::new(600.0, 500.0),
            capitate: Point::new(380.0, 800.0),
        };
        let mut normalized = GrayImage::new(750, 1000);
        normalized.set(500, 500, 1.0);
        let p = Preprocessed::read_as_sent(
            rect(750, 1000, [100, 50, 650, 950]),
            big,
            boneage_core::registration::register(&big, &canvas).unwrap(),
            GrayImage::new(canvas.width, canvas.height),
            normalized,
            false,
            [0.0; 4],
        );
        let small = p.scaled_to([300, 400], &canvas).unwrap();
        let want = big.mapped(&Affine([0.4, 0.0, 0.0, 0.0, 0.4, 0.0]));
        assert_eq!(small.keypoints, want);
        assert_eq!(
            small.registration,
            boneage_core::registration::register(&want, &canvas).unwrap()
        );
        assert_eq!((small.mask.width(), small.mask.height()), (300, 400));
        assert_eq!(small.mask, rect(300, 400, [40, 20, 260, 380]));
        assert_eq!(
            (small.normalized.width(), small.normalized.height()),
            (300, 400)
        );
        // One bright pixel of the enlarged film, 6.25 film pixels' worth of it
        // averaged into the film pixel that holds it.
        assert!((small.normalized.get(200, 200) - 0.16).abs() < 1e-6);
        let sum: f32 = small.normalized.as_slice().iter().sum();
        assert!((sum - 0.16).abs() < 1e-6, "{sum}");
    }

    /// While a film is read, a network's answer to an input it has answered before is
    /// recalled, not computed again; another network or another input is computed;
    /// outside a reading nothing is kept.
    #[test]
    fn an_answer_is_recalled_only_while_a_film_is_read() {
        let drawn = std::cell::Cell::new(0);
        let outline = |net: usize, input: &[u8]| {
            ReadingMemo::recall(net, input, || {
                drawn.set(drawn.get() + 1);
                rect(4, 4, [0, 0, input[0] as usize, 2])
            })
        };
        outline(7, &[1, 2]);
        outline(7, &[1, 2]);
        assert_eq!(drawn.get(), 2, "outside a reading");
        {
            let _reading = ReadingMemo::begin();
            let first = outline(7, &[1, 2]);
            {
                // A reading inside the reading keeps the outer one's outlines.
                let _inner = ReadingMemo::begin();
                assert_eq!(outline(7, &[1, 2]).as_slice(), first.as_slice());
            }
            assert_eq!(drawn.get(), 3);
            outline(8, &[1, 2]);
            let other = outline(7, &[3, 2]);
            assert_eq!(drawn.get(), 5, "another U-Net, another input");
            assert_ne!(other.as_slice(), first.as_slice());
            outline(7, &[1, 2]);
            outline(7, &[3, 2]);
            assert_eq!(drawn.get(), 5, "both recalled");
        }
        outline(7, &[1, 2]);
        assert_eq!(drawn.get(), 6, "the reading over, its outlines are gone");
    }

    /// Where the net puts the thumb at the outline's other end, the geometry read that
    /// way answers if it agrees in every point; a reading that still disagrees, or a
    /// mask with one digit, is refused on the thumb's side.
    #[test]
    fn the_thumb_at_the_outlines_other_end_answers_only_where_the_net_agrees() {
        let p = |x, y| Point::new(x, y);
        let (right, left) = (
            KeyPoints {
                fingertip: p(100.0, 10.0),
                thumb: p(180.0, 120.0),
                capitate: p(100.0, 210.0),
            },
            KeyPoints {
                fingertip: p(100.0, 10.0),
                thumb: p(20.0, 120.0),
                capitate: p(95.0, 210.0),
            },
        );
        assert_ne!(right.thumb_on_right(), left.thumb_on_right());
        let geometry = |other_side| boneage_core::hand_geometry::MaskGeometry {
            keypoints: right,
            other_side,
            palm_centre: p(100.0, 150.0),
            palm_radius: 40.0,
            digits: 5,
            tips: vec![],
        };
        assert_eq!(
            agreeing_geometry(&geometry(Some(left)), &right, Agreement::without_thumb(0.1)),
            Ok(right)
        );
        assert_eq!(
            agreeing_geometry(&geometry(Some(left)), &left, Agreement::without_thumb(0.1)),
            Ok(left)
        );
        // The other reading's fingertip 30 % of the span from the net's.
        let far = KeyPoints {
            fingertip: p(160.0, 20.0),
            ..left
        };
        assert_eq!(
            agreeing_geometry(&geometry(Some(left)), &far, Agreement::without_thumb(0.1)),
            Err(Disagreement::ThumbSide)
        );
        assert_eq!(
            agreeing_geometry(&geometry(None), &left, Agreement::without_thumb(0.1)),
            Err(Disagreement::ThumbSide)
        );
    }

    /// The agreeing reader's fingertip and thumb tip stand only on digit tips of the
    /// mask near them, two different ones; its capitate is the net's.
    #[test]
    fn the_agreeing_reader_needs_a_digit_tip_under_each_tip() {
        let p = |x, y| Point::new(x, y);
        let net = KeyPoints {
            fingertip: p(100.0, 10.0),
            thumb: p(180.0, 120.0),
            capitate: p(100.0, 210.0),
        };
        let geometry = |tips: Vec<Point>| boneage_core::hand_geometry::MaskGeometry {
            keypoints: net,
            other_side: None,
            palm_centre: p(100.0, 150.0),
            palm_radius: 40.0,
            digits: tips.len(),
            tips,
        };
        // Tips 5 and 8 px from the net's (2.5 and 4 % of the 200-px span).
        let five = geometry(vec![
            p(20.0, 60.0),
            p(60.0, 20.0),
            p(104.0, 13.0),
            p(140.0, 25.0),
            p(180.0, 128.0),
        ]);
        assert_eq!(
            agreeing_tips(&net, &five),
            Ok(KeyPoints {
                fingertip: p(104.0, 13.0),
                thumb: p(180.0, 128.0),
                capitate: net.capitate,
            })
        );
        // The nearest tip to the fingertip 20 px (10 %) away: the mask does not vouch.
        let far = geometry(vec![p(120.0, 10.0), p(180.0, 125.0)]);
        match agreeing_tips(&net, &far) {
            Err(Disagreement::Apart { point, fraction }) => {
                assert_eq!(point, "fingertip");
                assert!((fraction - 0.1).abs() < 1e-9, "{fraction}");
            }
            other => panic!("{other:?}"),
        }
        // One tip for both: the thumb tip is not vouched for.
        let net_close = KeyPoints {
            thumb: p(106.0, 12.0),
            ..net
        };
        let one = geometry(vec![p(103.0, 10.0)]);
        assert!(matches!(
            agreeing_tips(&net_close, &one),
            Err(Disagreement::Apart {
                point: "thumb tip",
                ..
            })
        ));
        // No digit at all.
        assert!(agreeing_tips(&net, &geometry(vec![])).is_err());
    }

    /// A hand of a large film is measured at a quarter of the size, as before; the
    /// same hand as small on a film four times as large (the wrist on the film's
    /// edge) is measured at the hand's scale, where its five digits stand apart and
    /// its tips lie within 2 % of the hand of where they are, nearer than at a
    /// quarter.
    #[test]
    fn a_small_hand_is_measured_at_the_hands_scale() {
        use boneage_core::phantom::{PhantomConfig, generate, image_rng};
        let cfg = PhantomConfig {
            nuisances: false,
            ..PhantomConfig::default()
        };
        let p = generate(&cfg, &mut image_rng(7, 0)).expect("phantom");
        let (w, h) = (p.image.width(), p.image.height());
        let hand = Mask::from_vec(w, h, p.mask).expect("mask size");
        let large = hand.resized(4 * w, 4 * h);
        assert_eq!(hand_scale_geometry(&large), mask_geometry(&large));
        let mut small = Mask::new(4 * w, 4 * h);
        for y in 0..h {
            for x in 0..w {
                small.set(x, 3 * h + y, hand.get(x, y));
            }
        }
        let at = |q: Point| Point::new(q.x, q.y + 3.0 * h as f64);
        let span = p.keypoints.span();
        let off = |g: &boneage_core::hand_geometry::MaskGeometry| {
            [
                g.keypoints.fingertip.dist(at(p.keypoints.fingertip)) / span,
                g.keypoints.thumb.dist(at(p.keypoints.thumb)) / span,
            ]
        };
        let fine = hand_scale_geometry(&small).expect("a hand");
        let quarter = mask_geometry(&small).expect("a hand");
        assert_eq!(fine.digits, 5);
        assert!(off(&fine).iter().all(|&e| e < 0.02), "{:?}", off(&fine));
        // At a quarter of this film the hand is some 110 px long: its tips lie
        // farther off (2.2 and 2.4 % of the hand when this was written).
        let (fine, quarter) = (off(&fine), off(&quarter));
        assert!(
            fine[0] < quarter[0] && fine[1] < quarter[1],
            "{fine:?} {quarter:?}"
        );
    }

    /// Two hand-sized parts make a mask of two hands; a marker beside one hand does
    /// not.
    #[test]
    fn a_second_part_as_large_as_the_hand_is_a_second_hand() {
        let mut two = rect(100, 60, [5, 5, 45, 55]);
        two.union(&rect(100, 60, [55, 8, 92, 55]));
        let ratio = second_part(&two);
        assert!(
            (ratio - (37.0 * 47.0) / (40.0 * 50.0)).abs() < 1e-9,
            "{ratio}"
        );
        assert!(ratio >= TWO_HANDS);
        let mut marked = rect(100, 60, [5, 5, 45, 55]);
        marked.union(&rect(100, 60, [70, 40, 80, 52]));
        assert!(second_part(&marked) < TWO_HANDS);
        assert_eq!(second_part(&rect(100, 60, [5, 5, 45, 55])), 0.0);
        assert_eq!(second_part(&Mask::new(10, 10)), 0.0);
        let e = PreprocessError::TwoHands { ratio };
        assert_eq!(e.kind(), "two hands");
        assert!(e.to_string().starts_with("two hands on the film"), "{e}");
    }

    #[test]
    fn a_hand_runs_off_the_film_at_two_edges_or_more() {
        // A forearm leaving the film at the bottom is a hand on the film.
        assert_eq!(edges_run_off([0.0, 0.0, 0.3, 0.0]), None);
        // Fingertips near the top are not a hand running off it.
        assert_eq!(edges_run_off([0.1, 0.02, 0.3, 0.0]), None);
        assert_eq!(
            edges_run_off([0.2, 0.0, 0.3, 0.0]).as_deref(),
            Some("top and bottom")
        );
        assert_eq!(
            edges_run_off([0.2, 0.5, 0.3, 0.0]).as_deref(),
            Some("top, right and bottom")
        );
    }

    /// A net that finds the same place from every start settles; one that answers
    /// wherever it is started, or that finds another place from one start, does not.
    #[test]
    fn a_net_settles_where_it_finds_the_same_place_from_every_start() {
        let k = KeyPoints {
            fingertip: Point::new(100.0, 0.0),
            thumb: Point::new(170.0, 120.0),
            capitate: Point::new(100.0, 200.0),
        };
        let p = k.capitate;
        assert_eq!(spread(&k, p, |starts| starts.map(|_| p)), 0.0);
        let lost = spread(&k, p, |starts| starts);
        assert!((lost - SETTLE_START).abs() < 1e-12, "{lost}");
        assert!(lost > SETTLE_LIMIT);
        // A second place a tenth of the span towards the fingers, found from the start
        // on that side only.
        let two = spread(&k, p, |starts| {
            starts.map(|start| {
                if start.y < p.y {
                    Point::new(100.0, 180.0)
                } else {
                    p
                }
            })
        });
        assert!((two - 0.1).abs() < 1e-12, "{two}");
        // Answers within a hundredth of the span settle.
        let near = spread(&k, p, |starts| {
            starts.map(|start| p + (start - p) * (1.0 / 6.0))
        });
        assert!((near - 0.01).abs() < 1e-12, "{near}");
        assert!(near < SETTLE_LIMIT);
    }

    #[test]
    fn every_refusal_says_what_to_do_next() {
        let refusals = [
            PreprocessError::NoHand { percent: 0.3 },
            PreprocessError::RefinedFarOff {
                point: Refined::ALL[0],
                fraction: 0.15,
            },
            PreprocessError::Unsettled {
                point: Refined::Capitate,
                spread: 0.1,
            },
            PreprocessError::KeypointOffHand {
                point: "thumb tip",
                distance: 40.0,
            },
            PreprocessError::Implausible("the mask shows no finger".into()),
            PreprocessError::Disagree(Disagreement::ThumbSide),
            PreprocessError::WrongRegistration(boneage_core::hand_template::WrongFit::Mirrored),
            PreprocessError::ShortFingertip { falloff: 0.2 },
            PreprocessError::ThumbNotAtEnd { falloff: 0.1 },
            PreprocessError::SmallHandMoves(Disagreement::Apart {
                point: "capitate",
                fraction: 0.05,
            }),
        ];
        // Something to do: send the film again changed, or read it by eye (a refusal
        // that blames the hand's outline says only the latter: cropping such films
        // did not make them safe to read).
        let advises =
            |text: &str| text.contains("try again") || text.contains("read this film by eye");
        for e in refusals {
            let text = e.to_string();
            assert!(advises(&text), "{}: no advice in {text:?}", e.kind());
        }
        assert!(
            !OUTLINE_ADVICE.contains("crop the film"),
            "{OUTLINE_ADVICE}"
        );
        let cut = PreprocessError::RunsOff {
            edges: "top and bottom".into(),
            why: Box::new(PreprocessError::Disagree(Disagreement::ThumbSide)),
        };
        assert!(cut.to_string().contains("try again"), "{cut}");
        assert!(
            cut.to_string().contains("put the thumb on different sides"),
            "{cut}"
        );
        let small = PreprocessError::SmallOnCanvas {
            at: [10, 20, 170, 180],
            span: 112.4,
            why: Box::new(PreprocessError::Disagree(Disagreement::ThumbSide)),
        };
        let text = small.to_string();
        assert!(
            text.contains("pixels 10–170 across, 20–180 down")
                && text.contains("spans only 112 px")
                && text.contains("under the 105 px")
                && text.contains("try again")
                && text.contains("put the thumb on different sides"),
            "{text}"
        );
        assert_eq!(small.kind(), "small film on a canvas");
        let washed = PreprocessError::WashedOut {
            percent: 32.0,
            why: Box::new(PreprocessError::NoHand { percent: 2.0 }),
        };
        assert!(washed.to_string().contains("try again"), "{washed}");
        assert!(
            washed
                .to_string()
                .starts_with("the film is washed out: 32 % of its middle"),
            "{washed}"
        );
        let short = PreprocessError::ShortFingertip { falloff: 0.2 }.to_string();
        assert!(
            short.starts_with(
                "the fingertip is placed short of the finger's end: beyond it the film falls \
                 only 20 % of the way to the background (at least 50 % expected)"
            ),
            "{short}"
        );
        let thumb = PreprocessError::ThumbNotAtEnd { falloff: 0.1 };
        assert!(
            thumb.to_string().starts_with(
                "the thumb tip is not placed where the thumb ends: just beyond it the film \
                 falls only 10 % of the way from the thumb to the background (at least 50 % \
                 expected)"
            ),
            "{thumb}"
        );
        assert_eq!(thumb.kind(), "thumb tip not at the thumb's end");
        let moves = PreprocessError::SmallHandMoves(Disagreement::Apart {
            point: "capitate",
            fraction: 0.05,
        })
        .to_string();
        assert!(
            moves.starts_with(
                "the hand is small on the film and its key points move when it is framed \
                 again around them (the capitate moves by 5 % of the hand's length): crop"
            ),
            "{moves}"
        );
        // The short kinds that tables count by stay as they were.
        assert_eq!(
            PreprocessError::Disagree(Disagreement::ThumbSide).kind(),
            "mask and net: thumb side"
        );
        assert!(
            PreprocessError::NoHand { percent: 0.3 }
                .to_string()
                .starts_with("no hand found: the mask covers 0.3 % of the image")
        );
    }

    #[test]
    fn only_the_agreeing_readers_capitate_is_held_closer() {
        for point in Refined::ALL {
            assert_eq!(
                KeypointSource::MaskGeometry.move_limit(point),
                REFINE_MOVE_LIMIT
            );
        }
        assert_eq!(
            KeypointSource::Agreeing.move_limit(Refined::Capitate),
            AGREEING_CAPITATE
        );
        assert_eq!(
            KeypointSource::Agreeing.move_limit(Refined::Thumb),
            REFINE_MOVE_LIMIT
        );
        const { assert!(AGREEING_CAPITATE < REFINE_MOVE_LIMIT) };
    }

    #[test]
    fn a_hand_leaning_by_quarter_turns_is_turned_back_upright() {
        let img = GrayImage::new(300, 200);
        // Fingers pointing right: leaning a quarter turn clockwise.
        let k = KeyPoints {
            fingertip: Point::new(250.0, 100.0),
            thumb: Point::new(150.0, 30.0),
            capitate: Point::new(80.0, 100.0),
        };
        let q = (k.lean() / std::f64::consts::FRAC_PI_2).round() as i32;
        assert_eq!(q, 1);
        let (turned, map) = turn_back(&img, q);
        assert_eq!((turned.width(), turned.height()), (200, 300));
        let up = k.mapped(&map);
        let a = up.fingertip - up.capitate;
        assert!(a.x.abs() < 1e-9 && a.y < -100.0, "{up:?}");
        // The thumb stays on its side of the hand (a turn, not a mirror): up the film
        // beside fingers pointing right is left of them upright.
        assert_eq!(up.thumb_on_right(), k.thumb_on_right());
        assert!(up.thumb.x < up.capitate.x, "{up:?}");
    }

    #[test]
    fn a_leaning_hand_gets_an_upright_field_at_the_films_scale() {
        // A 60 x 240 px bar leaning 40° clockwise on a 600 x 500 film.
        let lean = 40f64.to_radians();
        let (s, c) = lean.sin_cos();
        let mut m = Mask::new(600, 500);
        for y in 0..500 {
            for x in 0..600 {
                let (dx, dy) = (x as f64 + 0.5 - 300.0, y as f64 + 0.5 - 250.0);
                if (dx * c + dy * s).abs() <= 30.0 && (dx * s - dy * c).abs() <= 120.0 {
                    m.set(x, y, true);
                }
            }
        }
        let (_, axis) = m.principal_axis().unwrap();
        assert!((axis - lean).abs() < 0.02, "{}", axis.to_degrees());
        let (fw, fh, to_film) = upright_field(&m, axis, [256, 208]).unwrap();
        assert!(
            (fw as f64 / fh as f64 - 208.0 / 256.0).abs() < 0.01,
            "{fw} x {fh}"
        );
        // Up the field is up the bar on the film; one field pixel is one film pixel.
        let o = to_film.apply(Point::new(0.0, 0.0));
        let up = to_film.apply(Point::new(0.0, -1.0)) - o;
        assert!((up.x - s).abs() < 0.02 && (up.y + c).abs() < 0.02, "{up:?}");
        // The bar stands upright on the field, whole, with a margin around it.
        let field = warp_mask(&m, &to_film, fw, fh);
        assert!(
            (field.count() as f64 - m.count() as f64).abs() < 0.03 * m.count() as f64,
            "{} of {}",
            field.count(),
            m.count()
        );
        let [x0, y0, x1, y1] = field.bounds().unwrap();
        assert!(
            (x1 - x0).abs_diff(61) <= 3 && (y1 - y0).abs_diff(241) <= 3,
            "{:?}",
            field.bounds()
        );
        let margin = (ZOOM_MARGIN * 240.0) as usize;
        assert!(
            y0 + 1 >= margin && fh - y1 + 1 >= margin,
            "{y0} {y1} of {fh}"
        );
        assert!(
            ((x0 + x1) as f64 / 2.0 - fw as f64 / 2.0).abs() < 2.0,
            "centred"
        );
    }

    #[test]
    fn the_finders_field_frames_a_leaning_hand_upright_as_the_development_films_do() {
        // A hand 100 px from fingertip to capitate, leaning 40° clockwise on a film.
        let lean = 40f64.to_radians();
        let capitate = Point::new(400.0, 300.0);
        let fingertip = capitate + Point::new(lean.sin(), -lean.cos()) * 100.0;
        let thumb = capitate + Point::new(60.0, -20.0);
        let k = KeyPoints {
            fingertip,
            thumb,
            capitate,
        };
        let (fw, fh, to_film) = found_field(&k, [256, 208]).unwrap();
        assert_eq!(fh, 160, "1.6 spans high");
        assert_eq!(fw, 130, "at the U-Net's aspect");
        let to_field = to_film.inverse().unwrap();
        let (f, c) = (to_field.apply(fingertip), to_field.apply(capitate));
        // Upright, centred across, the span's middle above the field's by FOUND_DROP.
        assert!(
            (f.x - 65.0).abs() < 0.5 && (c.x - 65.0).abs() < 0.5,
            "{f:?} {c:?}"
        );
        assert!((c.y - f.y - 100.0).abs() < 0.5, "{f:?} {c:?}");
        assert!(
            ((f.y + c.y) / 2.0 - (80.0 - 16.0)).abs() < 0.5,
            "{f:?} {c:?}"
        );
        // One field pixel is one film pixel; no field for a hand of a few pixels.
        let step = to_film.apply(Point::new(1.0, 0.0)) - to_film.apply(Point::new(0.0, 0.0));
        assert!((step.norm() - 1.0).abs() < 1e-9, "{step:?}");
        let tiny = KeyPoints {
            fingertip: capitate + Point::new(0.0, -5.0),
            ..k
        };
        assert!(found_field(&tiny, [256, 208]).is_none());
    }

    #[test]
    fn a_small_hand_gets_a_field_of_the_unets_shape_around_it() {
        // A 150 x 200 px hand on a 1000 x 1200 film: the U-Net (208 wide, 256 high)
        // sees it about 4.7 times larger on the field.
        let m = rect(1000, 1200, [200, 300, 350, 500]);
        let (fw, fh, field_to_img) = hand_field(&m, [256, 208]).expect("a closer look");
        assert!(
            (fw as f64 / fh as f64 - 208.0 / 256.0).abs() < 0.01,
            "{fw} x {fh}"
        );
        let margin = ZOOM_MARGIN * 200.0;
        let o = field_to_img.apply(Point::new(0.0, 0.0));
        let end = field_to_img.apply(Point::new(fw as f64, fh as f64));
        assert!(
            o.x <= 200.0 - margin + 1.0 && o.y <= 300.0 - margin + 1.0,
            "{o:?}"
        );
        assert!(
            end.x >= 350.0 + margin - 1.0 && end.y >= 500.0 + margin - 1.0,
            "{end:?}"
        );
        assert_eq!(end.x - o.x, fw as f64, "a translation, not a scaling");
    }

    #[test]
    fn a_hand_that_fills_the_film_or_no_hand_gets_no_closer_look() {
        assert!(hand_field(&rect(208, 256, [10, 10, 198, 250]), [256, 208]).is_none());
        assert!(hand_field(&Mask::new(100, 100), [256, 208]).is_none());
    }
}
