//! The services a connection gets (reply, echo, discard), per read or per
//! line, with the idle timeout and byte accounting.
//!
//! A connection waits for data without holding a buffer, so ten thousand
//! idle connections cost no buffer memory: each read goes to a buffer on
//! the stack of the poll that makes it (uninitialised, so it costs
//! nothing to set up), and a message is answered from there in the same
//! poll (see `Timed::poll_serve_read`): no allocation per message. Only
//! what must outlive the poll (an answer the peer does not take at once,
//! a `--lines` read) is copied to the heap. While a `--lines` read is
//! handled, answers go out through an output buffer of at most `OUT_BUF`
//! bytes, and parsing stops while the peer does not take them: a
//! connection's memory is bounded whatever it sends. The idle timeout covers blocked writes as
//! well as reads, and with `--lines` a line must end within the line
//! timeout of its first byte.

use std::borrow::Cow;
use std::future::{Future, poll_fn};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::ServeConfig;
use super::lines::{LineSplitter, LineTooLong};
use crate::deadline::after;
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::escape::{LOG_PREVIEW, escape_bytes};
use crate::service::{self, CloseReason, Conn, Observer};
use crate::transport::{PeerAddr, Stream};

/// The read buffer for request/response services: larger than any typical
/// message, small enough for the stack of the poll that reads.
const MESSAGE_BUF: usize = 16 * 1024;
/// The most answer bytes a `--lines` connection holds before writing them:
/// with the read buffer and the partial line, what bounds its memory
/// whatever the peer sends.
const OUT_BUF: usize = 16 * 1024;
/// The read buffer for `--discard`, where bulk throughput matters (on the
/// stack too: a runtime worker's stack is 2 MiB).
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
pub enum Answer {
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

/// What one connection keeps besides its stream and buffers: byte counts,
/// the deadlines' clocks, the accept loop's progress clock and shutdown
/// state, and the observer.
#[derive(Debug)]
struct ConnState<O> {
    /// When the connection started; `line_started` counts from here, in
    /// milliseconds (8 bytes rather than 16, in every connection).
    start: Instant,
    received: u64,
    sent: u64,
    /// When bytes last moved either way (the idle timeout runs from here).
    /// An instant, not milliseconds: it is set on every message, and a
    /// conversion there would cost more than its 8 bytes.
    last_progress: Instant,
    /// When the first byte of the unfinished line arrived (`--lines`), or
    /// [`NO_LINE`].
    line_started: u64,
    /// The idle timeout (from the connection's deadlines).
    idle_timeout: Option<Duration>,
    /// The accept loop's view of this connection: its progress (a message
    /// served or a write that moved bytes, not a trickled partial line) and
    /// whether it waits between messages, for shutdown.
    conn: service::ConnState,
    observer: O,
}

/// `line_started` when no line is unfinished.
const NO_LINE: u64 = u64::MAX;

impl<O: Observer> ConnState<O> {
    /// Records `n` bytes received at `now`.
    #[inline]
    fn received(&mut self, n: usize, now: Instant) {
        self.last_progress = now;
        self.received += n as u64;
        self.observer.received(n);
    }

    /// Records `n` answer bytes the peer took at `now` (progress both for
    /// the idle timeout and for the accept loop).
    #[inline]
    fn sent(&mut self, n: usize, now: Instant) {
        self.sent += n as u64;
        self.observer.sent(n);
        self.last_progress = now;
        self.served(now);
    }
}

impl<O> ConnState<O> {
    /// Records that a message was served or answer bytes were taken.
    #[inline]
    fn served(&self, now: Instant) {
        self.conn.progress(now);
    }

    /// `at` in milliseconds from the start.
    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.start).as_millis()).unwrap_or(NO_LINE - 1)
    }

    /// The instant `millis` milliseconds after the start.
    fn instant(&self, millis: u64) -> Instant {
        after(self.start, Duration::from_millis(millis))
    }

    /// When bytes last moved either way.
    fn last_progress(&self) -> Instant {
        self.last_progress
    }

    /// When the unfinished line started, if one is.
    fn line_started(&self) -> Option<Instant> {
        (self.line_started != NO_LINE).then(|| self.instant(self.line_started))
    }
}

