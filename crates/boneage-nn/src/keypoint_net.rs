//! The key-point networks, with six outputs — x, y of the middle fingertip, thumb tip
//! and capitate in `[−1, 1]` of the input:
//!
//! - the paper's regressor (section 3): VGG blocks, then fully connected layers with
//!   dropout between them;
//! - a heat-map locator: an EfficientNet-Lite backbone (ImageNet weights, see
//!   [`crate::efficientnet`]), a 1×1 convolution to one heat map per point on the
//!   last feature map (a 32nd of the input; a 16th for the refining nets, whose
//!   backbone is cut after its fifth stage), and the soft-argmax of each map (the
//!   expected position under its softmax). Positions come from where the features
//!   fire rather than from weights tied to absolute positions, which is what lets it
//!   find hands that are turned, shrunk or moved.

use boneage_core::geometry::Point;
use boneage_core::keypoints::KeyPoints;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::softmax;

use crate::age::Backbone;
use crate::blocks::{VggStack, elu, linear_stack};
use crate::efficientnet::EfficientNetLite;
use crate::pipeline::floats;
use crate::weights::WeightsError;

/// Key-point network settings.
#[derive(Config, Debug)]
pub struct KeypointNetConfig {
    /// Input height (the paper's 130).
    #[config(default = 130)]
    pub height: usize,
    /// Input width (the paper's 100).
    #[config(default = 100)]
    pub width: usize,
    /// The feature extractor; `None` (what manifests written before the choice
    /// existed say, by omission) is [`Backbone::Vgg`] with fully connected outputs,
    /// [`Backbone::Efficientnet`] the heat-map locator.
    pub backbone: Option<Backbone>,
    /// VGG block widths.
    #[config(default = "vec![64, 128, 256]")]
    pub features: Vec<usize>,
    /// Hidden fully connected widths (two of them, then the 6 outputs).
    #[config(default = "vec![512, 256]")]
    pub hidden: Vec<usize>,
    /// Dropout probability between the fully connected layers.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// The one key point a refining net finds in its field around a first guess
    /// ([`crate::inputs::refine_input`]); `None` (and manifests written before the
    /// choice existed): the three key points on the whole film.
    pub refines: Option<Refined>,
    /// The EfficientNet-Lite stages kept ([`EfficientNetLite::cut`]): `None`, all
    /// of them and the head (heat maps at a 32nd of the input);
    /// [`crate::efficientnet::STAGES_TO_16TH`] for finer heat maps from a fifth of
    /// the weights (the refining nets).
    pub lite_stages: Option<usize>,
    /// Heat maps at a finer scale: the backbone's output doubled in size, joined
    /// with the features after this many stages
    /// ([`crate::efficientnet::STAGES_TO_8TH`]: an 8th of the input) and mixed by a
    /// 3×3 convolution before the 1×1 to the maps. `None` (and manifests written
    /// before the choice existed): the maps at the backbone's own scale.
    pub skip_stages: Option<usize>,
}

/// The key point a refining net finds (`capitate.safetensors`,
/// `thumb.safetensors`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Refined {
    /// The capitate's centre.
    Capitate,
    /// The thumb tip.
    Thumb,
}

impl Refined {
    /// Both, in the order the pipeline refines them (the thumb's field is oriented
    /// by the capitate).
    pub const ALL: [Refined; 2] = [Refined::Capitate, Refined::Thumb];

    /// "capitate" or "thumb" (the weights' file stem, the manifest's spelling).
    pub fn code(self) -> &'static str {
        match self {
            Refined::Capitate => "capitate",
            Refined::Thumb => "thumb",
        }
    }

    /// The point in words.
    pub fn describe(self) -> &'static str {
        match self {
            Refined::Capitate => "capitate",
            Refined::Thumb => "thumb tip",
        }
    }

    /// This point of `k`.
    pub fn of(self, k: &KeyPoints) -> Point {
        match self {
            Refined::Capitate => k.capitate,
            Refined::Thumb => k.thumb,
        }
    }

    /// `k` with this point moved to `p`.
    pub fn with(self, k: &KeyPoints, p: Point) -> KeyPoints {
        match self {
            Refined::Capitate => KeyPoints { capitate: p, ..*k },
            Refined::Thumb => KeyPoints { thumb: p, ..*k },
        }
    }
}

impl std::fmt::Display for Refined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Batch-norm momentum of the locator's EfficientNet backbone during training
/// (PyTorch's convention: the weight of each batch), as for the bone-age nets.
pub const LITE_BN_MOMENTUM: f64 = 0.01;

/// The key-point network.
#[derive(Module, Debug)]
pub struct KeypointNet {
    blocks: Option<VggStack>,
    fc: Vec<Linear>,
    out: Option<Linear>,
    lite: Option<EfficientNetLite>,
    heat: Option<Conv2d>,
    /// The 3×3 convolution joining the finer features (see
    /// [`KeypointNetConfig::skip_stages`]).
    mix: Option<Conv2d>,
    /// The stages after which the finer features are taken (0 without `mix`).
    skip: usize,
    dropout: Dropout,
}

