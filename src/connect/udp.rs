//! `netcrab connect udp://...` (and `unixgram://...`): datagrams out,
//! replies printed.
//!
//! A connected UDP socket (or Unix datagram socket, bound to a private
//! socket file of its own so that replies can reach it, removed at the
//! end): `--send` is one datagram; otherwise each input
//! line (newline included) or, with `--raw`, each read of the input is one.
//! Replies are written to the output as they arrive. On Linux the lines
//! a read brings go out many per sendmmsg(2), and the replies queued
//! when the client wakes come in one recvmmsg(2) and go to the output in
//! one write. UDP has no end of
//! stream, so after the last send the client waits `--wait` (1 s by
//! default) for replies and then exits. An ICMP port-unreachable, which the
//! kernel reports on a connected socket as "connection refused", ends it
//! with that error.

use std::cell::Cell;
use std::io::IoSlice;
use std::ops::Range;
use std::time::Duration;

use super::{ConnectConfig, ConnectReport};
use crate::endpoint::{Addr, Scheme};
use crate::error::{Error, ErrorKind, Result};
use crate::retry::retry;
use crate::settings::Setting;
use crate::transport::datagram::{BATCH, DatagramBatch, DatagramSocket, connect_unixgram};
use crate::transport::udp::{MAX_DATAGRAM, connect_udp};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

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
        // What is queued is received in one call and printed in one write.
        let mut batch = DatagramBatch::default();
        loop {
            socket.recv_batch(&mut batch).await.map_err(|e| {
                let err = Error::io(format!("receive from {target}"), e);
                if err.kind() == ErrorKind::Refused {
                    err.with_detail(
                        "connection refused (icmp port unreachable: nothing listens there)",
                    )
                } else {
                    err
                }
            })?;
            let replies = batch.joined();
            let written = async {
                output.write_all(replies).await?;
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
            received.set(received.get() + replies.len() as u64);
            if let Some(&last) = replies.last() {
                last_byte.set(Some(last));
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

/// Sends `--send`, or the input: line by line, many lines per system call
/// (see [`send_lines`]), or with `--raw` one datagram per read.
async fn send_all<R>(
    config: &ConnectConfig,
    socket: &DatagramSocket,
    mut input: R,
    sent: &Cell<u64>,
) -> Result<()>
where
    R: AsyncRead + Unpin,
{
    if let Some(msg) = &config.send {
        send_one(config, socket, msg).await?;
        sent.set(sent.get() + msg.len() as u64);
        return Ok(());
    }
    if config.datagrams == DatagramFraming::Lines {
        return send_lines(config, socket, input, sent).await;
    }
    let mut datagram = vec![0u8; MAX_DATAGRAM];
    loop {
        let n = input
            .read(&mut datagram)
            .await
            .map_err(|e| Error::io("read input", e))?;
        if n == 0 {
            return Ok(());
        }
        send_one(config, socket, &datagram[..n]).await?;
        sent.set(sent.get() + n as u64);
    }
}

/// The input buffer of [`send_lines`]: room for several reads, and always
/// for a longest line and the byte past it that tells it is too long.
const INPUT_BUF: usize = 4 * 65_536;
/// The least room a read of the input is given: less, and the unfinished
/// line is first moved to the front of the buffer.
const READ_ROOM: usize = 65_536;

/// Sends the input a line per datagram: every complete line a read brings
/// is cut from the input buffer (no copy) and up to [`BATCH`] of them go in
/// one sendmmsg(2). A line is sent as soon as its read returns, as one
/// datagram per line always was; the lines before an over-long one go
/// before its error.
async fn send_lines<R>(
    config: &ConnectConfig,
    socket: &DatagramSocket,
    mut input: R,
    sent: &Cell<u64>,
) -> Result<()>
where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; INPUT_BUF];
    let (mut start, mut end) = (0, 0);
    let mut eof = false;
    let mut lines = Vec::with_capacity(BATCH);
    // A UDP socket's pending ICMP error can be taken, unreported, by a
    // datagram in the middle of a sendmmsg(2) (see Progress).
    let mut mode = SendMode {
        one_at_a_time: false,
        lossy: matches!(socket, DatagramSocket::Udp(_)),
    };
    loop {
        lines.clear();
        let (used, too_long) = cut_lines(&buf[start..end], eof, BATCH, &mut lines);
        if !lines.is_empty() {
            send_datagrams(config, socket, &buf[start..end], &lines, &mut mode, sent).await?;
        }
        start += used;
        if too_long {
            return Err(too_long_error(config));
        }
        if lines.len() == BATCH {
            continue;
        }
        if eof {
            return Ok(());
        }
        if start == end {
            (start, end) = (0, 0);
        } else if INPUT_BUF - end < READ_ROOM {
            buf.copy_within(start..end, 0);
            (start, end) = (0, end - start);
        }
        let n = input
            .read(&mut buf[end..])
            .await
            .map_err(|e| Error::io("read input", e))?;
        if n == 0 {
            eof = true;
        }
        end += n;
    }
}

/// Cuts up to `max` lines (newline included) from the front of `data`
/// into `lines`, and at the end of the input (`eof`) an unfinished last
/// line too. Returns how many bytes they take, and whether the line after
/// them is longer than a datagram holds ([`MAX_DATAGRAM`]): it is known as
/// soon as that many bytes and one more are in, newline or not.
fn cut_lines(data: &[u8], eof: bool, max: usize, lines: &mut Vec<Range<usize>>) -> (usize, bool) {
    let mut pos = 0;
    while lines.len() < max {
        let rest = &data[pos..];
        let scan = &rest[..rest.len().min(MAX_DATAGRAM + 1)];
        match scan.iter().position(|&b| b == b'\n') {
            Some(i) if i < MAX_DATAGRAM => {
                lines.push(pos..pos + i + 1);
                pos += i + 1;
            }
            Some(_) => return (pos, true),
            None if rest.len() > MAX_DATAGRAM => return (pos, true),
            None => {
                if eof && !rest.is_empty() {
                    lines.push(pos..data.len());
                    pos = data.len();
                }
                break;
            }
        }
    }
    (pos, false)
}

/// How the datagrams of a socket are sent, from batch to batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SendMode {
    /// One datagram per call from now on, as before batching.
    one_at_a_time: bool,
    /// Whether an error the socket holds can be lost in a batch (UDP).
    lossy: bool,
}

