//! `--allow` and `--deny` on serve and relay: a dual-stack `[::]` listener
//! reached over 127.0.0.1 (an IPv4-mapped peer, matched by IPv4 rules) and
//! over ::1; rule files; refusal before the TLS handshake; bad rules.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::tls::TempDir;
use crate::util::*;

/// `[::]:0` where IPv6 works (dual-stack), else `127.0.0.1:0`; says so.
fn dual_stack_or_v4(test: &str) -> (&'static str, bool) {
    if ipv6_loopback_available() {
        ("[::]:0", true)
    } else {
        eprintln!("note: ::1 is not available on this machine; {test} checks 127.0.0.1 only");
        ("127.0.0.1:0", false)
    }
}

/// Connects to `addr`, sends `hi`, and returns what came back before the
/// server closed (nothing when the connection was refused).
fn exchange(addr: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    // A refused connection may be closed before this write arrives: then
    // the write or the read fails, and nothing came back.
    if s.write_all(b"hi").is_err() || s.shutdown(std::net::Shutdown::Write).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn allow_admits_a_mapped_ipv4_peer_and_refuses_ipv6() {
    let (listen, v6) = dual_stack_or_v4("allow_admits_a_mapped_ipv4_peer_and_refuses_ipv6");
    let server = Listening::start(&["serve", listen, "--echo", "--allow", "127.0.0.1"]);
    let port = server.port();
    assert_eq!(exchange(&format!("127.0.0.1:{port}")), b"hi");
    if v6 {
        assert_eq!(exchange(&format!("[::1]:{port}")), b"");
        let line = server
            .proc
            .stderr
            .wait_for("connection denied by the access rules");
        assert!(line.contains("[::1]:"), "{line}");
    }
    // Still serving the allowed family.
    assert_eq!(exchange(&format!("127.0.0.1:{port}")), b"hi");
}

#[test]
fn deny_refuses_a_mapped_ipv4_peer_by_its_ipv4_block() {
    let (listen, v6) = dual_stack_or_v4("deny_refuses_a_mapped_ipv4_peer_by_its_ipv4_block");
    let server = Listening::start(&["serve", listen, "--echo", "--deny", "127.0.0.0/8"]);
    let port = server.port();
    assert_eq!(exchange(&format!("127.0.0.1:{port}")), b"");
    let line = server.proc.stderr.wait_for("connection denied");
    // A mapped peer is logged as the IPv4 address it is.
    assert!(line.contains("netcrab: 127.0.0.1:"), "{line}");
    if v6 {
        assert_eq!(exchange(&format!("[::1]:{port}")), b"hi");
    }
}

#[test]
fn rule_files_take_comments_names_and_blocks() {
    let (listen, v6) = dual_stack_or_v4("rule_files_take_comments_names_and_blocks");
    let dir = TempDir::new();
    let allow = dir.path("allow.txt");
    std::fs::write(
        &allow,
        "# who may connect\n\nlocalhost   # by name\n10.0.0.0/8\n",
    )
    .expect("write");
    let deny = dir.path("deny.txt");
    std::fs::write(&deny, "::1 # no ipv6 today\n").expect("write");
    let server = Listening::start(&[
        "serve",
        listen,
        "--echo",
        "--allow-file",
        allow.to_str().expect("utf-8"),
        "--deny-file",
        deny.to_str().expect("utf-8"),
    ]);
    let port = server.port();
    assert_eq!(exchange(&format!("127.0.0.1:{port}")), b"hi");
    if v6 {
        assert_eq!(exchange(&format!("[::1]:{port}")), b"");
        server.proc.stderr.wait_for("connection denied");
    }
}

#[test]
fn relay_refuses_before_the_tls_handshake() {
    let upstream = Server::start(&["--echo"]);
    let relay = Listening::start(&[
        "relay",
        "tls://127.0.0.1:0",
        &upstream.addr_str(),
        "--deny",
        "127.0.0.1",
        "-v",
    ]);
    let out = run(&[
        "connect",
        &relay.addr,
        "--insecure",
        "--send",
        "hi",
        "--retry",
        "0",
    ]);
    assert_ne!(code(out.status), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    relay
        .proc
        .stderr
        .wait_for("connection denied by the access rules");
    let log = relay.proc.stderr.text();
    assert!(!log.contains("tls handshake with"), "{log}");
}

#[test]
fn bad_rules_and_unix_listeners_are_usage_errors() {
    let out = run(&["serve", "127.0.0.1:0", "--allow", "10.0.0.0/33"]);
    assert_exit(
        &out,
        2,
        "invalid --allow \"10.0.0.0/33\": prefix /33 is longer",
    );
    let dir = TempDir::new();
    let file = dir.path("deny.txt");
    std::fs::write(&file, "10.0.0.1\nnot a host\n").expect("write");
    let out = run(&[
        "relay",
        "127.0.0.1:0",
        "127.0.0.1:1",
        "--deny-file",
        file.to_str().expect("utf-8"),
    ]);
    assert_exit(&out, 2, "line 2");
    let sock = dir.path("s.sock");
    let out = run(&[
        "serve",
        &format!("unix://{}", sock.display()),
        "--allow",
        "127.0.0.1",
    ]);
    assert_exit(&out, 2, "apply to tcp and tls listeners");
    let out = run(&["serve", "-u", "127.0.0.1:0", "--deny", "127.0.0.1"]);
    assert_exit(&out, 2, "not udp");
}

/// Connects to `addr`, sends a PROXY v1 header naming `client`, then `hi`,
/// and returns what came back before the server closed.
fn exchange_behind_proxy(addr: &str, client: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let header = format!("PROXY TCP4 {client} 127.0.0.1 4242 80\r\n");
    if s.write_all(header.as_bytes()).is_err()
        || s.write_all(b"hi").is_err()
        || s.shutdown(std::net::Shutdown::Write).is_err()
    {
        return Vec::new();
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn behind_a_proxy_header_the_rules_apply_to_the_client_it_carries() {
    // The connection itself comes from loopback, which the rules allow;
    // the client the header names decides.
    let server = Listening::start(&[
        "serve",
        "127.0.0.1:0",
        "--echo",
        "--accept-proxy",
        "--deny",
        "192.0.2.0/24",
    ]);
    let addr = format!("127.0.0.1:{}", server.port());
    assert_eq!(exchange_behind_proxy(&addr, "198.51.100.1"), b"hi");
    assert_eq!(exchange_behind_proxy(&addr, "192.0.2.7"), b"");
    server
        .proc
        .stderr
        .wait_for("192.0.2.7:4242: connection denied by the access rules");
    // The report counts the refusal made behind the header too.
    server.proc.signal(libc::SIGTERM);
    server
        .proc
        .stderr
        .wait_for("stopped after 2 connection(s), 1 denied by the access rules");
}
