//! `boneage._boneage`: the native half of the Python package. The Python half
//! (`python/boneage/__init__.py`) turns paths, bytes and numpy arrays into the calls
//! below and the JSON they return into a dict; everything that computes runs here,
//! with the GIL released.

use std::path::PathBuf;
use std::time::Instant;

use boneage::{Assessor, ModelsDir, Patient};
use boneage_core::io::{SampleType, radiograph_from_samples};
use boneage_core::{Radiograph, Sex, read_radiograph, read_radiograph_bytes};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    _boneage,
    Refused,
    PyException,
    "The film was not assessed: the front end had no confidence in its segmentation, key points or registration (the message says which), or no model covers the patient."
);

/// A film's pixels could not be had: `FileNotFoundError` / `OSError` for a file
/// that cannot be read, `ValueError` for content that is not a radiograph.
fn read_error(e: boneage_core::Error) -> PyErr {
    match &e {
        boneage_core::Error::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(e.to_string())
        }
        boneage_core::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn sample_type(dtype: &str) -> PyResult<SampleType> {
    Ok(match dtype {
        "uint8" => SampleType::U8,
        "uint16" => SampleType::U16,
        "float32" => SampleType::F32,
        "float64" => SampleType::F64,
        other => {
            return Err(PyValueError::new_err(format!(
                "samples of type {other}: give uint8, uint16, float32 or float64"
            )));
        }
    })
}

/// The result of one call: the `--json` document as text and, when asked for,
/// the evidence picture as RGB bytes with its width and height.
type Answer = (String, Option<(Vec<u8>, u32, u32)>);

/// The bone-age models, loaded once (see `boneage.Assessor`).
#[pyclass(frozen, module = "boneage._boneage")]
struct NativeAssessor {
    // Boxed: the assessor holds 64-byte-aligned parts, and Python allocates its
    // objects at 16 bytes.
    assessor: Box<Assessor>,
}

impl NativeAssessor {
    /// Assesses a film already read; `sex` and `age` from the caller win over the
    /// file's header.
    fn run(
        &self,
        film: Radiograph,
        name: &str,
        sex: Option<&str>,
        age_months: Option<f64>,
        picture: bool,
        started: Instant,
    ) -> PyResult<Answer> {
        let (sex, sex_from) = match (sex, film.meta.sex) {
            (Some(s), _) => (s.parse::<Sex>().map_err(PyValueError::new_err)?, "sex="),
            (None, Some(s)) => (s, "the file's header"),
            (None, None) => {
                return Err(PyValueError::new_err(format!(
                    "{name}: the patient's sex is needed and the image does not record it: give sex=\"M\" or \"F\""
                )));
            }
        };
        if let Some(a) = age_months
            && !(a.is_finite() && a >= 0.0)
        {
            return Err(PyValueError::new_err(format!(
                "age_months={a}: give the chronological age in months, 0 or more"
            )));
        }
        let mut patient = Patient::new(sex);
        patient.age_months = age_months.or(film.meta.age_months);
        let a = self
            .assessor
            .assess(&film, &patient)
            .map_err(|e| Refused::new_err(format!("{name}: {e}")))?;
        let report = a.report(name, sex_from, started.elapsed().as_secs_f64());
        let json = serde_json::to_string(&report)
            .map_err(|e| PyRuntimeError::new_err(format!("encoding the result: {e}")))?;
        let picture = picture.then(|| {
            let p = a.evidence_picture(&self.assessor.canvas());
            let (w, h) = p.dimensions();
            (p.into_raw(), w, h)
        });
        Ok((json, picture))
    }
}

#[pymethods]
impl NativeAssessor {
    /// Loads every model in `models` (None: `$BONEAGE_MODELS`, then the usual places).
    #[new]
    #[pyo3(signature = (models=None))]
    fn new(py: Python<'_>, models: Option<PathBuf>) -> PyResult<Self> {
        py.detach(|| {
            if let Some(p) = models.as_deref().filter(|p| !p.is_dir()) {
                return Err(PyFileNotFoundError::new_err(format!(
                    "{}: no such models folder",
                    p.display()
                )));
            }
            let dir = ModelsDir::locate(models.as_deref())
                .map_err(|e| PyFileNotFoundError::new_err(e.to_string()))?;
            let assessor = Assessor::load(&dir, Default::default()).map_err(|e| match e {
                boneage::LoadError::NotFound(e) => PyFileNotFoundError::new_err(e.to_string()),
                e => PyOSError::new_err(e.to_string()),
            })?;
            Ok(Self {
                assessor: Box::new(assessor),
            })
        })
    }

    /// The models folder in use.
    #[getter]
    fn models(&self) -> PathBuf {
        self.assessor.models_dir().path.clone()
    }

    /// A film from a file (PNG, JPEG or DICOM, by content).
    #[pyo3(signature = (path, sex, age_months, picture))]
    fn assess_path(
        &self,
        py: Python<'_>,
        path: PathBuf,
        sex: Option<&str>,
        age_months: Option<f64>,
        picture: bool,
    ) -> PyResult<Answer> {
        let sex = sex.map(str::to_string);
        py.detach(|| {
            let t = Instant::now();
            let film = read_radiograph(&path).map_err(read_error)?;
            let name = path.display().to_string();
            self.run(film, &name, sex.as_deref(), age_months, picture, t)
        })
    }

    /// A film from the bytes of a PNG, JPEG or DICOM file.
    #[pyo3(signature = (data, name, sex, age_months, picture))]
    fn assess_bytes(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyBytes>,
        name: String,
        sex: Option<&str>,
        age_months: Option<f64>,
        picture: bool,
    ) -> PyResult<Answer> {
        let bytes = data.as_bytes();
        let sex = sex.map(str::to_string);
        py.detach(|| {
            let t = Instant::now();
            let film = read_radiograph_bytes(bytes, &name).map_err(read_error)?;
            self.run(film, &name, sex.as_deref(), age_months, picture, t)
        })
    }

    /// A film from row-major samples in native byte order (a numpy array's bytes).
    #[pyo3(signature = (data, height, width, dtype, name, sex, age_months, picture))]
    #[allow(clippy::too_many_arguments)]
    fn assess_samples(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyBytes>,
        height: usize,
        width: usize,
        dtype: &str,
        name: String,
        sex: Option<&str>,
        age_months: Option<f64>,
        picture: bool,
    ) -> PyResult<Answer> {
        let kind = sample_type(dtype)?;
        let bytes = data.as_bytes();
        let sex = sex.map(str::to_string);
        py.detach(|| {
            let t = Instant::now();
            let film = radiograph_from_samples(width, height, kind, bytes, &name)
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            self.run(film, &name, sex.as_deref(), age_months, picture, t)
        })
    }
}

#[pymodule]
fn _boneage(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("Refused", m.py().get_type::<Refused>())?;
    m.add_class::<NativeAssessor>()?;
    Ok(())
}
