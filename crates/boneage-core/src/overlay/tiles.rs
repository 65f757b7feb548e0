//! Pictures for people to check results by eye: the registered canvas with its
//! key points, targets and regions; contact-sheet tiles of a mask or of key points
//! with the capitate magnified; and a coordinate grid to read points off a film.

use image::RgbImage;

use super::{Corner, colors, draw_mask_outline, draw_point, draw_rect, label_rect, to_rgb};
use crate::geometry::{Affine, Point};
use crate::image::{GrayImage, Mask};
use crate::keypoints::KeyPoints;
use crate::ops::{resize_area, warp_affine};
use crate::registration::{Canvas, Region};
use crate::sheet::thumbnail;

/// A registered canvas with the mask outline (when known), the key points, their
/// targets and `regions` drawn on it.
pub fn canvas_overlay(
    registered: &GrayImage,
    mask_on_canvas: Option<&Mask>,
    keypoints_on_canvas: &KeyPoints,
    canvas: &Canvas,
    regions: &[Region],
) -> image::RgbImage {
    let mut rgb = to_rgb(registered);
    let thick = (canvas.height / 400).max(1);
    if let Some(m) = mask_on_canvas {
        draw_mask_outline(&mut rgb, m, colors::MASK, thick);
    }
    for &region in regions {
        let rect = canvas.region(region);
        // Region D shares region A's top-left corner: its letter goes to its
        // top-right one instead, so that the two stay readable.
        let corner = if region == Region::D && regions.contains(&Region::A) {
            Corner::TopRight
        } else {
            Corner::TopLeft
        };
        draw_rect(&mut rgb, rect, colors::REGION, thick as i64, None);
        label_rect(
            &mut rgb,
            rect,
            colors::REGION,
            thick as i64,
            region.name(),
            corner,
        );
    }
    let radius = canvas.height as f64 / 130.0;
    for t in [canvas.fingertip_target(), canvas.capitate_target()] {
        draw_point(&mut rgb, t, radius * 1.6, colors::TARGET);
    }
    let k = keypoints_on_canvas;
    draw_point(&mut rgb, k.fingertip, radius, colors::FINGERTIP);
    draw_point(&mut rgb, k.thumb, radius, colors::THUMB);
    draw_point(&mut rgb, k.capitate, radius, colors::CAPITATE);
    rgb
}

/// A mask overlay: the radiograph fitted into `w`×`h` with the mask outline.
pub fn mask_tile(img: &GrayImage, mask: &Mask, w: usize, h: usize) -> RgbImage {
    let thumb = thumbnail(img, w, h);
    let small = Mask::threshold(
        &resize_area(&mask.to_image(), thumb.width(), thumb.height()),
        0.5,
    );
    let mut rgb = to_rgb(&thumb);
    draw_mask_outline(&mut rgb, &small, colors::MASK, 2);
    rgb
}

/// A key-point overlay, `w + h·3/5` wide: the radiograph fitted into `w`×`h` with the
/// mask outline (when known) and the three points, and beside it the capitate's
/// neighbourhood magnified (a fifth of the image height across), point at the centre.
pub fn keypoint_tile(
    img: &GrayImage,
    mask: Option<&Mask>,
    k: &KeyPoints,
    w: usize,
    h: usize,
) -> RgbImage {
    let thumb = thumbnail(img, w, h);
    let s = thumb.width() as f64 / img.width() as f64;
    let mut rgb = to_rgb(&thumb);
    if let Some(m) = mask {
        let small = Mask::threshold(
            &resize_area(&m.to_image(), thumb.width(), thumb.height()),
            0.5,
        );
        draw_mask_outline(&mut rgb, &small, [30, 120, 60], 1);
    }
    let r = (h as f64 / 90.0).max(2.0);
    draw_point(&mut rgb, k.fingertip * s, r, colors::FINGERTIP);
    draw_point(&mut rgb, k.thumb * s, r, colors::THUMB);
    draw_point(&mut rgb, k.capitate * s, r, colors::CAPITATE);
    // The capitate's neighbourhood.
    let zw = h * 3 / 5;
    let side = img.height() as f64 / 5.0;
    let scale = side / zw as f64;
    let map = Affine::similarity(
        scale,
        0.0,
        false,
        k.capitate - Point::new(side / 2.0, side / 2.0),
    );
    // Contrast stretched within the crop, so the carpal bones stand apart.
    let crop = warp_affine(img, &map, zw, zw);
    let all = Mask::full(zw, zw);
    let zoom = to_rgb(&crate::ops::percentile_window(&crop, &all, 1.0, 99.5));
    let mut out = RgbImage::from_pixel((w + zw) as u32, h as u32, image::Rgb([20, 20, 24]));
    image::imageops::replace(&mut out, &rgb, 0, 0);
    let mut zoom = zoom;
    let c = Point::new(zw as f64 / 2.0, zw as f64 / 2.0);
    for d in [-1.0, 1.0] {
        // A cross with a gap, so the bone under the point stays visible.
        for t in 4..10 {
            let t = t as f64 * d;
            for p in [c + Point::new(t, 0.0), c + Point::new(0.0, t)] {
                zoom.put_pixel(p.x as u32, p.y as u32, image::Rgb(colors::CAPITATE));
            }
        }
    }
    image::imageops::replace(&mut out, &zoom, w as i64, 0);
    out
}

