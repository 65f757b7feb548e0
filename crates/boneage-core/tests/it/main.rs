//! Integration tests of boneage-core (one binary; see the modules).

mod dataset;
mod dicom;
mod geometry;
mod io;
mod ops;
mod phantom;
mod real_data;
mod registration;
mod util;
