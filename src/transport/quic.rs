//! QUIC (`quic://`), a base of its own: quinn over a UDP socket, with TLS
//! 1.3 inside (the same rustls configurations as `tls://`, from
//! [`ServerTls`] and [`ClientTls`]).
//!
//! Each **bidirectional stream** is one [`Stream`]: a listener accepts
//! connections in a background task, and every stream a client opens on
//! any of them comes out of [`Listener::accept`](super::Listener::accept)
//! as one connection would over TCP, so the accept loop and the services
//! know nothing of QUIC. Connecting opens one QUIC connection and one
//! stream on it. A stream is seen by the server only once the client
//! sends on it (data or FIN), as QUIC specifies.
//!
//! Mapping: half-close ([`AsyncWrite::poll_shutdown`]) is the stream's FIN;
//! a peer's RESET_STREAM reads as "connection reset"; a stream marked
//! [`abort_on_close`](AsyncStream::abort_on_close) (a relay that failed)
//! sends RESET_STREAM when dropped instead of FIN. The connection's idle
//! timeout is [`IDLE_TIMEOUT`]; TCP keepalive (`--keepalive`) becomes QUIC
//! PINGs at that interval. 0-RTT is off on both sides. The ALPN protocol is
//! [`DEFAULT_ALPN`] unless `--alpn` is given (QUIC requires one).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use quinn::crypto::rustls::{HandshakeData, QuicClientConfig, QuicServerConfig};
use quinn::{ConnectionError, IdleTimeout, RecvStream, SendStream, TransportConfig, VarInt};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

use super::{AsyncStream, ConnectOptions, PeerAddr, SocketOptions, Stream, happy_eyeballs};
use crate::endpoint::{Addr, Family, HostPort};
use crate::error::{Error, ErrorKind, Result};
use crate::settings::Setting;
use crate::tls::{ClientTls, ServerTls};

/// The ALPN protocol QUIC endpoints offer and accept when `--alpn` is not
/// given: QUIC requires one, and both netcrab sides agree on this.
pub const DEFAULT_ALPN: &[u8] = b"netcrab";

/// How long a QUIC connection may stay silent (no packet, not even a
/// keepalive PING) before it is closed: quinn's default.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Streams accepted on all connections and not yet taken by the accept
/// loop: past this, connections wait before accepting more streams.
const BACKLOG: usize = 128;

/// How long a client's dropped stream waits for its data to be
/// acknowledged before its connection is closed.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

fn transport(keepalive: Option<Duration>) -> Arc<TransportConfig> {
    let mut config = TransportConfig::default();
    // 30 s always converts (the limit is 2^62 ms).
    config.max_idle_timeout(IdleTimeout::try_from(IDLE_TIMEOUT).ok());
    config.keep_alive_interval(keepalive);
    Arc::new(config)
}

fn config_error(what: &str, e: impl fmt::Display) -> Error {
    Error::new(ErrorKind::Tls, format!("quic {what}")).with_detail(e.to_string())
}

/// A connection-level failure, classified: a TLS alert (crypto error) is a
/// TLS error, a silent peer a timeout, a closed one a reset.
fn connection_error(context: String, e: ConnectionError) -> Error {
    let kind = match &e {
        ConnectionError::TransportError(t) if t.code.to_string().contains("crypto") => {
            ErrorKind::Tls
        }
        ConnectionError::ConnectionClosed(c) if c.error_code.to_string().contains("crypto") => {
            ErrorKind::Tls
        }
        ConnectionError::TimedOut => ErrorKind::Timeout,
        ConnectionError::Reset
        | ConnectionError::ApplicationClosed(_)
        | ConnectionError::ConnectionClosed(_) => ErrorKind::Reset,
        ConnectionError::LocallyClosed | ConnectionError::CidsExhausted => ErrorKind::Local,
        _ => ErrorKind::Protocol,
    };
    let mut detail = e.to_string();
    // TLS alert 120, no_application_protocol.
    if detail.contains("error 120") {
        detail.push_str(&format!(
            " (no common alpn protocol: give both sides the same {}; quic's default is netcrab)",
            Setting::Alpn
        ));
    }
    Error::new(kind, context).with_detail(detail)
}

/// A QUIC listener: the endpoint, and the task accepting connections and
/// their streams (stopped when the listener is dropped; streams already
/// accepted go on).
#[derive(Debug)]
pub(super) struct QuicListener {
    endpoint: quinn::Endpoint,
    streams: tokio::sync::Mutex<mpsc::Receiver<(QuicStream, SocketAddr)>>,
    _task: AbortOnDropHandle<()>,
}

