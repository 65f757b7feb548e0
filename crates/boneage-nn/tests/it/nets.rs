//! The networks' shapes, the age scaling, the losses and the ELU, by hand.

use boneage_nn::age::{
    AgeHead, AgeNetConfig, Backbone, scale_age, softmax_expectation, unscale_age,
};
use boneage_nn::blocks::elu;
use boneage_nn::burn::prelude::*;
use boneage_nn::efficientnet::LiteVariant;
use boneage_nn::keypoint_net::{KeypointNetConfig, gaussian_maps, soft_argmax};
use boneage_nn::loss::{
    bce_minus_log_jaccard, bce_with_logits, mae, mse, soft_cross_entropy, soft_jaccard,
};
use boneage_nn::unet::UNetConfig;

use crate::{close, device, scalar};

#[test]
fn unet_keeps_the_spatial_size() {
    let _rng = crate::rng_lock();
    let d = device();
    let net = UNetConfig::new().with_features(vec![4, 8, 16]).init(&d);
    for (h, w) in [(32, 32), (64, 48), (16, 28)] {
        let y = net.forward(Tensor::zeros([2, 1, h, w], &d));
        assert_eq!(y.dims(), [2, 1, h, w]);
    }
    let deep = UNetConfig::new()
        .with_features(vec![2, 4, 8, 8, 16])
        .init(&d);
    assert_eq!(
        deep.forward(Tensor::zeros([1, 1, 64, 32], &d)).dims(),
        [1, 1, 64, 32]
    );
}

#[test]
#[should_panic(expected = "must be a multiple of 4")]
fn unet_refuses_sizes_it_cannot_pool() {
    let _rng = crate::rng_lock();
    let d = device();
    let net = UNetConfig::new().with_features(vec![4, 8, 16]).init(&d);
    net.forward(Tensor::zeros([1, 1, 30, 32], &d));
}

#[test]
fn keypoint_net_gives_six_coordinates() {
    let _rng = crate::rng_lock();
    let d = device();
    let paper = KeypointNetConfig::new().init(&d);
    assert_eq!(
        paper.forward(Tensor::zeros([2, 1, 130, 100], &d)).dims(),
        [2, 6]
    );
    let small = KeypointNetConfig::new()
        .with_features(vec![4, 8, 8])
        .with_hidden(vec![16, 8])
        .with_height(64)
        .with_width(48)
        .init(&d);
    assert_eq!(
        small.forward(Tensor::zeros([3, 1, 64, 48], &d)).dims(),
        [3, 6]
    );
}

/// The heat-map locator on EfficientNet-Lite0: six coordinates inside `[−1, 1]`,
/// and the soft-argmax by hand — a sharp peak gives its cell's centre, flat maps the
/// middle.
#[test]
fn heatmap_locator_gives_points_by_soft_argmax() {
    let _rng = crate::rng_lock();
    let d = device();
    let net = KeypointNetConfig::new()
        .with_height(64)
        .with_width(64)
        .with_backbone(Some(Backbone::Efficientnet(LiteVariant::Lite0)))
        .init(&d);
    assert!(net.is_heatmap());
    let y = net.forward(Tensor::random(
        [2, 1, 64, 64],
        boneage_nn::burn::tensor::Distribution::Default,
        &d,
    ));
    assert_eq!(y.dims(), [2, 6]);
    for v in y.into_data().try_to_vec::<f32>().unwrap() {
        assert!(v.abs() < 1.0, "{v}");
    }
    // Maps of 4 rows × 5 columns: point 0 peaks at row 1, column 3; point 1 is flat.
    let mut logits = vec![0f32; 2 * 4 * 5];
    logits[5 + 3] = 50.0;
    let t = Tensor::<1>::from_floats(logits.as_slice(), &d).reshape([1, 2, 4, 5]);
    let p = soft_argmax(t).into_data().try_to_vec::<f32>().unwrap();
    let want = [3.5 / 5.0 * 2.0 - 1.0, 1.5 / 4.0 * 2.0 - 1.0, 0.0, 0.0];
    for (a, b) in p.iter().zip(want) {
        assert!((a - b).abs() < 1e-5, "{p:?} vs {want:?}");
    }
}

