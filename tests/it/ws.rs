//! WebSocket (`ws://`, `wss://`) beyond the transport matrix: interop with
//! the python `websockets` package as client and server (echo both ways,
//! text and binary, close codes), the origin and path checks, the message
//! size limit, `--ws-text`'s UTF-8 check, and the ping keepalive's
//! dead-peer timeout.
//!
//! The python package lives in the project's virtualenv, `.venv-test/`,
//! which scripts/install-test-deps.sh creates; without it the interop
//! tests say so on stderr and pass.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::util::*;

/// The virtualenv's python, when scripts/install-test-deps.sh made it.
fn venv_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python");
    if python.exists() {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED: {} is missing: run scripts/install-test-deps.sh for the websockets interop tests",
            python.display()
        );
        None
    }
}

/// Runs python code `script` with `args`, in the background.
fn python(python: &PathBuf, script: &str, args: &[&str]) -> Proc {
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).args(args).stdin(Stdio::null());
    Proc::start_with(&mut cmd)
}

/// A python `websockets` client: connects to argv[1] offering subprotocol
/// `chat` with an Origin, sends a binary and a text message and prints
/// what comes back, then closes with 1000.
const PY_CLIENT: &str = r#"
import asyncio, sys
from websockets.asyncio.client import connect
async def main():
    async with connect(sys.argv[1], subprotocols=["chat"], origin="https://ok.example") as ws:
        print("subprotocol", ws.subprotocol, file=sys.stderr, flush=True)
        await ws.send(b"\x00\x01binary")
        r = await ws.recv()
        print("binary", type(r).__name__, r.hex() if isinstance(r, bytes) else r, file=sys.stderr, flush=True)
        await ws.send("t\u00e9xt")
        r = await ws.recv()
        print("text", type(r).__name__, r.hex() if isinstance(r, bytes) else r, file=sys.stderr, flush=True)
    print("closed", ws.close_code, file=sys.stderr, flush=True)
asyncio.run(main())
"#;

/// A python `websockets` server on 127.0.0.1: prints its port, echoes each
/// message with its type, reports the request's path and X-Test header,
/// and closes with 4001 "bye" on the message `close-me`.
const PY_SERVER: &str = r#"
import asyncio, sys
from websockets.asyncio.server import serve
async def handler(ws):
    print("request", ws.request.path, ws.request.headers.get("X-Test"), file=sys.stderr, flush=True)
    async for m in ws:
        print("got", type(m).__name__, m if isinstance(m, str) else m.hex(), file=sys.stderr, flush=True)
        if m in ("close-me", b"close-me"):
            await ws.close(4001, "bye")
            return
        await ws.send(m)
    print("closed", ws.close_code, file=sys.stderr, flush=True)
async def main():
    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening on", port, file=sys.stderr, flush=True)
        await asyncio.Future()
asyncio.run(main())
"#;

#[test]
fn python_client_echoes_through_serve() {
    let Some(py) = venv_python() else { return };
    let server = Listening::start(&[
        "serve",
        "ws://127.0.0.1:0",
        "--echo",
        "--ws-protocol",
        "chat",
        "--ws-origin",
        "https://ok.example",
    ]);
    let url = format!("{}/any/path", server.addr);
    let mut client = python(&py, PY_CLIENT, &[&url]);
    assert!(client.wait().success(), "{}", client.stderr.text());
    let text = client.stderr.text();
    assert!(text.contains("subprotocol chat"), "{text}");
    // Binary comes back binary; text comes back as binary (serve's echo
    // writes bytes, and netcrab sends binary messages without --ws-text).
    assert!(text.contains("binary bytes 000162696e617279"), "{text}");
    assert!(text.contains("text bytes 74c3a97874"), "{text}");
    assert!(text.contains("closed 1000"), "{text}");
}

#[test]
fn python_client_gets_text_with_ws_text() {
    let Some(py) = venv_python() else { return };
    let server = Listening::start(&[
        "serve",
        "ws://127.0.0.1:0",
        "--echo",
        "--ws-text",
        "--ws-protocol",
        "chat",
    ]);
    let mut client = python(&py, PY_CLIENT, &[&server.addr]);
    assert!(client.wait().success(), "{}", client.stderr.text());
    let text = client.stderr.text();
    assert!(text.contains("binary str \u{0}\u{1}binary"), "{text}");
    assert!(text.contains("text str t\u{e9}xt"), "{text}");
}

#[test]
fn ws_text_refuses_input_that_is_not_utf8() {
    let server = Listening::start(&["-v", "serve", "ws://127.0.0.1:0", "--echo"]);
    let out = run_with_input(&["connect", &server.addr, "--ws-text"], vec![0xff, 0xfe]);
    assert_exit(&out, 2, "--ws-text: input is not utf-8");
}

/// Starts the python server and returns it with its `ws://` address.
fn python_server(py: &PathBuf) -> (Proc, String) {
    let server = python(py, PY_SERVER, &[]);
    let line = server.stderr.wait_for("listening on ");
    let port = line
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    (server, format!("ws://127.0.0.1:{port}"))
}

