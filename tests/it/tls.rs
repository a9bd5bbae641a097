//! TLS for `serve` and `connect`: self-signed servers and pinning, CA
//! verification and its failures, mutual TLS, half-close, bulk echo, retry,
//! handshake timeouts, and interoperability with openssl's s_client and
//! s_server (Debian package `openssl`, installed by
//! scripts/install-test-deps.sh).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::util::*;

/// A directory for one test's PEM files, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netcrab-tls-test-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// The path of `name` in the directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `contents` to `name` in the directory; returns the path.
    pub(crate) fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path.to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test certificate authority.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and key written to files.
pub(crate) struct Pem {
    pub(crate) cert: String,
    pub(crate) key: String,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("ca key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("ca cert"),
        }
    }

    /// Writes the CA certificate to `dir`; returns its path.
    fn write(&self, dir: &TempDir, name: &str) -> String {
        dir.write(name, &self.issuer.pem())
    }

    /// Issues a leaf certificate for `names` and writes it and its key.
    pub(crate) fn issue(&self, dir: &TempDir, name: &str, names: &[&str], usage: Usage) -> Pem {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Pem {
            cert: dir.write(&format!("{name}.crt"), &cert.pem()),
            key: dir.write(&format!("{name}.key"), &key.serialize_pem()),
        }
    }

    /// Issues a server certificate that expired in 2001.
    fn issue_expired(&self, dir: &TempDir, name: &str, names: &[&str]) -> Pem {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Pem {
            cert: dir.write(&format!("{name}.crt"), &cert.pem()),
            key: dir.write(&format!("{name}.key"), &key.serialize_pem()),
        }
    }
}

#[derive(Clone, Copy)]
pub(crate) enum Usage {
    Server,
    Client,
}

/// A CA, its certificate file, and a server certificate for the loopback
/// names signed by it.
pub(crate) struct Pki {
    pub(crate) dir: TempDir,
    pub(crate) ca: Ca,
    pub(crate) ca_file: String,
    pub(crate) server: Pem,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let dir = TempDir::new();
        let ca = Ca::new("netcrab test ca");
        let ca_file = ca.write(&dir, "ca.pem");
        let server = ca.issue(&dir, "server", &["localhost", "127.0.0.1"], Usage::Server);
        Pki {
            dir,
            ca,
            ca_file,
            server,
        }
    }
}

