//! `boneage train segment|keypoints|verifier|age`: prepare examples (cached), then run the
//! training engine with a progress bar, a JSON-lines log and resumable checkpoints
//! (`boneage::training`).

use std::path::PathBuf;
use std::process::ExitCode;

use boneage::DeviceChoice;
use boneage::registration_check::VerifierKind;
use boneage::training::{
    AgeRecipe, KeypointRecipe, TrainSpec, augment, train_age, train_keypoints, train_segment,
    train_verifier,
};
use boneage_core::{Cohort, Head, View};
use boneage_nn::efficientnet::LiteVariant;
use boneage_nn::keypoint_net::Refined;
use boneage_nn::tasks::Preset;
use boneage_nn::train::{EpochRecord, Observer, Schedule};
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
        /// Train for films unlike the development set: any turn, mirrored, shrunk
        /// onto a grey or noisy background, markers, exposure changes and inverted
        /// polarity (the stress suite's transforms), instead of small moves only.
        #[arg(long, conflicts_with = "films")]
        wild: bool,
        /// Train for films as they come, upright: the small moves plus a hand shrunk
        /// onto a larger grey or noisy field, markers, exposure, gamma and inverted
        /// polarity, without the wild turns.
        #[arg(long)]
        films: bool,
        /// --films plus the film's edge beside the hand and a field of another grey
        /// around a film a little turned, the wrist cut by the film's edge, flat and
        /// dark exposures: framed, scanned and photographed films.
        #[arg(long, conflicts_with = "wild")]
        frames: bool,
        /// Network input `HEIGHTxWIDTH` instead of the preset's (cpu: 256x208), both
        /// multiples of 8: a finer mask, e.g. 512x416, separates the fingers of small
        /// hands on large films (`--init` from a U-Net trained at another size works:
        /// the network is convolutional).
        #[arg(long, value_name = "HxW", value_parser = crate::args::parse_input)]
        input: Option<[usize; 2]>,
    },
    /// The key-point regressor (needs a key-point CSV).
    Keypoints {
        #[command(flatten)]
        common: Common,
        /// Key points CSV (default: DATA/keypoints.csv).
        #[arg(long)]
        keypoints: Option<PathBuf>,
        /// The paper's VGG regressor, or the heat-map locator on EfficientNet-Lite0
        /// (trained with turns, mirrors, shrinking, backgrounds and exposure changes;
        /// start it from ImageNet weights with --pretrained).
        #[arg(long, value_enum, default_value_t = BackboneArg::Vgg)]
        backbone: BackboneArg,
        /// ImageNet weights for the EfficientNet-Lite0 backbone, as written by
        /// `scripts/import_efficientnet.py` (needs --backbone lite0).
        #[arg(long, value_name = "SAFETENSORS", requires = "backbone")]
        pretrained: Option<PathBuf>,
        /// Network input `HEIGHTxWIDTH` instead of the default (130x100; 320x256 for
        /// lite0).
        #[arg(long, value_name = "HxW", value_parser = crate::args::parse_input)]
        input: Option<[usize; 2]>,
        /// Train a refining net instead: a heat-map locator of this one point
        /// (capitate or thumb tip) in a square field around a first guess, the hand
        /// upright and the thumb on the right (default 192x192; needs --backbone
        /// lite0). Export it as `capitate.safetensors` or `thumb.safetensors` beside
        /// the other weights and the pipeline moves that point with it.
        #[arg(long, value_enum, value_name = "POINT")]
        refine: Option<Refined>,
        /// The locator's backbone cut after its fifth stage: heat maps at a 16th of
        /// the input instead of a 32nd, from a fifth of the weights (needs --backbone
        /// lite0; the refining nets are always cut so).
        #[arg(long, requires = "backbone", conflicts_with = "refine")]
        fine: bool,
        /// --fine, with heat maps at an 8th of the input: the fifth stage's features
        /// doubled and joined with the third's by a 3×3 convolution (finger-sized
        /// cells where a 16th's are as wide as a finger's spacing).
        #[arg(long, requires = "backbone", conflicts_with = "refine")]
        finer: bool,
        /// Train each heat map also to match a Gaussian of this many cells around
        /// its point (cross-entropy), which punishes weight on a neighbouring
        /// finger that the expected position alone lets through (needs --backbone
        /// lite0; give it again with --resume).
        #[arg(long, value_name = "CELLS", requires = "backbone")]
        heat_sigma: Option<f32>,
        /// A refining net on the whole backbone (heat maps at a 32nd of the field, as
        /// the shipped thumb net) instead of the backbone cut after its fifth stage.
        #[arg(long, requires = "refine")]
        whole_backbone: bool,
        /// Train a refining net also on each film cut out by its hand mask in this
        /// folder (exact black outside the mask, grown or shrunk a little at random),
        /// as a film another program has already cut out comes.
        #[arg(long, value_name = "MASKS", requires = "refine")]
        cut_outs: Option<PathBuf>,
        /// The VGG regressor trained also on films as other sources send them: half
        /// of the time the hand shrunk to 60–100 % of its size onto a larger grey or noisy
        /// field, markers, exposure, gamma, noise, inverted polarity (as `train
        /// segment --films`), besides its turns and mirrors.
        #[arg(long)]
        films: bool,
    },
    /// The registration verifier: a small network that tells, from the registered
    /// hand alone, right key points from wrong ones (a neighbouring finger, the thumb
    /// mirrored, the capitate or fingertip moved). Export it as
    /// `verifier.safetensors` beside the other weights and the check after
    /// registration consults it.
    Verifier {
        #[command(flatten)]
        common: Common,
        /// Key points CSV of right registrations (default: DATA/keypoints.csv).
        #[arg(long)]
        keypoints: Option<PathBuf>,
        /// Folder with the U-Net that segments the films as the pipeline does
        /// (default: `$BONEAGE_MODELS`, else the shipped `models/`).
        #[arg(long)]
        models: Option<PathBuf>,
        /// Train the capitate check instead: the registered carpus alone (192 × 192
        /// of the canvas at full size) against the capitate moved. Export it as
        /// `capitate_verifier.safetensors`.
        #[arg(long)]
        capitate: bool,
        /// Also register copies of each film as other sources send them (exposure,
        /// a marker, the film's edge and a field around it, the wrist cut), each
        /// segmented again, some by `unet_framed.safetensors` where the models
        /// folder has it: right registrations of films unlike the development set.
        #[arg(long)]
        films: bool,
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
        #[arg(long, value_name = "HxW", value_parser = crate::args::parse_input)]
        input: Option<[usize; 2]>,
        /// VGG block widths instead of the preset's (six, e.g. 16,32,48,64,80,96).
        #[arg(long, value_delimiter = ',')]
        widths: Option<Vec<usize>>,
        /// Fully connected widths instead of the preset's (e.g. 128,128).
        #[arg(long, value_delimiter = ',')]
        hidden: Option<Vec<usize>>,
        /// Feature extractor: the paper's VGG blocks, or EfficientNet-Lite0 or the
        /// deeper Lite1 (global pooling, FC 256; start it from ImageNet weights with
        /// --pretrained).
        #[arg(long, value_enum, default_value_t = BackboneArg::Vgg)]
        backbone: BackboneArg,
        /// ImageNet weights for the EfficientNet-Lite backbone, as written by
        /// `scripts/import_efficientnet.py [--variant lite1]` (needs --backbone lite0
        /// or lite1).
        #[arg(long, value_name = "SAFETENSORS", requires = "backbone")]
        pretrained: Option<PathBuf>,
        /// Region A (whole hand), B (carpals), C (metacarpals and phalanges), D
        /// (fingers: middle and distal phalanges), or `whole` for the unregistered
        /// film.
        #[arg(long, default_value = "A")]
        region: View,
        /// Output head.
        #[arg(long, value_enum, default_value_t = Head::Regression)]
        head: Head,
        /// Cohort: M or F (one sex, as the paper's per-sex models), or mixed (both,
        /// with sex as an input).
        #[arg(long, value_enum, default_value_t = Cohort::Mixed)]
        sex: Cohort,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum BackboneArg {
    /// The paper's VGG blocks.
    Vgg,
    /// EfficientNet-Lite0.
    Lite0,
    /// EfficientNet-Lite1 (bone-age networks only).
    Lite1,
}

impl BackboneArg {
    fn lite(self) -> Option<LiteVariant> {
        match self {
            BackboneArg::Vgg => None,
            BackboneArg::Lite0 => Some(LiteVariant::Lite0),
            BackboneArg::Lite1 => Some(LiteVariant::Lite1),
        }
    }
}

#[derive(clap::Args)]
struct Common {
    /// Dataset folder: `<id>.png` images with `labels.csv` inside (phantoms) or
    /// `DATA.csv` beside it (RSNA).
    data: PathBuf,
    /// More dataset folders whose labelled images are pooled with DATA (ids must
    /// differ), e.g. `--also ../shared/data/rsna/extra`.
    #[arg(long, value_name = "DATA")]
    also: Vec<PathBuf>,
    /// Run folder: config, log, checkpoints, weights.
    #[arg(long)]
    out: PathBuf,
    /// Network sizes: `cpu` (two CPU cores) or `paper`.
    #[arg(long, value_enum, default_value_t = Preset::Cpu)]
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
    #[arg(long, value_enum, default_value_t = Schedule::Cosine)]
    schedule: Schedule,
    /// Seed of weights, order, augmentation, dropout.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Images held out for validation (sex-stratified); 0 trains on every image
    /// (the final model of a recipe measured by cross-validation).
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
        if r.val_loss.is_nan() {
            // No validation films.
            eprintln!(
                "epoch {}: train loss {:.4} (lr {:.2e}, {:.0} s)",
                r.epoch, r.train_loss, r.lr, r.seconds
            );
            return;
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

impl Common {
    fn spec(&self) -> TrainSpec {
        TrainSpec {
            data: self.data.clone(),
            also: self.also.clone(),
            out: self.out.clone(),
            preset: self.preset,
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr,
            lr_end: self.lr_end,
            adam_eps: self.adam_eps,
            schedule: self.schedule,
            seed: self.seed,
            val: self.val,
            split_seed: self.split_seed,
            holdout: self.holdout.clone(),
            limit: self.limit,
            no_augment: self.no_augment,
            resume: self.resume,
            stop_after: self.stop_after,
            init: self.init.clone(),
        }
    }
}

/// Runs the command.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let d = device.training_device()?;
    let progress = crate::progress::Bars::default();
    let mut bars = Bars {
        bar: None,
        loss: f64::NAN,
    };
    let (spec, finished) = match args.net {
        Net::Segment {
            common,
            masks,
            wild,
            films,
            frames,
            input,
        } => {
            let spec = common.spec();
            let masks = masks.unwrap_or_else(|| spec.data.join("masks"));
            let augment = match (wild, films, frames) {
                (true, _, _) => augment::SEGMENT_WILD,
                (_, _, true) => augment::SEGMENT_FRAMES,
                (_, true, _) => augment::SEGMENT_FILMS,
                _ => augment::SEGMENT,
            };
            let done = train_segment(&spec, &masks, augment, input, &d, &progress, &mut bars)?;
            (spec, done)
        }
        Net::Keypoints {
            common,
            keypoints,
            backbone,
            pretrained,
            input,
            refine,
            fine,
            finer,
            heat_sigma,
            whole_backbone,
            cut_outs,
            films,
        } => {
            let spec = common.spec();
            let kp = keypoints.unwrap_or_else(|| spec.data.join("keypoints.csv"));
            if backbone == BackboneArg::Lite1 {
                anyhow::bail!("--backbone lite1: the key-point locator is built on lite0 (or vgg)");
            }
            let recipe = KeypointRecipe {
                lite: backbone == BackboneArg::Lite0,
                input,
                pretrained,
                refine,
                fine,
                finer,
                heat_sigma,
                whole_backbone,
                cut_outs,
                films,
            };
            let done = train_keypoints(&spec, &kp, &recipe, &d, &progress, &mut bars)?;
            (spec, done)
        }
        Net::Verifier {
            common,
            keypoints,
            models,
            capitate,
            films,
        } => {
            let spec = common.spec();
            let kp = keypoints.unwrap_or_else(|| spec.data.join("keypoints.csv"));
            let models = boneage::ModelsDir::locate(models.as_deref())?;
            let kind = if capitate {
                VerifierKind::Capitate
            } else {
                VerifierKind::Registration
            };
            let done = train_verifier(
                kind,
                films,
                &spec,
                &kp,
                &models.path,
                &d,
                &progress,
                &mut bars,
            )?;
            (spec, done)
        }
        Net::Age {
            common,
            keypoints,
            crops,
            input,
            widths,
            hidden,
            backbone,
            pretrained,
            region,
            head,
            sex,
        } => {
            let recipe = AgeRecipe {
                view: region,
                crops,
                keypoints,
                input,
                widths,
                hidden,
                lite: backbone.lite(),
                pretrained,
                head,
                cohort: sex,
            };
            let spec = common.spec();
            let done = train_age(&spec, &recipe, &d, &progress, &mut bars)?;
            (spec, done)
        }
    };
    if finished {
        eprintln!(
            "done: {} epochs; weights {} (log {})",
            spec.epochs,
            spec.out.join("model.safetensors").display(),
            spec.out.join("log.jsonl").display()
        );
    } else {
        eprintln!(
            "stopped after epoch {} of {}; continue with the same arguments and --resume",
            spec.stop_after.unwrap_or(spec.epochs),
            spec.epochs
        );
    }
    Ok(ExitCode::SUCCESS)
}
