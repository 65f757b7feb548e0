//! The synthetic hand phantom: believable left-hand radiographs with exact masks,
//! key points, ages and sexes, for tests and quick experiments.
//!
//! Pure and seeded: [`generate`] takes its randomness from the caller, and
//! [`write_dataset`] derives one ChaCha stream per image from the seed, so the same
//! seed gives byte-identical files however many threads run.

pub mod anatomy;
pub mod maturity;
pub mod render;

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{Sample, write_labels};
use crate::domain::Sex;
use crate::error::{Error, Result};
use crate::geometry::{Affine, Point, bounds};
use crate::image::GrayImage;
use crate::keypoints::KeyPoints;
pub use anatomy::Variation;
pub use maturity::Maturity;
pub use render::{Clutter, Photometry};

/// What to generate. `None` fields are drawn at random.
#[derive(Clone, Debug)]
pub struct PhantomConfig {
    /// Image width in pixels.
    pub width: usize,
    /// Image height in pixels.
    pub height: usize,
    /// Bone age in months (0–240); drawn from the RSNA distribution if `None`.
    pub age_months: Option<f64>,
    /// Sex; drawn with the RSNA proportion (53 % male) if `None`.
    pub sex: Option<Sex>,
    /// Rotation in degrees; drawn (mostly small, up to ±45°) if `None`.
    pub rotation_deg: Option<f64>,
    /// Mirror (a right hand); drawn with [`PhantomConfig::mirror_prob`] if `None`.
    pub mirrored: Option<bool>,
    /// Probability of a mirrored (right) hand.
    pub mirror_prob: f64,
    /// Probability of inverted polarity.
    pub inverted_prob: f64,
    /// Film nuisances (exposure, noise, collimation, markers, ruler). Off gives a
    /// clean, upright, centred film.
    pub nuisances: bool,
    /// Anatomical variation between individuals.
    pub variation: bool,
}

impl Default for PhantomConfig {
    fn default() -> Self {
        Self {
            width: 416,
            height: 512,
            age_months: None,
            sex: None,
            rotation_deg: None,
            mirrored: None,
            mirror_prob: 0.1,
            inverted_prob: 0.03,
            nuisances: true,
            variation: true,
        }
    }
}

impl PhantomConfig {
    /// Checks the arguments before anything is drawn.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(m));
        if self.width < 64 || self.height < 64 || self.width > 8192 || self.height > 8192 {
            return bad(format!(
                "phantom size {}x{} out of range (64 to 8192 per side)",
                self.width, self.height
            ));
        }
        if let Some(a) = self.age_months
            && !(0.0..=240.0).contains(&a)
        {
            return bad(format!("bone age {a} months out of range (0 to 240)"));
        }
        if let Some(r) = self.rotation_deg
            && !(r.is_finite() && r.abs() <= 180.0)
        {
            return bad(format!("rotation {r} degrees out of range"));
        }
        for (name, p) in [
            ("mirror", self.mirror_prob),
            ("inversion", self.inverted_prob),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(format!("{name} probability {p} not in [0, 1]"));
            }
        }
        Ok(())
    }
}

/// Ground truth that is not in the labels: how the film was made.
#[derive(Clone, Debug, Serialize)]
pub struct PhantomTruth {
    /// A right hand (thumb on the image's left).
    pub mirrored: bool,
    /// Negative polarity.
    pub inverted: bool,
    /// Rotation of the hand axis in degrees (+ = counter-clockwise on screen).
    pub rotation_deg: f64,
    /// Pixels per millimetre.
    pub px_per_mm: f64,
    /// Ossified carpals.
    pub visible_carpals: usize,
}

/// Anatomical landmarks in pixels, for checking registration and regions.
#[derive(Clone, Debug)]
pub struct Landmarks {
    /// Metacarpal (base, head) per ray: thumb, index, middle, ring, little.
    pub metacarpals: [(Point, Point); 5],
    /// Carpal centres in [`maturity::CARPALS`] order (ossified or not).
    pub carpals: [Point; 8],
}

/// One phantom radiograph with its ground truth.
pub struct Phantom {
    /// The radiograph, `[0, 1]`, bright = bone unless inverted.
    pub image: GrayImage,
    /// Hand mask, 1 inside.
    pub mask: Vec<u8>,
    /// Key points in pixels.
    pub keypoints: KeyPoints,
    /// Bone age in months.
    pub age_months: f64,
    /// Sex.
    pub sex: Sex,
    /// How the film was made.
    pub truth: PhantomTruth,
    /// Bone landmarks in pixels.
    pub landmarks: Landmarks,
}

