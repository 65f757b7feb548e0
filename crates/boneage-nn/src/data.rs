//! Training data: examples prepared once (decoded, windowed, resized to the network's
//! input) and kept as 8-bit pixels, a compact on-disk cache of them, train-time
//! augmentation (zoom, rotation, shift, optional flip) that moves key points and masks
//! with the image, and batches assembled on a loader thread while the network trains.

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};

use boneage_core::geometry::{Affine, Point};
use boneage_core::image::Mask;
use boneage_core::ops::{warp_affine, warp_mask};
use boneage_core::{Error, GrayImage, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What the network should say for one example.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Bone age in months.
    Age(f32),
    /// Points as x, y pairs in `[−1, 1]` of the input (−1 = left/top edge, 1 =
    /// right/bottom edge): fingertip, thumb and capitate for the key-point net, its
    /// one point for a refining net.
    Keypoints(Vec<f32>),
    /// A 0/1 mask at the input size, row-major.
    Mask(Vec<u8>),
    /// Whether a registration is right (the verifier's label).
    Right(bool),
}

/// One prepared example: pixels at the network's input size.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The image id.
    pub id: String,
    /// Patient sex (male = true).
    pub male: bool,
    /// Pixels, row-major, 0 = black, 255 = white (bone).
    pub pixels: Vec<u8>,
    /// The label.
    pub target: Target,
}

/// Prepared examples of one size and one kind of target.
#[derive(Clone, Debug, PartialEq)]
pub struct Examples {
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// The examples.
    pub items: Vec<Example>,
}

/// Maximum magnitudes of the random train-time transforms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Zoom factor drawn from `[1 − zoom, 1 + zoom]`.
    pub zoom: f32,
    /// Rotation drawn from `[−rotation_deg, rotation_deg]` about the centre.
    pub rotation_deg: f32,
    /// Shift drawn from `[−shift, shift]` times the width (x) and height (y).
    pub shift: f32,
    /// Mirror left–right half of the time. Only for labels a mirror keeps true
    /// (masks); a mirrored left hand is a right hand to the key-point and age nets.
    pub flip: bool,
    /// Half of the time, a zoom drawn from `[zoom_out, 1]` instead, with the shift
    /// widened so that the smaller image can sit anywhere: a hand small on a large
    /// cassette (0: never).
    #[serde(default)]
    pub zoom_out: f32,
    /// Film-like changes of the pixels: the uncovered border filled with a grey
    /// level or noise instead of black, exposure and gamma, inverted polarity, noise,
    /// and a bright marker.
    #[serde(default)]
    pub photometric: bool,
    /// Masks only: the hand's film laid on a larger field as a scanned or
    /// photographed film shows it — the film's edge as a bright or dark line beside
    /// the hand, the field beyond it another grey, the film a little turned, now and
    /// then the wrist cut off by the film's lower edge — and flat or dark-soft-tissue
    /// exposures ([`framed`]). Drawn after [`Augment::photometric`]'s changes, from
    /// the same generator, so runs without it augment as before.
    #[serde(default)]
    pub frames: bool,
}

/// The augmentation each network trains with (`boneage train`).
pub mod augment {
    use super::Augment;

