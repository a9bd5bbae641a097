//! SOCKS4 and its 4a extension (a host name for the proxy to resolve): the
//! parser of the client's one request and the builder of the reply. Pure:
//! no I/O.
//!
//! SOCKS4 has no passwords, so with `--auth` every SOCKS4 request is
//! rejected; the user id field is read and ignored.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::Target;
use super::rules::valid_name;

/// The protocol version byte.
pub const VERSION: u8 = 4;
/// Command: CONNECT.
pub const CMD_CONNECT: u8 = 0x01;
/// Reply code: request granted.
pub const GRANTED: u8 = 0x5a;
/// Reply code: request rejected or failed.
pub const REJECTED: u8 = 0x5b;
/// The longest user id or host name accepted (each ends with a NUL).
pub const MAX_FIELD: usize = 255;
/// The longest request: 8 bytes, then a user id and a host name, each with
/// its NUL.
pub const MAX_MESSAGE: usize = 8 + 2 * (MAX_FIELD + 1);

/// A malformed or unsupported request: why (the reply is always
/// [`REJECTED`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// Why, for the log line.
    pub reason: String,
}

fn reject(reason: impl Into<String>) -> Reject {
    Reject {
        reason: format!("socks4: {} (replied 0x5b)", reason.into()),
    }
}

/// Finds the NUL ending a field that starts `buf`: `Ok(None)` while it may
/// still come, an error when the field is too long.
fn field(buf: &[u8], what: &str) -> Result<Option<usize>, Reject> {
    match buf.iter().take(MAX_FIELD + 1).position(|&b| b == 0) {
        Some(nul) => Ok(Some(nul)),
        None if buf.len() > MAX_FIELD => {
            Err(reject(format!("{what} longer than {MAX_FIELD} bytes")))
        }
        None => Ok(None),
    }
}

/// The request: `Ok(None)` while incomplete, else the destination and the
/// bytes it took.
pub fn parse_request(buf: &[u8]) -> Result<Option<(Target, usize)>, Reject> {
    let Some((head, rest)) = buf.split_first_chunk::<8>() else {
        return Ok(None);
    };
    let [version, cmd, p0, p1, a, b, c, d] = *head;
    if version != VERSION {
        return Err(reject(format!("version {version}")));
    }
    let port = u16::from_be_bytes([p0, p1]);
    let Some(user_end) = field(rest, "user id")? else {
        return Ok(None);
    };
    let mut used = 8 + user_end + 1;
    let ip = Ipv4Addr::new(a, b, c, d);
    // SOCKS4a: 0.0.0.x (x not 0) says a host name follows the user id.
    let target = if a == 0 && b == 0 && c == 0 && d != 0 {
        let rest = &rest[user_end + 1..];
        let Some(name_end) = field(rest, "host name")? else {
            return Ok(None);
        };
        used += name_end + 1;
        let name = std::str::from_utf8(&rest[..name_end])
            .ok()
            .filter(|n| valid_name(n))
            .ok_or_else(|| reject("the destination is not a valid host name"))?;
        match name.parse::<IpAddr>() {
            Ok(ip) => Target::Ip(SocketAddr::new(ip, port)),
            Err(_) => Target::Name(name.to_owned(), port),
        }
    } else {
        Target::Ip(SocketAddr::new(IpAddr::V4(ip), port))
    };
    if cmd != CMD_CONNECT {
        let name = if cmd == 0x02 {
            "bind".to_owned()
        } else {
            format!("command {cmd:#04x}")
        };
        return Err(reject(format!("{name} is not supported")));
    }
    Ok(Some((target, used)))
}

/// A reply: granted or rejected (the address fields are ignored by
/// clients of a CONNECT and sent as zeros).
pub fn reply(granted: bool) -> [u8; 8] {
    [
        0,
        if granted { GRANTED } else { REJECTED },
        0,
        0,
        0,
        0,
        0,
        0,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks4_and_4a_requests() {
        let v4 = b"\x04\x01\x00\x50\x7f\x00\x00\x01alice\x00rest";
        for cut in 0..v4.len() - 4 {
            assert_eq!(parse_request(&v4[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(
            parse_request(v4),
            Ok(Some((Target::Ip("127.0.0.1:80".parse().unwrap()), 14)))
        );
        let v4a = b"\x04\x01\x01\xbb\x00\x00\x00\x09\x00example.com\x00";
        for cut in 0..v4a.len() {
            assert_eq!(parse_request(&v4a[..cut]), Ok(None), "{cut}");
        }
        assert_eq!(
            parse_request(v4a),
            Ok(Some((Target::Name("example.com".into(), 443), v4a.len())))
        );
    }

    #[test]
    fn bad_requests_are_rejected() {
        let err = |buf: &[u8]| parse_request(buf).unwrap_err().reason;
        assert_eq!(
            err(b"\x04\x02\x00\x50\x7f\x00\x00\x01\x00"),
            "socks4: bind is not supported (replied 0x5b)"
        );
        assert!(err(b"\x05\x01\x00\x50\x7f\x00\x00\x01\x00").contains("version 5"));
        let mut long = b"\x04\x01\x00\x50\x7f\x00\x00\x01".to_vec();
        long.extend([b'u'; 256]);
        assert!(err(&long).contains("user id longer"));
        assert!(err(b"\x04\x01\x00\x50\x00\x00\x00\x01\x00a b\x00").contains("host name"));
        assert_eq!(reply(true), [0, 0x5a, 0, 0, 0, 0, 0, 0]);
        assert_eq!(reply(false)[1], 0x5b);
    }
}
