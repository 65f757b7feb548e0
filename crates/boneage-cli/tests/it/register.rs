//! Segmentation and registration of phantoms.

use crate::{boneage, text};

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
