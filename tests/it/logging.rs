//! Logging never blocks serving: with stderr a pipe nobody reads, clients
//! are still served, the dropped lines are counted and reported once stderr
//! is read again, and SIGTERM still ends the process promptly.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// Polls until `path` holds a port number (the server cannot be asked on
/// stderr: nobody reads it).
fn port_from_file(path: &std::path::Path) -> u16 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(port) = std::fs::read_to_string(path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return port;
        }
        assert!(Instant::now() < deadline, "no port file");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `n` request/reply exchanges of `size` bytes on one connection, each
/// logged by the server as `recv ...`.
fn exchanges(port: u16, n: usize, size: usize) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let msg = vec![b'x'; size];
    let mut reply = [0u8; 12];
    for i in 0..n {
        s.write_all(&msg).expect("send");
        s.read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("exchange {i}: no reply (server blocked?): {e}"));
        assert_eq!(&reply, b"hello, world");
    }
}

#[test]
fn a_stderr_nobody_reads_does_not_stop_serving() {
    let dir = temp_dir();
    let port_file = dir.path().join("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netcrab"))
        .args(["serve", "127.0.0.1:0", "--port-file"])
        .arg(&port_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Held open, not read: the pipe (64 KiB) fills, then the log queue.
    let stderr = child.stderr.take().expect("stderr");
    let port = port_from_file(&port_file);

    // 8 connections x 300 messages of 1000 bytes: 2400 log lines of about
    // 1 KiB, far more than the pipe and the queue hold.
    let clients: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || exchanges(port, 300, 1000)))
        .collect();
    for client in clients {
        client.join().expect("every client served");
    }

    // Reading stderr again: the server says how many lines it dropped,
    // on the next line it logs.
    let lines = Lines::collect(stderr);
    let deadline = Instant::now() + PATIENCE;
    while lines.count("log lines dropped (stderr was not being read)") == 0 {
        assert!(Instant::now() < deadline, "no dropped-lines report");
        exchanges(port, 1, 10);
        std::thread::sleep(Duration::from_millis(10));
    }
    let line = lines.wait_for("log lines dropped");
    assert!(line.starts_with("netcrab: warning: "), "{line}");

    // SIGTERM ends it promptly, with its last lines written.
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = child.wait().expect("wait");
    assert_eq!(code(status), 0);
    assert!(signalled.elapsed() < Duration::from_secs(5));
    lines.wait_for("stopped after");
}

/// While stderr stalls, SIGTERM still ends the process promptly (the
/// final flush gives up after half a second).
#[test]
fn sigterm_ends_a_server_whose_stderr_is_stalled() {
    let dir = temp_dir();
    let port_file = dir.path().join("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_netcrab"))
        .args(["serve", "127.0.0.1:0", "--port-file"])
        .arg(&port_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let _stderr = child.stderr.take().expect("stderr");
    let port = port_from_file(&port_file);
    exchanges(port, 2000, 1000);
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child's pid has no memory effects.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not end the server");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(code(status), 0);
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
}
