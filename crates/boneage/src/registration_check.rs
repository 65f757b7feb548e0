//! The check after registration ([`boneage_core::hand_template`]): the mean
//! registered hand built from reviewed key points, its limits chosen on other films,
//! and its measure — how many correct registrations it refuses, how many registrations
//! made wrong on purpose it catches, and what it changes in the front end's answers.

use std::collections::BTreeMap;
use std::path::Path;

use boneage_core::dataset::Sample;
use boneage_core::geometry::Point;
use boneage_core::ops::{NormalizeConfig, normalize_hand};
use boneage_nn::data::{Example, Examples, Target};
use boneage_nn::verifier::verifier_pixels;
use rayon::prelude::*;

use boneage_core::dataset::Dataset;
use boneage_core::hand_template::{Fit, HandTemplate, Limits, WrongFit};
use boneage_core::image::Mask;
use boneage_core::keypoints::KeyPoints;
use boneage_core::registration::register;
use boneage_core::{Error, GrayImage, read_radiograph};
use boneage_nn::pipeline::{Pipeline, mask_geometry};

use crate::preprocess_eval::sample_path;
use crate::progress::Progress;
use crate::stress_eval::{Outcome, judge};

/// Registrations made wrong on purpose, as the front end gets them wrong.
pub const WRONG_KINDS: [&str; 4] = [
    "fingertip on a neighbouring finger",
    "thumb mirrored across the hand's axis",
    "capitate 10 % of the hand towards the fingers",
    "capitate 10 % of the hand towards the wrist",
];

/// The mask's digit tips next to the true fingertip of `truth` (at most two, nearest
/// first; none where the fingers merge): between 5 and 40 % of the span from it, and
/// not the thumb.
fn neighbour_tips(mask: &Mask, truth: &KeyPoints) -> Vec<Point> {
    let length = truth.span().max(1.0);
    let Some(g) = mask_geometry(mask) else {
        return Vec::new();
    };
    let mut tips: Vec<(f64, Point)> = g
        .tips
        .iter()
        .filter(|p| p.dist(truth.thumb) > 0.15 * length)
        .map(|&p| (p.dist(truth.fingertip) / length, p))
        .filter(|(d, _)| (0.05..0.4).contains(d))
        .collect();
    tips.sort_by(|a, b| a.0.total_cmp(&b.0));
    tips.into_iter().take(2).map(|(_, p)| p).collect()
}

/// The thumb tip of `k` mirrored across the capitate → fingertip line.
fn mirrored_thumb(k: &KeyPoints) -> Point {
    let axis = (k.fingertip - k.capitate).unit();
    let t = k.thumb - k.capitate;
    let foot = k.capitate + axis * t.dot(axis);
    foot + (foot - k.thumb)
}

/// Key points made wrong on purpose from the `truth` of a film whose hand mask is
/// `mask`: each kind of [`WRONG_KINDS`] by its index. The neighbouring fingertips are
/// the mask's other digit tips next to the true one (none where the fingers merge).
pub fn wrong_keypoints(mask: &Mask, truth: &KeyPoints) -> Vec<(usize, KeyPoints)> {
    let mut out: Vec<(usize, KeyPoints)> = neighbour_tips(mask, truth)
        .into_iter()
        .map(|tip| {
            (
                0,
                KeyPoints {
                    fingertip: tip,
                    ..*truth
                },
            )
        })
        .collect();
    out.push((
        1,
        KeyPoints {
            thumb: mirrored_thumb(truth),
            ..*truth
        },
    ));
    let step = (truth.fingertip - truth.capitate) * 0.1;
    for (kind, sign) in [(2, 1.0), (3, -1.0)] {
        out.push((
            kind,
            KeyPoints {
                capitate: truth.capitate + step * sign,
                ..*truth
            },
        ));
    }
    out
}

/// Right registrations the verifier trains on: each point moved by up to this share
/// of the fingertip–capitate span (the front end's right answers lie within 5 %).
pub const VERIFIER_JITTER: f64 = 0.035;

/// A small deterministic generator (SplitMix64) for the verifier's examples, so that
/// they depend only on the seed and the film.
struct Draws(u64);

