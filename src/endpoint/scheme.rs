//! The table of schemes: for each scheme an address may start with, the
//! socket underneath ([`Base`]), the layers run over it ([`Layer`]), and
//! its default port. Parsing, printing, binding and connecting all read
//! this one table, so a transport made of known parts (TLS over a Unix
//! socket, say) is one row in [`SCHEMES`].
//!
//! Pure data: nothing here does I/O.

use std::fmt;

/// The transport an endpoint speaks: a name for one row of [`SCHEMES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// Plain TCP (`tcp://`, or no scheme).
    Tcp,
    /// TLS over TCP (`tls://`).
    Tls,
    /// UDP datagrams (`udp://`).
    Udp,
    /// Unix-domain stream socket (`unix://`).
    Unix,
    /// TLS over a Unix-domain stream socket (`tls+unix://`).
    TlsUnix,
    /// QUIC (`quic://`): each bidirectional stream is one connection.
    Quic,
    /// WebSocket over TCP (`ws://`).
    Ws,
    /// WebSocket over TLS over TCP (`wss://`).
    Wss,
    /// Unix-domain datagram socket (`unixgram://`).
    Unixgram,
}

/// The socket at the bottom of an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Base {
    /// A TCP connection: the address is a host and a port.
    Tcp,
    /// UDP datagrams: the address is a host and a port; not a byte stream,
    /// so no layer goes over it.
    Udp,
    /// A Unix-domain stream socket: the address is a path or an abstract
    /// name.
    Unix,
    /// QUIC over UDP: the address is a host and a port; TLS 1.3 is part of
    /// the protocol (so the TLS options apply), and each bidirectional
    /// stream is a byte stream.
    Quic,
    /// A Unix-domain datagram socket: the address is a path or an abstract
    /// name; not a byte stream, so no layer goes over it.
    Unixgram,
}

/// A protocol run over a byte stream, after it connects (or is accepted)
/// and before the stream is handed to the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Layer {
    /// TLS: the client's handshake after connecting, the server's after
    /// accepting (see [`transport`](crate::transport)).
    Tls,
    /// WebSocket: the client's upgrade request after connecting (and the
    /// layers below), the server's answer after accepting; then messages
    /// carry the bytes.
    WebSocket,
}

/// What an address of a scheme looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrKind {
    /// `host:port`.
    HostPort,
    /// A socket path or `@abstract` name.
    Unix,
}

/// One row of the scheme table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemeSpec {
    /// The scheme this row describes.
    pub scheme: Scheme,
    /// Its name in addresses (lowercase; matched case-insensitively).
    pub name: &'static str,
    /// Other names accepted when parsing (`ssl` for `tls`).
    pub aliases: &'static [&'static str],
    /// The socket underneath.
    pub base: Base,
    /// The layers over the socket, innermost first.
    pub layers: &'static [Layer],
    /// The port used when an address leaves it out; `None` requires one.
    pub default_port: Option<u16>,
}

impl SchemeSpec {
    /// Whether the scheme carries a byte stream (everything but the
    /// datagram sockets, UDP and unixgram): only those can be served,
    /// connected, relayed or benchmarked as streams.
    pub fn is_byte_stream(&self) -> bool {
        !self.is_datagram()
    }

    /// Whether the scheme carries datagrams (UDP, unixgram).
    pub fn is_datagram(&self) -> bool {
        matches!(self.base, Base::Udp | Base::Unixgram)
    }

    /// What the scheme's addresses look like.
    pub fn addr_kind(&self) -> AddrKind {
        match self.base {
            Base::Tcp | Base::Udp | Base::Quic => AddrKind::HostPort,
            Base::Unix | Base::Unixgram => AddrKind::Unix,
        }
    }

    /// Whether `layer` runs over this scheme's socket.
    pub fn has(&self, layer: Layer) -> bool {
        self.layers.contains(&layer)
    }
}

