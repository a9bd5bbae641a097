//! `netcrab bench`: a load generator for request/response services.
//!
//! [`run`] opens [`Plan::connections`] connections to the target (or to an
//! embedded echo server it starts itself), runs one [`worker`] per
//! connection, and returns a [`Report`]: latency and connect-time
//! percentiles from HdrHistogram, throughput, errors by kind and the CPU the
//! generator (and, when known, the server) spent per request.
//!
//! | module | holds |
//! |---|---|
//! | [`plan`] | the workload: request, expected reply, stop condition, pacing |
//! | [`pacing`] | the open-loop schedule and the connection-rate gate |
//! | [`worker`] | the one worker loop, generic over the transport |
//! | [`report`] | the report, its table and JSON, and the merge of runs |
//! | [`histfile`] | the `--histogram-out` file (HdrHistogram interval log) |
//! | [`plot`] | SVG charts: the percentile distribution, values over time |
//! | [`html`] | the self-contained HTML report page (`--report`) |
//! | [`live`] | the live view on a terminal while a run lasts |
//!
//! Every transport [`transport::connect`] supports works: the worker only
//! sees an `AsyncRead + AsyncWrite` stream. (UDP, a datagram transport, is
//! not a stream and is not benchmarked yet.)
//!
//! # The embedded server and CPU fairness
//!
//! Without an address the echo server runs in this process, on its own
//! tokio runtime with its own threads (named [`EMBEDDED_THREAD`]): half the
//! CPUs, at least one. Keeping it off the generator's runtime means the two
//! do not steal each other's queued tasks, and lets its CPU time be read
//! per thread, so the report shows server and generator CPU separately even
//! in one process. The operating system still shares the cores between
//! them, as it would between two processes.

mod cpu;
pub mod histfile;
pub mod html;
pub mod live;
pub mod pacing;
pub mod plan;
pub mod plot;
pub mod report;
pub mod worker;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::serve::{self, Answer, Framing, ServeConfig};
use crate::server::ServerLimits;
use crate::stats::{self, ErrorClass, LatencySummary};
use crate::transport::{self, ConnectOptions, Listener, Stream};

pub use pacing::Pacing;
use pacing::later;
pub use plan::{Expect, Plan, Stop};
pub use report::{Interval, Report, RunData, SCHEMA};
pub use worker::{Connector, Run, Totals};

/// The name of the embedded echo server's threads.
pub const EMBEDDED_THREAD: &str = "netcrab-echo";

/// How long before the end of a duration-bound run CPU times are read.
const CPU_MARK_EARLY: Duration = Duration::from_millis(20);

/// How often progress is reported to the caller.
const TICK: Duration = Duration::from_millis(250);

/// The length of the intervals the report records ([`Report::intervals`]).
pub const INTERVAL: Duration = Duration::from_secs(1);

/// A duration-bound run's last interval absorbs a tick closer than this to
/// the end, rather than leaving a sliver of an interval after it.
const INTERVAL_SLACK: Duration = Duration::from_millis(100);

/// What to benchmark.
#[derive(Debug, Clone)]
pub enum Target {
    /// A server at this address.
    Endpoint(Endpoint),
    /// An echo server started in this process on `127.0.0.1:0`.
    Embedded,
}

/// Everything a run needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BenchConfig {
    /// The server.
    pub target: Target,
    /// The workload.
    pub plan: Plan,
    /// Connect timeout and socket options.
    pub connect: ConnectOptions,
    /// A server process whose CPU time to report (`--server-pid`).
    pub server_pid: Option<u32>,
}

impl BenchConfig {
    /// A run of `plan` against `target` with default connect options.
    pub fn new(target: Target, plan: Plan) -> BenchConfig {
        BenchConfig {
            target,
            plan,
            connect: ConnectOptions::default(),
            server_pid: None,
        }
    }
}

/// A progress snapshot, passed to the caller's callback a few times a
/// second.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Still warming up.
    pub warming_up: bool,
    /// Measured requests answered so far.
    pub ok: u64,
    /// Measured requests failed so far.
    pub errors: u64,
    /// The run's expected length, when bound by time (warm-up included).
    pub planned: Option<Duration>,
    /// The run's request count, when bound by a count.
    pub planned_requests: Option<u64>,
    /// The last complete interval (a second) of the measured run.
    pub last_interval: Option<Interval>,
}

