//! PNG plots of simulation cells: gap to the object, speeds, and deceleration with the AEB's
//! warning and braking stages shaded, over time. Drawn with plotters into a buffer and written
//! with the `image` crate; the labels use DejaVu Sans, embedded (see assets/).

use crate::result::CellResult;
use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use std::path::Path;

const WIDTH: u32 = 900;
const HEIGHT: u32 = 760;

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../assets/DejaVuSans.ttf");
        if plotters::style::register_font("sans-serif", FontStyle::Normal, font).is_err() {
            tracing::warn!("the embedded font does not load; plots will lack text");
        }
    });
}

/// Stage colours: warning, partial braking, full braking.
const STAGES: [(u8, RGBColor); 3] =
    [(1, RGBColor(255, 225, 110)), (2, RGBColor(255, 170, 80)), (3, RGBColor(240, 90, 80))];

/// Writes `path`: three panels (gap; ego and target speed; deceleration with the stages).
pub fn cell(path: &Path, result: &CellResult) -> Result<()> {
    register_font();
    let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    draw(&mut buffer, result).map_err(|e| anyhow!("{e}"))?;
    image::save_buffer(path, &buffer, WIDTH, HEIGHT, image::ExtendedColorType::Rgb8)?;
    Ok(())
}

fn draw(buffer: &mut [u8], r: &CellResult) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buffer, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE)?;
    let outcome = if r.impact {
        format!("impact at {:.1} km/h", r.impact_speed_kmh)
    } else if r.min_gap_m.is_finite() {
        format!("stopped {:.2} m short", r.min_gap_m)
    } else {
        "no impact".into()
    };
    let title = format!("{}: {} ({outcome})", r.label, r.colour.name());
    let root = root.titled(&title, ("sans-serif", 20))?;
    let panels = root.split_evenly((3, 1));
    let series = &r.series;
    let t_max = series.last().map_or(1.0, |s| s.t_s).max(0.1);
    let times = |of: fn(&CellResult) -> Option<f64>| of(r).into_iter();
    let markers: Vec<(f64, &str, RGBColor)> = times(|r| r.warning_time_s)
        .map(|t| (t, "warning", RGBColor(200, 150, 0)))
        .chain(times(|r| r.braking_time_s).map(|t| (t, "braking", RGBColor(220, 60, 40))))
        .chain(times(|r| r.impact_time_s).map(|t| (t, "impact", BLACK)))
        .collect();

    // Gap.
    let gaps: Vec<(f64, f64)> =
        series.iter().filter(|s| s.gap_m.is_finite()).map(|s| (s.t_s, s.gap_m.max(0.0))).collect();
    let gap_max = gaps.iter().map(|p| p.1).fold(1.0, f64::max) * 1.05;
    let mut chart = panel(&panels[0], t_max, gap_max, "gap to object, m")?;
    chart
        .draw_series(LineSeries::new(gaps, BLUE.stroke_width(2)))?
        .label("gap")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLUE.stroke_width(2)));
    for (t, name, colour) in &markers {
        chart
            .draw_series(LineSeries::new(vec![(*t, 0.0), (*t, gap_max)], colour.stroke_width(1)))?
            .label(format!("{name} {t:.2} s"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], *colour));
    }
    legend(&mut chart)?;

    // Speeds.
    let speed_max = series.iter().map(|s| s.ego_speed_mps.max(s.target_speed_mps)).fold(1.0, f64::max) * 3.6 * 1.1;
    let mut chart = panel(&panels[1], t_max, speed_max, "speed, km/h")?;
    let green = RGBColor(30, 150, 60);
    chart
        .draw_series(LineSeries::new(series.iter().map(|s| (s.t_s, s.ego_speed_mps * 3.6)), green.stroke_width(2)))?
        .label("ego")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], green.stroke_width(2)));
    chart
        .draw_series(LineSeries::new(
            series.iter().map(|s| (s.t_s, s.target_speed_mps * 3.6)),
            MAGENTA.stroke_width(2),
        ))?
        .label("target")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], MAGENTA.stroke_width(2)));
    legend(&mut chart)?;

    // Deceleration over the stages.
    let decel_max = series.iter().map(|s| s.decel_mps2).fold(1.0, f64::max).max(10.0);
    let mut chart = panel(&panels[2], t_max, decel_max, "deceleration, m/s²")?;
    for (level, colour) in STAGES {
        let spans = series.windows(2).filter(|w| w[0].level == level).map(|w| (w[0].t_s, w[1].t_s));
        chart.draw_series(spans.map(|(a, b)| Rectangle::new([(a, 0.0), (b, decel_max)], colour.mix(0.5).filled())))?;
        let name = ["warning", "partial braking", "full braking"][usize::from(level - 1)];
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], colour.mix(0.5).filled()));
    }
    chart
        .draw_series(LineSeries::new(series.iter().map(|s| (s.t_s, s.decel_mps2)), BLACK.stroke_width(2)))?
        .label("ego deceleration")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2)));
    legend(&mut chart)?;
    root.present()?;
    Ok(())
}

