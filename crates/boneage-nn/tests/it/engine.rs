//! The training engine: resume equals an uninterrupted run, refusals, the
//! learning-rate schedule, augmentation and the example cache.

use std::path::Path;
use std::sync::Arc;

use boneage_core::phantom::{PhantomConfig, generate, image_rng};
use boneage_nn::age::AgeNetConfig;
use boneage_nn::burn::prelude::*;
use boneage_nn::data::{Augment, Example, Examples, Target, augment};
use boneage_nn::inputs::letterbox;
use boneage_nn::tasks::AgeTask;
use boneage_nn::train::{RunSpec, Schedule, Silent, TrainConfig, TrainError, fit};

const H: usize = 32;
const W: usize = 24;

/// `n` phantoms letterboxed to 32x24 with ages, key points and masks available.
fn examples(n: usize, offset: u64) -> Examples {
    let cfg = PhantomConfig {
        width: 96,
        height: 128,
        ..PhantomConfig::default()
    };
    let items = (0..n)
        .map(|i| {
            let p = generate(&cfg, &mut image_rng(5, offset + i as u64)).unwrap();
            let (img, _) = letterbox(&p.image, W, H);
            Example {
                id: format!("p{i}"),
                male: i % 2 == 0,
                pixels: img.to_u8(),
                target: Target::Age(p.age_months as f32),
            }
        })
        .collect();
    Examples {
        height: H,
        width: W,
        items,
    }
}

fn task() -> AgeTask {
    AgeTask {
        config: AgeNetConfig::new(H, W)
            .with_features(vec![4, 8])
            .with_hidden(vec![16])
            .with_dropout(0.3)
            .with_global_pool(true)
            .with_sex_input(true),
        pretrained: None,
    }
}

fn spec(dir: &Path, train: &Arc<Examples>, val: &Arc<Examples>) -> RunSpec {
    RunSpec {
        dir: dir.to_path_buf(),
        train: Arc::clone(train),
        val: Arc::clone(val),
        config: TrainConfig {
            epochs: 3,
            batch_size: 4,
            lr_start: 1e-3,
            lr_end: 1e-5,
            schedule: Schedule::Cosine,
            seed: 11,
            recalibrate_bn: true,
            adam_epsilon: 1e-5,
            augment: Augment {
                zoom: 0.1,
                rotation_deg: 10.0,
                shift: 0.05,
                flip: false,
                ..Augment::NONE
            },
        },
        trained_on: "test phantoms".into(),
        sex: Some(boneage_core::Cohort::Mixed),
        region: None,
        canvas: None,
        resume: false,
        stop_after: None,
        init_from: None,
    }
}

fn device() -> Device {
    Device::flex().autodiff()
}

/// Each tensor's bytes in a run's `model.safetensors`, by name (the file's
/// header order is not part of the comparison).
fn tensors(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let data = &bytes[8 + n..];
    header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let o = &v["data_offsets"];
            let (s, e) = (
                o[0].as_u64().unwrap() as usize,
                o[1].as_u64().unwrap() as usize,
            );
            (k.clone(), data[s..e].to_vec())
        })
        .collect()
}

