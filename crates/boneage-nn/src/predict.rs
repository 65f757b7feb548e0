//! Running trained networks on radiographs.

use std::path::Path;

use boneage_core::GrayImage;
use boneage_core::geometry::Affine;
use boneage_core::image::Mask;
use boneage_core::ops::{Connectivity, fill_holes, largest_component, warp_mask};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use boneage_core::keypoints::KeyPoints;

use crate::keypoints::{KeypointNet, KeypointNetConfig};
use crate::prepare::{keypoints_from_input, letterbox, window_pixels};
use crate::unet::{UNet, UNetConfig};
use crate::weights::{self, WeightsError};

/// A trained U-Net with its input size.
pub struct Segmenter {
    net: UNet,
    input: [usize; 2],
    device: Device,
}

/// Reads the manifest beside `weights_path`, checks that it holds `net` and parses
/// its network config.
fn manifest_for<C: serde::de::DeserializeOwned>(
    weights_path: &Path,
    net: &str,
    what: &str,
) -> Result<(weights::Manifest, C), WeightsError> {
    let manifest = weights::read_manifest(weights_path)?;
    if manifest.net != net {
        return Err(WeightsError::Mismatch {
            path: weights::manifest_path(weights_path),
            found: format!("a {} net", manifest.net),
            expected: format!("{what} ({net})"),
        });
    }
    let config =
        serde_json::from_value(manifest.config.clone()).map_err(|e| WeightsError::Manifest {
            path: weights::manifest_path(weights_path),
            detail: format!("not a {what} config: {e}"),
        })?;
    Ok((manifest, config))
}

/// The network input of a radiograph: letterboxed to `[h, w]`, windowed, scaled to
/// `[−1, 1]`; with the image → input map.
fn input_tensor(img: &GrayImage, [h, w]: [usize; 2], device: &Device) -> (Tensor<4>, Affine) {
    let (small, map) = letterbox(img, w, h);
    let pixels: Vec<f32> = window_pixels(&small)
        .iter()
        .map(|&p| p as f32 / 127.5 - 1.0)
        .collect();
    let x = Tensor::<1>::from_floats(pixels.as_slice(), device).reshape([1, 1, h, w]);
    (x, map)
}

/// A trained key-point net with its input size.
pub struct Locator {
    net: KeypointNet,
    input: [usize; 2],
    device: Device,
}

impl Locator {
    /// Loads `weights` (with its manifest beside it), which must hold a key-point net.
    pub fn load(weights_path: &Path) -> Result<Self, WeightsError> {
        let (manifest, config): (_, KeypointNetConfig) =
            manifest_for(weights_path, "keypoints", "a key-point net")?;
        let device = Device::flex();
        let net = weights::load(config.init(&device), weights_path, &manifest)?.valid();
        Ok(Self {
            net,
            input: manifest.input,
            device,
        })
    }

    /// The three key points of a radiograph (pixels in `[0, 1]`), in its own pixels.
    pub fn locate(&self, img: &GrayImage) -> KeyPoints {
        let (x, map) = input_tensor(img, self.input, &self.device);
        let out = self
            .net
            .forward(x)
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data");
        let mut t = [0f32; 6];
        t.copy_from_slice(&out[..6]);
        keypoints_from_input(&t, &map, self.input)
    }
}

impl Segmenter {
    /// Loads `weights` (with its manifest beside it), which must hold a U-Net.
    pub fn load(weights_path: &Path) -> Result<Self, WeightsError> {
        let (manifest, config): (_, UNetConfig) = manifest_for(weights_path, "unet", "a U-Net")?;
        let device = Device::flex();
        let net = weights::load(config.init(&device), weights_path, &manifest)?.valid();
        Ok(Self {
            net,
            input: manifest.input,
            device,
        })
    }

    /// The hand mask of a radiograph (pixels in `[0, 1]`) at its own size, post-processed
    /// as the paper does: the largest connected component, holes filled.
    pub fn segment(&self, img: &GrayImage) -> Mask {
        let [h, w] = self.input;
        let (x, map) = input_tensor(img, self.input, &self.device);
        let prob = sigmoid(self.net.forward(x))
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data");
        let m = Mask::from_vec(w, h, prob.iter().map(|&p| (p > 0.5) as u8).collect())
            .expect("size matches");
        // The input's mask back onto the radiograph: image -> input is `map`, so the
        // warp (output -> input) is `map` itself.
        let full = warp_mask(&m, &map, img.width(), img.height());
        fill_holes(&largest_component(&full, Connectivity::Eight))
    }
}
