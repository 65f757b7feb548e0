//! Key-point candidates from the shape of a hand mask alone.
//!
//! The palm is the mask's largest inscribed disk (centre `c`, radius `r`, from the
//! distance transform). Cutting a disk of about 1.5 r around `c` out of the mask leaves
//! the digits and the forearm as separate pieces. The forearm is the piece on the
//! image border (asked to, [`GeometryParams::forearm_inside`], or else, where one piece
//! points against another, the one of the two beyond which the most digits stand: a
//! forearm ending inside the image); the digits are the others. Ordered by angle
//! around the hand axis, the thumb is the outer digit that stands furthest from the
//! others, the middle finger the second finger from the thumb side (or, with fingers
//! merged, the farthest). The capitate lies on the middle finger's axis, proximal to the
//! palm centre, at a fixed ratio of the fingertip–palm distance calibrated on
//! registered radiographs (see [`GeometryParams`]).
//!
//! These are *candidates* for a person to review, not measurements: merged fingers,
//! a flexed thumb or a mask that includes the forearm up to the border all move them.

use crate::geometry::{Point, mean_direction};
use crate::image::Mask;
use crate::keypoints::KeyPoints;
use crate::ops::{Connectivity, distance_transform_sq, label_components};

/// Ratios that place the capitate from the fingertip and the palm centre.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeometryParams {
    /// Capitate distance from the fingertip along the fingertip→palm-centre axis, as a
    /// multiple of the fingertip–palm-centre distance.
    pub capitate_along: f64,
    /// Capitate offset across that axis toward the thumb, as a multiple of the palm
    /// radius.
    pub capitate_across: f64,
    /// Radius of the disk cut around the palm centre, as a multiple of the palm radius.
    pub cut_radius: f64,
    /// Whether, without a forearm on the image border, two pieces that point against
    /// each other ([`FOREARM_OPPOSED_DEG`]) are read as a forearm that ends inside the
    /// image (a film photographed or scanned on a larger field, the forearm ending at
    /// the film's edge) and the digits beyond it: the one of the two about which the
    /// profile finds strictly more digits is the forearm. Off, the hand's axis there is
    /// the mean direction of the pieces, which says nothing when two point against
    /// each other. Off by default: read so on every film, the front end answered 16
    /// more of the 1,145 labelled films, 3 of them wrongly, and changed 11 answers;
    /// it reads so only films refused every other way, where more vouches for the
    /// answer (`boneage_nn::pipeline::Pipeline::forearm_inside`; README, "A forearm
    /// that ends inside the image").
    pub forearm_inside: bool,
}

impl Default for GeometryParams {
    fn default() -> Self {
        // Calibrated on the 40 registered RSNA references, where the capitate's place
        // is known (medians over 38 usable masks; median absolute deviation of
        // `capitate_along` 0.05): `cargo run --release -p boneage-nn --example
        // calibrate_geometry -- ../shared/data/rsna/registered UNET.safetensors`.
        Self {
            capitate_along: 1.21,
            capitate_across: -0.14,
            cut_radius: 1.5,
            forearm_inside: false,
        }
    }
}

/// What the geometry found, for review and for the reviewer's trust.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskGeometry {
    /// The three candidate points, in mask pixels.
    pub keypoints: KeyPoints,
    /// Palm centre (largest inscribed disk).
    pub palm_centre: Point,
    /// Palm radius.
    pub palm_radius: f64,
    /// Digits found as separate pieces (5 when every finger is apart).
    pub digits: usize,
    /// Their tips, ordered by angle about the palm centre, in mask pixels.
    pub tips: Vec<Point>,
    /// The key points with the thumb taken at the other outer digit (the hand read
    /// as mirrored), for a second opinion that puts the thumb there; `None` with
    /// fewer than two digits.
    pub other_side: Option<KeyPoints>,
}

