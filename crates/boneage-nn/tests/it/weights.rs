//! Weights on disk: save and load, the manifest's checks, half precision, and a
//! folder of bone-age models as an ensemble.

use boneage_core::registration::{Canvas, Region};
use boneage_core::{Cohort, NetKind, View};
use boneage_nn::age::{AgeHead, AgeNetConfig};
use boneage_nn::burn::prelude::*;
use boneage_nn::weights::{
    Manifest, Precision, WIDE_VALUES, WeightsError, convert_floats, head_in_8_bits, load,
    manifest_path, save, store_as, wide_in_8_bits,
};

fn config(features: Vec<usize>) -> AgeNetConfig {
    AgeNetConfig::new(64, 48)
        .with_head(AgeHead::Classification { classes: 240 })
        .with_features(features)
        .with_hidden(vec![16, 16])
}

fn manifest(c: &AgeNetConfig) -> Manifest {
    Manifest {
        version: boneage_nn::weights::MANIFEST_VERSION,
        net: NetKind::Age,
        config: serde_json::to_value(c).unwrap(),
        input: [64, 48],
        normalization: "hand mask, percentile window 1-99.5, CLAHE 8x8 clip 2".into(),
        sex: Some(Cohort::Female),
        region: Some(View::Region(Region::C)),
        canvas: None,
        variant: None,
        trained_on: "test".into(),
        metrics: [("val_mae_months".to_string(), 12.5)].into(),
    }
}

