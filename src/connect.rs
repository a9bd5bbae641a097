//! `netcrab connect`: open a connection (with the retry policy) and pipe it.
//!
//! With `send`, it is the seed's client: write the message, half-close, print
//! what comes back. Without, it is netcat: input to the socket and the socket
//! to output, concurrently; at input EOF it half-closes and keeps reading
//! until the peer closes. When the peer ends its sending first, the output
//! is shut down at once (on stdout: file descriptor 1 is closed for real,
//! as ncat and socat do), so `netcrab connect ... | consumer` lets the
//! consumer finish while stdin stays open; input is still sent until it
//! ends or the peer resets. Input and output are generic so tests and
//! other commands can drive it in-process.

mod udp;
#[cfg(target_os = "linux")]
mod zerocopy;

use std::io::IsTerminal;
use std::pin::Pin;
use std::sync::atomic::{AtomicU16, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::endpoint::{Endpoint, Scheme};
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::pipe::{Dir, Traffic};
use crate::retry::{RetryPolicy, retry};
use crate::settings::Setting;
use crate::transcript::Transcript;
use crate::transport::{ConnectOptions, Connector, Stream};

pub use udp::{DEFAULT_WAIT as DEFAULT_UDP_WAIT, DatagramFraming};

/// The copy buffer: large enough for bulk transfers to run at full speed.
const COPY_BUF: usize = 64 * 1024;

/// Everything `connect` needs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectConfig {
    /// Where to connect.
    pub endpoint: Endpoint,
    /// Per-attempt options (timeout, socket options).
    pub options: ConnectOptions,
    /// How to retry a failed connection attempt.
    pub retry: RetryPolicy,
    /// A message to send instead of reading input.
    pub send: Option<Vec<u8>>,
    /// Half-close the connection once everything is sent, so the peer sees
    /// EOF (on by default; some servers close when they see it).
    pub shutdown_write: bool,
    /// After sending is done, how long to wait for the peer to finish
    /// (for UDP, which has no end of stream: for replies; 1 s if `None`).
    pub wait: Option<Duration>,
    /// Give up when nothing moves in either direction for this long.
    pub idle_timeout: Option<Duration>,
    /// UDP only: how the input is cut into datagrams.
    pub datagrams: DatagramFraming,
    /// [`run_stdio`] on Linux, TCP and Unix sockets: move bytes between a
    /// pipe (or a file) on stdin/stdout and the socket with splice(2) and
    /// sendfile(2) instead of copying them through user space. Off forces
    /// the portable copy (for comparison and as an escape hatch).
    pub splice: bool,
    /// Turn every LF of the input (or of `send`) into CRLF; a CRLF stays
    /// as it is (`-C/--crlf`).
    pub crlf: bool,
    /// Both directions, or only one (`--send-only`, `--recv-only`).
    pub one_way: OneWay,
    /// Record the connection (`-o`, `-x`); the zero-copy path is then not
    /// used.
    pub transcript: Option<Transcript>,
}

/// Which directions a connection carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OneWay {
    /// Input to the connection and the connection to output.
    #[default]
    Both,
    /// Only input to the connection: the socket is never read, and the
    /// run ends when the input does (`--send-only`).
    SendOnly,
    /// Only the connection to output: the input is never read, and the
    /// connection is not half-closed (`--recv-only`).
    RecvOnly,
}

impl ConnectConfig {
    /// A configuration with defaults for `endpoint`.
    pub fn new(endpoint: Endpoint) -> ConnectConfig {
        ConnectConfig {
            endpoint,
            options: ConnectOptions::default(),
            retry: RetryPolicy::default(),
            send: None,
            shutdown_write: true,
            wait: None,
            idle_timeout: None,
            datagrams: DatagramFraming::default(),
            splice: true,
            crlf: false,
            one_way: OneWay::Both,
            transcript: None,
        }
    }
}

/// What a finished `connect` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectReport {
    /// Bytes written to the connection.
    pub sent: u64,
    /// Bytes read from the connection and written to the output.
    pub received: u64,
    /// The last byte written to the output, if any (so a terminal user can
    /// be given a final newline).
    pub last_byte: Option<u8>,
    /// The output was closed early (a broken pipe): not an error.
    pub output_closed: bool,
}

