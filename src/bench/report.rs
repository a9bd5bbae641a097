//! The result of a run: the [`Report`] (JSON schema `netcrab.bench/v1`,
//! documented in `docs/bench-json.md`), its table for people, and the exact
//! merge of several runs' reports and histograms.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};
use crate::stats::{self, ErrorClass, ErrorCounts, LatencySummary};

/// The `schema` field of every report.
pub const SCHEMA: &str = "netcrab.bench/v1";

/// Everything a run measured. Field meanings are documented in
/// `docs/bench-json.md`; changes that remove or rename a field bump the
/// schema version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Always [`SCHEMA`].
    pub schema: String,
    /// The address benchmarked (for the embedded server, its bound address).
    pub target: String,
    /// The target's transport: `tcp`, `tls`, `unix`, ...
    pub transport: String,
    /// Whether the target was the embedded echo server (`bench` without an
    /// address).
    pub embedded_server: bool,
    /// The workload.
    pub workload: Workload,
    /// Measured wall-clock time, seconds (warm-up excluded).
    pub elapsed_s: f64,
    /// Request counts.
    pub requests: Requests,
    /// Pacing: target and achieved rates.
    pub rate: Rate,
    /// Bytes moved by measured requests.
    pub throughput: Throughput,
    /// Latency of the requests answered correctly (open loop: from the time
    /// each was due).
    pub latency: LatencySummary,
    /// Open loop only: the same requests' latency from when each was sent,
    /// uncorrected for coordinated omission (`null` in closed loop).
    #[serde(default)]
    pub latency_uncorrected: Option<LatencySummary>,
    /// Time to establish a connection.
    pub connect: LatencySummary,
    /// Connections opened (successful attempts, warm-up included).
    pub connections_opened: u64,
    /// Failed measured requests by kind; every kind is present.
    pub errors: BTreeMap<String, u64>,
    /// The load generator's own CPU time.
    pub generator: Cpu,
    /// The server's CPU time, when known (embedded server or `--server-pid`).
    pub server: Option<Cpu>,
    /// Things the reader should know (the generator could not keep up, ...).
    pub warnings: Vec<String>,
    /// The run second by second (the last interval may be shorter).
    #[serde(default)]
    pub intervals: Vec<Interval>,
    /// The machine the generator ran on (`null` for a merge of runs from
    /// different machines).
    #[serde(default)]
    pub machine: Option<Machine>,
    /// For `bench merge`: how many runs were merged (absent for one run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_runs: Option<usize>,
}

/// One interval (a second) of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Start, seconds after measuring started.
    pub start_s: f64,
    /// Length, seconds.
    pub length_s: f64,
    /// Requests answered correctly in it.
    pub ok: u64,
    /// `ok / length_s`.
    pub rps: f64,
    /// Failed requests by kind; only the kinds that occurred.
    pub errors: BTreeMap<String, u64>,
    /// Latency of the requests answered in it.
    pub latency: LatencySummary,
}

impl Interval {
    /// The interval starting `start_s` after measuring started, lasting
    /// `length_s`, with these counts and latency histogram (nanoseconds).
    pub fn new(
        start_s: f64,
        length_s: f64,
        ok: u64,
        errors: &ErrorCounts,
        latency: &Histogram<u64>,
    ) -> Interval {
        Interval {
            start_s,
            length_s,
            ok,
            rps: if length_s > 0.0 {
                ok as f64 / length_s
            } else {
                0.0
            },
            errors: errors
                .to_map()
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
            latency: LatencySummary::of(latency),
        }
    }

    /// Failed requests in the interval.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// The machine a run was made on, for the report's summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// Host name.
    pub hostname: String,
    /// Operating system and kernel release (`linux 6.1.0-18-amd64`).
    pub os: String,
    /// CPU model name, when known.
    pub cpu_model: Option<String>,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// Physical memory, bytes, when known.
    pub memory_bytes: Option<u64>,
    /// netcrab's version.
    pub netcrab: String,
}

