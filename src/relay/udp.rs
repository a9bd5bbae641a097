//! `netcrab relay udp://LISTEN udp://UPSTREAM`: a datagram relay with a
//! session per client address.
//!
//! # Sessions
//!
//! The first datagram from a client address opens a session: a UDP socket
//! of its own, bound (to `-s`/`-p` if given) and connected to the upstream,
//! so the upstream sees one source port per client and every reply that
//! socket receives belongs to that client alone. Replies go back to the
//! client from the listening socket, so the client sees the address it sent
//! to. A session closes when nothing moves either way for the idle timeout
//! (`--udp-idle`), at shutdown, or at the drain timeout.
//!
//! At the session limit a new client's datagrams are dropped and counted;
//! no session is evicted to make room. UDP source addresses cost nothing to
//! forge: with eviction, a flood of forged sources would close every real
//! client's session over and over (each one's next datagram then reaching
//! the upstream from a new port, which breaks DNS, QUIC, games and VPNs
//! alike); with drops, the clients already served carry on and newcomers
//! get in as sessions expire. Linux conntrack (table full) and Envoy's UDP
//! proxy (its session circuit breaker) behave the same way.
//!
//! # Tasks and buffers
//!
//! Every task of a relay runs on one thread: a thread of its own with a
//! single-threaded runtime when the caller's runtime has several workers
//! (so a datagram handed from the listening task to a session's task, or
//! back, never wakes another thread), else the caller's.
//!
//! One task reads the listening socket and owns the session table (a hash
//! map, plus a heap of expiry times checked lazily: a datagram only stores
//! the time into the session, the heap is touched when a deadline comes);
//! each session has one task reading its upstream socket. Nothing is
//! allocated per datagram: the listening task has one receive buffer, and
//! session tasks borrow a per-thread buffer between readiness and the send,
//! so an idle session costs no buffer at all. A relay never queues: a
//! datagram the kernel will not take at once (a full send buffer, an error)
//! is dropped and counted, as a router would, and neither direction can
//! stall the other or another client. Both receive loops take what is
//! waiting in one recvmmsg(2) ([`BATCH`] datagrams at most on the listening
//! socket) and stop when a call comes back short, without the extra call
//! that would only return `EAGAIN`. Sends stay one system call per
//! datagram: the datagrams of one batch go to different sockets (up) or
//! rarely to one client (down).
//!
//! # Faults
//!
//! Every datagram passes through [`DatagramFilter::forward`] with its
//! direction before it is sent: forward it, drop it, or delay it. The relay
//! is generic over the filter, so with [`NoFaults`] the call compiles away.
//!
//! # Shutdown
//!
//! Like the stream relay's: at the first SIGINT/SIGTERM the listening
//! socket is no longer read; sessions with nothing outstanding (their last
//! datagram was a reply) close at once; sessions waiting for a reply get
//! it, or the drain timeout, whichever comes first.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use socket2::{SockAddr, SockRef};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result, fmt_duration};
use crate::faults::control::FaultState;
use crate::faults::{DatagramVerdict, Faults};
use crate::pipe::Dir;
use crate::transport::Source;
use crate::transport::udp::{RecvBatch, SendBatch, recv_ready, send_batch};

/// Datagrams the listening socket's task reads per wake-up, in one
/// recvmmsg(2), before it looks at its timers and other tasks run.
pub const BATCH: usize = crate::transport::udp::BATCH;
/// The most bytes held in delayed datagrams at once ([`Verdict::Delay`]);
/// past it, a datagram to delay is dropped and counted.
pub const MAX_DELAYED_BYTES: u64 = 16 << 20;
/// At most one log line per this long about datagrams dropped at the
/// session limit, or sessions that could not be opened.
const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
/// The pause after a receive error on the listening socket, so a
/// persistent one cannot spin.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(5);

/// Everything the UDP relay needs besides the listening socket.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct UdpRelayConfig {
    /// Where each client's datagrams go (resolved once, at start).
    pub upstream: SocketAddr,
    /// The local address and port sessions' upstream sockets bind to
    /// (`-s`, `-p`; with a port, only one session can exist at a time).
    pub source: Source,
    /// A session closes when no datagram has moved either way for this
    /// long (`--udp-idle`).
    pub idle_timeout: Duration,
    /// The most sessions at once (`--max-conns`); at the limit a new
    /// client's datagrams are dropped and counted.
    pub max_sessions: usize,
    /// At shutdown, how long sessions waiting for a reply may wait.
    pub drain_timeout: Duration,
}

impl UdpRelayConfig {
    /// A configuration with the command's defaults for `upstream`: sessions
    /// idle for 60 s close, at most 1024 at once, a 10 s drain.
    pub fn new(upstream: SocketAddr) -> UdpRelayConfig {
        UdpRelayConfig {
            upstream,
            source: Source::default(),
            idle_timeout: Duration::from_secs(60),
            max_sessions: 1024,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// What the UDP relay did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdpRelayReport {
    /// Sessions opened.
    pub sessions: u64,
    /// Datagrams sent to the upstream.
    pub datagrams_up: u64,
    /// Datagrams sent back to clients.
    pub datagrams_down: u64,
    /// Datagrams from new clients dropped at the session limit.
    pub dropped_at_limit: u64,
    /// Datagrams that could not be sent (the send buffer full, an error,
    /// or no upstream socket could be opened for a new client).
    pub unsent: u64,
    /// ICMP port-unreachable reports from the upstream ("connection
    /// refused"): nothing listens there at the moment.
    pub refused: u64,
    /// Datagrams dropped by the [filter](DatagramFilter) (faults).
    pub filtered: u64,
    /// Sessions still waiting for a reply when the drain timeout ran out.
    pub closed_at_drain: u64,
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it on now.
    Forward,
    /// Drop it (counted as filtered).
    Drop,
    /// Send it on after this long (the datagram is copied; at most
    /// [`MAX_DELAYED_BYTES`] are held at once).
    Delay(Duration),
}

/// A per-datagram decision: the seam for fault injection. `open` is
/// called once per session (a fault can pick the sessions it affects
/// there), `forward` for every datagram, in either direction, before it is
/// sent. Both run on the relay's receive paths: they must not block.
pub trait DatagramFilter: Send + Sync + 'static {
    /// What the filter keeps per session.
    type Session: Send + Sync + 'static;
    /// Called when a session opens for `client`.
    fn open(&self, client: SocketAddr) -> Self::Session;
    /// What to do with `datagram`, going `dir` in `session`.
    fn forward(&self, session: &Self::Session, dir: Dir, datagram: &[u8]) -> Verdict;
}

/// No faults: every datagram is forwarded, and the calls compile away.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

impl DatagramFilter for NoFaults {
    type Session = ();

