//! The Linux zero-copy path of `connect` on stdin and stdout, for TCP and
//! Unix stream sockets: bytes move between the process's pipes (or a file
//! on stdin) and the socket inside the kernel, never through a user-space
//! buffer.
//!
//! - Sending, stdin a pipe: splice(2) from the pipe straight into the
//!   socket (a pipe on one side is all splice needs, so no pipe of our own).
//! - Sending, stdin a regular file: sendfile(2) from the file into the
//!   socket, from the file's current offset, as `read` would.
//! - Receiving, stdout a pipe: splice(2) from the socket into the pipe.
//! - Anything else (a terminal, /dev/null, a socket, a file on stdout): the
//!   portable copy of [`super::copy`], as before.
//!
//! stdin and stdout are never switched to `O_NONBLOCK`: their file
//! descriptions may be shared with other processes (a shell, the rest of a
//! pipeline), which would see the flag too. `SPLICE_F_NONBLOCK` instead
//! makes the pipe side of one splice return `EAGAIN` rather than wait (the
//! `splice_nonblock_leaves_a_blocking_pipe_blocking` test checks that), and
//! the sockets are non-blocking already. Readiness comes from tokio: the
//! socket's own registration, and an [`AsyncFd`] on a duplicate of the
//! stdio descriptor (epoll works on pipes).
//!
//! One `EAGAIN` from a splice does not say which side was not ready, and
//! clearing the readiness of a side that is in fact ready would sleep
//! forever (its edge has been consumed). So after an `EAGAIN` both
//! descriptors are polled with a zero timeout, and only a side that poll(2)
//! confirms not ready has its readiness cleared, inside the same `try_io`
//! as the splice so that an edge arriving meanwhile is not lost.
//!
//! The syscalls come from `rustix`'s safe wrappers, so this needs no
//! `unsafe`. (The relay's splice module moves socket to socket through a
//! pipe of its own, with the readiness of two sockets; it shares nothing
//! with this one beyond the flags.)

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::pipe::{SpliceFlags, splice};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, Ready};
use tokio::net::{TcpStream, UnixStream};

use super::{
    ConnectConfig, ConnectReport, CopyError, LastByte, Stdout, copy, download_result, end_output,
    finish, finish_upload, shuttle,
};
use crate::error::Result;
use crate::pipe::{Dir, Traffic};
use crate::transport::Stream;

/// The most one splice or sendfile is asked to move: more than a pipe or a
/// socket buffer holds, so each call moves whatever is ready.
const MAX_CHUNK: usize = 4 * 1024 * 1024;

/// Consecutive `EAGAIN`s with both sides polled ready (kernel memory
/// pressure, say) before backing off with a short sleep instead of
/// yielding.
const SPINS_BEFORE_SLEEP: u32 = 16;

/// How stdin reaches the socket.
enum Upload {
    /// splice(2) from a pipe.
    Splice(AsyncFd<OwnedFd>),
    /// sendfile(2) from a regular file.
    Sendfile(OwnedFd),
    /// The portable copy.
    Copy,
}

impl Upload {
    fn name(&self) -> &'static str {
        match self {
            Upload::Splice(_) => "splice",
            Upload::Sendfile(_) => "sendfile",
            Upload::Copy => "copy",
        }
    }
}

/// How the socket reaches stdout.
enum Download {
    /// splice(2) into a pipe.
    Splice(AsyncFd<OwnedFd>),
    /// The portable copy.
    Copy,
}

/// The file type of a standard descriptor, if it can be told.
fn file_type(fd: BorrowedFd<'_>) -> Option<FileType> {
    rustix::fs::fstat(fd)
        .ok()
        .map(|st| FileType::from_raw_mode(st.st_mode))
}

/// A duplicate of `fd` (close-on-exec), so the original stays untouched
/// when it is closed.
fn dup(fd: BorrowedFd<'_>) -> Option<OwnedFd> {
    fd.try_clone_to_owned()
        .inspect_err(|e| tracing::debug!("duplicate a standard descriptor: {e}"))
        .ok()
}

