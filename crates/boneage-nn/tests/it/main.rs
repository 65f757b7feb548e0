//! Tests of the networks and losses on the flex CPU backend.

use boneage_nn::age::{AgeHead, AgeNetConfig, scale_age, softmax_expectation, unscale_age};
use boneage_nn::blocks::elu;
use boneage_nn::burn::prelude::*;
use boneage_nn::keypoints::KeypointNetConfig;
use boneage_nn::loss::{bce_minus_log_jaccard, bce_with_logits, mae, mse, soft_jaccard};
use boneage_nn::unet::UNetConfig;

fn device() -> Device {
    Device::flex()
}

/// flex seeds one global generator, so every test holds this lock: a test that
/// draws from it (weight init, dropout) then gets the same draws whatever else runs.
static DEVICE_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    DEVICE_RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn close(a: f32, b: f32, tol: f32) -> bool {
    (a - b).abs() <= tol
}

fn scalar(t: Tensor<1>) -> f32 {
    t.into_data().try_to_vec::<f32>().unwrap()[0]
}

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

mod overfit {
    //! Each network memorises a handful of phantom samples: its loss falls tenfold
    //! within a bounded number of Adam steps. Small enough for CI.

    use boneage_core::ops::resize_area;
    use boneage_core::phantom::{PhantomConfig, generate, image_rng};
    use boneage_nn::age::{AgeNetConfig, scale_age};
    use boneage_nn::burn::optim::{AdamConfig, GradientsParams};
    use boneage_nn::burn::prelude::*;
    use boneage_nn::keypoints::KeypointNetConfig;
    use boneage_nn::loss::{bce_minus_log_jaccard, mae, mse};
    use boneage_nn::unet::UNetConfig;

    const H: usize = 64;
    const W: usize = 48;

    struct Batch {
        images: Tensor<4>,
        masks: Tensor<4>,
        keypoints: Tensor<2>,
        ages: Tensor<2>,
    }

    /// `n` phantoms at 64x48 with masks, key points in [−1, 1] and ages.
    fn phantoms(n: usize, device: &Device) -> Batch {
        let cfg = PhantomConfig {
            width: 192,
            height: 256,
            ..PhantomConfig::default()
        };
        let (mut img, mut msk, mut kp, mut age) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..n {
            let p = generate(&cfg, &mut image_rng(99, i as u64)).unwrap();
            img.extend(resize_area(&p.image, W, H).into_vec());
            let m = boneage_core::image::Mask::from_vec(192, 256, p.mask.clone())
                .unwrap()
                .to_image();
            msk.extend(
                resize_area(&m, W, H)
                    .as_slice()
                    .iter()
                    .map(|&v| (v > 0.5) as u8 as f32),
            );
            for pt in [
                p.keypoints.fingertip,
                p.keypoints.thumb,
                p.keypoints.capitate,
            ] {
                kp.push((pt.x / 192.0 * 2.0 - 1.0) as f32);
                kp.push((pt.y / 256.0 * 2.0 - 1.0) as f32);
            }
            age.push(p.age_months as f32);
        }
        Batch {
            images: Tensor::<1>::from_floats(img.as_slice(), device).reshape([n, 1, H, W]),
            masks: Tensor::<1>::from_floats(msk.as_slice(), device).reshape([n, 1, H, W]),
            keypoints: Tensor::<1>::from_floats(kp.as_slice(), device).reshape([n, 6]),
            ages: Tensor::<1>::from_floats(age.as_slice(), device).reshape([n, 1]),
        }
    }

    fn value(t: Tensor<1>) -> f32 {
        t.into_data().try_to_vec::<f32>().unwrap()[0]
    }

