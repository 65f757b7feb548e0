//! PNG and JPEG reading, format sniffing, refusals, atomic writes.

use std::io::Cursor;
use std::path::Path;

use boneage_core::Error;
use boneage_core::io::{Format, read_radiograph, read_radiograph_bytes, write_atomic};
use image::{ImageBuffer, Luma, Rgb, Rgba};

fn save(img: impl Into<image::DynamicImage>, path: &Path, fmt: image::ImageFormat) {
    img.into().save_with_format(path, fmt).unwrap();
}

#[test]
fn png_8bit_gray() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g8.png");
    save(
        ImageBuffer::from_fn(5, 3, |x, y| Luma([(x * 50 + y) as u8])),
        &p,
        image::ImageFormat::Png,
    );
    let r = read_radiograph(&p).unwrap();
    assert_eq!(r.meta.format, Format::Png);
    assert_eq!(r.meta.bit_depth, 8);
    assert_eq!((r.pixels.width(), r.pixels.height()), (5, 3));
    assert_eq!(r.pixels.get(4, 2), 202.0 / 255.0);
    assert_eq!(r.meta.pixel_spacing_mm, None);
}

#[test]
fn png_16bit_gray_keeps_precision() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("g16.png");
    save(
        ImageBuffer::<Luma<u16>, _>::from_fn(4, 4, |x, y| Luma([(x * 1000 + y * 7) as u16])),
        &p,
        image::ImageFormat::Png,
    );
    let r = read_radiograph(&p).unwrap();
    assert_eq!(r.meta.bit_depth, 16);
    assert_eq!(r.pixels.get(3, 3), 3021.0 / 65535.0);
}

#[test]
fn png_rgb_and_rgba_become_luminance() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rgb.png");
    save(
        ImageBuffer::from_pixel(2, 2, Rgb([100u8, 100, 100])),
        &p,
        image::ImageFormat::Png,
    );
    let r = read_radiograph(&p).unwrap();
    assert!((r.pixels.get(0, 0) - 100.0 / 255.0).abs() < 1e-5);
    let p = dir.path().join("rgba.png");
    save(
        ImageBuffer::from_pixel(2, 2, Rgba([255u8, 0, 0, 10])),
        &p,
        image::ImageFormat::Png,
    );
    let r = read_radiograph(&p).unwrap();
    assert!(
        (r.pixels.get(1, 1) - 0.299).abs() < 1e-3,
        "{}",
        r.pixels.get(1, 1)
    );
}

#[test]
fn png_palette_is_expanded() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("palette.png");
    // Four gray levels through a palette, as some registered RSNA exports are stored.
    let file = std::fs::File::create(&p).unwrap();
    let mut enc = png::Encoder::new(file, 4, 1);
    enc.set_color(png::ColorType::Indexed);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_palette(vec![0, 0, 0, 85, 85, 85, 170, 170, 170, 255, 255, 255]);
    enc.write_header()
        .unwrap()
        .write_image_data(&[3, 2, 1, 0])
        .unwrap();
    let r = read_radiograph(&p).unwrap();
    let px: Vec<f32> = r.pixels.as_slice().to_vec();
    let expect = [1.0, 170.0 / 255.0, 85.0 / 255.0, 0.0];
    for (a, b) in px.iter().zip(expect) {
        assert!((a - b).abs() < 1e-3, "{px:?}");
    }
}

#[test]
fn jpeg_gray() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.jpg");
    save(
        ImageBuffer::from_pixel(16, 16, Luma([128u8])),
        &p,
        image::ImageFormat::Jpeg,
    );
    let r = read_radiograph(&p).unwrap();
    assert_eq!(r.meta.format, Format::Jpeg);
    assert!((r.pixels.get(8, 8) - 128.0 / 255.0).abs() < 0.02);
}

#[test]
fn format_is_recognised_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("actually_png.jpg");
    save(
        ImageBuffer::from_pixel(2, 2, Luma([7u8])),
        &p,
        image::ImageFormat::Png,
    );
    assert_eq!(read_radiograph(&p).unwrap().meta.format, Format::Png);
}

#[test]
fn not_an_image_names_the_file() {
    let err = read_radiograph_bytes(b"id,boneage,male\n1,2,true\n", "labels.csv").unwrap_err();
    assert!(matches!(err, Error::NotAnImage { .. }));
    assert_eq!(
        err.to_string(),
        "labels.csv: not an image (not PNG, JPEG or DICOM)"
    );
}

