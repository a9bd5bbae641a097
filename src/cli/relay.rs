//! `netcrab relay`: flags, their resolution into a [`RelayConfig`], and the
//! command's start-up (bind, announce, port file, signals).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netcrab::endpoint::{Endpoint, Scheme};
use netcrab::error::{Error, Result};
use netcrab::relay::{self, RelayConfig};
use netcrab::server::ServerLimits;
use netcrab::transport::{ConnectOptions, Listener, SocketOptions};

use super::common::{RetryArgs, optional, parse_duration};
use super::serve::write_port_file;

/// Upstream connection retries when neither `--retry` nor `--retry-for` is
/// given: a refused upstream is retried twice (backoff caps 100 ms, then
/// 200 ms), so a restarting upstream is ridden over and a dead one answers
/// the client within about a third of a second.
const DEFAULT_RETRIES: u32 = 2;

/// The examples shown after the help.
pub const EXAMPLES: &str = "\
Examples:
  netcrab relay 127.0.0.1:8443 10.0.0.5:443          # forward a local port to a remote service
  netcrab relay :9000 127.0.0.1:8080 --max-conns 100 # expose a local server on every interface
  netcrab relay 127.0.0.1:0 db:5432 --retry-for 30s  # hold clients while the database restarts
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --idle-timeout 0 --no-splice";

/// Accept connections and relay each to an upstream (a port forwarder)
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct RelayArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT (every interface) or PORT
    pub listen: String,
    /// Address to relay each connection to
    pub upstream: String,
    /// Write the bound port to PATH once listening (for scripts; use with port 0)
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// Relay at most N connections at once; more wait in the kernel's backlog, unaccepted, until one closes
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_conns: usize,
    /// Close a connection when nothing moves in either direction for this long (0: never)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10m")]
    pub idle_timeout: Duration,
    /// On SIGINT/SIGTERM, let open connections finish for this long, then close them
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,
    /// Give up on one upstream connection attempt after this long
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5s")]
    pub connect_timeout: Duration,
    /// Enable TCP keepalive probes after this much idle time, on both sides
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keepalive: Option<Duration>,
    /// Copy through user space even for TCP to TCP (splice(2) is used by default on Linux)
    #[arg(long)]
    pub no_splice: bool,
    /// Upstream connection retries (default: --retry 2)
    #[command(flatten)]
    pub retry: RetryArgs,
}

impl RelayArgs {
    /// Resolves the flags into the listen address and the library config.
    pub fn resolve(&self) -> Result<(Endpoint, RelayConfig)> {
        let listen: Endpoint = self.listen.parse()?;
        let upstream: Endpoint = self.upstream.parse()?;
        for endpoint in [&listen, &upstream] {
            if endpoint.scheme() == Scheme::Udp {
                return Err(Error::usage(format!(
                    "relay carries byte streams: {endpoint} is udp, which is not supported"
                )));
            }
        }
        if self.max_conns == 0 {
            return Err(Error::usage("--max-conns must be at least 1"));
        }
        let socket = SocketOptions {
            nodelay: true,
            keepalive: self.keepalive,
        };
        let config = RelayConfig {
            upstream,
            connect: ConnectOptions {
                connect_timeout: self.connect_timeout,
                socket: socket.clone(),
            },
            retry: self.retry.policy(DEFAULT_RETRIES),
            idle_timeout: optional(self.idle_timeout),
            splice: !self.no_splice,
            limits: ServerLimits {
                max_conns: self.max_conns,
                drain_timeout: self.drain_timeout,
                socket,
            },
        };
        Ok((listen, config))
    }

    /// Runs the command until a signal stops it and the drain is over.
    pub async fn run(&self) -> Result<()> {
        let (listen, config) = self.resolve()?;
        let shutdown = netcrab::shutdown::on_signals()?;
        let listener = Listener::bind(&listen).await?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("read the bound address", e))?;
        // The port file first: whoever sees the log line can read it.
        if let (Some(path), Some(port)) = (&self.port_file, listener.port()) {
            write_port_file(path, port)?;
        }
        tracing::info!("listening on {local} (relay to {})", config.upstream);
        let report = relay::run(listener, config, shutdown).await?;
        tracing::info!("stopped after {} connection(s)", report.accepted);
        Ok(())
    }
}
