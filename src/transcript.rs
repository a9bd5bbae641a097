//! Transcripts of connections (`-o/--output FILE`, `-x/--hex-dump FILE`):
//! every byte each way, as it was read from or written to the peer.
//!
//! A [`Transcript`] is one per run. Each connection to record is wrapped in
//! a [`Recorder`] ([`Transcript::wrap`]), a stream that copies what passes
//! through it into a queue; a writer thread takes chunks off the queue and
//! writes the files. The data path never waits for the disk: recording a
//! chunk is a copy and a channel send. The queue is bounded in bytes
//! ([`DEFAULT_QUEUE_LIMIT`], each chunk counted with its bookkeeping): when the writer falls that far behind, new
//! chunks are dropped and counted, and [`Transcript::finish`] reports what
//! was lost, so the run can warn about it (the offsets in the hex dump then
//! show the gap).
//!
//! Wrapping makes the connection a [`Stream::Boxed`], so the zero-copy
//! paths (splice(2) in `relay` and `connect`) are not used for it: the
//! bytes have to pass through user space to be recorded, as with ncat.
//!
//! The formats, where `<` is what netcrab read from the peer and `>` what
//! it wrote to the peer:
//!
//! - `-o`, one connection (`connect`): the bytes of both directions in the
//!   order they passed, nothing else (as ncat's `-o`).
//! - `-o`, servers (`serve`, `relay`): each chunk is preceded by a line
//!   `[conn ID < LEN]` or `[conn ID > LEN]` and followed by nothing, so a
//!   reader can take exactly LEN bytes after the line.
//! - `-x`: for each chunk a line `< received LEN bytes` or `> sent LEN
//!   bytes` (servers: `< conn ID received ...`), then the chunk as
//!   `hexdump -C` prints it, offsets counting from the connection's first
//!   byte in that direction. Servers also write `# conn ID from PEER` when a
//!   connection opens.
//!
//! Connection ids count from 1 in the order connections are wrapped (the
//! accept order, for servers).

use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{Error, Result};
use crate::settings::Setting;
use crate::transport::{AsyncStream, PeerAddr, SocketOptions, Stream};

/// The most bytes waiting for the writer thread at once (16 MiB); past it,
/// chunks are dropped and counted.
pub const DEFAULT_QUEUE_LIMIT: usize = 16 * 1024 * 1024;

/// What a queued chunk costs beyond its bytes (the record and its
/// allocation), counted against the queue's limit so that a flood of tiny
/// chunks is bounded too.
const CHUNK_OVERHEAD: usize = 64;

/// A direction of traffic, seen from netcrab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Read from the peer (`<`).
    Received,
    /// Written to the peer (`>`).
    Sent,
}

impl Direction {
    fn arrow(self) -> char {
        match self {
            Direction::Received => '<',
            Direction::Sent => '>',
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Direction::Received => "received",
            Direction::Sent => "sent",
        }
    }
}

/// What goes through the queue.
enum Record {
    Open {
        conn: u64,
        peer: String,
    },
    Data {
        conn: u64,
        dir: Direction,
        offset: u64,
        data: Vec<u8>,
    },
    /// The run is over: the writer stops here, even if some recorder is
    /// still alive.
    End,
}

/// Which files a transcript writes, and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TranscriptOptions {
    /// `-o FILE`: the raw bytes.
    pub output: Option<PathBuf>,
    /// `-x FILE`: the hex dump.
    pub hex_dump: Option<PathBuf>,
    /// A server run (several connections): chunks carry connection ids.
    pub server: bool,
}

impl TranscriptOptions {
    /// Whether a transcript is asked for at all.
    pub fn is_wanted(&self) -> bool {
        self.output.is_some() || self.hex_dump.is_some()
    }
}

/// What a transcript lost, reported by [`Transcript::finish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscriptReport {
    /// Chunks dropped because the queue was full.
    pub dropped_chunks: u64,
    /// Bytes in those chunks.
    pub dropped_bytes: u64,
    /// Writing the files failed (the failure was logged).
    pub write_failed: bool,
}

struct Shared {
    tx: Mutex<Option<Sender<Record>>>,
    /// Bytes in the queue; the writer thread subtracts what it wrote.
    queued: Arc<AtomicUsize>,
    limit: usize,
    next_conn: AtomicU64,
    dropped_chunks: AtomicU64,
    dropped_bytes: AtomicU64,
    server: bool,
    writer: Mutex<Option<JoinHandle<bool>>>,
}

/// A run's transcript: files opened at start, a writer thread, and the
/// queue to it. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Transcript {
    shared: Arc<Shared>,
}

impl fmt::Debug for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transcript")
            .field("server", &self.shared.server)
            .field("limit", &self.shared.limit)
            .finish_non_exhaustive()
    }
}

