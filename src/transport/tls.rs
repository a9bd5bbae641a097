//! The TLS layer: the client handshake over a connected stream, the server
//! handshake over an accepted one (run in the connection's own task, so a
//! slow client never blocks the accept loop), over any byte stream.
//!
//! Over TCP the result is the fast path's [`Stream::Tls`]; over anything
//! else it is a [`TlsOver`] in a [`Stream::Boxed`]. Either way the stream's
//! I/O errors pass through [`read_result`] and [`write_result`]: a TCP close
//! without close_notify is the end of the stream, and a TLS failure becomes
//! an error of kind TLS with a message from [`tls`](crate::tls).
//!
//! The protocol and certificate handling live in [`tls`](crate::tls).

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::{AsyncStream, PeerAddr, SocketOptions, Stream};
use crate::endpoint::Endpoint;
use crate::error::Result;
use crate::tls::errors::{self, Side};
use crate::tls::{ClientTls, ServerTls};

/// A TLS connection over TCP, client or server side: the fast path.
pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// Runs the client handshake over `stream`, connected to `endpoint`.
pub(crate) async fn client(stream: Stream, endpoint: &Endpoint, tls: &ClientTls) -> Result<Stream> {
    let context = format!("connect to {endpoint}");
    let addr = endpoint.addr();
    let stream = match stream {
        Stream::Tcp(tcp) => {
            let tls = tls.connect(addr, tcp, &context).await?;
            log_session(endpoint, tls.get_ref().1);
            Stream::Tls(Box::new(TlsStream::Client(tls)))
        }
        other => {
            let tls = tls.connect(addr, other, &context).await?;
            log_session(endpoint, tls.get_ref().1);
            Stream::Boxed(Box::new(TlsOver(tokio_rustls::TlsStream::Client(tls))))
        }
    };
    Ok(stream)
}

/// Runs the server handshake over `stream`, accepted from `peer`, under
/// the handshake timeout.
pub(super) async fn server(
    stream: Stream,
    tls: &ServerTls,
    peer: &(dyn fmt::Display + Sync),
) -> Result<Stream> {
    let stream = match stream {
        Stream::Tcp(tcp) => {
            let tls = tls.accept(tcp, peer).await?;
            log_session(peer, tls.get_ref().1);
            Stream::Tls(Box::new(TlsStream::Server(tls)))
        }
        other => {
            let tls = tls.accept(other, peer).await?;
            log_session(peer, tls.get_ref().1);
            Stream::Boxed(Box::new(TlsOver(tokio_rustls::TlsStream::Server(tls))))
        }
    };
    Ok(stream)
}

/// Which end of the handshake a TLS stream is, for error messages.
fn side<S>(stream: &tokio_rustls::TlsStream<S>) -> Side {
    match stream {
        tokio_rustls::TlsStream::Client(_) => Side::Client,
        tokio_rustls::TlsStream::Server(_) => Side::Server,
    }
}

