//! One gradient of a bone-age net on a given batch, to compare the engine with
//! PyTorch on the same weights and the same images (`bench/torch_age_grad.py` makes the
//! batch, runs PyTorch and compares; docs/parity/vgg-A.md):
//!
//!     cargo run --release -p boneage-nn --example age_grad -- WEIGHTS BATCH OUT [STEPS LR]
//!
//! WEIGHTS: an age net's safetensors beside its JSON manifest. BATCH: little-endian
//! f32, `n` images of the manifest's input size as the engine feeds them (`p / 127.5 -
//! 1`), then the `n` sexes (1 male), then the `n` targets scaled to [−1, 1]. One
//! forward and backward in training mode (batch statistics; dropout as the manifest
//! says, so give it 0 for a comparison) of the training loss (MAE on the scaled age),
//! then one plain SGD step with learning rate `LR_SCALE`: OUT (weights and manifest)
//! minus WEIGHTS is −`LR_SCALE` times the gradient. Prints the loss. With STEPS and LR:
//! instead, STEPS steps of the training's optimiser (Adam, ε 10⁻⁸, learning rate LR) on
//! the same batch, OUT the weights after them, the loss printed before each step.

use boneage_nn::age::{AgeNet, AgeNetConfig};
use boneage_nn::burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use boneage_nn::burn::prelude::*;
use boneage_nn::loss::mae;
use boneage_nn::weights::{load, read_manifest, save};
use std::path::PathBuf;

/// The SGD step's learning rate: large enough that the change of each weight stands
/// well above f32 rounding of the weight, so that the gradient reads back exactly.
const LR_SCALE: f64 = 1000.0;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let (weights, batch, out, adam) = match args.as_slice() {
        [w, b, o] => (w, b, o, None),
        [w, b, o, steps, lr] => {
            let number = |p: &PathBuf| p.to_string_lossy().parse::<f64>();
            (w, b, o, Some((number(steps)? as usize, number(lr)?)))
        }
        _ => return Err("usage: age_grad WEIGHTS BATCH OUT [STEPS LR]".into()),
    };
    let manifest = read_manifest(weights)?;
    let config: AgeNetConfig = serde_json::from_value(manifest.config.clone())?;
    let device = Device::flex().autodiff();
    let model = load(config.init(&device), weights, &manifest)?;

    let bytes = std::fs::read(batch)?;
    let values: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let [h, w] = manifest.input;
    let n = values.len() / (h * w + 2);
    if n == 0 || values.len() != n * (h * w + 2) {
        return Err(format!(
            "{}: {} values, not n images of {h}x{w} plus n sexes and n targets",
            batch.display(),
            values.len()
        )
        .into());
    }
    let column = |v: &[f32]| Tensor::<1>::from_floats(v, &device).reshape([n, 1]);
    let x = Tensor::<1>::from_floats(&values[..n * h * w], &device).reshape([n, 1, h, w]);
    let sex = column(&values[n * h * w..n * h * w + n]);
    let target = column(&values[n * h * w + n..]);

    let loss_of = |model: &AgeNet| {
        let sex = config.sex_input.then(|| sex.clone());
        mae(model.forward(x.clone(), sex).raw, target.clone())
    };
    let print = |loss: &Tensor<1>| -> Result<(), Box<dyn std::error::Error>> {
        let value = loss
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .map_err(|e| format!("{e:?}"))?;
        println!("loss {:.8}", value[0]);
        Ok(())
    };
    if let Some((steps, lr)) = adam {
        // The training's optimiser as `boneage train` builds it (train.rs).
        let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
        let mut model = model;
        for _ in 0..steps {
            let loss = loss_of(&model);
            print(&loss)?;
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        save(&model, &manifest, out)?;
        println!("wrote {} after {steps} Adam steps", out.display());
        return Ok(());
    }
    let loss = loss_of(&model);
    print(&loss)?;
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let mut sgd = SgdConfig::new().init();
    let stepped = sgd.step(LR_SCALE, model, grads);
    save(&stepped, &manifest, out)?;
    println!(
        "wrote {} (minus {} = −{LR_SCALE} × gradient)",
        out.display(),
        weights.display()
    );
    Ok(())
}
