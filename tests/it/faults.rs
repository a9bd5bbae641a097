//! `netcrab relay` with faults: each fault's effect measured from outside
//! (byte counts, order, and timing lower bounds only), the `--control`
//! API on a live relay, and `--faults FILE` re-read on SIGHUP.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::*;

/// Starts `netcrab -v relay 127.0.0.1:0 UPSTREAM ARGS...`.
fn relay(upstream: &str, args: &[&str]) -> Server {
    let mut all = vec!["-v", "relay", "127.0.0.1:0", upstream];
    all.extend_from_slice(args);
    Server::start_exact(&all)
}

/// Sends `data` from a thread (ignoring a failure: the relay may reset
/// us), half-closes, and reads until EOF or an error: what was read and
/// the error.
///
/// A reset is reported whichever thread met it: the kernel hands a
/// connection's pending `ECONNRESET` to the first call that asks, so when
/// the reset lands while the sender is writing, the sender gets the error
/// and the reader then sees only the end of the stream.
fn exchange(stream: TcpStream, data: Vec<u8>) -> (Vec<u8>, Option<std::io::Error>) {
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let sent = writer.write_all(&data);
        let _ = writer.shutdown(Shutdown::Write);
        sent.err()
    });
    let (got, err) = read_until_end(stream);
    let send_err = sender.join().expect("sender");
    match (err, send_err) {
        (None, Some(e)) if e.kind() == ErrorKind::ConnectionReset => (got, Some(e)),
        (err, _) => (got, err),
    }
}

/// Reads until EOF or an error.
fn read_until_end(mut stream: TcpStream) -> (Vec<u8>, Option<std::io::Error>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (got, None),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
}

/// One request and its echo on an open connection; how long it took.
fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Duration {
    let start = Instant::now();
    stream.write_all(msg).expect("send");
    let mut got = vec![0u8; msg.len()];
    stream.read_exact(&mut got).expect("echo");
    assert_eq!(got, msg);
    start.elapsed()
}

#[test]
fn reset_after_delivers_exactly_that_many_bytes_then_a_reset() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--reset-after", "1000"]);
    let data = payload(100_000, 13);
    let (got, err) = exchange(relay.connect(), data.clone());
    assert_eq!(got.len(), 1000, "then {err:?}");
    assert_eq!(got, data[..1000]);
    let err = err.expect("a reset after the bytes, not an end of stream");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    let line = relay
        .proc
        .stderr
        .wait_for("client reset by --reset-after 1000");
    assert!(line.contains("down 1000 bytes"), "{line}");
    // Downstream only: the other way was spliced.
    relay
        .proc
        .stderr
        .wait_for("relaying with faults, splice(2) the other way");
}

#[test]
fn reset_after_up_counts_the_bytes_the_upstream_gets() {
    let upstream = Server::start(&["--discard"]);
    let relay = relay(&upstream.addr_str(), &["--reset-after", "1000", "--up"]);
    let (got, err) = exchange(relay.connect(), payload(50_000, 3));
    assert!(got.is_empty());
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    let line = relay.proc.stderr.wait_for("client reset by --reset-after");
    assert!(line.contains("up 1000 bytes, down 0 bytes"), "{line}");
}

#[test]
fn reset_after_time_resets_an_open_connection() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--reset-after-time", "300ms"]);
    let start = Instant::now();
    let mut stream = relay.connect();
    round_trip(&mut stream, b"before");
    let (_, err) = read_until_end(stream);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    relay
        .proc
        .stderr
        .wait_for("client reset by --reset-after-time 300ms");
}

#[test]
fn latency_delays_every_exchange_without_collapsing_throughput() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(
        &upstream.addr_str(),
        &["--latency", "100ms", "--jitter", "5ms"],
    );
    let mut stream = relay.connect();
    for i in 0..3u8 {
        let took = round_trip(&mut stream, &[i; 10]);
        assert!(took >= Duration::from_millis(95), "{took:?}");
    }
    drop(stream);
    // 8 MiB in order: chunks are delayed side by side, not one after the
    // other (one after the other, 128 chunks x 95 ms would take > 12 s).
    let data = payload(8 << 20, 7);
    let start = Instant::now();
    let (got, err) = exchange(relay.connect(), data.clone());
    let took = start.elapsed();
    assert!(err.is_none(), "{err:?}");
    assert!(got == data, "{} bytes of {}", got.len(), data.len());
    assert!(took >= Duration::from_millis(95), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[test]
fn bandwidth_holds_the_rate() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--bandwidth", "200KiB/s"]);
    let data = payload(400 << 10, 9);
    let start = Instant::now();
    let (got, _) = exchange(relay.connect(), data.clone());
    let took = start.elapsed();
    assert!(got == data, "{} bytes of {}", got.len(), data.len());
    // 2 s at the rate, less the first piece and the pacer's catch-up.
    assert!(took >= Duration::from_millis(1800), "{took:?}");
}

