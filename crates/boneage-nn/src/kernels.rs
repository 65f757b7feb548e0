//! CPU kernels for the networks' hot spot, the 3×3 "same" convolution (stride 1,
//! padding 1, no bias), on contiguous NCHW `f32` slices: forward, the input gradient
//! and the weight gradient, each as im2col + one GEMM per image (the `gemm` crate, the
//! one burn's flex backend uses), with images spread over rayon's threads.
//!
//! burn's flex backend computes the weight gradient as a direct convolution with the
//! output gradient as kernel, and converts layouts around its im2col; here all three
//! are GEMMs on the NCHW data as it is.
//!
//! Batch norm (batch statistics) followed by an activation (ELU in the VGG blocks,
//! ReLU6 or none in EfficientNet-Lite) is fused the same way: burn computes it through a dozen whole-tensor passes and two
//! layout transposes; [`BnAct`] takes two passes forward and two backward. The 2×2
//! max pool ([`MaxPool2`]) keeps no index tensor: its backward finds the maximum again.
//! [`crate::fastops`] plugs both into burn.

#![allow(unsafe_code)] // GEMM on raw strided pointers; each call states its bounds.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

/// Sizes of a 3×3 same convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv3x3 {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Height of input and output.
    pub height: usize,
    /// Width of input and output.
    pub width: usize,
}

/// The output pointer shared by the work items of [`Conv3x3::forward`], each of which
/// writes its own disjoint part.
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub(crate) *mut f32);
// SAFETY: the items write disjoint elements and the buffer outlives them (the
// parallel loop ends before it is used).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

