//! Endpoint addresses: `tcp://host:port`, `tls://...`, `udp://...`,
//! `unix:///path`, `unix:@abstract`, `tls+unix:///path`, or bare
//! `host:port` (TCP).
//!
//! An [`Endpoint`] is a [`Scheme`] and an [`Addr`]; what each scheme is made
//! of (its socket, the layers over it, the shape of its address) comes from
//! one table, [`SCHEMES`].
//!
//! Parsing is pure (no I/O, no DNS), so it is unit-tested and fuzzable; the
//! error names the part of the address that is wrong. Resolution of names to
//! socket addresses happens later, in [`HostPort::resolve`].

mod scheme;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, ErrorKind, Result};

pub use scheme::{AddrKind, Base, Layer, SCHEMES, Scheme, SchemeSpec};

/// A parsed endpoint address: a scheme and an address of the kind the
/// scheme takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    scheme: Scheme,
    addr: Addr,
    /// The request target of a WebSocket endpoint (`/path?query`).
    path: Option<String>,
}

/// The address part of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Addr {
    /// A host and a port (TCP, TLS, UDP).
    HostPort(HostPort),
    /// A Unix-domain socket (unix, tls+unix).
    Unix(UnixAddr),
}

/// A host and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// The host part.
    pub host: Host,
    /// The port; 0 asks the OS for a free port when listening.
    pub port: u16,
}

/// The host part of an address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A literal IP address.
    Ip(IpAddr),
    /// A name to resolve (`localhost`, `example.com`).
    Name(String),
    /// No host given (`:8080`): every interface when listening, the local
    /// host when connecting, as in Go's `net` package.
    Unspecified,
}

/// A Unix-domain socket address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A socket file in the file system.
    Path(PathBuf),
    /// A Linux abstract socket name (written `unix:@name`).
    Abstract(String),
}

impl Endpoint {
    /// An endpoint of `scheme` at `addr`; a usage error when the address is
    /// not of the kind the scheme takes (a socket path for `tcp`, say).
    pub fn new(scheme: Scheme, addr: Addr) -> Result<Endpoint> {
        let fits = matches!(
            (scheme.spec().addr_kind(), &addr),
            (AddrKind::HostPort, Addr::HostPort(_)) | (AddrKind::Unix, Addr::Unix(_))
        );
        if !fits {
            return Err(Error::usage(format!("a {scheme} address cannot be {addr}")));
        }
        Ok(Endpoint {
            scheme,
            addr,
            path: None,
        })
    }

    /// A `tcp://` endpoint.
    pub fn tcp(hp: HostPort) -> Endpoint {
        Endpoint {
            scheme: Scheme::Tcp,
            addr: Addr::HostPort(hp),
            path: None,
        }
    }

    /// The endpoint's transport.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The endpoint's address.
    pub fn addr(&self) -> &Addr {
        &self.addr
    }

    /// The host and port, for the network transports.
    pub fn host_port(&self) -> Option<&HostPort> {
        match &self.addr {
            Addr::HostPort(hp) => Some(hp),
            Addr::Unix(_) => None,
        }
    }

    /// The socket path or abstract name, for the Unix transports.
    pub fn unix_addr(&self) -> Option<&UnixAddr> {
        match &self.addr {
            Addr::Unix(u) => Some(u),
            Addr::HostPort(_) => None,
        }
    }

