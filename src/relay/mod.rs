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
//! With faults ([`RelayConfig::faults`]), each new connection takes the
//! faults in force when it starts (unless `fault-rate` spares it) and
//! keeps them to its end; see [`faults`](crate::faults).
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
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use crate::endpoint::{Endpoint, Host, HostPort, Scheme};
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::faults::Faults;
use crate::faults::control::FaultState;
use crate::pipe::{self, Fault, Injected, Side, Traffic};
use crate::retry::{RetryPolicy, retry};
use crate::server::{self, Failure, ServerLimits, ServerReport};
use crate::service::{CloseReason, Conn, Observer, Service};
use crate::settings::Setting;
use crate::transcript::Transcript;
use crate::transport::{ConnectOptions, Connector, Listener, PeerAddr, Stream};

/// Everything `relay` needs besides the listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
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
    /// Fault injection: the faults in force (replaceable at run time) and
    /// the live connections; `None` costs nothing per connection.
    pub faults: Option<Arc<FaultState>>,
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
            faults: None,
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
    upstream: Arc<Upstream>,
}

/// What every connection needs to know of the upstream, worked out once:
/// its connector and the words its log lines use.
#[derive(Debug)]
struct Upstream {
    connector: Connector,
    /// How close lines name it: the endpoint, with the address it resolved
    /// to when that is known in advance and says more.
    label: String,
    /// The retry's description: `connect to <endpoint>`.
    what: String,
    /// The peer's address when the endpoint is a literal one
    /// ([`literal_upstream`]): no getpeername(2) per connection to learn it.
    literal: Option<std::net::SocketAddr>,
}

impl Upstream {
    /// One connection attempt. A plain TCP upstream (the usual one) is
    /// dialed by a future a fraction the size of the general connector's
    /// (TLS, QUIC, proxies), which is boxed: an attempt's future is moved
    /// several times per connection, each a `memcpy` of all of it.
    async fn connect(&self) -> Result<Stream> {
        match self.connector.connect_plain_tcp() {
            Some(connecting) => connecting.await,
            None => Box::pin(self.connector.connect()).await,
        }
    }
}

impl RelayService {
    /// The service for `config` (its limits are for the accept loop). The
    /// upstream's connector is made here, once (TLS trust store, client
    /// certificate): a bad upstream option fails here, before serving.
    pub fn new(config: RelayConfig) -> Result<RelayService> {
        let connector = Connector::new(&config.upstream, &config.connect)?;
        let literal = literal_upstream(&config);
        let mut label = config.upstream.to_string();
        if let Some(addr) = literal
            && addr.to_string() != label
        {
            label = format!("{label} ({addr})");
        }
        let upstream = Upstream {
            connector,
            label,
            what: format!("connect to {}", config.upstream),
            literal,
        };
        Ok(RelayService {
            config: Arc::new(config),
            upstream: Arc::new(upstream),
        })
    }
}