impl Draws {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn sign(&mut self) -> f64 {
        if self.next() & 1 == 0 { 1.0 } else { -1.0 }
    }
    /// A point within `radius` of the origin, uniform over the disc.
    fn in_disc(&mut self, radius: f64) -> Point {
        let r = radius * self.range(0.0, 1.0).sqrt();
        let a = self.range(0.0, std::f64::consts::TAU);
        Point::new(r * a.cos(), r * a.sin())
    }
}

/// Each point of `k` moved by up to `share` of its span.
fn jittered(k: &KeyPoints, share: f64, d: &mut Draws) -> KeyPoints {
    let r = share * k.span();
    KeyPoints {
        fingertip: k.fingertip + d.in_disc(r),
        thumb: k.thumb + d.in_disc(r),
        capitate: k.capitate + d.in_disc(r),
    }
}

/// A wrong registration drawn at random from `truth`, the ways the front end gets
/// them wrong, each point first moved by up to 2 % of the span: the fingertip on a
/// neighbouring finger (`tips`), the thumb mirrored, the capitate moved 8–16 % along
/// the hand or 8–14 % across it, or the fingertip moved 8–20 % along the hand.
fn wrong_at_random(truth: &KeyPoints, tips: &[Point], d: &mut Draws) -> KeyPoints {
    let span = truth.span();
    let axis = (truth.fingertip - truth.capitate).unit();
    let mut w = jittered(truth, 0.02, d);
    match d.next() % 5 {
        0 if !tips.is_empty() => {
            w.fingertip = tips[(d.next() % tips.len() as u64) as usize] + d.in_disc(0.02 * span);
        }
        0 | 1 => w.thumb = mirrored_thumb(truth) + d.in_disc(0.03 * span),
        2 => w.capitate = moved_capitate(truth, true, d),
        3 => w.capitate = moved_capitate(truth, false, d),
        _ => w.fingertip = truth.fingertip + axis * (d.range(0.08, 0.2) * d.sign() * span),
    }
    w
}

/// A wrong registration for the capitate check drawn from `truth`: each point first
/// moved by up to 2 % of the span, then the capitate moved 8–16 % along the hand (and
/// up to 5 % across) or 8–14 % across it — the capitate moves of [`wrong_at_random`].
fn wrong_capitate_at_random(truth: &KeyPoints, d: &mut Draws) -> KeyPoints {
    let mut w = jittered(truth, 0.02, d);
    let along_hand = d.next().is_multiple_of(2);
    w.capitate = moved_capitate(truth, along_hand, d);
    w
}

/// `truth`'s capitate moved 8–16 % of the span along the hand (and up to 5 % across
/// it) where `along_hand`, else 8–14 % across it, either way.
fn moved_capitate(truth: &KeyPoints, along_hand: bool, d: &mut Draws) -> Point {
    let span = truth.span();
    let axis = (truth.fingertip - truth.capitate).unit();
    let across = axis.perp();
    if along_hand {
        let along = d.range(0.08, 0.16) * d.sign();
        let side = d.range(-0.05, 0.05);
        truth.capitate + axis * (along * span) + across * (side * span)
    } else {
        truth.capitate + across * (d.range(0.08, 0.14) * d.sign() * span)
    }
}

/// Which verifier the examples are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifierKind {
    /// The registration verifier: the whole canvas, every way of going wrong.
    Registration,
    /// The capitate check: the carpus ([`boneage_nn::verifier::capitate_crop`]), the
    /// capitate moved.
    Capitate,
}

impl VerifierKind {
    /// The part of the canvas the verifier reads (none: all of it).
    pub fn crop(self) -> Option<[usize; 4]> {
        match self {
            VerifierKind::Registration => None,
            VerifierKind::Capitate => Some(boneage_nn::verifier::capitate_crop()),
        }
    }
}

