//! `netcrab proxy`: flags, their resolution into a [`ProxyConfig`], and the
//! command's start-up (bind, the warning for an open proxy, announce,
//! signals).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use netcrab::endpoint::{Addr, Endpoint, Host, Scheme};
use netcrab::error::{Error, Result};
use netcrab::proxy_server::rules::{Rule, Rules};
use netcrab::proxy_server::{self, Credentials, ProxyConfig, ProxyService};
use netcrab::server;
use netcrab::transport::{ListenOptions, Listener, SocketOptions};

use super::common::{MAX_CONNS, count, duration, keepalive, optional, size};
use super::metrics::MetricsArgs;
use super::serve::announce;
use super::tls::TlsServeArgs;

/// The time a client has for its handshake when `--handshake-timeout` is
/// not given.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The examples shown after the help.
pub const EXAMPLES: &str = "\
Examples:
  netcrab proxy 127.0.0.1:1080                       # SOCKS5, SOCKS4/4a and HTTP CONNECT on one port
  curl --socks5-hostname 127.0.0.1:1080 https://example.com/   # use it as a SOCKS5 proxy
  curl -x http://127.0.0.1:1080 https://example.com/           # or as an HTTP proxy (CONNECT)
  NETCRAB_PROXY_AUTH=alice:s3cret netcrab proxy :1080 --deny-dest 10.0.0.0/8 --deny-dest 127.0.0.0/8
  netcrab proxy 127.0.0.1:1080 --allow-dest example.com --allow-dest 192.0.2.0/24
  netcrab proxy 10.0.0.1:3128 --allow 10.0.0.0/24 --auth alice:s3cret   # clients of one subnet only
  netcrab proxy tls://:8443 --cert cert.pem --key key.pem --auth alice:s3cret   # TLS to the proxy (curl -x https://)
  netcrab proxy 127.0.0.1:1080 --metrics 127.0.0.1:9100   # Prometheus metrics at http://127.0.0.1:9100/metrics";

/// A SOCKS5, SOCKS4/4a and HTTP CONNECT forward proxy on one port
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
// One deadline flag for both handshakes: TLS's (with tls://) and the proxy
// protocol's after it.
#[command(mut_arg("handshake_timeout", |a| a.help(
    "Close a client that has not completed its handshake (TLS, then the SOCKS5 greeting, authentication and request, the SOCKS4 request or the HTTP request head) this long after connecting [default: 10s]"
)))]
pub struct ProxyArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT (every interface), PORT, or any stream endpoint (tls://, unix://, tls+unix://)
    pub listen: String,
    /// Require this user name and password (SOCKS5 username/password; HTTP Basic, else 407); each 1 to 255 bytes. Prefer the environment variable: the command line is visible to other users
    #[arg(
        long,
        value_name = "USER:PASSWORD",
        env = "NETCRAB_PROXY_AUTH",
        hide_env_values = true
    )]
    pub auth: Option<String>,
    /// Allow only destinations matching one of these (repeatable): an address, an address block (10.0.0.0/8) or a host name (example.com and the names under it; *.example.com only those under it). Without it every destination is allowed, loopback included
    #[arg(long, value_name = "RULE")]
    pub allow_dest: Vec<String>,
    /// Refuse destinations matching one of these (repeatable; wins over --allow-dest), checked on the requested name and on every address it resolves to
    #[arg(long, value_name = "RULE")]
    pub deny_dest: Vec<String>,
    /// Accept only clients whose address matches one of these (repeatable): an address or an address block
    #[arg(long, value_name = "ADDR")]
    pub allow: Vec<String>,
    /// Refuse clients whose address matches one of these (repeatable; wins over --allow)
    #[arg(long, value_name = "ADDR")]
    pub deny: Vec<String>,
    /// The largest HTTP request head accepted; a longer one gets 431 (1 to 1GiB)
    #[arg(long, value_name = "BYTES", value_parser = size(1), default_value = "8192")]
    pub max_header: usize,
    /// Write the bound port to PATH once listening (for scripts; use with port 0)
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// Every accepted connection starts with a PROXY protocol header (v1 or v2), as sent by a load balancer in front: log and check the client address it carries; a connection without a valid one is closed
    #[arg(long)]
    pub accept_proxy: bool,
    /// With --accept-proxy: close a connection whose header has not arrived within this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "5s", requires = "accept_proxy")]
    pub proxy_header_timeout: Duration,
    /// Serve one connection: stop listening once it is accepted, exit when it ends, with its outcome as exit code (0 clean, else the error's code)
    #[arg(long)]
    pub once: bool,
    /// Serve at most N connections at once; more wait in the kernel's backlog, unaccepted, until one closes (1 to 1000000)
    #[arg(long, value_name = "N", value_parser = count(1, MAX_CONNS), default_value = "1024")]
    pub max_conns: usize,
    /// Close a tunnel when nothing moves in either direction for this long (0: never)
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10m")]
    pub idle_timeout: Duration,
    /// On SIGINT/SIGTERM, let open connections finish for this long, then close them
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub drain_timeout: Duration,
    /// Give up connecting to a destination (name resolution included) after this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub connect_timeout: Duration,
    /// Enable TCP keepalive probes after this much idle time, on both sides (1s to 32767s)
    #[arg(long, value_name = "DURATION", value_parser = keepalive())]
    pub keepalive: Option<Duration>,
    /// Copy through user space even for TCP to TCP (splice(2) is used by default on Linux)
    #[arg(long)]
    pub no_splice: bool,
    /// TLS on the listening side (a proxy reached with https://)
    #[command(flatten)]
    pub tls: TlsServeArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Parses repeated rule flags.
