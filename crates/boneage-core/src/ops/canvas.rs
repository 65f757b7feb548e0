//! A smaller film lying on a larger canvas: a small child's film on a large
//! cassette with wide borders, or a film pasted onto a field of another size.

use crate::image::{GrayImage, Mask};

use super::{Connectivity, close, fill_holes, gaussian_blur, largest_component, resize_area};

/// The longer side, in pixels, of the scale the canvas is looked at.
const WORK_SIDE: usize = 512;

/// How wide the border band that shows the canvas is, as a share of the shorter side.
const BAND: f64 = 0.01;

/// A band whose values spread by at most this much (10th to 90th percentile) is a
/// flat canvas (black, grey, white).
const FLAT_SPREAD: f32 = 0.03;

/// A band whose pixels almost all (9 in 10) differ from their neighbours by at least
/// this much, on average, is a canvas of noise: a film's own background is smooth at
/// the scale of a pixel.
const ROUGH_LEAST: f32 = 0.05;

/// The most of the image the film may cover for it to count as lying on a canvas:
/// beyond that the border is the film's own margin.
const MOST_OF_IMAGE: f64 = 0.7;

/// The least of the image the film must cover (a marker is not a film).
const LEAST_OF_IMAGE: f64 = 0.04;

/// The least share of its bounding box the film (its holes filled) must cover: a
/// film is a rectangle (a film lying askew, or with a ruler along its edge, a
/// little less), where a hand on a film whose background is as dark as the canvas
/// is not. On the 1,145 development films the shares fall apart at 0.65: hands
/// alone on black 0.3 to 0.64, films on a canvas 0.67 and above.
const RECTANGLE: f64 = 0.7;

/// The margin of canvas kept around the film, as a share of its longer side.
const MARGIN: f64 = 0.02;

/// How far inside the film's found edge [`film_inside`] steps, as a share of the
/// film's longer side: past the edge's bright frame, which the U-Net can take for
/// part of the hand (the stress suite's frame is 0.8–1.3 % of the film's longer side
/// wide, found to within a pixel of the working scale). Chosen on films outside the
/// stress suite (the 369 raw films of the third to tenth blind sets shrunk to 30 % on
/// noise, 2026-12-08): read by their inside where refused otherwise, 18 more right
/// at 2 % and at 3 %, 2 more wrong at 2 % and 3 at 3 % (a thumb the film's own edge
/// cuts, cut further).
pub const INSET: f64 = 0.02;

/// The inside of the film that [`film_on_canvas`] found at `rect`: the canvas's
/// margin taken off again and [`INSET`] of the film's longer side more, so that
/// neither the canvas nor the film's own edge is in view.
pub fn film_inside(rect: [usize; 4]) -> [usize; 4] {
    let [x0, y0, x1, y1] = rect;
    let long = (x1 - x0).max(y1 - y0) as f64;
    let step = ((MARGIN + INSET) / (1.0 + 2.0 * MARGIN) * long).round() as usize;
    let (ix0, iy0) = (x0 + step, y0 + step);
    [
        ix0,
        iy0,
        x1.saturating_sub(step).max(ix0 + 1),
        y1.saturating_sub(step).max(iy0 + 1),
    ]
}

/// Where a smaller film lies on a larger canvas, `[x0, y0, x1, y1]` (pixels, end
/// exclusive, with a margin of [`MARGIN`] of the canvas around it); `None` where the
/// image's border is not a canvas or what lies on it is most of the image.
///
/// The canvas is what the image's outermost band ([`BAND`] of its shorter side)
/// shows: a flat value (black, grey or white borders) or noise. Every pixel like it
/// (within the band's spread of its median value; or, on noise, as rough from pixel
/// to pixel) is canvas; the film is the largest connected piece of the rest, the
/// pieces a little apart joined first; a marker or a label on the canvas is a
/// smaller piece and is left out.
pub fn film_on_canvas(img: &GrayImage) -> Option<[usize; 4]> {
    let (w, h) = (img.width(), img.height());
    if w < 16 || h < 16 {
        return None;
    }
    // Roughness at full resolution (|right − here| + |below − here|), then both
    // images at the working scale.
    let roughness = {
        let v = img.as_slice();
        let data = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                let right = if x + 1 < w {
                    (v[i + 1] - v[i]).abs()
                } else {
                    0.0
                };
                let below = if y + 1 < h {
                    (v[i + w] - v[i]).abs()
                } else {
                    0.0
                };
                right + below
            })
            .collect();
        GrayImage::from_vec(w, h, data).expect("same size")
    };
    let scale = (WORK_SIDE as f64 / w.max(h) as f64).min(1.0);
    let (sw, sh) = (
        ((w as f64 * scale).round() as usize).max(8),
        ((h as f64 * scale).round() as usize).max(8),
    );
    let small = resize_area(img, sw, sh);
    // Averaged over a few pixels: noise now and then repeats a value.
    let rough = gaussian_blur(&resize_area(&roughness, sw, sh), 1.0);
    // The band: every pixel within `b` of the edge.
    let b = ((BAND * sw.min(sh) as f64).round() as usize).max(1);
    let in_band = |x: usize, y: usize| x < b || y < b || x >= sw - b || y >= sh - b;
    let (mut values, mut roughs) = (Vec::new(), Vec::new());
    for y in 0..sh {
        for x in 0..sw {
            if in_band(x, y) {
                values.push(f64::from(small.get(x, y)));
                roughs.push(f64::from(rough.get(x, y)));
            }
        }
    }
    let quantile = |v: &[f64], q: f64| crate::metrics::percentile(v, q).map(|p| p as f32);
    let (lo, mid, hi) = (
        quantile(&values, 0.1)?,
        quantile(&values, 0.5)?,
        quantile(&values, 0.9)?,
    );
    let rough_low = quantile(&roughs, 0.1)?;
    let canvas: Box<dyn Fn(usize, usize) -> bool> = if hi - lo <= FLAT_SPREAD {
        let tol = (hi - lo).max(0.015);
        Box::new(move |x, y| (small.get(x, y) - mid).abs() <= tol)
    } else if rough_low >= ROUGH_LEAST {
        let least = 0.5 * rough_low;
        Box::new(move |x, y| rough.get(x, y) >= least)
    } else {
        return None;
    };
    let mut rest = Mask::new(sw, sh);
    for y in 0..sh {
        for x in 0..sw {
            rest.set(x, y, !canvas(x, y));
        }
    }
    // Pieces of film a little apart join.
    let join = (0.01 * sw.max(sh) as f64) as f32;
    let film = fill_holes(&largest_component(
        &close(&rest, join.max(1.0)),
        Connectivity::Eight,
    ));
    let [x0, y0, x1, y1] = film.bounds()?;
    let area = ((x1 - x0) * (y1 - y0)) as f64;
    let share = area / (sw * sh) as f64;
    if !(LEAST_OF_IMAGE..=MOST_OF_IMAGE).contains(&share)
        || (film.count() as f64) < RECTANGLE * area
    {
        return None;
    }
    let m = MARGIN * (x1 - x0).max(y1 - y0) as f64;
    let back = |v: f64, most: usize| ((v / scale).round().max(0.0) as usize).min(most);
    Some([
        back(x0 as f64 - m, w),
        back(y0 as f64 - m, h),
        back(x1 as f64 + m, w),
        back(y1 as f64 + m, h),
    ])
}