    /// Masks: flips keep masks true; moderate zoom and rotation.
    pub const SEGMENT: Augment = Augment {
        zoom: 0.1,
        rotation_deg: 15.0,
        shift: 0.05,
        flip: true,
        zoom_out: 0.0,
        photometric: false,
        frames: false,
    };
    /// Key points: flips keep key-point labels true (each point moves with the
    /// image) and teach the net mirrored films; rotations up to 30° cover tilted
    /// hands.
    pub const KEYPOINTS: Augment = Augment {
        zoom: 0.1,
        rotation_deg: 30.0,
        shift: 0.08,
        flip: true,
        zoom_out: 0.0,
        photometric: false,
        frames: false,
    };
    /// The VGG key-point net on films as they come (`train keypoints --films`):
    /// [`KEYPOINTS`]' moves, turns and mirrors, plus, half of the time, the hand
    /// shrunk to between 60 % and its own size onto a larger grey or noisy field, and
    /// markers, exposure, gamma, noise and inverted polarity, as [`SEGMENT_FILMS`]
    /// draws them. The net checks the outline's key points on every film; the
    /// shipped one, trained on development films as filmed, puts its points where
    /// the average hand has them on a small hand on a light, framed film.
    pub const KEYPOINTS_FILMS: Augment = Augment {
        zoom_out: 0.6,
        photometric: true,
        ..KEYPOINTS
    };
    /// The heat-map key-point locator: everything the stress suite does to a film
    /// (`boneage evaluate-preprocess --stress`) — any turn, mirrored, shrunk to 30 %
    /// on a grey or noisy background, a marker, exposure, inverted polarity — so
    /// that it finds the points on films unlike the development set.
    pub const KEYPOINTS_WILD: Augment = Augment {
        zoom: 0.1,
        rotation_deg: 180.0,
        shift: 0.05,
        flip: true,
        zoom_out: 0.3,
        photometric: true,
        frames: false,
    };
    /// Masks on films unlike the development set (`train segment --wild`): the same
    /// transforms as [`KEYPOINTS_WILD`]; the mask moves with the hand and stays empty
    /// on the uncovered border and under a marker.
    pub const SEGMENT_WILD: Augment = KEYPOINTS_WILD;
    /// Masks on films as they come (`train segment --films`): [`SEGMENT`]'s small
    /// moves, upright, plus what differs between sources — half of the time the hand
    /// shrunk to 60 % onto a larger grey or noisy field, markers, exposure, gamma,
    /// inverted polarity — but not [`SEGMENT_WILD`]'s turns, which cost the U-Net
    /// accuracy on ordinary films.
    pub const SEGMENT_FILMS: Augment = Augment {
        zoom_out: 0.6,
        photometric: true,
        ..SEGMENT
    };
    /// Masks on framed films (`train segment --frames`): [`SEGMENT_FILMS`] plus the
    /// film's edge and a field of another grey around it, a film a little turned,
    /// the wrist cut by the film's edge, flat and dark exposures
    /// ([`super::Augment::frames`]): what most of the films that the shipped U-Net
    /// outlines wrongly show (the frame taken into the hand, the outline stopping
    /// at dark soft tissue).
    pub const SEGMENT_FRAMES: Augment = Augment {
        frames: true,
        ..SEGMENT_FILMS
    };
    /// A refining net's field around a first guess (`train keypoints --refine`):
    /// small moves and turns on top of the field's own jitter
    /// ([`crate::inputs::REFINE_JITTER`]), and film-like exposure, gamma, noise and
    /// inverted polarity; never mirrored (the field is always shown thumb right).
    pub const REFINE: Augment = Augment {
        zoom: 0.08,
        rotation_deg: 10.0,
        shift: 0.08,
        flip: false,
        zoom_out: 0.0,
        photometric: true,
        frames: false,
    };
    /// Bone age on registered regions: small moves only, never mirrored.
    pub const AGE: Augment = Augment {
        zoom: 0.08,
        rotation_deg: 8.0,
        shift: 0.04,
        flip: false,
        zoom_out: 0.0,
        photometric: false,
        frames: false,
    };
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        zoom: 0.0,
        rotation_deg: 0.0,
        shift: 0.0,
        flip: false,
        zoom_out: 0.0,
        photometric: false,
        frames: false,
    };

    /// Whether this draws any transform at all.
    pub fn is_none(&self) -> bool {
        self.zoom == 0.0
            && self.rotation_deg == 0.0
            && self.shift == 0.0
            && !self.flip
            && self.zoom_out == 0.0
            && !self.photometric
            && !self.frames
    }

    /// A random input→output map for a `width`×`height` image.
    pub fn draw(&self, width: usize, height: usize, rng: &mut impl Rng) -> Affine {
        fn uniform(m: f32, rng: &mut impl Rng) -> f64 {
            if m > 0.0 {
                rng.random_range(-m..=m) as f64
            } else {
                0.0
            }
        }
        // Draws in the same order as before zoom_out existed, so that runs without it
        // augment as they did.
        let mut zoom = 1.0 + uniform(self.zoom, rng);
        if self.zoom_out > 0.0 && self.zoom_out < 1.0 && rng.random_bool(0.5) {
            zoom = rng.random_range(self.zoom_out..=1.0) as f64;
        }
        let angle = uniform(self.rotation_deg, rng).to_radians();
        // The shift: as drawn, or, for a shrunk image, anywhere it stays in view.
        let room = if self.zoom_out > 0.0 || self.rotation_deg > 45.0 {
            self.shift.max((1.0 - zoom as f32) / 2.0)
        } else {
            self.shift
        };
        if self.rotation_deg > 45.0 {
            // Large turns: shrink so that the turned image fits, as a turned film
            // letterboxed into the input would.
            zoom *= turned_fit(width as f64, height as f64, angle);
        }
        let shift = Point::new(
            uniform(room, rng) * width as f64,
            uniform(room, rng) * height as f64,
        );
        let flip = self.flip && rng.random_bool(0.5);
        about_centre(width, height, zoom, angle, flip, shift)
    }
}

