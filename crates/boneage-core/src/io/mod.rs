//! Reading radiographs: one entry point, [`read_radiograph`], for PNG, JPEG and DICOM.
//!
//! Whatever the container, the result has pixels as `f32` in `[0, 1]` with
//! "bright = bone" polarity (DICOM MONOCHROME1 is inverted on reading), plus the
//! metadata that the file carries.

mod dicom;
pub mod dicom_out;
mod raster;

pub use dicom::{Date, months_between, parse_age_string, parse_date};

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::domain::Sex;
use crate::error::{Error, Result};
use crate::image::GrayImage;

/// Images with more pixels than this are refused before any pixel is decoded.
pub const MAX_MEGAPIXELS: u64 = 100;

/// The container format of a radiograph file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Format {
    /// Portable Network Graphics.
    Png,
    /// JPEG (JFIF / EXIF baseline or progressive).
    Jpeg,
    /// DICOM Part 10 file.
    Dicom,
    /// Samples handed over in memory (e.g. a numpy array given to the Python package).
    Array,
}

impl Format {
    /// "PNG", "JPEG", "DICOM" or "array", as errors name it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Png => "PNG",
            Format::Jpeg => "JPEG",
            Format::Dicom => "DICOM",
            Format::Array => "array",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the file says about the image and the patient, besides the pixels.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RadiographMeta {
    /// Container format.
    pub format: Format,
    /// Bits per sample as stored (for DICOM: Bits Stored).
    pub bit_depth: u16,
    /// Colour layout as stored: for DICOM the Photometric Interpretation
    /// (e.g. "MONOCHROME1"); for PNG/JPEG the decoder's colour type (e.g. "L8", "Rgb8").
    pub photometric: String,
    /// Whether the stored values were inverted to get bright = bone (MONOCHROME1).
    pub inverted: bool,
    /// Pixel spacing in millimetres as (row spacing, column spacing), if known.
    pub pixel_spacing_mm: Option<(f64, f64)>,
    /// Patient sex, if the file records it.
    pub sex: Option<Sex>,
    /// Patient age in months, if the file records it (DICOM Patient's Age, or
    /// Study Date minus Patient's Birth Date).
    pub age_months: Option<f64>,
    /// SOP Instance UID, or another instance identifier, if any.
    pub instance_id: Option<String>,
    /// DICOM: where the film sits (Study, Series Instance UID, SOP Class UID), for
    /// results that reference it. No patient identifier is read.
    pub source: Option<DicomSource>,
    /// The VOI window (center, width) that was applied, if any.
    pub window: Option<(f64, f64)>,
}

impl RadiographMeta {
    fn new(format: Format, bit_depth: u16, photometric: impl Into<String>) -> Self {
        Self {
            format,
            bit_depth,
            photometric: photometric.into(),
            inverted: false,
            pixel_spacing_mm: None,
            sex: None,
            age_months: None,
            instance_id: None,
            source: None,
            window: None,
        }
    }
}

/// Where a DICOM film sits: enough to reference it from a result (a Structured
/// Report, a Secondary Capture) in the same study.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DicomSource {
    /// Study Instance UID.
    pub study_uid: Option<String>,
    /// Series Instance UID.
    pub series_uid: Option<String>,
    /// SOP Class UID.
    pub sop_class_uid: Option<String>,
    /// SOP Instance UID.
    pub sop_instance_uid: Option<String>,
    /// Study Date (DA), Study Time (TM), Accession Number and Study ID: the study's
    /// own attributes, repeated in a result placed in it.
    pub study_date: Option<String>,
    /// Study Time.
    pub study_time: Option<String>,
    /// Accession Number.
    pub accession_number: Option<String>,
    /// Study ID.
    pub study_id: Option<String>,
}

/// A decoded radiograph: unit-range pixels (bright = bone) and metadata.
#[derive(Clone, Debug)]
pub struct Radiograph {
    /// Where it was read from (or the name given to [`read_radiograph_bytes`]).
    pub path: PathBuf,
    /// Pixels in `[0, 1]`, bright = bone.
    pub pixels: GrayImage,
    /// What the file said.
    pub meta: RadiographMeta,
}

/// Reads a PNG, JPEG or DICOM radiograph.
///
/// The format is recognised by content, not by file name. Errors name the file.
pub fn read_radiograph(path: impl AsRef<Path>) -> Result<Radiograph> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    read_radiograph_bytes(&bytes, path)
}

/// Reads a radiograph from bytes already in memory; `path` is used in errors only.
///
/// Never panics on any input (this is what the fuzz target drives).
pub fn read_radiograph_bytes(bytes: &[u8], path: impl AsRef<Path>) -> Result<Radiograph> {
    let path = path.as_ref();
    let (pixels, meta) = match sniff(bytes) {
        Some(Format::Png) => raster::decode(bytes, path, Format::Png)?,
        Some(Format::Jpeg) => raster::decode(bytes, path, Format::Jpeg)?,
        Some(Format::Dicom) => dicom::decode(bytes, path)?,
        Some(Format::Array) | None => {
            return Err(Error::NotAnImage {
                path: path.to_path_buf(),
            });
        }
    };
    Ok(Radiograph {
        path: path.to_path_buf(),
        pixels,
        meta,
    })
}

