//! CPU kernels for EfficientNet-Lite's convolutions on contiguous NCHW `f32` slices:
//! the depthwise k×k convolution (stride 1 or 2, padding `(k − 1) / 2`, no bias) and
//! the pointwise 1×1 convolution (no bias), each with its input and weight gradients.
//!
//! burn's flex backend runs a grouped convolution's gradients through its general
//! transposed and 3-D convolutions, and a 1×1 convolution through im2col and layout
//! copies; here the depthwise one is a direct loop per image plane (forward: the
//! plane padded and split into the stride's phases, then summed as one long row in
//! register blocks; gradients: vectorised along rows) and the pointwise one a GEMM
//! per image on the data as it is.

#![allow(unsafe_code)] // GEMM on raw strided pointers; each call states its bounds.

use gemm::{Parallelism, gemm};
use rayon::prelude::*;

use crate::kernels::SharedOut;

/// Outputs [`Depthwise::forward`] sums at once, in registers: four AVX2 vectors;
/// then [`FORWARD_LANES`] at once.
const FORWARD_BLOCK: usize = 32;

/// One AVX2 vector of outputs (see [`FORWARD_BLOCK`]).
const FORWARD_LANES: usize = 8;

/// Whether this CPU has AVX2 and FMA, for which the depthwise kernels have a
/// second build (8 lanes instead of SSE's 4); checked once a call.
fn wide_simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// One image plane of a depthwise convolution, as a kernel reads it: its input (or
/// output gradient), its channel's k×k weights and the kernel's [`Depthwise::taps`].
struct Plane<'a> {
    x: &'a [f32],
    w: &'a [f32],
    taps: &'a [(std::ops::Range<usize>, usize)],
    /// The forward pass's [`Depthwise::reads`] (empty for the gradients).
    reads: &'a [usize],
}

/// Sizes of a depthwise convolution: one k×k filter per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Depthwise {
    /// Batch size.
    pub batch: usize,
    /// Channels (in and out).
    pub channels: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Kernel size (odd).
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
}

impl Depthwise {
    /// Zero padding on each side.
    pub fn pad(&self) -> usize {
        (self.kernel - 1) / 2
    }

    /// Output (height, width).
    pub fn out(&self) -> (usize, usize) {
        let p = 2 * self.pad();
        (
            (self.height + p - self.kernel) / self.stride + 1,
            (self.width + p - self.kernel) / self.stride + 1,
        )
    }

    /// The output columns `ox` whose input column `ox·s + kx − p` lies in the image.
    fn columns(&self, kx: usize, ow: usize) -> std::ops::Range<usize> {
        let (s, p) = (self.stride, self.pad());
        // ox·s + kx ≥ p and ox·s + kx − p ≤ W − 1.
        let lo = p.saturating_sub(kx).div_ceil(s);
        let hi = if self.width + p > kx {
            ((self.width - 1 + p - kx) / s + 1).min(ow)
        } else {
            0
        };
        lo.min(hi)..hi
    }

    /// The input row of output row `oy` and kernel row `ky`, if inside the image.
    fn row(&self, oy: usize, ky: usize) -> Option<usize> {
        (oy * self.stride + ky)
            .checked_sub(self.pad())
            .filter(|&iy| iy < self.height)
    }

    fn check(&self, x_len: usize, w_len: usize) {
        assert_eq!(
            x_len,
            self.batch * self.channels * self.height * self.width,
            "input size"
        );
        assert_eq!(
            w_len,
            self.channels * self.kernel * self.kernel,
            "weight size"
        );
    }

    /// Output `[batch, channels, OH, OW]` of `x` `[batch, channels, H, W]` and
    /// weights `w` `[channels, 1, k, k]`.
    pub fn forward(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        self.forward_on(x, w, wide_simd())
    }

