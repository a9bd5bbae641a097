//! The services a connection gets (reply, echo, discard), per read or per
//! line, with the idle timeout and byte accounting.
//!
//! A connection waits for data without holding a buffer, so ten thousand
//! idle connections cost no buffer memory; a buffer lives only while a read
//! is being handled (see `poll_read_fresh`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::io::poll_read_buf;

use super::ServeConfig;
use super::lines::{LineSplitter, LineTooLong};
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::escape::{LOG_PREVIEW, escape_bytes};
use crate::transport::{PeerAddr, Stream};

/// The read buffer for request/response services: larger than any typical
/// message, small enough to allocate per read.
const MESSAGE_BUF: usize = 16 * 1024;
/// The read buffer for `--discard`, where bulk throughput matters.
const BULK_BUF: usize = 64 * 1024;
/// How long a connection closed for a protocol error may keep sending
/// before we stop reading, so our error message is not lost to a reset.
const LINGER: Duration = Duration::from_secs(1);
/// The idle timer's deadline when there is no idle timeout (it is then
/// never polled).
const NEVER: Duration = Duration::from_secs(86400 * 365);

/// What the server does with what a peer sends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Service {
    /// Answer each message with these bytes (the seed's `hello, world`).
    Reply(Vec<u8>),
    /// Send back exactly what was received.
    Echo,
    /// Read and drop everything.
    Discard,
}

/// What counts as one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Each read is a message (the seed's behaviour; depends on how the
    /// peer's writes arrive).
    Reads,
    /// Each `\n`-terminated line is a message; longer lines close the
    /// connection with an error.
    Lines {
        /// The longest line accepted, newline excluded.
        max_line: usize,
    },
}

/// Byte counts of one connection.
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    received: u64,
    sent: u64,
}

/// Serves one connection to its end and logs how it ended.
///
/// This future is what every open connection costs, so it is kept small:
/// a plain function returning an `async move` block rather than an `async
/// fn`, which would keep a second copy of its arguments in its state
/// (rust-lang/rust#62958); rare paths boxed.
#[allow(clippy::manual_async_fn, reason = "an async fn doubles the arguments")]
pub(super) fn handle(
    mut stream: Stream,
    peer: PeerAddr,
    config: Arc<ServeConfig>,
) -> impl Future<Output = ()> + Send + 'static {
    async move {
        let start = Instant::now();
        let mut counts = Counts::default();
        tracing::debug!("{peer}: connected");
        let result = serve_connection(&mut stream, &peer, &config, &mut counts).await;
        let summary = format!(
            "received {} bytes, sent {} in {}",
            counts.received,
            counts.sent,
            fmt_duration(start.elapsed())
        );
        match result {
            Ok(()) => tracing::debug!("{peer}: closed ({summary})"),
            Err(err) => match err.kind() {
                ErrorKind::Timeout | ErrorKind::Protocol => {
                    tracing::info!("{peer}: {err} ({summary})")
                }
                _ => tracing::debug!("{peer}: {err} ({summary})"),
            },
        }
    }
}

/// Serves a connection until EOF, an error or the idle timeout (not an
/// `async fn`, for the reason given at [`handle`]).
#[allow(clippy::manual_async_fn, reason = "an async fn doubles the arguments")]
fn serve_connection(
    stream: &mut Stream,
    peer: &PeerAddr,
    config: &ServeConfig,
    counts: &mut Counts,
) -> impl Future<Output = Result<()>> {
    async move {
        let mut splitter = match config.framing {
            Framing::Lines { max_line } => Some(LineSplitter::new(max_line)),
            Framing::Reads => None,
        };
        let mut out = Vec::new();
        // The idle timer is reset lazily: reads only record when they happened,
        // and the timer, when it fires early, is pushed to the real deadline.
        let mut last_read = Instant::now();
        let timer = tokio::time::sleep(config.idle_timeout.unwrap_or(NEVER));
        tokio::pin!(timer);

        loop {
            // Wait for a read or the idle timer (read first, so data that
            // came with the timer's expiry is served). A hand-written
            // `poll_fn` rather than `select!`, whose state is larger.
            let read = std::future::poll_fn(|cx| {
                if let Poll::Ready(read) = poll_read_fresh(stream, cx, buf_size(config)) {
                    return Poll::Ready(Some(read));
                }
                match config.idle_timeout {
                    Some(_) => timer.as_mut().poll(cx).map(|()| None),
                    None => Poll::Pending,
                }
            })
            .await;
            let buf = match read {
                Some(read) => read.map_err(|e| Error::io("read", e))?,
                None => {
                    let idle = config.idle_timeout.unwrap_or(NEVER);
                    let deadline = last_read + idle;
                    if Instant::now() >= deadline {
                        return Err(Error::new(ErrorKind::Timeout, "closing")
                            .with_detail(format!("idle for {}", fmt_duration(idle))));
                    }
                    timer.as_mut().reset(deadline);
                    continue;
                }
            };
            if buf.is_empty() {
                // EOF: answer an unterminated last line, then close our side.
                if let Some(last) = splitter.as_mut().and_then(LineSplitter::finish) {
                    respond(&last, true, peer, config, &mut out);
                    write_out(stream, &mut out, counts).await?;
                }
                let _ = stream.shutdown().await;
                return Ok(());
            }
            last_read = Instant::now();
            counts.received += buf.len() as u64;
            match splitter.as_mut() {
                None if config.service == Service::Echo => {
                    // Echo the read buffer itself: no copy into `out`.
                    log_message(&buf, peer, config);
                    stream
                        .write_all(&buf)
                        .await
                        .map_err(|e| Error::io("write", e))?;
                    // TLS holds written data until flushed (no-op for TCP).
                    stream.flush().await.map_err(|e| Error::io("write", e))?;
                    counts.sent += buf.len() as u64;
                }
                None => respond(&buf, false, peer, config, &mut out),
                Some(splitter) => {
                    let pushed =
                        splitter.push(&buf, |line| respond(line, true, peer, config, &mut out));
                    if let Err(LineTooLong { max_line }) = pushed {
                        // Answer the complete lines before the long one, then say why we close.
                        out.extend_from_slice(
                            format!("error: line too long (max {max_line} bytes)\n").as_bytes(),
                        );
                        write_out(stream, &mut out, counts).await?;
                        // Boxed: this rare path's timer and read would otherwise
                        // enlarge every connection's future.
                        Box::pin(linger(stream)).await;
                        return Err(Error::new(ErrorKind::Protocol, "closing")
                            .with_detail(format!("line longer than {max_line} bytes")));
                    }
                }
            }
            write_out(stream, &mut out, counts).await?;
        }
    }
}

