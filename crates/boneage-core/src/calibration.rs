//! The paper's linear ensembles, fitted, with intervals that hold: from out-of-fold
//! predictions (each film predicted by models that never trained on it), per sex,
//!
//! - a **linear combination of the members** with an intercept: a ridge regression of
//!   the true bone age on the members' predictions, shrunk towards the plain mean of
//!   the members (with one member it is the linear bias correction `a + w·p`);
//! - a **stretch away from the mean**: least squares regresses to the mean (the
//!   youngest read too old, the oldest too young), so the fit is moved part of the way
//!   ([`SexFit::stretch`]) towards the inverse of the regression of the fitted age on
//!   the true one (Deeplasia's linear correction), just far enough that no development
//!   stage with [`STAGE_FILMS`] films keeps a mean signed error beyond [`STAGE_BIAS`];
//!   it is linear, so it folds into the intercept and the weights;
//! - a **90 % interval** (or any level) from the residuals of that fit, split
//!   conformal by the development stage of the *predicted* age (the stage is not known
//!   at assessment time): the lower and upper bounds are quantiles of the signed
//!   residuals of the films predicted in that stage, with the neighbouring stages
//!   pooled in while it holds fewer than [`MIN_FILMS`] films.
//!
//! [`cross_fit`] measures all of it honestly: each fold's films are corrected and
//! given intervals by a calibration fitted on the other folds only. [`fit`] then fits
//! the calibration that ships, on every film.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{ModelKey, Sex};
use crate::stages::Stage;

/// The fewest films an interval's quantiles are taken from.
pub const MIN_FILMS: usize = 40;

/// The default interval level.
pub const LEVEL: f64 = 0.9;

/// Ridge strength: the penalty on departing from the plain mean, as a fraction of
/// the members' mean variance times the number of films.
pub const RIDGE: f64 = 0.05;

/// The largest mean signed error (months) by true development stage that the stretch
/// leaves on the films it is fitted on: a month inside the ±6 that out-of-fold stages
/// are held to, since a fit is kinder to its own films.
pub const STAGE_BIAS: f64 = 5.0;

/// Stages with fewer films than this are not held to [`STAGE_BIAS`] (the 20 that an
/// out-of-fold stage needs, times the 4 of 5 folds a fit sees).
pub const STAGE_FILMS: usize = 16;

/// An interval half as wide as this (months) or more is flagged as too wide to be
/// useful: a 90 % interval of ± 2 years spans about a whole development stage.
pub const WIDE_MONTHS: f64 = 24.0;

/// One film's out-of-fold predictions.
#[derive(Clone, Copy, Debug)]
pub struct CalFilm<'a> {
    /// The patient's sex.
    pub sex: Sex,
    /// The true bone age, months.
    pub truth: f64,
    /// Each member's prediction, months.
    pub members: &'a BTreeMap<ModelKey, f64>,
}

/// The interval of the films predicted in one development stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageInterval {
    /// The stage of the fitted (predicted) bone age.
    pub stage: Stage,
    /// Added to the estimate for the lower bound (negative), months.
    pub low: f64,
    /// Added to the estimate for the upper bound, months.
    pub high: f64,
    /// The films the bounds come from (this stage's, and its neighbours' when it had
    /// fewer than [`MIN_FILMS`]).
    pub films: usize,
}

/// The fitted ensemble and intervals of one sex.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SexFit {
    /// "M" or "F".
    pub sex: Sex,
    /// The members, as `ModelKey` spellings (`A-reg-mixed`, …), in weight order.
    pub members: Vec<String>,
    /// Months added to the weighted sum.
    pub intercept: f64,
    /// One weight per member.
    pub weights: Vec<f64>,
    /// How far (0 = plain least squares, 1 = the inverse regression) the fit was
    /// stretched away from the mean; already folded into `intercept` and `weights`.
    #[serde(default)]
    pub stretch: f64,
    /// One interval per stage, youngest first.
    pub intervals: Vec<StageInterval>,
    /// Films fitted on.
    pub films: usize,
}

