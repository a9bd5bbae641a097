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
        Ok(TlsStream::Server(stream))
    }
}