fn create(flag: Setting, path: &Path) -> Result<BufWriter<File>> {
    File::create(path)
        .map(|f| BufWriter::with_capacity(64 * 1024, f))
        .map_err(|e| Error::io(format!("create {flag} file {}", path.display()), e))
}

impl Transcript {
    /// Opens (creates or truncates) the files and starts the writer thread.
    pub fn start(opts: &TranscriptOptions) -> Result<Transcript> {
        Transcript::with_limit(opts, DEFAULT_QUEUE_LIMIT)
    }

    /// [`start`](Transcript::start) with a queue of at most `limit` bytes.
    pub fn with_limit(opts: &TranscriptOptions, limit: usize) -> Result<Transcript> {
        let raw = opts
            .output
            .as_deref()
            .map(|p| create(Setting::Output, p))
            .transpose()?;
        let hex = opts
            .hex_dump
            .as_deref()
            .map(|p| create(Setting::HexDump, p))
            .transpose()?;
        let (tx, rx) = channel();
        let server = opts.server;
        let queued = Arc::new(AtomicUsize::new(0));
        let writer_queued = queued.clone();
        let writer = std::thread::Builder::new()
            .name("transcript".into())
            .spawn(move || write_loop(rx, Writer::new(raw, hex, server, writer_queued)))
            .map_err(|e| Error::io("start the transcript writer", e))?;
        Ok(Transcript {
            shared: Arc::new(Shared {
                tx: Mutex::new(Some(tx)),
                queued,
                limit,
                next_conn: AtomicU64::new(1),
                dropped_chunks: AtomicU64::new(0),
                dropped_bytes: AtomicU64::new(0),
                server,
                writer: Mutex::new(Some(writer)),
            }),
        })
    }

    /// Queues a record as it is, for tests.
    #[cfg(test)]
    fn send(&self, record: Record) {
        if let Ok(tx) = self.shared.tx.lock()
            && let Some(tx) = tx.as_ref()
        {
            let _ = tx.send(record);
        }
    }

    /// A sender of the queue, for one recorder (`None` once finished).
    fn sender(&self) -> Option<Sender<Record>> {
        self.shared.tx.lock().ok().and_then(|tx| tx.clone())
    }

    /// Wraps `stream`, from or to `peer`, so everything it reads and
    /// writes is recorded under a new connection id. (After
    /// [`finish`](Transcript::finish), the stream is returned as it is.)
    pub fn wrap(&self, stream: Stream, peer: &PeerAddr) -> Stream {
        let Some(tx) = self.sender() else {
            return stream;
        };
        let conn = self.shared.next_conn.fetch_add(1, Ordering::Relaxed);
        let _ = tx.send(Record::Open {
            conn,
            peer: peer.to_string(),
        });
        Stream::Boxed(Box::new(Recorder {
            inner: stream,
            shared: self.shared.clone(),
            tx,
            conn,
            received: 0,
            sent: 0,
        }))
    }

    /// Queues a chunk (see [`record`]), for tests.
    #[cfg(test)]
    fn record(&self, conn: u64, dir: Direction, offset: u64, data: &[u8]) {
        if let Some(tx) = self.sender() {
            record(&self.shared, &tx, conn, dir, offset, data);
        }
    }

    /// Writes out everything queued, closes the files and reports what was
    /// lost. Chunks recorded after this are dropped. Blocks until the
    /// writer thread is done.
    pub fn finish(&self) -> TranscriptReport {
        if let Ok(mut tx) = self.shared.tx.lock()
            && let Some(tx) = tx.take()
        {
            let _ = tx.send(Record::End);
        }
        let handle = self.shared.writer.lock().ok().and_then(|mut w| w.take());
        let write_failed = match handle {
            Some(handle) => handle.join().unwrap_or(true),
            None => false,
        };
        TranscriptReport {
            dropped_chunks: self.shared.dropped_chunks.load(Ordering::Relaxed),
            dropped_bytes: self.shared.dropped_bytes.load(Ordering::Relaxed),
            write_failed,
        }
    }

    /// [`finish`](Transcript::finish), then a warning on the log when
    /// chunks were dropped.
    pub fn finish_and_warn(&self) -> TranscriptReport {
        let report = self.finish();
        if report.dropped_chunks > 0 {
            tracing::warn!(
                "transcript incomplete: dropped {} bytes in {} chunks (the file writer fell more than {} KiB behind the traffic)",
                report.dropped_bytes,
                report.dropped_chunks,
                self.shared.limit / 1024
            );
        }
        report
    }
}

