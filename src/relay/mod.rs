//! `netcrab relay`: accept connections on one endpoint and relay each to an
//! upstream endpoint, both directions, with half-close, an idle timeout and
//! a log line per connection saying how it ended.
//!
//! Accepting (connection limit, accept backoff, drain on shutdown) is the
//! shared loop in [`server`]. For each connection the
//! upstream is connected with the [retry policy](crate::retry); then bytes
//! move with splice(2) when both sides are TCP on Linux (`splice`), and
//! with a user-space copy otherwise (`copy`). Either way, end of stream on
//! one side becomes a write shutdown on the other while the opposite
//! direction carries on; an error on either side closes both, and a
//! connection is closed when nothing moves either way for the idle timeout.
//!
//! `netcrab proxy` ([`proxy_server`](crate::proxy_server)) moves its
//! tunnels' bytes with the same code after its handshake: `relay`, the
//! byte counts (`Traffic`) and the log line (`CloseLog`) are `pub(crate)`
//! for it.

mod copy;
#[cfg(target_os = "linux")]
mod splice;

use std::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socket2::SockRef;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::retry::{RetryPolicy, retry};
use crate::server::{self, ServerLimits, ServerReport};
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
    /// Close a connection when nothing moves in either direction for this
    /// long, so connections whose peers vanished (a lost FIN) do not leak.
    pub idle_timeout: Option<Duration>,
    /// Use splice(2) for TCP to TCP on Linux; off forces the portable copy
    /// (for comparison and as an escape hatch).
    pub splice: bool,
    /// Send a PROXY protocol header of this version to the upstream before
    /// any of the client's bytes (`--send-proxy`).
    pub send_proxy: Option<crate::proxy_protocol::Version>,
    /// Connection limit, drain timeout, options for accepted sockets and
    /// access rules.
    pub limits: ServerLimits,
    /// Record every client connection (`-o`, `-x`): what the client sent
    /// and what it was sent. The recorded connections are copied in user
    /// space, never spliced.
    pub transcript: Option<Transcript>,
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
            idle_timeout: Some(Duration::from_secs(600)),
            splice: true,
            send_proxy: None,
            limits: ServerLimits {
                max_conns: 1024,
                ..ServerLimits::default()
            },
            transcript: None,
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
    // Loaded once (TLS trust store, client certificate), used by every
    // connection; a bad upstream option fails here, before serving.
    let connector = Arc::new(Connector::new(&config.upstream, &config.connect)?);
    let config = Arc::new(config);
    let handler_config = config.clone();
    server::run(listener, &config.limits, shutdown, move |stream, peer| {
        let config = handler_config.clone();
        let connector = connector.clone();
        let stream = match &config.transcript {
            Some(transcript) => transcript.wrap(stream, &peer),
            None => stream,
        };
        async move { handle(stream, peer, &config, &connector).await }
    })
    .await
}

/// A direction of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Client to upstream.
    Up,
    /// Upstream to client.
    Down,
}

impl Dir {
    fn source(self) -> Side {
        match self {
            Dir::Up => Side::Client,
            Dir::Down => Side::Upstream,
        }
    }

    fn destination(self) -> Side {
        match self {
            Dir::Up => Side::Upstream,
            Dir::Down => Side::Client,
        }
    }
}

/// One side of a relayed connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Client,
    Upstream,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Client => "client",
            Side::Upstream => "upstream",
        })
    }
}

/// An I/O failure on one side; it ends the relay.
pub(crate) struct Fault {
    side: Side,
    err: io::Error,
}

/// Byte counts and the time of the last activity, shared by both
/// directions and the close log (atomics: the connection task must be
/// `Send`). `netcrab proxy` counts its connections with it too.
pub(crate) struct Traffic {
    start: Instant,
    up: AtomicU64,
    down: AtomicU64,
    /// Nanoseconds from `start` to the last read or write that moved data.
    last: AtomicU64,
}

impl Traffic {
    fn new() -> Traffic {
        Traffic {
            start: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last: AtomicU64::new(0),
        }
    }

    /// Records that data moved now.
    fn touch(&self) {
        let nanos = self.start.elapsed().as_nanos().min(u64::MAX as u128) as u64;
        self.last.store(nanos, Ordering::Relaxed);
    }

