//! The proxy client: reaching a target through SOCKS4, SOCKS4a, SOCKS5
//! (`socks5h`: the proxy resolves the name), HTTP CONNECT and HTTPS
//! CONNECT proxies, one or several chained.
//!
//! [`ProxyUrl`] is a parsed `--proxy` URL (pure; its `Display` and `Debug`
//! never show the credentials). The protocols are codecs without I/O in
//! `socks` and `http_connect` (requests encoded to bytes, replies decoded
//! from bytes, tested against byte fixtures) plus small async drivers that
//! read each reply with a bound on its size. `chain` runs the handshakes
//! over a connected stream, each proxy tunnelled through the one before:
//! it is a layer of the connect chain (see
//! [`transport`](crate::transport)), between dialing the first proxy and
//! the target's TLS.
//!
//! A proxy that refuses is reported with its own reason (a SOCKS reply
//! code, an HTTP status) and one of two error kinds:
//! [`ProxyRefused`](crate::error::ErrorKind::ProxyRefused) when it could
//! not reach the target (which may heal, so it is retried) and
//! [`ProxyDenied`](crate::error::ErrorKind::ProxyDenied) when it will not
//! serve us (credentials, rules).

mod chain;
mod http_connect;
mod socks;

use std::fmt;

use crate::endpoint::{Endpoint, HostPort, Scheme};
use crate::error::{Error, Result};
use crate::tls::TlsClientOptions;

pub(crate) use chain::ProxyChain;

/// The protocol a proxy speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProxyKind {
    /// SOCKS5 (RFC 1928), the target's name resolved here.
    Socks5,
    /// SOCKS5 with the target's name sent to the proxy, which resolves it.
    Socks5h,
    /// SOCKS4: IPv4 targets only, resolved here.
    Socks4,
    /// SOCKS4a: the target's name sent to the proxy.
    Socks4a,
    /// HTTP CONNECT (RFC 9110, 9.3.6), Basic authentication.
    Http,
    /// HTTP CONNECT over TLS to the proxy itself.
    Https,
}

impl ProxyKind {
    /// The scheme as written in a proxy URL.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Socks5h => "socks5h",
            ProxyKind::Socks4 => "socks4",
            ProxyKind::Socks4a => "socks4a",
            ProxyKind::Http => "http",
            ProxyKind::Https => "https",
        }
    }

    fn from_name(name: &str) -> Option<ProxyKind> {
        [
            ProxyKind::Socks5,
            ProxyKind::Socks5h,
            ProxyKind::Socks4,
            ProxyKind::Socks4a,
            ProxyKind::Http,
            ProxyKind::Https,
        ]
        .into_iter()
        .find(|k| k.as_str().eq_ignore_ascii_case(name))
    }

    /// The port used when a proxy URL leaves it out (curl's: 1080, and 443
    /// for HTTPS).
    fn default_port(self) -> u16 {
        match self {
            ProxyKind::Https => 443,
            _ => 1080,
        }
    }
}

/// A user name and password for a proxy. Never printed: `Debug` shows
/// `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name (percent-decoded from the URL).
    pub user: String,
    /// The password (percent-decoded from the URL); may be empty.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One proxy: `socks5://[user:pass@]host:port`, `socks5h://`, `socks4://`,
/// `socks4a://`, `http://` or `https://`. `Display` is the URL without its
/// credentials, for messages and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// The protocol.
    pub kind: ProxyKind,
    /// Where the proxy listens.
    pub addr: HostPort,
    /// The credentials, if the URL has any.
    pub credentials: Option<Credentials>,
}

/// The longest user name or password SOCKS5 can carry (RFC 1929: one
/// length byte).
pub const MAX_SOCKS5_CREDENTIAL: usize = 255;