    /// [`Depthwise::forward`] with the AVX2 build (`wide`, only where the CPU has it)
    /// or the baseline one.
    fn forward_on(&self, x: &[f32], w: &[f32], wide: bool) -> Vec<f32> {
        self.check(x.len(), w.len());
        let (oh, ow) = self.out();
        let (hw, k) = (self.height * self.width, self.kernel);
        let mut y = vec![0.0f32; self.batch * self.channels * oh * ow];
        let reads = self.reads();
        // Planes of a few dozen pixels (the last stages) go to the threads in runs,
        // not one by one.
        let per_task = (1 << 14) / (oh * ow * k * k).max(1);
        y.par_chunks_mut(oh * ow)
            .enumerate()
            .with_min_len(per_task.max(1))
            .for_each_init(
                || {
                    let [sh, sw] = self.phase_plane();
                    let s = self.stride;
                    (vec![0.0f32; s * s * sh * sw], vec![0.0f32; oh * sw])
                },
                |(phases, sums), (i, out)| {
                    let c = i % self.channels;
                    let plane = Plane {
                        x: &x[i * hw..][..hw],
                        w: &w[c * k * k..][..k * k],
                        // The forward pass pads its planes instead.
                        taps: &[],
                        reads: &reads,
                    };
                    #[cfg(target_arch = "x86_64")]
                    if wide {
                        // SAFETY: `wide_simd` found AVX2 and FMA on this CPU.
                        return unsafe { self.forward_plane_avx2(&plane, out, phases, sums) };
                    }
                    let _ = wide;
                    self.forward_plane(&plane, out, phases, sums);
                },
            );
        y
    }

