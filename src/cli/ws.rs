//! The WebSocket flags shared by every command, and their resolution into
//! [`WsOptions`].

use std::time::Duration;

use clap::Args;
use netcrab::endpoint::Endpoint;
use netcrab::error::{Error, Result};
use netcrab::transport::{DEFAULT_MAX_MESSAGE, WsOptions};

use super::common::{duration, size};

/// The WebSocket flags (`ws://`, `wss://` addresses).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "WebSocket (ws://, wss://)")]
pub struct WsArgs {
    /// Send text messages (input checked to be UTF-8) instead of binary ones
    #[arg(long)]
    pub ws_text: bool,
    /// Send a ping this often; a peer silent for two intervals is dead (exit 5)
    #[arg(long, value_name = "DURATION", value_parser = duration())]
    pub ws_ping: Option<Duration>,
    /// Largest message accepted, 1 to 1GiB [default: 16MiB]
    #[arg(long, value_name = "SIZE", value_parser = size(1))]
    pub ws_max_message: Option<usize>,
    /// Subprotocol: offered by connect (in order), accepted by serve and relay (repeatable)
    #[arg(long, value_name = "NAME")]
    pub ws_protocol: Vec<String>,
    /// Extra request header 'NAME: VALUE' sent by connect (repeatable)
    #[arg(long, value_name = "'NAME: VALUE'")]
    pub ws_header: Vec<String>,
    /// Serve: accept only requests whose Origin is one of these (403 otherwise; repeatable)
    #[arg(long, value_name = "ORIGIN")]
    pub ws_origin: Vec<String>,
    /// Serve: accept only this request path (404 otherwise) [default: any path]
    #[arg(long, value_name = "PATH")]
    pub ws_path: Option<String>,
}

impl WsArgs {
    /// Whether any WebSocket flag is given.
    fn any(&self) -> Option<&'static str> {
        [
            ("--ws-text", self.ws_text),
            ("--ws-ping", self.ws_ping.is_some()),
            ("--ws-max-message", self.ws_max_message.is_some()),
            ("--ws-protocol", !self.ws_protocol.is_empty()),
            ("--ws-header", !self.ws_header.is_empty()),
            ("--ws-origin", !self.ws_origin.is_empty()),
            ("--ws-path", self.ws_path.is_some()),
        ]
        .into_iter()
        .find_map(|(flag, given)| given.then_some(flag))
    }

    /// The WebSocket options for `endpoints` (those that are WebSocket);
    /// a usage error when a flag is given and none is. `handshake_timeout`
    /// is `--handshake-timeout`, when the command has it.
    pub fn resolve(
        &self,
        endpoints: &[&Endpoint],
        handshake_timeout: Option<Duration>,
    ) -> Result<WsOptions> {
        if !endpoints.iter().any(|e| e.scheme().is_websocket())
            && let Some(flag) = self.any()
        {
            return Err(Error::usage(format!(
                "{flag} needs a ws:// or wss:// address"
            )));
        }
        let mut headers = Vec::new();
        for h in &self.ws_header {
            match h.split_once(':') {
                Some((name, value)) if !name.trim().is_empty() => {
                    headers.push((name.trim().to_owned(), value.trim().to_owned()));
                }
                _ => {
                    return Err(Error::usage(format!(
                        "--ws-header {h:?}: expected 'NAME: VALUE'"
                    )));
                }
            }
        }
        if let Some(path) = &self.ws_path
            && !path.starts_with('/')
        {
            return Err(Error::usage(format!(
                "--ws-path {path:?}: must start with /"
            )));
        }
        let mut opts = WsOptions::default();
        opts.text = self.ws_text;
        opts.ping = self.ws_ping;
        opts.max_message = self.ws_max_message.unwrap_or(DEFAULT_MAX_MESSAGE);
        opts.protocols = self.ws_protocol.clone();
        opts.headers = headers;
        opts.origins = self.ws_origin.clone();
        opts.path = self.ws_path.clone();
        if let Some(t) = handshake_timeout {
            opts.handshake_timeout = t;
        }
        Ok(opts)
    }
}
