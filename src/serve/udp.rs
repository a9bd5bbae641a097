//! `netcrab serve udp://...` (and `unixgram://...`): the services per
//! datagram, on either kind of [`DatagramSocket`].
//!
//! One loop answers every client: each datagram is handled on its own and
//! answered to the address it came from, so there is no per-client state to
//! keep or to leak. Over UDP the loop takes the datagrams waiting in a
//! batch (recvmmsg(2)) and sends their answers in one batch (sendmmsg(2));
//! on Linux it runs on a thread of its own that sleeps in the receive
//! itself (no epoll_wait(2) per wake). With `--lines`, each line of a datagram gets its answer
//! and the answers go back together in one datagram; answers that would not
//! fit in one ([`MAX_ANSWER_V4`], [`MAX_ANSWER_V6`]) are dropped and
//! counted, and the answer buffer never grows past that. Nothing a peer
//! sends stops the server: a receive or send error is logged and skipped.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ServeConfig;
use super::lines::{LineSplitter, LineTooLong};
use super::service::{answer_parts, log_message};
use crate::error::{Error, Result};
use crate::transport::PeerAddr;
use crate::transport::datagram::DatagramSocket;
#[cfg(not(target_os = "linux"))]
use crate::transport::udp::BatchSocket;
#[cfg(target_os = "linux")]
use crate::transport::udp::{BlockingSocket, Unblocker};
use crate::transport::udp::{RECV_BUF, RecvBatch, SendBatch};

/// What a datagram server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatagramReport {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent back.
    pub sent: u64,
    /// Answers that could not be sent (logged at debug level).
    pub send_errors: u64,
    /// Answers dropped because they would not fit in a datagram (more
    /// than [`MAX_ANSWER_V4`] or [`MAX_ANSWER_V6`] bytes; logged at most
    /// every 10 s).
    pub oversized: u64,
}

/// The largest answer sent to an IPv4 peer: what one IPv4 UDP datagram can
/// carry (65,535 less the IP and UDP headers).
pub const MAX_ANSWER_V4: usize = 65_507;
/// The largest answer sent to an IPv6 peer (no jumbograms), and the answer
/// buffer's fixed capacity.
pub const MAX_ANSWER_V6: usize = 65_527;
/// At most one log line per this long about answers too large to send.
const OVERSIZE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves datagrams on `socket` until `shutdown` is cancelled.
/// `config.framing` applies within each datagram; the connection limit and
/// the idle and drain timeouts do not apply to datagrams. A Unix datagram
/// from an unnamed socket cannot be answered (counted as a send error).
///
/// On Linux, a UDP socket is served from a thread of its own (a blocking
/// task of the runtime) that sleeps in recvmmsg(2) with `MSG_WAITFORONE`:
/// it receives up to [`BATCH`](crate::transport::udp::BATCH) datagrams per
/// call and sends their answers together per sendmmsg(2), with no
/// epoll_wait(2) in between. Cancelling `shutdown` (or dropping the future)
/// shuts the socket down to wake and stop it. Elsewhere, and for Unix
/// datagram sockets, the loop is a task on the runtime.
pub async fn run(
    socket: impl Into<DatagramSocket>,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<DatagramReport> {
    let task = match socket.into() {
        #[cfg(target_os = "linux")]
        DatagramSocket::Udp(socket) => return serve_on_thread(socket, config, shutdown).await,
        #[cfg(not(target_os = "linux"))]
        DatagramSocket::Udp(socket) => {
            let socket = BatchSocket::new(socket).map_err(|e| Error::io("serve udp", e))?;
            tokio::spawn(serve_batched(socket, config, shutdown))
        }
        socket => tokio::spawn(serve_each(socket, config, shutdown)),
    };
    joined(task.await)
}

/// The server task's report, or its panic resumed here.
fn joined(
    result: std::result::Result<DatagramReport, tokio::task::JoinError>,
) -> Result<DatagramReport> {
    match result {
        Ok(report) => Ok(report),
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        Err(err) => Err(Error::io("serve datagrams", std::io::Error::other(err))),
    }
}

/// The UDP server on a thread of its own (Linux): it sleeps in a blocking
/// recvmmsg(2) instead of the runtime's epoll_wait(2), so a wake costs a
/// receive and a send. Cancelling `shutdown`, or dropping this future,
/// stops the thread: shutdown(2) on the socket wakes it.
#[cfg(target_os = "linux")]
async fn serve_on_thread(
    socket: tokio::net::UdpSocket,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<DatagramReport> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Stops the thread when dropped: on shutdown, and if the caller
    /// drops the future before.
    struct Stop {
        stop: Arc<AtomicBool>,
        unblocker: Unblocker,
    }
    impl Drop for Stop {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::Release);
            self.unblocker.unblock();
        }
    }

    let (socket, unblocker) =
        BlockingSocket::prepare(socket).map_err(|e| Error::io("serve udp", e))?;
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::task::spawn_blocking({
        let stop = Arc::clone(&stop);
        move || serve_blocking(BlockingSocket::new(socket), &config, &stop)
    });
    let stop = Stop { stop, unblocker };
    tokio::pin!(task);
    let result = tokio::select! {
        result = &mut task => result,
        () = shutdown.cancelled() => {
            drop(stop);
            task.await
        }
    };
    joined(result)
}

