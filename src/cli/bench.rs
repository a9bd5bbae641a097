//! `netcrab bench` and `netcrab bench merge`: flags, their resolution into a
//! [`BenchConfig`], the live view on a terminal, and the output (table or
//! JSON, the histogram log, the HTML report and the SVG plot).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use netcrab::bench::live::LiveView;
use netcrab::bench::{self, BenchConfig, Expect, Pacing, Plan, RunData, Stop, Target};
use netcrab::endpoint::{Endpoint, Scheme};
use netcrab::error::{Error, Result};
use netcrab::transport::Source;

use super::common::{
    FamilyArgs, MAX_CONNS, ProxyArgs, count, duration, parse_source_ip, size, write_stdout,
};
use super::tls::TlsConnectArgs;
use super::ws::WsArgs;

/// `--help` examples.
pub const EXAMPLES: &str = "\
Examples:
  netcrab bench                                  # benchmark an embedded echo server: what netcrab does, in one command
  netcrab bench 127.0.0.1:9000 -c 50 --size 512  # 50 connections echoing 512-byte messages for 5s
  netcrab bench 127.0.0.1:9000 --rate 20000 -d 30s --warmup 5s   # open loop: 20k req/s on a fixed schedule
  netcrab bench 127.0.0.1:8080 --payload ping --expect 'hello, world' -n 1000   # check every reply
  netcrab bench 127.0.0.1:9000 --churn -c 8     # a new connection per request: measures set-up
  netcrab bench 127.0.0.1:9001 --expect none -c 1 --size 128KiB   # bulk send to a --discard server
  netcrab bench 127.0.0.1:9000 --json --histogram-out run1.hlog
  netcrab bench merge run1.hlog run2.hlog        # combine runs from several machines exactly
  netcrab bench 127.0.0.1:9000 --report run.html # a self-contained page: plots over time, percentiles, table
  netcrab bench 127.0.0.1:9001 --histogram-out after.hlog --compare before.hlog --plot cmp.svg
  netcrab bench merge a.hlog b.hlog --report merged.html   # one line per shard, and the merge
  netcrab bench -4 localhost:9000 --source 127.0.0.2        # IPv4 only, every connection from 127.0.0.2
  netcrab bench 10.0.0.5:9000 -c 10 --rate 2000 --shard 1/2 --start-at 2026-01-01T12:00:00Z --histogram-out s1.hlog
                                                 # machine 1 of 2: 5 connections at 1000 req/s; then bench merge s*.hlog

