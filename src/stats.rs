//! Measurements for the load generator and `bench merge`: latency
//! histograms (HdrHistogram, in nanoseconds), their percentile summaries
//! and errors counted by kind. Pure: the CPU-time probes (`getrusage`,
//! `/proc`) are bench's (`bench::cpu`).
//!
//! Histograms of separate runs merge exactly: adding one to another sums the
//! bucket counts, and percentiles are recomputed from the sum (never averaged).

use std::collections::BTreeMap;
use std::io;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// Significant decimal digits the histograms keep (0.1% value resolution).
pub const SIGFIG: u8 = 3;

/// The highest value a histogram is created for (60 s in nanoseconds); it
/// grows on demand past that (auto-resize), so no sample is ever dropped.
const INITIAL_HIGH_NS: u64 = 60_000_000_000;

/// A new, empty latency histogram in nanoseconds.
pub fn histogram() -> Histogram<u64> {
    let mut h = Histogram::new_with_bounds(1, INITIAL_HIGH_NS, SIGFIG)
        .expect("constant histogram bounds are valid");
    h.auto(true);
    h
}

/// Adds `from` into `into`: the exact merge of two runs.
pub fn merge_into(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // `into` auto-resizes, so adding cannot fail for a value out of range.
    if let Err(err) = into.add(from) {
        tracing::warn!("merge histograms: {err:?}");
    }
}

/// Percentiles and moments of a latency histogram, in microseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Samples recorded.
    pub count: u64,
    /// Smallest sample.
    pub min_us: f64,
    /// Mean.
    pub mean_us: f64,
    /// Standard deviation.
    pub stdev_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarises `h` (nanoseconds); all zero for an empty histogram.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            min_us: us(h.min()),
            mean_us: h.mean() / 1000.0,
            stdev_us: h.stdev() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }
}

/// Why a request (or the connection it needed) failed, as the report
/// counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The server refused the connection.
    Refused,
    /// The connection was reset (or the write side broken) by the peer.
    Reset,
    /// No connection or no complete reply within the timeout.
    Timeout,
    /// The peer closed the connection while a request was in flight.
    Closed,
    /// The reply's content differed from what `--expect` asked for.
    WrongReply,
    /// `EADDRNOTAVAIL` on connect: the generator ran out of local ports
    /// (usually connections in TIME_WAIT); the generator's problem, not the
    /// server's.
    PortExhaustion,
    /// Another local resource ran out (file descriptors, memory): also the
    /// generator's problem.
    LocalResource,
    /// Anything else.
    Other,
}

impl ErrorClass {
    /// Every class, in report order.
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Refused,
        ErrorClass::Reset,
        ErrorClass::Timeout,
        ErrorClass::Closed,
        ErrorClass::WrongReply,
        ErrorClass::PortExhaustion,
        ErrorClass::LocalResource,
        ErrorClass::Other,
    ];

    /// The label used in the table and as the JSON key.
    pub fn label(self) -> &'static str {
        match self {
            ErrorClass::Refused => "refused",
            ErrorClass::Reset => "reset",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Closed => "closed by peer",
            ErrorClass::WrongReply => "wrong reply",
            ErrorClass::PortExhaustion => "local port exhaustion",
            ErrorClass::LocalResource => "local resource",
            ErrorClass::Other => "other",
        }
    }

    /// Whether the error says more about the generator than the server.
    pub fn is_local(self) -> bool {
        matches!(self, ErrorClass::PortExhaustion | ErrorClass::LocalResource)
    }

    /// Classifies a netcrab error (from connecting, reading or writing).
    pub fn of(err: &Error) -> ErrorClass {
        let os = std::error::Error::source(err)
            .and_then(|s| s.downcast_ref::<io::Error>())
            .and_then(io::Error::raw_os_error);
        if os == Some(libc::EADDRNOTAVAIL) {
            return ErrorClass::PortExhaustion;
        }
        match err.kind() {
            ErrorKind::Refused => ErrorClass::Refused,
            ErrorKind::Reset => ErrorClass::Reset,
            ErrorKind::Timeout => ErrorClass::Timeout,
            ErrorKind::Local => ErrorClass::LocalResource,
            _ => ErrorClass::Other,
        }
    }

    /// Classifies an I/O error from a read or write.
    pub fn of_io(err: &io::Error) -> ErrorClass {
        if err.raw_os_error() == Some(libc::EADDRNOTAVAIL) {
            return ErrorClass::PortExhaustion;
        }
        match ErrorKind::of_io(err) {
            ErrorKind::Refused => ErrorClass::Refused,
            ErrorKind::Reset => ErrorClass::Reset,
            ErrorKind::Timeout => ErrorClass::Timeout,
            ErrorKind::Local => ErrorClass::LocalResource,
            _ if err.kind() == io::ErrorKind::UnexpectedEof => ErrorClass::Closed,
            _ => ErrorClass::Other,
        }
    }

    fn index(self) -> usize {
        ErrorClass::ALL
            .iter()
            .position(|c| *c == self)
            .unwrap_or(ErrorClass::ALL.len() - 1)
    }
}

