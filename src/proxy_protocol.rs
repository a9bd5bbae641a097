//! The PROXY protocol (HAProxy's `doc/proxy-protocol.txt`): a header a
//! relay puts before a connection's bytes to tell the server behind it the
//! client's real address. Version 1 is a text line (`PROXY TCP4 192.0.2.1
//! 198.51.100.1 56324 443\r\n`), version 2 a binary block with a 12-byte
//! signature.
//!
//! [`encode`] builds the header `relay --send-proxy` writes (in one write,
//! before any byte of the client's, as the specification asks);
//! [`header_end`] and [`parse`] are the receiving side, pure and tested
//! against byte fixtures; [`accept`] reads a header from an accepted
//! connection under a deadline, for `--accept-proxy` on serve and relay
//! (an explicit opt-in: a server that guessed whether a header is there
//! would let any client forge its address). A connection whose header is
//! missing, malformed or late is closed, with the reason logged.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::error::{Error, ErrorKind, Result, fmt_duration};
use crate::transport::{Accepted, PeerAddr, Stream};

/// The version of the protocol to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The human-readable text line.
    V1,
    /// The binary format.
    V2,
}

impl std::str::FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Version, String> {
        match s {
            "1" | "v1" => Ok(Version::V1),
            "2" | "v2" => Ok(Version::V2),
            _ => Err(format!("{s:?} is not a PROXY protocol version (v1 or v2)")),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        })
    }
}

/// The version 2 signature.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 1 line, CRLF included (the specification's 107).
pub const V1_MAX: usize = 107;

/// The longest version 2 header accepted: the 16 fixed bytes and 2032 of
/// addresses and TLVs. The specification allows more, but netcrab reads
/// only the addresses; a longer header is refused rather than buffered.
pub const V2_MAX: usize = 2048;

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// A proxied connection from `source` to `destination`.
    Proxied {
        /// The client's address.
        source: SocketAddr,
        /// The address the client connected to.
        destination: SocketAddr,
    },
    /// No address to use: version 1 `UNKNOWN`, version 2 `LOCAL` (a health
    /// check from the proxy itself) or an address family other than IP.
    /// The connection's own addresses stand.
    Local,
}

/// The header telling `source` -> `destination`, or `None` for a source
/// with no IP address (a Unix-socket client), which is sent as version 1
/// `UNKNOWN` or version 2 with an unspecified family. Mixed families are
/// sent as IPv6 (IPv4-mapped), since a header carries one family.
pub fn encode(version: Version, addrs: Option<(SocketAddr, SocketAddr)>) -> Vec<u8> {
    let addrs = addrs.map(|(s, d)| match (s, d) {
        (SocketAddr::V4(_), SocketAddr::V6(_)) | (SocketAddr::V6(_), SocketAddr::V4(_)) => {
            (to_v6(s), to_v6(d))
        }
        _ => (s, d),
    });
    match version {
        Version::V1 => match addrs {
            None => b"PROXY UNKNOWN\r\n".to_vec(),
            Some((s, d)) => {
                let family = if s.is_ipv4() { "TCP4" } else { "TCP6" };
                format!(
                    "PROXY {family} {} {} {} {}\r\n",
                    s.ip(),
                    d.ip(),
                    s.port(),
                    d.port()
                )
                .into_bytes()
            }
        },
        Version::V2 => {
            let mut out = V2_SIGNATURE.to_vec();
            // Version 2, command PROXY.
            out.push(0x21);
            match addrs {
                None => out.extend_from_slice(&[0x00, 0, 0]),
                Some((SocketAddr::V4(s), SocketAddr::V4(d))) => {
                    out.extend_from_slice(&[0x11, 0, 12]);
                    out.extend_from_slice(&s.ip().octets());
                    out.extend_from_slice(&d.ip().octets());
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
                Some((s, d)) => {
                    out.extend_from_slice(&[0x21, 0, 36]);
                    out.extend_from_slice(&v6_octets(s.ip()));
                    out.extend_from_slice(&v6_octets(d.ip()));
                    out.extend_from_slice(&s.port().to_be_bytes());
                    out.extend_from_slice(&d.port().to_be_bytes());
                }
            }
            out
        }
    }
}

fn to_v6(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(match addr.ip() {
            IpAddr::V4(ip) => ip.to_ipv6_mapped(),
            IpAddr::V6(ip) => ip,
        }),
        addr.port(),
    )
}

fn v6_octets(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
        IpAddr::V6(ip) => ip.octets(),
    }
}

