//! Datagram sockets of either kind, UDP (`udp://`) and Unix datagram
//! (`unixgram://`), behind one small enum ([`DatagramSocket`]) so the
//! datagram server ([`serve::udp`](crate::serve::udp)), the datagram client
//! ([`connect`](crate::connect)) and exec per peer
//! ([`exec::udp`](crate::exec::udp)) serve both with the same code.
//!
//! A Unix datagram server binds its socket file (a stale one, whose
//! server is gone, is replaced; a live one is an error) and removes it
//! when dropped. A client binds a socket of its own so answers can reach
//! it: a socket file in a fresh directory of mode 0700 (under
//! `$XDG_RUNTIME_DIR`, else the temporary directory), itself mode 0600,
//! both removed when the socket is dropped (also when the run fails).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, SockRef, Socket, Type};
use tokio::io::Interest;
use tokio::net::{UdpSocket, UnixDatagram};

use super::PeerAddr;
use crate::endpoint::UnixAddr;
use crate::error::{Error, Result};
use crate::settings::Setting;

/// A bound datagram socket: UDP, or a Unix datagram socket with the file
/// it created (removed on drop).
#[derive(Debug)]
pub enum DatagramSocket {
    /// A UDP socket.
    Udp(UdpSocket),
    /// A Unix datagram socket, and the socket file (and directory) to
    /// remove when it is dropped.
    Unix(UnixDatagram, Option<BoundFile>),
}

/// Where a datagram came from, and where its answer goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatagramPeer {
    /// A UDP peer.
    Inet(SocketAddr),
    /// A Unix datagram peer: its socket's name, `None` for an unnamed
    /// socket (which cannot be answered).
    Unix(Option<UnixAddr>),
}

impl DatagramPeer {
    /// The peer as connections name theirs (for logs and the exec
    /// environment).
    pub fn to_peer_addr(&self) -> PeerAddr {
        match self {
            DatagramPeer::Inet(addr) => PeerAddr::Inet(*addr),
            DatagramPeer::Unix(name) => PeerAddr::Unix {
                name: name.clone(),
                pid: None,
            },
        }
    }

    /// Whether the peer is an IPv4 address (whose datagrams are smaller).
    pub fn is_ipv4(&self) -> bool {
        matches!(self, DatagramPeer::Inet(addr) if addr.is_ipv4())
    }
}

impl fmt::Display for DatagramPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_peer_addr(), f)
    }
}

impl From<UdpSocket> for DatagramSocket {
    fn from(socket: UdpSocket) -> DatagramSocket {
        DatagramSocket::Udp(socket)
    }
}

impl DatagramSocket {
    /// Receives one datagram (truncated to `buf`) and who sent it.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, DatagramPeer)> {
        match self {
            DatagramSocket::Udp(s) => s
                .recv_from(buf)
                .await
                .map(|(n, from)| (n, DatagramPeer::Inet(from))),
            DatagramSocket::Unix(s, _) => {
                let (n, from) = s.recv_from(buf).await?;
                Ok((n, DatagramPeer::Unix(super::unix::unix_name(&from.into()))))
            }
        }
    }

    /// Sends one datagram to `peer`. An unnamed Unix peer cannot be
    /// answered: `NotConnected`.
    pub async fn send_to(&self, buf: &[u8], peer: &DatagramPeer) -> io::Result<usize> {
        match (self, peer) {
            (DatagramSocket::Udp(s), DatagramPeer::Inet(to)) => s.send_to(buf, to).await,
            (DatagramSocket::Unix(s, _), DatagramPeer::Unix(Some(name))) => {
                let to = sock_addr(name)?;
                s.async_io(Interest::WRITABLE, || SockRef::from(s).send_to(buf, &to))
                    .await
            }
            (DatagramSocket::Unix(..), DatagramPeer::Unix(None)) => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the peer's socket has no name to answer to",
            )),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a peer of another socket kind",
            )),
        }
    }

    /// Receives one datagram on a connected socket.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DatagramSocket::Udp(s) => s.recv(buf).await,
            DatagramSocket::Unix(s, _) => s.recv(buf).await,
        }
    }

    /// Sends one datagram on a connected socket.
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DatagramSocket::Udp(s) => s.send(buf).await,
            DatagramSocket::Unix(s, _) => s.send(buf).await,
        }
    }

    /// The bound address, for the start-up message: `udp://IP:PORT` or
    /// `unixgram:///PATH` (`unixgram:@NAME`).
    pub fn local_display(&self) -> io::Result<String> {
        match self {
            DatagramSocket::Udp(s) => Ok(format!("udp://{}", s.local_addr()?)),
            DatagramSocket::Unix(s, _) => {
                let name = super::unix::unix_name(&s.local_addr()?.into());
                Ok(match name {
                    Some(name) => name.to_string().replacen("unix:", "unixgram:", 1),
                    None => "unixgram (unnamed)".to_owned(),
                })
            }
        }
    }

    /// The bound port, for a UDP socket.
    pub fn port(&self) -> Option<u16> {
        match self {
            DatagramSocket::Udp(s) => s.local_addr().ok().map(|a| a.port()),
            DatagramSocket::Unix(..) => None,
        }
    }
}

