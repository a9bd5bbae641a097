//! `netcrab proxy` with real, independent clients (curl's SOCKS5, SOCKS4/4a
//! and HTTP CONNECT support, installed by scripts/install-test-deps.sh) and raw
//! protocol bytes for what curl cannot be made to send.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::*;

/// A `netcrab serve` answering every read with a minimal HTTP response.
fn http_origin() -> Server {
    Server::start(&[
        "--reply",
        "HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\norigin",
    ])
}

/// Starts `netcrab -v proxy 127.0.0.1:0 ARGS...` and waits until it
/// listens.
fn proxy(args: &[&str]) -> Server {
    let mut all = vec!["-v", "proxy", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Server::start_exact(&all)
}

/// Runs curl (bounded in time) with `args`.
fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl (install it with scripts/install-test-deps.sh)")
}

#[track_caller]
fn assert_body(out: &Output, body: &str) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout == body,
        "curl {:?}: stdout {stdout:?}, stderr {}",
        out.status,
        stderr(out)
    );
}

#[track_caller]
fn assert_curl_fails(out: &Output, code: i32, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(err.contains(needle), "no {needle:?} in: {err}");
}

/// A raw connection to the proxy with a read timeout.
fn raw(proxy: &Server) -> TcpStream {
    proxy.connect()
}

/// Reads exactly `n` bytes.
fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).expect("read reply");
    buf
}

/// Opens a SOCKS5 CONNECT tunnel (no authentication) to `target` by hand.
fn socks5_tunnel(proxy: &Server, target: std::net::SocketAddr) -> (TcpStream, Vec<u8>) {
    let mut s = raw(proxy);
    s.write_all(&[5, 1, 0]).expect("greeting");
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    let std::net::IpAddr::V4(ip) = target.ip() else {
        panic!("ipv4 only")
    };
    let mut req = vec![5, 1, 0, 1];
    req.extend(ip.octets());
    req.extend(target.port().to_be_bytes());
    s.write_all(&req).expect("request");
    let reply = read_n(&mut s, 10);
    (s, reply)
}

#[test]
fn curl_socks5_hostname_through_the_proxy() {
    let origin = http_origin();
    let proxy = proxy(&[]);
    let url = format!("http://localhost:{}/", origin.addr.port());
    let out = curl(&["--socks5-hostname", &proxy.addr_str(), &url]);
    assert_body(&out, "origin");
    // The proxy resolved the name (curl sent it as is).
    let line = proxy
        .proc
        .stderr
        .wait_for("via socks5: closed by both sides");
    assert!(
        line.contains(&format!("-> localhost:{} (", origin.addr.port())),
        "{line}"
    );
    assert!(line.contains("down 63 bytes"), "{line}");
}

#[test]
fn curl_http_connect_tunnel_through_the_proxy() {
    let origin = http_origin();
    let proxy = proxy(&[]);
    let proxy_url = format!("http://{}", proxy.addr_str());
    let url = format!("http://{}/", origin.addr_str());
    let out = curl(&["-p", "-x", &proxy_url, &url]);
    assert_body(&out, "origin");
    proxy
        .proc
        .stderr
        .wait_for("via http connect: closed by both sides");
    proxy.proc.stderr.wait_for("relaying with splice(2)");
}

#[test]
fn proxy_user_right_and_wrong_password() {
    let origin = http_origin();
    let proxy = proxy(&["--auth", "alice:s3cr:et"]);
    let proxy_url = format!("http://{}", proxy.addr_str());
    let url = format!("http://{}/", origin.addr_str());
    let ok = curl(&[
        "-p",
        "-x",
        &proxy_url,
        "--proxy-user",
        "alice:s3cr:et",
        &url,
    ]);
    assert_body(&ok, "origin");
    let wrong = curl(&["-p", "-x", &proxy_url, "--proxy-user", "alice:nope", &url]);
    assert_curl_fails(&wrong, 56, "407");
    let none = curl(&["-p", "-x", &proxy_url, &url]);
    assert_curl_fails(&none, 56, "407");
    // SOCKS5 username/password, right and wrong.
    let socks = format!("socks5h://alice:s3cr%3Aet@{}", proxy.addr_str());
    assert_body(&curl(&["-x", &socks, &url]), "origin");
    let socks_wrong = format!("socks5h://alice:nope@{}", proxy.addr_str());
    assert_curl_fails(&curl(&["-x", &socks_wrong, &url]), 97, "rejected");
    proxy
        .proc
        .stderr
        .wait_for("socks5: wrong user name or password");
    proxy.proc.stderr.wait_for("(answered 407)");
    let log = proxy.proc.stderr.text();
    assert!(!log.contains("s3cr") && !log.contains("nope"), "{log}");
}

