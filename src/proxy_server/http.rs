//! HTTP CONNECT (RFC 9110, section 9.3.6) with Basic proxy authentication
//! (RFC 7617): the parser of the client's request head and the builders of
//! the responses. Pure: no I/O.
//!
//! The request head (request line and header fields, up to the empty line)
//! must fit in the configured size; a longer one gets `431`. Only
//! `CONNECT host:port HTTP/1.x` is served; another method gets `405` with
//! `Allow: CONNECT`, anything unparsable `400`.

use std::net::{IpAddr, SocketAddr};

use base64::Engine;

use super::rules::valid_name;
use super::{Failure, Target};

/// A parsed CONNECT request.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// Where to connect.
    pub target: Target,
    /// The decoded `Proxy-Authorization: Basic` credentials, if sent
    /// (user, password).
    pub basic: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password, not even in a debug print.
        f.debug_struct("Request")
            .field("target", &self.target)
            .field(
                "user",
                &self.basic.as_ref().map(|(u, _)| String::from_utf8_lossy(u)),
            )
            .finish_non_exhaustive()
    }
}

/// A request refused while parsing: the status to answer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The response status (400, 405, 431).
    pub status: u16,
    /// Why, for the log line and the response body.
    pub reason: String,
}

fn reject(status: u16, reason: impl Into<String>) -> Reject {
    Reject {
        status,
        reason: reason.into(),
    }
}

/// Where the head in `buf` ends (the index after its empty line), if it is
/// all there. Accepts bare `\n` line ends, as RFC 9112 allows servers to.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|&b| b == b'\n') {
        let at = i + nl + 1;
        match buf.get(at..) {
            Some([b'\n', ..]) => return Some(at + 1),
            Some([b'\r', b'\n', ..]) => return Some(at + 2),
            _ => i = at,
        }
    }
    None
}

/// Parses the request head in `buf` (`max` bytes at most): `Ok(None)` when
/// it is incomplete and may still fit, else the request and the bytes it
/// took (what follows belongs to the tunnel).
pub fn parse_request(buf: &[u8], max: usize) -> Result<Option<(Request, usize)>, Reject> {
    // Not a request line at all (binary, or a TLS ClientHello): refuse at
    // once rather than wait for a line end that may never come.
    if let Some(i) = buf.iter().position(|&b| !is_tchar(b))
        && (i == 0 || buf[i] != b' ')
    {
        return Err(reject(400, "http: not an HTTP request"));
    }
    let Some(end) = head_end(&buf[..buf.len().min(max)]) else {
        if buf.len() >= max {
            return Err(reject(
                431,
                format!("http: request head longer than {max} bytes"),
            ));
        }
        // A first line that already cannot be HTTP need not wait for more.
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            request_line(&buf[..nl])?;
        }
        return Ok(None);
    };
    let head = &buf[..end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let target = request_line(first)?;
    let mut basic = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(reject(400, "http: a header line without a colon"));
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(reject(400, "http: a malformed header name"));
        }
        if basic.is_none() && name.eq_ignore_ascii_case(b"proxy-authorization") {
            basic = parse_basic(value);
            if basic.is_none() {
                // Present but not Basic credentials: as if wrong.
                basic = Some((Vec::new(), Vec::new()));
            }
        }
    }
    Ok(Some((Request { target, basic }, end)))
}

/// Parses `CONNECT host:port HTTP/1.x`; an error for anything else.
fn request_line(line: &[u8]) -> Result<Target, Reject> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let line =
        std::str::from_utf8(line).map_err(|_| reject(400, "http: a malformed request line"))?;
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(reject(400, "http: a malformed request line"));
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(reject(400, "http: a malformed request line"));
    }
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(reject(
            400,
            format!("http: unsupported version \"{}\"", clip(version)),
        ));
    }
    if method != "CONNECT" {
        return Err(reject(
            405,
            format!(
                "http: method {} is not supported (only CONNECT)",
                clip(method)
            ),
        ));
    }
    authority(target).ok_or_else(|| {
        reject(
            400,
            format!("http: CONNECT target \"{}\" is not host:port", clip(target)),
        )
    })
}

/// Parses an authority-form target: `host:port`, `[v6]:port`.
fn authority(s: &str) -> Option<Target> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let ip: IpAddr = v6.parse().ok().filter(IpAddr::is_ipv6)?;
        return Some(Target::Ip(SocketAddr::new(ip, port)));
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Some(Target::Ip(SocketAddr::new(IpAddr::V4(ip), port)));
    }
    valid_name(host).then(|| Target::Name(host.to_owned(), port))
}

