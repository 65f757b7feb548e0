//! The domain's names as types, parsed once where they enter (a flag, a manifest, a
//! labels table) and passed on as values: the patient's [`Sex`], the [`Cohort`] a
//! model was trained on, the [`View`] a bone-age net reads, its [`Head`], a model's
//! [`ModelKey`] and the kind of network a weights file holds ([`NetKind`]).
//!
//! Each has `FromStr` (case-insensitive, with the spellings the manifests and the
//! command line use) and `Display` (the canonical spelling); with the `clap` feature
//! the unit enums are also clap `ValueEnum`s.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::registration::Region;

/// Patient sex as recorded in a file, a labels table or on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Sex {
    /// Male.
    #[cfg_attr(feature = "clap", value(name = "M", alias = "male"))]
    Male,
    /// Female.
    #[cfg_attr(feature = "clap", value(name = "F", alias = "female"))]
    Female,
}

impl Sex {
    /// Both, boys first.
    pub const ALL: [Sex; 2] = [Sex::Male, Sex::Female];

    /// "M" or "F".
    pub fn letter(self) -> &'static str {
        match self {
            Sex::Male => "M",
            Sex::Female => "F",
        }
    }

    /// "male" or "female".
    pub fn word(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }

    /// `true` for male, the RSNA `male` column's convention.
    pub fn is_male(self) -> bool {
        self == Sex::Male
    }
}

impl FromStr for Sex {
    type Err = String;
    /// `M`, `F`, `male`, `female`, and the RSNA `male` column's `true`/`false`/`1`/`0`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "M" | "MALE" | "1" | "TRUE" => Ok(Sex::Male),
            "F" | "FEMALE" | "0" | "FALSE" => Ok(Sex::Female),
            _ => Err(format!("sex {s:?}: use M or F")),
        }
    }
}

impl fmt::Display for Sex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

/// Which patients a model was trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Cohort {
    /// Boys only.
    #[cfg_attr(feature = "clap", value(name = "M"))]
    Male,
    /// Girls only.
    #[cfg_attr(feature = "clap", value(name = "F"))]
    Female,
    /// Both, with the sex as an input.
    #[cfg_attr(feature = "clap", value(name = "mixed"))]
    Mixed,
}

impl Cohort {
    /// The three, in the paper's order.
    pub const ALL: [Cohort; 3] = [Cohort::Male, Cohort::Female, Cohort::Mixed];

    /// "M", "F" or "mixed" (as in the manifests and on the command line).
    pub fn code(self) -> &'static str {
        match self {
            Cohort::Male => "M",
            Cohort::Female => "F",
            Cohort::Mixed => "mixed",
        }
    }

    /// Whether a model of this cohort applies to a patient of `sex`.
    pub fn covers(self, sex: Sex) -> bool {
        match self {
            Cohort::Mixed => true,
            Cohort::Male => sex == Sex::Male,
            Cohort::Female => sex == Sex::Female,
        }
    }

    /// The cohort of one sex.
    pub fn of(sex: Sex) -> Cohort {
        match sex {
            Sex::Male => Cohort::Male,
            Sex::Female => Cohort::Female,
        }
    }

    /// The one sex of a per-sex cohort; `None` for the mixed one.
    pub fn sex(self) -> Option<Sex> {
        match self {
            Cohort::Male => Some(Sex::Male),
            Cohort::Female => Some(Sex::Female),
            Cohort::Mixed => None,
        }
    }
}

impl FromStr for Cohort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "m" | "male" => Ok(Cohort::Male),
            "f" | "female" => Ok(Cohort::Female),
            "mixed" | "both" => Ok(Cohort::Mixed),
            _ => Err(format!("cohort {s:?}: use M, F or mixed")),
        }
    }
}

impl fmt::Display for Cohort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The manifests' spelling of an optional cohort: `"M"`, `"F"`, `"mixed"` or null.
pub mod cohort_code {
    use super::Cohort;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the code, or null.
    pub fn serialize<S: Serializer>(c: &Option<Cohort>, s: S) -> Result<S::Ok, S::Error> {
        match c {
            Some(c) => s.serialize_str(c.code()),
            None => s.serialize_none(),
        }
    }

