//! `netcrab connect`: flags, their resolution into a [`ConnectConfig`], and
//! the command's terminal niceties.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use netcrab::connect::{self, ConnectConfig, DatagramFraming, OneWay};
use netcrab::error::{Error, Result};
use tokio::io::AsyncWriteExt;

use super::common::{
    FamilyArgs, ProxyArgs, RetryArgs, SchemeArgs, SourceArgs, duration, keepalive, optional,
};
use super::conn::{TranscriptArgs, finish};
use super::exec::ExecArgs;
use super::tls::TlsConnectArgs;
use super::ws::WsArgs;

pub const EXAMPLES: &str = "\
Examples:
  netcrab connect 127.0.0.1:8080 --send \"hello, world\"   # the seed's client
  netcrab connect localhost:6379 < commands.txt          # netcat: stdin to the socket, the socket to stdout
  netcrab connect localhost 6379 < commands.txt          # the same, as nc spells it (HOST PORT)
  netcrab connect db:5432 --retry-for 30s --send ''      # wait up to 30s for a server, with backoff
  tar c dir | netcrab connect backup:9000 > reply.txt    # half-closes at stdin EOF, reads until the peer closes
  netcrab connect '[::1]:8080' --send hi                 # IPv6; names with several addresses use Happy Eyeballs
  netcrab connect -u 127.0.0.1:5353 --send ping          # UDP: one datagram, print replies for 1s (--wait)
  printf 'a\nb\n' | netcrab connect udp://127.0.0.1:5353  # UDP: one datagram per line
  netcrab connect -U /tmp/echo.sock --retry-for 10s < req  # Unix socket, waiting for the server to appear
  netcrab connect unix:@netcrab --send hi                # Linux abstract Unix socket
  netcrab connect tls://example.com:443 < request.txt    # TLS, verified against the system's trust store
  netcrab connect --tls 127.0.0.1:8443 --pin-sha256 AB:CD:...  # trust exactly the certificate serve --tls printed
  netcrab connect tls://10.0.0.5:8443 --ca ca.pem --servername api.internal --cert me.pem --key me.key
  netcrab connect tls+unix:///run/app.sock --pin-sha256 FINGERPRINT --send hi   # TLS over a Unix socket (server name: localhost)
  netcrab connect quic://127.0.0.1:4433 --pin-sha256 FINGERPRINT   # one QUIC connection, one stream
  netcrab connect -z 127.0.0.1:22 && echo open           # zero I/O: connect and close; exit 0 open, 4 refused, 5 timed out
  netcrab connect -s 127.0.0.2 -p 40000 127.0.0.1:8080   # connect from 127.0.0.2, port 40000 (busy or foreign: exit 9)
  netcrab connect -6 localhost:8080 --send hi            # IPv6 only: localhost is ::1
  netcrab connect --proxy socks5h://127.0.0.1:9050 example.com:80 < req   # through a SOCKS5 proxy that resolves the name
  netcrab connect --proxy http://u:p@proxy:3128 --proxy socks5://10.0.0.9:1080 db:5432   # a chain: the SOCKS proxy is reached through the HTTP one
  printf 'GET / HTTP/1.0\\nHost: x\\n\\n' | netcrab connect -C example.com:80   # -C: LF becomes CRLF
  netcrab connect 127.0.0.1:8080 -x session.hex -o session.raw < req   # transcripts: hex dump and raw bytes
  netcrab connect --send-only logs:514 < app.log         # never read the socket; done when stdin ends
  netcrab connect --recv-only 127.0.0.1:9000 > dump      # never read stdin; done when the peer closes
  netcrab connect ws://127.0.0.1:8080/chat --ws-text     # WebSocket netcat: each read of stdin is one message
  netcrab connect wss://example.com/feed --ws-protocol v1 --ws-header 'Authorization: Bearer T' --ws-ping 20s
  netcrab connect 127.0.0.1:9000 --sh-exec 'echo hello; cat >&2'   # ncat -e: a program talks to the server
  netcrab connect -U -u /tmp/dgram.sock --send ping       # Unix datagram socket (unixgram://); replies come to a private socket file";

