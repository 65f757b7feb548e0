//! Timings of this project's image operations, for `boneage bench ops` to set beside
//! a reference (OpenCV) measured in the same run, and of the front end on real films
//! one at a time and several at once, for `boneage bench front-end`. Benchmarks print
//! ratios; they are not tests.

use boneage_core::GrayImage;
use boneage_core::geometry::{Affine, Point};
use boneage_core::image::Mask;
use boneage_core::keypoints::KeyPoints;
use boneage_core::metrics::percentile;
use boneage_core::ops::{
    ClaheConfig, Connectivity, clahe, fill_holes, largest_component, resize_area, resize_bilinear,
    warp_affine,
};
use boneage_core::phantom::{PhantomConfig, generate, image_rng};
use boneage_nn::pipeline::Pipeline;

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

/// One pass of the front end over decoded films: its wall time and each film's
/// answer (the key points, or the refusal's kind).
pub struct FrontEndPass {
    /// Wall seconds of the pass (decoding excluded).
    pub seconds: f64,
    /// Each film's answer, in the films' order.
    pub answers: Vec<Result<KeyPoints, String>>,
}

/// The front end ([`Pipeline::run`]) over `films`, `jobs` at a time
/// ([`crate::at_once::each_at_once`]).
pub fn front_end_pass(pipeline: &Pipeline, films: &[GrayImage], jobs: usize) -> FrontEndPass {
    let start = std::time::Instant::now();
    let mut answers = Vec::with_capacity(films.len());
    let read = |film: &GrayImage| {
        pipeline
            .run(film)
            .map(|p| p.keypoints)
            .map_err(|e| e.kind())
    };
    let _ = crate::at_once::each_at_once(films, jobs, read, |_, a| {
        answers.push(a);
        Ok::<_, std::convert::Infallible>(())
    });
    FrontEndPass {
        seconds: start.elapsed().as_secs_f64(),
        answers,
    }
}

/// The front end timed one film at a time and `jobs` at once, alternating, `reps`
/// passes each: the median wall seconds a film of each, and whether every pass gave
/// the same answers.
pub struct FrontEndBench {
    /// Films in each pass.
    pub films: usize,
    /// Films at once in the second way.
    pub jobs: usize,
    /// Median seconds a film, one at a time (the nearest rank's, as
    /// [`percentile`]).
    pub one_at_a_time: f64,
    /// Median seconds a film, `jobs` at once.
    pub at_once: f64,
    /// Every pass answered every film alike.
    pub same_answers: bool,
    /// Films answered (in the first pass).
    pub answered: usize,
    /// Films refused (in the first pass).
    pub refused: usize,
}

/// Runs [`FrontEndBench`]: one film through the front end first, untimed, then
/// `reps` rounds of a pass one at a time and a pass `jobs` at once.
pub fn bench_front_end(
    pipeline: &Pipeline,
    films: &[GrayImage],
    jobs: usize,
    reps: usize,
) -> FrontEndBench {
    if let Some(first) = films.first() {
        let _ = pipeline.run(first);
    }
    let (mut one, mut many) = (Vec::new(), Vec::new());
    let mut answers: Option<Vec<Result<KeyPoints, String>>> = None;
    let mut same = true;
    for _ in 0..reps.max(1) {
        for (j, times) in [(1, &mut one), (jobs, &mut many)] {
            let pass = front_end_pass(pipeline, films, j);
            times.push(pass.seconds / films.len().max(1) as f64);
            match &answers {
                Some(a) => same &= *a == pass.answers,
                None => answers = Some(pass.answers),
            }
        }
    }
    let answers = answers.unwrap_or_default();
    let refused = answers.iter().filter(|a| a.is_err()).count();
    FrontEndBench {
        films: films.len(),
        jobs,
        one_at_a_time: percentile(&one, 0.5).unwrap_or(f64::NAN),
        at_once: percentile(&many, 0.5).unwrap_or(f64::NAN),
        same_answers: same,
        answered: answers.len() - refused,
        refused,
    }
}
