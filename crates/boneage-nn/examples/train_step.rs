//! Times one training step of the small VGG the training-engine issue uses as its
//! reference (batch 8, 1×128×128, three blocks of conv–BN–ELU ×2 + max-pool at
//! 32/64/128 channels, FC 256, MAE, Adam) on the flex backend, and inference of the
//! full bone-age net at batch 1.
//!
//! `cargo run --release -p boneage-nn --example train_step`

use std::time::Instant;

use boneage_nn::age::AgeNetConfig;
use boneage_nn::blocks::{VggStack, elu};
use boneage_nn::burn::nn::{Linear, LinearConfig};
use boneage_nn::burn::optim::{AdamConfig, GradientsParams};
use boneage_nn::burn::prelude::*;
use boneage_nn::burn::tensor::Distribution;
use boneage_nn::loss::mae;

#[derive(Module, Debug)]
struct SmallVgg {
    blocks: VggStack,
    fc: Linear,
    out: Linear,
}

impl SmallVgg {
    fn new(device: &Device) -> Self {
        Self {
            blocks: VggStack::new(&[32, 64, 128], [128, 128], device).0,
            fc: LinearConfig::new(128 * 16 * 16, 256).init(device),
            out: LinearConfig::new(256, 1).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.forward(x);
        self.out.forward(elu(self.fc.forward(x.flatten(1, 3))))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let device = Device::flex().autodiff();
    let mut model = SmallVgg::new(&device);
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<4>::random([8, 1, 128, 128], Distribution::Default, &device);
    let y = Tensor::<2>::random([8, 1], Distribution::Default, &device);
    let mut times = Vec::new();
    for i in 0..12 {
        let start = Instant::now();
        let loss = mae(model.forward(x.clone()), y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-3, model, grads);
        // Read the loss back so that the step has really run.
        let _ = loss.into_data();
        if i >= 2 {
            times.push(start.elapsed().as_secs_f64());
        }
    }
    println!(
        "small VGG training step (batch 8, 1x128x128): median {:.3} s over {} steps",
        median(times.clone()),
        times.len()
    );

    let plain = Device::flex();
    let net = AgeNetConfig::new(500, 376).init(&plain);
    let x = Tensor::<4>::random([1, 1, 500, 376], Distribution::Default, &plain);
    let mut inf = Vec::new();
    for i in 0..6 {
        let start = Instant::now();
        let _ = net.forward(x.clone(), None).months.into_data();
        if i >= 1 {
            inf.push(start.elapsed().as_secs_f64());
        }
    }
    println!(
        "bone-age net inference (paper widths, 500x376 region A at the cpu canvas, batch 1): median {:.3} s",
        median(inf)
    );
}
