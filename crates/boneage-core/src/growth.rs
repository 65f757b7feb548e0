//! A bone age against the patient's chronological age: the difference, the standard
//! deviation score (SDS) from the Greulich–Pyle atlas's Brush Foundation standard
//! deviations, and delayed / normal / advanced at ±2 SD.
//!
//! The table is `data/greulich_pyle_brush.csv` (copied from the project's reference
//! folder, its source noted in its header): mean skeletal age and its SD in months
//! at chronological ages 3 months to 17 (girls) or 18 (boys) years.

use std::sync::OnceLock;

use serde::Serialize;

use crate::domain::Sex;

const TABLE: &str = include_str!("../data/greulich_pyle_brush.csv");

/// One row of the table: at `age` months, bone ages have standard deviation `sd`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Row {
    sex: Sex,
    age: f64,
    mean: f64,
    sd: f64,
}

fn table() -> &'static [Row] {
    static ROWS: OnceLock<Vec<Row>> = OnceLock::new();
    ROWS.get_or_init(|| {
        TABLE
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("sex,") && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                let num = |i: usize| f[i].trim().parse::<f64>().expect("numeric table cell");
                Row {
                    sex: if f[0] == "M" { Sex::Male } else { Sex::Female },
                    age: num(1),
                    mean: num(2),
                    sd: num(3),
                }
            })
            .collect()
    })
}

/// The standard deviation of bone age (months) at a chronological age, linearly
/// interpolated between the table's ages. Outside the table the nearest row's SD is
/// used and `clamped` is true.
pub fn sd_months(sex: Sex, age_months: f64) -> (f64, bool) {
    let rows: Vec<&Row> = table().iter().filter(|r| r.sex == sex).collect();
    let (first, last) = (rows[0], rows[rows.len() - 1]);
    if age_months <= first.age {
        return (first.sd, age_months < first.age);
    }
    if age_months >= last.age {
        return (last.sd, age_months > last.age);
    }
    for w in rows.windows(2) {
        let (a, b) = (w[0], w[1]);
        if age_months <= b.age {
            let t = (age_months - a.age) / (b.age - a.age);
            return (a.sd + t * (b.sd - a.sd), false);
        }
    }
    unreachable!("age lies inside the table")
}

/// The table's rows for one sex, ages ascending: `(chronological age, mean bone
/// age, SD)` in months. For growth charts: the mean and its ±2 SD band.
pub fn reference_rows(sex: Sex) -> Vec<(f64, f64, f64)> {
    table()
        .iter()
        .filter(|r| r.sex == sex)
        .map(|r| (r.age, r.mean, r.sd))
        .collect()
}

/// Bone age against chronological age.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// More than 2 SD younger than the chronological age.
    Delayed,
    /// Within ±2 SD.
    Normal,
    /// More than 2 SD older.
    Advanced,
}

impl Verdict {
    /// "delayed", "normal" or "advanced".
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Delayed => "delayed",
            Verdict::Normal => "normal",
            Verdict::Advanced => "advanced",
        }
    }
}

/// A bone age compared with the chronological age.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// Chronological age, months.
    pub chronological_months: f64,
    /// Bone age minus chronological age, months.
    pub difference_months: f64,
    /// The Greulich–Pyle/Brush SD at the chronological age, months.
    pub sd_months: f64,
    /// `difference / sd`.
    pub sds: f64,
    /// Delayed / normal / advanced at ±2 SD.
    pub verdict: Verdict,
    /// The chronological age lies outside the table (3 months to 17 or 18 years): the
    /// nearest row's SD was used.
    pub outside_table: bool,
}

/// Compares a bone age with a chronological age (both months).
pub fn compare(sex: Sex, bone_age_months: f64, chronological_months: f64) -> Comparison {
    let (sd, outside_table) = sd_months(sex, chronological_months);
    let difference = bone_age_months - chronological_months;
    let sds = difference / sd;
    let verdict = if sds < -2.0 {
        Verdict::Delayed
    } else if sds > 2.0 {
        Verdict::Advanced
    } else {
        Verdict::Normal
    };
    Comparison {
        chronological_months,
        difference_months: difference,
        sd_months: sd,
        sds,
        verdict,
        outside_table,
    }
}

/// Parses an age such as `10y3m`, `10y`, `7m`, `10.5y` or a bare number of months.
pub fn parse_age(s: &str) -> Option<f64> {
    let t = s.trim().to_ascii_lowercase();
    if t.is_empty() {
        return None;
    }
    if let Ok(m) = t.parse::<f64>() {
        return (m >= 0.0 && m.is_finite()).then_some(m);
    }
    let (years, rest) = match t.split_once('y') {
        Some((y, rest)) => (y.trim().parse::<f64>().ok()?, rest.trim()),
        None => (0.0, t.as_str()),
    };
    let months = if rest.is_empty() {
        0.0
    } else {
        rest.strip_suffix('m')?.trim().parse::<f64>().ok()?
    };
    let total = years * 12.0 + months;
    (years >= 0.0 && months >= 0.0 && total.is_finite()).then_some(total)
}

/// Months as `"10 y 3 m"` (rounded to whole months).
pub fn years_months(months: f64) -> String {
    let m = months.round().max(0.0) as i64;
    format!("{} y {} m", m / 12, m % 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sd_interpolates_between_rows_and_clamps_outside() {
        // M 120 → 9.79, M 132 → 10.09: halfway 9.94.
        let (sd, clamped) = sd_months(Sex::Male, 126.0);
        assert!((sd - 9.94).abs() < 1e-9 && !clamped);
        assert_eq!(sd_months(Sex::Female, 96.0), (10.23, false));
        assert_eq!(sd_months(Sex::Female, 300.0), (7.31, true));
        assert_eq!(sd_months(Sex::Male, 1.0), (0.69, true));
    }

    #[test]
    fn comparison_at_two_sd() {
        // F at 96 months: SD 10.23.
        let c = compare(Sex::Female, 96.0 + 2.5 * 10.23, 96.0);
        assert!((c.sds - 2.5).abs() < 1e-9);
        assert_eq!(c.verdict, Verdict::Advanced);
        assert_eq!(
            compare(Sex::Female, 96.0 - 21.0, 96.0).verdict,
            Verdict::Delayed
        );
        assert_eq!(
            compare(Sex::Female, 96.0 + 20.0, 96.0).verdict,
            Verdict::Normal
        );
    }

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("10y3m"), Some(123.0));
        assert_eq!(parse_age("10y"), Some(120.0));
        assert_eq!(parse_age("7m"), Some(7.0));
        assert_eq!(parse_age("10.5y"), Some(126.0));
        assert_eq!(parse_age("123"), Some(123.0));
        assert_eq!(parse_age(" 4y 6m "), Some(54.0));
        for bad in ["", "ten", "3x", "-2", "y3m"] {
            assert_eq!(parse_age(bad), None, "{bad}");
        }
        assert_eq!(years_months(123.4), "10 y 3 m");
    }
}
