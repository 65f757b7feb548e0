//! Whether a film has enough pixels for its bone age to be read.
//!
//! The age models read the registered hand, whatever the film's size: a film with
//! few pixels for its hand is enlarged, and its growth plates blur. Development films
//! shrunk on purpose came out with ages that moved by 17.7 months on average (mostly
//! younger; towards older for young children) where the hand kept under 0.6 of the
//! size usual at its age, and by 3.2 above that (a few by 6–9; see the README, "A
//! film with too few pixels"). Young children's hands are small on every film, so the
//! measure is the hand's span in pixels against the span usual at its bone age, not
//! the span alone.

use boneage_core::keypoints::KeyPoints;
use serde::{Deserialize, Serialize};

/// The development films' median hand span (middle fingertip to capitate, in the
/// film's pixels) by bone age: `(months, pixels)`, the middle of each two-year band.
/// Made from the 1,058 of the 1,145 labelled films (`../shared/data/rsna/raw` and
/// `extra`) that `boneage preprocess` answers, their key points and true bone ages:
/// `python3 scripts/typical_span.py DIR/keypoints.csv` after `boneage preprocess
/// ../shared/data/rsna/raw/*.png ../shared/data/rsna/extra/*.png --out DIR`. No film
/// under two years is answered, so the first band stands for them too.
pub const TYPICAL_SPAN_PX: [(f64, f64); 9] = [
    (36.0, 358.0),
    (60.0, 396.0),
    (84.0, 438.0),
    (108.0, 464.0),
    (132.0, 496.0),
    (156.0, 526.0),
    (180.0, 572.0),
    (204.0, 554.0),
    (228.0, 555.0),
];

/// A hand spanning less than this share of the span usual at its bone age
/// ([`TYPICAL_SPAN_PX`]) has too few pixels for its age to be relied on. Set from
/// the shrunk development films before this check was built; 1 % of the development
/// films as filmed lie under 0.64.
pub const LOW_RESOLUTION_SHARE: f64 = 0.6;

/// The span, in pixels, under which a hand is flagged as low resolution at every
/// bone age: [`LOW_RESOLUTION_SHARE`] of the smallest usual span ([`TYPICAL_SPAN_PX`]).
pub fn low_at_every_age_px() -> f64 {
    let smallest = TYPICAL_SPAN_PX
        .iter()
        .map(|&(_, px)| px)
        .fold(f64::INFINITY, f64::min);
    LOW_RESOLUTION_SHARE * smallest
}

/// The development films' median hand span at a bone age, pixels: linear between
/// the bands' middles, the first or last band's beyond them (the first for an age
/// that is not a number).
pub fn typical_span_px(months: f64) -> f64 {
    if months.is_nan() {
        return TYPICAL_SPAN_PX[0].1;
    }
    boneage_core::geometry::interpolate(&TYPICAL_SPAN_PX, months)
}

/// How many pixels a film gives its hand, against what the age models were made on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    /// Middle fingertip to capitate, in the film's pixels.
    pub hand_span_px: f64,
    /// The development films' median span at this bone age ([`typical_span_px`]).
    pub typical_span_px: f64,
    /// The hand spans less than `low_share` of the usual: the age is not to be
    /// relied on.
    #[serde(default)]
    pub low: bool,
    /// The share of the usual span under which the hand is `low`
    /// ([`LOW_RESOLUTION_SHARE`] when the report was made), so that what shows the
    /// warning says the limit that was applied.
    #[serde(default = "low_share")]
    pub low_share: f64,
}

/// [`LOW_RESOLUTION_SHARE`], for reports made before it was written into them.
fn low_share() -> f64 {
    LOW_RESOLUTION_SHARE
}

impl Resolution {
    /// The resolution of a hand with these key points, read as `months` old.
    pub fn of(keypoints: &KeyPoints, months: f64) -> Resolution {
        let hand_span_px = keypoints.span();
        let typical_span_px = typical_span_px(months);
        Resolution {
            hand_span_px,
            typical_span_px,
            low: hand_span_px < LOW_RESOLUTION_SHARE * typical_span_px,
            low_share: LOW_RESOLUTION_SHARE,
        }
    }

    /// The resolution as a report's JSON holds it (`{"hand_span_px",
    /// "typical_span_px", "low", "low_share"}`, as serialised); `None` where a number
    /// is missing.
    pub fn from_json(v: &serde_json::Value) -> Option<Resolution> {
        Resolution::deserialize(v).ok()
    }

