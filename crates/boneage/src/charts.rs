//! PNG charts for the evaluation report (plotters, with an embedded DejaVu Sans so
//! that no system font is needed): a heatmap table, lines by stage, a scatter.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

const FONT: &str = "sans-serif";

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            include_bytes!("../assets/DejaVuSans.ttf"),
        )
        .unwrap_or_else(|_| panic!("the embedded font is a valid TrueType font"));
    });
}

/// A chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// plotters failed.
    #[error("drawing the chart: {0}")]
    Draw(String),
    /// The PNG could not be written.
    #[error(transparent)]
    Write(#[from] boneage_core::Error),
}

fn plot_err<E: std::fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

/// Draws into an RGB buffer of `w`×`h`, then saves it (atomically) as a PNG.
fn render(
    path: &Path,
    (w, h): (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>) -> Result<(), ChartError>,
) -> Result<(), ChartError> {
    register_font();
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        draw(&root)?;
        root.present().map_err(plot_err)?;
    }
    let img = image::RgbImage::from_raw(w, h, buf).expect("buffer size matches");
    boneage_core::image::save_rgb8_png(&img, path)?;
    Ok(())
}

/// Green (low) → yellow → red (high) for `t` in `[0, 1]`.
fn heat(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0);
    let (r, g) = if t < 0.5 {
        (2.0 * t, 1.0)
    } else {
        (1.0, 2.0 * (1.0 - t))
    };
    RGBColor((90.0 + 165.0 * r) as u8, (90.0 + 150.0 * g) as u8, 110)
}

/// A table of numbers as coloured cells: `groups` label spans of columns above the
/// column labels; `None` cells are grey.
pub fn heatmap(
    path: &Path,
    title: &str,
    groups: &[(&str, usize)],
    columns: &[&str],
    rows: &[(&str, Vec<Option<f64>>)],
    footnote: &str,
) -> Result<(), ChartError> {
    let (label_w, cell_w, cell_h, top) = (190i32, 92i32, 44i32, 96i32);
    let w = (label_w + cell_w * columns.len() as i32 + 20) as u32;
    let h = (top + cell_h * rows.len() as i32 + 50) as u32;
    let values: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.1.iter().flatten().copied())
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    render(path, (w, h), |root| {
        let text = |s: &str, size: i32, x: i32, y: i32, color: &RGBColor| {
            root.draw(&Text::new(
                s.to_string(),
                (x, y),
                (FONT, size).into_font().color(color),
            ))
            .map_err(plot_err)
        };
        text(title, 20, 10, 8, &BLACK)?;
        let mut x = label_w;
        for (g, span) in groups {
            let gw = cell_w * *span as i32;
            root.draw(&Rectangle::new(
                [(x + 2, 40), (x + gw - 2, 62)],
                RGBColor(225, 225, 235).filled(),
            ))
            .map_err(plot_err)?;
            text(g, 15, x + 8, 43, &BLACK)?;
            x += gw;
        }
        for (i, c) in columns.iter().enumerate() {
            text(c, 14, label_w + cell_w * i as i32 + 8, 70, &BLACK)?;
        }
        for (r, (label, cells)) in rows.iter().enumerate() {
            let y = top + cell_h * r as i32;
            text(label, 15, 10, y + 13, &BLACK)?;
            for (c, v) in cells.iter().enumerate() {
                let x = label_w + cell_w * c as i32;
                let fill = match v {
                    Some(v) if hi > lo => heat((v - lo) / (hi - lo)),
                    Some(_) => heat(0.0),
                    None => RGBColor(220, 220, 220),
                };
                root.draw(&Rectangle::new(
                    [(x + 2, y + 2), (x + cell_w - 2, y + cell_h - 2)],
                    fill.filled(),
                ))
                .map_err(plot_err)?;
                let s = v.map_or("–".to_string(), |v| format!("{v:.1}"));
                text(&s, 16, x + 22, y + 12, &BLACK)?;
            }
        }
        text(footnote, 13, 10, h as i32 - 30, &RGBColor(60, 60, 60))
    })
}

/// One panel of lines over categories.
pub struct LinePanel {
    /// Panel title.
    pub title: String,
    /// Category labels along x.
    pub categories: Vec<String>,
    /// (name, value per category).
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

const SERIES_COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(20, 20, 20),
    RGBColor(148, 103, 189),
];

/// Panels side by side, each with one line per series (the last drawn thicker).
pub fn line_panels(
    path: &Path,
    title: &str,
    y_label: &str,
    panels: &[LinePanel],
) -> Result<(), ChartError> {
    let w = 560 * panels.len() as u32;
    let y_max = panels
        .iter()
        .flat_map(|p| p.series.iter().flat_map(|s| s.1.iter().flatten().copied()))
        .fold(1.0f64, f64::max)
        * 1.5; // room for the legend above the lines
    render(path, (w, 460), |root| {
        let (top, rest) = root.split_vertically(36);
        top.draw(&Text::new(
            title.to_string(),
            (10, 8),
            (FONT, 20).into_font(),
        ))
        .map_err(plot_err)?;
        for (area, panel) in rest.split_evenly((1, panels.len())).iter().zip(panels) {
            let n = panel.categories.len();
            let mut chart = ChartBuilder::on(area)
                .caption(&panel.title, (FONT, 17))
                .margin(12)
                .x_label_area_size(50)
                .y_label_area_size(55)
                .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..y_max)
                .map_err(plot_err)?;
            let cats = panel.categories.clone();
            chart
                .configure_mesh()
                .x_labels(n.max(1))
                .x_label_formatter(&|x| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < cats.len() {
                        cats[i as usize].clone()
                    } else {
                        String::new()
                    }
                })
                .y_desc(y_label)
                .y_label_formatter(&|v| format!("{v:.0}"))
                .label_style((FONT, 11))
                .axis_desc_style((FONT, 14))
                .light_line_style(RGBColor(235, 235, 235))
                .draw()
                .map_err(plot_err)?;
            for (k, (name, values)) in panel.series.iter().enumerate() {
                let color = SERIES_COLORS[k % SERIES_COLORS.len()];
                let width = if k + 1 == panel.series.len() { 3 } else { 2 };
                let points: Vec<(f64, f64)> = values
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
                    .collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(width)))
                    .map_err(plot_err)?
                    .label(name.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(width))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(plot_err)?;
            }
            chart
                .configure_series_labels()
                .label_font((FONT, 13))
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(plot_err)?;
        }
        Ok(())
    })
}

/// Predicted against true values with the identity line; `groups` are (name,
/// colour index, points).
pub fn scatter(
    path: &Path,
    title: &str,
    (x_label, y_label): (&str, &str),
    max: f64,
    groups: &[(String, Vec<(f64, f64)>)],
) -> Result<(), ChartError> {
    render(path, (620, 600), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(14)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(0f64..max, 0f64..max)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_err)?;
        chart
            .draw_series(LineSeries::new(
                vec![(0.0, 0.0), (max, max)],
                RGBColor(120, 120, 120).stroke_width(1),
            ))
            .map_err(plot_err)?
            .label("identity")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RGBColor(120, 120, 120)));
        for (k, (name, points)) in groups.iter().enumerate() {
            let color = SERIES_COLORS[k % SERIES_COLORS.len()];
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(plot_err)?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, color.filled()));
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(plot_err)?;
        Ok(())
    })
}
