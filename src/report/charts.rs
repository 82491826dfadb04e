//! The report's charts: plotters draws them into SVG text (its SVG backend writes `<text>`
//! elements and leaves the fonts to the browser, so no font files or system libraries are
//! involved). Each chart gets a `<title>` and `<desc>` and `role="img"`, and the page puts a
//! table with the same numbers next to it.
//!
//! Colours: the axes, grid and text are drawn in fixed colours that the page's stylesheet
//! repaints for dark mode (a CSS rule beats an SVG presentation attribute); the series colours
//! read on both backgrounds.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};

/// Axis lines and text; the stylesheet repaints `#000000` in dark mode.
const INK: RGBColor = RGBColor(0, 0, 0);
/// Grid lines; repainted in dark mode.
const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
/// The main series.
pub const BLUE: RGBColor = RGBColor(0x25, 0x63, 0xEB);
/// A target or threshold.
pub const RED: RGBColor = RGBColor(0xDC, 0x26, 0x26);
/// Further series, in order.
pub const SERIES: [RGBColor; 4] = [
    BLUE,
    RGBColor(0xD9, 0x77, 0x06),
    RGBColor(0x05, 0x96, 0x69),
    RGBColor(0x7C, 0x3A, 0xED),
];

const WIDTH: u32 = 720;
const HEIGHT: u32 = 300;
const FONT: &str = "sans-serif";

/// What every chart has: an id (for `aria-labelledby`), a title and a description.
#[derive(Debug, Clone)]
pub struct Caption {
    /// Unique in the page.
    pub id: String,
    /// Short title.
    pub title: String,
    /// A sentence saying what the chart shows, for screen readers.
    pub desc: String,
}

/// A bar chart over categories.
#[derive(Debug, Clone)]
pub struct Bars {
    /// Title and description.
    pub caption: Caption,
    /// Category labels, left to right.
    pub labels: Vec<String>,
    /// Bar heights; `None` draws no bar (the label says why).
    pub values: Vec<Option<f64>>,
    /// Bars drawn faded (an incomplete month).
    pub muted: Vec<bool>,
    /// The text above each bar.
    pub value_labels: Vec<String>,
    /// A horizontal target line and its legend text.
    pub target: Option<(f64, String)>,
    /// The y axis range; `None` = 0 to a little above the largest value.
    pub y_range: Option<(f64, f64)>,
    /// How y axis ticks read.
    pub y_format: fn(f64) -> String,
}

/// Lines over categories (one per series).
#[derive(Debug, Clone)]
pub struct Lines {
    /// Title and description.
    pub caption: Caption,
    /// Category labels, left to right.
    pub labels: Vec<String>,
    /// (name, value per label); a `None` breaks the line.
    pub series: Vec<(String, Vec<Option<f64>>)>,
    /// The y axis range.
    pub y_range: (f64, f64),
    /// How y axis ticks read.
    pub y_format: fn(f64) -> String,
}

/// `n` categories on the x axis: plotters' integer ranges include their end, so `0..n - 1`.
fn categories(
    n: usize,
) -> plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32> {
    (0..(n.max(1) as i32 - 1)).into_segmented()
}

fn chart_error(e: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::encode("report chart", crate::error::Detail::caused_by(e))
}

fn auto_range(values: &[Option<f64>], target: Option<f64>) -> (f64, f64) {
    let top = values
        .iter()
        .flatten()
        .copied()
        .chain(target)
        .fold(0.0_f64, f64::max);
    let bottom = values.iter().flatten().copied().fold(0.0_f64, f64::min);
    // Headroom for the value labels above the bars.
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    (bottom * 1.15, top)
}

