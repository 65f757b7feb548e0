//! The paper's neural networks and their losses, on burn: the U-Net for hand masks,
//! the VGG-style key-point regressor, and the VGG-style bone-age network with a
//! regression or a 240-way classification head.
//!
//! This is the only crate that depends on burn, so that `cargo test -p boneage-core`
//! never compiles it. Each network is one file: `Config` → `init` → `forward`.
//!
//! On the flex CPU backend the networks' hot spots (3×3 convolution, batch norm + ELU,
//! 2×2 max pooling) run on this crate's own kernels ([`kernels`]), plugged into burn
//! as a backend extension ([`fastops`]).
#![warn(missing_docs)]

pub mod age;
pub mod bench;
pub mod blocks;
pub mod data;
pub mod device;
pub mod efficientnet;
pub mod ensemble;
pub mod fastops;
pub mod inputs;
pub mod kernels;
pub mod keypoint_net;
pub mod loss;
pub mod mobile_kernels;
pub mod pipeline;
pub mod tasks;
pub mod train;
pub mod unet;
pub mod verifier;
pub mod weights;

pub use burn;