/// Serves one connection to its end and logs how it ended.
///
/// This future is what every open connection costs, so it is kept small:
/// a plain function returning an `async move` block rather than an `async
/// fn`, which would keep a second copy of its arguments in its state
/// (rust-lang/rust#62958); rare paths boxed.
#[allow(clippy::manual_async_fn, reason = "an async fn doubles the arguments")]
pub(super) fn handle<O: Observer>(
    conn: Conn<O>,
    config: Arc<ServeConfig>,
) -> impl Future<Output = ()> + Send + 'static {
    // Taken apart and the state built here, outside the future: the
    // future then holds each part once (moving them inside would keep both
    // the captured `Conn` and the parts).
    let (stream, peer, conn, deadlines, observer) = conn.into_parts();
    let start = Instant::now();
    let state = ConnState {
        start,
        received: 0,
        sent: 0,
        last_progress: start,
        line_started: NO_LINE,
        idle_timeout: deadlines.idle_timeout,
        conn,
        observer,
    };
    let mut t = Timed {
        stream,
        state,
        config,
        armed: 0,
    };
    async move {
        tracing::debug!("{peer}: connected");
        let timer =
            tokio::time::sleep_until(next_deadline(&t.state, &t.config).unwrap_or_else(never));
        tokio::pin!(timer);
        let result = serve_connection(&mut t, timer, &peer).await;
        let state = &t.state;
        let elapsed = state.start.elapsed();
        // Formatted only if the line is logged (closes are logged at debug
        // level): formatting it always was ~1,300 instructions per
        // connection under churn.
        let summary = Summary {
            received: state.received,
            sent: state.sent,
            elapsed,
        };
        // The parts as fields too, for `--log-format json`.
        macro_rules! log {
            ($level:ident, $outcome:expr, $($msg:tt)+) => {
                tracing::$level!(
                    peer = %peer,
                    bytes_in = state.received,
                    bytes_out = state.sent,
                    duration_ms = elapsed.as_millis() as u64,
                    outcome = %$outcome,
                    $($msg)+
                )
            };
        }
        state.observer.ended(match &result {
            // Between messages at shutdown, or the peer's own end.
            Ok(()) if state.conn.shutdown.is_cancelled() => CloseReason::Shutdown,
            Ok(()) => CloseReason::Clean,
            Err(err) => CloseReason::of_error(err.kind()),
        });
        state.observer.closed(&peer, state.received, state.sent);
        match result {
            Ok(()) => log!(debug, "closed", "{peer}: closed ({summary})"),
            Err(err) => {
                match err.kind() {
                    ErrorKind::Timeout | ErrorKind::Protocol => {
                        log!(info, err, "{peer}: {err} ({summary})")
                    }
                    _ => log!(debug, err, "{peer}: {err} ({summary})"),
                }
                state.observer.failed(&err);
            }
        }
    }
}

/// The end of a connection's close line: `received N bytes, sent M in D`
/// (formatted only when the line is logged).
struct Summary {
    received: u64,
    sent: u64,
    elapsed: Duration,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {} bytes, sent {} in {}",
            self.received,
            self.sent,
            fmt_duration(self.elapsed)
        )
    }
}

/// Serves a connection until EOF, an error or a deadline (not an `async
/// fn`, for the reason given at [`handle`]).
///
/// One timer serves every deadline: the idle timeout (no byte moved either
/// way, whether we wait to read or to write) and the line timeout. It is
/// reset lazily: progress only records when it happened, and the timer,
/// when it fires early, is pushed to the real deadline. Only a deadline
/// that comes earlier (a new line starting) resets it at once.
///
/// Every wait is a `poll_fn` over [`Timed`]'s poll methods rather than an
/// `async fn`: each nested future would add its arguments to the state of
/// every connection.
#[allow(clippy::manual_async_fn, reason = "an async fn doubles the arguments")]
fn serve_connection<'a, 't, O: Observer>(
    t: &'a mut Timed<O>,
    mut timer: Pin<&'t mut Sleep>,
    peer: &'a PeerAddr,
) -> impl Future<Output = Result<()>> + use<'a, 't, O> {
    async move {
        if let Framing::Lines { .. } = t.config.framing {
            // On the heap: its state would enlarge every connection's
            // future, `--lines` or not.
            return Box::pin(serve_line_reads(t, timer, peer)).await;
        }
        // Each read is a message. A message is read, answered and, in the
        // usual case, written back in one poll ([`Timed::poll_serve_read`]),
        // from a buffer on the stack: no allocation per message, one clock
        // read. Only an answer the peer does not take at once is copied to
        // the heap and written here, with the deadlines.
        loop {
            // Between messages: shutdown may close us while we wait, or
            // has started already.
            if t.state.conn.idle() {
                tracing::debug!("{peer}: closing for shutdown");
                return Ok(());
            }
            // Only a pointer is kept across the wait (the answer is in
            // the boxed future).
            let rest = match poll_fn(|cx| t.poll_serve_read(cx, &mut timer, peer)).await? {
                Served::Answered => continue,
                Served::Blocked(answer, written) => {
                    Box::pin(t.write_rest(&mut timer, answer, written))
                }
                Served::Closed => return Ok(()),
                Served::Eof => break,
            };
            rest.await?;
        }
        let _ = t.stream.shutdown().await;
        Ok(())
    }
}