/// The verifier's examples of `samples` (those with points in `keypoints`): per film,
/// `per_film` right registrations ([`VERIFIER_JITTER`]) and as many wrong ones
/// ([`wrong_at_random`], or [`wrong_capitate_at_random`] for the capitate check),
/// each the film segmented by the pipeline's U-Net, normalised, registered onto the
/// pipeline's canvas and averaged down to `input` from the part `kind` reads
/// ([`verifier_pixels`]) — the verifier's input as the pipeline makes it.
///
/// With `films`, two pairs (one right, one wrong) in three read the film as sent and
/// the third one of two copies of it changed as another source might send it, in
/// turn ([`boneage_nn::data::film_as_sent`]: exposure, a marker, the film's edge and
/// a field around it, the wrist cut), each copy segmented again — the second by
/// the framed-film U-Net where the pipeline has one, as its framed reading segments
/// ([`Pipeline::framed`]) — so that the verifier learns the right registrations of
/// films unlike the development set, with the masks the pipeline gives them.
#[allow(clippy::too_many_arguments)]
pub fn verifier_examples(
    kind: VerifierKind,
    pipeline: &Pipeline,
    ds: &Dataset,
    samples: &[Sample],
    keypoints: &BTreeMap<String, KeyPoints>,
    input: [usize; 2],
    per_film: usize,
    films: bool,
    seed: u64,
    progress: &(dyn Fn() + Sync),
) -> Result<Examples, Error> {
    let out: Vec<Result<Vec<Example>, Error>> = samples
        .par_iter()
        .enumerate()
        .map(|(n, s)| {
            let r = (|| {
                let Some(truth) = keypoints.get(&s.id) else {
                    return Ok(Vec::new());
                };
                let img = read_radiograph(ds.image_path(s))?.pixels;
                let mask = pipeline.segment(&img);
                let tips = neighbour_tips(&mask, truth);
                let mut d = Draws(seed ^ (n as u64).wrapping_mul(0xd1b5_4a32_d192_ed03));
                let mut versions = vec![normalize_hand(&img, &mask, &NormalizeConfig::default())];
                if films {
                    for copy in 0..2 {
                        let sent = boneage_nn::data::film_as_sent(&img, &mask, d.next());
                        let outline = match (copy, pipeline.framed.as_ref()) {
                            (1, Some(framed)) => framed.segment(&sent),
                            _ => pipeline.segment(&sent),
                        };
                        versions.push(normalize_hand(&sent, &outline, &NormalizeConfig::default()));
                    }
                }
                let mut items = Vec::with_capacity(2 * per_film);
                for k in 0..2 * per_film {
                    let right = k % 2 == 0;
                    let pair = k / 2;
                    let version = if versions.len() > 1 && pair % 3 == 2 {
                        1 + (pair / 3) % 2
                    } else {
                        0
                    };
                    let norm = &versions[version];
                    let points = match (right, kind) {
                        (true, _) => jittered(truth, VERIFIER_JITTER, &mut d),
                        (false, VerifierKind::Registration) => {
                            wrong_at_random(truth, &tips, &mut d)
                        }
                        (false, VerifierKind::Capitate) => wrong_capitate_at_random(truth, &mut d),
                    };
                    let Ok(reg) = register(&points, &pipeline.canvas) else {
                        continue;
                    };
                    items.push(Example {
                        id: s.id.clone(),
                        male: s.sex.is_male(),
                        pixels: verifier_pixels(
                            &reg.warp(norm, &pipeline.canvas),
                            input,
                            kind.crop(),
                        ),
                        target: Target::Right(right),
                    });
                }
                Ok(items)
            })();
            progress();
            r
        })
        .collect();
    let mut items = Vec::new();
    for r in out {
        items.extend(r?);
    }
    Ok(Examples {
        height: input[0],
        width: input[1],
        items,
    })
}

/// How the check judged the registration of `mask` from `k`: the fit and the reason
/// for refusing, or `None` when the key points cannot be registered at all (or the
/// pipeline has no template). Where the template lets it through and the pipeline has
/// a verifier, the verifier judges the hand `normalized` registered.
fn checked(
    pipeline: &Pipeline,
    mask: &Mask,
    normalized: &GrayImage,
    k: &KeyPoints,
) -> Option<(Fit, Option<WrongFit>)> {
    let r = register(k, &pipeline.canvas).ok()?;
    let (fit, why) = pipeline.check(mask, k, &r)?;
    let why = why.or_else(|| pipeline.verify(&r.warp(normalized, &pipeline.canvas)));
    Some((fit, why))
}

