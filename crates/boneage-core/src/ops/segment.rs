//! The classical hand segmentation baseline: no network, no training data. It
//! seeds positive mining and is the fallback when no trained model is available.
//!
//! At a working size of about 256 pixels: smooth, threshold at Otsu's level, and
//! among the bright components keep the one with the most edge energy *inside* it —
//! a hand is full of bone edges, while collimator plates and film borders are flat
//! inside and markers are small. Then open (to cut thin bridges to markers), keep
//! the largest component, close, fill holes, and bring the mask back to full size.

use super::resize_area;
use super::{
    Connectivity, close, erode, fill_holes, gaussian_blur, label_components, largest_component,
    open,
};
use crate::geometry::{Point, convex_hull, polygon_area};
use crate::image::{GrayImage, Mask};

/// Settings of [`segment_hand`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentConfig {
    /// Longer side of the working image in pixels.
    pub work_size: usize,
    /// Gaussian smoothing at working size, in pixels.
    pub sigma: f32,
    /// Opening radius as a fraction of the working image's shorter side.
    pub open_frac: f32,
    /// Closing radius as a fraction of the shorter side.
    pub close_frac: f32,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        Self {
            work_size: 256,
            sigma: 1.5,
            open_frac: 0.02,
            close_frac: 0.03,
        }
    }
}

/// Otsu's threshold of values in `[0, 1]` (256 bins).
pub fn otsu_threshold(values: &[f32]) -> f32 {
    let mut hist = [0f64; 256];
    for &v in values {
        hist[(v.clamp(0.0, 1.0) * 255.0 + 0.5) as usize] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &c)| i as f64 * c).sum();
    let (mut w0, mut sum0, mut best, mut best_t) = (0.0, 0.0, -1.0, 0usize);
    for (t, &c) in hist.iter().enumerate() {
        w0 += c;
        sum0 += t as f64 * c;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_t = t;
        }
    }
    (best_t as f32 + 0.5) / 255.0
}

/// Gradient magnitude by central differences.
fn gradient(img: &GrayImage) -> Vec<f32> {
    let (w, h) = (img.width(), img.height());
    let mut g = vec![0f32; w * h];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let dx = img.get(x + 1, y) - img.get(x - 1, y);
            let dy = img.get(x, y + 1) - img.get(x, y - 1);
            g[y * w + x] = (dx * dx + dy * dy).sqrt();
        }
    }
    g
}

/// The `p`-th percentile (0–100) of `values`.
fn percentile(values: &[f32], p: f32) -> f32 {
    let mut v: Vec<f32> = values.to_vec();
    if v.is_empty() {
        return 0.0;
    }
    let k = ((p / 100.0).clamp(0.0, 1.0) * (v.len() - 1) as f32) as usize;
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// The mask of the pixels labelled `label`.
fn component(labels: &[u32], w: usize, h: usize, label: u32) -> Mask {
    Mask::from_vec(w, h, labels.iter().map(|&l| (l == label) as u8).collect()).expect("sizes match")
}

/// Of the components of `bright`, the one with the most edge energy inside it.
fn best_component(bright: &Mask, grad: &[f32], erode_r: f32) -> Option<Mask> {
    let (labels, count) = label_components(bright, Connectivity::Eight);
    if count == 0 {
        return None;
    }
    let interior = erode(bright, erode_r);
    let mut score = vec![0f64; count as usize + 1];
    for ((&l, &inside), &g) in labels.iter().zip(interior.as_slice()).zip(grad) {
        if inside != 0 {
            score[l as usize] += g as f64;
        }
    }
    // Markers are small: a component under 5 % of the image counts in proportion.
    let mut area = vec![0usize; count as usize + 1];
    for &l in &labels {
        area[l as usize] += 1;
    }
    let small = 0.05 * labels.len() as f64;
    for (sc, &a) in score.iter_mut().zip(&area) {
        *sc *= (a as f64 / small).min(1.0);
    }
    let best = (1..=count as usize).max_by(|&a, &b| score[a].total_cmp(&score[b]))? as u32;
    Some(component(&labels, bright.width(), bright.height(), best))
}

/// Solidity: the mask's area over the area of its convex hull. About 1 for a
/// collimation field or a film (at any rotation), about 0.5–0.75 for a hand with
/// its fingers.
pub(crate) fn solidity(mask: &Mask) -> f64 {
    let (w, h) = (mask.width(), mask.height());
    // Pixel corners of the leftmost and rightmost pixel of each row hold the hull.
    let mut pts: Vec<Point> = Vec::new();
    for y in 0..h {
        let row = &mask.as_slice()[y * w..(y + 1) * w];
        if let (Some(l), Some(r)) = (
            row.iter().position(|&v| v != 0),
            row.iter().rposition(|&v| v != 0),
        ) {
            for (x, yy) in [(l, y), (l, y + 1), (r + 1, y), (r + 1, y + 1)] {
                pts.push(Point::new(x as f64, yy as f64));
            }
        }
    }
    if pts.len() < 3 {
        return 0.0;
    }
    let area = polygon_area(&convex_hull(pts));
    if area <= 0.0 {
        0.0
    } else {
        mask.count() as f64 / area
    }
}

/// Bright areas that are flat and reach the image border: the shadows of
/// collimator blades and unexposed film edges. A hand never looks like that: its
/// tissue is never far from a bone or skin edge.
fn collimator_shadow(bright: &Mask, grad: &[f32], erode_r: f32) -> Mask {
    let (w, h) = (bright.width(), bright.height());
    let mut edges = Mask::new(w, h);
    let g_max = grad.iter().copied().fold(0f32, f32::max);
    for (e, &g) in edges.as_mut_slice().iter_mut().zip(grad) {
        *e = (g > 0.03 * g_max) as u8;
    }
    let near_edge = super::dilate(&edges, erode_r);
    let mut flat = bright.clone();
    flat.subtract(&near_edge);
    let (labels, count) = label_components(&flat, Connectivity::Four);
    let mut area = vec![0usize; count as usize + 1];
    let mut on_border = vec![false; count as usize + 1];
    for y in 0..h {
        for x in 0..w {
            let l = labels[y * w + x] as usize;
            area[l] += 1;
            if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
                on_border[l] = true;
            }
        }
    }
    let big = w * h / 50;
    let mut shadow = Mask::new(w, h);
    for (s, &l) in shadow.as_mut_slice().iter_mut().zip(&labels) {
        let l = l as usize;
        *s = (l != 0 && on_border[l] && area[l] > big) as u8;
    }
    // Grow the shadow back over its own edge so no rim is left to bridge to the hand.
    super::dilate(&shadow, erode_r + 1.0)
}