impl Machine {
    /// This machine, read from `/proc` (fields left empty where unknown).
    pub fn current() -> Machine {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let release = read("/proc/sys/kernel/osrelease");
        Machine {
            hostname: read("/proc/sys/kernel/hostname"),
            os: format!("{} {release}", std::env::consts::OS)
                .trim()
                .to_owned(),
            cpu_model: cpu_model(&read("/proc/cpuinfo")),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_bytes: mem_total(&read("/proc/meminfo")),
            netcrab: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// The first `model name` of `/proc/cpuinfo`.
fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The workload of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Workload {
    /// Connections open at once.
    pub connections: usize,
    /// Bytes per request.
    pub request_bytes: usize,
    /// Bytes per expected reply.
    pub reply_bytes: usize,
    /// `echo`, `text` or `none`: what each reply was checked against.
    pub expect: String,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// `closed` or `open`.
    pub pacing: String,
    /// One exchange per connection.
    pub churn: bool,
    /// Warm-up, seconds.
    pub warmup_s: f64,
    /// `--duration`, seconds, when the run was bound by time.
    pub duration_s: Option<f64>,
    /// `--requests`, when the run was bound by a count.
    pub requests: Option<u64>,
    /// `--connect-rate`, connections per second.
    pub connect_rate: Option<f64>,
}

/// Request counts.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Requests {
    /// Answered correctly.
    pub ok: u64,
    /// Failed (see `errors`).
    pub errors: u64,
    /// `ok + errors`.
    pub total: u64,
}

/// Target and achieved rates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Rate {
    /// `--rate`, requests per second (open loop only).
    pub target_rps: Option<f64>,
    /// Answered requests per second.
    pub achieved_rps: f64,
    /// Open loop: requests sent more than 1 ms after they were due.
    pub late_sends: u64,
    /// Open loop: the longest delay between a request's due time and its send, ms.
    pub max_send_lag_ms: f64,
}

/// Bytes moved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Throughput {
    /// Request bytes written.
    pub bytes_sent: u64,
    /// Reply bytes read (for answered requests).
    pub bytes_received: u64,
    /// `bytes_sent / elapsed_s`.
    pub sent_bytes_per_s: f64,
    /// `bytes_received / elapsed_s`.
    pub received_bytes_per_s: f64,
}

/// CPU time of one side.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cpu {
    /// User + system CPU seconds over the measured interval.
    pub cpu_s: f64,
    /// CPU microseconds per answered request.
    pub cpu_us_per_request: Option<f64>,
}

impl Cpu {
    /// CPU seconds spread over `requests`.
    pub fn new(cpu_s: f64, requests: u64) -> Cpu {
        Cpu {
            cpu_s,
            cpu_us_per_request: (requests > 0).then(|| cpu_s * 1e6 / requests as f64),
        }
    }
}

impl Report {
    /// The error a run with no successful request ends with, so that
    /// scripts see the failure in the exit code; `None` when at least one
    /// request was answered correctly. Its kind is the most common error
    /// class's (refused: 4, timeout: 5, reset: 6, wrong reply or closed by
    /// peer: 10, local port exhaustion or resource: 9, other: 1); 1 when
    /// no request completed at all.
    pub fn no_success(&self) -> Option<Error> {
        if self.requests.ok > 0 {
            return None;
        }
        let counts = self.error_counts();
        // The first class of the most common count, in report order.
        let top = ErrorClass::ALL
            .iter()
            .copied()
            .filter(|c| counts.get(*c) > 0)
            .fold(None, |best: Option<ErrorClass>, c| match best {
                Some(b) if counts.get(b) >= counts.get(c) => Some(b),
                _ => Some(c),
            });
        let Some(class) = top else {
            return Some(Error::new(ErrorKind::Io, "bench").with_detail("no request completed"));
        };
        let kind = match class {
            ErrorClass::Refused => ErrorKind::Refused,
            ErrorClass::Reset => ErrorKind::Reset,
            ErrorClass::Timeout => ErrorKind::Timeout,
            ErrorClass::Closed | ErrorClass::WrongReply => ErrorKind::Protocol,
            ErrorClass::PortExhaustion | ErrorClass::LocalResource => ErrorKind::Local,
            ErrorClass::Other => ErrorKind::Io,
        };
        Some(Error::new(kind, "bench").with_detail(format!(
            "no request succeeded: {} of {} failed, most with {}",
            self.requests.errors,
            self.requests.total,
            class.label()
        )))
    }

