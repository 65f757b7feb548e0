//! The stress suite: the front end on held-out films sent the ways users send them
//! (`boneage_core::stress`), each outcome correct, refused or wrong. Correct means all
//! three key points within 5 % of the hand's length (true fingertip to capitate) of
//! the truth carried through the transform; wrong is an answer that is not correct —
//! the outcome that must not happen, since the age models would then read the wrong
//! bones.

use std::path::Path;

use boneage_core::dataset::{Dataset, find_mask, read_id_list};
use boneage_core::image::Mask;
use boneage_core::keypoints::{self, KeyPoints};
use boneage_core::overlay::{colors, draw_point, to_rgb};
use boneage_core::sheet::{SheetLayout, save_rgb, thumbnail};
use boneage_core::stress::Stress;
use boneage_core::{Error, read_radiograph};
use boneage_nn::pipeline::Pipeline;
use image::RgbImage;

use crate::at_once::each_at_once;
use crate::preprocess_eval::sample_path;
use crate::progress::Progress;

/// How one film came out of one transform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// All three points within tolerance.
    Correct,
    /// The front end refused the film.
    Refused,
    /// An answer, but not the right one.
    Wrong,
}

/// The outcome of the front end's key points `found` against `truth`, with
/// `tolerance` as a fraction of the true fingertip–capitate distance.
pub fn judge(truth: &KeyPoints, found: Option<&KeyPoints>, tolerance: f64) -> Outcome {
    let Some(f) = found else {
        return Outcome::Refused;
    };
    let limit = tolerance * truth.span();
    let ok = [
        (truth.fingertip, f.fingertip),
        (truth.thumb, f.thumb),
        (truth.capitate, f.capitate),
    ]
    .iter()
    .all(|(t, p)| t.dist(*p) <= limit);
    if ok { Outcome::Correct } else { Outcome::Wrong }
}

/// Whether `found` has a point beyond [`FAR_OFF`] of the hand's length (the true
/// fingertip–capitate distance) from `truth`: wrong at that wider tolerance.
pub fn far_off(truth: &KeyPoints, found: &KeyPoints) -> bool {
    judge(truth, Some(found), FAR_OFF) == Outcome::Wrong
}

/// Counts of one transform.
#[derive(Clone, Debug, Default)]
pub struct StressRow {
    /// The transform's name.
    pub name: String,
    /// Correct, refused, wrong.
    pub counts: [usize; 3],
    /// Refusals by kind ([`boneage_nn::pipeline::PreprocessError::kind`]).
    pub reasons: std::collections::BTreeMap<String, usize>,
    /// The films answered wrongly.
    pub wrong: Vec<String>,
    /// Wrong answers with a point beyond [`FAR_OFF`] of the hand's length: those
    /// that no redrawing of the truth near the 5 % line would make correct.
    pub far: usize,
}

/// A wrong answer is far off when its worst point lies beyond this fraction of the
/// hand's length from the truth: half as much again as the 5 % tolerance, beyond the
/// spread of two blind markings of the same films (`data/labels/blind/README.md`).
pub const FAR_OFF: f64 = 0.075;

/// Tile size (width, height) of the contact sheet.
const TILE: [usize; 2] = [150, 188];

/// Tiles per row of the contact sheet ([`sheet_order`]).
const SHEET_FILMS: usize = 5;

/// The order of a row of the contact sheet: the films answered wrongly first (what a
/// reviewer must see), then the refused, then the correct, each in the films' order.
fn sheet_order(outcome: Outcome, film: usize) -> (u8, usize) {
    let rank = match outcome {
        Outcome::Wrong => 0,
        Outcome::Refused => 1,
        Outcome::Correct => 2,
    };
    (rank, film)
}

/// A thumbnail of `img` within `size` (width, height) with the `truth` in white
/// and the key points `found` in their colours on top.
pub(crate) fn tile(
    img: &boneage_core::GrayImage,
    size: [usize; 2],
    truth: Option<&KeyPoints>,
    found: Option<&KeyPoints>,
) -> RgbImage {
    let thumb = thumbnail(img, size[0], size[1]);
    let s = thumb.width() as f64 / img.width() as f64;
    let mut rgb = to_rgb(&thumb);
    if let Some(k) = truth {
        for p in [k.fingertip, k.thumb, k.capitate] {
            draw_point(&mut rgb, p * s, 4.0, colors::TARGET);
        }
    }
    if let Some(k) = found {
        draw_point(&mut rgb, k.fingertip * s, 3.0, colors::FINGERTIP);
        draw_point(&mut rgb, k.thumb * s, 3.0, colors::THUMB);
        draw_point(&mut rgb, k.capitate * s, 3.0, colors::CAPITATE);
    }
    rgb
}

