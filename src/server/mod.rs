//! The accept loop every listening command shares (`serve`, `relay`, ...):
//! connection limit, accept-error backoff, graceful shutdown. It knows no
//! service: it runs any [`Service`] on each connection it accepts.
//!
//! [`run`] takes an already bound [`Listener`], a shutdown token and the
//! service (the mini-redis shape), so tests bind port 0 and decide when
//! shutdown happens. The connection tasks live in a `JoinSet`, whose size
//! is the connection count the limit applies to. Each connection gets a
//! slot in a table of [`Activity`] clocks: the service says what progress
//! is and when it waits between messages. At the limit, the loop waits for
//! a task to end before it accepts again, or, for a service that [evicts
//! idle connections](Service::evicts_idle), accepts the next connection
//! and closes the one that has made no progress for the longest time.
//! Accept errors back off instead of spinning ([`accept`]). The loop runs
//! in a task of its own, on a runtime worker rather than on the caller's
//! thread (the binary's `block_on` thread): connection tasks it spawns go
//! to that worker's queue, and no thread outside the pool is woken per
//! accept (measured: 17% less server CPU per connection under churn, see
//! docs/BENCHMARKS.md); dropping [`run`] ends that task. On shutdown the
//! loop stops accepting, closes the connections waiting between messages
//! at once, lets the others finish for the drain timeout, then closes the
//! rest.
//!
//! Every open connection costs its task, so the task is the service's
//! future itself for TCP and Unix connections (nothing else is kept per
//! connection), and [`Service::serve`] is called in the accept loop: it
//! should only build its future.
//!
//! Access rules ([`ServerLimits::access`], `--allow`/`--deny`) are checked
//! right after accept, before anything else: a refused connection is
//! dropped (closed) in the loop itself, with no task, no handshake and a
//! rate-limited log line.
//!
//! A TLS handshake runs in the connection's task, under its own timeout
//! and counting against the connection limit: a slow or silent client delays
//! only itself. A failed handshake is logged with its reason and the
//! service never sees that connection.
//!
//! With [`ServerLimits::accept_proxy`], the connection's task first reads
//! its PROXY protocol header ([`proxy_protocol::accept`]), under the same
//! rules: the service sees the connection only with a valid header, and
//! with the client address it carried as the peer.

pub mod accept;
mod activity;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::{self, AbortHandle, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

use crate::access::AccessList;
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::proxy_protocol;
use crate::service::{CloseReason, Conn, Deadlines, NoObserver, Observer, Service};
use crate::transport::{Accepted, Listener, PeerAddr, SocketOptions};
use accept::{AcceptBackoff, Action};
pub use activity::Activity;
use activity::ActivityTable;

/// The limits of a listening server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerLimits {
    /// Connections handled at once. Past it, new connections wait in the
    /// kernel's backlog until a slot frees (and the peer's connect times
    /// out if none does); for a service that [evicts idle
    /// connections](Service::evicts_idle), a new connection is accepted and
    /// replaces the connection idle longest, if one is idle enough.
    pub max_conns: usize,
    /// How long connections in the middle of a message may finish after
    /// shutdown starts (those between messages close at once).
    pub drain_timeout: Duration,
    /// Each connection's idle timeout (see [`Deadlines`]).
    pub idle_timeout: Option<Duration>,
    /// Options set on every accepted socket.
    pub socket: SocketOptions,
    /// `--accept-proxy`: every connection starts with a PROXY protocol
    /// header, to be read within this long (see
    /// [`proxy_protocol::accept`]); `None`: no header is expected.
    pub accept_proxy: Option<Duration>,
    /// Who may connect (`--allow`, `--deny`): checked right after accept,
    /// before any handshake; a refused connection is closed at once.
    /// `None` lets everyone in. Unix peers have no address and are not
    /// checked.
    pub access: Option<Arc<AccessList>>,
    /// `--once`: serve the first connection (the first the access rules
    /// let in), stop listening as soon as it is accepted, and return when
    /// it ends, with its outcome in [`ServerReport::failure`].
    pub once: bool,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_conns: 4096,
            drain_timeout: Duration::from_secs(10),
            idle_timeout: Some(Duration::from_secs(300)),
            socket: SocketOptions::default(),
            accept_proxy: None,
            access: None,
            once: false,
        }
    }
}

