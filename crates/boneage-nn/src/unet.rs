//! U-Net for hand masks (the paper's section 2): a contracting path of conv–BN–ELU
//! pairs and pooling, an expanding path of upsampling, concatenation with the skip
//! connection and conv–BN–ELU pairs, and a one-channel logit.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::interpolate::{Interpolate2d, Interpolate2dConfig, InterpolateMode};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::prelude::*;

use crate::blocks::ConvBnElu;

/// U-Net settings.
#[derive(Config, Debug)]
pub struct UNetConfig {
    /// Input channels (1 for radiographs).
    #[config(default = 1)]
    pub in_channels: usize,
    /// Feature widths, shallowest first; the last is the bottleneck. `n` widths mean
    /// `n − 1` poolings, so H and W must be multiples of `2^(n−1)`.
    #[config(default = "vec![16, 32, 64, 128, 256]")]
    pub features: Vec<usize>,
}

/// Two conv–BN–ELU layers.
#[derive(Module, Debug)]
struct DoubleConv {
    a: ConvBnElu,
    b: ConvBnElu,
}

impl DoubleConv {
    fn new(input: usize, output: usize, device: &Device) -> Self {
        Self {
            a: ConvBnElu::new(input, output, device),
            b: ConvBnElu::new(output, output, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.b.forward(self.a.forward(x))
    }
}

/// The U-Net.
#[derive(Module, Debug)]
pub struct UNet {
    down: Vec<DoubleConv>,
    bottleneck: DoubleConv,
    up: Vec<DoubleConv>,
    pool: MaxPool2d,
    upsample: Interpolate2d,
    head: Conv2d,
}

impl UNetConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> UNet {
        assert!(
            self.features.len() >= 2,
            "a U-Net needs at least two feature widths"
        );
        let f = &self.features;
        let depth = f.len() - 1;
        let mut down = Vec::with_capacity(depth);
        let mut input = self.in_channels;
        for &w in &f[..depth] {
            down.push(DoubleConv::new(input, w, device));
            input = w;
        }
        let bottleneck = DoubleConv::new(f[depth - 1], f[depth], device);
        // Deepest first: upsampled features of width f[i+1] joined with skip f[i].
        let up = (0..depth)
            .rev()
            .map(|i| DoubleConv::new(f[i + 1] + f[i], f[i], device))
            .collect();
        UNet {
            down,
            bottleneck,
            up,
            pool: MaxPool2dConfig::new([2, 2]).init(),
            upsample: Interpolate2dConfig::new()
                .with_scale_factor(Some([2.0, 2.0]))
                .with_mode(InterpolateMode::Nearest)
                .init(),
            head: Conv2dConfig::new([f[0], 1], [1, 1]).init(device),
        }
    }
}

impl UNet {
    /// Mask logits (apply a sigmoid for probabilities).
    ///
    /// # Shapes
    /// `[batch, in_channels, H, W]` → `[batch, 1, H, W]`, with `H` and `W` multiples of
    /// `2^(features − 1)`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let m = 1usize << self.down.len();
        assert!(
            h % m == 0 && w % m == 0,
            "U-Net input {h}x{w} must be a multiple of {m} on each side"
        );
        let mut skips = Vec::with_capacity(self.down.len());
        let mut x = x;
        for block in &self.down {
            let y = block.forward(x);
            x = crate::fastops::max_pool2(&self.pool, y.clone());
            skips.push(y);
        }
        x = self.bottleneck.forward(x);
        for block in &self.up {
            let skip = skips.pop().expect("one skip per level");
            x = block.forward(Tensor::cat(vec![self.upsample.forward(x), skip], 1));
        }
        self.head.forward(x)
    }
}