/// Where the suite's films and their truth come from.
pub struct StressFilms<'a> {
    /// The films' dataset.
    pub ds: &'a Dataset,
    /// The films and their true key points, in order.
    pub films: Vec<(String, KeyPoints)>,
    /// Reviewed masks (`masks/`) for the "already segmented" transform; films
    /// without one, or all films when `None`, use the U-Net's mask.
    pub masks: Option<&'a Path>,
    /// The truth's source, in words, for the report.
    pub truth: String,
    /// The command that made the report.
    pub made_by: String,
    /// Only the transforms whose short name ([`Stress::name`]) contains one of these
    /// (case-insensitive); every transform when empty.
    pub only: Vec<String>,
}

impl StressFilms<'_> {
    /// The transforms of the suite this run measures, in report order.
    pub fn transforms(&self) -> Vec<Stress> {
        let wanted = |s: &Stress| {
            let name = s.name().to_lowercase();
            self.only.is_empty() || self.only.iter().any(|o| name.contains(&o.to_lowercase()))
        };
        Stress::suite().into_iter().filter(wanted).collect()
    }
}

/// The held-out reviewed key points of `labels` (`holdout-keypoints.txt`,
/// `keypoints.csv`, `masks/`) in `ds`, the first `limit` of them.
pub fn holdout_films<'a>(
    ds: &'a Dataset,
    labels: &'a Path,
    limit: usize,
) -> Result<StressFilms<'a>, Error> {
    let truth_kp = keypoints::read_csv(&labels.join("keypoints.csv"))?;
    let films: Vec<(String, KeyPoints)> = read_id_list(&labels.join("holdout-keypoints.txt"))?
        .into_iter()
        .filter(|id| ds.samples.iter().any(|s| &s.id == id))
        .filter_map(|id| truth_kp.get(&id).map(|k| (id, *k)))
        .take(limit)
        .collect();
    let n = films.len();
    Ok(StressFilms {
        ds,
        films,
        masks: Some(labels),
        only: Vec::new(),
        truth: format!(
            "`{}` (reviewed proposals of the mask geometry: biased towards films the \
             front end already handles)",
            labels.join("keypoints.csv").display()
        ),
        made_by: format!(
            "boneage evaluate-preprocess {} --labels {} --stress --films {n}",
            ds.image_dir.display(),
            labels.display()
        ),
    })
}

/// What the front end made of one film sent one way.
struct Reading {
    /// The refusal's kind, if refused.
    refusal: Option<String>,
    outcome: Outcome,
    /// The key points of an answer.
    found: Option<KeyPoints>,
    /// The truth carried through the transform.
    truth: KeyPoints,
    /// Its tile of the contact sheet, where the sheet can show it.
    picture: Option<RgbImage>,
}