/// Error counts by [`ErrorClass`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorCounts([u64; ErrorClass::ALL.len()]);

impl ErrorCounts {
    /// Counts `n` errors of `class`.
    pub fn add(&mut self, class: ErrorClass, n: u64) {
        self.0[class.index()] += n;
    }

    /// The count for `class`.
    pub fn get(&self, class: ErrorClass) -> u64 {
        self.0[class.index()]
    }

    /// All errors.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// The counts keyed by label, every class present (zeros included), so
    /// the JSON always has the same keys.
    pub fn to_map(&self) -> BTreeMap<String, u64> {
        ErrorClass::ALL
            .iter()
            .map(|c| (c.label().to_owned(), self.get(*c)))
            .collect()
    }

    /// The inverse of [`to_map`](Self::to_map); unknown labels count as
    /// `other`.
    pub fn from_map(map: &BTreeMap<String, u64>) -> ErrorCounts {
        let mut counts = ErrorCounts::default();
        for (label, n) in map {
            let class = ErrorClass::ALL
                .iter()
                .copied()
                .find(|c| c.label() == label)
                .unwrap_or(ErrorClass::Other);
            counts.add(class, *n);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_two_histograms_equals_recording_everything_into_one() {
        let mut rng = fastrand::Rng::with_seed(7);
        let (mut a, mut b, mut all) = (histogram(), histogram(), histogram());
        for i in 0..20_000u64 {
            // A wide spread: 1 µs .. ~100 s, so auto-resize is exercised.
            let v = 1000 + rng.u64(0..1_000_000) * (1 + i % 100_000);
            if i % 3 == 0 { &mut a } else { &mut b }
                .record(v)
                .expect("auto-resize records any value");
            all.record(v).expect("auto-resize records any value");
        }
        let mut merged = histogram();
        merge_into(&mut merged, &a);
        merge_into(&mut merged, &b);
        assert_eq!(merged.len(), all.len());
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                merged.value_at_quantile(q),
                all.value_at_quantile(q),
                "q={q}"
            );
        }
        assert_eq!(LatencySummary::of(&merged), LatencySummary::of(&all));
        // And not trivially: the parts differ from the whole.
        assert_ne!(a.len(), all.len());
    }

    #[test]
    fn summary_in_microseconds() {
        let mut h = histogram();
        for ms in 1..=100u64 {
            h.record(ms * 1_000_000).expect("record");
        }
        let s = LatencySummary::of(&h);
        assert_eq!(s.count, 100);
        assert!((s.p50_us - 50_000.0).abs() < 50.0, "{s:?}");
        assert!((s.max_us - 100_000.0).abs() < 100.0, "{s:?}");
        assert_eq!(LatencySummary::of(&histogram()), LatencySummary::default());
    }

    #[test]
    fn error_classes_round_trip_through_the_map() {
        let mut c = ErrorCounts::default();
        c.add(ErrorClass::WrongReply, 3);
        c.add(ErrorClass::PortExhaustion, 2);
        let map = c.to_map();
        assert_eq!(map.len(), ErrorClass::ALL.len());
        assert_eq!(map["wrong reply"], 3);
        assert_eq!(map["local port exhaustion"], 2);
        assert_eq!(ErrorCounts::from_map(&map), c);
        assert_eq!(c.total(), 5);
    }

    #[test]
    fn classifies_generator_side_errors() {
        let e = Error::io("connect", io::Error::from_raw_os_error(libc::EADDRNOTAVAIL));
        assert_eq!(ErrorClass::of(&e), ErrorClass::PortExhaustion);
        assert!(ErrorClass::of(&e).is_local());
        let e = Error::io("connect", io::Error::from_raw_os_error(libc::ECONNREFUSED));
        assert_eq!(ErrorClass::of(&e), ErrorClass::Refused);
        let e = io::Error::from_raw_os_error(libc::ECONNRESET);
        assert_eq!(ErrorClass::of_io(&e), ErrorClass::Reset);
    }
}