    /// Parses `s`, using `default` as the scheme when `s` has none (the
    /// netcat-style `-u`/`-U`/`--tls` flags choose it).
    pub fn parse_with_default(s: &str, default: Scheme) -> Result<Endpoint> {
        let bad = |why: String| Error::usage(format!("invalid address {s:?}: {why}"));
        // The Unix schemes first, as `unix:` or `unix://`: a socket path or
        // abstract name may itself contain "://", so it must not be split
        // on it.
        for spec in SCHEMES.iter().filter(|s| s.addr_kind() == AddrKind::Unix) {
            if let Some(rest) =
                strip_prefix_ignore_case(s, spec.name).and_then(|rest| rest.strip_prefix(':'))
            {
                let rest = rest.strip_prefix("//").unwrap_or(rest);
                let addr = Addr::Unix(parse_unix(rest).map_err(bad)?);
                return Ok(Endpoint {
                    scheme: spec.scheme,
                    addr,
                    path: None,
                });
            }
        }
        let (scheme, rest) = match s.split_once("://") {
            Some((name, rest)) => match Scheme::from_name(name) {
                Some(scheme) => (scheme, rest),
                None => {
                    return Err(bad(format!(
                        "unknown scheme {:?} (expected {})",
                        name.to_ascii_lowercase(),
                        scheme::names()
                    )));
                }
            },
            None => (default, s),
        };
        let spec = scheme.spec();
        // A WebSocket address may go on with a path and query.
        let (rest, path) = match rest.find(['/', '?']) {
            Some(i) if scheme.is_websocket() => {
                let path = &rest[i..];
                if path
                    .chars()
                    .any(|c| c.is_ascii_control() || c == ' ' || c == '#')
                {
                    return Err(bad("invalid websocket path".into()));
                }
                let path = if path.starts_with('?') {
                    format!("/{path}")
                } else {
                    path.to_owned()
                };
                (&rest[..i], Some(path))
            }
            _ => (rest, None),
        };
        let addr = match spec.addr_kind() {
            AddrKind::Unix => Addr::Unix(parse_unix(rest).map_err(bad)?),
            AddrKind::HostPort => {
                Addr::HostPort(parse_host_port(rest, spec.default_port).map_err(bad)?)
            }
        };
        Ok(Endpoint { scheme, addr, path })
    }

    /// The request target (`/path?query`) given in a WebSocket address.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

impl FromStr for Endpoint {
    type Err = Error;

    fn from_str(s: &str) -> Result<Endpoint> {
        Endpoint::parse_with_default(s, Scheme::Tcp)
    }
}

/// The longest socket path or abstract name the kernel takes: `sun_path`
/// is 108 bytes, one of which is the path's terminating NUL (or the
/// abstract name's leading one).
pub const MAX_UNIX_PATH: usize = 107;

fn parse_unix(rest: &str) -> std::result::Result<UnixAddr, String> {
    if let Some(name) = rest.strip_prefix('@') {
        if name.is_empty() {
            return Err("empty abstract socket name after \"@\"".into());
        }
        if name.len() > MAX_UNIX_PATH {
            return Err(format!(
                "abstract socket name is {} bytes long (at most {MAX_UNIX_PATH})",
                name.len()
            ));
        }
        return Ok(UnixAddr::Abstract(name.to_owned()));
    }
    if rest.is_empty() {
        return Err("missing socket path".into());
    }
    if rest.contains('\0') {
        return Err("socket path contains a NUL byte".into());
    }
    if rest.len() > MAX_UNIX_PATH {
        return Err(format!(
            "socket path is {} bytes long (at most {MAX_UNIX_PATH})",
            rest.len()
        ));
    }
    Ok(UnixAddr::Path(PathBuf::from(rest)))
}

/// Parses `host:port`; `default_port` is the scheme's port, used when
/// `s` has none (`None`: the port is required).
fn parse_host_port(s: &str, default_port: Option<u16>) -> std::result::Result<HostPort, String> {
    if s.is_empty() {
        return Err("missing host and port".into());
    }
    if let Some(port) = default_port
        && !has_port(s)
    {
        return parse_host_port(&format!("{s}:{port}"), None);
    }
    // A bare port number: `8080`.
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(HostPort {
            host: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            port: parse_port(s)?,
        });
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, after) = rest
            .split_once(']')
            .ok_or_else(|| "missing \"]\" after IPv6 address".to_string())?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| "missing \":port\" after \"]\"".to_string())?;
        let ip: std::net::Ipv6Addr = ip
            .parse()
            .map_err(|_| format!("{ip:?} is not an IPv6 address"))?;
        (Host::Ip(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| "missing \":port\"".to_string())?;
        if host.contains(':') {
            return Err("an IPv6 address needs brackets, as in \"[::1]:8080\"".into());
        }
        let host = if host.is_empty() {
            Host::Unspecified
        } else if let Ok(ip) = host.parse::<IpAddr>() {
            Host::Ip(ip)
        } else {
            validate_name(host)?;
            Host::Name(host.to_ascii_lowercase())
        };
        (host, port)
    };
    Ok(HostPort {
        host,
        port: parse_port(port)?,
    })
}