#[test]
fn slices_arrive_apart() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(
        &upstream.addr_str(),
        &["--slice", "1", "--slice-delay", "20ms"],
    );
    let mut stream = relay.connect();
    // Ten bytes, nine pauses of 20 ms between them.
    let took = round_trip(&mut stream, b"0123456789");
    assert!(took >= Duration::from_millis(180), "{took:?}");
}

#[test]
fn fault_rate_zero_affects_none_of_fifty_connections() {
    let upstream = Server::start(&["--echo"]);
    // Every affected connection would be reset at once.
    let spared = relay(
        &upstream.addr_str(),
        &["--reset-after", "0", "--fault-rate", "0"],
    );
    for i in 0..50u8 {
        let (got, err) = exchange(spared.connect(), vec![i; 100]);
        assert!(
            err.is_none() && got == vec![i; 100],
            "connection {i}: {err:?}"
        );
    }
    // The same fault at rate 1 affects every one.
    let all = relay(&upstream.addr_str(), &["--reset-after", "0"]);
    for _ in 0..5 {
        let (got, err) = exchange(all.connect(), vec![1; 100]);
        assert!(got.is_empty());
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    }
    spared
        .proc
        .stderr
        .wait_for_count("closed by both sides", 50);
    assert_eq!(spared.proc.stderr.count("--reset-after"), 0);
}

#[test]
fn blackhole_swallows_and_the_other_way_still_flows() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--blackhole"]);
    let mut stream = relay.connect();
    stream.write_all(b"hello").expect("send");
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    let mut buf = [0u8; 16];
    let err = stream.read(&mut buf).expect_err("nothing comes back");
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    // The upstream got the request and answered; the answer was swallowed.
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.shutdown(Shutdown::Write).expect("shutdown");
    let (got, err) = read_until_end(stream);
    assert!(got.is_empty() && err.is_none(), "{got:?} {err:?}");
    let line = relay.proc.stderr.wait_for("closed by both sides");
    assert!(line.contains("up 5 bytes, down 0 bytes"), "{line}");
}

#[test]
fn timeout_after_stops_forwarding_then_closes() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--timeout-after", "300ms"]);
    let start = Instant::now();
    let mut stream = relay.connect();
    round_trip(&mut stream, b"early");
    let (got, err) = read_until_end(stream);
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert!(got.is_empty() && err.is_none(), "{got:?} {err:?}");
    relay
        .proc
        .stderr
        .wait_for("closed by --timeout-after 300ms");
}

#[test]
fn faults_apply_through_a_unix_socket() {
    let dir = temp_dir();
    let path = dir.path().join("relay.sock");
    let listen = format!("unix://{}", path.display());
    let upstream = Server::start(&["--echo"]);
    let relay = Listening::start(&[
        "relay",
        &listen,
        &upstream.addr_str(),
        "--reset-after",
        "1000",
    ]);
    let mut client = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    client.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut writer = client.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&payload(10_000, 1));
    });
    let mut got = Vec::new();
    let _ = client.read_to_end(&mut got);
    sender.join().expect("sender");
    assert_eq!(got, payload(10_000, 1)[..1000]);
    relay.proc.stderr.wait_for("--reset-after 1000");
}

/// One HTTP/1.1 request to the control API: the status and the body.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the control API");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let reply = String::from_utf8(read_to_end(&mut s)).expect("utf-8");
    let status = reply[9..12].parse().expect("status");
    let body = reply.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// The control API's address from the relay's log.
fn control_addr(relay: &Server) -> SocketAddr {
    let line = relay.proc.stderr.wait_for("control API at http://");
    line.rsplit("http://")
        .next()
        .and_then(|a| a.parse().ok())
        .expect("control address")
}