/// The ages (months) the network of `c` loaded from `path` gives for two fixed
/// random images.
fn ages_of(c: &AgeNetConfig, path: &std::path::Path, d: &Device) -> Vec<f32> {
    let x = Tensor::<4>::from_data(
        boneage_nn::burn::tensor::TensorData::new(
            (0..2 * 64 * 48)
                .map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0)
                .collect::<Vec<f32>>(),
            [2, 1, 64, 48],
        ),
        d,
    );
    load(c.init(d), path, &manifest(c))
        .unwrap()
        .forward(x, None)
        .months
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
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
    use boneage_core::Sex;
    use boneage_nn::ensemble::{AgeModel, AgeModels, RegionCrops};
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
    m.sex = Some(Cohort::Mixed);
    m.region = Some(View::Region(Region::A));
    save(
        &mixed.init(&d),
        &m,
        &dir.path().join("A-reg-mixed.safetensors"),
    )
    .unwrap();
    // Another kind of network in the same folder is not an age model: skipped.
    std::fs::write(dir.path().join("notes.txt"), "not weights").unwrap();

    // The manifest on disk keeps its spelling: "age", "F", "C".
    let text = std::fs::read_to_string(dir.path().join("C-cls-F.json")).unwrap();
    let j: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (j["net"].as_str(), j["sex"].as_str(), j["region"].as_str()),
        (Some("age"), Some("F"), Some("C"))
    );
    let models = AgeModels::load_dir(dir.path(), &d).unwrap();
    assert_eq!(models.models.len(), 2);
    // A manifest that names no canvas (older ones) means the CPU canvas.
    assert!(j.get("canvas").is_none());
    assert_eq!(models.canvas(), Canvas::CPU);
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
    // No region D crop: no model here reads it.
    let crops = [RegionCrops {
        canvas: Canvas::CPU,
        crops: [
            Some(gray(375, 500)),
            Some(gray(188, 188)),
            Some(gray(350, 150)),
            None,
        ],
    }];
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
    assert!(girl.regions[1].is_none() && girl.regions[0].is_some() && girl.regions[2].is_some());

    // An empty folder, and a file that is no age model, are refused clearly.
    let empty = tempfile::tempdir().unwrap();
    let e = AgeModels::load_dir(empty.path(), &d)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no bone-age model"), "{e}");
    let mut not_age = manifest(&female);
    not_age.net = NetKind::Unet;
    let p = dir.path().join("x.safetensors");
    save(&female.init(&d), &not_age, &p).unwrap();
    let e = AgeModel::load(&p, &d).err().unwrap().to_string();
    assert!(e.contains("bone-age net"), "{e}");
    // Two models of one kind (a second mixed region-A regressor, e.g. another
    // backbone) would stand for each other in the reports: refused, naming both.
    std::fs::remove_file(&p).unwrap();
    save(&mixed.init(&d), &m, &dir.path().join("other-A.safetensors")).unwrap();
    let e = AgeModels::load_dir(dir.path(), &d)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("second A-reg-mixed")
            && e.contains("A-reg-mixed.safetensors")
            && e.contains("other-A"),
        "{e}"
    );
    // Numbered in its manifest (`boneage export --variant 2`), it is a member of its
    // own, `A-reg-mixed-2`, averaged into region A; number 1 would name the first
    // model twice and is refused.
    let mut second = m.clone();
    second.variant = Some(2);
    save(
        &mixed.init(&d),
        &second,
        &dir.path().join("other-A.safetensors"),
    )
    .unwrap();
    let models = AgeModels::load_dir(dir.path(), &d).unwrap();
    let names: Vec<String> = models.models.iter().map(|m| m.key.to_string()).collect();
    assert_eq!(names, ["A-reg-mixed", "A-reg-mixed-2", "C-cls-F"]);
    let boy = models.assess(&crops, Sex::Male).unwrap();
    assert_eq!(boy.members.len(), 2);
    let mean_a = boy.members.iter().map(|m| m.months).sum::<f64>() / 2.0;
    assert!((boy.regions[0].unwrap() - mean_a).abs() < 1e-9);
    second.variant = Some(1);
    save(
        &mixed.init(&d),
        &second,
        &dir.path().join("other-A.safetensors"),
    )
    .unwrap();
    let e = AgeModels::load_dir(dir.path(), &d)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("numbered from 2") && e.contains("other-A"),
        "{e}"
    );
    // Models trained on crops of different canvases share a folder: the largest
    // canvas first (the front end registers onto it), each model reading the crops
    // of its own.
    std::fs::remove_file(dir.path().join("other-A.safetensors")).unwrap();
    let large = Canvas::new(800, 1040).unwrap();
    let mut b = m.clone();
    b.region = Some(View::Region(Region::B));
    b.canvas = Some(large);
    let b_path = dir.path().join("B-reg-mixed.safetensors");
    save(&mixed.init(&d), &b, &b_path).unwrap();
    let models = AgeModels::load_dir(dir.path(), &d).unwrap();
    assert_eq!(models.canvases(), vec![large, Canvas::CPU]);
    assert_eq!(models.canvas(), large);
    assert_eq!(models.regions_on(large), vec![Region::B]);
    let big = RegionCrops::from_canvas(&gray(800, 1040), &large);
    let b_crop = large.region(Region::B);
    let [cpu] = crops;
    let both = [cpu, big];
    for model in &models.models {
        let c = model.crop_in(&both);
        let expected = match model.key.region {
            Region::B => (b_crop.w, b_crop.h),
            r => {
                let crop = both[0].get(r).unwrap();
                (crop.width(), crop.height())
            }
        };
        assert_eq!((c.width(), c.height()), expected, "{}", model.key);
    }
    let members = models.members(&both, Sex::Female);
    assert_eq!(members.len(), 3);
    // Without the crops of a canvas a model reads, the call names what is missing.
    let only_cpu = &both[..1];
    let missing = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        models.members(only_cpu, Sex::Male)
    }))
    .err()
    .unwrap();
    let why = missing.downcast_ref::<String>().unwrap();
    assert!(
        why.contains("800x1040") && why.contains("B-reg-mixed"),
        "{why}"
    );
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
    let size = store_as(&full, &half, Precision::F16).unwrap();
    let full_size = std::fs::metadata(&full).unwrap().len();
    assert!(size * 10 < full_size * 6, "{size} of {full_size} bytes");
    assert!(manifest_path(&half).is_file());
    let run = |p: &std::path::Path| ages_of(&c, p, &d);
    let (a, b) = (run(&full), run(&half));
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() < 0.5, "{a} months in f32, {b} in f16");
    }
    // Nothing to narrow twice.
    let bytes = std::fs::read(&half).unwrap();
    let again = convert_floats(&bytes, Precision::F16).unwrap();
    assert!(again.is_none());
}

