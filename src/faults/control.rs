//! The faults in force at run time ([`FaultState`]: replaced as a whole by
//! the `--control` API or a SIGHUP, read by every new connection), the
//! live connections it lists, and the `--control` HTTP/1.1 JSON API.
//!
//! A change applies to connections accepted after it; a connection keeps
//! the faults it started with (so an unfaulted one keeps its splice(2)
//! fast path).
//!
//! The API is a small hand-written HTTP/1.1 server (request parsing by
//! httparse): one request per connection (`Connection: close`), headers up
//! to 16 KiB, a body only with `Content-Length` and up to 64 KiB, 10 s to
//! send the request, at most 16 clients at once. Routes:
//!
//! | request | answer |
//! |---|---|
//! | `GET /faults` | 200, the faults in force as keys |
//! | `PUT /faults` | 200 and the new faults, or 400 `{"error", "key"}` naming the bad key |
//! | `DELETE /faults` | 200 `{}`: no faults |
//! | `GET /connections` | 200 `{"connections": [...]}`: id, client, upstream, byte counts, faulted, age |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{FaultError, FaultKeys, Faults};
use crate::pipe::Traffic;

/// The most request header bytes read.
const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted.
const MAX_BODY: usize = 64 * 1024;
/// The time a client has to send its whole request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The most API connections served at once; more wait in the backlog.
const MAX_CLIENTS: usize = 16;

/// The faults in force and the live connections.
#[derive(Debug)]
pub struct FaultState {
    current: RwLock<Arc<Faults>>,
    /// Byte streams refuse datagram-only keys.
    streams: bool,
    conns: Mutex<BTreeMap<u64, Arc<LiveConn>>>,
    next_id: AtomicU64,
}

/// One live relayed connection, as `GET /connections` lists it.
#[derive(Debug)]
pub struct LiveConn {
    /// Its number, counting from 1.
    pub id: u64,
    /// Who connected.
    pub client: String,
    /// Where it is relayed to.
    pub upstream: String,
    /// Its byte counts.
    pub traffic: Arc<Traffic>,
    /// Whether faults were applied to it.
    pub faulted: bool,
}

/// Keeps a connection listed until dropped.
#[derive(Debug)]
pub struct Registration {
    state: Arc<FaultState>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut conns) = self.state.conns.lock() {
            conns.remove(&self.id);
        }
    }
}