/// Serves a `--lines` connection (see [`serve_connection`]).
async fn serve_line_reads<O: Observer>(
    t: &mut Timed<O>,
    mut timer: Pin<&mut Sleep>,
    peer: &PeerAddr,
) -> Result<()> {
    let mut splitter = LineSplitter::default();
    loop {
        // Between messages (no partial line): shutdown may close us
        // while we wait, or has started already.
        if !splitter.has_pending() && t.state.conn.idle() {
            tracing::debug!("{peer}: closing for shutdown");
            return Ok(());
        }
        let buf = match poll_fn(|cx| t.poll_read(cx, &mut timer)).await {
            Ok(buf) => buf,
            Err(err) => {
                let Some(d) = line_overdue(&t.state, &t.config) else {
                    return Err(err);
                };
                // Say why we close, as for a line too long.
                let message = format!("error: line timeout ({})\n", fmt_duration(d));
                return Err(Box::pin(farewell(&mut t.stream, message, err)).await);
            }
        };
        if !t.state.conn.busy() {
            // Shutdown closed the connection as the data arrived.
            return Ok(());
        }
        let eof = buf.is_empty();
        if !eof {
            t.state.received(buf.len(), Instant::now());
        }
        // On the heap while it runs: a connection waiting for its next
        // read holds only the pointer.
        Box::pin(serve_lines(t, &mut timer, &mut splitter, &buf, eof, peer)).await?;
        if eof {
            let _ = t.stream.shutdown().await;
            return Ok(());
        }
    }
}

/// What one poll of [`Timed::poll_serve_read`] did.
enum Served {
    /// A message was read and its answer written.
    Answered,
    /// A message was read; its answer (from the offset given on) waits
    /// for the peer to take it.
    Blocked(Vec<u8>, usize),
    /// Shutdown closed the connection as the data arrived.
    Closed,
    /// The peer finished sending.
    Eof,
}

/// Answers the lines in `buf` (and the unterminated last one, at `eof`)
/// and restarts the line deadline if a line is left unfinished.
///
/// Answers go out through a buffer of at most [`OUT_BUF`] bytes: when it is
/// full it is written, and no more input is parsed until the peer has taken
/// it.
async fn serve_lines<O: Observer>(
    t: &mut Timed<O>,
    timer: &mut Pin<&mut Sleep>,
    splitter: &mut LineSplitter,
    buf: &[u8],
    eof: bool,
    peer: &PeerAddr,
) -> Result<()> {
    // Its own reference: answers borrow from it while `t` writes.
    let config = Arc::clone(&t.config);
    let config = &*config;
    let Framing::Lines { max_line } = config.framing else {
        return Ok(());
    };
    let mut out = Vec::new();
    let mut rest = buf;
    let mut completed = false;
    loop {
        let line = match splitter.next_line(&mut rest, max_line) {
            Ok(Some(line)) => line,
            // At EOF, an unterminated last line is a line too.
            Ok(None) if eof => match splitter.finish() {
                Some(last) => Cow::Owned(last),
                None => break,
            },
            Ok(None) => break,
            Err(LineTooLong { max_line }) => {
                // Answer the complete lines before the long one, then say why we close.
                t.write(timer, &out).await?;
                return Err(farewell(
                    &mut t.stream,
                    format!("error: line too long (max {max_line} bytes)\n"),
                    Error::new(ErrorKind::Protocol, "closing")
                        .with_detail(format!("line longer than {max_line} bytes")),
                )
                .await);
            }
        };
        completed = true;
        log_message(&line, peer, config);
        // Copied into `out` as far as it has room; a full `out` is written
        // before the rest is copied.
        let [mut part, mut next] = answer_parts(&line, true, config);
        if part.is_empty() {
            part = std::mem::take(&mut next);
        }
        while !part.is_empty() {
            if out.len() == OUT_BUF {
                t.write(timer, &out).await?;
                out.clear();
            }
            let n = part.len().min(OUT_BUF - out.len());
            if out.capacity() - out.len() < n {
                // Grown by doubling as usual, but never past its bound (and
                // small when the answers are: one line's echo stays cheap).
                let want = (out.capacity() * 2).max(out.len() + n).clamp(64, OUT_BUF);
                out.reserve_exact(want - out.len());
            }
            out.extend_from_slice(&part[..n]);
            part = &part[n..];
            if part.is_empty() {
                part = std::mem::take(&mut next);
            }
        }
    }
    t.write(timer, &out).await?;
    if completed {
        // Once per read, not per line: the clock is coarse.
        t.state.served(Instant::now());
    }
    // The line deadline runs from the first byte of a line.
    if !splitter.has_pending() {
        t.state.line_started = NO_LINE;
    } else if completed || t.state.line_started == NO_LINE {
        t.state.line_started = t.state.millis(Instant::now());
        if let Some(deadline) = next_deadline(&t.state, config)
            && deadline < timer.deadline()
        {
            timer.as_mut().reset(deadline);
            // Polled again at the next wait (see `Timed::poll_deadlines`).
            t.armed = 0;
        }
    }
    Ok(())
}