thread_local! {
    /// Per-thread im2col buffer, grown as needed and reused across calls.
    static COLUMNS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Conv3x3 {
    fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Whether to give each image its own thread (else one image at a time, the GEMM
    /// split over the threads).
    fn per_image(&self) -> bool {
        self.batch >= rayon::current_num_threads()
    }

    fn gemm_parallelism(&self) -> Parallelism {
        if self.per_image() || rayon::current_num_threads() == 1 {
            Parallelism::None
        } else {
            Parallelism::Rayon(0)
        }
    }

    /// Image rows per im2col tile: the tile (`cin·9` rows of `rows·W` columns) is kept
    /// near 256 KB so that it stays in the L2 cache between its writing and the GEMM.
    fn tile_rows(&self) -> usize {
        (TILE_FLOATS / (self.cin * 9 * self.width)).clamp(1, self.height)
    }

    /// Output `[batch, cout, H, W]` of input `x` `[batch, cin, H, W]` and weights
    /// `w` `[cout, cin, 3, 3]`.
    pub fn forward(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (hw, k) = (self.plane(), self.cin * 9);
        assert_eq!(x.len(), self.batch * self.cin * hw, "input size");
        assert_eq!(w.len(), self.cout * k, "weight size");
        let len = self.batch * self.cout * hw;
        // Every element is written by exactly one GEMM below (the tiles of all images
        // cover the output), so the buffer starts uninitialised instead of zeroed.
        let mut y: Vec<f32> = Vec::with_capacity(len);
        let out = SharedOut(y.as_mut_ptr());
        let rows = self.tile_rows();
        let tiles = self.height.div_ceil(rows);
        // One work item per (image, tile), spread over the threads: a batch of one
        // image keeps both cores busy without splitting the small GEMMs.
        (0..self.batch * tiles).into_par_iter().for_each(|item| {
            let (b, t) = (item / tiles, item % tiles);
            let (y0, y1) = (t * rows, ((t + 1) * rows).min(self.height));
            let n = (y1 - y0) * self.width;
            let img = &x[b * self.cin * hw..][..self.cin * hw];
            with_columns(k * n, |col| {
                im2col(img, self, y0, y1, col);
                // y[b][:, tile] [cout, n] = w [cout, k] · col [k, n]
                // SAFETY: the strides describe row-major buffers of the sizes asserted
                // above; the item writes the columns y0·W..y1·W of image b's rows, which
                // no other item touches, all inside the allocation of `len` floats.
                unsafe {
                    gemm(
                        self.cout,
                        n,
                        k,
                        out.get().add(b * self.cout * hw + y0 * self.width),
                        1,
                        hw as isize,
                        false,
                        w.as_ptr(),
                        1,
                        k as isize,
                        col.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            })
        });
        // SAFETY: all `len` elements were written above.
        unsafe { y.set_len(len) };
        y
    }

    /// Gradient of the weights `[cout, cin, 3, 3]` from the input `x` and the output
    /// gradient `dy` `[batch, cout, H, W]`.
    pub fn weight_grad(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (hw, k) = (self.plane(), self.cin * 9);
        assert_eq!(x.len(), self.batch * self.cin * hw, "input size");
        assert_eq!(
            dy.len(),
            self.batch * self.cout * hw,
            "output gradient size"
        );
        let par = self.gemm_parallelism();
        let rows = self.tile_rows();
        let one = |mut acc: Vec<f32>, b: usize| {
            let img = &x[b * self.cin * hw..][..self.cin * hw];
            let g = &dy[b * self.cout * hw..][..self.cout * hw];
            for y0 in (0..self.height).step_by(rows) {
                let y1 = (y0 + rows).min(self.height);
                let n = (y1 - y0) * self.width;
                with_columns(k * n, |col| {
                    im2col(img, self, y0, y1, col);
                    // acc [cout, k] += dy_b[:, tile] [cout, n] · colᵀ [n, k]
                    // SAFETY: as in `forward`; colᵀ is col read with swapped strides.
                    unsafe {
                        gemm(
                            self.cout,
                            k,
                            n,
                            acc.as_mut_ptr(),
                            1,
                            k as isize,
                            true,
                            g.as_ptr().add(y0 * self.width),
                            1,
                            hw as isize,
                            col.as_ptr(),
                            n as isize,
                            1,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            par,
                        );
                    }
                });
            }
            acc
        };
        let zero = || vec![0.0f32; self.cout * k];
        if self.per_image() {
            // One partial sum per image, added in image order: the result does not
            // depend on how rayon shares the images out (a resumed run must give the
            // same weights as an uninterrupted one).
            let parts: Vec<Vec<f32>> = (0..self.batch)
                .into_par_iter()
                .map(|b| one(zero(), b))
                .collect();
            let mut parts = parts.into_iter();
            let mut acc = parts.next().unwrap_or_else(zero);
            for p in parts {
                acc.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
            }
            acc
        } else {
            (0..self.batch).fold(zero(), one)
        }
    }

    /// Gradient of the input `[batch, cin, H, W]` from the weights and the output
    /// gradient: the same convolution of `dy` with the weights transposed over the
    /// channels and turned by 180°.
    pub fn input_grad(&self, w: &[f32], dy: &[f32]) -> Vec<f32> {
        assert_eq!(w.len(), self.cout * self.cin * 9, "weight size");
        let mut flipped = vec![0.0f32; w.len()];
        for o in 0..self.cout {
            for c in 0..self.cin {
                for t in 0..9 {
                    flipped[(c * self.cout + o) * 9 + 8 - t] = w[(o * self.cin + c) * 9 + t];
                }
            }
        }
        Conv3x3 {
            cin: self.cout,
            cout: self.cin,
            ..*self
        }
        .forward(dy, &flipped)
    }
}

fn with_columns<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    COLUMNS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < len {
            c.resize(len, 0.0);
        }
        f(&mut c[..len])
    })
}

/// The activation after a fused batch norm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// ELU (the paper's networks).
    Elu,
    /// `min(max(z, 0), 6)` (EfficientNet-Lite).
    Relu6,
    /// None: the batch norm alone.
    Identity,
}

#[inline]
fn relu6(z: f32) -> f32 {
    z.clamp(0.0, 6.0)
}

/// The gradient through ReLU6 from its output: passed where `0 < y < 6`.
#[inline]
fn relu6_grad(g: f32, y: f32) -> f32 {
    if y > 0.0 && y < 6.0 { g } else { 0.0 }
}