    /// Counts `n` bytes delivered in direction `dir` (activity too: a slow
    /// reader that still takes data is not idle).
    pub(crate) fn add(&self, dir: Dir, n: usize) {
        self.touch();
        let counter = match dir {
            Dir::Up => &self.up,
            Dir::Down => &self.down,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    pub(crate) fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }

    /// When data last moved (the start if it never did).
    fn last_activity(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
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
            fmt_duration(self.traffic.start.elapsed()),
        );
        // The parts as fields too, for `--log-format json`.
        macro_rules! log {
            ($level:ident) => {
                tracing::$level!(
                    peer = %self.client,
                    upstream = %self.upstream,
                    bytes_up = self.traffic.up(),
                    bytes_down = self.traffic.down(),
                    duration_ms = self.traffic.start.elapsed().as_millis() as u64,
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
async fn handle(client: Stream, peer: PeerAddr, config: &RelayConfig, connector: &Connector) {
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
        config.idle_timeout,
        config.splice,
        &log.traffic,
    )
    .await;
    log.log(&end);
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
        PeerAddr::Inet(source) => client.local_addr().map(|local| (*source, local)),
        _ => None,
    };
    crate::proxy_protocol::encode(version, addrs)
}

/// Relays between two connected streams until the end, and closes them:
/// splice(2) for TCP to TCP when `use_splice`, the copy otherwise; closed
/// after `idle_timeout` without traffic either way.
pub(crate) async fn relay(
    mut client: Stream,
    mut upstream: Stream,
    idle_timeout: Option<Duration>,
    use_splice: bool,
    traffic: &Traffic,
) -> End {
    let far = Duration::from_secs(86400 * 365);
    let idle = idle_timeout.unwrap_or(far);
    // The idle time counts from here, not from accept: connecting upstream
    // (with retries) may have taken a while.
    traffic.touch();
    let result = {
        let work = transfer(&mut client, &mut upstream, use_splice, traffic);
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
            abort(other);
            End::Fault(fault)
        }
    }
}

/// Picks the path: splice(2) for TCP to TCP on Linux, the copy otherwise
/// (or when the pipes cannot be made, e.g. out of descriptors).
async fn transfer(
    client: &mut Stream,
    upstream: &mut Stream,
    use_splice: bool,
    traffic: &Traffic,
) -> Result<(), Fault> {
    #[cfg(target_os = "linux")]
    if use_splice && let (Stream::Tcp(c), Stream::Tcp(u)) = (&*client, &*upstream) {
        match splice::Pipes::new() {
            Ok(pipes) => {
                tracing::debug!("relaying with splice(2)");
                return splice::relay(c, u, &pipes, traffic).await;
            }
            Err(err) => tracing::debug!("splice pipes: {err}; copying in user space"),
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = use_splice;
    tracing::debug!("relaying with a user-space copy");
    copy::relay(client, upstream, traffic).await
}

/// Makes closing `stream` send a reset (SO_LINGER 0) rather than a FIN, so
/// its peer learns the relay failed instead of seeing a clean end. For TLS,
/// the reset goes out on the TCP connection underneath; a QUIC stream sends
/// RESET_STREAM.
fn abort(stream: &Stream) {
    // A recorded stream (a transcript) passes its socket on too.
    if let Some(tcp) = stream.tcp_socket() {
        let _ = SockRef::from(tcp).set_linger(Some(Duration::ZERO));
    }
    // QUIC: RESET_STREAM instead of FIN.
    if let Stream::Boxed(s) = stream {
        s.abort_on_close();
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

    #[tokio::test(start_paused = true)]
    async fn activity_moves_the_idle_deadline() {
        let t = Traffic::new();
        tokio::time::advance(Duration::from_secs(3)).await;
        assert_eq!(t.last_activity(), t.start);
        t.touch();
        assert_eq!(t.last_activity(), t.start + Duration::from_secs(3));
        t.add(Dir::Up, 5);
        t.add(Dir::Down, 7);
        assert_eq!((t.up(), t.down()), (5, 7));
    }
}
