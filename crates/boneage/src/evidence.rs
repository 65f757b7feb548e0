//! The evidence picture: the registered hand as the bone-age models saw it, with its
//! mask outline, key points, registration targets and regions, and the numbers
//! beneath.

use boneage_core::growth::years_months;
use boneage_core::overlay::canvas_overlay;
use boneage_core::registration::{Canvas, Region};
use boneage_nn::pipeline::Preprocessed;
use image::RgbImage;

use crate::assessor::Assessment;

/// The registered canvas of a preprocessed film with its mask outline, key points,
/// targets and `regions`.
pub fn preprocessed_overlay(p: &Preprocessed, canvas: &Canvas, regions: &[Region]) -> RgbImage {
    canvas_overlay(
        &p.registered,
        Some(&p.registration.warp_mask(&p.mask, canvas)),
        &p.registration.keypoints(&p.keypoints),
        canvas,
        regions,
    )
}

impl Assessment {
    /// The registered hand with key points and regions, and the numbers beneath.
    pub fn evidence_picture(&self, canvas: &Canvas) -> RgbImage {
        let e = &self.estimate;
        // The regions its models read.
        let regions: Vec<Region> = Region::ALL
            .into_iter()
            .filter(|r| e.members.iter().any(|m| m.key.region == *r))
            .collect();
        let hand = preprocessed_overlay(&self.preprocessed, canvas, &regions);
        let mut lines = vec![
            format!("BONE AGE {:.0} MO ({})", e.months, years_months(e.months)),
            match e.members.len() {
                1 => format!("SEX {}, 1 MODEL", self.patient.sex.letter()),
                n => format!(
                    "SEX {}, SPREAD {:.1} MO, {n} MODELS",
                    self.patient.sex.letter(),
                    e.spread
                ),
            },
        ];
        if let Some(c) = &e.calibrated {
            lines.push(format!(
                "{:.0}% INTERVAL {:.0}-{:.0} MO",
                100.0 * c.level,
                c.low,
                c.high
            ));
            if c.wide {
                // Its own line: the picture is as wide as the canvas.
                lines.push("TOO WIDE TO BE USEFUL".to_string());
            }
        }
        let resolution = self.resolution();
        // Short lines, in a colour of their own: the age is not to be relied on.
        let warned_from = lines.len();
        if resolution.low {
            lines.push(format!(
                "LOW RESOLUTION: HAND {:.0} PX",
                resolution.hand_span_px
            ));
            lines.push("DO NOT RELY ON THIS AGE".to_string());
        }
        let warned = warned_from..lines.len();
        for (i, v) in e.regions.iter().enumerate() {
            if let Some(v) = v {
                lines.push(format!(
                    "{} {v:.0} MO",
                    ["A HAND", "B CARPALS", "C METACARPALS", "D FINGERS"][i]
                ));
            }
        }
        if let Some(c) = &self.chronological {
            // Short lines: 33 characters fill the canvas's width at this size.
            lines.push(format!(
                "AGE {:.0} MO ({})",
                c.chronological_months,
                years_months(c.chronological_months)
            ));
            lines.push(format!(
                "DIFF {:+.0} MO, SDS {:+.1}: {}",
                c.difference_months,
                c.sds,
                c.verdict.name()
            ));
        }
        // Two font pixels per pixel on the CPU canvas (400 wide), more on larger ones.
        let scale = (hand.width() as usize / 200).max(2);
        let line_h = 9 * scale;
        let band = (lines.len() * line_h + 8) as u32;
        let mut out = RgbImage::new(hand.width(), hand.height() + band);
        image::imageops::replace(&mut out, &hand, 0, 0);
        for (i, l) in lines.iter().enumerate() {
            let color = if i == 0 {
                [255, 220, 80]
            } else if warned.contains(&i) {
                [255, 140, 60]
            } else {
                [230, 230, 230]
            };
            let y = (hand.height() as usize + 4 + i * line_h) as i64;
            boneage_core::font::draw_text_rgb(&mut out, l, 6, y, scale, color);
        }
        out
    }
}