/// Otsu's level of the values of `work` inside `region`, clipped to their 0.5–99th
/// percentiles so that small saturated markers do not pull it up.
fn clipped_otsu(work: &GrayImage, region: &Mask) -> Option<f32> {
    let vals = work.values_in(region);
    let (lo, hi) = (percentile(&vals, 0.5), percentile(&vals, 99.0));
    if hi <= lo {
        return None;
    }
    let clipped: Vec<f32> = vals
        .iter()
        .map(|v| (v.clamp(lo, hi) - lo) / (hi - lo))
        .collect();
    Some(lo + otsu_threshold(&clipped) * (hi - lo))
}

/// Thresholds `work` inside `region` at its clipped Otsu level and returns the
/// best component.
fn hand_in(work: &GrayImage, grad: &[f32], region: &Mask, erode_r: f32) -> Option<Mask> {
    let t = clipped_otsu(work, region)?;
    let mut bright = Mask::threshold(work, t);
    bright.intersect(region);
    best_component(&bright, grad, erode_r)
}

/// Segments the hand (with the visible forearm) of a radiograph with bright bone.
/// Returns a mask of the input's size; empty if nothing hand-like was found.
pub fn segment_hand(img: &GrayImage, cfg: &SegmentConfig) -> Mask {
    let (w, h) = (img.width(), img.height());
    let s = cfg.work_size as f64 / w.max(h) as f64;
    let (ww, wh) = (
        ((w as f64 * s).round() as usize).max(8),
        ((h as f64 * s).round() as usize).max(8),
    );
    let work = gaussian_blur(&resize_area(img, ww, wh), cfg.sigma);
    let grad = gradient(&work);
    let shorter = ww.min(wh) as f32;
    let erode_r = (0.015 * shorter).max(2.0);
    let everything = Mask::from_vec(ww, wh, vec![1; ww * wh]).expect("sizes match");
    // The exposed field: everything but bright, flat collimator shadows.
    let field = match clipped_otsu(&work, &everything) {
        Some(t) => collimator_shadow(&Mask::threshold(&work, t), &grad, erode_r).inverted(),
        None => everything,
    };
    let Some(mut hand) = hand_in(&work, &grad, &field, erode_r) else {
        return Mask::new(w, h);
    };
    // A bright exposed field (or a film on a dark scanner bed) fills its bounding box:
    // look for the hand inside it.
    for _ in 0..2 {
        if solidity(&fill_holes(&hand)) < 0.9 {
            break;
        }
        match hand_in(&work, &grad, &fill_holes(&hand), erode_r) {
            Some(inner) if inner.count() > ww * wh / 20 => hand = inner,
            _ => break,
        }
    }
    let hand = fill_holes(&hand);
    // Refine: threshold 30 % of the way from the surrounding background to the
    // hand, so that faint fingers join a palm that Otsu's level kept.
    let ring = {
        let mut ring = super::dilate(&hand, (0.04 * shorter).max(3.0));
        ring.subtract(&super::dilate(&hand, (0.01 * shorter).max(1.0)));
        work.values_in(&ring)
    };
    let inside = work.values_in(&hand);
    let hand = if ring.is_empty() || inside.is_empty() {
        hand
    } else {
        let (bg, fg) = (percentile(&ring, 50.0), percentile(&inside, 30.0));
        let t2 = bg + 0.3 * (fg - bg);
        let mut bright = Mask::threshold(&work, t2);
        bright.intersect(&field);
        // The component of the new mask that overlaps the first one most.
        let (labels, count) = label_components(&bright, Connectivity::Eight);
        let mut overlap = vec![0usize; count as usize + 1];
        for (&l, &m) in labels.iter().zip(hand.as_slice()) {
            if m != 0 {
                overlap[l as usize] += 1;
            }
        }
        match (1..=count as usize).max_by_key(|&l| overlap[l]) {
            Some(best) if overlap[best] > 0 => {
                let refined = component(&labels, ww, wh, best as u32);
                // Refinement must not swallow the field around the hand.
                if solidity(&refined) < 0.9 && refined.count() < 3 * hand.count() {
                    refined
                } else {
                    hand
                }
            }
            _ => hand,
        }
    };
    let hand = fill_holes(&hand);
    let hand = largest_component(&open(&hand, cfg.open_frac * shorter), Connectivity::Eight);
    let hand = fill_holes(&close(&hand, cfg.close_frac * shorter));
    // Back to full size with smooth edges.
    hand.resized(w, h)
}