/// A registered hand (grey) with the template's outline (cyan), titled.
fn tile(
    template: &HandTemplate,
    registered: &GrayImage,
    title: String,
) -> (String, image::RgbImage) {
    let mut rgb = boneage_core::overlay::to_rgb(registered);
    let edge = template.outline(registered.width(), registered.height());
    for y in 0..registered.height() {
        for x in 0..registered.width() {
            if edge.get(x, y) {
                rgb.put_pixel(x as u32, y as u32, image::Rgb([0, 230, 230]));
            }
        }
    }
    let small = image::imageops::thumbnail(&rgb, TILE[0], TILE[1]);
    (title, small)
}

/// Tile size of the check's contact sheet (the canvas's proportions).
const TILE: [u32; 2] = [160, 208];

/// One film's measure.
struct FilmCheck {
    id: String,
    /// The truth registered with the U-Net's mask.
    correct: Option<(Fit, Option<WrongFit>)>,
    /// Each wrong kind's registrations.
    wrongs: Vec<(usize, Fit, Option<WrongFit>)>,
    /// Each moved capitate's distance from the capitate of the front end's own answer
    /// (a share of the true span), and whether the check caught it; none where the
    /// front end gave no answer.
    moved_capitates: Vec<(f64, bool)>,
    /// The front end without the check, and with it.
    before: Outcome,
    after: Outcome,
    /// The reason the check gave for refusing the front end's answer.
    after_why: Option<WrongFit>,
    /// Pictures for the sheet: correct registrations refused, wrong answers passed.
    tiles: Vec<(String, image::RgbImage)>,
}

/// Reads a film, naming it in errors.
fn read(ds: &Dataset, id: &str) -> Result<GrayImage, Error> {
    Ok(read_radiograph(sample_path(ds, id)?)?.pixels)
}

fn measure_film(
    pipeline: &Pipeline,
    img: &GrayImage,
    id: &str,
    truth: &KeyPoints,
    pictures: bool,
) -> FilmCheck {
    let mask = pipeline.segment(img);
    let norm = normalize_hand(img, &mask, &NormalizeConfig::default());
    let correct = checked(pipeline, &mask, &norm, truth);
    let mut tiles = Vec::new();
    if pictures
        && let Some((_, Some(_))) = &correct
        && let Ok(r) = register(truth, &pipeline.canvas)
        && let Some(t) = &pipeline.template
    {
        tiles.push(tile(
            t,
            &r.warp(&norm, &pipeline.canvas),
            format!("{id} refused"),
        ));
    }
    let found = pipeline.run_unchecked(img).ok();
    let mut moved_capitates = Vec::new();
    let wrongs = wrong_keypoints(&mask, truth)
        .into_iter()
        .filter_map(|(kind, k)| {
            let (fit, why) = checked(pipeline, &mask, &norm, &k)?;
            if kind >= 2
                && let Some(p) = &found
            {
                let d = k.capitate.dist(p.keypoints.capitate) / truth.span().max(1.0);
                moved_capitates.push((d, why.is_some()));
            }
            Some((kind, fit, why))
        })
        .collect();
    let before = judge(truth, found.as_ref().map(|p| &p.keypoints), 0.05);
    let (after, after_why) = match &found {
        Some(p) => match pipeline.judge(p) {
            Err(why) => (Outcome::Refused, Some(why)),
            Ok(_) => (before, None),
        },
        None => (Outcome::Refused, None),
    };
    if pictures
        && after == Outcome::Wrong
        && let (Some(p), Some(t)) = (&found, &pipeline.template)
    {
        tiles.push(tile(t, &p.registered, format!("{id} WRONG passed")));
    }
    FilmCheck {
        id: id.to_string(),
        correct,
        wrongs,
        moved_capitates,
        before,
        after,
        after_why,
        tiles,
    }
}

