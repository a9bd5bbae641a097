//! QUIC (`quic://`) beyond the transport matrix: interoperability with an
//! independent implementation (python's aioquic, from the project's test
//! virtualenv `.venv-test/`, made by scripts/install-test-deps.sh) as client
//! and as server, several streams on one connection, ALPN, and a peer's
//! RESET_STREAM.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::util::*;

/// The test virtualenv's python, or `None` (the caller skips, loudly) when
/// scripts/install-test-deps.sh has not made it.
fn venv_python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-test/bin/python3");
    if python.exists() {
        Some(python)
    } else {
        eprintln!(
            "SKIPPED: {} is missing: run scripts/install-test-deps.sh for the aioquic interop tests",
            python.display()
        );
        None
    }
}

fn peer_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/peers/aioquic_peer.py")
}

/// An aioquic server, killed on drop.
struct PyServer {
    child: Child,
    port: u16,
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the aioquic peer in `mode` (`server` or `reset`) with a
/// certificate for 127.0.0.1 made by openssl in `dir`; returns it and the
/// certificate's path.
fn py_server(python: &PathBuf, dir: &tempfile::TempDir, mode: &str) -> (PyServer, PathBuf) {
    let (cert, key) = (dir.path().join("peer.crt"), dir.path().join("peer.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "30", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (run scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut child = Command::new(python)
        .arg(peer_script())
        .arg(mode)
        .arg(&cert)
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the aioquic peer");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let port = line
        .trim()
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("aioquic peer printed {line:?}"));
    (PyServer { child, port }, cert)
}

#[test]
fn aioquic_client_gets_each_of_its_streams_echoed_by_serve() {
    let Some(python) = venv_python() else { return };
    let server = Listening::start(&["serve", "-v", "--echo", "quic://127.0.0.1:0"]);
    let port = server.port().to_string();
    let out = Command::new(python)
        .arg(peer_script())
        .args(["client", &port, "one", "two", "three"])
        .stdin(Stdio::null())
        .output()
        .expect("run the aioquic client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "stream 0: one\nstream 1: two\nstream 2: three\n"
    );
    // One connection, three streams: each served as a connection of its own.
    server.proc.stderr.wait_for_count(": connected", 3);
}

#[test]
fn connect_echoes_through_an_aioquic_server() {
    let Some(python) = venv_python() else { return };
    let dir = temp_dir();
    let (peer, cert) = py_server(&python, &dir, "server");
    let addr = format!("quic://127.0.0.1:{}", peer.port);
    let cert = cert.to_str().expect("utf-8 path");
    let data = payload(256 << 10, 3);
    let out = run_with_input(&["connect", &addr, "--ca", cert], data.clone());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(out.stdout == data, "echoed bytes differ");
}

#[test]
fn relay_puts_a_tcp_face_on_an_aioquic_server() {
    let Some(python) = venv_python() else { return };
    let dir = temp_dir();
    let (peer, cert) = py_server(&python, &dir, "server");
    let upstream = format!("quic://127.0.0.1:{}", peer.port);
    let cert = cert.to_str().expect("utf-8 path");
    let relay = Listening::start(&["relay", "127.0.0.1:0", &upstream, "--upstream-ca", cert]);
    let out = run_with_input(&["connect", &relay.addr], b"through the tunnel".to_vec());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"through the tunnel");
}

#[test]
fn a_peers_reset_stream_is_a_reset() {
    let Some(python) = venv_python() else { return };
    let dir = temp_dir();
    let (peer, cert) = py_server(&python, &dir, "reset");
    let addr = format!("quic://127.0.0.1:{}", peer.port);
    let cert = cert.to_str().expect("utf-8 path");
    let mut client = Client::start(&["connect", addr.as_str(), "--ca", cert]);
    client.send(b"anyone there?\n");
    assert_eq!(client.wait(), 6, "{}", client.proc.stderr.text());
    client.proc.stderr.wait_for("reset");
}

#[test]
fn the_default_alpn_is_netcrab_and_a_mismatch_fails_the_handshake() {
    let server = Listening::start(&["serve", "quic://127.0.0.1:0", "--alpn", "other"]);
    let fp = server.proc.stderr.wait_for("fingerprint: ");
    let fp = fp.rsplit("fingerprint: ").next().unwrap_or_default().trim();
    let out = run(&["connect", &server.addr, "--pin-sha256", fp, "--send", "x"]);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no common alpn protocol"),
        "{}",
        stderr(&out)
    );
    let ok = run(&[
        "connect",
        &server.addr,
        "--pin-sha256",
        fp,
        "--alpn",
        "other",
        "--send",
        "x",
    ]);
    assert_eq!(code(ok.status), 0, "{}", stderr(&ok));
    assert_eq!(ok.stdout, b"hello, world");
}

#[test]
fn an_unpinned_self_signed_server_is_a_tls_error() {
    let server = Listening::start(&["serve", "quic://127.0.0.1:0"]);
    let out = run(&["connect", &server.addr, "--send", "x"]);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    assert!(stderr(&out).contains("UnknownIssuer"), "{}", stderr(&out));
}

/// The fingerprint `serve` printed for its self-signed certificate.
fn printed_fingerprint(server: &Listening) -> String {
    let line = server.proc.stderr.wait_for("fingerprint: ");
    line.rsplit("fingerprint: ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[test]
fn bench_runs_over_quic_one_stream_per_worker() {
    let server = Listening::start(&["serve", "-v", "--echo", "quic://127.0.0.1:0"]);
    let fp = printed_fingerprint(&server);
    let out = run(&[
        "bench",
        &server.addr,
        "--pin-sha256",
        &fp,
        "-n",
        "100",
        "-c",
        "3",
        "--json",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(r["transport"], "quic");
    assert_eq!(r["requests"]["ok"].as_u64(), Some(100));
    assert_eq!(r["requests"]["errors"].as_u64(), Some(0));
    server.proc.stderr.wait_for_count(": connected", 3);
}

#[test]
fn wait_sees_a_quic_server() {
    let server = Listening::start(&["serve", "quic://127.0.0.1:0"]);
    let fp = printed_fingerprint(&server);
    let out = run(&[
        "wait",
        &server.addr,
        "--pin-sha256",
        &fp,
        "--timeout",
        "10s",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

/// A TCP upstream that resets its first connection after reading a byte.
fn resetting_upstream() -> (std::thread::JoinHandle<()>, String) {
    use std::io::Read;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).expect("read");
        socket2::SockRef::from(&s)
            .set_linger(Some(std::time::Duration::ZERO))
            .expect("linger");
    });
    (thread, addr)
}

#[test]
fn relay_passes_an_upstream_reset_on_as_reset_stream() {
    let (upstream, addr) = resetting_upstream();
    let relay = Listening::start(&["-v", "relay", "quic://127.0.0.1:0", &addr]);
    let fp = printed_fingerprint(&relay);
    let mut client = Client::start(&["connect", relay.addr.as_str(), "--pin-sha256", &fp]);
    client.send(b"x");
    upstream.join().expect("upstream");
    relay.proc.stderr.wait_for("reset by upstream");
    // RESET_STREAM, not FIN: the client reports a reset.
    assert_eq!(client.wait(), 6, "{}", client.proc.stderr.text());
}
