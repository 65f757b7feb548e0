//! The geometry of a left hand in millimetres, postero-anterior view, at one maturity.
//!
//! Canonical frame: origin at the capitate centre, x toward the thumb (image right for
//! a left hand), y toward the forearm (image down). Sizes are an adult male's, then
//! scaled by [`Maturity::scale`]. Each bone is a primitive that knows its X-ray path
//! length; the soft tissue is a smooth union of capsules and a palm polygon.

use rand::Rng;

use super::maturity::{CARPALS, Epiphysis, Group, Maturity};
use crate::geometry::{Point, bounds, convex_hull};

/// Cortical and medullary densities (relative attenuation per mm).
const CORTEX: f64 = 1.0;
const MEDULLA: f64 = 0.22;

/// A long bone: a shaft with a waist and flared ends, and optionally an epiphysis.
#[derive(Clone, Debug)]
pub struct LongBone {
    /// Axis origin (the proximal joint of the segment).
    pub origin: Point,
    /// Unit axis direction (distal, or proximal for the forearm bones).
    pub dir: Point,
    /// Ossified shaft extent along the axis, `s0 < s1`.
    pub s0: f64,
    /// End of the shaft.
    pub s1: f64,
    /// Half width at mid-shaft.
    pub hw_mid: f64,
    /// Half width at the `s0` end.
    pub hw0: f64,
    /// Half width at the `s1` end.
    pub hw1: f64,
    /// Cortex thickness as a fraction of the half width at mid-shaft.
    pub cortex: f64,
    /// The epiphysis, if ossified.
    pub epiphysis: Option<EpiphysisShape>,
    /// Physeal scar after fusion: position along the axis and strength.
    pub scar: Option<(f64, f64)>,
}

/// An epiphysis: an ellipse on the bone's axis.
#[derive(Clone, Copy, Debug)]
pub struct EpiphysisShape {
    /// Centre along the axis.
    pub center: f64,
    /// Half width (across the axis).
    pub a: f64,
    /// Half thickness (along the axis).
    pub b: f64,
    /// 1 while separate, fading to 0 as it fuses into the shaft.
    pub weight: f64,
}

/// An elliptical bone (carpal, sesamoid).
#[derive(Clone, Debug)]
pub struct RoundBone {
    /// Centre.
    pub center: Point,
    /// Semi-axis along `axis`.
    pub a: f64,
    /// Semi-axis across `axis`.
    pub b: f64,
    /// Unit direction of the `a` semi-axis.
    pub axis: Point,
}

/// Any bone.
#[derive(Clone, Debug)]
pub enum Bone {
    /// Shaft plus epiphysis.
    Long(LongBone),
    /// Carpal or sesamoid.
    Round(RoundBone),
}

/// A soft-tissue primitive.
#[derive(Clone, Debug)]
pub enum Tissue {
    /// Tapered capsule from `a` (radius `ra`) to `b` (radius `rb`).
    Capsule {
        /// Start.
        a: Point,
        /// End.
        b: Point,
        /// Radius at `a`.
        ra: f64,
        /// Radius at `b`.
        rb: f64,
    },
    /// Convex polygon (counter-clockwise or clockwise), rounded by `r`.
    Polygon {
        /// Vertices in order.
        points: Vec<Point>,
        /// Rounding radius.
        r: f64,
    },
}

/// A whole hand: bones, soft tissue and landmarks, in canonical millimetres.
#[derive(Clone, Debug)]
pub struct Hand {
    /// All bones.
    pub bones: Vec<Bone>,
    /// Soft-tissue primitives, combined by smooth union.
    pub tissue: Vec<Tissue>,
    /// Smooth-union radius.
    pub blend: f64,
    /// Depth scale of the soft tissue profile.
    pub tissue_depth: f64,
    /// Key point: middle fingertip.
    pub fingertip: Point,
    /// Key point: thumb tip.
    pub thumb_tip: Point,
    /// Key point: capitate centre.
    pub capitate: Point,
    /// Points that must stay inside the image (fingertips, thumb, wrist).
    pub extent: Vec<Point>,
    /// Number of ossified carpals.
    pub visible_carpals: usize,
    /// Metacarpal (base, head) per ray: thumb, index, middle, ring, little.
    pub metacarpals: [(Point, Point); 5],
    /// Where each carpal is (or will ossify), in [`CARPALS`] order.
    pub carpals: [Point; 8],
}

