//! Times forward + backward of the operations of an EfficientNet-Lite0 block on the
//! flex backend with autodiff (batch 16, region-A input 256×192): depthwise
//! convolution, 1×1 convolution, batch norm, ReLU6.
//! `cargo run --release -p boneage-nn --example lite_ops [REPS]`

use boneage_nn::bench::timed;
use burn::nn::conv::Conv2dConfig;
use burn::nn::{BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;

fn main() {
    let reps = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let dev = Device::flex().autodiff();
    // (channels, H, W, kernel, stride) of the depthwise convolutions at 256x192.
    let cases = [
        (96usize, 64usize, 48usize, 3usize, 2usize),
        (144, 32, 24, 5, 1),
        (240, 16, 12, 3, 1),
        (672, 8, 6, 5, 1),
    ];
    for (c, h, w, k, s) in cases {
        let x = Tensor::<4>::random([16, c, h, w], Distribution::Default, &dev).require_grad();
        let p = (k - 1) / 2;
        let dw = Conv2dConfig::new([c, c], [k, k])
            .with_stride([s, s])
            .with_groups(c)
            .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
            .with_bias(false)
            .init(&dev);
        let pw = Conv2dConfig::new([c, c / 6], [1, 1])
            .with_bias(false)
            .init(&dev);
        let bn = BatchNormConfig::new(c).init(&dev);
        let t_dw_f = timed(1, reps, || {
            let _ = dw.forward(x.clone()).into_data();
        });
        let t_dw = timed(1, reps, || {
            let _ = dw.forward(x.clone()).sum().backward();
        });
        let t_pw = timed(1, reps, || {
            let _ = pw.forward(x.clone()).sum().backward();
        });
        let t_bn = timed(1, reps, || {
            let _ = bn.forward(x.clone()).sum().backward();
        });
        let t_r6 = timed(1, reps, || {
            let _ = x.clone().clamp(0.0, 6.0).sum().backward();
        });
        let t_sum = timed(1, reps, || {
            let _ = x.clone().sum().backward();
        });
        println!(
            "c{c} {h}x{w} k{k} s{s}: dw fwd {:.1} ms, dw f+b {:.1}, 1x1 f+b {:.1}, bn f+b {:.1}, relu6 f+b {:.1}, sum f+b {:.1}",
            t_dw_f * 1e3,
            t_dw * 1e3,
            t_pw * 1e3,
            t_bn * 1e3,
            t_r6 * 1e3,
            t_sum * 1e3
        );
    }
}
