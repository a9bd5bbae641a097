//! The metrics endpoint: a small HTTP/1.x server on its own listener that
//! answers `GET /metrics` (and `HEAD`) and nothing else (404 for other
//! paths, 405 for other methods).
//!
//! It never holds up serving: it runs in tasks of its own, at most
//! [`MAX_CLIENTS`] at once (more are closed at once), each bounded in time
//! ([`REQUEST_TIMEOUT`] for the whole exchange) and in memory (a request
//! head of at most [`MAX_HEAD`] bytes, else 431). One request per
//! connection (`Connection: close`), as Prometheus is happy with.
//!
//! The format is negotiated by the `Accept` header: a client that prefers
//! `application/openmetrics-text` (version 1.0.0, or unversioned) gets
//! OpenMetrics; everything else, a plain `curl` included, gets the classic
//! Prometheus text format 0.0.4, which `promtool check metrics` reads.
//! The parsing and the answers are pure functions ([`parse_head`],
//! [`respond`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::Metrics;
use crate::server::accept::{AcceptBackoff, Action};
use crate::transport::{Listener, Stream};

/// The largest request head read; a longer one gets 431.
pub const MAX_HEAD: usize = 8 * 1024;
/// How long one connection may take, from accept to the answer's last
/// byte.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Scrapes served at once; more connections are closed at once.
pub const MAX_CLIENTS: usize = 16;

/// The `Content-Type` of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The `Content-Type` of OpenMetrics.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A parsed request head: what the answer depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method (`GET`, `HEAD`, ...).
    pub method: String,
    /// The path, without its query string.
    pub path: String,
    /// Whether the client prefers OpenMetrics ([`wants_openmetrics`]).
    pub openmetrics: bool,
}

/// An answer: status line, content type and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body (sent for every method but `HEAD`).
    pub body: String,
    /// Whether the body is left out (`HEAD`); `Content-Length` still says
    /// its length.
    pub head_only: bool,
}

impl Response {
    fn plain(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.to_owned(),
            head_only: false,
        }
    }

    /// The response as bytes: status line, headers, body.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason_phrase(self.status),
            self.content_type,
            self.body.len()
        );
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        if !self.head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "",
    }
}

/// Where a request head ends in `buf` (the index after its blank line),
/// if it has ended.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    (0..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some(i + 4)
        } else if buf[i..].starts_with(b"\n\n") {
            Some(i + 2)
        } else {
            None
        }
    })
}

/// Parses a request head (request line and headers); `Err` is the status
/// to answer a malformed one with (400).
pub fn parse_head(head: &[u8]) -> Result<Request, u16> {
    let text = std::str::from_utf8(head).map_err(|_| 400u16)?;
    let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
    let mut parts = lines.next().ok_or(400u16)?.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Err(400);
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let mut accept = String::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("accept")
        {
            if !accept.is_empty() {
                accept.push(',');
            }
            accept.push_str(value.trim());
        }
    }
    Ok(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        openmetrics: wants_openmetrics(&accept),
    })
}

/// Whether an `Accept` header prefers OpenMetrics 1.0.0 to the classic
/// text format: some `application/openmetrics-text` range (unversioned or
/// version 1.0.0) is acceptable (q > 0) with a quality at least that of
/// every `text/plain` range. Without an `Accept` header: no.
pub fn wants_openmetrics(accept: &str) -> bool {
    let mut openmetrics: Option<f64> = None;
    let mut text: f64 = 0.0;
    for range in accept.split(',') {
        let mut params = range.split(';').map(str::trim);
        let media = params.next().unwrap_or("").to_ascii_lowercase();
        let (mut q, mut version) = (1.0f64, None);
        for param in params {
            if let Some((k, v)) = param.split_once('=') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "q" => q = v.trim().parse().unwrap_or(0.0),
                    "version" => version = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
        match media.as_str() {
            "application/openmetrics-text"
                if q > 0.0 && version.as_deref().is_none_or(|v| v == "1.0.0") =>
            {
                openmetrics = Some(openmetrics.map_or(q, |o| o.max(q)));
            }
            "text/plain" => text = text.max(q),
            _ => {}
        }
    }
    openmetrics.is_some_and(|q| q >= text)
}

/// The answer to `request`, encoding `metrics` only for `/metrics`.
pub fn respond(request: &Request, metrics: &Metrics) -> Response {
    let head_only = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => return Response::plain(405, "method not allowed: use GET\n"),
    };
    if request.path != "/metrics" {
        let mut r = Response::plain(404, "not found: metrics are at /metrics\n");
        r.head_only = head_only;
        return r;
    }
    let (content_type, body) = if request.openmetrics {
        (OPENMETRICS_CONTENT_TYPE, metrics.encode_openmetrics())
    } else {
        (TEXT_CONTENT_TYPE, metrics.encode_text())
    };
    Response {
        status: 200,
        content_type,
        body,
        head_only,
    }
}

