//! Contrast normalisation of a masked hand: a robust percentile window inside the
//! mask, then CLAHE, with the background set to zero.

use rayon::prelude::*;

use crate::image::{GrayImage, Mask};

const BINS: usize = 256;

#[inline]
fn bin(v: f32) -> usize {
    ((v.clamp(0.0, 1.0) * (BINS - 1) as f32) + 0.5) as usize
}

/// Maps the `lo`–`hi` percentiles (0–100) of the pixels inside `mask` onto `[0, 1]`
/// (clamped), and sets everything outside the mask to 0. An empty mask gives a
/// black image.
pub fn percentile_window(img: &GrayImage, mask: &Mask, lo: f32, hi: f32) -> GrayImage {
    let inside = Fine::of(
        img.as_slice()
            .iter()
            .zip(mask.as_slice())
            .filter(|&(_, &m)| m != 0)
            .map(|(&v, _)| v),
    );
    let mut out = GrayImage::new(img.width(), img.height());
    if inside.n == 0 {
        return out;
    }
    let (a, b) = (inside.quantile(lo), inside.quantile(hi));
    let scale = if b > a { 1.0 / (b - a) } else { 0.0 };
    for ((o, &v), &m) in out
        .as_mut_slice()
        .iter_mut()
        .zip(img.as_slice())
        .zip(mask.as_slice())
    {
        *o = if m != 0 {
            ((v - a) * scale).clamp(0.0, 1.0)
        } else {
            0.0
        };
    }
    out
}

/// A histogram of values in `[0, 1]` on 4096 levels, for percentiles.
struct Fine {
    hist: Vec<usize>,
    n: usize,
}

impl Fine {
    const LEVELS: usize = 4096;

    fn of(values: impl Iterator<Item = f32>) -> Self {
        let mut hist = vec![0usize; Self::LEVELS];
        let mut n = 0usize;
        for v in values {
            hist[((v.clamp(0.0, 1.0) * (Self::LEVELS - 1) as f32) + 0.5) as usize] += 1;
            n += 1;
        }
        Self { hist, n }
    }

    /// The `p`th percentile (0–100); 1 for an empty histogram.
    fn quantile(&self, p: f32) -> f32 {
        let target = ((p / 100.0).clamp(0.0, 1.0) * self.n.saturating_sub(1) as f32) as usize;
        let mut acc = 0usize;
        for (i, &c) in self.hist.iter().enumerate() {
            acc += c;
            if acc > target {
                return i as f32 / (Self::LEVELS - 1) as f32;
            }
        }
        1.0
    }
}

/// How much lighter the hand is than the film around it: the median inside `mask`
/// less the median of the band up to `band` pixels outside it, where `d2` is the
/// squared distance to the mask ([`crate::ops::distance_transform_sq`]). A hand
/// radiograph shows the hand lighter than the unobstructed film around it; a film
/// stored with its polarity inverted (bone dark) shows it darker, and the margin is
/// negative. `None` when the mask or the band is empty (a hand that fills the film).
///
/// Measured on the 1,145 films of `../shared/data/rsna` with the shipped U-Net's
/// masks and a band of 3 % of the film's longer side: every one lighter, by 0.04 to
/// 0.49 (median 0.30; the masks at the film's size, 8-bit levels).
pub fn hand_lighter_by(img: &GrayImage, mask: &Mask, d2: &[f32], band: f32) -> Option<f32> {
    let pixels = || img.as_slice().iter().zip(mask.as_slice()).zip(d2);
    let inside = Fine::of(
        pixels()
            .filter(|&((_, &m), _)| m != 0)
            .map(|((&v, _), _)| v),
    );
    let limit = band * band;
    let around = Fine::of(
        pixels()
            .filter(|&((_, &m), &d)| m == 0 && d <= limit)
            .map(|((&v, _), _)| v),
    );
    (inside.n > 0 && around.n > 0).then(|| inside.quantile(50.0) - around.quantile(50.0))
}

/// CLAHE settings, as in OpenCV's `createCLAHE(clipLimit, tileGridSize)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClaheConfig {
    /// Tiles across.
    pub tiles_x: usize,
    /// Tiles down.
    pub tiles_y: usize,
    /// Clip limit relative to a flat histogram (OpenCV's `clipLimit`; ≤ 0 disables
    /// clipping, which gives plain adaptive histogram equalisation).
    pub clip_limit: f32,
}

impl Default for ClaheConfig {
    fn default() -> Self {
        Self {
            tiles_x: 8,
            tiles_y: 8,
            clip_limit: 2.0,
        }
    }
}