/// Queues a chunk for the writer, unless the queue is full: then the chunk
/// is dropped and counted. Never waits: atomics and a channel send (the
/// channel itself is unbounded; the byte count bounds it).
fn record(
    shared: &Shared,
    tx: &Sender<Record>,
    conn: u64,
    dir: Direction,
    offset: u64,
    data: &[u8],
) {
    if data.is_empty() {
        return;
    }
    let cost = data.len() + CHUNK_OVERHEAD;
    let before = shared.queued.fetch_add(cost, Ordering::Relaxed);
    if before.saturating_add(cost) > shared.limit {
        shared.queued.fetch_sub(cost, Ordering::Relaxed);
        shared.dropped_chunks.fetch_add(1, Ordering::Relaxed);
        shared
            .dropped_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        return;
    }
    let record = Record::Data {
        conn,
        dir,
        offset,
        data: data.to_vec(),
    };
    // The writer subtracts the cost when it has written the chunk; if
    // it is gone, nobody will.
    if tx.send(record).is_err() {
        shared.queued.fetch_sub(cost, Ordering::Relaxed);
    }
}

/// The writer thread: takes records off the queue until every sender is
/// gone, flushing whenever the queue runs dry. Returns whether a write
/// failed.
fn write_loop(rx: Receiver<Record>, mut writer: Writer) -> bool {
    let mut pending = false;
    loop {
        let record = match rx.try_recv() {
            Ok(Record::End) => break,
            Ok(record) => record,
            Err(std::sync::mpsc::TryRecvError::Empty) => {
                if pending {
                    writer.flush();
                }
                match rx.recv() {
                    Ok(Record::End) | Err(_) => break,
                    Ok(record) => record,
                }
            }
            Err(std::sync::mpsc::TryRecvError::Disconnected) => break,
        };
        writer.write(&record);
        pending = true;
    }
    writer.flush();
    writer.failed
}

/// The files and the per-connection state the formats need.
struct Writer {
    raw: Option<BufWriter<File>>,
    hex: Option<BufWriter<File>>,
    server: bool,
    failed: bool,
    text: String,
    /// The queue's byte count, lowered by what is written.
    queued: Arc<AtomicUsize>,
}

impl Writer {
    fn new(
        raw: Option<BufWriter<File>>,
        hex: Option<BufWriter<File>>,
        server: bool,
        queued: Arc<AtomicUsize>,
    ) -> Writer {
        Writer {
            raw,
            hex,
            server,
            failed: false,
            text: String::new(),
            queued,
        }
    }

    fn io(&mut self, result: io::Result<()>) {
        if let Err(e) = result
            && !self.failed
        {
            self.failed = true;
            tracing::warn!("transcript: write failed: {e}; the rest is not recorded");
        }
    }

    fn write(&mut self, record: &Record) {
        if let Record::Data { data, .. } = record {
            self.queued
                .fetch_sub(data.len() + CHUNK_OVERHEAD, Ordering::Relaxed);
        }
        if self.failed {
            return;
        }
        match record {
            Record::End => {}
            Record::Open { conn, peer } => {
                if self.server
                    && let Some(hex) = self.hex.as_mut()
                {
                    let r = writeln!(hex, "# conn {conn} from {peer}");
                    self.io(r);
                }
            }
            Record::Data {
                conn,
                dir,
                offset,
                data,
            } => {
                if let Some(raw) = self.raw.as_mut() {
                    let r = if self.server {
                        writeln!(raw, "[conn {conn} {} {}]", dir.arrow(), data.len())
                            .and_then(|()| raw.write_all(data))
                    } else {
                        raw.write_all(data)
                    };
                    self.io(r);
                }
                if self.hex.is_some() {
                    self.text.clear();
                    let id = if self.server {
                        format!("conn {conn} ")
                    } else {
                        String::new()
                    };
                    let _ = writeln!(
                        self.text,
                        "{} {id}{} {} bytes",
                        dir.arrow(),
                        dir.verb(),
                        data.len()
                    );
                    hexdump(&mut self.text, *offset, data);
                    let r = match self.hex.as_mut() {
                        Some(hex) => hex.write_all(self.text.as_bytes()),
                        None => Ok(()),
                    };
                    self.io(r);
                }
            }
        }
    }

    fn flush(&mut self) {
        let mut result = Ok(());
        for file in [self.raw.as_mut(), self.hex.as_mut()].into_iter().flatten() {
            if let Err(e) = file.flush() {
                result = Err(e);
            }
        }
        self.io(result);
    }
}

