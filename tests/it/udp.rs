//! UDP: `serve udp://` per datagram and `connect udp://` (or `-u`).

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts `serve -u 127.0.0.1:0 ARGS` and returns it with its socket address.
fn udp_server(args: &[&str]) -> (Listening, SocketAddr) {
    udp_server_on("127.0.0.1:0", args)
}

fn udp_server_on(addr: &str, args: &[&str]) -> (Listening, SocketAddr) {
    let mut all = vec!["serve", "-u", addr];
    all.extend_from_slice(args);
    let server = Listening::start(&all);
    let sockaddr = server
        .addr
        .strip_prefix("udp://")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("not a udp address: {}", server.addr));
    (server, sockaddr)
}

/// A plain UDP socket connected to `server`, with a read timeout.
fn socket_to(server: SocketAddr) -> UdpSocket {
    let local = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let s = UdpSocket::bind(local).expect("bind");
    s.connect(server).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s
}

fn exchange(s: &UdpSocket, datagram: &[u8]) -> Vec<u8> {
    s.send(datagram).expect("send");
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).expect("reply");
    buf.truncate(n);
    buf
}

#[test]
fn seed_exchange_with_a_plain_socket() {
    let (server, addr) = udp_server(&[]);
    assert!(
        server.addr.starts_with("udp://127.0.0.1:"),
        "{}",
        server.addr
    );
    let s = socket_to(addr);
    assert_eq!(exchange(&s, b"hello, world"), b"hello, world");
    server.proc.stderr.wait_for("recv hello, world");
}

#[test]
fn connect_sends_each_line_as_a_datagram_and_prints_replies() {
    let (server, _) = udp_server(&["--echo"]);
    let mut client = Client::start(&["connect", &server.addr, "--wait", "100ms"]);
    client.send(b"hello, world\n");
    assert_eq!(client.stdout.wait_for_len(13), b"hello, world\n");
    client.send(b"second\n");
    assert_eq!(client.stdout.wait_for_len(20), b"hello, world\nsecond\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.proc.stderr.text());
}

#[test]
fn connect_send_is_one_datagram_and_replies_come_within_the_wait() {
    let (server, _) = udp_server(&["--reply", "pong"]);
    let out = run(&["connect", &server.addr, "--send", "ping", "--wait", "5s"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"pong");
    server.proc.stderr.wait_for("recv ping");
}

#[test]
fn raw_sends_input_chunks_as_they_are() {
    let (server, addr) = udp_server(&["--lines", "--reply", "ok"]);
    // Three lines in one chunk are one datagram: the server answers each
    // line, all in one reply datagram.
    let mut client = Client::start(&["connect", "-u", &addr.to_string(), "--raw"]);
    client.send(b"a\nb\nc\n");
    assert_eq!(client.stdout.wait_for_len(9), b"ok\nok\nok\n");
    client.close_stdin();
    assert_eq!(client.wait(), 0, "{}", client.proc.stderr.text());
    drop(server);
}

#[test]
fn echo_is_byte_for_byte_up_to_the_largest_datagram() {
    let (_server, addr) = udp_server(&["--echo"]);
    let s = socket_to(addr);
    for (i, len) in [0, 1, 1400, 9000, 65_507].into_iter().enumerate() {
        let data = payload(len, i as u64 + 1);
        assert!(exchange(&s, &data) == data, "{len}-byte datagram");
    }
}

#[test]
fn ipv6_datagrams_up_to_65527_bytes() {
    if !ipv6_loopback_available() {
        eprintln!("note: ::1 is not available here; skipping the IPv6 UDP test");
        return;
    }
    let (server, addr) = udp_server_on("[::1]:0", &["--echo"]);
    assert!(server.addr.starts_with("udp://[::1]:"), "{}", server.addr);
    let s = socket_to(addr);
    let data = payload(65_527, 9);
    assert!(exchange(&s, &data) == data);
}

#[test]
fn many_clients_at_once_each_answered_at_its_own_address() {
    let (server, addr) = udp_server(&["--echo"]);
    let threads: Vec<_> = (0..16)
        .map(|c| {
            std::thread::spawn(move || {
                let s = socket_to(addr);
                for m in 0..25 {
                    let msg = format!("client {c} message {m}");
                    assert_eq!(exchange(&s, msg.as_bytes()), msg.as_bytes());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread");
    }
    drop(server);
}

#[test]
fn garbage_and_long_lines_never_stop_the_server() {
    let (server, addr) = udp_server(&["--lines", "--max-line", "10", "--reply", "ok"]);
    let s = socket_to(addr);
    // Binary garbage without a newline is one (unterminated) line.
    assert_eq!(exchange(&s, b"\x00\xff\x1b[2J"), b"ok\n");
    // A line over --max-line gets the error, after the lines before it.
    assert_eq!(
        exchange(&s, b"short\nthis line is too long\n"),
        b"ok\nerror: line too long (max 10 bytes)\n"
    );
    let huge = payload(65_507, 3);
    assert_eq!(
        exchange(&s, &huge),
        b"error: line too long (max 10 bytes)\n"
    );
    // An empty datagram has no line: no answer. The server goes on.
    s.send(b"").expect("send");
    assert_eq!(exchange(&s, b"alive?\n"), b"ok\n");
    drop(server);
}

#[test]
fn refused_is_reported_with_exit_code_4() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    };
    let out = run(&[
        "connect",
        &format!("udp://127.0.0.1:{port}"),
        "--send",
        "anyone?",
        "--wait",
        "20s",
    ]);
    assert_exit(&out, 4, "connection refused");
}

#[test]
fn wait_bounds_the_wait_for_replies() {
    let (server, _) = udp_server(&["--discard"]);
    let start = Instant::now();
    let out = run(&["connect", &server.addr, "--send", "x", "--wait", "300ms"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    // A lower bound only: it must not give up before the wait is over.
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn a_line_longer_than_a_datagram_is_an_error() {
    let (server, _) = udp_server(&["--discard"]);
    let mut line = payload(70_000, 5);
    line.retain(|b| *b != b'\n');
    let out = run_with_input(&["connect", &server.addr], line);
    assert_exit(&out, 2, "at most 65507 bytes");
}

#[test]
fn sigterm_stops_the_server() {
    let (mut server, addr) = udp_server(&["--echo"]);
    let s = socket_to(addr);
    assert_eq!(exchange(&s, b"x"), b"x");
    server.proc.signal(libc::SIGTERM);
    assert_eq!(code(server.proc.wait()), 0);
    server
        .proc
        .stderr
        .wait_for("1 datagram(s) received, 1 sent");
}
