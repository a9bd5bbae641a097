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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use crate::endpoint::Endpoint;
    use crate::tls::ServerVerification;
    use crate::transport::{ConnectOptions, Listener, Stream, connect};

    /// A connected pair over loopback: (client, server).
    async fn pair() -> (Stream, Stream) {
        let endpoint: Endpoint = "tls://127.0.0.1:0".parse().expect("endpoint");
        let listener = Listener::bind(&endpoint).await.expect("bind");
        let pin = listener.tls().expect("tls listener").fingerprint();
        let port = listener.port().expect("port");
        let server = tokio::spawn(async move {
            let (accepted, peer) = listener.accept().await.expect("accept");
            accepted.handshake(&peer).await.expect("server handshake")
        });
        let mut opts = ConnectOptions::default();
        opts.tls.verification = ServerVerification::Pin(vec![pin]);
        let target: Endpoint = format!("tls://127.0.0.1:{port}").parse().expect("target");
        let client = connect(&target, &opts).await.expect("connect");
        (client, server.await.expect("server task"))
    }

    #[tokio::test]
    async fn readable_does_not_wait_for_the_socket_when_rustls_holds_data() {
        let (mut client, mut server) = pair().await;
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

    #[tokio::test]
    async fn shutdown_is_a_half_close_both_ways() {
        let (mut client, mut server) = pair().await;
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
    async fn a_tcp_close_without_close_notify_reads_as_end_of_stream() {
        let (client, mut server) = pair().await;
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