    #[inline(always)]
    fn open(&self, _client: SocketAddr) {}

    #[inline(always)]
    fn forward(&self, _session: &(), _dir: Dir, _datagram: &[u8]) -> Verdict {
        Verdict::Forward
    }
}

/// Injected faults (`--latency`, `--jitter`, `--drop`, `--blackhole`,
/// `--fault-rate`, …): each session draws the faults in force when it
/// opens (or none, when its roll against the fault rate spares it), and
/// each datagram gets [`Faults::datagram`]'s verdict.
#[derive(Debug, Clone)]
pub struct FaultFilter(pub Arc<FaultState>);

impl DatagramFilter for FaultFilter {
    type Session = Option<Arc<Faults>>;

    fn open(&self, _client: SocketAddr) -> Option<Arc<Faults>> {
        self.0.for_new_connection()
    }

    fn forward(&self, session: &Option<Arc<Faults>>, dir: Dir, _datagram: &[u8]) -> Verdict {
        let Some(faults) = session else {
            return Verdict::Forward;
        };
        match faults.datagram(dir, fastrand::f64(), fastrand::f64()) {
            DatagramVerdict::Forward => Verdict::Forward,
            DatagramVerdict::Drop => Verdict::Drop,
            DatagramVerdict::Delay(d) => Verdict::Delay(d),
        }
    }
}

/// Relays datagrams from `socket` to the configured upstream, a session per
/// client, until `shutdown` is cancelled, then drains.
pub async fn run(
    socket: UdpSocket,
    config: UdpRelayConfig,
    shutdown: CancellationToken,
) -> Result<UdpRelayReport> {
    run_filtered(socket, config, NoFaults, shutdown).await
}

/// [`run`], with every datagram passed through `filter`.
///
/// Called on a multi-threaded runtime, the relay runs on a thread of its
/// own with a single-threaded runtime (its tasks never wake one another
/// across threads); on a single-threaded runtime, on that runtime.
pub async fn run_filtered<F: DatagramFilter>(
    socket: UdpSocket,
    config: UdpRelayConfig,
    filter: F,
    shutdown: CancellationToken,
) -> Result<UdpRelayReport> {
    if config.max_sessions == 0 {
        return Err(Error::usage("the session limit must be at least 1"));
    }
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::CurrentThread => {
            run_here(socket, config, filter, shutdown).await
        }
        _ => run_on_thread(socket, config, filter, shutdown).await,
    }
}

/// The relay on a thread of its own, with a single-threaded runtime: the
/// listening task and every session's task then run on that one thread,
/// so handing a datagram from one to another never wakes another thread
/// (on a multi-threaded runtime they land on different workers, and each
/// datagram cost a futex(2) wake or two). Cancelling `shutdown`, or
/// dropping this future, makes it drain and stop.
async fn run_on_thread<F: DatagramFilter>(
    socket: UdpSocket,
    config: UdpRelayConfig,
    filter: F,
    shutdown: CancellationToken,
) -> Result<UdpRelayReport> {
    let socket = socket.into_std().map_err(|e| Error::io("relay udp", e))?;
    let stop = shutdown.child_token();
    let _stop_on_drop = stop.clone().drop_guard();
    let (done, report) = tokio::sync::oneshot::channel();
    let thread = std::thread::Builder::new()
        .name("netcrab-udp-relay".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::io("start the relay's runtime", e))
                .and_then(|runtime| {
                    runtime.block_on(async move {
                        let socket =
                            UdpSocket::from_std(socket).map_err(|e| Error::io("relay udp", e))?;
                        run_here(socket, config, filter, stop).await
                    })
                });
            let _ = done.send(result);
        })
        .map_err(|e| Error::io("start the relay's thread", e))?;
    match report.await {
        Ok(result) => result,
        // The thread ended without a report: it panicked.
        Err(_) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => Err(Error::io(
                "relay udp",
                io::Error::other("the relay's thread ended without a report"),
            )),
        },
    }
}

/// [`run_filtered`] on the caller's runtime.
async fn run_here<F: DatagramFilter>(
    socket: UdpSocket,
    config: UdpRelayConfig,
    filter: F,
    shutdown: CancellationToken,
) -> Result<UdpRelayReport> {
    let shared = Arc::new(Shared {
        listen: socket,
        upstream: config.upstream,
        filter,
        epoch: Instant::now(),
        draining: AtomicBool::new(false),
        filtered: AtomicU64::new(0),
        delayed_bytes: AtomicU64::new(0),
    });
    let mut relay = Relay {
        shared,
        table: SessionTable::new(config.idle_timeout, config.max_sessions),
        config,
        report: UdpRelayReport::default(),
        limit_log: RateLog::default(),
        open_log: RateLog::default(),
    };
    relay.serve(&shutdown).await;
    Ok(relay.finish().await)
}