Replies are read by length: a request expects as many bytes back as it sent (echo) or as --expect TEXT
has. Open-loop latency (--rate) counts from when each request was due, so server stalls show in the
percentiles; requests go out on time to within tens of microseconds (a timerfd per connection, not
tokio's 1 ms timer). The JSON schema (netcrab.bench/v1) is documented in docs/bench-json.md. On a terminal,
a live line on stderr shows the last second's rate, p50 and p99 while the run lasts.

When no request succeeds, the report is still printed and bench exits non-zero with the code of the
most common error: 4 refused, 5 timeout, 6 reset, 10 wrong reply or closed by peer, 9 local port
exhaustion or resource, 1 otherwise (or when no request completed at all).

Across machines: run the same command on N machines with --shard 1/N .. N/N and one --start-at; each
takes its share of -c, -n, --rate and --connect-rate (an uneven split gives the remainder to the
lowest shards: -c 5 --shard 1/2 runs 3 connections, 2/2 runs 2; the rates follow the connections).
Then `bench merge` the --histogram-out files. docs/bench-shards.md has a Kubernetes Indexed Job.";

/// Load-test a request/response server (an embedded echo server without ADDR)
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES, args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,
    /// Server to benchmark: HOST:PORT (or any endpoint scheme netcrab supports); none: an embedded echo server
    pub addr: Option<String>,
    /// Connections kept open at once (1 to 1000000)
    #[arg(short = 'c', long, value_name = "N", value_parser = count(1, MAX_CONNS), default_value = "50")]
    pub connections: usize,
    /// Request size in bytes, a fixed printable pattern (4k, 1MiB: powers of 1024; 1 to 1GiB)
    #[arg(short = 's', long, value_name = "BYTES", default_value = "64", value_parser = size(1))]
    pub size: usize,
    /// Request content: TEXT, or @FILE for a file's bytes (replaces --size)
    #[arg(long, value_name = "TEXT|@FILE", conflicts_with = "size")]
    pub payload: Option<String>,
    /// What each reply must be: `echo` (the request itself), TEXT, @FILE, or `none` (send only: bulk to a discard server)
    #[arg(long, value_name = "echo|none|TEXT|@FILE", default_value = "echo")]
    pub expect: String,
    /// Measure for this long
    #[arg(short = 'd', long, value_name = "DURATION", value_parser = duration(), default_value = "5s")]
    pub duration: Duration,
    /// Measure this many requests instead of a duration
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration")]
    pub requests: Option<u64>,
    /// Run this long before measuring (not counted)
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "0")]
    pub warmup: Duration,
    /// Requests in flight per connection (1 to 65536)
    #[arg(long, value_name = "K", value_parser = count(1, MAX_PIPELINE), default_value = "1")]
    pub pipeline: usize,
    /// Open loop: R requests per second in total, on a fixed schedule (default: closed loop)
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Open at most R connections per second
    #[arg(long, value_name = "R")]
    pub connect_rate: Option<f64>,
    /// Connect, make one exchange, close, repeat (measures connection set-up)
    #[arg(long)]
    pub churn: bool,
    /// A request without its complete reply after this long fails as a timeout
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub timeout: Duration,
    /// Give up on a connection attempt after this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub connect_timeout: Duration,
    /// Keep each connection open, idle, this long after its last reply (to measure a server's idle-connection memory)
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "0")]
    pub hold: Duration,
    /// Print the report as JSON (schema netcrab.bench/v1) instead of a table
    #[arg(long)]
    pub json: bool,
    /// Save the latency histograms (an HdrHistogram interval log, one per second) for `bench merge` and --compare
    #[arg(long, value_name = "FILE")]
    pub histogram_out: Option<PathBuf>,
    /// Write a self-contained HTML report (percentile plot, rate, latency and errors over time)
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Write the latency percentile plot as an SVG file
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Also draw these saved runs (--histogram-out files) in the --report and --plot charts; takes every file after it, so give ADDR first
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub compare: Vec<PathBuf>,
    /// Run shard I of N (1-based): this process's share of -c, -n, --rate and --connect-rate, for load from several machines (see below)
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Wait until TIME to start (RFC 3339 in UTC, e.g. 2026-01-01T12:00:00Z, or unix seconds), so shards on several machines start together
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,
    /// Also report the CPU time of this server process and its descendants (for servers that fork)
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    #[command(flatten)]
    pub family: FamilyArgs,
    /// Connect from this local IP address (-s is --size here; no source port: one cannot serve many connections)
    #[arg(long = "source", value_name = "ADDR", value_parser = parse_source_ip)]
    pub source: Option<IpAddr>,
    #[command(flatten)]
    pub proxy: ProxyArgs,
    #[command(flatten)]
    pub tls: TlsConnectArgs,
    #[command(flatten)]
    pub ws: WsArgs,
}

/// `bench` subcommands.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Merge histogram logs of runs made at the same time (e.g. from several machines) into one report
    Merge(MergeArgs),
}

/// `netcrab bench merge FILES...`
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Files written by `bench --histogram-out`
    #[arg(required = true, value_name = "FILES")]
    pub files: Vec<PathBuf>,
    /// Print the merged report as JSON
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report: one line per file and one for the merge
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Write the latency percentile plot (each file and the merge) as an SVG file
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
}

/// The most requests in flight per connection (`--pipeline`).
const MAX_PIPELINE: u64 = 65_536;

/// `TEXT` or the bytes of `@FILE`.
fn text_or_file(value: &str, what: &str) -> Result<Vec<u8>> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|e| Error::io(format!("read {what} {path}"), e)),
        None => Ok(value.as_bytes().to_vec()),
    }
}

/// A request of `size` bytes: a printable pattern, so captures stay readable.
fn pattern(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..size).map(|i| ALPHABET[i % ALPHABET.len()]).collect()
}

