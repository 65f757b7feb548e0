//! How the film falls off beyond the thumb tip (`boneage_core::fingertip::thumb_falloff`)
//! at the blind thumb marks of the 100 held-out development films
//! (`data/labels/blind/holdout.csv`), and at the same tips moved 5 % and 9 % of the
//! hand beyond the thumb (on the background, along the capitate → thumb axis) and 5 %
//! short of its end, on each film under each transform of the stress suite, with the
//! reviewed hand mask carried through the transform (`Stress::carry_mask`: what the
//! transform adds — a canvas, a film's edge, a marker — left out of it). Prints one CSV
//! row per film and transform (an empty cell: the profile leaves the image).
//!
//! `cargo run --release -p boneage --example thumb_falloff -- ../shared/data/rsna/raw data/labels > T.csv`
use boneage_core::dataset::find_mask;
use boneage_core::fingertip::thumb_falloff;
use boneage_core::image::Mask;
use boneage_core::keypoints::{self, KeyPoints};
use boneage_core::read_radiograph;
use boneage_core::stress::Stress;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let [_, dir, labels] = &a[..] else {
        return Err("usage: thumb_falloff RAW_DIR LABELS_DIR".into());
    };
    let (dir, labels) = (Path::new(dir), Path::new(labels));
    let blind = keypoints::read_csv(&labels.join("blind/holdout.csv"))?;
    let mut ids: Vec<&String> = blind.keys().collect();
    ids.sort();
    let moved = |k: &KeyPoints, by: f64| {
        let axis = (k.thumb - k.capitate) * (1.0 / (k.thumb - k.capitate).norm().max(1e-9));
        KeyPoints {
            thumb: k.thumb + axis * (by * k.span()),
            ..*k
        }
    };
    println!("id,transform,truth,beyond5,beyond9,short5");
    for (n, id) in ids.into_iter().enumerate() {
        let truth = &blind[id];
        let r = read_radiograph(dir.join(format!("{id}.png")))?;
        let (w, h) = (r.pixels.width(), r.pixels.height());
        let masks = labels.join("masks");
        let mask = Mask::load_png(&find_mask(&masks, id).ok_or("no reviewed mask")?)?.resized(w, h);
        for s in Stress::suite() {
            let (img, k) = s.apply(&r.pixels, &mask, truth, n as u64);
            let hand = s.carry_mask(&mask, truth, n as u64);
            let show = |k: &KeyPoints| {
                thumb_falloff(&img, &hand, k).map_or(String::new(), |v| format!("{v:.3}"))
            };
            println!(
                "{id},{},{},{},{},{}",
                s.name().replace(',', ";"),
                show(&k),
                show(&moved(&k, 0.05)),
                show(&moved(&k, 0.09)),
                show(&moved(&k, -0.05))
            );
        }
    }
    Ok(())
}
