//! The pipe with faults: a faulted direction reads chunks into a bounded
//! queue stamped with their due time (read time + latency ± jitter, never
//! earlier than the chunk before), and a writer running alongside delivers
//! each when due, paced by the bandwidth, split into slices, counting
//! towards `reset-after`. Reading never waits for a delay, so latency costs
//! no throughput beyond the queue's bound (64 chunks of up to 64 KiB).
//!
//! A direction without faults is copied plainly — with splice(2) when both
//! sides are TCP on Linux and splicing is on, since then the two
//! directions work on the sockets' shared halves. The connection timers
//! (`reset-after-time`, `timeout-after`) race the whole transfer.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until};

use super::copy::DirError;
use super::{Dir, Fault, Traffic};
use crate::faults::Faults;
use crate::transport::Stream;

/// The most bytes one read takes.
const CHUNK: usize = 64 * 1024;
/// The most chunks waiting for their due time, per direction.
const QUEUE: usize = 64;
/// How far behind its schedule the bandwidth pacer may catch up (a burst
/// after a late timer), so timer lateness does not lower the rate.
const CATCH_UP: Duration = Duration::from_millis(50);

/// How the faults ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// `reset-after`: that many bytes were delivered.
    ResetAfterBytes(u64),
    /// `reset-after-time` ran out.
    ResetAfterTime(Duration),
    /// `timeout-after` ran out.
    TimeoutAfter(Duration),
}

impl Injected {
    /// Whether the client is to be reset (rather than closed).
    pub fn resets(self) -> bool {
        !matches!(self, Injected::TimeoutAfter(_))
    }
}

/// Why a direction stopped early.
enum Stop {
    Io(DirError),
    Reset(u64),
}

impl From<DirError> for Stop {
    fn from(e: DirError) -> Stop {
        Stop::Io(e)
    }
}

/// Like [`transfer`](super::transfer), with `faults` applied: `Ok(None)`
/// when both directions ended, `Ok(Some(_))` when a fault ended the
/// connection (the caller resets or closes the streams).
pub async fn transfer_with_faults(
    client: &mut Stream,
    upstream: &mut Stream,
    use_splice: bool,
    traffic: &Traffic,
    faults: &Faults,
) -> Result<Option<Injected>, Fault> {
    let timers = async {
        let far = Duration::from_secs(86400 * 365 * 10);
        let reset = faults.reset_after_time.unwrap_or(far);
        let timeout = faults.timeout_after.unwrap_or(far);
        if reset <= timeout {
            sleep(reset).await;
            Injected::ResetAfterTime(reset)
        } else {
            sleep(timeout).await;
            Injected::TimeoutAfter(timeout)
        }
    };
    let work = async {
        if !faults.shapes(Dir::Up) && !faults.shapes(Dir::Down) {
            return super::transfer(client, upstream, use_splice, traffic)
                .await
                .map(|()| None);
        }
        #[cfg(target_os = "linux")]
        if use_splice
            && !(faults.shapes(Dir::Up) && faults.shapes(Dir::Down))
            && let (Stream::Tcp(c), Stream::Tcp(u)) = (&mut *client, &mut *upstream)
            && let Ok(pipe) = super::splice::Pipe::new()
        {
            tracing::debug!("relaying with faults, splice(2) the other way");
            let (cr, cw) = c.split();
            let (ur, uw) = u.split();
            return if faults.shapes(Dir::Down) {
                let up = async {
                    super::splice::one_way(cr.as_ref(), uw.as_ref(), &pipe, Dir::Up, traffic, None)
                        .await
                        .map(drop)
                        .map_err(Stop::Io)
                };
                both(up, faulted(ur, cw, Dir::Down, traffic, faults)).await
            } else {
                let down = async {
                    super::splice::one_way(
                        ur.as_ref(),
                        cw.as_ref(),
                        &pipe,
                        Dir::Down,
                        traffic,
                        None,
                    )
                    .await
                    .map(drop)
                    .map_err(Stop::Io)
                };
                both(faulted(cr, uw, Dir::Up, traffic, faults), down).await
            };
        }
        tracing::debug!("relaying with faults");
        let (cr, cw) = tokio::io::split(&mut *client);
        let (ur, uw) = tokio::io::split(&mut *upstream);
        let up = one(cr, uw, Dir::Up, traffic, faults);
        let down = one(ur, cw, Dir::Down, traffic, faults);
        both(up, down).await
    };
    tokio::select! {
        result = work => result,
        injected = timers => Ok(Some(injected)),
    }
}

