//! `netcrab bench` and `netcrab bench merge`: flags, their resolution into a
//! [`BenchConfig`], live progress on a terminal, and the output (table or
//! JSON, and the histogram log).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use netcrab::bench::{self, BenchConfig, Expect, Pacing, Plan, Progress, Stop, Target};
use netcrab::endpoint::{Endpoint, Scheme};
use netcrab::error::{Error, Result};
use netcrab::transport::ConnectOptions;

use super::common::{MAX_CONNS, count, duration, size};
use super::tls::TlsConnectArgs;

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

Replies are read by length: a request expects as many bytes back as it sent (echo) or as --expect TEXT
has. Open-loop latency (--rate) counts from when each request was due, so server stalls show in the
percentiles. The JSON schema (netcrab.bench/v1) is documented in docs/bench-json.md.

When no request succeeds, the report is still printed and bench exits non-zero with the code of the
most common error: 4 refused, 5 timeout, 6 reset, 10 wrong reply or closed by peer, 9 local port
exhaustion or resource, 1 otherwise (or when no request completed at all).";

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
    /// Save the latency histograms (an HdrHistogram interval log) for `bench merge`
    #[arg(long, value_name = "FILE")]
    pub histogram_out: Option<PathBuf>,
    /// Also report the CPU time of this server process and its descendants (for servers that fork)
    #[arg(long, value_name = "PID")]
    pub server_pid: Option<u32>,
    #[command(flatten)]
    pub tls: TlsConnectArgs,
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
        let request = match &self.payload {
            Some(p) => text_or_file(p, "payload")?,
            None => pattern(self.size),
        };
        let expect = match self.expect.as_str() {
            "echo" => Expect::Echo,
            "none" => Expect::Nothing,
            other => Expect::Bytes(text_or_file(other, "expected reply")?),
        };
        let stop = match self.requests {
            Some(n) => Stop::Requests(n),
            None => Stop::Duration(self.duration),
        };
        let plan = Plan {
            connections: self.connections,
            request: request.into(),
            expect,
            stop,
            warmup: self.warmup,
            pipeline: self.pipeline,
            pacing: match self.rate {
                Some(rate) => Pacing::Open { rate },
                None => Pacing::Closed,
            },
            connect_rate: self.connect_rate,
            churn: self.churn,
            request_timeout: self.timeout,
            hold: self.hold,
        };
        plan.validate()?;
        if self.timeout.is_zero() {
            return Err(Error::usage("--timeout must be longer than zero"));
        }
        Ok(BenchConfig {
            target,
            plan,
            // TCP_NODELAY on, keepalive off: the defaults.
            connect: ConnectOptions {
                connect_timeout: self.connect_timeout,
                tls,
                ..ConnectOptions::default()
            },
            server_pid: self.server_pid,
        })
    }

    /// Runs the benchmark (or `bench merge`) and prints the report.
    pub async fn run(&self) -> Result<()> {
        if let Some(BenchCommand::Merge(merge)) = &self.command {
            let report = bench::merge_files(&merge.files)?;
            print(&report, merge.json);
            return Ok(());
        }
        let config = self.resolve()?;
        // A socket per connection, and the embedded server's end of each.
        let per_conn = if matches!(config.target, Target::Embedded) {
            2
        } else {
            1
        };
        super::fdlimit::check("--connections", self.connections, per_conn);
        let cancel = netcrab::shutdown::on_signals()?;
        let bar = progress_bar();
        let outcome = bench::run(config, cancel, |p| update(&bar, p)).await;
        bar.finish_and_clear();
        let outcome = outcome?;
        if let Some(path) = &self.histogram_out {
            bench::histfile::write(
                path,
                &outcome.report,
                &outcome.totals.latency,
                &outcome.totals.connect,
                outcome.started,
            )?;
        }
        print(&outcome.report, self.json);
        // The report is out; a run where nothing succeeded still fails.
        match outcome.report.no_success() {
            Some(err) => Err(err),
            None => Ok(()),
        }
    }
}

fn print(report: &bench::Report, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
}

/// A progress line on stderr when it is a terminal; hidden otherwise.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr_with_hz(4));
    let style = ProgressStyle::with_template("{bar:30} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn update(bar: &ProgressBar, p: &Progress) {
    if bar.is_hidden() {
        return;
    }
    let fraction = match (p.planned, p.planned_requests) {
        (Some(total), _) if !total.is_zero() => p.elapsed.as_secs_f64() / total.as_secs_f64(),
        (_, Some(n)) if n > 0 => (p.ok + p.errors) as f64 / n as f64,
        _ => 0.0,
    };
    bar.set_position((fraction.clamp(0.0, 1.0) * 1000.0) as u64);
    let phase = if p.warming_up { "warming up, " } else { "" };
    bar.set_message(format!(
        "{phase}{:.1}s  {} ok  {} errors",
        p.elapsed.as_secs_f64(),
        p.ok,
        p.errors
    ));
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
