//! The one worker every workload runs: it keeps one connection busy,
//! parameterised by the plan's pacing (closed or open loop) and stop
//! condition (a duration or a request count), reconnecting after errors and,
//! in churn mode, after every exchange.
//!
//! A worker allocates its buffers once and reuses them for every request
//! and every connection; samples are batched locally and merged into the
//! run's shared totals every [`BATCH`] requests (or [`FLUSH_EVERY`]), so
//! the hot path takes no lock and allocates nothing.
//!
//! Replies are framed by length: a request expects exactly as many bytes as
//! the expected reply has, however the transport splits or coalesces them.
//! A reply whose bytes differ is a `wrong reply`; since the framing can no
//! longer be trusted, its connection is closed and reopened.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pacing::{ConnectGate, Pacing, PreciseTimer, Schedule, far_future, later};
use super::plan::{Plan, Stop};
use crate::error::Result;
use crate::stats::{self, ErrorClass, ErrorCounts};

/// Samples a worker keeps before merging them into the shared totals.
pub const BATCH: usize = 64;
/// The longest a worker keeps samples before merging them (for progress).
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// An open-loop request sent later than this after its due time counts as
/// sent late.
const LATE: Duration = Duration::from_millis(1);
/// The most bytes of requests written together (`--pipeline`).
const OUT_MAX: usize = 1 << 20;
/// Closed loop: the first and the longest pause after a failed connection
/// attempt (open loop is paced by its schedule instead).
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Opens connections for the workers: the transport, abstracted so the
/// worker can be tested over in-memory streams.
pub trait Connector: Send + Sync + 'static {
    /// The connected stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// Opens one connection (no retry: the worker counts failures and
    /// tries again).
    fn connect(&self) -> impl Future<Output = Result<Self::Stream>> + Send;
}

/// What all workers measured, merged.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Latency of measured requests that completed, nanoseconds (open
    /// loop: from each request's due time, corrected for coordinated
    /// omission).
    pub latency: Histogram<u64>,
    /// Open loop only: the same requests' latency from when each was
    /// actually sent (uncorrected), nanoseconds.
    pub uncorrected: Option<Histogram<u64>>,
    /// What was merged since the driver last closed a per-second interval.
    pub window: Window,
    /// Time to connect, nanoseconds (every successful attempt, warm-up
    /// included: connections are mostly opened then).
    pub connect: Histogram<u64>,
    /// Measured requests answered correctly.
    pub ok: u64,
    /// Measured requests that failed, by kind.
    pub errors: ErrorCounts,
    /// Request bytes written for measured requests.
    pub bytes_sent: u64,
    /// Reply bytes read for measured requests that completed.
    pub bytes_received: u64,
    /// Connections opened (successful attempts).
    pub connections: u64,
    /// Open loop: measured requests sent more than 1 ms after their due time.
    pub late_sends: u64,
    /// Open loop: the largest delay between a request's due time and its send.
    pub max_send_lag: Duration,
}

impl Default for Totals {
    fn default() -> Totals {
        Totals {
            latency: stats::histogram(),
            uncorrected: None,
            window: Window::default(),
            connect: stats::histogram(),
            ok: 0,
            errors: ErrorCounts::default(),
            bytes_sent: 0,
            bytes_received: 0,
            connections: 0,
            late_sends: 0,
            max_send_lag: Duration::ZERO,
        }
    }
}

/// The part of the totals merged since the last per-second interval was
/// closed: what that interval's latency, rate and errors are made of.
#[derive(Debug, Clone)]
pub struct Window {
    /// Latency of the requests merged in this window, nanoseconds.
    pub latency: Histogram<u64>,
    /// Requests answered correctly.
    pub ok: u64,
    /// Requests failed, by kind.
    pub errors: ErrorCounts,
}

impl Default for Window {
    fn default() -> Window {
        Window {
            latency: stats::histogram(),
            ok: 0,
            errors: ErrorCounts::default(),
        }
    }
}

