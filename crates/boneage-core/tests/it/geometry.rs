//! Affine maps, key-point helpers and resampling.

use boneage_core::GrayImage;
use boneage_core::geometry::{Affine, Point};
use boneage_core::keypoints::KeyPoints;
use boneage_core::ops::resize_area;

fn close(a: Point, b: Point) -> bool {
    a.dist(b) < 1e-9
}

#[test]
fn inverse_and_composition() {
    let f = Affine::similarity(2.5, 0.7, true, Point::new(10.0, -3.0));
    let g = Affine::similarity(0.4, -1.1, false, Point::new(-2.0, 5.0));
    let inv = f.inverse().unwrap();
    for p in [
        Point::new(0.0, 0.0),
        Point::new(3.0, -7.5),
        Point::new(-100.0, 42.0),
    ] {
        assert!(close(inv.apply(f.apply(p)), p));
        assert!(close(f.compose(&g).apply(p), f.apply(g.apply(p))));
    }
    assert!(f.det() < 0.0, "a mirror reverses orientation");
    assert!(Affine([1.0, 2.0, 0.0, 2.0, 4.0, 0.0]).inverse().is_none());
}

#[test]
fn thumb_side() {
    let left = KeyPoints {
        fingertip: Point::new(50.0, 10.0),
        thumb: Point::new(90.0, 60.0),
        capitate: Point::new(50.0, 100.0),
    };
    assert!(left.thumb_on_right());
    let right = KeyPoints {
        thumb: Point::new(10.0, 60.0),
        ..left
    };
    assert!(!right.thumb_on_right());
}

#[test]
fn area_resize_preserves_mean_and_averages_blocks() {
    let img = GrayImage::from_vec(4, 2, vec![0.0, 1.0, 0.2, 0.4, 1.0, 0.0, 0.6, 0.8]).unwrap();
    let half = resize_area(&img, 2, 1);
    assert!((half.get(0, 0) - 0.5).abs() < 1e-6);
    assert!((half.get(1, 0) - 0.5).abs() < 1e-6);
    // Non-integer ratio: the mean is kept.
    let big = GrayImage::from_vec(
        7,
        5,
        (0..35).map(|i| (i as f32 * 0.37).sin().abs()).collect(),
    )
    .unwrap();
    let small = resize_area(&big, 3, 2);
    let mean = |g: &GrayImage| g.as_slice().iter().sum::<f32>() / g.as_slice().len() as f32;
    assert!(
        (mean(&big) - mean(&small)).abs() < 1e-4,
        "{} vs {}",
        mean(&big),
        mean(&small)
    );
}

#[test]
fn key_points_carried_by_a_map_are_each_point_mapped() {
    let k = KeyPoints {
        fingertip: Point::new(50.0, 10.0),
        thumb: Point::new(80.0, 60.0),
        capitate: Point::new(50.0, 90.0),
    };
    let f = Affine::similarity(1.5, 0.3, true, Point::new(7.0, -2.0));
    let m = k.mapped(&f);
    assert!(close(m.fingertip, f.apply(k.fingertip)));
    assert!(close(m.thumb, f.apply(k.thumb)));
    assert!(close(m.capitate, f.apply(k.capitate)));
    // A mirror moves the thumb to the other side; the inverse map brings it back.
    assert_ne!(m.thumb_on_right(), k.thumb_on_right());
    let back = m.mapped(&f.inverse().unwrap());
    assert!(close(back.thumb, k.thumb));
}

#[test]
fn mask_bounds_are_the_box_of_its_pixels() {
    use boneage_core::image::Mask;
    let mut m = Mask::new(20, 10);
    assert_eq!(m.bounds(), None);
    m.set(3, 4, true);
    assert_eq!(m.bounds(), Some([3, 4, 4, 5]));
    m.set(17, 2, true);
    m.set(5, 9, true);
    // x1 and y1 are exclusive.
    assert_eq!(m.bounds(), Some([3, 2, 18, 10]));
}

