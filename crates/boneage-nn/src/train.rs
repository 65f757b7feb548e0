//! The training engine: Adam with a learning rate falling from `lr_start` to
//! `lr_end` (cosine over all steps, or ÷10 steps at a third and two thirds of the
//! epochs), augmented batches built on a loader thread, validation after each epoch,
//! a JSON-lines log, and a checkpoint per epoch written atomically, from which
//! `resume` continues a killed run to the same result as an uninterrupted one.
//!
//! A run directory holds:
//! - `config.json`: the network's and the training's configuration and the data;
//! - `log.jsonl`: one [`EpochRecord`] per line;
//! - `checkpoints/epoch-NNNN/`: model and optimizer state (burnpack, which keeps the
//!   parameter ids that Adam's state is keyed by) and `state.json`; the last two are kept;
//! - `model.safetensors` + `model.json`: the latest weights and their manifest.
//!
//! Determinism: the data order of epoch `e` is a shuffle seeded by `(seed, e)`, each
//! example's augmentation is seeded by `(seed, e, position)`, and the device's
//! generator (dropout) is reseeded with `(seed, e)` at the start of each epoch, so an
//! epoch depends only on the weights and optimizer state it starts from.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use boneage_core::registration::Canvas;
use boneage_core::{Cohort, NetKind, View};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::store::{BurnpackStore, ModuleSnapshot};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::{Augment, Batch, Examples, NORMALIZATION};
use crate::weights::{self, Manifest, WeightsError};

/// How the learning rate falls from `lr_start` to `lr_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Schedule {
    /// Half a cosine over all steps.
    Cosine,
    /// Constant, divided by 10 at one and two thirds of the epochs (1e-3 → 1e-4 →
    /// 1e-5 for the defaults), never below `lr_end`.
    Step,
}

/// Training settings; saved in the run's `config.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Passes over the training examples.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// First learning rate (the paper's 1e-3).
    pub lr_start: f64,
    /// Last learning rate (the paper's 1e-5).
    pub lr_end: f64,
    /// How it falls.
    pub schedule: Schedule,
    /// Seed of initial weights, data order, augmentation and dropout.
    pub seed: u64,
    /// Train-time augmentation.
    pub augment: Augment,
    /// After the last epoch, replace the batch norms' running statistics (which
    /// followed the last few augmented batches) by their average over the
    /// unaugmented training images, the images inference will resemble. On a
    /// region-A bone-age model this took the validation MAE from 21.9 to 18.5 months
    /// (PyTorch, same recipe: `bench/torch_ref_train.py`). Only networks whose task
    /// implements [`Task::set_bn_momentum`] are affected. With film-like augmentation
    /// ([`Augment::photometric`]) the average is over augmented training images
    /// instead: there the network learnt its features under the statistics of grey
    /// backgrounds, exposure changes and inversions, and the plain films' statistics
    /// took the key-point locator's validation error from 8.9 to 24.5 px (fingertip,
    /// of a 320-pixel input).
    #[serde(default)]
    pub recalibrate_bn: bool,
    /// Adam's epsilon. burn's default, 1e-5, is what every shipped model was trained
    /// with; PyTorch uses 1e-8 and Keras 1e-7.
    #[serde(default = "default_adam_epsilon")]
    pub adam_epsilon: f32,
}

fn default_adam_epsilon() -> f32 {
    1e-5
}

