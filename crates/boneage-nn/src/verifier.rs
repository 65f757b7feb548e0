//! The registration verifier: a small VGG network that looks at the registered,
//! contrast-normalised hand and says whether the key points that registered it were
//! right — the middle fingertip on the middle finger, the thumb on the thumb's side,
//! the capitate on the capitate — or wrong. One logit; its sigmoid is the score.
//!
//! It reads the registered canvas at half the CPU preset's size (200 × 260), where a
//! capitate moved by a tenth of the hand shifts the carpus by about 19 pixels. It is
//! trained on right registrations (each reviewed point moved a little) against
//! registrations made wrong the ways the front end gets them wrong (`boneage train
//! verifier`), and is evidence independent of the key points it judges: it never sees
//! them, only the hand they register.

use boneage_core::GrayImage;
use boneage_core::ops::resize_area;
use boneage_core::registration::{Canvas, Rect, crop as crop_canvas};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use std::path::Path;

use boneage_core::NetKind;

use crate::blocks::{VggStack, elu, linear_stack};
use crate::pipeline::{floats, manifest_for, pixels_tensor};
use crate::weights::{self, WeightsError};

/// Verifier settings.
#[derive(Config, Debug)]
pub struct VerifierNetConfig {
    /// Input height: half the CPU canvas's 520.
    #[config(default = 260)]
    pub height: usize,
    /// Input width: half the CPU canvas's 400.
    #[config(default = 200)]
    pub width: usize,
    /// VGG block widths.
    #[config(default = "vec![8, 16, 32, 64, 128]")]
    pub features: Vec<usize>,
    /// Hidden fully connected widths, then the one logit.
    #[config(default = "vec![64]")]
    pub hidden: Vec<usize>,
    /// Dropout before each fully connected layer.
    #[config(default = 0.3)]
    pub dropout: f64,
    /// The part of the registered canvas it reads, `[x, y, width, height]` in pixels of
    /// the CPU canvas (scaled to other canvases), instead of the whole canvas (the
    /// capitate check reads the carpus).
    pub crop: Option<[usize; 4]>,
}

/// The verifier network.
#[derive(Module, Debug)]
pub struct VerifierNet {
    blocks: VggStack,
    fc: Vec<Linear>,
    out: Linear,
    dropout: Dropout,
}

