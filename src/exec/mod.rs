//! `--exec` and `--sh-exec`: a program per connection, with the connection
//! as its stdin and stdout (ncat's `--exec`, socat's `EXEC:`), as a
//! [`Service`] ([`ExecService`]) on the shared accept loop, and for
//! `connect` ([`run_connected`]).
//!
//! The copy is the shared [`pipe`]'s, one direction at a time (the
//! program's stdin and stdout are two pipes). End of stream both ways: the
//! peer's half-close closes the program's stdin (with `--pty`, sends it
//! ^D); when the program closes its stdout (or exits), everything it wrote
//! is sent and then the connection's sending side is shut down: output is
//! never cut. Once the program has stopped reading, what the peer sends is
//! read and dropped; once it has exited and its output is sent, the peer
//! gets [`EXIT_LINGER`] to end its side, then the connection closes.
//!
//! A program whose connection fails (a reset), goes idle for the idle
//! timeout or is still running at the drain deadline gets SIGTERM (its
//! whole process group), then SIGKILL after the grace period
//! ([`DEFAULT_KILL_GRACE`], `--kill-grace`). Every program is reaped and
//! its exit logged; [`run`] returns only when the programs it terminated
//! are gone. The connection limit (`--max-conns`) bounds the programs
//! running at once. [`ConnEnv`] lists the environment a program is given.

mod child;
#[cfg(target_os = "linux")]
mod pty;
pub mod udp;

use std::fmt;
use std::future::Future;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::{ErrorKind, Result, fmt_duration};
use crate::pipe::{self, Dir, Fault, Side, Traffic};
use crate::server::{self, ServerLimits, ServerReport};
use crate::service::{CloseReason, Conn, Observer, Service};
use crate::transport::{Listener, PeerAddr, Stream};

pub use child::{ConnEnv, Program, SHELL, describe_exit, split_words};
use child::{Reaper, Spawned};

/// How long a program gets to exit after SIGTERM before SIGKILL, by
/// default (`--kill-grace`).
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(2);

/// How long the peer gets to end its sending once the program has exited
/// and its output has been sent, before the connection closes (what the
/// peer sends meanwhile is read and dropped, so closing sends no reset).
pub const EXIT_LINGER: Duration = Duration::from_secs(2);

/// Everything `serve --exec` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ExecConfig {
    /// What runs for each connection.
    pub program: Program,
    /// Give the program a pseudo-terminal instead of pipes (Linux).
    pub pty: bool,
    /// Between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// Connection limit (one program per connection), idle and drain
    /// timeouts, socket options and access rules.
    pub limits: ServerLimits,
}

impl ExecConfig {
    /// A configuration with the defaults for `program`.
    pub fn new(program: Program) -> ExecConfig {
        ExecConfig {
            program,
            pty: false,
            kill_grace: DEFAULT_KILL_GRACE,
            limits: ServerLimits::default(),
        }
    }
}

/// Serves connections from `listener`, a program each, until `shutdown`
/// is cancelled, then drains; returns once every connection has ended and
/// every program it started has been reaped.
pub async fn run(
    listener: Listener,
    config: ExecConfig,
    shutdown: CancellationToken,
) -> Result<ServerReport> {
    run_observed(listener, config, shutdown, crate::service::NoObserver).await
}

/// [`run`], with an [`Observer`] told what happens on every connection
/// (programs started and ended included, for metrics).
pub async fn run_observed<O: Observer>(
    listener: Listener,
    config: ExecConfig,
    shutdown: CancellationToken,
    observer: O,
) -> Result<ServerReport> {
    let proto = listener
        .endpoint()
        .map(|e| e.scheme().as_str())
        .unwrap_or("tcp");
    let limits = config.limits.clone();
    let service = ExecService::new(config, proto);
    let tracker = service.reaper.tracker.clone();
    let report = server::run_observed(listener, &limits, shutdown, service, observer).await;
    tracker.close();
    tracker.wait().await;
    report
}

/// A program per connection, as a [`Service`].
#[derive(Debug, Clone)]
pub struct ExecService {
    config: Arc<ExecConfig>,
    proto: &'static str,
    reaper: Reaper,
}

impl ExecService {
    /// The service for `config` on a listener of scheme `proto` (its name
    /// in `NETCRAB_PROTO`).
    pub fn new(config: ExecConfig, proto: &'static str) -> ExecService {
        let reaper = Reaper {
            grace: config.kill_grace,
            tracker: TaskTracker::new(),
        };
        ExecService {
            config: Arc::new(config),
            proto,
            reaper,
        }
    }
}

