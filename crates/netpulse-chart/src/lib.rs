//! netpulse's report charts, as SVG or PNG (by the file's extension), drawn with plotters:
//! latency over time with loss and outage shading, latency histograms, throughput lines, and
//! protocol bars. Text needs a TrueType font: DejaVu Sans from Debian's `fonts-dejavu-core`, or
//! the file `NETPULSE_FONT` names.
//!
//! Every chart is drawn once, as SVG; a PNG is that SVG rasterized by resvg. plotters' own
//! bitmap backend (0.3.7, ab_glyph) places each glyph at its advance without its left side
//! bearing, so narrow glyphs drift ("22:1 3:20"); resvg lays text out properly, and the two
//! formats can no longer differ.

use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why a chart could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// No font to write text with.
    #[error("no font for chart text: install DejaVu (apt-get install fonts-dejavu-core) or point NETPULSE_FONT at a .ttf file ({0})")]
    NoFont(String),
    /// The extension is neither .svg nor .png.
    #[error("{0}: charts are .svg or .png")]
    Format(PathBuf),
    /// Drawing or writing failed.
    #[error("cannot draw {path}: {reason}")]
    Draw {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// One time bucket of a target: latency (ms) and loss (0–1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatencyPoint {
    /// Bucket start, unix seconds.
    pub t: i64,
    /// Fastest reply.
    pub min: Option<f64>,
    /// Mean reply.
    pub avg: Option<f64>,
    /// Slowest reply.
    pub max: Option<f64>,
    /// Fraction lost (`None`: nothing sent).
    pub loss: Option<f64>,
}

/// SmokePing's smoke for one bucket: the 10, 25, 50, 75 and 90 % RTT percentiles (ms) of the
/// replies in `[t, t + width)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoke {
    /// Bucket start, unix seconds.
    pub t: i64,
    /// Bucket length, seconds.
    pub width: i64,
    /// p10, p25, p50, p75, p90 in ms.
    pub p: [f64; 5],
}

/// Axis labels for values up to `max` (ms, or any unit): as many decimals as tell them apart.
fn axis_label(v: f64, max: f64) -> String {
    if max >= 100.0 {
        format!("{v:.0}")
    } else if max >= 10.0 {
        format!("{v:.1}")
    } else if max >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

const FONT_PATHS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers the font once per process (plotters measures text with it); its bytes, for the
/// rasterizer.
fn font() -> Result<&'static [u8], ChartError> {
    static FONT: OnceLock<Result<&'static [u8], String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("NETPULSE_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        let path = candidates
            .iter()
            .find(|p| p.is_file())
            .ok_or_else(|| format!("looked in {}", FONT_PATHS.join(", ")))?;
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        // plotters keeps fonts for the life of the process; this happens once.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
            .map_err(|_| format!("{} is not a usable TrueType font", path.display()))?;
        Ok(bytes)
    })
    .clone()
    .map_err(ChartError::NoFont)
}

enum Kind {
    Svg,
    Png,
}

fn kind(path: &Path) -> Result<Kind, ChartError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => Ok(Kind::Svg),
        Some("png") => Ok(Kind::Png),
        _ => Err(ChartError::Format(path.to_path_buf())),
    }
}

const SIZE: (u32, u32) = (1000, 420);

/// Draws `$body` (an expression over `$root`, giving `Result<(), String>`) as SVG, and writes
/// it to the file as SVG or, rasterized, as PNG.
macro_rules! render {
    ($path:expr, |$root:ident| $body:expr) => {{
        let path: &Path = $path;
        let font = font()?;
        let kind = kind(path)?;
        let fail = |reason: String| ChartError::Draw {
            path: path.to_path_buf(),
            reason,
        };
        let mut svg = String::new();
        {
            let $root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            let drawn: Result<(), String> = (|| $body)();
            drawn.map_err(fail)?;
            $root.present().map_err(|e| fail(e.to_string()))?;
        }
        write_chart(path, kind, &svg, font).map_err(fail)
    }};
}

/// Writes a drawn chart: the SVG as it is, or rasterized to PNG with `font` for its text.
fn write_chart(path: &Path, kind: Kind, svg: &str, font: &'static [u8]) -> Result<(), String> {
    let bytes = match kind {
        Kind::Svg => svg.as_bytes().to_vec(),
        Kind::Png => rasterize(svg, font)?,
    };
    std::fs::write(path, bytes).map_err(|e| e.to_string())
}