impl VerifierNetConfig {
    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> VerifierNet {
        let (blocks, channels, [h, w]) =
            VggStack::new(&self.features, [self.height, self.width], device);
        let (fc, n) = linear_stack(channels * h * w, &self.hidden, device);
        VerifierNet {
            blocks,
            fc,
            out: LinearConfig::new(n, 1).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl VerifierNet {
    /// The logit that the registration is right.
    ///
    /// # Shapes
    /// `[batch, 1, height, width]` → `[batch, 1]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let mut x: Tensor<2> = self.blocks.forward(x).flatten(1, 3);
        for fc in &self.fc {
            x = elu(fc.forward(self.dropout.forward(x)));
        }
        self.out.forward(self.dropout.forward(x))
    }

    /// Sets the batch norms' momentum.
    pub fn set_bn_momentum(&mut self, momentum: f64) {
        self.blocks.set_bn_momentum(momentum);
    }

    /// The scores (sigmoid of the logits) of a batch, in `[0, 1]`.
    pub fn scores(&self, x: Tensor<4>) -> Vec<f32> {
        floats(sigmoid(self.forward(x)))
    }
}

/// The least score a registration needs to pass: the sigmoid's middle, where the
/// training's right and wrong examples (as many of each) are equally likely.
pub const VERIFIER_LIMIT: f64 = 0.5;

/// A trained verifier, ready to score registered hands: one network, or several
/// trained alike with other seeds whose scores are averaged.
#[derive(Clone)]
pub struct Verifier {
    nets: Vec<VerifierNet>,
    input: [usize; 2],
    crop: Option<[usize; 4]>,
    device: Device,
}

impl Verifier {
    /// Loads `weights` (with its manifest beside it) onto `device`, and the members
    /// numbered beside it — for `verifier.safetensors`, `verifier-2.safetensors`,
    /// `verifier-3.safetensors` and so on, up to the first number missing — each with
    /// its manifest. Every member must read the same input (size and crop); its
    /// manifest is named where one does not.
    pub fn load(weights_path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let mut verifier = Self::load_one(weights_path, device)?;
        for path in members_beside(weights_path).into_iter().skip(1) {
            let member = Self::load_one(&path, device)?;
            if (member.input, member.crop) != (verifier.input, verifier.crop) {
                return Err(WeightsError::Mismatch {
                    path: weights::manifest_path(&path),
                    found: format!("input {:?}, crop {:?}", member.input, member.crop),
                    expected: format!(
                        "the input of {} (input {:?}, crop {:?}): members of one verifier \
                         read the same pixels",
                        weights_path.display(),
                        verifier.input,
                        verifier.crop
                    ),
                });
            }
            verifier.nets.extend(member.nets);
        }
        Ok(verifier)
    }

    /// One network from `weights_path`.
    fn load_one(weights_path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let (manifest, config): (_, VerifierNetConfig) =
            manifest_for(weights_path, NetKind::Verifier)?;
        let net = weights::load(config.init(device), weights_path, &manifest)?.valid();
        Ok(Self {
            nets: vec![net],
            input: manifest.input,
            crop: config.crop,
            device: device.clone(),
        })
    }

    /// How many networks score each canvas (their scores averaged).
    pub fn members(&self) -> usize {
        self.nets.len()
    }

    /// The part of the canvas it reads (none: all of it), as [`verifier_pixels`] takes it.
    pub fn crop(&self) -> Option<[usize; 4]> {
        self.crop
    }

    /// The score, 0 (wrong) to 1 (right), of a registered canvas (pixels in `[0, 1]`):
    /// the mean of its members' scores.
    pub fn score(&self, registered: &GrayImage) -> f64 {
        let pixels = verifier_pixels(registered, self.input, self.crop);
        let x = pixels_tensor(&pixels, self.input, &self.device);
        let sum: f64 = self
            .nets
            .iter()
            .map(|net| net.scores(x.clone())[0] as f64)
            .sum();
        sum / self.nets.len() as f64
    }
}

/// The files of a verifier whose first member is `first` (`NAME.safetensors`): it,
/// then `NAME-2.safetensors`, `NAME-3.safetensors`… while they exist.
pub fn members_beside(first: &Path) -> Vec<std::path::PathBuf> {
    let mut paths = vec![first.to_path_buf()];
    let (Some(stem), Some(dir)) = (first.file_stem(), first.parent()) else {
        return paths;
    };
    for n in 2.. {
        let next = dir.join(format!("{}-{n}.safetensors", stem.to_string_lossy()));
        if !next.is_file() {
            break;
        }
        paths.push(next);
    }
    paths
}

/// The verifier's input from a registered canvas (pixels in `[0, 1]`): the canvas, or
/// its `crop` (`[x, y, width, height]` in pixels of the CPU canvas, scaled to the
/// canvas's width and clipped to it), averaged down to `[h, w]`, as 8-bit pixels.
/// Training and the pipeline both make it this way.
pub fn verifier_pixels(
    registered: &GrayImage,
    [h, w]: [usize; 2],
    crop: Option<[usize; 4]>,
) -> Vec<u8> {
    match crop {
        None => resize_area(registered, w, h).to_u8(),
        Some(rect) => {
            let s = registered.width() as f64 / Canvas::CPU.width as f64;
            let [x, y, cw, ch] = rect.map(|v| (v as f64 * s).round() as usize);
            let part = crop_canvas(registered, Rect { x, y, w: cw, h: ch });
            resize_area(&part, w, h).to_u8()
        }
    }
}

/// The capitate check's part of the CPU canvas: a square 192 px wide centred on the
/// capitate's target — the carpus, the metacarpal bases and the distal radius, where a
/// capitate moved by a tenth of the hand shifts the carpus by about 38 pixels.
pub fn capitate_crop() -> [usize; 4] {
    let side = 192;
    let c = Canvas::CPU.capitate_target();
    let x = (c.x - side as f64 / 2.0).round().max(0.0) as usize;
    let y = (c.y - side as f64 / 2.0).round().max(0.0) as usize;
    [x, y, side, side]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_logit_per_image() {
        let device = Device::flex();
        let net = VerifierNetConfig::new().init(&device);
        let x = Tensor::<4>::zeros([2, 1, 260, 200], &device);
        assert_eq!(net.forward(x.clone()).dims(), [2, 1]);
        let s = net.scores(x);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn the_input_is_the_canvas_at_half_size() {
        let img = GrayImage::from_vec(400, 520, vec![0.5; 400 * 520]).unwrap();
        let px = verifier_pixels(&img, [260, 200], None);
        assert_eq!(px.len(), 260 * 200);
        assert!(px.iter().all(|&p| (127..=128).contains(&p)));
    }

    #[test]
    fn the_capitate_check_reads_the_carpus_at_full_size() {
        let crop = capitate_crop();
        assert_eq!(crop, [104, 304, 192, 192]);
        // Bright only inside the crop's top-left pixel: it survives at full size.
        let mut img = GrayImage::from_vec(400, 520, vec![0.0; 400 * 520]).unwrap();
        img.set(104, 304, 1.0);
        let px = verifier_pixels(&img, [192, 192], Some(crop));
        assert_eq!(px.len(), 192 * 192);
        assert_eq!(px[0], 255);
        assert!(px[1..].iter().all(|&p| p == 0));
    }
}
