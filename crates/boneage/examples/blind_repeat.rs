//! How far two blind markings of the same films lie apart: the marks' own scatter,
//! the floor under any key-point figure measured against them. For each film in the
//! second file, the distance of each key point from the first file's, in % of the
//! hand's length (fingertip to capitate, first marking); then median, 95th
//! percentile and largest, over all films and over those neither marking flags as
//! less certain (`data/labels/blind/README.md`).
//!
//! `cargo run --release -p boneage --example blind_repeat -- data/labels/blind/keypoints.csv data/labels/blind/remarked.csv`
use boneage::preprocess_eval::BlindTruth;
use boneage_core::metrics::percentile;
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
    println!("| film | fingertip % | thumb % | capitate % | flagged |");
    println!("| --- | --- | --- | --- | --- |");
    for (id, b) in &second.points {
        let k = first
            .points
            .get(id)
            .ok_or(format!("{id}: not in the first marking"))?;
        let span = k.span().max(1.0);
        let e = [
            100.0 * k.fingertip.dist(b.fingertip) / span,
            100.0 * k.thumb.dist(b.thumb) / span,
            100.0 * k.capitate.dist(b.capitate) / span,
        ];
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
    Ok(())
}