/// Every scheme netcrab knows. Adding a transport made of known parts is
/// one row here (and its [`Scheme`] name); a new base or layer also needs
/// its module in [`transport`](crate::transport).
pub static SCHEMES: &[SchemeSpec] = &[
    SchemeSpec {
        scheme: Scheme::Tcp,
        name: "tcp",
        aliases: &[],
        base: Base::Tcp,
        layers: &[],
        default_port: None,
    },
    SchemeSpec {
        scheme: Scheme::Tls,
        name: "tls",
        aliases: &["ssl"],
        base: Base::Tcp,
        layers: &[Layer::Tls],
        default_port: None,
    },
    SchemeSpec {
        scheme: Scheme::Udp,
        name: "udp",
        aliases: &[],
        base: Base::Udp,
        layers: &[],
        default_port: None,
    },
    SchemeSpec {
        scheme: Scheme::Unix,
        name: "unix",
        aliases: &[],
        base: Base::Unix,
        layers: &[],
        default_port: None,
    },
    SchemeSpec {
        scheme: Scheme::TlsUnix,
        name: "tls+unix",
        aliases: &[],
        base: Base::Unix,
        layers: &[Layer::Tls],
        default_port: None,
    },
    SchemeSpec {
        scheme: Scheme::Quic,
        name: "quic",
        aliases: &[],
        base: Base::Quic,
        layers: &[],
        default_port: None,
    },
    SchemeSpec {
        scheme: Scheme::Ws,
        name: "ws",
        aliases: &[],
        base: Base::Tcp,
        layers: &[Layer::WebSocket],
        default_port: Some(80),
    },
    SchemeSpec {
        scheme: Scheme::Wss,
        name: "wss",
        aliases: &[],
        base: Base::Tcp,
        layers: &[Layer::Tls, Layer::WebSocket],
        default_port: Some(443),
    },
    SchemeSpec {
        scheme: Scheme::Unixgram,
        name: "unixgram",
        aliases: &[],
        base: Base::Unixgram,
        layers: &[],
        default_port: None,
    },
];

