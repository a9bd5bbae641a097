//! The one place where rustls errors become netcrab messages: what failed
//! (unknown issuer, expired, name mismatch, fingerprint mismatch, no client
//! certificate, ...) and how to proceed (`--ca`, `--pin-sha256`,
//! `--servername`, `--cert`/`--key`). Every TLS error is
//! [`ErrorKind::Tls`] (exit code 8).

use std::io;
use std::time::{Duration, SystemTime};

use rustls::{AlertDescription, CertificateError};

use super::verify::PinMismatch;
use crate::error::{Error, ErrorKind};
use crate::settings::Setting;

/// Which end of the connection we are: the advice differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    /// We connected (`connect`): the peer is the server.
    Client,
    /// We accepted (`serve`): the peer is a client.
    Server,
}

impl Side {
    fn peer(self) -> &'static str {
        match self {
            Side::Client => "server",
            Side::Server => "client",
        }
    }
}

/// The rustls error carried by an I/O error from tokio-rustls, if any.
pub(crate) fn rustls_error(err: &io::Error) -> Option<&rustls::Error> {
    err.get_ref()?.downcast_ref::<rustls::Error>()
}

/// The error for a failed handshake (or a TLS failure after it), doing
/// `context`, as seen from `side`.
pub(crate) fn from_io(context: String, err: io::Error, side: Side) -> Error {
    if let Some(tls) = rustls_error(&err) {
        let detail = describe(tls, side);
        return Error::new(ErrorKind::Tls, context)
            .with_detail(detail)
            .with_source(err);
    }
    if err.kind() == io::ErrorKind::UnexpectedEof {
        let detail = match side {
            Side::Client => {
                "the server closed the connection during the tls handshake (is it a tls server?)"
            }
            Side::Server => "the client closed the connection during the tls handshake",
        };
        return Error::new(ErrorKind::Reset, context).with_detail(detail);
    }
    Error::io(context, err)
}

/// A TLS failure on an established connection (a bad record, an alert),
/// as an I/O error that [`Error::io`] turns into an [`ErrorKind::Tls`]
/// error with this module's message: the transport's TLS streams pass
/// their I/O errors through here, so the error module needs to know
/// nothing of TLS. Other errors are returned as they are.
pub(crate) fn classify_io(err: io::Error, side: Side) -> io::Error {
    let Some(tls) = rustls_error(&err) else {
        return err;
    };
    let detail = describe(tls, side);
    let kind = err.kind();
    let classified = Error::new(ErrorKind::Tls, "")
        .with_detail(detail)
        .with_source(err);
    io::Error::new(kind, classified)
}

/// Says what a rustls error means, from `side`'s point of view, and how
/// to proceed.
pub(crate) fn describe(err: &rustls::Error, side: Side) -> String {
    let peer = side.peer();
    match err {
        rustls::Error::InvalidCertificate(cert) => match side {
            Side::Client => format!(
                "certificate verification failed: {}",
                certificate(cert, side)
            ),
            Side::Server => format!("client certificate rejected: {}", certificate(cert, side)),
        },
        rustls::Error::NoCertificatesPresented => match side {
            Side::Server => {
                format!(
                    "client presented no certificate (this server requires one: {}, {})",
                    Setting::ClientCa,
                    Setting::ClientPinSha256
                )
            }
            Side::Client => "the server presented no certificate".into(),
        },
        rustls::Error::AlertReceived(alert) => received_alert(*alert, side),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::InappropriateMessage { .. }
        | rustls::Error::InappropriateHandshakeMessage { .. } => {
            format!("the {peer} does not seem to speak tls ({err})")
        }
        rustls::Error::PeerIncompatible(_) => format!(
            "no tls version or cipher suite in common with the {peer} \
             (netcrab speaks tls 1.2 and 1.3): {err}"
        ),
        rustls::Error::NoApplicationProtocol => {
            format!(
                "no alpn protocol in common with the {peer} (see {})",
                Setting::Alpn
            )
        }
        other => lowercase_first(&other.to_string()),
    }
}

/// Says what is wrong with our own certificate or key, as rustls found
/// when loading them (no peer is involved).
pub(crate) fn describe_own(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            let text = other.to_string();
            if text.contains(' ') {
                format!("unusable certificate: {}", lowercase_first(&text))
            } else {
                format!("unusable certificate: {}", words(&text))
            }
        }
        rustls::Error::InvalidCertificate(CertificateError::BadEncoding) => {
            "unusable certificate: malformed".into()
        }
        other => lowercase_first(&other.to_string()),
    }
}