/// Counts per 12-month bin of bone age in `../shared/data/rsna/raw.csv`
/// (1,000 RSNA training images), male then female: the phantom's age distribution.
const AGE_HIST_MALE: [u32; 20] = [
    0, 3, 5, 8, 17, 9, 23, 13, 20, 23, 44, 81, 56, 95, 75, 28, 10, 16, 5, 2,
];
const AGE_HIST_FEMALE: [u32; 20] = [
    0, 2, 14, 12, 7, 30, 50, 53, 43, 5, 59, 55, 46, 48, 11, 22, 5, 3, 2, 0,
];
/// Share of male patients in the same file (533 of 1,000).
const MALE_SHARE: f64 = 0.533;

/// Draws a sex and a whole-month bone age like the RSNA training set's. A small
/// floor of probability in every bin keeps infants and young adults present.
pub fn sample_age_sex(rng: &mut impl Rng) -> (f64, Sex) {
    let sex = if rng.random_bool(MALE_SHARE) {
        Sex::Male
    } else {
        Sex::Female
    };
    let hist = if sex == Sex::Male {
        &AGE_HIST_MALE
    } else {
        &AGE_HIST_FEMALE
    };
    let weights: Vec<f64> = hist.iter().map(|&c| c as f64 + 1.0).collect();
    let total: f64 = weights.iter().sum();
    let mut u = rng.random_range(0.0..total);
    let mut bin = weights.len() - 1;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            bin = i;
            break;
        }
        u -= w;
    }
    let age = (bin as f64 * 12.0 + rng.random_range(0.0..12.0))
        .floor()
        .clamp(1.0, 228.0);
    (age, sex)
}

/// Generates one phantom. All randomness comes from `rng`.
pub fn generate(config: &PhantomConfig, rng: &mut impl Rng) -> Result<Phantom> {
    config.validate()?;
    let (w, h) = (config.width, config.height);
    let (drawn_age, drawn_sex) = sample_age_sex(rng);
    let age = config.age_months.unwrap_or(drawn_age);
    let sex = config.sex.unwrap_or(drawn_sex);
    let maturity = Maturity::at(age, sex);
    let variation = if config.variation {
        Variation::sample(rng)
    } else {
        Variation::none()
    };
    let hand = anatomy::build(&maturity, &variation);

    let nuis = config.nuisances;
    let mirrored = config
        .mirrored
        .unwrap_or_else(|| rng.random_bool(config.mirror_prob));
    let rotation_deg = config.rotation_deg.unwrap_or_else(|| {
        if !nuis {
            0.0
        } else if rng.random_bool(0.85) {
            (rng.random_range(-1.0..1.0) + rng.random_range(-1.0..1.0)) * 7.0
        } else {
            rng.random_range(-45.0..45.0)
        }
    });
    let angle = rotation_deg.to_radians();

    // Scale: small hands are collimated tighter, so they fill a bit less of the film
    // than adult hands but much more than their size in millimetres would say.
    let hand_len = hand.capitate.dist(hand.fingertip);
    let fill = (0.46 + 0.22 * (maturity.scale - 0.35) / 0.65)
        * if nuis {
            rng.random_range(0.9..1.1)
        } else {
            1.0
        };
    let mut s = fill * h as f64 / hand_len;
    // Fit the extent (fingertips, wrist) into the image with a margin, shrinking
    // if the rotation needs it, then place it at random within the free room.
    let margin = 0.03 * w.min(h) as f64;
    let probe = Affine::similarity(1.0, angle, mirrored, Point::default());
    let mut pts: Vec<Point> = hand.extent.iter().map(|p| probe.apply(*p)).collect();
    pts.push(probe.apply(hand.capitate));
    let (lo, hi) = bounds(&pts);
    let span = hi - lo;
    s = s
        .min((w as f64 - 2.0 * margin) / span.x)
        .min((h as f64 - 2.0 * margin) / span.y);
    let room = Point::new(
        w as f64 - 2.0 * margin - span.x * s,
        h as f64 - 2.0 * margin - span.y * s,
    );
    let jitter = |r: f64, rng: &mut dyn rand::RngCore| {
        if nuis && r > 0.0 {
            rng.random_range(0.0..=r)
        } else {
            r * 0.5
        }
    };
    let tx = margin + jitter(room.x, rng) - lo.x * s;
    // Fingers toward the top: prefer the upper part of the free room.
    let ty = margin + jitter(room.y, rng) * if nuis { 1.0 } else { 0.4 } - lo.y * s;
    let to_px = Affine::similarity(s, angle, mirrored, Point::new(tx, ty));

    let keep: Vec<Point> = hand
        .extent
        .iter()
        .chain([&hand.fingertip, &hand.thumb_tip, &hand.capitate])
        .map(|p| to_px.apply(*p))
        .collect();
    let (photo, mut clutter) = if nuis {
        (
            Photometry::sample(rng, config.inverted_prob),
            Clutter::sample(rng, w, h, &keep),
        )
    } else {
        (Photometry::clean(), Clutter::default())
    };
    let film = render::render(&hand, &to_px, w, h, &photo, &mut clutter, rng);
    let keypoints = KeyPoints {
        fingertip: hand.fingertip,
        thumb: hand.thumb_tip,
        capitate: hand.capitate,
    }
    .mapped(&to_px);
    Ok(Phantom {
        image: film.image,
        mask: film.mask,
        keypoints,
        age_months: age,
        sex,
        landmarks: Landmarks {
            metacarpals: hand
                .metacarpals
                .map(|(b, h)| (to_px.apply(b), to_px.apply(h))),
            carpals: hand.carpals.map(|c| to_px.apply(c)),
        },
        truth: PhantomTruth {
            mirrored,
            inverted: photo.inverted,
            rotation_deg,
            px_per_mm: s,
            visible_carpals: hand.visible_carpals,
        },
    })
}

