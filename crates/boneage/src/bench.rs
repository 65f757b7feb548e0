//! Timings of this project's image operations, for `boneage bench ops` to set beside
//! a reference (OpenCV) measured in the same run. Benchmarks print ratios; they are
//! not tests.

use boneage_core::GrayImage;
use boneage_core::geometry::{Affine, Point};
use boneage_core::image::Mask;
use boneage_core::ops::{
    ClaheConfig, Connectivity, clahe, fill_holes, largest_component, resize_area, resize_bilinear,
    warp_affine,
};
use boneage_core::phantom::{PhantomConfig, generate, image_rng};

/// A phantom film at the paper's canvas size, 1600 wide and 2080 tall, rounded
/// through 8 bits so that a reference reading its PNG sees exactly the same pixels.
pub fn bench_film() -> boneage_core::Result<GrayImage> {
    let cfg = PhantomConfig {
        width: 1600,
        height: 2080,
        ..PhantomConfig::default()
    };
    let img = generate(&cfg, &mut image_rng(1, 0))?.image;
    GrayImage::from_vec(
        img.width(),
        img.height(),
        img.to_u8().iter().map(|&v| v as f32 / 255.0).collect(),
    )
}

/// One timed operation.
type Operation<'a> = Box<dyn FnMut() + 'a>;

/// The median seconds of `reps` runs of each operation whose name contains `only`
/// (NaN for the others): warp, bilinear and area resizing, CLAHE, components and
/// hole filling.
pub fn time_image_ops(img: &GrayImage, reps: usize, only: &str) -> Vec<(&'static str, f64)> {
    let (w, h) = (img.width(), img.height());
    // Rotate 10 degrees and zoom 1.1 about the centre, as OpenCV's
    // getRotationMatrix2D; the warp wants the output-to-input map.
    let c = Point::new(w as f64 / 2.0, h as f64 / 2.0);
    let r = Affine::similarity(1.1, 10f64.to_radians(), false, Point::default());
    let forward = Affine::similarity(1.1, 10f64.to_radians(), false, c - r.apply(c));
    let out_to_in = forward.inverse().expect("invertible");
    let mask = Mask::threshold(img, 40.0 / 255.0);
    let clahe_cfg = ClaheConfig {
        tiles_x: 8,
        tiles_y: 8,
        clip_limit: 2.0,
    };
    let time = |name: &str, f: &mut dyn FnMut()| {
        if name.contains(only) {
            boneage_nn::bench::timed(1, reps, f)
        } else {
            f64::NAN
        }
    };
    let mut cases: Vec<(&'static str, Operation<'_>)> = vec![
        (
            "warp_affine",
            Box::new(|| drop(warp_affine(img, &out_to_in, w, h))),
        ),
        (
            "resize_bilinear_400x520",
            Box::new(|| drop(resize_bilinear(img, 400, 520))),
        ),
        (
            "resize_area_400x520",
            Box::new(|| drop(resize_area(img, 400, 520))),
        ),
        ("clahe_8x8_clip2", Box::new(|| drop(clahe(img, &clahe_cfg)))),
        (
            "components_and_holes",
            Box::new(|| drop(fill_holes(&largest_component(&mask, Connectivity::Eight)))),
        ),
    ];
    cases
        .iter_mut()
        .map(|(name, f)| (*name, time(name, f.as_mut())))
        .collect()
}
