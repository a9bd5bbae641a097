//! [`CloseHold`]: the stream under tungstenite, which holds back the
//! peer's close frame until this side has finished sending.
//!
//! tungstenite answers a close frame as soon as it reads one, after which
//! nothing more can be sent: WebSocket has no half-close of its own. To map
//! close frames to half-close, the bytes from the socket are scanned for
//! frame boundaries on their way up; the peer's close frame is kept here,
//! reported to [`WsStream`](super::WsStream) as EOF (or as the error its
//! code means), and let through only once this side has sent its own close
//! (the answer then completes the closing handshake).
//!
//! The scan must start at a frame boundary, so during the upgrade the
//! HTTP head is handed up no further than its blank line: what the socket
//! gave beyond it is kept and scanned as frames afterwards.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::transport::Stream;

/// The longest frame header: 2 bytes, 8 of extended length, 4 of mask.
const MAX_HEADER: usize = 14;
/// The close frame's opcode.
const OP_CLOSE: u8 = 0x8;

/// Where the scan is in the frame sequence.
#[derive(Debug, Clone, Copy)]
enum Scan {
    /// Reading a header: its bytes so far.
    Header([u8; MAX_HEADER], usize),
    /// Inside a payload: the bytes left.
    Payload(u64),
}

/// The header's full length, once enough of it is known.
fn header_len(h: &[u8]) -> Option<usize> {
    if h.len() < 2 {
        return None;
    }
    let ext = match h[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if h[1] & 0x80 != 0 { 4 } else { 0 };
    Some(2 + ext + mask)
}

/// The payload length of a complete header.
fn payload_len(h: &[u8]) -> u64 {
    match h[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([h[2], h[3]])),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[2..10]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    }
}

/// A stream that holds back the peer's close frame (see the module docs).
#[derive(Debug)]
pub(super) struct CloseHold {
    inner: Stream,
    /// Bytes read from the socket but not yet handed up.
    pre: Vec<u8>,
    /// In the HTTP head: how much of its `\r\n\r\n` end has been seen;
    /// `None` once the head is over.
    head: Option<usize>,
    scan: Scan,
    /// The close frame's bytes from its first byte, once one began.
    held: Option<Vec<u8>>,
    /// How much of `held` has been handed up (after [`release`](Self::release)).
    released: Option<usize>,
}

impl CloseHold {
    pub(super) fn new(inner: Stream) -> CloseHold {
        CloseHold {
            inner,
            pre: Vec::new(),
            head: Some(0),
            scan: Scan::Header([0; MAX_HEADER], 0),
            held: None,
            released: None,
        }
    }

    /// The stream underneath.
    pub(super) fn get_ref(&self) -> &Stream {
        &self.inner
    }

    /// The peer's close frame, once it has arrived whole and is held:
    /// its status code and reason (`None`: no code, a normal close).
    pub(super) fn held_close(&self) -> Option<Option<(u16, String)>> {
        if self.released.is_some() {
            return None;
        }
        let held = self.held.as_deref()?;
        let hl = header_len(held)?;
        if held.len() < hl {
            return None;
        }
        let len = usize::try_from(payload_len(held)).ok()?;
        if held.len() < hl + len {
            return None;
        }
        let mut payload = held[hl..hl + len].to_vec();
        if held[1] & 0x80 != 0 {
            let key = &held[hl - 4..hl];
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= key[i % 4];
            }
        }
        if payload.len() < 2 {
            return Some(None);
        }
        let code = u16::from_be_bytes([payload[0], payload[1]]);
        let reason = String::from_utf8_lossy(&payload[2..]).into_owned();
        Some(Some((code, reason)))
    }

    /// Lets the held close frame (and whatever follows) through: this side
    /// has sent its close, so tungstenite may now read the answer.
    pub(super) fn release(&mut self) {
        if self.released.is_none() {
            self.released = Some(0);
        }
    }

    /// Scans `new` (just read) for frame starts; returns how many of its
    /// bytes go up before a close frame starts (all of them when none does).
    fn scan(&mut self, new: &[u8]) -> usize {
        let mut i = 0;
        while i < new.len() {
            match &mut self.scan {
                Scan::Payload(left) => {
                    let take = (new.len() - i).min(usize::try_from(*left).unwrap_or(usize::MAX));
                    *left -= take as u64;
                    i += take;
                    if *left == 0 {
                        self.scan = Scan::Header([0; MAX_HEADER], 0);
                    }
                }
                Scan::Header(h, n) => {
                    if *n == 0 && new[i] & 0x0f == OP_CLOSE && self.released.is_none() {
                        return i;
                    }
                    h[*n] = new[i];
                    *n += 1;
                    i += 1;
                    if let Some(hl) = header_len(&h[..*n])
                        && *n == hl
                    {
                        let len = payload_len(&h[..*n]);
                        self.scan = if len == 0 {
                            Scan::Header([0; MAX_HEADER], 0)
                        } else {
                            Scan::Payload(len)
                        };
                    }
                }
            }
        }
        new.len()
    }
}