/// The UDP server's loop on its thread, until `stop` is set (and the
/// socket shut down to wake it).
#[cfg(target_os = "linux")]
fn serve_blocking(
    mut socket: BlockingSocket,
    config: &ServeConfig,
    stop: &std::sync::atomic::AtomicBool,
) -> DatagramReport {
    use std::sync::atomic::Ordering;
    let mut received = RecvBatch::default();
    // Answers are built in place in the batch's buffer, which is never
    // grown: it is sent before it has less room than an answer can take.
    let mut out = SendBatch::with_capacity(SEND_BUF);
    let mut report = DatagramReport::default();
    let mut oversized = OversizeLog::default();
    while !stop.load(Ordering::Acquire) {
        let result = socket.recv(&mut received);
        // Checked before the batch is used: what a receive returns after
        // the unblocking shutdown(2) is not datagrams.
        if stop.load(Ordering::Acquire) {
            break;
        }
        if let Err(err) = result {
            // A resource shortage: never fatal, and never a busy loop.
            tracing::debug!("{}", Error::io("receive", err));
            std::thread::sleep(RECV_ERROR_PAUSE);
            continue;
        }
        for (datagram, from) in received.iter() {
            report.received += 1;
            if out.room() < MAX_ANSWER_V6 || out.is_full() {
                let sent = socket.send(&out, |i, err| send_failed(&out, i, err));
                counted(sent, &mut out, &mut report);
            }
            queue_answer(
                datagram,
                from,
                config,
                &mut out,
                &mut report,
                &mut oversized,
            );
        }
        if !out.is_empty() {
            let sent = socket.send(&out, |i, err| send_failed(&out, i, err));
            counted(sent, &mut out, &mut report);
        }
    }
    oversized.flush();
    report
}

/// Counts a send of `out` (`sent` of its datagrams went, the rest failed)
/// and empties it.
#[cfg(target_os = "linux")]
fn counted(sent: usize, out: &mut SendBatch, report: &mut DatagramReport) {
    report.sent += sent as u64;
    report.send_errors += (out.len() - sent) as u64;
    out.clear();
}

/// Builds the answer to `datagram` from `from` at the end of `out` (none
/// for `--discard`, dropped and counted if it would not fit in a datagram).
fn queue_answer(
    datagram: &[u8],
    from: std::net::SocketAddr,
    config: &ServeConfig,
    out: &mut SendBatch,
    report: &mut DatagramReport,
    oversized: &mut OversizeLog,
) {
    let peer = PeerAddr::Inet(from);
    let max = if from.is_ipv4() {
        MAX_ANSWER_V4
    } else {
        MAX_ANSWER_V6
    };
    let start = out.buf_mut().len();
    match answer(datagram, &peer, config, max, out.buf_mut()) {
        Built::None => {}
        Built::TooLarge => {
            out.buf_mut().truncate(start);
            report.oversized += 1;
            oversized.dropped(&peer, Instant::now());
        }
        Built::Ready => out.push(start, from),
    }
}

