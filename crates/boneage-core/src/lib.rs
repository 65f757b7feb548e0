//! Everything in boneage that does not need a neural network: reading radiographs
//! (PNG, JPEG, DICOM), RSNA-style datasets and splits, skeletal development stages,
//! the synthetic hand phantom, and small drawing helpers for contact sheets.
//!
//! This crate never depends on burn or tokio, so it builds in seconds and its tests
//! run without the deep-learning stack.
#![warn(missing_docs)]

pub mod calibration;
pub mod dataset;
pub mod domain;
pub mod error;
pub mod fingertip;
pub mod font;
pub mod geometry;
pub mod growth;
pub mod hand_geometry;
pub mod hand_template;
pub mod image;
pub mod io;
pub mod keypoints;
pub mod labels;
pub mod metrics;
pub mod ops;
pub mod overlay;
pub mod phantom;
pub mod registration;
pub mod sheet;
pub mod stages;
pub mod stress;

pub use domain::{Cohort, Head, ModelKey, NetKind, Sex, View};
pub use error::{Error, Result};
pub use image::GrayImage;
pub use io::{Radiograph, RadiographMeta, read_radiograph, read_radiograph_bytes};
