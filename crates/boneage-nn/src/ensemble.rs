//! Bone age from registered region crops: the trained bone-age models of a folder,
//! each run on its region, combined into one estimate with the spread of its members
//! as the uncertainty (the paper's linear ensembles).

use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use boneage_core::calibration::{Calibrated, Calibration, Tta};
use boneage_core::geometry::{Affine, Point};
use boneage_core::metrics::{mean, sd};
use boneage_core::ops::{resize_area, warp_affine};
use boneage_core::registration::{Canvas, Region, crop};
use boneage_core::{GrayImage, Head, ModelKey, NetKind, Sex, View};
use burn::prelude::*;
use serde::Serialize;

use crate::age::{AgeHead, AgeNet, AgeNetConfig};
use crate::data::about_centre;
use crate::inputs::window_pixels;
use crate::pipeline::manifest_for;
use crate::weights::{self, Manifest, WeightsError};

/// Test-time augmentation: the views a crop is read in, (zoom, rotation in degrees)
/// about its centre, the first being the crop itself; the estimate is their mean.
pub const TTA_VIEWS: [(f64, f64); 5] = [
    (1.0, 0.0),
    (1.05, 0.0),
    (0.95, 0.0),
    (1.0, 5.0),
    (1.0, -5.0),
];

/// The views the member `key` reads its crop in when `tta` says which members read
/// augmented views: [`TTA_VIEWS`] or the crop alone.
pub fn views_for(tta: &Tta, key: ModelKey) -> &'static [(f64, f64)] {
    if tta.covers(&key.to_string()) {
        &TTA_VIEWS
    } else {
        &TTA_VIEWS[..1]
    }
}

/// One trained bone-age model.
pub struct AgeModel {
    /// What it is.
    pub key: ModelKey,
    /// Its weights file.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    net: AgeNet,
    device: Device,
}

fn bad_manifest(path: &Path, detail: impl Into<String>) -> WeightsError {
    WeightsError::Manifest {
        path: weights::manifest_path(path),
        detail: detail.into(),
    }
}

impl AgeModel {
    /// Loads a bone-age model (weights with the manifest beside them) onto `device`.
    pub fn load(path: &Path, device: &Device) -> Result<Self, WeightsError> {
        let (manifest, config): (_, AgeNetConfig) = manifest_for(path, NetKind::Age)?;
        let region = match manifest.region {
            Some(View::Region(r)) => r,
            other => {
                return Err(bad_manifest(
                    path,
                    format!(
                        "region {:?}: the ensemble needs a registered region A, B, C or D",
                        other.map(View::code)
                    ),
                ));
            }
        };
        let cohort = manifest
            .sex
            .ok_or_else(|| bad_manifest(path, "no cohort (sex): M, F or mixed"))?;
        let head = match config.head {
            AgeHead::Regression => Head::Regression,
            AgeHead::Classification { .. } => Head::Classification,
        };
        let variant = ModelKey::variant_of(manifest.variant).map_err(|e| bad_manifest(path, e))?;
        let net = weights::load(config.init(device), path, &manifest)?.valid();
        Ok(Self {
            key: ModelKey {
                region,
                head,
                cohort,
                variant,
            },
            path: path.to_path_buf(),
            manifest,
            net,
            device: device.clone(),
        })
    }

