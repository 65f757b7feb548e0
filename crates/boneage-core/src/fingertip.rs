//! Whether a fingertip lies where the finger ends, read from the film's pixels.
//!
//! A hand mask can stop short of a faint fingertip (a small hand, a fingertip near the
//! film's edge), and a key-point net can stop with it: both then put the fingertip on
//! the distal phalanx and agree. The film itself says otherwise: beyond a true
//! fingertip the film falls to background within a few per cent of the hand; beyond
//! a tip placed short, it stays as bright as the finger. [`falloff`] measures that
//! fall along the hand's axis, independently of the mask's outline and of the nets.

use crate::geometry::Point;
use crate::image::{GrayImage, Mask};
use crate::keypoints::KeyPoints;
use crate::metrics::percentile;

/// Where along the capitate→fingertip axis [`falloff`] reads the finger's level, in
/// fingertip–capitate spans from the fingertip.
pub const INSIDE: (f64, f64) = (-0.06, -0.02);
/// Where it reads the level just beyond the tip.
pub const BEYOND: (f64, f64) = (0.02, 0.05);
/// How far beyond the tip it looks for the background.
pub const FARTHEST: f64 = 0.15;
/// Which quantile of the levels beyond the tip is taken for the background.
pub const BACKGROUND_QUANTILE: f64 = 0.2;
/// Levels this close to 0 are black, not film: left out of the background.
pub const BLACK: f64 = 0.01;
/// How far either side of the hand's outline [`outline_levels`] reads the background, in
/// spans.
pub const EDGE_WIDTH: f64 = 0.01;
/// Half the width of the strip the profile averages across the axis, in spans.
pub const HALF_WIDTH: f64 = 0.015;
/// The profile's step along the axis, in spans.
pub const STEP: f64 = 0.005;

/// The film's level (times `sign`) at `s` fingertip–capitate spans beyond the
/// fingertip along the capitate→fingertip axis, averaged across the axis over
/// [`HALF_WIDTH`] either side; `None` where the strip leaves the image.
pub fn at(img: &GrayImage, k: &KeyPoints, sign: f32, s: f64) -> Option<f64> {
    level(img, k.capitate, k.fingertip, k.span(), sign, s)
}

/// The film's level (times `sign`) at `s` spans beyond `tip` along the axis from
/// `base` through `tip`, averaged across the axis over [`HALF_WIDTH`] spans either
/// side; `None` where the strip leaves the image.
fn level(img: &GrayImage, base: Point, tip: Point, span: f64, sign: f32, s: f64) -> Option<f64> {
    let span = span.max(1.0);
    let axis = (tip - base) * (1.0 / (tip - base).norm().max(1e-9));
    let across = Point::new(-axis.y, axis.x);
    let centre = tip + axis * (s * span);
    let n = (HALF_WIDTH * span).ceil().max(1.0) as i32;
    let mut sum = 0.0;
    for i in -n..=n {
        let p = centre + across * (HALF_WIDTH * span * f64::from(i) / f64::from(n));
        let (x, y) = (p.x.round(), p.y.round());
        if x < 0.0 || y < 0.0 || x >= img.width() as f64 || y >= img.height() as f64 {
            return None;
        }
        sum += f64::from(sign * img.get(x as usize, y as usize));
    }
    Some(sum / f64::from(2 * n + 1))
}

/// The film's median levels just inside and just outside `hand`'s outline, within
/// `width` pixels of it (read every `width / 2` pixels): the hand's edge and the
/// background around the hand. `None` without an outline or with sizes that differ.
pub fn outline_levels(img: &GrayImage, hand: &Mask, width: usize) -> Option<(f64, f64)> {
    let (w, h) = (img.width(), img.height());
    if (w, h) != (hand.width(), hand.height()) {
        return None;
    }
    let d = width.max(1);
    let [mut inside, mut outside] = [Vec::new(), Vec::new()];
    for y in (d..h.saturating_sub(d)).step_by(d.div_ceil(2)) {
        for x in (d..w.saturating_sub(d)).step_by(d.div_ceil(2)) {
            let here = hand.get(x, y);
            let across = [(x - d, y), (x + d, y), (x, y - d), (x, y + d)]
                .into_iter()
                .any(|(u, v)| hand.get(u, v) != here);
            if across {
                let v = f64::from(img.get(x, y));
                if here { &mut inside } else { &mut outside }.push(v);
            }
        }
    }
    Some((percentile(&inside, 0.5)?, percentile(&outside, 0.5)?))
}