fn certificate(err: &CertificateError, side: Side) -> String {
    let client = side == Side::Client;
    match err {
        CertificateError::UnknownIssuer => {
            if client {
                format!(
                    "unknown issuer: the server's certificate is not signed by a trusted ca; \
                     trust its ca with {} FILE, or pin this certificate with {} FINGERPRINT",
                    Setting::Ca,
                    Setting::PinSha256
                )
            } else {
                format!(
                    "unknown issuer: the client's certificate is not signed by a ca in {}",
                    Setting::ClientCa
                )
            }
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            let when = match err {
                CertificateError::ExpiredContext { not_after, .. } => {
                    format!(" on {}", date(not_after.as_secs()))
                }
                _ => String::new(),
            };
            if client {
                format!(
                    "certificate expired{when}; the server must renew it \
                     (or pin it with {} to accept it anyway)",
                    Setting::PinSha256
                )
            } else {
                format!("certificate expired{when}")
            }
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            let when = match err {
                CertificateError::NotValidYetContext { not_before, .. } => {
                    format!(" (valid from {})", date(not_before.as_secs()))
                }
                _ => String::new(),
            };
            format!("certificate not valid yet{when}: check both machines' clocks")
        }
        CertificateError::NotValidForName => {
            format!(
                "name mismatch: the certificate is not valid for the name connected to; \
                 connect by a name it lists or set {} NAME",
                Setting::ServerName
            )
        }
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => format!(
            "name mismatch: the certificate is for {}, not {}; \
             connect by one of those names or set {} NAME",
            if presented.is_empty() {
                "no names at all".to_owned()
            } else {
                presented.join(", ")
            },
            expected.to_str(),
            Setting::ServerName
        ),
        CertificateError::BadSignature => {
            "bad signature: the certificate is not signed by the key of its issuer".into()
        }
        CertificateError::Revoked => "certificate revoked".into(),
        CertificateError::BadEncoding => "malformed certificate".into(),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            format!("the certificate is not meant for a tls {}", side.peer())
        }
        CertificateError::Other(other) => match other.0.downcast_ref::<PinMismatch>() {
            Some(mismatch) => {
                let expected: Vec<String> =
                    mismatch.expected.iter().map(|f| f.to_string()).collect();
                format!(
                    "fingerprint mismatch: the server's certificate has sha-256 fingerprint {}, \
                     but {} expects {}; if the certificate changed on purpose, pin \
                     the new fingerprint",
                    mismatch.presented,
                    Setting::PinSha256,
                    expected.join(" or ")
                )
            }
            None => {
                // webpki's own errors arrive here as bare names.
                let text = other.to_string();
                if text == "CaUsedAsEndEntity" {
                    format!(
                        "the certificate is a ca certificate used as a server certificate (as \
                         `openssl req -x509` makes by default); trust that very certificate with \
                         {} FILE, pin it with {}, or issue a leaf certificate from that ca",
                        Setting::Ca,
                        Setting::PinSha256
                    )
                } else if text == "UnsupportedCertVersion" {
                    format!(
                        "the {}'s certificate is not x509 v3 (`openssl x509 -req` without \
                         -extfile makes v1), and rustls accepts only v3; it must be re-issued \
                         with extensions",
                        side.peer()
                    )
                } else if !text.contains(' ') {
                    words(&text)
                } else {
                    lowercase_first(&text)
                }
            }
        },
        other => lowercase_first(&rustls::Error::InvalidCertificate(other.clone()).to_string()),
    }
}

fn received_alert(alert: AlertDescription, side: Side) -> String {
    use AlertDescription as A;
    let name = alert_name(alert);
    match (side, alert) {
        (Side::Client, A::CertificateRequired) => {
            format!(
                "the server requires a client certificate: give one with {} and {}",
                Setting::Cert,
                Setting::Key
            )
        }
        (
            Side::Client,
            A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied,
        ) => format!(
            "the server rejected our client certificate or its absence (alert: {name}); \
             present one it trusts with {} and {}",
            Setting::Cert,
            Setting::Key
        ),
        (Side::Client, A::HandshakeFailure) => format!(
            "the server refused the handshake (alert: {name}): no cipher suite in common, \
             or it wants a client certificate ({} and {})",
            Setting::Cert,
            Setting::Key
        ),
        (Side::Client, A::ProtocolVersion) => {
            "no tls version in common with the server (netcrab speaks tls 1.2 and 1.3)".into()
        }
        (Side::Client, A::NoApplicationProtocol) => {
            format!(
                "the server accepts none of the {} protocols offered",
                Setting::Alpn
            )
        }
        (Side::Client, A::UnrecognisedName) => {
            format!(
                "the server does not know the name asked for (sni); set {} NAME",
                Setting::ServerName
            )
        }
        (
            Side::Server,
            A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::DecryptError,
        ) => format!(
            "the client rejected our certificate (alert: {name}); \
             it must trust it: {} FINGERPRINT or {} FILE on the client",
            Setting::PinSha256,
            Setting::Ca
        ),
        (side, _) => format!("the {} sent a fatal alert: {name}", side.peer()),
    }
}

