//! The WebSocket layer (`ws://`, `wss://`): the client's or server's
//! upgrade handshake over any byte stream (TCP, or TLS over TCP), then
//! [`WsStream`], which turns messages into a byte stream.
//!
//! - Each write becomes one binary message (a text message with
//!   [`WsOptions::text`], its bytes checked to be UTF-8); reads yield the
//!   payloads of data messages in order. Pings are answered (by
//!   tungstenite); pongs are ignored.
//! - Closing maps to half-close: shutting down sends a close frame with
//!   code 1000, and the stream still reads until the peer's close. A
//!   peer's close with code 1000 (or none) reads as EOF; any other code is
//!   a [`ErrorKind::Protocol`] error naming the code and reason (exit 10).
//!   WebSocket has no true half-close: once the peer's close arrives, the
//!   answer to it ends this side's sending too.
//! - Keepalive: with [`WsOptions::ping`], a ping every interval while the
//!   stream is read; a peer from which nothing (not even a pong) arrives
//!   for two intervals is dead (an [`ErrorKind::Timeout`] error).
//! - A message larger than [`WsOptions::max_message`] is an error.
//!
//! The handshake runs under a deadline; tungstenite bounds the request or
//! response head to 64 KiB and 124 header lines.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::{Sink, Stream as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Bytes, Message};

mod hold;

use hold::CloseHold;

use super::{AsyncStream, PeerAddr, SocketOptions, Stream};
use crate::endpoint::{Endpoint, Host};
use crate::error::{Error, ErrorKind, Result};
use crate::settings::Setting;

/// The default largest message accepted: 16 MiB.
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

/// The default deadline for the upgrade handshake.
pub const DEFAULT_WS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// WebSocket options, for both sides (the client-only and server-only ones
/// are ignored on the other side).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WsOptions {
    /// Send text messages (UTF-8 checked) instead of binary ones.
    pub text: bool,
    /// Send a ping every this long; a peer silent for two intervals is
    /// dead. `None`: no pings.
    pub ping: Option<Duration>,
    /// The largest message (and frame) accepted, in bytes.
    pub max_message: usize,
    /// Subprotocols: offered by a client, in order; accepted by a server
    /// (the first the client offers that is in this list is chosen).
    pub protocols: Vec<String>,
    /// Extra request headers a client sends (`name`, `value`).
    pub headers: Vec<(String, String)>,
    /// Origins a server accepts (exactly as sent in `Origin`); empty: any.
    /// A request from another origin, or with none, gets 403.
    pub origins: Vec<String>,
    /// The only request path a server accepts (404 otherwise); `None`: any.
    pub path: Option<String>,
    /// The deadline for the upgrade handshake.
    pub handshake_timeout: Duration,
}

impl Default for WsOptions {
    fn default() -> WsOptions {
        WsOptions {
            text: false,
            ping: None,
            max_message: DEFAULT_MAX_MESSAGE,
            protocols: Vec::new(),
            headers: Vec::new(),
            origins: Vec::new(),
            path: None,
            handshake_timeout: DEFAULT_WS_HANDSHAKE_TIMEOUT,
        }
    }
}

impl WsOptions {
    fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(self.max_message))
            .max_frame_size(Some(self.max_message))
    }
}

/// The request target of a client: the endpoint's path and query, `/` when
/// it has none.
fn target(endpoint: &Endpoint) -> &str {
    endpoint.path().unwrap_or("/")
}

