//! `netcrab serve` against real clients.

use std::io::{Read, Write};

use crate::util::*;

#[test]
fn seed_exchange_with_defaults() {
    let server = Server::start(&[]);
    let out = run(&["connect", &server.addr_str(), "--send", "hello, world"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    server.proc.stderr.wait_for("recv hello, world");
}

#[test]
fn replies_once_per_read() {
    let server = Server::start(&["--reply", "pong"]);
    let mut s = server.connect();
    s.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"pong");
}
