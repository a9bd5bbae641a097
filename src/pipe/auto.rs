//! TCP to TCP on Linux: copy or splice(2), chosen per direction by what the
//! traffic turns out to be (HAProxy's "splice-auto" idea).
//!
//! Each direction starts as a user-space copy through a pooled 16 KiB
//! buffer ([`buffers::SMALL`]): request/response traffic then costs one
//! `read` and one `write` per message, the least any relay makes. A read
//! that fills the buffer means more was waiting; after [`BULK_READS`] of
//! those in a row the direction is bulk, takes a pipe from the thread's
//! pool and moves on to [`splice::one_way`], so large transfers never
//! cross into user space; after [`DEMOTE`]'s run of small splices it gives
//! the (empty) pipe back and copies again. A connection that never turns
//! bulk never touches a pipe (no `pipe2`, no `F_SETPIPE_SZ`, no
//! `FIONREAD`), and an idle one holds neither a buffer nor a pipe.
//!
//! The calls are plain `read(2)` and `send(2)`, through rustix's direct
//! system calls (no libc wrapper and its cancellation-point bookkeeping).
//! `send` carries `MSG_NOSIGNAL`, so a write to a peer that has gone fails
//! with `EPIPE` even in a program that does not ignore `SIGPIPE` (the
//! splice phase relies on Rust programs ignoring it, as the runtime does
//! before `main`: splice(2) has no such flag).
//!
//! No read is made only to learn that a socket is empty: a `read` that
//! returns less than the buffer's size has drained the socket (the kernel
//! copies all it has, up to the size asked for), so the direction clears
//! the socket's readiness at once and sleeps until epoll reports new data,
//! as tokio's own `poll_read` does. The same holds for a short `write`.
//! (The splice phase cannot do this: a short splice may mean a full pipe
//! rather than an empty socket, so it confirms with one more splice.)

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::task::coop;

use super::buffers::{Buf, SMALL};
use super::copy::DirError;
use super::splice::{self, Demote, Pipe, Spliced};
use super::{Dir, Fault, Traffic};

/// Reads that fill the copy buffer, in a row, after which a direction
/// moves on to splice(2).
pub(super) const BULK_READS: u32 = 2;

/// When a spliced direction goes back to copying: after 8 splices in a
/// row of less than the copy buffer each.
const DEMOTE: Demote = Demote {
    below: 16 * 1024,
    after: 8,
};

/// Relays between two TCP streams until both directions have ended, or
/// until either side fails.
pub(super) fn relay<'a>(
    client: &'a TcpStream,
    upstream: &'a TcpStream,
    traffic: &'a Traffic,
) -> Relay<'a> {
    Relay {
        client,
        upstream,
        traffic,
        up: Way::Copy(Copying::new(true)),
        down: Way::Copy(Copying::new(true)),
        waker: None,
        closed_after: false,
    }
}

/// [`relay`]'s future: one hand-written state machine drives both
/// directions (no nested `async` blocks, no `select!`), so a message costs
/// one poll of it, one `read` and one `send`.
pub(crate) struct Relay<'a> {
    client: &'a TcpStream,
    upstream: &'a TcpStream,
    traffic: &'a Traffic,
    up: Way<'a>,
    down: Way<'a>,
    /// The waker the sockets' readiness holds: while it is the task's, a
    /// direction that is waiting to read is left alone until its socket
    /// turns readable (see [`Copying::waiting`]).
    waker: Option<Waker>,
    /// The caller closes both sockets as soon as this returns `Ok` (see
    /// [`Relay::closed_after`]).
    closed_after: bool,
}

impl Relay<'_> {
    /// Says the caller closes both sockets as soon as the relay returns
    /// `Ok`: the direction that ends last then leaves its destination's
    /// FIN to that close(2) instead of a shutdown(2) of its own, one
    /// system call fewer per connection. The close sends a FIN, not a
    /// reset: both sockets were read to end of stream, so neither has
    /// unread data.
    pub(super) fn closed_after(&mut self) {
        self.closed_after = true;
    }
}

impl Future for Relay<'_> {
    type Output = Result<(), Fault>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let same_waker = this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if !same_waker {
            this.waker = Some(cx.waker().clone());
        }
        // A direction ending while the other has ended already ends the
        // relay: with `closed_after`, the close sends its FIN.
        let last = this.closed_after && matches!(this.down, Way::Done);
        let up = this
            .up
            .poll(
                cx,
                same_waker,
                last,
                this.client,
                this.upstream,
                Dir::Up,
                this.traffic,
            )
            .map_err(|e| e.blame(Dir::Up))?;
        let last = this.closed_after && matches!(this.up, Way::Done);
        let down = this
            .down
            .poll(
                cx,
                same_waker,
                last,
                this.upstream,
                this.client,
                Dir::Down,
                this.traffic,
            )
            .map_err(|e| e.blame(Dir::Down))?;
        if up.is_ready() && down.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }
}