/// Decodes `Basic base64(user:pass)`.
fn parse_basic(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let space = value.iter().position(|&b| b == b' ')?;
    if !value[..space].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(trim(&value[space + 1..]))
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

/// A token character (RFC 9110, section 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// At most 64 characters of peer data, for messages.
fn clip(s: &str) -> String {
    crate::escape::escape_bytes(s.as_bytes(), 64)
}

/// The response opening the tunnel.
pub const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\n\r\n";

/// An error response that closes the connection: `status`, a one-line
/// body saying why, and `Proxy-Authenticate` for 407, `Allow` for 405.
pub fn error_response(status: u16, why: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let extra = match status {
        407 => "Proxy-Authenticate: Basic realm=\"netcrab\"\r\n",
        405 => "Allow: CONNECT\r\n",
        _ => "",
    };
    let body = format!("{why}\n");
    format!(
        "HTTP/1.1 {status} {reason}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The status for a failure to reach the destination.
pub fn failure_status(failure: Failure) -> u16 {
    match failure {
        Failure::NotAllowed => 403,
        Failure::Timeout => 504,
        Failure::Refused
        | Failure::NetworkUnreachable
        | Failure::HostUnreachable
        | Failure::General => 502,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(buf: &[u8]) -> (Request, usize) {
        parse_request(buf, 8192).unwrap().unwrap()
    }

    fn status(buf: &[u8]) -> u16 {
        parse_request(buf, 8192).unwrap_err().status
    }

    #[test]
    fn connect_requests() {
        let req = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nTLS";
        let (r, used) = ok(req);
        assert_eq!(r.target, Target::Name("example.com".into(), 443));
        assert_eq!(r.basic, None);
        assert_eq!(&req[used..], b"TLS");
        let (r, _) = ok(b"CONNECT [::1]:22 HTTP/1.0\n\n");
        assert_eq!(r.target, Target::Ip("[::1]:22".parse().unwrap()));
        let (r, _) = ok(b"CONNECT 127.0.0.1:80 HTTP/1.1\r\n\r\n");
        assert_eq!(r.target, Target::Ip("127.0.0.1:80".parse().unwrap()));
    }

    #[test]
    fn incomplete_heads_wait_for_more() {
        let req = b"CONNECT h:1 HTTP/1.1\r\nX: y\r\n\r\n";
        for cut in 0..req.len() {
            assert_eq!(parse_request(&req[..cut], 8192), Ok(None), "{cut}");
        }
    }

    #[test]
    fn basic_credentials() {
        // alice:s3cr:et
        let (r, _) = ok(
            b"CONNECT h:1 HTTP/1.1\r\nproxy-authorization:  Basic YWxpY2U6czNjcjpldA== \r\n\r\n",
        );
        assert_eq!(r.basic, Some((b"alice".to_vec(), b"s3cr:et".to_vec())));
        assert!(!format!("{r:?}").contains("s3cr"));
        let (r, _) = ok(b"CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Bearer abc\r\n\r\n");
        assert_eq!(r.basic, Some((Vec::new(), Vec::new())));
        let (r, _) = ok(b"CONNECT h:1 HTTP/1.1\r\nProxy-Authorization: Basic !!!\r\n\r\n");
        assert_eq!(r.basic, Some((Vec::new(), Vec::new())));
    }

    #[test]
    fn malformed_requests_get_their_status() {
        assert_eq!(status(b"GET http://h/ HTTP/1.1\r\n\r\n"), 405);
        assert_eq!(status(b"CONNECT h HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"CONNECT h:0 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"CONNECT h:99999 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"CONNECT [zz]:1 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"CONNECT unix:///x:1 HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status(b"CONNECT h:1 HTTP/2.0\r\n\r\n"), 400);
        assert_eq!(status(b"CONNECT h:1 HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(status(b"CONNECT h:1 HTTP/1.1\r\n: v\r\n\r\n"), 400);
        // Garbage is refused as soon as its first line is in.
        assert_eq!(status(b"\x16\x03\x01 hello\n"), 400);
        assert_eq!(status(b"hello\r\n"), 400);
    }

    #[test]
    fn heads_are_bounded() {
        let mut big = b"CONNECT h:1 HTTP/1.1\r\n".to_vec();
        big.extend(b"X: ".iter().chain([b'a'; 100].iter()));
        assert_eq!(parse_request(&big, 64).unwrap_err().status, 431);
        // Complete, but past the bound: refused as well.
        big.extend(b"\r\n\r\n");
        assert_eq!(parse_request(&big, 64).unwrap_err().status, 431);
        assert!(parse_request(&big, 8192).unwrap().is_some());
    }

    #[test]
    fn responses() {
        let r = String::from_utf8(error_response(407, "proxy authentication required")).unwrap();
        assert!(
            r.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
            "{r}"
        );
        assert!(
            r.contains("\r\nProxy-Authenticate: Basic realm=\"netcrab\"\r\n"),
            "{r}"
        );
        assert!(
            r.ends_with("\r\n\r\nproxy authentication required\n"),
            "{r}"
        );
        let r = String::from_utf8(error_response(405, "x")).unwrap();
        assert!(r.contains("Allow: CONNECT\r\n"), "{r}");
        assert_eq!(failure_status(Failure::NotAllowed), 403);
        assert_eq!(failure_status(Failure::Timeout), 504);
        assert_eq!(failure_status(Failure::Refused), 502);
    }
}
