//! [`Listener`]: a bound base socket (TCP or Unix) and the server sides of
//! the layers over it; [`Accepted`]: a connection whose layers' handshakes
//! are still to run, in the connection's own task.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::layer::{ServerLayer, ServerLayers};
use super::quic::QuicListener;
use super::{
    ListenOptions, PeerAddr, SocketOptions, Stream, UnixListener, not_a_stream, tcp, unix,
};
use crate::endpoint::{Addr, Base, Endpoint, Host, HostPort, Scheme, UnixAddr};
use crate::error::Result;
use crate::tls::ServerTls;

/// A bound listening socket, with the layers its connections speak.
#[derive(Debug)]
pub struct Listener {
    scheme: Scheme,
    base: BaseListener,
    /// `None` when the scheme has no layers: accepted streams are ready.
    layers: Option<ServerLayers>,
}

#[derive(Debug)]
enum BaseListener {
    Tcp(TcpListener),
    /// Removes its socket file when dropped.
    Unix(UnixListener),
    /// Accepted streams of every QUIC connection, with the certificate.
    Quic(Box<QuicListener>, ServerTls),
}

impl Listener {
    /// Binds `endpoint` for listening, with default options (a TLS
    /// endpoint gets a self-signed certificate).
    pub async fn bind(endpoint: &Endpoint) -> Result<Listener> {
        Listener::bind_with(endpoint, &ListenOptions::default()).await
    }

    /// Binds `endpoint` for listening, with `opts`. The layers are prepared
    /// first (a TLS certificate loaded or generated), so a bad `--cert`
    /// fails before binding.
    pub async fn bind_with(endpoint: &Endpoint, opts: &ListenOptions) -> Result<Listener> {
        let spec = endpoint.scheme().spec();
        if !spec.is_byte_stream() {
            return Err(not_a_stream(endpoint, "listen"));
        }
        let layers = spec
            .layers
            .iter()
            .map(|layer| ServerLayer::prepare(*layer, endpoint, opts))
            .collect::<Result<Vec<_>>>()?;
        let base = match (spec.base, endpoint.addr()) {
            (Base::Tcp, Addr::HostPort(hp)) => BaseListener::Tcp(tcp::bind(hp, opts.family).await?),
            (Base::Unix, Addr::Unix(addr)) => {
                BaseListener::Unix(unix::bind(addr, opts.unix_mode).await?)
            }
            (Base::Quic, Addr::HostPort(hp)) => {
                let tls = ServerTls::new(&opts.tls, endpoint)?;
                let quic = QuicListener::bind(hp, opts.family, &tls).await?;
                BaseListener::Quic(Box::new(quic), tls)
            }
            _ => return Err(not_a_stream(endpoint, "listen")),
        };
        Ok(Listener {
            scheme: spec.scheme,
            base,
            layers: (!layers.is_empty()).then(|| Arc::from(layers)),
        })
    }

    /// A listener over a socket that is already bound and listening (one
    /// passed by systemd's socket activation): TCP or a Unix stream socket,
    /// with the layers of `scheme` moved onto that base (`tls` over an
    /// inherited Unix socket is `tls+unix`). The socket file of an
    /// inherited Unix socket is left alone when the listener is dropped:
    /// whoever created it owns it.
    pub fn from_inherited(
        scheme: Scheme,
        socket: socket2::Socket,
        opts: &ListenOptions,
    ) -> Result<Listener> {
        let context = "socket activation";
        let io_err = |e| crate::error::Error::io(context, e);
        let domain = socket.domain().map_err(io_err)?;
        let kind = socket.r#type().map_err(io_err)?;
        let listening = socket.is_listener().map_err(io_err)?;
        if kind != socket2::Type::STREAM || !listening {
            return Err(crate::error::Error::usage(
                "socket activation: the passed socket is not a listening stream socket",
            ));
        }
        socket.set_nonblocking(true).map_err(io_err)?;
        let (base_kind, base) = if domain == socket2::Domain::UNIX {
            let l = unix::from_inherited(socket)?;
            (Base::Unix, BaseListener::Unix(l))
        } else if domain == socket2::Domain::IPV4 || domain == socket2::Domain::IPV6 {
            let std_listener = std::net::TcpListener::from(socket);
            (
                Base::Tcp,
                BaseListener::Tcp(TcpListener::from_std(std_listener).map_err(io_err)?),
            )
        } else {
            return Err(crate::error::Error::usage(
                "socket activation: the passed socket is neither TCP nor Unix",
            ));
        };
        let scheme = scheme.with_base(base_kind).ok_or_else(|| {
            crate::error::Error::usage(format!(
                "socket activation: {scheme} cannot run over the passed socket"
            ))
        })?;
        let mut listener = Listener {
            scheme,
            base,
            layers: None,
        };
        let endpoint = listener.endpoint().map_err(io_err)?;
        let layers = scheme
            .spec()
            .layers
            .iter()
            .map(|layer| ServerLayer::prepare(*layer, &endpoint, opts))
            .collect::<Result<Vec<_>>>()?;
        listener.layers = (!layers.is_empty()).then(|| Arc::from(layers));
        Ok(listener)
    }

