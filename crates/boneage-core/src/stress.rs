//! The stress suite's transforms: a film as users send it rather than as the
//! development set shows it — turned, mirrored, shrunk onto a larger field with a
//! marker and a film edge, inverted, in a narrow 16-bit window, under- or
//! over-exposed, or already segmented and cropped tight. Each transform carries the
//! film's true key points with it, so that what the front end finds on the
//! transformed film can be judged against the truth.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::geometry::{Affine, Point};
use crate::image::{GrayImage, Mask};
use crate::keypoints::KeyPoints;
use crate::ops::warp_affine;

/// What fills the field around a shrunk film.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Background {
    /// Black.
    Black,
    /// Mid grey.
    Grey,
    /// Grey noise.
    Noise,
}

/// One way of sending a film.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stress {
    /// Turned by this many degrees (clockwise on the screen) onto a field that holds
    /// it; 0 is the film as it is.
    Turned(u32),
    /// Mirrored left–right (a right hand, or a film flipped by the scanner).
    Mirrored,
    /// Shrunk to this fraction and placed off-centre on a field of the film's size,
    /// with a bright "L" marker and the edge of the smaller film.
    Shrunk(f64, Background),
    /// Bone dark, background bright.
    Inverted,
    /// All of the film's contrast in a narrow band of a 16-bit range.
    NarrowWindow,
    /// Under-exposed: dark and flat.
    UnderExposed,
    /// Over-exposed: bright and washed out.
    OverExposed,
    /// Already segmented and registered elsewhere: black outside the hand, cropped
    /// tight around it. The hand's mask is grown by a hundredth of the film's side
    /// first, as another program's cut keeps the skin: a mask that stops short of
    /// the skin (the U-Net's on some films) would black out the very tips the truth
    /// marks, which no reader could then find ([`cut_to_mask`] cuts without growing).
    AlreadySegmented,
}

impl Stress {
    /// Every transform of the suite, in report order.
    pub fn suite() -> Vec<Stress> {
        let mut v: Vec<Stress> = (0..12).map(|k| Stress::Turned(30 * k)).collect();
        v.extend([
            Stress::Mirrored,
            Stress::Shrunk(0.4, Background::Black),
            Stress::Shrunk(0.5, Background::Grey),
            Stress::Shrunk(0.3, Background::Noise),
            Stress::Inverted,
            Stress::NarrowWindow,
            Stress::UnderExposed,
            Stress::OverExposed,
            Stress::AlreadySegmented,
        ]);
        v
    }

    /// A short name for sheets (a film's caption holds it and the outcome).
    pub fn name(&self) -> String {
        match self {
            Stress::Turned(0) => "as filmed".into(),
            Stress::Turned(d) => format!("turned {d}°"),
            Stress::Mirrored => "mirrored".into(),
            Stress::Shrunk(s, b) => format!(
                "{:.0}% on {}",
                100.0 * s,
                match b {
                    Background::Black => "black",
                    Background::Grey => "grey",
                    Background::Noise => "noise",
                }
            ),
            Stress::Inverted => "inverted".into(),
            Stress::NarrowWindow => "16-bit narrow".into(),
            Stress::UnderExposed => "under-exposed".into(),
            Stress::OverExposed => "over-exposed".into(),
            Stress::AlreadySegmented => "segmented, cropped".into(),
        }
    }

    /// What the transform does, in words, for reports.
    pub fn describe(&self) -> String {
        match self {
            Stress::Turned(0) => "as filmed".into(),
            Stress::Turned(d) => format!("turned by {d}° onto a field that holds it"),
            Stress::Mirrored => "mirrored left-right".into(),
            Stress::Shrunk(..) => format!(
                "shrunk to {}, with an L marker and the film's edge",
                self.name()
            ),
            Stress::Inverted => "inverted polarity (bone dark)".into(),
            Stress::NarrowWindow => {
                "16-bit film in a narrow window (a quarter of the range)".into()
            }
            Stress::UnderExposed => "under-exposed (dark, flat)".into(),
            Stress::OverExposed => "over-exposed (bright, washed out)".into(),
            Stress::AlreadySegmented => {
                "already segmented: black around the hand, cropped tight".into()
            }
        }
    }

