//! Segmentation and registration of phantoms.

use crate::{boneage, succeed, text};

#[test]
fn segment_and_register_phantoms() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(
        boneage(
            &[
                "phantom", "--n", "3", "--out", "ph", "--size", "208x256", "--seed", "5"
            ],
            tmp.path()
        )
        .status
        .success()
    );
    let out = boneage(
        &[
            "segment",
            "ph/ph00001.png",
            "ph/ph00002.png",
            "--out",
            "seg",
            "--sheet",
            "seg.png",
            "--baseline",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(tmp.path().join("seg/ph00002.png").is_file() && tmp.path().join("seg.png").is_file());

    let out = boneage(
        &[
            "register",
            "ph/ph00001.png",
            "ph/ph00003.png",
            "--keypoints",
            "ph/keypoints.csv",
            "--masks",
            "ph/masks",
            "--out",
            "reg",
            "--canvas",
            "400x520",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("2 registered onto 400x520"),
        "{}",
        text(&out.stderr)
    );
    let canvas = image::open(tmp.path().join("reg/ph00003.png")).unwrap();
    assert_eq!((canvas.width(), canvas.height()), (400, 520));
    for (suffix, w, h) in [("A", 375, 500), ("B", 188, 188), ("C", 350, 150)] {
        let crop = image::open(tmp.path().join(format!("reg/ph00001_{suffix}.png"))).unwrap();
        assert_eq!((crop.width(), crop.height()), (w, h), "region {suffix}");
    }
    assert!(tmp.path().join("reg/ph00001_overlay.png").is_file());

    // An image without key points is reported and the others still done.
    std::fs::copy(
        tmp.path().join("ph/ph00002.png"),
        tmp.path().join("stray.png"),
    )
    .unwrap();
    let out = boneage(
        &[
            "register",
            "stray.png",
            "ph/ph00002.png",
            "--keypoints",
            "ph/keypoints.csv",
            "--out",
            "reg2",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("stray.png: no key points for id \"stray\""),
        "{}",
        text(&out.stderr)
    );
    assert!(tmp.path().join("reg2/ph00002.png").is_file());
}

/// The stress suite on two phantoms with their true key points as labels: every
/// transform gets a row whose correct, refused and wrong counts add up to the films.
#[test]
fn stress_suite_counts_every_film_under_every_transform() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| succeed(args, tmp.path());
    run(&[
        "phantom", "--n", "2", "--out", "ph", "--seed", "4", "--clean",
    ]);
    let lab = tmp.path().join("lab");
    std::fs::create_dir_all(lab.join("masks")).unwrap();
    std::fs::copy(
        tmp.path().join("ph/keypoints.csv"),
        lab.join("keypoints.csv"),
    )
    .unwrap();
    for id in ["ph00001", "ph00002"] {
        let name = format!("{id}.png");
        std::fs::copy(
            tmp.path().join("ph/masks").join(&name),
            lab.join("masks").join(&name),
        )
        .unwrap();
    }
    std::fs::write(lab.join("holdout-keypoints.txt"), "ph00001\nph00002\n").unwrap();
    let report = run(&[
        "evaluate-preprocess",
        "ph",
        "--labels",
        "lab",
        "--stress",
        "--films",
        "2",
        "--sheet",
        "stress.png",
    ]);
    let rows: Vec<Vec<&str>> = report
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| transform") && !l.starts_with("| ---"))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 21, "{report}");
    for r in &rows {
        let n: usize = r[2..5].iter().map(|v| v.parse::<usize>().unwrap()).sum();
        assert_eq!(n, 2, "{r:?}");
    }
    assert!(
        rows[0][1] == "as filmed" && rows[12][1].starts_with("mirrored"),
        "{report}"
    );
    assert!(tmp.path().join("stress.png").is_file());
    // --films without --stress is a usage error.
    let out = boneage(
        &[
            "evaluate-preprocess",
            "ph",
            "--labels",
            "lab",
            "--films",
            "2",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
}
