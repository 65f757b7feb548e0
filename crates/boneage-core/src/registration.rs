//! Registration (the paper's section 3): a similarity map, with a mirror for right
//! hands, that puts the middle fingertip about 100 px below the top and the capitate
//! about 480 px above the bottom of a 2080×1600 canvas, both on the vertical centre
//! line; and the regions cropped from the registered canvas.
//!
//! Everything scales with the canvas: the CPU preset (520×400, height × width)
//! registers the same way at a quarter of the size.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geometry::{Affine, Point};
use crate::image::{GrayImage, Mask};
use crate::keypoints::KeyPoints;
use crate::ops::{warp_affine, warp_mask};

/// The registered canvas, in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canvas {
    /// Width (1600 in the paper).
    pub width: usize,
    /// Height (2080 in the paper).
    pub height: usize,
}

impl Default for Canvas {
    fn default() -> Self {
        Self::PAPER
    }
}

/// The paper's regions, and one of ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Region {
    /// The whole hand, 2000×1500 (height × width) at paper scale.
    A,
    /// The carpal bones, 750×750.
    B,
    /// The metacarpals and proximal phalanges, 600×1400.
    C,
    /// Not the paper's: the fingers (distal and middle phalanges with their joints,
    /// and the proximal phalanges down to near their bases), 920×1500 — the part of
    /// region A whose growth plates region A's input is too coarse to show.
    D,
}

impl Region {
    /// All four, in the order of the crops' arrays.
    pub const ALL: [Region; 4] = [Region::A, Region::B, Region::C, Region::D];

    /// "A", "B", "C" or "D".
    pub fn name(self) -> &'static str {
        match self {
            Region::A => "A",
            Region::B => "B",
            Region::C => "C",
            Region::D => "D",
        }
    }
}

/// A pixel rectangle: left, top, width, height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rect {
    /// Left column.
    pub x: usize,
    /// Top row.
    pub y: usize,
    /// Width.
    pub w: usize,
    /// Height.
    pub h: usize,
}

impl Rect {
    /// Whether a continuous point lies inside.
    pub fn contains(&self, p: Point) -> bool {
        p.x >= self.x as f64
            && p.y >= self.y as f64
            && p.x < (self.x + self.w) as f64
            && p.y < (self.y + self.h) as f64
    }
}

/// Region rectangles at paper scale (1600 wide × 2080 tall), as (x, y, w, h).
///
/// How they were chosen: the sizes are the paper's (section 4.3). The positions
/// follow its Fig. 7 and were measured on the 40 registered references in
/// `../shared/data/rsna/registered` with a 100 px grid drawn over them: there the
/// middle fingertip sits near y = 100, the metacarpal heads near y = 950–1000, the
/// metacarpal bases of the index to little fingers near y = 1470–1530, the capitate
/// at (800, 1600) and the distal radial physis near y = 1850–1900.
/// - A (2000×1500) is centred horizontally and leaves 40 px at top and bottom.
/// - B (750×750) is centred on the capitate's column and 50 px below it, so that it
///   holds the whole carpus and the distal radial and ulnar epiphyses.
/// - C (600×1400) spans y = 920–1520: the metacarpals of the index to little
///   fingers with their heads (the little finger's base may poke out below), the MCP
///   joints and the bases (epiphyses) of the proximal phalanges — the part of the
///   rays the paper's region C shows.
/// - D (920×1500, not the paper's) is region A's width from its top to y = 960: the
///   distal and middle phalanges, the DIP and PIP joints and the proximal phalanges
///   down to just above their bases, which region C holds (the two overlap by 40 px).
const REGIONS_PAPER: [(Region, (usize, usize, usize, usize)); 4] = [
    (Region::A, (50, 40, 1500, 2000)),
    (Region::B, (425, 1275, 750, 750)),
    (Region::C, (100, 920, 1400, 600)),
    (Region::D, (50, 40, 1500, 920)),
];

impl Canvas {
    /// The paper's canvas: 1600 wide, 2080 tall.
    pub const PAPER: Canvas = Canvas {
        width: 1600,
        height: 2080,
    };
    /// The CPU preset: a quarter of the paper's size, 400 × 520.
    pub const CPU: Canvas = Canvas {
        width: 400,
        height: 520,
    };

    /// A canvas of the paper's proportions and the given height, or any size.
    pub fn new(width: usize, height: usize) -> Result<Self> {
        if width < 16 || height < 16 || width > 16384 || height > 16384 {
            return Err(Error::InvalidArgument(format!(
                "canvas {width}x{height} out of range"
            )));
        }
        Ok(Self { width, height })
    }

    /// Canvas pixels per paper-canvas pixel, horizontally and vertically.
    fn scale(&self) -> (f64, f64) {
        (self.width as f64 / 1600.0, self.height as f64 / 2080.0)
    }

    /// Where the middle fingertip goes: centre line, 100 px (paper scale) below the top.
    pub fn fingertip_target(&self) -> Point {
        Point::new(self.width as f64 / 2.0, 100.0 * self.scale().1)
    }

    /// Where the capitate goes: centre line, 480 px (paper scale) above the bottom.
    pub fn capitate_target(&self) -> Point {
        Point::new(
            self.width as f64 / 2.0,
            self.height as f64 - 480.0 * self.scale().1,
        )
    }