/// The gradient through ELU from its output (`1` for `y > 0`, else `y + 1`).
#[inline]
fn elu_grad(g: f32, y: f32) -> f32 {
    if y > 0.0 { g } else { g * (y + 1.0) }
}

/// Sizes of a batch norm + activation over `[batch, channels, plane]` (NCHW with the
/// spatial dimensions flattened). Statistics are per channel over batch and plane;
/// the variance is the biased one (burn's and PyTorch's normalisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BnAct {
    /// Batch size.
    pub batch: usize,
    /// Channels.
    pub channels: usize,
    /// Pixels per channel and image.
    pub plane: usize,
    /// The activation.
    pub act: Act,
}

/// Batch statistics and output of [`BnAct::forward_train`].
#[derive(Debug)]
pub struct BnActTrain {
    /// `act(gamma · (x − mean) / sqrt(var + eps) + beta)`, shaped like `x`.
    pub output: Vec<f32>,
    /// Per-channel mean.
    pub mean: Vec<f32>,
    /// Per-channel (biased) variance.
    pub var: Vec<f32>,
}

/// Gradients from [`BnAct::backward`].
#[derive(Debug)]
pub struct BnActGrads {
    /// Of the input, shaped like it.
    pub x: Vec<f32>,
    /// Of the scale, per channel.
    pub gamma: Vec<f32>,
    /// Of the shift, per channel.
    pub beta: Vec<f32>,
}

/// Sums of the two values `f` gives for each element of `a`, in eight f32 lanes
/// (which the compiler vectorises) added up in f64.
#[inline]
fn lane_sums(a: &[f32], f: impl Fn(f32) -> [f32; 2]) -> [f64; 2] {
    let mut acc = [[0.0f32; 8]; 2];
    let chunks = a.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &v) in c.iter().enumerate() {
            let [p, q] = f(v);
            acc[0][l] += p;
            acc[1][l] += q;
        }
    }
    let mut out = acc.map(|l| l.iter().map(|&v| v as f64).sum::<f64>());
    for &v in rest {
        let [p, q] = f(v);
        out[0] += p as f64;
        out[1] += q as f64;
    }
    out
}

/// As [`lane_sums`] over three slices of the same length, element by element.
#[inline]
fn lane_sums3(a: &[f32], b: &[f32], c: &[f32], f: impl Fn(f32, f32, f32) -> [f32; 2]) -> [f64; 2] {
    let mut acc = [[0.0f32; 8]; 2];
    let n = a.len() / 8 * 8;
    for ((ca, cb), cc) in a[..n]
        .chunks_exact(8)
        .zip(b[..n].chunks_exact(8))
        .zip(c[..n].chunks_exact(8))
    {
        for l in 0..8 {
            let [p, q] = f(ca[l], cb[l], cc[l]);
            acc[0][l] += p;
            acc[1][l] += q;
        }
    }
    let mut out = acc.map(|l| l.iter().map(|&v| v as f64).sum::<f64>());
    for i in n..a.len() {
        let [p, q] = f(a[i], b[i], c[i]);
        out[0] += p as f64;
        out[1] += q as f64;
    }
    out
}

/// ELU, `z` for `z > 0` and `exp(z) − 1` below; its derivative is taken from the
/// output ([`elu_grad`]). Branch-free so that loops over it vectorise.
#[inline]
fn elu1(z: f32) -> f32 {
    let e = exp_neg(z.min(0.0)) - 1.0;
    if z > 0.0 { z } else { e }
}

/// `exp(x)` for `x <= 0` to a relative error below 3·ε (ε = 2⁻²³; clamped at
/// `exp(−87)` below), branch-free: `x = n·ln 2 + r`
/// with `|r| <= ln 2 / 2`, a degree-6 polynomial for `exp(r)` (Taylor coefficients),
/// and `2ⁿ` built in the exponent bits. glibc's `expm1f` is a scalar call per
/// element and took a fifth of a training step.
#[inline]
fn exp_neg(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.max(-87.0);
    // Round to nearest by adding and taking away 1.5·2²³ (|x·log₂e| < 2²²), which
    // vectorises where `f32::round` is a library call on baseline x86-64.
    const SHIFT: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + SHIFT) - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    // n in [-126, 0]: 2ⁿ is a normal float.
    p * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

