//! Overlays for looking at results: a radiograph in gray with the mask outline,
//! key points and rectangles drawn in colour.

mod tiles;

pub use tiles::{canvas_overlay, grid_overlay, keypoint_tile, mask_tile};

use image::{Rgb, RgbImage};

use crate::font;
use crate::geometry::Point;
use crate::image::{GrayImage, Mask, unit_to_u8};
use crate::registration::Rect;

/// Colours used throughout, chosen to be told apart on gray.
pub mod colors {
    /// Mask outline.
    pub const MASK: [u8; 3] = [40, 220, 90];
    /// Middle fingertip (the paper's yellow dot).
    pub const FINGERTIP: [u8; 3] = [255, 220, 0];
    /// Thumb tip (blue).
    pub const THUMB: [u8; 3] = [60, 140, 255];
    /// Capitate centre (red).
    pub const CAPITATE: [u8; 3] = [255, 50, 50];
    /// Region rectangles.
    pub const REGION: [u8; 3] = [255, 120, 255];
    /// Registration targets (white).
    pub const TARGET: [u8; 3] = [255, 255, 255];
}

/// A gray image as RGB.
pub fn to_rgb(img: &GrayImage) -> RgbImage {
    let mut out = RgbImage::new(img.width() as u32, img.height() as u32);
    for (o, &v) in out.pixels_mut().zip(img.as_slice()) {
        let g = unit_to_u8(v);
        *o = Rgb([g, g, g]);
    }
    out
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, Rgb(c));
    }
}

/// Draws the outline of `mask` (inside pixels with an outside 4-neighbour),
/// `thickness` pixels wide.
pub fn draw_mask_outline(img: &mut RgbImage, mask: &Mask, color: [u8; 3], thickness: usize) {
    let (w, h) = (mask.width(), mask.height());
    let t = thickness.max(1) as i64;
    for y in 0..h {
        for x in 0..w {
            if !mask.get(x, y) {
                continue;
            }
            let edge = x == 0
                || y == 0
                || x + 1 == w
                || y + 1 == h
                || !mask.get(x - 1, y)
                || !mask.get(x + 1, y)
                || !mask.get(x, y - 1)
                || !mask.get(x, y + 1);
            if edge {
                for dy in 0..t {
                    for dx in 0..t {
                        put(img, x as i64 - dx, y as i64 - dy, color);
                    }
                }
            }
        }
    }
}

/// A filled disc with a dark rim at `p`.
pub fn draw_point(img: &mut RgbImage, p: Point, radius: f64, color: [u8; 3]) {
    let r = radius.max(1.0);
    let (x0, y0) = (
        (p.x - r - 1.0).floor() as i64,
        (p.y - r - 1.0).floor() as i64,
    );
    let (x1, y1) = ((p.x + r + 1.0).ceil() as i64, (p.y + r + 1.0).ceil() as i64);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let d = Point::new(x as f64 + 0.5, y as f64 + 0.5).dist(p);
            if d <= r {
                put(img, x, y, color);
            } else if d <= r + 1.0 {
                put(img, x, y, [0, 0, 0]);
            }
        }
    }
}

/// A rectangle outline with an optional label at its top-left corner.
pub fn draw_rect(
    img: &mut RgbImage,
    rect: Rect,
    color: [u8; 3],
    thickness: i64,
    label: Option<&str>,
) {
    let (x, y, w, h) = (rect.x as i64, rect.y as i64, rect.w as i64, rect.h as i64);
    for t in 0..thickness.max(1) {
        for xx in x..x + w {
            put(img, xx, y + t, color);
            put(img, xx, y + h - 1 - t, color);
        }
        for yy in y..y + h {
            put(img, x + t, yy, color);
            put(img, x + w - 1 - t, yy, color);
        }
    }
    if let Some(text) = label {
        label_rect(img, rect, color, thickness, text, Corner::TopLeft);
    }
}

/// A top corner of a rectangle, for its label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Corner {
    /// Where [`draw_rect`] puts its label.
    TopLeft,
    /// For a rectangle that shares its top-left corner with another.
    TopRight,
}

/// `text` inside `rect` (outlined `thickness` thick) at its `corner`, in the size
/// [`draw_rect`] labels with.
pub fn label_rect(
    img: &mut RgbImage,
    rect: Rect,
    color: [u8; 3],
    thickness: i64,
    text: &str,
    corner: Corner,
) {
    let scale = ((img.height() / 260) as usize).max(1);
    let inset = thickness + 3;
    let x = match corner {
        Corner::TopLeft => rect.x as i64 + inset,
        Corner::TopRight => (rect.x + rect.w) as i64 - inset - font::text_width(text, scale) as i64,
    };
    font::draw_text_rgb(img, text, x, rect.y as i64 + inset, scale, color);
}
