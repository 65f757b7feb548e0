//! Resampling.

use crate::image::GrayImage;

/// For each output index, the (first source index, weights) of an area filter that
/// maps `src` samples onto `dst` samples. Weights of one output sum to 1.
fn area_weights(src: usize, dst: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let lo = i as f64 * scale;
            let hi = ((i + 1) as f64 * scale).min(src as f64);
            let first = lo.floor() as usize;
            let last = (hi.ceil() as usize).clamp(first + 1, src);
            let mut w: Vec<f32> = (first..last)
                .map(|j| {
                    let a = lo.max(j as f64);
                    let b = hi.min(j as f64 + 1.0);
                    (b - a).max(0.0) as f32
                })
                .collect();
            let sum: f32 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|v| *v /= sum);
            } else {
                w.iter_mut().for_each(|v| *v = 1.0 / (last - first) as f32);
            }
            (first, w)
        })
        .collect()
}

/// Resizes by area averaging (each output pixel is the mean of the source area it
/// covers), the right filter for downscaling without aliasing. Upscaling works too
/// and degrades to nearest-neighbour-like blocks.
///
/// Panics if a target dimension is zero.
pub fn resize_area(img: &GrayImage, width: usize, height: usize) -> GrayImage {
    assert!(width > 0 && height > 0, "resize to an empty image");
    let (sw, sh) = (img.width(), img.height());
    let wx = area_weights(sw, width);
    let wy = area_weights(sh, height);
    // Horizontal pass: sh rows of `width`.
    let src = img.as_slice();
    let mut tmp = vec![0f32; sh * width];
    for y in 0..sh {
        let row = &src[y * sw..(y + 1) * sw];
        let out = &mut tmp[y * width..(y + 1) * width];
        for (o, (first, w)) in out.iter_mut().zip(&wx) {
            *o = w.iter().zip(&row[*first..]).map(|(a, b)| a * b).sum();
        }
    }
    // Vertical pass.
    let mut out = vec![0f32; width * height];
    for (y, (first, w)) in wy.iter().enumerate() {
        let dst = &mut out[y * width..(y + 1) * width];
        for (k, &wk) in w.iter().enumerate() {
            let srow = &tmp[(first + k) * width..(first + k + 1) * width];
            for (d, s) in dst.iter_mut().zip(srow) {
                *d += wk * s;
            }
        }
    }
    GrayImage::from_vec(width, height, out).expect("sizes match")
}