    /// Reads the code, or null.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cohort>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|v| v.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

impl FromStr for Region {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "A" => Ok(Region::A),
            "B" => Ok(Region::B),
            "C" => Ok(Region::C),
            "D" => Ok(Region::D),
            _ => Err(format!("region {s:?}: use A, B, C or D")),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a bone-age net reads: a region of the registered hand, or the whole film
/// letterboxed without registration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum View {
    /// One of the paper's regions, cropped from the registered canvas.
    Region(Region),
    /// The unregistered film.
    Whole,
}

impl View {
    /// "A", "B", "C" or "whole".
    pub fn code(self) -> &'static str {
        match self {
            View::Region(r) => r.name(),
            View::Whole => "whole",
        }
    }

    /// The region, when it is one.
    pub fn region(self) -> Option<Region> {
        match self {
            View::Region(r) => Some(r),
            View::Whole => None,
        }
    }
}

impl FromStr for View {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().eq_ignore_ascii_case("whole") {
            return Ok(View::Whole);
        }
        s.parse()
            .map(View::Region)
            .map_err(|_| format!("region {s:?}: use A, B, C, D or whole"))
    }
}

impl fmt::Display for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for View {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for View {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// A bone-age net's output head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Head {
    /// One scaled output.
    Regression,
    /// Softmax expectation over months.
    Classification,
}

impl Head {
    /// Both, regression first.
    pub const ALL: [Head; 2] = [Head::Regression, Head::Classification];

    /// "reg" or "cls".
    pub fn short(self) -> &'static str {
        match self {
            Head::Regression => "reg",
            Head::Classification => "cls",
        }
    }
}

impl FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "regression" | "reg" => Ok(Head::Regression),
            "classification" | "cls" => Ok(Head::Classification),
            _ => Err(format!("head {s:?}: use regression or classification")),
        }
    }
}

impl fmt::Display for Head {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Head::Regression => "regression",
            Head::Classification => "classification",
        })
    }
}

/// What one bone-age model of an ensemble is: region, head, cohort, and which model
/// of that kind when an ensemble holds more than one (region A trained on two
/// registration canvases, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ModelKey {
    /// Region crop it reads.
    pub region: Region,
    /// Output head.
    pub head: Head,
    /// Patients it was trained on.
    pub cohort: Cohort,
    /// 0 for the first model of its region, head and cohort; 2, 3, … for further
    /// ones (spelled `A-reg-mixed-2`; see [`ModelKey::variant_of`]).
    pub variant: u8,
}

impl ModelKey {
    /// The first model of a region, head and cohort.
    pub const fn first(region: Region, head: Head, cohort: Cohort) -> Self {
        Self {
            region,
            head,
            cohort,
            variant: 0,
        }
    }

    /// A manifest's or a name's variant number checked: absent for the first model of
    /// its kind, 2 or more for further ones (1 would name the first twice).
    pub fn variant_of(n: Option<u8>) -> Result<u8, String> {
        match n {
            None => Ok(0),
            Some(n) if n >= 2 => Ok(n),
            Some(n) => Err(format!(
                "variant {n}: further models of one region, head and cohort are numbered \
                 from 2 (the first has no number)"
            )),
        }
    }
}

impl fmt::Display for ModelKey {
    /// `A-reg-mixed` and the like (the file stem the grid script uses), `A-reg-mixed-2`
    /// for the second model of that kind.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.region.name(),
            self.head.short(),
            self.cohort.code()
        )?;
        if self.variant > 0 {
            write!(f, "-{}", self.variant)?;
        }
        Ok(())
    }
}

impl FromStr for ModelKey {
    type Err = String;

