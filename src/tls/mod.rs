//! TLS configuration: what a TLS server or client is asked to do
//! ([`TlsServerOptions`], [`TlsClientOptions`]), turned into rustls
//! configurations once at start-up.
//!
//! rustls does the protocol (TLS 1.2 and 1.3 only), with the crypto
//! provider the build chose (the `aws-lc-rs` or `ring` cargo feature);
//! certificates come from PEM files or, for a server without `--cert`, a
//! self-signed certificate generated at start-up (rcgen) whose SHA-256
//! [`Fingerprint`] the server prints so that clients can pin it. Client
//! verification uses the system's trust store by default, plus `--ca`
//! files; pinning and `--insecure` replace it with the verifiers in
//! `verify`. Every rustls error is turned into a message that says what
//! failed and how to proceed in one place, `errors`.
//!
//! The sockets themselves live in [`transport`](crate::transport).

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!("netcrab needs a crypto provider: build with the `aws-lc-rs` or the `ring` feature");

mod config;
pub(crate) mod errors;
mod fingerprint;
mod pem;
mod selfsigned;
mod verify;
mod x509;

use std::path::PathBuf;
use std::time::Duration;

pub use config::{ClientTls, ServerTls};
pub use errors::handshake_failure;
pub use fingerprint::Fingerprint;
pub use selfsigned::{SelfSigned, self_signed_names};
pub(crate) use x509::subject_common_names;

/// The default time a TLS handshake may take, on either side.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// What a TLS server does. Start from [`Default`] and set what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsServerOptions {
    /// The server's certificate and key; `None` generates a self-signed
    /// certificate for the listen address at start-up.
    pub identity: Option<Identity>,
    /// Require client certificates issued by the CAs in this PEM file
    /// (mutual TLS); `None` asks for no client certificate.
    pub client_ca: Option<PathBuf>,
    /// Require a client certificate with one of these SHA-256
    /// fingerprints (`--client-pin-sha256`); empty for no pin check.
    /// Without `client_ca`, a pinned certificate is accepted whatever
    /// signed it.
    pub client_pins: Vec<Fingerprint>,
    /// Require a client certificate carrying one of these names in its
    /// subjectAltName (DNS or IP), or as its common name when it has no
    /// subjectAltName (`--client-name`); empty for no name check. Needs
    /// `client_ca` or `client_pins`: a name alone proves nothing.
    pub client_names: Vec<String>,
    /// ALPN protocols offered, in order of preference; empty for none.
    pub alpn: Vec<Vec<u8>>,
    /// How long a client may take to complete the handshake: a slow or
    /// silent client must not hold a connection slot forever.
    pub handshake_timeout: Duration,
}

impl Default for TlsServerOptions {
    fn default() -> TlsServerOptions {
        TlsServerOptions {
            identity: None,
            client_ca: None,
            client_pins: Vec::new(),
            client_names: Vec::new(),
            alpn: Vec::new(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// How a TLS client decides to trust the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerVerification {
    /// Verify the chain against the system's trust store plus the CA
    /// certificates in these PEM files, and the name against the server
    /// name (the default).
    Roots {
        /// Extra trust anchors (`--ca`).
        ca: Vec<PathBuf>,
    },
    /// Accept exactly a leaf certificate with one of these SHA-256
    /// fingerprints, whatever signed it and whatever names or dates it
    /// holds (`--pin-sha256`): how to trust a self-signed server without
    /// turning verification off. The handshake signature is still checked.
    Pin(Vec<Fingerprint>),
    /// Accept any certificate (`--insecure`): encryption without
    /// authentication. Warned about on every use.
    Insecure,
}

impl Default for ServerVerification {
    fn default() -> ServerVerification {
        ServerVerification::Roots { ca: Vec::new() }
    }
}

/// What a TLS client does. Start from [`Default`] and set what differs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsClientOptions {
    /// How the server's certificate is verified.
    pub verification: ServerVerification,
    /// The name sent as SNI and verified against the certificate; `None`
    /// uses the host of the address connected to.
    pub servername: Option<String>,
    /// A client certificate to present, for servers that ask for one.
    pub identity: Option<Identity>,
    /// ALPN protocols offered, in order of preference; empty for none.
    pub alpn: Vec<Vec<u8>>,
    /// How long the handshake may take after the TCP connection is up.
    pub handshake_timeout: Duration,
}

impl Default for TlsClientOptions {
    fn default() -> TlsClientOptions {
        TlsClientOptions {
            verification: ServerVerification::default(),
            servername: None,
            identity: None,
            alpn: Vec::new(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// Splits ALPN arguments: each may hold several protocols separated by
/// commas (`h2,http/1.1`). Empty names are rejected.
pub fn parse_alpn<S: AsRef<str>>(args: &[S]) -> crate::error::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for arg in args {
        for proto in arg.as_ref().split(',') {
            let proto = proto.trim();
            if proto.is_empty() || proto.len() > 255 {
                return Err(crate::error::Error::usage(format!(
                    "invalid {} {:?}: protocol names are 1 to 255 bytes, separated by commas",
                    crate::settings::Setting::Alpn,
                    arg.as_ref()
                )));
            }
            out.push(proto.as_bytes().to_vec());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpn_is_repeatable_and_comma_separated() {
        let got = parse_alpn(&["h2,http/1.1", "x"]).expect("alpn");
        assert_eq!(
            got,
            vec![b"h2".to_vec(), b"http/1.1".to_vec(), b"x".to_vec()]
        );
        assert!(parse_alpn(&["h2,"]).is_err());
        assert!(parse_alpn::<&str>(&[]).expect("none").is_empty());
    }
}
