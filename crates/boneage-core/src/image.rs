//! A minimal single-channel float image, the currency of the pipeline.

use std::path::Path;

use crate::error::{Error, Result};

/// A grayscale image of `f32` samples, row-major, usually in `[0, 1]`.
#[derive(Clone, PartialEq)]
pub struct GrayImage {
    width: usize,
    height: usize,
    data: Vec<f32>,
}

impl GrayImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        Self::filled(width, height, 0.0)
    }

    /// An image with every pixel set to `value`.
    pub fn filled(width: usize, height: usize, value: f32) -> Self {
        Self {
            width,
            height,
            data: vec![value; width * height],
        }
    }

    /// Wraps row-major samples. Fails if the length does not match.
    pub fn from_vec(width: usize, height: usize, data: Vec<f32>) -> Result<Self> {
        if data.len() != width * height {
            return Err(Error::InvalidArgument(format!(
                "{} samples for a {width}x{height} image",
                data.len()
            )));
        }
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Row-major samples.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Mutable row-major samples.
    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// The negative, `1 − v` at every pixel: bone dark ↔ bone bright.
    pub fn negative(&self) -> Self {
        Self {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|&v| 1.0 - v).collect(),
        }
    }

    /// Every value raised to the power `gamma`: under 1 it brings the dark values
    /// up — the faint soft tissue of a dark film beside its bright bones — and
    /// leaves black black and white white.
    pub fn raised(&self, gamma: f32) -> Self {
        Self {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|&v| v.max(0.0).powf(gamma)).collect(),
        }
    }

    /// The share of the pixels darker than `level`.
    pub fn share_below(&self, level: f32) -> f64 {
        if self.data.is_empty() {
            return 0.0;
        }
        self.data.iter().filter(|&&v| v < level).count() as f64 / self.data.len() as f64
    }

    /// Consumes the image, returning its samples.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// The sample at column `x`, row `y`. Panics out of bounds, like slice indexing.
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }

    /// Sets the sample at column `x`, row `y`.
    #[inline]
    pub fn set(&mut self, x: usize, y: usize, v: f32) {
        self.data[y * self.width + x] = v;
    }

    /// The samples under the pixels of `mask` (same size), in raster order.
    pub fn values_in(&self, mask: &Mask) -> Vec<f32> {
        self.data
            .iter()
            .zip(mask.as_slice())
            .filter(|(_, m)| **m != 0)
            .map(|(v, _)| *v)
            .collect()
    }

    /// The share of the image's middle (its central 60 % in width and in height, where
    /// a hand film holds the hand) at the bone's end of the values: at or above
    /// 254/255 when bone is bright, at or below 1/255 when it is dark. Bone clipped
    /// there by an exposure or a window has lost its detail. Whether bone is bright
    /// comes from `hand` (same size): the mean inside it against the mean outside;
    /// without a hand of some size (under 5 % of the image, a scrap of mask that
    /// says nothing of the polarity), bright.
    pub fn clipped_share(&self, hand: &Mask) -> f64 {
        let (w, h) = (self.width, self.height);
        let (x0, x1, y0, y1) = (w / 5, w - w / 5, h / 5, h - h / 5);
        if x1 <= x0 || y1 <= y0 {
            return 0.0;
        }
        let [mut sum_in, mut n_in, mut sum_out] = [0.0f64; 3];
        for (v, m) in self.data.iter().zip(hand.as_slice()) {
            if *m != 0 {
                sum_in += f64::from(*v);
                n_in += 1.0;
            } else {
                sum_out += f64::from(*v);
            }
        }
        let n_out = ((w * h) as f64 - n_in).max(1.0);
        let bone_bright = n_in < 0.05 * (w * h) as f64 || sum_in / n_in >= sum_out / n_out;
        let clipped = |v: f32| {
            if bone_bright {
                v >= 254.0 / 255.0
            } else {
                v <= 1.0 / 255.0
            }
        };
        let count = (y0..y1)
            .flat_map(|y| self.data[y * w + x0..y * w + x1].iter())
            .filter(|&&v| clipped(v))
            .count();
        count as f64 / ((x1 - x0) * (y1 - y0)) as f64
    }

    /// Clamps to `[0, 1]` and quantizes to 8 bits (round to nearest).
    pub fn to_u8(&self) -> Vec<u8> {
        self.data.iter().map(|&v| unit_to_u8(v)).collect()
    }

    /// Converts to an `image` crate buffer, clamped to `[0, 1]`.
    pub fn to_luma8(&self) -> image::GrayImage {
        image::GrayImage::from_raw(self.width as u32, self.height as u32, self.to_u8())
            .expect("buffer length matches dimensions")
    }

    /// Writes an 8-bit grayscale PNG atomically (temporary file, then rename).
    pub fn save_png(&self, path: &Path) -> Result<()> {
        save_luma8_png(&self.to_luma8(), path)
    }
}