/// Runs both directions until both end, or one fails or resets.
async fn both(
    up: impl Future<Output = Result<(), Stop>>,
    down: impl Future<Output = Result<(), Stop>>,
) -> Result<Option<Injected>, Fault> {
    let up = async { up.await.map_err(|s| (Dir::Up, s)) };
    let down = async { down.await.map_err(|s| (Dir::Down, s)) };
    match tokio::try_join!(up, down) {
        Ok(_) => Ok(None),
        Err((_, Stop::Reset(n))) => Ok(Some(Injected::ResetAfterBytes(n))),
        Err((dir, Stop::Io(e))) => Err(e.blame(dir)),
    }
}

/// One direction: faulted or plain.
async fn one<R, W>(src: R, dst: W, dir: Dir, traffic: &Traffic, faults: &Faults) -> Result<(), Stop>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if faults.shapes(dir) {
        faulted(src, dst, dir, traffic, faults).await
    } else {
        plain(src, dst, dir, traffic).await.map_err(Stop::Io)
    }
}

/// A plain copy of one direction, then a write shutdown.
async fn plain<R, W>(mut src: R, mut dst: W, dir: Dir, traffic: &Traffic) -> Result<(), DirError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = src.read(&mut buf).await.map_err(DirError::Read)?;
        if n == 0 {
            return dst.shutdown().await.map_err(DirError::Write);
        }
        traffic.touch();
        dst.write_all(&buf[..n]).await.map_err(DirError::Write)?;
        dst.flush().await.map_err(DirError::Write)?;
        traffic.add(dir, n);
    }
}

/// A faulted direction: the reader queues, the writer delivers when due.
async fn faulted<R, W>(
    mut src: R,
    mut dst: W,
    dir: Dir,
    traffic: &Traffic,
    faults: &Faults,
) -> Result<(), Stop>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if faults.blackhole {
        // Swallow until the source ends; nothing, not even the end, goes
        // on (the connection closes when the other way ends).
        let mut buf = vec![0u8; CHUNK];
        while src.read(&mut buf).await.map_err(DirError::Read)? > 0 {
            traffic.touch();
        }
        return Ok(());
    }
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let reader = async move {
        let mut last_due = Instant::now();
        loop {
            let mut buf = Vec::with_capacity(CHUNK);
            let n = src.read_buf(&mut buf).await.map_err(DirError::Read)?;
            if n == 0 {
                return Ok::<(), Stop>(());
            }
            traffic.touch();
            if n < CHUNK / 4 {
                buf.shrink_to_fit();
            }
            let due = (Instant::now() + faults.delay(fastrand::f64())).max(last_due);
            last_due = due;
            if tx.send((due, buf)).await.is_err() {
                return Ok(());
            }
        }
    };
    let writer = async {
        let mut remaining = faults.reset_after;
        if remaining == Some(0) {
            return Err(Stop::Reset(0));
        }
        let mut pacer = Pacer::new(faults.bandwidth);
        while let Some((due, chunk)) = rx.recv().await {
            sleep_until(due).await;
            let mut pos = 0;
            while pos < chunk.len() {
                let mut n = (chunk.len() - pos).min(pacer.piece());
                if let Some(slice) = faults.slice {
                    n = n.min(slice);
                }
                if let Some(left) = remaining {
                    n = n.min(usize::try_from(left).unwrap_or(usize::MAX));
                }
                pacer.wait(n).await;
                dst.write_all(&chunk[pos..pos + n])
                    .await
                    .map_err(DirError::Write)?;
                dst.flush().await.map_err(DirError::Write)?;
                traffic.add(dir, n);
                pos += n;
                if let Some(left) = remaining.as_mut() {
                    *left -= n as u64;
                    if *left == 0 {
                        return Err(Stop::Reset(faults.reset_after.unwrap_or(0)));
                    }
                }
                if faults.slice.is_some() && pos < chunk.len() && !faults.slice_delay.is_zero() {
                    sleep(faults.slice_delay).await;
                }
            }
        }
        dst.shutdown()
            .await
            .map_err(|e| Stop::Io(DirError::Write(e)))
    };
    tokio::try_join!(reader, writer).map(|_| ())
}

