//! The hub that joins several clients: `serve --broker` (every client's
//! bytes go to all the others, never back to the sender), `serve --chat`
//! (the same per line, each line prefixed with the sender's id, with join
//! and leave notices) and `serve --stdio --keep-open` (stdin goes to every
//! client; what any client sends goes to stdout).
//!
//! Every client has an outbox: a queue of shared messages bounded in bytes
//! ([`HubConfig::queue`]; each message counts its length plus a fixed
//! overhead, so floods of tiny messages are bounded too), drained by the
//! client's own task. A message for
//! many clients is one allocation shared by their queues. What happens
//! when a queue is full depends on where the message comes from:
//!
//! - from another client (broker, chat): the client whose queue is full is
//!   too slow and is disconnected at once, logged and counted
//!   ([`HubReport::slow`]), as IRC servers do past a client's "SendQ": the
//!   sender and the others never wait for it, and it never holds more than
//!   its queue;
//! - from stdin (stdio): stdin waits for room, so the slowest client paces
//!   stdin, as with ncat (a client that stops reading for good is ended by
//!   the idle timeout, a blocked write counting as idle).
//!
//! A client's memory is bounded whatever it sends: a read buffer while a
//! read is handled (none while it waits), its queue (plus the message being
//! written), and in chat a partial line of at most `max_line` bytes. Clients leaving, resetting or idling only end
//! their own task. At shutdown every client closes at once (there is no
//! message to finish).

use std::collections::{BTreeMap, VecDeque};
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::io::poll_read_buf;
use tokio_util::sync::CancellationToken;

use super::lines::LineSplitter;
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::pipe::{Dir, Traffic};
use crate::server::{self, ServerLimits, ServerReport};
use crate::service::{Conn, NoObserver, Observer, Service};
use crate::transport::{Listener, PeerAddr};

/// A client's queue when none is given: a few seconds of a fast chat, and
/// a bound on what a client that stopped reading costs.
pub const DEFAULT_QUEUE: usize = 256 * 1024;
/// The read buffer of each client (and of stdin).
const READ_BUF: usize = 16 * 1024;
/// The most message slots an empty queue keeps allocated.
const SPARE_SLOTS: usize = 8;
/// What a queued message costs besides its bytes (its slot in the queue
/// and its share of the allocation's header), so many tiny messages are
/// bounded too.
const MESSAGE_OVERHEAD: usize = 32;

/// What the hub does with what clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubMode {
    /// Each client's bytes go to every other client, as they come.
    Broker,
    /// Each complete line goes to every other client as `<userN> line`;
    /// joins and leaves are announced as `<server> <userN> joined` and
    /// `<server> <userN> left`. A line longer than `max_line` bytes ends
    /// its sender's connection, after `<server> error: line too long`.
    Chat {
        /// The longest line accepted, newline excluded.
        max_line: usize,
    },
    /// stdin goes to every client, what any client sends goes to stdout;
    /// at stdin EOF every client's sending side is shut down (and a client
    /// that joins later gets EOF at once).
    Stdio,
}

/// Everything the hub needs besides the listener.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Broker, chat or stdio.
    pub mode: HubMode,
    /// Connection limit, timeouts and access rules.
    pub limits: ServerLimits,
    /// The most bytes queued for one client (at least one message is
    /// always taken when its queue is empty).
    pub queue: usize,
}

/// What a hub did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HubReport {
    /// The accept loop's report.
    pub server: ServerReport,
    /// Clients disconnected because their queue was full.
    pub slow: u64,
}

/// Serves clients from `listener` on one hub until `shutdown` is
/// cancelled (with [`HubMode::Stdio`], stdin is read from the first
/// client on).
pub async fn run(
    listener: Listener,
    config: HubConfig,
    shutdown: CancellationToken,
) -> Result<HubReport> {
    run_observed(listener, config, shutdown, NoObserver).await
}

/// [`run`], with an [`Observer`] told what happens on every connection
/// (for metrics).
pub async fn run_observed<O: Observer>(
    listener: Listener,
    config: HubConfig,
    shutdown: CancellationToken,
    observer: O,
) -> Result<HubReport> {
    let hub = Arc::new(Hub::new(config.mode, config.queue.max(1)));
    let stdin = (config.mode == HubMode::Stdio).then(|| {
        let hub = hub.clone();
        tokio::spawn(async move { hub.pump_stdin().await })
    });
    let service = HubService { hub: hub.clone() };
    let server = server::run_observed(listener, &config.limits, shutdown, service, observer).await;
    if let Some(stdin) = stdin {
        stdin.abort();
    }
    Ok(HubReport {
        server: server?,
        slow: hub.slow.load(Ordering::Relaxed),
    })
}

