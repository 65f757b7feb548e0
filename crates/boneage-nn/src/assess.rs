//! Bone age from registered region crops: the trained bone-age models of a folder,
//! each run on its region, combined into one estimate with the spread of its members
//! as the uncertainty (the paper's linear ensembles).

use std::path::{Path, PathBuf};

use boneage_core::GrayImage;
use boneage_core::io::Sex;
use boneage_core::ops::resize_area;
use boneage_core::registration::{Canvas, Region, crop};
use burn::prelude::*;
use serde::Serialize;

use crate::age::{AgeHead, AgeNet, AgeNetConfig};
use crate::prepare::window_pixels;
use crate::weights::{self, Manifest, WeightsError};

/// Which patients a model was trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Cohort {
    /// Boys only.
    Male,
    /// Girls only.
    Female,
    /// Both, with the sex as an input.
    Mixed,
}

impl Cohort {
    /// "M", "F" or "mixed" (as in the manifests).
    pub fn name(self) -> &'static str {
        match self {
            Cohort::Male => "M",
            Cohort::Female => "F",
            Cohort::Mixed => "mixed",
        }
    }

    /// Whether a model of this cohort applies to a patient of `sex`.
    pub fn covers(self, sex: Sex) -> bool {
        match self {
            Cohort::Mixed => true,
            Cohort::Male => sex == Sex::Male,
            Cohort::Female => sex == Sex::Female,
        }
    }

    /// The cohort of one sex.
    pub fn of(sex: Sex) -> Cohort {
        match sex {
            Sex::Male => Cohort::Male,
            Sex::Female => Cohort::Female,
        }
    }
}

/// Regression or classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum HeadKind {
    /// One scaled output.
    Regression,
    /// Softmax expectation over months.
    Classification,
}

impl HeadKind {
    /// "reg" or "cls".
    pub fn short(self) -> &'static str {
        match self {
            HeadKind::Regression => "reg",
            HeadKind::Classification => "cls",
        }
    }
}

/// What one model is: region, head, cohort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ModelKey {
    /// Region crop it reads.
    pub region: Region,
    /// Output head.
    pub head: HeadKind,
    /// Patients it was trained on.
    pub cohort: Cohort,
}

impl ModelKey {
    /// `A-reg-mixed` and the like (the file stem the grid script uses).
    pub fn name(&self) -> String {
        format!(
            "{}-{}-{}",
            self.region.name(),
            self.head.short(),
            self.cohort.name()
        )
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
    /// Loads a bone-age model (weights with the manifest beside them).
    pub fn load(path: &Path) -> Result<Self, WeightsError> {
        let manifest = weights::read_manifest(path)?;
        if manifest.net != "age" {
            return Err(WeightsError::Mismatch {
                path: weights::manifest_path(path),
                found: format!("a {} net", manifest.net),
                expected: "a bone-age net (age)".into(),
            });
        }
        let config: AgeNetConfig = serde_json::from_value(manifest.config.clone())
            .map_err(|e| bad_manifest(path, format!("not a bone-age net config: {e}")))?;
        let region = match manifest.region.as_deref() {
            Some("A") => Region::A,
            Some("B") => Region::B,
            Some("C") => Region::C,
            other => {
                return Err(bad_manifest(
                    path,
                    format!("region {other:?}: the ensemble needs a registered region A, B or C"),
                ));
            }
        };
        let cohort = match manifest.sex.as_deref() {
            Some("M") => Cohort::Male,
            Some("F") => Cohort::Female,
            Some("mixed") => Cohort::Mixed,
            other => return Err(bad_manifest(path, format!("cohort {other:?}"))),
        };
        let head = match config.head {
            AgeHead::Regression => HeadKind::Regression,
            AgeHead::Classification { .. } => HeadKind::Classification,
        };
        let device = Device::flex();
        let net = weights::load(config.init(&device), path, &manifest)?.valid();
        Ok(Self {
            key: ModelKey {
                region,
                head,
                cohort,
            },
            path: path.to_path_buf(),
            manifest,
            net,
            device,
        })
    }

    /// The bone age (months) of one region crop (pixels in `[0, 1]`, as cropped from
    /// the registered canvas) for a patient of `sex`.
    pub fn predict(&self, crop: &GrayImage, sex: Sex) -> f64 {
        let [h, w] = self.manifest.input;
        // The same steps as training on `boneage preprocess` crops: 8-bit crop,
        // area resampling, contrast window, p / 127.5 − 1.
        let q = GrayImage::from_vec(
            crop.width(),
            crop.height(),
            crop.to_u8().iter().map(|&v| f32::from(v) / 255.0).collect(),
        )
        .expect("same size");
        let pixels: Vec<f32> = window_pixels(&resize_area(&q, w, h))
            .iter()
            .map(|&p| f32::from(p) / 127.5 - 1.0)
            .collect();
        let x = Tensor::<1>::from_floats(pixels.as_slice(), &self.device).reshape([1, 1, h, w]);
        let male = Tensor::<1>::from_floats([f32::from(u8::from(sex == Sex::Male))], &self.device)
            .reshape([1, 1]);
        let out = self.net.forward(x, Some(male)).months.into_data();
        f64::from(out.convert::<f32>().try_to_vec::<f32>().expect("f32")[0])
    }
}

/// The three region crops of a registered hand.
pub struct RegionCrops {
    /// A, B, C in that order.
    pub crops: [GrayImage; 3],
}

impl RegionCrops {
    /// Crops the regions from a registered canvas.
    pub fn from_canvas(registered: &GrayImage, canvas: &Canvas) -> Self {
        Self {
            crops: Region::ALL.map(|r| crop(registered, canvas.region(r))),
        }
    }