/// A point of a `[h, w]` network input as the key-point nets' coordinates, in
/// `[−1, 1]` across the input.
pub fn to_unit(p: Point, [h, w]: [usize; 2]) -> [f32; 2] {
    [
        (p.x / w as f64 * 2.0 - 1.0) as f32,
        (p.y / h as f64 * 2.0 - 1.0) as f32,
    ]
}

/// The reverse of [`to_unit`]: coordinates in `[−1, 1]` as a point of the input.
pub fn from_unit(t: [f32; 2], [h, w]: [usize; 2]) -> Point {
    Point::new(
        (t[0] as f64 + 1.0) / 2.0 * w as f64,
        (t[1] as f64 + 1.0) / 2.0 * h as f64,
    )
}

/// Whether key points (in `[−1, 1]` of a `w` × `h` input) moved by `in_to_out` lie
/// inside the input, 2 % from its edges.
fn keypoints_in_view(points: &[f32], in_to_out: &Affine, w: usize, h: usize) -> bool {
    points.chunks_exact(2).all(|p| {
        let q = in_to_out.apply(from_unit([p[0], p[1]], [h, w]));
        let (mx, my) = (0.02 * w as f64, 0.02 * h as f64);
        q.x >= mx && q.x <= w as f64 - mx && q.y >= my && q.y <= h as f64 - my
    })
}

/// The zoom at which a `w` × `h` image turned by `angle` fits inside `w` × `h`.
fn turned_fit(w: f64, h: f64, angle: f64) -> f64 {
    let (c, s) = (angle.cos().abs(), angle.sin().abs());
    (w / (c * w + s * h)).min(h / (s * w + c * h)).min(1.0)
}

/// Film-like pixel changes of an augmented image (values 0–255), drawn from `rng`:
/// the border that the transform uncovered (`coverage` < 1) filled with a grey
/// level or noise, a bright marker, exposure and gamma, inverted polarity (only
/// where `may_invert`; the draws are the same either way), noise.
fn film_like(
    pixels: &mut [f32],
    coverage: &[f32],
    w: usize,
    h: usize,
    may_invert: bool,
    rng: &mut impl Rng,
) {
    let bg = rng.random_range(0.0f32..160.0);
    let bg_noise = if rng.random_bool(0.3) {
        rng.random_range(5.0f32..40.0)
    } else {
        0.0
    };
    for (p, &c) in pixels.iter_mut().zip(coverage) {
        if c < 1.0 {
            let b = if bg_noise > 0.0 {
                (bg + bg_noise * (rng.random::<f32>() - 0.5) * 2.0).clamp(0.0, 255.0)
            } else {
                bg
            };
            *p = *p * c + b * (1.0 - c);
        }
    }
    if rng.random_bool(0.3) {
        // A radiographer's lead marker: a bright block somewhere.
        let (mw, mh) = (
            (w as f32 * rng.random_range(0.04f32..0.1)) as usize + 1,
            (h as f32 * rng.random_range(0.03f32..0.08)) as usize + 1,
        );
        let (x0, y0) = (
            rng.random_range(0..w.saturating_sub(mw).max(1)),
            rng.random_range(0..h.saturating_sub(mh).max(1)),
        );
        let v = rng.random_range(200.0f32..255.0);
        for y in y0..(y0 + mh).min(h) {
            for p in &mut pixels[y * w + x0..y * w + (x0 + mw).min(w)] {
                *p = v;
            }
        }
    }
    let (lo, hi) = if rng.random_bool(0.7) {
        (
            rng.random_range(0.0f32..80.0),
            rng.random_range(150.0f32..255.0),
        )
    } else {
        (0.0, 255.0)
    };
    let gamma = if rng.random_bool(0.5) {
        rng.random_range(0.5f32..2.0)
    } else {
        1.0
    };
    let invert = rng.random_bool(0.15) && may_invert;
    let noise = if rng.random_bool(0.3) {
        rng.random_range(2.0f32..12.0)
    } else {
        0.0
    };
    for p in pixels.iter_mut() {
        let mut v = lo + (hi - lo) * (*p / 255.0).clamp(0.0, 1.0).powf(gamma);
        if invert {
            v = 255.0 - v;
        }
        if noise > 0.0 {
            v += noise * (rng.random::<f32>() - 0.5) * 2.0;
        }
        *p = v.clamp(0.0, 255.0);
    }
}

