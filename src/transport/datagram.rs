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

/// Datagrams one [`DatagramSocket::send_batch`] or
/// [`DatagramSocket::recv_batch`] call handles at most.
pub const BATCH: usize = 32;

/// Buffers for the datagrams one [`DatagramSocket::recv_batch`] takes on a
/// connected socket: [`BATCH`] slots of [`RECV_BUF`](super::udp::RECV_BUF)
/// bytes (address space: memory is touched only as datagrams fill it) and
/// the length of each datagram the last receive put in them.
pub struct DatagramBatch {
    buf: Vec<u8>,
    lens: [usize; BATCH],
    count: usize,
}

impl fmt::Debug for DatagramBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramBatch")
            .field("count", &self.count)
            .finish()
    }
}

impl Default for DatagramBatch {
    fn default() -> DatagramBatch {
        DatagramBatch {
            // Zeroed memory (calloc): pages are mapped only when written.
            buf: vec![0u8; BATCH * super::udp::RECV_BUF],
            lens: [0; BATCH],
            count: 0,
        }
    }
}

impl DatagramBatch {
    /// How many datagrams the last receive took.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the last receive took none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The datagrams of the last receive, in order.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.lens[..self.count]
            .iter()
            .enumerate()
            .map(|(i, &len)| &self.buf[i * super::udp::RECV_BUF..][..len])
    }

    /// The datagrams of the last receive, one after the other in one
    /// slice (moved together in the buffer; [`iter`](Self::iter) is not
    /// to be used afterwards).
    pub fn joined(&mut self) -> &[u8] {
        let mut end = 0;
        for (i, len) in self.lens[..self.count].iter_mut().enumerate() {
            let start = i * super::udp::RECV_BUF;
            if start != end {
                self.buf.copy_within(start..start + *len, end);
            }
            end += *len;
            // The datagrams now lie one after the other from the start.
            *len = 0;
        }
        self.count = 0;
        &self.buf[..end]
    }
}