/// A connection's stream with its state: every read and write goes
/// through [`Timed::poll_read`] and [`Timed::poll_write`], which take the
/// connection's deadline timer, so no wait, either way, outlasts a
/// deadline. (Owned, not borrowed, and built before the connection's
/// future, which then holds each part once; the timer is pinned in that
/// future.)
struct Timed<O> {
    stream: Stream,
    state: ConnState<O>,
    config: Arc<ServeConfig>,
    /// Whom the deadline timer will wake: the data pointer of the waker it
    /// was last polled with (a task's waker keeps it for the task's life),
    /// or 0 when it must be polled at the next wait (never polled yet, or
    /// reset since). A timer that fired is seen by `Sleep::is_elapsed`.
    /// See [`Timed::poll_deadlines`].
    armed: usize,
}

impl<O: Observer> Timed<O> {
    /// Reads what the stream has (empty at end of stream), unless a
    /// deadline passes first. The read goes to a buffer on the stack, and
    /// only what arrived is copied out: a connection waiting to read holds
    /// no buffer, and a short message costs a short allocation.
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Pin<&mut Sleep>,
    ) -> Poll<Result<Vec<u8>>> {
        match self.config.service {
            Answer::Discard => self.poll_read_into::<BULK_BUF>(cx, timer),
            _ => self.poll_read_into::<MESSAGE_BUF>(cx, timer),
        }
    }

    /// [`poll_read`](Timed::poll_read) with a stack buffer of `N` bytes.
    #[inline(always)]
    fn poll_read_into<const N: usize>(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Pin<&mut Sleep>,
    ) -> Poll<Result<Vec<u8>>> {
        let mut scratch = [MaybeUninit::<u8>::uninit(); N];
        let mut buf = ReadBuf::uninit(&mut scratch);
        // Read first, so data that came with the timer's expiry is served.
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.filled().to_vec())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::io("read", e))),
            Poll::Pending => self.poll_deadlines(cx, timer, false),
        }
    }

    /// Reads a message and answers it, in one poll, unless a deadline
    /// passes first: the whole of the usual request/response exchange.
    fn poll_serve_read(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Pin<&mut Sleep>,
        peer: &PeerAddr,
    ) -> Poll<Result<Served>> {
        // Monomorphic buffer sizes: no more stack than the service reads.
        match self.config.service {
            Answer::Discard => self.poll_serve_read_into::<BULK_BUF>(cx, timer, peer),
            _ => self.poll_serve_read_into::<MESSAGE_BUF>(cx, timer, peer),
        }
    }

    /// [`poll_serve_read`](Timed::poll_serve_read) with a stack buffer of
    /// `N` bytes (uninitialised: nothing to clear per read).
    #[inline(always)]
    fn poll_serve_read_into<const N: usize>(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Pin<&mut Sleep>,
        peer: &PeerAddr,
    ) -> Poll<Result<Served>> {
        let mut scratch = [MaybeUninit::<u8>::uninit(); N];
        let mut buf = ReadBuf::uninit(&mut scratch);
        // Read first, so data that came with the timer's expiry is served.
        match Pin::new(&mut self.stream).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::io("read", e))),
            Poll::Pending => return self.poll_deadlines(cx, timer, false),
        }
        let msg = buf.filled();
        if !self.state.conn.busy() {
            return Poll::Ready(Ok(Served::Closed));
        }
        if msg.is_empty() {
            return Poll::Ready(Ok(Served::Eof));
        }
        // One clock read for the whole exchange: the deadlines count in
        // milliseconds, and the answer goes out microseconds later.
        let now = Instant::now();
        self.state.received(msg.len(), now);
        // Each read is a message: answer it straight from the read buffer
        // or the reply, no copy.
        self.state.served(now);
        log_message(msg, peer, &self.config);
        let [answer, _] = answer_parts(msg, false, &self.config);
        let mut written = 0;
        while written < answer.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &answer[written..]) {
                Poll::Ready(Ok(0)) => {
                    let err = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(Error::io("write", err)));
                }
                Poll::Ready(Ok(n)) => {
                    // Progress at `now` is recorded already.
                    written += n;
                    self.state.sent += n as u64;
                    self.state.observer.sent(n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::io("write", e))),
                // The peer does not take it now: the rest waits on the
                // heap (rare for request/response traffic).
                Poll::Pending => return Poll::Ready(Ok(Served::Blocked(answer.to_vec(), written))),
            }
        }
        if answer.is_empty() {
            return Poll::Ready(Ok(Served::Answered));
        }
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Served::Answered)),
            Poll::Ready(Err(e)) => Poll::Ready(Err(Error::io("write", e))),
            // Written, not flushed yet (TLS): the flush waits.
            Poll::Pending => Poll::Ready(Ok(Served::Blocked(answer.to_vec(), written))),
        }
    }

    /// Writes all of `data` and flushes it, unless a deadline passes first.
    async fn write(&mut self, timer: &mut Pin<&mut Sleep>, data: &[u8]) -> Result<()> {
        let mut written = 0;
        poll_fn(|cx| self.poll_write(cx, timer, data, &mut written)).await
    }

    /// Writes `answer` from `written` on and flushes it, unless a deadline
    /// passes first (what [`Timed::poll_serve_read`] could not write).
    async fn write_rest(
        &mut self,
        timer: &mut Pin<&mut Sleep>,
        answer: Vec<u8>,
        mut written: usize,
    ) -> Result<()> {
        poll_fn(|cx| self.poll_write(cx, timer, &answer, &mut written)).await
    }

    /// Writes `data` from `*written` on and flushes it (TLS holds written
    /// data until flushed; a no-op for TCP). Every write that moves bytes
    /// is progress; a write blocked past a deadline fails.
    fn poll_write(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Pin<&mut Sleep>,
        data: &[u8],
        written: &mut usize,
    ) -> Poll<Result<()>> {
        while *written < data.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &data[*written..]) {
                Poll::Ready(Ok(0)) => {
                    let err = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(Error::io("write", err)));
                }
                Poll::Ready(Ok(n)) => {
                    *written += n;
                    self.state.sent(n, Instant::now());
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(Error::io("write", e))),
                Poll::Pending => return self.poll_deadlines(cx, timer, true),
            }
        }
        if data.is_empty() {
            return Poll::Ready(Ok(()));
        }
        match Pin::new(&mut self.stream).poll_flush(cx) {
            Poll::Ready(flushed) => Poll::Ready(flushed.map_err(|e| Error::io("write", e))),
            Poll::Pending => self.poll_deadlines(cx, timer, true),
        }
    }

    /// Polls the deadline timer: pending while no deadline has passed
    /// (pushing a timer that fired early to the real deadline), an error
    /// once one has. `writing` says what we were waiting for, for the
    /// message.
    ///
    /// Called at every wait, so at every wake of a busy connection: a timer
    /// already registered with this task's waker, and not fired since, is
    /// not polled again (polling it would only register the same waker
    /// again, ~11% of an echo request's instructions). It will wake us when
    /// it fires, and only then is it polled, checked against the real
    /// deadlines and pushed on. Deadlines only move later by progress (the
    /// timer is reset lazily); one that moves earlier (a line starting)
    /// resets the timer and disarms it.
    #[inline]
    fn poll_deadlines<T>(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Pin<&mut Sleep>,
        writing: bool,
    ) -> Poll<Result<T>> {
        if self.armed != 0 && self.armed == waker_id(cx) && !timer.is_elapsed() {
            return Poll::Pending;
        }
        if next_deadline(&self.state, &self.config).is_none() {
            // No deadline applies (and a timer armed for one that no longer
            // does may wake us once, for nothing).
            return Poll::Pending;
        }
        self.poll_timer(cx, timer, writing)
    }

    /// [`poll_deadlines`](Timed::poll_deadlines) when a deadline applies
    /// and the timer must be polled: it was never polled, was reset, fired,
    /// or the waker changed.
    #[inline(never)]
    fn poll_timer<T>(
        &mut self,
        cx: &mut Context<'_>,
        timer: &mut Pin<&mut Sleep>,
        writing: bool,
    ) -> Poll<Result<T>> {
        self.armed = 0;
        // Outside the task's budget: a task that has used its budget up
        // (a long burst of reads and writes) would get `Pending` without
        // the timer being registered, and, armed, it would never fire.
        while Pin::new(&mut tokio::task::unconstrained(timer.as_mut()))
            .poll(cx)
            .is_ready()
        {
            let now = Instant::now();
            if let Some(err) = expired(&self.state, &self.config, now, writing) {
                return Poll::Ready(Err(err));
            }
            let deadline = next_deadline(&self.state, &self.config).unwrap_or_else(never);
            timer.as_mut().reset(deadline);
        }
        // Registered with this waker, in the wheel until it fires.
        self.armed = waker_id(cx);
        Poll::Pending
    }
}