impl QuicListener {
    /// Binds `hp` (the first resolved address that binds) with `tls`'s
    /// certificate.
    pub(super) async fn bind(hp: &HostPort, family: Family, tls: &ServerTls) -> Result<Self> {
        let mut rustls = (**tls.rustls_config()).clone();
        if rustls.alpn_protocols.is_empty() {
            rustls.alpn_protocols = vec![DEFAULT_ALPN.to_vec()];
        }
        // 0-RTT off: rustls accepts no early data (its default, said here).
        rustls.max_early_data_size = 0;
        let crypto = QuicServerConfig::try_from(Arc::new(rustls))
            .map_err(|e| config_error("server configuration", e))?;
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        config.transport_config(transport(None));
        let addrs = hp.resolve_in(true, family).await?;
        let mut last_err = None;
        let mut bound = None;
        for addr in addrs {
            match quinn::Endpoint::server(config.clone(), addr) {
                Ok(endpoint) => {
                    bound = Some(endpoint);
                    break;
                }
                Err(e) => last_err = Some(Error::io(format!("listen on udp {addr}"), e)),
            }
        }
        let endpoint = match bound {
            Some(endpoint) => endpoint,
            None => {
                return Err(last_err
                    .unwrap_or_else(|| Error::new(ErrorKind::Resolve, format!("resolve {hp}"))));
            }
        };
        let (tx, rx) = mpsc::channel(BACKLOG);
        let task = tokio::spawn(accept_loop(endpoint.clone(), tx, tls.handshake_timeout()));
        Ok(QuicListener {
            endpoint,
            streams: tokio::sync::Mutex::new(rx),
            _task: AbortOnDropHandle::new(task),
        })
    }

    /// The next stream any client opened.
    pub(super) async fn accept(&self) -> io::Result<(Stream, PeerAddr)> {
        match self.streams.lock().await.recv().await {
            Some((stream, peer)) => Ok((Stream::Boxed(Box::new(stream)), PeerAddr::Inet(peer))),
            None => Err(io::Error::other("quic endpoint closed")),
        }
    }

    /// The bound UDP address.
    pub(super) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }
}

/// Accepts connections; each one's handshake and streams run in a task of
/// its own, in a set dropped (so aborted) with this task.
async fn accept_loop(
    endpoint: quinn::Endpoint,
    tx: mpsc::Sender<(QuicStream, SocketAddr)>,
    handshake_timeout: Duration,
) {
    let mut connections = JoinSet::new();
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            Some(_) = connections.join_next() => continue,
            () = tx.closed() => return,
        };
        let Some(incoming) = incoming else { return };
        let tx = tx.clone();
        connections.spawn(async move {
            let peer = incoming.remote_address();
            let context = format!("quic handshake with {peer} failed");
            let conn = match tokio::time::timeout(handshake_timeout, incoming).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    tracing::warn!("{}", connection_error(context, e));
                    return;
                }
                Err(_) => {
                    tracing::warn!("{context}: timed out ({})", Setting::HandshakeTimeout);
                    return;
                }
            };
            let alpn = alpn_of(&conn);
            tracing::debug!("quic connection from {peer}");
            loop {
                tokio::select! {
                    accepted = conn.accept_bi() => match accepted {
                        Ok((send, recv)) => {
                            let stream = QuicStream::new(send, recv, peer, alpn.clone(), None);
                            if tx.send((stream, peer)).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            tracing::debug!("quic connection from {peer} ended: {e}");
                            return;
                        }
                    },
                    () = tx.closed() => return,
                }
            }
        });
    }
}

fn alpn_of(conn: &quinn::Connection) -> Option<Vec<u8>> {
    conn.handshake_data()
        .and_then(|data| data.downcast::<HandshakeData>().ok())
        .and_then(|data| data.protocol)
}

/// A QUIC client's ready configuration (rustls, ALPN, keepalive).
#[derive(Debug, Clone)]
pub(super) struct QuicClient {
    config: quinn::ClientConfig,
    tls: ClientTls,
    handshake_timeout: Duration,
}

impl QuicClient {
    /// Prepares the client side from the TLS options' configuration.
    pub(super) fn new(opts: &ConnectOptions) -> Result<QuicClient> {
        let tls = ClientTls::new(&opts.tls)?;
        let mut rustls = (**tls.rustls_config()).clone();
        if rustls.alpn_protocols.is_empty() {
            rustls.alpn_protocols = vec![DEFAULT_ALPN.to_vec()];
        }
        // 0-RTT off: no early data is ever sent.
        rustls.enable_early_data = false;
        let crypto = QuicClientConfig::try_from(Arc::new(rustls))
            .map_err(|e| config_error("client configuration", e))?;
        let mut config = quinn::ClientConfig::new(Arc::new(crypto));
        config.transport_config(transport(opts.socket.keepalive));
        Ok(QuicClient {
            config,
            tls,
            handshake_timeout: opts.tls.handshake_timeout,
        })
    }

