//! `netcrab proxy`: a forward proxy speaking SOCKS5 (RFC 1928, CONNECT),
//! SOCKS4/4a and HTTP CONNECT on the same port, told apart by the first
//! byte the client sends (`0x05` is SOCKS5, `0x04` SOCKS4; anything else is
//! read as an HTTP request).
//!
//! Accepting (connection limit, accept backoff, drain) is the shared loop in
//! [`server`]. For each connection:
//!
//! 1. the client's handshake is read under one deadline (the handshake
//!    timeout) and within bounded sizes: SOCKS5's greeting, its
//!    username/password sub-negotiation when `--auth` is set (RFC 1929),
//!    and its request; or SOCKS4's one request (refused with `--auth`: it
//!    has no passwords); or an HTTP request head of at most
//!    [`ProxyConfig::max_header`] bytes, with `Proxy-Authorization: Basic`
//!    checked when `--auth` is set. A malformed or refused request gets
//!    its reply (a SOCKS reply code, an HTTP status) and the connection
//!    closes;
//! 2. the destination is checked against the access rules by name, then
//!    resolved, and each resolved address is checked again (a name cannot
//!    smuggle a denied address in); the allowed addresses are connected
//!    with Happy Eyeballs under the connect timeout;
//! 3. the outcome is answered (success, or the reply code or status for
//!    refused, unreachable, timed out, not allowed) and bytes move with the
//!    relay's path: splice(2) for TCP to TCP on Linux, a copy otherwise,
//!    with half-close and the idle timeout.
//!
//! One line is logged per connection, as relay does:
//! `CLIENT -> DEST via PROTOCOL: HOW (up N bytes, down M bytes, DURATION)`.
//! Passwords are never logged.
//!
//! The parsers ([`socks5`], [`socks4`], [`http`]) and the rules ([`rules`]) are pure,
//! tested on byte fixtures without sockets.

pub mod http;
pub mod rules;
pub mod socks4;
pub mod socks5;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::endpoint::{Host, HostPort};
use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::pipe::Dir;
use crate::relay::{CloseLog, End};
use crate::server::{self, ServerLimits, ServerReport};
use crate::service::{Conn, Observer, Service};
use crate::settings::Setting;
use crate::transport::{ConnectOptions, Listener, PeerAddr, Stream, connect_tcp_addrs};
use rules::Rules;

/// Everything `proxy` needs besides the listener.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// The user name and password clients must give (SOCKS5
    /// username/password, HTTP Basic); `None` lets everyone in.
    pub auth: Option<Credentials>,
    /// Which destinations may be reached.
    pub dest: Rules,
    /// Which clients may use the proxy (by address; Unix-socket clients
    /// are not checked).
    pub clients: Rules,
    /// Options for connecting to destinations (the connect timeout covers
    /// resolution too).
    pub connect: ConnectOptions,
    /// The time a client has to complete its handshake, from accept to its
    /// last request byte; past it the connection closes.
    pub handshake_timeout: Duration,
    /// The largest HTTP request head accepted (`431` past it).
    pub max_header: usize,
    /// Close a tunnel when nothing moves in either direction for this long.
    pub idle_timeout: Option<Duration>,
    /// Use splice(2) for TCP to TCP on Linux.
    pub splice: bool,
    /// Connection limit, drain timeout and options for accepted sockets.
    pub limits: ServerLimits,
}

impl Default for ProxyConfig {
    fn default() -> ProxyConfig {
        ProxyConfig {
            auth: None,
            dest: Rules::default(),
            clients: Rules::default(),
            connect: ConnectOptions {
                connect_timeout: Duration::from_secs(10),
                ..ConnectOptions::default()
            },
            handshake_timeout: Duration::from_secs(10),
            max_header: 8192,
            idle_timeout: Some(Duration::from_secs(600)),
            splice: true,
            limits: ServerLimits {
                max_conns: 1024,
                ..ServerLimits::default()
            },
        }
    }
}

/// A user name and password. The password is never printed, not even by
/// `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: Vec<u8>,
    pass: Vec<u8>,
}