/// The SVG as a PNG of [`SIZE`].
fn rasterize(svg: &str, font: &'static [u8]) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    let mut opt = usvg::Options::default();
    let db = opt.fontdb_mut();
    db.load_font_data(font.to_vec());
    // plotters writes font-family="sans-serif": the one font loaded is that family.
    let family = db
        .faces()
        .next()
        .and_then(|f| f.families.first().map(|(name, _)| name.clone()));
    if let Some(name) = family {
        db.set_sans_serif_family(name.clone());
        opt.font_family = name;
    }
    let tree = usvg::Tree::from_str(svg, &opt).map_err(|e| format!("SVG to PNG: {e}"))?;
    let mut pixmap =
        tiny_skia::Pixmap::new(SIZE.0, SIZE.1).ok_or("SVG to PNG: no room for the picture")?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(|e| format!("PNG: {e}"))
}

/// `HH:MM` (UTC); with seconds when the chart spans under an hour, with the date over two days.
pub fn time_label(t: i64, span: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let mut hm = format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60);
    if span < 3600 {
        hm = format!("{hm}:{:02}", secs % 60);
    }
    if span <= 2 * 86_400 {
        return hm;
    }
    let (_, m, d) = netpulse_core::civil::civil_from_days(days);
    format!("{m:02}-{d:02} {hm}")
}

fn span(ts: impl Iterator<Item = i64>) -> Option<(i64, i64)> {
    ts.fold(None, |acc, t| match acc {
        None => Some((t, t)),
        Some((a, b)) => Some((a.min(t), b.max(t))),
    })
    // One instant (a capture of under a second): a second either side, so it is drawn in the
    // middle, not on the edge.
    .map(|(a, b)| if a == b { (a - 1, b + 1) } else { (a, b) })
}

/// The series legend, top left, as every chart draws it.
macro_rules! legend {
    ($chart:expr, $e:expr) => {
        $chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperLeft)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(|x| $e(&x))?
    };
}

/// An empty chart that says so.
macro_rules! no_data {
    ($root:expr, $title:expr, $e:expr) => {
        return $root
            .titled(&format!("{} — no data", $title), ("sans-serif", 20))
            .map(|_| ())
            .map_err(|x| $e(&x))
    };
}

macro_rules! latency_body {
    ($root:expr, $title:expr, $points:expr, $smoke:expr, $outages:expr, $step:expr) => {{
        let root = $root;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let Some((from, to)) = span(
            $points
                .iter()
                .map(|p| p.t)
                .chain($outages.iter().flat_map(|o| [o.0, o.1])),
        ) else {
            no_data!(root, $title, e);
        };
        let to = to + $step;
        let replies = $points.iter().any(|p| p.avg.is_some());
        // No reply at all: a 0–1 ms axis (labels that differ), the title says why it is empty.
        let ymax = if replies {
            $points
                .iter()
                .filter_map(|p| p.max.or(p.avg))
                .chain($smoke.iter().map(|s| s.p[4]))
                .fold(0.0f64, f64::max)
                .max(0.001)
                * 1.15
        } else {
            1.0
        };
        let caption = if replies {
            $title.to_string()
        } else {
            format!("{} (no replies)", $title)
        };
        let span_s = to - from;
        let mut chart = ChartBuilder::on(root)
            .caption(caption.as_str(), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .right_y_label_area_size(48)
            .build_cartesian_2d(from..to, 0.0..ymax)
            .map_err(|x| e(&x))?
            .set_secondary_coord(from..to, 0.0..100.0);
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|t| time_label(*t, span_s))
            .y_desc("latency (ms)")
            .y_label_formatter(&|v| axis_label(*v, ymax))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|x| e(&x))?;
        chart
            .configure_secondary_axes()
            .y_desc("loss (%)")
            .draw()
            .map_err(|x| e(&x))?;
        let red = RGBColor(220, 50, 47);
        // Outages: shaded across the whole height.
        chart
            .draw_series($outages.iter().map(|&(a, b)| {
                Rectangle::new([(a, 0.0), (b.max(a + 1), ymax)], red.mix(0.15).filled())
            }))
            .map_err(|x| e(&x))?
            .label("outage")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], red.mix(0.3).filled())
            });
        // Loss: bars on the right axis.
        chart
            .draw_secondary_series(
                $points
                    .iter()
                    .filter(|p| p.loss.is_some_and(|l| l > 0.0))
                    .map(|p| {
                        Rectangle::new(
                            [(p.t, 0.0), (p.t + $step, p.loss.unwrap_or(0.0) * 100.0)],
                            red.mix(0.6).filled(),
                        )
                    }),
            )
            .map_err(|x| e(&x))?
            .label("loss")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], red.mix(0.6).filled())
            });
        let blue = RGBColor(38, 139, 210);
        // Min–max band, then the average line, broken where there was no reply.
        chart
            .draw_series($points.iter().filter_map(|p| {
                Some(Rectangle::new(
                    [(p.t, p.min?), (p.t + $step, p.max?)],
                    blue.mix(0.18).filled(),
                ))
            }))
            .map_err(|x| e(&x))?
            .label("min–max")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], blue.mix(0.25).filled())
            });
        // The smoke: per bucket, the 10–90 % band lighter, the 25–75 % darker, the median a dash.
        let grey = RGBColor(88, 96, 105);
        chart
            .draw_series($smoke.iter().map(|s| {
                Rectangle::new([(s.t, s.p[0]), (s.t + s.width, s.p[4])], grey.mix(0.22).filled())
            }))
            .map_err(|x| e(&x))?
            .label("10–90 %")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], grey.mix(0.22).filled())
            });
        chart
            .draw_series($smoke.iter().map(|s| {
                Rectangle::new([(s.t, s.p[1]), (s.t + s.width, s.p[3])], grey.mix(0.45).filled())
            }))
            .map_err(|x| e(&x))?
            .label("25–75 %, median")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 5), (x + 14, y + 5)], grey.mix(0.45).filled())
            });
        chart
            .draw_series($smoke.iter().map(|s| {
                PathElement::new([(s.t, s.p[2]), (s.t + s.width, s.p[2])], BLACK.stroke_width(2))
            }))
            .map_err(|x| e(&x))?;
        let mut runs: Vec<Vec<(i64, f64)>> = vec![Vec::new()];
        let mut last: Option<i64> = None;
        for p in $points.iter() {
            match p.avg {
                Some(v) if last.is_none_or(|l| p.t - l <= 3 * $step) => {
                    if let Some(run) = runs.last_mut() {
                        run.push((p.t, v));
                    }
                    last = Some(p.t);
                }
                Some(v) => {
                    runs.push(vec![(p.t, v)]);
                    last = Some(p.t);
                }
                None => {
                    runs.push(Vec::new());
                    last = None;
                }
            }
        }
        let mut labelled = false;
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let s = chart
                .draw_series(LineSeries::new(run, blue.stroke_width(2)))
                .map_err(|x| e(&x))?;
            if !labelled {
                s.label("average").legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 14, y)], blue.stroke_width(2))
                });
                labelled = true;
            }
        }
        legend!(chart, e);
        Ok(())
    }};
}