/// The finer locator: heat maps at an 8th of the input (the cut backbone's 16th
/// doubled and joined with the third stage's), rounded up on sizes that do not
/// divide; a peak's neighbourhood decodes a two-mode map onto the stronger mode.
#[test]
fn finer_locator_maps_at_an_eighth_and_peak_decode_keeps_one_mode() {
    let _rng = crate::rng_lock();
    let d = device();
    for ([h, w], [mh, mw]) in [([64, 48], [8, 6]), ([72, 40], [9, 5])] {
        let net = KeypointNetConfig::new()
            .with_height(h)
            .with_width(w)
            .with_backbone(Some(Backbone::Efficientnet(LiteVariant::Lite0)))
            .with_lite_stages(Some(boneage_nn::efficientnet::STAGES_TO_16TH))
            .with_skip_stages(Some(boneage_nn::efficientnet::STAGES_TO_8TH))
            .init(&d);
        let x = Tensor::random(
            [2, 1, h, w],
            boneage_nn::burn::tensor::Distribution::Default,
            &d,
        );
        let maps = net.heat_maps(x.clone()).expect("a locator");
        assert_eq!(maps.dims(), [2, 3, mh, mw]);
        assert_eq!(net.forward(x).dims(), [2, 6]);
    }
    // One map of 1 row × 6 columns, modes at columns 1 (stronger) and 4.
    let logits = [0.0, 8.0, 0.0, 0.0, 7.5, 0.0];
    let p = boneage_nn::keypoint_net::peak_soft_argmax(&logits, [1, 6], 1);
    assert!((p[0] - (1.5 / 6.0 * 2.0 - 1.0)).abs() < 0.01, "{p:?}");
    assert_eq!(p[1], 0.0);
}

/// The heat-map targets: each a distribution peaked on its point's cell, with its
/// expectation on the point; a point off the map puts its mass on the border. The
/// cross-entropy against one is least for the logits that are its log, and a second
/// mode costs where the expectation alone would not see it.
#[test]
fn gaussian_targets_and_their_cross_entropy() {
    let d = device();
    let [h, w] = [8, 10];
    // Cell (2, 7)'s centre, a point between cells, and one left of the map.
    let points = [
        7.5 / 10.0 * 2.0 - 1.0,
        2.5 / 8.0 * 2.0 - 1.0,
        0.1,
        -0.2,
        -3.0,
        0.0,
    ];
    let maps = gaussian_maps(&points, [h, w], 1.0);
    assert_eq!(maps.len(), 3 * h * w);
    for (k, map) in maps.chunks_exact(h * w).enumerate() {
        assert!(close(map.iter().sum::<f32>(), 1.0, 1e-5));
        let peak = map
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        match k {
            0 => assert_eq!((peak / w, peak % w), (2, 7)),
            2 => assert_eq!(peak % w, 0, "a point off the left edge peaks on it"),
            _ => {}
        }
    }
    // The in-map points' expectation is the point (their Gaussians are not cut).
    let t = Tensor::<1>::from_floats(&maps[..2 * h * w], &d).reshape([1, 2, h, w]);
    let e = soft_argmax(t.clone().log());
    let e: Vec<f32> = e.into_data().try_to_vec::<f32>().unwrap();
    for (a, b) in e.iter().zip(&points[..4]) {
        assert!(close(*a, *b, 0.02), "{e:?}");
    }
    let target = t.reshape([2, h * w]);
    let own = scalar(soft_cross_entropy(target.clone().log(), target.clone()));
    let flat = scalar(soft_cross_entropy(
        Tensor::zeros([2, h * w], &d),
        target.clone(),
    ));
    assert!(close(flat, ((h * w) as f32).ln(), 1e-4), "{flat}");
    assert!(own < flat, "its own log {own} against flat logits {flat}");
    // Two modes mirrored about the first point: the expectation lands on it, the
    // cross-entropy is far above its minimum.
    let mut two = vec![-20.0f32; h * w];
    two[2 * w + 5] = 0.0;
    two[2 * w + 9] = 0.0;
    let two = Tensor::<1>::from_floats(two.as_slice(), &d).reshape([1, h * w]);
    let at: Vec<f32> = soft_argmax(two.clone().reshape([1, 1, h, w]))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(close(at[0], points[0], 1e-3), "{at:?}");
    let first = target.slice([0..1, 0..h * w]);
    assert!(
        scalar(soft_cross_entropy(two, first.clone()))
            > scalar(soft_cross_entropy(first.clone().log(), first)) + 1.0
    );
}

