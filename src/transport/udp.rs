//! UDP sockets: a bound socket for `serve`, a connected one for `connect`,
//! and [`BatchSocket`], which receives and sends many datagrams per system
//! call (recvmmsg(2), sendmmsg(2)) for the server and the relay.
//!
//! UDP is not a byte stream, so it has no place in [`Stream`](super::Stream):
//! the datagram server lives in [`serve::udp`](crate::serve::udp) and the
//! datagram client in [`connect`](crate::connect), both on these sockets.

use std::io::{self, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::OnceLock;

use tokio::io::Interest;
use tokio::net::UdpSocket;

use super::ConnectOptions;
use crate::endpoint::{Family, HostPort};
use crate::error::{Error, ErrorKind, Result, fmt_duration};

/// The largest UDP payload over IPv4 (65,535 minus the IP and UDP headers).
pub const MAX_DATAGRAM: usize = 65_507;
/// The receive buffer: the largest UDP payload at all (65,535 minus the UDP
/// header is 65,527 over IPv6), rounded up, so no datagram is truncated.
pub const RECV_BUF: usize = 65_535;

/// Binds a UDP socket on the first address `hp` resolves to in `family`.
pub async fn bind_udp(hp: &HostPort, family: Family) -> Result<UdpSocket> {
    let mut last_err = None;
    for addr in hp.resolve_in(true, family).await? {
        match UdpSocket::bind(addr).await {
            Ok(socket) => return Ok(socket),
            Err(e) => last_err = Some(Error::io(format!("listen on udp://{addr}"), e)),
        }
    }
    Err(last_err.unwrap_or_else(|| Error::new(ErrorKind::Resolve, format!("resolve {hp}"))))
}

/// Opens a UDP socket connected to `hp`: it sends only there, receives
/// only from there, and learns of an ICMP port-unreachable as "connection
/// refused". Connecting a UDP socket sends nothing, so it cannot tell which
/// of several addresses answers: the first one the resolver gives is used
/// (127.0.0.1 for `localhost`).
pub async fn connect_udp(hp: &HostPort, opts: &ConnectOptions) -> Result<UdpSocket> {
    let context = format!("connect to udp://{hp}");
    let family = opts.effective_family()?;
    let work = async {
        let addrs = hp.resolve_in(false, family).await?;
        let addr = *addrs
            .first()
            .ok_or_else(|| Error::new(ErrorKind::Resolve, context.clone()))?;
        let local = if opts.source.is_set() {
            opts.source.local_for(addr)
        } else {
            unspecified_for(addr)
        };
        let socket = UdpSocket::bind(local).await.map_err(|e| {
            let err = Error::io(context.clone(), e);
            let detail = if opts.source.is_set() {
                format!("source address {local}: {}", err.detail())
            } else {
                err.detail().to_owned()
            };
            err.with_detail(detail)
        })?;
        socket
            .connect(addr)
            .await
            .map_err(|e| Error::io(context.clone(), e))?;
        Ok(socket)
    };
    match tokio::time::timeout(opts.connect_timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(Error::new(ErrorKind::Timeout, context).with_detail(format!(
            "timed out after {}",
            fmt_duration(opts.connect_timeout)
        ))),
    }
}

/// The wildcard address of `addr`'s family, port 0.
fn unspecified_for(addr: SocketAddr) -> SocketAddr {
    let ip = if addr.is_ipv4() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    SocketAddr::new(ip, 0)
}

/// Datagrams one [`BatchSocket`] call receives or sends at most: quinn-udp's
/// own batch (more per recvmmsg(2) is cut to it).
pub const BATCH: usize = 32;

/// A UDP socket that receives up to [`BATCH`] datagrams per recvmmsg(2)
/// (through quinn-udp) and sends a [`SendBatch`] per sendmmsg(2) (through
/// rustix), on the tokio runtime.
///
/// Receiving reads until a call returns fewer datagrams than it could take
/// (the queue is then empty) and stops there, without the extra call that
/// would return `EAGAIN`: readiness is cleared on that evidence (a datagram
/// arriving later raises a new edge-triggered event, so none is missed).
#[derive(Debug)]
pub struct BatchSocket {
    socket: UdpSocket,
}

/// Buffers for receiving a batch of datagrams: slots of [`RECV_BUF`] bytes
/// (address space; memory is touched only as datagrams fill it), and what
/// the last receive put in each.
///
/// The sockets keep their options: quinn-udp's receive state, which would
/// turn on QUIC's (don't-fragment, packet-info and ECN control messages,
/// GRO) for the socket it is built on, is built once on a scratch socket
/// instead, so a server's large answers still fragment as before and every
/// datagram arrives alone (GRO would only coalesce a peer's GSO bursts, and
/// each datagram gets its own answer anyway).
pub struct RecvBatch {
    buf: Vec<u8>,
    meta: Vec<quinn_udp::RecvMeta>,
    len: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.meta.len())
            .field("len", &self.len)
            .finish()
    }
}

