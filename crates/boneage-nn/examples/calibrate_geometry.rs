//! Calibrates where mask geometry puts the capitate, on registered radiographs.
//!
//! Registered images have the middle fingertip and the capitate at known canvas
//! positions; this segments each with a U-Net, finds the fingertip, thumb and palm
//! from the mask alone, and prints the ratios that place the capitate
//! (`boneage_core::hand_geometry::GeometryParams`) with their spread, and the fingertip
//! error.
//!
//! `cargo run --release -p boneage-nn --example calibrate_geometry -- \
//!     ../shared/data/rsna/registered UNET.safetensors [OUT_DIR]`

use std::path::PathBuf;

use boneage_core::hand_geometry::{GeometryParams, keypoints_from_mask};
use boneage_core::overlay::{colors, draw_mask_outline, draw_point, to_rgb};
use boneage_core::registration::Canvas;
use boneage_nn::pipeline::Segmenter;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, weights) = match args.as_slice() {
        [_, d, w, ..] => (PathBuf::from(d), PathBuf::from(w)),
        _ => {
            return Err(
                "usage: calibrate_geometry REGISTERED_DIR UNET.safetensors [OUT_DIR]".into(),
            );
        }
    };
    let out = args.get(3).map(PathBuf::from);
    let net = Segmenter::load(&weights, &boneage_nn::device::DeviceChoice::Cpu.device()?)?;
    let canvas = Canvas::PAPER;
    let (ft_true, cap_true) = (canvas.fingertip_target(), canvas.capitate_target());
    let params = GeometryParams {
        capitate_along: 0.0,
        capitate_across: 0.0,
        ..GeometryParams::default()
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    paths.sort();
    let (mut along, mut across, mut ft_err) = (Vec::new(), Vec::new(), Vec::new());
    println!("image,digits,fingertip_error_px,along,across");
    for p in &paths {
        let r = boneage_core::read_radiograph(p)?;
        let mask = net.segment(&r.pixels);
        let Some(g) = keypoints_from_mask(&mask, &params) else {
            println!("{},none", p.display());
            continue;
        };
        if let Some(dir) = &out {
            // What the geometry found: palm disk centre, fingertip, thumb, true capitate.
            let mut rgb = to_rgb(&r.pixels);
            draw_mask_outline(&mut rgb, &mask, colors::MASK, 4);
            draw_point(&mut rgb, g.palm_centre, g.palm_radius, [60, 60, 200]);
            draw_point(&mut rgb, g.keypoints.fingertip, 20.0, [255, 0, 0]);
            draw_point(&mut rgb, g.keypoints.thumb, 20.0, [0, 160, 255]);
            draw_point(&mut rgb, cap_true, 20.0, [255, 255, 0]);
            let small = image::imageops::thumbnail(&rgb, 400, 520);
            small.save(dir.join(p.file_name().expect("file name")))?;
        }
        let ft = g.keypoints.fingertip;
        let axis = g.palm_centre - ft;
        let u = axis.unit();
        let mut v = u.perp();
        if v.dot(g.keypoints.thumb - g.palm_centre) < 0.0 {
            v = v * -1.0;
        }
        // Measured from the found fingertip, as the candidate will be placed.
        let d = cap_true - ft;
        let a = d.dot(u) / axis.norm();
        let c = d.dot(v) / g.palm_radius;
        let e = ft.dist(ft_true);
        println!("{},{},{e:.1},{a:.3},{c:.3}", p.display(), g.digits);
        along.push(a);
        across.push(c);
        ft_err.push(e);
    }
    let n = along.len();
    let mut abs_dev: Vec<f64> = {
        let m = median(&mut along.clone());
        along.iter().map(|a| (a - m).abs()).collect()
    };
    println!(
        "{n} images: capitate_along median {:.3} (median absolute deviation {:.3}), \
         capitate_across median {:.3}, fingertip error median {:.1} px of {}",
        median(&mut along),
        median(&mut abs_dev),
        median(&mut across),
        median(&mut ft_err),
        canvas.height
    );
    Ok(())
}