impl Credentials {
    /// Parses `user:pass` (split at the first colon); each part 1 to 255
    /// bytes, as SOCKS5 carries them.
    pub fn parse(s: &str) -> Result<Credentials> {
        let Some((user, pass)) = s.split_once(':') else {
            return Err(Error::usage(format!(
                "{} takes USER:PASSWORD",
                Setting::Auth
            )));
        };
        for (what, part) in [("user name", user), ("password", pass)] {
            if part.is_empty() || part.len() > 255 {
                return Err(Error::usage(format!(
                    "{}: the {what} must be 1 to 255 bytes",
                    Setting::Auth
                )));
            }
        }
        Ok(Credentials {
            user: user.as_bytes().to_vec(),
            pass: pass.as_bytes().to_vec(),
        })
    }

    /// Whether `user` and `pass` are these credentials (compared in time
    /// independent of where they differ).
    pub fn matches(&self, user: &[u8], pass: &[u8]) -> bool {
        // Both compared, so the time does not tell which was wrong.
        ct_eq(&self.user, user) & ct_eq(&self.pass, pass)
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

/// Compares without stopping at the first difference.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The destination a client asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An address.
    Ip(SocketAddr),
    /// A host name (resolved by the proxy) and a port.
    Name(String, u16),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(addr) => write!(f, "{addr}"),
            Target::Name(name, port) => write!(f, "{name}:{port}"),
        }
    }
}

/// Why the destination could not be reached, as the protocols tell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The access rules refuse it.
    NotAllowed,
    /// No route to its network.
    NetworkUnreachable,
    /// The host is unreachable, or its name does not resolve.
    HostUnreachable,
    /// It refused the connection.
    Refused,
    /// The connection (or resolution) timed out.
    Timeout,
    /// Anything else.
    General,
}

impl Failure {
    /// The error kind of a failed connect, for metrics.
    fn kind(self) -> ErrorKind {
        match self {
            Failure::NotAllowed => ErrorKind::ProxyDenied,
            Failure::NetworkUnreachable | Failure::HostUnreachable => ErrorKind::Unreachable,
            Failure::Refused => ErrorKind::Refused,
            Failure::Timeout => ErrorKind::Timeout,
            Failure::General => ErrorKind::Io,
        }
    }

    /// The failure for a connect or resolve error.
    fn of(err: &Error) -> Failure {
        match err.kind() {
            ErrorKind::Refused => Failure::Refused,
            ErrorKind::Timeout => Failure::Timeout,
            ErrorKind::Resolve | ErrorKind::ResolveTemporary => Failure::HostUnreachable,
            ErrorKind::Unreachable => {
                let errno = std::error::Error::source(err)
                    .and_then(|e| e.downcast_ref::<std::io::Error>())
                    .and_then(std::io::Error::raw_os_error);
                match errno {
                    Some(libc::ENETUNREACH | libc::ENETDOWN) => Failure::NetworkUnreachable,
                    _ => Failure::HostUnreachable,
                }
            }
            _ => Failure::General,
        }
    }
}

/// The protocol a client spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Socks5,
    Socks4,
    Http,
}

impl Proto {
    /// The answer for a failure, and how it is named in the log.
    fn failure(self, failure: Failure) -> (Vec<u8>, String) {
        match self {
            Proto::Socks5 => {
                let code = socks5::failure_code(failure);
                (socks5::reply(code, None), format!("{code:#04x}"))
            }
            Proto::Socks4 => (socks4::reply(false).to_vec(), "0x5b".to_owned()),
            Proto::Http => {
                let status = http::failure_status(failure);
                let why = match failure {
                    Failure::NotAllowed => "destination not allowed",
                    Failure::NetworkUnreachable => "network unreachable",
                    Failure::HostUnreachable => "host unreachable",
                    Failure::Refused => "connection refused",
                    Failure::Timeout => "timed out",
                    Failure::General => "connection failed",
                };
                (http::error_response(status, why), status.to_string())
            }
        }
    }

    /// The answer opening the tunnel.
    fn success(self, bound: Option<SocketAddr>) -> Vec<u8> {
        match self {
            Proto::Socks5 => socks5::reply(socks5::SUCCEEDED, bound),
            Proto::Socks4 => socks4::reply(true).to_vec(),
            Proto::Http => http::ESTABLISHED.to_vec(),
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Socks5 => "socks5",
            Proto::Socks4 => "socks4",
            Proto::Http => "http connect",
        })
    }
}

/// A handshake that ends the connection: what to answer, and why.
struct Rejected {
    reply: Vec<u8>,
    reason: String,
}

impl Rejected {
    fn silent(reason: impl Into<String>) -> Rejected {
        Rejected {
            reply: Vec::new(),
            reason: reason.into(),
        }
    }
}