impl Scheme {
    /// The scheme's row in [`SCHEMES`].
    pub fn spec(self) -> &'static SchemeSpec {
        SCHEMES
            .iter()
            .find(|spec| spec.scheme == self)
            .unwrap_or(&SCHEMES[0])
    }

    /// The scheme named `name` (or one of its aliases), ignoring case.
    pub fn from_name(name: &str) -> Option<Scheme> {
        SCHEMES
            .iter()
            .find(|spec| {
                spec.name.eq_ignore_ascii_case(name)
                    || spec.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            })
            .map(|spec| spec.scheme)
    }

    /// The scheme's name as written in an address.
    pub fn as_str(self) -> &'static str {
        self.spec().name
    }

    /// The socket underneath.
    pub fn base(self) -> Base {
        self.spec().base
    }

    /// Whether the scheme carries a byte stream (see
    /// [`SchemeSpec::is_byte_stream`]).
    pub fn is_byte_stream(self) -> bool {
        self.spec().is_byte_stream()
    }

    /// Whether the scheme carries datagrams (UDP, unixgram).
    pub fn is_datagram(self) -> bool {
        self.spec().is_datagram()
    }

    /// Whether the scheme speaks TLS (`tls://`, `tls+unix://`, and
    /// `quic://`, whose TLS is built in): the TLS options apply to it.
    pub fn is_tls(self) -> bool {
        self.spec().has(Layer::Tls) || self.base() == Base::Quic
    }

    /// Whether the scheme speaks WebSocket (`ws://`, `wss://`): its
    /// addresses may carry a path, and the WebSocket options apply.
    pub fn is_websocket(self) -> bool {
        self.spec().has(Layer::WebSocket)
    }

    /// The same layers over another base: what `-U` makes of `--tls`
    /// (`tls` over a Unix socket is `tls+unix`). `None` when no scheme is
    /// registered for that combination.
    pub fn with_base(self, base: Base) -> Option<Scheme> {
        let layers = self.spec().layers;
        SCHEMES
            .iter()
            .find(|spec| spec.base == base && spec.layers == layers)
            .map(|spec| spec.scheme)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scheme names, for error messages: `tcp, tls, udp, unix, tls+unix, quic, ws, wss or unixgram`.
pub(crate) fn names() -> String {
    let names: Vec<&str> = SCHEMES.iter().map(|s| s.name).collect();
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Scheme; 9] = [
        Scheme::Tcp,
        Scheme::Tls,
        Scheme::Udp,
        Scheme::Unix,
        Scheme::TlsUnix,
        Scheme::Quic,
        Scheme::Ws,
        Scheme::Wss,
        Scheme::Unixgram,
    ];

    #[test]
    fn every_scheme_has_exactly_one_row() {
        for scheme in ALL {
            let rows = SCHEMES.iter().filter(|s| s.scheme == scheme).count();
            assert_eq!(rows, 1, "{scheme:?}");
            assert_eq!(scheme.spec().scheme, scheme);
        }
        assert_eq!(SCHEMES.len(), ALL.len());
    }

    #[test]
    fn names_are_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for spec in SCHEMES {
            for name in std::iter::once(&spec.name).chain(spec.aliases) {
                assert_eq!(*name, name.to_ascii_lowercase());
                assert!(seen.insert(*name), "{name} registered twice");
                assert_eq!(Scheme::from_name(name), Some(spec.scheme));
                assert_eq!(
                    Scheme::from_name(&name.to_ascii_uppercase()),
                    Some(spec.scheme)
                );
            }
        }
        assert_eq!(Scheme::from_name("http"), None);
        assert_eq!(
            names(),
            "tcp, tls, udp, unix, tls+unix, quic, ws, wss or unixgram"
        );
    }

    #[test]
    fn rows_say_what_each_transport_is_made_of() {
        assert_eq!(Scheme::TlsUnix.as_str(), "tls+unix");
        assert_eq!(Scheme::TlsUnix.base(), Base::Unix);
        assert!(Scheme::TlsUnix.is_tls() && Scheme::Tls.is_tls());
        assert!(!Scheme::Unix.is_tls() && !Scheme::Tcp.is_tls());
        assert!(!Scheme::Udp.is_byte_stream());
        assert!(Scheme::Quic.is_tls() && Scheme::Quic.is_byte_stream());
        assert_eq!(Scheme::Quic.spec().addr_kind(), AddrKind::HostPort);
        assert_eq!(Scheme::Quic.with_base(Base::Unix), Some(Scheme::Unix));
        for s in [Scheme::Tcp, Scheme::Tls, Scheme::Unix, Scheme::TlsUnix] {
            assert!(s.is_byte_stream(), "{s}");
        }
        assert_eq!(Scheme::TlsUnix.spec().addr_kind(), AddrKind::Unix);
        assert_eq!(Scheme::Tls.spec().addr_kind(), AddrKind::HostPort);
        assert_eq!(Scheme::Udp.spec().addr_kind(), AddrKind::HostPort);
        assert!(Scheme::Wss.is_tls() && Scheme::Wss.is_websocket());
        assert!(!Scheme::Ws.is_tls() && Scheme::Ws.is_websocket());
        assert!(!Scheme::Tls.is_websocket());
        assert_eq!(Scheme::Wss.spec().default_port, Some(443));
        assert!(!Scheme::Unixgram.is_byte_stream() && Scheme::Unixgram.is_datagram());
        assert!(Scheme::Udp.is_datagram() && !Scheme::Unix.is_datagram());
        assert_eq!(Scheme::Unixgram.spec().addr_kind(), AddrKind::Unix);
    }

    #[test]
    fn the_same_layers_over_another_base() {
        assert_eq!(Scheme::Tls.with_base(Base::Unix), Some(Scheme::TlsUnix));
        assert_eq!(Scheme::TlsUnix.with_base(Base::Tcp), Some(Scheme::Tls));
        assert_eq!(Scheme::Tcp.with_base(Base::Unix), Some(Scheme::Unix));
        assert_eq!(Scheme::Tls.with_base(Base::Udp), None);
        assert_eq!(
            Scheme::Udp.with_base(Base::Unixgram),
            Some(Scheme::Unixgram)
        );
        assert_eq!(Scheme::Tls.with_base(Base::Unixgram), None);
    }
}
