//! The accept loop every listening command shares (`serve`, `relay`, ...):
//! connection limit, accept-error backoff, graceful drain.
//!
//! [`run`] takes an already bound [`Listener`], a shutdown token and a
//! per-connection handler (the mini-redis shape), so tests bind port 0 and
//! decide when shutdown happens. The connection tasks live in a `JoinSet`,
//! whose size is the connection count the limit applies to: at the limit
//! the loop waits for a task to end before it accepts again. Accept errors
//! back off instead of spinning ([`accept`]); on shutdown the loop stops
//! accepting, lets open connections finish for the drain timeout, then
//! closes the rest.
//!
//! Every open connection costs its task, so the task is the handler's
//! future itself for TCP and Unix connections (nothing else is kept per
//! connection), and the handler is called in the accept loop: it should
//! only build its future.
//!
//! Access rules ([`ServerLimits::access`], `--allow`/`--deny`) are checked
//! right after accept, before anything else: a refused connection is
//! dropped (closed) in the loop itself, with no task, no handshake and a
//! rate-limited log line.
//!
//! A TLS handshake runs in the connection's task, under its own timeout
//! and counting against the connection limit: a slow or silent client delays
//! only itself. A failed handshake is logged with its reason and the
//! handler never sees that connection.

pub mod accept;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::access::AccessList;
use crate::error::{Result, fmt_duration};
use crate::transport::{Listener, PeerAddr, SocketOptions, Stream};
use accept::{AcceptBackoff, Action};

/// The limits of a listening server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections handled at once. Past it, new connections are not
    /// accepted: they wait in the kernel's backlog until a slot frees (and
    /// the peer's connect times out if none does).
    pub max_conns: usize,
    /// How long open connections may finish after shutdown starts.
    pub drain_timeout: Duration,
    /// Options set on every accepted socket.
    pub socket: SocketOptions,
    /// Who may connect (`--allow`, `--deny`): checked right after accept,
    /// before any handshake; a refused connection is closed at once.
    /// `None` lets everyone in. Unix peers have no address and are not
    /// checked.
    pub access: Option<Arc<AccessList>>,
}

impl Default for ServerLimits {
    fn default() -> ServerLimits {
        ServerLimits {
            max_conns: 4096,
            drain_timeout: Duration::from_secs(10),
            socket: SocketOptions::default(),
            access: None,
        }
    }
}

/// What a server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerReport {
    /// Connections accepted (refused ones included).
    pub accepted: u64,
    /// Connections refused by the access rules.
    pub denied: u64,
    /// Connections still open when the drain timeout ran out, closed by us.
    pub closed_at_drain: usize,
}

/// Accepts connections from `listener` and runs `handler` on each in its
/// own task (after the TLS handshake, for a TLS listener) until `shutdown`
/// is cancelled, then drains. Returns once every connection task has ended.
///
/// `handler` is called in the accept loop, so it should only build the
/// connection's future; the work belongs in the future.
pub async fn run<H, F>(
    listener: Listener,
    limits: &ServerLimits,
    shutdown: CancellationToken,
    handler: H,
) -> Result<ServerReport>
where
    H: Fn(Stream, PeerAddr) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let handler = Arc::new(handler);
    let max_conns = limits.max_conns.max(1);
    let mut tasks = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let mut report = ServerReport::default();
    let mut limit_logged = false;

    loop {
        // Reap finished connection tasks: the set's size is the number of
        // open connections.
        while tasks.try_join_next().is_some() {}

        if tasks.len() >= max_conns {
            if !limit_logged {
                tracing::warn!(
                    "connection limit reached ({}): new connections wait in the backlog",
                    limits.max_conns
                );
                limit_logged = true;
            }
            tokio::select! {
                _ = tasks.join_next() => continue,
                _ = shutdown.cancelled() => break,
            }
        }
        let (accepted, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.on_success();
                    accepted
                }
                Err(err) => {
                    if let Action::Sleep(delay) = backoff.on_error(&err) {
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = shutdown.cancelled() => break,
                        }
                    }
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        limit_logged = false;
        report.accepted += 1;
        if let (Some(access), PeerAddr::Inet(addr)) = (&limits.access, &peer)
            && !access.permits(addr.ip())
        {
            // Dropping the socket closes it: no handshake, no handler.
            drop(accepted);
            report.denied += 1;
            access.log_denied(*addr);
            continue;
        }
        if let Err(err) = accepted.set_options(&limits.socket) {
            tracing::debug!("{peer}: set socket options: {err}");
        }
        match accepted.into_ready() {
            // The handler's future is the whole task: nothing else is kept
            // per connection.
            Ok(stream) => {
                tasks.spawn(handler(stream, peer));
            }
            Err(accepted) => {
                let handler = handler.clone();
                tasks.spawn(async move {
                    // Not `match handshake.await { Ok(stream) => handler(..).await }`:
                    // the matched result would stay in the task through the
                    // whole connection.
                    let stream = match accepted.handshake(&peer).await {
                        Ok(stream) => stream,
                        Err(err) => {
                            tracing::info!("{err}");
                            return;
                        }
                    };
                    handler(stream, peer).await;
                });
            }
        }
    }

    // Stop accepting: new connections are refused from here on.
    drop(listener);
    while tasks.try_join_next().is_some() {}
    if !tasks.is_empty() {
        tracing::info!(
            "draining {} open connection(s) for up to {}",
            tasks.len(),
            fmt_duration(limits.drain_timeout)
        );
        let drained = tokio::time::timeout(limits.drain_timeout, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            report.closed_at_drain = tasks.len();
            tracing::info!(
                "drain timeout: closing {} connection(s)",
                report.closed_at_drain
            );
            tasks.shutdown().await;
        }
    }
    Ok(report)
}