/// Registers a duplicate of `fd` with tokio for `interest`; `None` when
/// epoll refuses it.
///
/// tokio 1.54 deprecated `AsyncFd::with_interest` in favour of an `unsafe`
/// constructor, because an arbitrary `AsRawFd` type may return a different
/// or closed descriptor over time. An `OwnedFd` cannot: it holds one open
/// descriptor until dropped, which is exactly the contract the `unsafe`
/// constructor asks for. So the safe one is sound here, and the crate keeps
/// `unsafe_code = "deny"` without exceptions.
#[allow(deprecated)]
fn register(fd: BorrowedFd<'_>, interest: Interest) -> Option<AsyncFd<OwnedFd>> {
    AsyncFd::with_interest(dup(fd)?, interest)
        .inspect_err(|e| tracing::debug!("register a standard descriptor with epoll: {e}"))
        .ok()
}

/// Chooses how stdin is sent.
fn upload_for(stdin: BorrowedFd<'_>) -> Upload {
    match file_type(stdin) {
        Some(FileType::Fifo) => {
            register(stdin, Interest::READABLE).map_or(Upload::Copy, Upload::Splice)
        }
        Some(FileType::RegularFile) => dup(stdin).map_or(Upload::Copy, Upload::Sendfile),
        _ => Upload::Copy,
    }
}

/// Chooses how stdout is written.
fn download_for(stdout: BorrowedFd<'_>) -> Download {
    match file_type(stdout) {
        Some(FileType::Fifo) => {
            register(stdout, Interest::WRITABLE).map_or(Download::Copy, Download::Splice)
        }
        _ => Download::Copy,
    }
}

/// Pipes `stream` to and from stdin and stdout (see
/// [`run_stdio`](super::run_stdio)), zero-copy where the descriptors allow.
pub(super) async fn pipe_stdio(config: &ConnectConfig, stream: Stream) -> Result<ConnectReport> {
    let upload = upload_for(std::io::stdin().as_fd());
    let download = download_for(std::io::stdout().as_fd());
    let zero_copy = !matches!((&upload, &download), (Upload::Copy, Download::Copy));
    match stream {
        Stream::Tcp(mut tcp) if zero_copy => {
            log_path(&upload, &download);
            let (rd, wr) = tcp.split();
            pipe_split(config, rd, wr, upload, download).await
        }
        Stream::Unix(mut unix) if zero_copy => {
            log_path(&upload, &download);
            let (rd, wr) = unix.split();
            pipe_split(config, rd, wr, upload, download).await
        }
        stream => {
            tracing::debug!("connect: copy path (no pipe or file on stdin or stdout)");
            super::pipe(config, stream, tokio::io::stdin(), Stdout::new()).await
        }
    }
}

fn log_path(upload: &Upload, download: &Download) {
    let down = match download {
        Download::Splice(_) => "splice",
        Download::Copy => "copy",
    };
    tracing::debug!(
        "connect: splice path (upload: {}, download: {down})",
        upload.name()
    );
}

/// A connected socket whose readiness tokio tracks: TCP or Unix.
trait Socket: AsFd {
    /// As `TcpStream::try_io`.
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;
    /// As `TcpStream::ready`.
    fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>>;
}

impl Socket for TcpStream {
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        TcpStream::try_io(self, interest, f)
    }

    fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>> {
        TcpStream::ready(self, interest)
    }
}

impl Socket for UnixStream {
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        UnixStream::try_io(self, interest, f)
    }

    fn ready(&self, interest: Interest) -> impl Future<Output = io::Result<Ready>> {
        UnixStream::ready(self, interest)
    }
}