/// Who `cx` wakes, for [`Timed::poll_deadlines`]: its waker's data
/// pointer, which names the task for tokio (the task's header) and for
/// other executors alike (their `Arc`ed task). A waker without data (0)
/// names nobody: the timer is then polled at every wait.
#[inline]
fn waker_id(cx: &Context<'_>) -> usize {
    cx.waker().data() as usize
}

/// The earliest deadline of the connection, if any applies.
fn next_deadline<O>(state: &ConnState<O>, config: &ServeConfig) -> Option<Instant> {
    let idle = state.idle_timeout.map(|d| after(state.last_progress(), d));
    let line = match (config.line_timeout, state.line_started()) {
        (Some(d), Some(started)) => Some(after(started, d)),
        _ => None,
    };
    match (idle, line) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The line timeout, if the unfinished line has outlived it.
fn line_overdue<O>(state: &ConnState<O>, config: &ServeConfig) -> Option<Duration> {
    let (d, started) = (config.line_timeout?, state.line_started()?);
    (Instant::now() >= after(started, d)).then_some(d)
}

/// The error for a deadline that has passed at `now`, if one has.
fn expired<O>(
    state: &ConnState<O>,
    config: &ServeConfig,
    now: Instant,
    writing: bool,
) -> Option<Error> {
    if let (Some(d), Some(started)) = (config.line_timeout, state.line_started())
        && now >= after(started, d)
    {
        return Some(
            Error::new(ErrorKind::Timeout, "closing")
                .with_detail(format!("line not complete within {}", fmt_duration(d))),
        );
    }
    let d = state.idle_timeout?;
    (now >= after(state.last_progress(), d)).then(|| {
        let detail = if writing {
            format!(
                "write blocked for {}: the peer is not reading",
                fmt_duration(d)
            )
        } else {
            format!("idle for {}", fmt_duration(d))
        };
        Error::new(ErrorKind::Timeout, "closing").with_detail(detail)
    })
}

/// A deadline far enough away to mean none.
fn never() -> Instant {
    crate::deadline::from_now(NEVER)
}

/// The answer to one message, in two parts (the second is the newline
/// after a reply in `--lines` mode): nothing is copied.
pub(super) fn answer_parts<'a>(
    msg: &'a [u8],
    line: bool,
    config: &'a ServeConfig,
) -> [&'a [u8]; 2] {
    match &config.service {
        Answer::Reply(reply) => [reply, if line { b"\n" } else { b"" }],
        Answer::Echo => [msg, b""],
        Answer::Discard => [b"", b""],
    }
}

/// Logs a received message: at info level when asked (`--reply`'s
/// default), at trace level otherwise.
pub(super) fn log_message(msg: &[u8], peer: &PeerAddr, config: &ServeConfig) {
    if config.log_data {
        tracing::info!("recv {} (from {peer})", escape_bytes(msg, LOG_PREVIEW));
    } else {
        tracing::trace!("recv {} (from {peer})", escape_bytes(msg, LOG_PREVIEW));
    }
}

/// Sends a last error line to the peer (for at most [`LINGER`]: a peer that
/// does not read gets nothing), lingers so it is not lost to a reset, and
/// returns `err`.
async fn farewell(stream: &mut Stream, message: String, err: Error) -> Error {
    let _ = tokio::time::timeout(LINGER, async {
        stream.write_all(message.as_bytes()).await?;
        stream.flush().await
    })
    .await;
    linger(stream).await;
    err
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
