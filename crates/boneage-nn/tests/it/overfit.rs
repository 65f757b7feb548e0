//! Each network memorises a handful of phantom samples: its loss falls tenfold
//! within a bounded number of Adam steps. Small enough for CI.

use boneage_core::ops::resize_area;
use boneage_core::phantom::{PhantomConfig, generate, image_rng};
use boneage_nn::age::{AgeNetConfig, scale_age};
use boneage_nn::burn::optim::{AdamConfig, GradientsParams};
use boneage_nn::burn::prelude::*;
use boneage_nn::keypoint_net::KeypointNetConfig;
use boneage_nn::loss::{bce_minus_log_jaccard, mae, mse};
use boneage_nn::unet::UNetConfig;

const H: usize = 64;
const W: usize = 48;

struct Batch {
    images: Tensor<4>,
    masks: Tensor<4>,
    keypoints: Tensor<2>,
    ages: Tensor<2>,
}

/// `n` phantoms at 64x48 with masks, key points in [−1, 1] and ages.
fn phantoms(n: usize, device: &Device) -> Batch {
    let cfg = PhantomConfig {
        width: 192,
        height: 256,
        ..PhantomConfig::default()
    };
    let (mut img, mut msk, mut kp, mut age) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let p = generate(&cfg, &mut image_rng(99, i as u64)).unwrap();
        img.extend(resize_area(&p.image, W, H).into_vec());
        let m = boneage_core::image::Mask::from_vec(192, 256, p.mask.clone())
            .unwrap()
            .to_image();
        msk.extend(
            resize_area(&m, W, H)
                .as_slice()
                .iter()
                .map(|&v| (v > 0.5) as u8 as f32),
        );
        for pt in [
            p.keypoints.fingertip,
            p.keypoints.thumb,
            p.keypoints.capitate,
        ] {
            kp.push((pt.x / 192.0 * 2.0 - 1.0) as f32);
            kp.push((pt.y / 256.0 * 2.0 - 1.0) as f32);
        }
        age.push(p.age_months as f32);
    }
    Batch {
        images: Tensor::<1>::from_floats(img.as_slice(), device).reshape([n, 1, H, W]),
        masks: Tensor::<1>::from_floats(msk.as_slice(), device).reshape([n, 1, H, W]),
        keypoints: Tensor::<1>::from_floats(kp.as_slice(), device).reshape([n, 6]),
        ages: Tensor::<1>::from_floats(age.as_slice(), device).reshape([n, 1]),
    }
}

fn value(t: Tensor<1>) -> f32 {
    t.into_data().try_to_vec::<f32>().unwrap()[0]
}

/// Runs Adam on `loss_of(model)` until the loss is 10x below its first value;
/// returns (first, best, steps).
fn fit<M: Module>(
    mut model: M,
    steps: usize,
    lr: f64,
    loss_of: impl Fn(&M) -> Tensor<1>,
) -> (f32, f32, usize) {
    let mut optim = AdamConfig::new().init();
    let first = value(loss_of(&model));
    let mut best = first;
    for step in 0..steps {
        let loss = loss_of(&model);
        let v = value(loss.clone());
        best = best.min(v);
        if best < first / 10.0 {
            return (first, best, step);
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
    }
    (first, best, steps)
}

/// A seeded training device (tests hold [`crate::rng_lock`] while they use it);
/// the step budgets leave wide margins (measured: 3–8 steps of 400 for the
/// regressors, 36 of 150 for the U-Net).
fn seeded() -> Device {
    let d = Device::flex().autodiff();
    d.seed(7);
    d
}

#[test]
fn unet_memorises_masks() {
    let _rng = crate::rng_lock();
    let d = seeded();
    let b = phantoms(2, &d);
    let net = UNetConfig::new().with_features(vec![8, 16, 32]).init(&d);
    let (first, best, steps) = fit(net, 150, 1e-2, |m| {
        bce_minus_log_jaccard(m.forward(b.images.clone()), b.masks.clone())
    });
    eprintln!("U-Net BCE - log J: {first:.4} -> {best:.4} in {steps} steps");
    assert!(
        best < first / 10.0,
        "U-Net loss {first} -> {best} in {steps} steps"
    );
}

#[test]
fn keypoint_net_memorises_points() {
    let _rng = crate::rng_lock();
    let d = seeded();
    let b = phantoms(4, &d);
    let net = KeypointNetConfig::new()
        .with_height(H)
        .with_width(W)
        .with_features(vec![8, 16, 16])
        .with_hidden(vec![64, 32])
        .with_dropout(0.0)
        .init(&d);
    let (first, best, steps) = fit(net, 200, 1e-3, |m| {
        mse(m.forward(b.images.clone()), b.keypoints.clone())
    });
    eprintln!("key-point MSE: {first:.4} -> {best:.4} in {steps} steps");
    assert!(
        best < first / 10.0,
        "key-point MSE {first} -> {best} in {steps} steps"
    );
}

#[test]
fn age_net_memorises_ages() {
    let _rng = crate::rng_lock();
    let d = seeded();
    let b = phantoms(4, &d);
    let net = AgeNetConfig::new(H, W)
        .with_features(vec![8, 16, 16, 32])
        .with_hidden(vec![32, 32])
        .with_dropout(0.0)
        .with_global_pool(true)
        .init(&d);
    let target = scale_age(b.ages.clone());
    let (first, best, steps) = fit(net, 300, 1e-3, |m| {
        mae(m.forward(b.images.clone(), None).raw, target.clone())
    });
    eprintln!("age MAE (scaled): {first:.4} -> {best:.4} in {steps} steps");
    assert!(
        best < first / 10.0,
        "age MAE {first} -> {best} in {steps} steps"
    );
}