/// How far the film has fallen just beyond `k.fingertip`, as a share of its fall
/// from the finger to the background: about 1 at a fingertip on the skin line with
/// background beyond, about 0 at one placed on the finger short of its end. The
/// finger's level and the level beyond the tip are medians along the hand's axis
/// ([`INSIDE`], [`BEYOND`]: a thin bright line, a film's edge, moves them little),
/// read the right way round on an inverted film (the hand's edge darker than the
/// film around it, [`outline_levels`]). The background is
/// the brighter of two readings: the [`BACKGROUND_QUANTILE`] quantile of the
/// levels from the tip to [`FARTHEST`] beyond it, black left out (a canvas around
/// the film, a turned film's corners), and the median level around the hand's
/// outline ([`outline_levels`], within [`EDGE_WIDTH`]): a dark band some way
/// beyond the fingertip (a collimator's edge) is not the background. `None` where
/// the profile leaves the image near the tip or the finger is no brighter than the
/// background (nothing to judge by).
pub fn falloff(img: &GrayImage, hand: &Mask, k: &KeyPoints) -> Option<f64> {
    match profile(img, hand, k.capitate, k.fingertip, k.span(), true)? {
        Profile { fall, .. } if fall.is_nan() || fall <= 1e-3 => None,
        Profile {
            inside,
            beyond,
            fall,
        } => Some((inside - beyond) / fall),
    }
}

/// How far the film has fallen just beyond `k.thumb`, read as [`falloff`] reads the
/// fingertip, along the axis from the capitate through the thumb tip (distances in
/// fingertip–capitate spans): about 1 at a thumb tip on the skin line with background
/// beyond it, about 0 at one placed on the thumb short of its end — and 0 at one
/// placed beyond the thumb, on the background, where the film is no brighter just
/// inside the tip than around the hand (a flat field as grey as the soft tissue, which
/// a net taught on cut-outs can take for skin). `None` only where the profile leaves
/// the image near the tip (a thumb cut off by the film's edge) or the hand has no
/// outline to read the background by.
pub fn thumb_falloff(img: &GrayImage, hand: &Mask, k: &KeyPoints) -> Option<f64> {
    let Profile {
        inside,
        beyond,
        fall,
    } = profile(img, hand, k.capitate, k.thumb, k.span(), false)?;
    Some(if fall.is_nan() || fall <= 1e-3 {
        0.0
    } else {
        (inside - beyond) / fall
    })
}

/// The levels [`falloff`] and [`thumb_falloff`] compare along a digit's axis.
struct Profile {
    /// Just inside the tip ([`INSIDE`]).
    inside: f64,
    /// Just beyond it ([`BEYOND`]).
    beyond: f64,
    /// From `inside` to the background.
    fall: f64,
}