/// The guided key points: the net's fingertip and thumb move onto a digit tip of the
/// mask only when one lies close; the capitate stays the net's.
#[test]
fn guided_key_points_snap_to_close_digit_tips_only() {
    use boneage_core::geometry::Point;
    use boneage_core::hand_geometry::MaskGeometry;
    use boneage_core::keypoints::KeyPoints;
    use boneage_nn::pipeline::{SNAP, guided_keypoints};
    let net = KeyPoints {
        fingertip: Point::new(100.0, 10.0),
        thumb: Point::new(180.0, 120.0),
        capitate: Point::new(100.0, 210.0),
    };
    // Span 200: a tip 5 px from the net's fingertip snaps; the thumb's nearest tip is
    // 40 px away (more than SNAP · 200) and does not.
    const { assert!(5.0 < SNAP * 200.0 && 40.0 > SNAP * 200.0) };
    let geometry = MaskGeometry {
        keypoints: net,
        other_side: None,
        palm_centre: Point::new(100.0, 150.0),
        palm_radius: 40.0,
        digits: 3,
        tips: vec![
            Point::new(60.0, 30.0),
            Point::new(103.0, 14.0),
            Point::new(180.0, 80.0),
        ],
    };
    let k = guided_keypoints(&net, Some(&geometry));
    assert_eq!(k.fingertip, Point::new(103.0, 14.0));
    assert_eq!(k.thumb, net.thumb);
    assert_eq!(k.capitate, net.capitate);
    assert_eq!(guided_keypoints(&net, None), net);
}

#[test]
fn age_net_heads_sex_input_and_sizes() {
    let _rng = crate::rng_lock();
    let d = device();
    let feats = vec![4, 4, 8, 8, 8, 8];
    for (h, w) in [(128, 96), (64, 64), (150, 140)] {
        for head in [
            AgeHead::Regression,
            AgeHead::Classification { classes: 240 },
        ] {
            for (global_pool, sex_input) in [(false, false), (true, true), (false, true)] {
                let net = AgeNetConfig::new(h, w)
                    .with_head(head)
                    .with_features(feats.clone())
                    .with_hidden(vec![16, 16])
                    .with_global_pool(global_pool)
                    .with_sex_input(sex_input)
                    .init(&d);
                let sex = sex_input.then(|| Tensor::<2>::from_data([[1.0], [0.0]], &d));
                let out = net.forward(Tensor::zeros([2, 1, h, w], &d), sex);
                let classes = if head == AgeHead::Regression { 1 } else { 240 };
                assert_eq!(out.raw.dims(), [2, classes], "{h}x{w} {head:?}");
                assert_eq!(out.months.dims(), [2, 1]);
                let months = out.months.into_data().try_to_vec::<f32>().unwrap();
                assert!(
                    months
                        .iter()
                        .all(|m| m.is_finite() && (-240.0..=480.0).contains(m))
                );
            }
        }
    }
}

