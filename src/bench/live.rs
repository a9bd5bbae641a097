//! The live view while a run lasts: one line on stderr, redrawn a few times
//! a second, with the time, the last second's rate, p50 and p99, the
//! errors so far and a sparkline of the rate, second by second:
//!
//! ```text
//! 2.0s/5.0s  ▅▇█▇  41.2k req/s  p50 85.3µs  p99 1.25ms  0 errors
//! ```
//!
//! Shown only when stderr is a terminal ([`LiveView::stderr`]); on a pipe
//! or a file nothing is written, so logs and captured output stay clean.
//! [`frame`] is a pure function of the progress and the rate history.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};

use super::Progress;
use super::report::fmt_us;

/// Seconds of rate history the sparkline shows.
pub const SPARK_WIDTH: usize = 12;

/// The sparkline's bars, lowest to highest.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// Erases the terminal line and returns to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

/// A sparkline of `values`, one bar each, scaled to the largest (all
/// lowest bars when every value is zero).
pub fn sparkline(values: &[f64]) -> String {
    let max = values
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    values
        .iter()
        .map(|v| {
            if max <= 0.0 || !v.is_finite() {
                return BARS[0];
            }
            let level = (v / max * (BARS.len() - 1) as f64).round() as usize;
            BARS[level.min(BARS.len() - 1)]
        })
        .collect()
}

/// A count for people: `812`, `41.2k`, `1.25M`.
pub fn fmt_count(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// The rate history of a run, fed from successive progress snapshots.
#[derive(Debug, Default)]
pub struct History {
    rates: VecDeque<f64>,
    last_start: Option<f64>,
}

impl History {
    /// Adds the snapshot's last interval, unless it was seen already.
    pub fn update(&mut self, p: &Progress) {
        let Some(interval) = &p.last_interval else {
            return;
        };
        if self.last_start == Some(interval.start_s) {
            return;
        }
        self.last_start = Some(interval.start_s);
        self.rates.push_back(interval.rps);
        while self.rates.len() > SPARK_WIDTH {
            self.rates.pop_front();
        }
    }

    /// The rates of the last seconds, oldest first.
    pub fn rates(&self) -> Vec<f64> {
        self.rates.iter().copied().collect()
    }
}

/// One frame of the live view (no control characters).
pub fn frame(p: &Progress, history: &History) -> String {
    let mut line = String::new();
    if p.warming_up {
        line.push_str("warming up ");
    }
    line.push_str(&format!("{:.1}s", p.elapsed.as_secs_f64()));
    if let Some(total) = p.planned {
        line.push_str(&format!("/{:.1}s", total.as_secs_f64()));
    } else if let Some(n) = p.planned_requests {
        line.push_str(&format!(" {}/{} req", p.ok + p.errors, n));
    }
    match &p.last_interval {
        Some(interval) => {
            line.push_str(&format!(
                "  {}  {} req/s",
                sparkline(&history.rates()),
                fmt_count(interval.rps)
            ));
            if interval.latency.count > 0 {
                line.push_str(&format!(
                    "  p50 {}  p99 {}",
                    fmt_us(interval.latency.p50_us),
                    fmt_us(interval.latency.p99_us)
                ));
            }
        }
        None => line.push_str(&format!("  {} ok", fmt_count(p.ok as f64))),
    }
    line.push_str(&format!(
        "  {} error{}",
        fmt_count(p.errors as f64),
        if p.errors == 1 { "" } else { "s" }
    ));
    line
}

/// The live view on stderr, or nothing when stderr is not a terminal.
#[derive(Debug)]
pub struct LiveView {
    enabled: bool,
    history: History,
    drawn: bool,
}

impl LiveView {
    /// A live view on stderr if stderr is a terminal; otherwise one that
    /// draws nothing.
    pub fn stderr() -> LiveView {
        LiveView {
            enabled: std::io::stderr().is_terminal(),
            history: History::default(),
            drawn: false,
        }
    }

    /// Redraws the line for `p`.
    pub fn update(&mut self, p: &Progress) {
        if !self.enabled {
            return;
        }
        self.history.update(p);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{CLEAR_LINE}{}", frame(p, &self.history));
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erases the line, before the final report is printed.
    pub fn finish(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "{CLEAR_LINE}");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::Interval;
    use crate::stats::{self, ErrorCounts};
    use std::time::Duration;

    fn progress(elapsed_s: f64, interval: Option<(f64, u64)>) -> Progress {
        let mut h = stats::histogram();
        for us in [80u64, 90, 100, 2000] {
            h.record(us * 1000).expect("record");
        }
        Progress {
            elapsed: Duration::from_secs_f64(elapsed_s),
            warming_up: false,
            ok: 1234,
            errors: 1,
            planned: Some(Duration::from_secs(5)),
            planned_requests: None,
            last_interval: interval
                .map(|(start, ok)| Interval::new(start, 1.0, ok, &ErrorCounts::default(), &h)),
        }
    }

    #[test]
    fn sparklines_scale_to_the_largest_value() {
        assert_eq!(sparkline(&[]), "");
        assert_eq!(sparkline(&[0.0, 0.0]), "▁▁");
        assert_eq!(sparkline(&[1.0, 2.0, 4.0, 8.0]), "▂▃▅█");
        assert_eq!(sparkline(&[5.0, f64::NAN]), "█▁");
    }

    #[test]
    fn counts_read_well() {
        assert_eq!(fmt_count(812.0), "812");
        assert_eq!(fmt_count(41_234.0), "41.2k");
        assert_eq!(fmt_count(1_250_000.0), "1.25M");
    }

    #[test]
    fn a_frame_shows_rate_percentiles_errors_and_history() {
        let mut history = History::default();
        let first = progress(0.5, None);
        history.update(&first);
        assert_eq!(frame(&first, &history), "0.5s/5.0s  1234 ok  1 error");
        for (t, ok) in [(0.0, 20_000), (1.0, 40_000), (1.0, 40_000), (2.0, 41_234)] {
            history.update(&progress(t + 1.2, Some((t, ok))));
        }
        // The repeated interval counted once.
        assert_eq!(history.rates(), [20_000.0, 40_000.0, 41_234.0]);
        let line = frame(&progress(3.2, Some((2.0, 41_234))), &history);
        assert_eq!(
            line,
            "3.2s/5.0s  ▄███  41.2k req/s  p50 90.0µs  p99 2.00ms  1 error"
                .replace("▄███", &sparkline(&[20_000.0, 40_000.0, 41_234.0]))
        );
        assert!(line.chars().count() < 80, "{line}");
        for i in 0..30 {
            history.update(&progress(f64::from(i), Some((f64::from(i) + 10.0, 1))));
        }
        assert_eq!(history.rates().len(), SPARK_WIDTH);
    }

    #[test]
    fn warm_up_and_request_counts_are_shown() {
        let mut p = progress(0.2, None);
        p.warming_up = true;
        p.planned = None;
        p.planned_requests = Some(5000);
        p.errors = 0;
        assert_eq!(
            frame(&p, &History::default()),
            "warming up 0.2s 1234/5000 req  1234 ok  0 errors"
        );
    }
}