impl TrainConfig {
    /// The learning rate at `step` of `total` (0-based), in epoch `epoch`.
    pub fn lr(&self, step: usize, total: usize, epoch: usize) -> f64 {
        match self.schedule {
            Schedule::Cosine => {
                let t = if total > 1 {
                    step as f64 / (total - 1) as f64
                } else {
                    0.0
                };
                self.lr_end
                    + (self.lr_start - self.lr_end) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
            Schedule::Step => {
                let third = (epoch * 3) / self.epochs.max(1);
                (self.lr_start / 10f64.powi(third.min(2) as i32)).max(self.lr_end)
            }
        }
    }
}

/// What a network needs from the engine: how to build it, its loss on a batch, and
/// its validation metrics.
pub trait Task {
    /// The network.
    type Model: Module;
    /// Which network.
    fn net(&self) -> NetKind;
    /// The network's config as JSON (saved in manifests and `config.json`).
    fn config_json(&self) -> serde_json::Value;
    /// Input (height, width).
    fn input(&self) -> [usize; 2];
    /// A freshly initialised network.
    fn init(&self, device: &Device) -> Self::Model;
    /// Weights a fresh network starts from in part (an ImageNet backbone), if any;
    /// recorded in the run's `config.json`.
    fn pretrained(&self) -> Option<&Path> {
        None
    }
    /// Settings of the loss beyond the network's config, if any (recorded in the
    /// run's `config.json` as `loss`, so that a run resumed with others is refused).
    fn loss_config(&self) -> Option<serde_json::Value> {
        None
    }
    /// The training loss of a batch.
    fn loss(&self, model: &Self::Model, batch: &Batch, device: &Device) -> Tensor<1>;
    /// Sets the batch norms' momentum (`None`: back to the network's own), for
    /// networks whose batch-norm statistics the engine recalibrates (see
    /// [`TrainConfig::recalibrate_bn`]); the default leaves the network as it is.
    fn set_bn_momentum(&self, model: Self::Model, _momentum: Option<f64>) -> Self::Model {
        model
    }
    /// Names of the validation metrics; the first is the one reported in progress.
    fn metric_names(&self) -> &'static [&'static str];
    /// Sums over the batch of each metric and of the loss (last), so that the engine
    /// can average them over the validation set.
    fn metric_sums(&self, model: &Self::Model, batch: &Batch, device: &Device) -> Vec<f64>;
}

/// Batch-norm running statistics averaged over `examples` (batches of 32, drawn with
/// `augment`, usually none): each batch's forward pass in training mode updates them with momentum
/// `1 / (k + 1)`, which makes them the average over the batches; the training
/// momentum is restored afterwards. No weight changes.
fn recalibrate_bn<T: Task>(
    task: &T,
    mut model: T::Model,
    examples: &Arc<Examples>,
    augment: Augment,
    seed: u64,
    device: &Device,
) -> T::Model {
    let n = examples.items.len();
    let rx = examples.batches((0..n).collect(), 32, augment, move |k| {
        seed ^ 0x5eed_ba7c ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
    });
    // Parameters untracked for these passes: nothing calls backward on them, and with
    // gradients required the autodiff graph of every pass stays alive (measured: about
    // 0.2 GB per batch of 8 region-A images; 22 GB at the end of a 900-image run).
    model = model.no_grad();
    for (k, batch) in rx.iter().enumerate() {
        model = task.set_bn_momentum(model, Some(1.0 / (k + 1) as f64));
        // The forward pass updates the statistics; no backward, no step.
        drop(task.loss(&model, &batch, device));
    }
    // Every parameter of these networks trains: require gradients again.
    task.set_bn_momentum(model, None).unfreeze()
}

/// One epoch's summary: a line of `log.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch.
    pub epoch: usize,
    /// Learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean validation loss.
    pub val_loss: f64,
    /// Validation metrics by name (means over examples).
    pub val: BTreeMap<String, f64>,
    /// Wall time of the epoch (training and validation), seconds.
    pub seconds: f64,
}