impl BenchArgs {
    /// Resolves the flags into the library config.
    pub fn resolve(&self) -> Result<BenchConfig> {
        let target = match &self.addr {
            Some(addr) if self.tls.tls => {
                Target::Endpoint(Endpoint::parse_with_default(addr, Scheme::Tls)?)
            }
            Some(addr) => Target::Endpoint(addr.parse::<Endpoint>()?),
            None => Target::Embedded,
        };
        let tls = match &target {
            Target::Endpoint(endpoint) => self.tls.resolve(endpoint)?,
            Target::Embedded => Default::default(),
        };
        let ws = match &target {
            Target::Endpoint(endpoint) => {
                self.ws.resolve(&[endpoint], self.tls.handshake_timeout)?
            }
            Target::Embedded => self.ws.resolve(&[], None)?,
        };
        let family = match &target {
            Target::Endpoint(endpoint) => self.family.check(endpoint)?,
            Target::Embedded if self.family.ipv6 => {
                return Err(Error::usage(
                    "-6 needs an ADDR: the embedded server listens on 127.0.0.1",
                ));
            }
            Target::Embedded => self.family.family(),
        };
        let request = match &self.payload {
            Some(p) => text_or_file(p, "payload")?,
            None => pattern(self.size),
        };
        let expect = match self.expect.as_str() {
            "echo" => Expect::Echo,
            "none" => Expect::Nothing,
            other => Expect::Bytes(text_or_file(other, "expected reply")?),
        };
        let shard = self.shard.unwrap_or(Shard::WHOLE);
        let connections = shard.part(self.connections as u64) as usize;
        if connections == 0 {
            return Err(Error::usage(format!(
                "--shard {shard}: more shards than connections (-c {})",
                self.connections
            )));
        }
        // Rates follow the connections: every connection paces alike.
        let share = |rate: f64| rate * connections as f64 / self.connections as f64;
        let stop = match self.requests {
            Some(n) => Stop::Requests(shard.part(n)),
            None => Stop::Duration(self.duration),
        };
        let mut plan = Plan::echo(connections, request, stop);
        plan.expect = expect;
        plan.warmup = self.warmup;
        plan.pipeline = self.pipeline;
        plan.pacing = match self.rate {
            Some(rate) => Pacing::Open { rate: share(rate) },
            None => Pacing::Closed,
        };
        plan.connect_rate = self.connect_rate.map(share);
        plan.churn = self.churn;
        plan.request_timeout = self.timeout;
        plan.hold = self.hold;
        plan.validate()?;
        if self.timeout.is_zero() {
            return Err(Error::usage("--timeout must be longer than zero"));
        }
        let mut config = BenchConfig::new(target, plan);
        // TCP_NODELAY on, keepalive off: the defaults.
        config.connect.connect_timeout = self.connect_timeout;
        config.connect.tls = tls;
        config.connect.family = family;
        config.connect.ws = ws;
        config.connect.source = Source {
            ip: self.source,
            port: None,
        };
        config.connect.proxy = self.proxy.resolve()?;
        config.server_pid = self.server_pid;
        Ok(config)
    }