/// `UnknownCA` -> `unknown ca`: rustls' alert names, in words.
fn alert_name(alert: AlertDescription) -> String {
    words(&format!("{alert:?}"))
}

/// `CamelCase` names in lowercase words.
fn words(debug: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in debug.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push(' ');
        }
        prev_lower = c.is_ascii_lowercase();
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// A Unix time as an RFC 3339 date and time (UTC).
fn date(secs: u64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::OtherError;
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;
    use crate::tls::Fingerprint;

    fn client(err: rustls::Error) -> String {
        describe(&err, Side::Client)
    }

    fn server(err: rustls::Error) -> String {
        describe(&err, Side::Server)
    }

    fn cert(err: CertificateError) -> rustls::Error {
        rustls::Error::InvalidCertificate(err)
    }

    #[test]
    fn unknown_issuer_points_to_ca_and_pinning() {
        let msg = client(cert(CertificateError::UnknownIssuer));
        assert!(
            msg.starts_with("certificate verification failed: unknown issuer"),
            "{msg}"
        );
        assert!(
            msg.contains("with ca FILE") && msg.contains("with pin_sha256"),
            "{msg}"
        );
        let msg = server(cert(CertificateError::UnknownIssuer));
        assert!(msg.contains("in client_ca"), "{msg}");
    }

    #[test]
    fn name_mismatch_lists_the_names_and_points_to_servername() {
        let msg = client(cert(CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("example.com")
                .expect("name")
                .to_owned(),
            presented: vec!["localhost".into(), "127.0.0.1".into()],
        }));
        assert!(msg.contains("name mismatch"), "{msg}");
        assert!(
            msg.contains("localhost, 127.0.0.1, not example.com"),
            "{msg}"
        );
        assert!(msg.contains("set server_name NAME"), "{msg}");
    }

    #[test]
    fn expiry_says_when() {
        let msg = client(cert(CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_700_000_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_600_000_000)),
        }));
        assert!(
            msg.contains("certificate expired on 2020-09-13T12:26:40Z"),
            "{msg}"
        );
    }

    #[test]
    fn pin_mismatch_shows_both_fingerprints() {
        let presented = Fingerprint([0xab; 32]);
        let expected = Fingerprint([0x01; 32]);
        let mismatch = PinMismatch {
            presented,
            expected: vec![expected],
        };
        let msg = client(cert(CertificateError::Other(OtherError(Arc::new(
            mismatch,
        )))));
        assert!(msg.contains("fingerprint mismatch"), "{msg}");
        assert!(msg.contains(&presented.to_string()), "{msg}");
        assert!(
            msg.contains(&format!("pin_sha256 expects {expected}")),
            "{msg}"
        );
    }

    #[test]
    fn client_certificate_problems_name_the_settings() {
        assert!(
            server(rustls::Error::NoCertificatesPresented)
                .contains("client presented no certificate")
        );
        let msg = client(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired,
        ));
        assert!(msg.contains("cert and key"), "{msg}");
        let msg = server(rustls::Error::AlertReceived(AlertDescription::UnknownCA));
        assert!(
            msg.contains("the client rejected our certificate (alert: unknown ca)"),
            "{msg}"
        );
    }

    #[test]
    fn io_errors_carrying_rustls_errors_are_tls_errors() {
        let io = io::Error::new(
            io::ErrorKind::InvalidData,
            cert(CertificateError::UnknownIssuer),
        );
        let err = from_io("connect to tls://x:1".into(), io, Side::Client);
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert_eq!(err.exit_code(), 8);
        assert!(
            err.to_string()
                .starts_with("connect to tls://x:1: certificate verification failed")
        );
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        let err = from_io("tls handshake".into(), eof, Side::Server);
        assert_eq!(err.kind(), ErrorKind::Reset);
    }

    #[test]
    fn a_v1_certificate_is_named_as_such() {
        // webpki's error arrives as its bare variant name.
        #[derive(Debug)]
        struct Named;
        impl std::fmt::Display for Named {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("UnsupportedCertVersion")
            }
        }
        impl std::error::Error for Named {}
        let msg = server(cert(CertificateError::Other(OtherError(Arc::new(Named)))));
        assert!(
            msg.contains("the client's certificate is not x509 v3"),
            "{msg}"
        );
        let msg = client(cert(CertificateError::Other(OtherError(Arc::new(Named)))));
        assert!(
            msg.contains("the server's certificate is not x509 v3"),
            "{msg}"
        );
    }

    #[test]
    fn tls_failures_after_the_handshake_are_tls_errors_with_our_message() {
        let io = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::DecryptError),
        );
        let err = Error::io("relay", classify_io(io, Side::Server));
        assert_eq!(err.kind(), ErrorKind::Tls);
        assert!(err.to_string().starts_with("relay: "), "{err}");
        assert!(err.detail().contains("decrypt error"), "{err}");
        // Other I/O errors pass through untouched.
        let reset = classify_io(io::Error::from_raw_os_error(libc::ECONNRESET), Side::Client);
        assert_eq!(Error::io("read", reset).kind(), ErrorKind::Reset);
    }

    #[test]
    fn alert_names_are_words() {
        assert_eq!(alert_name(AlertDescription::UnknownCA), "unknown ca");
        assert_eq!(
            alert_name(AlertDescription::BadCertificate),
            "bad certificate"
        );
    }
}