/// What a server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections closed at the connection limit to make room for a new
    /// one (see [`Service::evicts_idle`]).
    pub evicted: u64,
    /// Connections refused by the access rules.
    pub denied: u64,
    /// Connections waiting between messages when shutdown started, closed
    /// at once.
    pub closed_at_shutdown: usize,
    /// Connections still open when the drain timeout ran out, closed by us.
    pub closed_at_drain: usize,
    /// With [`ServerLimits::once`]: how the one connection failed (its TLS
    /// handshake, or the service's report through [`Observer::failed`]);
    /// `None` when it ended cleanly (or none was served).
    pub failure: Option<Failure>,
}

/// How a connection failed, kept for the exit code of `--once` (an
/// [`Error`] without its source, which cannot be cloned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind, which decides the exit code.
    pub kind: ErrorKind,
    /// The error's message.
    pub message: String,
}

impl Failure {
    /// The failure of `err`.
    pub fn of(err: &Error) -> Failure {
        Failure {
            kind: err.kind(),
            message: err.to_string(),
        }
    }

    /// The failure as an error to return (its message as it was shown).
    pub fn into_error(self) -> Error {
        Error::new(self.kind, String::new()).with_detail(self.message)
    }
}

/// The observer every connection gets: the caller's, plus, with
/// [`ServerLimits::once`], where the connection's failure is recorded.
#[derive(Clone)]
struct Recording<O> {
    inner: O,
    failure: Option<Arc<Mutex<Option<Failure>>>>,
}

impl<O: Observer> Observer for Recording<O> {
    #[inline]
    fn received(&self, n: usize) {
        self.inner.received(n);
    }

    #[inline]
    fn sent(&self, n: usize) {
        self.inner.sent(n);
    }

    fn closed(&self, peer: &PeerAddr, received: u64, sent: u64) {
        self.inner.closed(peer, received, sent);
    }

    fn failed(&self, err: &Error) {
        self.inner.failed(err);
        if let Some(failure) = &self.failure
            && let Ok(mut slot) = failure.lock()
        {
            slot.get_or_insert_with(|| Failure::of(err));
        }
    }

    // Every other method is forwarded as is: a method left out here
    // would silently lose the caller's events (metrics).

    fn ended(&self, reason: CloseReason) {
        self.inner.ended(reason);
    }

    fn accepted(&self) {
        self.inner.accepted();
    }

    fn connection(&self) -> Self {
        Recording {
            inner: self.inner.connection(),
            failure: self.failure.clone(),
        }
    }

    fn denied(&self) {
        self.inner.denied();
    }

    fn accept_error(&self, err: &std::io::Error) {
        self.inner.accept_error(err);
    }

    fn handshake_failed(&self, reason: &'static str) {
        self.inner.handshake_failed(reason);
    }

    fn upstream_connect(&self, result: std::result::Result<(), ErrorKind>, elapsed: Duration) {
        self.inner.upstream_connect(result, elapsed);
    }

    fn child_started(&self) {
        self.inner.child_started();
    }

    fn child_exited(&self) {
        self.inner.child_exited();
    }
}

/// Accepts connections from `listener` and runs `service` on each in its
/// own task (after the TLS handshake, for a TLS listener) until `shutdown`
/// is cancelled, then closes the connections waiting between messages and
/// drains the others. Returns once every connection task has ended.
///
/// At the connection limit, new connections wait in the kernel's backlog,
/// unless the service [evicts idle connections](Service::evicts_idle): then
/// a new connection is accepted and the connection that has made no
/// progress for the longest time (at least [`EVICT_MIN_IDLE`]) is closed
/// to make room, so slow or stalled peers cannot lock everyone else out.
pub async fn run<S: Service>(
    listener: Listener,
    limits: &ServerLimits,
    shutdown: CancellationToken,
    service: S,
) -> Result<ServerReport> {
    run_observed(listener, limits, shutdown, service, NoObserver).await
}

