//! `netcrab serve`: flags, their resolution into a [`ServeConfig`], and the
//! command's start-up (bind, announce, port file, signals).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgGroup, Args};
use netcrab::endpoint::Endpoint;
use netcrab::error::{Error, Result};
use netcrab::serve::{self, Framing, ServeConfig, Service};
use netcrab::server::ServerLimits;
use netcrab::transport::{ListenOptions, Listener, SocketOptions};

use super::common::{optional, parse_duration};
use super::tls::{self, TlsServeArgs};

const EXAMPLES: &str = "\
Examples:
  netcrab serve                         # the seed's server: 127.0.0.1:8080, answers \"hello, world\"
  netcrab serve 127.0.0.1:0 --echo      # an echo server on a free port (printed on stderr)
  netcrab serve :9000 --lines --reply ok  # every interface; answer each line with \"ok\"
  netcrab serve --discard --port-file /tmp/port 127.0.0.1:0
  netcrab serve --tls 127.0.0.1:8443 --echo  # TLS with a self-signed certificate; its fingerprint is printed
  netcrab serve tls://:8443 --cert cert.pem --key key.pem --client-ca clients.pem  # mutual TLS";

/// Listen and answer every connection (the seed's server)
#[derive(Debug, Args)]
#[command(after_help = EXAMPLES)]
#[command(group(ArgGroup::new("service").args(["reply", "echo", "discard"])))]
pub struct ServeArgs {
    /// Address to listen on: HOST:PORT, [IPV6]:PORT, :PORT (every interface) or PORT
    #[arg(default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Answer every message with TEXT (the default service)
    #[arg(long, value_name = "TEXT", default_value = "hello, world")]
    pub reply: String,
    /// Send back exactly what each connection sends
    #[arg(long)]
    pub echo: bool,
    /// Read and drop everything
    #[arg(long)]
    pub discard: bool,
    /// Answer each line instead of each read (replies then end with a newline)
    #[arg(long)]
    pub lines: bool,
    /// With --lines: the longest line accepted; a longer one gets an error and the connection closes
    #[arg(long, value_name = "BYTES", default_value_t = 65536)]
    pub max_line: usize,
    /// Write the bound port to PATH once listening (for scripts; use with port 0)
    #[arg(long, value_name = "PATH")]
    pub port_file: Option<PathBuf>,
    /// Serve at most N connections at once; more wait in the kernel's backlog, unaccepted, until one closes
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_conns: usize,
    /// Close connections that send nothing for this long (0: never)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub idle_timeout: Duration,
    /// On SIGINT/SIGTERM, let open connections finish for this long, then close them
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub drain_timeout: Duration,
    /// Enable TCP keepalive probes after this much idle time
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub keepalive: Option<Duration>,
    #[command(flatten)]
    pub tls: TlsServeArgs,
}

impl ServeArgs {
    /// Resolves the flags into the listen address, its options and the
    /// library config.
    pub fn resolve(&self) -> Result<(Endpoint, ListenOptions, ServeConfig)> {
        let endpoint: Endpoint = tls::endpoint(&self.addr, self.tls.tls)?;
        let mut listen = ListenOptions::default();
        listen.tls = self.tls.resolve(&endpoint)?;
        let service = if self.echo {
            Service::Echo
        } else if self.discard {
            Service::Discard
        } else {
            Service::Reply(self.reply.as_bytes().to_vec())
        };
        if self.lines && self.max_line == 0 {
            return Err(Error::usage("--max-line must be at least 1"));
        }
        if self.max_conns == 0 {
            return Err(Error::usage("--max-conns must be at least 1"));
        }
        let config = ServeConfig {
            log_data: matches!(service, Service::Reply(_)),
            service,
            framing: if self.lines {
                Framing::Lines {
                    max_line: self.max_line,
                }
            } else {
                Framing::Reads
            },
            idle_timeout: optional(self.idle_timeout),
            limits: ServerLimits {
                max_conns: self.max_conns,
                drain_timeout: self.drain_timeout,
                socket: SocketOptions {
                    nodelay: true,
                    keepalive: self.keepalive,
                },
            },
        };
        Ok((endpoint, listen, config))
    }

    /// Runs the command until a signal stops it and the drain is over.
    pub async fn run(&self) -> Result<()> {
        let (endpoint, listen, config) = self.resolve()?;
        let shutdown = netcrab::shutdown::on_signals()?;
        let listener = Listener::bind_with(&endpoint, &listen).await?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("read the bound address", e))?;
        if let Some(tls) = listener.tls() {
            // Before "listening on", so whoever waits for that line has both.
            if let Some(names) = tls.self_signed_names() {
                tracing::info!(
                    "tls: generated a self-signed certificate for {}",
                    names.join(", ")
                );
            }
            tracing::info!("tls certificate sha256 fingerprint: {}", tls.fingerprint());
        }
        tracing::info!("listening on {local}");
        if let (Some(path), Some(port)) = (&self.port_file, listener.port()) {
            write_port_file(path, port)?;
        }
        let report = serve::run(listener, config, shutdown).await?;
        tracing::info!("stopped after {} connection(s)", report.accepted);
        Ok(())
    }
}

/// Writes `port` and a newline to `path` atomically (a reader never sees a
/// partial number).
fn write_port_file(path: &Path, port: u16) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let context = format!("write port file {}", path.display());
    std::fs::write(&tmp, format!("{port}\n")).map_err(|e| Error::io(&context, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(&context, e))
}