/// One recvmmsg(2) of what is queued on `socket` (connected: no sender
/// addresses) into `batch`: how many datagrams (at least one), or
/// `WouldBlock` when none was.
#[cfg(target_os = "linux")]
fn recv_many(socket: &impl std::os::fd::AsRawFd, batch: &mut DatagramBatch) -> io::Result<usize> {
    use nix::sys::socket::{MsgFlags, MultiHeaders, recvmmsg};
    use std::io::IoSliceMut;
    batch.count = 0;
    // Built per call: with no address to take, the kernel writes its
    // address length back into the headers, which must not be reused.
    let mut headers = MultiHeaders::<()>::preallocate(BATCH, None);
    let mut slots = batch.buf.chunks_mut(super::udp::RECV_BUF);
    let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
        std::array::from_fn(|_| [IoSliceMut::new(slots.next().unwrap_or(&mut []))]);
    let received = recvmmsg(
        socket.as_raw_fd(),
        &mut headers,
        iovs.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    let mut count = 0;
    for msg in received.take(BATCH) {
        batch.lens[count] = msg.bytes.min(super::udp::RECV_BUF);
        count += 1;
    }
    batch.count = count;
    Ok(count)
}

/// One receive of a datagram into `batch` where there is no recvmmsg(2).
#[cfg(not(target_os = "linux"))]
fn recv_many(socket: &impl std::os::fd::AsFd, batch: &mut DatagramBatch) -> io::Result<usize> {
    batch.count = 0;
    let slot = &mut batch.buf[..super::udp::RECV_BUF];
    let (n, _) = rustix::net::recv(socket, slot, rustix::net::RecvFlags::DONTWAIT)?;
    batch.lens[0] = n;
    batch.count = 1;
    Ok(1)
}

/// One sendmmsg(2) of `datagrams` on a connected `socket`: how many went
/// (fewer than given when one met an error, which the kernel then does not
/// report), or the error of the first.
#[cfg(target_os = "linux")]
fn send_many(socket: &impl std::os::fd::AsFd, datagrams: &[io::IoSlice<'_>]) -> io::Result<usize> {
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags};
    let datagrams = &datagrams[..datagrams.len().min(BATCH)];
    let mut controls: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
        std::array::from_fn(|_| SendAncillaryBuffer::default());
    let mut hdrs: Vec<MMsgHdr<'_>> = datagrams
        .iter()
        .zip(controls.iter_mut())
        .map(|(iov, control)| MMsgHdr::new(std::slice::from_ref(iov), control))
        .collect();
    Ok(rustix::net::sendmmsg(
        socket,
        &mut hdrs,
        SendFlags::empty(),
    )?)
}

/// One datagram per call where there is no sendmmsg(2).
#[cfg(not(target_os = "linux"))]
fn send_many(socket: &impl std::os::fd::AsFd, datagrams: &[io::IoSlice<'_>]) -> io::Result<usize> {
    match datagrams.first() {
        Some(datagram) => {
            rustix::net::send(socket, datagram, rustix::net::SendFlags::empty())?;
            Ok(1)
        }
        None => Ok(0),
    }
}

impl DatagramSocket {
    /// Waits for datagrams on a connected socket and receives what is
    /// queued, up to [`BATCH`], into `batch`: how many. Cancel-safe:
    /// nothing is received unless it returns.
    ///
    /// When a receive takes fewer than it could, the queue is empty: the
    /// socket's readiness is cleared on that evidence, without the extra
    /// call that would return `EAGAIN` (a datagram arriving later raises a
    /// new edge-triggered event, so none is missed).
    pub async fn recv_batch(&self, batch: &mut DatagramBatch) -> io::Result<usize> {
        loop {
            // As tokio's own receive: on UDP an error the socket holds (an
            // ICMP port-unreachable) wakes it too, to be reported.
            // (try_io takes one interest: tokio checks a combined one
            // against no readiness at all.)
            let interest = match self {
                DatagramSocket::Udp(s) => {
                    let ready = s.ready(Interest::READABLE | Interest::ERROR).await?;
                    if ready.is_readable() {
                        Interest::READABLE
                    } else {
                        Interest::ERROR
                    }
                }
                DatagramSocket::Unix(s, _) => {
                    s.readable().await?;
                    Interest::READABLE
                }
            };
            let mut drained = None;
            let mut receive = || {
                let n = match self {
                    DatagramSocket::Udp(s) => recv_many(s, batch)?,
                    DatagramSocket::Unix(s, _) => recv_many(s, batch)?,
                };
                if n < BATCH {
                    drained = Some(n);
                    // Tokio clears readiness on WouldBlock.
                    return Err(io::ErrorKind::WouldBlock.into());
                }
                Ok(n)
            };
            let result = match self {
                DatagramSocket::Udp(s) => s.try_io(interest, &mut receive),
                DatagramSocket::Unix(s, _) => s.try_io(interest, &mut receive),
            };
            match result {
                Ok(n) => return Ok(n),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    if let Some(n) = drained {
                        return Ok(n);
                    }
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Sends `datagrams` (up to [`BATCH`]) on a connected socket in one
    /// sendmmsg(2) (one send(2) each where there is none), waiting while
    /// the send buffer is full. Returns how many went, and whether it had
    /// to wait: fewer than given means the next one met an error the
    /// kernel did not report (a full buffer, or an error the socket held,
    /// such as an ICMP port-unreachable, which that datagram then took):
    /// the caller sends that one again to see which.
    pub async fn send_batch(&self, datagrams: &[io::IoSlice<'_>]) -> io::Result<(usize, bool)> {
        let once = || match self {
            DatagramSocket::Udp(s) => send_many(s, datagrams),
            DatagramSocket::Unix(s, _) => send_many(s, datagrams),
        };
        // Optimistic: readiness is consulted only once the kernel said the
        // buffer is full.
        match once() {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            result => return result.map(|n| (n, false)),
        }
        loop {
            // WouldBlock again clears the readiness: the next round waits
            // for a new writable edge.
            let result = match self {
                DatagramSocket::Udp(s) => {
                    s.writable().await?;
                    s.try_io(Interest::WRITABLE, once)
                }
                DatagramSocket::Unix(s, _) => {
                    s.writable().await?;
                    s.try_io(Interest::WRITABLE, once)
                }
            };
            match result {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                result => return result.map(|n| (n, true)),
            }
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
