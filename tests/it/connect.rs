//! `netcrab connect` against real servers: the seed's client, the netcat
//! pipe, timeouts, retries and exit codes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn refused_connection_exits_4() {
    let port = free_port();
    let out = run(&["connect", &format!("127.0.0.1:{port}"), "--send", "x"]);
    assert_exit(&out, 4, "connection refused");
}

#[test]
fn refused_after_retries_says_how_many_attempts() {
    let port = free_port();
    let out = run(&[
        "connect",
        &format!("127.0.0.1:{port}"),
        "--send",
        "x",
        "--retry",
        "2",
        "--retry-delay",
        "10ms",
    ]);
    assert_exit(&out, 4, "after 3 attempts over");
}

#[test]
fn retries_until_a_late_server_appears() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut client = Proc::start_with(netcrab().args([
        "connect",
        &addr,
        "--send",
        "late",
        "--retry-for",
        "20s",
        "--retry-delay",
        "20ms",
        "--retry-max-delay",
        "100ms",
        "-v",
    ]));
    // Start the server only once the client has failed at least once.
    client.stderr.wait_for("attempt 1 failed");
    let _server = Server::start_exact(&["serve", &addr, "--echo"]);
    assert_eq!(code(client.wait()), 0, "{}", client.stderr.text());
    client.stderr.wait_for("succeeded");
}

#[test]
fn connect_timeout_against_a_full_backlog_exits_5() {
    // A listener that never accepts, with the smallest backlog: once its
    // queue is full the kernel drops further SYNs and connects hang.
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    listener
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break, // the queue is full
        }
    }
    let start = Instant::now();
    let out = run(&[
        "connect",
        &addr.to_string(),
        "--send",
        "x",
        "--connect-timeout",
        "300ms",
    ]);
    assert_exit(&out, 5, "timed out after 300ms");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn unknown_host_exits_3_without_retrying() {
    let out = run(&[
        "connect",
        "no-such-host.invalid:80",
        "--send",
        "x",
        "--retry",
        "5",
    ]);
    assert_eq!(code(out.status), 3, "{}", stderr(&out));
    assert!(!stderr(&out).contains("attempts"), "{}", stderr(&out));
}

#[test]
fn malformed_address_exits_2() {
    let out = run(&["connect", "[::1:80", "--send", "x"]);
    assert_eq!(code(out.status), 2);
    assert!(stderr(&out).contains("missing \"]\""), "{}", stderr(&out));
}

/// The pipe half-closes at stdin EOF and still prints everything the peer
/// sends afterwards.
#[test]
fn stdin_eof_half_closes_and_reads_the_rest() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let got = read_to_end(&mut s); // returns only once the client half-closed
        s.write_all(b"got ").unwrap();
        s.write_all(&got).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    });
    let out = run_with_input(&["connect", &addr.to_string()], b"question".to_vec());
    peer.join().unwrap();
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"got question");
}

#[test]
fn no_shutdown_keeps_sending_side_open_and_wait_bounds_it() {
    let server = Server::start(&["--echo"]);
    let start = Instant::now();
    let out = run(&[
        "connect",
        &server.addr_str(),
        "--send",
        "ping",
        "--no-shutdown",
        "--wait",
        "300ms",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"ping");
    assert!(start.elapsed() >= Duration::from_millis(300));
}

#[test]
fn host_and_port_as_nc_spells_them() {
    let server = Server::start(&["--echo"]);
    let port = server.addr.port().to_string();
    let out = run_with_input(&["connect", "127.0.0.1", &port], b"ping".to_vec());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"ping");
    // A range is a scan, not a connection: a usage error that says so.
    let out = run(&["connect", "-z", "127.0.0.1", "20-25"]);
    assert_exit(&out, 2, "netcrab scan 127.0.0.1 20-25");
}

#[test]
fn idle_timeout_exits_5() {
    let server = Server::start(&["--echo"]);
    let out = run(&[
        "connect",
        &server.addr_str(),
        "--send",
        "x",
        "--no-shutdown",
        "--idle-timeout",
        "200ms",
    ]);
    assert_exit(&out, 5, "idle for 200ms");
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let server = Server::start(&["--echo"]);
    let mut child = spawn_piped(&["connect", &server.addr_str()]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    stdin.write_all(b"first").unwrap();
    let mut buf = [0u8; 5];
    stdout.read_exact(&mut buf).unwrap();
    drop(stdout); // the reader goes away, as with `| head -c 5`
    let _ = stdin.write_all(b"second");
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

#[test]
fn reset_by_peer_exits_6() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        // Linger 0: close sends RST instead of FIN.
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        let mut s = s;
        let mut buf = [0u8; 1];
        let _ = s.read(&mut buf);
    });
    let out = run(&["connect", &addr.to_string(), "--send", "x", "--no-shutdown"]);
    peer.join().unwrap();
    assert_exit(&out, 6, "reset");
}
