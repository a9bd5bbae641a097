//! `--exec`, `--sh-exec`, `--pty` and `--kill-grace`, shared by `serve`
//! (a program per connection) and `connect` (a program with the
//! connection), and `serve`'s start-up for them.

use std::time::Duration;

use clap::Args;
use netcrab::connect::ConnectConfig;
use netcrab::endpoint::{Endpoint, Host};
use netcrab::error::{Error, ErrorKind, Result, fmt_duration};
use netcrab::exec::{self, ExecConfig, Program};
use netcrab::serve::ServeConfig;
use netcrab::transport::ListenOptions;

use super::common::duration_up_to;
use super::connect::ConnectArgs;
use super::serve::{ServeArgs, announce, stopped};

/// The longest `--kill-grace`.
const MAX_KILL_GRACE: Duration = Duration::from_secs(3600);

/// Running a program with a connection.
#[derive(Debug, Clone, Default, Args)]
pub struct ExecArgs {
    /// Run a program with the connection as its stdin and stdout (serve: one per connection): "PROGRAM ARGS", split at whitespace (quotes group words), no shell
    #[arg(
        short = 'e',
        long,
        value_name = "PROGRAM ARGS",
        conflicts_with = "sh_exec"
    )]
    pub exec: Option<String>,
    /// Like --exec, but COMMAND is run by /bin/sh -c
    #[arg(long, value_name = "COMMAND")]
    pub sh_exec: Option<String>,
    /// With --exec/--sh-exec: give the program a pseudo-terminal (stdin, stdout and stderr; for interactive programs) instead of pipes
    #[arg(long)]
    pub pty: bool,
    /// With --exec/--sh-exec: how long a program gets to exit after SIGTERM (peer reset, idle or drain timeout) before SIGKILL (at most 1h)
    #[arg(long, value_name = "DURATION", value_parser = duration_up_to(MAX_KILL_GRACE), default_value = "2s")]
    pub kill_grace: Duration,
}

/// What [`ExecArgs`] asked for.
#[derive(Debug, Clone)]
pub struct ExecWanted {
    pub program: Program,
    pub pty: bool,
    pub kill_grace: Duration,
}

impl ExecArgs {
    /// The program to run, checked (found on PATH), or `None` without
    /// `--exec`/`--sh-exec`.
    pub fn resolve(&self) -> Result<Option<ExecWanted>> {
        let program = match (&self.exec, &self.sh_exec) {
            (Some(line), _) => Program::exec(line)?,
            (None, Some(command)) => Program::shell(command)?,
            (None, None) if self.pty => {
                return Err(Error::usage("--pty needs --exec or --sh-exec"));
            }
            (None, None) => return Ok(None),
        };
        if self.pty && !cfg!(target_os = "linux") {
            return Err(Error::usage("--pty is supported on Linux only"));
        }
        program.check()?;
        Ok(Some(ExecWanted {
            program,
            pty: self.pty,
            kill_grace: self.kill_grace,
        }))
    }
}

/// `serve --exec`: checks the flags that do not apply, warns about a
/// program open to the network, then serves until a signal and the drain.
pub async fn serve(
    args: &ServeArgs,
    endpoint: Endpoint,
    listen: ListenOptions,
    config: ServeConfig,
    wanted: ExecWanted,
) -> Result<()> {
    if args.lines || args.echo || args.discard {
        return Err(Error::usage(
            "--exec and --sh-exec replace --reply, --echo, --discard and --lines",
        ));
    }
    if args.transcript.is_wanted() {
        return Err(Error::usage(
            "--output and --hex-dump do not apply to --exec or --sh-exec",
        ));
    }
    if door_open(args, &endpoint) {
        tracing::warn!(
            "--exec on {endpoint} without --client-ca or --allow: anyone who can reach it runs the program (a program on the network is a door)"
        );
    }
    let shutdown = super::on_signals()?;
    if endpoint.scheme().is_datagram() {
        return serve_datagrams(args, &endpoint, config, wanted, shutdown).await;
    }
    let mut limits = config.limits;
    limits.access = args.access.build(&endpoint).await?;
    // A socket and two pipes per connection.
    super::fdlimit::check("--max-conns", args.max_conns, 3);
    let listener = super::systemd::listen(&endpoint, &listen).await?;
    let metrics = args.metrics.start("serve").await?;
    announce(&listener, args.port_file.as_deref(), "")?;
    let _stopping = super::systemd::notify_ready(&shutdown);
    let config = ExecConfig {
        pty: wanted.pty,
        kill_grace: wanted.kill_grace,
        limits,
        ..ExecConfig::new(wanted.program)
    };
    let report = match &metrics {
        Some(metrics) => exec::run_observed(listener, config, shutdown, metrics.observer()).await?,
        None => exec::run(listener, config, shutdown).await?,
    };
    stopped(&report);
    super::serve::once_outcome(report)
}

