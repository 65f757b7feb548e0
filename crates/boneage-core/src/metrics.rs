//! What the evaluations measure, as plain functions of predictions and truths (no
//! network needed): means, MAE and percentiles; the bone-age models' tables as the
//! paper reports them (Fig. 8 by region × head × cohort, Fig. 9 by development
//! stage), the bias by stage, the predict-the-mean baseline and the ensemble spread
//! against the error; and whether a registration put the true key points where they
//! belong.

use std::collections::BTreeMap;

use crate::dataset::Sample;
use crate::domain::{Cohort, Head, ModelKey, Sex};
use crate::keypoints::KeyPoints;
use crate::registration::{Canvas, Region, register};
use crate::stages::Stage;

/// The mean, `None` when empty.
pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The sample standard deviation (n − 1); 0 for fewer than two values.
pub fn sd(v: &[f64]) -> f64 {
    match mean(v) {
        Some(m) if v.len() > 1 => {
            (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
        }
        _ => 0.0,
    }
}

/// The `q`-quantile (0–1) by the nearest rank, `None` when empty.
pub fn percentile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize])
}

/// The counts of successes that a binomial draw of `n` trials with probability `p`
/// falls between (both included) with probability at least `mass`, equal tails: how
/// many of `n` films a `p` interval may cover by chance alone.
pub fn binomial_range(n: usize, p: f64, mass: f64) -> (usize, usize) {
    let p = p.clamp(0.0, 1.0);
    // In logs: exact enough for the thousands of films here.
    let ln_choose = |k: usize| -> f64 {
        (1..=k)
            .map(|i| ((n - k + i) as f64 / i as f64).ln())
            .sum::<f64>()
    };
    let pmf: Vec<f64> = (0..=n)
        .map(|k| {
            let (a, b) = (k as f64 * p.ln(), (n - k) as f64 * (1.0 - p).ln());
            let a = if k == 0 { 0.0 } else { a };
            let b = if k == n { 0.0 } else { b };
            (ln_choose(k) + a + b).exp()
        })
        .collect();
    let tail = (1.0 - mass.clamp(0.0, 1.0)) / 2.0;
    let (mut lo, mut below) = (0, 0.0);
    while lo < n && below + pmf[lo] <= tail {
        below += pmf[lo];
        lo += 1;
    }
    let (mut hi, mut above) = (n, 0.0);
    while hi > lo && above + pmf[hi] <= tail {
        above += pmf[hi];
        hi -= 1;
    }
    (lo, hi)
}

/// A mean absolute error and how many films it is over.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mae {
    /// The MAE, `None` over no film.
    pub value: Option<f64>,
    /// The number of films.
    pub n: usize,
}

/// One validation film and what each bone-age model said of it.
#[derive(Clone, Debug)]
pub struct FilmPredictions {
    /// The film and its true bone age.
    pub sample: Sample,
    /// Each model's bone age (months), or why the film was refused.
    pub members: Result<BTreeMap<ModelKey, f64>, String>,
}

impl FilmPredictions {
    /// The mean of the predictions of the models `pick` selects.
    pub fn combined(&self, pick: impl Fn(&ModelKey) -> bool) -> Option<f64> {
        let p = self.members.as_ref().ok()?;
        mean(
            &p.iter()
                .filter(|(k, _)| pick(k))
                .map(|(_, v)| *v)
                .collect::<Vec<_>>(),
        )
    }

    /// The ensemble as `boneage assess` forms it: every model of the film's sex and
    /// every mixed one.
    pub fn ensemble(&self) -> Option<f64> {
        self.combined(|k| k.cohort.covers(self.sample.sex))
    }

    /// The standard deviation across the ensemble's members.
    pub fn spread(&self) -> Option<f64> {
        let p = self.members.as_ref().ok()?;
        let v: Vec<f64> = p
            .iter()
            .filter(|(k, _)| k.cohort.covers(self.sample.sex))
            .map(|(_, v)| *v)
            .collect();
        (!v.is_empty()).then(|| sd(&v))
    }

    /// The true bone age, months.
    pub fn truth(&self) -> f64 {
        self.sample.boneage_months
    }
}

