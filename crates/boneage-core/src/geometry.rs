//! Points and 2-D affine maps.

use serde::{Deserialize, Serialize};

/// A point or vector in the plane (pixels or millimetres; x right, y down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Horizontal coordinate.
    pub x: f64,
    /// Vertical coordinate (down).
    pub y: f64,
}

impl Point {
    /// A point.
    pub const fn new(x: f64, y: f64) -> Self {
        Self { x, y }
    }

    /// Dot product.
    pub fn dot(self, o: Point) -> f64 {
        self.x * o.x + self.y * o.y
    }

    /// Euclidean length.
    pub fn norm(self) -> f64 {
        self.dot(self).sqrt()
    }

    /// Unit vector in the same direction (self if zero).
    pub fn unit(self) -> Point {
        let n = self.norm();
        if n > 0.0 { self * (1.0 / n) } else { self }
    }

    /// Rotated by +90° in image axes (x right, y down): (x, y) -> (-y, x).
    pub fn perp(self) -> Point {
        Point::new(-self.y, self.x)
    }

    /// Rotated by `angle` radians (counter-clockwise on screen, since y points down
    /// a positive angle turns x toward -y).
    pub fn rotated(self, angle: f64) -> Point {
        let (s, c) = angle.sin_cos();
        Point::new(c * self.x + s * self.y, -s * self.x + c * self.y)
    }

    /// Distance to another point.
    pub fn dist(self, o: Point) -> f64 {
        (self - o).norm()
    }

    /// The signed angle, in radians in `[-π, π]`, by which this vector lies turned from
    /// `axis` (positive from `axis` toward its [`Point::perp`]).
    pub fn angle_from(self, axis: Point) -> f64 {
        (axis.x * self.y - axis.y * self.x).atan2(axis.dot(self))
    }
}

/// The mean of the unit vectors from `from` to each of `to`, as a unit vector: the
/// mean direction in which they lie.
pub fn mean_direction(from: Point, to: impl IntoIterator<Item = Point>) -> Point {
    to.into_iter()
        .fold(Point::new(0.0, 0.0), |a, p| a + (p - from).unit())
        .unit()
}

impl std::ops::Add for Point {
    type Output = Point;
    fn add(self, o: Point) -> Point {
        Point::new(self.x + o.x, self.y + o.y)
    }
}

impl std::ops::Sub for Point {
    type Output = Point;
    fn sub(self, o: Point) -> Point {
        Point::new(self.x - o.x, self.y - o.y)
    }
}

impl std::ops::Mul<f64> for Point {
    type Output = Point;
    fn mul(self, s: f64) -> Point {
        Point::new(self.x * s, self.y * s)
    }
}

impl std::ops::Neg for Point {
    type Output = Point;
    fn neg(self) -> Point {
        Point::new(-self.x, -self.y)
    }
}

/// A 2-D affine map `p -> [a b; c d] p + [tx; ty]`, stored as `[a, b, tx, c, d, ty]`
/// (the 2x3 row-major matrix).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Affine(pub [f64; 6]);

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);

    /// Scale by `s`, rotate by `angle` (as [`Point::rotated`]), optionally mirror x
    /// first, then translate by `t`.
    pub fn similarity(s: f64, angle: f64, mirror: bool, t: Point) -> Affine {
        let (sn, c) = angle.sin_cos();
        let m = if mirror { -1.0 } else { 1.0 };
        Affine([s * c * m, s * sn, t.x, -s * sn * m, s * c, t.y])
    }

    /// Applies the map to a point.
    #[inline]
    pub fn apply(&self, p: Point) -> Point {
        let [a, b, tx, c, d, ty] = self.0;
        Point::new(a * p.x + b * p.y + tx, c * p.x + d * p.y + ty)
    }

    /// The map `self ∘ other` (apply `other` first).
    pub fn compose(&self, other: &Affine) -> Affine {
        let [a, b, tx, c, d, ty] = self.0;
        let [e, f, ux, g, h, uy] = other.0;
        Affine([
            a * e + b * g,
            a * f + b * h,
            a * ux + b * uy + tx,
            c * e + d * g,
            c * f + d * h,
            c * ux + d * uy + ty,
        ])
    }

    /// Determinant of the linear part.
    pub fn det(&self) -> f64 {
        self.0[0] * self.0[4] - self.0[1] * self.0[3]
    }

    /// The inverse map, or `None` when the linear part is singular.
    pub fn inverse(&self) -> Option<Affine> {
        let det = self.det();
        if det.abs() < 1e-12 || !det.is_finite() {
            return None;
        }
        let [a, b, tx, c, d, ty] = self.0;
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Affine([
            ia,
            ib,
            -(ia * tx + ib * ty),
            ic,
            id,
            -(ic * tx + id * ty),
        ]))
    }
}

/// Piecewise-linear interpolation over (x, y) knots sorted by x, flat outside them.
pub fn interpolate(knots: &[(f64, f64)], x: f64) -> f64 {
    if x <= knots[0].0 {
        return knots[0].1;
    }
    for w in knots.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        if x <= x1 {
            return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
        }
    }
    knots[knots.len() - 1].1
}

/// The axis-aligned bounding box (min corner, max corner) of some points.
pub fn bounds(points: &[Point]) -> (Point, Point) {
    points.iter().fold(
        (
            Point::new(f64::INFINITY, f64::INFINITY),
            Point::new(f64::NEG_INFINITY, f64::NEG_INFINITY),
        ),
        |(lo, hi), p| {
            (
                Point::new(lo.x.min(p.x), lo.y.min(p.y)),
                Point::new(hi.x.max(p.x), hi.y.max(p.y)),
            )
        },
    )
}

/// The convex hull of some points (Andrew's monotone chain), vertices in order.
pub fn convex_hull(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    let cross =
        |o: Point, a: Point, b: Point| (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
    let mut hull: Vec<Point> = Vec::with_capacity(points.len() * 2);
    for pass in 0..2 {
        let start = hull.len();
        let ordered: Box<dyn Iterator<Item = &Point>> = if pass == 0 {
            Box::new(points.iter())
        } else {
            Box::new(points.iter().rev())
        };
        for &p in ordered {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    hull
}

/// The area of a simple polygon (shoelace formula).
pub fn polygon_area(vertices: &[Point]) -> f64 {
    let n = vertices.len();
    (0..n)
        .map(|i| {
            let (a, b) = (vertices[i], vertices[(i + 1) % n]);
            a.x * b.y - b.x * a.y
        })
        .sum::<f64>()
        .abs()
        / 2.0
}