impl Default for RecvBatch {
    /// [`BATCH`] slots.
    fn default() -> RecvBatch {
        RecvBatch::new(BATCH)
    }
}

/// quinn-udp's receive state, built once on a scratch socket (see
/// [`RecvBatch`]); receiving does not depend on the socket it was built on.
fn recv_state() -> io::Result<&'static quinn_udp::UdpSocketState> {
    static STATE: OnceLock<quinn_udp::UdpSocketState> = OnceLock::new();
    if let Some(state) = STATE.get() {
        return Ok(state);
    }
    let scratch =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM.cloexec(), None)?;
    let state = quinn_udp::UdpSocketState::new((&scratch).into())?;
    Ok(STATE.get_or_init(|| state))
}

impl RecvBatch {
    /// Buffers for `slots` datagrams a call (1 to [`BATCH`]).
    pub fn new(slots: usize) -> RecvBatch {
        let slots = slots.clamp(1, BATCH);
        RecvBatch {
            // Zeroed memory (calloc): pages are mapped only when written.
            buf: vec![0u8; slots * RECV_BUF],
            meta: vec![quinn_udp::RecvMeta::default(); slots],
            len: 0,
        }
    }

    /// The most datagrams one receive takes.
    pub fn slots(&self) -> usize {
        self.meta.len()
    }

    /// One non-blocking recvmmsg(2) on `socket`: how many buffers it filled
    /// (fewer than [`slots`](Self::slots): the queue is now empty).
    /// `WouldBlock` when nothing was waiting.
    pub fn recv(&mut self, socket: &impl AsFd) -> io::Result<usize> {
        self.len = 0;
        let state = recv_state()?;
        let mut slots = self.buf.chunks_mut(RECV_BUF);
        let mut iovs: [IoSliceMut<'_>; BATCH] =
            std::array::from_fn(|_| IoSliceMut::new(slots.next().unwrap_or(&mut [])));
        let n = self.meta.len();
        let got = state.recv(socket.into(), &mut iovs[..n], &mut self.meta)?;
        self.len = got;
        Ok(got)
    }

    /// The datagrams of the last receive, in order, with their senders.
    /// A buffer the kernel coalesced (GRO) is split back into datagrams.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], SocketAddr)> + '_ {
        self.meta[..self.len]
            .iter()
            .enumerate()
            .flat_map(move |(i, meta)| {
                let slot = &self.buf[i * RECV_BUF..][..meta.len.min(RECV_BUF)];
                let stride = if meta.stride == 0 {
                    slot.len().max(1)
                } else {
                    meta.stride
                };
                // An empty datagram is one datagram, not none.
                let empty = slot.is_empty().then_some(&slot[..0]);
                slot.chunks(stride)
                    .chain(empty)
                    .map(move |datagram| (datagram, meta.addr))
            })
    }

