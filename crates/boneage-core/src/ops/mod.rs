//! Image operations on [`GrayImage`](crate::GrayImage) and [`Mask`](crate::image::Mask):
//! resampling and affine warps, contrast normalisation (percentile window, CLAHE),
//! connected components and hole filling, morphology, smoothing, and the classical
//! hand segmentation baseline.
//!
//! Geometry convention: coordinates are continuous and pixel `(i, j)` covers
//! `[i, i + 1) × [j, j + 1)`, so its centre is `(i + 0.5, j + 0.5)`. Key points,
//! affine maps and warps all use it.

mod canvas;
mod components;
mod contrast;
mod cut_out;
pub mod draw;
mod morphology;
mod resample;
pub mod segment;
mod smooth;

pub use canvas::{film_inside, film_on_canvas};
pub use components::{
    Connectivity, component_sizes, fill_holes, label_components, largest_component,
};
pub use contrast::{
    ClaheConfig, NormalizeConfig, clahe, hand_lighter_by, normalize_hand, percentile_window,
};
pub use cut_out::{
    CUT_OUT_BLACK, CUT_OUT_BORDER, CUT_OUT_ONE_REGION, CUT_OUT_SOLIDITY, CutOutMeasures, cut_out,
};
pub use draw::{fill_polygon, stroke_polyline};
pub use morphology::{close, dilate, distance_transform_sq, erode, open, trim_thin};
pub use resample::{resize_area, resize_bilinear, turn_onto_field, warp_affine, warp_mask};
pub use segment::refine_gaps;
pub use smooth::gaussian_blur;