/// Starts `netcrab serve --tls 127.0.0.1:0 ARGS` and returns it with the
/// fingerprint it printed.
fn tls_server(args: &[&str]) -> (Server, String) {
    let mut all = vec!["serve", "--tls", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let server = Server::start_exact(&all);
    let line = server
        .proc
        .stderr
        .wait_for("tls certificate sha256 fingerprint: ");
    let fp = line
        .rsplit("fingerprint: ")
        .next()
        .expect("fingerprint")
        .trim()
        .to_owned();
    (server, fp)
}

/// Runs `netcrab connect --tls ADDR ARGS`.
fn tls_connect(server: &Server, args: &[&str]) -> std::process::Output {
    let addr = server.addr_str();
    let mut all = vec!["connect", "--tls", &addr];
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn seed_exchange_with_the_printed_fingerprint_pinned() {
    let (server, fp) = tls_server(&[]);
    server
        .proc
        .stderr
        .wait_for("self-signed certificate for 127.0.0.1, localhost, ::1");
    let out = tls_connect(&server, &["--pin-sha256", &fp, "--send", "hello, world"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    server.proc.stderr.wait_for("recv hello, world");
    // Plain lowercase hex works as well as openssl's colon-separated form.
    let plain = fp.replace(':', "").to_lowercase();
    let out = tls_connect(&server, &["--pin-sha256", &plain, "--send", "again"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
}

#[test]
fn unverifiable_server_fails_with_exit_8_and_says_how_to_proceed() {
    let (server, fp) = tls_server(&[]);
    let out = tls_connect(&server, &["--send", "x"]);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("unknown issuer"), "{err}");
    assert!(
        err.contains("--ca") && err.contains("--pin-sha256"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // The server logs why, and keeps serving.
    server
        .proc
        .stderr
        .wait_for("the client rejected our certificate");
    let out = tls_connect(&server, &["--pin-sha256", &fp, "--send", "x"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

#[test]
fn a_wrong_pin_is_rejected() {
    let (server, fp) = tls_server(&[]);
    let mut wrong = fp.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).expect("hex");
    let out = tls_connect(&server, &["--pin-sha256", &wrong, "--send", "x"]);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("fingerprint mismatch"), "{err}");
    assert!(
        err.contains(&fp),
        "the message shows the real fingerprint: {err}"
    );
}

#[test]
fn a_malformed_pin_is_a_usage_error() {
    let out = run(&["connect", "tls://127.0.0.1:1", "--pin-sha256", "abc"]);
    assert_exit(&out, 2, "64 hex digits");
}

#[test]
fn ca_signed_server_verifies_by_ip_and_by_name() {
    let pki = Pki::new();
    let (server, _) = tls_server(&["--cert", &pki.server.cert, "--key", &pki.server.key]);
    assert_eq!(server.proc.stderr.count("self-signed"), 0);
    let out = tls_connect(&server, &["--ca", &pki.ca_file, "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    let by_name = format!("tls://localhost:{}", server.addr.port());
    let out = run(&["connect", &by_name, "--ca", &pki.ca_file, "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
}

#[test]
fn name_mismatch_is_explained_and_servername_fixes_it() {
    let pki = Pki::new();
    let other = pki
        .ca
        .issue(&pki.dir, "api", &["api.internal"], Usage::Server);
    let (server, _) = tls_server(&["--cert", &other.cert, "--key", &other.key]);
    let out = tls_connect(&server, &["--ca", &pki.ca_file, "--send", "hi"]);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("name mismatch"), "{err}");
    assert!(err.contains("api.internal"), "{err}");
    assert!(err.contains("--servername"), "{err}");
    let out = tls_connect(
        &server,
        &[
            "--ca",
            &pki.ca_file,
            "--servername",
            "api.internal",
            "--send",
            "hi",
        ],
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
}

#[test]
fn an_expired_certificate_is_reported_as_such() {
    let pki = Pki::new();
    let old = pki.ca.issue_expired(&pki.dir, "old", &["127.0.0.1"]);
    let (server, _) = tls_server(&["--cert", &old.cert, "--key", &old.key]);
    let out = tls_connect(&server, &["--ca", &pki.ca_file, "--send", "hi"]);
    assert_exit(&out, 8, "certificate expired on 2001-01-01");
}

#[test]
fn insecure_connects_and_warns() {
    let (server, _) = tls_server(&[]);
    let out = tls_connect(&server, &["--insecure", "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    assert!(
        stderr(&out).contains("warning: --insecure: the server's certificate is not verified"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn mutual_tls_accepts_good_client_certs_and_rejects_others() {
    let pki = Pki::new();
    let client = pki.ca.issue(&pki.dir, "client", &["client"], Usage::Client);
    let stranger_ca = Ca::new("another ca");
    let stranger = stranger_ca.issue(&pki.dir, "stranger", &["stranger"], Usage::Client);
    let (server, _) = tls_server(&[
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
        "--client-ca",
        &pki.ca_file,
    ]);
    let base = ["--ca", pki.ca_file.as_str(), "--send", "hi"];
    let with_cert = |pem: &Pem| {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--cert", &pem.cert, "--key", &pem.key]);
        tls_connect(&server, &args)
    };

    let out = with_cert(&client);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");

    // Without a certificate: refused, with the reason on both sides.
    let out = tls_connect(&server, &base);
    assert_eq!(code(out.status), 8, "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    server
        .proc
        .stderr
        .wait_for("client presented no certificate");

    // With a certificate from another CA.
    let out = with_cert(&stranger);
    assert_exit(&out, 8, "the server rejected our client certificate");
    assert!(out.stdout.is_empty());
    server
        .proc
        .stderr
        .wait_for("client certificate rejected: unknown issuer");

    // The server keeps serving.
    let out = with_cert(&client);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
}

#[test]
fn a_client_without_a_certificate_is_told_to_give_one() {
    let pki = Pki::new();
    let (server, _) = tls_server(&[
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
        "--client-ca",
        &pki.ca_file,
    ]);
    let out = tls_connect(&server, &["--ca", &pki.ca_file, "--send", "hi"]);
    assert_exit(&out, 8, "--cert and --key");
}

#[test]
fn echo_of_a_multi_megabyte_payload_is_byte_exact() {
    let (server, fp) = tls_server(&["--echo"]);
    let data = payload(4 << 20, 7);
    let addr = server.addr_str();
    let out = run_with_input(
        &["connect", "--tls", &addr, "--pin-sha256", &fp],
        data.clone(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "echoed bytes differ");
}

#[test]
fn half_close_sends_close_notify_and_still_reads_the_reply() {
    // The server answers the unterminated last line only once it sees the
    // end of the stream: the reply proves the client's close_notify
    // arrived and the client kept reading after sending it.
    let (server, fp) = tls_server(&["--lines", "--reply", "ok"]);
    let out = tls_connect(&server, &["--pin-sha256", &fp, "--send", "abc"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"ok\n");
    server.proc.stderr.wait_for("recv abc");

    // The netcat pipe: stdin EOF half-closes; replies still arrive.
    let addr = server.addr_str();
    let out = run_with_input(
        &["connect", "--tls", &addr, "--pin-sha256", &fp],
        b"one\ntwo".to_vec(),
    );
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"ok\nok\n");
}

#[test]
fn retry_reaches_a_tls_server_that_starts_late() {
    let pki = Pki::new();
    let port = free_port();
    let target = format!("tls://127.0.0.1:{port}");
    let client = netcrab()
        .args([
            "connect",
            &target,
            "--ca",
            &pki.ca_file,
            "--retry-for",
            "20s",
            "--retry-max-delay",
            "200ms",
            "--send",
            "late",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn client");
    let server = Server::start_exact(&[
        "serve",
        &target,
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
    ]);
    let out = client.wait_with_output().expect("client output");
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    server.proc.stderr.wait_for("recv late");
}

#[test]
fn a_silent_client_does_not_block_others() {
    // The handshake runs in the connection's task: a client that never
    // starts one (for the default 10 s) must not stop the next one.
    let (server, fp) = tls_server(&[]);
    let _silent = server.connect();
    let out = tls_connect(&server, &["--pin-sha256", &fp, "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    assert_eq!(server.proc.stderr.count("timed out"), 0);
}

#[test]
fn a_silent_client_is_closed_after_the_handshake_timeout() {
    let (server, _) = tls_server(&["--handshake-timeout", "300ms"]);
    let mut silent = server.connect();
    let line = server.proc.stderr.wait_for("timed out after");
    assert!(line.contains("tls handshake with 127.0.0.1:"), "{line}");
    assert!(line.contains("--handshake-timeout"), "{line}");
    // The server closed the silent connection.
    let mut buf = [0u8; 16];
    assert_eq!(silent.read(&mut buf).expect("read"), 0);
}

#[test]
fn a_plaintext_client_gets_a_clear_log_line() {
    let (server, fp) = tls_server(&[]);
    let mut plain = server.connect();
    plain.write_all(b"hello, world\r\n\r\n").expect("write");
    let _ = read_to_end(&mut plain);
    server.proc.stderr.wait_for("does not seem to speak tls");
    let out = tls_connect(&server, &["--pin-sha256", &fp, "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

#[test]
fn alpn_is_negotiated_or_refused() {
    let (server, fp) = tls_server(&["--alpn", "x-one,x-two"]);
    let out = tls_connect(
        &server,
        &["-v", "--pin-sha256", &fp, "--alpn", "x-two", "--send", "hi"],
    );
    assert_exit(&out, 0, "alpn x-two");
    let out = tls_connect(
        &server,
        &["--pin-sha256", &fp, "--alpn", "x-three", "--send", "hi"],
    );
    assert_exit(&out, 8, "--alpn");
}

#[test]
fn tls_flags_need_a_tls_address() {
    let out = run(&["connect", "127.0.0.1:1", "--ca", "ca.pem"]);
    assert_exit(&out, 2, "--ca needs a tls:// address");
    let out = run(&["serve", "127.0.0.1:0", "--client-ca", "ca.pem"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
    let out = run(&["connect", "--tls", "udp://127.0.0.1:1"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
}

#[test]
fn bad_certificate_files_are_clear_errors() {
    let dir = TempDir::new();
    let garbage = dir.write("garbage.pem", "not a certificate\n");
    let out = run(&[
        "serve",
        "--tls",
        "127.0.0.1:0",
        "--cert",
        &garbage,
        "--key",
        &garbage,
    ]);
    assert_exit(&out, 2, "no certificate in it");
    let missing = dir.0.join("missing.pem");
    let missing = missing.to_str().expect("path");
    let out = run(&[
        "serve",
        "--tls",
        "127.0.0.1:0",
        "--cert",
        missing,
        "--key",
        missing,
    ]);
    assert_ne!(code(out.status), 0);
    assert!(
        stderr(&out).contains("read certificate"),
        "{}",
        stderr(&out)
    );
    let out = run(&["connect", "tls://127.0.0.1:1", "--ca", &garbage]);
    assert_exit(&out, 2, "ca file");
}

/// A foreign process (openssl), killed on drop, with its stdout lines.
struct Foreign {
    child: Child,
    stdout: Lines,
}

impl Foreign {
    fn start(cmd: &mut Command) -> Foreign {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl (run scripts/install-test-deps.sh)");
        let stdout = Lines::collect(child.stdout.take().expect("stdout"));
        Foreign { child, stdout }
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path(p: &str) -> &Path {
    Path::new(p)
}

#[test]
fn netcrab_connect_talks_to_openssl_s_server() {
    let pki = Pki::new();
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    // -rev: answers each line reversed; closes on our close_notify.
    let s_server = Foreign::start(
        Command::new("openssl")
            .args(["s_server", "-accept", &accept, "-naccept", "1", "-rev"])
            .arg("-cert")
            .arg(path(&pki.server.cert))
            .arg("-key")
            .arg(path(&pki.server.key))
            .stdin(Stdio::null()),
    );
    s_server.stdout.wait_for("ACCEPT");
    let target = format!("tls://{accept}");
    let out = run(&[
        "connect",
        &target,
        "--ca",
        &pki.ca_file,
        "--send",
        "hello\n",
    ]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"olleh\n");
}

#[test]
fn netcrab_connect_pins_an_openssl_fingerprint() {
    let pki = Pki::new();
    let fp = Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-fingerprint",
            "-sha256",
            "-in",
            &pki.server.cert,
        ])
        .output()
        .expect("openssl x509");
    let fp = String::from_utf8(fp.stdout).expect("utf-8");
    assert!(fp.contains("Fingerprint="), "{fp}");
    let (server, ours) = tls_server(&["--cert", &pki.server.cert, "--key", &pki.server.key]);
    assert!(
        fp.trim().ends_with(&ours),
        "openssl says {fp}, netcrab says {ours}"
    );
    let out = tls_connect(&server, &["--pin-sha256", fp.trim(), "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

/// Runs `openssl s_client ARGS` against `server`, sends `hi\n`, and waits
/// for the reply line.
fn s_client_exchange(server: &Server, args: &[&str], reply: &str) {
    let addr = server.addr_str();
    let mut s_client = Foreign::start(
        Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr,
                "-quiet",
                "-verify_return_error",
            ])
            .args(args)
            .stdin(Stdio::piped()),
    );
    let mut stdin = s_client.child.stdin.take().expect("stdin");
    stdin.write_all(b"hi\n").expect("write to s_client");
    s_client.stdout.wait_for(reply);
    drop(stdin);
}

#[test]
fn openssl_s_client_talks_to_netcrab_serve_over_tls_1_3_and_1_2() {
    let pki = Pki::new();
    let (server, _) = tls_server(&[
        "--lines",
        "--reply",
        "pong",
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
    ]);
    let ca = pki.ca_file.as_str();
    s_client_exchange(&server, &["-CAfile", ca, "-tls1_3"], "pong");
    s_client_exchange(&server, &["-CAfile", ca, "-tls1_2"], "pong");
    server.proc.stderr.wait_for("recv hi");
}

#[test]
fn openssl_s_client_with_a_client_certificate_passes_mutual_tls() {
    let pki = Pki::new();
    let client = pki.ca.issue(&pki.dir, "client", &["client"], Usage::Client);
    let (server, _) = tls_server(&[
        "--lines",
        "--reply",
        "welcome",
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
        "--client-ca",
        &pki.ca_file,
    ]);
    s_client_exchange(
        &server,
        &[
            "-CAfile",
            &pki.ca_file,
            "-cert",
            &client.cert,
            "-key",
            &client.key,
        ],
        "welcome",
    );
}

#[test]
fn a_peer_closing_without_close_notify_ends_the_stream_cleanly() {
    let (server, _) = tls_server(&["-v", "--lines", "--reply", "pong"]);
    let addr = server.addr_str();
    let mut s_client = Foreign::start(
        Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-quiet"])
            .stdin(Stdio::piped()),
    );
    let mut stdin = s_client.child.stdin.take().expect("stdin");
    stdin.write_all(b"hi\n").expect("write to s_client");
    s_client.stdout.wait_for("pong");
    // SIGKILL: the kernel closes the socket, no close_notify is sent.
    s_client.child.kill().expect("kill s_client");
    server.proc.stderr.wait_for("without a tls close_notify");
    server.proc.stderr.wait_for("closed (received 3 bytes");
    drop(stdin);
}

/// The crypto provider netcrab is built with (Cargo.toml's features).
fn provider() -> rustls::crypto::CryptoProvider {
    #[cfg(feature = "aws-lc-rs")]
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    let provider = rustls::crypto::ring::default_provider();
    provider
}

/// A rustls client in the test itself, trusting `pki`'s CA.
fn rustls_client(
    pki: &Pki,
    server: &Server,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    rustls_client_with(provider(), pki, server)
}

/// [`rustls_client`] on `provider` (its key exchange groups, say).
fn rustls_client_with(
    provider: rustls::crypto::CryptoProvider,
    pki: &Pki,
    server: &Server,
) -> rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream> {
    use std::sync::Arc;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.issuer.der().clone()).expect("add ca");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = std::net::TcpStream::connect(server.addr).expect("connect");
    tcp.set_read_timeout(Some(PATIENCE)).expect("read timeout");
    rustls::StreamOwned::new(conn, tcp)
}

/// With aws-lc-rs, a server takes the post-quantum hybrid key exchange
/// (X25519MLKEM768) from a client that offers only that, as browsers and
/// Go 1.24 clients offer it first.
#[cfg(feature = "aws-lc-rs")]
#[test]
fn a_client_offering_only_x25519mlkem768_is_served() {
    let pki = Pki::new();
    let (server, _) = tls_server(&[
        "--lines",
        "--reply",
        "pong",
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
    ]);
    let mut provider = provider();
    provider.kx_groups = vec![rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768];
    let mut tls = rustls_client_with(provider, &pki, &server);
    tls.write_all(b"ping\n").expect("write");
    let mut back = [0u8; 5];
    tls.read_exact(&mut back).expect("read the reply");
    assert_eq!(&back, b"pong\n");
    let group = tls
        .conn
        .negotiated_key_exchange_group()
        .expect("a key exchange group")
        .name();
    assert_eq!(group, rustls::NamedGroup::X25519MLKEM768);
}

/// RSA-2048 certificates, the common kind, with the key as openssl writes
/// it (PKCS#8) and in the older PKCS#1 form (`-traditional`): served over
/// TLS 1.3 (RSA-PSS signatures) and 1.2, verified by netcrab and by
/// openssl's s_client.
#[test]
fn an_rsa_2048_certificate_serves_tls_1_3_and_1_2_with_either_key_form() {
    let dir = TempDir::new();
    openssl(
        &dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "rsa.key",
            "-out",
            "rsa.crt",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
    );
    openssl(
        &dir,
        &["rsa", "-in", "rsa.key", "-traditional", "-out", "rsa1.key"],
    );
    let full = |f: &str| dir.0.join(f).to_str().expect("utf-8 path").to_owned();
    let cert = full("rsa.crt");
    let pkcs1 = std::fs::read_to_string(full("rsa1.key")).expect("read the key");
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"), "{pkcs1}");
    for key in [full("rsa.key"), full("rsa1.key")] {
        let (server, _) =
            tls_server(&["--lines", "--reply", "pong", "--cert", &cert, "--key", &key]);
        let out = tls_connect(&server, &["--ca", &cert, "--send", "hi\n"]);
        assert_eq!(code(out.status), 0, "{key}: {}", stderr(&out));
        assert_eq!(out.stdout, b"pong\n");
        s_client_exchange(&server, &["-CAfile", &cert, "-tls1_3"], "pong");
        s_client_exchange(&server, &["-CAfile", &cert, "-tls1_2"], "pong");
    }
}

#[test]
fn a_burst_is_served_even_when_rustls_holds_it_all() {
    // One write of many records, then silence (no EOF): everything must be
    // served, although the last records may sit decrypted in rustls with
    // nothing left on the socket. (The unit test in src/transport/tls.rs
    // pins down the readiness rule itself.)
    let pki = Pki::new();
    let (server, _) = tls_server(&[
        "--echo",
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
    ]);
    let mut tls = rustls_client(&pki, &server);
    for round in 0..3u64 {
        let data = payload(200_000, round + 1);
        tls.write_all(&data).expect("write");
        tls.flush().expect("flush");
        let mut back = vec![0u8; data.len()];
        tls.read_exact(&mut back).expect("read the echo back");
        assert!(back == data, "round {round}: echoed bytes differ");
    }
    // A line-based service too.
    let (server, _) = tls_server(&[
        "--lines",
        "--reply",
        "ok",
        "--cert",
        &pki.server.cert,
        "--key",
        &pki.server.key,
    ]);
    let mut tls = rustls_client(&pki, &server);
    let lines = "x\n".repeat(30_000);
    tls.write_all(lines.as_bytes()).expect("write");
    tls.flush().expect("flush");
    let mut back = vec![0u8; 3 * 30_000];
    tls.read_exact(&mut back).expect("read the replies");
    assert!(back == "ok\n".repeat(30_000).into_bytes());
}

/// Runs `openssl ARGS` in `dir`; panics when it fails.
fn openssl(dir: &TempDir, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(&dir.0)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (run scripts/install-test-deps.sh)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed certificate made the way people make one:
/// `openssl req -x509` (which marks it CA:TRUE) with `extra` arguments.
/// Returns the paths of the certificate and the key.
fn openssl_self_signed(dir: &TempDir, name: &str, extra: &[&str]) -> Pem {
    let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &cert,
        "-days",
        "30",
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
    let full = |f: &str| dir.0.join(f).to_str().expect("utf-8 path").to_owned();
    Pem {
        cert: full(&cert),
        key: full(&key),
    }
}

#[test]
fn a_self_signed_openssl_certificate_given_to_ca_is_trusted_as_itself() {
    let dir = TempDir::new();
    // Plain: a common name and no subjectAltName at all.
    let plain = openssl_self_signed(&dir, "plain", &["-subj", "/CN=localhost"]);
    let with_ip = openssl_self_signed(
        &dir,
        "with-ip",
        &[
            "-subj",
            "/CN=netcrab",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    let other = openssl_self_signed(&dir, "other", &["-subj", "/CN=localhost"]);

    let (server, _) = tls_server(&["--cert", &plain.cert, "--key", &plain.key]);
    let ok = [
        "--ca",
        plain.cert.as_str(),
        "--servername",
        "localhost",
        "--send",
        "hi",
    ];
    let out = tls_connect(&server, &ok);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    // Its name is still checked: the common name says localhost.
    let out = tls_connect(
        &server,
        &[
            "--ca",
            &plain.cert,
            "--servername",
            "example.com",
            "--send",
            "hi",
        ],
    );
    assert_exit(
        &out,
        8,
        "name mismatch: the certificate is for localhost, not example.com",
    );
    // A different self-signed certificate in --ca does not vouch for it.
    let out = tls_connect(
        &server,
        &[
            "--ca",
            &other.cert,
            "--servername",
            "localhost",
            "--send",
            "hi",
        ],
    );
    assert_exit(&out, 8, "certificate verification failed");
    assert!(out.stdout.is_empty());
    drop(server);

    // With a subjectAltName, by IP address (no --servername).
    let (server, _) = tls_server(&["--cert", &with_ip.cert, "--key", &with_ip.key]);
    let out = tls_connect(&server, &["--ca", &with_ip.cert, "--send", "hi"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    // wait and bench share the client configuration.
    let addr = format!("tls://{}", server.addr_str());
    let out = run(&["wait", &addr, "--ca", &with_ip.cert, "--timeout", "10s"]);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

#[test]
fn an_expired_self_signed_certificate_in_ca_is_still_expired() {
    let dir = TempDir::new();
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.not_before = rcgen::date_time_ymd(2000, 1, 1);
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    let cert_file = dir.write("old.crt", &cert.pem());
    let key_file = dir.write("old.key", &key.serialize_pem());
    let (server, _) = tls_server(&["--cert", &cert_file, "--key", &key_file]);
    let out = tls_connect(&server, &["--ca", &cert_file, "--send", "hi"]);
    assert_exit(&out, 8, "certificate expired on 2001-01-01");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_self_signed_client_certificate_given_to_client_ca_is_trusted_as_itself() {
    let dir = TempDir::new();
    let client = openssl_self_signed(&dir, "client", &["-subj", "/CN=client"]);
    let stranger = openssl_self_signed(&dir, "stranger", &["-subj", "/CN=client"]);
    let server_cert = openssl_self_signed(
        &dir,
        "server",
        &[
            "-subj",
            "/CN=server",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
    );
    let (server, _) = tls_server(&[
        "--cert",
        &server_cert.cert,
        "--key",
        &server_cert.key,
        "--client-ca",
        &client.cert,
    ]);
    let with_cert = |pem: &Pem| {
        tls_connect(
            &server,
            &[
                "--ca",
                &server_cert.cert,
                "--cert",
                &pem.cert,
                "--key",
                &pem.key,
                "--send",
                "hi",
            ],
        )
    };
    let out = with_cert(&client);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, world");
    let out = with_cert(&stranger);
    assert_exit(&out, 8, "the server rejected our client certificate");
    server.proc.stderr.wait_for("client certificate rejected");
    // The server keeps serving.
    let out = with_cert(&client);
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

#[test]
fn an_x509_v1_certificate_is_refused_at_start_saying_how_to_reissue_it() {
    let dir = TempDir::new();
    let ca = openssl_self_signed(&dir, "ca", &["-subj", "/CN=test ca"]);
    openssl(
        &dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "v1.key",
            "-out",
            "v1.csr",
            "-subj",
            "/CN=localhost",
        ],
    );
    // `openssl x509 -req` without -extfile: an X.509 v1 certificate.
    openssl(
        &dir,
        &[
            "x509",
            "-req",
            "-in",
            "v1.csr",
            "-CA",
            &ca.cert,
            "-CAkey",
            &ca.key,
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            "v1.crt",
        ],
    );
    let cert = dir.0.join("v1.crt").to_str().expect("path").to_owned();
    let key = dir.0.join("v1.key").to_str().expect("path").to_owned();
    let needle = "is x509 v1, and rustls accepts only x509 v3 certificates";
    let out = run(&[
        "serve",
        "--tls",
        "127.0.0.1:0",
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    assert_exit(&out, 2, needle);
    assert!(stderr(&out).contains("-extfile"), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("client certificate"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "connect",
        "tls://127.0.0.1:1",
        "--ca",
        &ca.cert,
        "--cert",
        &cert,
        "--key",
        &key,
    ]);
    assert_exit(&out, 2, needle);
    // Presented by a foreign client, the server's log blames the client's
    // certificate version, not the server.
    let (server, _) = tls_server(&["--client-ca", &ca.cert]);
    let _ = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &server.addr_str(),
            "-cert",
            &cert,
            "-key",
            &key,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run openssl s_client");
    server
        .proc
        .stderr
        .wait_for("the client's certificate is not x509 v3");
}
