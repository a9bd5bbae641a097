//! The `--report FILE.html` page: one self-contained HTML file (inline CSS
//! and SVG, no script, nothing fetched from the network) showing a run, a
//! comparison of runs, or a merge of shards: the percentile distribution,
//! requests per second, latency percentiles and errors by kind over time,
//! the workload and machine, and the table the terminal shows.
//!
//! A pure function of the runs it is given, like [`super::plot`].
//! The key figures carry `data-key` and `data-value` attributes (the JSON
//! report's field path and value), so a test or a script can read them
//! back from the page.

use std::fmt::Write as _;

use super::plot::{self, Chart, Series, XAxis, YAxis, escape};
use super::report::{Interval, Report, RunData, fmt_us};
use crate::stats::LatencySummary;

/// The page's stylesheet (inline: the file must work offline).
const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:860px;color:#222}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}\
td.num{text-align:right;font-variant-numeric:tabular-nums}pre{background:#f6f6f6;padding:8px;overflow-x:auto}\
.warning{color:#a60}svg{max-width:100%;height:auto}";

/// The report page for `runs`, headed by `main` (the run just made, or the
/// merge of the shards): every run is a line in the charts, `main`'s
/// figures and table come first.
pub fn page(main: &RunData, runs: &[RunData]) -> String {
    let r = &main.report;
    let mut s = String::new();
    let title = format!("netcrab bench: {}", r.target);
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    for warning in &r.warnings {
        let _ = writeln!(s, "<p class=\"warning\">warning: {}</p>", escape(warning));
    }

    s.push_str("<h2>Summary</h2>\n");
    s.push_str(&figures(r));

    s.push_str("<h2>Latency distribution</h2>\n");
    s.push_str(&plot::render(&plot::percentile_chart(runs)));
    s.push('\n');
    if runs.iter().any(|run| run.uncorrected.is_some()) {
        s.push_str(
            "<p>Open loop: solid lines count each request's latency from the time it was due \
             (corrected for coordinated omission); dashed lines from the time it was sent.</p>\n",
        );
    }

    s.push_str("<h2>Over time</h2>\n");
    s.push_str(&plot::render(&rate_chart(runs)));
    s.push('\n');
    s.push_str(&plot::render(&latency_chart(runs)));
    s.push('\n');
    match errors_chart(runs) {
        Some(chart) => s.push_str(&plot::render(&chart)),
        None => s.push_str("<p class=\"no-errors\">No request failed.</p>"),
    }
    s.push('\n');

    s.push_str("<h2>Workload and machine</h2>\n");
    s.push_str(&workload(r));

    s.push_str("<h2>Report</h2>\n");
    let _ = writeln!(s, "<pre class=\"table\">{}</pre>", escape(&r.to_table()));
    for run in runs.iter().filter(|run| !std::ptr::eq(*run, main)) {
        let _ = writeln!(
            s,
            "<details><summary>{}</summary>\n<pre class=\"table\">{}</pre></details>",
            escape(&run.label),
            escape(&run.report.to_table())
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// The key figures, each tagged with its JSON path and exact value.
fn figures(r: &Report) -> String {
    let mut s = String::from("<table class=\"figures\">\n");
    let mut row = |name: &str, key: &str, value: String, shown: String| {
        let _ = writeln!(
            s,
            "<tr><th>{}</th><td class=\"num\" data-key=\"{key}\" data-value=\"{value}\">{}</td></tr>",
            escape(name),
            escape(&shown)
        );
    };
    row(
        "requests answered",
        "requests.ok",
        r.requests.ok.to_string(),
        r.requests.ok.to_string(),
    );
    row(
        "requests failed",
        "requests.errors",
        r.requests.errors.to_string(),
        r.requests.errors.to_string(),
    );
    row(
        "requests per second",
        "rate.achieved_rps",
        json_number(r.rate.achieved_rps),
        format!("{:.1}", r.rate.achieved_rps),
    );
    let l = &r.latency;
    for (name, key, value) in percentiles(l) {
        row(
            &format!("latency {name}"),
            &format!("latency.{key}"),
            json_number(value),
            fmt_us(value),
        );
    }
    if let Some(u) = &r.latency_uncorrected {
        for (name, key, value) in percentiles(u) {
            row(
                &format!("uncorrected latency {name}"),
                &format!("latency_uncorrected.{key}"),
                json_number(value),
                fmt_us(value),
            );
        }
    }
    row(
        "measured seconds",
        "elapsed_s",
        json_number(r.elapsed_s),
        format!("{:.2}s", r.elapsed_s),
    );
    s.push_str("</table>\n");
    s
}

/// The percentiles the summary shows: name, JSON field, microseconds.
fn percentiles(l: &LatencySummary) -> [(&'static str, &'static str, f64); 5] {
    [
        ("p50", "p50_us", l.p50_us),
        ("p90", "p90_us", l.p90_us),
        ("p99", "p99_us", l.p99_us),
        ("p99.9", "p999_us", l.p999_us),
        ("max", "max_us", l.max_us),
    ]
}

/// A number as JSON writes it (so it compares equal to the JSON report's).
fn json_number(v: f64) -> String {
    serde_json::to_string(&v).unwrap_or_else(|_| "null".to_owned())
}

/// The workload and machine, as a definition table.
fn workload(r: &Report) -> String {
    let w = &r.workload;
    let mut rows: Vec<(&str, String)> = vec![
        ("target", r.target.clone()),
        ("transport", r.transport.clone()),
        ("connections", w.connections.to_string()),
        (
            "request / reply",
            format!("{} B / {} B ({})", w.request_bytes, w.reply_bytes, w.expect),
        ),
        ("pipeline", w.pipeline.to_string()),
        (
            "pacing",
            match r.rate.target_rps {
                Some(rate) => format!("open loop, {rate} req/s"),
                None => w.pacing.clone(),
            },
        ),
        ("churn", w.churn.to_string()),
        ("warm-up", format!("{}s", w.warmup_s)),
        (
            "stop",
            match (w.duration_s, w.requests) {
                (Some(d), _) => format!("after {d}s"),
                (_, Some(n)) => format!("after {n} requests"),
                _ => "-".to_owned(),
            },
        ),
    ];
    if let Some(n) = r.merged_runs {
        rows.push(("merged runs", n.to_string()));
    }
    match &r.machine {
        Some(m) => {
            rows.push(("host", m.hostname.clone()));
            rows.push(("os", m.os.clone()));
            rows.push(("cpu", m.cpu_model.clone().unwrap_or_else(|| "-".to_owned())));
            rows.push(("cpus", m.cpus.to_string()));
            if let Some(bytes) = m.memory_bytes {
                rows.push((
                    "memory",
                    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64),
                ));
            }
            rows.push(("netcrab", m.netcrab.clone()));
        }
        None => rows.push(("machine", "several (a merge of runs)".to_owned())),
    }
    let mut s = String::from("<table class=\"workload\">\n");
    for (k, v) in rows {
        let _ = writeln!(s, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(&v));
    }
    s.push_str("</table>\n");
    s
}

/// Where an interval is drawn on a time axis: its middle.
fn midpoint(i: &Interval) -> f64 {
    i.start_s + i.length_s / 2.0
}

/// Where the time axis ends: the end of the longest run's last interval.
fn run_end(runs: &[RunData]) -> Option<f64> {
    runs.iter()
        .filter_map(|r| r.report.intervals.last())
        .map(|i| i.start_s + i.length_s)
        .reduce(f64::max)
}

/// Requests per second, one line per run.
fn rate_chart(runs: &[RunData]) -> Chart {
    Chart {
        title: "Requests per second".to_owned(),
        x: XAxis::Seconds,
        y: YAxis::Count("requests/s"),
        x_end: run_end(runs),
        series: runs
            .iter()
            .enumerate()
            .map(|(i, run)| Series {
                label: run.label.clone(),
                points: run
                    .report
                    .intervals
                    .iter()
                    .map(|iv| (midpoint(iv), iv.rps))
                    .collect(),
                color: i,
                dashed: false,
            })
            .collect(),
    }
}

/// Picks one figure of an interval.
type Pick = fn(&Interval) -> f64;

/// Latency percentiles per second: p50, p90, p99 and max for one run;
/// p99 (solid) and p50 (dashed) per run for several.
fn latency_chart(runs: &[RunData]) -> Chart {
    let line = |run: &RunData, name: &str, f: Pick| {
        let points = run
            .report
            .intervals
            .iter()
            .filter(|iv| iv.latency.count > 0)
            .map(|iv| (midpoint(iv), f(iv)))
            .collect::<Vec<_>>();
        (format!("{} {name}", run.label), points)
    };
    let mut series = Vec::new();
    if let [run] = runs {
        let lines: [(&str, Pick); 4] = [
            ("p50", |i| i.latency.p50_us),
            ("p90", |i| i.latency.p90_us),
            ("p99", |i| i.latency.p99_us),
            ("max", |i| i.latency.max_us),
        ];
        for (color, (name, f)) in lines.into_iter().enumerate() {
            let (label, points) = line(run, name, f);
            series.push(Series {
                label,
                points,
                color,
                dashed: false,
            });
        }
    } else {
        for (color, run) in runs.iter().enumerate() {
            for (name, f, dashed) in [
                ("p99", (|i| i.latency.p99_us) as Pick, false),
                ("p50", |i| i.latency.p50_us, true),
            ] {
                let (label, points) = line(run, name, f);
                series.push(Series {
                    label,
                    points,
                    color,
                    dashed,
                });
            }
        }
    }
    Chart {
        title: "Latency percentiles per second".to_owned(),
        x: XAxis::Seconds,
        y: YAxis::Latency,
        x_end: run_end(runs),
        series,
    }
}

/// Failed requests per second by kind, one line per run and kind that
/// occurred; `None` when no request failed.
fn errors_chart(runs: &[RunData]) -> Option<Chart> {
    let mut series = Vec::new();
    for run in runs {
        let mut kinds: Vec<&String> = run
            .report
            .intervals
            .iter()
            .flat_map(|iv| iv.errors.keys())
            .collect();
        kinds.sort();
        kinds.dedup();
        for kind in kinds {
            let label = if runs.len() == 1 {
                kind.clone()
            } else {
                format!("{}: {kind}", run.label)
            };
            let color = series.len();
            series.push(Series {
                label,
                points: run
                    .report
                    .intervals
                    .iter()
                    .map(|iv| {
                        let n = iv.errors.get(kind).copied().unwrap_or(0) as f64;
                        let per_s = if iv.length_s > 0.0 {
                            n / iv.length_s
                        } else {
                            0.0
                        };
                        (midpoint(iv), per_s)
                    })
                    .collect(),
                color,
                dashed: false,
            });
        }
    }
    (!series.is_empty()).then(|| Chart {
        title: "Errors per second by kind".to_owned(),
        x: XAxis::Seconds,
        y: YAxis::Count("errors/s"),
        x_end: run_end(runs),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::tests::sample;

    #[test]
    fn the_page_is_self_contained_and_has_every_section() {
        let run = sample(3, &[1, 2, 3]);
        let html = page(&run, std::slice::from_ref(&run));
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(!html.contains("<script"), "no script at all");
        for fetch in ["src=", "href=", "@import", "url("] {
            assert!(!html.contains(fetch), "{fetch} fetches something");
        }
        for section in [
            "Latency distribution",
            "Requests per second",
            "Latency percentiles per second",
            "Errors per second by kind",
            "Workload and machine",
            "<pre class=\"table\">netcrab bench 127.0.0.1:1",
        ] {
            assert!(html.contains(section), "{section}");
        }
        assert_eq!(html.matches("<svg ").count(), 4);
        assert!(
            html.contains("data-key=\"requests.ok\" data-value=\"3\">3<"),
            "{html}"
        );
        let p50 = run.report.latency.p50_us;
        assert!(
            html.contains(&format!(
                "data-key=\"latency.p50_us\" data-value=\"{p50}\">2.00ms<"
            )),
            "{html}"
        );
        assert!(!html.contains("uncorrected"), "closed loop: one latency");
    }

    #[test]
    fn text_from_the_report_is_escaped() {
        let mut run = sample(1, &[1]);
        run.report.target = "<b>evil</b>".to_owned();
        run.report.warnings.push("a & b".to_owned());
        let html = page(&run, std::slice::from_ref(&run));
        assert!(!html.contains("<b>evil"));
        assert!(html.contains("&lt;b&gt;evil&lt;/b&gt;"));
        assert!(html.contains("warning: a &amp; b"));
    }

    #[test]
    fn several_runs_share_the_charts() {
        let mut a = sample(3, &[1, 2, 3]);
        a.label = "before".to_owned();
        a.report.intervals[0].errors.clear();
        let mut b = sample(2, &[10, 20]);
        b.label = "after".to_owned();
        let mut h = crate::stats::histogram();
        h.record(1_000_000).expect("record");
        b.uncorrected = Some(h);
        b.report.latency_uncorrected = Some(crate::stats::LatencySummary::of(
            b.uncorrected.as_ref().expect("set"),
        ));
        let html = page(&a, &[a.clone(), b]);
        assert!(html.contains("data-label=\"before\""));
        assert!(html.contains("data-label=\"after (uncorrected, from send)\""));
        assert!(html.contains("data-label=\"after p99\""));
        assert!(html.contains("data-label=\"after: timeout\""));
        assert!(!html.contains("data-label=\"before: timeout\""));
        assert!(html.contains("<details><summary>after</summary>"));
        assert!(html.contains("dashed lines from the time it was sent"));
        // No failure anywhere: a sentence instead of an empty chart.
        let mut quiet = sample(1, &[1]);
        quiet.report.intervals[0].errors.clear();
        let html = page(&quiet, std::slice::from_ref(&quiet));
        assert!(html.contains("No request failed."));
        assert_eq!(html.matches("<svg ").count(), 3);
    }
}