/// The [`Profile`] along the axis from `base` through `tip`, distances in `span`s;
/// the background the brighter of the levels beyond the tip and those around the
/// hand's outline where `beyond_too`, else those around the outline alone. `None`
/// where the profile leaves the image or the hand has no outline.
fn profile(
    img: &GrayImage,
    hand: &Mask,
    base: Point,
    tip: Point,
    span: f64,
    beyond_too: bool,
) -> Option<Profile> {
    if span < 1.0 {
        return None;
    }
    // Bone white or bone dark: the hand's edge against the film around it.
    let width = (EDGE_WIDTH * span).round().max(1.0) as usize;
    let (edge, around) = outline_levels(img, hand, width)?;
    let sign: f32 = if edge >= around { 1.0 } else { -1.0 };
    let at = |s: f64| level(img, base, tip, span, sign, s);
    let levels = |(a, b): (f64, f64)| -> Option<Vec<f64>> {
        let n = ((b - a) / STEP).round() as usize;
        (0..=n).map(|i| at(a + STEP * i as f64)).collect()
    };
    let inside = percentile(&levels(INSIDE)?, 0.5)?;
    let beyond = percentile(&levels(BEYOND)?, 0.5)?;
    let out: Vec<f64> = (0..=(FARTHEST / STEP).round() as usize)
        .map_while(|i| at(STEP * i as f64))
        .filter(|v| v.abs() > BLACK)
        .collect();
    let around = f64::from(sign) * around;
    let background = percentile(&out, BACKGROUND_QUANTILE)
        .filter(|_| beyond_too)
        .map_or(around, |b| b.max(around));
    Some(Profile {
        inside,
        beyond,
        fall: inside - background,
    })
}

/// How far [`depth`] looks for the hand's outline, in spans: a tip deeper than this
/// reads as this deep.
pub const DEPTH_REACH: f64 = 0.3;