impl Service for RelayService {
    fn serve<O: Observer>(&self, mut conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        if let Some(transcript) = &self.config.transcript {
            conn.stream = transcript.wrap(conn.stream, &conn.peer);
        }
        // Boxed here, where it is made: the connection's future (~1.6 KB)
        // is then moved once, into its box, and the accept loop and
        // tokio's spawn move a pointer (each move of the future itself is
        // a `memcpy` of all of it).
        Box::pin(handle(conn, self.config.clone(), self.upstream.clone()))
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
    /// An injected fault ended it (`--reset-after`, `--timeout-after`...).
    Injected(Injected),
}

impl End {
    /// The kind of failure this end is, `None` for a clean close.
    fn failure_kind(&self) -> Option<ErrorKind> {
        match self {
            End::Closed => None,
            End::Idle(_) | End::Drained => Some(ErrorKind::Timeout),
            End::Fault(Fault { err, .. }) => Some(ErrorKind::of_io(err)),
            End::UpstreamUnavailable(err) => Some(err.kind()),
            End::Rejected(_) => Some(ErrorKind::Protocol),
            // What the client saw: a reset, or the connection stopping.
            End::Injected(Injected::ResetAfterBytes(_) | Injected::ResetAfterTime(_)) => {
                Some(ErrorKind::Reset)
            }
            End::Injected(Injected::TimeoutAfter(_)) => Some(ErrorKind::Timeout),
        }
    }
}

impl End {
    /// The reason counted in metrics.
    pub(crate) fn reason(&self) -> CloseReason {
        match self {
            End::Closed => CloseReason::Clean,
            End::Idle(_) => CloseReason::IdleTimeout,
            End::Fault(Fault { err, .. }) => match ErrorKind::of_io(err) {
                ErrorKind::Reset => CloseReason::Reset,
                _ => CloseReason::Error,
            },
            End::UpstreamUnavailable(_) => CloseReason::UpstreamUnavailable,
            End::Drained => CloseReason::DrainTimeout,
            End::Rejected(_) => CloseReason::Rejected,
            End::Injected(Injected::ResetAfterBytes(_) | Injected::ResetAfterTime(_)) => {
                CloseReason::Reset
            }
            End::Injected(Injected::TimeoutAfter(_)) => CloseReason::IdleTimeout,
        }
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Closed => f.write_str("closed by both sides"),
            End::Idle(d) => write!(f, "idle timeout (nothing moved for {})", fmt_duration(*d)),
            End::Fault(Fault { side, err }) => match ErrorKind::of_io(err) {
                ErrorKind::Reset => write!(f, "reset by {side}"),
                _ => write!(
                    f,
                    "{side} error: {}",
                    Error::io("", crate::pipe::copy_io_error(err))
                ),
            },
            End::UpstreamUnavailable(err) => write!(f, "upstream unavailable: {err}"),
            End::Drained => f.write_str("closed at the drain timeout"),
            End::Rejected(reason) => f.write_str(reason),
            End::Injected(Injected::ResetAfterBytes(n)) => {
                write!(
                    f,
                    "client reset by {} {n} (bytes delivered)",
                    Setting::ResetAfter
                )
            }
            End::Injected(Injected::ResetAfterTime(d)) => {
                write!(
                    f,
                    "client reset by {} {}",
                    Setting::ResetAfterTime,
                    fmt_duration(*d)
                )
            }
            End::Injected(Injected::TimeoutAfter(d)) => {
                write!(
                    f,
                    "closed by {} {}",
                    Setting::TimeoutAfter,
                    fmt_duration(*d)
                )
            }
        }
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
    /// Bytes moved each way (shared with the `--control` API's list).
    pub(crate) traffic: Arc<Traffic>,
    /// 0 until the line is written, then 1 + the index of the reason in
    /// [`CloseReason::ALL`].
    ended: AtomicU8,
    /// How the connection failed, once logged (for `--once`).
    failure: OnceLock<Failure>,
}

impl CloseLog {
    /// A log for a connection from `client` to `upstream`, starting now.
    pub(crate) fn new(client: PeerAddr, upstream: String) -> CloseLog {
        CloseLog {
            client,
            upstream,
            traffic: Arc::new(Traffic::new()),
            ended: AtomicU8::new(0),
            failure: OnceLock::new(),
        }
    }

    /// Writes the line once; later calls (and the drop) do nothing.
    pub(crate) fn log(&self, end: &End) {
        let reason = end.reason();
        let code = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .map_or(u8::MAX, |i| i as u8 + 1);
        if self
            .ended
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        if let Some(kind) = end.failure_kind() {
            let _ = self.failure.set(Failure {
                kind,
                message: format!("{} -> {}: {end}", self.client, self.upstream),
            });
        }
        let warn = matches!(end, End::UpstreamUnavailable(_));
        // Quiet (`-q`): no line, so none is formatted either.
        if !(tracing::enabled!(tracing::Level::INFO)
            || warn && tracing::enabled!(tracing::Level::WARN))
        {
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
        if warn {
            log!(warn);
        } else {
            log!(info);
        }
    }
}

impl CloseLog {
    /// Why the connection ended, once the line is written.
    pub(crate) fn reason(&self) -> Option<CloseReason> {
        match self.ended.load(Ordering::Relaxed) {
            0 => None,
            n => CloseReason::ALL.get(usize::from(n) - 1).copied(),
        }
    }

