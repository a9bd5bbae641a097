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

use std::io;

use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::buffers::SMALL;
use super::copy::DirError;
use super::splice::{self, Demote, Pipe, Spliced};
use super::{Dir, Fault, Traffic};

/// Reads that fill the copy buffer, in a row, after which a direction
/// moves on to splice(2).
pub(super) const BULK_READS: u32 = 2;

/// Relays between two TCP streams until both directions have ended, or
/// until either side fails.
pub(super) async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    traffic: &Traffic,
) -> Result<(), Fault> {
    let up = one_way(client, upstream, Dir::Up, traffic);
    let down = one_way(upstream, client, Dir::Down, traffic);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            biased;
            result = &mut up, if !up_done => {
                result.map_err(|e| e.blame(Dir::Up))?;
                up_done = true;
            }
            result = &mut down, if !down_done => {
                result.map_err(|e| e.blame(Dir::Down))?;
                down_done = true;
            }
        }
    }
    Ok(())
}

/// How a direction's copy phase ended.
enum Copied {
    /// The source ended and the destination was shut down.
    Ended,
    /// The traffic is bulk: splice from here.
    Bulk,
}

/// When a spliced direction goes back to copying: after 8 splices in a
/// row of less than the copy buffer each.
const DEMOTE: Demote = Demote {
    below: 16 * 1024,
    after: 8,
};

/// One direction: copied while its messages are small, spliced while it
/// is bulk; at `src`'s end of stream, `dst`'s writing is shut down
/// (half-close).
async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    dir: Dir,
    traffic: &Traffic,
) -> Result<(), DirError> {
    let way = match dir {
        Dir::Up => "client to upstream",
        Dir::Down => "upstream to client",
    };
    loop {
        if let Copied::Ended = copy(src, dst, dir, traffic, true).await? {
            return Ok(());
        }
        let pipe = match Pipe::take() {
            Ok(pipe) => pipe,
            Err(err) => {
                tracing::debug!("splice pipe: {err}; copying in user space");
                copy(src, dst, dir, traffic, false).await?;
                return Ok(());
            }
        };
        tracing::debug!("{way}: bulk traffic, splicing from here");
        let spliced = splice::one_way(src, dst, &pipe, dir, traffic, Some(DEMOTE)).await?;
        // Ended cleanly or gone small: the pipe is empty (checked again
        // before reuse).
        pipe.give_back();
        if spliced == Spliced::Ended {
            return Ok(());
        }
        tracing::debug!("{way}: small messages again, copying");
    }
}

/// Copies `src` to `dst` through a pooled buffer until `src` ends (then
/// shuts `dst` down), or, when `detect_bulk`, until the traffic turns
/// bulk. The buffer is held only while a message is in flight.
async fn copy(
    src: &TcpStream,
    dst: &TcpStream,
    dir: Dir,
    traffic: &Traffic,
    detect_bulk: bool,
) -> Result<Copied, DirError> {
    let mut full_reads = 0;
    loop {
        let mut buf = SMALL.take();
        let n = loop {
            match read(src, &mut buf) {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // Nothing to read: wait without holding the buffer.
                    drop(buf);
                    src.readable().await.map_err(DirError::Read)?;
                    buf = SMALL.take();
                }
                Err(err) => return Err(DirError::Read(err)),
            }
        };
        if n == 0 {
            drop(buf);
            shutdown(dst)?;
            return Ok(Copied::Ended);
        }
        traffic.touch();
        write_all(dst, &buf[..n], dir, traffic).await?;
        if n < buf.len() {
            full_reads = 0;
        } else {
            full_reads += 1;
            if detect_bulk && full_reads >= BULK_READS {
                return Ok(Copied::Bulk);
            }
        }
        drop(buf);
        // Messages one after another without waiting: let other tasks run.
        tokio::task::consume_budget().await;
    }
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

/// Writes all of `data` to `dst`, sleeping while its send buffer is full.
async fn write_all(
    dst: &TcpStream,
    mut data: &[u8],
    dir: Dir,
    traffic: &Traffic,
) -> Result<(), DirError> {
    // The read just before was touched: a send made at once moves the
    // clock no further.
    let mut waited = false;
    while !data.is_empty() {
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
            (Ok(0), None) => return Err(DirError::Write(io::ErrorKind::WriteZero.into())),
            (Ok(n), None) => n,
            (Err(err), None) if err.kind() == io::ErrorKind::WouldBlock => {
                dst.writable().await.map_err(DirError::Write)?;
                waited = true;
                continue;
            }
            (Err(err), None) => return Err(DirError::Write(err)),
        };
        if waited {
            traffic.add(dir, sent);
        } else {
            traffic.count(dir, sent);
        }
        data = &data[sent..];
    }
    Ok(())
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
