//! PNG and JPEG through the `image` crate.

use std::io::Cursor;
use std::path::Path;

use image::{ColorType, DynamicImage, ImageDecoder, ImageReader};

use super::{Format, RadiographMeta, check_size};
use crate::error::{Error, Result};
use crate::image::GrayImage;

pub(super) fn decode(
    bytes: &[u8],
    path: &Path,
    format: Format,
) -> Result<(GrayImage, RadiographMeta)> {
    let name = format.name();
    let corrupt = |e: image::ImageError| match e {
        image::ImageError::Unsupported(u) => Error::Unsupported {
            path: path.to_path_buf(),
            format: name,
            detail: u.to_string(),
        },
        other => Error::Corrupt {
            path: path.to_path_buf(),
            format: name,
            detail: other.to_string(),
        },
    };
    let image_format = match format {
        Format::Png => image::ImageFormat::Png,
        _ => image::ImageFormat::Jpeg,
    };
    // Absurd sizes are refused from the header alone, before any decoder runs.
    if let Some((w, h)) = header_dimensions(bytes, format) {
        check_size(path, w as u64, h as u64)?;
    }
    let reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    let decoder = reader.into_decoder().map_err(corrupt)?;
    let (w, h) = decoder.dimensions();
    check_size(path, w as u64, h as u64)?;
    let color = decoder.color_type();
    let original = decoder.original_color_type();
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(super::MAX_MEGAPIXELS * 1_000_000 * 8);
    let mut decoder = decoder;
    decoder.set_limits(limits).map_err(corrupt)?;
    let img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    let bit_depth = match original {
        image::ExtendedColorType::L1 | image::ExtendedColorType::La1 => 1,
        image::ExtendedColorType::L2 | image::ExtendedColorType::La2 => 2,
        image::ExtendedColorType::L4 | image::ExtendedColorType::La4 => 4,
        image::ExtendedColorType::Unknown(b) => b as u16,
        _ => (color.bits_per_pixel() / color.channel_count() as u16).max(1),
    };
    let pixels = to_gray(&img);
    let photometric = match original {
        image::ExtendedColorType::Unknown(_) => format!("{color:?}"),
        o => format!("{o:?}"),
    };
    let meta = RadiographMeta::new(format, bit_depth, photometric);
    Ok((pixels, meta))
}

/// Luminance in `[0, 1]`; alpha is ignored (radiographs have no meaningful alpha).
fn to_gray(img: &DynamicImage) -> GrayImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<f32> = match img.color() {
        ColorType::L8 => img
            .as_luma8()
            .unwrap()
            .iter()
            .map(|&v| v as f32 / 255.0)
            .collect(),
        ColorType::L16 => img
            .as_luma16()
            .unwrap()
            .iter()
            .map(|&v| v as f32 / 65535.0)
            .collect(),
        ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8 => img
            .to_rgb8()
            .pixels()
            .map(|p| luma(p.0[0] as f32, p.0[1] as f32, p.0[2] as f32) / 255.0)
            .collect(),
        _ => img
            .to_rgb32f()
            .pixels()
            .map(|p| luma(p.0[0], p.0[1], p.0[2]).clamp(0.0, 1.0))
            .collect(),
    };
    GrayImage::from_vec(w, h, data).expect("decoded buffer matches its dimensions")
}

/// ITU-R BT.601 luma, the weights most grayscale conversions use.
#[inline]
fn luma(r: f32, g: f32, b: f32) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// Width and height from the file header: PNG's IHDR, or a JPEG start-of-frame
/// marker. `None` when the header is not where it should be (the decoder then
/// reports the problem).
fn header_dimensions(bytes: &[u8], format: Format) -> Option<(u32, u32)> {
    let be16 = |i: usize| -> Option<u32> {
        Some(u16::from_be_bytes(bytes.get(i..i + 2)?.try_into().ok()?) as u32)
    };
    let be32 = |i: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(i..i + 4)?.try_into().ok()?))
    };
    match format {
        Format::Png => (bytes.get(12..16)? == b"IHDR").then_some((be32(16)?, be32(20)?)),
        Format::Jpeg => {
            let mut i = 2;
            while i + 4 <= bytes.len() {
                if bytes[i] != 0xFF {
                    return None;
                }
                let marker = bytes[i + 1];
                if marker == 0xFF {
                    i += 1;
                    continue;
                }
                let len = be16(i + 2)? as usize;
                // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
                if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
                    return Some((be16(i + 7)?, be16(i + 5)?));
                }
                if marker == 0xDA {
                    return None;
                }
                i += 2 + len;
            }
            None
        }
        Format::Dicom | Format::Array => None,
    }
}