impl ProxyUrl {
    /// Parses a proxy URL. Without a scheme it is an HTTP proxy, as in
    /// curl; without a port, curl's default port. User name and password
    /// are percent-decoded.
    pub fn parse(s: &str) -> Result<ProxyUrl> {
        // The message never repeats `s`: it may hold a password.
        let bad = |why: &str| Error::usage(format!("invalid proxy url: {why}"));
        let (kind, rest) = match s.split_once("://") {
            Some((name, rest)) => (
                ProxyKind::from_name(name).ok_or_else(|| {
                    bad(&format!(
                        "unknown scheme {:?} (expected socks5, socks5h, socks4, socks4a, http or https)",
                        name.to_ascii_lowercase()
                    ))
                })?,
                rest,
            ),
            None => (ProxyKind::Http, s),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, password) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user)
                    .ok_or_else(|| bad("bad percent-encoding in the user name"))?;
                let password = percent_decode(password)
                    .ok_or_else(|| bad("bad percent-encoding in the password"))?;
                Some(Credentials { user, password })
            }
        };
        if hostport.is_empty() || hostport.contains('/') {
            return Err(bad("expected SCHEME://[USER:PASSWORD@]HOST[:PORT]"));
        }
        let has_port = match hostport.rsplit_once(':') {
            Some((host, port)) => !port.is_empty() && (!host.contains(':') || host.ends_with(']')),
            None => false,
        };
        let with_port = if has_port {
            hostport.to_owned()
        } else {
            format!("{hostport}:{}", kind.default_port())
        };
        let endpoint =
            Endpoint::parse_with_default(&with_port, Scheme::Tcp).map_err(|e| bad(e.detail()))?;
        let addr = match endpoint.host_port() {
            Some(hp) if endpoint.scheme() == Scheme::Tcp && hp.port != 0 => hp.clone(),
            _ => return Err(bad("expected HOST:PORT with a port from 1 to 65535")),
        };
        let url = ProxyUrl {
            kind,
            addr,
            credentials,
        };
        url.check_credentials()?;
        Ok(url)
    }

    /// SOCKS5 carries each of user name and password in at most 255
    /// bytes, and SOCKS4 has no password: longer or unsendable credentials
    /// are a usage error, not a truncation.
    fn check_credentials(&self) -> Result<()> {
        let Some(c) = &self.credentials else {
            return Ok(());
        };
        match self.kind {
            ProxyKind::Socks5 | ProxyKind::Socks5h => {
                if c.user.is_empty() || c.user.len() > MAX_SOCKS5_CREDENTIAL {
                    return Err(Error::usage(format!(
                        "proxy {self}: a socks5 user name is 1 to 255 bytes (this one has {})",
                        c.user.len()
                    )));
                }
                if c.password.len() > MAX_SOCKS5_CREDENTIAL {
                    return Err(Error::usage(format!(
                        "proxy {self}: a socks5 password is at most 255 bytes (this one has {})",
                        c.password.len()
                    )));
                }
            }
            ProxyKind::Socks4 | ProxyKind::Socks4a => {
                if !c.password.is_empty() {
                    return Err(Error::usage(format!(
                        "proxy {self}: socks4 has a user id but no password"
                    )));
                }
                if c.user.as_bytes().contains(&0) {
                    return Err(Error::usage(format!(
                        "proxy {self}: a socks4 user id cannot hold a NUL byte"
                    )));
                }
            }
            ProxyKind::Http | ProxyKind::Https => {
                if c.user.contains(':') {
                    return Err(Error::usage(format!(
                        "proxy {self}: a basic-authentication user name cannot hold ':'"
                    )));
                }
            }
        }
        Ok(())
    }
}

impl std::str::FromStr for ProxyUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<ProxyUrl> {
        ProxyUrl::parse(s)
    }
}

impl fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.kind.as_str(), self.addr)
    }
}

