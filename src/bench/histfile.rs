//! The `--histogram-out` file: a standard HdrHistogram interval log (the
//! text format of Java's `HistogramLogWriter`, readable by
//! `HistogramLogProcessor` and the `hdrhistogram` crates of other
//! languages) with two histograms, tagged `latency` and `connect`, in
//! nanoseconds, each V2-serialized, deflate-compressed and base64-encoded.
//! A `#report {json}` comment line carries the run's report, so
//! `bench merge` can add up counts and rates as well as histograms.

use std::io::Cursor;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

use super::report::{Report, RunData};
use crate::error::{Error, ErrorKind, Result};

const REPORT_PREFIX: &str = "#report ";

/// Writes `report` and its histograms to `path`.
pub fn write(
    path: &Path,
    report: &Report,
    latency: &Histogram<u64>,
    connect: &Histogram<u64>,
    started: SystemTime,
) -> Result<()> {
    let context = format!("write {}", path.display());
    let text = encode(report, latency, connect, started).map_err(|e| {
        Error::new(ErrorKind::Io, &context).with_detail(format!("serialize histogram: {e}"))
    })?;
    std::fs::write(path, text).map_err(|e| Error::io(context, e))
}

fn encode(
    report: &Report,
    latency: &Histogram<u64>,
    connect: &Histogram<u64>,
    started: SystemTime,
) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut serializer = V2DeflateSerializer::new();
    let json = serde_json::to_string(report).map_err(|e| e.to_string())?;
    let mut writer = IntervalLogWriterBuilder::new()
        .add_comment("netcrab bench histogram log: values in nanoseconds; tags latency, connect")
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
    let length = Duration::try_from_secs_f64(report.elapsed_s).unwrap_or_default();
    for (tag, h) in [("latency", latency), ("connect", connect)] {
        writer
            .write_histogram(h, start, length, Tag::new(tag))
            .map_err(|e| format!("{e:?}"))?;
    }
    Ok(out)
}

/// Reads a file written by [`write()`].
pub fn read(path: &Path) -> Result<RunData> {
    let context = format!("read {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| Error::io(&context, e))?;
    decode(&bytes).map_err(|detail| Error::new(ErrorKind::Usage, context).with_detail(detail))
}

fn decode(bytes: &[u8]) -> std::result::Result<RunData, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not a netcrab histogram log (not text)")?;
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix(REPORT_PREFIX))
        .ok_or("not a netcrab histogram log (no #report line)")?;
    let report: Report =
        serde_json::from_str(json).map_err(|e| format!("bad #report line: {e}"))?;
    let mut latency = None;
    let mut connect = None;
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| format!("bad interval log: {e:?}"))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| format!("bad base64 histogram: {e}"))?;
        let mut h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut Cursor::new(raw))
            .map_err(|e| format!("bad histogram: {e:?}"))?;
        h.auto(true);
        match interval.tag().map(|t| t.as_str()) {
            Some("latency") => latency = Some(h),
            Some("connect") => connect = Some(h),
            _ => {}
        }
    }
    Ok(RunData {
        report,
        latency: latency.ok_or("no latency histogram")?,
        connect: connect.ok_or("no connect histogram")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats;

    #[test]
    fn round_trips_histograms_and_report() {
        let mut latency = stats::histogram();
        let mut connect = stats::histogram();
        for v in [1_000u64, 50_000, 2_000_000_000] {
            latency.record(v).expect("record");
        }
        connect.record(30_000).expect("record");
        let report: Report = serde_json::from_value(serde_json::json!({
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
        let bytes = encode(&report, &latency, &connect, SystemTime::now()).expect("encode");
        let text = String::from_utf8(bytes.clone()).expect("text");
        assert!(text.contains("Tag=latency,"), "{text}");
        let back = decode(&bytes).expect("decode");
        assert_eq!(back.latency, latency);
        assert_eq!(back.connect, connect);
        assert_eq!(back.report.requests.ok, 3);
        assert!(decode(b"garbage").is_err());
    }
}
