//! DICOM reading: photometric interpretations, rescale, window, metadata,
//! transfer syntaxes, and refusals.

use boneage_core::Error;
use boneage_core::Sex;
use boneage_core::io::{Format, read_radiograph};
use dicom_pixeldata::Transcode;

use crate::util::{DicomSpec, dicom_object, write_dicom};

fn read(spec: &DicomSpec) -> boneage_core::Radiograph {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.dcm");
    write_dicom(&path, spec);
    read_radiograph(&path).unwrap()
}

#[test]
fn monochrome2_min_max_normalised() {
    let r = read(&DicomSpec::default());
    assert_eq!(r.meta.format, Format::Dicom);
    assert_eq!((r.pixels.width(), r.pixels.height()), (3, 4));
    assert_eq!(r.meta.bit_depth, 12);
    assert_eq!(r.meta.photometric, "MONOCHROME2");
    assert!(!r.meta.inverted);
    let px = r.pixels.as_slice();
    assert_eq!(px[0], 0.0);
    assert_eq!(px[11], 1.0);
    // Linear in between: value i*300 over a range of 3300.
    assert!((px[5] - 5.0 / 11.0).abs() < 1e-6);
}

#[test]
fn monochrome1_is_inverted_so_bone_is_bright() {
    let r = read(&DicomSpec {
        photometric: "MONOCHROME1",
        ..DicomSpec::default()
    });
    assert!(r.meta.inverted);
    let px = r.pixels.as_slice();
    assert_eq!(
        px[0], 1.0,
        "lowest stored value is brightest in MONOCHROME1"
    );
    assert_eq!(px[11], 0.0);
}

#[test]
fn window_applies_to_rescaled_values() {
    // Stored 0..3300, rescaled by 2x - 1000 -> -1000..5600. A LINEAR window of
    // centre 2000.5, width 2001 maps [1000, 3000] onto [0, 1] exactly.
    let r = read(&DicomSpec {
        rescale: Some((2.0, -1000.0)),
        window: Some((2000.5, 2001.0)),
        ..DicomSpec::default()
    });
    assert_eq!(r.meta.window, Some((2000.5, 2001.0)));
    let px = r.pixels.as_slice();
    for (i, &v) in px.iter().enumerate() {
        let hu = 2.0 * (i as f64 * 300.0) - 1000.0;
        let expected = ((hu - 1000.0) / 2000.0).clamp(0.0, 1.0);
        assert!(
            (v as f64 - expected).abs() < 1e-4,
            "pixel {i}: {v} vs {expected}"
        );
    }
}

#[test]
fn eight_bit_and_metadata() {
    let r = read(&DicomSpec {
        bits_allocated: 8,
        bits_stored: 8,
        pixels_u16: (0..12).map(|i| i * 20).collect(),
        spacing: Some("0.143\\0.139"),
        sex: Some("F"),
        age: Some("010Y"),
        ..DicomSpec::default()
    });
    assert_eq!(r.meta.bit_depth, 8);
    assert_eq!(r.meta.pixel_spacing_mm, Some((0.143, 0.139)));
    assert_eq!(r.meta.sex, Some(Sex::Female));
    assert_eq!(r.meta.age_months, Some(120.0));
    assert_eq!(
        r.meta.instance_id.as_deref(),
        Some("1.2.826.0.1.3680043.2.1125.7")
    );
}

#[test]
fn age_from_birth_and_study_dates() {
    let r = read(&DicomSpec {
        sex: Some("M"),
        birth_study: Some(("20100315", "20200915")),
        ..DicomSpec::default()
    });
    assert_eq!(r.meta.sex, Some(Sex::Male));
    let months = r.meta.age_months.unwrap();
    assert!((months - 126.0).abs() < 0.01, "{months}");
}

