//! Transcripts (`-o`, `-x`) on connect, serve and relay, compared with
//! golden files in tests/it/golden/ (the servers' client ports filled in).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use crate::tls::TempDir;
use crate::util::*;

fn golden(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Stops a server with SIGTERM and waits for it (the transcript is
/// complete once it has exited).
fn stop(mut proc: Proc) {
    proc.signal(libc::SIGTERM);
    let status = proc.wait();
    assert_eq!(code(status), 0, "{}", proc.stderr.text());
}

#[test]
fn connect_writes_the_golden_hex_dump_and_raw_bytes() {
    let server = Server::start(&["--reply", "pong"]);
    let dir = TempDir::new();
    let (hex, raw) = (dir.path("c.hex"), dir.path("c.raw"));
    let out = run(&[
        "connect",
        &server.addr_str(),
        "--send",
        "hello\n",
        "-x",
        hex.to_str().expect("utf-8"),
        "--output",
        raw.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"pong");
    assert_eq!(read(&hex), golden("connect.hex"));
    assert_eq!(read(&raw), golden("connect.raw"));
}

/// One client: sends each message and reads its echo before the next.
fn echo_client(addr: std::net::SocketAddr, messages: &[&[u8]]) -> u16 {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(PATIENCE)).expect("timeout");
    for msg in messages {
        s.write_all(msg).expect("write");
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).expect("echo");
        assert_eq!(&back, msg);
    }
    let port = s.local_addr().expect("local").port();
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    assert!(read_to_end(&mut s).is_empty());
    port
}

#[test]
fn serve_writes_one_golden_file_with_connection_ids() {
    let dir = TempDir::new();
    let (hex, raw) = (dir.path("s.hex"), dir.path("s.raw"));
    let server = Server::start(&[
        "--echo",
        "--hex-dump",
        hex.to_str().expect("utf-8"),
        "-o",
        raw.to_str().expect("utf-8"),
    ]);
    let port1 = echo_client(server.addr, &[b"abc", b"defg"]);
    let port2 = echo_client(server.addr, &[b"xyz\n"]);
    stop(server.proc);
    let want = golden("serve.hex")
        .replace("{PORT1}", &port1.to_string())
        .replace("{PORT2}", &port2.to_string());
    assert_eq!(read(&hex), want);
    assert_eq!(read(&raw), golden("serve.raw"));
}

/// Splits a server's `-o` file into (conn, direction, bytes) chunks.
fn chunks(raw: &[u8]) -> Vec<(u64, char, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let nl = rest.iter().position(|&b| b == b'\n').expect("header line");
        let header = std::str::from_utf8(&rest[..nl]).expect("utf-8 header");
        let fields: Vec<&str> = header
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split(' ')
            .collect();
        assert_eq!(fields.len(), 4, "{header}");
        let conn: u64 = fields[1].parse().expect("conn id");
        let dir = fields[2].chars().next().expect("direction");
        let len: usize = fields[3].parse().expect("length");
        out.push((conn, dir, rest[nl + 1..nl + 1 + len].to_vec()));
        rest = &rest[nl + 1 + len..];
    }
    out
}

#[test]
fn relay_records_every_byte_of_a_large_transfer_both_ways() {
    let upstream = Server::start(&["--echo"]);
    let dir = TempDir::new();
    let raw = dir.path("r.raw");
    let relay = Listening::start(&[
        "relay",
        "127.0.0.1:0",
        &upstream.addr_str(),
        "-o",
        raw.to_str().expect("utf-8"),
    ]);
    let data = payload(300_000, 7);
    let out = run_with_input(&["connect", &relay.addr], data.clone());
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, data);
    stop(relay.proc);
    let bytes = std::fs::read(&raw).expect("read transcript");
    let (mut up, mut down) = (Vec::new(), Vec::new());
    for (conn, dir, chunk) in chunks(&bytes) {
        assert_eq!(conn, 1);
        match dir {
            '<' => up.extend_from_slice(&chunk),
            '>' => down.extend_from_slice(&chunk),
            other => panic!("direction {other:?}"),
        }
    }
    assert!(
        up == data,
        "the client's bytes differ ({} recorded)",
        up.len()
    );
    assert!(
        down == data,
        "the bytes to the client differ ({} recorded)",
        down.len()
    );
}

#[test]
fn transcripts_need_two_files_and_a_stream() {
    let dir = TempDir::new();
    let f = dir.path("same");
    let f = f.to_str().expect("utf-8");
    let out = run(&["connect", "127.0.0.1:1", "-o", f, "-x", f]);
    assert_exit(&out, 2, "two different files");
    let out = run(&["connect", "-u", "127.0.0.1:1", "-x", f]);
    assert_exit(&out, 2, "not udp");
    let out = run(&["serve", "127.0.0.1:0", "-o", "/nonexistent/dir/t.raw"]);
    assert_ne!(code(out.status), 0);
    assert!(
        stderr(&out).contains("create --output file"),
        "{}",
        stderr(&out)
    );
}
