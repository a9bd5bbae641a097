//! `netcrab serve udp://...`: the services per datagram.
//!
//! One task answers every client: each datagram is handled on its own and
//! answered to the address it came from, so there is no per-client state to
//! keep or to leak. With `--lines`, each line of a datagram gets its answer
//! and the answers go back together in one datagram. Nothing a peer sends
//! stops the server: a receive or send error is logged and skipped.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::ServeConfig;
use super::lines::{LineSplitter, LineTooLong};
use super::service::respond;
use crate::error::{Error, Result};
use crate::transport::PeerAddr;
use crate::transport::udp::RECV_BUF;

/// What a datagram server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatagramReport {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent back.
    pub sent: u64,
    /// Answers that could not be sent (logged at debug level).
    pub send_errors: u64,
}

/// Serves datagrams on `socket` until `shutdown` is cancelled.
/// `config.framing` applies within each datagram; the connection limit and
/// the idle and drain timeouts do not apply to UDP.
pub async fn run(
    socket: UdpSocket,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<DatagramReport> {
    let config = Arc::new(config);
    let mut buf = vec![0u8; RECV_BUF];
    let mut out = Vec::new();
    let mut report = DatagramReport::default();
    loop {
        let (len, from) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(err) => {
                    // An ICMP error for an earlier answer, or a resource
                    // shortage: never fatal, and never a busy loop.
                    tracing::debug!("{}", Error::io("receive", err));
                    tokio::select! {
                        _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        report.received += 1;
        let peer = PeerAddr::Inet(from);
        if !answer(&buf[..len], &peer, &config, &mut out) {
            continue;
        }
        match socket.send_to(&out, from).await {
            Ok(_) => report.sent += 1,
            Err(err) => {
                report.send_errors += 1;
                if err.raw_os_error() == Some(libc::EMSGSIZE) {
                    tracing::info!(
                        "{peer}: answer of {} bytes does not fit in a datagram; not sent",
                        out.len()
                    );
                } else {
                    tracing::debug!("{peer}: {}", Error::io("send", err));
                }
            }
        }
        out.clear();
    }
    Ok(report)
}

/// Puts the answer to one datagram into `out`; returns whether there is
/// one (an empty datagram is echoed as an empty datagram; `--discard`, or
/// `--lines` with no line in the datagram, has no answer).
fn answer(datagram: &[u8], peer: &PeerAddr, config: &ServeConfig, out: &mut Vec<u8>) -> bool {
    match config.framing {
        super::Framing::Reads => {
            respond(datagram, false, peer, config, out);
            !matches!(config.service, super::Service::Discard)
        }
        super::Framing::Lines { max_line } => {
            let mut lines = LineSplitter::new(max_line);
            let pushed = lines.push(datagram, |line| respond(line, true, peer, config, out));
            match pushed {
                Ok(()) => {
                    if let Some(last) = lines.finish() {
                        respond(&last, true, peer, config, out);
                    }
                }
                Err(LineTooLong { max_line }) => {
                    tracing::info!("{peer}: line longer than {max_line} bytes");
                    out.extend_from_slice(
                        format!("error: line too long (max {max_line} bytes)\n").as_bytes(),
                    );
                }
            }
            !out.is_empty()
        }
    }
}

/// The pause after a receive error, so a persistent one cannot spin.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{Framing, Service};

    fn config(service: Service, framing: Framing) -> ServeConfig {
        ServeConfig {
            service,
            framing,
            log_data: false,
            ..ServeConfig::default()
        }
    }

    fn answer_to(datagram: &[u8], config: &ServeConfig) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let peer = PeerAddr::Inet("127.0.0.1:9".parse().unwrap());
        answer(datagram, &peer, config, &mut out).then_some(out)
    }

    #[test]
    fn one_answer_per_datagram() {
        let reply = config(Service::Reply(b"pong".to_vec()), Framing::Reads);
        assert_eq!(answer_to(b"a\nb\n", &reply).unwrap(), b"pong");
        assert_eq!(answer_to(b"", &reply).unwrap(), b"pong");
        let echo = config(Service::Echo, Framing::Reads);
        assert_eq!(answer_to(b"\x00\xffdata", &echo).unwrap(), b"\x00\xffdata");
        assert_eq!(answer_to(b"", &echo).unwrap(), b"");
        let discard = config(Service::Discard, Framing::Reads);
        assert_eq!(answer_to(b"x", &discard), None);
    }

    #[test]
    fn with_lines_each_line_is_answered_in_one_datagram() {
        let lines = Framing::Lines { max_line: 4 };
        let reply = config(Service::Reply(b"ok".to_vec()), lines);
        assert_eq!(answer_to(b"a\nb\nc", &reply).unwrap(), b"ok\nok\nok\n");
        assert_eq!(answer_to(b"", &reply), None);
        assert_eq!(
            answer_to(b"a\ntoolong\n", &reply).unwrap(),
            b"ok\nerror: line too long (max 4 bytes)\n"
        );
        let discard = config(Service::Discard, lines);
        assert_eq!(answer_to(b"a\n", &discard), None);
    }
}
