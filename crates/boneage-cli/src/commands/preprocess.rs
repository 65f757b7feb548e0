//! `boneage preprocess`: segment → normalize → key points → register → regions A/B/C
//! with the shipped weights, refusing films it has no confidence in.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use boneage::at_once::{each_at_once, jobs_for};
use boneage::batch::stem;
use boneage::evidence::preprocessed_overlay;
use boneage::{DeviceChoice, ModelsDir};
use boneage_core::image::{GrayImage, save_rgb8_png};
use boneage_core::io::{csv_field, write_atomic};
use boneage_core::keypoints::{self, KeyPoints};
use boneage_core::overlay::to_rgb;
use boneage_core::read_radiograph;
use boneage_core::registration::{Canvas, Region, save_regions};
use boneage_core::sheet::{SheetLayout, Tile, save as save_sheet, save_rgb, thumbnail};
use boneage_nn::pipeline::Pipeline;
use image::RgbImage;
use std::io::Write as _;

use crate::args::{FrontEnd, at_least_one, parse_size};
use crate::exit;
use crate::progress::progress_bar;

/// Arguments of `boneage preprocess`.
#[derive(clap::Args)]
pub struct Args {
    /// Radiographs (PNG, JPEG, DICOM).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output folder: `<id>.png` (registered hand), `<id>_A.png`, `_B`, `_C`
    /// (regions), `<id>_overlay.png`, `keypoints.csv`.
    #[arg(long)]
    out: PathBuf,
    /// Folder with the weights (default: `$BONEAGE_MODELS`, else the shipped `models/`).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Canvas as WIDTHxHEIGHT: the CPU preset 400x520 or the paper's 1600x2080.
    #[arg(long, default_value = "400x520", value_parser = parse_size)]
    canvas: (usize, usize),
    /// Also write a contact sheet of the registered hands.
    #[arg(long, value_name = "PNG")]
    sheet: Option<PathBuf>,
    /// Also write a contact sheet of the refused films, each captioned with the kind
    /// of refusal (`refused.csv` in the output folder has the full reasons).
    #[arg(long, value_name = "PNG")]
    refused_sheet: Option<PathBuf>,
    /// Films read at once, each on a core of its own (default: one a core on the CPU,
    /// one at a time on a GPU; 1 reads them one after another).
    #[arg(long, short = 'j', value_name = "N", value_parser = at_least_one)]
    jobs: Option<usize>,
    #[command(flatten)]
    front_end: FrontEnd,
}

