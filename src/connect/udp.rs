//! `netcrab connect udp://...` (and `unixgram://...`): datagrams out,
//! replies printed.
//!
//! A connected UDP socket (or Unix datagram socket, bound to a private
//! socket file of its own so that replies can reach it, removed at the
//! end): `--send` is one datagram; otherwise each input
//! line (newline included) or, with `--raw`, each read of the input is one.
//! Replies are written to the output as they arrive. UDP has no end of
//! stream, so after the last send the client waits `--wait` (1 s by
//! default) for replies and then exits. An ICMP port-unreachable, which the
//! kernel reports on a connected socket as "connection refused", ends it
//! with that error.

use std::cell::Cell;
use std::time::Duration;

use super::{ConnectConfig, ConnectReport};
use crate::endpoint::{Addr, Scheme};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::retry;
use crate::settings::Setting;
use crate::transport::datagram::{DatagramSocket, connect_unixgram};
use crate::transport::udp::{MAX_DATAGRAM, RECV_BUF, connect_udp};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// How long to wait for replies after the last datagram when `--wait` is
/// not given.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(1);

/// How input is cut into datagrams.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DatagramFraming {
    /// Each line, newline included, is a datagram (the default).
    #[default]
    Lines,
    /// Each read of the input (up to 65,507 bytes) is a datagram (`--raw`).
    Chunks,
}

/// Opens the UDP socket (with the retry policy), sends, and prints replies.
pub(super) async fn run<R, W>(config: &ConnectConfig, input: R, output: W) -> Result<ConnectReport>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let what = format!("connect to {}", config.endpoint);
    let socket = match (config.endpoint.scheme(), config.endpoint.addr()) {
        (Scheme::Udp, Addr::HostPort(hp)) => {
            retry(&config.retry, &what, |_| connect_udp(hp, &config.options))
                .await?
                .into()
        }
        (Scheme::Unixgram, Addr::Unix(addr)) => {
            retry(&config.retry, &what, |_| connect_unixgram(addr)).await?
        }
        _ => {
            return Err(Error::usage(format!(
                "{} is not a datagram address",
                config.endpoint
            )));
        }
    };
    exchange(config, &socket, input, output).await
}

/// Sends the input as datagrams on `socket` while printing replies, then
/// waits for late replies.
async fn exchange<R, W>(
    config: &ConnectConfig,
    socket: &DatagramSocket,
    input: R,
    mut output: W,
) -> Result<ConnectReport>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let target = &config.endpoint;
    let sent = Cell::new(0u64);
    let wait = config.wait.unwrap_or(DEFAULT_WAIT);
    let up = send_all(config, socket, input, &sent);
    let received = Cell::new(0u64);
    let last_byte = Cell::new(None);
    let output_closed = Cell::new(false);
    let down = async {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = socket.recv(&mut buf).await.map_err(|e| {
                let err = Error::io(format!("receive from {target}"), e);
                if err.kind() == ErrorKind::Refused {
                    err.with_detail(
                        "connection refused (icmp port unreachable: nothing listens there)",
                    )
                } else {
                    err
                }
            })?;
            let written = async {
                output.write_all(&buf[..n]).await?;
                output.flush().await
            };
            match written.await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    output_closed.set(true);
                    return Ok(());
                }
                Err(e) => return Err(Error::io("write output", e)),
            }
            received.set(received.get() + n as u64);
            if n > 0 {
                last_byte.set(Some(buf[n - 1]));
            }
        }
    };
    tokio::pin!(up, down);
    let deadline = tokio::time::sleep(Duration::from_secs(86400 * 365));
    tokio::pin!(deadline);
    let mut waiting = false;
    loop {
        tokio::select! {
            result = &mut up, if !waiting => {
                result?;
                tracing::debug!("sent {} bytes; waiting {} for replies", sent.get(),
                    crate::error::fmt_duration(wait));
                waiting = true;
                deadline.as_mut().reset(crate::deadline::from_now(wait));
            }
            result = &mut down => {
                result?;
                break;
            }
            _ = &mut deadline, if waiting => break,
        }
    }
    Ok(ConnectReport {
        sent: sent.get(),
        received: received.get(),
        last_byte: last_byte.get(),
        output_closed: output_closed.get(),
    })
}