impl BnAct {
    fn check(&self, x: &[f32]) {
        assert_eq!(
            x.len(),
            self.batch * self.channels * self.plane,
            "tensor size"
        );
    }

    /// Per-channel sums `f(b, c, plane_slice...)` over the batch, in `f64`.
    fn per_channel<const K: usize>(
        &self,
        f: impl Fn(usize, usize, std::ops::Range<usize>) -> [f64; K] + Sync,
    ) -> Vec<[f64; K]> {
        (0..self.channels)
            .into_par_iter()
            .map(|c| {
                let mut acc = [0.0f64; K];
                for b in 0..self.batch {
                    let at = (b * self.channels + c) * self.plane;
                    let part = f(b, c, at..at + self.plane);
                    for (a, p) in acc.iter_mut().zip(part) {
                        *a += p;
                    }
                }
                acc
            })
            .collect()
    }

    /// `out[b, c, :] = f(c, x[b, c, :], out)` for every plane, planes spread over the
    /// threads.
    /// `f` must write every element of the plane it is given (the buffer is not
    /// zeroed first).
    fn per_plane(&self, f: impl Fn(usize, usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
        let len = self.batch * self.channels * self.plane;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        if self.plane > 0 {
            out.spare_capacity_mut()[..len]
                .par_chunks_mut(self.plane)
                .enumerate()
                .for_each(|(i, o)| f(i % self.channels, i * self.plane, o));
        }
        // SAFETY: the callers' `f` write every element of every plane (zip over the
        // whole plane with the input, whose planes have the same length).
        unsafe { out.set_len(len) };
        out
    }

    fn inv_std(var: &[f32], eps: f64) -> Vec<f32> {
        var.iter()
            .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
            .collect()
    }

    /// Training forward: batch statistics, then normalisation, scale, shift and ELU.
    pub fn forward_train(&self, x: &[f32], gamma: &[f32], beta: &[f32], eps: f64) -> BnActTrain {
        self.check(x);
        let n = (self.batch * self.plane) as f64;
        // Sums of (x − k) and (x − k)² with k the channel's first value, so that a large
        // mean does not cancel the variance; eight f32 lanes per plane (vectorised),
        // planes added in f64.
        let shift: Vec<f32> = (0..self.channels).map(|c| x[c * self.plane]).collect();
        let sums = self.per_channel(|_, c, r| {
            let k = shift[c];
            lane_sums(&x[r], |v| {
                let d = v - k;
                [d, d * d]
            })
        });
        let mean: Vec<f32> = sums
            .iter()
            .zip(&shift)
            .map(|([s, _], &k)| (k as f64 + s / n) as f32)
            .collect();
        let var: Vec<f32> = sums
            .iter()
            .map(|[s, q]| (q / n - (s / n) * (s / n)).max(0.0) as f32)
            .collect();
        let output = self.forward_with(x, gamma, beta, &mean, &var, eps);
        BnActTrain { output, mean, var }
    }

    /// Inference forward with given statistics (the running ones).
    pub fn forward_with(
        &self,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        var: &[f32],
        eps: f64,
    ) -> Vec<f32> {
        self.check(x);
        let inv = Self::inv_std(var, eps);
        // One loop per activation (generic), so that each vectorises.
        match self.act {
            Act::Elu => self.map_planes(x, gamma, beta, mean, &inv, elu1),
            Act::Relu6 => self.map_planes(x, gamma, beta, mean, &inv, relu6),
            Act::Identity => self.map_planes(x, gamma, beta, mean, &inv, |z| z),
        }
    }

    fn map_planes(
        &self,
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        mean: &[f32],
        inv: &[f32],
        f: impl Fn(f32) -> f32 + Sync,
    ) -> Vec<f32> {
        self.per_plane(|c, at, out| {
            let a = gamma[c] * inv[c];
            let b = beta[c] - mean[c] * a;
            for (o, &v) in out.iter_mut().zip(&x[at..at + self.plane]) {
                o.write(f(a * v + b));
            }
        })
    }

    /// Gradients of the training forward from the gradient of its output `dy`, given
    /// its input `x`, its output `y` and the batch statistics it returned.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        x: &[f32],
        y: &[f32],
        gamma: &[f32],
        mean: &[f32],
        var: &[f32],
        eps: f64,
        dy: &[f32],
    ) -> BnActGrads {
        self.check(x);
        self.check(y);
        self.check(dy);
        match self.act {
            Act::Elu => self.backward_with(x, y, gamma, mean, var, eps, dy, elu_grad),
            Act::Relu6 => self.backward_with(x, y, gamma, mean, var, eps, dy, relu6_grad),
            Act::Identity => self.backward_with(x, y, gamma, mean, var, eps, dy, |g, _| g),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_with(
        &self,
        x: &[f32],
        y: &[f32],
        gamma: &[f32],
        mean: &[f32],
        var: &[f32],
        eps: f64,
        dy: &[f32],
        dz: impl Fn(f32, f32) -> f32 + Sync,
    ) -> BnActGrads {
        let inv = Self::inv_std(var, eps);
        let sums = self.per_channel(|_, c, r| {
            let (m, k) = (mean[c], inv[c]);
            lane_sums3(&dy[r.clone()], &y[r.clone()], &x[r], |g, y, v| {
                let d = dz(g, y);
                [d, d * ((v - m) * k)]
            })
        });
        let n = (self.batch * self.plane) as f32;
        let dbeta: Vec<f32> = sums.iter().map(|s| s[0] as f32).collect();
        let dgamma: Vec<f32> = sums.iter().map(|s| s[1] as f32).collect();
        let dx = self.per_plane(|c, at, out| {
            let k = gamma[c] * inv[c];
            let (mb, mg) = (dbeta[c] / n, dgamma[c] / n);
            let r = at..at + self.plane;
            for (((o, &g), &y), &v) in out
                .iter_mut()
                .zip(&dy[r.clone()])
                .zip(&y[r.clone()])
                .zip(&x[r])
            {
                let xhat = (v - mean[c]) * inv[c];
                o.write(k * (dz(g, y) - mb - xhat * mg));
            }
        });
        BnActGrads {
            x: dx,
            gamma: dgamma,
            beta: dbeta,
        }
    }
}

/// 2×2 max pooling with stride 2 over `planes` planes of `height × width` (an odd
/// last row or column is left out, as burn's pooling does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPool2 {
    /// Batch × channels.
    pub planes: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
}

impl MaxPool2 {
    /// Output height and width.
    pub fn out(&self) -> (usize, usize) {
        (self.height / 2, self.width / 2)
    }