/// Ray geometry: metacarpal base, angle from the hand axis (degrees, + toward the
/// thumb), segment lengths and half widths (mid, end), soft-tissue radius, and the
/// extra angle of the finger relative to its metacarpal.
struct RaySpec {
    base: (f64, f64),
    angle: f64,
    segments: &'static [(f64, f64, f64)],
    tissue_r: f64,
    finger_angle: f64,
}

/// Thumb, index, middle, ring, little. Segments: metacarpal, then phalanges.
const RAYS: [RaySpec; 5] = [
    RaySpec {
        base: (19.0, 2.0),
        angle: 30.0,
        segments: &[(43.0, 4.4, 6.0), (31.0, 4.0, 5.6), (23.0, 3.3, 4.4)],
        tissue_r: 10.5,
        finger_angle: 6.0,
    },
    RaySpec {
        base: (9.0, -12.0),
        angle: 7.0,
        segments: &[
            (63.0, 4.0, 5.6),
            (40.0, 3.8, 5.2),
            (24.0, 3.2, 4.3),
            (17.0, 2.8, 3.6),
        ],
        tissue_r: 9.0,
        finger_angle: 5.0,
    },
    RaySpec {
        base: (0.0, -13.0),
        angle: 0.0,
        segments: &[
            (61.0, 4.2, 5.8),
            (44.0, 4.0, 5.5),
            (28.0, 3.4, 4.6),
            (19.0, 2.9, 3.8),
        ],
        tissue_r: 9.5,
        finger_angle: 0.0,
    },
    RaySpec {
        base: (-10.0, -10.0),
        angle: -6.0,
        segments: &[
            (55.0, 3.8, 5.2),
            (41.0, 3.7, 5.1),
            (27.0, 3.1, 4.3),
            (18.0, 2.7, 3.5),
        ],
        tissue_r: 9.0,
        finger_angle: -4.0,
    },
    RaySpec {
        base: (-19.0, -6.0),
        angle: -13.0,
        segments: &[
            (51.0, 3.6, 4.8),
            (33.0, 3.3, 4.6),
            (19.0, 2.8, 3.8),
            (16.0, 2.5, 3.2),
        ],
        tissue_r: 8.0,
        finger_angle: -9.0,
    },
];

/// Carpal centres, semi-axes (a along `angle`, b across) and orientation in degrees.
const CARPAL_SHAPES: [((f64, f64), f64, f64, f64); 8] = [
    ((0.0, 2.0), 11.0, 7.0, 90.0),   // capitate, long axis along the hand
    ((-12.0, 1.0), 9.0, 6.5, 75.0),  // hamate
    ((-17.5, 11.0), 5.5, 5.0, 0.0),  // triquetrum
    ((-5.5, 16.5), 6.5, 5.5, 0.0),   // lunate
    ((15.0, -1.0), 7.0, 6.0, 110.0), // trapezium
    ((8.5, -5.5), 5.5, 4.8, 90.0),   // trapezoid
    ((9.0, 14.5), 9.0, 5.0, 150.0),  // scaphoid
    ((-18.5, 6.0), 4.0, 3.8, 0.0),   // pisiform
];

/// Open physis gap in mm (adult-scale).
const PHYSIS: f64 = 1.1;
/// Joint space between bones in mm (adult-scale).
const JOINT: f64 = 1.6;