/// Appends `data` as `hexdump -C` prints it, the first byte at `offset`:
/// lines of 16 bytes with an 8-digit hex offset, two groups of eight hex
/// bytes, and the printable ASCII between bars (others as `.`). Lines
/// start at `offset` (so they are aligned to the chunk, not to 16).
pub fn hexdump(out: &mut String, offset: u64, data: &[u8]) {
    for (i, line) in data.chunks(16).enumerate() {
        let _ = write!(out, "{:08x} ", offset + (i as u64) * 16);
        for j in 0..16 {
            if j == 8 {
                out.push(' ');
            }
            match line.get(j) {
                Some(b) => {
                    let _ = write!(out, " {b:02x}");
                }
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        for &b in line {
            out.push(if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
        out.push_str("|\n");
    }
}

/// A stream that records what it reads and writes (see the module's
/// documentation); everything else is the wrapped stream's.
pub struct Recorder {
    inner: Stream,
    shared: Arc<Shared>,
    tx: Sender<Record>,
    conn: u64,
    received: u64,
    sent: u64,
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("conn", &self.conn)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Recorder {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = poll {
            let new = &buf.filled()[before..];
            if !new.is_empty() {
                record(
                    &this.shared,
                    &this.tx,
                    this.conn,
                    Direction::Received,
                    this.received,
                    new,
                );
                this.received += new.len() as u64;
            }
        }
        poll
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = poll
            && n > 0
        {
            let written = &buf[..n.min(buf.len())];
            record(
                &this.shared,
                &this.tx,
                this.conn,
                Direction::Sent,
                this.sent,
                written,
            );
            this.sent += written.len() as u64;
        }
        poll
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl AsyncStream for Recorder {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncStream::poll_read_ready(&self.inner, cx)
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        self.inner.peer_addr()
    }

    fn local_addr(&self) -> io::Result<PeerAddr> {
        self.inner.local_addr()
    }

    fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        self.inner.set_options(opts)
    }

    fn alpn_protocol(&self) -> Option<&[u8]> {
        self.inner.alpn_protocol()
    }

    fn tcp_socket(&self) -> Option<&tokio::net::TcpStream> {
        self.inner.tcp_socket()
    }

    fn peer_certificate(&self) -> Option<&[u8]> {
        self.inner.peer_certificate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hexdump_matches_hexdump_c() {
        // `printf 'hello, world\n\x00\x01\xffABCDEFGHIJKLMNOP' | hexdump -C`
        let mut out = String::new();
        hexdump(&mut out, 0, b"hello, world\n\x00\x01\xffABCDEFGHIJKLMNOP");
        assert_eq!(
            out,
            "00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a 00 01 ff  |hello, world....|\n\
             00000010  41 42 43 44 45 46 47 48  49 4a 4b 4c 4d 4e 4f 50  |ABCDEFGHIJKLMNOP|\n"
        );
        let mut out = String::new();
        hexdump(&mut out, 0x1234, b"abc");
        assert_eq!(
            out,
            "00001234  61 62 63                                          |abc|\n"
        );
        let mut out = String::new();
        hexdump(&mut out, 0, b"0123456789");
        assert_eq!(
            out,
            "00000000  30 31 32 33 34 35 36 37  38 39                    |0123456789|\n"
        );
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("netcrab-transcript-{}-{name}", std::process::id()))
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let path = temp("drops.raw");
        let opts = TranscriptOptions {
            output: Some(path.clone()),
            hex_dump: None,
            server: false,
        };
        let t = Transcript::with_limit(&opts, 10 + 2 * CHUNK_OVERHEAD).expect("start");
        // Fill the queue but for 2 bytes and a chunk (the writer takes
        // nothing off this count, since it never got these).
        t.shared
            .queued
            .fetch_add(8 + CHUNK_OVERHEAD, Ordering::Relaxed);
        t.record(1, Direction::Sent, 0, b"abc");
        t.record(1, Direction::Sent, 3, b"de");
        let report = t.finish();
        assert_eq!(report.dropped_chunks, 1);
        assert_eq!(report.dropped_bytes, 3);
        assert_eq!(std::fs::read(&path).expect("read"), b"de");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn server_formats_carry_connection_ids() {
        let raw = temp("server.raw");
        let hex = temp("server.hex");
        let opts = TranscriptOptions {
            output: Some(raw.clone()),
            hex_dump: Some(hex.clone()),
            server: true,
        };
        let t = Transcript::start(&opts).expect("start");
        t.send(Record::Open {
            conn: 1,
            peer: "127.0.0.1:5".into(),
        });
        t.record(1, Direction::Received, 0, b"hi\n");
        t.record(1, Direction::Sent, 0, b"ok");
        t.finish();
        assert_eq!(
            std::fs::read_to_string(&raw).expect("raw"),
            "[conn 1 < 3]\nhi\n[conn 1 > 2]\nok"
        );
        assert_eq!(
            std::fs::read_to_string(&hex).expect("hex"),
            "# conn 1 from 127.0.0.1:5\n\
             < conn 1 received 3 bytes\n\
             00000000  68 69 0a                                          |hi.|\n\
             > conn 1 sent 2 bytes\n\
             00000000  6f 6b                                             |ok|\n"
        );
        let _ = std::fs::remove_file(&raw);
        let _ = std::fs::remove_file(&hex);
    }
}