/// `serve --exec` over datagrams: a program per peer address.
async fn serve_datagrams(
    args: &ServeArgs,
    endpoint: &Endpoint,
    config: ServeConfig,
    wanted: ExecWanted,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<()> {
    // Two pipes per program.
    super::fdlimit::check("--max-conns", args.max_conns, 2);
    let socket = args.bind_datagrams(endpoint).await?;
    let _stopping = super::systemd::notify_ready(&shutdown);
    let config = ExecConfig {
        pty: wanted.pty,
        kill_grace: wanted.kill_grace,
        limits: config.limits,
        ..ExecConfig::new(wanted.program)
    };
    let report = exec::udp::run(socket, config, endpoint.scheme().as_str(), shutdown).await?;
    let mut extra = String::new();
    if report.refused > 0 {
        extra.push_str(&format!(", {} from new peers not served", report.refused));
    }
    if report.dropped > 0 {
        extra.push_str(&format!(
            ", {} dropped (program not reading)",
            report.dropped
        ));
    }
    tracing::info!(
        "stopped after {} datagram(s) received, {} sent, {} program(s){extra}",
        report.received,
        report.sent,
        report.started
    );
    Ok(())
}

/// `connect --exec` over datagrams: the program's output goes out as
/// datagrams, what comes back is its input.
async fn connect_datagrams(config: &ConnectConfig, wanted: ExecWanted) -> Result<()> {
    use netcrab::endpoint::Addr;
    use netcrab::transport::datagram::{DatagramPeer, connect_unixgram};
    let endpoint = &config.endpoint;
    let what = format!("connect to {endpoint}");
    let (socket, peer) = match endpoint.addr() {
        Addr::HostPort(hp) => {
            let socket = netcrab::retry::retry(&config.retry, &what, |_| {
                netcrab::transport::udp::connect_udp(hp, &config.options)
            })
            .await?;
            let peer = socket.peer_addr().map_err(|e| Error::io(what.clone(), e))?;
            (socket.into(), DatagramPeer::Inet(peer))
        }
        Addr::Unix(addr) => {
            let socket =
                netcrab::retry::retry(&config.retry, &what, |_| connect_unixgram(addr)).await?;
            (socket, DatagramPeer::Unix(Some(addr.clone())))
        }
        _ => {
            return Err(Error::usage(format!(
                "{endpoint} is not a datagram address"
            )));
        }
    };
    let exec_config = ExecConfig {
        pty: wanted.pty,
        kill_grace: wanted.kill_grace,
        limits: {
            let mut limits = netcrab::server::ServerLimits::default();
            limits.idle_timeout = config.idle_timeout;
            limits
        },
        ..ExecConfig::new(wanted.program.clone())
    };
    exec::udp::run_connected(socket, exec_config, endpoint.scheme().as_str(), peer)
        .await
        .map_err(|e| {
            let err = Error::io(format!("receive from {endpoint}"), e);
            if err.kind() == ErrorKind::Refused {
                err.with_detail("connection refused (nothing listens there)")
            } else {
                err
            }
        })
}

/// Whether a listener lets anyone on the network start the program: an
/// address that is not loopback (nor a Unix socket), without client
/// certificates being verified or an allow list.
fn door_open(args: &ServeArgs, endpoint: &Endpoint) -> bool {
    let Some(hp) = endpoint.host_port() else {
        return false;
    };
    let loopback = match &hp.host {
        Host::Ip(ip) => ip.is_loopback(),
        Host::Name(name) => name.eq_ignore_ascii_case("localhost"),
        Host::Unspecified => false,
    };
    let verified = args.tls.client_ca.is_some() || !args.tls.client_pin_sha256.is_empty();
    let allowed = !args.access.allow.is_empty() || !args.access.allow_file.is_empty();
    !(loopback || verified || allowed)
}

/// `connect --exec`: connects (with the retry policy), then runs the
/// program with the connection until both have ended. Exits 0 when the
/// conversation ended cleanly, whatever the program's exit code (logged);
/// a reset or the idle timeout exits with its usual code.
pub async fn connect(args: &ConnectArgs, config: &ConnectConfig, wanted: ExecWanted) -> Result<()> {
    let given = [
        ("--send", args.send.is_some()),
        ("--send-only", args.send_only),
        ("--recv-only", args.recv_only),
        ("--crlf", args.crlf),
        ("--zero", args.zero),
        ("--wait", args.wait.is_some()),
        ("--output", args.transcript.output.is_some()),
        ("--hex-dump", args.transcript.hex_dump.is_some()),
    ];
    if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
        return Err(Error::usage(format!(
            "{flag} does not apply to --exec or --sh-exec"
        )));
    }
    let endpoint = &config.endpoint;
    if endpoint.scheme().is_datagram() {
        return connect_datagrams(config, wanted).await;
    }
    let stream = netcrab::connect::open(config).await?;
    let outcome = exec::run_connected(
        stream,
        endpoint.scheme().as_str(),
        &wanted.program,
        wanted.pty,
        config.idle_timeout,
    )
    .await;
    let exit = match outcome.status {
        Some(status) => format!("program {}", exec::describe_exit(status)),
        None => "program terminated".to_owned(),
    };
    tracing::debug!(
        "{}; {exit} (sent {} bytes, received {} bytes)",
        outcome.end,
        outcome.down,
        outcome.up
    );
    match outcome.end {
        exec::End::Closed | exec::End::Lingered => {
            if outcome.status.is_some_and(|s| s.success()) {
                tracing::debug!("{exit}");
            } else {
                tracing::info!("{exit}");
            }
            Ok(())
        }
        exec::End::Idle(idle) => Err(Error::new(
            ErrorKind::Timeout,
            format!("connection to {endpoint}"),
        )
        .with_detail(format!("idle for {}", fmt_duration(idle)))),
        exec::End::Fault(fault) => Err(match fault.side {
            netcrab::pipe::Side::Client => {
                Error::io(format!("connection to {endpoint}"), fault.err)
            }
            netcrab::pipe::Side::Upstream => {
                Error::io(format!("run {}", wanted.program), fault.err)
            }
        }),
        exec::End::NotStarted(err) => Err(Error::io(format!("start {}", wanted.program), err)),
        _ => Ok(()),
    }
}