    /// For each kernel column `kx`: the output columns it reaches and where the
    /// first of them reads in a row as the kernels store it (see [`Depthwise::source`]).
    fn taps(&self) -> Vec<(std::ops::Range<usize>, usize)> {
        let (_, ow) = self.out();
        (0..self.kernel)
            .map(|kx| {
                let r = self.columns(kx, ow);
                let from = if r.is_empty() {
                    0
                } else {
                    self.source(kx, r.start)
                };
                (r, from)
            })
            .collect()
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn forward_plane_avx2(
        &self,
        plane: &Plane<'_>,
        out: &mut [f32],
        phases: &mut [f32],
        sums: &mut [f32],
    ) {
        self.forward_plane(plane, out, phases, sums);
    }

    /// Height and width of one phase plane of [`Depthwise::forward_plane`]: the
    /// input plane padded with zeros on every side, split by the stride along both
    /// axes (phase `(qy, qx)` holds the padded pixels `(j·s + qy, i·s + qx)`).
    fn phase_plane(&self) -> [usize; 2] {
        let (p, s) = (self.pad(), self.stride);
        [
            (self.height + 2 * p).div_ceil(s),
            (self.width + 2 * p).div_ceil(s),
        ]
    }

    /// Where each tap of [`Depthwise::forward_plane`] reads for flat place 0, in the
    /// kernel's order: tap `(ky, kx)` at `(ky / s)·SW + kx / s` of phase
    /// `(ky mod s, kx mod s)`, the phases one after another.
    fn reads(&self) -> Vec<usize> {
        let (k, s) = (self.kernel, self.stride);
        let [sh, sw] = self.phase_plane();
        (0..k * k)
            .map(|t| {
                let (ky, kx) = (t / k, t % k);
                ((ky % s) * s + kx % s) * sh * sw + (ky / s) * sw + kx / s
            })
            .collect()
    }

    /// One output plane of [`Depthwise::forward`]. The input plane is padded and
    /// split into the stride's phases once ([`Depthwise::phase_plane`]); then the
    /// output at flat place `f = oy·SW + ox` (SW a phase plane's width, at least
    /// OW) reads tap `(ky, kx)` at `f + (ky / s)·SW + kx / s` of phase
    /// `(ky mod s, kx mod s)` — one shift for every output — so the plane is summed
    /// as one long row, [`FORWARD_BLOCK`] places at once in registers (then
    /// [`FORWARD_LANES`], then the rest), over the taps in the kernel's order (row
    /// by row), and the places with `ox ≥ OW` are dropped. A tap on the padding adds
    /// `w · 0`: the sums are those of the taps inside the image, in the same order.
    /// `phases` must hold zeros wherever the plane's pixels do not go: made zero, and
    /// used for the planes of one call only.
    #[inline(always)]
    fn forward_plane(
        &self,
        plane: &Plane<'_>,
        out: &mut [f32],
        phases: &mut [f32],
        sums: &mut [f32],
    ) {
        let (oh, ow) = self.out();
        let (s, p) = (self.stride, self.pad());
        let [sh, sw] = self.phase_plane();
        let size = sh * sw;
        // Only the plane's own pixels are written: every plane of a call writes the
        // same places, so the padding stays as the buffer was made, zero.
        for (iy, irow) in plane.x.chunks_exact(self.width).enumerate() {
            if s == 1 {
                phases[(iy + p) * sw + p..][..self.width].copy_from_slice(irow);
                continue;
            }
            let (qy, j) = ((iy + p) % s, (iy + p) / s);
            if s == 2 {
                // Input columns 2m and 2m + 1 go to the two phases, side by side.
                let (zero, one) = phases[qy * 2 * size..][..2 * size].split_at_mut(size);
                let (zero, one) = (&mut zero[j * sw..][..sw], &mut one[j * sw..][..sw]);
                let (even, odd) = if p % 2 == 0 { (zero, one) } else { (one, zero) };
                let (even, odd) = (&mut even[p / 2..], &mut odd[p.div_ceil(2)..]);
                let pairs = irow.chunks_exact(2);
                if let [last] = pairs.remainder() {
                    even[self.width / 2] = *last;
                }
                for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                    (*e, *o) = (pair[0], pair[1]);
                }
                continue;
            }
            for qx in 0..s {
                // The first input column of phase qx, and its place there.
                let first = (qx + s * p - p) % s;
                let i0 = (first + p) / s;
                let to = &mut phases[(qy * s + qx) * size + j * sw..][..sw];
                for (o, &v) in to[i0..].iter_mut().zip(irow.iter().skip(first).step_by(s)) {
                    *o = v;
                }
            }
        }
        let phases = &*phases;
        let n = (oh - 1) * sw + ow;
        let sums = &mut sums[..n];
        let block = |f0: usize, acc: &mut [f32]| {
            for (&wv, &from) in plane.w.iter().zip(plane.reads) {
                let src = &phases[from + f0..][..acc.len()];
                for (a, &v) in acc.iter_mut().zip(src) {
                    *a += wv * v;
                }
            }
        };
        let mut f0 = 0;
        while f0 + FORWARD_BLOCK <= n {
            let mut acc = [0.0f32; FORWARD_BLOCK];
            block(f0, &mut acc);
            sums[f0..][..FORWARD_BLOCK].copy_from_slice(&acc);
            f0 += FORWARD_BLOCK;
        }
        while f0 + FORWARD_LANES <= n {
            let mut acc = [0.0f32; FORWARD_LANES];
            block(f0, &mut acc);
            sums[f0..][..FORWARD_LANES].copy_from_slice(&acc);
            f0 += FORWARD_LANES;
        }
        let rest = &mut sums[f0..];
        rest.fill(0.0);
        block(f0, rest);
        for (oy, orow) in out.chunks_exact_mut(ow).enumerate() {
            orow.copy_from_slice(&sums[oy * sw..][..ow]);
        }
    }

    /// Width of one phase of a row split by the stride (see [`Depthwise::source`]).
    fn phase_width(&self) -> usize {
        self.width.div_ceil(self.stride)
    }

    /// Where input column `ox·s + kx − p` (for output column `ox0`, the first of a
    /// run) lies in a row as the kernels read it: the row itself for stride 1, else
    /// the row split into `s` phases of [`Depthwise::phase_width`] (phase `q` holds the
    /// columns `j·s + q`), so that consecutive output columns read consecutive values
    /// and the loops vectorise.
    fn source(&self, kx: usize, ox0: usize) -> usize {
        let (s, p) = (self.stride, self.pad());
        if s == 1 {
            return ox0 + kx - p;
        }
        // ox·s + kx − p = (ox + a)·s + q with 0 ≤ q < s.
        let t = kx as isize - p as isize;
        let (a, q) = (t.div_euclid(s as isize), t.rem_euclid(s as isize) as usize);
        q * self.phase_width() + (ox0 as isize + a) as usize
    }

