//! From a [`Hand`] in millimetres to a radiograph in pixels, with the nuisances of
//! real films: exposure, gamma, noise, collimation, film edges, burned-in markers,
//! a ruler, inverted polarity.

use rand::Rng;

use super::anatomy::Hand;
use crate::font;
use crate::geometry::{Affine, Point};
use crate::image::GrayImage;

/// Photometric settings of one film.
#[derive(Clone, Debug)]
pub struct Photometry {
    /// Level of the exposed background.
    pub background: f32,
    /// Weight of soft tissue.
    pub tissue: f32,
    /// Weight of bone.
    pub bone: f32,
    /// Gamma applied after the linear mix.
    pub gamma: f32,
    /// Output range (washed-out films have a narrow one).
    pub range: (f32, f32),
    /// Standard deviation of additive noise.
    pub noise: f32,
    /// Negative polarity (bone dark).
    pub inverted: bool,
}

impl Photometry {
    /// A clean, standard film.
    pub fn clean() -> Self {
        Self {
            background: 0.06,
            tissue: 0.32,
            bone: 0.8,
            gamma: 1.0,
            range: (0.0, 1.0),
            noise: 0.0,
            inverted: false,
        }
    }

    /// A random film like those in the RSNA set.
    pub fn sample(rng: &mut impl Rng, inverted_prob: f64) -> Self {
        let washed = rng.random_bool(0.15);
        Self {
            background: rng.random_range(0.0..0.2),
            tissue: rng.random_range(0.28..0.48),
            bone: rng.random_range(0.45..0.8),
            gamma: rng.random_range(0.75..1.35),
            range: if washed {
                (rng.random_range(0.15..0.35), rng.random_range(0.45..0.7))
            } else {
                (0.0, rng.random_range(0.9..1.0))
            },
            noise: rng.random_range(0.003..0.02),
            inverted: rng.random_bool(inverted_prob),
        }
    }
}

/// What lies outside the hand.
#[derive(Clone, Debug, Default)]
pub struct Clutter {
    /// Collimated field: a rotated rectangle (centre, half sizes, angle) in pixels,
    /// and the level outside it.
    pub collimation: Option<(Point, Point, f64, f32)>,
    /// Black scanner borders in pixels: left, top, right, bottom.
    pub borders: [usize; 4],
    /// Burned-in text: (text, x, y, scale, boxed).
    pub markers: Vec<(String, i64, i64, usize, bool)>,
    /// A ruler along the left (false) or right (true) edge.
    pub ruler: Option<bool>,
}

impl Clutter {
    /// Random clutter like that of the RSNA set, for a `w`x`h` image. Collimation
    /// and borders never hide the points in `keep` (key points and fingertips).
    pub fn sample(rng: &mut impl Rng, w: usize, h: usize, keep: &[Point]) -> Self {
        let mut c = Clutter::default();
        let pad = 0.02 * w.min(h) as f64;
        if rng.random_bool(0.55) {
            let center = Point::new(
                w as f64 * rng.random_range(0.45..0.55),
                h as f64 * rng.random_range(0.45..0.55),
            );
            let mut half = Point::new(
                w as f64 * rng.random_range(0.36..0.5),
                h as f64 * rng.random_range(0.38..0.5),
            );
            let angle = rng.random_range(-4f64..4.0).to_radians();
            let (s, co) = angle.sin_cos();
            for p in keep {
                let d = *p - center;
                let (u, v) = (co * d.x + s * d.y, -s * d.x + co * d.y);
                half.x = half.x.max(u.abs() + pad);
                half.y = half.y.max(v.abs() + pad);
            }
            let level = if rng.random_bool(0.5) {
                0.0
            } else {
                rng.random_range(0.55..0.95)
            };
            c.collimation = Some((center, half, angle, level));
        }
        if rng.random_bool(0.3) {
            let (lo, hi) = crate::geometry::bounds(keep);
            let room = [
                lo.x - pad,
                lo.y - pad,
                w as f64 - hi.x - pad,
                h as f64 - hi.y - pad,
            ];
            for (b, r) in c.borders.iter_mut().zip(room) {
                let limit = ((w.min(h) / 14) as f64).min(r).max(0.0) as usize;
                if limit >= 3 && rng.random_bool(0.4) {
                    *b = rng.random_range(2..limit);
                }
            }
        }
        if rng.random_bool(0.85) {
            let scale = (h / 170).max(1) + rng.random_range(0..2);
            c.markers
                .push(("L".into(), 0, 0, scale + 1, rng.random_bool(0.7)));
            let n = rng.random_range(0..4);
            if n > 0 {
                let initials: String = (0..n)
                    .map(|_| rng.random_range(b'A'..=b'Z') as char)
                    .collect();
                c.markers.push((initials, 0, 0, scale, false));
            }
        }
        if rng.random_bool(0.1) {
            c.ruler = Some(rng.random_bool(0.5));
        }
        c
    }
}

/// The rendered film and its ground truth mask.
pub struct Film {
    /// The radiograph in `[0, 1]`.
    pub image: GrayImage,
    /// 1 where the hand (soft tissue of hand and forearm) is visible, else 0.
    pub mask: Vec<u8>,
}