/// What the full run produced: the report and the histograms behind it.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The report.
    pub report: Report,
    /// Latency and connect-time histograms (nanoseconds).
    pub totals: Totals,
    /// Wall-clock time measuring started (for the histogram log).
    pub started: SystemTime,
    /// The latency histogram of each of the report's intervals, serialized
    /// (see [`RunData::intervals`]).
    pub intervals: Vec<Vec<u8>>,
}

impl Outcome {
    /// The run with its histograms, named `label` in plots.
    pub fn run_data(&self, label: impl Into<String>) -> RunData {
        RunData {
            label: label.into(),
            report: self.report.clone(),
            latency: self.totals.latency.clone(),
            uncorrected: self.totals.uncorrected.clone(),
            connect: self.totals.connect.clone(),
            intervals: self.intervals.clone(),
        }
    }
}

/// The per-second intervals of a run as the driver closes them.
struct Intervals {
    /// Where measuring started: intervals' start times count from here.
    origin: Instant,
    /// The end of the last closed interval.
    closed_at: Instant,
    /// Swapped with the window's histogram when an interval closes.
    spare: hdrhistogram::Histogram<u64>,
    list: Vec<Interval>,
    histograms: Vec<Vec<u8>>,
}

impl Intervals {
    fn new(origin: Instant) -> Intervals {
        Intervals {
            origin,
            closed_at: origin,
            spare: stats::histogram(),
            list: Vec::new(),
            histograms: Vec::new(),
        }
    }

    /// Closes the interval ending at `at` with what the workers merged
    /// since the last one. With `skip_empty`, an empty interval (the sliver
    /// at the end of a run) is not recorded.
    fn close(&mut self, run: &Run, at: Instant, skip_empty: bool) -> Option<&Interval> {
        let (ok, errors) = {
            let mut totals = run.totals();
            std::mem::swap(&mut totals.window.latency, &mut self.spare);
            (
                std::mem::take(&mut totals.window.ok),
                std::mem::take(&mut totals.window.errors),
            )
        };
        let at = at.max(self.closed_at);
        let start = self.closed_at.saturating_duration_since(self.origin);
        let length = at.saturating_duration_since(self.closed_at);
        self.closed_at = at;
        if skip_empty && ok == 0 && errors.total() == 0 && self.spare.is_empty() {
            return None;
        }
        self.list.push(Interval::new(
            start.as_secs_f64(),
            length.as_secs_f64(),
            ok,
            &errors,
            &self.spare,
        ));
        self.histograms.push(report::serialize(&self.spare));
        self.spare.reset();
        self.list.last()
    }
}

/// Connects to an endpoint through a [`transport::Connector`], which loads
/// TLS trust and certificates once for every connection of the run.
#[derive(Debug)]
struct EndpointConnector(transport::Connector);

impl Connector for EndpointConnector {
    type Stream = Stream;
    fn connect(&self) -> impl Future<Output = Result<Stream>> + Send {
        self.0.connect()
    }
}

/// The embedded echo server: its address and how to stop it.
struct Embedded {
    endpoint: Endpoint,
    shutdown: CancellationToken,
    thread: std::thread::JoinHandle<()>,
}

impl Embedded {
    /// Starts the echo server on its own runtime and threads and waits
    /// until it listens.
    async fn start() -> Result<Embedded> {
        let threads = std::thread::available_parallelism()
            .map(|n| (n.get() / 2).max(1))
            .unwrap_or(1);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name(EMBEDDED_THREAD)
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the embedded server's runtime", e))?;
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(EMBEDDED_THREAD.to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let bound = async {
                        let listener = Listener::bind(&"127.0.0.1:0".parse()?).await?;
                        let addr = listener
                            .endpoint()
                            .map_err(|e| Error::io("read the bound address", e))?;
                        Ok::<_, Error>((listener, addr))
                    }
                    .await;
                    let listener = match bound {
                        Ok((listener, addr)) => {
                            let _ = tx.send(Ok(addr));
                            listener
                        }
                        Err(err) => {
                            let _ = tx.send(Err(err));
                            return;
                        }
                    };
                    let config = ServeConfig {
                        service: Answer::Echo,
                        framing: Framing::Reads,
                        line_timeout: None,
                        log_data: false,
                        limits: ServerLimits {
                            max_conns: 1 << 20,
                            drain_timeout: Duration::ZERO,
                            idle_timeout: None,
                            ..ServerLimits::default()
                        },
                        ..ServeConfig::default()
                    };
                    if let Err(err) = serve::run(listener, config, stop).await {
                        tracing::warn!("embedded server: {err}");
                    }
                });
            })
            .map_err(|e| Error::io("start the embedded server's thread", e))?;
        let addr = rx
            .await
            .map_err(|_| Error::usage("the embedded server did not start"))??;
        Ok(Embedded {
            endpoint: addr,
            shutdown,
            thread,
        })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// CPU time of both sides at one moment.
