//! Prints EfficientNet-Lite0's (or Lite1's) pooled features of a fixed synthetic image
//! for weights written by `scripts/import_efficientnet.py`, to compare with the same
//! network in PyTorch (`scripts/import_efficientnet.py [--variant lite1] --check`).
//! `cargo run --release -p boneage-nn --example lite_features -- FILE [lite0|lite1]`

use boneage_nn::efficientnet::{EfficientNetLite, LiteVariant};
use burn::prelude::*;

fn main() {
    let usage = "usage: lite_features FILE [lite0|lite1]";
    let path = std::env::args().nth(1).expect(usage);
    let variant = match std::env::args().nth(2).as_deref() {
        None | Some("lite0") => LiteVariant::Lite0,
        Some("lite1") => LiteVariant::Lite1,
        Some(other) => panic!("{other}: {usage}"),
    };
    let device = Device::flex();
    let net = EfficientNetLite::new(variant, 0.01, &device)
        .load_pretrained(std::path::Path::new(&path))
        .unwrap_or_else(|e| panic!("{e}"));
    let (h, w) = (64usize, 48usize);
    let x: Vec<f32> = (0..h * w).map(|i| ((i as f32) * 0.37).sin()).collect();
    let x = Tensor::<1>::from_floats(x.as_slice(), &device).reshape([1, 1, h, w]);
    let f = net.forward(x).mean_dim(3).mean_dim(2).reshape([1280]);
    let v = f
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("f32");
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    println!("first {:?} mean {mean:.6}", &v[..5]);
}