/// A radiograph (or the rectangle `view` of it, magnified) with a coordinate grid in
/// original pixels, for reading points off; the mask outline in `mask_color`.
/// `stretch` spreads the grey levels of what is shown between their 30th and 99.5th
/// percentiles, so that the bones of a dark or flat film stand apart (the darkest 30 %,
/// background and soft tissue between bones, goes black).
pub fn grid_overlay(
    img: &GrayImage,
    view: Option<[f64; 4]>,
    mask: Option<(&Mask, [u8; 3])>,
    known: Option<&KeyPoints>,
    stretch: bool,
) -> RgbImage {
    let (iw, ih) = (img.width() as f64, img.height() as f64);
    let [x0, y0, x1, y1] = view.unwrap_or([0.0, 0.0, iw, ih]);
    let (x0, y0) = (
        x0.clamp(0.0, iw - 1.0).floor(),
        y0.clamp(0.0, ih - 1.0).floor(),
    );
    let (x1, y1) = (x1.clamp(x0 + 1.0, iw).ceil(), y1.clamp(y0 + 1.0, ih).ceil());
    // At most 1000 pixels high and 1400 wide; a small view is magnified up to 8×.
    let s = (1000.0 / (y1 - y0))
        .min(1400.0 / (x1 - x0))
        .min(if view.is_some() { 8.0 } else { 1.0 });
    let (w, h) = (
        ((x1 - x0) * s).round().max(1.0) as usize,
        ((y1 - y0) * s).round().max(1.0) as usize,
    );
    let to_view = |g: &GrayImage| {
        let map = Affine::similarity(1.0 / s, 0.0, false, Point::new(x0, y0));
        if s < 1.0 {
            let crop = warp_affine(
                g,
                &Affine::similarity(1.0, 0.0, false, Point::new(x0, y0)),
                (x1 - x0) as usize,
                (y1 - y0) as usize,
            );
            resize_area(&crop, w, h)
        } else {
            warp_affine(g, &map, w, h)
        }
    };
    let shown = to_view(img);
    let shown = if stretch {
        let all = Mask::full(w, h);
        crate::ops::percentile_window(&shown, &all, 30.0, 99.5)
    } else {
        shown
    };
    let mut rgb = to_rgb(&shown);
    if let Some((m, color)) = mask {
        let ms = Mask::threshold(&to_view(&m.to_image()), 0.5);
        draw_mask_outline(&mut rgb, &ms, color, 1);
    }
    // Lines at a round step at least 35 pixels of the picture apart, labelled every
    // second line.
    let step = [5usize, 10, 25, 50, 100, 200, 500]
        .into_iter()
        .find(|&k| k as f64 * s >= 35.0)
        .unwrap_or(1000);
    let first = |a: f64| (a as usize).div_ceil(step) * step;
    for (k, vertical) in (first(x0)..x1 as usize)
        .step_by(step)
        .map(|k| (k, true))
        .chain((first(y0)..y1 as usize).step_by(step).map(|k| (k, false)))
    {
        let strong = k % (2 * step) == 0;
        let c = if strong { [0, 200, 255] } else { [0, 90, 120] };
        let v = ((k as f64 - if vertical { x0 } else { y0 }) * s) as u32;
        let (len, label_at) = if vertical {
            (h, (v as i64 + 2, 2))
        } else {
            (w, (2, v as i64 + 2))
        };
        for t in 0..len as u32 {
            let (x, y) = if vertical { (v, t) } else { (t, v) };
            if (x as usize) < w && (y as usize) < h {
                rgb.put_pixel(x, y, image::Rgb(c));
            }
        }
        if strong {
            crate::font::draw_text_rgb(
                &mut rgb,
                &k.to_string(),
                label_at.0,
                label_at.1,
                1,
                [255, 255, 0],
            );
        }
    }
    if let Some(k) = known {
        let at = |p: Point| (p - Point::new(x0, y0)) * s;
        draw_point(&mut rgb, at(k.fingertip), 4.0, colors::FINGERTIP);
        draw_point(&mut rgb, at(k.thumb), 4.0, colors::THUMB);
        draw_point(&mut rgb, at(k.capitate), 4.0, colors::CAPITATE);
    }
    rgb
}