#[test]
fn missing_file_names_the_file() {
    let err = read_radiograph("/nonexistent/x.png").unwrap_err();
    assert!(matches!(err, Error::Io { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/x.png: cannot read"),
        "{err}"
    );
}

#[test]
fn truncated_png_and_jpeg_are_corrupt() {
    for fmt in [image::ImageFormat::Png, image::ImageFormat::Jpeg] {
        let mut buf = Cursor::new(Vec::new());
        image::DynamicImage::ImageLuma8(ImageBuffer::from_fn(64, 64, |x, y| Luma([(x ^ y) as u8])))
            .write_to(&mut buf, fmt)
            .unwrap();
        let bytes = buf.into_inner();
        // Cuts inside the headers or the pixel data (a PNG cut only in its IEND
        // trailer still holds the whole image).
        for cut in [12, 40, bytes.len() / 2] {
            let err = read_radiograph_bytes(&bytes[..cut], "cut.img").unwrap_err();
            assert!(
                matches!(err, Error::Corrupt { .. } | Error::Unsupported { .. }),
                "{fmt:?} cut at {cut}: {err:?}"
            );
            assert!(err.to_string().starts_with("cut.img: "), "{err}");
        }
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn absurd_png_size_is_refused_before_decoding() {
    // A valid signature and IHDR announcing 20000 x 20000 pixels, then nothing.
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&20000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend_from_slice(&13u32.to_be_bytes());
    bytes.extend_from_slice(&ihdr);
    bytes.extend_from_slice(&crc32(&ihdr).to_be_bytes());
    let err = read_radiograph_bytes(&bytes, "huge.png").unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                width: 20000,
                height: 20000,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("100 megapixels"), "{err}");
}

#[test]
fn atomic_write_leaves_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.txt");
    std::fs::write(&target, "old").unwrap();
    let err = write_atomic(&target, |w| {
        use std::io::Write;
        w.write_all(b"half")?;
        Err(std::io::Error::other("disk on fire"))
    })
    .unwrap_err();
    assert!(err.to_string().contains("out.txt") && err.to_string().contains("disk on fire"));
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "temporary file left behind: {names:?}");
    write_atomic(&target, |w| {
        use std::io::Write;
        w.write_all(b"new")
    })
    .unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
}

/// A key-point CSV may carry a `note` column: the points read as without it, and
/// `read_notes` gives the non-blank notes by id (none for a file without the column).
#[test]
fn keypoint_notes_are_read_beside_the_points() {
    use boneage_core::keypoints::{read_csv, read_notes};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.csv");
    std::fs::write(
        &path,
        "id,fingertip_x,fingertip_y,thumb_x,thumb_y,capitate_x,capitate_y,note\n\
         a,1,2,3,4,5,6,capitate uncertain; dark film\n\
         b,7,8,9,10,11,12,\n",
    )
    .unwrap();
    let points = read_csv(&path).unwrap();
    assert_eq!(points.len(), 2);
    assert_eq!(points["b"].capitate.y, 12.0);
    let notes = read_notes(&path).unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes["a"], "capitate uncertain; dark film");
    let plain = dir.path().join("p.csv");
    std::fs::write(
        &plain,
        "id,fingertip_x,fingertip_y,thumb_x,thumb_y,capitate_x,capitate_y\na,1,2,3,4,5,6\n",
    )
    .unwrap();
    assert!(read_notes(&plain).unwrap().is_empty());
}

#[test]
fn samples_in_memory_give_the_same_pixels_as_the_png_that_holds_them() {
    use boneage_core::io::{SampleType, radiograph_from_samples};
    let dir = tempfile::tempdir().unwrap();
    // 8 and 16 bits: the same scaling as a PNG of that depth.
    let g8 = ImageBuffer::from_fn(7, 3, |x, y| Luma([(x * 37 + y * 11) as u8]));
    let p8 = dir.path().join("g8.png");
    save(g8.clone(), &p8, image::ImageFormat::Png);
    let from_png = read_radiograph(&p8).unwrap();
    let from_mem = radiograph_from_samples(7, 3, SampleType::U8, g8.as_raw(), "array").unwrap();
    assert_eq!(from_mem.pixels, from_png.pixels);
    assert_eq!(from_mem.meta.format, Format::Array);
    let g16 = ImageBuffer::<Luma<u16>, _>::from_fn(4, 5, |x, y| Luma([(x * 9000 + y * 77) as u16]));
    let p16 = dir.path().join("g16.png");
    save(g16.clone(), &p16, image::ImageFormat::Png);
    let bytes: Vec<u8> = g16.as_raw().iter().flat_map(|v| v.to_ne_bytes()).collect();
    let from_mem = radiograph_from_samples(4, 5, SampleType::U16, &bytes, "array").unwrap();
    assert_eq!(from_mem.pixels, read_radiograph(&p16).unwrap().pixels);

    // Floats in [0, 1] as they are; others stretched from their range.
    let unit: Vec<u8> = [0.25f32, 0.5, 1.0, 0.0]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let r = radiograph_from_samples(2, 2, SampleType::F32, &unit, "a").unwrap();
    assert_eq!(r.pixels.as_slice(), &[0.25, 0.5, 1.0, 0.0]);
    let wide: Vec<u8> = [-100.0f64, 0.0, 300.0, 100.0]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let r = radiograph_from_samples(2, 2, SampleType::F64, &wide, "a").unwrap();
    assert_eq!(r.pixels.as_slice(), &[0.0, 0.25, 1.0, 0.5]);

    // What cannot be a picture is refused, naming the image and the problem.
    let err = |w, h, kind, bytes: &[u8]| {
        radiograph_from_samples(w, h, kind, bytes, "scan-7")
            .unwrap_err()
            .to_string()
    };
    let nan: Vec<u8> = [0.5f32, f32::NAN]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    let e = err(2, 1, SampleType::F32, &nan);
    assert!(
        e.contains("scan-7") && e.contains("row 0, column 1") && e.contains("NaN"),
        "{e}"
    );
    let e = err(0, 4, SampleType::U8, &[]);
    assert!(e.contains("scan-7") && e.contains("empty"), "{e}");
    let e = err(3, 3, SampleType::U16, &[0; 9]);
    assert!(e.contains("9 bytes") && e.contains("18 expected"), "{e}");
    let flat: Vec<u8> = [7.0f32; 4].iter().flat_map(|v| v.to_ne_bytes()).collect();
    let e = err(2, 2, SampleType::F32, &flat);
    assert!(e.contains("every sample is 7"), "{e}");
}
