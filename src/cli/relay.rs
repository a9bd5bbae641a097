//! `netcrab relay`: flags, their resolution into a [`RelayConfig`], and the
//! command's start-up (bind, announce, port file, signals).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netcrab::endpoint::{Endpoint, Scheme};
use netcrab::error::{Error, Result};
use netcrab::relay::{self, RelayConfig};
use netcrab::server::ServerLimits;
use netcrab::transport::{ConnectOptions, ListenOptions, Listener, SocketOptions};

use super::common::{MAX_CONNS, RetryArgs, count, duration, keepalive, optional};
use super::serve::announce;
use super::tls::{TlsConnectArgs, TlsServeArgs};

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
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --idle-timeout 0 --no-splice
  netcrab relay tls://:443 127.0.0.1:8080 --cert cert.pem --key key.pem   # TLS termination
  netcrab relay 127.0.0.1:6380 tls://redis.internal:6380 --upstream-ca ca.pem  # TLS origination
  netcrab relay unix:///run/app.sock 127.0.0.1:8080   # a Unix socket in front of a TCP service
  netcrab relay 127.0.0.1:5433 tls+unix:///run/db.sock --upstream-pin-sha256 FINGERPRINT  # TLS over a Unix socket upstream";

/// Accept connections and relay each to an upstream (a port forwarder)
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct RelayArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT (every interface), PORT, or any stream endpoint (tls://, unix://, tls+unix://)
    pub listen: String,
    /// Address to relay each connection to
    pub upstream: String,
    /// Write the bound port to PATH once listening (for scripts; use with port 0)
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// Relay at most N connections at once; more wait in the kernel's backlog, unaccepted, until one closes (1 to 1000000)
    #[arg(long, value_name = "N", value_parser = count(1, MAX_CONNS), default_value = "1024")]
    pub max_conns: usize,
    /// Close a connection when nothing moves in either direction for this long (0: never)
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10m")]
    pub idle_timeout: Duration,
    /// On SIGINT/SIGTERM, let open connections finish for this long, then close them
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub drain_timeout: Duration,
    /// Give up on one upstream connection attempt after this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "5s")]
    pub connect_timeout: Duration,
    /// Enable TCP keepalive probes after this much idle time, on both sides (1s to 32767s)
    #[arg(long, value_name = "DURATION", value_parser = keepalive())]
    pub keepalive: Option<Duration>,
    /// Copy through user space even for TCP to TCP (splice(2) is used by default on Linux)
    #[arg(long)]
    pub no_splice: bool,
    /// Upstream connection retries (default: --retry 2)
    #[command(flatten)]
    pub retry: RetryArgs,
    /// TLS on the listening side (termination)
    #[command(flatten)]
    pub tls: TlsServeArgs,
    /// TLS towards the upstream (origination)
    #[command(flatten)]
    pub upstream_tls: UpstreamTlsArgs,
}

/// The upstream's TLS flags: `connect`'s, named `--upstream-*` so they do
/// not clash with the listening side's.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Upstream TLS")]
pub struct UpstreamTlsArgs {
    /// Speak TLS to the upstream: an UPSTREAM without a scheme means tls://
    #[arg(long)]
    pub upstream_tls: bool,
    /// Also trust the CA certificate(s) in FILE (PEM) for the upstream, besides the system's trust store
    #[arg(long, value_name = "FILE")]
    pub upstream_ca: Vec<PathBuf>,
    /// The name to ask the upstream for (SNI) and to verify its certificate against
    #[arg(long, value_name = "NAME")]
    pub upstream_servername: Option<String>,
    /// Accept exactly the upstream certificate with this SHA-256 fingerprint
    #[arg(long, value_name = "FINGERPRINT", conflicts_with = "upstream_ca")]
    pub upstream_pin_sha256: Vec<String>,
    /// Do not verify the upstream's certificate at all (warns)
    #[arg(long, conflicts_with_all = ["upstream_ca", "upstream_pin_sha256"])]
    pub upstream_insecure: bool,
    /// Present this client certificate chain (PEM) to the upstream
    #[arg(long, value_name = "FILE", requires = "upstream_key")]
    pub upstream_cert: Option<PathBuf>,
    /// Private key of --upstream-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "upstream_cert")]
    pub upstream_key: Option<PathBuf>,
}

