//! The phantom's ground truth against its own pictures, maturity, determinism.

use boneage_core::Sex;
use boneage_core::io::read_radiograph;
use boneage_core::phantom::{
    AgePlan, Maturity, PhantomConfig, generate, image_rng, maturity::Group, write_dataset,
};

fn config() -> PhantomConfig {
    PhantomConfig {
        width: 208,
        height: 256,
        ..PhantomConfig::default()
    }
}

#[test]
fn key_points_lie_inside_the_mask_and_the_image() {
    for i in 0..40 {
        let p = generate(&config(), &mut image_rng(11, i)).unwrap();
        let (w, h) = (p.image.width(), p.image.height());
        for (name, k) in [
            ("fingertip", p.keypoints.fingertip),
            ("thumb", p.keypoints.thumb),
            ("capitate", p.keypoints.capitate),
        ] {
            assert!(
                k.x >= 0.0 && k.y >= 0.0 && k.x < w as f64 && k.y < h as f64,
                "#{i} {name} {k:?} outside"
            );
            let inside = p.mask[k.y as usize * w + k.x as usize] == 1;
            assert!(inside, "#{i}: {name} at {k:?} is outside the hand mask");
        }
    }
}

#[test]
fn mask_covers_the_bright_soft_tissue() {
    for i in 0..30 {
        let p = generate(&config(), &mut image_rng(5, i)).unwrap();
        let px = p.image.as_slice();
        let (mut sin, mut nin, mut sout, mut nout) = (0.0, 0, 0.0, 0);
        for (v, &m) in px.iter().zip(&p.mask) {
            if m == 1 {
                sin += *v as f64;
                nin += 1;
            } else {
                sout += *v as f64;
                nout += 1;
            }
        }
        let frac = nin as f64 / px.len() as f64;
        assert!(
            (0.08..0.75).contains(&frac),
            "#{i}: mask covers {frac:.2} of the image"
        );
        let (mean_in, mean_out) = (sin / nin as f64, sout / nout as f64);
        // Outside can hold bright collimator shadows and markers, so compare the
        // hand with the exposed film right around it instead of with everything.
        let ring = ring_mean(px, &p.mask, p.image.width(), p.image.height());
        if p.truth.inverted {
            assert!(
                mean_in < ring,
                "#{i} inverted: hand {mean_in:.3} vs surround {ring:.3}"
            );
        } else {
            assert!(
                mean_in > ring + 0.05,
                "#{i}: hand {mean_in:.3} vs surround {ring:.3} (all outside {mean_out:.3})"
            );
        }
    }
}

/// Mean of the pixels within 3 pixels outside the mask's edge.
fn ring_mean(px: &[f32], mask: &[u8], w: usize, h: usize) -> f64 {
    let (mut s, mut n) = (0.0, 0);
    for y in 0..h {
        for x in 0..w {
            if mask[y * w + x] == 1 {
                continue;
            }
            let near = (y.saturating_sub(3)..(y + 4).min(h))
                .any(|yy| (x.saturating_sub(3)..(x + 4).min(w)).any(|xx| mask[yy * w + xx] == 1));
            if near {
                s += px[y * w + x] as f64;
                n += 1;
            }
        }
    }
    s / n.max(1) as f64
}

#[test]
fn mirrored_flag_matches_thumb_side() {
    let mut seen = [false; 2];
    for i in 0..60 {
        let p = generate(&config(), &mut image_rng(3, i)).unwrap();
        assert_eq!(p.keypoints.thumb_on_right(), !p.truth.mirrored, "#{i}");
        seen[p.truth.mirrored as usize] = true;
    }
    assert!(seen[0] && seen[1], "60 phantoms should include both hands");
    let forced = PhantomConfig {
        mirrored: Some(true),
        rotation_deg: Some(40.0),
        ..config()
    };
    assert!(
        !generate(&forced, &mut image_rng(1, 0))
            .unwrap()
            .keypoints
            .thumb_on_right()
    );
}

#[test]
fn rotation_turns_the_hand_axis() {
    for angle in [-45.0, -10.0, 0.0, 30.0] {
        let c = PhantomConfig {
            rotation_deg: Some(angle),
            mirrored: Some(false),
            nuisances: false,
            variation: false,
            ..config()
        };
        let p = generate(&c, &mut image_rng(2, 0)).unwrap();
        let axis = p.keypoints.fingertip - p.keypoints.capitate;
        // Upright is (0, -1); a positive angle turns it counter-clockwise on screen.
        let measured = (-axis.x).atan2(-axis.y).to_degrees();
        assert!(
            (measured - angle).abs() < 0.5,
            "asked {angle}, axis at {measured}"
        );
    }
}