    /// Opens a connection to `hp` (the first resolved address) and one
    /// stream on it, within the connect timeout (resolution, handshake).
    pub(super) async fn connect(
        &self,
        hp: &HostPort,
        addr: &Addr,
        opts: &ConnectOptions,
    ) -> Result<Stream> {
        let context = format!("connect to quic://{hp}");
        let family = opts.effective_family()?;
        let server_name = self.tls.server_name(addr)?.to_str().into_owned();
        let work = async {
            let addrs = happy_eyeballs::interleave(&hp.resolve_in(false, family).await?);
            let Some(dest) = addrs.first().copied() else {
                return Err(Error::new(ErrorKind::Resolve, context.clone()));
            };
            let local = opts.source.local_for(dest);
            let endpoint = quinn::Endpoint::client(local)
                .map_err(|e| Error::io(format!("bind udp {local}"), e))?;
            let connecting = endpoint
                .connect_with(self.config.clone(), dest, &server_name)
                .map_err(|e| {
                    Error::new(ErrorKind::Io, context.clone()).with_detail(e.to_string())
                })?;
            let conn = match tokio::time::timeout(self.handshake_timeout, connecting).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => return Err(connection_error(context.clone(), e)),
                Err(_) => {
                    return Err(Error::new(ErrorKind::Timeout, context.clone()).with_detail(
                        format!(
                            "the quic handshake timed out ({})",
                            Setting::HandshakeTimeout
                        ),
                    ));
                }
            };
            let (send, recv) = conn
                .open_bi()
                .await
                .map_err(|e| connection_error(context.clone(), e))?;
            let alpn = alpn_of(&conn);
            Ok(QuicStream::new(
                send,
                recv,
                dest,
                alpn,
                Some(Owner { endpoint, conn }),
            ))
        };
        match tokio::time::timeout(opts.connect_timeout, work).await {
            Ok(result) => Ok(Stream::Boxed(Box::new(result?))),
            Err(_) => Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
                "timed out after {}",
                humantime::format_duration(opts.connect_timeout)
            ))),
        }
    }
}

/// What a client's stream owns: its endpoint (UDP socket) and connection,
/// closed when the stream is dropped.
struct Owner {
    endpoint: quinn::Endpoint,
    conn: quinn::Connection,
}

/// One bidirectional QUIC stream as a byte stream.
pub(super) struct QuicStream {
    send: SendStream,
    recv: RecvStream,
    peer: SocketAddr,
    alpn: Option<Vec<u8>>,
    owner: Option<Owner>,
    abort: AtomicBool,
}

impl fmt::Debug for QuicStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuicStream")
            .field("id", &self.send.id())
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl QuicStream {
    fn new(
        send: SendStream,
        recv: RecvStream,
        peer: SocketAddr,
        alpn: Option<Vec<u8>>,
        owner: Option<Owner>,
    ) -> QuicStream {
        QuicStream {
            send,
            recv,
            peer,
            alpn,
            owner,
            abort: AtomicBool::new(false),
        }
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        if self.abort.load(Ordering::Relaxed) {
            let _ = self.send.reset(VarInt::from_u32(0));
            let _ = self.recv.stop(VarInt::from_u32(0));
        } else {
            // FIN, as closing a TCP socket does (a no-op after shutdown).
            let _ = self.send.finish();
        }
        // A client's connection is its own: let what was sent be
        // acknowledged, then close it and its endpoint.
        if let Some(owner) = self.owner.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let stopped = self.send.stopped();
            runtime.spawn(async move {
                let _ = tokio::time::timeout(CLOSE_LINGER, stopped).await;
                owner.conn.close(VarInt::from_u32(0), b"");
                let _ = tokio::time::timeout(CLOSE_LINGER, owner.endpoint.wait_idle()).await;
            });
        }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.get_mut().send), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.get_mut().send), cx)
    }

    /// Sends FIN: the peer reads EOF, and this side still reads.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_shutdown(Pin::new(&mut self.get_mut().send), cx)
    }
}

impl AsyncStream for QuicStream {
    /// quinn has no readiness without a read: always ready, a hint as
    /// [`Stream::readable`] allows (the read that follows waits).
    fn poll_read_ready(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        Ok(PeerAddr::Inet(self.peer))
    }

    /// A stream does not know which local address its connection's
    /// endpoint is bound to.
    fn local_addr(&self) -> io::Result<PeerAddr> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a quic stream's local address is its endpoint's",
        ))
    }

    /// TCP options have no QUIC meaning per stream: keepalive is set for
    /// the connection when it is made.
    fn set_options(&self, _opts: &SocketOptions) -> io::Result<()> {
        Ok(())
    }

    fn alpn_protocol(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    fn abort_on_close(&self) {
        self.abort.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalive_and_idle_timeout_map_to_the_transport_config() {
        let with = format!("{:?}", transport(Some(Duration::from_secs(5))));
        assert!(with.contains("keep_alive_interval: Some(5s)"), "{with}");
        assert!(with.contains("max_idle_timeout: Some(30000)"), "{with}");
        let without = format!("{:?}", transport(None));
        assert!(without.contains("keep_alive_interval: None"), "{without}");
    }
}