/// Connect, send stdin (or --send TEXT), print what comes back
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
pub struct ConnectArgs {
    /// Address to connect to: HOST:PORT, [IPV6]:PORT, tls://HOST:PORT, udp://HOST:PORT, unix:///PATH, unix:@NAME, tls+unix:///PATH, quic://HOST:PORT, ws://HOST[:PORT][/PATH], wss://HOST[:PORT][/PATH] or unixgram:///PATH
    pub addr: String,
    /// The port, netcat-style (`connect HOST PORT`), for an ADDR written without one
    #[arg(value_name = "PORT")]
    pub port: Option<String>,
    #[command(flatten)]
    pub scheme: SchemeArgs,
    /// UDP: send each read of stdin (up to 65507 bytes) as a datagram, instead of each line
    #[arg(long)]
    pub raw: bool,
    /// Send TEXT instead of reading stdin
    #[arg(long, value_name = "TEXT")]
    pub send: Option<String>,
    /// Do not half-close the connection after sending (some servers close on EOF)
    #[arg(long)]
    pub no_shutdown: bool,
    /// After sending, wait at most this long for the peer to finish (UDP: for replies; default 1s)
    #[arg(long, value_name = "DURATION", value_parser = duration())]
    pub wait: Option<Duration>,
    /// Give up on a connection attempt after this long
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "10s")]
    pub connect_timeout: Duration,
    /// Give up when nothing moves in either direction for this long (0: never)
    #[arg(long, value_name = "DURATION", value_parser = duration(), default_value = "0")]
    pub idle_timeout: Duration,
    /// Enable TCP keepalive probes after this much idle time (1s to 32767s); quic://: PINGs at this interval
    #[arg(long, value_name = "DURATION", value_parser = keepalive())]
    pub keepalive: Option<Duration>,
    /// Copy through user space even where stdin or stdout is a pipe or file (splice(2)/sendfile(2) are used by default on Linux)
    #[arg(long)]
    pub no_splice: bool,
    /// Zero I/O: connect (for TLS, handshake), close, and exit 0 when the port is open (4 refused, 5 timed out, ...)
    #[arg(short = 'z', long = "zero", conflicts_with_all = ["send", "raw", "wait", "idle_timeout", "no_shutdown"])]
    pub zero: bool,
    #[command(flatten)]
    pub family: FamilyArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Turn each LF of stdin (or --send) into CRLF; a CRLF stays as it is
    #[arg(short = 'C', long)]
    pub crlf: bool,
    /// Only send: never read from the connection, and finish when stdin ends
    #[arg(long, conflicts_with = "recv_only")]
    pub send_only: bool,
    /// Only receive: never read stdin (nor half-close); finish when the peer closes
    #[arg(long, conflicts_with_all = ["send", "crlf"])]
    pub recv_only: bool,
    #[command(flatten)]
    pub retry: RetryArgs,
    #[command(flatten)]
    pub proxy: ProxyArgs,
    #[command(flatten)]
    pub tls: TlsConnectArgs,
    #[command(flatten)]
    pub transcript: TranscriptArgs,
    #[command(flatten)]
    pub ws: WsArgs,
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// Runs a `unixgram://` client until it ends or SIGINT/SIGTERM: then its
/// future is dropped first, which removes its private socket file, and the
/// process exits as the signal would have ended it (130, 143).
async fn removing_on_signals<F: std::future::Future>(run: F) -> Result<F::Output> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| Error::io("install SIGINT handler", e))?;
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| Error::io("install SIGTERM handler", e))?;
    let status = tokio::select! {
        output = run => return Ok(output),
        _ = int.recv() => 128 + libc::SIGINT,
        _ = term.recv() => 128 + libc::SIGTERM,
    };
    super::logging::flush();
    std::process::exit(status);
}