    /// How many buffers the last receive filled.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the last receive filled none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Datagrams to send in one sendmmsg(2): their bytes, one after the other
/// in a buffer whose capacity is fixed at creation, and their destinations.
#[derive(Debug)]
pub struct SendBatch {
    buf: Vec<u8>,
    /// (start, end, destination) of each datagram in `buf`.
    msgs: Vec<(usize, usize, SocketAddr)>,
}

impl SendBatch {
    /// A batch whose buffer holds `capacity` bytes (never grown: callers
    /// check [`SendBatch::room`] before writing).
    pub fn with_capacity(capacity: usize) -> SendBatch {
        SendBatch {
            buf: Vec::with_capacity(capacity),
            msgs: Vec::with_capacity(BATCH),
        }
    }

    /// The buffer to append the next datagram's bytes to; then
    /// [`SendBatch::push`] it, or truncate the buffer back to drop it.
    pub fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Makes the bytes appended since the buffer was `start` long a
    /// datagram to `to`.
    pub fn push(&mut self, start: usize, to: SocketAddr) {
        self.msgs.push((start, self.buf.len(), to));
    }

    /// Bytes that can still be appended without growing the buffer.
    pub fn room(&self) -> usize {
        self.buf.capacity() - self.buf.len()
    }

    /// Whether the batch holds as many datagrams as one call sends.
    pub fn is_full(&self) -> bool {
        self.msgs.len() >= BATCH
    }

    /// Datagrams in the batch.
    pub fn len(&self) -> usize {
        self.msgs.len()
    }

    /// Whether the batch holds no datagram.
    pub fn is_empty(&self) -> bool {
        self.msgs.is_empty()
    }

    /// Datagram `i` and its destination.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        self.msgs
            .get(i)
            .map(|&(start, end, to)| (&self.buf[start..end], to))
    }

    /// Empties the batch (its buffer keeps its capacity).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.msgs.clear();
    }
}

impl BatchSocket {
    /// Takes over a bound tokio UDP socket.
    pub fn new(socket: UdpSocket) -> io::Result<BatchSocket> {
        recv_state()?;
        Ok(BatchSocket { socket })
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits for datagrams and receives up to [`RecvBatch::slots`] of them
    /// into `batch` (read them with [`RecvBatch::iter`]). Cancel-safe:
    /// nothing is received unless it returns.
    pub async fn recv(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        loop {
            self.socket.readable().await?;
            if let Some(n) = recv_ready(&self.socket, batch)? {
                return Ok(n);
            }
        }
    }

    /// Sends every datagram of `batch`, waiting while the send buffer is
    /// full. A datagram the kernel refuses is reported to `failed` with its
    /// index in the batch and skipped; the rest are still sent. Returns how
    /// many were sent.
    pub async fn send(&self, batch: &SendBatch, mut failed: impl FnMut(usize, io::Error)) -> usize {
        let mut next = 0;
        let mut sent = 0;
        while next < batch.len() {
            // Optimistic: readiness is consulted only once the kernel said
            // the buffer is full.
            let result = match send_batch(&self.socket, batch, next) {
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    match self.socket.writable().await {
                        // WouldBlock again clears the readiness: the next
                        // round waits for a new writable edge.
                        Ok(()) => self
                            .socket
                            .try_io(Interest::WRITABLE, || send_batch(&self.socket, batch, next)),
                        Err(err) => {
                            for i in next..batch.len() {
                                failed(i, io::Error::new(err.kind(), err.to_string()));
                            }
                            break;
                        }
                    }
                }
                result => result,
            };
            match result {
                Ok(n) => {
                    next += n.max(1);
                    sent += n;
                }
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(err) => {
                    // The datagram at `next` failed; the ones before it went.
                    failed(next, err);
                    next += 1;
                }
            }
        }
        sent
    }
}