/// The client's URL, from which tungstenite builds the request and its
/// `Host` header.
fn url(endpoint: &Endpoint) -> String {
    let (host, port) = match endpoint.host_port() {
        Some(hp) => (
            match &hp.host {
                Host::Ip(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
                Host::Ip(ip) => ip.to_string(),
                Host::Name(name) => name.clone(),
                Host::Unspecified => "localhost".to_owned(),
            },
            hp.port,
        ),
        None => ("localhost".to_owned(), 0),
    };
    let scheme = if endpoint.scheme().is_tls() {
        "wss"
    } else {
        "ws"
    };
    format!("{scheme}://{host}:{port}{}", target(endpoint))
}

fn request(endpoint: &Endpoint, opts: &WsOptions) -> Result<Request> {
    use tungstenite::client::IntoClientRequest;
    let bad = |why: String| Error::usage(format!("{endpoint}: {why}"));
    let mut req = url(endpoint)
        .into_client_request()
        .map_err(|e| bad(format!("invalid websocket url: {e}")))?;
    let headers = req.headers_mut();
    if !opts.protocols.is_empty() {
        let value = HeaderValue::from_str(&opts.protocols.join(", "))
            .map_err(|_| bad(format!("invalid {}", Setting::WsProtocol)))?;
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    for (name, value) in &opts.headers {
        let name = header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| bad(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| bad(format!("invalid value for header {name}")))?;
        headers.insert(name, value);
    }
    Ok(req)
}

/// Checks a client's options before any connection: a bad header or
/// subprotocol is a usage error up front.
pub(super) fn check_client(endpoint: &Endpoint, opts: &WsOptions) -> Result<()> {
    request(endpoint, opts).map(drop)
}

fn handshake_error(context: String, err: tungstenite::Error) -> Error {
    match err {
        tungstenite::Error::Io(io) => Error::io(context, io),
        tungstenite::Error::Http(resp) => Error::new(ErrorKind::Protocol, context).with_detail(
            format!("websocket upgrade refused: http status {}", resp.status()),
        ),
        other => Error::new(ErrorKind::Protocol, context)
            .with_detail(format!("websocket handshake failed: {other}")),
    }
}

fn timed_out(context: String) -> Error {
    Error::new(ErrorKind::Timeout, context).with_detail("websocket handshake timed out")
}

/// Runs the client's upgrade handshake over `stream`, connected to
/// `endpoint`.
pub(super) async fn client(
    stream: Stream,
    endpoint: &Endpoint,
    opts: &WsOptions,
) -> Result<Stream> {
    let req = request(endpoint, opts)?;
    let context = format!("websocket handshake with {endpoint}");
    let handshake = tokio_tungstenite::client_async_with_config(
        req,
        CloseHold::new(stream),
        Some(opts.config()),
    );
    let (ws, _resp) = match tokio::time::timeout(opts.handshake_timeout, handshake).await {
        Err(_) => return Err(timed_out(context)),
        Ok(Err(e)) => return Err(handshake_error(context, e)),
        Ok(Ok(done)) => done,
    };
    Ok(Stream::Boxed(Box::new(WsStream::new(ws, opts))))
}

fn refuse(status: StatusCode, why: &str) -> ErrorResponse {
    let mut resp = ErrorResponse::new(Some(why.to_owned()));
    *resp.status_mut() = status;
    resp
}

/// Decides on a client's upgrade request: the path and origin checks, and
/// the subprotocol chosen. (The error type is tungstenite's callback's.)
#[allow(clippy::result_large_err)]
fn accept_request(
    req: &Request,
    mut resp: Response,
    opts: &WsOptions,
) -> std::result::Result<Response, ErrorResponse> {
    if let Some(path) = &opts.path
        && req.uri().path() != path
    {
        return Err(refuse(StatusCode::NOT_FOUND, "not found\n"));
    }
    if !opts.origins.is_empty() {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok());
        if !origin.is_some_and(|o| opts.origins.iter().any(|a| a == o)) {
            return Err(refuse(StatusCode::FORBIDDEN, "origin not allowed\n"));
        }
    }
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim);
    let mut chosen = None;
    for p in offered {
        if opts.protocols.iter().any(|a| a == p) {
            chosen = Some(p.to_owned());
            break;
        }
    }
    if let Some(p) = chosen
        && let Ok(value) = HeaderValue::from_str(&p)
    {
        resp.headers_mut()
            .insert(header::SEC_WEBSOCKET_PROTOCOL, value);
    }
    Ok(resp)
}

/// Runs the server's side of the upgrade over `stream`, accepted from
/// `peer`.
pub(super) async fn server(
    stream: Stream,
    opts: &WsOptions,
    peer: &(dyn fmt::Display + Sync),
) -> Result<Stream> {
    let context = format!("websocket handshake with {peer}");
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| accept_request(req, resp, opts);
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        CloseHold::new(stream),
        callback,
        Some(opts.config()),
    );
    let ws = match tokio::time::timeout(opts.handshake_timeout, handshake).await {
        Err(_) => return Err(timed_out(context)),
        Ok(Err(e)) => return Err(handshake_error(context, e)),
        Ok(Ok(ws)) => ws,
    };
    Ok(Stream::Boxed(Box::new(WsStream::new(ws, opts))))
}

/// Keepalive state: when the next ping is due, and when anything last
/// arrived.
#[derive(Debug)]
struct Keepalive {
    interval: Duration,
    timer: Pin<Box<Sleep>>,
    last_heard: Instant,
}

