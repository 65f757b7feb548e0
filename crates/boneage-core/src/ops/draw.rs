//! Masks drawn from shapes a person gives: filled polygons and thick polylines (the
//! hand-correction tools of `boneage annotate`).

use crate::geometry::Point;
use crate::image::Mask;

/// The pixels of a `width`×`height` grid whose centres lie inside the polygon
/// `pts` (even-odd rule; the polygon closes itself). Fewer than three points give
/// an empty mask.
pub fn fill_polygon(width: usize, height: usize, pts: &[Point]) -> Mask {
    let mut m = Mask::new(width, height);
    if pts.len() < 3 {
        return m;
    }
    let mut xs = Vec::new();
    for j in 0..height {
        let y = j as f64 + 0.5;
        xs.clear();
        for (k, &a) in pts.iter().enumerate() {
            let b = pts[(k + 1) % pts.len()];
            // Half-open in y so that a vertex on the scan line counts once.
            if (a.y <= y) != (b.y <= y) {
                xs.push(a.x + (y - a.y) / (b.y - a.y) * (b.x - a.x));
            }
        }
        xs.sort_by(f64::total_cmp);
        for pair in xs.chunks_exact(2) {
            // Pixel i is inside when pair[0] <= i + 0.5 < pair[1].
            let lo = (pair[0] - 0.5).ceil().max(0.0) as usize;
            let hi = ((pair[1] - 0.5).ceil().max(0.0) as usize).min(width);
            for i in lo..hi {
                m.set(i, j, true);
            }
        }
    }
    m
}

/// The pixels whose centres lie within `width / 2` of the polyline through `pts`
/// (one point gives a disk).
pub fn stroke_polyline(w: usize, h: usize, pts: &[Point], width: f64) -> Mask {
    let mut m = Mask::new(w, h);
    let r = (width / 2.0).max(0.0);
    let segments: Vec<(Point, Point)> = match pts {
        [] => return m,
        [p] => vec![(*p, *p)],
        _ => pts.windows(2).map(|s| (s[0], s[1])).collect(),
    };
    for (a, b) in segments {
        let x0 = (a.x.min(b.x) - r - 1.0).floor().max(0.0) as usize;
        let y0 = (a.y.min(b.y) - r - 1.0).floor().max(0.0) as usize;
        let x1 = ((a.x.max(b.x) + r + 1.0).ceil().max(0.0) as usize).min(w);
        let y1 = ((a.y.max(b.y) + r + 1.0).ceil().max(0.0) as usize).min(h);
        let d = b - a;
        let len2 = d.dot(d);
        for j in y0..y1 {
            for i in x0..x1 {
                let p = Point::new(i as f64 + 0.5, j as f64 + 0.5);
                let t = if len2 > 0.0 {
                    ((p - a).dot(d) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                if p.dist(a + d * t) <= r {
                    m.set(i, j, true);
                }
            }
        }
    }
    m
}

/// Parses `x,y x,y ...` (points separated by spaces or `;`) into points.
pub fn parse_points(s: &str) -> Result<Vec<Point>, String> {
    s.split(|c: char| c == ';' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (x, y) = p
                .split_once(',')
                .ok_or_else(|| format!("{p:?} is not x,y"))?;
            let n = |t: &str| {
                t.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| format!("{t:?} in {p:?} is not a number"))
            };
            Ok(Point::new(n(x)?, n(y)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polygon_covers_the_pixels_whose_centres_are_inside() {
        // A 4×3 rectangle from (2, 1): pixels x 2..6, y 1..4.
        let r = [
            Point::new(2.0, 1.0),
            Point::new(6.0, 1.0),
            Point::new(6.0, 4.0),
            Point::new(2.0, 4.0),
        ];
        let m = fill_polygon(10, 8, &r);
        assert_eq!(m.count(), 12);
        assert!(m.get(2, 1) && m.get(5, 3) && !m.get(6, 3) && !m.get(1, 1) && !m.get(2, 4));
        // A right triangle with legs 8: half of 64 pixels, give or take the diagonal.
        let t = [
            Point::new(0.0, 0.0),
            Point::new(8.0, 0.0),
            Point::new(0.0, 8.0),
        ];
        let n = fill_polygon(8, 8, &t).count();
        assert!((28..=36).contains(&n), "{n}");
        // Outside the grid and degenerate shapes are harmless.
        assert_eq!(fill_polygon(5, 5, &r[..2]).count(), 0);
        let far = r.map(|p| p + Point::new(100.0, 100.0));
        assert_eq!(fill_polygon(5, 5, &far).count(), 0);
    }

    #[test]
    fn polygon_with_a_notch_uses_the_even_odd_rule() {
        // A U shape: the notch between the arms stays empty.
        let u = [
            Point::new(0.0, 0.0),
            Point::new(3.0, 0.0),
            Point::new(3.0, 6.0),
            Point::new(5.0, 6.0),
            Point::new(5.0, 0.0),
            Point::new(8.0, 0.0),
            Point::new(8.0, 8.0),
            Point::new(0.0, 8.0),
        ];
        let m = fill_polygon(8, 8, &u);
        assert!(m.get(1, 1) && m.get(6, 1) && !m.get(4, 1) && m.get(4, 7));
        assert_eq!(m.count(), 64 - 2 * 6);
    }

    #[test]
    fn stroke_is_a_band_of_the_given_width() {
        let line = [Point::new(2.0, 10.5), Point::new(18.0, 10.5)];
        let m = stroke_polyline(20, 20, &line, 3.0);
        // Rows 9, 10, 11 (centres within 1.5 of y = 10.5), x from 1 to 18.
        for j in 0..20 {
            let row = (0..20).filter(|&i| m.get(i, j)).count();
            assert_eq!(row > 0, (9..=11).contains(&j), "row {j}");
        }
        assert!(m.get(10, 9) && m.get(10, 11) && !m.get(10, 12));
        // A single point is a disk.
        let d = stroke_polyline(20, 20, &[Point::new(10.0, 10.0)], 6.0);
        assert!(d.get(9, 9) && !d.get(14, 10) && d.count() > 20 && d.count() < 36);
    }

    #[test]
    fn points_parse_with_spaces_or_semicolons_and_errors_name_the_bad_part() {
        let p = parse_points("1,2 3.5,4;5,6").unwrap();
        assert_eq!(
            p,
            vec![
                Point::new(1.0, 2.0),
                Point::new(3.5, 4.0),
                Point::new(5.0, 6.0)
            ]
        );
        assert!(parse_points("1,2 3").unwrap_err().contains("\"3\""));
        assert!(parse_points("1,x").unwrap_err().contains("\"x\""));
    }
}
