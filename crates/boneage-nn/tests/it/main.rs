//! Tests of the networks, losses, weights, training engine and kernels on the flex
//! CPU backend: one binary, one module per subject.

mod engine;
mod kernels;
mod nets;
mod overfit;
mod weights;

use boneage_nn::burn::prelude::*;

pub fn device() -> Device {
    Device::flex()
}

/// flex seeds one global generator, so every test holds this lock: a test that
/// draws from it (weight init, dropout) then gets the same draws whatever else runs.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol
}

pub fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().try_to_vec::<f32>().unwrap()[0]
}

/// The manifest of a test network that is not a bone-age model: `net` of `config`
/// reading `input` (height, width), trained on nothing.
pub fn manifest_of(
    net: boneage_core::NetKind,
    config: serde_json::Value,
    input: [usize; 2],
) -> boneage_nn::weights::Manifest {
    boneage_nn::weights::Manifest {
        version: boneage_nn::weights::MANIFEST_VERSION,
        net,
        config,
        input,
        normalization: boneage_nn::data::NORMALIZATION.into(),
        sex: None,
        region: None,
        canvas: None,
        variant: None,
        trained_on: "test".into(),
        metrics: Default::default(),
    }
}