    /// The error counts as [`ErrorCounts`].
    pub fn error_counts(&self) -> ErrorCounts {
        ErrorCounts::from_map(&self.errors)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// The report as a table for people.
    pub fn to_table(&self) -> String {
        let w = &self.workload;
        let mut out = String::new();
        let what = if self.embedded_server {
            format!("embedded echo server {}", self.target)
        } else {
            self.target.clone()
        };
        let pacing = match (self.rate.target_rps, w.churn) {
            (Some(r), _) => format!("open loop at {r} req/s"),
            (None, true) => "closed loop, new connection per request".to_owned(),
            (None, false) => "closed loop".to_owned(),
        };
        let runs = match self.merged_runs {
            Some(n) => format!(" (merged from {n} runs)"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "netcrab bench {what}{runs}\n  {} connection(s), {} B requests, {} B replies, pipeline {}, {pacing}, {:.2}s measured",
            w.connections, w.request_bytes, w.reply_bytes, w.pipeline, self.elapsed_s
        );
        let r = &self.requests;
        let _ = writeln!(
            out,
            "  {:<11}{} ok, {} errors, {:.1} req/s{}",
            "requests",
            r.ok,
            r.errors,
            self.rate.achieved_rps,
            match self.rate.target_rps {
                Some(t) => format!(" (target {t})"),
                None => String::new(),
            }
        );
        let t = &self.throughput;
        let _ = writeln!(
            out,
            "  {:<11}{} sent, {} received",
            "throughput",
            fmt_rate(t.sent_bytes_per_s),
            fmt_rate(t.received_bytes_per_s)
        );
        let l = &self.latency;
        let _ = writeln!(
            out,
            "  {:<11}p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {}, stdev {})",
            "latency",
            fmt_us(l.p50_us),
            fmt_us(l.p90_us),
            fmt_us(l.p99_us),
            fmt_us(l.p999_us),
            fmt_us(l.max_us),
            fmt_us(l.mean_us),
            fmt_us(l.stdev_us)
        );
        if let Some(u) = &self.latency_uncorrected {
            let _ = writeln!(
                out,
                "  {:<11}p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (from send, uncorrected)",
                "",
                fmt_us(u.p50_us),
                fmt_us(u.p90_us),
                fmt_us(u.p99_us),
                fmt_us(u.p999_us),
                fmt_us(u.max_us),
            );
        }
        let c = &self.connect;
        let _ = writeln!(
            out,
            "  {:<11}p50 {}  p99 {}  max {}  ({} connection(s) opened)",
            "connect",
            fmt_us(c.p50_us),
            fmt_us(c.p99_us),
            fmt_us(c.max_us),
            self.connections_opened
        );
        let mut cpu = format!("generator {}", fmt_cpu(&self.generator));
        if let Some(server) = &self.server {
            let _ = write!(cpu, "; server {}", fmt_cpu(server));
        }
        let _ = writeln!(out, "  {:<11}{cpu}", "cpu");
        let errors = self.error_counts();
        if errors.total() > 0 {
            let list: Vec<String> = ErrorClass::ALL
                .iter()
                .filter(|c| errors.get(**c) > 0)
                .map(|c| format!("{} {}", c.label(), errors.get(*c)))
                .collect();
            let _ = writeln!(out, "  {:<11}{}", "errors", list.join(", "));
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "  warning: {warning}");
        }
        out
    }
}

fn fmt_cpu(cpu: &Cpu) -> String {
    match cpu.cpu_us_per_request {
        Some(us) => format!("{:.2}s ({us:.2} µs/request)", cpu.cpu_s),
        None => format!("{:.2}s", cpu.cpu_s),
    }
}

/// Formats microseconds for people: `85.3µs`, `1.25ms`, `2.50s`.
pub fn fmt_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.1}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// Formats bytes per second: `812 B/s`, `1.5 MiB/s`.
pub fn fmt_rate(bps: f64) -> String {
    const UNITS: [&str; 4] = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
    let mut v = bps;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// One run with its histograms: as a run produced it, or as read back
/// from a histogram file.
#[derive(Debug, Clone)]
pub struct RunData {
    /// A name for the run in plots (the histogram file's stem, or the
    /// target).
    pub label: String,
    /// The run's report.
    pub report: Report,
    /// Its latency histogram (nanoseconds).
    pub latency: Histogram<u64>,
    /// Open loop: its uncorrected latency histogram (nanoseconds).
    pub uncorrected: Option<Histogram<u64>>,
    /// Its connect-time histogram (nanoseconds).
    pub connect: Histogram<u64>,
    /// The latency histogram of each of `report.intervals`, serialized
    /// (HdrHistogram V2, compressed or not): a long run holds thousands, a
    /// few hundred bytes each this way.
    pub intervals: Vec<Vec<u8>>,
}

/// Reads back one serialized histogram (V2 or V2 + deflate).
pub fn deserialize(bytes: &[u8]) -> Option<Histogram<u64>> {
    let mut h: Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut std::io::Cursor::new(bytes))
        .ok()?;
    h.auto(true);
    Some(h)
}