#[test]
fn maturity_is_monotone() {
    for sex in [Sex::Female, Sex::Male] {
        let mut prev = Maturity::at(0.0, sex);
        for month in 1..=240 {
            let m = Maturity::at(month as f64, sex);
            assert!(
                m.visible_carpals() >= prev.visible_carpals(),
                "{sex:?} {month}: carpals fell"
            );
            assert!(m.scale >= prev.scale, "{sex:?} {month}: hand shrank");
            for (a, b) in m.carpals.iter().zip(&prev.carpals) {
                assert!(a >= b, "{sex:?} {month}: a carpal shrank");
            }
            assert!(m.sesamoid >= prev.sesamoid);
            for g in [
                Group::Radius,
                Group::Ulna,
                Group::Metacarpal,
                Group::Proximal,
                Group::Middle,
                Group::Distal,
            ] {
                let (e, f) = (m.epiphysis(g), prev.epiphysis(g));
                assert!(
                    e.width >= f.width,
                    "{sex:?} {month} {g:?}: epiphysis narrowed"
                );
                assert!(
                    e.gap <= f.gap,
                    "{sex:?} {month} {g:?}: growth plate reopened"
                );
            }
            prev = m;
        }
        assert_eq!(Maturity::at(0.0, sex).visible_carpals(), 0);
        assert_eq!(Maturity::at(230.0, sex).visible_carpals(), 8);
        assert_eq!(
            Maturity::at(230.0, sex).epiphysis(Group::Radius).gap,
            0.0,
            "adults are fused"
        );
    }
    // Girls mature earlier: at the same bone age in puberty, more fusion.
    let f = Maturity::at(160.0, Sex::Female)
        .epiphysis(Group::Distal)
        .fusion;
    let m = Maturity::at(160.0, Sex::Male)
        .epiphysis(Group::Distal)
        .fusion;
    assert!(f > m, "female {f} vs male {m}");
    // Carpals appear in their order.
    for age in [2.5, 30.0, 50.0, 70.0, 100.0] {
        let c = Maturity::at(age, Sex::Male).carpals;
        for w in c.windows(2) {
            assert!(w[0] >= w[1] || w[0] > 0.0, "order broken at {age}: {c:?}");
        }
    }
}

#[test]
fn older_skeletons_carry_more_bone() {
    // Same film, same individual: only the age differs. The carpus (a disk around
    // the capitate) must get brighter with age as carpals ossify and grow.
    let mut prev = 0.0;
    for age in [6.0, 36.0, 96.0, 156.0, 216.0] {
        let c = PhantomConfig {
            age_months: Some(age),
            sex: Some(Sex::Male),
            nuisances: false,
            variation: false,
            ..config()
        };
        let p = generate(&c, &mut image_rng(9, 0)).unwrap();
        let k = p.keypoints;
        let r = 0.2 * k.span();
        let (w, h) = (p.image.width(), p.image.height());
        let (mut s, mut n) = (0.0, 0);
        for y in 0..h {
            for x in 0..w {
                let q = boneage_core::geometry::Point::new(x as f64 + 0.5, y as f64 + 0.5);
                if q.dist(k.capitate) < r {
                    s += p.image.get(x, y) as f64;
                    n += 1;
                }
            }
        }
        let mean = s / n as f64;
        assert!(mean > prev, "age {age}: mean {mean:.4} not above {prev:.4}");
        prev = mean;
    }
}

#[test]
fn bad_config_is_refused_before_drawing() {
    for c in [
        PhantomConfig {
            width: 10,
            ..config()
        },
        PhantomConfig {
            age_months: Some(300.0),
            ..config()
        },
        PhantomConfig {
            mirror_prob: 1.5,
            ..config()
        },
    ] {
        assert!(generate(&c, &mut image_rng(0, 0)).is_err());
    }
}

#[test]
fn dataset_is_byte_identical_for_a_seed_and_readable() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let c = config();
    write_dataset(a.path(), 6, 77, &c, AgePlan::Drawn, &|| {}).unwrap();
    write_dataset(b.path(), 6, 77, &c, AgePlan::Drawn, &|| {}).unwrap();
    let mut names: Vec<_> = walk(a.path());
    names.sort();
    assert!(
        names.iter().any(|n| n == "labels.csv") && names.iter().any(|n| n == "masks/ph00006.png")
    );
    for n in &names {
        let (x, y) = (
            std::fs::read(a.path().join(n)).unwrap(),
            std::fs::read(b.path().join(n)).unwrap(),
        );
        assert!(x == y, "{n} differs between two runs with the same seed");
    }
    let ds = boneage_core::dataset::Dataset::open_dir(a.path()).unwrap();
    assert_eq!(ds.samples.len(), 6);
    let kp = boneage_core::keypoints::read_csv(&a.path().join("keypoints.csv")).unwrap();
    for s in &ds.samples {
        let img = read_radiograph(ds.image_path(s)).unwrap();
        assert_eq!((img.pixels.width(), img.pixels.height()), (208, 256));
        let k = kp[&s.id];
        let mask = read_radiograph(a.path().join("masks").join(format!("{}.png", s.id))).unwrap();
        assert_eq!(
            mask.pixels
                .get(k.capitate.x as usize, k.capitate.y as usize),
            1.0
        );
    }
    let other = tempfile::tempdir().unwrap();
    write_dataset(other.path(), 1, 78, &c, AgePlan::Drawn, &|| {}).unwrap();
    assert_ne!(
        std::fs::read(a.path().join("ph00001.png")).unwrap(),
        std::fs::read(other.path().join("ph00001.png")).unwrap()
    );
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()).into_iter().map(|n| format!("{name}/{n}")));
        } else {
            out.push(name);
        }
    }
    out
}

#[test]
fn age_sweep_covers_both_sexes_evenly() {
    let dir = tempfile::tempdir().unwrap();
    let c = PhantomConfig {
        nuisances: false,
        ..config()
    };
    write_dataset(dir.path(), 6, 1, &c, AgePlan::Sweep, &|| {}).unwrap();
    let ds = boneage_core::dataset::Dataset::open_dir(dir.path()).unwrap();
    let got: Vec<(f64, Sex)> = ds
        .samples
        .iter()
        .map(|s| (s.boneage_months, s.sex))
        .collect();
    assert_eq!(
        got,
        vec![
            (1.0, Sex::Female),
            (115.0, Sex::Female),
            (228.0, Sex::Female),
            (1.0, Sex::Male),
            (115.0, Sex::Male),
            (228.0, Sex::Male)
        ]
    );
}
