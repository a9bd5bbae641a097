//! Unix sockets: stale and live socket files, clean-up at shutdown,
//! `--mode`, abstract sockets and the `-U` shorthand. (The behaviours shared
//! with TCP run in the matrix.)

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

use crate::util::*;

fn unix_addr(path: &Path) -> String {
    format!("unix://{}", path.display())
}

/// Runs `connect ADDR --send hello` and returns its output.
fn say_hello(addr: &str) -> Vec<u8> {
    let out = run(&["connect", addr, "--send", "hello"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    out.stdout
}

/// An abstract socket name no other test run uses.
fn abstract_name(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("netcrab-it-{}-{tag}-{nanos}", std::process::id())
}

#[test]
fn serves_on_a_socket_file_with_the_shorthand() {
    let dir = temp_dir();
    let path = dir.path().join("s.sock");
    let server = Listening::start(&["serve", "-U", path.to_str().expect("utf-8"), "--echo"]);
    assert_eq!(server.addr, unix_addr(&path));
    let out = run(&[
        "connect",
        "-U",
        path.to_str().expect("utf-8"),
        "--send",
        "hi",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hi");
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let dir = temp_dir();
    let path = dir.path().join("stale.sock");
    // A dead server's socket: bound, then closed without removing the file.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    assert!(path.exists());
    let server = Listening::start(&["serve", &unix_addr(&path), "--reply", "fresh"]);
    server.proc.stderr.wait_for("removing stale socket file");
    assert_eq!(say_hello(&server.addr), b"fresh");
}

#[test]
fn a_live_socket_is_not_taken_over() {
    let dir = temp_dir();
    let path = dir.path().join("live.sock");
    let first = Listening::start(&["serve", &unix_addr(&path), "--reply", "first"]);
    let out = run(&["serve", &unix_addr(&path), "--reply", "second"]);
    assert_exit(&out, 9, "address in use");
    // The first server still owns the socket and answers.
    assert_eq!(say_hello(&first.addr), b"first");
}

#[test]
fn a_file_that_is_not_a_socket_is_left_alone() {
    let dir = temp_dir();
    let path = dir.path().join("data.txt");
    std::fs::write(&path, "precious").expect("write");
    let out = run(&["serve", &unix_addr(&path)]);
    assert_exit(&out, 9, "not a socket");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "precious");
}

#[test]
fn the_socket_file_is_removed_at_shutdown() {
    let dir = temp_dir();
    let path = dir.path().join("bye.sock");
    let mut server = Listening::start(&["serve", &unix_addr(&path)]);
    let meta = std::fs::symlink_metadata(&path).expect("socket file exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(say_hello(&server.addr), b"hello, world");
    server.proc.signal(libc::SIGTERM);
    assert_eq!(code(server.proc.wait()), 0);
    assert!(!path.exists(), "socket file left behind");
}

#[test]
fn mode_sets_the_socket_file_permissions() {
    let dir = temp_dir();
    for mode in [0o600, 0o666] {
        let path = dir.path().join(format!("m{mode:o}.sock"));
        let server =
            Listening::start(&["serve", &unix_addr(&path), "--mode", &format!("{mode:o}")]);
        let meta = std::fs::metadata(&path).expect("socket file");
        assert_eq!(meta.permissions().mode() & 0o7777, mode, "--mode {mode:o}");
        assert_eq!(say_hello(&server.addr), b"hello, world");
    }
}

#[test]
fn mode_is_refused_for_other_transports() {
    let out = run(&["serve", "127.0.0.1:0", "--mode", "600"]);
    assert_exit(&out, 2, "--mode");
    let out = run(&["serve", "--mode", "999", "-U", "/tmp/x.sock"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
}

#[test]
fn abstract_sockets_work_and_leave_no_file() {
    let name = abstract_name("abs");
    let addr = format!("unix:@{name}");
    let server = Listening::start(&["serve", &addr, "--echo"]);
    assert_eq!(server.addr, addr);
    let out = run(&["connect", "-U", &format!("@{name}"), "--send", "abstract"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"abstract");
    // A second server on the same name is refused by the kernel.
    let out = run(&["serve", &addr]);
    assert_exit(&out, 9, "address in use");
}

#[test]
fn connecting_to_a_missing_socket_is_refused() {
    let dir = temp_dir();
    let addr = unix_addr(&dir.path().join("nobody.sock"));
    let out = run(&["connect", &addr, "--send", "x"]);
    assert_exit(&out, 4, "connection refused (no such socket file)");
}

#[test]
fn serve_with_the_unix_shorthand_needs_a_path() {
    let out = run(&["serve", "-U"]);
    assert_exit(&out, 2, "-U needs a socket path");
}

#[test]
fn discard_over_a_unix_socket() {
    let dir = temp_dir();
    let path = dir.path().join("discard.sock");
    let server = Listening::start(&["serve", &unix_addr(&path), "--discard"]);
    let out = run_with_input(&["connect", &server.addr], payload(1 << 20, 7));
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}