    /// `row` (one input row) split into its stride phases, into `phases`.
    fn split_phases(&self, row: &[f32], phases: &mut [f32]) {
        let (s, pw) = (self.stride, self.phase_width());
        for (j, chunk) in row.chunks(s).enumerate() {
            for (q, &v) in chunk.iter().enumerate() {
                phases[q * pw + j] = v;
            }
        }
    }

    /// The input's gradient `[batch, channels, H, W]` from the weights and the
    /// output's gradient `dy` `[batch, channels, OH, OW]`.
    pub fn input_grad(&self, w: &[f32], dy: &[f32]) -> Vec<f32> {
        self.input_grad_on(w, dy, wide_simd())
    }

    /// [`Depthwise::input_grad`] with the AVX2 build or the baseline one.
    fn input_grad_on(&self, w: &[f32], dy: &[f32], wide: bool) -> Vec<f32> {
        let (oh, ow) = self.out();
        assert_eq!(
            dy.len(),
            self.batch * self.channels * oh * ow,
            "gradient size"
        );
        assert_eq!(
            w.len(),
            self.channels * self.kernel * self.kernel,
            "weight size"
        );
        let (hw, k, s) = (self.height * self.width, self.kernel, self.stride);
        let mut dx = vec![0.0f32; self.batch * self.channels * hw];
        let taps = self.taps();
        dx.par_chunks_mut(hw).enumerate().for_each_init(
            // For stride > 1 the plane's rows are accumulated split into phases
            // (see `source`), then put back in order.
            || {
                vec![
                    0.0f32;
                    if s > 1 {
                        self.height * s * self.phase_width()
                    } else {
                        0
                    }
                ]
            },
            |acc, (i, dx_plane)| {
                let c = i % self.channels;
                let plane = Plane {
                    x: &dy[i * oh * ow..][..oh * ow],
                    w: &w[c * k * k..][..k * k],
                    taps: &taps,
                    reads: &[],
                };
                #[cfg(target_arch = "x86_64")]
                if wide {
                    // SAFETY: `wide_simd` found AVX2 and FMA on this CPU.
                    return unsafe { self.input_grad_plane_avx2(&plane, dx_plane, acc) };
                }
                let _ = wide;
                self.input_grad_plane(&plane, dx_plane, acc);
            },
        );
        dx
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn input_grad_plane_avx2(&self, plane: &Plane<'_>, dx: &mut [f32], acc: &mut [f32]) {
        self.input_grad_plane(plane, dx, acc);
    }

    /// One input plane of [`Depthwise::input_grad`] (`plane.x` is the output's
    /// gradient).
    #[inline(always)]
    fn input_grad_plane(&self, plane: &Plane<'_>, dx: &mut [f32], acc: &mut [f32]) {
        let (oh, ow) = self.out();
        let (k, s, pw) = (self.kernel, self.stride, self.phase_width());
        acc.fill(0.0);
        for oy in 0..oh {
            let grow = &plane.x[oy * ow..][..ow];
            for ky in 0..k {
                let Some(iy) = self.row(oy, ky) else { continue };
                let dst = if s == 1 {
                    &mut dx[iy * self.width..][..self.width]
                } else {
                    &mut acc[iy * s * pw..][..s * pw]
                };
                for (kx, (r, to)) in plane.taps.iter().enumerate() {
                    let wv = plane.w[ky * k + kx];
                    for (o, &v) in dst[*to..].iter_mut().zip(&grow[r.clone()]) {
                        *o += wv * v;
                    }
                }
            }
        }
        if s > 1 {
            for (iy, row) in dx.chunks_mut(self.width).enumerate() {
                let phases = &acc[iy * s * pw..][..s * pw];
                for (j, chunk) in row.chunks_mut(s).enumerate() {
                    for (q, v) in chunk.iter_mut().enumerate() {
                        *v = phases[q * pw + j];
                    }
                }
            }
        }
    }

    /// The weights' gradient `[channels, 1, k, k]` from the input and the output's
    /// gradient.
    pub fn weight_grad(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        self.weight_grad_on(x, dy, wide_simd())
    }

    /// [`Depthwise::weight_grad`] with the AVX2 build or the baseline one.
    fn weight_grad_on(&self, x: &[f32], dy: &[f32], wide: bool) -> Vec<f32> {
        let (oh, ow) = self.out();
        self.check(x.len(), self.channels * self.kernel * self.kernel);
        assert_eq!(
            dy.len(),
            self.batch * self.channels * oh * ow,
            "gradient size"
        );
        let (k, s) = (self.kernel, self.stride);
        let mut dw = vec![0.0f32; self.channels * k * k];
        let taps = self.taps();
        dw.par_chunks_mut(k * k).enumerate().for_each(|(c, out)| {
            // For stride > 1 each image's rows split into phases (see `source`).
            let mut phased = vec![
                0.0f32;
                if s > 1 {
                    self.height * s * self.phase_width()
                } else {
                    0
                }
            ];
            #[cfg(target_arch = "x86_64")]
            if wide {
                // SAFETY: `wide_simd` found AVX2 and FMA on this CPU.
                return unsafe { self.weight_grad_channel_avx2(c, x, dy, &taps, out, &mut phased) };
            }
            let _ = wide;
            self.weight_grad_channel(c, x, dy, &taps, out, &mut phased);
        });
        dw
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn weight_grad_channel_avx2(
        &self,
        c: usize,
        x: &[f32],
        dy: &[f32],
        taps: &[(std::ops::Range<usize>, usize)],
        out: &mut [f32],
        phased: &mut [f32],
    ) {
        self.weight_grad_channel(c, x, dy, taps, out, phased);
    }

    /// Channel `c`'s k×k weight gradient of [`Depthwise::weight_grad`], summed over
    /// the batch (in f64 across images).
    #[inline(always)]
    fn weight_grad_channel(
        &self,
        c: usize,
        x: &[f32],
        dy: &[f32],
        taps: &[(std::ops::Range<usize>, usize)],
        out: &mut [f32],
        phased: &mut [f32],
    ) {
        let (oh, ow) = self.out();
        let (hw, k, s) = (self.height * self.width, self.kernel, self.stride);
        let mut acc = vec![0.0f64; k * k];
        for b in 0..self.batch {
            let i = b * self.channels + c;
            let mut img = &x[i * hw..][..hw];
            let row_len = if s == 1 {
                self.width
            } else {
                let len = s * self.phase_width();
                for (row, to) in img.chunks(self.width).zip(phased.chunks_mut(len)) {
                    self.split_phases(row, to);
                }
                img = phased;
                len
            };
            let g = &dy[i * oh * ow..][..oh * ow];
            for ky in 0..k {
                for (kx, (r, from)) in taps.iter().enumerate() {
                    if r.is_empty() {
                        continue;
                    }
                    let mut sum = 0.0f32;
                    for oy in 0..oh {
                        let Some(iy) = self.row(oy, ky) else { continue };
                        let irow = &img[iy * row_len..][..row_len];
                        sum += dot(&g[oy * ow..][r.clone()], &irow[*from..][..r.len()]);
                    }
                    acc[ky * k + kx] += f64::from(sum);
                }
            }
        }
        for (o, a) in out.iter_mut().zip(acc) {
            *o = a as f32;
        }
    }
}

/// Dot product in eight f32 lanes (vectorised).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let n = a.len().min(b.len()) / 8 * 8;
    for (ca, cb) in a[..n].chunks_exact(8).zip(b[..n].chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += ca[l] * cb[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in n..a.len().min(b.len()) {
        s += a[i] * b[i];
    }
    s
}

/// Sizes of a pointwise (1×1, stride 1, no bias) convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pointwise {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Pixels per channel and image (height × width).
    pub plane: usize,
}

impl Pointwise {
    fn parallelism(&self) -> Parallelism {
        if self.batch >= rayon::current_num_threads() || rayon::current_num_threads() == 1 {
            Parallelism::None
        } else {
            Parallelism::Rayon(0)
        }
    }

    /// `dst[b] [m, n] = lhs(b) [m, k] · rhs(b) [k, n]` for every image `b`, images
    /// spread over the threads; strides as (column, row) pairs.
    #[allow(clippy::too_many_arguments)]
    fn per_image(
        &self,
        [m, n, k]: [usize; 3],
        dst_len: usize,
        lhs: (&[f32], usize, [isize; 2]),
        rhs: (&[f32], usize, [isize; 2]),
    ) -> Vec<f32> {
        let mut out: Vec<f32> = Vec::with_capacity(self.batch * dst_len);
        let dst = SharedOut(out.as_mut_ptr());
        let par = self.parallelism();
        (0..self.batch).into_par_iter().for_each(|b| {
            // SAFETY: image b writes its own `dst_len` floats (m·n, row-major, row
            // stride n) inside the allocation of `batch · dst_len`; lhs and rhs are read
            // within the slices (`per image` offsets times the batch index, bounds
            // asserted by the callers).
            unsafe {
                gemm(
                    m,
                    n,
                    k,
                    dst.get().add(b * dst_len),
                    1,
                    n as isize,
                    false,
                    lhs.0.as_ptr().add(b * lhs.1),
                    lhs.2[0],
                    lhs.2[1],
                    rhs.0.as_ptr().add(b * rhs.1),
                    rhs.2[0],
                    rhs.2[1],
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                );
            }
        });
        // SAFETY: every image's m·n = dst_len floats were written.
        unsafe { out.set_len(self.batch * dst_len) };
        out
    }

    /// Output `[batch, cout, plane]` of `x` `[batch, cin, plane]` and `w` `[cout, cin]`.
    pub fn forward(&self, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (n, ci, co) = (self.plane, self.cin, self.cout);
        assert_eq!(x.len(), self.batch * ci * n, "input size");
        assert_eq!(w.len(), co * ci, "weight size");
        // y[b] = w [co, ci] · x[b] [ci, n]
        self.per_image(
            [co, n, ci],
            co * n,
            (w, 0, [1, ci as isize]),
            (x, ci * n, [1, n as isize]),
        )
    }

    /// The input's gradient `[batch, cin, plane]` from `w` and `dy` `[batch, cout, plane]`.
    pub fn input_grad(&self, w: &[f32], dy: &[f32]) -> Vec<f32> {
        let (n, ci, co) = (self.plane, self.cin, self.cout);
        assert_eq!(dy.len(), self.batch * co * n, "gradient size");
        assert_eq!(w.len(), co * ci, "weight size");
        // dx[b] = wᵀ [ci, co] · dy[b] [co, n]; wᵀ(i, j) = w[j·ci + i].
        self.per_image(
            [ci, n, co],
            ci * n,
            (w, 0, [ci as isize, 1]),
            (dy, co * n, [1, n as isize]),
        )
    }

    /// The weights' gradient `[cout, cin]` from `x` and `dy`.
    pub fn weight_grad(&self, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let (n, ci, co) = (self.plane, self.cin, self.cout);
        assert_eq!(x.len(), self.batch * ci * n, "input size");
        assert_eq!(dy.len(), self.batch * co * n, "gradient size");
        // dw = Σ_b dy[b] [co, n] · x[b]ᵀ [n, ci]; x[b]ᵀ(i, j) = x[b][j·n + i]. Each
        // thread sums its share of the images; the shares are added at the end.
        let threads = rayon::current_num_threads().clamp(1, self.batch.max(1));
        let per = self.batch.div_ceil(threads);
        let partial: Vec<Vec<f32>> = (0..threads)
            .into_par_iter()
            .map(|t| {
                let mut acc = vec![0.0f32; co * ci];
                for b in (t * per)..((t + 1) * per).min(self.batch) {
                    // SAFETY: acc is co·ci floats, row stride ci; dy[b] and x[b] are
                    // read within their images (sizes asserted above).
                    unsafe {
                        gemm(
                            co,
                            ci,
                            n,
                            acc.as_mut_ptr(),
                            1,
                            ci as isize,
                            true,
                            dy.as_ptr().add(b * co * n),
                            1,
                            n as isize,
                            x.as_ptr().add(b * ci * n),
                            n as isize,
                            1,
                            1.0,
                            1.0,
                            false,
                            false,
                            false,
                            Parallelism::None,
                        );
                    }
                }
                acc
            })
            .collect();
        let mut dw = vec![0.0f32; co * ci];
        for p in partial {
            for (d, v) in dw.iter_mut().zip(p) {
                *d += v;
            }
        }
        dw
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-3 * (1.0 + y.abs()),
                "at {i}: {x} vs {y}"
            );
        }
    }

