//! The Linux zero-copy relay path for TCP to TCP: splice(2) moves bytes from
//! one socket into a pipe and from the pipe into the other socket, so they
//! never cross into user space.
//!
//! Each direction owns a pipe (created with `O_NONBLOCK | O_CLOEXEC`,
//! enlarged to 1 MiB with `F_SETPIPE_SZ` when allowed) and loops: wait
//! until the source is readable, splice what it has into the empty pipe,
//! then wait until the destination is writable and splice the pipe out
//! until it is empty again. Readiness comes from tokio (`readable()`,
//! `writable()`, `try_io`), so a `WouldBlock` clears it and the task sleeps
//! until epoll says otherwise. Splicing in only into an *empty* pipe keeps
//! that sound: `EAGAIN` from the socket-to-pipe splice can then only mean
//! the socket has nothing, never that the pipe is full.
//!
//! The syscalls come from `rustix`, whose wrappers are safe (`OwnedFd`,
//! `io::Result`), so this module needs no `unsafe`.

use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;

use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with};
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::copy::DirError;
use super::{Dir, Fault, Traffic};

/// The pipe size asked for: one splice can then move up to 1 MiB. Pipe
/// pages are allocated only while data sits in the pipe, so an idle
/// connection costs four descriptors but no pipe memory.
const PIPE_SIZE: usize = 1024 * 1024;

/// A pipe used as the in-kernel buffer of one direction. Both ends close on
/// drop.
pub(super) struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// The pipe's capacity in bytes: the most one splice moves.
    capacity: usize,
}

impl Pipe {
    /// Creates a non-blocking, close-on-exec pipe of [`PIPE_SIZE`], or of
    /// the system's default size when enlarging it is not permitted (an
    /// unprivileged user past `/proc/sys/fs/pipe-max-size` or
    /// `pipe-user-pages-soft`).
    pub(super) fn new() -> io::Result<Pipe> {
        let (read, write) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
        let capacity = match fcntl_setpipe_size(&write, PIPE_SIZE) {
            Ok(size) => size,
            Err(err) => {
                tracing::trace!("F_SETPIPE_SZ {PIPE_SIZE}: {err}; using the default pipe size");
                fcntl_getpipe_size(&write)?
            }
        };
        Ok(Pipe {
            read,
            write,
            capacity,
        })
    }
}

/// The pipes of one relayed connection, one per direction.
pub(super) struct Pipes {
    up: Pipe,
    down: Pipe,
}

impl Pipes {
    /// Creates both pipes (four descriptors).
    pub(super) fn new() -> io::Result<Pipes> {
        Ok(Pipes {
            up: Pipe::new()?,
            down: Pipe::new()?,
        })
    }
}

/// Relays between two TCP streams with splice(2) until both directions
/// have ended, or until either side fails.
pub(super) async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    pipes: &Pipes,
    traffic: &Traffic,
) -> Result<(), Fault> {
    let up = one_way(client, upstream, &pipes.up, Dir::Up, traffic);
    let down = one_way(upstream, client, &pipes.down, Dir::Down, traffic);
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
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

/// Moves everything from `src` to `dst` through `pipe`; at `src`'s end of
/// stream, shuts `dst`'s writing down (half-close) and returns.
async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &Pipe,
    dir: Dir,
    traffic: &Traffic,
) -> Result<(), DirError> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        // The pipe is empty here.
        let filled = loop {
            src.readable().await.map_err(DirError::Read)?;
            let spliced = src.try_io(Interest::READABLE, || {
                rustix::pipe::splice(src, None, &pipe.write, None, pipe.capacity, flags)
                    .map_err(io::Error::from)
            });
            match spliced {
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(DirError::Read(err)),
            }
        };
        if filled == 0 {
            SockRef::from(dst)
                .shutdown(Shutdown::Write)
                .map_err(DirError::Write)?;
            return Ok(());
        }
        traffic.touch();
        let mut left = filled;
        while left > 0 {
            dst.writable().await.map_err(DirError::Write)?;
            let spliced = dst.try_io(Interest::WRITABLE, || {
                rustix::pipe::splice(&pipe.read, None, dst, None, left, flags)
                    .map_err(io::Error::from)
            });
            match spliced {
                Ok(0) => return Err(DirError::Write(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    left -= n;
                    traffic.add(dir, n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Err(DirError::Write(err)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::Side;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Two ends of a loopback TCP connection.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (a.unwrap(), b.unwrap().0)
    }

    #[tokio::test]
    async fn relays_both_ways_with_half_close_and_counts() {
        let (mut client_end, client) = pair().await;
        let (upstream, mut upstream_end) = pair().await;
        let relay = tokio::spawn(async move {
            let traffic = Traffic::new();
            let pipes = Pipes::new().unwrap();
            assert!(pipes.up.capacity >= 4096, "{}", pipes.up.capacity);
            let result = relay(&client, &upstream, &pipes, &traffic).await;
            (result.is_ok(), traffic.up(), traffic.down())
        });
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = data.clone();
        let client_task = tokio::spawn(async move {
            client_end.write_all(&sent).await.unwrap();
            client_end.shutdown().await.unwrap();
            let mut reply = Vec::new();
            client_end.read_to_end(&mut reply).await.unwrap();
            reply
        });
        let mut got = Vec::new();
        upstream_end.read_to_end(&mut got).await.unwrap();
        assert!(got == data, "{} of {} bytes", got.len(), data.len());
        upstream_end.write_all(b"after eof").await.unwrap();
        upstream_end.shutdown().await.unwrap();
        assert_eq!(client_task.await.unwrap(), b"after eof");
        assert_eq!(relay.await.unwrap(), (true, 3_000_000, 9));
    }

    #[tokio::test]
    async fn a_reset_is_blamed_on_the_side_that_reset() {
        let (_client_end, client) = pair().await;
        let (upstream, upstream_end) = pair().await;
        SockRef::from(&upstream_end)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(upstream_end);
        let pipes = Pipes::new().unwrap();
        let fault = relay(&client, &upstream, &pipes, &Traffic::new())
            .await
            .err()
            .unwrap();
        assert_eq!(fault.side, Side::Upstream);
        assert_eq!(
            fault.err.kind(),
            io::ErrorKind::ConnectionReset,
            "{}",
            fault.err
        );
    }
}
