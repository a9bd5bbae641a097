//! Source addresses (`-s`, `-p`) and address families (`-4`, `-6`): the
//! peer sees the source port, a busy or foreign source is exit 9, and a
//! family that contradicts an address is a usage error.

use std::net::{SocketAddr, TcpListener};

use crate::util::*;

/// Accepts one connection on `listener` and returns the peer's address.
fn accept_peer(listener: TcpListener) -> std::thread::JoinHandle<SocketAddr> {
    std::thread::spawn(move || {
        let (conn, peer) = listener.accept().expect("accept");
        drop(conn);
        peer
    })
}

#[test]
fn connect_from_a_source_address_and_port_is_what_the_peer_sees() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let peer = accept_peer(listener);
    let port = free_port();
    let out = run(&[
        "connect",
        "-s",
        "127.0.0.2",
        "-p",
        &port.to_string(),
        &addr,
        "-z",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let seen = peer.join().expect("peer");
    assert_eq!(seen, SocketAddr::from(([127, 0, 0, 2], port)));
}

#[test]
fn wait_and_scan_connect_from_the_source_port() {
    for cmd in ["wait", "scan"] {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let local = listener.local_addr().expect("addr");
        let peer = accept_peer(listener);
        let port = free_port().to_string();
        let out = match cmd {
            "wait" => run(&["wait", &local.to_string(), "-p", &port]),
            _ => run(&["scan", "127.0.0.1", &local.port().to_string(), "-p", &port]),
        };
        assert_eq!(code(out.status), 0, "{cmd}: {}", stderr(&out));
        assert_eq!(peer.join().expect("peer").port().to_string(), port, "{cmd}");
    }
}

#[test]
fn relay_connects_upstream_from_the_source_address() {
    let upstream = TcpListener::bind("127.0.0.1:0").expect("bind");
    let up = upstream.local_addr().expect("addr").to_string();
    let peer = accept_peer(upstream);
    let relay = Server::start_exact(&["relay", "127.0.0.1:0", &up, "-s", "127.0.0.3"]);
    let _client = relay.connect();
    assert_eq!(peer.join().expect("peer").ip().to_string(), "127.0.0.3");
}

#[test]
fn a_busy_source_port_is_exit_9_and_names_it() {
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port().to_string();
    let target = Server::start(&[]);
    let out = run(&[
        "connect",
        "-s",
        "127.0.0.1",
        "-p",
        &port,
        &target.addr_str(),
        "-z",
    ]);
    assert_exit(
        &out,
        9,
        &format!("source address 127.0.0.1:{port}: address in use"),
    );
}

#[test]
fn a_foreign_source_address_is_exit_9() {
    let target = Server::start(&[]);
    // TEST-NET-1: never an address of this host.
    let out = run(&["connect", "-s", "192.0.2.1", &target.addr_str(), "-z"]);
    assert_exit(&out, 9, "source address 192.0.2.1:0: address not available");
}

#[test]
fn family_flags_that_contradict_an_address_are_usage_errors() {
    for args in [
        &["connect", "-6", "127.0.0.1:1", "-z"][..],
        &["connect", "-4", "[::1]:1", "-z"],
        &["connect", "-6", "-s", "127.0.0.1", "localhost:1", "-z"],
        &["serve", "-6", "127.0.0.1:0"],
        &["scan", "-6", "127.0.0.1", "80"],
        &["wait", "-4", "[::1]:1", "--timeout", "1s"],
        &["relay", "-6", "127.0.0.1:0", "[::1]:1"],
        &["bench", "-4", "[::1]:1", "-n", "1"],
    ] {
        let out = run(args);
        assert_eq!(code(out.status), 2, "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("asks for IPv") || err.contains("conflicts with"),
            "{args:?}: {err}"
        );
    }
    assert_exit(
        &run(&["connect", "-4", "-6", "127.0.0.1:1"]),
        2,
        "cannot be used with",
    );
    assert_exit(
        &run(&["connect", "-s", "localhost", "127.0.0.1:1"]),
        2,
        "not an IP address",
    );
    assert_exit(
        &run(&["connect", "-s", "127.0.0.1", "unix:///tmp/none.sock", "-z"]),
        2,
        "applies only to tcp and tls",
    );
    assert_exit(
        &run(&["relay", "127.0.0.1:0", "127.0.0.1:1", "-p", "40000"]),
        2,
        "--source-port needs --max-conns 1",
    );
    assert_exit(
        &run(&["wait", "127.0.0.1:1", "127.0.0.1:2", "-p", "40000"]),
        2,
        "--source-port needs a single target",
    );
}

#[test]
fn ipv4_only_and_an_ipv4_source_never_try_ipv6() {
    let port = free_port();
    let out = run(&["connect", "-4", &format!("localhost:{port}"), "-z"]);
    assert_exit(&out, 4, "connection refused");
    assert!(!stderr(&out).contains("[::1]"), "{}", stderr(&out));
    // An IPv4 source address does the same: Happy Eyeballs stays in its family.
    let out = run(&[
        "connect",
        "-s",
        "127.0.0.1",
        &format!("localhost:{port}"),
        "-z",
    ]);
    assert_exit(&out, 4, "connection refused");
    assert!(!stderr(&out).contains("[::1]"), "{}", stderr(&out));
}

#[test]
fn serve_6_localhost_listens_on_ipv6_loopback() {
    if !ipv6_loopback_available() {
        eprintln!("note: ::1 is not available on this machine; skipping");
        return;
    }
    let server = Listening::start(&["serve", "-6", "localhost:0", "--reply", "six"]);
    assert!(server.addr.starts_with("[::1]:"), "{}", server.addr);
    let port = server.port();
    // -6 localhost connects to ::1; -4 localhost finds nothing on 127.0.0.1.
    let out = run(&[
        "connect",
        "-6",
        &format!("localhost:{port}"),
        "--send",
        "hi",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"six");
    let out = run(&["connect", "-4", &format!("localhost:{port}"), "-z"]);
    assert_exit(&out, 4, "connection refused");
    // scan -6 localhost scans ::1.
    let out = run(&["scan", "-6", "localhost", &port.to_string()]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("::1"));
}

#[test]
fn serve_4_localhost_listens_on_127_0_0_1() {
    let server = Listening::start(&["serve", "-4", "localhost:0"]);
    assert!(server.addr.starts_with("127.0.0.1:"), "{}", server.addr);
}

#[test]
fn udp_datagrams_leave_from_the_source_port() {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let addr = format!("udp://{}", socket.local_addr().expect("addr"));
    let port = free_port();
    let out = run(&[
        "connect",
        "-s",
        "127.0.0.4",
        "-p",
        &port.to_string(),
        &addr,
        "--send",
        "x",
        "--wait",
        "100ms",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let mut buf = [0u8; 8];
    let (n, from) = socket.recv_from(&mut buf).expect("the datagram");
    assert_eq!(&buf[..n], b"x");
    assert_eq!(from, SocketAddr::from(([127, 0, 0, 4], port)));
}

#[test]
fn bench_from_a_foreign_source_address_is_exit_9() {
    let server = Server::start(&["--echo"]);
    let out = run(&[
        "bench",
        &server.addr_str(),
        "--source",
        "192.0.2.1",
        "-n",
        "4",
        "-c",
        "1",
    ]);
    assert_exit(&out, 9, "source address 192.0.2.1:0");
}