/// Logs answer `i` of `out`, which could not be sent.
fn send_failed(out: &SendBatch, i: usize, err: std::io::Error) {
    let Some((answer, to)) = out.get(i) else {
        return;
    };
    let peer = PeerAddr::Inet(to);
    if err.raw_os_error() == Some(libc::EMSGSIZE) {
        tracing::info!(
            "{peer}: answer of {} bytes does not fit in a datagram; not sent",
            answer.len()
        );
    } else {
        tracing::debug!("{peer}: {}", Error::io("send", err));
    }
}

/// The UDP server: a batch of datagrams per receive, their answers in one
/// send (where there is no [`BlockingSocket`]: not Linux).
#[cfg(not(target_os = "linux"))]
async fn serve_batched(
    socket: BatchSocket,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> DatagramReport {
    let mut received = RecvBatch::default();
    // Answers are built in place in the batch's buffer, which is never
    // grown: it is sent before it has less room than an answer can take.
    let mut out = SendBatch::with_capacity(SEND_BUF);
    let mut report = DatagramReport::default();
    let mut oversized = OversizeLog::default();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        let result = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            result = socket.recv(&mut received) => result,
        };
        if let Err(err) = result {
            // A resource shortage: never fatal, and never a busy loop.
            tracing::debug!("{}", Error::io("receive", err));
            tokio::select! {
                _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
                _ = &mut cancelled => break,
            }
            continue;
        }
        for (datagram, from) in received.iter() {
            report.received += 1;
            if out.room() < MAX_ANSWER_V6 || out.is_full() {
                send_answers(&socket, &mut out, &mut report).await;
            }
            queue_answer(
                datagram,
                from,
                &config,
                &mut out,
                &mut report,
                &mut oversized,
            );
        }
        send_answers(&socket, &mut out, &mut report).await;
    }
    oversized.flush();
    report
}

/// Sends the answers in `out` (one sendmmsg(2) when all goes well), counts
/// them, and empties it.
#[cfg(not(target_os = "linux"))]
async fn send_answers(socket: &BatchSocket, out: &mut SendBatch, report: &mut DatagramReport) {
    if out.is_empty() {
        return;
    }
    let mut errors = 0;
    let sent = socket
        .send(out, |i, err| {
            errors += 1;
            send_failed(out, i, err);
        })
        .await;
    report.sent += sent as u64;
    report.send_errors += errors;
    out.clear();
}

/// The answers' buffer: room for two of the largest answers, so small ones
/// go [`BATCH`](crate::transport::udp::BATCH) to a send.
const SEND_BUF: usize = 2 * MAX_ANSWER_V6;

/// The Unix datagram server: a datagram per receive, its answer per send.
async fn serve_each(
    socket: DatagramSocket,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> DatagramReport {
    let mut buf = vec![0u8; RECV_BUF];
    // At its bound from the start, never grown.
    let mut out = Vec::with_capacity(MAX_ANSWER_V6);
    let mut report = DatagramReport::default();
    let mut oversized = OversizeLog::default();
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    loop {
        let (len, from) = tokio::select! {
            biased;
            _ = &mut cancelled => break,
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(err) => {
                    // A resource shortage: never fatal, and never a busy
                    // loop.
                    tracing::debug!("{}", Error::io("receive", err));
                    tokio::select! {
                        _ = tokio::time::sleep(RECV_ERROR_PAUSE) => {}
                        _ = &mut cancelled => break,
                    }
                    continue;
                }
            },
        };
        report.received += 1;
        let peer = from.to_peer_addr();
        out.clear();
        let max = if from.is_ipv4() {
            MAX_ANSWER_V4
        } else {
            MAX_ANSWER_V6
        };
        match answer(&buf[..len], &peer, &config, max, &mut out) {
            Built::None => continue,
            Built::TooLarge => {
                report.oversized += 1;
                oversized.dropped(&peer, Instant::now());
                continue;
            }
            Built::Ready => {}
        }
        match socket.send_to(&out, &from).await {
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
    }
    oversized.flush();
    report
}

/// Whether a datagram has an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Built {
    /// No answer (`--discard`, or `--lines` with no line in the datagram).
    None,
    /// The answer is in the buffer.
    Ready,
    /// The answer would not fit in a datagram: dropped.
    TooLarge,
}

