//! `netcrab relay` between real clients and real upstream servers.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts `netcrab -v relay 127.0.0.1:0 UPSTREAM ARGS...` and waits until it
/// listens.
fn relay(upstream: &str, args: &[&str]) -> Server {
    let mut all = vec!["-v", "relay", "127.0.0.1:0", upstream];
    all.extend_from_slice(args);
    Server::start_exact(&all)
}

/// Sends `data` from a thread, half-closes, and reads the whole reply.
fn exchange(mut stream: TcpStream, data: Vec<u8>) -> Vec<u8> {
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        writer.write_all(&data).expect("send");
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    let reply = read_to_end(&mut stream);
    sender.join().expect("sender");
    reply
}

/// Polls until `lines` has `n` lines containing `needle`.
fn wait_for_count(lines: &Lines, needle: &str, n: usize) {
    let deadline = Instant::now() + PATIENCE;
    while lines.count(needle) < n {
        assert!(
            Instant::now() < deadline,
            "fewer than {n} lines with {needle:?} in:\n{}",
            lines.text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn echo_through_relay(args: &[&str], path_log: &str) {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), args);
    let data = payload(8 << 20, 5);
    let reply = exchange(relay.connect(), data.clone());
    assert!(
        reply == data,
        "reply differs ({} bytes of {})",
        reply.len(),
        data.len()
    );
    relay.proc.stderr.wait_for(path_log);
    let line = relay.proc.stderr.wait_for("closed by both sides");
    assert!(
        line.contains("up 8388608 bytes, down 8388608 bytes"),
        "{line}"
    );
    assert!(line.contains(&upstream.addr_str()), "{line}");
}

#[test]
fn echo_byte_for_byte_with_splice() {
    // 8 MiB each way: both directions turn bulk and move on to splice(2).
    echo_through_relay(&[], "upstream to client: bulk traffic, splicing from here");
}

#[test]
fn echo_byte_for_byte_with_copy() {
    echo_through_relay(&["--no-splice"], "relaying with a user-space copy");
}

/// The upstream answers the last, unterminated line only after it sees EOF:
/// the relay must pass the client's half-close on and keep the other
/// direction open.
fn half_close_through_relay(args: &[&str]) {
    let upstream = Server::start(&["--lines", "--reply", "ok"]);
    let relay = relay(&upstream.addr_str(), args);
    let reply = exchange(relay.connect(), b"one\ntwo".to_vec());
    assert_eq!(reply, b"ok\nok\n");
    relay.proc.stderr.wait_for("closed by both sides");
}

#[test]
fn half_close_with_splice() {
    half_close_through_relay(&[]);
}

#[test]
fn half_close_with_copy() {
    half_close_through_relay(&["--no-splice"]);
}

#[test]
fn retries_an_upstream_that_starts_late() {
    let addr = format!("127.0.0.1:{}", free_port());
    let relay = relay(&addr, &["--retry-for", "20s", "--retry-max-delay", "200ms"]);
    let mut client = relay.connect();
    client.write_all(b"early bird").expect("send");
    relay.proc.stderr.wait_for("attempt 1 failed");
    let _upstream = Server::start_exact(&["serve", &addr, "--echo"]);
    client.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut client), b"early bird");
    relay.proc.stderr.wait_for("closed by both sides");
}

#[test]
fn unreachable_upstream_closes_the_client_promptly_and_relay_keeps_serving() {
    let addr = format!("127.0.0.1:{}", free_port());
    let relay = relay(&addr, &[]);
    for n in 1..=2 {
        let mut client = relay.connect();
        let mut buf = [0u8; 16];
        match client.read(&mut buf) {
            Ok(0) => {}
            Ok(k) => panic!("got {k} bytes from a relay with no upstream"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
        }
        wait_for_count(&relay.proc.stderr, "upstream unavailable", n);
    }
    let line = relay.proc.stderr.wait_for("upstream unavailable");
    assert!(line.contains("connection refused"), "{line}");
    assert!(line.contains("after 3 attempts"), "{line}");
    // Once the upstream exists, the same relay serves.
    let _upstream = Server::start_exact(&["serve", &addr, "--echo"]);
    assert_eq!(exchange(relay.connect(), b"back".to_vec()), b"back");
}

#[test]
fn idle_connections_are_closed() {
    let upstream = Server::start(&["--echo"]);
    // Long enough that a starved machine still echoes before it fires.
    let relay = relay(&upstream.addr_str(), &["--idle-timeout", "1s"]);
    let mut client = relay.connect();
    client.write_all(b"x").expect("send");
    let mut buf = [0u8; 1];
    client.read_exact(&mut buf).expect("echo");
    // Nothing moves now: the relay closes both sides.
    assert_eq!(read_to_end(&mut client), b"");
    let line = relay.proc.stderr.wait_for("idle timeout");
    assert!(line.contains("up 1 bytes, down 1 bytes"), "{line}");
}

#[test]
fn a_client_reset_is_logged() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &[]);
    let mut client = relay.connect();
    client.write_all(b"x").expect("send");
    let mut buf = [0u8; 1];
    client.read_exact(&mut buf).expect("echo");
    socket2::SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .expect("linger");
    drop(client);
    relay.proc.stderr.wait_for("reset by client");
}