    /// The crop it reads: its region, from the crops of its canvas.
    ///
    /// # Panics
    /// When `crops` holds none of its canvas ([`AgeModels::canvases`] says which a
    /// folder's models need), or none of its region.
    pub fn crop_in<'a>(&self, crops: &'a [RegionCrops]) -> &'a GrayImage {
        let c = self.canvas();
        crops
            .iter()
            .find(|r| r.canvas == c)
            .and_then(|r| r.get(self.key.region))
            .unwrap_or_else(|| {
                panic!(
                    "no region {} crop of the {}x{} canvas the {} model reads",
                    self.key.region, c.width, c.height, self.key
                )
            })
    }

    /// The registered canvas its region was cropped from (the CPU canvas, 400×520,
    /// when the manifest does not say).
    pub fn canvas(&self) -> Canvas {
        self.manifest.canvas.unwrap_or(Canvas::CPU)
    }

    /// The bone age (months) of one region crop (pixels in `[0, 1]`, as cropped from
    /// the registered canvas) for a patient of `sex`.
    pub fn predict(&self, crop: &GrayImage, sex: Sex) -> f64 {
        self.predict_views(crop, sex, &TTA_VIEWS[..1])
    }

    /// As [`AgeModel::predict`], the mean over `views` of the crop (zoom, rotation
    /// in degrees, about the centre; [`TTA_VIEWS`] for test-time augmentation), read
    /// in one batch.
    pub fn predict_views(&self, crop: &GrayImage, sex: Sex, views: &[(f64, f64)]) -> f64 {
        let [h, w] = self.manifest.input;
        // The same steps as training on `boneage preprocess` crops: 8-bit crop,
        // area resampling, contrast window, p / 127.5 − 1.
        let q = GrayImage::from_vec(
            crop.width(),
            crop.height(),
            crop.to_u8().iter().map(|&v| f32::from(v) / 255.0).collect(),
        )
        .expect("same size");
        let window = window_pixels(&resize_area(&q, w, h));
        let img = GrayImage::from_vec(w, h, window.iter().map(|&p| f32::from(p)).collect())
            .expect("same size");
        let mut pixels: Vec<f32> = Vec::with_capacity(views.len() * w * h);
        for &(zoom, degrees) in views {
            let in_to_out = about_centre(w, h, zoom, degrees.to_radians(), false, Point::default());
            let view = if in_to_out == Affine::IDENTITY {
                img.clone()
            } else {
                warp_affine(&img, &in_to_out.inverse().expect("zoom > 0"), w, h)
            };
            pixels.extend(view.as_slice().iter().map(|&p| p / 127.5 - 1.0));
        }
        let n = views.len();
        let x = Tensor::<1>::from_floats(pixels.as_slice(), &self.device).reshape([n, 1, h, w]);
        let male = Tensor::<1>::from_floats(
            vec![f32::from(u8::from(sex == Sex::Male)); n].as_slice(),
            &self.device,
        )
        .reshape([n, 1]);
        let v = crate::pipeline::floats(self.net.forward(x, Some(male)).months);
        v.iter().map(|&m| f64::from(m)).sum::<f64>() / n as f64
    }
}

/// The region crops of a registered hand, cut from one canvas.
pub struct RegionCrops {
    /// The registered canvas they were cut from.
    pub canvas: Canvas,
    /// A, B, C, D in that order ([`Region::ALL`]); `None` for a region no model
    /// reads, where the crops come from a folder that lacks it.
    pub crops: [Option<GrayImage>; 4],
}

impl RegionCrops {
    /// Crops every region from a hand registered onto `canvas`.
    pub fn from_canvas(registered: &GrayImage, canvas: &Canvas) -> Self {
        Self {
            canvas: *canvas,
            crops: Region::ALL.map(|r| Some(crop(registered, canvas.region(r)))),
        }
    }

    /// The crop of `region`, when there is one.
    pub fn get(&self, region: Region) -> Option<&GrayImage> {
        self.crops[region as usize].as_ref()
    }
}

/// One model's estimate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct MemberEstimate {
    /// Which model.
    #[serde(flatten)]
    pub key: ModelKey,
    /// Its bone age, months.
    pub months: f64,
}

/// The ensemble's answer.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Estimate {
    /// The bone age, months: the fitted ensemble's when the models come with a
    /// calibration, else the mean of the members.
    pub months: f64,
    /// Mean of the members, months.
    pub mean_months: f64,
    /// The fitted ensemble and its interval, when the models come with a
    /// calibration (`calibration.json`).
    pub calibrated: Option<Calibrated>,
    /// Standard deviation across the members, months (the uncertainty).
    pub spread: f64,
    /// Mean of each region's members: A, B, C, D (None where a region has none).
    pub regions: [Option<f64>; 4],
    /// Every member.
    pub members: Vec<MemberEstimate>,
}

