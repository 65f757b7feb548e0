//! How far two markings of the same films lie apart: a blind marking against a second
//! blind marking (the marks' own scatter, the floor under any key-point figure measured
//! against them), or against reviewed points (how well those stand as a truth). For each
//! film in both files, the distance of each key point of the second file from the
//! first's, in % of the hand's length (fingertip to capitate, first marking), and its
//! offset along the hand's axis (+ towards the fingers) and across it (+ towards the
//! thumb); then median, 95th percentile and largest, over all films and over those
//! neither marking flags as less certain (`data/labels/blind/README.md`), and the
//! median offsets along and across the axis.
//!
//! `cargo run --release -p boneage --example blind_repeat -- data/labels/blind/keypoints.csv data/labels/blind/remarked.csv`
//! `cargo run --release -p boneage --example blind_repeat -- data/labels/blind/holdout.csv data/labels/keypoints.csv`
use boneage::preprocess_eval::BlindTruth;
use boneage_core::metrics::{keypoint_errors, percentile};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let [_, first, second] = &a[..] else {
        return Err("usage: blind_repeat FIRST.csv SECOND.csv".into());
    };
    let (first, second) = (
        BlindTruth::read(Path::new(first))?,
        BlindTruth::read(Path::new(second))?,
    );
    let mut rows = Vec::new();
    // Per point, the second marking's offsets from the first in the hand's frame.
    let mut along = [Vec::new(), Vec::new(), Vec::new()];
    let mut across = [Vec::new(), Vec::new(), Vec::new()];
    println!("| film | fingertip % | thumb % | capitate % | flagged |");
    println!("| --- | --- | --- | --- | --- |");
    for (id, b) in &second.points {
        // Films only one of the files marks are left out (a blind set against all
        // reviewed points).
        let Some(k) = first.points.get(id) else {
            continue;
        };
        let span = k.span().max(1.0);
        let pairs = [
            (k.fingertip, b.fingertip),
            (k.thumb, b.thumb),
            (k.capitate, b.capitate),
        ];
        let e = keypoint_errors(k, b).map(|d| 100.0 * d / span);
        for (j, (p, q)) in pairs.into_iter().enumerate() {
            let (a, b) = (k.offset_in_hand(p), k.offset_in_hand(q));
            along[j].push(100.0 * (b.0 - a.0));
            across[j].push(100.0 * (b.1 - a.1));
        }
        let flagged = first.flagged(id) || second.flagged(id);
        println!(
            "| {id} | {:.1} | {:.1} | {:.1} | {} |",
            e[0],
            e[1],
            e[2],
            if flagged { "yes" } else { "" }
        );
        rows.push((e, flagged));
    }
    if rows.is_empty() {
        return Err("the two files share no film".into());
    }
    println!();
    println!(
        "| films | n | median (fingertip / thumb / capitate) | 95th percentile | largest | over 5 % |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (name, clean) in [("all", false), ("unflagged", true)] {
        let chosen: Vec<&[f64; 3]> = rows
            .iter()
            .filter(|(_, f)| !(clean && *f))
            .map(|(e, _)| e)
            .collect();
        let col = |j: usize| chosen.iter().map(|e| e[j]).collect::<Vec<_>>();
        let stat = |q: f64| {
            (0..3)
                .map(|j| format!("{:.1}", percentile(&col(j), q).unwrap_or(f64::NAN)))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let over: Vec<String> = (0..3)
            .map(|j| col(j).iter().filter(|&&v| v > 5.0).count().to_string())
            .collect();
        println!(
            "| {name} | {} | {} | {} | {} | {} |",
            chosen.len(),
            stat(0.5),
            stat(0.95),
            stat(1.0),
            over.join(" / ")
        );
    }
    let median = |v: &Vec<f64>| percentile(v, 0.5).unwrap_or(f64::NAN);
    println!();
    println!(
        "Second marking against the first along the hand's axis, median (+ towards the fingers, % of the hand): fingertip {:+.1}, thumb {:+.1}, capitate {:+.1} ({} films).",
        median(&along[0]),
        median(&along[1]),
        median(&along[2]),
        rows.len()
    );
    println!(
        "Across the axis, median (+ towards the thumb, % of the hand): fingertip {:+.1}, thumb {:+.1}, capitate {:+.1}.",
        median(&across[0]),
        median(&across[1]),
        median(&across[2]),
    );
    Ok(())
}
