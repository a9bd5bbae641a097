//! SVG charts for bench reports, written by hand: the HdrHistogram-style
//! percentile distribution (latency against percentile, the percentile axis
//! on a log scale: 0%, 90%, 99%, 99.9%, ...) and values over time.
//!
//! Everything here is a pure function of its input (no I/O, no clock), so
//! the output of a given report is byte-for-byte reproducible and the axis,
//! tick and path arithmetic is unit-tested. The SVG needs no script, no
//! font file and no stylesheet from elsewhere: it renders the same inline in
//! the HTML report, in a browser opened on the file alone, or in a README.
//!
//! A plotting crate (plotters) was considered: it would pull a font stack
//! and several backends into the binary for four kinds of line; the few
//! hundred lines below draw exactly what the report needs.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use super::report::RunData;

/// The width of a chart, pixels.
pub const WIDTH: f64 = 800.0;
/// The height of a chart, pixels.
pub const HEIGHT: f64 = 400.0;

/// Plot area margins: left (tick labels), right, top (title), bottom.
const MARGIN: (f64, f64, f64, f64) = (72.0, 40.0, 40.0, 52.0);

/// Line colours, one per series (an uncorrected series shares its run's).
const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The most nines the percentile axis shows (99.9999%).
const MAX_NINES: u32 = 6;

/// Quantile steps per halving of the remaining distance, as HdrHistogram's
/// percentile distribution output uses.
const TICKS_PER_HALF: u32 = 5;

/// The horizontal axis of a chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum XAxis {
    /// Percentiles on a log scale: x is `-log10(1 - q)` for quantile `q`,
    /// shown from 0% to `nines` nines (2: 99%, 3: 99.9%, ...).
    Percentile {
        /// The last tick's number of nines.
        nines: u32,
    },
    /// Seconds since measuring started.
    Seconds,
}

/// What the vertical axis measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum YAxis {
    /// Latency, values in microseconds (ticks in µs, ms or s).
    Latency,
    /// A rate or a count, with this label (`requests/s`).
    Count(&'static str),
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Its name in the legend.
    pub label: String,
    /// Points in data units (x per [`XAxis`], y per [`YAxis`]), in x order.
    pub points: Vec<(f64, f64)>,
    /// Index into the palette.
    pub color: usize,
    /// Drawn dashed (the uncorrected latency of an open-loop run).
    pub dashed: bool,
}

/// A line chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Shown above the plot, and the SVG's accessible name.
    pub title: String,
    /// The horizontal axis.
    pub x: XAxis,
    /// The vertical axis.
    pub y: YAxis,
    /// A time axis reaches at least this far (the run's length), whatever
    /// the points; ignored on a percentile axis.
    pub x_end: Option<f64>,
    /// The lines, drawn in order.
    pub series: Vec<Series>,
}

/// Maps quantile `q` (0..=1) to the log-percentile axis: `-log10(1 - q)`,
/// so 0% is 0, 90% is 1, 99% is 2, 99.9% is 3; clamped to `nines` (the
/// 100th percentile would be infinitely far).
pub fn percentile_x(q: f64, nines: u32) -> f64 {
    let max = f64::from(nines);
    if q.is_nan() || q >= 1.0 {
        return max;
    }
    (-(1.0 - q.max(0.0)).log10()).clamp(0.0, max)
}

/// The ticks of a percentile axis up to `nines` nines: `(x, label)` with
/// labels `0%`, `90%`, `99%`, `99.9%`, ...
pub fn percentile_ticks(nines: u32) -> Vec<(f64, String)> {
    (0..=nines)
        .map(|n| {
            let label = match n {
                0 => "0%".to_owned(),
                1 => "90%".to_owned(),
                n => format!("99.{}%", "9".repeat(n as usize - 2)).replace(".%", "%"),
            };
            (f64::from(n), label)
        })
        .collect()
}

/// How many nines the percentile axis needs for `count` samples: as many
/// as the samples can resolve (`10^n` samples resolve `n` nines), from 2 to
/// 6.
pub fn nines_for(count: u64) -> u32 {
    let mut nines = 0;
    let mut n = count;
    while n >= 10 {
        n /= 10;
        nines += 1;
    }
    nines.clamp(2, MAX_NINES)
}

/// Round ticks from 0 covering `max`: a step of 1, 2 or 5 times a power of
/// ten, the nearest to giving `target` intervals; the last tick is at least
/// `max`.
pub fn nice_ticks(max: f64, target: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / target.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .min_by(|a, b| {
            let off = |s: f64| (s / raw).ln().abs();
            off(*a).total_cmp(&off(*b))
        })
        .unwrap_or(magnitude);
    let mut ticks = vec![0.0];
    let mut i = 1.0;
    while ticks.last().is_some_and(|t| *t < max * (1.0 - 1e-9)) {
        ticks.push(i * step);
        i += 1.0;
    }
    ticks
}