type Panel<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One of a cell plot's panels: time across, `y_desc` up to `y_max`.
fn panel<'a, 'b>(
    area: &'a DrawingArea<BitMapBackend<'b>, plotters::coord::Shift>,
    t_max: f64,
    y_max: f64,
    y_desc: &str,
) -> Result<Panel<'a, 'b>, Box<dyn std::error::Error>> {
    let mut chart = ChartBuilder::on(area)
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    chart.configure_mesh().y_desc(y_desc).x_desc("time, s").label_style(("sans-serif", 13)).draw()?;
    Ok(chart)
}

fn legend<'a, 'b: 'a>(chart: &mut Panel<'a, 'b>) -> Result<(), Box<dyn std::error::Error>> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Writes `path`: a histogram of `values_ms` (latencies) with its median and p99 marked.
pub fn histogram(path: &Path, title: &str, values_ms: &[f64]) -> Result<()> {
    register_font();
    let (width, height) = (800u32, 420u32);
    let mut buffer = vec![0u8; (width * height * 3) as usize];
    draw_histogram(&mut buffer, (width, height), title, values_ms).map_err(|e| anyhow!("{e}"))?;
    image::save_buffer(path, &buffer, width, height, image::ExtendedColorType::Rgb8)?;
    Ok(())
}

fn draw_histogram(
    buffer: &mut [u8],
    size: (u32, u32),
    title: &str,
    values: &[f64],
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(buffer, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let quantile = |p: f64| sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(0.0);
    let top = quantile(1.0).max(0.1) * 1.05;
    const BINS: usize = 40;
    let width = top / BINS as f64;
    let mut counts = [0u32; BINS];
    for v in &sorted {
        counts[((v / width) as usize).min(BINS - 1)] += 1;
    }
    let peak = counts.iter().copied().max().unwrap_or(1).max(1);
    let caption = format!(
        "{title}: n {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        quantile(0.5),
        quantile(0.99),
        quantile(1.0)
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..top, 0u32..peak + peak / 10 + 1)?;
    chart.configure_mesh().x_desc("ms").y_desc("frames").label_style(("sans-serif", 13)).draw()?;
    let blue = RGBColor(70, 110, 190);
    chart.draw_series(
        counts
            .iter()
            .enumerate()
            .map(|(i, &c)| Rectangle::new([(i as f64 * width, 0), ((i + 1) as f64 * width, c)], blue.filled())),
    )?;
    for (p, colour) in [(0.5, RGBColor(30, 150, 60)), (0.99, RGBColor(220, 60, 40))] {
        let x = quantile(p);
        chart.draw_series(LineSeries::new(vec![(x, 0), (x, peak + peak / 10)], colour.stroke_width(2)))?;
    }
    root.present()?;
    Ok(())
}