    /// Accepts one connection. Errors are returned raw: the accept loop
    /// decides which are transient. A connection comes back with its
    /// layers' handshakes still to run (see [`Accepted::handshake`]).
    pub async fn accept(&self) -> io::Result<(Accepted, PeerAddr)> {
        let (stream, peer) = match &self.base {
            BaseListener::Tcp(l) => {
                let (s, addr) = l.accept().await?;
                (Stream::Tcp(s), PeerAddr::Inet(addr))
            }
            BaseListener::Unix(l) => {
                let (s, peer) = l.accept().await?;
                (Stream::Unix(s), peer)
            }
            BaseListener::Quic(l, _) => l.accept().await?,
        };
        let accepted = Accepted {
            stream,
            layers: self.layers.clone(),
        };
        Ok((accepted, peer))
    }

    /// The bound address as an endpoint: its port filled in for port 0.
    pub fn endpoint(&self) -> io::Result<Endpoint> {
        let addr = match &self.base {
            BaseListener::Tcp(l) => Addr::HostPort(host_port(l.local_addr()?)),
            BaseListener::Unix(l) => Addr::Unix(l.addr().clone()),
            BaseListener::Quic(l, _) => Addr::HostPort(host_port(l.local_addr()?)),
        };
        Endpoint::new(self.scheme, addr).map_err(io::Error::other)
    }

    /// The bound address: a socket address (its port filled in for port
    /// 0) or a Unix socket's path or abstract name. [`endpoint`](Self::endpoint)
    /// gives it with its scheme, as it should be printed and connected to.
    pub fn local_addr(&self) -> io::Result<LocalAddr> {
        Ok(match &self.base {
            BaseListener::Tcp(l) => LocalAddr::Inet(l.local_addr()?),
            BaseListener::Quic(l, _) => LocalAddr::Inet(l.local_addr()?),
            BaseListener::Unix(l) => LocalAddr::Unix(l.addr().clone()),
        })
    }

    /// The bound port, for the network transports.
    pub fn port(&self) -> Option<u16> {
        match &self.base {
            BaseListener::Tcp(l) => l.local_addr().ok().map(|a| a.port()),
            BaseListener::Quic(l, _) => l.local_addr().ok().map(|a| a.port()),
            BaseListener::Unix(_) => None,
        }
    }

    /// The TLS configuration of a TLS listener (its certificate's
    /// fingerprint, whether it was generated), for the start-up message.
    pub fn tls(&self) -> Option<&ServerTls> {
        if let BaseListener::Quic(_, tls) = &self.base {
            return Some(tls);
        }
        self.layers
            .iter()
            .flat_map(|l| l.iter())
            .find_map(ServerLayer::tls)
    }
}

/// Where a listener is bound.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LocalAddr {
    /// An IP address and port (TCP, and UDP for QUIC).
    Inet(SocketAddr),
    /// A Unix socket's path or abstract name.
    Unix(UnixAddr),
}

impl std::fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalAddr::Inet(addr) => addr.fmt(f),
            LocalAddr::Unix(addr) => addr.fmt(f),
        }
    }
}

fn host_port(addr: SocketAddr) -> HostPort {
    HostPort {
        host: Host::Ip(addr.ip()),
        port: addr.port(),
    }
}

/// A connection just accepted: ready to use, or with its layers'
/// handshakes (TLS) still to run in the connection's own task.
#[derive(Debug)]
pub struct Accepted {
    stream: Stream,
    layers: Option<ServerLayers>,
}

impl From<Stream> for Accepted {
    fn from(stream: Stream) -> Accepted {
        Accepted {
            stream,
            layers: None,
        }
    }
}

impl Accepted {
    /// The stream, when there is no handshake to run (TCP, Unix); a
    /// connection with layers is given back as it was.
    pub fn into_ready(self) -> std::result::Result<Stream, Accepted> {
        match self.layers {
            None => Ok(self.stream),
            Some(_) => Err(self),
        }
    }

    /// The stream as accepted, before any layer's handshake: for reading
    /// what comes before them on the wire (a PROXY protocol header).
    pub fn stream_mut(&mut self) -> &mut Stream {
        &mut self.stream
    }

    /// Applies `opts` to the underlying socket (before any handshake, so
    /// TCP_NODELAY speeds the handshake too).
    pub fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        self.stream.set_options(opts)
    }

    /// Completes the connection: runs each layer's handshake (TLS, under
    /// its timeout) over what the one below gave. `peer` names the client
    /// in errors, which say why the handshake failed (for example `client
    /// presented no certificate`).
    pub async fn handshake(self, peer: &PeerAddr) -> Result<Stream> {
        let mut stream = self.stream;
        for layer in self.layers.iter().flat_map(|l| l.iter()) {
            // Boxed: a handshake's state is kilobytes, and inline it would
            // enlarge every connection's task, TCP and Unix ones included,
            // for the whole of the connection.
            stream = Box::pin(layer.wrap(stream, peer)).await?;
        }
        Ok(stream)
    }
}
