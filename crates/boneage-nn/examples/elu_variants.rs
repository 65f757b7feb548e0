//! Forward + backward time of ELU formulations on flex (8x16x256x192, median of 7):
//! `cargo run --release -p boneage-nn --example elu_variants`.

use boneage_nn::burn::prelude::*;
use boneage_nn::burn::tensor::Distribution;
use boneage_nn::burn::tensor::activation::relu;
use std::time::Instant;

fn time(name: &str, f: impl Fn(Tensor<4>) -> Tensor<4>) {
    let d = Device::flex().autodiff();
    let x =
        Tensor::<4>::random([8, 16, 256, 192], Distribution::Normal(0.0, 2.0), &d).require_grad();
    let mut t = Vec::new();
    for _ in 0..7 {
        let s = Instant::now();
        let y = f(x.clone());
        let g = y.sum().backward();
        let gx = x.grad(&g).unwrap();
        let _ = gx.into_data();
        t.push(s.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    println!("{name}: {:.4} s", t[3]);
}

fn main() {
    time("clamp (current)", |x| {
        x.clone().clamp_min(0.0) + x.clamp_max(0.0).exp() - 1.0
    });
    time("relu form (blocks::elu)", boneage_nn::blocks::elu);
    time("relu only (floor)", relu);
}