impl MaskGeometry {
    /// The digit tip nearest `p` (the first of equally near ones), with its index in
    /// [`MaskGeometry::tips`]; `None` without digits.
    pub fn nearest_tip(&self, p: Point) -> Option<(usize, Point)> {
        self.tips
            .iter()
            .copied()
            .enumerate()
            .min_by(|a, b| a.1.dist(p).total_cmp(&b.1.dist(p)))
    }
}

/// A piece of the mask outside the palm disk.
struct Piece {
    area: usize,
    border: usize,
    centroid: Point,
    tip: Point,
}

/// Key-point candidates from a hand mask; `None` when the mask is empty or has no
/// piece that can be a finger.
pub fn keypoints_from_mask(mask: &Mask, params: &GeometryParams) -> Option<MaskGeometry> {
    let (w, h) = (mask.width(), mask.height());
    if mask.count() == 0 {
        return None;
    }
    // Distance to the nearest background pixel, the image border counting as
    // background (a wrist cut by the film edge is still an edge of the hand).
    let mut background = mask.inverted();
    for x in 0..w {
        background.set(x, 0, true);
        background.set(x, h - 1, true);
    }
    for y in 0..h {
        background.set(0, y, true);
        background.set(w - 1, y, true);
    }
    let d2 = distance_transform_sq(&background);
    let (best, r2) = d2
        .iter()
        .enumerate()
        .filter(|(i, _)| mask.as_slice()[*i] != 0)
        .fold(
            (0usize, -1f32),
            |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
        );
    let r = f64::from(r2.max(1.0)).sqrt();
    let c = Point::new((best % w) as f64 + 0.5, (best / w) as f64 + 0.5);

    let pieces = |cut: f64| -> Vec<Piece> {
        let mut outside = mask.clone();
        let rr = cut * cut;
        for y in 0..h {
            for x in 0..w {
                let p = Point::new(x as f64 + 0.5, y as f64 + 0.5);
                if (p - c).dot(p - c) <= rr {
                    outside.set(x, y, false);
                }
            }
        }
        let (labels, count) = label_components(&outside, Connectivity::Eight);
        let mut acc: Vec<(usize, usize, f64, f64, Point, f64)> =
            vec![(0, 0, 0.0, 0.0, c, -1.0); count as usize];
        for y in 0..h {
            for x in 0..w {
                let l = labels[y * w + x];
                if l == 0 {
                    continue;
                }
                let a = &mut acc[l as usize - 1];
                let p = Point::new(x as f64 + 0.5, y as f64 + 0.5);
                a.0 += 1;
                if x == 0 || y == 0 || x == w - 1 || y == h - 1 {
                    a.1 += 1;
                }
                a.2 += p.x;
                a.3 += p.y;
                let d = p.dist(c);
                if d > a.5 {
                    a.4 = p;
                    a.5 = d;
                }
            }
        }
        acc.into_iter()
            .filter(|a| a.0 as f64 >= 0.1 * r * r)
            .map(|a| Piece {
                area: a.0,
                border: a.1,
                centroid: Point::new(a.2 / a.0 as f64, a.3 / a.0 as f64),
                tip: a.4,
            })
            .collect()
    };
    // The forearm: at the palm cut, the piece with the longest stretch on the image
    // border (for one that ends short of it, see the hand's axis below).
    let base = pieces(params.cut_radius * r);
    if base.is_empty() {
        return None;
    }
    let border_forearm = (0..base.len())
        .filter(|&i| base[i].border as f64 >= 0.2 * r)
        .max_by_key(|&i| (base[i].border, base[i].area));
    // Digit tips: peaks of the hand's polar profile around the palm centre (the
    // farthest mask pixel in each direction). A finger is a peak that stands at least
    // a quarter palm radius above the webs on both sides; the forearm runs off the
    // border or points away from the fingers.
    const BINS: usize = 720;
    let digits_about = |axis: Point| -> Vec<(f64, Point)> {
        let angle_of = |v: Point| v.angle_from(axis);
        let mut profile = vec![(0f64, c, false); BINS];
        for y in 0..h {
            for x in 0..w {
                if !mask.get(x, y) {
                    continue;
                }
                let p = Point::new(x as f64 + 0.5, y as f64 + 0.5);
                let v = p - c;
                let d = v.norm();
                let b = (((angle_of(v) + std::f64::consts::PI) / std::f64::consts::TAU
                    * BINS as f64) as usize)
                    .min(BINS - 1);
                if d > profile[b].0 {
                    let on_border = x == 0 || y == 0 || x == w - 1 || y == h - 1;
                    profile[b] = (d, p, on_border);
                }
            }
        }
        let at = |i: isize| profile[i.rem_euclid(BINS as isize) as usize];
        let window = (BINS / 72) as isize; // 5°
        let mut digits: Vec<(f64, Point)> = Vec::new();
        for i in 0..BINS as isize {
            let (d, p, on_border) = at(i);
            if d < 1.1 * r || (-window..=window).any(|k| at(i + k).0 > d) {
                continue;
            }
            // Plateaus count once: the first bin of equal maxima.
            if (1..=window).any(|k| at(i - k).0 == d) {
                continue;
            }
            // Lowest point on each side before the profile rises above this peak
            // (searched up to 90°).
            let side = |dir: isize| {
                let mut low = d;
                for k in 1..=(BINS as isize / 4) {
                    let v = at(i + dir * k).0;
                    if v > d {
                        break;
                    }
                    low = low.min(v);
                }
                low
            };
            let prominence = d - side(-1).max(side(1));
            let angle = angle_of(p - c);
            // A digit cut by the border still counts; the forearm runs off it sideways.
            if prominence >= 0.25 * r && angle.abs() < 1.9 && !(on_border && angle.abs() >= 1.3) {
                digits.push((angle, p));
            }
        }
        digits
    };
    // The hand's axis: from the forearm to the palm centre. Without a forearm on the
    // border (a hand cut short of the wrist by it, or a forearm that ends inside the
    // image), the mean direction of the pieces — unless two pieces point against each
    // other ([`opposed_pieces`]): digits fan over less than that, so one of them is a
    // forearm that ends inside the image (a film photographed or scanned on a larger
    // field), and the mean of the two says nothing. Then the forearm is the one about
    // which the profile finds the most digits, where one does.
    let reading_about = |axis: Point| (axis, digits_about(axis));
    let from_piece = |i: usize| (c - base[i].centroid).unit();
    let (axis, mut digits) = match border_forearm {
        Some(i) => reading_about(from_piece(i)),
        None => {
            let mut readings: Vec<(Point, Vec<(f64, Point)>)> = if params.forearm_inside {
                opposed_pieces(&base, c)
                    .into_iter()
                    .map(|i| reading_about(from_piece(i)))
                    .collect()
            } else {
                Vec::new()
            };
            readings.sort_by_key(|(_, d)| std::cmp::Reverse(d.len()));
            match readings.as_slice() {
                [first, rest @ ..]
                    if !first.1.is_empty() && rest.iter().all(|o| o.1.len() < first.1.len()) =>
                {
                    readings.swap_remove(0)
                }
                _ => reading_about(mean_direction(c, base.iter().map(|p| p.tip))),
            }
        }
    };
    if digits.is_empty() {
        return None;
    }
    // At most five digits: the farthest.
    digits.sort_by(|a, b| b.1.dist(c).total_cmp(&a.1.dist(c)));
    digits.truncate(5);
    digits.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = digits.len();
    let along = |t: Point| (t - c).dot(axis) / r;
    // The thumb: the outer digit standing further from its neighbour (the web between
    // thumb and index is the widest); with fingers missed, also the shorter one along
    // the hand axis.
    let (thumb_idx, fingers): (usize, Vec<usize>) = if n >= 2 {
        let gap_lo = digits[1].0 - digits[0].0;
        let gap_hi = digits[n - 1].0 - digits[n - 2].0;
        let (lo, hi) = if n >= 4 {
            (-gap_lo, -gap_hi)
        } else {
            (along(digits[0].1) - gap_lo, along(digits[n - 1].1) - gap_hi)
        };
        if lo < hi {
            (0, (1..n).collect())
        } else {
            (n - 1, (0..n - 1).rev().collect())
        }
    } else {
        (0, vec![0])
    };
    let place = |thumb_idx: usize, fingers: &[usize]| {
        // Fingers ordered from the thumb side: index, middle, ring, little; with
        // fingers missed, the one reaching furthest.
        let middle = if fingers.len() == 4 {
            fingers[1]
        } else {
            *fingers
                .iter()
                .max_by(|&&a, &&b| along(digits[a].1).total_cmp(&along(digits[b].1)))
                .expect("at least one finger")
        };
        let fingertip = digits[middle].1;
        let thumb = digits[thumb_idx].1;
        let along = c - fingertip;
        let mut across = along.unit().perp();
        if across.dot(thumb - c) < 0.0 {
            across = across * -1.0;
        }
        let capitate =
            fingertip + along * params.capitate_along + across * (params.capitate_across * r);
        KeyPoints {
            fingertip,
            thumb,
            capitate,
        }
    };
    let other_side = (n >= 2).then(|| {
        if thumb_idx == 0 {
            place(n - 1, &(0..n - 1).rev().collect::<Vec<_>>())
        } else {
            place(0, &(1..n).collect::<Vec<_>>())
        }
    });
    Some(MaskGeometry {
        keypoints: place(thumb_idx, &fingers),
        other_side,
        palm_centre: c,
        palm_radius: r,
        digits: n,
        tips: digits.iter().map(|d| d.1).collect(),
    })
}

