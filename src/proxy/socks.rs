//! SOCKS5 (RFC 1928, user/password authentication RFC 1929), SOCKS4 and
//! SOCKS4a, client side.
//!
//! The codec half is pure: requests are encoded into bytes, replies
//! decoded from bytes, and every reply code becomes an [`Error`] of the
//! right kind with the proxy's reason. The driver half
//! ([`socks5_handshake`], [`socks4_handshake`]) writes each request in one
//! write and reads replies with `read_exact` of known sizes: nothing a
//! proxy sends can make it read more than 4 + 1 + 255 + 2 bytes at once.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::Credentials;
use crate::error::{Error, ErrorKind, Result};

/// The target as sent to a proxy: an address, or a name it resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// An IP address and port, resolved here.
    Addr(SocketAddr),
    /// A host name and port, resolved by the proxy.
    Name(String, u16),
}

/// SOCKS5 authentication methods.
const NO_AUTH: u8 = 0x00;
const USER_PASS: u8 = 0x02;
const NO_ACCEPTABLE: u8 = 0xff;

/// The greeting: version 5 and the methods offered (user/password only
/// when there are credentials).
pub(super) fn socks5_greeting(auth: bool) -> Vec<u8> {
    if auth {
        vec![5, 2, NO_AUTH, USER_PASS]
    } else {
        vec![5, 1, NO_AUTH]
    }
}

/// The method the proxy chose, from its 2-byte answer to the greeting.
pub(super) fn socks5_method(reply: [u8; 2], auth: bool) -> Result<u8> {
    match reply {
        [5, NO_AUTH] => Ok(NO_AUTH),
        [5, USER_PASS] if auth => Ok(USER_PASS),
        [5, USER_PASS] => Err(denied(
            "the proxy requires a user name and password (give them in the url: socks5://USER:PASSWORD@HOST:PORT)",
        )),
        [5, NO_ACCEPTABLE] if auth => Err(denied(
            "the proxy accepts none of the offered authentication methods (none, user/password)",
        )),
        [5, NO_ACCEPTABLE] => Err(denied(
            "the proxy requires authentication (give USER:PASSWORD@ in the url)",
        )),
        [5, m] => Err(protocol(&format!(
            "the proxy chose authentication method {m}, which was not offered"
        ))),
        [v, _] => Err(protocol(&format!(
            "not a socks5 proxy (version {v} in its reply)"
        ))),
    }
}

/// The user/password sub-negotiation (RFC 1929). The lengths were
/// checked when the URL was parsed; they are checked again here.
pub(super) fn socks5_auth(c: &Credentials) -> Result<Vec<u8>> {
    let (user, pass) = (c.user.as_bytes(), c.password.as_bytes());
    let (Ok(ulen), Ok(plen)) = (u8::try_from(user.len()), u8::try_from(pass.len())) else {
        return Err(Error::usage(
            "socks5 user names and passwords are at most 255 bytes",
        ));
    };
    let mut out = Vec::with_capacity(3 + user.len() + pass.len());
    out.extend_from_slice(&[1, ulen]);
    out.extend_from_slice(user);
    out.push(plen);
    out.extend_from_slice(pass);
    Ok(out)
}

/// The proxy's 2-byte answer to the user/password sub-negotiation.
pub(super) fn socks5_auth_status(reply: [u8; 2]) -> Result<()> {
    match reply {
        [_, 0] => Ok(()),
        [_, status] => Err(denied(&format!(
            "authentication failed: wrong user name or password (status {status})"
        ))),
    }
}

/// A CONNECT request for `target`.
pub(super) fn socks5_connect(target: &Target) -> Result<Vec<u8>> {
    let mut out = vec![5, 1, 0];
    match target {
        Target::Addr(SocketAddr::V4(a)) => {
            out.push(1);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Target::Addr(SocketAddr::V6(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_be_bytes());
        }
        Target::Name(name, port) => {
            let len = u8::try_from(name.len())
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::usage(format!(
                        "host name {name:?} cannot be sent to a socks5 proxy (1 to 255 bytes)"
                    ))
                })?;
            out.push(3);
            out.push(len);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&port.to_be_bytes());
        }
    }
    Ok(out)
}

