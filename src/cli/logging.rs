//! Log output on stderr: `netcrab: message`, with the level named for
//! anything but info, and no timestamps unless `-vv` asks for detail.
//!
//! Logging never blocks serving. Every line goes into a bounded queue
//! ([`QUEUE_LINES`]) that one thread of its own writes to stderr; when
//! stderr is not being read (a stalled `| logger`, a blocking container log
//! driver) and the queue is full, new lines are dropped and counted, and
//! once lines can be queued again the count is logged first:
//! `netcrab: warning: 1234 log lines dropped (stderr was not being read)`.
//! [`flush`] waits (boundedly) until every queued line is written: `main`
//! calls it before the process ends, `wait` before `exec`, and the signal
//! handler before a second signal exits, so no line is lost while stderr is
//! healthy.
//!
//! `--log-format json` writes each event as one JSON object per line
//! through the same queue: `time` (RFC 3339, UTC, microseconds), `level`,
//! `message`, and the event's structured fields (for example the relay's
//! and serve's per-connection lines carry `peer`, `bytes_up`, `bytes_down`,
//! `duration_ms` and `outcome`). The text format prints the message only:
//! by convention a message already says what its fields hold.
//!
//! This is tracing-appender's lossy `NonBlocking` writer, written out here
//! for two reasons: its guard, when stderr is blocked at exit, prints a
//! complaint on stdout (netcrab's data stream), and dropping the guard ends
//! its thread, so nothing logged after a flush (an `exec` that fails) would
//! appear.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Lines the queue holds before new ones are dropped (a line is one event,
/// a few hundred bytes at most with `recv <data>` of one read).
pub const QUEUE_LINES: usize = 1024;

/// The longest [`flush`] waits for stderr to take the queued lines.
const FLUSH_TIMEOUT: Duration = Duration::from_millis(500);

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `netcrab: [level: ]message`
    Text,
    /// One JSON object per line: time, level, message, fields
    Json,
}

/// `-q` shows errors only; the default shows info; `-v` debug; `-vv` trace.
pub fn init(verbose: u8, quiet: bool, format: LogFormat) {
    let level = match (quiet, verbose) {
        (true, _) => Level::ERROR,
        (false, 0) => Level::INFO,
        (false, 1) => Level::DEBUG,
        (false, _) => Level::TRACE,
    };
    let queue = QUEUE.get_or_init(|| Queue::start(io::stderr(), QUEUE_LINES));
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(ToQueue(queue));
    match format {
        LogFormat::Text => builder
            .event_format(Compact {
                timestamps: verbose >= 2,
            })
            .init(),
        LogFormat::Json => builder.event_format(Json).init(),
    }
}

/// The queue to stderr, once [`init`] has run.
static QUEUE: OnceLock<Queue> = OnceLock::new();

/// Waits until every line logged so far is written to stderr (at most
/// half a second: a stderr nobody reads must not hold the exit), after
/// reporting any dropped lines.
pub fn flush() {
    if let Some(queue) = QUEUE.get() {
        queue.flush(FLUSH_TIMEOUT);
    }
}

/// What the writer thread receives.
enum Msg {
    /// One formatted log line.
    Line(Vec<u8>),
    /// Answer on the channel once everything before has been written.
    Flush(SyncSender<()>),
}

/// A bounded, lossy queue of log lines and the thread that writes them.
#[derive(Debug)]
pub struct Queue {
    tx: SyncSender<Msg>,
    /// Lines dropped because the queue was full, ever.
    dropped: AtomicU64,
    /// Of those, the ones already reported.
    reported: AtomicU64,
}