/// Runs both directions over the borrowed halves of one socket, each the
/// zero-copy way or by copy.
async fn pipe_split<S, RH, WH>(
    config: &ConnectConfig,
    mut rd: RH,
    mut wr: WH,
    upload: Upload,
    download: Download,
) -> Result<ConnectReport>
where
    S: Socket,
    RH: AsyncRead + AsRef<S> + Unpin,
    WH: AsyncWrite + AsRef<S> + Unpin,
{
    let traffic = Traffic::new();
    let last_byte = LastByte::new();
    let mut stdout = Stdout::new();
    let up = async {
        let copied = match upload {
            Upload::Splice(stdin) => {
                match splice_pipe(&stdin, wr.as_ref(), Way::Up, &traffic).await {
                    Moved::All(result) => result,
                    Moved::Unsupported(e) => {
                        tracing::debug!("splice from stdin: {e}; copying instead");
                        copy_up(&mut wr, &traffic).await
                    }
                }
            }
            Upload::Sendfile(file) => match sendfile_up(&file, wr.as_ref(), &traffic).await {
                Moved::All(result) => result,
                Moved::Unsupported(e) => {
                    tracing::debug!("sendfile from stdin: {e}; copying instead");
                    copy_up(&mut wr, &traffic).await
                }
            },
            Upload::Copy => copy_up(&mut wr, &traffic).await,
        };
        finish_upload(config, copied, &mut wr, &traffic).await
    };
    let down = async {
        let mut copied = match download {
            Download::Splice(out) => {
                let moved = splice_pipe(&out, rd.as_ref(), Way::Down, &traffic).await;
                // Our duplicate of stdout would keep the pipe open after
                // fd 1 is closed.
                drop(out);
                match moved {
                    Moved::All(result) => result,
                    Moved::Unsupported(e) => {
                        tracing::debug!("splice to stdout: {e}; copying instead");
                        copy(&mut rd, &mut stdout, &traffic, Dir::Down, Some(&last_byte)).await
                    }
                }
            }
            Download::Copy => {
                copy(&mut rd, &mut stdout, &traffic, Dir::Down, Some(&last_byte)).await
            }
        };
        if copied.is_ok() {
            copied = end_output(&mut stdout).await;
        }
        download_result(config, copied)
    };
    let output_closed = shuttle(config, up, down, &traffic).await?;
    // A spliced download wrote nothing through `stdout`: its flush is a no-op.
    finish(&mut stdout, output_closed, &traffic, &last_byte).await
}

/// The portable copy of stdin into the socket.
async fn copy_up<W>(wr: &mut W, traffic: &Traffic) -> std::result::Result<(), CopyError>
where
    W: AsyncWrite + Unpin,
{
    copy(&mut tokio::io::stdin(), wr, traffic, Dir::Up, None).await
}

/// How a zero-copy direction ended.
enum Moved {
    /// Done (at end of stream) or failed.
    All(std::result::Result<(), CopyError>),
    /// The kernel cannot do it for these descriptors (the first call
    /// failed with `EINVAL` or the like, having moved nothing): copy
    /// instead.
    Unsupported(io::Error),
}

/// Whether a failed first call means "not supported here".
fn unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(code) if code == Errno::INVAL.raw_os_error()
            || code == Errno::NOSYS.raw_os_error()
            || code == Errno::OPNOTSUPP.raw_os_error()
    )
}

/// What one splice attempt did.
enum Step {
    /// Moved this many bytes; 0 is the end of the source.
    Moved(usize),
    /// Neither side polled not-ready, yet the splice could not move
    /// anything: try again.
    Again,
    /// The socket is not ready (its readiness was cleared): wait for it.
    Blocked,
}

/// Whether `fd` is ready for `flags` right now (a zero-timeout poll).
/// Errors and hang-ups count as ready: the next splice reports them.
fn ready_now(fd: BorrowedFd<'_>, flags: PollFlags) -> io::Result<bool> {
    let mut fds = [PollFd::from_borrowed_fd(fd, flags)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    poll(&mut fds, Some(&zero))?;
    Ok(!fds[0].revents().is_empty())
}

/// Polls source and destination after an `EAGAIN`.
fn which_ready(src: BorrowedFd<'_>, dst: BorrowedFd<'_>) -> io::Result<(bool, bool)> {
    Ok((
        ready_now(src, PollFlags::IN | PollFlags::RDHUP)?,
        ready_now(dst, PollFlags::OUT)?,
    ))
}

/// One splice of as much as is ready from `src` to `dst`. `Err(WouldBlock)`
/// is never returned here: the callers decide which side's readiness to
/// clear from `(src_ready, dst_ready)`, returned as `Err` with the poll.
fn splice_once(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
) -> io::Result<std::result::Result<usize, (bool, bool)>> {
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    match splice(src, None, dst, None, MAX_CHUNK, flags) {
        Ok(n) => Ok(Ok(n)),
        Err(Errno::AGAIN) => Ok(Err(which_ready(src, dst)?)),
        Err(err) => Err(err.into()),
    }
}

/// Backs off after an `EAGAIN` that neither side explains.
async fn stall(spins: &mut u32) {
    *spins += 1;
    if *spins >= SPINS_BEFORE_SLEEP {
        *spins = 0;
        tokio::time::sleep(Duration::from_millis(1)).await;
    } else {
        tokio::task::yield_now().await;
    }
}

/// Which way [`splice_pipe`] moves bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// From the stdin pipe into the socket.
    Up,
    /// From the socket into the stdout pipe.
    Down,
}