/// How long the header in `buf` is, once that is known: `None` while more
/// bytes are needed. Bytes that cannot begin a header, a version 1 line
/// without its CRLF within 107 bytes and a version 2 header longer than
/// [`V2_MAX`] end the header at once, for [`parse`] to refuse: a client
/// that sends garbage is not waited for.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    const V1_PREFIX: &[u8] = b"PROXY ";
    let prefix_of = |p: &[u8]| buf.len() < p.len() && p.starts_with(buf);
    if prefix_of(V1_PREFIX) || prefix_of(&V2_SIGNATURE) {
        return None;
    }
    if buf.starts_with(V1_PREFIX) {
        return match buf.windows(2).position(|w| w == b"\r\n") {
            Some(i) if i + 2 <= V1_MAX => Some(i + 2),
            Some(_) => Some(V1_MAX),
            None if buf.len() >= V1_MAX => Some(V1_MAX),
            None => None,
        };
    }
    if buf.starts_with(&V2_SIGNATURE) {
        if buf.len() < 16 {
            return None;
        }
        let total = 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if total > V2_MAX {
            return Some(16);
        }
        return (buf.len() >= total).then_some(total);
    }
    Some(buf.len())
}

/// Parses a complete header (as delimited by [`header_end`]); the error
/// says what is wrong with it.
pub fn parse(head: &[u8]) -> std::result::Result<Carried, String> {
    if head.starts_with(b"PROXY ") {
        parse_v1(head)
    } else if head.starts_with(&V2_SIGNATURE) {
        parse_v2(head)
    } else {
        Err("no PROXY protocol header (the first bytes are neither \"PROXY \" nor the v2 signature)".to_owned())
    }
}

fn parse_v1(head: &[u8]) -> std::result::Result<Carried, String> {
    let line = head
        .strip_suffix(b"\r\n")
        .ok_or("a v1 header longer than 107 bytes")?;
    let line = std::str::from_utf8(line).map_err(|_| "a v1 header that is not ascii")?;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.as_slice() {
        ["PROXY", "UNKNOWN", ..] => Ok(Carried::Local),
        ["PROXY", family @ ("TCP4" | "TCP6"), src, dst, sport, dport] => {
            let v4 = *family == "TCP4";
            let ip = |s: &str| -> std::result::Result<IpAddr, String> {
                let ip: IpAddr = s
                    .parse()
                    .map_err(|_| format!("a v1 header with a bad address {s:?}"))?;
                if ip.is_ipv4() != v4 {
                    return Err(format!("a v1 {family} header with the address {s}"));
                }
                Ok(ip)
            };
            let port = |s: &str| -> std::result::Result<u16, String> {
                let ok = !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_digit())
                    && (s == "0" || !s.starts_with('0'));
                ok.then(|| s.parse::<u16>().ok())
                    .flatten()
                    .ok_or_else(|| format!("a v1 header with a bad port {s:?}"))
            };
            Ok(Carried::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            })
        }
        _ => Err("a malformed v1 header".to_owned()),
    }
}

fn parse_v2(head: &[u8]) -> std::result::Result<Carried, String> {
    if head.len() < 16 {
        return Err("a truncated v2 header".to_owned());
    }
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    if 16 + len > V2_MAX {
        return Err(format!(
            "a v2 header of {} bytes (at most {V2_MAX} accepted)",
            16 + len
        ));
    }
    let body = head.get(16..16 + len).ok_or("a truncated v2 header")?;
    let (version, command) = (head[12] >> 4, head[12] & 0x0f);
    if version != 2 {
        return Err(format!("a v2 signature with version {version}"));
    }
    match command {
        0 => return Ok(Carried::Local),
        1 => {}
        other => return Err(format!("a v2 header with an unknown command {other}")),
    }
    let (family, transport) = (head[13] >> 4, head[13] & 0x0f);
    if !matches!(transport, 0..=2) {
        return Err(format!("a v2 header with an unknown transport {transport}"));
    }
    match family {
        1 => {
            let b: &[u8; 12] = body
                .get(..12)
                .and_then(|b| b.try_into().ok())
                .ok_or("a v2 ipv4 header too short for its addresses")?;
            let ip = |o: usize| IpAddr::from([b[o], b[o + 1], b[o + 2], b[o + 3]]);
            let port = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
            Ok(Carried::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            })
        }
        2 => {
            let b: &[u8; 36] = body
                .get(..36)
                .and_then(|b| b.try_into().ok())
                .ok_or("a v2 ipv6 header too short for its addresses")?;
            let ip = |o: usize| {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[o..o + 16]);
                IpAddr::from(a)
            };
            let port = |o: usize| u16::from_be_bytes([b[o], b[o + 1]]);
            Ok(Carried::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            })
        }
        // Unspecified or Unix: nothing usable; the connection's own
        // addresses stand.
        0 | 3 => Ok(Carried::Local),
        other => Err(format!(
            "a v2 header with an unknown address family {other}"
        )),
    }
}

