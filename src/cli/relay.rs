//! `netcrab relay`: flags, their resolution into a [`RelayConfig`], and the
//! command's start-up (bind, announce, port file, signals).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netcrab::endpoint::{Endpoint, Scheme};
use netcrab::error::{Error, Result};
use netcrab::relay::{self, RelayConfig, RelayService};
use netcrab::server;
use netcrab::transport::{ListenOptions, SocketOptions};

use super::common::{
    FamilyArgs, MAX_CONNS, ProxyArgs, RetryArgs, SourceArgs, count, duration, keepalive, optional,
};
use super::conn::{AccessArgs, TranscriptArgs, finish};
use super::faults::FaultArgs;
use super::metrics::MetricsArgs;
use super::serve::announce;
use super::tls::{TlsConnectArgs, TlsServeArgs};
use super::ws::WsArgs;

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
  netcrab relay 127.0.0.1:8080 internal:80 --proxy socks5h://bastion:1080   # the upstream through a SOCKS5 proxy
  netcrab relay unix:///run/app.sock 127.0.0.1:8080   # a Unix socket in front of a TCP service
  netcrab relay 127.0.0.1:5433 tls+unix:///run/db.sock --upstream-pin-sha256 FINGERPRINT  # TLS over a Unix socket upstream
  netcrab relay '[::]:8080' 127.0.0.1:80 --allow 192.168.0.0/16 --deny-file banned.txt  # access rules
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 -x traffic.hex   # record what clients send and get (no splice then)
  netcrab relay tls://:443 127.0.0.1:8080 --client-pin-sha256 FINGERPRINT  # only that client certificate
  netcrab relay 127.0.0.1:9000 quic://gw.internal:4433 --upstream-ca ca.pem   # a QUIC tunnel: one stream per TCP connection
  netcrab relay quic://:4433 127.0.0.1:22 --cert cert.pem --key key.pem       # ...and its other end
  netcrab relay ws://127.0.0.1:8080 127.0.0.1:5432   # a WebSocket face on a TCP service
  netcrab relay tcp://127.0.0.1:9000 wss://host/tunnel  # and the reverse: a TCP port into a WebSocket
  netcrab relay :8080 10.0.0.2:80 --metrics 127.0.0.1:9100  # Prometheus metrics at http://127.0.0.1:9100/metrics
  netcrab relay udp://127.0.0.1:5353 udp://10.0.0.2:53  # UDP: a session (upstream socket) per client
  netcrab relay udp://:5353 udp://ns:53 --udp-idle 10s --max-conns 10000  # sessions close after 10s idle

Faults (for testing other software; applied upstream to client unless --up or --both):
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --latency 100ms --jitter 10ms --both
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --bandwidth 1MiB/s
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --reset-after 1000 --fault-rate 0.1  # one connection in ten
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --slice 1 --slice-delay 10ms   # one byte at a time
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --blackhole --up               # the upstream never hears
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --faults faults.toml           # kill -HUP re-reads it
  netcrab relay 127.0.0.1:7000 127.0.0.1:8080 --control 127.0.0.1:7001
  curl -X PUT 127.0.0.1:7001/faults -d '{\"latency\": \"100ms\", \"direction\": \"both\"}'
  curl 127.0.0.1:7001/connections; curl -X DELETE 127.0.0.1:7001/faults
A change of faults applies to connections accepted after it; open connections keep theirs.