/// Connects to the configured endpoint, retrying as its policy allows.
/// Options are checked (and TLS files loaded) once, before the first
/// attempt.
pub async fn open(config: &ConnectConfig) -> Result<Stream> {
    let connector = Connector::new(&config.endpoint, &config.options)?;
    let what = format!("connect to {}", config.endpoint);
    retry(&config.retry, &what, |attempt| {
        tracing::debug!("{what} (attempt {attempt})");
        connector.connect()
    })
    .await
}

/// Zero-I/O mode (`connect -z`, as OpenBSD nc): connects with the retry
/// policy (for TLS, a verified handshake too), then closes without sending
/// or reading anything. Returns the peer's address. UDP has no connection
/// to make, so it is a usage error.
pub async fn probe(config: &ConnectConfig) -> Result<String> {
    if !config.endpoint.scheme().spec().is_byte_stream() {
        return Err(Error::usage(format!(
            "-z needs a connection, and {} has none (use tcp, tls, unix, tls+unix or quic)",
            config.endpoint
        )));
    }
    let stream = open(config).await?;
    let peer = match stream.peer_addr() {
        Ok(peer) => peer.to_string(),
        Err(_) => config.endpoint.to_string(),
    };
    drop(stream);
    Ok(peer)
}

/// Connects, then pipes `input` to the connection (or sends
/// `config.send`) and the connection to `output`, until both directions
/// are done. A UDP endpoint sends datagrams instead and waits
/// `config.wait` for replies after the last one.
pub async fn run<R, W>(config: &ConnectConfig, input: R, output: W) -> Result<ConnectReport>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if config.endpoint.scheme().is_datagram() {
        return udp::run(config, input, output).await;
    }
    let stream = open(config).await?;
    log_connected(config, &stream);
    let stream = match &config.transcript {
        Some(transcript) => {
            let peer = stream
                .peer_addr()
                .unwrap_or(crate::transport::PeerAddr::Unix {
                    name: None,
                    pid: None,
                });
            transcript.wrap(stream, &peer)
        }
        None => stream,
    };
    pipe(config, stream, input, output).await
}

/// Logs (at debug) where the connection goes: the peer's address, or
/// through a proxy, the target and the proxy the socket is connected to.
fn log_connected(config: &ConnectConfig, stream: &crate::transport::Stream) {
    let Ok(peer) = stream.peer_addr() else {
        return;
    };
    match config.options.proxy.chain.first() {
        Some(proxy) if config.endpoint.host_port().is_some() => {
            tracing::debug!(
                "connected to {} through proxy {proxy} ({peer})",
                config.endpoint
            );
        }
        _ => tracing::debug!("connected to {peer}"),
    }
}

/// [`run`] on the process's stdin and stdout. On Linux, a TCP or Unix
/// stream connection with a pipe on stdin or stdout (or a regular file on
/// stdin) moves its bytes with splice(2) or sendfile(2), never through user
/// space, unless `config.splice` is off or `config.send` is set (or the
/// bytes must be seen: `crlf`, a one-way mode, a transcript). The
/// behaviour is the same either way: half-close at stdin EOF, a closed
/// stdout is not an error, byte counts, `--wait` and the idle timeout;
/// only [`ConnectReport::last_byte`] is not known for bytes spliced into a
/// pipe (it is for a terminal user).
pub async fn run_stdio(config: &ConnectConfig) -> Result<ConnectReport> {
    #[cfg(target_os = "linux")]
    if config.splice
        && config.send.is_none()
        && !config.crlf
        && config.one_way == OneWay::Both
        && config.transcript.is_none()
        && matches!(config.endpoint.scheme(), Scheme::Tcp | Scheme::Unix)
    {
        let stream = open(config).await?;
        log_connected(config, &stream);
        return zerocopy::pipe_stdio(config, stream).await;
    }
    if !config.splice {
        tracing::debug!("connect: copy path ({})", Setting::NoSplice);
    }
    run(config, tokio::io::stdin(), Stdout::new()).await
}

