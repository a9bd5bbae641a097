//! systemd integration without libsystemd: socket activation (the
//! `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES` protocol of
//! sd_listen_fds(3)) and readiness notification (sd_notify(3): one
//! datagram to `NOTIFY_SOCKET`).
//!
//! This module holds the crate's one `unsafe` block: adopting the listening
//! descriptors the service manager passed (fd 3 onwards) as owned sockets.
//! It is sound because the protocol hands those descriptors to this
//! process alone (`LISTEN_PID` names it) and [`take_listen_sockets`] takes
//! them at most once per process.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// The first descriptor a service manager passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The most descriptors accepted from `LISTEN_FDS` (a larger count is a
/// garbled environment, not a configuration).
const MAX_LISTEN_FDS: usize = 64;

/// One socket passed by the service manager.
#[derive(Debug)]
#[non_exhaustive]
pub struct ListenSocket {
    /// The socket (close-on-exec set).
    pub socket: socket2::Socket,
    /// Its name from `LISTEN_FDNAMES` (`FileDescriptorName=` in the unit;
    /// systemd's default is the socket unit's name).
    pub name: Option<String>,
}

/// A passed descriptor and its name, as the environment describes them.
pub type PassedFd = (RawFd, Option<String>);

/// What the environment says was passed: the descriptors and their names.
/// `None` when the variables are absent or meant for another process.
/// Pure, for tests: `pid` is this process's id, `var` reads a variable.
pub fn parse_listen_env(
    pid: u32,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<Vec<PassedFd>>> {
    let Some(listen_pid) = var("LISTEN_PID") else {
        return Ok(None);
    };
    if listen_pid.trim().parse::<u32>().ok() != Some(pid) {
        return Ok(None);
    }
    let Some(fds) = var("LISTEN_FDS") else {
        return Ok(None);
    };
    let n = fds
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|n| *n <= MAX_LISTEN_FDS)
        .ok_or_else(|| {
            Error::usage(format!(
                "socket activation: LISTEN_FDS={fds:?} is not a count"
            ))
        })?;
    let names: Vec<String> = var("LISTEN_FDNAMES")
        .map(|s| s.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Some(
        (0..n)
            .map(|i| {
                let name = names.get(i).filter(|n| !n.is_empty()).cloned();
                (LISTEN_FDS_START + i as RawFd, name)
            })
            .collect(),
    ))
}

/// Set once the passed descriptors are taken.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The listening sockets passed by the service manager, if this process was
/// socket-activated; empty otherwise, and on every call after the first.
pub fn take_listen_sockets() -> Result<Vec<ListenSocket>> {
    let Some(fds) = parse_listen_env(std::process::id(), |k| std::env::var(k).ok())? else {
        return Ok(Vec::new());
    };
    if TAKEN.swap(true, Ordering::AcqRel) {
        return Ok(Vec::new());
    }
    let mut sockets = Vec::with_capacity(fds.len());
    for (fd, name) in fds {
        // Refuse a descriptor that is not open before adopting it.
        if rustix::io::fcntl_getfd(borrowed_check(fd)?).is_err() {
            return Err(Error::usage(format!(
                "socket activation: descriptor {fd} is not open"
            )));
        }
        // SAFETY: sd_listen_fds(3): descriptors LISTEN_FDS_START.. are open
        // (checked above), passed to this process alone (LISTEN_PID matched)
        // and owned by nobody else in it; TAKEN makes sure they are adopted
        // once.
        #[allow(unsafe_code)]
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let socket = socket2::Socket::from(owned);
        socket
            .set_cloexec(true)
            .map_err(|e| Error::io(format!("socket activation: descriptor {fd}"), e))?;
        sockets.push(ListenSocket { socket, name });
    }
    Ok(sockets)
}

/// A descriptor number for a liveness check only (never closed through it).
fn borrowed_check(fd: RawFd) -> Result<std::os::fd::BorrowedFd<'static>> {
    if fd < LISTEN_FDS_START {
        return Err(Error::usage(format!(
            "socket activation: descriptor {fd} is not a passed socket"
        )));
    }
    // SAFETY: the descriptor is only passed to fcntl(F_GETFD), which
    // reports EBADF for a closed one; it is neither closed nor kept.
    #[allow(unsafe_code)]
    Ok(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}

/// Sends `state` (for example `READY=1`) to the service manager when
/// `NOTIFY_SOCKET` is set (a socket path, or `@name` for an abstract one);
/// does nothing otherwise. Returns whether a notification was sent.
pub fn notify(state: &str) -> Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let context = || format!("notify {}", path.to_string_lossy());
    let socket =
        std::os::unix::net::UnixDatagram::unbound().map_err(|e| Error::io(context(), e))?;
    let bytes = path.as_encoded_bytes();
    let sent = if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)
            .map_err(|e| Error::io(context(), e))?;
        socket.send_to_addr(state.as_bytes(), &addr)
    } else {
        socket.send_to(state.as_bytes(), &path)
    };
    sent.map_err(|e| Error::io(context(), e))?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_listen_variables_are_parsed() {
        let vars = [
            ("LISTEN_PID", "42"),
            ("LISTEN_FDS", "2"),
            ("LISTEN_FDNAMES", "web:"),
        ];
        let fds = parse_listen_env(42, env(&vars)).unwrap();
        assert_eq!(fds, Some(vec![(3, Some("web".to_owned())), (4, None)]));
        // For another process: not ours.
        assert_eq!(parse_listen_env(7, env(&vars)).unwrap(), None);
        assert_eq!(parse_listen_env(42, env(&[])).unwrap(), None);
        let bad = [("LISTEN_PID", "42"), ("LISTEN_FDS", "lots")];
        assert!(parse_listen_env(42, env(&bad)).is_err());
        let huge = [("LISTEN_PID", "42"), ("LISTEN_FDS", "100000")];
        assert!(parse_listen_env(42, env(&huge)).is_err());
    }
}
