//! `netcrab wait`: flags, their resolution into a [`WaitConfig`], the
//! report on stderr, and running the command with `exec`.

use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use clap::Args;
use netcrab::endpoint::Scheme;
use netcrab::error::{Error, ErrorKind, Result, fmt_duration};
use netcrab::retry::RetryPolicy;
use netcrab::wait::{self, Readiness, StatusSet, Target, WaitConfig};

use super::common::{FamilyArgs, ProxyArgs, SourceArgs, duration, optional};
use super::tls::TlsConnectArgs;
use super::ws::WsArgs;

/// The examples shown after the help.
pub const EXAMPLES: &str = "\
Examples:
  netcrab wait db:5432 cache:6379 -- ./start-app             # start the app once both accept connections
  netcrab wait 127.0.0.1:8080 --timeout 10s && curl ...      # exit 124 if it is not up within 10s
  netcrab wait redis:6379 --send $'PING\\r\\n' --expect PONG   # ready means answering, not just listening
  netcrab wait --any primary:5432 replica:5432               # one of them is enough
  netcrab wait --invert 127.0.0.1:8080 --timeout 1m          # wait until the old server has stopped
  netcrab wait tls://api.internal:443 --ca ca.pem             # up means a verified TLS handshake
  netcrab wait udp://dns:5353 --send ping --expect pong       # udp: a datagram out, a reply with pong back
  netcrab wait http://127.0.0.1:8000/health                  # a GET answered with 200-399
  netcrab wait https://api.internal/ready --ca ca.pem --expect-status 200,204 --expect ok
  netcrab wait -6 localhost:8080 -s ::1 -p 40000              # IPv6 only, from [::1]:40000

Without COMMAND it exits 0 once ready. With it, netcrab becomes COMMAND
(exec): its exit code is netcrab's. On timeout it exits 124, names the
targets still down with their last error, and does not run COMMAND unless
--run-anyway is given. Prints nothing on success unless stderr is a terminal
or -v is given. A URL is ready when a GET (HTTP/1.1, Connection: close,
redirects not followed) answers with a status in --expect-status and, with
--expect, a body (its first MiB) containing the text.";