/// The paper's linear ensemble: the plain mean of the members (all regions, both
/// heads), with their standard deviation as the spread. `None` without members.
pub fn combine(members: Vec<MemberEstimate>) -> Option<Estimate> {
    let all: Vec<f64> = members.iter().map(|m| m.months).collect();
    let months = mean(&all)?;
    let spread = sd(&all);
    let regions = Region::ALL.map(|r| {
        mean(
            &members
                .iter()
                .filter(|m| m.key.region == r)
                .map(|m| m.months)
                .collect::<Vec<_>>(),
        )
    });
    Some(Estimate {
        months,
        mean_months: months,
        calibrated: None,
        spread,
        regions,
        members,
    })
}

/// The bone-age models of a folder.
pub struct AgeModels {
    /// Every model, sorted by key.
    pub models: Vec<AgeModel>,
    /// The folder.
    pub dir: PathBuf,
    /// The fitted ensemble and intervals of these models (`calibration.json` in the
    /// folder, written by `boneage evaluate --cv`), when there is one.
    pub calibration: Option<Calibration>,
}

/// The name of the calibration file in a models folder.
pub const CALIBRATION_FILE: &str = "calibration.json";

/// Reads `dir/calibration.json` when it exists and checks that it has a fit for
/// `sex` (both when `None`) whose members are all among `models`.
fn read_calibration(
    dir: &Path,
    models: &[AgeModel],
    sex: Option<Sex>,
) -> Result<Option<Calibration>, WeightsError> {
    let path = dir.join(CALIBRATION_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let bad = |detail: String| WeightsError::Manifest {
        path: path.clone(),
        detail,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| WeightsError::Io {
        path: path.clone(),
        cause: e,
    })?;
    let cal: Calibration = serde_json::from_str(&text).map_err(|e| {
        bad(format!(
            "not a calibration (boneage evaluate --cv writes one): {e}"
        ))
    })?;
    cal.check(sex, |m| models.iter().any(|x| x.key.to_string() == m))
        .map_err(|e| bad(format!("{e} (models in {})", dir.display())))?;
    Ok(Some(cal))
}

impl AgeModels {
    /// Loads every `*.safetensors` in `dir` (and every `*/model.safetensors`, the
    /// weights of `boneage train` run folders) whose manifest says it is a bone-age
    /// net. Fails when there is none, or when one cannot be loaded.
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self, WeightsError> {
        Self::load_dir_for(dir, None, device)
    }

    /// As [`AgeModels::load_dir`], keeping only the models that cover `sex` (its
    /// sex's and the mixed ones) when it is given: less to load for one patient.
    pub fn load_dir_for(
        dir: &Path,
        sex: Option<Sex>,
        device: &Device,
    ) -> Result<Self, WeightsError> {
        let wanted = |m: &Manifest| match (sex, m.sex) {
            (None, _) => true,
            (Some(s), Some(c)) => c.covers(s),
            (Some(_), None) => false,
        };
        let io = |e| WeightsError::Io {
            path: dir.to_path_buf(),
            cause: e,
        };
        let mut models = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let mut path = entry.map_err(io)?.path();
            // A training run's folder holds its weights as `model.safetensors`.
            if path.is_dir() {
                path = path.join("model.safetensors");
            }
            if path.extension().is_some_and(|e| e == "safetensors")
                && path.is_file()
                && weights::read_manifest(&path).is_ok_and(|m| m.net == NetKind::Age && wanted(&m))
            {
                models.push(AgeModel::load(&path, device)?);
            }
        }
        if models.is_empty() {
            return Err(bad_manifest(
                &dir.join("age"),
                format!(
                    "{} holds no bone-age model (*.safetensors with a manifest saying net \"age\")",
                    dir.display()
                ),
            ));
        }
        models.sort_by_key(|m| m.key);
        // Members are known by region, head and cohort (reports, per-member columns):
        // two of one kind would silently stand for each other.
        if let Some(w) = models.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(bad_manifest(
                &w[1].path,
                format!(
                    "a second {} model beside {}: a folder holds one model of each region, \
                     head and cohort unless the manifests number them (`boneage export \
                     --variant 2`)",
                    w[1].key,
                    w[0].path.display()
                ),
            ));
        }
        let calibration = read_calibration(dir, &models, sex)?;
        Ok(Self {
            models,
            dir: dir.to_path_buf(),
            calibration,
        })
    }

    /// The registered canvases the members' crops come from, largest first (models
    /// trained on crops of different canvases are registered onto each: see
    /// `Preprocessed::registered_onto`).
    pub fn canvases(&self) -> Vec<Canvas> {
        let mut v: Vec<Canvas> = self.models.iter().map(|m| m.canvas()).collect();
        v.sort_by_key(|c| std::cmp::Reverse((c.width * c.height, c.width)));
        v.dedup();
        v
    }

    /// The regions its models of `canvas` read.
    pub fn regions_on(&self, canvas: Canvas) -> Vec<Region> {
        Region::ALL
            .into_iter()
            .filter(|r| {
                self.models
                    .iter()
                    .any(|m| m.canvas() == canvas && m.key.region == *r)
            })
            .collect()
    }

    /// The largest of [`AgeModels::canvases`]: the one the front end registers onto
    /// and the evidence shows.
    pub fn canvas(&self) -> Canvas {
        self.canvases()[0]
    }

    /// The views the member `key` reads its crop in: [`TTA_VIEWS`] when the
    /// calibration was fitted on its test-time augmented predictions, else the crop
    /// alone.
    pub fn views(&self, key: ModelKey) -> &'static [(f64, f64)] {
        match &self.calibration {
            Some(c) => views_for(&c.tta, key),
            None => &TTA_VIEWS[..1],
        }
    }

    /// Every applicable model's estimate for a patient of `sex`: the models of that
    /// sex and the mixed ones, each on the crops of its canvas.
    ///
    /// # Panics
    /// When `crops` lacks one of [`AgeModels::canvases`].
    pub fn members(&self, crops: &[RegionCrops], sex: Sex) -> Vec<MemberEstimate> {
        self.models
            .iter()
            .filter(|m| m.key.cohort.covers(sex))
            .map(|m| MemberEstimate {
                key: m.key,
                months: m.predict_views(m.crop_in(crops), sex, self.views(m.key)),
            })
            .collect()
    }

    /// The ensemble estimate for a patient of `sex`: the fitted ensemble with its
    /// interval when the folder has a calibration, else the plain mean.
    ///
    /// # Panics
    /// When `crops` lacks one of [`AgeModels::canvases`].
    pub fn assess(&self, crops: &[RegionCrops], sex: Sex) -> Option<Estimate> {
        let mut e = combine(self.members(crops, sex))?;
        if let Some(cal) = &self.calibration {
            let members: BTreeMap<_, _> = e.members.iter().map(|m| (m.key, m.months)).collect();
            // The members were checked when the folder was loaded.
            let c = cal
                .apply(sex, &members)
                .expect("a calibration checked against its models");
            e.months = c.months;
            e.calibrated = Some(c);
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boneage_core::Cohort;

    fn member(region: Region, head: Head, months: f64) -> MemberEstimate {
        MemberEstimate {
            key: ModelKey::first(region, head, Cohort::Mixed),
            months,
        }
    }

    #[test]
    fn ensemble_is_the_mean_with_the_members_spread() {
        let e = combine(vec![
            member(Region::A, Head::Regression, 100.0),
            member(Region::A, Head::Classification, 110.0),
            member(Region::C, Head::Regression, 120.0),
        ])
        .unwrap();
        assert!((e.months - 110.0).abs() < 1e-12);
        assert!((e.spread - 10.0).abs() < 1e-12);
        assert_eq!(e.regions, [Some(105.0), None, Some(120.0), None]);
        assert!(combine(Vec::new()).is_none());
    }
}
