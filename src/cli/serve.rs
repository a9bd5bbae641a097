//! `netcrab serve`: flags, their resolution into a [`ServeConfig`], and the
//! command's start-up (bind, announce, port file, signals).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgGroup, Args};
use netcrab::endpoint::Endpoint;
use netcrab::error::{Error, Result};
use netcrab::serve::hub::{self, DEFAULT_QUEUE, HubConfig, HubMode, HubReport};
use netcrab::serve::stdio::StdioConfig;
use netcrab::serve::{self, Answer, Framing, ServeConfig, ServeService};
use netcrab::server::{self, ServerReport};
use netcrab::service::{NoObserver, Observer};
use netcrab::transport::datagram::{DatagramSocket, bind_unixgram};
use netcrab::transport::{ListenOptions, Listener};

use super::common::{
    FamilyArgs, MAX_CONNS, SchemeArgs, count, duration, duration_up_to, keepalive, optional, size,
};
use super::conn::{AccessArgs, TranscriptArgs, finish};
use super::exec::ExecArgs;
use super::metrics::MetricsArgs;
use super::tls::TlsServeArgs;
use super::ws::WsArgs;

/// The longest `--line-timeout`.
const MAX_LINE_TIMEOUT: Duration = Duration::from_secs(86400);

/// The listen address when none is given (the seed's).
const DEFAULT_ADDR: &str = "127.0.0.1:8080";

pub const EXAMPLES: &str = "\
Examples:
  netcrab serve                         # the seed's server: 127.0.0.1:8080, answers \"hello, world\"
  netcrab serve 127.0.0.1:0 --echo      # an echo server on a free port (printed on stderr)
  netcrab serve :9000 --lines --reply ok  # every interface; answer each line with \"ok\"
  netcrab serve --discard --port-file /tmp/port 127.0.0.1:0
  netcrab serve '[::1]:8080' --echo     # IPv6 loopback
  netcrab serve -6 localhost:8080 --echo  # the same: -6 makes localhost ::1 (-4: 127.0.0.1)
  netcrab serve -u 127.0.0.1:5353 --echo  # UDP: answer each datagram (same as udp://127.0.0.1:5353)
  netcrab serve -U /tmp/echo.sock --echo --mode 660  # Unix socket file, group-writable
  netcrab serve unix:@netcrab --lines   # Linux abstract Unix socket (no file)
  netcrab serve --tls 127.0.0.1:8443 --echo  # TLS with a self-signed certificate; its fingerprint is printed
  netcrab serve tls://:8443 --cert cert.pem --key key.pem --client-ca clients.pem  # mutual TLS
  netcrab serve tls+unix:///run/app.sock --echo   # TLS over a Unix socket
  netcrab serve '[::]:8080' --echo --allow 10.0.0.0/8 --allow ::1 --deny 10.0.0.13  # access rules, checked before TLS
  netcrab serve :9000 --echo --allow-file clients.txt    # one address, block or name a line, # comments
  netcrab serve 127.0.0.1:0 --echo -x session.hex -o session.raw  # transcripts of every connection, with ids
  netcrab serve --tls :8443 --echo --client-pin-sha256 AB:CD:...  # accept only that client certificate
  netcrab serve --tls :8443 --cert c.pem --key k.pem --client-ca ca.pem --client-name backup.internal
  netcrab serve quic://127.0.0.1:4433 --echo      # QUIC: each stream echoed on its own (ALPN netcrab)
  netcrab serve ws://127.0.0.1:8080 --echo --ws-origin https://app.example  # WebSocket echo, one origin allowed
  netcrab serve wss://:8443 --echo --ws-path /ws  # WebSocket over TLS (self-signed), only on /ws
  netcrab serve :9000 --stdio > got.bin < send.bin  # nc -l: one connection; exit code as connect's (0 clean, 6 reset)
  netcrab serve :9000 --stdio -k  # several clients: stdin goes to all, what any client sends goes to stdout
  netcrab serve -u :9000 --stdio  # UDP: datagrams to stdout, stdin to the peer that sent last
  netcrab serve :9000 --broker    # every client's bytes go to all the others (never back to the sender)
  netcrab serve :9000 --chat      # per line, as \"<user3> text\", with join and leave notices
  netcrab serve 127.0.0.1:0 --echo --once  # serve one connection, exit with its outcome (0 clean, 6 reset, ...)
  netcrab serve :8080 --echo --metrics 127.0.0.1:9100  # Prometheus metrics at http://127.0.0.1:9100/metrics
  netcrab serve 127.0.0.1:9000 --exec 'grep -i error'   # a program per connection, the socket as its stdin/stdout
  netcrab serve -U /tmp/sh.sock --sh-exec 'cat; echo done' # run by /bin/sh -c; NETCRAB_PEER_ADDR etc. in its environment
  netcrab serve 127.0.0.1:2222 --pty --exec 'bash -i'     # a pseudo-terminal for an interactive program
  netcrab serve -u 127.0.0.1:5353 --exec ./answer --idle-timeout 30s   # a program per UDP peer
  netcrab serve -U -u /tmp/dgram.sock --echo      # Unix datagram socket (same as unixgram:///tmp/dgram.sock)

