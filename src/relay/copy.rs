//! The portable relay path: a user-space copy in both directions, one
//! 64 KiB buffer each, propagating half-close. Used for every transport
//! pair splice(2) cannot serve (TLS, Unix sockets, non-Linux) and with
//! `--no-splice`.
//!
//! Both directions are polled from one future over `&mut` streams (no
//! split, no lock): a direction reads into its buffer, writes it all to
//! the other side, and at end of stream shuts the other side's writing
//! down, while the opposite direction carries on until it ends too.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{Dir, Fault, Traffic};

/// The copy buffer per direction: large enough for bulk transfers to run
/// at full speed through TLS records and Unix sockets.
const BUF_SIZE: usize = 64 * 1024;

/// Where one direction's copy failed.
pub(super) enum DirError {
    /// Reading from the source failed.
    Read(io::Error),
    /// Writing to (or shutting down) the destination failed.
    Write(io::Error),
}

impl DirError {
    /// The failure as a fault of the side that caused it.
    pub(super) fn blame(self, dir: Dir) -> Fault {
        match self {
            DirError::Read(err) => Fault {
                side: dir.source(),
                err,
            },
            DirError::Write(err) => Fault {
                side: dir.destination(),
                err,
            },
        }
    }
}

/// One direction's state: a buffer holding `buf[pos..cap]` still to write.
struct Direction {
    dir: Dir,
    buf: Box<[u8]>,
    pos: usize,
    cap: usize,
    /// The source reached end of stream.
    read_done: bool,
    /// Bytes were written since the last flush.
    need_flush: bool,
    /// Everything was written and the destination shut down.
    done: bool,
}

impl Direction {
    fn new(dir: Dir) -> Direction {
        Direction {
            dir,
            buf: vec![0u8; BUF_SIZE].into_boxed_slice(),
            pos: 0,
            cap: 0,
            read_done: false,
            need_flush: false,
            done: false,
        }
    }

    /// Copies until the source would block, ends (then shuts the
    /// destination down and returns `Ready(Ok)`) or fails.
    fn poll_copy<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        mut src: Pin<&mut R>,
        mut dst: Pin<&mut W>,
        traffic: &Traffic,
    ) -> Poll<Result<(), DirError>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            if self.pos == self.cap && !self.read_done {
                let mut rb = ReadBuf::new(&mut self.buf);
                match src.as_mut().poll_read(cx, &mut rb) {
                    Poll::Pending => {
                        // Nothing to read now: push out what was written
                        // (a TLS stream buffers records until flushed).
                        if self.need_flush {
                            ready!(dst.as_mut().poll_flush(cx)).map_err(DirError::Write)?;
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(DirError::Read(err))),
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            self.read_done = true;
                        } else {
                            self.pos = 0;
                            self.cap = n;
                            traffic.touch();
                        }
                    }
                }
            }
            while self.pos < self.cap {
                let n = ready!(dst.as_mut().poll_write(cx, &self.buf[self.pos..self.cap]))
                    .map_err(DirError::Write)?;
                if n == 0 {
                    return Poll::Ready(Err(DirError::Write(io::ErrorKind::WriteZero.into())));
                }
                self.pos += n;
                self.need_flush = true;
                traffic.add(self.dir, n);
            }
            if self.read_done {
                // Half-close: the destination reads EOF, and can still send.
                ready!(dst.as_mut().poll_shutdown(cx)).map_err(DirError::Write)?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Relays between `client` and `upstream` until both directions have
/// ended, or until either side fails.
pub(super) async fn relay<A, B>(
    client: &mut A,
    upstream: &mut B,
    traffic: &Traffic,
) -> Result<(), Fault>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut up = Direction::new(Dir::Up);
    let mut down = Direction::new(Dir::Down);
    poll_fn(|cx| {
        if !up.done
            && let Poll::Ready(result) = up.poll_copy(
                cx,
                Pin::new(&mut *client),
                Pin::new(&mut *upstream),
                traffic,
            )
        {
            result.map_err(|e| e.blame(Dir::Up))?;
        }
        if !down.done
            && let Poll::Ready(result) = down.poll_copy(
                cx,
                Pin::new(&mut *upstream),
                Pin::new(&mut *client),
                traffic,
            )
        {
            result.map_err(|e| e.blame(Dir::Down))?;
        }
        if up.done && down.done {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test]
    async fn copies_both_ways_and_propagates_half_close() {
        // client_end <-> (relay) <-> upstream_end
        let (mut client_end, mut client) = duplex(4096);
        let (mut upstream, mut upstream_end) = duplex(4096);
        let traffic = Traffic::new();
        let relay = tokio::spawn(async move {
            let r = relay(&mut client, &mut upstream, &traffic).await;
            (r.is_ok(), traffic.up(), traffic.down())
        });
        let big = vec![7u8; 300_000];
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            client_end.write_all(&sent).await.unwrap();
            client_end.shutdown().await.unwrap();
            // Half-closed: the reply still arrives.
            let mut reply = Vec::new();
            client_end.read_to_end(&mut reply).await.unwrap();
            reply
        });
        let mut got = Vec::new();
        upstream_end.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, big);
        upstream_end.write_all(b"after eof").await.unwrap();
        upstream_end.shutdown().await.unwrap();
        assert_eq!(writer.await.unwrap(), b"after eof");
        assert_eq!(relay.await.unwrap(), (true, 300_000, 9));
    }
}
