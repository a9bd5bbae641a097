//! Checking client certificates on the server: `--client-pin-sha256` and
//! `--client-name` on serve and relay's TLS listener, with netcrab connect
//! presenting certificates made by rcgen (fingerprints from `openssl
//! x509`, Debian package `openssl`).

use std::process::Command;

use crate::tls::{Ca, Pem, Pki, Usage};
use crate::util::*;

/// The SHA-256 fingerprint of a PEM certificate, as openssl prints it.
fn fingerprint(cert: &str) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in", cert])
        .output()
        .expect("openssl x509 (run scripts/install-test-deps.sh)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    text.trim()
        .rsplit('=')
        .next()
        .expect("fingerprint")
        .to_owned()
}

/// Starts a TLS echo server with the PKI's server certificate and `args`.
fn server(pki: &Pki, cmd: &[&str], args: &[&str]) -> Listening {
    let mut all = cmd.to_vec();
    all.extend_from_slice(&["--cert", &pki.server.cert, "--key", &pki.server.key]);
    all.extend_from_slice(args);
    Listening::start(&all)
}

/// `connect` to `addr` trusting the PKI's CA, presenting `client`.
fn connect_with(pki: &Pki, addr: &str, client: Option<&Pem>) -> std::process::Output {
    let mut args = vec!["connect", addr, "--ca", &pki.ca_file, "--send", "hi"];
    if let Some(pem) = client {
        args.extend_from_slice(&["--cert", &pem.cert, "--key", &pem.key]);
    }
    run(&args)
}

#[test]
fn a_pinned_client_certificate_is_accepted_and_others_refused() {
    let pki = Pki::new();
    // Any signer will do with a pin: a stranger's CA here.
    let stranger = Ca::new("stranger ca");
    let good = stranger.issue(&pki.dir, "good", &["good.test"], Usage::Client);
    let other = stranger.issue(&pki.dir, "other", &["other.test"], Usage::Client);
    let fp = fingerprint(&good.cert);
    let server = server(
        &pki,
        &["serve", "tls://127.0.0.1:0", "--echo"],
        &["--client-pin-sha256", &fp],
    );

    let out = connect_with(&pki, &server.addr, Some(&good));
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hi");

    let out = connect_with(&pki, &server.addr, Some(&other));
    assert_exit(&out, 8, "the server rejected our client certificate");
    let line = server.proc.stderr.wait_for("not pinned");
    assert!(line.contains(&fingerprint(&other.cert)), "{line}");

    let out = connect_with(&pki, &server.addr, None);
    assert_exit(&out, 8, "client certificate");
    server
        .proc
        .stderr
        .wait_for("client presented no certificate");

    // The server keeps serving.
    let out = connect_with(&pki, &server.addr, Some(&good));
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
}

#[test]
fn client_name_is_checked_on_top_of_the_client_ca() {
    let pki = Pki::new();
    let backup = pki
        .ca
        .issue(&pki.dir, "backup", &["backup.internal"], Usage::Client);
    let web = pki
        .ca
        .issue(&pki.dir, "web", &["web.internal"], Usage::Client);
    let outsider =
        Ca::new("outsider").issue(&pki.dir, "outsider", &["backup.internal"], Usage::Client);
    let relay_upstream = Server::start(&["--echo"]);
    let upstream = relay_upstream.addr_str();
    // On relay's TLS listener.
    let relay = server(
        &pki,
        &["relay", "tls://127.0.0.1:0", &upstream],
        &[
            "--client-ca",
            &pki.ca_file,
            "--client-name",
            "backup.internal",
        ],
    );
    let out = connect_with(&pki, &relay.addr, Some(&backup));
    assert_eq!(code(out.status), 0, "{}", stderr(&out));
    assert_eq!(out.stdout, b"hi");

    let out = connect_with(&pki, &relay.addr, Some(&web));
    assert_exit(&out, 8, "the server rejected our client certificate");
    relay
        .proc
        .stderr
        .wait_for("name mismatch: it is for web.internal, and --client-name wants backup.internal");

    // The right name from the wrong CA is still refused.
    let out = connect_with(&pki, &relay.addr, Some(&outsider));
    assert_exit(&out, 8, "the server rejected our client certificate");
    relay.proc.stderr.wait_for("unknown issuer");
}

#[test]
fn client_checks_are_usage_errors_without_a_basis_or_tls() {
    let out = run(&["serve", "--tls", "127.0.0.1:0", "--client-name", "x.test"]);
    assert_exit(
        &out,
        2,
        "--client-name needs --client-ca or --client-pin-sha256",
    );
    let out = run(&["serve", "127.0.0.1:0", "--client-pin-sha256", "ab"]);
    assert_exit(&out, 2, "--client-pin-sha256 needs a tls:// address");
    let out = run(&["serve", "--tls", "127.0.0.1:0", "--client-pin-sha256", "zz"]);
    assert_eq!(code(out.status), 2, "{}", stderr(&out));
}
