//! `boneage sheet`: a contact sheet of a dataset, sorted by bone age.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use boneage_core::dataset::Dataset;
use boneage_core::read_radiograph;
use boneage_core::sheet::{SheetLayout, Tile, save};
use rayon::prelude::*;

/// Arguments of `boneage sheet`.
#[derive(clap::Args)]
pub struct Args {
    /// Dataset folder: `DIR/labels.csv` or `DIR.csv` beside it, images `DIR/<id>.png`.
    dir: PathBuf,
    /// Output PNG.
    #[arg(long)]
    out: PathBuf,
    /// How many images (evenly spaced over the age-sorted list).
    #[arg(long, default_value_t = 32)]
    n: usize,
    /// Tiles per row.
    #[arg(long, default_value_t = 8)]
    columns: usize,
    /// Tile size as WIDTHxHEIGHT.
    #[arg(long, default_value = "128x160", value_parser = crate::args::parse_size)]
    tile: (usize, usize),
    /// Title drawn across the top.
    #[arg(long)]
    title: Option<String>,
    /// Girls first, then boys (each by age), instead of all by age.
    #[arg(long)]
    group_by_sex: bool,
}

/// Runs the command.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let ds = Dataset::open_dir(&args.dir)?;
    anyhow::ensure!(
        !ds.samples.is_empty(),
        "{}: the labels list no image",
        args.dir.display()
    );
    let mut samples = ds.samples.clone();
    samples.sort_by(|a, b| {
        a.boneage_months
            .total_cmp(&b.boneage_months)
            .then(a.id.cmp(&b.id))
    });
    let n = args.n.clamp(1, samples.len());
    let mut picked: Vec<_> = (0..n)
        .map(|i| {
            &samples[if n == 1 {
                0
            } else {
                i * (samples.len() - 1) / (n - 1)
            }]
        })
        .collect();
    if args.group_by_sex {
        // Stable: each sex stays sorted by age.
        picked.sort_by_key(|s| s.sex.is_male());
    }
    let tiles: Vec<Tile> = picked
        .par_iter()
        .map(|s| {
            let r = read_radiograph(ds.image_path(s))?;
            let years = s.boneage_months / 12.0;
            Ok(Tile {
                image: r.pixels,
                caption: vec![
                    format!("{} {}", s.id, s.sex.letter()),
                    format!("{:.0} MO {years:.1} Y", s.boneage_months),
                ],
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let layout = SheetLayout {
        columns: args.columns,
        tile_width: args.tile.0,
        tile_height: args.tile.1,
        title: args.title,
    };
    save(&tiles, &layout, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wrote {} ({} tiles)", args.out.display(), tiles.len());
    Ok(ExitCode::SUCCESS)
}
