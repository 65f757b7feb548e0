//! The main job: a radiograph and a patient in, an [`Assessment`] or a [`Refusal`]
//! out. Segment → normalize → key points → register → regions A, B, C, D → the
//! bone-age ensemble → the comparison with the chronological age.

use std::time::Instant;

use boneage_core::growth::{Comparison, compare};
use boneage_core::io::{months_between, parse_date};
use boneage_core::registration::Canvas;
use boneage_core::{Radiograph, Sex};
use boneage_nn::device::{DeviceChoice, DeviceError};
use boneage_nn::ensemble::{AgeModels, Estimate, RegionCrops};
use boneage_nn::pipeline::{Pipeline, PreprocessError, Preprocessed};
use boneage_nn::weights::WeightsError;

use crate::models::{ModelsDir, ModelsNotFound};

/// Who the film is of: the sex (required: the models are sex-specific) and, when
/// known, the chronological age.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Patient {
    /// Patient sex.
    pub sex: Sex,
    /// Chronological age in months, when known.
    pub age_months: Option<f64>,
}

/// A patient description that does not hold together.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// A date is not `YYYY-MM-DD`.
    #[error("{0:?} is not a date: use YYYY-MM-DD")]
    BadDate(String),
    /// The birth is after the study.
    #[error("the birth date {birth} is after the study date {study}")]
    BirthAfterStudy {
        /// Birth date as given.
        birth: String,
        /// Study date as given.
        study: String,
    },
}

impl Patient {
    /// A patient of `sex` whose age is not known.
    pub fn new(sex: Sex) -> Self {
        Self {
            sex,
            age_months: None,
        }
    }

    /// The same patient at `months` of age.
    pub fn with_age(self, months: f64) -> Self {
        Self {
            age_months: Some(months),
            ..self
        }
    }

    /// The same patient, aged from birth and study dates (`YYYY-MM-DD`).
    pub fn with_dates(self, birth: &str, study: &str) -> Result<Self, PatientError> {
        Ok(self.with_age(age_from_dates(birth, study)?))
    }
}

/// The age in months at `study` of a patient born on `birth` (both `YYYY-MM-DD`).
pub fn age_from_dates(birth: &str, study: &str) -> Result<f64, PatientError> {
    let date = |v: &str| parse_date(v).ok_or_else(|| PatientError::BadDate(v.to_string()));
    months_between(date(birth)?, date(study)?)
        .filter(|m| *m >= 0.0)
        .ok_or_else(|| PatientError::BirthAfterStudy {
            birth: birth.to_string(),
            study: study.to_string(),
        })
}

/// Why the models could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// No models folder was found.
    #[error(transparent)]
    NotFound(#[from] ModelsNotFound),
    /// The device cannot be had.
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// The preprocessing weights could not be loaded.
    #[error("loading the preprocessing models in {dir}: {error}")]
    Pipeline {
        /// The models folder.
        dir: Box<ModelsDir>,
        /// What went wrong (in the message, not chained).
        error: WeightsError,
    },
    /// The bone-age weights could not be loaded.
    #[error(
        "loading the bone-age models in {}: {error} (train them with scripts/train_age_grid.sh or scripts/train_cv.sh, or give --models / --age-models)",
        dir.age().display()
    )]
    AgeModels {
        /// The models folder.
        dir: Box<ModelsDir>,
        /// What went wrong (in the message, not chained).
        error: WeightsError,
    },
}

/// Why no bone age was given for a film: the front end had no confidence in it, or
/// no model covers the patient.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Segmentation, key points or registration refused the film.
    #[error(transparent)]
    Preprocess(#[from] PreprocessError),
    /// The loaded models do not cover the patient's sex.
    #[error("no bone-age model covers sex {0}")]
    NoModel(Sex),
}

