//! The service seam: [`Service`] is what runs on an accepted connection,
//! and [`Conn`] is everything the connection brings with it (the stream,
//! the peer, shutdown, deadlines, the accept loop's progress clock and an
//! [`Observer`]).
//!
//! The accept loop ([`server::run`](crate::server::run)) knows no service:
//! it accepts, makes a [`Conn`] and spawns the future [`Service::serve`]
//! returns, which is the connection's whole task (no box, no extra state:
//! what an idle connection costs is that future). `serve`'s reply, echo,
//! discard and `--lines`, and `relay`, are implementations; a new service
//! is one module implementing the trait plus the line that runs it.
//!
//! Shutdown reaches each connection: a service tells the loop when it is
//! between messages ([`ConnState::idle`]) and when a message starts
//! ([`ConnState::busy`]); on shutdown the loop closes the connections that are
//! between messages at once, and the others get the drain timeout. A
//! service that never calls them (relay) is always "in a message" and is
//! drained.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;
use crate::error::ErrorKind;
use crate::server::Activity;
use crate::transport::{PeerAddr, Stream};

/// What runs on each accepted connection.
///
/// `serve` is called in the accept loop, so it should only build the
/// connection's future (cloning an `Arc` of its configuration, say); the
/// work belongs in the future, which is the connection's task. Keep that
/// future small: every open connection costs it.
pub trait Service: Send + Sync + 'static {
    /// Serves one connection to its end. The connection closes when the
    /// future ends (or is dropped: at the drain timeout, at shutdown while
    /// [idle](ConnState::idle), or evicted at the connection limit).
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static;

    /// Whether, at the connection limit, a new connection may replace the
    /// connection that has made no progress for the longest time
    /// ([`ConnState::progress`] says what progress is). `false` (the default):
    /// new connections wait in the kernel's backlog until a slot frees.
    fn evicts_idle(&self) -> bool {
        false
    }

    /// Whether a new connection counts as between messages until the
    /// service says otherwise ([`ConnState::busy`]): true for a service
    /// whose peer speaks first, so that at shutdown a connection accepted
    /// but not yet served closes at once. `false` (the default): it is
    /// drained like a connection in the middle of a message.
    fn idle_at_start(&self) -> bool {
        false
    }
}

/// Callbacks for what happens on a connection, for counters and
/// transcripts. Every method does nothing by default, and the accept loop
/// is generic over the observer: with [`NoObserver`] the calls compile to
/// nothing.
///
/// It is cloned into every connection: share state through an `Arc`.
pub trait Observer: Clone + Send + Sync + 'static {
    /// `n` bytes were received from the peer.
    fn received(&self, n: usize) {
        let _ = n;
    }

    /// `n` bytes were sent to the peer.
    fn sent(&self, n: usize) {
        let _ = n;
    }

    /// The connection ended, with these totals. (Services that count bytes
    /// only at the end, as the relay's splice(2) path does, report them
    /// through [`received`](Observer::received) and
    /// [`sent`](Observer::sent) first: the totals here repeat them.)
    fn closed(&self, peer: &PeerAddr, received: u64, sent: u64) {
        let _ = (peer, received, sent);
    }

    /// The connection ended with this error (a reset, a timeout, a
    /// protocol error; after the service logged it). Not called for a
    /// clean end. `--once` takes its exit code from it.
    fn failed(&self, err: &Error) {
        let _ = err;
    }
    /// Why the connection ended, said once by the service just before
    /// [`closed`](Observer::closed); the accept loop says it for the
    /// connections it closes itself (evicted, at shutdown, at the drain
    /// timeout, a failed handshake).
    fn ended(&self, reason: CloseReason) {
        let _ = reason;
    }

    /// The accept loop took a connection from the listener (one the access
    /// rules then refuse included).
    fn accepted(&self) {}

    /// The observer for a new connection, which the connection keeps
    /// until it ends and drops then, however it ends (an observer that
    /// counts open connections counts one here and uncounts it in its
    /// `Drop`): a service keeps [`Conn::observer`] for the whole
    /// connection. Clones of it are plain copies.
    fn connection(&self) -> Self {
        self.clone()
    }

    /// The access rules (`--allow`, `--deny`) refused a connection.
    fn denied(&self) {}

    /// `accept(2)` failed.
    fn accept_error(&self, err: &io::Error) {
        let _ = err;
    }

    /// A connection's handshake (TLS, WebSocket, a PROXY protocol header)
    /// failed; the service never sees it.
    fn handshake_failed(&self, reason: &'static str) {
        let _ = reason;
    }

    /// An attempt to connect upstream (relay, proxy) ended, successfully
    /// or not, after `elapsed`.
    fn upstream_connect(&self, result: std::result::Result<(), ErrorKind>, elapsed: Duration) {
        let _ = (result, elapsed);
    }

    /// A child process started for a connection (`--exec`).
    fn child_started(&self) {}

    /// A child process started for a connection ended.
    fn child_exited(&self) {}
}