Broker and chat clients each have a 256 KiB queue: a client whose queue is full when another's
message arrives is too slow and is disconnected (logged and counted); the others never wait for it.

Under systemd, a socket-activated serve (LISTEN_FDS set) listens on the socket it was passed; ADDR
then gives only the scheme (tls:// for TLS). With NOTIFY_SOCKET set (Type=notify), it sends READY=1
once listening and STOPPING=1 when a signal starts the drain. Examples: contrib/systemd/.";

/// Listen and answer every connection (the seed's server)
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
#[command(group(ArgGroup::new("service").args(["reply", "echo", "discard", "stdio", "broker", "chat", "exec", "sh_exec"])))]
pub struct ServeArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT (every interface), PORT,
    /// tls://HOST:PORT, udp://HOST:PORT, unix:///PATH, unix:@NAME, tls+unix:///PATH, quic://HOST:PORT, ws://HOST:PORT, wss://HOST:PORT or unixgram:///PATH [default: 127.0.0.1:8080]
    pub addr: Option<String>,
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// Permissions of the Unix socket file, in octal (e.g. 660); set before it accepts connections
    #[arg(long, value_name = "OCTAL", value_parser = parse_mode)]
    pub mode: Option<u32>,
    /// Answer every message with TEXT (the default service)
    #[arg(long, value_name = "TEXT", default_value = "hello, world")]
    pub reply: String,
    /// Send back exactly what each connection sends
    #[arg(long)]
    pub echo: bool,
    /// Read and drop everything
    #[arg(long)]
    pub discard: bool,
    /// The netcat listener: the connection's bytes go to stdout, stdin goes to the peer (half-close as connect); serves one connection and exits with connect's exit code for it, unless -k
    #[arg(long)]
    pub stdio: bool,
    /// Broker: every client's bytes go to all the other clients, never back to the sender
    #[arg(long)]
    pub broker: bool,
    /// Chat: each line goes to all the other clients as "<userN> LINE", with join and leave notices (lines up to --max-line)
    #[arg(long)]
    pub chat: bool,
    /// With --stdio: keep listening; stdin goes to every client and what any client sends goes to stdout (the other services always keep listening)
    #[arg(short = 'k', long)]
    pub keep_open: bool,
    /// Serve one connection: stop listening once it is accepted, exit when it ends, with its outcome as exit code (0 clean, else the error's code); not with --broker, --chat or -k
    #[arg(long)]
    pub once: bool,
    /// With --stdio: copy through user space instead of splice(2)/sendfile(2)
    #[arg(long)]
    pub no_splice: bool,
    /// Answer each line instead of each read (replies then end with a newline)
    #[arg(long)]
    pub lines: bool,
    /// With --lines or --chat: the longest line accepted; a longer one gets an error and the connection closes (1 to 1GiB)
    #[arg(long, value_name = "BYTES", value_parser = size(1), default_value = "65536")]
    pub max_line: usize,
    /// Write the bound port to PATH once listening (for scripts; use with port 0)
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// Serve at most N connections at once; at the limit a new connection replaces the one idle longest (2s at least), or waits in the kernel's backlog (1 to 1000000)
    #[arg(long, value_name = "N", value_parser = count(1, MAX_CONNS), default_value = "4096")]
    pub max_conns: usize,
    /// Close connections when nothing moves either way for this long, a blocked write included (0: never)
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "5m")]
    pub idle_timeout: Duration,
    /// With --lines: a line must end within this long of its first byte, or the connection gets an error and closes (0: never; at most 1d)
    #[arg(long, value_name = "DURATION", value_parser = duration_up_to(MAX_LINE_TIMEOUT), default_value = "30s")]
    pub line_timeout: Duration,
    /// On SIGINT/SIGTERM, close idle connections at once and let those in the middle of a message finish for this long, then close them
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub drain_timeout: Duration,
    /// Enable TCP keepalive probes after this much idle time (1s to 32767s)
    #[arg(long, value_name = "DURATION", value_parser = keepalive())]
    pub keepalive: Option<Duration>,
    /// Every connection starts with a PROXY protocol header (v1 or v2, from HAProxy or relay --send-proxy): log the client address it carries; a connection without a valid one is closed
    #[arg(long)]
    pub accept_proxy: bool,
    /// With --accept-proxy: close a connection whose header has not arrived within this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "5s", requires = "accept_proxy")]
    pub proxy_header_timeout: Duration,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub tls: TlsServeArgs,
    #[command(flatten)]
    pub access: AccessArgs,
    #[command(flatten)]
    pub transcript: TranscriptArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
}