    /// Runs Adam on `loss_of(model)` until the loss is 10x below its first value;
    /// returns (first, best, steps).
    fn fit<M: Module>(
        mut model: M,
        steps: usize,
        lr: f64,
        loss_of: impl Fn(&M) -> Tensor<1>,
    ) -> (f32, f32, usize) {
        let mut optim = AdamConfig::new().init();
        let first = value(loss_of(&model));
        let mut best = first;
        for step in 0..steps {
            let loss = loss_of(&model);
            let v = value(loss.clone());
            best = best.min(v);
            if best < first / 10.0 {
                return (first, best, step);
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
        }
        (first, best, steps)
    }

    /// A seeded training device (tests hold [`crate::rng_lock`] while they use it);
    /// the step budgets leave wide margins (measured: 3–8 steps of 400 for the
    /// regressors, 36 of 150 for the U-Net).
    fn seeded() -> Device {
        let d = Device::flex().autodiff();
        d.seed(7);
        d
    }

    #[test]
    fn unet_memorises_masks() {
        let _rng = crate::rng_lock();
        let d = seeded();
        let b = phantoms(2, &d);
        let net = UNetConfig::new().with_features(vec![8, 16, 32]).init(&d);
        let (first, best, steps) = fit(net, 150, 1e-2, |m| {
            bce_minus_log_jaccard(m.forward(b.images.clone()), b.masks.clone())
        });
        eprintln!("U-Net BCE - log J: {first:.4} -> {best:.4} in {steps} steps");
        assert!(
            best < first / 10.0,
            "U-Net loss {first} -> {best} in {steps} steps"
        );
    }

    #[test]
    fn keypoint_net_memorises_points() {
        let _rng = crate::rng_lock();
        let d = seeded();
        let b = phantoms(4, &d);
        let net = KeypointNetConfig::new()
            .with_height(H)
            .with_width(W)
            .with_features(vec![8, 16, 16])
            .with_hidden(vec![64, 32])
            .with_dropout(0.0)
            .init(&d);
        let (first, best, steps) = fit(net, 200, 1e-3, |m| {
            mse(m.forward(b.images.clone()), b.keypoints.clone())
        });
        eprintln!("key-point MSE: {first:.4} -> {best:.4} in {steps} steps");
        assert!(
            best < first / 10.0,
            "key-point MSE {first} -> {best} in {steps} steps"
        );
    }

    #[test]
    fn age_net_memorises_ages() {
        let _rng = crate::rng_lock();
        let d = seeded();
        let b = phantoms(4, &d);
        let net = AgeNetConfig::new(H, W)
            .with_features(vec![8, 16, 16, 32])
            .with_hidden(vec![32, 32])
            .with_dropout(0.0)
            .with_global_pool(true)
            .init(&d);
        let target = scale_age(b.ages.clone());
        let (first, best, steps) = fit(net, 300, 1e-3, |m| {
            mae(m.forward(b.images.clone(), None).raw, target.clone())
        });
        eprintln!("age MAE (scaled): {first:.4} -> {best:.4} in {steps} steps");
        assert!(
            best < first / 10.0,
            "age MAE {first} -> {best} in {steps} steps"
        );
    }
}

mod weights {
    use boneage_nn::age::{AgeHead, AgeNetConfig};
    use boneage_nn::burn::prelude::*;
    use boneage_nn::weights::{Manifest, WeightsError, load, manifest_path, save};

    fn config(features: Vec<usize>) -> AgeNetConfig {
        AgeNetConfig::new(64, 48)
            .with_head(AgeHead::Classification { classes: 240 })
            .with_features(features)
            .with_hidden(vec![16, 16])
    }

    fn manifest(c: &AgeNetConfig) -> Manifest {
        Manifest {
            version: boneage_nn::weights::MANIFEST_VERSION,
            net: "age".into(),
            config: serde_json::to_value(c).unwrap(),
            input: [64, 48],
            normalization: "hand mask, percentile window 1-99.5, CLAHE 8x8 clip 2".into(),
            sex: Some("F".into()),
            region: Some("C".into()),
            trained_on: "test".into(),
            metrics: [("val_mae_months".to_string(), 12.5)].into(),
        }
    }

    #[test]
    fn save_then_load_gives_the_same_outputs() {
        let _rng = crate::rng_lock();
        let d = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("age_f_c.safetensors");
        let c = config(vec![4, 8, 8]);
        let net = c.init(&d);
        save(&net, &manifest(&c), &path).unwrap();
        assert!(manifest_path(&path).is_file());
        let x = Tensor::<4>::random(
            [2, 1, 64, 48],
            boneage_nn::burn::tensor::Distribution::Default,
            &d,
        );
        let want = net
            .forward(x.clone(), None)
            .months
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let loaded = load(c.init(&d), &path, &manifest(&c)).unwrap();
        let got = loaded
            .forward(x, None)
            .months
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(want, got);
    }

