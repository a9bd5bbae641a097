//! `wait http://…` against `python3 -m http.server` (200 and 404), and
//! `https://` against a TLS server answering with a canned response.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::*;

/// `python3 -m http.server` on 127.0.0.1, a free port, serving a temp
/// directory with `ready.txt` in it. Killed when dropped.
struct Python {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Python {
    fn start() -> Python {
        let dir = temp_dir();
        std::fs::write(dir.path().join("ready.txt"), "status: all systems go\n").expect("write");
        let mut child = Command::new("python3")
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1"])
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 (see scripts/install-test-deps.sh)");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("banner");
        // "Serving HTTP on 127.0.0.1 port 43210 (http://127.0.0.1:43210/) ..."
        let port = line
            .split(" port ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"));
        Python {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Python {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_200_is_ready_and_a_404_is_not() {
    let py = Python::start();
    let out = run(&["wait", &py.url("/ready.txt"), "--timeout", "10s"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));

    let missing = py.url("/missing");
    let out = run(&["wait", &missing, "--timeout", "1s"]);
    assert_exit(&out, 124, "status 404 (expected 200-399)");
    assert!(
        stderr(&out).contains(&format!("{missing} still down")),
        "{}",
        stderr(&out)
    );

    // Unless 404 is what is expected.
    let out = run(&[
        "wait",
        &missing,
        "--expect-status",
        "200,404",
        "--timeout",
        "5s",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

#[test]
fn expect_matches_the_body() {
    let py = Python::start();
    let url = py.url("/ready.txt");
    let out = run(&[
        "wait",
        &url,
        "--expect",
        "all systems go",
        "--timeout",
        "5s",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    let out = run(&["wait", &url, "--expect", "degraded", "--timeout", "1s"]);
    assert_exit(&out, 124, "the body has no \"degraded\"");
}

#[test]
fn a_url_nobody_serves_times_out_with_refused() {
    let url = format!("http://127.0.0.1:{}/", free_port());
    assert_exit(
        &run(&["wait", &url, "--timeout", "1s"]),
        124,
        "connection refused",
    );
}

#[test]
fn https_uses_the_tls_flags() {
    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    let server = Server::start_exact(&["serve", "--tls", "127.0.0.1:0", "--reply", reply]);
    let line = server
        .proc
        .stderr
        .wait_for("tls certificate sha256 fingerprint: ");
    let fp = line
        .rsplit("fingerprint: ")
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let url = format!("https://127.0.0.1:{}/", server.addr.port());
    let out = run(&[
        "wait",
        &url,
        "--pin-sha256",
        &fp,
        "--expect",
        "hello",
        "--timeout",
        "10s",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    // Unverified (self-signed, no pin): never ready.
    let out = run(&["wait", &url, "--timeout", "1s"]);
    assert_exit(&out, 124, "still down");
}

#[test]
fn urls_with_send_or_status_without_a_url_are_usage_errors() {
    assert_exit(
        &run(&["wait", "http://127.0.0.1:1/", "--send", "x"]),
        2,
        "--send does not apply to a url",
    );
    assert_exit(
        &run(&["wait", "127.0.0.1:1", "--expect-status", "200"]),
        2,
        "--expect-status applies only",
    );
    assert_exit(
        &run(&["wait", "http://127.0.0.1:1/", "--expect-status", "2000"]),
        2,
        "status code",
    );
    assert_exit(&run(&["wait", "http://u:p@127.0.0.1/"]), 2, "invalid url");
    assert_exit(
        &run(&["connect", "http://127.0.0.1:1/"]),
        2,
        "unknown scheme",
    );
}