/// A `w` × `h` 0/1 mask warped as its image is (`out_to_in` maps output to input).
fn warped_mask(m: &[u8], out_to_in: &Affine, w: usize, h: usize) -> Vec<u8> {
    let mask = Mask::from_vec(w, h, m.to_vec()).expect("mask matches the size");
    warp_mask(&mask, out_to_in, w, h)
        .as_slice()
        .iter()
        .map(|&v| (v != 0) as u8)
        .collect()
}

/// The hand's film laid on a larger field ([`Augment::frames`]), on an augmented
/// image (values 0–255) and its 0/1 hand mask, drawn from `rng`: three times in
/// five, a rectangle turned by up to 8° that holds the hand with a margin of 1–15 %
/// of the input (or, a third of the time, whose lower edge cuts the wrist: the hand
/// below it is taken off the mask and shows the field), the field beyond it another
/// grey level (most of the time), its edge a bright or dark line 1–3 pixels wide
/// that the hand lies over; then, now and then, a flat exposure (the values squeezed
/// into 40–100 of the 255) or a dark one (gamma 2–3.5: faint soft tissue beside
/// bright bone).
pub fn framed(pixels: &mut [f32], hand: &mut [u8], w: usize, h: usize, rng: &mut impl Rng) {
    let angle = rng.random_range(-8.0f64..=8.0).to_radians();
    let (sin, cos) = angle.sin_cos();
    let c = Point::new(w as f64 / 2.0, h as f64 / 2.0);
    // The film's own axes: u across, v down.
    let to_film = |x: f64, y: f64| {
        let (dx, dy) = (x - c.x, y - c.y);
        (cos * dx + sin * dy, -sin * dx + cos * dy)
    };
    let (mut u0, mut u1, mut v0, mut v1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for y in 0..h {
        for x in 0..w {
            if hand[y * w + x] != 0 {
                let (u, v) = to_film(x as f64 + 0.5, y as f64 + 0.5);
                u0 = u0.min(u);
                u1 = u1.max(u);
                v0 = v0.min(v);
                v1 = v1.max(v);
            }
        }
    }
    // Most of the time the film is framed; otherwise only the exposures below.
    let frame = rng.random_bool(0.6);
    let cut_wrist = rng.random_bool(0.33);
    // A wrist cut off by the film's edge shows the field beyond it, never the hand.
    let field = (cut_wrist || rng.random_bool(0.75)).then(|| rng.random_range(20.0f32..230.0));
    let rim = rng.random_bool(0.7).then(|| {
        let v = if rng.random_bool(0.75) {
            rng.random_range(150.0f32..255.0)
        } else {
            rng.random_range(0.0f32..40.0)
        };
        (v, rng.random_range(1.0f64..3.5))
    });
    let flat = rng.random_bool(0.2).then(|| {
        let lo = rng.random_range(20.0f32..120.0);
        (lo, rng.random_range(40.0f32..100.0))
    });
    let dark = rng.random_bool(0.2).then(|| rng.random_range(2.0f32..3.5));
    if frame && u0 <= u1 {
        let margin = |rng: &mut dyn rand::RngCore| rng.random_range(0.01f64..0.15) * w as f64;
        let (a0, a1, b0) = (u0 - margin(rng), u1 + margin(rng), v0 - margin(rng));
        let b1 = if cut_wrist {
            v1 - rng.random_range(0.02f64..0.12) * h as f64
        } else {
            v1 + margin(rng)
        };
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let (u, v) = to_film(x as f64 + 0.5, y as f64 + 0.5);
                let inside = u >= a0 && u <= a1 && v >= b0 && v <= b1;
                if !inside {
                    hand[i] = 0;
                    if let Some(f) = field {
                        pixels[i] = f;
                    }
                    continue;
                }
                if let Some((value, width)) = rim {
                    let edge = (u - a0).min(a1 - u).min(v - b0).min(b1 - v);
                    if edge < width && hand[i] == 0 {
                        pixels[i] = value;
                    }
                }
            }
        }
    }
    for p in pixels.iter_mut() {
        let mut v = (*p / 255.0).clamp(0.0, 1.0);
        if let Some(g) = dark {
            v = v.powf(g);
        }
        if let Some((lo, span)) = flat {
            v = (lo + span * v) / 255.0;
        }
        *p = (v * 255.0).clamp(0.0, 255.0);
    }
}