impl UpstreamTlsArgs {
    /// The TLS options for connecting to `upstream`.
    fn resolve(&self, upstream: &Endpoint) -> Result<netcrab::tls::TlsClientOptions> {
        if !upstream.scheme().is_tls() {
            let given = [
                ("--upstream-ca", !self.upstream_ca.is_empty()),
                ("--upstream-servername", self.upstream_servername.is_some()),
                (
                    "--upstream-pin-sha256",
                    !self.upstream_pin_sha256.is_empty(),
                ),
                ("--upstream-insecure", self.upstream_insecure),
                ("--upstream-cert", self.upstream_cert.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                return Err(Error::usage(format!(
                    "{flag} needs a tls:// upstream (or tls+unix://, or --upstream-tls), not {upstream}"
                )));
            }
        }
        // The same resolution as connect's flags (checked above, so its own
        // "needs tls" errors cannot name the wrong flags).
        TlsConnectArgs {
            tls: self.upstream_tls,
            ca: self.upstream_ca.clone(),
            servername: self.upstream_servername.clone(),
            pin_sha256: self.upstream_pin_sha256.clone(),
            insecure: self.upstream_insecure,
            cert: self.upstream_cert.clone(),
            key: self.upstream_key.clone(),
            alpn: Vec::new(),
            handshake_timeout: None,
        }
        .resolve(upstream)
    }
}

impl RelayArgs {
    /// Resolves the flags into the listen address and the library config.
    pub fn resolve(&self) -> Result<(Endpoint, ListenOptions, RelayConfig)> {
        let scheme = |tls: bool| if tls { Scheme::Tls } else { Scheme::Tcp };
        let listen = Endpoint::parse_with_default(&self.listen, scheme(self.tls.tls))?;
        let upstream =
            Endpoint::parse_with_default(&self.upstream, scheme(self.upstream_tls.upstream_tls))?;
        for endpoint in [&listen, &upstream] {
            if !endpoint.scheme().is_byte_stream() {
                return Err(Error::usage(format!(
                    "relay carries byte streams: {endpoint} is udp, which is not supported"
                )));
            }
        }
        if self.max_conns == 0 {
            return Err(Error::usage("--max-conns must be at least 1"));
        }
        let upstream_tls = self.upstream_tls.resolve(&upstream)?;
        let socket = SocketOptions {
            nodelay: true,
            keepalive: self.keepalive,
        };
        let config = RelayConfig {
            upstream,
            connect: ConnectOptions {
                connect_timeout: self.connect_timeout,
                socket: socket.clone(),
                tls: upstream_tls,
            },
            retry: self.retry.policy(DEFAULT_RETRIES),
            splice: !self.no_splice,
            limits: ServerLimits {
                max_conns: self.max_conns,
                drain_timeout: self.drain_timeout,
                idle_timeout: optional(self.idle_timeout),
                socket,
            },
        };
        let mut listen_options = ListenOptions::default();
        listen_options.tls = self.tls.resolve(&listen)?;
        Ok((listen, listen_options, config))
    }

    /// Runs the command until a signal stops it and the drain is over.
    pub async fn run(&self) -> Result<()> {
        let (listen, listen_options, config) = self.resolve()?;
        let shutdown = super::on_signals()?;
        // Two sockets per connection, and with splice two pipes of two
        // descriptors each.
        let tcp = |e: &Endpoint| e.scheme() == Scheme::Tcp;
        let per_conn = if config.splice && tcp(&listen) && tcp(&config.upstream) {
            6
        } else {
            2
        };
        super::fdlimit::check("--max-conns", self.max_conns, per_conn);
        let listener = Listener::bind_with(&listen, &listen_options).await?;
        announce(
            &listener,
            self.port_file.as_deref(),
            &format!(" (relay to {})", config.upstream),
        )?;
        let report = relay::run(listener, config, shutdown).await?;
        tracing::info!("stopped after {} connection(s)", report.accepted);
        Ok(())
    }
}