/// A UDP socket in blocking mode for a thread of its own (Linux): each
/// receive waits in one recvmmsg(2) with `MSG_WAITFORONE` (it sleeps until
/// a datagram comes, then takes whatever else is already queued, up to the
/// batch, without waiting for more), so a wake costs that one call and the
/// answers' sendmmsg(2), with no epoll_wait(2) in between. Another thread
/// stops it with [`Unblocker::unblock`].
///
/// Not `Send` (nix's receive headers hold raw pointers): build it on the
/// thread that uses it, from a socket [`BlockingSocket::prepare`] returned.
#[cfg(target_os = "linux")]
pub struct BlockingSocket {
    socket: std::net::UdpSocket,
    headers: nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    /// Whether answers to one peer may still go as one GSO send (cleared
    /// for good once the kernel refuses one).
    gso: std::cell::Cell<bool>,
}

#[cfg(target_os = "linux")]
impl std::fmt::Debug for BlockingSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingSocket")
            .field("socket", &self.socket)
            .finish()
    }
}

/// Senders (none for an address neither IPv4 nor IPv6) and lengths of a
/// blocking receive, slot by slot, and how many slots it filled.
#[cfg(target_os = "linux")]
type Received = ([(Option<SocketAddr>, usize); BATCH], usize);

/// One recvmmsg(2) with `MSG_WAITFORONE` into the first `slots` slots of
/// `buf` ([`RECV_BUF`] bytes each).
#[cfg(target_os = "linux")]
fn recv_wait_for_one(
    socket: &std::net::UdpSocket,
    headers: &mut nix::sys::socket::MultiHeaders<nix::sys::socket::SockaddrStorage>,
    buf: &mut [u8],
    slots: usize,
) -> nix::Result<Received> {
    use nix::sys::socket::{MsgFlags, recvmmsg};
    use std::os::fd::AsRawFd;
    let mut chunks = buf.chunks_mut(RECV_BUF);
    let mut iovs: [[IoSliceMut<'_>; 1]; BATCH] =
        std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or(&mut []))]);
    let received = recvmmsg(
        socket.as_raw_fd(),
        headers,
        iovs[..slots.min(BATCH)].iter_mut(),
        MsgFlags::MSG_WAITFORONE,
        None,
    )?;
    let mut got = [(None, 0usize); BATCH];
    let mut count = 0;
    for msg in received.take(BATCH) {
        let addr = msg.address.and_then(|addr| match addr.as_sockaddr_in() {
            Some(v4) => Some(SocketAddr::V4((*v4).into())),
            None => addr
                .as_sockaddr_in6()
                .map(|v6| SocketAddr::V6((*v6).into())),
        });
        got[count] = (addr, msg.bytes.min(RECV_BUF));
        count += 1;
    }
    Ok((got, count))
}

/// Wakes and stops a [`BlockingSocket`]'s thread from another one:
/// shutdown(2) on the socket returns a receive (or send) it is blocked in,
/// and every later one, at once.
#[cfg(target_os = "linux")]
#[derive(Debug)]
pub struct Unblocker {
    socket: std::net::UdpSocket,
}

#[cfg(target_os = "linux")]
impl Unblocker {
    /// Shuts the socket down for both directions. Linux wakes the sleepers
    /// even on an unconnected UDP socket, for which shutdown(2) itself
    /// reports `ENOTCONN` (ignored here).
    pub fn unblock(&self) {
        let _ = rustix::net::shutdown(&self.socket, rustix::net::Shutdown::Both);
    }
}

#[cfg(target_os = "linux")]
impl BlockingSocket {
    /// Takes a bound tokio UDP socket off the runtime and switches it to
    /// blocking mode: the socket to build a [`BlockingSocket`] from on its
    /// thread, and the [`Unblocker`] that stops that thread.
    pub fn prepare(socket: UdpSocket) -> io::Result<(std::net::UdpSocket, Unblocker)> {
        let socket = socket.into_std()?;
        socket.set_nonblocking(false)?;
        let unblocker = Unblocker {
            socket: socket.try_clone()?,
        };
        Ok((socket, unblocker))
    }

