//! The bone-age network (the paper's section 4): six VGG blocks (32, 64, 128, 128,
//! 256, 384), two fully connected layers with dropout, and either a regression
//! output (age scaled to `[−1, 1]`) or a 240-way softmax whose expectation over
//! 0..239 months is the prediction. Optionally the patient's sex joins the features
//! before the fully connected layers.
//!
//! The feature extractor is either the paper's VGG blocks or an EfficientNet-Lite
//! ([`crate::efficientnet`]) that can start from ImageNet weights.

use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};

use crate::blocks::{VggStack, elu, linear_stack};
use crate::efficientnet::{self, EfficientNetLite, LiteVariant};
use crate::weights::WeightsError;

/// Oldest bone age the networks represent, in months (the classes are 0..239).
pub const MAX_MONTHS: f64 = 240.0;

/// Which output the network has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgeHead {
    /// One value: the age scaled to `[−1, 1]` (0 months → −1, 240 → 1).
    Regression,
    /// One logit per month 0..classes; the prediction is the softmax expectation.
    Classification {
        /// Number of classes (the paper's 240).
        classes: usize,
    },
}

/// The feature extractor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backbone {
    /// The paper's VGG blocks (`features` sets their widths).
    Vgg,
    /// EfficientNet-Lite (`features` is ignored; features are always globally
    /// pooled).
    Efficientnet(LiteVariant),
}

/// Bone-age network settings.
#[derive(Config, Debug)]
pub struct AgeNetConfig {
    /// Input height (set by the region).
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Output head.
    #[config(default = "AgeHead::Regression")]
    pub head: AgeHead,
    /// The feature extractor; `None` (what manifests written before the choice
    /// existed say, by omission) is [`Backbone::Vgg`].
    pub backbone: Option<Backbone>,
    /// VGG block widths.
    #[config(default = "vec![32, 64, 128, 128, 256, 384]")]
    pub features: Vec<usize>,
    /// Fully connected widths (the paper's two layers of 2048).
    #[config(default = "vec![2048, 2048]")]
    pub hidden: Vec<usize>,
    /// Dropout before each fully connected layer.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Average the last feature map over space instead of flattening it: a far
    /// smaller first fully connected layer.
    #[config(default = false)]
    pub global_pool: bool,
    /// Take the patient's sex as an extra input (mixed-sex models).
    #[config(default = false)]
    pub sex_input: bool,
    /// Batch-norm momentum during training: the weight of each batch in the running
    /// statistics (PyTorch's convention and default). The engine recomputes the
    /// statistics on the unaugmented training images after the last epoch (see
    /// `TrainConfig::recalibrate_bn`).
    #[config(default = 0.1)]
    pub bn_momentum: f64,
}

/// The bone-age network.
#[derive(Module, Debug)]
pub struct AgeNet {
    blocks: Option<VggStack>,
    lite: Option<EfficientNetLite>,
    fc: Vec<Linear>,
    out: Linear,
    dropout: Dropout,
    classes: usize,
    global_pool: bool,
    sex_input: bool,
}

/// What the network says for a batch.
#[derive(Debug, Clone)]
pub struct AgeOutput {
    /// The raw output: `[batch, 1]` scaled age for regression, `[batch, classes]`
    /// logits for classification.
    pub raw: Tensor<2>,
    /// The predicted bone age in months, `[batch, 1]`.
    pub months: Tensor<2>,
}

impl AgeNetConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> AgeNet {
        let (blocks, lite, features) = match self.backbone.unwrap_or(Backbone::Vgg) {
            Backbone::Vgg => {
                let (blocks, input, [h, w]) = VggStack::with_momentum(
                    &self.features,
                    [self.height, self.width],
                    self.bn_momentum,
                    device,
                );
                let features = if self.global_pool {
                    input
                } else {
                    input * h * w
                };
                (Some(blocks), None, features)
            }
            Backbone::Efficientnet(v) => (
                None,
                Some(EfficientNetLite::new(v, self.bn_momentum, device)),
                efficientnet::FEATURES,
            ),
        };
        let (fc, n) = linear_stack(features + self.sex_input as usize, &self.hidden, device);
        let classes = match self.head {
            AgeHead::Regression => 1,
            AgeHead::Classification { classes } => classes,
        };
        AgeNet {
            blocks,
            lite,
            fc,
            out: LinearConfig::new(n, classes).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            classes,
            global_pool: self.global_pool || lite_backbone(self.backbone),
            sex_input: self.sex_input,
        }
    }
}

fn lite_backbone(b: Option<Backbone>) -> bool {
    matches!(b, Some(Backbone::Efficientnet(_)))
}

/// Months → the regression target in `[−1, 1]`.
pub fn scale_age(months: Tensor<2>) -> Tensor<2> {
    months / (MAX_MONTHS / 2.0) - 1.0
}

/// The regression output in `[−1, 1]` → months.
pub fn unscale_age(scaled: Tensor<2>) -> Tensor<2> {
    (scaled + 1.0) * (MAX_MONTHS / 2.0)
}

/// The expectation of the softmax of `logits` over classes 0, 1, …, C−1.
///
/// # Shapes
/// `[batch, C]` → `[batch, 1]`
pub fn softmax_expectation(logits: Tensor<2>) -> Tensor<2> {
    let [_, c] = logits.dims();
    let ages = Tensor::<1, Int>::arange(0..c as i64, &logits.device())
        .float()
        .reshape([c, 1]);
    softmax(logits, 1).matmul(ages)
}

impl AgeNet {
    /// Sets the batch norms' momentum (see [`VggStack::set_bn_momentum`]).
    pub fn set_bn_momentum(&mut self, momentum: f64) {
        if let Some(b) = &mut self.blocks {
            b.set_bn_momentum(momentum);
        }
        if let Some(l) = &mut self.lite {
            l.set_bn_momentum(momentum);
        }
    }

    /// Loads ImageNet weights into the EfficientNet-Lite backbone (see
    /// [`EfficientNetLite::load_pretrained`]); the fully connected layers keep their
    /// initialisation. An error for a VGG network.
    pub fn load_pretrained(mut self, path: &std::path::Path) -> Result<Self, WeightsError> {
        EfficientNetLite::load_into(&mut self.lite, path, "this network")?;
        Ok(self)
    }

    /// Predicts bone age. `sex` (`[batch, 1]`, 1 = male, 0 = female) is required when
    /// the network was built with `sex_input` and ignored otherwise.
    ///
    /// # Shapes
    /// `[batch, 1, height, width]` → [`AgeOutput`]
    pub fn forward(&self, x: Tensor<4>, sex: Option<Tensor<2>>) -> AgeOutput {
        let x = match (&self.blocks, &self.lite) {
            (Some(b), _) => b.forward(x),
            (None, Some(l)) => l.forward(x),
            (None, None) => unreachable!("an age net has a backbone"),
        };
        let mut x: Tensor<2> = if self.global_pool {
            let [b, c, _, _] = x.dims();
            x.mean_dim(3).mean_dim(2).reshape([b, c])
        } else {
            x.flatten(1, 3)
        };
        if self.sex_input {
            let sex = sex.expect("this network takes the patient's sex as input");
            x = Tensor::cat(vec![x, sex], 1);
        }
        for fc in &self.fc {
            x = elu(fc.forward(self.dropout.forward(x)));
        }
        let raw = self.out.forward(self.dropout.forward(x));
        let months = if self.classes == 1 {
            unscale_age(raw.clone())
        } else {
            softmax_expectation(raw.clone())
        };
        AgeOutput { raw, months }
    }
}
