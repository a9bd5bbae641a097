//! Transports: one [`Stream`] enum over the connected socket types and one
//! [`Listener`] enum over the listening ones, with [`connect`] and
//! [`Listener::bind`] taking an [`Endpoint`].
//!
//! Concrete enums rather than `Box<dyn>`: the hot read/write paths dispatch
//! with a `match`, and transport-specific abilities (readiness without a
//! buffer, socket options) stay reachable.
//!
//! [`Listener::accept`] returns an [`Accepted`] connection rather than a
//! [`Stream`]: for TLS the handshake is still to run, and it runs in the
//! connection's task ([`Accepted::handshake`]), never in the accept loop.
//! Opening connections with a retry policy goes through a [`Connector`],
//! which prepares once (TLS trust store, certificates) what every attempt
//! reuses.

pub mod happy_eyeballs;
mod tcp;
mod tls;
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
use crate::tls::{ClientTls, ServerTls, TlsClientOptions, TlsServerOptions};

pub use tcp::connect_tcp;
pub use tls::{PendingTls, TlsListener, TlsStream};
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
    /// How a `tls://` endpoint is verified and what it is offered (ignored
    /// for the other transports).
    pub tls: TlsClientOptions,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            socket: SocketOptions::default(),
            tls: TlsClientOptions::default(),
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
    /// Certificate, client verification and handshake timeout for a
    /// `tls://` endpoint (ignored for the other transports).
    pub tls: TlsServerOptions,
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
    /// A TLS connection over TCP, either side (boxed: rustls' state is
    /// large, and boxing keeps every other variant small).
    Tls(Box<TlsStream>),
}

impl Stream {
    /// Waits until the stream has data (or EOF, or an error) to read,
    /// without holding a buffer: idle connections then cost no buffer memory.
    ///
    /// Readiness is a hint: tokio reports a just-accepted TCP stream ready
    /// before anything arrived, so a read after this may still wait, and a
    /// buffer handed to that read is held through the wait. To hold none,
    /// allocate the buffer inside each poll of the read and drop it on
    /// `Pending` (as `serve` does).
    ///
    /// TLS: rustls may already hold decrypted data (or the peer's
    /// close_notify) that the socket no longer signals, so this returns at
    /// once when rustls does not want to read; otherwise it waits for the
    /// socket. Readiness may then turn out to be a record with no
    /// application data (a key update, say): the read that follows simply
    /// waits, so readiness is a hint here, as it is for TCP.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.readable().await,
            Stream::Unix(s) => s.readable().await,
            Stream::Tls(s) => {
                let (tcp, conn) = s.get_ref();
                if conn.wants_read() {
                    tcp.readable().await
                } else {
                    Ok(())
                }
            }
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
            Stream::Tls(s) => s.get_ref().0.peer_addr().map(PeerAddr::Inet),
        }
    }

    /// Applies `opts` to the underlying socket (TCP options do not apply to
    /// Unix sockets).
    pub fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => tcp::set_options(s, opts),
            Stream::Unix(_) => Ok(()),
            Stream::Tls(s) => tcp::set_options(s.get_ref().0, opts),
        }
    }

    /// The ALPN protocol the TLS handshake agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            Stream::Tls(s) => s.get_ref().1.alpn_protocol(),
            _ => None,
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
            Stream::Tls(s) => match Pin::new(s.as_mut()).poll_read(cx, buf) {
                // The peer closed TCP without a close_notify. rustls calls
                // that an error; a netcat pipe has no framing to protect and
                // many peers close this way, so it is the end of the stream,
                // as the rustls manual allows. (A truncation by someone on
                // the path is then not detected: use framed data to notice.)
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    tracing::debug!("peer closed the connection without a tls close_notify");
                    Poll::Ready(Ok(()))
                }
                other => other,
            },
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
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
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
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    /// TLS buffers what is written until it can be encrypted and sent:
    /// flush before waiting for anything else (a no-op for TCP).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// Half-closes the stream: the peer reads EOF, and this side can still
    /// read what the peer sends. TLS sends close_notify first, then shuts
    /// down the TCP write side.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
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
    /// A TCP listener whose connections speak TLS.
    Tls(TlsListener),
}

impl Listener {
    /// Binds `endpoint` for listening, with default options (a TLS
    /// endpoint gets a self-signed certificate).
    pub async fn bind(endpoint: &Endpoint) -> Result<Listener> {
        Listener::bind_with(endpoint, &ListenOptions::default()).await
    }

    /// Binds `endpoint` for listening, with `opts`. For TLS, the
    /// certificate is loaded (or generated) first, so a bad `--cert` fails
    /// before binding.
    pub async fn bind_with(endpoint: &Endpoint, opts: &ListenOptions) -> Result<Listener> {
        match endpoint {
            Endpoint::Tcp(hp) => tcp::bind(hp).await.map(Listener::Tcp),
            Endpoint::Unix(addr) => unix::bind(addr, opts.unix_mode).await.map(Listener::Unix),
            Endpoint::Udp(_) => Err(not_a_stream(endpoint, "listen")),
            Endpoint::Tls(hp) => {
                let tls = std::sync::Arc::new(ServerTls::new(&opts.tls, hp)?);
                let tcp = tcp::bind(hp).await?;
                Ok(Listener::Tls(TlsListener { tcp, tls }))
            }
        }
    }

