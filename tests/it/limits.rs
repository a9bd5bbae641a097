//! Flag ranges and the library's robustness against huge values: every
//! value an operator can type is served or refused with exit 2, never a
//! panic (exit 101).

use std::io::Write;
use std::net::Shutdown;

use crate::util::*;

/// Runs netcrab and asserts a usage error naming `flag` and its range.
#[track_caller]
fn out_of_range(args: &[&str], flag: &str, range: &str) {
    let out = run(args);
    assert_exit(&out, 2, &format!("{flag}: "));
    let err = stderr(&out);
    assert!(err.contains(&format!("is out of range ({range})")), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn connect_wait_1e20_is_a_usage_error() {
    out_of_range(
        &["connect", "127.0.0.1:1", "--wait", "1e20"],
        "--wait",
        "0 to 30d",
    );
}

#[test]
fn connect_retry_for_1e19_is_a_usage_error() {
    out_of_range(
        &["connect", "127.0.0.1:1", "--retry-for", "1e19"],
        "--retry-for",
        "0 to 30d",
    );
}

#[test]
fn wait_timeout_1e19_is_a_usage_error() {
    out_of_range(
        &["wait", "127.0.0.1:1", "--timeout", "1e19"],
        "--timeout",
        "0 to 30d",
    );
}

#[test]
fn wait_attempt_timeout_1e19_is_a_usage_error() {
    out_of_range(
        &["wait", "127.0.0.1:1", "--attempt-timeout", "1e19"],
        "--attempt-timeout",
        "0 to 30d",
    );
}

#[test]
fn relay_retry_for_1e19_is_a_usage_error() {
    out_of_range(
        &["relay", "127.0.0.1:0", "127.0.0.1:1", "--retry-for", "1e19"],
        "--retry-for",
        "0 to 30d",
    );
}

#[test]
fn bench_size_u64_max_is_a_usage_error() {
    out_of_range(
        &["bench", "--size", "18446744073709551615"],
        "--size",
        "1 to 1GiB",
    );
}

#[test]
fn keepalive_beyond_linux_cap_is_a_usage_error_for_every_command() {
    for args in [
        &["serve", "127.0.0.1:0"][..],
        &["connect", "127.0.0.1:1"],
        &["relay", "127.0.0.1:0", "127.0.0.1:1"],
    ] {
        let mut all = args.to_vec();
        all.extend(["--keepalive", "100000s"]);
        out_of_range(&all, "--keepalive", "1s to 32767s");
    }
}

#[test]
fn counts_have_ranges_too() {
    let out = run(&[
        "serve",
        "127.0.0.1:0",
        "--max-conns",
        "18446744073709551615",
    ]);
    assert_exit(&out, 2, "--max-conns");
    let out = run(&["bench", "-c", "0"]);
    assert_exit(&out, 2, "--connections");
}

/// The largest values accepted work: a relay with a 30-day retry budget
/// and keepalive at the kernel's cap serves (before, `--retry-for 1e19`
/// panicked inside every connection's task).
#[test]
fn the_largest_accepted_values_serve() {
    let upstream = Server::start(&["--echo"]);
    let relay = Server::start_exact(&[
        "relay",
        "127.0.0.1:0",
        &upstream.addr_str(),
        "--retry-for",
        "30d",
        "--keepalive",
        "32767s",
        "--idle-timeout",
        "30d",
    ]);
    let mut client = relay.connect();
    client.write_all(b"big values").expect("send");
    client.shutdown(Shutdown::Write).expect("shutdown");
    assert_eq!(read_to_end(&mut client), b"big values");
    let out = run(&[
        "connect",
        &upstream.addr_str(),
        "--send",
        "x",
        "--wait",
        "30d",
        "--retry-for",
        "30d",
        "--keepalive",
        "32767s",
    ]);
    assert_eq!(out.stdout, b"x", "{}", stderr(&out));
}
