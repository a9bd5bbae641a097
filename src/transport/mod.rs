//! Transports: how an [`Endpoint`] becomes a connected byte stream
//! ([`Connector`], [`connect`]) or a listener ([`Listener::bind`]).
//!
//! A transport is a base socket (TCP in `tcp`, Unix in `unix`, QUIC in
//! `quic`, whose streams are the byte streams) with layers
//! over it (TLS in `tls`, WebSocket in `ws`), as the endpoint's row in the scheme table
//! ([`SCHEMES`](crate::endpoint::SCHEMES)) says. Connecting is a chain:
//! resolve and dial the base (Happy Eyeballs over the resolved addresses;
//! the retry policy goes around the whole chain), then run each layer's
//! client side over what the previous step gave. Listening is the same
//! upside down: bind the base, accept, then run each layer's server side in
//! the connection's own task ([`Accepted::handshake`]), never in the accept
//! loop. A layer takes a [`Stream`] and gives one back, so any layer goes
//! over any byte stream: TLS over TCP (`tls://`) and over a Unix socket
//! (`tls+unix://`) are the same code.
//!
//! [`Stream`] keeps concrete variants for the common transports (TCP, Unix,
//! TLS over TCP): their reads and writes dispatch with a `match`, and what
//! only they can do stays reachable (splice(2) needs the TCP socket). Any
//! other composition is [`Stream::Boxed`], a [`Box<dyn AsyncStream>`]; the
//! boxing happens once per connection, after the handshake.
//!
//! [`ConnectOptions`] also carry the address family (`-4`, `-6`: names
//! resolve, and Happy Eyeballs races, within it) and the [`Source`] a
//! connection is made from (`-s`, `-p`: the socket is bound before it
//! connects); [`ListenOptions`] the family to listen in.
//!
//! Opening connections with a retry policy goes through a [`Connector`],
//! which prepares once (TLS trust store, certificates) what every attempt
//! reuses.

mod connector;
pub mod datagram;
#[cfg(target_os = "linux")]
mod gso;
pub mod happy_eyeballs;
mod layer;
mod listen;
mod quic;
mod stream;
mod tcp;
mod tls;
pub mod udp;
mod unix;
mod ws;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use crate::endpoint::{Endpoint, Family, UnixAddr};
use crate::error::{Error, ErrorKind};
use crate::proxy::ProxyOptions;
use crate::tls::{TlsClientOptions, TlsServerOptions};

pub use connector::{Connector, connect};
pub use listen::{Accepted, Listener, LocalAddr};
pub use quic::{DEFAULT_ALPN as QUIC_DEFAULT_ALPN, IDLE_TIMEOUT as QUIC_IDLE_TIMEOUT};
pub use stream::{AsyncStream, Stream};
pub use tcp::{connect_tcp, connect_tcp_addrs, dial};

pub(crate) use tls::client as tls_client;
pub use tls::{TlsOver, TlsStream};
use unix::UnixListener;
pub use ws::{DEFAULT_MAX_MESSAGE, DEFAULT_WS_HANDSHAKE_TIMEOUT, WsOptions, WsStream};

/// Socket options applied to every connected stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SocketOptions {
    /// TCP_NODELAY: on by default, since netcrab's traffic is mostly
    /// request/response and Nagle's algorithm would add latency to it.
    pub nodelay: bool,
    /// TCP keepalive idle time; `None` leaves keepalive off.
    pub keepalive: Option<Duration>,
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            nodelay: true,
            keepalive: None,
        }
    }
}

/// How to open one connection (the retry policy is applied around this).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The time allowed for one connection attempt, resolution included.
    pub connect_timeout: Duration,
    /// Options for the connected socket.
    pub socket: SocketOptions,
    /// How a TLS endpoint (`tls://`, `tls+unix://`) is verified and what it
    /// is offered (ignored for the other transports).
    pub tls: TlsClientOptions,
    /// The address family names resolve to and connections use (`-4`,
    /// `-6`); ignored for Unix sockets.
    pub family: Family,
    /// The local address and port to connect from (`-s`, `-p`); a usage
    /// error for Unix sockets.
    pub source: Source,
    /// The proxies to go through (`--proxy`), for TCP and TLS endpoints;
    /// empty for a direct connection. The first is dialed (with Happy
    /// Eyeballs, under the retry policy), then each handshake runs, under
    /// the connect timeout, before the endpoint's TLS.
    pub proxy: ProxyOptions,
    /// The WebSocket options of a `ws://` or `wss://` endpoint (ignored for
    /// the other transports).
    pub ws: WsOptions,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            connect_timeout: Duration::from_secs(10),
            socket: SocketOptions::default(),
            tls: TlsClientOptions::default(),
            family: Family::Any,
            source: Source::default(),
            proxy: ProxyOptions::default(),
            ws: WsOptions::default(),
        }
    }
}