/// Per-image anatomical variation.
#[derive(Clone, Debug)]
pub struct Variation {
    /// Multiplies finger spread angles (1 = the canonical pose).
    pub spread: f64,
    /// Multiplies widths (bones and soft tissue).
    pub width: f64,
    /// Multiplies each ray's lengths.
    pub ray_length: [f64; 5],
    /// Bend of each segment (radians), per ray and segment.
    pub bends: [[f64; 4]; 5],
    /// Soft tissue thickness factor.
    pub tissue: f64,
}

impl Variation {
    /// No variation: the canonical hand.
    pub fn none() -> Self {
        Self {
            spread: 1.0,
            width: 1.0,
            ray_length: [1.0; 5],
            bends: [[0.0; 4]; 5],
            tissue: 1.0,
        }
    }

    /// A random, plausible variation.
    pub fn sample(rng: &mut impl Rng) -> Self {
        let mut v = Self::none();
        v.spread = rng.random_range(0.5..1.7);
        v.width = rng.random_range(0.92..1.1);
        let global = rng.random_range(0.96..1.04);
        for r in v.ray_length.iter_mut() {
            *r = global * rng.random_range(0.97..1.03);
        }
        for ray in v.bends.iter_mut() {
            for b in ray.iter_mut() {
                *b = rng.random_range(-0.05..0.05);
            }
        }
        v.tissue = rng.random_range(0.85..1.25);
        v
    }
}

/// The physeal scar: a faint dense line where the growth plate was, strongest
/// while fusing and fading after.
fn scar(epi: Epiphysis, at: f64) -> Option<(f64, f64)> {
    (epi.fusion > 0.0).then(|| (at, 0.35 * epi.fusion * (1.0 - epi.fusion).max(0.12)))
}

fn epiphysis_group(ray: usize, segment: usize) -> Group {
    match (ray, segment) {
        (_, 0) => Group::Metacarpal,
        (0, 1) => Group::Proximal,
        (0, _) => Group::Distal,
        (_, 1) => Group::Proximal,
        (_, 2) => Group::Middle,
        _ => Group::Distal,
    }
}

/// The ends of a long bone: which carries the epiphysis, and how it is shaped.
#[derive(Clone, Copy)]
struct Ends {
    /// The epiphysis sits at the proximal (`s = 0`) end.
    at_start: bool,
    /// Half width of the shaft at the epiphysis end.
    hw_end: f64,
    /// Half width at the other end.
    hw_other: f64,
    /// Epiphysis half thickness along the axis, relative to `hw_end`
    /// (0.5 for a round metacarpal head, 0.3 for a flat phalangeal base).
    thickness: f64,
}

/// Builds a bone of length `len` from `origin` along `dir` with the epiphysis state
/// `epi`. `cart` is the unossified cartilage at the ends (wide joints in infants).
/// While the physis fuses, the epiphysis fades into a shaft that widens and
/// lengthens to cover it, leaving a faint scar.
#[allow(clippy::too_many_arguments)]
fn long_bone(
    origin: Point,
    dir: Point,
    len: f64,
    hw_mid: f64,
    ends: Ends,
    epi: Epiphysis,
    cart: f64,
    k: f64,
) -> LongBone {
    let Ends {
        at_start,
        hw_end,
        hw_other,
        thickness,
    } = ends;
    let b_full = thickness * hw_end;
    let gap_open = PHYSIS * k;
    let reserve = 2.0 * b_full + gap_open;
    let (mut s0, mut s1) = if at_start {
        (reserve + cart, len - 0.5 * cart)
    } else {
        (0.5 * cart, len - reserve - cart)
    };
    let mut hw_shaft_end = hw_end * if at_start { 0.92 } else { 1.0 };
    let shaft_end = if at_start { s0 } else { s1 };
    let sign = if at_start { -1.0 } else { 1.0 };
    let f = epi.fusion;
    let mut epiphysis = None;
    if epi.visible() {
        let a = hw_end * epi.width.min(1.06) * if thickness >= 0.5 { 0.95 } else { 1.0 };
        let b = b_full * (0.45 + 0.55 * epi.width.min(1.0));
        let offset = gap_open * epi.gap + 0.5 * cart + b * (1.0 - 0.7 * f);
        epiphysis = Some(EpiphysisShape {
            center: shaft_end + sign * offset,
            a,
            b,
            weight: 1.0 - f,
        });
        hw_shaft_end += f * (a - hw_shaft_end);
        let grow = f * (offset + b - 0.45 * hw_shaft_end).max(0.0);
        if at_start {
            s0 -= grow;
        } else {
            s1 += grow;
        }
    }
    let (hw0, hw1) = if at_start {
        (hw_shaft_end, hw_other)
    } else {
        (hw_other, hw_shaft_end)
    };
    LongBone {
        origin,
        dir,
        s0,
        s1,
        hw_mid,
        hw0,
        hw1,
        cortex: 0.26,
        epiphysis,
        scar: scar(epi, shaft_end),
    }
}