/// Builds the template from the U-Net's masks of the films `build` registered with
/// their reviewed key points, and chooses its limits on the films `tune` (correct
/// registrations only: the wrong ones are measured, never fitted). Returns the
/// template and a Markdown report of the tuning films.
/// The pipeline's template is the new one afterwards.
///
/// Where the pipeline has refining nets, each film's reviewed points are first moved
/// by them, as the pipeline moves its own (a film whose point they move too far is
/// left out): the template and its limits then describe hands registered the way the
/// pipeline registers them.
pub fn build_template(
    pipeline: &mut Pipeline,
    ds: &Dataset,
    build: &[(String, KeyPoints)],
    tune: &[(String, KeyPoints)],
    made_by: &str,
    progress: &dyn Progress,
) -> Result<(HandTemplate, String), Error> {
    progress.start("registering the template's hands", build.len());
    let mut registered = Vec::new();
    for (id, k) in build {
        let img = read(ds, id)?;
        if let Ok(r) = pipeline
            .refine(&img, k)
            .map_err(|_| ())
            .and_then(|k| register(&k, &pipeline.canvas).map_err(|_| ()))
        {
            registered.push(r.warp_mask(&pipeline.segment(&img), &pipeline.canvas));
        }
        progress.inc();
    }
    progress.finish();
    let mut template = HandTemplate::build(&registered, Limits::open(), made_by.to_string())?;
    pipeline.set_template(Some(template.clone()));
    let probe = &*pipeline;
    progress.start("choosing the limits", tune.len());
    let mut fits = Vec::new();
    let mut refined = Vec::with_capacity(tune.len());
    for (id, k) in tune {
        let img = read(ds, id)?;
        if let Ok(k) = probe.refine(&img, k) {
            let mask = probe.segment(&img);
            let norm = normalize_hand(&img, &mask, &NormalizeConfig::default());
            if let Some((fit, _)) = checked(probe, &mask, &norm, &k) {
                fits.push(fit);
            }
            refined.push((id.clone(), k));
        }
        progress.inc();
    }
    progress.finish();
    let tune = &refined[..];
    let limits = Limits::envelope(&fits).ok_or_else(|| {
        Error::InvalidArgument("none of the tuning films could be registered".into())
    })?;
    template.manifest.limits = limits;
    pipeline.set_template(Some(template.clone()));
    let films = measure(pipeline, ds, tune, None, progress)?;
    let report = check_report(
        &template,
        verifiers(pipeline),
        &films,
        "the tuning films (their correct registrations set the limits)",
    );
    Ok((template, report))
}

fn measure(
    pipeline: &Pipeline,
    ds: &Dataset,
    films: &[(String, KeyPoints)],
    sheet: Option<&Path>,
    progress: &dyn Progress,
) -> Result<Vec<FilmCheck>, Error> {
    progress.start("measuring the check", films.len());
    let mut out = Vec::new();
    for (id, k) in films {
        let img = read(ds, id)?;
        out.push(measure_film(pipeline, &img, id, k, sheet.is_some()));
        progress.inc();
    }
    progress.finish();
    if let Some(path) = sheet {
        let tiles: Vec<(String, image::RgbImage)> =
            out.iter().flat_map(|f| f.tiles.iter().cloned()).collect();
        let layout = boneage_core::sheet::SheetLayout {
            columns: 8,
            tile_width: TILE[0] as usize,
            tile_height: TILE[1] as usize,
            title: Some(
                "cyan: mean registered hand - REFUSED: correct registration refused - WRONG \
                 PASSED: wrong answer let through"
                    .into(),
            ),
        };
        boneage_core::sheet::save_rgb(&tiles, &layout, path)?;
    }
    Ok(out)
}

/// Measures the pipeline's check on `films` (true key points): correct registrations
/// refused, wrong ones caught, and the front end's answers before and after it.
pub fn evaluate_check(
    pipeline: &Pipeline,
    ds: &Dataset,
    films: &[(String, KeyPoints)],
    what: &str,
    sheet: Option<&Path>,
    progress: &dyn Progress,
) -> Result<String, Error> {
    let template = pipeline.template.as_ref().ok_or_else(|| {
        Error::InvalidArgument(
            "the models have no hand_template.json: nothing to measure (build one with \
             `boneage hand-template`)"
                .into(),
        )
    })?;
    let measured = measure(pipeline, ds, films, sheet, progress)?;
    Ok(check_report(template, verifiers(pipeline), &measured, what))
}

