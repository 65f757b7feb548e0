//! The three networks as training [`Task`]s, and the `paper` and `cpu` presets.

use boneage_core::registration::{Canvas, Region};
use boneage_core::{NetKind, View};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use serde::{Deserialize, Serialize};

use crate::age::{AgeHead, AgeNet, AgeNetConfig, Backbone, scale_age};
use crate::data::Batch;
use crate::efficientnet::LiteVariant;
use crate::keypoint_net::{KeypointNet, KeypointNetConfig, gaussian_maps, soft_argmax};
use crate::loss::{bce_minus_log_jaccard, bce_with_logits, mae, mse, soft_cross_entropy};
use crate::pipeline::floats;
use crate::train::Task;
use crate::unet::{UNet, UNetConfig};
use crate::verifier::{VerifierNet, VerifierNetConfig};

/// Network sizes: the paper's, for a GPU, or reduced for two CPU cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Preset {
    /// The paper's input sizes and widths.
    Paper,
    /// The same topology at a reduced canvas and width, sized so that one epoch over
    /// 1,000 region-A images fits in 10 minutes on 2 cores.
    Cpu,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "paper" => Ok(Preset::Paper),
            "cpu" => Ok(Preset::Cpu),
            _ => Err(format!("unknown preset {s:?}: use paper or cpu")),
        }
    }
}

impl std::fmt::Display for Preset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Preset {
    /// The bone-age network's input `[height, width]` for `view` (the whole film is
    /// brought to region A's size).
    pub fn age_input(self, view: View) -> [usize; 2] {
        // (height, width). Paper: the region sizes on the 2080×1600 canvas. CPU: region
        // A at 256×192 (0.128 of the paper's size), B, C and D at 0.16 of theirs,
        // rounded so that six poolings leave at least one pixel.
        match (self, view.region().unwrap_or(Region::A)) {
            (Preset::Paper, Region::A) => [2000, 1500],
            (Preset::Paper, Region::B) => [750, 750],
            (Preset::Paper, Region::C) => [600, 1400],
            (Preset::Paper, Region::D) => [920, 1500],
            (Preset::Cpu, Region::A) => [256, 192],
            (Preset::Cpu, Region::B) => [128, 128],
            (Preset::Cpu, Region::C) => [96, 224],
            (Preset::Cpu, Region::D) => [144, 240],
        }
    }

    /// The registration canvas the preset's regions are cropped from.
    pub fn canvas(self) -> Canvas {
        match self {
            Preset::Paper => Canvas::PAPER,
            Preset::Cpu => Canvas::CPU,
        }
    }

    /// "paper" or "cpu".
    pub fn name(self) -> &'static str {
        match self {
            Preset::Paper => "paper",
            Preset::Cpu => "cpu",
        }
    }

    /// The bone-age network for an input of `[height, width]`.
    pub fn age(self, input: [usize; 2], head: AgeHead, sex_input: bool) -> AgeNetConfig {
        let c = AgeNetConfig::new(input[0], input[1])
            .with_head(head)
            .with_sex_input(sex_input);
        match self {
            Preset::Paper => c,
            // Half the widths; global average pooling and two FC layers of 256 keep
            // the model at about 1.4 MB instead of tens of megabytes.
            Preset::Cpu => c
                .with_features(vec![16, 32, 64, 64, 128, 192])
                .with_hidden(vec![256, 256])
                .with_global_pool(true)
                .with_dropout(0.25),
        }
    }

    /// The bone-age network on an EfficientNet-Lite backbone (`variant`, for
    /// ImageNet weights): global average pooling of its 1280 features (with the sex when
    /// `sex_input`), dropout 0.2, FC 256, the head. Batch-norm momentum 0.01, as the
    /// ImageNet training used, so that a few fine-tuning batches do not overwrite the
    /// pretrained statistics. The same in both presets: only the input differs.
    pub fn lite_age(
        self,
        variant: LiteVariant,
        input: [usize; 2],
        head: AgeHead,
        sex_input: bool,
    ) -> AgeNetConfig {
        AgeNetConfig::new(input[0], input[1])
            .with_head(head)
            .with_sex_input(sex_input)
            .with_backbone(Some(Backbone::Efficientnet(variant)))
            .with_features(vec![])
            .with_hidden(vec![256])
            .with_global_pool(true)
            .with_dropout(0.2)
            .with_bn_momentum(0.01)
    }

    /// The key-point network (the paper's 130×100 input in both presets).
    pub fn keypoints(self) -> KeypointNetConfig {
        match self {
            Preset::Paper => KeypointNetConfig::new(),
            // Five blocks instead of three bring the flattened features from
            // 128×16×12 to 128×4×3, so the first fully connected layer has 0.4 M
            // weights instead of 6.3 M (1.9 MB of weights instead of 26 MB).
            Preset::Cpu => KeypointNetConfig::new()
                .with_features(vec![32, 64, 96, 128, 128])
                .with_hidden(vec![256, 128]),
        }
    }

    /// The heat-map key-point locator on an EfficientNet-Lite0 backbone (see
    /// [`crate::keypoint_net`]) for an input of `[height, width]`. The same in both
    /// presets.
    pub fn lite_keypoints(self, input: [usize; 2]) -> KeypointNetConfig {
        KeypointNetConfig::new()
            .with_height(input[0])
            .with_width(input[1])
            .with_backbone(Some(Backbone::Efficientnet(LiteVariant::Lite0)))
            .with_features(vec![])
            .with_hidden(vec![])
            .with_dropout(0.0)
    }

    /// The U-Net and its input `[height, width]`.
    pub fn unet(self) -> (UNetConfig, [usize; 2]) {
        match self {
            Preset::Paper => (UNetConfig::new(), [512, 416]),
            Preset::Cpu => (
                UNetConfig::new().with_features(vec![8, 16, 32, 64]),
                [256, 208],
            ),
        }
    }
}

