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

/// Everything `serve` needs besides the listener.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// What each connection gets.
    pub service: Service,
    /// Whether the service answers each read or each line.
    pub framing: Framing,
    /// Close a connection that has sent nothing for this long.
    pub idle_timeout: Option<Duration>,
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
            log_data: true,
            limits: ServerLimits::default(),
            transcript: None,
        }
    }
}

/// Serves connections from `listener` until `shutdown` is cancelled, then
/// drains. Returns once every connection has ended.
pub async fn run(
    listener: Listener,
    config: ServeConfig,
    shutdown: CancellationToken,
) -> Result<ServerReport> {
    let config = Arc::new(config);
    let handler_config = config.clone();
    server::run(listener, &config.limits, shutdown, move |stream, peer| {
        let stream = match &handler_config.transcript {
            Some(transcript) => transcript.wrap(stream, &peer),
            None => stream,
        };
        service::handle(stream, peer, handler_config.clone())
    })
    .await
}
