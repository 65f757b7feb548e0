//! Binary morphology with a disk, through an exact Euclidean distance transform
//! (Felzenszwalb & Huttenlocher 2012), so its cost does not grow with the radius.

use rayon::prelude::*;

use crate::image::Mask;

const INF: f32 = 1e20;

/// 1-D squared distance transform of `f` (lower envelope of parabolas).
fn edt_1d(f: &[f32], out: &mut [f32], v: &mut [usize], z: &mut [f32]) {
    let n = f.len();
    let mut k = 0usize;
    v[0] = 0;
    z[0] = -INF;
    z[1] = INF;
    for q in 1..n {
        // z[0] is -INF, so the loop stops at k = 0 at the latest.
        let mut s;
        loop {
            let p = v[k];
            s = ((f[q] + (q * q) as f32) - (f[p] + (p * p) as f32)) / (2.0 * (q as f32 - p as f32));
            if s <= z[k] && k > 0 {
                k -= 1;
            } else {
                break;
            }
        }
        k += 1;
        v[k] = q;
        z[k] = s;
        z[k + 1] = INF;
    }
    k = 0;
    for (q, o) in out.iter_mut().enumerate().take(n) {
        while z[k + 1] < q as f32 {
            k += 1;
        }
        let d = q as f32 - v[k] as f32;
        *o = d * d + f[v[k]];
    }
}

/// Squared Euclidean distance from every pixel to the nearest pixel of `mask`
/// (0 on the mask; very large everywhere if the mask is empty).
pub fn distance_transform_sq(mask: &Mask) -> Vec<f32> {
    let (w, h) = (mask.width(), mask.height());
    let mut d: Vec<f32> = mask
        .as_slice()
        .iter()
        .map(|&m| if m != 0 { 0.0 } else { INF })
        .collect();
    // Columns, then rows, each in parallel.
    let mut cols = vec![0f32; w * h];
    cols.par_chunks_mut(h).enumerate().for_each(|(x, col)| {
        let f: Vec<f32> = (0..h).map(|y| d[y * w + x]).collect();
        let (mut v, mut z) = (vec![0usize; h], vec![0f32; h + 1]);
        edt_1d(&f, col, &mut v, &mut z);
    });
    d.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let f: Vec<f32> = (0..w).map(|x| cols[x * h + y]).collect();
        let (mut v, mut z) = (vec![0usize; w], vec![0f32; w + 1]);
        edt_1d(&f, row, &mut v, &mut z);
    });
    d
}

/// Dilation by a disk of radius `r` pixels.
pub fn dilate(mask: &Mask, r: f32) -> Mask {
    let d = distance_transform_sq(mask);
    let r2 = r * r;
    Mask::from_vec(
        mask.width(),
        mask.height(),
        d.iter().map(|&v| (v <= r2) as u8).collect(),
    )
    .expect("sizes match")
}

/// Erosion by a disk of radius `r` pixels. Pixels beyond the image border do not
/// erode (as in OpenCV), so a hand that leaves the film keeps its edge there.
pub fn erode(mask: &Mask, r: f32) -> Mask {
    dilate(&mask.inverted(), r).inverted()
}

/// Opening (erosion then dilation): removes parts thinner than the disk.
pub fn open(mask: &Mask, r: f32) -> Mask {
    dilate(&erode(mask, r), r)
}

/// Closing (dilation then erosion): fills gaps narrower than the disk.
pub fn close(mask: &Mask, r: f32) -> Mask {
    erode(&dilate(mask, r), r)
}

/// Removes thin appendages from a mask: parts narrower than `2·r` that reach more
/// than `1.5·r` away from the mask's body (its largest component after an opening
/// by `r`), such as a strip of a cassette edge joined to the forearm. Everything of
/// the mask within `1.5·r` of the body, fingertips included, is kept.
pub fn trim_thin(mask: &Mask, r: f32) -> Mask {
    let body = super::largest_component(&open(mask, r), super::Connectivity::Eight);
    let mut out = dilate(&body, 1.5 * r);
    out.intersect(mask);
    super::fill_holes(&super::largest_component(&out, super::Connectivity::Eight))
}

#[cfg(test)]
mod trim_tests {
    use super::*;

    #[test]
    fn trim_thin_cuts_a_strip_and_keeps_the_body() {
        // A 40×40 block with a 3-pixel-thick strip running 50 pixels off its side.
        let mut m = Mask::new(120, 80);
        for y in 20..60 {
            for x in 10..50 {
                m.set(x, y, true);
            }
        }
        for y in 55..58 {
            for x in 50..100 {
                m.set(x, y, true);
            }
        }
        let t = trim_thin(&m, 4.0);
        assert!(t.get(30, 40) && t.get(10, 20) && t.get(49, 59), "body kept");
        assert!(!t.get(80, 56) && !t.get(99, 56), "strip cut");
        assert!(t.count() >= 40 * 40);
    }
}