/// Contrast-limited adaptive histogram equalisation on 256 levels: one clipped,
/// redistributed histogram per tile, and bilinear interpolation between the four
/// nearest tiles' mappings.
pub fn clahe(img: &GrayImage, cfg: &ClaheConfig) -> GrayImage {
    let (w, h) = (img.width(), img.height());
    let (tx, ty) = (
        cfg.tiles_x.clamp(1, w.max(1)),
        cfg.tiles_y.clamp(1, h.max(1)),
    );
    let src = img.as_slice();
    let mut bins = vec![0u8; src.len()];
    bins.par_chunks_mut(w.max(1))
        .zip(src.par_chunks(w.max(1)))
        .for_each(|(b, s)| {
            for (b, &v) in b.iter_mut().zip(s) {
                *b = bin(v) as u8;
            }
        });
    let x_edges: Vec<usize> = (0..=tx).map(|i| i * w / tx).collect();
    let y_edges: Vec<usize> = (0..=ty).map(|i| i * h / ty).collect();
    // One lookup table per tile.
    let luts: Vec<[f32; BINS]> = (0..tx * ty)
        .into_par_iter()
        .map(|t| {
            let (i, j) = (t % tx, t / tx);
            let mut hist = [0u32; BINS];
            for y in y_edges[j]..y_edges[j + 1] {
                for &b in &bins[y * w + x_edges[i]..y * w + x_edges[i + 1]] {
                    hist[b as usize] += 1;
                }
            }
            let area =
                ((x_edges[i + 1] - x_edges[i]) * (y_edges[j + 1] - y_edges[j])).max(1) as u32;
            if cfg.clip_limit > 0.0 {
                let limit = ((cfg.clip_limit * area as f32 / BINS as f32) as u32).max(1);
                let mut excess = 0u32;
                for c in hist.iter_mut() {
                    if *c > limit {
                        excess += *c - limit;
                        *c = limit;
                    }
                }
                let (each, rest) = (excess / BINS as u32, excess % BINS as u32);
                for c in hist.iter_mut() {
                    *c += each;
                }
                // The remainder goes to evenly spaced bins.
                if let Some(step) = (BINS as u32).checked_div(rest) {
                    for c in hist
                        .iter_mut()
                        .step_by(step.max(1) as usize)
                        .take(rest as usize)
                    {
                        *c += 1;
                    }
                }
            }
            let mut lut = [0f32; BINS];
            let mut acc = 0u32;
            for (l, &c) in lut.iter_mut().zip(&hist) {
                acc += c;
                *l = acc as f32 / area as f32;
            }
            lut
        })
        .collect();
    // Tile centres, for interpolation.
    let cx: Vec<f32> = (0..tx)
        .map(|i| (x_edges[i] + x_edges[i + 1]) as f32 * 0.5)
        .collect();
    let cy: Vec<f32> = (0..ty)
        .map(|j| (y_edges[j] + y_edges[j + 1]) as f32 * 0.5)
        .collect();
    let locate = |c: &[f32], p: f32| -> (usize, usize, f32) {
        if p <= c[0] {
            return (0, 0, 0.0);
        }
        let last = c.len() - 1;
        if p >= c[last] {
            return (last, last, 0.0);
        }
        let k = c.partition_point(|&v| v <= p) - 1;
        (k, k + 1, (p - c[k]) / (c[k + 1] - c[k]))
    };
    // Column segments that share the same pair of tiles: (start, end, left tile,
    // right tile). Within one, the weights move linearly with x.
    let mut segments: Vec<(usize, usize, usize, usize)> = Vec::new();
    for x in 0..w {
        let (i0, i1, _) = locate(&cx, x as f32 + 0.5);
        match segments.last_mut() {
            Some(seg) if seg.2 == i0 && seg.3 == i1 => seg.1 = x + 1,
            _ => segments.push((x, x + 1, i0, i1)),
        }
    }
    let weights: Vec<f32> = (0..w).map(|x| locate(&cx, x as f32 + 0.5).2).collect();
    let mut out = vec![0f32; w * h];
    out.par_chunks_mut(w.max(1))
        .enumerate()
        .for_each(|(y, row)| {
            let (j0, j1, ay) = locate(&cy, y as f32 + 0.5);
            let brow = &bins[y * w..(y + 1) * w];
            for &(start, end, i0, i1) in &segments {
                let (l00, l01) = (&luts[j0 * tx + i0], &luts[j0 * tx + i1]);
                let (l10, l11) = (&luts[j1 * tx + i0], &luts[j1 * tx + i1]);
                for ((o, &b), &ax) in row[start..end]
                    .iter_mut()
                    .zip(&brow[start..end])
                    .zip(&weights[start..end])
                {
                    let b = b as usize;
                    // Blend the two rows of tiles first, then the columns.
                    let left = l00[b] + (l10[b] - l00[b]) * ay;
                    let right = l01[b] + (l11[b] - l01[b]) * ay;
                    *o = left + (right - left) * ax;
                }
            }
        });
    GrayImage::from_vec(w, h, out).expect("sizes match")
}

/// Settings of [`normalize_hand`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NormalizeConfig {
    /// Lower percentile of the window inside the mask.
    pub lo_percentile: f32,
    /// Upper percentile.
    pub hi_percentile: f32,
    /// CLAHE after windowing; `None` skips it.
    pub clahe: Option<ClaheConfig>,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            lo_percentile: 1.0,
            hi_percentile: 99.5,
            clahe: Some(ClaheConfig::default()),
        }
    }
}

/// The paper's contrast normalisation of a segmented hand: percentile window
/// inside the mask, CLAHE, and zero outside the mask.
pub fn normalize_hand(img: &GrayImage, mask: &Mask, cfg: &NormalizeConfig) -> GrayImage {
    let windowed = percentile_window(img, mask, cfg.lo_percentile, cfg.hi_percentile);
    let Some(c) = cfg.clahe else { return windowed };
    let mut out = clahe(&windowed, &c);
    for (o, &m) in out.as_mut_slice().iter_mut().zip(mask.as_slice()) {
        if m == 0 {
            *o = 0.0;
        }
    }
    out
}