/// Whether `s` ends in `:port`, the way [`parse_host_port`] reads it (an
/// IPv6 address in brackets has colons of its own).
fn has_port(s: &str) -> bool {
    match s.strip_prefix('[') {
        Some(rest) => rest
            .split_once(']')
            .is_some_and(|(_, after)| after.starts_with(':')),
        None => s.contains(':') || s.bytes().all(|b| b.is_ascii_digit()),
    }
}

fn parse_port(s: &str) -> std::result::Result<u16, String> {
    if s.is_empty() {
        return Err("missing port".into());
    }
    s.parse::<u16>()
        .map_err(|_| format!("port {s:?} is not a number from 0 to 65535"))
}

/// Checks a host name's characters (letters, digits, `-`, `.`, `_`) and
/// label lengths, so typos fail here rather than as a confusing DNS error.
fn validate_name(name: &str) -> std::result::Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    let ok_labels = name.len() <= 253
        && name
            .trim_end_matches('.')
            .split('.')
            .all(|l| !l.is_empty() && l.len() <= 63);
    if ok_chars && ok_labels {
        Ok(())
    } else {
        Err(format!(
            "host {name:?} is not a valid host name or IP address"
        ))
    }
}

/// The address family a command is restricted to (`-4`, `-6`), for name
/// resolution, connecting and listening.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Family {
    /// Either family (the default).
    #[default]
    Any,
    /// IPv4 only (`-4`).
    V4,
    /// IPv6 only (`-6`).
    V6,
}

impl Family {
    /// Whether `ip` is of this family.
    pub fn allows(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }

    /// The family `ip` belongs to.
    pub fn of(ip: IpAddr) -> Family {
        if ip.is_ipv4() { Family::V4 } else { Family::V6 }
    }

    /// The narrower of two restrictions; a usage error when they exclude
    /// each other (`-6` with an IPv4 source address, say). `what` names
    /// the second restriction in the message.
    pub fn and(self, other: Family, what: &str) -> Result<Family> {
        match (self, other) {
            (Family::Any, f) | (f, Family::Any) => Ok(f),
            (a, b) if a == b => Ok(a),
            (a, b) => Err(Error::usage(format!(
                "{} conflicts with {what}, which is {}",
                a.flag(),
                b.name()
            ))),
        }
    }

    /// The flag asking for the family: `-4` or `-6` (empty for any).
    pub fn flag(self) -> &'static str {
        match self {
            Family::Any => "",
            Family::V4 => "-4",
            Family::V6 => "-6",
        }
    }

    /// `IPv4` or `IPv6` (`IP` for any).
    pub fn name(self) -> &'static str {
        match self {
            Family::Any => "IP",
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// Checks a host against the family without resolving it: an IP literal
    /// of the other family is a usage error (`-6 127.0.0.1:80`).
    pub fn check_host(self, host: &Host) -> Result<()> {
        match host {
            Host::Ip(ip) if !self.allows(*ip) => Err(Error::usage(format!(
                "{} asks for {} but {} is an {} address",
                self.flag(),
                self.name(),
                ip,
                Family::of(*ip).name()
            ))),
            _ => Ok(()),
        }
    }
}

impl HostPort {
    /// The socket addresses to try, in the resolver's order. `listening`
    /// decides what an unspecified host means: every interface, or loopback.
    pub async fn resolve(&self, listening: bool) -> Result<Vec<SocketAddr>> {
        self.resolve_in(listening, Family::Any).await
    }