Under systemd, a socket-activated relay (LISTEN_FDS set) listens on the socket it was passed; LISTEN
then gives only the scheme (tls:// for termination). With NOTIFY_SOCKET set (Type=notify), it sends
READY=1 once listening and STOPPING=1 when a signal starts the drain. Examples: contrib/systemd/.";

/// Accept connections and relay each to an upstream (a port forwarder)
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct RelayArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT (every interface), PORT, or any stream endpoint (tls://, unix://, tls+unix://, quic://, ws://, wss://); or udp://HOST:PORT with a udp:// UPSTREAM
    pub listen: String,
    /// Address to relay each connection (udp: each client's datagrams) to
    pub upstream: String,
    /// Write the bound port to PATH once listening (for scripts; use with port 0)
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// Serve one connection: stop listening once it is accepted, exit when it ends, with its outcome as exit code (0 clean, else the error's code)
    #[arg(long)]
    pub once: bool,
    /// Relay at most N connections at once; more wait in the kernel's backlog, unaccepted, until one closes (1 to 1000000). For udp: at most N sessions; a new client's datagrams are then dropped and counted
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
    /// -4/-6: both the listening side and the upstream
    #[command(flatten)]
    pub family: FamilyArgs,
    /// -s/-p: the upstream connections' source (with -p, --max-conns must be 1)
    #[command(flatten)]
    pub source: SourceArgs,
    /// Every accepted connection starts with a PROXY protocol header (v1 or v2): log the client address it carries (and pass it on with --send-proxy); a connection without a valid one is closed
    #[arg(long)]
    pub accept_proxy: bool,
    /// With --accept-proxy: close a connection whose header has not arrived within this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "5s", requires = "accept_proxy")]
    pub proxy_header_timeout: Duration,
    /// Tell the upstream the client's address: send a PROXY protocol header (v1: text, v2: binary) before the client's first byte
    #[arg(long, value_name = "VERSION")]
    pub send_proxy: Option<netcrab::proxy_protocol::Version>,
    /// Upstream connection retries (default: --retry 2)
    #[command(flatten)]
    pub retry: RetryArgs,
    /// Proxies on the way to the upstream
    #[command(flatten)]
    pub proxy: ProxyArgs,
    /// TLS on the listening side (termination)
    #[command(flatten)]
    pub tls: TlsServeArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    /// TLS towards the upstream (origination)
    #[command(flatten)]
    pub upstream_tls: UpstreamTlsArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub transcript: TranscriptArgs,
    #[command(flatten)]
    pub faults: Box<FaultArgs>,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub udp: super::relay_udp::UdpRelayArgs,
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
    pub(super) fn resolve(&self, upstream: &Endpoint) -> Result<netcrab::tls::TlsClientOptions> {
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
                    "{flag} needs a tls:// upstream (or tls+unix://, quic://, or --upstream-tls), not {upstream}"
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
        let ws = self
            .ws
            .resolve(&[&listen, &upstream], self.tls.handshake_timeout)?;
        let family = self.family.check(&listen)?;
        self.family.check(&upstream)?;
        if self.source.source_port.is_some() && self.max_conns != 1 {
            return Err(Error::usage(
                "--source-port needs --max-conns 1: two upstream connections cannot share a source port",
            ));
        }
        let mut socket = SocketOptions::default();
        socket.nodelay = true;
        socket.keepalive = self.keepalive;
        let mut config = RelayConfig::new(upstream);
        config.connect.connect_timeout = self.connect_timeout;
        config.connect.socket = socket.clone();
        config.connect.tls = upstream_tls;
        config.connect.family = family;
        config.connect.source = self.source.source();
        config.connect.proxy = self.proxy.resolve()?;
        config.connect.ws = ws.clone();
        config.retry = self.retry.policy(DEFAULT_RETRIES);
        config.splice = !self.no_splice;
        config.send_proxy = self.send_proxy;
        config.limits.max_conns = self.max_conns;
        config.limits.drain_timeout = self.drain_timeout;
        config.limits.idle_timeout = optional(self.idle_timeout);
        config.limits.socket = socket;
        config.limits.accept_proxy = self.accept_proxy.then_some(self.proxy_header_timeout);
        config.limits.once = self.once;
        config.faults = self.faults.resolve()?;
        let mut listen_options = ListenOptions::default();
        listen_options.tls = self.tls.resolve(&listen)?;
        listen_options.family = family;
        listen_options.ws = ws;
        self.metrics.endpoint()?;
        Ok((listen, listen_options, config))
    }

    /// Runs the command until a signal stops it and the drain is over.
    pub async fn run(&self) -> Result<()> {
        if let Some((listen, upstream)) = super::relay_udp::endpoints(self)? {
            return super::relay_udp::run(self, &listen, &upstream).await;
        }
        let (listen, listen_options, mut config) = self.resolve()?;
        let shutdown = super::on_signals()?;
        config.limits.access = self.access.build(&listen).await?;
        // Two sockets per connection, and with splice two pipes of two
        // descriptors each.
        let tcp = |e: &Endpoint| e.scheme() == Scheme::Tcp;
        let spliced = config.splice && !self.transcript.is_wanted();
        let per_conn = if spliced && tcp(&listen) && tcp(&config.upstream) {
            6
        } else {
            2
        };
        super::fdlimit::check("--max-conns", self.max_conns, per_conn);
        let listener = super::systemd::listen(&listen, &listen_options).await?;
        if let Some(state) = &config.faults {
            self.faults.start(state, &shutdown).await?;
        }
        config.transcript = self.transcript.start(true)?;
        let transcript = config.transcript.clone();
        let metrics = self.metrics.start("relay").await?;
        announce(
            &listener,
            self.port_file.as_deref(),
            &format!(" (relay to {})", config.upstream),
        )?;
        let _stopping = super::systemd::notify_ready(&shutdown);
        let result = match &metrics {
            Some(metrics) => {
                let limits = config.limits.clone();
                match RelayService::new(config) {
                    Ok(service) => {
                        let observer = metrics.observer();
                        server::run_observed(listener, &limits, shutdown, service, observer).await
                    }
                    Err(err) => Err(err),
                }
            }
            None => relay::run(listener, config, shutdown).await,
        };
        finish(transcript.as_ref());
        let report = result?;
        super::serve::stopped(&report);
        super::serve::once_outcome(report)
    }
}