/// A whole film (values 0–1) as another source might send it, for examples drawn at
/// the film's own size (the registration verifier's, `boneage train verifier
/// --films`), drawn from `seed`: [`film_like`]'s exposure, gamma, noise and marker,
/// never its inverted polarity (the pipeline turns an inverted film back before
/// anything after the U-Net reads it), then the film's frame around `hand` (the
/// hand's mask, the film's size; [`framed`]: the film's edge, a field of another
/// grey, the wrist cut, flat and dark exposures).
pub fn film_as_sent(img: &GrayImage, hand: &Mask, seed: u64) -> GrayImage {
    let (w, h) = (img.width(), img.height());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pixels: Vec<f32> = img.as_slice().iter().map(|&v| 255.0 * v).collect();
    assert_eq!(
        (hand.width(), hand.height()),
        (w, h),
        "the hand's mask is the film's size"
    );
    film_like(&mut pixels, &vec![1.0; w * h], w, h, false, &mut rng);
    framed(&mut pixels, &mut hand.as_slice().to_vec(), w, h, &mut rng);
    GrayImage::from_vec(w, h, pixels.into_iter().map(|v| v / 255.0).collect())
        .expect("pixels match the size")
}

/// The similarity `out = c + shift + zoom·R(angle)·M·(in − c)` about the centre `c` of
/// a `width` × `height` image (`M` mirrors x when `flip`; `angle` in radians).
pub fn about_centre(
    width: usize,
    height: usize,
    zoom: f64,
    angle: f64,
    flip: bool,
    shift: Point,
) -> Affine {
    let c = Point::new(width as f64 / 2.0, height as f64 / 2.0);
    let moved = Affine::similarity(zoom, angle, flip, Point::default()).apply(c);
    Affine::similarity(zoom, angle, flip, c + shift - moved)
}

/// A batch ready for tensors: images scaled to `[−1, 1]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Number of examples.
    pub size: usize,
    /// `[size, 1, height, width]` pixels in `[−1, 1]`.
    pub images: Vec<f32>,
    /// `[size, 1]`: 1 for male, 0 for female.
    pub sex: Vec<f32>,
    /// Targets: `[size, 1]` months, `[size, 2 · points]` key points, `[size, 1,
    /// height, width]` 0/1 masks, or `[size, 1]` 0/1 verdicts (1: right).
    pub targets: Vec<f32>,
}

/// How the pixels of a batch are scaled, in words (for manifests).
pub const NORMALIZATION: &str = "8-bit pixels p (bright = bone) scaled to p / 127.5 - 1";

impl Examples {
    /// Number of target values per example.
    pub fn target_len(&self) -> usize {
        match self.items.first().map(|e| &e.target) {
            Some(Target::Keypoints(k)) => k.len(),
            Some(Target::Mask(_)) => self.height * self.width,
            _ => 1,
        }
    }

