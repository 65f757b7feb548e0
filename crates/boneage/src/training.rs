//! Training recipes on a dataset folder: the split (sex-stratified, or a hold-out
//! list that never enters training), the examples prepared once and cached in the
//! run folder, the augmentation each network trains with, the baselines its
//! validation figures must beat, a sheet of what the network sees, and the run
//! itself (`boneage_nn::train::fit`: resumable, logged, checkpointed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use boneage_core::dataset::{
    Dataset, Sample, find_mask, fnv1a, folder_fingerprint, ids_fingerprint, read_id_list,
    split_stratified,
};
use boneage_core::io::create_dir;
use boneage_core::keypoints::{KeyPoints, read_csv};
use boneage_core::registration::Canvas;
use boneage_core::{Cohort, Head, View};
use boneage_nn::age::AgeHead;
use boneage_nn::burn::prelude::Device;
use boneage_nn::data::{Augment, Example, Examples, Target};
use boneage_nn::efficientnet::LiteVariant;
use boneage_nn::inputs::{
    AgeView, age_examples, keypoint_examples, mask_examples, refine_examples,
};
use boneage_nn::keypoint_net::Refined;
use boneage_nn::tasks::{AgeTask, KeypointTask, Preset, SegmentTask, VerifyTask};
use boneage_nn::train::{Observer, Outcome, RunSpec, Schedule, Task, TrainConfig, TrainError, fit};
use boneage_nn::verifier::VerifierNetConfig;

use crate::progress::Progress;
use crate::registration_check::VerifierKind;