impl std::fmt::Debug for GrayImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The samples are too many to print; size and range say what matters.
        let (lo, hi) = self
            .data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                (l.min(v), h.max(v))
            });
        write!(
            f,
            "GrayImage({}x{}, range {lo}..{hi})",
            self.width, self.height
        )
    }
}

/// Clamps a unit-range value and rounds it to a byte.
#[inline]
pub fn unit_to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// Writes an 8-bit grayscale PNG atomically.
pub fn save_luma8_png(img: &image::GrayImage, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, |w| {
        img.write_to(w, image::ImageFormat::Png)
            .map_err(std::io::Error::other)
    })
}

/// Writes an 8-bit RGB PNG atomically.
pub fn save_rgb8_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, |w| {
        img.write_to(w, image::ImageFormat::Png)
            .map_err(std::io::Error::other)
    })
}

/// A binary mask, 1 = inside, row-major.
#[derive(Clone, PartialEq, Eq)]
pub struct Mask {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl std::fmt::Debug for Mask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Mask({}x{}, {} set)",
            self.width,
            self.height,
            self.count()
        )
    }
}

impl Mask {
    /// An empty mask.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0; width * height],
        }
    }

    /// A mask with every pixel set (the whole picture counts as hand).
    pub fn full(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![1; width * height],
        }
    }

    /// Wraps 0/1 values (any non-zero counts as 1). Fails if the length is wrong.
    pub fn from_vec(width: usize, height: usize, mut data: Vec<u8>) -> Result<Self> {
        if data.len() != width * height {
            return Err(Error::InvalidArgument(format!(
                "{} mask values for a {width}x{height} mask",
                data.len()
            )));
        }
        data.iter_mut().for_each(|v| *v = (*v != 0) as u8);
        Ok(Self {
            width,
            height,
            data,
        })
    }

    /// Pixels strictly above `threshold`.
    pub fn threshold(img: &GrayImage, threshold: f32) -> Self {
        Self {
            width: img.width(),
            height: img.height(),
            data: img
                .as_slice()
                .iter()
                .map(|&v| (v > threshold) as u8)
                .collect(),
        }
    }

    /// Reads a mask PNG (any pixel above half-range is inside).
    pub fn load_png(path: &Path) -> Result<Self> {
        let r = crate::io::read_radiograph(path)?;
        Ok(Self::threshold(&r.pixels, 0.5))
    }

    /// Width.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height.
    pub fn height(&self) -> usize {
        self.height
    }

    /// 0/1 values.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }

    /// Mutable 0/1 values (keep them 0 or 1).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.data
    }

    /// Whether pixel (`x`, `y`) is inside.
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> bool {
        self.data[y * self.width + x] != 0
    }

    /// Sets pixel (`x`, `y`).
    #[inline]
    pub fn set(&mut self, x: usize, y: usize, v: bool) {
        self.data[y * self.width + x] = v as u8;
    }

    /// The bounding box of the pixels inside, `[x0, y0, x1, y1]` with `x1`, `y1`
    /// exclusive; `None` for an empty mask.
    pub fn bounds(&self) -> Option<[usize; 4]> {
        let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
        for (y, row) in self.data.chunks_exact(self.width.max(1)).enumerate() {
            let Some(first) = row.iter().position(|&v| v != 0) else {
                continue;
            };
            let last = row.iter().rposition(|&v| v != 0).unwrap_or(first);
            x0 = x0.min(first);
            x1 = x1.max(last + 1);
            y0 = y0.min(y);
            y1 = y + 1;
        }
        (x1 > x0).then_some([x0, y0, x1, y1])
    }

    /// The centroid of the pixels inside and the direction of their longer axis, as
    /// the angle of that axis from the vertical, clockwise as seen, in
    /// `(-π/2, π/2]` (an axis has no head: the angle plus π is the same axis);
    /// `None` for an empty mask.
    pub fn principal_axis(&self) -> Option<(crate::geometry::Point, f64)> {
        let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy) =
            (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
        for (y, row) in self.data.chunks_exact(self.width.max(1)).enumerate() {
            let y = y as f64 + 0.5;
            for (x, _) in row.iter().enumerate().filter(|&(_, &v)| v != 0) {
                let x = x as f64 + 0.5;
                n += 1.0;
                sx += x;
                sy += y;
                sxx += x * x;
                syy += y * y;
                sxy += x * y;
            }
        }
        if n == 0.0 {
            return None;
        }
        let (cx, cy) = (sx / n, sy / n);
        let (vxx, vyy, vxy) = (sxx / n - cx * cx, syy / n - cy * cy, sxy / n - cx * cy);
        // The longer axis's angle from the x axis (y down), then from the vertical:
        // a vertical axis (0, 1) is 0, one leaning right at the top (1, -1) is π/4.
        let from_x = 0.5 * (2.0 * vxy).atan2(vxx - vyy);
        let (dx, dy) = (from_x.cos(), from_x.sin());
        let mut lean = dx.atan2(-dy);
        if lean > std::f64::consts::FRAC_PI_2 {
            lean -= std::f64::consts::PI;
        } else if lean <= -std::f64::consts::FRAC_PI_2 {
            lean += std::f64::consts::PI;
        }
        Some((crate::geometry::Point::new(cx, cy), lean))
    }

    /// Where a shape runs off the image: for each edge, `[top, right, bottom, left]`,
    /// the share of its pixels with a pixel inside within `margin` of it (a fraction of
    /// the image's height for the top and bottom, of its width for the sides; at least
    /// the edge's own row or column).
    pub fn edge_contact(&self, margin: f64) -> [f64; 4] {
        let (w, h) = (self.width, self.height);
        if w == 0 || h == 0 {
            return [0.0; 4];
        }
        let my = ((margin * h as f64) as usize).clamp(1, h);
        let mx = ((margin * w as f64) as usize).clamp(1, w);
        let across = |x: usize, ys: std::ops::Range<usize>| ys.into_iter().any(|y| self.get(x, y));
        let along = |y: usize, xs: std::ops::Range<usize>| xs.into_iter().any(|x| self.get(x, y));
        let share = |n: usize, of: usize| n as f64 / of as f64;
        [
            share((0..w).filter(|&x| across(x, 0..my)).count(), w),
            share((0..h).filter(|&y| along(y, w - mx..w)).count(), h),
            share((0..w).filter(|&x| across(x, h - my..h)).count(), w),
            share((0..h).filter(|&y| along(y, 0..mx)).count(), h),
        ]
    }

    /// Number of pixels inside.
    pub fn count(&self) -> usize {
        self.data.iter().map(|&v| v as usize).sum()
    }

    /// The complement.
    pub fn inverted(&self) -> Self {
        Self {
            width: self.width,
            height: self.height,
            data: self.data.iter().map(|&v| 1 - v).collect(),
        }
    }

    /// Keeps only the pixels that are also in `other` (same size).
    pub fn intersect(&mut self, other: &Mask) {
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a &= b;
        }
    }

    /// Adds the pixels that are in `other` (same size).
    pub fn union(&mut self, other: &Mask) {
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a |= b;
        }
    }

    /// Removes the pixels that are in `other` (same size).
    pub fn subtract(&mut self, other: &Mask) {
        for (a, &b) in self.data.iter_mut().zip(&other.data) {
            *a &= 1 - b;
        }
    }

    /// Intersection over union with another mask of the same size (1 when both empty).
    pub fn iou(&self, other: &Mask) -> f64 {
        let (mut inter, mut union) = (0usize, 0usize);
        for (&a, &b) in self.data.iter().zip(&other.data) {
            inter += (a & b) as usize;
            union += (a | b) as usize;
        }
        if union == 0 {
            1.0
        } else {
            inter as f64 / union as f64
        }
    }

    /// The mask at another size: bilinear resampling thresholded at 0.5 (smooth edges
    /// when a reduced mask is brought back to its image's size).
    pub fn resized(&self, width: usize, height: usize) -> Mask {
        Mask::threshold(
            &crate::ops::resize_bilinear(&self.to_image(), width, height),
            0.5,
        )
    }

    /// As an image, 1.0 inside.
    pub fn to_image(&self) -> GrayImage {
        GrayImage::from_vec(
            self.width,
            self.height,
            self.data.iter().map(|&v| v as f32).collect(),
        )
        .expect("sizes match")
    }

    /// Writes a black/white PNG atomically.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let img = image::GrayImage::from_raw(
            self.width as u32,
            self.height as u32,
            self.data.iter().map(|&v| v * 255).collect(),
        )
        .expect("buffer length matches dimensions");
        save_luma8_png(&img, path)
    }
}