/// Latency over time (average line, min–max band, the smoke of percentile bands), loss bars
/// (right axis, %) and outages shaded. `step` is the bucket length in seconds; outages are
/// (start, end) unix seconds.
pub fn latency(
    path: &Path,
    title: &str,
    points: &[LatencyPoint],
    smoke: &[Smoke],
    outages: &[(i64, i64)],
    step: i64,
) -> Result<(), ChartError> {
    let step = step.max(1);
    render!(path, |root| latency_body!(
        &root, title, points, smoke, outages, step
    ))
}

/// The chart kinds below share one drawing routine per backend; plotters' backends are
/// separate types, so the routine is a macro expanded for each.
macro_rules! lines_body {
    ($root:expr, $title:expr, $y_desc:expr, $series:expr, $fmt:expr, $colours:expr) => {{
        let root = $root;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        let Some((from, to)) = span($series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0))) else {
            no_data!(root, $title, e);
        };
        let ymax = $series
            .iter()
            .flat_map(|(_, s)| s.iter().map(|p| p.1))
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.15;
        let span_s = to - from;
        let mut chart = ChartBuilder::on(root)
            .caption($title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(80)
            .build_cartesian_2d(from..to, 0.0..ymax)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .x_labels(8)
            .x_label_formatter(&|t| time_label(*t, span_s))
            .y_desc($y_desc)
            .y_label_formatter(&|v| $fmt(*v))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|x| e(&x))?;
        for (i, (name, points)) in $series.iter().enumerate() {
            let color = match $colours.get(i) {
                Some(&(r, g, b)) => RGBColor(r, g, b).to_rgba(),
                None => Palette99::pick(i).to_rgba(),
            };
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|x| e(&x))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 14, y)], color.stroke_width(2))
                });
            // Few points (a short capture: one second) draw no line to speak of: mark them.
            if points.len() <= MARKED_POINTS {
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                    .map_err(|x| e(&x))?;
            }
        }
        legend!(chart, e);
        Ok(())
    }};
}

/// Series with at most this many points get a marker on each.
const MARKED_POINTS: usize = 30;