    /// The warning for a radiographer, when the resolution is low.
    pub fn warning(&self) -> Option<String> {
        self.low.then(|| {
            format!(
                "low resolution: the hand spans {:.0} px from the middle fingertip to the \
                 capitate, under {:.0} % of the {:.0} px usual at this age: ages read from \
                 films with so few pixels are often many months off (mostly too young), \
                 so do not rely on this one: send the film at its full resolution",
                self.hand_span_px,
                100.0 * self.low_share,
                self.typical_span_px
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use boneage_core::geometry::Point;

    fn hand(span: f64) -> KeyPoints {
        KeyPoints {
            fingertip: Point::new(100.0, 50.0),
            thumb: Point::new(100.0 + 0.6 * span, 50.0 + 0.6 * span),
            capitate: Point::new(100.0, 50.0 + span),
        }
    }

    #[test]
    fn the_usual_span_follows_the_table_between_its_bands_and_holds_beyond() {
        assert_eq!(typical_span_px(36.0), 358.0);
        assert!((typical_span_px(48.0) - 377.0).abs() < 1e-9);
        assert_eq!(typical_span_px(6.0), 358.0);
        assert_eq!(typical_span_px(f64::NAN), 358.0);
        assert_eq!(typical_span_px(300.0), 555.0);
        for w in TYPICAL_SPAN_PX.windows(2) {
            assert!(w[0].0 < w[1].0, "bands in order of age");
        }
    }

    #[test]
    fn a_hand_with_few_pixels_for_its_age_is_flagged_and_a_young_childs_small_hand_is_not() {
        // A 11-year-old's hand over 200 px: under 0.6 of the usual 496.
        let r = Resolution::of(&hand(200.0), 132.0);
        assert!((r.hand_span_px - 200.0).abs() < 1e-9);
        assert!(r.low, "{r:?}");
        let w = r.warning().unwrap();
        assert!(w.contains("200 px") && w.contains("496 px"), "{w}");
        // The same 200 px suffice for no age; a 3-year-old's 230 px do.
        assert!(!Resolution::of(&hand(230.0), 36.0).low);
        assert!(Resolution::of(&hand(230.0), 132.0).low);
        // A hand the size of the development films' is not flagged.
        let r = Resolution::of(&hand(480.0), 132.0);
        assert!(!r.low && r.warning().is_none(), "{r:?}");
    }

    #[test]
    fn a_stored_report_gives_back_its_resolution_and_warning() {
        let r = Resolution::of(&hand(187.0), 180.0);
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(Resolution::from_json(&v), Some(r));
        assert!(
            Resolution::from_json(&v)
                .unwrap()
                .warning()
                .unwrap()
                .contains("187 px")
        );
        let fine = serde_json::to_value(Resolution::of(&hand(560.0), 180.0)).unwrap();
        assert_eq!(Resolution::from_json(&fine).unwrap().warning(), None);
        assert_eq!(Resolution::from_json(&serde_json::Value::Null), None);
    }

    #[test]
    fn the_report_carries_the_share_its_warning_names() {
        // Written into the report, so that a page or a reader of the JSON names the
        // limit that was applied, not a copy of it.
        let v = serde_json::to_value(Resolution::of(&hand(187.0), 180.0)).unwrap();
        assert_eq!(v["low_share"].as_f64(), Some(LOW_RESOLUTION_SHARE));
        // A report made before the field: the share of the time.
        let old = serde_json::json!({"hand_span_px": 187.0, "typical_span_px": 540.0, "low": true});
        let r = Resolution::from_json(&old).unwrap();
        assert_eq!(r.low_share, LOW_RESOLUTION_SHARE);
        // The warning names the share the report holds.
        let other = Resolution {
            low_share: 0.5,
            ..r
        };
        assert!(other.warning().unwrap().contains("under 50 %"), "{other:?}");
        assert!(r.warning().unwrap().contains("under 60 %"), "{r:?}");
    }

    #[test]
    fn a_hand_the_canvas_read_answers_under_the_low_resolution_line_is_flagged_at_every_age() {
        // The front end answers a film found on a larger canvas down to a floor set by
        // where its key points go wrong, under the low-resolution line at the smallest
        // usual span: every hand it answers between the two is flagged at every age, so
        // its age comes with the warning.
        let line = low_at_every_age_px();
        let floor = boneage_nn::pipeline::CANVAS_MIN_SPAN_PX;
        assert!(floor < line, "{floor} against {line}");
        for &(months, _) in &TYPICAL_SPAN_PX {
            for span in [floor, 0.5 * (floor + line), line - 1.0] {
                let r = Resolution::of(&hand(span), months);
                assert!(r.low && r.warning().is_some(), "{span} px at {months}");
            }
        }
    }
}