/// A killed run resumed from its checkpoint ends with the same weights, the same
/// per-epoch metrics and the same log as a run that was never interrupted.
#[test]
fn resume_equals_uninterrupted() {
    let _rng = crate::rng_lock();
    let train = Arc::new(examples(10, 0));
    let val = Arc::new(examples(4, 100));
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let full = fit(&task(), &spec(&a, &train, &val), &device(), &mut Silent).unwrap();
    assert!(full.finished);
    assert_eq!(full.records.len(), 3);

    let mut first = spec(&b, &train, &val);
    first.stop_after = Some(1);
    let part = fit(&task(), &first, &device(), &mut Silent).unwrap();
    assert!(!part.finished);
    assert_eq!(part.records.len(), 1);
    let mut rest = spec(&b, &train, &val);
    rest.resume = true;
    let resumed = fit(&task(), &rest, &device(), &mut Silent).unwrap();
    assert!(resumed.finished);

    let strip = |r: &[boneage_nn::train::EpochRecord]| {
        r.iter()
            .map(|e| (e.epoch, e.lr, e.train_loss, e.val_loss, e.val.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(&full.records), strip(&resumed.records));
    let (ta, tb) = (tensors(&a), tensors(&b));
    assert_eq!(ta.len(), tb.len());
    let differ: Vec<&String> = ta
        .iter()
        .filter(|(k, v)| tb.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        differ.is_empty(),
        "resumed weights differ from the uninterrupted run's: {differ:?}"
    );
    let log = std::fs::read_to_string(b.join("log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    // Only the last two checkpoints are kept.
    let kept: Vec<_> = std::fs::read_dir(b.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
}

#[test]
fn a_run_refuses_to_overwrite_or_resume_with_other_settings() {
    let _rng = crate::rng_lock();
    let train = Arc::new(examples(4, 0));
    let val = Arc::new(examples(2, 100));
    let tmp = tempfile::tempdir().unwrap();
    let mut s = spec(tmp.path(), &train, &val);
    s.stop_after = Some(1);
    fit(&task(), &s, &device(), &mut Silent).unwrap();

    // Starting again in the same folder without --resume.
    let again = fit(
        &task(),
        &spec(tmp.path(), &train, &val),
        &device(),
        &mut Silent,
    );
    let msg = again.err().unwrap().to_string();
    assert!(msg.contains("already holds a run"), "{msg}");

    // Resuming with another seed.
    let mut other = spec(tmp.path(), &train, &val);
    other.resume = true;
    other.config.seed = 12;
    let msg = fit(&task(), &other, &device(), &mut Silent)
        .err()
        .unwrap()
        .to_string();
    assert!(
        msg.contains("cannot resume") && msg.contains("train"),
        "{msg}"
    );

    // A corrupted checkpoint is named in the error.
    let ck = tmp.path().join("checkpoints/epoch-0001/model.bpk");
    std::fs::write(&ck, b"not a burnpack").unwrap();
    let mut s = spec(tmp.path(), &train, &val);
    s.resume = true;
    match fit(&task(), &s, &device(), &mut Silent) {
        Err(TrainError::Checkpoint { path, detail }) => {
            assert_eq!(path, ck, "{detail}")
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a corrupted checkpoint was accepted"),
    }

    // Examples of the wrong size.
    let mut small = (*train).clone();
    small.height = 16;
    let s = spec(&tmp.path().join("x"), &Arc::new(small), &val);
    let msg = fit(&task(), &s, &device(), &mut Silent)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("the network takes 32x24"), "{msg}");
}

#[test]
fn learning_rate_falls_from_start_to_end() {
    let _rng = crate::rng_lock();
    let mut c = spec(
        Path::new("."),
        &Arc::new(examples(1, 0)),
        &Arc::new(examples(1, 1)),
    )
    .config;
    c.epochs = 30;
    assert!((c.lr(0, 300, 0) - 1e-3).abs() < 1e-12);
    assert!((c.lr(299, 300, 29) - 1e-5).abs() < 1e-12);
    assert!(c.lr(150, 300, 15) < 6e-4 && c.lr(150, 300, 15) > 4e-4);
    c.schedule = Schedule::Step;
    let lrs: Vec<f64> = [0, 9, 10, 19, 20, 29].map(|e| c.lr(0, 1, e)).to_vec();
    let want = [1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5];
    for (a, b) in lrs.iter().zip(want) {
        assert!((a - b).abs() < 1e-12, "{lrs:?}");
    }
}

/// Augmentation moves key points and masks with the image: a bright square
/// drawn at a key point is still under the moved key point, and the moved mask
/// covers it.
#[test]
fn augmentation_moves_targets_with_the_image() {
    let _rng = crate::rng_lock();
    let (w, h) = (40usize, 50usize);
    let (px, py) = (12usize, 30usize);
    let mut pixels = vec![0u8; w * h];
    let mut mask = vec![0u8; w * h];
    for y in py - 2..py + 3 {
        for x in px - 2..px + 3 {
            pixels[y * w + x] = 255;
            mask[y * w + x] = 1;
        }
    }
    let c = |v: usize, n: usize| (v as f32 + 0.5) / n as f32 * 2.0 - 1.0;
    let point = [c(px, w), c(py, h), 0.0, 0.0, 0.5, 0.5];
    let ex = |target| Example {
        id: "sq".into(),
        male: true,
        pixels: pixels.clone(),
        target,
    };
    let set = Examples {
        height: h,
        width: w,
        items: vec![
            ex(Target::Keypoints(point.to_vec())),
            ex(Target::Mask(mask.clone())),
        ],
    };
    let aug = Augment {
        zoom: 0.2,
        rotation_deg: 30.0,
        shift: 0.1,
        flip: true,
        ..Augment::NONE
    };
    let mut moved = 0;
    for seed in 0..20u64 {
        let b = set.batch(&[0, 1], &aug, &[seed, seed]);
        let img = &b.images[..w * h];
        let (kx, ky) = (
            ((b.targets[0] + 1.0) / 2.0 * w as f32) as usize,
            ((b.targets[1] + 1.0) / 2.0 * h as f32) as usize,
        );
        assert!(
            img[ky * w + kx] > 0.5,
            "seed {seed}: the key point moved to ({kx}, {ky}) but the square did not"
        );
        let m = &b.targets[6..6 + w * h];
        assert!(
            m[ky * w + kx] > 0.5,
            "seed {seed}: mask not under the square"
        );
        let bright = img.iter().filter(|&&v| v > 0.0).count();
        let inside = img
            .iter()
            .zip(m)
            .filter(|&(&v, &mv)| v > 0.0 && mv > 0.5)
            .count();
        assert!(
            inside * 10 >= bright * 7,
            "seed {seed}: {inside} of {bright}"
        );
        moved += ((kx, ky) != (px, py)) as usize;
        // The same seeds give the same batch.
        assert_eq!(b, set.batch(&[0, 1], &aug, &[seed, seed]));
    }
    assert!(
        moved >= 15,
        "augmentation hardly moved anything ({moved} of 20)"
    );
    let plain = set.batch(&[0], &Augment::NONE, &[0]);
    assert_eq!(plain.targets, point.to_vec());
}

/// A data set of one girl's film of `w` × `h` `pixels` with its `target`.
fn one_film(w: usize, h: usize, pixels: Vec<u8>, target: Target) -> Examples {
    Examples {
        height: h,
        width: w,
        items: vec![Example {
            id: "film".into(),
            male: false,
            pixels,
            target,
        }],
    }
}

/// The key-point locator's augmentation (any turn, shrinking, film-like pixels)
/// keeps every key point in view, fills the uncovered border instead of leaving it
/// black, and shrinks the image at least sometimes.
#[test]
fn wild_augmentation_keeps_key_points_in_view() {
    let _rng = crate::rng_lock();
    let (w, h) = (40usize, 50usize);
    // A dark film with a bright hand-sized block; key points at its corners.
    let mut pixels = vec![30u8; w * h];
    for y in 5..45 {
        for x in 4..36 {
            pixels[y * w + x] = 200;
        }
    }
    let c = |v: usize, n: usize| (v as f32 + 0.5) / n as f32 * 2.0 - 1.0;
    let points = [c(20, w), c(6, h), c(5, w), c(30, h), c(22, w), c(40, h)];
    let set = one_film(w, h, pixels, Target::Keypoints(points.to_vec()));
    let aug = augment::KEYPOINTS_WILD;
    let (mut grey_corner, mut small) = (0, 0);
    for seed in 0..40u64 {
        let b = set.batch(&[0], &aug, &[seed]);
        for v in &b.targets {
            assert!(
                v.abs() <= 0.97,
                "seed {seed}: a key point left the view: {:?}",
                b.targets
            );
        }
        // A corner is uncovered by any turn or shrinking: not always black.
        grey_corner += (b.images[0] > -0.95) as usize;
        let spread = (b.targets[0] - b.targets[4]).hypot(b.targets[1] - b.targets[5]);
        let plain = (points[0] - points[4]).hypot(points[1] - points[5]);
        small += (spread < 0.7 * plain) as usize;
        assert_eq!(
            b,
            set.batch(&[0], &aug, &[seed]),
            "seed {seed}: not reproducible"
        );
    }
    assert!(
        grey_corner >= 10,
        "the border stayed black: {grey_corner} of 40"
    );
    assert!(small >= 5, "hardly ever shrunk: {small} of 40");
}

/// The wild augmentation moves a mask with its hand (`train segment --wild`): inside
/// the warped mask the film shows the hand's uniform block, not its border.
#[test]
fn wild_augmentation_moves_masks_with_the_hand() {
    let _rng = crate::rng_lock();
    let (w, h) = (40usize, 50usize);
    let mut pixels = vec![30u8; w * h];
    let mut mask = vec![0u8; w * h];
    for y in 8..42 {
        for x in 8..32 {
            pixels[y * w + x] = 200;
            mask[y * w + x] = 1;
        }
    }
    let set = one_film(w, h, pixels, Target::Mask(mask.clone()));
    let aug = augment::SEGMENT_WILD;
    let plain = mask.iter().filter(|&&v| v == 1).count() as f32;
    let (mut uniform, mut shrunk) = (0, 0);
    for seed in 0..40u64 {
        let b = set.batch(&[0], &aug, &[seed]);
        let m = |x: usize, y: usize| b.targets[y * w + x] > 0.5;
        let area = b.targets.iter().filter(|&&v| v > 0.5).count() as f32;
        assert!(
            area > 0.0 && area <= plain * 1.25,
            "seed {seed}: mask area {area}"
        );
        shrunk += (area < 0.6 * plain) as usize;
        // The image under the mask's interior (away from its edge, where the image
        // is interpolated and the mask is not) is one grey level, up to noise.
        let inside: Vec<f32> = (1..h - 1)
            .flat_map(|y| (1..w - 1).map(move |x| (x, y)))
            .filter(|&(x, y)| m(x, y) && m(x - 1, y) && m(x + 1, y) && m(x, y - 1) && m(x, y + 1))
            .map(|(x, y)| b.images[y * w + x])
            .collect();
        if inside.len() < 4 {
            continue;
        }
        let mean = inside.iter().sum::<f32>() / inside.len() as f32;
        let sd =
            (inside.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / inside.len() as f32).sqrt();
        uniform += (sd < 0.15) as usize;
    }
    // A marker may fall on the hand now and then; a mask that did not follow the
    // hand would straddle its edge nearly always.
    assert!(
        uniform >= 28,
        "the mask left the hand: uniform in {uniform} of 40"
    );
    assert!(shrunk >= 5, "hardly ever shrunk: {shrunk} of 40");
}

/// The framed-film augmentation (`train segment --frames`) draws the same film as
/// `--films` with the same seed, then frames it: the mask only ever loses pixels (the
/// wrist cut by the film's edge), never gains any, and the film's surroundings change
/// on most draws (a field of another grey, the film's edge).
#[test]
fn framed_augmentation_keeps_masks_true_and_frames_the_film() {
    let _rng = crate::rng_lock();
    let (w, h) = (64usize, 80usize);
    let mut pixels = vec![30u8; w * h];
    let mut mask = vec![0u8; w * h];
    for y in 12..70 {
        for x in 14..50 {
            pixels[y * w + x] = 200;
            mask[y * w + x] = 1;
        }
    }
    let set = one_film(w, h, pixels, Target::Mask(mask));
    let (mut cut, mut framed) = (0, 0);
    for seed in 0..40u64 {
        let films = set.batch(&[0], &augment::SEGMENT_FILMS, &[seed]);
        let frames = set.batch(&[0], &augment::SEGMENT_FRAMES, &[seed]);
        for (i, (&a, &b)) in films.targets.iter().zip(&frames.targets).enumerate() {
            assert!(b <= a, "seed {seed}: pixel {i} became hand");
        }
        let area = |t: &[f32]| t.iter().filter(|&&v| v > 0.5).count();
        cut += (area(&frames.targets) < area(&films.targets)) as usize;
        let outside_changed = (0..w * h)
            .filter(|&i| films.targets[i] < 0.5)
            .any(|i| (films.images[i] - frames.images[i]).abs() > 0.05);
        framed += outside_changed as usize;
    }
    assert!(cut >= 3, "the wrist hardly ever cut: {cut} of 40");
    assert!(framed >= 20, "hardly ever framed: {framed} of 40");
}

/// A film changed as another source sends it (`train verifier --films`) keeps its
/// size, depends only on its seed, keeps the bone brighter than the soft tissue
/// beside it (never inverted: the pipeline turns inverted films back before the
/// verifier reads them), and differs from the film on most seeds.
#[test]
fn a_film_as_sent_is_never_inverted_and_depends_on_its_seed() {
    use boneage_core::GrayImage;
    use boneage_core::image::Mask;
    let (w, h) = (60usize, 90usize);
    let mut img = GrayImage::filled(w, h, 0.1);
    let mut hand = Mask::new(w, h);
    for y in 10..80 {
        for x in 15..45 {
            img.set(x, y, if (25..35).contains(&x) { 0.8 } else { 0.4 });
            hand.set(x, y, true);
        }
    }
    let mut changed = 0;
    for seed in 0..30u64 {
        let sent = boneage_nn::data::film_as_sent(&img, &hand, seed);
        assert_eq!((sent.width(), sent.height()), (w, h));
        assert!(
            sent == boneage_nn::data::film_as_sent(&img, &hand, seed),
            "seed {seed}: two draws differ"
        );
        // Bone (the middle column) against soft tissue in the rows the wrist cut
        // never reaches; the marker may cover a few pixels, so medians.
        let median = |xs: std::ops::Range<usize>| {
            let mut v: Vec<f32> = (15..50)
                .flat_map(|y| xs.clone().map(move |x| (x, y)))
                .map(|(x, y)| sent.get(x, y))
                .collect();
            v.sort_by(f32::total_cmp);
            v[v.len() / 2]
        };
        assert!(
            median(26..34) > median(16..24),
            "seed {seed}: the bone is no longer the brighter"
        );
        changed += (sent != img) as usize;
    }
    assert!(changed >= 25, "hardly ever changed: {changed} of 30");
}

#[test]
fn example_cache_round_trips_and_refuses_another_source() {
    let _rng = crate::rng_lock();
    let ex = examples(3, 0);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("cache.bin");
    ex.save(&path, "phantoms seed 5").unwrap();
    assert_eq!(Examples::load(&path, "phantoms seed 5").unwrap(), ex);
    let msg = Examples::load(&path, "other").unwrap_err().to_string();
    assert!(
        msg.contains("cache.bin") && msg.contains("made from"),
        "{msg}"
    );
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    let msg = Examples::load(&path, "phantoms seed 5")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("truncated"), "{msg}");
}
