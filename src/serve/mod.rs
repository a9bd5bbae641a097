//! `netcrab serve`: the services (reply, echo, discard; per read or per
//! line) run on the shared accept loop in [`server`].

pub mod lines;
mod service;
pub mod udp;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::server::{self, ServerLimits, ServerReport};
use crate::transcript::Transcript;
use crate::transport::Listener;

pub use service::{Framing, Service};

/// `--line-timeout`'s default: ample for a person typing a line, short
/// enough that trickling peers do not hold slots for long.
pub const DEFAULT_LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything `serve` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// What each connection gets.
    pub service: Service,
    /// Whether the service answers each read or each line.
    pub framing: Framing,
    /// Close a connection when no byte has moved either way (read, or
    /// written: a blocked write counts as idle) for this long.
    pub idle_timeout: Option<Duration>,
    /// With line framing, close a connection whose line has not ended this
    /// long after its first byte (slowloris), after telling it
    /// `error: line timeout`.
    pub line_timeout: Option<Duration>,
    /// Log each received message (`recv ...`) at info level; the seed's
    /// behaviour for `--reply`. Otherwise payloads are logged at trace.
    pub log_data: bool,
    /// Connection limit, drain timeout, socket options and access rules.
    pub limits: ServerLimits,
    /// Record every connection (`-o`, `-x`); `None` records nothing.
    pub transcript: Option<Transcript>,
}

impl Default for ServeConfig {
    fn default() -> ServeConfig {
        ServeConfig {
            service: Service::Reply(b"hello, world".to_vec()),
            framing: Framing::Reads,
            idle_timeout: Some(Duration::from_secs(300)),
            line_timeout: Some(DEFAULT_LINE_TIMEOUT),
            log_data: true,
            limits: ServerLimits::default(),
            transcript: None,
        }
    }
}

/// Serves connections from `listener` until `shutdown` is cancelled, then
/// drains. Returns once every connection has ended. At the connection
/// limit, a new connection replaces the one idle longest (see
/// [`server::run_tracked`]): a message served or answer bytes taken by the
/// peer count as progress; a trickled partial line does not.
pub async fn run(
    listener: Listener,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<ServerReport> {
    let config = Arc::new(config);
    let handler_config = config.clone();
    server::run_tracked(
        listener,
        &config.limits,
        shutdown,
        move |stream, peer, activity| {
            let stream = match &handler_config.transcript {
                Some(transcript) => transcript.wrap(stream, &peer),
                None => stream,
            };
            service::handle(stream, peer, handler_config.clone(), activity)
        },
    )
    .await
}
