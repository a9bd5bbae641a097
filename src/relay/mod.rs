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
//!
//! `netcrab proxy` ([`proxy_server`](crate::proxy_server)) moves its
//! tunnels' bytes with the same code after its handshake: `relay`, the
//! ending (`End`) and the log line (`CloseLog`) are `pub(crate)` for it.
//!
//! UDP is not a byte stream: `relay udp://LISTEN udp://UPSTREAM` is
//! [`udp`], a datagram relay with a session per client address.

pub mod udp;

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
use crate::transcript::Transcript;
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
    /// Send a PROXY protocol header of this version to the upstream before
    /// any of the client's bytes (`--send-proxy`).
    pub send_proxy: Option<crate::proxy_protocol::Version>,
    /// Record every client connection (`-o`, `-x`): what the client sent
    /// and what it was sent. The recorded connections are copied in user
    /// space, never spliced.
    pub transcript: Option<Transcript>,
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
            send_proxy: None,
            transcript: None,
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
    fn serve<O: Observer>(&self, mut conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        if let Some(transcript) = &self.config.transcript {
            conn.stream = transcript.wrap(conn.stream, &conn.peer);
        }
        let (config, connector) = (self.config.clone(), self.connector.clone());
        async move { handle(conn, &config, &connector).await }
    }
}

/// How a relayed (or proxied) connection ended.
pub(crate) enum End {
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
    /// `netcrab proxy` turned the request down or its handshake failed
    /// (the reason says which, and what the client was answered).
    Rejected(String),
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
            End::Rejected(reason) => f.write_str(reason),
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
pub(crate) struct CloseLog {
    /// Who connected.
    pub(crate) client: PeerAddr,
    /// Where the connection goes, as logged.
    pub(crate) upstream: String,
    /// Bytes moved each way.
    pub(crate) traffic: Traffic,
    logged: AtomicBool,
}

impl CloseLog {
    /// A log for a connection from `client` to `upstream`, starting now.
    pub(crate) fn new(client: PeerAddr, upstream: String) -> CloseLog {
        CloseLog {
            client,
            upstream,
            traffic: Traffic::new(),
            logged: AtomicBool::new(false),
        }
    }

    /// Writes the line once; later calls (and the drop) do nothing.
    pub(crate) fn log(&self, end: &End) {
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
        // The parts as fields too, for `--log-format json`.
        macro_rules! log {
            ($level:ident) => {
                tracing::$level!(
                    peer = %self.client,
                    upstream = %self.upstream,
                    bytes_up = self.traffic.up(),
                    bytes_down = self.traffic.down(),
                    duration_ms = self.traffic.start().elapsed().as_millis() as u64,
                    outcome = %end,
                    "{line}"
                )
            };
        }
        match end {
            End::UpstreamUnavailable(_) => log!(warn),
            _ => log!(info),
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
    let mut log = CloseLog::new(peer, config.upstream.to_string());
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
    let mut upstream = match connected {
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
    if let Some(version) = config.send_proxy {
        // One write, before any of the client's bytes.
        let header = proxy_header(version, &log.client, &client);
        if let Err(err) = tokio::io::AsyncWriteExt::write_all(&mut upstream, &header).await {
            log.log(&End::Fault(Fault {
                side: Side::Upstream,
                err,
            }));
            return;
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

/// The PROXY protocol header for a client: the address a header of its
/// own carried (`--accept-proxy`), else its connection's addresses; an
/// unknown source (a Unix-socket client) is sent as such.
fn proxy_header(
    version: crate::proxy_protocol::Version,
    peer: &PeerAddr,
    client: &Stream,
) -> Vec<u8> {
    let addrs = match peer {
        PeerAddr::Proxied {
            source,
            destination,
            ..
        } => Some((*source, *destination)),
        PeerAddr::Inet(source) => match client.local_addr() {
            Ok(PeerAddr::Inet(local)) => Some((*source, local)),
            _ => None,
        },
        _ => None,
    };
    crate::proxy_protocol::encode(version, addrs)
}

/// Relays between two connected streams until the end, and closes them:
/// splice(2) for TCP to TCP when `splice`, the copy otherwise; closed after
/// `idle_timeout` without traffic either way.
pub(crate) async fn relay(
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
