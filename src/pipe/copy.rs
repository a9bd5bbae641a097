//! The portable path of the pipe: a user-space copy in both directions, one
//! 64 KiB buffer each, propagating half-close. Used for every transport
//! pair splice(2) cannot serve (TLS, Unix sockets, non-Linux) and with
//! `--no-splice`.
//!
//! Both directions are polled from one future over `&mut` streams (no
//! split, no lock): a direction reads into its buffer, writes it all to
//! the other side, and at end of stream shuts the other side's writing
//! down, while the opposite direction carries on until it ends too.
//!
//! A direction holds its buffer only while data flows: when a read would
//! block with nothing left to write, the buffer goes back to the thread's
//! pool ([`buffers`](super::buffers)), so an idle relayed connection costs
//! no buffer memory and a message costs no allocation.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::buffers::{Buf, LARGE};
use super::{Dir, Fault, Traffic};

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

/// One direction's state: a buffer holding `buf[pos..len]` still to write.
struct Direction {
    dir: Dir,
    /// `None` while the direction is idle.
    buf: Option<Buf>,
    pos: usize,
    len: usize,
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
            buf: None,
            pos: 0,
            len: 0,
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
            if self.pos == self.len && !self.read_done {
                self.pos = 0;
                self.len = 0;
                let buf = self.buf.get_or_insert_with(|| LARGE.take());
                let mut read = ReadBuf::new(&mut buf[..]);
                match src.as_mut().poll_read(cx, &mut read) {
                    Poll::Pending => {
                        // Idle: give the buffer back until data comes.
                        self.buf = None;
                        // Nothing to read now: push out what was written
                        // (a TLS stream buffers records until flushed).
                        if self.need_flush {
                            ready!(dst.as_mut().poll_flush(cx)).map_err(DirError::Write)?;
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                    Poll::Ready(Err(err)) => return Poll::Ready(Err(DirError::Read(err))),
                    Poll::Ready(Ok(())) => match read.filled().len() {
                        0 => self.read_done = true,
                        n => {
                            self.len = n;
                            traffic.touch();
                        }
                    },
                }
            }
            while self.pos < self.len {
                let Some(buf) = &self.buf else { break };
                let n = ready!(dst.as_mut().poll_write(cx, &buf[self.pos..self.len]))
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

/// Copies `src` to `dst` as direction `dir` until `src` ends (then `dst`
/// is shut down), or until either fails.
pub(super) async fn one_way<R, W>(
    src: &mut R,
    dst: &mut W,
    dir: Dir,
    traffic: &Traffic,
) -> Result<(), Fault>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut direction = Direction::new(dir);
    poll_fn(|cx| {
        direction
            .poll_copy(cx, Pin::new(&mut *src), Pin::new(&mut *dst), traffic)
            .map_err(|e| e.blame(dir))
    })
    .await
}

/// Relays between `client` and `upstream` until both directions have
/// ended, or until either side fails.
pub(super) fn relay<'a, A, B>(
    client: &'a mut A,
    upstream: &'a mut B,
    traffic: &'a Traffic,
) -> Relay<'a, A, B>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    Relay {
        client,
        upstream,
        traffic,
        up: Direction::new(Dir::Up),
        down: Direction::new(Dir::Down),
    }
}

/// [`relay`]'s future: both directions, polled in turn.
pub(crate) struct Relay<'a, A: ?Sized, B: ?Sized> {
    client: &'a mut A,
    upstream: &'a mut B,
    traffic: &'a Traffic,
    up: Direction,
    down: Direction,
}

impl<A, B> Future for Relay<'_, A, B>
where
    A: AsyncRead + AsyncWrite + Unpin + ?Sized,
    B: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    type Output = Result<(), Fault>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Relay {
            client,
            upstream,
            traffic,
            up,
            down,
        } = self.get_mut();
        if !up.done
            && let Poll::Ready(result) = up.poll_copy(
                cx,
                Pin::new(&mut **client),
                Pin::new(&mut **upstream),
                traffic,
            )
        {
            result.map_err(|e| e.blame(Dir::Up))?;
        }
        if !down.done
            && let Poll::Ready(result) = down.poll_copy(
                cx,
                Pin::new(&mut **upstream),
                Pin::new(&mut **client),
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
    }
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