/// What every task of one relay shares.
struct Shared<F: DatagramFilter> {
    /// The listening socket: read by the relay's task, written by every
    /// session's task.
    listen: UdpSocket,
    upstream: SocketAddr,
    filter: F,
    /// Activity times are stored as nanoseconds since this.
    epoch: Instant,
    /// Set at shutdown: a session task ends after its next reply.
    draining: AtomicBool,
    /// Datagrams the filter dropped (or that were over the delay budget).
    filtered: AtomicU64,
    /// Bytes held in delayed datagrams.
    delayed_bytes: AtomicU64,
}

impl<F: DatagramFilter> Shared<F> {
    /// Nanoseconds since the epoch: what sessions store as their last
    /// activity.
    fn ticks(&self, now: Instant) -> u64 {
        u64::try_from(now.duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Puts `datagram` through the filter, then sends it `dir` with
    /// `send`; counts what happened in `stats`.
    fn pass(
        self: &Arc<Self>,
        session: &Arc<Session<F>>,
        dir: Dir,
        datagram: &[u8],
        send: fn(&Self, &Session<F>, &[u8]) -> io::Result<usize>,
    ) {
        if self.screen(session, dir, datagram, send) {
            self.sent(session, dir, datagram.len(), send(self, session, datagram));
        }
    }

    /// Puts `datagram` through the filter: whether to send it now. A
    /// dropped one is counted, a delayed one is sent later with `send`.
    fn screen(
        self: &Arc<Self>,
        session: &Arc<Session<F>>,
        dir: Dir,
        datagram: &[u8],
        send: fn(&Self, &Session<F>, &[u8]) -> io::Result<usize>,
    ) -> bool {
        match self.filter.forward(&session.filter, dir, datagram) {
            Verdict::Forward => true,
            Verdict::Drop => {
                self.filtered.fetch_add(1, Ordering::Relaxed);
                false
            }
            Verdict::Delay(delay) => {
                self.delay(session, dir, datagram, delay, send);
                false
            }
        }
    }

    /// Holds a copy of `datagram` for `delay`, then sends it, unless
    /// [`MAX_DELAYED_BYTES`] are held already.
    fn delay(
        self: &Arc<Self>,
        session: &Arc<Session<F>>,
        dir: Dir,
        datagram: &[u8],
        delay: Duration,
        send: fn(&Self, &Session<F>, &[u8]) -> io::Result<usize>,
    ) {
        let len = datagram.len() as u64;
        let held = self.delayed_bytes.fetch_add(len, Ordering::Relaxed);
        if held + len > MAX_DELAYED_BYTES {
            self.delayed_bytes.fetch_sub(len, Ordering::Relaxed);
            self.filtered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copy = datagram.to_vec();
        let (shared, session) = (self.clone(), session.clone());
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let result = send(&shared, &session, &copy);
            shared.sent(&session, dir, copy.len(), result);
            shared.delayed_bytes.fetch_sub(len, Ordering::Relaxed);
        });
    }

    /// [`pass`](Self::pass) for a batch of replies from `session`'s
    /// upstream: the ones the filter forwards go to the client in one
    /// sendmmsg(2) (more when they do not fit in `out`), each counted as
    /// [`send_down`](Self::send_down)'s would be. Never waits: a reply the
    /// kernel does not take at once is counted as not sent.
    fn pass_down_batch(
        self: &Arc<Self>,
        session: &Arc<Session<F>>,
        replies: &RecvBatch,
        out: &mut SendBatch,
    ) {
        out.clear();
        for (datagram, _) in replies.iter() {
            if !self.screen(session, Dir::Down, datagram, Self::send_down) {
                continue;
            }
            if out.room() < datagram.len() || out.is_full() {
                self.flush_down(session, out);
            }
            let buf = out.buf_mut();
            let start = buf.len();
            buf.extend_from_slice(datagram);
            out.push(start, session.client);
        }
        self.flush_down(session, out);
    }

    /// Sends and counts the replies gathered in `out`, then empties it.
    fn flush_down(&self, session: &Session<F>, out: &mut SendBatch) {
        let mut next = 0;
        while let Some((datagram, _)) = out.get(next) {
            let len = datagram.len();
            match send_batch(&self.listen, out, next) {
                Ok(n) if n > 0 => {
                    for i in next..next + n {
                        let len = out.get(i).map_or(0, |(d, _)| d.len());
                        self.sent(session, Dir::Down, len, Ok(len));
                    }
                    next += n;
                }
                // The reply at `next` failed (the ones before it went), or
                // none went without an error: it is not sent either way.
                result => {
                    let err = result
                        .err()
                        .unwrap_or_else(|| io::ErrorKind::WriteZero.into());
                    self.sent(session, Dir::Down, len, Err(err));
                    next += 1;
                }
            }
        }
        out.clear();
    }

    /// Counts the outcome of sending a datagram of `len` bytes `dir`.
    fn sent(&self, session: &Session<F>, dir: Dir, len: usize, result: io::Result<usize>) {
        match result {
            Ok(_) => session.stats.add(dir, len),
            Err(err) if err.raw_os_error() == Some(libc::ECONNREFUSED) => {
                session.stats.refused.fetch_add(1, Ordering::Relaxed);
            }
            Err(err) => {
                session.stats.unsent.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    "{} -> udp://{}: datagram of {len} bytes {} not sent: {}",
                    session.client,
                    self.upstream,
                    dir_name(dir),
                    Error::io("send", err)
                );
            }
        }
    }

