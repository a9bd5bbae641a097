//! The accept loop every listening command shares (`serve`, `relay`, ...):
//! connection limit, accept-error backoff, graceful drain.
//!
//! [`run`] takes an already bound [`Listener`], a shutdown token and a
//! per-connection handler (the mini-redis shape), so tests bind port 0 and
//! decide when shutdown happens. The connection tasks live in a `JoinSet`,
//! whose size is the connection count the limit applies to: at the limit
//! [`run`] waits for a task to end before it accepts again, while
//! [`run_tracked`] accepts the next connection and closes the one that has
//! made no progress for the longest time to make room for it (see
//! [`Activity`]: the service says what progress is; the loop knows no
//! service). Accept errors
//! back off instead of spinning ([`accept`]); on shutdown the loop stops
//! accepting, lets open connections finish for the drain timeout, then
//! closes the rest.
//!
//! Every open connection costs its task, so the task is the handler's
//! future itself for TCP and Unix connections (nothing else is kept per
//! connection), and the handler is called in the accept loop: it should
//! only build its future.
//!
//! Access rules ([`ServerLimits::access`], `--allow`/`--deny`) are checked
//! right after accept, before anything else: a refused connection is
//! dropped (closed) in the loop itself, with no task, no handshake and a
//! rate-limited log line.
//!
//! A TLS handshake runs in the connection's task, under its own timeout
//! and counting against the connection limit: a slow or silent client delays
//! only itself. A failed handshake is logged with its reason and the
//! handler never sees that connection.
//!
//! With [`ServerLimits::accept_proxy`], the connection's task first reads
//! its PROXY protocol header ([`proxy_protocol::accept`]), under the same
//! rules: the handler sees the connection only with a valid header, and
//! with the client address it carried as the peer.

pub mod accept;
mod activity;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{self, AbortHandle, JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::access::AccessList;
use crate::error::{Result, fmt_duration};
use crate::proxy_protocol;
use crate::transport::{Accepted, Listener, PeerAddr, SocketOptions, Stream};
use accept::{AcceptBackoff, Action};
pub use activity::Activity;
use activity::ActivityTable;

/// The limits of a listening server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections handled at once. Past it, new connections wait in the
    /// kernel's backlog until a slot frees (and the peer's connect times
    /// out if none does); with [`run_tracked`], a new connection is accepted
    /// and replaces the connection idle longest, if one is idle enough.
    pub max_conns: usize,
    /// How long open connections may finish after shutdown starts.
    pub drain_timeout: Duration,
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
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_conns: 4096,
            drain_timeout: Duration::from_secs(10),
            socket: SocketOptions::default(),
            accept_proxy: None,
            access: None,
        }
    }
}

/// What a server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections closed at the connection limit to make room for a new
    /// one (by [`run_tracked`]).
    pub evicted: u64,
    /// Connections refused by the access rules.
    pub denied: u64,
    /// Connections still open when the drain timeout ran out, closed by us.
    pub closed_at_drain: usize,
}

/// Accepts connections from `listener` and runs `handler` on each in its
/// own task (after the TLS handshake, for a TLS listener) until `shutdown`
/// is cancelled, then drains. Returns once every connection task has ended.
///
/// `handler` is called in the accept loop, so it should only build the
/// connection's future; the work belongs in the future. At the connection
/// limit new connections wait in the kernel's backlog (see [`run_tracked`]
/// for a server that evicts idle connections instead).
pub async fn run<H, F>(
    listener: Listener,
    limits: &ServerLimits,
    shutdown: CancellationToken,
    handler: H,
) -> Result<ServerReport>
where
    H: Fn(Stream, PeerAddr) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handler = move |stream, peer, _: Option<Activity>| handler(stream, peer);
    serve_loop(listener, limits, shutdown, handler, false).await
}

/// [`run`], with each connection given an [`Activity`] clock to report
/// its progress on. When every slot is taken and a new connection is
/// waiting, the connection that has made no progress for the longest time
/// (at least [`EVICT_MIN_IDLE`]) is closed to make room, so slow or stalled
/// peers cannot lock everyone else out. The handler gets `None` only if the
/// loop had no clock for it (never expected).
pub async fn run_tracked<H, F>(
    listener: Listener,
    limits: &ServerLimits,
    shutdown: CancellationToken,
    handler: H,
) -> Result<ServerReport>
where
    H: Fn(Stream, PeerAddr, Option<Activity>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    serve_loop(listener, limits, shutdown, handler, true).await
}

/// A connection with no progress for less than this is never evicted: it
/// is being served, not idling.
pub const EVICT_MIN_IDLE: Duration = Duration::from_secs(2);
/// At the limit with a connection waiting and nobody idle long enough to
/// evict, how often the loop looks again.
const EVICT_RECHECK: Duration = Duration::from_millis(250);