/// Sends `--send` or the input, one datagram at a time.
async fn send_all<R>(
    config: &ConnectConfig,
    socket: &DatagramSocket,
    input: R,
    sent: &Cell<u64>,
) -> Result<()>
where
    R: AsyncRead + Unpin,
{
    let send = |datagram: Vec<u8>| async move {
        send_one(config, socket, &datagram).await?;
        sent.set(sent.get() + datagram.len() as u64);
        Ok::<(), Error>(())
    };
    if let Some(msg) = &config.send {
        return send(msg.clone()).await;
    }
    let mut input = BufReader::with_capacity(MAX_DATAGRAM, input);
    loop {
        let mut datagram = Vec::new();
        let n = match config.datagrams {
            DatagramFraming::Lines => {
                // One byte past the limit tells a line that is too long.
                (&mut input)
                    .take(MAX_DATAGRAM as u64 + 1)
                    .read_until(b'\n', &mut datagram)
                    .await
            }
            DatagramFraming::Chunks => {
                datagram.resize(MAX_DATAGRAM, 0);
                let n = input.read(&mut datagram).await;
                datagram.truncate(*n.as_ref().unwrap_or(&0));
                n
            }
        }
        .map_err(|e| Error::io("read input", e))?;
        if n == 0 {
            return Ok(());
        }
        send(datagram).await?;
    }
}

async fn send_one(config: &ConnectConfig, socket: &DatagramSocket, datagram: &[u8]) -> Result<()> {
    let context = format!("send to {}", config.endpoint);
    if datagram.len() > MAX_DATAGRAM {
        return Err(Error::new(ErrorKind::Usage, context).with_detail(format!(
            "a datagram holds at most {MAX_DATAGRAM} bytes; this line is longer (use {} to send input in chunks)",
            Setting::Raw
        )));
    }
    socket
        .send(datagram)
        .await
        .map_err(|e| Error::io(context, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::ConnectConfig;
    use tokio::net::UdpSocket;
    use tokio::time::Instant;

    /// A UDP peer on loopback that answers every datagram with `prefix` +
    /// the datagram, and the config to reach it.
    async fn peer(prefix: &'static [u8]) -> (ConnectConfig, tokio::task::JoinHandle<()>) {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; RECV_BUF];
            while let Ok((n, from)) = server.recv_from(&mut buf).await {
                let mut reply = prefix.to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = server.send_to(&reply, from).await;
            }
        });
        let config = ConnectConfig::new(format!("udp://{addr}").parse().unwrap());
        (config, task)
    }

    #[tokio::test]
    async fn each_line_is_a_datagram_and_replies_are_printed() {
        let (config, task) = peer(b">").await;
        let socket: DatagramSocket =
            connect_udp(config.endpoint.host_port().unwrap(), &config.options)
                .await
                .unwrap()
                .into();
        let (output, mut printed) = tokio::io::duplex(1024);
        let exchange = exchange(&config, &socket, &b"a\nbc\nd"[..], output);
        // The replies, read while the exchange runs; it would go on for
        // --wait after the last send, so it is dropped once they are in.
        let expected = b">a\n>bc\n>d";
        let mut got = vec![0u8; expected.len()];
        tokio::select! {
            result = exchange => panic!("exchange ended early: {result:?}"),
            read = printed.read_exact(&mut got) => { read.unwrap(); }
        }
        task.abort();
        assert_eq!(got, expected);
    }

    #[tokio::test(start_paused = true)]
    async fn without_replies_it_waits_the_wait_and_succeeds() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let mut config = ConnectConfig::new(format!("udp://{addr}").parse().unwrap());
        config.send = Some(b"ping".to_vec());
        config.wait = Some(Duration::from_secs(3));
        let socket: DatagramSocket =
            connect_udp(config.endpoint.host_port().unwrap(), &config.options)
                .await
                .unwrap()
                .into();
        let start = Instant::now();
        let report = exchange(&config, &socket, &b""[..], Vec::new())
            .await
            .unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(3));
        assert_eq!(report.sent, 4);
        assert_eq!(report.received, 0);
        let mut buf = [0u8; 16];
        let (n, _) = server.recv_from(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"ping");
    }

    #[tokio::test]
    async fn an_over_long_line_is_refused_before_sending() {
        let (config, task) = peer(b"").await;
        let socket: DatagramSocket =
            connect_udp(config.endpoint.host_port().unwrap(), &config.options)
                .await
                .unwrap()
                .into();
        let input = vec![b'x'; MAX_DATAGRAM + 1];
        let err = exchange(&config, &socket, input.as_slice(), Vec::new())
            .await
            .unwrap_err();
        task.abort();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert!(err.to_string().contains("at most 65507 bytes"), "{err}");
    }
}
