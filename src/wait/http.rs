//! `wait http://…` and `https://…`: a small HTTP/1.1 client, enough to
//! decide readiness. One `GET` with `Host` and `Connection: close`; the
//! response's status must be in the expected set and, with `--expect`,
//! its body must contain the text.
//!
//! The URL and response parsing ([`HttpTarget::parse`], [`parse_response`],
//! [`StatusSet`]) are pure and unit-tested; [`check`] does the I/O over any
//! connected [`Stream`] (plain TCP, or TLS for `https`, from the usual
//! connect chain). Sizes are bounded: the head at [`MAX_HEAD`], the body
//! looked at to [`MAX_BODY`] (a longer body is searched in its first
//! [`MAX_BODY`] bytes).

use std::fmt;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::endpoint::{Endpoint, Scheme};
use crate::error::{Error, ErrorKind, Result};
use crate::escape::{LOG_PREVIEW, escape_bytes};
use crate::transport::Stream;

/// The largest response head (status line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most of a body read when looking for the expected text.
pub const MAX_BODY: usize = 1024 * 1024;

/// An `http://` or `https://` URL to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    /// The URL as given (for messages).
    pub url: String,
    /// Where to connect: `tcp://host:port`, or `tls://host:port` for https
    /// (verified with the TLS flags, server name from the host).
    pub endpoint: Endpoint,
    /// The `Host` header: the URL's authority.
    pub host: String,
    /// The request target: path and query (`/` when the URL has none).
    pub path: String,
}

impl HttpTarget {
    /// Parses `s` when it is an `http://` or `https://` URL (`Ok(None)`
    /// otherwise); a malformed one is a usage error.
    pub fn parse(s: &str) -> Result<Option<HttpTarget>> {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        let (scheme, port, rest) = if lower.starts_with("http://") {
            (Scheme::Tcp, 80, &s[7..])
        } else if lower.starts_with("https://") {
            (Scheme::Tls, 443, &s[8..])
        } else {
            return Ok(None);
        };
        let bad = |why: &str| Error::usage(format!("invalid url {s:?}: {why}"));
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        if authority.contains('@') {
            return Err(bad("user names and passwords are not supported"));
        }
        if authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b < 0x20)
        {
            return Err(bad("the host contains spaces or control characters"));
        }
        let has_port = match authority.strip_prefix('[') {
            Some(v6) => v6
                .split_once(']')
                .is_some_and(|(_, after)| after.starts_with(':')),
            None => authority.contains(':'),
        };
        let host_port = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:{port}")
        };
        let endpoint = Endpoint::parse_with_default(&host_port, scheme)
            .map_err(|e| bad(e.detail().trim_start_matches("invalid address ")))?;
        if endpoint.scheme() != scheme {
            return Err(bad("the host looks like another scheme"));
        }
        let tail = tail.split('#').next().unwrap_or("");
        if tail.bytes().any(|b| b.is_ascii_whitespace() || b < 0x20) {
            return Err(bad("the path contains spaces or control characters"));
        }
        let path = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Some(HttpTarget {
            url: s.to_owned(),
            endpoint,
            host: authority.to_owned(),
            path,
        }))
    }

    /// The request sent.
    fn request(&self) -> Vec<u8> {
        format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: netcrab/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path,
            self.host,
            env!("CARGO_PKG_VERSION")
        )
        .into_bytes()
    }
}

impl fmt::Display for HttpTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

/// The status codes that count as ready (`--expect-status`): a list of
/// codes and ranges such as `200,204,300-399`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(Vec<(u16, u16)>);

impl Default for StatusSet {
    /// 200 to 399: success and redirects (not followed).
    fn default() -> StatusSet {
        StatusSet(vec![(200, 399)])
    }
}

impl StatusSet {
    /// Parses `200,204,300-399`; every code must be from 100 to 599.
    pub fn parse(s: &str) -> std::result::Result<StatusSet, String> {
        let code = |t: &str| -> std::result::Result<u16, String> {
            match t.trim().parse::<u16>() {
                Ok(n) if (100..=599).contains(&n) => Ok(n),
                _ => Err(format!(
                    "{:?} is not a status code from 100 to 599",
                    t.trim()
                )),
            }
        };
        let mut ranges = Vec::new();
        for part in s.split(',') {
            let range = match part.split_once('-') {
                Some((lo, hi)) => (code(lo)?, code(hi)?),
                None => {
                    let n = code(part)?;
                    (n, n)
                }
            };
            if range.0 > range.1 {
                return Err(format!("{:?}: the range runs backwards", part.trim()));
            }
            ranges.push(range);
        }
        Ok(StatusSet(ranges))
    }

    /// Whether `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (lo, hi)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if lo == hi {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{hi}")?;
            }
        }
        Ok(())
    }
}

/// A parsed response: its status and as much of the body as was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body (decoded from chunks), at most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
}

/// What [`parse_response`] makes of the bytes read so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// The response, complete (or its body cut at [`MAX_BODY`]).
    Done(Response),
}

