//! The paper's front end with trained weights: segment (U-Net) → normalize →
//! key points (from the mask's shape, checked by the key-point net) → register, with
//! the refusals that stop a film the pipeline has no confidence in.

use std::path::Path;

use boneage_core::geometry::Affine;
use boneage_core::hand_template::{Fit, HandTemplate};
use boneage_core::image::Mask;
use boneage_core::ops::{Connectivity, fill_holes, largest_component, warp_mask};
use boneage_core::{GrayImage, NetKind};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use boneage_core::keypoints::KeyPoints;

use crate::inputs::{keypoints_from_input, letterbox, window_pixels};
use crate::keypoint_net::{KeypointNet, KeypointNetConfig};
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
pub(crate) fn manifest_for<C: serde::de::DeserializeOwned>(
    weights_path: &Path,
    net: NetKind,
) -> Result<(weights::Manifest, C), WeightsError> {
    let manifest = weights::read_manifest(weights_path)?;
    if manifest.net != net {
        return Err(WeightsError::Mismatch {
            path: weights::manifest_path(weights_path),
            found: manifest.net.describe().to_string(),
            expected: format!("{} ({net})", net.describe()),
        });
    }
    let config =
        serde_json::from_value(manifest.config.clone()).map_err(|e| WeightsError::Manifest {
            path: weights::manifest_path(weights_path),
            detail: format!("not a {} config: {e}", net.describe()),
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
    /// Loads `weights` (with its manifest beside it), which must hold a key-point
    /// net, onto `device`.
    pub fn load(weights_path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let (manifest, config): (_, KeypointNetConfig) =
            manifest_for(weights_path, NetKind::Keypoints)?;
        let net = weights::load(config.init(device), weights_path, &manifest)?.valid();
        Ok(Self {
            net,
            input: manifest.input,
            device: device.clone(),
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
    /// Loads `weights` (with its manifest beside it), which must hold a U-Net, onto
    /// `device`.
    pub fn load(weights_path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let (manifest, config): (_, UNetConfig) = manifest_for(weights_path, NetKind::Unet)?;
        let net = weights::load(config.init(device), weights_path, &manifest)?.valid();
        Ok(Self {
            net,
            input: manifest.input,
            device: device.clone(),
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

/// Why a radiograph could not be preprocessed with confidence.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// The U-Net found no hand, or too little of one.
    #[error("no hand found: the mask covers {percent:.1} % of the image (at least 5 % expected)")]
    NoHand {
        /// Mask area in percent of the image.
        percent: f64,
    },
    /// A key point lies off the hand.
    #[error("the {point} key point lies {distance:.0} px outside the hand mask")]
    KeypointOffHand {
        /// Which point.
        point: &'static str,
        /// Distance to the mask in image pixels.
        distance: f64,
    },
    /// The key points do not make a plausible hand.
    #[error("implausible key points: {0}")]
    Implausible(String),
    /// The registered hand does not sit where registered hands sit
    /// ([`boneage_core::hand_template`]).
    #[error("wrong registration: {0}")]
    WrongRegistration(boneage_core::hand_template::WrongFit),
    /// Registration failed.
    #[error(transparent)]
    Register(#[from] boneage_core::Error),
}

/// One radiograph through the paper's preprocessing.
pub struct Preprocessed {
    /// Hand mask at the image's size.
    pub mask: Mask,
    /// Middle fingertip, thumb tip and capitate, image pixels.
    pub keypoints: KeyPoints,
    /// How the image maps onto the canvas.
    pub registration: boneage_core::registration::Registration,
    /// The masked, contrast-normalised hand on the canvas.
    pub registered: GrayImage,
    /// How the registered hand fits the mean registered hand (when the models
    /// have a template).
    pub fit: Option<Fit>,
    /// Seconds spent in each stage: segment, normalize, key points, register.
    pub seconds: [f64; 4],
}

/// Where the pipeline's key points come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeypointSource {
    /// The hand mask's geometry ([`boneage_core::hand_geometry`]), checked against the
    /// key-point net: on the held-out films it registers more of them correctly than
    /// the net alone (see `models/README.md`).
    MaskGeometry,
    /// The key-point net alone (the paper's way).
    Net,
}

/// Segment → normalize → key points → register, with trained weights.
pub struct Pipeline {
    segmenter: Segmenter,
    locator: Locator,
    /// The registration canvas.
    pub canvas: boneage_core::registration::Canvas,
    /// Where the key points come from.
    pub source: KeypointSource,
    /// The check after registration (`hand_template.json` beside the weights), or
    /// none.
    pub template: Option<HandTemplate>,
}

/// Key points from a full-size mask's geometry, measured at a quarter of the size
/// (the scale the labels were made at).
pub fn geometry_keypoints(mask: &Mask) -> Option<KeyPoints> {
    mask_geometry(mask).map(|g| g.keypoints)
}

/// A full-size mask's geometry (key points, digit tips, palm), measured at a quarter
/// of the size, in the mask's pixels.
pub fn mask_geometry(mask: &Mask) -> Option<boneage_core::hand_geometry::MaskGeometry> {
    let (w, h) = (mask.width(), mask.height());
    let (sw, sh) = (w.div_ceil(4), h.div_ceil(4));
    let small = Mask::threshold(
        &boneage_core::ops::resize_area(&mask.to_image(), sw, sh),
        0.5,
    );
    boneage_core::hand_geometry::geometry_for_image(
        &small,
        w,
        h,
        &boneage_core::hand_geometry::GeometryParams::default(),
    )
}

/// Why two sets of key points for one hand disagree, if they do: the thumb on
/// different sides, or a fingertip or capitate apart by more than half the
/// fingertip–capitate span.
pub fn disagreement(a: &KeyPoints, b: &KeyPoints) -> Option<String> {
    if a.thumb_on_right() != b.thumb_on_right() {
        return Some(
            "the mask's shape and the key-point net put the thumb on different sides".into(),
        );
    }
    let span = a.fingertip.dist(a.capitate).max(1.0);
    for (name, p, q) in [
        ("fingertip", a.fingertip, b.fingertip),
        ("capitate", a.capitate, b.capitate),
    ] {
        let d = p.dist(q) / span;
        if d > 0.5 {
            return Some(format!(
                "the mask's shape and the key-point net place the {name} {:.0} % of the hand's length apart",
                100.0 * d
            ));
        }
    }
    None
}

impl Pipeline {
    /// Loads `unet.safetensors` and `keypoints.safetensors` (with their manifests)
    /// from `dir` onto `device`, registering onto `canvas`, and the check after
    /// registration (`hand_template.png` and `.json`) when `dir` has it.
    pub fn load(
        dir: &Path,
        canvas: boneage_core::registration::Canvas,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            template: HandTemplate::load(dir).map_err(|e| WeightsError::Template(e.to_string()))?,
            ..Self::load_without_check(dir, canvas, device)?
        })
    }

    /// [`Pipeline::load`] without the check after registration, whatever `dir` holds
    /// (to build a new template).
    pub fn load_without_check(
        dir: &Path,
        canvas: boneage_core::registration::Canvas,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        Ok(Self {
            segmenter: Segmenter::load(&dir.join("unet.safetensors"), device)?,
            locator: Locator::load(&dir.join("keypoints.safetensors"), device)?,
            canvas,
            source: KeypointSource::MaskGeometry,
            template: None,
        })
    }

    /// The hand mask (see [`Segmenter::segment`]).
    pub fn segment(&self, img: &GrayImage) -> Mask {
        self.segmenter.segment(img)
    }

    /// The key points (see [`Locator::locate`]).
    pub fn locate(&self, img: &GrayImage) -> KeyPoints {
        self.locator.locate(img)
    }

    /// Runs every stage, refusing results it has no confidence in, the check after
    /// registration last.
    pub fn run(&self, img: &GrayImage) -> Result<Preprocessed, PreprocessError> {
        let mut p = self.run_unchecked(img)?;
        let t = std::time::Instant::now();
        p.fit = match self.check(&p.mask, &p.registration) {
            Some((_, Some(why))) => return Err(PreprocessError::WrongRegistration(why)),
            Some((fit, None)) => Some(fit),
            None => None,
        };
        p.seconds[3] += t.elapsed().as_secs_f64();
        Ok(p)
    }

    /// [`Pipeline::run`] without the check after registration (to measure it).
    pub fn run_unchecked(&self, img: &GrayImage) -> Result<Preprocessed, PreprocessError> {
        use boneage_core::ops::{NormalizeConfig, distance_transform_sq, normalize_hand};
        use std::time::Instant;
        let t = Instant::now();
        let mask = self.segmenter.segment(img);
        let s_seg = t.elapsed().as_secs_f64();
        let percent = 100.0 * mask.count() as f64 / (img.width() * img.height()).max(1) as f64;
        if percent < 5.0 {
            return Err(PreprocessError::NoHand { percent });
        }
        let t = Instant::now();
        let normalized = normalize_hand(img, &mask, &NormalizeConfig::default());
        let s_norm = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let net = self.locator.locate(img);
        let k = match self.source {
            KeypointSource::Net => net,
            KeypointSource::MaskGeometry => {
                let g = geometry_keypoints(&mask).ok_or_else(|| {
                    PreprocessError::Implausible("the mask shows no finger".into())
                })?;
                if let Some(why) = disagreement(&g, &net) {
                    return Err(PreprocessError::Implausible(why));
                }
                g
            }
        };
        let s_kp = t.elapsed().as_secs_f64();
        // Each point must lie on the hand (a tenth of the image height of slack: the
        // tips sit on the skin line).
        let d2 = distance_transform_sq(&mask);
        let slack = 0.1 * img.height() as f64;
        for (point, p) in [
            ("fingertip", k.fingertip),
            ("thumb", k.thumb),
            ("capitate", k.capitate),
        ] {
            let (x, y) = (p.x.floor(), p.y.floor());
            let inside =
                x >= 0.0 && y >= 0.0 && (x as usize) < img.width() && (y as usize) < img.height();
            let distance = if inside {
                f64::from(d2[y as usize * img.width() + x as usize]).sqrt()
            } else {
                f64::INFINITY
            };
            if distance > slack {
                return Err(PreprocessError::KeypointOffHand { point, distance });
            }
        }
        // The fingertip–capitate span of a hand on a film: a fifth to the whole of
        // the image's longer side.
        let span = k.fingertip.dist(k.capitate) / img.width().max(img.height()) as f64;
        if !(0.2..=1.0).contains(&span) {
            return Err(PreprocessError::Implausible(format!(
                "fingertip and capitate are {:.0} % of the image apart",
                100.0 * span
            )));
        }
        let t = Instant::now();
        let registration = boneage_core::registration::register(&k, &self.canvas)?;
        let registered = registration.warp(&normalized, &self.canvas);
        let s_reg = t.elapsed().as_secs_f64();
        Ok(Preprocessed {
            mask,
            keypoints: k,
            registration,
            registered,
            fit: None,
            seconds: [s_seg, s_norm, s_kp, s_reg],
        })
    }

    /// The check after registration of `mask` registered by `registration`: how the
    /// registered hand fits the template and why it fails, if it does; `None` without
    /// a template.
    pub fn check(
        &self,
        mask: &Mask,
        registration: &boneage_core::registration::Registration,
    ) -> Option<(Fit, Option<boneage_core::hand_template::WrongFit>)> {
        let template = self.template.as_ref()?;
        let fit = template.fit(&registration.warp_mask(mask, &self.canvas));
        Some((fit, template.judge(&fit)))
    }
}