fn pct(n: usize, d: usize) -> String {
    if d == 0 {
        "–".into()
    } else {
        format!("{:.1}", 100.0 * n as f64 / d as f64)
    }
}

/// Which verifiers the pipeline has: the registration verifier's networks (none: 0),
/// the capitate check.
fn verifiers(pipeline: &Pipeline) -> (usize, bool) {
    (
        pipeline.verifier.as_ref().map_or(0, |v| v.members()),
        pipeline.capitate_verifier.is_some(),
    )
}

fn check_report(
    template: &HandTemplate,
    (verifier, capitate): (usize, bool),
    films: &[FilmCheck],
    what: &str,
) -> String {
    let l = &template.manifest.limits;
    let five = l
        .max_turn_deg_five_digits
        .filter(|&five| five > l.max_turn_deg)
        .map(|five| {
            format!(" (≤ {five:.0}° where the mask's five digits vouch for the key points)")
        })
        .unwrap_or_default();
    let mut md = format!(
        "Films: {} — {what}. Template: the mean of {} registered hands; limits: agreement ≥ \
         {:.3}, best-fitting turn ≤ {:.0}°{five}, scale {:.2}–{:.2}, thumb side ≥ {:.3}.\n\n",
        films.len(),
        template.manifest.films,
        l.min_agreement,
        l.max_turn_deg,
        l.scale[0],
        l.scale[1],
        l.min_thumb_side,
    );
    if verifier > 0 {
        let members = match verifier {
            1 => String::new(),
            n => format!(
                " with {} more networks beside it, `verifier-2.safetensors` on, their scores \
                 averaged",
                n - 1
            ),
        };
        md.push_str(&format!(
            "Then the registration verifier (`verifier.safetensors`{members}): a registration \
             the template passes is refused where it scores under {:.2}.\n\n",
            boneage_nn::verifier::VERIFIER_LIMIT
        ));
    }
    if capitate {
        md.push_str(&format!(
            "Then the capitate check (`capitate_verifier.safetensors`, the registered carpus \
             alone): a registration the rest passes is refused where it scores under {:.2}.\n\n",
            boneage_nn::verifier::VERIFIER_LIMIT
        ));
    }
    md.push_str("| registration | n | refused by the check | % |\n| --- | --- | --- | --- |\n");
    let correct: Vec<&Option<WrongFit>> = films
        .iter()
        .filter_map(|f| f.correct.as_ref().map(|c| &c.1))
        .collect();
    let refused = correct.iter().filter(|w| w.is_some()).count();
    md.push_str(&format!(
        "| correct (the true key points) | {} | {refused} | {} |\n",
        correct.len(),
        pct(refused, correct.len())
    ));
    let mut all = (0, 0);
    for (kind, name) in WRONG_KINDS.iter().enumerate() {
        let w: Vec<bool> = films
            .iter()
            .flat_map(|f| f.wrongs.iter())
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, _, why)| why.is_some())
            .collect();
        let caught = w.iter().filter(|&&c| c).count();
        all = (all.0 + caught, all.1 + w.len());
        md.push_str(&format!(
            "| wrong: {name} | {} | {caught} | {} |\n",
            w.len(),
            pct(caught, w.len())
        ));
    }
    md.push_str(&format!(
        "| wrong: all kinds | {} | {} | {} |\n",
        all.1,
        all.0,
        pct(all.0, all.1)
    ));
    let mut by_part = BTreeMap::new();
    for (_, _, why) in films.iter().flat_map(|f| f.wrongs.iter()) {
        if let Some(why) = why {
            *by_part.entry(why.kind()).or_insert(0usize) += 1;
        }
    }
    if !by_part.is_empty() {
        md.push_str("\nWrong registrations caught, by the part of the check that refused them: ");
        let parts: Vec<String> = by_part.iter().map(|(k, n)| format!("{k} {n}")).collect();
        md.push_str(&parts.join(", "));
        md.push_str(".\n");
    }
    let passed: Vec<String> = films
        .iter()
        .flat_map(|f| {
            f.wrongs
                .iter()
                .filter(|(_, _, why)| why.is_none())
                .map(move |(k, _, _)| format!("{} ({})", f.id, WRONG_KINDS[*k]))
        })
        .collect();
    if !passed.is_empty() {
        md.push_str("\nWrong registrations let through: ");
        md.push_str(&passed.join(", "));
        md.push_str(".\n");
    }
    md.push_str(&moved_capitate_table(films));
    // What the fits look like, for choosing limits and seeing why they hold.
    md.push_str(
        "\nThe fits (5th percentile / median / 95th percentile): agreement with the template \
         as it is, the turn and scale of the template that fits best, the thumb side (1: \
         the thumb where the template has it, −1: on the other side).\n\n\
         | registration | agreement | turn ° | scale | thumb side |\n| --- | --- | --- | --- | --- |\n",
    );
    let row = |name: &str, fits: &[Fit]| {
        let q = |f: fn(&Fit) -> f64| {
            let v: Vec<f64> = fits.iter().map(f).collect();
            let p = |x| boneage_core::metrics::percentile(&v, x).unwrap_or(f64::NAN);
            format!("{:.2} / {:.2} / {:.2}", p(0.05), p(0.5), p(0.95))
        };
        format!(
            "| {name} | {} | {} | {} | {} |\n",
            q(|f| f.agreement),
            q(|f| f.turn_deg.abs()),
            q(|f| f.scale),
            q(|f| f.thumb_side)
        )
    };
    let correct_fits: Vec<Fit> = films
        .iter()
        .filter_map(|f| f.correct.as_ref().map(|c| c.0))
        .collect();
    md.push_str(&row("correct", &correct_fits));
    for (kind, name) in WRONG_KINDS.iter().enumerate() {
        let fits: Vec<Fit> = films
            .iter()
            .flat_map(|f| f.wrongs.iter())
            .filter(|(k, _, _)| *k == kind)
            .map(|(_, fit, _)| *fit)
            .collect();
        md.push_str(&row(name, &fits));
    }
    // The front end's own answers.
    let mut before = [0usize; 3];
    let mut after = [0usize; 3];
    for f in films {
        before[f.before as usize] += 1;
        after[f.after as usize] += 1;
    }
    md.push_str(&format!(
        "\nThe front end's own answers (correct: all three key points within 5 % of the \
         hand's length of the truth):\n\n\
         | | correct | refused | wrong |\n| --- | --- | --- | --- |\n\
         | without the check | {} | {} | {} |\n| with the check | {} | {} | {} |\n",
        before[0], before[1], before[2], after[0], after[1], after[2]
    ));
    let listed: Vec<String> = films
        .iter()
        .filter(|f| f.before != f.after)
        .map(|f| {
            format!(
                "- {}: {} → refused ({})",
                f.id,
                if f.before == Outcome::Correct {
                    "correct"
                } else {
                    "wrong"
                },
                f.after_why.map(|w| w.to_string()).unwrap_or_default()
            )
        })
        .collect();
    if !listed.is_empty() {
        md.push_str("\nAnswers the check refused:\n\n");
        md.push_str(&listed.join("\n"));
        md.push('\n');
    }
    let refused_correct: Vec<String> = films
        .iter()
        .filter_map(|f| match &f.correct {
            Some((_, Some(why))) => Some(format!("- {}: {why}", f.id)),
            _ => None,
        })
        .collect();
    if !refused_correct.is_empty() {
        let mut by = std::collections::BTreeMap::new();
        for f in films {
            if let Some((_, Some(why))) = &f.correct {
                *by.entry(why.kind()).or_insert(0usize) += 1;
            }
        }
        md.push_str(
            "\nCorrect registrations refused, by the reason given:\n\n| reason | films |\n| --- | --- |\n",
        );
        for (reason, n) in by {
            md.push_str(&format!("| {reason} | {n} |\n"));
        }
        md.push_str("\nCorrect registrations the check refused:\n\n");
        md.push_str(&refused_correct.join("\n"));
        md.push('\n');
    }
    md
}