/// A bar `half_w` × `half_h` (half sizes) around `(cx, cy)`, its long axis leaning by
/// `lean` radians from the vertical, clockwise as seen.
fn leaning_bar(
    w: usize,
    h: usize,
    cx: f64,
    cy: f64,
    half: [f64; 2],
    lean: f64,
) -> boneage_core::image::Mask {
    let mut m = boneage_core::image::Mask::new(w, h);
    let (s, c) = lean.sin_cos();
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            // Across and along the bar: along points up-and-right for a positive lean.
            let (across, along) = (dx * c + dy * s, dx * s - dy * c);
            if across.abs() <= half[0] && along.abs() <= half[1] {
                m.set(x, y, true);
            }
        }
    }
    m
}

#[test]
fn a_masks_principal_axis_is_its_longer_direction_from_the_vertical() {
    use boneage_core::image::Mask;
    assert_eq!(Mask::new(8, 8).principal_axis(), None);
    for deg in [0.0f64, 30.0, -30.0, 45.0, 60.0, -75.0, 90.0] {
        let m = leaning_bar(300, 300, 140.0, 160.0, [20.0, 100.0], deg.to_radians());
        let (c, lean) = m.principal_axis().expect("a bar");
        assert!(
            c.dist(Point::new(140.0, 160.0)) < 0.5,
            "{deg}°: centre {c:?}"
        );
        // An axis has no head: 90° and -90° are one axis, given as 90°.
        let want = if deg == -90.0 { 90.0 } else { deg };
        assert!(
            (lean.to_degrees() - want).abs() < 1.0,
            "{deg}°: found {}°",
            lean.to_degrees()
        );
    }
}

#[test]
fn key_points_lean_clockwise_from_upright() {
    let at = |fx: f64, fy: f64| KeyPoints {
        fingertip: Point::new(fx, fy),
        thumb: Point::new(180.0, 150.0),
        capitate: Point::new(100.0, 200.0),
    };
    assert!(at(100.0, 20.0).lean().abs() < 1e-12);
    assert!((at(300.0, 200.0).lean() - std::f64::consts::FRAC_PI_2).abs() < 1e-12);
    assert!((at(0.0, 100.0).lean() + std::f64::consts::FRAC_PI_4).abs() < 1e-12);
}

#[test]
fn a_thumb_tip_is_placed_in_the_hands_frame_and_refused_where_no_thumb_lies() {
    // Fingertip straight above the capitate, a span of 100 px.
    let at = |x: f64, y: f64| KeyPoints {
        fingertip: Point::new(200.0, 100.0),
        thumb: Point::new(x, y),
        capitate: Point::new(200.0, 200.0),
    };
    let (along, aside) = at(250.0, 150.0).thumb_in_hand();
    assert!((along - 0.5).abs() < 1e-9 && (aside - 0.5).abs() < 1e-9);
    // Mirrored, the thumb is as far to the other side.
    let (along, aside) = at(150.0, 150.0).thumb_in_hand();
    assert!((along - 0.5).abs() < 1e-9 && (aside - 0.5).abs() < 1e-9);
    // The same hand turned and scaled: the same place in the hand's frame.
    let turned =
        at(250.0, 150.0).mapped(&Affine::similarity(1.7, 1.0, false, Point::new(30.0, -8.0)));
    let (along, aside) = turned.thumb_in_hand();
    assert!((along - 0.5).abs() < 1e-9 && (aside - 0.5).abs() < 1e-9);
    assert_eq!(at(250.0, 150.0).misplaced_thumb(), None);
    // On the forearm, among the fingertips, level with the capitate, far out.
    for (x, y, words) in [
        (240.0, 250.0, "beyond the capitate"),
        (215.0, 105.0, "among the fingertips"),
        (260.0, 197.0, "level with the capitate"),
        (300.0, 150.0, "beside its axis"),
    ] {
        let why = at(x, y).misplaced_thumb().expect("refused");
        assert!(why.contains(words), "{why}");
    }
}