fn rules(flag: &str, allow: &[String], deny: &[String], names: bool) -> Result<Rules> {
    let parse = |list: &[String], flag: String| {
        list.iter()
            .map(|r| Rule::parse(r, names).map_err(|e| Error::usage(format!("{flag}: {e}"))))
            .collect::<Result<Vec<_>>>()
    };
    Ok(Rules {
        allow: parse(allow, format!("--allow{flag}"))?,
        deny: parse(deny, format!("--deny{flag}"))?,
    })
}

impl ProxyArgs {
    /// Resolves the flags into the listen address, its options and the
    /// library config.
    pub fn resolve(&self) -> Result<(Endpoint, ListenOptions, ProxyConfig)> {
        let scheme = if self.tls.tls {
            Scheme::Tls
        } else {
            Scheme::Tcp
        };
        let listen = Endpoint::parse_with_default(&self.listen, scheme)?;
        if !listen.scheme().is_byte_stream() {
            return Err(Error::usage(format!(
                "proxy serves byte streams: {listen} is udp, which is not supported"
            )));
        }
        let auth = self.auth.as_deref().map(Credentials::parse).transpose()?;
        let mut socket = SocketOptions::default();
        socket.nodelay = true;
        socket.keepalive = self.keepalive;
        let mut config = ProxyConfig::default();
        config.auth = auth;
        config.dest = rules("-dest", &self.allow_dest, &self.deny_dest, true)?;
        config.clients = rules("", &self.allow, &self.deny, false)?;
        config.connect.connect_timeout = self.connect_timeout;
        config.connect.socket = socket.clone();
        config.handshake_timeout = self
            .tls
            .handshake_timeout
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        config.max_header = self.max_header;
        config.idle_timeout = optional(self.idle_timeout);
        config.splice = !self.no_splice;
        config.limits.max_conns = self.max_conns;
        config.limits.drain_timeout = self.drain_timeout;
        config.limits.socket = socket;
        config.limits.accept_proxy = self.accept_proxy.then_some(self.proxy_header_timeout);
        // --allow/--deny are the proxy's own client rules.
        config.limits.access = None;
        // The tunnel's idle timeout is the proxy's own (idle_timeout above),
        // applied once the handshake is done.
        config.limits.idle_timeout = None;
        config.limits.once = self.once;
        // --handshake-timeout is TLS's flag, but here it means the proxy
        // handshake as well, so it is not an error without TLS.
        let mut tls = self.tls.clone();
        if !listen.scheme().is_tls() {
            tls.handshake_timeout = None;
        }
        let mut listen_options = ListenOptions::default();
        listen_options.tls = tls.resolve(&listen)?;
        self.metrics.endpoint()?;
        Ok((listen, listen_options, config))
    }

    /// Runs the command until a signal stops it and the drain is over.
    pub async fn run(&self) -> Result<()> {
        let (listen, listen_options, config) = self.resolve()?;
        let shutdown = super::on_signals()?;
        // Two sockets per connection, and with splice two pipes of two
        // descriptors each.
        let per_conn = if config.splice && listen.scheme() == Scheme::Tcp {
            6
        } else {
            2
        };
        super::fdlimit::check("--max-conns", self.max_conns, per_conn);
        let listener = Listener::bind_with(&listen, &listen_options).await?;
        if config.auth.is_none()
            && let Ok(bound) = listener.endpoint()
            && beyond_loopback(&bound)
        {
            tracing::warn!(
                "listening on {bound} beyond loopback without --auth: anyone who can reach it can use this proxy"
            );
        }
        let metrics = self.metrics.start("proxy").await?;
        announce(
            &listener,
            self.port_file.as_deref(),
            " (socks5, socks4 and http connect)",
        )?;
        let report = match &metrics {
            Some(metrics) => {
                let limits = config.limits.clone();
                let service = ProxyService::new(config);
                server::run_observed(listener, &limits, shutdown, service, metrics.observer())
                    .await?
            }
            None => proxy_server::run(listener, config, shutdown).await?,
        };
        tracing::info!("stopped after {} connection(s)", report.accepted);
        super::serve::once_outcome(report)
    }
}

/// Whether a bound endpoint is reachable from other hosts: an IP listener
/// not on a loopback address (Unix sockets are local).
fn beyond_loopback(bound: &Endpoint) -> bool {
    match bound.addr() {
        Addr::HostPort(hp) => match &hp.host {
            Host::Ip(ip) => !is_loopback(*ip),
            Host::Name(_) | Host::Unspecified => true,
        },
        _ => false,
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        IpAddr::V4(v4) => v4.is_loopback(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_listeners_are_told_from_loopback_ones() {
        for (addr, open) in [
            ("127.0.0.1:1", false),
            ("127.5.0.1:1", false),
            ("[::1]:1", false),
            ("[::ffff:127.0.0.1]:1", false),
            ("0.0.0.0:1", true),
            ("[::]:1", true),
            ("192.0.2.1:1", true),
            ("unix:///tmp/p.sock", false),
        ] {
            let e: Endpoint = addr.parse().unwrap();
            assert_eq!(beyond_loopback(&e), open, "{addr}");
        }
    }
}