    /// The spelling [`ModelKey`]'s `Display` writes: `A-reg-mixed`, `C-cls-F`,
    /// `A-reg-mixed-2`, ….
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "model {s:?}: expected REGION-HEAD-COHORT[-N], e.g. A-reg-mixed or A-reg-mixed-2"
            )
        };
        let mut parts = s.split('-');
        let (Some(region), Some(head), Some(cohort), variant, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad());
        };
        let variant = match variant {
            None => None,
            Some(n) => Some(n.parse::<u8>().map_err(|_| bad())?),
        };
        Ok(ModelKey {
            region: region.parse()?,
            head: head.parse()?,
            cohort: cohort.parse()?,
            variant: ModelKey::variant_of(variant).map_err(|e| format!("model {s:?}: {e}"))?,
        })
    }
}

/// The network a weights file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetKind {
    /// The hand-segmentation U-Net.
    Unet,
    /// The key-point regressor.
    Keypoints,
    /// A bone-age net.
    Age,
    /// The registration verifier (right or wrong key points, from the registered
    /// hand).
    Verifier,
}

impl NetKind {
    /// "unet", "keypoints", "age" or "verifier" (as in the manifests).
    pub fn code(self) -> &'static str {
        match self {
            NetKind::Unet => "unet",
            NetKind::Keypoints => "keypoints",
            NetKind::Age => "age",
            NetKind::Verifier => "verifier",
        }
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            NetKind::Unet => "a U-Net",
            NetKind::Keypoints => "a key-point net",
            NetKind::Age => "a bone-age net",
            NetKind::Verifier => "a registration verifier",
        }
    }
}

impl fmt::Display for NetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_their_spelling() {
        for s in Sex::ALL {
            assert_eq!(s.letter().parse::<Sex>(), Ok(s));
        }
        assert_eq!("true".parse::<Sex>(), Ok(Sex::Male));
        assert!("x".parse::<Sex>().unwrap_err().contains("use M or F"));
        for c in Cohort::ALL {
            assert_eq!(c.to_string().parse::<Cohort>(), Ok(c));
        }
        for v in [
            View::Whole,
            View::Region(Region::A),
            View::Region(Region::B),
            View::Region(Region::C),
            View::Region(Region::D),
        ] {
            assert_eq!(v.to_string().parse::<View>(), Ok(v));
            let j = serde_json::to_string(&v).unwrap();
            assert_eq!(serde_json::from_str::<View>(&j).unwrap(), v);
        }
        assert!(
            "E".parse::<View>()
                .unwrap_err()
                .contains("A, B, C, D or whole")
        );
        for h in Head::ALL {
            assert_eq!(h.to_string().parse::<Head>(), Ok(h));
            assert_eq!(h.short().parse::<Head>(), Ok(h));
        }
        let key = ModelKey::first(Region::B, Head::Classification, Cohort::Female);
        assert_eq!(key.to_string(), "B-cls-F");
        assert_eq!("B-cls-F".parse::<ModelKey>(), Ok(key));
        let second = ModelKey { variant: 2, ..key };
        assert_eq!(second.to_string(), "B-cls-F-2");
        assert_eq!("B-cls-F-2".parse::<ModelKey>(), Ok(second));
        assert_ne!(key, second);
        let d = ModelKey::first(Region::D, Head::Regression, Cohort::Mixed);
        assert_eq!("D-reg-mixed".parse::<ModelKey>(), Ok(d));
        for bad in [
            "B-cls",
            "B-cls-F-x",
            "B-cls-F-1",
            "B-cls-F-0",
            "B-cls-F-2-3",
            "true_months",
            "E-reg-mixed",
        ] {
            assert!(bad.parse::<ModelKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cohorts_cover_their_sex() {
        assert!(Cohort::Mixed.covers(Sex::Female));
        assert!(Cohort::Male.covers(Sex::Male) && !Cohort::Male.covers(Sex::Female));
        assert_eq!(Cohort::of(Sex::Female).sex(), Some(Sex::Female));
        assert_eq!(Cohort::Mixed.sex(), None);
    }
}
