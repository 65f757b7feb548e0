//! The paper's neural networks (U-Net, key-point regressor, bone-age VGG) and their
//! training engine, on burn. This is the only crate that depends on burn, so that
//! `cargo test -p boneage-core` never compiles it.
//!
//! The networks arrive with their issue; until then this crate is deliberately empty.
#![warn(missing_docs)]