/// The head of a CONNECT reply (version, code, reserved, address type):
/// `Ok` with how many bytes of address and port follow, or the proxy's
/// refusal.
pub(super) fn socks5_reply_head(head: [u8; 4]) -> Result<ReplyTail> {
    let [version, code, _, atyp] = head;
    if version != 5 {
        return Err(protocol(&format!(
            "not a socks5 proxy (version {version} in its reply)"
        )));
    }
    if code != 0 {
        return Err(socks5_refusal(code));
    }
    match atyp {
        1 => Ok(ReplyTail::Fixed(4 + 2)),
        4 => Ok(ReplyTail::Fixed(16 + 2)),
        3 => Ok(ReplyTail::Name),
        other => Err(protocol(&format!(
            "the proxy's reply has an unknown address type {other}"
        ))),
    }
}

/// What follows a successful reply's head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplyTail {
    /// This many bytes (address and port).
    Fixed(usize),
    /// A length byte, that many bytes of name, and the port.
    Name,
}

/// The error for a SOCKS5 reply code (RFC 1928, section 6).
pub(super) fn socks5_refusal(code: u8) -> Error {
    let (kind, why) = match code {
        1 => (ErrorKind::ProxyRefused, "general socks server failure"),
        2 => (ErrorKind::ProxyDenied, "connection not allowed by ruleset"),
        3 => (ErrorKind::ProxyRefused, "network unreachable"),
        4 => (ErrorKind::ProxyRefused, "host unreachable"),
        5 => (ErrorKind::ProxyRefused, "connection refused by the target"),
        6 => (ErrorKind::ProxyRefused, "ttl expired"),
        7 => (ErrorKind::ProxyDenied, "command not supported"),
        8 => (ErrorKind::ProxyDenied, "address type not supported"),
        _ => (ErrorKind::ProxyRefused, "unknown failure"),
    };
    Error::new(kind, "").with_detail(format!("proxy refused: {why} (socks5 reply {code})"))
}

/// A SOCKS4 CONNECT request; SOCKS4a when `target` is a name.
pub(super) fn socks4_connect(target: &Target, user: Option<&Credentials>) -> Result<Vec<u8>> {
    let user = user.map_or(&b""[..], |c| c.user.as_bytes());
    let mut out = vec![4, 1];
    match target {
        Target::Addr(SocketAddr::V4(a)) => {
            out.extend_from_slice(&a.port().to_be_bytes());
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(user);
            out.push(0);
        }
        Target::Addr(SocketAddr::V6(a)) => {
            return Err(Error::usage(format!(
                "socks4 carries only ipv4 addresses, not {} (use socks4a or socks5)",
                a.ip()
            )));
        }
        Target::Name(name, port) => {
            if name.as_bytes().contains(&0) || name.is_empty() {
                return Err(Error::usage(format!("invalid host name {name:?}")));
            }
            out.extend_from_slice(&port.to_be_bytes());
            // 0.0.0.x with x nonzero: "the name follows" (SOCKS4a).
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(user);
            out.push(0);
            out.extend_from_slice(name.as_bytes());
            out.push(0);
        }
    }
    Ok(out)
}

/// The 8-byte SOCKS4 reply.
pub(super) fn socks4_reply(reply: [u8; 8]) -> Result<()> {
    if reply[0] != 0 {
        return Err(protocol(&format!(
            "not a socks4 proxy (version {} in its reply)",
            reply[0]
        )));
    }
    let (kind, why) = match reply[1] {
        0x5a => return Ok(()),
        0x5b => (ErrorKind::ProxyRefused, "request rejected or failed"),
        0x5c => (
            ErrorKind::ProxyDenied,
            "the proxy could not reach our identd",
        ),
        0x5d => (
            ErrorKind::ProxyDenied,
            "identd reported a different user id",
        ),
        _ => (ErrorKind::ProxyRefused, "unknown failure"),
    };
    Err(Error::new(kind, "")
        .with_detail(format!("proxy refused: {why} (socks4 reply {})", reply[1])))
}

fn denied(why: &str) -> Error {
    Error::new(ErrorKind::ProxyDenied, "").with_detail(format!("proxy refused: {why}"))
}

fn protocol(why: &str) -> Error {
    Error::new(ErrorKind::Protocol, "").with_detail(why.to_owned())
}

/// Reads exactly `N` bytes; a proxy that closes first broke the protocol.
async fn read_array<S, const N: usize>(stream: &mut S) -> Result<[u8; N]>
where
    S: AsyncRead + Unpin,
{
    let mut buf = [0u8; N];
    read_exact(stream, &mut buf).await?;
    Ok(buf)
}

async fn read_exact<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> Result<()> {
    match stream.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(protocol(
            "the proxy closed the connection during the handshake",
        )),
        Err(e) => Err(Error::io("", e)),
    }
}

async fn write_all<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<()> {
    stream.write_all(bytes).await.map_err(|e| Error::io("", e))
}