/// The channels between the joining 3×3 convolution and the heat maps.
const MIX_CHANNELS: usize = 64;

impl KeypointNetConfig {
    /// How many points the network finds.
    pub fn points(&self) -> usize {
        if self.refines.is_some() { 1 } else { 3 }
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> KeypointNet {
        match self.backbone.unwrap_or(Backbone::Vgg) {
            Backbone::Vgg => {
                let (blocks, input, [h, w]) =
                    VggStack::new(&self.features, [self.height, self.width], device);
                let (fc, n) = linear_stack(input * h * w, &self.hidden, device);
                KeypointNet {
                    blocks: Some(blocks),
                    fc,
                    out: Some(LinearConfig::new(n, 2 * self.points()).init(device)),
                    lite: None,
                    heat: None,
                    mix: None,
                    skip: 0,
                    dropout: DropoutConfig::new(self.dropout).init(),
                }
            }
            Backbone::Efficientnet(v) => {
                let lite = EfficientNetLite::cut(v, self.lite_stages, LITE_BN_MOMENTUM, device);
                let mix = self.skip_stages.map(|s| {
                    Conv2dConfig::new(
                        [lite.channels_after(s) + lite.features(), MIX_CHANNELS],
                        [3, 3],
                    )
                    .with_padding(PaddingConfig2d::Same)
                    .init(device)
                });
                let maps_from = if mix.is_some() {
                    MIX_CHANNELS
                } else {
                    lite.features()
                };
                KeypointNet {
                    blocks: None,
                    fc: vec![],
                    out: None,
                    heat: Some(Conv2dConfig::new([maps_from, self.points()], [1, 1]).init(device)),
                    mix,
                    skip: self.skip_stages.unwrap_or(0),
                    lite: Some(lite),
                    dropout: DropoutConfig::new(self.dropout).init(),
                }
            }
        }
    }
}

/// The centre of cell `i` of `n` in `[−1, 1]` (in `f32`, the maps' precision).
fn cell_centre(i: usize, n: usize) -> f32 {
    (i as f32 + 0.5) / n as f32 * 2.0 - 1.0
}

/// The cells around each heat map's peak that [`KeypointNet::points`] decodes
/// (Chebyshev radius; 1, 2 and 3 measured alike on the held-out films).
pub const PEAK_RADIUS: usize = 1;

/// The expected position under the softmax of each map, in `[−1, 1]` of the map
/// (cell centres at `(j + ½) / w · 2 − 1`).
///
/// # Shapes
/// `[batch, points, h, w]` logits → `[batch, 2 · points]` (x, y of each point)
pub fn soft_argmax(logits: Tensor<4>) -> Tensor<2> {
    let [b, k, h, w] = logits.dims();
    let p = softmax(logits.reshape([b * k, h * w]), 1);
    let mut grid = Vec::with_capacity(h * w * 2);
    for i in 0..h {
        for j in 0..w {
            grid.push(cell_centre(j, w));
            grid.push(cell_centre(i, h));
        }
    }
    let grid = Tensor::<1>::from_floats(grid.as_slice(), &p.device()).reshape([h * w, 2]);
    p.matmul(grid).reshape([b, 2 * k])
}

/// Target heat maps for cross-entropy training: around each point a Gaussian of
/// `sigma` cells, normalised to sum 1 over the map (a point outside the map puts
/// its mass on the nearest border cells). Unlike the expectation loss, it punishes
/// mass on a second mode (a neighbouring fingertip) even where the expectation of
/// the two lands on the point.
///
/// # Shapes
/// `points`: `batch · 2 · points` values in `[−1, 1]` (x, y of each point) →
/// `batch · points · h · w` values, row-major
pub fn gaussian_maps(points: &[f32], [h, w]: [usize; 2], sigma: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(points.len() / 2 * h * w);
    let (sx, sy) = (sigma * 2.0 / w as f32, sigma * 2.0 / h as f32);
    for p in points.chunks_exact(2) {
        let at = out.len();
        for i in 0..h {
            let dy = (cell_centre(i, h) - p[1]) / sy;
            for j in 0..w {
                let dx = (cell_centre(j, w) - p[0]) / sx;
                out.push(-0.5 * (dx * dx + dy * dy));
            }
        }
        let map = &mut out[at..];
        let top = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        map.iter_mut().for_each(|v| *v = (*v - top).exp());
        let sum: f32 = map.iter().sum();
        map.iter_mut().for_each(|v| *v /= sum);
    }
    out
}

/// Each map's peak, refined by the expected position under the softmax of the cells
/// within `radius` cells of it (Chebyshev), in `[−1, 1]` of the map as
/// [`soft_argmax`] gives it. Where a map has two modes (the middle fingertip and a
/// neighbouring one), the expectation over the whole map lies between them, on no
/// finger; the peak's neighbourhood keeps the stronger.
///
/// # Shapes
/// `logits`: `points · h · w` values, row-major → `2 · points` (x, y of each point)
pub fn peak_soft_argmax(logits: &[f32], [h, w]: [usize; 2], radius: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(2 * logits.len() / (h * w).max(1));
    for map in logits.chunks_exact(h * w) {
        let peak = map
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        let (pi, pj) = (peak / w, peak % w);
        let top = map[peak];
        let (mut sum, mut sx, mut sy) = (0f64, 0f64, 0f64);
        for i in pi.saturating_sub(radius)..(pi + radius + 1).min(h) {
            for j in pj.saturating_sub(radius)..(pj + radius + 1).min(w) {
                let e = f64::from(map[i * w + j] - top).exp();
                sum += e;
                sx += e * f64::from(cell_centre(j, w));
                sy += e * f64::from(cell_centre(i, h));
            }
        }
        out.push((sx / sum) as f32);
        out.push((sy / sum) as f32);
    }
    out
}

impl KeypointNet {
    /// The heat-map locator's logits, one map per point (`None` for the VGG
    /// regressor, which has none).
    ///
    /// # Shapes
    /// `[batch, 1, height, width]` → `[batch, points, h, w]`
    pub fn heat_maps(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        let (lite, heat) = (self.lite.as_ref()?, self.heat.as_ref()?);
        let Some(mix) = &self.mix else {
            return Some(heat.forward(lite.forward(x)));
        };
        let (fine, coarse) = lite.forward_tapped(x, self.skip);
        let [b, c, h, w] = coarse.dims();
        let [_, _, fh, fw] = fine.dims();
        // Nearest-neighbour doubling, cut to the finer map (strided convolutions
        // round up, so the doubled map is never smaller).
        let up = coarse
            .reshape([b, c, h, 1, w, 1])
            .expand([b, c, h, 2, w, 2])
            .reshape([b, c, 2 * h, 2 * w])
            .slice([0..b, 0..c, 0..fh, 0..fw]);
        let joined = Tensor::cat(vec![fine, up], 1);
        Some(heat.forward(burn::tensor::activation::relu(mix.forward(joined))))
    }