    /// Runs the benchmark (or `bench merge`) and prints the report.
    pub async fn run(&self) -> Result<()> {
        if let Some(BenchCommand::Merge(merge)) = &self.command {
            let mut runs = bench::read_files(&merge.files)?;
            let merged = bench::report::merge_runs(&runs)
                .ok_or_else(|| Error::usage("bench merge needs at least one file"))?;
            runs.push(merged.clone());
            write_pictures(
                &merged,
                &runs,
                merge.report.as_deref(),
                merge.plot.as_deref(),
            )?;
            print(&merged.report, merge.json)?;
            return Ok(());
        }
        let config = self.resolve()?;
        // A socket per connection, the embedded server's end of each, and
        // in open loop each connection's send timer (a timerfd).
        let per_conn = if matches!(config.target, Target::Embedded) {
            2
        } else {
            1
        } + u64::from(self.rate.is_some());
        super::fdlimit::check("--connections", self.connections, per_conn);
        if !self.compare.is_empty() && self.report.is_none() && self.plot.is_none() {
            return Err(Error::usage(
                "--compare draws into --report or --plot: give one",
            ));
        }
        // Read the runs to compare before running: a bad file fails fast.
        let compared = bench::read_files(&self.compare)?;
        let cancel = super::on_signals()?;
        if let Some(at) = self.start_at {
            wait_until(at, &cancel).await;
        }
        let mut live = LiveView::stderr();
        let outcome = bench::run(config, cancel, |p| live.update(p)).await;
        live.finish();
        let outcome = outcome?;
        let label = match &self.histogram_out {
            Some(path) => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| outcome.report.target.clone()),
            None => outcome.report.target.clone(),
        };
        let this = outcome.run_data(label);
        if let Some(path) = &self.histogram_out {
            bench::histfile::write(path, &this, outcome.started)?;
        }
        if self.report.is_some() || self.plot.is_some() {
            let mut runs = vec![this.clone()];
            runs.extend(compared);
            write_pictures(&this, &runs, self.report.as_deref(), self.plot.as_deref())?;
        }
        print(&outcome.report, self.json)?;
        // The report is out; a run where nothing succeeded still fails.
        match outcome.report.no_success() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

/// `--shard I/N`: shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// The whole run (no `--shard`).
    const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// This shard's part of `total`: an even split, the remainder going
    /// one each to the lowest shards, so the parts add up to `total`.
    fn part(self, total: u64) -> u64 {
        total / self.count + u64::from(self.index - 1 < total % self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The most shards (`--shard I/N`).
const MAX_SHARDS: u64 = 100_000;

/// Parses `--shard I/N`: 1 <= I <= N.
fn parse_shard(s: &str) -> std::result::Result<Shard, String> {
    let bad = || format!("{s:?} is not I/N with 1 <= I <= N <= {MAX_SHARDS} (e.g. 1/4)");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let index: u64 = i.trim().parse().map_err(|_| bad())?;
    let count: u64 = n.trim().parse().map_err(|_| bad())?;
    if index == 0 || index > count || count > MAX_SHARDS {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// Parses `--start-at`: unix seconds (a fraction allowed) or an RFC 3339
/// time in UTC (`Z` or `+00:00`).
fn parse_start_at(s: &str) -> std::result::Result<std::time::SystemTime, String> {
    let bad = || {
        format!("{s:?} is not a time: give RFC 3339 in UTC (2026-01-01T12:00:00Z) or unix seconds")
    };
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        if !(0.0..=1e11).contains(&secs) {
            return Err(bad());
        }
        return Ok(std::time::UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    let utc = s.strip_suffix("+00:00").map(|t| format!("{t}Z"));
    humantime::parse_rfc3339(utc.as_deref().unwrap_or(s)).map_err(|_| bad())
}

/// Waits until `at` (at once if it has passed), or until a signal.
async fn wait_until(at: std::time::SystemTime, cancel: &tokio_util::sync::CancellationToken) {
    let Ok(wait) = at.duration_since(std::time::SystemTime::now()) else {
        tracing::warn!(
            "--start-at {} has passed: starting now",
            humantime::format_rfc3339_millis(at)
        );
        return;
    };
    tracing::info!(
        "waiting {} until {} to start",
        netcrab::error::fmt_duration(wait),
        humantime::format_rfc3339_millis(at)
    );
    tokio::select! {
        () = tokio::time::sleep(wait) => {}
        () = cancel.cancelled() => {}
    }
}

/// Writes the HTML report and the SVG plot, when asked for: `main` heads
/// the report, every one of `runs` is a line in the charts.
fn write_pictures(
    main: &RunData,
    runs: &[RunData],
    report: Option<&Path>,
    plot: Option<&Path>,
) -> Result<()> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|e| Error::io(format!("write {}", path.display()), e))
    };
    if let Some(path) = report {
        write(path, bench::html::page(main, runs))?;
    }
    if let Some(path) = plot {
        write(path, bench::plot::percentile_svg(runs))?;
    }
    Ok(())
}

/// Prints the report; a closed stdout is not an error (see
/// [`write_stdout`]).
fn print(report: &bench::Report, json: bool) -> Result<()> {
    if json {
        write_stdout(&format!("{}\n", report.to_json()))
    } else {
        write_stdout(&report.to_table())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        bench: BenchArgs,
    }

    fn parse(args: &[&str]) -> std::result::Result<BenchArgs, clap::Error> {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).map(|c| c.bench)
    }

    #[test]
    fn flags_resolve_into_a_plan() {
        let cfg = parse(&[
            "127.0.0.1:9",
            "-c",
            "3",
            "--size",
            "10",
            "-n",
            "20",
            "--rate",
            "100",
        ])
        .expect("parse")
        .resolve()
        .expect("resolve");
        assert_eq!(cfg.plan.connections, 3);
        assert_eq!(cfg.plan.request.len(), 10);
        assert_eq!(cfg.plan.stop, Stop::Requests(20));
        assert_eq!(cfg.plan.pacing, Pacing::Open { rate: 100.0 });
        assert!(matches!(cfg.target, Target::Endpoint(_)));
        let cfg = parse(&["--payload", "ping", "--expect", "pong"])
            .expect("parse")
            .resolve()
            .expect("resolve");
        assert!(matches!(cfg.target, Target::Embedded));
        assert_eq!(&*cfg.plan.request, b"ping");
        assert_eq!(cfg.plan.expect, Expect::Bytes(b"pong".to_vec()));
    }

    #[test]
    fn shards_split_connections_requests_and_rates() {
        let shard = |i: &str| {
            parse(&[
                "127.0.0.1:9",
                "-c",
                "10",
                "--rate",
                "2000",
                "-n",
                "7",
                "--shard",
                i,
            ])
            .expect("parse")
            .resolve()
            .expect("resolve")
        };
        let one = shard("1/2");
        assert_eq!(one.plan.connections, 5);
        assert_eq!(one.plan.pacing, Pacing::Open { rate: 1000.0 });
        assert_eq!(one.plan.stop, Stop::Requests(4));
        let two = shard("2/2");
        assert_eq!(two.plan.stop, Stop::Requests(3));
        // Uneven: the parts add up, the remainder to the lowest shards.
        for (total, n) in [(10u64, 3u64), (5, 2), (7, 7), (100, 6), (1, 1)] {
            let parts: Vec<u64> = (1..=n)
                .map(|index| Shard { index, count: n }.part(total))
                .collect();
            assert_eq!(parts.iter().sum::<u64>(), total, "{total}/{n}");
            assert!(parts.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1));
        }
        // Rates follow connections: -c 3 --rate 300 in 2 shards: 200 + 100.
        let rate = |i: &str| {
            parse(&["127.0.0.1:9", "-c", "3", "--rate", "300", "--shard", i])
                .expect("parse")
                .resolve()
                .expect("resolve")
                .plan
                .pacing
        };
        assert_eq!(rate("1/2"), Pacing::Open { rate: 200.0 });
        assert_eq!(rate("2/2"), Pacing::Open { rate: 100.0 });
        // More shards than connections: a usage error.
        let err = parse(&["127.0.0.1:9", "-c", "2", "--shard", "3/3"])
            .expect("parse")
            .resolve()
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        for bad in ["0/2", "3/2", "1", "a/b", "1/0", "1/1000001"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn start_at_takes_rfc3339_or_unix_seconds() {
        let t = |s: &str| {
            parse_start_at(s).map(|t| {
                t.duration_since(std::time::UNIX_EPOCH)
                    .expect("after epoch")
                    .as_secs_f64()
            })
        };
        assert_eq!(t("2026-01-01T12:00:00Z"), Ok(1767268800.0));
        assert_eq!(t("2026-01-01T12:00:00+00:00"), Ok(1767268800.0));
        assert_eq!(t("1767268800"), Ok(1767268800.0));
        assert_eq!(t("1767268800.5"), Ok(1767268800.5));
        for bad in [
            "tomorrow",
            "2026-01-01T12:00:00+02:00",
            "-5",
            "1e300",
            "NaN",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conflicting_or_bad_flags_are_usage_errors() {
        assert!(parse(&["-n", "5", "-d", "1s"]).is_err());
        assert!(parse(&["--size", "5", "--payload", "x"]).is_err());
        // Out of its range (1 to 1000000): refused by the parser.
        let err = parse(&["-c", "0"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = parse(&["--churn", "--pipeline", "4"])
            .expect("parse")
            .resolve()
            .unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
