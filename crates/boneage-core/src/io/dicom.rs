//! DICOM through dicom-rs (`dicom-object`, `dicom-pixeldata`).
//!
//! Pixel values go through the modality LUT (rescale slope/intercept), then the
//! first VOI window of the file if there is one (LINEAR, LINEAR_EXACT or SIGMOID),
//! otherwise a min-max normalisation; MONOCHROME1 is inverted so that bone is bright.

use std::borrow::Cow;
use std::io::Cursor;
use std::path::Path;

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, OpenFileOptions, file::ReadPreamble};
use dicom_pixeldata::{ConvertOptions, PixelDecoder, VoiLutFunction, VoiLutOption};

use super::{Format, RadiographMeta, check_size};
use crate::domain::Sex;
use crate::error::{Error, Result};
use crate::image::GrayImage;

const FORMAT: &str = "DICOM";

pub(super) fn decode(bytes: &[u8], path: &Path) -> Result<(GrayImage, RadiographMeta)> {
    let corrupt = |detail: String| Error::Corrupt {
        path: path.to_path_buf(),
        format: FORMAT,
        detail,
    };
    let unsupported = |detail: String| Error::Unsupported {
        path: path.to_path_buf(),
        format: FORMAT,
        detail,
    };
    // dicom-rs reserves an element's declared length before reading it: refuse
    // lengths the file cannot hold, so that a few hundred bytes cannot ask for
    // gigabytes (found by fuzzing).
    check_element_lengths(bytes).map_err(corrupt)?;
    let obj = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Auto)
        .from_reader(Cursor::new(bytes))
        .map_err(|e| corrupt(e.to_string()))?;

    // Everything checked before the pixels are touched.
    let rows = uint(&obj, tags::ROWS).ok_or_else(|| corrupt("no Rows attribute".into()))?;
    let cols = uint(&obj, tags::COLUMNS).ok_or_else(|| corrupt("no Columns attribute".into()))?;
    check_size(path, cols, rows)?;
    let photometric = string(&obj, tags::PHOTOMETRIC_INTERPRETATION)
        .ok_or_else(|| corrupt("no Photometric Interpretation attribute".into()))?;
    let inverted = match photometric.as_str() {
        "MONOCHROME1" => true,
        "MONOCHROME2" | "RGB" => false,
        other => return Err(unsupported(format!("photometric interpretation {other}"))),
    };
    let bits_allocated = uint(&obj, tags::BITS_ALLOCATED).unwrap_or(0);
    if !(bits_allocated == 8 || bits_allocated == 16) {
        return Err(unsupported(format!(
            "{bits_allocated} bits allocated (8 or 16 supported)"
        )));
    }
    let bits_stored = uint(&obj, tags::BITS_STORED).unwrap_or(bits_allocated) as u16;
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    if obj.element_opt(tags::PIXEL_DATA).ok().flatten().is_none() {
        return Err(corrupt("no Pixel Data".into()));
    }

    let decoded = obj.decode_pixel_data().map_err(|e| {
        let msg = e.to_string();
        if msg.to_lowercase().contains("unsupported")
            || msg.to_lowercase().contains("not supported")
        {
            unsupported(format!("transfer syntax {} ({ts}): {msg}", ts_name(&ts)))
        } else {
            corrupt(format!("pixel data ({}): {msg}", ts_name(&ts)))
        }
    })?;
    let (w, h) = (decoded.columns() as usize, decoded.rows() as usize);
    let samples = decoded.samples_per_pixel() as usize;
    let options = ConvertOptions::new().with_voi_lut(VoiLutOption::Identity);
    let values: Vec<f32> = decoded
        .to_vec_frame_with_options(0, &options)
        .map_err(|e| corrupt(format!("pixel data: {e}")))?;
    if values.len() < w * h * samples {
        return Err(corrupt(format!(
            "pixel data holds {} samples, {w}x{h}x{samples} expected",
            values.len()
        )));
    }
    let mut gray: Vec<f32> = if samples == 1 {
        values[..w * h].to_vec()
    } else {
        values
            .chunks_exact(samples)
            .take(w * h)
            .map(|p| 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2])
            .collect()
    };

    let window = decoded
        .window()
        .ok()
        .flatten()
        .and_then(|ws| ws.first().copied())
        .filter(|wl| wl.width > 0.0 && wl.width.is_finite() && wl.center.is_finite());
    let function = decoded
        .voi_lut_function()
        .ok()
        .flatten()
        .and_then(|f| f.first().copied())
        .unwrap_or_default();
    match window {
        Some(wl) => apply_window(&mut gray, wl.center, wl.width, function),
        None => normalize_min_max(&mut gray),
    }
    for v in gray.iter_mut() {
        // A NaN slope or intercept in a damaged header must not reach the pipeline.
        let x = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
        *v = if inverted { 1.0 - x } else { x };
    }

    let mut meta = RadiographMeta::new(Format::Dicom, bits_stored, photometric);
    meta.inverted = inverted;
    meta.window = window.map(|wl| (wl.center, wl.width));
    meta.pixel_spacing_mm =
        spacing(&obj, tags::PIXEL_SPACING).or_else(|| spacing(&obj, tags::IMAGER_PIXEL_SPACING));
    meta.sex = string(&obj, tags::PATIENT_SEX).and_then(|s| match s.as_str() {
        "M" => Some(Sex::Male),
        "F" => Some(Sex::Female),
        _ => None,
    });
    meta.age_months = string(&obj, tags::PATIENT_AGE)
        .and_then(|a| parse_age_string(&a))
        .or_else(|| {
            let birth = parse_date(&string(&obj, tags::PATIENT_BIRTH_DATE)?)?;
            let study = string(&obj, tags::STUDY_DATE)
                .or_else(|| string(&obj, tags::ACQUISITION_DATE))
                .or_else(|| string(&obj, tags::CONTENT_DATE))?;
            months_between(birth, parse_date(&study)?)
        });
    meta.instance_id = string(&obj, tags::SOP_INSTANCE_UID);
    meta.source = Some(super::DicomSource {
        study_uid: string(&obj, tags::STUDY_INSTANCE_UID),
        series_uid: string(&obj, tags::SERIES_INSTANCE_UID),
        sop_class_uid: string(&obj, tags::SOP_CLASS_UID),
        sop_instance_uid: string(&obj, tags::SOP_INSTANCE_UID),
        study_date: string(&obj, tags::STUDY_DATE),
        study_time: string(&obj, tags::STUDY_TIME),
        accession_number: string(&obj, tags::ACCESSION_NUMBER),
        study_id: string(&obj, tags::STUDY_ID),
    });
    let img = GrayImage::from_vec(w, h, gray).map_err(|e| corrupt(e.to_string()))?;
    Ok((img, meta))
}

