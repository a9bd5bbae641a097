//! `serve --exec` over datagrams (`udp://`, `unixgram://`): a program per
//! peer address, as ncat does.
//!
//! The first datagram from a peer starts its program; every datagram from
//! that peer is written to the program's stdin, and every read of the
//! program's stdout is sent back to the peer as one datagram. Datagrams
//! have no end of stream: a program ends when it exits (and its output has
//! been sent), or when nothing moved either way for the idle timeout: its
//! stdin is then closed, and what it has not finished within the grace
//! period ends with SIGTERM, then SIGKILL. A peer's next datagram starts a
//! new program (as soon as the old one's stdin is closed, even while it
//! finishes). At shutdown every program's stdin is closed and they get
//! the drain timeout.
//!
//! Nothing a peer sends grows memory without bound: at most
//! [`PEER_QUEUE`] datagrams wait for a program that does not read (more
//! are dropped and counted), and `--max-conns` bounds the programs (a new
//! peer past it is not served, and counted). A Unix datagram from an
//! unnamed socket cannot be answered, so it starts nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ExecConfig;
use super::child::{self, ConnEnv, Reaper, Spawned, describe_exit};
use crate::error::{Error, Result};
use crate::settings::Setting;
use crate::transport::PeerAddr;
use crate::transport::datagram::{DatagramPeer, DatagramSocket};
use crate::transport::udp::{MAX_DATAGRAM, RECV_BUF};

/// Datagrams queued for one peer's program; past it, the peer's datagrams
/// are dropped until the program reads.
pub const PEER_QUEUE: usize = 64;

/// What a datagram exec server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DatagramExecReport {
    /// Datagrams received.
    pub received: u64,
    /// Datagrams sent (the programs' output).
    pub sent: u64,
    /// Programs started.
    pub started: u64,
    /// Datagrams from new peers not served: at `--max-conns` programs, or
    /// from an unnamed Unix socket, or the program could not start.
    pub refused: u64,
    /// Datagrams dropped because their program's queue was full.
    pub dropped: u64,
}

/// One peer's program, as the receiving loop knows it.
struct PeerEntry {
    /// Which program for this peer (a later one replaces an ended one).
    generation: u64,
    /// Datagrams for its stdin.
    tx: mpsc::Sender<Vec<u8>>,
}

/// Serves datagrams on `socket`, a program per peer, until `shutdown` is
/// cancelled and the programs have ended (see the module's documentation).
/// `proto` is the scheme's name, for `NETCRAB_PROTO`.
pub async fn run(
    socket: DatagramSocket,
    config: ExecConfig,
    proto: &'static str,
    shutdown: CancellationToken,
) -> Result<DatagramExecReport> {
    let socket = Arc::new(socket);
    let config = Arc::new(config);
    let local = local_peer(&socket);
    let reaper = Reaper {
        grace: config.kill_grace,
        tracker: TaskTracker::new(),
    };
    let tasks = TaskTracker::new();
    let sent = Arc::new(AtomicU64::new(0));
    let mut report = DatagramExecReport::default();
    let mut peers: HashMap<DatagramPeer, PeerEntry> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(DatagramPeer, u64)>();
    let mut generation = 0u64;
    let mut buf = vec![0u8; RECV_BUF];
    loop {
        let (len, from) = tokio::select! {
            received = socket.recv_from(&mut buf) => match received {
                Ok(received) => received,
                Err(err) => {
                    tracing::debug!("{}", Error::io("receive", err));
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                        _ = shutdown.cancelled() => break,
                    }
                    continue;
                }
            },
            Some((peer, ended)) = done_rx.recv() => {
                if peers.get(&peer).is_some_and(|e| e.generation == ended) {
                    peers.remove(&peer);
                }
                continue;
            }
            _ = shutdown.cancelled() => break,
        };
        report.received += 1;
        let datagram = buf[..len].to_vec();
        let datagram = match peers.get(&from) {
            Some(entry) => match entry.tx.try_send(datagram) {
                Ok(()) => continue,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    report.dropped += 1;
                    tracing::debug!("{from}: the program is not reading; datagram dropped");
                    continue;
                }
                // Its program has just ended: this datagram starts another.
                Err(mpsc::error::TrySendError::Closed(datagram)) => {
                    peers.remove(&from);
                    datagram
                }
            },
            None => datagram,
        };
        if matches!(from, DatagramPeer::Unix(None)) || peers.len() >= config.limits.max_conns {
            report.refused += 1;
            tracing::debug!(
                "{from}: not served (no name to answer to, or {} programs running)",
                Setting::MaxConns
            );
            continue;
        }
        let (tx, rx) = mpsc::channel(PEER_QUEUE);
        let _ = tx.try_send(datagram);
        generation += 1;
        let env = ConnEnv::new(proto, &from.to_peer_addr(), local.as_ref(), None);
        let spawned =
            match child::spawn(&config.program, config.pty, &env, &reaper, from.to_string()) {
                Ok(spawned) => spawned,
                Err(err) => {
                    report.refused += 1;
                    tracing::warn!("{from}: cannot start {}: {err}", config.program);
                    continue;
                }
            };
        report.started += 1;
        peers.insert(from.clone(), PeerEntry { generation, tx });
        let peer = PeerTask {
            socket: socket.clone(),
            peer: from,
            connected: false,
            generation,
            config: config.clone(),
            shutdown: shutdown.clone(),
            sent: sent.clone(),
            done: done_tx.clone(),
        };
        tasks.spawn(peer.run(spawned, rx));
    }
    // Closing the queues closes every program's stdin.
    drop(peers);
    tasks.close();
    tasks.wait().await;
    reaper.tracker.close();
    reaper.tracker.wait().await;
    report.sent = sent.load(Ordering::Relaxed);
    Ok(report)
}

