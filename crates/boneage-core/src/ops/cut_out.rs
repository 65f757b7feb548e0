//! A hand already cut out by another program: exact black around one hand-shaped
//! region (a film segmented, or segmented and registered, elsewhere).

use crate::image::{GrayImage, Mask};

use super::{Connectivity, component_sizes, fill_holes, largest_component, segment::solidity};

/// The share of the image that must be exact black for it to count as cut out: less
/// is a hand with a little black around it, more is not a hand.
pub const CUT_OUT_BLACK: std::ops::RangeInclusive<f64> = 0.15..=0.85;

/// The least share of the pixels that are not black that the largest region must
/// hold: a cut-out shows one region, where a film whose background is clipped to
/// black shows markers, labels and noise besides the hand.
pub const CUT_OUT_ONE_REGION: f64 = 0.98;

/// The most of the image's border that region may touch: a hand cut out touches it
/// only where it runs off the film (the forearm; on a tight crop a fingertip too),
/// where the lit part of a film whose background is clipped to black runs along the
/// film's edges. On the 92 cut-outs of the dev look at most 0.13 (Python prototype);
/// on the development films, hands alone on black 0–0.19, ragged lit parts of films
/// clipped to black 0.32–0.94.
pub const CUT_OUT_BORDER: f64 = 0.25;

/// The most that region may fill of its convex hull ([`solidity`]): a hand with its
/// fingers fills 0.5–0.8 of it, a film or a collimation field (at any rotation)
/// nearly all. On the stress suite's 92 cut-outs of held-out development films
/// 0.52–0.81.
pub const CUT_OUT_SOLIDITY: f64 = 0.85;

/// What [`cut_out`] measures of an image.
#[derive(Clone, Debug)]
pub struct CutOutMeasures {
    /// The share of the image that is exact black.
    pub black: f64,
    /// The share of the rest that its largest region (eight-connected) holds.
    pub one_region: f64,
    /// That region's area, holes filled, over its convex hull's.
    pub solidity: f64,
    /// The share of the image's border pixels that region covers.
    pub border: f64,
    /// That region, holes filled.
    pub region: Mask,
}

impl CutOutMeasures {
    /// Measures `img`; `None` where nothing or everything is black.
    pub fn of(img: &GrayImage) -> Option<CutOutMeasures> {
        let (w, h) = (img.width() as f64, img.height() as f64);
        let lit = Mask::threshold(img, 0.0);
        let sizes = component_sizes(&lit, Connectivity::Eight);
        let rest: usize = sizes.iter().sum();
        let largest = *sizes.first()?;
        let region = fill_holes(&largest_component(&lit, Connectivity::Eight));
        // Each edge's own row or column, weighted by its length.
        let [top, right, bottom, left] = region.edge_contact(0.0);
        Some(CutOutMeasures {
            border: ((top + bottom) * w + (left + right) * h) / (2.0 * (w + h)),
            black: 1.0 - rest as f64 / (w * h),
            one_region: largest as f64 / rest as f64,
            solidity: solidity(&region),
            region,
        })
    }

    /// Whether these are a cut-out's: [`CUT_OUT_BLACK`], [`CUT_OUT_ONE_REGION`],
    /// [`CUT_OUT_BORDER`], [`CUT_OUT_SOLIDITY`].
    pub fn is_cut_out(&self) -> bool {
        CUT_OUT_BLACK.contains(&self.black)
            && self.one_region >= CUT_OUT_ONE_REGION
            && self.border <= CUT_OUT_BORDER
            && self.solidity <= CUT_OUT_SOLIDITY
    }
}

/// The hand of a film that another program has already cut out, as its mask: the
/// one region that is not exact black (its holes filled), where the image is
/// [`CUT_OUT_BLACK`] black, that region holds [`CUT_OUT_ONE_REGION`] of the rest,
/// touches little of the image's border ([`CUT_OUT_BORDER`]) and is shaped like a
/// hand ([`CUT_OUT_SOLIDITY`]); `None` for any other image.
pub fn cut_out(img: &GrayImage) -> Option<Mask> {
    // Most films have little exact black: counted first, it rules them out cheaply.
    let total = (img.width() * img.height()).max(1) as f64;
    let black = img.as_slice().iter().filter(|&&v| v <= 0.0).count() as f64 / total;
    if !CUT_OUT_BLACK.contains(&black) {
        return None;
    }
    CutOutMeasures::of(img)
        .filter(CutOutMeasures::is_cut_out)
        .map(|m| m.region)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Point;
    use crate::ops::fill_polygon;

    /// A palm with four fingers and a thumb, lit at `level` (a gentle ramp) on black.
    fn hand(level: f32) -> GrayImage {
        let (w, h) = (120, 160);
        let poly = |pts: &[(f64, f64)]| {
            let pts: Vec<Point> = pts.iter().map(|&(x, y)| Point::new(x, y)).collect();
            fill_polygon(w, h, &pts)
        };
        let mut m = poly(&[(30.0, 80.0), (95.0, 80.0), (90.0, 150.0), (35.0, 150.0)]);
        for (i, x) in [32.0, 46.0, 60.0, 74.0].into_iter().enumerate() {
            let top = 15.0 + 5.0 * i as f64;
            m.union(&poly(&[
                (x, top),
                (x + 9.0, top),
                (x + 9.0, 82.0),
                (x, 82.0),
            ]));
        }
        m.union(&poly(&[
            (92.0, 90.0),
            (112.0, 60.0),
            (118.0, 66.0),
            (95.0, 110.0),
        ]));
        let mut img = GrayImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                if m.get(x, y) {
                    img.set(x, y, level + 0.001 * (x + y) as f32);
                }
            }
        }
        img
    }

    #[test]
    fn a_hand_on_exact_black_is_its_own_mask() {
        let img = hand(0.3);
        let m = cut_out(&img).expect("a cut-out");
        for y in 0..img.height() {
            for x in 0..img.width() {
                assert_eq!(m.get(x, y), img.get(x, y) > 0.0, "({x}, {y})");
            }
        }
    }

    #[test]
    fn a_film_a_marker_or_a_dark_background_is_not_a_cut_out() {
        // A film (a rectangle) on black: it fills its hull.
        let mut film = GrayImage::new(120, 160);
        for y in 20..140 {
            for x in 20..100 {
                film.set(x, y, 0.2);
            }
        }
        assert!(cut_out(&film).is_none());
        // A hand with a marker beside it: two regions.
        let mut marked = hand(0.3);
        for y in 120..150 {
            for x in 2..22 {
                marked.set(x, y, 0.9);
            }
        }
        assert!(cut_out(&marked).is_none());
        // A hand joined to lit film along the image's edges (a film whose background
        // is clipped to black in places): one region, but along the border.
        let mut clipped = hand(0.3);
        for y in 0..160 {
            for x in 0..120 {
                if x < 4 || y < 4 || (y >= 150 && x < 60) || (x < 32 && (80..84).contains(&y)) {
                    clipped.set(x, y, 0.05);
                }
            }
        }
        let m = CutOutMeasures::of(&clipped).unwrap();
        assert!(
            m.one_region >= CUT_OUT_ONE_REGION && m.border > CUT_OUT_BORDER,
            "{m:?}"
        );
        assert!(cut_out(&clipped).is_none());
        // A hand on a background that is dark but not black.
        let mut dim = hand(0.3);
        for v in dim.as_mut_slice() {
            *v = v.max(0.01);
        }
        assert!(cut_out(&dim).is_none());
    }
}