/// Builds the hand of one maturity with one variation.
pub fn build(m: &Maturity, v: &Variation) -> Hand {
    let k = m.scale;
    let wk = k * v.width * 1.08;
    let p = |x: f64, y: f64| Point::new(x * wk, y * k);
    let mut bones = Vec::new();
    let mut tissue = Vec::new();
    let mut extent = Vec::new();
    let mut fingertip = Point::default();
    let mut thumb_tip = Point::default();
    let mut mc_heads = [Point::default(); 5];
    let mut mc_bases = [Point::default(); 5];
    let mut thumb_mcp = (Point::default(), Point::default());

    for (r, spec) in RAYS.iter().enumerate() {
        // Real hands on the film are spread wider than the anatomical rest pose.
        let angle = (1.25 * spec.angle * (0.8 + 0.2 * v.spread)).to_radians();
        let base = p(1.15 * spec.base.0, spec.base.1);
        let up = Point::new(0.0, -1.0);
        let mut dir = up.rotated(-angle);
        // Rotated so that + angles lean toward the thumb (+x): rotate clockwise on screen.
        let mut at = base;
        let tr = 1.1 * spec.tissue_r * wk * v.tissue.sqrt();
        let n = spec.segments.len();
        for (s, &(len, hw_mid, hw_end)) in spec.segments.iter().enumerate() {
            if s == 1 {
                let extra = (1.3 * spec.finger_angle * v.spread).to_radians();
                dir = dir.rotated(-extra);
            }
            dir = dir.rotated(v.bends[r][s]);
            let len = len * k * v.ray_length[r];
            let group = epiphysis_group(r, s);
            let is_mc = s == 0;
            // Metacarpals 2–5 have their epiphysis at the head; the thumb's at the base.
            let at_start = !(is_mc && r != 0);
            let head = is_mc && r != 0;
            let ends = Ends {
                at_start,
                hw_end: hw_end * wk,
                hw_other: hw_end * wk * if at_start { 0.85 } else { 0.88 },
                thickness: if head { 0.5 } else { 0.3 },
            };
            let cart = 0.07 * len * (1.0 - m.ossification);
            let bone = long_bone(at, dir, len, hw_mid * wk, ends, m.epiphysis(group), cart, k);
            let end = at + dir * len;
            if is_mc {
                mc_bases[r] = at;
                mc_heads[r] = end;
                if r == 0 {
                    thumb_mcp = (end, dir);
                }
                tissue.push(Tissue::Capsule {
                    a: at,
                    b: end,
                    ra: tr * 1.3,
                    rb: tr * 1.25,
                });
            } else {
                let last = s == n - 1;
                let t0 = 1.0 - 0.09 * (s as f64 - 1.0);
                let t1 = if last { 0.72 } else { t0 - 0.09 };
                let tip_ext = 4.0 * k;
                let b_end = if last {
                    end + dir * (tip_ext - tr * t1)
                } else {
                    end
                };
                tissue.push(Tissue::Capsule {
                    a: at,
                    b: b_end,
                    ra: tr * t0,
                    rb: tr * t1,
                });
                if last {
                    let tip = end + dir * (1.5 * k);
                    if r == 2 {
                        fingertip = tip;
                    }
                    if r == 0 {
                        thumb_tip = tip;
                    }
                    extent.push(end + dir * tip_ext);
                }
            }
            bones.push(Bone::Long(bone));
            at = end + dir * (JOINT * k);
        }
    }

    // Palm slab and the web between thumb and index.
    let palm_pts = vec![
        mc_heads[1] + Point::new(8.0, 3.0) * k,
        mc_heads[4] + Point::new(-11.0, 3.0) * k,
        mc_bases[4] + Point::new(-16.0, 4.0) * k,
        p(-30.0, 26.0),
        p(30.0, 26.0),
        p(28.0, 4.0),
        mc_bases[1] + (mc_heads[1] - mc_bases[1]) * 0.5 + Point::new(5.0, 0.0) * k,
    ];
    tissue.push(Tissue::Polygon {
        points: convex_hull(palm_pts),
        r: 4.0 * k,
    });
    tissue.push(Tissue::Capsule {
        a: mc_bases[0] + (mc_heads[0] - mc_bases[0]) * 0.3,
        b: mc_bases[1] + (mc_heads[1] - mc_bases[1]) * 0.45,
        ra: 9.0 * wk,
        rb: 7.0 * wk,
    });
    // Wrist and forearm, long enough to leave every image.
    tissue.push(Tissue::Capsule {
        a: p(0.0, 18.0),
        b: Point::new(0.0, 700.0 * k),
        ra: 27.0 * wk * v.tissue.sqrt(),
        rb: 33.0 * wk * v.tissue.sqrt(),
    });
    extent.push(p(-27.0, 40.0));
    extent.push(p(27.0, 40.0));

    // Forearm bones: the axis points proximally, the epiphysis sits at the start.
    for (group, x0, y0, x1, hw_mid, hw_end) in [
        (Group::Radius, 6.0, 27.0, 4.0, 7.5, 12.0),
        (Group::Ulna, -16.0, 30.0, -13.0, 5.0, 6.5),
    ] {
        let origin = p(x0, y0);
        let dir = (p(x1, 400.0) - origin).unit();
        let ends = Ends {
            at_start: true,
            hw_end: hw_end * wk,
            hw_other: hw_mid * wk,
            thickness: 0.3,
        };
        let cart = 4.0 * k * (1.0 - m.ossification);
        let mut bone = long_bone(
            origin,
            dir,
            700.0 * k,
            hw_mid * wk,
            ends,
            m.epiphysis(group),
            cart,
            k,
        );
        bone.cortex = 0.22;
        bones.push(Bone::Long(bone));
    }

    for (i, &size) in m.carpals.iter().enumerate() {
        if size <= 0.0 {
            continue;
        }
        let ((cx, cy), a, b, ang) = CARPAL_SHAPES[i];
        // Young carpals are rounder: the long axis matures last.
        let round = 0.6 + 0.4 * size;
        let (a, b) = (a * 1.12, b * 1.12);
        let mean = 0.5 * (a + b);
        bones.push(Bone::Round(RoundBone {
            center: p(cx * 1.05, cy * 1.05),
            a: (mean + (a - mean) * round) * size * wk,
            b: (mean + (b - mean) * round) * size * wk,
            axis: Point::new(1.0, 0.0).rotated(ang.to_radians()),
        }));
    }
    if m.sesamoid > 0.0 {
        let (head, dir) = thumb_mcp;
        // On the ulnar (palm) side of the thumb's metacarpal head.
        let c = head - dir * (2.0 * k) + dir.perp() * (-4.5 * wk);
        bones.push(Bone::Round(RoundBone {
            center: c,
            a: 2.6 * m.sesamoid * wk,
            b: 2.0 * m.sesamoid * wk,
            axis: dir,
        }));
    }
    debug_assert_eq!(CARPALS.len(), m.carpals.len());

    Hand {
        bones,
        tissue,
        blend: 6.0 * k,
        tissue_depth: 11.0 * k * v.tissue,
        fingertip,
        thumb_tip,
        capitate: p(CARPAL_SHAPES[0].0.0, CARPAL_SHAPES[0].0.1),
        extent,
        visible_carpals: m.visible_carpals(),
        metacarpals: std::array::from_fn(|r| (mc_bases[r], mc_heads[r])),
        carpals: std::array::from_fn(|i| {
            let ((cx, cy), ..) = CARPAL_SHAPES[i];
            p(cx * 1.05, cy * 1.05)
        }),
    }
}