/// A read's result, as netcrab reports it: a TLS failure is classified
/// (see [`errors::classify_io`]), and a peer that closed the connection
/// without a close_notify has ended the stream. rustls calls that an error;
/// a netcat pipe has no framing to protect and many peers close this way,
/// so it is the end of the stream, as the rustls manual allows. (A
/// truncation by someone on the path is then not detected: use framed data
/// to notice.)
fn read_result<S>(
    poll: Poll<io::Result<()>>,
    stream: &tokio_rustls::TlsStream<S>,
) -> Poll<io::Result<()>> {
    match poll {
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            tracing::debug!("peer closed the connection without a tls close_notify");
            Poll::Ready(Ok(()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(classify(e, side(stream)))),
        other => other,
    }
}

/// [`errors::classify_io`], kept out of line: the read and write paths of
/// every stream (plain TCP included, which shares their `match`) stay as
/// small as they were without it.
#[cold]
#[inline(never)]
fn classify(err: io::Error, side: Side) -> io::Error {
    errors::classify_io(err, side)
}

/// A write's (or flush's, or shutdown's) result, with a TLS failure
/// classified.
fn write_result<T, S>(
    poll: Poll<io::Result<T>>,
    stream: &tokio_rustls::TlsStream<S>,
) -> Poll<io::Result<T>> {
    match poll {
        Poll::Ready(Err(e)) => Poll::Ready(Err(classify(e, side(stream)))),
        other => other,
    }
}

// The fast path's I/O, for `Stream`'s `match`: out of line, so that the
// TLS code (rustls' state machine, the error mapping) does not make the
// function that plain TCP reads and writes go through larger and slower
// (measured: it doubled the instructions spent there per TCP read).

#[inline(never)]
pub(super) fn poll_read(
    s: &mut TlsStream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    let poll = Pin::new(&mut *s).poll_read(cx, buf);
    read_result(poll, s)
}

#[inline(never)]
pub(super) fn poll_write(
    s: &mut TlsStream,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    let poll = Pin::new(&mut *s).poll_write(cx, buf);
    write_result(poll, s)
}

#[inline(never)]
pub(super) fn poll_write_vectored(
    s: &mut TlsStream,
    cx: &mut Context<'_>,
    bufs: &[io::IoSlice<'_>],
) -> Poll<io::Result<usize>> {
    let poll = Pin::new(&mut *s).poll_write_vectored(cx, bufs);
    write_result(poll, s)
}

#[inline(never)]
pub(super) fn poll_flush(s: &mut TlsStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let poll = Pin::new(&mut *s).poll_flush(cx);
    write_result(poll, s)
}

#[inline(never)]
pub(super) fn poll_shutdown(s: &mut TlsStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let poll = Pin::new(&mut *s).poll_shutdown(cx);
    write_result(poll, s)
}

/// TLS over a stream other than plain TCP (a Unix socket, another layer):
/// what [`Stream::Boxed`] holds for `tls+unix://`.
#[derive(Debug)]
pub struct TlsOver(tokio_rustls::TlsStream<Stream>);

impl AsyncStream for TlsOver {
    /// Ready at once when rustls holds data it has decrypted (which the
    /// socket no longer signals), else when the stream underneath is.
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let (inner, conn) = self.0.get_ref();
        if conn.wants_read() {
            inner.poll_read_ready(cx)
        } else {
            Poll::Ready(Ok(()))
        }
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        self.0.get_ref().0.peer_addr()
    }

    fn local_addr(&self) -> io::Result<PeerAddr> {
        self.0.get_ref().0.local_addr()
    }

    fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        self.0.get_ref().0.set_options(opts)
    }

    fn alpn_protocol(&self) -> Option<&[u8]> {
        self.0.get_ref().1.alpn_protocol()
    }

    fn peer_certificate(&self) -> Option<&[u8]> {
        super::stream::first_certificate(self.0.get_ref().1.peer_certificates())
    }
}

impl AsyncRead for TlsOver {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.0).poll_read(cx, buf);
        read_result(poll, &this.0)
    }
}

impl AsyncWrite for TlsOver {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.0).poll_write(cx, buf);
        write_result(poll, &this.0)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.0).poll_write_vectored(cx, bufs);
        write_result(poll, &this.0)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.0).poll_flush(cx);
        write_result(poll, &this.0)
    }

    /// Sends close_notify, then shuts down the write side of the stream
    /// underneath (a half-close: reading goes on).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.0).poll_shutdown(cx);
        write_result(poll, &this.0)
    }
}

