//! connect's `-C/--crlf`, `--send-only` and `--recv-only`, against a test
//! listener that sees exactly what arrives.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;

use crate::util::*;

fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

fn accept(l: &TcpListener) -> TcpStream {
    let (s, _) = l.accept().expect("accept");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    s
}

#[test]
fn crlf_turns_lone_lfs_of_stdin_and_send_into_crlf() {
    let (l, addr) = listener();
    let peer = std::thread::spawn(move || read_to_end(&mut accept(&l)));
    let out = run_with_input(&["connect", "-C", &addr], b"a\nb\r\nc\n".to_vec());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(peer.join().expect("peer"), b"a\r\nb\r\nc\r\n");

    let (l, addr) = listener();
    let peer = std::thread::spawn(move || read_to_end(&mut accept(&l)));
    let out = run(&["connect", "--crlf", &addr, "--send", "GET / HTTP/1.0\n\n"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(peer.join().expect("peer"), b"GET / HTTP/1.0\r\n\r\n");
}

#[test]
fn send_only_never_reads_and_ends_with_stdin() {
    let (l, addr) = listener();
    let mut child = spawn_piped(&["connect", "--send-only", &addr]);
    let mut peer = accept(&l);
    // The peer talks, but nothing of it may reach stdout.
    peer.write_all(b"ignored").expect("write");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hello").expect("write stdin");
    drop(stdin);
    // The half-close arrives after everything sent; the peer keeps its
    // side open, and netcrab still exits. (Closing with the peer's bytes
    // unread may reset the connection after the FIN: what came before
    // counts.)
    let mut got = Vec::new();
    let _ = peer.read_to_end(&mut got);
    assert_eq!(got, b"hello");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    drop(peer);
}

#[test]
fn recv_only_never_reads_stdin() {
    let (l, addr) = listener();
    let mut child = netcrab()
        .args(["connect", "--recv-only", &addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"secret").expect("write stdin");
    let mut peer = accept(&l);
    peer.write_all(b"data").expect("write");
    peer.shutdown(std::net::Shutdown::Write).expect("shutdown");
    // stdin stays open: netcrab ends because the peer closed.
    let mut stdout = child.stdout.take().expect("stdout");
    let mut got = Vec::new();
    stdout.read_to_end(&mut got).expect("read stdout");
    assert_eq!(got, b"data");
    let status = child.wait().expect("wait");
    assert_eq!(code(status), 0);
    // Nothing of stdin was sent.
    assert_eq!(read_to_end(&mut peer), b"");
    drop(stdin);
}

#[test]
fn one_way_flags_conflict_and_need_a_stream() {
    let out = run(&["connect", "127.0.0.1:1", "--send-only", "--recv-only"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
    let out = run(&["connect", "127.0.0.1:1", "--recv-only", "--send", "x"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
    let out = run(&["connect", "-u", "127.0.0.1:1", "-C"]);
    assert_exit(&out, 2, "--crlf applies to stream connections");
}