/// Appends the answer to one datagram to `out`, never more than `max`
/// bytes of it (on [`Built::TooLarge`], what was appended is left for the
/// caller to cut). An empty datagram is echoed as an empty datagram.
fn answer(
    datagram: &[u8],
    peer: &PeerAddr,
    config: &ServeConfig,
    max: usize,
    out: &mut Vec<u8>,
) -> Built {
    let start = out.len();
    // Appends `parts` unless that takes the answer past `max`.
    let append = |out: &mut Vec<u8>, parts: [&[u8]; 2]| {
        if out.len() - start + parts[0].len() + parts[1].len() > max {
            return false;
        }
        out.extend_from_slice(parts[0]);
        out.extend_from_slice(parts[1]);
        true
    };
    match config.framing {
        super::Framing::Reads => {
            log_message(datagram, peer, config);
            if matches!(config.service, super::Answer::Discard) {
                Built::None
            } else if append(out, answer_parts(datagram, false, config)) {
                Built::Ready
            } else {
                Built::TooLarge
            }
        }
        super::Framing::Lines { max_line } => {
            let mut lines = LineSplitter::default();
            let mut rest = datagram;
            loop {
                let line = match lines.next_line(&mut rest, max_line) {
                    Ok(Some(line)) => line,
                    Ok(None) => match lines.finish() {
                        Some(last) => std::borrow::Cow::Owned(last),
                        None => break,
                    },
                    Err(LineTooLong { max_line }) => {
                        tracing::info!("{peer}: line longer than {max_line} bytes");
                        let error = format!("error: line too long (max {max_line} bytes)\n");
                        if !append(out, [error.as_bytes(), b""]) {
                            return Built::TooLarge;
                        }
                        break;
                    }
                };
                log_message(&line, peer, config);
                if !append(out, answer_parts(&line, true, config)) {
                    return Built::TooLarge;
                }
            }
            if out.len() == start {
                Built::None
            } else {
                Built::Ready
            }
        }
    }
}

/// Logs dropped oversized answers at most once per [`OVERSIZE_LOG_EVERY`]:
/// a peer sending datagrams of newlines cannot flood the log.
#[derive(Debug, Default)]
struct OversizeLog {
    /// When the last line was logged.
    logged_at: Option<Instant>,
    /// Drops since then, not logged yet.
    unlogged: u64,
}

impl OversizeLog {
    /// Counts a dropped answer to `peer`, logging if it is time.
    fn dropped(&mut self, peer: &PeerAddr, now: Instant) {
        self.unlogged += 1;
        if self
            .logged_at
            .is_some_and(|at| now.duration_since(at) < OVERSIZE_LOG_EVERY)
        {
            return;
        }
        tracing::info!(
            "{} answer(s) larger than a datagram ({MAX_ANSWER_V4} bytes over IPv4, {MAX_ANSWER_V6} over IPv6) dropped, the last to {peer}",
            self.unlogged
        );
        self.logged_at = Some(now);
        self.unlogged = 0;
    }

    /// Logs the drops not logged yet.
    fn flush(&mut self) {
        if self.unlogged > 0 {
            tracing::info!(
                "{} more answer(s) larger than a datagram dropped",
                self.unlogged
            );
            self.unlogged = 0;
        }
    }
}