    /// [`resolve`](HostPort::resolve) restricted to one address family: the
    /// addresses of the other family are dropped (an error when none are
    /// left), an IP literal of the other family is a usage error, and an
    /// unspecified host means `[::]` (listening) or `::1` (connecting) for
    /// IPv6.
    pub async fn resolve_in(&self, listening: bool, family: Family) -> Result<Vec<SocketAddr>> {
        family.check_host(&self.host)?;
        if family == Family::V6 && self.host == Host::Unspecified {
            let ip = if listening {
                Ipv6Addr::UNSPECIFIED
            } else {
                Ipv6Addr::LOCALHOST
            };
            return Ok(vec![SocketAddr::new(IpAddr::V6(ip), self.port)]);
        }
        let addrs = self.resolve_any(listening).await?;
        if family == Family::Any {
            return Ok(addrs);
        }
        let kept: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| family.allows(a.ip()))
            .collect();
        if kept.is_empty() {
            return Err(
                Error::new(ErrorKind::Resolve, format!("resolve {}", self.host))
                    .with_detail(format!("no {} address for this name", family.name())),
            );
        }
        Ok(kept)
    }

    async fn resolve_any(&self, listening: bool) -> Result<Vec<SocketAddr>> {
        match &self.host {
            Host::Ip(ip) => Ok(vec![SocketAddr::new(*ip, self.port)]),
            Host::Unspecified => {
                let ip = if listening {
                    Ipv4Addr::UNSPECIFIED
                } else {
                    Ipv4Addr::LOCALHOST
                };
                Ok(vec![SocketAddr::new(IpAddr::V4(ip), self.port)])
            }
            Host::Name(name) if is_localhost(name) => Ok(vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), self.port),
            ]),
            Host::Name(name) => {
                let context = format!("resolve {name}");
                let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), self.port))
                    .await
                    .map_err(|e| classify_resolve_error(&context, e))?
                    .collect();
                if addrs.is_empty() {
                    return Err(Error::new(ErrorKind::Resolve, context)
                        .with_detail("no addresses for this name"));
                }
                Ok(addrs)
            }
        }
    }
}

/// Whether `name` is `localhost` or a name under it, which RFC 6761 (6.3)
/// reserves for the loopback addresses. netcrab answers it itself, with both
/// 127.0.0.1 and ::1, as curl and the browsers do: many `/etc/hosts` files
/// list only one of them, and then a server listening on the other would be
/// unreachable by name. Listening on `localhost` binds 127.0.0.1; connecting
/// tries both (IPv6 first, see Happy Eyeballs in the TCP transport).
fn is_localhost(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    name == "localhost" || name.ends_with(".localhost")
}

/// getaddrinfo's errors reach us only as text (`std` does not expose the
/// `EAI_*` code), so the temporary failure (`EAI_AGAIN`) is told apart from an
/// unknown name by glibc's message for it.
fn classify_resolve_error(context: &str, err: std::io::Error) -> Error {
    let text = err.to_string();
    if text.contains("Temporary failure") || text.contains("try again") {
        Error::new(ErrorKind::ResolveTemporary, context)
    } else if err.raw_os_error().is_some() {
        Error::io(context, err)
    } else {
        Error::new(ErrorKind::Resolve, context)
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Name(name) => f.write_str(name),
            Host::Unspecified => Ok(()),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl UnixAddr {
    /// Writes the address after `scheme`: `unix:///path` or `unix:@name`.
    fn fmt_with(&self, scheme: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{scheme}://{}", p.display()),
            UnixAddr::Abstract(name) => write!(f, "{scheme}:@{name}"),
        }
    }
}

impl fmt::Display for UnixAddr {
    /// The address as a `unix:` endpoint.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_with(Scheme::Unix.as_str(), f)
    }
}

impl fmt::Display for Addr {
    /// A host and port as `host:port`, a Unix socket as a `unix:` address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::HostPort(hp) => write!(f, "{hp}"),
            Addr::Unix(u) => write!(f, "{u}"),
        }
    }
}