/// Why an outbox takes no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    /// Open.
    No,
    /// Send what is queued, then shut the sending side down (stdin ended).
    AfterQueue,
    /// The queue overflowed: disconnect now.
    Overflow,
    /// The client left.
    Gone,
}

/// One client's queue of messages to send.
struct Outbox {
    state: Mutex<Queue>,
    /// A message was queued, or the outbox closed (its writer waits).
    readable: Notify,
    /// Room was made, or the outbox closed (stdin waits).
    writable: Notify,
}

struct Queue {
    messages: VecDeque<Arc<[u8]>>,
    bytes: usize,
    closed: Closed,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Push {
    Queued,
    Full,
    Closed,
}

impl Outbox {
    fn new() -> Outbox {
        Outbox {
            state: Mutex::new(Queue {
                messages: VecDeque::new(),
                bytes: 0,
                closed: Closed::No,
            }),
            readable: Notify::new(),
            writable: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // A panic while holding it cannot leave the queue inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `msg` if there is room (an empty queue takes any message).
    fn push(&self, msg: &Arc<[u8]>, limit: usize) -> Push {
        let mut q = self.lock();
        if q.closed != Closed::No {
            return Push::Closed;
        }
        let cost = msg.len() + MESSAGE_OVERHEAD;
        if q.bytes > 0 && q.bytes.saturating_add(cost) > limit {
            return Push::Full;
        }
        q.bytes += cost;
        q.messages.push_back(msg.clone());
        drop(q);
        self.readable.notify_one();
        Push::Queued
    }

    /// Closes the outbox (the first reason stays).
    fn close(&self, why: Closed) {
        let mut q = self.lock();
        if q.closed == Closed::No {
            q.closed = why;
        }
        if why != Closed::AfterQueue {
            q.messages.clear();
            q.bytes = 0;
        }
        drop(q);
        self.readable.notify_one();
        self.writable.notify_one();
    }

    /// The next message to send, or why there is none.
    fn pop(&self) -> std::result::Result<Option<Arc<[u8]>>, Closed> {
        let mut q = self.lock();
        match q.messages.pop_front() {
            Some(msg) => {
                q.bytes -= msg.len() + MESSAGE_OVERHEAD;
                if q.messages.is_empty() && q.messages.capacity() > SPARE_SLOTS {
                    // A burst grew it: an idle client keeps no more.
                    q.messages = VecDeque::new();
                }
                drop(q);
                self.writable.notify_one();
                Ok(Some(msg))
            }
            None if q.closed == Closed::No => Ok(None),
            None => Err(q.closed),
        }
    }
}

/// A member of the hub.
struct Member {
    peer: PeerAddr,
    outbox: Arc<Outbox>,
}

/// The clients and what they share.
struct Hub {
    mode: HubMode,
    queue: usize,
    next_id: AtomicU64,
    members: Mutex<BTreeMap<u64, Member>>,
    /// Clients disconnected for a full queue.
    slow: AtomicU64,
    /// Stdio: a client joined (stdin waits for the first).
    joined: Notify,
    /// Stdio: stdin has ended.
    stdin_done: AtomicBool,
    /// Stdio: where every client's bytes go, one write at a time.
    stdout: tokio::sync::Mutex<Option<tokio::io::Stdout>>,
}

impl Hub {
    fn new(mode: HubMode, queue: usize) -> Hub {
        Hub {
            mode,
            queue,
            next_id: AtomicU64::new(1),
            members: Mutex::new(BTreeMap::new()),
            slow: AtomicU64::new(0),
            joined: Notify::new(),
            stdin_done: AtomicBool::new(false),
            stdout: tokio::sync::Mutex::new(Some(tokio::io::stdout())),
        }
    }

    fn members(&self) -> MutexGuard<'_, BTreeMap<u64, Member>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a client; it leaves when the returned guard drops.
    fn join(self: &Arc<Hub>, peer: PeerAddr) -> Joined {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let outbox = Arc::new(Outbox::new());
        if self.mode == HubMode::Stdio && self.stdin_done.load(Ordering::Relaxed) {
            outbox.close(Closed::AfterQueue);
        }
        if matches!(self.mode, HubMode::Chat { .. }) {
            let welcome: Arc<[u8]> = format!("<server> you are <user{id}>\n").into_bytes().into();
            outbox.push(&welcome, self.queue);
            self.broadcast(
                id,
                &format!("<server> <user{id}> joined\n").into_bytes().into(),
            );
        }
        self.members().insert(
            id,
            Member {
                peer: peer.clone(),
                outbox: outbox.clone(),
            },
        );
        // Logged once a member: whoever waits for the line may send to it.
        tracing::info!("{peer}: joined as user{id}");
        self.joined.notify_one();
        Joined {
            hub: self.clone(),
            id,
            outbox,
        }
    }

    /// Removes a client (its guard dropped: it ended however it ended).
    fn leave(&self, id: u64) {
        let member = self.members().remove(&id);
        if let Some(member) = member {
            member.outbox.close(Closed::Gone);
            tracing::info!("{}: user{id} left", member.peer);
        }
        if matches!(self.mode, HubMode::Chat { .. }) {
            self.broadcast(
                id,
                &format!("<server> <user{id}> left\n").into_bytes().into(),
            );
        }
    }

    /// Queues `msg` for every client but `from`; a client whose queue is
    /// full is disconnected.
    fn broadcast(&self, from: u64, msg: &Arc<[u8]>) {
        for (&id, member) in self.members().iter() {
            if id == from {
                continue;
            }
            if member.outbox.push(msg, self.queue) == Push::Full {
                member.outbox.close(Closed::Overflow);
                self.slow.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    "{}: user{id} too slow: {} bytes queued for it; disconnecting",
                    member.peer,
                    self.queue
                );
            }
        }
    }

    /// Stdio: reads stdin and queues it for every client, waiting for room
    /// in each; at EOF shuts every client's sending side down.
    async fn pump_stdin(&self) {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; READ_BUF];
        loop {
            while self.members().is_empty() {
                self.joined.notified().await;
            }
            let n = match stdin.read(&mut buf).await {
                Ok(n) => n,
                Err(err) => {
                    tracing::warn!("{}", Error::io("read stdin", err));
                    0
                }
            };
            if n == 0 {
                tracing::debug!("stdin ended; shutting down sending to every client");
                self.stdin_done.store(true, Ordering::Relaxed);
                for member in self.members().values() {
                    member.outbox.close(Closed::AfterQueue);
                }
                return;
            }
            let msg: Arc<[u8]> = buf[..n].into();
            let outboxes: Vec<Arc<Outbox>> =
                self.members().values().map(|m| m.outbox.clone()).collect();
            for outbox in outboxes {
                while outbox.push(&msg, self.queue) == Push::Full {
                    outbox.writable.notified().await;
                }
            }
        }
    }

