//! The bidirectional copy between two streams that any service can use
//! (relay, proxy, the stdio listener, exec): when both sides are TCP on
//! Linux, each direction is copied while its messages are small and moves
//! on to splice(2) once it turns out bulk (`auto`, `splice`); every other
//! pair is copied in user space (`copy`), through buffers pooled per
//! thread (`buffers`). Either way, end of stream on
//! one side becomes a write shutdown on the other while the opposite
//! direction carries on (half-close), and an error on either side ends the
//! transfer with a [`Fault`] naming the side.
//!
//! It knows no service and no deadline: the caller races [`transfer`]
//! against its own timers, reading [`Traffic::last_activity`].
//!
//! With faults ([`transfer_with_faults`], `fault`), a faulted direction is
//! copied in user space through a delay queue, a bandwidth pacer and a
//! slicer; the other direction keeps splice(2) when it could use it.

#[cfg(target_os = "linux")]
mod auto;
mod buffers;
mod copy;
mod fault;
#[cfg(target_os = "linux")]
mod splice;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use socket2::SockRef;
use tokio::time::Instant;

use crate::transport::Stream;

pub use fault::{Injected, transfer_with_faults};

/// A direction of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
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

/// One side of a transfer: the accepted connection or the one we made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first stream given to [`transfer`] (the accepted one).
    Client,
    /// The second stream given to [`transfer`].
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

/// An I/O failure on one side; it ends the transfer.
#[derive(Debug)]
pub struct Fault {
    /// The side that failed.
    pub side: Side,
    /// How it failed.
    pub err: io::Error,
}

/// Byte counts and the time of the last activity, shared by both
/// directions and whoever logs the end (atomics: the connection task must
/// be `Send`).
#[derive(Debug)]
pub struct Traffic {
    start: Instant,
    up: AtomicU64,
    down: AtomicU64,
    /// Nanoseconds from `start` to the last read or write that moved data.
    last: AtomicU64,
}

impl Default for Traffic {
    fn default() -> Traffic {
        Traffic::new()
    }
}

impl Traffic {
    /// Counts from now.
    pub fn new() -> Traffic {
        Traffic {
            start: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last: AtomicU64::new(0),
        }
    }

    /// Records that data moved now.
    pub fn touch(&self) {
        self.touch_at(Instant::now());
    }

    /// Records that data moved at `now`, a time the caller read already.
    pub(crate) fn touch_at(&self, now: Instant) {
        let nanos = now
            .saturating_duration_since(self.start)
            .as_nanos()
            .min(u64::MAX as u128) as u64;
        self.last.store(nanos, Ordering::Relaxed);
    }

    /// Counts `n` bytes delivered in direction `dir` (activity too: a slow
    /// reader that still takes data is not idle).
    pub fn add(&self, dir: Dir, n: usize) {
        self.touch();
        self.count(dir, n);
    }

    /// Counts `n` bytes delivered in direction `dir` without reading the
    /// clock: for a write made at once after a read that [touched](Self::touch).
    fn count(&self, dir: Dir, n: usize) {
        let counter = match dir {
            Dir::Up => &self.up,
            Dir::Down => &self.down,
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Bytes delivered client to upstream.
    pub fn up(&self) -> u64 {
        self.up.load(Ordering::Relaxed)
    }

    /// Bytes delivered upstream to client.
    pub fn down(&self) -> u64 {
        self.down.load(Ordering::Relaxed)
    }

    /// When counting started.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// When data last moved (the start if it never did).
    pub fn last_activity(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }
}

/// An `io::Error` with the same OS code, or else the same kind and text
/// (they are not `Clone`): for reporting a [`Fault`]'s error more than once.
pub(crate) fn copy_io_error(err: &std::io::Error) -> std::io::Error {
    match err.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::new(err.kind(), err.to_string()),
    }
}

/// Moves bytes both ways between `client` and `upstream` until both
/// directions have ended (`Ok`), or until either side fails. Picks the
/// path: for TCP to TCP on Linux when `use_splice`, each direction is
/// copied while its messages are small and spliced (splice(2)) once it
/// turns out bulk (`auto`); every other pair, and `use_splice` off, is
/// copied in user space.
pub fn transfer<'a>(
    client: &'a mut Stream,
    upstream: &'a mut Stream,
    use_splice: bool,
    traffic: &'a Traffic,
) -> Transfer<'a> {
    #[cfg(target_os = "linux")]
    let (client, upstream) = match (client, upstream, use_splice) {
        (Stream::Tcp(c), Stream::Tcp(u), true) => {
            tracing::debug!("relaying with splice(2) once bulk (a user-space copy until then)");
            return Transfer(Path::Auto(auto::relay(c, u, traffic)));
        }
        (client, upstream, _) => (client, upstream),
    };
    #[cfg(not(target_os = "linux"))]
    let _ = use_splice;
    tracing::debug!("relaying with a user-space copy");
    Transfer(Path::Copy(copy::relay(client, upstream, traffic)))
}

/// [`transfer`]'s future: a plain state machine over both directions (no
/// `async` block, nothing boxed until a direction splices).
pub struct Transfer<'a>(Path<'a>);

impl Transfer<'_> {
    /// Says the caller closes both streams as soon as the transfer returns
    /// `Ok` (the relay does: it owns them and drops them next). The
    /// direction that ends last then leaves its destination's FIN to that
    /// close(2) instead of a shutdown(2) of its own, one system call fewer
    /// per connection, as nginx closes. Both streams were read to end of
    /// stream by then, so the close sends a FIN, not a reset. (Only the
    /// TCP copy phase makes use of it; the other paths shut down as ever.)
    pub(crate) fn closed_after(mut self) -> Self {
        #[cfg(target_os = "linux")]
        if let Path::Auto(relay) = &mut self.0 {
            relay.closed_after();
        }
        self
    }
}

/// The path [`transfer`] picked.
enum Path<'a> {
    #[cfg(target_os = "linux")]
    Auto(auto::Relay<'a>),
    Copy(copy::Relay<'a, Stream, Stream>),
}

impl std::future::Future for Transfer<'_> {
    type Output = Result<(), Fault>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match &mut self.get_mut().0 {
            #[cfg(target_os = "linux")]
            Path::Auto(relay) => std::pin::Pin::new(relay).poll(cx),
            Path::Copy(relay) => std::pin::Pin::new(relay).poll(cx),
        }
    }
}

impl fmt::Debug for Transfer<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Transfer")
    }
}

/// One direction of [`transfer`]'s user-space copy, for a service that
/// drives the two directions itself (exec: a program's stdin and stdout
/// are two pipes): copies `src` to `dst` until `src` ends, then shuts
/// `dst` down (half-close). A failure is blamed on the side that failed,
/// as `dir` names them ([`Dir::Up`]: `src` is the client).
pub async fn copy_one_way<R, W>(
    src: &mut R,
    dst: &mut W,
    dir: Dir,
    traffic: &Traffic,
) -> Result<(), Fault>
where
    R: tokio::io::AsyncRead + Unpin + ?Sized,
    W: tokio::io::AsyncWrite + Unpin + ?Sized,
{
    copy::one_way(src, dst, dir, traffic).await
}

/// Makes closing `stream` send a reset (SO_LINGER 0) rather than a FIN, so
/// its peer learns the transfer failed instead of seeing a clean end. For
/// TLS, the reset goes out on the TCP connection underneath.
pub fn abort(stream: &Stream) {
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