#[test]
fn max_conns_holds_extra_clients_in_the_backlog() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--max-conns", "1"]);
    let mut first = relay.connect();
    first.write_all(b"1").expect("send");
    let mut buf = [0u8; 1];
    first.read_exact(&mut buf).expect("echo");

    let mut second = relay.connect();
    second.write_all(b"2").expect("send");
    second
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let err = second
        .read(&mut buf)
        .expect_err("second client served over the limit");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    relay.proc.stderr.wait_for("connection limit reached (1)");

    drop(first);
    second.set_read_timeout(Some(PATIENCE)).expect("timeout");
    second
        .read_exact(&mut buf)
        .expect("echo after a slot freed");
    assert_eq!(&buf, b"2");
}

#[test]
fn sigterm_drains_open_connections() {
    let upstream = Server::start(&["--echo"]);
    let mut relay = relay(&upstream.addr_str(), &["--drain-timeout", "20s"]);
    let mut client = relay.connect();
    client.write_all(b"before").expect("send");
    let mut buf = [0u8; 6];
    client.read_exact(&mut buf).expect("echo");

    relay.proc.signal(libc::SIGTERM);
    relay.proc.stderr.wait_for("draining 1 open connection");
    // No new connections...
    assert!(TcpStream::connect(relay.addr).is_err(), "still accepting");
    // ...but the open one works to its end.
    assert_eq!(exchange(client, b"after".to_vec()), b"after");
    assert_eq!(code(relay.proc.wait()), 0);
    relay.proc.stderr.wait_for("closed by both sides");
}

#[test]
fn the_drain_timeout_closes_what_is_left() {
    let upstream = Server::start(&["--echo"]);
    let mut relay = relay(&upstream.addr_str(), &["--drain-timeout", "200ms"]);
    let mut client = relay.connect();
    client.write_all(b"x").expect("send");
    let mut buf = [0u8; 1];
    client.read_exact(&mut buf).expect("echo");
    relay.proc.signal(libc::SIGTERM);
    assert_eq!(code(relay.proc.wait()), 0);
    relay.proc.stderr.wait_for("closed at the drain timeout");
    // The client sees its connection end (a close or a reset, not silence).
    let mut rest = Vec::new();
    if let Err(e) = client.read_to_end(&mut rest) {
        assert!(
            !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "{e}"
        );
    }
}

/// An upstream that resets its first connection after reading a byte.
fn resetting_upstream() -> (std::thread::JoinHandle<()>, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let thread = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("accept");
        let mut buf = [0u8; 1];
        s.read_exact(&mut buf).expect("read");
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .expect("linger");
    });
    (thread, addr)
}

fn upstream_reset_reaches_the_client(args: &[&str]) {
    let (upstream, addr) = resetting_upstream();
    let relay = relay(&addr, args);
    let mut client = relay.connect();
    client.write_all(b"x").expect("send");
    upstream.join().expect("upstream");
    let mut buf = [0u8; 16];
    let err = client
        .read(&mut buf)
        .expect_err("a reset, not a clean close");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    relay.proc.stderr.wait_for("reset by upstream");
}

#[test]
fn upstream_reset_is_passed_on_with_splice() {
    upstream_reset_reaches_the_client(&[]);
}

#[test]
fn upstream_reset_is_passed_on_with_copy() {
    upstream_reset_reaches_the_client(&["--no-splice"]);
}

