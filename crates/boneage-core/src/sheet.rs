//! Contact sheets: numbered, labelled thumbnails on a grid, for looking at many
//! radiographs at once (phantom galleries, review rounds).

use std::path::Path;

use image::{Rgb, RgbImage};

use crate::error::Result;
use crate::font;
use crate::image::GrayImage;
use crate::ops::resize_area;

/// One tile: an image and its caption lines.
#[derive(Clone, Debug)]
pub struct Tile {
    /// The picture (any size; it is fitted into the tile keeping its aspect ratio).
    pub image: GrayImage,
    /// Caption lines drawn under the picture.
    pub caption: Vec<String>,
}

/// Layout of a contact sheet.
#[derive(Clone, Debug)]
pub struct SheetLayout {
    /// Tiles per row.
    pub columns: usize,
    /// Picture box width in pixels.
    pub tile_width: usize,
    /// Picture box height in pixels.
    pub tile_height: usize,
    /// Optional title drawn across the top.
    pub title: Option<String>,
}

impl Default for SheetLayout {
    fn default() -> Self {
        Self {
            columns: 8,
            tile_width: 160,
            tile_height: 200,
            title: None,
        }
    }
}

const PAD: usize = 4;
const TEXT_SCALE: usize = 1;
const LINE_H: usize = (font::GLYPH_H + 3) * TEXT_SCALE;

/// Fits an image into a `w`x`h` box, keeping the aspect ratio.
pub fn thumbnail(img: &GrayImage, w: usize, h: usize) -> GrayImage {
    let s = (w as f64 / img.width() as f64).min(h as f64 / img.height() as f64);
    let tw = ((img.width() as f64 * s).round() as usize).clamp(1, w);
    let th = ((img.height() as f64 * s).round() as usize).clamp(1, h);
    resize_area(img, tw, th)
}

/// Renders tiles on a grid with their captions.
pub fn render(tiles: &[Tile], layout: &SheetLayout) -> RgbImage {
    let rgb: Vec<(Vec<String>, RgbImage)> = tiles
        .iter()
        .map(|t| {
            let thumb = thumbnail(&t.image, layout.tile_width, layout.tile_height);
            (t.caption.clone(), crate::overlay::to_rgb(&thumb))
        })
        .collect();
    let borrowed: Vec<(&[String], &RgbImage)> =
        rgb.iter().map(|(c, t)| (c.as_slice(), t)).collect();
    layout_grid(&borrowed, layout)
}

/// Renders already-coloured tiles (e.g. overlays) with one caption line each.
pub fn render_rgb(tiles: &[(String, RgbImage)], layout: &SheetLayout) -> RgbImage {
    let borrowed: Vec<(&[String], &RgbImage)> = tiles
        .iter()
        .map(|(c, t)| (std::slice::from_ref(c), t))
        .collect();
    layout_grid(&borrowed, layout)
}

/// Places coloured tiles (centred in their boxes, cropped to them) on a grid with
/// their caption lines underneath.
fn layout_grid(tiles: &[(&[String], &RgbImage)], layout: &SheetLayout) -> RgbImage {
    let cols = layout.columns.max(1);
    let rows = tiles.len().div_ceil(cols).max(1);
    let caption_lines = tiles.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
    let cell_w = layout.tile_width + PAD;
    let cell_h = layout.tile_height + PAD + caption_lines * LINE_H;
    let title_h = if layout.title.is_some() {
        2 * LINE_H + PAD
    } else {
        0
    };
    let (w, h) = (cols * cell_w + PAD, rows * cell_h + PAD + title_h);
    let mut sheet = RgbImage::from_pixel(w as u32, h as u32, Rgb([24, 24, 28]));
    if let Some(title) = &layout.title {
        font::draw_text_rgb(
            &mut sheet,
            title,
            PAD as i64,
            PAD as i64,
            2,
            [230, 230, 230],
        );
    }
    for (i, (caption, tile)) in tiles.iter().enumerate() {
        let (cx, cy) = (
            PAD + (i % cols) * cell_w,
            title_h + PAD + (i / cols) * cell_h,
        );
        let (tw, th) = (
            tile.width().min(layout.tile_width as u32),
            tile.height().min(layout.tile_height as u32),
        );
        let ox = cx as u32 + (layout.tile_width as u32 - tw) / 2;
        let oy = cy as u32 + (layout.tile_height as u32 - th) / 2;
        for y in 0..th {
            for x in 0..tw {
                sheet.put_pixel(ox + x, oy + y, *tile.get_pixel(x, y));
            }
        }
        for (l, line) in caption.iter().enumerate() {
            let ty = cy + layout.tile_height + 2 + l * LINE_H;
            font::draw_text_rgb(
                &mut sheet,
                line,
                cx as i64,
                ty as i64,
                TEXT_SCALE,
                [240, 200, 80],
            );
        }
    }
    sheet
}

/// Renders coloured tiles and writes the sheet atomically.
pub fn save_rgb(tiles: &[(String, RgbImage)], layout: &SheetLayout, path: &Path) -> Result<()> {
    crate::image::save_rgb8_png(&render_rgb(tiles, layout), path)
}

/// Renders and writes a contact sheet PNG atomically.
pub fn save(tiles: &[Tile], layout: &SheetLayout, path: &Path) -> Result<()> {
    crate::image::save_rgb8_png(&render(tiles, layout), path)
}