impl Tissue {
    /// Signed distance (negative inside).
    pub fn sdf(&self, q: Point) -> f64 {
        match self {
            Tissue::Capsule { a, b, ra, rb } => {
                let ab = *b - *a;
                let l2 = ab.dot(ab);
                let t = if l2 > 0.0 {
                    ((q - *a).dot(ab) / l2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let closest = *a + ab * t;
                q.dist(closest) - (ra + (rb - ra) * t)
            }
            Tissue::Polygon { points, r } => polygon_sdf(points, q) - r,
        }
    }
}

fn polygon_sdf(points: &[Point], q: Point) -> f64 {
    let n = points.len();
    let mut d2 = f64::INFINITY;
    let mut inside = false;
    for i in 0..n {
        let (a, b) = (points[i], points[(i + 1) % n]);
        let ab = b - a;
        let t = ((q - a).dot(ab) / ab.dot(ab).max(1e-12)).clamp(0.0, 1.0);
        d2 = d2.min((q - (a + ab * t)).dot(q - (a + ab * t)));
        if (a.y > q.y) != (b.y > q.y) && q.x < a.x + (q.y - a.y) / (b.y - a.y) * ab.x {
            inside = !inside;
        }
    }
    if inside { -d2.sqrt() } else { d2.sqrt() }
}

/// Polynomial smooth minimum with blend radius `k`.
pub fn smooth_min(a: f64, b: f64, k: f64) -> f64 {
    if k <= 0.0 {
        return a.min(b);
    }
    let h = (k - (a - b).abs()).max(0.0) / k;
    a.min(b) - h * h * k * 0.25
}

impl Hand {
    /// Signed distance to the soft-tissue outline (negative inside).
    pub fn tissue_sdf(&self, q: Point) -> f64 {
        self.tissue.iter().fold(f64::INFINITY, |acc, t| {
            smooth_min(acc, t.sdf(q), self.blend)
        })
    }
}

impl Bone {
    /// Canonical bounding box (min, max) of what this bone can draw.
    pub fn bounds(&self) -> (Point, Point) {
        match self {
            Bone::Long(b) => {
                let w = b.hw0.max(b.hw1).max(b.hw_mid) * 1.3;
                let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
                if let Some(e) = b.epiphysis {
                    lo = lo.min(e.center - e.b);
                    hi = hi.max(e.center + e.b);
                }
                lo = lo.min(b.s0 - w);
                hi = hi.max(b.s1 + w);
                let pts = [
                    b.origin + b.dir * lo + b.dir.perp() * w,
                    b.origin + b.dir * lo - b.dir.perp() * w,
                    b.origin + b.dir * hi + b.dir.perp() * w,
                    b.origin + b.dir * hi - b.dir.perp() * w,
                ];
                bounds(&pts)
            }
            Bone::Round(r) => {
                let e = r.a.max(r.b);
                (r.center - Point::new(e, e), r.center + Point::new(e, e))
            }
        }
    }

    /// X-ray path length through bone at canonical point `q`, weighted by density
    /// (cortex denser than medulla); `texture` (about `[0.6, 1.4]`, evaluated only
    /// inside bone) modulates the trabecular bone.
    pub fn attenuation(&self, q: Point, texture: impl Fn() -> f64 + Copy) -> f64 {
        match self {
            Bone::Long(b) => b.attenuation(q, texture),
            Bone::Round(r) => {
                let d = q - r.center;
                let (u, w) = (d.dot(r.axis) / r.a, d.dot(r.axis.perp()) / r.b);
                let rho = (u * u + w * w).sqrt();
                shell(rho, r.a.min(r.b) * 0.6, 0.25, 0.35, texture)
            }
        }
    }
}

/// Path length through a shell of outer radius 1 (in units of `depth`) at normalised
/// radius `rho`, with a cortex of relative thickness `cortex`.
#[inline]
fn shell(rho: f64, depth: f64, cortex: f64, medulla: f64, texture: impl Fn() -> f64) -> f64 {
    if rho >= 1.0 {
        return 0.0;
    }
    let outer = 2.0 * depth * (1.0 - rho * rho).sqrt();
    let ri = 1.0 - cortex;
    let inner = if rho < ri {
        2.0 * depth * ri * (1.0 - (rho / ri) * (rho / ri)).sqrt()
    } else {
        0.0
    };
    let trabecular = if inner > 0.0 {
        medulla * inner * texture()
    } else {
        0.0
    };
    CORTEX * (outer - inner) + trabecular
}

impl LongBone {
    /// Length over which an end flares out to its metaphysis.
    fn flare(&self, end_hw: f64) -> f64 {
        (0.3 * (self.s1 - self.s0)).min(3.0 * end_hw).max(1e-9)
    }

    fn half_width(&self, s: f64) -> f64 {
        let f0 = (1.0 - (s - self.s0) / self.flare(self.hw0))
            .clamp(0.0, 1.0)
            .powi(2);
        let f1 = (1.0 - (self.s1 - s) / self.flare(self.hw1))
            .clamp(0.0, 1.0)
            .powi(2);
        self.hw_mid + (self.hw0 - self.hw_mid) * f0 + (self.hw1 - self.hw_mid) * f1
    }

    fn attenuation(&self, q: Point, texture: impl Fn() -> f64 + Copy) -> f64 {
        let d = q - self.origin;
        let s = d.dot(self.dir);
        let u = d.dot(self.dir.perp());
        let mut v = 0.0;
        let cap0 = 0.45 * self.hw0;
        let cap1 = 0.45 * self.hw1;
        if s > self.s0 - cap0 && s < self.s1 + cap1 {
            let (rho, w, endness) = if s < self.s0 {
                (((self.s0 - s) / cap0).hypot(u / self.hw0), self.hw0, 1.0)
            } else if s > self.s1 {
                (((s - self.s1) / cap1).hypot(u / self.hw1), self.hw1, 1.0)
            } else {
                let e0 = (1.0 - (s - self.s0) / self.flare(self.hw0)).clamp(0.0, 1.0);
                let e1 = (1.0 - (self.s1 - s) / self.flare(self.hw1)).clamp(0.0, 1.0);
                (u.abs() / self.half_width(s), self.half_width(s), e0.max(e1))
            };
            // The cortex thins toward the metaphyses, where cancellous bone fills in.
            let cortex = self.cortex + (0.14 - self.cortex) * endness;
            let medulla = MEDULLA + (0.4 - MEDULLA) * endness;
            v = shell(rho, w * 0.85, cortex, medulla, texture);
        }
        if let Some(e) = self.epiphysis {
            let rho = ((s - e.center) / e.b).hypot(u / e.a);
            v = v.max(e.weight * shell(rho, e.a.min(2.2 * e.b) * 0.8, 0.2, 0.45, texture));
        }
        if let Some((sc, strength)) = self.scar {
            let dz = (s - sc).abs() / (0.25 * self.hw1.max(self.hw0));
            if dz < 1.0 && v > 0.0 {
                v *= 1.0 + strength * (1.0 - dz);
            }
        }
        v
    }
}