/// One direction: copied while its messages are small, spliced while it
/// is bulk; at the source's end of stream, the destination's writing is
/// shut down (half-close).
enum Way<'a> {
    /// Copying through a pooled buffer.
    Copy(Copying),
    /// Bulk: splicing through a pipe of the thread's pool. Boxed, as it is
    /// rare and its state is larger than the rest of the connection's.
    Splice(Pin<Box<dyn Future<Output = Result<Spliced, DirError>> + Send + 'a>>),
    /// The source ended and the destination was shut down.
    Done,
}

impl<'a> Way<'a> {
    /// Moves what can be moved now; `Ready(Ok)` once the direction ended.
    /// `same_waker`: the task's waker is the one given last time. `last`:
    /// the other direction has ended and the caller closes both sockets
    /// once this one ends, so a copy that reads end of stream leaves the
    /// destination's FIN to that close (see [`Relay::closed_after`]).
    #[allow(clippy::too_many_arguments)]
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        same_waker: bool,
        last: bool,
        src: &'a TcpStream,
        dst: &'a TcpStream,
        dir: Dir,
        traffic: &'a Traffic,
    ) -> Poll<Result<(), DirError>> {
        let way = match dir {
            Dir::Up => "client to upstream",
            Dir::Down => "upstream to client",
        };
        loop {
            match self {
                Way::Done => return Poll::Ready(Ok(())),
                Way::Copy(copying) => {
                    match ready!(copying.poll(cx, same_waker, last, src, dst, dir, traffic))? {
                        Copied::Ended => *self = Way::Done,
                        Copied::Bulk => match Pipe::take() {
                            Ok(pipe) => {
                                tracing::debug!("{way}: bulk traffic, splicing from here");
                                *self = Way::Splice(Box::pin(async move {
                                    let spliced = splice::one_way(
                                        src,
                                        dst,
                                        &pipe,
                                        dir,
                                        traffic,
                                        Some(DEMOTE),
                                    )
                                    .await?;
                                    // Ended cleanly or gone small: the pipe is
                                    // empty (checked again before reuse). A
                                    // failed direction's pipe is closed.
                                    pipe.give_back();
                                    Ok(spliced)
                                }));
                            }
                            Err(err) => {
                                tracing::debug!("splice pipe: {err}; copying in user space");
                                copying.detect_bulk = false;
                            }
                        },
                    }
                }
                Way::Splice(spliced) => match ready!(spliced.as_mut().poll(cx))? {
                    Spliced::Ended => *self = Way::Done,
                    Spliced::Small => {
                        tracing::debug!("{way}: small messages again, copying");
                        *self = Way::Copy(Copying::new(true));
                    }
                },
            }
        }
    }
}

/// How a direction's copy phase ended.
enum Copied {
    /// The source ended and the destination was shut down.
    Ended,
    /// The traffic is bulk: splice from here.
    Bulk,
}

/// A direction's copy phase: reads into a pooled buffer and writes it all
/// out before reading again. The buffer is held only while a message is
/// in flight, so an idle direction holds none.
struct Copying {
    /// Reads that filled the buffer, in a row.
    full_reads: u32,
    /// Whether to stop for splice(2) once the traffic is bulk (off when no
    /// pipe could be had).
    detect_bulk: bool,
    /// A message read and not yet all written.
    held: Option<Held>,
    /// The source's readiness said "not readable" and holds the task's
    /// waker: until it turns readable (one atomic load to check, no lock),
    /// polling it again would only register the same waker again. Cleared
    /// when the task's waker changes.
    waiting: bool,
}

/// `buf[pos..len]` is still to be written.
struct Held {
    buf: Buf,
    pos: usize,
    len: usize,
    /// The destination was waited for: the clock moves on when it takes
    /// the rest.
    waited: bool,
}

impl Copying {
    fn new(detect_bulk: bool) -> Copying {
        Copying {
            full_reads: 0,
            detect_bulk,
            held: None,
            waiting: false,
        }
    }