    /// The film as sent this way, with its key points carried along; `mask` is the
    /// film's hand mask (for [`Stress::AlreadySegmented`]), `seed` draws the noise.
    pub fn apply(
        &self,
        img: &GrayImage,
        mask: &Mask,
        k: &KeyPoints,
        seed: u64,
    ) -> (GrayImage, KeyPoints) {
        let w = img.width() as f64;
        let pixels = |f: &dyn Fn(f32) -> f32| {
            let v = img
                .as_slice()
                .iter()
                .map(|&p| f(p).clamp(0.0, 1.0))
                .collect();
            GrayImage::from_vec(img.width(), img.height(), v).expect("same size")
        };
        match *self {
            Stress::Turned(0) => (img.clone(), *k),
            Stress::Turned(deg) => {
                let (turned, map) = crate::ops::turn_onto_field(img, f64::from(deg).to_radians());
                (turned, k.mapped(&map))
            }
            Stress::Mirrored => {
                let map = Affine([-1.0, 0.0, w, 0.0, 1.0, 0.0]);
                warp(img, k, &map, img.width(), img.height())
            }
            Stress::Shrunk(s, background) => shrunk(img, k, s, background, seed),
            Stress::Inverted => (pixels(&|p| 1.0 - p), *k),
            // A 12-bit film stored in 16 bits whose window spans four times its range:
            // all of its contrast in a quarter of the values.
            Stress::NarrowWindow => (pixels(&|p| 0.4 + 0.25 * p), *k),
            Stress::UnderExposed => (pixels(&|p| 0.35 * p.powf(1.8)), *k),
            Stress::OverExposed => (pixels(&|p| 0.45 + 0.9 * p.powf(0.5)), *k),
            Stress::AlreadySegmented => segmented(img, mask, k),
        }
    }

    /// `mask` carried through this transform as [`Stress::apply`] moves the film
    /// (`k` and `seed` as given there): a change of values leaves it as it is; a
    /// change of place moves it, and what the transform adds (a canvas, a smaller
    /// film's bright edge, a marker) is left out of it — the mask's picture and its
    /// negative go through the same change, and a hand pixel is bright in the first
    /// and dark in the second.
    pub fn carry_mask(&self, mask: &Mask, k: &KeyPoints, seed: u64) -> Mask {
        if self.changes_values_only() {
            return mask.clone();
        }
        let picture = mask.to_image();
        let (moved, _) = self.apply(&picture, mask, k, seed);
        let (moved_negative, _) = self.apply(&picture.negative(), mask, k, seed);
        let mut hand = Mask::threshold(&moved, 0.75);
        hand.intersect(&Mask::threshold(&moved_negative.negative(), 0.75));
        crate::ops::largest_component(&hand, crate::ops::Connectivity::Eight)
    }

    /// Whether this transform changes the film's values only, every pixel staying
    /// where it was (inverted, narrow window, under- and over-exposed).
    pub fn changes_values_only(&self) -> bool {
        matches!(
            self,
            Stress::Inverted | Stress::NarrowWindow | Stress::UnderExposed | Stress::OverExposed
        )
    }
}

/// `img` mapped by `map` (image → output) onto a `cw`×`ch` field.
fn warp(
    img: &GrayImage,
    k: &KeyPoints,
    map: &Affine,
    cw: usize,
    ch: usize,
) -> (GrayImage, KeyPoints) {
    let inv = map.inverse().expect("a similarity is invertible");
    (warp_affine(img, &inv, cw, ch), k.mapped(map))
}

fn shrunk(
    img: &GrayImage,
    k: &KeyPoints,
    s: f64,
    background: Background,
    seed: u64,
) -> (GrayImage, KeyPoints) {
    let (w, h) = (img.width(), img.height());
    // Towards the top left, a tenth of the field in from its edges.
    let (ox, oy) = (0.1 * w as f64, 0.1 * h as f64);
    let map = Affine::similarity(s, 0.0, false, Point::new(ox, oy));
    let (small, k) = warp(img, k, &map, w, h);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (x1, y1) = (ox + s * w as f64, oy + s * h as f64);
    let inside = |x: usize, y: usize| {
        (x as f64) >= ox && (x as f64) < x1 && (y as f64) >= oy && (y as f64) < y1
    };
    let mut out = small;
    for y in 0..h {
        for x in 0..w {
            if inside(x, y) {
                continue;
            }
            let v = match background {
                Background::Black => 0.0,
                Background::Grey => 0.5,
                Background::Noise => 0.35 + 0.3 * rng.random::<f32>(),
            };
            out.set(x, y, v);
        }
    }
    // The smaller film's edge: a bright frame two percent of the field wide.
    let t = (0.004 * w.max(h) as f64).max(2.0);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64, y as f64);
            let near = |a: f64, lo: f64, hi: f64| a >= lo - t && a < hi + t;
            let on_edge = near(fx, ox, x1)
                && near(fy, oy, y1)
                && !(fx >= ox && fx < x1 && fy >= oy && fy < y1);
            if on_edge {
                out.set(x, y, 0.9);
            }
        }
    }
    // An "L" marker in the free corner at the bottom right.
    let (mx, my, m) = (0.8 * w as f64, 0.8 * h as f64, 0.08 * h as f64);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f64 - mx, y as f64 - my);
            let stem = (0.0..m * 0.2).contains(&fx) && (0.0..m).contains(&fy);
            let foot = (0.0..m * 0.6).contains(&fx) && (m * 0.8..m).contains(&fy);
            if stem || foot {
                out.set(x, y, 1.0);
            }
        }
    }
    (out, k)
}