/// Runs `boneage preprocess`.
pub fn run(args: Args, device: DeviceChoice) -> anyhow::Result<ExitCode> {
    let canvas = Canvas::new(args.canvas.0, args.canvas.1)?;
    let t_load = Instant::now();
    let models = ModelsDir::locate(args.models.as_deref())?;
    let mut pipeline = Pipeline::load(&models.path, canvas, &device.device()?)?;
    args.front_end.apply(&mut pipeline);
    let load_s = t_load.elapsed().as_secs_f64();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let jobs = jobs_for(args.jobs, device);
    let bar = progress_bar(args.files.len() as u64, "preprocessing");
    let (mut rows, mut tiles, mut failed, mut refused) = (Vec::new(), Vec::new(), 0, 0);
    let (mut refusals, mut refused_tiles) = (String::from("id,file,kind,reason\n"), Vec::new());
    let mut front_end = FrontEndTime::default();
    let t_films = Instant::now();
    let film = |path: &PathBuf| read_film(path, &pipeline, &args, &canvas);
    each_at_once(&args.files, jobs, film, |i, outcome| {
        bar.inc(1);
        let path = &args.files[i];
        let id = stem(path);
        match outcome? {
            Film::Unread(e) => {
                failed += 1;
                bar.suspend(|| eprintln!("error: {e}"));
            }
            Film::Refused {
                seconds,
                kind,
                reason,
                tile,
            } => {
                refused += 1;
                front_end.add(false, seconds);
                bar.suspend(|| eprintln!("error: {}: {reason}", path.display()));
                refusals.push_str(&format!(
                    "{},{},{},{}\n",
                    csv_field(&id),
                    csv_field(&path.display().to_string()),
                    csv_field(&kind),
                    csv_field(&reason)
                ));
                if let Some(image) = tile {
                    // The kind on its own lines ("check:" / "leans"), to fit the tile.
                    let mut caption = vec![id];
                    caption.extend(kind.split_inclusive(": ").map(|l| l.trim().to_string()));
                    refused_tiles.push(Tile { image, caption });
                }
            }
            Film::Answered {
                seconds,
                line,
                keypoints,
                tile,
            } => {
                front_end.add(true, seconds);
                bar.suspend(|| eprintln!("{line}"));
                tiles.extend(tile.map(|t| (id.clone(), t)));
                rows.push((id, keypoints));
            }
        }
        anyhow::Ok(())
    })?;
    front_end.wall(t_films.elapsed().as_secs_f64(), jobs);
    bar.finish_and_clear();
    keypoints::write_csv(
        &args.out.join("keypoints.csv"),
        rows.iter().map(|(id, k)| (id.as_str(), k)),
    )?;
    write_atomic(&args.out.join("refused.csv"), |w| {
        w.write_all(refusals.as_bytes())
    })?;
    if let Some(sheet) = &args.refused_sheet {
        let layout = SheetLayout {
            columns: 12,
            tile_width: 140,
            tile_height: 180,
            title: Some(format!("{refused} films refused (reasons in refused.csv)")),
        };
        save_sheet(&refused_tiles, &layout, sheet)?;
        eprintln!("sheet of the refused films: {}", sheet.display());
    }
    if let Some(sheet) = &args.sheet {
        let layout = SheetLayout {
            columns: 8,
            tile_width: 200,
            tile_height: 260,
            title: Some(format!(
                "registered onto {}x{}",
                canvas.width, canvas.height
            )),
        };
        save_rgb(&tiles, &layout, sheet)?;
        eprintln!("sheet: {}", sheet.display());
    }
    eprintln!(
        "{} registered onto {}x{} in {} ({refused} refused, {failed} failed; models loaded in {load_s:.2} s)",
        rows.len(),
        canvas.width,
        canvas.height,
        args.out.display()
    );
    if let Some(line) = front_end.summary() {
        eprintln!("{line}");
    }
    Ok(match (refused, failed) {
        (0, 0) => ExitCode::SUCCESS,
        (r, 0) if r > 0 => exit::refused(args.files.len()),
        _ => exit::failures(failed + refused),
    })
}

/// What became of one film.
enum Film {
    /// It could not be read (the error names the file).
    Unread(String),
    /// The front end refused it, after `seconds`.
    Refused {
        seconds: f64,
        /// The refusal's kind and reason, as `refused.csv` lists them.
        kind: String,
        reason: String,
        /// Its thumbnail, for `--refused-sheet`.
        tile: Option<GrayImage>,
    },
    /// Registered and its files written, after `seconds` of front end.
    Answered {
        seconds: f64,
        /// The film's line of stages and registration.
        line: String,
        keypoints: KeyPoints,
        /// The registered hand's thumbnail, for `--sheet`.
        tile: Option<RgbImage>,
    },
}