/// The unit latency ticks are shown in for values up to `max_us`, and its
/// size in microseconds.
pub fn latency_unit(max_us: f64) -> (&'static str, f64) {
    if max_us >= 2_000_000.0 {
        ("s", 1e6)
    } else if max_us >= 2_000.0 {
        ("ms", 1e3)
    } else {
        ("µs", 1.0)
    }
}

/// A tick value with as many decimals as `step` needs: `0`, `2.5`, `0.05`,
/// and `12k`, `1.5M` for large counts.
pub fn fmt_tick(value: f64, step: f64) -> String {
    let (value, step, suffix) = if step >= 1e6 {
        (value / 1e6, step / 1e6, "M")
    } else if step >= 1e3 {
        (value / 1e3, step / 1e3, "k")
    } else {
        (value, step, "")
    };
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    format!("{value:.decimals$}{suffix}")
}

/// An SVG path through `points` (pixels): `M x y L x y ...`, one decimal.
pub fn path_d(points: &[(f64, f64)]) -> String {
    let mut d = String::with_capacity(points.len() * 14);
    for (i, (x, y)) in points.iter().enumerate() {
        let _ = write!(d, "{}{:.1} {:.1}", if i == 0 { "M" } else { " L" }, x, y);
    }
    d
}

/// Escapes text for SVG and HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The percentile distribution of a latency histogram (nanoseconds):
/// `(quantile, microseconds)` points, denser towards the tail, as in
/// HdrHistogram's percentile output. Empty for an empty histogram.
pub fn percentile_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<(f64, f64)> = Vec::new();
    points.push((0.0, h.min() as f64 / 1000.0));
    for v in h.iter_quantiles(TICKS_PER_HALF) {
        let q = v.quantile_iterated_to();
        let us = h.highest_equivalent(v.value_iterated_to()).min(h.max()) as f64 / 1000.0;
        if points.last().is_some_and(|(lq, _)| q <= *lq) {
            // The same quantile again: keep the highest value.
            if let Some(last) = points.last_mut() {
                last.1 = last.1.max(us);
            }
            continue;
        }
        points.push((q, us));
    }
    points
}

/// The percentile chart of these runs: one line per run, and for an
/// open-loop run a dashed line of its uncorrected latency.
pub fn percentile_chart(runs: &[RunData]) -> Chart {
    let count = runs.iter().map(|r| r.latency.len()).max().unwrap_or(0);
    let nines = nines_for(count);
    let mut series = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let label = if run.uncorrected.is_some() {
            format!("{} (corrected, from due time)", run.label)
        } else {
            run.label.clone()
        };
        let to_axis = |points: Vec<(f64, f64)>| {
            points
                .into_iter()
                .map(|(q, us)| (percentile_x(q, nines), us))
                .collect()
        };
        series.push(Series {
            label,
            points: to_axis(percentile_points(&run.latency)),
            color: i,
            dashed: false,
        });
        if let Some(h) = &run.uncorrected {
            series.push(Series {
                label: format!("{} (uncorrected, from send)", run.label),
                points: to_axis(percentile_points(h)),
                color: i,
                dashed: true,
            });
        }
    }
    Chart {
        title: "Latency by percentile".to_owned(),
        x: XAxis::Percentile { nines },
        y: YAxis::Latency,
        x_end: None,
        series,
    }
}

/// The percentile plot of `runs` as a standalone SVG document (`--plot`).
pub fn percentile_svg(runs: &[RunData]) -> String {
    let mut svg = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    svg.push_str(&render(&percentile_chart(runs)));
    svg.push('\n');
    svg
}