    #[test]
    fn a_folder_of_age_models_loads_by_manifest_and_ensembles() {
        use boneage_core::GrayImage;
        use boneage_core::io::Sex;
        use boneage_core::registration::Region;
        use boneage_nn::assess::{AgeModel, AgeModels, Cohort, RegionCrops};
        let _rng = crate::rng_lock();
        let d = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        // A female region-C classifier and a mixed region-A regressor (sex input).
        let female = config(vec![4, 8, 8]);
        save(
            &female.init(&d),
            &manifest(&female),
            &dir.path().join("C-cls-F.safetensors"),
        )
        .unwrap();
        let mixed = AgeNetConfig::new(64, 48)
            .with_features(vec![4, 8, 8])
            .with_hidden(vec![16])
            .with_sex_input(true);
        let mut m = manifest(&mixed);
        m.sex = Some("mixed".into());
        m.region = Some("A".into());
        save(
            &mixed.init(&d),
            &m,
            &dir.path().join("A-reg-mixed.safetensors"),
        )
        .unwrap();
        // Another kind of network in the same folder is not an age model: skipped.
        std::fs::write(dir.path().join("notes.txt"), "not weights").unwrap();

        let models = AgeModels::load_dir(dir.path()).unwrap();
        assert_eq!(models.models.len(), 2);
        let gray = |w: usize, h: usize| {
            GrayImage::from_vec(
                w,
                h,
                (0..w * h)
                    .map(|i| ((i * 7919) % 101) as f32 / 100.0)
                    .collect(),
            )
            .unwrap()
        };
        let crops = RegionCrops {
            crops: [gray(375, 500), gray(188, 188), gray(350, 150)],
        };
        // A boy gets the mixed model only; a girl both, averaged.
        let boy = models.members(&crops, Sex::Male);
        assert_eq!(boy.len(), 1);
        assert_eq!(
            (boy[0].key.region, boy[0].key.cohort),
            (Region::A, Cohort::Mixed)
        );
        let girl = models.assess(&crops, Sex::Female).unwrap();
        assert_eq!(girl.members.len(), 2);
        let mean = girl.members.iter().map(|m| m.months).sum::<f64>() / 2.0;
        assert!((girl.months - mean).abs() < 1e-9);
        assert!(
            girl.members
                .iter()
                .all(|m| (0.0..=240.0).contains(&m.months))
        );
        assert!(
            girl.regions[1].is_none() && girl.regions[0].is_some() && girl.regions[2].is_some()
        );

        // An empty folder, and a file that is no age model, are refused clearly.
        let empty = tempfile::tempdir().unwrap();
        let e = AgeModels::load_dir(empty.path()).err().unwrap().to_string();
        assert!(e.contains("no bone-age model"), "{e}");
        let mut not_age = manifest(&female);
        not_age.net = "unet".into();
        let p = dir.path().join("x.safetensors");
        save(&female.init(&d), &not_age, &p).unwrap();
        let e = AgeModel::load(&p).err().unwrap().to_string();
        assert!(e.contains("bone-age net"), "{e}");
    }