impl Way {
    /// The direction its bytes are counted as: sent, or received.
    fn dir(self) -> Dir {
        match self {
            Way::Up => Dir::Up,
            Way::Down => Dir::Down,
        }
    }
}

/// Splices everything between a stdio pipe and the socket, `way` deciding
/// which is the source, until the source's end of stream.
async fn splice_pipe<S: Socket>(
    pipe: &AsyncFd<OwnedFd>,
    sock: &S,
    way: Way,
    traffic: &Traffic,
) -> Moved {
    type Side = fn(io::Error) -> CopyError;
    let (sock_interest, sock_error, pipe_error): (Interest, Side, Side) = match way {
        Way::Up => (Interest::WRITABLE, CopyError::Write, CopyError::Read),
        Way::Down => (Interest::READABLE, CopyError::Read, CopyError::Write),
    };
    let mut first = true;
    let mut spins = 0;
    loop {
        if let Err(e) = sock.ready(sock_interest).await {
            return Moved::All(Err(sock_error(e)));
        }
        let guard = match way {
            Way::Up => pipe.readable().await,
            Way::Down => pipe.writable().await,
        };
        let mut guard = match guard {
            Ok(guard) => guard,
            Err(e) => return Moved::All(Err(pipe_error(e))),
        };
        // The pipe's readiness is cleared (outer `try_io`) only when poll
        // said it is not ready (empty, or full); the socket's (inner) only
        // when poll said the socket is not ready.
        let attempt = guard.try_io(|pipe| {
            let pipe = pipe.get_ref().as_fd();
            let pipe_blocked = std::cell::Cell::new(false);
            let inner = sock.try_io(sock_interest, || {
                let (src, dst) = match way {
                    Way::Up => (pipe, sock.as_fd()),
                    Way::Down => (sock.as_fd(), pipe),
                };
                match splice_once(src, dst)? {
                    Ok(n) => Ok(Step::Moved(n)),
                    Err((src_ready, dst_ready)) => {
                        let (pipe_ready, sock_ready) = match way {
                            Way::Up => (src_ready, dst_ready),
                            Way::Down => (dst_ready, src_ready),
                        };
                        pipe_blocked.set(!pipe_ready);
                        if sock_ready {
                            Ok(Step::Again)
                        } else {
                            Err(io::ErrorKind::WouldBlock.into())
                        }
                    }
                }
            });
            match inner {
                Ok(Step::Moved(n)) => Ok(Step::Moved(n)),
                _ if pipe_blocked.get() => Err(io::ErrorKind::WouldBlock.into()),
                Ok(step) => Ok(step),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Step::Blocked),
                Err(e) => Err(e),
            }
        });
        match attempt {
            // The pipe is not ready (its readiness was cleared): wait for it.
            Err(_would_block) => {}
            Ok(Ok(Step::Moved(0))) => return Moved::All(Ok(())),
            Ok(Ok(Step::Moved(n))) => {
                first = false;
                spins = 0;
                traffic.add(way.dir(), n);
                tokio::task::consume_budget().await;
            }
            Ok(Ok(Step::Again)) => stall(&mut spins).await,
            Ok(Ok(Step::Blocked)) => {}
            Ok(Err(e)) if first && unsupported(&e) => return Moved::Unsupported(e),
            // Up: a failed splice is the socket's. Down: writing into a pipe
            // nobody reads means the output was closed; anything else is
            // the socket's.
            Ok(Err(e)) if way == Way::Up || e.kind() == io::ErrorKind::BrokenPipe => {
                return Moved::All(Err(CopyError::Write(e)));
            }
            Ok(Err(e)) => return Moved::All(Err(CopyError::Read(e))),
        }
    }
}