    /// Counts and logs an error the upstream socket reported: an ICMP
    /// port unreachable for an earlier datagram ("refused": nothing
    /// listens there, yet) or another ICMP error. The session stays.
    fn upstream_error(&self, session: &Session<F>, err: io::Error) {
        if err.raw_os_error() == Some(libc::ECONNREFUSED) {
            session.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                "{} -> udp://{}: refused (nothing listens there)",
                session.client,
                self.upstream
            );
        } else {
            session.stats.unsent.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                "{} -> udp://{}: {}",
                session.client,
                self.upstream,
                Error::io("upstream", err)
            );
        }
    }

    /// Sends a client's datagram to the upstream. The send is one
    /// non-blocking system call: tokio's `try_send` would first consult its
    /// readiness cache, which knows nothing of a socket it has not yet
    /// seen writable (a new session's first datagram would be dropped);
    /// the relay never waits to write, so it needs no readiness.
    fn send_up(&self, session: &Session<F>, datagram: &[u8]) -> io::Result<usize> {
        SockRef::from(&session.upstream).send(datagram)
    }

    /// Sends a reply to its client, from the listening socket (one
    /// non-blocking system call, as [`send_up`](Self::send_up)).
    fn send_down(&self, session: &Session<F>, datagram: &[u8]) -> io::Result<usize> {
        SockRef::from(&self.listen).send_to(datagram, &session.client_addr)
    }
}

/// "up" or "down", for logs.
fn dir_name(dir: Dir) -> &'static str {
    match dir {
        Dir::Up => "up",
        Dir::Down => "down",
    }
}

/// One client's session: its upstream socket, counts and filter state.
struct Session<F: DatagramFilter> {
    client: SocketAddr,
    /// `client` as the system calls take it.
    client_addr: SockAddr,
    upstream: UdpSocket,
    /// The upstream socket's address (the source port the upstream sees).
    local: SocketAddr,
    stats: SessionStats,
    filter: F::Session,
    opened: Instant,
}

/// A session's counts; atomics, since both directions' tasks add to them.
#[derive(Default)]
struct SessionStats {
    up_datagrams: AtomicU64,
    up_bytes: AtomicU64,
    down_datagrams: AtomicU64,
    down_bytes: AtomicU64,
    unsent: AtomicU64,
    refused: AtomicU64,
    /// Nanoseconds since the relay's epoch when a datagram last moved.
    last_active: AtomicU64,
    /// Whether the last datagram went up (a reply is outstanding).
    awaiting_reply: AtomicBool,
}