/// Walks the element headers of a DICOM file (the meta group, then the data set in
/// its transfer syntax) and checks that no defined value length runs past the end
/// of the bytes. Sequences and items are entered rather than skipped, so nested
/// elements are checked too. Deflated data sets are left to dicom-rs.
fn check_element_lengths(bytes: &[u8]) -> Result<(), String> {
    const UNDEFINED: u32 = 0xFFFF_FFFF;
    const LONG_VRS: [&[u8; 2]; 13] = [
        b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV",
    ];
    let mut pos = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        132
    } else if bytes.starts_with(b"DICM") {
        4
    } else {
        0
    };
    let (mut explicit, mut big_endian, mut in_meta) = (true, false, true);
    // Inside encapsulated pixel data, items are fragments of raw bytes, not elements.
    let mut in_fragments = false;
    while pos + 8 <= bytes.len() {
        if in_meta && u16::from_le_bytes([bytes[pos], bytes[pos + 1]]) != 0x0002 {
            // The meta group is over: switch to the data set's encoding.
            in_meta = false;
            match meta_transfer_syntax(bytes).as_deref() {
                Some("1.2.840.10008.1.2") => explicit = false,
                Some("1.2.840.10008.1.2.2") => big_endian = true,
                Some("1.2.840.10008.1.2.1.99") => return Ok(()),
                _ => {}
            }
            continue;
        }
        let be = big_endian && !in_meta;
        let u16_at = |i: usize| {
            let b = [bytes[i], bytes[i + 1]];
            if be {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }
        };
        let u32_at = |i: usize| -> Result<u32, String> {
            let b: [u8; 4] = bytes
                .get(i..i + 4)
                .and_then(|s| s.try_into().ok())
                .ok_or_else(|| "truncated element header".to_string())?;
            Ok(if be {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            })
        };
        let (group, element) = (u16_at(pos), u16_at(pos + 2));
        // (length, header size, whether the value holds more elements to walk)
        let (len, header, nested) = if group == 0xFFFE {
            // Items and delimiters: a tag and a 4-byte length, no VR.
            if element == 0xE0DD {
                in_fragments = false;
            }
            (u32_at(pos + 4)?, 8, element == 0xE000 && !in_fragments)
        } else if explicit || in_meta {
            let vr = [bytes[pos + 4], bytes[pos + 5]];
            if LONG_VRS.contains(&&vr) {
                let len = u32_at(pos + 8)?;
                let sequence = &vr == b"SQ";
                in_fragments |= len == UNDEFINED && !sequence;
                (len, 12, sequence || len == UNDEFINED)
            } else {
                (u16_at(pos + 6) as u32, 8, false)
            }
        } else {
            let len = u32_at(pos + 4)?;
            in_fragments |= len == UNDEFINED && (group, element) == (0x7FE0, 0x0010);
            (len, 8, len == UNDEFINED)
        };
        pos += header;
        if nested || len == UNDEFINED {
            continue;
        }
        let remaining = bytes.len().saturating_sub(pos);
        if len as usize > remaining {
            return Err(format!(
                "element ({group:04X},{element:04X}) declares {len} bytes but only {remaining} remain"
            ));
        }
        pos += len as usize;
    }
    Ok(())
}

