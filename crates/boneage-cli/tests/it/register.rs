//! Segmentation and registration of phantoms.

use crate::{boneage, fail, succeed, text};

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
/// transform gets a row whose correct, refused and wrong counts add up to the films
/// (far-off answers among the wrong), a totals row that adds up the rows, and a row of
/// refusals by reason and wrong films by id that agrees with it.
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
        "--look-closer",
        "refused",
    ]);
    // The report says which front end it measured: the shipped folder's, with its
    // second reader, each reader reading a small hand again and a refused film turned.
    let front = report
        .split_once("read again by a second reader")
        .expect("the second reader named");
    for reader in [front.0, front.1] {
        assert!(
            reader.contains("too little hand") && reader.contains("turned upright"),
            "{report}"
        );
    }
    assert!(
        report.contains("looking closer at a small hand on a film the first look refuses"),
        "{report}"
    );
    let (counts, why) = report
        .split_once("Why films were refused")
        .expect("a table of reasons");
    let table = |md: &'_ str| -> Vec<Vec<String>> {
        md.lines()
            .filter(|l| {
                l.starts_with("| ")
                    && !l.starts_with("| transform")
                    && !l.starts_with("| ---")
                    && !l.starts_with("| **all")
            })
            .map(|l| l.split('|').map(|c| c.trim().to_string()).collect())
            .collect()
    };
    let rows = table(counts);
    assert_eq!(rows.len(), 21, "{report}");
    for r in &rows {
        let n: usize = r[2..5].iter().map(|v| v.parse::<usize>().unwrap()).sum();
        assert_eq!(n, 2, "{r:?}");
        // Far-off answers are some of the wrong ones.
        let far: usize = r[5].parse().unwrap();
        assert!(far <= r[4].parse::<usize>().unwrap(), "{r:?}");
    }
    // The totals row adds up the transforms, column by column.
    let total = counts
        .lines()
        .find(|l| l.starts_with("| **all 21 transforms** |"))
        .expect("a totals row");
    let total: Vec<usize> = total.split('|').map(str::trim).collect::<Vec<_>>()[2..6]
        .iter()
        .map(|v| v.parse().unwrap())
        .collect();
    for (k, t) in total.iter().enumerate() {
        let sum: usize = rows
            .iter()
            .map(|r| r[2 + k].parse::<usize>().unwrap())
            .sum();
        assert_eq!(*t, sum, "column {k}: {report}");
    }
    assert_eq!(total[..3].iter().sum::<usize>(), 42, "{report}");
    // Each transform's refusals, counted by reason, add up to its refused films, and
    // its wrong answers are listed by id.
    let reasons = table(why);
    assert_eq!(reasons.len(), 21, "{report}");
    for (r, c) in reasons.iter().zip(&rows) {
        assert_eq!(r[1], c[1]);
        let refused: usize = c[3].parse().unwrap();
        let by_reason: usize = r[2]
            .split(", ")
            .filter(|s| *s != "–")
            .map(|s| s.rsplit_once(' ').unwrap().1.parse::<usize>().unwrap())
            .sum();
        assert_eq!(by_reason, refused, "{r:?} against {c:?}");
        let wrong: usize = c[4].parse().unwrap();
        let listed = r[3].split(", ").filter(|s| s.starts_with("ph")).count();
        assert_eq!(listed, wrong, "{r:?} against {c:?}");
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
    // --only measures the transforms named like it, and says so; a name that matches
    // none is refused with the names there are. (--turn-refused never and
    // --no-small-hand hold for the second reader too.)
    let some = run(&[
        "evaluate-preprocess",
        "ph",
        "--labels",
        "lab",
        "--stress",
        "--films",
        "2",
        "--only",
        "% on",
        "--only",
        "Inverted",
        "--turn-refused",
        "never",
        "--no-small-hand",
    ]);
    assert!(
        some.contains("read again by a second reader")
            && !some.contains("too little hand")
            && !some.contains("turned upright"),
        "{some}"
    );
    let rows: Vec<&str> = some
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(" | ") && !l.contains("---"))
        .collect();
    assert!(
        some.contains("--only '% on' --only 'Inverted'")
            && some.contains("| **all 4 transforms** |")
            && rows.iter().filter(|l| l.starts_with("| shrunk")).count() == 6
            && rows.iter().filter(|l| l.starts_with("| inverted")).count() == 2
            && !some.contains("| as filmed"),
        "{some}"
    );
    let err = fail(
        &[
            "evaluate-preprocess",
            "ph",
            "--labels",
            "lab",
            "--stress",
            "--only",
            "sideways",
        ],
        tmp.path(),
    );
    assert!(
        err.contains("no transform of the stress suite is named like [\"sideways\"]")
            && err.contains("turned 30°"),
        "{err}"
    );
}

