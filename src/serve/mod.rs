//! `netcrab serve`: the accept loop and its limits, and the services.
//!
//! [`run`] takes an already bound [`Listener`] and a shutdown token (the
//! mini-redis shape), so tests bind port 0 and decide when shutdown happens.
//! The loop holds a connection limit (an owned semaphore permit moves into
//! each connection task), backs off on accept errors instead of spinning
//! ([`accept`]), and on shutdown stops accepting, lets open connections
//! finish for the drain timeout, then closes the rest.

pub mod accept;
pub mod lines;
mod service;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::error::{Result, fmt_duration};
use crate::transport::{Listener, SocketOptions};
use accept::{AcceptBackoff, Action};

pub use service::{Framing, Service};

/// Everything `serve` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// What each connection gets.
    pub service: Service,
    /// Whether the service answers each read or each line.
    pub framing: Framing,
    /// Connections served at once. Past it, new connections are not
    /// accepted: they wait in the kernel's backlog until a slot frees (and
    /// the peer's connect times out if none does).
    pub max_conns: usize,
    /// Close a connection that has sent nothing for this long.
    pub idle_timeout: Option<Duration>,
    /// How long open connections may finish after shutdown starts.
    pub drain_timeout: Duration,
    /// Options set on every accepted socket.
    pub socket: SocketOptions,
    /// Log each received message (`recv ...`) at info level; the seed's
    /// behaviour for `--reply`. Otherwise payloads are logged at debug.
    pub log_data: bool,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            service: Service::Reply(b"hello, world".to_vec()),
            framing: Framing::Reads,
            max_conns: 4096,
            idle_timeout: Some(Duration::from_secs(300)),
            drain_timeout: Duration::from_secs(10),
            socket: SocketOptions::default(),
            log_data: true,
        }
    }
}

/// What a server did, reported when it stops.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServeReport {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections still open when the drain timeout ran out, closed by us.
    pub closed_at_drain: usize,
}

/// Serves connections from `listener` until `shutdown` is cancelled, then
/// drains. Returns once every connection task has ended.
pub async fn run(
    listener: Listener,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<ServeReport> {
    let limit = Arc::new(Semaphore::new(config.max_conns.max(1)));
    let config = Arc::new(config);
    let mut tasks = JoinSet::new();
    let mut backoff = AcceptBackoff::default();
    let mut report = ServeReport::default();
    let mut limit_logged = false;

    loop {
        // Reap finished connection tasks so the set stays small.
        while tasks.try_join_next().is_some() {}

        let permit = match limit.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if !limit_logged {
                    tracing::warn!(
                        "connection limit reached ({}): new connections wait in the backlog",
                        config.max_conns
                    );
                    limit_logged = true;
                }
                tokio::select! {
                    permit = limit.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break, // the semaphore is never closed
                    },
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
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
        if let Err(err) = stream.set_options(&config.socket) {
            tracing::debug!("{peer}: set socket options: {err}");
        }
        let config = config.clone();
        tasks.spawn(async move {
            service::handle(stream, peer, &config).await;
            drop(permit);
        });
    }

    // Stop accepting: new connections are refused from here on.
    drop(listener);
    while tasks.try_join_next().is_some() {}
    if !tasks.is_empty() {
        tracing::info!(
            "draining {} open connection(s) for up to {}",
            tasks.len(),
            fmt_duration(config.drain_timeout)
        );
        let drained = tokio::time::timeout(config.drain_timeout, async {
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
