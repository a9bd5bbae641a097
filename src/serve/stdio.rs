//! `serve --stdio`: the netcat listener. The accepted connection's bytes go
//! to stdout and stdin goes to the peer, through `connect`'s own pipe
//! ([`connect::pipe_stdio`]): the same half-close rules (stdin EOF shuts
//! our sending side down and reading goes on; the peer's EOF closes
//! stdout), the same zero-copy path (splice(2) and sendfile(2) for TCP and
//! Unix sockets on Linux) and the same error classification, so the
//! connection's outcome is the exit code `connect` would give.
//!
//! By default one connection is served ([`ServerLimits::once`]): the
//! listener closes once it is accepted. A signal closes it at once (there
//! is no message to finish). With `--keep-open` the listener stays open
//! and every client joins the stdio hub ([`super::hub`]).

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::hub::{self, HubConfig, HubMode, HubReport};
use crate::connect::{self, ConnectConfig};
use crate::endpoint::{Endpoint, Host, HostPort};
use crate::error::{Result, fmt_duration};
use crate::server::{self, ServerLimits};
use crate::service::{Conn, NoObserver, Observer, Service};
use crate::transport::{Listener, PeerAddr};

/// Everything `serve --stdio` needs besides the listener.
#[derive(Debug, Clone)]
pub struct StdioConfig {
    /// The listening endpoint (named in error messages about a peer with
    /// no address of its own, such as a Unix-socket client).
    pub endpoint: Endpoint,
    /// Move bytes with splice(2)/sendfile(2) where stdin and stdout allow
    /// (`--no-splice` turns it off).
    pub splice: bool,
    /// `--keep-open`: keep listening, every client joined to stdin and
    /// stdout at once (see [`super::hub`]); otherwise serve one
    /// connection.
    pub keep_open: bool,
    /// Connection limit, timeouts and access rules (`once` is set from
    /// `keep_open`).
    pub limits: ServerLimits,
}

/// Serves `listener` on stdin and stdout until the one connection ends
/// (its failure is then in the report's [`failure`]), or with
/// `keep_open`, until `shutdown` is cancelled.
///
/// [`failure`]: crate::server::ServerReport::failure
pub async fn run(
    listener: Listener,
    config: StdioConfig,
    shutdown: CancellationToken,
) -> Result<HubReport> {
    run_observed(listener, config, shutdown, NoObserver).await
}

/// [`run`], with an [`Observer`] told what happens on every connection
/// (for metrics).
pub async fn run_observed<O: Observer>(
    listener: Listener,
    config: StdioConfig,
    shutdown: CancellationToken,
    observer: O,
) -> Result<HubReport> {
    if config.keep_open {
        let hub = HubConfig {
            mode: HubMode::Stdio,
            limits: ServerLimits {
                once: false,
                ..config.limits
            },
            queue: hub::DEFAULT_QUEUE,
        };
        return hub::run_observed(listener, hub, shutdown, observer).await;
    }
    let limits = ServerLimits {
        once: true,
        ..config.limits.clone()
    };
    let service = StdioService::new(config);
    let server = server::run_observed(listener, &limits, shutdown, service, observer).await?;
    Ok(HubReport {
        server,
        ..HubReport::default()
    })
}

/// One connection piped to stdin and stdout, as a [`Service`].
#[derive(Debug, Clone)]
pub struct StdioService {
    config: Arc<StdioConfig>,
}

impl StdioService {
    /// The service `config` describes.
    pub fn new(config: StdioConfig) -> StdioService {
        StdioService {
            config: Arc::new(config),
        }
    }
}

impl Service for StdioService {
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        let config = self.config.clone();
        async move {
            let (stream, peer, _state, deadlines, observer) = conn.into_parts();
            tracing::info!("{peer}: connected");
            let mut connect = ConnectConfig::new(peer_endpoint(&peer, &config.endpoint));
            connect.idle_timeout = deadlines.idle_timeout;
            connect.splice = config.splice;
            let start = tokio::time::Instant::now();
            match connect::pipe_stdio(&connect, stream).await {
                Ok(report) => {
                    tracing::info!(
                        "{peer}: closed (received {} bytes, sent {} in {})",
                        report.received,
                        report.sent,
                        fmt_duration(start.elapsed())
                    );
                    observer.closed(&peer, report.received, report.sent);
                }
                Err(err) => {
                    tracing::info!("{peer}: {err}");
                    observer.failed(&err);
                    observer.closed(&peer, 0, 0);
                }
            }
        }
    }

    fn idle_at_start(&self) -> bool {
        // Never in the middle of a message: SIGINT/SIGTERM (Ctrl-C at a
        // terminal) closes the connection at once instead of draining it.
        true
    }
}

/// The endpoint that names `peer` in messages: its address when it has
/// one, else the listener's.
fn peer_endpoint(peer: &PeerAddr, listening: &Endpoint) -> Endpoint {
    let addr = match peer {
        PeerAddr::Inet(addr) => *addr,
        PeerAddr::Proxied { source, .. } => *source,
        PeerAddr::Unix { .. } => return listening.clone(),
    };
    Endpoint::tcp(HostPort {
        host: Host::Ip(addr.ip()),
        port: addr.port(),
    })
}