#[test]
fn connect_to_python_server_text_path_and_header() {
    let Some(py) = venv_python() else { return };
    let (server, addr) = python_server(&py);
    let url = format!("{addr}/chat/room?id=7");
    // Interactive: the python server answers no message after a close
    // (it has no half-close), so the client waits for the echo first.
    let mut client = Client::start(&["connect", &url, "--ws-text", "--ws-header", "X-Test: yes"]);
    client.send("h\u{e9}llo".as_bytes());
    assert_eq!(client.stdout.wait_for_len(6), "h\u{e9}llo".as_bytes());
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.proc.stderr.text());
    server.stderr.wait_for("request /chat/room?id=7 yes");
    server.stderr.wait_for("got str h\u{e9}llo");
    // Our stdin EOF sent close 1000.
    server.stderr.wait_for("closed 1000");
}

#[test]
fn connect_to_python_server_binary() {
    let Some(py) = venv_python() else { return };
    let (server, addr) = python_server(&py);
    let mut client = Client::start(&["connect", &addr]);
    client.send(&[0, 1, 2, 255]);
    assert_eq!(client.stdout.wait_for_len(4), [0, 1, 2, 255]);
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.proc.stderr.text());
    server.stderr.wait_for("got bytes 000102ff");
}

#[test]
fn a_peer_close_code_other_than_1000_is_exit_10() {
    let Some(py) = venv_python() else { return };
    let (_server, addr) = python_server(&py);
    let mut client = Client::start(&["connect", &addr]);
    client.send(b"close-me");
    assert_eq!(client.wait(), 10, "{}", client.proc.stderr.text());
    let err = client.proc.stderr.text();
    assert!(
        err.contains("websocket closed by peer with code 4001 (bye)"),
        "{err}"
    );
}

#[test]
fn origin_and_path_checks_refuse_the_upgrade() {
    let server = Listening::start(&[
        "serve",
        "ws://127.0.0.1:0",
        "--echo",
        "--ws-origin",
        "https://ok.example",
        "--ws-path",
        "/ws",
    ]);
    let base = server.addr.clone();
    let good = format!("{base}/ws");
    let ok = run(&[
        "connect",
        &good,
        "--ws-header",
        "Origin: https://ok.example",
        "--send",
        "hi",
    ]);
    assert_exit(&ok, 0, "");
    assert_eq!(ok.stdout, b"hi");
    let bad_origin = run(&[
        "connect",
        &good,
        "--ws-header",
        "Origin: https://evil.example",
        "--send",
        "hi",
    ]);
    assert_exit(
        &bad_origin,
        10,
        "websocket upgrade refused: http status 403",
    );
    let no_origin = run(&["connect", &good, "--send", "hi"]);
    assert_exit(&no_origin, 10, "http status 403");
    let bad_path = format!("{base}/other");
    let out = run(&[
        "connect",
        &bad_path,
        "--ws-header",
        "Origin: https://ok.example",
        "--send",
        "hi",
    ]);
    assert_exit(&out, 10, "http status 404");
}

#[test]
fn a_message_over_the_limit_is_a_clear_error() {
    let server = Listening::start(&[
        "serve",
        "ws://127.0.0.1:0",
        "--echo",
        "--ws-max-message",
        "1k",
    ]);
    let big = "x".repeat(2000);
    let _ = run(&["connect", &server.addr, "--send", &big]);
    server.proc.stderr.wait_for("too long");
    // The server goes on serving others.
    let out = run(&["connect", &server.addr, "--send", "small"]);
    assert_exit(&out, 0, "");
    assert_eq!(out.stdout, b"small");
}

#[test]
fn ws_flags_need_a_websocket_address() {
    let out = run(&["connect", "127.0.0.1:1", "--ws-text"]);
    assert_exit(&out, 2, "--ws-text needs a ws:// or wss:// address");
    let out = run(&["connect", "ws://127.0.0.1:1/", "--ws-header", "nocolon"]);
    assert_exit(&out, 2, "expected 'NAME: VALUE'");
}

/// A server that completes the upgrade by hand, then never reads or
/// answers again: a dead peer as far as pings can tell.
const PY_SILENT: &str = r#"
import base64, hashlib, socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print("listening on", s.getsockname()[1], file=sys.stderr, flush=True)
c, _ = s.accept()
head = b""
while b"\r\n\r\n" not in head:
    head += c.recv(4096)
key = [l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"sec-websocket-key:")][0]
accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
time.sleep(30)
"#;

#[test]
fn a_peer_that_answers_no_pings_is_dead() {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(PY_SILENT).stdin(Stdio::null());
    let server = Proc::start_with(&mut cmd);
    let line = server.stderr.wait_for("listening on ");
    let port = line
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let addr = format!("ws://127.0.0.1:{port}/");
    let mut client = Client::start(&["connect", &addr, "--ws-ping", "100ms"]);
    assert_eq!(client.wait(), 5, "{}", client.proc.stderr.text());
    let err = client.proc.stderr.text();
    assert!(err.contains("websocket peer silent for 200ms"), "{err}");
}

#[test]
fn wait_and_bench_speak_websocket() {
    let server = Listening::start(&["serve", "wss://127.0.0.1:0", "--echo"]);
    let addr = format!("{}/ready", server.addr);
    let out = run(&["wait", &addr, "--insecure", "--timeout", "10s"]);
    assert_exit(&out, 0, "");
    let out = run(&[
        "bench",
        &server.addr,
        "--insecure",
        "-c",
        "2",
        "-d",
        "300ms",
    ]);
    assert_exit(&out, 0, "");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(" 0 errors"), "{report}");
}
