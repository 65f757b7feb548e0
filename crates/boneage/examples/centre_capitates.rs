//! Carries key points from one convention of the capitate's centre to another: every
//! capitate of a key-point CSV moved by ALONG % of its hand's length (fingertip to
//! capitate) towards the fingertip and ACROSS % towards the thumb's side, the other
//! points unchanged; written atomically. The offsets are what `blind_repeat` measures
//! between blind marks and the points to be carried (`data/labels/README.md`).
//!
//! `cargo run --release -p boneage --example centre_capitates -- data/labels/keypoints.csv data/labels/keypoints-capitate-centred.csv 2.0 1.1`
use boneage_core::keypoints::{read_csv, write_csv};
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let [_, input, output, along, across] = &a[..] else {
        return Err("usage: centre_capitates IN.csv OUT.csv ALONG% ACROSS%".into());
    };
    let percent = |s: &str| -> Result<f64, String> {
        s.parse::<f64>()
            .map(|v| v / 100.0)
            .map_err(|_| format!("not a number of per cent: {s:?}"))
    };
    let (along, across) = (percent(along)?, percent(across)?);
    let points = read_csv(Path::new(input))?;
    let moved: Vec<(String, _)> = points
        .iter()
        .map(|(id, k)| (id.clone(), k.capitate_moved(along, across)))
        .collect();
    write_csv(
        Path::new(output),
        moved.iter().map(|(id, k)| (id.as_str(), k)),
    )?;
    println!(
        "{} capitates moved {:+.1} % along and {:+.1} % across the hand: {output}",
        moved.len(),
        100.0 * along,
        100.0 * across
    );
    Ok(())
}