/// Draw a bar chart; returns the `<svg>` element.
pub fn bar_chart(bars: &Bars) -> Result<String> {
    let (lo, hi) = bars
        .y_range
        .unwrap_or_else(|| auto_range(&bars.values, bars.target.as_ref().map(|t| t.0)));
    category_chart(
        &bars.caption,
        &bars.labels,
        (lo, hi),
        bars.y_format,
        bars.target.is_some(),
        |chart| {
            for (i, value) in bars.values.iter().enumerate() {
                let Some(v) = value else { continue };
                let colour = if bars.muted.get(i).copied().unwrap_or(false) {
                    BLUE.mix(0.4)
                } else {
                    BLUE.mix(1.0)
                };
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i as i32), 0.0),
                        (SegmentValue::Exact(i as i32 + 1), *v),
                    ],
                    colour.filled(),
                );
                bar.set_margin(0, 0, 10, 10);
                chart
                    .draw_series(std::iter::once(bar))
                    .map_err(chart_error)?;
            }
            let label_style = (FONT, 16)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            for (i, text) in bars.value_labels.iter().enumerate() {
                let at = bars
                    .values
                    .get(i)
                    .copied()
                    .flatten()
                    .unwrap_or(0.0)
                    .max(0.0);
                chart
                    .draw_series(std::iter::once(Text::new(
                        text.clone(),
                        (SegmentValue::CenterOf(i as i32), at),
                        label_style.clone(),
                    )))
                    .map_err(chart_error)?;
            }
            if let Some((target, legend)) = &bars.target {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        vec![
                            (SegmentValue::Exact(0), *target),
                            (SegmentValue::Last, *target),
                        ],
                        RED.stroke_width(2),
                    )))
                    .map_err(chart_error)?
                    .label(legend.clone())
                    .legend(|(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], RED.stroke_width(2))
                    });
            }
            Ok(())
        },
    )
}

/// Draw a line chart; returns the `<svg>` element.
pub fn line_chart(lines: &Lines) -> Result<String> {
    category_chart(
        &lines.caption,
        &lines.labels,
        lines.y_range,
        lines.y_format,
        lines.series.len() > 1,
        |chart| {
            for (k, (name, values)) in lines.series.iter().enumerate() {
                let colour = SERIES[k % SERIES.len()];
                // Consecutive known points form a segment; a gap breaks the line.
                let mut segments: Vec<Vec<(SegmentValue<i32>, f64)>> = vec![Vec::new()];
                for (i, v) in values.iter().enumerate() {
                    match v {
                        Some(v) => segments
                            .last_mut()
                            .expect("one segment at least")
                            .push((SegmentValue::CenterOf(i as i32), *v)),
                        None => segments.push(Vec::new()),
                    }
                }
                let points: Vec<(SegmentValue<i32>, f64)> =
                    segments.iter().flatten().cloned().collect();
                chart
                    .draw_series(
                        segments
                            .into_iter()
                            .filter(|s| s.len() > 1)
                            .map(|s| PathElement::new(s, colour.stroke_width(3))),
                    )
                    .map_err(chart_error)?;
                chart
                    .draw_series(
                        points
                            .into_iter()
                            .map(|p| Circle::new(p, 5, colour.filled())),
                    )
                    .map_err(chart_error)?
                    .label(name.clone())
                    .legend(move |(x, y)| Circle::new((x + 8, y), 5, colour.filled()));
            }
            Ok(())
        },
    )
}

/// The plotting area of a chart over categories: categories across, numbers up.
type CategoryChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<
        plotters::coord::ranged1d::SegmentedCoord<plotters::coord::types::RangedCoordi32>,
        plotters::coord::types::RangedCoordf64,
    >,
>;