    /// A region's rectangle on this canvas.
    pub fn region(&self, region: Region) -> Rect {
        let (sx, sy) = self.scale();
        let (_, (x, y, w, h)) = REGIONS_PAPER
            .iter()
            .find(|(r, _)| *r == region)
            .copied()
            .expect("all regions listed");
        let r = |v: usize, s: f64| (v as f64 * s).round() as usize;
        let rect = Rect {
            x: r(x, sx),
            y: r(y, sy),
            w: r(w, sx).max(1),
            h: r(h, sy).max(1),
        };
        Rect {
            w: rect.w.min(self.width - rect.x),
            h: rect.h.min(self.height - rect.y),
            ..rect
        }
    }
}

/// How one image maps onto the canvas.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Registration {
    /// Image pixel coordinates → canvas pixel coordinates.
    pub to_canvas: Affine,
    /// The image was mirrored (a right hand, or a flipped film).
    pub mirrored: bool,
    /// Canvas pixels per image pixel.
    pub zoom: f64,
    /// Rotation applied, in degrees (counter-clockwise on screen).
    pub rotation_deg: f64,
}

impl Registration {
    /// Canvas → image, the direction a warp needs.
    pub fn to_image(&self) -> Affine {
        self.to_canvas
            .inverse()
            .expect("a registration is invertible")
    }

    /// Registers an image (bilinear, zero outside).
    pub fn warp(&self, img: &GrayImage, canvas: &Canvas) -> GrayImage {
        warp_affine(img, &self.to_image(), canvas.width, canvas.height)
    }

    /// Registers a mask (nearest neighbour).
    pub fn warp_mask(&self, mask: &Mask, canvas: &Canvas) -> Mask {
        warp_mask(mask, &self.to_image(), canvas.width, canvas.height)
    }

    /// Key points in canvas coordinates.
    pub fn keypoints(&self, k: &KeyPoints) -> KeyPoints {
        k.mapped(&self.to_canvas)
    }
}

/// The registration of an image with key points `k` onto `canvas`.
///
/// Fails, rather than producing a NaN image, when the key points are degenerate:
/// non-finite, fingertip and capitate closer than 2 px, or the thumb on the
/// fingertip–capitate axis so that left cannot be told from right.
pub fn register(k: &KeyPoints, canvas: &Canvas) -> Result<Registration> {
    let degenerate = |why: String| Err(Error::InvalidArgument(format!("cannot register: {why}")));
    for (name, p) in [
        ("fingertip", k.fingertip),
        ("thumb", k.thumb),
        ("capitate", k.capitate),
    ] {
        if !(p.x.is_finite() && p.y.is_finite()) {
            return degenerate(format!("{name} key point is not a number"));
        }
    }
    let axis = k.fingertip - k.capitate;
    let len = axis.norm();
    if len < 2.0 {
        return degenerate(format!("fingertip and capitate are {len:.2} px apart"));
    }
    let t = k.thumb - k.capitate;
    let side = (axis.x * t.y - axis.y * t.x) / len;
    if side.abs() < 0.02 * len {
        return degenerate(format!(
            "the thumb lies on the hand axis ({:.1} px off it), so left and right cannot be told apart",
            side.abs()
        ));
    }
    // Mirror first when the thumb is on the left of the axis (a right hand).
    let mirrored = side < 0.0;
    let m = if mirrored {
        Affine([-1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    } else {
        Affine::IDENTITY
    };
    let (f, c) = (m.apply(k.fingertip), m.apply(k.capitate));
    let (tf, tc) = (canvas.fingertip_target(), canvas.capitate_target());
    let (src, dst) = (f - c, tf - tc);
    let zoom = dst.norm() / src.norm();
    // Rotation taking src's direction to dst's, in Point::rotated's sense.
    let angle = (-dst.y).atan2(dst.x) - (-src.y).atan2(src.x);
    let sim = Affine::similarity(zoom, angle, false, Point::default());
    let moved = sim.apply(c);
    let sim = Affine::similarity(zoom, angle, false, tc - moved);
    let to_canvas = sim.compose(&m);
    let deg = angle.to_degrees();
    let rotation_deg = (deg + 540.0) % 360.0 - 180.0;
    Ok(Registration {
        to_canvas,
        mirrored,
        zoom,
        rotation_deg,
    })
}

/// Crops a region from a registered canvas image.
pub fn crop(img: &GrayImage, rect: Rect) -> GrayImage {
    let (w, h) = (
        rect.w.min(img.width().saturating_sub(rect.x)),
        rect.h.min(img.height().saturating_sub(rect.y)),
    );
    let mut out = GrayImage::new(w.max(1), h.max(1));
    for y in 0..h {
        let src = &img.as_slice()[(rect.y + y) * img.width() + rect.x..][..w];
        out.as_mut_slice()[y * w..(y + 1) * w].copy_from_slice(src);
    }
    out
}

/// Writes a registered canvas as `<id>.png` in `dir` and its region crops as
/// `<id>_A.png` … `<id>_D.png` ([`crate::dataset::crop_path`]).
pub fn save_regions(
    dir: &std::path::Path,
    id: &str,
    registered: &GrayImage,
    canvas: &Canvas,
) -> Result<()> {
    registered.save_png(&dir.join(format!("{id}.png")))?;
    for region in Region::ALL {
        crop(registered, canvas.region(region))
            .save_png(&crate::dataset::crop_path(dir, id, region))?;
    }
    Ok(())
}
