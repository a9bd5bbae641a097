//! TLS over TCP: connecting (TCP connect, then the client handshake) and
//! listening (TCP accept, then the server handshake — run later, in the
//! connection's own task, so a slow client never blocks the accept loop).
//!
//! The protocol and certificate handling live in [`tls`](crate::tls).

use std::fmt;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

use super::{ConnectOptions, tcp};
use crate::endpoint::HostPort;
use crate::error::Result;
use crate::tls::{ClientTls, ServerTls};

/// A TLS connection, client or server side.
pub type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// Connects over TCP, then runs the client handshake.
pub(super) async fn connect(
    hp: &HostPort,
    opts: &ConnectOptions,
    tls: &ClientTls,
) -> Result<TlsStream> {
    let tcp = tcp::connect_tcp(hp, opts).await?;
    let stream = tls
        .connect(hp, tcp, &format!("connect to tls://{hp}"))
        .await?;
    log_session(&format!("tls://{hp}"), stream.get_ref().1);
    Ok(TlsStream::Client(stream))
}

/// A TCP listener whose connections speak TLS.
#[derive(Debug)]
pub struct TlsListener {
    pub(super) tcp: TcpListener,
    pub(super) tls: Arc<ServerTls>,
}

impl TlsListener {
    /// Accepts one TCP connection; its handshake is still to run.
    pub(super) async fn accept(&self) -> std::io::Result<(PendingTls, std::net::SocketAddr)> {
        let (tcp, addr) = self.tcp.accept().await?;
        Ok((
            PendingTls {
                tcp,
                tls: self.tls.clone(),
            },
            addr,
        ))
    }
}

/// An accepted TCP connection whose TLS handshake has not run yet.
#[derive(Debug)]
pub struct PendingTls {
    pub(super) tcp: TcpStream,
    tls: Arc<ServerTls>,
}

impl PendingTls {
    /// Runs the server handshake under the handshake timeout.
    pub(super) async fn handshake(self, peer: &(dyn fmt::Display + Sync)) -> Result<TlsStream> {
        let stream = self.tls.accept(self.tcp, peer).await?;
        log_session(peer, stream.get_ref().1);
        Ok(TlsStream::Server(stream))
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
