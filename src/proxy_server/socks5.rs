//! SOCKS5 (RFC 1928) with username/password authentication (RFC 1929):
//! the parsers of the client's three messages and the builders of the
//! server's replies. Pure: no I/O, so every byte sequence can be tested
//! without sockets.
//!
//! Each parser takes what has been read so far and answers
//! `Ok(None)` (incomplete: read more), `Ok(Some((message, consumed)))`, or
//! an error carrying the reply code to send before closing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::rules::valid_name;
use super::{Failure, Target};

/// The protocol version byte.
pub const VERSION: u8 = 5;
/// Method: no authentication required.
pub const NO_AUTH: u8 = 0x00;
/// Method: username/password (RFC 1929).
pub const USER_PASS: u8 = 0x02;
/// Method selection: none of the offered methods is acceptable.
pub const NO_ACCEPTABLE: u8 = 0xff;
/// The version byte of the username/password sub-negotiation.
pub const AUTH_VERSION: u8 = 1;
/// The longest message a client sends: a request with a 255-byte name
/// (4 + 1 + 255 + 2 bytes); the authentication message is 3 + 255 + 255.
pub const MAX_MESSAGE: usize = 513;

/// Command: CONNECT.
pub const CMD_CONNECT: u8 = 0x01;

/// Reply code: succeeded.
pub const SUCCEEDED: u8 = 0x00;
/// Reply code: general SOCKS server failure.
pub const GENERAL_FAILURE: u8 = 0x01;
/// Reply code: connection not allowed by ruleset.
pub const NOT_ALLOWED: u8 = 0x02;
/// Reply code: network unreachable.
pub const NETWORK_UNREACHABLE: u8 = 0x03;
/// Reply code: host unreachable.
pub const HOST_UNREACHABLE: u8 = 0x04;
/// Reply code: connection refused.
pub const CONNECTION_REFUSED: u8 = 0x05;
/// Reply code: TTL expired (used for a timed-out connection).
pub const TTL_EXPIRED: u8 = 0x06;
/// Reply code: command not supported.
pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
/// Reply code: address type not supported.
pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

/// A malformed or unsupported message: what to answer, and why (for the
/// log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The bytes to send before closing (may be empty).
    pub reply: Vec<u8>,
    /// Why, for the log line.
    pub reason: String,
}

impl Reject {
    fn request(code: u8, reason: impl Into<String>) -> Reject {
        Reject {
            reply: reply(code, None),
            reason: format!("socks5: {} (replied {code:#04x})", reason.into()),
        }
    }
}

/// The methods the client offers (the first message).
pub fn parse_greeting(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, Reject> {
    let [version, n, rest @ ..] = buf else {
        return Ok(None);
    };
    if *version != VERSION {
        return Err(Reject {
            reply: Vec::new(),
            reason: format!("socks5: version {version} in the greeting"),
        });
    }
    let n = usize::from(*n);
    if n == 0 {
        return Err(Reject {
            reply: vec![VERSION, NO_ACCEPTABLE],
            reason: "socks5: the greeting offers no method".to_owned(),
        });
    }
    if rest.len() < n {
        return Ok(None);
    }
    Ok(Some((rest[..n].to_vec(), 2 + n)))
}

/// A user name and password from the sub-negotiation.
#[derive(Clone, PartialEq, Eq)]
pub struct UserPass {
    /// The user name (1 to 255 bytes).
    pub user: Vec<u8>,
    /// The password (1 to 255 bytes).
    pub pass: Vec<u8>,
}

impl std::fmt::Debug for UserPass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in a debug print.
        f.debug_struct("UserPass")
            .field("user", &String::from_utf8_lossy(&self.user))
            .finish_non_exhaustive()
    }
}

/// The username/password message (RFC 1929).
pub fn parse_auth(buf: &[u8]) -> Result<Option<(UserPass, usize)>, Reject> {
    let fail = |reason: &str| Reject {
        reply: vec![AUTH_VERSION, 0x01],
        reason: format!("socks5: {reason}"),
    };
    let [version, ulen, rest @ ..] = buf else {
        return Ok(None);
    };
    if *version != AUTH_VERSION {
        return Err(fail(&format!("username/password version {version}, not 1")));
    }
    let ulen = usize::from(*ulen);
    if rest.len() < ulen + 1 {
        return Ok(None);
    }
    let user = rest[..ulen].to_vec();
    let plen = usize::from(rest[ulen]);
    let rest = &rest[ulen + 1..];
    if rest.len() < plen {
        return Ok(None);
    }
    let pass = rest[..plen].to_vec();
    Ok(Some((UserPass { user, pass }, 3 + ulen + plen)))
}