/// What a run is: where it goes, its data and settings.
pub struct RunSpec {
    /// Run directory.
    pub dir: PathBuf,
    /// Training examples.
    pub train: Arc<Examples>,
    /// Validation examples (never trained on).
    pub val: Arc<Examples>,
    /// Training settings.
    pub config: TrainConfig,
    /// The data, in words (for the manifest).
    pub trained_on: String,
    /// Cohort for the manifest.
    pub sex: Option<Cohort>,
    /// What a bone-age net reads, for the manifest.
    pub region: Option<View>,
    /// The registered canvas its region crops come from, for the manifest.
    pub canvas: Option<Canvas>,
    /// Continue from the last checkpoint in `dir`.
    pub resume: bool,
    /// Stop after this many epochs in total (as if killed; the run can be resumed).
    pub stop_after: Option<usize>,
    /// Start from these weights (same net, config and input) instead of a random
    /// initialisation: the next round of positive mining fine-tunes the last.
    pub init_from: Option<PathBuf>,
}

/// Follows a run: progress bars, messages.
pub trait Observer {
    /// An epoch of `steps` steps begins.
    fn epoch_start(&mut self, _epoch: usize, _epochs: usize, _steps: usize) {}
    /// A step finished with this loss.
    fn step(&mut self, _step: usize, _loss: f64) {}
    /// Validation begins.
    fn validating(&mut self) {}
    /// An epoch ended.
    fn epoch_end(&mut self, _record: &EpochRecord) {}
    /// Something worth telling the user.
    fn message(&mut self, _text: &str) {}
}

/// An observer that says nothing.
pub struct Silent;
impl Observer for Silent {}