/// Copies with the head in 8 bits: the linear layers' weights (and an
/// EfficientNet's last 1×1 convolution, by name) become integers with one scale per
/// output channel, each value within half a step of its f32 original, the rest
/// 16-bit floats; the file is smaller than the 16-bit copy; the network loads and
/// gives the same ages within a fraction of a month; widening back gives f32 again;
/// a file whose scales are lost is refused by name.
#[test]
fn head_in_8_bits_copies_load_and_agree() {
    let _rng = crate::rng_lock();
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let (full, half, small) = (
        dir.path().join("f32.safetensors"),
        dir.path().join("f16.safetensors"),
        dir.path().join("i8.safetensors"),
    );
    let c = config(vec![8, 16, 16]);
    save(&c.init(&d), &manifest(&c), &full).unwrap();
    let half_size = store_as(&full, &half, Precision::F16).unwrap();
    let size = store_as(&full, &small, Precision::HeadI8).unwrap();
    assert!(
        size < half_size,
        "{size} bytes against {half_size} in 16 bits"
    );
    assert!(manifest_path(&small).is_file());

    // Which tensors: the head's, by shape and by name.
    assert!(head_in_8_bits("lite.head.conv.weight", &[1280, 320, 1, 1]));
    assert!(head_in_8_bits("fc.0.weight", &[1281, 256]));
    assert!(!head_in_8_bits(
        "lite.stages.6.0.project.conv.weight",
        &[320, 1152, 1, 1]
    ));
    assert!(!head_in_8_bits("fc.0.bias", &[256]));

    // Every 8-bit value within half a quantisation step of the original.
    let (f_bytes, q_bytes) = (
        std::fs::read(&full).unwrap(),
        std::fs::read(&small).unwrap(),
    );
    let widened = convert_floats(&q_bytes, Precision::F32).unwrap().unwrap();
    let (hq, hw) = (header(&q_bytes), header(&widened));
    let shape_of = |v: &serde_json::Value| -> Vec<usize> {
        v["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect()
    };
    let mut eight = 0;
    for (name, v) in hq.iter().filter(|(k, _)| *k != "__metadata__") {
        if name.ends_with(".i8-scale") {
            assert_eq!(v["dtype"], "F32", "{name}");
            continue;
        }
        let shape = shape_of(v);
        let want = if head_in_8_bits(name, &shape) {
            "I8"
        } else {
            "F16"
        };
        assert_eq!(v["dtype"], want, "{name} {shape:?}");
        if want == "F16" {
            continue;
        }
        eight += 1;
        let (orig, back) = (f32_tensor(&f_bytes, name), f32_tensor(&widened, name));
        for (o, b) in orig
            .chunks(orig.len() / shape[0])
            .zip(back.chunks(orig.len() / shape[0]))
        {
            let step = o.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            for (x, y) in o.iter().zip(b) {
                assert!((x - y).abs() <= step * 0.5 + 1e-7, "{name}: {x} became {y}");
            }
        }
        assert!(!hw.contains_key(&format!("{name}.i8-scale")));
    }
    assert!(eight >= 2, "the linear layers in 8 bits: {hq:?}");

    let run = |p: &std::path::Path| ages_of(&c, p, &d);
    let (a, b) = (run(&full), run(&small));
    for (a, b) in a.iter().zip(&b) {
        assert!((a - b).abs() < 1.0, "{a} months in f32, {b} in 8 bits");
    }
    assert!(
        convert_floats(&q_bytes, Precision::HeadI8)
            .unwrap()
            .is_none()
    );

    // The scales renamed away: refused, naming the tensor.
    let mut lost = q_bytes.clone();
    let at = lost
        .windows(9)
        .position(|w| w == b".i8-scale")
        .expect("a scale tensor");
    lost[at + 1] = b'x';
    std::fs::write(&small, &lost).unwrap();
    let err = load(c.init(&d), &small, &manifest(&c)).unwrap_err();
    assert!(err.to_string().contains("has no f32 scales"), "{err}");
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

/// ImageNet weights reach the EfficientNet-Lite backbone by parameter name (the names
/// `scripts/import_efficientnet.py` writes): a file of one network's tensors loaded
/// into a differently initialised one gives the same features and, inside a bone-age
/// network, the same ages. A file of another network is refused, naming what is
/// missing, and a VGG bone-age network refuses pretrained weights. A backbone cut
/// after its fifth stage loads from the same file.
#[test]
fn efficientnet_weights_load_by_parameter_name() {
    use boneage_nn::age::Backbone;
    use boneage_nn::burn::store::{ModuleSnapshot, SafetensorsStore};
    use boneage_nn::efficientnet::{EfficientNetLite, LiteVariant};

    let _rng = crate::rng_lock();
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lite0.safetensors");
    d.seed(1);
    let source = EfficientNetLite::new(LiteVariant::Lite0, 0.01, &d);
    source
        .save_into(&mut SafetensorsStore::from_file(&file))
        .unwrap();
    let x = Tensor::<4>::random(
        [1, 1, 64, 32],
        boneage_nn::burn::tensor::Distribution::Default,
        &d,
    );
    let features = |net: &EfficientNetLite| {
        net.forward(x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let want = features(&source);
    assert_eq!(want.len(), 1280 * 2);
    d.seed(2);
    let fresh = EfficientNetLite::new(LiteVariant::Lite0, 0.01, &d);
    assert_ne!(features(&fresh), want, "a different initialisation");
    let loaded = fresh.load_pretrained(&file).unwrap();
    assert_eq!(features(&loaded), want);

    // Cut after its fifth stage: 112 channels at a 16th of the input, from the same
    // file (the stages it lacks are ignored).
    let cut = EfficientNetLite::cut(
        LiteVariant::Lite0,
        Some(boneage_nn::efficientnet::STAGES_TO_16TH),
        0.01,
        &d,
    )
    .load_pretrained(&file)
    .unwrap();
    assert_eq!(cut.features(), 112);
    assert_eq!(cut.forward(x.clone()).dims(), [1, 112, 4, 2]);

    // Inside a bone-age network: the same backbone, so the same pooled features.
    let lite_cfg = AgeNetConfig::new(64, 32)
        .with_backbone(Some(Backbone::Efficientnet(LiteVariant::Lite0)))
        .with_hidden(vec![8]);
    let net = lite_cfg.init(&d).load_pretrained(&file).unwrap();
    let months = net.forward(x.clone(), None).months.into_data();
    assert!(months.try_to_vec::<f32>().unwrap()[0].is_finite());

    // The weights of a VGG bone-age network are not a backbone's.
    let vgg = dir.path().join("vgg.safetensors");
    let c = config(vec![4, 8]);
    save(&c.init(&d), &manifest(&c), &vgg).unwrap();
    let err = EfficientNetLite::new(LiteVariant::Lite0, 0.01, &d)
        .load_pretrained(&vgg)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("vgg.safetensors") && err.contains("missing"),
        "{err}"
    );
    let err = c.init(&d).load_pretrained(&file).unwrap_err().to_string();
    assert!(err.contains("this network is VGG"), "{err}");
}

/// EfficientNet-Lite1 is Lite0 deeper (21 blocks instead of 16, stages of 1, 3, 3, 4, 4,
/// 5, 1): its own file loads into it and gives the same features; Lite0's file is
/// refused as missing blocks, and Lite1's file is refused by Lite0 (it would otherwise
/// half fit: every Lite0 parameter has a namesake in it), naming the block too many.
/// A bone-age network records the variant in its manifest's config.
#[test]
fn efficientnet_lite1_loads_its_own_weights_and_refuses_lite0s() {
    use boneage_nn::burn::module::Module;
    use boneage_nn::burn::store::{ModuleSnapshot, SafetensorsStore};
    use boneage_nn::efficientnet::{EfficientNetLite, LITE0_STAGES, LITE1_STAGES, LiteVariant};

    let _rng = crate::rng_lock();
    let d = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let blocks = |s: &[boneage_nn::efficientnet::Stage]| -> Vec<usize> {
        s.iter().map(|s| s.repeats).collect()
    };
    assert_eq!(blocks(&LITE1_STAGES), [1, 3, 3, 4, 4, 5, 1]);
    assert_eq!(blocks(&LITE0_STAGES), [1, 2, 2, 3, 3, 4, 1]);
    let [(file0, _), (file1, source1)] = [LiteVariant::Lite0, LiteVariant::Lite1].map(|v| {
        let file = dir.path().join(format!("{}.safetensors", v.name()));
        d.seed(3);
        let net = EfficientNetLite::new(v, 0.01, &d);
        net.save_into(&mut SafetensorsStore::from_file(&file))
            .unwrap();
        (file, net)
    });
    d.seed(4);
    let lite1 = EfficientNetLite::new(LiteVariant::Lite1, 0.01, &d);
    let lite0 = EfficientNetLite::new(LiteVariant::Lite0, 0.01, &d);
    // 4.19 M and 3.41 M values without the ImageNet classifier, as the import counts.
    let (n1, n0) = (lite1.num_params(), lite0.num_params());
    assert!(n1 > n0 + 700_000 && n1 < n0 + 850_000, "{n1} against {n0}");
    let x = Tensor::<4>::random(
        [1, 1, 64, 32],
        boneage_nn::burn::tensor::Distribution::Default,
        &d,
    );
    let features = |net: &EfficientNetLite| {
        let f = net.forward(x.clone());
        assert_eq!(f.dims(), [1, 1280, 2, 1]);
        f.into_data().try_to_vec::<f32>().unwrap()
    };
    assert_ne!(
        features(&lite1),
        features(&source1),
        "a different initialisation"
    );
    let loaded = lite1.clone().load_pretrained(&file1).unwrap();
    assert_eq!(features(&loaded), features(&source1));

    let err = lite1.load_pretrained(&file0).unwrap_err().to_string();
    assert!(
        err.contains("lite0.safetensors") && err.contains("missing stages.1.2"),
        "{err}"
    );
    let err = lite0.load_pretrained(&file1).unwrap_err().to_string();
    assert!(
        err.contains("lite1.safetensors") && err.contains("stages.1.2") && err.contains("deeper"),
        "{err}"
    );

    let json = serde_json::to_string(&boneage_nn::tasks::Preset::Cpu.lite_age(
        LiteVariant::Lite1,
        [64, 32],
        AgeHead::Regression,
        true,
    ))
    .unwrap();
    assert!(json.contains(r#""efficientnet":"lite1""#), "{json}");
}

/// Manifests written before the backbone choice existed (no `backbone` field) still
/// read as VGG networks.
#[test]
fn a_manifest_without_backbone_is_vgg() {
    let mut json = serde_json::to_value(config(vec![4, 8])).unwrap();
    json.as_object_mut().unwrap().remove("backbone");
    let c: AgeNetConfig = serde_json::from_value(json).unwrap();
    assert_eq!(c.backbone, None);
    assert_eq!(c.features, vec![4, 8]);
}

/// The header of a safetensors buffer.
fn header(bytes: &[u8]) -> serde_json::Map<String, serde_json::Value> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    serde_json::from_slice(&bytes[8..8 + n]).unwrap()
}

/// The values of f32 tensor `name` of a safetensors buffer.
fn f32_tensor(bytes: &[u8], name: &str) -> Vec<f32> {
    let skip = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let o = &header(bytes)[name]["data_offsets"];
    let (a, b) = (
        o[0].as_u64().unwrap() as usize,
        o[1].as_u64().unwrap() as usize,
    );
    bytes[skip + a..skip + b]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// A safetensors buffer of f32 tensors (name, shape, values), as any writer makes it.
fn safetensors_f32(tensors: &[(&str, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let (mut header, mut data) = (serde_json::Map::new(), Vec::new());
    for (name, shape, values) in tensors {
        let start = data.len();
        data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let mut h = serde_json::to_vec(&header).unwrap();
    h.resize(h.len().div_ceil(8) * 8, b' ');
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend(h);
    out.extend(data);
    out
}

/// With the wide 1×1 convolutions in 8 bits: those of at least `WIDE_VALUES` weights
/// and the head become integers (each value within half a step of its original),
/// narrow 1×1 and depthwise convolutions and vectors stay 16-bit floats.
#[test]
fn wide_convolutions_in_8_bits() {
    assert!(wide_in_8_bits(
        "lite.stages.5.1.expand.conv.weight",
        &[1152, 192, 1, 1]
    ));
    assert!(!wide_in_8_bits(
        "lite.stages.1.0.expand.conv.weight",
        &[96, 16, 1, 1]
    ));
    assert!(!wide_in_8_bits(
        "lite.stages.5.1.depthwise.conv.weight",
        &[1152, 1, 5, 5]
    ));
    assert!(wide_in_8_bits("fc.0.weight", &[1281, 256]));
    assert!(!wide_in_8_bits("lite.stages.5.1.bn.gamma", &[1152]));

    let wave = |n: usize| -> Vec<f32> { (0..n).map(|i| ((i as f32) * 0.37).sin()).collect() };
    let wide = [WIDE_VALUES.div_ceil(128), 128, 1, 1];
    let n = wide.iter().product::<usize>();
    let bytes = safetensors_f32(&[
        ("wide.weight", wide.to_vec(), wave(n)),
        ("narrow.weight", vec![96, 16, 1, 1], wave(96 * 16)),
        ("depthwise.weight", vec![1152, 1, 3, 3], wave(1152 * 9)),
        ("fc.weight", vec![64, 32], wave(64 * 32)),
        ("bn.running_var", vec![512], wave(512)),
    ]);
    let narrow = convert_floats(&bytes, Precision::WideI8).unwrap().unwrap();
    let head_only = convert_floats(&bytes, Precision::HeadI8).unwrap().unwrap();
    assert!(
        narrow.len() < head_only.len() - n / 2,
        "{} bytes against {} with the head alone in 8 bits",
        narrow.len(),
        head_only.len()
    );
    let h = header(&narrow);
    for (name, want) in [
        ("wide.weight", "I8"),
        ("narrow.weight", "F16"),
        ("depthwise.weight", "F16"),
        ("fc.weight", "I8"),
        ("bn.running_var", "F16"),
    ] {
        assert_eq!(h[name]["dtype"], want, "{name}");
    }
    // Widened back: the wide convolution within half a step of each row's maximum / 127.
    let back = convert_floats(&narrow, Precision::F32).unwrap().unwrap();
    let values = f32_tensor(&back, "wide.weight");
    let orig = wave(n);
    for (row, got) in orig.chunks(128).zip(values.chunks(128)) {
        let step = row.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
        for (x, y) in row.iter().zip(got) {
            assert!((x - y).abs() <= step * 0.5 + 1e-7, "{x} became {y}");
        }
    }
}

/// A verifier saved as `verifier.safetensors` with members `verifier-2` and
/// `verifier-3` beside it loads as one whose score is the mean of the three; a fourth
/// after a gap in the numbering is not a member; a member reading another part of the
/// canvas is refused, naming its manifest.
#[test]
fn a_verifier_with_members_beside_it_averages_their_scores() {
    use boneage_nn::verifier::{Verifier, VerifierNetConfig, members_beside};
    let _g = crate::rng_lock();
    let d = crate::device();
    let tmp = tempfile::tempdir().unwrap();
    let config = VerifierNetConfig::new()
        .with_height(32)
        .with_width(24)
        .with_features(vec![4, 4])
        .with_hidden(vec![8]);
    let manifest = |c: &VerifierNetConfig| {
        crate::manifest_of(
            NetKind::Verifier,
            serde_json::to_value(c).unwrap(),
            [32, 24],
        )
    };
    let names = ["verifier", "verifier-2", "verifier-3", "verifier-5"];
    for name in names {
        let path = tmp.path().join(format!("{name}.safetensors"));
        save(&config.init(&d), &manifest(&config), &path).unwrap();
    }
    let first = tmp.path().join("verifier.safetensors");
    let members = members_beside(&first);
    assert_eq!(members.len(), 3, "{members:?}");
    assert!(members[2].ends_with("verifier-3.safetensors"));

    // A hand-like canvas: a bright block on black.
    let mut canvas = boneage_core::GrayImage::from_vec(400, 520, vec![0.0; 400 * 520]).unwrap();
    for y in 100..400 {
        for x in 120..280 {
            canvas.set(x, y, 0.8);
        }
    }
    let all = Verifier::load(&first, &d).unwrap();
    assert_eq!(all.members(), 3);
    let alone: Vec<f64> = names[..3]
        .iter()
        .map(|name| {
            // Each member alone, copied where it has no members beside it.
            let solo = tempfile::tempdir().unwrap();
            for ext in ["safetensors", "json"] {
                std::fs::copy(
                    tmp.path().join(format!("{name}.{ext}")),
                    solo.path().join(format!("verifier.{ext}")),
                )
                .unwrap();
            }
            let v = Verifier::load(&solo.path().join("verifier.safetensors"), &d).unwrap();
            assert_eq!(v.members(), 1);
            v.score(&canvas)
        })
        .collect();
    let mean = alone.iter().sum::<f64>() / 3.0;
    assert!(
        (all.score(&canvas) - mean).abs() < 1e-6,
        "{} against the mean of {alone:?}",
        all.score(&canvas)
    );
    assert!(
        alone.windows(2).any(|w| (w[0] - w[1]).abs() > 1e-6),
        "the members differ: {alone:?}"
    );

    let cropped = config.clone().with_crop(Some([104, 304, 192, 192]));
    let third = tmp.path().join("verifier-3.safetensors");
    save(&cropped.init(&d), &manifest(&cropped), &third).unwrap();
    let Err(e) = Verifier::load(&first, &d) else {
        panic!("a member reading the carpus alone was accepted");
    };
    let msg = e.to_string();
    assert!(msg.contains("verifier-3.json"), "{msg}");
    assert!(msg.contains("read the same pixels"), "{msg}");
}