fn images(batch: &Batch, [h, w]: [usize; 2], device: &Device) -> Tensor<4> {
    Tensor::<1>::from_floats(batch.images.as_slice(), device).reshape([batch.size, 1, h, w])
}

fn column(values: &[f32], width: usize, device: &Device) -> Tensor<2> {
    Tensor::<1>::from_floats(values, device).reshape([values.len() / width, width])
}

/// A fresh network with the ImageNet weights at `path` loaded into its backbone, if
/// given (the caller checked the file before training began).
fn with_pretrained<M>(
    net: M,
    path: Option<&std::path::Path>,
    load: impl FnOnce(M, &std::path::Path) -> Result<M, crate::weights::WeightsError>,
) -> M {
    match path {
        Some(p) => load(net, p)
            .unwrap_or_else(|e| panic!("pretrained weights checked before training: {e}")),
        None => net,
    }
}

/// The bone-age network as a task: MAE on ages scaled to `[−1, 1]` (for the
/// classification head, on the softmax expectation, as the paper does).
pub struct AgeTask {
    /// The network's config.
    pub config: AgeNetConfig,
    /// ImageNet weights for an EfficientNet-Lite backbone, loaded into each fresh
    /// network (see [`AgeNet::load_pretrained`]); the caller checks the file first.
    pub pretrained: Option<std::path::PathBuf>,
}

impl AgeTask {
    fn forward(&self, model: &AgeNet, batch: &Batch, device: &Device) -> (Tensor<2>, Tensor<2>) {
        let x = images(batch, self.input(), device);
        let sex = self.config.sex_input.then(|| column(&batch.sex, 1, device));
        let out = model.forward(x, sex);
        let pred = match self.config.head {
            AgeHead::Regression => out.raw,
            AgeHead::Classification { .. } => scale_age(out.months),
        };
        (pred, scale_age(column(&batch.targets, 1, device)))
    }
}

impl Task for AgeTask {
    type Model = AgeNet;
    fn net(&self) -> NetKind {
        NetKind::Age
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("config serialises")
    }
    fn input(&self) -> [usize; 2] {
        [self.config.height, self.config.width]
    }
    fn init(&self, device: &Device) -> AgeNet {
        with_pretrained(
            self.config.init(device),
            self.pretrained.as_deref(),
            AgeNet::load_pretrained,
        )
    }
    fn pretrained(&self) -> Option<&std::path::Path> {
        self.pretrained.as_deref()
    }
    fn loss(&self, model: &AgeNet, batch: &Batch, device: &Device) -> Tensor<1> {
        let (pred, target) = self.forward(model, batch, device);
        mae(pred, target)
    }
    fn set_bn_momentum(&self, mut model: AgeNet, momentum: Option<f64>) -> AgeNet {
        model.set_bn_momentum(momentum.unwrap_or(self.config.bn_momentum));
        model
    }
    fn metric_names(&self) -> &'static [&'static str] {
        &["mae_months"]
    }
    fn metric_sums(&self, model: &AgeNet, batch: &Batch, device: &Device) -> Vec<f64> {
        let (pred, target) = self.forward(model, batch, device);
        let (p, t) = (floats(pred), floats(target));
        let scaled: f64 = p.iter().zip(&t).map(|(a, b)| (a - b).abs() as f64).sum();
        // One scaled unit is 120 months.
        vec![scaled * 120.0, scaled]
    }
}