/// MAE of `predict` over the films it answers.
pub fn mae(films: &[&FilmPredictions], predict: impl Fn(&FilmPredictions) -> Option<f64>) -> Mae {
    let e: Vec<f64> = films
        .iter()
        .filter_map(|f| Some((predict(f)? - f.truth()).abs()))
        .collect();
    Mae {
        value: mean(&e),
        n: e.len(),
    }
}

/// The half-width of the 95 % interval of [`mae`] (normal approximation: 1.96 times
/// the standard error of the absolute errors), `None` below two films.
pub fn mae_half_width95(
    films: &[&FilmPredictions],
    predict: impl Fn(&FilmPredictions) -> Option<f64>,
) -> Option<f64> {
    let e: Vec<f64> = films
        .iter()
        .filter_map(|f| Some((predict(f)? - f.truth()).abs()))
        .collect();
    (e.len() > 1).then(|| 1.96 * sd(&e) / (e.len() as f64).sqrt())
}

/// The mean signed error (predicted − true) of `predict` over the films it answers.
pub fn bias(
    films: &[&FilmPredictions],
    predict: impl Fn(&FilmPredictions) -> Option<f64>,
) -> Option<f64> {
    mean(
        &films
            .iter()
            .filter_map(|f| Some(predict(f)? - f.truth()))
            .collect::<Vec<_>>(),
    )
}

/// Predicting the mean training age of the patient's sex: the floor every model
/// must beat.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MeanBaseline {
    /// Mean training age of the boys, months.
    pub male: Option<f64>,
    /// Mean training age of the girls, months.
    pub female: Option<f64>,
}

impl MeanBaseline {
    /// The means of the training samples, per sex.
    pub fn fit(train: &[Sample]) -> Self {
        let of = |sex: Sex| {
            mean(
                &train
                    .iter()
                    .filter(|s| s.sex == sex)
                    .map(|s| s.boneage_months)
                    .collect::<Vec<_>>(),
            )
        };
        Self {
            male: of(Sex::Male),
            female: of(Sex::Female),
        }
    }

    /// The baseline's answer for a patient of `sex`.
    pub fn predict(&self, sex: Sex) -> Option<f64> {
        match sex {
            Sex::Male => self.male,
            Sex::Female => self.female,
        }
    }
}

/// The cohorts of Fig. 8's column groups, with their labels.
pub const FIG8_COHORTS: [(Cohort, &str); 3] = [
    (Cohort::Male, "male (M models)"),
    (Cohort::Female, "female (F models)"),
    (Cohort::Mixed, "mixed (mixed models)"),
];
/// The heads of Fig. 8's columns; `None` averages both.
pub const FIG8_HEADS: [(Option<Head>, &str); 3] = [
    (Some(Head::Regression), "regr."),
    (Some(Head::Classification), "class."),
    (None, "both"),
];
/// The rows of Fig. 8 and the series of Fig. 9; `None` is the ensemble of all regions.
pub const FIG8_ROWS: [(Option<Region>, &str); 5] = [
    (Some(Region::A), "A: whole hand"),
    (Some(Region::B), "B: carpals"),
    (Some(Region::C), "C: metacarpals"),
    (Some(Region::D), "D: fingers"),
    (None, "ensemble of all"),
];

/// One cell of Fig. 8: a cohort's models of one region (or all) and head (or both)
/// on that cohort's films (mixed: on all films).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fig8Cell {
    /// Region, `None` for all three.
    pub region: Option<Region>,
    /// Cohort of the models and the films.
    pub cohort: Cohort,
    /// Head, `None` for both.
    pub head: Option<Head>,
    /// The MAE.
    pub mae: Mae,
}

/// The paper's Fig. 8: MAE by region (rows, [`FIG8_ROWS`]) × cohort × head (columns,
/// [`FIG8_COHORTS`] × [`FIG8_HEADS`]).
pub fn fig8(films: &[&FilmPredictions]) -> Vec<Vec<Fig8Cell>> {
    FIG8_ROWS
        .iter()
        .map(|&(region, _)| {
            let mut row = Vec::new();
            for (cohort, _) in FIG8_COHORTS {
                let of_cohort: Vec<&FilmPredictions> = films
                    .iter()
                    .copied()
                    .filter(|f| cohort.covers(f.sample.sex))
                    .collect();
                for (head, _) in FIG8_HEADS {
                    let mae = mae(&of_cohort, |f| {
                        f.combined(|k| {
                            k.cohort == cohort
                                && region.is_none_or(|r| k.region == r)
                                && head.is_none_or(|h| k.head == h)
                        })
                    });
                    row.push(Fig8Cell {
                        region,
                        cohort,
                        head,
                        mae,
                    });
                }
            }
            row
        })
        .collect()
}

