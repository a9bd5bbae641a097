//! The behaviours every stream transport shares, run over each of them:
//! the seed's exchange, echo of a multi-megabyte payload byte for byte,
//! half-close, retry against a server that starts late, and the connection
//! limit; and `relay` between every pair of them (either side any
//! transport).
//!
//! Each behaviour is a function taking a [`Transport`]; the `matrix!` macro
//! at the bottom makes one test per (transport, behaviour), named
//! `matrix::TRANSPORT::BEHAVIOUR`, so a failure names both and the tests run
//! in parallel; `relay_pairs!` makes one test per (listening transport,
//! upstream transport), named `matrix::relay::LISTEN_to_UPSTREAM`. A new
//! transport is one more [`Transport`] constant and one more entry in each
//! macro call.

use std::path::Path;

use crate::util::*;

/// How to serve and connect over one transport.
pub struct Transport {
    /// The transport's name, for messages.
    pub name: &'static str,
    /// A listen address for a new server (port 0, or a new socket path in
    /// the test's directory); the server prints the real one.
    pub any_addr: fn(&Path) -> String,
    /// An address known before the server starts, for both sides (the
    /// late-server test).
    pub fixed_addr: fn(&Path) -> String,
    /// Extra `serve` arguments.
    pub serve_args: &'static [&'static str],
    /// Extra `connect` arguments; given the server's stderr so far when the
    /// server runs already (a transport may need something it printed).
    pub connect_args: fn(Option<&Lines>) -> Vec<String>,
    /// The client's connect completes only once the server accepts (a
    /// handshake runs first), so it cannot send into the backlog.
    pub handshake: bool,
}

/// Plain TCP on 127.0.0.1.
pub const TCP: Transport = Transport {
    name: "tcp",
    any_addr: |_| "127.0.0.1:0".into(),
    fixed_addr: |_| format!("127.0.0.1:{}", free_port()),
    serve_args: &[],
    connect_args: |_| Vec::new(),
    handshake: false,
};

/// A Unix socket file in the test's directory.
pub const UNIX: Transport = Transport {
    name: "unix",
    any_addr: |dir| format!("unix://{}", dir.join("any.sock").display()),
    fixed_addr: |dir| format!("unix://{}", dir.join("fixed.sock").display()),
    serve_args: &[],
    connect_args: |_| Vec::new(),
    handshake: false,
};

/// TLS on 127.0.0.1 with the server's self-signed certificate, which the
/// client pins by the fingerprint the server printed (or, when the server
/// has not started yet, accepts with `--insecure`).
pub const TLS: Transport = Transport {
    name: "tls",
    any_addr: |_| "tls://127.0.0.1:0".into(),
    fixed_addr: |_| format!("tls://127.0.0.1:{}", free_port()),
    serve_args: &[],
    connect_args: |server| match server {
        Some(stderr) => pin_printed_by(stderr),
        None => vec!["--insecure".into()],
    },
    handshake: true,
};

/// The server's `--pin-sha256 FINGERPRINT`, from the fingerprint line it
/// printed.
fn pin_printed_by(stderr: &Lines) -> Vec<String> {
    let line = stderr.wait_for("fingerprint: ");
    let fp = line.rsplit("fingerprint: ").next().unwrap_or_default();
    vec!["--pin-sha256".into(), fp.trim().to_owned()]
}

/// TLS over a Unix socket file in the test's directory, pinned as for
/// [`TLS`] (a Unix socket has no host name: the client's server name
/// defaults to `localhost`, which the self-signed certificate holds).
pub const TLS_UNIX: Transport = Transport {
    name: "tls+unix",
    any_addr: |dir| format!("tls+unix://{}", dir.join("any.sock").display()),
    fixed_addr: |dir| format!("tls+unix://{}", dir.join("fixed.sock").display()),
    serve_args: &[],
    connect_args: |server| match server {
        Some(stderr) => pin_printed_by(stderr),
        None => vec!["--insecure".into()],
    },
    handshake: true,
};

