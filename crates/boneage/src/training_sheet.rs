//! What a network sees in training: a contact sheet of augmented examples with
//! their targets drawn.

use std::path::Path;

use boneage_core::image::Mask;
use boneage_core::overlay::{colors, draw_mask_outline, draw_point, to_rgb};
use boneage_core::sheet::{SheetLayout, save_rgb};
use boneage_nn::data::{Augment, Examples, Target, from_unit};
use boneage_nn::keypoint_net::Refined;

/// A contact sheet of the first 16 training examples as the network sees them
/// (augmented), with their targets drawn: key points as dots (a refining net's one
/// point, `refines`, in its colour), masks as outlines.
pub fn examples_sheet(
    ex: &Examples,
    augment: &Augment,
    seed: u64,
    refines: Option<Refined>,
    path: &Path,
) -> boneage_core::Result<()> {
    let n = ex.items.len().min(16);
    let idx: Vec<usize> = (0..n).collect();
    let seeds: Vec<u64> = (0..n as u64).map(|k| seed.wrapping_add(k)).collect();
    let b = ex.batch(&idx, augment, &seeds);
    let (w, h) = (ex.width, ex.height);
    let tl = ex.target_len();
    // Each example whole, shrunk (aspect kept) to fit 256 × 256 when larger.
    let fit = (256.0 / w.max(h) as f64).min(1.0);
    let tile = [
        ((w as f64 * fit).round() as usize).max(1),
        ((h as f64 * fit).round() as usize).max(1),
    ];
    let mut tiles = Vec::with_capacity(n);
    for (k, &i) in idx.iter().enumerate() {
        let px: Vec<f32> = b.images[k * w * h..(k + 1) * w * h]
            .iter()
            .map(|v| (v + 1.0) / 2.0)
            .collect();
        let img = boneage_core::GrayImage::from_vec(w, h, px)?;
        let mut rgb = to_rgb(&img);
        let t = &b.targets[k * tl..(k + 1) * tl];
        let item = &ex.items[i];
        let caption = match &item.target {
            Target::Age(m) => format!(
                "{} {} {:.0} mo",
                item.id,
                if item.male { "M" } else { "F" },
                m
            ),
            Target::Keypoints(_) => {
                // Three points, or a refining net's one, each in its colour.
                let colours: &[_] = match refines {
                    Some(Refined::Capitate) => &[colors::CAPITATE],
                    Some(Refined::Thumb) => &[colors::THUMB],
                    None => &[colors::FINGERTIP, colors::THUMB, colors::CAPITATE],
                };
                for (q, &c) in t.chunks_exact(2).zip(colours) {
                    draw_point(&mut rgb, from_unit([q[0], q[1]], [h, w]), 2.0, c);
                }
                item.id.clone()
            }
            Target::Right(r) => format!("{} {}", item.id, if *r { "right" } else { "WRONG" }),
            Target::Mask(_) => {
                let m = Mask::from_vec(w, h, t.iter().map(|&v| (v > 0.5) as u8).collect())?;
                draw_mask_outline(&mut rgb, &m, colors::MASK, 1);
                item.id.clone()
            }
        };
        tiles.push((caption, shrink(rgb, tile)));
    }
    let layout = SheetLayout {
        columns: 8,
        tile_width: tile[0],
        tile_height: tile[1],
        title: Some(format!(
            "training examples as the network sees them ({w}x{h}, augmented)"
        )),
    };
    save_rgb(&tiles, &layout, path)
}

/// `img` resized to `[width, height]` (unchanged when it already is that size).
fn shrink(img: image::RgbImage, [w, h]: [usize; 2]) -> image::RgbImage {
    if (img.width() as usize, img.height() as usize) == (w, h) {
        img
    } else {
        image::imageops::resize(
            &img,
            w as u32,
            h as u32,
            image::imageops::FilterType::Triangle,
        )
    }
}