    /// Key-point coordinates in `[−1, 1]` (not clamped): fingertip x, y, thumb x, y,
    /// capitate x, y (a refining net: its point's x, y).
    ///
    /// # Shapes
    /// `[batch, 1, height, width]` → `[batch, 2 · points]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        if self.lite.is_some() {
            return soft_argmax(self.heat_maps(x).expect("a locator has heat maps"));
        }
        let blocks = self
            .blocks
            .as_ref()
            .expect("a key-point net has a backbone");
        let x = blocks.forward(x);
        let mut x: Tensor<2> = x.flatten(1, 3);
        for fc in &self.fc {
            x = self.dropout.forward(elu(fc.forward(x)));
        }
        self.out
            .as_ref()
            .expect("a VGG key-point net has outputs")
            .forward(x)
    }

    /// The key points as the pipeline reads them, in `[−1, 1]` as
    /// [`KeypointNet::forward`] gives them: a heat-map locator's by each map's peak
    /// ([`peak_soft_argmax`] within [`PEAK_RADIUS`]; training's expectation over the
    /// whole map lies between two fingers where a map has two modes), the
    /// regressor's outputs as they are.
    ///
    /// # Shapes
    /// `[batch, 1, height, width]` → `batch · 2 · points` values, row-major
    pub fn points(&self, x: Tensor<4>) -> Vec<f32> {
        match self.heat_maps(x.clone()) {
            Some(maps) => {
                let [_, _, h, w] = maps.dims();
                peak_soft_argmax(&floats(maps), [h, w], PEAK_RADIUS)
            }
            None => floats(self.forward(x)),
        }
    }

    /// Whether this is the heat-map locator on an EfficientNet backbone.
    pub fn is_heatmap(&self) -> bool {
        self.lite.is_some()
    }

    /// Sets the backbone's batch-norm momentum (the VGG regressor has none to set).
    pub fn set_bn_momentum(&mut self, momentum: f64) {
        if let Some(l) = &mut self.lite {
            l.set_bn_momentum(momentum);
        }
    }

    /// Loads ImageNet weights into the EfficientNet-Lite backbone (see
    /// [`EfficientNetLite::load_pretrained`]); the heat-map convolution keeps its
    /// initialisation. An error for the VGG regressor.
    pub fn load_pretrained(mut self, path: &std::path::Path) -> Result<Self, WeightsError> {
        EfficientNetLite::load_into(&mut self.lite, path, "this key-point net")?;
        Ok(self)
    }
}
