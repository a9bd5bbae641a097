//! `netcrab scan` and `connect -z` on loopback: known ports listen, others
//! are refused, and the exit code says whether anything was open.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::util::*;

/// A loopback address of its own for each test (127.77.x.y), so a scan's
/// neighbouring ports are not another test's servers.
fn own_loopback(seed: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 77, seed, (std::process::id() % 250) as u8 + 1)
}

/// Whether nothing listens on `ip:port`.
fn refused(ip: Ipv4Addr, port: u16) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((ip, port)), Duration::from_secs(1)).is_err()
}

/// Listeners on `ip:P` and `ip:P+2` with `P+1` and `P+3` refused.
fn two_of_four(ip: Ipv4Addr) -> (TcpListener, TcpListener, u16) {
    for _ in 0..20 {
        let Ok(first) = TcpListener::bind((ip, 0)) else {
            continue;
        };
        let port = first.local_addr().expect("addr").port();
        if port > 65_530 {
            continue;
        }
        let Ok(third) = TcpListener::bind((ip, port + 2)) else {
            continue;
        };
        if refused(ip, port + 1) && refused(ip, port + 3) {
            return (first, third, port);
        }
    }
    panic!("no free run of four ports on {ip}");
}

#[test]
fn a_range_reports_open_ports_and_exits_0() {
    let ip = own_loopback(1);
    let (_a, _b, port) = two_of_four(ip);
    let range = format!("{port}-{}", port + 3);
    let out = run(&["scan", &ip.to_string(), &range]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(
        lines[0].starts_with("HOST") && lines[0].contains("STATE"),
        "{table}"
    );
    assert!(lines[1].contains(&format!("{ip}  {port}  open")), "{table}");
    assert!(lines[2].contains(&format!("{}  open", port + 2)), "{table}");
    assert!(
        stderr(&out).contains("4 port(s) on 1 host(s)")
            && stderr(&out).contains("2 open, 2 closed, 0 filtered"),
        "{}",
        stderr(&out)
    );

    // --all shows the closed ones too.
    let out = run(&["scan", &ip.to_string(), &range, "--all"]);
    let table = String::from_utf8_lossy(&out.stdout);
    let states: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(2).unwrap_or(""))
        .collect();
    assert_eq!(states, ["open", "closed", "open", "closed"], "{table}");
}

#[test]
fn json_lists_every_port_with_all_and_counts_them() {
    let ip = own_loopback(2);
    let (_a, _b, port) = two_of_four(ip);
    // A CIDR block of two addresses: ip and its neighbour (nothing there).
    let block = format!("{ip}/31");
    let ports = format!("{port},{}", port + 1);
    let out = run(&["scan", &block, &ports, "--json", "--all"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"schema\": \"netcrab.scan/v1\""), "{text}");
    assert!(text.contains("\"hosts\": 2"), "{text}");
    assert!(text.contains("\"probes\": 4"), "{text}");
    assert!(text.contains("\"open\": 1"), "{text}");
    assert!(text.contains("\"closed\": 3"), "{text}");
    assert!(text.contains("\"filtered\": 0"), "{text}");
    assert_eq!(text.matches("\"state\"").count(), 4, "{text}");
    assert!(
        text.contains(&format!(
            "\"addr\": \"{ip}\",\n      \"port\": {port},\n      \"state\": \"open\""
        )),
        "{text}"
    );
    // Without --all, only the open port.
    let out = run(&["scan", &block, &ports, "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("\"state\"").count(), 1, "{text}");
}

#[test]
fn nothing_open_exits_1() {
    let port = free_port();
    let out = run(&["scan", "127.0.0.1", &port.to_string()]);
    assert_exit(&out, 1, "no open port");
    let table = String::from_utf8_lossy(&out.stdout);
    assert_eq!(table.lines().count(), 1, "only the header: {table}");
}

#[test]
fn banner_shows_what_an_open_port_says_first() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let server = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(b"SSH-2.0-netcrab_test\r\n");
            // Hold the connection until the scanner closes it.
            let _ = std::io::Read::read(&mut conn, &mut [0u8; 16]);
        }
    });
    let out = run(&["scan", "127.0.0.1", &port.to_string(), "--banner"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.lines().next().unwrap_or("").ends_with("BANNER"),
        "{table}"
    );
    assert!(
        table.contains("open      SSH-2.0-netcrab_test\\r\\n"),
        "{table}"
    );
    server.join().expect("server thread");
}

#[test]
fn absurd_sizes_and_bad_lists_are_usage_errors() {
    assert_exit(
        &run(&["scan", "10.0.0.0/8", "80"]),
        2,
        "more than 65536 probes",
    );
    assert_exit(&run(&["scan", "127.0.0.1/31", "1-65535"]), 2, "probes");
    assert_exit(&run(&["scan", "127.0.0.1", "80-22"]), 2, "backwards");
    assert_exit(&run(&["scan", "127.0.0.1", "0"]), 2, "not a port");
    assert_exit(&run(&["scan", "127.0.0.1/40", "80"]), 2, "prefix length");
    assert_exit(
        &run(&["scan", "127.0.0.1", "80", "-c", "0"]),
        2,
        "--concurrency",
    );
}

#[test]
fn zero_io_connects_sends_nothing_and_exits_0() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let out = run(&["connect", "-z", &addr]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let (mut conn, _) = listener.accept().expect("the probe connected");
    conn.set_read_timeout(Some(PATIENCE)).expect("timeout");
    assert_eq!(read_to_end(&mut conn), b"", "zero I/O sends nothing");
}

#[test]
fn zero_io_on_a_closed_port_exits_4_and_udp_is_a_usage_error() {
    let addr = format!("127.0.0.1:{}", free_port());
    assert_exit(&run(&["connect", "-z", &addr]), 4, "connection refused");
    assert_exit(
        &run(&["connect", "-z", "-u", &addr]),
        2,
        "-z needs a connection",
    );
    assert_exit(&run(&["connect", "-z", &addr, "--send", "x"]), 2, "--send");
}
