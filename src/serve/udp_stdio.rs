//! `serve udp://... --stdio`: the datagrams received go to stdout and stdin
//! goes, a read per datagram, to the peer that sent last (as ncat does).
//!
//! Reading stdin waits until a first datagram has named a peer. stdin's
//! EOF stops the sending only: UDP has no end of stream, so receiving goes
//! on until a signal stops the server.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::udp::{DatagramReport, MAX_ANSWER_V4};
use crate::error::{Error, Result};
use crate::transport::datagram::{DatagramPeer, DatagramSocket};
use crate::transport::udp::RECV_BUF;

/// Serves `socket` on stdin and stdout until `shutdown` is cancelled.
pub async fn run(
    socket: impl Into<DatagramSocket>,
    shutdown: CancellationToken,
) -> Result<DatagramReport> {
    let socket = socket.into();
    run_on(socket, shutdown).await
}

async fn run_on(socket: DatagramSocket, shutdown: CancellationToken) -> Result<DatagramReport> {
    // One read of stdin at a time, taken only once there is a peer.
    let (tx, mut input) = mpsc::channel::<Vec<u8>>(1);
    let (go_tx, go) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(read_stdin(go, tx));
    let mut go_tx = Some(go_tx);
    let mut stdout = tokio::io::stdout();
    let mut stdout_open = true;
    let mut buf = vec![0u8; RECV_BUF];
    let mut last: Option<DatagramPeer> = None;
    let mut stdin_open = true;
    let mut report = DatagramReport::default();
    loop {
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                let (len, from) = match received {
                    Ok(received) => received,
                    Err(err) => {
                        // An ICMP error for an earlier datagram: not fatal.
                        tracing::debug!("{}", Error::io("receive", err));
                        continue;
                    }
                };
                report.received += 1;
                if last.as_ref() != Some(&from) {
                    tracing::info!("{from}: answering this peer from now on");
                    last = Some(from);
                    if let Some(go) = go_tx.take() {
                        let _ = go.send(());
                    }
                }
                if stdout_open {
                    let written = async {
                        stdout.write_all(&buf[..len]).await?;
                        stdout.flush().await
                    };
                    if let Err(err) = written.await {
                        tracing::warn!("{}; dropping what peers send", Error::io("write stdout", err));
                        stdout_open = false;
                    }
                }
            }
            chunk = input.recv(), if stdin_open => match (chunk, &last) {
                (Some(chunk), Some(to)) => match socket.send_to(&chunk, to).await {
                    Ok(_) => report.sent += 1,
                    Err(err) => {
                        report.send_errors += 1;
                        tracing::debug!("{to}: {}", Error::io("send", err));
                    }
                },
                (Some(_), None) => {}
                (None, _) => {
                    tracing::debug!("stdin ended; still receiving");
                    stdin_open = false;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
    reader.abort();
    Ok(report)
}

/// Reads stdin, once `go` fires, a datagram's worth at a time.
async fn read_stdin(go: tokio::sync::oneshot::Receiver<()>, tx: mpsc::Sender<Vec<u8>>) {
    if go.await.is_err() {
        return;
    }
    let mut stdin = tokio::io::stdin();
    let mut buf = vec![0u8; MAX_ANSWER_V4];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                if tx.send(buf[..n].to_vec()).await.is_err() {
                    return;
                }
            }
            Err(err) => {
                tracing::warn!("{}", Error::io("read stdin", err));
                return;
            }
        }
    }
}