impl ConnectArgs {
    /// Resolves the flags into the library config.
    pub fn resolve(&self) -> Result<ConnectConfig> {
        let addr = match &self.port {
            Some(port) if self.scheme.unix => {
                return Err(Error::usage(format!(
                    "a Unix socket has no port: {port:?} after {:?}",
                    self.addr
                )));
            }
            Some(port) => join_host_port(&self.addr, port)?,
            None => self.addr.clone(),
        };
        let endpoint = self.scheme.parse(&addr, self.tls.tls)?;
        let udp = endpoint.scheme().is_datagram();
        if self.raw && !udp {
            return Err(Error::usage("--raw applies only to udp"));
        }
        if udp && !self.proxy.proxy.is_empty() {
            return Err(Error::usage(
                "--proxy applies to tcp and tls addresses, not udp",
            ));
        }
        if udp {
            let given = [
                ("--crlf", self.crlf),
                ("--send-only", self.send_only),
                ("--recv-only", self.recv_only),
                ("--output", self.transcript.output.is_some()),
                ("--hex-dump", self.transcript.hex_dump.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
                return Err(Error::usage(format!(
                    "{flag} applies to stream connections (tcp, tls, unix), not udp"
                )));
            }
        }
        let tls = self.tls.resolve(&endpoint)?;
        let family = self.family.check(&endpoint)?;
        let ws = self.ws.resolve(&[&endpoint], self.tls.handshake_timeout)?;
        let mut config = ConnectConfig::new(endpoint);
        config.options.connect_timeout = self.connect_timeout;
        config.options.socket.nodelay = true;
        config.options.socket.keepalive = self.keepalive;
        config.options.tls = tls;
        config.options.family = family;
        config.options.source = self.source.source();
        if !udp {
            config.options.proxy = self.proxy.resolve()?;
        }
        config.options.ws = ws;
        config.retry = self.retry.policy(0);
        config.send = self.send.as_ref().map(|s| s.as_bytes().to_vec());
        config.shutdown_write = !self.no_shutdown;
        config.wait = self.wait;
        config.idle_timeout = optional(self.idle_timeout);
        config.datagrams = if self.raw {
            DatagramFraming::Chunks
        } else {
            DatagramFraming::Lines
        };
        config.splice = !self.no_splice;
        config.crlf = self.crlf;
        config.one_way = if self.send_only {
            OneWay::SendOnly
        } else if self.recv_only {
            OneWay::RecvOnly
        } else {
            OneWay::Both
        };
        Ok(config)
    }

    /// Runs the command on stdin and stdout.
    pub async fn run(&self) -> Result<()> {
        let mut config = self.resolve()?;
        if let Some(wanted) = self.exec.resolve()? {
            return super::exec::connect(self, &config, wanted).await;
        }
        if self.zero {
            let peer = connect::probe(&config).await?;
            tracing::debug!("{} is open ({peer})", config.endpoint);
            return Ok(());
        }
        config.transcript = self.transcript.start(false)?;
        let result = if config.endpoint.scheme() == netcrab::endpoint::Scheme::Unixgram {
            removing_on_signals(connect::run_stdio(&config)).await?
        } else {
            connect::run_stdio(&config).await
        };
        finish(config.transcript.as_ref());
        let report = result?;
        tracing::debug!(
            "done: sent {} bytes, received {} bytes",
            report.sent,
            report.received
        );
        // A terminal user gets the prompt back on a line of its own; piped
        // output stays byte-exact.
        let unterminated = report.last_byte.is_some_and(|b| b != b'\n');
        if unterminated && !report.output_closed && std::io::stdout().is_terminal() {
            let mut stdout = tokio::io::stdout();
            let _ = stdout.write_all(b"\n").await;
            let _ = stdout.flush().await;
        }
        Ok(())
    }
}

/// `connect HOST PORT` as netcat spells it: the address `HOST:PORT`
/// (`[HOST]:PORT` for an IPv6 literal). HOST must be a bare host, and PORT
/// one port: a range is `netcrab scan`'s.
fn join_host_port(host: &str, port: &str) -> Result<String> {
    if port.contains(['-', ',']) {
        return Err(Error::usage(format!(
            "connect takes one port, not {port:?}; to scan ports: netcrab scan {host} {port}"
        )));
    }
    match port.parse::<u16>() {
        Ok(1..) => {}
        _ => {
            return Err(Error::usage(format!(
                "invalid port {port:?}: expected 1 to 65535"
            )));
        }
    }
    let bare = !host.is_empty() && !host.contains(['/', '@', '[', ']']);
    let literal = host.split('%').next().unwrap_or(host);
    if literal.parse::<std::net::Ipv6Addr>().is_ok() {
        Ok(format!("[{host}]:{port}"))
    } else if bare && !host.contains(':') {
        Ok(format!("{host}:{port}"))
    } else {
        Err(Error::usage(format!(
            "{host:?} already names its port or scheme; give PORT only after a bare host (connect HOST PORT)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::join_host_port;

    #[test]
    fn a_host_and_a_port_make_one_address() {
        assert_eq!(
            join_host_port("localhost", "6379").unwrap(),
            "localhost:6379"
        );
        assert_eq!(join_host_port("127.0.0.1", "80").unwrap(), "127.0.0.1:80");
        assert_eq!(join_host_port("::1", "8080").unwrap(), "[::1]:8080");
        assert_eq!(
            join_host_port("fe80::1%lo", "22").unwrap(),
            "[fe80::1%lo]:22"
        );
    }

    #[test]
    fn a_port_twice_a_range_or_a_bad_port_is_a_usage_error() {
        for (host, port, says) in [
            ("127.0.0.1:80", "80", "already names its port"),
            ("[::1]:80", "80", "already names its port"),
            ("tcp://127.0.0.1", "80", "already names its port"),
            ("127.0.0.1", "20-25", "netcrab scan 127.0.0.1 20-25"),
            ("127.0.0.1", "22,80", "netcrab scan"),
            ("127.0.0.1", "0", "invalid port"),
            ("127.0.0.1", "65536", "invalid port"),
            ("127.0.0.1", "http", "invalid port"),
        ] {
            let err = join_host_port(host, port).unwrap_err();
            assert_eq!(
                err.kind(),
                netcrab::error::ErrorKind::Usage,
                "{host} {port}"
            );
            assert!(err.to_string().contains(says), "{host} {port}: {err}");
        }
    }
}