    /// The batch of examples `indices`. Each example `k` of the batch is augmented
    /// with its own generator seeded by `seeds[k]` (ignored for [`Augment::NONE`]),
    /// so a batch depends only on its indices and seeds, not on the thread that
    /// builds it.
    pub fn batch(&self, indices: &[usize], augment: &Augment, seeds: &[u64]) -> Batch {
        let (w, h) = (self.width, self.height);
        let mut batch = Batch {
            size: indices.len(),
            images: Vec::with_capacity(indices.len() * w * h),
            sex: Vec::with_capacity(indices.len()),
            targets: Vec::with_capacity(indices.len() * self.target_len()),
        };
        for (k, &i) in indices.iter().enumerate() {
            let ex = &self.items[i];
            batch.sex.push(ex.male as u8 as f32);
            if augment.is_none() {
                batch
                    .images
                    .extend(ex.pixels.iter().map(|&p| p as f32 / 127.5 - 1.0));
                match &ex.target {
                    Target::Age(m) => batch.targets.push(*m),
                    Target::Keypoints(k) => batch.targets.extend_from_slice(k),
                    Target::Mask(m) => batch.targets.extend(m.iter().map(|&v| v as f32)),
                    Target::Right(r) => batch.targets.push(*r as u8 as f32),
                }
                continue;
            }
            let mut rng = ChaCha8Rng::seed_from_u64(seeds[k]);
            let mut in_to_out = augment.draw(w, h, &mut rng);
            if let (Target::Keypoints(points), true) = (&ex.target, augment.zoom_out > 0.0) {
                // Shrunk and moved images: draw again (a few times) until every key
                // point stays in view, as it does on a film.
                for _ in 0..8 {
                    if keypoints_in_view(points, &in_to_out, w, h) {
                        break;
                    }
                    in_to_out = augment.draw(w, h, &mut rng);
                }
            }
            let out_to_in = in_to_out.inverse().expect("zoom is positive");
            let img = GrayImage::from_vec(w, h, ex.pixels.iter().map(|&p| p as f32).collect())
                .expect("pixels match the size");
            let mut warped = warp_affine(&img, &out_to_in, w, h).into_vec();
            if augment.photometric {
                let ones = GrayImage::from_vec(w, h, vec![1.0; w * h]).expect("sizes match");
                let coverage = warp_affine(&ones, &out_to_in, w, h);
                film_like(&mut warped, coverage.as_slice(), w, h, true, &mut rng);
            }
            if let (Target::Mask(m), true) = (&ex.target, augment.frames) {
                let mut hand = warped_mask(m, &out_to_in, w, h);
                framed(&mut warped, &mut hand, w, h, &mut rng);
                batch.images.extend(warped.iter().map(|&p| p / 127.5 - 1.0));
                batch.targets.extend(hand.iter().map(|&v| v as f32));
                continue;
            }
            batch.images.extend(warped.iter().map(|&p| p / 127.5 - 1.0));
            match &ex.target {
                Target::Age(m) => batch.targets.push(*m),
                Target::Right(r) => batch.targets.push(*r as u8 as f32),
                Target::Keypoints(k) => {
                    for p in k.chunks_exact(2) {
                        let q = in_to_out.apply(from_unit([p[0], p[1]], [h, w]));
                        batch.targets.extend(to_unit(q, [h, w]));
                    }
                }
                Target::Mask(m) => batch.targets.extend(
                    warped_mask(m, &out_to_in, w, h)
                        .into_iter()
                        .map(|v| v as f32),
                ),
            }
        }
        batch
    }

    /// Batches of `order` in chunks of `batch_size` (the last one may be smaller),
    /// built on a loader thread two batches ahead of the consumer. Example `k` of
    /// the order gets augmentation seed `seed_of(k)`.
    pub fn batches(
        self: &Arc<Self>,
        order: Vec<usize>,
        batch_size: usize,
        augment: Augment,
        seed_of: impl Fn(usize) -> u64 + Send + 'static,
    ) -> Receiver<Batch> {
        let (tx, rx) = sync_channel(2);
        let examples = Arc::clone(self);
        std::thread::spawn(move || {
            for (c, chunk) in order.chunks(batch_size.max(1)).enumerate() {
                let seeds: Vec<u64> = (0..chunk.len())
                    .map(|k| seed_of(c * batch_size + k))
                    .collect();
                if tx.send(examples.batch(chunk, &augment, &seeds)).is_err() {
                    break; // the consumer stopped
                }
            }
        });
        rx
    }

