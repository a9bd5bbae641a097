//! The Linux zero-copy path for TCP to TCP: splice(2) moves bytes from one
//! socket into a pipe and from the pipe into the other socket, so they
//! never cross into user space. A direction comes here once its traffic
//! turns out bulk (`auto`), or when faults shape only the other direction.
//!
//! Such a direction owns a pipe (created with `O_NONBLOCK | O_CLOEXEC`,
//! enlarged to 1 MiB with `F_SETPIPE_SZ` when allowed) and loops: splice
//! from the source into the pipe while it has room, from the pipe into the
//! destination while it holds data, and when neither moves, sleep until the
//! side that can make progress is ready. Readiness comes from tokio
//! (`readable()`, `writable()`, `try_io`): a `WouldBlock` clears it and the
//! task sleeps until epoll says otherwise, so a `WouldBlock` must only be
//! reported when it is certain (see [`one_way`]).
//!
//! Pipes are reused: a direction that ends cleanly gives its pipe back to a
//! small per-thread pool once `FIONREAD` says it is empty, and the next
//! bulk direction takes it, saving the `pipe2`, `F_SETPIPE_SZ` and two
//! `close` calls a new pipe costs. A pipe that may hold a byte (a failed or aborted connection)
//! is closed, never reused: no byte can cross from one connection to
//! another.
//!
//! The syscalls come from `rustix`, whose wrappers are safe (`OwnedFd`,
//! `io::Result`), so this module needs no `unsafe`.

use std::cell::RefCell;
use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;

use rustix::pipe::{PipeFlags, SpliceFlags, fcntl_getpipe_size, fcntl_setpipe_size, pipe_with};
use socket2::SockRef;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::copy::DirError;
use super::{Dir, Traffic};

/// The pipe size asked for: one splice can then move up to 1 MiB. Pipe
/// pages are allocated only while data sits in the pipe, so an idle
/// connection costs four descriptors but no pipe memory.
const PIPE_SIZE: usize = 1024 * 1024;

/// The most empty pipes a thread keeps for reuse (one per bulk direction;
/// each holds two descriptors and no memory while empty).
const POOL_MAX: usize = 32;

thread_local! {
    /// Empty pipes ready for the next connection relayed on this thread.
    static POOL: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

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

    /// A pipe from this thread's pool, or a new one.
    pub(super) fn take() -> io::Result<Pipe> {
        match POOL.try_with(|pool| pool.borrow_mut().pop()) {
            Ok(Some(pipe)) => Ok(pipe),
            _ => Pipe::new(),
        }
    }

    /// Keeps the pipe for the next connection if it is certainly empty and
    /// the pool has room; closes it otherwise.
    pub(super) fn give_back(self) {
        if !matches!(rustix::io::ioctl_fionread(&self.read), Ok(0)) {
            return;
        }
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_MAX {
                pool.push(self);
            }
        });
    }
}

/// When a spliced direction goes back to copying: after `after` splices
/// in a row that each moved fewer than `below` bytes (the traffic is small
/// messages again), once the pipe is empty.
#[derive(Debug, Clone, Copy)]
pub(super) struct Demote {
    /// A splice moving fewer bytes counts as small.
    pub(super) below: usize,
    /// Small splices in a row before giving up the pipe.
    pub(super) after: u32,
}

/// How [`one_way`] returned.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Spliced {
    /// `src` ended and `dst` was shut down.
    Ended,
    /// The traffic turned small (see [`Demote`]); the pipe is empty.
    Small,
}