/// One row of Fig. 9 for one sex: a skeletal development stage.
#[derive(Clone, Debug, PartialEq)]
pub struct StageRow {
    /// The stage of the true bone age.
    pub stage: Stage,
    /// Films in it.
    pub n: usize,
    /// MAE of each region's models that cover the sex (A, B, C, D), then of the
    /// ensemble: [`FIG8_ROWS`]' order.
    pub mae: [Option<f64>; 5],
    /// The ensemble's mean signed error.
    pub bias: Option<f64>,
    /// The predict-the-mean baseline's MAE.
    pub baseline: Option<f64>,
}

/// The paper's Fig. 9 for one sex: MAE by development stage (the stages that have
/// films), with the ensemble's bias and the baseline.
pub fn fig9(films: &[&FilmPredictions], sex: Sex, baseline: &MeanBaseline) -> Vec<StageRow> {
    let in_stage = |st: Stage| -> Vec<&FilmPredictions> {
        films
            .iter()
            .copied()
            .filter(|f| f.sample.sex == sex && Stage::of(f.truth(), sex) == st)
            .collect()
    };
    Stage::ALL
        .into_iter()
        .filter_map(|stage| {
            let fs = in_stage(stage);
            if fs.is_empty() {
                return None;
            }
            let mae = FIG8_ROWS.map(|(region, _)| {
                mae(&fs, |f| {
                    f.combined(|k| k.cohort.covers(sex) && region.is_none_or(|r| k.region == r))
                })
                .value
            });
            Some(StageRow {
                stage,
                n: fs.len(),
                mae,
                bias: bias(&fs, FilmPredictions::ensemble),
                baseline: self::mae(&fs, |f| baseline.predict(f.sample.sex)).value,
            })
        })
        .collect()
}

/// How well the ensemble's spread tells its error.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SpreadSummary {
    /// Median spread, months.
    pub median: f64,
    /// MAE on the half of the films with the smaller spread.
    pub mae_low: Option<f64>,
    /// MAE on the other half.
    pub mae_high: Option<f64>,
    /// Films whose error is within two spreads.
    pub within_two: usize,
    /// Films counted.
    pub n: usize,
}

/// The spread against the error over the assessed films; `None` without any.
pub fn spread_summary(films: &[&FilmPredictions]) -> Option<SpreadSummary> {
    let mut v: Vec<(f64, f64)> = films
        .iter()
        .filter_map(|f| Some((f.spread()?, (f.ensemble()? - f.truth()).abs())))
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = v.len() / 2;
    let err_of = |v: &[(f64, f64)]| mean(&v.iter().map(|x| x.1).collect::<Vec<_>>());
    Some(SpreadSummary {
        median: v[half].0,
        mae_low: err_of(&v[..half]),
        mae_high: err_of(&v[half..]),
        within_two: v.iter().filter(|(s, e)| *e <= 2.0 * s).count(),
        n: v.len(),
    })
}

/// Whether registering with `found` puts the true fingertip and capitate within
/// `tolerance` of their targets (as a fraction of the fingertip–capitate distance on
/// the canvas) and the true thumb on the standard side.
pub fn registered_correctly(
    truth: &KeyPoints,
    found: &KeyPoints,
    canvas: &Canvas,
    tolerance: f64,
) -> bool {
    let Ok(reg) = register(found, canvas) else {
        return false;
    };
    let k = reg.keypoints(truth);
    let span = canvas.fingertip_target().dist(canvas.capitate_target());
    k.fingertip.dist(canvas.fingertip_target()) <= tolerance * span
        && k.capitate.dist(canvas.capitate_target()) <= tolerance * span
        && k.thumb_on_right()
}