impl ConnectOptions {
    /// The family to resolve and connect in: [`family`](Self::family)
    /// narrowed by the source address's; a usage error when they conflict
    /// (`-6 -s 127.0.0.1`).
    pub fn effective_family(&self) -> crate::error::Result<Family> {
        match self.source.ip {
            Some(ip) => self
                .family
                .and(Family::of(ip), &format!("the source address {ip}")),
            None => Ok(self.family),
        }
    }
}

/// The local end a connection is made from (`-s ADDR`, `-p PORT`): the
/// socket is bound to it before connecting. With only a port, the address
/// is the wildcard of the destination's family; with only an address, the
/// kernel picks the port. Without `SO_REUSEADDR`: a port still held by
/// another socket (or by a connection in TIME_WAIT) is "address in use".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Source {
    /// The local IP address (`-s`).
    pub ip: Option<IpAddr>,
    /// The local port (`-p`).
    pub port: Option<u16>,
}

impl Source {
    /// Whether a source address or port is set.
    pub fn is_set(&self) -> bool {
        self.ip.is_some() || self.port.is_some()
    }

    /// The local address to bind for connecting to `dest`.
    pub fn local_for(&self, dest: SocketAddr) -> SocketAddr {
        let ip = self.ip.unwrap_or(if dest.is_ipv4() {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        } else {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        });
        SocketAddr::new(ip, self.port.unwrap_or(0))
    }
}

/// Options for binding a listener, beyond its address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListenOptions {
    /// Permission bits for a Unix socket file (`--mode 660`); `None` leaves
    /// what the umask gives. Set before the socket listens.
    pub unix_mode: Option<u32>,
    /// Certificate, client verification and handshake timeout for a TLS
    /// endpoint (`tls://`, `tls+unix://`; ignored for the other
    /// transports).
    pub tls: TlsServerOptions,
    /// The address family to listen in (`-4`, `-6`): `localhost` means
    /// `127.0.0.1` or `::1`, an address of the other family is a usage
    /// error. Ignored for Unix sockets.
    pub family: Family,
    /// The WebSocket options of a `ws://` or `wss://` endpoint (ignored for
    /// the other transports).
    pub ws: WsOptions,
}

/// The address of a connection's peer, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// An IP peer.
    Inet(SocketAddr),
    /// A client whose address a PROXY protocol header carried
    /// (`--accept-proxy`): logs show it, with the proxy it came through.
    Proxied {
        /// The client's address, as the header says.
        source: SocketAddr,
        /// The address the client connected to, as the header says.
        destination: SocketAddr,
        /// The proxy that sent the header (the connection's real peer).
        via: Box<PeerAddr>,
    },
    /// A Unix-domain peer. A connecting socket is usually unnamed, so the
    /// peer's process id (from `SO_PEERCRED`) is what identifies it.
    Unix {
        /// The peer socket's name, if it has one.
        name: Option<UnixAddr>,
        /// The peer's process id, when the kernel tells.
        pid: Option<i32>,
    },
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Inet(addr) => write!(f, "{addr}"),
            PeerAddr::Proxied { source, via, .. } => write!(f, "{source} (via {via})"),
            PeerAddr::Unix {
                name: Some(name), ..
            } => write!(f, "{name}"),
            PeerAddr::Unix { pid: Some(pid), .. } => write!(f, "pid {pid}"),
            PeerAddr::Unix { .. } => f.write_str("unnamed unix peer"),
        }
    }
}

/// UDP has datagrams, not a byte stream: [`udp`] has its sockets, and
/// `serve::udp` and `connect` use them.
fn not_a_stream(endpoint: &Endpoint, op: &str) -> Error {
    Error::new(ErrorKind::Usage, format!("{op} {endpoint}")).with_detail(format!(
        "{} carries datagrams, not a byte stream (use tcp, tls, unix, tls+unix or quic here)",
        endpoint.scheme()
    ))
}