/// Which datagrams of a batch are still to go, and how the next call
/// sends them.
///
/// A sendmmsg(2) that sends some datagrams and then meets an error returns
/// the count and drops the error. That error is either a full send buffer
/// or one the socket held (on UDP, an ICMP port-unreachable: sending one
/// datagram at a time, the next send would have reported it). So after a
/// short count the next datagram goes alone, which tells them apart: if it
/// has to wait for room, the buffer was full and batches go on; if it goes
/// at once, an error may have been lost, and on a UDP socket every later
/// datagram goes alone, so that the next such error is reported as it
/// always was. No datagram is skipped or sent twice: each call starts at
/// the first one not sent.
#[derive(Debug)]
struct Progress {
    next: usize,
    end: usize,
    alone: bool,
    mode: SendMode,
}

impl Progress {
    /// A batch of `len` datagrams, none sent yet.
    fn new(len: usize, mode: SendMode) -> Progress {
        Progress {
            next: 0,
            end: len,
            alone: false,
            mode,
        }
    }

    /// Whether every datagram went.
    fn done(&self) -> bool {
        self.next >= self.end
    }

    /// The datagrams the next call sends.
    fn pending(&self) -> Range<usize> {
        if self.alone || self.mode.one_at_a_time {
            self.next..(self.next + 1).min(self.end)
        } else {
            self.next..self.end
        }
    }

    /// The call for [`pending`](Self::pending) sent its first `n`, after
    /// waiting for room in the send buffer if `waited`.
    fn sent(&mut self, n: usize, waited: bool) {
        let asked = self.pending().len();
        let was_alone = self.alone;
        self.next += n.min(asked);
        if n < asked {
            self.alone = true;
        } else if was_alone {
            self.alone = false;
            if !waited && self.mode.lossy {
                self.mode.one_at_a_time = true;
            }
        }
    }
}

/// Sends `lines` of `data` (at most [`BATCH`]), as many per call as
/// [`Progress`] allows, counting their bytes in `sent` as they go.
async fn send_datagrams(
    config: &ConnectConfig,
    socket: &DatagramSocket,
    data: &[u8],
    lines: &[Range<usize>],
    mode: &mut SendMode,
    sent: &Cell<u64>,
) -> Result<()> {
    let slices: [IoSlice<'_>; BATCH] = std::array::from_fn(|i| {
        IoSlice::new(lines.get(i).map_or(&[][..], |line| &data[line.clone()]))
    });
    let mut progress = Progress::new(lines.len().min(BATCH), *mode);
    while !progress.done() {
        let pending = progress.pending();
        let (n, waited) = socket
            .send_batch(&slices[pending.clone()])
            .await
            .map_err(|e| Error::io(format!("send to {}", config.endpoint), e))?;
        if n == 0 {
            return Err(Error::io(
                format!("send to {}", config.endpoint),
                std::io::ErrorKind::WriteZero.into(),
            ));
        }
        let bytes: usize = slices[pending.start..][..n.min(pending.len())]
            .iter()
            .map(|s| s.len())
            .sum();
        sent.set(sent.get() + bytes as u64);
        progress.sent(n, waited);
        // The sends do not wait on the runtime while the buffer has room:
        // replies get their turn.
        tokio::task::consume_budget().await;
    }
    *mode = progress.mode;
    Ok(())
}

/// The error for a datagram longer than a datagram holds.
fn too_long_error(config: &ConnectConfig) -> Error {
    Error::new(ErrorKind::Usage, format!("send to {}", config.endpoint)).with_detail(format!(
        "a datagram holds at most {MAX_DATAGRAM} bytes; this line is longer (use {} to send input in chunks)",
        Setting::Raw
    ))
}