/// Runs the suite on `films`, `jobs` films at once ([`each_at_once`]); returns the
/// Markdown report and writes the contact sheet (one row per transform, its wrong
/// answers first) to `sheet`.
pub fn stress_suite(
    pipeline: &Pipeline,
    films: &StressFilms,
    sheet: Option<&Path>,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<String, Error> {
    let ds = films.ds;
    let ids: Vec<&String> = films.films.iter().map(|(id, _)| id).collect();
    let suite = films.transforms();
    if suite.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "no transform of the stress suite is named like {:?}; the names: {}",
            films.only,
            Stress::suite()
                .iter()
                .map(Stress::name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let mut rows: Vec<StressRow> = suite
        .iter()
        .map(|s| StressRow {
            name: s.describe(),
            ..StressRow::default()
        })
        .collect();
    // Per transform, the films the sheet shows so far: (order, id, outcome, tile).
    type Tile = ((u8, usize), String, Outcome, RgbImage);
    let mut tiles: Vec<Vec<Tile>> = vec![Vec::new(); suite.len()];
    progress.start("stress suite", ids.len() * suite.len());
    // One film through every transform: for each, the refusal's kind, the outcome,
    // what was found, the truth carried through, and the tile where the sheet can
    // still show it (a correct answer of a film after the first SHEET_FILMS never can:
    // every row already holds SHEET_FILMS films before it, each ranked no later).
    let film = |n: &usize| -> Result<Vec<Reading>, Error> {
        let (n, id) = (*n, ids[*n]);
        let r = read_radiograph(sample_path(ds, id)?)?;
        let (w, h) = (r.pixels.width(), r.pixels.height());
        let mask = match films.masks.and_then(|l| find_mask(&l.join("masks"), id)) {
            Some(p) => Mask::load_png(&p)?.resized(w, h),
            None => pipeline.segment(&r.pixels),
        };
        let truth = films.films[n].1;
        let mut readings = Vec::with_capacity(suite.len());
        for s in &suite {
            let (img, t) = s.apply(&r.pixels, &mask, &truth, n as u64);
            let run = pipeline.run(&img);
            let refusal = run.as_ref().err().map(|e| e.kind());
            let found = run.ok().map(|p| p.keypoints);
            let outcome = judge(&t, found.as_ref(), 0.05);
            let picture = (sheet.is_some() && (outcome != Outcome::Correct || n < SHEET_FILMS))
                .then(|| {
                    // A wrong answer shows the truth carried through the transform in
                    // white.
                    let truth = (outcome == Outcome::Wrong).then_some(&t);
                    tile(&img, TILE, truth, found.as_ref())
                });
            readings.push(Reading {
                refusal,
                outcome,
                found,
                truth: t,
                picture,
            });
            progress.inc();
        }
        Ok(readings)
    };
    let order: Vec<usize> = (0..ids.len()).collect();
    each_at_once(&order, jobs, film, |n, readings| {
        let id = ids[n];
        for (i, reading) in readings?.into_iter().enumerate() {
            let Reading {
                refusal,
                outcome,
                found,
                truth: t,
                picture,
            } = reading;
            if let Some(kind) = refusal {
                *rows[i].reasons.entry(kind).or_default() += 1;
            }
            rows[i].counts[outcome as usize] += 1;
            if let (Outcome::Wrong, Some(k)) = (outcome, &found) {
                // Which point missed, in % of the hand's length (fingertip / thumb /
                // capitate).
                let e = boneage_core::metrics::keypoint_errors(&t, k);
                let length = t.span().max(1.0);
                if far_off(&t, k) {
                    rows[i].far += 1;
                }
                rows[i].wrong.push(format!(
                    "{id} ({:.0}/{:.0}/{:.0})",
                    100.0 * e[0] / length,
                    100.0 * e[1] / length,
                    100.0 * e[2] / length
                ));
            }
            let order = sheet_order(outcome, n);
            let row = &mut tiles[i];
            if let Some(picture) = picture
                && (row.len() < SHEET_FILMS || row.iter().any(|x| x.0 > order))
            {
                row.push((order, id.to_string(), outcome, picture));
                row.sort_by_key(|x| x.0);
                row.truncate(SHEET_FILMS);
            }
        }
        Ok(())
    })?;
    progress.finish();
    if let Some(path) = sheet {
        let mut all: Vec<(String, RgbImage)> = Vec::new();
        for (s, row) in suite.iter().zip(tiles) {
            for (k, (_, id, outcome, mut picture)) in row.into_iter().enumerate() {
                let word = match outcome {
                    Outcome::Correct => "ok",
                    Outcome::Refused => "REFUSED",
                    Outcome::Wrong => "WRONG",
                };
                // The row's first tile carries the transform's name on the picture, so
                // every caption can name its film.
                if k == 0 {
                    label_row(&mut picture, &s.name());
                }
                all.push((format!("{id} {word}"), picture));
            }
        }
        let layout = SheetLayout {
            columns: SHEET_FILMS.min(ids.len()).max(1),
            tile_width: TILE[0],
            tile_height: TILE[1],
            title: Some("stress suite by transform: wrong first, white = truth".into()),
        };
        save_rgb(&all, &layout, path)?;
    }
    Ok(stress_report(films, &rows, &pipeline.describe()))
}

/// The transform's name in yellow on a dark band across the top of a row's first tile.
fn label_row(picture: &mut RgbImage, name: &str) {
    let band = (boneage_core::font::GLYPH_H + 4) as u32;
    let width = (boneage_core::font::text_width(name, 1) + 4) as u32;
    for y in 0..band.min(picture.height()) {
        for x in 0..width.min(picture.width()) {
            picture.put_pixel(x, y, image::Rgb([20, 20, 24]));
        }
    }
    boneage_core::font::draw_text_rgb(picture, name, 2, 2, 1, [255, 255, 0]);
}

fn stress_report(f: &StressFilms, rows: &[StressRow], front_end: &str) -> String {
    let films = f.films.len();
    let mut md = format!(
        "# Stress suite of the front end ({films} films)\n\n\
         Correct: all three key points within 5 % of the hand's length of the truth \
         carried through the transform. Wrong: an answer that is not correct; far off: \
         a wrong answer with a point beyond {:.1} % of the hand's length, which no \
         redrawing of the truth near the 5 % line would make correct. The truth: \
         {}. Made by `{}`. The front end: {front_end}.\n\n\
         | transform | correct | refused | wrong | of them far off | correct % | wrong % |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
        100.0 * FAR_OFF,
        f.truth,
        f.made_by
    );
    let pct = |n: usize| 100.0 * n as f64 / films.max(1) as f64;
    for r in rows {
        let [c, f, w] = r.counts;
        md.push_str(&format!(
            "| {} | {c} | {f} | {w} | {} | {:.1} | {:.1} |\n",
            r.name,
            r.far,
            pct(c),
            pct(w)
        ));
    }
    let total = |k: usize| rows.iter().map(|r| r.counts[k]).sum::<usize>();
    let all = (films * rows.len()).max(1) as f64;
    md.push_str(&format!(
        "| **all {} transforms** | {} | {} | {} | {} | {:.1} | {:.1} |\n",
        rows.len(),
        total(0),
        total(1),
        total(2),
        rows.iter().map(|r| r.far).sum::<usize>(),
        100.0 * total(0) as f64 / all,
        100.0 * total(2) as f64 / all
    ));
    md.push_str(
        "\nWhy films were refused, and which were answered wrongly (ids of the \
         dataset, with the fingertip's, thumb tip's and capitate's errors in % of the \
         hand's length), by transform:\n\n| transform | refusals by reason | wrong |\n| --- | --- | --- |\n",
    );
    for r in rows {
        let mut reasons: Vec<(&String, &usize)> = r.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let reasons: Vec<String> = reasons.iter().map(|(k, n)| format!("{k} {n}")).collect();
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            r.name,
            if reasons.is_empty() {
                "–".into()
            } else {
                reasons.join(", ")
            },
            if r.wrong.is_empty() {
                "–".into()
            } else {
                r.wrong.join(", ")
            }
        ));
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use boneage_core::geometry::Point;

    #[test]
    fn a_point_off_by_more_than_the_tolerance_is_wrong() {
        let t = KeyPoints {
            fingertip: Point::new(50.0, 0.0),
            thumb: Point::new(90.0, 60.0),
            capitate: Point::new(50.0, 100.0),
        };
        assert_eq!(judge(&t, None, 0.05), Outcome::Refused);
        assert_eq!(judge(&t, Some(&t), 0.05), Outcome::Correct);
        let mut f = t;
        f.thumb.x += 4.9;
        assert_eq!(judge(&t, Some(&f), 0.05), Outcome::Correct);
        f.thumb.x += 0.2;
        assert_eq!(judge(&t, Some(&f), 0.05), Outcome::Wrong);
    }

    /// A wrong answer is far off only beyond [`FAR_OFF`] of the hand's length.
    #[test]
    fn a_wrong_answer_near_the_line_is_not_far_off() {
        let t = KeyPoints {
            fingertip: Point::new(100.0, 0.0),
            thumb: Point::new(160.0, 60.0),
            capitate: Point::new(100.0, 100.0),
        };
        // The capitate 6 % of the hand off: wrong, not far off; 8 %: far off.
        let near = KeyPoints {
            capitate: Point::new(100.0, 106.0),
            ..t
        };
        let far = KeyPoints {
            capitate: Point::new(100.0, 108.0),
            ..t
        };
        assert_eq!(judge(&t, Some(&near), 0.05), Outcome::Wrong);
        assert!(!far_off(&t, &near));
        assert_eq!(judge(&t, Some(&far), 0.05), Outcome::Wrong);
        assert!(far_off(&t, &far));
        assert!(!far_off(&t, &t));
    }

    /// A row of the contact sheet shows the wrong answers first, then the refused
    /// films, then the correct ones, each in the films' order.
    #[test]
    fn the_sheet_shows_wrong_answers_first() {
        let films = [
            Outcome::Correct,
            Outcome::Refused,
            Outcome::Wrong,
            Outcome::Correct,
            Outcome::Wrong,
        ];
        let mut order: Vec<usize> = (0..films.len()).collect();
        order.sort_by_key(|&n| sheet_order(films[n], n));
        assert_eq!(order, [2, 4, 1, 0, 3]);
    }

    /// The transform's name goes on the first tile's picture, in yellow on a dark band,
    /// and leaves the rest of the picture as it was.
    #[test]
    fn a_rows_first_tile_carries_the_transforms_name() {
        let mut picture = RgbImage::from_pixel(150, 188, image::Rgb([200, 200, 200]));
        label_row(&mut picture, "turned 30°");
        let yellow = picture.pixels().filter(|p| p.0 == [255, 255, 0]).count();
        assert!(yellow > 20, "the name is drawn: {yellow} yellow pixels");
        assert_eq!(picture.get_pixel(0, 0).0, [20, 20, 24], "on a dark band");
        assert_eq!(
            picture.get_pixel(149, 187).0,
            [200, 200, 200],
            "the film untouched"
        );
    }
}