impl Queue {
    /// Starts the writer thread for `out`, with room for `lines` lines.
    fn start<W: Write + Send + 'static>(out: W, lines: usize) -> Queue {
        let (tx, rx) = mpsc::sync_channel(lines);
        let spawned = std::thread::Builder::new()
            .name("netcrab-log".to_owned())
            .spawn(move || write_lines(rx, out));
        if let Err(err) = spawned {
            // The receiver is gone with the closure: every line then goes
            // to stderr directly (see `LineWriter::write`).
            eprintln!("netcrab: warning: logging thread: {err}; logging synchronously");
        }
        Queue {
            tx,
            dropped: AtomicU64::new(0),
            reported: AtomicU64::new(0),
        }
    }

    /// Queues one line; drops and counts it when the queue is full.
    fn push(&self, line: &[u8]) {
        self.report_dropped();
        match self.tx.try_send(Msg::Line(line.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::AcqRel);
            }
            // No writer thread: write it ourselves.
            Err(TrySendError::Disconnected(_)) => {
                let _ = io::stderr().write_all(line);
            }
        }
    }

    /// Queues the count of lines dropped since the last report, if any and
    /// if there is room.
    fn report_dropped(&self) {
        let reported = self.reported.load(Ordering::Acquire);
        let dropped = self.dropped.load(Ordering::Acquire);
        // Another thread may report (or give back) between the two loads:
        // only a count above what is reported is ours to report. (A plain
        // `dropped - reported` overflowed here under load: a panic in
        // whichever task was logging.)
        if dropped <= reported {
            return;
        }
        // One thread reports; the others go on.
        if self
            .reported
            .compare_exchange(reported, dropped, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let n = dropped - reported;
        let line = format!(
            "netcrab: warning: {n} log line{} dropped (stderr was not being read)\n",
            if n == 1 { "" } else { "s" }
        );
        if self.tx.try_send(Msg::Line(line.into_bytes())).is_err() {
            // Still full: report them with the next ones.
            self.reported.fetch_sub(n, Ordering::AcqRel);
        }
    }

    /// Waits up to `timeout` until every line queued so far is written.
    fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        self.report_dropped();
        let (ack_tx, ack_rx) = mpsc::sync_channel(1);
        let mut msg = Msg::Flush(ack_tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(_) => return,
            }
        }
        let _ = ack_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// The writer thread: writes lines as they come, several at once when
/// they queue up, and answers flushes.
fn write_lines<W: Write>(rx: Receiver<Msg>, mut out: W) {
    let mut batch = Vec::with_capacity(16 * 1024);
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        let mut acks = Vec::new();
        while let Some(msg) = next.take() {
            match msg {
                Msg::Line(line) => batch.extend_from_slice(&line),
                Msg::Flush(ack) => acks.push(ack),
            }
            if batch.len() < 64 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        // A failed write (stderr closed) loses these lines and no more:
        // there is nowhere else to say so.
        let _ = out.write_all(&batch);
        let _ = out.flush();
        batch.clear();
        for ack in acks {
            let _ = ack.try_send(());
        }
    }
}

/// The subscriber's writer factory: every event gets a [`LineWriter`] into
/// the queue.
struct ToQueue(&'static Queue);

impl<'a> MakeWriter<'a> for ToQueue {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter(self.0)
    }
}

/// The writer tracing formats one event into: each `write` is one line
/// (tracing-subscriber writes a formatted event with one `write_all`).
pub struct LineWriter(&'static Queue);

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.push(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The event format: `netcrab: [level: ]message`.
struct Compact {
    timestamps: bool,
}

impl<S, N> FormatEvent<S, N> for Compact
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "netcrab: ")?;
        if self.timestamps {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            write!(writer, "{}.{:06} ", now.as_secs(), now.subsec_micros())?;
        }
        match *event.metadata().level() {
            Level::INFO => {}
            Level::WARN => write!(writer, "warning: ")?,
            Level::ERROR => write!(writer, "error: ")?,
            Level::DEBUG => write!(writer, "debug: ")?,
            Level::TRACE => write!(writer, "trace: ")?,
        }
        let mut message = MessageOnly {
            writer: writer.by_ref(),
            result: Ok(()),
        };
        event.record(&mut message);
        message.result?;
        writeln!(writer)
    }
}

/// Writes an event's message straight into the line, and nothing else
/// (no allocation: serve logs every message it receives).
struct MessageOnly<'w> {
    writer: Writer<'w>,
    result: fmt::Result,
}

impl tracing::field::Visit for MessageOnly<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.result = write!(self.writer, "{value:?}");
        }
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.result = self.writer.write_str(value);
        }
    }
}

/// The JSON event format: `{"time":...,"level":...,"message":...,...fields}`.
struct Json;

impl<S, N> FormatEvent<S, N> for Json
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        writeln!(writer, "{}", json_line(std::time::SystemTime::now(), event))
    }
}