/// Wait until services accept connections, then run a command
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct WaitArgs {
    /// Targets: HOST:PORT or any endpoint (tls://HOST:PORT needs a verified handshake; udp://HOST:PORT needs --send and --expect), or an http:// or https:// URL
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Give up after this long overall (0: wait forever; `-t 15` as with wait-for-it: a bare number is seconds)
    #[arg(short = 't', long, value_name = "DURATION", value_parser = duration(), default_value = "30s")]
    pub timeout: Duration,
    /// One ready target is enough
    #[arg(long)]
    pub any: bool,
    /// Wait until the targets stop accepting connections instead
    #[arg(long, conflicts_with_all = ["send", "expect"])]
    pub invert: bool,
    /// Send TEXT after connecting
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
    /// Ready only once what the target sends (a banner, the reply to --send, or a URL's body) contains TEXT
    #[arg(long, value_name = "TEXT")]
    pub expect: Option<String>,
    /// URLs: the response statuses that mean ready, as codes and ranges
    #[arg(long, value_name = "CODES", value_parser = StatusSet::parse, default_value = "200-399")]
    pub expect_status: StatusSet,
    /// Give up on one attempt (connect, send, read the reply) after this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "5s")]
    pub attempt_timeout: Duration,
    /// The backoff cap before the second attempt; it doubles after each, with full jitter
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "100ms")]
    pub retry_delay: Duration,
    /// The largest backoff between attempts
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "1s")]
    pub retry_max_delay: Duration,
    /// On timeout, report the targets still down and run COMMAND anyway
    #[arg(long, requires = "command")]
    pub run_anyway: bool,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub proxy: ProxyArgs,
    #[command(flatten)]
    pub tls: TlsConnectArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    /// The command to run once ready (after --)
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl WaitArgs {
    /// Resolves the flags into the library config.
    pub fn resolve(&self) -> Result<WaitConfig> {
        let default = if self.tls.tls {
            Scheme::Tls
        } else {
            Scheme::Tcp
        };
        let targets = self
            .targets
            .iter()
            .map(|t| Target::parse(t, default))
            .collect::<Result<Vec<_>>>()?;
        // TLS flags apply to the tls:// targets (and https:// URLs); given
        // without one, they are an error naming the flag.
        let tls_target = targets
            .iter()
            .map(Target::endpoint)
            .find(|t| t.scheme().is_tls())
            .unwrap_or(targets[0].endpoint());
        let tls = self.tls.resolve(tls_target)?;
        let endpoints: Vec<&netcrab::endpoint::Endpoint> =
            targets.iter().map(Target::endpoint).collect();
        let ws = self.ws.resolve(&endpoints, self.tls.handshake_timeout)?;
        let mut family = self.family.family();
        for target in &targets {
            family = self.family.check(target.endpoint())?;
        }
        if self.source.source_port.is_some() && targets.len() > 1 {
            return Err(Error::usage(
                "--source-port needs a single target: probes run at once and cannot share a port",
            ));
        }
        let explicit_status = self.expect_status != StatusSet::default();
        if explicit_status && !targets.iter().any(|t| matches!(t, Target::Http(_))) {
            return Err(Error::usage(
                "--expect-status applies only to http:// and https:// targets",
            ));
        }
        if self.attempt_timeout.is_zero() {
            return Err(Error::usage("--attempt-timeout must be more than 0"));
        }
        let readiness = if self.invert {
            Readiness::Closed
        } else {
            Readiness::Accepts {
                send: self.send.as_ref().map(|s| s.as_bytes().to_vec()),
                expect: self.expect.as_ref().map(|s| s.as_bytes().to_vec()),
            }
        };
        let mut config = WaitConfig::new(targets);
        config.expect_status = self.expect_status.clone();
        config.timeout = optional(self.timeout);
        config.attempt_timeout = self.attempt_timeout;
        config.connect.connect_timeout = self.attempt_timeout;
        config.connect.tls = tls;
        config.connect.family = family;
        config.connect.source = self.source.source();
        config.connect.proxy = self.proxy.resolve()?;
        config.connect.ws = ws;
        config.backoff = RetryPolicy {
            max_retries: None,
            deadline: None,
            initial_delay: self.retry_delay,
            max_delay: self.retry_max_delay.max(self.retry_delay),
        };
        config.any = self.any;
        config.readiness = readiness;
        config.progress = std::io::stderr().is_terminal();
        Ok(config)
    }

    /// Waits, then runs the command (never returning if it starts).
    pub async fn run(&self) -> Result<()> {
        let config = self.resolve()?;
        let report = wait::run(&config).await?;
        if !report.ready {
            let level_error = !self.run_anyway;
            for target in report.not_ready() {
                let why = match &target.last_error {
                    Some(err) => err.to_string(),
                    None => "no answer".to_owned(),
                };
                let plural = if target.attempts == 1 { "" } else { "s" };
                let line = format!(
                    "{} still {}: {why} ({} attempt{plural})",
                    target.target,
                    if self.invert { "up" } else { "down" },
                    target.attempts
                );
                if level_error {
                    tracing::error!("{line}");
                } else {
                    tracing::warn!("{line}");
                }
            }
            let down = report.not_ready().count();
            let summary = format!(
                "timed out after {}: {down} of {} target(s) not {}",
                fmt_duration(config.timeout.unwrap_or(report.elapsed)),
                config.targets.len(),
                if self.invert { "closed" } else { "ready" }
            );
            if !self.run_anyway {
                return Err(Error::new(ErrorKind::NotReady, "wait").with_detail(summary));
            }
            tracing::warn!("{summary}; running the command anyway (--run-anyway)");
        }
        match self.command.split_first() {
            Some((program, args)) => Err(exec(program, args)),
            None => Ok(()),
        }
    }
}

/// Replaces this process with `program` (its exit code becomes ours).
/// Returns only when that fails, with the error a shell would give: 127
/// for a command not found, 126 for one that cannot be executed.
fn exec(program: &str, args: &[String]) -> Error {
    tracing::debug!("exec {program} {}", args.join(" "));
    // exec keeps no queued log line: write them out first.
    super::logging::flush();
    let err = std::process::Command::new(program).args(args).exec();
    let context = format!("run {program}");
    match err.kind() {
        std::io::ErrorKind::NotFound => Error::new(ErrorKind::CommandNotFound, context),
        std::io::ErrorKind::PermissionDenied => {
            Error::new(ErrorKind::CommandNotExecutable, context).with_detail("permission denied")
        }
        _ => Error::new(ErrorKind::CommandNotExecutable, context)
            .with_detail(Error::io("", err).to_string()),
    }
}