/// Lines over time, one per named series of (unix second, value); `fmt` labels the y axis.
pub fn lines(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<(i64, f64)>)],
    fmt: fn(f64) -> String,
) -> Result<(), ChartError> {
    lines_coloured(path, title, y_desc, series, fmt, &[])
}

/// [`lines`] with the colour of each series (RGB) given, so a chart matches the dashboard's;
/// series past `colours` take the palette's.
pub fn lines_coloured(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<(i64, f64)>)],
    fmt: fn(f64) -> String,
    colours: &[(u8, u8, u8)],
) -> Result<(), ChartError> {
    render!(path, |root| lines_body!(
        &root, title, y_desc, series, fmt, colours
    ))
}

macro_rules! bars_body {
    ($root:expr, $title:expr, $x_desc:expr, $y_desc:expr, $bars:expr, $fmt:expr) => {{
        let root = $root;
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        if $bars.is_empty() {
            no_data!(root, $title, e);
        }
        let ymax = $bars.iter().map(|b| b.1).fold(0.0f64, f64::max).max(1e-9) * 1.15;
        let n = $bars.len() as i32;
        let mut chart = ChartBuilder::on(root)
            .caption($title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            // Segmented: a label sits under the middle of its bar, not at its left edge.
            .build_cartesian_2d((0..n).into_segmented(), 0.0..ymax)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            // Every label on a narrow bar would overlap its neighbours'.
            .x_labels($bars.len().min(12))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => $bars
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .map(|b| b.0.clone())
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .x_desc($x_desc)
            .y_desc($y_desc)
            .y_label_formatter(&|v| $fmt(*v))
            .draw()
            .map_err(|x| e(&x))?;
        let teal = RGBColor(42, 161, 152);
        chart
            .draw_series($bars.iter().enumerate().map(|(i, b)| {
                let i = i as i32;
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), b.1),
                    ],
                    teal.mix(0.8).filled(),
                );
                r.set_margin(0, 0, 6, 6);
                r
            }))
            .map_err(|x| e(&x))?;
        Ok(())
    }};
}

/// Bars, one per (label, value), in the order given.
pub fn bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    bars: &[(String, f64)],
    fmt: fn(f64) -> String,
) -> Result<(), ChartError> {
    render!(path, |root| bars_body!(
        &root, title, x_desc, y_desc, bars, fmt
    ))
}

/// Stacked bars: one bar per `(label, values)`, its values stacked bottom-up in the order of
/// `series` (their names, shown in the legend) — where a request's time goes, say.
pub fn stacked_bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[&str],
    bars: &[(String, Vec<f64>)],
) -> Result<(), ChartError> {
    render!(path, |root| {
        let e = |e: &dyn std::fmt::Display| e.to_string();
        root.fill(&WHITE).map_err(|x| e(&x))?;
        if bars.is_empty() {
            no_data!(root, title, e);
        }
        let ymax = bars
            .iter()
            .map(|b| b.1.iter().sum::<f64>())
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.15;
        let n = bars.len() as i32;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..ymax)
            .map_err(|x| e(&x))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().min(12))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => bars
                    .get(usize::try_from(*i).unwrap_or(usize::MAX))
                    .map(|b| b.0.clone())
                    .unwrap_or_default(),
                SegmentValue::Last => String::new(),
            })
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(|x| e(&x))?;
        for (k, name) in series.iter().enumerate() {
            let colour = Palette99::pick(k).to_rgba();
            chart
                .draw_series(bars.iter().enumerate().map(|(i, b)| {
                    let i = i as i32;
                    let below: f64 = b.1.iter().take(k).sum();
                    let value = b.1.get(k).copied().unwrap_or(0.0);
                    let mut r = Rectangle::new(
                        [
                            (SegmentValue::Exact(i), below),
                            (SegmentValue::Exact(i + 1), below + value),
                        ],
                        colour.filled(),
                    );
                    r.set_margin(0, 0, 6, 6);
                    r
                }))
                .map_err(|x| e(&x))?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|x| e(&x))?;
        Ok(())
    })
}

/// Bits per second with an SI prefix, spelled as the CLI and the TUI spell it.
pub fn fmt_bits(v: f64) -> String {
    netpulse_core::units::Units {
        si: true,
        bits: true,
    }
    .rate(Some(v / 8.0))
}