    /// Stdio: writes a client's bytes to stdout (a closed stdout drops
    /// them, once logged).
    async fn to_stdout(&self, data: &[u8]) {
        let mut stdout = self.stdout.lock().await;
        let Some(out) = stdout.as_mut() else {
            return;
        };
        let written = async {
            out.write_all(data).await?;
            out.flush().await
        };
        if let Err(err) = written.await {
            tracing::warn!(
                "{}; dropping what clients send",
                Error::io("write stdout", err)
            );
            *stdout = None;
        }
    }
}

/// A client's place in the hub; leaving is dropping it.
struct Joined {
    hub: Arc<Hub>,
    id: u64,
    outbox: Arc<Outbox>,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.hub.leave(self.id);
    }
}

/// The hub as a [`Service`]: each connection joins it.
#[derive(Clone)]
struct HubService {
    hub: Arc<Hub>,
}

impl Service for HubService {
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        let hub = self.hub.clone();
        async move {
            let (stream, peer, _state, deadlines, observer) = conn.into_parts();
            let joined = hub.join(peer.clone());
            let id = joined.id;
            // Up: from the client; down: to it.
            let counts = Traffic::new();
            let result = client(stream, &joined, deadlines.idle_timeout, &counts, &observer).await;
            drop(joined);
            let summary = format!(
                "received {} bytes, sent {} in {}",
                counts.up(),
                counts.down(),
                fmt_duration(counts.start().elapsed())
            );
            match result {
                Ok(()) => tracing::debug!("{peer}: user{id} closed ({summary})"),
                Err(err) => {
                    tracing::info!("{peer}: {err} ({summary})");
                    observer.failed(&err);
                }
            }
            observer.closed(&peer, counts.up(), counts.down());
        }
    }

    fn idle_at_start(&self) -> bool {
        // Always between messages: closed at once at shutdown.
        true
    }
}