#[test]
fn the_control_api_changes_faults_on_a_live_relay() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--control", "127.0.0.1:0"]);
    let api = control_addr(&relay);
    assert_eq!(http(api, "GET", "/faults", ""), (200, "{}\n".into()));
    // Open before the change: keeps no faults.
    let mut before = relay.connect();
    round_trip(&mut before, b"x");

    let (status, body) = http(
        api,
        "PUT",
        "/faults",
        r#"{"latency": "200ms", "direction": "both"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (_, shown) = http(api, "GET", "/faults", "");
    assert!(shown.contains(r#""latency":"200ms""#), "{shown}");
    assert!(shown.contains(r#""direction":"both""#), "{shown}");
    let mut after = relay.connect();
    // Both ways: at least 400 ms.
    let took = round_trip(&mut after, b"slow");
    assert!(took >= Duration::from_millis(400), "{took:?}");

    // Both connections listed with their byte counts; the new one faulted.
    let (status, conns) = http(api, "GET", "/connections", "");
    assert_eq!(status, 200);
    assert!(conns.contains(r#""bytes_down":4,"#), "{conns}");
    assert!(conns.contains(r#""faulted":true"#), "{conns}");
    assert!(conns.contains(r#""faulted":false"#), "{conns}");

    // A bad request names the key and changes nothing.
    let (status, body) = http(
        api,
        "PUT",
        "/faults",
        r#"{"latency": "1s", "latncy": "1s"}"#,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""key":"latncy""#), "{body}");
    let (status, body) = http(api, "PUT", "/faults", r#"{"bandwidth": "fast"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""key":"bandwidth""#), "{body}");
    assert_eq!(http(api, "GET", "/faults", "").1, shown);

    assert_eq!(http(api, "DELETE", "/faults", ""), (200, "{}\n".into()));
    assert_eq!(http(api, "GET", "/faults", ""), (200, "{}\n".into()));
    assert_eq!(http(api, "POST", "/faults", "").0, 405);
    assert_eq!(http(api, "GET", "/nope", "").0, 404);
}

#[test]
fn the_control_api_bounds_requests() {
    let upstream = Server::start(&["--echo"]);
    let relay = relay(&upstream.addr_str(), &["--control", "127.0.0.1:0"]);
    let api = control_addr(&relay);
    let big = "x".repeat(100_000);
    assert_eq!(http(api, "PUT", "/faults", &big).0, 413);
    let mut s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(b"PUT /faults HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .expect("request");
    let reply = String::from_utf8(read_to_end(&mut s)).expect("utf-8");
    assert!(reply.starts_with("HTTP/1.1 411"), "{reply}");
    s = TcpStream::connect(api).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s.write_all(b"garbage\r\n\r\n").expect("request");
    let reply = String::from_utf8(read_to_end(&mut s)).expect("utf-8");
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[test]
fn a_faults_file_is_strict_and_re_read_on_sighup() {
    let dir = temp_dir();
    let file = dir.path().join("faults.toml");
    let file_str = file.to_str().expect("utf-8 path").to_owned();
    std::fs::write(&file, "reset-after = 10\nlatencyy = \"1s\"\n").expect("write the faults file");
    let out = run(&["relay", "127.0.0.1:0", "127.0.0.1:1", "--faults", &file_str]);
    assert_exit(&out, 2, "latencyy: unknown key");

    let upstream = Server::start(&["--echo"]);
    std::fs::write(&file, "# a comment\nreset-after = 10\n").expect("write the faults file");
    let relay = relay(&upstream.addr_str(), &["--faults", &file_str]);
    let reset_after = |n: usize| {
        let (got, err) = exchange(relay.connect(), vec![7; 1000]);
        assert_eq!(got.len(), n);
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    };
    reset_after(10);
    // A bad file on SIGHUP: logged, the faults in force kept.
    std::fs::write(&file, "reset-after = 20\nbogus = 1\n").expect("write the faults file");
    relay.proc.signal(libc::SIGHUP);
    relay
        .proc
        .stderr
        .wait_for("bogus: unknown key (the keys are");
    reset_after(10);
    std::fs::write(&file, "reset-after = \"20\"\ndirection = \"down\"\n")
        .expect("write the faults file");
    relay.proc.signal(libc::SIGHUP);
    relay.proc.stderr.wait_for("SIGHUP: faults now");
    reset_after(20);
}

#[test]
fn faults_apply_to_a_tls_upstream() {
    let upstream = Server::start_exact(&["serve", "--tls", "127.0.0.1:0", "--echo"]);
    let line = upstream
        .proc
        .stderr
        .wait_for("tls certificate sha256 fingerprint: ");
    let fp = line
        .rsplit(": ")
        .next()
        .expect("fingerprint")
        .trim()
        .to_owned();
    let target = format!("tls://{}", upstream.addr_str());
    let relay = relay(
        &target,
        &[
            "--upstream-pin-sha256",
            &fp,
            "--latency",
            "50ms",
            "--reset-after",
            "1000",
        ],
    );
    let data = payload(10_000, 21);
    let start = Instant::now();
    let (got, err) = exchange(relay.connect(), data.clone());
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(got, data[..1000]);
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    relay.proc.stderr.wait_for("relaying with faults");
}
