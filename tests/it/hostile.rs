//! `netcrab serve` against hostile peers: peers that never read, trickle
//! partial lines or send floods of newlines. Memory bounds are read from
//! /proc (peak RSS, with generous margins), never from wall-clock times.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::*;

/// A process's `FIELD` line in /proc/PID/status (VmRSS, VmHWM), in KiB.
fn status_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The number of descriptors `pid` has open.
fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

/// Polls `cond` until it holds; panics after [`PATIENCE`].
fn wait_until(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < deadline, "not reached: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Connects a peer that sends `data` (as much as the server takes, for up
/// to PATIENCE) and never reads.
fn non_reader(server: &Server, data: Vec<u8>) -> (TcpStream, JoinHandle<()>) {
    let s = server.connect();
    s.set_write_timeout(Some(PATIENCE)).expect("write timeout");
    let mut w = s.try_clone().expect("clone");
    let writer = std::thread::spawn(move || {
        // Fails once the server closes, or blocks until the timeout.
        let _ = w.write_all(&data);
    });
    (s, writer)
}

#[test]
fn a_peer_that_never_reads_is_closed_after_the_idle_timeout() {
    let server = Server::start(&["--echo", "--idle-timeout", "500ms"]);
    // Far more than the socket buffers hold either way: the server's
    // write blocks, then it stops reading and our write blocks too.
    let (_s, writer) = non_reader(&server, payload(64 << 20, 3));
    server
        .proc
        .stderr
        .wait_for("write blocked for 500ms: the peer is not reading");
    writer.join().unwrap();
    // Others are served.
    let out = run(&["connect", &server.addr_str(), "--send", "still here"]);
    assert_eq!(out.stdout, b"still here");
}

#[test]
fn lines_memory_is_bounded_whatever_non_readers_send() {
    const PEERS: usize = 20;
    let reply = "x".repeat(1024);
    let server = Server::start(&["--lines", "--reply", &reply, "--idle-timeout", "1s"]);
    let pid = server.proc.pid();
    let before = status_kib(pid, "VmHWM");
    let fds = open_fds(pid);
    // Each read of newlines asks for up to 16 Ki answers of 1 KiB: 16 MiB
    // per connection, were they all built before writing.
    let peers: Vec<_> = (0..PEERS)
        .map(|_| non_reader(&server, vec![b'\n'; 256 << 10]))
        .collect();
    // Every peer accepted, then every one closed for its blocked writes.
    // Counted from the server's descriptors, not its log: a `recv` line per
    // newline overflows the log queue, which then drops lines by design.
    wait_until(|| open_fds(pid) >= fds + PEERS, "every peer accepted");
    wait_until(|| open_fds(pid) <= fds, "every peer closed");
    let peak = status_kib(pid, "VmHWM") - before;
    // Bounded buffers cost ~32 KiB per connection; allow 8 MiB in all.
    assert!(
        peak < 8 << 10,
        "peak RSS grew {peak} KiB with {PEERS} non-reading peers"
    );
    for (_, writer) in peers {
        writer.join().unwrap();
    }
}

#[test]
fn a_line_left_unfinished_past_the_line_timeout_gets_an_error() {
    let server = Server::start(&["--lines", "--reply", "ok", "--line-timeout", "1s"]);
    let mut s = server.connect();
    // Complete lines, however spaced, do not count towards it.
    for _ in 0..3 {
        s.write_all(b"a").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        s.write_all(b"\n").unwrap();
        let mut buf = [0u8; 3];
        s.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"ok\n");
    }
    // A trickled line does: every byte resets the idle timer, not this.
    let mut w = s.try_clone().unwrap();
    let trickler = std::thread::spawn(move || {
        while w.write_all(b"z").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    assert_eq!(read_to_end(&mut s), b"error: line timeout (1.0s)\n");
    server.proc.stderr.wait_for("line not complete within 1.0s");
    let _ = s.shutdown(Shutdown::Both);
    trickler.join().unwrap();
}

#[test]
fn at_the_connection_limit_the_longest_idle_peer_makes_room() {
    let reply = "x".repeat(1024);
    let server = Server::start(&[
        "-v",
        "--lines",
        "--reply",
        &reply,
        "--max-conns",
        "4",
        "--idle-timeout",
        "0",
        "--line-timeout",
        "0",
    ]);
    let pid = server.proc.pid();
    let fds = open_fds(pid);
    // Two peers trickle a line that never ends, two send newlines and
    // never read: every slot is held.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = server.connect();
        s.write_all(b"never ending").unwrap();
        held.push(s);
    }
    let non_readers: Vec<_> = (0..2)
        .map(|_| non_reader(&server, vec![b'\n'; 1 << 20]))
        .collect();
    // Counted from the server's descriptors, not its `connected` lines: the
    // non-readers' `recv` lines can overflow the log queue, which then
    // drops lines by design (seen under load).
    wait_until(|| open_fds(pid) >= fds + 4, "every slot held");
    // A fifth client is served (its read times out after PATIENCE
    // otherwise).
    let mut s = server.connect();
    s.write_all(b"hello\n").unwrap();
    let mut buf = vec![0u8; reply.len() + 1];
    s.read_exact(&mut buf).expect("the fifth client is served");
    assert_eq!(buf, format!("{reply}\n").as_bytes());
    server.proc.stderr.wait_for("closing a connection idle for");
    drop(held);
    for (s, writer) in non_readers {
        let _ = s.shutdown(Shutdown::Both);
        writer.join().unwrap();
    }
}

#[test]
fn udp_answers_larger_than_a_datagram_are_dropped_and_counted() {
    let reply = "x".repeat(1000);
    let server = Server::start(&["-u", "--lines", "--reply", &reply]);
    let pid = server.proc.pid();
    let before = status_kib(pid, "VmHWM");
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.connect(server.addr).unwrap();
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    // 65,000 answers of 1,001 bytes: 65 MB, were they all built.
    s.send(&vec![b'\n'; 65_000]).unwrap();
    server
        .proc
        .stderr
        .wait_for("1 answer(s) larger than a datagram");
    // The next datagram is answered as usual.
    s.send(b"a\nb\n").unwrap();
    let mut buf = vec![0u8; 65_536];
    let n = s.recv(&mut buf).unwrap();
    assert_eq!(n, 2 * (reply.len() + 1));
    let peak = status_kib(pid, "VmHWM") - before;
    assert!(peak < 8 << 10, "peak RSS grew {peak} KiB");
}