/// A count, with k/M suffixes.
pub fn fmt_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_times_in_labels() {
        let week = 7 * 86_400;
        assert_eq!(time_label(0, week), "01-01 00:00");
        assert_eq!(time_label(1_700_000_000, 86_400), "22:13");
        assert_eq!(time_label(1_700_000_000, 600), "22:13:20");
        assert_eq!(time_label(1_700_000_000, week), "11-14 22:13");
        assert_eq!(time_label(951_782_400, week), "02-29 00:00");
    }

    #[test]
    fn latency_charts_in_both_formats_carry_their_data() {
        if font().is_err() {
            eprintln!("skipped: no DejaVu font (`.ci/run` installs fonts-dejavu-core)");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let points: Vec<LatencyPoint> = (0..120)
            .map(|i| LatencyPoint {
                t: 1_700_000_000 + i,
                min: Some(10.0),
                avg: (i % 30 != 7).then_some(12.0 + (i % 5) as f64),
                max: Some(20.0),
                loss: Some(if i % 30 == 7 { 1.0 } else { 0.0 }),
            })
            .collect();
        let outages = [(1_700_000_050, 1_700_000_060)];
        let smoke: Vec<Smoke> = (0..4)
            .map(|i| Smoke {
                t: 1_700_000_000 + 30 * i,
                width: 30,
                p: [11.0, 12.0, 13.0, 15.0, 19.0],
            })
            .collect();
        let svg = dir.path().join("lat.svg");
        latency(&svg, "gw latency", &points, &smoke, &outages, 1).expect("svg");
        let text = std::fs::read_to_string(&svg).expect("read svg");
        assert!(text.contains("gw latency") && text.contains("latency (ms)"));
        assert!(text.contains("average") && text.contains("outage"));
        assert!(
            text.contains("10–90 %") && text.contains("25–75 %, median"),
            "the smoke"
        );
        // The gaps (no reply) break the average line into separate runs.
        assert!(
            text.matches("<polyline").count() >= 4,
            "{}",
            text.matches("<polyline").count()
        );
        let png = dir.path().join("lat.png");
        latency(&png, "gw latency", &points, &smoke, &outages, 1).expect("png");
        let bytes = std::fs::read(&png).expect("read png");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        assert!(bytes.len() > 10_000);
        let bad = dir.path().join("lat.jpg");
        assert!(matches!(
            latency(&bad, "x", &points, &[], &[], 1),
            Err(ChartError::Format(_))
        ));
    }

    #[test]
    fn a_target_without_replies_says_so_and_its_axis_labels_differ() {
        if font().is_err() {
            eprintln!("skipped: no DejaVu font (`.ci/run` installs fonts-dejavu-core)");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let points: Vec<LatencyPoint> = (0..60)
            .map(|i| LatencyPoint {
                t: 1_700_000_000 + i,
                min: None,
                avg: None,
                max: None,
                loss: Some(1.0),
            })
            .collect();
        let svg = dir.path().join("dead.svg");
        latency(&svg, "dead", &points, &[], &[], 1).expect("svg");
        let text = std::fs::read_to_string(&svg).expect("read svg");
        assert!(text.contains("dead (no replies)"), "the title says why");
        assert!(text.matches(">0.00<").count() <= 1, "six 0.00 labels");
        assert_eq!(axis_label(12.345, 50.0), "12.3");
        assert_eq!(axis_label(0.0421, 0.08), "0.042");
    }

    #[test]
    fn lines_and_bars_and_empty_data() {
        if font().is_err() {
            eprintln!("skipped: no DejaVu font (`.ci/run` installs fonts-dejavu-core)");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let series = vec![
            (
                "eth0 down".to_string(),
                (0..60).map(|i| (i * 60, 1e6 * i as f64)).collect(),
            ),
            (
                "eth0 up".to_string(),
                (0..60).map(|i| (i * 60, 2e5)).collect(),
            ),
        ];
        let svg = dir.path().join("if.svg");
        lines(&svg, "eth0", "bit/s", &series, fmt_bits).expect("lines");
        let text = std::fs::read_to_string(&svg).expect("svg");
        assert!(text.contains("eth0 down") && text.contains("Mbit/s"));
        let b = dir.path().join("p.svg");
        let data = vec![("tcp".to_string(), 900.0), ("udp".to_string(), 100.0)];
        bars(&b, "protocols", "protocol", "packets", &data, fmt_count).expect("bars");
        let text = std::fs::read_to_string(&b).expect("svg");
        assert!(
            text.contains("\ntcp\n</text>") && text.contains("\nudp\n</text>"),
            "{text}"
        );
        let empty = dir.path().join("e.svg");
        lines(&empty, "nothing", "x", &[], fmt_count).expect("empty");
        assert!(std::fs::read_to_string(&empty)
            .expect("svg")
            .contains("no data"));
    }
}