/// The slots of a tracking server: which task holds which clock, and how
/// to close it.
struct Tracker {
    table: ActivityTable,
    /// Slots no task holds.
    free: Vec<u32>,
    /// The slot of each running task.
    slot_of: HashMap<task::Id, u32>,
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
            slot_of: HashMap::new(),
            aborts: Vec::new(),
            evicting: None,
        }
    }

    /// Takes a free slot (growing the table if every slot is taken) and
    /// starts its clock.
    fn start(&mut self) -> Option<(u32, Activity)> {
        if self.free.is_empty() {
            let old = self.table.len();
            self.table.grow();
            let new = u32::try_from(self.table.len()).ok()?;
            self.free.extend((old as u32..new).rev());
            self.aborts.resize_with(new as usize, || None);
        }
        let slot = self.free.pop()?;
        Some((slot, self.table.start(slot)))
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

/// The accept loop of [`run`] and [`run_tracked`].
async fn serve_loop<H, F>(
    listener: Listener,
    limits: &ServerLimits,
    shutdown: CancellationToken,
    handler: H,
    track: bool,
) -> Result<ServerReport>
where
    H: Fn(Stream, PeerAddr, Option<Activity>) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let max_conns = limits.max_conns.max(1);
    let mut tasks = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let mut report = ServerReport::default();
    let mut limit_logged = false;
    let mut tracker = track.then(Tracker::new);
    // A connection accepted at the limit, waiting for an eviction.
    let mut waiting: Option<(Accepted, PeerAddr)> = None;

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
            let Some(tracker) = tracker.as_mut() else {
                if !limit_logged {
                    tracing::warn!(
                        "connection limit reached ({}): new connections wait in the backlog",
                        limits.max_conns
                    );
                    limit_logged = true;
                }
                tokio::select! {
                    _ = tasks.join_next() => continue,
                    _ = shutdown.cancelled() => break,
                }
            };
            if waiting.is_none() {
                // Wait for a slot to free or a new connection to arrive.
                tokio::select! {
                    done = tasks.join_next_with_id() => {
                        reaped_in(tracker, done);
                        continue;
                    }
                    accepted = accept(&listener, &mut backoff, &shutdown) => match accepted {
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
                tracing::debug!(
                    "closing a connection idle for {} to make room",
                    fmt_duration(idle)
                );
            }
            // Wait for the evicted (or any) connection to end, or look again
            // for one idle long enough.
            tokio::select! {
                done = tasks.join_next_with_id() => reaped_in(tracker, done),
                _ = tokio::time::sleep(EVICT_RECHECK) => {}
                _ = shutdown.cancelled() => break,
            }
            continue;
        }
        let (accepted, peer) = match waiting.take() {
            Some(conn) => conn,
            None => match accept(&listener, &mut backoff, &shutdown).await {
                Accept::Conn(conn) => conn,
                Accept::Retry => continue,
                Accept::Shutdown => break,
            },
        };
        report.accepted += 1;
        // Behind a PROXY protocol header the rules apply to the client it
        // carries, checked in the connection's task once it is read.
        if let (Some(access), PeerAddr::Inet(addr), None) =
            (&limits.access, &peer, limits.accept_proxy)
            && !access.permits(addr.ip())
        {
            // Dropping the socket closes it: no handshake, no handler.
            drop(accepted);
            report.denied += 1;
            access.log_denied(*addr);
            continue;
        }
        if let Err(err) = accepted.set_options(&limits.socket) {
            tracing::debug!("{peer}: set socket options: {err}");
        }
        let (slot, activity) = match tracker.as_mut().and_then(Tracker::start) {
            Some((slot, activity)) => (Some(slot), Some(activity)),
            None => (None, None),
        };
        // A PROXY protocol header comes first, in the connection's task.
        let ready = match limits.accept_proxy {
            Some(_) => Err(accepted),
            None => accepted.into_ready(),
        };
        let abort = match ready {
            // The handler's future is the whole task: nothing else is kept
            // per connection.
            Ok(stream) => tasks.spawn(handler(stream, peer, activity)),
            Err(accepted) => {
                let handler = handler.clone();
                let proxy_header = limits.accept_proxy;
                let access = limits.access.clone();
                tasks.spawn(async move {
                    // Not `match handshake.await { Ok(stream) => handler(..).await }`:
                    // the matched result would stay in the task through the
                    // whole connection.
                    let (stream, peer) = match proxy_header {
                        Some(deadline) => {
                            let Some(conn) = proxy_protocol::accept(accepted, peer, deadline).await
                            else {
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
                                return;
                            }
                            conn
                        }
                        None => match accepted.handshake(&peer).await {
                            Ok(stream) => (stream, peer),
                            Err(err) => {
                                tracing::info!("{err}");
                                return;
                            }
                        },
                    };
                    handler(stream, peer, activity).await;
                })
            }
        };
        if let (Some(tracker), Some(slot)) = (tracker.as_mut(), slot) {
            tracker.spawned(slot, abort);
        }
    }

    // Stop accepting: new connections are refused from here on.
    drop(listener);
    drop(waiting);
    while tasks.try_join_next().is_some() {}
    if !tasks.is_empty() {
        tracing::info!(
            "draining {} open connection(s) for up to {}",
            tasks.len(),
            fmt_duration(limits.drain_timeout)
        );
        let drained = tokio::time::timeout(limits.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            report.closed_at_drain = tasks.len();
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
    Ok(report)
}

/// Frees the slot of a reaped task, if the server tracks slots.
fn reaped(
    tracker: &mut Option<Tracker>,
    done: Option<std::result::Result<(task::Id, ()), JoinError>>,
) {
    if let Some(tracker) = tracker {
        reaped_in(tracker, done);
    }
}

/// Frees the slot of a reaped task.
fn reaped_in(tracker: &mut Tracker, done: Option<std::result::Result<(task::Id, ()), JoinError>>) {
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
async fn accept(
    listener: &Listener,
    backoff: &mut AcceptBackoff,
    shutdown: &CancellationToken,
) -> Accept {
    tokio::select! {
        accepted = listener.accept() => match accepted {
            Ok(accepted) => {
                backoff.on_success();
                Accept::Conn(accepted)
            }
            Err(err) => {
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