    /// Accepts one connection. Errors are returned raw: the accept loop
    /// decides which are transient. A TLS connection comes back with its
    /// handshake still to run (see [`Accepted::handshake`]).
    pub async fn accept(&self) -> io::Result<(Accepted, PeerAddr)> {
        match self {
            Listener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                Ok((Stream::Tcp(s).into(), PeerAddr::Inet(addr)))
            }
            Listener::Tls(l) => {
                let (pending, addr) = l.accept().await?;
                Ok((Accepted(AcceptedInner::Tls(pending)), PeerAddr::Inet(addr)))
            }
            Listener::Unix(l) => {
                let (s, peer) = l.accept().await?;
                Ok((Stream::Unix(s).into(), peer))
            }
        }
    }

    /// The bound address, as it should be printed: `127.0.0.1:41234`, or
    /// with its scheme (`tls://127.0.0.1:41234`, `unix:///run/app.sock`).
    pub fn local_addr(&self) -> io::Result<String> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(|a| a.to_string()),
            Listener::Unix(l) => Ok(l.addr().to_string()),
            Listener::Tls(l) => l.tcp.local_addr().map(|a| format!("tls://{a}")),
        }
    }

    /// The bound port, for the network transports.
    pub fn port(&self) -> Option<u16> {
        match self {
            Listener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            Listener::Unix(_) => None,
            Listener::Tls(l) => l.tcp.local_addr().ok().map(|a| a.port()),
        }
    }

    /// The TLS configuration of a TLS listener (its certificate's
    /// fingerprint, whether it was generated), for the start-up message.
    pub fn tls(&self) -> Option<&ServerTls> {
        match self {
            Listener::Tls(l) => Some(&l.tls),
            _ => None,
        }
    }
}

/// A connection just accepted: ready to use, or with a TLS handshake still
/// to run in the connection's own task.
#[derive(Debug)]
pub struct Accepted(AcceptedInner);

#[derive(Debug)]
enum AcceptedInner {
    Ready(Stream),
    Tls(PendingTls),
}

impl From<Stream> for Accepted {
    fn from(stream: Stream) -> Accepted {
        Accepted(AcceptedInner::Ready(stream))
    }
}

impl Accepted {
    /// The stream, when there is no handshake to run (TCP, Unix); a TLS
    /// connection is given back as it was.
    pub fn into_ready(self) -> std::result::Result<Stream, Accepted> {
        match self.0 {
            AcceptedInner::Ready(s) => Ok(s),
            tls => Err(Accepted(tls)),
        }
    }

    /// Applies `opts` to the underlying socket (before any handshake, so
    /// TCP_NODELAY speeds the handshake too).
    pub fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        match &self.0 {
            AcceptedInner::Ready(s) => s.set_options(opts),
            AcceptedInner::Tls(p) => tcp::set_options(&p.tcp, opts),
        }
    }

    /// Completes the connection: runs the TLS handshake (under its
    /// timeout) if there is one. `peer` names the client in errors, which
    /// say why the handshake failed (for example `client presented no
    /// certificate`).
    pub async fn handshake(self, peer: &PeerAddr) -> Result<Stream> {
        match self.0 {
            AcceptedInner::Ready(s) => Ok(s),
            // Boxed: the handshake's state is kilobytes, and inline it would
            // enlarge every connection's task, TCP and Unix ones included, for
            // the whole of the connection.
            AcceptedInner::Tls(p) => Box::pin(p.handshake(peer))
                .await
                .map(|s| Stream::Tls(Box::new(s))),
        }
    }
}

/// Opens connections to one endpoint, again and again (for retries):
/// what every attempt shares, such as the TLS trust store and client
/// certificate, is loaded once, in [`Connector::new`].
#[derive(Debug, Clone)]
pub struct Connector {
    endpoint: Endpoint,
    options: ConnectOptions,
    tls: Option<ClientTls>,
}

impl Connector {
    /// Prepares to connect to `endpoint`. Fails on a bad TLS option (an
    /// unreadable `--ca` file, say) before any connection is attempted.
    pub fn new(endpoint: &Endpoint, options: &ConnectOptions) -> Result<Connector> {
        let tls = match endpoint {
            Endpoint::Tls(_) => Some(ClientTls::new(&options.tls)?),
            _ => None,
        };
        Ok(Connector {
            endpoint: endpoint.clone(),
            options: options.clone(),
            tls,
        })
    }

    /// The endpoint connected to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Opens one connection (no retry: see [`retry`](crate::retry::retry)).
    pub async fn connect(&self) -> Result<Stream> {
        match (&self.endpoint, &self.tls) {
            (Endpoint::Tls(hp), Some(client)) => tls::connect(hp, &self.options, client)
                .await
                .map(|s| Stream::Tls(Box::new(s))),
            (Endpoint::Tcp(hp), _) => connect_tcp(hp, &self.options).await.map(Stream::Tcp),
            (Endpoint::Unix(addr), _) => unix::connect(addr, &self.options).await.map(Stream::Unix),
            (Endpoint::Udp(_), _) => Err(not_a_stream(&self.endpoint, "connect")),
            (other, _) => Err(unsupported(other, "connect")),
        }
    }
}

/// Opens one connection to `endpoint` (no retry: see
/// [`retry`](crate::retry::retry); to connect repeatedly, prepare a
/// [`Connector`] once).
pub async fn connect(endpoint: &Endpoint, opts: &ConnectOptions) -> Result<Stream> {
    Connector::new(endpoint, opts)?.connect().await
}

/// UDP has datagrams, not a byte stream: [`udp`] has its sockets, and
/// `serve::udp` and `connect` use them.
fn not_a_stream(endpoint: &Endpoint, op: &str) -> Error {
    Error::new(ErrorKind::Usage, format!("{op} {endpoint}"))
        .with_detail("udp carries datagrams, not a byte stream (use tcp, tls or unix here)")
}

fn unsupported(endpoint: &Endpoint, op: &str) -> Error {
    Error::new(ErrorKind::Usage, format!("{op} {endpoint}")).with_detail(format!(
        "the {} transport is not supported yet",
        endpoint.scheme().as_str()
    ))
}