impl SessionStats {
    fn add(&self, dir: Dir, len: usize) {
        let (datagrams, bytes) = match dir {
            Dir::Up => (&self.up_datagrams, &self.up_bytes),
            Dir::Down => (&self.down_datagrams, &self.down_bytes),
        };
        datagrams.fetch_add(1, Ordering::Relaxed);
        bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

/// A table slot: the session and its task.
struct Slot<F: DatagramFilter> {
    session: Arc<Session<F>>,
    task: JoinHandle<()>,
}

impl<F: DatagramFilter> Activity for Slot<F> {
    fn last_active(&self) -> u64 {
        self.session.stats.last_active.load(Ordering::Relaxed)
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionEnd {
    /// Nothing moved either way for the idle timeout.
    Idle(Duration),
    /// Closed at shutdown with nothing outstanding, or after its reply.
    Shutdown,
    /// Still waiting for a reply when the drain timeout ran out.
    Drained,
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Idle(d) => {
                write!(f, "idle timeout (nothing moved for {})", fmt_duration(*d))
            }
            SessionEnd::Shutdown => f.write_str("closed at shutdown"),
            SessionEnd::Drained => f.write_str("closed at the drain timeout"),
        }
    }
}

/// The relay's task: the listening socket and the session table.
struct Relay<F: DatagramFilter> {
    shared: Arc<Shared<F>>,
    table: SessionTable<Slot<F>>,
    config: UdpRelayConfig,
    /// Sessions opened, drops, and the counts of closed sessions.
    report: UdpRelayReport,
    limit_log: RateLog,
    open_log: RateLog,
}

impl<F: DatagramFilter> Relay<F> {
    /// Reads the listening socket and expires sessions until `shutdown`.
    async fn serve(&mut self, shutdown: &CancellationToken) {
        let mut batch = RecvBatch::new(BATCH);
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(timer);
        // The deadline the timer is set to; none while the table is empty.
        let mut armed = None;
        // Made once: each `cancelled()` registers a waiter under a lock.
        let cancelled = shutdown.cancelled();
        tokio::pin!(cancelled);
        loop {
            let next = self.table.next_expiry(self.shared.epoch);
            if next != armed {
                if let Some(at) = next {
                    timer.as_mut().reset(at);
                }
                armed = next;
            }
            tokio::select! {
                biased;
                _ = &mut cancelled => break,
                _ = &mut timer, if armed.is_some() => self.expire(Instant::now()),
                ready = self.shared.listen.readable() => {
                    if let Err(err) = ready {
                        self.pause_after(err, shutdown).await;
                        continue;
                    }
                    // Up to BATCH datagrams in one recvmmsg(2); a short
                    // batch clears the readiness (no EAGAIN round).
                    match recv_ready(&self.shared.listen, &mut batch) {
                        Ok(_) => {
                            for (datagram, from) in batch.iter() {
                                self.client_datagram(from, datagram);
                            }
                        }
                        Err(err) => self.pause_after(err, shutdown).await,
                    }
                }
            }
        }
    }

    /// After a receive error (a resource shortage; never fatal), a pause.
    async fn pause_after(&self, err: io::Error, shutdown: &CancellationToken) {
        tracing::debug!("{}", Error::io("receive", err));
        tokio::select! {
            _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
            _ = shutdown.cancelled() => {}
        }
    }

    /// Forwards a client's datagram, opening its session if it is new.
    fn client_datagram(&mut self, client: SocketAddr, datagram: &[u8]) {
        let now = Instant::now();
        if self.table.get(&client).is_none() && !self.open(client, now) {
            return;
        }
        let Some(slot) = self.table.get(&client) else {
            return;
        };
        let stats = &slot.session.stats;
        stats
            .last_active
            .store(self.shared.ticks(now), Ordering::Relaxed);
        stats.awaiting_reply.store(true, Ordering::SeqCst);
        self.shared
            .pass(&slot.session, Dir::Up, datagram, Shared::<F>::send_up);
    }

    /// Opens a session for `client`, unless the table is full or no
    /// upstream socket can be had (then the datagram is dropped and
    /// counted). Returns whether it did.
    fn open(&mut self, client: SocketAddr, now: Instant) -> bool {
        if self.table.is_full() {
            self.report.dropped_at_limit += 1;
            self.limit_log.dropped(now, |n| {
                tracing::warn!(
                    "session limit reached ({}): {n} datagram(s) from new clients dropped, the last from {client}; they get in as sessions expire",
                    self.config.max_sessions
                )
            });
            return false;
        }
        let upstream = match bind_connected(self.config.upstream, &self.config.source) {
            Ok(socket) => socket,
            Err(err) => {
                self.report.unsent += 1;
                self.open_log.dropped(now, |n| {
                    tracing::warn!(
                        "{client} -> udp://{}: no upstream socket ({err}); {n} datagram(s) dropped",
                        self.config.upstream
                    )
                });
                return false;
            }
        };
        let local = upstream.local_addr().unwrap_or(self.config.upstream);
        let session = Arc::new(Session {
            client,
            client_addr: SockAddr::from(client),
            upstream,
            local,
            stats: SessionStats::default(),
            filter: self.shared.filter.open(client),
            opened: now,
        });
        tracing::info!(
            "{client} -> udp://{} via {local}: session opened",
            self.config.upstream
        );
        self.report.sessions += 1;
        let ticks = self.shared.ticks(now);
        session.stats.last_active.store(ticks, Ordering::Relaxed);
        let task = tokio::spawn(replies(self.shared.clone(), session.clone()));
        self.table.insert(client, Slot { session, task }, ticks);
        true
    }

    /// Closes the sessions idle for the idle timeout at `now`.
    fn expire(&mut self, now: Instant) {
        let ticks = self.shared.ticks(now);
        while let Some((_, slot)) = self.table.pop_expired(ticks) {
            slot.task.abort();
            self.closed(&slot.session, SessionEnd::Idle(self.config.idle_timeout));
        }
    }

    /// Logs a closed session and adds its counts to the report.
    fn closed(&mut self, session: &Session<F>, end: SessionEnd) {
        let s = &session.stats;
        let get = |n: &AtomicU64| n.load(Ordering::Relaxed);
        let (up, up_bytes) = (get(&s.up_datagrams), get(&s.up_bytes));
        let (down, down_bytes) = (get(&s.down_datagrams), get(&s.down_bytes));
        self.report.datagrams_up += up;
        self.report.datagrams_down += down;
        self.report.unsent += get(&s.unsent);
        self.report.refused += get(&s.refused);
        if end == SessionEnd::Drained {
            self.report.closed_at_drain += 1;
        }
        let mut problems = String::new();
        if get(&s.refused) > 0 {
            problems += &format!(", {} refused by the upstream", get(&s.refused));
        }
        if get(&s.unsent) > 0 {
            problems += &format!(", {} not sent", get(&s.unsent));
        }
        let elapsed = session.opened.elapsed();
        tracing::info!(
            peer = %session.client,
            upstream = %self.config.upstream,
            datagrams_up = up,
            bytes_up = up_bytes,
            datagrams_down = down,
            bytes_down = down_bytes,
            duration_ms = elapsed.as_millis() as u64,
            outcome = %end,
            "{} -> udp://{} via {}: {end} (up {up} datagram(s) {up_bytes} bytes, down {down} datagram(s) {down_bytes} bytes{problems}, {})",
            session.client,
            self.config.upstream,
            session.local,
            fmt_duration(elapsed),
        );
    }

    /// Shutdown: closes the sessions with nothing outstanding, lets the
    /// others wait for their reply until the drain timeout, and reports.
    async fn finish(mut self) -> UdpRelayReport {
        self.limit_log.flush(|n| {
            tracing::warn!("{n} more datagram(s) from new clients dropped at the session limit")
        });
        self.shared.draining.store(true, Ordering::SeqCst);
        let mut waiting = Vec::new();
        let mut sessions = Vec::new();
        for (_, slot) in self.table.drain() {
            if slot.session.stats.awaiting_reply.load(Ordering::SeqCst) {
                waiting.push(slot);
            } else {
                slot.task.abort();
                // A task in the middle of a poll finishes that poll: a reply
                // it has sent is counted before the session's counts are read.
                let _ = slot.task.await;
                sessions.push((slot.session, SessionEnd::Shutdown));
            }
        }
        let deadline = crate::deadline::after(Instant::now(), self.config.drain_timeout);
        for slot in waiting {
            let Slot { session, mut task } = slot;
            let end = match tokio::time::timeout_at(deadline, &mut task).await {
                Ok(_) => SessionEnd::Shutdown,
                Err(_) => {
                    task.abort();
                    SessionEnd::Drained
                }
            };
            sessions.push((session, end));
        }
        for (session, end) in sessions {
            self.closed(&session, end);
        }
        let mut report = self.report;
        report.filtered = self.shared.filtered.load(Ordering::Relaxed);
        report
    }
}

thread_local! {
    /// The receive buffers of the session tasks running on this thread:
    /// borrowed between a socket's readiness and the send, never across an
    /// await, so sessions hold no buffer of their own.
    static REPLY_BUF: RefCell<RecvBatch> = RefCell::new(RecvBatch::new(REPLY_BATCH));
}

thread_local! {
    /// The replies a session task forwards from one batch, gathered for one
    /// sendmmsg(2) (a session's replies all go to its one client).
    static REPLY_OUT: RefCell<SendBatch> = RefCell::new(SendBatch::with_capacity(REPLY_OUT_BYTES));
}

/// Bytes of replies gathered per sendmmsg(2); a batch with more is sent in
/// several calls.
const REPLY_OUT_BYTES: usize = 64 * 1024;

/// Replies a session task takes per recvmmsg(2): a session's socket hears
/// from one upstream only, so fewer than the listening socket's [`BATCH`].
const REPLY_BATCH: usize = 8;

/// A session's task: relays the upstream's replies to the client. With
/// the relay draining, it ends after a reply.
async fn replies<F: DatagramFilter>(shared: Arc<Shared<F>>, session: Arc<Session<F>>) {
    loop {
        // ERROR too: an ICMP error makes the socket report an error, not
        // readability.
        let ready = match session
            .upstream
            .ready(Interest::READABLE | Interest::ERROR)
            .await
        {
            Ok(ready) => ready,
            Err(err) => {
                tracing::debug!("{}: {}", session.client, Error::io("receive", err));
                tokio::time::sleep(RECV_ERROR_PAUSE).await;
                continue;
            }
        };
        if ready.is_error() {
            // Take the pending error (SO_ERROR clears it), then tokio's
            // readiness for it.
            let _ = session.upstream.try_io(Interest::ERROR, || {
                match SockRef::from(&session.upstream).take_error() {
                    Ok(Some(err)) => shared.upstream_error(&session, err),
                    Ok(None) => {}
                    Err(err) => shared.upstream_error(&session, err),
                }
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
            if !ready.is_readable() {
                continue;
            }
        }
        // A batch of replies in one recvmmsg(2); a short batch clears the
        // readiness (no EAGAIN round).
        let (replied, full) = REPLY_BUF.with(|batch| {
            let mut batch = batch.borrow_mut();
            let received = match recv_ready(&session.upstream, &mut batch) {
                Ok(Some(n)) => n,
                Ok(None) => return (false, false),
                // The pending error, if the receive took it first.
                Err(err) => {
                    shared.upstream_error(&session, err);
                    return (false, false);
                }
            };
            let stats = &session.stats;
            stats
                .last_active
                .store(shared.ticks(Instant::now()), Ordering::Relaxed);
            stats.awaiting_reply.store(false, Ordering::SeqCst);
            if received == 1 {
                if let Some((datagram, _)) = batch.iter().next() {
                    shared.pass(&session, Dir::Down, datagram, Shared::<F>::send_down);
                }
            } else {
                REPLY_OUT
                    .with(|out| shared.pass_down_batch(&session, &batch, &mut out.borrow_mut()));
            }
            (received > 0, received == batch.slots())
        });
        if replied && shared.draining.load(Ordering::SeqCst) {
            return;
        }
        if full {
            // A full batch: let the other sessions have their turn.
            tokio::task::yield_now().await;
        }
    }
}

/// A UDP socket bound to `source` (or the wildcard of the upstream's
/// family) and connected to `upstream`: synchronous system calls only, so
/// the relay's task never waits for a new session.
fn bind_connected(upstream: SocketAddr, source: &Source) -> io::Result<UdpSocket> {
    let socket = std::net::UdpSocket::bind(source.local_for(upstream))?;
    socket.connect(upstream)?;
    socket.set_nonblocking(true)?;
    UdpSocket::from_std(socket)
}

/// Something with a last-activity time, in the relay's ticks.
trait Activity {
    /// Nanoseconds since the relay's epoch of the last datagram.
    fn last_active(&self) -> u64;
}

/// The sessions by client address, with their expiry. A datagram only
/// stores its time into the session; the heap holds one deadline per
/// session, computed when it was pushed, and is corrected lazily: when a
/// deadline comes, a session active since is pushed again with its real
/// deadline, an idle one is removed. Times are nanoseconds since an epoch
/// (pure: no clock is read here).
struct SessionTable<S> {
    sessions: HashMap<SocketAddr, S>,
    expiry: BinaryHeap<Reverse<(u64, SocketAddr)>>,
    idle: u64,
    max: usize,
}

impl<S: Activity> SessionTable<S> {
    /// An empty table for sessions closing after `idle` without
    /// activity, at most `max` of them.
    fn new(idle: Duration, max: usize) -> SessionTable<S> {
        SessionTable {
            sessions: HashMap::new(),
            expiry: BinaryHeap::new(),
            idle: u64::try_from(idle.as_nanos()).unwrap_or(u64::MAX),
            max,
        }
    }

    fn get(&self, client: &SocketAddr) -> Option<&S> {
        self.sessions.get(client)
    }

    fn is_full(&self) -> bool {
        self.sessions.len() >= self.max
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Adds a session opened at `now` (the caller checked
    /// [`is_full`](Self::is_full) and that `client` has none).
    fn insert(&mut self, client: SocketAddr, session: S, now: u64) {
        if let Entry::Vacant(slot) = self.sessions.entry(client) {
            slot.insert(session);
            self.expiry
                .push(Reverse((now.saturating_add(self.idle), client)));
        }
    }

    /// When the earliest deadline in the heap comes (it may turn out to be
    /// a session active since, then nothing expires).
    fn next_expiry(&self, epoch: Instant) -> Option<Instant> {
        let Reverse((at, _)) = self.expiry.peek()?;
        Some(crate::deadline::after(epoch, Duration::from_nanos(*at)))
    }

    /// Removes and returns one session idle for the timeout at `now`, if
    /// any; sessions active since their deadline was set get a new one.
    fn pop_expired(&mut self, now: u64) -> Option<(SocketAddr, S)> {
        while let Some(&Reverse((at, client))) = self.expiry.peek() {
            if at > now {
                return None;
            }
            self.expiry.pop();
            let Some(session) = self.sessions.get(&client) else {
                continue;
            };
            let due = session.last_active().saturating_add(self.idle);
            if due > now {
                self.expiry.push(Reverse((due, client)));
                continue;
            }
            return self.sessions.remove_entry(&client);
        }
        None
    }

    /// Removes every session.
    fn drain(&mut self) -> impl Iterator<Item = (SocketAddr, S)> + '_ {
        self.expiry.clear();
        self.sessions.drain()
    }
}

/// Logs drops at most once per [`DROP_LOG_EVERY`], with the count since.
#[derive(Debug, Default)]
struct RateLog {
    logged_at: Option<Instant>,
    unlogged: u64,
}

impl RateLog {
    /// Counts a drop at `now`; calls `log` with the count if it is time.
    fn dropped(&mut self, now: Instant, log: impl FnOnce(u64)) {
        self.unlogged += 1;
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < DROP_LOG_EVERY)
        {
            return;
        }
        log(self.unlogged);
        self.logged_at = Some(now);
        self.unlogged = 0;
    }

    /// Calls `log` with the drops not logged yet, if any.
    fn flush(&mut self, log: impl FnOnce(u64)) {
        if self.unlogged > 0 {
            log(self.unlogged);
            self.unlogged = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::sync::Mutex;

    use super::*;

    /// A session stand-in whose activity the test sets.
    struct Fake(Cell<u64>);

    impl Activity for Fake {
        fn last_active(&self) -> u64 {
            self.0.get()
        }
    }

    const SEC: u64 = 1_000_000_000;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn table_expires_idle_sessions_and_renews_active_ones_lazily() {
        let mut table = SessionTable::new(Duration::from_secs(60), 10);
        table.insert(addr(1), Fake(Cell::new(0)), 0);
        table.insert(addr(2), Fake(Cell::new(10 * SEC)), 10 * SEC);
        let epoch = Instant::now();
        assert_eq!(
            table.next_expiry(epoch),
            Some(epoch + Duration::from_secs(60))
        );
        assert!(table.pop_expired(59 * SEC).is_none());
        // Session 1 was active at 30 s: at 60 s it gets a new deadline, 90 s.
        table.get(&addr(1)).unwrap().0.set(30 * SEC);
        assert!(table.pop_expired(60 * SEC).is_none());
        assert_eq!(table.len(), 2);
        assert_eq!(
            table.next_expiry(epoch),
            Some(epoch + Duration::from_secs(70))
        );
        // Session 2, idle since 10 s, goes at 70 s; session 1 at 90 s.
        let (gone, _) = table.pop_expired(70 * SEC).unwrap();
        assert_eq!(gone, addr(2));
        assert!(table.pop_expired(89 * SEC).is_none());
        let (gone, _) = table.pop_expired(90 * SEC).unwrap();
        assert_eq!(gone, addr(1));
        assert_eq!(table.len(), 0);
        assert_eq!(table.next_expiry(epoch), None);
    }

    #[test]
    fn table_pops_every_session_due_at_once_and_caps_its_size() {
        let mut table = SessionTable::new(Duration::from_secs(1), 3);
        for port in 1..=3 {
            assert!(!table.is_full());
            table.insert(addr(port), Fake(Cell::new(0)), 0);
        }
        assert!(table.is_full());
        // A second insert for a client that has a session keeps the first.
        table.insert(addr(1), Fake(Cell::new(5 * SEC)), 5 * SEC);
        assert_eq!(table.get(&addr(1)).unwrap().0.get(), 0);
        let mut gone = Vec::new();
        while let Some((client, _)) = table.pop_expired(SEC) {
            gone.push(client.port());
        }
        gone.sort_unstable();
        assert_eq!(gone, [1, 2, 3]);
        assert!(!table.is_full());
        assert_eq!(table.drain().count(), 0);
    }

    #[test]
    fn a_huge_idle_timeout_does_not_overflow() {
        let mut table = SessionTable::new(Duration::MAX, 1);
        table.insert(addr(1), Fake(Cell::new(u64::MAX - 1)), u64::MAX - 1);
        assert!(table.pop_expired(u64::MAX - 1).is_none());
        assert!(table.next_expiry(Instant::now()).is_some());
    }

    #[test]
    fn rate_log_logs_once_per_period_with_the_count() {
        let mut log = RateLog::default();
        let start = Instant::now();
        let mut lines = Vec::new();
        for ms in [0, 1, 2, 9_999, 10_000, 10_001] {
            let now = start + Duration::from_millis(ms);
            log.dropped(now, |n| lines.push(n));
        }
        log.flush(|n| lines.push(n));
        assert_eq!(lines, [1, 4, 1]);
    }

    /// A loopback upstream that answers each datagram with the address it
    /// came from, `|`, and the datagram.
    async fn upstream() -> (Arc<UdpSocket>, SocketAddr) {
        let socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = socket.local_addr().unwrap();
        let echo = socket.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            while let Ok((n, from)) = echo.recv_from(&mut buf).await {
                let reply = [format!("{from}|").as_bytes(), &buf[..n]].concat();
                let _ = echo.send_to(&reply, from).await;
            }
        });
        (socket, addr)
    }

    /// A relay on loopback to `upstream`, run with `filter`.
    async fn start<F: DatagramFilter>(
        upstream: SocketAddr,
        idle: Duration,
        filter: F,
    ) -> (
        SocketAddr,
        CancellationToken,
        JoinHandle<Result<UdpRelayReport>>,
    ) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let mut config = UdpRelayConfig::new(upstream);
        config.idle_timeout = idle;
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_filtered(socket, config, filter, shutdown.clone()));
        (addr, shutdown, task)
    }

    async fn client(relay: SocketAddr) -> UdpSocket {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.connect(relay).await.unwrap();
        socket
    }

    /// Sends `msg` and returns the reply: the upstream's view of the
    /// session's source address, and the echoed datagram.
    async fn ask(socket: &UdpSocket, msg: &str) -> (String, String) {
        socket.send(msg.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 2048];
        let n = tokio::time::timeout(Duration::from_secs(5), socket.recv(&mut buf))
            .await
            .expect("a reply")
            .unwrap();
        let reply = String::from_utf8(buf[..n].to_vec()).unwrap();
        let (from, echoed) = reply.split_once('|').unwrap();
        (from.to_owned(), echoed.to_owned())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_a_multi_threaded_runtime_it_relays_from_its_thread_and_stops_when_dropped() {
        let upstream = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let listen = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = listen.local_addr().unwrap();
        let config = UdpRelayConfig::new(upstream.local_addr().unwrap());
        let relay = tokio::spawn(run(listen, config, CancellationToken::new()));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"up", addr).await.unwrap();
        let mut buf = [0u8; 16];
        let wait = Duration::from_secs(5);
        let (n, session) = tokio::time::timeout(wait, upstream.recv_from(&mut buf))
            .await
            .expect("relayed up")
            .unwrap();
        assert_eq!(&buf[..n], b"up");
        upstream.send_to(b"down", session).await.unwrap();
        let (n, from) = tokio::time::timeout(wait, client.recv_from(&mut buf))
            .await
            .expect("relayed down")
            .unwrap();
        assert_eq!((&buf[..n], from), (&b"down"[..], addr));
        // Dropping the future drains and stops the relay's thread, which
        // closes the listening socket.
        relay.abort();
        let _ = relay.await;
        let mut freed = false;
        for _ in 0..500 {
            if std::net::UdpSocket::bind(addr).is_ok() {
                freed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(freed, "the listening socket is closed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_outlives_activity_and_expires_after_the_idle_timeout() {
        let (_up, up_addr) = upstream().await;
        let (relay, shutdown, task) = start(up_addr, Duration::from_secs(60), NoFaults).await;
        let c = client(relay).await;
        let (first, echoed) = ask(&c, "one").await;
        assert_eq!(echoed, "one");
        // Active every 50 s: the same session (the same source port).
        for msg in ["two", "three"] {
            tokio::time::sleep(Duration::from_secs(50)).await;
            assert_eq!(ask(&c, msg).await.0, first);
        }
        // Idle for longer than 60 s: a new session.
        tokio::time::sleep(Duration::from_secs(61)).await;
        let (second, _) = ask(&c, "four").await;
        assert_ne!(second, first);
        shutdown.cancel();
        let report = task.await.unwrap().unwrap();
        assert_eq!(report.sessions, 2);
        assert_eq!((report.datagrams_up, report.datagrams_down), (4, 4));
        assert_eq!(report.closed_at_drain, 0);
    }

    /// Drops client datagrams saying "drop", delays replies by a second,
    /// and records what it saw.
    #[derive(Default)]
    struct Faulty(Mutex<Vec<(SocketAddr, Dir, String)>>);

    impl DatagramFilter for Arc<Faulty> {
        type Session = SocketAddr;

        fn open(&self, client: SocketAddr) -> SocketAddr {
            client
        }

        fn forward(&self, client: &SocketAddr, dir: Dir, datagram: &[u8]) -> Verdict {
            let text = String::from_utf8_lossy(datagram).into_owned();
            let drop = text == "drop";
            self.0.lock().unwrap().push((*client, dir, text));
            match dir {
                Dir::Up if drop => Verdict::Drop,
                Dir::Up => Verdict::Forward,
                Dir::Down => Verdict::Delay(Duration::from_secs(1)),
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn every_datagram_passes_the_filter_with_its_direction() {
        let (_up, up_addr) = upstream().await;
        let faulty = Arc::new(Faulty::default());
        let (relay, shutdown, task) = start(up_addr, Duration::from_secs(60), faulty.clone()).await;
        let c = client(relay).await;
        c.send(b"drop").await.unwrap();
        let sent = Instant::now();
        let (_, echoed) = ask(&c, "keep").await;
        assert_eq!(echoed, "keep");
        assert!(sent.elapsed() >= Duration::from_secs(1), "not delayed");
        shutdown.cancel();
        let report = task.await.unwrap().unwrap();
        assert_eq!(report.filtered, 1);
        assert_eq!((report.datagrams_up, report.datagrams_down), (1, 1));
        let me = c.local_addr().unwrap();
        let seen = faulty.0.lock().unwrap().clone();
        let dirs: Vec<_> = seen.iter().map(|(c, d, _)| (*c, *d)).collect();
        assert_eq!(dirs, [(me, Dir::Up), (me, Dir::Up), (me, Dir::Down)]);
        assert!(seen[2].2.ends_with("|keep"));
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_waits_for_an_outstanding_reply_until_the_drain_timeout() {
        // An upstream that never answers.
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (relay, shutdown, task) = start(
            silent.local_addr().unwrap(),
            Duration::from_secs(60),
            NoFaults,
        )
        .await;
        let c = client(relay).await;
        c.send(b"anyone?").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, _) = silent.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"anyone?");
        shutdown.cancel();
        let stopping = Instant::now();
        let report = task.await.unwrap().unwrap();
        // UdpRelayConfig::new's drain timeout: 10 s.
        assert_eq!(stopping.elapsed(), Duration::from_secs(10));
        assert_eq!(report.closed_at_drain, 1);
    }
}