#[test]
fn upstream_reset_is_passed_on_to_a_recorded_client() {
    let hex = std::env::temp_dir().join(format!("netcrab-relay-rst-{}.hex", std::process::id()));
    upstream_reset_reaches_the_client(&["-x", hex.to_str().expect("utf-8")]);
    let _ = std::fs::remove_file(&hex);
}

#[test]
fn port_file_is_written_before_the_address_is_announced() {
    let upstream = Server::start(&["--echo"]);
    let file = std::env::temp_dir().join(format!("netcrab-relay-pf-{}", std::process::id()));
    let relay = relay(
        &upstream.addr_str(),
        &["--port-file", file.to_str().expect("utf-8")],
    );
    let written = std::fs::read_to_string(&file).expect("port file");
    let _ = std::fs::remove_file(&file);
    assert_eq!(written.trim().parse::<u16>().ok(), Some(relay.addr.port()));
}

/// The fingerprint a TLS listener printed.
fn fingerprint(proc: &Proc) -> String {
    let line = proc.stderr.wait_for("tls certificate sha256 fingerprint: ");
    line.rsplit("fingerprint: ")
        .next()
        .expect("fingerprint")
        .trim()
        .to_owned()
}

#[test]
fn terminates_tls_in_front_of_a_plain_server() {
    let upstream = Server::start(&["--echo"]);
    let relay = Server::start_exact(&["-v", "relay", "--tls", "127.0.0.1:0", &upstream.addr_str()]);
    let fp = fingerprint(&relay.proc);
    let addr = relay.addr_str();
    let data = payload(3 << 20, 21);
    let out = run_with_input(
        &["connect", "--tls", &addr, "--pin-sha256", &fp],
        data.clone(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(
        out.stdout == data,
        "reply differs ({} bytes)",
        out.stdout.len()
    );
    relay
        .proc
        .stderr
        .wait_for("relaying with a user-space copy");
    relay.proc.stderr.wait_for("closed by both sides");

    // A client that cannot verify the relay fails (exit 8); the relay serves on.
    let out = run(&["connect", "--tls", &addr, "--send", "x"]);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    let out = run(&[
        "connect",
        "--tls",
        &addr,
        "--pin-sha256",
        &fp,
        "--send",
        "again",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"again");
}

#[test]
fn originates_tls_to_a_tls_upstream() {
    let upstream =
        Server::start_exact(&["serve", "--tls", "127.0.0.1:0", "--lines", "--reply", "ok"]);
    let fp = fingerprint(&upstream.proc);
    let target = format!("tls://{}", upstream.addr_str());
    let relay = relay(&target, &["--upstream-pin-sha256", &fp]);
    // Half-close through TLS: the last line is answered after EOF.
    assert_eq!(exchange(relay.connect(), b"one\ntwo".to_vec()), b"ok\nok\n");
    relay.proc.stderr.wait_for("closed by both sides");
}

#[test]
fn an_unverifiable_upstream_is_reported_and_the_client_closed() {
    let upstream = Server::start_exact(&["serve", "--tls", "127.0.0.1:0", "--echo"]);
    let target = format!("tls://{}", upstream.addr_str());
    let relay = relay(&target, &[]);
    let mut client = relay.connect();
    let mut buf = [0u8; 8];
    match client.read(&mut buf) {
        Ok(0) => {}
        Ok(k) => panic!("got {k} bytes through an unverified upstream"),
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
    }
    let line = relay.proc.stderr.wait_for("upstream unavailable");
    assert!(
        line.contains("tls") || line.contains("certificate"),
        "{line}"
    );
}

#[test]
fn an_upstream_reset_reaches_a_tls_client_as_a_reset() {
    let (upstream, addr) = resetting_upstream();
    let relay = Server::start_exact(&["-v", "relay", "--tls", "127.0.0.1:0", &addr]);
    let fp = fingerprint(&relay.proc);
    let out = run(&[
        "connect",
        "--tls",
        &relay.addr_str(),
        "--pin-sha256",
        &fp,
        "--send",
        "x",
    ]);
    upstream.join().expect("upstream");
    // A clean close would exit 0; the reset is passed on (exit 6).
    assert_eq!(code(out.status), 6, "{}", stderr(&out));
    relay.proc.stderr.wait_for("reset by upstream");
}