/// The capitates moved on purpose, by how far each lies from the capitate of the front
/// end's own answer on the film (a share of the true span): the marks' scatter about
/// the capitate makes a move of a tenth of the hand from the mark a smaller or larger
/// one from where the front end, and the nets trained on its labels, put the bone.
fn moved_capitate_table(films: &[FilmCheck]) -> String {
    let moved: Vec<(f64, bool)> = films
        .iter()
        .flat_map(|f| f.moved_capitates.iter().copied())
        .collect();
    if moved.is_empty() {
        return String::new();
    }
    let mut md = String::from(
        "\nThe capitates moved on purpose by their distance from the front end's own \
         capitate on the film (% of the hand's length; films the front end answered):\n\n\
         | distance | n | caught | % |\n| --- | --- | --- | --- |\n",
    );
    let edges = [0.0, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, f64::INFINITY];
    for w in edges.windows(2) {
        let bin: Vec<bool> = moved
            .iter()
            .filter(|(d, _)| (w[0]..w[1]).contains(d))
            .map(|&(_, c)| c)
            .collect();
        if bin.is_empty() {
            continue;
        }
        let caught = bin.iter().filter(|&&c| c).count();
        let name = if w[1].is_infinite() {
            format!("≥ {:.0}", 100.0 * w[0])
        } else if w[0] == 0.0 {
            format!("< {:.0}", 100.0 * w[1])
        } else {
            format!("{:.0}–{:.0}", 100.0 * w[0], 100.0 * w[1])
        };
        md.push_str(&format!(
            "| {name} | {} | {caught} | {} |\n",
            bin.len(),
            pct(caught, bin.len())
        ));
    }
    md
}