/// Serves `metrics` on `listener` until `stop` is cancelled.
pub async fn serve(listener: Listener, metrics: Metrics, stop: CancellationToken) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    let mut backoff = AcceptBackoff::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.cancelled() => return,
        };
        let stream = match accepted {
            Ok((accepted, _peer)) => {
                backoff.on_success();
                match accepted.into_ready() {
                    Ok(stream) => stream,
                    // A plain TCP listener has no handshake to run.
                    Err(_) => continue,
                }
            }
            Err(err) => {
                if let Action::Sleep(delay) = backoff.on_error(&err) {
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.cancelled() => return,
                    }
                }
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("metrics: {MAX_CLIENTS} scrapes already running; closing a connection");
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT, exchange(stream, &metrics)).await;
            drop(slot);
        });
    }
}

/// Reads one request head, answers it and closes.
async fn exchange(mut stream: Stream, metrics: &Metrics) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let response = loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Look for the end from just before the new bytes (a CRLFCRLF
        // split across reads).
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = head_end(&buf[from..]) {
            break match parse_head(&buf[..from + end]) {
                Ok(request) => respond(&request, metrics),
                Err(status) => Response::plain(status, "bad request\n"),
            };
        }
        if buf.len() > MAX_HEAD {
            break Response::plain(431, "request head too large\n");
        }
    };
    if stream.write_all(&response.to_bytes()).await.is_err() {
        return;
    }
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
    // Read what the client still sends until it closes, for a moment:
    // closing with unread bytes would reset the connection and could
    // destroy the answer.
    let _ = tokio::time::timeout(LINGER, async {
        let mut left = 64 * 1024usize;
        while left > 0 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// How long a connection is read after its answer, waiting for the
/// client to close.
const LINGER: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpStream;

    /// Serves `Metrics::new("serve")` on a loopback port; returns its
    /// address and the token that stops it.
    async fn endpoint() -> (String, CancellationToken) {
        let listener = Listener::bind(&"127.0.0.1:0".parse().expect("endpoint"))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let stop = CancellationToken::new();
        tokio::spawn(serve(listener, Metrics::new("serve"), stop.clone()));
        (addr, stop)
    }

    /// What the server sends before closing.
    async fn answer(stream: &mut TcpStream) -> String {
        let mut out = Vec::new();
        stream.read_to_end(&mut out).await.expect("read");
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_closed_at_the_request_timeout() {
        let (addr, _stop) = endpoint().await;
        let mut silent = TcpStream::connect(&addr).await.expect("connect");
        let started = tokio::time::Instant::now();
        // (Paused time moves on while everything waits.)
        assert_eq!(answer(&mut silent).await, "");
        assert!(started.elapsed() >= REQUEST_TIMEOUT);
    }

    #[tokio::test]
    async fn scrapes_past_the_limit_are_closed_at_once() {
        let (addr, _stop) = endpoint().await;
        let mut held = Vec::new();
        for _ in 0..MAX_CLIENTS {
            held.push(TcpStream::connect(&addr).await.expect("connect"));
        }
        // The limit is reached: closed without an answer (well before the
        // others' request timeout).
        let mut extra = TcpStream::connect(&addr).await.expect("connect");
        extra
            .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .await
            .expect("send");
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut byte)).await;
        // Closed with the request unread: an end of stream or a reset.
        assert!(
            matches!(closed.expect("closed at once"), Ok(0) | Err(_)),
            "answered past the limit"
        );
        // One finishes: a scrape is served again.
        let mut first = held.remove(0);
        first
            .write_all(b"GET /metrics HTTP/1.1\r\n\r\n")
            .await
            .expect("send");
        assert!(answer(&mut first).await.starts_with("HTTP/1.1 200 OK\r\n"));
        // Its slot frees once it has closed too.
        drop(first);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let text = loop {
            let mut next = TcpStream::connect(&addr).await.expect("connect");
            let _ = next.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").await;
            let mut out = Vec::new();
            if next.read_to_end(&mut out).await.is_ok() && !out.is_empty() {
                break String::from_utf8_lossy(&out).into_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "no slot freed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("netcrab_connections_accepted_total 0\n"));
    }

    fn get(path: &str, accept: Option<&str>) -> Vec<u8> {
        let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{accept}\r\n").into_bytes()
    }

    #[test]
    fn heads_are_parsed() {
        let head = get("/metrics?x=1", Some("text/plain"));
        assert_eq!(head_end(&head), Some(head.len()));
        let r = parse_head(&head).unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/metrics");
        assert!(!r.openmetrics);
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.0\r\nHost: x\r\n"), None);
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2 x\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b" / HTTP/1.1\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
        ] {
            assert_eq!(parse_head(bad), Err(400), "{bad:?}");
        }
    }

    #[test]
    fn the_accept_header_picks_the_format() {
        // Prometheus 2.x's scrape header.
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert!(wants_openmetrics(prometheus));
        assert!(wants_openmetrics("application/openmetrics-text"));
        // Asked for by a client that prefers the classic format.
        assert!(!wants_openmetrics(
            "application/openmetrics-text;q=0.3,text/plain;version=0.0.4;q=0.5"
        ));
        // Only an OpenMetrics version we do not write.
        assert!(!wants_openmetrics(
            "application/openmetrics-text;version=0.0.1"
        ));
        assert!(!wants_openmetrics("application/openmetrics-text;q=0"));
        // curl's default, and none.
        assert!(!wants_openmetrics("*/*"));
        assert!(!wants_openmetrics(""));
        let head = get(
            "/metrics",
            Some("Application/OpenMetrics-Text; version=1.0.0"),
        );
        assert!(parse_head(&head).unwrap().openmetrics);
    }

    #[test]
    fn answers() {
        let metrics = Metrics::new("serve");
        let ask = |head: &[u8]| respond(&parse_head(head).unwrap(), &metrics);
        let text = ask(&get("/metrics", None));
        assert_eq!(text.status, 200);
        assert_eq!(text.content_type, TEXT_CONTENT_TYPE);
        assert!(!text.body.contains("# EOF"));
        let om = ask(&get("/metrics", Some("application/openmetrics-text")));
        assert_eq!(om.content_type, OPENMETRICS_CONTENT_TYPE);
        assert!(om.body.ends_with("# EOF\n"));
        assert_eq!(ask(&get("/", None)).status, 404);
        assert_eq!(ask(&get("/metrics/x", None)).status, 404);
        let post = ask(b"POST /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(post.status, 405);
        let bytes = String::from_utf8(post.to_bytes()).unwrap();
        assert!(
            bytes.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"),
            "{bytes}"
        );
        assert!(bytes.contains("\r\nAllow: GET, HEAD\r\n"));
        let head = ask(b"HEAD /metrics HTTP/1.1\r\n\r\n");
        let bytes = String::from_utf8(head.to_bytes()).unwrap();
        assert!(bytes.contains(&format!("Content-Length: {}\r\n", head.body.len())));
        assert!(bytes.ends_with("\r\n\r\n"), "{bytes}");
    }
}