/// One film's answer, with the evidence behind it.
pub struct Assessment {
    /// The patient as assessed.
    pub patient: Patient,
    /// What the front end found: mask, key points, registration, registered hand.
    pub preprocessed: Preprocessed,
    /// The ensemble: bone age, spread, regions, members.
    pub estimate: Estimate,
    /// Against the chronological age, when it is known.
    pub chronological: Option<Comparison>,
    /// Seconds from the pixels to the answer (reading and loading excluded).
    pub seconds: f64,
}

impl Assessment {
    /// The bone age in months.
    pub fn bone_age_months(&self) -> f64 {
        self.estimate.months
    }
}

/// The region crops of a preprocessed film on each of `canvases`: cut from the
/// registered hand on the pipeline's own canvas, registered again from the same key
/// points onto any other.
pub fn region_crops(
    pre: &Preprocessed,
    canvases: &[Canvas],
) -> Result<Vec<RegionCrops>, PreprocessError> {
    canvases
        .iter()
        .map(|c| {
            if c.width == pre.registered.width() && c.height == pre.registered.height() {
                Ok(RegionCrops::from_canvas(&pre.registered, c))
            } else {
                Ok(RegionCrops::from_canvas(&pre.registered_onto(c)?, c))
            }
        })
        .collect()
}

/// The trained pipeline and bone-age models, loaded once, assessing any number of
/// films (it is `Sync`: threads may share one).
pub struct Assessor {
    pipeline: Pipeline,
    models: AgeModels,
    dir: ModelsDir,
    device: DeviceChoice,
}

impl Assessor {
    /// Loads every model in `models` onto `device`.
    pub fn load(models: &ModelsDir, device: DeviceChoice) -> Result<Self, LoadError> {
        Self::load_for(models, device, None)
    }

    /// As [`Assessor::load`], keeping only the bone-age models that cover `sex`
    /// (its sex's and the mixed ones) when it is given: less to load for one film.
    pub fn load_for(
        models: &ModelsDir,
        device: DeviceChoice,
        sex: Option<Sex>,
    ) -> Result<Self, LoadError> {
        let d = device.device()?;
        let age = AgeModels::load_dir_for(&models.age(), sex, &d).map_err(|error| {
            LoadError::AgeModels {
                dir: Box::new(models.clone()),
                error,
            }
        })?;
        // Registered onto the (largest) canvas the bone-age models were trained on;
        // onto the others too when they were trained on several.
        let pipeline = Pipeline::load(&models.path, age.canvas(), &d).map_err(|error| {
            LoadError::Pipeline {
                dir: Box::new(models.clone()),
                error,
            }
        })?;
        Ok(Self {
            pipeline,
            models: age,
            dir: models.clone(),
            device,
        })
    }

    /// Assesses one radiograph of `patient`.
    pub fn assess(&self, film: &Radiograph, patient: &Patient) -> Result<Assessment, Refusal> {
        let t = Instant::now();
        let preprocessed = self.pipeline.run(&film.pixels)?;
        let crops = region_crops(&preprocessed, &self.models.canvases())?;
        let estimate = self
            .models
            .assess(&crops, patient.sex)
            .ok_or(Refusal::NoModel(patient.sex))?;
        let chronological = patient
            .age_months
            .map(|age| compare(patient.sex, estimate.months, age));
        Ok(Assessment {
            patient: *patient,
            preprocessed,
            estimate,
            chronological,
            seconds: t.elapsed().as_secs_f64(),
        })
    }

    /// The registration canvas.
    pub fn canvas(&self) -> Canvas {
        self.pipeline.canvas
    }

    /// The models folder it was loaded from.
    pub fn models_dir(&self) -> &ModelsDir {
        &self.dir
    }

    /// The device it runs on.
    pub fn device(&self) -> DeviceChoice {
        self.device
    }

    /// The front end alone (segment → normalize → key points → register).
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The bone-age models.
    pub fn age_models(&self) -> &AgeModels {
        &self.models
    }
}
