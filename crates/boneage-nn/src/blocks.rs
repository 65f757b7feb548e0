//! Building blocks shared by the networks.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

/// ELU written as `max(x, 0) + exp(min(x, 0)) − 1`, with both halves from ReLU:
/// `relu(x) + exp(−relu(−x)) − 1`.
///
/// burn's own ELU evaluates `exp(x)` for every `x` and its gradient becomes NaN above
/// about 88 (where `exp` overflows `f32`); this form never exponentiates a positive
/// number. ReLU rather than `clamp` because burn differentiates ReLU in one pass and
/// `clamp` through a mask fill: forward and backward over a 8×16×256×192 tensor take
/// 0.18 s instead of 0.28 s on flex (`cargo run --release -p boneage-nn --example
/// elu_variants`).
pub fn elu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    relu(x.clone()) + relu(x.neg()).neg().exp() - 1.0
}

/// 3×3 convolution (same padding), batch norm, ELU.
#[derive(Module, Debug)]
pub struct ConvBnElu {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvBnElu {
    /// A block from `input` to `output` channels.
    pub fn new(input: usize, output: usize, device: &Device) -> Self {
        Self::with_momentum(input, output, 0.1, device)
    }

    /// A block whose batch norm updates its running statistics with `momentum` (the
    /// weight of each new batch; 0.1 is PyTorch's default, 0.01 Keras's).
    pub fn with_momentum(input: usize, output: usize, momentum: f64, device: &Device) -> Self {
        Self {
            conv: Conv2dConfig::new([input, output], [3, 3])
                .with_padding(PaddingConfig2d::Same)
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(output)
                .with_momentum(momentum)
                .init(device),
        }
    }

    /// # Shapes
    /// `[batch, input, H, W]` → `[batch, output, H, W]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        // The same convolution as `self.conv.forward(x)` (3×3, padding 1, no bias), on
        // flex through this crate's kernels; batch norm and ELU fused likewise.
        crate::fastops::batch_norm_elu(
            &self.norm,
            crate::fastops::conv3x3(x, self.conv.weight.val()),
        )
    }

    /// Sets the batch norm's momentum (see [`VggStack::set_bn_momentum`]).
    pub fn set_bn_momentum(&mut self, momentum: f64) {
        self.norm.momentum = momentum;
    }
}

/// A VGG block: two [`ConvBnElu`] and a 2×2 max pool, as in the paper's Fig. 5.
#[derive(Module, Debug)]
pub struct VggBlock {
    first: ConvBnElu,
    second: ConvBnElu,
    pool: MaxPool2d,
}

impl VggBlock {
    /// A block from `input` to `output` channels (batch-norm momentum as in
    /// [`ConvBnElu::with_momentum`]).
    pub fn new(input: usize, output: usize, momentum: f64, device: &Device) -> Self {
        Self {
            first: ConvBnElu::with_momentum(input, output, momentum, device),
            second: ConvBnElu::with_momentum(output, output, momentum, device),
            pool: MaxPool2dConfig::new([2, 2]).init(),
        }
    }

    /// # Shapes
    /// `[batch, input, H, W]` → `[batch, output, H / 2, W / 2]` (floor).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        crate::fastops::max_pool2(&self.pool, self.second.forward(self.first.forward(x)))
    }
}

/// VGG blocks of the given widths on a one-channel input.
#[derive(Module, Debug)]
pub struct VggStack {
    blocks: Vec<VggBlock>,
}

impl VggStack {
    /// Blocks of widths `features` for inputs of `size` (height, width). Returns the
    /// stack, its output channels and its output size.
    ///
    /// Panics if `size` is too small to be pooled once per block.
    pub fn new(features: &[usize], size: [usize; 2], device: &Device) -> (Self, usize, [usize; 2]) {
        Self::with_momentum(features, size, 0.1, device)
    }

    /// As [`VggStack::new`], with batch-norm momentum `momentum`.
    pub fn with_momentum(
        features: &[usize],
        size: [usize; 2],
        momentum: f64,
        device: &Device,
    ) -> (Self, usize, [usize; 2]) {
        let mut input = 1;
        let blocks = features
            .iter()
            .map(|&w| {
                let b = VggBlock::new(input, w, momentum, device);
                input = w;
                b
            })
            .collect();
        let out = size.map(|s| s >> features.len());
        assert!(
            out[0] > 0 && out[1] > 0,
            "input {}x{} too small for {} blocks",
            size[0],
            size[1],
            features.len()
        );
        (Self { blocks }, input, out)
    }

    /// # Shapes
    /// `[batch, 1, H, W]` → `[batch, channels, H / 2^n, W / 2^n]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.blocks.iter().fold(x, |x, b| b.forward(x))
    }

    /// Sets every batch norm's momentum: the weight of the next training batch in
    /// the running statistics (1 replaces them; `1 / (k + 1)` for the k-th of a
    /// series of batches makes them the series' average).
    pub fn set_bn_momentum(&mut self, momentum: f64) {
        for b in &mut self.blocks {
            b.first.set_bn_momentum(momentum);
            b.second.set_bn_momentum(momentum);
        }
    }
}

/// Fully connected layers of the given widths from `input` features; returns the
/// layers and the last width.
pub fn linear_stack(input: usize, widths: &[usize], device: &Device) -> (Vec<Linear>, usize) {
    let mut n = input;
    let layers = widths
        .iter()
        .map(|&w| {
            let l = LinearConfig::new(n, w).init(device);
            n = w;
            l
        })
        .collect();
    (layers, n)
}