#[test]
fn transfer_syntaxes_decode_to_the_same_pixels() {
    let base = DicomSpec {
        bits_allocated: 8,
        bits_stored: 8,
        rows: 16,
        cols: 16,
        pixels_u16: (0..256).map(|i| (i % 16 * 16 + i / 16) as u16).collect(),
        ..DicomSpec::default()
    };
    let reference = read(&base).pixels;
    for (ts, name) in [
        ("1.2.840.10008.1.2", "implicit VR little endian"),
        ("1.2.840.10008.1.2.1", "explicit VR little endian"),
        ("1.2.840.10008.1.2.5", "RLE lossless"),
    ] {
        let r = read(&DicomSpec {
            transfer_syntax: ts,
            pixels_u16: base.pixels_u16.clone(),
            ..base
        });
        assert_eq!(r.pixels, reference, "{name}");
    }
    // Deflated explicit VR little endian and JPEG baseline, written by dicom-rs's own
    // transcoder. JPEG is lossy: compare loosely.
    let dir = tempfile::tempdir().unwrap();
    use dicom_transfer_syntax_registry::entries;
    for (ts, tol) in [
        (entries::JPEG_BASELINE.erased(), 0.08),
        (entries::DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN.erased(), 0.0),
    ] {
        let mut obj = dicom_object(&DicomSpec {
            pixels_u16: base.pixels_u16.clone(),
            ..base
        });
        obj.transcode(&ts)
            .unwrap_or_else(|e| panic!("transcode to {}: {e}", ts.name()));
        let path = dir.path().join("t.dcm");
        obj.write_to_file(&path).unwrap();
        let r = read_radiograph(&path).unwrap_or_else(|e| panic!("{}: {e}", ts.name()));
        let max_err = r
            .pixels
            .as_slice()
            .iter()
            .zip(reference.as_slice())
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max_err <= tol as f32, "{}: max error {max_err}", ts.name());
    }
}

#[test]
fn unsupported_photometric_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("palette.dcm");
    write_dicom(
        &path,
        &DicomSpec {
            photometric: "PALETTE COLOR",
            ..DicomSpec::default()
        },
    );
    let err = read_radiograph(&path).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("palette.dcm") && msg.contains("PALETTE COLOR"),
        "{msg}"
    );
}

#[test]
fn truncated_dicom_is_corrupt_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.dcm");
    write_dicom(&path, &DicomSpec::default());
    let bytes = std::fs::read(&path).unwrap();
    for cut in [140, 200, bytes.len() / 2, bytes.len() - 7] {
        let p = dir.path().join(format!("cut{cut}.dcm"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = read_radiograph(&p).unwrap_err();
        assert!(err.to_string().contains(&format!("cut{cut}.dcm")), "{err}");
    }
}

#[test]
fn absurd_size_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.dcm");
    // 65535 x 65535 announced, 12 pixels present.
    write_dicom(
        &path,
        &DicomSpec {
            rows: 65535,
            cols: 65535,
            ..DicomSpec::default()
        },
    );
    let err = read_radiograph(&path).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err:?}");
}

#[test]
fn declared_lengths_beyond_the_file_are_refused_before_allocation() {
    // Found by fuzzing: dicom-rs reserves an element's declared length up front, so
    // a tiny file that declares gigabytes must be refused first.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ok.dcm");
    write_dicom(&path, &DicomSpec::default());
    let mut bytes = std::fs::read(&path).unwrap();
    let tag = [0xE0u8, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0];
    let at = bytes
        .windows(8)
        .position(|w| w == tag)
        .expect("pixel data header");
    bytes[at + 8..at + 12].copy_from_slice(&0xEFFF_FFF0u32.to_le_bytes());
    let bad = dir.path().join("greedy.dcm");
    std::fs::write(&bad, &bytes).unwrap();
    let err = read_radiograph(&bad).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("greedy.dcm") && msg.contains("(7FE0,0010) declares 4026531824 bytes"),
        "{msg}"
    );
}