/// Serializes a histogram (HdrHistogram V2, uncompressed).
pub fn serialize(h: &Histogram<u64>) -> Vec<u8> {
    use hdrhistogram::serialization::Serializer as _;
    let mut out = Vec::new();
    // Writing into a Vec cannot fail; an empty result reads back as None.
    let _ = hdrhistogram::serialization::V2Serializer::new().serialize(h, &mut out);
    out
}

/// Merges runs made at the same time (from several machines, say) into one
/// report: histograms are summed and percentiles recomputed from the sum;
/// counts, bytes, CPU and rates add up; elapsed time is the longest run's.
pub fn merge(runs: &[RunData]) -> Option<Report> {
    merge_runs(runs).map(|run| run.report)
}

/// [`merge`], keeping the merged histograms (labelled `merged`).
pub fn merge_runs(runs: &[RunData]) -> Option<RunData> {
    let first = runs.first()?;
    let mut latency = stats::histogram();
    let mut uncorrected = Some(stats::histogram());
    let mut connect = stats::histogram();
    let mut errors = ErrorCounts::default();
    let mut report = first.report.clone();
    report.workload.connections = 0;
    report.elapsed_s = 0.0;
    report.requests = Requests::default();
    report.rate.achieved_rps = 0.0;
    report.rate.late_sends = 0;
    report.rate.max_send_lag_ms = 0.0;
    report.rate.target_rps = None;
    report.throughput = Throughput::default();
    report.connections_opened = 0;
    report.warnings.clear();
    let mut generator_cpu = 0.0;
    let mut server_cpu: Option<f64> = Some(0.0);
    let mut targets: Vec<String> = Vec::new();
    for run in runs {
        let r = &run.report;
        stats::merge_into(&mut latency, &run.latency);
        stats::merge_into(&mut connect, &run.connect);
        uncorrected = match (uncorrected, &run.uncorrected) {
            (Some(mut sum), Some(h)) => {
                stats::merge_into(&mut sum, h);
                Some(sum)
            }
            _ => None,
        };
        errors.merge(&r.error_counts());
        report.workload.connections += r.workload.connections;
        report.elapsed_s = report.elapsed_s.max(r.elapsed_s);
        report.requests.ok += r.requests.ok;
        report.requests.errors += r.requests.errors;
        report.rate.achieved_rps += r.rate.achieved_rps;
        report.rate.late_sends += r.rate.late_sends;
        report.rate.max_send_lag_ms = report.rate.max_send_lag_ms.max(r.rate.max_send_lag_ms);
        if let Some(t) = r.rate.target_rps {
            report.rate.target_rps = Some(report.rate.target_rps.unwrap_or(0.0) + t);
        }
        report.throughput.bytes_sent += r.throughput.bytes_sent;
        report.throughput.bytes_received += r.throughput.bytes_received;
        report.throughput.sent_bytes_per_s += r.throughput.sent_bytes_per_s;
        report.throughput.received_bytes_per_s += r.throughput.received_bytes_per_s;
        report.connections_opened += r.connections_opened;
        generator_cpu += r.generator.cpu_s;
        server_cpu = match (&r.server, server_cpu) {
            (Some(s), Some(sum)) => Some(sum + s.cpu_s),
            _ => None,
        };
        if !targets.contains(&r.target) {
            targets.push(r.target.clone());
        }
        for w in &r.warnings {
            report.warnings.push(format!("run {}: {w}", targets.len()));
        }
    }
    report.target = targets.join(", ");
    report.requests.total = report.requests.ok + report.requests.errors;
    report.latency = LatencySummary::of(&latency);
    report.latency_uncorrected = uncorrected.as_ref().map(LatencySummary::of);
    report.connect = LatencySummary::of(&connect);
    report.errors = errors.to_map();
    let (intervals, interval_histograms) = merge_intervals(runs);
    report.intervals = intervals;
    if runs
        .iter()
        .any(|r| r.report.machine != first.report.machine)
    {
        report.machine = None;
    }
    report.generator = Cpu::new(generator_cpu, report.requests.ok);
    // Several embedded servers' CPU is not one server's: keep it only when
    // every run knew its server's.
    report.server = server_cpu.map(|s| Cpu::new(s, report.requests.ok));
    report.merged_runs = Some(runs.len());
    Some(RunData {
        label: "merged".to_owned(),
        report,
        latency,
        uncorrected,
        connect,
        intervals: interval_histograms,
    })
}

