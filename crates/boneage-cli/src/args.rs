//! Parsers of argument values shared by several commands.

use boneage_core::geometry::Point;
use boneage_nn::pipeline::{KeypointSource, LookCloser, Pipeline, TurnRefused};

/// `WxH` (e.g. `416x512`) as (width, height).
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?} is not WIDTHxHEIGHT, e.g. 416x512"))?;
    let n = |v: &str, what: &str| {
        v.trim()
            .parse::<usize>()
            .map_err(|_| format!("{what} {v:?} is not a number"))
    };
    Ok((n(w, "width")?, n(h, "height")?))
}

/// A count of at least one (films at once, `-j`).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("{s:?} is not a count of at least 1")),
    }
}

/// `HEIGHTxWIDTH`, each at least 8 pixels (a network input).
pub fn parse_input(s: &str) -> Result<[usize; 2], String> {
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

/// Points of a polygon or polyline given on the command line (a newtype, so that
/// clap takes each occurrence as one value).
#[derive(Clone, Debug)]
pub struct Shape(pub Vec<Point>);

/// Points of a polygon or polyline, `x,y x,y ...`.
pub fn parse_shape(s: &str) -> Result<Shape, String> {
    boneage_core::ops::draw::parse_points(s).map(Shape)
}

/// One point, `x,y`.
pub fn parse_point(s: &str) -> Result<Point, String> {
    match boneage_core::ops::draw::parse_points(s)?[..] {
        [p] => Ok(p),
        _ => Err(format!("{s:?} is not x,y")),
    }
}

/// A rectangle `x0,y0,x1,y1` with x1 > x0 and y1 > y0.
pub fn parse_rect(s: &str) -> Result<[f64; 4], String> {
    let v: Vec<f64> = s
        .split(',')
        .map(|t| t.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(|| format!("{s:?} is not x0,y0,x1,y1"))?;
    match v[..] {
        [x0, y0, x1, y1] if x1 > x0 && y1 > y0 => Ok([x0, y0, x1, y1]),
        _ => Err(format!("{s:?} is not x0,y0,x1,y1 with x1 > x0 and y1 > y0")),
    }
}

/// A repeated option as it is typed on a command line: ` --NAME a --NAME b` (for the
/// command lines that reports print).
pub fn repeated(name: &str, values: &[std::path::PathBuf]) -> String {
    values
        .iter()
        .map(|v| format!(" --{name} {}", v.display()))
        .collect()
}

/// The options that set how the front end reads a film, shared by the commands
/// that run it to compare front ends (`preprocess`, `evaluate-preprocess`).
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct FrontEnd {
    /// Where the key points come from instead of the pipeline's (mask-geometry,
    /// checked by the key-point net): to compare them.
    #[arg(long, value_enum)]
    pub source: Option<KeypointSource>,
    /// When the U-Net and the key-point net look again, closer, at a hand that takes
    /// a small part of the film: never (the default, the shipped front end's way),
    /// always, or only on a film the first look refuses (measured, see the README).
    #[arg(long, value_enum, default_value_t = LookCloser::Never)]
    pub look_closer: LookCloser,
    /// Whether a film refused as sent is read again turned: axis (the default, the
    /// shipped front end's way: by the quarter turns its hand mask's axis calls for,
    /// then on a field turned upright along that axis), quarter (90° each way, then
    /// 180°, whatever the mask) or never (see the README, "Films sent turned"); the
    /// second reader's too.
    #[arg(long, value_enum, default_value_t = TurnRefused::Axis)]
    pub turn_refused: TurnRefused,
    /// Refuse what the first reader refuses: no second reader (the heat-map locator
    /// checked by the mask and the capitate net, `locator.safetensors`), to compare.
    #[arg(long)]
    pub no_second_reader: bool,
    /// Refuse a film on which the U-Net finds too little hand, without reading it
    /// again on the field that frames what it found (a small hand on a large film),
    /// in either reader: to compare.
    #[arg(long)]
    pub no_small_hand: bool,
    /// Do not read a film refused that another program has already cut out (exact
    /// black around the hand) again with its own outline as the hand's mask, as the
    /// shipped front end does since 2026-12-06 (see the README, "A film already cut
    /// out"): to compare.
    #[arg(long)]
    pub no_cut_outs: bool,
    /// Read a film another program has already cut out with its own outline only
    /// where it is refused as sent, as the shipped front end did before 2026-12-07,
    /// instead of first (see the README, "A cut-out read first"): to compare.
    #[arg(long)]
    pub no_cut_out_first: bool,
    /// Read a film both readers refuse, where the hand's outline disagreed with the
    /// key-point net, again with the second reader's locator's points alone, checked by
    /// the key-point net and the check after registration (measured, not shipped: see
    /// the README, "The locator alone where the outline fails").
    #[arg(long)]
    pub locator_alone: bool,
    /// Do not read a film refused every other way again with the U-Net trained for
    /// framed films (`unet_framed.safetensors`), as the shipped front end does since
    /// 2026-12-06 (see the README, "A U-Net for framed films"): to compare.
    #[arg(long)]
    pub no_framed_unet: bool,
    /// Do not read a film refused every other way once more with two pieces of the
    /// hand's outline that point against each other taken for a forearm that ends
    /// inside the image (a film photographed or scanned on a larger field), as the
    /// shipped front end does since 2026-12-06 (see the README, "A forearm that ends
    /// inside the image"): to compare.
    #[arg(long)]
    pub no_forearm_inside: bool,
    /// Do not read a film refused every other way once more with its dark values
    /// brought up for the U-Net (a dark film whose soft tissue is faint beside bright
    /// bone), as the shipped front end does since 2026-12-06 (see the README, "Faint
    /// soft tissue brought up"): to compare.
    #[arg(long)]
    pub no_faint_tissue: bool,
    /// Refuse a reading whose thumb tip the film does not show as the thumb's end
    /// (beyond it the film does not fall to the background): measured, off by
    /// default (see the README, "The thumb tip where the film shows the thumb's end").
    #[arg(long)]
    pub thumb_falloff: bool,
}

impl FrontEnd {
    /// Sets the pipeline's front end as these options say.
    pub fn apply(&self, pipeline: &mut Pipeline) {
        if let Some(source) = self.source {
            pipeline.source = source;
        }
        pipeline.look_closer = self.look_closer;
        pipeline.cut_outs &= !self.no_cut_outs;
        pipeline.cut_out_first &= !self.no_cut_out_first;
        pipeline.locator_alone |= self.locator_alone;
        pipeline.forearm_inside &= !self.no_forearm_inside;
        pipeline.faint_tissue &= !self.no_faint_tissue;
        if self.no_framed_unet {
            pipeline.framed = None;
        }
        if self.no_second_reader {
            pipeline.second = None;
        }
        // How refused films are read again holds for the second reader too (its
        // source and its closer look are its own).
        let set = |reader: &mut Pipeline| {
            reader.turn_refused = self.turn_refused;
            reader.small_hand &= !self.no_small_hand;
            reader.thumb_falloff |= self.thumb_falloff;
        };
        set(pipeline);
        if let Some(second) = pipeline.second.as_deref_mut() {
            set(second);
        }
    }

    /// The options as they were given (empty for the shipped front end), for a
    /// report's "Made by".
    pub fn flags(&self) -> String {
        fn name(v: impl clap::ValueEnum) -> String {
            v.to_possible_value()
                .map_or(String::new(), |p| p.get_name().to_string())
        }
        let mut flags = String::new();
        if let Some(source) = self.source {
            flags += &format!(" --source {}", name(source));
        }
        if self.look_closer != LookCloser::default() {
            flags += &format!(" --look-closer {}", name(self.look_closer));
        }
        if self.turn_refused != TurnRefused::default() {
            flags += &format!(" --turn-refused {}", name(self.turn_refused));
        }
        if self.no_second_reader {
            flags += " --no-second-reader";
        }
        if self.no_small_hand {
            flags += " --no-small-hand";
        }
        if self.no_cut_outs {
            flags += " --no-cut-outs";
        }
        if self.no_cut_out_first {
            flags += " --no-cut-out-first";
        }
        if self.locator_alone {
            flags += " --locator-alone";
        }
        if self.no_framed_unet {
            flags += " --no-framed-unet";
        }
        if self.no_forearm_inside {
            flags += " --no-forearm-inside";
        }
        if self.no_faint_tissue {
            flags += " --no-faint-tissue";
        }
        if self.thumb_falloff {
            flags += " --thumb-falloff";
        }
        flags
    }
}