/// Parses a response from `buf`, all bytes read so far; `eof` says the
/// peer has closed. `need_body` false stops at the head. Errors are
/// protocol errors with short messages.
pub fn parse_response(buf: &[u8], eof: bool, need_body: bool) -> Result<Parsed> {
    let protocol =
        |why: String| Error::new(ErrorKind::Protocol, "read the http response").with_detail(why);
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        if buf.len() > MAX_HEAD {
            return Err(protocol(format!(
                "response head longer than {MAX_HEAD} bytes"
            )));
        }
        if eof {
            return Err(protocol(if buf.is_empty() {
                "closed without a response".to_owned()
            } else {
                format!(
                    "closed in the middle of the head (got \"{}\")",
                    escape_bytes(buf, LOG_PREVIEW)
                )
            }));
        }
        return Ok(Parsed::Incomplete);
    };
    if head_end > MAX_HEAD {
        return Err(protocol(format!(
            "response head longer than {MAX_HEAD} bytes"
        )));
    }
    let head = &buf[..head_end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line).ok_or_else(|| {
        protocol(format!(
            "not an http response (got \"{}\")",
            escape_bytes(status_line, LOG_PREVIEW)
        ))
    })?;
    if !need_body {
        return Ok(Parsed::Done(Response {
            status,
            body: Vec::new(),
        }));
    }
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        let value = String::from_utf8_lossy(&line[colon + 1..])
            .trim()
            .to_ascii_lowercase();
        match name.as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<u64>()
                        .map_err(|_| protocol(format!("bad content-length {value:?}")))?,
                );
            }
            "transfer-encoding" => chunked = value.split(',').any(|v| v.trim() == "chunked"),
            _ => {}
        }
    }
    let raw = &buf[head_end + 4..];
    // 1xx, 204 and 304 have no body.
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Parsed::Done(Response {
            status,
            body: Vec::new(),
        }));
    }
    let done = |body: &[u8]| {
        Ok(Parsed::Done(Response {
            status,
            body: body[..body.len().min(MAX_BODY)].to_vec(),
        }))
    };
    if chunked {
        return match decode_chunked(raw).map_err(protocol)? {
            (body, true) => done(&body),
            (body, false) if body.len() >= MAX_BODY || eof => done(&body),
            _ => Ok(Parsed::Incomplete),
        };
    }
    match length {
        Some(n) if raw.len() as u64 >= n => done(&raw[..n as usize]),
        _ if raw.len() >= MAX_BODY || eof => done(raw),
        _ => Ok(Parsed::Incomplete),
    }
}

/// `HTTP/1.x SSS ...` → `SSS`.
fn parse_status_line(line: &[u8]) -> Option<u16> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok().filter(|c| (100..=599).contains(c))
}