/// Why a connection ended, as counted by `netcrab_connections_closed_total`
/// (see [`Observer::ended`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The peer (or both sides) finished normally.
    Clean,
    /// A peer or the upstream reset the connection.
    Reset,
    /// Nothing moved for the idle timeout (or a line did not end within
    /// the line timeout).
    IdleTimeout,
    /// The peer broke the protocol (a line too long, a bad proxy request)
    /// or was turned away after accept (proxy rules, a failed handshake).
    Rejected,
    /// The upstream could not be connected.
    UpstreamUnavailable,
    /// Another I/O error.
    Error,
    /// Closed for shutdown: waiting between messages when it started, or
    /// done with a message during the drain.
    Shutdown,
    /// Still open when the drain timeout ran out.
    DrainTimeout,
    /// Closed at the connection limit to make room for a new one.
    Evicted,
}

impl CloseReason {
    /// Every reason, in the order they are listed in metrics.
    pub const ALL: [CloseReason; 9] = [
        CloseReason::Clean,
        CloseReason::Reset,
        CloseReason::IdleTimeout,
        CloseReason::Rejected,
        CloseReason::UpstreamUnavailable,
        CloseReason::Error,
        CloseReason::Shutdown,
        CloseReason::DrainTimeout,
        CloseReason::Evicted,
    ];

    /// The reason's label value (`clean`, `idle_timeout`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Clean => "clean",
            CloseReason::Reset => "reset",
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Rejected => "rejected",
            CloseReason::UpstreamUnavailable => "upstream_unavailable",
            CloseReason::Error => "error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::DrainTimeout => "drain_timeout",
            CloseReason::Evicted => "evicted",
        }
    }

    /// The reason for a connection that ended with an error of this kind.
    pub fn of_error(kind: ErrorKind) -> CloseReason {
        match kind {
            ErrorKind::Reset => CloseReason::Reset,
            ErrorKind::Timeout => CloseReason::IdleTimeout,
            ErrorKind::Protocol | ErrorKind::Tls => CloseReason::Rejected,
            _ => CloseReason::Error,
        }
    }
}

/// The observer that observes nothing (zero-sized; its calls vanish).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// An accepted connection, as a [`Service`] receives it. Take its parts by
/// moving the public fields out.
#[derive(Debug)]
#[non_exhaustive]
pub struct Conn<O = NoObserver> {
    /// The byte stream (after the TLS handshake, for a TLS listener).
    pub stream: Stream,
    /// The peer's address.
    pub peer: PeerAddr,
    /// Cancelled when the server shuts down (see [`ConnState::idle`] for the
    /// cheap way to honour it between messages). Shared by every connection
    /// of a server behind one `Arc`: a connection's copy costs one atomic
    /// increment, where a token's own clone takes the token's lock (and so
    /// does its drop, often on another thread).
    pub shutdown: Arc<CancellationToken>,
    /// The connection's deadlines.
    pub deadlines: Deadlines,
    /// The accept loop's progress clock and shutdown state for this
    /// connection (`None` only if the loop had no slot for it).
    pub activity: Option<Activity>,
    /// The observer, told about bytes and the connection's end.
    pub observer: O,
}

/// The deadlines of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Deadlines {
    /// Close the connection when no byte has moved either way (a read, or
    /// a write the peer took: a blocked write counts as idle) for this
    /// long.
    pub idle_timeout: Option<Duration>,
}

impl Deadlines {
    /// Deadlines with this idle timeout.
    pub fn idle(idle_timeout: Option<Duration>) -> Deadlines {
        Deadlines { idle_timeout }
    }
}