/// The pause after a receive error, so a persistent one cannot spin.
const RECV_ERROR_PAUSE: Duration = Duration::from_millis(5);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{Answer as Reply, Framing};

    fn config(service: Reply, framing: Framing) -> ServeConfig {
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
        match answer(datagram, &peer, config, MAX_ANSWER_V4, &mut out) {
            Built::Ready => Some(out),
            Built::None => None,
            Built::TooLarge => panic!("answer too large"),
        }
    }

    /// Waits up to 5 s for `addr`'s port to be free again (its socket
    /// closed).
    async fn port_freed(addr: std::net::SocketAddr) -> bool {
        for _ in 0..500 {
            if std::net::UdpSocket::bind(addr).is_ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_server_answers_stops_when_cancelled_and_when_dropped() {
        let echo = config(Reply::Echo, Framing::Reads);
        let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0u8; 16];
        for cancel in [true, false] {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            let shutdown = CancellationToken::new();
            let server = tokio::spawn(run(socket, echo.clone(), shutdown.clone()));
            client.send_to(b"ping", addr).await.unwrap();
            let (n, _) = tokio::time::timeout(Duration::from_secs(5), client.recv_from(&mut buf))
                .await
                .expect("answered")
                .unwrap();
            assert_eq!(&buf[..n], b"ping");
            if cancel {
                shutdown.cancel();
                let report = tokio::time::timeout(Duration::from_secs(5), server)
                    .await
                    .expect("stopped")
                    .unwrap()
                    .unwrap();
                assert_eq!((report.received, report.sent), (1, 1));
            } else {
                // Dropping the future stops the thread, which closes the
                // socket.
                server.abort();
                let _ = server.await;
            }
            assert!(port_freed(addr).await, "the socket is closed");
        }
    }

    #[test]
    fn answers_past_a_datagram_are_dropped_without_growing_the_buffer() {
        let peer = PeerAddr::Inet("127.0.0.1:9".parse().unwrap());
        let lines = Framing::Lines { max_line: 1024 };
        let reply = config(Reply::Reply(b"ok".to_vec()), lines);
        let max = MAX_ANSWER_V4;
        let mut out = Vec::with_capacity(MAX_ANSWER_V6);
        // 65,507 / 3 = 21,835 answers of "ok\n" fit; one more does not.
        let fits = vec![b'\n'; max / 3];
        assert_eq!(answer(&fits, &peer, &reply, max, &mut out), Built::Ready);
        assert_eq!(out.len(), max / 3 * 3);
        out.clear();
        let newlines = vec![b'\n'; max / 3 + 1];
        assert_eq!(
            answer(&newlines, &peer, &reply, max, &mut out),
            Built::TooLarge
        );
        assert!(out.len() <= max);
        assert_eq!(out.capacity(), MAX_ANSWER_V6);
        // A reply larger than a datagram, per read.
        out.clear();
        let big = config(Reply::Reply(vec![b'x'; max + 1]), Framing::Reads);
        assert_eq!(answer(b"x", &peer, &big, max, &mut out), Built::TooLarge);
        assert_eq!(out.capacity(), MAX_ANSWER_V6);
    }

    #[test]
    fn one_answer_per_datagram() {
        let reply = config(Reply::Reply(b"pong".to_vec()), Framing::Reads);
        assert_eq!(answer_to(b"a\nb\n", &reply).unwrap(), b"pong");
        assert_eq!(answer_to(b"", &reply).unwrap(), b"pong");
        let echo = config(Reply::Echo, Framing::Reads);
        assert_eq!(answer_to(b"\x00\xffdata", &echo).unwrap(), b"\x00\xffdata");
        assert_eq!(answer_to(b"", &echo).unwrap(), b"");
        let discard = config(Reply::Discard, Framing::Reads);
        assert_eq!(answer_to(b"x", &discard), None);
    }

    #[test]
    fn with_lines_each_line_is_answered_in_one_datagram() {
        let lines = Framing::Lines { max_line: 4 };
        let reply = config(Reply::Reply(b"ok".to_vec()), lines);
        assert_eq!(answer_to(b"a\nb\nc", &reply).unwrap(), b"ok\nok\nok\n");
        assert_eq!(answer_to(b"", &reply), None);
        assert_eq!(
            answer_to(b"a\ntoolong\n", &reply).unwrap(),
            b"ok\nerror: line too long (max 4 bytes)\n"
        );
        let discard = config(Reply::Discard, lines);
        assert_eq!(answer_to(b"a\n", &discard), None);
    }
}