/// Opens the gaps between fingers that a coarse mask bridged: within a band of
/// `band` pixels inside the mask's edge, pixels darker than halfway between the band's
/// median and the median of a band of the same width just outside are background
/// (skin is brighter than the air between fingers). Then a small opening, the largest
/// component and hole filling. Films where the outside is not darker than the edge
/// band (negatives, flat exposures) come back unchanged.
pub fn refine_gaps(img: &GrayImage, mask: &Mask, band: f32) -> Mask {
    let median = |m: &Mask| {
        let mut v = img.values_in(m);
        if v.is_empty() {
            return None;
        }
        let mid = v.len() / 2;
        Some(*v.select_nth_unstable_by(mid, f32::total_cmp).1)
    };
    let mut inner = mask.clone();
    inner.subtract(&super::erode(mask, band));
    let mut outer = super::dilate(mask, band);
    outer.subtract(mask);
    let (Some(mi), Some(mo)) = (median(&inner), median(&outer)) else {
        return mask.clone();
    };
    if mi <= mo {
        return mask.clone();
    }
    let t = 0.5 * (mi + mo);
    let mut out = mask.clone();
    for (i, (o, &b)) in out
        .as_mut_slice()
        .iter_mut()
        .zip(inner.as_slice())
        .enumerate()
    {
        if b != 0 && img.as_slice()[i] < t {
            *o = 0;
        }
    }
    let out = super::open(&out, 2.0);
    super::fill_holes(&super::largest_component(&out, super::Connectivity::Eight))
}

#[cfg(test)]
mod refine_tests {
    use super::*;

    #[test]
    fn refine_gaps_opens_a_bridged_gap_between_two_fingers() {
        // Two bright "fingers" 10 px wide with a 6 px dark gap, on a dark field; the
        // coarse mask bridges the gap down to y = 40.
        let (w, h) = (60, 80);
        let mut img = GrayImage::filled(w, h, 0.1);
        let mut coarse = Mask::new(w, h);
        for y in 10..80 {
            for x in 14..40 {
                let finger = !(24..30).contains(&x) || y >= 40;
                if finger {
                    img.set(x, y, 0.7);
                }
                coarse.set(x, y, true);
            }
        }
        let refined = refine_gaps(&img, &coarse, 14.0);
        assert!(!refined.get(27, 20), "gap opened");
        assert!(refined.get(18, 20) && refined.get(34, 20), "fingers kept");
        assert!(refined.get(27, 60), "palm kept");
    }
}