    #[test]
    fn half_precision_copies_load_and_agree() {
        let _rng = crate::rng_lock();
        let d = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let (full, half) = (
            dir.path().join("f32.safetensors"),
            dir.path().join("f16.safetensors"),
        );
        let c = config(vec![4, 8, 8]);
        let net = c.init(&d);
        save(&net, &manifest(&c), &full).unwrap();
        let size = boneage_nn::weights::to_f16(&full, &half).unwrap();
        let full_size = std::fs::metadata(&full).unwrap().len();
        assert!(size * 10 < full_size * 6, "{size} of {full_size} bytes");
        assert!(manifest_path(&half).is_file());
        let x = Tensor::<4>::random(
            [2, 1, 64, 48],
            boneage_nn::burn::tensor::Distribution::Default,
            &d,
        );
        let run = |p: &std::path::Path| {
            load(c.init(&d), p, &manifest(&c))
                .unwrap()
                .forward(x.clone(), None)
                .months
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (a, b) = (run(&full), run(&half));
        for (a, b) in a.iter().zip(&b) {
            assert!((a - b).abs() < 0.5, "{a} months in f32, {b} in f16");
        }
        // Nothing to narrow twice.
        let bytes = std::fs::read(&half).unwrap();
        let again =
            boneage_nn::weights::convert_floats(&bytes, boneage_nn::weights::Precision::F16)
                .unwrap();
        assert!(again.is_none());
    }

    #[test]
    fn a_mismatched_or_corrupted_file_is_refused_clearly() {
        let _rng = crate::rng_lock();
        let d = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.safetensors");
        let c = config(vec![4, 8, 8]);
        save(&c.init(&d), &manifest(&c), &path).unwrap();

        // Another config than the one in the manifest.
        let other = config(vec![4, 8, 16]);
        let err = load(other.init(&d), &path, &manifest(&other)).unwrap_err();
        assert!(matches!(err, WeightsError::Mismatch { .. }), "{err:?}");
        assert!(
            err.to_string().contains("net.json: holds a age net"),
            "{err}"
        );

        // A manifest that lies about the tensors: they do not fit.
        std::fs::write(
            manifest_path(&path),
            serde_json::to_string(&manifest(&other)).unwrap(),
        )
        .unwrap();
        let err = load(other.init(&d), &path, &manifest(&other)).unwrap_err();
        assert!(matches!(err, WeightsError::Tensors { .. }), "{err:?}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );

        // Truncated tensors.
        save(&c.init(&d), &manifest(&c), &path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let err = load(c.init(&d), &path, &manifest(&c)).unwrap_err();
        assert!(matches!(err, WeightsError::Tensors { .. }), "{err:?}");

        // Not a manifest at all.
        std::fs::write(manifest_path(&path), "{\"net\": 3}").unwrap();
        let err = load(c.init(&d), &path, &manifest(&c)).unwrap_err();
        assert!(
            err.to_string().contains("not a boneage weights manifest"),
            "{err}"
        );
    }
}

mod engine {
    use std::path::Path;
    use std::sync::Arc;

    use boneage_core::phantom::{PhantomConfig, generate, image_rng};
    use boneage_nn::age::AgeNetConfig;
    use boneage_nn::burn::prelude::*;
    use boneage_nn::data::{Augment, Example, Examples, Target};
    use boneage_nn::prepare::letterbox;
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
                },
            },
            trained_on: "test phantoms".into(),
            sex: Some("mixed".into()),
            region: None,
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
            items: vec![ex(Target::Keypoints(point)), ex(Target::Mask(mask.clone()))],
        };
        let aug = Augment {
            zoom: 0.2,
            rotation_deg: 30.0,
            shift: 0.1,
            flip: true,
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
}

/// The 3×3 convolution of `fastops` (this crate's kernels on flex) gives burn's
/// `conv2d` values and gradients, with and without autodiff, at batch sizes above and
/// below the thread count (the kernels split the work differently).
#[test]
fn fast_conv3x3_matches_burn_conv2d() {
    use boneage_nn::burn::tensor::Distribution;
    use boneage_nn::burn::tensor::module::conv2d;
    use boneage_nn::burn::tensor::ops::ConvOptions;
    use boneage_nn::fastops::{conv3x3, is_flex};

    let _rng = crate::rng_lock();
    let d = device().autodiff();
    d.seed(7);
    assert!(is_flex(&d) && is_flex(&device()));
    let opts = || ConvOptions::new([1, 1], [1, 1], [1, 1], 1);
    let max_diff = |a: Tensor<4>, b: Tensor<4>| -> f32 {
        let (a, b) = (
            a.into_data().try_to_vec::<f32>().unwrap(),
            b.into_data().try_to_vec::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    };
    for (batch, cin, cout, h, w) in [(1, 3, 4, 9, 7), (5, 2, 6, 4, 11), (2, 1, 3, 1, 1)] {
        let x = Tensor::<4>::random([batch, cin, h, w], Distribution::Default, &d).require_grad();
        let wt = Tensor::<4>::random([cout, cin, 3, 3], Distribution::Default, &d).require_grad();
        let r = Tensor::<4>::random([batch, cout, h, w], Distribution::Default, &d);
        let ours = conv3x3(x.clone(), wt.clone());
        let theirs = conv2d(x.clone(), wt.clone(), None, opts());
        assert!(max_diff(ours.clone(), theirs.clone()) < 1e-5);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (theirs * r).sum().backward();
        let grad = |t: &Tensor<4>, g| Tensor::<4>::from_inner(t.grad(g).unwrap());
        assert!(
            max_diff(grad(&x, &g1), grad(&x, &g2)) < 1e-4,
            "input gradient"
        );
        assert!(
            max_diff(grad(&wt, &g1), grad(&wt, &g2)) < 1e-4,
            "weight gradient"
        );
        // Without autodiff.
        let plain = |t: &Tensor<4>| Tensor::<4>::from_inner(t.clone().inner());
        assert!(
            max_diff(
                conv3x3(plain(&x), plain(&wt)),
                conv2d(plain(&x), plain(&wt), None, opts())
            ) < 1e-5
        );
    }
}

/// Batch norm + ELU fused on flex equals burn's `BatchNorm` followed by `elu`: output,
/// gradients of input, scale and shift, the running statistics it leaves, and the
/// inference path with those statistics.
#[test]
fn fused_batch_norm_elu_matches_burn() {
    use boneage_nn::burn::module::{Module, Param};
    use boneage_nn::burn::nn::BatchNormConfig;
    use boneage_nn::burn::tensor::Distribution;
    use boneage_nn::fastops::batch_norm_elu;

    let _rng = crate::rng_lock();
    let d = device().autodiff();
    d.seed(9);
    let vec4 = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    let vec1 = |t: Tensor<1>| t.into_data().try_to_vec::<f32>().unwrap();
    let max_diff = |a: Vec<f32>, b: Vec<f32>| -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(p, q)| (p - q).abs())
            .fold(0.0, f32::max)
    };
    for (batch, c, h, w) in [(4, 3, 5, 6), (1, 2, 3, 1)] {
        let mut norm = BatchNormConfig::new(c).with_momentum(0.3).init(&d);
        // A scale and shift other than 1 and 0, so that their roles are tested.
        norm.gamma = Param::from_tensor(Tensor::random([c], Distribution::Uniform(0.5, 2.0), &d));
        norm.beta = Param::from_tensor(Tensor::random([c], Distribution::Uniform(-1.0, 1.0), &d));
        let ours_norm = norm.clone();
        let x = (Tensor::<4>::random([batch, c, h, w], Distribution::Default, &d) * 3.0 - 1.0)
            .require_grad();
        let r = Tensor::<4>::random([batch, c, h, w], Distribution::Default, &d);
        let ours = batch_norm_elu(&ours_norm, x.clone());
        let theirs = elu(norm.forward(x.clone()));
        assert!(max_diff(vec4(ours.clone()), vec4(theirs.clone())) < 1e-5);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (theirs * r).sum().backward();
        let gx = |g| Tensor::<4>::from_inner(x.grad(g).unwrap());
        assert!(
            max_diff(vec4(gx(&g1)), vec4(gx(&g2))) < 1e-4,
            "input gradient"
        );
        let g1p = |t: &Tensor<1>, g| Tensor::<1>::from_inner(t.grad(g).unwrap());
        for (a, b) in [
            (&ours_norm.gamma, &norm.gamma),
            (&ours_norm.beta, &norm.beta),
        ] {
            assert!(max_diff(vec1(g1p(&a.val(), &g1)), vec1(g1p(&b.val(), &g2))) < 1e-4);
        }
        assert!(
            max_diff(
                vec1(ours_norm.running_mean.value()),
                vec1(norm.running_mean.value())
            ) < 1e-6
        );
        assert!(
            max_diff(
                vec1(ours_norm.running_var.value()),
                vec1(norm.running_var.value())
            ) < 1e-6
        );
        // Inference (no autodiff): the running statistics.
        let (plain_ours, plain_theirs) = (ours_norm.valid(), norm.valid());
        let xi = Tensor::<4>::from_inner(x.clone().inner());
        let a = batch_norm_elu(&plain_ours, xi.clone());
        let b = elu(plain_theirs.forward(xi));
        assert!(max_diff(vec4(a), vec4(b)) < 1e-5);
    }
}

/// The 2×2 max pool of `fastops` gives burn's `MaxPool2d` output and input gradient.
#[test]
fn fast_max_pool_matches_burn() {
    use boneage_nn::burn::nn::pool::MaxPool2dConfig;
    use boneage_nn::burn::tensor::Distribution;
    use boneage_nn::fastops::max_pool2;

    let _rng = crate::rng_lock();
    let d = device().autodiff();
    d.seed(3);
    let pool = MaxPool2dConfig::new([2, 2]).init();
    let v = |t: Tensor<4>| t.into_data().try_to_vec::<f32>().unwrap();
    for shape in [[2, 3, 6, 8], [1, 2, 5, 7]] {
        let x = Tensor::<4>::random(shape, Distribution::Default, &d).require_grad();
        let ours = max_pool2(&pool, x.clone());
        let theirs = pool.forward(x.clone());
        assert_eq!(ours.dims(), theirs.dims());
        assert_eq!(v(ours.clone()), v(theirs.clone()));
        let r = Tensor::<4>::random(ours.dims(), Distribution::Default, &d);
        let g1 = (ours * r.clone()).sum().backward();
        let g2 = (theirs * r).sum().backward();
        let gx = |g| Tensor::<4>::from_inner(x.grad(g).unwrap());
        assert_eq!(v(gx(&g1)), v(gx(&g2)));
    }
}