/// The key-point network as a task: MSE on coordinates in `[−1, 1]` for the VGG
/// regressor, their mean absolute error for the heat-map locator (the usual loss of
/// soft-argmax training: it does not let a few far-off points dominate), with, if
/// asked, each map's cross-entropy against a Gaussian around its point.
pub struct KeypointTask {
    /// The network's config.
    pub config: KeypointNetConfig,
    /// ImageNet weights for an EfficientNet-Lite backbone, loaded into each fresh
    /// network; the caller checks the file first.
    pub pretrained: Option<std::path::PathBuf>,
    /// For the heat-map locator: add the cross-entropy of each map against a
    /// Gaussian of this many cells around its point
    /// ([`crate::keypoint_net::gaussian_maps`]) to the expectation's error.
    pub heat_sigma: Option<f32>,
}

impl Task for KeypointTask {
    type Model = KeypointNet;
    fn net(&self) -> NetKind {
        NetKind::Keypoints
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("config serialises")
    }
    fn input(&self) -> [usize; 2] {
        [self.config.height, self.config.width]
    }
    fn init(&self, device: &Device) -> KeypointNet {
        with_pretrained(
            self.config.init(device),
            self.pretrained.as_deref(),
            KeypointNet::load_pretrained,
        )
    }
    fn pretrained(&self) -> Option<&std::path::Path> {
        self.pretrained.as_deref()
    }
    fn loss_config(&self) -> Option<serde_json::Value> {
        self.heat_sigma
            .map(|sigma| serde_json::json!({ "heat_sigma": sigma }))
    }
    fn loss(&self, model: &KeypointNet, batch: &Batch, device: &Device) -> Tensor<1> {
        let x = images(batch, self.input(), device);
        let target = column(&batch.targets, 2 * self.config.points(), device);
        let Some(maps) = model.heat_maps(x.clone()) else {
            return mse(model.forward(x), target);
        };
        let [b, k, h, w] = maps.dims();
        let expected = mae(soft_argmax(maps.clone()), target);
        match self.heat_sigma {
            Some(sigma) => {
                let t = gaussian_maps(&batch.targets, [h, w], sigma);
                let t = Tensor::<1>::from_floats(t.as_slice(), device).reshape([b * k, h * w]);
                expected + soft_cross_entropy(maps.reshape([b * k, h * w]), t)
            }
            None => expected,
        }
    }
    fn set_bn_momentum(&self, mut model: KeypointNet, momentum: Option<f64>) -> KeypointNet {
        model.set_bn_momentum(momentum.unwrap_or(crate::keypoint_net::LITE_BN_MOMENTUM));
        model
    }
    fn metric_names(&self) -> &'static [&'static str] {
        if let Some(point) = self.config.refines {
            match point {
                crate::keypoint_net::Refined::Capitate => &["capitate_error_px"],
                crate::keypoint_net::Refined::Thumb => &["thumb_error_px"],
            }
        } else {
            &["fingertip_error_px", "thumb_error_px", "capitate_error_px"]
        }
    }
    /// Distances in input pixels.
    fn metric_sums(&self, model: &KeypointNet, batch: &Batch, device: &Device) -> Vec<f64> {
        let x = images(batch, self.input(), device);
        let pred = floats(model.forward(x));
        let [h, w] = self.input();
        let points = self.config.points();
        let mut sums = vec![0.0; points + 1];
        for (p, t) in pred
            .chunks_exact(2 * points)
            .zip(batch.targets.chunks_exact(2 * points))
        {
            for k in 0..points {
                let dx = (p[2 * k] - t[2 * k]) as f64 * w as f64 / 2.0;
                let dy = (p[2 * k + 1] - t[2 * k + 1]) as f64 * h as f64 / 2.0;
                sums[k] += (dx * dx + dy * dy).sqrt();
            }
            sums[points] += p
                .iter()
                .zip(t)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / (2 * points) as f64;
        }
        sums
    }
}