/// The intervals of runs made at the same time, added up second by second:
/// interval `i` of the merge holds interval `i` of every run that has one,
/// its percentiles recomputed from the sum of their histograms.
fn merge_intervals(runs: &[RunData]) -> (Vec<Interval>, Vec<Vec<u8>>) {
    let n = runs
        .iter()
        .map(|r| r.report.intervals.len())
        .max()
        .unwrap_or(0);
    let mut merged = Vec::with_capacity(n);
    let mut histograms = Vec::with_capacity(n);
    for i in 0..n {
        let mut latency = stats::histogram();
        let mut errors = ErrorCounts::default();
        let (mut ok, mut start_s, mut length_s) = (0, f64::INFINITY, 0.0f64);
        for run in runs {
            let Some(interval) = run.report.intervals.get(i) else {
                continue;
            };
            ok += interval.ok;
            start_s = start_s.min(interval.start_s);
            length_s = length_s.max(interval.length_s);
            errors.merge(&ErrorCounts::from_map(&interval.errors));
            if let Some(h) = run.intervals.get(i).and_then(|b| deserialize(b)) {
                stats::merge_into(&mut latency, &h);
            }
        }
        merged.push(Interval::new(start_s, length_s, ok, &errors, &latency));
        histograms.push(serialize(&latency));
    }
    (merged, histograms)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A run of `ok` answered requests (and one timeout) with these
    /// latencies, as one interval; for the tests of what renders reports.
    pub(crate) fn sample(ok: u64, values_ms: &[u64]) -> RunData {
        let mut latency = stats::histogram();
        for v in values_ms {
            latency.record(v * 1_000_000).expect("record");
        }
        let mut errors = ErrorCounts::default();
        errors.add(ErrorClass::Timeout, 1);
        RunData {
            label: "sample".to_owned(),
            report: Report {
                schema: SCHEMA.to_owned(),
                target: "127.0.0.1:1".to_owned(),
                transport: "tcp".to_owned(),
                embedded_server: false,
                workload: Workload {
                    connections: 2,
                    request_bytes: 64,
                    reply_bytes: 64,
                    expect: "echo".to_owned(),
                    pipeline: 1,
                    pacing: "closed".to_owned(),
                    churn: false,
                    warmup_s: 0.0,
                    duration_s: Some(1.0),
                    requests: None,
                    connect_rate: None,
                },
                elapsed_s: 1.0,
                requests: Requests {
                    ok,
                    errors: 1,
                    total: ok + 1,
                },
                rate: Rate {
                    achieved_rps: ok as f64,
                    ..Rate::default()
                },
                throughput: Throughput::default(),
                latency: LatencySummary::of(&latency),
                latency_uncorrected: None,
                connect: LatencySummary::default(),
                connections_opened: 2,
                errors: errors.to_map(),
                generator: Cpu::new(0.5, ok),
                server: None,
                warnings: vec![],
                intervals: vec![Interval::new(0.0, 1.0, ok, &errors, &latency)],
                machine: Some(Machine::current()),
                merged_runs: None,
            },
            intervals: vec![serialize(&latency)],
            latency,
            uncorrected: None,
            connect: stats::histogram(),
        }
    }

    #[test]
    fn merged_intervals_add_up_second_by_second() {
        let a = sample(3, &[1, 2, 3]);
        let mut b = sample(2, &[100, 200]);
        // b ran two seconds: its second interval is empty.
        b.report.intervals.push(Interval::new(
            1.0,
            0.5,
            0,
            &ErrorCounts::default(),
            &stats::histogram(),
        ));
        b.intervals.push(serialize(&stats::histogram()));
        let m = merge(&[a, b]).expect("two runs");
        assert_eq!(m.intervals.len(), 2);
        let first = &m.intervals[0];
        assert_eq!(first.ok, 5);
        assert_eq!(first.errors["timeout"], 2);
        assert_eq!(first.latency.count, 5);
        assert!((first.latency.p50_us - 3000.0).abs() < 5.0, "{first:?}");
        assert_eq!(first.rps, 5.0);
        assert_eq!(m.intervals[1].ok, 0);
        assert_eq!(m.intervals[1].length_s, 0.5);
        assert!(m.intervals[1].errors.is_empty());
        assert!(m.machine.is_some(), "the same machine twice");
    }

    #[test]
    fn an_interval_counts_only_the_errors_that_occurred() {
        let mut errors = ErrorCounts::default();
        errors.add(ErrorClass::Reset, 4);
        let i = Interval::new(2.0, 0.5, 10, &errors, &stats::histogram());
        assert_eq!(i.rps, 20.0);
        assert_eq!(i.errors.len(), 1);
        assert_eq!(i.error_total(), 4);
        assert_eq!(
            Interval::new(0.0, 0.0, 3, &errors, &stats::histogram()).rps,
            0.0
        );
    }

    #[test]
    fn reads_the_machine_from_proc_text() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Example CPU @ 2.0GHz\nflags\t: x\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("Example CPU @ 2.0GHz"));
        assert_eq!(cpu_model("processor: 0\n"), None);
        assert_eq!(
            mem_total("MemTotal:       2048 kB\nMemFree: 1 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(mem_total(""), None);
        let m = Machine::current();
        assert!(m.cpus >= 1);
        assert!(!m.netcrab.is_empty());
    }

    #[test]
    fn merge_sums_counts_and_recomputes_percentiles() {
        let a = sample(3, &[1, 2, 3]);
        let b = sample(2, &[100, 200]);
        let m = merge(&[a, b]).expect("two runs");
        assert_eq!(m.requests.ok, 5);
        assert_eq!(m.requests.errors, 2);
        assert_eq!(m.requests.total, 7);
        assert_eq!(m.errors["timeout"], 2);
        assert_eq!(m.workload.connections, 4);
        assert_eq!(m.rate.achieved_rps, 5.0);
        assert_eq!(m.latency.count, 5);
        // The median of all five samples, not an average of medians.
        assert!((m.latency.p50_us - 3000.0).abs() < 5.0, "{:?}", m.latency);
        assert!((m.latency.max_us - 200_000.0).abs() < 200.0);
        assert_eq!(m.merged_runs, Some(2));
        assert!(merge(&[]).is_none());
    }

    #[test]
    fn json_has_the_documented_fields() {
        let report = sample(3, &[1, 2, 3]).report;
        let v: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
        assert_eq!(v["schema"], SCHEMA);
        for key in [
            "target",
            "transport",
            "embedded_server",
            "workload",
            "elapsed_s",
            "requests",
            "rate",
            "throughput",
            "latency",
            "connect",
            "connections_opened",
            "errors",
            "generator",
            "server",
            "warnings",
            "latency_uncorrected",
            "intervals",
            "machine",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert!(v["latency_uncorrected"].is_null(), "closed loop");
        for key in ["start_s", "length_s", "ok", "rps", "errors", "latency"] {
            assert!(
                v["intervals"][0].get(key).is_some(),
                "missing intervals[].{key}"
            );
        }
        for key in [
            "hostname",
            "os",
            "cpu_model",
            "cpus",
            "memory_bytes",
            "netcrab",
        ] {
            assert!(v["machine"].get(key).is_some(), "missing machine.{key}");
        }
        for key in [
            "count", "min_us", "mean_us", "stdev_us", "p50_us", "p90_us", "p99_us", "p999_us",
            "max_us",
        ] {
            assert!(v["latency"].get(key).is_some(), "missing latency.{key}");
        }
        for class in ErrorClass::ALL {
            assert!(
                v["errors"].get(class.label()).is_some(),
                "{}",
                class.label()
            );
        }
        assert!(v["generator"]["cpu_us_per_request"].is_number());
        assert!(v.get("merged_runs").is_none());
        // And it reads back.
        let back: Report = serde_json::from_value(v).expect("deserialize");
        assert_eq!(back.requests.ok, 3);
    }

    #[test]
    fn formats_for_people() {
        assert_eq!(fmt_us(85.25), "85.2µs");
        assert_eq!(fmt_us(1250.0), "1.25ms");
        assert_eq!(fmt_us(2_500_000.0), "2.50s");
        assert_eq!(fmt_rate(1536.0), "1.5 KiB/s");
        let table = sample(3, &[1]).report.to_table();
        assert!(table.contains("3 ok, 1 errors"), "{table}");
        assert!(table.contains("timeout 1"), "{table}");
    }

    #[test]
    fn no_success_takes_the_most_common_error_kind() {
        assert!(sample(3, &[1]).report.no_success().is_none());
        let mut report = sample(0, &[]).report;
        let err = report.no_success().expect("nothing succeeded");
        assert_eq!(err.exit_code(), 5, "{err}");
        let mut errors = ErrorCounts::default();
        errors.add(ErrorClass::Timeout, 1);
        errors.add(ErrorClass::Refused, 3);
        report.errors = errors.to_map();
        report.requests = Requests {
            ok: 0,
            errors: 4,
            total: 4,
        };
        let err = report.no_success().expect("nothing succeeded");
        assert_eq!(err.exit_code(), 4, "{err}");
        assert!(
            err.to_string()
                .contains("no request succeeded: 4 of 4 failed, most with refused"),
            "{err}"
        );
        report.errors = ErrorCounts::default().to_map();
        report.requests = Requests::default();
        let err = report.no_success().expect("nothing completed");
        assert_eq!(err.exit_code(), 1, "{err}");
    }
}