/// A socket file this process created, removed (with its private
/// directory, for a client's) when dropped, unless another file has taken
/// its place.
#[derive(Debug)]
pub struct BoundFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    dir: Option<PathBuf>,
}

impl BoundFile {
    fn new(path: &Path, dir: Option<PathBuf>) -> io::Result<BoundFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(BoundFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
            dir,
        })
    }

    /// The socket file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BoundFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino);
        if ours && let Err(err) = std::fs::remove_file(&self.path) {
            tracing::warn!("remove socket file {}: {err}", self.path.display());
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The socket address of a Unix socket name (socket2 takes an abstract
/// name as a path starting with a NUL byte).
fn sock_addr(name: &UnixAddr) -> io::Result<SockAddr> {
    match name {
        UnixAddr::Path(path) => SockAddr::unix(path),
        UnixAddr::Abstract(name) => SockAddr::unix(format!("\0{name}")),
    }
}

fn new_socket() -> io::Result<Socket> {
    Socket::new(Domain::UNIX, Type::DGRAM.cloexec(), None)
}

fn into_tokio(socket: Socket, file: Option<BoundFile>) -> io::Result<DatagramSocket> {
    socket.set_nonblocking(true)?;
    let std_socket = std::os::unix::net::UnixDatagram::from(OwnedFd::from(socket));
    Ok(DatagramSocket::Unix(
        UnixDatagram::from_std(std_socket)?,
        file,
    ))
}

/// Binds a Unix datagram socket on `addr` for a server, replacing a stale
/// socket file (one nothing receives on); `mode` sets the file's
/// permission bits.
pub async fn bind_unixgram(addr: &UnixAddr, mode: Option<u32>) -> Result<DatagramSocket> {
    let context = format!("listen on {}", display(addr));
    let io_err = |e| Error::io(&context, e);
    let socket = new_socket().map_err(io_err)?;
    let to = sock_addr(addr).map_err(io_err)?;
    if let Err(err) = socket.bind(&to) {
        let UnixAddr::Path(path) = addr else {
            return Err(io_err(err));
        };
        if err.raw_os_error() != Some(libc::EADDRINUSE) {
            return Err(io_err(err));
        }
        let is_socket = std::fs::symlink_metadata(path).is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        });
        if !is_socket {
            return Err(io_err(err).with_detail("address in use (by a file that is not a socket)"));
        }
        // A datagram socket "connects" at once if something is bound there.
        let probe = new_socket().map_err(io_err)?;
        match probe.connect(&to) {
            Ok(()) => {
                return Err(io_err(err).with_detail("address in use (a server is running)"));
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                tracing::info!("removing stale socket file {}", path.display());
                let _ = std::fs::remove_file(path);
                socket.bind(&to).map_err(io_err)?;
            }
            Err(e) => return Err(io_err(e)),
        }
    }
    let file = match addr {
        UnixAddr::Path(path) => {
            if let Some(mode) = mode {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(io_err)?;
            }
            Some(BoundFile::new(path, None).map_err(io_err)?)
        }
        UnixAddr::Abstract(_) if mode.is_some() => {
            return Err(Error::usage(format!(
                "{} applies to socket files, not to abstract sockets",
                Setting::Mode
            )));
        }
        UnixAddr::Abstract(_) => None,
    };
    into_tokio(socket, file).map_err(io_err)
}

/// Opens a Unix datagram socket connected to `addr` for a client, bound
/// to a private socket file of its own so that answers can reach it.
pub async fn connect_unixgram(addr: &UnixAddr) -> Result<DatagramSocket> {
    let context = format!("connect to {}", display(addr));
    let io_err = |e| Error::io(&context, e);
    let (dir, path) = private_path().map_err(io_err)?;
    let socket = new_socket().map_err(io_err)?;
    let bound = socket.bind(&SockAddr::unix(&path).map_err(io_err)?);
    let file = match bound {
        Ok(()) => BoundFile::new(&path, Some(dir)).map_err(io_err)?,
        Err(e) => {
            let _ = std::fs::remove_dir(&dir);
            return Err(io_err(e));
        }
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    let to = sock_addr(addr).map_err(io_err)?;
    socket.connect(&to).map_err(|e| {
        if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ECONNREFUSED)) {
            Error::new(crate::error::ErrorKind::Refused, context.clone())
                .with_detail("connection refused (nothing receives on that socket)")
        } else {
            Error::io(&context, e)
        }
    })?;
    into_tokio(socket, Some(file)).map_err(io_err)
}

/// A fresh directory of mode 0700 for a client's socket file, and the
/// file's path in it.
fn private_path() -> io::Result<(PathBuf, PathBuf)> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let mut last = None;
    for _ in 0..8 {
        let dir = base.join(format!(
            "netcrab-{}-{:08x}",
            std::process::id(),
            fastrand::u32(..)
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => {
                let path = dir.join("client.sock");
                return Ok((dir, path));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temporary name")))
}

/// `unixgram:///path` or `unixgram:@name`.
fn display(addr: &UnixAddr) -> String {
    addr.to_string().replacen("unix:", "unixgram:", 1)
}