#[test]
fn a_407_asks_for_basic_credentials() {
    let proxy = proxy(&["--auth", "alice:pw"]);
    let mut s = raw(&proxy);
    s.write_all(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
        .expect("send");
    let reply = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(
        reply.starts_with("HTTP/1.1 407 Proxy Authentication Required\r\n"),
        "{reply}"
    );
    assert!(
        reply.contains("\r\nProxy-Authenticate: Basic realm=\"netcrab\"\r\n"),
        "{reply}"
    );
}

#[test]
fn denied_destinations_get_403_and_0x02_and_the_resolved_address_is_checked() {
    let origin = http_origin();
    let port = origin.addr.port().to_string();
    let proxy = proxy(&["--deny-dest", "127.0.0.0/8", "--deny-dest", "::1"]);
    let url = format!("http://{}/", origin.addr_str());
    let http = curl(&["-p", "-x", &format!("http://{}", proxy.addr_str()), &url]);
    assert_curl_fails(&http, 56, "403");
    // By name: localhost is not denied by name, but both its addresses are.
    let by_name = format!("http://localhost:{port}/");
    let socks = curl(&["--socks5-hostname", &proxy.addr_str(), &by_name]);
    assert_curl_fails(&socks, 97, "");
    let line = proxy
        .proc
        .stderr
        .wait_for(&format!("localhost:{port} via socks5"));
    assert!(
        line.contains("destination not allowed by --allow-dest/--deny-dest (answered 0x02)"),
        "{line}"
    );
    // The raw reply code.
    let (_, reply) = socks5_tunnel(&proxy, origin.addr);
    assert_eq!(reply, [5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn allow_dest_lets_only_its_destinations_through() {
    let origin = http_origin();
    let port = origin.addr.port();
    let proxy = proxy(&["--allow-dest", "localhost"]);
    let by_name = format!("http://localhost:{port}/");
    assert_body(
        &curl(&["--socks5-hostname", &proxy.addr_str(), &by_name]),
        "origin",
    );
    // The same server by address is not named by the rule.
    let by_addr = format!("http://127.0.0.1:{port}/");
    let out = curl(&["--socks5-hostname", &proxy.addr_str(), &by_addr]);
    assert_curl_fails(&out, 97, "");
    proxy.proc.stderr.wait_for("(answered 0x02)");
}

#[test]
fn refused_destinations_get_0x05_and_502() {
    let proxy = proxy(&[]);
    let closed: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (_, reply) = socks5_tunnel(&proxy, closed);
    assert_eq!(reply[..2], [5, 5]);
    let out = curl(&[
        "-p",
        "-x",
        &format!("http://{}", proxy.addr_str()),
        &format!("http://{closed}/"),
    ]);
    assert_curl_fails(&out, 56, "502");
    proxy
        .proc
        .stderr
        .wait_for("connection refused (answered 502)");
}

#[test]
fn malformed_requests_get_their_reply_and_the_proxy_keeps_serving() {
    let origin = http_origin();
    let proxy = proxy(&["--max-header", "1k"]);
    // Garbage first bytes (a TLS ClientHello's start): 400 at once.
    let mut s = raw(&proxy);
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("send");
    let reply = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(reply.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{reply}");
    // An oversized head: 431, without waiting for its end.
    let mut s = raw(&proxy);
    let mut big = b"CONNECT 127.0.0.1:9 HTTP/1.1\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 2000));
    s.write_all(&big).expect("send");
    let reply = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(
        reply.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{reply}"
    );
    // A method other than CONNECT: 405 naming the one served.
    let mut s = raw(&proxy);
    s.write_all(b"GET http://127.0.0.1/ HTTP/1.1\r\n\r\n")
        .expect("send");
    let reply = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert!(reply.starts_with("HTTP/1.1 405 "), "{reply}");
    assert!(reply.contains("Allow: CONNECT\r\n"), "{reply}");
    // SOCKS5 UDP ASSOCIATE and BIND: command not supported, then closed.
    for cmd in [2u8, 3] {
        let mut s = raw(&proxy);
        s.write_all(&[5, 1, 0]).expect("greeting");
        assert_eq!(read_n(&mut s, 2), [5, 0]);
        s.write_all(&[5, cmd, 0, 1, 127, 0, 0, 1, 0, 9])
            .expect("req");
        assert_eq!(read_to_end(&mut s), [5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
    // An unknown address type: 0x08.
    let mut s = raw(&proxy);
    s.write_all(&[5, 1, 0, 5, 1, 0, 9, 1]).expect("send");
    assert_eq!(read_n(&mut s, 2), [5, 0]);
    assert_eq!(read_to_end(&mut s), [5, 8, 0, 1, 0, 0, 0, 0, 0, 0]);
    // No acceptable method: 0xff.
    let mut s = raw(&proxy);
    s.write_all(&[5, 1, 0x80]).expect("send");
    assert_eq!(read_to_end(&mut s), [5, 0xff]);
    for needle in ["(answered 400)", "(answered 431)", "(answered 405)"] {
        proxy.proc.stderr.wait_for(needle);
    }
    proxy
        .proc
        .stderr
        .wait_for("udp associate is not supported (replied 0x07)");
    // Still serving.
    let out = curl(&[
        "--socks5-hostname",
        &proxy.addr_str(),
        &format!("http://{}/", origin.addr_str()),
    ]);
    assert_body(&out, "origin");
}

#[test]
fn a_slow_client_is_closed_at_the_handshake_timeout_without_blocking_others() {
    let origin = http_origin();
    let proxy = proxy(&["--handshake-timeout", "1s"]);
    let started = Instant::now();
    let mut slow = raw(&proxy);
    slow.write_all(b"CONNECT 127.0.0.1:").expect("send");
    let mut socks_slow = raw(&proxy);
    socks_slow.write_all(&[5, 1]).expect("send");
    // Others are served meanwhile.
    let out = curl(&[
        "--socks5-hostname",
        &proxy.addr_str(),
        &format!("http://{}/", origin.addr_str()),
    ]);
    assert_body(&out, "origin");
    assert_eq!(read_to_end(&mut slow), b"");
    assert_eq!(read_to_end(&mut socks_slow), b"");
    assert!(started.elapsed() >= Duration::from_secs(1));
    proxy
        .proc
        .stderr
        .wait_for_count("handshake timeout (1.0s): closed", 2);
}

#[test]
fn a_tunnel_is_byte_exact_with_half_close_and_early_data() {
    let echo = Server::start(&["--echo"]);
    let proxy = proxy(&[]);
    let (mut s, reply) = socks5_tunnel(&proxy, echo.addr);
    assert_eq!(reply[..4], [5, 0, 0, 1]);
    let data = payload(4 << 20, 9);
    let mut writer = s.try_clone().expect("clone");
    let sent = data.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&sent).expect("send");
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    let got = read_to_end(&mut s);
    sender.join().expect("sender");
    assert!(got == data, "{} of {} bytes", got.len(), data.len());
    proxy
        .proc
        .stderr
        .wait_for("via socks5: closed by both sides (up 4194304 bytes, down 4194304 bytes");

    // HTTP: bytes sent right behind the request head reach the destination.
    let mut s = raw(&proxy);
    let head = format!("CONNECT {} HTTP/1.1\r\n\r\nearly", echo.addr_str());
    s.write_all(head.as_bytes()).expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    let reply = String::from_utf8_lossy(&read_to_end(&mut s)).into_owned();
    assert_eq!(reply, "HTTP/1.1 200 Connection established\r\n\r\nearly");
}

#[test]
fn denied_clients_are_closed_at_once() {
    let proxy = proxy(&["--deny", "127.0.0.0/8"]);
    let mut s = raw(&proxy);
    let _ = s.write_all(&[5, 1, 0]);
    // Closed unanswered: an end of stream, or a reset for the unread bytes.
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
    proxy
        .proc
        .stderr
        .wait_for("client not allowed by --allow/--deny: closed");
}

#[test]
fn behind_a_proxy_protocol_header_the_carried_client_is_checked() {
    // Loopback may connect, but the client the header names may not.
    let proxy = proxy(&["--accept-proxy", "--deny", "192.0.2.0/24"]);
    let mut s = raw(&proxy);
    let _ = s.write_all(b"PROXY TCP4 192.0.2.7 127.0.0.1 4242 1080\r\n");
    let _ = s.write_all(&[5, 1, 0]);
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
    proxy.proc.stderr.wait_for("192.0.2.7:4242 (via 127.0.0.1:");
    proxy
        .proc
        .stderr
        .wait_for("client not allowed by --allow/--deny: closed");
    // A client the header says is allowed gets its SOCKS5 greeting answered.
    let mut s = raw(&proxy);
    s.write_all(b"PROXY TCP4 198.51.100.1 127.0.0.1 4242 1080\r\n")
        .unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(reply, [5, 0]);
}

#[test]
fn bad_flags_are_usage_errors() {
    for (args, needle) in [
        (
            &["proxy", "127.0.0.1:0", "--auth", "nocolon"][..],
            "--auth takes USER:PASSWORD",
        ),
        (
            &["proxy", "127.0.0.1:0", "--deny-dest", "10.0.0.0/40"],
            "--deny-dest",
        ),
        (
            &["proxy", "127.0.0.1:0", "--allow", "example.com"],
            "--allow",
        ),
        (&["proxy", "udp://127.0.0.1:0"], "udp"),
    ] {
        assert_exit(&run(args), 2, needle);
    }
}

#[test]
fn curl_socks4_and_socks4a_through_the_proxy() {
    let origin = http_origin();
    let proxy = proxy(&[]);
    let url = format!("http://localhost:{}/", origin.addr.port());
    assert_body(&curl(&["--socks4", &proxy.addr_str(), &url]), "origin");
    assert_body(&curl(&["--socks4a", &proxy.addr_str(), &url]), "origin");
    proxy
        .proc
        .stderr
        .wait_for_count("via socks4: closed by both sides", 2);
    // With --auth, SOCKS4 (which has no passwords) is refused.
    let locked = self::proxy(&["--auth", "a:b"]);
    let out = curl(&["--socks4a", &locked.addr_str(), &url]);
    assert_curl_fails(&out, 97, "");
    locked
        .proc
        .stderr
        .wait_for("socks4: no password authentication");
}

#[test]
fn an_https_proxy_over_tls() {
    let origin = http_origin();
    let proxy = proxy(&["--tls"]);
    let proxy_url = format!("https://{}", proxy.addr_str());
    let url = format!("http://{}/", origin.addr_str());
    let out = curl(&["--proxy-insecure", "-p", "-x", &proxy_url, &url]);
    assert_body(&out, "origin");
    // TLS to the client, TCP to the destination: the copy path.
    proxy
        .proc
        .stderr
        .wait_for("via http connect: closed by both sides");
    proxy
        .proc
        .stderr
        .wait_for("relaying with a user-space copy");
}

#[test]
fn idle_tunnels_close_and_sigterm_drains_open_ones() {
    let echo = Server::start(&["--echo"]);
    let proxy_idle = proxy(&["--idle-timeout", "300ms"]);
    // Idle: nothing moves, the tunnel is closed and says why.
    let (mut idle, reply) = socks5_tunnel(&proxy_idle, echo.addr);
    assert_eq!(reply[1], 0);
    assert_eq!(read_to_end(&mut idle), b"");
    proxy_idle
        .proc
        .stderr
        .wait_for("via socks5: idle timeout (nothing moved for 300ms)");
    // Drain: an open tunnel keeps working after SIGTERM until it ends.
    let mut proxy = proxy(&["--drain-timeout", "20s"]);
    let (mut open, _) = socks5_tunnel(&proxy, echo.addr);
    proxy.proc.signal(libc::SIGTERM);
    proxy.proc.stderr.wait_for("draining 1 open connection(s)");
    open.write_all(b"still here").expect("send");
    assert_eq!(read_n(&mut open, 10), b"still here");
    open.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut open), b"");
    assert_eq!(code(proxy.proc.wait()), 0);
}
