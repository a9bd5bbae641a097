//! The PROXY protocol against HAProxy, an independent implementation:
//! headers `relay --send-proxy v1|v2` sends are read by HAProxy's
//! `accept-proxy` (its log shows the client address they carried), and
//! headers HAProxy's `send-proxy`/`send-proxy-v2` sends are read by
//! `serve --accept-proxy` (its log shows the client's address). Then what
//! `--accept-proxy` does with a missing, malformed or late header.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;

use crate::proxy_client::{Daemon, program_path};
use crate::util::{PATIENCE, Server};

/// HAProxy in the foreground (`-db`) with `config` (its `{port}` filled in
/// with the port it binds), logging to stdout.
fn haproxy(config: &str) -> Daemon {
    let config = config.to_owned();
    let program = program_path("haproxy").map(|p| p.display().to_string());
    let program = program.unwrap_or_else(|| "haproxy".to_owned());
    Daemon::start(&program.clone(), move |port, dir| {
        let path = dir.join("haproxy.cfg");
        let text = format!(
            "global\n    log stdout format raw local0 info\n\
             defaults\n    mode tcp\n    log global\n    timeout connect 5s\n    \
             timeout client 30s\n    timeout server 30s\n{}",
            config.replace("{port}", &port.to_string())
        );
        std::fs::write(&path, text).expect("write haproxy.cfg");
        let mut cmd = Command::new(&program);
        cmd.arg("-db").arg("-f").arg(path);
        cmd
    })
}

/// Sends `hi` to `addr`, reads the reply; returns it and the local port
/// the connection came from.
fn exchange(addr: &str) -> (String, u16) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let port = s.local_addr().expect("local").port();
    s.write_all(b"hi").expect("write");
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).expect("read");
    (String::from_utf8_lossy(&buf[..n]).into_owned(), port)
}

/// Asserts the server closed `s` without sending anything (a close with
/// unread client bytes is a reset).
#[track_caller]
fn assert_closed(s: &mut TcpStream) {
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => assert!(buf.is_empty(), "{buf:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn haproxy_reads_the_headers_relay_sends() {
    let server = Server::start(&[]);
    for version in ["v1", "v2"] {
        let ha = haproxy(&format!(
            "frontend fe\n    bind 127.0.0.1:{{port}} accept-proxy\n    \
             log-format \"client=%ci:%cp frontend=%fi:%fp\"\n    default_backend be\n\
             backend be\n    server s1 {}\n",
            server.addr_str()
        ));
        let relay = Server::start_exact(&[
            "relay",
            "127.0.0.1:0",
            &format!("127.0.0.1:{}", ha.port),
            "--send-proxy",
            version,
        ]);
        let (reply, port) = exchange(&relay.addr_str());
        assert_eq!(reply, "hello, world", "{version}");
        // HAProxy took the client's address (and the relay's listening
        // address as the destination) from the header, not the relay's
        // own connection.
        let line = ha.stdout.wait_for(&format!("client=127.0.0.1:{port} "));
        assert!(
            line.contains(&format!("frontend={}", relay.addr_str())),
            "{version}: {line}"
        );
    }
}

#[test]
fn serve_reads_the_headers_haproxy_sends() {
    let server = Server::start(&["--accept-proxy"]);
    for option in ["send-proxy", "send-proxy-v2"] {
        let ha = haproxy(&format!(
            "frontend fe\n    bind 127.0.0.1:{{port}}\n    default_backend be\n\
             backend be\n    server s1 {} {option}\n",
            server.addr_str()
        ));
        let (reply, port) = exchange(&format!("127.0.0.1:{}", ha.port));
        assert_eq!(reply, "hello, world", "{option}");
        // The connection's log line names the client, and HAProxy as the
        // connection it came through.
        server
            .proc
            .stderr
            .wait_for(&format!("recv hi (from 127.0.0.1:{port} (via 127.0.0.1:"));
    }
}

#[test]
fn a_missing_malformed_or_late_header_closes_the_connection_with_a_reason() {
    let server = Server::start(&["--accept-proxy", "--proxy-header-timeout", "300ms"]);
    // Garbage: closed at once, nothing served.
    let mut s = server.connect();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").expect("write");
    assert_closed(&mut s);
    server
        .proc
        .stderr
        .wait_for("closed: proxy protocol: no PROXY protocol header");
    // Silence: closed at the header deadline.
    let mut s = server.connect();
    assert_closed(&mut s);
    server
        .proc
        .stderr
        .wait_for("closed: proxy protocol: no PROXY protocol header within 300ms");
    // A valid header followed by data in the same segment: served, with
    // the carried address in the log.
    let mut s = server.connect();
    s.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 4242 80\r\nhi")
        .expect("write");
    let mut reply = [0u8; 12];
    s.read_exact(&mut reply).expect("reply");
    assert_eq!(&reply, b"hello, world");
    server
        .proc
        .stderr
        .wait_for("recv hi (from 192.0.2.7:4242 (via 127.0.0.1:");
    // A bad v1 line.
    let mut s = server.connect();
    s.write_all(b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\nhi")
        .expect("write");
    assert_closed(&mut s);
    server.proc.stderr.wait_for("bad port \"99999\"");
}

#[test]
fn relay_passes_on_the_address_it_accepted() {
    let server = Server::start(&["--accept-proxy"]);
    let relay = Server::start_exact(&[
        "relay",
        "127.0.0.1:0",
        &server.addr_str(),
        "--accept-proxy",
        "--send-proxy",
        "v2",
    ]);
    let mut s = relay.connect();
    s.write_all(b"PROXY TCP4 198.51.100.9 127.0.0.1 5555 80\r\nhi")
        .expect("write");
    let mut reply = [0u8; 12];
    s.read_exact(&mut reply).expect("reply");
    assert_eq!(&reply, b"hello, world");
    server
        .proc
        .stderr
        .wait_for("recv hi (from 198.51.100.9:5555 (via 127.0.0.1:");
    drop(s);
    relay
        .proc
        .stderr
        .wait_for("198.51.100.9:5555 (via 127.0.0.1:");
}
