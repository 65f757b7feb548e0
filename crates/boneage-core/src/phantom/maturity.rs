//! How a skeleton matures with bone age, by sex.
//!
//! The event ages are rounded from the Greulich–Pyle atlas and the ossification
//! tables in standard paediatric radiology texts: carpals appear in the order
//! capitate, hamate, triquetrum, lunate, trapezium, trapezoid, scaphoid, pisiform;
//! epiphyses appear in the first two years, widen to the width of their metaphysis
//! ("capping") before puberty, then fuse — distal phalanges first, radius last — about
//! 1.5–2 years earlier in girls; the thumb's sesamoid appears early in puberty.
//! They are a phantom's rules, not a clinical reference.

use crate::domain::Sex;

/// The carpal bones, in order of appearance.
pub const CARPALS: [&str; 8] = [
    "capitate",
    "hamate",
    "triquetrum",
    "lunate",
    "trapezium",
    "trapezoid",
    "scaphoid",
    "pisiform",
];

/// Months at which each carpal first ossifies, (female, male), in [`CARPALS`] order.
const CARPAL_APPEAR: [(f64, f64); 8] = [
    (2.0, 3.0),
    (3.0, 4.0),
    (24.0, 30.0),
    (36.0, 48.0),
    (48.0, 66.0),
    (54.0, 72.0),
    (60.0, 78.0),
    (114.0, 144.0),
];

/// Months at which carpals reach adult size (female, male).
const CARPAL_FULL: (f64, f64) = (168.0, 192.0);

/// Groups of epiphyses that mature together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Distal radius.
    Radius,
    /// Distal ulna.
    Ulna,
    /// Metacarpal heads (2–5) and the thumb's metacarpal base.
    Metacarpal,
    /// Bases of the proximal phalanges.
    Proximal,
    /// Bases of the middle phalanges.
    Middle,
    /// Bases of the distal phalanges.
    Distal,
}

/// (appear, capped, fusion starts, fusion complete) in months, for female then male.
fn events(group: Group, sex: Sex) -> [f64; 4] {
    let (f, m) = match group {
        Group::Radius => ([10.0, 108.0, 168.0, 192.0], [14.0, 132.0, 192.0, 216.0]),
        Group::Ulna => ([66.0, 132.0, 168.0, 192.0], [84.0, 156.0, 192.0, 216.0]),
        Group::Metacarpal => ([16.0, 120.0, 150.0, 174.0], [22.0, 144.0, 174.0, 198.0]),
        Group::Proximal => ([12.0, 108.0, 150.0, 174.0], [18.0, 132.0, 174.0, 198.0]),
        Group::Middle => ([18.0, 114.0, 144.0, 168.0], [26.0, 138.0, 168.0, 192.0]),
        Group::Distal => ([15.0, 108.0, 138.0, 162.0], [22.0, 132.0, 162.0, 186.0]),
    };
    match sex {
        Sex::Female => f,
        Sex::Male => m,
    }
}

/// Sesamoid of the thumb: (appear, full size), female then male.
fn sesamoid_events(sex: Sex) -> (f64, f64) {
    match sex {
        Sex::Female => (126.0, 156.0),
        Sex::Male => (150.0, 180.0),
    }
}

/// The state of one epiphysis.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Epiphysis {
    /// Width relative to the metaphysis: 0 = not ossified, 1 = capped.
    pub width: f64,
    /// Physis (growth plate) gap relative to the open gap: 1 open, 0 closed.
    pub gap: f64,
    /// 0 before fusion, rising to 1 when fusion is complete.
    pub fusion: f64,
}

impl Epiphysis {
    /// Whether it is ossified (visible) at all.
    pub fn visible(&self) -> bool {
        self.width > 0.0
    }
}

/// The maturity of a skeleton at one bone age.
#[derive(Clone, Debug, PartialEq)]
pub struct Maturity {
    /// Bone age in months.
    pub age_months: f64,
    /// Sex.
    pub sex: Sex,
    /// Hand size relative to an adult male hand.
    pub scale: f64,
    /// Size of each carpal relative to adult (0 = not ossified), in [`CARPALS`] order.
    pub carpals: [f64; 8],
    /// Size of the thumb's sesamoid relative to adult (0 = absent).
    pub sesamoid: f64,
    /// Ossification of the diaphyses' ends: young bones are shorter, with wide
    /// cartilaginous joint spaces. 0 at birth, 1 in adults.
    pub ossification: f64,
}

fn smoothstep(x: f64) -> f64 {
    let x = x.clamp(0.0, 1.0);
    x * x * (3.0 - 2.0 * x)
}

fn ramp(age: f64, from: f64, to: f64) -> f64 {
    if to <= from {
        return if age >= to { 1.0 } else { 0.0 };
    }
    ((age - from) / (to - from)).clamp(0.0, 1.0)
}

impl Maturity {
    /// The skeleton of a child of `sex` at bone age `age_months`.
    pub fn at(age_months: f64, sex: Sex) -> Self {
        let a = age_months.max(0.0);
        let female = sex == Sex::Female;
        // Hand length relative to an adult male, from hand-length growth curves.
        let knots_m: &[(f64, f64)] = &[
            (0.0, 0.36),
            (12.0, 0.45),
            (24.0, 0.52),
            (48.0, 0.61),
            (72.0, 0.68),
            (96.0, 0.74),
            (120.0, 0.80),
            (144.0, 0.86),
            (168.0, 0.94),
            (192.0, 0.99),
            (216.0, 1.0),
        ];
        let knots_f: &[(f64, f64)] = &[
            (0.0, 0.35),
            (12.0, 0.44),
            (24.0, 0.51),
            (48.0, 0.60),
            (72.0, 0.67),
            (96.0, 0.73),
            (120.0, 0.80),
            (144.0, 0.87),
            (168.0, 0.91),
            (192.0, 0.92),
        ];
        let scale = crate::geometry::interpolate(if female { knots_f } else { knots_m }, a);
        let full = if female { CARPAL_FULL.0 } else { CARPAL_FULL.1 };
        let mut carpals = [0.0; 8];
        for (c, &(af, am)) in carpals.iter_mut().zip(&CARPAL_APPEAR) {
            let appear = if female { af } else { am };
            if a >= appear {
                // Fast growth after appearance, slowing toward adult size.
                *c = 0.25 + 0.75 * ramp(a, appear, full).powf(0.6);
            }
        }
        let (s0, s1) = sesamoid_events(sex);
        let sesamoid = if a >= s0 {
            0.4 + 0.6 * ramp(a, s0, s1)
        } else {
            0.0
        };
        let ossification = ramp(a, 0.0, if female { 168.0 } else { 192.0 });
        Self {
            age_months: a,
            sex,
            scale,
            carpals,
            sesamoid,
            ossification,
        }
    }

    /// The state of an epiphysis group.
    pub fn epiphysis(&self, group: Group) -> Epiphysis {
        let [appear, capped, f0, f1] = events(group, self.sex);
        let a = self.age_months;
        if a < appear {
            return Epiphysis {
                width: 0.0,
                gap: 1.0,
                fusion: 0.0,
            };
        }
        Epiphysis {
            width: 0.3 + 0.7 * smoothstep(ramp(a, appear, capped)) + 0.06 * ramp(a, capped, f0),
            gap: 1.0 - ramp(a, f0, f1),
            fusion: ramp(a, f0, f1),
        }
    }

    /// How many carpals are ossified.
    pub fn visible_carpals(&self) -> usize {
        self.carpals.iter().filter(|&&c| c > 0.0).count()
    }
}
