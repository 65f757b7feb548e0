//! Where the mask's geometry finds the digit tips, against key points marked by hand.
//!
//! For each film of one or more key-point CSVs, segments it with a U-Net, measures the
//! mask's geometry as the pipeline does (`boneage_nn::pipeline::mask_geometry`) and
//! prints one row: the digits found, each tip's reach along the hand (palm radii from
//! the palm centre, along the mean direction of the tips), which tip the geometry
//! reads as the thumb, and which tips lie nearest the marked thumb tip and fingertip
//! (with their distance in % of the marked fingertip–capitate span). For choosing the
//! geometry's rules on marked films without running the whole front end.
//!
//! `cargo run --release -p boneage --example thumb_census -- UNET.safetensors \
//!     FILM_DIR[,FILM_DIR…] KEYPOINTS.csv [KEYPOINTS.csv …] > census.csv`

use std::path::{Path, PathBuf};

use boneage_core::geometry::Point;
use boneage_nn::pipeline::{Segmenter, mask_geometry};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err(
            "usage: thumb_census UNET.safetensors FILM_DIR[,FILM_DIR…] KEYPOINTS.csv…".into(),
        );
    }
    let net = Segmenter::load(
        Path::new(&args[1]),
        &boneage_nn::device::DeviceChoice::Cpu.device()?,
    )?;
    let dirs: Vec<PathBuf> = args[2].split(',').map(PathBuf::from).collect();
    println!(
        "set,id,digits,palm_radius,thumb_index,nearest_to_thumb,thumb_off,\
         nearest_to_fingertip,fingertip_off,reach,angle"
    );
    for csv in &args[3..] {
        let set = Path::new(csv)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        for (id, truth) in boneage_core::keypoints::read_csv(Path::new(csv))? {
            let Some(film) = dirs
                .iter()
                .map(|d| d.join(format!("{id}.png")))
                .find(|p| p.exists())
            else {
                eprintln!("{id}: no film in {}", args[2]);
                continue;
            };
            let r = boneage_core::read_radiograph(&film)?;
            let mask = net.segment(&r.pixels);
            let Some(g) = mask_geometry(&mask) else {
                println!("{set},{id},0,,,,,,,,");
                continue;
            };
            let c = g.palm_centre;
            let axis = boneage_core::geometry::mean_direction(c, g.tips.iter().copied());
            let span = truth.span();
            let nearest = |p: Point| {
                g.nearest_tip(p)
                    .map(|(i, t)| (i, 100.0 * t.dist(p) / span))
                    .unwrap_or((usize::MAX, f64::NAN))
            };
            let thumb_index = g
                .tips
                .iter()
                .position(|&t| t == g.keypoints.thumb)
                .map_or(-1, |i| i as i64);
            let (nt, dt) = nearest(truth.thumb);
            let (nf, df) = nearest(truth.fingertip);
            let reach: Vec<String> = g
                .tips
                .iter()
                .map(|&t| format!("{:.2}", (t - c).dot(axis) / g.palm_radius))
                .collect();
            let angle: Vec<String> = g
                .tips
                .iter()
                .map(|&t| format!("{:.3}", (t - c).angle_from(axis)))
                .collect();
            println!(
                "{set},{id},{},{:.1},{thumb_index},{nt},{dt:.1},{nf},{df:.1},{},{}",
                g.digits,
                g.palm_radius,
                reach.join(" "),
                angle.join(" ")
            );
        }
    }
    Ok(())
}