/// How the samples of an in-memory image are stored (native byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SampleType {
    /// 8-bit unsigned: 0 is black, 255 white.
    U8,
    /// 16-bit unsigned: 0 is black, 65535 white.
    U16,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
}

impl SampleType {
    /// Bytes per sample.
    pub fn size(self) -> usize {
        match self {
            SampleType::U8 => 1,
            SampleType::U16 => 2,
            SampleType::F32 => 4,
            SampleType::F64 => 8,
        }
    }
}

/// A radiograph from samples already in memory, row-major, `width` × `height`,
/// bright = bone, named `name` in errors.
///
/// Integers are scaled as a PNG of that depth is (8 bits by 255, 16 bits by
/// 65535), so that an array holding a PNG's samples gives the same pixels as the
/// PNG. Floats are taken as they are when they lie in `[0, 1]`, and stretched from
/// their minimum and maximum to `[0, 1]` otherwise; NaN or infinity is refused, as
/// is a float image of one value (it holds no picture).
pub fn radiograph_from_samples(
    width: usize,
    height: usize,
    kind: SampleType,
    bytes: &[u8],
    name: impl AsRef<Path>,
) -> Result<Radiograph> {
    let path = name.as_ref();
    let bad = |detail: String| Error::InvalidArgument(format!("{}: {detail}", path.display()));
    if width == 0 || height == 0 {
        return Err(bad(format!("an empty image ({height}x{width} samples)")));
    }
    check_size(path, width as u64, height as u64)?;
    let n = width * height;
    if bytes.len() != n * kind.size() {
        return Err(bad(format!(
            "{} bytes for {height}x{width} samples of {kind:?} ({} expected)",
            bytes.len(),
            n * kind.size()
        )));
    }
    let (data, bit_depth): (Vec<f32>, u16) = match kind {
        SampleType::U8 => (bytes.iter().map(|&v| v as f32 / 255.0).collect(), 8),
        SampleType::U16 => (
            bytes
                .chunks_exact(2)
                .map(|c| u16::from_ne_bytes([c[0], c[1]]) as f32 / 65535.0)
                .collect(),
            16,
        ),
        SampleType::F32 | SampleType::F64 => {
            let values: Vec<f64> = if kind == SampleType::F32 {
                bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_ne_bytes(c.try_into().expect("4 bytes")) as f64)
                    .collect()
            } else {
                bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_ne_bytes(c.try_into().expect("8 bytes")))
                    .collect()
            };
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "sample at row {}, column {} is {} (NaN or infinity): a radiograph needs finite values",
                    i / width,
                    i % width,
                    values[i]
                )));
            }
            let (lo, hi) = values
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                    (l.min(v), h.max(v))
                });
            let data = if lo >= 0.0 && hi <= 1.0 {
                values.iter().map(|&v| v as f32).collect()
            } else if hi > lo {
                values
                    .iter()
                    .map(|&v| ((v - lo) / (hi - lo)) as f32)
                    .collect()
            } else {
                return Err(bad(format!(
                    "every sample is {lo}: the image holds no picture"
                )));
            };
            (data, if kind == SampleType::F32 { 32 } else { 64 })
        }
    };
    let pixels = GrayImage::from_vec(width, height, data)?;
    let meta = RadiographMeta::new(Format::Array, bit_depth, format!("{kind:?}"));
    Ok(Radiograph {
        path: path.to_path_buf(),
        pixels,
        meta,
    })
}

/// Recognises the container from its first bytes.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(Format::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if bytes.len() >= 132 && &bytes[128..132] == b"DICM" || bytes.starts_with(b"DICM") {
        Some(Format::Dicom)
    } else {
        None
    }
}

fn check_size(path: &Path, width: u64, height: u64) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            format: "image",
            detail: format!("empty image ({width}x{height})"),
        });
    }
    if width.saturating_mul(height) > MAX_MEGAPIXELS * 1_000_000 {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            width,
            height,
            limit_mp: MAX_MEGAPIXELS,
        });
    }
    Ok(())
}

/// A CSV field: quoted (inner quotes doubled) when it holds a comma, a quote or a
/// line break, as spreadsheets and CSV readers expect.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Creates a folder and its parents (nothing when it exists); the error names it.
pub fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Write {
        path: dir.to_path_buf(),
        detail: e.to_string(),
    })
}

/// Writes a file atomically: the content goes to a temporary file beside `path`,
/// which is renamed over `path` only when `write` succeeded. A failure leaves no
/// half-written file behind.
pub fn write_atomic<F>(path: &Path, write: F) -> Result<()>
where
    F: FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
{
    let fail = |e: std::io::Error| Error::Write {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| fail(std::io::Error::other("not a file path")))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut w = BufWriter::new(File::create(&tmp)?);
        write(&mut w)?;
        w.flush()?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_only_when_they_must_be() {
        assert_eq!(csv_field("thumb side"), "thumb side");
        assert_eq!(
            csv_field("the thumb, the fingertip"),
            "\"the thumb, the fingertip\""
        );
        assert_eq!(csv_field("a \"hand\""), "\"a \"\"hand\"\"\"");
    }
}
