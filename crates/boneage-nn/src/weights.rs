//! Weights on disk: `NAME.safetensors` beside a `NAME.json` manifest that says what
//! the weights are (which network, its exact config, input size, normalisation, sex,
//! region, the data it was trained on, its metrics). Loading checks the manifest
//! against the network the caller expects and refuses a mismatch with a clear error,
//! instead of silently filling a different network.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::{Deserialize, Serialize};

/// Version of the manifest layout.
pub const MANIFEST_VERSION: u32 = 1;

/// What a weights file holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version ([`MANIFEST_VERSION`]).
    pub version: u32,
    /// `"unet"`, `"keypoints"` or `"age"`.
    pub net: String,
    /// The network's config exactly as its `Config` serialises it.
    pub config: serde_json::Value,
    /// Input (height, width).
    pub input: [usize; 2],
    /// How inputs are normalised, in words.
    pub normalization: String,
    /// Cohort: "M", "F" or "mixed"; `None` where it does not apply.
    pub sex: Option<String>,
    /// Region "A", "B" or "C"; `None` where it does not apply.
    pub region: Option<String>,
    /// The data it was trained on, in words (dataset, size, split seed).
    pub trained_on: String,
    /// Metrics by name (e.g. `val_mae_months`).
    pub metrics: BTreeMap<String, f64>,
}

/// What can go wrong with weights files.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected layout.
    #[error("{}: not a boneage weights manifest: {detail}", path.display())]
    Manifest {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The manifest describes another network than the one expected.
    #[error("{}: holds {found}, but {expected} was expected", path.display())]
    Mismatch {
        /// The manifest file.
        path: PathBuf,
        /// What the manifest says.
        found: String,
        /// What the caller asked for.
        expected: String,
    },
    /// The tensors could not be read or do not fit the network.
    #[error("{}: {detail}", path.display())]
    Tensors {
        /// The weights file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

/// The manifest path beside a weights path (`x.safetensors` → `x.json`).
pub fn manifest_path(weights: &Path) -> PathBuf {
    weights.with_extension("json")
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WeightsError + '_ {
    move |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Saves `model` to `weights` (safetensors) and its manifest beside it, each written
/// to a temporary file first and renamed, so that a failure leaves no half-written file.
pub fn save<M: Module>(model: &M, manifest: &Manifest, weights: &Path) -> Result<(), WeightsError> {
    let tmp = weights.with_extension("safetensors.tmp");
    let mut store = SafetensorsStore::from_file(&tmp).metadata("boneage-net", manifest.net.clone());
    model
        .save_into(&mut store)
        .map_err(|e| WeightsError::Tensors {
            path: weights.to_path_buf(),
            detail: format!("cannot write the tensors: {e}"),
        })?;
    std::fs::rename(&tmp, weights).map_err(io(weights))?;
    let json = serde_json::to_string_pretty(manifest).expect("a manifest serialises");
    let mpath = manifest_path(weights);
    let mtmp = mpath.with_extension("json.tmp");
    std::fs::write(&mtmp, json).map_err(io(&mtmp))?;
    std::fs::rename(&mtmp, &mpath).map_err(io(&mpath))
}

/// Reads the manifest beside `weights`.
pub fn read_manifest(weights: &Path) -> Result<Manifest, WeightsError> {
    let path = manifest_path(weights);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| WeightsError::Manifest {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    if m.version != MANIFEST_VERSION {
        return Err(WeightsError::Manifest {
            path,
            detail: format!(
                "manifest version {} (this boneage reads {MANIFEST_VERSION})",
                m.version
            ),
        });
    }
    Ok(m)
}

/// Loads `weights` into `model`, which must have been built from the config that
/// `expected` describes: the manifest's net, config and input must match it exactly,
/// and every tensor must be present with its shape.
pub fn load<M: Module>(
    mut model: M,
    weights: &Path,
    expected: &Manifest,
) -> Result<M, WeightsError> {
    let found = read_manifest(weights)?;
    let describe = |m: &Manifest| {
        format!(
            "a {} net for {}x{} input with config {}",
            m.net, m.input[0], m.input[1], m.config
        )
    };
    if found.net != expected.net || found.config != expected.config || found.input != expected.input
    {
        return Err(WeightsError::Mismatch {
            path: manifest_path(weights),
            found: describe(&found),
            expected: describe(expected),
        });
    }
    let tensors = |detail: String| WeightsError::Tensors {
        path: weights.to_path_buf(),
        detail,
    };
    let mut store = SafetensorsStore::from_file(weights)
        .validate(true)
        .allow_partial(false);
    let result = model
        .load_from(&mut store)
        .map_err(|e| tensors(format!("cannot read the tensors: {e}")))?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        let mut problems: Vec<String> = result.errors.iter().map(|e| format!("{e:?}")).collect();
        problems.extend(result.missing.iter().map(|(p, _)| format!("missing {p}")));
        return Err(tensors(format!(
            "the tensors do not fit the network: {}",
            problems.join("; ")
        )));
    }
    Ok(model)
}