    /// Tells `observer` how the connection ended: its bytes (counted by
    /// the pipe, reported here at the end), why, and its totals.
    pub(crate) fn report<O: Observer>(&self, observer: &O) {
        let (up, down) = (self.traffic.up(), self.traffic.down());
        observer.received(usize::try_from(up).unwrap_or(usize::MAX));
        observer.sent(usize::try_from(down).unwrap_or(usize::MAX));
        if let Some(failure) = self.failure.get() {
            observer.failed(&failure.clone().into_error());
        }
        if let Some(reason) = self.reason() {
            observer.ended(reason);
        }
        observer.closed(&self.client, up, down);
    }
}

impl Drop for CloseLog {
    fn drop(&mut self) {
        self.log(&End::Drained);
    }
}

/// Relays one accepted connection to its end, logs how it ended and
/// tells the observer. One `async fn` from accept to close: each nested
/// `async fn` would be built apart and then moved into its caller's
/// future, a `memcpy` of its whole size per connection.
async fn handle<O: Observer>(conn: Conn<O>, config: Arc<RelayConfig>, target: Arc<Upstream>) {
    let Conn {
        stream: client,
        peer,
        deadlines,
        observer,
        ..
    } = conn;
    let mut log = CloseLog::new(peer, target.label.clone());
    'relay: {
        tracing::debug!(
            "{}: connected; connecting to {}",
            log.client,
            config.upstream
        );
        let what = &target.what;
        // Boxed: connecting (retries, Happy Eyeballs, layers) is ~3 KB of
        // state needed only until the upstream answers; inline, every
        // connection's task would keep its room for the whole connection.
        let observer = &observer;
        let connected = Box::pin(retry(&config.retry, what, |attempt| {
            tracing::debug!("{what} (attempt {attempt}) for {}", log.client);
            let target = &*target;
            async move {
                let mut attempt = Attempt::new(observer);
                let result = target.connect().await;
                attempt.outcome = result.as_ref().map(|_| ()).map_err(Error::kind);
                result
            }
        }))
        .await;
        let mut upstream = match connected {
            Ok(upstream) => upstream,
            Err(err) => {
                // Dropping the client's stream closes it at once.
                log.log(&End::UpstreamUnavailable(err));
                break 'relay;
            }
        };
        // A literal address is the peer itself, already in the label: no
        // getpeername(2) to learn it.
        if target.literal.is_none()
            && let Ok(addr) = upstream.peer_addr()
        {
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
                break 'relay;
            }
        }
        let faults = config.faults.as_ref().and_then(|s| s.for_new_connection());
        let _listed = config.faults.as_ref().map(|state| {
            state.register(
                log.client.to_string(),
                log.upstream.clone(),
                log.traffic.clone(),
                faults.is_some(),
            )
        });
        let end = relay(
            client,
            upstream,
            deadlines.idle_timeout,
            config.splice,
            &log.traffic,
            faults.as_deref(),
        )
        .await;
        log.log(&end);
    }
    log.report(&observer);
}

/// The upstream's address when the endpoint names it exactly (plain TCP
/// to a literal IP address, no proxy), so the connection's peer is known
/// without asking the kernel.
fn literal_upstream(config: &RelayConfig) -> Option<std::net::SocketAddr> {
    if config.upstream.scheme() != Scheme::Tcp || !config.connect.proxy.is_empty() {
        return None;
    }
    match config.upstream.host_port() {
        Some(HostPort {
            host: Host::Ip(ip),
            port,
        }) => Some(std::net::SocketAddr::new(*ip, *port)),
        _ => None,
    }
}

/// One upstream connect attempt, told to the observer when it ends: when
/// it returns, or when the retry deadline drops it (a timeout).
struct Attempt<'a, O: Observer> {
    observer: &'a O,
    started: Instant,
    outcome: std::result::Result<(), ErrorKind>,
}