/// Renders `chart` as an `<svg>` element (no XML declaration: it can be
/// inlined into HTML as it is).
pub fn render(chart: &Chart) -> String {
    let (left, right, top, bottom) = MARGIN;
    let (x0, x1, y0, y1) = (left, WIDTH - right, top, HEIGHT - bottom);

    let x_max_data = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(0.0f64, f64::max);
    let x_ticks: Vec<(f64, String)> = match chart.x {
        XAxis::Percentile { nines } => percentile_ticks(nines),
        XAxis::Seconds => {
            let ticks = nice_ticks(x_max_data.max(chart.x_end.unwrap_or(0.0)), 8);
            let step = ticks.get(1).copied().unwrap_or(1.0);
            ticks
                .iter()
                .map(|t| (*t, format!("{}s", fmt_tick(*t, step))))
                .collect()
        }
    };
    let x_max = x_ticks.last().map_or(1.0, |t| t.0).max(1e-9);

    let y_max_data = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max);
    let (scale, y_title) = match chart.y {
        YAxis::Latency => {
            let (unit, scale) = latency_unit(y_max_data);
            (scale, format!("latency ({unit})"))
        }
        YAxis::Count(label) => (1.0, label.to_owned()),
    };
    let y_ticks = nice_ticks(y_max_data / scale, 5);
    let y_step = y_ticks.get(1).copied().unwrap_or(1.0);
    let y_max = y_ticks.last().copied().unwrap_or(1.0).max(1e-9) * scale;

    let px = |x: f64| x0 + (x / x_max).clamp(0.0, 1.0) * (x1 - x0);
    let py = |y: f64| y1 - (y / y_max).clamp(0.0, 1.0) * (y1 - y0);

    let mut s = String::new();
    let title = escape(&chart.title);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{title}\" \
         font-family=\"sans-serif\" font-size=\"12\">\n<title>{title}</title>\n\
         <rect width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/>\n\
         <text class=\"title\" x=\"{:.1}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" \
         font-weight=\"bold\">{title}</text>\n",
        WIDTH / 2.0
    );
    // Grid and ticks.
    for (x, label) in &x_ticks {
        let p = px(*x);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{p:.1}\" y1=\"{y0:.1}\" x2=\"{p:.1}\" y2=\"{y1:.1}\" stroke=\"#ddd\"/>\n\
             <text class=\"tick x\" x=\"{p:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            y1 + 16.0,
            escape(label)
        );
    }
    for t in &y_ticks {
        let p = py(t * scale);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{x0:.1}\" y1=\"{p:.1}\" x2=\"{x1:.1}\" y2=\"{p:.1}\" stroke=\"#ddd\"/>\n\
             <text class=\"tick y\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            x0 - 6.0,
            p + 4.0,
            fmt_tick(*t, y_step)
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"none\" stroke=\"#888\"/>",
        x1 - x0,
        y1 - y0
    );
    let x_title = match chart.x {
        XAxis::Percentile { .. } => "percentile",
        XAxis::Seconds => "time",
    };
    let _ = write!(
        s,
        "<text class=\"axis x\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{x_title}</text>\n\
         <text class=\"axis y\" transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        (x0 + x1) / 2.0,
        HEIGHT - 12.0,
        (y0 + y1) / 2.0,
        escape(&y_title)
    );
    // The lines.
    for series in &chart.series {
        let pixels: Vec<(f64, f64)> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|(x, y)| (px(*x), py(*y)))
            .collect();
        if pixels.is_empty() {
            continue;
        }
        let color = PALETTE[series.color % PALETTE.len()];
        let dash = if series.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let label = escape(&series.label);
        let _ = writeln!(
            s,
            "<path class=\"series\" data-label=\"{label}\" d=\"{}\" fill=\"none\" stroke=\"{color}\" \
             stroke-width=\"2\"{dash}><title>{label}</title></path>",
            path_d(&pixels)
        );
    }
    // The legend, top left of the plot (percentile curves rise to the right).
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[series.color % PALETTE.len()];
        let y = y0 + 16.0 + 16.0 * i as f64;
        let dash = if series.dashed {
            " stroke-dasharray=\"6 4\""
        } else {
            ""
        };
        let _ = write!(
            s,
            "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{color}\" stroke-width=\"2\"{dash}/>\n\
             <text class=\"legend\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            x0 + 10.0,
            y - 4.0,
            x0 + 34.0,
            y - 4.0,
            x0 + 40.0,
            y,
            escape(&series.label)
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::tests::sample;
    use crate::stats;

    #[test]
    fn the_percentile_axis_is_logarithmic_in_the_distance_to_100() {
        assert_eq!(percentile_x(0.0, 3), 0.0);
        assert!((percentile_x(0.9, 3) - 1.0).abs() < 1e-9);
        assert!((percentile_x(0.99, 3) - 2.0).abs() < 1e-9);
        assert!((percentile_x(0.999, 4) - 3.0).abs() < 1e-9);
        assert!((percentile_x(0.5, 3) - std::f64::consts::LOG10_2).abs() < 1e-9);
        // Past the last tick, and the 100th percentile, clamp.
        assert_eq!(percentile_x(0.99999, 3), 3.0);
        assert_eq!(percentile_x(1.0, 3), 3.0);
        assert_eq!(percentile_x(f64::NAN, 3), 3.0);
        assert_eq!(percentile_x(-1.0, 3), 0.0);
    }

    #[test]
    fn percentile_ticks_are_labelled_with_nines() {
        let labels: Vec<String> = percentile_ticks(5).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
        assert_eq!(percentile_ticks(2)[2], (2.0, "99%".to_owned()));
        assert_eq!(nines_for(0), 2);
        assert_eq!(nines_for(999), 2);
        assert_eq!(nines_for(1000), 3);
        assert_eq!(nines_for(123_456), 5);
        assert_eq!(nines_for(u64::MAX), 6);
    }

    #[test]
    fn nice_ticks_cover_the_maximum_with_round_steps() {
        assert_eq!(nice_ticks(7.3, 5), [0.0, 2.0, 4.0, 6.0, 8.0]);
        assert_eq!(nice_ticks(10.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(
            nice_ticks(0.42, 4),
            [0.0, 0.1, 0.2, 0.30000000000000004, 0.4, 0.5]
        );
        assert_eq!(nice_ticks(120_000.0, 5).len(), 7);
        // Nothing to show still draws an axis.
        assert_eq!(
            nice_ticks(0.0, 5),
            [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(nice_ticks(f64::NAN, 5).last(), Some(&1.0));
    }

    #[test]
    fn ticks_and_units_read_well() {
        assert_eq!(fmt_tick(0.0, 0.5), "0.0");
        assert_eq!(fmt_tick(2.5, 0.5), "2.5");
        assert_eq!(fmt_tick(0.05, 0.05), "0.05");
        assert_eq!(fmt_tick(40.0, 20.0), "40");
        assert_eq!(fmt_tick(40_000.0, 20_000.0), "40k");
        assert_eq!(fmt_tick(3_000_000.0, 1_000_000.0), "3M");
        assert_eq!(latency_unit(850.0), ("µs", 1.0));
        assert_eq!(latency_unit(85_000.0), ("ms", 1e3));
        assert_eq!(latency_unit(3e6), ("s", 1e6));
    }

    #[test]
    fn paths_and_escaping() {
        assert_eq!(path_d(&[]), "");
        assert_eq!(path_d(&[(1.0, 2.0), (3.25, 4.0)]), "M1.0 2.0 L3.2 4.0");
        assert_eq!(escape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&#39;");
    }

    #[test]
    fn percentile_points_rise_to_the_maximum() {
        assert!(percentile_points(&stats::histogram()).is_empty());
        let mut h = stats::histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).expect("record");
        }
        let points = percentile_points(&h);
        assert!(points.len() > 20, "{}", points.len());
        assert_eq!(points[0], (0.0, 1.0));
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        let (q, us) = points[points.len() - 1];
        assert_eq!(q, 1.0);
        assert!((us - 1000.0).abs() < 1.0, "{us}");
        // The median is where it should be.
        let median = points.iter().find(|p| p.0 >= 0.5).expect("median");
        assert!((median.1 - 500.0).abs() < 5.0, "{median:?}");
    }

    #[test]
    fn a_chart_has_one_path_per_series_and_labelled_axes() {
        let a = sample(3, &[1, 2, 3]);
        let mut b = sample(2, &[10, 20]);
        b.label = "after <fix>".to_owned();
        let mut h = stats::histogram();
        h.record(5_000_000).expect("record");
        b.uncorrected = Some(h);
        let chart = percentile_chart(&[a, b]);
        assert_eq!(chart.series.len(), 3);
        assert!(chart.series[2].dashed);
        assert_eq!(chart.series[1].color, chart.series[2].color);
        let svg = render(&chart);
        assert_eq!(svg.matches("<path class=\"series\"").count(), 3, "{svg}");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.ends_with("</svg>"));
        for label in [
            "0%",
            "90%",
            "99%",
            "latency (ms)",
            "percentile",
            "after &lt;fix&gt;",
        ] {
            assert!(svg.contains(&format!(">{label}")), "{label}: {svg}");
        }
        assert!(svg.contains("stroke-dasharray"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        // The largest value (20 ms) sits at the top of the 0..20 ms axis.
        assert!(svg.contains(">20</text>"), "{svg}");
        let doc = percentile_svg(&[sample(1, &[1])]);
        assert!(doc.starts_with("<?xml"));
    }

    #[test]
    fn a_time_chart_labels_seconds() {
        let chart = Chart {
            title: "Requests per second".to_owned(),
            x: XAxis::Seconds,
            y: YAxis::Count("requests/s"),
            x_end: None,
            series: vec![Series {
                label: "run".to_owned(),
                points: vec![(0.5, 40_000.0), (1.5, 42_000.0), (2.25, f64::NAN)],
                color: 0,
                dashed: false,
            }],
        };
        let svg = render(&chart);
        // 2.25 s in steps of 0.2 s.
        for label in [">0.0s<", ">2.4s<", ">40k<", ">requests/s<", ">time<"] {
            assert!(svg.contains(label), "{label}: {svg}");
        }
        assert!(!svg.contains("NaN"));
        // An empty chart still renders its axes.
        let empty = Chart {
            series: vec![],
            ..chart
        };
        let svg = render(&empty);
        assert!(svg.contains(">0.0s<") && !svg.contains("class=\"series\""));
        // The axis spans the run, not just its points.
        let long = render(&Chart {
            x_end: Some(10.0),
            ..empty
        });
        assert!(long.contains(">10s<") && !long.contains(">12s<"), "{long}");
    }
}