    /// Wraps a blocking socket from [`BlockingSocket::prepare`].
    pub fn new(socket: std::net::UdpSocket) -> BlockingSocket {
        BlockingSocket {
            socket,
            headers: nix::sys::socket::MultiHeaders::preallocate(BATCH, None),
            gso: std::cell::Cell::new(true),
        }
    }

    /// Waits for a datagram, then receives it and up to
    /// [`RecvBatch::slots`] less one more already queued into `batch`.
    /// Once the socket was shut down ([`Unblocker::unblock`]) it returns at
    /// once, and what it returns then is not to be used (the kernel
    /// reports the shutdown as an empty message, which nix gives the last
    /// sender's address): the caller checks its own stop flag first.
    pub fn recv(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.len = 0;
        let slots = batch.meta.len();
        let (got, count) = loop {
            match recv_wait_for_one(&self.socket, &mut self.headers, &mut batch.buf, slots) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(errno.into()),
                Ok(got) => break got,
            }
        };
        let mut filled = 0;
        for (i, &(addr, len)) in got[..count].iter().enumerate() {
            let Some(addr) = addr else { continue };
            if filled != i {
                // Keeps the datagrams in the first slots, in order.
                batch
                    .buf
                    .copy_within(i * RECV_BUF..i * RECV_BUF + len, filled * RECV_BUF);
            }
            batch.meta[filled] = quinn_udp::RecvMeta {
                addr,
                len,
                stride: len,
                ..quinn_udp::RecvMeta::default()
            };
            filled += 1;
        }
        batch.len = filled;
        Ok(filled)
    }

    /// Sends every datagram of `batch`, blocking while the send buffer is
    /// full. A datagram the kernel refuses is reported to `failed` with its
    /// index in the batch and skipped; the rest are still sent. Returns how
    /// many were sent.
    ///
    /// Several small datagrams of one length to one peer go as one GSO
    /// send (UDP GSO, `UDP_SEGMENT`); each peer's datagrams keep their order, and
    /// the rest go together in sendmmsg(2) calls.
    pub fn send(&self, batch: &SendBatch, mut failed: impl FnMut(usize, io::Error)) -> usize {
        if !self.gso.get() || batch.len() < 2 || batch.len() > BATCH {
            // In order, a batch's worth of indices at a time.
            let mut sent = 0;
            for start in (0..batch.len()).step_by(BATCH) {
                let indices: [usize; BATCH] = std::array::from_fn(|i| start + i);
                let count = (batch.len() - start).min(BATCH);
                sent += self.send_each(batch, &indices[..count], &mut failed);
            }
            return sent;
        }
        let plan = super::gso::plan(batch.msgs.iter().map(|&(start, end, to)| (end - start, to)));
        let mut sent = 0;
        // Single datagrams waiting for one sendmmsg(2), in plan order.
        let mut single = [0usize; BATCH];
        let mut singles = 0;
        for &(at, len) in &plan.runs[..plan.run_count] {
            let run = &plan.order[at..][..len];
            if run.len() == 1 || !self.gso.get() {
                single[singles..][..run.len()].copy_from_slice(run);
                singles += run.len();
                continue;
            }
            // What went before to this peer goes first.
            sent += self.send_each(batch, &single[..singles], &mut failed);
            singles = 0;
            let mut datagrams: [&[u8]; BATCH] = [&[]; BATCH];
            for (slot, &i) in datagrams.iter_mut().zip(run) {
                let (start, end, _) = batch.msgs[i];
                *slot = &batch.buf[start..end];
            }
            let to = batch.msgs[run[0]].2;
            match super::gso::send_run(&self.socket, &datagrams[..run.len()], to) {
                Ok(()) => sent += run.len(),
                Err(err) => {
                    if super::gso::unsupported(&err) {
                        tracing::debug!("udp gso refused ({err}): datagrams go one by one");
                        self.gso.set(false);
                    }
                    // One by one: each datagram gets its own outcome.
                    sent += self.send_each(batch, run, &mut failed);
                }
            }
        }
        sent + self.send_each(batch, &single[..singles], &mut failed)
    }

    /// Sends the datagrams of `batch` at `indices`, in that order, in as
    /// few sendmmsg(2) calls as the kernel takes; a refused one is reported
    /// to `failed` and skipped. Returns how many were sent.
    fn send_each(
        &self,
        batch: &SendBatch,
        indices: &[usize],
        failed: &mut impl FnMut(usize, io::Error),
    ) -> usize {
        let mut next = 0;
        let mut sent = 0;
        while next < indices.len() {
            let msgs = indices[next..].iter().map(|&i| batch.msgs[i]);
            match sendmmsg_of(&self.socket, &batch.buf, msgs) {
                Ok(n) => {
                    next += n.max(1);
                    sent += n;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    failed(indices[next], err);
                    next += 1;
                }
            }
        }
        sent
    }
}