/// Runs a SOCKS5 handshake to `target` over `stream`.
pub(super) async fn socks5_handshake<S>(
    stream: &mut S,
    target: &Target,
    credentials: Option<&Credentials>,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let auth = credentials.is_some();
    write_all(stream, &socks5_greeting(auth)).await?;
    let method = socks5_method(read_array(stream).await?, auth)?;
    if let (USER_PASS, Some(c)) = (method, credentials) {
        write_all(stream, &socks5_auth(c)?).await?;
        socks5_auth_status(read_array(stream).await?)?;
    }
    write_all(stream, &socks5_connect(target)?).await?;
    let rest = match socks5_reply_head(read_array(stream).await?)? {
        ReplyTail::Fixed(n) => n,
        ReplyTail::Name => usize::from(read_array::<S, 1>(stream).await?[0]) + 2,
    };
    // The bound address: at most 255 + 2 bytes, read and dropped.
    let mut tail = [0u8; 257];
    read_exact(stream, &mut tail[..rest]).await
}

/// Runs a SOCKS4 (or SOCKS4a, for a name) handshake to `target`.
pub(super) async fn socks4_handshake<S>(
    stream: &mut S,
    target: &Target,
    credentials: Option<&Credentials>,
) -> Result<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    write_all(stream, &socks4_connect(target, credentials)?).await?;
    socks4_reply(read_array(stream).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.to_owned(),
            password: password.to_owned(),
        }
    }

    #[test]
    fn socks5_requests_match_rfc_1928_bytes() {
        assert_eq!(socks5_greeting(false), [5, 1, 0]);
        assert_eq!(socks5_greeting(true), [5, 2, 0, 2]);
        let v4 = Target::Addr("127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            socks5_connect(&v4).unwrap(),
            [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]
        );
        let v6 = Target::Addr("[::1]:80".parse().unwrap());
        let mut want = vec![5, 1, 0, 4];
        want.extend_from_slice(&[0; 15]);
        want.extend_from_slice(&[1, 0, 80]);
        assert_eq!(socks5_connect(&v6).unwrap(), want);
        let name = Target::Name("example.com".into(), 443);
        let mut want = vec![5, 1, 0, 3, 11];
        want.extend_from_slice(b"example.com");
        want.extend_from_slice(&[1, 187]);
        assert_eq!(socks5_connect(&name).unwrap(), want);
        assert!(socks5_connect(&Target::Name("a".repeat(256), 1)).is_err());
    }

    #[test]
    fn socks5_auth_carries_255_byte_credentials() {
        assert_eq!(
            socks5_auth(&creds("ab", "xyz")).unwrap(),
            [1, 2, b'a', b'b', 3, b'x', b'y', b'z']
        );
        let max = "p".repeat(255);
        let bytes = socks5_auth(&creds(&max, &max)).unwrap();
        assert_eq!(bytes.len(), 3 + 255 + 255);
        assert_eq!((bytes[1], bytes[257]), (255, 255));
        assert!(socks5_auth(&creds(&"p".repeat(256), "")).is_err());
        assert!(socks5_auth_status([1, 0]).is_ok());
        let err = socks5_auth_status([1, 1]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProxyDenied);
        assert!(err.detail().contains("wrong user name or password"));
    }

    #[test]
    fn socks5_method_choices() {
        assert_eq!(socks5_method([5, 0], false).unwrap(), NO_AUTH);
        assert_eq!(socks5_method([5, 2], true).unwrap(), USER_PASS);
        assert_eq!(
            socks5_method([5, 0xff], true).unwrap_err().kind(),
            ErrorKind::ProxyDenied
        );
        assert_eq!(
            socks5_method([5, 0xff], false).unwrap_err().kind(),
            ErrorKind::ProxyDenied
        );
        assert_eq!(
            socks5_method([5, 2], false).unwrap_err().kind(),
            ErrorKind::ProxyDenied
        );
        assert_eq!(
            socks5_method([5, 1], true).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        // An HTTP proxy answering a SOCKS greeting: "HT".
        assert_eq!(
            socks5_method(*b"HT", false).unwrap_err().kind(),
            ErrorKind::Protocol
        );
    }

    #[test]
    fn socks5_reply_codes_become_kinds_and_reasons() {
        assert_eq!(
            socks5_reply_head([5, 0, 0, 1]).unwrap(),
            ReplyTail::Fixed(6)
        );
        assert_eq!(
            socks5_reply_head([5, 0, 0, 4]).unwrap(),
            ReplyTail::Fixed(18)
        );
        assert_eq!(socks5_reply_head([5, 0, 0, 3]).unwrap(), ReplyTail::Name);
        assert_eq!(
            socks5_reply_head([5, 0, 0, 9]).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        assert_eq!(
            socks5_reply_head([4, 0, 0, 1]).unwrap_err().kind(),
            ErrorKind::Protocol
        );
        let cases = [
            (1, ErrorKind::ProxyRefused, "general socks server failure"),
            (2, ErrorKind::ProxyDenied, "not allowed by ruleset"),
            (3, ErrorKind::ProxyRefused, "network unreachable"),
            (4, ErrorKind::ProxyRefused, "host unreachable"),
            (
                5,
                ErrorKind::ProxyRefused,
                "connection refused by the target",
            ),
            (6, ErrorKind::ProxyRefused, "ttl expired"),
            (7, ErrorKind::ProxyDenied, "command not supported"),
            (8, ErrorKind::ProxyDenied, "address type not supported"),
            (42, ErrorKind::ProxyRefused, "unknown failure"),
        ];
        for (code, kind, why) in cases {
            let err = socks5_reply_head([5, code, 0, 1]).unwrap_err();
            assert_eq!(err.kind(), kind, "{code}");
            assert!(err.detail().contains(why), "{code}: {err}");
            assert!(err.detail().contains(&format!("socks5 reply {code}")));
        }
    }

    #[test]
    fn socks4_and_4a_requests_and_replies() {
        let v4 = Target::Addr("10.1.2.3:80".parse().unwrap());
        assert_eq!(
            socks4_connect(&v4, Some(&creds("bob", ""))).unwrap(),
            [4, 1, 0, 80, 10, 1, 2, 3, b'b', b'o', b'b', 0]
        );
        let name = Target::Name("h.example".into(), 80);
        let mut want = vec![4, 1, 0, 80, 0, 0, 0, 1, 0];
        want.extend_from_slice(b"h.example\0");
        assert_eq!(socks4_connect(&name, None).unwrap(), want);
        let v6 = Target::Addr("[::1]:80".parse().unwrap());
        assert_eq!(
            socks4_connect(&v6, None).unwrap_err().kind(),
            ErrorKind::Usage
        );

        assert!(socks4_reply([0, 0x5a, 0, 0, 0, 0, 0, 0]).is_ok());
        let err = socks4_reply([0, 0x5b, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ProxyRefused);
        assert!(
            err.detail()
                .contains("rejected or failed (socks4 reply 91)"),
            "{err}"
        );
        assert_eq!(
            socks4_reply([0, 0x5c, 0, 0, 0, 0, 0, 0])
                .unwrap_err()
                .kind(),
            ErrorKind::ProxyDenied
        );
        assert_eq!(
            socks4_reply([0, 0x5d, 0, 0, 0, 0, 0, 0])
                .unwrap_err()
                .kind(),
            ErrorKind::ProxyDenied
        );
        assert_eq!(
            socks4_reply([5, 0x5a, 0, 0, 0, 0, 0, 0])
                .unwrap_err()
                .kind(),
            ErrorKind::Protocol
        );
    }

    #[tokio::test]
    async fn socks5_handshake_against_a_scripted_proxy() {
        // What the proxy answers: method user/pass, auth ok, success with
        // a domain-name bound address; then the tunnel's first bytes.
        let mut answer = vec![5, 2, 1, 0, 5, 0, 0, 3, 4];
        answer.extend_from_slice(b"host\x00\x50tunnel");
        let mut mock = tokio_test_stream(answer);
        let target = Target::Name("example.com".into(), 80);
        socks5_handshake(&mut mock, &target, Some(&creds("u", "p")))
            .await
            .unwrap();
        // Nothing past the reply was read.
        let mut rest = Vec::new();
        mock.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"tunnel");
    }

    #[tokio::test]
    async fn a_proxy_that_closes_mid_reply_is_a_protocol_error() {
        let mut mock = tokio_test_stream(vec![5, 0, 5, 0]);
        let target = Target::Addr("127.0.0.1:1".parse().unwrap());
        let err = socks5_handshake(&mut mock, &target, None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(err.detail().contains("closed the connection"), "{err}");
    }

    /// A duplex stream whose far side has written `answer` and closed.
    fn tokio_test_stream(answer: Vec<u8>) -> tokio::io::DuplexStream {
        let (near, mut far) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            far.write_all(&answer).await.unwrap();
            far.shutdown().await.unwrap();
            // Drain what the client writes until it is done.
            let mut sink = vec![0u8; 4096];
            while let Ok(n) = far.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
        near
    }
}
