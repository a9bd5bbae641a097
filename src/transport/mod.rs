//! Transports: one [`Stream`] enum over the connected socket types and one
//! [`Listener`] enum over the listening ones, with [`connect`] and
//! [`Listener::bind`] taking an [`Endpoint`].
//!
//! Concrete enums rather than `Box<dyn>`: the hot read/write paths dispatch
//! with a `match`, and transport-specific abilities (readiness without a
//! buffer, socket options) stay reachable.

pub mod happy_eyeballs;
mod tcp;
pub mod udp;
mod unix;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::endpoint::{Endpoint, UnixAddr};
use crate::error::{Error, ErrorKind, Result};

pub use tcp::connect_tcp;
pub use unix::UnixListener;

/// Socket options applied to every connected stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// TCP_NODELAY: on by default, since netcrab's traffic is mostly
    /// request/response and Nagle's algorithm would add latency to it.
    pub nodelay: bool,
    /// TCP keepalive idle time; `None` leaves keepalive off.
    pub keepalive: Option<Duration>,
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            nodelay: true,
            keepalive: None,
        }
    }
}

/// How to open one connection (the retry policy is applied around this).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// The time allowed for one connection attempt, resolution included.
    pub connect_timeout: Duration,
    /// Options for the connected socket.
    pub socket: SocketOptions,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            socket: SocketOptions::default(),
        }
    }
}

/// Options for binding a listener, beyond its address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenOptions {
    /// Permission bits for a Unix socket file (`--mode 660`); `None` leaves
    /// what the umask gives. Set before the socket listens.
    pub unix_mode: Option<u32>,
}

/// The address of a connection's peer, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// An IP peer.
    Inet(SocketAddr),
    /// A Unix-domain peer. A connecting socket is usually unnamed, so the
    /// peer's process id (from `SO_PEERCRED`) is what identifies it.
    Unix {
        /// The peer socket's name, if it has one.
        name: Option<UnixAddr>,
        /// The peer's process id, when the kernel tells.
        pid: Option<i32>,
    },
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(addr) => write!(f, "{addr}"),
            PeerAddr::Unix {
                name: Some(name), ..
            } => write!(f, "{name}"),
            PeerAddr::Unix { pid: Some(pid), .. } => write!(f, "pid {pid}"),
            PeerAddr::Unix { .. } => f.write_str("unnamed unix peer"),
        }
    }
}

/// A connected byte stream over one of the transports.
#[derive(Debug)]
#[non_exhaustive]
pub enum Stream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A Unix-domain stream connection.
    Unix(UnixStream),
}

impl Stream {
    /// Waits until the stream has data (or EOF, or an error) to read,
    /// without holding a buffer: idle connections then cost no buffer memory.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(PeerAddr::Inet),
            Stream::Unix(s) => s.peer_addr().map(|a| PeerAddr::Unix {
                name: unix::unix_name(&a.into()),
                pid: s.peer_cred().ok().and_then(|c| c.pid()),
            }),
        }
    }

    /// Applies `opts` to the underlying socket (TCP options do not apply to
    /// Unix sockets).
    pub fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => tcp::set_options(s, opts),
            Stream::Unix(_) => Ok(()),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    /// Half-closes the stream: the peer reads EOF, and this side can still
    /// read what the peer sends.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A bound listening socket.
#[derive(Debug)]
#[non_exhaustive]
pub enum Listener {
    /// A TCP listener.
    Tcp(tokio::net::TcpListener),
    /// A Unix-domain listener; it removes its socket file when dropped.
    Unix(UnixListener),
}

impl Listener {
    /// Binds `endpoint` for listening.
    pub async fn bind(endpoint: &Endpoint) -> Result<Listener> {
        Listener::bind_with(endpoint, &ListenOptions::default()).await
    }

    /// Binds `endpoint` for listening, with `opts`.
    pub async fn bind_with(endpoint: &Endpoint, opts: &ListenOptions) -> Result<Listener> {
        match endpoint {
            Endpoint::Tcp(hp) => tcp::bind(hp).await.map(Listener::Tcp),
            Endpoint::Unix(addr) => unix::bind(addr, opts.unix_mode).await.map(Listener::Unix),
            Endpoint::Udp(_) => Err(not_a_stream(endpoint, "listen")),
            other => Err(unsupported(other, "listen")),
        }
    }

    /// Accepts one connection. Errors are returned raw: the accept loop
    /// decides which are transient.
    pub async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                Ok((Stream::Tcp(s), PeerAddr::Inet(addr)))
            }
            Listener::Unix(l) => {
                let (s, peer) = l.accept().await?;
                Ok((Stream::Unix(s), peer))
            }
        }
    }

    /// The bound address, as it should be printed (`127.0.0.1:41234`,
    /// `unix:///run/app.sock`).
    pub fn local_addr(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()),
            Listener::Unix(l) => Ok(l.addr().to_string()),
        }
    }

    /// The bound port, for the network transports.
    pub fn port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
        }
    }
}

/// Opens one connection to `endpoint` (no retry: see
/// [`retry`](crate::retry::retry)).
pub async fn connect(endpoint: &Endpoint, opts: &ConnectOptions) -> Result<Stream> {
    match endpoint {
        Endpoint::Tcp(hp) => connect_tcp(hp, opts).await.map(Stream::Tcp),
        Endpoint::Unix(addr) => unix::connect(addr, opts).await.map(Stream::Unix),
        Endpoint::Udp(_) => Err(not_a_stream(endpoint, "connect")),
        other => Err(unsupported(other, "connect")),
    }
}

/// UDP has datagrams, not a byte stream: [`udp`] has its sockets, and
/// `serve::udp` and `connect` use them.
fn not_a_stream(endpoint: &Endpoint, op: &str) -> Error {
    Error::new(ErrorKind::Usage, format!("{op} {endpoint}"))
        .with_detail("udp carries datagrams, not a byte stream (see transport::udp)")
}

fn unsupported(endpoint: &Endpoint, op: &str) -> Error {
    Error::new(ErrorKind::Usage, format!("{op} {endpoint}")).with_detail(format!(
        "the {} transport is not supported yet",
        endpoint.scheme().as_str()
    ))
}