/// How a client's reading ended.
enum ReadEnd {
    /// The client ended its sending.
    Eof,
    /// Chat: a line over the limit (its error is queued for the client).
    TooLong(usize),
}

/// Serves one client: reads what it sends into the hub and writes its
/// outbox to it, until it leaves, fails, idles out or is too slow.
async fn client<O: Observer>(
    stream: crate::transport::Stream,
    joined: &Joined,
    idle_timeout: Option<Duration>,
    counts: &Traffic,
    observer: &O,
) -> Result<()> {
    let hub = &*joined.hub;
    let (mut rd, mut wr) = tokio::io::split(stream);
    let reading = read_client(&mut rd, joined, counts, observer);
    let writing = write_client(&mut wr, &joined.outbox, counts, observer);
    tokio::pin!(reading, writing);
    let far = Duration::from_secs(86400 * 365);
    let idle = idle_timeout.unwrap_or(far);
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    let (mut read_done, mut write_done) = (false, false);
    loop {
        tokio::select! {
            ended = &mut reading, if !read_done => {
                read_done = true;
                match ended? {
                    // Stdio: the client may still be sent stdin.
                    ReadEnd::Eof if hub.mode == HubMode::Stdio && !write_done => {}
                    ReadEnd::Eof => return Ok(()),
                    ReadEnd::TooLong(max) => {
                        joined.outbox.close(Closed::AfterQueue);
                        // Its error goes out first, within the idle timeout.
                        (&mut writing).await?;
                        return Err(Error::new(ErrorKind::Protocol, format!("user{}", joined.id))
                            .with_detail(format!("line longer than {max} bytes")));
                    }
                }
            }
            written = &mut writing, if !write_done => {
                written?;
                // Stdio: stdin ended, and the client may still send.
                if hub.mode != HubMode::Stdio || read_done {
                    return Ok(());
                }
                write_done = true;
            }
            _ = &mut timer, if idle_timeout.is_some() => {
                let deadline = crate::deadline::after(counts.last_activity(), idle);
                if Instant::now() >= deadline {
                    return Err(Error::new(ErrorKind::Timeout, format!("user{}", joined.id))
                        .with_detail(format!("idle for {}", fmt_duration(idle))));
                }
                timer.as_mut().reset(deadline);
            }
        }
    }
}

/// Reads a client into the hub until it ends its sending.
async fn read_client<R, O>(
    rd: &mut R,
    joined: &Joined,
    counts: &Traffic,
    observer: &O,
) -> Result<ReadEnd>
where
    R: tokio::io::AsyncRead + Unpin,
    O: Observer,
{
    let hub = &*joined.hub;
    let id = joined.id;
    let mut lines = LineSplitter::default();
    loop {
        // A fresh buffer per read, taken only once data is there: a client
        // waiting to send holds none.
        let buf = poll_fn(|cx| {
            let mut buf = Vec::with_capacity(READ_BUF);
            ready!(poll_read_buf(Pin::new(&mut *rd), cx, &mut buf))?;
            Poll::Ready(Ok::<_, std::io::Error>(buf))
        })
        .await
        .map_err(|e| Error::io(format!("receive from user{id}"), e))?;
        let n = buf.len();
        if n == 0 {
            if let (HubMode::Chat { .. }, Some(mut last)) = (hub.mode, lines.finish()) {
                last.push(b'\n');
                hub.broadcast(id, &chat_line(id, &last));
            }
            return Ok(ReadEnd::Eof);
        }
        counts.add(Dir::Up, n);
        observer.received(n);
        let data = &buf[..n];
        match hub.mode {
            HubMode::Broker => hub.broadcast(id, &data.into()),
            HubMode::Stdio => hub.to_stdout(data).await,
            HubMode::Chat { max_line } => {
                let mut rest = data;
                loop {
                    match lines.next_line(&mut rest, max_line) {
                        Ok(Some(line)) => hub.broadcast(id, &chat_line(id, &line)),
                        Ok(None) => break,
                        Err(too_long) => {
                            let msg = format!(
                                "<server> error: line too long (the limit is {} bytes)\n",
                                too_long.max_line
                            );
                            joined.outbox.push(&msg.into_bytes().into(), usize::MAX);
                            return Ok(ReadEnd::TooLong(too_long.max_line));
                        }
                    }
                }
            }
        }
    }
}