    /// Copies until the source ends (then shuts the destination down,
    /// unless `last`: its close follows), or, when detecting bulk, until
    /// the traffic turns bulk; `Pending` while the source is empty or the
    /// destination full.
    #[allow(clippy::too_many_arguments)]
    fn poll(
        &mut self,
        cx: &mut Context<'_>,
        same_waker: bool,
        last: bool,
        src: &TcpStream,
        dst: &TcpStream,
        dir: Dir,
        traffic: &Traffic,
    ) -> Poll<Result<Copied, DirError>> {
        // Woken for the other direction (or a timer): nothing new here.
        if self.waiting && same_waker && !may_be_readable(src) {
            return Poll::Pending;
        }
        self.waiting = false;
        loop {
            if let Some(held) = &mut self.held {
                ready!(held.poll_write(cx, dst, dir, traffic))?;
                let full = held.len == held.buf.len();
                // Written: the buffer goes back to the pool.
                self.held = None;
                if full {
                    self.full_reads += 1;
                    if self.detect_bulk && self.full_reads >= BULK_READS {
                        return Poll::Ready(Ok(Copied::Bulk));
                    }
                } else {
                    self.full_reads = 0;
                }
            }
            // Nothing to read: wait without holding a buffer.
            if let Poll::Ready(ready) = src.poll_read_ready(cx) {
                ready.map_err(DirError::Read)?;
            } else {
                self.waiting = true;
                return Poll::Pending;
            }
            // Messages one after another without waiting: a task's budget
            // per poll, as tokio's own I/O keeps (yields when it is spent).
            let budget = ready!(coop::poll_proceed(cx));
            let mut buf = SMALL.take();
            match read(src, &mut buf) {
                Ok(0) => {
                    drop(buf);
                    if !last {
                        shutdown(dst)?;
                    }
                    return Poll::Ready(Ok(Copied::Ended));
                }
                Ok(n) => {
                    budget.made_progress();
                    traffic.touch();
                    self.held = Some(Held {
                        buf,
                        pos: 0,
                        len: n,
                        waited: false,
                    });
                }
                // Readiness was stale (now cleared): poll it again.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Poll::Ready(Err(DirError::Read(err))),
            }
        }
    }
}

impl Held {
    /// Writes the rest to `dst`, `Pending` while its send buffer is full.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        dst: &TcpStream,
        dir: Dir,
        traffic: &Traffic,
    ) -> Poll<Result<(), DirError>> {
        while self.pos < self.len {
            let data = &self.buf[self.pos..self.len];
            let len = data.len();
            let mut short = None;
            let result = dst.try_io(Interest::WRITABLE, || {
                let n = rustix::net::send(dst, data, rustix::net::SendFlags::NOSIGNAL)?;
                if n > 0 && n < len {
                    // The send buffer is full: clear the readiness.
                    short = Some(n);
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            });
            let sent = match (result, short) {
                (_, Some(n)) => n,
                (Ok(0), None) => {
                    return Poll::Ready(Err(DirError::Write(io::ErrorKind::WriteZero.into())));
                }
                (Ok(n), None) => n,
                (Err(err), None) if err.kind() == io::ErrorKind::WouldBlock => {
                    ready!(dst.poll_write_ready(cx)).map_err(DirError::Write)?;
                    self.waited = true;
                    continue;
                }
                (Err(err), None) => return Poll::Ready(Err(DirError::Write(err))),
            };
            // The read just before was touched: a send made at once moves
            // the clock no further.
            if self.waited {
                traffic.add(dir, sent);
            } else {
                traffic.count(dir, sent);
            }
            self.pos += sent;
        }
        Poll::Ready(Ok(()))
    }
}

/// Whether `src`'s readiness says it may be readable (or closed, or
/// failed): no system call, no lock.
fn may_be_readable(src: &TcpStream) -> bool {
    src.try_io(Interest::READABLE, || Ok(())).is_ok()
}