impl ServeArgs {
    /// Resolves the flags into the listen address, its options and the
    /// library config.
    pub fn resolve(&self) -> Result<(Endpoint, ListenOptions, ServeConfig)> {
        let endpoint = match &self.addr {
            Some(addr) => self.scheme.parse(addr, self.tls.tls)?,
            None if self.scheme.unix => {
                return Err(Error::usage(
                    "-U needs a socket path, as in -U /tmp/app.sock",
                ));
            }
            None => self.scheme.parse(DEFAULT_ADDR, self.tls.tls)?,
        };
        if self.mode.is_some() && endpoint.unix_addr().is_none() {
            return Err(Error::usage("--mode applies only to unix socket files"));
        }
        let mut listen = ListenOptions::default();
        listen.tls = self.tls.resolve(&endpoint)?;
        listen.unix_mode = self.mode;
        listen.ws = self.ws.resolve(&[&endpoint], self.tls.handshake_timeout)?;
        listen.family = self.family.check(&endpoint)?;
        let service = if self.echo {
            Answer::Echo
        } else if self.discard {
            Answer::Discard
        } else {
            Answer::Reply(self.reply.as_bytes().to_vec())
        };
        self.check_modes(&endpoint)?;
        if self.lines && self.max_line == 0 {
            return Err(Error::usage("--max-line must be at least 1"));
        }
        let mut config = ServeConfig::default();
        config.log_data = matches!(service, Answer::Reply(_));
        config.service = service;
        config.framing = if self.lines {
            Framing::Lines {
                max_line: self.max_line,
            }
        } else {
            Framing::Reads
        };
        config.line_timeout = optional(self.line_timeout);
        config.limits.max_conns = self.max_conns;
        config.limits.drain_timeout = self.drain_timeout;
        config.limits.idle_timeout = optional(self.idle_timeout);
        config.limits.socket.nodelay = true;
        config.limits.socket.keepalive = self.keepalive;
        config.limits.accept_proxy = self.accept_proxy.then_some(self.proxy_header_timeout);
        config.limits.once = self.once;
        if endpoint.scheme().is_datagram() {
            let rules = !self.access.allow.is_empty()
                || !self.access.allow_file.is_empty()
                || !self.access.deny.is_empty()
                || !self.access.deny_file.is_empty();
            if rules || self.transcript.is_wanted() || self.metrics.metrics.is_some() {
                return Err(Error::usage(
                    "--allow, --deny, --output, --hex-dump and --metrics apply to stream listeners (tcp, tls, unix), not udp or unixgram",
                ));
            }
        }
        self.metrics.endpoint()?;
        Ok((endpoint, listen, config))
    }