impl Service for ExecService {
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        let (config, reaper, proto) = (self.config.clone(), self.reaper.clone(), self.proto);
        async move { handle(conn, &config, &reaper, proto).await }
    }
}

/// How a connection with a program ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum End {
    /// Both sides finished: the peer's sending and the program's output.
    Closed,
    /// The program exited and its output was sent, but the peer did not
    /// end its sending within [`EXIT_LINGER`].
    Lingered,
    /// Nothing moved either way for the idle timeout.
    Idle(Duration),
    /// The connection (or, rarely, a pipe to the program) failed.
    Fault(Fault),
    /// The program could not be started.
    NotStarted(std::io::Error),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Closed => f.write_str("closed by both sides"),
            End::Lingered => write!(
                f,
                "closed {} after the program ended, the peer still sending",
                fmt_duration(EXIT_LINGER)
            ),
            End::Idle(d) => write!(f, "idle timeout (nothing moved for {})", fmt_duration(*d)),
            End::Fault(Fault { side, err }) => {
                let who = match side {
                    Side::Client => "peer",
                    Side::Upstream => "program",
                };
                match ErrorKind::of_io(err) {
                    ErrorKind::Reset => write!(f, "reset by {who}"),
                    _ => write!(f, "{who} error: {err}"),
                }
            }
            End::NotStarted(err) => write!(f, "cannot start the program: {err}"),
        }
    }
}

/// What a connection with a program did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Outcome {
    /// How the connection ended.
    pub end: End,
    /// The program's exit, when it exited by itself before the connection
    /// ended (otherwise it is terminated and its end logged).
    pub status: Option<ExitStatus>,
    /// Bytes from the peer to the program.
    pub up: u64,
    /// Bytes from the program to the peer.
    pub down: u64,
}

/// Runs the program for one accepted connection and logs how it went.
async fn handle<O: Observer>(conn: Conn<O>, config: &ExecConfig, reaper: &Reaper, proto: &str) {
    let (stream, peer, _state, deadlines, observer) = conn.into_parts();
    let local = stream.local_addr().ok();
    let env = ConnEnv::new(proto, &peer, local.as_ref(), stream.peer_certificate());
    // Counted as running from the start until the connection's end (a
    // program that could not start, for no time at all).
    observer.child_started();
    let outcome = converse(
        stream,
        &peer,
        &config.program,
        config.pty,
        &env,
        reaper,
        deadlines.idle_timeout,
    )
    .await;
    observer.child_exited();
    log_outcome(&peer, &config.program, &outcome);
    observer.received(usize::try_from(outcome.up).unwrap_or(usize::MAX));
    observer.sent(usize::try_from(outcome.down).unwrap_or(usize::MAX));
    let (reason, failure) = match &outcome.end {
        End::Closed | End::Lingered => (CloseReason::Clean, None),
        End::Idle(d) => (
            CloseReason::IdleTimeout,
            Some(
                crate::error::Error::new(ErrorKind::Timeout, peer.to_string())
                    .with_detail(format!("idle timeout ({})", fmt_duration(*d))),
            ),
        ),
        End::Fault(Fault { err, .. }) => (
            CloseReason::of_error(ErrorKind::of_io(err)),
            Some(crate::error::Error::io(
                peer.to_string(),
                crate::pipe::copy_io_error(err),
            )),
        ),
        End::NotStarted(err) => (
            CloseReason::Error,
            Some(
                crate::error::Error::new(ErrorKind::Io, format!("start {}", config.program))
                    .with_detail(err.to_string()),
            ),
        ),
    };
    if let Some(err) = failure {
        observer.failed(&err);
    }
    observer.ended(reason);
    observer.closed(&peer, outcome.up, outcome.down);
}

/// Logs a connection's end: a warning when the program could not start.
fn log_outcome(peer: &PeerAddr, program: &Program, outcome: &Outcome) {
    let exit = match outcome.status {
        Some(status) => format!("program {}", describe_exit(status)),
        None => "program terminated".to_owned(),
    };
    match &outcome.end {
        End::NotStarted(err) => tracing::warn!("{peer}: cannot start {program}: {err}"),
        end => tracing::info!(
            peer = %peer,
            bytes_up = outcome.up,
            bytes_down = outcome.down,
            outcome = %end,
            "{peer}: {end}; {exit} (in {} bytes, out {} bytes)",
            outcome.up,
            outcome.down,
        ),
    }
}