/// A fitted ensemble with its intervals, per sex: what `calibration.json` beside the
/// bone-age models holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// The intervals' nominal coverage (0.9).
    pub level: f64,
    /// Intervals with a half-width of at least this many months are flagged.
    pub wide_months: f64,
    /// Which predictions it was fitted on, in words.
    pub fitted_on: String,
    /// Which members' predictions were means over test-time augmented views (they
    /// must be made the same way when it is applied): `true` (all), `false` (none) or
    /// a list of members.
    #[serde(default)]
    pub tta: Tta,
    /// One fit per sex.
    pub sexes: Vec<SexFit>,
}

/// Which members read their crop in test-time augmented views (and give the mean):
/// all, none, or those named.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Tta {
    /// Every member (`true`) or none (`false`).
    All(bool),
    /// The members named (`A-reg-mixed`, …); the others read the crop once.
    Members(Vec<String>),
}

impl Default for Tta {
    fn default() -> Self {
        Tta::All(false)
    }
}

impl Tta {
    /// Whether `member` (`A-reg-mixed`, …) reads augmented views.
    pub fn covers(&self, member: &str) -> bool {
        match self {
            Tta::All(all) => *all,
            Tta::Members(m) => m.iter().any(|n| n == member),
        }
    }

    /// In words, for a report: "every model", "A-reg-mixed and B-reg-mixed", ….
    pub fn describe(&self) -> String {
        match self {
            Tta::All(true) => "every model".to_string(),
            Tta::All(false) => "no model".to_string(),
            Tta::Members(m) => match m.as_slice() {
                [] => "no model".to_string(),
                [one] => one.clone(),
                [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
            },
        }
    }
}

/// A calibrated bone age.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Calibrated {
    /// The fitted ensemble's bone age, months.
    pub months: f64,
    /// Lower bound of the interval, months.
    pub low: f64,
    /// Upper bound, months.
    pub high: f64,
    /// Its nominal coverage (0.9).
    pub level: f64,
    /// Whether the interval is too wide to be useful.
    pub wide: bool,
}

/// Why a calibration cannot be fitted or applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalibrationError {
    /// Too few films of a sex to fit on.
    #[error("{n} {} films with every member's prediction: at least {MIN_FILMS} are needed to fit", sex.word())]
    TooFew {
        /// The sex.
        sex: Sex,
        /// How many there were.
        n: usize,
    },
    /// The calibration has no fit for the sex.
    #[error("the calibration has no fit for {} patients", sex.word())]
    NoSex {
        /// The sex.
        sex: Sex,
    },
    /// A member the calibration weighs gave no prediction.
    #[error(
        "the calibration weighs the model {member}, which did not predict (not in the models folder?)"
    )]
    Missing {
        /// The member's spelling.
        member: String,
    },
}

/// Solves `a x = b` for a small symmetric positive definite `a` (Gaussian elimination
/// with partial pivoting).
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .expect("non-empty");
        a.swap(col, pivot);
        b.swap(col, pivot);
        let pivot_row = a[col].clone();
        for row in col + 1..n {
            let f = a[row][col] / pivot_row[col];
            for (x, p) in a[row][col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[row] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x
}

/// The `k`-th smallest (0-based, clamped) of `v`.
fn order_stat(v: &mut [f64], k: isize) -> f64 {
    v.sort_by(f64::total_cmp);
    v[k.clamp(0, v.len() as isize - 1) as usize]
}

impl SexFit {
    /// The weighted sum of `members` (keyed by their spelling).
    fn combine(&self, members: &BTreeMap<String, f64>) -> Result<f64, CalibrationError> {
        let mut months = self.intercept;
        for (name, w) in self.members.iter().zip(&self.weights) {
            let p = members.get(name).ok_or_else(|| CalibrationError::Missing {
                member: name.clone(),
            })?;
            months += w * p;
        }
        Ok(months)
    }

    /// The interval of an estimate of `months`.
    fn interval(&self, months: f64) -> &StageInterval {
        let stage = Stage::of(months, self.sex);
        self.intervals
            .iter()
            .find(|i| i.stage == stage)
            .expect("one interval per stage")
    }
}

/// A linear map `offset + scale · f` of fitted ages `f`: a share `lambda` of the way
/// from `f` to the inverse regression `(f − c) / d`, where `c + d · truth` is the least
/// squares line of the fitted ages on the true ones.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Stretch {
    lambda: f64,
    offset: f64,
    scale: f64,
}

