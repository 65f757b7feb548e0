//! `boneage train segment|keypoints|age`: prepare examples (cached), then run the
//! training engine with a progress bar, a JSON-lines log and resumable checkpoints.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use boneage_core::dataset::{Dataset, Sample, find_mask, split_stratified};
use boneage_core::io::Sex;
use boneage_core::keypoints::read_csv;
use boneage_core::registration::{Canvas, Region};
use boneage_nn::age::AgeHead;
use boneage_nn::burn::prelude::Device;
use boneage_nn::data::{Augment, Examples, Target};
use boneage_nn::prepare::{AgeView, age_examples, keypoint_examples, mask_examples};
use boneage_nn::tasks::{AgeTask, KeypointTask, Preset, SegmentTask, region_input};
use boneage_nn::train::{EpochRecord, Observer, RunSpec, Schedule, Task, TrainConfig, fit};
use indicatif::{ProgressBar, ProgressStyle};

/// Arguments of `boneage train`.
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    net: Net,
}

#[derive(clap::Subcommand)]
enum Net {
    /// The U-Net for hand masks (needs a folder of masks).
    Segment {
        #[command(flatten)]
        common: Common,
        /// Folder of hand masks `<id>.mask.png` or `<id>.png` (default: DATA/masks).
        #[arg(long)]
        masks: Option<PathBuf>,
    },
    /// The key-point regressor (needs a key-point CSV).
    Keypoints {
        #[command(flatten)]
        common: Common,
        /// Key points CSV (default: DATA/keypoints.csv).
        #[arg(long)]
        keypoints: Option<PathBuf>,
    },
    /// A bone-age network for one region, head and cohort.
    Age {
        #[command(flatten)]
        common: Common,
        /// Key points CSV used to register the images (default: DATA/keypoints.csv).
        #[arg(long, conflicts_with = "crops")]
        keypoints: Option<PathBuf>,
        /// Train on the region crops of a `boneage preprocess --out` folder
        /// (`<id>_A.png`, …): segmented, normalised and registered by the same
        /// pipeline that `boneage assess` runs. Films it refused are left out.
        #[arg(long, value_name = "DIR")]
        crops: Option<PathBuf>,
        /// Network input `HEIGHTxWIDTH` instead of the preset's size for the region.
        #[arg(long, value_name = "HxW", value_parser = parse_input)]
        input: Option<[usize; 2]>,
        /// VGG block widths instead of the preset's (six, e.g. 16,32,48,64,80,96).
        #[arg(long, value_delimiter = ',')]
        widths: Option<Vec<usize>>,
        /// Fully connected widths instead of the preset's (e.g. 128,128).
        #[arg(long, value_delimiter = ',')]
        hidden: Option<Vec<usize>>,
        /// Region A (whole hand), B (carpals), C (metacarpals and phalanges), or
        /// `whole` for the unregistered film.
        #[arg(long, default_value = "A")]
        region: String,
        /// Output head.
        #[arg(long, value_enum, default_value_t = HeadArg::Regression)]
        head: HeadArg,
        /// Cohort: M or F (one sex, as the paper's per-sex models), or mixed (both,
        /// with sex as an input).
        #[arg(long, default_value = "mixed")]
        sex: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HeadArg {
    Regression,
    Classification,
}

#[derive(clap::Args)]
struct Common {
    /// Dataset folder: `<id>.png` images with `labels.csv` inside (phantoms) or
    /// `DATA.csv` beside it (RSNA).
    data: PathBuf,
    /// Run folder: config, log, checkpoints, weights.
    #[arg(long)]
    out: PathBuf,
    /// Network sizes: `cpu` (two CPU cores) or `paper`.
    #[arg(long, default_value = "cpu")]
    preset: Preset,
    /// Passes over the training set.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Examples per step.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// First learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Last learning rate.
    #[arg(long, default_value_t = 1e-5)]
    lr_end: f64,
    /// Adam's epsilon (burn's default 1e-5; PyTorch's is 1e-8).
    #[arg(long, default_value_t = 1e-5)]
    adam_eps: f32,
    /// How the learning rate falls: cosine or step (÷10 at 1/3 and 2/3).
    #[arg(long, value_enum, default_value_t = ScheduleArg::Cosine)]
    schedule: ScheduleArg,
    /// Seed of weights, order, augmentation, dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Images held out for validation (sex-stratified).
    #[arg(long, default_value_t = 100)]
    val: usize,
    /// Seed of the validation split.
    #[arg(long, default_value_t = 2017)]
    split_seed: u64,
    /// A list of image ids (one per line, `#` comments) that is the validation set
    /// instead of a random split (`--val` and `--split-seed` are then unused): these
    /// images never enter training.
    #[arg(long)]
    holdout: Option<PathBuf>,
    /// Use only the first N labelled images (quick experiments).
    #[arg(long)]
    limit: Option<usize>,
    /// No augmentation.
    #[arg(long)]
    no_augment: bool,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Stop after this many epochs in total; `--resume` continues later.
    #[arg(long)]
    stop_after: Option<usize>,
    /// Start from these weights (`RUN/model.safetensors` of the same net and preset)
    /// instead of random ones, e.g. to fine-tune last round's U-Net on this round's
    /// masks.
    #[arg(long, value_name = "SAFETENSORS")]
    init: Option<PathBuf>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ScheduleArg {
    Cosine,
    Step,
}

/// A progress bar per epoch with the running loss and ETA, and a line per epoch.
struct Bars {
    bar: Option<ProgressBar>,
    loss: f64,
}

impl Observer for Bars {
    fn epoch_start(&mut self, epoch: usize, epochs: usize, steps: usize) {
        let bar = ProgressBar::new(steps as u64);
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30}] {pos}/{len} steps, loss {msg} ({elapsed}, ETA {eta})",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        self.bar = Some(bar);
        self.loss = f64::NAN;
    }
    fn step(&mut self, _step: usize, loss: f64) {
        // An exponential average reads better than the noisy batch loss.
        self.loss = if self.loss.is_nan() {
            loss
        } else {
            0.9 * self.loss + 0.1 * loss
        };
        if let Some(b) = &self.bar {
            b.set_message(format!("{:.4}", self.loss));
            b.inc(1);
        }
    }
    fn validating(&mut self) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{:.4}, validating", self.loss));
        }
    }
    fn epoch_end(&mut self, r: &EpochRecord) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let val: Vec<String> = r.val.iter().map(|(k, v)| format!("{k} {v:.3}")).collect();
        eprintln!(
            "epoch {}: train loss {:.4}, val loss {:.4}, {} (lr {:.2e}, {:.0} s)",
            r.epoch,
            r.train_loss,
            r.val_loss,
            val.join(", "),
            r.lr,
            r.seconds
        );
    }
    fn message(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

/// Examples from the cache file when it was made from the same source, else
/// prepared (with a progress bar) and cached.
fn cached(
    path: &Path,
    source: &str,
    n: usize,
    what: &str,
    make: impl FnOnce(&(dyn Fn() + Sync)) -> boneage_core::Result<Examples>,
) -> anyhow::Result<Arc<Examples>> {
    if path.is_file() {
        match Examples::load(path, source) {
            Ok(ex) => {
                eprintln!(
                    "{what}: {} examples from the cache {}",
                    ex.items.len(),
                    path.display()
                );
                return Ok(Arc::new(ex));
            }
            Err(e) => eprintln!("{e}; preparing again"),
        }
    }
    let bar = super::progress_bar(n as u64, &format!("preparing {what}"));
    let ex = make(&|| bar.inc(1))?;
    bar.finish_and_clear();
    ex.save(path, source)?;
    eprintln!(
        "{what}: {} examples prepared and cached in {}",
        ex.items.len(),
        path.display()
    );
    Ok(Arc::new(ex))
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.net {
        Net::Segment { common, masks } => {
            let masks = masks.unwrap_or_else(|| common.data.join("masks"));
            let (config, input) = common.preset.unet();
            let task = SegmentTask { config, input };
            let augment = Augment {
                zoom: 0.1,
                rotation_deg: 15.0,
                shift: 0.05,
                flip: true,
            };
            let data = Data::open(&common, |s| find_mask(&masks, &s.id).is_some())?;
            let source = format!("masks {} {}x{}", masks.display(), input[0], input[1]);
            let [train, val] = data.examples(&common, &source, |ds, s, p| {
                mask_examples(ds, s, &masks, input, p)
            })?;
            train_task(&task, &common, train, val, augment, &data, None, None)
        }
        Net::Keypoints { common, keypoints } => {
            let kp_path = keypoints.unwrap_or_else(|| common.data.join("keypoints.csv"));
            let kp = read_csv(&kp_path)?;
            let task = KeypointTask {
                config: common.preset.keypoints(),
            };
            let input = task.input();
            // Flips keep key-point labels true (each point moves with the image) and
            // teach the net mirrored films; rotations up to 30° cover tilted hands.
            let augment = Augment {
                zoom: 0.1,
                rotation_deg: 30.0,
                shift: 0.08,
                flip: true,
            };
            let data = Data::open(&common, |s| kp.contains_key(&s.id))?;
            let source = format!("keypoints {} {}x{}", kp_path.display(), input[0], input[1]);
            let [train, val] = data.examples(&common, &source, |ds, s, p| {
                keypoint_examples(ds, s, &kp, input, p)
            })?;
            // Baseline: the mean training position of each point.
            let mean = mean_keypoints(&train);
            let base = keypoint_errors(&val, &mean);
            eprintln!(
                "baseline (mean training position): fingertip {:.2} px, thumb {:.2} px, capitate {:.2} px of the {}x{} input",
                base[0], base[1], base[2], input[0], input[1]
            );
            train_task(&task, &common, train, val, augment, &data, None, None)
        }
        Net::Age {
            common,
            keypoints,
            crops,
            input: input_override,
            widths,
            hidden,
            region,
            head,
            sex,
        } => {
            let cohort = match sex.to_ascii_uppercase().as_str() {
                "M" => Some(Sex::Male),
                "F" => Some(Sex::Female),
                "MIXED" => None,
                _ => bail!("--sex {sex:?}: use M, F or mixed"),
            };
            let (view, input, region_name) = if region.eq_ignore_ascii_case("whole") {
                let input = region_input(common.preset, 'A').expect("region A");
                (AgeView::Whole, input, "whole".to_string())
            } else {
                let letter = region
                    .chars()
                    .next()
                    .filter(|_| region.len() == 1)
                    .map(|c| c.to_ascii_uppercase());
                let (r, letter) = match letter {
                    Some('A') => (Region::A, 'A'),
                    Some('B') => (Region::B, 'B'),
                    Some('C') => (Region::C, 'C'),
                    _ => bail!("--region {region:?}: use A, B, C or whole"),
                };
                let input = region_input(common.preset, letter).expect("known region");
                if let Some(dir) = crops {
                    if !dir.is_dir() {
                        bail!("--crops {}: not a folder", dir.display());
                    }
                    let view = AgeView::Crops {
                        dir: dir.clone(),
                        letter,
                    };
                    (view, input, letter.to_string())
                } else {
                    let kp_path = keypoints
                        .clone()
                        .unwrap_or_else(|| common.data.join("keypoints.csv"));
                    if !kp_path.is_file() {
                        bail!(
                            "region {letter} needs key points to register the images: {} does not exist \
                         (give --keypoints, or use --region whole)",
                            kp_path.display()
                        );
                    }
                    let canvas = match common.preset {
                        Preset::Cpu => Canvas::CPU,
                        Preset::Paper => Canvas::PAPER,
                    };
                    let view = AgeView::Region {
                        keypoints: read_csv(&kp_path)?,
                        canvas,
                        region: r,
                    };
                    (view, input, letter.to_string())
                }
            };
            let input = input_override.unwrap_or(input);
            let head = match head {
                HeadArg::Regression => AgeHead::Regression,
                HeadArg::Classification => AgeHead::Classification { classes: 240 },
            };
            let mut config = common.preset.age(input, head, cohort.is_none());
            if let Some(w) = widths {
                if w.is_empty() || w.contains(&0) {
                    bail!("--widths {w:?}: give positive block widths");
                }
                config.features = w.clone();
            }
            if let Some(h) = hidden {
                if h.contains(&0) {
                    bail!("--hidden {h:?}: give positive widths");
                }
                config.hidden = h.clone();
            }
            let task = AgeTask { config };
            let augment = Augment {
                zoom: 0.08,
                rotation_deg: 8.0,
                shift: 0.04,
                flip: false,
            };
            // Registered regions need the film's key points; films without them (the
            // preprocessing refused them, or they are not labelled) are left out.
            let has_points = |id: &str| view.has(id);
            let data = Data::open(&common, |s| {
                cohort.is_none_or(|c| s.sex == c) && has_points(&s.id)
            })?;
            let source = format!(
                "age {} region {region_name} {}x{} sex {sex}",
                common.data.display(),
                input[0],
                input[1]
            );
            let [train, val] = data.examples(&common, &source, |ds, s, p| {
                age_examples(ds, s, &view, input, p)
            })?;
            let base = mean_baseline(&train, &val, cohort.is_none());
            eprintln!(
                "baseline (predict the mean training age{}): validation MAE {base:.2} months",
                if cohort.is_none() { " per sex" } else { "" }
            );
            let cohort_name = cohort.map_or("mixed".to_string(), |c| c.letter().to_string());
            train_task(
                &task,
                &common,
                train,
                val,
                augment,
                &data,
                Some(cohort_name),
                Some(region_name),
            )
        }
    }
}

/// `HEIGHTxWIDTH`, each at least 8 pixels.
fn parse_input(s: &str) -> Result<[usize; 2], String> {
    let (h, w) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected HEIGHTxWIDTH, e.g. 128x96"))?;
    let n = |v: &str| -> Result<usize, String> {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|&n| n >= 8)
            .ok_or_else(|| format!("{s:?}: {v:?} is not a size of at least 8 pixels"))
    };
    Ok([n(h)?, n(w)?])
}