/// The state every worker of one run shares.
#[derive(Debug)]
pub struct Run {
    /// The workload.
    pub plan: Plan,
    /// The expected reply (the request itself for echo).
    expected: Arc<[u8]>,
    /// When the run started (the open-loop schedule's zero).
    pub start: Instant,
    /// When measuring starts (after the warm-up).
    pub measure_from: Instant,
    /// When a duration-bound run ends.
    pub end: Option<Instant>,
    /// Closed loop with a request count: measured requests claimed so far.
    claimed: AtomicU64,
    /// Open loop with a request count: scheduled requests, warm-up included.
    open_total: Option<u64>,
    /// Cancelled to stop every worker at once (Ctrl-C).
    pub cancel: CancellationToken,
    /// `--connect-rate`.
    gate: Option<ConnectGate>,
    /// Open loop: wait for send times with a [`PreciseTimer`].
    precise: bool,
    /// What the workers measured so far.
    totals: Mutex<Totals>,
}

/// What a worker does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Send a request now; its latency counts from `origin` (the due time
    /// in open loop, now in closed loop).
    Send { origin: Instant, measured: bool },
    /// Nothing is due before this time.
    Wait(Instant),
    /// The stop condition is met: send nothing more.
    Stop,
}

/// One request on the wire.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Where its latency counts from.
    origin: Instant,
    /// When it was actually sent (its timeout counts from here).
    sent: Instant,
    /// Sent after the warm-up.
    measured: bool,
}

/// How one connection ended.
enum Ended {
    /// The worker is done.
    Stop,
    /// Open another connection (after an error, or in churn mode).
    Reconnect,
}

impl Run {
    /// The shared state of a run of `plan` starting at `start`, stopped
    /// early by `cancel`.
    pub fn new(plan: Plan, start: Instant, cancel: CancellationToken) -> Run {
        let measure_from = later(start, plan.warmup);
        let end = match plan.stop {
            Stop::Duration(d) => Some(later(measure_from, d)),
            Stop::Requests(_) => None,
        };
        let gate = plan.connect_rate.map(|rate| ConnectGate::new(start, rate));
        let open = matches!(plan.pacing, Pacing::Open { .. });
        Run {
            expected: plan.expected_reply(),
            open_total: plan.open_loop_total(),
            plan,
            start,
            measure_from,
            end,
            claimed: AtomicU64::new(0),
            cancel,
            gate,
            precise: false,
            totals: Mutex::new(Totals {
                uncorrected: open.then(stats::histogram),
                ..Totals::default()
            }),
        }
    }

    /// Open loop: wait for each send time with a [`PreciseTimer`] (the
    /// kernel's resolution) instead of tokio's timer, which would send up to
    /// a millisecond late. For runs on the real clock; off by default, so
    /// tests may pause tokio's clock.
    pub fn precise_timer(mut self) -> Run {
        self.precise = true;
        self
    }

    /// The totals merged so far (workers merge in batches).
    pub fn totals(&self) -> MutexGuard<'_, Totals> {
        self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next step for a worker whose open-loop schedule is `pacer`.
    fn next(&self, pacer: &mut Option<Schedule>, now: Instant) -> Next {
        if self.cancel.is_cancelled() {
            return Next::Stop;
        }
        match pacer {
            None => {
                if self.end.is_some_and(|end| now >= end) {
                    return Next::Stop;
                }
                let measured = now >= self.measure_from;
                if let (true, Stop::Requests(n)) = (measured, self.plan.stop)
                    && self.claimed.fetch_add(1, Ordering::Relaxed) >= n
                {
                    return Next::Stop;
                }
                Next::Send {
                    origin: now,
                    measured,
                }
            }
            Some(schedule) => {
                if self
                    .open_total
                    .is_some_and(|total| schedule.index() >= total)
                {
                    return Next::Stop;
                }
                let due = schedule.due();
                if self.end.is_some_and(|end| due >= end) {
                    return Next::Stop;
                }
                if due > now {
                    return Next::Wait(due);
                }
                schedule.advance();
                Next::Send {
                    origin: due,
                    measured: due >= self.measure_from,
                }
            }
        }
    }