/// `<userN> LINE` (the line ends with its newline).
fn chat_line(id: u64, line: &[u8]) -> Arc<[u8]> {
    let prefix = format!("<user{id}> ");
    let mut msg = Vec::with_capacity(prefix.len() + line.len());
    msg.extend_from_slice(prefix.as_bytes());
    msg.extend_from_slice(line);
    msg.into()
}

/// Writes a client's outbox to it until the outbox closes: after its
/// queue for stdin's end or a farewell (then the sending side is shut
/// down), at once otherwise.
async fn write_client<W, O>(
    wr: &mut W,
    outbox: &Outbox,
    counts: &Traffic,
    observer: &O,
) -> Result<()>
where
    W: AsyncWrite + Unpin,
    O: Observer,
{
    loop {
        match outbox.pop() {
            Ok(Some(msg)) => {
                let written = async {
                    wr.write_all(&msg).await?;
                    wr.flush().await
                };
                written.await.map_err(|e| Error::io("send to client", e))?;
                counts.add(Dir::Down, msg.len());
                observer.sent(msg.len());
            }
            Ok(None) => outbox.readable.notified().await,
            Err(Closed::AfterQueue) => {
                return wr
                    .shutdown()
                    .await
                    .map_err(|e| Error::io("shut down sending to client", e));
            }
            Err(Closed::Overflow) => {
                return Err(Error::new(ErrorKind::Timeout, "client")
                    .with_detail("too slow: its queue is full; disconnected"));
            }
            Err(Closed::Gone | Closed::No) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbox_is_bounded_in_bytes_but_takes_one_message_when_empty() {
        let outbox = Outbox::new();
        let big: Arc<[u8]> = vec![0u8; 1000].into();
        let small: Arc<[u8]> = vec![0u8; 10].into();
        let limit = 2 * (10 + MESSAGE_OVERHEAD);
        assert_eq!(outbox.push(&big, limit), Push::Queued);
        assert_eq!(outbox.push(&small, limit), Push::Full);
        assert_eq!(outbox.pop().map(|m| m.map(|m| m.len())), Ok(Some(1000)));
        assert_eq!(outbox.push(&small, limit), Push::Queued);
        assert_eq!(outbox.push(&small, limit), Push::Queued);
        // Each message costs its slot too: tiny ones are bounded as well.
        assert_eq!(outbox.push(&small, limit), Push::Full);
        assert_eq!(outbox.lock().bytes, limit);
    }

    #[test]
    fn an_emptied_queue_gives_back_what_a_burst_grew() {
        let outbox = Outbox::new();
        let msg: Arc<[u8]> = b"x".as_slice().into();
        for _ in 0..1000 {
            outbox.push(&msg, usize::MAX);
        }
        while let Ok(Some(_)) = outbox.pop() {}
        assert!(outbox.lock().messages.capacity() <= SPARE_SLOTS);
    }

    #[test]
    fn a_closed_outbox_takes_nothing_and_says_why() {
        let outbox = Outbox::new();
        let msg: Arc<[u8]> = b"hi".as_slice().into();
        assert_eq!(outbox.push(&msg, 10), Push::Queued);
        outbox.close(Closed::AfterQueue);
        assert_eq!(outbox.push(&msg, 10), Push::Closed);
        // What was queued still goes out, then the end.
        assert!(matches!(outbox.pop(), Ok(Some(_))));
        assert_eq!(outbox.pop(), Err(Closed::AfterQueue));
        let overflowed = Outbox::new();
        overflowed.push(&msg, 10);
        overflowed.close(Closed::Overflow);
        assert_eq!(overflowed.pop(), Err(Closed::Overflow));
        assert_eq!(overflowed.lock().bytes, 0);
    }

    #[test]
    fn chat_lines_carry_the_sender() {
        assert_eq!(&*chat_line(3, b"hi\n"), b"<user3> hi\n");
    }
}