/// The authentication status message: success or failure.
pub fn auth_reply(ok: bool) -> [u8; 2] {
    [AUTH_VERSION, if ok { 0x00 } else { 0x01 }]
}

/// The request (the CONNECT command and its destination).
pub fn parse_request(buf: &[u8]) -> Result<Option<(Target, usize)>, Reject> {
    let [version, cmd, _reserved, atyp, rest @ ..] = buf else {
        return Ok(None);
    };
    if *version != VERSION {
        return Err(Reject::request(
            GENERAL_FAILURE,
            format!("version {version} in the request"),
        ));
    }
    let (host, rest, len) = match atyp {
        0x01 => {
            let Some((ip, rest)) = rest.split_first_chunk::<4>() else {
                return Ok(None);
            };
            (Err(IpAddr::V4(Ipv4Addr::from(*ip))), rest, 4)
        }
        0x04 => {
            let Some((ip, rest)) = rest.split_first_chunk::<16>() else {
                return Ok(None);
            };
            (Err(IpAddr::V6(Ipv6Addr::from(*ip))), rest, 16)
        }
        0x03 => {
            let Some((n, rest)) = rest.split_first() else {
                return Ok(None);
            };
            let n = usize::from(*n);
            if rest.len() < n {
                return Ok(None);
            }
            (Ok(&rest[..n]), &rest[n..], 1 + n)
        }
        other => {
            return Err(Reject::request(
                ADDRESS_TYPE_NOT_SUPPORTED,
                format!("address type {other:#04x}"),
            ));
        }
    };
    let Some((port, _)) = rest.split_first_chunk::<2>() else {
        return Ok(None);
    };
    let port = u16::from_be_bytes(*port);
    // The whole message is in: now the command can be judged.
    if *cmd != CMD_CONNECT {
        let name = match cmd {
            0x02 => "bind".to_owned(),
            0x03 => "udp associate".to_owned(),
            other => format!("command {other:#04x}"),
        };
        return Err(Reject::request(
            COMMAND_NOT_SUPPORTED,
            format!("{name} is not supported"),
        ));
    }
    let target = match host {
        Err(ip) => Target::Ip(SocketAddr::new(ip, port)),
        Ok(name) => {
            let name = std::str::from_utf8(name).ok().filter(|n| valid_name(n));
            match name {
                // A client may send an address literal as a name.
                Some(name) => match name.parse::<IpAddr>() {
                    Ok(ip) => Target::Ip(SocketAddr::new(ip, port)),
                    Err(_) => Target::Name(name.to_owned(), port),
                },
                None => {
                    return Err(Reject::request(
                        HOST_UNREACHABLE,
                        "the destination is not a valid host name",
                    ));
                }
            }
        }
    };
    Ok(Some((target, 4 + len + 2)))
}