impl FaultState {
    /// State starting with `faults`, for a relay of byte streams
    /// (`streams`: datagram-only keys are refused) or of datagrams.
    pub fn new(faults: Faults, streams: bool) -> Result<FaultState, FaultError> {
        if streams {
            faults.check_streams()?;
        }
        Ok(FaultState {
            current: RwLock::new(Arc::new(faults)),
            streams,
            conns: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// The faults in force.
    pub fn faults(&self) -> Arc<Faults> {
        match self.current.read() {
            Ok(f) => f.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the faults in force (for connections accepted from now
    /// on), after the checks [`new`](Self::new) makes.
    pub fn set(&self, faults: Faults) -> Result<(), FaultError> {
        if self.streams {
            faults.check_streams()?;
        }
        let faults = Arc::new(faults);
        match self.current.write() {
            Ok(mut f) => *f = faults,
            Err(poisoned) => *poisoned.into_inner() = faults,
        }
        Ok(())
    }

    /// The faults a connection starting now lives with: none when none
    /// are in force or when its roll against `fault-rate` spares it.
    pub fn for_new_connection(&self) -> Option<Arc<Faults>> {
        let faults = self.faults();
        (!faults.is_none() && faults.affects(fastrand::f64())).then_some(faults)
    }

    /// Lists a connection until the returned registration is dropped.
    pub fn register(
        self: &Arc<Self>,
        client: String,
        upstream: String,
        traffic: Arc<Traffic>,
        faulted: bool,
    ) -> Registration {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(LiveConn {
            id,
            client,
            upstream,
            traffic,
            faulted,
        });
        if let Ok(mut conns) = self.conns.lock() {
            conns.insert(id, conn);
        }
        Registration {
            state: self.clone(),
            id,
        }
    }

    /// The live connections as `GET /connections` shows them.
    pub fn connections_json(&self) -> Json {
        let conns: Vec<Arc<LiveConn>> = match self.conns.lock() {
            Ok(c) => c.values().cloned().collect(),
            Err(_) => Vec::new(),
        };
        let list: Vec<Json> = conns
            .iter()
            .map(|c| {
                json!({
                    "id": c.id,
                    "client": c.client,
                    "upstream": c.upstream,
                    "bytes_up": c.traffic.up(),
                    "bytes_down": c.traffic.down(),
                    "faulted": c.faulted,
                    "age_ms": c.traffic.start().elapsed().as_millis() as u64,
                })
            })
            .collect();
        json!({ "connections": list })
    }
}

/// Answers one request (pure but for the state it reads or replaces):
/// the status and the JSON body.
pub fn respond(state: &FaultState, method: &str, path: &str, body: &[u8]) -> (u16, Json) {
    let path = path.split('?').next().unwrap_or(path);
    let error = |status: u16, msg: &str| (status, json!({ "error": msg }));
    match (path, method) {
        ("/faults", "GET") => (200, state.faults().to_json()),
        ("/faults", "PUT") => {
            let Ok(text) = std::str::from_utf8(body) else {
                return error(400, "the body is not UTF-8");
            };
            let faults = FaultKeys::from_json(text).and_then(|k| k.resolve());
            match faults.and_then(|f| state.set(f.clone()).map(|()| f)) {
                Ok(f) => {
                    let shown = f.to_json();
                    tracing::info!("control: faults now {shown}");
                    (200, shown)
                }
                Err(err) => (400, json!({ "error": err.to_string(), "key": err.key })),
            }
        }
        ("/faults", "DELETE") => {
            // Default faults always pass the checks.
            let _ = state.set(Faults::default());
            tracing::info!("control: faults cleared");
            (200, json!({}))
        }
        ("/connections", "GET") => (200, state.connections_json()),
        ("/faults", _) => error(405, "use GET, PUT or DELETE"),
        ("/connections", _) => error(405, "use GET"),
        _ => error(404, "no such resource (try /faults or /connections)"),
    }
}

/// Serves the API on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: Arc<FaultState>, shutdown: CancellationToken) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let state = state.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    handle(stream, &state).await;
                });
            }
            Err(err) => {
                tracing::warn!("control: accept: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One request, one answer, then close.
async fn handle(mut stream: TcpStream, state: &FaultState) {
    let (status, body, allow) =
        match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
            Err(_) => (408, json!({ "error": "request timeout" }), false),
            Ok(Err(msg)) => (msg.0, json!({ "error": msg.1 }), false),
            Ok(Ok((method, path, body))) => {
                let (status, body) = respond(state, &method, &path, &body);
                (status, body, status == 405)
            }
        };
    let text = body.to_string() + "\n";
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        _ => "Error",
    };
    let allow = if allow {
        "Allow: GET, PUT, DELETE\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        text.len()
    );
    let reply = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(text.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, reply).await;
}

/// Reads one request: method, path and body; or the status and message
/// to answer a bad one with.
async fn read_request(stream: &mut TcpStream) -> Result<(String, String, Vec<u8>), (u16, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| (400, format!("read: {e}")))?;
        if n == 0 {
            return Err((400, "incomplete request".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Partial) => {
                if buf.len() > MAX_HEAD {
                    return Err((413, "request head too large".into()));
                }
            }
            Err(e) => return Err((400, format!("bad request: {e}"))),
            Ok(httparse::Status::Complete(head_len)) => {
                let method = req.method.unwrap_or("").to_owned();
                let path = req.path.unwrap_or("").to_owned();
                let mut length = 0usize;
                for h in req.headers.iter() {
                    if h.name.eq_ignore_ascii_case("transfer-encoding") {
                        return Err((411, "send the body with Content-Length".into()));
                    }
                    if h.name.eq_ignore_ascii_case("content-length") {
                        length = std::str::from_utf8(h.value)
                            .ok()
                            .and_then(|v| v.trim().parse().ok())
                            .ok_or((400, "bad Content-Length".to_owned()))?;
                    }
                }
                if length > MAX_BODY {
                    return Err((413, format!("body over {MAX_BODY} bytes")));
                }
                let mut body = buf.split_off(head_len);
                while body.len() < length {
                    let n = stream
                        .read(&mut chunk)
                        .await
                        .map_err(|e| (400, format!("read: {e}")))?;
                    if n == 0 {
                        return Err((400, "body shorter than Content-Length".into()));
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                body.truncate(length);
                return Ok((method, path, body));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        let state = FaultState::new(Faults::default(), true).unwrap();
        assert_eq!(respond(&state, "GET", "/faults", b""), (200, json!({})));
        let (status, body) = respond(&state, "PUT", "/faults", br#"{"latency": "100ms"}"#);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["latency"], "100ms");
        assert_eq!(body["direction"], "down");
        assert_eq!(state.faults().latency, Duration::from_millis(100));
        // A bad PUT keeps the faults in force.
        let (status, body) = respond(&state, "PUT", "/faults", br#"{"latency": "1s", "nope": 1}"#);
        assert_eq!((status, &body["key"]), (400, &json!("nope")), "{body}");
        let (status, body) = respond(&state, "PUT", "/faults", br#"{"drop": 0.5}"#);
        assert_eq!((status, &body["key"]), (400, &json!("drop")), "{body}");
        assert_eq!(state.faults().latency, Duration::from_millis(100));
        assert_eq!(
            respond(&state, "DELETE", "/faults?x=1", b""),
            (200, json!({}))
        );
        assert!(state.faults().is_none());
        assert_eq!(respond(&state, "POST", "/faults", b"").0, 405);
        assert_eq!(respond(&state, "GET", "/other", b"").0, 404);
    }

    #[test]
    fn connections_are_listed_while_registered() {
        let state = Arc::new(FaultState::new(Faults::default(), true).unwrap());
        let traffic = Arc::new(Traffic::new());
        traffic.add(crate::pipe::Dir::Down, 42);
        let reg = state.register("a".into(), "b".into(), traffic, true);
        let (_, body) = respond(&state, "GET", "/connections", b"");
        assert_eq!(body["connections"][0]["bytes_down"], 42);
        assert_eq!(body["connections"][0]["faulted"], true);
        drop(reg);
        let (_, body) = respond(&state, "GET", "/connections", b"");
        assert_eq!(body["connections"], json!([]));
    }

    #[test]
    fn no_faults_or_a_zero_rate_spare_every_connection() {
        let state = FaultState::new(Faults::default(), true).unwrap();
        assert!(state.for_new_connection().is_none());
        state
            .set(Faults {
                latency: Duration::from_millis(1),
                fault_rate: 0.0,
                ..Faults::default()
            })
            .unwrap();
        assert!((0..1000).all(|_| state.for_new_connection().is_none()));
    }
}
