//! Where the networks run, chosen in one place and passed down (as burn's examples
//! do): `--device cpu` (the default: burn's flex backend with this crate's kernels)
//! or `--device wgpu` (Vulkan, Metal or DX12 through wgpu; needs the `wgpu` feature).

use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;

/// The device the user asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum DeviceChoice {
    /// The CPU: burn's flex backend with this crate's kernels.
    #[default]
    Cpu,
    /// A GPU through wgpu (build with `--features wgpu`).
    Wgpu,
}

/// The device cannot be had in this build or on this machine.
#[derive(Debug, thiserror::Error)]
#[error("device {choice}: {detail}")]
pub struct DeviceError {
    /// What was asked for.
    pub choice: DeviceChoice,
    /// Why it cannot be had.
    pub detail: String,
}

impl DeviceChoice {
    /// The burn device for inference.
    pub fn device(self) -> Result<Device, DeviceError> {
        match self {
            DeviceChoice::Cpu => Ok(Device::flex()),
            #[cfg(feature = "wgpu")]
            DeviceChoice::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::default())),
            #[cfg(not(feature = "wgpu"))]
            DeviceChoice::Wgpu => Err(DeviceError {
                choice: self,
                detail: "this boneage was built without GPU support; build it with \
                         `cargo build --release -p boneage-cli --features wgpu`"
                    .into(),
            }),
        }
    }

    /// The burn device for training (with automatic differentiation).
    pub fn training_device(self) -> Result<Device, DeviceError> {
        self.device().map(Device::autodiff)
    }

    /// "cpu" or "wgpu".
    pub fn name(self) -> &'static str {
        match self {
            DeviceChoice::Cpu => "cpu",
            DeviceChoice::Wgpu => "wgpu",
        }
    }
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" | "flex" => Ok(DeviceChoice::Cpu),
            "wgpu" | "gpu" => Ok(DeviceChoice::Wgpu),
            _ => Err(format!("device {s:?}: use cpu or wgpu")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
