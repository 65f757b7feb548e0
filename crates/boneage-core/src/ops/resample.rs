//! Resampling.

use rayon::prelude::*;

use crate::geometry::{Affine, Point};
use crate::image::{GrayImage, Mask};

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
    let src = img.as_slice();
    // Vertical pass first: whole source rows are summed, contiguous and vectorised,
    // and the horizontal pass then runs on `height` rows only.
    let mut out = vec![0f32; width * height];
    out.par_chunks_mut(width).zip(&wy).for_each_init(
        || vec![0f32; sw],
        |tmp, (dst, (first, w))| {
            tmp.iter_mut().for_each(|v| *v = 0.0);
            for (k, &wk) in w.iter().enumerate() {
                let srow = &src[(first + k) * sw..(first + k + 1) * sw];
                for (t, s) in tmp.iter_mut().zip(srow) {
                    *t += wk * s;
                }
            }
            for (o, (first, w)) in dst.iter_mut().zip(&wx) {
                *o = w.iter().zip(&tmp[*first..]).map(|(a, b)| a * b).sum();
            }
        },
    );
    GrayImage::from_vec(width, height, out).expect("sizes match")
}

/// Bilinear sample at continuous-coordinate `(x, y)` (pixel centres at `+0.5`),
/// zero outside the image (a sample straddling the edge blends with zero).
#[inline]
fn sample_bilinear_zero(src: &[f32], w: usize, h: usize, x: f64, y: f64) -> f32 {
    let (fx, fy) = (x - 0.5, y - 0.5);
    let (x0, y0) = (fx.floor(), fy.floor());
    let (ax, ay) = ((fx - x0) as f32, (fy - y0) as f32);
    let (x0, y0) = (x0 as i64, y0 as i64);
    let at = |xx: i64, yy: i64| -> f32 {
        if xx < 0 || yy < 0 || xx >= w as i64 || yy >= h as i64 {
            0.0
        } else {
            src[yy as usize * w + xx as usize]
        }
    };
    let top = at(x0, y0) * (1.0 - ax) + at(x0 + 1, y0) * ax;
    let bottom = at(x0, y0 + 1) * (1.0 - ax) + at(x0 + 1, y0 + 1) * ax;
    top * (1.0 - ay) + bottom * ay
}

/// Resizes with bilinear interpolation (pixel centres aligned, edges clamped), the
/// usual filter for upscaling and mild downscaling. Use [`resize_area`] to shrink a
/// lot.
///
/// Panics if a target dimension is zero.
pub fn resize_bilinear(img: &GrayImage, width: usize, height: usize) -> GrayImage {
    assert!(width > 0 && height > 0, "resize to an empty image");
    let (sw, sh) = (img.width(), img.height());
    let (sx, sy) = (sw as f32 / width as f32, sh as f32 / height as f32);
    // Precomputed column taps: (left index, right index, weight of right).
    let cols: Vec<(usize, usize, f32)> = (0..width)
        .map(|x| {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f32);
            let x0 = fx.floor() as usize;
            (x0, (x0 + 1).min(sw - 1), fx - x0 as f32)
        })
        .collect();
    let src = img.as_slice();
    let mut out = vec![0f32; width * height];
    out.par_chunks_mut(width).enumerate().for_each(|(y, row)| {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let ay = fy - y0 as f32;
        let (r0, r1) = (&src[y0 * sw..(y0 + 1) * sw], &src[y1 * sw..(y1 + 1) * sw]);
        for (o, &(x0, x1, ax)) in row.iter_mut().zip(&cols) {
            let top = r0[x0] + (r0[x1] - r0[x0]) * ax;
            let bottom = r1[x0] + (r1[x1] - r1[x0]) * ax;
            *o = top + (bottom - top) * ay;
        }
    });
    GrayImage::from_vec(width, height, out).expect("sizes match")
}