    /// Runs the command until a signal stops it and the drain is over.
    pub async fn run(&self) -> Result<()> {
        let (endpoint, listen, mut config) = self.resolve()?;
        if let Some(wanted) = self.exec.resolve()? {
            return super::exec::serve(self, endpoint, listen, config, wanted).await;
        }
        let shutdown = super::on_signals()?;
        if endpoint.scheme().is_datagram() {
            let socket = self.bind_datagrams(&endpoint).await?;
            return self.run_udp(socket, config, shutdown).await;
        }
        config.limits.access = self.access.build(&endpoint).await?;
        // A socket per connection.
        super::fdlimit::check("--max-conns", self.max_conns, 1);
        let listener = super::systemd::listen(&endpoint, &listen).await?;
        config.transcript = self.transcript.start(true)?;
        let transcript = config.transcript.clone();
        let metrics = self.metrics.start("serve").await?;
        announce(&listener, self.port_file.as_deref(), "")?;
        let _stopping = super::systemd::notify_ready(&shutdown);
        let result = match &metrics {
            Some(metrics) => {
                self.serve_observed(&endpoint, listener, config, shutdown, metrics.observer())
                    .await
            }
            None => {
                self.serve_observed(&endpoint, listener, config, shutdown, NoObserver)
                    .await
            }
        };
        finish(transcript.as_ref());
        let report = result?;
        if report.slow > 0 {
            tracing::info!(
                "{} slow client(s) disconnected for a full queue",
                report.slow
            );
        }
        stopped(&report.server);
        once_outcome(report.server)
    }
}

impl ServeArgs {
    /// Runs the service the flags chose on `listener`, telling `observer`.
    async fn serve_observed<O: Observer>(
        &self,
        endpoint: &Endpoint,
        listener: Listener,
        config: ServeConfig,
        shutdown: tokio_util::sync::CancellationToken,
        observer: O,
    ) -> Result<HubReport> {
        if self.stdio {
            let stdio = self.stdio_config(endpoint, &config);
            serve::stdio::run_observed(listener, stdio, shutdown, observer).await
        } else if self.broker || self.chat {
            hub::run_observed(listener, self.hub_config(&config), shutdown, observer).await
        } else {
            let limits = config.limits.clone();
            let service = ServeService::new(config);
            server::run_observed(listener, &limits, shutdown, service, observer)
                .await
                .map(|server| HubReport {
                    server,
                    ..HubReport::default()
                })
        }
    }

    /// Rejects combinations of --stdio, --broker, --chat, --once and -k
    /// that mean nothing.
    fn check_modes(&self, endpoint: &Endpoint) -> Result<()> {
        let hub = self.broker || self.chat;
        if self.once && hub {
            return Err(Error::usage(
                "--once makes no sense with --broker or --chat: they join several clients",
            ));
        }
        if self.once && self.keep_open {
            return Err(Error::usage(
                "--once and -k/--keep-open contradict each other",
            ));
        }
        if self.lines && (self.stdio || hub) {
            return Err(Error::usage(
                "--lines applies to --reply, --echo and --discard (--chat is per line already)",
            ));
        }
        if (self.stdio || hub) && self.transcript.is_wanted() {
            return Err(Error::usage(
                "--output and --hex-dump apply to --reply, --echo and --discard",
            ));
        }
        if self.no_splice && !self.stdio {
            return Err(Error::usage("--no-splice applies to --stdio"));
        }
        if endpoint.scheme().is_datagram() {
            if hub {
                return Err(Error::usage(
                    "--broker and --chat need connections (tcp, tls, unix), not udp",
                ));
            }
            if self.once {
                return Err(Error::usage(
                    "--once needs a connection to complete, and udp has none",
                ));
            }
        }
        Ok(())
    }

    /// `--stdio`'s configuration.
    fn stdio_config(&self, endpoint: &Endpoint, config: &ServeConfig) -> StdioConfig {
        StdioConfig {
            endpoint: endpoint.clone(),
            splice: !self.no_splice,
            keep_open: self.keep_open,
            limits: config.limits.clone(),
        }
    }

    /// `--broker`'s or `--chat`'s configuration.
    fn hub_config(&self, config: &ServeConfig) -> HubConfig {
        HubConfig {
            mode: if self.chat {
                HubMode::Chat {
                    max_line: self.max_line,
                }
            } else {
                HubMode::Broker
            },
            limits: config.limits.clone(),
            queue: DEFAULT_QUEUE,
        }
    }

