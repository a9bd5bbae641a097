//! `connect udp://` and `connect unixgram://` in bulk: many lines go out
//! per system call (sendmmsg on Linux), yet every line arrives, once, in
//! order, and each is counted; queued replies are printed whole.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::util::*;

/// The bulk tests' input: `count` numbered lines of varied length.
fn numbered_lines(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            let mut line = format!("line {i} ").into_bytes();
            line.resize(line.len() + i % 50, b'.');
            line.push(b'\n');
            line
        })
        .collect()
}

/// A UDP peer on loopback with as large a receive buffer as it can get
/// (UDP has no flow control: a peer that fell behind would drop
/// datagrams), and how many small datagrams that buffer holds for sure
/// (2 KiB of buffer each, above a small datagram's true size), so that a
/// test sending no more never sees one dropped, however slowly its reader
/// runs.
fn udp_peer() -> (UdpSocket, usize) {
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // Above the system's limit (root may, with SO_RCVBUFFORCE); else the
    // limit itself.
    if rustix::net::sockopt::set_socket_recv_buffer_size_force(&peer, 64 << 20).is_err() {
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&peer, 64 << 20);
    }
    let buffer = rustix::net::sockopt::socket_recv_buffer_size(&peer).expect("SO_RCVBUF");
    (peer, buffer / 2048)
}

/// Reads `count` datagrams on `peer` from a thread, as they come: what it
/// received (less if it waited PATIENCE for the next).
fn udp_counter(peer: UdpSocket, count: usize) -> (SocketAddr, mpsc::Receiver<Vec<Vec<u8>>>) {
    peer.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let addr = peer.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut got = Vec::with_capacity(count);
        let mut buf = vec![0u8; 65536];
        while got.len() < count {
            match peer.recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(_) => break,
            }
        }
        let _ = tx.send(got);
    });
    (addr, rx)
}

/// Asserts that `got` is `lines`, one datagram each, in order.
#[track_caller]
fn assert_all_in_order(got: &[Vec<u8>], lines: &[Vec<u8>]) {
    assert_eq!(got.len(), lines.len(), "datagrams received");
    for (i, (got, line)) in got.iter().zip(lines).enumerate() {
        assert_eq!(
            got,
            line,
            "datagram {i}: {:?}",
            String::from_utf8_lossy(got)
        );
    }
}

#[test]
fn twenty_thousand_lines_reach_a_udp_peer_each_once_and_in_order() {
    // 20,000 where the peer's buffer holds them all (as root: 64 MiB),
    // else as many as it holds.
    let (peer, room) = udp_peer();
    let n = room.min(20_000);
    assert!(n >= 100, "a receive buffer for {n} datagrams only");
    let lines = numbered_lines(n);
    let (addr, received) = udp_counter(peer, n);
    let out = run_with_input(
        &["-v", "connect", &format!("udp://{addr}"), "--wait", "10ms"],
        lines.concat(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let got = received.recv_timeout(PATIENCE).expect("the peer's count");
    assert_all_in_order(&got, &lines);
    let bytes: usize = lines.iter().map(Vec::len).sum();
    assert!(
        stderr(&out).contains(&format!("done: sent {bytes} bytes")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn twenty_thousand_lines_reach_a_unixgram_peer_through_a_full_queue() {
    // A Unix datagram socket's queue holds only a few datagrams
    // (net.unix.max_dgram_qlen): batches stop short at a full queue again
    // and again, and each must go on from the first datagram not sent.
    const N: usize = 20_000;
    let lines = numbered_lines(N);
    let dir = temp_dir();
    let path = dir.path().join("peer.sock");
    let peer = UnixDatagram::bind(&path).expect("bind");
    peer.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let reader = thread::spawn(move || {
        let mut got = Vec::with_capacity(N);
        let mut buf = vec![0u8; 65536];
        while got.len() < N {
            match peer.recv(&mut buf) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(_) => break,
            }
            // A slow reader: the queue fills while it sleeps.
            if got.len() % 2_000 == 0 {
                thread::sleep(Duration::from_millis(5));
            }
        }
        got
    });
    let path = path.to_str().expect("utf-8");
    let mut child = netcrab();
    child
        .args(["-v", "connect", "-U", "-u", path, "--wait", "10ms"])
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("TMPDIR", dir.path());
    let input = lines.concat();
    let out = {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = child
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn netcrab");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait for netcrab");
        writer.join().expect("stdin writer");
        out
    };
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let got = reader.join().expect("reader");
    assert_all_in_order(&got, &lines);
    let bytes: usize = lines.iter().map(Vec::len).sum();
    assert!(
        stderr(&out).contains(&format!("done: sent {bytes} bytes")),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_burst_of_queued_replies_is_printed_whole_and_in_order() {
    // Replies of many sizes, the empty one and a 60,000-byte one among
    // them, sent at once: the client takes them in batches.
    let sizes = [1, 500, 0, 60_000, 7, 20_000, 3, 1_400, 2, 9_000];
    let replies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| payload(len, i as u64))
        .collect();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("bind");
    peer.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let addr = peer.local_addr().expect("addr");
    let burst = replies.clone();
    let server = thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (_, from) = peer.recv_from(&mut buf).expect("the request");
        for reply in &burst {
            peer.send_to(reply, from).expect("reply");
        }
    });
    let out = run(&[
        "-v",
        "connect",
        &format!("udp://{addr}"),
        "--send",
        "go",
        "--wait",
        "1s",
    ]);
    server.join().expect("server");
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let expected = replies.concat();
    assert!(out.stdout == expected, "the replies, byte for byte");
    assert!(
        stderr(&out).contains(&format!("received {} bytes", expected.len())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn echoed_lines_come_back_in_order() {
    // Few enough that the replies fit the client's receive buffer.
    let lines = numbered_lines(200);
    let server = Listening::start(&["serve", "-u", "127.0.0.1:0", "--echo"]);
    let out = run_with_input(&["connect", &server.addr, "--wait", "1s"], lines.concat());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(
        out.stdout == lines.concat(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn lines_to_a_closed_port_end_with_connection_refused() {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.local_addr().expect("addr").port()
    };
    let out = run_with_input(
        &[
            "connect",
            &format!("udp://127.0.0.1:{port}"),
            "--wait",
            "20s",
        ],
        numbered_lines(5_000).concat(),
    );
    assert_exit(&out, 4, "connection refused");
}

#[test]
fn the_lines_before_an_over_long_one_go_before_its_error() {
    let (addr, received) = udp_counter(udp_peer().0, 2);
    let mut input = b"first\nsecond\n".to_vec();
    input.extend(vec![b'x'; 70_000]);
    input.extend(b"\nnever\n");
    let out = run_with_input(&["connect", &format!("udp://{addr}")], input);
    assert_exit(&out, 2, "at most 65507 bytes");
    let got = received.recv_timeout(PATIENCE).expect("the peer's count");
    assert_eq!(got, [b"first\n".to_vec(), b"second\n".to_vec()]);
}