impl Stretch {
    const NONE: Stretch = Stretch {
        lambda: 0.0,
        offset: 0.0,
        scale: 1.0,
    };

    /// The least stretch (in steps of 0.01) that brings the mean signed error of every
    /// true stage with at least [`STAGE_FILMS`] of these films within [`STAGE_BIAS`]
    /// months; the full inverse regression if none does, none if the fitted ages do
    /// not rise with the true ones.
    fn choose(fitted: &[f64], truth: &[f64], sex: Sex) -> Stretch {
        let n = truth.len() as f64;
        let (fbar, ybar) = (
            fitted.iter().sum::<f64>() / n,
            truth.iter().sum::<f64>() / n,
        );
        let (mut sxy, mut syy) = (0.0, 0.0);
        for (f, y) in fitted.iter().zip(truth) {
            sxy += (f - fbar) * (y - ybar);
            syy += (y - ybar) * (y - ybar);
        }
        let d = sxy / syy;
        if d.is_nan() || d <= 0.1 {
            return Stretch::NONE;
        }
        let c = fbar - d * ybar;
        let stages: Vec<usize> = truth.iter().map(|&y| Stage::of(y, sex) as usize).collect();
        let held = |s: Stretch| {
            (0..Stage::ALL.len()).all(|k| {
                let errs: Vec<f64> = fitted
                    .iter()
                    .zip(truth)
                    .zip(&stages)
                    .filter(|(_, st)| **st == k)
                    .map(|((f, y), _)| s.offset + s.scale * f - y)
                    .collect();
                errs.len() < STAGE_FILMS
                    || (errs.iter().sum::<f64>() / errs.len() as f64).abs() <= STAGE_BIAS
            })
        };
        let at = |lambda: f64| Stretch {
            lambda,
            offset: -lambda * c / d,
            scale: 1.0 - lambda + lambda / d,
        };
        (0..=100)
            .map(|i| at(f64::from(i) / 100.0))
            .find(|&s| held(s))
            .unwrap_or(at(1.0))
    }
}