#[test]
fn age_scaling_round_trips() {
    let _rng = crate::rng_lock();
    let d = device();
    let m = Tensor::<2>::from_data([[0.0], [120.0], [240.0]], &d);
    let s = scale_age(m.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(s, vec![-1.0, 0.0, 1.0]);
    let back = unscale_age(scale_age(m))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(back, vec![0.0, 120.0, 240.0]);
}

#[test]
fn softmax_expectation_by_hand() {
    let _rng = crate::rng_lock();
    let d = device();
    // p = [1, 2, 5] / 8, so E = (0·1 + 1·2 + 2·5) / 8 = 1.5.
    let logits = Tensor::<2>::from_data([[0.0, 2f32.ln(), 5f32.ln()], [0.0, 0.0, 0.0]], &d);
    let e = softmax_expectation(logits)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(close(e[0], 1.5, 1e-5) && close(e[1], 1.0, 1e-5), "{e:?}");
}

#[test]
fn losses_by_hand() {
    let _rng = crate::rng_lock();
    let d = device();
    let z = Tensor::<1>::from_data([0.0, 2.0, -1.0], &d);
    let y = Tensor::<1>::from_data([1.0, 0.0, 1.0], &d);
    // ln 2, ln(1 + e²), ln(1 + e): mean 1.377779.
    assert!(close(
        scalar(bce_with_logits(z.clone(), y.clone())),
        1.377779,
        1e-5
    ));
    // Saturated logits stay finite.
    let big = Tensor::<1>::from_data([200.0, -200.0], &d);
    let v = scalar(bce_with_logits(big, Tensor::from_data([0.0, 1.0], &d)));
    assert!(close(v, 200.0, 1e-3), "{v}");
    // p = [0.5, 0.8, 0.2], y = [1, 0, 1]: intersection 0.7, union 3.5 − 0.7 = 2.8.
    let p = Tensor::<1>::from_data([0.5, 0.8, 0.2], &d);
    assert!(close(scalar(soft_jaccard(p, y.clone())), 0.25, 1e-6));
    // L = H − log J with J computed on sigmoid(z) = [0.5, 0.880797, 0.268941].
    let j = (0.5 + 0.268941) / (0.5 + 0.880797 + 0.268941 + 2.0 - 0.5 - 0.268941);
    let expect = 1.377779 - (j as f32).ln();
    assert!(close(scalar(bce_minus_log_jaccard(z, y)), expect, 1e-4));
    let a = Tensor::<1>::from_data([1.0, 2.0, 3.0], &d);
    let b = Tensor::<1>::from_data([1.0, 0.0, 5.0], &d);
    assert!(close(scalar(mse(a.clone(), b.clone())), 8.0 / 3.0, 1e-6));
    assert!(close(scalar(mae(a, b)), 4.0 / 3.0, 1e-6));
}

#[test]
fn elu_has_finite_gradients_for_large_inputs() {
    let _rng = crate::rng_lock();
    let d = device().autodiff();
    let x = Tensor::<1>::from_data([-1.0, 1.0, 100.0, 1000.0], &d).require_grad();
    let y = elu(x.clone());
    let values = y.clone().into_data().try_to_vec::<f32>().unwrap();
    assert!(
        close(values[0], (-1f32).exp() - 1.0, 1e-6) && values[2] == 100.0 && values[3] == 1000.0
    );
    let grads = y.sum().backward();
    let g = x
        .grad(&grads)
        .unwrap()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
    assert!(
        close(g[0], (-1f32).exp(), 1e-6) && g[1] == 1.0 && g[2] == 1.0 && g[3] == 1.0,
        "{g:?}"
    );
}

/// A refining net's field: centred on the guess, the hand's axis up, the thumb on
/// the right whichever way the film shows the hand, the film's pixels where the map
/// says; a capitate net loads as the capitate net and only as that.
#[test]
fn refining_nets_see_the_hand_upright_and_load_only_as_themselves() {
    use boneage_core::geometry::Point;
    use boneage_core::keypoints::KeyPoints;
    use boneage_nn::inputs::{REFINE_FIELD, refine_frame, refine_input};
    use boneage_nn::keypoint_net::Refined;
    use boneage_nn::pipeline::{Locator, RefineNet};
    use boneage_nn::weights::save;

    let near = |a: Point, b: Point| a.dist(b) < 1e-6;
    // A hand pointing up, thumb on the right; span 200, so the 100-px field is 80
    // film pixels wide.
    let k = KeyPoints {
        fingertip: Point::new(100.0, 20.0),
        thumb: Point::new(180.0, 150.0),
        capitate: Point::new(100.0, 220.0),
    };
    assert!((REFINE_FIELD - 0.4).abs() < 1e-12);
    let f = refine_frame(&k, k.capitate, 100);
    assert!(near(f.apply(Point::new(50.0, 50.0)), k.capitate));
    assert!(near(
        f.apply(Point::new(50.0, 0.0)),
        Point::new(100.0, 180.0)
    ));
    assert!(near(
        f.apply(Point::new(100.0, 50.0)),
        Point::new(140.0, 220.0)
    ));
    // Mirrored film: the thumb on the left is shown on the right.
    let m = KeyPoints {
        thumb: Point::new(20.0, 150.0),
        ..k
    };
    let f = refine_frame(&m, m.capitate, 100);
    assert!(near(
        f.apply(Point::new(100.0, 50.0)),
        Point::new(60.0, 220.0)
    ));
    // A mirrored film turned a quarter: fingers to the right, thumb up the image.
    let t = KeyPoints {
        fingertip: Point::new(300.0, 220.0),
        thumb: Point::new(170.0, 140.0),
        capitate: Point::new(100.0, 220.0),
    };
    let f = refine_frame(&t, Point::new(110.0, 230.0), 100);
    assert!(near(
        f.apply(Point::new(50.0, 50.0)),
        Point::new(110.0, 230.0)
    ));
    assert!(near(
        f.apply(Point::new(50.0, 0.0)),
        Point::new(150.0, 230.0)
    ));
    assert!(near(
        f.apply(Point::new(100.0, 50.0)),
        Point::new(110.0, 190.0)
    ));

    // A bright spot on a grey film lands where the map puts it.
    let (w, h) = (240usize, 260usize);
    let mut px = vec![0.3f32; w * h];
    for y in 196..=204 {
        for x in 116..=124 {
            px[y * w + x] = 0.9;
        }
    }
    let film = boneage_core::GrayImage::from_vec(w, h, px).unwrap();
    let (pixels, to_film) = refine_input(&film, &k, k.capitate, 100);
    let spot = to_film.inverse().unwrap().apply(Point::new(120.5, 200.5));
    let (sx, sy) = (spot.x as usize, spot.y as usize);
    assert!(pixels[sy * 100 + sx] > 200, "{}", pixels[sy * 100 + sx]);
    assert!(pixels[50 * 100 + 50] < 60, "{}", pixels[50 * 100 + 50]);

    // Weights: a capitate net is not the key-point net, nor the thumb's.
    let _rng = crate::rng_lock();
    let d = device();
    let dir = tempfile::tempdir().unwrap();
    let write = |refines: Option<Refined>, name: &str| {
        let c = KeypointNetConfig::new()
            .with_height(64)
            .with_width(64)
            .with_backbone(Some(Backbone::Efficientnet(LiteVariant::Lite0)))
            .with_refines(refines)
            .with_lite_stages(Some(boneage_nn::efficientnet::STAGES_TO_16TH));
        let manifest = crate::manifest_of(
            boneage_core::NetKind::Keypoints,
            serde_json::to_value(&c).unwrap(),
            [64, 64],
        );
        let path = dir.path().join(name);
        save(&c.init(&d), &manifest, &path).unwrap();
        path
    };
    let one = write(Some(Refined::Capitate), "capitate.safetensors");
    let three = write(None, "keypoints.safetensors");
    let err = Locator::load(&one, &d).err().expect("refused").to_string();
    assert!(
        err.contains("capitate net") && err.contains("capitate.json"),
        "{err}"
    );
    let err = RefineNet::load(&three, Refined::Capitate, &d)
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("key-point net (three points)"), "{err}");
    let err = RefineNet::load(&one, Refined::Thumb, &d)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("holds the capitate net") && err.contains("thumb net"),
        "{err}"
    );
    let net = RefineNet::load(&one, Refined::Capitate, &d).unwrap();
    let c = net.refine(&film, &k);
    // Each look answers inside its field (half of 0.4 span across the diagonal).
    let reach = 2.0 * 0.2 * 2f64.sqrt() * 200.0;
    assert!(c.dist(k.capitate) <= reach + 1e-6, "{c:?}");
}