/// A WebSocket connection as a byte stream: each write is one message,
/// reads yield the payloads in order, and shutdown sends close 1000 (see
/// the `ws://` section of the README).
#[derive(Debug)]
pub struct WsStream {
    ws: WebSocketStream<CloseHold>,
    /// The rest of the message being read.
    pending: Bytes,
    /// The peer's close has been read: reads return EOF.
    eof: bool,
    /// The peer's close, read but not yet answered on the wire (the
    /// answer tungstenite queued is flushed before EOF is returned).
    closing: Option<Option<CloseFrame>>,
    text: bool,
    keepalive: Option<Keepalive>,
}

impl WsStream {
    fn new(ws: WebSocketStream<CloseHold>, opts: &WsOptions) -> WsStream {
        WsStream {
            ws,
            pending: Bytes::new(),
            eof: false,
            closing: None,
            text: opts.text,
            keepalive: opts
                .ping
                .filter(|d| !d.is_zero())
                .map(|interval| Keepalive {
                    interval,
                    timer: Box::pin(tokio::time::sleep(interval)),
                    last_heard: Instant::now(),
                }),
        }
    }

    /// Sends a ping when one is due; an error when the peer has been
    /// silent for two intervals.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(ka) = &mut self.keepalive else {
            return Ok(());
        };
        while ka.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            if now.duration_since(ka.last_heard) >= 2 * ka.interval {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    Error::new(ErrorKind::Timeout, "websocket keepalive").with_detail(format!(
                        "websocket peer silent for {} (no pong)",
                        humantime::format_duration(2 * ka.interval)
                    )),
                ));
            }
            ka.timer.as_mut().reset(now + ka.interval);
            let mut sink = Pin::new(&mut self.ws);
            if let Poll::Ready(Ok(())) = sink.as_mut().poll_ready(cx) {
                sink.as_mut()
                    .start_send(Message::Ping(Bytes::new()))
                    .map_err(to_io)?;
                let _ = sink.poll_flush(cx);
            }
        }
        Ok(())
    }
}

/// A tungstenite error as an I/O error, classified.
fn to_io(err: tungstenite::Error) -> io::Error {
    match err {
        tungstenite::Error::Io(io) => io,
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "websocket closed")
        }
        tungstenite::Error::Capacity(e) => protocol_error(format!("websocket {e}")),
        tungstenite::Error::Utf8(_) => protocol_error("websocket text message is not utf-8".into()),
        other => protocol_error(format!("websocket protocol error: {other}")),
    }
}

fn protocol_error(detail: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Error::new(ErrorKind::Protocol, "websocket").with_detail(detail),
    )
}

/// What a held close frame's `code` and `reason` mean for the reader.
fn close_code_result(code: u16, reason: &str) -> io::Result<()> {
    close_result(Some(&CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }))
}