/// A bone age as DICOM: the Structured Report and the Secondary Capture read back
/// with their values and the input's study, series and instance referenced; and
/// `dciodvfy` (Debian's dicom3tools), when installed, reports no error.
#[test]
fn results_are_written_as_sr_and_secondary_capture_that_reference_the_input() {
    use boneage_core::io::dicom_out::{
        BoneAgeResult, concept_meaning, secondary_capture, structured_report,
    };
    use dicom_dictionary_std::tags;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("in.dcm");
    let mut obj = dicom_object(&DicomSpec::default());
    for (tag, uid) in [
        (tags::STUDY_INSTANCE_UID, "1.2.826.0.1.3680043.2.1125.1"),
        (tags::SERIES_INSTANCE_UID, "1.2.826.0.1.3680043.2.1125.2"),
    ] {
        obj.put(dicom_core::DataElement::new(
            tag,
            dicom_core::VR::UI,
            dicom_core::PrimitiveValue::from(uid),
        ));
    }
    obj.write_to_file(&path).unwrap();
    let input = read_radiograph(&path).unwrap();
    let source = input.meta.source.clone().expect("a DICOM film's place");
    assert!(source.sop_instance_uid.is_some());
    let result = BoneAgeResult {
        source: Some(&source),
        sex: Sex::Female,
        bone_age_months: 123.456,
        interval: Some((110.0, 137.5)),
        chronological_months: Some(120.0),
        sds: Some(0.31),
        verdict: Some("normal"),
        regions: vec![("A".into(), 125.0), ("B".into(), 119.0)],
        warnings: vec!["low resolution: the hand spans 187 px".into()],
        version: "0.1.0",
        created: "2026-11-30T08:22:34.689Z",
        uid_seed: "7/abc",
    };
    let open = |bytes: &[u8], name: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        (p.clone(), dicom_object::open_file(&p).unwrap())
    };
    let text = |o: &dicom_object::DefaultDicomObject, tag| {
        o.element(tag)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_string()
    };
    let (sr_path, sr) = open(&structured_report(&result).unwrap(), "sr.dcm");
    assert_eq!(
        text(&sr, tags::SOP_CLASS_UID),
        "1.2.840.10008.5.1.4.1.1.88.33"
    );
    assert_eq!(text(&sr, tags::MODALITY), "SR");
    assert!(text(&sr, tags::SERIES_DESCRIPTION).contains("not for diagnostic use"));
    assert_eq!(
        text(&sr, tags::PATIENT_NAME),
        "",
        "no patient identifier is written"
    );
    assert_eq!(
        text(&sr, tags::STUDY_INSTANCE_UID),
        "1.2.826.0.1.3680043.2.1125.1",
        "placed in the input's study"
    );
    let items = sr.element(tags::CONTENT_SEQUENCE).unwrap().items().unwrap();
    let named = |name: &str| {
        items
            .iter()
            .find(|i| concept_meaning(i).as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no {name} item"))
    };
    let bone_age = named("Bone age");
    // The warning a reader must see, as a text item of its own.
    let warning = named("Warning");
    assert_eq!(
        warning
            .element(tags::TEXT_VALUE)
            .unwrap()
            .to_str()
            .unwrap()
            .trim(),
        "low resolution: the hand spans 187 px"
    );
    let mv = &bone_age
        .element(tags::MEASURED_VALUE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        mv.element(tags::NUMERIC_VALUE)
            .unwrap()
            .to_str()
            .unwrap()
            .trim(),
        "123.46"
    );
    let evidence = &sr
        .element(tags::CURRENT_REQUESTED_PROCEDURE_EVIDENCE_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    let series = &evidence
        .element(tags::REFERENCED_SERIES_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    let sop = &series
        .element(tags::REFERENCED_SOP_SEQUENCE)
        .unwrap()
        .items()
        .unwrap()[0];
    assert_eq!(
        Some(
            sop.element(tags::REFERENCED_SOP_INSTANCE_UID)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0')
                .to_string()
        ),
        source.sop_instance_uid
    );

    let (w, h) = (40u32, 30u32);
    let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i % 251) as u8).collect();
    let (sc_path, sc) = open(&secondary_capture(&result, &rgb, w, h).unwrap(), "sc.dcm");
    assert_eq!(text(&sc, tags::SOP_CLASS_UID), "1.2.840.10008.5.1.4.1.1.7");
    assert_eq!(text(&sc, tags::BURNED_IN_ANNOTATION), "YES");
    assert_eq!(
        text(&sc, tags::STUDY_INSTANCE_UID),
        text(&sr, tags::STUDY_INSTANCE_UID)
    );
    assert_eq!(
        sc.element(tags::PIXEL_DATA)
            .unwrap()
            .to_bytes()
            .unwrap()
            .len(),
        rgb.len()
    );
    assert!(secondary_capture(&result, &rgb[1..], w, h).is_err());

    // Without a DICOM input: a study of their own, the same for both objects.
    let alone = BoneAgeResult {
        source: None,
        ..result.clone()
    };
    let (_, sr2) = open(&structured_report(&alone).unwrap(), "sr2.dcm");
    assert!(text(&sr2, tags::STUDY_INSTANCE_UID).starts_with("2.25."));

    for p in [&sr_path, &sc_path] {
        match boneage_core::io::dicom_out::dciodvfy(p) {
            None => eprintln!("SKIPPED dciodvfy: not installed (apt-get install dicom3tools)"),
            Some((clean, report)) => assert!(clean, "{}: dciodvfy:\n{report}", p.display()),
        }
    }
}
