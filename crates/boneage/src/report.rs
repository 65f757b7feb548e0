//! An assessment in the forms people and programs read: the lines `boneage assess`
//! prints, and the JSON document that `--json`, the HTTP service and the Python
//! package give (the same fields everywhere).

use std::collections::BTreeMap;

use boneage_core::growth::{Comparison, years_months};
use boneage_core::registration::Region;
use boneage_nn::ensemble::MemberEstimate;
use serde::Serialize;

use crate::assessor::Assessment;
use crate::resolution::Resolution;

/// The regions' names as the text report gives them.
pub const REGION_NAMES: [&str; 4] = [
    "A, whole hand",
    "B, carpals",
    "C, metacarpals and phalanges",
    "D, fingers",
];

/// The interval of a bone age, measured out of fold (`calibration.json`).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Interval {
    /// Lower bound, months.
    pub low_months: f64,
    /// Upper bound, months.
    pub high_months: f64,
    /// Nominal coverage (0.9: 9 films in 10 fall inside, measured out of fold).
    pub level: f64,
    /// Whether it is too wide to be useful.
    pub too_wide: bool,
}

/// The JSON form of an assessment.
#[derive(Clone, Debug, Serialize)]
pub struct Report<'a> {
    /// The film, as the user named it.
    pub file: String,
    /// "M" or "F".
    pub sex: &'static str,
    /// Where the sex came from (e.g. "--sex", "the file's header").
    pub sex_from: &'static str,
    /// The bone age, months.
    pub bone_age_months: f64,
    /// The bone age in years and months.
    pub bone_age: String,
    /// Standard deviation across the ensemble's members, months.
    pub spread_months: f64,
    /// The interval of the bone age, months (with the models' calibration only).
    pub interval: Option<Interval>,
    /// The plain mean of the members, months (the bone age without a calibration).
    pub mean_months: f64,
    /// Each region's mean estimate, months.
    pub regions: BTreeMap<&'static str, Option<f64>>,
    /// Every member's estimate.
    pub members: &'a [MemberEstimate],
    /// Against the chronological age, when known.
    pub chronological: Option<Comparison>,
    /// How the film was registered, and what the check after registration saw.
    pub registration: RegistrationReport,
    /// How many pixels the film gives its hand, against the development films at
    /// this age; `low` means the age is not to be relied on.
    pub resolution: Resolution,
    /// Seconds, as the caller measured them.
    pub seconds: f64,
}

/// The registration of an assessed film, for whoever wants to judge it.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct RegistrationReport {
    /// Middle fingertip, thumb tip and capitate in the film's pixels, `[x, y]` each.
    pub fingertip: [f64; 2],
    /// Thumb tip.
    pub thumb: [f64; 2],
    /// Capitate.
    pub capitate: [f64; 2],
    /// The film was mirrored (a right hand, or a flipped film).
    pub mirrored: bool,
    /// The film's polarity was inverted (bone dark) and was read turned back.
    pub inverted_polarity: bool,
    /// Where the film lay on a larger canvas (a small film on a large cassette),
    /// `[x0, y0, x1, y1]` in the image's pixels, where it was read there alone.
    pub film_on_canvas: Option<[usize; 4]>,
    /// The film had already been cut out by another program (exact black around the
    /// hand) and was read with its own outline as the hand's mask.
    pub cut_out: bool,
    /// The film was refused every other way and its hand outlined by the U-Net
    /// trained for framed films (a frame or a field of another grey around the
    /// film, a flat or dark film), the answer standing where the second reader's
    /// locator agrees with it.
    pub framed_unet: bool,
    /// The hand's outline could not place the key points (it disagreed with the
    /// key-point nets); they are the heat-map locator's alone, standing on the two
    /// nets' agreement and the check after registration.
    pub locator_alone: bool,
    /// The film was refused every other way and read again with two pieces of the
    /// hand's outline that point against each other taken for a forearm that ends
    /// inside the image, the answer standing where the second reader's locator agrees
    /// with it and the outline's five digits vouch for it.
    pub forearm_inside: bool,
    /// The film was refused every other way and read again with its dark values
    /// brought up for the U-Net (faint soft tissue), the answer standing where the
    /// second reader's locator agrees with it and the outline's five digits vouch
    /// for it.
    pub faint_tissue: bool,
    /// Canvas pixels per film pixel.
    pub zoom: f64,
    /// Rotation applied, degrees.
    pub rotation_deg: f64,
    /// Agreement with the mean registered hand (soft intersection over union), when
    /// the models have the check.
    pub template_agreement: Option<f64>,
    /// The turn of the mean hand that fits best, degrees.
    pub template_turn_deg: Option<f64>,
    /// The scale of the mean hand that fits best.
    pub template_scale: Option<f64>,
}

