//! Phantoms, reading radiographs, contact sheets and bad arguments.

use std::path::Path;

use crate::{boneage, fail, rsna_raw, text};

#[test]
fn phantom_then_inspect_then_sheet() {
    let tmp = tempfile::tempdir().unwrap();
    let out = boneage(
        &[
            "phantom", "--n", "5", "--out", "ph", "--seed", "3", "--size", "160x200",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("wrote 5 phantoms (160x200)"),
        "{}",
        text(&out.stderr)
    );
    for f in [
        "labels.csv",
        "keypoints.csv",
        "phantom.csv",
        "ph00005.png",
        "masks/ph00005.png",
    ] {
        assert!(tmp.path().join("ph").join(f).is_file(), "{f} missing");
    }
    let labels = std::fs::read_to_string(tmp.path().join("ph/labels.csv")).unwrap();
    assert_eq!(labels.lines().next(), Some("id,boneage,male"));
    assert_eq!(labels.lines().count(), 6);

    let out = boneage(
        &["inspect", "ph/ph00001.png", "--png", "view.png"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "ph/ph00001.png: PNG 160x200 8-bit L8, spacing unknown"
    );
    assert!(tmp.path().join("view.png").is_file());

    let out = boneage(
        &[
            "sheet",
            "ph",
            "--out",
            "sheet.png",
            "--n",
            "4",
            "--columns",
            "2",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sheet = image::open(tmp.path().join("sheet.png")).unwrap();
    assert!(sheet.width() > 2 * 128 && sheet.height() > 2 * 160);
}

#[test]
fn inspect_reports_every_file_and_fails_on_a_corrupt_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = boneage(
        &["phantom", "--n", "2", "--out", "ph", "--size", "128x160"],
        tmp.path(),
    );
    assert!(out.status.success());
    let good = std::fs::read(tmp.path().join("ph/ph00001.png")).unwrap();
    std::fs::write(tmp.path().join("cut.png"), &good[..good.len() / 3]).unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "not an image").unwrap();
    let out = boneage(
        &[
            "inspect",
            "ph/ph00001.png",
            "cut.png",
            "notes.txt",
            "ph/ph00002.png",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains("ph00001.png") && stdout.contains("ph00002.png"));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(
        errors[0].starts_with("error: cut.png: corrupt or truncated PNG"),
        "{stderr}"
    );
    assert_eq!(
        errors[1],
        "error: notes.txt: not an image (not PNG, JPEG or DICOM)"
    );
    assert!(stderr.contains("2 read, 2 failed"), "{stderr}");
}

#[test]
fn inspect_json_is_one_object_per_line() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(
        boneage(
            &["phantom", "--n", "2", "--out", "ph", "--size", "128x160"],
            tmp.path()
        )
        .status
        .success()
    );
    let out = boneage(
        &["inspect", "--json", "ph/ph00001.png", "ph/ph00002.png"],
        tmp.path(),
    );
    assert!(out.status.success());
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["width"], 128);
        assert_eq!(v["meta"]["format"], "Png");
    }
}

#[test]
fn bad_arguments_are_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let out = boneage(
        &["phantom", "--n", "1", "--out", "x", "--size", "12x12"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("12x12 out of range"),
        "{}",
        text(&out.stderr)
    );
    let err = fail(
        &["phantom", "--n", "1", "--out", "x", "--size", "big"],
        tmp.path(),
    );
    assert!(err.contains("not WIDTHxHEIGHT"), "{err}");
    let out = boneage(&["sheet", "nowhere", "--out", "s.png"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no labels file"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn inspect_reads_the_real_rsna_images() {
    let Some(raw) = rsna_raw() else {
        eprintln!("SKIPPED inspect_reads_the_real_rsna_images: ../shared/data/rsna not found");
        return;
    };
    let mut files: Vec<String> = std::fs::read_dir(&raw)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".png"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 1000);
    let mut args = vec!["inspect"];
    args.extend(files.iter().map(String::as_str));
    let out = boneage(&args, Path::new("."));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 1000);
    assert!(text(&out.stderr).contains("1000 read, 0 failed"));
}
