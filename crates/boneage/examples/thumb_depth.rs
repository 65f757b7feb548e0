//! How deep inside the hand's outline the shipped front end puts the thumb tip and the
//! fingertip (`boneage_core::fingertip::depth`, in fingertip–capitate spans), how far the
//! hand's outline reaches beyond its fingertip along the capitate → fingertip axis
//! (`beyond`, in spans), and where along that axis it meets the image's border
//! (`edge_reach`, in spans from the capitate; empty where it meets none), film by film:
//! one CSV row per film with its answer (image pixels) and these measures, or the kind
//! of its refusal. For setting and judging checks of the key points against the
//! answer's own outline (README, "Checks against the answer's own outline"); compare the
//! answers with marked key points outside this program.
//!
//! `cargo run --release -p boneage --example thumb_depth -- MODELS_DIR FILM… > depth.csv`
use boneage_core::fingertip::depth;
use boneage_core::read_radiograph;
use boneage_core::registration::Canvas;
use boneage_nn::device::DeviceChoice;
use boneage_nn::pipeline::Pipeline;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let [_, models, films @ ..] = &a[..] else {
        return Err("usage: thumb_depth MODELS_DIR FILM…".into());
    };
    let pipeline = Pipeline::load(Path::new(models), Canvas::CPU, &DeviceChoice::Cpu.device()?)?;
    println!(
        "id,kind,fingertip_x,fingertip_y,thumb_x,thumb_y,capitate_x,capitate_y,\
         thumb_depth,fingertip_depth,beyond,edge_reach"
    );
    for film in films {
        let id = Path::new(film)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = read_radiograph(film)?;
        match pipeline.run(&r.pixels) {
            Ok(p) => {
                let k = &p.keypoints;
                let reading = if p.cut_out {
                    "cut out"
                } else if p.on_canvas.is_some() {
                    "on canvas"
                } else if p.framed {
                    "framed"
                } else if p.forearm_inside {
                    "forearm inside"
                } else if p.faint_tissue {
                    "faint tissue"
                } else {
                    "film"
                };
                println!(
                    "{id},{reading},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.4},{:.4},{:.4},{}",
                    k.fingertip.x,
                    k.fingertip.y,
                    k.thumb.x,
                    k.thumb.y,
                    k.capitate.x,
                    k.capitate.y,
                    depth(&p.mask, k.thumb, k.span()),
                    depth(&p.mask, k.fingertip, k.span()),
                    beyond(&p.mask, k),
                    edge_reach(&p.mask, k).map_or(String::new(), |e| format!("{e:.4}"))
                );
            }
            Err(e) => println!("{id},refused: {},,,,,,,,,,", e.kind()),
        }
    }
    Ok(())
}

/// How far the hand's mask reaches beyond the fingertip along the capitate → fingertip
/// axis, in spans (0 where nothing of it lies beyond).
fn beyond(mask: &boneage_core::image::Mask, k: &boneage_core::keypoints::KeyPoints) -> f64 {
    let span = k.span().max(1.0);
    let u = (k.fingertip - k.capitate) * (1.0 / span);
    let mut far = 1.0f64;
    for y in 0..mask.height() {
        for x in 0..mask.width() {
            if mask.get(x, y) {
                let p = boneage_core::geometry::Point::new(x as f64 + 0.5, y as f64 + 0.5);
                far = far.max((p - k.capitate).dot(u) / span);
            }
        }
    }
    far - 1.0
}

/// How far along the capitate → fingertip axis the hand's mask meets the image's
/// border, in spans from the capitate (the fingertip at 1); `None` where it meets none.
fn edge_reach(
    mask: &boneage_core::image::Mask,
    k: &boneage_core::keypoints::KeyPoints,
) -> Option<f64> {
    let span = k.span().max(1.0);
    let u = (k.fingertip - k.capitate) * (1.0 / span);
    let (w, h) = (mask.width(), mask.height());
    let mut far: Option<f64> = None;
    for y in 0..h {
        for x in 0..w {
            let border = x == 0 || y == 0 || x + 1 == w || y + 1 == h;
            if border && mask.get(x, y) {
                let p = boneage_core::geometry::Point::new(x as f64 + 0.5, y as f64 + 0.5);
                let t = (p - k.capitate).dot(u) / span;
                far = Some(far.map_or(t, |f| f.max(t)));
            }
        }
    }
    far
}
