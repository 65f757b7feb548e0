//! One module per subcommand: arguments, then a `run` that calls the library.

pub mod assess;
pub mod bench;
pub mod evaluate;
pub mod export;
pub mod inspect;
pub mod mine;
pub mod phantom;
pub mod preprocess;
pub mod register;
pub mod review_web;
pub mod segment;
pub mod sheet;
pub mod split;
pub mod train;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar on stderr with count, rate and ETA; hidden when stderr is not a
/// terminal (indicatif's default), so logs stay clean.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, ETA {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Parses `WxH` (e.g. `416x512`).
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT, e.g. 416x512"))?;
    let w: usize = w
        .trim()
        .parse()
        .map_err(|_| format!("width {w:?} is not a number"))?;
    let h: usize = h
        .trim()
        .parse()
        .map_err(|_| format!("height {h:?} is not a number"))?;
    Ok((w, h))
}