impl From<socks5::Reject> for Rejected {
    fn from(r: socks5::Reject) -> Rejected {
        Rejected {
            reply: r.reply,
            reason: r.reason,
        }
    }
}

impl From<socks4::Reject> for Rejected {
    fn from(r: socks4::Reject) -> Rejected {
        Rejected {
            reply: socks4::reply(false).to_vec(),
            reason: r.reason,
        }
    }
}

impl From<http::Reject> for Rejected {
    fn from(r: http::Reject) -> Rejected {
        Rejected {
            reply: http::error_response(r.status, &r.reason),
            reason: format!("{} (answered {})", r.reason, r.status),
        }
    }
}

/// Serves proxy clients from `listener` until `shutdown` is cancelled,
/// then drains. Returns once every connection has ended.
pub async fn run(
    listener: Listener,
    config: ProxyConfig,
    shutdown: CancellationToken,
) -> Result<ServerReport> {
    let limits = config.limits.clone();
    server::run(listener, &limits, shutdown, ProxyService::new(config)).await
}

/// `netcrab proxy` as a [`Service`]: each connection is a proxy client
/// (handshake, then a tunnel through [`crate::pipe`]).
#[derive(Debug, Clone)]
pub struct ProxyService {
    config: Arc<ProxyConfig>,
}

impl ProxyService {
    /// The service `config` describes (its limits are for the accept loop).
    pub fn new(config: ProxyConfig) -> ProxyService {
        ProxyService {
            config: Arc::new(config),
        }
    }
}

impl Service for ProxyService {
    fn serve<O: Observer>(&self, conn: Conn<O>) -> impl Future<Output = ()> + Send + 'static {
        let config = self.config.clone();
        async move {
            let Conn {
                stream,
                peer,
                observer,
                ..
            } = conn;
            let mut log = CloseLog::new(peer, "(handshake)".to_owned());
            handle(stream, &mut log, &config, &observer).await;
            log.report(&observer);
        }
    }
}

/// Serves one client to its end and logs how it ended.
async fn handle<O: Observer>(
    mut client: Stream,
    log: &mut CloseLog,
    config: &ProxyConfig,
    observer: &O,
) {
    // A client behind a PROXY protocol header is checked by the address
    // the header carries.
    let client_ip = match &log.client {
        PeerAddr::Inet(addr) => Some(addr.ip()),
        PeerAddr::Proxied { source, .. } => Some(source.ip()),
        _ => None,
    };
    if let Some(ip) = client_ip
        && !config.clients.allows(None, ip)
    {
        observer.denied();
        log.log(&End::Rejected(format!(
            "client not allowed by {}/{}: closed",
            Setting::Allow,
            Setting::Deny
        )));
        return;
    }
    let deadline = crate::deadline::from_now(config.handshake_timeout);
    let mut buf = Vec::new();
    let negotiated =
        tokio::time::timeout_at(deadline, negotiate(&mut client, &mut buf, config)).await;
    let (proto, target) = match negotiated {
        Ok(Ok(done)) => done,
        Ok(Err(rejected)) => {
            if !rejected.reply.is_empty() {
                answer(&mut client, &rejected.reply, config).await;
            }
            log.log(&End::Rejected(rejected.reason));
            return;
        }
        Err(_) => {
            log.log(&End::Rejected(format!(
                "handshake timeout ({}): closed",
                fmt_duration(config.handshake_timeout)
            )));
            return;
        }
    };
    log.upstream = format!("{target} via {proto}");
    tracing::debug!("{}: connecting to {target} ({proto})", log.client);
    let started = Instant::now();
    let reached = reach(&target, config).await;
    match &reached {
        Ok(_) => observer.upstream_connect(Ok(()), started.elapsed()),
        // Refused by the rules: no attempt was made.
        Err((Failure::NotAllowed, _)) => {}
        Err((failure, _)) => observer.upstream_connect(Err(failure.kind()), started.elapsed()),
    }
    let upstream = match reached {
        Ok(upstream) => upstream,
        Err((failure, why)) => {
            let (reply, named) = proto.failure(failure);
            answer(&mut client, &reply, config).await;
            log.log(&End::Rejected(format!("{why} (answered {named})")));
            return;
        }
    };
    if let Ok(addr) = upstream.peer_addr() {
        let addr = addr.to_string();
        if addr != target.to_string() {
            log.upstream = format!("{target} ({addr}) via {proto}");
        }
    }
    let reply = proto.success(upstream.local_addr().ok());
    let opened = tokio::time::timeout(config.handshake_timeout, client.write_all(&reply)).await;
    if !matches!(opened, Ok(Ok(()))) {
        log.log(&End::Rejected(
            "client gone before the tunnel opened".to_owned(),
        ));
        return;
    }
    let mut upstream = Stream::Tcp(upstream);
    // Bytes the client sent right behind its request belong to the tunnel.
    if !buf.is_empty() {
        match upstream.write_all(&buf).await {
            Ok(()) => log.traffic.add(Dir::Up, buf.len()),
            Err(err) => {
                log.log(&End::Rejected(format!(
                    "destination error: {}",
                    Error::io("write", err)
                )));
                return;
            }
        }
    }
    drop(buf);
    let end = crate::relay::relay(
        client,
        upstream,
        config.idle_timeout,
        config.splice,
        &log.traffic,
        None,
    )
    .await;
    log.log(&end);
}