impl<O> Conn<O> {
    /// Makes a connection (the accept loop does; tests and embedders that
    /// drive a service by hand may too). `shutdown` is a token, or the
    /// `Arc` of one that many connections share.
    pub fn new(
        stream: Stream,
        peer: PeerAddr,
        shutdown: impl Into<Arc<CancellationToken>>,
        deadlines: Deadlines,
        activity: Option<Activity>,
        observer: O,
    ) -> Conn<O> {
        Conn {
            stream,
            peer,
            shutdown: shutdown.into(),
            deadlines,
            activity,
            observer,
        }
    }

    /// This end's address (asked of the socket, so it costs nothing to
    /// carry).
    pub fn local_addr(&self) -> io::Result<PeerAddr> {
        self.stream.local_addr()
    }
}

/// A connection over a fresh loopback TCP socket, no deadlines and no
/// observer: for tests that need a [`Conn`] to hand a service (such as the
/// guards on each service's future size); its peer is the listener's
/// address.
#[cfg(test)]
pub(crate) async fn loopback_conn() -> Conn<NoObserver> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = tokio::net::TcpStream::connect(addr).await.unwrap();
    Conn::new(
        Stream::Tcp(client),
        PeerAddr::Inet(addr),
        CancellationToken::new(),
        Deadlines::idle(None),
        None,
        NoObserver,
    )
}

/// What a service that reports its state keeps of a [`Conn`] besides the
/// stream: the shutdown token and the progress clock, with the protocol
/// between them (see [`idle`](ConnState::idle)). Split from the stream so a
/// service can borrow both at once.
#[derive(Debug)]
pub struct ConnState {
    /// Cancelled when the server shuts down (shared, see [`Conn::shutdown`]).
    pub shutdown: Arc<CancellationToken>,
    /// The accept loop's clock for this connection.
    pub activity: Option<Activity>,
}

impl ConnState {
    /// Records progress at `now` (for eviction at the connection limit).
    #[inline]
    pub fn progress(&self, now: Instant) {
        if let Some(activity) = &self.activity {
            activity.progress(now);
        }
    }

    /// Says the connection is between messages, about to wait for the
    /// next one. Returns `true` when shutdown has started: the service
    /// should then end the connection now. Otherwise the accept loop may
    /// close the connection at shutdown while it waits (its task is
    /// dropped), unless [`busy`](ConnState::busy) came first.
    #[inline]
    pub fn idle(&self) -> bool {
        match &self.activity {
            // Either the loop sees this connection idle (and closes it), or
            // we see the shutdown (see `Activity::set_idle`).
            Some(activity) => activity.set_idle(),
            None => self.shutdown.is_cancelled(),
        }
    }

    /// Says a message has started (data arrived after [`idle`]). Returns
    /// `false` if shutdown closed the connection meanwhile: the service
    /// should then end it without serving.
    ///
    /// [`idle`]: ConnState::idle
    #[inline]
    pub fn busy(&self) -> bool {
        self.activity.as_ref().is_none_or(Activity::set_busy)
    }
}

impl<O> Conn<O> {
    /// Splits off the shutdown state: `(stream, peer, state, deadlines,
    /// observer)`.
    pub fn into_parts(self) -> (Stream, PeerAddr, ConnState, Deadlines, O) {
        (
            self.stream,
            self.peer,
            ConnState {
                shutdown: self.shutdown,
                activity: self.activity,
            },
            self.deadlines,
            self.observer,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection made with the server's shared token (the accept loop's
    /// way) and one made with a token of its own both see the server's
    /// shutdown, through the field and through the split-off state.
    #[tokio::test]
    async fn a_conn_sees_the_shutdown_through_a_shared_or_own_token() {
        let token = CancellationToken::new();
        let shared = Arc::new(token.clone());
        let mut conns = Vec::new();
        for _ in 0..2 {
            let mut conn = loopback_conn().await;
            conn.shutdown = shared.clone();
            conns.push(conn);
        }
        let base = loopback_conn().await;
        let own = Conn::new(
            base.stream,
            base.peer,
            token.clone(),
            Deadlines::idle(None),
            None,
            NoObserver,
        );
        assert!(!own.shutdown.is_cancelled());
        token.cancel();
        assert!(own.shutdown.is_cancelled());
        for conn in conns {
            let (_, _, state, _, _) = conn.into_parts();
            assert!(state.shutdown.is_cancelled());
            assert!(
                state.idle(),
                "between messages, a cancelled connection ends"
            );
        }
    }
}