/// Image ids, one per line (`#` starts a comment).
pub fn read_id_list(path: &Path) -> anyhow::Result<std::collections::BTreeSet<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

/// The dataset and its split.
struct Data {
    ds: Dataset,
    train: Vec<Sample>,
    val: Vec<Sample>,
}

impl Data {
    fn open(common: &Common, keep: impl Fn(&Sample) -> bool) -> anyhow::Result<Self> {
        let ds = Dataset::open_dir(&common.data)?;
        let mut samples: Vec<Sample> = ds.samples.iter().filter(|s| keep(s)).cloned().collect();
        if let Some(n) = common.limit {
            samples.truncate(n);
        }
        if samples.len() < 2 {
            bail!(
                "{}: {} usable labelled images; at least 2 are needed",
                common.data.display(),
                samples.len()
            );
        }
        if let Some(path) = &common.holdout {
            let ids = read_id_list(path)?;
            let (val, train): (Vec<Sample>, Vec<Sample>) =
                samples.into_iter().partition(|s| ids.contains(&s.id));
            if val.is_empty() || train.is_empty() {
                bail!(
                    "{}: {} of its {} ids are labelled images here, leaving {} for training; \
                     both sets need at least one",
                    path.display(),
                    val.len(),
                    ids.len(),
                    train.len()
                );
            }
            return Ok(Self { train, val, ds });
        }
        let n_val = common.val.min(samples.len() / 2);
        let split = split_stratified(&samples, n_val, common.split_seed)?;
        let pick = |idx: &[usize]| idx.iter().map(|&i| samples[i].clone()).collect();
        Ok(Self {
            train: pick(&split.train),
            val: pick(&split.validation),
            ds,
        })
    }