/// What training could not do.
#[derive(Debug, thiserror::Error)]
pub enum TrainingError {
    /// The data could not be read, or an output written.
    #[error(transparent)]
    Core(#[from] boneage_core::Error),
    /// The run failed.
    #[error(transparent)]
    Train(#[from] TrainError),
    /// The request does not hold together.
    #[error("{0}")]
    Invalid(String),
}

/// The settings every network's training shares.
#[derive(Clone, Debug)]
pub struct TrainSpec {
    /// Dataset folder.
    pub data: PathBuf,
    /// More dataset folders pooled with `data` (their ids must differ).
    pub also: Vec<PathBuf>,
    /// Run folder: config, log, checkpoints, weights.
    pub out: PathBuf,
    /// Network sizes.
    pub preset: Preset,
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch: usize,
    /// First learning rate.
    pub lr: f64,
    /// Last learning rate.
    pub lr_end: f64,
    /// Adam's epsilon.
    pub adam_eps: f32,
    /// How the learning rate falls.
    pub schedule: Schedule,
    /// Seed of weights, order, augmentation, dropout.
    pub seed: u64,
    /// Images held out for validation (sex-stratified).
    pub val: usize,
    /// Seed of the validation split.
    pub split_seed: u64,
    /// A list of ids that is the validation set instead of a random split.
    pub holdout: Option<PathBuf>,
    /// Use only the first N labelled images.
    pub limit: Option<usize>,
    /// No augmentation.
    pub no_augment: bool,
    /// Continue the run from its last checkpoint.
    pub resume: bool,
    /// Stop after this many epochs in total.
    pub stop_after: Option<usize>,
    /// Start from these weights instead of random ones.
    pub init: Option<PathBuf>,
}

impl TrainSpec {
    /// `data` and `also`: every folder whose labelled images are pooled.
    pub fn folders(&self) -> Vec<PathBuf> {
        std::iter::once(self.data.clone())
            .chain(self.also.iter().cloned())
            .collect()
    }

    /// The folders in words ("a + b").
    pub fn data_words(&self) -> String {
        let f: Vec<String> = self
            .folders()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        f.join(" + ")
    }
}

/// The dataset and its split.
pub struct TrainData {
    /// The dataset.
    pub ds: Dataset,
    /// Training samples.
    pub train: Vec<Sample>,
    /// Validation samples (never trained on).
    pub val: Vec<Sample>,
    /// The labels file other than the dataset's own (key points), for the manifest.
    pub labels_from: Option<PathBuf>,
    /// The films cut out by their masks in this folder, trained on too (a refining
    /// net's `--cut-outs`), for the manifest.
    pub cut_outs_from: Option<PathBuf>,
}

impl TrainData {
    /// The samples `keep` accepts, split as `spec` says.
    pub fn open(spec: &TrainSpec, keep: impl Fn(&Sample) -> bool) -> Result<Self, TrainingError> {
        let ds = Dataset::open_dirs(&spec.folders())?;
        let mut samples: Vec<Sample> = ds.samples.iter().filter(|s| keep(s)).cloned().collect();
        if let Some(n) = spec.limit {
            samples.truncate(n);
        }
        if samples.len() < 2 {
            return Err(TrainingError::Invalid(format!(
                "{}: {} usable labelled images; at least 2 are needed",
                spec.data_words(),
                samples.len()
            )));
        }
        if let Some(path) = &spec.holdout {
            let ids = read_id_list(path)?;
            let (val, train): (Vec<Sample>, Vec<Sample>) =
                samples.into_iter().partition(|s| ids.contains(&s.id));
            if val.is_empty() || train.is_empty() {
                return Err(TrainingError::Invalid(format!(
                    "{}: {} of its {} ids are labelled images here, leaving {} for training; \
                     both sets need at least one",
                    path.display(),
                    val.len(),
                    ids.len(),
                    train.len()
                )));
            }
            return Ok(Self {
                train,
                val,
                ds,
                labels_from: None,
                cut_outs_from: None,
            });
        }
        let n_val = spec.val.min(samples.len() / 2);
        let split = split_stratified(&samples, n_val, spec.split_seed)?;
        let pick = |idx: &[usize]| idx.iter().map(|&i| samples[i].clone()).collect();
        Ok(Self {
            train: pick(&split.train),
            val: pick(&split.validation),
            ds,
            labels_from: None,
            cut_outs_from: None,
        })
    }

    /// Training and validation examples, from the run folder's caches when they were
    /// made from the same source and split, else prepared and cached.
    pub fn examples(
        &self,
        spec: &TrainSpec,
        source: &str,
        make: impl Fn(&Dataset, &[Sample], &(dyn Fn() + Sync)) -> boneage_core::Result<Examples>,
        progress: &dyn Progress,
    ) -> Result<[Arc<Examples>; 2], TrainingError> {
        create_dir(&spec.out)?;
        let mut out = Vec::new();
        for (set, samples, what) in [
            ("train", &self.train, "training examples"),
            ("val", &self.val, "validation examples"),
        ] {
            out.push(cached(
                &spec.out.join(format!("examples-{set}.bin")),
                &format!("{source} {set} {}", ids_fingerprint(samples)),
                samples.len(),
                what,
                |p| make(&self.ds, samples, p),
                progress,
            )?);
        }
        let [train, val]: [Arc<Examples>; 2] = out.try_into().expect("two sets");
        Ok([train, val])
    }

    /// The data in words, for the manifest.
    pub fn describe(&self, spec: &TrainSpec) -> String {
        let mut labels = match &self.labels_from {
            Some(p) => format!(", labels from {}", p.display()),
            None => String::new(),
        };
        if let Some(masks) = &self.cut_outs_from {
            labels.push_str(&format!(
                ", each film also cut out by its mask in {} (black outside it)",
                masks.display()
            ));
        }
        format!(
            "{}{labels} ({} labelled images trained on, {} held out for validation: {})",
            spec.data_words(),
            self.train.len(),
            self.val.len(),
            match &spec.holdout {
                Some(p) => format!("the ids in {}", p.display()),
                None => format!("sex-stratified split, seed {}", spec.split_seed),
            }
        )
    }
}

/// Examples from the cache file when it was made from the same source, else
/// prepared and cached.
fn cached(
    path: &Path,
    source: &str,
    n: usize,
    what: &str,
    make: impl FnOnce(&(dyn Fn() + Sync)) -> boneage_core::Result<Examples>,
    progress: &dyn Progress,
) -> Result<Arc<Examples>, TrainingError> {
    if path.is_file() {
        match Examples::load(path, source) {
            Ok(ex) => {
                progress.note(&format!(
                    "{what}: {} examples from the cache {}",
                    ex.items.len(),
                    path.display()
                ));
                return Ok(Arc::new(ex));
            }
            Err(e) => progress.note(&format!("{e}; preparing again")),
        }
    }
    progress.start(&format!("preparing {what}"), n);
    let ex = make(&|| progress.inc())?;
    progress.finish();
    ex.save(path, source)?;
    progress.note(&format!(
        "{what}: {} examples prepared and cached in {}",
        ex.items.len(),
        path.display()
    ));
    Ok(Arc::new(ex))
}

/// The augmentation each network trains with (kept beside [`Augment`], so that the
/// engine's tests use the same values).
pub use boneage_nn::data::augment;

/// Validation MAE of predicting the mean training age (per sex when `per_sex`).
pub fn mean_age_baseline(train: &Examples, val: &Examples, per_sex: bool) -> f64 {
    let age = |e: &Example| match e.target {
        Target::Age(m) => m as f64,
        _ => f64::NAN,
    };
    let mean = |male: Option<bool>| {
        let v: Vec<f64> = train
            .items
            .iter()
            .filter(|e| male.is_none_or(|m| e.male == m))
            .map(age)
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    let (all, m, f) = (mean(None), mean(Some(true)), mean(Some(false)));
    let err: f64 = val
        .items
        .iter()
        .map(|e| {
            let p = match (per_sex, e.male) {
                (false, _) => all,
                (true, true) => m,
                (true, false) => f,
            };
            (age(e) - p).abs()
        })
        .sum();
    err / val.items.len().max(1) as f64
}

/// Validation error of predicting each key point's mean training position, in
/// input pixels, point by point (fingertip, thumb, capitate; or the capitate alone).
pub fn mean_keypoint_baseline(train: &Examples, val: &Examples) -> Vec<f64> {
    let n = train.target_len();
    let mut m = vec![0f32; n];
    for e in &train.items {
        if let Target::Keypoints(k) = &e.target {
            for (a, b) in m.iter_mut().zip(k) {
                *a += b / train.items.len() as f32;
            }
        }
    }
    let mut err = vec![0f64; n / 2];
    for item in &val.items {
        if let Target::Keypoints(k) = &item.target {
            for (i, e) in err.iter_mut().enumerate() {
                let dx = (k[2 * i] - m[2 * i]) as f64 * val.width as f64 / 2.0;
                let dy = (k[2 * i + 1] - m[2 * i + 1]) as f64 * val.height as f64 / 2.0;
                *e += (dx * dx + dy * dy).sqrt() / val.items.len().max(1) as f64;
            }
        }
    }
    err
}

/// What a run's manifest says its net is for, beyond the net itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunLabels {
    /// The patients it is for.
    pub sex: Option<Cohort>,
    /// What a bone-age net reads.
    pub region: Option<View>,
    /// The registered canvas its region crops come from.
    pub canvas: Option<Canvas>,
    /// A refining net's point (the examples sheet draws it in that point's colour).
    pub refines: Option<Refined>,
}

/// Runs one network's training on prepared examples: writes the examples sheet,
/// then fits, resumably.
#[allow(clippy::too_many_arguments)]
pub fn run_task<T: Task>(
    task: &T,
    spec: &TrainSpec,
    data: &TrainData,
    [train, val]: [Arc<Examples>; 2],
    augment: Augment,
    labels: RunLabels,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Outcome<T::Model>, TrainingError> {
    let config = TrainConfig {
        epochs: spec.epochs,
        batch_size: spec.batch,
        lr_start: spec.lr,
        lr_end: spec.lr_end,
        schedule: spec.schedule,
        seed: spec.seed,
        recalibrate_bn: true,
        adam_epsilon: spec.adam_eps,
        augment: if spec.no_augment {
            Augment::NONE
        } else {
            augment
        },
    };
    let sheet = spec.out.join("examples.png");
    crate::training_sheet::examples_sheet(
        &train,
        &config.augment,
        spec.seed,
        labels.refines,
        &sheet,
    )?;
    observer.message(&format!(
        "what the network sees (16 augmented training examples): {}",
        sheet.display()
    ));
    let run = RunSpec {
        dir: spec.out.clone(),
        train,
        val,
        config,
        trained_on: data.describe(spec),
        sex: labels.sex,
        region: labels.region,
        canvas: labels.canvas,
        resume: spec.resume,
        stop_after: spec.stop_after,
        init_from: spec.init.clone(),
    };
    Ok(fit(task, &run, device, observer)?)
}

/// The U-Net on the masks in `masks` (`<id>.mask.png` or `<id>.png`), with
/// `augment` ([`augment::SEGMENT`], [`augment::SEGMENT_FILMS`],
/// [`augment::SEGMENT_FRAMES`] or [`augment::SEGMENT_WILD`]).
pub fn train_segment(
    spec: &TrainSpec,
    masks: &Path,
    augment: Augment,
    input: Option<[usize; 2]>,
    device: &Device,
    progress: &dyn Progress,
    observer: &mut dyn Observer,
) -> Result<bool, TrainingError> {
    let (config, preset_input) = spec.preset.unet();
    let input = input.unwrap_or(preset_input);
    // Each of the U-Net's poolings halves the input.
    let step = 1 << (config.features.len() - 1);
    if input.iter().any(|&n| n == 0 || n % step != 0) {
        return Err(TrainingError::Invalid(format!(
            "a U-Net input of {}x{}: both sides must be multiples of {step}",
            input[0], input[1]
        )));
    }
    let task = SegmentTask { config, input };
    let data = TrainData::open(spec, |s| find_mask(masks, &s.id).is_some())?;
    // The masks' content, not only their folder: a mask edited in place makes the
    // cache stale.
    let source = format!(
        "masks {} {} {}x{}",
        masks.display(),
        folder_fingerprint(masks)?,
        input[0],
        input[1]
    );
    let ex = data.examples(
        spec,
        &source,
        |ds, s, p| mask_examples(ds, s, masks, input, p),
        progress,
    )?;
    let out = run_task(
        &task,
        spec,
        &data,
        ex,
        augment,
        RunLabels::default(),
        device,
        observer,
    )?;
    Ok(out.finished)
}

/// Reads the ImageNet weights at `path` once into a fresh network (`load`), so that a
/// wrong file is an error before any data is prepared.
fn check_pretrained<M>(
    variant: LiteVariant,
    path: &Path,
    load: impl FnOnce() -> Result<M, boneage_nn::weights::WeightsError>,
    progress: &dyn Progress,
) -> Result<(), TrainingError> {
    load().map_err(|e| TrainingError::Train(e.into()))?;
    progress.note(&format!(
        "backbone: {} from {}",
        variant.title(),
        path.display()
    ));
    Ok(())
}

/// Which key-point network to train.
#[derive(Clone, Debug, Default)]
pub struct KeypointRecipe {
    /// The heat-map locator on EfficientNet-Lite0 ([`Preset::lite_keypoints`],
    /// trained with [`augment::KEYPOINTS_WILD`]) instead of the VGG regressor.
    pub lite: bool,
    /// Input `[height, width]` instead of the preset's (the locator's default:
    /// 320×256).
    pub input: Option<[usize; 2]>,
    /// ImageNet weights for the Lite0 backbone (`scripts/import_efficientnet.py`).
    pub pretrained: Option<PathBuf>,
    /// A refining net instead: the heat-map locator of this one point, on a field
    /// around a first guess ([`boneage_nn::inputs::refine_input`], default
    /// 192×192), trained with [`augment::REFINE`].
    pub refine: Option<Refined>,
    /// The locator's backbone cut after its fifth stage (heat maps at a 16th of the
    /// input; a refining net always is).
    pub fine: bool,
    /// Heat maps at an 8th of the input: the cut backbone's output doubled and
    /// joined with its third stage's ([`boneage_nn::keypoint_net::KeypointNetConfig::skip_stages`]); implies
    /// `fine`.
    pub finer: bool,
    /// The heat-map locator trained also on each map's cross-entropy against a
    /// Gaussian of this many cells around its point
    /// ([`boneage_nn::keypoint_net::gaussian_maps`]).
    pub heat_sigma: Option<f32>,
    /// A refining net on the whole backbone (heat maps at a 32nd of the input, as the
    /// shipped thumb net) instead of the backbone cut after its fifth stage.
    pub whole_backbone: bool,
    /// A refining net trained also on films cut out by these hand masks (a second
    /// example of each film with a mask here: [`refine_examples`]).
    pub cut_outs: Option<PathBuf>,
    /// The VGG regressor trained with [`augment::KEYPOINTS_FILMS`] instead of
    /// [`augment::KEYPOINTS`]: also on films as other sources send them.
    pub films: bool,
}

/// The key-point network on the points in `keypoints` (CSV).
pub fn train_keypoints(
    spec: &TrainSpec,
    keypoints: &Path,
    recipe: &KeypointRecipe,
    device: &Device,
    progress: &dyn Progress,
    observer: &mut dyn Observer,
) -> Result<bool, TrainingError> {
    if recipe.pretrained.is_some() && !recipe.lite {
        return Err(TrainingError::Invalid(
            "--pretrained holds EfficientNet-Lite0 weights: add --backbone lite0".into(),
        ));
    }
    if (recipe.fine || recipe.finer) && !recipe.lite {
        return Err(TrainingError::Invalid(
            "--fine cuts the heat-map locator's backbone: add --backbone lite0".into(),
        ));
    }
    if recipe
        .heat_sigma
        .is_some_and(|s| !(s > 0.0 && s.is_finite()))
    {
        return Err(TrainingError::Invalid(
            "--heat-sigma is a width in heat-map cells: give a positive number".into(),
        ));
    }
    if recipe.heat_sigma.is_some() && !recipe.lite {
        return Err(TrainingError::Invalid(
            "--heat-sigma trains heat maps, which only the locator has: add --backbone lite0"
                .into(),
        ));
    }
    if recipe.films && recipe.lite {
        return Err(TrainingError::Invalid(
            "--films is the VGG regressor's (--backbone vgg): the locator trains on such films \
             already"
                .into(),
        ));
    }
    if recipe.refine.is_some() && !recipe.lite {
        return Err(TrainingError::Invalid(
            "a refining net is a heat-map locator: add --backbone lite0".into(),
        ));
    }
    let mut config = if let Some(point) = recipe.refine {
        let [h, w] = recipe.input.unwrap_or([192, 192]);
        if h != w {
            return Err(TrainingError::Invalid(format!(
                "a refining net's field is square: --input {h}x{w} is not"
            )));
        }
        spec.preset
            .lite_keypoints([h, w])
            .with_refines(Some(point))
            .with_lite_stages(
                (!recipe.whole_backbone).then_some(boneage_nn::efficientnet::STAGES_TO_16TH),
            )
    } else if recipe.lite {
        spec.preset
            .lite_keypoints(recipe.input.unwrap_or([320, 256]))
            .with_lite_stages(
                (recipe.fine || recipe.finer).then_some(boneage_nn::efficientnet::STAGES_TO_16TH),
            )
            .with_skip_stages(
                recipe
                    .finer
                    .then_some(boneage_nn::efficientnet::STAGES_TO_8TH),
            )
    } else {
        spec.preset.keypoints()
    };
    if let (Some([h, w]), false) = (recipe.input, recipe.lite) {
        config.height = h;
        config.width = w;
    }
    if let Some(p) = &recipe.pretrained {
        check_pretrained(
            LiteVariant::Lite0,
            p,
            || config.init(device).load_pretrained(p),
            progress,
        )?;
    }
    let task = KeypointTask {
        config,
        pretrained: recipe.pretrained.clone(),
        heat_sigma: recipe.heat_sigma,
    };
    let input = task.input();
    let (kp, mut data, points) = keypoint_data(spec, keypoints)?;
    if let Some(masks) = &recipe.cut_outs
        && !data.train.iter().any(|s| find_mask(masks, &s.id).is_some())
    {
        return Err(TrainingError::Invalid(format!(
            "--cut-outs {}: no mask there for any training film (a mask is named \
             <id>.mask.png or <id>.png)",
            masks.display()
        )));
    }
    data.cut_outs_from = recipe.cut_outs.clone();
    let source = format!(
        "{} {} {points:016x} {}x{}{}",
        recipe.refine.map_or("keypoints", Refined::code),
        keypoints.display(),
        input[0],
        input[1],
        recipe
            .cut_outs
            .as_ref()
            .map_or(String::new(), |m| format!(" cut out by {}", m.display()))
    );
    let ex = data.examples(
        spec,
        &source,
        |ds, s, p| {
            if let Some(point) = recipe.refine {
                refine_examples(ds, s, &kp, point, input[0], recipe.cut_outs.as_deref(), p)
            } else {
                keypoint_examples(ds, s, &kp, input, p)
            }
        },
        progress,
    )?;
    let base = mean_keypoint_baseline(&ex[0], &ex[1]);
    let base: Vec<String> = task
        .metric_names()
        .iter()
        .zip(&base)
        .map(|(n, e)| format!("{} {e:.2} px", n.trim_end_matches("_error_px")))
        .collect();
    progress.note(&format!(
        "baseline (mean training position): {} of the {}x{} input",
        base.join(", "),
        input[0],
        input[1]
    ));
    let out = run_task(
        &task,
        spec,
        &data,
        ex,
        if recipe.refine.is_some() {
            augment::REFINE
        } else if recipe.lite {
            augment::KEYPOINTS_WILD
        } else if recipe.films {
            augment::KEYPOINTS_FILMS
        } else {
            augment::KEYPOINTS
        },
        RunLabels {
            refines: recipe.refine,
            ..RunLabels::default()
        },
        device,
        observer,
    )?;
    Ok(out.finished)
}

/// The key points of `keypoints`, the films that have them split as `spec` says, and
/// a fingerprint of the points themselves (not only of the file's name: a labels file
/// edited in place makes the example cache stale).
fn keypoint_data(
    spec: &TrainSpec,
    keypoints: &Path,
) -> Result<(BTreeMap<String, KeyPoints>, TrainData, u64), TrainingError> {
    let kp = read_csv(keypoints)?;
    let mut data = TrainData::open(spec, |s| kp.contains_key(&s.id))?;
    data.labels_from = Some(keypoints.to_path_buf());
    let points = fnv1a(
        kp.iter()
            .flat_map(|(id, k)| format!("{id}:{k:?};").into_bytes()),
    );
    Ok((kp, data, points))
}

/// Right registrations and wrong ones per film in the verifier's examples.
pub const VERIFIER_PER_FILM: usize = 6;

/// The same with `--films`: [`VERIFIER_PER_FILM`] on the film as sent, and half as
/// many again on two copies of it changed as other sources send films.
pub const VERIFIER_PER_FILM_FILMS: usize = 9;

/// The registration verifier (`boneage train verifier`): right registrations from
/// the films' points in `keypoints` (each point moved by up to
/// [`crate::registration_check::VERIFIER_JITTER`] of the span) against wrong ones
/// drawn the ways the front end gets them wrong, [`VERIFIER_PER_FILM`] of each per
/// film; the films segmented by the U-Net of `models` and registered onto the CPU
/// canvas, as the pipeline registers them. The examples are drawn once (cached);
/// the network trains on them without further augmentation.
///
/// With `films`, [`VERIFIER_PER_FILM_FILMS`] of each per film, on the film as sent
/// and on copies of it as other sources send films
/// ([`crate::registration_check::verifier_examples`]).
///
/// With [`VerifierKind::Capitate`] it is the capitate check instead: the network
/// reads the carpus at full size ([`boneage_nn::verifier::capitate_crop`], 192 ×
/// 192) and the wrong registrations are the capitate moved.
#[allow(clippy::too_many_arguments)]
pub fn train_verifier(
    kind: VerifierKind,
    films: bool,
    spec: &TrainSpec,
    keypoints: &Path,
    models: &Path,
    device: &Device,
    progress: &dyn Progress,
    observer: &mut dyn Observer,
) -> Result<bool, TrainingError> {
    let pipeline = boneage_nn::pipeline::Pipeline::load_without_check(models, Canvas::CPU, device)
        .map_err(|e| TrainingError::Train(e.into()))?;
    let config = match kind.crop() {
        None => VerifierNetConfig::new(),
        Some(crop @ [_, _, w, h]) => VerifierNetConfig::new()
            .with_height(h)
            .with_width(w)
            .with_crop(Some(crop)),
    };
    let task = VerifyTask { config };
    let input = task.input();
    let (kp, data, points) = keypoint_data(spec, keypoints)?;
    let unet = std::fs::read(models.join("unet.safetensors")).map_err(|cause| {
        boneage_core::Error::Io {
            path: models.join("unet.safetensors"),
            cause,
        }
    })?;
    // With `films`, the examples read copies of each film as other sources send it
    // too, the framed-film U-Net segmenting some of them: more of each, and the
    // cache keyed by that U-Net as well.
    let (per_film, films_source) = if films {
        let framed = models.join("unet_framed.safetensors");
        let framed = match std::fs::read(&framed) {
            Ok(bytes) => format!(" framed {:016x}", fnv1a(bytes)),
            Err(_) => " no framed".to_string(),
        };
        (VERIFIER_PER_FILM_FILMS, format!(" films 2:1{framed}"))
    } else {
        (VERIFIER_PER_FILM, String::new())
    };
    let what = match kind {
        VerifierKind::Registration => "verifier".to_string(),
        VerifierKind::Capitate => {
            format!("capitate check {:?}", kind.crop())
        }
    };
    let source = format!(
        "{what} {} {points:016x} unet {:016x}{films_source} {per_film} per film, jitter {}, seed {} {}x{}",
        keypoints.display(),
        fnv1a(unet),
        crate::registration_check::VERIFIER_JITTER,
        spec.seed,
        input[0],
        input[1]
    );
    let ex = data.examples(
        spec,
        &source,
        |ds, s, p| {
            crate::registration_check::verifier_examples(
                kind, &pipeline, ds, s, &kp, input, per_film, films, spec.seed, p,
            )
        },
        progress,
    )?;
    let out = run_task(
        &task,
        spec,
        &data,
        ex,
        Augment::NONE,
        RunLabels::default(),
        device,
        observer,
    )?;
    Ok(out.finished)
}

/// Where a bone-age net's images come from and what it is.
#[derive(Clone, Debug)]
pub struct AgeRecipe {
    /// What it reads.
    pub view: View,
    /// The region crops of a `boneage preprocess --out` folder, instead of
    /// registering from key points.
    pub crops: Option<PathBuf>,
    /// Key points to register the films (default: DATA/keypoints.csv).
    pub keypoints: Option<PathBuf>,
    /// Input `[height, width]` instead of the preset's.
    pub input: Option<[usize; 2]>,
    /// VGG block widths instead of the preset's.
    pub widths: Option<Vec<usize>>,
    /// Fully connected widths instead of the preset's.
    pub hidden: Option<Vec<usize>>,
    /// An EfficientNet-Lite backbone ([`Preset::lite_age`]) instead of VGG blocks.
    pub lite: Option<LiteVariant>,
    /// ImageNet weights for that backbone (`scripts/import_efficientnet.py`).
    pub pretrained: Option<PathBuf>,
    /// Output head.
    pub head: Head,
    /// The patients it is for.
    pub cohort: Cohort,
}

impl AgeRecipe {
    /// The view of the films, after checking that what it needs is there.
    fn age_view(&self, spec: &TrainSpec) -> Result<AgeView, TrainingError> {
        let invalid = |s: String| Err(TrainingError::Invalid(s));
        let Some(region) = self.view.region() else {
            return Ok(AgeView::Whole);
        };
        if let Some(dir) = &self.crops {
            if !dir.is_dir() {
                return invalid(format!("--crops {}: not a folder", dir.display()));
            }
            return Ok(AgeView::Crops {
                dir: dir.clone(),
                canvas: boneage_core::dataset::crops_canvas(dir)?,
                region,
            });
        }
        let kp_path = self
            .keypoints
            .clone()
            .unwrap_or_else(|| spec.data.join("keypoints.csv"));
        if !kp_path.is_file() {
            return invalid(format!(
                "region {region} needs key points to register the images: {} does not exist \
                 (give --keypoints, or use --region whole)",
                kp_path.display()
            ));
        }
        Ok(AgeView::Region {
            keypoints: read_csv(&kp_path)?,
            canvas: spec.preset.canvas(),
            region,
        })
    }
}

/// A bone-age net for one region (or the whole film), head and cohort.
pub fn train_age(
    spec: &TrainSpec,
    recipe: &AgeRecipe,
    device: &Device,
    progress: &dyn Progress,
    observer: &mut dyn Observer,
) -> Result<bool, TrainingError> {
    let view = recipe.age_view(spec)?;
    let input = recipe.input.unwrap_or(spec.preset.age_input(recipe.view));
    let head = match recipe.head {
        Head::Regression => AgeHead::Regression,
        Head::Classification => AgeHead::Classification { classes: 240 },
    };
    let mixed = recipe.cohort == Cohort::Mixed;
    let mut config = match recipe.lite {
        Some(variant) => spec.preset.lite_age(variant, input, head, mixed),
        None => spec.preset.age(input, head, mixed),
    };
    if recipe.pretrained.is_some() && recipe.lite.is_none() {
        return Err(TrainingError::Invalid(
            "--pretrained holds EfficientNet-Lite weights: add --backbone lite0 (or lite1)".into(),
        ));
    }
    if let (Some(variant), Some(_)) = (recipe.lite, &recipe.widths) {
        return Err(TrainingError::Invalid(format!(
            "--widths sets VGG blocks; the {} backbone has its own",
            variant.title()
        )));
    }
    if let Some(w) = &recipe.widths {
        if w.is_empty() || w.contains(&0) {
            return Err(TrainingError::Invalid(format!(
                "--widths {w:?}: give positive block widths"
            )));
        }
        config.features = w.clone();
    }
    if let Some(h) = &recipe.hidden {
        if h.contains(&0) {
            return Err(TrainingError::Invalid(format!(
                "--hidden {h:?}: give positive widths"
            )));
        }
        config.hidden = h.clone();
    }
    if let (Some(variant), Some(p)) = (recipe.lite, &recipe.pretrained) {
        check_pretrained(
            variant,
            p,
            || config.init(device).load_pretrained(p),
            progress,
        )?;
    }
    let task = AgeTask {
        config,
        pretrained: recipe.pretrained.clone(),
    };
    // Registered regions need the film's key points; films without them (the
    // preprocessing refused them, or they are not labelled) are left out.
    let data = TrainData::open(spec, |s| recipe.cohort.covers(s.sex) && view.has(&s.id))?;
    let source = format!(
        "age {} region {} {}x{} sex {}",
        spec.data_words(),
        recipe.view,
        input[0],
        input[1],
        recipe.cohort
    );
    let ex = data.examples(
        spec,
        &source,
        |ds, s, p| age_examples(ds, s, &view, input, p),
        progress,
    )?;
    if ex[1].items.is_empty() {
        progress.note(&format!(
            "no validation films (--val 0): training on all {} (measure the recipe by cross-validation)",
            ex[0].items.len()
        ));
    } else {
        let base = mean_age_baseline(&ex[0], &ex[1], mixed);
        progress.note(&format!(
            "baseline (predict the mean training age{}): validation MAE {base:.2} months",
            if mixed { " per sex" } else { "" }
        ));
    }
    let labels = RunLabels {
        sex: Some(recipe.cohort),
        region: Some(recipe.view),
        canvas: view.canvas(),
        refines: None,
    };
    let out = run_task(
        &task,
        spec,
        &data,
        ex,
        augment::AGE,
        labels,
        device,
        observer,
    )?;
    Ok(out.finished)
}