/// One `read` into `buf` if the socket may be readable. A short read
/// drained the socket: its readiness is cleared, so the next call returns
/// `WouldBlock` without a system call.
fn read(src: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let len = buf.len();
    let mut drained = None;
    let result = src.try_io(Interest::READABLE, || {
        let n = rustix::io::read(src, &mut *buf)?;
        if n > 0 && n < len {
            // `try_io` clears the readiness it saw on `WouldBlock`.
            drained = Some(n);
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (result, drained) {
        (_, Some(n)) => Ok(n),
        (result, None) => result,
    }
}

/// Shuts `dst`'s writing down: its peer reads end of stream, and can still
/// send.
fn shutdown(dst: &TcpStream) -> Result<(), DirError> {
    SockRef::from(dst)
        .shutdown(std::net::Shutdown::Write)
        .map_err(DirError::Write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::Side;
    use crate::pipe::buffers::SMALL;
    use crate::pipe::splice::tests::{pair, pooled};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Request/response: every message is copied through a pooled buffer
    /// (no pipe is ever taken), both ways, with half-close and counts.
    #[tokio::test]
    async fn small_messages_are_copied_without_a_pipe() {
        let (mut client_end, client) = pair().await;
        let (upstream, mut upstream_end) = pair().await;
        let traffic = Traffic::new();
        let pipes_before = pooled();
        let (result, (), ()) = tokio::join!(
            relay(&client, &upstream, &traffic),
            async {
                for i in 0..100u32 {
                    let msg = vec![i as u8; 512];
                    client_end.write_all(&msg).await.unwrap();
                    let mut back = vec![0u8; 512];
                    client_end.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, msg, "message {i}");
                }
                client_end.shutdown().await.unwrap();
                let mut rest = Vec::new();
                client_end.read_to_end(&mut rest).await.unwrap();
                assert_eq!(rest, b"bye");
            },
            async {
                let mut msg = vec![0u8; 512];
                for _ in 0..100 {
                    upstream_end.read_exact(&mut msg).await.unwrap();
                    upstream_end.write_all(&msg).await.unwrap();
                }
                // Half-closed by the client: its end arrives, and the reply
                // still goes back.
                assert_eq!(upstream_end.read(&mut msg).await.unwrap(), 0);
                upstream_end.write_all(b"bye").await.unwrap();
                upstream_end.shutdown().await.unwrap();
            }
        );
        result.unwrap();
        assert_eq!((traffic.up(), traffic.down()), (51_200, 51_203));
        assert_eq!(pooled(), pipes_before, "no pipe was taken or given back");
        assert!(
            SMALL.free_here() >= 1,
            "the copy buffers went back to the pool"
        );
    }

    /// A direction that turns bulk moves on to splice(2) (its pipe ends up
    /// in the pool), keeps the byte order across the switch, and the other
    /// direction stays a copy.
    #[tokio::test]
    async fn bulk_moves_on_to_splice_in_order() {
        let (mut client_end, client) = pair().await;
        let (upstream, mut upstream_end) = pair().await;
        let traffic = Traffic::new();
        let pipes_before = pooled();
        // Small messages first (each waits for its echo), then bulk.
        let small: Vec<u8> = (0..20u8).collect();
        let bulk: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let (result, (), got) = tokio::join!(
            relay(&client, &upstream, &traffic),
            async {
                for b in &small {
                    client_end.write_all(&[*b]).await.unwrap();
                    let mut ack = [0u8];
                    client_end.read_exact(&mut ack).await.unwrap();
                }
                client_end.write_all(&bulk).await.unwrap();
                client_end.shutdown().await.unwrap();
                let mut rest = Vec::new();
                client_end.read_to_end(&mut rest).await.unwrap();
                assert_eq!(rest, b"after eof");
            },
            async {
                for _ in &small {
                    let mut b = [0u8];
                    upstream_end.read_exact(&mut b).await.unwrap();
                    upstream_end.write_all(&b).await.unwrap();
                }
                let mut got = Vec::new();
                upstream_end.read_to_end(&mut got).await.unwrap();
                upstream_end.write_all(b"after eof").await.unwrap();
                upstream_end.shutdown().await.unwrap();
                got
            }
        );
        result.unwrap();
        assert!(
            got == bulk,
            "{} of {} bytes, in order",
            got.len(),
            bulk.len()
        );
        assert_eq!(traffic.up(), 20 + 3_000_000);
        assert_eq!(traffic.down(), 20 + 9);
        assert_eq!(pooled(), pipes_before.max(1), "the bulk direction spliced");
    }

    /// A spliced direction whose messages turn small again gives its pipe
    /// back while the connection goes on, and copies again, in order.
    #[tokio::test]
    async fn a_bulk_direction_goes_back_to_copying_when_messages_turn_small() {
        let (mut client_end, client) = pair().await;
        let (upstream, mut upstream_end) = pair().await;
        let traffic = Traffic::new();
        let pipes_before = pooled();
        let bulk = vec![5u8; 2_000_000];
        let (result, during, ()) = tokio::join!(
            relay(&client, &upstream, &traffic),
            async {
                client_end.write_all(&bulk).await.unwrap();
                let mut ack = [0u8];
                client_end.read_exact(&mut ack).await.unwrap();
                let spliced = pooled();
                for i in 0..20u8 {
                    client_end.write_all(&[i]).await.unwrap();
                    client_end.read_exact(&mut ack).await.unwrap();
                    assert_eq!(ack, [i]);
                }
                let during = pooled();
                client_end.shutdown().await.unwrap();
                assert_eq!(client_end.read(&mut ack).await.unwrap(), 0);
                (spliced, during)
            },
            async {
                let mut got = vec![0u8; bulk.len()];
                upstream_end.read_exact(&mut got).await.unwrap();
                assert!(got == bulk);
                upstream_end.write_all(b"k").await.unwrap();
                let mut b = [0u8];
                for _ in 0..20 {
                    upstream_end.read_exact(&mut b).await.unwrap();
                    upstream_end.write_all(&b).await.unwrap();
                }
                assert_eq!(upstream_end.read(&mut b).await.unwrap(), 0);
                upstream_end.shutdown().await.unwrap();
            }
        );
        result.unwrap();
        assert_eq!(
            during.0,
            pipes_before.saturating_sub(1),
            "the bulk direction holds a pipe"
        );
        assert_eq!(during.1, during.0 + 1, "and gave it back");
        assert_eq!((traffic.up(), traffic.down()), (2_000_020, 21));
    }

    /// With [`Relay::closed_after`], the direction that ends last does
    /// not shut its destination down (the caller's close does): its peer
    /// sees no end of stream until the sockets are dropped, and then a
    /// clean one (a FIN, not a reset). The first direction to end still
    /// half-closes at once.
    #[tokio::test]
    async fn closed_after_leaves_the_last_fin_to_the_close() {
        let (mut client_end, client) = pair().await;
        let (upstream, mut upstream_end) = pair().await;
        let traffic = Traffic::new();
        let mut relay = relay(&client, &upstream, &traffic);
        relay.closed_after();
        let (result, ()) = tokio::join!(relay, async {
            client_end.write_all(b"ping").await.unwrap();
            client_end.shutdown().await.unwrap();
            let mut got = Vec::new();
            // The first end (the client's) is passed on at once.
            upstream_end.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"ping");
            upstream_end.write_all(b"pong").await.unwrap();
            upstream_end.shutdown().await.unwrap();
        });
        result.unwrap();
        let mut got = [0u8; 8];
        client_end.read_exact(&mut got[..4]).await.unwrap();
        assert_eq!(&got[..4], b"pong");
        // The relay is done, its sockets still open: no shutdown was made.
        match client_end.try_read(&mut got) {
            Err(err) => assert_eq!(err.kind(), io::ErrorKind::WouldBlock),
            Ok(n) => panic!("the last direction was shut down ({n} bytes read)"),
        }
        drop((client, upstream));
        assert_eq!(client_end.read(&mut got).await.unwrap(), 0, "a clean end");
        assert_eq!((traffic.up(), traffic.down()), (4, 4));
    }

    /// A relay first polled with another waker (moved between tasks, or
    /// polled inside a combinator) registers this task's waker again: the
    /// directions that were waiting to read are not left to the old one.
    #[tokio::test]
    async fn a_relay_polled_with_another_waker_still_wakes_this_task() {
        let (mut client_end, client) = pair().await;
        let (upstream, mut upstream_end) = pair().await;
        let traffic = Traffic::new();
        let mut relay = relay(&client, &upstream, &traffic);
        let mut other = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut relay).poll(&mut other).is_pending());
        let limit = std::time::Duration::from_secs(5);
        let (result, ()) = tokio::join!(tokio::time::timeout(limit, relay), async {
            client_end.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            upstream_end.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"ping");
            client_end.shutdown().await.unwrap();
            upstream_end.shutdown().await.unwrap();
        });
        result.expect("the relay was never woken").unwrap();
        assert_eq!((traffic.up(), traffic.down()), (4, 0));
    }

    #[tokio::test]
    async fn a_reset_is_blamed_on_the_side_that_reset() {
        let (_client_end, client) = pair().await;
        let (upstream, upstream_end) = pair().await;
        SockRef::from(&upstream_end)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(upstream_end);
        let traffic = Traffic::new();
        let fault = relay(&client, &upstream, &traffic).await.err().unwrap();
        assert_eq!(fault.side, Side::Upstream);
        assert_eq!(
            fault.err.kind(),
            io::ErrorKind::ConnectionReset,
            "{}",
            fault.err
        );
    }

    /// A write into a closed peer fails on that side without a SIGPIPE.
    #[tokio::test]
    async fn writing_to_a_vanished_peer_is_its_fault() {
        let (mut client_end, client) = pair().await;
        let (upstream, upstream_end) = pair().await;
        SockRef::from(&upstream_end)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(upstream_end);
        let traffic = Traffic::new();
        let (result, ()) = tokio::join!(relay(&client, &upstream, &traffic), async {
            let _ = client_end.write_all(&[1u8; 4096]).await;
        });
        assert_eq!(result.err().unwrap().side, Side::Upstream);
    }
}