/// Why a server-side handshake failed, as a short label for metrics
/// (`netcrab_handshake_failures_total{reason}`): `timeout`, `closed` (the
/// client left or reset), `not_tls`, `incompatible`, `no_alpn`,
/// `bad_certificate`, `no_certificate`, `alert` (the client sent one),
/// `tls` (another TLS error), `protocol` (a WebSocket upgrade refused) or
/// `io`.
pub fn handshake_failure(err: &Error) -> &'static str {
    match err.kind() {
        ErrorKind::Timeout => "timeout",
        ErrorKind::Reset => "closed",
        ErrorKind::Protocol => "protocol",
        ErrorKind::Tls => {
            let tls = std::error::Error::source(err)
                .and_then(|source| source.downcast_ref::<io::Error>())
                .and_then(rustls_error);
            match tls {
                Some(rustls::Error::InvalidCertificate(_)) => "bad_certificate",
                Some(rustls::Error::NoCertificatesPresented) => "no_certificate",
                Some(rustls::Error::AlertReceived(_)) => "alert",
                Some(
                    rustls::Error::InvalidMessage(_)
                    | rustls::Error::InappropriateMessage { .. }
                    | rustls::Error::InappropriateHandshakeMessage { .. },
                ) => "not_tls",
                Some(rustls::Error::PeerIncompatible(_)) => "incompatible",
                Some(rustls::Error::NoApplicationProtocol) => "no_alpn",
                _ => "tls",
            }
        }
        _ => "io",
    }
}

#[cfg(test)]
mod handshake_failure_tests {
    use super::*;

    fn tls(err: rustls::Error) -> Error {
        Error::new(ErrorKind::Tls, "tls handshake")
            .with_source(io::Error::new(io::ErrorKind::InvalidData, err))
    }

    #[test]
    fn failures_are_labelled_by_reason() {
        assert_eq!(
            handshake_failure(&tls(rustls::Error::NoCertificatesPresented)),
            "no_certificate"
        );
        assert_eq!(
            handshake_failure(&tls(rustls::Error::InvalidCertificate(
                CertificateError::Expired
            ))),
            "bad_certificate"
        );
        assert_eq!(
            handshake_failure(&tls(rustls::Error::AlertReceived(
                AlertDescription::UnknownCA
            ))),
            "alert"
        );
        assert_eq!(
            handshake_failure(&tls(rustls::Error::NoApplicationProtocol)),
            "no_alpn"
        );
        assert_eq!(
            handshake_failure(&Error::new(ErrorKind::Tls, "tls handshake")),
            "tls"
        );
        assert_eq!(
            handshake_failure(&Error::new(ErrorKind::Timeout, "tls handshake")),
            "timeout"
        );
        let eof = from_io(
            "tls handshake".into(),
            io::ErrorKind::UnexpectedEof.into(),
            Side::Server,
        );
        assert_eq!(handshake_failure(&eof), "closed");
        let garbage = from_io(
            "tls handshake".into(),
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            ),
            Side::Server,
        );
        assert_eq!(handshake_failure(&garbage), "not_tls");
    }
}