/// Pipes an open `stream` to and from the process's stdin and stdout, as
/// [`run_stdio`] does after connecting (the zero-copy path included, for a
/// TCP or Unix stream unless `config.splice` is off); `config.endpoint`
/// names the peer in error messages. `serve --stdio` runs its connection
/// through this.
pub async fn pipe_stdio(config: &ConnectConfig, stream: Stream) -> Result<ConnectReport> {
    #[cfg(target_os = "linux")]
    if config.splice && config.one_way == OneWay::Both && !config.crlf {
        return zerocopy::pipe_stdio(config, stream).await;
    }
    if !config.splice {
        tracing::debug!("connect: copy path ({})", Setting::NoSplice);
    }
    pipe(config, stream, tokio::io::stdin(), Stdout::new()).await
}

/// The process's stdout as the output of a pipe: shutting it down (when
/// the peer has ended its sending) flushes it, then closes file descriptor
/// 1 for real, so that whoever reads it sees the end of the stream while
/// netcrab still sends its input.
struct Stdout {
    inner: tokio::io::Stdout,
}

impl Stdout {
    fn new() -> Stdout {
        Stdout {
            inner: tokio::io::stdout(),
        }
    }
}

impl AsyncWrite for Stdout {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
        close_stdout();
        Poll::Ready(Ok(()))
    }
}

/// Closes file descriptor 1 by putting /dev/null in its place (it stays
/// open, so nothing else can take its number and later writes go
/// nowhere). Not for a terminal: nobody waits for its end, and the user's
/// prompt is given a final newline there. Failing is only logged: the
/// transfer itself is fine.
fn close_stdout() {
    if std::io::stdout().is_terminal() {
        return;
    }
    let null = match std::fs::OpenOptions::new().write(true).open("/dev/null") {
        Ok(null) => null,
        Err(e) => {
            tracing::debug!("close stdout: open /dev/null: {e}");
            return;
        }
    };
    use std::os::fd::AsRawFd;
    // SAFETY: dup2 on two descriptors we know to be open (the /dev/null
    // file just opened, and stdout, which Rust and tokio reach only by its
    // number, never as an owned descriptor); it touches no memory.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) };
    if rc < 0 {
        tracing::debug!("close stdout: {}", std::io::Error::last_os_error());
    } else {
        tracing::debug!("the peer finished sending; stdout closed");
    }
}

/// The last byte received, shared by the pipe's futures (`Sync`:
/// `serve --stdio` runs them in a spawned task): 0 until a byte comes,
/// then `0x100 | byte`.
struct LastByte(AtomicU16);

impl LastByte {
    fn new() -> LastByte {
        LastByte(AtomicU16::new(0))
    }

    fn set(&self, byte: u8) {
        self.0.store(0x100 | u16::from(byte), Ordering::Relaxed);
    }

    fn get(&self) -> Option<u8> {
        match self.0.load(Ordering::Relaxed) {
            0 => None,
            v => Some(v as u8),
        }
    }
}

/// Which side of a copy failed.
enum CopyError {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// Copies until EOF, flushing after every write, counting the bytes as
/// `dir` in `traffic` (sent: [`Dir::Up`], received: [`Dir::Down`]) and,
/// when asked, keeping the last one.
async fn copy<R, W>(
    reader: &mut R,
    writer: &mut W,
    traffic: &Traffic,
    dir: Dir,
    last_byte: Option<&LastByte>,
) -> std::result::Result<(), CopyError>
where
    R: AsyncRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = vec![0u8; COPY_BUF];
    loop {
        let n = reader.read(&mut buf).await.map_err(CopyError::Read)?;
        if n == 0 {
            writer.flush().await.map_err(CopyError::Write)?;
            return Ok(());
        }
        traffic.touch();
        writer
            .write_all(&buf[..n])
            .await
            .map_err(CopyError::Write)?;
        // Flush every chunk: stdout is line-buffered and TLS holds written
        // data until flushed, and the next read may wait indefinitely.
        writer.flush().await.map_err(CopyError::Write)?;
        traffic.add(dir, n);
        if let Some(last_byte) = last_byte {
            last_byte.set(buf[n - 1]);
        }
    }
}