/// The frame every chart shares (margins, axes, grid, category labels, y ticks), then
/// `series` draws into it, then the legend when `legend` is set. Returns the `<svg>` element.
fn category_chart(
    caption: &Caption,
    labels: &[String],
    (lo, hi): (f64, f64),
    y_format: fn(f64) -> String,
    legend: bool,
    series: impl FnOnce(&mut CategoryChart<'_, '_>) -> Result<()>,
) -> Result<String> {
    let n = labels.len();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(72)
            .build_cartesian_2d(categories(n), lo..hi)
            .map_err(chart_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .y_labels(6)
            .y_label_formatter(&|v| y_format(*v))
            .axis_style(INK)
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(GRID)
            .label_style((FONT, 16).into_font().color(&INK))
            .draw()
            .map_err(chart_error)?;
        series(&mut chart)?;
        if legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.0))
                .border_style(INK.mix(0.0))
                .label_font((FONT, 16).into_font().color(&INK))
                .draw()
                .map_err(chart_error)?;
        }
        root.present().map_err(chart_error)?;
    }
    Ok(accessible(svg, caption))
}

/// Make the chart an image to assistive technology, named by its `<title>` and described by
/// its `<desc>`, and let it shrink with the page.
fn accessible(svg: String, caption: &Caption) -> String {
    let Some(open_end) = svg
        .find("<svg")
        .and_then(|s| svg[s..].find('>').map(|e| s + e))
    else {
        return svg;
    };
    let id = escape(&caption.id);
    format!(
        "{} role=\"img\" class=\"chart\" aria-labelledby=\"{id}-title {id}-desc\"><title id=\"{id}-title\">{}</title><desc id=\"{id}-desc\">{}</desc>{}",
        &svg[..open_end],
        escape(&caption.title),
        escape(&caption.desc),
        &svg[open_end + 1..]
    )
}

/// Text for an XML attribute or element, escaped by maud.
fn escape(text: &str) -> String {
    maud::html! { (text) }.into_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caption() -> Caption {
        Caption {
            id: "c1".into(),
            title: "CPSQL <by> month".into(),
            desc: "Cost per SQL & more".into(),
        }
    }

    #[test]
    fn a_bar_chart_is_an_accessible_svg_with_text_labels_and_no_external_reference() {
        let svg = bar_chart(&Bars {
            caption: caption(),
            labels: vec!["Oct 2026".into(), "Nov 2026".into()],
            values: vec![Some(120.0), None],
            muted: vec![false, true],
            value_labels: vec!["120".into(), "no SQLs".into()],
            target: Some((100.0, "target".into())),
            y_range: None,
            y_format: |v| format!("{v:.0}"),
        })
        .expect("drawn");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        assert!(svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"c1-title\">CPSQL &lt;by&gt; month</title>"));
        assert!(svg.contains("<desc id=\"c1-desc\">Cost per SQL &amp; more</desc>"));
        assert!(svg.contains(">\nOct 2026\n</text>") && svg.contains(">\nno SQLs\n</text>"));
        assert!(svg.contains("<rect"), "a bar");
        assert!(
            !svg.contains("href") && !svg.contains("url("),
            "nothing fetched"
        );
    }

    #[test]
    fn a_line_chart_draws_each_series_with_a_legend() {
        let svg = line_chart(&Lines {
            caption: caption(),
            labels: vec!["2026-09".into(), "2026-10".into(), "2026-11".into()],
            series: vec![
                ("a".into(), vec![Some(10.0), Some(-20.0), None]),
                ("b".into(), vec![Some(5.0), Some(30.0), Some(40.0)]),
            ],
            y_range: (-100.0, 100.0),
            y_format: |v| format!("{v:+.0}"),
        })
        .expect("drawn");
        assert!(svg.contains("<circle") && svg.contains("<polyline"));
        // One category alone still draws.
        let one = bar_chart(&Bars {
            caption: caption(),
            labels: vec!["only".into()],
            values: vec![Some(3.0)],
            muted: vec![false],
            value_labels: vec!["3".into()],
            target: None,
            y_range: None,
            y_format: |v| format!("{v:.0}"),
        })
        .expect("drawn");
        assert!(one.contains("<rect") && one.contains(">\nonly\n</text>"));
        assert!(svg.contains(">\na\n</text>") && svg.contains(">\nb\n</text>"));
    }
}
