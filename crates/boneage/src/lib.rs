//! Pediatric bone age assessment from a left-hand radiograph, as a library: the
//! whole job of Iglovikov et al. 2018 behind one call, used by every front end (the
//! `boneage` command line, the HTTP service, the Python package).
//!
//! ```
//! use boneage::{Assessor, DeviceChoice, ModelsDir, Patient};
//! use boneage_core::{Sex, read_radiograph};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("hand.png");
//! # let config = boneage_core::phantom::PhantomConfig::default();
//! # let mut rng = boneage_core::phantom::image_rng(7, 0);
//! # boneage_core::phantom::generate(&config, &mut rng)?.image.save_png(&path)?;
//! // The shipped weights (or --models, $BONEAGE_MODELS), loaded once, on the CPU.
//! let assessor = Assessor::load(&ModelsDir::locate(None)?, DeviceChoice::Cpu)?;
//! let film = read_radiograph(&path)?;
//! let patient = Patient::new(Sex::Female).with_age(10.0 * 12.0);
//! match assessor.assess(&film, &patient) {
//!     Ok(a) => {
//!         assert!((0.0..=240.0).contains(&a.bone_age_months()));
//!         // Region estimates, the ensemble's members and spread, the key points
//!         // and registration, the comparison with the chronological age:
//!         let json = serde_json::to_string(&a.report("hand.png", "the caller", a.seconds))?;
//!         assert!(json.contains("\"bone_age_months\""));
//!         let picture = a.evidence_picture(&assessor.canvas());
//!         assert!(picture.width() > 0);
//!     }
//!     // The front end had no confidence in the film: the reason, in words.
//!     Err(refusal) => assert!(!refusal.to_string().is_empty()),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The data flow, and where each stage lives:
//!
//! | stage | type | module |
//! | --- | --- | --- |
//! | read PNG / JPEG / DICOM | [`Radiograph`] | `boneage_core::io` |
//! | segment (U-Net) | `Mask` | `boneage_nn::unet`, `boneage_nn::pipeline::Segmenter` |
//! | normalize contrast | `GrayImage` | `boneage_core::ops::contrast` |
//! | key points | `KeyPoints` | `boneage_core::hand_geometry`, `boneage_nn::keypoint_net` |
//! | register | `Registration` | `boneage_core::registration` |
//! | regions A, B, C, D | `RegionCrops` | `boneage_nn::ensemble` |
//! | bone-age nets, ensemble | `Estimate` | `boneage_nn::age`, `boneage_nn::ensemble` |
//! | the answer | [`Assessment`] | [`assessor`] |
#![warn(missing_docs)]

pub mod assessor;
pub mod at_once;
pub mod batch;
pub mod bench;
pub mod charts;
pub mod evaluation;
pub mod evidence;
pub mod mining;
pub mod models;
pub mod preprocess_eval;
pub mod preprocess_score;
pub mod progress;
pub mod registration_check;
pub mod report;
pub mod resolution;
pub mod review_web;
pub mod shard;
pub mod stress_eval;
pub mod training;
pub mod training_sheet;

pub use assessor::{Assessment, Assessor, LoadError, Patient, PatientError, Refusal};
pub use boneage_core::Radiograph;
pub use boneage_nn::device::DeviceChoice;
pub use models::{ModelsDir, ModelsSource};
pub use progress::{Progress, Silent};