/// Renders `hand` through `to_px` (canonical mm → pixel) into a `w`x`h` film.
pub fn render(
    hand: &Hand,
    to_px: &Affine,
    w: usize,
    h: usize,
    photo: &Photometry,
    clutter: &mut Clutter,
    rng: &mut impl Rng,
) -> Film {
    let inv = to_px.inverse().expect("similarity with non-zero scale");
    let mm_per_px = 1.0 / to_px.det().abs().sqrt();
    let noise_seed: u64 = rng.random();

    // Soft tissue thickness and mask.
    let mut thickness = vec![0f32; w * h];
    let mut mask = vec![0u8; w * h];
    let depth = hand.tissue_depth;
    // The distance changes by at most 1 mm per mm, so one evaluation at a block's
    // centre settles blocks far outside the hand or deep inside it.
    const B: usize = 8;
    let half_diag_mm = (B as f64) * std::f64::consts::FRAC_1_SQRT_2 * mm_per_px;
    for by in (0..h).step_by(B) {
        for bx in (0..w).step_by(B) {
            let (x1, y1) = ((bx + B).min(w), (by + B).min(h));
            let centre = inv.apply(Point::new((bx + x1) as f64 * 0.5, (by + y1) as f64 * 0.5));
            let d = hand.tissue_sdf(centre);
            if d > half_diag_mm {
                continue;
            }
            let deep = d < -(depth + half_diag_mm);
            for y in by..y1 {
                for x in bx..x1 {
                    let d = if deep {
                        -depth
                    } else {
                        hand.tissue_sdf(inv.apply(Point::new(x as f64 + 0.5, y as f64 + 0.5)))
                    };
                    if d < 0.0 {
                        let t = (-d / depth).min(1.0);
                        thickness[y * w + x] = (t * (2.0 - t)).sqrt() as f32;
                        mask[y * w + x] = 1;
                    }
                }
            }
        }
    }

    // Bone path lengths, each bone over its own bounding box.
    let mut bone = vec![0f32; w * h];
    for b in &hand.bones {
        let (lo, hi) = b.bounds();
        let corners =
            [lo, Point::new(hi.x, lo.y), hi, Point::new(lo.x, hi.y)].map(|c| to_px.apply(c));
        let x0 = corners
            .iter()
            .map(|c| c.x)
            .fold(f64::INFINITY, f64::min)
            .floor()
            .max(0.0) as usize;
        let y0 = corners
            .iter()
            .map(|c| c.y)
            .fold(f64::INFINITY, f64::min)
            .floor()
            .max(0.0) as usize;
        let x1 = (corners
            .iter()
            .map(|c| c.x)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            .max(0.0) as usize)
            .min(w);
        let y1 = (corners
            .iter()
            .map(|c| c.y)
            .fold(f64::NEG_INFINITY, f64::max)
            .ceil()
            .max(0.0) as usize)
            .min(h);
        for y in y0..y1 {
            for x in x0..x1 {
                let q = inv.apply(Point::new(x as f64 + 0.5, y as f64 + 0.5));
                let a = b.attenuation(q, || 0.7 + 0.6 * value_noise(q * (1.0 / 1.2), noise_seed));
                if a > 0.0 {
                    bone[y * w + x] += a as f32;
                }
            }
        }
    }

    // Linear mix, soft blur (the focal spot), photometry.
    let bone_ref = (9.0 * hand.tissue_depth / 11.0) as f32;
    let mut img: Vec<f32> = thickness
        .iter()
        .zip(&bone)
        .map(|(&t, &a)| {
            photo.background + photo.tissue * t + photo.bone * (1.0 - (-a / bone_ref).exp())
        })
        .collect();
    blur121(&mut img, w, h);
    let (lo, hi) = photo.range;
    for v in img.iter_mut() {
        *v = lo + (hi - lo) * v.clamp(0.0, 1.0).powf(photo.gamma);
    }

    // Collimation and scanner borders: the hand is not visible there.
    if let Some((c, half, angle, level)) = clutter.collimation {
        let (s, co) = angle.sin_cos();
        for y in 0..h {
            for x in 0..w {
                let d = Point::new(x as f64 + 0.5, y as f64 + 0.5) - c;
                let (u, v) = (co * d.x + s * d.y, -s * d.x + co * d.y);
                if u.abs() > half.x || v.abs() > half.y {
                    img[y * w + x] = level;
                    mask[y * w + x] = 0;
                }
            }
        }
    }
    let [bl, bt, br, bb] = clutter.borders;
    for y in 0..h {
        for x in 0..w {
            if x < bl || y < bt || x + br >= w || y + bb >= h {
                img[y * w + x] = 0.0;
                mask[y * w + x] = 0;
            }
        }
    }

    let mut image = GrayImage::from_vec(w, h, img).expect("sizes match");
    place_markers(&mut image, &mut mask, clutter, rng);
    if let Some(right) = clutter.ruler {
        draw_ruler(&mut image, &mut mask, right, (10.0 / mm_per_px).max(3.0));
    }

    // Quantum noise, then polarity.
    let sigma = photo.noise;
    let data = image.as_mut_slice();
    if sigma > 0.0 {
        for v in data.iter_mut() {
            *v = (*v + sigma * gaussian(rng)).clamp(0.0, 1.0);
        }
    }
    if photo.inverted {
        data.iter_mut().for_each(|v| *v = 1.0 - *v);
    }
    Film { image, mask }
}

