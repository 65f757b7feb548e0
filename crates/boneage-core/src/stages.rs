//! Skeletal development stages by sex (Gilsanz & Ratib, as in the paper's Fig. 9).

use serde::{Deserialize, Serialize};

use crate::domain::Sex;

/// A skeletal development stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Stage {
    /// F 0–10 months, M 0–14 months.
    Infancy,
    /// F 10 months–2 years, M 14 months–3 years.
    Toddler,
    /// F 2–7 years, M 3–9 years.
    PrePuberty,
    /// F 7–13 years, M 9–14 years.
    EarlyMidPuberty,
    /// F 13–15 years, M 14–16 years.
    LatePuberty,
    /// F 15–17 years, M 16–19 years (and older).
    PostPuberty,
}

impl Stage {
    /// All stages, youngest first.
    pub const ALL: [Stage; 6] = [
        Stage::Infancy,
        Stage::Toddler,
        Stage::PrePuberty,
        Stage::EarlyMidPuberty,
        Stage::LatePuberty,
        Stage::PostPuberty,
    ];

    /// A short human name.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Infancy => "infancy",
            Stage::Toddler => "toddler",
            Stage::PrePuberty => "pre-puberty",
            Stage::EarlyMidPuberty => "early-mid puberty",
            Stage::LatePuberty => "late puberty",
            Stage::PostPuberty => "post-puberty",
        }
    }

    /// Lower bounds in months of each stage after the first, for one sex.
    pub fn bounds_months(sex: Sex) -> [f64; 5] {
        match sex {
            Sex::Female => [10.0, 24.0, 84.0, 156.0, 180.0],
            Sex::Male => [14.0, 36.0, 108.0, 168.0, 192.0],
        }
    }

    /// The stage of a bone age (months) for a sex. Ages past the last bound are
    /// post-puberty.
    pub fn of(age_months: f64, sex: Sex) -> Stage {
        let n = Self::bounds_months(sex)
            .iter()
            .take_while(|&&b| age_months >= b)
            .count();
        Self::ALL[n]
    }
}
