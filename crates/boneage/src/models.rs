//! Where the weights are: a models folder holds `unet.safetensors`,
//! `keypoints.safetensors` and `age/` (each with its JSON manifest).
//!
//! [`ModelsDir::locate`] looks, in order, at the folder given (`--models`), at
//! `$BONEAGE_MODELS`, beside the executable (`models/`), in the installed data
//! directory (`../share/boneage/models` from the executable), and in the source tree
//! this crate was built from; the error names every place it looked.

use std::fmt;
use std::path::{Path, PathBuf};

/// How a models folder was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelsSource {
    /// Given by the caller (`--models`).
    Given,
    /// `$BONEAGE_MODELS`.
    Environment,
    /// `models/` beside the executable.
    BesideExecutable,
    /// `share/boneage/models` of the installation prefix.
    DataDirectory,
    /// `models/` of the source tree this crate was built from.
    SourceTree,
}

impl fmt::Display for ModelsSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ModelsSource::Given => "given",
            ModelsSource::Environment => "$BONEAGE_MODELS",
            ModelsSource::BesideExecutable => "beside the executable",
            ModelsSource::DataDirectory => "the installed data directory",
            ModelsSource::SourceTree => "the source tree",
        })
    }
}

/// A models folder and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelsDir {
    /// The folder.
    pub path: PathBuf,
    /// Where it came from.
    pub source: ModelsSource,
    /// The bone-age models folder, when not `age/` inside `path` (e.g. the paper's
    /// 18 VGG models in `models/age-paper`).
    pub age_dir: Option<PathBuf>,
}

/// No models folder was found.
#[derive(Debug, thiserror::Error)]
#[error("no models folder (one with unet.safetensors) found; looked at {}; give --models DIR or set BONEAGE_MODELS", describe(.tried))]
pub struct ModelsNotFound {
    /// Every place looked at, with how it was chosen.
    pub tried: Vec<(PathBuf, ModelsSource)>,
}

fn describe(tried: &[(PathBuf, ModelsSource)]) -> String {
    tried
        .iter()
        .map(|(p, s)| format!("{} ({s})", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ModelsDir {
    /// A folder the caller chose, taken as it is (loading says what is missing).
    pub fn given(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            source: ModelsSource::Given,
            age_dir: None,
        }
    }

    /// The first folder holding `unet.safetensors` among `explicit`,
    /// `$BONEAGE_MODELS`, beside the executable, the installed data directory and
    /// the source tree. A folder given explicitly or by the environment is taken
    /// even when it lacks the U-Net (a bone-age-only folder for `evaluate`).
    pub fn locate(explicit: Option<&Path>) -> Result<Self, ModelsNotFound> {
        if let Some(p) = explicit {
            return Ok(Self::given(p));
        }
        if let Some(p) = std::env::var_os("BONEAGE_MODELS") {
            return Ok(Self {
                path: PathBuf::from(p),
                source: ModelsSource::Environment,
                age_dir: None,
            });
        }
        let mut tried = Vec::new();
        if let Some(dir) = std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf))
        {
            tried.push((dir.join("models"), ModelsSource::BesideExecutable));
            tried.push((
                dir.join("../share/boneage/models"),
                ModelsSource::DataDirectory,
            ));
        }
        tried.push((
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"),
            ModelsSource::SourceTree,
        ));
        match tried
            .iter()
            .find(|(p, _)| p.join("unet.safetensors").is_file())
        {
            Some((p, s)) => Ok(Self {
                path: p.clone(),
                source: *s,
                age_dir: None,
            }),
            None => Err(ModelsNotFound { tried }),
        }
    }

    /// The U-Net's weights.
    pub fn unet(&self) -> PathBuf {
        self.path.join("unet.safetensors")
    }

    /// The bone-age models' folder.
    pub fn age(&self) -> PathBuf {
        self.age_dir
            .clone()
            .unwrap_or_else(|| self.path.join("age"))
    }

    /// The same folder with its bone-age models taken from `dir` instead.
    pub fn with_age_dir(self, dir: Option<PathBuf>) -> Self {
        Self {
            age_dir: dir.or(self.age_dir),
            ..self
        }
    }
}

impl fmt::Display for ModelsDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path.display(), self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_folder_wins_and_the_source_tree_is_found() {
        let given = ModelsDir::locate(Some(Path::new("/nowhere"))).unwrap();
        assert_eq!(given.source, ModelsSource::Given);
        assert_eq!(given.age(), Path::new("/nowhere/age"));
        // Without --models or $BONEAGE_MODELS (tests do not set it), the shipped
        // weights of this source tree.
        if std::env::var_os("BONEAGE_MODELS").is_none() {
            let found = ModelsDir::locate(None).unwrap();
            assert!(found.unet().is_file(), "{found}");
        }
        let e = ModelsNotFound {
            tried: vec![(PathBuf::from("/a/models"), ModelsSource::BesideExecutable)],
        }
        .to_string();
        assert!(
            e.contains("/a/models (beside the executable)") && e.contains("--models"),
            "{e}"
        );
    }
}