/// Reads the PROXY protocol header from `stream` within `deadline`, and
/// not a byte more.
pub async fn read_header(stream: &mut Stream, deadline: Duration) -> Result<Carried> {
    let max = V2_MAX.max(V1_MAX);
    let head = match tokio::time::timeout(deadline, stream.read_head(max, header_end)).await {
        Ok(Ok(head)) => head,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(Error::new(ErrorKind::Protocol, "")
                .with_detail("the connection ended before a complete PROXY protocol header"));
        }
        Ok(Err(e)) => return Err(Error::io("", e)),
        Err(_) => {
            return Err(Error::new(ErrorKind::Timeout, "").with_detail(format!(
                "no PROXY protocol header within {}",
                fmt_duration(deadline)
            )));
        }
    };
    parse(&head).map_err(|why| Error::new(ErrorKind::Protocol, "").with_detail(why))
}

/// `--accept-proxy`: reads the header of a connection just accepted from
/// `peer` (before any TLS handshake: the header comes first on the wire),
/// then completes the connection. The peer becomes the carried client
/// address, which logs then show. On a missing, malformed or late header
/// the reason is logged and `None` returned: the connection is closed.
pub async fn accept(
    accepted: Accepted,
    peer: PeerAddr,
    deadline: Duration,
) -> Option<(Stream, PeerAddr)> {
    let mut accepted = accepted;
    let peer = match read_header(accepted.stream_mut(), deadline).await {
        Ok(Carried::Proxied {
            source,
            destination,
        }) => PeerAddr::Proxied {
            source,
            destination,
            via: Box::new(peer),
        },
        Ok(Carried::Local) => peer,
        Err(err) => {
            tracing::info!("{peer}: closed: proxy protocol: {}", err.detail());
            return None;
        }
    };
    match accepted.handshake(&peer).await {
        Ok(stream) => Some((stream, peer)),
        Err(err) => {
            tracing::info!("{err}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn v1_lines_as_the_specification_writes_them() {
        let h = encode(
            Version::V1,
            Some((sa("192.168.0.1:56324"), sa("192.168.0.11:443"))),
        );
        assert_eq!(h, b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
        let h = encode(Version::V1, Some((sa("[::1]:1"), sa("[2001:db8::1]:2"))));
        assert_eq!(h, b"PROXY TCP6 ::1 2001:db8::1 1 2\r\n");
        assert_eq!(encode(Version::V1, None), b"PROXY UNKNOWN\r\n");
        // Mixed families: both as IPv6.
        let h = encode(Version::V1, Some((sa("10.0.0.1:1"), sa("[::1]:2"))));
        assert_eq!(h, b"PROXY TCP6 ::ffff:10.0.0.1 ::1 1 2\r\n");
    }

    #[test]
    fn v2_blocks_byte_for_byte() {
        let h = encode(Version::V2, Some((sa("127.0.0.1:1234"), sa("10.0.0.2:80"))));
        let mut want = V2_SIGNATURE.to_vec();
        want.extend_from_slice(&[
            0x21, 0x11, 0, 12, 127, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xd2, 0, 80,
        ]);
        assert_eq!(h, want);
        let h = encode(Version::V2, Some((sa("[::1]:1"), sa("[::2]:2"))));
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[12..16], &[0x21, 0x21, 0, 36]);
        let h = encode(Version::V2, None);
        assert_eq!(&h[12..], &[0x21, 0x00, 0, 0]);
    }

    #[test]
    fn what_is_encoded_parses_back() {
        for version in [Version::V1, Version::V2] {
            for (s, d) in [
                ("1.2.3.4:5", "6.7.8.9:10"),
                ("[2001:db8::7]:65535", "[::1]:0"),
            ] {
                let h = encode(version, Some((sa(s), sa(d))));
                assert_eq!(header_end(&h), Some(h.len()), "{version}");
                // With client data after it, the end is still the header's.
                let mut more = h.clone();
                more.extend_from_slice(b"GET / HTTP/1.1\r\n");
                assert_eq!(header_end(&more), Some(h.len()));
                assert_eq!(
                    parse(&h),
                    Ok(Carried::Proxied {
                        source: sa(s),
                        destination: sa(d)
                    })
                );
            }
            let h = encode(version, None);
            assert_eq!(parse(&h[..header_end(&h).unwrap()]), Ok(Carried::Local));
        }
    }

    #[test]
    fn the_end_waits_for_more_only_while_a_header_is_possible() {
        assert_eq!(header_end(b""), None);
        assert_eq!(header_end(b"PRO"), None);
        assert_eq!(header_end(b"PROXY TCP4 1.2.3.4"), None);
        assert_eq!(header_end(&V2_SIGNATURE[..5]), None);
        assert_eq!(header_end(&V2_SIGNATURE), None);
        // Garbage ends at once.
        assert_eq!(header_end(b"GET / HTTP/1.1\r\n"), Some(16));
        assert_eq!(header_end(b"x"), Some(1));
        // A line with no CRLF within 107 bytes.
        let long = [b"PROXY ".as_slice(), &[b'9'; 200]].concat();
        assert_eq!(header_end(&long), Some(V1_MAX));
        assert!(parse(&long[..V1_MAX]).is_err());
        // A v2 length beyond the bound.
        let mut big = V2_SIGNATURE.to_vec();
        big.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        assert_eq!(header_end(&big), Some(16));
        assert!(parse(&big).unwrap_err().contains("at most 2048"));
    }

    /// A header and the client's first bytes in one segment: the header is
    /// read, the bytes after it stay for the service. Over TCP (peeked)
    /// and over a Unix socket (a byte at a time).
    #[tokio::test]
    async fn reading_a_header_leaves_the_bytes_after_it() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let header = encode(Version::V2, Some((sa("192.0.2.1:7"), sa("127.0.0.1:8"))));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (unix_client, unix_server) = tokio::net::UnixStream::pair().unwrap();
        let mut unix_client = unix_client;
        let data = [header.clone(), b"PROXY hello".to_vec()].concat();
        client.write_all(&data).await.unwrap();
        unix_client.write_all(&data).await.unwrap();
        for mut stream in [Stream::Tcp(server), Stream::Unix(unix_server)] {
            let carried = read_header(&mut stream, Duration::from_secs(5))
                .await
                .unwrap();
            assert_eq!(
                carried,
                Carried::Proxied {
                    source: sa("192.0.2.1:7"),
                    destination: sa("127.0.0.1:8")
                }
            );
            let mut rest = [0u8; 11];
            stream.read_exact(&mut rest).await.unwrap();
            assert_eq!(&rest, b"PROXY hello");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_or_cut_header_is_an_error() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::net::UnixStream::pair().unwrap();
        client.write_all(b"PROXY TCP4 1.2.3.4").await.unwrap();
        let mut stream = Stream::Unix(server);
        let err = read_header(&mut stream, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert_eq!(err.detail(), "no PROXY protocol header within 300ms");
        drop(client);
        let err = read_header(&mut stream, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert!(err.detail().contains("ended before a complete"), "{err}");
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        for bad in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 ::1 ::1 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let v2 = |ver_cmd: u8, fam: u8, body: &[u8]| {
            let mut h = V2_SIGNATURE.to_vec();
            h.extend_from_slice(&[ver_cmd, fam]);
            h.extend_from_slice(&(body.len() as u16).to_be_bytes());
            h.extend_from_slice(body);
            h
        };
        assert!(
            parse(&v2(0x11, 0x11, &[0; 12]))
                .unwrap_err()
                .contains("version 1")
        );
        assert!(
            parse(&v2(0x22, 0x11, &[0; 12]))
                .unwrap_err()
                .contains("command 2")
        );
        assert!(
            parse(&v2(0x21, 0x11, &[0; 4]))
                .unwrap_err()
                .contains("too short")
        );
        assert!(
            parse(&v2(0x21, 0x41, &[0; 4]))
                .unwrap_err()
                .contains("family 4")
        );
        // LOCAL (a proxy's health check) and Unix sources: the connection's own addresses.
        assert_eq!(parse(&v2(0x20, 0x00, &[])), Ok(Carried::Local));
        assert_eq!(parse(&v2(0x21, 0x31, &[0; 216])), Ok(Carried::Local));
        // TLVs after the addresses are skipped.
        let mut body = vec![127, 0, 0, 1, 127, 0, 0, 2, 0, 1, 0, 2];
        body.extend_from_slice(&[0x04, 0, 2, 0xab, 0xcd]);
        assert_eq!(
            parse(&v2(0x21, 0x11, &body)),
            Ok(Carried::Proxied {
                source: sa("127.0.0.1:1"),
                destination: sa("127.0.0.2:2")
            })
        );
    }
}
