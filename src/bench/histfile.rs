//! The `--histogram-out` file: a standard HdrHistogram interval log (the
//! text format of Java's `HistogramLogWriter`, readable by
//! `HistogramLogProcessor` and the `hdrhistogram` crates of other
//! languages), in nanoseconds, each histogram V2-serialized,
//! deflate-compressed and base64-encoded:
//!
//! | tag | entries |
//! |---|---|
//! | `latency` | one per second of the run (the report's `intervals`, in order) |
//! | `uncorrected` | open loop only: one for the whole run, latency from each send |
//! | `connect` | one for the whole run |
//!
//! A reader adds up the entries of a tag for the whole run, as
//! `HistogramLogProcessor` does. A `#report {json}` comment line carries the
//! run's report, so `bench merge` can add up counts and rates as well as
//! histograms. (Files written before per-second intervals have one
//! `latency` entry: they read the same way.)

use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};

use super::report::{self, RunData};
use crate::error::{Error, ErrorKind, Result};

const REPORT_PREFIX: &str = "#report ";

/// Writes `run` (its report and histograms), measured from `started`, to
/// `path`.
pub fn write(path: &Path, run: &RunData, started: SystemTime) -> Result<()> {
    let context = format!("write {}", path.display());
    let text = encode(run, started).map_err(|e| {
        Error::new(ErrorKind::Io, &context).with_detail(format!("serialize histogram: {e}"))
    })?;
    std::fs::write(path, text).map_err(|e| Error::io(context, e))
}

fn encode(run: &RunData, started: SystemTime) -> std::result::Result<Vec<u8>, String> {
    let report = &run.report;
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let json = serde_json::to_string(report).map_err(|e| e.to_string())?;
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment(
            "netcrab bench histogram log: values in nanoseconds; tags latency (per second), \
             uncorrected (open loop), connect",
        )
        .with_start_time(started)
        .with_max_value_divisor(1e6)
        .begin_log_with(&mut out, &mut serializer)
        .map_err(|e| e.to_string())?;
    writer
        .write_comment(&format!("{}{json}", &REPORT_PREFIX[1..]))
        .map_err(|e| e.to_string())?;
    let start = started
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = |s: f64| Duration::try_from_secs_f64(s).unwrap_or_default();
    let length = secs(report.elapsed_s);
    let intervals: Vec<_> = report
        .intervals
        .iter()
        .zip(&run.intervals)
        .filter_map(|(i, bytes)| Some((i, report::deserialize(bytes)?)))
        .collect();
    if intervals.is_empty() || intervals.len() != report.intervals.len() {
        writer
            .write_histogram(&run.latency, start, length, Tag::new("latency"))
            .map_err(|e| format!("{e:?}"))?;
    } else {
        for (interval, h) in &intervals {
            writer
                .write_histogram(
                    h,
                    start + secs(interval.start_s),
                    secs(interval.length_s),
                    Tag::new("latency"),
                )
                .map_err(|e| format!("{e:?}"))?;
        }
    }
    if let Some(h) = &run.uncorrected {
        writer
            .write_histogram(h, start, length, Tag::new("uncorrected"))
            .map_err(|e| format!("{e:?}"))?;
    }
    writer
        .write_histogram(&run.connect, start, length, Tag::new("connect"))
        .map_err(|e| format!("{e:?}"))?;
    Ok(out)
}

