//! TLS over Unix sockets (`tls+unix://`) beyond the shared matrix (in
//! `matrix`, with relay across transport pairs): the server name a Unix
//! socket verifies by, mutual TLS, ALPN and the handshake timeout, abstract
//! names, `-U --tls`, `--mode`, and the `wait` and `bench` commands.

use std::os::unix::fs::PermissionsExt;

use crate::tls::{Ca, Pki, Usage};
use crate::util::*;

/// Starts `netcrab serve ADDR ARGS` and returns it with the fingerprint
/// it printed.
fn serve(addr: &str, args: &[&str]) -> (Listening, String) {
    let mut all = vec!["serve", addr];
    all.extend_from_slice(args);
    let server = Listening::start(&all);
    let line = server.proc.stderr.wait_for("fingerprint: ");
    let fp = line
        .rsplit("fingerprint: ")
        .next()
        .expect("fingerprint")
        .trim()
        .to_owned();
    (server, fp)
}

fn connect(addr: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["connect", addr];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--send", "hi"]);
    run(&all)
}

fn sock(dir: &tempfile::TempDir, name: &str) -> String {
    format!("tls+unix://{}", dir.path().join(name).display())
}

#[test]
fn the_server_name_of_a_unix_socket_is_localhost_unless_servername_says_otherwise() {
    let pki = Pki::new();
    let dir = temp_dir();
    // A CA-signed certificate for localhost verifies with --ca alone.
    let addr = sock(&dir, "local.sock");
    let (server, _) = serve(
        &addr,
        &["--cert", &pki.server.cert, "--key", &pki.server.key],
    );
    assert_eq!(server.addr, addr);
    let out = connect(&addr, &["--ca", &pki.ca_file]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");

    // One for another name: the mismatch names --servername, which fixes it.
    let other = pki
        .ca
        .issue(&pki.dir, "api", &["api.internal"], Usage::Server);
    let addr = sock(&dir, "api.sock");
    let (_server, _) = serve(&addr, &["--cert", &other.cert, "--key", &other.key]);
    let out = connect(&addr, &["--ca", &pki.ca_file]);
    assert_exit(&out, 8, "name mismatch");
    let err = stderr(&out);
    assert!(
        err.contains("not localhost") && err.contains("--servername"),
        "{err}"
    );
    let out = connect(
        &addr,
        &["--ca", &pki.ca_file, "--servername", "api.internal"],
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
}

#[test]
fn an_unpinned_self_signed_server_is_refused_with_advice() {
    let dir = temp_dir();
    let addr = sock(&dir, "s.sock");
    let (_server, _) = serve(&addr, &[]);
    let out = connect(&addr, &[]);
    assert_exit(&out, 8, "--pin-sha256");
    assert!(out.stdout.is_empty());
}

#[test]
fn mutual_tls_over_a_unix_socket() {
    let pki = Pki::new();
    let dir = temp_dir();
    let addr = sock(&dir, "m.sock");
    let client = pki.ca.issue(&pki.dir, "client", &["client"], Usage::Client);
    let stranger = Ca::new("another ca").issue(&pki.dir, "x", &["x"], Usage::Client);
    let (server, _) = serve(
        &addr,
        &[
            "--cert",
            &pki.server.cert,
            "--key",
            &pki.server.key,
            "--client-ca",
            &pki.ca_file,
        ],
    );
    let ca = ["--ca", pki.ca_file.as_str()];
    let out = connect(
        &addr,
        &[&ca[..], &["--cert", &client.cert, "--key", &client.key]].concat(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    let out = connect(&addr, &ca);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    server
        .proc
        .stderr
        .wait_for("client presented no certificate");
    let out = connect(
        &addr,
        &[&ca[..], &["--cert", &stranger.cert, "--key", &stranger.key]].concat(),
    );
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    server
        .proc
        .stderr
        .wait_for("client certificate rejected: unknown issuer");
}

#[test]
fn abstract_names_and_the_u_tls_shorthand() {
    let name = format!("@netcrab-it-tls-{}", std::process::id());
    // `-U --tls @name` is tls+unix:@name, on both sides.
    let (server, fp) = serve(&name, &["-U", "--tls", "--echo"]);
    assert_eq!(server.addr, format!("tls+unix:{name}"));
    let out = run_with_input(
        &["connect", "-U", "--tls", &name, "--pin-sha256", &fp],
        b"ping".to_vec(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"ping");
    // A scheme that contradicts the flags is refused.
    let out = run(&["connect", "-U", "--tls", "unix:///tmp/x.sock"]);
    assert_exit(&out, 2, "-U --tls asks for tls+unix");
}

#[test]
fn mode_applies_to_a_tls_socket_file() {
    let dir = temp_dir();
    let path = dir.path().join("mode.sock");
    let addr = format!("tls+unix://{}", path.display());
    let _server = Listening::start(&["serve", &addr, "--mode", "600"]);
    let meta = std::fs::metadata(&path).expect("socket file");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn wait_needs_a_verified_handshake_over_a_unix_socket() {
    let dir = temp_dir();
    let addr = sock(&dir, "w.sock");
    let (_server, fp) = serve(&addr, &[]);
    let out = run(&["wait", &addr, "--pin-sha256", &fp]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    // Not trusted: the socket accepts, but the target is not ready.
    let out = run(&["wait", &addr, "--timeout", "1s"]);
    let err = stderr(&out);
    assert_eq!(code(out.status), 124, "{err}");
    assert!(
        err.contains("still down") && err.contains("certificate"),
        "{err}"
    );
}

#[test]
fn bench_runs_over_tls_over_a_unix_socket() {
    let dir = temp_dir();
    let addr = sock(&dir, "b.sock");
    let (_server, fp) = serve(&addr, &["--echo"]);
    let out = run(&[
        "bench",
        &addr,
        "-n",
        "100",
        "-c",
        "2",
        "--pin-sha256",
        &fp,
        "--json",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json report");
    assert_eq!(r["transport"], "tls+unix");
    assert_eq!(r["requests"]["ok"], 100);
    assert_eq!(r["errors"]["wrong reply"].as_u64().unwrap_or(0), 0);
}

#[test]
fn alpn_and_the_handshake_timeout_over_a_unix_socket() {
    let dir = temp_dir();
    let addr = sock(&dir, "a.sock");
    let path = dir.path().join("a.sock");
    let (server, fp) = serve(&addr, &["--alpn", "x-one", "--handshake-timeout", "300ms"]);
    let out = connect(&addr, &["-v", "--pin-sha256", &fp, "--alpn", "x-one"]);
    assert_exit(&out, 0, "alpn x-one");
    let out = connect(&addr, &["--pin-sha256", &fp, "--alpn", "x-two"]);
    assert_exit(&out, 8, "--alpn");

    // A client that never starts its handshake is closed after the timeout
    // (and named by its process id, as Unix peers are).
    let mut silent = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    silent
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    let line = server.proc.stderr.wait_for("timed out after");
    assert!(line.contains("tls handshake with pid "), "{line}");
    let mut buf = [0u8; 16];
    assert_eq!(std::io::Read::read(&mut silent, &mut buf).expect("read"), 0);
}