#[derive(Debug, Clone, Copy)]
struct CpuMark {
    process: Duration,
    embedded: Duration,
    server: Option<Duration>,
}

impl CpuMark {
    fn now(server_pid: Option<u32>) -> CpuMark {
        CpuMark {
            process: cpu::process_cpu(),
            embedded: cpu::threads_cpu(EMBEDDED_THREAD),
            server: server_pid.and_then(cpu::tree_cpu),
        }
    }
}

/// Runs the benchmark described by `config` until its stop condition or
/// `cancel`, calling `progress` a few times a second.
pub async fn run(
    config: BenchConfig,
    cancel: CancellationToken,
    mut progress: impl FnMut(&Progress),
) -> Result<Outcome> {
    config.plan.validate()?;
    let embedded = match config.target {
        Target::Embedded => Some(Embedded::start().await?),
        Target::Endpoint(_) => None,
    };
    let endpoint = match (&config.target, &embedded) {
        (_, Some(e)) => e.endpoint.clone(),
        (Target::Endpoint(e), None) => e.clone(),
        (Target::Embedded, None) => unreachable!("the embedded server was started"),
    };
    let result = drive(&config, endpoint, embedded.is_some(), cancel, &mut progress).await;
    if let Some(embedded) = embedded {
        embedded.stop().await;
    }
    result
}

async fn drive(
    config: &BenchConfig,
    endpoint: Endpoint,
    embedded: bool,
    cancel: CancellationToken,
    progress: &mut impl FnMut(&Progress),
) -> Result<Outcome> {
    // One connection first: a target that is not there is an error with an
    // exit code, not a report full of refusals.
    let first = transport::Connector::new(&endpoint, &config.connect)?;
    drop(first.connect().await?);

    let plan = config.plan.clone();
    let connector = Arc::new(EndpointConnector(first));
    let start = Instant::now();
    let run = Arc::new(Run::new(plan, start, cancel).precise_timer());
    let mut tasks = tokio::task::JoinSet::new();
    for conn in 0..run.plan.connections {
        tasks.spawn(worker::worker(run.clone(), connector.clone(), conn));
    }

    let server_pid = if embedded { None } else { config.server_pid };
    let mut mark =
        (run.measure_from <= start).then(|| (CpuMark::now(server_pid), SystemTime::now()));
    let mut ticker = tokio::time::interval(TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let warmup = tokio::time::sleep_until(run.measure_from);
    tokio::pin!(warmup);
    // A duration-bound run reads CPU times just before its end, while every
    // connection is still open: a server that forks per connection and
    // does not wait for its children (their times are then lost) is still
    // measured whole. The reading is scaled to the measured interval.
    let mut end_mark: Option<(CpuMark, Instant)> = None;
    let closing = tokio::time::sleep_until(
        run.end
            .map_or(start, |end| end.checked_sub(CPU_MARK_EARLY).unwrap_or(end))
            .max(run.measure_from),
    );
    tokio::pin!(closing);
    let planned = match run.plan.stop {
        Stop::Duration(d) => Some(run.plan.warmup.saturating_add(d)),
        Stop::Requests(_) => None,
    };
    let planned_requests = match run.plan.stop {
        Stop::Requests(n) => Some(n),
        Stop::Duration(_) => None,
    };
    let mut intervals = Intervals::new(run.measure_from);
    let mut last_interval: Option<Interval> = None;
    let mut second = tokio::time::interval_at(later(run.measure_from, INTERVAL), INTERVAL);
    second.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            joined = tasks.join_next() => match joined {
                Some(Err(err)) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Some(_) => {}
                None => break,
            },
            _ = &mut warmup, if mark.is_none() => {
                mark = Some((CpuMark::now(server_pid), SystemTime::now()));
            }
            _ = &mut closing, if end_mark.is_none() && run.end.is_some() => {
                end_mark = Some((CpuMark::now(server_pid), Instant::now()));
            }
            _ = second.tick() => {
                let now = Instant::now();
                if run.end.is_none_or(|end| now + INTERVAL_SLACK < end) {
                    last_interval = intervals.close(&run, now, false).cloned();
                }
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                let (ok, errors) = {
                    let totals = run.totals();
                    (totals.ok, totals.errors.total())
                };
                progress(&Progress {
                    elapsed: now - start,
                    warming_up: now < run.measure_from,
                    ok,
                    errors,
                    planned,
                    planned_requests,
                    last_interval: last_interval.clone(),
                });
            }
        }
    }
    let finished = Instant::now();
    let (end_mark, marked_at) = end_mark.unwrap_or_else(|| (CpuMark::now(server_pid), finished));
    let (begin_mark, started) = mark.unwrap_or((end_mark, SystemTime::now()));
    // Held-open connections (`--hold`) idle at the end: not measured time.
    let measured_until = run
        .end
        .map_or(finished, |end| end.min(finished))
        .checked_sub(run.plan.hold)
        .unwrap_or(finished)
        .max(run.measure_from);
    let elapsed = measured_until.saturating_duration_since(run.measure_from);
    intervals.close(&run, measured_until, true);
    let cpu_interval = marked_at.saturating_duration_since(run.measure_from);
    let cpu_scale = if cpu_interval.is_zero() || marked_at >= measured_until {
        1.0
    } else {
        elapsed.as_secs_f64() / cpu_interval.as_secs_f64()
    };
    let totals = run.totals().clone();
    let mut report = build_report(
        &run,
        &endpoint,
        embedded,
        &totals,
        elapsed,
        (begin_mark, end_mark, cpu_scale),
    );
    report.intervals = intervals.list;
    Ok(Outcome {
        report,
        totals,
        started,
        intervals: intervals.histograms,
    })
}

