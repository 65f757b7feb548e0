//! End-to-end tests of the `boneage` binary, run for real in temporary folders.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn boneage(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boneage"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run boneage")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn rsna_raw() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/rsna/raw");
    p.is_dir().then_some(p)
}

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
    let out = boneage(
        &["phantom", "--n", "1", "--out", "x", "--size", "big"],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not WIDTHxHEIGHT"),
        "{}",
        text(&out.stderr)
    );
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

/// `boneage train` end to end on a few phantoms: each net trains an epoch, writes
/// its log, weights, manifest and example sheet; a stopped age run resumes; a
/// region without key points is refused with a message naming the missing file.
#[test]
fn train_each_net_then_stop_and_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let out = boneage(
        &[
            "phantom", "--n", "10", "--out", "ph", "--seed", "4", "--size", "208x256",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let small = ["--val", "3", "--batch", "4"];

    let run = |args: &[&str]| {
        let mut all = vec!["train"];
        all.extend_from_slice(args);
        all.extend_from_slice(&small);
        let out = boneage(&all, tmp.path());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    let err = run(&[
        "age",
        "ph",
        "--out",
        "age",
        "--epochs",
        "2",
        "--stop-after",
        "1",
    ]);
    assert!(
        err.contains("baseline (predict the mean training age per sex)"),
        "{err}"
    );
    assert!(err.contains("stopped after epoch 1 of 2"), "{err}");
    let err = run(&["age", "ph", "--out", "age", "--epochs", "2", "--resume"]);
    assert!(err.contains("resuming after epoch 1 of 2"), "{err}");
    assert!(err.contains("examples from the cache"), "{err}");
    let log = std::fs::read_to_string(tmp.path().join("age/log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    let manifest = std::fs::read_to_string(tmp.path().join("age/model.json")).unwrap();
    assert!(manifest.contains("\"region\": \"A\""), "{manifest}");
    assert!(manifest.contains("val_mae_months"), "{manifest}");

    run(&["keypoints", "ph", "--out", "kp", "--epochs", "1"]);
    run(&["segment", "ph", "--out", "seg", "--epochs", "1"]);
    for d in ["age", "kp", "seg"] {
        for f in [
            "model.safetensors",
            "model.json",
            "log.jsonl",
            "config.json",
            "examples.png",
        ] {
            assert!(tmp.path().join(d).join(f).is_file(), "{d}/{f} missing");
        }
    }
    let seg = std::fs::read_to_string(tmp.path().join("seg/log.jsonl")).unwrap();
    assert!(seg.contains("\"iou\""), "{seg}");

    // The next mining round starts from this U-Net, validating on fixed ids.
    std::fs::write(
        tmp.path().join("held.txt"),
        "# held out\nph00001\nph00002\n",
    )
    .unwrap();
    let err = run(&[
        "segment",
        "ph",
        "--out",
        "seg2",
        "--epochs",
        "1",
        "--init",
        "seg/model.safetensors",
        "--holdout",
        "held.txt",
    ]);
    assert!(
        err.contains("starting from the weights in seg/model.safetensors"),
        "{err}"
    );
    let manifest = std::fs::read_to_string(tmp.path().join("seg2/model.json")).unwrap();
    assert!(
        manifest.contains("2 held out for validation: the ids in held.txt"),
        "{manifest}"
    );
    let out = boneage(
        &[
            "train",
            "keypoints",
            "ph",
            "--out",
            "kp2",
            "--init",
            "seg/model.safetensors",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("seg/model.json: holds a unet net"),
        "{}",
        text(&out.stderr)
    );

    std::fs::remove_file(tmp.path().join("ph/keypoints.csv")).unwrap();
    let out = boneage(
        &["train", "age", "ph", "--out", "b", "--region", "B"],
        tmp.path(),
    );
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("region B needs key points") && err.contains("keypoints.csv"),
        "{err}"
    );
}

/// One round of positive mining on phantoms: candidates and a numbered sheet, the
/// reviewer's decisions in the log and accepted masks at a quarter of the size, and a
/// second round that only proposes what was not accepted.
#[test]
fn mine_then_review_then_mine_again() {
    let tmp = tempfile::tempdir().unwrap();
    let out = boneage(
        &[
            "phantom", "--n", "6", "--out", "ph", "--seed", "8", "--size", "160x200",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = boneage(
        &["mine", "ph", "--labels", "labels", "--out", "r0"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("6 candidates on 1 sheets"),
        "{}",
        text(&out.stderr)
    );
    assert!(tmp.path().join("r0/sheet-001.png").is_file());
    let index = std::fs::read_to_string(tmp.path().join("r0/index.csv")).unwrap();
    assert_eq!(index.lines().count(), 7, "{index}");

    let bad = boneage(
        &[
            "review", "r0", "--labels", "labels", "--sheet", "1", "--reject", "9",
        ],
        tmp.path(),
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("sheet 1 has tiles 1 to 6"),
        "{}",
        text(&bad.stderr)
    );

    let out = boneage(
        &[
            "review", "r0", "--labels", "labels", "--sheet", "1", "--reject", "2,4-5",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("3 accepted, 3 rejected"),
        "{}",
        text(&out.stderr)
    );
    let log = std::fs::read_to_string(tmp.path().join("labels/review.csv")).unwrap();
    assert_eq!(log.lines().next(), Some("id,round,kind,decision,time"));
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(",0,mask,accept,"))
            .count(),
        3,
        "{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(",0,mask,reject,"))
            .count(),
        3,
        "{log}"
    );
    let masks: Vec<_> = std::fs::read_dir(tmp.path().join("labels/masks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(masks.len(), 3);
    let m = image::open(&masks[0]).unwrap();
    assert_eq!(
        (m.width(), m.height()),
        (40, 50),
        "masks are kept at a quarter"
    );

    let out = boneage(
        &["mine", "ph", "--labels", "labels", "--out", "r1b"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("3 already accepted, 3 candidates"),
        "{}",
        text(&out.stderr)
    );
    let out = boneage(
        &[
            "mine", "ph", "--labels", "labels", "--out", "r1", "--round", "1",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("need --model"),
        "{}",
        text(&out.stderr)
    );
}

/// A mask made by hand with `annotate`: a threshold of the film inside a region of
/// interest, then a cut across the wrist; compared with the phantom's true mask.
#[test]
fn hand_made_mask_from_threshold_roi_and_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = boneage(args, tmp.path());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    run(&[
        "phantom", "--n", "1", "--out", "ph", "--seed", "11", "--size", "320x400",
    ]);
    let load = |p: &str| image::open(tmp.path().join(p)).unwrap().to_luma8();
    let iou = |a: &image::GrayImage, b: &image::GrayImage| {
        let (mut i, mut u) = (0, 0);
        for (p, q) in a.pixels().zip(b.pixels()) {
            i += (p[0] > 127 && q[0] > 127) as u32;
            u += (p[0] > 127 || q[0] > 127) as u32;
        }
        i as f64 / u as f64
    };
    let up = |m: &image::GrayImage| {
        image::imageops::resize(m, 320, 400, image::imageops::FilterType::Triangle)
    };
    let truth = load("ph/masks/ph00001.png");

    // Nothing to save is an error, and nothing is written.
    let out = boneage(
        &[
            "annotate",
            "ph",
            "ph00001",
            "--labels",
            "labels",
            "--save-mask",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--save-mask needs a mask"),
        "{}",
        text(&out.stderr)
    );
    assert!(!tmp.path().join("labels").exists());

    let roi = "45,25 280,25 285,345 50,345";
    let base = [
        "annotate",
        "ph",
        "ph00001",
        "--labels",
        "labels",
        "--threshold",
        "0.25",
        "--roi",
        roi,
    ];
    let err = run(&[
        &base[..],
        &["--save-mask", "--round", "6", "--grid", "g.png"],
    ]
    .concat());
    assert!(err.contains("mask set"), "{err}");
    assert!(tmp.path().join("g.png").is_file());
    let whole = load("labels/masks/ph00001.mask.png");
    assert_eq!(
        (whole.width(), whole.height()),
        (80, 100),
        "kept at a quarter"
    );
    let q = iou(&up(&whole), &truth);
    assert!(q > 0.85, "IoU with the true mask {q:.3}");
    let log = std::fs::read_to_string(tmp.path().join("labels/review.csv")).unwrap();
    assert!(log.contains("ph00001,6,mask,set,"), "{log}");

    // A cut across the forearm leaves the hand (the largest part) and drops the rest.
    run(&[
        &base[..],
        &["--cut", "0,300 320,300", "--save-mask", "--round", "6"],
    ]
    .concat());
    let cut = up(&load("labels/masks/ph00001.mask.png"));
    let below = |m: &image::GrayImage| {
        (304..400)
            .map(|y| (0..320).filter(|&x| m.get_pixel(x, y)[0] > 127).count())
            .sum::<usize>()
    };
    assert!(
        below(&up(&whole)) > 500,
        "the forearm reaches below the cut"
    );
    assert_eq!(below(&cut), 0, "nothing below the cut is kept");
    assert!(iou(&cut, &truth) > 0.6);

    // Bad shapes are named.
    let out = boneage(&[&base[..], &["--erase", "10,10 20"]].concat(), tmp.path());
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("\"20\" is not x,y"),
        "{}",
        text(&out.stderr)
    );
}

/// Key-point mining on phantoms: candidates from accepted masks, decisions by sheet,
/// hand-set points through `annotate`, and the review page answering over HTTP.
#[test]
fn keypoint_round_review_annotate_and_serve() {
    use std::io::{BufRead, Read, Write};

    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = boneage(args, tmp.path());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    run(&[
        "phantom", "--n", "4", "--out", "ph", "--seed", "11", "--size", "320x400",
    ]);
    run(&["mine", "ph", "--labels", "labels", "--out", "m0"]);
    run(&["review", "m0", "--labels", "labels", "--sheet", "1"]);
    let err = run(&[
        "mine",
        "ph",
        "--labels",
        "labels",
        "--kind",
        "keypoints",
        "--round",
        "1",
        "--out",
        "k1",
    ]);
    assert!(err.contains("4 candidates to make"), "{err}");
    let candidates = std::fs::read_to_string(tmp.path().join("k1/candidates.csv")).unwrap();
    assert_eq!(candidates.lines().count(), 5, "{candidates}");
    assert!(tmp.path().join("k1/sheet-001.png").is_file());

    // Mask geometry finds the phantoms' fingertips (the generator knows the truth).
    let truth = std::fs::read_to_string(tmp.path().join("ph/keypoints.csv")).unwrap();
    let parse = |t: &str| -> std::collections::BTreeMap<String, Vec<f64>> {
        t.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (
                    f[0].to_string(),
                    f[1..7].iter().map(|v| v.parse().unwrap()).collect(),
                )
            })
            .collect()
    };
    let (truth, found) = (parse(&truth), parse(&candidates));
    for (id, k) in &found {
        let t = &truth[id];
        let d = ((k[0] - t[0]).powi(2) + (k[1] - t[1]).powi(2)).sqrt();
        assert!(d < 16.0, "{id}: fingertip {d:.1} px from the truth");
    }

    run(&[
        "review", "k1", "--labels", "labels", "--sheet", "1", "--reject", "2",
    ]);
    let kp = std::fs::read_to_string(tmp.path().join("labels/keypoints.csv")).unwrap();
    assert_eq!(kp.lines().count(), 4, "three accepted: {kp}");

    // The rejected one, set by hand after reading the grid.
    let rejected = std::fs::read_to_string(tmp.path().join("k1/index.csv"))
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .rsplit(',')
        .next()
        .unwrap()
        .to_string();
    run(&[
        "annotate", "ph", &rejected, "--labels", "labels", "--grid", "grid.png",
    ]);
    assert!(tmp.path().join("grid.png").is_file());
    let out = boneage(
        &[
            "annotate",
            "ph",
            &rejected,
            "--labels",
            "labels",
            "--fingertip",
            "160,30",
            "--thumb",
            "250,200",
            "--capitate",
            "900,300",
        ],
        tmp.path(),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--capitate 900,300: outside"),
        "{}",
        text(&out.stderr)
    );
    run(&[
        "annotate",
        "ph",
        &rejected,
        "--labels",
        "labels",
        "--fingertip",
        "160,30",
        "--thumb",
        "250,200",
        "--capitate",
        "160,300",
    ]);
    let kp = std::fs::read_to_string(tmp.path().join("labels/keypoints.csv")).unwrap();
    assert!(
        kp.contains(&format!(
            "{rejected},160.00,30.00,250.00,200.00,160.00,300.00"
        )),
        "{kp}"
    );
    let log = std::fs::read_to_string(tmp.path().join("labels/review.csv")).unwrap();
    assert!(
        log.contains(&format!("{rejected},0,keypoints,set,")),
        "{log}"
    );

    // The review page: round as JSON, an overlay, a decision.
    let mut child = Command::new(env!("CARGO_BIN_EXE_boneage"))
        .args([
            "review",
            "k1",
            "--labels",
            "labels",
            "--data",
            "ph",
            "--serve",
            "127.0.0.1:0",
        ])
        .current_dir(tmp.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let request = |req: String| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        out
    };
    let round = text(&request(
        "GET /api/round HTTP/1.1\r\nHost: x\r\n\r\n".into(),
    ));
    assert!(round.starts_with("HTTP/1.1 200"), "{round}");
    assert!(round.contains("\"kind\":\"keypoints\""), "{round}");
    assert!(round.contains(&format!("\"id\":\"{rejected}\"")), "{round}");
    let tile = request(format!("GET /tile/{rejected}.png HTTP/1.1\r\n\r\n"));
    let body = tile.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(
        image::load_from_memory(&tile[body..]).is_ok(),
        "a PNG overlay"
    );
    let body = format!("id={rejected}&decision=reject");
    let resp = text(&request(format!(
        "POST /api/decide HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )));
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let bad = text(&request("GET /tile/nope.png HTTP/1.1\r\n\r\n".into()));
    assert!(bad.starts_with("HTTP/1.1 404"), "{bad}");
    child.kill().unwrap();
    let _ = child.wait();
    let kp = std::fs::read_to_string(tmp.path().join("labels/keypoints.csv")).unwrap();
    assert!(
        !kp.contains(&format!("{rejected},")),
        "rejected on the page: {kp}"
    );
}

/// The shipped weights on a real film: a registered hand on the CPU canvas, regions,
/// key points inside the film; and a clear refusal for a film without a hand.
#[test]
fn preprocess_with_shipped_weights() {
    let tmp = tempfile::tempdir().unwrap();
    // A blank film: no hand, refused with the reason and exit code 1.
    image::GrayImage::from_pixel(300, 400, image::Luma([20]))
        .save(tmp.path().join("blank.png"))
        .unwrap();
    let out = boneage(&["preprocess", "blank.png", "--out", "pre"], tmp.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("blank.png: no hand found"),
        "{}",
        text(&out.stderr)
    );

    let Some(raw) = rsna_raw() else {
        eprintln!("SKIPPED preprocess on a real film: ../shared/data/rsna/raw is absent");
        return;
    };
    let film = raw.join("1377.png");
    let out = boneage(
        &["preprocess", film.to_str().unwrap(), "--out", "pre"],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reg = image::open(tmp.path().join("pre/1377.png")).unwrap();
    assert_eq!((reg.width(), reg.height()), (400, 520));
    for f in [
        "1377_A.png",
        "1377_B.png",
        "1377_C.png",
        "1377_overlay.png",
        "keypoints.csv",
    ] {
        assert!(tmp.path().join("pre").join(f).is_file(), "{f} missing");
    }
    // The hand fills the canvas's middle: more bright pixels than dark there.
    let g = reg.to_luma8();
    let mid: Vec<u8> = (130..390)
        .flat_map(|y| (120..280).map(move |x| (x, y)))
        .map(|(x, y)| g.get_pixel(x, y).0[0])
        .collect();
    let lit = mid.iter().filter(|&&v| v > 40).count();
    assert!(lit * 2 > mid.len(), "{lit} of {} pixels lit", mid.len());

    let out = boneage(&["keypoints", film.to_str().unwrap()], tmp.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("fingertip"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn assess_one_film_a_batch_and_evaluate_with_shipped_weights() {
    let tmp = tempfile::tempdir().unwrap();
    image::GrayImage::from_pixel(300, 400, image::Luma([20]))
        .save(tmp.path().join("blank.png"))
        .unwrap();
    // No sex from anywhere: a clear error, exit 2.
    let out = boneage(&["assess", "blank.png"], tmp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("give --sex M or F"),
        "{}",
        text(&out.stderr)
    );
    let out = boneage(
        &["assess", "blank.png", "--sex", "F", "--age", "ten"],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--age \"ten\""),
        "{}",
        text(&out.stderr)
    );
    // No hand: refused with the reason, exit 3.
    let out = boneage(&["assess", "blank.png", "--sex", "F"], tmp.path());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("blank.png: refused: no hand found"),
        "{}",
        text(&out.stderr)
    );

    let Some(raw) = rsna_raw() else {
        eprintln!("SKIPPED assess on real films: ../shared/data/rsna/raw is absent");
        return;
    };
    let film = raw.join("1377.png");
    let out = boneage(
        &[
            "assess",
            film.to_str().unwrap(),
            "--sex",
            "F",
            "--age",
            "14y2m",
            "--json",
            "--overlay",
            "evidence.png",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let months = j["bone_age_months"].as_f64().unwrap();
    assert!((0.0..=240.0).contains(&months), "{months}");
    let members = j["members"].as_array().unwrap();
    assert!(!members.is_empty());
    // A girl is assessed by the female and the mixed models only.
    assert!(members.iter().all(|m| m["cohort"] != "Male"), "{j}");
    let c = &j["chronological"];
    assert_eq!(c["chronological_months"].as_f64(), Some(170.0));
    assert!((c["difference_months"].as_f64().unwrap() - (months - 170.0)).abs() < 1e-9);
    assert!(["delayed", "normal", "advanced"].contains(&c["verdict"].as_str().unwrap()));
    assert!(tmp.path().join("evidence.png").is_file());

    // A batch from a CSV list: two films and the blank one, with labels for the MAE.
    std::fs::write(
        tmp.path().join("list.csv"),
        format!(
            "image,sex,age\n{},F,14y\n{},,\nblank.png,M,\n",
            film.display(),
            raw.join("1491.png").display()
        ),
    )
    .unwrap();
    let labels = raw.with_extension("csv");
    let out = boneage(
        &[
            "assess",
            "list.csv",
            "--out",
            "results.csv",
            "--labels",
            labels.to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("MAE"), "{}", text(&out.stdout));
    let results = std::fs::read_to_string(tmp.path().join("results.csv")).unwrap();
    let rows: Vec<&str> = results.lines().collect();
    assert_eq!(rows.len(), 4, "{results}");
    assert!(
        rows[1].starts_with("1377,") && rows[1].contains(",F,"),
        "{results}"
    );
    // 1491 takes its sex (male) from the labels.
    assert!(
        rows[2].starts_with("1491,") && rows[2].contains(",M,"),
        "{results}"
    );
    assert!(rows[3].contains("refused: no hand found"), "{results}");

    // A 6-film split, then the evaluation with its report and charts.
    let out = boneage(
        &[
            "split",
            raw.to_str().unwrap(),
            "--val",
            "6",
            "--seed",
            "3",
            "--out",
            "ids.txt",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ids = std::fs::read_to_string(tmp.path().join("ids.txt")).unwrap();
    assert_eq!(ids.lines().filter(|l| !l.starts_with('#')).count(), 6);
    let out = boneage(
        &[
            "evaluate",
            raw.to_str().unwrap(),
            "--holdout",
            "ids.txt",
            "--out",
            "ev",
        ],
        tmp.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = std::fs::read_to_string(tmp.path().join("ev/report.md")).unwrap();
    assert!(
        report.contains("Fig. 8") && report.contains("Fig. 9"),
        "{report}"
    );
    assert!(
        report.contains("predict the mean training age per sex"),
        "{report}"
    );
    for f in [
        "fig8.png",
        "fig8.csv",
        "fig9.png",
        "scatter.png",
        "predictions.csv",
    ] {
        assert!(tmp.path().join("ev").join(f).is_file(), "{f} missing");
    }
}