/// The socket's own address, for `NETCRAB_LOCAL_*`.
fn local_peer(socket: &DatagramSocket) -> Option<PeerAddr> {
    match socket {
        DatagramSocket::Udp(s) => s.local_addr().ok().map(PeerAddr::Inet),
        DatagramSocket::Unix(..) => socket
            .local_display()
            .ok()
            .and_then(|d| {
                crate::endpoint::Endpoint::parse_with_default(&d, crate::endpoint::Scheme::Unixgram)
                    .ok()
            })
            .and_then(|e| e.unix_addr().cloned())
            .map(|name| PeerAddr::Unix {
                name: Some(name),
                pid: None,
            }),
    }
}

/// One peer's program and what it needs.
struct PeerTask {
    socket: Arc<DatagramSocket>,
    peer: DatagramPeer,
    /// The socket is connected to the peer (`connect --exec`): `send`, not
    /// `send_to`.
    connected: bool,
    generation: u64,
    config: Arc<ExecConfig>,
    shutdown: CancellationToken,
    sent: Arc<AtomicU64>,
    done: mpsc::UnboundedSender<(DatagramPeer, u64)>,
}

impl PeerTask {
    /// Feeds the program the peer's datagrams and sends its output back
    /// until it ends, goes idle, or shutdown's drain runs out.
    async fn run(self, spawned: Spawned, mut rx: mpsc::Receiver<Vec<u8>>) {
        let Spawned {
            mut running,
            input,
            mut output,
        } = spawned;
        let mut input = Some(input);
        let idle = self.config.limits.idle_timeout;
        let far = Duration::from_secs(86400 * 365);
        let mut last = Instant::now();
        let mut end_by: Option<Instant> = None;
        let mut out = vec![0u8; MAX_DATAGRAM];
        let (mut stdout_done, mut status) = (false, None);
        let (mut up, mut down) = (0u64, 0u64);
        let mut why = "";
        while !(stdout_done && status.is_some()) {
            if (input.is_none() || status.is_some()) && !rx.is_closed() {
                // This program takes no more input: the peer's next
                // datagram starts a new one instead of waiting here.
                rx.close();
            }
            let idle_at = match (end_by, idle) {
                (None, Some(idle)) => crate::deadline::after(last, idle),
                _ => crate::deadline::after(last, far),
            };
            tokio::select! {
                datagram = rx.recv(), if input.is_some() && end_by.is_none() => match datagram {
                    Some(datagram) => {
                        last = Instant::now();
                        let Some(stdin) = input.as_mut() else { continue };
                        let write = tokio::time::timeout_at(idle_at, stdin.write_all(&datagram));
                        match write.await {
                            Ok(Ok(())) => up += 1,
                            Ok(Err(err)) => {
                                tracing::debug!("{}: write to the program: {err}", self.peer);
                                input = None;
                            }
                            Err(_) => {
                                why = "idle";
                                input = None;
                                end_by = Some(Instant::now() + self.config.kill_grace);
                            }
                        }
                    }
                    None => {
                        why = "shutdown";
                        input = None;
                        end_by = Some(Instant::now() + self.config.limits.drain_timeout);
                    }
                },
                read = output.read(&mut out), if !stdout_done => match read {
                    Ok(0) | Err(_) => stdout_done = true,
                    Ok(n) => {
                        last = Instant::now();
                        let sent = if self.connected {
                            self.socket.send(&out[..n]).await
                        } else {
                            self.socket.send_to(&out[..n], &self.peer).await
                        };
                        match sent {
                            Ok(_) => {
                                down += 1;
                                self.sent.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(err) => tracing::debug!("{}: {}", self.peer, Error::io("send", err)),
                        }
                    }
                },
                exited = running.wait(), if status.is_none() => match exited {
                    Ok(exited) => status = Some(exited),
                    Err(err) => {
                        tracing::warn!("{}: waiting for the program: {err}", self.peer);
                        break;
                    }
                },
                _ = tokio::time::sleep_until(idle_at), if end_by.is_none() && idle.is_some() => {
                    why = "idle";
                    input = None;
                    end_by = Some(Instant::now() + self.config.kill_grace);
                }
                _ = self.shutdown.cancelled(), if end_by.is_none() => {
                    why = "shutdown";
                    input = None;
                    end_by = Some(Instant::now() + self.config.limits.drain_timeout);
                }
                _ = tokio::time::sleep_until(end_by.unwrap_or_else(|| Instant::now() + far)), if end_by.is_some() => break,
            }
        }
        rx.close();
        let ended = match why {
            "idle" => "idle timeout; ",
            "shutdown" => "shutdown; ",
            _ => "",
        };
        match status {
            Some(status) => tracing::info!(
                "{}: {ended}program {} ({up} datagram(s) in, {down} out)",
                self.peer,
                describe_exit(status)
            ),
            None => {
                tracing::info!(
                    "{}: {ended}program terminated ({up} datagram(s) in, {down} out)",
                    self.peer
                );
                running.terminate(why);
            }
        }
        let _ = self.done.send((self.peer, self.generation));
    }
}

/// `connect --exec` over datagrams (`udp://`, `unixgram://`): runs
/// `config.program` with a connected datagram socket, each datagram
/// received written to its stdin, each read of its stdout sent as one
/// datagram, until it exits (and its output is sent) or nothing moves
/// either way for the idle timeout (then its stdin is closed and it gets
/// the grace period). An error receiving (an ICMP port-unreachable:
/// nothing listens there) ends it, and is returned.
pub async fn run_connected(
    socket: DatagramSocket,
    config: ExecConfig,
    proto: &'static str,
    peer: DatagramPeer,
) -> std::io::Result<()> {
    let socket = Arc::new(socket);
    let local = local_peer(&socket);
    let reaper = Reaper {
        grace: config.kill_grace,
        tracker: TaskTracker::new(),
    };
    let env = ConnEnv::new(proto, &peer.to_peer_addr(), local.as_ref(), None);
    let spawned = child::spawn(&config.program, config.pty, &env, &reaper, peer.to_string())?;
    let (tx, rx) = mpsc::channel(PEER_QUEUE);
    let (done, _) = mpsc::unbounded_channel();
    let task = PeerTask {
        socket: socket.clone(),
        peer,
        connected: true,
        generation: 0,
        config: Arc::new(config),
        shutdown: CancellationToken::new(),
        sent: Arc::new(AtomicU64::new(0)),
        done,
    };
    let feed = async {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            let n = socket.recv(&mut buf).await?;
            if tx.try_send(buf[..n].to_vec()).is_err() {
                tracing::debug!("the program is not reading; datagram dropped");
            }
        }
    };
    let result = tokio::select! {
        () = task.run(spawned, rx) => Ok(()),
        err = feed => err,
    };
    reaper.tracker.close();
    reaper.tracker.wait().await;
    result
}
