//! Smoothing.

use rayon::prelude::*;

use crate::image::GrayImage;

/// Separable Gaussian blur with standard deviation `sigma` pixels (kernel radius
/// 3σ, edges clamped). `sigma <= 0` returns a copy.
pub fn gaussian_blur(img: &GrayImage, sigma: f32) -> GrayImage {
    if sigma <= 0.0 {
        return img.clone();
    }
    let r = (3.0 * sigma).ceil() as i64;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    let (w, h) = (img.width(), img.height());
    let src = img.as_slice();
    let mut tmp = vec![0f32; w * h];
    tmp.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        let s = &src[y * w..(y + 1) * w];
        for (x, o) in row.iter_mut().enumerate() {
            *o = k
                .iter()
                .enumerate()
                .map(|(j, &kv)| kv * s[(x as i64 + j as i64 - r).clamp(0, w as i64 - 1) as usize])
                .sum();
        }
    });
    let mut out = vec![0f32; w * h];
    out.par_chunks_mut(w).enumerate().for_each(|(y, row)| {
        for (j, &kv) in k.iter().enumerate() {
            let yy = (y as i64 + j as i64 - r).clamp(0, h as i64 - 1) as usize;
            for (o, &s) in row.iter_mut().zip(&tmp[yy * w..(yy + 1) * w]) {
                *o += kv * s;
            }
        }
    });
    GrayImage::from_vec(w, h, out).expect("sizes match")
}
