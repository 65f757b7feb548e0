//! How the film falls off beyond the fingertip (`boneage_core::fingertip::falloff`)
//! at the reviewed fingertips of the held-out development films, and at the same
//! fingertips moved 5 % and 9 % of the hand towards the capitate (a tip placed short),
//! on each film under each transform of the stress suite, with the reviewed hand mask
//! carried through the transform. Prints one CSV row per film and transform; the
//! second reader's limit (`boneage_nn::pipeline::FALLOFF_LIMIT`) was set on it.
//!
//! `cargo run --release -p boneage --example fingertip_falloff -- ../shared/data/rsna/raw data/labels > F.csv`
use boneage_core::dataset::{Dataset, find_mask};
use boneage_core::fingertip::falloff;
use boneage_core::image::Mask;
use boneage_core::keypoints::KeyPoints;
use boneage_core::ops::{Connectivity, largest_component};
use boneage_core::read_radiograph;
use boneage_core::stress::Stress;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let [_, dir, labels] = &a[..] else {
        return Err("usage: fingertip_falloff RAW_DIR LABELS_DIR".into());
    };
    let (dir, labels) = (Path::new(dir), Path::new(labels));
    let ds = Dataset::open_dir(dir)?;
    let films = boneage::stress_eval::holdout_films(&ds, labels, 100)?;
    let short = |k: &KeyPoints, by: f64| KeyPoints {
        fingertip: k.fingertip + (k.capitate - k.fingertip) * by,
        ..*k
    };
    println!("id,transform,truth,short5,short9");
    for (n, (id, truth)) in films.films.iter().enumerate() {
        let r = read_radiograph(dir.join(format!("{id}.png")))?;
        let (w, h) = (r.pixels.width(), r.pixels.height());
        let masks = labels.join("masks");
        let mask = Mask::load_png(&find_mask(&masks, id).ok_or("no reviewed mask")?)?.resized(w, h);
        for s in Stress::suite() {
            let (img, k) = s.apply(&r.pixels, &mask, truth, n as u64);
            // The mask goes where the film goes; a change of values leaves it as it is.
            let hand = if s.changes_values_only() {
                mask.clone()
            } else {
                let (moved, _) = s.apply(&mask.to_image(), &mask, truth, n as u64);
                largest_component(&Mask::threshold(&moved, 0.75), Connectivity::Eight)
            };
            let show = |k: &KeyPoints| {
                falloff(&img, &hand, k).map_or(String::new(), |v| format!("{v:.3}"))
            };
            println!(
                "{id},{},{},{},{}",
                s.name().replace(',', ";"),
                show(&k),
                show(&short(&k, 0.05)),
                show(&short(&k, 0.09))
            );
        }
    }
    Ok(())
}