/// How deep `tip` lies inside `hand`: the distance from it to the nearest pixel
/// outside the mask (the image's border counts as outside: a digit cut off by the
/// film's edge ends there), in `span`s, 0 for a tip outside the mask, at most
/// [`DEPTH_REACH`]. A tip placed where a digit ends lies on or near the outline; one
/// placed on the digit's bones, short of its end, lies a finger's half-width or more
/// inside it.
pub fn depth(hand: &Mask, tip: Point, span: f64) -> f64 {
    let span = span.max(1.0);
    let (w, h) = (hand.width() as i64, hand.height() as i64);
    let (x0, y0) = (tip.x.floor() as i64, tip.y.floor() as i64);
    if x0 < 0 || y0 < 0 || x0 >= w || y0 >= h || !hand.get(x0 as usize, y0 as usize) {
        return 0.0;
    }
    let reach = (DEPTH_REACH * span).ceil() as i64;
    // Distances from the tip to pixel centres; the border as the first pixel beyond it.
    let d2 = |x: i64, y: i64| {
        let (dx, dy) = (x as f64 + 0.5 - tip.x, y as f64 + 0.5 - tip.y);
        dx * dx + dy * dy
    };
    let mut best = (reach as f64).powi(2);
    for y in (y0 - reach).max(-1)..=(y0 + reach).min(h) {
        for x in (x0 - reach).max(-1)..=(x0 + reach).min(w) {
            let outside = x < 0 || y < 0 || x >= w || y >= h || !hand.get(x as usize, y as usize);
            if outside {
                best = best.min(d2(x, y));
            }
        }
    }
    (best.sqrt() / span).min(DEPTH_REACH)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bright vertical finger ending at y = 40 on a dark film, capitate below.
    fn finger() -> GrayImage {
        let mut img = GrayImage::filled(100, 200, 0.2);
        for y in 40..200 {
            for x in 40..60 {
                img.set(x, y, 0.6);
            }
        }
        img
    }

    fn at(tip_y: f64) -> KeyPoints {
        KeyPoints {
            fingertip: Point::new(50.0, tip_y),
            thumb: Point::new(90.0, 120.0),
            capitate: Point::new(50.0, 180.0),
        }
    }

    /// The finger's mask (the whole finger, to y = 40).
    fn hand() -> Mask {
        let mut hand = Mask::new(100, 200);
        for y in 40..200 {
            for x in 40..60 {
                hand.set(x, y, true);
            }
        }
        hand
    }

    #[test]
    fn a_tip_on_the_skin_line_falls_off_and_one_short_of_it_does_not() {
        let img = finger();
        let right = falloff(&img, &hand(), &at(41.0)).unwrap();
        let short = falloff(&img, &hand(), &at(52.0)).unwrap();
        assert!(right > 0.9, "{right}");
        assert!(short < 0.1, "{short}");
    }

    #[test]
    fn a_dark_band_beyond_the_tip_does_not_change_the_reading() {
        // A collimator's dark band some way beyond the fingertip.
        let mut img = finger();
        for y in 10..20 {
            for x in 0..100 {
                img.set(x, y, 0.0);
            }
        }
        let right = falloff(&img, &hand(), &at(41.0)).unwrap();
        assert!(right > 0.9, "{right}");
    }

    #[test]
    fn an_inverted_film_reads_the_same_way_round() {
        let mut img = finger();
        for v in img.as_mut_slice() {
            *v = 1.0 - *v;
        }
        assert!(falloff(&img, &hand(), &at(41.0)).unwrap() > 0.9);
        assert!(falloff(&img, &hand(), &at(52.0)).unwrap() < 0.1);
    }

    /// A finger as [`finger`] and a thumb running right from (60, 120) to x = 80.
    fn thumb_film() -> (GrayImage, Mask) {
        let mut img = finger();
        let mut hand = hand();
        for y in 112..128 {
            for x in 60..80 {
                img.set(x, y, 0.6);
                hand.set(x, y, true);
            }
        }
        (img, hand)
    }

    fn thumb_at(x: f64) -> KeyPoints {
        // The capitate level with the thumb, so the profile runs along the thumb.
        KeyPoints {
            fingertip: Point::new(50.0, 41.0),
            thumb: Point::new(x, 120.0),
            capitate: Point::new(50.0, 120.0),
        }
    }

    #[test]
    fn a_thumb_tip_on_the_skin_line_falls_off_and_one_beyond_or_short_of_it_does_not() {
        let (img, hand) = thumb_film();
        let right = thumb_falloff(&img, &hand, &thumb_at(79.0)).unwrap();
        let short = thumb_falloff(&img, &hand, &thumb_at(70.0)).unwrap();
        let beyond = thumb_falloff(&img, &hand, &thumb_at(88.0)).unwrap();
        assert!(right > 0.9, "{right}");
        assert!(short < 0.1, "{short}");
        // On the background beyond the thumb: no fall at all, not "nothing to judge".
        assert!(beyond < 0.1, "{beyond}");
    }

    #[test]
    fn a_thumb_cut_off_by_the_films_edge_gives_no_reading() {
        let (img, hand) = thumb_film();
        assert_eq!(thumb_falloff(&img, &hand, &thumb_at(99.0)), None);
    }

    #[test]
    fn a_tip_on_the_films_edge_gives_no_reading() {
        assert_eq!(falloff(&finger(), &hand(), &at(1.0)), None);
    }

    #[test]
    fn a_tip_on_the_outline_lies_shallow_and_one_on_the_digit_lies_deep() {
        let (_, hand) = thumb_film();
        let span = 79.0;
        // The thumb runs to x = 80 and is 16 pixels wide (y 112..128).
        // Distances run to the centres of the pixels outside (tips at pixel centres).
        let near = |p: Point, d: f64| (depth(&hand, p, span) - d / span).abs() < 1e-9;
        assert!(near(Point::new(79.5, 120.5), 1.0));
        assert!(near(Point::new(70.5, 120.5), 8.0));
        // Outside the hand, and on a digit the film's edge cuts off.
        assert_eq!(depth(&hand, Point::new(90.0, 120.0), span), 0.0);
        assert!(near(Point::new(50.5, 198.5), 2.0));
        // Deep in a large hand: capped at the reach.
        let mut all = Mask::new(100, 200);
        for y in 0..200 {
            for x in 0..100 {
                all.set(x, y, true);
            }
        }
        assert_eq!(depth(&all, Point::new(50.0, 100.0), 100.0), DEPTH_REACH);
    }
}