/// Pipes an open connection (see [`run`]).
pub async fn pipe<R, W>(
    config: &ConnectConfig,
    stream: Stream,
    input: R,
    mut output: W,
) -> Result<ConnectReport>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (mut sock_rd, mut sock_wr) = tokio::io::split(stream);
    let mut input = CrlfReader::new(input, config.crlf);
    let traffic = Traffic::new();
    let last_byte = LastByte::new();
    let up = async {
        if config.one_way == OneWay::RecvOnly {
            tracing::debug!("{}: not reading input", Setting::RecvOnly);
            return Ok(());
        }
        let copied = match &config.send {
            Some(msg) => {
                let msg = if config.crlf {
                    let mut out = Vec::with_capacity(msg.len() + msg.len() / 8);
                    Crlf::default().convert(msg, &mut out);
                    std::borrow::Cow::Owned(out)
                } else {
                    std::borrow::Cow::Borrowed(msg.as_slice())
                };
                send_message(&msg, &mut sock_wr, &traffic)
                    .await
                    .map_err(|e| Error::io(format!("send to {}", config.endpoint), e))?;
                Ok(())
            }
            None => copy(&mut input, &mut sock_wr, &traffic, Dir::Up, None).await,
        };
        finish_upload(config, copied, &mut sock_wr, &traffic).await
    };
    let down = async {
        if config.one_way == OneWay::SendOnly {
            tracing::debug!("{}: not reading the connection", Setting::SendOnly);
            return Ok(false);
        }
        let mut copied = copy(
            &mut sock_rd,
            &mut output,
            &traffic,
            Dir::Down,
            Some(&last_byte),
        )
        .await;
        if copied.is_ok() {
            copied = end_output(&mut output).await;
        }
        download_result(config, copied)
    };
    let output_closed = shuttle(config, up, down, &traffic).await?;
    finish(&mut output, output_closed, &traffic, &last_byte).await
}

/// The peer has ended its sending: shuts the output down, so that its
/// reader sees the end too while input may still be sent.
async fn end_output<W>(output: &mut W) -> std::result::Result<(), CopyError>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    output.shutdown().await.map_err(CopyError::Write)
}

/// Ends a pipe: unless the output was closed, flushes what the download
/// wrote (`--wait` may have cut it short); then reports the counts.
async fn finish<W: AsyncWrite + Unpin>(
    output: &mut W,
    output_closed: bool,
    traffic: &Traffic,
    last_byte: &LastByte,
) -> Result<ConnectReport> {
    if !output_closed {
        output
            .flush()
            .await
            .map_err(|e| Error::io("write output", e))?;
    }
    Ok(ConnectReport {
        sent: traffic.up(),
        received: traffic.down(),
        last_byte: last_byte.get(),
        output_closed,
    })
}

/// Writes `--send`'s message.
async fn send_message<W>(msg: &[u8], sock: &mut W, traffic: &Traffic) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    sock.write_all(msg).await?;
    sock.flush().await?;
    traffic.add(Dir::Up, msg.len());
    Ok(())
}

/// Ends the sending direction: maps how sending went to an error, or
/// half-closes the connection (unless `--no-shutdown`).
async fn finish_upload<W>(
    config: &ConnectConfig,
    copied: std::result::Result<(), CopyError>,
    sock: &mut W,
    traffic: &Traffic,
) -> Result<()>
where
    W: AsyncWrite + Unpin + ?Sized,
{
    let target = &config.endpoint;
    match copied {
        Ok(()) => {}
        Err(CopyError::Read(e)) => return Err(Error::io("read input", e)),
        Err(CopyError::Write(e)) => {
            // A layer's own classified error (a websocket's, say) keeps its
            // words; a plain I/O error says what was cut short.
            if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
                return Err(Error::io(format!("send to {target}"), e));
            }
            let kind = ErrorKind::of_io(&e);
            return Err(Error::io(format!("send to {target}"), e)
                .with_detail(format!("{kind} before all input was sent")));
        }
    }
    if config.shutdown_write {
        sock.shutdown()
            .await
            .map_err(|e| Error::io(format!("shut down sending to {target}"), e))?;
    }
    tracing::debug!("sent {} bytes; done sending", traffic.up());
    Ok(())
}