/// A reply to the request: `code`, and the address the proxy connected
/// from (all zeros when there is none).
pub fn reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let bound = bound.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut out = vec![VERSION, code, 0x00];
    match bound.ip() {
        IpAddr::V4(ip) => {
            out.push(0x01);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(0x04);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    out
}

/// The reply code for a failure to reach the destination.
pub fn failure_code(failure: Failure) -> u8 {
    match failure {
        Failure::NotAllowed => NOT_ALLOWED,
        Failure::NetworkUnreachable => NETWORK_UNREACHABLE,
        Failure::HostUnreachable => HOST_UNREACHABLE,
        Failure::Refused => CONNECTION_REFUSED,
        Failure::Timeout => TTL_EXPIRED,
        Failure::General => GENERAL_FAILURE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting() {
        assert_eq!(parse_greeting(&[5]), Ok(None));
        assert_eq!(parse_greeting(&[5, 2, 0]), Ok(None));
        assert_eq!(parse_greeting(&[5, 2, 0, 2, 9]), Ok(Some((vec![0, 2], 4))));
        let no_method = parse_greeting(&[5, 0]).unwrap_err();
        assert_eq!(no_method.reply, [5, 0xff]);
        assert!(parse_greeting(&[4, 1, 0]).is_err());
    }

    #[test]
    fn auth() {
        let msg = b"\x01\x05alice\x06secret";
        for cut in 0..msg.len() {
            assert_eq!(parse_auth(&msg[..cut]), Ok(None), "{cut}");
        }
        let (up, used) = parse_auth(msg).unwrap().unwrap();
        assert_eq!(
            (up.user.as_slice(), up.pass.as_slice(), used),
            (&b"alice"[..], &b"secret"[..], 14)
        );
        // 255-byte names and passwords.
        let mut long = vec![1, 255];
        long.extend([b'u'; 255]);
        long.push(255);
        long.extend([b'p'; 255]);
        let (up, used) = parse_auth(&long).unwrap().unwrap();
        assert_eq!((up.user.len(), up.pass.len(), used), (255, 255, 513));
        assert_eq!(parse_auth(b"\x05\x01a\x01b").unwrap_err().reply, [1, 1]);
        assert!(!format!("{up:?}").contains("ppp"));
        assert_eq!(auth_reply(true), [1, 0]);
        assert_eq!(auth_reply(false), [1, 1]);
    }

    #[test]
    fn requests() {
        let v4 = [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
        for cut in 0..v4.len() {
            assert_eq!(parse_request(&v4[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(
            parse_request(&v4),
            Ok(Some((Target::Ip("127.0.0.1:8080".parse().unwrap()), 10)))
        );
        let mut v6 = vec![5, 1, 0, 4];
        v6.extend(Ipv6Addr::LOCALHOST.octets());
        v6.extend([0, 80]);
        assert_eq!(
            parse_request(&v6),
            Ok(Some((Target::Ip("[::1]:80".parse().unwrap()), 22)))
        );
        let name = b"\x05\x01\x00\x03\x0bexample.com\x01\xbbextra";
        assert_eq!(
            parse_request(name),
            Ok(Some((Target::Name("example.com".into(), 443), 18)))
        );
        let literal = b"\x05\x01\x00\x03\x09127.0.0.1\x00\x50";
        assert_eq!(
            parse_request(literal),
            Ok(Some((Target::Ip("127.0.0.1:80".parse().unwrap()), 16)))
        );
    }

    #[test]
    fn rejected_requests_get_their_reply_codes() {
        let code = |buf: &[u8]| parse_request(buf).unwrap_err().reply[1];
        // BIND and UDP ASSOCIATE: command not supported.
        assert_eq!(
            code(&[5, 2, 0, 1, 127, 0, 0, 1, 0, 80]),
            COMMAND_NOT_SUPPORTED
        );
        assert_eq!(code(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]), COMMAND_NOT_SUPPORTED);
        assert_eq!(code(&[5, 1, 0, 9, 1, 2]), ADDRESS_TYPE_NOT_SUPPORTED);
        assert_eq!(code(&[4, 1, 0, 1, 1, 2, 3, 4, 0, 1]), GENERAL_FAILURE);
        assert_eq!(code(b"\x05\x01\x00\x03\x03a b\x00\x50"), HOST_UNREACHABLE);
        assert_eq!(code(b"\x05\x01\x00\x03\x00\x00\x50"), HOST_UNREACHABLE);
        let reject = parse_request(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(
            reject.reason,
            "socks5: udp associate is not supported (replied 0x07)"
        );
        assert_eq!(reject.reply, [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn replies() {
        assert_eq!(
            reply(SUCCEEDED, Some("10.0.0.2:4660".parse().unwrap())),
            [5, 0, 0, 1, 10, 0, 0, 2, 0x12, 0x34]
        );
        let v6 = reply(SUCCEEDED, Some("[::1]:1".parse().unwrap()));
        assert_eq!((v6.len(), v6[3], v6[19], v6[21]), (22, 4, 1, 1));
        assert_eq!(failure_code(Failure::Refused), 5);
        assert_eq!(failure_code(Failure::NetworkUnreachable), 3);
        assert_eq!(failure_code(Failure::HostUnreachable), 4);
        assert_eq!(failure_code(Failure::Timeout), 6);
        assert_eq!(failure_code(Failure::NotAllowed), 2);
    }
}