/// Reads one film, runs the front end on it and writes its registered hand, regions
/// and overlay; an error only where its files cannot be written.
fn read_film(
    path: &Path,
    pipeline: &Pipeline,
    args: &Args,
    canvas: &Canvas,
) -> anyhow::Result<Film> {
    let id = stem(path);
    let t = Instant::now();
    let r = match read_radiograph(path) {
        Ok(r) => r,
        Err(e) => return Ok(Film::Unread(e.to_string())),
    };
    let read_s = t.elapsed().as_secs_f64();
    let run = Instant::now();
    let outcome = pipeline.run(&r.pixels);
    let seconds = run.elapsed().as_secs_f64();
    let p = match outcome {
        Ok(p) => p,
        Err(e) => {
            return Ok(Film::Refused {
                seconds,
                kind: e.kind(),
                reason: e.to_string(),
                tile: args
                    .refused_sheet
                    .is_some()
                    .then(|| thumbnail(&r.pixels, 140, 180)),
            });
        }
    };
    save_regions(&args.out, &id, &p.registered, canvas)?;
    let overlay = preprocessed_overlay(&p, canvas, &Region::ALL);
    save_rgb8_png(&overlay, &args.out.join(format!("{id}_overlay.png")))?;
    let [seg, norm, kp, reg] = p.seconds;
    let g = &p.registration;
    let line = format!(
        "{}: {:.2} s (read {read_s:.2}, segment {seg:.2}, normalize {norm:.2}, key points {kp:.2}, \
         register {reg:.2}); zoom {:.2}, rotation {:.0}°{}{}{}{}{}{}{}{}",
        path.display(),
        t.elapsed().as_secs_f64(),
        g.zoom,
        g.rotation_deg,
        if g.mirrored { ", mirrored" } else { "" },
        if p.inverted {
            ", polarity turned back"
        } else {
            ""
        },
        match p.on_canvas {
            Some([x0, y0, x1, y1]) => {
                format!(", read on the film lying at {x0}–{x1} × {y0}–{y1}")
            }
            None => String::new(),
        },
        if p.cut_out {
            ", read as a cut-out (its own outline the mask)"
        } else {
            ""
        },
        if p.locator_alone {
            ", key points by the locator alone"
        } else {
            ""
        },
        if p.framed {
            ", outlined by the framed-film U-Net"
        } else {
            ""
        },
        if p.forearm_inside {
            ", its forearm read as ending inside the image"
        } else {
            ""
        },
        if p.faint_tissue {
            ", outlined with its faint soft tissue brought up"
        } else {
            ""
        },
    );
    // The registered hand as the bone-age nets will see it.
    let tile = args
        .sheet
        .is_some()
        .then(|| to_rgb(&thumbnail(&p.registered, 200, 260)));
    Ok(Film::Answered {
        seconds,
        line,
        keypoints: p.keypoints,
        tile,
    })
}

/// Seconds the front end took (`Pipeline::run`, from segmentation to registration;
/// not reading the film or writing its files), over the answered films and over the
/// refused ones: a refused film has been read every way the front end reads a film.
/// With several films read at once each film's time is its time on its own core;
/// the batch's wall time says what a film costs the batch.
#[derive(Default)]
struct FrontEndTime {
    answered: (usize, f64),
    refused: (usize, f64),
    /// The films' wall time, reading and writing included, and the films at once.
    wall: Option<(f64, usize)>,
}

impl FrontEndTime {
    fn add(&mut self, answered: bool, seconds: f64) {
        let slot = if answered {
            &mut self.answered
        } else {
            &mut self.refused
        };
        slot.0 += 1;
        slot.1 += seconds;
    }

    fn wall(&mut self, seconds: f64, jobs: usize) {
        self.wall = Some((seconds, jobs));
    }

    /// The mean time a film, and the answered and refused films' means; then the
    /// batch's wall time a film.
    fn summary(&self) -> Option<String> {
        let n = self.answered.0 + self.refused.0;
        if n == 0 {
            return None;
        }
        let mean = |(k, s): (usize, f64)| s / k.max(1) as f64;
        let mut line = format!(
            "front end (segment to register): {:.3} s a film over {n} film{}",
            (self.answered.1 + self.refused.1) / n as f64,
            if n == 1 { "" } else { "s" }
        );
        if self.answered.0 > 0 && self.refused.0 > 0 {
            line.push_str(&format!(
                " ({:.3} s for the {} answered, {:.3} s for the {} refused)",
                mean(self.answered),
                self.answered.0,
                mean(self.refused),
                self.refused.0
            ));
        }
        if let Some((wall, jobs)) = self.wall {
            line.push_str(&format!(
                "\nwall time (reading, front end, writing): {wall:.1} s, {:.3} s a film, {}",
                wall / n as f64,
                match jobs.min(n) {
                    1 => "one film at a time".to_string(),
                    j => format!("{j} films at once, each on its own core"),
                }
            ));
        }
        Some(line)
    }
}