/// The read buffer size for `config`'s service.
fn buf_size(config: &ServeConfig) -> usize {
    match config.service {
        Service::Discard => BULK_BUF,
        _ => MESSAGE_BUF,
    }
}

/// Reads what the stream has into a fresh buffer. An empty buffer means
/// end of stream.
///
/// No buffer is held while waiting: each poll allocates one and frees it
/// again if the stream has nothing after all. (Waiting with
/// [`Stream::readable`] and then reading is not enough: readiness is a
/// hint, and tokio reports a just-accepted socket readable before anything
/// arrived, so the read that follows would hold its buffer through the
/// whole wait of a silent connection.)
fn poll_read_fresh(
    stream: &mut Stream,
    cx: &mut Context<'_>,
    size: usize,
) -> Poll<std::io::Result<Vec<u8>>> {
    let mut buf = Vec::with_capacity(size);
    ready!(poll_read_buf(Pin::new(stream), cx, &mut buf))?;
    Poll::Ready(Ok(buf))
}

/// Appends the answer to one message to `out`, and logs the message.
pub(super) fn respond(
    msg: &[u8],
    line: bool,
    peer: &PeerAddr,
    config: &ServeConfig,
    out: &mut Vec<u8>,
) {
    log_message(msg, peer, config);
    match &config.service {
        Service::Reply(reply) => {
            out.extend_from_slice(reply);
            if line {
                out.push(b'\n');
            }
        }
        Service::Echo => out.extend_from_slice(msg),
        Service::Discard => {}
    }
}

/// Logs a received message: at info level when asked (`--reply`'s
/// default), at trace level otherwise.
fn log_message(msg: &[u8], peer: &PeerAddr, config: &ServeConfig) {
    if config.log_data {
        tracing::info!("recv {} (from {peer})", escape_bytes(msg, LOG_PREVIEW));
    } else {
        tracing::trace!("recv {} (from {peer})", escape_bytes(msg, LOG_PREVIEW));
    }
}

/// Writes and frees `out` (not an `async fn`, for the reason given at
/// [`handle`]).
#[allow(clippy::manual_async_fn, reason = "an async fn doubles the arguments")]
fn write_out<'a>(
    stream: &'a mut Stream,
    out: &'a mut Vec<u8>,
    counts: &'a mut Counts,
) -> impl Future<Output = Result<()>> + 'a {
    async move {
        if out.is_empty() {
            return Ok(());
        }
        stream
            .write_all(out)
            .await
            .map_err(|e| Error::io("write", e))?;
        stream.flush().await.map_err(|e| Error::io("write", e))?;
        counts.sent += out.len() as u64;
        // Freed, not cleared: a connection keeps no buffer between messages.
        *out = Vec::new();
        Ok(())
    }
}

/// Half-closes, then reads and drops what the peer still sends for a
/// moment, so closing with unread data does not reset the connection and
/// destroy the error message we just sent.
async fn linger(stream: &mut Stream) {
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        // On the heap: an array here would enlarge every connection's future.
        let mut sink = vec![0u8; 4096];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