/// Moves everything from `src` to `dst` through `pipe`; at `src`'s end of
/// stream, shuts `dst`'s writing down (half-close) and returns. With
/// `demote`, returns early, with the pipe empty, once the traffic is small
/// messages again.
///
/// Reading and writing overlap: the pipe is filled while it has room and
/// drained while it has data, so the source's receive window keeps opening
/// while the destination is slow. A splice in that returns `EAGAIN` while
/// the pipe holds data is ambiguous (the socket may be empty, or the pipe
/// out of buffer slots), so it leaves the socket's readiness alone; only an
/// `EAGAIN` into an empty pipe clears it.
pub(super) async fn one_way(
    src: &TcpStream,
    dst: &TcpStream,
    pipe: &Pipe,
    dir: Dir,
    traffic: &Traffic,
    demote: Option<Demote>,
) -> Result<Spliced, DirError> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    // Bytes in the pipe.
    let mut held = 0usize;
    let mut eof = false;
    // Small splices in a row.
    let mut small = 0u32;
    loop {
        let mut progressed = false;
        if !eof && held < pipe.capacity {
            let spliced = src.try_io(Interest::READABLE, || {
                match rustix::pipe::splice(
                    src,
                    None,
                    &pipe.write,
                    None,
                    pipe.capacity - held,
                    flags,
                ) {
                    Ok(n) => Ok(Some(n)),
                    Err(rustix::io::Errno::AGAIN) if held > 0 => Ok(None),
                    Err(err) => Err(io::Error::from(err)),
                }
            });
            match spliced {
                Ok(Some(0)) => {
                    eof = true;
                    progressed = true;
                }
                Ok(Some(n)) => {
                    held += n;
                    traffic.touch();
                    progressed = true;
                    if demote.is_some_and(|d| n < d.below) {
                        small += 1;
                    } else {
                        small = 0;
                    }
                }
                Ok(None) => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(DirError::Read(err)),
            }
        }
        if held > 0 {
            let spliced = dst.try_io(Interest::WRITABLE, || {
                rustix::pipe::splice(&pipe.read, None, dst, None, held, flags)
                    .map_err(io::Error::from)
            });
            match spliced {
                Ok(0) => return Err(DirError::Write(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    held -= n;
                    traffic.add(dir, n);
                    progressed = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                Err(err) => return Err(DirError::Write(err)),
            }
        }
        if eof && held == 0 {
            SockRef::from(dst)
                .shutdown(Shutdown::Write)
                .map_err(DirError::Write)?;
            return Ok(Spliced::Ended);
        }
        if held == 0 && demote.is_some_and(|d| small >= d.after) {
            return Ok(Spliced::Small);
        }
        if !progressed {
            // Sleep until the side that can make progress is ready: the
            // destination while the pipe holds data, else the source.
            if held > 0 {
                dst.writable().await.map_err(DirError::Write)?;
            } else {
                src.readable().await.map_err(DirError::Read)?;
            }
        } else {
            // Many splices in a row without waiting: let other tasks run.
            tokio::task::consume_budget().await;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// Two ends of a loopback TCP connection.
    pub(in crate::pipe) async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (a, b) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (a.unwrap(), b.unwrap().0)
    }

    /// Empty pipes this thread keeps.
    pub(in crate::pipe) fn pooled() -> usize {
        POOL.with(|pool| pool.borrow().len())
    }

    /// A cleanly ended direction's pipe is reused by the next one on the
    /// thread, and carries its bytes exactly, half-close included; a pipe
    /// that still holds a byte is closed, never pooled.
    #[tokio::test]
    async fn empty_pipes_are_reused_and_a_pipe_with_data_never_is() {
        for round in 0..3u8 {
            let (mut client_end, client) = pair().await;
            let (upstream, mut upstream_end) = pair().await;
            let before = pooled();
            let pipe = Pipe::take().unwrap();
            assert!(pipe.capacity >= 4096, "{}", pipe.capacity);
            if round > 0 {
                assert_eq!(pooled(), before - 1, "round {round} took the pooled pipe");
            }
            let traffic = Traffic::new();
            let data = vec![round; 200_000];
            let (result, (), got) = tokio::join!(
                one_way(&client, &upstream, &pipe, Dir::Up, &traffic, None),
                async {
                    client_end.write_all(&data).await.unwrap();
                    client_end.shutdown().await.unwrap();
                },
                async {
                    let mut got = Vec::new();
                    upstream_end.read_to_end(&mut got).await.unwrap();
                    got
                }
            );
            assert_eq!(result.ok(), Some(Spliced::Ended));
            assert!(got == data, "round {round}: {} bytes", got.len());
            assert_eq!(traffic.up(), 200_000);
            pipe.give_back();
            assert_eq!(pooled(), 1, "round {round}");
        }
        // A byte left in a pipe: not given back.
        let pipe = Pipe::take().unwrap();
        rustix::io::write(&pipe.write, b"x").unwrap();
        let before = pooled();
        pipe.give_back();
        assert_eq!(pooled(), before);
    }
}
