//! `netcrab relay`: accept connections on one endpoint and relay each to an
//! upstream endpoint, both directions, with half-close, an idle timeout and
//! a log line per connection saying how it ended.
//!
//! Relaying is a [`Service`] ([`RelayService`]) on the shared accept loop
//! in [`server`] (connection limit, accept backoff, drain on shutdown:
//! relay connections always get the drain timeout). For each connection
//! the upstream is connected with the [retry policy](crate::retry); then
//! the shared [`pipe`] moves bytes both ways (splice(2) for TCP to TCP on
//! Linux, a user-space copy otherwise) with half-close; an error on either
//! side closes both, and a connection is closed when nothing moves either
//! way for the idle timeout.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::pipe::{self, Fault, Side, Traffic};
use crate::retry::{RetryPolicy, retry};
use crate::server::{self, ServerLimits, ServerReport};
use crate::service::{Conn, Observer, Service};
use crate::transport::{ConnectOptions, Connector, Listener, PeerAddr, Stream};

/// Everything `relay` needs besides the listener.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Where each accepted connection is relayed to.
    pub upstream: Endpoint,
    /// Per-attempt options for the upstream connection.
    pub connect: ConnectOptions,
    /// How upstream connection attempts are retried before the client's
    /// connection is given up.
    pub retry: RetryPolicy,
    /// Use splice(2) for TCP to TCP on Linux; off forces the portable copy
    /// (for comparison and as an escape hatch).
    pub splice: bool,
    /// Connection limit, drain timeout, options for accepted sockets, and
    /// the idle timeout: a connection is closed when nothing moves in
    /// either direction for that long, so connections whose peers vanished
    /// (a lost FIN) do not leak.
    pub limits: ServerLimits,
}

impl RelayConfig {
    /// A configuration with the command's defaults for `upstream`.
    pub fn new(upstream: Endpoint) -> RelayConfig {
        RelayConfig {
            upstream,
            connect: ConnectOptions {
                connect_timeout: Duration::from_secs(5),
                ..ConnectOptions::default()
            },
            retry: RetryPolicy {
                max_retries: Some(2),
                ..RetryPolicy::default()
            },
            splice: true,
            limits: ServerLimits {
                max_conns: 1024,
                idle_timeout: Some(Duration::from_secs(600)),
                ..ServerLimits::default()
            },
        }
    }
}

/// Relays connections from `listener` to the configured upstream until
/// `shutdown` is cancelled, then drains. Returns once every connection has
/// ended.
pub async fn run(
    listener: Listener,
    config: RelayConfig,
    shutdown: CancellationToken,
) -> Result<ServerReport> {
    let limits = config.limits.clone();
    let service = RelayService::new(config)?;
    server::run(listener, &limits, shutdown, service).await
}

/// Relaying as a [`Service`]: each connection is relayed to the upstream.
#[derive(Debug, Clone)]
pub struct RelayService {
    config: Arc<RelayConfig>,
    connector: Arc<Connector>,
}

impl RelayService {
    /// The service for `config` (its limits are for the accept loop). The
    /// upstream's connector is made here, once (TLS trust store, client
    /// certificate): a bad upstream option fails here, before serving.
    pub fn new(config: RelayConfig) -> Result<RelayService> {
        let connector = Arc::new(Connector::new(&config.upstream, &config.connect)?);
        Ok(RelayService {
            config: Arc::new(config),
            connector,
        })
    }
}

impl Service for RelayService {
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        let (config, connector) = (self.config.clone(), self.connector.clone());
        async move { handle(conn, &config, &connector).await }
    }
}

/// How a relayed connection ended.
enum End {
    /// Both directions reached end of stream.
    Closed,
    /// Nothing moved either way for the idle timeout.
    Idle(Duration),
    /// One side failed (reset, or another error); both were closed.
    Fault(Fault),
    /// The upstream could not be connected within the retry budget.
    UpstreamUnavailable(Error),
    /// Still open when the drain timeout after SIGINT/SIGTERM ran out.
    Drained,
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Closed => f.write_str("closed by both sides"),
            End::Idle(d) => write!(f, "idle timeout (nothing moved for {})", fmt_duration(*d)),
            End::Fault(Fault { side, err }) => match ErrorKind::of_io(err) {
                ErrorKind::Reset => write!(f, "reset by {side}"),
                _ => write!(f, "{side} error: {}", Error::io("", copy_io_error(err))),
            },
            End::UpstreamUnavailable(err) => write!(f, "upstream unavailable: {err}"),
            End::Drained => f.write_str("closed at the drain timeout"),
        }
    }
}