/// How far apart, in degrees, the directions of two pieces of the mask from the palm
/// centre must be for one of them to be taken for a forearm ([`opposed_pieces`]). The
/// digits of a hand fan over less than this.
pub const FOREARM_OPPOSED_DEG: f64 = 135.0;

/// The pieces that point against another piece (directions from the palm centre more
/// than [`FOREARM_OPPOSED_DEG`] apart), in their order: one of each such pair is a
/// forearm that ends short of the image border.
fn opposed_pieces(base: &[Piece], c: Point) -> Vec<usize> {
    let dirs: Vec<Point> = base.iter().map(|p| (p.centroid - c).unit()).collect();
    let limit = FOREARM_OPPOSED_DEG.to_radians().cos();
    (0..base.len())
        .filter(|&i| (0..base.len()).any(|j| j != i && dirs[i].dot(dirs[j]) < limit))
        .collect()
}

/// How close (a share of the fingertip–capitate span) a key point must lie to a digit
/// tip of the mask to be taken as on that digit, in [`middle_of_five`].
pub const ON_DIGIT: f64 = 0.1;

/// Whether the mask's digits vouch for key points `k`: five digits stand apart, the
/// fingertip is on the middle one of them (the third in order about the palm) and the
/// thumb tip on the outer one the mask reads as the thumb, each within [`ON_DIGIT`]
/// of the hand's span. Evidence from the mask that the middle finger was not taken
/// for its neighbour (whose tip is the second or the fourth); with fingers touching,
/// fewer digits stand apart and it vouches for nothing.
pub fn middle_of_five(g: &MaskGeometry, k: &KeyPoints) -> bool {
    if g.tips.len() != 5 {
        return false;
    }
    let near = ON_DIGIT * k.span();
    let nearest = |p: Point| {
        g.nearest_tip(p)
            .filter(|(_, t)| t.dist(p) <= near)
            .map(|(i, _)| i)
    };
    // The thumb: the outer digit the mask reads as the thumb (beside the widest web),
    // not merely an outer one — a thumb tip put on the little finger would otherwise
    // pass with a hand that leans because it is mirrored.
    let thumb = g.tips.iter().position(|&t| t == g.keypoints.thumb);
    nearest(k.fingertip) == Some(2) && matches!(thumb, Some(0 | 4)) && nearest(k.thumb) == thumb
}

