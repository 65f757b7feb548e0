//! Parsers of argument values shared by several commands.

use boneage_core::geometry::Point;

/// `WxH` (e.g. `416x512`) as (width, height).
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT, e.g. 416x512"))?;
    let n = |v: &str, what: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{what} {v:?} is not a number"))
    };
    Ok((n(w, "width")?, n(h, "height")?))
}

/// `HEIGHTxWIDTH`, each at least 8 pixels (a network input).
pub fn parse_input(s: &str) -> Result<[usize; 2], String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected HEIGHTxWIDTH, e.g. 128x96"))?;
    let n = |v: &str| -> Result<usize, String> {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 8)
            .ok_or_else(|| format!("{s:?}: {v:?} is not a size of at least 8 pixels"))
    };
    Ok([n(h)?, n(w)?])
}

/// Points of a polygon or polyline given on the command line (a newtype, so that
/// clap takes each occurrence as one value).
#[derive(Clone, Debug)]
pub struct Shape(pub Vec<Point>);

/// Points of a polygon or polyline, `x,y x,y ...`.
pub fn parse_shape(s: &str) -> Result<Shape, String> {
    boneage_core::ops::draw::parse_points(s).map(Shape)
}

/// One point, `x,y`.
pub fn parse_point(s: &str) -> Result<Point, String> {
    match boneage_core::ops::draw::parse_points(s)?[..] {
        [p] => Ok(p),
        _ => Err(format!("{s:?} is not x,y")),
    }
}

/// A rectangle `x0,y0,x1,y1` with x1 > x0 and y1 > y0.
pub fn parse_rect(s: &str) -> Result<[f64; 4], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{s:?} is not x0,y0,x1,y1"))?;
    match v[..] {
        [x0, y0, x1, y1] if x1 > x0 && y1 > y0 => Ok([x0, y0, x1, y1]),
        _ => Err(format!("{s:?} is not x0,y0,x1,y1 with x1 > x0 and y1 > y0")),
    }
}

/// A repeated option as it is typed on a command line: ` --NAME a --NAME b` (for the
/// command lines that reports print).
pub fn repeated(name: &str, values: &[std::path::PathBuf]) -> String {
    values
        .iter()
        .map(|v| format!(" --{name} {}", v.display()))
        .collect()
}