/// QUIC on 127.0.0.1, pinned as for [`TLS`]. Unlike TLS, a client's
/// connection completes without the server's accept loop (QUIC's own
/// handshake runs in the endpoint), so it can send while the server is
/// full. With no server yet, nothing answers a QUIC Initial (UDP has no
/// refusal), so the client's handshake timeout is short.
pub const QUIC: Transport = Transport {
    name: "quic",
    any_addr: |_| "quic://127.0.0.1:0".into(),
    fixed_addr: |_| format!("quic://127.0.0.1:{}", free_udp_port()),
    serve_args: &[],
    connect_args: |server| match server {
        Some(stderr) => pin_printed_by(stderr),
        None => vec![
            "--insecure".into(),
            "--handshake-timeout".into(),
            "300ms".into(),
        ],
    },
    handshake: false,
};

/// A UDP port free now on 127.0.0.1.
fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

/// One test's setup: a directory for socket files and helpers to start
/// servers and clients over the transport.
struct Case<'a> {
    t: &'a Transport,
    dir: tempfile::TempDir,
}

impl<'a> Case<'a> {
    fn new(t: &'a Transport) -> Case<'a> {
        Case { t, dir: temp_dir() }
    }

    /// Starts `serve` on a fresh address with `args`.
    fn serve(&self, args: &[&str]) -> Listening {
        self.serve_at(&(self.t.any_addr)(self.dir.path()), args)
    }

    fn serve_at(&self, addr: &str, args: &[&str]) -> Listening {
        let mut all = vec!["serve", addr];
        all.extend_from_slice(self.t.serve_args);
        all.extend_from_slice(args);
        Listening::start(&all)
    }

    /// The arguments of `connect` to `addr`, then `args`.
    fn connect_args(&self, addr: &str, server: Option<&Listening>, args: &[&str]) -> Vec<String> {
        let mut all = vec!["connect".to_owned(), addr.to_owned()];
        all.extend((self.t.connect_args)(server.map(|s| &s.proc.stderr)));
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }

    /// Runs `connect` to `server` with `args` and `input` to completion.
    fn connect(&self, server: &Listening, args: &[&str], input: Vec<u8>) -> std::process::Output {
        let all = self.connect_args(&server.addr, Some(server), args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_with_input(&all, input)
    }

    /// Starts an interactive `connect` to `server`.
    fn client(&self, server: &Listening, args: &[&str]) -> Client {
        Client::start(&self.connect_args(&server.addr, Some(server), args))
    }
}

fn seed_exchange(t: &Transport) {
    let case = Case::new(t);
    let server = case.serve(&[]);
    let out = case.connect(&server, &["--send", "hello, world"], Vec::new());
    assert_eq!(code(out.status), 0, "{}: {}", t.name, stderr(&out));
    assert_eq!(out.stdout, b"hello, world", "{}", t.name);
    server.proc.stderr.wait_for("recv hello, world");
}

fn echo_multi_megabyte_payload(t: &Transport) {
    let case = Case::new(t);
    let server = case.serve(&["--echo"]);
    let data = payload(4 << 20, 42);
    let out = case.connect(&server, &[], data.clone());
    assert_eq!(code(out.status), 0, "{}: {}", t.name, stderr(&out));
    assert_eq!(out.stdout.len(), data.len(), "{}", t.name);
    assert!(out.stdout == data, "{}: echoed bytes differ", t.name);
}

fn half_close(t: &Transport) {
    // The last line has no newline: the server answers it only once it
    // reads EOF, which the client's half-close sends; the client must still
    // be reading to print that answer.
    let case = Case::new(t);
    let server = case.serve(&["--lines", "--reply", "done"]);
    let out = case.connect(&server, &[], b"first\nsecond".to_vec());
    assert_eq!(code(out.status), 0, "{}: {}", t.name, stderr(&out));
    assert_eq!(out.stdout, b"done\ndone\n", "{}", t.name);
}

fn retry_against_a_late_server(t: &Transport) {
    let case = Case::new(t);
    let addr = (t.fixed_addr)(case.dir.path());
    let args = case.connect_args(
        &addr,
        None,
        &[
            "-v",
            "--retry-for",
            "60s",
            "--retry-max-delay",
            "200ms",
            "--send",
            "hello, world",
        ],
    );
    let mut client = Client::start(&args);
    client.close_stdin();
    // Start the server only once an attempt has failed.
    client.proc.stderr.wait_for("attempt 1 failed");
    let _server = case.serve_at(&addr, &[]);
    assert_eq!(
        client.wait(),
        0,
        "{}: {}",
        t.name,
        client.proc.stderr.text()
    );
    assert_eq!(client.stdout.bytes(), b"hello, world", "{}", t.name);
}

fn connection_limit(t: &Transport) {
    let case = Case::new(t);
    let server = case.serve(&["-v", "--echo", "--max-conns", "1"]);
    let mut first = case.client(&server, &[]);
    first.send(b"one\n");
    assert_eq!(first.stdout.wait_for_len(4), b"one\n", "{}", t.name);

    // The second client connects (into the backlog) and sends, but is not
    // served while the first one holds the only slot. (Where a handshake
    // comes first, it cannot send before the server accepts: it waits in
    // its connect.)
    let mut second = case.client(&server, &["-v", "--send", "two"]);
    second.close_stdin();
    if t.handshake {
        second.proc.stderr.wait_for("(attempt 1)");
    } else {
        second.proc.stderr.wait_for("done sending");
    }
    server.proc.stderr.wait_for(": connected");
    assert_eq!(
        server.proc.stderr.count(": connected"),
        1,
        "{}: {}",
        t.name,
        server.proc.stderr.text()
    );
    assert!(
        second.proc.child.try_wait().expect("try_wait").is_none(),
        "{}: second client finished while the first held the only slot",
        t.name
    );

    first.close_stdin();
    assert_eq!(first.wait(), 0, "{}", t.name);
    assert_eq!(second.wait(), 0, "{}", t.name);
    assert_eq!(second.stdout.bytes(), b"two", "{}", t.name);
    server.proc.stderr.wait_for_count(": connected", 2);
}

/// `relay` listening on `listen`, forwarding to an echo server on
/// `upstream`: a client's payload comes back byte for byte, the client's
/// half-close passes through, and the relay counts both directions.
fn relay_between(listen: &Transport, upstream: &Transport) {
    let name = format!("{} to {}", listen.name, upstream.name);
    let (up_dir, relay_dir) = (temp_dir(), temp_dir());
    let mut up_args = vec!["serve".to_owned(), (upstream.any_addr)(up_dir.path())];
    up_args.extend(upstream.serve_args.iter().map(|a| a.to_string()));
    up_args.push("--echo".into());
    let up = Listening::start(&up_args.iter().map(String::as_str).collect::<Vec<_>>());

    // The upstream's TLS flags are connect's, named --upstream-*.
    let upstream_flags = (upstream.connect_args)(Some(&up.proc.stderr))
        .into_iter()
        .map(|a| match a.strip_prefix("--") {
            Some(flag) => format!("--upstream-{flag}"),
            None => a,
        });
    let mut relay_args = vec![
        "-v".to_owned(),
        "relay".to_owned(),
        (listen.any_addr)(relay_dir.path()),
        up.addr.clone(),
    ];
    relay_args.extend(upstream_flags);
    relay_args.extend(listen.serve_args.iter().map(|a| a.to_string()));
    let relay = Listening::start(&relay_args.iter().map(String::as_str).collect::<Vec<_>>());

    let data = payload(1 << 20, 7);
    let mut client = vec!["connect".to_owned(), relay.addr.clone()];
    client.extend((listen.connect_args)(Some(&relay.proc.stderr)));
    let out = run_with_input(
        &client.iter().map(String::as_str).collect::<Vec<_>>(),
        data.clone(),
    );
    assert_eq!(code(out.status), 0, "{name}: {}", stderr(&out));
    assert!(out.stdout == data, "{name}: echoed bytes differ");
    let line = relay.proc.stderr.wait_for("closed by both sides");
    assert!(
        line.contains("up 1048576 bytes, down 1048576 bytes"),
        "{name}: {line}"
    );
}

/// WebSocket over TCP on 127.0.0.1, with a path.
pub const WS: Transport = Transport {
    name: "ws",
    any_addr: |_| "ws://127.0.0.1:0".into(),
    fixed_addr: |_| format!("ws://127.0.0.1:{}/late", free_port()),
    serve_args: &[],
    connect_args: |_| Vec::new(),
    handshake: true,
};

/// WebSocket over TLS on 127.0.0.1: TLS as [`TLS`] does it.
pub const WSS: Transport = Transport {
    name: "wss",
    any_addr: |_| "wss://127.0.0.1:0".into(),
    fixed_addr: |_| format!("wss://127.0.0.1:{}/late?q=1", free_port()),
    serve_args: &[],
    connect_args: |server| match server {
        Some(stderr) => pin_printed_by(stderr),
        None => vec!["--insecure".into()],
    },
    handshake: true,
};

/// One module per transport, one test per behaviour in each.
macro_rules! matrix {
    ($($module:ident => $transport:expr),* $(,)?) => {$(
        mod $module {
            #[test]
            fn seed_exchange() {
                super::seed_exchange(&$transport)
            }
            #[test]
            fn echo_multi_megabyte_payload() {
                super::echo_multi_megabyte_payload(&$transport)
            }
            #[test]
            fn half_close() {
                super::half_close(&$transport)
            }
            #[test]
            fn retry_against_a_late_server() {
                super::retry_against_a_late_server(&$transport)
            }
            #[test]
            fn connection_limit() {
                super::connection_limit(&$transport)
            }
        }
    )*};
}

matrix!(
    tcp => super::TCP,
    unix => super::UNIX,
    tls => super::TLS,
    tls_unix => super::TLS_UNIX,
    quic => super::QUIC,
    ws => super::WS,
    wss => super::WSS,
);

/// One test per (listening transport, upstream transport) in `relay`.
macro_rules! relay_pairs {
    ($($name:ident: $listen:expr => $upstream:expr),* $(,)?) => {
        mod relay {$(
            #[test]
            fn $name() {
                super::relay_between(&$listen, &$upstream)
            }
        )*}
    };
}

relay_pairs!(
    tcp_to_tcp: super::TCP => super::TCP,
    tcp_to_unix: super::TCP => super::UNIX,
    tcp_to_tls: super::TCP => super::TLS,
    tcp_to_tls_unix: super::TCP => super::TLS_UNIX,
    unix_to_tcp: super::UNIX => super::TCP,
    unix_to_unix: super::UNIX => super::UNIX,
    unix_to_tls: super::UNIX => super::TLS,
    unix_to_tls_unix: super::UNIX => super::TLS_UNIX,
    tls_to_tcp: super::TLS => super::TCP,
    tls_to_unix: super::TLS => super::UNIX,
    tls_to_tls: super::TLS => super::TLS,
    tls_to_tls_unix: super::TLS => super::TLS_UNIX,
    tls_unix_to_tcp: super::TLS_UNIX => super::TCP,
    tls_unix_to_unix: super::TLS_UNIX => super::UNIX,
    tls_unix_to_tls: super::TLS_UNIX => super::TLS,
    tls_unix_to_tls_unix: super::TLS_UNIX => super::TLS_UNIX,
    tcp_to_quic: super::TCP => super::QUIC,
    quic_to_tcp: super::QUIC => super::TCP,
    quic_to_quic: super::QUIC => super::QUIC,
    tls_to_quic: super::TLS => super::QUIC,
    quic_to_unix: super::QUIC => super::UNIX,
    tcp_to_ws: super::TCP => super::WS,
    tcp_to_wss: super::TCP => super::WSS,
    ws_to_tcp: super::WS => super::TCP,
    wss_to_tcp: super::WSS => super::TCP,
    ws_to_wss: super::WS => super::WSS,
    wss_to_ws: super::WSS => super::WS,
    ws_to_ws: super::WS => super::WS,
    tls_to_wss: super::TLS => super::WSS,
);