/// [`Stress::AlreadySegmented`]: `mask` grown by a hundredth of the film's side,
/// then [`cut_to_mask`].
fn segmented(img: &GrayImage, mask: &Mask, k: &KeyPoints) -> (GrayImage, KeyPoints) {
    let grow = (img.width().max(img.height()) / 100).max(2);
    cut_to_mask(img, &crate::ops::dilate(mask, grow as f32), k)
}

/// `img` black outside `mask` and cropped to the mask's bounds with a margin of a
/// hundredth of the film's side, `k` carried into the crop; the film as it is
/// where the mask is empty.
pub fn cut_to_mask(img: &GrayImage, mask: &Mask, k: &KeyPoints) -> (GrayImage, KeyPoints) {
    let (w, h) = (img.width(), img.height());
    let Some([x0, y0, x1, y1]) = mask.bounds() else {
        return (img.clone(), *k);
    };
    let pad = (w.max(h) / 100).max(2);
    let (x0, y0) = (x0.saturating_sub(pad), y0.saturating_sub(pad));
    let (x1, y1) = ((x1 - 1 + pad).min(w - 1), (y1 - 1 + pad).min(h - 1));
    let (cw, ch) = (x1 - x0 + 1, y1 - y0 + 1);
    let mut out = GrayImage::new(cw, ch);
    for y in 0..ch {
        for x in 0..cw {
            if mask.get(x + x0, y + y0) {
                out.set(x, y, img.get(x + x0, y + y0));
            }
        }
    }
    let shift = Affine::similarity(1.0, 0.0, false, Point::new(-(x0 as f64), -(y0 as f64)));
    (out, k.mapped(&shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bright bar from (20, 10) to (20, 50) on a 60×70 film, its mask (460 pixels)
    /// and key points on it.
    fn bar() -> (GrayImage, Mask, KeyPoints) {
        let mut img = GrayImage::new(60, 70);
        let mut mask = Mask::new(60, 70);
        for y in 8..54 {
            for x in 16..26 {
                img.set(x, y, 0.8);
                mask.set(x, y, true);
            }
        }
        let k = KeyPoints {
            fingertip: Point::new(21.0, 10.5),
            thumb: Point::new(24.5, 30.0),
            capitate: Point::new(21.0, 50.5),
        };
        (img, mask, k)
    }

    /// The key points sit on the bar, so after any transform they must still sit on
    /// bright pixels.
    #[test]
    fn key_points_travel_with_the_film() {
        let (img, mask, k) = bar();
        for (i, s) in Stress::suite().into_iter().enumerate() {
            let (out, kt) = s.apply(&img, &mask, &k, i as u64);
            let bright_or_dark = matches!(s, Stress::Inverted);
            for p in [kt.fingertip, kt.thumb, kt.capitate] {
                let (x, y) = (p.x.floor() as usize, p.y.floor() as usize);
                assert!(
                    x < out.width() && y < out.height(),
                    "{}: {p:?} off the film",
                    s.name()
                );
                let v = out.get(x, y);
                let hand = if bright_or_dark {
                    v < 0.5
                } else {
                    v > out.get(0, out.height() - 1)
                };
                assert!(hand, "{}: {p:?} reads {v}", s.name());
            }
            // Distances are kept by every transform but the shrinking.
            let span = kt.span();
            let expected = match s {
                Stress::Shrunk(f, _) => 40.0 * f,
                _ => 40.0,
            };
            assert!((span - expected).abs() < 1e-6, "{}: span {span}", s.name());
        }
        assert_eq!(Stress::suite().len(), 21);
    }

    /// The carried mask covers the bar where the film put it, and nothing the
    /// transform added: not the canvas, the smaller film's bright edge or the marker.
    #[test]
    fn a_carried_mask_is_the_hand_alone() {
        let (_, mask, k) = bar();
        for (i, s) in Stress::suite().into_iter().enumerate() {
            let carried = s.carry_mask(&mask, &k, i as u64);
            let (moved, kt) = s.apply(&mask.to_image(), &mask, &k, i as u64);
            let expected = match s {
                Stress::Shrunk(f, _) => 460.0 * f * f,
                _ => 460.0,
            };
            let n = carried.count() as f64;
            assert!(
                (0.6 * expected..=1.3 * expected).contains(&n),
                "{}: {n} pixels, about {expected} expected",
                s.name()
            );
            let mid = (kt.fingertip + kt.capitate) * 0.5;
            assert!(carried.get(mid.x as usize, mid.y as usize), "{}", s.name());
            // Where the film moved, every pixel of the carried mask is bright in the
            // moved picture of the mask (a change of values keeps the mask as it is).
            for y in (0..carried.height()).filter(|_| !s.changes_values_only()) {
                for x in 0..carried.width() {
                    if carried.get(x, y) {
                        assert!(moved.get(x, y) > 0.75, "{} at ({x}, {y})", s.name());
                    }
                }
            }
        }
    }
}