/// The random stream of image `index` of a dataset made with `seed`.
pub fn image_rng(seed: u64, index: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    rng
}

/// The id of phantom number `index` (0-based): `ph00001`, `ph00002`, …
pub fn phantom_id(index: usize) -> String {
    format!("ph{:05}", index + 1)
}

/// Which ages a dataset holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgePlan {
    /// Age and sex drawn per image (or fixed by the config).
    #[default]
    Drawn,
    /// First half female, second half male, each with ages evenly spaced from 1 to
    /// 228 months: a maturity sweep for looking at.
    Sweep,
}

/// The config of image `i` of `n` under an age plan.
pub fn config_for(base: &PhantomConfig, plan: AgePlan, i: usize, n: usize) -> PhantomConfig {
    match plan {
        AgePlan::Drawn => base.clone(),
        AgePlan::Sweep => {
            let half = n.div_ceil(2);
            let (sex, j, m) = if i < half {
                (Sex::Female, i, half)
            } else {
                (Sex::Male, i - half, n - half)
            };
            let age = if m <= 1 {
                120.0
            } else {
                (1.0 + 227.0 * j as f64 / (m - 1) as f64).round()
            };
            PhantomConfig {
                age_months: Some(age),
                sex: Some(sex),
                ..base.clone()
            }
        }
    }
}

/// Writes `n` phantoms to `out` in RSNA layout: `<id>.png`, `labels.csv`
/// (`id,boneage,male`), `masks/<id>.png`, `keypoints.csv` and `phantom.csv` (how each
/// film was made). Runs on rayon's pool; `progress` is called once per image written.
pub fn write_dataset(
    out: &Path,
    n: usize,
    seed: u64,
    config: &PhantomConfig,
    plan: AgePlan,
    progress: &(dyn Fn() + Sync),
) -> Result<()> {
    config.validate()?;
    let masks = out.join("masks");
    std::fs::create_dir_all(&masks).map_err(|e| Error::io(&masks, e))?;
    let rows: Vec<(String, Phantom)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut rng = image_rng(seed, i as u64);
            let mut p = generate(&config_for(config, plan, i, n), &mut rng)?;
            let id = phantom_id(i);
            p.image.save_png(&out.join(format!("{id}.png")))?;
            let mask = image::GrayImage::from_raw(
                config.width as u32,
                config.height as u32,
                p.mask.iter().map(|&m| m * 255).collect(),
            )
            .expect("mask matches image size");
            crate::image::save_luma8_png(&mask, &masks.join(format!("{id}.png")))?;
            progress();
            // The pixels are on disk; keep only the ground truth.
            p.image = GrayImage::new(1, 1);
            p.mask = Vec::new();
            Ok((id, p))
        })
        .collect::<Result<_>>()?;
    let samples: Vec<Sample> = rows
        .iter()
        .map(|(id, p)| Sample {
            id: id.clone(),
            boneage_months: p.age_months,
            sex: p.sex,
        })
        .collect();
    write_labels(&out.join("labels.csv"), &samples)?;
    crate::keypoints::write_csv(
        &out.join("keypoints.csv"),
        rows.iter().map(|(id, p)| (id.as_str(), &p.keypoints)),
    )?;
    crate::io::write_atomic(&out.join("phantom.csv"), |w| {
        use std::io::Write;
        writeln!(
            w,
            "id,mirrored,inverted,rotation_deg,px_per_mm,visible_carpals"
        )?;
        for (id, p) in &rows {
            let t = &p.truth;
            writeln!(
                w,
                "{id},{},{},{:.2},{:.4},{}",
                t.mirrored, t.inverted, t.rotation_deg, t.px_per_mm, t.visible_carpals
            )?;
        }
        Ok(())
    })
}
