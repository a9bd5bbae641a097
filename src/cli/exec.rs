//! `--exec`, `--sh-exec`, `--pty` and `--kill-grace`, shared by `serve`
//! (a program per connection) and `connect` (a program with the
//! connection), and `serve`'s start-up for them.

use std::time::Duration;

use clap::Args;
use netcrab::endpoint::{Endpoint, Host};
use netcrab::error::{Error, Result};
use netcrab::exec::{self, ExecConfig, Program};
use netcrab::serve::ServeConfig;
use netcrab::transport::ListenOptions;

use super::common::duration;
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
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "2s")]
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
        if self.kill_grace > MAX_KILL_GRACE {
            return Err(Error::usage("--kill-grace is at most 1h"));
        }
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
    if !endpoint.scheme().is_byte_stream() {
        return Err(Error::usage(format!(
            "--exec over {} is not supported yet",
            endpoint.scheme()
        )));
    }
    if door_open(args, &endpoint) {
        tracing::warn!(
            "--exec on {endpoint} without --client-ca or --allow: anyone who can reach it runs the program (a program on the network is a door)"
        );
    }
    let shutdown = super::on_signals()?;
    let mut limits = config.limits;
    limits.access = args.access.build(&endpoint).await?;
    // A socket and two pipes per connection.
    super::fdlimit::check("--max-conns", args.max_conns, 3);
    let listener = super::systemd::listen(&endpoint, &listen).await?;
    announce(&listener, args.port_file.as_deref(), "")?;
    let _stopping = super::systemd::notify_ready(&shutdown);
    let config = ExecConfig {
        pty: wanted.pty,
        kill_grace: wanted.kill_grace,
        limits,
        ..ExecConfig::new(wanted.program)
    };
    let report = exec::run(listener, config, shutdown).await?;
    stopped(&report);
    Ok(())
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
