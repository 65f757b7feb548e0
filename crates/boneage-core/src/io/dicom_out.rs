//! A bone age as DICOM, for PACS: a Comprehensive Structured Report with the
//! measured values, and a Secondary Capture of the evidence picture. Both are placed
//! in the input film's study and reference it when the film was DICOM; otherwise
//! they open a study of their own.
//!
//! No patient name, ID or birth date is written (the service never keeps them): a
//! PACS files the objects by their Study Instance UID. The concepts without a
//! standard code (bone age and its interval, the SDS) use the local coding scheme
//! `99BONEAGE`; the algorithm's name and version use DCM 111001 and 111003.
//! Every series description says "not for diagnostic use".

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use sha2::{Digest, Sha256};

use super::DicomSource;
use crate::domain::Sex;
use crate::error::{Error, Result};

/// Comprehensive SR Storage.
pub const COMPREHENSIVE_SR: &str = "1.2.840.10008.5.1.4.1.1.88.33";
/// Secondary Capture Image Storage.
pub const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// What goes into the DICOM objects of one assessment.
#[derive(Clone, Debug)]
pub struct BoneAgeResult<'a> {
    /// The input film's place, when it was DICOM.
    pub source: Option<&'a DicomSource>,
    /// Patient sex.
    pub sex: Sex,
    /// The bone age, months.
    pub bone_age_months: f64,
    /// The 90 % interval, months (low, high).
    pub interval: Option<(f64, f64)>,
    /// Chronological age, months.
    pub chronological_months: Option<f64>,
    /// Greulich–Pyle/Brush standard deviation score.
    pub sds: Option<f64>,
    /// delayed / normal / advanced.
    pub verdict: Option<&'a str>,
    /// Each region's estimate: (name, months).
    pub regions: Vec<(String, f64)>,
    /// What the reader must know before relying on the age (a film with too few
    /// pixels for its hand, ...), each a sentence; written as "Warning" items.
    pub warnings: Vec<String>,
    /// The software's version.
    pub version: &'a str,
    /// When the assessment was made, RFC 3339 UTC (`2026-11-30T08:22:34.689Z`).
    pub created: &'a str,
    /// A string unique to the assessment (its id and input hash): the new UIDs are
    /// derived from it, so the same assessment always gives the same objects.
    pub uid_seed: &'a str,
}