/// The `x` range `[lo, hi)` of a row where `p + x * d` stays within `[min, max]`.
fn span(p: f64, d: f64, min: f64, max: f64, n: usize) -> (usize, usize) {
    if d.abs() < 1e-12 {
        return if p >= min && p <= max { (0, n) } else { (0, 0) };
    }
    let (a, b) = ((min - p) / d, (max - p) / d);
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let lo = lo.ceil().max(0.0).min(n as f64) as usize;
    let hi = (hi.floor() + 1.0).max(0.0).min(n as f64) as usize;
    (lo, hi.max(lo))
}

/// Warps `img` into a `width`x`height` output: output point `p` takes the bilinear
/// sample of the input at `out_to_in.apply(p)`, zero outside the input.
pub fn warp_affine(img: &GrayImage, out_to_in: &Affine, width: usize, height: usize) -> GrayImage {
    let (w, h) = (img.width(), img.height());
    let src = img.as_slice();
    let [a, b, tx, c, d, ty] = out_to_in.0;
    let mut out = vec![0f32; width * height];
    if w < 2 || h < 2 {
        out.par_chunks_mut(width.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                let yc = y as f64 + 0.5;
                for (x, o) in row.iter_mut().enumerate() {
                    let xc = x as f64 + 0.5;
                    *o =
                        sample_bilinear_zero(src, w, h, a * xc + b * yc + tx, c * xc + d * yc + ty);
                }
            });
        return GrayImage::from_vec(width, height, out).expect("sizes match");
    }
    out.par_chunks_mut(width.max(1))
        .enumerate()
        .for_each(|(y, row)| {
            let yc = y as f64 + 0.5;
            // Sample positions in the input's pixel-index frame (centres at integers).
            let (x0, y0) = (a * 0.5 + b * yc + tx - 0.5, c * 0.5 + d * yc + ty - 0.5);
            // Interior: all four taps inside, so no bounds checks and no zero blending.
            let (xl, xh) = span(x0, a, 0.0, (w - 1) as f64 - 1e-6, width);
            let (yl, yh) = span(y0, c, 0.0, (h - 1) as f64 - 1e-6, width);
            let (lo, hi) = (xl.max(yl), xh.min(yh).max(xl.max(yl)));
            for (x, o) in row.iter_mut().enumerate().take(lo) {
                *o = sample_bilinear_zero(
                    src,
                    w,
                    h,
                    x0 + a * x as f64 + 0.5,
                    y0 + c * x as f64 + 0.5,
                );
            }
            // The interior in 16.16 fixed point: the position steps by integer adds, so
            // there is no float-to-integer conversion per pixel (drift over a row is at
            // most 1/65536 of a pixel per step; taps are clamped all the same).
            const ONE: f64 = 65536.0;
            let (mut fx, mut fy) = (
                ((x0 + a * lo as f64) * ONE).round() as i64,
                ((y0 + c * lo as f64) * ONE).round() as i64,
            );
            let (dx, dy) = ((a * ONE).round() as i64, (c * ONE).round() as i64);
            let (xmax, ymax) = ((w - 2) as i64, (h - 2) as i64);
            const FRAC: f32 = 1.0 / 65536.0;
            for o in &mut row[lo..hi] {
                let (ix, iy) = ((fx >> 16).clamp(0, xmax), (fy >> 16).clamp(0, ymax));
                let (ax, ay) = (
                    ((fx - (ix << 16)) as f32 * FRAC).min(1.0),
                    ((fy - (iy << 16)) as f32 * FRAC).min(1.0),
                );
                let i = iy as usize * w + ix as usize;
                let (r0, r1) = (&src[i..i + 2], &src[i + w..i + w + 2]);
                let top = r0[0] + (r0[1] - r0[0]) * ax;
                let bottom = r1[0] + (r1[1] - r1[0]) * ax;
                *o = top + (bottom - top) * ay;
                fx += dx;
                fy += dy;
            }
            for (x, o) in row.iter_mut().enumerate().skip(hi) {
                *o = sample_bilinear_zero(
                    src,
                    w,
                    h,
                    x0 + a * x as f64 + 0.5,
                    y0 + c * x as f64 + 0.5,
                );
            }
        });
    GrayImage::from_vec(width, height, out).expect("sizes match")
}