    /// Binds a datagram socket (UDP or unixgram), writes the port file and
    /// says where it listens.
    pub(super) async fn bind_datagrams(&self, endpoint: &Endpoint) -> Result<DatagramSocket> {
        let socket = match (endpoint.host_port(), endpoint.unix_addr()) {
            (Some(hp), _) => netcrab::transport::udp::bind_udp(hp, self.family.family())
                .await?
                .into(),
            (None, Some(addr)) => bind_unixgram(addr, self.mode).await?,
            (None, None) => return Err(Error::usage(format!("cannot listen on {endpoint}"))),
        };
        let local = socket
            .local_display()
            .map_err(|e| Error::io("read the bound address", e))?;
        if let (Some(path), Some(port)) = (&self.port_file, socket.port()) {
            write_port_file(path, port)?;
        }
        tracing::info!("listening on {local}");
        Ok(socket)
    }

    /// Serves datagrams: UDP is not a stream, so it has its own loop.
    async fn run_udp(
        &self,
        socket: DatagramSocket,
        config: ServeConfig,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<()> {
        let _stopping = super::systemd::notify_ready(&shutdown);
        let report = if self.stdio {
            serve::udp_stdio::run(socket, shutdown).await?
        } else {
            serve::udp::run(socket, config, shutdown).await?
        };
        let dropped = match report.oversized {
            0 => String::new(),
            n => format!(", {n} too large for a datagram dropped"),
        };
        tracing::info!(
            "stopped after {} datagram(s) received, {} sent{dropped}",
            report.received,
            report.sent
        );
        Ok(())
    }
}

/// Logs how many connections a server took, refused and evicted.
pub(super) fn stopped(report: &ServerReport) {
    let denied = match report.denied {
        0 => String::new(),
        n => format!(", {n} denied by the access rules"),
    };
    let evicted = match report.evicted {
        0 => String::new(),
        n => format!(", {n} closed at the connection limit to make room"),
    };
    tracing::info!(
        "stopped after {} connection(s){denied}{evicted}",
        report.accepted
    );
}

/// The exit of a server: with `--once`, the failure of its one connection
/// as the error (so its exit code); otherwise success.
pub(super) fn once_outcome(report: ServerReport) -> Result<()> {
    match report.failure {
        Some(failure) => Err(failure.into_error()),
        None => Ok(()),
    }
}

/// Parses `--mode`: permission bits in octal, as chmod takes them.
fn parse_mode(s: &str) -> std::result::Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if mode <= 0o7777 => Ok(mode),
        _ => Err(format!(
            "{s:?} is not an octal mode from 0 to 7777 (e.g. 600, 660)"
        )),
    }
}

/// Announces a bound listener on stderr: a TLS listener's certificate
/// first, then the port file, then `listening on ADDR{suffix}` last, so
/// whoever waits for that line has everything else.
pub(super) fn announce(listener: &Listener, port_file: Option<&Path>, suffix: &str) -> Result<()> {
    let local = listener
        .endpoint()
        .map_err(|e| Error::io("read the bound address", e))?;
    if let Some(tls) = listener.tls() {
        if let Some(names) = tls.self_signed_names() {
            tracing::info!(
                "tls: generated a self-signed certificate for {}",
                names.join(", ")
            );
        }
        tracing::info!("tls certificate sha256 fingerprint: {}", tls.fingerprint());
    }
    if let (Some(path), Some(port)) = (port_file, listener.port()) {
        write_port_file(path, port)?;
    }
    tracing::info!("listening on {local}{suffix}");
    Ok(())
}

/// Writes `port` and a newline to `path` atomically (a reader never sees a
/// partial number).
pub(super) fn write_port_file(path: &Path, port: u16) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let context = format!("write port file {}", path.display());
    std::fs::write(&tmp, format!("{port}\n")).map_err(|e| Error::io(&context, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(&context, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0600"), Ok(0o600));
        assert_eq!(parse_mode("0o755"), Ok(0o755));
        assert!(parse_mode("8").is_err());
        assert!(parse_mode("17777").is_err());
        assert!(parse_mode("rw").is_err());
    }
}