/// Starts `program` for `stream` and moves bytes between them until both
/// have ended (see the module's documentation for the rules).
async fn converse(
    stream: Stream,
    peer: &PeerAddr,
    program: &Program,
    pty: bool,
    env: &ConnEnv,
    reaper: &Reaper,
    idle_timeout: Option<Duration>,
) -> Outcome {
    let traffic = Traffic::new();
    let Spawned {
        mut running,
        mut input,
        mut output,
    } = match child::spawn(program, pty, env, reaper, peer.to_string()) {
        Ok(spawned) => spawned,
        Err(err) => {
            return Outcome {
                end: End::NotStarted(err),
                status: None,
                up: 0,
                down: 0,
            };
        }
    };
    tracing::debug!("{peer}: started {program} (pid {})", running.pid());
    let (mut rd, mut wr) = tokio::io::split(stream);
    let mut status = None;
    let end = {
        let up = pipe::copy_one_way(&mut rd, &mut input, Dir::Up, &traffic);
        let down = pipe::copy_one_way(&mut output, &mut wr, Dir::Down, &traffic);
        let far = Duration::from_secs(86400 * 365);
        let idle = idle_timeout.unwrap_or(far);
        let idle_timer = tokio::time::sleep(idle);
        let linger = tokio::time::sleep(far);
        tokio::pin!(up, down, idle_timer, linger);
        let (mut up_done, mut down_done, mut lingering) = (false, false, false);
        loop {
            if up_done && down_done {
                break End::Closed;
            }
            if down_done && status.is_some() && !lingering {
                lingering = true;
                linger.as_mut().reset(Instant::now() + EXIT_LINGER);
            }
            tokio::select! {
                result = &mut up, if !up_done => match result {
                    Ok(()) => up_done = true,
                    Err(fault) => break End::Fault(fault),
                },
                result = &mut down, if !down_done => match result {
                    Ok(()) => down_done = true,
                    Err(fault) => break End::Fault(fault),
                },
                exited = running.wait(), if status.is_none() => match exited {
                    Ok(exited) => status = Some(exited),
                    Err(err) => {
                        break End::Fault(Fault { side: Side::Upstream, err });
                    }
                },
                _ = &mut linger, if lingering => break End::Lingered,
                _ = &mut idle_timer, if idle_timeout.is_some() => {
                    let deadline = crate::deadline::after(traffic.last_activity(), idle);
                    if Instant::now() >= deadline {
                        break End::Idle(idle);
                    }
                    idle_timer.as_mut().reset(deadline);
                }
            }
        }
    };
    if status.is_none() && matches!(end, End::Closed) {
        // Both directions are done: the program is about to exit (or
        // keeps running without its stdin and stdout, and is ended).
        if let Ok(Ok(exited)) = tokio::time::timeout(reaper.grace, running.wait()).await {
            status = Some(exited);
        }
    }
    if status.is_none() {
        running.terminate(&end.to_string());
    }
    Outcome {
        end,
        status,
        up: traffic.up(),
        down: traffic.down(),
    }
}

/// `connect --exec`: runs `program` with an open connection as its stdin
/// and stdout (ncat's `-e`), until both have ended; the program is told
/// about the connection in `NETCRAB_*` variables (`proto` is the scheme
/// name). Returns once the program has been reaped. A connection error
/// (a reset) is the outcome's [`End::Fault`].
pub async fn run_connected(
    stream: Stream,
    proto: &str,
    program: &Program,
    pty: bool,
    idle_timeout: Option<Duration>,
) -> Outcome {
    let peer = stream.peer_addr().unwrap_or(PeerAddr::Unix {
        name: None,
        pid: None,
    });
    let local = stream.local_addr().ok();
    let env = ConnEnv::new(proto, &peer, local.as_ref(), stream.peer_certificate());
    let reaper = Reaper {
        grace: DEFAULT_KILL_GRACE,
        tracker: TaskTracker::new(),
    };
    let outcome = converse(stream, &peer, program, pty, &env, &reaper, idle_timeout).await;
    reaper.tracker.close();
    reaper.tracker.wait().await;
    outcome
}
