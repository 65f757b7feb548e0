//! Image operations on [`GrayImage`](crate::GrayImage).

mod resample;

pub use resample::resize_area;