/// Logs (at debug level) what a handshake agreed on.
fn log_session(peer: &dyn fmt::Display, conn: &rustls::CommonState) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let version = conn.protocol_version().map(|v| format!("{v:?}"));
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()));
    let alpn = conn
        .alpn_protocol()
        .map(|p| format!(", alpn {}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    tracing::debug!(
        "{peer}: tls handshake done ({}, {}{alpn})",
        version.as_deref().unwrap_or("?"),
        suite.as_deref().unwrap_or("?")
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::endpoint::{Endpoint, UnixAddr};
    use crate::tls::{ClientTls, ServerVerification};
    use crate::transport::{ConnectOptions, Listener, PeerAddr, SocketOptions, Stream, connect};

    /// A connected pair over loopback TCP (`tls://`), or over an abstract
    /// Unix socket (`tls+unix://`): (client, server).
    async fn pair(unix: bool) -> (Stream, Stream) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let addr = if unix {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            format!("tls+unix:@netcrab-test-{}-{n}", std::process::id())
        } else {
            "tls://127.0.0.1:0".to_owned()
        };
        let endpoint: Endpoint = addr.parse().expect("endpoint");
        let listener = Listener::bind(&endpoint).await.expect("bind");
        let pin = listener.tls().expect("tls listener").fingerprint();
        let target = listener.endpoint().expect("bound endpoint");
        let server = tokio::spawn(async move {
            let (accepted, peer) = listener.accept().await.expect("accept");
            accepted.handshake(&peer).await.expect("server handshake")
        });
        let mut opts = ConnectOptions::default();
        opts.tls.verification = ServerVerification::Pin(vec![pin]);
        let client = connect(&target, &opts).await.expect("connect");
        (client, server.await.expect("server task"))
    }

    async fn readable_does_not_wait_for_the_socket_when_rustls_holds_data(unix: bool) {
        let (mut client, mut server) = pair(unix).await;
        client.write_all(&[7u8; 1000]).await.expect("write");
        client.flush().await.expect("flush");
        // Reading a little decrypts the whole record: the rest now waits
        // in rustls, and the socket has nothing more to signal.
        let mut head = [0u8; 10];
        server.read_exact(&mut head).await.expect("read");
        tokio::time::timeout(Duration::from_secs(5), server.readable())
            .await
            .expect("readable() waited for the socket although data was buffered")
            .expect("readable");
        let mut rest = vec![0u8; 990];
        server.read_exact(&mut rest).await.expect("read the rest");
        assert!(rest.iter().all(|&b| b == 7));
    }

    async fn shutdown_is_a_half_close_both_ways(unix: bool) {
        let (mut client, mut server) = pair(unix).await;
        client.write_all(b"request").await.expect("write");
        client.shutdown().await.expect("close_notify");
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.expect("read to eof");
        assert_eq!(got, b"request");
        // After the client's close_notify the server still writes.
        server
            .write_all(b"reply")
            .await
            .expect("write after peer eof");
        server.shutdown().await.expect("server close_notify");
        let mut reply = Vec::new();
        client
            .read_to_end(&mut reply)
            .await
            .expect("client reads after its shutdown");
        assert_eq!(reply, b"reply");
    }

    #[tokio::test]
    async fn over_tcp_readable_does_not_wait_when_rustls_holds_data() {
        readable_does_not_wait_for_the_socket_when_rustls_holds_data(false).await;
    }

    #[tokio::test]
    async fn over_unix_readable_does_not_wait_when_rustls_holds_data() {
        readable_does_not_wait_for_the_socket_when_rustls_holds_data(true).await;
    }

    #[tokio::test]
    async fn over_tcp_shutdown_is_a_half_close_both_ways() {
        shutdown_is_a_half_close_both_ways(false).await;
    }

    #[tokio::test]
    async fn over_unix_shutdown_is_a_half_close_both_ways() {
        shutdown_is_a_half_close_both_ways(true).await;
    }

    #[tokio::test]
    async fn tls_over_tcp_takes_the_fast_path_and_over_unix_the_boxed_one() {
        let (client, server) = pair(false).await;
        assert!(matches!(client, Stream::Tls(_)) && matches!(server, Stream::Tls(_)));
        let (client, server) = pair(true).await;
        assert!(matches!(client, Stream::Boxed(_)) && matches!(server, Stream::Boxed(_)));
        // What the boxed stream knows of itself comes from the layers below.
        assert!(matches!(
            client.peer_addr().expect("peer"),
            PeerAddr::Unix {
                name: Some(UnixAddr::Abstract(_)),
                ..
            }
        ));
        assert!(matches!(
            server.peer_addr().expect("peer"),
            PeerAddr::Unix { .. }
        ));
        client
            .set_options(&SocketOptions::default())
            .expect("options");
        assert_eq!(client.alpn_protocol(), None);
    }

    #[tokio::test]
    async fn over_unix_a_close_without_close_notify_reads_as_end_of_stream() {
        let name = format!("netcrab-test-{}-eof", std::process::id());
        let endpoint: Endpoint = format!("tls+unix:@{name}").parse().expect("endpoint");
        let listener = Listener::bind(&endpoint).await.expect("bind");
        let mut opts = ConnectOptions::default();
        opts.tls.verification =
            ServerVerification::Pin(vec![listener.tls().expect("tls").fingerprint()]);
        let server = tokio::spawn(async move {
            let (accepted, peer) = listener.accept().await.expect("accept");
            accepted.handshake(&peer).await.expect("server handshake")
        });
        // A client by hand, to close the socket under its TLS session (a
        // FIN, no close_notify).
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).expect("name");
        let raw = tokio::net::UnixStream::connect_addr(&addr.into())
            .await
            .expect("connect");
        let client = ClientTls::new(&opts.tls)
            .expect("client tls")
            .connect(endpoint.addr(), raw, "test")
            .await
            .expect("client handshake");
        let mut server = server.await.expect("server task");
        assert!(matches!(server, Stream::Boxed(_)));
        let (mut raw, _) = client.into_inner();
        raw.shutdown().await.expect("unix fin");
        let mut got = Vec::new();
        server
            .read_to_end(&mut got)
            .await
            .expect("eof without close_notify is not an error");
        assert!(got.is_empty());
    }

    #[tokio::test]
    async fn a_tcp_close_without_close_notify_reads_as_end_of_stream() {
        let (client, mut server) = pair(false).await;
        // Close TCP under the TLS session (FIN, no close_notify).
        let Stream::Tls(tls) = client else {
            panic!("not tls")
        };
        let tokio_rustls::TlsStream::Client(tls) = *tls else {
            panic!("not the client side")
        };
        let (mut tcp, _) = tls.into_inner();
        tcp.shutdown().await.expect("tcp fin");
        let mut got = Vec::new();
        server
            .read_to_end(&mut got)
            .await
            .expect("eof without close_notify is not an error");
        assert!(got.is_empty());
    }
}