/// A UID under the `2.25` root (ISO/IEC 9834-8: a 128-bit number as decimal),
/// derived from `seed` and `what`.
pub fn derived_uid(seed: &str, what: &str) -> String {
    let h = Sha256::digest(format!("boneage/{seed}/{what}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    format!("2.25.{}", u128::from_be_bytes(b))
}

fn put(obj: &mut InMemDicomObject, tag: dicom_core::Tag, vr: VR, value: &str) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
}

fn seq(obj: &mut InMemDicomObject, tag: dicom_core::Tag, items: Vec<InMemDicomObject>) {
    obj.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
}

fn code(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    let mut c = InMemDicomObject::new_empty();
    put(&mut c, tags::CODE_VALUE, VR::SH, value);
    put(&mut c, tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme);
    put(&mut c, tags::CODE_MEANING, VR::LO, meaning);
    c
}

/// `YYYYMMDD` and `HHMMSS` of an RFC 3339 time.
fn date_time(created: &str) -> (String, String) {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let (d, t) = created.split_once('T').unwrap_or((created, ""));
    let mut t = digits(t.split('.').next().unwrap_or(""));
    t.truncate(6);
    (digits(d), t)
}

/// Patient, General Study, General Equipment and SOP Common: what both objects share.
fn common(r: &BoneAgeResult<'_>, sop_class: &str, sop_instance: &str) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let src = r.source.cloned().unwrap_or_default();
    let (date, time) = date_time(r.created);
    put(&mut o, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
    put(&mut o, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put(&mut o, tags::SOP_INSTANCE_UID, VR::UI, sop_instance);
    put(&mut o, tags::INSTANCE_CREATION_DATE, VR::DA, &date);
    put(&mut o, tags::INSTANCE_CREATION_TIME, VR::TM, &time);
    // Patient: identifiers left empty (type 2); the sex is the assessment's.
    put(&mut o, tags::PATIENT_NAME, VR::PN, "");
    put(&mut o, tags::PATIENT_ID, VR::LO, "");
    put(&mut o, tags::PATIENT_BIRTH_DATE, VR::DA, "");
    put(&mut o, tags::PATIENT_SEX, VR::CS, r.sex.letter());
    // General Study: the input's, else one of its own.
    let study = src
        .study_uid
        .clone()
        .unwrap_or_else(|| derived_uid(r.uid_seed, "study"));
    put(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, &study);
    put(
        &mut o,
        tags::STUDY_DATE,
        VR::DA,
        src.study_date.as_deref().unwrap_or(&date),
    );
    put(
        &mut o,
        tags::STUDY_TIME,
        VR::TM,
        src.study_time.as_deref().unwrap_or(&time),
    );
    put(&mut o, tags::REFERRING_PHYSICIAN_NAME, VR::PN, "");
    put(
        &mut o,
        tags::STUDY_ID,
        VR::SH,
        src.study_id.as_deref().unwrap_or(""),
    );
    put(
        &mut o,
        tags::ACCESSION_NUMBER,
        VR::SH,
        src.accession_number.as_deref().unwrap_or(""),
    );
    // General Equipment.
    put(&mut o, tags::MANUFACTURER, VR::LO, "boneage (open source)");
    put(&mut o, tags::MANUFACTURER_MODEL_NAME, VR::LO, "boneage");
    put(&mut o, tags::SOFTWARE_VERSIONS, VR::LO, r.version);
    o
}

/// The input film as a reference item (Referenced SOP Class / Instance UID).
fn sop_reference(src: &DicomSource) -> Option<InMemDicomObject> {
    let mut i = InMemDicomObject::new_empty();
    put(
        &mut i,
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        src.sop_class_uid.as_deref()?,
    );
    put(
        &mut i,
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        src.sop_instance_uid.as_deref()?,
    );
    Some(i)
}

fn to_bytes(obj: InMemDicomObject, sop_class: &str, sop_instance: &str) -> Result<Vec<u8>> {
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(EXPLICIT_VR_LE)
                .media_storage_sop_class_uid(sop_class)
                .media_storage_sop_instance_uid(sop_instance)
                .implementation_class_uid(derived_uid("implementation", "boneage"))
                .implementation_version_name("BONEAGE"),
        )
        .map_err(|e| Error::Encode(format!("DICOM file meta: {e}")))?;
    let mut out = Vec::new();
    file.write_all(&mut out)
        .map_err(|e| Error::Encode(format!("writing DICOM: {e}")))?;
    Ok(out)
}

/// A content item of the SR tree: `relationship` to its parent, a concept name, and
/// its value elements (added by the caller).
fn item(relationship: &str, value_type: &str, concept: InMemDicomObject) -> InMemDicomObject {
    let mut i = InMemDicomObject::new_empty();
    put(&mut i, tags::RELATIONSHIP_TYPE, VR::CS, relationship);
    put(&mut i, tags::VALUE_TYPE, VR::CS, value_type);
    seq(&mut i, tags::CONCEPT_NAME_CODE_SEQUENCE, vec![concept]);
    i
}

fn text(concept: InMemDicomObject, value: &str) -> InMemDicomObject {
    let mut i = item("CONTAINS", "TEXT", concept);
    put(&mut i, tags::TEXT_VALUE, VR::UT, value);
    i
}

fn num(concept: InMemDicomObject, value: f64, unit: InMemDicomObject) -> InMemDicomObject {
    let mut i = item("CONTAINS", "NUM", concept);
    let mut m = InMemDicomObject::new_empty();
    put(&mut m, tags::NUMERIC_VALUE, VR::DS, &format!("{value:.2}"));
    seq(&mut m, tags::MEASUREMENT_UNITS_CODE_SEQUENCE, vec![unit]);
    seq(&mut i, tags::MEASURED_VALUE_SEQUENCE, vec![m]);
    i
}

const LOCAL: &str = "99BONEAGE";

/// The Comprehensive SR of an assessment, as a DICOM file's bytes.
pub fn structured_report(r: &BoneAgeResult<'_>) -> Result<Vec<u8>> {
    let instance = derived_uid(r.uid_seed, "sr");
    let mut o = common(r, COMPREHENSIVE_SR, &instance);
    let (date, time) = date_time(r.created);
    // SR Document Series.
    put(&mut o, tags::MODALITY, VR::CS, "SR");
    put(
        &mut o,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &derived_uid(r.uid_seed, "sr-series"),
    );
    put(&mut o, tags::SERIES_NUMBER, VR::IS, "9901");
    put(
        &mut o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "boneage bone age - not for diagnostic use",
    );
    seq(
        &mut o,
        tags::REFERENCED_PERFORMED_PROCEDURE_STEP_SEQUENCE,
        vec![],
    );
    // SR Document General.
    put(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(&mut o, tags::COMPLETION_FLAG, VR::CS, "COMPLETE");
    put(&mut o, tags::VERIFICATION_FLAG, VR::CS, "UNVERIFIED");
    put(&mut o, tags::CONTENT_DATE, VR::DA, &date);
    put(&mut o, tags::CONTENT_TIME, VR::TM, &time);
    seq(&mut o, tags::PERFORMED_PROCEDURE_CODE_SEQUENCE, vec![]);
    if let Some(src) = r.source
        && let (Some(study), Some(series), Some(sop)) =
            (&src.study_uid, &src.series_uid, sop_reference(src))
    {
        let mut s = InMemDicomObject::new_empty();
        put(&mut s, tags::SERIES_INSTANCE_UID, VR::UI, series);
        seq(&mut s, tags::REFERENCED_SOP_SEQUENCE, vec![sop]);
        let mut st = InMemDicomObject::new_empty();
        put(&mut st, tags::STUDY_INSTANCE_UID, VR::UI, study);
        seq(&mut st, tags::REFERENCED_SERIES_SEQUENCE, vec![s]);
        seq(
            &mut o,
            tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE,
            vec![st],
        );
    }
    // SR Document Content: the root container and its items.
    put(&mut o, tags::VALUE_TYPE, VR::CS, "CONTAINER");
    seq(
        &mut o,
        tags::CONCEPT_NAME_CODE_SEQUENCE,
        vec![code("BA-0", LOCAL, "Bone age assessment")],
    );
    put(&mut o, tags::CONTINUITY_OF_CONTENT, VR::CS, "SEPARATE");
    let months = || code("mo", "UCUM", "month");
    let mut items = vec![
        text(
            code("111001", "DCM", "Algorithm Name"),
            "boneage (Iglovikov et al. 2018)",
        ),
        text(code("111003", "DCM", "Algorithm Version"), r.version),
        num(code("BA-1", LOCAL, "Bone age"), r.bone_age_months, months()),
    ];
    if let Some((low, high)) = r.interval {
        items.push(num(
            code("BA-2", LOCAL, "Bone age 90% interval, lower"),
            low,
            months(),
        ));
        items.push(num(
            code("BA-3", LOCAL, "Bone age 90% interval, upper"),
            high,
            months(),
        ));
    }
    for (name, m) in &r.regions {
        items.push(num(
            code("BA-4", LOCAL, &format!("Bone age of region {name}")),
            *m,
            months(),
        ));
    }
    if let Some(c) = r.chronological_months {
        items.push(num(code("BA-5", LOCAL, "Chronological age"), c, months()));
    }
    if let Some(s) = r.sds {
        items.push(num(
            code(
                "BA-6",
                LOCAL,
                "Bone age standard deviation score (Greulich-Pyle, Brush)",
            ),
            s,
            code("1", "UCUM", "no units"),
        ));
    }
    if let Some(v) = r.verdict {
        items.push(text(
            code("BA-7", LOCAL, "Bone age against chronological age"),
            v,
        ));
    }
    for w in &r.warnings {
        items.push(text(code("BA-8", LOCAL, "Warning"), w));
    }
    items.push(text(
        code("121106", "DCM", "Comment"),
        "Research software, not for diagnostic use. Greulich-Pyle scale; the interval is measured out of fold.",
    ));
    seq(&mut o, tags::CONTENT_SEQUENCE, items);
    to_bytes(o, COMPREHENSIVE_SR, &instance)
}

/// The meaning of a content item's concept name, as [`structured_report`] writes it
/// ("Bone age", "Warning"); `None` for an item without one.
pub fn concept_meaning(item: &InMemDicomObject) -> Option<String> {
    let code = item
        .element(tags::CONCEPT_NAME_CODE_SEQUENCE)
        .ok()?
        .items()?
        .first()?;
    let meaning = code.element(tags::CODE_MEANING).ok()?.to_str().ok()?;
    Some(meaning.trim_end_matches(['\0', ' ']).trim().to_string())
}

/// The Secondary Capture of the evidence picture (8-bit RGB, `width × height`,
/// row-major), as a DICOM file's bytes.
pub fn secondary_capture(
    r: &BoneAgeResult<'_>,
    rgb: &[u8],
    width: u32,
    height: u32,
) -> Result<Vec<u8>> {
    if rgb.len() != (width * height * 3) as usize
        || width > u16::MAX as u32
        || height > u16::MAX as u32
    {
        return Err(Error::Encode(format!(
            "a {width}×{height} RGB picture needs {} bytes, got {}",
            width * height * 3,
            rgb.len()
        )));
    }
    let instance = derived_uid(r.uid_seed, "sc");
    let mut o = common(r, SECONDARY_CAPTURE, &instance);
    let (date, time) = date_time(r.created);
    // General Series.
    put(&mut o, tags::MODALITY, VR::CS, "OT");
    put(
        &mut o,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        &derived_uid(r.uid_seed, "sc-series"),
    );
    put(&mut o, tags::SERIES_NUMBER, VR::IS, "9902");
    put(
        &mut o,
        tags::SERIES_DESCRIPTION,
        VR::LO,
        "boneage evidence - not for diagnostic use",
    );
    // Type 2C, unknown here: the film may show either hand (a right one is mirrored).
    put(&mut o, tags::LATERALITY, VR::CS, "");
    // SC Equipment: made on a workstation.
    put(&mut o, tags::CONVERSION_TYPE, VR::CS, "WSD");
    // General Image.
    put(&mut o, tags::INSTANCE_NUMBER, VR::IS, "1");
    put(&mut o, tags::PATIENT_ORIENTATION, VR::CS, "");
    put(&mut o, tags::CONTENT_DATE, VR::DA, &date);
    put(&mut o, tags::CONTENT_TIME, VR::TM, &time);
    put(&mut o, tags::BURNED_IN_ANNOTATION, VR::CS, "YES");
    put(&mut o, tags::LOSSY_IMAGE_COMPRESSION, VR::CS, "00");
    put(&mut o, tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY");
    if let Some(sop) = r.source.and_then(sop_reference) {
        seq(&mut o, tags::SOURCE_IMAGE_SEQUENCE, vec![sop]);
    }
    // SC Image.
    put(&mut o, tags::DATE_OF_SECONDARY_CAPTURE, VR::DA, &date);
    put(&mut o, tags::TIME_OF_SECONDARY_CAPTURE, VR::TM, &time);
    // Image Pixel.
    let us = |o: &mut InMemDicomObject, tag, v: u16| {
        o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
    };
    us(&mut o, tags::SAMPLES_PER_PIXEL, 3);
    put(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "RGB");
    us(&mut o, tags::PLANAR_CONFIGURATION, 0);
    us(&mut o, tags::ROWS, height as u16);
    us(&mut o, tags::COLUMNS, width as u16);
    us(&mut o, tags::BITS_ALLOCATED, 8);
    us(&mut o, tags::BITS_STORED, 8);
    us(&mut o, tags::HIGH_BIT, 7);
    us(&mut o, tags::PIXEL_REPRESENTATION, 0);
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        PrimitiveValue::U8(rgb.to_vec().into()),
    ));
    to_bytes(o, SECONDARY_CAPTURE, &instance)
}

/// What `dciodvfy` (David Clunie's DICOM validator, Debian's `dicom3tools`) says of a
/// file: `None` when it is not installed, else its report and whether any line is an
/// error (warnings are allowed).
pub fn dciodvfy(path: &std::path::Path) -> Option<(bool, String)> {
    let out = std::process::Command::new("dciodvfy")
        .arg(path)
        .output()
        .ok()?;
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let clean = !report.lines().any(|l| l.starts_with("Error"));
    Some((clean, report))
}