impl AsyncRead for CloseHold {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(matched) = &mut this.head {
            if this.pre.is_empty() {
                let mut chunk = [0u8; 4096];
                let mut rb = ReadBuf::new(&mut chunk);
                std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
                this.pre.extend_from_slice(rb.filled());
                if this.pre.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            let mut n = 0;
            while n < this.pre.len() && n < buf.remaining() {
                let b = this.pre[n];
                n += 1;
                *matched = match (*matched, b) {
                    (0 | 2, b'\r') => *matched + 1,
                    (1 | 3, b'\n') => *matched + 1,
                    (_, b'\r') => 1,
                    _ => 0,
                };
                if *matched == 4 {
                    this.head = None;
                    break;
                }
            }
            buf.put_slice(&this.pre[..n]);
            this.pre.drain(..n);
            return Poll::Ready(Ok(()));
        }
        // Released: hand up the held bytes first, then read on unscanned.
        if let (Some(done), Some(held)) = (&mut this.released, &this.held) {
            if *done < held.len() {
                let n = (held.len() - *done).min(buf.remaining());
                buf.put_slice(&held[*done..*done + n]);
                *done += n;
                return Poll::Ready(Ok(()));
            }
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if let Some(held) = &mut this.held {
            // Holding: complete the close frame, then wait for release.
            if this.released.is_none() && held_complete(held) {
                return Poll::Pending;
            }
            let mut chunk = [0u8; 256];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    held.extend_from_slice(rb.filled());
                    // Wake the reader above to look at the held frame.
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                other => return other,
            }
        }
        if this.released.is_some() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        if !this.pre.is_empty() {
            // What came with the HTTP head: scanned like any read.
            let n = this.pre.len().min(buf.remaining());
            let chunk: Vec<u8> = this.pre.drain(..n).collect();
            let pass = this.scan(&chunk);
            buf.put_slice(&chunk[..pass]);
            if pass < chunk.len() {
                let mut held = chunk[pass..].to_vec();
                held.append(&mut this.pre);
                this.held = Some(held);
                if pass == 0 {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
            }
            return Poll::Ready(Ok(()));
        }
        let start = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let end = buf.filled().len();
        let new = buf.filled()[start..end].to_vec();
        let pass = this.scan(&new);
        if pass < new.len() {
            this.held = Some(new[pass..].to_vec());
            buf.set_filled(start + pass);
            if pass == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Whether `held` holds a whole frame.
fn held_complete(held: &[u8]) -> bool {
    match header_len(held) {
        Some(hl) if held.len() >= hl => {
            usize::try_from(payload_len(held)).is_ok_and(|len| held.len() >= hl + len)
        }
        _ => false,
    }
}

impl AsyncWrite for CloseHold {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold() -> CloseHold {
        let (a, _b) = std::os::unix::net::UnixStream::pair().expect("pair");
        a.set_nonblocking(true).expect("nonblocking");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let s = tokio::net::UnixStream::from_std(a).expect("tokio stream");
        CloseHold::new(Stream::Unix(s))
    }

    #[test]
    fn a_close_frame_is_held_after_data_frames_split_anywhere() {
        // binary "abc" (unmasked), masked binary of 200 bytes (126-length
        // form), then a masked close 4001 "bye".
        let mut wire = vec![0x82, 3, b'a', b'b', b'c'];
        wire.extend([0x82, 0x80 | 126, 0, 200, 1, 2, 3, 4]);
        wire.extend(std::iter::repeat_n(0x55, 200));
        let close_at = wire.len();
        let key = [9u8, 8, 7, 6];
        let payload = [0x0f, 0xa1, b'b', b'y', b'e'];
        wire.extend([0x88, 0x80 | 5]);
        wire.extend(key);
        wire.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        for split in 1..wire.len() {
            let mut h = hold();
            let mut passed = 0;
            for part in [&wire[..split], &wire[split..]] {
                let n = h.scan(part);
                passed += n;
                if n < part.len() {
                    h.held = Some(part[n..].to_vec());
                    break;
                }
            }
            assert_eq!(passed, close_at, "split at {split}");
            if let Some(held) = &mut h.held {
                held.clear();
                held.extend_from_slice(&wire[close_at..]);
            }
            assert_eq!(h.held_close(), Some(Some((4001, "bye".to_owned()))));
        }
    }
}