    /// Whether a request-count stop condition is already met, so a worker
    /// need not open another connection.
    fn exhausted(&self, pacer: &Option<Schedule>) -> bool {
        match (pacer, self.plan.stop) {
            (Some(schedule), _) => self
                .open_total
                .is_some_and(|total| schedule.index() >= total),
            (None, Stop::Requests(n)) => self.claimed.load(Ordering::Relaxed) >= n,
            (None, Stop::Duration(_)) => false,
        }
    }

    fn past_end(&self, now: Instant) -> bool {
        self.end.is_some_and(|end| now >= end)
    }

    /// Sleeps until `at`; false when the run was cancelled or ended first.
    async fn sleep_until(&self, at: Instant) -> bool {
        let end = self.end.map_or(at, |end| end.min(at));
        tokio::select! {
            _ = tokio::time::sleep_until(end) => !self.past_end(Instant::now()),
            _ = self.cancel.cancelled() => false,
        }
    }
}

/// A worker's unmerged samples and counts.
struct Local {
    /// Latencies (nanoseconds) from the due time and from the send.
    samples: Vec<(u64, u64)>,
    ok: u64,
    errors: ErrorCounts,
    bytes_sent: u64,
    bytes_received: u64,
    late_sends: u64,
    max_send_lag: Duration,
    last_flush: Instant,
}

impl Local {
    fn new(now: Instant) -> Local {
        Local {
            samples: Vec::with_capacity(BATCH),
            ok: 0,
            errors: ErrorCounts::default(),
            bytes_sent: 0,
            bytes_received: 0,
            late_sends: 0,
            max_send_lag: Duration::ZERO,
            last_flush: now,
        }
    }

    /// A measured request answered at `now`, due at `origin` and sent at
    /// `sent`.
    fn answered(&mut self, run: &Run, done: Pending, bytes: usize, now: Instant) {
        let ns = |d: Duration| d.as_nanos().clamp(1, u64::MAX as u128) as u64;
        self.samples
            .push((ns(now - done.origin), ns(now - done.sent)));
        self.ok += 1;
        self.bytes_received += bytes as u64;
        if self.samples.len() >= BATCH || now - self.last_flush >= FLUSH_EVERY {
            self.flush(run, now);
        }
    }

    fn failed(&mut self, class: ErrorClass, n: u64) {
        self.errors.add(class, n);
    }

    fn flush(&mut self, run: &Run, now: Instant) {
        self.last_flush = now;
        let mut guard = run.totals();
        let totals = &mut *guard;
        for (corrected, sent) in self.samples.drain(..) {
            // The histograms auto-resize: recording cannot fail.
            let _ = totals.latency.record(corrected);
            let _ = totals.window.latency.record(corrected);
            if let Some(h) = &mut totals.uncorrected {
                let _ = h.record(sent);
            }
        }
        totals.ok += self.ok;
        totals.window.ok += std::mem::take(&mut self.ok);
        totals.errors.merge(&self.errors);
        totals
            .window
            .errors
            .merge(&std::mem::take(&mut self.errors));
        totals.bytes_sent += std::mem::take(&mut self.bytes_sent);
        totals.bytes_received += std::mem::take(&mut self.bytes_received);
        totals.late_sends += std::mem::take(&mut self.late_sends);
        totals.max_send_lag = totals
            .max_send_lag
            .max(std::mem::take(&mut self.max_send_lag));
    }
}

/// The read buffer of one worker: room for a few replies at once, bounded.
fn read_buf_len(reply: usize, pipeline: usize) -> usize {
    reply.saturating_mul(pipeline).clamp(4096, 64 * 1024)
}