/// The Transfer Syntax UID of the meta group, read directly from the bytes.
fn meta_transfer_syntax(bytes: &[u8]) -> Option<String> {
    let start = bytes
        .windows(4)
        .position(|w| w == [0x02, 0x00, 0x10, 0x00])?;
    let len = u16::from_le_bytes([*bytes.get(start + 6)?, *bytes.get(start + 7)?]) as usize;
    let v = bytes.get(start + 8..start + 8 + len)?;
    Some(
        String::from_utf8_lossy(v)
            .trim_end_matches(['\0', ' '])
            .to_string(),
    )
}

fn string(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<String> {
    let e = obj.element_opt(tag).ok().flatten()?;
    let s: Cow<str> = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

fn uint(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<u64> {
    let e = obj.element_opt(tag).ok().flatten()?;
    e.to_int::<u64>().ok()
}

fn spacing(obj: &DefaultDicomObject, tag: dicom_core::Tag) -> Option<(f64, f64)> {
    let e = obj.element_opt(tag).ok().flatten()?;
    let v = e.to_multi_float64().ok()?;
    match v.as_slice() {
        [r, c, ..] if *r > 0.0 && *c > 0.0 && r.is_finite() && c.is_finite() => Some((*r, *c)),
        [s] if *s > 0.0 && s.is_finite() => Some((*s, *s)),
        _ => None,
    }
}

/// DICOM window/level on modality values, to `[0, 1]` (PS3.3 C.11.2.1.2).
pub(crate) fn apply_window(values: &mut [f32], center: f64, width: f64, function: VoiLutFunction) {
    let (c, w) = (center, width);
    for v in values.iter_mut() {
        let x = *v as f64;
        let y = match function {
            VoiLutFunction::Linear => {
                let w1 = (w - 1.0).max(1e-6);
                if x <= c - 0.5 - w1 / 2.0 {
                    0.0
                } else if x > c - 0.5 + w1 / 2.0 {
                    1.0
                } else {
                    (x - (c - 0.5)) / w1 + 0.5
                }
            }
            VoiLutFunction::LinearExact => ((x - c) / w + 0.5).clamp(0.0, 1.0),
            VoiLutFunction::Sigmoid => 1.0 / (1.0 + (-4.0 * (x - c) / w).exp()),
        };
        *v = y as f32;
    }
}

fn normalize_min_max(values: &mut [f32]) {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let range = hi - lo;
    if !(range > 0.0 && range.is_finite()) {
        values.iter_mut().for_each(|v| *v = 0.0);
        return;
    }
    values.iter_mut().for_each(|v| *v = (*v - lo) / range);
}

/// Parses a DICOM Age String such as `"012Y"`, `"006M"`, `"030W"`, `"100D"` into months.
pub fn parse_age_string(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.len() < 2 {
        return None;
    }
    let (num, unit) = s.split_at(s.len() - 1);
    let n: f64 = num.trim().parse().ok()?;
    let months = match unit {
        "Y" | "y" => n * 12.0,
        "M" | "m" => n,
        "W" | "w" => n * 7.0 / DAYS_PER_MONTH,
        "D" | "d" => n / DAYS_PER_MONTH,
        _ => return None,
    };
    (months >= 0.0 && months.is_finite()).then_some(months)
}

const DAYS_PER_MONTH: f64 = 365.25 / 12.0;

/// A calendar date as (year, month, day).
pub type Date = (i32, u32, u32);

/// Parses DICOM `YYYYMMDD` (also accepting `YYYY-MM-DD` and `YYYY.MM.DD`).
pub fn parse_date(s: &str) -> Option<Date> {
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() != 8 {
        return None;
    }
    let y: i32 = digits[0..4].parse().ok()?;
    let m: u32 = digits[4..6].parse().ok()?;
    let d: u32 = digits[6..8].parse().ok()?;
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some((y, m, d))
}

/// Whole and fractional months from `from` to `to`; `None` if `to` is earlier.
pub fn months_between(from: Date, to: Date) -> Option<f64> {
    let months = (to.0 - from.0) as f64 * 12.0
        + (to.1 as f64 - from.1 as f64)
        + (to.2 as f64 - from.2 as f64) / DAYS_PER_MONTH;
    (months >= 0.0).then_some(months)
}

fn ts_name(uid: &str) -> &'static str {
    match uid {
        "1.2.840.10008.1.2" => "Implicit VR Little Endian",
        "1.2.840.10008.1.2.1" => "Explicit VR Little Endian",
        "1.2.840.10008.1.2.1.99" => "Deflated Explicit VR Little Endian",
        "1.2.840.10008.1.2.2" => "Explicit VR Big Endian",
        "1.2.840.10008.1.2.4.50" => "JPEG Baseline",
        "1.2.840.10008.1.2.4.51" => "JPEG Extended",
        "1.2.840.10008.1.2.4.57" => "JPEG Lossless",
        "1.2.840.10008.1.2.4.70" => "JPEG Lossless SV1",
        "1.2.840.10008.1.2.4.80" => "JPEG-LS Lossless",
        "1.2.840.10008.1.2.4.81" => "JPEG-LS Near-Lossless",
        "1.2.840.10008.1.2.4.90" => "JPEG 2000 Lossless",
        "1.2.840.10008.1.2.4.91" => "JPEG 2000",
        "1.2.840.10008.1.2.5" => "RLE Lossless",
        _ => "unknown transfer syntax",
    }
}