/// The front end against key points marked blind (`--truth`): every film of the CSV
/// is counted once as correct, refused or wrong; a film whose note flags its truth is
/// left out of the unflagged row and of the stress suite; a truth moved off the hand
/// is never judged correct; and --truth with --labels, or a truth for films that are
/// not in the folders, is refused with a clear message.
#[test]
fn blind_truth_judges_every_film_and_sets_flagged_ones_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| succeed(args, tmp.path());
    run(&[
        "phantom", "--n", "3", "--out", "ph", "--seed", "4", "--clean",
    ]);
    // The phantoms' exact points, with ph00002's capitate moved by a third of the
    // hand towards the fingertip and ph00003 flagged.
    let csv = std::fs::read_to_string(tmp.path().join("ph/keypoints.csv")).unwrap();
    let mut lines = csv.lines();
    let mut out = format!("{},note\n", lines.next().unwrap());
    for line in lines {
        let mut v: Vec<String> = line.split(',').map(String::from).collect();
        let note = match v[0].as_str() {
            "ph00002" => {
                let f: Vec<f64> = v[1..7].iter().map(|x| x.parse().unwrap()).collect();
                v[5] = format!("{}", f[4] + (f[0] - f[4]) / 3.0);
                v[6] = format!("{}", f[5] + (f[1] - f[5]) / 3.0);
                "capitate moved"
            }
            "ph00003" => "capitate uncertain",
            _ => "",
        };
        out.push_str(&format!("{},{note}\n", v.join(",")));
    }
    std::fs::write(tmp.path().join("truth.csv"), out).unwrap();
    let report = run(&[
        "evaluate-preprocess",
        "ph",
        "--truth",
        "truth.csv",
        "--sheet",
        "wrong.png",
    ]);
    let row = |name: &str| row_numbers(&report, &format!("| {name} |"), 4);
    let (all, clean) = (row("all"), row("unflagged"));
    assert_eq!(all[0], 3, "{report}");
    assert_eq!(all[1] + all[2] + all[3], 3, "{report}");
    assert_eq!(clean[0], 2, "{report}");
    assert!(report.contains("1 of them flagged"), "{report}");
    // ph00002 is wrong when answered, else refused: never correct.
    let wrong_line = report
        .lines()
        .find(|l| l.starts_with("Wrong films"))
        .unwrap();
    assert!(wrong_line.contains("ph00002") || all[2] >= 1, "{report}");
    assert!(all[1] <= 2, "{report}");
    assert!(tmp.path().join("wrong.png").is_file());

    // The same films run once through `preprocess` and scored from its output
    // folder: the same right / refused / wrong, and a row per marked film.
    run(&[
        "preprocess",
        "ph/ph00001.png",
        "ph/ph00002.png",
        "ph/ph00003.png",
        "--out",
        "run",
    ]);
    let scored = run(&[
        "score-preprocess",
        "run",
        "--truth",
        "truth.csv",
        "--films",
        "films.csv",
    ]);
    let counts = row_numbers(&scored, "| `run` |", 4);
    assert_eq!(counts, [all[1], all[2], all[3], 0], "{scored}\n{report}");
    let films = std::fs::read_to_string(tmp.path().join("films.csv")).unwrap();
    assert_eq!(films.lines().count(), 4, "{films}");
    assert!(
        films
            .lines()
            .any(|l| l.starts_with("ph00003,truth.csv,true,"))
    );
    // A folder `preprocess` did not write is named, and what it lacks.
    let err = fail(
        &["score-preprocess", "ph", "--truth", "truth.csv"],
        tmp.path(),
    );
    assert!(
        err.contains("ph: no refused.csv: not the output folder of `boneage preprocess --out`"),
        "{err}"
    );
    // The shipped front end's report names no option of its own.
    assert!(
        report.contains("--truth truth.csv`.")
            && report.contains("refused where the key-point net disagrees"),
        "{report}"
    );

    // The mask's geometry without the net's check: the report names the source and
    // the command that measured it, and still counts every film once.
    let alone = run(&[
        "evaluate-preprocess",
        "ph",
        "--truth",
        "truth.csv",
        "--source",
        "mask-alone",
    ]);
    assert!(
        alone.contains("--truth truth.csv --source mask-alone`")
            && alone.contains("not checked by the key-point net"),
        "{alone}"
    );
    let counts: Vec<usize> = alone
        .lines()
        .find(|l| l.starts_with("| all |"))
        .expect("a row for all films")
        .split('|')
        .map(str::trim)
        .skip(2)
        .take(4)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(counts[0], 3, "{alone}");
    assert_eq!(counts[1] + counts[2] + counts[3], 3, "{alone}");

    // The stress suite on the unflagged films only.
    let stress = run(&[
        "evaluate-preprocess",
        "ph",
        "--truth",
        "truth.csv",
        "--stress",
    ]);
    assert!(stress.contains("(2 films)"), "{stress}");
    assert!(
        stress.contains("--truth truth.csv --stress --films 2"),
        "{stress}"
    );

    // Usage errors and a truth for other films.
    let both = boneage(
        &[
            "evaluate-preprocess",
            "ph",
            "--truth",
            "truth.csv",
            "--labels",
            "lab",
        ],
        tmp.path(),
    );
    assert_eq!(both.status.code(), Some(2));
    std::fs::write(
        tmp.path().join("other.csv"),
        "id,fingertip_x,fingertip_y,thumb_x,thumb_y,capitate_x,capitate_y\nx1,1,2,3,4,5,6\n",
    )
    .unwrap();
    let other = boneage(
        &["evaluate-preprocess", "ph", "--truth", "other.csv"],
        tmp.path(),
    );
    assert_eq!(other.status.code(), Some(2));
    let err = text(&other.stderr);
    assert!(
        err.contains("other.csv") && err.contains("none of its films is in ph"),
        "{err}"
    );
}

