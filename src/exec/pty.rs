//! `--pty`: a pseudo-terminal for the program, for interactive programs
//! that want one (a shell, a REPL, anything that checks `isatty`).
//!
//! The program gets the terminal's slave side as stdin, stdout and stderr
//! and as its controlling terminal (in a session of its own); netcrab
//! keeps the master side, non-blocking, on tokio's reactor. The terminal
//! starts in canonical mode with echo off (the peer's own terminal echoes
//! what it types) and output processing off (bytes go out as written, no
//! LF to CRLF). End of input reaches the program as the EOF character,
//! ^D; when the program and everything it started have closed the
//! terminal, reads on the master fail with EIO, which is the end of its
//! output.
//!
//! Built on rustix's `pty` and `termios` modules (already a dependency,
//! with safe wrappers for posix_openpt, grantpt, unlockpt, ptsname and
//! tcsetattr); the only unsafe code is the `pre_exec` hook that makes the
//! terminal the child's controlling terminal.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::task::{Context, Poll, ready};

use rustix::fs::{Mode, OFlags};
use rustix::pty::OpenptFlags;
use rustix::termios::{LocalModes, OptionalActions, OutputModes};
use tokio::io::ReadBuf;
use tokio::io::unix::AsyncFd;
use tokio::process::Command;

/// The master side of a pseudo-terminal, registered with tokio.
#[derive(Debug)]
pub(crate) struct Master {
    fd: AsyncFd<OwnedFd>,
}

/// Opens a pseudo-terminal: its master side (non-blocking, on the
/// reactor) and its slave side (for the child). Both are close-on-exec.
pub(crate) fn open() -> io::Result<(Master, OwnedFd)> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut termios = rustix::termios::tcgetattr(&slave)?;
    termios.local_modes -= LocalModes::ECHO;
    termios.output_modes -= OutputModes::OPOST;
    rustix::termios::tcsetattr(&slave, OptionalActions::Now, &termios)?;
    rustix::fs::fcntl_setfl(&master, OFlags::RDWR | OFlags::NONBLOCK)?;
    Ok((
        Master {
            fd: register(master)?,
        },
        slave,
    ))
}

/// Registers the master side with tokio. `AsyncFd::new` is deprecated (tokio
/// 1.54) because an arbitrary `AsRawFd` type may change or close its
/// descriptor; an `OwnedFd` holds one open descriptor until dropped, the
/// contract the `unsafe` constructor asks for, so the safe one is sound
/// here (as in `connect`'s zero-copy path).
#[allow(deprecated)]
fn register(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    AsyncFd::new(fd)
}

/// Makes `slave` the command's stdin, stdout, stderr and controlling
/// terminal (in a new session, whose process group the signals reach).
pub(crate) fn attach(cmd: &mut Command, slave: OwnedFd) -> io::Result<()> {
    cmd.stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave);
    // SAFETY: the hook runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed: setsid(2) and ioctl(2) are
    // plain system calls (rustix makes them without libc), and nothing is
    // allocated. Descriptor 0 is the terminal by then (stdin was set up).
    #[allow(unsafe_code)]
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            let stdin = std::os::fd::BorrowedFd::borrow_raw(0);
            rustix::process::ioctl_tiocsctty(stdin)?;
            Ok(())
        });
    }
    Ok(())
}

impl Master {
    /// Reads what the program wrote to its terminal; EIO (every slave side
    /// closed: the program and its children are done) is the end.
    pub(crate) fn poll_read(
        &self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                rustix::io::read(fd.get_ref().as_fd(), &mut *unfilled).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) if err.raw_os_error() == Some(libc::EIO) => {
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => continue,
            }
        }
    }

    /// Writes to the program's terminal input.
    pub(crate) fn poll_write(&self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard
                .try_io(|fd| rustix::io::write(fd.get_ref().as_fd(), data).map_err(io::Error::from))
            {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }
}