/// Decodes a chunked body as far as it goes: the data, and whether the
/// last (zero-size) chunk was seen. Stops at [`MAX_BODY`] bytes of data.
fn decode_chunked(mut raw: &[u8]) -> std::result::Result<(Vec<u8>, bool), String> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = find(raw, b"\r\n") else {
            if raw.len() > 1024 {
                return Err("chunk size line too long".into());
            }
            return Ok((body, false));
        };
        let line =
            std::str::from_utf8(&raw[..line_end]).map_err(|_| "bad chunk size".to_owned())?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        if size == 0 {
            return Ok((body, true));
        }
        let data = &raw[line_end + 2..];
        if data.len() < size {
            body.extend_from_slice(data);
            return Ok((body, false));
        }
        body.extend_from_slice(&data[..size]);
        if body.len() >= MAX_BODY {
            return Ok((body, false));
        }
        raw = &data[size..];
        match raw.strip_prefix(b"\r\n") {
            Some(rest) => raw = rest,
            None if raw.len() < 2 => return Ok((body, false)),
            None => return Err("chunk not followed by CRLF".into()),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Sends the request over `stream` and checks the response: its status in
/// `statuses`, and its body containing `expect` when given. `deadline`
/// bounds the whole exchange.
pub async fn check(
    stream: &mut Stream,
    target: &HttpTarget,
    statuses: &StatusSet,
    expect: Option<&[u8]>,
    deadline: Instant,
) -> Result<()> {
    let url = &target.url;
    let io = async {
        stream
            .write_all(&target.request())
            .await
            .map_err(|e| Error::io(format!("send to {url}"), e))?;
        stream
            .flush()
            .await
            .map_err(|e| Error::io(format!("send to {url}"), e))?;
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = stream
                .read(&mut chunk)
                .await
                .map_err(|e| Error::io(format!("read from {url}"), e))?;
            buf.extend_from_slice(&chunk[..n]);
            if let Parsed::Done(response) = parse_response(&buf, n == 0, expect.is_some())? {
                return Ok(response);
            }
            if n == 0 {
                // parse_response answers every eof; this is unreachable in
                // practice, but never loop on a closed stream.
                return Err(Error::new(ErrorKind::Protocol, "read the http response")
                    .with_detail("closed early"));
            }
        }
    };
    let response = match tokio::time::timeout_at(deadline, io).await {
        Ok(result) => result?,
        Err(_) => {
            return Err(Error::new(ErrorKind::Timeout, format!("get {url}"))
                .with_detail("no complete response within the attempt timeout"));
        }
    };
    if !statuses.contains(response.status) {
        return Err(Error::new(ErrorKind::Protocol, format!("get {url}"))
            .with_detail(format!("status {} (expected {statuses})", response.status)));
    }
    if let Some(expect) = expect
        && !super::contains(&response.body, expect)
    {
        return Err(
            Error::new(ErrorKind::Protocol, format!("get {url}")).with_detail(format!(
                "status {} but the body has no \"{}\" (got \"{}\")",
                response.status,
                escape_bytes(expect, LOG_PREVIEW),
                escape_bytes(&response.body, LOG_PREVIEW)
            )),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(s: &str) -> HttpTarget {
        HttpTarget::parse(s).unwrap().unwrap()
    }

    #[test]
    fn urls_become_an_endpoint_a_host_header_and_a_path() {
        let t = target("http://127.0.0.1:8000/health?x=1#frag");
        assert_eq!(t.endpoint.to_string(), "127.0.0.1:8000");
        assert_eq!(t.host, "127.0.0.1:8000");
        assert_eq!(t.path, "/health?x=1");
        let t = target("HTTPS://Example.com");
        assert_eq!(t.endpoint.to_string(), "tls://example.com:443");
        assert_eq!(t.host, "Example.com");
        assert_eq!(t.path, "/");
        let t = target("http://[::1]/");
        assert_eq!(t.endpoint.to_string(), "[::1]:80");
        assert_eq!(t.host, "[::1]");
        let t = target("http://localhost?q");
        assert_eq!(t.path, "/?q");
        assert_eq!(HttpTarget::parse("127.0.0.1:80").unwrap(), None);
        assert_eq!(HttpTarget::parse("tls://h:1").unwrap(), None);
        for bad in [
            "http://",
            "http://u:p@h/",
            "http://h:99999/",
            "http://h/a b",
            "http://[::1/",
        ] {
            let err = HttpTarget::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Usage, "{bad}");
            assert!(err.to_string().contains("invalid url"), "{bad}: {err}");
        }
    }

    #[test]
    fn status_sets_take_lists_and_ranges() {
        let set = StatusSet::parse("200,204,300-399").unwrap();
        assert!(set.contains(200) && set.contains(204) && set.contains(302));
        assert!(!set.contains(201) && !set.contains(404));
        assert_eq!(set.to_string(), "200,204,300-399");
        assert!(StatusSet::default().contains(301));
        assert!(!StatusSet::default().contains(404));
        for bad in ["", "abc", "99", "600", "400-300", "200,", "1-2-3"] {
            assert!(StatusSet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_by_content_length_chunks_and_close() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello, extra";
        assert_eq!(
            parse_response(r, false, true).unwrap(),
            Parsed::Done(Response {
                status: 200,
                body: b"hello".to_vec()
            })
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
                false,
                true
            )
            .unwrap(),
            Parsed::Incomplete
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";
        assert_eq!(
            parse_response(chunked, false, true).unwrap(),
            Parsed::Done(Response {
                status: 200,
                body: b"hello, world".to_vec()
            })
        );
        let partial = &chunked[..chunked.len() - 10];
        assert_eq!(
            parse_response(partial, false, true).unwrap(),
            Parsed::Incomplete
        );
        // No length: the body runs to the close.
        let close = b"HTTP/1.0 404 Not Found\r\nServer: x\r\n\r\nnope";
        assert_eq!(
            parse_response(close, false, true).unwrap(),
            Parsed::Incomplete
        );
        assert_eq!(
            parse_response(close, true, true).unwrap(),
            Parsed::Done(Response {
                status: 404,
                body: b"nope".to_vec()
            })
        );
        // The status alone when no body is needed.
        assert_eq!(
            parse_response(b"HTTP/1.1 503 x\r\n\r\n", false, false).unwrap(),
            Parsed::Done(Response {
                status: 503,
                body: Vec::new()
            })
        );
    }

    #[test]
    fn garbage_and_huge_heads_are_protocol_errors() {
        for (input, eof) in [
            (&b"SSH-2.0-OpenSSH\r\n\r\n"[..], false),
            (b"HTTP/1.1 2000 OK\r\n\r\n", false),
            (b"", true),
            (b"HTTP/1.1 200 OK\r\n", true),
            (b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                false,
            ),
        ] {
            let err = parse_response(input, eof, true).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Protocol, "{input:?}");
        }
        let huge = vec![b'a'; MAX_HEAD + 1];
        assert!(parse_response(&huge, false, true).is_err());
        // A huge body is cut at MAX_BODY, not buffered forever.
        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.resize(big.len() + MAX_BODY + 10, b'x');
        match parse_response(&big, false, true).unwrap() {
            Parsed::Done(r) => assert_eq!(r.body.len(), MAX_BODY),
            other => panic!("{other:?}"),
        }
    }
}