    /// The pooled planes.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        let (h, w) = (self.height, self.width);
        let (oh, ow) = self.out();
        assert_eq!(x.len(), self.planes * h * w, "input size");
        let mut y = vec![0.0f32; self.planes * oh * ow];
        if oh * ow == 0 {
            return y;
        }
        y.par_chunks_mut(oh * ow).enumerate().for_each(|(p, out)| {
            let plane = &x[p * h * w..][..h * w];
            for (i, row) in out.chunks_exact_mut(ow).enumerate() {
                let (a, b) = (&plane[2 * i * w..][..w], &plane[(2 * i + 1) * w..][..w]);
                for (j, o) in row.iter_mut().enumerate() {
                    *o = a[2 * j].max(a[2 * j + 1]).max(b[2 * j].max(b[2 * j + 1]));
                }
            }
        });
        y
    }

    /// Gradient of the input: each output's gradient goes to the first position of its
    /// window (row by row) that holds the maximum, found again from `x` and `y`.
    pub fn backward(&self, x: &[f32], y: &[f32], dy: &[f32]) -> Vec<f32> {
        let (h, w) = (self.height, self.width);
        let (oh, ow) = self.out();
        assert_eq!(x.len(), self.planes * h * w, "input size");
        assert_eq!(y.len(), self.planes * oh * ow, "output size");
        assert_eq!(dy.len(), y.len(), "output gradient size");
        let mut dx = vec![0.0f32; x.len()];
        dx.par_chunks_mut(h * w).enumerate().for_each(|(p, out)| {
            let plane = &x[p * h * w..][..h * w];
            for i in 0..oh {
                for j in 0..ow {
                    let k = p * oh * ow + i * ow + j;
                    let at = [
                        2 * i * w + 2 * j,
                        2 * i * w + 2 * j + 1,
                        (2 * i + 1) * w + 2 * j,
                        (2 * i + 1) * w + 2 * j + 1,
                    ];
                    let hit = at.iter().find(|&&a| plane[a] == y[k]).unwrap_or(&at[0]);
                    out[*hit] = dy[k];
                }
            }
        });
        dx
    }
}