    /// The crop of `region`.
    pub fn get(&self, region: Region) -> &GrayImage {
        &self.crops[region as usize]
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
    /// Mean of the members, months.
    pub months: f64,
    /// Standard deviation across the members, months (the uncertainty).
    pub spread: f64,
    /// Mean of each region's members: A, B, C (None where a region has none).
    pub regions: [Option<f64>; 3],
    /// Every member.
    pub members: Vec<MemberEstimate>,
}

/// The paper's linear ensemble: the plain mean of the members (all regions, both
/// heads), with their standard deviation as the spread. `None` without members.
pub fn combine(members: Vec<MemberEstimate>) -> Option<Estimate> {
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    let all: Vec<f64> = members.iter().map(|m| m.months).collect();
    let months = mean(&all)?;
    let spread = if all.len() > 1 {
        (all.iter().map(|v| (v - months).powi(2)).sum::<f64>() / (all.len() - 1) as f64).sqrt()
    } else {
        0.0
    };
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
}

impl AgeModels {
    /// Loads every `*.safetensors` in `dir` (and every `*/model.safetensors`, the
    /// weights of `boneage train` run folders) whose manifest says it is a bone-age
    /// net. Fails when there is none, or when one cannot be loaded.
    pub fn load_dir(dir: &Path) -> Result<Self, WeightsError> {
        Self::load_dir_for(dir, None)
    }

    /// As [`AgeModels::load_dir`], keeping only the models that cover `sex` (its
    /// sex's and the mixed ones) when it is given: less to load for one patient.
    pub fn load_dir_for(dir: &Path, sex: Option<Sex>) -> Result<Self, WeightsError> {
        let wanted = |m: &Manifest| match (sex, m.sex.as_deref()) {
            (None, _) | (_, Some("mixed")) => true,
            (Some(s), Some(c)) => c == s.letter(),
            (Some(_), None) => false,
        };
        let io = |e| WeightsError::Io {
            path: dir.to_path_buf(),
            source: e,
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
                && weights::read_manifest(&path).is_ok_and(|m| m.net == "age" && wanted(&m))
            {
                models.push(AgeModel::load(&path)?);
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
        Ok(Self {
            models,
            dir: dir.to_path_buf(),
        })
    }

    /// Every applicable model's estimate for a patient of `sex`: the models of that
    /// sex and the mixed ones.
    pub fn members(&self, crops: &RegionCrops, sex: Sex) -> Vec<MemberEstimate> {
        self.models
            .iter()
            .filter(|m| m.key.cohort.covers(sex))
            .map(|m| MemberEstimate {
                key: m.key,
                months: m.predict(crops.get(m.key.region), sex),
            })
            .collect()
    }

    /// The ensemble estimate for a patient of `sex`.
    pub fn assess(&self, crops: &RegionCrops, sex: Sex) -> Option<Estimate> {
        combine(self.members(crops, sex))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(region: Region, head: HeadKind, months: f64) -> MemberEstimate {
        MemberEstimate {
            key: ModelKey {
                region,
                head,
                cohort: Cohort::Mixed,
            },
            months,
        }
    }

    #[test]
    fn ensemble_is_the_mean_with_the_members_spread() {
        let e = combine(vec![
            member(Region::A, HeadKind::Regression, 100.0),
            member(Region::A, HeadKind::Classification, 110.0),
            member(Region::C, HeadKind::Regression, 120.0),
        ])
        .unwrap();
        assert!((e.months - 110.0).abs() < 1e-12);
        assert!((e.spread - 10.0).abs() < 1e-12);
        assert_eq!(e.regions, [Some(105.0), None, Some(120.0)]);
        assert!(combine(Vec::new()).is_none());
    }

    #[test]
    fn cohorts_cover_their_sex() {
        assert!(Cohort::Mixed.covers(Sex::Female));
        assert!(Cohort::Male.covers(Sex::Male) && !Cohort::Male.covers(Sex::Female));
        assert_eq!(
            ModelKey {
                region: Region::B,
                head: HeadKind::Classification,
                cohort: Cohort::Female
            }
            .name(),
            "B-cls-F"
        );
    }
}