async fn send_one(config: &ConnectConfig, socket: &DatagramSocket, datagram: &[u8]) -> Result<()> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(too_long_error(config));
    }
    socket
        .send(datagram)
        .await
        .map_err(|e| Error::io(format!("send to {}", config.endpoint), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::ConnectConfig;
    use crate::transport::udp::RECV_BUF;
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

    fn cut(data: &[u8], eof: bool, max: usize) -> (Vec<&[u8]>, usize, bool) {
        let mut lines = Vec::new();
        let (used, too_long) = cut_lines(data, eof, max, &mut lines);
        let lines = lines.into_iter().map(|r| &data[r]).collect();
        (lines, used, too_long)
    }

    #[test]
    fn complete_lines_are_cut_and_the_unfinished_one_waits_for_the_end() {
        let data = b"a\n\nbc\nd";
        assert_eq!(
            cut(data, false, 32),
            (vec![&b"a\n"[..], b"\n", b"bc\n"], 6, false)
        );
        assert_eq!(
            cut(data, true, 32),
            (vec![&b"a\n"[..], b"\n", b"bc\n", b"d"], 7, false)
        );
        // At most `max` a call: the rest is cut by the next.
        assert_eq!(cut(data, true, 2), (vec![&b"a\n"[..], b"\n"], 3, false));
        assert_eq!(cut(b"", true, 32), (vec![], 0, false));
    }

    #[test]
    fn a_line_longer_than_a_datagram_is_told_by_its_length_newline_or_not() {
        let mut data = b"ok\n".to_vec();
        data.extend(vec![b'x'; MAX_DATAGRAM - 1]);
        data.push(b'\n');
        // A line of exactly MAX_DATAGRAM bytes, newline included, fits.
        assert_eq!(cut(&data, false, 32).1, data.len());
        // One byte more does not, newline or not: the lines before it are
        // still cut.
        data.insert(3, b'x');
        assert_eq!(cut(&data, false, 32), (vec![&b"ok\n"[..]], 3, true));
        *data.last_mut().unwrap() = b'x';
        assert_eq!(cut(&data, false, 32), (vec![&b"ok\n"[..]], 3, true));
        // Not yet at MAX_DATAGRAM bytes without a newline: the line may
        // end there.
        data.pop();
        assert_eq!(cut(&data, false, 32), (vec![&b"ok\n"[..]], 3, false));
        assert_eq!(cut(&data, true, 32).1, data.len());
    }

    const UDP: SendMode = SendMode {
        one_at_a_time: false,
        lossy: true,
    };

    /// Runs a batch of `len` through [`Progress`] against a send that
    /// answers each call from `answers` (datagrams sent, and whether it
    /// waited for room): the calls' ranges.
    fn calls(
        len: usize,
        mode: SendMode,
        answers: &[(usize, bool)],
    ) -> (Vec<Range<usize>>, Progress) {
        let mut progress = Progress::new(len, mode);
        let mut calls = Vec::new();
        let mut answers = answers.iter();
        while !progress.done() {
            let pending = progress.pending();
            let &(n, waited) = answers.next().expect("an answer for each call");
            assert!(n <= pending.len());
            calls.push(pending);
            progress.sent(n, waited);
        }
        (calls, progress)
    }

    #[test]
    fn after_a_short_send_the_rest_goes_from_the_first_unsent_datagram() {
        // A full buffer after 3: the 4th goes alone, waits for room, then
        // batches go on from the 5th.
        let (ranges, progress) = calls(10, UDP, &[(3, false), (1, true), (6, false)]);
        assert_eq!(ranges, [0..10, 3..4, 4..10]);
        assert!(!progress.mode.one_at_a_time);
        // Each datagram is in exactly one call's sent part, in order.
        let (ranges, _) = calls(
            8,
            UDP,
            &[(2, false), (1, true), (1, false), (1, true), (3, false)],
        );
        assert_eq!(ranges, [0..8, 2..3, 3..8, 4..5, 5..8]);
        // A short count whose next datagram then goes at once: an error
        // the socket held may have been lost, so on UDP the rest go one
        // at a time, as before batching, and later batches too.
        let (ranges, progress) = calls(
            5,
            UDP,
            &[(1, false), (1, false), (1, false), (1, true), (1, false)],
        );
        assert_eq!(ranges, [0..5, 1..2, 2..3, 3..4, 4..5]);
        assert!(progress.mode.one_at_a_time);
        let (ranges, _) = calls(2, progress.mode, &[(1, false), (1, false)]);
        assert_eq!(ranges, [0..1, 1..2]);
        // A Unix datagram socket holds no such error: batches go on.
        let unix = SendMode {
            one_at_a_time: false,
            lossy: false,
        };
        let (ranges, progress) = calls(5, unix, &[(1, false), (1, false), (3, false)]);
        assert_eq!(ranges, [0..5, 1..2, 2..5]);
        assert!(!progress.mode.one_at_a_time);
    }
}