/// Places each marker where it covers no hand, drawing boxed markers as a dark box
/// with a bright frame and letters, unboxed ones as bright letters.
fn place_markers(img: &mut GrayImage, mask: &mut [u8], clutter: &mut Clutter, rng: &mut impl Rng) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    let mut placed: Vec<(i64, i64, i64, i64)> = Vec::new();
    for (text, mx, my, scale, boxed) in clutter.markers.iter_mut() {
        let tw = font::text_width(text, *scale) as i64;
        let th = (font::GLYPH_H * *scale) as i64;
        let pad = if *boxed { *scale as i64 * 2 } else { 1 };
        let (bw, bh) = (tw + 2 * pad, th + 2 * pad);
        if bw + 4 > w || bh + 4 > h {
            continue;
        }
        let mut spot = None;
        for _ in 0..60 {
            let x = rng.random_range(2..w - bw - 2);
            let y = rng.random_range(2..h - bh - 2);
            let overlaps_hand = (y - 3..y + bh + 3).any(|yy| {
                (x - 3..x + bw + 3).any(|xx| {
                    xx >= 0 && yy >= 0 && xx < w && yy < h && mask[(yy * w + xx) as usize] != 0
                })
            });
            let overlaps_marker = placed.iter().any(|&(px, py, pw, ph)| {
                x < px + pw + 4 && px < x + bw + 4 && y < py + ph + 4 && py < y + bh + 4
            });
            if !overlaps_hand && !overlaps_marker {
                spot = Some((x, y));
                break;
            }
        }
        let Some((x, y)) = spot else { continue };
        *mx = x;
        *my = y;
        placed.push((x, y, bw, bh));
        if *boxed {
            for yy in y..y + bh {
                for xx in x..x + bw {
                    let frame =
                        yy - y < 1 || xx - x < 1 || y + bh - 1 - yy < 1 || x + bw - 1 - xx < 1;
                    img.set(xx as usize, yy as usize, if frame { 0.85 } else { 0.03 });
                }
            }
        }
        font::draw_text(img, text, x + pad, y + pad, *scale, 0.97);
        for yy in y..y + bh {
            for xx in x..x + bw {
                mask[(yy * w + xx) as usize] = 0;
            }
        }
    }
}

fn draw_ruler(img: &mut GrayImage, mask: &mut [u8], right: bool, px_per_cm: f64) {
    let (w, h) = (img.width(), img.height());
    let strip = (w / 28).max(4);
    let x0 = if right { w - strip - 2 } else { 2 };
    for y in 0..h {
        for x in x0..x0 + strip {
            img.set(x, y, 0.12);
            mask[y * w + x] = 0;
        }
    }
    let mut k = 0usize;
    loop {
        let y = (h as f64 * 0.05 + k as f64 * px_per_cm / 2.0) as usize;
        if y >= h {
            break;
        }
        let len = if k.is_multiple_of(2) {
            strip
        } else {
            strip / 2
        };
        for x in 0..len {
            let xx = if right { x0 + strip - 1 - x } else { x0 + x };
            img.set(xx, y, 0.9);
        }
        k += 1;
    }
}

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// Smooth value noise in `[0, 1]` on a unit lattice.
fn value_noise(p: Point, seed: u64) -> f64 {
    let (xf, yf) = (p.x.floor(), p.y.floor());
    let (tx, ty) = (p.x - xf, p.y - yf);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let (ix, iy) = (xf as i64, yf as i64);
    let v = |i: i64, j: i64| hash01(i, j, seed);
    let a = v(ix, iy) + (v(ix + 1, iy) - v(ix, iy)) * sx;
    let b = v(ix, iy + 1) + (v(ix + 1, iy + 1) - v(ix, iy + 1)) * sx;
    a + (b - a) * sy
}

fn hash01(i: i64, j: i64, seed: u64) -> f64 {
    let mut z = seed
        ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (j as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// In-place separable [1 2 1]/4 blur with clamped edges.
fn blur121(img: &mut [f32], w: usize, h: usize) {
    let mut tmp = vec![0f32; img.len()];
    for y in 0..h {
        for x in 0..w {
            let l = img[y * w + x.saturating_sub(1)];
            let r = img[y * w + (x + 1).min(w - 1)];
            tmp[y * w + x] = 0.25 * l + 0.5 * img[y * w + x] + 0.25 * r;
        }
    }
    for y in 0..h {
        for x in 0..w {
            let u = tmp[y.saturating_sub(1) * w + x];
            let d = tmp[(y + 1).min(h - 1) * w + x];
            img[y * w + x] = 0.25 * u + 0.5 * tmp[y * w + x] + 0.25 * d;
        }
    }
}
