//! netcrab: serve, connect, relay, wait for and benchmark services over TCP,
//! TLS, UDP and Unix sockets (TLS over Unix sockets too), with retries and
//! clear errors built in.
//!
//! The library holds everything the `netcrab` binary does, so commands can
//! be run and tested in-process. Every command is a listening side and/or a
//! connecting side joined by a service: [`endpoint`] parses addresses,
//! [`transport`] turns them into listeners and streams, [`server::run`]
//! runs any [`Service`](service::Service) on the connections a listener
//! accepts, [`serve`], [`connect`], [`relay`], [`proxy_server`], [`wait`],
//! [`scan`] and [`bench`](mod@bench) are the commands, [`retry`] and
//! [`error`] carry the seed's error handling and retry mechanism.
//! `docs/ARCHITECTURE.md` has the code map, the invariants, and how to add
//! a service or a transport.
//!
//! The crate's `examples/` show the library embedded:
//! `custom_service.rs` (a server with a service of its own, about 40
//! lines), `embedded_relay.rs` (`relay` inside a tokio program with its own
//! shutdown) and `client.rs` (a client built from the connect chain).
//!
//! # Layout
//!
//! | module | holds |
//! |---|---|
//! | [`endpoint`] | address parsing (pure, no I/O), the table of schemes ([`SCHEMES`](endpoint::SCHEMES): each scheme's base socket, layers and default port) and name resolution |
//! | [`transport`] | the connect chain ([`Connector`](transport::Connector): dial the base with Happy Eyeballs, then each layer), [`Listener`](transport::Listener) (bind, accept, then each layer's handshake in the connection's task), [`Stream`](transport::Stream) (concrete TCP, Unix and TLS-over-TCP variants; [`Boxed`](transport::Stream::Boxed) for other compositions such as TLS over a Unix socket, and QUIC streams), the TLS layer, the WebSocket layer (`ws`: the upgrade, messages as a byte stream, close frames as half-close), QUIC (quinn: one stream is one connection), UDP sockets |
//! | [`error`] | error kinds, messages and exit codes (it knows no transport: a layer hands over the errors it classified inside the I/O error) |
//! | [`retry`] | the retry policy (pure schedule) and the retry driver |
//! | `deadline` (internal) | saturating deadlines: a huge configured duration never panics |
//! | [`service`] | the service seam: the [`Service`](service::Service) trait, [`Conn`](service::Conn) (stream, peer, shutdown, deadlines, progress clock, observer), [`Observer`](service::Observer) |
//! | [`server`] | the one accept loop, generic over the service and knowing none: connection limit (evicting the longest-idle connection for services that ask), access rules, PROXY protocol headers, accept backoff, shutdown (connections idle between messages close at once, the others drain) |
//! | [`pipe`] | the bidirectional copy any service can use: for TCP to TCP on Linux a copy while messages are small and splice(2) once a direction turns bulk, a user-space copy otherwise (pooled buffers), half-close; with faults, a delay queue, bandwidth pacer and slicer for the faulted direction |
//! | [`faults`] | fault injection for relay: the fault keys and their one parser (flags, JSON, TOML), datagram verdicts (pure), the faults in force and live connections, the `--control` HTTP API |
//! | [`metrics`] | Prometheus metrics (`--metrics`): the counters, the [`Observer`](service::Observer) that feeds them, the `/metrics` HTTP endpoint (pure request parsing and format negotiation) |
//! | [`access`] | allow/deny rules (addresses, CIDR blocks, names): parsing and matching (pure), resolution at start |
//! | [`transcript`] | `-o`/`-x` transcripts: a recording stream wrapper and a writer thread behind a bounded queue |
//! | [`serve`] | reply, echo, discard and `--lines` as a service ([`ServeService`](serve::ServeService)), and per datagram over UDP ([`serve::udp`]); `--stdio` ([`serve::stdio`], [`serve::udp_stdio`]); broker, chat and `--stdio -k` on one hub of bounded per-client queues ([`serve::hub`]) |
//! | [`exec`] | `--exec`/`--sh-exec`: a program per connection as a service ([`ExecService`](exec::ExecService)), for `connect` too; the child's environment, pipes or pseudo-terminal, SIGTERM/SIGKILL and reaping; per peer over datagrams ([`exec::udp`]) |
//! | [`connect`] | the client: send-and-print, the netcat pipe (zero-copy on Linux), UDP datagrams |
//! | [`relay`] | port forwarding as a service ([`RelayService`](relay::RelayService)): connect upstream, then [`pipe`]; UDP to UDP with a session per client ([`relay::udp`]) |
//! | [`proxy_server`] | `netcrab proxy`: SOCKS5 and HTTP CONNECT on one port (pure parsers, access rules), then [`pipe`] |
//! | [`wait`] | waiting until services accept connections (or stop), or answer an HTTP `GET` ([`wait::http`]) |
//! | [`scan`] | the TCP connect scan: ports and hosts (CIDR) parsed and capped, probes with a concurrency limit |
//! | [`bench`](mod@bench) | the load generator: plan, pacing, one generic worker, report, SVG plots, HTML report, live view, CPU-time probes (`getrusage`, `/proc`) |
//! | [`stats`] | latency histograms, error counts by kind (pure) |
//! | [`systemd`] | socket activation (inherited listeners) and sd_notify readiness, without libsystemd |
//! | [`settings`] | the settings messages refer to ([`Setting`](settings::Setting)), spelled as the front end registers them (the CLI: as flags); the library never spells a flag itself |
//! | [`shutdown`] | SIGINT/SIGTERM: a token for the first signal, an exit request for a second (the library never exits the process) |
//! | [`tls`] | TLS options, rustls configurations, certificates, pinning, TLS error messages |
//! | [`escape`] | escaping peer data for logs |
//! | [`proxy_protocol`] | HAProxy's PROXY protocol v1/v2: encoding (relay `--send-proxy`), parsing (pure), reading a header on accept (`--accept-proxy`) |
//! | [`proxy`] | the proxy client: proxy URLs, SOCKS4/4a/5 and HTTP CONNECT codecs (pure), the chain run as a layer of the connect chain |
//!
//! The command-line interface (clap) lives in the binary's `cli` module;
//! the library never sees it.
//!
//! # Example
//!
//! ```no_run
//! use netcrab::{serve, transport::Listener};
//! use tokio_util::sync::CancellationToken;
//!
//! # async fn demo() -> netcrab::error::Result<()> {
//! let listener = Listener::bind(&"127.0.0.1:0".parse()?).await?;
//! let shutdown = CancellationToken::new();
//! serve::run(listener, serve::ServeConfig::default(), shutdown).await?;
//! # Ok(())
//! # }
//! ```

#![deny(unreachable_pub)]

pub mod access;
pub mod bench;
pub mod connect;
pub(crate) mod deadline;
pub mod endpoint;
pub mod error;
pub mod escape;
pub mod exec;
pub mod faults;
pub mod metrics;
pub mod pipe;
pub mod proxy;
pub mod proxy_protocol;
pub mod proxy_server;
pub mod relay;
pub mod retry;
pub mod scan;
pub mod serve;
pub mod server;
pub mod service;
pub mod settings;
pub mod shutdown;
pub mod stats;
#[cfg(target_os = "linux")]
pub mod systemd;
pub mod tls;
pub mod transcript;
pub mod transport;
pub mod wait;