/// Key-point candidates, in pixels of a `width`×`height` image, from its mask at a
/// reduced scale (e.g. a label mask at a quarter of the size).
pub fn keypoints_for_image(
    mask: &Mask,
    width: usize,
    height: usize,
    params: &GeometryParams,
) -> Option<KeyPoints> {
    geometry_for_image(mask, width, height, params).map(|g| g.keypoints)
}

/// Everything [`keypoints_from_mask`] finds, in pixels of a `width`×`height` image,
/// from its mask at a reduced scale (the palm radius scaled by the mean of the two
/// scales).
pub fn geometry_for_image(
    mask: &Mask,
    width: usize,
    height: usize,
    params: &GeometryParams,
) -> Option<MaskGeometry> {
    let g = keypoints_from_mask(mask, params)?;
    let (sx, sy) = (
        width as f64 / mask.width() as f64,
        height as f64 / mask.height() as f64,
    );
    let up = |p: Point| Point::new(p.x * sx, p.y * sy);
    Some(MaskGeometry {
        keypoints: KeyPoints {
            fingertip: up(g.keypoints.fingertip),
            thumb: up(g.keypoints.thumb),
            capitate: up(g.keypoints.capitate),
        },
        palm_centre: up(g.palm_centre),
        palm_radius: g.palm_radius * (sx + sy) / 2.0,
        digits: g.digits,
        tips: g.tips.iter().map(|&p| up(p)).collect(),
        other_side: g.other_side.map(|k| KeyPoints {
            fingertip: up(k.fingertip),
            thumb: up(k.thumb),
            capitate: up(k.capitate),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phantom::{PhantomConfig, generate, image_rng};

    #[test]
    fn finds_fingertip_and_thumb_on_phantoms() {
        let mut worst = [0f64; 2];
        for i in 0..6 {
            let cfg = PhantomConfig {
                nuisances: false,
                ..PhantomConfig::default()
            };
            let p = generate(&cfg, &mut image_rng(7, i)).expect("phantom");
            let (w, h) = (p.image.width(), p.image.height());
            let mask = Mask::from_vec(w, h, p.mask.clone()).expect("mask size");
            let g = keypoints_from_mask(&mask, &GeometryParams::default()).expect("a hand");
            let scale = h as f64;
            worst[0] = worst[0].max(g.keypoints.fingertip.dist(p.keypoints.fingertip) / scale);
            worst[1] = worst[1].max(g.keypoints.thumb.dist(p.keypoints.thumb) / scale);
        }
        assert!(
            worst[0] < 0.03,
            "fingertip off by {:.3} of the height",
            worst[0]
        );
        assert!(
            worst[1] < 0.05,
            "thumb off by {:.3} of the height",
            worst[1]
        );
    }

    /// The geometry of a phantom whose five digits stand apart, and its true key
    /// points.
    fn five_digit_phantom() -> (MaskGeometry, KeyPoints) {
        let cfg = PhantomConfig {
            nuisances: false,
            ..PhantomConfig::default()
        };
        let p = generate(&cfg, &mut image_rng(7, 0)).expect("phantom");
        let mask = Mask::from_vec(p.image.width(), p.image.height(), p.mask).unwrap();
        let g = keypoints_from_mask(&mask, &GeometryParams::default()).expect("a hand");
        assert_eq!(g.digits, 5);
        (g, p.keypoints)
    }

    /// The other side's reading takes the thumb at the other outer digit (the little
    /// finger of a phantom with five digits apart); the middle finger, third from
    /// either end, stays.
    #[test]
    fn other_side_takes_the_other_outer_digit() {
        let (g, _) = five_digit_phantom();
        let other = g.other_side.expect("two digits or more");
        let ends = [g.tips[0], g.tips[4]];
        assert!(ends.contains(&g.keypoints.thumb) && ends.contains(&other.thumb));
        assert_ne!(other.thumb, g.keypoints.thumb);
        assert_eq!(other.fingertip, g.keypoints.fingertip);
        assert_ne!(other.thumb_on_right(), g.keypoints.thumb_on_right());
    }

    /// Five digits apart vouch for the true key points of a phantom, not for a
    /// fingertip on the index or ring finger, a thumb tip on the little finger or a
    /// thumb tip off every digit; four digits vouch for nothing.
    #[test]
    fn five_digits_vouch_for_the_middle_finger_only() {
        let (g, k) = five_digit_phantom();
        assert!(middle_of_five(&g, &k));
        for wrong in [1, 3] {
            let k = KeyPoints {
                fingertip: g.tips[wrong],
                ..k
            };
            assert!(!middle_of_five(&g, &k), "fingertip on digit {wrong}");
        }
        let little = [g.tips[0], g.tips[4]]
            .into_iter()
            .find(|&t| t != g.keypoints.thumb)
            .unwrap();
        assert!(!middle_of_five(&g, &KeyPoints { thumb: little, ..k }));
        let off = KeyPoints {
            thumb: k.capitate,
            ..k
        };
        assert!(!middle_of_five(&g, &off));
        let four = MaskGeometry {
            tips: g.tips[..4].to_vec(),
            digits: 4,
            ..g.clone()
        };
        assert!(!middle_of_five(&four, &k));
    }

    /// A hand drawn as a framed film shows it: the forearm ends inside the image (the
    /// film's edge), the four fingers touch at their bases, so that around the palm
    /// they are one piece, and the thumb stands out to one side. The mean direction of
    /// the three pieces points at the thumb; the fingers' piece and the forearm point
    /// against each other, and the profile about the forearm finds the digits.
    #[test]
    fn a_forearm_that_ends_inside_the_image_gives_the_axis() {
        let (w, h) = (200, 300);
        let mut mask = Mask::new(w, h);
        let mut fill = |x0: usize, x1: usize, y0: usize, y1: usize| {
            for y in y0..y1 {
                for x in x0..x1 {
                    mask.set(x, y, true);
                }
            }
        };
        fill(62, 139, 100, 165); // palm
        fill(80, 121, 165, 262); // forearm, ending 38 px above the image's edge
        fill(70, 131, 46, 100); // the fingers' bases, joined
        for (x0, top) in [(70, 22), (87, 10), (104, 4), (121, 16)] {
            fill(x0, x0 + 10, top, 46); // little, ring, middle, index
        }
        fill(139, 186, 120, 134); // the thumb, out to the right
        let inside = GeometryParams {
            forearm_inside: true,
            ..GeometryParams::default()
        };
        // Read as before, the forearm's end is taken for a digit.
        let before = keypoints_from_mask(&mask, &GeometryParams::default()).expect("a hand");
        assert!(
            before.keypoints.thumb.y > 200.0
                || before.keypoints.fingertip.dist(Point::new(109.5, 4.5)) > 6.0,
            "read without the forearm inside: {:?}",
            before.keypoints
        );
        let g = keypoints_from_mask(&mask, &inside).expect("a hand");
        assert_eq!(g.digits, 5, "tips {:?}", g.tips);
        let k = g.keypoints;
        assert!(
            k.fingertip.dist(Point::new(109.5, 4.5)) < 6.0,
            "fingertip at {:?}",
            k.fingertip
        );
        assert!(k.thumb.x > 178.0 && (120.0..134.0).contains(&k.thumb.y));
        assert!(k.capitate.y > 132.0 && k.capitate.y < 262.0);
        // Mirrored, the thumb is on the left.
        let mut mirrored = Mask::new(w, h);
        for y in 0..h {
            for x in 0..w {
                mirrored.set(w - 1 - x, y, mask.get(x, y));
            }
        }
        let m = keypoints_from_mask(&mirrored, &inside).expect("a hand");
        assert!(
            m.keypoints.thumb.x < 22.0,
            "thumb at {:?}",
            m.keypoints.thumb
        );
        assert!(m.keypoints.fingertip.dist(Point::new(90.5, 4.5)) < 6.0);
    }

    #[test]
    fn empty_mask_gives_none() {
        assert!(keypoints_from_mask(&Mask::new(40, 50), &GeometryParams::default()).is_none());
    }
}