/// One recvmmsg(2) into `batch` on `socket`, which tokio saw readable:
/// `Some(n)` datagrams, or `None` when the readiness was stale. Tokio's
/// readiness is cleared when the call shows the queue empty (fewer
/// datagrams than slots: the kernel stopped at `EAGAIN`), so the caller
/// waits for the next datagram without first calling again to see
/// `EAGAIN` itself. A datagram arriving later raises a new edge-triggered
/// event, so none is missed.
pub fn recv_ready(socket: &UdpSocket, batch: &mut RecvBatch) -> io::Result<Option<usize>> {
    let mut drained = None;
    let result = socket.try_io(Interest::READABLE, || {
        let n = batch.recv(socket)?;
        if n < batch.slots() {
            drained = Some(n);
            // Tokio clears readiness on WouldBlock.
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match result {
        Ok(n) => Ok(Some(n)),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(drained),
        Err(err) => Err(err),
    }
}

/// One sendmmsg(2) of `batch`'s datagrams from `from` on: how many went.
#[cfg(target_os = "linux")]
pub(crate) fn send_batch(socket: &impl AsFd, batch: &SendBatch, from: usize) -> io::Result<usize> {
    sendmmsg_of(socket, &batch.buf, batch.msgs[from..].iter().copied())
}

/// One sendmmsg(2) of `msgs`, (start, end, destination) of each datagram
/// in `buf`: how many went. At most [`BATCH`] go per call.
#[cfg(target_os = "linux")]
fn sendmmsg_of(
    socket: &impl AsFd,
    buf: &[u8],
    msgs: impl Iterator<Item = (usize, usize, SocketAddr)> + Clone,
) -> io::Result<usize> {
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny};
    let msgs = msgs.take(BATCH);
    let addrs: Vec<SocketAddrAny> = msgs.clone().map(|(_, _, to)| to.into()).collect();
    let iovs: Vec<io::IoSlice<'_>> = msgs
        .map(|(start, end, _)| io::IoSlice::new(&buf[start..end]))
        .collect();
    let mut controls: Vec<SendAncillaryBuffer<'_, '_, '_>> = iovs
        .iter()
        .map(|_| SendAncillaryBuffer::default())
        .collect();
    let mut hdrs: Vec<MMsgHdr<'_>> = addrs
        .iter()
        .zip(&iovs)
        .zip(controls.iter_mut())
        .map(|((addr, iov), control)| {
            MMsgHdr::new_with_addr(addr, std::slice::from_ref(iov), control)
        })
        .collect();
    if hdrs.is_empty() {
        return Ok(0);
    }
    Ok(rustix::net::sendmmsg(
        socket,
        &mut hdrs,
        SendFlags::empty(),
    )?)
}

/// One datagram of `batch` (at `from`) per call where there is no
/// sendmmsg(2).
#[cfg(not(target_os = "linux"))]
pub(crate) fn send_batch(socket: &impl AsFd, batch: &SendBatch, from: usize) -> io::Result<usize> {
    match batch.get(from) {
        Some((datagram, to)) => socket2::SockRef::from(socket)
            .send_to(datagram, &to.into())
            .map(|_| 1),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Datagram `i` of a burst: its size varies, one is empty, one is
    /// the largest IPv4 payload.
    fn datagram(i: usize) -> Vec<u8> {
        let len = match i {
            5 => 0,
            17 => MAX_DATAGRAM,
            _ => (i * 37) % 500 + 1,
        };
        (0..len).map(|b| (b + i) as u8).collect()
    }

    async fn bound() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0").await.unwrap()
    }

    #[tokio::test]
    async fn a_burst_is_received_in_batches_and_answered_in_one_send_each() {
        let server = BatchSocket::new(bound().await).unwrap();
        let to = server.local_addr().unwrap();
        let (a, b) = (bound().await, bound().await);
        // More than a batch, queued before the first receive, from two
        // senders in turn.
        const N: usize = BATCH + 8;
        for i in 0..N {
            let from = if i % 2 == 0 { &a } else { &b };
            from.send_to(&datagram(i), to).await.unwrap();
        }
        let mut got = Vec::new();
        let mut batch = RecvBatch::default();
        let mut out = SendBatch::with_capacity(2 * RECV_BUF);
        while got.len() < N {
            let n = tokio::time::timeout(Duration::from_secs(5), server.recv(&mut batch))
                .await
                .expect("the burst arrives")
                .unwrap();
            assert!((1..=BATCH).contains(&n));
            assert_eq!(n, batch.len());
            for (datagram, from) in batch.iter() {
                got.push((datagram.to_vec(), from));
            }
        }
        for (i, (datagram, from)) in got.iter().enumerate() {
            assert_eq!(datagram, &super::tests::datagram(i), "datagram {i}");
            let sender = if i % 2 == 0 { &a } else { &b };
            assert_eq!(*from, sender.local_addr().unwrap(), "datagram {i}");
        }
        // Answers: each datagram back to its sender, a batch per send.
        let mut answered = 0;
        for chunk in got.chunks(8) {
            for (datagram, from) in chunk {
                let start = out.buf_mut().len();
                out.buf_mut().extend_from_slice(datagram);
                out.push(start, *from);
            }
            let mut failed = 0;
            answered += server.send(&out, |_, _| failed += 1).await;
            assert_eq!(failed, 0);
            out.clear();
        }
        assert_eq!(answered, N);
        let mut buf = vec![0u8; RECV_BUF];
        for i in 0..N {
            let sender = if i % 2 == 0 { &a } else { &b };
            let n = tokio::time::timeout(Duration::from_secs(5), sender.recv(&mut buf))
                .await
                .expect("the answer arrives")
                .unwrap();
            assert_eq!(buf[..n], datagram(i)[..], "answer {i}");
        }
    }

    #[tokio::test]
    async fn a_datagram_after_a_short_batch_still_wakes_the_receiver() {
        let server = BatchSocket::new(bound().await).unwrap();
        let to = server.local_addr().unwrap();
        let client = bound().await;
        let mut batch = RecvBatch::new(4);
        for round in 0..3u8 {
            // A short batch clears the readiness without seeing EAGAIN:
            // the next datagram must raise it again.
            client.send_to(&[round], to).await.unwrap();
            let n = tokio::time::timeout(Duration::from_secs(5), server.recv(&mut batch))
                .await
                .expect("woken for the next datagram")
                .unwrap();
            assert_eq!(n, 1);
            let (datagram, _) = batch.iter().next().unwrap();
            assert_eq!(datagram, [round]);
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_blocking_receive_takes_the_queue_and_unblocking_wakes_it() {
        let (socket, unblocker) = BlockingSocket::prepare(bound().await).unwrap();
        let to = socket.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // Queued before the receive: one call takes them all, the empty
        // datagram included, up to the batch.
        const N: usize = BATCH + 3;
        for i in 0..N {
            client.send_to(&datagram(i), to).unwrap();
        }
        let (events, seen) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut socket = BlockingSocket::new(socket);
            let mut batch = RecvBatch::default();
            let mut got = Vec::new();
            while got.len() < N {
                let n = socket.recv(&mut batch).unwrap();
                assert!((1..=BATCH).contains(&n));
                got.extend(batch.iter().map(|(d, from)| (d.to_vec(), from)));
            }
            events.send(got).unwrap();
            // Now it sleeps in the receive until it is unblocked: then the
            // receive returns at once.
            let n = socket.recv(&mut batch).unwrap();
            events.send(vec![(Vec::new(), to); n]).unwrap();
        });
        let wait = Duration::from_secs(5);
        let got = seen.recv_timeout(wait).expect("the queue is received");
        for (i, (d, from)) in got.iter().enumerate() {
            assert_eq!(d, &datagram(i), "datagram {i}");
            assert_eq!(*from, client.local_addr().unwrap());
        }
        assert!(seen.try_recv().is_err(), "still blocked");
        unblocker.unblock();
        seen.recv_timeout(wait).expect("woken by the unblocker");
        thread.join().unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_blocking_send_delivers_each_peers_answers_whole_and_in_order() {
        // With GSO (runs of equal answers to one peer in one send) and
        // without (as after the kernel refused it), the same datagrams
        // arrive at the same peers in the same order.
        for gso in [true, false] {
            let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let socket = BlockingSocket::new(server);
            socket.gso.set(gso);
            let peers: Vec<std::net::UdpSocket> = (0..3)
                .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
                .collect();
            let mut out = SendBatch::with_capacity(64 * 1024);
            let mut expected = vec![Vec::new(); peers.len()];
            for i in 0..BATCH {
                let peer = [0, 1, 0, 2, 0, 1][i % 6];
                let len = match i {
                    7 => 0,
                    9 => 12,
                    13 => 2_000,
                    _ => 40,
                };
                let datagram: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
                let start = out.buf_mut().len();
                out.buf_mut().extend_from_slice(&datagram);
                out.push(start, peers[peer].local_addr().unwrap());
                expected[peer].push(datagram);
            }
            let sent = socket.send(&out, |i, err| panic!("answer {i}: {err}"));
            assert_eq!(sent, BATCH, "gso {gso}");
            // Loopback takes GSO sends (Linux 4.18 on): the runs really
            // went as such, nothing fell back.
            assert_eq!(socket.gso.get(), gso);
            let mut buf = vec![0u8; RECV_BUF];
            for (peer, expected) in peers.iter().zip(&expected) {
                peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                for (k, datagram) in expected.iter().enumerate() {
                    let (n, _) = peer.recv_from(&mut buf).unwrap();
                    assert_eq!(&buf[..n], datagram.as_slice(), "gso {gso}, datagram {k}");
                }
            }
        }
    }

    #[tokio::test]
    async fn a_refused_datagram_is_reported_and_the_rest_of_the_batch_goes() {
        let server = BatchSocket::new(bound().await).unwrap();
        let client = bound().await;
        let mut out = SendBatch::with_capacity(4 * RECV_BUF);
        for (i, len) in [3, MAX_DATAGRAM + 1, 5].into_iter().enumerate() {
            let start = out.buf_mut().len();
            out.buf_mut().resize(start + len, i as u8);
            out.push(start, client.local_addr().unwrap());
        }
        let mut failed = Vec::new();
        let sent = server
            .send(&out, |i, err| failed.push((i, err.raw_os_error())))
            .await;
        assert_eq!(sent, 2);
        assert_eq!(failed, [(1, Some(libc::EMSGSIZE))]);
        let mut buf = [0u8; 16];
        for expected in [&[0u8; 3][..], &[2u8; 5][..]] {
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .expect("the datagram arrives")
                .unwrap();
            assert_eq!(&buf[..n], expected);
        }
    }
}
