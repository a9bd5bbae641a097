//! Unix-domain stream sockets: socket files and Linux abstract names.
//!
//! Binding a socket file handles what a dead server leaves behind: when the
//! path is taken, a connection attempt tells a live server (it answers:
//! "address in use") from a stale file (refused: removed and bound again).
//! `--mode` is applied between `bind(2)` and `listen(2)`, so no client can
//! connect while the file still has the umask's permissions. The file is
//! removed when the listener is dropped, unless another server has replaced
//! it meanwhile.

use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::UnixStream;

use super::{ConnectOptions, PeerAddr};
use crate::endpoint::UnixAddr;
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::settings::Setting;

/// The accept backlog, as for TCP (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 4096;
/// How long the stale-socket probe waits for a live server's listener to
/// take its connection (it only waits when that server's backlog is full).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// A listening Unix socket and the file it owns.
pub(crate) struct UnixListener {
    inner: tokio::net::UnixListener,
    addr: UnixAddr,
    /// Removes the socket file on drop (`None` for abstract sockets).
    _file: Option<SocketFile>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl UnixListener {
    /// Accepts one connection, with the peer's process id when the kernel
    /// gives it (a connecting Unix socket has no name of its own).
    pub(crate) async fn accept(&self) -> io::Result<(UnixStream, PeerAddr)> {
        let (stream, addr) = self.inner.accept().await?;
        let peer = PeerAddr::Unix {
            name: unix_name(&addr.into()),
            pid: stream.peer_cred().ok().and_then(|c| c.pid()),
        };
        Ok((stream, peer))
    }

    /// The bound address, as given.
    pub(crate) fn addr(&self) -> &UnixAddr {
        &self.addr
    }
}

/// The socket file a listener created, identified by device and inode so
/// that a file another server put in its place is left alone.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if !ours {
            return;
        }
        if let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!("remove socket file {}: {err}", self.path.display());
        }
    }
}

/// Binds and listens on `addr`, replacing a stale socket file.
/// `mode` sets the socket file's permission bits (`--mode 660`).
pub(super) async fn bind(addr: &UnixAddr, mode: Option<u32>) -> Result<UnixListener> {
    let context = format!("listen on {addr}");
    let socket = match addr {
        UnixAddr::Abstract(name) => {
            if mode.is_some() {
                return Err(Error::usage(format!(
                    "{} applies to socket files, not to abstract sockets",
                    Setting::Mode
                )));
            }
            let socket = new_socket().map_err(|e| Error::io(&context, e))?;
            let sockaddr =
                SockAddr::unix(abstract_path(name)).map_err(|e| Error::io(&context, e))?;
            socket.bind(&sockaddr).map_err(|e| Error::io(&context, e))?;
            socket
        }
        UnixAddr::Path(path) => bind_path(path, &context).await?,
    };
    let file = match addr {
        UnixAddr::Path(path) => {
            if let Some(mode) = mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(
                    |e| Error::io(format!("set mode {mode:o} on {}", path.display()), e),
                )?;
            }
            let meta =
                std::fs::symlink_metadata(path).map_err(|e| Error::io(context.clone(), e))?;
            Some(SocketFile {
                path: path.clone(),
                dev: meta.dev(),
                ino: meta.ino(),
            })
        }
        UnixAddr::Abstract(_) => None,
    };
    // From here on, `file` removes the socket file if anything fails.
    socket.listen(BACKLOG).map_err(|e| Error::io(&context, e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| Error::io(&context, e))?;
    let std_listener = std::os::unix::net::UnixListener::from(OwnedFd::from(socket));
    let inner =
        tokio::net::UnixListener::from_std(std_listener).map_err(|e| Error::io(&context, e))?;
    Ok(UnixListener {
        inner,
        addr: addr.clone(),
        _file: file,
    })
}

/// A listener over an inherited, already listening Unix socket (socket
/// activation). Its file, if any, is not removed on drop.
pub(super) fn from_inherited(socket: Socket) -> Result<UnixListener> {
    let context = "socket activation";
    let std_listener = std::os::unix::net::UnixListener::from(OwnedFd::from(socket));
    let local = std_listener
        .local_addr()
        .map_err(|e| Error::io(context, e))?;
    let addr = unix_name(&local)
        .ok_or_else(|| Error::usage("socket activation: the passed unix socket has no name"))?;
    let inner =
        tokio::net::UnixListener::from_std(std_listener).map_err(|e| Error::io(context, e))?;
    Ok(UnixListener {
        inner,
        addr,
        _file: None,
    })
}

fn new_socket() -> io::Result<Socket> {
    Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)
}

/// socket2 takes an abstract name as a path starting with a NUL byte.
fn abstract_path(name: &str) -> PathBuf {
    PathBuf::from(format!("\0{name}"))
}