/// The distance of each found point from the true one: fingertip, thumb, capitate.
pub fn keypoint_errors(truth: &KeyPoints, found: &KeyPoints) -> [f64; 3] {
    [
        truth.fingertip.dist(found.fingertip),
        truth.thumb.dist(found.thumb),
        truth.capitate.dist(found.capitate),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn film(
        id: &str,
        sex: Sex,
        truth: f64,
        members: &[(Region, Head, Cohort, f64)],
    ) -> FilmPredictions {
        FilmPredictions {
            sample: Sample {
                id: id.into(),
                boneage_months: truth,
                sex,
            },
            members: Ok(members
                .iter()
                .map(|&(region, head, cohort, v)| (ModelKey::first(region, head, cohort), v))
                .collect()),
        }
    }

    #[test]
    fn binomial_ranges_match_tables() {
        // 27 films at 90 %: P(X ≤ 20) = 0.015, P(X ≤ 21) = 0.047; P(X = 27) = 0.058.
        assert_eq!(binomial_range(27, 0.9, 0.95), (21, 27));
        // A fair coin 10 times: P(X ≤ 1) = 0.011, P(X ≤ 2) = 0.055.
        assert_eq!(binomial_range(10, 0.5, 0.95), (2, 8));
        // 500 films at 90 %: mean 450, sd 6.7, so about 437–463.
        let (lo, hi) = binomial_range(500, 0.9, 0.95);
        assert!(
            (436..=438).contains(&lo) && (462..=464).contains(&hi),
            "{lo}–{hi}"
        );
        // Certain outcomes and no films.
        assert_eq!(binomial_range(5, 1.0, 0.95), (5, 5));
        assert_eq!(binomial_range(5, 0.0, 0.95), (0, 0));
        assert_eq!(binomial_range(0, 0.9, 0.95), (0, 0));
    }

    #[test]
    fn ensemble_mae_and_bias_are_what_a_hand_computation_gives() {
        use Cohort::*;
        use Head::*;
        let a = film(
            "a",
            Sex::Male,
            100.0,
            &[
                (Region::A, Regression, Male, 110.0),
                (Region::B, Classification, Mixed, 120.0),
                // A female model never speaks for a boy.
                (Region::A, Regression, Female, 0.0),
            ],
        );
        let b = film(
            "b",
            Sex::Female,
            50.0,
            &[(Region::C, Regression, Mixed, 40.0)],
        );
        let refused = FilmPredictions {
            members: Err("no hand".into()),
            ..film("c", Sex::Female, 70.0, &[])
        };
        assert_eq!(a.ensemble(), Some(115.0));
        assert!((a.spread().unwrap() - 50f64.sqrt()).abs() < 1e-12);
        let all = [&a, &b, &refused];
        let m = mae(&all, FilmPredictions::ensemble);
        assert_eq!(
            m,
            Mae {
                value: Some(12.5),
                n: 2
            }
        );
        assert_eq!(bias(&all, FilmPredictions::ensemble), Some(2.5));
        // Absolute errors 10 and 15: SD 3.536, 1.96 · 3.536 / √2 = 4.90.
        let hw = mae_half_width95(&all, FilmPredictions::ensemble).unwrap();
        assert!(
            (hw - 1.96 * 12.5f64.sqrt() / 2f64.sqrt()).abs() < 1e-12,
            "{hw}"
        );
        assert_eq!(mae_half_width95(&[&a], FilmPredictions::ensemble), None);
        let f8 = fig8(&all);
        // Row A, male cohort, regression: film a's male model only.
        assert_eq!(
            f8[0][0].mae,
            Mae {
                value: Some(10.0),
                n: 1
            }
        );
        // Row C, mixed cohort, both heads: film b's mixed model.
        assert_eq!(
            f8[2][8].mae,
            Mae {
                value: Some(10.0),
                n: 1
            }
        );
        let base = MeanBaseline::fit(&[a.sample.clone(), b.sample.clone()]);
        assert_eq!(base.predict(Sex::Female), Some(50.0));
        let rows = fig9(&all, Sex::Male, &base);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].mae[4], Some(15.0));
        assert_eq!(rows[0].bias, Some(15.0));
        assert_eq!(rows[0].baseline, Some(0.0));
    }

    #[test]
    fn percentiles_and_spread() {
        let v = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(percentile(&v, 0.5), Some(3.0));
        assert_eq!(percentile(&v, 1.0), Some(5.0));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(sd(&[1.0]), 0.0);
        assert!((sd(&[1.0, 3.0]) - 2f64.sqrt()).abs() < 1e-12);
    }
}