/// One event as a JSON object, with `time` given.
fn json_line(time: std::time::SystemTime, event: &Event<'_>) -> String {
    let mut fields = Fields::default();
    event.record(&mut fields);
    let level = match *event.metadata().level() {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    };
    let message = fields.0.remove("message").unwrap_or_default();
    // time, level and message first, in that order; then the fields.
    let mut line = format!(
        "{{\"time\":\"{}\",\"level\":\"{level}\",\"message\":{message}",
        humantime::format_rfc3339_micros(time)
    );
    for (name, value) in fields.0 {
        line.push(',');
        line.push_str(&serde_json::Value::String(name).to_string());
        line.push(':');
        line.push_str(&value.to_string());
    }
    line.push('}');
    line
}

/// An event's fields as JSON values: numbers and booleans as such, the
/// rest (`%display`, `?debug`) as strings.
#[derive(Default)]
struct Fields(serde_json::Map<String, serde_json::Value>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().to_owned(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().to_owned(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Condvar, Mutex};

    /// A writer that blocks until released, like a pipe nobody reads.
    #[derive(Clone, Default)]
    struct Stalled {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Stalled {
        fn release(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.written.lock().unwrap()).into_owned()
        }
    }

    impl Write for Stalled {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut open = self.open.0.lock().unwrap();
            while !*open {
                open = self.open.1.wait(open).unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stalled_writer_drops_lines_then_says_how_many() {
        let out = Stalled::default();
        let queue = Queue::start(out.clone(), 4);
        let started = Instant::now();
        for i in 0..100 {
            queue.push(format!("line {i}\n").as_bytes());
        }
        // Never blocked: 100 lines into a queue of 4 with nothing written.
        assert!(started.elapsed() < Duration::from_secs(1));
        // Some were dropped: the writer takes a batch before it blocks, as
        // many lines as the scheduler lets it race the pushes for.
        let dropped = queue.dropped.load(Ordering::Acquire);
        assert!((1..=96).contains(&dropped), "{dropped}");
        // A flush gives up when stderr does not move.
        let started = Instant::now();
        queue.flush(Duration::from_millis(50));
        assert!(started.elapsed() < Duration::from_secs(1));

        out.release();
        queue.flush(FLUSH_TIMEOUT);
        queue.push(b"after\n");
        queue.flush(FLUSH_TIMEOUT);
        let text = out.text();
        assert!(text.starts_with("line 0\n"), "{text}");
        // Every dropped line is reported, in one warning or (when the
        // writer made room for one while lines were still being dropped)
        // several.
        let dropped = queue.dropped.load(Ordering::Acquire);
        let reported: u64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("netcrab: warning: "))
            .filter(|l| l.ends_with("dropped (stderr was not being read)"))
            .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(reported, dropped, "{text}");
        assert!(text.ends_with("after\n"), "{text}");
        assert_eq!(queue.reported.load(Ordering::Acquire), dropped);
    }

    #[test]
    fn many_threads_dropping_at_once_count_every_line_once() {
        // Lines dropped by several threads at once are reported by
        // whichever gets there: never twice, never a negative count (that
        // was an overflow panic in the logging task under load).
        let out = Stalled::default();
        let queue = std::sync::Arc::new(Queue::start(out.clone(), 4));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        queue.push(format!("{t} {i}\n").as_bytes());
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic while pushing");
        }
        out.release();
        queue.flush(FLUSH_TIMEOUT);
        queue.push(b"after\n");
        queue.flush(FLUSH_TIMEOUT);
        let text = out.text();
        let dropped = queue.dropped.load(Ordering::Acquire);
        let reported: u64 = text
            .lines()
            .filter_map(|l| l.strip_prefix("netcrab: warning: "))
            .filter_map(|l| l.split(' ').next()?.parse::<u64>().ok())
            .sum();
        assert_eq!(reported, dropped, "{text}");
        let written = text.lines().filter(|l| !l.starts_with("netcrab:")).count() as u64;
        assert_eq!(written + dropped, 8 * 20_000 + 1);
    }

    #[test]
    fn flush_writes_every_queued_line() {
        let out = Stalled::default();
        out.release();
        let queue = Queue::start(out.clone(), QUEUE_LINES);
        for i in 0..500 {
            queue.push(format!("{i}\n").as_bytes());
        }
        queue.flush(Duration::from_secs(10));
        assert_eq!(out.text().lines().count(), 500);
        assert_eq!(queue.dropped.load(Ordering::Acquire), 0);
    }
}