/// Writes a final answer to a client we are about to close, within the
/// handshake timeout (a client that does not read cannot hold the task).
///
/// Then it reads and drops what the client still sends, for a moment
/// (a lingering close, as web servers do): closing a socket with unread
/// bytes sends a reset, which could destroy the answer before the client
/// reads it (a 431 for a head the client is still sending, say).
async fn answer(client: &mut Stream, reply: &[u8], config: &ProxyConfig) {
    let written = tokio::time::timeout(config.handshake_timeout, async {
        client.write_all(reply).await?;
        client.flush().await?;
        client.shutdown().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return;
    }
    let linger = config.handshake_timeout.min(LINGER);
    let _ = tokio::time::timeout(linger, async {
        let mut sink = [0u8; 2048];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// How long a rejected client's remaining bytes are read before closing.
const LINGER: Duration = Duration::from_millis(500);
/// How many of them, at most.
const LINGER_BYTES: usize = 64 * 1024;

/// Reads the client's handshake: its protocol and destination. What it
/// sent after its request is left in `buf`.
async fn negotiate(
    client: &mut Stream,
    buf: &mut Vec<u8>,
    config: &ProxyConfig,
) -> std::result::Result<(Proto, Target), Rejected> {
    read_more(client, buf, 1).await?;
    if buf.first() == Some(&socks5::VERSION) {
        let target = negotiate_socks5(client, buf, config).await?;
        Ok((Proto::Socks5, target))
    } else if buf.first() == Some(&socks4::VERSION) {
        let target = next(client, buf, socks4::MAX_MESSAGE, socks4::parse_request).await?;
        if config.auth.is_some() {
            return Err(Rejected {
                reply: socks4::reply(false).to_vec(),
                reason: format!(
                    "socks4: no password authentication in socks4 ({} is set; use socks5) (replied 0x5b)",
                    Setting::Auth
                ),
            });
        }
        Ok((Proto::Socks4, target))
    } else {
        let target = negotiate_http(client, buf, config).await?;
        Ok((Proto::Http, target))
    }
}

async fn negotiate_socks5(
    client: &mut Stream,
    buf: &mut Vec<u8>,
    config: &ProxyConfig,
) -> std::result::Result<Target, Rejected> {
    let limit = socks5::MAX_MESSAGE;
    let methods = next(client, buf, limit, socks5::parse_greeting).await?;
    let method = if config.auth.is_some() {
        socks5::USER_PASS
    } else {
        socks5::NO_AUTH
    };
    if !methods.contains(&method) {
        let why = if config.auth.is_some() {
            format!(
                "socks5: the client does not offer username/password authentication ({} is set)",
                Setting::Auth
            )
        } else {
            format!(
                "socks5: the client does not offer \"no authentication\" ({} is not set)",
                Setting::Auth
            )
        };
        return Err(Rejected {
            reply: vec![socks5::VERSION, socks5::NO_ACCEPTABLE],
            reason: why,
        });
    }
    write(client, &[socks5::VERSION, method]).await?;
    if let Some(creds) = &config.auth {
        let given = next(client, buf, limit, socks5::parse_auth).await?;
        if !creds.matches(&given.user, &given.pass) {
            return Err(Rejected {
                reply: socks5::auth_reply(false).to_vec(),
                reason: format!(
                    "socks5: wrong user name or password (user \"{}\")",
                    crate::escape::escape_bytes(&given.user, 64)
                ),
            });
        }
        write(client, &socks5::auth_reply(true)).await?;
    }
    next(client, buf, limit, socks5::parse_request).await
}

async fn negotiate_http(
    client: &mut Stream,
    buf: &mut Vec<u8>,
    config: &ProxyConfig,
) -> std::result::Result<Target, Rejected> {
    let max = config.max_header;
    let request = next(client, buf, max, |b| http::parse_request(b, max)).await?;
    if let Some(creds) = &config.auth {
        let why = match &request.basic {
            None => Some(format!("http: no credentials ({} is set)", Setting::Auth)),
            Some((user, pass)) if !creds.matches(user, pass) => Some(format!(
                "http: wrong user name or password (user \"{}\")",
                crate::escape::escape_bytes(user, 64)
            )),
            Some(_) => None,
        };
        if let Some(why) = why {
            return Err(Rejected {
                reply: http::error_response(407, "proxy authentication required"),
                reason: format!("{why} (answered 407)"),
            });
        }
    }
    Ok(request.target)
}

/// Parses the next message with `parse`, reading more while it is
/// incomplete; removes it from `buf`.
async fn next<T, E>(
    client: &mut Stream,
    buf: &mut Vec<u8>,
    limit: usize,
    parse: impl Fn(&[u8]) -> std::result::Result<Option<(T, usize)>, E>,
) -> std::result::Result<T, Rejected>
where
    Rejected: From<E>,
{
    loop {
        if let Some((message, used)) = parse(buf)? {
            buf.drain(..used);
            return Ok(message);
        }
        if buf.len() >= limit {
            return Err(Rejected::silent(format!(
                "handshake message longer than {limit} bytes"
            )));
        }
        read_more(client, buf, limit).await?;
    }
}

/// Reads at least one byte into `buf`, never growing it past `limit`.
async fn read_more(
    client: &mut Stream,
    buf: &mut Vec<u8>,
    limit: usize,
) -> std::result::Result<(), Rejected> {
    let mut chunk = [0u8; 2048];
    let room = limit.saturating_sub(buf.len()).clamp(1, chunk.len());
    match client.read(&mut chunk[..room]).await {
        Ok(0) => Err(Rejected::silent(
            "closed by the client during the handshake",
        )),
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Err(err) => Err(Rejected::silent(format!(
            "client error during the handshake: {}",
            Error::io("read", err).detail()
        ))),
    }
}

async fn write(client: &mut Stream, bytes: &[u8]) -> std::result::Result<(), Rejected> {
    client.write_all(bytes).await.map_err(|err| {
        Rejected::silent(format!(
            "client error during the handshake: {}",
            Error::io("write", err).detail()
        ))
    })
}

/// Checks, resolves and connects the destination. The error says how to
/// answer and what to log.
async fn reach(
    target: &Target,
    config: &ProxyConfig,
) -> std::result::Result<tokio::net::TcpStream, (Failure, String)> {
    let not_allowed = || {
        (
            Failure::NotAllowed,
            format!(
                "destination not allowed by {}/{}",
                Setting::AllowDest,
                Setting::DenyDest
            ),
        )
    };
    let started = Instant::now();
    let (name, addrs) = match target {
        Target::Ip(addr) => (None, vec![*addr]),
        Target::Name(name, port) => {
            if config.dest.denies_name(name) {
                return Err(not_allowed());
            }
            let hp = HostPort {
                host: Host::Name(name.clone()),
                port: *port,
            };
            let resolved =
                tokio::time::timeout(config.connect.connect_timeout, hp.resolve(false)).await;
            let addrs = match resolved {
                Ok(Ok(addrs)) => addrs,
                Ok(Err(err)) => return Err((Failure::of(&err), err.to_string())),
                Err(_) => {
                    return Err((
                        Failure::Timeout,
                        format!(
                            "resolve {name}: timed out after {}",
                            fmt_duration(config.connect.connect_timeout)
                        ),
                    ));
                }
            };
            (Some(name.as_str()), addrs)
        }
    };
    let allowed: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|a| config.dest.allows(name, a.ip()))
        .collect();
    if allowed.is_empty() {
        return Err(not_allowed());
    }
    let context = format!("connect to {target}");
    // One connect timeout for resolving and connecting together.
    let spent = started.elapsed();
    let connect = if spent.is_zero() || name.is_none() {
        std::borrow::Cow::Borrowed(&config.connect)
    } else {
        let mut options = config.connect.clone();
        options.connect_timeout = options.connect_timeout.saturating_sub(spent);
        std::borrow::Cow::Owned(options)
    };
    connect_tcp_addrs(&context, &allowed, &connect)
        .await
        .map_err(|err| (Failure::of(&err), err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials() {
        let c = Credentials::parse("alice:pa:ss").unwrap();
        assert!(c.matches(b"alice", b"pa:ss"));
        assert!(!c.matches(b"alice", b"pa:sS"));
        assert!(!c.matches(b"alic", b"pa:ss"));
        assert!(!format!("{c:?}").contains("pa:ss"));
        for bad in ["alice", ":x", "x:", &format!("{}:x", "u".repeat(256))] {
            assert!(Credentials::parse(bad).is_err(), "{bad}");
        }
        let long = format!("{}:{}", "u".repeat(255), "p".repeat(255));
        assert!(Credentials::parse(&long).is_ok());
    }

    #[test]
    fn failures_of_connect_errors() {
        let io = |code| Error::io("connect to x", std::io::Error::from_raw_os_error(code));
        assert_eq!(Failure::of(&io(libc::ECONNREFUSED)), Failure::Refused);
        assert_eq!(
            Failure::of(&io(libc::ENETUNREACH)),
            Failure::NetworkUnreachable
        );
        assert_eq!(
            Failure::of(&io(libc::EHOSTUNREACH)),
            Failure::HostUnreachable
        );
        assert_eq!(Failure::of(&io(libc::ETIMEDOUT)), Failure::Timeout);
        assert_eq!(
            Failure::of(&Error::new(ErrorKind::Resolve, "resolve x")),
            Failure::HostUnreachable
        );
        assert_eq!(Failure::of(&io(libc::EMFILE)), Failure::General);
    }

    #[test]
    fn targets_print_as_host_port() {
        assert_eq!(
            Target::Ip("[::1]:80".parse().unwrap()).to_string(),
            "[::1]:80"
        );
        assert_eq!(Target::Name("h".into(), 1).to_string(), "h:1");
    }

    proptest::proptest! {
        /// No input makes a parser panic, and what they consume lies
        /// within what they were given.
        #[test]
        fn parsers_never_panic(input in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            for parsed in [
                socks5::parse_greeting(&input).ok().flatten().map(|(_, n)| n),
                socks5::parse_auth(&input).ok().flatten().map(|(_, n)| n),
                socks5::parse_request(&input).ok().flatten().map(|(_, n)| n),
                socks4::parse_request(&input).ok().flatten().map(|(_, n)| n),
                http::parse_request(&input, 256).ok().flatten().map(|(_, n)| n),
            ]
            .into_iter()
            .flatten()
            {
                proptest::prop_assert!(parsed <= input.len());
            }
        }

        /// Well-formed prefixes followed by anything: still no panic.
        #[test]
        fn parsers_never_panic_on_near_misses(
            prefix in proptest::sample::select(vec![
                &b"\x05\x01\x00\x03"[..], b"\x05\x01\x00\x01", b"\x05\x01\x00\x04", b"\x01",
                b"\x04\x01\x00\x50\x00\x00\x00\x01", b"\x04\x01\x00\x50\x00\x00\x00\x01u\x00",
                b"CONNECT ", b"CONNECT [", b"CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic ",
            ]),
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let mut input = prefix.to_vec();
            input.extend(tail);
            let _ = socks5::parse_auth(&input);
            let _ = socks5::parse_request(&input);
            let _ = socks4::parse_request(&input);
            let _ = http::parse_request(&input, 8192);
            let _ = http::parse_request(&input, 16);
        }
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// Every tunnel's task is this future: 3,184 bytes in a test build
    /// since the relay boxes its fault layer (6,504 before). Boxing the
    /// handshake and the connect too saves only 80 bytes: what is left is
    /// the relay itself and the close line's state.
    #[tokio::test]
    async fn the_connection_future_stays_small() {
        let conn = crate::service::loopback_conn().await;
        let future = ProxyService::new(ProxyConfig::default()).serve(conn);
        let size = std::mem::size_of_val(&future);
        eprintln!("proxy connection future: {size} bytes");
        assert!(size <= 3328, "{size} bytes");
    }
}
