//! Fixture builders shared by the tests.

use std::path::{Path, PathBuf};

use dicom_core::value::{PixelFragmentSequence, PrimitiveValue, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, FileMetaTableBuilder, InMemDicomObject};

/// `../shared/data/rsna` beside the repository, if present.
pub fn rsna_dir() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = here.join("../../../shared/data/rsna");
    dir.is_dir().then(|| dir.canonicalize().unwrap())
}

/// A DICOM image description for fixtures.
pub struct DicomSpec<'a> {
    pub rows: u16,
    pub cols: u16,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub photometric: &'a str,
    pub pixels_u16: Vec<u16>,
    pub rescale: Option<(f64, f64)>,
    pub window: Option<(f64, f64)>,
    pub spacing: Option<&'a str>,
    pub sex: Option<&'a str>,
    pub age: Option<&'a str>,
    pub birth_study: Option<(&'a str, &'a str)>,
    pub transfer_syntax: &'a str,
}

impl Default for DicomSpec<'_> {
    fn default() -> Self {
        Self {
            rows: 4,
            cols: 3,
            bits_allocated: 16,
            bits_stored: 12,
            photometric: "MONOCHROME2",
            pixels_u16: (0..12).map(|i| i * 300).collect(),
            rescale: None,
            window: None,
            spacing: None,
            sex: None,
            age: None,
            birth_study: None,
            transfer_syntax: "1.2.840.10008.1.2.1",
        }
    }
}

fn s(v: &str) -> PrimitiveValue {
    PrimitiveValue::from(v)
}

/// Builds a DICOM file object from a spec (uncompressed, or RLE when the transfer
/// syntax says so).
pub fn dicom_object(spec: &DicomSpec) -> DefaultDicomObject {
    let mut obj = InMemDicomObject::new_empty();
    let put = |obj: &mut InMemDicomObject, tag, vr, v: PrimitiveValue| {
        obj.put(DataElement::new(tag, vr, v));
    };
    put(
        &mut obj,
        tags::SOP_CLASS_UID,
        VR::UI,
        s("1.2.840.10008.5.1.4.1.1.1.1"),
    );
    put(
        &mut obj,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        s("1.2.826.0.1.3680043.2.1125.7"),
    );
    put(&mut obj, tags::MODALITY, VR::CS, s("DX"));
    put(
        &mut obj,
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(spec.rows),
    );
    put(
        &mut obj,
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(spec.cols),
    );
    put(
        &mut obj,
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    );
    put(
        &mut obj,
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(spec.bits_allocated),
    );
    put(
        &mut obj,
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(spec.bits_stored),
    );
    put(
        &mut obj,
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(spec.bits_stored - 1),
    );
    put(
        &mut obj,
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(0u16),
    );
    put(
        &mut obj,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        s(spec.photometric),
    );
    if let Some((slope, intercept)) = spec.rescale {
        put(&mut obj, tags::RESCALE_SLOPE, VR::DS, s(&slope.to_string()));
        put(
            &mut obj,
            tags::RESCALE_INTERCEPT,
            VR::DS,
            s(&intercept.to_string()),
        );
    }
    if let Some((c, w)) = spec.window {
        put(&mut obj, tags::WINDOW_CENTER, VR::DS, s(&c.to_string()));
        put(&mut obj, tags::WINDOW_WIDTH, VR::DS, s(&w.to_string()));
    }
    if let Some(sp) = spec.spacing {
        let parts: Vec<String> = sp.split('\\').map(String::from).collect();
        put(
            &mut obj,
            tags::IMAGER_PIXEL_SPACING,
            VR::DS,
            PrimitiveValue::Strs(parts.into()),
        );
    }
    if let Some(sex) = spec.sex {
        put(&mut obj, tags::PATIENT_SEX, VR::CS, s(sex));
    }
    if let Some(age) = spec.age {
        put(&mut obj, tags::PATIENT_AGE, VR::AS, s(age));
    }
    if let Some((birth, study)) = spec.birth_study {
        put(&mut obj, tags::PATIENT_BIRTH_DATE, VR::DA, s(birth));
        put(&mut obj, tags::STUDY_DATE, VR::DA, s(study));
    }
    let rle = spec.transfer_syntax == "1.2.840.10008.1.2.5";
    if rle {
        assert_eq!(
            spec.bits_allocated, 8,
            "the RLE fixture writer handles 8-bit only"
        );
        let bytes: Vec<u8> = spec.pixels_u16.iter().map(|&v| v as u8).collect();
        let frag = rle_encode_8bit(&bytes, spec.cols as usize);
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            Value::PixelSequence(PixelFragmentSequence::new(vec![], vec![frag])),
        ));
    } else if spec.bits_allocated == 8 {
        let bytes: Vec<u8> = spec.pixels_u16.iter().map(|&v| v as u8).collect();
        put(
            &mut obj,
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::U8(bytes.into()),
        );
    } else {
        put(
            &mut obj,
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(spec.pixels_u16.clone().into()),
        );
    }
    obj.with_meta(
        FileMetaTableBuilder::new()
            .transfer_syntax(spec.transfer_syntax)
            .media_storage_sop_class_uid("1.2.840.10008.5.1.4.1.1.1.1")
            .media_storage_sop_instance_uid("1.2.826.0.1.3680043.2.1125.7"),
    )
    .expect("valid file meta")
}

/// Writes a DICOM fixture file.
pub fn write_dicom(path: &Path, spec: &DicomSpec) {
    dicom_object(spec)
        .write_to_file(path)
        .expect("write DICOM fixture");
}

/// DICOM RLE Lossless of one 8-bit plane: a 64-byte header with one segment, then
/// PackBits literal runs, each row encoded on its own (PS3.5 Annex G).
fn rle_encode_8bit(bytes: &[u8], cols: usize) -> Vec<u8> {
    let mut seg = Vec::new();
    for row in bytes.chunks(cols) {
        for run in row.chunks(128) {
            seg.push((run.len() - 1) as u8);
            seg.extend_from_slice(run);
        }
    }
    if seg.len() % 2 == 1 {
        seg.push(0x80); // no-op padding byte
    }
    let mut out = Vec::with_capacity(64 + seg.len());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&64u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 56]);
    out.extend_from_slice(&seg);
    out
}