/// Floats in one im2col tile (256 KB).
const TILE_FLOATS: usize = 64 * 1024;

/// The 3×3 neighbourhoods of image rows `y0..y1` as columns:
/// `col[c·9 + ky·3 + kx, (y − y0)·W + x] = x[c, y + ky − 1, x + kx − 1]` (0 outside the
/// image). Every element of `col` is written.
fn im2col(x: &[f32], s: &Conv3x3, y0: usize, y1: usize, col: &mut [f32]) {
    let (h, w) = (s.height, s.width);
    let n = (y1 - y0) * w;
    for c in 0..s.cin {
        let plane = &x[c * h * w..][..h * w];
        for ky in 0..3 {
            for kx in 0..3 {
                let row = &mut col[(c * 9 + ky * 3 + kx) * n..][..n];
                for (y, out) in (y0..y1).zip(row.chunks_exact_mut(w)) {
                    let sy = y + ky;
                    if sy < 1 || sy > h {
                        out.fill(0.0);
                        continue;
                    }
                    let src = &plane[(sy - 1) * w..][..w];
                    match kx {
                        0 => {
                            out[0] = 0.0;
                            out[1..].copy_from_slice(&src[..w - 1]);
                        }
                        1 => out.copy_from_slice(src),
                        _ => {
                            out[..w - 1].copy_from_slice(&src[1..]);
                            out[w - 1] = 0.0;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct 3×3 same convolution, the definition.
    fn direct(s: &Conv3x3, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (h, wd) = (s.height as isize, s.width as isize);
        let mut y = vec![0.0; s.batch * s.cout * (h * wd) as usize];
        for b in 0..s.batch {
            for o in 0..s.cout {
                for i in 0..h {
                    for j in 0..wd {
                        let mut acc = 0.0;
                        for c in 0..s.cin {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let (yy, xx) = (i + ky - 1, j + kx - 1);
                                    if yy < 0 || xx < 0 || yy >= h || xx >= wd {
                                        continue;
                                    }
                                    acc += x[((b * s.cin + c) as isize * h + yy) as usize
                                        * wd as usize
                                        + xx as usize]
                                        * w[(o * s.cin + c) * 9 + (ky * 3 + kx) as usize];
                                }
                            }
                        }
                        y[((b * s.cout + o) as isize * h + i) as usize * wd as usize
                            + j as usize] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed * 97)
                    >> 8;
                (v % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!((p - q).abs() < 1e-3 * (1.0 + q.abs()), "{i}: {p} vs {q}");
        }
    }

    #[test]
    fn forward_matches_the_definition() {
        for s in [
            Conv3x3 {
                batch: 3,
                cin: 2,
                cout: 4,
                height: 5,
                width: 7,
            },
            Conv3x3 {
                batch: 1,
                cin: 1,
                cout: 3,
                height: 1,
                width: 1,
            },
            Conv3x3 {
                batch: 2,
                cin: 5,
                cout: 1,
                height: 6,
                width: 2,
            },
            // Several im2col tiles per image (tile_rows = 2).
            Conv3x3 {
                batch: 1,
                cin: 400,
                cout: 2,
                height: 5,
                width: 9,
            },
        ] {
            let x = values(s.batch * s.cin * s.height * s.width, 1);
            let w = values(s.cout * s.cin * 9, 2);
            close(&s.forward(&x, &w), &direct(&s, &x, &w));
        }
    }

    #[test]
    fn exp_neg_is_exp_within_three_epsilon() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (a, b) = (exp_neg(x) as f64, (x as f64).exp());
            worst = worst.max((a - b).abs() / (b * f32::EPSILON as f64));
        }
        assert!(worst <= 3.0, "relative error {worst} epsilon");
        assert!(exp_neg(-200.0) < 1e-37 && exp_neg(0.0) == 1.0);
        assert_eq!(elu1(2.5), 2.5);
        assert!((elu1(-1e-3) - (-1e-3f32).exp_m1()).abs() < 1e-7);
    }

    #[test]
    fn max_pool_takes_the_window_maximum_and_routes_its_gradient() {
        // Two 3×5 planes: the last row and column are left out.
        let x: Vec<f32> = (0..30).map(|i| ((i * 7) % 11) as f32).collect();
        let s = MaxPool2 {
            planes: 2,
            height: 3,
            width: 5,
        };
        let y = s.forward(&x);
        assert_eq!(y.len(), 4, "two planes of 1×2");
        for p in 0..2 {
            for j in 0..2 {
                let win = [0, 1, 5, 6].map(|d| x[p * 15 + 2 * j + d]);
                assert_eq!(y[p * 2 + j], win.iter().cloned().fold(f32::MIN, f32::max));
            }
        }
        let dy = [1.0, 2.0, 3.0, 4.0];
        let dx = s.backward(&x, &y, &dy);
        assert_eq!(dx.iter().sum::<f32>(), 10.0);
        for (k, &g) in dy.iter().enumerate() {
            let i = dx.iter().position(|&v| v == g).unwrap();
            assert_eq!(x[i], y[k], "gradient {g} lands on the maximum");
        }
        // Ties: the first position of the window.
        let flat = MaxPool2 {
            planes: 1,
            height: 2,
            width: 2,
        };
        assert_eq!(
            flat.backward(&[5.0; 4], &[5.0], &[1.0]),
            vec![1.0, 0.0, 0.0, 0.0]
        );
    }

    #[test]
    fn batch_statistics_survive_a_large_mean() {
        let s = BnAct {
            batch: 2,
            channels: 1,
            plane: 1000,
            act: Act::Elu,
        };
        let x: Vec<f32> = (0..2000)
            .map(|i| 1000.0 + ((i * 37) % 101) as f32 / 100.0)
            .collect();
        let m = x.iter().map(|&v| v as f64).sum::<f64>() / 2000.0;
        let v = x.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / 2000.0;
        let t = s.forward_train(&x, &[1.0], &[0.0], 1e-5);
        assert!((t.mean[0] as f64 - m).abs() < 1e-3, "{} vs {m}", t.mean[0]);
        assert!(
            (t.var[0] as f64 - v).abs() < 1e-4 * v,
            "{} vs {v}",
            t.var[0]
        );
    }

    /// Batch norm + ELU against a plain two-pass computation, and its gradients
    /// against central finite differences of `sum(y · r)`.
    #[test]
    fn bn_elu_matches_the_definition() {
        let s = BnAct {
            batch: 3,
            channels: 2,
            plane: 5,
            act: Act::Elu,
        };
        let x: Vec<f32> = values(30, 6).iter().map(|v| 2.0 * v + 0.3).collect();
        let (gamma, beta) = (vec![1.3f32, -0.7], vec![0.2f32, -0.4]);
        let eps = 1e-5;
        let r = values(30, 7);
        let reference = |x: &[f32], gamma: &[f32], beta: &[f32]| -> Vec<f64> {
            let mut y = vec![0.0f64; 30];
            for c in 0..2 {
                let idx: Vec<usize> = (0..3)
                    .flat_map(|b| (0..5).map(move |p| (b * 2 + c) * 5 + p))
                    .collect();
                let m = idx.iter().map(|&i| x[i] as f64).sum::<f64>() / 15.0;
                let v = idx.iter().map(|&i| (x[i] as f64 - m).powi(2)).sum::<f64>() / 15.0;
                for &i in &idx {
                    let z = (x[i] as f64 - m) / (v + eps).sqrt() * gamma[c] as f64 + beta[c] as f64;
                    y[i] = if z > 0.0 { z } else { z.exp_m1() };
                }
            }
            y
        };
        let t = s.forward_train(&x, &gamma, &beta, eps);
        for (a, b) in t.output.iter().zip(reference(&x, &gamma, &beta)) {
            assert!((*a as f64 - b).abs() < 1e-5, "{a} vs {b}");
        }
        let g = s.backward(&x, &t.output, &gamma, &t.mean, &t.var, eps, &r);
        let loss = |x: &[f32], gamma: &[f32], beta: &[f32]| -> f64 {
            reference(x, gamma, beta)
                .iter()
                .zip(&r)
                .map(|(a, b)| a * *b as f64)
                .sum()
        };
        let h = 1e-3f32;
        let fd = |f: &dyn Fn(f32) -> f64| (f(h) - f(-h)) / (2.0 * h as f64);
        for i in 0..30 {
            let d = fd(&|e| {
                let mut x2 = x.clone();
                x2[i] += e;
                loss(&x2, &gamma, &beta)
            });
            assert!(
                (g.x[i] as f64 - d).abs() < 2e-3,
                "dx[{i}] {} vs {d}",
                g.x[i]
            );
        }
        for c in 0..2 {
            let dg = fd(&|e| {
                let mut g2 = gamma.clone();
                g2[c] += e;
                loss(&x, &g2, &beta)
            });
            let db = fd(&|e| {
                let mut b2 = beta.clone();
                b2[c] += e;
                loss(&x, &gamma, &b2)
            });
            assert!((g.gamma[c] as f64 - dg).abs() < 2e-3, "dgamma[{c}]");
            assert!((g.beta[c] as f64 - db).abs() < 2e-3, "dbeta[{c}]");
        }
        // With the batch's own statistics, inference equals training.
        let inf = s.forward_with(&x, &gamma, &beta, &t.mean, &t.var, eps);
        assert_eq!(inf, t.output);
    }

    /// The gradients against finite differences of `sum(y · r)` for a fixed `r`.
    #[test]
    fn gradients_match_the_definition() {
        let s = Conv3x3 {
            batch: 3,
            cin: 2,
            cout: 3,
            height: 4,
            width: 5,
        };
        let x = values(s.batch * s.cin * 20, 3);
        let w = values(s.cout * s.cin * 9, 4);
        let r = values(s.batch * s.cout * 20, 5);
        // The loss is linear in x and in w, so its gradient is exact through the
        // definition: dL/dx_i = sum(direct(e_i, w) · r).
        let loss = |x: &[f32], w: &[f32]| -> f32 {
            direct(&s, x, w).iter().zip(&r).map(|(a, b)| a * b).sum()
        };
        let base = loss(&x, &w);
        let dx = s.input_grad(&w, &r);
        for i in 0..x.len() {
            let mut x2 = x.clone();
            x2[i] += 1.0;
            assert!((loss(&x2, &w) - base - dx[i]).abs() < 1e-3, "dx[{i}]");
        }
        let dw = s.weight_grad(&x, &r);
        for i in 0..w.len() {
            let mut w2 = w.clone();
            w2[i] += 1.0;
            assert!((loss(&x, &w2) - base - dw[i]).abs() < 1e-2, "dw[{i}]");
        }
    }
}