/// [`run`], with `observer` cloned into every connection.
pub async fn run_observed<S: Service, O: Observer>(
    listener: Listener,
    limits: &ServerLimits,
    shutdown: CancellationToken,
    service: S,
    observer: O,
) -> Result<ServerReport> {
    // On a runtime worker rather than the caller's thread (`block_on`'s
    // main thread, for the binary): a connection task spawned from a
    // worker goes to that worker's own queue, and accepting needs no wake
    // of a thread outside the pool. Aborted if the caller drops `run`.
    let limits = limits.clone();
    let task = AbortOnDropHandle::new(tokio::spawn(async move {
        serve_loop(listener, &limits, shutdown, Arc::new(service), observer).await
    }));
    match task.await {
        Ok(report) => report,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(Error::new(ErrorKind::Local, "accept loop").with_detail(err.to_string())),
    }
}

/// A connection with no progress for less than this is never evicted: it
/// is being served, not idling.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(2);
/// At the limit with a connection waiting and nobody idle long enough to
/// evict, how often the loop looks again.
const EVICT_RECHECK: Duration = Duration::from_millis(250);

/// Hashes the tracker's task ids with one multiplication instead of
/// SipHash (~300 instructions per connection under churn): the keys are
/// ids tokio hands out, not values a peer chooses, so there is no flooding
/// to resist.
#[derive(Debug, Default, Clone, Copy)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        // Fibonacci hashing: spreads sequential ids over the high bits,
        // which the table's control bytes use, and keeps the low bits (its
        // bucket index) a permutation of the ids'.
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The slots of a tracking server: which task holds which clock, and how
/// to close it.
struct Tracker {
    table: ActivityTable,
    /// Slots no task holds.
    free: Vec<u32>,
    /// The slot of each running task.
    slot_of: HashMap<task::Id, u32, BuildHasherDefault<IdHasher>>,
    /// Per slot, how to close its task.
    aborts: Vec<Option<AbortHandle>>,
    /// The task being evicted, until it is reaped: one at a time.
    evicting: Option<task::Id>,
}

impl Tracker {
    fn new() -> Tracker {
        Tracker {
            table: ActivityTable::new(),
            free: Vec::new(),
            slot_of: HashMap::default(),
            aborts: Vec::new(),
            evicting: None,
        }
    }

    /// Takes a free slot (growing the table if every slot is taken) and
    /// starts its clock, between messages if `idle`.
    fn start(&mut self, idle: bool) -> Option<(u32, Activity)> {
        if self.free.is_empty() {
            let old = self.table.len();
            self.table.grow();
            let new = u32::try_from(self.table.len()).ok()?;
            self.free.extend((old as u32..new).rev());
            self.aborts.resize_with(new as usize, || None);
        }
        let slot = self.free.pop()?;
        Some((slot, self.table.start(slot, idle)))
    }

    /// Records that `slot`'s task is the one `abort` closes.
    fn spawned(&mut self, slot: u32, abort: AbortHandle) {
        self.slot_of.insert(abort.id(), slot);
        self.aborts[slot as usize] = Some(abort);
    }

    /// Frees the slot of a task that ended.
    fn reaped(&mut self, id: task::Id) {
        if let Some(slot) = self.slot_of.remove(&id) {
            self.table.exempt(slot);
            self.aborts[slot as usize] = None;
            self.free.push(slot);
        }
        if self.evicting == Some(id) {
            self.evicting = None;
        }
    }

    /// At shutdown: closes every connection waiting between messages and
    /// returns how many.
    fn close_idle(&mut self) -> usize {
        let mut closed = 0;
        for (slot, abort) in (0u32..).zip(&self.aborts) {
            if let Some(abort) = abort
                && self.table.close_if_idle(slot)
            {
                abort.abort();
                closed += 1;
            }
        }
        closed
    }

    /// Closes the longest-idle connection, unless one is being closed
    /// already or nobody has idled for [`EVICT_MIN_IDLE`]. Returns how long
    /// the victim had been idle.
    fn evict(&mut self) -> Option<Duration> {
        if self.evicting.is_some() {
            return None;
        }
        let (slot, idle) = self.table.longest_idle(EVICT_MIN_IDLE)?;
        self.table.exempt(slot);
        let abort = self.aborts[slot as usize].as_ref()?;
        abort.abort();
        self.evicting = Some(abort.id());
        Some(idle)
    }
}