/// Maps how the receiving direction ended: `Ok(true)` when the output was
/// closed early (a broken pipe, not an error).
fn download_result(
    config: &ConnectConfig,
    copied: std::result::Result<(), CopyError>,
) -> Result<bool> {
    match copied {
        Ok(()) => Ok(false),
        Err(CopyError::Read(e)) => Err(Error::io(format!("receive from {}", config.endpoint), e)),
        Err(CopyError::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(CopyError::Write(e)) => Err(Error::io("write output", e)),
    }
}

/// Runs both directions until both are done, the output closes, `--wait`
/// elapses after sending, or the idle timeout fires. Returns whether the
/// output was closed early.
async fn shuttle<U, D>(config: &ConnectConfig, up: U, down: D, traffic: &Traffic) -> Result<bool>
where
    U: std::future::Future<Output = Result<()>>,
    D: std::future::Future<Output = Result<bool>>,
{
    let target = &config.endpoint;
    tokio::pin!(up, down);

    let far = Duration::from_secs(86400 * 365);
    let idle = config.idle_timeout.unwrap_or(far);
    let idle_timer = tokio::time::sleep(idle);
    let wait_timer = tokio::time::sleep(far);
    tokio::pin!(idle_timer, wait_timer);
    let (mut up_done, mut down_done, mut waiting) = (false, false, false);

    while !(up_done && down_done) {
        tokio::select! {
            result = &mut up, if !up_done => {
                result?;
                up_done = true;
                if let Some(wait) = config.wait {
                    waiting = true;
                    wait_timer.as_mut().reset(crate::deadline::from_now(wait));
                }
            }
            result = &mut down, if !down_done => {
                if result? {
                    return Ok(true);
                }
                down_done = true;
            }
            _ = &mut wait_timer, if waiting => {
                tracing::debug!("{} elapsed; closing", Setting::Wait);
                break;
            }
            _ = &mut idle_timer, if config.idle_timeout.is_some() => {
                let deadline = crate::deadline::after(traffic.last_activity(), idle);
                if Instant::now() >= deadline {
                    return Err(Error::new(ErrorKind::Timeout, format!("connection to {target}"))
                        .with_detail(format!("idle for {}", fmt_duration(idle))));
                }
                idle_timer.as_mut().reset(deadline);
            }
        }
    }
    Ok(false)
}

/// LF to CRLF conversion across chunks: a lone LF becomes CRLF, and a CRLF
/// is left alone (also when the CR ended the previous chunk), as ncat's
/// `-C` does.
#[derive(Debug, Default, Clone, Copy)]
pub struct Crlf {
    prev_cr: bool,
}

impl Crlf {
    /// Appends `input`, converted, to `out`.
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if b == b'\n' && !self.prev_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.prev_cr = b == b'\r';
        }
    }
}

/// The input of a pipe, with `-C`'s conversion when it is on (otherwise
/// the reads pass straight through).
struct CrlfReader<R> {
    inner: R,
    crlf: Option<Crlf>,
    /// Converted bytes not yet handed out: `pending[pos..]`.
    pending: Vec<u8>,
    pos: usize,
}

impl<R> CrlfReader<R> {
    fn new(inner: R, on: bool) -> CrlfReader<R> {
        CrlfReader {
            inner,
            crlf: on.then(Crlf::default),
            pending: Vec::new(),
            pos: 0,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for CrlfReader<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let Some(crlf) = this.crlf.as_mut() else {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        };
        if this.pos == this.pending.len() {
            let mut raw = vec![0u8; buf.remaining().clamp(1, COPY_BUF)];
            let mut raw_buf = tokio::io::ReadBuf::new(&mut raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut raw_buf))?;
            this.pending.clear();
            this.pos = 0;
            crlf.convert(raw_buf.filled(), &mut this.pending);
        }
        let n = (this.pending.len() - this.pos).min(buf.remaining());
        buf.put_slice(&this.pending[this.pos..this.pos + n]);
        this.pos += n;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_converts_lone_lfs_across_chunks() {
        let mut c = Crlf::default();
        let mut out = Vec::new();
        c.convert(b"a\nb\r\nc\r", &mut out);
        c.convert(b"\nd\n\n", &mut out);
        assert_eq!(out, b"a\r\nb\r\nc\r\nd\r\n\r\n");
    }

    #[tokio::test]
    async fn the_crlf_reader_hands_out_everything_in_small_reads() {
        let input: &[u8] = b"one\ntwo\nthree";
        let mut reader = CrlfReader::new(input, true);
        let mut out = Vec::new();
        let mut small = [0u8; 3];
        loop {
            let n = reader.read(&mut small).await.expect("read");
            if n == 0 {
                break;
            }
            out.extend_from_slice(&small[..n]);
        }
        assert_eq!(out, b"one\r\ntwo\r\nthree");
    }
}