    /// The depthwise convolution by its definition, and its gradients as sums over
    /// the same index sets.
    fn depthwise_direct(d: &Depthwise, x: &[f32], w: &[f32], dy: &[f32]) -> [Vec<f32>; 3] {
        let (oh, ow) = d.out();
        let (h, wd, k, s, p) = (d.height, d.width, d.kernel, d.stride, d.pad() as isize);
        let mut y = vec![0.0; d.batch * d.channels * oh * ow];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        for b in 0..d.batch {
            for c in 0..d.channels {
                let i = b * d.channels + c;
                for oy in 0..oh {
                    for ox in 0..ow {
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - p;
                                let ix = (ox * s + kx) as isize - p;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xi = i * h * wd + iy as usize * wd + ix as usize;
                                let yi = i * oh * ow + oy * ow + ox;
                                let wi = c * k * k + ky * k + kx;
                                y[yi] += w[wi] * x[xi];
                                dx[xi] += w[wi] * dy[yi];
                                dw[wi] += x[xi] * dy[yi];
                            }
                        }
                    }
                }
            }
        }
        [y, dx, dw]
    }

    #[test]
    fn depthwise_matches_the_definition() {
        for (k, s, h, w) in [
            (3, 1, 7, 9),
            (5, 1, 6, 11),
            (3, 2, 8, 7),
            (5, 2, 9, 10),
            (3, 2, 1, 2),
            (5, 1, 2, 1),
            (5, 2, 1, 1),
            (5, 2, 3, 2),
            // rows long enough for the 8-lane loops and their remainders
            (3, 1, 5, 37),
            (5, 2, 6, 41),
            (3, 2, 4, 40),
            // a stride other than 1 or 2
            (3, 3, 7, 10),
            (5, 3, 9, 40),
        ] {
            let d = Depthwise {
                batch: 2,
                channels: 3,
                height: h,
                width: w,
                kernel: k,
                stride: s,
            };
            let (oh, ow) = d.out();
            let x = values(2 * 3 * h * w, 1);
            let wt = values(3 * k * k, 2);
            let dy = values(2 * 3 * oh * ow, 3);
            let [y, dx, dw] = depthwise_direct(&d, &x, &wt, &dy);
            // The baseline build, and the AVX2 one where this CPU has it.
            for wide in [false, wide_simd()] {
                // The forward sums are the definition's bit for bit: the same taps in
                // the same order (a tap on the padding adds w · 0), so a faster kernel
                // leaves every network's answers as they were.
                assert_eq!(d.forward_on(&x, &wt, wide), y, "{d:?}");
                close(&d.input_grad_on(&wt, &dy, wide), &dx);
                close(&d.weight_grad_on(&x, &dy, wide), &dw);
            }
        }
    }

    #[test]
    fn pointwise_matches_the_definition() {
        let p = Pointwise {
            batch: 3,
            cin: 5,
            cout: 4,
            plane: 6,
        };
        let x = values(3 * 5 * 6, 4);
        let w = values(4 * 5, 5);
        let dy = values(3 * 4 * 6, 6);
        let (mut y, mut dx, mut dw) = (vec![0.0; 3 * 4 * 6], vec![0.0; x.len()], vec![0.0; 20]);
        for b in 0..3 {
            for o in 0..4 {
                for i in 0..5 {
                    for q in 0..6 {
                        let (xi, yi) = ((b * 5 + i) * 6 + q, (b * 4 + o) * 6 + q);
                        y[yi] += w[o * 5 + i] * x[xi];
                        dx[xi] += w[o * 5 + i] * dy[yi];
                        dw[o * 5 + i] += x[xi] * dy[yi];
                    }
                }
            }
        }
        close(&p.forward(&x, &w), &y);
        close(&p.input_grad(&w, &dy), &dx);
        close(&p.weight_grad(&x, &dy), &dw);
    }
}