/// Sends the stdin file with sendfile(2) from its current offset to its
/// end. File reads block (as reads of a regular file always do); the socket
/// does not, and a full socket waits for writability.
async fn sendfile_up<S: Socket>(file: &OwnedFd, sock: &S, traffic: &Traffic) -> Moved {
    let mut first = true;
    loop {
        if let Err(e) = sock.ready(Interest::WRITABLE).await {
            return Moved::All(Err(CopyError::Write(e)));
        }
        let result = sock.try_io(Interest::WRITABLE, || {
            rustix::fs::sendfile(sock, file, None, MAX_CHUNK).map_err(io::Error::from)
        });
        match result {
            Ok(0) => return Moved::All(Ok(())),
            Ok(n) => {
                first = false;
                traffic.add(Dir::Up, n);
                tokio::task::consume_budget().await;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) if first && unsupported(&e) => return Moved::Unsupported(e),
            // The file's side: a failing disk, or stdin not open for
            // reading.
            Err(e)
                if [Errno::IO, Errno::BADF]
                    .iter()
                    .any(|errno| e.raw_os_error() == Some(errno.raw_os_error())) =>
            {
                return Moved::All(Err(CopyError::Read(e)));
            }
            Err(e) => return Moved::All(Err(CopyError::Write(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::OFlags;
    use rustix::pipe::{PipeFlags, pipe_with};
    use tokio::io::AsyncWriteExt;

    /// The claim this module rests on: `SPLICE_F_NONBLOCK` makes a splice
    /// return `EAGAIN` on an empty or full *blocking* pipe instead of
    /// waiting, without changing the pipe's own flags.
    #[tokio::test]
    async fn splice_nonblock_leaves_a_blocking_pipe_blocking() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let (client, (server, _)) = (client.unwrap(), server.unwrap());
        let (read, write) = pipe_with(PipeFlags::CLOEXEC).unwrap();
        let blocking = |fd: &OwnedFd| {
            !rustix::fs::fcntl_getfl(fd)
                .unwrap()
                .contains(OFlags::NONBLOCK)
        };
        assert!(blocking(&read) && blocking(&write));
        let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;

        // An empty pipe with a writer: EAGAIN, not a wait.
        let empty = splice(&read, None, &client, None, 1024, flags);
        assert_eq!(empty.unwrap_err(), Errno::AGAIN);

        // Fill the pipe through splices from the socket until it is full:
        // EAGAIN again, with the socket still holding data.
        let data = vec![7u8; 1024 * 1024];
        let writer = tokio::spawn(async move {
            let mut server = server;
            let _ = server.write_all(&data).await;
            server
        });
        let mut total = 0;
        loop {
            client.readable().await.unwrap();
            match client.try_io(Interest::READABLE, || {
                splice(&client, None, &write, None, MAX_CHUNK, flags).map_err(io::Error::from)
            }) {
                Ok(n) => {
                    assert!(n > 0);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if !ready_now(write.as_fd(), PollFlags::OUT).unwrap() {
                        break;
                    }
                }
                Err(e) => panic!("{e}"),
            }
        }
        assert!(total >= 4096, "{total}");
        let full = splice(&client, None, &write, None, MAX_CHUNK, flags);
        assert_eq!(full.unwrap_err(), Errno::AGAIN);
        assert!(ready_now(client.as_fd(), PollFlags::IN).unwrap());
        assert!(blocking(&read) && blocking(&write));
        drop((read, write));
        drop(client);
        writer.await.unwrap();
    }

    #[test]
    fn stdio_choices_follow_the_file_type() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        rt.block_on(async {
            let (read, write) = pipe_with(PipeFlags::CLOEXEC).unwrap();
            assert_eq!(upload_for(read.as_fd()).name(), "splice");
            assert!(matches!(download_for(write.as_fd()), Download::Splice(_)));
            let file = tempfile::tempfile().unwrap();
            assert_eq!(upload_for(file.as_fd()).name(), "sendfile");
            assert!(matches!(download_for(file.as_fd()), Download::Copy));
            let null = std::fs::File::open("/dev/null").unwrap();
            assert_eq!(upload_for(null.as_fd()).name(), "copy");
        });
    }
}
