//! IPv6 addresses and names with several addresses: `[::1]:PORT`, and
//! `localhost` whether the server listens on 127.0.0.1 or on ::1 (Happy
//! Eyeballs tries both).

use crate::util::*;

/// Whether ::1 works here; prints why a test is skipped when it does not.
fn ipv6_or_skip(test: &str) -> bool {
    let ok = ipv6_loopback_available();
    if !ok {
        eprintln!("note: ::1 is not available on this machine; skipping {test}");
    }
    ok
}

#[test]
fn serves_and_connects_on_ipv6_loopback() {
    if !ipv6_or_skip("serves_and_connects_on_ipv6_loopback") {
        return;
    }
    let server = Listening::start(&["serve", "[::1]:0", "--echo"]);
    assert!(server.addr.starts_with("[::1]:"), "{}", server.addr);
    let out = run(&["connect", &server.addr, "--send", "six"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"six");
}

#[test]
fn localhost_reaches_a_server_on_127_0_0_1() {
    let server = Listening::start(&["serve", "127.0.0.1:0", "--reply", "four"]);
    let addr = format!("localhost:{}", server.port());
    let out = run(&["connect", &addr, "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"four");
}

#[test]
fn localhost_reaches_a_server_on_ipv6_loopback() {
    if !ipv6_or_skip("localhost_reaches_a_server_on_ipv6_loopback") {
        return;
    }
    let server = Listening::start(&["serve", "[::1]:0", "--reply", "six"]);
    let addr = format!("localhost:{}", server.port());
    let out = run(&["connect", &addr, "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"six");
}

#[test]
fn localhost_refused_on_both_families_names_both() {
    let port = free_port();
    let out = run(&["connect", &format!("localhost:{port}"), "--send", "x"]);
    assert_eq!(code(out.status), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("connection refused"), "{err}");
    if ipv6_loopback_available() {
        assert!(
            err.contains(&format!("tried [::1]:{port}, 127.0.0.1:{port}")),
            "{err}"
        );
    }
}

#[test]
fn udp_to_localhost_uses_127_0_0_1() {
    let server = Listening::start(&["serve", "-u", "localhost:0", "--echo"]);
    assert!(
        server.addr.starts_with("udp://127.0.0.1:"),
        "{}",
        server.addr
    );
    let addr = format!("udp://localhost:{}", server.port());
    let mut client = Client::start(&["connect", &addr, "--wait", "100ms"]);
    client.send(b"datagram\n");
    assert_eq!(client.stdout.wait_for_len(9), b"datagram\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.proc.stderr.text());
}