/// Decodes `%XX` escapes; `None` for a malformed escape or a result that
/// is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// How connections go through proxies: the chain, in order (the first is
/// dialed, each next one reached through the one before), and how an
/// HTTPS proxy's certificate is verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyOptions {
    /// The proxies, first dialed first; empty for a direct connection.
    pub chain: Vec<ProxyUrl>,
    /// TLS options for `https://` proxies (the target's own TLS options
    /// are separate).
    pub tls: TlsClientOptions,
    /// The chain came from the environment (`NETCRAB_PROXY`, `ALL_PROXY`),
    /// not from `--proxy`: it applies to TCP and TLS endpoints and is
    /// ignored for the others (a Unix socket is reached directly), where
    /// an explicit `--proxy` is a usage error.
    pub from_env: bool,
}

impl ProxyOptions {
    /// Whether connections go through a proxy.
    pub fn is_empty(&self) -> bool {
        self.chain.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme_with_defaults() {
        let u = ProxyUrl::parse("socks5h://127.0.0.1:9050").unwrap();
        assert_eq!(u.kind, ProxyKind::Socks5h);
        assert_eq!(u.addr.to_string(), "127.0.0.1:9050");
        assert_eq!(u.credentials, None);
        assert_eq!(
            ProxyUrl::parse("SOCKS4A://proxy").unwrap().to_string(),
            "socks4a://proxy:1080"
        );
        assert_eq!(
            ProxyUrl::parse("127.0.0.1:3128").unwrap().to_string(),
            "http://127.0.0.1:3128"
        );
        assert_eq!(
            ProxyUrl::parse("https://[::1]/").unwrap().to_string(),
            "https://[::1]:443"
        );
        assert_eq!(
            ProxyUrl::parse("http://[::1]:8080").unwrap().to_string(),
            "http://[::1]:8080"
        );
    }

    #[test]
    fn credentials_are_decoded_and_never_shown() {
        let u = ProxyUrl::parse("socks5://us%40er:p%3Ass@127.0.0.1:1080").unwrap();
        let c = u.credentials.clone().unwrap();
        assert_eq!(c.user, "us@er");
        assert_eq!(c.password, "p:ss");
        assert_eq!(u.to_string(), "socks5://127.0.0.1:1080");
        let debug = format!("{u:?}");
        assert!(
            !debug.contains("p:ss") && !debug.contains("us@er"),
            "{debug}"
        );
        // A password with '@' in it, unencoded: the last '@' separates.
        let u = ProxyUrl::parse("http://u:a@b@h:1").unwrap();
        assert_eq!(u.credentials.unwrap().password, "a@b");
        // Errors do not repeat the URL (and its password).
        let err = ProxyUrl::parse("bogus://u:secret@h:1")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
        let err = ProxyUrl::parse("socks5://u:secret@h:99999")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn socks5_credentials_up_to_255_bytes() {
        let max = "u".repeat(255);
        let ok = format!("socks5://{max}:{max}@127.0.0.1:1");
        assert!(ProxyUrl::parse(&ok).is_ok());
        let long = "u".repeat(256);
        let err = ProxyUrl::parse(&format!("socks5://{long}:p@127.0.0.1:1")).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Usage);
        assert!(err.to_string().contains("1 to 255 bytes"), "{err}");
        let err = ProxyUrl::parse(&format!("socks5h://u:{long}@127.0.0.1:1")).unwrap_err();
        assert!(err.to_string().contains("at most 255 bytes"), "{err}");
        assert!(ProxyUrl::parse("socks4://u:p@127.0.0.1:1").is_err());
        assert!(ProxyUrl::parse("socks4://uid@127.0.0.1:1").is_ok());
    }

    #[test]
    fn malformed_urls_are_usage_errors() {
        for bad in [
            "ftp://h:1",
            "socks5://",
            "socks5://h:0",
            "socks5://h:1/path",
            "socks5://u:%zz@h:1",
            "http://h:notaport",
        ] {
            let err = ProxyUrl::parse(bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Usage, "{bad}");
        }
    }
}