fn spelled(members: &BTreeMap<ModelKey, f64>) -> BTreeMap<String, f64> {
    members.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Fits one sex on `films` (all of that sex).
fn fit_sex(sex: Sex, films: &[CalFilm<'_>], level: f64) -> Result<SexFit, CalibrationError> {
    // The members every film of this sex has.
    let mut keys: Vec<ModelKey> = films
        .first()
        .map(|f| f.members.keys().copied().collect())
        .unwrap_or_default();
    keys.retain(|k| films.iter().all(|f| f.members.contains_key(k)));
    let n = films.len();
    if n < MIN_FILMS || keys.is_empty() {
        return Err(CalibrationError::TooFew { sex, n });
    }
    let m = keys.len();
    let x: Vec<Vec<f64>> = films
        .iter()
        .map(|f| keys.iter().map(|k| f.members[k]).collect())
        .collect();
    let y: Vec<f64> = films.iter().map(|f| f.truth).collect();
    let nf = n as f64;
    let xbar: Vec<f64> = (0..m)
        .map(|j| x.iter().map(|r| r[j]).sum::<f64>() / nf)
        .collect();
    let ybar = y.iter().sum::<f64>() / nf;
    // Centred normal equations with the ridge pulling towards equal weights 1/m.
    let mut a = vec![vec![0.0; m]; m];
    let mut b = vec![0.0; m];
    for (r, yi) in x.iter().zip(&y) {
        for i in 0..m {
            let di = r[i] - xbar[i];
            b[i] += di * (yi - ybar);
            for j in 0..m {
                a[i][j] += di * (r[j] - xbar[j]);
            }
        }
    }
    let lambda = RIDGE * (0..m).map(|i| a[i][i]).sum::<f64>() / m as f64;
    for i in 0..m {
        a[i][i] += lambda;
        b[i] += lambda / m as f64;
    }
    let weights = solve(a, b);
    let intercept = ybar - weights.iter().zip(&xbar).map(|(w, x)| w * x).sum::<f64>();
    let fitted: Vec<f64> = x
        .iter()
        .map(|r| intercept + weights.iter().zip(r).map(|(w, p)| w * p).sum::<f64>())
        .collect();
    let s = Stretch::choose(&fitted, &y, sex);
    let mut fit = SexFit {
        sex,
        members: keys.iter().map(ModelKey::to_string).collect(),
        intercept: s.offset + s.scale * intercept,
        weights: weights.iter().map(|w| s.scale * w).collect(),
        stretch: s.lambda,
        intervals: Vec::new(),
        films: n,
    };
    // Residuals of the fit, by the stage of the fitted age.
    let fitted: Vec<(usize, f64)> = films
        .iter()
        .map(|f| {
            let p = fit
                .combine(&spelled(f.members))
                .expect("every member present");
            let stage = Stage::of(p, sex) as usize;
            (stage, f.truth - p)
        })
        .collect();
    let tail = (1.0 - level) / 2.0;
    fit.intervals = Stage::ALL
        .iter()
        .enumerate()
        .map(|(i, &stage)| {
            let mut r: Vec<f64> = Vec::new();
            for radius in 0..Stage::ALL.len() {
                r = fitted
                    .iter()
                    .filter(|(s, _)| s.abs_diff(i) <= radius)
                    .map(|(_, e)| *e)
                    .collect();
                if r.len() >= MIN_FILMS {
                    break;
                }
            }
            // Split-conformal ranks: the ⌊(n+1)·tail⌋-th and ⌈(n+1)·(1−tail)⌉-th
            // smallest residuals (1-based).
            let k = r.len() as f64 + 1.0;
            let lo = (k * tail).floor() as isize - 1;
            let hi = (k * (1.0 - tail)).ceil() as isize - 1;
            StageInterval {
                stage,
                low: order_stat(&mut r, lo),
                high: order_stat(&mut r, hi),
                films: r.len(),
            }
        })
        .collect();
    Ok(fit)
}

/// Fits the calibration on out-of-fold predictions, one fit per sex.
pub fn fit(
    films: &[CalFilm<'_>],
    level: f64,
    fitted_on: impl Into<String>,
) -> Result<Calibration, CalibrationError> {
    let sexes = Sex::ALL
        .iter()
        .map(|&sex| {
            let of_sex: Vec<CalFilm<'_>> = films.iter().filter(|f| f.sex == sex).copied().collect();
            fit_sex(sex, &of_sex, level)
        })
        .collect::<Result<_, _>>()?;
    Ok(Calibration {
        level,
        wide_months: WIDE_MONTHS,
        fitted_on: fitted_on.into(),
        tta: Tta::default(),
        sexes,
    })
}

impl Calibration {
    /// The calibrated bone age of a patient of `sex` from the members' predictions.
    pub fn apply(
        &self,
        sex: Sex,
        members: &BTreeMap<ModelKey, f64>,
    ) -> Result<Calibrated, CalibrationError> {
        let fit = self
            .sexes
            .iter()
            .find(|f| f.sex == sex)
            .ok_or(CalibrationError::NoSex { sex })?;
        let months = fit.combine(&spelled(members))?;
        let i = fit.interval(months);
        Ok(Calibrated {
            months,
            low: months + i.low,
            high: months + i.high,
            level: self.level,
            wide: (i.high - i.low) / 2.0 >= self.wide_months,
        })
    }

    /// Checks that the calibration can calibrate patients of `sex` (both when
    /// `None`): a fit with one weight per member, each member among the models
    /// (`has_model` says whether one of that spelling is loaded), an interval for
    /// every stage. The problem in words otherwise.
    pub fn check(&self, sex: Option<Sex>, has_model: impl Fn(&str) -> bool) -> Result<(), String> {
        for s in Sex::ALL.into_iter().filter(|&s| sex.is_none_or(|x| x == s)) {
            let who = format!("{} patients", s.word());
            let fit = self
                .sexes
                .iter()
                .find(|f| f.sex == s)
                .ok_or_else(|| format!("no fit for {who}"))?;
            if fit.weights.len() != fit.members.len() {
                return Err(format!(
                    "{} members but {} weights for {who}",
                    fit.members.len(),
                    fit.weights.len()
                ));
            }
            if let Some(m) = fit.members.iter().find(|m| !has_model(m)) {
                return Err(format!("weighs the model {m}, which is not loaded"));
            }
            if let Tta::Members(named) = &self.tta
                && let Some(m) = named.iter().find(|m| !has_model(m))
            {
                return Err(format!(
                    "names the model {m} for test-time augmentation, which is not loaded"
                ));
            }
            if let Some(st) = Stage::ALL
                .iter()
                .find(|st| !fit.intervals.iter().any(|i| i.stage == **st))
            {
                return Err(format!("no interval for {who} in {}", st.name()));
            }
        }
        Ok(())
    }
}

/// Each film calibrated by a calibration fitted on the films of the *other* folds
/// (`folds[i]` is film `i`'s fold): honest out-of-fold figures for the fitted
/// ensemble and its intervals.
pub fn cross_fit(
    films: &[CalFilm<'_>],
    folds: &[usize],
    level: f64,
) -> Result<Vec<Calibrated>, CalibrationError> {
    assert_eq!(films.len(), folds.len(), "one fold per film");
    let mut out = vec![None; films.len()];
    let mut fold_ids: Vec<usize> = folds.to_vec();
    fold_ids.sort_unstable();
    fold_ids.dedup();
    for k in fold_ids {
        let others: Vec<CalFilm<'_>> = films
            .iter()
            .zip(folds)
            .filter(|(_, f)| **f != k)
            .map(|(c, _)| *c)
            .collect();
        let cal = fit(&others, level, "")?;
        for (i, (film, _)) in films
            .iter()
            .zip(folds)
            .enumerate()
            .filter(|(_, (_, f))| **f == k)
        {
            out[i] = Some(cal.apply(film.sex, film.members)?);
        }
    }
    Ok(out
        .into_iter()
        .map(|c| c.expect("every film has a fold"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Cohort, Head};
    use crate::registration::Region;

    const A: ModelKey = ModelKey::first(Region::A, Head::Regression, Cohort::Mixed);
    const B: ModelKey = ModelKey::first(Region::B, Head::Regression, Cohort::Mixed);

    /// Films of both sexes whose member A reads `0.5·truth + 60` (regressed to the
    /// mean) plus a large noise and member B `truth` plus a small one (deterministic).
    fn films(n: usize) -> Vec<(Sex, f64, BTreeMap<ModelKey, f64>)> {
        (0..n)
            .map(|i| {
                let truth = 12.0 + (i * 37 % 200) as f64;
                let noise = ((i * 7919) % 21) as f64 - 10.0;
                let sex = if i % 2 == 0 { Sex::Male } else { Sex::Female };
                let noise_a = ((i * 104_729) % 41) as f64 - 20.0;
                let members =
                    BTreeMap::from([(A, 0.5 * truth + 60.0 + noise_a), (B, truth + noise)]);
                (sex, truth, members)
            })
            .collect()
    }

    fn cal_films(f: &[(Sex, f64, BTreeMap<ModelKey, f64>)]) -> Vec<CalFilm<'_>> {
        f.iter()
            .map(|(sex, truth, members)| CalFilm {
                sex: *sex,
                truth: *truth,
                members,
            })
            .collect()
    }

    #[test]
    fn a_biased_member_alone_is_corrected_linearly() {
        // Member A alone, without its noise: truth = 2·(p − 60) exactly.
        let f: Vec<_> = films(200)
            .into_iter()
            .map(|(s, t, _)| (s, t, BTreeMap::from([(A, 0.5 * t + 60.0)])))
            .collect();
        let cal = fit(&cal_films(&f), LEVEL, "test").unwrap();
        for s in &cal.sexes {
            // The ridge pulls the single weight a little towards 1.
            assert!((s.weights[0] - 2.0).abs() < 0.1, "{:?}", s.weights);
            let back = s.intercept + s.weights[0] * 100.0;
            assert!((back - 80.0).abs() < 4.0, "100 months read maps to {back}");
        }
    }

    #[test]
    fn the_fit_prefers_the_better_member_and_intervals_cover() {
        let f = films(400);
        let c = cal_films(&f);
        let cal = fit(&c, LEVEL, "test").unwrap();
        let male = &cal.sexes[0];
        assert_eq!(male.members, ["A-reg-mixed", "B-reg-mixed"]);
        assert!(male.weights[1] > male.weights[0], "{:?}", male.weights);
        // Cross-fitted coverage of the 90 % intervals on these films.
        let folds: Vec<usize> = (0..c.len()).map(|i| i % 5).collect();
        let out = cross_fit(&c, &folds, LEVEL).unwrap();
        let covered = out
            .iter()
            .zip(&c)
            .filter(|(o, f)| o.low <= f.truth && f.truth <= o.high)
            .count() as f64
            / c.len() as f64;
        assert!((0.84..=0.96).contains(&covered), "coverage {covered}");
        let mae = out
            .iter()
            .zip(&c)
            .map(|(o, f)| (o.months - f.truth).abs())
            .sum::<f64>()
            / c.len() as f64;
        let plain = c
            .iter()
            .map(|f| ((f.members[&A] + f.members[&B]) / 2.0 - f.truth).abs())
            .sum::<f64>()
            / c.len() as f64;
        assert!(mae < plain / 2.0, "fitted {mae} vs plain mean {plain}");
        assert!(
            out.iter()
                .all(|o| o.low <= o.months && o.months <= o.high && !o.wide)
        );
    }

    /// Mean signed error of `estimate` by true stage, for stages with at least
    /// `STAGE_FILMS` of the films.
    fn stage_bias(c: &[CalFilm<'_>], estimate: impl Fn(&CalFilm<'_>) -> f64) -> Vec<f64> {
        let mut by: BTreeMap<(Sex, Stage), Vec<f64>> = BTreeMap::new();
        for f in c {
            by.entry((f.sex, Stage::of(f.truth, f.sex)))
                .or_default()
                .push(estimate(f) - f.truth);
        }
        by.values()
            .filter(|e| e.len() >= STAGE_FILMS)
            .map(|e| e.iter().sum::<f64>() / e.len() as f64)
            .collect()
    }

    #[test]
    fn the_fit_is_stretched_until_no_stage_is_biased() {
        // Member A alone with its noise: least squares reads the youngest too old
        // and the oldest too young.
        let f: Vec<_> = films(600)
            .into_iter()
            .map(|(s, t, m)| (s, t, BTreeMap::from([(A, m[&A])])))
            .collect();
        let c = cal_films(&f);
        let worst = |b: &[f64]| b.iter().fold(0.0_f64, |m, x| m.max(x.abs()));
        // Plain least squares of the truth on A, per sex.
        let least_squares = stage_bias(&c, |f| {
            let x: Vec<&CalFilm<'_>> = c.iter().filter(|g| g.sex == f.sex).collect();
            let n = x.len() as f64;
            let pb = x.iter().map(|g| g.members[&A]).sum::<f64>() / n;
            let yb = x.iter().map(|g| g.truth).sum::<f64>() / n;
            let (sxy, sxx) = x.iter().fold((0.0, 0.0), |(a, b), g| {
                let d = g.members[&A] - pb;
                (a + d * (g.truth - yb), b + d * d)
            });
            yb + sxy / sxx * (f.members[&A] - pb)
        });
        assert!(worst(&least_squares) > STAGE_BIAS, "nothing to correct");
        let cal = fit(&c, LEVEL, "test").unwrap();
        for s in &cal.sexes {
            assert!(s.stretch > 0.0 && s.stretch < 1.0, "stretch {}", s.stretch);
        }
        let fitted = stage_bias(&c, |f| cal.apply(f.sex, f.members).unwrap().months);
        assert!(worst(&fitted) <= STAGE_BIAS + 1e-9, "{fitted:?}");
        // An unbiased member needs no stretch.
        let exact: Vec<_> = films(200)
            .into_iter()
            .map(|(s, t, _)| (s, t, BTreeMap::from([(A, t)])))
            .collect();
        let cal = fit(&cal_films(&exact), LEVEL, "test").unwrap();
        assert!(cal.sexes.iter().all(|s| s.stretch == 0.0));
    }

    #[test]
    fn too_few_films_or_a_missing_member_are_named() {
        let f = films(30);
        assert!(matches!(
            fit(&cal_films(&f), LEVEL, "t"),
            Err(CalibrationError::TooFew { .. })
        ));
        let f = films(200);
        let cal = fit(&cal_films(&f), LEVEL, "t").unwrap();
        let only_a = BTreeMap::from([(A, 100.0)]);
        let e = cal.apply(Sex::Female, &only_a).unwrap_err();
        assert!(e.to_string().contains("B-reg-mixed"), "{e}");
        let json = serde_json::to_string(&cal).unwrap();
        let back: Calibration = serde_json::from_str(&json).unwrap();
        assert_eq!(back, cal);
    }

    #[test]
    fn check_names_what_a_calibration_lacks() {
        let f = films(200);
        let cal = fit(&cal_films(&f), LEVEL, "t").unwrap();
        let all = |_: &str| true;
        assert_eq!(cal.check(None, all), Ok(()));
        let e = cal
            .check(Some(Sex::Male), |m| m != "B-reg-mixed")
            .unwrap_err();
        assert!(e.contains("B-reg-mixed"), "{e}");
        let mut no_girls = cal.clone();
        no_girls.sexes.retain(|s| s.sex == Sex::Male);
        assert_eq!(no_girls.check(Some(Sex::Male), all), Ok(()));
        assert!(no_girls.check(None, all).unwrap_err().contains("female"));
        let mut short = cal.clone();
        short.sexes[0].intervals.pop();
        assert!(short.check(None, all).unwrap_err().contains("post-puberty"));
        let mut odd = cal.clone();
        odd.sexes[1].weights.pop();
        assert!(
            odd.check(None, all)
                .unwrap_err()
                .contains("2 members but 1 weights")
        );
        let mut tta = cal;
        tta.tta = Tta::Members(vec!["C-reg-mixed".into()]);
        let e = tta.check(None, |m| m != "C-reg-mixed").unwrap_err();
        assert!(
            e.contains("C-reg-mixed") && e.contains("augmentation"),
            "{e}"
        );
    }

    #[test]
    fn tta_is_all_none_or_some_members_and_reads_the_older_flag() {
        // calibration.json before per-member augmentation said `"tta": true`.
        let all: Tta = serde_json::from_str("true").unwrap();
        assert_eq!(all, Tta::All(true));
        assert!(all.covers("C-reg-mixed"));
        let none: Tta = serde_json::from_str("false").unwrap();
        assert!(!none.covers("A-reg-mixed"));
        let some: Tta = serde_json::from_str(r#"["A-reg-mixed", "B-reg-mixed"]"#).unwrap();
        assert!(some.covers("A-reg-mixed") && some.covers("B-reg-mixed"));
        assert!(!some.covers("C-reg-mixed"));
        assert_eq!(some.describe(), "A-reg-mixed and B-reg-mixed");
        assert_eq!(
            serde_json::to_string(&some).unwrap(),
            r#"["A-reg-mixed","B-reg-mixed"]"#
        );
        // Absent: none.
        assert_eq!(Tta::default(), Tta::All(false));
    }
}