fn build_report(
    run: &Run,
    endpoint: &Endpoint,
    embedded: bool,
    totals: &Totals,
    elapsed: Duration,
    (begin, end, scale): (CpuMark, CpuMark, f64),
) -> Report {
    let plan = &run.plan;
    let secs = elapsed.as_secs_f64();
    let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let scaled = |d: Duration| d.mul_f64(scale);
    let embedded_cpu = scaled(end.embedded.saturating_sub(begin.embedded));
    let generator_cpu =
        scaled(end.process.saturating_sub(begin.process)).saturating_sub(embedded_cpu);
    let server_cpu = if embedded {
        Some(embedded_cpu)
    } else {
        match (begin.server, end.server) {
            (Some(b), Some(e)) => Some(scaled(e.saturating_sub(b))),
            _ => None,
        }
    };
    let ok = totals.ok;
    let errors = totals.errors.total();
    let generator = report::Cpu::new(generator_cpu.as_secs_f64(), ok);
    let server = server_cpu.map(|c| report::Cpu::new(c.as_secs_f64(), ok));
    let target_rps = match plan.pacing {
        Pacing::Open { rate } => Some(rate),
        Pacing::Closed => None,
    };
    let achieved = per_s(ok);

    let mut warnings = Vec::new();
    if let Some(target) = target_rps
        && achieved < 0.9 * target
    {
        warnings.push(format!(
            "achieved {achieved:.0} req/s of the {target} req/s target: {} request(s) were sent late \
             (by up to {}); either the server or the generator could not keep up \
             (generator cpu {:.0}% of the measured time)",
            totals.late_sends,
            crate::error::fmt_duration(totals.max_send_lag),
            100.0 * generator_cpu.as_secs_f64() / secs.max(1e-9)
        ));
    }
    let local: u64 = ErrorClass::ALL
        .iter()
        .filter(|c| c.is_local())
        .map(|c| totals.errors.get(*c))
        .sum();
    if local > 0 {
        warnings.push(format!(
            "{local} error(s) were the generator's own (local ports or file descriptors ran out), \
             not the server's: fewer connections, no {}, or a wider \
             net.ipv4.ip_local_port_range help",
            crate::settings::Setting::Churn
        ));
    }
    if let (Some(g), Some(s)) = (
        generator.cpu_us_per_request,
        server.as_ref().and_then(|s| s.cpu_us_per_request),
    ) && g > s
    {
        warnings.push(format!(
            "the generator spent more cpu per request ({g:.2} µs) than the server ({s:.2} µs)"
        ));
    }
    if ok == 0 {
        warnings.push("no request was answered correctly".to_owned());
    }

    let expected_reply = plan.expected_reply();
    Report {
        schema: SCHEMA.to_owned(),
        target: endpoint.to_string(),
        transport: endpoint.scheme().as_str().to_owned(),
        embedded_server: embedded,
        workload: report::Workload {
            connections: plan.connections,
            request_bytes: plan.request.len(),
            reply_bytes: expected_reply.len(),
            expect: match plan.expect {
                Expect::Echo => "echo",
                Expect::Bytes(_) => "text",
                Expect::Nothing => "none",
            }
            .to_owned(),
            pipeline: plan.pipeline,
            pacing: match plan.pacing {
                Pacing::Open { .. } => "open",
                Pacing::Closed => "closed",
            }
            .to_owned(),
            churn: plan.churn,
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s: match plan.stop {
                Stop::Duration(d) => Some(d.as_secs_f64()),
                Stop::Requests(_) => None,
            },
            requests: match plan.stop {
                Stop::Requests(n) => Some(n),
                Stop::Duration(_) => None,
            },
            connect_rate: plan.connect_rate,
        },
        elapsed_s: secs,
        requests: report::Requests {
            ok,
            errors,
            total: ok + errors,
        },
        rate: report::Rate {
            target_rps,
            achieved_rps: achieved,
            late_sends: totals.late_sends,
            max_send_lag_ms: totals.max_send_lag.as_secs_f64() * 1000.0,
        },
        throughput: report::Throughput {
            bytes_sent: totals.bytes_sent,
            bytes_received: totals.bytes_received,
            sent_bytes_per_s: per_s(totals.bytes_sent),
            received_bytes_per_s: per_s(totals.bytes_received),
        },
        latency: LatencySummary::of(&totals.latency),
        latency_uncorrected: totals.uncorrected.as_ref().map(LatencySummary::of),
        connect: LatencySummary::of(&totals.connect),
        connections_opened: totals.connections,
        errors: totals.errors.to_map(),
        generator,
        server,
        warnings,
        intervals: Vec::new(),
        machine: Some(report::Machine::current()),
        merged_runs: None,
    }
}