/// What a peer's close frame means for the reader: EOF for a normal close
/// (1000, or no code), an error naming the code and reason otherwise.
fn close_result(frame: Option<&CloseFrame>) -> io::Result<()> {
    match frame {
        None => Ok(()),
        Some(f) if f.code == CloseCode::Normal => Ok(()),
        Some(f) => {
            let code = u16::from(f.code);
            let reason = f.reason.as_str();
            Err(protocol_error(if reason.is_empty() {
                format!("websocket closed by peer with code {code}")
            } else {
                format!("websocket closed by peer with code {code} ({reason})")
            }))
        }
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if let Some(frame) = &this.closing {
                // Answer the peer's close before reporting it; a failure to
                // answer changes nothing for this side.
                let _ = ready!(Pin::new(&mut this.ws).poll_flush(cx));
                let result = close_result(frame.as_ref());
                this.closing = None;
                this.eof = true;
                return Poll::Ready(result);
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            this.poll_keepalive(cx)?;
            let polled = Pin::new(&mut this.ws).poll_next(cx);
            if polled.is_pending()
                && let Some(close) = this.ws.get_ref().held_close()
            {
                // The peer's close, held back (see `hold`): EOF, or the
                // error its code means; answered when this side shuts down.
                this.eof = true;
                return Poll::Ready(match close {
                    None => Ok(()),
                    Some((code, reason)) => close_code_result(code, &reason),
                });
            }
            let msg = match ready!(polled) {
                None => {
                    this.eof = true;
                    continue;
                }
                Some(Err(e)) => return Poll::Ready(Err(to_io(e))),
                Some(Ok(msg)) => msg,
            };
            if let Some(ka) = &mut this.keepalive {
                ka.last_heard = Instant::now();
            }
            match msg {
                Message::Binary(data) => this.pending = data,
                Message::Text(text) => this.pending = Bytes::from(text),
                Message::Close(frame) => this.closing = Some(frame),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut sink = Pin::new(&mut this.ws);
        ready!(sink.as_mut().poll_ready(cx)).map_err(to_io)?;
        let msg = if this.text {
            match std::str::from_utf8(buf) {
                Ok(s) => Message::Text(s.into()),
                // A write may end inside a character: send the complete
                // ones, the rest comes with the next write.
                Err(e) if e.error_len().is_none() && e.valid_up_to() > 0 => {
                    let n = e.valid_up_to();
                    let s = std::str::from_utf8(&buf[..n]).map_err(|_| {
                        protocol_error("websocket text message is not utf-8".into())
                    })?;
                    sink.as_mut()
                        .start_send(Message::Text(s.into()))
                        .map_err(to_io)?;
                    return Poll::Ready(Ok(n));
                }
                Err(_) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        Error::new(ErrorKind::Usage, "websocket")
                            .with_detail(format!("{}: input is not utf-8", Setting::WsText)),
                    )));
                }
            }
        } else {
            Message::Binary(Bytes::copy_from_slice(buf))
        };
        sink.as_mut().start_send(msg).map_err(to_io)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().ws)
            .poll_flush(cx)
            .map_err(to_io)
    }

    /// Sends a close frame with code 1000 (once); reading goes on until the
    /// peer's close.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut sink = Pin::new(&mut this.ws);
        match ready!(sink.as_mut().poll_ready(cx)) {
            Ok(()) => {}
            // The peer closed first: our answer went with it.
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return Poll::Ready(Ok(()));
            }
            Err(e) => return Poll::Ready(Err(to_io(e))),
        }
        let close = Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        }));
        match sink.as_mut().start_send(close) {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {}
            Err(tungstenite::Error::Protocol(_)) => return Poll::Ready(Ok(())),
            Err(e) => return Poll::Ready(Err(to_io(e))),
        }
        let flushed = ready!(sink.poll_flush(cx));
        // Our close is out: the peer's, if held, may now answer it.
        this.ws.get_mut().release();
        match flushed {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}

impl AsyncStream for WsStream {
    /// Ready when part of a message is waiting, or when the stream below
    /// is (a hint: the frame there may be a ping).
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() || self.eof {
            return Poll::Ready(Ok(()));
        }
        // tungstenite may hold a whole frame already read from the socket,
        // which the socket no longer signals: do not wait on the socket.
        let _ = cx;
        Poll::Ready(Ok(()))
    }

    fn peer_addr(&self) -> io::Result<PeerAddr> {
        self.ws.get_ref().get_ref().peer_addr()
    }

    fn local_addr(&self) -> io::Result<PeerAddr> {
        self.ws.get_ref().get_ref().local_addr()
    }

    fn set_options(&self, opts: &SocketOptions) -> io::Result<()> {
        self.ws.get_ref().get_ref().set_options(opts)
    }

    fn alpn_protocol(&self) -> Option<&[u8]> {
        self.ws.get_ref().get_ref().alpn_protocol()
    }

    fn peer_certificate(&self) -> Option<&[u8]> {
        self.ws.get_ref().get_ref().peer_certificate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_map_to_eof_or_an_error() {
        assert!(close_result(None).is_ok());
        let normal = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        assert!(close_result(Some(&normal)).is_ok());
        let away = CloseFrame {
            code: CloseCode::from(4001),
            reason: "bye".into(),
        };
        let err = close_result(Some(&away)).expect_err("4001 is not normal");
        let err = Error::io("read", err);
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(
            err.detail(),
            "websocket closed by peer with code 4001 (bye)"
        );
    }

    #[test]
    fn urls_carry_the_path_and_a_bracketed_v6_host() {
        let ep: Endpoint = "ws://[::1]:80/a/b?x=1".parse().expect("valid");
        assert_eq!(url(&ep), "ws://[::1]:80/a/b?x=1");
        let ep: Endpoint = "wss://example.com".parse().expect("valid");
        assert_eq!(url(&ep), "wss://example.com:443/");
    }

    #[test]
    fn bad_headers_are_usage_errors() {
        let ep: Endpoint = "ws://127.0.0.1:1/".parse().expect("valid");
        let opts = WsOptions {
            headers: vec![("bad name".into(), "v".into())],
            ..WsOptions::default()
        };
        assert_eq!(
            check_client(&ep, &opts).expect_err("bad").kind(),
            ErrorKind::Usage
        );
    }
}