    /// Writes the examples to `path` (atomically): a JSON header line, then each
    /// example's pixels and mask as raw bytes.
    pub fn save(&self, path: &Path, source: &str) -> Result<()> {
        let header = CacheHeader {
            magic: CACHE_MAGIC.to_string(),
            source: source.to_string(),
            height: self.height,
            width: self.width,
            items: self
                .items
                .iter()
                .map(|e| CacheItem {
                    id: e.id.clone(),
                    male: e.male,
                    age: match e.target {
                        Target::Age(m) => Some(m),
                        _ => None,
                    },
                    keypoints: match &e.target {
                        Target::Keypoints(k) => Some(k.clone()),
                        _ => None,
                    },
                    mask: matches!(e.target, Target::Mask(_)),
                    right: match e.target {
                        Target::Right(r) => Some(r),
                        _ => None,
                    },
                })
                .collect(),
        };
        boneage_core::io::write_atomic(path, |w: &mut BufWriter<std::fs::File>| {
            serde_json::to_writer(&mut *w, &header)?;
            w.write_all(b"\n")?;
            for e in &self.items {
                w.write_all(&e.pixels)?;
                if let Target::Mask(m) = &e.target {
                    w.write_all(m)?;
                }
            }
            Ok(())
        })
    }

    /// Reads a cache written by [`Examples::save`]; `source` must match the one it
    /// was written with (a different source means the cache is stale).
    pub fn load(path: &Path, source: &str) -> Result<Self> {
        let bad = |detail: String| Error::Table {
            path: path.to_path_buf(),
            detail,
        };
        let file = std::fs::File::open(path).map_err(|cause| Error::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let mut r = BufReader::new(file);
        let mut line = Vec::new();
        loop {
            let mut b = [0u8];
            r.read_exact(&mut b)
                .map_err(|_| bad("not a boneage example cache (no header)".into()))?;
            if b[0] == b'\n' {
                break;
            }
            line.push(b[0]);
            if line.len() > 64 << 20 {
                return Err(bad("not a boneage example cache (header too long)".into()));
            }
        }
        let header: CacheHeader = serde_json::from_slice(&line)
            .map_err(|e| bad(format!("not a boneage example cache: {e}")))?;
        if header.magic != CACHE_MAGIC {
            return Err(bad(format!(
                "cache format {:?}, expected {CACHE_MAGIC:?}",
                header.magic
            )));
        }
        if header.source != source {
            return Err(bad(format!(
                "the cache was made from {:?}, not {source:?}",
                header.source
            )));
        }
        let n = header.height * header.width;
        let mut items = Vec::with_capacity(header.items.len());
        for it in header.items {
            let mut pixels = vec![0u8; n];
            r.read_exact(&mut pixels)
                .map_err(|_| bad(format!("truncated at example {}", it.id)))?;
            let target = if it.mask {
                let mut m = vec![0u8; n];
                r.read_exact(&mut m)
                    .map_err(|_| bad(format!("truncated at the mask of {}", it.id)))?;
                Target::Mask(m)
            } else if let Some(k) = it.keypoints {
                Target::Keypoints(k)
            } else if let Some(r) = it.right {
                Target::Right(r)
            } else {
                Target::Age(it.age.unwrap_or(f32::NAN))
            };
            items.push(Example {
                id: it.id,
                male: it.male,
                pixels,
                target,
            });
        }
        Ok(Self {
            height: header.height,
            width: header.width,
            items,
        })
    }
}

const CACHE_MAGIC: &str = "boneage-examples-1";

#[derive(Serialize, Deserialize)]
struct CacheHeader {
    magic: String,
    source: String,
    height: usize,
    width: usize,
    items: Vec<CacheItem>,
}

#[derive(Serialize, Deserialize)]
struct CacheItem {
    id: String,
    male: bool,
    age: Option<f32>,
    keypoints: Option<Vec<f32>>,
    mask: bool,
    #[serde(default)]
    right: Option<bool>,
}

/// 8-bit pixels of a unit-range image.
pub fn to_pixels(img: &GrayImage) -> Vec<u8> {
    img.to_u8()
}
