//! `netcrab scan`: flags, their resolution into a [`ScanConfig`], and the
//! table or JSON on stdout.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use netcrab::error::{Error, ErrorKind, Result, fmt_duration};
use netcrab::escape::escape_bytes;
use netcrab::scan::{self, MAX_PROBES, PortResult, PortState, ScanConfig, ScanReport};
use serde::Serialize;

use super::common::{FamilyArgs, SourceArgs, count, duration};

/// The most probes `-c` lets run at once.
pub const MAX_CONCURRENCY: u64 = 16_384;

pub const EXAMPLES: &str = "\
Examples:
  netcrab scan 127.0.0.1 22,80,8000-8100          # open ports only, as a table
  netcrab scan localhost 1-1024 --all             # every port: open, closed or filtered
  netcrab scan 127.0.0.1/30 80,443 --json         # a CIDR block; JSON on stdout
  netcrab scan 127.0.0.1 1-65535 -c 1024 --timeout 500ms
  netcrab scan 127.0.0.1 22,25 --banner           # what each open port says first
  netcrab scan -6 localhost 8080 -s ::1           # IPv6 only, probes from ::1

A port is open (the connection was accepted), closed (refused) or filtered (no
answer within --timeout, or the host is unreachable; retried --retries times).
The table shows open ports (--all: every port); the summary goes to stderr.
A name is scanned at its first address (-4/-6 choose the family). At most
65536 probes (hosts x ports) per scan. With -p, probes run one at a time.
Exit 0 when at least one port is open, 1 when none is.";

/// Scan TCP ports: report each open, closed or filtered
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ScanArgs {
    /// Hosts: names, addresses or CIDR blocks (127.0.0.0/30), comma-separated
    pub hosts: String,
    /// Ports: a list of ports and ranges, e.g. 22,80,8000-8100
    pub ports: String,
    /// Probe at most N ports at once (1 to 16384; each holds a socket)
    #[arg(short = 'c', long, value_name = "N", value_parser = count(1, MAX_CONCURRENCY), default_value = "256")]
    pub concurrency: usize,
    /// Call a port filtered when it has not answered for this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "1s")]
    pub timeout: Duration,
    /// Probe a filtered port up to N more times (0 to 10)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=10), default_value = "0")]
    pub retries: u32,
    /// Read what each open port sends first (up to 1 KiB, for --banner-wait)
    #[arg(long)]
    pub banner: bool,
    /// With --banner: how long to wait for an open port to speak
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "1s", requires = "banner")]
    pub banner_wait: Duration,
    /// Show every port, not only the open ones
    #[arg(long)]
    pub all: bool,
    /// Print JSON on stdout (schema netcrab.scan/v1, in the README)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

impl ScanArgs {
    /// Resolves the flags into the library config.
    pub fn resolve(&self) -> Result<ScanConfig> {
        let ports = scan::parse_ports(&self.ports)?;
        let specs = scan::parse_hosts(&self.hosts)?;
        let hosts = scan::expand(&specs, ports.len())?;
        let family = self.family.family();
        for host in &hosts {
            family.check_host(host)?;
        }
        if self.timeout.is_zero() {
            return Err(Error::usage("--timeout must be longer than zero"));
        }
        let mut config = ScanConfig::new(hosts, ports);
        config.concurrency = self.concurrency;
        config.timeout = self.timeout;
        config.retries = self.retries;
        config.banner = self.banner.then_some(self.banner_wait);
        config.family = family;
        config.source = self.source.source();
        Ok(config)
    }

    /// Runs the scan and prints the results.
    pub async fn run(&self) -> Result<()> {
        let mut config = self.resolve()?;
        // A socket per probe: keep within the open-files limit.
        let limit = super::fdlimit::raise();
        if let Some(limit) = limit {
            let room = limit.saturating_sub(super::fdlimit::BASE_FILES).max(1);
            if config.concurrency as u64 > room {
                tracing::warn!(
                    "-c {} is more than the open-files limit allows ({limit}): using -c {room}",
                    config.concurrency
                );
                config.concurrency = room as usize;
            }
        }
        let report = scan::run(&config).await?;
        let shown: Vec<&PortResult> = report
            .results
            .iter()
            .filter(|r| self.all || r.state == PortState::Open)
            .collect();
        let text = if self.json {
            json(&report, &shown, &config, self.all)
        } else {
            table(&shown, self.banner)
        };
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::io("write stdout", e))?;
        let open = report.count(PortState::Open);
        tracing::info!(
            "scanned {} port(s) on {} host(s) in {}: {open} open, {} closed, {} filtered",
            report.results.len(),
            distinct_hosts(&report),
            fmt_duration(report.elapsed),
            report.count(PortState::Closed),
            report.count(PortState::Filtered),
        );
        if open == 0 {
            return Err(Error::new(ErrorKind::Io, "scan").with_detail("no open port"));
        }
        Ok(())
    }
}

fn distinct_hosts(report: &ScanReport) -> usize {
    let mut hosts: Vec<_> = report.results.iter().map(|r| r.addr).collect();
    hosts.dedup();
    hosts.len()
}

/// The table: one line per port shown, columns aligned.
fn table(results: &[&PortResult], banner: bool) -> String {
    let width = results
        .iter()
        .map(|r| r.addr.to_string().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = String::new();
    let header = if banner { "  BANNER" } else { "" };
    let head = format!("{:<width$}  {:>5}  {:<8}{header}", "HOST", "PORT", "STATE");
    out.push_str(head.trim_end());
    out.push('\n');
    for r in results {
        let mut line = format!("{:<width$}  {:>5}  {:<8}", r.addr, r.port, r.state.as_str());
        if let Some(b) = &r.banner {
            line.push_str("  ");
            line.push_str(&escape_bytes(b, 80));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `--json`: the schema `netcrab.scan/v1` (see the README).
#[derive(Serialize)]
struct Json<'a> {
    schema: &'static str,
    hosts: usize,
    ports: usize,
    probes: usize,
    max_probes: u64,
    elapsed_ms: f64,
    open: usize,
    closed: usize,
    filtered: usize,
    all: bool,
    results: &'a [&'a PortResult],
}

fn json(report: &ScanReport, shown: &[&PortResult], config: &ScanConfig, all: bool) -> String {
    let doc = Json {
        schema: "netcrab.scan/v1",
        hosts: distinct_hosts(report),
        ports: config.ports.len(),
        probes: report.results.len(),
        max_probes: MAX_PROBES,
        elapsed_ms: report.elapsed.as_secs_f64() * 1000.0,
        open: report.count(PortState::Open),
        closed: report.count(PortState::Closed),
        filtered: report.count(PortState::Filtered),
        all,
        results: shown,
    };
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}