impl fmt::Display for Endpoint {
    /// The canonical form: TCP addresses without a scheme, others with one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.scheme.as_str();
        match &self.addr {
            // A TCP host named `unix` would read back as a socket path.
            Addr::HostPort(hp)
                if self.scheme == Scheme::Tcp
                    && !matches!(&hp.host, Host::Name(n) if n == "unix") =>
            {
                write!(f, "{hp}")
            }
            Addr::HostPort(hp) => write!(f, "{name}://{hp}{}", self.path().unwrap_or("")),
            Addr::Unix(u) => u.fmt_with(name, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Endpoint {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        s.parse::<Endpoint>().unwrap_err().to_string()
    }

    fn tcp(host: Host, port: u16) -> Endpoint {
        Endpoint::tcp(HostPort { host, port })
    }

    fn ep(scheme: Scheme, addr: Addr) -> Endpoint {
        Endpoint::new(scheme, addr).expect("address fits the scheme")
    }

    fn hp(s: &str) -> HostPort {
        ok(s).host_port().cloned().expect("host and port")
    }

    #[tokio::test]
    async fn a_family_restricts_resolution_and_rejects_the_other_literals() {
        let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, 80));
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 80));
        let localhost = hp("localhost:80");
        assert_eq!(localhost.resolve_in(true, Family::V4).await.unwrap(), [v4]);
        assert_eq!(localhost.resolve_in(false, Family::V6).await.unwrap(), [v6]);
        assert_eq!(
            localhost.resolve_in(false, Family::Any).await.unwrap(),
            [v4, v6]
        );
        // An unspecified host: [::] to listen, ::1 to connect, with -6.
        assert_eq!(
            hp(":80").resolve_in(true, Family::V6).await.unwrap(),
            [SocketAddr::from((Ipv6Addr::UNSPECIFIED, 80))]
        );
        assert_eq!(hp(":80").resolve_in(false, Family::V6).await.unwrap(), [v6]);
        assert_eq!(hp(":80").resolve_in(false, Family::V4).await.unwrap(), [v4]);
        let err = hp("127.0.0.1:80")
            .resolve_in(false, Family::V6)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
        assert_eq!(
            err.to_string(),
            "-6 asks for IPv6 but 127.0.0.1 is an IPv4 address"
        );
        let err = hp("[::1]:80")
            .resolve_in(true, Family::V4)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Usage);
    }

    #[test]
    fn families_combine_or_conflict() {
        assert_eq!(Family::Any.and(Family::V6, "x").unwrap(), Family::V6);
        assert_eq!(Family::V4.and(Family::Any, "x").unwrap(), Family::V4);
        assert_eq!(Family::V4.and(Family::V4, "x").unwrap(), Family::V4);
        let err = Family::V6
            .and(Family::V4, "the source address 127.0.0.1")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "-6 conflicts with the source address 127.0.0.1, which is IPv4"
        );
        assert!(Family::V4.check_host(&Host::Name("x".into())).is_ok());
        assert!(Family::V4.check_host(&Host::Unspecified).is_ok());
    }

    #[test]
    fn bare_host_port_is_tcp() {
        assert_eq!(
            ok("127.0.0.1:8080"),
            tcp(Host::Ip(Ipv4Addr::LOCALHOST.into()), 8080)
        );
        assert_eq!(ok("localhost:80"), tcp(Host::Name("localhost".into()), 80));
        assert_eq!(
            ok("Example.COM:1"),
            tcp(Host::Name("example.com".into()), 1)
        );
        assert_eq!(ok(":8080"), tcp(Host::Unspecified, 8080));
        assert_eq!(ok("8080"), tcp(Host::Ip(Ipv4Addr::LOCALHOST.into()), 8080));
    }

    #[test]
    fn ipv6_needs_brackets() {
        assert_eq!(
            ok("[::1]:8080"),
            tcp(Host::Ip(Ipv6Addr::LOCALHOST.into()), 8080)
        );
        assert_eq!(
            ok("tcp://[::]:0"),
            tcp(Host::Ip(Ipv6Addr::UNSPECIFIED.into()), 0)
        );
        assert!(err("::1:8080").contains("needs brackets"));
        assert!(err("[::1]8080").contains("missing \":port\""));
        assert!(err("[::1:8080").contains("missing \"]\""));
        assert!(err("[zz]:80").contains("not an IPv6 address"));
    }

    #[test]
    fn websocket_addresses_carry_a_path_and_default_ports() {
        let e = ok("ws://127.0.0.1:8080/chat/room?id=7");
        assert_eq!(e.scheme(), Scheme::Ws);
        assert_eq!(e.path(), Some("/chat/room?id=7"));
        assert_eq!(e.to_string(), "ws://127.0.0.1:8080/chat/room?id=7");
        let e = ok("WSS://example.com?x");
        assert_eq!(e.scheme(), Scheme::Wss);
        assert_eq!(e.host_port().map(|hp| hp.port), Some(443));
        assert_eq!(e.path(), Some("/?x"));
        assert_eq!(ok("ws://[::1]").host_port().map(|hp| hp.port), Some(80));
        assert_eq!(ok("ws://[::1]:9/").path(), Some("/"));
        assert!(err("ws://h:1/a b").contains("invalid websocket path"));
        // Other schemes take no path.
        assert!(err("tcp://h:1/a").contains("invalid address"));
    }

    #[test]
    fn schemes() {
        let hp = HostPort {
            host: Host::Name("h".into()),
            port: 1,
        };
        let at = |scheme| ep(scheme, Addr::HostPort(hp.clone()));
        assert_eq!(ok("tcp://h:1"), at(Scheme::Tcp));
        assert_eq!(ok("tls://h:1"), at(Scheme::Tls));
        assert_eq!(ok("TLS://h:1"), at(Scheme::Tls));
        assert_eq!(ok("ssl://h:1"), at(Scheme::Tls));
        assert_eq!(ok("udp://h:1"), at(Scheme::Udp));
        assert_eq!(ok("quic://h:1"), at(Scheme::Quic));
        assert_eq!(
            ok("unix:///run/x.sock"),
            ep(
                Scheme::Unix,
                Addr::Unix(UnixAddr::Path("/run/x.sock".into()))
            )
        );
        assert_eq!(
            ok("unix:rel.sock"),
            ep(Scheme::Unix, Addr::Unix(UnixAddr::Path("rel.sock".into())))
        );
        assert_eq!(
            ok("unix:@name"),
            ep(Scheme::Unix, Addr::Unix(UnixAddr::Abstract("name".into())))
        );
        assert_eq!(
            err("http://h:1"),
            "invalid address \"http://h:1\": unknown scheme \"http\" \
             (expected tcp, tls, udp, unix, tls+unix, quic, ws, wss or unixgram)"
        );
        assert!(err("unix://").contains("missing socket path"));
        assert!(err("unix:@").contains("empty abstract"));
    }

    #[test]
    fn unix_addresses() {
        let abs = |n: &str| ep(Scheme::Unix, Addr::Unix(UnixAddr::Abstract(n.into())));
        let path = |p: &str| ep(Scheme::Unix, Addr::Unix(UnixAddr::Path(p.into())));
        assert_eq!(ok("UNIX:///x"), path("/x"));
        assert_eq!(ok("unix://@name"), abs("name"));
        // A path or name may hold "://": it is not split there.
        assert_eq!(ok("unix:@a://b"), abs("a://b"));
        assert_eq!(ok("unix:///tmp/a://b"), path("/tmp/a://b"));
        let long = "x".repeat(MAX_UNIX_PATH);
        assert_eq!(ok(&format!("unix:{long}")), path(&long));
        assert!(
            err(&format!("unix:/{long}")).contains("socket path is 108 bytes long (at most 107)")
        );
        assert!(err(&format!("unix:@{long}x")).contains("abstract socket name is 108 bytes"));
        assert!(err("unix:/a\0b").contains("NUL"));
    }

    #[test]
    fn tls_over_unix_addresses() {
        let abs = |n: &str| ep(Scheme::TlsUnix, Addr::Unix(UnixAddr::Abstract(n.into())));
        let path = |p: &str| ep(Scheme::TlsUnix, Addr::Unix(UnixAddr::Path(p.into())));
        assert_eq!(ok("tls+unix:///run/x.sock"), path("/run/x.sock"));
        assert_eq!(ok("TLS+UNIX:///x"), path("/x"));
        assert_eq!(ok("tls+unix:rel.sock"), path("rel.sock"));
        assert_eq!(ok("tls+unix://@name"), abs("name"));
        assert_eq!(ok("tls+unix:@name"), abs("name"));
        assert_eq!(ok("tls+unix:///tmp/a://b"), path("/tmp/a://b"));
        let e = ok("tls+unix:///x");
        assert!(e.scheme().is_tls());
        assert_eq!(e.host_port(), None);
        assert_eq!(e.unix_addr(), Some(&UnixAddr::Path("/x".into())));
        assert!(err("tls+unix://").contains("missing socket path"));
        assert!(err("tls+unix:@").contains("empty abstract"));
        let long = "x".repeat(MAX_UNIX_PATH + 1);
        assert!(err(&format!("tls+unix:{long}")).contains("at most 107"));
        // `-U --tls` parses a bare path as tls+unix.
        let e = Endpoint::parse_with_default("/run/x.sock", Scheme::TlsUnix).unwrap();
        assert_eq!(e, path("/run/x.sock"));
        let e = Endpoint::parse_with_default("@name", Scheme::TlsUnix).unwrap();
        assert_eq!(e, abs("name"));
    }

    #[test]
    fn an_address_must_fit_its_scheme() {
        let unix = Addr::Unix(UnixAddr::Path("/x".into()));
        let hp = Addr::HostPort(HostPort {
            host: Host::Unspecified,
            port: 1,
        });
        assert!(Endpoint::new(Scheme::TlsUnix, unix.clone()).is_ok());
        assert!(Endpoint::new(Scheme::Tls, hp.clone()).is_ok());
        assert_eq!(
            Endpoint::new(Scheme::Tcp, unix).unwrap_err().to_string(),
            "a tcp address cannot be unix:///x"
        );
        assert!(Endpoint::new(Scheme::TlsUnix, hp).is_err());
    }

    #[test]
    fn a_default_port_fills_in_a_missing_one() {
        let hp = |s: &str| parse_host_port(s, Some(443)).unwrap_or_else(|e| panic!("{s}: {e}"));
        let name = |n: &str| Host::Name(n.into());
        assert_eq!(hp("example.com").port, 443);
        assert_eq!(hp("example.com").host, name("example.com"));
        assert_eq!(hp("example.com:8443").port, 8443);
        assert_eq!(hp("[::1]").port, 443);
        assert_eq!(hp("[::1]").host, Host::Ip(Ipv6Addr::LOCALHOST.into()));
        assert_eq!(hp("[::1]:1").port, 1);
        assert_eq!(hp("8080").port, 8080);
        assert!(parse_host_port("example.com", None).is_err());
        assert!(parse_host_port("[::1]", None).is_err());
    }

    #[test]
    fn default_scheme_applies_only_without_one() {
        let e = Endpoint::parse_with_default("h:1", Scheme::Udp).unwrap();
        assert_eq!(e.scheme(), Scheme::Udp);
        let e = Endpoint::parse_with_default("tcp://h:1", Scheme::Udp).unwrap();
        assert_eq!(e.scheme(), Scheme::Tcp);
    }

    #[test]
    fn errors_name_the_bad_part() {
        assert_eq!(
            err("localhost:http"),
            "invalid address \"localhost:http\": port \"http\" is not a number from 0 to 65535"
        );
        assert!(err("localhost:65536").contains("port \"65536\""));
        assert!(err("localhost").contains("missing \":port\""));
        assert!(err("localhost:").contains("missing port"));
        assert!(err("").contains("missing host and port"));
        assert!(err("bad host:1").contains("host \"bad host\""));
        assert!(err("a..b:1").contains("not a valid host name"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "127.0.0.1:8080",
            "[::1]:9",
            "tls://example.com:443",
            "udp://127.0.0.1:53",
            "unix:///tmp/s",
            "unix:@abs",
            "unix:@a://b",
            ":80",
            "tcp://unix:80",
            "tls+unix:///tmp/s",
            "tls+unix:@abs",
        ] {
            assert_eq!(ok(s).to_string(), s);
            assert_eq!(ok(&ok(s).to_string()), ok(s));
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        // A cheap stand-in for the fuzz target: every byte string of a small
        // alphabet up to length 5 parses or fails cleanly, with each scheme
        // as the default, and what parses prints in a form that reads back.
        let alphabet = ['[', ']', ':', '1', 'a', '/', '@', '.'];
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            for spec in SCHEMES {
                if let Ok(e) = Endpoint::parse_with_default(&s, spec.scheme) {
                    assert_eq!(ok(&e.to_string()), e, "{s:?}");
                }
            }
            if s.len() < 5 {
                for c in alphabet {
                    stack.push(format!("{s}{c}"));
                }
            }
        }
    }

    #[tokio::test]
    async fn localhost_is_both_loopback_addresses_without_dns() {
        for name in ["localhost", "app.localhost", "localhost."] {
            let hp = HostPort {
                host: Host::Name(name.into()),
                port: 7,
            };
            let want: Vec<SocketAddr> =
                vec!["127.0.0.1:7".parse().unwrap(), "[::1]:7".parse().unwrap()];
            assert_eq!(hp.resolve(false).await.unwrap(), want, "{name}");
            assert_eq!(hp.resolve(true).await.unwrap(), want, "{name}");
        }
        assert!(!is_localhost("notlocalhost"));
        assert!(!is_localhost("localhost.example"));
    }

    #[tokio::test]
    async fn resolves_literals_without_dns() {
        let hp = HostPort {
            host: Host::Unspecified,
            port: 7,
        };
        assert_eq!(
            hp.resolve(true).await.unwrap(),
            vec!["0.0.0.0:7".parse().unwrap()]
        );
        assert_eq!(
            hp.resolve(false).await.unwrap(),
            vec!["127.0.0.1:7".parse().unwrap()]
        );
    }
}