/// Binds a socket file, removing a stale one first. The socket is bound
/// but not yet listening.
async fn bind_path(path: &Path, context: &str) -> Result<Socket> {
    let sockaddr = SockAddr::unix(path).map_err(|e| Error::io(context, e))?;
    let socket = new_socket().map_err(|e| Error::io(context, e))?;
    match socket.bind(&sockaddr) {
        Ok(()) => return Ok(socket),
        Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {}
        Err(e) => return Err(Error::io(context, e)),
    }
    let in_use = || Error::io(context, io::Error::from_raw_os_error(libc::EADDRINUSE));
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io(context, e))?;
    if !meta.file_type().is_socket() {
        return Err(in_use().with_detail("address in use (by a file that is not a socket)"));
    }
    match probe(path).await {
        Probe::Live => return Err(in_use().with_detail("address in use (a server is running)")),
        Probe::Busy => {
            return Err(in_use().with_detail(format!(
                "address in use (a server holds it but did not accept within {})",
                fmt_duration(PROBE_TIMEOUT)
            )));
        }
        Probe::Unknown(err) => {
            return Err(in_use().with_detail(format!(
                "address in use (cannot tell whether a server uses it: {})",
                Error::io("", err).detail()
            )));
        }
        Probe::Stale => {}
    }
    // Remove only the file that was probed: if another server starting at
    // the same moment has already replaced it, its socket is left alone.
    let same_file = std::fs::symlink_metadata(path)
        .is_ok_and(|now| now.dev() == meta.dev() && now.ino() == meta.ino());
    if same_file {
        tracing::info!("removing stale socket file {}", path.display());
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("remove stale {}", path.display()), e)),
        }
    }
    socket.bind(&sockaddr).map_err(|e| Error::io(context, e))?;
    Ok(socket)
}

/// What a connection attempt says about an existing socket file.
enum Probe {
    /// A server accepted: the file is in use.
    Live,
    /// Nothing listens: a dead server's file.
    Stale,
    /// The connection neither succeeded nor failed in time.
    Busy,
    /// The attempt failed in a way that says nothing (permission denied,
    /// say): the file is not touched.
    Unknown(io::Error),
}

async fn probe(path: &Path) -> Probe {
    match tokio::time::timeout(PROBE_TIMEOUT, UnixStream::connect(path)).await {
        Ok(Ok(_)) => Probe::Live,
        Ok(Err(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Probe::Stale,
        Ok(Err(e)) => Probe::Unknown(e),
        Err(_) => Probe::Busy,
    }
}

/// Connects to `addr` within the connect timeout.
pub(super) async fn connect(addr: &UnixAddr, opts: &ConnectOptions) -> Result<UnixStream> {
    let context = format!("connect to {addr}");
    let attempt = async {
        match addr {
            UnixAddr::Path(path) => UnixStream::connect(path).await,
            UnixAddr::Abstract(name) => {
                let sockaddr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                UnixStream::connect_addr(&sockaddr.into()).await
            }
        }
    };
    match tokio::time::timeout(opts.connect_timeout, attempt).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(classify_connect_error(context, e)),
        Err(_) => Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
            "timed out after {}",
            fmt_duration(opts.connect_timeout)
        ))),
    }
}

/// A missing socket file means nothing listens there yet: classified as a
/// refusal, so `--retry` waits for a server that starts late.
fn classify_connect_error(context: String, err: io::Error) -> Error {
    if err.raw_os_error() == Some(libc::ENOENT) {
        Error::new(ErrorKind::Refused, context)
            .with_detail("connection refused (no such socket file)")
    } else {
        Error::io(context, err)
    }
}

/// A connected Unix socket's peer: its name if it has one, and its
/// process id.
pub(super) fn peer_addr(stream: &UnixStream) -> io::Result<PeerAddr> {
    stream.peer_addr().map(|a| PeerAddr::Unix {
        name: unix_name(&a.into()),
        pid: stream.peer_cred().ok().and_then(|c| c.pid()),
    })
}

/// A connected Unix socket's own address: its name if it has one.
pub(super) fn local_addr(stream: &UnixStream) -> io::Result<PeerAddr> {
    stream.local_addr().map(|a| PeerAddr::Unix {
        name: unix_name(&a.into()),
        pid: None,
    })
}

/// The name of a Unix socket address, if it has one.
pub(super) fn unix_name(addr: &std::os::unix::net::SocketAddr) -> Option<UnixAddr> {
    if let Some(path) = addr.as_pathname() {
        return Some(UnixAddr::Path(path.to_owned()));
    }
    addr.as_abstract_name()
        .map(|name| UnixAddr::Abstract(String::from_utf8_lossy(name).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_socket_file_is_a_retryable_refusal() {
        let err = classify_connect_error(
            "connect to unix:///nope".into(),
            io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(err.kind(), ErrorKind::Refused);
        assert!(err.kind().is_retryable());
        assert_eq!(
            err.to_string(),
            "connect to unix:///nope: connection refused (no such socket file)"
        );
        let err = classify_connect_error(
            "connect to unix:///x".into(),
            io::Error::from_raw_os_error(libc::EACCES),
        );
        assert_eq!(err.kind(), ErrorKind::Local);
    }
}
