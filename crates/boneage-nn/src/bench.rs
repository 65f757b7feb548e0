//! Timing cases for `boneage bench train`, mirrored one for one by
//! `bench/torch_ref.py` so that the two can be compared in the same run.

use std::time::Instant;

use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::Distribution;

use crate::age::{AgeHead, AgeNet};
use crate::blocks::{VggStack, elu};
use crate::efficientnet::LiteVariant;
use crate::loss::mae;
use crate::tasks::Preset;

/// The reference small VGG of the training-engine issue: three blocks of
/// conv–BN–ELU ×2 + max-pool at 32/64/128 channels on 1×128×128, FC 256, one output.
#[derive(Module, Debug)]
pub struct SmallVgg {
    blocks: VggStack,
    fc: Linear,
    out: Linear,
}

impl SmallVgg {
    /// Builds it on `device`.
    pub fn new(device: &Device) -> Self {
        Self {
            blocks: VggStack::new(&[32, 64, 128], [128, 128], device).0,
            fc: LinearConfig::new(128 * 16 * 16, 256).init(device),
            out: LinearConfig::new(256, 1).init(device),
        }
    }

    /// `[batch, 1, 128, 128]` → `[batch, 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.blocks.forward(x);
        self.out.forward(elu(self.fc.forward(x.flatten(1, 3))))
    }
}

/// One timed case: its name (shared with the PyTorch script) and the median
/// seconds per repetition.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Case name.
    pub case: &'static str,
    /// What it is, in words.
    pub what: String,
    /// Median seconds per repetition.
    pub seconds: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median seconds of `reps` timed calls after `warmup` untimed ones.
pub fn timed(warmup: usize, reps: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    median(
        (0..reps.max(1))
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

/// The bone-age net of the cpu preset for region A (regression, no sex input).
pub fn cpu_age_net(device: &Device) -> (AgeNet, [usize; 2]) {
    let input = Preset::Cpu.age_input(boneage_core::View::Region(
        boneage_core::registration::Region::A,
    ));
    (
        Preset::Cpu
            .age(input, AgeHead::Regression, false)
            .init(device),
        input,
    )
}

/// The EfficientNet-Lite0 bone-age net for region A at the cpu preset's input
/// (regression, sex as an input): the backbone, global average pooling, FC 256.
pub fn lite0_age_net(device: &Device) -> (AgeNet, [usize; 2]) {
    let input = Preset::Cpu.age_input(boneage_core::View::Region(
        boneage_core::registration::Region::A,
    ));
    (
        Preset::Cpu
            .lite_age(LiteVariant::Lite0, input, AgeHead::Regression, true)
            .init(device),
        input,
    )
}

/// Times one training step (forward, backward, Adam) of `net` on a random batch of
/// `batch` images of `[h, w]`.
fn step_seconds(
    net: &AgeNet,
    [h, w]: [usize; 2],
    batch: usize,
    sex: bool,
    reps: usize,
    device: &Device,
) -> f64 {
    let mut slot = Some(net.clone());
    let mut optim = AdamConfig::new().init();
    let x = Tensor::<4>::random([batch, 1, h, w], Distribution::Default, device);
    let y = Tensor::<2>::random([batch, 1], Distribution::Default, device);
    let s = sex.then(|| Tensor::<2>::random([batch, 1], Distribution::Default, device));
    timed(2, reps, || {
        let model = slot.take().expect("the model is put back each step");
        let loss = mae(model.forward(x.clone(), s.clone()).raw, y.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        slot = Some(optim.step(1e-3, model, grads));
        let _ = loss.into_data();
    })
}

/// Runs the cases with `reps` timed repetitions each; `only` keeps the cases whose
/// name contains it.
pub fn run(reps: usize, only: Option<&str>) -> Vec<Timing> {
    let keep = |c: &str| only.is_none_or(|o| c.contains(o));
    let mut out = Vec::new();
    let train = Device::flex().autodiff();
    train.seed(1);

    if keep("small_vgg_step") {
        let mut slot = Some(SmallVgg::new(&train));
        let mut optim = AdamConfig::new().init();
        let x = Tensor::<4>::random([8, 1, 128, 128], Distribution::Default, &train);
        let y = Tensor::<2>::random([8, 1], Distribution::Default, &train);
        let seconds = timed(2, reps, || {
            let model = slot.take().expect("the model is put back each step");
            let loss = mae(model.forward(x.clone()), y.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            slot = Some(optim.step(1e-3, model, grads));
            let _ = loss.into_data();
        });
        out.push(Timing {
            case: "small_vgg_step",
            what: "training step, reference small VGG, batch 8, 1x128x128".into(),
            seconds,
        });
    }

    let (net, [h, w]) = cpu_age_net(&train);
    if keep("age_step") {
        let seconds = step_seconds(&net, [h, w], 8, false, reps, &train);
        out.push(Timing {
            case: "age_step",
            what: format!("training step, bone-age net (cpu preset), batch 8, 1x{h}x{w}"),
            seconds,
        });
    }
    if keep("age_infer") {
        let plain = Device::flex();
        let model = net.valid();
        let x = Tensor::<4>::random([1, 1, h, w], Distribution::Default, &plain);
        let seconds = timed(2, reps * 2, || {
            let _ = model.forward(x.clone(), None).months.into_data();
        });
        out.push(Timing {
            case: "age_infer",
            what: format!("inference, bone-age net (cpu preset), batch 1, 1x{h}x{w}"),
            seconds,
        });
    }
    if keep("lite0_step") || keep("lite0_infer") {
        let (net, [h, w]) = lite0_age_net(&train);
        if keep("lite0_step") {
            out.push(Timing {
                case: "lite0_step",
                what: format!(
                    "training step, EfficientNet-Lite0 bone-age net, batch 16, 1x{h}x{w}"
                ),
                seconds: step_seconds(&net, [h, w], 16, true, reps, &train),
            });
        }
        if keep("lite0_infer") {
            let plain = Device::flex();
            let model = net.valid();
            let x = Tensor::<4>::random([1, 1, h, w], Distribution::Default, &plain);
            let s = Tensor::<2>::ones([1, 1], &plain);
            out.push(Timing {
                case: "lite0_infer",
                what: format!("inference, EfficientNet-Lite0 bone-age net, batch 1, 1x{h}x{w}"),
                seconds: timed(2, reps * 2, || {
                    let _ = model.forward(x.clone(), Some(s.clone())).months.into_data();
                }),
            });
        }
    }
    out
}
