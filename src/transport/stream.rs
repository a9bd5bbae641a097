//! [`Stream`], a connected byte stream over any transport, and
//! [`AsyncStream`], what a composed transport must offer to be one.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::{PeerAddr, SocketOptions, tcp, tls, unix};

/// What a byte stream offers beyond reading and writing: readiness
/// without a buffer, its peer, its socket options, what its handshake
/// agreed on. A composed transport (a layer over a stream that is not the
/// fast path's) implements it and travels as [`Stream::Boxed`]; a layer
/// implements it by asking the stream underneath.
pub trait AsyncStream: AsyncRead + AsyncWrite + Send + Sync + Unpin + fmt::Debug {
    /// Polls until the stream has data (or EOF, or an error) to read,
    /// without holding a buffer (see [`Stream::readable`]).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// The peer's address.
    fn peer_addr(&self) -> io::Result<PeerAddr>;

    /// This end's address.
    fn local_addr(&self) -> io::Result<PeerAddr>;

    /// Applies `opts` to the socket at the bottom.
    fn set_options(&self, opts: &SocketOptions) -> io::Result<()>;

    /// The ALPN protocol a TLS handshake agreed on, if any.
    fn alpn_protocol(&self) -> Option<&[u8]> {
        None
    }

    /// The peer's TLS certificate (its DER encoding), when a TLS
    /// handshake received one; `None` by default.
    fn peer_certificate(&self) -> Option<&[u8]> {
        None
    }

    /// The TCP socket at the bottom, when there is one (for socket-level
    /// operations such as an abortive close); `None` by default.
    fn tcp_socket(&self) -> Option<&TcpStream> {
        None
    }
    /// Makes dropping the stream abort it (a reset) instead of closing it
    /// cleanly, so the peer learns something failed; a no-op where the
    /// transport has no such signal.
    fn abort_on_close(&self) {}
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
    Tls(Box<tls::TlsStream>),
    /// Any other composition of a base and layers (TLS over a Unix socket,
    /// say): one virtual call per read or write.
    Boxed(Box<dyn AsyncStream>),
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
            Stream::Boxed(s) => std::future::poll_fn(|cx| s.poll_read_ready(cx)).await,
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(PeerAddr::Inet),
            Stream::Unix(s) => unix::peer_addr(s),
            Stream::Tls(s) => s.get_ref().0.peer_addr().map(PeerAddr::Inet),
            Stream::Boxed(s) => s.peer_addr(),
        }
    }

    /// This end's address (for a Unix socket, its name if it has one; no
    /// process id).
    pub fn local_addr(&self) -> io::Result<PeerAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().map(PeerAddr::Inet),
            Stream::Unix(s) => unix::local_addr(s),
            Stream::Tls(s) => s.get_ref().0.local_addr().map(PeerAddr::Inet),
            Stream::Boxed(s) => s.local_addr(),
        }
    }

    /// Applies `opts` to the underlying socket (TCP options do not apply to
    /// Unix sockets).
    pub fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => tcp::set_options(s, opts),
            Stream::Unix(_) => Ok(()),
            Stream::Tls(s) => tcp::set_options(s.get_ref().0, opts),
            Stream::Boxed(s) => s.set_options(opts),
        }
    }

    /// The ALPN protocol the TLS handshake agreed on, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match self {
            Stream::Tls(s) => s.get_ref().1.alpn_protocol(),
            Stream::Boxed(s) => s.alpn_protocol(),
            Stream::Tcp(_) | Stream::Unix(_) => None,
        }
    }

    /// The certificate the TLS peer presented (DER), if any: a client
    /// certificate on the server side, the server's on the client side.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        match self {
            Stream::Tls(s) => first_certificate(s.get_ref().1.peer_certificates()),
            Stream::Boxed(s) => s.peer_certificate(),
            Stream::Tcp(_) | Stream::Unix(_) => None,
        }
    }

    /// Reads a protocol head that ends where `end` says (it is given all
    /// the bytes so far and returns the head's length once complete), and
    /// not a byte more: what follows belongs to the caller. Over TCP the
    /// bytes are peeked first, so a head that arrives in one segment costs
    /// two system calls; elsewhere it is read a byte at a time. A head
    /// longer than `max` is an `InvalidData` error, a stream that ends first
    /// `UnexpectedEof`.
    pub(crate) async fn read_head(
        &mut self,
        max: usize,
        end: impl Fn(&[u8]) -> Option<usize>,
    ) -> io::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut head = Vec::new();
        let mut buf = vec![0u8; max];
        while head.len() < max {
            let room = max - head.len();
            let (take, done) = match self {
                Stream::Tcp(tcp) => {
                    let n = tcp.peek(&mut buf[..room]).await?;
                    if n == 0 {
                        return Err(io::ErrorKind::UnexpectedEof.into());
                    }
                    let mut seen = head.clone();
                    seen.extend_from_slice(&buf[..n]);
                    match end(&seen) {
                        Some(len) if len > head.len() => (len - head.len(), true),
                        _ => (n, false),
                    }
                }
                _ => (1, false),
            };
            self.read_exact(&mut buf[..take]).await?;
            head.extend_from_slice(&buf[..take]);
            if done || end(&head).is_some_and(|len| len == head.len()) {
                return Ok(head);
            }
        }
        Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"))
    }

    /// The TCP socket at the bottom: a TCP or TLS-over-TCP stream, or a
    /// boxed composition that passes its socket on (a recorded stream).
    pub fn tcp_socket(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Tls(s) => Some(s.get_ref().0),
            Stream::Boxed(s) => s.tcp_socket(),
            Stream::Unix(_) => None,
        }
    }

    /// Polls readiness as [`readable`](Stream::readable) waits for it, for
    /// a layer over this stream.
    pub(super) fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            Stream::Tcp(s) => s.poll_read_ready(cx),
            Stream::Unix(s) => s.poll_read_ready(cx),
            Stream::Tls(s) => {
                let (tcp, conn) = s.get_ref();
                if conn.wants_read() {
                    tcp.poll_read_ready(cx)
                } else {
                    Poll::Ready(Ok(()))
                }
            }
            Stream::Boxed(s) => s.poll_read_ready(cx),
        }
    }
}