/// Reads a file written by [`write()`].
pub fn read(path: &Path) -> Result<RunData> {
    let context = format!("read {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| Error::io(&context, e))?;
    let mut run = decode(&bytes)
        .map_err(|detail| Error::new(ErrorKind::Usage, context).with_detail(detail))?;
    if let Some(stem) = path.file_stem() {
        run.label = stem.to_string_lossy().into_owned();
    }
    Ok(run)
}

fn decode(bytes: &[u8]) -> std::result::Result<RunData, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not a netcrab histogram log (not text)")?;
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix(REPORT_PREFIX))
        .ok_or("not a netcrab histogram log (no #report line)")?;
    let report: report::Report =
        serde_json::from_str(json).map_err(|e| format!("bad #report line: {e}"))?;
    let mut latency: Option<Histogram<u64>> = None;
    let mut uncorrected = None;
    let mut connect = None;
    let mut intervals = Vec::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| format!("bad interval log: {e:?}"))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| format!("bad base64 histogram: {e}"))?;
        let h = report::deserialize(&raw).ok_or("bad histogram")?;
        match interval.tag().map(|t| t.as_str()) {
            Some("latency") => {
                match &mut latency {
                    Some(sum) => crate::stats::merge_into(sum, &h),
                    None => latency = Some(h),
                }
                intervals.push(raw);
            }
            Some("uncorrected") => uncorrected = Some(h),
            Some("connect") => connect = Some(h),
            _ => {}
        }
    }
    if intervals.len() != report.intervals.len() {
        // An older file: one latency entry for the whole run.
        intervals.clear();
    }
    Ok(RunData {
        label: report.target.clone(),
        report,
        latency: latency.ok_or("no latency histogram")?,
        uncorrected,
        connect: connect.ok_or("no connect histogram")?,
        intervals,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats;

    #[test]
    fn per_second_intervals_add_up_to_the_whole_run() {
        let mut run = crate::bench::report::tests::sample(5, &[1, 2, 3]);
        let (mut first, mut second) = (stats::histogram(), stats::histogram());
        first.record(1_000_000).expect("record");
        first.record(2_000_000).expect("record");
        second.record(3_000_000).expect("record");
        let errors = stats::ErrorCounts::default();
        run.report.intervals = vec![
            report::Interval::new(0.0, 1.0, 2, &errors, &first),
            report::Interval::new(1.0, 0.5, 1, &errors, &second),
        ];
        run.intervals = vec![report::serialize(&first), report::serialize(&second)];
        let mut uncorrected = stats::histogram();
        uncorrected.record(500_000).expect("record");
        run.uncorrected = Some(uncorrected.clone());
        let bytes = encode(&run, SystemTime::now()).expect("encode");
        let text = String::from_utf8(bytes.clone()).expect("text");
        assert_eq!(text.matches("Tag=latency,").count(), 2, "{text}");
        assert_eq!(text.matches("Tag=uncorrected,").count(), 1, "{text}");
        let back = decode(&bytes).expect("decode");
        assert_eq!(back.latency, run.latency, "the sum of the intervals");
        assert_eq!(back.uncorrected, Some(uncorrected));
        assert_eq!(back.intervals.len(), 2);
        assert_eq!(report::deserialize(&back.intervals[1]), Some(second));
        assert_eq!(back.report.intervals, run.report.intervals);
    }

    #[test]
    fn round_trips_histograms_and_report() {
        let mut latency = stats::histogram();
        let mut connect = stats::histogram();
        for v in [1_000u64, 50_000, 2_000_000_000] {
            latency.record(v).expect("record");
        }
        connect.record(30_000).expect("record");
        let report: report::Report = serde_json::from_value(serde_json::json!({
            "schema": "netcrab.bench/v1", "target": "t", "transport": "tcp",
            "embedded_server": false,
            "workload": {"connections": 1, "request_bytes": 1, "reply_bytes": 1, "expect": "echo",
                         "pipeline": 1, "pacing": "closed", "churn": false, "warmup_s": 0.0,
                         "duration_s": null, "requests": 3, "connect_rate": null},
            "elapsed_s": 1.5, "requests": {"ok": 3, "errors": 0, "total": 3},
            "rate": {"target_rps": null, "achieved_rps": 2.0, "late_sends": 0, "max_send_lag_ms": 0.0},
            "throughput": {"bytes_sent": 3, "bytes_received": 3, "sent_bytes_per_s": 2.0, "received_bytes_per_s": 2.0},
            "latency": stats::LatencySummary::of(&latency), "connect": stats::LatencySummary::of(&connect),
            "connections_opened": 1, "errors": {}, "generator": {"cpu_s": 0.1, "cpu_us_per_request": 1.0},
            "server": null, "warnings": []
        }))
        .expect("report");
        let run = RunData {
            label: "t".to_owned(),
            report,
            latency: latency.clone(),
            uncorrected: None,
            connect: connect.clone(),
            intervals: vec![],
        };
        let bytes = encode(&run, SystemTime::now()).expect("encode");
        let text = String::from_utf8(bytes.clone()).expect("text");
        assert!(text.contains("Tag=latency,"), "{text}");
        let back = decode(&bytes).expect("decode");
        assert_eq!(back.latency, latency);
        assert_eq!(back.connect, connect);
        assert_eq!(back.report.requests.ok, 3);
        assert!(decode(b"garbage").is_err());
    }
}