impl Assessment {
    /// The JSON document of this assessment.
    pub fn report(&self, file: &str, sex_from: &'static str, seconds: f64) -> Report<'_> {
        let e = &self.estimate;
        Report {
            file: file.to_string(),
            sex: self.patient.sex.letter(),
            sex_from,
            bone_age_months: e.months,
            bone_age: years_months(e.months),
            spread_months: e.spread,
            interval: e.calibrated.map(|c| Interval {
                low_months: c.low,
                high_months: c.high,
                level: c.level,
                too_wide: c.wide,
            }),
            mean_months: e.mean_months,
            regions: Region::ALL
                .iter()
                .map(|r| (r.name(), e.regions[*r as usize]))
                .collect(),
            members: &e.members,
            chronological: self.chronological,
            registration: {
                let p = &self.preprocessed;
                let xy = |q: boneage_core::geometry::Point| [q.x, q.y];
                RegistrationReport {
                    fingertip: xy(p.keypoints.fingertip),
                    thumb: xy(p.keypoints.thumb),
                    capitate: xy(p.keypoints.capitate),
                    mirrored: p.registration.mirrored,
                    inverted_polarity: p.inverted,
                    film_on_canvas: p.on_canvas,
                    cut_out: p.cut_out,
                    framed_unet: p.framed,
                    locator_alone: p.locator_alone,
                    forearm_inside: p.forearm_inside,
                    faint_tissue: p.faint_tissue,
                    zoom: p.registration.zoom,
                    rotation_deg: p.registration.rotation_deg,
                    template_agreement: p.fit.map(|f| f.agreement),
                    template_turn_deg: p.fit.map(|f| f.turn_deg),
                    template_scale: p.fit.map(|f| f.scale),
                }
            },
            resolution: self.resolution(),
            seconds,
        }
    }

    /// How many pixels the film gives its hand ([`Resolution`]).
    pub fn resolution(&self) -> Resolution {
        Resolution::of(&self.preprocessed.keypoints, self.estimate.months)
    }

    /// The text report: the bone age with its spread, each region, and the
    /// comparison with the chronological age.
    pub fn text_lines(&self, file: &str, sex_from: &str) -> Vec<String> {
        let e = &self.estimate;
        // One model has no spread to speak of.
        let models = match e.members.len() {
            1 => "1 model".to_string(),
            n => format!("spread ±{:.1} months across {n} models", e.spread),
        };
        let mut lines = vec![format!(
            "{file}: bone age {:.0} months ({}), {models} (sex {} from {sex_from})",
            e.months,
            years_months(e.months),
            self.patient.sex.letter()
        )];
        if let Some(w) = self.resolution().warning() {
            lines.push(format!("  {w}"));
        }
        if self.preprocessed.inverted {
            lines.push(
                "  the film's polarity is inverted (bone dark): read turned back, bone bright"
                    .into(),
            );
        }
        if let Some([x0, y0, x1, y1]) = self.preprocessed.on_canvas {
            lines.push(format!(
                "  the film lies on a larger canvas: read alone, pixels {x0}–{x1} across, \
                 {y0}–{y1} down"
            ));
        }
        if self.preprocessed.cut_out {
            lines.push(
                "  the film was already cut out (exact black around the hand): its own outline \
                 was taken as the hand's mask"
                    .into(),
            );
        }
        if self.preprocessed.framed {
            lines.push(
                "  the hand was outlined by the U-Net for framed films (the usual one's outline \
                 was refused), and the second reader's locator agrees with the key points; \
                 look at them on the overlay"
                    .into(),
            );
        }
        if self.preprocessed.forearm_inside {
            lines.push(
                "  the hand's outline was read with its forearm ending inside the image (a film \
                 photographed or scanned on a larger field), and the second reader's locator \
                 agrees with the key points; look at them on the overlay"
                    .into(),
            );
        }
        if self.preprocessed.faint_tissue {
            lines.push(
                "  the hand was outlined with the film's dark values brought up (its soft tissue \
                 is faint; the usual outline was refused), and the second reader's locator \
                 agrees with the key points; look at them on the overlay"
                    .into(),
            );
        }
        if self.preprocessed.locator_alone {
            lines.push(
                "  the hand's outline could not place the key points: they are the locator's \
                 alone, checked by the second key-point net and the check after registration; \
                 look at them on the overlay"
                    .into(),
            );
        }
        if let Some(c) = &e.calibrated {
            lines.push(format!(
                "  {:.0} % interval {:.0}–{:.0} months ({} – {}){}",
                100.0 * c.level,
                c.low,
                c.high,
                years_months(c.low),
                years_months(c.high),
                if c.wide {
                    ": too wide to be useful, read the film yourself"
                } else {
                    ""
                }
            ));
        }
        for (i, v) in e.regions.iter().enumerate() {
            if let Some(v) = v {
                // A region read by more than one model (region A on two canvases).
                let n = e
                    .members
                    .iter()
                    .filter(|m| m.key.region as usize == i)
                    .count();
                let of = if n > 1 {
                    format!(" (mean of {n} models)")
                } else {
                    String::new()
                };
                lines.push(format!(
                    "  region {:<32} {v:>6.1} months{of}",
                    REGION_NAMES[i]
                ));
            }
        }
        if let Some(c) = &self.chronological {
            lines.push(format!(
                "  chronological age {:.0} months ({}): {:+.0} months, SDS {:+.2} (Greulich-Pyle/Brush SD {:.1} months{}): {}",
                c.chronological_months,
                years_months(c.chronological_months),
                c.difference_months,
                c.sds,
                c.sd_months,
                if c.outside_table { ", age outside the table: nearest SD used" } else { "" },
                c.verdict.name()
            ));
        }
        lines
    }
}