/// An `io::Error` with the same code or kind (they are not `Clone`).
fn copy_io_error(err: &io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}

/// The per-connection log line, written when the connection ends however
/// it ends: when the task finishes, or when it is dropped (aborted at the
/// drain timeout).
struct CloseLog {
    client: PeerAddr,
    upstream: String,
    traffic: Traffic,
    logged: AtomicBool,
}

impl CloseLog {
    fn log(&self, end: &End) {
        if self.logged.swap(true, Ordering::Relaxed) {
            return;
        }
        let line = format!(
            "{} -> {}: {end} (up {} bytes, down {} bytes, {})",
            self.client,
            self.upstream,
            self.traffic.up(),
            self.traffic.down(),
            fmt_duration(self.traffic.start().elapsed()),
        );
        match end {
            End::UpstreamUnavailable(_) => tracing::warn!("{line}"),
            _ => tracing::info!("{line}"),
        }
    }
}

impl Drop for CloseLog {
    fn drop(&mut self) {
        self.log(&End::Drained);
    }
}

/// Relays one accepted connection to its end and logs how it ended.
async fn handle<O: Observer>(conn: Conn<O>, config: &RelayConfig, connector: &Connector) {
    let Conn {
        stream: client,
        peer,
        deadlines,
        observer,
        ..
    } = conn;
    let mut log = CloseLog {
        client: peer,
        upstream: config.upstream.to_string(),
        traffic: Traffic::new(),
        logged: AtomicBool::new(false),
    };
    tracing::debug!(
        "{}: connected; connecting to {}",
        log.client,
        config.upstream
    );
    let what = format!("connect to {}", config.upstream);
    let connected = retry(&config.retry, &what, |attempt| {
        tracing::debug!("{what} (attempt {attempt}) for {}", log.client);
        connector.connect()
    })
    .await;
    let upstream = match connected {
        Ok(upstream) => upstream,
        Err(err) => {
            // Dropping the client's stream closes it at once.
            log.log(&End::UpstreamUnavailable(err));
            return;
        }
    };
    if let Ok(addr) = upstream.peer_addr() {
        let addr = addr.to_string();
        if addr != log.upstream {
            log.upstream = format!("{} ({addr})", log.upstream);
        }
    }
    let end = relay(
        client,
        upstream,
        deadlines.idle_timeout,
        config.splice,
        &log.traffic,
    )
    .await;
    log.log(&end);
    observer.closed(&log.client, log.traffic.up(), log.traffic.down());
}

/// Relays between two connected streams until the end, and closes them.
async fn relay(
    mut client: Stream,
    mut upstream: Stream,
    idle_timeout: Option<Duration>,
    splice: bool,
    traffic: &Traffic,
) -> End {
    let far = Duration::from_secs(86400 * 365);
    let idle = idle_timeout.unwrap_or(far);
    // The idle time counts from here, not from accept: connecting upstream
    // (with retries) may have taken a while.
    traffic.touch();
    let result = {
        let work = pipe::transfer(&mut client, &mut upstream, splice, traffic);
        let timer = tokio::time::sleep(idle);
        tokio::pin!(work, timer);
        loop {
            tokio::select! {
                result = &mut work => break result,
                _ = &mut timer, if idle_timeout.is_some() => {
                    let deadline = crate::deadline::after(traffic.last_activity(), idle);
                    if Instant::now() >= deadline {
                        return End::Idle(idle);
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        }
    };
    match result {
        Ok(()) => End::Closed,
        Err(fault) => {
            // Pass a failure on: the other side is reset, not closed as
            // if the stream had ended normally.
            let other = match fault.side {
                Side::Client => &upstream,
                Side::Upstream => &client,
            };
            pipe::abort(other);
            End::Fault(fault)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_messages() {
        let reset = End::Fault(Fault {
            side: Side::Upstream,
            err: io::Error::from_raw_os_error(libc::ECONNRESET),
        });
        assert_eq!(reset.to_string(), "reset by upstream");
        let piped = End::Fault(Fault {
            side: Side::Client,
            err: io::Error::from_raw_os_error(libc::EPIPE),
        });
        assert_eq!(piped.to_string(), "reset by client");
        assert_eq!(
            End::Idle(Duration::from_secs(600)).to_string(),
            "idle timeout (nothing moved for 10m0s)"
        );
    }
}
