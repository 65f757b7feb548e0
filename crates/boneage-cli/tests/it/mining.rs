//! Positive mining: rounds, reviews, hand-made labels and the review page.

use std::process::Command;

use crate::{boneage, fail, text};

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
    let err = fail(
        &[
            "mine", "ph", "--labels", "labels", "--out", "r1", "--round", "1",
        ],
        tmp.path(),
    );
    assert!(err.contains("need --model"), "{err}");
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
    let err = fail(
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
    assert!(err.contains("--save-mask needs a mask"), "{err}");
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
    let err = fail(&[&base[..], &["--erase", "10,10 20"]].concat(), tmp.path());
    assert!(err.contains("\"20\" is not x,y"), "{err}");
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
    let err = fail(
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
    assert!(err.contains("--capitate 900,300: outside"), "{err}");
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