/// The bandwidth's schedule: each piece of `n` bytes is sent no earlier
/// than its slot, and takes `n / rate` seconds of it.
struct Pacer {
    rate: Option<u64>,
    next: Option<Instant>,
}

impl Pacer {
    fn new(rate: Option<u64>) -> Pacer {
        Pacer { rate, next: None }
    }

    /// The largest piece to send at once: a fiftieth of a second's worth
    /// (at most a chunk, at least a byte).
    fn piece(&self) -> usize {
        match self.rate {
            Some(rate) => usize::try_from(rate / 50).unwrap_or(CHUNK).clamp(1, CHUNK),
            None => usize::MAX,
        }
    }

    /// Waits for the slot of `n` bytes and books it.
    async fn wait(&mut self, n: usize) {
        let Some(rate) = self.rate else { return };
        let now = Instant::now();
        // Behind schedule by a little (a late timer): catch up; idle for
        // longer: start afresh, no burst.
        let start = match self.next {
            Some(t) if t + CATCH_UP >= now => t,
            _ => now,
        };
        sleep_until(start).await;
        self.next = Some(start + Duration::from_secs_f64(n as f64 / rate as f64));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    /// Sends `data` through one faulted direction, then returns what came
    /// out, how long it took (paused clock) and the result.
    async fn through(faults: Faults, data: Vec<u8>) -> (Vec<u8>, Duration, Result<(), Stop>) {
        let (mut feed, src) = duplex(1 << 20);
        let (dst, mut out) = duplex(1 << 20);
        let traffic = Traffic::new();
        let start = Instant::now();
        let run = async {
            let r = faulted(src, dst, Dir::Down, &traffic, &faults).await;
            (r, start.elapsed())
        };
        let feed = async move {
            feed.write_all(&data).await.unwrap();
            feed.shutdown().await.unwrap();
            // Keep the feed end open until the end.
            feed
        };
        let collect = async {
            let mut got = Vec::new();
            out.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((r, took), _feed, got) = tokio::join!(run, feed, collect);
        (got, took, r)
    }

    #[tokio::test(start_paused = true)]
    async fn latency_delays_without_serialising() {
        let faults = Faults {
            latency: Duration::from_millis(100),
            ..Faults::default()
        };
        let data: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let (got, took, r) = through(faults, data.clone()).await;
        assert!(r.is_ok());
        assert!(got == data);
        // Sixteen chunks or more, each 100 ms late, yet all in ~100 ms.
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_millis(150), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn bandwidth_paces_and_slices_split() {
        let faults = Faults {
            bandwidth: Some(100_000),
            ..Faults::default()
        };
        let (got, took, _) = through(faults, vec![1; 300_000]).await;
        assert_eq!(got.len(), 300_000);
        // 300 kB at 100 kB/s: 3 s less the first piece.
        assert!(took >= Duration::from_millis(2_980), "{took:?}");
        assert!(took <= Duration::from_millis(3_100), "{took:?}");
        let faults = Faults {
            slice: Some(10),
            slice_delay: Duration::from_millis(10),
            ..Faults::default()
        };
        let (got, took, _) = through(faults, vec![2; 100]).await;
        assert_eq!(got, vec![2; 100]);
        assert!(took >= Duration::from_millis(90), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn reset_after_delivers_exactly_that_many_bytes() {
        let faults = Faults {
            reset_after: Some(1000),
            ..Faults::default()
        };
        let (got, _, r) = through(faults, vec![3; 5000]).await;
        assert_eq!(got.len(), 1000);
        assert!(matches!(r, Err(Stop::Reset(1000))));
    }
}