/// `hand-template` builds the check after registration from phantoms with exact key
/// points (its limits set on three others), `evaluate-preprocess --check` measures it
/// on the same truth: every registration made wrong on purpose is counted under its
/// kind, and mirroring the thumb is caught; a folder without a template is refused by
/// name.
#[test]
fn the_check_after_registration_is_built_and_measured() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| succeed(args, tmp.path());
    run(&[
        "phantom", "--n", "12", "--out", "ph", "--seed", "6", "--clean",
    ]);
    std::fs::write(tmp.path().join("tune.txt"), "ph00010\nph00011\nph00012\n").unwrap();
    let report = run(&[
        "hand-template",
        "ph",
        "--keypoints",
        "ph/keypoints.csv",
        "--tune",
        "tune.txt",
        "--out",
        "tpl",
    ]);
    assert!(
        report.contains("Template: the mean of 9 registered hands"),
        "{report}"
    );
    let manifest = std::fs::read_to_string(tmp.path().join("tpl/hand_template.json")).unwrap();
    assert!(manifest.contains("\"films\": 9"), "{manifest}");
    let picture = image::open(tmp.path().join("tpl/hand_template.png")).unwrap();
    assert_eq!((picture.width(), picture.height()), (100, 130));

    let report = run(&[
        "evaluate-preprocess",
        "ph",
        "--truth",
        "ph/keypoints.csv",
        "--check",
        "--template",
        "tpl",
        "--sheet",
        "check.png",
    ]);
    let row = |name: &str| {
        let v = row_numbers(&report, &format!("| {name} |"), 2);
        [v[0], v[1]]
    };
    assert_eq!(row("correct (the true key points)")[0], 12, "{report}");
    let mirrored = row("wrong: thumb mirrored across the hand's axis");
    assert_eq!(mirrored, [12, 12], "{report}");
    let all = row("wrong: all kinds");
    let kinds: usize = [
        "wrong: fingertip on a neighbouring finger",
        "wrong: thumb mirrored across the hand's axis",
        "wrong: capitate 10 % of the hand towards the fingers",
        "wrong: capitate 10 % of the hand towards the wrist",
    ]
    .iter()
    .map(|k| row(k)[0])
    .sum();
    assert_eq!(all[0], kinds, "{report}");
    assert!(tmp.path().join("check.png").is_file());

    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let out = boneage(
        &[
            "evaluate-preprocess",
            "ph",
            "--truth",
            "ph/keypoints.csv",
            "--check",
            "--template",
            "empty",
        ],
        tmp.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("empty: no hand_template.json there"),
        "{}",
        text(&out.stderr)
    );
}

/// The first `n` numbers after the first cell of the Markdown table row of `report`
/// that starts with `start`.
fn row_numbers(report: &str, start: &str, n: usize) -> Vec<usize> {
    let line = report
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no row {start:?}: {report}"));
    line.split('|')
        .map(str::trim)
        .skip(2)
        .take(n)
        .map(|x| x.parse().unwrap())
        .collect()
}