/// Films by id with their true key points.
pub type Films = Vec<(String, KeyPoints)>;

/// The reviewed key points of `csv` for the films of `ds`, split into those listed
/// in `tune` and the rest, leaving out the films of every `exclude` list.
pub fn split_films(
    ds: &Dataset,
    csv: &Path,
    tune: &Path,
    exclude: &[std::path::PathBuf],
) -> Result<(Films, Films), Error> {
    let points = boneage_core::keypoints::read_csv(csv)?;
    let tune: std::collections::BTreeSet<String> = boneage_core::dataset::read_id_list(tune)?
        .into_iter()
        .collect();
    let mut out: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for e in exclude {
        out.extend(boneage_core::dataset::read_id_list(e)?);
    }
    let here = |id: &String| ds.samples.iter().any(|s| &s.id == id);
    let (mut b, mut t) = (Vec::new(), Vec::new());
    for (id, k) in points {
        if !here(&id) || out.contains(&id) {
            continue;
        }
        if tune.contains(&id) {
            t.push((id, k));
        } else {
            b.push((id, k));
        }
    }
    Ok((b, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verifier's examples mean what they say: every right registration drawn is
    /// correct by the front end's own measure (each point within 5 % of the hand's
    /// length of the truth), and every wrong one is not.
    #[test]
    fn drawn_right_registrations_are_correct_and_wrong_ones_are_not() {
        let p = |x, y| Point::new(x, y);
        let truth = KeyPoints {
            fingertip: p(200.0, 50.0),
            thumb: p(350.0, 300.0),
            capitate: p(200.0, 450.0),
        };
        let tips = [p(140.0, 80.0), p(262.0, 75.0)];
        let correct = |k: &KeyPoints| {
            let span = truth.span();
            [
                (k.fingertip, truth.fingertip),
                (k.thumb, truth.thumb),
                (k.capitate, truth.capitate),
            ]
            .iter()
            .all(|(a, b)| a.dist(*b) <= 0.05 * span)
        };
        let mut d = Draws(7);
        for _ in 0..500 {
            assert!(correct(&jittered(&truth, VERIFIER_JITTER, &mut d)));
            let wrong = wrong_at_random(&truth, &tips, &mut d);
            assert!(!correct(&wrong), "{wrong:?} drawn as wrong is correct");
            let moved = wrong_capitate_at_random(&truth, &mut d);
            assert!(!correct(&moved), "{moved:?} drawn as wrong is correct");
            assert!(moved.capitate.dist(truth.capitate) >= 0.06 * truth.span());
        }
    }
}