impl<'a, O: Observer> Attempt<'a, O> {
    fn new(observer: &'a O) -> Attempt<'a, O> {
        Attempt {
            observer,
            started: Instant::now(),
            outcome: Err(ErrorKind::Timeout),
        }
    }
}

impl<O: Observer> Drop for Attempt<'_, O> {
    fn drop(&mut self) {
        self.observer
            .upstream_connect(self.outcome, self.started.elapsed());
    }
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
/// `idle_timeout` without traffic either way. With `faults`, the faulted
/// direction goes through the fault layer, and an injected reset resets
/// the client (SO_LINGER 0) and closes the upstream.
pub(crate) async fn relay(
    mut client: Stream,
    mut upstream: Stream,
    idle_timeout: Option<Duration>,
    splice: bool,
    traffic: &Traffic,
    faults: Option<&Faults>,
) -> End {
    // The idle time counts from here, not from accept: connecting upstream
    // (with retries) may have taken a while. (One clock read for both the
    // traffic's clock and the timer's.)
    let now = Instant::now();
    traffic.touch_at(now);
    let mut work = match faults {
        // Both streams are dropped (closed) when this returns: the last
        // direction's FIN goes out with the close, not a shutdown first.
        None => {
            Work::Plain(pipe::transfer(&mut client, &mut upstream, splice, traffic).closed_after())
        }
        // Boxed: the fault layer's state (delay queue, pacer) is ~4.6 KB,
        // and every relayed connection's task would carry it inline,
        // faults or not.
        Some(faults) => Work::Faulted(Box::pin(pipe::transfer_with_faults(
            &mut client,
            &mut upstream,
            splice,
            traffic,
            faults,
        ))),
    };
    let far = Duration::from_secs(86400 * 365);
    let sleep = std::pin::pin!(tokio::time::sleep_until(crate::deadline::after(
        now,
        idle_timeout.unwrap_or(far)
    )));
    let mut idle = idle_timeout.map(|idle| IdleTimer::new(idle, traffic, sleep));
    // One poll function for the transfer and the idle deadline (no
    // `select!`: no branch shuffling, no timer polled per message).
    let result = std::future::poll_fn(|cx| {
        let done = match &mut work {
            Work::Plain(transfer) => Pin::new(transfer).poll(cx).map(|r| r.map(|()| None)),
            Work::Faulted(transfer) => transfer.as_mut().poll(cx),
        };
        if done.is_ready() {
            return done.map(Some);
        }
        match &mut idle {
            Some(idle) => idle.poll(cx).map(|()| None),
            None => Poll::Pending,
        }
    })
    .await;
    drop(work);
    let Some(result) = result else {
        return End::Idle(idle_timeout.unwrap_or_default());
    };
    match result {
        Ok(None) => End::Closed,
        Ok(Some(injected)) => {
            if injected.resets() {
                pipe::abort(&client);
            }
            End::Injected(injected)
        }
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

/// What [`relay`] waits for besides the idle deadline.
enum Work<'a> {
    /// No faults: the pipe's own future, inline.
    Plain(pipe::Transfer<'a>),
    /// Through the fault layer (boxed: see [`relay`]).
    Faulted(
        Pin<Box<dyn Future<Output = std::result::Result<Option<Injected>, Fault>> + Send + 'a>>,
    ),
}

/// A connection's idle deadline: nothing moved either way for `idle`.
///
/// The timer is registered at the connection's first wait, for the idle
/// time from the start; when it fires, the deadline is worked out again
/// from [`Traffic::last_activity`] and the timer moved to it if something
/// moved meanwhile. In between it is not polled at all: the timer holds
/// the task's waker, so a wake-up only checks whether it fired
/// ([`Sleep::is_elapsed`], one load) instead of polling it (the task's
/// budget, the timer's waker slot) on every message.
struct IdleTimer<'a> {
    idle: Duration,
    traffic: &'a Traffic,
    sleep: Pin<&'a mut Sleep>,
    /// The waker the timer holds once registered: polled again if the
    /// task's waker changed.
    waker: Option<Waker>,
}

impl<'a> IdleTimer<'a> {
    /// `sleep` is due `idle` after the traffic's last activity.
    fn new(idle: Duration, traffic: &'a Traffic, sleep: Pin<&'a mut Sleep>) -> IdleTimer<'a> {
        IdleTimer {
            idle,
            traffic,
            sleep,
            waker: None,
        }
    }

    /// `Ready` once nothing has moved for the idle time.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let same_waker = self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if same_waker && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        // Outside the task's budget: a poll refused for budget would not
        // register the timer, and it is then left alone.
        while Pin::new(&mut tokio::task::unconstrained(self.sleep.as_mut()))
            .poll(cx)
            .is_ready()
        {
            let deadline = crate::deadline::after(self.traffic.last_activity(), self.idle);
            if Instant::now() >= deadline {
                return Poll::Ready(());
            }
            self.sleep.as_mut().reset(deadline);
        }
        if !same_waker {
            self.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn an_attempt_dropped_unfinished_counts_as_a_timeout() {
        let metrics = crate::metrics::Metrics::new("relay");
        let observer = metrics.observer();
        drop(Attempt::new(&observer));
        let mut done = Attempt::new(&observer);
        done.outcome = Ok(());
        drop(done);
        let text = metrics.encode_text();
        assert!(text.contains("netcrab_upstream_connect_attempts_total 2\n"));
        assert!(text.contains("netcrab_upstream_connect_failures_total{kind=\"timeout\"} 1\n"));
        assert!(text.contains("netcrab_upstream_connect_duration_seconds_count 1\n"));
    }

    #[test]
    fn only_a_literal_tcp_upstream_without_a_proxy_is_known_in_advance() {
        let config = |s: &str| RelayConfig::new(s.parse().unwrap());
        assert_eq!(
            literal_upstream(&config("127.0.0.1:9")),
            Some("127.0.0.1:9".parse().unwrap())
        );
        assert_eq!(
            literal_upstream(&config("[::1]:9")),
            Some("[::1]:9".parse().unwrap())
        );
        assert_eq!(literal_upstream(&config("localhost:9")), None);
        assert_eq!(literal_upstream(&config("tls://127.0.0.1:9")), None);
        let mut proxied = config("127.0.0.1:9");
        proxied
            .connect
            .proxy
            .chain
            .push(crate::proxy::ProxyUrl::parse("socks5://127.0.0.1:1080").unwrap());
        assert_eq!(literal_upstream(&proxied), None);
    }

    /// The close line's name for the upstream and the retry's words are
    /// worked out once, as each connection used to work them out.
    #[test]
    fn the_upstream_is_described_once() {
        let upstream = |s: &str| {
            let service = RelayService::new(RelayConfig::new(s.parse().unwrap())).unwrap();
            let u = &service.upstream;
            (u.label.clone(), u.what.clone(), u.literal)
        };
        let (label, what, literal) = upstream("127.0.0.1:9");
        assert_eq!(label, "127.0.0.1:9");
        assert_eq!(what, "connect to 127.0.0.1:9");
        assert_eq!(literal, Some("127.0.0.1:9".parse().unwrap()));
        // A name is resolved per connection: its address is added then.
        let (label, _, literal) = upstream("localhost:9");
        assert_eq!((label.as_str(), literal), ("localhost:9", None));
    }

    /// The idle timer fires `idle` after the last activity: traffic while
    /// it runs moves the deadline on, and it is not polled in between.
    #[tokio::test(start_paused = true)]
    async fn the_idle_deadline_counts_from_the_last_activity() {
        let idle = Duration::from_secs(10);
        let traffic = Traffic::new();
        let start = Instant::now();
        let sleep = std::pin::pin!(tokio::time::sleep(idle));
        let mut timer = IdleTimer::new(idle, &traffic, sleep);
        let waiting = std::future::poll_fn(|cx| timer.poll(cx));
        let activity = async {
            tokio::time::sleep(Duration::from_secs(7)).await;
            traffic.touch();
        };
        tokio::join!(waiting, activity);
        assert_eq!(start.elapsed(), Duration::from_secs(17));
    }

    /// A timer registered with another waker (the future moved between
    /// tasks, or is polled inside a combinator) is polled again, so the
    /// task that waits now is the one woken.
    #[tokio::test(start_paused = true)]
    async fn the_idle_timer_wakes_the_task_that_polls_it_last() {
        let idle = Duration::from_secs(10);
        let traffic = Traffic::new();
        let start = Instant::now();
        let sleep = std::pin::pin!(tokio::time::sleep(idle));
        let mut timer = IdleTimer::new(idle, &traffic, sleep);
        let mut other = Context::from_waker(Waker::noop());
        assert!(timer.poll(&mut other).is_pending());
        let waited = tokio::time::timeout(
            Duration::from_secs(60),
            std::future::poll_fn(|cx| timer.poll(cx)),
        )
        .await;
        assert!(waited.is_ok(), "the idle timer never woke this task");
        assert_eq!(start.elapsed(), idle);
    }

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

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Every relayed connection's task is this future: 7,784 bytes in a
    /// test build while connecting upstream and the fault layer sat in it
    /// inline (each connection kept their room, and spawning copied it),
    /// 2,720 since both are boxed, 1,624 since the pipe and the idle deadline are one
    /// hand-written future (session 5), 1,336 with one `async fn` from
    /// accept to close and a plain TCP upstream's smaller connect (session
    /// 6; `serve` boxes it).
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let conn = crate::service::loopback_conn().await;
        // Never connected: only the future's size is measured (the one
        // `serve` boxes).
        let upstream: Endpoint = "tcp://127.0.0.1:9".parse().unwrap();
        let service = RelayService::new(RelayConfig::new(upstream)).unwrap();
        let future = handle(conn, service.config.clone(), service.upstream.clone());
        let size = std::mem::size_of_val(&future);
        eprintln!("relay connection future: {size} bytes");
        assert!(size <= 1536, "{size} bytes");
    }
}