/// What can go wrong in a run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A file could not be read or written.
    #[error("{}: {cause}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not chained).
        cause: std::io::Error,
    },
    /// Weights could not be written or read.
    #[error(transparent)]
    Weights(#[from] WeightsError),
    /// A run file could not be written.
    #[error(transparent)]
    Write(#[from] boneage_core::Error),
    /// The run cannot start or resume as asked.
    #[error("{}: {detail}", dir.display())]
    Run {
        /// The run directory.
        dir: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A checkpoint could not be written or read.
    #[error("{}: {detail}", path.display())]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError + '_ {
    move |cause| TrainError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The result of a run.
pub struct Outcome<M> {
    /// The trained network (training mode; call `valid()` for inference).
    pub model: M,
    /// Every epoch's record, from the first.
    pub records: Vec<EpochRecord>,
    /// Whether all epochs are done (false after `stop_after`).
    pub finished: bool,
}

/// splitmix64 of a few words: independent seeds for epochs and examples.
fn mix(words: &[u64]) -> u64 {
    let mut z = 0x9E37_79B9_7F4A_7C15u64;
    for &w in words {
        z = (z ^ w).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    /// Epochs completed.
    epochs_done: usize,
    records: Vec<EpochRecord>,
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map(|v| v[0] as f64)
        .unwrap_or(f64::NAN)
}

/// The checkpoint directories of a run, oldest first.
fn checkpoints(dir: &Path) -> Vec<(usize, PathBuf)> {
    let mut found: Vec<(usize, PathBuf)> = std::fs::read_dir(dir.join("checkpoints"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("epoch-")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    found.sort();
    found
}

fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    Ok(boneage_core::io::write_atomic(path, |w| {
        w.write_all(bytes)
    })?)
}

/// Refuses a run that cannot start: no examples, no epochs, inputs of another size.
fn check_run<T: Task>(task: &T, spec: &RunSpec) -> Result<(), TrainError> {
    let run_err = |detail: String| TrainError::Run {
        dir: spec.dir.clone(),
        detail,
    };
    if spec.train.items.is_empty() {
        return Err(run_err("no training examples".into()));
    }
    if spec.config.epochs == 0 || spec.config.batch_size == 0 {
        return Err(run_err("epochs and batch size must be at least 1".into()));
    }
    let [h, w] = task.input();
    for (what, ex) in [("training", &spec.train), ("validation", &spec.val)] {
        if (ex.height, ex.width) != (h, w) {
            return Err(run_err(format!(
                "{what} examples are {}x{} (HxW), the network takes {h}x{w}",
                ex.height, ex.width
            )));
        }
    }
    Ok(())
}

/// What `config.json` records; a resumed run must match it exactly.
fn run_config<T: Task>(task: &T, spec: &RunSpec) -> serde_json::Value {
    let mut config = serde_json::json!({
        "net": task.net(),
        "net_config": task.config_json(),
        "input": task.input(),
        "normalization": NORMALIZATION,
        "train": spec.config,
        "data": spec.trained_on,
        "train_examples": spec.train.items.len(),
        "val_examples": spec.val.items.len(),
        "init_from": spec.init_from.as_ref().map(|p| p.display().to_string()),
    });
    // Only when there is one, so that runs started before the field existed resume.
    if let Some(p) = task.pretrained() {
        config["pretrained"] = p.display().to_string().into();
    }
    if let Some(loss) = task.loss_config() {
        config["loss"] = loss;
    }
    config
}

/// Refuses to resume a run that was started with other settings, naming them.
fn check_same_config(spec: &RunSpec, config: &serde_json::Value) -> Result<(), TrainError> {
    let path = spec.dir.join("config.json");
    let saved = std::fs::read_to_string(&path).map_err(io(&path))?;
    let saved: serde_json::Value =
        serde_json::from_str(&saved).map_err(|e| TrainError::Checkpoint {
            path: path.clone(),
            detail: format!("not a run config: {e}"),
        })?;
    if saved == *config {
        return Ok(());
    }
    let differs: Vec<String> = config
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| saved.get(k.as_str()) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    Err(TrainError::Run {
        dir: spec.dir.clone(),
        detail: format!(
            "cannot resume: this run was started with other settings ({} differ); \
             resume with the same arguments, or start a new run in another folder",
            differs.join(", ")
        ),
    })
}

/// The model and state of the checkpoint in `last`.
fn load_checkpoint<M: Module>(model: M, last: &Path) -> Result<(M, CheckpointState), TrainError> {
    let state_path = last.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(io(&state_path))?;
    let state: CheckpointState =
        serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint {
            path: state_path.clone(),
            detail: e.to_string(),
        })?;
    let mpath = last.join("model.bpk");
    let mut store = BurnpackStore::from_file(&mpath).allow_partial(false);
    let mut model = model;
    let result = model
        .load_from(&mut store)
        .map_err(|e| TrainError::Checkpoint {
            path: mpath.clone(),
            detail: format!("cannot read the model: {e}"),
        })?;
    if !result.errors.is_empty() || !result.missing.is_empty() {
        return Err(TrainError::Checkpoint {
            path: mpath,
            detail: "the checkpoint does not fit the network".into(),
        });
    }
    Ok((model, state))
}

/// The manifest of `task`'s weights; `record` adds the run's data and metrics.
fn manifest_of<T: Task>(task: &T, spec: &RunSpec, record: Option<&EpochRecord>) -> Manifest {
    let cfg = &spec.config;
    let mut m = Manifest {
        version: weights::MANIFEST_VERSION,
        net: task.net(),
        config: task.config_json(),
        input: task.input(),
        normalization: NORMALIZATION.to_string(),
        sex: None,
        region: None,
        canvas: None,
        variant: None,
        trained_on: String::new(),
        metrics: Default::default(),
    };
    if let Some(r) = record {
        m.sex = spec.sex;
        m.region = spec.region;
        m.canvas = spec.canvas;
        m.trained_on = format!(
            "{} ({} training / {} validation examples, {} of {} epochs, seed {})",
            spec.trained_on,
            spec.train.items.len(),
            spec.val.items.len(),
            r.epoch,
            cfg.epochs,
            cfg.seed
        );
        if let Some(p) = task.pretrained() {
            m.trained_on += &format!(
                "; backbone started from ImageNet weights ({})",
                p.file_name().unwrap_or_default().to_string_lossy()
            );
        }
        // A fine-tuned net names what it started from, and what that was trained on,
        // so that its manifest alone tells every film it has seen.
        if let Some(p) = &spec.init_from {
            m.trained_on += &format!("; started from the weights in {}", p.display());
            if let Ok(from) = weights::read_manifest(p) {
                m.trained_on += &format!(", themselves trained on {}", from.trained_on);
            }
        }
        m.metrics = r
            .val
            .iter()
            .map(|(k, v)| (format!("val_{k}"), *v))
            .chain([("val_loss".to_string(), r.val_loss)])
            // Without validation examples there are no metrics (NaN), and JSON has
            // no NaN.
            .filter(|(_, v)| v.is_finite())
            .collect();
    }
    m
}

/// The validation loss and metrics of `model` (inference mode) over `val`.
fn validate<T: Task>(
    task: &T,
    model: &T::Model,
    val: &Arc<Examples>,
    batch_size: usize,
    device: &Device,
) -> (f64, BTreeMap<String, f64>) {
    let names = task.metric_names();
    let mut sums = vec![0.0; names.len() + 1];
    let m = val.items.len();
    let rx = val.batches((0..m).collect(), batch_size, Augment::NONE, |_| 0);
    for batch in rx.iter() {
        for (s, v) in sums.iter_mut().zip(task.metric_sums(model, &batch, device)) {
            *s += v;
        }
    }
    let mean = |s: f64| if m > 0 { s / m as f64 } else { f64::NAN };
    let metrics = names
        .iter()
        .zip(&sums)
        .map(|(k, &s)| (k.to_string(), mean(s)))
        .collect();
    (mean(sums[names.len()]), metrics)
}

/// Trains `task` as `spec` says, reporting to `observer`.
pub fn fit<T: Task>(
    task: &T,
    spec: &RunSpec,
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<Outcome<T::Model>, TrainError> {
    check_run(task, spec)?;
    let (cfg, dir) = (&spec.config, &spec.dir);
    std::fs::create_dir_all(dir.join("checkpoints")).map_err(io(dir))?;
    let config_json = run_config(task, spec);
    let existing = checkpoints(dir);

    device.seed(cfg.seed);
    let mut model = task.init(device);
    if let Some(path) = &spec.init_from {
        // The weights may come from another input size (a convolutional net reads
        // any): the net and its config must match, and every tensor its shape.
        let mut expected = manifest_of(task, spec, None);
        expected.input = weights::read_manifest(path)?.input;
        model = weights::load(model, path, &expected)?;
        observer.message(&format!("starting from the weights in {}", path.display()));
    }
    let mut optim = AdamConfig::new().with_epsilon(cfg.adam_epsilon).init();
    let mut records: Vec<EpochRecord> = Vec::new();
    let mut start = 0;
    if spec.resume {
        check_same_config(spec, &config_json)?;
        if let Some((_, last)) = existing.last() {
            let (loaded, state) = load_checkpoint(model, last)?;
            model = loaded;
            let opath = last.join("optim.bpk");
            optim = optim.load(&opath).map_err(|e| TrainError::Checkpoint {
                path: opath.clone(),
                detail: format!("cannot read the optimizer state: {e}"),
            })?;
            (start, records) = (state.epochs_done, state.records);
            observer.message(&format!(
                "resuming after epoch {start} of {} from {}",
                cfg.epochs,
                last.display()
            ));
        } else {
            observer.message("no checkpoint yet: starting from the beginning");
        }
    } else if !existing.is_empty() {
        return Err(TrainError::Run {
            dir: dir.clone(),
            detail:
                "already holds a run (checkpoints/); use --resume to continue it, or another folder"
                    .into(),
        });
    }
    let config_text = serde_json::to_string_pretty(&config_json).expect("config serialises");
    write_file_atomic(&dir.join("config.json"), config_text.as_bytes())?;
    write_log(dir, &records)?;

    let n = spec.train.items.len();
    let steps = n.div_ceil(cfg.batch_size);
    let total = steps * cfg.epochs;
    let last_epoch = spec.stop_after.unwrap_or(cfg.epochs).min(cfg.epochs);
    let eval_device = device.clone().without_autodiff();
    for epoch in start..last_epoch {
        let t0 = Instant::now();
        observer.epoch_start(epoch + 1, cfg.epochs, steps);
        device.seed(mix(&[cfg.seed, epoch as u64, 0]));
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(mix(&[cfg.seed, epoch as u64, 1]));
        order.shuffle(&mut rng);
        let (seed, e) = (cfg.seed, epoch as u64);
        let rx = spec
            .train
            .batches(order, cfg.batch_size, cfg.augment, move |k| {
                mix(&[seed, e, 2, k as u64])
            });
        let mut loss_sum = 0.0;
        let mut lr = cfg.lr_start;
        for (s, batch) in rx.iter().enumerate() {
            lr = cfg.lr(epoch * steps + s, total, epoch);
            let loss = task.loss(&model, &batch, device);
            let v = scalar(loss.clone());
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, grads);
            loss_sum += v;
            observer.step(s + 1, v);
        }
        if cfg.recalibrate_bn && epoch + 1 == cfg.epochs {
            let augment = if cfg.augment.photometric {
                cfg.augment
            } else {
                Augment::NONE
            };
            model = recalibrate_bn(task, model, &spec.train, augment, cfg.seed, device);
        }
        observer.validating();
        let (val_loss, val) = validate(
            task,
            &model.valid(),
            &spec.val,
            cfg.batch_size,
            &eval_device,
        );
        let record = EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: loss_sum / steps as f64,
            val_loss,
            val,
            seconds: t0.elapsed().as_secs_f64(),
        };
        records.push(record.clone());
        save_checkpoint(dir, &model, &optim, epoch + 1, &records)?;
        write_log(dir, &records)?;
        let manifest = manifest_of(task, spec, Some(&record));
        weights::save(&model, &manifest, &dir.join("model.safetensors"))?;
        observer.epoch_end(&record);
    }
    Ok(Outcome {
        model,
        finished: records.len() >= cfg.epochs,
        records,
    })
}

fn write_log(dir: &Path, records: &[EpochRecord]) -> Result<(), TrainError> {
    let mut text = Vec::new();
    for r in records {
        serde_json::to_writer(&mut text, r).expect("records serialise");
        text.write_all(b"\n").expect("writing to memory");
    }
    write_file_atomic(&dir.join("log.jsonl"), &text)
}

fn save_checkpoint<M: Module>(
    dir: &Path,
    model: &M,
    optim: &burn::optim::ModuleOptimizer,
    epochs_done: usize,
    records: &[EpochRecord],
) -> Result<(), TrainError> {
    let root = dir.join("checkpoints");
    let tmp = root.join(format!(".epoch-{epochs_done:04}.tmp"));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let mpath = tmp.join("model.bpk");
    let mut store = BurnpackStore::from_file(&mpath).overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| TrainError::Checkpoint {
            path: mpath.clone(),
            detail: format!("cannot write the model: {e}"),
        })?;
    let opath = tmp.join("optim.bpk");
    optim.save(&opath).map_err(|e| TrainError::Checkpoint {
        path: opath.clone(),
        detail: format!("cannot write the optimizer state: {e}"),
    })?;
    let state = CheckpointState {
        epochs_done,
        records: records.to_vec(),
    };
    let spath = tmp.join("state.json");
    std::fs::write(
        &spath,
        serde_json::to_string_pretty(&state).expect("state serialises"),
    )
    .map_err(io(&spath))?;
    let fin = root.join(format!("epoch-{epochs_done:04}"));
    let _ = std::fs::remove_dir_all(&fin);
    std::fs::rename(&tmp, &fin).map_err(io(&fin))?;
    // Keep the last two complete checkpoints.
    let all = checkpoints(dir);
    for (_, old) in all.iter().take(all.len().saturating_sub(2)) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}