/// The U-Net as a task: the paper's `BCE − log J`.
pub struct SegmentTask {
    /// The network's config.
    pub config: UNetConfig,
    /// Input `[height, width]`.
    pub input: [usize; 2],
}

impl Task for SegmentTask {
    type Model = UNet;
    fn net(&self) -> NetKind {
        NetKind::Unet
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("config serialises")
    }
    fn input(&self) -> [usize; 2] {
        self.input
    }
    fn init(&self, device: &Device) -> UNet {
        self.config.init(device)
    }
    fn loss(&self, model: &UNet, batch: &Batch, device: &Device) -> Tensor<1> {
        let [h, w] = self.input;
        let x = images(batch, self.input, device);
        let y = Tensor::<1>::from_floats(batch.targets.as_slice(), device)
            .reshape([batch.size, 1, h, w]);
        bce_minus_log_jaccard(model.forward(x), y)
    }
    fn metric_names(&self) -> &'static [&'static str] {
        &["iou"]
    }
    fn metric_sums(&self, model: &UNet, batch: &Batch, device: &Device) -> Vec<f64> {
        let [h, w] = self.input;
        let x = images(batch, self.input, device);
        let logits = model.forward(x);
        let y = Tensor::<1>::from_floats(batch.targets.as_slice(), device)
            .reshape([batch.size, 1, h, w]);
        let loss = bce_minus_log_jaccard(logits.clone(), y)
            .into_data()
            .try_to_vec::<f32>();
        let prob = floats(sigmoid(logits));
        let mut iou = 0.0;
        for (p, t) in prob
            .chunks_exact(h * w)
            .zip(batch.targets.chunks_exact(h * w))
        {
            let (mut inter, mut union) = (0usize, 0usize);
            for (&a, &b) in p.iter().zip(t) {
                let (a, b) = (a > 0.5, b > 0.5);
                inter += (a && b) as usize;
                union += (a || b) as usize;
            }
            iou += if union == 0 {
                1.0
            } else {
                inter as f64 / union as f64
            };
        }
        let loss = loss.map(|v| v[0] as f64).unwrap_or(f64::NAN);
        vec![iou, loss * batch.size as f64]
    }
}

/// The registration verifier as a task: binary cross-entropy of its logit against
/// right (1) or wrong (0).
pub struct VerifyTask {
    /// The network's config.
    pub config: VerifierNetConfig,
}

impl VerifyTask {
    fn logits(&self, model: &VerifierNet, batch: &Batch, device: &Device) -> Tensor<2> {
        model.forward(images(batch, self.input(), device))
    }
}

impl Task for VerifyTask {
    type Model = VerifierNet;
    fn net(&self) -> NetKind {
        NetKind::Verifier
    }
    fn config_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.config).expect("config serialises")
    }
    fn input(&self) -> [usize; 2] {
        [self.config.height, self.config.width]
    }
    fn init(&self, device: &Device) -> VerifierNet {
        self.config.init(device)
    }
    fn loss(&self, model: &VerifierNet, batch: &Batch, device: &Device) -> Tensor<1> {
        let target = column(&batch.targets, 1, device);
        bce_with_logits(self.logits(model, batch, device), target)
    }
    fn set_bn_momentum(&self, mut model: VerifierNet, momentum: Option<f64>) -> VerifierNet {
        model.set_bn_momentum(momentum.unwrap_or(0.1));
        model
    }
    /// Shares of all validation examples: misjudged, right ones scored under ½,
    /// wrong ones scored at ½ or over.
    fn metric_names(&self) -> &'static [&'static str] {
        &["error_rate", "right_refused", "wrong_passed"]
    }
    fn metric_sums(&self, model: &VerifierNet, batch: &Batch, device: &Device) -> Vec<f64> {
        let logits = self.logits(model, batch, device);
        let target = column(&batch.targets, 1, device);
        let loss = floats(bce_with_logits(logits.clone(), target))[0] as f64;
        let (mut refused, mut passed) = (0.0, 0.0);
        for (&l, &t) in floats(logits).iter().zip(&batch.targets) {
            match (t > 0.5, l >= 0.0) {
                (true, false) => refused += 1.0,
                (false, true) => passed += 1.0,
                _ => {}
            }
        }
        vec![refused + passed, refused, passed, loss * batch.size as f64]
    }
}