/// Runs worker `conn` (of `run.plan.connections`) until the run's stop
/// condition is met or it is cancelled.
pub async fn worker<C: Connector>(run: Arc<Run>, connector: Arc<C>, conn: usize) {
    let plan = &run.plan;
    let mut pacer = match plan.pacing {
        Pacing::Closed => None,
        Pacing::Open { rate } => Some(Schedule::new(
            run.start,
            rate,
            conn as u64,
            plan.connections as u64,
        )),
    };
    let mut local = Local::new(Instant::now());
    let mut buf = vec![0u8; read_buf_len(run.expected.len(), plan.pipeline)];
    // The request repeated, so requests that may go together are written
    // with one system call (bounded to 1 MiB).
    let max_batch = plan.pipeline.min((OUT_MAX / plan.request.len()).max(1));
    let out = plan.request.repeat(max_batch);
    let mut pending = VecDeque::with_capacity(plan.pipeline);
    let mut backoff = Duration::ZERO;
    let mut precise = match (&pacer, run.precise) {
        (Some(_), true) => PreciseTimer::new()
            .inspect_err(|e| {
                tracing::debug!("worker {conn}: no precise timer, sends wait for tokio's: {e}")
            })
            .ok(),
        _ => None,
    };

    loop {
        if run.cancel.is_cancelled() || run.past_end(Instant::now()) || run.exhausted(&pacer) {
            break;
        }
        if let Some(gate) = &run.gate
            && !run.sleep_until(gate.claim()).await
        {
            break;
        }
        let began = Instant::now();
        let end = run.end;
        let connected = tokio::select! {
            connected = connector.connect() => connected,
            _ = run.cancel.cancelled() => break,
            _ = async { tokio::time::sleep_until(end.unwrap_or(began)).await }, if end.is_some() => break,
        };
        let stream = match connected {
            Ok(stream) => {
                backoff = Duration::ZERO;
                let took = began.elapsed();
                let mut totals = run.totals();
                totals.connections += 1;
                let _ = totals.connect.record(took.as_nanos().max(1) as u64);
                stream
            }
            Err(err) => {
                let class = ErrorClass::of(&err);
                tracing::debug!("worker {conn}: {err}");
                // The request this connection was for fails: it takes its
                // place in the budget or on the schedule.
                let next = loop {
                    match run.next(&mut pacer, Instant::now()) {
                        Next::Wait(at) => {
                            if !run.sleep_until(at).await {
                                break Next::Stop;
                            }
                        }
                        next => break next,
                    }
                };
                match next {
                    Next::Send { measured, .. } => {
                        if measured {
                            local.failed(class, 1);
                        }
                    }
                    _ => break,
                }
                if pacer.is_none() {
                    backoff = (backoff * 2).clamp(BACKOFF_MIN, BACKOFF_MAX);
                    if !run.sleep_until(later(Instant::now(), backoff)).await {
                        break;
                    }
                }
                continue;
            }
        };
        pending.clear();
        let ended = exchange(
            &run,
            stream,
            &mut pacer,
            &mut local,
            &mut buf,
            &mut pending,
            &out,
            &mut precise,
        )
        .await;
        if let Ended::Stop = ended {
            break;
        }
    }
    local.flush(&run, Instant::now());
}

/// Counts the failure of every measured request in flight.
fn fail_pending(local: &mut Local, pending: &VecDeque<Pending>, class: ErrorClass) -> Ended {
    let n = pending.iter().filter(|p| p.measured).count() as u64;
    local.failed(class, n);
    Ended::Reconnect
}

