//! A contact sheet of the U-Net's training examples as one augmentation draws them:
//! each film with its mask's outline (green) after the transform, to look at what a
//! training recipe shows the network before training with it.
//!
//! `cargo run --release -p boneage --example augment_sheet -- ../shared/data/rsna/raw data/labels/masks frames 32 OUT.png`
//!
//! The third argument names the augmentation: `plain` (`train segment`), `films`
//! (`--films`), `frames` (`--frames`) or `wild` (`--wild`); the fourth how many films
//! (the first of the dataset that have a mask), each drawn once.
use boneage_core::dataset::Dataset;
use boneage_core::image::{GrayImage, Mask};
use boneage_core::overlay::mask_tile;
use boneage_core::sheet::{SheetLayout, save_rgb};
use boneage_nn::data::augment;
use boneage_nn::inputs::mask_examples;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [data, masks, which, n, out] = &a[..] else {
        return Err("usage: augment_sheet DATA MASKS plain|films|frames|wild N OUT.png".into());
    };
    let aug = match which.as_str() {
        "plain" => augment::SEGMENT,
        "films" => augment::SEGMENT_FILMS,
        "frames" => augment::SEGMENT_FRAMES,
        "wild" => augment::SEGMENT_WILD,
        other => return Err(format!("unknown augmentation {other:?}").into()),
    };
    let n: usize = n.parse()?;
    let ds = Dataset::open_dir(data)?;
    let masks = Path::new(masks);
    let with_mask: Vec<_> = ds
        .samples
        .iter()
        .filter(|s| boneage_core::dataset::find_mask(masks, &s.id).is_some())
        .take(n)
        .cloned()
        .collect();
    let (h, w) = (256, 208);
    let ex = mask_examples(&ds, &with_mask, masks, [h, w], &|| {})?;
    let mut tiles = Vec::new();
    for (i, e) in ex.items.iter().enumerate() {
        let b = ex.batch(&[i], &aug, &[i as u64 + 1]);
        let img = GrayImage::from_vec(w, h, b.images.iter().map(|&p| (p + 1.0) / 2.0).collect())?;
        let mask = Mask::from_vec(w, h, b.targets.iter().map(|&t| (t > 0.5) as u8).collect())?;
        tiles.push((e.id.clone(), mask_tile(&img, &mask, w, h)));
    }
    let layout = SheetLayout {
        columns: 8,
        tile_width: w,
        tile_height: h,
        title: Some(format!("U-Net training examples, augmentation {which}")),
    };
    save_rgb(&tiles, &layout, Path::new(out))?;
    Ok(())
}