/// `img` turned by `angle` (radians, clockwise as seen, since y points down) about its
/// centre onto a field just large enough to hold all of it (the uncovered corners
/// black), with the image → field map.
pub fn turn_onto_field(img: &GrayImage, angle: f64) -> (GrayImage, Affine) {
    let (w, h) = (img.width() as f64, img.height() as f64);
    // Less a hair before rounding up: a quarter turn keeps the size exactly (cos 90°
    // is 6e-17, not 0).
    let (cw, ch) = (
        (w * angle.cos().abs() + h * angle.sin().abs() - 1e-6).ceil(),
        (w * angle.sin().abs() + h * angle.cos().abs() - 1e-6).ceil(),
    );
    // Image → field: centre to origin, turn, origin to the field's centre.
    let map = Affine::similarity(1.0, angle, false, Point::new(cw / 2.0, ch / 2.0)).compose(
        &Affine::similarity(1.0, 0.0, false, Point::new(-w / 2.0, -h / 2.0)),
    );
    let inv = map.inverse().expect("a turn is invertible");
    (warp_affine(img, &inv, cw as usize, ch as usize), map)
}

/// Warps a mask with nearest-neighbour sampling (so it stays binary): output pixel
/// `p` takes the input pixel holding `out_to_in.apply(p)` (pixel centres at +0.5),
/// zero outside the input.
///
/// The positions are the same sums as [`Affine::apply`]'s, and each is floored
/// exactly ([`floor_index`]), so the result is the definition's pixel for pixel. A
/// map without rotation or shear (scale and shift, as between a film and a network's
/// input) reads each output row through one table of source columns.
pub fn warp_mask(mask: &Mask, out_to_in: &Affine, width: usize, height: usize) -> Mask {
    let (w, h) = (mask.width(), mask.height());
    let src = mask.as_slice();
    let [a, b, tx, c, d, ty] = out_to_in.0;
    let mut out = vec![0u8; width * height];
    let inside = |i: i64, n: usize| (i >= 0 && (i as u64) < n as u64).then_some(i as usize);
    if b == 0.0 && c == 0.0 {
        // `b·y` and `c·x` are then ±0, which leaves each sum's value as it is.
        let columns: Vec<Option<usize>> = (0..width)
            .map(|x| inside(floor_index(a * (x as f64 + 0.5) + tx), w))
            .collect();
        out.par_chunks_mut(width.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                let Some(yi) = inside(floor_index(d * (y as f64 + 0.5) + ty), h) else {
                    return;
                };
                let line = &src[yi * w..(yi + 1) * w];
                for (o, column) in row.iter_mut().zip(&columns) {
                    if let Some(xi) = *column {
                        *o = line[xi];
                    }
                }
            });
    } else {
        out.par_chunks_mut(width.max(1))
            .enumerate()
            .for_each(|(y, row)| {
                let yc = y as f64 + 0.5;
                let (by, dy) = (b * yc, d * yc);
                for (x, o) in row.iter_mut().enumerate() {
                    let xc = x as f64 + 0.5;
                    let xi = inside(floor_index(a * xc + by + tx), w);
                    let yi = inside(floor_index(c * xc + dy + ty), h);
                    if let (Some(xi), Some(yi)) = (xi, yi) {
                        *o = src[yi * w + xi];
                    }
                }
            });
    }
    Mask::from_vec(width, height, out).expect("sizes match")
}

/// `v.floor() as i64`, exactly (NaN 0, saturating beyond `i64`'s range), without a
/// call to the C library's `floor`, which a build for baseline x86-64 makes for
/// every pixel: truncation is the floor except just below a negative integer.
#[inline]
fn floor_index(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v {
        t.saturating_sub(1)
    } else {
        t
    }
}