/// Futures larger than this are boxed before they are spawned.
const SPAWN_INLINE_MAX: usize = 512;

/// Spawns a connection's future into `tasks`. A large one (a relay's or a
/// proxy's) is boxed first: tokio moves a spawned future several times on
/// its way into the task's cell (each a `memcpy` of the whole future, 17%
/// of a relay's user-space instructions per connection under churn), and a
/// box moves as one pointer. A small one (serve's) stays inline, where it
/// costs no allocation and no indirection per poll.
fn spawn_connection<F>(tasks: &mut JoinSet<()>, connection: F) -> AbortHandle
where
    F: Future<Output = ()> + Send + 'static,
{
    if std::mem::size_of::<F>() > SPAWN_INLINE_MAX {
        tasks.spawn(Box::pin(connection))
    } else {
        tasks.spawn(connection)
    }
}

/// The accept loop of [`run`].
async fn serve_loop<S: Service, O: Observer>(
    listener: Listener,
    limits: &ServerLimits,
    shutdown: CancellationToken,
    service: Arc<S>,
    observer: O,
) -> Result<ServerReport> {
    let evicts = service.evicts_idle();
    let idle_at_start = service.idle_at_start();
    let deadlines = Deadlines::idle(limits.idle_timeout);
    let max_conns = limits.max_conns.max(1);
    let mut tasks = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let mut report = ServerReport::default();
    let mut limit_logged = false;
    let mut tracker = Tracker::new();
    // A connection accepted at the limit, waiting for an eviction.
    let mut waiting: Option<(Accepted, PeerAddr)> = None;
    let failure = limits.once.then(|| Arc::new(Mutex::new(None)));
    let observer = Recording {
        inner: observer,
        failure: failure.clone(),
    };
    // Every connection's copy of the token, behind one `Arc`: cloning and
    // dropping a token takes its lock, an `Arc` is one atomic operation.
    let conn_shutdown = Arc::new(shutdown.clone());

    loop {
        // Reap finished connection tasks: the set's size is the number of
        // open connections.
        while let Some(done) = tasks.try_join_next_with_id() {
            reaped(&mut tracker, Some(done));
        }
        if tasks.len() < max_conns && waiting.is_none() {
            // Below the limit by a connection closing, not by an eviction
            // for a waiting one: a new episode at the limit is logged anew.
            limit_logged = false;
        }

        if tasks.len() >= max_conns {
            if !evicts {
                if !limit_logged {
                    tracing::warn!(
                        "connection limit reached ({}): new connections wait in the backlog",
                        limits.max_conns
                    );
                    limit_logged = true;
                }
                tokio::select! {
                    done = tasks.join_next_with_id() => {
                        reaped(&mut tracker, done);
                        continue;
                    }
                    _ = shutdown.cancelled() => break,
                }
            }
            if waiting.is_none() {
                // Wait for a slot to free or a new connection to arrive.
                tokio::select! {
                    done = tasks.join_next_with_id() => {
                        reaped(&mut tracker, done);
                        continue;
                    }
                    accepted = accept(&listener, &mut backoff, &shutdown, &observer) => match accepted {
                        Accept::Conn(conn) => waiting = Some(conn),
                        Accept::Retry => continue,
                        Accept::Shutdown => break,
                    },
                }
            }
            if !limit_logged {
                tracing::warn!(
                    "connection limit reached ({}): a new connection replaces the one idle longest (at least {})",
                    limits.max_conns,
                    fmt_duration(EVICT_MIN_IDLE)
                );
                limit_logged = true;
            }
            if let Some(idle) = tracker.evict() {
                report.evicted += 1;
                observer.ended(CloseReason::Evicted);
                tracing::debug!(
                    "closing a connection idle for {} to make room",
                    fmt_duration(idle)
                );
            }
            // Wait for the evicted (or any) connection to end, or look again
            // for one idle long enough.
            tokio::select! {
                done = tasks.join_next_with_id() => reaped(&mut tracker, done),
                _ = tokio::time::sleep(EVICT_RECHECK) => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        let (accepted, peer) = match waiting.take() {
            Some(conn) => conn,
            None => match accept(&listener, &mut backoff, &shutdown, &observer).await {
                Accept::Conn(conn) => conn,
                Accept::Retry => continue,
                Accept::Shutdown => break,
            },
        };
        report.accepted += 1;
        observer.accepted();
        // Behind a PROXY protocol header the rules apply to the client it
        // carries, checked in the connection's task once it is read.
        if let (Some(access), PeerAddr::Inet(addr), None) =
            (&limits.access, &peer, limits.accept_proxy)
            && !access.permits(addr.ip())
        {
            // Dropping the socket closes it: no handshake, no handler.
            // Counted by the list (`report.denied` is read from it at the
            // end, as are the refusals made behind a PROXY header).
            drop(accepted);
            access.log_denied(*addr);
            observer.denied();
            continue;
        }
        if let Err(err) = accepted.set_options(&limits.socket) {
            tracing::debug!("{peer}: set socket options: {err}");
        }
        let (slot, activity) = match tracker.start(idle_at_start) {
            Some((slot, activity)) => (Some(slot), Some(activity)),
            None => (None, None),
        };
        let (cancel, observer) = (conn_shutdown.clone(), observer.connection());
        // A PROXY protocol header comes first, in the connection's task.
        let ready = match limits.accept_proxy {
            Some(_) => Err(accepted),
            None => accepted.into_ready(),
        };
        let abort = match ready {
            // The service's future is the whole task: nothing else is kept
            // per connection.
            Ok(stream) => spawn_connection(
                &mut tasks,
                service.serve(Conn::new(
                    stream, peer, cancel, deadlines, activity, observer,
                )),
            ),
            Err(accepted) => {
                let service = service.clone();
                let proxy_header = limits.accept_proxy;
                let access = limits.access.clone();
                spawn_connection(&mut tasks, async move {
                    // Not `match handshake.await { Ok(stream) => serve(..).await }`:
                    // the matched result would stay in the task through the
                    // whole connection.
                    let (stream, peer) = match proxy_header {
                        Some(deadline) => {
                            let Some(conn) = proxy_protocol::accept(accepted, peer, deadline).await
                            else {
                                // Logged by `accept`; `--once` exits 10.
                                observer.failed(
                                    &Error::new(ErrorKind::Protocol, "proxy protocol")
                                        .with_detail("no valid header"),
                                );
                                observer.handshake_failed("proxy_header");
                                observer.ended(CloseReason::Rejected);
                                return;
                            };
                            let client = match &conn.1 {
                                PeerAddr::Proxied { source, .. } => Some(*source),
                                PeerAddr::Inet(addr) => Some(*addr),
                                _ => None,
                            };
                            if let (Some(access), Some(client)) = (&access, client)
                                && !access.permits(client.ip())
                            {
                                access.log_denied(client);
                                observer.failed(
                                    &Error::new(ErrorKind::Local, client.to_string())
                                        .with_detail("denied by the access rules"),
                                );
                                observer.denied();
                                observer.ended(CloseReason::Rejected);
                                return;
                            }
                            conn
                        }
                        None => match accepted.handshake(&peer).await {
                            Ok(stream) => (stream, peer),
                            Err(err) => {
                                tracing::info!("{err}");
                                observer.failed(&err);
                                observer.handshake_failed(crate::tls::handshake_failure(&err));
                                observer.ended(CloseReason::Rejected);
                                return;
                            }
                        },
                    };
                    let conn = Conn::new(stream, peer, cancel, deadlines, activity, observer);
                    service.serve(conn).await;
                })
            }
        };
        if let Some(slot) = slot {
            tracker.spawned(slot, abort);
        }
        if limits.once {
            break;
        }
    }

    // Stop accepting: new connections are refused from here on.
    drop(listener);
    drop(waiting);
    if limits.once && !shutdown.is_cancelled() {
        tracing::debug!(
            "{}: not accepting any more connections",
            crate::settings::Setting::Once
        );
        // The one connection runs to its end, unless a signal comes first
        // (then it is drained like any other).
        tokio::select! {
            _ = async { while let Some(done) = tasks.join_next_with_id().await {
                reaped(&mut tracker, Some(done));
            } } => {}
            _ = shutdown.cancelled() => {}
        }
    }
    while let Some(done) = tasks.try_join_next_with_id() {
        reaped(&mut tracker, Some(done));
    }
    // Connections waiting between messages close now; the others may
    // finish theirs. (A connection that goes idle after this sweep sees the
    // shutdown itself: see `ConnState::idle`.)
    tracker.table.start_shutdown();
    let closed = tracker.close_idle();
    report.closed_at_shutdown = closed;
    for _ in 0..closed {
        observer.ended(CloseReason::Shutdown);
    }
    if closed > 0 {
        tracing::debug!("closing {closed} connection(s) idle between messages");
    }
    let open = tasks.len().saturating_sub(closed);
    if open > 0 {
        tracing::info!(
            "draining {} open connection(s) for up to {}",
            open,
            fmt_duration(limits.drain_timeout)
        );
        let drained = tokio::time::timeout(limits.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            report.closed_at_drain = tasks.len();
            for _ in 0..tasks.len() {
                observer.ended(CloseReason::DrainTimeout);
            }
            tracing::info!(
                "drain timeout: closing {} connection(s)",
                report.closed_at_drain
            );
            tasks.shutdown().await;
        }
    }
    // Refusals made in connection tasks (behind a PROXY header) count too.
    if let Some(access) = &limits.access {
        report.denied = access.denied();
    }
    if let Some(failure) = failure {
        report.failure = failure.lock().ok().and_then(|mut slot| slot.take());
    }
    Ok(report)
}

/// Frees the slot of a reaped task.
fn reaped(tracker: &mut Tracker, done: Option<std::result::Result<(task::Id, ()), JoinError>>) {
    match done {
        Some(Ok((id, ()))) => tracker.reaped(id),
        Some(Err(err)) => tracker.reaped(err.id()),
        None => {}
    }
}

/// What one accept gave.
enum Accept {
    /// A connection.
    Conn((Accepted, PeerAddr)),
    /// An error, handled (backed off if needed): try again.
    Retry,
    /// Shutdown started.
    Shutdown,
}

/// Accepts one connection, backing off after errors that call for it.
async fn accept<O: Observer>(
    listener: &Listener,
    backoff: &mut AcceptBackoff,
    shutdown: &CancellationToken,
    observer: &O,
) -> Accept {
    // The flag first, then the accept: a connection waiting in the backlog
    // is taken without polling the shutdown's future, whose every poll
    // takes the token's lock (and registers a waiter, dropped again). A
    // flood of connections cannot delay a shutdown: the flag is read
    // before each accept.
    if shutdown.is_cancelled() {
        return Accept::Shutdown;
    }
    tokio::select! {
        biased;
        accepted = listener.accept() => match accepted {
            Ok(accepted) => {
                backoff.on_success();
                Accept::Conn(accepted)
            }
            Err(err) => {
                observer.accept_error(&err);
                if let Action::Sleep(delay) = backoff.on_error(&err) {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.cancelled() => return Accept::Shutdown,
                    }
                }
                Accept::Retry
            }
        },
        _ = shutdown.cancelled() => Accept::Shutdown,
    }
}

#[cfg(test)]
mod observed_tests;

#[cfg(test)]
mod id_hasher_tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher as _;

    use super::*;

    /// Sequential ids (tokio's) fall in distinct buckets of a table of 64
    /// (the hash's low bits) and spread over the high bits the table keeps
    /// as tags.
    #[test]
    fn sequential_ids_spread_over_buckets_and_tags() {
        let build = BuildHasherDefault::<IdHasher>::default();
        let hashes: Vec<u64> = (1..=64u64).map(|id| build.hash_one(id)).collect();
        let buckets: HashSet<u64> = hashes.iter().map(|h| h & 63).collect();
        assert_eq!(buckets.len(), 64);
        let tags: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        assert!(tags.len() > 32, "{} tags", tags.len());
    }
}