/// Reads histogram files written with `--histogram-out`.
pub fn read_files(paths: &[std::path::PathBuf]) -> Result<Vec<RunData>> {
    paths.iter().map(|p| histfile::read(p)).collect()
}

/// Reads histogram files written with `--histogram-out` and merges them.
pub fn merge_files(paths: &[std::path::PathBuf]) -> Result<Report> {
    report::merge(&read_files(paths)?)
        .ok_or_else(|| Error::usage("bench merge needs at least one file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn intervals_take_what_was_merged_since_the_last_one() {
        let start = Instant::now();
        let plan = Plan::echo(1, b"x".to_vec(), Stop::Requests(10));
        let run = Run::new(plan, start, CancellationToken::new());
        let mut intervals = Intervals::new(start);
        let merge = |ms: &[u64], failed: u64| {
            let mut totals = run.totals();
            for v in ms {
                let _ = totals.window.latency.record(v * 1_000_000);
            }
            totals.window.ok += ms.len() as u64;
            totals.window.errors.add(ErrorClass::Reset, failed);
        };
        merge(&[1, 2, 3, 4], 1);
        tokio::time::advance(INTERVAL).await;
        let first = intervals
            .close(&run, Instant::now(), false)
            .cloned()
            .expect("recorded");
        assert_eq!((first.start_s, first.length_s), (0.0, 1.0));
        assert_eq!((first.ok, first.rps), (4, 4.0));
        assert_eq!(first.errors["reset"], 1);
        assert_eq!(first.latency.count, 4);
        // The window starts again empty.
        assert!(run.totals().window.latency.is_empty());
        assert_eq!(run.totals().window.ok, 0);

        merge(&[10], 0);
        tokio::time::advance(Duration::from_millis(500)).await;
        let second = intervals
            .close(&run, Instant::now(), true)
            .cloned()
            .expect("not empty");
        assert_eq!((second.start_s, second.length_s), (1.0, 0.5));
        assert_eq!((second.ok, second.rps), (1, 2.0));
        assert!(second.errors.is_empty());
        assert_eq!(second.latency.count, 1);
        // An empty sliver at the end is left out; a tick never is.
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(intervals.close(&run, Instant::now(), true).is_none());
        assert!(intervals.close(&run, Instant::now(), false).is_some());
        assert_eq!(intervals.list.len(), 3);
        assert_eq!(intervals.histograms.len(), 3);
        let h = report::deserialize(&intervals.histograms[0]).expect("histogram");
        assert_eq!(h.len(), 4);
    }
}
