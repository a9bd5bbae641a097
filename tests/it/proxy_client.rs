//! The proxy client (`--proxy`) against real, independent proxies:
//! microsocks (SOCKS5, with and without authentication) and tinyproxy
//! (HTTP CONNECT), alone and chained, with their refusals mapped to the
//! documented exit codes. The proxies are Debian packages installed by
//! scripts/install-test-deps.sh; each runs in the foreground on a free
//! loopback port, with its configuration in a temporary directory, and is
//! killed on drop.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Lines, PATIENCE, Server, assert_exit, free_port, netcrab, run, temp_dir};

/// An independent daemon (a proxy, HAProxy) listening on 127.0.0.1:`port`,
/// killed on drop.
pub struct Daemon {
    child: Child,
    /// Where it listens.
    pub port: u16,
    /// What it printed on stdout (HAProxy's log, with `log stdout`).
    pub stdout: Lines,
    _dir: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Starts the command `make(port)` builds on a free port and waits
    /// until the port accepts connections; if the daemon exits first (the
    /// port was taken in between), tries another port, five times at most.
    pub fn start(program: &str, mut make: impl FnMut(u16, &std::path::Path) -> Command) -> Daemon {
        assert!(
            which(program),
            "{program} is not installed: run scripts/install-test-deps.sh"
        );
        for _ in 0..5 {
            let dir = temp_dir();
            let port = free_port();
            let mut child = make(port, dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {program}: {e}"));
            let stdout = Lines::collect(child.stdout.take().expect("stdout"));
            let deadline = Instant::now() + PATIENCE;
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Daemon {
                        child,
                        port,
                        stdout,
                        _dir: Some(dir),
                    };
                }
                if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("{program} did not start listening");
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `program` is on the PATH (or in /usr/sbin, where haproxy is).
pub fn which(program: &str) -> bool {
    program_path(program).is_some()
}

/// The path of `program`, searching the PATH and /usr/sbin.
pub fn program_path(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin"])
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// microsocks on a free port; with `auth`, user and password required.
fn microsocks(auth: Option<(&str, &str)>) -> Daemon {
    Daemon::start("microsocks", |port, _| {
        let mut cmd = Command::new("microsocks");
        cmd.args(["-i", "127.0.0.1", "-p", &port.to_string()]);
        if let Some((user, pass)) = auth {
            cmd.args(["-u", user, "-P", pass]);
        }
        cmd
    })
}

/// tinyproxy in the foreground on a free port, allowing CONNECT only to
/// `ports`.
fn tinyproxy(ports: &[u16]) -> Daemon {
    let ports = ports.to_vec();
    Daemon::start("tinyproxy", move |port, dir| {
        let mut conf =
            format!("Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 20\nLogLevel Info\n");
        for p in &ports {
            conf.push_str(&format!("ConnectPort {p}\n"));
        }
        let path = dir.join("tinyproxy.conf");
        std::fs::write(&path, conf).expect("write tinyproxy.conf");
        let mut cmd = Command::new("tinyproxy");
        cmd.arg("-d").arg("-c").arg(path);
        cmd
    })
}

/// `connect --send hi` through `proxies` to `target`, keeping the write
/// side open a moment (microsocks and tinyproxy close both directions at
/// the first end of stream, before the reply could come back).
fn connect_through(proxies: &[&str], target: &str) -> std::process::Output {
    let mut args = vec![
        "connect",
        "--no-shutdown",
        "--wait",
        "500ms",
        "--send",
        "hi",
    ];
    for p in proxies {
        args.extend(["--proxy", p]);
    }
    args.push(target);
    run(&args)
}

#[track_caller]
fn assert_hello(out: &std::process::Output) {
    assert_exit(out, 0, "");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello, world");
}

#[test]
fn socks5_through_microsocks() {
    let server = Server::start(&[]);
    let socks = microsocks(None);
    let out = connect_through(&[&format!("socks5://{}", socks.addr())], &server.addr_str());
    assert_hello(&out);
    // socks5h: the proxy resolves the name.
    let target = format!("localhost:{}", server.addr.port());
    let out = connect_through(&[&format!("socks5h://{}", socks.addr())], &target);
    assert_hello(&out);
}

#[test]
fn socks5_with_authentication_and_255_byte_credentials() {
    let server = Server::start(&[]);
    let user = "u".repeat(255);
    let pass = "p".repeat(255);
    let socks = microsocks(Some((&user, &pass)));
    let url = format!("socks5://{user}:{pass}@{}", socks.addr());
    assert_hello(&connect_through(&[&url], &server.addr_str()));

    // A wrong password: refused by the proxy (exit 12), the proxy named
    // without its credentials.
    let wrong = format!("socks5://{user}:wrong-secret@{}", socks.addr());
    let out = connect_through(&[&wrong], &server.addr_str());
    let name = format!("through proxy socks5://{}", socks.addr());
    assert_exit(&out, 12, &name);
    assert_exit(&out, 12, "wrong user name or password");
    let err = crate::util::stderr(&out);
    assert!(
        !err.contains("wrong-secret") && !err.contains(&user),
        "{err}"
    );
    // Not in the debug logs either, nor when the URL comes from the
    // environment.
    let out = netcrab()
        .env("ALL_PROXY", &wrong)
        .args(["-vv", "connect", "--send", "hi", &server.addr_str()])
        .stdin(Stdio::null())
        .output()
        .expect("run netcrab");
    let err = crate::util::stderr(&out);
    assert_eq!(crate::util::code(out.status), 12, "{err}");
    assert!(err.contains("proxy socks5://127.0.0.1:"), "{err}");
    assert!(
        !err.contains("wrong-secret") && !err.contains(&user),
        "{err}"
    );

    // No credentials at all.
    let out = connect_through(&[&format!("socks5://{}", socks.addr())], &server.addr_str());
    assert_exit(&out, 12, "requires authentication");

    // 256 bytes cannot be sent: a usage error before any connection.
    let long = format!("socks5://{user}u:p@{}", socks.addr());
    let out = connect_through(&[&long], &server.addr_str());
    assert_exit(&out, 2, "1 to 255 bytes");
}

#[test]
fn the_first_proxy_is_reached_with_happy_eyeballs_and_retries() {
    let server = Server::start(&[]);
    // microsocks listens on 127.0.0.1 only: `localhost` is ::1 and
    // 127.0.0.1, and the attempt on ::1 is refused.
    let socks = microsocks(None);
    let url = format!("socks5://localhost:{}", socks.port);
    assert_hello(&connect_through(&[&url], &server.addr_str()));
    // A proxy that is not there: retried like a target.
    let dead = format!("socks5://127.0.0.1:{}", free_port());
    let out = run(&[
        "connect",
        "--retry",
        "2",
        "--retry-delay",
        "10ms",
        "--send",
        "hi",
        "--proxy",
        &dead,
        &server.addr_str(),
    ]);
    assert_exit(
        &out,
        4,
        &format!("connect to proxy {dead}: connection refused (after 3 attempts"),
    );
}

#[test]
fn a_socks_refusal_is_exit_11_not_connection_refused() {
    let socks = microsocks(None);
    let closed = format!("127.0.0.1:{}", free_port());
    let out = connect_through(&[&format!("socks5://{}", socks.addr())], &closed);
    assert_exit(
        &out,
        11,
        "connection refused by the target (socks5 reply 5)",
    );
    assert_exit(
        &out,
        11,
        &format!("through proxy socks5://{}", socks.addr()),
    );
}

#[test]
fn http_connect_through_tinyproxy_and_its_refusal() {
    let server = Server::start(&[]);
    let http = tinyproxy(&[server.addr.port()]);
    let url = format!("http://{}", http.addr());
    assert_hello(&connect_through(&[&url], &server.addr_str()));
    // A port tinyproxy does not allow CONNECT to: 403, exit 12.
    let other = format!("127.0.0.1:{}", free_port());
    let out = connect_through(&[&url], &other);
    assert_exit(&out, 12, "access denied (http 403");
    assert_exit(&out, 12, &format!("through proxy {url}"));
}

#[test]
fn a_chain_of_two_proxies() {
    let server = Server::start(&[]);
    let socks = microsocks(Some(("alice", "s3cret")));
    // tinyproxy first; it must allow CONNECT to the SOCKS proxy's port.
    let http = tinyproxy(&[socks.port]);
    let first = format!("http://{}", http.addr());
    let second = format!("socks5://alice:s3cret@{}", socks.addr());
    assert_hello(&connect_through(&[&first, &second], &server.addr_str()));
    // Each hop's refusal names its own proxy: tinyproxy will not reach
    // microsocks in the other order.
    let out = connect_through(&[&second, &first], &server.addr_str());
    assert_exit(&out, 12, &format!("through proxy {first}"));
}

#[test]
fn https_proxy_tls_to_the_proxy_then_connect() {
    let server = Server::start(&[]);
    let http = tinyproxy(&[server.addr.port()]);
    // netcrab relay terminates TLS in front of tinyproxy: an HTTPS proxy.
    let tls_front = Server::start_exact(&["relay", "tls://127.0.0.1:0", &http.addr()]);
    let url = format!("https://{}", tls_front.addr_str());
    let out = run(&[
        "connect",
        "--no-shutdown",
        "--wait",
        "500ms",
        "--send",
        "hi",
        "--proxy",
        &url,
        "--proxy-insecure",
        &server.addr_str(),
    ]);
    assert_hello(&out);
    // Verified by default: the relay's self-signed certificate is not trusted.
    let out = connect_through(&[&url], &server.addr_str());
    assert_exit(&out, 8, &tls_front.addr_str());
}

#[test]
fn the_proxy_comes_from_the_environment_unless_no_proxy() {
    let server = Server::start(&[]);
    let socks = microsocks(None);
    let dead = format!("socks5://127.0.0.1:{}", free_port());
    let connect = |env: &[(&str, &str)], extra: &[&str]| {
        let mut cmd = netcrab();
        cmd.env_remove("NETCRAB_PROXY")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args([
            "connect",
            "--no-shutdown",
            "--wait",
            "500ms",
            "--send",
            "hi",
        ])
        .args(extra)
        .arg(server.addr_str())
        .stdin(Stdio::null())
        .output()
        .expect("run netcrab")
    };
    let good = format!("socks5://{}", socks.addr());
    assert_hello(&connect(&[("ALL_PROXY", &good)], &[]));
    assert_hello(&connect(&[("all_proxy", &good)], &[]));
    // NETCRAB_PROXY wins over ALL_PROXY.
    assert_hello(&connect(
        &[("NETCRAB_PROXY", &good), ("ALL_PROXY", &dead)],
        &[],
    ));
    // The dead proxy is used, and named, when set...
    let out = connect(&[("ALL_PROXY", &dead)], &[]);
    assert_exit(
        &out,
        4,
        &format!("connect to proxy {dead}: connection refused"),
    );
    // ... and ignored with --no-proxy.
    assert_hello(&connect(&[("ALL_PROXY", &dead)], &["--no-proxy"]));
}

#[test]
fn relay_and_wait_reach_their_upstream_through_a_proxy() {
    let server = Server::start(&[]);
    let socks = microsocks(None);
    let url = format!("socks5://{}", socks.addr());
    let relay = Server::start_exact(&["relay", "127.0.0.1:0", &server.addr_str(), "--proxy", &url]);
    assert_hello(&connect_through(&[], &relay.addr_str()));
    let out = run(&[
        "wait",
        "--timeout",
        "10s",
        "--proxy",
        &url,
        &server.addr_str(),
    ]);
    assert_exit(&out, 0, "");
    // wait through a proxy to a closed port: not ready, with the proxy's reason.
    let closed = format!("127.0.0.1:{}", free_port());
    let out = run(&["wait", "--timeout", "300ms", "--proxy", &url, &closed]);
    assert_exit(&out, 124, "socks5 reply 5");
}

#[test]
fn proxy_replies_are_bounded_in_time_and_size() {
    // A "proxy" that reads and never answers: the handshake times out at
    // --connect-timeout.
    let silent = Server::start(&["--discard"]);
    let out = run(&[
        "connect",
        "--connect-timeout",
        "300ms",
        "--send",
        "hi",
        "--proxy",
        &format!("http://{}", silent.addr_str()),
        "127.0.0.1:9",
    ]);
    assert_exit(&out, 5, "the proxy did not answer within 300ms");
    // One that answers CONNECT with 20 KB and no end of head: refused
    // after 16 KiB, not buffered on.
    let long = "x".repeat(20_000);
    let chatty = Server::start(&["--reply", &long]);
    let out = run(&[
        "connect",
        "--send",
        "hi",
        "--proxy",
        &format!("http://{}", chatty.addr_str()),
        "127.0.0.1:9",
    ]);
    assert_exit(&out, 10, "answer to CONNECT is longer than 16 KiB");
    // And a SOCKS5 "proxy" that is not one.
    let out = run(&[
        "connect",
        "--send",
        "hi",
        "--proxy",
        &format!("socks5://{}", chatty.addr_str()),
        "127.0.0.1:9",
    ]);
    assert_exit(&out, 10, "not a socks5 proxy");
}
