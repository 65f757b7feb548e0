//! What the cut-out test (`boneage_core::ops::cut_out`) measures: the share of exact
//! black, the share of the rest its largest region holds, the share of the image's
//! border that region touches, its solidity, and the verdict. With `--stress RAW_DIR
//! LABELS_DIR`, on every transform of the stress suite of the held-out development
//! films (only the "already segmented" films should count as cut out); otherwise on
//! the films named. One CSV row each.
//!
//! `cargo run --release -p boneage --example cut_out_census -- ../shared/data/rsna/raw/*.png ../shared/data/rsna/extra/*.png > F.csv`
//! `cargo run --release -p boneage --example cut_out_census -- --stress ../shared/data/rsna/raw data/labels > F.csv`
use boneage_core::dataset::{Dataset, find_mask};
use boneage_core::image::{GrayImage, Mask};
use boneage_core::ops::CutOutMeasures;
use boneage_core::read_radiograph;
use boneage_core::stress::Stress;
use std::path::Path;

fn row(id: &str, what: &str, img: &GrayImage) {
    match CutOutMeasures::of(img) {
        Some(m) => println!(
            "{id},{what},{:.3},{:.4},{:.3},{:.3},{}",
            m.black,
            m.one_region,
            m.border,
            m.solidity,
            m.is_cut_out()
        ),
        None => println!("{id},{what},,,,,false"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    println!("id,film,black,one_region,border,solidity,cut_out");
    if let [flag, dir, labels] = &a[..]
        && flag == "--stress"
    {
        let (dir, labels) = (Path::new(dir), Path::new(labels));
        let ds = Dataset::open_dir(dir)?;
        let films = boneage::stress_eval::holdout_films(&ds, labels, 100)?;
        let masks = labels.join("masks");
        for (n, (id, truth)) in films.films.iter().enumerate() {
            let r = read_radiograph(dir.join(format!("{id}.png")))?;
            let (w, h) = (r.pixels.width(), r.pixels.height());
            let mask =
                Mask::load_png(&find_mask(&masks, id).ok_or("no reviewed mask")?)?.resized(w, h);
            for s in Stress::suite() {
                let (img, _) = s.apply(&r.pixels, &mask, truth, n as u64);
                row(id, &s.name().replace(',', ";"), &img);
            }
        }
        return Ok(());
    }
    for f in &a {
        let path = Path::new(f);
        let r = read_radiograph(path)?;
        let id = path.file_stem().and_then(|s| s.to_str()).unwrap_or(f);
        row(id, &path.display().to_string(), &r.pixels);
    }
    Ok(())
}