    fn examples(
        &self,
        common: &Common,
        source: &str,
        make: impl Fn(&Dataset, &[Sample], &(dyn Fn() + Sync)) -> boneage_core::Result<Examples>,
    ) -> anyhow::Result<[Arc<Examples>; 2]> {
        std::fs::create_dir_all(&common.out)
            .with_context(|| format!("creating {}", common.out.display()))?;
        let ids = |s: &[Sample]| {
            // A fingerprint of the ids so that a cache of another split is not reused.
            let mut h = 0xcbf2_9ce4_8422_2325u64;
            for b in s.iter().flat_map(|s| s.id.bytes().chain([b','])) {
                h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
            format!("{} ids {h:016x}", s.len())
        };
        let train = cached(
            &common.out.join("examples-train.bin"),
            &format!("{source} train {}", ids(&self.train)),
            self.train.len(),
            "training examples",
            |p| make(&self.ds, &self.train, p),
        )?;
        let val = cached(
            &common.out.join("examples-val.bin"),
            &format!("{source} val {}", ids(&self.val)),
            self.val.len(),
            "validation examples",
            |p| make(&self.ds, &self.val, p),
        )?;
        Ok([train, val])
    }
}

#[allow(clippy::too_many_arguments)]
fn train_task<T: Task>(
    task: &T,
    common: &Common,
    train: Arc<Examples>,
    val: Arc<Examples>,
    augment: Augment,
    data: &Data,
    sex: Option<String>,
    region: Option<String>,
) -> anyhow::Result<ExitCode> {
    let config = TrainConfig {
        epochs: common.epochs,
        batch_size: common.batch,
        lr_start: common.lr,
        lr_end: common.lr_end,
        schedule: match common.schedule {
            ScheduleArg::Cosine => Schedule::Cosine,
            ScheduleArg::Step => Schedule::Step,
        },
        seed: common.seed,
        recalibrate_bn: true,
        adam_epsilon: common.adam_eps,
        augment: if common.no_augment {
            Augment::NONE
        } else {
            augment
        },
    };
    let sheet = common.out.join("examples.png");
    examples_sheet(&train, &config.augment, common.seed, &sheet)?;
    eprintln!(
        "what the network sees (16 augmented training examples): {}",
        sheet.display()
    );
    let spec = RunSpec {
        dir: common.out.clone(),
        train,
        val,
        config,
        trained_on: format!(
            "{} ({} labelled images trained on, {} held out for validation: {})",
            data.ds.image_dir.display(),
            data.train.len(),
            data.val.len(),
            match &common.holdout {
                Some(p) => format!("the ids in {}", p.display()),
                None => format!("sex-stratified split, seed {}", common.split_seed),
            }
        ),
        sex,
        region,
        resume: common.resume,
        stop_after: common.stop_after,
        init_from: common.init.clone(),
    };
    let device = Device::flex().autodiff();
    let outcome = fit(
        task,
        &spec,
        &device,
        &mut Bars {
            bar: None,
            loss: f64::NAN,
        },
    )?;
    let weights = common.out.join("model.safetensors");
    if outcome.finished {
        eprintln!(
            "done: {} epochs; weights {} (log {})",
            outcome.records.len(),
            weights.display(),
            common.out.join("log.jsonl").display()
        );
    } else {
        eprintln!(
            "stopped after epoch {} of {}; continue with the same arguments and --resume",
            outcome.records.len(),
            common.epochs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Validation MAE of predicting the mean training age (per sex when `per_sex`).
fn mean_baseline(train: &Examples, val: &Examples, per_sex: bool) -> f64 {
    let age = |e: &boneage_nn::data::Example| match e.target {
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
            let p = if !per_sex {
                all
            } else if e.male {
                m
            } else {
                f
            };
            (age(e) - p).abs()
        })
        .sum();
    err / val.items.len().max(1) as f64
}

fn mean_keypoints(ex: &Examples) -> [f32; 6] {
    let mut m = [0f32; 6];
    for e in &ex.items {
        if let Target::Keypoints(k) = &e.target {
            for (a, b) in m.iter_mut().zip(k) {
                *a += b / ex.items.len() as f32;
            }
        }
    }
    m
}

/// Mean distance in input pixels of each point from `pred`.
fn keypoint_errors(ex: &Examples, pred: &[f32; 6]) -> [f64; 3] {
    let mut e = [0f64; 3];
    for item in &ex.items {
        if let Target::Keypoints(k) = &item.target {
            for (i, err) in e.iter_mut().enumerate() {
                let dx = (k[2 * i] - pred[2 * i]) as f64 * ex.width as f64 / 2.0;
                let dy = (k[2 * i + 1] - pred[2 * i + 1]) as f64 * ex.height as f64 / 2.0;
                *err += (dx * dx + dy * dy).sqrt() / ex.items.len().max(1) as f64;
            }
        }
    }
    e
}

/// A contact sheet of the first 16 training examples as the network sees them
/// (augmented), with their targets drawn: key points as dots, masks as outlines.
fn examples_sheet(ex: &Examples, augment: &Augment, seed: u64, path: &Path) -> anyhow::Result<()> {
    use boneage_core::geometry::Point;
    use boneage_core::image::Mask;
    use boneage_core::overlay::{colors, draw_mask_outline, draw_point, to_rgb};
    use boneage_core::sheet::{SheetLayout, save_rgb};
    let n = ex.items.len().min(16);
    let idx: Vec<usize> = (0..n).collect();
    let seeds: Vec<u64> = (0..n as u64).map(|k| seed.wrapping_add(k)).collect();
    let b = ex.batch(&idx, augment, &seeds);
    let (w, h) = (ex.width, ex.height);
    let tl = ex.target_len();
    let mut tiles = Vec::with_capacity(n);
    for (k, &i) in idx.iter().enumerate() {
        let px: Vec<f32> = b.images[k * w * h..(k + 1) * w * h]
            .iter()
            .map(|v| (v + 1.0) / 2.0)
            .collect();
        let img = boneage_core::GrayImage::from_vec(w, h, px)?;
        let mut rgb = to_rgb(&img);
        let t = &b.targets[k * tl..(k + 1) * tl];
        let item = &ex.items[i];
        let caption = match &item.target {
            Target::Age(m) => format!(
                "{} {} {:.0} mo",
                item.id,
                if item.male { "M" } else { "F" },
                m
            ),
            Target::Keypoints(_) => {
                for (j, c) in [colors::FINGERTIP, colors::THUMB, colors::CAPITATE]
                    .into_iter()
                    .enumerate()
                {
                    let p = Point::new(
                        (t[2 * j] as f64 + 1.0) / 2.0 * w as f64,
                        (t[2 * j + 1] as f64 + 1.0) / 2.0 * h as f64,
                    );
                    draw_point(&mut rgb, p, 2.0, c);
                }
                item.id.clone()
            }
            Target::Mask(_) => {
                let m = Mask::from_vec(w, h, t.iter().map(|&v| (v > 0.5) as u8).collect())?;
                draw_mask_outline(&mut rgb, &m, colors::MASK, 1);
                item.id.clone()
            }
        };
        tiles.push((caption, rgb));
    }
    let layout = SheetLayout {
        columns: 8,
        tile_width: w.min(192),
        tile_height: h.min(256),
        title: Some(format!(
            "training examples as the network sees them ({w}x{h}, augmented)"
        )),
    };
    save_rgb(&tiles, &layout, path)?;
    Ok(())
}