/// A stream is itself a stream a layer can go over.
impl AsyncStream for Stream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Stream::poll_read_ready(self, cx)
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Stream::peer_addr(self)
    }

    fn local_addr(&self) -> io::Result<PeerAddr> {
        Stream::local_addr(self)
    }

    fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        Stream::set_options(self, opts)
    }

    fn alpn_protocol(&self) -> Option<&[u8]> {
        Stream::alpn_protocol(self)
    }

    fn tcp_socket(&self) -> Option<&TcpStream> {
        Stream::tcp_socket(self)
    }

    fn peer_certificate(&self) -> Option<&[u8]> {
        Stream::peer_certificate(self)
    }
}

/// The end-entity certificate of a chain rustls reports.
pub(super) fn first_certificate<'a>(
    chain: Option<&'a [rustls::pki_types::CertificateDer<'static>]>,
) -> Option<&'a [u8]> {
    chain.and_then(|c| c.first()).map(|c| c.as_ref())
}

// The read and write paths dispatch with a `match` whose TCP and Unix arms
// are direct calls; the TLS arm calls out of line (see `tls::poll_read`), so
// that its code does not enlarge the function every TCP read goes through.
impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => tls::poll_read(s, cx, buf),
            Stream::Boxed(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
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
            Stream::Tls(s) => tls::poll_write(s, cx, buf),
            Stream::Boxed(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
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
            Stream::Tls(s) => tls::poll_write_vectored(s, cx, bufs),
            Stream::Boxed(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Tcp(s) => s.is_write_vectored(),
            Stream::Unix(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
            Stream::Boxed(s) => s.is_write_vectored(),
        }
    }

    /// TLS buffers what is written until it can be encrypted and sent:
    /// flush before waiting for anything else (a no-op for TCP).
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => tls::poll_flush(s, cx),
            Stream::Boxed(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    /// Half-closes the stream: the peer reads EOF, and this side can still
    /// read what the peer sends. TLS sends close_notify first, then shuts
    /// down the write side of the stream underneath.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => tls::poll_shutdown(s, cx),
            Stream::Boxed(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