/// Sends requests and reads replies on one connection until it fails, the
/// run stops, or (churn) its one exchange is done. Open loop waits for send
/// times with `precise` when there is one, with tokio's timer otherwise.
#[allow(clippy::too_many_arguments)]
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    run: &Run,
    stream: S,
    pacer: &mut Option<Schedule>,
    local: &mut Local,
    buf: &mut [u8],
    pending: &mut VecDeque<Pending>,
    out: &[u8],
    precise: &mut Option<PreciseTimer>,
) -> Ended {
    let plan = &run.plan;
    let request_len = plan.request.len();
    let max_batch = out.len() / request_len;
    let expected = &*run.expected;
    let (mut rd, mut wr) = tokio::io::split(stream);
    // The bytes of `out` being written (requests sent together in one
    // write), and how many requests they are.
    let mut writing: Option<(usize, usize)> = None;
    let mut batch = 0usize;
    // Offset into the reply being read, and whether it already differs.
    let mut rpos = 0usize;
    let mut wrong = false;
    let mut sent_here = 0u64;
    let mut stopping = false;
    let far = far_future(Instant::now());
    let timer = tokio::time::sleep_until(far);
    tokio::pin!(timer);
    let mut timer_at = far;
    // The send time the precise timer is armed for.
    let mut armed: Option<Instant> = None;

    loop {
        let now = Instant::now();
        let mut wake = run.end.unwrap_or(far);
        // The time the next request is due, when it is not due yet.
        let mut send_at = None;
        if writing.is_none() && !stopping {
            // Every request that may go now goes in one write.
            batch = 0;
            while pending.len() < plan.pipeline
                && batch < max_batch
                && !(plan.churn && sent_here >= 1)
            {
                match run.next(pacer, now) {
                    Next::Send { origin, measured } => {
                        let lag = now.saturating_duration_since(origin);
                        if measured && lag > LATE {
                            local.late_sends += 1;
                            local.max_send_lag = local.max_send_lag.max(lag);
                        }
                        pending.push_back(Pending {
                            origin,
                            sent: now,
                            measured,
                        });
                        batch += 1;
                        sent_here += 1;
                    }
                    Next::Wait(at) => {
                        send_at = Some(at);
                        break;
                    }
                    Next::Stop => {
                        stopping = true;
                        break;
                    }
                }
            }
            if batch > 0 {
                writing = Some((0, batch * request_len));
            }
        }
        if pending.is_empty() {
            if stopping {
                if !plan.hold.is_zero() && !run.cancel.is_cancelled() {
                    // Hold the idle connection open (`--hold`).
                    let _ = run.sleep_until(later(Instant::now(), plan.hold)).await;
                }
                return Ended::Stop;
            }
            if plan.churn && sent_here >= 1 {
                return Ended::Reconnect;
            }
        }
        if let Some(oldest) = pending.front() {
            wake = wake.min(later(oldest.sent, plan.request_timeout));
        }
        if let Some(at) = send_at {
            match precise {
                Some(_) if armed == Some(at) => {}
                Some(timer) => match timer.arm(at.saturating_duration_since(Instant::now())) {
                    Ok(()) => armed = Some(at),
                    Err(err) => {
                        tracing::debug!("precise timer: {err}");
                        *precise = None;
                    }
                },
                None => {}
            }
            if precise.is_none() {
                wake = wake.min(at);
            }
        }
        let wait_precisely = send_at.is_some() && precise.is_some();
        if wake < timer_at {
            timer.as_mut().reset(wake);
            timer_at = wake;
        }

        tokio::select! {
            biased;
            read = rd.read(buf) => {
                let n = match read {
                    Ok(0) => {
                        if pending.is_empty() {
                            // The server closed an idle connection.
                            return Ended::Reconnect;
                        }
                        return fail_pending(local, pending, ErrorClass::Closed);
                    }
                    Ok(n) => n,
                    Err(err) => return fail_pending(local, pending, ErrorClass::of_io(&err)),
                };
                let now = Instant::now();
                if expected.is_empty() {
                    // `--expect none`: the server should not answer.
                    if pending.is_empty() {
                        local.failed(ErrorClass::WrongReply, 1);
                        return Ended::Reconnect;
                    }
                    return fail_pending(local, pending, ErrorClass::WrongReply);
                }
                let mut chunk = &buf[..n];
                while !chunk.is_empty() {
                    if pending.is_empty() {
                        // Bytes nobody asked for.
                        local.failed(ErrorClass::WrongReply, 1);
                        return Ended::Reconnect;
                    }
                    let take = chunk.len().min(expected.len() - rpos);
                    if chunk[..take] != expected[rpos..rpos + take] {
                        wrong = true;
                    }
                    rpos += take;
                    chunk = &chunk[take..];
                    if rpos == expected.len() {
                        if wrong {
                            return fail_pending(local, pending, ErrorClass::WrongReply);
                        }
                        rpos = 0;
                        if let Some(done) = pending.pop_front()
                            && done.measured
                        {
                            local.answered(run, done, expected.len(), now);
                        }
                    }
                }
            }
            written = wr.write(writing.map_or(&[][..], |(pos, end)| &out[pos..end])), if writing.is_some() => {
                match written {
                    Ok(0) => return fail_pending(local, pending, ErrorClass::Closed),
                    Ok(n) => {
                        let (pos, end) = writing.unwrap_or((0, 0));
                        let pos = pos + n;
                        if pos >= end {
                            writing = None;
                            // TLS may hold written records until flushed
                            // (a no-op for TCP and Unix sockets).
                            if let Err(err) = wr.flush().await {
                                return fail_pending(local, pending, ErrorClass::of_io(&err));
                            }
                            let measured = pending.iter().rev().take(batch).filter(|p| p.measured).count();
                            local.bytes_sent += (measured * request_len) as u64;
                            if expected.is_empty() {
                                // No reply expected: done once written.
                                let now = Instant::now();
                                for _ in 0..batch {
                                    if let Some(done) = pending.pop_front()
                                        && done.measured
                                    {
                                        local.answered(run, done, 0, now);
                                    }
                                }
                            }
                        } else {
                            writing = Some((pos, end));
                        }
                    }
                    Err(err) => return fail_pending(local, pending, ErrorClass::of_io(&err)),
                }
            }
            fired = async {
                match precise.as_ref() {
                    Some(timer) => timer.fired().await,
                    None => std::future::pending().await,
                }
            }, if wait_precisely => {
                armed = None;
                if let Err(err) = fired {
                    tracing::debug!("precise timer: {err}");
                    *precise = None;
                }
            }
            _ = &mut timer => {
                timer_at = far;
                let now = Instant::now();
                if run.past_end(now) {
                    // Requests still in flight at the end are abandoned.
                    return Ended::Stop;
                }
                if pending.front().is_some_and(|p| now >= later(p.sent, plan.request_timeout)) {
                    return fail_pending(local, pending, ErrorClass::Timeout);
                }
            }
            _ = run.cancel.cancelled() => return Ended::Stop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::Expect;
    use crate::error::{Error, ErrorKind};
    use tokio::io::DuplexStream;
    use tokio::sync::mpsc;

    /// What the in-memory server does with each connection.
    #[derive(Clone, Copy)]
    enum Behaviour {
        /// Echo everything, stalling once for `stall` after `after` bytes.
        Echo { stall: Duration, after: usize },
        /// Answer every read with a fixed wrong byte string of the same length.
        Garble,
        /// Read and never answer.
        Silent,
        /// Refuse every connection.
        Refuse,
    }

    struct Memory {
        behaviour: Behaviour,
        stalled: Arc<std::sync::atomic::AtomicBool>,
        accepted: mpsc::UnboundedSender<()>,
    }

    impl Connector for Memory {
        type Stream = DuplexStream;
        fn connect(&self) -> impl Future<Output = Result<DuplexStream>> + Send {
            let behaviour = self.behaviour;
            let stalled = self.stalled.clone();
            let _ = self.accepted.send(());
            async move {
                if let Behaviour::Refuse = behaviour {
                    return Err(Error::new(ErrorKind::Refused, "connect"));
                }
                let (client, mut server) = tokio::io::duplex(64 * 1024);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let mut seen = 0;
                    loop {
                        let n = match server.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        seen += n;
                        match behaviour {
                            Behaviour::Echo { stall, after } => {
                                if seen > after && !stalled.swap(true, Ordering::SeqCst) {
                                    tokio::time::sleep(stall).await;
                                }
                                if server.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                            Behaviour::Garble => {
                                if server.write_all(&vec![b'?'; n]).await.is_err() {
                                    return;
                                }
                            }
                            Behaviour::Silent | Behaviour::Refuse => {}
                        }
                    }
                });
                Ok(client)
            }
        }
    }

    async fn run_plan(plan: Plan, behaviour: Behaviour) -> (Totals, usize) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let connector = Arc::new(Memory {
            behaviour,
            stalled: Arc::default(),
            accepted: tx,
        });
        let run = Arc::new(Run::new(plan, Instant::now(), CancellationToken::new()));
        let mut tasks = tokio::task::JoinSet::new();
        for conn in 0..run.plan.connections {
            tasks.spawn(worker(run.clone(), connector.clone(), conn));
        }
        while tasks.join_next().await.is_some() {}
        let mut connects = 0;
        while rx.try_recv().is_ok() {
            connects += 1;
        }
        let totals = run.totals().clone();
        (totals, connects)
    }

    fn echo() -> Behaviour {
        Behaviour::Echo {
            stall: Duration::ZERO,
            after: usize::MAX,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_count_stops_after_exactly_that_many() {
        let mut plan = Plan::echo(3, b"hello".to_vec(), Stop::Requests(100));
        plan.pipeline = 4;
        let (t, connects) = run_plan(plan, echo()).await;
        assert_eq!(t.ok, 100);
        assert_eq!(t.errors.total(), 0);
        assert_eq!(t.latency.len(), 100);
        assert_eq!(t.bytes_sent, 500);
        assert_eq!(t.bytes_received, 500);
        assert_eq!(connects, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_duration_sends_exactly_the_scheduled_requests() {
        let mut plan = Plan::echo(2, b"x".to_vec(), Stop::Duration(Duration::from_secs(1)));
        plan.pacing = Pacing::Open { rate: 100.0 };
        plan.warmup = Duration::from_millis(500);
        let (t, _) = run_plan(plan, echo()).await;
        // Due in [0.5 s, 1.5 s) at 100/s: requests 50..150.
        assert_eq!(t.ok, 100);
        assert_eq!(t.late_sends, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn churn_opens_one_connection_per_request() {
        let mut plan = Plan::echo(2, b"abc".to_vec(), Stop::Requests(10));
        plan.churn = true;
        let (t, connects) = run_plan(plan, echo()).await;
        assert_eq!(t.ok, 10);
        assert_eq!(connects, 10);
        assert_eq!(t.connect.len() as usize, connects);
    }

    #[tokio::test(start_paused = true)]
    async fn hold_keeps_finished_connections_open() {
        let mut plan = Plan::echo(3, b"x".to_vec(), Stop::Requests(3));
        plan.pacing = Pacing::Open { rate: 1000.0 };
        plan.hold = Duration::from_secs(5);
        let started = Instant::now();
        let (t, connects) = run_plan(plan, echo()).await;
        assert_eq!((t.ok, connects), (3, 3));
        assert!(started.elapsed() >= Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn expect_nothing_completes_requests_when_written() {
        let mut plan = Plan::echo(2, vec![7u8; 100_000], Stop::Requests(20));
        plan.expect = Expect::Nothing;
        let (t, _) = run_plan(plan, Behaviour::Silent).await;
        assert_eq!(t.ok, 20);
        assert_eq!(t.bytes_sent, 2_000_000);
        assert_eq!(t.bytes_received, 0);
        // A server that answers is wrong (the worker notices once the
        // server has had a turn to answer).
        let mut plan = Plan::echo(1, b"x".to_vec(), Stop::Requests(1000));
        plan.expect = Expect::Nothing;
        let (t, _) = run_plan(plan, echo()).await;
        assert!(t.errors.get(ErrorClass::WrongReply) >= 1, "{:?}", t.errors);
    }

    #[tokio::test(start_paused = true)]
    async fn wrong_replies_are_counted_not_fatal() {
        let plan = Plan::echo(1, b"ping".to_vec(), Stop::Requests(5));
        let (t, connects) = run_plan(plan, Behaviour::Garble).await;
        assert_eq!(t.ok, 0);
        assert_eq!(t.errors.get(ErrorClass::WrongReply), 5);
        assert_eq!(connects, 5, "framing is lost: each wrong reply reconnects");
    }

    #[tokio::test(start_paused = true)]
    async fn an_expected_text_is_checked() {
        let mut plan = Plan::echo(1, b"ping".to_vec(), Stop::Requests(3));
        plan.expect = Expect::Bytes(b"????".to_vec());
        let (t, _) = run_plan(plan, Behaviour::Garble).await;
        assert_eq!(t.ok, 3);
        assert_eq!(t.errors.total(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_server_times_out_each_request() {
        let mut plan = Plan::echo(1, b"ping".to_vec(), Stop::Requests(3));
        plan.request_timeout = Duration::from_secs(2);
        let started = Instant::now();
        let (t, _) = run_plan(plan, Behaviour::Silent).await;
        assert_eq!(t.errors.get(ErrorClass::Timeout), 3);
        assert_eq!(started.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn refused_connections_use_up_the_budget() {
        let plan = Plan::echo(2, b"ping".to_vec(), Stop::Requests(7));
        let (t, _) = run_plan(plan, Behaviour::Refuse).await;
        assert_eq!(t.errors.get(ErrorClass::Refused), 7);
        assert_eq!(t.ok, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_duration_stops_a_closed_loop_on_time() {
        let plan = Plan::echo(2, b"ping".to_vec(), Stop::Duration(Duration::from_secs(3)));
        let started = Instant::now();
        let (_, _) = run_plan(plan, Behaviour::Silent).await;
        // Requests in flight at the end are abandoned, not waited for.
        assert_eq!(started.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_latency_includes_the_queue_behind_a_stall() {
        // 100 req/s on one connection; the server stalls 300 ms once.
        let stall = Behaviour::Echo {
            stall: Duration::from_millis(300),
            after: 20,
        };
        let mut open = Plan::echo(1, b"x".to_vec(), Stop::Requests(100));
        open.pacing = Pacing::Open { rate: 100.0 };
        let (t, _) = run_plan(open, stall).await;
        let slow = t.latency.count_between(200_000_000, u64::MAX);
        // Requests due during the first 100 ms of the stall waited >= 200 ms.
        assert!(slow >= 10, "open loop: {slow} slow requests");
        assert!(t.late_sends >= 20, "{}", t.late_sends);
        // Measured from the send instead, the stall shows once: the
        // uncorrected histogram hides the queue.
        let uncorrected = t.uncorrected.as_ref().expect("open loop records both");
        assert_eq!(uncorrected.len(), t.latency.len());
        assert_eq!(uncorrected.count_between(200_000_000, u64::MAX), 1);
        // Nothing was taken out of the window yet: it holds everything.
        assert_eq!(t.window.latency, t.latency);
        assert_eq!(t.window.ok, t.ok);

        let closed = Plan::echo(1, b"x".to_vec(), Stop::Requests(100));
        let (t, _) = run_plan(closed, stall).await;
        let slow = t.latency.count_between(200_000_000, u64::MAX);
        assert_eq!(slow, 1, "closed loop sees the stall once");
        assert!(t.uncorrected.is_none(), "closed loop: one latency");
    }

    /// The precise timer on the real clock: every scheduled request goes
    /// out and is answered (how punctually is measured, not tested).
    #[tokio::test]
    async fn an_open_loop_on_the_precise_timer_sends_every_scheduled_request() {
        let mut plan = Plan::echo(2, b"x".to_vec(), Stop::Requests(30));
        plan.pacing = Pacing::Open { rate: 2000.0 };
        let (tx, _rx) = mpsc::unbounded_channel();
        let connector = Arc::new(Memory {
            behaviour: echo(),
            stalled: Arc::default(),
            accepted: tx,
        });
        let run = Run::new(plan, Instant::now(), CancellationToken::new()).precise_timer();
        let run = Arc::new(run);
        let mut tasks = tokio::task::JoinSet::new();
        for conn in 0..run.plan.connections {
            tasks.spawn(worker(run.clone(), connector.clone(), conn));
        }
        let all = async { while tasks.join_next().await.is_some() {} };
        tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("the run ends");
        let t = run.totals().clone();
        assert_eq!((t.ok, t.errors.total()), (30, 0));
        assert_eq!(t.uncorrected.map(|h| h.len()), Some(30));
    }
}
